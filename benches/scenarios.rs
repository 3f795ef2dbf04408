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

/// `scenarios/bench/clients-3x3.toml`: client throughput on a 3+3 cluster,
/// 200 connections asking 200 000 requests per simulated second (half GET,
/// half SET of 100-byte values over 100 000 keys) for 10 simulated seconds:
/// 2 M requests, no faults.
#[divan::bench(sample_count = 5)]
fn clients_3x3_2m_requests(bencher: Bencher) {
    bench_clients(bencher, None);
}

/// [`clients_3x3_2m_requests`] with `maxmemory 4mb` and `allkeys-lru`: each
/// master holds about 7 400 of its 33 000 keys (the rest of the 4 MB is the
/// empty node and the 1 MB backlog) and evicts before most writes (about
/// 760 000 evictions in all).
#[divan::bench(sample_count = 5)]
fn clients_3x3_2m_requests_evicting(bencher: Bencher) {
    bench_clients(bencher, Some(4 << 20));
}

fn bench_clients(bencher: Bencher, maxmemory: Option<u64>) {
    let mut scenario =
        load(Path::new("scenarios/bench/clients-3x3.toml")).expect("bundled scenario");
    if let Some(bytes) = maxmemory {
        for n in &mut scenario.nodes {
            n.config.maxmemory_bytes = bytes;
            n.config.maxmemory_policy = redsim::node::config::MaxmemoryPolicy::AllkeysLru;
        }
    }
    bencher
        .counter(divan::counter::ItemsCount::new(2_000_000u64))
        .with_inputs(|| scenario.clone())
        .bench_local_values(|s| {
            let mut sim = Simulation::new(s, 1).expect("runnable");
            let results = sim.run(&mut ());
            divan::black_box((results, sim.stats.hash.value()))
        });
}

/// Gossip at scale: 50 masters and 50 replicas created by redis-cli, 20
/// simulated seconds (each node pings every other at least every
/// node-timeout/2 with a tenth of the cluster in each message).
#[divan::bench(sample_count = 3)]
fn gossip_100_nodes_20s(bencher: Bencher) {
    let toml = "duration = \"20s\"\n[cluster]\nnodes = 100\nreplicas = 1\n[config]\ncluster-node-timeout = 15000\n";
    let scenario = redsim::scenario::parse(
        toml,
        redsim::scenario::Format::Toml,
        "gossip.toml",
        Path::new("."),
    )
    .expect("bench scenario");
    bencher
        .with_inputs(|| scenario.clone())
        .bench_local_values(|s| {
            let mut sim = Simulation::new(s, 1).expect("runnable");
            sim.run_until(20 * redsim::engine::SEC, &mut ());
            divan::black_box(sim.stats.hash.value())
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
