//! The simulated network: addresses, endpoints, latency/loss/bandwidth specs,
//! partitions and one-way rules. See `model.rs` for how a message's transit
//! time is decided.

use std::fmt;

pub mod model;
pub use model::*;

use crate::engine::SimTime;

/// An IPv4 address and TCP port, as given to `redis-cli --cluster create`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Addr {
    pub ip: [u8; 4],
    pub port: u16,
}

impl Addr {
    pub fn new(ip: [u8; 4], port: u16) -> Self {
        Addr { ip, port }
    }

    /// Parse `"a.b.c.d:port"`. The error says what was expected.
    pub fn parse(s: &str) -> Result<Addr, String> {
        let bad = || format!("expected \"ip:port\" with an IPv4 address, got {s:?}");
        let (ip, port) = s.rsplit_once(':').ok_or_else(bad)?;
        let parts: Vec<&str> = ip.split('.').collect();
        if parts.len() != 4 {
            return Err(bad());
        }
        let mut out = [0u8; 4];
        for (o, p) in out.iter_mut().zip(&parts) {
            *o = p.parse().map_err(|_| bad())?;
        }
        let port: u16 = port.parse().map_err(|_| bad())?;
        if port == 0 {
            return Err(format!("port 0 is not valid in {s:?}"));
        }
        Ok(Addr { ip: out, port })
    }

    /// The cluster bus port: port + 10000 (`CLUSTER_PORT_INCR`).
    pub fn cport(&self) -> u32 {
        u32::from(self.port) + 10000
    }

    pub fn ip_string(&self) -> String {
        let [a, b, c, d] = self.ip;
        format!("{a}.{b}.{c}.{d}")
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.ip;
        write!(f, "{a}.{b}.{c}.{d}:{}", self.port)
    }
}

/// Something on the network: a Redis process (by world index) or a client
/// population (by `[[workload]]` index).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    Node(u32),
    Clients(u32),
}

/// One-way delay of a message.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LatencySpec {
    /// Always this delay.
    Fixed(SimTime),
    /// Uniform in `[min, max]`.
    Uniform { min: SimTime, max: SimTime },
    /// Normal with this mean and standard deviation, clamped at 0.
    Normal { mean: SimTime, jitter: SimTime },
}

/// The `[network]` table, resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkSpec {
    pub latency: LatencySpec,
    /// Probability that one transmission of a message is lost (TCP then
    /// retransmits it).
    pub loss: f64,
    /// Bits per second of each link.
    pub bandwidth_bps: u64,
}

impl Default for NetworkSpec {
    fn default() -> Self {
        NetworkSpec {
            latency: LatencySpec::Fixed(200),
            loss: 0.0,
            bandwidth_bps: 1_000_000_000,
        }
    }
}
