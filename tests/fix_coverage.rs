//! `redis-cli --cluster fix` covering unassigned slots
//! (`clusterManagerFixSlotsCoverage`): a shard whose master and replica
//! both died is given to a live master, and the cluster is ok again.

mod common;

use common::run;

fn shard_lost_then_fix(fix: &str) -> String {
    format!(
        "duration = \"50s\"\n[cluster]\nnodes = 6\nreplicas = 1\n[config]\ncluster-node-timeout = 5000\n{}{}[[faults]]\nat = \"25s\"\naction = \"fix\"\n{fix}",
        common::fault("10s", "kill", "node-1"),
        common::fault("10s", "kill", "node-5"),
    )
}

#[test]
fn fix_covers_the_slots_of_a_dead_shard_with_unreachable_masters_allowed() {
    let sim = run(&shard_lost_then_fix("with_unreachable_masters = true\n"), 1);
    let log: Vec<&str> = sim
        .world
        .manager
        .log
        .iter()
        .map(|(_, l)| l.as_str())
        .collect();
    assert_eq!(log[1], "[ERR] Not all 16384 slots are covered by nodes.");
    assert_eq!(log[2], ">>> Fixing slots coverage...");
    assert_eq!(
        log[3],
        "The following uncovered slots have no keys across the cluster:\n[0-5460]"
    );
    // One line per slot, as clusterManagerFixSlotsCoverage prints them,
    // every slot to the same master.
    let addr = log[4]
        .strip_prefix(">>> Covering slot 0 with ")
        .unwrap_or_else(|| panic!("{log:?}"));
    assert!(addr.starts_with("10.0.0."), "{addr}");
    for slot in 0..=5460 {
        assert_eq!(
            log[4 + slot],
            format!(">>> Covering slot {slot} with {addr}")
        );
    }
    assert!(!log[4 + 5461].starts_with(">>> Covering"), "{log:?}");
    assert_eq!(log.last(), Some(&"[OK] done"));
    // Every live node sees slot 0 served by that live master, and the
    // cluster is ok again.
    let owner = sim.owner_seen_by_majority(0).unwrap();
    assert!([1, 2].contains(&owner), "{owner}");
    for slot in [0, 5460] {
        assert_eq!(sim.owner_seen_by_majority(slot), Some(owner));
    }
    let live = sim.world.procs.iter().filter(|p| p.node.is_some()).count();
    assert_eq!(live, 4);
    assert!(sim
        .world
        .procs
        .iter()
        .filter_map(|p| p.node.as_ref())
        .all(|n| n.state_ok()));
}

#[test]
fn fix_refuses_to_cover_slots_with_unreachable_masters_by_default() {
    let sim = run(&shard_lost_then_fix(""), 1);
    assert!(
        sim.world.warnings.iter().any(
            |w| w.contains("*** Fixing slots coverage with 1 unreachable masters is dangerous")
        ),
        "{:?}",
        sim.world.warnings
    );
    assert!(sim
        .world
        .procs
        .iter()
        .filter_map(|p| p.node.as_ref())
        .all(|n| !n.state_ok()));
}
