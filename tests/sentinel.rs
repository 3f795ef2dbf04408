//! `cluster.mode = "sentinel"`: a master, two replicas and three
//! sentinels (quorum 2, `down-after-milliseconds 5000`): a killed master
//! is replaced as real Sentinel replaces it (times against
//! `tests/data/sentinel-failover-real.json`, measured with
//! `tools/sentinel_failover_bench.py`), a sentinel cut off from the
//! others cannot start a failover, clients follow the sentinels.

mod common;
use common::*;
use redsim::engine::{SimTime, SEC};
use redsim::sim::{FailoverKind, Simulation};

/// 1 master + 2 replicas + 3 sentinels; `extra` appended (faults,
/// workloads); `[sentinel]` directives `quorum`.
fn sentinel(duration: &str, quorum: u32, extra: &str) -> String {
    format!(
        r#"duration = "{duration}"
[cluster]
mode = "sentinel"
replicas = 2
sentinels = 3
[sentinel]
quorum = {quorum}
down-after-milliseconds = 5000
failover-timeout = 10000
parallel-syncs = 1
{extra}"#
    )
}

/// The master killed at 9 s: 3–4 s after the replicas' first sync, as
/// the bench killed it a few seconds after they were in sync, so that the
/// sentinels' `INFO` of the replicas is on its 10 s period, not yet on the
/// 1 s one of a replica whose link is down (which decides when the
/// promotion is seen).
const KILL_AT_9S: &str = "[[faults]]\nat = \"9s\"\naction = \"kill\"\nnode = \"node-1\"\n";

/// The sentinels' events of `kind` by sentinel `s` (all when `None`).
fn events(sim: &Simulation, kind: &str, s: Option<u32>) -> Vec<SimTime> {
    sim.sentinel_events()
        .filter(|e| e.2 == kind && s.is_none_or(|s| e.1 == s))
        .map(|e| e.0)
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Real Sentinel's promotion and `get-master-addr-by-name` switch times.
fn real() -> (Vec<f64>, Vec<f64>) {
    let text = std::fs::read_to_string("tests/data/sentinel-failover-real.json").unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let trials = doc["trials"].as_array().unwrap();
    let promoted = trials
        .iter()
        .map(|t| t["promoted_s"].as_f64().unwrap())
        .collect();
    let switched = trials
        .iter()
        .flat_map(|t| t["switch_master_s"].as_array().unwrap().clone())
        .map(|x| x.as_f64().unwrap())
        .collect();
    (promoted, switched)
}

#[test]
fn a_killed_master_is_replaced_as_real_sentinel_replaces_it() {
    let (real_promoted, real_switched) = real();
    let (mut promoted, mut switched) = (Vec::new(), Vec::new());
    for seed in 1..=12 {
        let sim = run(&sentinel("20s", 2, KILL_AT_9S), seed);
        let f = sim.failovers();
        assert_eq!(f.len(), 1, "seed {seed}");
        assert_eq!(f[0].kind, FailoverKind::Sentinel);
        assert_eq!(f[0].failed, 0);
        let new = f[0].promoted;
        let other = 3 - new;
        assert!(new == 1 || new == 2);
        promoted.push((f[0].promoted_at - 9 * SEC) as f64 / 1e6);
        // ODOWN before the promotion, after S_DOWN.
        let odown = f[0].fail.expect("ODOWN");
        assert!(odown > 14 * SEC - SEC && odown < f[0].promoted_at);
        // Final roles: the promoted replica is master, the other replica
        // follows it, every sentinel monitors it with the new epoch.
        assert_eq!(sim.role_of(new as usize), "master");
        assert_eq!(sim.world.master_of(other), Some(new));
        assert!(sim
            .world
            .node(other)
            .unwrap()
            .replication()
            .replica
            .master_link_up());
        let addr = sim.world.procs[new as usize].addr;
        for sp in &sim.world.sentinels.procs {
            let s = sp.sentinel.as_ref().unwrap();
            assert_eq!(s.master.addr, addr, "seed {seed}");
            assert_eq!((s.current_epoch, s.master.config_epoch), (1, 1));
        }
        // When each sentinel's answer to get-master-addr-by-name changed:
        // the leader's at +promoted-slave, the others' at +switch-master.
        for s in 0..3 {
            let t = events(&sim, "+promoted-slave", Some(s))
                .into_iter()
                .chain(events(&sim, "+switch-master", Some(s)))
                .min()
                .expect("every sentinel switches");
            switched.push((t - 9 * SEC) as f64 / 1e6);
        }
        assert_eq!(events(&sim, "+elected-leader", None).len(), 1);
        assert!(sim.checks.violations().is_empty());
    }
    let (m, rm) = (median(promoted.clone()), median(real_promoted.clone()));
    let (s, rs) = (median(switched.clone()), median(real_switched.clone()));
    println!("promotion: redsim median {m:.2} s, real {rm:.2} s; switch: redsim {s:.2} s, real {rs:.2} s");
    assert!((m - rm).abs() / rm < 0.10, "promotion {m} vs {rm}");
    assert!((s - rs).abs() / rs < 0.10, "switch {s} vs {rs}");
    // Every seed within a second of the real range.
    let lo = real_promoted.iter().copied().fold(f64::MAX, f64::min) - 1.0;
    let hi = real_promoted.iter().copied().fold(0.0, f64::max) + 1.0;
    assert!(
        promoted.iter().all(|p| (lo..hi).contains(p)),
        "{promoted:?}"
    );
}

#[test]
fn a_sentinel_partitioned_from_the_others_cannot_start_a_failover() {
    let isolate = "[[faults]]\nat = \"10s\"\naction = \"isolate\"\nnode = \"sentinel-1\"\n";
    // Quorum 2: alone it never reaches O_DOWN.
    let sim = run(&sentinel("40s", 2, isolate), 3);
    assert!(!events(&sim, "+sdown", Some(0)).is_empty());
    assert!(events(&sim, "+odown", Some(0)).is_empty());
    assert!(events(&sim, "+try-failover", None).is_empty());
    // Quorum 1: O_DOWN alone, it tries, but one vote of three elects
    // nobody (max(quorum, 3/2 + 1) = 2 votes needed): aborted, retried
    // after 2 × failover-timeout, never promotes anyone.
    let sim = run(&sentinel("40s", 1, isolate), 3);
    assert!(!events(&sim, "+odown", Some(0)).is_empty());
    assert!(!events(&sim, "+try-failover", Some(0)).is_empty());
    assert!(!events(&sim, "-failover-abort-not-elected", Some(0)).is_empty());
    assert!(events(&sim, "+elected-leader", None).is_empty());
    assert!(sim.failovers().is_empty());
    assert_eq!(sim.role_of(0), "master");
    for r in [1, 2] {
        assert_eq!(sim.world.master_of(r), Some(0));
    }
}

#[test]
fn clients_ask_the_sentinels_and_follow_the_new_master() {
    let extra = format!(
        "{KILL_AT_9S}[[workload]]\nclients = 2\nrate = 200\nkeys = 1000\n[[faults]]\nat = \"30s\"\naction = \"restart\"\nnode = \"node-1\"\n"
    );
    let sim = run(&sentinel("50s", 2, &extra), 5);
    let f = sim.failovers();
    let new = f[0].promoted;
    let ops = &sim.world.clients.ops;
    // Before the kill every request goes to node-1; a second after the
    // promotion every one to the promoted replica, and succeeds.
    assert!(ops
        .iter()
        .filter(|o| o.sent < 9 * SEC)
        .all(|o| o.node == 0 && o.outcome.is_ok()));
    let after = f[0].promoted_at + SEC;
    assert!(ops
        .iter()
        .filter(|o| o.sent > after)
        .all(|o| u32::from(o.node) == new && o.outcome.is_ok()));
    // Writes fail from the kill to about the promotion.
    let down = sim.client_totals().unavailable[0];
    assert!(down > 4 * SEC && down < 7 * SEC, "{down}");
    // The old master came back as a master and was converted.
    assert!(!events(&sim, "+convert-to-slave", None).is_empty());
    assert_eq!(sim.world.master_of(0), Some(new));
    assert!(
        sim.checks.violations().is_empty(),
        "{:?}",
        sim.checks.violations()
    );
    assert!(matches!(
        sim.checks.liveness(),
        redsim::check::liveness::Status::Recovered { .. }
    ));
    let json = sim.summary(&[]);
    assert!(json["sentinel_events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["event"] == "+switch-master"));
    assert!(json["roles"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["role"] == "master"));
}

#[test]
fn a_paused_sentinel_enters_tilt_when_resumed() {
    let pause = "[[faults]]\nat = \"10s\"\naction = \"pause\"\nnode = \"sentinel-2\"\n[[faults]]\nat = \"14s\"\naction = \"resume\"\nnode = \"sentinel-2\"\n";
    let sim = run(&sentinel("20s", 2, pause), 1);
    let tilt = events(&sim, "+tilt", Some(1));
    assert_eq!(tilt, vec![14 * SEC]);
    assert!(sim.world.sentinels.procs[1].sentinel.as_ref().unwrap().tilt);
}

#[test]
fn an_old_master_cut_off_with_its_clients_loses_their_writes_with_an_explanation() {
    // node-1 and the clients on one side, the replicas and sentinels on
    // the other: the sentinels promote a replica, node-1 keeps taking
    // writes until it is converted after the heal.
    let extra = r#"[[workload]]
clients = 2
rate = 500
keys = 1000
[[faults]]
at = "10s"
action = "partition"
groups = [["node-1", "clients"], ["rest"]]
[[faults]]
at = "25s"
action = "heal"
"#;
    let sim = run(&sentinel("45s", 2, extra), 3);
    assert_eq!(sim.failovers().len(), 1);
    assert!(!events(&sim, "+convert-to-slave", None).is_empty());
    let t = sim.client_totals();
    assert!(t.lost > 100, "{}", t.lost);
    let lost = sim.checks.lost_writes();
    assert_eq!(lost.unexplained, 0);
    assert_eq!(lost.total(), t.lost);
    assert!(sim.checks.violations().is_empty());
}

#[test]
fn without_a_majority_of_sentinels_nothing_fails_over() {
    let faults = r#"[[faults]]
at = "5s"
action = "kill"
node = "sentinel-2"
[[faults]]
at = "5s"
action = "crash-host"
host = "host-6"
[[faults]]
at = "15s"
action = "kill"
node = "node-1"
"#;
    // host-6 is sentinel-3's (the nodes are on host-1 ... host-3).
    let sim = run(&sentinel("40s", 1, faults), 2);
    assert_eq!(sim.world.sentinels_running(), 1);
    // Quorum 1: the last sentinel sees O_DOWN alone but is never elected.
    assert!(!events(&sim, "+odown", Some(0)).is_empty());
    assert!(events(&sim, "+elected-leader", None).is_empty());
    assert!(sim.failovers().is_empty());
    let json = sim.summary(&[]);
    assert_eq!(json["invariants"]["liveness"]["status"], "not-applicable");
}
