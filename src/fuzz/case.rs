//! One fuzz case: what a run draws, swarm-style, and the scenario file it
//! becomes.
//!
//! A case is plain data drawn by a proptest [`Strategy`], so that proptest
//! shrinks it: fewer episodes, fewer nodes, the first (plainest) option of
//! each setting, shorter episodes. Faults come in *episodes* that end
//! themselves (a kill and its restart, a partition and its heal), so that a
//! shrunk case stays a schedule a person would write. Node and host numbers
//! are drawn wide and taken modulo the cluster's size when the file is
//! written, so that a case stays valid while its cluster shrinks.

use std::fmt::Write;

use proptest::prelude::*;

use crate::engine::{SimTime, MS};

/// The cluster, its configuration and its clients, when the campaign has no
/// base scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Setup {
    pub masters: u32,
    pub replicas: u32,
    /// Nodes share hosts (`hosts = masters`): a master and a replica of
    /// another shard on each machine, so `crash-host` takes out two nodes.
    pub shared_hosts: bool,
    pub node_timeout_ms: u64,
    pub validity_factor: u32,
    pub migration_barrier: u32,
    pub require_full_coverage: bool,
    pub persistence: Persistence,
    pub workload: Option<Workload>,
}

/// What the nodes keep on disk for a restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persistence {
    /// Redis's defaults: RDB save points, no AOF.
    Default,
    /// `save ""`: nothing (a restarted master comes back empty).
    None,
    /// `appendonly yes` with `appendfsync everysec`.
    AofEverysec,
    /// `appendonly yes` with `appendfsync always`.
    AofAlways,
}

impl Persistence {
    fn config(self) -> &'static str {
        match self {
            Persistence::Default => "",
            Persistence::None => "save = \"\"\n",
            Persistence::AofEverysec => "appendonly = \"yes\"\nappendfsync = \"everysec\"\n",
            Persistence::AofAlways => "appendonly = \"yes\"\nappendfsync = \"always\"\n",
        }
    }
}

/// One client population.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    pub clients: u32,
    pub rate: u32,
    pub keys: u32,
}

/// A fault and what ends it.
#[derive(Clone, Debug, PartialEq)]
pub struct Episode {
    pub at_ms: u64,
    pub length_ms: u64,
    pub kind: Kind,
}

/// What an episode does. `node`, `host`, and the bits of `side`/`from`/`to`
/// (node `i` is bit `i`) are taken modulo the cluster's size.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// `kill`, then `restart` after the episode's length unless `stays_dead`.
    Kill { node: u32, stays_dead: bool },
    /// `pause`, then `resume`.
    Pause { node: u32 },
    /// `crash-host`, then `restart` of each of its nodes unless `stays_dead`.
    CrashHost { host: u32, stays_dead: bool },
    /// `isolate`, then `heal`.
    Isolate { node: u32 },
    /// `partition` of the nodes in `side` from the rest and the clients,
    /// then `heal`.
    Partition { side: u32 },
    /// `one-way` from the nodes in `from` to those in `to`, then `heal`.
    OneWay { from: u32, to: u32 },
    /// `latency` of `ms` everywhere, then back to the scenario's.
    Latency { ms: u32 },
    /// `loss` of `percent` everywhere, then 0.
    Loss { percent: u32 },
    /// `failover` sent to a replica (`node` counts replicas only), in mode
    /// 0 default, 1 force, 2 takeover. One fault; nothing ends it.
    Failover { node: u32, mode: u8 },
    /// `reshard` of `count` slots from master `from` to master `to` (both
    /// count masters only), from `offset` slots into `from`'s range at
    /// creation. One fault; it ends when the cluster manager is done.
    Reshard {
        from: u32,
        to: u32,
        offset: u32,
        count: u32,
    },
}

/// One fuzz run's draw.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    pub setup: Setup,
    pub episodes: Vec<Episode>,
}

/// Node timeouts drawn, the first (Redis's example value) when shrinking.
const NODE_TIMEOUTS: [u64; 4] = [5000, 1000, 2000, 15000];

fn workload() -> impl Strategy<Value = Workload> {
    (1u32..=4, 50u32..=500, 100u32..=2000).prop_map(|(clients, rate, keys)| Workload {
        clients,
        rate,
        keys,
    })
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        3u32..=5,
        prop_oneof![4 => Just(1u32), 1 => Just(0u32), 2 => Just(2u32)],
        any::<bool>(),
        prop::sample::select(NODE_TIMEOUTS.to_vec()),
        prop::sample::select(vec![10u32, 0, 1]),
        prop::sample::select(vec![1u32, 0, 2]),
        any::<bool>(),
        prop::sample::select(vec![
            Persistence::Default,
            Persistence::None,
            Persistence::AofEverysec,
            Persistence::AofAlways,
        ]),
        prop::option::weighted(0.5, workload()),
    )
        .prop_map(
            |(masters, replicas, shared_hosts, nt, vf, barrier, partial, persistence, workload)| {
                Setup {
                    masters,
                    replicas,
                    shared_hosts,
                    node_timeout_ms: nt,
                    validity_factor: vf,
                    migration_barrier: barrier,
                    require_full_coverage: !partial,
                    persistence,
                    workload,
                }
            },
        )
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        4 => (0u32..64, prop::bool::weighted(0.2))
            .prop_map(|(node, stays_dead)| Kind::Kill { node, stays_dead }),
        2 => (0u32..64).prop_map(|node| Kind::Pause { node }),
        1 => (0u32..64, prop::bool::weighted(0.2))
            .prop_map(|(host, stays_dead)| Kind::CrashHost { host, stays_dead }),
        2 => (0u32..64).prop_map(|node| Kind::Isolate { node }),
        2 => any::<u32>().prop_map(|side| Kind::Partition { side }),
        1 => (any::<u32>(), any::<u32>()).prop_map(|(from, to)| Kind::OneWay { from, to }),
        1 => (1u32..=200).prop_map(|ms| Kind::Latency { ms }),
        1 => (1u32..=30).prop_map(|percent| Kind::Loss { percent }),
        2 => (0u32..64, 0u8..3).prop_map(|(node, mode)| Kind::Failover { node, mode }),
        1 => (0u32..64, 1u32..64, 0u32..1000, 1u32..=200).prop_map(|(from, to, offset, count)| {
            Kind::Reshard { from, to, offset, count }
        }),
    ]
}

fn episode() -> impl Strategy<Value = Episode> {
    (1000u64..=30_000, 500u64..=20_000, kind()).prop_map(|(at_ms, length_ms, kind)| Episode {
        at_ms,
        length_ms,
        kind,
    })
}

/// What the fuzzer draws: a cluster and up to 6 episodes.
pub fn strategy() -> impl Strategy<Value = Case> {
    (setup(), prop::collection::vec(episode(), 0..=6))
        .prop_map(|(setup, episodes)| Case { setup, episodes })
}

/// The shape the episodes are mapped onto: drawn, or a base scenario's.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub nodes: u32,
    pub replicas: u32,
    pub hosts: u32,
    pub node_timeout_ms: u64,
    /// The scenario's one-way latency at most (for the quiet period).
    pub latency: SimTime,
}

impl Setup {
    pub fn shape(&self) -> Shape {
        let nodes = self.masters * (1 + self.replicas);
        Shape {
            nodes,
            replicas: self.replicas,
            hosts: if self.shared_hosts {
                self.masters
            } else {
                nodes
            },
            node_timeout_ms: self.node_timeout_ms,
            latency: 200,
        }
    }

    /// The `[cluster]`, `[config]` and `[[workload]]` tables.
    pub fn toml(&self) -> String {
        let s = self.shape();
        let mut t = String::new();
        let _ = writeln!(t, "[cluster]");
        let _ = writeln!(t, "nodes = {}", s.nodes);
        let _ = writeln!(t, "replicas = {}", s.replicas);
        let _ = writeln!(t, "hosts = {}", s.hosts);
        let _ = writeln!(t, "\n[config]");
        let _ = writeln!(t, "cluster-node-timeout = {}", self.node_timeout_ms);
        let _ = writeln!(
            t,
            "cluster-replica-validity-factor = {}",
            self.validity_factor
        );
        let _ = writeln!(t, "cluster-migration-barrier = {}", self.migration_barrier);
        let _ = writeln!(
            t,
            "cluster-require-full-coverage = \"{}\"",
            if self.require_full_coverage {
                "yes"
            } else {
                "no"
            }
        );
        t.push_str(self.persistence.config());
        if let Some(w) = &self.workload {
            let _ = writeln!(t, "\n[[workload]]");
            let _ = writeln!(t, "clients = {}", w.clients);
            let _ = writeln!(t, "rate = {}", w.rate);
            let _ = writeln!(t, "keys = {}", w.keys);
        }
        t
    }
}

/// One `[[faults]]` entry, before it is written.
struct Fault {
    at_ms: u64,
    body: String,
}

fn node_name(i: u32) -> String {
    format!("node-{}", i + 1)
}

fn names(bits: u32, nodes: u32) -> Vec<String> {
    (0..nodes.min(32))
        .filter(|i| bits >> i & 1 == 1)
        .map(node_name)
        .collect()
}

fn quoted(v: &[String]) -> String {
    let q: Vec<String> = v.iter().map(|n| format!("\"{n}\"")).collect();
    format!("[{}]", q.join(", "))
}

impl Episode {
    fn faults(&self, shape: &Shape, out: &mut Vec<Fault>) {
        let (start, end) = (self.at_ms, self.at_ms + self.length_ms);
        let mut at = |at_ms: u64, body: String| out.push(Fault { at_ms, body });
        let n = shape.nodes;
        match self.kind {
            Kind::Kill { node, stays_dead } => {
                let name = node_name(node % n);
                at(start, format!("action = \"kill\"\nnode = \"{name}\""));
                if !stays_dead {
                    at(end, format!("action = \"restart\"\nnode = \"{name}\""));
                }
            }
            Kind::Pause { node } => {
                let name = node_name(node % n);
                at(start, format!("action = \"pause\"\nnode = \"{name}\""));
                at(end, format!("action = \"resume\"\nnode = \"{name}\""));
            }
            Kind::CrashHost { host, stays_dead } => {
                let h = host % shape.hosts;
                at(
                    start,
                    format!("action = \"crash-host\"\nhost = \"host-{}\"", h + 1),
                );
                if !stays_dead {
                    for i in (0..n).filter(|i| i % shape.hosts == h) {
                        at(
                            end,
                            format!("action = \"restart\"\nnode = \"{}\"", node_name(i)),
                        );
                    }
                }
            }
            Kind::Isolate { node } => {
                let name = node_name(node % n);
                at(start, format!("action = \"isolate\"\nnode = \"{name}\""));
                at(end, "action = \"heal\"".into());
            }
            Kind::Partition { side } => {
                let mut side = names(side, n);
                if side.is_empty() || side.len() == n as usize {
                    side = vec![node_name(0)];
                }
                at(
                    start,
                    format!(
                        "action = \"partition\"\ngroups = [{}, [\"rest\", \"clients\"]]",
                        quoted(&side)
                    ),
                );
                at(end, "action = \"heal\"".into());
            }
            Kind::OneWay { from, to } => {
                let mut from = names(from, n);
                if from.is_empty() {
                    from = vec![node_name(0)];
                }
                let mut to: Vec<String> = names(to, n)
                    .into_iter()
                    .filter(|t| !from.contains(t))
                    .collect();
                if to.is_empty() {
                    to = vec!["rest".into()];
                }
                at(
                    start,
                    format!(
                        "action = \"one-way\"\nfrom = {}\nto = {}",
                        quoted(&from),
                        quoted(&to)
                    ),
                );
                at(end, "action = \"heal\"".into());
            }
            Kind::Latency { ms } => {
                at(start, format!("action = \"latency\"\nvalue = \"{ms}ms\""));
                at(
                    end,
                    format!("action = \"latency\"\nvalue = \"{}us\"", shape.latency),
                );
            }
            Kind::Loss { percent } => {
                at(
                    start,
                    format!("action = \"loss\"\nvalue = {}", f64::from(percent) / 100.0),
                );
                at(end, "action = \"loss\"\nvalue = 0.0".into());
            }
            Kind::Reshard {
                from,
                to,
                offset,
                count,
            } => {
                let masters = n / (1 + shape.replicas);
                if masters < 2 {
                    return;
                }
                // Masters are the first nodes, `redis-cli --cluster create`
                // giving master i the slots from i·16384/masters on.
                let from = from % masters;
                let to = (from + 1 + to % (masters - 1)) % masters;
                let per = 16384 / masters;
                let count = count.min(per);
                let first = from * 16384 / masters + offset % (per - count + 1);
                at(
                    start,
                    format!(
                        "action = \"reshard\"\nslots = \"{first}-{}\"\nfrom = \"{}\"\nto = \"{}\"",
                        first + count - 1,
                        node_name(from),
                        node_name(to)
                    ),
                );
            }
            Kind::Failover { node, mode } => {
                let masters = n / (1 + shape.replicas);
                let replicas = n - masters;
                // Replicas are the nodes after the masters (redis-cli's
                // allocation); with none, the command goes to a master and
                // is refused, as Redis refuses it.
                let target = if replicas == 0 {
                    node % n
                } else {
                    masters + node % replicas
                };
                let mode = ["default", "force", "takeover"][usize::from(mode % 3)];
                at(
                    start,
                    format!(
                        "action = \"failover\"\nnode = \"{}\"\nmode = \"{mode}\"",
                        node_name(target)
                    ),
                );
            }
        }
    }

    fn latency_us(&self) -> SimTime {
        match self.kind {
            Kind::Latency { ms } => u64::from(ms) * 1000,
            _ => 0,
        }
    }
}

impl Case {
    /// The `[[faults]]` entries in time order, and the run's duration: the
    /// last fault plus the liveness bound after it (the quiet period), plus
    /// a second.
    pub fn faults_toml(&self, shape: &Shape) -> (String, SimTime) {
        let mut faults = Vec::new();
        for e in &self.episodes {
            e.faults(shape, &mut faults);
        }
        faults.sort_by_key(|f| f.at_ms);
        let latency = self
            .episodes
            .iter()
            .map(Episode::latency_us)
            .max()
            .unwrap_or(0)
            .max(shape.latency);
        let last = faults.last().map_or(0, |f| f.at_ms * MS);
        let quiet = crate::check::liveness::bound(
            shape.node_timeout_ms,
            u64::from(shape.replicas),
            latency,
        );
        let duration = last + quiet + 1000 * MS;
        let mut t = String::new();
        for f in &faults {
            let _ = writeln!(t, "\n[[faults]]\nat = \"{}ms\"\n{}", f.at_ms, f.body);
        }
        (t, duration)
    }

    /// The number of `[[faults]]` entries the case writes.
    pub fn fault_count(&self, shape: &Shape) -> usize {
        let mut faults = Vec::new();
        for e in &self.episodes {
            e.faults(shape, &mut faults);
        }
        faults.len()
    }
}

/// A duration as a scenario file writes it, in whole milliseconds.
pub fn duration_str(t: SimTime) -> String {
    format!("{}ms", t.div_ceil(MS))
}
