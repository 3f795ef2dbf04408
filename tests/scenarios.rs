//! Every bundled scenario and every example of the scenario format runs.

use std::path::Path;

use redsim::sim::Simulation;

fn run_file(path: &Path) -> Vec<redsim::sim::ExpectResult> {
    let s = redsim::scenario::load(path).unwrap_or_else(|e| panic!("{e}"));
    let seed = s.seed;
    let mut sim = Simulation::new(s, seed).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    sim.run(&mut ())
}

#[test]
fn bundled_scenarios_run_and_meet_their_expectations() {
    let mut n = 0;
    for entry in std::fs::read_dir("scenarios").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        n += 1;
        let results = run_file(&path);
        assert!(!results.is_empty(), "{}: has expectations", path.display());
        for r in results {
            assert_eq!(
                r.ok,
                Some(true),
                "{}: {} {:?}",
                path.display(),
                r.text,
                r.reason
            );
        }
    }
    assert!(n >= 5);
}

/// The examples of scenario-format.md (copied under tests/data/scenarios)
/// load, run and meet their expectations.
#[test]
fn format_examples_run() {
    for name in [
        "doc_example.toml",
        "doc_config.toml",
        "addresses.toml",
        "from_dump.toml",
    ] {
        let path = Path::new("tests/data/scenarios").join(name);
        let s = redsim::scenario::load(&path).unwrap();
        let workloads = !s.workloads.is_empty();
        let seed = s.seed;
        let mut sim = Simulation::new(s, seed).unwrap();
        for r in sim.run(&mut ()) {
            assert_ne!(r.ok, Some(false), "{name}: {} {:?}", r.text, r.reason);
        }
        // A workload's clients send requests, and they are served.
        let ops = sim.client_totals().ops;
        assert_eq!(ops.sent > 0, workloads, "{name}: {ops:?}");
        assert!(ops.ok * 10 >= ops.sent * 9, "{name}: {ops:?}");
    }
}

/// Sentinel mode parses but cannot run yet: a clear error, not a silent
/// cluster run.
#[test]
fn the_formats_sentinel_example_runs_and_the_sentinels_find_each_other() {
    let s = redsim::scenario::load(Path::new("tests/data/scenarios/doc_sentinel.toml")).unwrap();
    let mut sim = Simulation::new(s, 1).expect("runnable");
    sim.run(&mut ());
    assert!(sim.failovers().is_empty());
    for sp in &sim.world.sentinels.procs {
        let s = sp.sentinel.as_ref().expect("running");
        // The two others (from hellos) and both replicas (from INFO).
        assert_eq!((s.sentinels.len(), s.slaves.len()), (2, 2), "{}", sp.name);
        assert_eq!(s.master.addr, sim.world.procs[0].addr);
    }
    assert!(sim.checks.violations().is_empty());
}
