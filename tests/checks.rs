//! The invariant checks (`src/check/`) on whole runs: silent on the bundled
//! scenarios, liveness judged only when Redis can recover on its own, and
//! violations reported, with their context, when a test breaks a node.

mod common;
use common::*;

use redsim::check::liveness::{self, Status};
use redsim::check::NAMES;
use redsim::engine::{MS, SEC};
use redsim::node::render::ConfFile;
use redsim::sim::Simulation;

fn kill(at: &str, node: &str) -> String {
    fault(at, "kill", node)
}

fn sim_of(toml: &str, seed: u64) -> Simulation {
    Simulation::new(scenario(toml), seed).unwrap()
}

/// The replica of node-1 in the 3+3 layout.
fn replica_of_node_1(sim: &Simulation) -> u32 {
    (0..6)
        .find(|&p| master_of(sim, p) == Some(0))
        .expect("node-1 has a replica")
}

/// The bound of a 3+3 cluster with node timeout 5 s and the default
/// latency (200 µs).
fn bound_5s() -> u64 {
    liveness::bound(5000, 1, 200)
}

/// Every bundled scenario, seeds 1 to 5: no violation, and the cluster
/// converged within the bound after the last fault.
/// (`scenarios/redis-suite/*` are held to the same by tests/redis_suite.rs:
/// their expectations include "invariants hold".)
#[test]
fn bundled_scenarios_hold_every_check_with_several_seeds() {
    for entry in std::fs::read_dir("scenarios").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let s = redsim::scenario::load(&path).unwrap();
        for seed in 1..=5 {
            let mut sim = Simulation::new(s.clone(), seed).unwrap();
            sim.run(&mut ());
            let what = format!("{} seed {seed}", path.display());
            assert!(
                sim.checks.violations().is_empty(),
                "{what}: {:?}",
                sim.checks.violations()
            );
            assert!(
                matches!(sim.checks.liveness(), Status::Recovered { .. }),
                "{what}: {:?}",
                sim.checks.liveness()
            );
        }
    }
}

#[test]
fn a_healed_partition_converges_within_the_bound() {
    let toml = cluster_3x3(
        5000,
        "70s",
        &format!(
            "{}[[faults]]\nat = \"30s\"\naction = \"heal\"\n",
            fault("10s", "isolate", "node-1")
        ),
    );
    let sim = run(&toml, 5);
    assert!(sim.checks.violations().is_empty());
    let Status::Recovered {
        cause,
        since,
        at,
        bound,
    } = sim.checks.liveness().clone()
    else {
        panic!("{:?}", sim.checks.liveness())
    };
    assert_eq!(cause, "heal at 30.000s");
    assert_eq!((since, bound), (30 * SEC, bound_5s()));
    assert!(at > since && at - since < bound, "{at}");
    assert!(all_running_and_ok(&sim));
}

/// Two of three masters killed for good: no majority to fail them over, so
/// nothing is owed, and nothing is reported though the cluster stays down.
#[test]
fn liveness_is_not_judged_when_two_of_three_masters_are_gone() {
    let toml = cluster_3x3_conf(
        5000,
        "60s",
        "cluster-replica-no-failover = \"yes\"",
        &format!("{}{}", kill("10s", "node-1"), kill("10s", "node-2")),
    );
    let mut sim = sim_of(&toml, 1);
    let results = sim.run(&mut ());
    assert_eq!(
        *sim.checks.liveness(),
        Status::NotApplicable {
            cause: "kill node-2 at 10.000s".into(),
            reason:
                "only 1 of 3 masters are running, fewer than the 2 needed to fail the others over"
                    .into()
        }
    );
    assert!(sim.checks.violations().is_empty());
    assert_eq!(results.last().unwrap().ok, Some(true));
    assert!(sim.world.node(2).is_some_and(|n| !n.state_ok()));
}

/// One master killed: recoverable when its replica may fail over, not
/// when it has `cluster-replica-no-failover yes`.
#[test]
fn liveness_needs_a_replica_that_may_fail_over() {
    let judged = |config: &str| {
        let toml = cluster_3x3_conf(5000, "60s", config, &kill("10s", "node-1"));
        run(&toml, 1).checks.liveness().clone()
    };
    assert!(matches!(
        judged(""),
        Status::Recovered { since, at, .. } if since == 10 * SEC && at < 20 * SEC
    ));
    assert_eq!(
        judged("cluster-replica-no-failover = \"yes\""),
        Status::NotApplicable {
            cause: "kill node-1 at 10.000s".into(),
            reason: "node-1 is down and has no running replica that may fail over".into()
        }
    );
}

/// A run that ends before the bound without having converged owes
/// nothing yet: unknown, not a violation.
#[test]
fn a_run_ending_before_the_bound_is_unknown() {
    let mut sim = sim_of(&cluster_3x3(5000, "12s", &kill("10s", "node-1")), 1);
    let results = sim.run(&mut ());
    assert_eq!(
        *sim.checks.liveness(),
        Status::Unknown {
            cause: "kill node-1 at 10.000s".into(),
            deadline: 10 * SEC + bound_5s()
        }
    );
    assert!(sim.checks.violations().is_empty());
    assert_eq!(results.last().unwrap().ok, Some(true));
}

/// node-1 dies and its replica never fails over: a wrong `masterauth` kept
/// every replica from ever syncing with its master, so its data is ages old
/// (link down since 1970) and Redis's data-age test refuses the failover.
/// Redis cannot recover on its own: not a liveness obligation.
#[test]
fn a_replica_that_never_synced_makes_a_dead_master_not_applicable() {
    let never_synced = "requirepass = \"secret\"\nmasterauth = \"wrong\"";
    let mut sim = sim_of(
        &cluster_3x3_conf(5000, "60s", never_synced, &kill("10s", "node-1")),
        1,
    );
    sim.run(&mut ());
    let r = replica_of_node_1(&sim);
    let replica = &sim.world.node(r).unwrap().replication().replica;
    assert!(!replica.master_link_up());
    assert_eq!(replica.repl_down_since_ms(), 0);
    assert!(sim.checks.violations().is_empty());
    match sim.checks.liveness() {
        Status::NotApplicable { cause, reason } => {
            assert_eq!(cause, "kill node-1 at 10.000s");
            assert_eq!(
                reason,
                "node-1 is down and has no running replica that may fail over"
            );
        }
        other => panic!("{other:?}"),
    }
}

/// Three masters without replicas; node-1 is paused from 10 s to 20 s, long
/// enough to be flagged FAIL, and every node keeps that flag forever (the
/// planted `keep-fail` bug): a recoverable cluster that never converges.
fn cluster_that_does_not_converge(expect: &str) -> (Simulation, Vec<redsim::sim::ExpectResult>) {
    let toml = format!(
        "duration = \"70s\"\n[cluster]\nnodes = 3\nreplicas = 0\n[config]\ncluster-node-timeout = 5000\n{}{}{expect}",
        fault("10s", "pause", "node-1"),
        fault("20s", "resume", "node-1"),
    );
    let mut sim = sim_of(&toml, 1);
    sim.plant(Some(redsim::node::Planted::KeepFail));
    let results = sim.run(&mut ());
    (sim, results)
}

#[test]
fn a_recoverable_cluster_that_does_not_converge_is_a_liveness_violation() {
    let (sim, results) = cluster_that_does_not_converge("");
    let v = sim.checks.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].check, liveness::NAME);
    assert_eq!(v[0].at, 20 * SEC + bound_5s());
    assert!(
        v[0].message
            .starts_with("not converged 35.002s after resume node-1 at 20.000s: node-"),
        "{}",
        v[0].message
    );
    assert!(v[0].message.ends_with(" reports cluster_state:fail"));
    let inv = results.last().unwrap();
    assert_eq!(inv.text, "invariants hold (7 checks)");
    assert_eq!(inv.ok, Some(false));
    assert!(inv
        .reason
        .as_deref()
        .unwrap()
        .starts_with("liveness at 55.002s: not converged"));
    // The summary: the violation with the history entries before it.
    let json = sim.summary(&results);
    let j = &json["invariants"];
    assert_eq!(j["checked"], 7);
    assert_eq!(j["liveness"]["status"], "violated");
    assert_eq!(j["violations"][0]["check"], "liveness");
    assert_eq!(j["violations"][0]["at_ms"], 55002);
    let context = j["violations"][0]["context"].as_array().unwrap();
    assert!(!context.is_empty() && context.len() <= 6, "{context:?}");
    assert!(
        context.iter().all(|l| l.as_str().unwrap().contains("s ")),
        "{context:?}"
    );
    let human = redsim::report::human_summary(&sim, &results);
    assert!(
        human.contains("  FAIL  liveness  (not converged by 55.002s after resume node-1 at 20.000s)\n          at 55.002s: not converged"),
        "{human}"
    );
}

#[test]
fn invariants_ignore_keeps_violations_out_of_the_exit_status() {
    let (sim, results) =
        cluster_that_does_not_converge("[[expect]]\nat = \"5s\"\ninvariants = \"ignore\"\n");
    assert_eq!(sim.checks.violations().len(), 1);
    assert!(results.iter().all(|r| r.ok == Some(true)), "{results:?}");
    assert!(!results.iter().any(|r| r.text.starts_with("invariants")));
}

#[test]
fn a_current_epoch_going_down_is_reported() {
    let mut sim = sim_of(&cluster_3x3(5000, "20s", ""), 1);
    sim.run_until(10 * SEC, &mut ());
    let node = sim.world.procs[2].node.as_mut().unwrap();
    assert_eq!(node.current_epoch, 6);
    node.current_epoch = 1;
    sim.run(&mut ());
    let v = sim.checks.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].check, "current-epoch-monotonic");
    assert_eq!(v[0].message, "node-3: currentEpoch went down from 6 to 1");
    assert!(v[0].at > 10 * SEC && v[0].at <= 10 * SEC + 100 * MS);
}

/// A restarted node is held to the nodes.conf it restarts from: after a
/// `kill` the last one written, after a `crash-host` the last fsynced.
#[test]
fn a_restart_below_the_persisted_current_epoch_is_reported() {
    let faults = format!(
        "{}{}",
        kill("10s", "node-1"),
        fault("20s", "restart", "node-1")
    );
    let toml = cluster_3x3(5000, "40s", &faults);
    assert!(run(&toml, 1).checks.violations().is_empty());
    let crash = cluster_3x3(
        5000,
        "40s",
        "[[faults]]\nat = \"10s\"\naction = \"crash-host\"\nhost = \"host-1\"\n[[faults]]\nat = \"20s\"\naction = \"restart\"\nnode = \"node-1\"\n",
    );
    assert!(run(&crash, 1).checks.violations().is_empty());

    // The disk loses what was written since the cluster was created: only
    // the node's own line and "currentEpoch 0" are left.
    let mut sim = sim_of(&toml, 1);
    sim.run_until(15 * SEC, &mut ());
    let disk = &mut sim.world.procs[0].disk;
    let text = disk.nodes_conf.as_ref().unwrap().text().into_owned();
    assert!(text.contains("vars currentEpoch 6 "), "{text}");
    let mine = text.lines().find(|l| l.contains("myself")).unwrap();
    disk.nodes_conf = Some(ConfFile::Text(
        format!("{mine}\nvars currentEpoch 0 lastVoteEpoch 0\n").into(),
    ));
    sim.run(&mut ());
    let v = sim.checks.violations();
    assert_eq!(v[0].check, "current-epoch-monotonic", "{v:?}");
    assert_eq!(
        v[0].message,
        "node-1 restarted with currentEpoch 1, below the 6 of the nodes.conf it restarted from"
    );
    assert_eq!(v[0].at, 20 * SEC);
}

#[test]
fn the_summary_lists_the_checks() {
    let s = redsim::scenario::load(std::path::Path::new("scenarios/master-crash.toml")).unwrap();
    let mut sim = Simulation::new(s, 7).unwrap();
    let results = sim.run(&mut ());
    let json = sim.summary(&results);
    let j = &json["invariants"];
    assert_eq!(j["checked"], 7);
    assert_eq!(j["names"], serde_json::json!(NAMES));
    assert_eq!(j["violations"], serde_json::json!([]));
    assert_eq!(
        j["liveness"],
        serde_json::json!({ "status": "converged", "after": "kill node-1 at 10.000s",
            "converged_ms": 17882, "took_ms": 7882, "bound_ms": 35002 })
    );
    let human = redsim::report::human_summary(&sim, &results);
    assert!(
        human.contains(
            "checks
  ok    unique-config-epoch-per-slot
  ok    current-epoch-monotonic
  ok    one-vote-per-epoch
  ok    unique-master-config-epochs-when-converged
  ok    replica-offset-not-ahead
  ok    lost-writes-explained
  ok    liveness  (converged 7.882s after kill node-1 at 10.000s; bound 35.002s)
"
        ),
        "{human}"
    );
    assert!(human.contains("  ok    invariants hold (7 checks)\n"));
}
