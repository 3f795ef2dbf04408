//! Benchmarks of the engine alone (event queue + run loop) and of the network
//! model's per-message decision.
//!
//! Run with `cargo bench --bench engine`.

use divan::counter::ItemsCount;
use divan::Bencher;
use redsim::engine::{actor_rng, run, Actor, EventQueue, Model, RunStats, SimTime};

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
            run(&mut model, &mut queue, &mut stats, SimTime::MAX, |_, _| {});
            assert_eq!(stats.events, EVENTS);
            divan::black_box(stats.hash.value())
        });
}

#[allow(dead_code)]
fn _uses(_: Actor) {
    let _ = actor_rng(0, Actor::Network);
}
