//! The sentinel's rules one at a time, driven by hand.

use super::*;
use crate::engine::{actor_rng, Actor, SEC};

fn addr(h: u8, port: u16) -> Addr {
    Addr::new([10, 0, 0, h], port)
}

fn spec(quorum: u32) -> SentinelSpec {
    SentinelSpec {
        quorum,
        down_after_ms: 5000,
        failover_timeout_ms: 10_000,
        parallel_syncs: 1,
        sentinels: Vec::new(),
    }
}

fn sentinel(quorum: u32) -> Sentinel {
    let rng = actor_rng(1, Actor::Node(9));
    Sentinel::new(addr(9, 26379), addr(1, 6379), &spec(quorum), None, rng, 0)
}

fn id(b: u8) -> NodeId {
    NodeId([b; 20])
}

fn ask(s: &mut Sentinel, epoch: u64, runid: NodeId) -> Reply {
    let cmd = Cmd::IsMasterDownByAddr {
        master: addr(1, 6379),
        current_epoch: epoch,
        runid: Some(runid),
    };
    s.command(SEC, cmd, &mut Vec::new())
}

#[test]
fn a_sentinel_votes_once_per_epoch() {
    let mut s = sentinel(2);
    let vote = |r: Reply| match r {
        Reply::IsMasterDown {
            leader,
            leader_epoch,
            down,
        } => (leader, leader_epoch, down),
        other => panic!("{other:?}"),
    };
    assert_eq!(vote(ask(&mut s, 1, id(1))), (Some(id(1)), 1, false));
    // Another candidate in the same epoch gets the first one's name.
    assert_eq!(vote(ask(&mut s, 1, id(2))), (Some(id(1)), 1, false));
    assert_eq!(s.current_epoch, 1);
    // A new epoch, a new vote.
    assert_eq!(vote(ask(&mut s, 2, id(2))), (Some(id(2)), 2, false));
    // Voting for another delays my own try (failover_start_time).
    assert!(s.master.failover_start_time >= 1000);
}

#[test]
fn the_leader_needs_a_majority_of_the_sentinels_and_the_quorum() {
    let mut s = sentinel(1);
    for b in 2..=3 {
        let mut i = Instance::new(SRI_SENTINEL, addr(b + 10, 26379), 0);
        i.runid = Some(id(b));
        s.sentinels.push(i);
    }
    s.master.flags |= SRI_O_DOWN;
    s.current_epoch = 1;
    // Only my own vote: 1 of 3 voters, below 3/2 + 1 = 2 even with quorum 1.
    assert_eq!(s.get_leader(1, &mut Vec::new()), None);
    // One other sentinel voted for me in this epoch: elected.
    s.sentinels[0].leader = Some(s.myid);
    s.sentinels[0].leader_epoch = 1;
    assert_eq!(s.get_leader(1, &mut Vec::new()), Some(s.myid));
}

#[test]
fn the_replica_to_promote_is_chosen_by_priority_offset_then_run_id() {
    let mut s = sentinel(2);
    s.now = 10_000;
    let mk = |h: u8, priority: u32, offset: i64, runid: u8| {
        let mut i = Instance::new(SRI_SLAVE, addr(h, 6379), 10_000);
        i.link.disconnected = false;
        i.info_refresh = 10_000;
        i.slave_priority = priority;
        i.slave_repl_offset = offset;
        i.runid = Some(id(runid));
        i
    };
    s.slaves = vec![
        mk(2, 100, 500, 1),
        mk(3, 100, 900, 9),
        mk(4, 100, 900, 5),
        mk(5, 0, 9999, 0),
    ];
    // Equal priority: the greatest offset, then the smaller run id;
    // priority 0 never.
    assert_eq!(s.select_slave(), Some(2));
    s.slaves[0].slave_priority = 10;
    assert_eq!(s.select_slave(), Some(0));
    // With the master S_DOWN (INFO every second), a replica whose INFO
    // is older than 5 s is left out.
    s.master.flags |= SRI_S_DOWN;
    s.master.s_down_since_time = 10_000;
    s.slaves[0].info_refresh = 4_000;
    assert_eq!(s.select_slave(), Some(2));
}

#[test]
fn in_tilt_a_sentinel_answers_that_the_master_is_not_down() {
    let mut s = sentinel(2);
    s.master.flags |= SRI_S_DOWN;
    let down = |s: &mut Sentinel| match s.command(
        SEC,
        Cmd::IsMasterDownByAddr {
            master: addr(1, 6379),
            current_epoch: 0,
            runid: None,
        },
        &mut Vec::new(),
    ) {
        Reply::IsMasterDown { down, .. } => down,
        other => panic!("{other:?}"),
    };
    assert!(down(&mut s));
    // A timer 3 s after the previous one: TILT.
    let mut out = Vec::new();
    s.handle(3 * SEC, Input::Timer, &mut out);
    assert!(s.tilt);
    assert!(out
        .iter()
        .any(|e| matches!(e, Effect::Event(Event { kind: "+tilt", .. }))));
    assert!(!down(&mut s));
}
