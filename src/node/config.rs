//! The `redis.conf` subset redsim models: every directive's name, its Redis
//! 7.0.15 default (`src/config.c`), and validation as Redis does it.
//!
//! Values arrive from a scenario file as a [`ConfigValue`] (TOML/JSON
//! integer, string, bool or float) and are read with `redis.conf` syntax:
//! booleans are `"yes"`/`"no"` (TOML/JSON booleans are accepted too), memory
//! sizes are integers of bytes or strings with Redis's units (`"1k"` = 1000,
//! `"1kb"` = 1024, likewise `m`/`mb`, `g`/`gb`), and time directives take an
//! integer in the unit Redis uses for that directive (milliseconds for
//! `cluster-node-timeout`, seconds for `repl-timeout` ...). Field names carry
//! their unit last (`cluster_node_timeout_ms`, `repl_backlog_size_bytes`).

use std::fmt;

use super::keyspace::MemoryPolicy;

/// A directive's value as written in a scenario file.
#[derive(Clone, Debug, PartialEq)]
pub enum ConfigValue {
    Int(i64),
    Str(String),
    Bool(bool),
    Float(f64),
}

impl fmt::Display for ConfigValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigValue::Int(i) => write!(f, "{i}"),
            ConfigValue::Str(s) => write!(f, "{s:?}"),
            ConfigValue::Bool(b) => write!(f, "{b}"),
            ConfigValue::Float(x) => write!(f, "{x}"),
        }
    }
}

/// `maxmemory-policy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaxmemoryPolicy {
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
    AllkeysLru,
    AllkeysLfu,
    AllkeysRandom,
    Noeviction,
}

const MAXMEMORY_POLICIES: [(&str, MaxmemoryPolicy); 8] = [
    ("volatile-lru", MaxmemoryPolicy::VolatileLru),
    ("volatile-lfu", MaxmemoryPolicy::VolatileLfu),
    ("volatile-random", MaxmemoryPolicy::VolatileRandom),
    ("volatile-ttl", MaxmemoryPolicy::VolatileTtl),
    ("allkeys-lru", MaxmemoryPolicy::AllkeysLru),
    ("allkeys-lfu", MaxmemoryPolicy::AllkeysLfu),
    ("allkeys-random", MaxmemoryPolicy::AllkeysRandom),
    ("noeviction", MaxmemoryPolicy::Noeviction),
];

impl MaxmemoryPolicy {
    /// The name `redis.conf` and `INFO` use.
    pub fn name(self) -> &'static str {
        MAXMEMORY_POLICIES
            .iter()
            .find(|(_, p)| *p == self)
            .map(|(n, _)| *n)
            .expect("every policy is in the table")
    }
}

/// `appendfsync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Appendfsync {
    Always,
    Everysec,
    No,
}

const APPENDFSYNC: [(&str, Appendfsync); 3] = [
    ("always", Appendfsync::Always),
    ("everysec", Appendfsync::Everysec),
    ("no", Appendfsync::No),
];

/// `repl-diskless-load`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplDisklessLoad {
    Disabled,
    OnEmptyDb,
    Swapdb,
}

const REPL_DISKLESS_LOAD: [(&str, ReplDisklessLoad); 3] = [
    ("disabled", ReplDisklessLoad::Disabled),
    ("on-empty-db", ReplDisklessLoad::OnEmptyDb),
    ("swapdb", ReplDisklessLoad::Swapdb),
];

/// `cluster-preferred-endpoint-type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointType {
    Ip,
    Hostname,
    UnknownEndpoint,
}

const ENDPOINT_TYPES: [(&str, EndpointType); 3] = [
    ("ip", EndpointType::Ip),
    ("hostname", EndpointType::Hostname),
    ("unknown-endpoint", EndpointType::UnknownEndpoint),
];

/// One class of `client-output-buffer-limit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputBufferLimit {
    pub hard_limit_bytes: u64,
    pub soft_limit_bytes: u64,
    pub soft_seconds: u64,
}

/// `client-output-buffer-limit` for the three client classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientOutputBufferLimits {
    pub normal: OutputBufferLimit,
    pub replica: OutputBufferLimit,
    pub pubsub: OutputBufferLimit,
}

/// The modelled `redis.conf` of one node. `Config::default()` is Redis
/// 7.0.15's default configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `cluster-enabled` (immutable at runtime). The scenario's `mode` decides
    /// whether nodes run in cluster mode; this only records the directive.
    pub cluster_enabled: bool,
    /// `cluster-config-file`.
    pub cluster_config_file: String,
    /// `cluster-node-timeout`, milliseconds.
    pub cluster_node_timeout_ms: u64,
    /// `cluster-port`; 0 means port + 10000.
    pub cluster_port: u16,
    /// `cluster-replica-validity-factor` (alias `cluster-slave-validity-factor`); 0 = never refuse.
    pub cluster_replica_validity_factor: u32,
    /// `cluster-migration-barrier`.
    pub cluster_migration_barrier: u32,
    /// `cluster-allow-replica-migration`.
    pub cluster_allow_replica_migration: bool,
    /// `cluster-require-full-coverage`.
    pub cluster_require_full_coverage: bool,
    /// `cluster-replica-no-failover` (alias `cluster-slave-no-failover`).
    pub cluster_replica_no_failover: bool,
    /// `cluster-allow-reads-when-down`.
    pub cluster_allow_reads_when_down: bool,
    /// `cluster-allow-pubsubshard-when-down`.
    pub cluster_allow_pubsubshard_when_down: bool,
    /// `cluster-link-sendbuf-limit`, bytes; 0 = unlimited.
    pub cluster_link_sendbuf_limit_bytes: u64,
    /// `cluster-announce-ip`; `None` when unset.
    pub cluster_announce_ip: Option<String>,
    /// `cluster-announce-port`; 0 = the real port.
    pub cluster_announce_port: u16,
    /// `cluster-announce-bus-port`; 0 = the real bus port.
    pub cluster_announce_bus_port: u16,
    /// `cluster-announce-tls-port`; 0 = unset.
    pub cluster_announce_tls_port: u16,
    /// `cluster-announce-hostname`; `None` when unset (or set to "").
    pub cluster_announce_hostname: Option<String>,
    /// `cluster-preferred-endpoint-type`.
    pub cluster_preferred_endpoint_type: EndpointType,
    /// `repl-diskless-sync`.
    pub repl_diskless_sync: bool,
    /// `repl-diskless-sync-delay`, seconds.
    pub repl_diskless_sync_delay_s: u32,
    /// `repl-diskless-sync-max-replicas`; 0 = no limit.
    pub repl_diskless_sync_max_replicas: u32,
    /// `repl-diskless-load`.
    pub repl_diskless_load: ReplDisklessLoad,
    /// `repl-ping-replica-period` (alias `repl-ping-slave-period`), seconds.
    pub repl_ping_replica_period_s: u32,
    /// `repl-timeout`, seconds.
    pub repl_timeout_s: u32,
    /// `repl-backlog-size`, bytes.
    pub repl_backlog_size_bytes: u64,
    /// `repl-backlog-ttl`, seconds.
    pub repl_backlog_ttl_s: u32,
    /// `repl-disable-tcp-nodelay`.
    pub repl_disable_tcp_nodelay: bool,
    /// `min-replicas-to-write` (alias `min-slaves-to-write`).
    pub min_replicas_to_write: u32,
    /// `min-replicas-max-lag` (alias `min-slaves-max-lag`), seconds.
    pub min_replicas_max_lag_s: u32,
    /// `replica-read-only` (alias `slave-read-only`).
    pub replica_read_only: bool,
    /// `replica-serve-stale-data` (alias `slave-serve-stale-data`).
    pub replica_serve_stale_data: bool,
    /// `replica-ignore-maxmemory` (alias `slave-ignore-maxmemory`).
    pub replica_ignore_maxmemory: bool,
    /// `replica-priority` (alias `slave-priority`); unused by Redis Cluster.
    pub replica_priority: u32,
    /// `masterauth`.
    pub masterauth: Option<String>,
    /// `masteruser`.
    pub masteruser: Option<String>,
    /// `requirepass`.
    pub requirepass: Option<String>,
    /// `client-output-buffer-limit`.
    pub client_output_buffer_limit: ClientOutputBufferLimits,
    /// `appendonly`.
    pub appendonly: bool,
    /// `appendfsync`.
    pub appendfsync: Appendfsync,
    /// `save`: (seconds, changes) points; empty = RDB snapshots disabled.
    pub save: Vec<(u64, u64)>,
    /// `stop-writes-on-bgsave-error`: writes get `-MISCONF` after a failed
    /// BGSAVE (while save points are set).
    pub stop_writes_on_bgsave_error: bool,
    /// `maxmemory`, bytes; 0 = no limit.
    pub maxmemory_bytes: u64,
    /// `maxmemory-policy`.
    pub maxmemory_policy: MaxmemoryPolicy,
    /// `maxmemory-samples` (1..=64).
    pub maxmemory_samples: u32,
    /// `maxmemory-eviction-tenacity` (0..=100).
    pub maxmemory_eviction_tenacity: u32,
    /// `lfu-log-factor`.
    pub lfu_log_factor: u32,
    /// `lfu-decay-time`, minutes.
    pub lfu_decay_time_min: u32,
    /// `hz`; Redis clamps it to 1..=500 and so does `set`.
    pub hz: u32,
    /// `dynamic-hz`.
    pub dynamic_hz: bool,
    /// `active-expire-effort` (1..=10).
    pub active_expire_effort: u32,
    /// `shutdown-timeout`, seconds.
    pub shutdown_timeout_s: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            cluster_enabled: false,
            cluster_config_file: "nodes.conf".to_string(),
            cluster_node_timeout_ms: 15_000,
            cluster_port: 0,
            cluster_replica_validity_factor: 10,
            cluster_migration_barrier: 1,
            cluster_allow_replica_migration: true,
            cluster_require_full_coverage: true,
            cluster_replica_no_failover: false,
            cluster_allow_reads_when_down: false,
            cluster_allow_pubsubshard_when_down: true,
            cluster_link_sendbuf_limit_bytes: 0,
            cluster_announce_ip: None,
            cluster_announce_port: 0,
            cluster_announce_bus_port: 0,
            cluster_announce_tls_port: 0,
            cluster_announce_hostname: None,
            cluster_preferred_endpoint_type: EndpointType::Ip,
            repl_diskless_sync: true,
            repl_diskless_sync_delay_s: 5,
            repl_diskless_sync_max_replicas: 0,
            repl_diskless_load: ReplDisklessLoad::Disabled,
            repl_ping_replica_period_s: 10,
            repl_timeout_s: 60,
            repl_backlog_size_bytes: 1024 * 1024,
            repl_backlog_ttl_s: 3600,
            repl_disable_tcp_nodelay: false,
            min_replicas_to_write: 0,
            min_replicas_max_lag_s: 10,
            replica_read_only: true,
            replica_serve_stale_data: true,
            replica_ignore_maxmemory: true,
            replica_priority: 100,
            masterauth: None,
            masteruser: None,
            requirepass: None,
            client_output_buffer_limit: ClientOutputBufferLimits {
                normal: OutputBufferLimit {
                    hard_limit_bytes: 0,
                    soft_limit_bytes: 0,
                    soft_seconds: 0,
                },
                replica: OutputBufferLimit {
                    hard_limit_bytes: 256 * 1024 * 1024,
                    soft_limit_bytes: 64 * 1024 * 1024,
                    soft_seconds: 60,
                },
                pubsub: OutputBufferLimit {
                    hard_limit_bytes: 32 * 1024 * 1024,
                    soft_limit_bytes: 8 * 1024 * 1024,
                    soft_seconds: 60,
                },
            },
            appendonly: false,
            appendfsync: Appendfsync::Everysec,
            save: vec![(3600, 1), (300, 100), (60, 10000)],
            stop_writes_on_bgsave_error: true,
            maxmemory_bytes: 0,
            maxmemory_policy: MemoryPolicy::DEFAULT.maxmemory_policy,
            maxmemory_samples: MemoryPolicy::DEFAULT.maxmemory_samples,
            maxmemory_eviction_tenacity: 10,
            lfu_log_factor: MemoryPolicy::DEFAULT.lfu_log_factor,
            lfu_decay_time_min: MemoryPolicy::DEFAULT.lfu_decay_time,
            hz: 10,
            dynamic_hz: true,
            active_expire_effort: 1,
            shutdown_timeout_s: 10,
        }
    }
}

/// Every directive name `Config::set` accepts (canonical names), sorted.
pub const DIRECTIVES: &[&str] = &[
    "active-expire-effort",
    "appendfsync",
    "appendonly",
    "client-output-buffer-limit",
    "cluster-allow-pubsubshard-when-down",
    "cluster-allow-reads-when-down",
    "cluster-allow-replica-migration",
    "cluster-announce-bus-port",
    "cluster-announce-hostname",
    "cluster-announce-ip",
    "cluster-announce-port",
    "cluster-announce-tls-port",
    "cluster-config-file",
    "cluster-enabled",
    "cluster-link-sendbuf-limit",
    "cluster-migration-barrier",
    "cluster-node-timeout",
    "cluster-port",
    "cluster-preferred-endpoint-type",
    "cluster-replica-no-failover",
    "cluster-replica-validity-factor",
    "cluster-require-full-coverage",
    "dynamic-hz",
    "hz",
    "lfu-decay-time",
    "lfu-log-factor",
    "masterauth",
    "masteruser",
    "maxmemory",
    "maxmemory-eviction-tenacity",
    "maxmemory-policy",
    "maxmemory-samples",
    "min-replicas-max-lag",
    "min-replicas-to-write",
    "repl-backlog-size",
    "repl-backlog-ttl",
    "repl-diskless-load",
    "repl-diskless-sync",
    "repl-diskless-sync-delay",
    "repl-diskless-sync-max-replicas",
    "repl-disable-tcp-nodelay",
    "repl-ping-replica-period",
    "repl-timeout",
    "replica-ignore-maxmemory",
    "replica-priority",
    "replica-read-only",
    "replica-serve-stale-data",
    "requirepass",
    "save",
    "shutdown-timeout",
    "stop-writes-on-bgsave-error",
];

/// Old `slave` names and the directive they stand for.
pub const ALIASES: &[(&str, &str)] = &[
    (
        "cluster-slave-validity-factor",
        "cluster-replica-validity-factor",
    ),
    ("cluster-slave-no-failover", "cluster-replica-no-failover"),
    ("repl-ping-slave-period", "repl-ping-replica-period"),
    ("min-slaves-to-write", "min-replicas-to-write"),
    ("min-slaves-max-lag", "min-replicas-max-lag"),
    ("slave-read-only", "replica-read-only"),
    ("slave-serve-stale-data", "replica-serve-stale-data"),
    ("slave-priority", "replica-priority"),
    ("slave-ignore-maxmemory", "replica-ignore-maxmemory"),
];

/// The canonical name of a directive (lowercased, `slave` alias resolved),
/// or the "unknown directive" error, with a suggestion when a known name is close.
pub fn canonical_name(name: &str) -> Result<&'static str, String> {
    let lower = name.to_ascii_lowercase();
    if let Some(d) = DIRECTIVES.iter().find(|d| **d == lower) {
        return Ok(d);
    }
    if let Some((_, d)) = ALIASES.iter().find(|(a, _)| *a == lower) {
        return Ok(d);
    }
    let mut best: Option<(usize, &str)> = None;
    for cand in DIRECTIVES.iter().chain(ALIASES.iter().map(|(a, _)| a)) {
        let d = levenshtein(&lower, cand);
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, cand));
        }
    }
    match best {
        Some((d, cand)) if d <= 3.max(lower.len() / 5) => Err(format!(
            "unknown directive '{name}' (did you mean '{cand}'?)"
        )),
        _ => Err(format!("unknown directive '{name}'")),
    }
}

/// Edit distance between two strings (by chars).
pub fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn get_bool(v: &ConfigValue) -> Result<bool, String> {
    match v {
        ConfigValue::Bool(b) => Ok(*b),
        ConfigValue::Str(s) if s.eq_ignore_ascii_case("yes") => Ok(true),
        ConfigValue::Str(s) if s.eq_ignore_ascii_case("no") => Ok(false),
        other => Err(format!("expected \"yes\" or \"no\", got {other}")),
    }
}

/// An integer in `[min, max]`, from an integer or a string of digits.
fn get_int(v: &ConfigValue, min: i64, max: i64, unit: &str) -> Result<i64, String> {
    let expected = || {
        if max == i64::MAX {
            format!("expected an integer >= {min}{unit}")
        } else {
            format!("expected an integer between {min} and {max}{unit}")
        }
    };
    let n = match v {
        ConfigValue::Int(i) => *i,
        ConfigValue::Str(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| format!("{}, got {v}", expected()))?,
        other => return Err(format!("{}, got {other}", expected())),
    };
    if n < min || n > max {
        return Err(format!("{}, got {n}", expected()));
    }
    Ok(n)
}

fn get_u32(v: &ConfigValue, min: i64, max: i64, unit: &str) -> Result<u32, String> {
    // Every u32 directive has max <= i32::MAX, so the cast is exact.
    get_int(v, min, max.min(i64::from(u32::MAX)), unit).map(|n| n as u32)
}

fn get_port(v: &ConfigValue) -> Result<u16, String> {
    get_int(v, 0, 65535, "").map(|n| n as u16)
}

const INT_MAX: i64 = i32::MAX as i64;

/// Parse a memory size as Redis's `memtoull()` does: digits followed by
/// nothing/`b` (bytes), `k` (1000), `kb` (1024), `m` (10^6), `mb` (2^20),
/// `g` (10^9), `gb` (2^30), case-insensitively.
pub fn parse_memory(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let mul: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1_000_000,
        "mb" => 1024 * 1024,
        "g" => 1_000_000_000,
        "gb" => 1024 * 1024 * 1024,
        _ => {
            return Err(format!(
                "expected a size: bytes, or a number with unit b, k, kb, m, mb, g or gb (\"64kb\", \"100mb\", \"1gb\"), got {s:?}"
            ))
        }
    };
    if digits.is_empty() {
        return Err(format!(
            "expected a size: bytes, or a number with unit b, k, kb, m, mb, g or gb (\"64kb\", \"100mb\", \"1gb\"), got {s:?}"
        ));
    }
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mul))
        .ok_or_else(|| format!("size {s:?} is too large"))
}

fn get_memory(v: &ConfigValue) -> Result<u64, String> {
    match v {
        ConfigValue::Int(i) if *i >= 0 => Ok(*i as u64),
        ConfigValue::Int(i) => Err(format!(
            "expected a size (bytes, or a string such as \"64kb\", \"100mb\", \"1gb\"), got negative {i}"
        )),
        ConfigValue::Str(s) => parse_memory(s),
        other => Err(format!(
            "expected a size (bytes, or a string such as \"64kb\", \"100mb\", \"1gb\"), got {other}"
        )),
    }
}

fn get_enum<T: Copy>(v: &ConfigValue, table: &[(&str, T)]) -> Result<T, String> {
    let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
    let expected = format!("expected one of: {}", names.join(", "));
    match v {
        ConfigValue::Str(s) => table
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(s.trim()))
            .map(|(_, t)| *t)
            .ok_or_else(|| format!("{expected}; got {s:?}")),
        // TOML `appendfsync = false` would mean "no" to nobody: reject it.
        other => Err(format!("{expected}; got {other}")),
    }
}

fn get_string(v: &ConfigValue) -> Result<String, String> {
    match v {
        ConfigValue::Str(s) => Ok(s.clone()),
        other => Err(format!("expected a string, got {other}")),
    }
}

fn get_opt_string(v: &ConfigValue) -> Result<Option<String>, String> {
    let s = get_string(v)?;
    Ok(if s.is_empty() { None } else { Some(s) })
}

fn parse_save(v: &ConfigValue) -> Result<Vec<(u64, u64)>, String> {
    let s = match v {
        ConfigValue::Str(s) => s,
        other => {
            return Err(format!(
                "expected a string of \"<seconds> <changes>\" pairs such as \"3600 1 300 100\", or \"\", got {other}"
            ))
        }
    };
    let words: Vec<&str> = s.split_whitespace().collect();
    if words.len() == 1 && words[0] == "\"\"" {
        return Ok(Vec::new());
    }
    if !words.len().is_multiple_of(2) {
        return Err(format!(
            "expected \"<seconds> <changes>\" pairs such as \"3600 1 300 100\", or \"\", got {s:?} (odd number of arguments)"
        ));
    }
    let mut out = Vec::new();
    for pair in words.chunks(2) {
        let secs = pair[0].parse::<u64>();
        let changes = pair[1].parse::<u64>();
        match (secs, changes) {
            (Ok(a), Ok(b)) if a <= INT_MAX as u64 && b <= INT_MAX as u64 => out.push((a, b)),
            _ => {
                return Err(format!(
                    "expected \"<seconds> <changes>\" pairs of non-negative integers, got {:?} in {s:?}",
                    pair.join(" ")
                ))
            }
        }
    }
    Ok(out)
}

fn parse_obuf(
    v: &ConfigValue,
    cur: &ClientOutputBufferLimits,
) -> Result<ClientOutputBufferLimits, String> {
    const EXPECTED: &str = "expected \"<class> <hard limit> <soft limit> <soft seconds>\" groups, class one of normal, replica, slave, pubsub (e.g. \"replica 256mb 64mb 60\")";
    let s = match v {
        ConfigValue::Str(s) => s,
        other => return Err(format!("{EXPECTED}, got {other}")),
    };
    let words: Vec<&str> = s.split_whitespace().collect();
    if words.is_empty() || !words.len().is_multiple_of(4) {
        return Err(format!("{EXPECTED}, got {s:?}"));
    }
    let mut out = *cur;
    for g in words.chunks(4) {
        let hard = parse_memory(g[1]).map_err(|e| format!("{EXPECTED}: hard limit: {e}"))?;
        let soft = parse_memory(g[2]).map_err(|e| format!("{EXPECTED}: soft limit: {e}"))?;
        let secs = g[3]
            .parse::<u64>()
            .ok()
            .filter(|n| *n <= INT_MAX as u64)
            .ok_or_else(|| {
                format!(
                    "{EXPECTED}: soft seconds must be a non-negative integer, got {:?}",
                    g[3]
                )
            })?;
        let lim = OutputBufferLimit {
            hard_limit_bytes: hard,
            soft_limit_bytes: soft,
            soft_seconds: secs,
        };
        match g[0].to_ascii_lowercase().as_str() {
            "normal" => out.normal = lim,
            "replica" | "slave" => out.replica = lim,
            "pubsub" => out.pubsub = lim,
            other => return Err(format!("{EXPECTED}: unknown class {other:?}")),
        }
    }
    Ok(out)
}

impl Config {
    /// Set one directive from its `redis.conf` name (or `slave` alias) and a
    /// value, checked as Redis checks it. On error `self` is unchanged and the
    /// message says what was expected.
    pub fn set(&mut self, name: &str, value: &ConfigValue) -> Result<(), String> {
        let canon = canonical_name(name)?;
        let v = value;
        const MS: &str = " (milliseconds)";
        const S: &str = " (seconds)";
        match canon {
            "cluster-enabled" => self.cluster_enabled = get_bool(v)?,
            "cluster-config-file" => self.cluster_config_file = get_string(v)?,
            "cluster-node-timeout" => {
                self.cluster_node_timeout_ms = get_int(v, 0, i64::MAX, MS)? as u64
            }
            "cluster-port" => self.cluster_port = get_port(v)?,
            "cluster-replica-validity-factor" => {
                self.cluster_replica_validity_factor = get_u32(v, 0, INT_MAX, "")?
            }
            "cluster-migration-barrier" => {
                self.cluster_migration_barrier = get_u32(v, 0, INT_MAX, "")?
            }
            "cluster-allow-replica-migration" => {
                self.cluster_allow_replica_migration = get_bool(v)?
            }
            "cluster-require-full-coverage" => self.cluster_require_full_coverage = get_bool(v)?,
            "cluster-replica-no-failover" => self.cluster_replica_no_failover = get_bool(v)?,
            "cluster-allow-reads-when-down" => self.cluster_allow_reads_when_down = get_bool(v)?,
            "cluster-allow-pubsubshard-when-down" => {
                self.cluster_allow_pubsubshard_when_down = get_bool(v)?
            }
            "cluster-link-sendbuf-limit" => self.cluster_link_sendbuf_limit_bytes = get_memory(v)?,
            "cluster-announce-ip" => self.cluster_announce_ip = get_opt_string(v)?,
            "cluster-announce-port" => self.cluster_announce_port = get_port(v)?,
            "cluster-announce-bus-port" => self.cluster_announce_bus_port = get_port(v)?,
            "cluster-announce-tls-port" => self.cluster_announce_tls_port = get_port(v)?,
            "cluster-announce-hostname" => self.cluster_announce_hostname = get_opt_string(v)?,
            "cluster-preferred-endpoint-type" => {
                self.cluster_preferred_endpoint_type = get_enum(v, &ENDPOINT_TYPES)?
            }
            "repl-diskless-sync" => self.repl_diskless_sync = get_bool(v)?,
            "repl-diskless-sync-delay" => {
                self.repl_diskless_sync_delay_s = get_u32(v, 0, INT_MAX, S)?
            }
            "repl-diskless-sync-max-replicas" => {
                self.repl_diskless_sync_max_replicas = get_u32(v, 0, INT_MAX, "")?
            }
            "repl-diskless-load" => self.repl_diskless_load = get_enum(v, &REPL_DISKLESS_LOAD)?,
            "repl-ping-replica-period" => {
                self.repl_ping_replica_period_s = get_u32(v, 1, INT_MAX, S)?
            }
            "repl-timeout" => self.repl_timeout_s = get_u32(v, 1, INT_MAX, S)?,
            "repl-backlog-size" => {
                let n = get_memory(v)?;
                if n < 1 || n > i64::MAX as u64 {
                    return Err(format!("expected a size of at least 1 byte, got {n}"));
                }
                self.repl_backlog_size_bytes = n
            }
            "repl-backlog-ttl" => self.repl_backlog_ttl_s = get_u32(v, 0, INT_MAX, S)?,
            "repl-disable-tcp-nodelay" => self.repl_disable_tcp_nodelay = get_bool(v)?,
            "min-replicas-to-write" => self.min_replicas_to_write = get_u32(v, 0, INT_MAX, "")?,
            "min-replicas-max-lag" => self.min_replicas_max_lag_s = get_u32(v, 0, INT_MAX, S)?,
            "replica-read-only" => self.replica_read_only = get_bool(v)?,
            "replica-serve-stale-data" => self.replica_serve_stale_data = get_bool(v)?,
            "replica-ignore-maxmemory" => self.replica_ignore_maxmemory = get_bool(v)?,
            "replica-priority" => self.replica_priority = get_u32(v, 0, INT_MAX, "")?,
            "masterauth" => self.masterauth = get_opt_string(v)?,
            "masteruser" => self.masteruser = get_opt_string(v)?,
            "requirepass" => self.requirepass = get_opt_string(v)?,
            "client-output-buffer-limit" => {
                self.client_output_buffer_limit = parse_obuf(v, &self.client_output_buffer_limit)?
            }
            "appendonly" => self.appendonly = get_bool(v)?,
            "appendfsync" => self.appendfsync = get_enum(v, &APPENDFSYNC)?,
            "save" => self.save = parse_save(v)?,
            "stop-writes-on-bgsave-error" => self.stop_writes_on_bgsave_error = get_bool(v)?,
            "maxmemory" => self.maxmemory_bytes = get_memory(v)?,
            "maxmemory-policy" => self.maxmemory_policy = get_enum(v, &MAXMEMORY_POLICIES)?,
            "maxmemory-samples" => self.maxmemory_samples = get_u32(v, 1, 64, "")?,
            "maxmemory-eviction-tenacity" => {
                self.maxmemory_eviction_tenacity = get_u32(v, 0, 100, "")?
            }
            "lfu-log-factor" => self.lfu_log_factor = get_u32(v, 0, INT_MAX, "")?,
            "lfu-decay-time" => self.lfu_decay_time_min = get_u32(v, 0, INT_MAX, " (minutes)")?,
            "hz" => self.hz = get_u32(v, 0, INT_MAX, "")?.clamp(1, 500),
            "dynamic-hz" => self.dynamic_hz = get_bool(v)?,
            "active-expire-effort" => self.active_expire_effort = get_u32(v, 1, 10, "")?,
            "shutdown-timeout" => self.shutdown_timeout_s = get_u32(v, 0, INT_MAX, S)?,
            other => return Err(format!("directive '{other}' is not modelled")),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> ConfigValue {
        ConfigValue::Str(x.to_string())
    }

    #[test]
    fn defaults_are_redis_7_0_15() {
        let c = Config::default();
        assert_eq!(c.cluster_node_timeout_ms, 15_000);
        assert_eq!(c.cluster_replica_validity_factor, 10);
        assert_eq!(c.cluster_migration_barrier, 1);
        assert!(c.cluster_require_full_coverage);
        assert!(!c.cluster_allow_reads_when_down);
        assert!(c.cluster_allow_pubsubshard_when_down);
        assert_eq!(c.repl_backlog_size_bytes, 1 << 20);
        assert_eq!(c.repl_timeout_s, 60);
        assert_eq!(c.repl_ping_replica_period_s, 10);
        assert_eq!(c.maxmemory_policy, MaxmemoryPolicy::Noeviction);
        assert_eq!(c.appendfsync, Appendfsync::Everysec);
        assert_eq!(c.save, vec![(3600, 1), (300, 100), (60, 10000)]);
        assert_eq!(
            c.client_output_buffer_limit.replica.hard_limit_bytes,
            256 << 20
        );
        assert_eq!(c.hz, 10);
        assert_eq!(c.shutdown_timeout_s, 10);
    }

    #[test]
    fn every_directive_is_settable() {
        for d in DIRECTIVES {
            assert_eq!(canonical_name(d), Ok(*d));
        }
        for (a, d) in ALIASES {
            assert_eq!(canonical_name(a), Ok(*d));
        }
    }

    #[test]
    fn aliases() {
        let mut c = Config::default();
        c.set("cluster-slave-validity-factor", &ConfigValue::Int(0))
            .unwrap();
        c.set("slave-read-only", &s("no")).unwrap();
        c.set("min-slaves-to-write", &ConfigValue::Int(1)).unwrap();
        c.set("repl-ping-slave-period", &ConfigValue::Int(2))
            .unwrap();
        c.set("CLUSTER-SLAVE-NO-FAILOVER", &ConfigValue::Bool(true))
            .unwrap();
        assert_eq!(c.cluster_replica_validity_factor, 0);
        assert!(!c.replica_read_only);
        assert_eq!(c.min_replicas_to_write, 1);
        assert_eq!(c.repl_ping_replica_period_s, 2);
        assert!(c.cluster_replica_no_failover);
    }

    #[test]
    fn value_syntaxes() {
        let mut c = Config::default();
        c.set("cluster-node-timeout", &ConfigValue::Int(5000))
            .unwrap();
        assert_eq!(c.cluster_node_timeout_ms, 5000);
        c.set("cluster-node-timeout", &s("6000")).unwrap();
        assert_eq!(c.cluster_node_timeout_ms, 6000);
        c.set("appendonly", &s("YES")).unwrap();
        assert!(c.appendonly);
        c.set("appendonly", &ConfigValue::Bool(false)).unwrap();
        assert!(!c.appendonly);
        c.set("maxmemory", &s("100mb")).unwrap();
        assert_eq!(c.maxmemory_bytes, 100 << 20);
        c.set("maxmemory", &s("1k")).unwrap();
        assert_eq!(c.maxmemory_bytes, 1000);
        c.set("maxmemory", &s("64KB")).unwrap();
        assert_eq!(c.maxmemory_bytes, 65536);
        c.set("maxmemory", &s("1gb")).unwrap();
        assert_eq!(c.maxmemory_bytes, 1 << 30);
        c.set("maxmemory", &ConfigValue::Int(12345)).unwrap();
        assert_eq!(c.maxmemory_bytes, 12345);
        c.set("maxmemory-policy", &s("allkeys-lru")).unwrap();
        assert_eq!(c.maxmemory_policy, MaxmemoryPolicy::AllkeysLru);
        c.set("save", &s("")).unwrap();
        assert!(c.save.is_empty());
        c.set("save", &s("900 1")).unwrap();
        assert_eq!(c.save, vec![(900, 1)]);
        c.set(
            "client-output-buffer-limit",
            &s("slave 1mb 512kb 10 pubsub 0 0 0"),
        )
        .unwrap();
        assert_eq!(
            c.client_output_buffer_limit.replica.hard_limit_bytes,
            1 << 20
        );
        assert_eq!(
            c.client_output_buffer_limit.replica.soft_limit_bytes,
            512 << 10
        );
        assert_eq!(c.client_output_buffer_limit.pubsub.soft_seconds, 0);
        c.set("hz", &ConfigValue::Int(1000)).unwrap();
        assert_eq!(c.hz, 500);
        c.set("cluster-announce-hostname", &s("")).unwrap();
        assert_eq!(c.cluster_announce_hostname, None);
        c.set("masterauth", &s("secret")).unwrap();
        assert_eq!(c.masterauth.as_deref(), Some("secret"));
    }

    #[test]
    fn errors() {
        let mut c = Config::default();
        assert_eq!(
            c.set("cluster-node-timout", &ConfigValue::Int(1)),
            Err(
                "unknown directive 'cluster-node-timout' (did you mean 'cluster-node-timeout'?)"
                    .into()
            )
        );
        assert_eq!(
            c.set("bogus-thing", &ConfigValue::Int(1)),
            Err("unknown directive 'bogus-thing'".into())
        );
        assert_eq!(
            c.set("cluster-node-timeout", &ConfigValue::Int(-5)),
            Err("expected an integer >= 0 (milliseconds), got -5".into())
        );
        assert_eq!(
            c.set("maxmemory-policy", &s("allkeys-lru2")),
            Err("expected one of: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction; got \"allkeys-lru2\"".into())
        );
        assert_eq!(
            c.set("appendfsync", &s("sometimes")),
            Err("expected one of: always, everysec, no; got \"sometimes\"".into())
        );
        assert_eq!(
            c.set("appendonly", &s("true")),
            Err("expected \"yes\" or \"no\", got \"true\"".into())
        );
        assert!(c
            .set("maxmemory", &s("10xb"))
            .unwrap_err()
            .starts_with("expected a size"));
        assert!(c.set("maxmemory", &ConfigValue::Float(1.5)).is_err());
        assert!(c.set("maxmemory-samples", &ConfigValue::Int(0)).is_err());
        assert!(c.set("save", &s("900")).unwrap_err().contains("odd number"));
        assert!(c
            .set("client-output-buffer-limit", &s("foo 1 1 1"))
            .unwrap_err()
            .contains("unknown class"));
        assert!(c
            .set("client-output-buffer-limit", &s("normal 1 1"))
            .is_err());
        assert!(c.set("cluster-port", &ConfigValue::Int(70000)).is_err());
        assert!(c
            .set("cluster-node-timeout", &ConfigValue::Float(f64::NAN))
            .is_err());
        assert_eq!(
            c,
            Config::default(),
            "failed sets leave the config unchanged"
        );
    }
}
