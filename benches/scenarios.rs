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

/// Client throughput: a 3+3 cluster, 200 connections asking 200 000
/// requests per simulated second (half GET, half SET of 100-byte values over
/// 100 000 keys) for 10 simulated seconds: 2 M requests, no faults.
#[divan::bench(sample_count = 5)]
fn clients_3x3_2m_requests(bencher: Bencher) {
    bench_clients(bencher, "");
}

/// [`clients_3x3_2m_requests`] with `maxmemory 4mb` and `allkeys-lru`: each
/// master holds about 7 400 of its 33 000 keys (the rest of the 4 MB is the
/// empty node and the 1 MB backlog) and evicts before most writes (about
/// 760 000 evictions in all).
#[divan::bench(sample_count = 5)]
fn clients_3x3_2m_requests_evicting(bencher: Bencher) {
    bench_clients(
        bencher,
        "maxmemory = \"4mb\"\nmaxmemory-policy = \"allkeys-lru\"\n",
    );
}

fn bench_clients(bencher: Bencher, config: &str) {
    let toml = format!(
        r#"
duration = "12s"
[cluster]
nodes = 6
replicas = 1
[config]
cluster-node-timeout = 5000
{config}
[[workload]]
clients = 200
rate = 200000
keys = 100000
start = "2s"
"#
    );
    let scenario = redsim::scenario::parse(
        &toml,
        redsim::scenario::Format::Toml,
        "bench.toml",
        Path::new("."),
    )
    .expect("bench scenario");
    bencher
        .counter(divan::counter::ItemsCount::new(2_000_000u64))
        .with_inputs(|| scenario.clone())
        .bench_local_values(|s| {
            let mut sim = Simulation::new(s, 1).expect("runnable");
            let results = sim.run(&mut ());
            divan::black_box((results, sim.stats.hash.value()))
        });
}

/// `scenarios/reshard.toml`: a master and a replica join, then 1000 slots
/// (about 24 keys each) move to the new master under 4000 requests/s;
/// 40 simulated seconds.
#[divan::bench(sample_count = 5)]
fn reshard_1000_slots_under_load(bencher: Bencher) {
    let scenario = load(Path::new("scenarios/reshard.toml")).expect("bundled scenario");
    bencher
        .with_inputs(|| scenario.clone())
        .bench_local_values(|s| {
            let seed = s.seed;
            let mut sim = Simulation::new(s, seed).expect("runnable");
            let results = sim.run(&mut ());
            assert!(sim.world.manager.log.iter().any(|(_, l)| l == "[OK] done"));
            divan::black_box((results, sim.stats.hash.value()))
        });
}
