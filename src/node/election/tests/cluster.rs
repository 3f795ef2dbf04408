//! Several nodes wired together: elections as the masters and the other
//! replicas see them.

use super::*;

/// Four nodes wired together: masters M (0x10), A (0x20), B (0x30) and
/// R (0x50) replicating M. Messages are delivered at once; `dead` nodes
/// neither run nor receive.
struct Cluster {
    sims: Vec<Sim>,
    dead: Vec<bool>,
    now_ms: i64,
    /// (time, node byte, note)
    notes: Vec<(i64, u8, Note)>,
}

const IDS: [u8; 4] = [0x10, 0x20, 0x30, 0x50];

impl Cluster {
    fn new(nt: u64) -> Cluster {
        let slots = |b: u8| match b {
            0x10 => 0..5461,
            0x20 => 5461..10923,
            0x30 => 10923..16384,
            _ => 0..0,
        };
        let mut sims = Vec::new();
        for (k, &me) in IDS.iter().enumerate() {
            let mut s = Sim::new(100 + k as u64, nt, me);
            let my = s.node.myself;
            for j in slots(me) {
                s.node.add_slot(my, j);
            }
            s.node.nm(my).config_epoch = u64::from(me >> 4).min(3);
            for &b in IDS.iter().filter(|&&b| b != me) {
                let flags = if b == 0x50 { SLAVE } else { MASTER };
                let i = s.peer(b, flags, slots(b));
                s.node.nm(i).config_epoch = u64::from(b >> 4).min(3);
            }
            let m = s.idx(0x10);
            if me == 0x50 {
                s.node.nm(my).config_epoch = 0;
                s.node.set_master(m);
            } else {
                let r = s.idx(0x50);
                s.node.nm(r).slaveof = Some(m);
                s.node.nm(r).config_epoch = 0;
                s.node.add_slave(m, r);
            }
            s.node.current_epoch = 3;
            s.node.update_state(&mut Vec::new());
            sims.push(s);
        }
        Cluster {
            sims,
            dead: vec![false; IDS.len()],
            now_ms: T0_MS,
            notes: Vec::new(),
        }
    }

    fn pos(b: u8) -> usize {
        IDS.iter().position(|&x| x == b).unwrap()
    }

    fn deliver(
        &mut self,
        from: usize,
        out: Vec<Effect>,
        queue: &mut Vec<(usize, usize, Rc<BusMsg>)>,
    ) {
        for e in out {
            match e {
                Effect::Send { link, msg } => {
                    let node = &self.sims[from].node;
                    let Some(to) = node.links.get(&link).and_then(|l| l.node) else {
                        continue;
                    };
                    let to = Self::pos(node.n(to).name.0[0]);
                    queue.push((from, to, msg));
                }
                Effect::Note(n) => self.notes.push((self.now_ms, IDS[from], n)),
                _ => {}
            }
        }
    }

    /// One 100 ms cron round on every live node, then all traffic.
    fn step(&mut self) {
        self.now_ms += 100;
        let mut queue = Vec::new();
        for k in 0..IDS.len() {
            if self.dead[k] {
                continue;
            }
            let mut out = Vec::new();
            let now = sim(self.now_ms);
            self.sims[k].node.handle(now, Input::Cron, &mut out);
            self.deliver(k, out, &mut queue);
        }
        let mut q = 0;
        while q < queue.len() {
            let (from, to, msg) = queue[q].clone();
            q += 1;
            if self.dead[to] || self.dead[from] {
                continue;
            }
            let node = &self.sims[to].node;
            let Some(link) = node.n(node.idx_of(IDS[from])).link else {
                continue;
            };
            let mut out = Vec::new();
            let now = sim(self.now_ms);
            self.sims[to]
                .node
                .handle(now, Input::Recv { link, msg }, &mut out);
            self.deliver(to, out, &mut queue);
        }
    }

    fn first_note(&self, who: u8, f: impl Fn(&Note) -> bool) -> Option<i64> {
        self.notes
            .iter()
            .find(|(_, b, n)| *b == who && f(n))
            .map(|(t, _, _)| *t)
    }
}

impl Node {
    fn idx_of(&self, b: u8) -> u32 {
        self.lookup(&id(b)).unwrap()
    }
}

#[test]
fn four_nodes_master_dies_replica_is_elected_and_everyone_agrees() {
    let mut c = Cluster::new(1000);
    for _ in 0..10 {
        c.step();
    }
    c.dead[Cluster::pos(0x10)] = true;
    let killed = c.now_ms;
    for _ in 0..100 {
        c.step();
    }
    let failed = [0x20, 0x30]
        .iter()
        .filter_map(|&b| c.first_note(b, |n| matches!(n, Note::FailMarked { .. })))
        .min()
        .expect("a master marked M FAIL");
    assert!(failed - killed > 1000, "FAIL before node timeout");
    let sched = c
        .first_note(0x50, |n| {
            matches!(n, Note::ElectionScheduled { rank: 0, .. })
        })
        .expect("scheduled");
    // R learns FAIL from the FAIL message at once, and schedules its
    // election in the next cron (Redis: clusterCron, not a todo flag).
    let learned = c
        .first_note(0x50, |n| *n == Note::FailReceived { about: id(0x10) })
        .expect("FAIL received");
    assert_eq!(learned, failed);
    assert_eq!(sched, failed + 100);
    let start = c
        .first_note(0x50, |n| *n == Note::ElectionStarted { epoch: 4 })
        .expect("started");
    assert!((500..1100).contains(&(start - sched)), "{}", start - sched);
    let won = c
        .first_note(0x50, |n| {
            matches!(n, Note::Promoted { config_epoch: 4, old_master, manual: None } if *old_master == id(0x10))
        })
        .expect("promoted");
    assert_eq!(won, start, "votes arrive within the same round");
    for b in [0x20, 0x30] {
        assert!(c
            .first_note(b, |n| *n == Note::VoteGranted { to: id(0x50) })
            .is_some());
    }
    for &b in &[0x20, 0x30, 0x50] {
        let node = &c.sims[Cluster::pos(b)].node;
        let owner = node.slot_owner(0).unwrap();
        assert_eq!(owner.name, id(0x50), "slot 0 as seen by {b:#x}");
        assert_eq!(owner.config_epoch, 4);
        assert!(owner.is_master());
        assert_eq!(node.slot_owner(5460).unwrap().name, id(0x50));
    }
}
