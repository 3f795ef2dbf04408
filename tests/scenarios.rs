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
/// load and run; what they ask for that is not implemented yet is reported,
/// not ignored.
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
        let warnings = redsim::sim::not_implemented(&s);
        if !s.workloads.is_empty() {
            assert!(
                warnings.iter().any(|w| w.contains("[[workload]]")),
                "{name}: {warnings:?}"
            );
        }
        let results = run_file(&path);
        for r in results {
            assert_ne!(r.ok, Some(false), "{name}: {} {:?}", r.text, r.reason);
        }
    }
}

/// Sentinel mode parses but cannot run yet: a clear error, not a silent
/// cluster run.
#[test]
fn unimplemented_modes_are_refused_clearly() {
    let s = redsim::scenario::load(Path::new("tests/data/scenarios/doc_sentinel.toml")).unwrap();
    let err = Simulation::new(s, 1).err().expect("refused");
    assert!(
        err.contains("cluster.mode = \"sentinel\" is not implemented yet"),
        "{err}"
    );
}
