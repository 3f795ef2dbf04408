//! Conversion of the spanned value tree into a typed, validated [`Scenario`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::value::{Entry, Node, Val};
use super::*;
use crate::engine::MS;
use crate::node::conf_file::parse_nodes;
use crate::node::config::{canonical_name, levenshtein};

type R<T> = Result<T, ScenarioError>;

/// Largest number of Redis nodes a scenario may describe.
const MAX_NODES: u64 = 1000;

pub struct Cx<'a> {
    pub file: &'a str,
    pub text: &'a str,
    pub base_dir: &'a Path,
}

impl Cx<'_> {
    pub fn err(&self, at: usize, path: &str, message: impl Into<String>) -> ScenarioError {
        let mut at = at.min(self.text.len());
        while !self.text.is_char_boundary(at) {
            at -= 1;
        }
        let before = &self.text[..at];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let col = before[line_start..].chars().count() + 1;
        ScenarioError {
            file: self.file.to_string(),
            position: Some((line, col)),
            path: path.to_string(),
            message: message.into(),
        }
    }

    fn at(&self, n: &Node, path: &str, message: impl Into<String>) -> ScenarioError {
        self.err(n.at, path, message)
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn idx(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

fn got(v: &Val) -> String {
    match v {
        Val::Str(s) => format!("a string ({s:?})"),
        Val::Int(i) => format!("an integer ({i})"),
        Val::Float(f) => format!("a float ({f})"),
        other => other.type_name().to_string(),
    }
}

/// A table being read: its entries, position and key path.
struct Tbl<'a> {
    entries: &'a [Entry],
    at: usize,
    path: String,
}

impl<'a> Tbl<'a> {
    fn new(cx: &Cx, n: &'a Node, path: &str) -> R<Tbl<'a>> {
        match &n.val {
            Val::Table(entries) => Ok(Tbl {
                entries,
                at: n.at,
                path: path.to_string(),
            }),
            other => Err(cx.at(n, path, format!("expected a table, got {}", got(other)))),
        }
    }

    fn allow(&self, cx: &Cx, allowed: &[&str]) -> R<()> {
        for e in self.entries {
            if !allowed.contains(&e.key.as_str()) {
                let mut msg = format!("unknown key {:?}", e.key);
                if let Some(best) = allowed
                    .iter()
                    .min_by_key(|a| levenshtein(&e.key, a))
                    .filter(|a| levenshtein(&e.key, a) <= 2)
                {
                    msg.push_str(&format!(" (did you mean {best:?}?)"));
                }
                msg.push_str(&format!(" (expected one of: {})", allowed.join(", ")));
                return Err(cx.err(e.key_at, &self.p(&e.key), msg));
            }
        }
        Ok(())
    }

    fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries.iter().find(|e| e.key == key).map(|e| &e.node)
    }

    fn p(&self, key: &str) -> String {
        join(&self.path, key)
    }

    fn required(&self, cx: &Cx, key: &str, what: &str) -> R<&'a Node> {
        self.get(key).ok_or_else(|| {
            cx.err(
                self.at,
                &self.p(key),
                format!("missing required key (expected {what})"),
            )
        })
    }
}

fn get_str<'a>(cx: &Cx, n: &'a Node, path: &str) -> R<&'a str> {
    match &n.val {
        Val::Str(s) => Ok(s),
        other => Err(cx.at(n, path, format!("expected a string, got {}", got(other)))),
    }
}

fn get_uint(cx: &Cx, n: &Node, path: &str, min: u64, max: u64) -> R<u64> {
    match &n.val {
        Val::Int(i) if *i >= i128::from(min) && *i <= i128::from(max) => Ok(*i as u64),
        Val::Int(i) if max == u64::MAX => {
            Err(cx.at(n, path, format!("expected an integer >= {min}, got {i}")))
        }
        Val::Int(i) => Err(cx.at(
            n,
            path,
            format!("expected an integer between {min} and {max}, got {i}"),
        )),
        other => Err(cx.at(n, path, format!("expected an integer, got {}", got(other)))),
    }
}

fn get_f64(cx: &Cx, n: &Node, path: &str) -> R<f64> {
    match &n.val {
        Val::Float(f) if f.is_finite() => Ok(*f),
        Val::Float(f) => Err(cx.at(n, path, format!("expected a finite number, got {f}"))),
        Val::Int(i) => Ok(*i as f64),
        other => Err(cx.at(n, path, format!("expected a number, got {}", got(other)))),
    }
}

fn get_ratio(cx: &Cx, n: &Node, path: &str) -> R<f64> {
    let f = get_f64(cx, n, path)?;
    if !(0.0..=1.0).contains(&f) {
        return Err(cx.at(
            n,
            path,
            format!("expected a number between 0 and 1, got {f}"),
        ));
    }
    Ok(f)
}

fn get_bool(cx: &Cx, n: &Node, path: &str) -> R<bool> {
    match &n.val {
        Val::Bool(b) => Ok(*b),
        other => Err(cx.at(
            n,
            path,
            format!("expected true or false, got {}", got(other)),
        )),
    }
}

fn get_duration(cx: &Cx, n: &Node, path: &str) -> R<SimTime> {
    match &n.val {
        Val::Str(s) => parse_duration(s).map_err(|e| cx.at(n, path, e)),
        Val::Int(i) if *i >= 0 => u64::try_from(*i)
            .ok()
            .and_then(|ms| ms.checked_mul(MS))
            .ok_or_else(|| cx.at(n, path, format!("duration {i} ms is out of range"))),
        Val::Int(i) => Err(cx.at(n, path, format!("expected a non-negative duration, got {i}"))),
        other => Err(cx.at(
            n,
            path,
            format!(
                "expected a duration such as \"250us\", \"5ms\", \"1.5s\", \"2m\" or an integer of milliseconds, got {}",
                got(other)
            ),
        )),
    }
}

fn get_size(cx: &Cx, n: &Node, path: &str) -> R<u64> {
    match &n.val {
        Val::Str(s) => crate::node::config::parse_memory(s).map_err(|e| cx.at(n, path, e)),
        Val::Int(i) if *i >= 0 && *i <= i128::from(u64::MAX) => Ok(*i as u64),
        other => Err(cx.at(
            n,
            path,
            format!(
                "expected a size (bytes, or a string such as \"64kb\", \"100mb\", \"1gb\"), got {}",
                got(other)
            ),
        )),
    }
}

fn get_enum<T: Copy>(cx: &Cx, n: &Node, path: &str, what: &str, table: &[(&str, T)]) -> R<T> {
    let names: Vec<&str> = table.iter().map(|(k, _)| *k).collect();
    let expected = format!("(expected one of: {})", names.join(", "));
    match &n.val {
        Val::Str(s) => table
            .iter()
            .find(|(k, _)| k == s)
            .map(|(_, v)| *v)
            .ok_or_else(|| cx.at(n, path, format!("unknown {what} {s:?} {expected}"))),
        other => Err(cx.at(
            n,
            path,
            format!("expected a string {expected}, got {}", got(other)),
        )),
    }
}

fn get_array<'a>(cx: &Cx, n: &'a Node, path: &str) -> R<&'a [Node]> {
    match &n.val {
        Val::Arr(a) => Ok(a),
        other => Err(cx.at(n, path, format!("expected an array, got {}", got(other)))),
    }
}

fn config_value(cx: &Cx, n: &Node, path: &str) -> R<ConfigValue> {
    Ok(match &n.val {
        Val::Str(s) => ConfigValue::Str(s.clone()),
        Val::Bool(b) => ConfigValue::Bool(*b),
        Val::Float(f) => ConfigValue::Float(*f),
        Val::Int(i) => ConfigValue::Int(
            i64::try_from(*i)
                .map_err(|_| cx.at(n, path, format!("integer {i} is out of range")))?,
        ),
        other => {
            return Err(cx.at(
                n,
                path,
                format!("expected a string, integer or boolean, got {}", got(other)),
            ))
        }
    })
}

/// Apply a `[config]`-like table over `cfg`.
fn apply_config(cx: &Cx, n: &Node, path: &str, cfg: &mut Config) -> R<()> {
    let t = Tbl::new(cx, n, path)?;
    for e in t.entries {
        let p = t.p(&e.key);
        canonical_name(&e.key).map_err(|m| cx.err(e.key_at, &p, m))?;
        let v = config_value(cx, &e.node, &p)?;
        cfg.set(&e.key, &v).map_err(|m| cx.at(&e.node, &p, m))?;
    }
    Ok(())
}

/// Ip of generated host `h` (0-based): `10.0.0.<h+1>` (carrying into the
/// third octet past 255).
fn host_ip(h: u32) -> [u8; 4] {
    let n = h + 1;
    [10, 0, (n >> 8) as u8, (n & 0xff) as u8]
}

/// Names and indices known while resolving faults and expectations.
struct Names {
    nodes: usize,
    sentinels: usize,
    clients: usize,
    hosts: u32,
    /// Host of each world index (nodes then sentinels).
    host_of: Vec<u32>,
}

impl Names {
    fn node_list(&self) -> String {
        let mut s = match self.nodes {
            1 => "node-1".to_string(),
            n => format!("node-1 ... node-{n}"),
        };
        if self.sentinels > 0 {
            s.push_str(&format!(", sentinel-1 ... sentinel-{}", self.sentinels));
        }
        s
    }

    /// `node-<i>` (or `sentinel-<i>` when `sentinels_ok`) → world index.
    fn node(&self, cx: &Cx, n: &Node, path: &str, sentinels_ok: bool) -> R<usize> {
        let s = get_str(cx, n, path)?;
        self.node_name(s, sentinels_ok)
            .map_err(|m| cx.at(n, path, m))
    }

    fn node_name(&self, s: &str, sentinels_ok: bool) -> Result<usize, String> {
        let num = |prefix: &str| {
            s.strip_prefix(prefix)
                .filter(|d| !d.starts_with('0'))
                .and_then(|d| d.parse::<usize>().ok())
        };
        if let Some(i) = num("node-").filter(|i| (1..=self.nodes).contains(i)) {
            return Ok(i - 1);
        }
        if let Some(i) = num("sentinel-").filter(|i| (1..=self.sentinels).contains(i)) {
            if sentinels_ok {
                return Ok(self.nodes + i - 1);
            }
            return Err(format!(
                "{s} is a sentinel; expected a Redis node ({})",
                self.node_list_nodes()
            ));
        }
        let list = if sentinels_ok {
            self.node_list()
        } else {
            self.node_list_nodes()
        };
        Err(format!("unknown node {s:?} (this scenario has {list})"))
    }

    fn node_list_nodes(&self) -> String {
        match self.nodes {
            1 => "node-1".to_string(),
            n => format!("node-1 ... node-{n}"),
        }
    }

    fn host(&self, cx: &Cx, n: &Node, path: &str) -> R<u32> {
        let s = get_str(cx, n, path)?;
        s.strip_prefix("host-")
            .filter(|d| !d.starts_with('0'))
            .and_then(|d| d.parse::<u32>().ok())
            .filter(|h| (1..=self.hosts).contains(h))
            .map(|h| h - 1)
            .ok_or_else(|| {
                cx.at(
                    n,
                    path,
                    format!(
                        "unknown host {s:?} (this scenario has host-1 ... host-{})",
                        self.hosts
                    ),
                )
            })
    }

    /// Resolve groups of names; `"rest"` is every node or sentinel not named
    /// in another group.
    fn groups(&self, cx: &Cx, groups: &[(&[Node], String)]) -> R<Vec<Vec<Endpoint>>> {
        let world = self.nodes + self.sentinels;
        let mut out: Vec<Vec<Endpoint>> = Vec::new();
        let mut rest_in: Option<usize> = None;
        let mut owner: BTreeMap<Endpoint, usize> = BTreeMap::new();
        for (gi, (members, gpath)) in groups.iter().enumerate() {
            let mut g = Vec::new();
            for (mi, m) in members.iter().enumerate() {
                let mp = idx(gpath, mi);
                let s = get_str(cx, m, &mp)?;
                let mut add: Vec<Endpoint> = Vec::new();
                if s == "rest" {
                    if rest_in.is_some() {
                        return Err(cx.at(m, &mp, "\"rest\" may appear in only one group"));
                    }
                    rest_in = Some(gi);
                    continue;
                } else if s == "clients" {
                    add.extend((0..self.clients).map(|k| Endpoint::Clients(k as u32)));
                } else if s.starts_with("host-") {
                    let h = self.host(cx, m, &mp)?;
                    add.extend(
                        (0..world)
                            .filter(|i| self.host_of[*i] == h)
                            .map(|i| Endpoint::Node(i as u32)),
                    );
                } else {
                    let i = self.node_name(s, true).map_err(|_| {
                        cx.at(
                            m,
                            &mp,
                            format!(
                                "unknown group member {s:?} (expected {}, host-1 ... host-{}, \"clients\" or \"rest\")",
                                self.node_list(),
                                self.hosts
                            ),
                        )
                    })?;
                    add.push(Endpoint::Node(i as u32));
                }
                for ep in add {
                    if let Some(other) = owner.get(&ep) {
                        if *other != gi {
                            return Err(cx.at(
                                m,
                                &mp,
                                format!("{s:?} overlaps group {other}: a member may be in only one group"),
                            ));
                        }
                        continue;
                    }
                    owner.insert(ep, gi);
                    g.push(ep);
                }
            }
            out.push(g);
        }
        if let Some(gi) = rest_in {
            for i in 0..world {
                let ep = Endpoint::Node(i as u32);
                if !owner.contains_key(&ep) {
                    out[gi].push(ep);
                }
            }
        }
        for g in &mut out {
            g.sort();
        }
        Ok(out)
    }
}

fn group_arrays<'a>(cx: &Cx, n: &'a Node, path: &str) -> R<Vec<(&'a [Node], String)>> {
    let arr = get_array(cx, n, path)?;
    let mut out = Vec::new();
    for (i, g) in arr.iter().enumerate() {
        let p = idx(path, i);
        let members = get_array(cx, g, &p).map_err(|_| {
            cx.at(
                g,
                &p,
                format!(
                    "expected a group (an array of names such as [\"node-1\", \"host-2\"]), got {}",
                    got(&g.val)
                ),
            )
        })?;
        if members.is_empty() {
            return Err(cx.at(g, &p, "a group must name at least one member"));
        }
        out.push((members, p));
    }
    Ok(out)
}

fn latency_spec(cx: &Cx, n: &Node, path: &str) -> R<LatencySpec> {
    match &n.val {
        Val::Table(_) => {
            let t = Tbl::new(cx, n, path)?;
            t.allow(cx, &["min", "max", "mean", "jitter"])?;
            let get = |k: &str| t.get(k).map(|v| get_duration(cx, v, &t.p(k))).transpose();
            match (get("min")?, get("max")?, get("mean")?, get("jitter")?) {
                (Some(min), Some(max), None, None) => {
                    if min > max {
                        return Err(cx.at(n, path, "expected min <= max"));
                    }
                    Ok(LatencySpec::Uniform { min, max })
                }
                (None, None, Some(mean), Some(jitter)) => Ok(LatencySpec::Normal { mean, jitter }),
                _ => Err(cx.at(
                    n,
                    path,
                    "expected a duration, { min, max } or { mean, jitter }",
                )),
            }
        }
        _ => get_duration(cx, n, path).map(LatencySpec::Fixed),
    }
}

fn network(cx: &Cx, n: &Node, path: &str) -> R<NetworkSpec> {
    let t = Tbl::new(cx, n, path)?;
    t.allow(cx, &["latency", "loss", "bandwidth"])?;
    let mut net = NetworkSpec::default();
    if let Some(v) = t.get("latency") {
        net.latency = latency_spec(cx, v, &t.p("latency"))?;
    }
    if let Some(v) = t.get("loss") {
        net.loss = get_ratio(cx, v, &t.p("loss"))?;
    }
    if let Some(v) = t.get("bandwidth") {
        let p = t.p("bandwidth");
        net.bandwidth_bps = match &v.val {
            Val::Str(s) => parse_bandwidth(s).map_err(|e| cx.at(v, &p, e))?,
            _ => get_uint(cx, v, &p, 1, u64::MAX)?,
        };
    }
    Ok(net)
}

const CLUSTER_KEYS: &[&str] = &[
    "nodes",
    "replicas",
    "hosts",
    "addresses",
    "nodes_file",
    "mode",
    "sentinels",
    "host_memory",
    "overcommit_memory",
];

struct Topology {
    cluster: ClusterSpec,
    /// (addr, host) for the created nodes.
    created: Vec<(Addr, u32)>,
    generated: bool,
}

fn cluster(cx: &Cx, n: &Node) -> R<Topology> {
    let t = Tbl::new(cx, n, "cluster")?;
    t.allow(cx, CLUSTER_KEYS)?;
    let mode = match t.get("mode") {
        Some(v) => get_enum(
            cx,
            v,
            "cluster.mode",
            "mode",
            &[
                ("cluster", Mode::Cluster),
                ("standalone", Mode::Standalone),
                ("replication", Mode::Replication),
                ("sentinel", Mode::Sentinel),
            ],
        )?,
        None => Mode::Cluster,
    };
    let replicas = match t.get("replicas") {
        Some(v) => get_uint(cx, v, "cluster.replicas", 0, MAX_NODES)? as u32,
        None => 0,
    };
    let sentinels = match t.get("sentinels") {
        Some(v) if mode != Mode::Sentinel => {
            return Err(cx.at(
                v,
                "cluster.sentinels",
                "only allowed with mode = \"sentinel\"",
            ))
        }
        Some(v) => get_uint(cx, v, "cluster.sentinels", 1, 100)? as u32,
        None if mode == Mode::Sentinel => 3,
        None => 0,
    };
    let nodes_key = t.get("nodes");
    let nodes = nodes_key
        .map(|v| get_uint(cx, v, "cluster.nodes", 1, MAX_NODES))
        .transpose()?;
    let mut nodes_file = None;
    let mut created: Vec<(Addr, u32)> = Vec::new();
    let mut generated = false;
    let from_addrs = |addrs: Vec<(Addr, usize, String)>| -> R<Vec<(Addr, u32)>> {
        let mut ips: Vec<[u8; 4]> = Vec::new();
        let mut out: Vec<(Addr, u32)> = Vec::new();
        for (a, at, p) in addrs {
            if out.iter().any(|(b, _)| *b == a) {
                return Err(cx.err(at, &p, format!("duplicate address {a}")));
            }
            let h = match ips.iter().position(|ip| *ip == a.ip) {
                Some(h) => h,
                None => {
                    ips.push(a.ip);
                    ips.len() - 1
                }
            };
            out.push((a, h as u32));
        }
        Ok(out)
    };
    if let Some(v) = t.get("nodes_file") {
        if mode != Mode::Cluster {
            return Err(cx.at(
                v,
                "cluster.nodes_file",
                "only allowed with mode = \"cluster\"",
            ));
        }
        let rel = get_str(cx, v, "cluster.nodes_file")?;
        let full = cx.base_dir.join(rel);
        let text = std::fs::read_to_string(&full).map_err(|e| {
            cx.at(
                v,
                "cluster.nodes_file",
                format!("cannot read {}: {e}", full.display()),
            )
        })?;
        let f = parse_nodes(&text).map_err(|e| {
            cx.at(
                v,
                "cluster.nodes_file",
                format!("{}:{}: {}", full.display(), e.line, e.message),
            )
        })?;
        if f.nodes.len() as u64 > MAX_NODES {
            return Err(cx.at(
                v,
                "cluster.nodes_file",
                format!("more than {MAX_NODES} nodes"),
            ));
        }
        let mut addrs = Vec::with_capacity(f.nodes.len());
        for l in &f.nodes {
            let Some(a) = l.addr() else {
                return Err(cx.at(
                    v,
                    "cluster.nodes_file",
                    format!("node {} has no address in the dump", l.id),
                ));
            };
            addrs.push((a, v.at, "cluster.nodes_file".to_string()));
        }
        created = from_addrs(addrs)?;
        nodes_file = Some(f);
    } else if let Some(v) = t.get("addresses") {
        let arr = get_array(cx, v, "cluster.addresses")?;
        if arr.is_empty() {
            return Err(cx.at(v, "cluster.addresses", "expected at least one \"ip:port\""));
        }
        if arr.len() as u64 > MAX_NODES {
            return Err(cx.at(
                v,
                "cluster.addresses",
                format!("more than {MAX_NODES} addresses"),
            ));
        }
        let mut addrs = Vec::new();
        for (i, a) in arr.iter().enumerate() {
            let p = idx("cluster.addresses", i);
            let s = get_str(cx, a, &p)?;
            let addr = Addr::parse(s).map_err(|e| cx.at(a, &p, e))?;
            if addr.port > 55535 {
                return Err(cx.at(
                    a,
                    &p,
                    format!(
                        "port {} is above 55535: its bus port (+10000) would not exist",
                        addr.port
                    ),
                ));
            }
            addrs.push((addr, a.at, p));
        }
        created = from_addrs(addrs)?;
    } else {
        generated = true;
        let count = match mode {
            Mode::Cluster => nodes.ok_or_else(|| {
                cx.err(t.at, "cluster.nodes", "missing required key (expected the number of nodes, or `addresses`, or `nodes_file`)")
            })?,
            Mode::Standalone => nodes.unwrap_or(1),
            Mode::Replication | Mode::Sentinel => nodes.unwrap_or(u64::from(replicas) + 1),
        };
        let hosts = match t.get("hosts") {
            Some(v) => {
                let h = get_uint(cx, v, "cluster.hosts", 1, u64::MAX)?;
                if h > count {
                    return Err(cx.at(
                        v,
                        "cluster.hosts",
                        format!("expected at most {count} hosts (one per node), got {h}"),
                    ));
                }
                h
            }
            None => count,
        } as u32;
        let mut per_host = vec![0u16; hosts as usize];
        for i in 0..count as usize {
            let h = (i % hosts as usize) as u32;
            created.push((Addr::new(host_ip(h), 6379 + per_host[h as usize]), h));
            per_host[h as usize] += 1;
        }
    }
    let count = created.len();
    // Where a wrong node count for the mode is reported.
    let count_at = nodes_key
        .or(t.get("addresses"))
        .map(|v| v.at)
        .unwrap_or(t.at);
    let hosts = created.iter().map(|(_, h)| h + 1).max().unwrap_or(1);
    match mode {
        Mode::Cluster if nodes_file.is_none() => {
            let masters = count / (replicas as usize + 1);
            if masters < 3 {
                let p = if generated {
                    "cluster.nodes"
                } else {
                    "cluster.addresses"
                };
                let at = t
                    .get(if generated { "nodes" } else { "addresses" })
                    .map(|v| v.at)
                    .unwrap_or(t.at);
                return Err(cx.err(
                    at,
                    p,
                    format!(
                        "Redis Cluster requires at least 3 master nodes. This is not possible with {count} nodes and {replicas} replicas per node. At least {} nodes are required.",
                        3 * (replicas as usize + 1)
                    ),
                ));
            }
        }
        Mode::Standalone => {
            if count != 1 {
                return Err(cx.err(
                    count_at,
                    "cluster.nodes",
                    format!("standalone mode runs exactly one node, got {count}"),
                ));
            }
            if let Some(v) = t.get("replicas").filter(|_| replicas > 0) {
                return Err(cx.at(
                    v,
                    "cluster.replicas",
                    "standalone mode has no replicas (expected 0)",
                ));
            }
        }
        Mode::Replication | Mode::Sentinel if count != replicas as usize + 1 => {
            return Err(cx.err(
                count_at,
                "cluster.nodes",
                format!(
                    "a master with {replicas} replicas is {} nodes, got {count}",
                    replicas + 1
                ),
            ));
        }
        _ => {}
    }
    let host_memory = t
        .get("host_memory")
        .map(|v| get_size(cx, v, "cluster.host_memory"))
        .transpose()?;
    let overcommit_memory = match t.get("overcommit_memory") {
        Some(v) => get_uint(cx, v, "cluster.overcommit_memory", 0, 1)? as u8,
        None => 0,
    };
    Ok(Topology {
        cluster: ClusterSpec {
            mode,
            replicas,
            hosts,
            sentinels,
            nodes_file,
            create_count: count,
            host_memory,
            overcommit_memory,
        },
        created,
        generated,
    })
}

/// Highest `node-<i>` named by an `add-node` fault (best effort pre-pass;
/// the real pass reports errors).
fn added_max(root: &Tbl) -> usize {
    let mut max = 0;
    if let Some(Val::Arr(faults)) = root.get("faults").map(|n| &n.val) {
        for f in faults {
            if let Val::Table(entries) = &f.val {
                let get = |k: &str| entries.iter().find(|e| e.key == k).map(|e| &e.node.val);
                if let (Some(Val::Str(a)), Some(Val::Str(n))) = (get("action"), get("node")) {
                    if a == "add-node" {
                        if let Some(i) = n
                            .strip_prefix("node-")
                            .filter(|d| !d.starts_with('0'))
                            .and_then(|d| d.parse::<usize>().ok())
                            .filter(|i| *i as u64 <= MAX_NODES)
                        {
                            max = max.max(i);
                        }
                    }
                }
            }
        }
    }
    max
}

const WORKLOAD_KEYS: &[&str] = &[
    "clients",
    "rate",
    "keys",
    "distribution",
    "read_ratio",
    "write",
    "value_size",
    "ttl",
    "timeout",
    "retry_after",
    "start",
    "stop",
    "read_from_replicas",
    "slots",
    "ttl_share",
    "on_miss",
    "trace",
    "wait",
];

fn workload(cx: &Cx, n: &Node, path: &str, duration: SimTime) -> R<Workload> {
    let t = Tbl::new(cx, n, path)?;
    t.allow(cx, WORKLOAD_KEYS)?;
    let mut w = Workload::default();
    for e in t.entries {
        let (v, p) = (&e.node, t.p(&e.key));
        match e.key.as_str() {
            "clients" => w.clients = get_uint(cx, v, &p, 1, 100_000)? as u32,
            "rate" => {
                w.rate = get_f64(cx, v, &p)?;
                if w.rate <= 0.0 {
                    return Err(cx.at(
                        v,
                        &p,
                        format!("expected a rate > 0 requests per second, got {}", w.rate),
                    ));
                }
            }
            "keys" => w.keys = get_uint(cx, v, &p, 1, u64::MAX)?,
            "distribution" => {
                let s = get_str(cx, v, &p)?;
                w.distribution = if s == "uniform" {
                    Distribution::Uniform
                } else if let Some(x) = s.strip_prefix("zipf:") {
                    match x.trim().parse::<f64>() {
                        Ok(z) if z.is_finite() && z > 0.0 => Distribution::Zipf(z),
                        _ => {
                            return Err(cx.at(
                                v,
                                &p,
                                format!("expected \"zipf:<s>\" with a number s > 0 (e.g. \"zipf:0.99\"), got {s:?}"),
                            ))
                        }
                    }
                } else {
                    return Err(cx.at(
                        v,
                        &p,
                        format!("expected \"uniform\" or \"zipf:<s>\", got {s:?}"),
                    ));
                };
            }
            "read_ratio" => w.read_ratio = get_ratio(cx, v, &p)?,
            "write" => {
                w.write = get_enum(
                    cx,
                    v,
                    &p,
                    "write command",
                    &[
                        ("set", WriteCmd::Set),
                        ("incr", WriteCmd::Incr),
                        ("append", WriteCmd::Append),
                    ],
                )?
            }
            "value_size" => w.value_size_bytes = get_size(cx, v, &p)?,
            "ttl" => {
                let d = get_duration(cx, v, &p)?;
                if d < MS {
                    return Err(cx.at(
                        v,
                        &p,
                        "expected a ttl of at least 1ms (SET ... PX takes milliseconds)",
                    ));
                }
                w.ttl = Some(d)
            }
            "timeout" => {
                w.timeout = get_duration(cx, v, &p)?;
                if w.timeout == 0 {
                    return Err(cx.at(v, &p, "expected a timeout > 0"));
                }
            }
            "retry_after" => w.retry_after = get_duration(cx, v, &p)?,
            "start" => w.start = get_duration(cx, v, &p)?,
            "stop" => w.stop = Some(get_duration(cx, v, &p)?),
            "read_from_replicas" => w.read_from_replicas = get_bool(cx, v, &p)?,
            "slots" => {
                let s = get_str(cx, v, &p)?;
                w.slots = Some(parse_slot_ranges(s).map_err(|m| cx.at(v, &p, m))?);
            }
            "ttl_share" => w.ttl_share = get_ratio(cx, v, &p)?,
            "on_miss" => {
                w.on_miss = get_enum(
                    cx,
                    v,
                    &p,
                    "on_miss",
                    &[("none", OnMiss::None), ("set", OnMiss::Set)],
                )?
            }
            "trace" => {
                let s = get_str(cx, v, &p)?;
                let full = cx.base_dir.join(s);
                if !full.is_file() {
                    return Err(cx.at(
                        v,
                        &p,
                        format!("trace file {s:?} not found (looked for {})", full.display()),
                    ));
                }
                w.trace = Some(full);
            }
            "wait" => {
                let wt = Tbl::new(cx, v, &p)?;
                wt.allow(cx, &["replicas", "timeout"])?;
                let r = wt.required(cx, "replicas", "a number of replicas")?;
                let replicas = get_uint(cx, r, &wt.p("replicas"), 0, 1_000)? as u32;
                let timeout = match wt.get("timeout") {
                    Some(t) => get_duration(cx, t, &wt.p("timeout"))?,
                    None => 0,
                };
                if timeout % MS != 0 {
                    let at = wt.get("timeout").expect("a remainder needs a value");
                    return Err(cx.at(
                        at,
                        &wt.p("timeout"),
                        "expected whole milliseconds (WAIT takes milliseconds; 0 = forever)",
                    ));
                }
                w.wait = Some(crate::scenario::WaitSpec { replicas, timeout });
            }
            _ => unreachable!("keys checked by allow()"),
        }
    }
    if w.start > duration {
        let v = t.get("start").expect("start > 0 only when given");
        return Err(cx.at(
            v,
            &t.p("start"),
            "start is after the end of the run (duration)",
        ));
    }
    if let Some(stop) = w.stop {
        let v = t.get("stop").expect("stop given");
        if stop <= w.start {
            return Err(cx.at(v, &t.p("stop"), "expected stop after start"));
        }
    }
    Ok(w)
}

const ACTIONS: &[&str] = &[
    "kill",
    "restart",
    "pause",
    "resume",
    "crash-host",
    "partition",
    "isolate",
    "one-way",
    "heal",
    "block-port",
    "latency",
    "loss",
    "failover",
    "reshard",
    "add-node",
    "del-node",
    "rebalance",
    "fix",
    "config-set",
    "replicaof",
    "replicaof-no-one",
    "repoint-clients",
];

fn action_keys(action: &str) -> &'static [&'static str] {
    match action {
        "kill" | "restart" | "pause" | "resume" | "isolate" | "del-node" => {
            &["at", "action", "node"]
        }
        "crash-host" => &["at", "action", "host"],
        "partition" => &["at", "action", "groups"],
        "one-way" => &["at", "action", "from", "to"],
        "heal" => &["at", "action"],
        "block-port" => &["at", "action", "port", "node"],
        "latency" | "loss" => &["at", "action", "value", "between"],
        "failover" => &["at", "action", "node", "mode"],
        "reshard" => &["at", "action", "slots", "from", "to"],
        "add-node" => &["at", "action", "node", "replica_of"],
        "rebalance" => &["at", "action", "weights", "threshold", "use_empty_masters"],
        "fix" => &["at", "action", "with_unreachable_masters", "replace"],
        "config-set" => &["at", "action", "node", "directive", "value"],
        "replicaof" => &["at", "action", "node", "master"],
        "replicaof-no-one" | "repoint-clients" => &["at", "action", "node"],
        _ => &[],
    }
}

struct FaultCx<'a> {
    names: Names,
    mode: Mode,
    create_count: usize,
    added: BTreeSet<usize>,
    config: &'a Config,
    node_configs: &'a [Config],
}

fn fault(cx: &Cx, fc: &mut FaultCx, n: &Node, path: &str, duration: SimTime) -> R<Fault> {
    let t = Tbl::new(cx, n, path)?;
    let action_node = t.required(cx, "action", &format!("one of: {}", ACTIONS.join(", ")))?;
    let ap = t.p("action");
    let action = get_str(cx, action_node, &ap)?;
    if !ACTIONS.contains(&action) {
        return Err(cx.at(
            action_node,
            &ap,
            format!(
                "unknown action {action:?} (expected one of: {})",
                ACTIONS.join(", ")
            ),
        ));
    }
    t.allow(cx, action_keys(action))?;
    let at_node = t.required(cx, "at", "a duration such as \"10s\"")?;
    let at = get_duration(cx, at_node, &t.p("at"))?;
    if at > duration {
        return Err(cx.at(
            at_node,
            &t.p("at"),
            "fault is scheduled after the end of the run (duration)",
        ));
    }
    let req = |k: &str, what: &str| t.required(cx, k, what);
    let node_req = |fc: &FaultCx, k: &str, sentinels_ok: bool| -> R<usize> {
        let v = req(k, "a node name such as \"node-1\"")?;
        fc.names.node(cx, v, &t.p(k), sentinels_ok)
    };
    let cluster_only = |fc: &FaultCx| -> R<()> {
        if fc.mode != Mode::Cluster {
            return Err(cx.at(
                action_node,
                &ap,
                format!("action {action:?} is only available with mode = \"cluster\""),
            ));
        }
        Ok(())
    };
    let replication_only = |fc: &FaultCx, modes: &[Mode]| -> R<()> {
        if !modes.contains(&fc.mode) {
            let names: Vec<String> = modes
                .iter()
                .map(|m| format!("mode = \"{}\"", format!("{m:?}").to_lowercase()))
                .collect();
            return Err(cx.at(
                action_node,
                &ap,
                format!(
                    "action {action:?} is only available with {}",
                    names.join(" or ")
                ),
            ));
        }
        Ok(())
    };
    let between = |fc: &FaultCx| -> R<Option<(Vec<Endpoint>, Vec<Endpoint>)>> {
        let Some(v) = t.get("between") else {
            return Ok(None);
        };
        let p = t.p("between");
        let groups = group_arrays(cx, v, &p)?;
        if groups.len() != 2 {
            return Err(cx.at(v, &p, format!("expected two groups, got {}", groups.len())));
        }
        let mut g = fc.names.groups(cx, &groups)?;
        let b = g.pop().unwrap_or_default();
        let a = g.pop().unwrap_or_default();
        Ok(Some((a, b)))
    };
    // `node = "all"` or a node name.
    let node_or_all = |fc: &FaultCx, v: &Node| -> R<Option<usize>> {
        match &v.val {
            Val::Str(s) if s == "all" => Ok(None),
            _ => Some(fc.names.node(cx, v, &t.p("node"), false).map_err(|mut e| {
                e.message = e
                    .message
                    .replace("(this scenario has ", "(expected \"all\" or ");
                e
            }))
            .transpose(),
        }
    };
    let action = match action {
        "kill" => FaultAction::Kill {
            node: node_req(fc, "node", true)?,
        },
        "restart" => FaultAction::Restart {
            node: node_req(fc, "node", true)?,
        },
        "pause" => FaultAction::Pause {
            node: node_req(fc, "node", true)?,
        },
        "resume" => FaultAction::Resume {
            node: node_req(fc, "node", true)?,
        },
        "isolate" => FaultAction::Isolate {
            node: node_req(fc, "node", true)?,
        },
        "crash-host" => {
            let v = req("host", "a host name such as \"host-1\"")?;
            FaultAction::CrashHost {
                host: fc.names.host(cx, v, &t.p("host"))?,
            }
        }
        "partition" => {
            let v = req(
                "groups",
                "an array of groups such as [[\"node-1\"], [\"rest\"]]",
            )?;
            let p = t.p("groups");
            let groups = group_arrays(cx, v, &p)?;
            if groups.len() < 2 {
                return Err(cx.at(
                    v,
                    &p,
                    format!("expected at least two groups, got {}", groups.len()),
                ));
            }
            FaultAction::Partition {
                groups: fc.names.groups(cx, &groups)?,
            }
        }
        "one-way" => {
            let f = req("from", "an array of names")?;
            let to = req("to", "an array of names")?;
            let (fp, tp) = (t.p("from"), t.p("to"));
            let fa = get_array(cx, f, &fp)?;
            let ta = get_array(cx, to, &tp)?;
            for (a, v, p) in [(fa, f, &fp), (ta, to, &tp)] {
                if a.is_empty() {
                    return Err(cx.at(v, p, "expected at least one name"));
                }
            }
            let mut g = fc.names.groups(cx, &[(fa, fp), (ta, tp)])?;
            let to = g.pop().unwrap_or_default();
            let from = g.pop().unwrap_or_default();
            FaultAction::OneWay { from, to }
        }
        "heal" => FaultAction::Heal,
        "block-port" => {
            cluster_only(fc)?;
            let v = req("port", "\"bus\" (the cluster bus port)")?;
            get_enum(cx, v, &t.p("port"), "port", &[("bus", ())])?;
            let node = match t.get("node") {
                Some(v) => node_or_all(fc, v)?,
                None => None,
            };
            FaultAction::BlockBusPort { node }
        }
        "latency" => {
            let v = req("value", "a duration, { min, max } or { mean, jitter }")?;
            FaultAction::Latency {
                value: latency_spec(cx, v, &t.p("value"))?,
                between: between(fc)?,
            }
        }
        "loss" => {
            let v = req("value", "a probability between 0 and 1")?;
            FaultAction::Loss {
                value: get_ratio(cx, v, &t.p("value"))?,
                between: between(fc)?,
            }
        }
        "failover" => {
            cluster_only(fc)?;
            let node = node_req(fc, "node", false)?;
            let mode = match t.get("mode") {
                Some(v) => get_enum(
                    cx,
                    v,
                    &t.p("mode"),
                    "failover mode",
                    &[
                        ("default", FailoverMode::Default),
                        ("force", FailoverMode::Force),
                        ("takeover", FailoverMode::Takeover),
                    ],
                )?,
                None => FailoverMode::Default,
            };
            FaultAction::Failover { node, mode }
        }
        "reshard" => {
            cluster_only(fc)?;
            let v = req("slots", "slot ranges such as \"0-99\"")?;
            let p = t.p("slots");
            let slots = parse_slot_ranges(get_str(cx, v, &p)?).map_err(|m| cx.at(v, &p, m))?;
            let from = node_req(fc, "from", false)?;
            let to = node_req(fc, "to", false)?;
            if from == to {
                return Err(cx.at(
                    t.get("to").unwrap_or(n),
                    &t.p("to"),
                    "expected a node other than `from`",
                ));
            }
            FaultAction::Reshard { slots, from, to }
        }
        "add-node" => {
            cluster_only(fc)?;
            let node = node_req(fc, "node", false)?;
            let v = t.get("node").unwrap_or(n);
            if node < fc.create_count {
                return Err(cx.at(
                    v,
                    &t.p("node"),
                    format!(
                        "node-{} is already in the cluster (new nodes are numbered from node-{})",
                        node + 1,
                        fc.create_count + 1
                    ),
                ));
            }
            if !fc.added.insert(node) {
                return Err(cx.at(v, &t.p("node"), format!("node-{} is added twice", node + 1)));
            }
            let replica_of = match t.get("replica_of") {
                Some(r) => {
                    let m = fc.names.node(cx, r, &t.p("replica_of"), false)?;
                    if m == node {
                        return Err(cx.at(r, &t.p("replica_of"), "a node cannot replicate itself"));
                    }
                    Some(m)
                }
                None => None,
            };
            FaultAction::AddNode { node, replica_of }
        }
        "del-node" => {
            cluster_only(fc)?;
            FaultAction::DelNode {
                node: node_req(fc, "node", false)?,
            }
        }
        "rebalance" => {
            cluster_only(fc)?;
            let mut weights = Vec::new();
            if let Some(v) = t.get("weights") {
                let wt = Tbl::new(cx, v, &t.p("weights"))?;
                for e in wt.entries {
                    let wp = wt.p(&e.key);
                    let i = fc
                        .names
                        .node_name(&e.key, false)
                        .map_err(|m| cx.err(e.key_at, &wp, m))?;
                    let w = get_f64(cx, &e.node, &wp)?;
                    if w < 0.0 {
                        return Err(cx.at(
                            &e.node,
                            &wp,
                            format!("expected a weight >= 0, got {w}"),
                        ));
                    }
                    weights.push((i, w));
                }
            }
            let threshold = match t.get("threshold") {
                Some(v) => {
                    let f = get_f64(cx, v, &t.p("threshold"))?;
                    if f < 0.0 {
                        return Err(cx.at(
                            v,
                            &t.p("threshold"),
                            format!("expected a percentage >= 0, got {f}"),
                        ));
                    }
                    f
                }
                None => 2.0,
            };
            let use_empty_masters = match t.get("use_empty_masters") {
                Some(v) => get_bool(cx, v, &t.p("use_empty_masters"))?,
                None => false,
            };
            FaultAction::Rebalance {
                weights,
                threshold,
                use_empty_masters,
            }
        }
        "fix" => {
            cluster_only(fc)?;
            let flag = |k: &str| match t.get(k) {
                Some(v) => get_bool(cx, v, &t.p(k)),
                None => Ok(false),
            };
            FaultAction::Fix {
                with_unreachable_masters: flag("with_unreachable_masters")?,
                replace: flag("replace")?,
            }
        }
        "config-set" => {
            let v = req("node", "a node name or \"all\"")?;
            let node = node_or_all(fc, v)?;
            let d = req("directive", "a redis.conf directive name")?;
            let dp = t.p("directive");
            let name = get_str(cx, d, &dp)?;
            let canon = canonical_name(name).map_err(|m| cx.at(d, &dp, m))?;
            if ["cluster-enabled", "cluster-config-file", "cluster-port"].contains(&canon) {
                return Err(cx.at(
                    d,
                    &dp,
                    format!("'{canon}' is immutable: CONFIG SET cannot change it"),
                ));
            }
            let val = req("value", "the directive's value")?;
            let vp = t.p("value");
            let value = config_value(cx, val, &vp)?;
            let mut scratch = match node {
                Some(i) => fc.node_configs[i].clone(),
                None => fc.config.clone(),
            };
            scratch.set(canon, &value).map_err(|m| cx.at(val, &vp, m))?;
            FaultAction::ConfigSet {
                node,
                directive: canon.to_string(),
                value,
            }
        }
        "replicaof" => {
            replication_only(fc, &[Mode::Replication, Mode::Sentinel])?;
            let node = node_req(fc, "node", false)?;
            let master = node_req(fc, "master", false)?;
            if master == node {
                return Err(cx.at(
                    t.get("master").unwrap_or(n),
                    &t.p("master"),
                    "a node cannot replicate itself",
                ));
            }
            FaultAction::ReplicaOf {
                node,
                master: Some(master),
            }
        }
        "replicaof-no-one" => {
            replication_only(fc, &[Mode::Replication, Mode::Sentinel])?;
            FaultAction::ReplicaOf {
                node: node_req(fc, "node", false)?,
                master: None,
            }
        }
        "repoint-clients" => {
            replication_only(fc, &[Mode::Replication])?;
            FaultAction::RepointClients {
                node: node_req(fc, "node", false)?,
            }
        }
        _ => unreachable!("action checked against ACTIONS"),
    };
    Ok(Fault { at, action })
}

const EXPECT_KEYS: &[&str] = &[
    "at",
    "cluster_state",
    "role",
    "master_of",
    "current_epoch",
    "min_replicas",
    "max_lost_writes",
    "max_unavailable",
    "max_failover_time",
    "min_hit_ratio",
    "max_evicted",
    "invariants",
];

fn expect(cx: &Cx, names: &Names, n: &Node, path: &str, duration: SimTime) -> R<Expect> {
    let t = Tbl::new(cx, n, path)?;
    t.allow(cx, EXPECT_KEYS)?;
    let mut x = Expect {
        at: None,
        cluster_state: None,
        role: BTreeMap::new(),
        master_of: BTreeMap::new(),
        current_epoch: None,
        min_replicas: BTreeMap::new(),
        max_lost_writes: None,
        max_unavailable: None,
        max_failover_time: None,
        min_hit_ratio: None,
        max_evicted: None,
        invariants: Invariants::Hold,
    };
    for e in t.entries {
        let (v, p) = (&e.node, t.p(&e.key));
        match e.key.as_str() {
            "at" => {
                x.at = match &v.val {
                    Val::Str(s) if s == "end" => None,
                    _ => {
                        let d = get_duration(cx, v, &p).map_err(|mut e| {
                            e.message = format!("{} (or \"end\")", e.message);
                            e
                        })?;
                        if d > duration {
                            return Err(cx.at(
                                v,
                                &p,
                                "expectation is read after the end of the run (duration)",
                            ));
                        }
                        Some(d)
                    }
                }
            }
            "cluster_state" => {
                x.cluster_state = Some(get_enum(
                    cx,
                    v,
                    &p,
                    "cluster_state",
                    &[
                        ("ok", ClusterStateExpect::Ok),
                        ("fail", ClusterStateExpect::Fail),
                    ],
                )?)
            }
            "role" => {
                let rt = Tbl::new(cx, v, &p)?;
                for re in rt.entries {
                    let rp = rt.p(&re.key);
                    let i = names
                        .node_name(&re.key, false)
                        .map_err(|m| cx.err(re.key_at, &rp, m))?;
                    let role = get_enum(
                        cx,
                        &re.node,
                        &rp,
                        "role",
                        &[
                            ("master", Role::Master),
                            ("replica", Role::Replica),
                            ("slave", Role::Replica),
                        ],
                    )?;
                    x.role.insert(i, role);
                }
            }
            "master_of" => {
                let mt = Tbl::new(cx, v, &p)?;
                for me in mt.entries {
                    let mp = mt.p(&me.key);
                    let slot = match me.key.trim().parse::<u32>() {
                        Ok(s) if s < 16384 => s as u16,
                        _ => {
                            return Err(cx.err(
                                me.key_at,
                                &mp,
                                format!("expected a slot number 0..16383 as key, got {:?}", me.key),
                            ))
                        }
                    };
                    x.master_of
                        .insert(slot, names.node(cx, &me.node, &mp, false)?);
                }
            }
            "current_epoch" => x.current_epoch = Some(get_uint(cx, v, &p, 0, u64::MAX)?),
            "min_replicas" => {
                let mt = Tbl::new(cx, v, &p)?;
                for me in mt.entries {
                    let mp = mt.p(&me.key);
                    let i = names
                        .node_name(&me.key, false)
                        .map_err(|m| cx.err(me.key_at, &mp, m))?;
                    let n = get_uint(cx, &me.node, &mp, 1, MAX_NODES - 1)?;
                    x.min_replicas.insert(i, n);
                }
            }
            "max_lost_writes" => x.max_lost_writes = Some(get_uint(cx, v, &p, 0, u64::MAX)?),
            "max_unavailable" => x.max_unavailable = Some(get_duration(cx, v, &p)?),
            "max_failover_time" => x.max_failover_time = Some(get_duration(cx, v, &p)?),
            "min_hit_ratio" => x.min_hit_ratio = Some(get_ratio(cx, v, &p)?),
            "max_evicted" => x.max_evicted = Some(get_uint(cx, v, &p, 0, u64::MAX)?),
            "invariants" => {
                x.invariants = get_enum(
                    cx,
                    v,
                    &p,
                    "invariants",
                    &[("hold", Invariants::Hold), ("ignore", Invariants::Ignore)],
                )?
            }
            _ => unreachable!("keys checked by allow()"),
        }
    }
    Ok(x)
}

fn sentinel(
    cx: &Cx,
    n: Option<&Node>,
    sentinels: u32,
    first_host: u32,
    used: &[Addr],
) -> R<SentinelSpec> {
    let mut s = SentinelSpec {
        quorum: sentinels / 2 + 1,
        down_after_ms: 30_000,
        failover_timeout_ms: 180_000,
        parallel_syncs: 1,
        sentinels: Vec::new(),
    };
    if let Some(n) = n {
        let t = Tbl::new(cx, n, "sentinel")?;
        t.allow(
            cx,
            &[
                "quorum",
                "down-after-milliseconds",
                "failover-timeout",
                "parallel-syncs",
            ],
        )?;
        let int = |v: &Node, p: &str, min: u64, max: u64| -> R<u64> {
            match &v.val {
                Val::Str(s) if s.trim().parse::<u64>().is_ok() => {
                    let x = s.trim().parse::<u64>().unwrap_or(0);
                    if x < min || x > max {
                        return Err(cx.at(
                            v,
                            p,
                            format!("expected an integer between {min} and {max}, got {x}"),
                        ));
                    }
                    Ok(x)
                }
                _ => get_uint(cx, v, p, min, max),
            }
        };
        for e in t.entries {
            let (v, p) = (&e.node, t.p(&e.key));
            match e.key.as_str() {
                "quorum" => s.quorum = int(v, &p, 1, u64::from(sentinels))? as u32,
                "down-after-milliseconds" => s.down_after_ms = int(v, &p, 1, i64::MAX as u64)?,
                "failover-timeout" => s.failover_timeout_ms = int(v, &p, 1, i64::MAX as u64)?,
                "parallel-syncs" => s.parallel_syncs = int(v, &p, 1, i32::MAX as u64)? as u32,
                _ => unreachable!("keys checked by allow()"),
            }
        }
    }
    for i in 0..sentinels {
        let host = first_host + i;
        let addr = Addr::new(host_ip(host), 26379);
        if used.contains(&addr) {
            return Err(cx.err(
                0,
                "cluster.sentinels",
                format!("generated sentinel address {addr} is already used by a node"),
            ));
        }
        s.sentinels.push(SentinelNode {
            name: format!("sentinel-{}", i + 1),
            addr,
            host,
        });
    }
    Ok(s)
}

const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "seed",
    "duration",
    "cluster",
    "config",
    "node",
    "network",
    "workload",
    "faults",
    "expect",
    "sentinel",
];

pub fn scenario(cx: &Cx, root: &Node) -> R<Scenario> {
    let t = Tbl::new(cx, root, "")?;
    t.allow(cx, TOP_KEYS)?;
    let name = match t.get("name") {
        Some(v) => get_str(cx, v, "name")?.to_string(),
        None => Path::new(cx.file)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    let description = match t.get("description") {
        Some(v) => get_str(cx, v, "description")?.to_string(),
        None => String::new(),
    };
    let seed = match t.get("seed") {
        Some(v) => get_uint(cx, v, "seed", 0, u64::MAX)?,
        None => 1,
    };
    let dn = t.required(cx, "duration", "a duration such as \"60s\"")?;
    let duration = get_duration(cx, dn, "duration")?;
    if duration == 0 {
        return Err(cx.at(dn, "duration", "expected a duration > 0"));
    }
    let cn = t.required(cx, "cluster", "a [cluster] table")?;
    let topo = cluster(cx, cn)?;
    let mode = topo.cluster.mode;

    let mut config = Config {
        cluster_enabled: mode == Mode::Cluster,
        ..Config::default()
    };
    if let Some(v) = t.get("config") {
        apply_config(cx, v, "config", &mut config)?;
        if config.cluster_enabled != (mode == Mode::Cluster) {
            let want = if mode == Mode::Cluster { "yes" } else { "no" };
            let (p, at) = Tbl::new(cx, v, "config")?
                .entries
                .iter()
                .find(|e| e.key.eq_ignore_ascii_case("cluster-enabled"))
                .map(|e| (format!("config.{}", e.key), e.node.at))
                .unwrap_or(("config".into(), v.at));
            return Err(cx.err(
                at,
                &p,
                format!(
                    "expected \"{want}\": cluster.mode decides whether nodes run in cluster mode"
                ),
            ));
        }
    }

    // Nodes: created ones, then those introduced by add-node faults.
    let mut placed = topo.created.clone();
    let create_count = placed.len();
    let total = added_max(&t).max(create_count);
    let hosts_n = topo.cluster.hosts;
    for i in create_count..total {
        let h = (i % hosts_n as usize) as u32;
        let addr = if topo.generated {
            let k = placed.iter().filter(|(_, ph)| *ph == h).count();
            Addr::new(host_ip(h), 6379 + k as u16)
        } else {
            let ip = placed
                .iter()
                .find(|(_, ph)| *ph == h)
                .map(|(a, _)| a.ip)
                .unwrap_or(host_ip(h));
            let maxp = placed
                .iter()
                .filter(|(a, _)| a.ip == ip)
                .map(|(a, _)| a.port)
                .max()
                .unwrap_or(6378);
            if maxp >= 55535 {
                return Err(cx.err(0, "faults", "no free port left for an added node"));
            }
            Addr::new(ip, maxp + 1)
        };
        placed.push((addr, h));
    }
    let mut nodes: Vec<NodeSpec> = placed
        .iter()
        .enumerate()
        .map(|(i, (addr, host))| NodeSpec {
            name: format!("node-{}", i + 1),
            addr: *addr,
            host: *host,
            config: config.clone(),
            in_create: i < create_count,
        })
        .collect();

    if let Some(v) = t.get("node") {
        let nt = Tbl::new(cx, v, "node")?;
        for e in nt.entries {
            let np = nt.p(&e.key);
            let i = nodes.iter().position(|n| n.name == e.key).ok_or_else(|| {
                cx.err(
                    e.key_at,
                    &np,
                    format!(
                        "unknown node {:?} (this scenario has node-1 ... node-{})",
                        e.key,
                        nodes.len()
                    ),
                )
            })?;
            let et = Tbl::new(cx, &e.node, &np)?;
            et.allow(cx, &["config"])?;
            if let Some(c) = et.get("config") {
                let mut cfg = nodes[i].config.clone();
                apply_config(cx, c, &et.p("config"), &mut cfg)?;
                if cfg.cluster_enabled != config.cluster_enabled {
                    return Err(cx.at(
                        c,
                        &et.p("config"),
                        "cluster-enabled cannot differ between nodes (cluster.mode decides it)",
                    ));
                }
                nodes[i].config = cfg;
            }
        }
    }

    let network = match t.get("network") {
        Some(v) => network(cx, v, "network")?,
        None => NetworkSpec::default(),
    };

    let sentinel_spec = match (mode, t.get("sentinel")) {
        (Mode::Sentinel, v) => {
            let used: Vec<Addr> = nodes.iter().map(|n| n.addr).collect();
            Some(sentinel(cx, v, topo.cluster.sentinels, hosts_n, &used)?)
        }
        (_, Some(v)) => {
            let key_at = t
                .entries
                .iter()
                .find(|e| e.key == "sentinel")
                .map(|e| e.key_at)
                .unwrap_or(v.at);
            return Err(cx.err(
                key_at,
                "sentinel",
                "a [sentinel] table is only allowed with cluster.mode = \"sentinel\"",
            ));
        }
        (_, None) => None,
    };

    let mut workloads = Vec::new();
    if let Some(v) = t.get("workload") {
        for (i, w) in get_array(cx, v, "workload")?.iter().enumerate() {
            workloads.push(workload(cx, w, &idx("workload", i), duration)?);
        }
    }

    let sentinel_nodes = sentinel_spec
        .as_ref()
        .map(|s| s.sentinels.as_slice())
        .unwrap_or(&[]);
    let mut host_of: Vec<u32> = nodes.iter().map(|n| n.host).collect();
    host_of.extend(sentinel_nodes.iter().map(|s| s.host));
    let names = Names {
        nodes: nodes.len(),
        sentinels: sentinel_nodes.len(),
        clients: workloads.len(),
        hosts: hosts_n + sentinel_nodes.len() as u32,
        host_of,
    };

    let node_configs: Vec<Config> = nodes.iter().map(|n| n.config.clone()).collect();
    let mut fc = FaultCx {
        names,
        mode,
        create_count,
        added: BTreeSet::new(),
        config: &config,
        node_configs: &node_configs,
    };
    let mut faults = Vec::new();
    if let Some(v) = t.get("faults") {
        let arr = get_array(cx, v, "faults")?;
        for (i, f) in arr.iter().enumerate() {
            faults.push(fault(cx, &mut fc, f, &idx("faults", i), duration)?);
        }
        // Every node past the created ones must be introduced by add-node.
        if let Some(missing) = (create_count..nodes.len()).find(|i| !fc.added.contains(i)) {
            return Err(cx.at(
                v,
                "faults",
                format!(
                    "node-{} is added but node-{} is not: nodes joining with add-node must be numbered node-{}, node-{}, ... without gaps",
                    nodes.len(),
                    missing + 1,
                    create_count + 1,
                    create_count + 2
                ),
            ));
        }
    }
    faults.sort_by_key(|f| f.at);

    let mut expects = Vec::new();
    if let Some(v) = t.get("expect") {
        for (i, e) in get_array(cx, v, "expect")?.iter().enumerate() {
            expects.push(expect(cx, &fc.names, e, &idx("expect", i), duration)?);
        }
    }

    Ok(Scenario {
        name,
        description,
        seed,
        duration,
        cluster: topo.cluster,
        config,
        nodes,
        network,
        workloads,
        faults,
        expects,
        sentinel: sentinel_spec,
        source: PathBuf::from(cx.file),
    })
}
