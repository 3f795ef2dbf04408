//! Scenario files (see `scenario-format.md`): loading TOML or JSON, resolving
//! names, addresses and defaults, and validating everything once, here, with
//! errors that name the file, line, column and key path:
//!
//! `<file>:<line>:<col>: <key.path>: <message>`
//!
//! Both formats are read into one spanned value tree ([`value`]), which is
//! then converted by hand into the typed [`Scenario`], so that the same tree
//! written in TOML or in JSON gives an identical `Scenario`.

mod resolve;
pub mod value;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::engine::SimTime;
use crate::net::{Addr, Endpoint, LatencySpec, NetworkSpec};
use crate::node::conf_file::NodesFile;
use crate::node::config::{Config, ConfigValue};

/// Source format of a scenario file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Toml,
    Json,
}

/// A scenario that failed to load. `Display` gives
/// `<file>:<line>:<col>: <key.path>: <message>`; the key path is left out
/// for syntax errors, and line/column for errors without a position (e.g.
/// an unreadable file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    pub file: String,
    /// 1-based line and column (in characters), when known.
    pub position: Option<(usize, usize)>,
    /// Key path such as `faults[2].node`; empty for syntax errors.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.file)?;
        if let Some((l, c)) = self.position {
            write!(f, "{l}:{c}:")?;
        }
        if !self.path.is_empty() {
            write!(f, " {}:", self.path)?;
        }
        write!(f, " {}", self.message)
    }
}

impl std::error::Error for ScenarioError {}

/// Topology mode (`cluster.mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Cluster,
    Standalone,
    Replication,
    Sentinel,
}

/// The `[cluster]` table, resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterSpec {
    pub mode: Mode,
    /// `--cluster-replicas` (cluster mode) or the master's replica count.
    pub replicas: u32,
    /// Number of hosts the created nodes are spread over (sentinel hosts excluded).
    pub hosts: u32,
    /// Number of sentinels (0 unless mode = sentinel).
    pub sentinels: u32,
    /// The parsed `nodes_file`, when the cluster is built from a dump.
    pub nodes_file: Option<NodesFile>,
    /// How many nodes are handed to `--cluster create` (the first
    /// `create_count` entries of [`Scenario::nodes`]).
    pub create_count: usize,
    /// Memory of each host, bytes (`None`: unlimited).
    pub host_memory: Option<u64>,
    /// Each host's `vm.overcommit_memory`: 0 (a `fork()` needs as much
    /// free memory as its parent uses) or 1 (always allowed).
    pub overcommit_memory: u8,
}

/// One Redis process.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeSpec {
    /// `node-1`, `node-2`, ...
    pub name: String,
    pub addr: Addr,
    /// 0-based host index (`host-1` is 0).
    pub host: u32,
    /// The global `[config]` with this node's `[node.<name>.config]` applied.
    pub config: Config,
    /// Whether it is handed to `--cluster create` (false for nodes that only
    /// join through an `add-node` fault).
    pub in_create: bool,
}

/// One sentinel process.
#[derive(Clone, Debug, PartialEq)]
pub struct SentinelNode {
    /// `sentinel-1`, ...
    pub name: String,
    pub addr: Addr,
    /// 0-based host index; sentinels run on hosts of their own, after the
    /// nodes' hosts.
    pub host: u32,
}

/// The `[sentinel]` table (directives for the monitored master), resolved.
/// Present iff mode = sentinel (with defaults when the table is absent).
#[derive(Clone, Debug, PartialEq)]
pub struct SentinelSpec {
    /// `quorum`; default: a majority of the sentinels.
    pub quorum: u32,
    /// `down-after-milliseconds`; default 30000.
    pub down_after_ms: u64,
    /// `failover-timeout`, milliseconds; default 180000.
    pub failover_timeout_ms: u64,
    /// `parallel-syncs`; default 1.
    pub parallel_syncs: u32,
    /// The sentinels. In faults, world index `nodes.len() + i` is `sentinels[i]`.
    pub sentinels: Vec<SentinelNode>,
}

/// Key distribution of a workload.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Distribution {
    Uniform,
    /// Zipf with this exponent (> 0).
    Zipf(f64),
}

/// Write command of a workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteCmd {
    Set,
    Incr,
    Append,
}

/// What a `GET` miss triggers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnMiss {
    None,
    Set,
}

/// One `[[workload]]` population.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    /// Connections (default 1).
    pub clients: u32,
    /// Requests per second, all clients together (default 1000).
    pub rate: f64,
    /// Keyspace size; keys are `key:<n>` (default 10000).
    pub keys: u64,
    pub distribution: Distribution,
    /// Share of `GET`s, 0..=1 (default 0.5).
    pub read_ratio: f64,
    pub write: WriteCmd,
    /// Bytes per value (default 100).
    pub value_size_bytes: u64,
    /// `SET ... PX ttl` when set.
    pub ttl: Option<SimTime>,
    /// Request timeout (default 1 s).
    pub timeout: SimTime,
    /// Pause after an error (default 100 ms).
    pub retry_after: SimTime,
    /// Start of activity (default 0).
    pub start: SimTime,
    /// End of activity (`None` = end of the run).
    pub stop: Option<SimTime>,
    pub read_from_replicas: bool,
    /// Only keys hashing to these inclusive slot ranges (`None` = all).
    pub slots: Option<Vec<(u16, u16)>>,
    /// Share of keys written with `ttl` (default 1).
    pub ttl_share: f64,
    pub on_miss: OnMiss,
    /// Operation trace to replay, resolved against the scenario's folder.
    pub trace: Option<PathBuf>,
    /// `WAIT <replicas> <timeout>` after every write (redsim's addition).
    pub wait: Option<WaitSpec>,
}

/// A workload's `wait = { replicas, timeout }`: every write is followed on
/// its connection by `WAIT <replicas> <timeout in ms>` (0 = forever), and
/// is acknowledged when the `WAIT` replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitSpec {
    pub replicas: u32,
    pub timeout: SimTime,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            clients: 1,
            rate: 1000.0,
            keys: 10_000,
            distribution: Distribution::Uniform,
            read_ratio: 0.5,
            write: WriteCmd::Set,
            value_size_bytes: 100,
            ttl: None,
            timeout: crate::engine::SEC,
            retry_after: 100 * crate::engine::MS,
            start: 0,
            stop: None,
            read_from_replicas: false,
            slots: None,
            ttl_share: 1.0,
            on_miss: OnMiss::None,
            trace: None,
            wait: None,
        }
    }
}

/// `CLUSTER FAILOVER` option (the node's own type).
pub use crate::node::FailoverMode;

/// What a fault does. Node indices are world indices: `0..nodes.len()` index
/// [`Scenario::nodes`] (`node-1` is 0); `nodes.len() + i` is sentinel `i`
/// (only where the format allows sentinels: kill, restart, pause, resume,
/// isolate, and group members).
#[derive(Clone, Debug, PartialEq)]
pub enum FaultAction {
    Kill {
        node: usize,
    },
    Restart {
        node: usize,
    },
    Pause {
        node: usize,
    },
    Resume {
        node: usize,
    },
    /// 0-based host index.
    CrashHost {
        host: u32,
    },
    Partition {
        groups: Vec<Vec<Endpoint>>,
    },
    /// Shorthand for a partition `[[node], ["rest", "clients"]]`.
    Isolate {
        node: usize,
    },
    OneWay {
        from: Vec<Endpoint>,
        to: Vec<Endpoint>,
    },
    /// A firewall drops what is addressed to the cluster bus port of
    /// `node` (`None`: every node) until `heal` (`action = "block-port"`,
    /// `port = "bus"`).
    BlockBusPort {
        node: Option<usize>,
    },
    Heal,
    Latency {
        value: LatencySpec,
        between: Option<(Vec<Endpoint>, Vec<Endpoint>)>,
    },
    Loss {
        value: f64,
        between: Option<(Vec<Endpoint>, Vec<Endpoint>)>,
    },
    Failover {
        node: usize,
        mode: FailoverMode,
    },
    Reshard {
        slots: Vec<(u16, u16)>,
        from: usize,
        to: usize,
    },
    AddNode {
        node: usize,
        replica_of: Option<usize>,
    },
    DelNode {
        node: usize,
    },
    /// `redis-cli --cluster rebalance`: `--cluster-weight` per node,
    /// `--cluster-threshold` (percent), `--cluster-use-empty-masters`.
    Rebalance {
        weights: Vec<(usize, f64)>,
        threshold: f64,
        use_empty_masters: bool,
    },
    /// `redis-cli --cluster fix [--cluster-fix-with-unreachable-masters]
    /// [--cluster-replace]`.
    Fix {
        with_unreachable_masters: bool,
        replace: bool,
    },
    /// `REPLICAOF <ip> <port>` of `master` (`Some`), or `REPLICAOF NO ONE`
    /// (`None`), sent to `node` by an operator, followed by `CONFIG
    /// REWRITE` (a restart keeps it). Replication and sentinel modes.
    ReplicaOf {
        node: usize,
        master: Option<usize>,
    },
    /// The clients' master address becomes `node`'s (replication mode:
    /// the operator repoints the application).
    RepointClients {
        node: usize,
    },
    /// `node: None` = all nodes. `directive` is the canonical name (aliases resolved).
    ConfigSet {
        node: Option<usize>,
        directive: String,
        value: ConfigValue,
    },
}

/// One `[[faults]]` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    pub at: SimTime,
    pub action: FaultAction,
}

/// `cluster_state` expectation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterStateExpect {
    Ok,
    Fail,
}

/// Expected role of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Master,
    Replica,
}

/// `invariants` of an expectation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invariants {
    Hold,
    Ignore,
}

/// One `[[expect]]` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Expect {
    /// When the state parts are read; `None` = at the end.
    pub at: Option<SimTime>,
    pub cluster_state: Option<ClusterStateExpect>,
    /// Node index → role.
    pub role: BTreeMap<usize, Role>,
    /// Slot → node index.
    pub master_of: BTreeMap<u16, usize>,
    pub current_epoch: Option<u64>,
    /// Node index → the least number of replicas it must have.
    pub min_replicas: BTreeMap<usize, u64>,
    pub max_lost_writes: Option<u64>,
    pub max_unavailable: Option<SimTime>,
    pub max_failover_time: Option<SimTime>,
    /// The least `keyspace_hits / (keyspace_hits + keyspace_misses)` over
    /// the running nodes.
    pub min_hit_ratio: Option<f64>,
    /// The most `evicted_keys` over the running nodes.
    pub max_evicted: Option<u64>,
    pub invariants: Invariants,
}

/// A loaded, resolved and validated scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// Default: the file stem.
    pub name: String,
    pub description: String,
    pub seed: u64,
    /// Simulated time to run.
    pub duration: SimTime,
    pub cluster: ClusterSpec,
    /// `[config]` applied over Redis's defaults.
    pub config: Config,
    /// Every Redis process: the created ones first (in `--cluster create`
    /// order), then those that join through `add-node`.
    pub nodes: Vec<NodeSpec>,
    pub network: NetworkSpec,
    pub workloads: Vec<Workload>,
    /// Sorted (stably) by `at`.
    pub faults: Vec<Fault>,
    pub expects: Vec<Expect>,
    pub sentinel: Option<SentinelSpec>,
    /// The file it was read from (the label given to [`parse`]).
    pub source: PathBuf,
}

impl Scenario {
    /// The greatest `cluster-node-timeout` of its nodes (0 without nodes).
    pub fn max_node_timeout_ms(&self) -> u64 {
        self.nodes
            .iter()
            .map(|n| n.config.cluster_node_timeout_ms)
            .max()
            .unwrap_or(0)
    }

    /// `cluster.mode` is `"replication"` or `"sentinel"`: a master and its
    /// replicas with cluster mode off, wired by `replicaof`.
    pub fn replicated(&self) -> bool {
        matches!(self.cluster.mode, Mode::Replication | Mode::Sentinel)
    }

    /// `cluster.mode = "standalone"`: one node with `cluster-enabled no`.
    pub fn standalone(&self) -> bool {
        self.cluster.mode == Mode::Standalone
    }
}

/// Load a scenario file; the format follows the extension (`.toml`, `.json`).
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let label = path.display().to_string();
    let no_pos = |message: String| ScenarioError {
        file: label.clone(),
        position: None,
        path: String::new(),
        message,
    };
    let format = match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("toml") => Format::Toml,
        Some(e) if e.eq_ignore_ascii_case("json") => Format::Json,
        _ => {
            return Err(no_pos(
                "unknown scenario format (expected a file name ending in .toml or .json)".into(),
            ))
        }
    };
    let text = std::fs::read_to_string(path).map_err(|e| no_pos(format!("cannot read: {e}")))?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&text, format, &label, base)
}

/// A scenario file's text as a TOML table (a `.json` file converted), to
/// edit before [`parse`] (`redsim fuzz BASE`, `redsim sweep`).
pub fn load_table(path: &Path) -> Result<toml::Table, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("json") => {
            let v: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            toml::Table::try_from(v).map_err(|e| format!("{}: {e}", path.display()))
        }
        _ => toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display())),
    }
}

/// Parse a scenario from text. `file_label` names the file in errors (its
/// stem is the default name); relative paths in the scenario resolve against
/// `base_dir`.
pub fn parse(
    text: &str,
    format: Format,
    file_label: &str,
    base_dir: &Path,
) -> Result<Scenario, ScenarioError> {
    let cx = resolve::Cx {
        file: file_label,
        text,
        base_dir,
    };
    let root = match format {
        Format::Toml => value::parse_toml(text),
        Format::Json => value::parse_json(text),
    }
    .map_err(|e| cx.err(e.at, "", e.message))?;
    resolve::scenario(&cx, &root)
}

/// Parse a duration: a string with a unit (`us`, `ms`, `s`, `m`, `h`;
/// decimals allowed, e.g. `"1.5s"`) into microseconds.
pub fn parse_duration(s: &str) -> Result<SimTime, String> {
    let expected = || {
        format!("expected a duration such as \"250us\", \"5ms\", \"1.5s\", \"2m\" or an integer of milliseconds, got {s:?}")
    };
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit_us: u128 = match unit.trim() {
        "us" => 1,
        "ms" => 1_000,
        "s" => 1_000_000,
        "m" => 60_000_000,
        "h" => 3_600_000_000,
        "" => return Err(format!("{} (the unit is missing)", expected())),
        _ => return Err(expected()),
    };
    let (int, frac) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    if int.is_empty() || (num.contains('.') && frac.is_empty()) || frac.contains('.') {
        return Err(expected());
    }
    if int.len() > 15 || frac.len() > 9 {
        return Err(format!("duration {s:?} is out of range"));
    }
    let int: u128 = int.parse().map_err(|_| expected())?;
    let frac_num: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| expected())?
    };
    let frac_den = 10u128.pow(frac.len() as u32);
    let total_num = (int * frac_den + frac_num) * unit_us;
    if !total_num.is_multiple_of(frac_den) {
        return Err(format!(
            "duration {s:?} is not a whole number of microseconds"
        ));
    }
    u64::try_from(total_num / frac_den).map_err(|_| format!("duration {s:?} is out of range"))
}

/// Parse a bandwidth: `"1gbit"`, `"100mbit"`, `"10kbit"`, `"800bit"` (also
/// `gbps`/`mbps`/`kbps`/`bps`), decimal (1000-based), into bits per second.
pub fn parse_bandwidth(s: &str) -> Result<u64, String> {
    let expected = || {
        format!("expected a bandwidth such as \"1gbit\", \"100mbit\", \"10kbit\" or an integer of bits per second, got {s:?}")
    };
    let t = s.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mul: f64 = match unit.trim() {
        "gbit" | "gbps" => 1e9,
        "mbit" | "mbps" => 1e6,
        "kbit" | "kbps" => 1e3,
        "bit" | "bps" => 1.0,
        _ => return Err(expected()),
    };
    let n: f64 = num.parse().map_err(|_| expected())?;
    let bps = (n * mul).round();
    if !(1.0..=1e18).contains(&bps) {
        return Err(format!(
            "bandwidth {s:?} is out of range (expected at least 1 bit per second)"
        ));
    }
    Ok(bps as u64)
}

/// Parse slot ranges `"0-5460"`, `"0-99,200"`: inclusive, 0..=16383, start ≤ end.
pub fn parse_slot_ranges(s: &str) -> Result<Vec<(u16, u16)>, String> {
    let mut out = Vec::new();
    if s.trim().is_empty() {
        return Err("expected slot ranges such as \"0-5460\" or \"0-99,200\", got \"\"".into());
    }
    for part in s.split(',') {
        let part = part.trim();
        let slot = |x: &str| -> Result<u16, String> {
            match x.trim().parse::<u64>() {
                Ok(n) if n < 16384 => Ok(n as u16),
                Ok(n) => Err(format!("slot {n} is out of range (expected 0..16383)")),
                Err(_) => Err(format!(
                    "expected slot ranges such as \"0-5460\" or \"0-99,200\", got {s:?}"
                )),
            }
        };
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (slot(a)?, slot(b)?),
            None => {
                let a = slot(part)?;
                (a, a)
            }
        };
        if a > b {
            return Err(format!(
                "slot range \"{part}\" starts after it ends (expected start <= end)"
            ));
        }
        out.push((a, b));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250us"), Ok(250));
        assert_eq!(parse_duration("5ms"), Ok(5_000));
        assert_eq!(parse_duration("1.5s"), Ok(1_500_000));
        assert_eq!(parse_duration("2m"), Ok(120_000_000));
        assert!(parse_duration("1.5us").is_err());
        assert!(parse_duration("5").unwrap_err().contains("unit is missing"));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("99999999999999999999999h").is_err());
        assert!(parse_duration(".s").is_err());
    }

    #[test]
    fn bandwidths() {
        assert_eq!(parse_bandwidth("1gbit"), Ok(1_000_000_000));
        assert_eq!(parse_bandwidth("100mbit"), Ok(100_000_000));
        assert_eq!(parse_bandwidth("10kbit"), Ok(10_000));
        assert_eq!(parse_bandwidth("1.5Gbps"), Ok(1_500_000_000));
        assert!(parse_bandwidth("0bit").is_err());
        assert!(parse_bandwidth("fast").is_err());
    }

    #[test]
    fn slot_ranges() {
        assert_eq!(parse_slot_ranges("0-5460"), Ok(vec![(0, 5460)]));
        assert_eq!(
            parse_slot_ranges("0-99, 200"),
            Ok(vec![(0, 99), (200, 200)])
        );
        assert!(parse_slot_ranges("5-3").is_err());
        assert!(parse_slot_ranges("16384").is_err());
        assert!(parse_slot_ranges("a-b").is_err());
    }
}
