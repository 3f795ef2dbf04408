//! The discrete-event engine. It knows nothing of Redis: simulated time in
//! microseconds, an event queue ordered by (time, insertion sequence), seeded
//! ChaCha streams split per actor, and the trace hash that every processed
//! event is folded into.
//!
//! Determinism contract: given the same seed and the same sequence of pushes,
//! pops come out in the same order on any machine. Ties in time are broken by
//! insertion order, never by address or hash.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Simulated time in microseconds since the start of the run.
pub type SimTime = u64;

/// One microsecond, millisecond, second of simulated time.
pub const US: SimTime = 1;
pub const MS: SimTime = 1_000;
pub const SEC: SimTime = 1_000_000;

/// The random stream type used by every actor.
pub type Rng = ChaCha8Rng;

/// Who draws from a random stream. Each actor gets its own ChaCha stream
/// derived from the run seed and this identity, so adding a client population
/// does not change what the nodes draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Actor {
    /// A Redis process, by its index in the world (its "pid").
    Node(u32),
    /// One client population (`[[workload]]` entry), by index.
    Clients(u32),
    /// The simulated network (latency, loss) between nodes.
    Network,
    /// The same for the traffic of client populations, so that a workload
    /// does not change the delays the nodes' messages draw.
    ClientNetwork,
    /// The same for replication links, so that replication does not change
    /// the delays the cluster bus's messages draw.
    ReplNetwork,
    /// The fault schedule.
    Faults,
    /// The cluster manager (`redis-cli --cluster`), e.g. its replica shuffle.
    Admin,
    /// The network's draws for the sentinels' messages.
    SentinelNetwork,
}

impl Actor {
    /// The 64-bit ChaCha stream number of this actor.
    fn stream(self) -> u64 {
        match self {
            Actor::Node(i) => (1 << 32) | u64::from(i),
            Actor::Clients(i) => (2 << 32) | u64::from(i),
            Actor::Network => 3 << 32,
            Actor::Faults => 4 << 32,
            Actor::Admin => 5 << 32,
            Actor::ClientNetwork => 6 << 32,
            Actor::ReplNetwork => 7 << 32,
            Actor::SentinelNetwork => 8 << 32,
        }
    }
}

/// The random stream of `actor` in a run with `seed`: the same ChaCha key for
/// the whole run (from the seed), a different stream number per actor.
pub fn actor_rng(seed: u64, actor: Actor) -> Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(actor.stream());
    rng
}

/// A 64-bit running hash of the events of a run. Stable across machines and
/// Rust versions (no `std::hash`): each word is mixed in with a fixed
/// multiply-rotate step and the state is finalised with splitmix64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceHash(u64);

impl Default for TraceHash {
    fn default() -> Self {
        TraceHash(0xcbf2_9ce4_8422_2325)
    }
}

impl TraceHash {
    #[inline]
    pub fn fold(&mut self, word: u64) {
        self.0 = (self.0 ^ word)
            .wrapping_mul(0x0100_0000_01b3_u64.wrapping_add(0x9e37_79b9_7f4a_7c15))
            .rotate_left(29);
    }

    pub fn fold_bytes(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.fold(u64::from_le_bytes(w));
        }
        self.fold(bytes.len() as u64);
    }

    /// The finished value (the state itself is left untouched).
    pub fn value(&self) -> u64 {
        let mut z = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn hex(&self) -> String {
        format!("{:016x}", self.value())
    }
}

/// One queued event. `key` packs (time, insertion sequence) into one `u128`
/// (time in the high 64 bits) so that ordering is a single integer comparison.
struct Entry<E> {
    key: u128,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl<E> Eq for Entry<E> {}
impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Entry<E> {
    // Reversed: BinaryHeap is a max-heap and we want the earliest first.
    fn cmp(&self, other: &Self) -> Ordering {
        other.key.cmp(&self.key)
    }
}

/// The event queue: pops events in (time, insertion sequence) order.
pub struct EventQueue<E> {
    heap: BinaryHeap<Entry<E>>,
    seq: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> EventQueue<E> {
    pub fn new() -> Self {
        EventQueue {
            heap: BinaryHeap::with_capacity(1024),
            seq: 0,
        }
    }

    /// Schedule `event` at `at`. Returns its sequence number.
    #[inline]
    pub fn push(&mut self, at: SimTime, event: E) -> u64 {
        let seq = self.seq;
        self.seq += 1;
        self.heap.push(Entry {
            key: (u128::from(at) << 64) | u128::from(seq),
            event,
        });
        seq
    }

    /// The earliest event, with its time and sequence number.
    #[inline]
    pub fn pop(&mut self) -> Option<(SimTime, u64, E)> {
        self.heap
            .pop()
            .map(|e| ((e.key >> 64) as SimTime, e.key as u64, e.event))
    }

    /// The time of the earliest event, if any.
    pub fn peek_time(&self) -> Option<SimTime> {
        self.heap.peek().map(|e| (e.key >> 64) as SimTime)
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

/// Something the run loop can drive: it handles one event at a time and may
/// push new ones. `engine::run` owns the loop, the clock and the trace hash.
pub trait Model {
    type Event;
    /// Handle `event` at time `now`; new events go into `queue`. Returns a
    /// 64-bit digest of the event (what it was and to whom) for the trace hash.
    fn handle(
        &mut self,
        now: SimTime,
        event: Self::Event,
        queue: &mut EventQueue<Self::Event>,
    ) -> u64;
}

/// The state of a run loop: the clock, the number of events, the hash.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunStats {
    pub now: SimTime,
    pub events: u64,
    pub hash: TraceHash,
}

/// Observers of a run loop: called around every event. They see events and
/// the model, read-only, and cannot change the run (the trace file, the
/// determinism check and the invariant checks use them).
pub trait Hooks<M: Model> {
    /// Before event `seq` at `at` is handled.
    fn before(&mut self, _at: SimTime, _seq: u64, _event: &M::Event, _model: &M) {}
    /// After it was handled and folded into `stats.hash`.
    fn after(&mut self, _stats: &RunStats, _model: &M) {}
}

/// No observers.
impl<M: Model> Hooks<M> for () {}

impl<M: Model, H: Hooks<M> + ?Sized> Hooks<M> for &mut H {
    #[inline]
    fn before(&mut self, at: SimTime, seq: u64, event: &M::Event, model: &M) {
        (**self).before(at, seq, event, model);
    }
    #[inline]
    fn after(&mut self, stats: &RunStats, model: &M) {
        (**self).after(stats, model);
    }
}

/// An observer that may be absent.
impl<M: Model, H: Hooks<M>> Hooks<M> for Option<H> {
    #[inline]
    fn before(&mut self, at: SimTime, seq: u64, event: &M::Event, model: &M) {
        if let Some(h) = self {
            h.before(at, seq, event, model);
        }
    }
    #[inline]
    fn after(&mut self, stats: &RunStats, model: &M) {
        if let Some(h) = self {
            h.after(stats, model);
        }
    }
}

/// Two observers, called in order.
impl<M: Model, A: Hooks<M>, B: Hooks<M>> Hooks<M> for (A, B) {
    #[inline]
    fn before(&mut self, at: SimTime, seq: u64, event: &M::Event, model: &M) {
        self.0.before(at, seq, event, model);
        self.1.before(at, seq, event, model);
    }
    #[inline]
    fn after(&mut self, stats: &RunStats, model: &M) {
        self.0.after(stats, model);
        self.1.after(stats, model);
    }
}

/// Process events in order until the queue is empty or the next event is
/// later than `until`. The clock ends at `until` (or at the last event if the
/// queue ran dry earlier).
pub fn run<M: Model>(
    model: &mut M,
    queue: &mut EventQueue<M::Event>,
    stats: &mut RunStats,
    until: SimTime,
    hooks: &mut impl Hooks<M>,
) {
    while let Some(t) = queue.peek_time() {
        if t > until {
            break;
        }
        let (at, seq, event) = queue.pop().expect("peeked");
        debug_assert!(at >= stats.now, "time went backwards: {at} < {}", stats.now);
        stats.now = at;
        hooks.before(at, seq, &event, model);
        let digest = model.handle(at, event, queue);
        stats.hash.fold(at);
        stats.hash.fold(seq);
        stats.hash.fold(digest);
        stats.events += 1;
        hooks.after(stats, model);
    }
    stats.now = stats.now.max(until);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    #[test]
    fn queue_orders_by_time_then_insertion() {
        let mut q = EventQueue::new();
        q.push(5, "c");
        q.push(1, "a");
        q.push(5, "d");
        q.push(1, "b");
        q.push(3, "x");
        let order: Vec<_> = std::iter::from_fn(|| q.pop().map(|(_, _, e)| e)).collect();
        assert_eq!(order, ["a", "b", "x", "c", "d"]);
    }

    #[test]
    fn packed_keys_order_extreme_times_and_return_seq() {
        let mut q = EventQueue::new();
        q.push(SimTime::MAX, "last");
        q.push(0, "first");
        q.push(1 << 63, "middle");
        q.push(0, "second");
        assert_eq!(q.peek_time(), Some(0));
        assert_eq!(q.pop(), Some((0, 1, "first")));
        assert_eq!(q.pop(), Some((0, 3, "second")));
        assert_eq!(q.pop(), Some((1 << 63, 2, "middle")));
        assert_eq!(q.pop(), Some((SimTime::MAX, 0, "last")));
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn actor_streams_are_independent_and_reproducible() {
        let a1: Vec<u64> = (0..4)
            .map({
                let mut r = actor_rng(7, Actor::Node(0));
                move |_| r.random()
            })
            .collect();
        let a2: Vec<u64> = (0..4)
            .map({
                let mut r = actor_rng(7, Actor::Node(0));
                move |_| r.random()
            })
            .collect();
        let b: Vec<u64> = (0..4)
            .map({
                let mut r = actor_rng(7, Actor::Node(1));
                move |_| r.random()
            })
            .collect();
        let c: Vec<u64> = (0..4)
            .map({
                let mut r = actor_rng(8, Actor::Node(0));
                move |_| r.random()
            })
            .collect();
        assert_eq!(a1, a2);
        assert_ne!(a1, b);
        assert_ne!(a1, c);
    }

    #[test]
    fn trace_hash_depends_on_order_and_content() {
        let mut a = TraceHash::default();
        let mut b = TraceHash::default();
        a.fold(1);
        a.fold(2);
        b.fold(2);
        b.fold(1);
        assert_ne!(a.value(), b.value());
        let mut c = TraceHash::default();
        c.fold(1);
        c.fold(2);
        assert_eq!(a.value(), c.value());
    }

    struct Chain {
        left: u32,
    }
    impl Model for Chain {
        type Event = u32;
        fn handle(&mut self, now: SimTime, ev: u32, q: &mut EventQueue<u32>) -> u64 {
            if self.left > 0 {
                self.left -= 1;
                q.push(now + 10, ev + 1);
            }
            u64::from(ev)
        }
    }

    #[test]
    fn run_stops_at_until_and_counts_events() {
        let mut q = EventQueue::new();
        q.push(0, 0);
        let mut m = Chain { left: 100 };
        let mut st = RunStats::default();
        run(&mut m, &mut q, &mut st, 55, &mut ());
        assert_eq!(st.events, 6); // t = 0,10,..,50
        assert_eq!(st.now, 55);
        assert_eq!(q.peek_time(), Some(60));
    }
}
