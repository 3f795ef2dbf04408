//! A command's arguments in one buffer: what a client writes, what a
//! command propagates to replicas and the AOF. One allocation however many
//! arguments (`Vec<Vec<u8>>` made one per argument, and freeing a trimmed
//! backlog's commands touched each of them).

use std::fmt;
use std::rc::Rc;

use smallvec::SmallVec;

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Argv {
    data: Vec<u8>,
    /// The end of each argument in `data`.
    ends: SmallVec<[u32; 6]>,
}

impl Argv {
    /// The arguments `args`, in a buffer of their exact size.
    pub fn from_slices(args: &[&[u8]]) -> Argv {
        let mut argv = Argv {
            data: Vec::with_capacity(args.iter().map(|a| a.len()).sum()),
            ends: SmallVec::new(),
        };
        for a in args {
            argv.push(a);
        }
        argv
    }

    pub fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
    }

    pub fn push(&mut self, arg: &[u8]) {
        self.push_with(|b| b.extend_from_slice(arg));
    }

    /// An argument written by `f` into the buffer.
    pub fn push_with(&mut self, f: impl FnOnce(&mut Vec<u8>)) {
        f(&mut self.data);
        self.ends.push(self.data.len() as u32);
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Argument `i`.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)? as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        Some(&self.data[start..end])
    }

    pub fn first(&self) -> Option<&[u8]> {
        self.get(0)
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let a = &self.data[start..end as usize];
            start = end as usize;
            a
        })
    }

    /// Call `f` with the arguments as slices (on the stack for up to 8).
    pub fn with<R>(&self, f: impl FnOnce(&[&[u8]]) -> R) -> R {
        const SHORT: usize = 8;
        if self.len() <= SHORT {
            let mut args: [&[u8]; SHORT] = [&[]; SHORT];
            for (a, s) in args.iter_mut().zip(self.iter()) {
                *a = s;
            }
            f(&args[..self.len()])
        } else {
            f(&self.iter().collect::<Vec<_>>())
        }
    }
}

/// A command as it is propagated (to replicas and the AOF) and carried by
/// the replication stream: its arguments and its RESP size, shared.
#[derive(Debug, PartialEq, Eq)]
pub struct ReplCommand {
    pub argv: Argv,
    /// Its RESP size: what it adds to the replication offset.
    pub size: u64,
}

impl ReplCommand {
    pub fn new(argv: Argv) -> Rc<ReplCommand> {
        let size = crate::node::replication::resp::multibulk_size(&argv);
        Rc::new(ReplCommand { argv, size })
    }

    pub fn from_slices(args: &[&[u8]]) -> Rc<ReplCommand> {
        ReplCommand::new(Argv::from_slices(args))
    }
}

impl std::ops::Index<usize> for Argv {
    type Output = [u8];

    fn index(&self, i: usize) -> &[u8] {
        self.get(i).expect("argument index out of range")
    }
}

/// The arguments of propagated commands, for tests to compare.
#[cfg(test)]
pub fn argvs(cmds: &[Rc<ReplCommand>]) -> Vec<Argv> {
    cmds.iter().map(|c| c.argv.clone()).collect()
}

/// Tests compare with the arguments as vectors.
#[cfg(test)]
impl PartialEq<Vec<Vec<u8>>> for Argv {
    fn eq(&self, other: &Vec<Vec<u8>>) -> bool {
        self.iter().eq(other.iter().map(Vec::as_slice))
    }
}

/// The arguments in a buffer of their exact size.
impl<A: AsRef<[u8]>> FromIterator<A> for Argv {
    fn from_iter<I: IntoIterator<Item = A>>(args: I) -> Argv {
        let args: SmallVec<[A; 8]> = args.into_iter().collect();
        let slices: SmallVec<[&[u8]; 8]> = args.iter().map(AsRef::as_ref).collect();
        Argv::from_slices(&slices)
    }
}

impl fmt::Debug for Argv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(String::from_utf8_lossy))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_come_back_as_pushed() {
        let mut a = Argv::default();
        assert!(a.is_empty() && a.first().is_none());
        a.push(b"SET");
        a.push(b"");
        a.push_with(|b| b.extend_from_slice(b"v1"));
        assert_eq!(a.len(), 3);
        assert_eq!(a.iter().collect::<Vec<_>>(), [&b"SET"[..], b"", b"v1"]);
        assert_eq!(
            (a.get(1), a.get(2), a.get(3)),
            (Some(&b""[..]), Some(&b"v1"[..]), None)
        );
        assert_eq!(a.with(|s| s.concat()), b"SETv1");
        assert_eq!(Argv::from_slices(&[b"SET", b"", b"v1"]), a);
        assert_eq!(["SET", "", "v1"].into_iter().collect::<Argv>(), a);
        a.clear();
        assert!(a.is_empty());
        let many: Vec<Vec<u8>> = (0..20).map(|i| i.to_string().into_bytes()).collect();
        let refs: Vec<&[u8]> = many.iter().map(Vec::as_slice).collect();
        let a = Argv::from_slices(&refs);
        assert!(a.with(|s| s == refs));
        assert_eq!(
            format!("{:?}", Argv::from_slices(&[b"GET", b"k"])),
            "[\"GET\", \"k\"]"
        );
    }
}
