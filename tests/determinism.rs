//! Same scenario and seed → same trace hash; TOML and JSON forms agree;
//! different seeds differ.

mod common;
use common::*;
use std::path::Path;

use redsim::sim::{HashRecorder, Simulation};

fn hash_of(s: redsim::scenario::Scenario, seed: u64) -> (String, u64) {
    let mut sim = Simulation::new(s, seed).unwrap();
    sim.run(&mut ());
    (sim.stats.hash.hex(), sim.stats.events)
}

#[test]
fn same_seed_same_hash_every_bundled_scenario() {
    for entry in std::fs::read_dir("scenarios").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let s = redsim::scenario::load(&path).unwrap();
        let seed = s.seed;
        let a = hash_of(s.clone(), seed);
        let b = hash_of(s, seed);
        assert_eq!(a, b, "{}", path.display());
        assert!(
            a.1 > 1000,
            "{}: a real run processes events",
            path.display()
        );
    }
}

#[test]
fn every_event_hash_agrees_between_two_runs() {
    let s = redsim::scenario::load(Path::new("scenarios/partition-master.toml")).unwrap();
    let mut runs = Vec::new();
    for _ in 0..2 {
        let mut sim = Simulation::new(s.clone(), 9).unwrap();
        let mut rec = HashRecorder::default();
        sim.run(&mut rec);
        runs.push(rec.hashes);
    }
    assert_eq!(runs[0], runs[1]);
}

#[test]
fn toml_and_json_forms_give_the_same_hash() {
    let t = redsim::scenario::load(Path::new("scenarios/master-crash.toml")).unwrap();
    let j = redsim::scenario::load(Path::new("tests/data/master-crash.json")).unwrap();
    assert_eq!(hash_of(t, 7), hash_of(j, 7));
}

#[test]
fn a_workload_is_deterministic_and_its_toml_and_json_forms_agree() {
    let t = redsim::scenario::load(Path::new("scenarios/master-crash-load.toml")).unwrap();
    let j = redsim::scenario::load(Path::new("tests/data/master-crash-load.json")).unwrap();
    let mut runs = Vec::new();
    for s in [t.clone(), t.clone(), j] {
        let mut sim = Simulation::new(s, 7).unwrap();
        let mut rec = HashRecorder::default();
        sim.run(&mut rec);
        runs.push((rec.hashes, sim.world.clients.ops.len()));
    }
    assert!(runs[0].1 > 50_000, "requests were made");
    assert_eq!(runs[0], runs[1]);
    assert_eq!(runs[0], runs[2]);
    // Another seed, other draws.
    assert_ne!(hash_of(t.clone(), 8), hash_of(t, 7));
}

/// Client traffic has its own random streams: a scenario without a
/// workload runs exactly as before clients existed.
#[test]
fn no_workload_no_client_events() {
    let s = redsim::scenario::load(Path::new("scenarios/master-crash.toml")).unwrap();
    assert_eq!(hash_of(s, 7), ("2cf3ef45ba0e6b57".to_string(), 11968));
}

#[test]
fn different_seeds_give_different_hashes() {
    let toml = cluster_3x3(5000, "20s", "");
    let hashes: std::collections::BTreeSet<String> = (1..=10)
        .map(|seed| hash_of(scenario(&toml), seed).0)
        .collect();
    assert_eq!(hashes.len(), 10);
}

/// The trace hashes of the bundled scenarios, recorded. Optimisations must
/// not change them (speed never changes behaviour); a change of behaviour
/// that does must update this table and say why in its commit.
#[test]
fn bundled_scenarios_keep_their_recorded_trace_hashes() {
    let recorded = [
        ("eviction-lfu.toml", "00c270256e00cbbe", 681116),
        ("from-dump.toml", "a2111cefd3beb116", 5484),
        ("host-crash.toml", "046f48ac35323d5f", 2764),
        ("master-crash.toml", "2cf3ef45ba0e6b57", 11968),
        ("master-restart.toml", "041aedffd6904971", 195693),
        ("partition-master.toml", "b5b16c946a4bdf22", 5392),
        ("partition-master-load.toml", "a45b78fffe1967b7", 111541),
        ("paused-master.toml", "157196c34b40ca01", 3613),
        ("reshard.toml", "57d9144b0a1dcfd9", 621700),
        ("standalone-cache.toml", "90e4023d8d63ca3e", 679690),
        ("misconfig/blocked-bus-port.toml", "a2ddc0f75466892a", 14102),
        ("misconfig/no-masterauth.toml", "1591521c80d201d0", 140488),
        (
            "misconfig/overcommit-fork-fails.toml",
            "a6c30ebc88e83c88",
            141388,
        ),
        (
            "misconfig/replicas-same-host.toml",
            "516c0fd9abe62b2d",
            2176,
        ),
        ("misconfig/wrong-announce-ip.toml", "71808860d7ce713a", 2564),
    ];
    for (file, hash, events) in recorded {
        let s = redsim::scenario::load(&Path::new("scenarios").join(file)).unwrap();
        let seed = s.seed;
        assert_eq!(
            hash_of(s, seed),
            (hash.to_string(), events),
            "{file}: behaviour changed"
        );
    }
}
