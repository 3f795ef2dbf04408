//! `cluster.mode = "replication"`: one master, replicas wired by
//! `replicaof`, no automatic failover; an operator's `REPLICAOF NO ONE`,
//! `REPLICAOF` and the clients' repointing.

mod common;
use common::*;
use redsim::client::Outcome;
use redsim::node::keyspace::Reply;
use redsim::node::route::ClientFlags;
use redsim::node::serve::ClientReply;
use redsim::sim::FailoverKind;

/// A master and two replicas under 200 requests/s; then `faults`.
fn healthy(duration: &str, faults: &str) -> String {
    format!(
        r#"duration = "{duration}"
[cluster]
mode = "replication"
replicas = 2
[[workload]]
clients = 2
rate = 200
keys = 1000
{faults}"#
    )
}

/// [`healthy`] with the master killed at 10 s.
fn replication(duration: &str, faults: &str) -> String {
    healthy(
        duration,
        &format!("[[faults]]\nat = \"10s\"\naction = \"kill\"\nnode = \"node-1\"\n{faults}"),
    )
}

const PROMOTE_NODE_2: &str = r#"
[[faults]]
at = "15s"
action = "replicaof-no-one"
node = "node-2"
[[faults]]
at = "15s"
action = "replicaof"
node = "node-3"
master = "node-2"
[[faults]]
at = "16s"
action = "repoint-clients"
node = "node-2"
"#;

fn reply(sim: &redsim::sim::Simulation, node: usize, cmd: &str) -> Reply {
    let argv: Vec<&[u8]> = cmd.split(' ').map(str::as_bytes).collect();
    match sim.query(node, &argv, ClientFlags::default()) {
        Ok(ClientReply::Done(e)) => e.reply,
        other => panic!("{cmd}: {other:?}"),
    }
}

#[test]
fn replicas_sync_and_refuse_writes_with_readonly() {
    let mut sim = redsim::sim::Simulation::new(scenario(&healthy("9s", "")), 1).unwrap();
    sim.run(&mut ());
    for r in [1, 2] {
        let repl = sim.world.node(r).unwrap().replication();
        assert!(repl.replica.master_link_up(), "node-{}", r + 1);
        assert_eq!(
            repl.slave_repl_offset(),
            sim.world
                .node(0)
                .unwrap()
                .replication()
                .master_repl_offset()
        );
        assert_eq!(sim.role_of(r as usize), "replica");
        assert_eq!(
            reply(&sim, r as usize, "SET k v"),
            Reply::Error("READONLY You can't write against a read only replica.".into())
        );
        assert!(matches!(reply(&sim, r as usize, "GET k"), Reply::Nil));
    }
    assert_eq!(reply(&sim, 0, "SET k v"), Reply::Ok);
    // Every write goes to node-1; none fails.
    assert!(sim
        .world
        .clients
        .ops
        .iter()
        .all(|o| o.node == 0 && o.outcome.is_ok()));
    assert!(sim.checks.violations().is_empty());
}

#[test]
fn without_an_operator_the_dead_master_is_never_replaced() {
    let sim = run(&replication("30s", ""), 1);
    assert!(sim.failovers().is_empty());
    assert_eq!(sim.role_of(1), "replica");
    assert_eq!(sim.role_of(2), "replica");
    // Writes fail from the kill to the end: connection refused.
    let t = sim.client_totals();
    assert!(
        t.unavailable[0] > 18 * redsim::engine::SEC,
        "{:?}",
        t.unavailable
    );
    let json = sim.summary(&[]);
    assert_eq!(json["invariants"]["liveness"]["status"], "not-applicable");
}

#[test]
fn an_operator_promotes_a_replica_and_repoints_the_clients() {
    for seed in 1..=3 {
        let sim = run(&replication("30s", PROMOTE_NODE_2), seed);
        let f = sim.failovers();
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].failed, f[0].promoted), (0, 1));
        assert_eq!(f[0].kind, FailoverKind::ReplicaofNoOne);
        assert_eq!(f[0].promoted_at, 15 * redsim::engine::SEC);
        assert_eq!(sim.role_of(1), "master");
        // node-3 continued from node-2's shifted replication ID: a partial
        // resync, no second full sync.
        let n3 = sim.world.node(2).unwrap().replication();
        assert!(n3.replica.master_link_up());
        assert_eq!(n3.stats.sync_full, 0);
        assert_eq!(
            n3.slave_repl_offset(),
            sim.world
                .node(1)
                .unwrap()
                .replication()
                .master_repl_offset()
        );
        // Writes fail from the kill until the clients are repointed.
        let t = sim.client_totals();
        let down = t.unavailable[0];
        assert!((5_000_000..6_200_000).contains(&down), "{down}");
        let ops = &sim.world.clients.ops;
        assert!(ops
            .iter()
            .filter(|o| o.sent > 16_100_000)
            .all(|o| o.node == 1 && o.outcome.is_ok()));
        assert!(ops
            .iter()
            .any(|o| o.sent > 10_100_000 && o.sent < 16_000_000 && o.outcome != Outcome::Ok));
        assert!(
            sim.checks.violations().is_empty(),
            "{:?}",
            sim.checks.violations()
        );
    }
}

#[test]
fn the_old_master_restarts_as_a_master_until_told_otherwise() {
    let faults = format!(
        "{PROMOTE_NODE_2}\n[[faults]]\nat = \"20s\"\naction = \"restart\"\nnode = \"node-1\"\n"
    );
    let sim = run(&replication("25s", &faults), 1);
    // Split brain: node-1 is a master again (empty: no persistence).
    assert_eq!(sim.role_of(0), "master");
    assert_eq!(sim.world.current_master(), Some(1));
    let faults = format!(
        "{faults}\n[[faults]]\nat = \"21s\"\naction = \"replicaof\"\nnode = \"node-1\"\nmaster = \"node-2\"\n"
    );
    let sim = run(&replication("30s", &faults), 1);
    assert_eq!(sim.role_of(0), "replica");
    assert!(sim
        .world
        .node(0)
        .unwrap()
        .replication()
        .replica
        .master_link_up());
    assert!(matches!(
        sim.checks.liveness(),
        redsim::check::liveness::Status::Recovered { .. }
    ));
}

#[test]
fn the_operators_faults_are_refused_where_they_make_no_sense() {
    let e = load_error(&cluster_3x3(
        5000,
        "10s",
        "[[faults]]\nat = \"5s\"\naction = \"replicaof-no-one\"\nnode = \"node-4\"\n",
    ));
    assert_eq!(
        e,
        "t.toml:9:10: faults[0].action: action \"replicaof-no-one\" is only available with mode = \"replication\" or mode = \"sentinel\""
    );
    let e = load_error(&healthy(
        "10s",
        "[[faults]]\nat = \"5s\"\naction = \"replicaof\"\nnode = \"node-2\"\nmaster = \"node-2\"\n",
    ));
    assert!(
        e.ends_with("faults[0].master: a node cannot replicate itself"),
        "{e}"
    );
}
