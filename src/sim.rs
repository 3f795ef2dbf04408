//! One run of a scenario: the world, its event queue and the run loop, with
//! expectations read at their times and the summary at the end.

use std::io::Write;

use serde_json::{json, Value};

use crate::check::Checks;
use crate::client::accounting::{self, OpsCount, WritesCount};
use crate::engine::{self, EventQueue, Hooks, RunStats, SimTime};
use crate::node::render::write_slot_ranges;
use crate::node::route::ClientFlags;
use crate::node::serve::{ClientReply, CLUSTER_DISABLED_ERR};
use crate::scenario::{ClusterStateExpect, Expect, Mode, Role, Scenario};
use crate::world::{fmt_time, Event, ProcState, World};

/// A simulation in progress.
pub struct Simulation {
    pub world: World,
    queue: EventQueue<Event>,
    pub stats: RunStats,
    /// The invariant checks, observing every event.
    pub checks: Checks,
    /// [`Simulation::lost_writes`] as computed at the end of [`Simulation::run`]
    /// (at that time), so that the summary does not compute it again.
    lost_at_end: Option<(SimTime, Vec<LostWrite>)>,
}

/// A lost write: the process that acknowledged it, its slot, when it was
/// sent and when acknowledged.
pub type LostWrite = (u32, u16, SimTime, SimTime);

/// The outcome of one expectation.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ExpectResult {
    pub text: String,
    /// `None` when it could not be checked (not implemented yet).
    pub ok: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// How a replica came to replace its master.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailoverKind {
    /// An election after the master was flagged FAIL.
    Automatic,
    /// `CLUSTER FAILOVER [FORCE|TAKEOVER]`.
    Manual(crate::node::FailoverMode),
    /// Cluster mode off: an operator's `REPLICAOF NO ONE` (the
    /// `replicaof-no-one` fault).
    ReplicaofNoOne,
    /// Cluster mode off: a Sentinel's `SLAVEOF NO ONE`.
    Sentinel,
}

/// The kind of a promotion from its note's `manual`.
impl From<Option<crate::node::FailoverMode>> for FailoverKind {
    fn from(manual: Option<crate::node::FailoverMode>) -> Self {
        manual.map_or(FailoverKind::Automatic, FailoverKind::Manual)
    }
}

impl FailoverKind {
    /// The `kind` of the summary: `automatic`, `manual`, `force`, `takeover`.
    pub fn as_str(self) -> &'static str {
        use crate::node::FailoverMode::*;
        match self {
            FailoverKind::Automatic => "automatic",
            FailoverKind::Manual(Default) => "manual",
            FailoverKind::Manual(Force) => "force",
            FailoverKind::Manual(Takeover) => "takeover",
            FailoverKind::ReplicaofNoOne => "replicaof-no-one",
            FailoverKind::Sentinel => "sentinel",
        }
    }
}

/// One promotion of a replica (scenario-format.md, `failovers`).
#[derive(Clone, Debug, PartialEq)]
pub struct Failover {
    /// The process of the replaced master.
    pub failed: u32,
    /// The process of the replica that took over.
    pub promoted: u32,
    pub kind: FailoverKind,
    /// The last fault that cut the failed master off before the promotion.
    pub died: Option<SimTime>,
    /// The first FAIL flag about the failed master after `died`.
    pub fail: Option<SimTime>,
    pub promoted_at: SimTime,
    pub config_epoch: u64,
}

/// A warning Redis logged, and how often ([`Simulation::redis_log`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisLogLine {
    pub proc: u32,
    /// Verbatim, as Redis 7.0.15 writes it (without its timestamp prefix).
    pub line: String,
    pub count: u32,
    pub first: SimTime,
    pub last: SimTime,
}

/// What the scenario asks for that this version does not do yet, said at
/// run time rather than silently ignored.
pub fn not_implemented(s: &Scenario) -> Vec<String> {
    let mut out = Vec::new();
    let default_tenacity = crate::node::config::Config::default().maxmemory_eviction_tenacity;
    if s.nodes
        .iter()
        .any(|n| n.config.maxmemory_eviction_tenacity != default_tenacity)
    {
        out.push(
            "config maxmemory-eviction-tenacity is not modelled: eviction costs no simulated time and always runs to its end".to_string(),
        );
    }
    out
}

/// What the clients' requests add up to (see [`crate::client::accounting`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientTotals {
    pub ops: OpsCount,
    pub writes: WritesCount,
    pub lost: u64,
    /// Per shard (the masters' slot ranges at creation, in slot order).
    pub unavailable: Vec<SimTime>,
    /// Redirections the clients got: `-MOVED`, `-ASK`.
    pub moved: u64,
    pub ask: u64,
}

/// Refuse what cannot run at all.
pub fn check_runnable(s: &Scenario) -> Result<(), String> {
    match s.cluster.mode {
        Mode::Cluster => {}
        Mode::Standalone | Mode::Replication | Mode::Sentinel => check_standalone(s)?,
    }
    Ok(())
}

/// What a standalone node (`cluster-enabled no`) cannot do beyond what
/// loading refuses (the cluster's faults): reads from replicas and the
/// expectations on the cluster's state and slots.
fn check_standalone(s: &Scenario) -> Result<(), String> {
    let refuse = |what: String| {
        Err(format!(
            "{}: {what} needs cluster mode (cluster.mode = {:?}: {} cluster support disabled)",
            s.source.display(),
            format!("{:?}", s.cluster.mode).to_lowercase(),
            if s.standalone() {
                "the node has"
            } else {
                "the nodes have"
            }
        ))
    };
    if let Some(i) = s.workloads.iter().position(|w| w.read_from_replicas) {
        return refuse(format!("workload[{i}].read_from_replicas"));
    }
    for e in &s.expects {
        if e.cluster_state.is_some() {
            return refuse("the expectation cluster_state".into());
        }
        if !e.master_of.is_empty() {
            return refuse("the expectation master_of".into());
        }
    }
    Ok(())
}

impl Simulation {
    pub fn new(scenario: Scenario, seed: u64) -> Result<Simulation, String> {
        check_runnable(&scenario)?;
        let mut queue = EventQueue::new();
        let world = World::new(scenario, seed, &mut queue)?;
        Ok(Simulation {
            checks: Checks::new(&world),
            world,
            queue,
            stats: RunStats::default(),
            lost_at_end: None,
        })
    }

    /// See [`World::plant`].
    pub fn plant(&mut self, planted: Option<crate::node::Planted>) {
        self.world.plant(planted);
    }

    /// Run until `t` (inclusive), the checks observing.
    pub fn run_until(&mut self, t: SimTime, hooks: &mut impl Hooks<World>) {
        let mut observers = (hooks, &mut self.checks);
        engine::run(
            &mut self.world,
            &mut self.queue,
            &mut self.stats,
            t,
            &mut observers,
        );
    }

    /// Run the whole scenario, reading each expectation at its time; then,
    /// unless an `[[expect]]` says `invariants = "ignore"`, that the
    /// invariant checks held.
    pub fn run(&mut self, hooks: &mut impl Hooks<World>) -> Vec<ExpectResult> {
        let end = self.world.scenario.duration;
        let mut expects: Vec<(SimTime, usize)> = self
            .world
            .scenario
            .expects
            .iter()
            .enumerate()
            .map(|(i, e)| (e.at.unwrap_or(end).min(end), i))
            .collect();
        expects.sort();
        let mut results = vec![None; expects.len()];
        for (at, i) in expects {
            self.run_until(at, hooks);
            let e = self.world.scenario.expects[i].clone();
            results[i] = Some(self.evaluate(&e));
        }
        self.run_until(end, hooks);
        self.checks.finish(self.stats.now, &self.world);
        let lost = self.lost_writes();
        self.checks
            .judge_lost_writes(&self.world, lost.iter().copied());
        self.lost_at_end = Some((self.stats.now, lost));
        let mut results: Vec<ExpectResult> = results.into_iter().flatten().flatten().collect();
        results.extend(self.invariants_result());
        results
    }

    /// `invariants = "hold"` (the default of every `[[expect]]`, and of a
    /// scenario without one) as an expectation result over the whole run;
    /// `None` if some `[[expect]]` says `"ignore"`.
    fn invariants_result(&self) -> Option<ExpectResult> {
        use crate::scenario::Invariants;
        let s = &self.world.scenario;
        if s.expects.iter().any(|e| e.invariants == Invariants::Ignore) {
            return None;
        }
        let v = self.checks.violations();
        let reason = v.first().map(|first| {
            let more = match v.len() {
                1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            };
            format!(
                "{} at {}: {}{more}",
                first.check,
                fmt_time(first.at),
                first.message
            )
        });
        Some(ExpectResult {
            text: format!("invariants hold ({} checks)", crate::check::NAMES.len()),
            ok: Some(v.is_empty()),
            reason,
        })
    }

    /// The live nodes, with their process index.
    fn live(&self) -> impl Iterator<Item = (usize, &crate::node::Node)> {
        self.world
            .procs
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.node.as_ref().map(|n| (i, n)))
    }

    fn name(&self, i: usize) -> &str {
        &self.world.procs[i].name
    }

    fn evaluate(&self, e: &Expect) -> Vec<ExpectResult> {
        let when = match e.at {
            Some(t) => format!("at {}", fmt_time(t)),
            None => "at end".to_string(),
        };
        let mut out = Vec::new();
        if let Some(want) = e.cluster_state {
            let want_ok = want == ClusterStateExpect::Ok;
            let bad: Vec<String> = self
                .live()
                .filter(|(_, n)| n.state_ok() != want_ok)
                .map(|(i, _)| self.name(i).to_string())
                .collect();
            let word = if want_ok { "ok" } else { "fail" };
            out.push(ExpectResult {
                text: format!("cluster_state = {word} {when}"),
                ok: Some(bad.is_empty()),
                reason: (!bad.is_empty()).then(|| format!("not {word} on {}", bad.join(", "))),
            });
        }
        for (&node, &role) in &e.role {
            let want = match role {
                Role::Master => "master",
                Role::Replica => "replica",
            };
            let got = self.role_of(node);
            out.push(ExpectResult {
                text: format!("role of {} = {want} {when}", self.name(node)),
                ok: Some(got == want),
                reason: (got != want).then(|| format!("{} is {got}", self.name(node))),
            });
        }
        for (&slot, &node) in &e.master_of {
            let owner = self.owner_seen_by_majority(usize::from(slot));
            let ok = owner == Some(node);
            out.push(ExpectResult {
                text: format!("slot {slot} served by {} {when}", self.name(node)),
                ok: Some(ok),
                reason: (!ok).then(|| match owner {
                    Some(o) => format!("slot {slot} is served by {}", self.name(o)),
                    None => format!("slot {slot} has no agreed owner"),
                }),
            });
        }
        if let Some(want) = e.current_epoch {
            let got = self.live().map(|(_, n)| n.current_epoch).max().unwrap_or(0);
            out.push(ExpectResult {
                text: format!("current_epoch = {want} {when}"),
                ok: Some(got == want),
                reason: (got != want).then(|| format!("current_epoch is {got}")),
            });
        }
        for (&node, &want) in &e.min_replicas {
            let role = self.role_of(node);
            let replicas = self
                .live()
                .filter(|(_, n)| {
                    n.master_id().and_then(|m| self.world.proc_of_id(&m)) == Some(node as u32)
                })
                .count() as u64;
            let ok = role == "master" && replicas >= want;
            out.push(ExpectResult {
                text: format!("replicas of {} >= {want} {when}", self.name(node)),
                ok: Some(ok),
                reason: (!ok).then(|| match role {
                    "master" => format!("{} has {replicas}", self.name(node)),
                    _ => format!("{} is {role}", self.name(node)),
                }),
            });
        }
        if let Some(limit) = e.max_failover_time {
            let times = self.failover_times();
            let bad: Vec<String> = times
                .iter()
                .filter_map(|&(m, t)| match t {
                    Ok(t) if t > limit => Some(format!(
                        "{} was replaced after {}",
                        self.name(m as usize),
                        fmt_time(t)
                    )),
                    Err(t) if t > limit => Some(format!(
                        "{} has had no replacement for {}",
                        self.name(m as usize),
                        fmt_time(t)
                    )),
                    _ => None,
                })
                .collect();
            out.push(ExpectResult {
                text: format!("max_failover_time = {} {when}", fmt_time(limit)),
                ok: Some(bad.is_empty()),
                reason: (!bad.is_empty()).then(|| bad.join("; ")),
            });
        }
        if let Some(want) = e.min_hit_ratio {
            let (hits, misses) = self.keyspace_lookups();
            let got = (hits + misses > 0).then(|| hits as f64 / (hits + misses) as f64);
            let ok = got.is_some_and(|r| r >= want);
            out.push(ExpectResult {
                text: format!("min_hit_ratio = {want} {when}"),
                ok: Some(ok),
                reason: (!ok).then(|| match got {
                    Some(r) => format!("hit ratio is {r:.4} ({hits} hits, {misses} misses)"),
                    None => "no key was looked up".to_string(),
                }),
            });
        }
        if let Some(limit) = e.max_evicted {
            let evicted: u64 = self
                .live()
                .map(|(_, n)| n.keyspace.stats.evicted_keys)
                .sum();
            out.push(ExpectResult {
                text: format!("max_evicted = {limit} {when}"),
                ok: Some(evicted <= limit),
                reason: (evicted > limit).then(|| format!("{evicted} keys were evicted")),
            });
        }
        if e.max_lost_writes.is_some() || e.max_unavailable.is_some() {
            let totals = self.client_totals();
            if let Some(limit) = e.max_lost_writes {
                let ok = totals.lost <= limit;
                out.push(ExpectResult {
                    text: format!("max_lost_writes = {limit} {when}"),
                    ok: Some(ok),
                    reason: (!ok).then(|| format!("{} acknowledged writes are lost", totals.lost)),
                });
            }
            if let Some(limit) = e.max_unavailable {
                let bad: Vec<String> = totals
                    .unavailable
                    .iter()
                    .enumerate()
                    .filter(|&(_, &t)| t > limit)
                    .map(|(i, &t)| {
                        format!(
                            "writes to shard {} ({}) failed for {}",
                            i + 1,
                            self.shard_slots(i),
                            fmt_time(t)
                        )
                    })
                    .collect();
                out.push(ExpectResult {
                    text: format!("max_unavailable = {} {when}", fmt_time(limit)),
                    ok: Some(bad.is_empty()),
                    reason: (!bad.is_empty()).then(|| bad.join("; ")),
                });
            }
        }
        out
    }

    /// `keyspace_hits` and `keyspace_misses` summed over the live nodes.
    pub fn keyspace_lookups(&self) -> (u64, u64) {
        self.live().fold((0, 0), |(h, m), (_, n)| {
            let s = n.keyspace.stats;
            (h + s.keyspace_hits, m + s.keyspace_misses)
        })
    }

    /// The slots of shard `i`, as `CLUSTER NODES` writes them.
    pub fn shard_slots(&self, i: usize) -> String {
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        for (slot, &s) in self.world.shard_of_slot.iter().enumerate() {
            if usize::from(s) != i {
                continue;
            }
            match ranges.last_mut() {
                Some((_, end)) if *end + 1 == slot => *end = slot,
                _ => ranges.push((slot, slot)),
            }
        }
        let mut out = String::new();
        write_slot_ranges(&mut out, ranges.into_iter());
        out.trim_start().to_string()
    }

    /// The clients' requests so far, counted (rules in
    /// [`crate::client::accounting`]). Final values are read now, from the
    /// keyspace of each slot's master as most live nodes see it.
    pub fn client_totals(&self) -> ClientTotals {
        let c = &self.world.clients;
        let (ops, writes) = accounting::count(&c.ops);
        let lost = self.lost_writes().len() as u64;
        let created = self.world.history.iter().find_map(|h| match h.kind {
            crate::world::HistoryKind::Created => Some(h.at),
            _ => None,
        });
        let unavailable = accounting::unavailability(
            &c.ops,
            &self.world.shard_of_slot,
            self.world.shards,
            created.unwrap_or(0),
        );
        let ask = c.redirections.iter().filter(|r| r.ask).count() as u64;
        ClientTotals {
            ops,
            writes,
            lost,
            unavailable,
            moved: c.redirections.len() as u64 - ask,
            ask,
        }
    }

    /// The acknowledged writes missing at the end (see
    /// [`accounting::lost_writes`]): the process that acknowledged each,
    /// when it was sent and when acknowledged.
    pub fn lost_writes(&self) -> Vec<LostWrite> {
        if let Some((at, lost)) = &self.lost_at_end {
            if *at == self.stats.now {
                return lost.clone();
            }
        }
        let c = &self.world.clients;
        let now = self.stats.now;
        let now_ms = crate::node::mstime(now);
        let mut owners: Vec<Option<Option<usize>>> = vec![None; crate::node::slots::CLUSTER_SLOTS];
        let mut name = Vec::new();
        let ttl: Vec<Option<SimTime>> = self
            .world
            .scenario
            .workloads
            .iter()
            .map(|w| w.ttl)
            .collect();
        let pending: Vec<_> = c.pops.iter().flat_map(|p| p.pending(now)).collect();
        accounting::lost_write_records(c.ops.iter().chain(&pending), &ttl, now, |key| {
            name.clear();
            c.names.write(key, &mut name);
            let slot = usize::from(crate::node::slots::key_hash_slot(&name));
            // No owner that most live nodes agree on (the cluster split
            // and never converged): the key's fate cannot be known.
            let owner = (*owners[slot].get_or_insert_with(|| self.owner_seen_by_majority(slot)))?;
            let Some(node) = self.world.procs[owner].node.as_ref() else {
                return Some(None);
            };
            match node.keyspace.peek(&name).filter(|e| !e.expired(now_ms)) {
                Some(entry) => Some(Some(entry.value.to_bytes())),
                // Gone on purpose, perhaps.
                None if node.keyspace.stats.evicted_keys > 0 => None,
                None => Some(None),
            }
        })
        .into_iter()
        .map(|r| (u32::from(r.node), r.slot, r.sent, r.done))
        .collect()
    }

    /// "master", "replica" or "dead", as the process itself reports it.
    pub fn role_of(&self, i: usize) -> &'static str {
        match &self.world.procs[i].node {
            None => "dead",
            Some(n) if n.is_master() => "master",
            Some(_) => "replica",
        }
    }

    /// The process that most live nodes see as the owner of `slot`.
    pub fn owner_seen_by_majority(&self, slot: usize) -> Option<usize> {
        if self.world.scenario.replicated() {
            return self.world.current_master().map(|p| p as usize);
        }
        let mut votes: std::collections::BTreeMap<usize, usize> = Default::default();
        let mut live = 0;
        for (_, n) in self.live() {
            live += 1;
            if let Some(o) = n.slot_owner(slot) {
                if let Some(p) = self.world.proc_of_id(&o.name) {
                    *votes.entry(p as usize).or_default() += 1;
                }
            }
        }
        votes
            .into_iter()
            .find(|&(_, v)| 2 * v > live)
            .map(|(p, _)| p)
    }

    /// Every promotion so far, in order, with the fault that made it
    /// necessary (scenario-format.md, `failovers`).
    pub fn failovers(&self) -> Vec<Failover> {
        use crate::node::Note;
        use crate::world::HistoryKind;
        let h = &self.world.history;
        let mut out = Vec::new();
        for (k, ev) in h.iter().enumerate() {
            let HistoryKind::Note {
                note:
                    Note::Promoted {
                        config_epoch,
                        manual,
                        ..
                    },
                about,
            } = &ev.kind
            else {
                continue;
            };
            let (Some(promoted), Some(failed)) = (ev.proc, *about) else {
                continue;
            };
            let by_operator = || {
                h[..k].iter().rev().take_while(|e| e.at == ev.at).any(|e| {
                    matches!(&e.kind, HistoryKind::Fault { index, .. }
                        if matches!(self.world.scenario.faults[*index as usize].action,
                            crate::scenario::FaultAction::ReplicaOf { node, master: None }
                                if Some(node as u32) == ev.proc))
                })
            };
            let kind = match self.world.scenario.cluster.mode {
                Mode::Replication | Mode::Sentinel if by_operator() => FailoverKind::ReplicaofNoOne,
                Mode::Replication | Mode::Sentinel => FailoverKind::Sentinel,
                _ => FailoverKind::from(*manual),
            };
            // The last fault that cut the failed master off before this.
            let died = h[..k].iter().rev().find_map(|e| match &e.kind {
                HistoryKind::Fault { masters_hit, .. } if masters_hit.contains(&failed) => {
                    Some(e.at)
                }
                _ => None,
            });
            // The majority's agreement: FAIL, or with Sentinel O_DOWN.
            let fail = died.and_then(|d| {
                h[..k].iter().find_map(|e| match &e.kind {
                    HistoryKind::Note {
                        note: Note::FailMarked { .. },
                        about: Some(a),
                    }
                    | HistoryKind::Sentinel {
                        kind: "+odown",
                        about: Some(a),
                        ..
                    } if *a == failed && e.at >= d => Some(e.at),
                    _ => None,
                })
            });
            out.push(Failover {
                failed,
                promoted,
                kind,
                died,
                fail,
                promoted_at: ev.at,
                config_epoch: *config_epoch,
            });
        }
        out
    }

    /// For each slot-owning master a fault cut off: how long until a replica
    /// took its place (`Ok`), or, when none has yet, how long it has been
    /// down (`Err`). A master that came back first (resume, restart, heal)
    /// before any promotion needed no failover and is left out.
    fn failover_times(&self) -> Vec<(u32, Result<SimTime, SimTime>)> {
        use crate::scenario::FaultAction;
        use crate::world::HistoryKind;
        let failovers = self.failovers();
        let h = &self.world.history;
        let mut out = Vec::new();
        for (k, ev) in h.iter().enumerate() {
            let HistoryKind::Fault { masters_hit, .. } = &ev.kind else {
                continue;
            };
            for &m in masters_hit {
                let promoted = failovers
                    .iter()
                    .find(|f| f.failed == m && f.promoted_at >= ev.at)
                    .map(|f| f.promoted_at);
                let back = h[k + 1..].iter().find_map(|e| match &e.kind {
                    HistoryKind::Fault { index, .. } => {
                        let back = match &self.world.scenario.faults[*index as usize].action {
                            FaultAction::Restart { node } | FaultAction::Resume { node } => {
                                *node as u32 == m
                            }
                            FaultAction::Heal => true,
                            _ => false,
                        };
                        back.then_some(e.at)
                    }
                    _ => None,
                });
                match (promoted, back) {
                    (Some(p), Some(b)) if b < p => {}
                    (Some(p), _) => out.push((m, Ok(p - ev.at))),
                    (None, Some(_)) => {}
                    (None, None) => out.push((m, Err(self.stats.now - ev.at))),
                }
            }
        }
        out
    }

    /// The warnings Redis logged during the run that redsim records
    /// ([`crate::world::DataEvent::redis_log`]), one entry per node and
    /// line, in order of first appearance.
    pub fn redis_log(&self) -> Vec<RedisLogLine> {
        let mut out: Vec<RedisLogLine> = Vec::new();
        for h in &self.world.history {
            let (crate::world::HistoryKind::Data(e), Some(p)) = (&h.kind, h.proc) else {
                continue;
            };
            for line in e.redis_log() {
                match out.iter_mut().find(|l| l.proc == p && l.line == line) {
                    Some(l) => {
                        l.count += 1;
                        l.last = h.at;
                    }
                    None => out.push(RedisLogLine {
                        proc: p,
                        line,
                        count: 1,
                        first: h.at,
                        last: h.at,
                    }),
                }
            }
        }
        out
    }

    /// The `--json` summary (scenario-format.md, "The run's summary").
    pub fn summary(&self, expectations: &[ExpectResult]) -> Value {
        let live: Vec<_> = self.live().collect();
        let all_ok = !live.is_empty() && live.iter().all(|(_, n)| n.state_ok());
        let current_epoch = live.iter().map(|(_, n)| n.current_epoch).max().unwrap_or(0);
        let nodes: Vec<Value> = (0..self.world.procs.len())
            .map(|i| self.node_summary(i))
            .collect();
        let not_impl = not_implemented(&self.world.scenario);
        let t = self.client_totals();
        // A standalone node has no cluster state (INFO says
        // `cluster_enabled:0`): `final.cluster_state` is left out.
        let mut final_ = json!({
            "cluster_state": if all_ok { "ok" } else { "fail" },
            "current_epoch": current_epoch,
            "nodes": nodes,
        });
        if self.world.scenario.cluster.mode != Mode::Cluster {
            if let Some(f) = final_.as_object_mut() {
                f.remove("cluster_state");
            }
        }
        let mut summary = json!({
            "scenario": self.world.scenario.name,
            "seed": self.world.seed,
            "trace_hash": self.stats.hash.hex(),
            "sim_time_ms": self.stats.now / 1000,
            "events": self.stats.events,
            "failovers": self.failovers().iter().map(|f| self.failover_json(f)).collect::<Vec<_>>(),
            "final": final_,
            "ops": {
                "sent": t.ops.sent, "ok": t.ops.ok, "errors": t.ops.errors, "timeouts": t.ops.timeouts
            },
            "writes": {
                "acknowledged": t.writes.acknowledged, "lost": t.lost, "failed": t.writes.failed
            },
            "redirections": { "moved": t.moved, "ask": t.ask },
            "redis_log": self.redis_log().iter().map(|l| json!({
                "node": self.name(l.proc as usize), "line": l.line, "count": l.count,
                "first_ms": l.first / 1000, "last_ms": l.last / 1000,
            })).collect::<Vec<_>>(),
            "admin": self.world.manager.log.iter().map(|(at, line)| json!({ "at_ms": at / 1000, "line": line })).collect::<Vec<_>>(),
            "availability": {
                "max_unavailable_ms": t.unavailable.iter().max().copied().unwrap_or(0) / 1000,
                "unavailable_ms_by_shard": t.unavailable.iter().map(|u| u / 1000).collect::<Vec<_>>(),
            },
            "invariants": self.checks.json(&self.world),
            "anomalies": {
                "lost_writes": {
                    "by_window": crate::check::lost_writes_explained::WINDOWS
                        .iter()
                        .zip(self.checks.lost_writes().by_window)
                        .map(|(w, n)| (w.to_string(), json!(n)))
                        .collect::<serde_json::Map<String, Value>>(),
                    "unexplained": self.checks.lost_writes().unexplained,
                },
                "split_brain": self.checks.split_brain().iter().map(|w| {
                    let to = w.to.unwrap_or(self.stats.now);
                    json!({
                        "from_ms": w.from / 1000,
                        "to_ms": to / 1000,
                        "duration_ms": (to - w.from) / 1000,
                        "slots": w.slots,
                        "nodes": w.procs.iter().map(|&p| self.name(p as usize)).collect::<Vec<_>>(),
                    })
                }).collect::<Vec<_>>(),
            },
            "expectations": expectations,
            "detections": self.detections(),
            "warnings": not_impl.iter().chain(&self.world.warnings).collect::<Vec<_>>(),
            "not_implemented": [],
        });
        if self.world.scenario.replicated() {
            if let (Some(o), Value::Object(r)) = (summary.as_object_mut(), self.replication_json())
            {
                o.extend(r);
            }
        }
        summary
    }

    /// The sentinels' events so far, in order: (time, sentinel, event,
    /// the instance it is about, detail).
    pub fn sentinel_events(
        &self,
    ) -> impl Iterator<Item = (SimTime, u32, &'static str, Option<u32>, &str)> {
        self.world.history.iter().filter_map(|h| match &h.kind {
            crate::world::HistoryKind::Sentinel {
                sentinel,
                kind,
                about,
                detail,
            } => Some((h.at, *sentinel, *kind, *about, detail.as_str())),
            _ => None,
        })
    }

    /// Every `REPLICAOF` that took effect, in order: (time, node, the
    /// master it follows or `None` for master).
    pub fn role_changes(&self) -> impl Iterator<Item = (SimTime, u32, Option<u32>)> + '_ {
        self.world.history.iter().filter_map(|h| match &h.kind {
            crate::world::HistoryKind::Data(crate::world::DataEvent::ReplicaOf { master }) => {
                Some((h.at, h.proc?, *master))
            }
            _ => None,
        })
    }

    /// The `--json` fields of the replication and sentinel modes.
    fn replication_json(&self) -> Value {
        let w = &self.world;
        let roles: Vec<Value> = self
            .role_changes()
            .map(|(at, p, m)| {
                json!({
                    "at_ms": at / 1000,
                    "node": self.name(p as usize),
                    "role": if m.is_some() { "replica" } else { "master" },
                    "master": m.map(|m| self.name(m as usize)),
                })
            })
            .collect();
        let events: Vec<Value> = self
            .sentinel_events()
            .map(|(at, s, kind, about, detail)| {
                json!({
                    "at_ms": at / 1000,
                    "sentinel": w.sentinels.procs[s as usize].name,
                    "event": kind,
                    "instance": about.map(|a| w.name_of(a)),
                    "detail": detail,
                })
            })
            .collect();
        let sentinels: Vec<Value> = w
            .sentinels
            .procs
            .iter()
            .map(|sp| {
                let s = sp.sentinel.as_ref();
                json!({
                    "name": sp.name,
                    "addr": sp.addr.to_string(),
                    "alive": sp.state != ProcState::Dead,
                    "paused": sp.state == ProcState::Paused,
                    "current_epoch": s.map(|s| s.current_epoch),
                    "master": s.and_then(|s| {
                        let a = s.master.addr;
                        w.proc_at_addr(a.ip, u32::from(a.port)).map(|p| self.name(p as usize))
                    }),
                    "known_sentinels": s.map(|s| s.sentinels.len()),
                    "known_replicas": s.map(|s| s.slaves.len()),
                })
            })
            .collect();
        json!({ "roles": roles, "sentinel_events": events, "sentinels": sentinels })
    }

    fn failover_json(&self, f: &Failover) -> Value {
        let ms = |t: Option<SimTime>| t.map(|t| t / 1000);
        json!({
            "failed": self.name(f.failed as usize),
            "promoted": self.name(f.promoted as usize),
            "kind": f.kind.as_str(),
            "died_ms": ms(f.died),
            "fail_ms": ms(f.fail),
            "promoted_ms": f.promoted_at / 1000,
            "config_epoch": f.config_epoch,
        })
    }

    fn node_summary(&self, i: usize) -> Value {
        let proc = &self.world.procs[i];
        // A dead process holds nothing: zeros, and the `maxmemory` it
        // restarts with (a `config-set` dies with it).
        let (used, peak, maxmemory, ks) = match &proc.node {
            Some(n) => (
                n.used_memory(),
                n.used_memory_peak(),
                n.maxmemory(),
                n.keyspace.stats,
            ),
            None => (
                0,
                0,
                self.world.scenario.nodes[i].config.maxmemory_bytes,
                Default::default(),
            ),
        };
        let stats = json!({
            "used_memory": used, "used_memory_peak": peak,
            "maxmemory": maxmemory, "evicted_keys": ks.evicted_keys,
            "expired_keys": ks.expired_keys, "keyspace_hits": ks.keyspace_hits,
            "keyspace_misses": ks.keyspace_misses
        });
        let (config_epoch, slots, master) = match &proc.node {
            Some(n) => {
                let me = n.myself();
                let mut slots = String::new();
                write_slot_ranges(&mut slots, me.slots.ranges());
                let master = self
                    .world
                    .master_of(i as u32)
                    .map(|p| self.world.procs[p as usize].name.clone());
                (n.my_epoch(), slots.trim_start().to_string(), master)
            }
            None => (0, String::new(), None),
        };
        json!({
            "name": proc.name,
            "addr": proc.addr.to_string(),
            "role": self.role_of(i),
            "alive": proc.state != ProcState::Dead,
            "paused": proc.state == ProcState::Paused,
            "config_epoch": config_epoch,
            "slots": slots,
            "master": master,
            "stats": stats,
        })
    }

    /// For each node that some node flagged PFAIL or FAIL: when it was first
    /// flagged `fail?` and `fail`, in ms of simulated time.
    pub fn detections(&self) -> Value {
        use crate::node::Note;
        use crate::world::HistoryKind;
        let mut first: std::collections::BTreeMap<u32, (Option<SimTime>, Option<SimTime>)> =
            Default::default();
        for h in &self.world.history {
            if let HistoryKind::Note {
                note,
                about: Some(a),
            } = &h.kind
            {
                match note {
                    Note::Pfail { .. } => {
                        first.entry(*a).or_default().0.get_or_insert(h.at);
                    }
                    Note::FailMarked { .. } | Note::FailReceived { .. } => {
                        first.entry(*a).or_default().1.get_or_insert(h.at);
                    }
                    _ => {}
                }
            }
        }
        Value::Array(
            first
                .into_iter()
                .map(|(p, (pf, f))| {
                    json!({
                        "node": self.world.procs[p as usize].name,
                        "first_pfail_ms": pf.map(|t| t / 1000),
                        "first_fail_ms": f.map(|t| t / 1000),
                    })
                })
                .collect(),
        )
    }

    /// `CLUSTER NODES` as process `i` sees it now, or why not.
    pub fn cluster_nodes(&self, i: usize) -> Result<String, String> {
        match &self.world.procs[i].node {
            Some(n) if !n.setup.config.cluster_enabled => {
                Err(format!("{}: {CLUSTER_DISABLED_ERR}", self.name(i)))
            }
            Some(n) => Ok(n.cluster_nodes()),
            None => Err(format!("{} is not running", self.name(i))),
        }
    }

    pub fn cluster_info(&self, i: usize) -> Result<String, String> {
        match &self.world.procs[i].node {
            Some(n) if !n.setup.config.cluster_enabled => {
                Err(format!("{}: {CLUSTER_DISABLED_ERR}", self.name(i)))
            }
            Some(n) => Ok(n.cluster_info()),
            None => Err(format!("{} is not running", self.name(i))),
        }
    }

    /// What node `i` answers now to the command `argv` from a client with
    /// `client` flags ([`crate::node::Node::preview_command`]: the run
    /// does not change). A node that is not running, or paused
    /// (`SIGSTOP`), gives no answer.
    pub fn query(
        &self,
        i: usize,
        argv: &[&[u8]],
        client: ClientFlags,
    ) -> Result<ClientReply, String> {
        let p = &self.world.procs[i];
        match (&p.node, p.state) {
            (Some(n), ProcState::Running) => Ok(n.preview_command(argv, client)),
            (Some(_), ProcState::Paused) => Err(format!(
                "{} is paused (SIGSTOP) and would not answer until resumed",
                self.name(i)
            )),
            _ => Err(format!("{} is not running", self.name(i))),
        }
    }
}

/// Writes every event as one JSON line (`--trace FILE.jsonl`).
pub struct TraceWriter<W: Write> {
    pub out: W,
    pub error: Option<std::io::Error>,
}

impl<W: Write> Hooks<World> for TraceWriter<W> {
    fn before(&mut self, at: SimTime, seq: u64, event: &Event, _world: &World) {
        if self.error.is_some() {
            return;
        }
        let line = json!({ "t_us": at, "seq": seq, "event": format!("{event:?}") });
        if let Err(e) = writeln!(self.out, "{line}") {
            self.error = Some(e);
        }
    }
}

/// Records the running hash after every event, for `--check-determinism`.
#[derive(Default)]
pub struct HashRecorder {
    pub hashes: Vec<(SimTime, u64)>,
}

impl Hooks<World> for HashRecorder {
    fn after(&mut self, stats: &RunStats, _world: &World) {
        self.hashes.push((stats.now, stats.hash.value()));
    }
}
