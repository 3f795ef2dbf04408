//! What a run prints for people: the human summary. (The `--json` summary
//! is built by [`crate::sim::Simulation::summary`].)

pub mod compare;
pub mod page;
pub mod plot;
pub mod sweep;
pub mod timeline;

use std::fmt::Write;

use crate::sim::{ExpectResult, Simulation};
use crate::world::{fmt_time, HistoryKind, World};

/// The sentinel events worth a line: the master's state, the election,
/// the failover's steps, TILT.
pub const SENTINEL_EVENTS_SHOWN: [&str; 17] = [
    "+sdown",
    "-sdown",
    "+odown",
    "-odown",
    "+try-failover",
    "+vote-for-leader",
    "+elected-leader",
    "-failover-abort-not-elected",
    "-failover-abort-no-good-slave",
    "-failover-abort-slave-timeout",
    "+selected-slave",
    "+promoted-slave",
    "+failover-end",
    "+switch-master",
    "+convert-to-slave",
    "+tilt",
    "-tilt",
];

/// "sentinel events": each event of [`SENTINEL_EVENTS_SHOWN`], in time
/// order (S_DOWN of replicas and sentinels left out).
fn sentinel_section(s: &mut String, sim: &Simulation) {
    let w = &sim.world;
    let mut first = true;
    for (at, sentinel, kind, about, detail) in sim.sentinel_events() {
        let about_node = about.is_some_and(|a| (a as usize) < w.procs.len());
        let sdown = matches!(kind, "+sdown" | "-sdown");
        if !SENTINEL_EVENTS_SHOWN.contains(&kind) || (sdown && !about_node) {
            continue;
        }
        if first {
            let _ = writeln!(s, "\nsentinel events");
            first = false;
        }
        let line = format!(
            "  {:>10}  {:<11} {:<30} {}",
            fmt_time(at),
            w.sentinels.procs[sentinel as usize].name,
            format!("{kind} {}", about.map_or("", |a| w.name_of(a))),
            detail
        );
        let _ = writeln!(s, "{}", line.trim_end());
    }
}

/// One line of "final state": name, address, what it is, `(paused)`.
fn state_line(
    s: &mut String,
    name: &str,
    addr: crate::net::Addr,
    line: &str,
    state: crate::world::ProcState,
) {
    let paused = if state == crate::world::ProcState::Paused {
        " (paused)"
    } else {
        ""
    };
    let _ = writeln!(s, "  {name:<8} {:<16} {line}{paused}", addr.to_string());
}

/// The summary `redsim run` prints without `--json`.
pub fn human_summary(sim: &Simulation, expectations: &[ExpectResult]) -> String {
    let w = &sim.world;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "scenario  {}  (seed {}, {} simulated, {} events, trace hash {})",
        w.scenario.name,
        w.seed,
        fmt_time(sim.stats.now),
        sim.stats.events,
        sim.stats.hash.hex()
    );
    let created = w.history.iter().find(|h| h.kind == HistoryKind::Created);
    let standalone = w.scenario.standalone();
    match created {
        _ if standalone => {
            let _ = writeln!(s, "created   standalone node (cluster-enabled no)");
        }
        _ if w.scenario.replicated() => {
            let _ = writeln!(
                s,
                "created   {} master, {} with replicaof {} (cluster-enabled no){}",
                w.procs[0].name,
                match w.procs.len() {
                    1 => "no replica".to_string(),
                    2 => format!("{} replica", w.procs[1].name),
                    n => format!("{} ... {} replicas", w.procs[1].name, w.procs[n - 1].name),
                },
                w.procs[0].name,
                match w.scenario.sentinel.as_ref() {
                    Some(sp) => format!(", {} sentinels", sp.sentinels.len()),
                    None => String::new(),
                }
            );
        }
        _ if w.scenario.cluster.nodes_file.is_some() => {
            let _ = writeln!(
                s,
                "created   from a CLUSTER NODES dump (cluster.nodes_file)"
            );
        }
        Some(h) => {
            let _ = writeln!(
                s,
                "created   cluster joined at {} (redis-cli --cluster create)",
                fmt_time(h.at)
            );
        }
        None => {
            let _ = writeln!(
                s,
                "created   the cluster never finished joining (redis-cli --cluster create still \"Waiting for the cluster to join\")"
            );
            for line in unknown_nodes(w) {
                let _ = writeln!(s, "          {line}");
            }
        }
    }
    if !w.scenario.faults.is_empty() {
        let _ = writeln!(s, "\nfaults");
        for f in &w.scenario.faults {
            let _ = writeln!(
                s,
                "  {:>10}  {}",
                fmt_time(f.at),
                describe_fault(w, &f.action)
            );
        }
    }
    if let serde_json::Value::Array(d) = sim.detections() {
        if !d.is_empty() {
            let _ = writeln!(s, "\nfailure detection (first time any node flagged it)");
            for x in d {
                let t = |k: &str| {
                    x[k].as_u64()
                        .map(|ms| fmt_time(ms * 1000))
                        .unwrap_or_else(|| "-".into())
                };
                let _ = writeln!(
                    s,
                    "  {:<8} fail? at {:>10}   fail at {:>10}",
                    x["node"].as_str().unwrap_or("?"),
                    t("first_pfail_ms"),
                    t("first_fail_ms")
                );
            }
        }
    }
    if !w.manager.log.is_empty() {
        let _ = writeln!(s, "\nredis-cli --cluster");
        for (at, line) in &w.manager.log {
            let _ = writeln!(
                s,
                "  {:>10}  {}",
                fmt_time(*at),
                line.replace('\n', "\n              ")
            );
        }
    }
    let failovers = sim.failovers();
    if !failovers.is_empty() {
        let _ = writeln!(s, "\nfailovers");
        for f in &failovers {
            let name = |p: u32| w.procs[p as usize].name.as_str();
            let since = match f.died {
                Some(d) => format!(
                    "  ({} after the fault{})",
                    fmt_time(f.promoted_at - d),
                    f.fail
                        .map(|t| {
                            let what = if f.kind == crate::sim::FailoverKind::Sentinel {
                                "ODOWN"
                            } else {
                                "FAIL"
                            };
                            format!(", {what} at {}", fmt_time(t))
                        })
                        .unwrap_or_default()
                ),
                None => String::new(),
            };
            let epoch = if w.scenario.cluster.mode == crate::scenario::Mode::Cluster {
                format!(", config epoch {}", f.config_epoch)
            } else {
                String::new()
            };
            let _ = writeln!(
                s,
                "  {:>10}  {} replaced {} ({}{epoch}){since}",
                fmt_time(f.promoted_at),
                name(f.promoted),
                name(f.failed),
                f.kind.as_str(),
            );
        }
    }
    sentinel_section(&mut s, sim);
    if !w.scenario.workloads.is_empty() {
        let t = sim.client_totals();
        let pops = w.scenario.workloads.len();
        let conns: u64 = w
            .scenario
            .workloads
            .iter()
            .map(|x| u64::from(x.clients))
            .sum();
        let _ = writeln!(
            s,
            "\nclients ({pops} population{}, {conns} connection{})",
            if pops == 1 { "" } else { "s" },
            if conns == 1 { "" } else { "s" }
        );
        let _ = writeln!(
            s,
            "  ops     {} sent, {} ok, {} errors, {} timeouts",
            t.ops.sent, t.ops.ok, t.ops.errors, t.ops.timeouts
        );
        let _ = writeln!(
            s,
            "  writes  {} acknowledged, {} failed, {} lost",
            t.writes.acknowledged, t.writes.failed, t.lost
        );
        let _ = writeln!(s, "  redirections  {} MOVED, {} ASK", t.moved, t.ask);
        let _ = writeln!(s, "  longest time writes kept failing, per shard");
        // A standalone node is one shard: every slot.
        for (i, u) in t.unavailable.iter().enumerate() {
            let _ = writeln!(
                s,
                "    shard {:<3} {:<16} {:>10}",
                i + 1,
                sim.shard_slots(i),
                fmt_time(*u)
            );
        }
    }
    let _ = writeln!(s, "\nfinal state");
    for (i, p) in w.procs.iter().enumerate() {
        let line = match &p.node {
            // INFO's `cluster_enabled:0`: no epoch, state or slots.
            Some(_) if standalone => format!("{:<7}cluster_enabled:0", sim.role_of(i)),
            Some(n) if w.scenario.replicated() => {
                let r = n.replication();
                let of = w
                    .master_of(i as u32)
                    .map(|m| {
                        let link = if r.replica.master_link_up() {
                            "up"
                        } else {
                            "down"
                        };
                        format!(" of {} (link {link})", w.procs[m as usize].name)
                    })
                    .unwrap_or_default();
                format!(
                    "{:<7}{of:<22} offset {}",
                    sim.role_of(i),
                    if n.is_master() {
                        r.master_repl_offset()
                    } else {
                        r.slave_repl_offset()
                    }
                )
            }
            Some(n) => {
                let mut slots = String::new();
                crate::node::render::write_slot_ranges(&mut slots, n.myself().slots.ranges());
                let master = n
                    .master_id()
                    .and_then(|m| w.proc_of_id(&m))
                    .map(|m| format!(" of {}", w.procs[m as usize].name))
                    .unwrap_or_default();
                format!(
                    "{:<7}{master:<12} epoch {:<3} cluster_state:{}{}",
                    sim.role_of(i),
                    n.my_epoch(),
                    if n.state_ok() { "ok  " } else { "fail" },
                    if slots.is_empty() {
                        String::new()
                    } else {
                        format!("  slots{slots}")
                    }
                )
            }
            None => "dead".to_string(),
        };
        state_line(&mut s, &p.name, p.addr, &line, p.state);
    }
    for sp in &w.sentinels.procs {
        let line = match &sp.sentinel {
            None => "dead".to_string(),
            Some(st) => {
                let a = st.master.addr;
                let master = w
                    .proc_at_addr(a.ip, u32::from(a.port))
                    .map_or("?", |m| w.procs[m as usize].name.as_str());
                format!(
                    "sentinel  monitors {master} (config epoch {}), current epoch {}, knows {} sentinels and {} replicas{}",
                    st.master.config_epoch,
                    st.current_epoch,
                    st.sentinels.len(),
                    st.slaves.len(),
                    if st.tilt { ", TILT" } else { "" }
                )
            }
        };
        state_line(&mut s, &sp.name, sp.addr, &line, sp.state);
    }
    memory_section(&mut s, sim);
    redis_log_section(&mut s, sim);
    checks_section(&mut s, sim);
    anomalies_section(&mut s, sim);
    if !expectations.is_empty() {
        let _ = writeln!(s, "\nexpectations");
        for e in expectations {
            let mark = match e.ok {
                Some(true) => "ok  ",
                Some(false) => "FAIL",
                None => "skip",
            };
            let reason = e
                .reason
                .as_deref()
                .map(|r| format!("  ({r})"))
                .unwrap_or_default();
            let _ = writeln!(s, "  {mark}  {}{reason}", e.text);
        }
    }
    s
}

/// The "memory" section: each running node that holds keys, was asked
/// for one, or has `maxmemory`.
fn memory_section(s: &mut String, sim: &Simulation) {
    let mb = |b: u64| format!("{:.2}mb", b as f64 / (1 << 20) as f64);
    let mut lines = Vec::new();
    for p in &sim.world.procs {
        let Some(n) = &p.node else { continue };
        let st = n.keyspace.stats;
        let lookups = st.keyspace_hits + st.keyspace_misses;
        if n.keyspace.is_empty() && lookups == 0 && n.maxmemory() == 0 {
            continue;
        }
        let limit = match n.maxmemory() {
            0 => "no limit".to_string(),
            m => mb(m),
        };
        let ratio = match lookups {
            0 => "-".to_string(),
            l => format!("{:.3}", st.keyspace_hits as f64 / l as f64),
        };
        lines.push(format!(
            "  {:<8} used {} (peak {}, maxmemory {limit})  {} keys  {} evicted  {} expired  hit ratio {ratio} ({} hits, {} misses)",
            p.name,
            mb(n.used_memory()),
            mb(n.used_memory_peak()),
            n.keyspace.len(),
            st.evicted_keys,
            st.expired_keys,
            st.keyspace_hits,
            st.keyspace_misses,
        ));
    }
    if !lines.is_empty() {
        let _ = writeln!(s, "\nmemory");
        for l in lines {
            let _ = writeln!(s, "{l}");
        }
    }
}

/// For a cluster that never joined: each created node that some other
/// running created node does not know (`node-3 is unknown to node-1,
/// node-2`), the usual reason (a wrong `cluster-announce-ip`, a blocked
/// bus port).
fn unknown_nodes(w: &World) -> Vec<String> {
    let created: Vec<usize> = (0..w.procs.len())
        .filter(|&p| w.scenario.nodes[p].in_create && w.procs[p].node.is_some())
        .collect();
    let mut out = Vec::new();
    for &p in &created {
        let id = w.procs[p].node.as_ref().expect("running").my_id();
        let unknown_to: Vec<&str> = created
            .iter()
            .filter(|&&q| q != p)
            .filter(|&&q| {
                let n = w.procs[q].node.as_ref().expect("running");
                n.node_by_name(&id).is_none_or(|x| x.in_handshake())
            })
            .map(|&q| w.procs[q].name.as_str())
            .collect();
        if !unknown_to.is_empty() {
            out.push(format!(
                "{} is unknown to {}",
                w.procs[p].name,
                unknown_to.join(", ")
            ));
        }
    }
    out
}

/// The "redis log" section: the warnings Redis logged (verbatim), per
/// node, with how often and when.
fn redis_log_section(s: &mut String, sim: &Simulation) {
    let log = sim.redis_log();
    if log.is_empty() {
        return;
    }
    let _ = writeln!(s, "\nredis log (warnings, verbatim)");
    for l in log {
        let when = match l.count {
            1 => format!("at {}", fmt_time(l.first)),
            n => format!("{n} times, {} to {}", fmt_time(l.first), fmt_time(l.last)),
        };
        let _ = writeln!(
            s,
            "  {:<8} {}  ({when})",
            sim.world.procs[l.proc as usize].name, l.line
        );
    }
}

/// The "checks" section: each check, ok or FAIL with its violations and
/// the history entries before each; liveness with how it ended.
fn checks_section(s: &mut String, sim: &Simulation) {
    use crate::check::liveness::Status;
    let violations = sim.checks.violations();
    let _ = writeln!(s, "\nchecks");
    for name in crate::check::NAMES {
        let mine: Vec<_> = violations.iter().filter(|v| v.check == name).collect();
        let (mark, note) = match sim.checks.liveness() {
            _ if name != crate::check::liveness::NAME => ("ok  ", String::new()),
            Status::Recovered {
                cause,
                since,
                at,
                bound,
            } => (
                "ok  ",
                format!(
                    "converged {} after {cause}; bound {}",
                    fmt_time(at - since),
                    fmt_time(*bound)
                ),
            ),
            Status::NotApplicable { cause, reason } => {
                ("n/a ", format!("not judged after {cause}: {reason}"))
            }
            Status::Unknown { cause, deadline } | Status::Pending { cause, deadline } => (
                "?   ",
                format!(
                    "not converged yet at {} after {cause}; the bound ends at {}",
                    fmt_time(sim.stats.now),
                    fmt_time(*deadline)
                ),
            ),
            Status::Violated { cause, deadline } => (
                "FAIL",
                format!("not converged by {} after {cause}", fmt_time(*deadline)),
            ),
            Status::Idle => ("n/a ", "no event was processed".to_string()),
        };
        let mark = if mine.is_empty() { mark } else { "FAIL" };
        let note = if note.is_empty() {
            note
        } else {
            format!("  ({note})")
        };
        let _ = writeln!(s, "  {mark}  {name}{note}");
        for v in mine {
            let _ = writeln!(s, "          at {}: {}", fmt_time(v.at), v.message);
            for h in crate::check::context(&sim.world, v.at) {
                let what = crate::check::describe_history(&sim.world, h);
                let _ = writeln!(s, "            {:>10}  {what}", fmt_time(h.at));
            }
        }
    }
}

/// The "anomalies" section: what Redis does by design and the run
/// measured (only when there is something to say).
fn anomalies_section(s: &mut String, sim: &Simulation) {
    let windows = sim.checks.split_brain();
    let lost = sim.checks.lost_writes();
    if windows.is_empty() && lost.total() == 0 {
        return;
    }
    let _ = writeln!(s, "\nanomalies (Redis's by design, not violations)");
    for (w, n) in crate::check::lost_writes_explained::WINDOWS
        .iter()
        .zip(lost.by_window)
        .filter(|(_, n)| *n > 0)
    {
        let _ = writeln!(s, "  lost writes  {n:>6}  {w}");
    }
    for w in windows {
        let to = w.to.unwrap_or(sim.stats.now);
        let names: Vec<&str> = w
            .procs
            .iter()
            .map(|&p| sim.world.procs[p as usize].name.as_str())
            .collect();
        let _ = writeln!(
            s,
            "  split brain  {:>10} to {:>10}  {:>9}  {} slots accepted writes on {}",
            fmt_time(w.from),
            fmt_time(to),
            fmt_time(to - w.from),
            w.slots,
            names.join(" and ")
        );
    }
}

/// A group of endpoints: `node-1,node-2,clients`.
fn endpoints(world: &World, g: &[crate::net::Endpoint]) -> String {
    use crate::net::Endpoint;
    let names: Vec<String> = g
        .iter()
        .map(|e| match e {
            Endpoint::Node(i) => world.name_of(*i).to_string(),
            Endpoint::Clients(_) => "clients".to_string(),
        })
        .collect();
    names.join(",")
}

fn pair(
    world: &World,
    between: &Option<(Vec<crate::net::Endpoint>, Vec<crate::net::Endpoint>)>,
) -> String {
    match between {
        Some((a, b)) => format!(
            " between {} and {}",
            endpoints(world, a),
            endpoints(world, b)
        ),
        None => String::new(),
    }
}

fn latency(l: &crate::net::LatencySpec) -> String {
    use crate::net::LatencySpec::*;
    match *l {
        Fixed(t) => fmt_time(t),
        Uniform { min, max } => format!("{}..{}", fmt_time(min), fmt_time(max)),
        Normal { mean, jitter } => format!("{}±{}", fmt_time(mean), fmt_time(jitter)),
    }
}

/// A fault in a few words: `kill node-1`, `heal`.
pub fn describe_fault(world: &World, a: &crate::scenario::FaultAction) -> String {
    use crate::scenario::FaultAction::*;
    let name = |i: &usize| world.name_of(*i as u32).to_string();
    let target = |n: &Option<usize>| n.as_ref().map_or("every node".to_string(), name);
    match a {
        Kill { node } => format!("kill {}", name(node)),
        Restart { node } => format!("restart {}", name(node)),
        Pause { node } => format!("pause {}", name(node)),
        Resume { node } => format!("resume {}", name(node)),
        CrashHost { host } => format!("crash-host host-{}", host + 1),
        Isolate { node } => format!("isolate {}", name(node)),
        Heal => "heal".into(),
        BlockBusPort { node } => format!("block-port bus of {}", target(node)),
        Failover { node, mode } => format!("{} to {}", mode.command(), name(node)),
        Partition { groups } => {
            let g: Vec<String> = groups.iter().map(|g| endpoints(world, g)).collect();
            format!("partition {}", g.join(" | "))
        }
        OneWay { from, to } => format!(
            "one-way {} -> {}",
            endpoints(world, from),
            endpoints(world, to)
        ),
        Latency { value, between } => format!("latency {}{}", latency(value), pair(world, between)),
        Loss { value, between } => format!("loss {value}{}", pair(world, between)),
        Reshard { slots, from, to } => {
            let mut ranges = String::new();
            crate::node::render::write_slot_ranges(
                &mut ranges,
                slots.iter().map(|&(a, b)| (usize::from(a), usize::from(b))),
            );
            format!("reshard{ranges} from {} to {}", name(from), name(to))
        }
        AddNode { node, replica_of } => match replica_of {
            Some(m) => format!("add-node {} as a replica of {}", name(node), name(m)),
            None => format!("add-node {}", name(node)),
        },
        DelNode { node } => format!("del-node {}", name(node)),
        Rebalance { .. } => "rebalance".into(),
        Fix { .. } => "fix".into(),
        ConfigSet {
            node,
            directive,
            value,
        } => format!("CONFIG SET {directive} {value} on {}", target(node)),
        ReplicaOf { node, master } => match master {
            Some(m) => {
                let a = world.procs[*m].addr;
                let [a0, a1, a2, a3] = a.ip;
                format!("REPLICAOF {a0}.{a1}.{a2}.{a3} {} to {}", a.port, name(node))
            }
            None => format!("REPLICAOF NO ONE to {}", name(node)),
        },
        RepointClients { node } => format!("clients repointed to {}", name(node)),
    }
}
