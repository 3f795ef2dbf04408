//! `cluster.mode = "standalone"`: one node with `cluster-enabled no`, plain
//! clients, the keyspace and eviction as in cluster mode.

mod common;
use common::*;
use redsim::check::liveness::Status;
use redsim::client::Cmd;
use redsim::node::config::MaxmemoryPolicy;
use redsim::node::keyspace::Reply;
use redsim::node::route::ClientFlags;
use redsim::node::serve::ClientReply;
use redsim::sim::Simulation;

const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";
const DISABLED: &str = "ERR This instance has cluster support disabled";

/// `scenarios/standalone-cache.toml` with `policy`: node-1's hit ratio, its evicted
/// keys, and the simulation.
fn cache_run(policy: MaxmemoryPolicy) -> (f64, u64, Simulation) {
    common::cache_run("scenarios/standalone-cache.toml", policy)
}

fn reply(sim: &Simulation, cmd: &str) -> Reply {
    let argv: Vec<&[u8]> = cmd.split(' ').map(str::as_bytes).collect();
    match sim.query(0, &argv, ClientFlags::default()) {
        Ok(ClientReply::Done(e)) => e.reply,
        other => panic!("{cmd}: {other:?}"),
    }
}

#[test]
fn every_request_is_served_by_the_node_without_cluster_slots_or_redirection() {
    let (ratio, evicted, sim) = cache_run(MaxmemoryPolicy::AllkeysLfu);
    let ops = &sim.world.clients.ops;
    assert!(ops.len() > 200_000, "{}", ops.len());
    // Plain clients: no CLUSTER SLOTS, no redirection, all replies ok.
    assert!(ops.iter().all(|r| r.cmd != Cmd::ClusterSlots));
    assert!(ops.iter().all(|r| r.node == 0 && r.redirects == 0));
    assert!(ops.iter().all(|r| r.outcome.is_ok()), "an error reply");
    assert!(sim.world.clients.redirections.is_empty());
    let t = sim.client_totals();
    assert_eq!((t.writes.failed, t.lost, t.moved, t.ask), (0, 0, 0, 0));
    // Keys of every slot are served: the node owns no slot.
    assert_eq!(sim.world.node(0).unwrap().myself().numslots, 0);
    let slots: std::collections::BTreeSet<u16> = ops.iter().map(|r| r.slot).collect();
    assert!(slots.len() > 10_000, "{}", slots.len());
    // Real Redis 7.0.15 on the same kind of workload: 0.779, ~26.5 k evicted.
    assert!((0.74..0.82).contains(&ratio), "{ratio}");
    assert!((20_000..35_000).contains(&evicted), "{evicted}");
    // No failover, no violation; liveness: the node runs.
    assert!(sim.failovers().is_empty());
    assert!(sim.checks.violations().is_empty());
    assert!(
        matches!(sim.checks.liveness(), Status::Recovered { .. }),
        "{:?}",
        sim.checks.liveness()
    );
    let summary = sim.summary(&[]);
    assert!(summary["final"].get("cluster_state").is_none());
}

#[test]
fn lfu_keeps_the_cache_hotter_than_random() {
    let (lfu, lfu_evicted, _) = cache_run(MaxmemoryPolicy::AllkeysLfu);
    let (random, random_evicted, _) = cache_run(MaxmemoryPolicy::AllkeysRandom);
    // Real Redis 7.0.15: 0.779 and 0.753.
    assert!(lfu > random + 0.01, "lfu {lfu} random {random}");
    assert!(
        random_evicted > lfu_evicted,
        "{random_evicted} {lfu_evicted}"
    );
}

#[test]
fn noeviction_refuses_writes_with_the_oom_error_and_serves_reads() {
    let (ratio, evicted, sim) = cache_run(MaxmemoryPolicy::Noeviction);
    assert_eq!(evicted, 0);
    assert!(ratio > 0.5, "{ratio}");
    let refused = writes_refused_with(&sim, OOM);
    assert!(refused.len() > 1000, "{}", refused.len());
    assert!(refused.iter().all(|r| r.cmd == Cmd::Set));
    assert_eq!(reply(&sim, "SET fresh-key v"), Reply::Error(OOM.into()));
}

#[test]
fn cluster_commands_are_refused_and_every_key_is_served() {
    let sim = run(
        "duration = \"2s\"\n[cluster]\nmode = \"standalone\"\n\
         [[workload]]\nclients = 2\nrate = 200\nkeys = 100\nread_ratio = 0\nstart = \"0s\"\nstop = \"1s\"",
        1,
    );
    for cmd in ["CLUSTER SLOTS", "READONLY", "READWRITE", "ASKING"] {
        assert_eq!(reply(&sim, cmd), Reply::Error(DISABLED.into()), "{cmd}");
    }
    // Keys of any slot: no -MOVED, no -CLUSTERDOWN.
    assert_eq!(reply(&sim, "SET a 1"), Reply::Ok);
    assert_eq!(reply(&sim, "SET b 1"), Reply::Ok);
    assert_eq!(reply(&sim, "GET nothing"), Reply::Nil);
    assert_eq!(sim.cluster_nodes(0), Err(format!("node-1: {DISABLED}")));
    assert!(sim.world.node(0).unwrap().keyspace.len() > 50);
    // No nodes.conf is written.
    assert!(sim.world.procs[0].disk.nodes_conf.is_none());
}

#[test]
fn a_killed_standalone_node_is_not_expected_to_recover() {
    let sim = run(
        "duration = \"5s\"\n[cluster]\nmode = \"standalone\"\n\
         [[faults]]\nat = \"1s\"\naction = \"kill\"\nnode = \"node-1\"",
        1,
    );
    assert!(sim.checks.violations().is_empty());
    assert!(
        matches!(sim.checks.liveness(), Status::NotApplicable { .. }),
        "{:?}",
        sim.checks.liveness()
    );
    // Restarted, it runs again: converged.
    let sim = run(
        "duration = \"5s\"\n[cluster]\nmode = \"standalone\"\n\
         [[faults]]\nat = \"1s\"\naction = \"kill\"\nnode = \"node-1\"\n\
         [[faults]]\nat = \"2s\"\naction = \"restart\"\nnode = \"node-1\"",
        1,
    );
    assert!(matches!(sim.checks.liveness(), Status::Recovered { .. }));
}

#[test]
fn cluster_expectations_and_replica_reads_are_refused() {
    for (extra, what) in [
        (
            "[[expect]]\ncluster_state = \"ok\"",
            "the expectation cluster_state",
        ),
        (
            "[[workload]]\nread_from_replicas = true",
            "workload[0].read_from_replicas",
        ),
    ] {
        let s = scenario(&format!(
            "duration = \"2s\"\n[cluster]\nmode = \"standalone\"\n{extra}"
        ));
        let err = Simulation::new(s, 1).err().expect("refused");
        assert_eq!(
            err,
            format!("test.toml: {what} needs cluster mode (cluster.mode = \"standalone\": the node has cluster support disabled)")
        );
    }
}
