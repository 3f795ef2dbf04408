//! Redis 7.0.15's own cluster tests ported as scenarios
//! (`scenarios/redis-suite/`, README "Redis's own tests, ported"): each runs
//! with its seed and a few more, and every expectation holds.

mod common;

use std::path::{Path, PathBuf};

use redsim::sim::{ExpectResult, Simulation};

const DIR: &str = "scenarios/redis-suite";

/// One file per ported Tcl file, or per part of one (a part starts where the
/// Tcl runs init-tests.tcl again).
const PORTED: &[&str] = &[
    "00-base.toml",
    "01-faildet.toml",
    "02-failover.toml",
    "03-failover-loop.toml",
    "05-slave-selection-part2.toml",
    "07-replica-migration-part1.toml",
    "07-replica-migration-part2.toml",
    "10-manual-failover-part1.toml",
    "10-manual-failover-part2.toml",
    "10-manual-failover-part3.toml",
    "11-manual-takeover.toml",
    "12-replica-migration-2.toml",
    "12.1-replica-migration-3.toml",
    "13-no-failover-option.toml",
    "28-cluster-shards.toml",
];

/// Seeds run besides the file's own.
const EXTRA_SEEDS: std::ops::RangeInclusive<u64> = 1..=5;

fn suite_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(DIR)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn the_suite_holds_every_ported_test_and_nothing_else() {
    let names: Vec<String> = suite_files().iter().map(|p| file_name(p)).collect();
    assert_eq!(names, PORTED);
}

#[test]
fn every_ported_test_holds_with_several_seeds() {
    for path in suite_files() {
        let name = file_name(&path);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# Port of Redis 7.0.15 tests/"),
            "{name}: the header says which Tcl test it ports"
        );
        let s = redsim::scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let skipped = redsim::sim::not_implemented(&s);
        assert!(skipped.is_empty(), "{name}: {skipped:?}");
        let mut seeds = vec![s.seed];
        seeds.extend(EXTRA_SEEDS.filter(|&x| x != s.seed));
        for seed in seeds {
            let mut sim = Simulation::new(s.clone(), seed).unwrap();
            let results = sim.run(&mut ());
            assert!(!results.is_empty(), "{name}: has expectations");
            for r in results {
                assert_eq!(
                    r.ok,
                    Some(true),
                    "{name} seed {seed}: {} {:?}",
                    r.text,
                    r.reason
                );
            }
        }
    }
}

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
