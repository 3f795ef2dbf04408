//! Redis 7.0.15's own cluster tests ported as scenarios
//! (`scenarios/redis-suite/`, README "Redis's own tests, ported"): each runs
//! with its seed and a few more, and every expectation holds.

mod common;

use redsim::sim::{ExpectResult, Simulation};

/// `min_replicas` counts the running processes that report the node as
/// their master, and needs the node to be a master.
#[test]
fn min_replicas_counts_running_replicas_of_a_master() {
    let check = |expect: &str| -> Vec<ExpectResult> {
        let toml = common::cluster_3x3(
            5000,
            "30s",
            &format!("[[expect]]\nat = \"9s\"\n{expect}\n[[faults]]\nat = \"10s\"\naction = \"kill\"\nnode = \"node-{}\"\n[[expect]]\nat = \"20s\"\n{expect}\n", replica_of_node_1() + 1),
        );
        let mut sim = Simulation::new(common::scenario(&toml), 1).unwrap();
        sim.run(&mut ())
    };
    let r = check("min_replicas = { \"node-1\" = 1 }");
    assert_eq!(r[0].ok, Some(true), "{r:?}");
    assert_eq!(r[0].text, "replicas of node-1 >= 1 at 9.000s");
    // Its only replica killed: none left.
    assert_eq!(r[1].ok, Some(false));
    assert_eq!(r[1].reason.as_deref(), Some("node-1 has 0"));

    let r = check("min_replicas = { \"node-1\" = 2 }");
    assert_eq!(r[0].reason.as_deref(), Some("node-1 has 1"));

    let replica = format!("node-{}", replica_of_node_1() + 1);
    let r = check(&format!("min_replicas = {{ \"{replica}\" = 1 }}"));
    assert_eq!(r[0].ok, Some(false));
    assert_eq!(r[0].reason, Some(format!("{replica} is replica")));
}

/// The process that replicates node-1 in the 3+3 layout of `cluster_3x3`.
fn replica_of_node_1() -> u32 {
    let sim = common::run(&common::cluster_3x3(5000, "5s", ""), 1);
    (0..6)
        .find(|&p| common::master_of(&sim, p) == Some(0))
        .expect("node-1 has a replica")
}
