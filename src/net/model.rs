//! The network model: for one message, can it cross, and how long does it take?
//!
//! The world owns the TCP connections and asks this module two questions per
//! message: [`Network::reachable`] (is the message blocked by a partition or a
//! one-way rule?) and [`Network::transit`] (how long is it on the wire?). The
//! answer of `transit` is split into a serialization part and a propagation
//! part so that a [`Pipe`] (one direction of one TCP connection) can enforce
//! bandwidth and FIFO order.
//!
//! # Rules, in one place
//!
//! - **Latency** of a message is drawn from the [`LatencySpec`] in force for
//!   its (unordered) pair of endpoints: the `[network]` default, or the last
//!   `latency` fault that covered that pair (see [`Network::set_latency`]).
//! - **Serialization** takes `ceil(bytes * 8 / bandwidth)` µs
//!   ([`Network::serialization`]).
//! - **Loss** is per transmission, with the probability in force for the pair.
//!   TCP does not lose data, it retransmits: a lost transmission is sent again
//!   after the retransmission timeout, which starts at [`TCP_RTO_MIN`] and
//!   doubles with each consecutive loss. At most [`MAX_CONSECUTIVE_LOSSES`]
//!   transmissions in a row are lost; the next one gets through.
//! - **Same host**: a link between two nodes on the same host has a tenth of
//!   the latency and no loss, whatever is in force for the pair.
//! - **Partitions** ([`Network::partition`]): messages cross no group
//!   boundary. Nodes named in no group form one more group together; client
//!   endpoints named in no group stand outside the partition and reach every
//!   node ([`Network::isolate`] puts them on the side of the rest instead).
//! - **One-way rules** ([`Network::one_way`]) drop `from → to` and let
//!   `to → from` flow. They accumulate until [`Network::heal`].
//! - **Blocked bus ports** ([`Network::block_bus_port`]): a firewall drops
//!   what is addressed to a node's cluster bus port (port + 10000): SYNs to
//!   it, and what the other end of a bus connection it accepted sends to
//!   it. What the node sends from that port, and every other connection
//!   (client, replication, its own outbound bus links), still flows. The
//!   world asks [`Network::bus_port_blocked`] for bus connections only.
//! - **Heal** ends every partition, one-way rule and blocked port; latency
//!   and loss changes stay in force.
//!
//! # Determinism
//!
//! Every random draw comes from the `&mut Rng` passed in, in a fixed order
//! (latency first, then one draw per transmission while `loss > 0`). A fixed
//! latency with no loss draws nothing. The normal draw uses only integer and
//! correctly rounded IEEE-754 operations (no `ln`/`cos`, whose last bit
//! depends on the platform's libm), so a run gives the same delays on any
//! machine. No hash map is iterated.
//!
//! # Cost
//!
//! `reachable` is O(1) when no one-way rule is in force (a group id per
//! endpoint) and O(log r) with r blocked pairs otherwise. `transit` is O(1)
//! with no per-pair setting in force and O(log p) with p overridden pairs. No
//! call allocates.

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng as _;
use rand::RngExt as _;

use super::{Endpoint, LatencySpec, NetworkSpec};
use crate::engine::{Rng, SimTime, MS, SEC};

/// The minimum TCP retransmission timeout, Linux's `TCP_RTO_MIN` (200 ms).
/// With the sub-millisecond round trips of a data-centre network the kernel's
/// computed RTO (`srtt + 4 * rttvar`) is always below it, so the first
/// retransmission of a lost segment leaves 200 ms after the original; each
/// further consecutive loss doubles the timeout (exponential backoff).
pub const TCP_RTO_MIN: SimTime = 200 * MS;

/// At most this many consecutive transmissions of one message are lost; the
/// next one gets through. Six losses add 200+400+...+6400 ms = 12.6 s. Linux
/// would go on retrying (`tcp_retries2` = 15, about 15 minutes) and then reset
/// the connection; the cap keeps `loss = 1` meaning "everything arrives very
/// late" rather than "the connection dies", which is what a partition is for.
pub const MAX_CONSECUTIVE_LOSSES: u32 = 6;

/// Latency on a link between two nodes on the same host is the drawn latency
/// divided by this (integer division: 200 µs becomes 20 µs).
pub const SAME_HOST_LATENCY_DIVISOR: SimTime = 10;

/// Group id of the nodes named in no group of a partition ("rest").
const REST: u32 = 0;
/// Group id of endpoints that stand outside any partition and reach everyone.
const OUTSIDE: u32 = u32::MAX;
/// Marker in `client_group`: this client population was named in no group.
const UNNAMED: u32 = u32::MAX - 1;

/// How long one message spends between the sender's `write` and the
/// receiver's `read`, in two parts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Transit {
    /// Time to put the bytes on the wire (`bytes * 8 / bandwidth`): the link
    /// is busy with this message for that long.
    pub serialization: SimTime,
    /// Time from the last bit leaving to the message being readable: the
    /// drawn latency plus any retransmission timeouts.
    pub propagation: SimTime,
    /// How many transmissions of the message were lost (0 when none).
    pub retransmits: u32,
}

impl Transit {
    /// Serialization plus propagation: the transit time on an idle link.
    pub fn total(&self) -> SimTime {
        self.serialization + self.propagation
    }
}

/// Per-pair settings that differ from the defaults (from a `latency` or
/// `loss` fault with `between`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct PairOverride {
    latency: Option<LatencySpec>,
    loss: Option<f64>,
}

/// The simulated network between nodes and client populations.
#[derive(Clone, Debug)]
pub struct Network {
    /// Latency in force for pairs without a per-pair setting.
    latency: LatencySpec,
    /// Loss probability in force for pairs without a per-pair setting.
    loss: f64,
    /// Bits per second of every link.
    bandwidth_bps: u64,
    /// Host of `Endpoint::Node(i)`.
    node_hosts: Vec<u32>,
    /// Whether a partition is in force (false: every group id is ignored).
    partitioned: bool,
    /// Partition group of each node (`REST` when named in no group).
    node_group: Vec<u32>,
    /// Partition group of each client population named in a group, `UNNAMED`
    /// for the others (which then get `unnamed_clients`).
    client_group: Vec<u32>,
    /// Group of the client populations named in no group: `OUTSIDE`, or
    /// `REST` after `isolate`.
    unnamed_clients: u32,
    /// Blocked (from, to) pairs of the one-way rules in force.
    one_way: BTreeSet<(Endpoint, Endpoint)>,
    /// Nodes whose cluster bus port a firewall blocks.
    bus_blocked: BTreeSet<u32>,
    /// Per-pair settings, keyed by the pair in (smaller, larger) order: they
    /// apply in both directions.
    overrides: BTreeMap<(Endpoint, Endpoint), PairOverride>,
}

impl Network {
    /// A network with the `[network]` settings of `spec`, where `node_hosts[i]`
    /// is the host of `Endpoint::Node(i)`. Client endpoints are on no host.
    pub fn new(spec: &NetworkSpec, node_hosts: Vec<u32>) -> Network {
        assert!(spec.bandwidth_bps > 0, "network bandwidth must be positive");
        assert!(
            (0.0..=1.0).contains(&spec.loss),
            "network loss must be in 0..=1, got {}",
            spec.loss
        );
        let n = node_hosts.len();
        Network {
            latency: spec.latency,
            loss: spec.loss,
            bandwidth_bps: spec.bandwidth_bps,
            node_hosts,
            partitioned: false,
            node_group: vec![REST; n],
            client_group: Vec::new(),
            unnamed_clients: OUTSIDE,
            one_way: BTreeSet::new(),
            bus_blocked: BTreeSet::new(),
            overrides: BTreeMap::new(),
        }
    }

    /// A node that joins later (`add-node`) on `host`; returns its index. If
    /// a partition is in force it joins the group of unnamed nodes.
    pub fn add_node(&mut self, host: u32) -> u32 {
        let i = self.node_hosts.len() as u32;
        self.node_hosts.push(host);
        self.node_group.push(REST);
        i
    }

    /// The host of `e`, `None` for a client population.
    pub fn host_of(&self, e: Endpoint) -> Option<u32> {
        match e {
            Endpoint::Node(i) => Some(self.node_hosts[i as usize]),
            Endpoint::Clients(_) => None,
        }
    }

    /// Bits per second of every link.
    pub fn bandwidth_bps(&self) -> u64 {
        self.bandwidth_bps
    }

    /// Whether a partition, a one-way rule or a blocked port is in force.
    pub fn has_rules(&self) -> bool {
        self.partitioned || !self.one_way.is_empty() || !self.bus_blocked.is_empty()
    }

    /// From now on (until [`Network::heal`]) what is addressed to node
    /// `node`'s cluster bus port is dropped.
    pub fn block_bus_port(&mut self, node: u32) {
        self.bus_blocked.insert(node);
    }

    /// Whether a firewall drops what is addressed to `node`'s bus port.
    #[inline]
    pub fn bus_port_blocked(&self, node: u32) -> bool {
        !self.bus_blocked.is_empty() && self.bus_blocked.contains(&node)
    }

    #[inline]
    fn group_of(&self, e: Endpoint) -> u32 {
        match e {
            Endpoint::Node(i) => self.node_group[i as usize],
            Endpoint::Clients(i) => match self.client_group.get(i as usize) {
                Some(&g) if g != UNNAMED => g,
                _ => self.unnamed_clients,
            },
        }
    }

    /// Whether a message from `from` can reach `to`: false when they are on
    /// different sides of the partition in force (an endpoint outside the
    /// partition reaches everyone) or when a one-way rule blocks `from → to`.
    #[inline]
    pub fn reachable(&self, from: Endpoint, to: Endpoint) -> bool {
        if self.partitioned {
            let (a, b) = (self.group_of(from), self.group_of(to));
            if a != b && a != OUTSIDE && b != OUTSIDE {
                return false;
            }
        }
        self.one_way.is_empty() || !self.one_way.contains(&(from, to))
    }

    /// Replace any previous partition with `groups`: from now on messages
    /// cross no group boundary. Nodes named in no group form one more group
    /// together ("rest"). Client populations named in no group stand outside
    /// the partition and reach every node. An endpoint named in several groups
    /// belongs to the last. One-way rules in force stay.
    pub fn partition(&mut self, groups: &[Vec<Endpoint>]) {
        self.node_group.fill(REST);
        self.client_group.clear();
        self.unnamed_clients = OUTSIDE;
        for (k, group) in groups.iter().enumerate() {
            let id = k as u32 + 1;
            for &e in group {
                match e {
                    Endpoint::Node(i) => self.node_group[i as usize] = id,
                    Endpoint::Clients(i) => {
                        let i = i as usize;
                        if self.client_group.len() <= i {
                            self.client_group.resize(i + 1, UNNAMED);
                        }
                        self.client_group[i] = id;
                    }
                }
            }
        }
        self.partitioned = !groups.is_empty();
    }

    /// The `isolate` fault: `e` alone on one side, every other node and every
    /// client population on the other (`[[e], ["rest", "clients"]]`).
    pub fn isolate(&mut self, e: Endpoint) {
        self.partition(&[vec![e]]);
        self.unnamed_clients = REST;
    }

    /// Add a one-way rule: messages from any of `from` to any of `to` are
    /// dropped; the reverse direction still flows. Rules accumulate until
    /// [`Network::heal`]. A pair of an endpoint with itself is ignored.
    pub fn one_way(&mut self, from: &[Endpoint], to: &[Endpoint]) {
        for &a in from {
            for &b in to {
                if a != b {
                    self.one_way.insert((a, b));
                }
            }
        }
    }

    /// End every partition, one-way rule and blocked port. Latency and loss
    /// changes stay.
    pub fn heal(&mut self) {
        self.bus_blocked.clear();
        self.partitioned = false;
        self.node_group.fill(REST);
        self.client_group.clear();
        self.unnamed_clients = OUTSIDE;
        self.one_way.clear();
    }

    /// Apply `f` to the override of every pair with one end in `a` and the
    /// other in `b` (both directions: the key is the ordered pair).
    fn each_pair(&mut self, a: &[Endpoint], b: &[Endpoint], mut f: impl FnMut(&mut PairOverride)) {
        for &x in a {
            for &y in b {
                if x != y {
                    f(self.overrides.entry((x.min(y), x.max(y))).or_default());
                }
            }
        }
    }

    /// The `latency` fault: from now on messages take `latency`, between every
    /// pair (`between = None`, which also ends earlier per-pair latencies) or
    /// only between pairs with one end in each group, in both directions
    /// (overriding earlier settings for those pairs).
    pub fn set_latency(
        &mut self,
        latency: LatencySpec,
        between: Option<(&[Endpoint], &[Endpoint])>,
    ) {
        match between {
            None => {
                self.latency = latency;
                for o in self.overrides.values_mut() {
                    o.latency = None;
                }
                self.overrides
                    .retain(|_, o| o.latency.is_some() || o.loss.is_some());
            }
            Some((a, b)) => self.each_pair(a, b, |o| o.latency = Some(latency)),
        }
    }

    /// The `loss` fault: from now on each transmission is lost with
    /// probability `loss`, between every pair (`between = None`, which also
    /// ends earlier per-pair losses) or only between pairs with one end in
    /// each group, in both directions. Same-host links stay lossless.
    pub fn set_loss(&mut self, loss: f64, between: Option<(&[Endpoint], &[Endpoint])>) {
        assert!(
            (0.0..=1.0).contains(&loss),
            "loss must be in 0..=1, got {loss}"
        );
        match between {
            None => {
                self.loss = loss;
                for o in self.overrides.values_mut() {
                    o.loss = None;
                }
                self.overrides
                    .retain(|_, o| o.latency.is_some() || o.loss.is_some());
            }
            Some((a, b)) => self.each_pair(a, b, |o| o.loss = Some(loss)),
        }
    }

    /// The latency and loss in force between `a` and `b` (either direction).
    #[inline]
    pub fn link(&self, a: Endpoint, b: Endpoint) -> (LatencySpec, f64) {
        if self.overrides.is_empty() {
            return (self.latency, self.loss);
        }
        match self.overrides.get(&(a.min(b), a.max(b))) {
            None => (self.latency, self.loss),
            Some(o) => (
                o.latency.unwrap_or(self.latency),
                o.loss.unwrap_or(self.loss),
            ),
        }
    }

    /// Whether `a` and `b` are two nodes on the same host.
    #[inline]
    pub fn same_host(&self, a: Endpoint, b: Endpoint) -> bool {
        match (a, b) {
            (Endpoint::Node(i), Endpoint::Node(j)) => {
                self.node_hosts[i as usize] == self.node_hosts[j as usize]
            }
            _ => false,
        }
    }

    /// Time to put `bytes` on a link: `ceil(bytes * 8 / bandwidth)` µs (so
    /// any non-empty message takes at least 1 µs).
    #[inline]
    pub fn serialization(&self, bytes: u64) -> SimTime {
        let bits_us = u128::from(bytes) * 8 * u128::from(SEC);
        bits_us.div_ceil(u128::from(self.bandwidth_bps)) as SimTime
    }

    /// The transit of one message of `bytes` bytes from `from` to `to`,
    /// assuming it is reachable (this does not check). Latency is drawn from
    /// the spec in force for the pair, divided by 10 on a same-host link; then,
    /// unless the link is same-host or lossless, each transmission is lost
    /// with the pair's loss probability, adding `TCP_RTO_MIN * 2^k` for the
    /// k-th consecutive loss (k from 0, at most `MAX_CONSECUTIVE_LOSSES`).
    #[inline]
    pub fn transit(&self, from: Endpoint, to: Endpoint, bytes: u64, rng: &mut Rng) -> Transit {
        let (latency, loss) = self.link(from, to);
        let mut propagation = draw_latency(latency, rng);
        let mut retransmits = 0;
        if self.same_host(from, to) {
            propagation /= SAME_HOST_LATENCY_DIVISOR;
        } else if loss > 0.0 {
            while retransmits < MAX_CONSECUTIVE_LOSSES && chance(rng, loss) {
                retransmits += 1;
            }
            // 200 ms * (1 + 2 + ... + 2^(k-1)) = 200 ms * (2^k - 1).
            propagation += TCP_RTO_MIN * ((1 << retransmits) - 1);
        }
        Transit {
            serialization: self.serialization(bytes),
            propagation,
            retransmits,
        }
    }

    /// Transit time of one message on an idle link: serialization plus
    /// propagation (see [`Network::transit`]).
    #[inline]
    pub fn delay(&self, from: Endpoint, to: Endpoint, bytes: u64, rng: &mut Rng) -> SimTime {
        self.transit(from, to, bytes, rng).total()
    }
}

/// True with probability `p`: a 53-bit uniform in [0, 1) below `p`.
#[inline]
fn chance(rng: &mut Rng, p: f64) -> bool {
    ((rng.next_u64() >> 11) as f64) * (1.0 / (1u64 << 53) as f64) < p
}

/// One latency draw.
/// - `Fixed(t)`: `t`, drawing nothing.
/// - `Uniform { min, max }`: uniform on the integers of `[min, max]`, both
///   ends included (the bounds are swapped if given in the wrong order).
/// - `Normal { mean, jitter }`: see [`draw_normal`].
#[inline]
pub fn draw_latency(spec: LatencySpec, rng: &mut Rng) -> SimTime {
    match spec {
        LatencySpec::Fixed(t) => t,
        LatencySpec::Uniform { min, max } => {
            if min == max {
                min
            } else {
                rng.random_range(min.min(max)..=min.max(max))
            }
        }
        LatencySpec::Normal { mean, jitter } => draw_normal(mean, jitter, rng),
    }
}

/// A normal draw with mean `mean` and standard deviation `jitter`, rounded to
/// the microsecond and clamped at 0 (so with `jitter` comparable to `mean` the
/// average is slightly above `mean`).
///
/// The standard normal is the Irwin–Hall approximation: the sum of 12
/// independent uniforms, centred. Each uniform is 21 bits of a `u64` draw (4
/// draws give 12); the sum has variance `2^42 - 1`, so dividing the centred sum
/// by `2^21` gives mean 0 and standard deviation 1 (to 1 part in 10^12). The
/// tails are cut at ±6σ, which a network never notices. Unlike Box–Muller it
/// needs no `ln`/`cos`, so the result is bit-identical on every platform.
pub fn draw_normal(mean: SimTime, jitter: SimTime, rng: &mut Rng) -> SimTime {
    if jitter == 0 {
        return mean;
    }
    const MASK: u64 = (1 << 21) - 1;
    let mut sum = 0u64;
    for _ in 0..4 {
        let w = rng.next_u64();
        sum += (w & MASK) + ((w >> 21) & MASK) + ((w >> 42) & MASK);
    }
    let z = (sum as f64 - 6.0 * MASK as f64) / (1u64 << 21) as f64;
    let v = mean as f64 + jitter as f64 * z;
    if v <= 0.0 {
        0
    } else {
        v.round() as SimTime
    }
}

/// One direction of one TCP connection. It keeps the two orderings a real
/// connection has: bytes are serialized one message after another (a message
/// starts on the wire only once the previous one is fully sent), and the
/// receiver reads them in order (a message never becomes readable before the
/// previous one, so a retransmitted message delays those behind it:
/// head-of-line blocking). A new connection starts with a new `Pipe`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pipe {
    /// When the link finishes sending the last message written to it.
    busy_until: SimTime,
    /// When the last message written to it becomes readable.
    last_arrival: SimTime,
}

impl Pipe {
    pub fn new() -> Pipe {
        Pipe::default()
    }

    /// When a message written at `now` becomes readable, given its
    /// serialization and propagation times: it starts sending at
    /// `max(now, end of the previous message's sending)`, is sent after
    /// `serialization`, travels `propagation`, and is readable no earlier
    /// than the previous message.
    #[inline]
    pub fn arrival(
        &mut self,
        now: SimTime,
        serialization: SimTime,
        propagation: SimTime,
    ) -> SimTime {
        let sent = now.max(self.busy_until) + serialization;
        self.busy_until = sent;
        let at = (sent + propagation).max(self.last_arrival);
        self.last_arrival = at;
        at
    }

    /// [`Pipe::arrival`] of a [`Transit`].
    #[inline]
    pub fn send(&mut self, now: SimTime, transit: Transit) -> SimTime {
        self.arrival(now, transit.serialization, transit.propagation)
    }

    /// When the last message written has left the sender: its end of the
    /// connection is writable again (0 if none).
    pub fn busy_until(&self) -> SimTime {
        self.busy_until
    }

    /// When the last message written becomes readable (0 if none).
    pub fn last_arrival(&self) -> SimTime {
        self.last_arrival
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{actor_rng, Actor};
    use Endpoint::{Clients as C, Node as N};

    fn spec(latency: LatencySpec, loss: f64) -> NetworkSpec {
        NetworkSpec {
            latency,
            loss,
            bandwidth_bps: 1_000_000_000,
        }
    }

    /// `n` nodes, each on its own host.
    fn net(n: u32) -> Network {
        Network::new(&NetworkSpec::default(), (0..n).collect())
    }

    fn rng() -> Rng {
        actor_rng(42, Actor::Network)
    }

    #[test]
    fn default_is_fixed_latency_plus_serialization() {
        let n = net(3);
        let mut r = rng();
        // 125 bytes = 1000 bits = 1 µs at 1 Gbit/s.
        assert_eq!(n.delay(N(0), N(1), 125, &mut r), 201);
        assert_eq!(n.delay(C(0), N(1), 0, &mut r), 200);
        assert_eq!(n.serialization(125_000), 1000);
        assert_eq!(n.serialization(1), 1, "rounded up");
        assert_eq!(n.serialization(0), 0);
    }

    #[test]
    fn same_host_is_a_tenth_of_the_latency_and_lossless() {
        let n = Network::new(&spec(LatencySpec::Fixed(200), 0.9), vec![0, 0, 1]);
        let mut r = rng();
        for _ in 0..1000 {
            let t = n.transit(N(0), N(1), 0, &mut r);
            assert_eq!(t.propagation, 20);
            assert_eq!(t.retransmits, 0);
        }
        let lost = (0..1000)
            .filter(|_| n.transit(N(0), N(2), 0, &mut r).retransmits > 0)
            .count();
        assert!(lost > 800, "cross-host links keep their loss: {lost}");
        // A client is on no host.
        assert!((0..100).any(|_| n.transit(C(0), N(0), 0, &mut r).retransmits > 0));
    }

    #[test]
    fn partition_blocks_both_ways() {
        let mut n = net(4);
        n.partition(&[vec![N(0), N(1)], vec![N(2), N(3)]]);
        assert!(!n.reachable(N(0), N(2)));
        assert!(!n.reachable(N(2), N(0)));
        assert!(!n.reachable(N(1), N(3)));
        assert!(n.reachable(N(0), N(1)));
        assert!(n.reachable(N(3), N(2)));
        // A new partition replaces the old one.
        n.partition(&[vec![N(0), N(2)]]);
        assert!(n.reachable(N(0), N(2)));
        assert!(!n.reachable(N(0), N(1)));
        assert!(n.reachable(N(1), N(3)));
    }

    #[test]
    fn unnamed_nodes_form_one_group() {
        let mut n = net(5);
        n.partition(&[vec![N(0)], vec![N(1)]]);
        assert!(n.reachable(N(2), N(3)));
        assert!(n.reachable(N(4), N(2)));
        assert!(!n.reachable(N(2), N(0)));
        assert!(!n.reachable(N(1), N(4)));
        assert!(!n.reachable(N(0), N(1)));
        // A node added during the partition joins the unnamed group.
        let j = n.add_node(9);
        assert!(n.reachable(N(j), N(2)));
        assert!(!n.reachable(N(j), N(0)));
    }

    #[test]
    fn unnamed_clients_stand_outside() {
        let mut n = net(3);
        n.partition(&[vec![N(0)], vec![N(1), C(1)]]);
        for node in [N(0), N(1), N(2)] {
            assert!(n.reachable(C(0), node));
            assert!(n.reachable(node, C(0)));
            assert!(n.reachable(C(7), node));
        }
        // A named client is on its group's side.
        assert!(n.reachable(C(1), N(1)));
        assert!(!n.reachable(C(1), N(0)));
        assert!(!n.reachable(N(2), C(1)));
    }

    #[test]
    fn isolate_puts_everyone_else_together() {
        let mut n = net(3);
        n.isolate(N(0));
        for e in [N(1), N(2), C(0), C(3)] {
            assert!(!n.reachable(N(0), e));
            assert!(!n.reachable(e, N(0)));
        }
        assert!(n.reachable(C(0), N(1)));
        assert!(n.reachable(N(2), C(3)));
        assert!(n.reachable(N(1), N(2)));
        // The same written as explicit groups.
        let mut m = net(3);
        m.partition(&[vec![N(0)], vec![N(1), N(2), C(0)]]);
        assert!(!m.reachable(C(0), N(0)));
        assert!(m.reachable(C(0), N(2)));
    }

    #[test]
    fn one_way_is_asymmetric_and_accumulates() {
        let mut n = net(3);
        n.one_way(&[N(0)], &[N(1)]);
        assert!(!n.reachable(N(0), N(1)));
        assert!(n.reachable(N(1), N(0)));
        assert!(n.reachable(N(0), N(2)));
        n.one_way(&[N(2), C(0)], &[N(0)]);
        assert!(!n.reachable(N(0), N(1)), "earlier rule still in force");
        assert!(!n.reachable(N(2), N(0)));
        assert!(!n.reachable(C(0), N(0)));
        assert!(n.reachable(N(0), C(0)));
        // A partition does not end one-way rules.
        n.partition(&[vec![N(2)]]);
        assert!(!n.reachable(N(0), N(1)));
    }

    #[test]
    fn heal_ends_rules_but_keeps_latency_and_loss() {
        let mut n = net(3);
        n.partition(&[vec![N(0)], vec![C(0)]]);
        n.one_way(&[N(1)], &[N(2)]);
        n.set_latency(LatencySpec::Fixed(7000), Some((&[N(1)], &[N(2)])));
        n.set_loss(0.25, None);
        assert!(n.has_rules());
        n.heal();
        assert!(!n.has_rules());
        for a in [N(0), N(1), N(2), C(0)] {
            for b in [N(0), N(1), N(2), C(0)] {
                assert!(n.reachable(a, b), "{a:?} -> {b:?}");
            }
        }
        assert_eq!(n.link(N(2), N(1)), (LatencySpec::Fixed(7000), 0.25));
        // After heal, unnamed clients are outside again (not REST as after isolate).
        n.isolate(N(0));
        n.heal();
        n.partition(&[vec![N(0)]]);
        assert!(n.reachable(C(0), N(0)));
    }

    #[test]
    fn a_blocked_bus_port_is_a_rule_until_heal() {
        let mut n = net(3);
        n.block_bus_port(1);
        assert!(n.bus_port_blocked(1));
        assert!(!n.bus_port_blocked(0));
        assert!(n.has_rules());
        // Only the bus port: the nodes still reach each other otherwise.
        assert!(n.reachable(N(0), N(1)));
        n.heal();
        assert!(!n.bus_port_blocked(1));
        assert!(!n.has_rules());
    }

    #[test]
    fn per_pair_latency_overrides_and_later_settings_win() {
        let mut n = net(4);
        let mut r = rng();
        n.set_latency(LatencySpec::Fixed(5000), Some((&[N(0)], &[N(1), N(2)])));
        assert_eq!(n.delay(N(0), N(1), 0, &mut r), 5000);
        assert_eq!(n.delay(N(2), N(0), 0, &mut r), 5000, "both directions");
        assert_eq!(n.delay(N(1), N(2), 0, &mut r), 200, "same group: untouched");
        assert_eq!(n.delay(N(0), N(3), 0, &mut r), 200);
        // A later per-pair setting overrides for its pairs only.
        n.set_latency(LatencySpec::Fixed(9000), Some((&[N(1)], &[N(0)])));
        assert_eq!(n.delay(N(0), N(1), 0, &mut r), 9000);
        assert_eq!(n.delay(N(0), N(2), 0, &mut r), 5000);
        // A per-pair loss leaves the pair's latency alone.
        n.set_loss(0.5, Some((&[N(0)], &[N(2)])));
        assert_eq!(n.link(N(0), N(2)), (LatencySpec::Fixed(5000), 0.5));
        // A later global setting applies to every pair.
        n.set_latency(LatencySpec::Fixed(1000), None);
        assert_eq!(n.link(N(0), N(1)), (LatencySpec::Fixed(1000), 0.0));
        assert_eq!(n.link(N(0), N(2)), (LatencySpec::Fixed(1000), 0.5));
        n.set_loss(0.0, None);
        assert!(n.overrides.is_empty());
        // A per-pair latency applies to the same-host rule too.
        let mut h = Network::new(&NetworkSpec::default(), vec![0, 0]);
        h.set_latency(LatencySpec::Fixed(1000), Some((&[N(0)], &[N(1)])));
        assert_eq!(h.delay(N(0), N(1), 0, &mut r), 100);
    }

    #[test]
    fn loss_delays_by_doubling_rto() {
        let n = Network::new(&spec(LatencySpec::Fixed(200), 0.5), vec![0, 1]);
        let mut r = rng();
        let total = 20_000;
        let mut by_losses = [0usize; (MAX_CONSECUTIVE_LOSSES + 1) as usize];
        for _ in 0..total {
            let t = n.transit(N(0), N(1), 0, &mut r);
            let k = t.retransmits;
            assert_eq!(t.propagation, 200 + TCP_RTO_MIN * ((1 << k) - 1));
            by_losses[k as usize] += 1;
        }
        let late = total - by_losses[0];
        // About half are late by >= 200 ms, a quarter by >= 600 ms, ...
        assert!(
            (0.47..0.53).contains(&(late as f64 / total as f64)),
            "{by_losses:?}"
        );
        let twice = late - by_losses[1];
        assert!(
            (0.22..0.28).contains(&(twice as f64 / total as f64)),
            "{by_losses:?}"
        );
        // ... and 1/64 hit the cap of 6 consecutive losses (12.6 s late).
        let capped = by_losses[MAX_CONSECUTIVE_LOSSES as usize] as f64 / total as f64;
        assert!((0.01..0.022).contains(&capped), "{by_losses:?}");

        let all = Network::new(&spec(LatencySpec::Fixed(200), 1.0), vec![0, 1]);
        assert_eq!(all.delay(N(0), N(1), 0, &mut r), 200 + 12_600 * MS);
    }

    #[test]
    fn uniform_stays_within_inclusive_bounds() {
        let n = Network::new(
            &spec(LatencySpec::Uniform { min: 100, max: 110 }, 0.0),
            vec![0, 1],
        );
        let mut r = rng();
        let mut seen = [false; 11];
        let mut sum = 0;
        for _ in 0..10_000 {
            let d = n.delay(N(0), N(1), 0, &mut r);
            assert!((100..=110).contains(&d), "{d}");
            seen[(d - 100) as usize] = true;
            sum += d;
        }
        assert!(seen.iter().all(|&s| s), "every value, both ends included");
        let mean = sum as f64 / 10_000.0;
        assert!((104.8..105.2).contains(&mean), "{mean}");
    }

    #[test]
    fn normal_has_the_right_mean_and_spread_and_never_goes_negative() {
        let mut r = rng();
        let xs: Vec<f64> = (0..20_000)
            .map(|_| draw_normal(1000, 100, &mut r) as f64)
            .collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let sd = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64).sqrt();
        assert!((997.0..1003.0).contains(&mean), "{mean}");
        assert!((97.0..103.0).contains(&sd), "{sd}");
        // About 68% within one standard deviation.
        let within =
            xs.iter().filter(|&&x| (x - 1000.0).abs() <= 100.0).count() as f64 / xs.len() as f64;
        assert!((0.66..0.70).contains(&within), "{within}");
        // Clamped at 0, and a zero jitter draws nothing.
        assert!((0..10_000).all(|_| draw_normal(10, 100, &mut r) < 700));
        let before = r.clone();
        assert_eq!(draw_normal(5, 0, &mut r), 5);
        assert_eq!(r, before);
        let n = Network::new(
            &spec(
                LatencySpec::Normal {
                    mean: 10,
                    jitter: 100,
                },
                0.0,
            ),
            vec![0, 1],
        );
        let zeros = (0..1000)
            .filter(|_| n.delay(N(0), N(1), 0, &mut r) == 0)
            .count();
        assert!(zeros > 300, "clamped draws are 0: {zeros}");
    }

    #[test]
    fn pipe_keeps_fifo_order() {
        let mut p = Pipe::new();
        assert_eq!(p.arrival(0, 1, 1000), 1001);
        // Sent later with a shorter delay: still after the first.
        assert_eq!(p.arrival(10, 1, 5), 1001);
        assert_eq!(p.arrival(2000, 1, 5), 2006);
        assert_eq!(p.last_arrival(), 2006);
    }

    #[test]
    fn pipe_serializes_at_the_bandwidth() {
        let n = net(2);
        let mut r = rng();
        let mut p = Pipe::new();
        // Three 125 kB messages written at once: 1 ms each on a 1 Gbit/s link.
        let arrivals: Vec<SimTime> = (0..3)
            .map(|_| p.send(0, n.transit(N(0), N(1), 125_000, &mut r)))
            .collect();
        assert_eq!(arrivals, [1200, 2200, 3200]);
        // Once the link is idle again a message goes out at once.
        assert_eq!(p.arrival(10_000, 1000, 200), 11_200);
    }

    #[test]
    fn same_seed_same_delays() {
        let spec = spec(
            LatencySpec::Normal {
                mean: 300,
                jitter: 50,
            },
            0.1,
        );
        let n = Network::new(&spec, vec![0, 1, 1]);
        let draw = |seed| {
            let mut r = actor_rng(seed, Actor::Network);
            (0..500)
                .map(|i| n.delay(N(i % 3), N((i + 1) % 3), u64::from(i), &mut r))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
        let mut u = n.clone();
        u.set_latency(
            LatencySpec::Uniform { min: 10, max: 5000 },
            Some((&[N(0)], &[N(1)])),
        );
        let mut r1 = actor_rng(3, Actor::Network);
        let mut r2 = actor_rng(3, Actor::Network);
        let a: Vec<_> = (0..200).map(|_| u.delay(N(0), N(1), 10, &mut r1)).collect();
        let b: Vec<_> = (0..200).map(|_| u.delay(N(1), N(0), 10, &mut r2)).collect();
        assert_eq!(a, b);
    }
}
