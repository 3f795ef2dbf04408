//! `restart`: a killed node comes back from its nodes.conf (same ID, role,
//! slots and epochs), as clusterLoadConfig reads it.

mod common;
use common::*;
use redsim::engine::SEC;

fn kill_restart(node: &str, kill: &str, restart: &str) -> String {
    format!(
        "[[faults]]\nat = \"{kill}\"\naction = \"kill\"\nnode = \"{node}\"\n[[faults]]\nat = \"{restart}\"\naction = \"restart\"\nnode = \"{node}\"\n"
    )
}

#[test]
fn restarted_master_keeps_id_slots_and_epoch_and_fail_clears() {
    // No failover (its replica may not take over), so node-2 keeps its slots.
    let toml = cluster_3x3_conf(
        5000,
        "60s",
        "cluster-replica-no-failover = \"yes\"",
        &kill_restart("node-2", "10s", "20s"),
    );
    for seed in 1..=4 {
        let mut before = redsim::sim::Simulation::new(scenario(&toml), seed).unwrap();
        before.run_until(9 * SEC, &mut ());
        let id = before.world.node(1).unwrap().my_id();
        let sim = run(&toml, seed);
        let n = sim.world.node(1).expect("running again");
        assert_eq!(n.my_id(), id, "same node ID after restart");
        assert!(n.is_master());
        assert_eq!(n.my_epoch(), 2);
        assert_eq!(n.current_epoch, 6);
        let line = n
            .cluster_nodes()
            .lines()
            .find(|l| l.contains("myself"))
            .unwrap()
            .to_string();
        assert!(line.ends_with(" 2 connected 5461-10922"), "{line}");
        // Nobody failed it over: the others clear FAIL 2 NT after marking it.
        let f = first_fail(&sim, 0, 1).expect("FAIL while it was down");
        let cleared = notes(&sim, 0, 1, |n| {
            matches!(n, redsim::node::Note::FailCleared { .. })
        });
        assert!(cleared.iter().any(|&c| c >= f + 10 * SEC), "seed {seed}");
        // A restarted master waits 2 s (writable delay) before turning ok.
        let ok = state_changes(&sim, 1)
            .into_iter()
            .find(|&(t, ok)| ok && t >= 20 * SEC)
            .expect("ok again")
            .0;
        assert!(ok >= 22 * SEC, "seed {seed}: ok at {}", secs(ok));
        assert!(all_running_and_ok(&sim), "seed {seed}");
    }
}

#[test]
fn restarted_replica_follows_the_same_master_with_its_epoch() {
    let toml = cluster_3x3(5000, "40s", &kill_restart("node-5", "10s", "12s"));
    let sim = run(&toml, 2);
    let n = sim.world.node(4).unwrap();
    assert!(!n.is_master());
    let master = sim.world.proc_of_id(&n.master_id().unwrap()).unwrap();
    assert_eq!(master, 0, "node-5 replicates node-1");
    // A replica's own epoch is loaded as 0; it shows its master's.
    assert_eq!(n.myself().config_epoch, 0);
    assert_eq!(n.my_epoch(), 1);
    assert!(n.state_ok());
}

/// A master killed, failed over, then restarted: it comes back from its
/// nodes.conf claiming its old slots with config epoch 2, is told by UPDATE
/// that epoch 7 owns them, and becomes a replica of its successor.
#[test]
fn restarted_old_master_becomes_a_replica_of_its_successor() {
    let toml = cluster_3x3(5000, "60s", &kill_restart("node-2", "10s", "30s"));
    for seed in 1..=4 {
        let sim = run(&toml, seed);
        let f = sim.failovers();
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].failed, f[0].promoted, f[0].config_epoch), (1, 5, 7));
        let n = sim.world.node(1).unwrap();
        assert!(!n.is_master(), "seed {seed}");
        assert_eq!(master_of(&sim, 1), Some(5));
        assert_eq!(n.current_epoch, 7);
        assert!(n.myself().slots.iter().next().is_none());
        assert!(sim.world.node(5).unwrap().is_master());
        assert!(all_running_and_ok(&sim), "seed {seed}");
    }
}
