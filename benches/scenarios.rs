//! Whole-scenario benchmarks: the node logic, the network and the world
//! together, on bundled scenarios.
//!
//! Run with `cargo bench --bench scenarios`.

use std::path::Path;

use divan::Bencher;
use redsim::scenario::load;
use redsim::sim::Simulation;

fn main() {
    divan::main();
}

/// `scenarios/master-crash.toml`: a 3+3 cluster is created, node-1 is killed
/// at 10 s and its replica is promoted; 60 simulated seconds.
#[divan::bench(sample_count = 50)]
fn master_crash_60s_failover(bencher: Bencher) {
    let scenario = load(Path::new("scenarios/master-crash.toml")).expect("bundled scenario");
    bencher
        .with_inputs(|| scenario.clone())
        .bench_local_values(|s| {
            let seed = s.seed;
            let mut sim = Simulation::new(s, seed).expect("runnable");
            let results = sim.run(&mut ());
            assert_eq!(sim.failovers().len(), 1);
            divan::black_box((results, sim.stats.hash.value()))
        });
}
