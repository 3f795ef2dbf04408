//! Failover end to end in a 3+3 cluster (node-1..3 masters; node-4, node-5,
//! node-6 replicate node-3, node-1, node-2): two masters lost at once, and
//! `CLUSTER FAILOVER` in its three modes, against Redis 7.0.15.

mod common;
use common::*;
use redsim::engine::{SimTime, MS, SEC};
use redsim::node::{FailoverMode, Note, CRON_PERIOD};
use redsim::sim::{FailoverKind, Simulation};
use redsim::world::HistoryKind;

/// Node timeout of these runs: auth timeout max(2 NT, 2000) = 10 s, retry
/// time 20 s.
const NT: u64 = 5000;

/// A message between two nodes at the default network (200 µs latency,
/// 1 Gbit/s) arrives well within this.
const HOP: SimTime = MS;

fn is_fail_flag(n: &Note) -> bool {
    matches!(
        n,
        Note::Pfail { .. } | Note::FailMarked { .. } | Note::FailReceived { .. }
    )
}

fn mf_timeouts(sim: &Simulation, p: u32) -> Vec<SimTime> {
    notes_at(sim, p, |n| *n == Note::ManualFailoverTimeout)
}

fn elections_started(sim: &Simulation, p: u32) -> Vec<SimTime> {
    notes_at(sim, p, |n| matches!(n, Note::ElectionStarted { .. }))
}

fn all_ok(sim: &Simulation) -> bool {
    sim.world
        .procs
        .iter()
        .filter_map(|p| p.node.as_ref())
        .all(|n| n.state_ok())
}

/// `CLUSTER FAILOVER` (default) to node-5 with its master up: MFSTART, the
/// master pauses writes and pings its offset flagged PAUSED, the replica
/// (already at that offset) asks for votes at once with FORCEACK, and the
/// masters vote although node-1 is not FAIL. No PFAIL or FAIL is involved
/// anywhere; the new config epoch is current_epoch + 1 = 7; node-1 learns
/// from node-5's PONG that its slots moved and becomes its replica (which
/// also ends its write pause).
///
/// Time: four one-way messages (MFSTART, PAUSED PING, AUTH_REQUEST,
/// AUTH_ACK) and no election delay. Redis may also wait for one more turn of
/// its event loop between "manual failover can start" and the vote request
/// (at most until the next cron): within one cron period plus four hops,
/// far below the 500 ms minimum delay of an automatic election.
#[test]
fn default_manual_failover_is_quick_and_needs_no_fail_flag() {
    let at = 15 * SEC;
    let toml = cluster_3x3(NT, "40s", &failover("15s", "node-5", "default"));
    for seed in 1..=5 {
        let sim = run(&toml, seed);
        let f = sim.failovers();
        assert_eq!(f.len(), 1, "seed {seed}: {f:?}");
        let f = &f[0];
        assert_eq!((f.failed, f.promoted), (0, 4));
        assert_eq!(f.kind, FailoverKind::Manual(FailoverMode::Default));
        assert_eq!(sim.summary(&[])["failovers"][0]["kind"], "manual");
        assert_eq!(f.config_epoch, 7);
        assert_eq!((f.died, f.fail), (None, None));
        let took = f.promoted_at - at;
        assert!(took <= CRON_PERIOD + 4 * HOP, "seed {seed}: {took} µs");
        for obs in 0..6 {
            assert!(
                notes(&sim, obs, 0, is_fail_flag).is_empty(),
                "seed {seed}: node-{} flagged node-1",
                obs + 1
            );
        }
        let old = sim.world.node(0).unwrap();
        assert!(!old.is_master());
        assert_eq!(master_of(&sim, 0), Some(4));
        assert!(!old.writes_paused(), "unpaused when it became a replica");
        assert!(!old.manual_failover_in_progress());
        let new = sim.world.node(4).unwrap();
        assert!(new.is_master());
        assert_eq!(new.current_epoch, 7);
        let line = new
            .cluster_nodes()
            .lines()
            .find(|l| l.contains("myself"))
            .unwrap()
            .to_string();
        assert!(line.ends_with(" 7 connected 0-5460"), "{line}");
        let info = sim.cluster_info(4).unwrap();
        assert_eq!(
            info_field(&info, "cluster_stats_messages_mfstart_sent"),
            Some("1".into())
        );
        assert!(all_ok(&sim), "seed {seed}");
    }
}

/// FORCE with the master alive: no MFSTART, no pause, no offset agreement;
/// the replica's next cron asks for votes at once (FORCEACK) and wins with
/// a majority. Then again with the master killed but not yet FAIL (1 s
/// after the kill, NT = 5 s): the masters still vote thanks to FORCEACK.
#[test]
fn force_needs_no_handshake_and_works_before_the_master_is_fail() {
    let at = 15 * SEC;
    let alive = cluster_3x3(NT, "40s", &failover("15s", "node-5", "force"));
    let dead = cluster_3x3(
        NT,
        "40s",
        &format!(
            "{}{}",
            fault("14s", "kill", "node-1"),
            failover("15s", "node-5", "force")
        ),
    );
    for seed in 1..=5 {
        for (toml, killed) in [(&alive, false), (&dead, true)] {
            let sim = run(toml, seed);
            let ctx = format!("seed {seed}, killed {killed}");
            let f = sim.failovers();
            assert_eq!(f.len(), 1, "{ctx}: {f:?}");
            let f = &f[0];
            assert_eq!((f.failed, f.promoted), (0, 4), "{ctx}");
            assert_eq!(f.kind, FailoverKind::Manual(FailoverMode::Force));
            assert_eq!(f.config_epoch, 7, "{ctx}");
            assert_eq!(f.fail, None, "{ctx}: no FAIL before the promotion");
            // The next cron of node-5, then AUTH_REQUEST and AUTH_ACK.
            let took = f.promoted_at - at;
            assert!(took <= CRON_PERIOD + 2 * HOP, "{ctx}: {took} µs");
            let info = sim.cluster_info(4).unwrap();
            assert_eq!(
                info_field(&info, "cluster_stats_messages_mfstart_sent"),
                None,
                "{ctx}"
            );
            for voter in [1, 2] {
                assert_eq!(
                    notes(&sim, voter, 4, |n| matches!(n, Note::VoteGranted { .. })).len(),
                    1,
                    "{ctx}"
                );
            }
            if killed {
                assert_eq!(f.died, Some(14 * SEC));
            } else {
                assert_eq!(master_of(&sim, 0), Some(4), "{ctx}");
                assert!(all_ok(&sim), "{ctx}");
            }
        }
    }
}

/// TAKEOVER: no election, no votes; the replica bumps its config epoch
/// without consensus (current_epoch + 1 = 7) and takes the slots in the
/// command itself. The old master becomes its replica when the PONG
/// arrives.
#[test]
fn takeover_takes_the_slots_at_once_without_votes() {
    let at = 15 * SEC;
    let toml = cluster_3x3(NT, "40s", &failover("15s", "node-5", "takeover"));
    for seed in 1..=5 {
        let sim = run(&toml, seed);
        let f = sim.failovers();
        assert_eq!(f.len(), 1, "seed {seed}");
        assert_eq!((f[0].failed, f[0].promoted), (0, 4));
        assert_eq!(f[0].kind, FailoverKind::Manual(FailoverMode::Takeover));
        assert_eq!(f[0].config_epoch, 7);
        assert_eq!(f[0].promoted_at, at, "in the command itself");
        assert!(elections_started(&sim, 4).is_empty());
        for voter in [0, 1, 2] {
            assert!(notes_at(&sim, voter, |n| matches!(n, Note::VoteGranted { .. })).is_empty());
        }
        assert_eq!(master_of(&sim, 0), Some(4), "seed {seed}");
        assert!(all_ok(&sim), "seed {seed}");
    }
}

/// Two of the three masters (node-1, node-2) killed at the same moment,
/// their replicas alive. What Redis 7.0.15 says:
///
/// - The dead masters still own their slots, so the cluster size stays 3
///   and every quorum is 2.
/// - PFAIL → FAIL (`markNodeAsFailingIfNeeded`) needs 2 masters' opinions:
///   node-3 counts itself plus failure reports, and reports only come from
///   masters — the dead ones. node-3 has 1, a replica (which does not count
///   itself) 1 report. So node-1 and node-2 stay `master,fail?` forever,
///   on every survivor.
/// - A replica only starts an election when its master is FAIL
///   (`clusterHandleSlaveFailover`'s preconditions), so node-5 and node-6
///   never even ask (and would get node-3's vote only: 1 of 2).
/// - `clusterUpdateState`: PFAIL does not uncover slots (only FAIL does),
///   but fewer than size/2 + 1 reachable slot-owning masters makes the state
///   fail (the minority rule). That happens on every survivor when the
///   second dead master turns PFAIL in its view. `CLUSTER INFO` then says
///   `cluster_state:fail`, 16384 slots assigned, 5461 ok (node-3's),
///   10923 pfail, 0 fail, size 3, current epoch 6 — and stays so: clients
///   get CLUSTERDOWN until an operator steps in (TAKEOVER, below).
#[test]
fn two_masters_killed_together_no_failover_wins_and_the_cluster_stays_down() {
    let kills = format!(
        "{}{}",
        fault("15s", "kill", "node-1"),
        fault("15s", "kill", "node-2")
    );
    let toml = cluster_3x3(NT, "120s", &kills);
    for seed in 1..=4 {
        let sim = run(&toml, seed);
        assert!(sim.failovers().is_empty(), "seed {seed}");
        for p in 2..6u32 {
            let ctx = format!("seed {seed}, node-{}", p + 1);
            assert!(elections_started(&sim, p).is_empty(), "{ctx}");
            assert!(notes_at(&sim, p, |n| matches!(n, Note::ElectionScheduled { .. })).is_empty());
            let pf: Vec<SimTime> = (0..2)
                .map(|dead| first_pfail(&sim, p, dead).expect("flagged fail?"))
                .collect();
            for dead in 0..2 {
                assert_eq!(first_fail(&sim, p, dead), None, "{ctx}: FAIL");
            }
            // Down when the second dead master turned PFAIL, for good.
            let changes = state_changes(&sim, p);
            let down: Vec<_> = changes.iter().filter(|c| c.0 > 15 * SEC).collect();
            assert_eq!(down, [&(*pf.iter().max().unwrap(), false)], "{ctx}");
            let info = sim.cluster_info(p as usize).unwrap();
            for (k, v) in [
                ("cluster_state", "fail"),
                ("cluster_slots_assigned", "16384"),
                ("cluster_slots_ok", "5461"),
                ("cluster_slots_pfail", "10923"),
                ("cluster_slots_fail", "0"),
                ("cluster_known_nodes", "6"),
                ("cluster_size", "3"),
                ("cluster_current_epoch", "6"),
            ] {
                assert_eq!(info_field(&info, k).as_deref(), Some(v), "{ctx}: {k}");
            }
            let nodes = sim.cluster_nodes(p as usize).unwrap();
            for (addr, slots) in [("10.0.0.1", "0-5460"), ("10.0.0.2", "5461-10922")] {
                let line = nodes.lines().find(|l| l.contains(addr)).unwrap();
                assert!(line.contains(" master,fail? "), "{ctx}: {line}");
                assert!(line.ends_with(&format!(" disconnected {slots}")), "{line}");
            }
        }
        assert!(sim.world.node(2).unwrap().is_master());
        for r in [4, 5] {
            assert!(!sim.world.node(r).unwrap().is_master());
        }
    }
}

/// The same two kills 15 s apart: node-1 is FAIL (two masters agree) and
/// node-5 replaces it before node-2 dies; then node-3 and node-5 are the
/// majority that marks node-2 FAIL and elects node-6.
#[test]
fn two_masters_killed_apart_fail_over_one_after_the_other() {
    let kills = format!(
        "{}{}",
        fault("15s", "kill", "node-1"),
        fault("30s", "kill", "node-2")
    );
    let toml = cluster_3x3(NT, "60s", &kills);
    for seed in 1..=4 {
        let sim = run(&toml, seed);
        let f = sim.failovers();
        let got: Vec<_> = f
            .iter()
            .map(|f| (f.failed, f.promoted, f.kind, f.config_epoch))
            .collect();
        let auto = FailoverKind::Automatic;
        assert_eq!(got, [(0, 4, auto, 7), (1, 5, auto, 8)], "seed {seed}");
        assert!(f[0].promoted_at < 30 * SEC, "seed {seed}");
        for voter in [2, 4] {
            assert!(!notes(&sim, voter, 5, |n| matches!(n, Note::VoteGranted { .. })).is_empty());
        }
        assert!(all_ok(&sim), "seed {seed}");
    }
}

/// With two of three masters dead, FORCE cannot win: only node-3 votes (1 of
/// the 2 needed) and the manual failover times out 5 s later. TAKEOVER needs
/// no votes: node-5 takes node-1's slots with epoch 7; now node-3 and node-5
/// are two reachable masters, their reports make node-2 FAIL and node-6 wins
/// an ordinary election (epoch 8): the cluster is ok again.
#[test]
fn with_two_masters_dead_force_gets_no_majority_but_takeover_works() {
    let kills = format!(
        "{}{}",
        fault("15s", "kill", "node-1"),
        fault("15s", "kill", "node-2")
    );
    for seed in 1..=4 {
        let force = cluster_3x3(
            NT,
            "60s",
            &format!("{kills}{}", failover("30s", "node-5", "force")),
        );
        let sim = run(&force, seed);
        assert!(sim.failovers().is_empty(), "seed {seed}");
        let asked = elections_started(&sim, 4);
        assert_eq!(asked.len(), 1, "seed {seed}");
        assert!(asked[0] <= 30 * SEC + CRON_PERIOD);
        assert_eq!(
            notes(&sim, 2, 4, |n| matches!(n, Note::VoteGranted { .. })).len(),
            1
        );
        let t = mf_timeouts(&sim, 4);
        assert_eq!(t.len(), 1, "seed {seed}");
        assert!((35 * SEC..=35 * SEC + CRON_PERIOD).contains(&t[0]));
        assert!(!all_ok(&sim));

        let takeover = cluster_3x3(
            NT,
            "60s",
            &format!("{kills}{}", failover("30s", "node-5", "takeover")),
        );
        let sim = run(&takeover, seed);
        let f = sim.failovers();
        let got: Vec<_> = f
            .iter()
            .map(|f| (f.failed, f.promoted, f.kind, f.config_epoch))
            .collect();
        let take = FailoverKind::Manual(FailoverMode::Takeover);
        let auto = FailoverKind::Automatic;
        assert_eq!(got, [(0, 4, take, 7), (1, 5, auto, 8)], "seed {seed}");
        assert_eq!(f[0].promoted_at, 30 * SEC);
        let node2_fail = first_fail(&sim, 2, 1).expect("node-2 FAIL after the takeover");
        assert!(node2_fail >= 30 * SEC);
        assert!(all_ok(&sim), "seed {seed}");
    }
}

/// CLUSTER FAILOVER to a master, and the default mode while the master is
/// FAIL, are refused (the world records the error reply as a warning);
/// FORCE then works. node-5 has `cluster-replica-no-failover yes` here so
/// that node-1 stays FAIL and unreplaced until the operator acts.
#[test]
fn failover_errors_are_reported_and_force_works_on_a_failed_master() {
    let faults = format!(
        "{}{}{}{}",
        failover("12s", "node-1", "default"),
        fault("15s", "kill", "node-1"),
        failover("40s", "node-5", "default"),
        failover("41s", "node-5", "force"),
    );
    let toml = format!(
        "{}\n[node.node-5.config]\ncluster-replica-no-failover = \"yes\"\n",
        cluster_3x3(NT, "60s", &faults)
    );
    let sim = run(&toml, 1);
    assert_eq!(
        sim.world.warnings,
        [
            "fault 0 at 12.000s: CLUSTER FAILOVER to node-1: -ERR You should send CLUSTER FAILOVER to a replica",
            "fault 2 at 40.000s: CLUSTER FAILOVER to node-5: -ERR Master is down or failed, please use CLUSTER FAILOVER FORCE",
        ]
    );
    let fail = first_fail(&sim, 4, 0).expect("node-5 saw node-1 FAIL");
    assert!(fail < 40 * SEC);
    let f = sim.failovers();
    assert_eq!(f.len(), 1);
    assert_eq!((f[0].failed, f[0].promoted), (0, 4));
    assert_eq!(f[0].kind, FailoverKind::Manual(FailoverMode::Force));
    assert!(f[0].promoted_at > 41 * SEC && f[0].promoted_at <= 41 * SEC + CRON_PERIOD + 2 * HOP);
    assert!(all_ok(&sim));
}

/// node-5 fails over manually at 15 s (its election: epoch 7), node-1 fails
/// back at 20 s (node-1's first election: epoch 8), then node-5 is asked
/// again at `again`, and once more at 36 s.
fn fail_over_fail_back_and_again(again: &str) -> String {
    let faults = [
        failover("15s", "node-5", "default"),
        failover("20s", "node-1", "default"),
        failover(again, "node-5", "default"),
        failover("36s", "node-5", "default"),
    ];
    cluster_3x3(NT, "50s", &faults.concat())
}

fn run_steps(toml: &str, seed: u64) -> Simulation {
    Simulation::new(scenario(toml), seed).expect("runnable")
}

/// Issue 3: "a second manual failover on the same replica soon after does
/// nothing". `clusterHandleSlaveFailover` schedules a new election only
/// `auth_retry_time` = 2 × max(2 NT, 2000) = 20 s after the replica's
/// previous one, and the failback by node-1 does not help: node-1 had no
/// election before, node-5 did at 15 s. At 27 s that election is expired
/// (older than the 10 s auth timeout) and no new one may start, so nothing
/// happens but the master pausing its writes; both ends log "Manual failover
/// timed out" 5 s later. At 36 s (21 s after) it works again, epoch 9.
#[test]
fn second_manual_failover_before_the_retry_time_does_nothing_and_times_out() {
    let toml = fail_over_fail_back_and_again("27s");
    for seed in 1..=4 {
        let mut sim = run_steps(&toml, seed);
        sim.run_until(28 * SEC, &mut ());
        assert!(sim.world.node(0).unwrap().writes_paused(), "seed {seed}");
        assert!(sim.world.node(4).unwrap().manual_failover_in_progress());
        sim.run_until(50 * SEC, &mut ());
        let got: Vec<_> = sim
            .failovers()
            .iter()
            .map(|f| (f.failed, f.promoted, f.config_epoch, f.promoted_at / SEC))
            .collect();
        assert_eq!(
            got,
            [(0, 4, 7, 15), (4, 0, 8, 20), (0, 4, 9, 36)],
            "seed {seed}"
        );
        let asked = elections_started(&sim, 4);
        assert_eq!(asked.len(), 2, "seed {seed}: {asked:?}");
        assert!(asked[1] >= 36 * SEC);
        for p in [0, 4] {
            let t = mf_timeouts(&sim, p);
            assert_eq!(t.len(), 1, "seed {seed}: node-{}", p + 1);
            assert!((32 * SEC..=32 * SEC + CRON_PERIOD).contains(&t[0]));
        }
        assert_eq!(master_of(&sim, 0), Some(4));
        assert!(all_ok(&sim), "seed {seed}");
    }
}

/// The same within the auth timeout (24 s, 9 s after node-5's election):
/// Redis 7.0.15 keeps `failover_auth_sent` and `failover_auth_count` of
/// that election (they are reset only when a new one is scheduled), so as
/// soon as the paused offset is reached node-5 finds "the quorum" and
/// declares itself the winner without asking anyone (redis/redis#8752,
/// fix #8753 never merged). Its config epoch is still 7, below node-1's 8:
/// the others keep node-1 as the owner (their UPDATEs are ignored by
/// node-5, which already knows node-1's epoch 8), and node-1's next PING —
/// it pings its manual-failover replica every cron — claims the slots with
/// epoch 8, so node-5 gives them back and replicates node-1 again within a
/// cron period. node-1 stays paused until its own manual-failover timeout.
#[test]
fn second_manual_failover_within_the_auth_timeout_reuses_the_stale_votes() {
    let toml = fail_over_fail_back_and_again("24s");
    for seed in 1..=4 {
        let mut sim = run_steps(&toml, seed);
        sim.run_until(24 * SEC + CRON_PERIOD + 4 * HOP, &mut ());
        let got: Vec<_> = sim
            .failovers()
            .iter()
            .map(|f| (f.failed, f.promoted, f.config_epoch))
            .collect();
        assert_eq!(got, [(0, 4, 7), (4, 0, 8), (0, 4, 7)], "seed {seed}");
        assert_eq!(elections_started(&sim, 4).len(), 1, "no new election");
        let stale = sim.failovers()[2].promoted_at;
        sim.run_until(stale + CRON_PERIOD + HOP, &mut ());
        assert!(!sim.world.node(4).unwrap().is_master(), "seed {seed}");
        assert_eq!(master_of(&sim, 4), Some(0));
        assert_eq!(sim.owner_seen_by_majority(0), Some(0));
        assert!(sim
            .world
            .procs
            .iter()
            .all(|p| p.node.as_ref().unwrap().current_epoch == 8));
        assert!(sim.world.node(0).unwrap().writes_paused());
        sim.run_until(30 * SEC, &mut ());
        let t = mf_timeouts(&sim, 0);
        assert_eq!(t.len(), 1, "seed {seed}");
        assert!((29 * SEC..=29 * SEC + CRON_PERIOD).contains(&t[0]));
        assert!(!sim.world.node(0).unwrap().writes_paused());
        assert!(
            mf_timeouts(&sim, 4).is_empty(),
            "reset when it became a replica"
        );
        // 36 s is 21 s after node-5's last election: a real one, epoch 9.
        sim.run_until(50 * SEC, &mut ());
        let last = sim.failovers().last().cloned().unwrap();
        assert_eq!((last.promoted, last.config_epoch), (4, 9), "seed {seed}");
        assert!(all_ok(&sim), "seed {seed}");
    }
}

/// Two replicas of the killed master (9 nodes, 2 replicas each; node-5 and
/// node-6 replicate node-1). Replication is not simulated, so their offsets
/// are equal: both have rank 0 and only the random 0–500 ms decides who asks
/// first (either wins on some seed). The winner gets the two remaining
/// masters' votes (each votes once) with epoch current_epoch + 1 = 10, and
/// the other replica, on the winner's PONG, becomes its replica. (Unequal
/// offsets — the better one always wins — are tested on the node harness
/// in `src/node/election/tests/cluster.rs`.)
#[test]
fn two_replicas_at_equal_offsets_one_wins_the_other_follows_it() {
    let toml = format!(
        "duration = \"40s\"\n[cluster]\nnodes = 9\nreplicas = 2\n[config]\ncluster-node-timeout = {NT}\n{}",
        fault("15s", "kill", "node-1")
    );
    let mut winners = std::collections::BTreeSet::new();
    for seed in 1..=10 {
        let mut sim = run_steps(&toml, seed);
        sim.run_until(14 * SEC, &mut ());
        assert_eq!((master_of(&sim, 4), master_of(&sim, 5)), (Some(0), Some(0)));
        sim.run_until(40 * SEC, &mut ());
        let f = sim.failovers();
        assert_eq!(f.len(), 1, "seed {seed}: {f:?}");
        assert_eq!((f[0].failed, f[0].config_epoch), (0, 10), "seed {seed}");
        let winner = f[0].promoted;
        let loser = if winner == 4 { 5 } else { 4 };
        assert!([4, 5].contains(&winner), "seed {seed}");
        winners.insert(winner);
        assert_eq!(master_of(&sim, loser), Some(winner), "seed {seed}");
        for r in [4, 5] {
            let ranks: Vec<_> = sim
                .world
                .history
                .iter()
                .filter_map(|h| match h.kind {
                    HistoryKind::Note {
                        note: Note::ElectionScheduled { rank, .. },
                        ..
                    } if h.proc == Some(r) => Some(rank),
                    _ => None,
                })
                .collect();
            assert_eq!(ranks, [0], "seed {seed}: node-{}", r + 1);
        }
        for voter in [1, 2] {
            let votes = notes_at(&sim, voter, |n| matches!(n, Note::VoteGranted { .. }));
            assert_eq!(votes.len(), 1, "seed {seed}: node-{}", voter + 1);
        }
        assert!(all_ok(&sim), "seed {seed}");
    }
    assert_eq!(winners.len(), 2, "both replicas win on some seed");
}
