//! `redsim fuzz`: drawn schedules hold the invariants, campaigns do not
//! depend on `--jobs`, shards partition a campaign, and each planted bug is
//! found and shrunk to a scenario of at most three faults.

use std::path::PathBuf;
use std::process::Command;

use proptest::prelude::*;
use redsim::fuzz::{self, case, Options, Outcome};
use redsim::node::Planted;

fn options(runs: u64, jobs: usize, planted: Option<Planted>, out_dir: Option<PathBuf>) -> Options {
    Options {
        runs,
        jobs,
        seed: 1,
        shard: (0, 1),
        shrink: out_dir.is_some(),
        out_dir,
        planted,
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("redsim-fuzz-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// Every drawn schedule keeps Redis Cluster's invariants and liveness.
    #[test]
    fn drawn_schedules_hold_the_invariants(c in case::strategy(), seed in any::<u64>()) {
        let text = fuzz::scenario_text(&c, seed, None);
        let (outcome, _) = fuzz::run_text(&text, seed, None);
        prop_assert_eq!(outcome, Outcome::Pass, "scenario:\n{}", text);
    }
}

#[test]
fn a_campaign_does_not_depend_on_jobs_and_shards_partition_it() {
    let one = fuzz::campaign(&options(10, 1, None, None), None, &|_| {});
    let three = fuzz::campaign(&options(10, 3, None, None), None, &|_| {});
    assert_eq!(one, three);
    assert_eq!(
        one.iter().map(|r| r.index).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
    // Different runs draw different seeds.
    let mut seeds: Vec<u64> = one.iter().map(|r| r.seed).collect();
    seeds.dedup();
    assert_eq!(seeds.len(), 10);
    let mut halves = Vec::new();
    for shard in 0..2 {
        let mut o = options(10, 2, None, None);
        o.shard = (shard, 2);
        halves.extend(fuzz::campaign(&o, None, &|_| {}));
    }
    halves.sort_by_key(|r| r.index);
    assert_eq!(halves, one);
}

/// Each planted bug: fuzzing finds a violation of the check it breaks within
/// 60 runs, shrinks it to at most 3 faults, and the file written fails that
/// check again with the bug and passes without it.
#[test]
fn planted_bugs_are_found_and_shrunk() {
    for (planted, check) in [
        (Planted::ForgetCurrentEpoch, "current-epoch-monotonic"),
        (
            Planted::PromoteWithoutEpochBump,
            "unique-config-epoch-per-slot",
        ),
        (Planted::KeepFail, "liveness"),
    ] {
        let opts = options(60, 1, Some(planted), None);
        let first = (0..opts.runs)
            .find(|&i| fuzz::fuzz_one(i, &opts, None).outcome.label() == check)
            .unwrap_or_else(|| panic!("{}: no {check} violation in 60 runs", planted.name()));
        let dir = temp_dir(planted.name());
        let opts = options(60, 1, Some(planted), Some(dir.clone()));
        let r = fuzz::fuzz_one(first, &opts, None);
        let faults = r.shrunk_faults.expect("shrunk");
        assert!(
            faults <= 3,
            "{}: run {first} shrunk from {} to {faults} faults",
            planted.name(),
            r.faults
        );
        let file = r.regression.expect("written");
        let text = std::fs::read_to_string(&file).expect("readable");
        assert_eq!(text.matches("[[faults]]").count(), faults, "{text}");
        let s = redsim::scenario::load(&file).expect("the shrunk file loads");
        let with = fuzz::run_text(&text, s.seed, Some(planted)).0;
        assert_eq!(
            with.label(),
            check,
            "{}: {}",
            planted.name(),
            file.display()
        );
        let without = fuzz::run_text(&text, s.seed, None).0;
        assert_eq!(without, Outcome::Pass, "{}", file.display());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn redsim(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_redsim"))
        .args(args)
        .output()
        .expect("redsim runs")
}

#[test]
fn the_cli_runs_shows_and_refuses_bad_options() {
    let dir = temp_dir("cli");
    let out = redsim(&[
        "fuzz",
        "--runs",
        "4",
        "--seed",
        "3",
        "--json",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["runs"], 4);
    assert_eq!(v["passed"], 4);
    assert!(v["anomalies"]["lost_writes"].is_u64());

    // --show prints a scenario that loads and names the options drawn.
    let out = redsim(&["fuzz", "--seed", "3", "--show", "2"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("cluster-node-timeout"), "{text}");
    let file = dir.join("shown.toml");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(&file, &text).unwrap();
    assert!(redsim::scenario::load(&file).is_ok());

    // A planted bug fails the campaign with exit status 1.
    let out = redsim(&[
        "fuzz",
        "--runs",
        "20",
        "--plant",
        "forget-current-epoch",
        "--no-shrink",
    ]);
    assert_eq!(out.status.code(), Some(1));

    for bad in [
        &["fuzz", "--shard", "2/2"][..],
        &["fuzz", "--shard", "x"],
        &["fuzz", "--jobs", "0"],
        &["fuzz", "--plant", "nope"],
        &["fuzz", "no-such-file.toml"],
    ] {
        let out = redsim(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: "));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_base_scenario_keeps_its_cluster_and_draws_faults() {
    let base = fuzz::Base::load(std::path::Path::new("scenarios/master-crash.toml")).expect("base");
    let text = fuzz::show(5, 0, Some(&base));
    assert!(text.contains("cluster-node-timeout = 5000"), "{text}");
    assert!(
        !text.contains("at = \"10s\""),
        "the base's own faults are dropped: {text}"
    );
    let s = redsim::scenario::parse(
        &text,
        redsim::scenario::Format::Toml,
        "x.toml",
        std::path::Path::new("."),
    )
    .expect("loads");
    assert_eq!(s.nodes.len(), 6);
    // Every run's file loads with the run's seed, those above i64::MAX too
    // (they were written wrapped to negative numbers, and rejected).
    let mut big = 0;
    for i in 0..8 {
        let seed = fuzz::run_seed(5, i);
        big += usize::from(seed > i64::MAX as u64);
        let text = fuzz::show(5, i, Some(&base));
        let s = redsim::scenario::parse(
            &text,
            redsim::scenario::Format::Toml,
            "x.toml",
            std::path::Path::new("."),
        )
        .unwrap_or_else(|e| panic!("run {i}: {e}\n{text}"));
        assert_eq!(s.seed, seed, "run {i}");
    }
    assert!(big > 0, "some seed above i64::MAX was tried");
}
