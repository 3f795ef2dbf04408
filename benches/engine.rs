//! Benchmarks of the engine alone (event queue + run loop) and of the network
//! model's per-message decision.
//!
//! Run with `cargo bench --bench engine`.

use divan::counter::ItemsCount;
use divan::Bencher;
use redsim::engine::{actor_rng, run, Actor, EventQueue, Model, RunStats, SimTime};
use redsim::net::{Endpoint, LatencySpec, Network, NetworkSpec};

fn main() {
    divan::main();
}

/// Number of actors, i.e. the number of events held in the queue at any time.
const ACTORS: u32 = 1000;
/// Events processed per benchmark iteration.
const EVENTS: u64 = 1_000_000;

/// A model of `ACTORS` actors, each rescheduling itself at a pseudo-random
/// future time (1..=1024 µs later) until `left` reaches 0. Deterministic: the
/// step is drawn from a per-actor xorshift state, not from an OS source.
struct Reschedule {
    state: Vec<u64>,
    left: u64,
}

impl Reschedule {
    fn new() -> Self {
        Reschedule {
            state: (0..ACTORS)
                .map(|i| {
                    0x9e37_79b9_7f4a_7c15 ^ (u64::from(i) + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9)
                })
                .collect(),
            left: EVENTS - u64::from(ACTORS),
        }
    }
}

impl Model for Reschedule {
    type Event = u32;

    #[inline]
    fn handle(&mut self, now: SimTime, actor: u32, queue: &mut EventQueue<u32>) -> u64 {
        let s = &mut self.state[actor as usize];
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        if self.left > 0 {
            self.left -= 1;
            queue.push(now + 1 + (*s & 1023), actor);
        }
        u64::from(actor)
    }
}

fn setup() -> (Reschedule, EventQueue<u32>) {
    let model = Reschedule::new();
    let mut queue = EventQueue::new();
    for a in 0..ACTORS {
        queue.push(SimTime::from(a % 97), a);
    }
    (model, queue)
}

/// 1 M events through `engine::run`, with ~1000 events in the queue.
#[divan::bench(sample_count = 20, sample_size = 1)]
fn engine_run_1m_events(bencher: Bencher) {
    bencher
        .counter(ItemsCount::new(EVENTS))
        .with_inputs(setup)
        .bench_local_values(|(mut model, mut queue)| {
            let mut stats = RunStats::default();
            run(&mut model, &mut queue, &mut stats, SimTime::MAX, &mut ());
            assert_eq!(stats.events, EVENTS);
            divan::black_box(stats.hash.value())
        });
}

/// Messages per iteration of the network benchmarks.
const MESSAGES: u32 = 1024;

/// 12 nodes on 6 hosts (two per host), 4 client populations.
fn network(spec: &NetworkSpec) -> Network {
    Network::new(spec, (0..12).map(|i| i % 6).collect())
}

fn bench_delay(bencher: Bencher, net: Network) {
    let mut rng = actor_rng(1, Actor::Network);
    bencher.counter(ItemsCount::new(MESSAGES)).bench_local(|| {
        let mut sum = 0;
        for i in 0..MESSAGES {
            let from = if i % 4 == 0 {
                Endpoint::Clients(i % 3)
            } else {
                Endpoint::Node(i % 12)
            };
            let to = Endpoint::Node((i * 7 + 1) % 12);
            if net.reachable(from, to) {
                sum += net.delay(from, to, u64::from(i % 256) * 16, &mut rng);
            }
        }
        divan::black_box(sum)
    });
}

/// `reachable` + `delay` with the default network: fixed latency, no loss,
/// no rules (the hot path).
#[divan::bench]
fn network_delay_default(bencher: Bencher) {
    bench_delay(bencher, network(&NetworkSpec::default()));
}

/// `reachable` + `delay` with everything in force: normal latency, 1% loss,
/// a partition, one-way rules and per-pair latency overrides.
#[divan::bench]
fn network_delay_with_rules(bencher: Bencher) {
    let spec = NetworkSpec {
        latency: LatencySpec::Normal {
            mean: 300,
            jitter: 50,
        },
        loss: 0.01,
        ..NetworkSpec::default()
    };
    let mut net = network(&spec);
    let n = Endpoint::Node;
    net.partition(&[vec![n(0), n(1), n(2)], vec![n(3), n(4)]]);
    net.one_way(&[n(5), n(6)], &[n(7), n(8)]);
    net.set_latency(
        LatencySpec::Uniform {
            min: 1000,
            max: 5000,
        },
        Some((&[n(9), n(10)], &[n(11), n(5), n(6)])),
    );
    bench_delay(bencher, net);
}
