use std::rc::Rc;

use rand::SeedableRng;

use super::super::bus::{flags::*, mflags, Body, BusMsg, MsgType, NodeId};
use super::super::config::Config;
use super::super::render::ClusterCommand;
use super::super::replication::{ReplEffect, ReplInput, ReplMsg};
use super::super::{ClusterNode, Effect, Input, Link, LinkId, Node, NodeSetup, Note, BASE_UNIX_MS};
use super::FailoverMode;
use crate::engine::{Rng, SimTime};

/// Unix ms (what the node sees) of the test start.
const T0_MS: i64 = BASE_UNIX_MS + 1_000_000;

/// Simulated time at Unix ms `ms`.
fn sim(ms: i64) -> SimTime {
    ((ms - BASE_UNIX_MS) * 1000) as SimTime
}

fn id(b: u8) -> NodeId {
    NodeId([b; 20])
}

/// Master M (0x10, slots 0..5461, FAIL unless told), masters A (0x20)
/// and B (0x30) with the rest; myself (0x50) and R2 (0x60), R3 (0x70)
/// replicate M. Link id of a peer = its first ID byte.
struct Sim {
    node: Node,
    now_ms: i64,
    out: Vec<Effect>,
}

impl Sim {
    fn new(seed: u64, nt: u64, my_id: u8) -> Sim {
        let config = Config {
            cluster_enabled: true,
            cluster_node_timeout_ms: nt,
            ..Config::default()
        };
        let setup = NodeSetup {
            port: 7000,
            config,
            planted: None,
        };
        let rng = Rng::seed_from_u64(seed);
        let mut node = Node::new(setup, rng, sim(T0_MS));
        let me = node.myself;
        node.rename_node(me, id(my_id));
        Sim {
            node,
            now_ms: T0_MS,
            out: Vec::new(),
        }
    }

    fn peer(&mut self, b: u8, flags: u16, slots: std::ops::Range<usize>) -> u32 {
        let n = &mut self.node;
        let mut c = ClusterNode::new(id(b), flags, 0);
        c.ip = Some([10, 0, 0, b]);
        c.port = 7000;
        c.cport = 17000;
        let idx = n.add_node(c);
        let link = LinkId::from(b);
        n.links.insert(
            link,
            Link {
                node: Some(idx),
                inbound: false,
                ctime: 0,
                peer_ip: [10, 0, 0, b],
                local_ip: Some([10, 0, 0, 1]),
            },
        );
        n.nm(idx).link = Some(link);
        n.nm(idx).pong_received = T0_MS; // no NT/2 pings at first
        for j in slots {
            n.add_slot(idx, j);
        }
        idx
    }

    fn idx(&self, b: u8) -> u32 {
        self.node.lookup(&id(b)).unwrap()
    }

    /// The standard shard layout seen by a replica of M (me = 0x50), in
    /// sync with M since the start.
    fn replica(seed: u64, nt: u64) -> Sim {
        let mut s = Sim::replica_never_synced(seed, nt);
        s.sync_with_master();
        s
    }

    /// The same, the replica never connected to M.
    fn replica_never_synced(seed: u64, nt: u64) -> Sim {
        let mut s = Sim::new(seed, nt, 0x50);
        let m = s.peer(0x10, MASTER | FAIL, 0..5461);
        s.peer(0x20, MASTER, 5461..10923);
        s.peer(0x30, MASTER, 10923..16384);
        s.node.set_master(m, &mut s.out);
        for b in [0x60, 0x70] {
            let r = s.peer(b, SLAVE, 0..0);
            s.node.nm(r).slaveof = Some(m);
            s.node.add_slave(m, r);
        }
        for e in [1, 2, 3] {
            let i = s.idx(e * 0x10);
            s.node.nm(i).config_epoch = u64::from(e);
        }
        s.node.current_epoch = 3;
        s.node.update_state(&mut Vec::new());
        assert_eq!(s.node.size, 3);
        s
    }

    /// A voter: me = master 0x20 with slots; M (0x10, FAIL) with
    /// replica R (0x50); master B (0x30).
    fn voter(nt: u64) -> Sim {
        let mut s = Sim::new(7, nt, 0x20);
        let me = s.node.myself;
        for j in 5461..10923 {
            s.node.add_slot(me, j);
        }
        s.node.nm(me).config_epoch = 2;
        let m = s.peer(0x10, MASTER | FAIL, 0..5461);
        s.peer(0x30, MASTER, 10923..16384);
        let r = s.peer(0x50, SLAVE, 0..0);
        s.node.nm(r).slaveof = Some(m);
        s.node.add_slave(m, r);
        s.node.nm(m).config_epoch = 1;
        s.node.nm(s.idx(0x30)).config_epoch = 3;
        s.node.current_epoch = 3;
        s
    }

    fn at(&mut self, ms: i64) -> &mut Sim {
        self.now_ms = ms;
        self
    }

    /// A cron tick; every peer just answered a PING, so links stay up
    /// and no peer turns PFAIL (these tests are not about gossip).
    fn cron(&mut self) -> Vec<Effect> {
        let me = self.node.myself;
        for k in 0..self.node.live.len() {
            let i = self.node.live[k];
            if i != me {
                let n = self.node.nm(i);
                n.ping_sent = 0;
                n.pong_received = self.now_ms;
                n.data_received = self.now_ms;
            }
        }
        let mut out = Vec::new();
        self.node.handle(sim(self.now_ms), Input::Cron, &mut out);
        self.out.extend(out.iter().cloned());
        out
    }

    fn repl(&mut self, input: ReplInput) -> Vec<Effect> {
        let mut out = Vec::new();
        self.node
            .handle(sim(self.now_ms), Input::Repl(input), &mut out);
        self.out.extend(out.iter().cloned());
        out
    }

    /// My replication link to my master: the last one I asked for.
    fn repl_link(&self) -> LinkId {
        self.out
            .iter()
            .rev()
            .find_map(|e| match e {
                Effect::Repl(ReplEffect::Connect { link, .. }) => Some(*link),
                _ => None,
            })
            .expect("a replication link was asked for")
    }

    /// My master answers the handshake on the link I asked for and
    /// accepts my `PSYNC` (`+CONTINUE`): my master link is up.
    fn sync_with_master(&mut self) {
        let link = self.repl_link();
        self.repl(ReplInput::Connected { link });
        let replies = [
            ReplMsg::Pong,
            ReplMsg::Ok,
            ReplMsg::Ok,
            ReplMsg::Continue { replid: None },
        ];
        for msg in replies {
            self.repl(ReplInput::Recv { link, msg });
        }
        assert!(self.node.replication().replica.master_link_up());
    }

    /// My master's stream reaches `offset` (it only grows); what I did
    /// once I processed it.
    fn set_repl_offset(&mut self, offset: u64) -> Vec<Effect> {
        let mine = self.node.my_repl_offset();
        assert!(offset >= mine, "offsets only grow");
        let msg = ReplMsg::Stream {
            offset: mine as i64 + 1,
            bytes: offset - mine,
            commands: Vec::new(),
        };
        let link = self.repl_link();
        let out = self.repl(ReplInput::Recv { link, msg });
        assert_eq!(self.node.my_repl_offset(), offset);
        out
    }

    fn recv(&mut self, msg: BusMsg) -> Vec<Effect> {
        let link = LinkId::from(msg.sender.0[0]);
        let mut out = Vec::new();
        let input = Input::Recv {
            link,
            msg: Rc::new(msg),
        };
        self.node.handle(sim(self.now_ms), input, &mut out);
        self.out.extend(out.iter().cloned());
        out
    }

    fn command(&mut self, cmd: ClusterCommand) -> (Result<String, String>, Vec<Effect>) {
        let mut out = Vec::new();
        let r = self.node.command(sim(self.now_ms), cmd, &mut out);
        (r, out)
    }

    /// A header-only message from peer `b` as that peer would build it.
    fn msg(&self, typ: MsgType, b: u8, current_epoch: u64) -> BusMsg {
        let n = self.node.n(self.idx(b));
        let master = match n.slaveof {
            Some(m) if n.is_slave() => self.node.n(m),
            _ => n,
        };
        BusMsg {
            typ,
            sender: id(b),
            current_epoch,
            config_epoch: master.config_epoch,
            offset: n.repl_offset,
            myslots: Rc::clone(&master.slots),
            slaveof: n
                .slaveof
                .filter(|_| n.is_slave())
                .map(|m| self.node.n(m).name),
            myip: None,
            port: 7000,
            cport: 17000,
            flags: n.flags & (MASTER | SLAVE),
            state_ok: true,
            mflags: 0,
            body: Body::None,
        }
    }
}

fn notes(out: &[Effect]) -> Vec<Note> {
    out.iter()
        .filter_map(|e| match e {
            Effect::Note(n) => Some(n.clone()),
            _ => None,
        })
        .collect()
}

fn sent(out: &[Effect], typ: MsgType) -> Vec<(LinkId, Rc<BusMsg>)> {
    out.iter()
        .filter_map(|e| match e {
            Effect::Send { link, msg } if msg.typ == typ => Some((*link, Rc::clone(msg))),
            _ => None,
        })
        .collect()
}

fn scheduled(out: &[Effect]) -> Option<(i64, u32)> {
    notes(out).into_iter().find_map(|n| match n {
        Note::ElectionScheduled { delay_ms, rank } => Some((delay_ms, rank)),
        _ => None,
    })
}

fn started(out: &[Effect]) -> Option<u64> {
    notes(out).into_iter().find_map(|n| match n {
        Note::ElectionStarted { epoch } => Some(epoch),
        _ => None,
    })
}

fn set_offset(s: &mut Sim, b: u8, off: u64) {
    let i = s.idx(b);
    s.node.nm(i).repl_offset = off;
}

#[test]
fn election_delay_is_500_to_1000_ms_plus_1000_per_rank() {
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..40 {
        for (rank, offsets) in [(0u32, [0u64, 0]), (1, [200, 50]), (2, [200, 300])] {
            let mut s = Sim::replica(seed, 15000);
            s.set_repl_offset(100);
            set_offset(&mut s, 0x60, offsets[0]);
            set_offset(&mut s, 0x70, offsets[1]);
            let out = s.at(T0_MS + 100).cron();
            let (delay, r) = scheduled(&out).expect("election scheduled");
            assert_eq!(r, rank);
            let base = delay - 1000 * i64::from(rank);
            assert!((500..1000).contains(&base), "delay {delay} rank {rank}");
            assert_eq!(s.node.election.failover_auth_time, T0_MS + 100 + delay);
            seen.insert(base / 100);
            // PONG to the other replicas of my master only.
            let pongs: Vec<LinkId> = sent(&out, MsgType::Pong).iter().map(|p| p.0).collect();
            assert_eq!(pongs, vec![0x60, 0x70]);
            // Not started before the delay, started at it.
            let auth_time = s.node.election.failover_auth_time;
            assert_eq!(started(&s.at(auth_time - 1).cron()), None);
            assert_eq!(started(&s.at(auth_time).cron()), Some(4));
        }
    }
    assert!(seen.len() >= 4, "random part barely varies: {seen:?}");
}

#[test]
fn rank_counts_replicas_with_greater_offset_ties_share() {
    let mut s = Sim::replica(1, 15000);
    s.set_repl_offset(100);
    set_offset(&mut s, 0x60, 100);
    set_offset(&mut s, 0x70, 100);
    assert_eq!(s.node.get_slave_rank(), 0);
    set_offset(&mut s, 0x60, 101);
    assert_eq!(s.node.get_slave_rank(), 1);
    set_offset(&mut s, 0x70, 101);
    assert_eq!(s.node.get_slave_rank(), 2);
    // NOFAILOVER replicas don't count.
    let r3 = s.idx(0x70);
    s.node.nm(r3).flags |= NOFAILOVER;
    assert_eq!(s.node.get_slave_rank(), 1);
    // Two replicas at the same offset as each other share rank 0.
    let mut t = Sim::replica(1, 15000);
    t.set_repl_offset(50);
    set_offset(&mut t, 0x60, 50);
    assert_eq!(t.node.get_slave_rank(), 0);
}

#[test]
fn worse_rank_while_waiting_adds_delay() {
    let mut s = Sim::replica(3, 15000);
    s.set_repl_offset(100);
    let (delay, rank) = scheduled(&s.at(T0_MS + 100).cron()).unwrap();
    assert_eq!(rank, 0);
    // R2 advertises a better offset in a PONG header.
    let mut pong = s.msg(MsgType::Pong, 0x60, 3);
    pong.offset = 500;
    pong.body = Body::Gossip(Vec::new());
    s.at(T0_MS + 200).recv(pong);
    s.at(T0_MS + 300).cron();
    assert_eq!(s.node.election.failover_auth_rank, 1);
    assert_eq!(
        s.node.election.failover_auth_time,
        T0_MS + 100 + delay + 1000
    );
    // R3 too: rank 2, another 1000 ms.
    let mut pong = s.msg(MsgType::Pong, 0x70, 3);
    pong.offset = 101;
    pong.body = Body::Gossip(Vec::new());
    s.at(T0_MS + 350).recv(pong);
    s.at(T0_MS + 400).cron();
    assert_eq!(s.node.election.failover_auth_rank, 2);
    assert_eq!(
        s.node.election.failover_auth_time,
        T0_MS + 100 + delay + 2000
    );
    // A better rank never removes delay.
    set_offset(&mut s, 0x60, 0);
    set_offset(&mut s, 0x70, 0);
    s.at(T0_MS + 500).cron();
    assert_eq!(
        s.node.election.failover_auth_time,
        T0_MS + 100 + delay + 2000
    );
    // Nor does the re-ranking go on once the request is sent.
    let t = s.node.election.failover_auth_time;
    assert_eq!(started(&s.at(t).cron()), Some(4));
    set_offset(&mut s, 0x60, 900);
    s.at(t + 100).cron();
    assert_eq!(s.node.election.failover_auth_time, t);
}

#[test]
fn no_election_without_fail_slots_or_with_no_failover_or_stale_data() {
    // Master not FAIL.
    let mut s = Sim::replica(1, 15000);
    let m = s.idx(0x10);
    s.node.nm(m).flags &= !FAIL;
    assert_eq!(scheduled(&s.at(T0_MS + 100).cron()), None);
    // Master FAIL but serving no slots.
    let mut s = Sim::replica(1, 15000);
    for j in 0..5461 {
        s.node.del_slot(j);
    }
    assert_eq!(scheduled(&s.at(T0_MS + 100).cron()), None);
    // cluster-replica-no-failover.
    let mut s = Sim::replica(1, 15000);
    s.node.setup.config.cluster_replica_no_failover = true;
    assert_eq!(scheduled(&s.at(T0_MS + 100).cron()), None);
    // Data too old: down for more than 10 s + 10 × NT + NT (whole
    // seconds): 176 s refuses, 175 s does not.
    for (down_s, refused) in [(176, true), (175, false)] {
        let mut s = Sim::replica(1, 15000);
        let link = s.repl_link();
        s.repl(ReplInput::LinkError { link });
        let replica = &s.node.replication().replica;
        assert!(!replica.master_link_up());
        assert_eq!(replica.repl_down_since_ms(), T0_MS);
        let out = s.at(T0_MS + down_s * 1000 + 100).cron();
        assert_eq!(scheduled(&out).is_none(), refused, "down {down_s} s");
    }
    // Same with the link up and a last interaction as old (no
    // `repl-timeout` to drop the link first).
    let mut s = Sim::replica(1, 15000);
    s.node.setup.config.repl_timeout_s = 1000;
    assert_eq!(scheduled(&s.at(T0_MS + 176_100).cron()), None);
    assert!(s.node.replication().replica.master_link_up());
    // But a manual (FORCE) failover ignores data age.
    let (r, _) = s.command(ClusterCommand::Failover(FailoverMode::Force));
    r.unwrap();
    assert_eq!(scheduled(&s.at(T0_MS + 176_200).cron()), Some((0, 0)));
    // A replica that never synced with its master: `repl_down_since` is
    // 0, its data is as old as the epoch, it never fails over on its own.
    let mut s = Sim::replica_never_synced(1, 15000);
    assert!(!s.node.replication().replica.master_link_up());
    assert_eq!(s.node.replication().replica.repl_down_since_ms(), 0);
    for t in 1..20 {
        assert_eq!(scheduled(&s.at(T0_MS + t * 100).cron()), None);
    }
    // Factor 0 never refuses.
    s.node.setup.config.cluster_replica_validity_factor = 0;
    assert!(scheduled(&s.at(T0_MS + 2100).cron()).is_some());
}

/// Request from R (0x50) for `epoch`, claiming M's slots at M's epoch.
fn request(s: &Sim, epoch: u64) -> BusMsg {
    s.msg(MsgType::FailoverAuthRequest, 0x50, epoch)
}

fn acks(out: &[Effect]) -> Vec<LinkId> {
    sent(out, MsgType::FailoverAuthAck)
        .iter()
        .map(|a| a.0)
        .collect()
}

#[test]
fn vote_granted_with_fsynced_last_vote_epoch() {
    let mut s = Sim::voter(15000);
    let req = request(&s, 4);
    let out = s.at(T0_MS).recv(req);
    assert_eq!(acks(&out), vec![0x50]);
    assert!(notes(&out).contains(&Note::VoteGranted {
        to: id(0x50),
        epoch: 4
    }));
    assert_eq!(s.node.last_vote_epoch, 4);
    assert_eq!(s.node.n(s.idx(0x10)).voted_time, T0_MS);
    let save = out.iter().find_map(|e| match e {
        Effect::SaveConfig { conf, fsync } => Some((conf.text(), *fsync)),
        _ => None,
    });
    let (text, fsync) = save.expect("config saved");
    assert!(fsync);
    assert!(text.contains("lastVoteEpoch 4"), "{text}");
}

#[test]
fn every_vote_refusal_rule_refuses_silently() {
    type Tweak = fn(&mut Sim, &mut BusMsg);
    let cases: Vec<(&str, Tweak)> = vec![
        ("voter is a replica", |s, _| {
            let me = s.node.myself;
            s.node.nm(me).flags = MYSELF | SLAVE;
        }),
        ("voter has no slots", |s, _| {
            let me = s.node.myself;
            let slots: Vec<usize> = s.node.n(me).slots.iter().collect();
            for j in slots {
                s.node.del_slot(j);
            }
        }),
        ("request epoch < current epoch", |s, m| {
            s.node.current_epoch = 5;
            m.current_epoch = 4;
        }),
        ("already voted this epoch", |s, _| {
            s.node.last_vote_epoch = 4
        }),
        ("requester is a master", |s, m| {
            let r = s.idx(0x50);
            let old = s.node.n(r).slaveof.unwrap();
            s.node.remove_slave(old, r);
            s.node.nm(r).slaveof = None;
            s.node.nm(r).flags = MASTER;
            m.slaveof = None;
            m.flags = MASTER;
        }),
        ("requester's master unknown", |s, m| {
            let r = s.idx(0x50);
            s.node.nm(r).slaveof = None;
            m.slaveof = Some(id(0x99));
        }),
        ("master not FAIL, no FORCEACK", |s, _| {
            let m = s.idx(0x10);
            s.node.nm(m).flags &= !FAIL;
        }),
        ("voted for this master within 2 NT", |s, _| {
            let m = s.idx(0x10);
            s.node.nm(m).voted_time = T0_MS - 29_999;
        }),
        ("claimed slot owned with a greater epoch", |_, m| {
            let mut slots = (*m.myslots).clone();
            slots.set(12000); // owned by B, epoch 3 > 1
            m.myslots = Rc::new(slots);
        }),
    ];
    for (what, tweak) in cases {
        let mut s = Sim::voter(15000);
        let mut req = request(&s, 4);
        tweak(&mut s, &mut req);
        let before = s.node.last_vote_epoch;
        let out = s.at(T0_MS).recv(req);
        assert!(acks(&out).is_empty(), "{what}: voted");
        assert!(
            !out.iter()
                .any(|e| matches!(e, Effect::Send { msg, .. } if msg.typ != MsgType::Pong)),
            "{what}: replied"
        );
        assert_eq!(s.node.last_vote_epoch, before, "{what}");
    }
}

#[test]
fn forceack_votes_for_replica_of_live_master_and_lockout_expires() {
    let mut s = Sim::voter(15000);
    let m = s.idx(0x10);
    s.node.nm(m).flags &= !FAIL;
    let mut req = request(&s, 4);
    req.mflags |= mflags::FORCEACK;
    assert_eq!(acks(&s.at(T0_MS).recv(req)), vec![0x50]);
    // Same master, later epoch, 2 NT - 1 ms later: refused; 2 NT + 1: granted.
    let mut req = request(&s, 5);
    req.mflags |= mflags::FORCEACK;
    assert!(acks(&s.at(T0_MS + 29_999).recv(req.clone())).is_empty());
    req.current_epoch = 6;
    assert_eq!(acks(&s.at(T0_MS + 30_001).recv(req)), vec![0x50]);
}

#[test]
fn one_vote_per_epoch() {
    let mut s = Sim::voter(15000);
    // A second failed master M2 (0x40) with replica R2 (0x60).
    let m2 = s.peer(0x40, MASTER | FAIL, 0..0);
    let r2 = s.peer(0x60, SLAVE, 0..0);
    s.node.nm(r2).slaveof = Some(m2);
    s.node.add_slave(m2, r2);
    let req = request(&s, 4);
    assert_eq!(acks(&s.at(T0_MS).recv(req)), vec![0x50]);
    let other = s.msg(MsgType::FailoverAuthRequest, 0x60, 4);
    assert!(acks(&s.recv(other)).is_empty());
    let other = s.msg(MsgType::FailoverAuthRequest, 0x60, 5);
    assert_eq!(acks(&s.recv(other)), vec![0x60]);
    assert_eq!(s.node.last_vote_epoch, 5);
}

/// Run a replica until it has sent its auth request; returns the epoch.
fn start_election(s: &mut Sim) -> u64 {
    let (delay, _) = scheduled(&s.at(T0_MS + 100).cron()).unwrap();
    let out = s.at(T0_MS + 100 + delay).cron();
    let reqs = sent(&out, MsgType::FailoverAuthRequest);
    assert_eq!(reqs.len(), 5, "broadcast to every linked node");
    assert_eq!(reqs[0].1.myslots.count(), 5461, "claims M's slots");
    assert_eq!(reqs[0].1.config_epoch, 1, "with M's config epoch");
    assert_eq!(
        reqs[0].1.mflags & mflags::FORCEACK,
        0,
        "automatic: no FORCEACK"
    );
    let epoch = started(&out).unwrap();
    assert_eq!(epoch, s.node.current_epoch, "currentEpoch + 1");
    assert!(reqs.iter().all(|r| r.1.current_epoch == epoch), "new epoch");
    epoch
}

#[test]
fn quorum_counts_only_slot_owning_masters_at_or_after_the_election_epoch() {
    let mut s = Sim::replica(5, 15000);
    let epoch = start_election(&mut s);
    assert_eq!(epoch, 4);
    assert_eq!(s.node.current_epoch, 4);
    let t = s.now_ms + 10;
    s.at(t);
    // From a replica: not counted.
    let a = s.msg(MsgType::FailoverAuthAck, 0x60, 4);
    s.recv(a);
    // From a master without slots: not counted.
    let e = s.peer(0x40, MASTER, 0..0);
    let _ = e;
    let a = s.msg(MsgType::FailoverAuthAck, 0x40, 4);
    s.recv(a);
    // From a slot owner with an older current epoch: not counted.
    let a = s.msg(MsgType::FailoverAuthAck, 0x20, 3);
    s.recv(a);
    assert_eq!(s.node.election.failover_auth_count, 0);
    assert!(!s.node.is_master());
    // One valid vote out of the needed 2.
    let a = s.msg(MsgType::FailoverAuthAck, 0x20, 4);
    let out = s.recv(a);
    assert_eq!(s.node.election.failover_auth_count, 1);
    assert!(!s.node.is_master());
    assert!(notes(&out).is_empty());
    // The second vote wins at once (before-sleep handling).
    let a = s.msg(MsgType::FailoverAuthAck, 0x30, 5);
    let out = s.recv(a);
    assert!(s.node.is_master());
    assert!(notes(&out).contains(&Note::Promoted {
        config_epoch: 4,
        old_master: id(0x10),
        manual: None
    }));
    let me = s.node.myself();
    assert_eq!(me.config_epoch, 4);
    assert_eq!(me.numslots, 5461);
    assert_eq!(s.node.slot_owner(0).unwrap().name, id(0x50));
    assert_eq!(s.node.slot_owner(5460).unwrap().name, id(0x50));
    assert_eq!(s.node.n(s.idx(0x10)).numslots, 0);
    assert!(!s.node.n(s.idx(0x10)).slaves.contains(&s.node.myself));
    // PONG to everybody, config saved with fsync.
    assert_eq!(sent(&out, MsgType::Pong).len(), 6);
    assert!(out.iter().any(
        |e| matches!(e, Effect::SaveConfig { fsync: true, conf } if conf.text().contains("myself,master"))
    ));
}

/// Auth timeout max(2 × NT, 2000 ms), retry 2 × that: NT 500 → 2 s / 4 s
/// (the floor), NT 1000 → 2 s / 4 s, NT 3000 → 6 s / 12 s.
#[test]
fn election_times_out_after_max_2nt_2000_then_retries_after_twice_that() {
    for (nt, timeout) in [(500, 2000), (1000, 2000), (3000, 6000)] {
        let mut s = Sim::replica(9, nt);
        let epoch = start_election(&mut s);
        let auth_time = s.node.election.failover_auth_time;
        // Expired: a late quorum is not acted upon.
        s.at(auth_time + timeout + 1);
        for b in [0x20, 0x30] {
            let a = s.msg(MsgType::FailoverAuthAck, b, epoch);
            s.recv(a);
        }
        assert_eq!(s.node.election.failover_auth_count, 2);
        s.cron();
        assert!(!s.node.is_master(), "NT {nt}: won after the auth timeout");
        // Quorum within the timeout would have won: check the boundary.
        let mut w = Sim::replica(9, nt);
        let epoch_w = start_election(&mut w);
        let at = w.node.election.failover_auth_time + timeout;
        w.at(at);
        for b in [0x20, 0x30] {
            let a = w.msg(MsgType::FailoverAuthAck, b, epoch_w);
            w.recv(a);
        }
        assert!(w.node.is_master(), "NT {nt}: lost at the timeout");
        // No new schedule until twice the timeout after the auth time.
        let retry = 2 * timeout;
        assert_eq!(scheduled(&s.at(auth_time + retry).cron()), None, "NT {nt}");
        let (delay, _) = scheduled(&s.at(auth_time + retry + 1).cron()).expect("retry");
        let out = s.at(auth_time + retry + 1 + delay).cron();
        assert_eq!(started(&out), Some(epoch + 1), "NT {nt}");
        assert_eq!(s.node.election.failover_auth_count, 0);
    }
}

#[test]
fn failover_command_errors() {
    let mut s = Sim::voter(15000);
    let (r, _) = s.command(ClusterCommand::Failover(FailoverMode::Default));
    assert_eq!(
        r.unwrap_err(),
        "ERR You should send CLUSTER FAILOVER to a replica"
    );
    let mut s = Sim::replica(1, 15000);
    let (r, _) = s.command(ClusterCommand::Failover(FailoverMode::Default));
    assert_eq!(
        r.unwrap_err(),
        "ERR Master is down or failed, please use CLUSTER FAILOVER FORCE"
    );
    let m = s.idx(0x10);
    s.node.nm(m).flags &= !FAIL;
    s.node.nm(m).link = None;
    let (r, _) = s.command(ClusterCommand::Failover(FailoverMode::Default));
    assert!(r.unwrap_err().starts_with("ERR Master is down"));
    let me = s.node.myself;
    s.node.nm(me).slaveof = None;
    let (r, _) = s.command(ClusterCommand::Failover(FailoverMode::Force));
    assert_eq!(
        r.unwrap_err(),
        "ERR I'm a replica but my master is unknown to me"
    );
    assert_eq!(
        FailoverMode::parse(Some("TakeOver")),
        Ok(FailoverMode::Takeover)
    );
    assert_eq!(FailoverMode::parse(None), Ok(FailoverMode::Default));
    assert_eq!(
        FailoverMode::parse(Some("now")).unwrap_err(),
        "ERR syntax error"
    );
}

#[test]
fn takeover_bumps_the_epoch_and_promotes_without_votes() {
    let mut s = Sim::replica(1, 15000);
    let m = s.idx(0x10);
    s.node.nm(m).flags &= !FAIL; // master healthy; no majority needed
    let (r, out) = s
        .at(T0_MS + 100)
        .command(ClusterCommand::Failover(FailoverMode::Takeover));
    assert_eq!(r.unwrap(), "OK");
    assert!(s.node.is_master());
    assert_eq!(s.node.current_epoch, 4);
    assert_eq!(s.node.myself().config_epoch, 4);
    assert_eq!(s.node.myself().numslots, 5461);
    assert!(sent(&out, MsgType::FailoverAuthRequest).is_empty());
    assert_eq!(sent(&out, MsgType::Pong).len(), 5);
    assert!(notes(&out).contains(&Note::Promoted {
        config_epoch: 4,
        old_master: id(0x10),
        manual: Some(FailoverMode::Takeover)
    }));
    assert!(!s.node.manual_failover_in_progress());
}

#[test]
fn bump_without_consensus_only_if_zero_or_not_the_max() {
    let mut s = Sim::voter(15000);
    // My epoch 2 is not the max (B has 3, current 3).
    assert!(s.node.bump_config_epoch_without_consensus());
    assert_eq!((s.node.current_epoch, s.node.myself().config_epoch), (4, 4));
    assert!(!s.node.bump_config_epoch_without_consensus());
    assert_eq!(s.node.current_epoch, 4);
}

#[test]
fn force_starts_at_once_with_forceack_but_still_needs_votes() {
    let mut s = Sim::replica(2, 15000);
    let m = s.idx(0x10);
    s.node.nm(m).flags &= !FAIL;
    let (r, out) = s
        .at(T0_MS + 100)
        .command(ClusterCommand::Failover(FailoverMode::Force));
    assert_eq!(r.unwrap(), "OK");
    assert!(sent(&out, MsgType::MfStart).is_empty());
    let out = s.at(T0_MS + 200).cron();
    assert_eq!(scheduled(&out), Some((0, 0)));
    let reqs = sent(&out, MsgType::FailoverAuthRequest);
    assert_eq!(reqs.len(), 5);
    assert_ne!(reqs[0].1.mflags & mflags::FORCEACK, 0);
    // No votes: no promotion, and the manual failover times out.
    s.at(T0_MS + 2000).cron();
    assert!(!s.node.is_master());
    let out = s.at(T0_MS + 5200).cron();
    assert!(notes(&out).contains(&Note::ManualFailoverTimeout));
    assert!(!s.node.is_master());
    // With a majority of votes (in time) it wins.
    let mut s = Sim::replica(2, 15000);
    let m = s.idx(0x10);
    s.node.nm(m).flags &= !FAIL;
    let (r, _) = s
        .at(T0_MS + 100)
        .command(ClusterCommand::Failover(FailoverMode::Force));
    r.unwrap();
    let epoch = started(&s.at(T0_MS + 200).cron()).unwrap();
    for b in [0x20, 0x30] {
        let a = s.msg(MsgType::FailoverAuthAck, b, epoch);
        s.at(T0_MS + 250).recv(a);
    }
    assert!(s.node.is_master());
    assert_eq!(s.node.myself().config_epoch, epoch);
}

#[test]
fn default_manual_failover_waits_for_paused_offset() {
    let mut s = Sim::replica(4, 15000);
    let m = s.idx(0x10);
    s.node.nm(m).flags &= !FAIL;
    s.set_repl_offset(1000);
    let (r, out) = s
        .at(T0_MS + 100)
        .command(ClusterCommand::Failover(FailoverMode::Default));
    assert_eq!(r.unwrap(), "OK");
    let mf = sent(&out, MsgType::MfStart);
    assert_eq!(mf.len(), 1);
    assert_eq!(mf[0].0, 0x10);
    // A PING from the master without PAUSED: nothing.
    let mut ping = s.msg(MsgType::Ping, 0x10, 3);
    ping.body = Body::Gossip(Vec::new());
    ping.offset = 1000;
    let out = s.at(T0_MS + 150).recv(ping.clone());
    assert_eq!(started(&out), None);
    // PAUSED at 1200 while I am at 1000: wait.
    ping.mflags = mflags::PAUSED;
    ping.offset = 1200;
    let out = s.at(T0_MS + 160).recv(ping);
    assert_eq!(started(&out), None);
    assert_eq!(s.node.election.mf_master_offset, Some(1200));
    assert_eq!(started(&s.at(T0_MS + 200).cron()), None);
    // Caught up: the election starts at once (no delay), FORCEACK set,
    // in the `beforeSleep` after the stream is processed.
    let out = s.at(T0_MS + 300).set_repl_offset(1200);
    assert_eq!(scheduled(&out), Some((0, 0)));
    let reqs = sent(&out, MsgType::FailoverAuthRequest);
    assert_eq!(reqs.len(), 5);
    assert_ne!(reqs[0].1.mflags & mflags::FORCEACK, 0);
}

#[test]
fn manual_failover_times_out_after_5_s() {
    let mut s = Sim::replica(4, 15000);
    let m = s.idx(0x10);
    s.node.nm(m).flags &= !FAIL;
    s.at(T0_MS + 100)
        .command(ClusterCommand::Failover(FailoverMode::Default))
        .0
        .unwrap();
    assert!(s.node.manual_failover_in_progress());
    let out = s.at(T0_MS + 5100).cron();
    assert!(!notes(&out).contains(&Note::ManualFailoverTimeout));
    assert!(s.node.manual_failover_in_progress());
    let out = s.at(T0_MS + 5101).cron();
    assert!(notes(&out).contains(&Note::ManualFailoverTimeout));
    assert!(!s.node.manual_failover_in_progress());
}

#[test]
fn manual_failover_honours_retry_time_of_previous_election() {
    // An automatic election at ~T0+1 s, lost; the master comes back.
    let mut s = Sim::replica(6, 15000);
    start_election(&mut s);
    let m = s.idx(0x10);
    s.node.nm(m).flags &= !FAIL;
    let t = s.node.election.failover_auth_time + 10_000;
    s.at(t)
        .command(ClusterCommand::Failover(FailoverMode::Force))
        .0
        .unwrap();
    let mut out = Vec::new();
    for k in 1..=52 {
        out.extend(s.at(t + 100 * k).cron());
    }
    assert_eq!(scheduled(&out), None);
    assert!(sent(&out, MsgType::FailoverAuthRequest).is_empty());
    assert!(notes(&out).contains(&Note::ManualFailoverTimeout));
}

#[test]
fn master_pauses_on_mfstart_and_pings_replica_with_paused_flag() {
    let mut s = Sim::voter(15000);
    let m = s.idx(0x10);
    s.node.nm(m).flags &= !FAIL;
    // Make R (0x50) my replica instead.
    let r = s.idx(0x50);
    s.node.remove_slave(m, r);
    let me = s.node.myself;
    s.node.nm(r).slaveof = Some(me);
    s.node.add_slave(me, r);
    // MFSTART from a node that is not my replica: ignored.
    let mf = s.msg(MsgType::MfStart, 0x30, 3);
    let out = s.at(T0_MS).recv(mf);
    assert!(out.is_empty() || sent(&out, MsgType::Ping).is_empty());
    assert!(!s.node.writes_paused());
    let mf = s.msg(MsgType::MfStart, 0x50, 3);
    let out = s.at(T0_MS).recv(mf);
    let pings = sent(&out, MsgType::Ping);
    assert_eq!(pings.len(), 1);
    assert_eq!(pings[0].0, 0x50);
    assert_eq!(pings[0].1.mflags, mflags::PAUSED);
    assert!(s.node.writes_paused());
    // Every cron pings the replica, flagged PAUSED.
    for k in 1..=3 {
        let out = s.at(T0_MS + 100 * k).cron();
        let pings = sent(&out, MsgType::Ping);
        assert!(pings
            .iter()
            .any(|p| p.0 == 0x50 && p.1.mflags == mflags::PAUSED));
    }
    // Timeout: unpaused, no more PAUSED headers.
    let out = s.at(T0_MS + 5001).cron();
    assert!(notes(&out).contains(&Note::ManualFailoverTimeout));
    assert!(!s.node.writes_paused());
    assert_eq!(s.node.header_mflags(), 0);
}

/// Replica migration layout: me (`my_id`) and R (0x60) replicate A (0x20);
/// master B (0x30) lost its replica (MIGRATE_TO set, no replicas); M
/// (0x10) never had one (no MIGRATE_TO). Cluster state ok.
fn migration(my_id: u8) -> Sim {
    let mut s = Sim::new(1, 15000, my_id);
    s.peer(0x10, MASTER, 0..5461);
    let a = s.peer(0x20, MASTER, 5461..10923);
    let b = s.peer(0x30, MASTER, 10923..16384);
    s.node.set_master(a, &mut s.out);
    let r = s.peer(0x60, SLAVE, 0..0);
    s.node.nm(r).slaveof = Some(a);
    s.node.add_slave(a, r);
    s.node.nm(b).flags |= MIGRATE_TO;
    s.node.update_state(&mut Vec::new());
    assert!(s.node.state_ok());
    s
}

/// Run crons every 100 ms for `ms`; returns my master at the end.
fn crons_for(s: &mut Sim, ms: i64) -> Option<NodeId> {
    let t0 = s.now_ms;
    for k in 1..=ms / 100 {
        s.at(t0 + 100 * k).cron();
    }
    s.node.master_id()
}

#[test]
fn replica_migrates_to_orphaned_master_after_5_s() {
    // Me (0x05) is the smallest ID among A's replicas.
    let mut s = migration(0x05);
    s.at(T0_MS + 100).cron();
    assert_eq!(s.node.master_id(), Some(id(0x20)));
    s.at(T0_MS + 5100).cron();
    assert_eq!(s.node.master_id(), Some(id(0x20)));
    s.at(T0_MS + 5101).cron();
    assert_eq!(s.node.master_id(), Some(id(0x30)));
    // With barrier 2, nobody moves.
    let mut t = migration(0x05);
    t.node.setup.config.cluster_migration_barrier = 2;
    assert_eq!(crons_for(&mut t, 10_000), Some(id(0x20)));
}

/// Only the replica with the smallest node ID among the replicas of the
/// masters with the most working replicas moves.
#[test]
fn only_the_smallest_id_replica_of_a_master_with_two_working_replicas_migrates() {
    let mut s = migration(0x65);
    assert_eq!(
        crons_for(&mut s, 10_000),
        Some(id(0x20)),
        "0x60 < 0x65 moves"
    );
    // Once R is FAIL, A has one working replica: max_slaves < 2, no move,
    // even with a migration barrier of 0.
    let mut s = migration(0x05);
    let r = s.idx(0x60);
    s.node.nm(r).flags |= FAIL;
    s.node.setup.config.cluster_migration_barrier = 0;
    assert_eq!(crons_for(&mut s, 10_000), Some(id(0x20)));
}

/// No migration while the cluster state is fail (here: M is FAIL).
#[test]
fn no_migration_while_the_cluster_state_is_fail() {
    let mut s = migration(0x05);
    let m = s.idx(0x10);
    s.node.nm(m).flags |= FAIL;
    s.node.update_state(&mut Vec::new());
    assert!(!s.node.state_ok());
    assert_eq!(crons_for(&mut s, 10_000), Some(id(0x20)));
}

/// `cluster-allow-replica-migration no`: nobody moves.
#[test]
fn no_migration_when_replica_migration_is_not_allowed() {
    let mut s = migration(0x05);
    s.node.setup.config.cluster_allow_replica_migration = false;
    assert_eq!(crons_for(&mut s, 10_000), Some(id(0x20)));
}

/// An orphan must have MIGRATE_TO (it had replicas, or took over from a
/// master that had), serve slots and not be FAIL.
#[test]
fn orphaned_master_needs_migrate_to_slots_and_no_fail() {
    type Tweak = fn(&mut Sim);
    let cases: [(&str, Tweak); 3] = [
        ("never had a replica", |s| {
            let b = s.idx(0x30);
            s.node.nm(b).flags &= !MIGRATE_TO;
        }),
        ("serves no slots", |s| {
            for j in 10923..16384 {
                s.node.del_slot(j);
            }
        }),
        ("FAIL", |s| {
            let b = s.idx(0x30);
            s.node.nm(b).flags |= FAIL;
        }),
    ];
    for (what, tweak) in cases {
        let mut s = migration(0x05);
        // Migration needs the state ok: keep it ok without B's slots.
        s.node.setup.config.cluster_require_full_coverage = false;
        tweak(&mut s);
        assert_eq!(crons_for(&mut s, 10_000), Some(id(0x20)), "{what}");
        assert!(s.node.state_ok(), "{what}");
    }
}

mod cluster;
