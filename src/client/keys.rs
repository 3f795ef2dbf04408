//! Keys and values of the workloads.
//!
//! Keys are numbered: id `n` below [`KeyNames::numbered`] is the key
//! `key:<n>`; a trace may name other keys, which get the ids after those.
//! A request carries the id; the bytes are written only when a node reads
//! the request.
//!
//! Values are unique, so that a lost write can be told from a write that
//! was overwritten: the value of write `id` (client `c`, its `s`-th write)
//! is the token `c.s.` padded with `x` to `value_size` bytes (a token
//! longer than `value_size` is not cut). `APPEND`s concatenate tokens;
//! [`tokens`] reads them back.

use std::collections::BTreeMap;
use std::path::Path;

use rand::RngExt as _;

use super::zipf::Zipf;
use crate::engine::Rng;
use crate::node::slots::key_hash_slot;
use crate::scenario::{Distribution, Workload};

/// "No value": a nil reply, or a value no client of this run wrote.
pub const NO_VALUE: u64 = u64::MAX;

/// The id of a client's `seq`-th write.
pub fn write_id(client: u32, seq: u32) -> u64 {
    (u64::from(client) << 32) | u64::from(seq)
}

/// Append the value of write `id`, `size` bytes (or the bare token if it
/// is longer).
pub fn write_value(id: u64, size: usize, out: &mut Vec<u8>) {
    let start = out.len();
    push_decimal(out, id >> 32);
    out.push(b'.');
    push_decimal(out, id & 0xffff_ffff);
    out.push(b'.');
    let len = out.len() - start;
    if len < size {
        out.resize(start + size, b'x');
    }
}

/// The length [`write_value`] writes.
pub fn value_len(id: u64, size: usize) -> usize {
    let token = digits(id >> 32) + 1 + digits(id & 0xffff_ffff) + 1;
    token.max(size)
}

fn digits(n: u64) -> usize {
    crate::node::replication::resp::digits(n) as usize
}

/// Append `n` in decimal.
pub fn push_decimal(out: &mut Vec<u8>, n: u64) {
    let mut buf = [0u8; 20];
    out.extend_from_slice(crate::node::render::decimal(n, &mut buf));
}

/// The write ids of the tokens `value` is made of, in order; it stops at
/// the first byte that does not continue a token (so a value no client
/// wrote gives nothing).
pub fn tokens(value: &[u8]) -> impl Iterator<Item = u64> + '_ {
    let mut rest = value;
    std::iter::from_fn(move || {
        let (client, r) = number(rest)?;
        let r = r.strip_prefix(b".")?;
        let (seq, r) = number(r)?;
        let r = r.strip_prefix(b".")?;
        let pad = r.iter().take_while(|&&b| b == b'x').count();
        rest = &r[pad..];
        Some(write_id(
            u32::try_from(client).ok()?,
            u32::try_from(seq).ok()?,
        ))
    })
}

/// A decimal number at the start of `b`, and what follows.
fn number(b: &[u8]) -> Option<(u64, &[u8])> {
    let len = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if len == 0 || len > 10 {
        return None;
    }
    let n = b[..len]
        .iter()
        .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
    Some((n, &b[len..]))
}

/// The write id a `GET` read: the first token of the value, or
/// [`NO_VALUE`].
pub fn read_id(value: &[u8]) -> u64 {
    tokens(value).next().unwrap_or(NO_VALUE)
}

/// The names of every key of a run.
#[derive(Clone, Debug, Default)]
pub struct KeyNames {
    /// Ids below this are `key:<id>`.
    pub numbered: u64,
    /// Names of the ids from `numbered` on (keys of traces).
    extra: Vec<Vec<u8>>,
    by_name: BTreeMap<Vec<u8>, u32>,
}

impl KeyNames {
    /// Names for workloads whose largest `keys` is `numbered`.
    pub fn new(numbered: u64) -> Result<KeyNames, String> {
        if numbered > 1 << 32 {
            return Err(format!(
                "at most {} keys can be simulated, a workload asks for {numbered}",
                1u64 << 32
            ));
        }
        Ok(KeyNames {
            numbered,
            ..KeyNames::default()
        })
    }

    /// The id of the key named `name` (a trace's key), given one if new.
    pub fn intern(&mut self, name: &[u8]) -> Result<u32, String> {
        let numbered = name
            .strip_prefix(b"key:")
            .filter(|d| d.len() == 1 || d.first() != Some(&b'0'))
            .and_then(|d| number(d))
            .filter(|&(n, rest)| rest.is_empty() && n < self.numbered);
        if let Some((n, _)) = numbered {
            return Ok(n as u32);
        }
        if let Some(&id) = self.by_name.get(name) {
            return Ok(id);
        }
        let id = self.numbered + self.extra.len() as u64;
        let id = u32::try_from(id).map_err(|_| "too many distinct keys".to_string())?;
        self.extra.push(name.to_vec());
        self.by_name.insert(name.to_vec(), id);
        Ok(id)
    }

    /// The length of the name [`KeyNames::write`] writes.
    pub fn len(&self, id: u32) -> usize {
        match u64::from(id).checked_sub(self.numbered) {
            None => "key:".len() + digits(u64::from(id)),
            Some(i) => self.extra[i as usize].len(),
        }
    }

    /// Append the name of key `id`.
    pub fn write(&self, id: u32, out: &mut Vec<u8>) {
        match u64::from(id).checked_sub(self.numbered) {
            None => {
                out.extend_from_slice(b"key:");
                push_decimal(out, u64::from(id));
            }
            Some(i) => out.extend_from_slice(&self.extra[i as usize]),
        }
    }

    /// The hash slot of key `id`; `buf` is scratch space.
    pub fn slot(&self, id: u32, buf: &mut Vec<u8>) -> u16 {
        buf.clear();
        self.write(id, buf);
        key_hash_slot(buf)
    }

    /// The number `ttl_share` is applied to: `n` for `key:<n>`, the order
    /// of first appearance (0, 1, ...) for the other names of traces.
    pub fn ttl_number(&self, id: u32) -> u64 {
        let id = u64::from(id);
        id.checked_sub(self.numbered).unwrap_or(id)
    }
}

/// One operation of a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceOp {
    pub set: bool,
    pub key: u32,
}

/// Read a trace file: one operation a line, `GET <key>` or `SET <key>`
/// (any case; tab or space separated); a first column that is a number is
/// the operation's index and is ignored; empty lines and `#` lines are
/// skipped, and so is a first line that is not an operation (a header).
pub fn read_trace(path: &Path, names: &mut KeyNames) -> Result<Vec<TraceOp>, String> {
    let text = std::fs::read(path).map_err(|e| format!("trace {}: {e}", path.display()))?;
    let mut ops = Vec::new();
    let mut first = true;
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut cols = line
            .split(|&b| b == b' ' || b == b'\t')
            .filter(|c| !c.is_empty())
            .peekable();
        let Some(&head) = cols.peek() else { continue };
        if head.starts_with(b"#") {
            continue;
        }
        if head.iter().all(u8::is_ascii_digit) {
            cols.next();
        }
        let cols: Vec<&[u8]> = cols.collect();
        let op = match cols.as_slice() {
            [cmd, key] if cmd.eq_ignore_ascii_case(b"GET") => Some((false, *key)),
            [cmd, key] if cmd.eq_ignore_ascii_case(b"SET") => Some((true, *key)),
            _ => None,
        };
        match op {
            Some((set, key)) => ops.push(TraceOp {
                set,
                key: names.intern(key)?,
            }),
            None if first => {}
            None => {
                return Err(format!(
                    "trace {} line {}: expected \"GET <key>\" or \"SET <key>\", got {:?}",
                    path.display(),
                    i + 1,
                    String::from_utf8_lossy(line)
                ))
            }
        }
        first = false;
    }
    Ok(ops)
}

/// How a population picks its keys.
#[derive(Clone, Debug)]
pub enum KeyChooser {
    /// Draws among `n` keys: `key:0` .. `key:<n-1>`, or the `pool` of
    /// those in the workload's `slots`. Zipf ranks follow key order:
    /// the first key is the most popular.
    Draw {
        n: u64,
        zipf: Option<Zipf>,
        pool: Option<Vec<u32>>,
    },
    /// Replays a trace, in order; `next` is the next operation.
    Trace { ops: Vec<TraceOp>, next: usize },
}

/// The most keys a workload with `slots` may have: their slots are
/// computed, and those in the ranges listed, when the run starts.
pub const MAX_FILTERED_KEYS: u64 = 100_000_000;

/// Whether `slot` is in the inclusive `ranges`.
fn in_slots(ranges: &[(u16, u16)], slot: u16) -> bool {
    ranges.iter().any(|&(a, b)| (a..=b).contains(&slot))
}

impl KeyChooser {
    /// The chooser of workload `w` (`trace`: its operations, read already).
    pub fn new(
        w: &Workload,
        trace: Option<Vec<TraceOp>>,
        names: &KeyNames,
    ) -> Result<KeyChooser, String> {
        let mut buf = Vec::new();
        if let Some(mut ops) = trace {
            if let Some(slots) = &w.slots {
                ops.retain(|op| in_slots(slots, names.slot(op.key, &mut buf)));
            }
            return Ok(KeyChooser::Trace { ops, next: 0 });
        }
        let pool = match &w.slots {
            None => None,
            Some(_) if w.keys > MAX_FILTERED_KEYS => {
                return Err(format!(
                    "with slots, at most {MAX_FILTERED_KEYS} keys can be simulated (the keys of those slots are listed when the run starts), got {}",
                    w.keys
                ))
            }
            Some(slots) => {
                let pool: Vec<u32> = (0..w.keys as u32)
                    .filter(|&k| in_slots(slots, names.slot(k, &mut buf)))
                    .collect();
                if pool.is_empty() {
                    return Err(format!(
                        "none of the {} keys key:0 .. key:{} hashes to the workload's slots",
                        w.keys,
                        w.keys - 1
                    ));
                }
                Some(pool)
            }
        };
        let n = pool.as_ref().map_or(w.keys, |p| p.len() as u64);
        let zipf = match w.distribution {
            Distribution::Uniform => None,
            Distribution::Zipf(s) => Some(Zipf::new(n, s)),
        };
        Ok(KeyChooser::Draw { n, zipf, pool })
    }

    /// The next key to use, and whether a trace says `SET` (`None` when
    /// the keys are drawn); `None` when a trace is over.
    pub fn next(&mut self, rng: &mut Rng) -> Option<(u32, Option<bool>)> {
        match self {
            KeyChooser::Draw { n, zipf, pool } => {
                let i = match zipf {
                    None => rng.random_range(0..*n),
                    Some(z) => z.sample(rng) - 1,
                };
                let key = pool.as_ref().map_or(i as u32, |p| p[i as usize]);
                Some((key, None))
            }
            KeyChooser::Trace { ops, next } => {
                let op = ops.get(*next)?;
                *next += 1;
                Some((op.key, Some(op.set)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{actor_rng, Actor};

    #[test]
    fn values_are_unique_tokens_of_the_asked_size() {
        let mut v = Vec::new();
        write_value(write_id(12, 345), 20, &mut v);
        assert_eq!(v, b"12.345.xxxxxxxxxxxxx");
        assert_eq!(read_id(&v), write_id(12, 345));
        // A size below the token's: the bare token.
        let mut short = Vec::new();
        write_value(write_id(4_000_000_000, 7), 3, &mut short);
        assert_eq!(short, b"4000000000.7.");
        // Appends concatenate tokens.
        v.extend_from_slice(&short);
        v.extend_from_slice(b"0.0.");
        assert_eq!(
            tokens(&v).collect::<Vec<_>>(),
            [
                write_id(12, 345),
                write_id(4_000_000_000, 7),
                write_id(0, 0)
            ]
        );
        // Not ours: nothing.
        assert_eq!(read_id(b"17"), NO_VALUE);
        assert_eq!(read_id(b"hello"), NO_VALUE);
        assert_eq!(tokens(b"1.2.xx3").count(), 1);
    }

    #[test]
    fn key_names_and_interning() {
        let mut k = KeyNames::new(100).unwrap();
        let mut b = Vec::new();
        k.write(42, &mut b);
        assert_eq!(b, b"key:42");
        assert_eq!(k.intern(b"key:7").unwrap(), 7);
        // Not canonical, or beyond the numbered keys: a name of its own.
        assert_eq!(k.intern(b"key:007").unwrap(), 100);
        assert_eq!(k.intern(b"user:1").unwrap(), 101);
        assert_eq!(k.intern(b"key:100").unwrap(), 102);
        assert_eq!(k.intern(b"user:1").unwrap(), 101);
        b.clear();
        k.write(101, &mut b);
        assert_eq!(b, b"user:1");
        assert_eq!((k.ttl_number(7), k.ttl_number(101)), (7, 1));
        assert_eq!(k.slot(0, &mut b), key_hash_slot(b"key:0"));
        assert!(KeyNames::new((1 << 32) + 1).is_err());
    }

    #[test]
    fn trace_files_skip_comments_header_and_indices() {
        let dir = std::env::temp_dir().join(format!("redsim-trace-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("t.trace");
        std::fs::write(
            &p,
            "index op key\n# comment\n0 GET key:1\n\n1\tSET  user:9\r\nset key:2\n",
        )
        .unwrap();
        let mut names = KeyNames::new(10).unwrap();
        let ops = read_trace(&p, &mut names).unwrap();
        assert_eq!(
            ops,
            [
                TraceOp { set: false, key: 1 },
                TraceOp { set: true, key: 10 },
                TraceOp { set: true, key: 2 },
            ]
        );
        std::fs::write(&p, "GET a\nDEL a\n").unwrap();
        let e = read_trace(&p, &mut names).unwrap_err();
        assert!(
            e.ends_with("line 2: expected \"GET <key>\" or \"SET <key>\", got \"DEL a\""),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn drawn_keys_stay_in_the_slots_and_the_range() {
        let names = KeyNames::new(1000).unwrap();
        let w = Workload {
            keys: 1000,
            slots: Some(vec![(0, 5460)]),
            ..Workload::default()
        };
        let mut c = KeyChooser::new(&w, None, &names).unwrap();
        let mut r = actor_rng(1, Actor::Clients(0));
        let mut b = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..5000 {
            let (k, set) = c.next(&mut r).unwrap();
            assert_eq!(set, None);
            assert!(k < 1000 && names.slot(k, &mut b) <= 5460);
            seen.insert(k);
        }
        // About a third of the keys hash there; all get drawn.
        assert!((300..370).contains(&seen.len()), "{}", seen.len());
        let w = Workload {
            keys: 3,
            slots: Some(vec![(16000, 16000)]),
            ..Workload::default()
        };
        assert!(KeyChooser::new(&w, None, &names).is_err());
    }

    #[test]
    fn uniform_and_zipf_key_frequencies() {
        let names = KeyNames::new(100).unwrap();
        let mut r = actor_rng(2, Actor::Clients(0));
        let count = |w: &Workload, r: &mut Rng| {
            let mut c = KeyChooser::new(w, None, &names).unwrap();
            let mut counts = [0u32; 100];
            for _ in 0..100_000 {
                counts[c.next(r).unwrap().0 as usize] += 1;
            }
            counts
        };
        let u = count(
            &Workload {
                keys: 100,
                ..Workload::default()
            },
            &mut r,
        );
        assert!(u.iter().all(|&c| (850..1150).contains(&c)), "{u:?}");
        let z = count(
            &Workload {
                keys: 100,
                distribution: Distribution::Zipf(1.0),
                ..Workload::default()
            },
            &mut r,
        );
        // key:0 gets 1/H(100) = 19.3% of the draws, key:1 half of that.
        assert!((18_800..19_800).contains(&z[0]), "{}", z[0]);
        assert!((9_300..10_000).contains(&z[1]), "{}", z[1]);
        assert!(z[99] < 400);
    }
}
