//! `redsim compare` and `scenarios/compare/`: one fault schedule (the
//! master of the loaded shard killed at 10 s) against replication only,
//! Sentinel and Cluster setups of one master and two replicas per shard.

use std::path::Path;
use std::process::Command;

use redsim::report::compare::{self, Figures};
use redsim::sim::Simulation;

fn figures(file: &str, seed: u64) -> Figures {
    let s = redsim::scenario::load(Path::new(file)).unwrap_or_else(|e| panic!("{e}"));
    let mut sim = Simulation::new(s, seed).unwrap();
    let results = sim.run(&mut ());
    Figures::of(&sim, &results)
}

const FILES: [&str; 3] = [
    "scenarios/compare/replication.toml",
    "scenarios/compare/sentinel.toml",
    "scenarios/compare/cluster.toml",
];

#[test]
fn sentinel_and_cluster_fail_over_on_their_own_replication_waits_for_the_operator() {
    // Seed 8 here; `redsim compare` below runs the scenarios' seed 7.
    for seed in [8] {
        let [repl, sent, clus] = FILES.map(|f| figures(f, seed));
        let kind = |f: &Figures| f.failover.as_ref().map(|x| x.1.clone());
        assert_eq!(kind(&repl).as_deref(), Some("replicaof-no-one"));
        assert_eq!(kind(&sent).as_deref(), Some("sentinel"));
        assert_eq!(kind(&clus).as_deref(), Some("automatic"));
        // Writes fail from the kill until the clients reach the new
        // master: the operator's 30 s, Sentinel's ~6 s (5 s of
        // down-after-milliseconds, the vote, the clients asking again),
        // Cluster's ~8 s (node timeout 5 s, FAIL, the election).
        let down = |f: &Figures| f.max_unavailable_ms;
        assert!((30_000..31_000).contains(&down(&repl)), "{}", down(&repl));
        assert!((5_000..7_500).contains(&down(&sent)), "{}", down(&sent));
        assert!((6_500..9_500).contains(&down(&clus)), "{}", down(&clus));
        assert!(down(&sent) < down(&clus) && down(&clus) < down(&repl));
        for f in [&repl, &sent, &clus] {
            assert_eq!(f.violations, 0, "{}", f.scenario);
            assert!(f.ok);
            assert!(f.writes_acknowledged > 20_000);
            // Lost writes, if any, are explained by a window.
            assert!(f.lost_by_window.iter().all(|(w, _)| *w != "unexplained"));
        }
        // Only the operator's steps differ between the schedules.
        let diff = compare::schedule_differences(&[repl, sent, clus]);
        assert_eq!(diff.len(), 3, "{diff:?}");
        assert!(diff.iter().all(|d| d.ends_with("(compare: replication)")));
    }
}

#[test]
fn the_command_prints_the_runs_side_by_side() {
    let out = Command::new(env!("CARGO_BIN_EXE_redsim"))
        .args(["compare", "--json"])
        .args(FILES)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = v["runs"].as_array().unwrap();
    let names: Vec<&str> = runs
        .iter()
        .map(|r| r["scenario"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "compare: replication",
            "compare: sentinel",
            "compare: cluster"
        ]
    );
    assert_eq!(runs[1]["failover"]["kind"], "sentinel");
    let down: Vec<u64> = runs
        .iter()
        .map(|r| r["max_unavailable_ms"].as_u64().unwrap())
        .collect();
    assert!(down[1] < down[2] && down[2] < down[0], "{down:?}");
    let out = Command::new(env!("CARGO_BIN_EXE_redsim"))
        .args(["compare", FILES[0]])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "one file is not a comparison");
    let out = Command::new(env!("CARGO_BIN_EXE_redsim"))
        .args(["compare", FILES[0], "nowhere.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
