//! Several nodes wired together: elections as the masters and the other
//! replicas see them.

use super::*;

/// Masters M (0x10), A (0x20), B (0x30) with a third of the slots each
/// (config epochs 1, 2, 3) and the given replicas of M, wired together.
/// Messages are delivered at once; `dead` nodes neither run nor receive.
struct Cluster {
    ids: Vec<u8>,
    sims: Vec<Sim>,
    dead: Vec<bool>,
    now_ms: i64,
    /// (time, node byte, note)
    notes: Vec<(i64, u8, Note)>,
}

const M: u8 = 0x10;

impl Cluster {
    fn new(nt: u64, replicas: &[u8], seed: u64) -> Cluster {
        let slots = |b: u8| match b {
            0x10 => 0..5461,
            0x20 => 5461..10923,
            0x30 => 10923..16384,
            _ => 0..0,
        };
        let ids: Vec<u8> = [M, 0x20, 0x30]
            .into_iter()
            .chain(replicas.to_vec())
            .collect();
        let is_replica = |b: u8| replicas.contains(&b);
        let mut sims = Vec::new();
        for (k, &me) in ids.iter().enumerate() {
            let mut s = Sim::new(100 + 16 * seed + k as u64, nt, me);
            let my = s.node.myself;
            for j in slots(me) {
                s.node.add_slot(my, j);
            }
            for &b in &ids {
                let i = if b == me {
                    my
                } else {
                    let flags = if is_replica(b) { SLAVE } else { MASTER };
                    s.peer(b, flags, slots(b))
                };
                if !is_replica(b) {
                    s.node.nm(i).config_epoch = u64::from(b >> 4);
                }
            }
            let m = s.idx(M);
            for &r in replicas {
                if r == me {
                    s.node.set_master(m, &mut s.out);
                    s.sync_with_master();
                } else {
                    let i = s.idx(r);
                    s.node.nm(i).slaveof = Some(m);
                    s.node.add_slave(m, i);
                }
            }
            s.node.current_epoch = 3;
            s.node.update_state(&mut Vec::new());
            sims.push(s);
        }
        Cluster {
            dead: vec![false; ids.len()],
            ids,
            sims,
            now_ms: T0_MS,
            notes: Vec::new(),
        }
    }

    fn pos(&self, b: u8) -> usize {
        self.ids.iter().position(|&x| x == b).unwrap()
    }

    fn node(&self, b: u8) -> &Node {
        &self.sims[self.pos(b)].node
    }

    /// Node `b`'s harness, at the cluster's time.
    fn sim_mut(&mut self, b: u8) -> &mut Sim {
        let k = self.pos(b);
        let now_ms = self.now_ms;
        self.sims[k].at(now_ms)
    }

    fn kill(&mut self, b: u8) {
        let k = self.pos(b);
        self.dead[k] = true;
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
                    let to = self.pos(node.n(to).name.0[0]);
                    queue.push((from, to, msg));
                }
                Effect::Note(n) => self.notes.push((self.now_ms, self.ids[from], n)),
                _ => {}
            }
        }
    }

    /// One 100 ms cron round on every live node (in `ids` order), then all
    /// traffic, in the order it was sent.
    fn step(&mut self) {
        self.now_ms += 100;
        let mut queue = Vec::new();
        for k in 0..self.ids.len() {
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
            let Some(link) = node.n(node.idx_of(self.ids[from])).link else {
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

    fn steps(&mut self, n: usize) {
        for _ in 0..n {
            self.step();
        }
    }

    fn first_note(&self, who: u8, f: impl Fn(&Note) -> bool) -> Option<i64> {
        self.notes
            .iter()
            .find(|(_, b, n)| *b == who && f(n))
            .map(|(t, _, _)| *t)
    }

    fn count_notes(&self, who: u8, f: impl Fn(&Note) -> bool) -> usize {
        self.notes
            .iter()
            .filter(|(_, b, n)| *b == who && f(n))
            .count()
    }

    /// Every promotion: (time, node, config epoch).
    fn promotions(&self) -> Vec<(i64, u8, u64)> {
        self.notes
            .iter()
            .filter_map(|(t, b, n)| match n {
                Note::Promoted { config_epoch, .. } => Some((*t, *b, *config_epoch)),
                _ => None,
            })
            .collect()
    }

    /// When replica `b` scheduled its election, with the delay and rank.
    fn scheduled(&self, b: u8) -> Option<(i64, i64, u32)> {
        self.notes.iter().find_map(|(t, who, n)| match n {
            Note::ElectionScheduled { delay_ms, rank } if *who == b => Some((*t, *delay_ms, *rank)),
            _ => None,
        })
    }
}

impl Node {
    fn idx_of(&self, b: u8) -> u32 {
        self.lookup(&id(b)).unwrap()
    }
}

#[test]
fn four_nodes_master_dies_replica_is_elected_and_everyone_agrees() {
    let mut c = Cluster::new(1000, &[0x50], 0);
    c.steps(10);
    c.kill(M);
    let killed = c.now_ms;
    c.steps(100);
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
            .first_note(b, |n| *n
                == Note::VoteGranted {
                    to: id(0x50),
                    epoch: 4
                })
            .is_some());
    }
    for &b in &[0x20, 0x30, 0x50] {
        let node = c.node(b);
        let owner = node.slot_owner(0).unwrap();
        assert_eq!(owner.name, id(0x50), "slot 0 as seen by {b:#x}");
        assert_eq!(owner.config_epoch, 4);
        assert!(owner.is_master());
        assert_eq!(node.slot_owner(5460).unwrap().name, id(0x50));
    }
}

/// Kill M after a second of gossip (the replicas learn each other's
/// offsets from PING/PONG headers) and run until the dust settles.
fn kill_m_and_run(c: &mut Cluster) {
    c.steps(10);
    c.kill(M);
    c.steps(60);
}

/// The loser of an election ends up replicating the winner, and everyone
/// alive agrees the winner owns M's slots with the election epoch.
fn assert_follows(c: &Cluster, loser: u8, winner: u8, epoch: u64, ctx: &str) {
    assert_eq!(c.node(loser).master_id(), Some(id(winner)), "{ctx}");
    assert!(!c.node(loser).is_master(), "{ctx}");
    for b in [0x20, 0x30, winner, loser] {
        let owner = c.node(b).slot_owner(0).unwrap();
        assert_eq!(
            (owner.name, owner.config_epoch),
            (id(winner), epoch),
            "{ctx}: slot 0 as seen by {b:#x}"
        );
    }
}

/// Issue 3: with two replicas, the one with the greater replication offset
/// wins on every seed (rank 0 starts 500–1000 ms after scheduling, rank 1
/// another 1000 ms later), and the other one, still waiting, processes the
/// winner's PONG (M lost its slots to it) and calls `clusterSetMaster`.
#[test]
fn higher_offset_replica_wins_on_every_seed_and_the_other_follows() {
    for seed in 0..50 {
        let (good, lag) = if seed % 2 == 0 {
            (0x50, 0x60)
        } else {
            (0x60, 0x50)
        };
        let mut c = Cluster::new(1000, &[0x50, 0x60], seed);
        c.sim_mut(good).set_repl_offset(1000);
        c.sim_mut(lag).set_repl_offset(900);
        kill_m_and_run(&mut c);
        let ctx = format!("seed {seed}");
        let (t_good, d_good, r_good) = c.scheduled(good).expect("good scheduled");
        let (_, d_lag, r_lag) = c.scheduled(lag).expect("lag scheduled");
        assert_eq!((r_good, r_lag), (0, 1), "{ctx}");
        assert!((500..1000).contains(&d_good), "{ctx}: {d_good}");
        assert!((1500..2000).contains(&d_lag), "{ctx}: {d_lag}");
        let promotions = c.promotions();
        assert_eq!(promotions.len(), 1, "{ctx}: {promotions:?}");
        let (t, who, epoch) = promotions[0];
        assert_eq!((who, epoch), (good, 4), "{ctx}");
        // Won in the cron round its delay ended (votes come back at once).
        assert!(t >= t_good + d_good && t < t_good + d_good + 100, "{ctx}");
        assert_eq!(
            c.first_note(lag, |n| matches!(n, Note::ElectionStarted { .. })),
            None,
            "{ctx}: the lagging replica never asked for votes"
        );
        assert_follows(&c, lag, good, 4, &ctx);
    }
}

/// Equal offsets share rank 0: both replicas schedule with only the random
/// 500–1000 ms delay, so either may win. When both ask in the same cron
/// round they ask for the same epoch 4; each master has one vote per epoch
/// (and, for a replica of M, one per 2 × NT), so exactly one of them gets
/// the quorum; the other follows the winner.
#[test]
fn equal_offsets_share_rank_0_exactly_one_wins_the_other_follows() {
    let mut wins = std::collections::BTreeMap::new();
    let mut both_asked = 0;
    for seed in 0..50 {
        let mut c = Cluster::new(1000, &[0x50, 0x60], seed);
        for r in [0x50, 0x60] {
            c.sim_mut(r).set_repl_offset(1000);
        }
        kill_m_and_run(&mut c);
        let ctx = format!("seed {seed}");
        for r in [0x50, 0x60] {
            let (_, d, rank) = c.scheduled(r).expect("scheduled");
            assert_eq!(rank, 0, "{ctx}");
            assert!((500..1000).contains(&d), "{ctx}: {d}");
        }
        let promotions = c.promotions();
        assert_eq!(promotions.len(), 1, "{ctx}: {promotions:?}");
        let (_, winner, epoch) = promotions[0];
        assert_eq!(epoch, 4, "{ctx}");
        let loser = if winner == 0x50 { 0x60 } else { 0x50 };
        *wins.entry(winner).or_insert(0) += 1;
        for voter in [0x20, 0x30] {
            assert_eq!(
                c.count_notes(voter, |n| matches!(n, Note::VoteGranted { .. })),
                1,
                "{ctx}: {voter:#x} voted once"
            );
            assert!(c
                .first_note(
                    voter,
                    |n| matches!(n, Note::VoteGranted { to, .. } if *to == id(winner))
                )
                .is_some());
        }
        let asked = |b| c.first_note(b, |n| matches!(n, Note::ElectionStarted { .. }));
        let t_win = asked(winner).unwrap();
        if let Some(t_lose) = asked(loser) {
            both_asked += 1;
            assert_eq!(t_lose, t_win, "{ctx}: the loser asked in the same round");
            assert_eq!(c.node(loser).failover_auth_epoch(), 4, "{ctx}");
        }
        assert_follows(&c, loser, winner, 4, &ctx);
    }
    assert!(wins.len() == 2, "both replicas win on some seeds: {wins:?}");
    assert!(both_asked > 0, "no seed where both asked for votes");
}

/// Re-ranked while waiting: both replicas schedule at rank 0 (the lagging
/// one does not know better yet); the winner's scheduling PONG to the
/// other replicas of M carries its greater offset, the lagging replica's
/// next cron finds rank 1 and adds 1000 ms, so it never gets to ask.
#[test]
fn scheduling_pong_reranks_the_lagging_replica_and_it_loses() {
    for seed in 0..50 {
        let (good, lag) = if seed % 2 == 0 {
            (0x50, 0x60)
        } else {
            (0x60, 0x50)
        };
        let mut c = Cluster::new(1000, &[0x50, 0x60], seed);
        for r in [0x50, 0x60] {
            c.sim_mut(r).set_repl_offset(1000);
        }
        c.steps(10);
        c.kill(M);
        // The good replica processes more of the stream once both learned
        // M is FAIL, just before they schedule (next cron).
        let learned = |c: &Cluster, b| {
            c.first_note(b, |n| {
                matches!(n, Note::FailReceived { .. } | Note::FailMarked { .. })
            })
            .is_some()
        };
        while !(learned(&c, good) && learned(&c, lag)) {
            c.step();
        }
        c.sim_mut(good).set_repl_offset(1100);
        c.steps(50);
        let ctx = format!("seed {seed}");
        let (t, d, rank) = c.scheduled(lag).expect("lag scheduled");
        assert_eq!(rank, 0, "{ctx}");
        let e = &c.node(lag).election;
        assert_eq!(e.failover_auth_rank, 1, "{ctx}");
        assert_eq!(e.failover_auth_time, t + d + 1000, "{ctx}");
        let promotions = c.promotions();
        assert_eq!(promotions.len(), 1, "{ctx}");
        assert_eq!((promotions[0].1, promotions[0].2), (good, 4), "{ctx}");
        assert_follows(&c, lag, good, 4, &ctx);
    }
}
