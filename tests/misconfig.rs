//! The misconfigurations of `scenarios/misconfig/`: each bundled scenario
//! shows its symptom, with the text Redis 7.0.15 logs or replies.

mod common;

use std::path::Path;

use common::{all_running_and_ok, data_events, first_fail, run};
use redsim::client::{Cmd, Outcome};
use redsim::scenario::{FaultAction, Scenario};
use redsim::sim::Simulation;
use redsim::world::{DataEvent, HistoryKind};

fn load(name: &str) -> Scenario {
    redsim::scenario::load(Path::new(&format!("scenarios/misconfig/{name}.toml")))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn run_scenario(s: Scenario) -> Simulation {
    let seed = s.seed;
    let mut sim = Simulation::new(s, seed).expect("runnable");
    let expectations = sim.run(&mut ());
    assert!(
        expectations.iter().all(|e| e.ok == Some(true)),
        "{expectations:?}"
    );
    sim
}

/// How often process `p` logged `line` (Redis's verbatim warning).
fn logged(sim: &Simulation, p: u32, line: &str) -> u32 {
    sim.redis_log()
        .iter()
        .filter(|l| l.proc == p && l.line == line)
        .map(|l| l.count)
        .sum()
}

fn synced(sim: &Simulation, p: u32) -> bool {
    data_events(sim, p)
        .iter()
        .any(|(_, e)| matches!(e, DataEvent::FullSyncFinished { .. }))
}

fn all_live_fail(sim: &Simulation) -> bool {
    sim.world
        .procs
        .iter()
        .filter_map(|p| p.node.as_ref())
        .all(|n| !n.state_ok())
}

/// Bundled scenario `name` changed by `change`, without its expectations.
fn run_changed(name: &str, change: impl FnOnce(&mut Scenario)) -> Simulation {
    let mut s = load(name);
    change(&mut s);
    s.expects.clear();
    run_scenario(s)
}

/// Bundled scenario `name`: process `p` logged `line` more than `min`
/// times, node-5 never synced, and when its master died nobody took over:
/// the cluster is down.
fn replica_never_synced(name: &str, p: u32, line: &str, min: u32) -> Simulation {
    let sim = run_scenario(load(name));
    let n = logged(&sim, p, line);
    assert!(n > min, "{name}: {n}");
    assert!(!synced(&sim, 4), "{name}");
    assert!(sim.failovers().is_empty(), "{name}");
    assert!(all_live_fail(&sim), "{name}");
    sim
}

/// Bundled scenario `name` with `fix` applied: node-5 syncs and takes over
/// from its dead master, and Redis logs no warning.
fn fixed_takes_over(name: &str, fix: impl FnOnce(&mut Scenario)) {
    let sim = run_changed(name, fix);
    assert!(synced(&sim, 4), "{name}");
    assert_eq!(sim.failovers()[0].promoted, 4, "{name}");
    assert!(sim.redis_log().is_empty(), "{name}");
}

#[test]
fn a_replica_without_masterauth_loops_on_noauth_and_its_shard_is_lost() {
    // node-5 (process 4) follows node-1 and is told NOAUTH at every try.
    let sim = replica_never_synced(
        "no-masterauth",
        4,
        "MASTER aborted replication with an error: NOAUTH Authentication required.",
        1000,
    );
    // The replicas with masterauth synced.
    assert!(synced(&sim, 3) && synced(&sim, 5));
    // Before that, at each try, its PSYNC got -NOAUTH: logged as unexpected
    // (`slaveTryPartialResynchronization`), then SYNC got it too.
    let aborted = logged(
        &sim,
        4,
        "MASTER aborted replication with an error: NOAUTH Authentication required.",
    );
    assert_eq!(
        logged(
            &sim,
            4,
            "Unexpected reply to PSYNC from master: -NOAUTH Authentication required."
        ),
        aborted
    );
    // The summaries show the line verbatim, with how often and when.
    let l = &sim.redis_log()[0];
    let json = sim.summary(&[]);
    let j = &json["redis_log"][0];
    assert_eq!(j["node"], "node-5");
    assert_eq!(j["line"], l.line.as_str());
    assert_eq!(j["count"], l.count);
    assert_eq!(j["first_ms"], l.first / redsim::engine::MS);
    let human = redsim::report::human_summary(&sim, &[]);
    assert!(human.contains(&format!(
        "redis log (warnings, verbatim)\n  node-5   {}  ({} times, ",
        l.line, l.count
    )));
    fixed_takes_over("no-masterauth", |s| {
        s.nodes[4].config.masterauth = Some("s3cret".into())
    });
}

#[test]
fn overcommit_0_makes_the_fork_fail_and_the_replica_never_syncs() {
    let sim = replica_never_synced(
        "overcommit-fork-fails",
        0,
        "Can't save in background: fork: Cannot allocate memory",
        1,
    );
    // `startBgsaveForReplication` logs each failure after `rdbSaveToSlavesSockets`.
    assert_eq!(
        logged(&sim, 0, "BGSAVE for replication failed"),
        logged(
            &sim,
            0,
            "Can't save in background: fork: Cannot allocate memory"
        )
    );
    // The replica reads the error its master wrote before closing.
    assert!(
        logged(
            &sim,
            4,
            "MASTER aborted replication with an error: ERR BGSAVE failed, replication can't continue"
        ) > 1
    );
    // overcommit_memory 1: the fork succeeds.
    fixed_takes_over("overcommit-fork-fails", |s| s.cluster.overcommit_memory = 1);
}

#[test]
fn replicas_on_their_masters_host_warn_at_create_and_the_host_crash_loses_the_shard() {
    let sim = run_scenario(load("replicas-same-host"));
    assert_eq!(
        sim.world.manager.log,
        vec![(
            0,
            "[WARNING] Some slaves are in the same host as their master".to_string()
        )]
    );
    let json = sim.summary(&[]);
    assert_eq!(
        json["admin"][0]["line"],
        "[WARNING] Some slaves are in the same host as their master"
    );
    // node-1 and its replica are both on host-1.
    let replica = (0..6)
        .find(|&p| {
            sim.world.scenario.nodes[p].host == 0
                && sim.world.history.iter().any(|h| {
                    matches!(&h.kind, HistoryKind::Data(DataEvent::FullSyncStarted { replica: Some(r), .. }) if *r == p as u32)
                        && h.proc == Some(0)
                })
        });
    assert!(replica.is_some(), "node-1's replica is on host-1");
    assert!(sim.failovers().is_empty());
    assert!(all_live_fail(&sim));

    // Two nodes a host: perfect anti-affinity, no warning, and the crashed
    // master's replica takes over.
    let sim = run(
        &common::cluster_3x3(
            5000,
            "40s",
            "[[faults]]\nat = \"15s\"\naction = \"crash-host\"\nhost = \"host-1\"\n",
        )
        .replace("replicas = 1", "replicas = 1\nhosts = 3"),
        7,
    );
    assert!(sim.world.manager.log.is_empty());
    assert_eq!(sim.failovers().len(), 1);
}

#[test]
fn a_blocked_bus_port_fails_the_cluster_while_clients_get_clusterdown() {
    let sim = run_scenario(load("blocked-bus-port"));
    let t = redsim::engine::SEC * 10;
    // Every node flags the others PFAIL, but no failure report travels:
    // nobody is ever marked FAIL, and nobody fails over.
    for p in 0..6 {
        for q in 0..6 {
            assert_eq!(first_fail(&sim, p, q), None);
        }
    }
    assert!(sim.failovers().is_empty());
    assert!(all_live_fail(&sim));
    // Clients still reach the nodes (and their library's CLUSTER SLOTS
    // still works): after the detection, every request is answered
    // "-CLUSTERDOWN The cluster is down".
    let c = &sim.world.clients;
    let late: Vec<_> = c
        .ops
        .iter()
        .filter(|r| r.sent > t + 8 * redsim::engine::SEC && r.cmd != Cmd::ClusterSlots)
        .collect();
    assert!(late.len() > 200, "{}", late.len());
    for r in late {
        assert_eq!(r.outcome, Outcome::Error);
        assert_eq!(
            c.errors.text(r.error),
            Some("CLUSTERDOWN The cluster is down")
        );
    }

    // Only node-1's bus port: its own links keep it alive in everyone's
    // eyes (any message counts), and the cluster stays ok.
    let sim = run_changed("blocked-bus-port", |s| {
        s.faults[0].action = FaultAction::BlockBusPort { node: Some(0) }
    });
    assert!(all_running_and_ok(&sim));

    // `heal` opens the port again: the cluster recovers, but not before
    // the PFAIL flags everyone gathered meet in the first gossip and make
    // the masters FAIL: their replicas take over, as in Redis.
    let sim = run_changed("blocked-bus-port", |s| {
        s.faults.push(redsim::scenario::Fault {
            at: redsim::engine::SEC * 20,
            action: FaultAction::Heal,
        });
        s.duration = redsim::engine::SEC * 45;
    });
    assert!(all_running_and_ok(&sim));
    assert!(!sim.failovers().is_empty());
}

#[test]
fn a_wrong_announce_ip_keeps_the_cluster_from_joining() {
    let sim = run_scenario(load("wrong-announce-ip"));
    assert!(!sim
        .world
        .history
        .iter()
        .any(|h| h.kind == HistoryKind::Created));
    let node3 = sim.world.node(2).unwrap();
    let id3 = node3.my_id().to_string();
    // node-3 announces the wrong address and knows everyone...
    let mine = node3.cluster_nodes();
    assert!(
        mine.contains("192.168.1.3:6379@16379 myself,master"),
        "{mine}"
    );
    assert_eq!(mine.lines().count(), 6);
    assert!(node3.state_ok());
    // ...but nobody knows node-3, and they see its slots unassigned.
    for p in [0, 1, 3, 4, 5] {
        let n = sim.world.node(p).unwrap();
        assert!(!n.cluster_nodes().contains(&id3), "node-{}", p + 1);
        assert!(!n.state_ok());
    }
    let summary = redsim::report::human_summary(&sim, &[]);
    assert!(summary.contains(
        "created   the cluster never finished joining (redis-cli --cluster create still \"Waiting for the cluster to join\")\n          node-3 is unknown to node-1, node-2, node-4, node-5, node-6\n"
    ), "{summary}");

    // The right address: the cluster joins.
    let sim = run_changed("wrong-announce-ip", |s| {
        s.nodes[2].config.cluster_announce_ip = Some("10.0.0.3".into())
    });
    assert!(sim
        .world
        .history
        .iter()
        .any(|h| h.kind == HistoryKind::Created));
}

#[test]
fn every_misconfig_scenario_is_deterministic() {
    let mut n = 0;
    for entry in std::fs::read_dir("scenarios/misconfig").unwrap() {
        let path = entry.unwrap().path();
        let s = redsim::scenario::load(&path).unwrap();
        let hash = |s: Scenario| {
            let seed = s.seed;
            let mut sim = Simulation::new(s, seed).unwrap();
            sim.run(&mut ());
            sim.stats.hash.hex()
        };
        assert_eq!(hash(s.clone()), hash(s), "{}", path.display());
        n += 1;
    }
    assert_eq!(n, 5);
}

/// node-3's bus port blocked from the start, with a node timeout (hence a
/// handshake timeout) longer than redis-cli's first link check: node-1
/// still holds node-3's handshake when `--cluster create` has waited 21
/// polls, and redis-cli prints its warning.
#[test]
fn create_warns_about_an_unreachable_bus_port() {
    let toml = "duration = \"30s\"\n[cluster]\nnodes = 6\nreplicas = 1\n[config]\ncluster-node-timeout = 30000\n\
                [[faults]]\nat = \"0s\"\naction = \"block-port\"\nport = \"bus\"\nnode = \"node-3\"\n";
    let sim = run(toml, 1);
    let lines: Vec<(u64, &str)> = sim
        .world
        .manager
        .log
        .iter()
        .map(|(t, l)| (*t / redsim::engine::MS, l.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            (22_000, "Warning: 1 node(s) may be unreachable"),
            (22_000, " - The port 16379 of node 10.0.0.3 may be unreachable from:"),
            (22_000, "   10.0.0.1:6379"),
            (22_000, "Cluster bus ports must be reachable by every node.\nRemember that cluster bus ports are different from standard instance ports."),
        ]
    );
    // With the default timeouts the handshake has expired by then: redis-cli
    // just keeps waiting, silently.
    let sim = run(&toml.replace("30000", "5000"), 1);
    assert!(sim.world.manager.log.is_empty());
    assert!(!sim
        .world
        .history
        .iter()
        .any(|h| h.kind == HistoryKind::Created));
}
