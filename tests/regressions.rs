//! Every scenario in `tests/regressions/` once failed a check (the fuzzer
//! found and shrank it; its header says which check and how). Each must now
//! run with every invariant holding.

use std::path::Path;

use redsim::sim::Simulation;

#[test]
fn every_regression_scenario_holds_its_invariants() {
    let dir = Path::new("tests/regressions");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("tests/regressions exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml" || e == "json"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no regression scenarios in {}",
        dir.display()
    );
    for f in files {
        let s = redsim::scenario::load(&f).unwrap_or_else(|e| panic!("{e}"));
        let seed = s.seed;
        let mut sim = Simulation::new(s, seed).expect("runnable");
        sim.run(&mut ());
        let v = sim.checks.violations();
        assert!(
            v.is_empty(),
            "{} breaks again: {} at {}: {}",
            f.display(),
            v[0].check,
            redsim::world::fmt_time(v[0].at),
            v[0].message
        );
    }
}
