//! The `config-set` fault: `CONFIG SET` on running nodes, from then on.

mod common;

use std::path::Path;

use common::{data_events, run};
use redsim::sim::Simulation;
use redsim::world::DataEvent;

fn config_set(at: &str, node: &str, directive: &str, value: &str) -> String {
    format!("[[faults]]\nat = \"{at}\"\naction = \"config-set\"\nnode = \"{node}\"\ndirective = \"{directive}\"\nvalue = \"{value}\"\n")
}

#[test]
fn masterauth_set_at_run_time_lets_the_replica_sync_and_take_over() {
    // scenarios/misconfig/no-masterauth.toml, fixed at 8 s.
    let mut s =
        redsim::scenario::load(Path::new("scenarios/misconfig/no-masterauth.toml")).unwrap();
    let fix = redsim::scenario::parse(
        &format!(
            "duration = \"40s\"\n[cluster]\nnodes = 6\nreplicas = 1\n{}",
            config_set("8s", "node-5", "masterauth", "s3cret")
        ),
        redsim::scenario::Format::Toml,
        "t.toml",
        Path::new("."),
    )
    .unwrap();
    s.faults.insert(0, fix.faults[0].clone());
    s.expects.clear();
    let mut sim = Simulation::new(s, 1).unwrap();
    sim.run(&mut ());
    let synced: Vec<_> = data_events(&sim, 4)
        .into_iter()
        .filter(|(_, e)| matches!(e, DataEvent::FullSyncFinished { .. }))
        .map(|(t, _)| t)
        .collect();
    assert!(!synced.is_empty() && synced[0] > 8 * redsim::engine::SEC);
    // The NOAUTH loop ended at the CONFIG SET.
    let log = sim.redis_log();
    assert!(log[0].last < 8 * redsim::engine::SEC, "{log:?}");
    assert_eq!(sim.failovers()[0].promoted, 4);
}

#[test]
fn replica_no_failover_set_at_run_time_stops_the_failover() {
    let kill = common::fault("15s", "kill", "node-1");
    let toml = common::cluster_3x3(
        5000,
        "40s",
        &format!(
            "{}{kill}",
            config_set("5s", "node-5", "cluster-replica-no-failover", "yes")
        ),
    );
    let sim = run(&toml, 1);
    assert!(sim.failovers().is_empty());
    assert!(sim.world.warnings.is_empty(), "{:?}", sim.world.warnings);
    // Without it, node-5 takes over.
    let sim = run(&common::cluster_3x3(5000, "40s", &kill), 1);
    assert_eq!(sim.failovers()[0].promoted, 4);
}

#[test]
fn config_set_to_a_dead_node_or_of_appendonly_is_a_warning() {
    let toml = common::cluster_3x3(
        5000,
        "10s",
        &format!(
            "{}{}{}",
            common::fault("1s", "kill", "node-2"),
            config_set("2s", "all", "maxmemory-policy", "allkeys-lru"),
            config_set("3s", "node-1", "appendonly", "yes"),
        ),
    );
    let sim = run(&toml, 1);
    assert_eq!(
        sim.world.warnings,
        [
            "fault 1 at 2.000s: CONFIG SET maxmemory-policy to node-2: it is not running; the command was lost",
            "fault 2 at 3.000s: CONFIG SET appendonly to node-1: CONFIG SET appendonly is not modelled yet (the AOF rewrite it starts); the command was skipped",
        ]
    );
    let n = sim.world.node(0).unwrap();
    assert_eq!(
        n.setup.config.maxmemory_policy,
        redsim::node::config::MaxmemoryPolicy::AllkeysLru
    );
    assert!(!n.setup.config.appendonly);
}
