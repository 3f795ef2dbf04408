//! Invariant checks. [`Checks`] is an observer of the run loop
//! ([`Hooks`]): after every event it reads the nodes' state and the new
//! history entries, read-only, so it never changes the run. One file per
//! check, each with the name that appears verbatim in reports:
//!
//! - [`unique_config_epoch_per_slot`]: the masters claiming a slot have
//!   pairwise different config epochs;
//! - [`current_epoch_monotonic`]: `currentEpoch` never decreases on a node,
//!   nor across a restart below what its `nodes.conf` kept;
//! - [`one_vote_per_epoch`]: a node votes at most once per epoch;
//! - [`unique_master_config_epochs_when_converged`]: two running masters do
//!   not share a config epoch for a node timeout of convergence;
//! - [`replica_offset_not_ahead`]: a connected replica has not processed
//!   more of the replication stream than its master produced;
//! - [`liveness`]: after a fault Redis can recover from on its own, the
//!   cluster converges within a bound derived from the node timeout.
//!
//! Cost: after each event the checks compare a few numbers of the process
//! the event reached ([`World::touched`]: incarnation, `currentEpoch`,
//! config epoch, role, `cluster_state`,
//! [`crate::node::Node::slot_map_version`]); only when one changed, or a
//! fault or vote was recorded, do they look at claims and slot maps. The
//! replication offsets of the process an event reached are compared after
//! every event (a connected replica against its master's).

pub mod current_epoch_monotonic;
pub mod liveness;
pub mod lost_writes_explained;
pub mod one_vote_per_epoch;
pub mod replica_offset_not_ahead;
pub mod split_brain;
pub mod unique_config_epoch_per_slot;
pub mod unique_master_config_epochs_when_converged;

use serde_json::{json, Value};

use crate::engine::{Hooks, RunStats, SimTime};
use crate::net::LatencySpec;
use crate::node::bus::{NodeId, SlotBitmap};
use crate::node::slots::CLUSTER_SLOTS;
use crate::node::{Node, Note};
use crate::scenario::FaultAction;
use crate::world::{
    fmt_time, DataEvent, Event, HistoryEvent, HistoryKind, Proc, ProcState, Touches, World,
};
use current_epoch_monotonic::CurrentEpochMonotonic;
use liveness::{Liveness, Shard, Situation, Status};
use one_vote_per_epoch::OneVotePerEpoch;
use replica_offset_not_ahead::ReplicaOffsetNotAhead;
use split_brain::SplitBrain;
use unique_config_epoch_per_slot::{Claim, UniqueConfigEpochPerSlot};
use unique_master_config_epochs_when_converged::{first_collision, UniqueMasterConfigEpochs};

/// The checks every run makes, in report order.
pub const NAMES: [&str; 7] = [
    unique_config_epoch_per_slot::NAME,
    current_epoch_monotonic::NAME,
    one_vote_per_epoch::NAME,
    unique_master_config_epochs_when_converged::NAME,
    replica_offset_not_ahead::NAME,
    lost_writes_explained::NAME,
    liveness::NAME,
];

/// History entries shown before a violation in reports.
const CONTEXT_ENTRIES: usize = 6;

/// A check that did not hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub check: &'static str,
    /// When it first did not hold.
    pub at: SimTime,
    pub message: String,
}

/// Why the cluster is not converged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotConverged {
    Partitioned,
    NoNodeRunning,
    /// This process reports `cluster_state:fail`.
    StateFail(u32),
    /// These two processes see different slot maps.
    Disagree(u32, u32),
    /// The agreed owner of some slots is not a running master.
    OwnerDown(NodeId),
    /// Only this many slots are assigned.
    Uncovered(u32),
    /// Cluster mode off: no running master that the most nodes follow.
    NoMaster,
    /// Cluster mode off: this running node neither is the master nor
    /// replicates from it with its link up.
    NotFollowing(u32),
}

impl NotConverged {
    pub fn describe(&self, world: &World) -> String {
        let name = |p: &u32| &world.procs[*p as usize].name;
        match self {
            NotConverged::Partitioned => {
                "a partition, one-way rule or blocked port is in force".into()
            }
            NotConverged::NoNodeRunning => "no node of the cluster is running".into(),
            NotConverged::StateFail(p) => format!("{} reports cluster_state:fail", name(p)),
            NotConverged::Disagree(a, b) => {
                format!("{} and {} see different slot maps", name(a), name(b))
            }
            NotConverged::OwnerDown(id) => format!(
                "the slots of {} are served by no running master",
                node_name(world, id)
            ),
            NotConverged::Uncovered(n) => format!("only {n} of {CLUSTER_SLOTS} slots are assigned"),
            NotConverged::NoMaster => "no running master that the others follow".into(),
            NotConverged::NotFollowing(p) => format!(
                "{} does not replicate from the master with its link up",
                name(p)
            ),
        }
    }
}

/// The name of the process with node ID `id`, or the ID's first digits.
fn node_name(world: &World, id: &NodeId) -> String {
    match world.proc_of_id(id) {
        Some(p) => world.procs[p as usize].name.clone(),
        None => format!("{id:?}"),
    }
}

/// The running processes of the cluster (those `--cluster create` was
/// given, or the dump lists), with their nodes. Paused processes are not
/// running.
fn members(world: &World) -> impl Iterator<Item = (u32, &Node)> {
    world
        .procs
        .iter()
        .zip(&world.scenario.nodes)
        .enumerate()
        .filter(|(_, (p, spec))| spec.in_create && p.state == ProcState::Running)
        .filter_map(|(i, (p, _))| p.node.as_ref().map(|n| (i as u32, n)))
}

/// A node's slot map: each node it sees owning slots, with those slots,
/// by node ID.
fn slot_map(node: &Node) -> Vec<(NodeId, &SlotBitmap)> {
    let mut m: Vec<_> = node
        .known_nodes()
        .filter(|n| n.numslots > 0)
        .map(|n| (n.name, &*n.slots))
        .collect();
    m.sort_unstable_by_key(|&(id, _)| id);
    m
}

/// Whether two slot maps are equal. Nodes share the bitmaps they did not
/// change (`Rc`), so most pairs compare by address.
fn same_slot_map(a: &[(NodeId, &SlotBitmap)], b: &[(NodeId, &SlotBitmap)]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ia, sa), (ib, sb))| ia == ib && (std::ptr::eq(*sa, *sb) || sa == sb))
}

/// The process of node `id` if it is running with that ID.
fn runs(world: &World, id: &NodeId) -> Option<u32> {
    let p = world.proc_of_id(id)?;
    let proc = &world.procs[p as usize];
    let node = proc.node.as_ref()?;
    (proc.state == ProcState::Running && node.my_id() == *id).then_some(p)
}

/// Slots assigned in a slot map.
fn assigned(map: &[(NodeId, &SlotBitmap)]) -> u32 {
    let mut all = SlotBitmap::default();
    for (_, s) in map {
        for (w, x) in all.0.iter_mut().zip(s.0.iter()) {
            *w |= x;
        }
    }
    all.count()
}

/// The cluster is converged: no partition or one-way rule in force, every
/// running node of the cluster reports `cluster_state:ok`, they all see the
/// same slot → master map, and every slot's master in it is a running master.
///
/// A standalone node (`cluster-enabled no`) has no cluster to converge: it
/// is converged when it runs.
pub fn converged(world: &World) -> Result<(), NotConverged> {
    if world.scenario.standalone() {
        return members(world)
            .next()
            .map(|_| ())
            .ok_or(NotConverged::NoNodeRunning);
    }
    if world.net.has_rules() {
        return Err(NotConverged::Partitioned);
    }
    if world.scenario.replicated() {
        return replication_converged(world);
    }
    let running: Vec<(u32, &Node)> = members(world).collect();
    if let Some((p, _)) = running.iter().find(|(_, n)| !n.state_ok()) {
        return Err(NotConverged::StateFail(*p));
    }
    let Some(((first, node), rest)) = running.split_first() else {
        return Err(NotConverged::NoNodeRunning);
    };
    let map = slot_map(node);
    if let Some((p, _)) = rest
        .iter()
        .find(|(_, n)| !same_slot_map(&slot_map(n), &map))
    {
        return Err(NotConverged::Disagree(*first, *p));
    }
    for (id, _) in &map {
        let master = runs(world, id).and_then(|p| world.node(p));
        if !master.is_some_and(|m| m.is_master()) {
            return Err(NotConverged::OwnerDown(*id));
        }
    }
    match assigned(&map) {
        n if (n as usize) < CLUSTER_SLOTS => Err(NotConverged::Uncovered(n)),
        _ => Ok(()),
    }
}

/// [`converged`] with cluster mode off: one running master, every other
/// running node its replica with the link up.
fn replication_converged(world: &World) -> Result<(), NotConverged> {
    let master = world
        .current_master()
        .filter(|&m| world.procs[m as usize].state == ProcState::Running)
        .ok_or(NotConverged::NoMaster)?;
    let a = world.procs[master as usize].addr;
    for (p, n) in members(world) {
        let r = &n.replication().replica;
        if p != master && !(r.masterhost() == Some((a.ip, a.port)) && r.master_link_up()) {
            return Err(NotConverged::NotFollowing(p));
        }
    }
    Ok(())
}

/// The longest one-way delay `spec` gives (mean plus four standard
/// deviations for a normal one).
pub fn latency_max(spec: LatencySpec) -> SimTime {
    match spec {
        LatencySpec::Fixed(t) => t,
        LatencySpec::Uniform { min, max } => min.max(max),
        LatencySpec::Normal { mean, jitter } => mean + 4 * jitter,
    }
}

/// What the checks last saw of a process: cheap to read after every event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Seen {
    inc: u32,
    alive: bool,
    running: bool,
    current_epoch: u64,
    config_epoch: u64,
    master: bool,
    ok: bool,
    /// Its view of who owns which slot: what convergence compares.
    slot_map_version: u64,
    /// Its own slots: what it claims and accepts writes for.
    myslots_version: u64,
    open_slots: usize,
    /// Cluster mode off: a replica's link to its master is up.
    master_link_up: bool,
}

impl Seen {
    fn of(proc: &Proc) -> Seen {
        match &proc.node {
            None => Seen {
                inc: proc.inc,
                ..Seen::default()
            },
            Some(n) => Seen {
                inc: proc.inc,
                alive: true,
                running: proc.state == ProcState::Running,
                current_epoch: n.current_epoch,
                config_epoch: n.myself().config_epoch,
                master: n.is_master(),
                ok: n.state_ok(),
                slot_map_version: n.slot_map_version(),
                myslots_version: n.myslots_version(),
                open_slots: n.open_slot_count(),
                master_link_up: !n.setup.config.cluster_enabled
                    && n.replication().replica.master_link_up(),
            },
        }
    }
}

/// The checks of one run.
pub struct Checks {
    names: Vec<String>,
    seen: Vec<Seen>,
    /// A process died, started, paused, resumed, changed role or opened or
    /// closed slots since the last evaluation (what can make a waiting
    /// liveness obligation lapse).
    roles_changed: bool,
    /// Two running masters had the same config epoch at the last
    /// evaluation (convergence then decides whether it is a violation).
    epoch_collision: bool,
    /// The processed replication offset of each process when last compared.
    offsets_seen: Vec<i64>,
    /// History entries already read.
    history_len: usize,
    started: bool,
    /// The earliest deadline a check waits for.
    next_deadline: SimTime,
    /// What the event being handled can change.
    touches: Touches,
    /// The greatest `cluster-node-timeout` of the nodes.
    node_timeout_ms: u64,
    /// The longest one-way latency in force so far.
    latency: SimTime,
    /// A `loss` above 0 has been in force (`[network]` or a fault).
    lossy: bool,
    per_slot: UniqueConfigEpochPerSlot,
    epochs: CurrentEpochMonotonic,
    votes: OneVotePerEpoch,
    replica_offsets: ReplicaOffsetNotAhead,
    split_brain: SplitBrain,
    lost_writes: lost_writes_explained::LostWrites,
    collisions: UniqueMasterConfigEpochs,
    liveness: Liveness,
    /// Why the cluster was not converged when last looked at.
    not_converged: Option<NotConverged>,
    violations: Vec<Violation>,
}

impl Hooks<World> for Checks {
    #[inline]
    fn before(&mut self, _at: SimTime, _seq: u64, event: &Event, _world: &World) {
        self.touches = Touches::of(event);
    }

    #[inline]
    fn after(&mut self, stats: &RunStats, world: &World) {
        self.observe(stats.now, world);
    }
}

impl Checks {
    pub fn new(world: &World) -> Checks {
        let s = &world.scenario;
        let node_timeout_ms = s.max_node_timeout_ms();
        Checks {
            names: world.procs.iter().map(|p| p.name.clone()).collect(),
            seen: vec![Seen::default(); world.procs.len()],
            roles_changed: false,
            epoch_collision: false,
            offsets_seen: vec![-1; world.procs.len()],
            history_len: 0,
            started: false,
            next_deadline: SimTime::MAX,
            touches: Touches::Any,
            node_timeout_ms,
            latency: latency_max(s.network.latency),
            lossy: s.network.loss > 0.0,
            per_slot: UniqueConfigEpochPerSlot::default(),
            epochs: CurrentEpochMonotonic::new(world.procs.len()),
            votes: OneVotePerEpoch::default(),
            replica_offsets: ReplicaOffsetNotAhead::new(world.procs.len()),
            split_brain: SplitBrain::default(),
            lost_writes: Default::default(),
            collisions: UniqueMasterConfigEpochs::new(node_timeout_ms * crate::engine::MS),
            liveness: Liveness::default(),
            not_converged: None,
            violations: Vec::new(),
        }
    }

    /// After an event at `now`: the fast path compares what the event can
    /// have changed; the rest runs only when something did.
    #[inline]
    fn observe(&mut self, now: SimTime, world: &World) {
        if now > self.next_deadline {
            self.deadlines(now, world);
        }
        let mut cause = None;
        if world.history.len() != self.history_len || !self.started {
            cause = self.read_history(world);
        }
        let mut changed = cause.is_some();
        let procs = world
            .touched(self.touches)
            .unwrap_or(0..world.procs.len() as u32);
        for p in procs {
            self.offsets(now, p, world);
            let seen = Seen::of(&world.procs[p as usize]);
            let before = self.seen[p as usize];
            if seen == before {
                continue;
            }
            // A node's view of the others' slots only matters to checks
            // that wait for convergence.
            let view_only = Seen {
                slot_map_version: before.slot_map_version,
                ..seen
            } == before;
            if view_only && !self.liveness.pending() && !self.epoch_collision {
                self.seen[p as usize] = seen;
                continue;
            }
            self.proc_changed(now, p, seen, world);
            changed = true;
        }
        if changed {
            self.evaluate(now, world, cause);
        }
    }

    /// The deadlines that passed before `now` while the state held.
    #[inline(never)]
    fn deadlines(&mut self, now: SimTime, world: &World) {
        let not_converged = &self.not_converged;
        let why = || describe_opt(not_converged, world);
        self.violations.extend(self.liveness.due(now, why));
        self.violations.extend(self.collisions.due(now));
        self.next_deadline = self.next_deadline();
    }

    fn next_deadline(&self) -> SimTime {
        let d = [self.liveness.deadline(), self.collisions.deadline()];
        d.into_iter().flatten().min().unwrap_or(SimTime::MAX)
    }

    /// Read the new history entries: votes, and what starts a liveness
    /// obligation (a fault, the creation, the start of the run).
    #[inline(never)]
    fn read_history(&mut self, world: &World) -> Option<String> {
        let mut cause = None;
        for h in &world.history[self.history_len..] {
            match &h.kind {
                HistoryKind::Note {
                    note: Note::VoteGranted { to, epoch },
                    about,
                } => {
                    let Some((p, voter)) = h.proc.and_then(|p| Some((p, world.node(p)?))) else {
                        continue;
                    };
                    let to = about.map_or_else(|| format!("{to:?}"), |a| self.name(a).into());
                    let v =
                        self.votes
                            .vote(h.at, voter.my_id(), &self.names[p as usize], *epoch, to);
                    self.violations.extend(v);
                }
                HistoryKind::Fault { index, .. } => {
                    let action = &world.scenario.faults[*index as usize].action;
                    match action {
                        FaultAction::Latency { value, .. } => {
                            self.latency = self.latency.max(latency_max(*value));
                        }
                        FaultAction::Loss { value, .. } => self.lossy |= *value > 0.0,
                        // A process already dead on a crashed host loses
                        // what it wrote but did not fsync: it will restart
                        // from the older nodes.conf.
                        FaultAction::CrashHost { host } => {
                            for (p, proc) in world.procs.iter().enumerate() {
                                if proc.host == *host && !self.seen[p].alive {
                                    self.epochs.down(p as u32, persisted_epoch(world, p));
                                }
                            }
                        }
                        _ => {}
                    }
                    cause = Some(format!(
                        "{} at {}",
                        crate::report::describe_fault(world, action),
                        fmt_time(h.at)
                    ));
                }
                HistoryKind::Created => {
                    cause = Some(format!("the cluster's creation at {}", fmt_time(h.at)));
                }
                HistoryKind::AdminDone { index } => {
                    let action = &world.scenario.faults[*index as usize].action;
                    cause = Some(format!(
                        "the end of {} at {}",
                        crate::report::describe_fault(world, action),
                        fmt_time(h.at)
                    ));
                }
                HistoryKind::Note { .. } | HistoryKind::Data(_) | HistoryKind::Sentinel { .. } => {}
            }
        }
        self.history_len = world.history.len();
        if !self.started {
            self.started = true;
            self.touches = Touches::Any;
            cause.get_or_insert_with(|| "the start of the run".to_string());
        }
        cause
    }

    /// Process `p` changed to `seen`: `currentEpoch` while it runs, what its
    /// disk keeps when it dies.
    #[inline(never)]
    fn proc_changed(&mut self, now: SimTime, p: u32, seen: Seen, world: &World) {
        let before = std::mem::replace(&mut self.seen[p as usize], seen);
        self.roles_changed |= (
            before.alive,
            before.running,
            before.master,
            before.open_slots,
        ) != (seen.alive, seen.running, seen.master, seen.open_slots);
        if seen.alive {
            let v = self.epochs.running(
                now,
                p,
                &self.names[p as usize],
                seen.inc,
                seen.current_epoch,
            );
            self.violations.extend(v);
        } else if before.alive {
            self.epochs.down(p, persisted_epoch(world, p as usize));
        }
    }

    /// `replica-offset-not-ahead` for process `p`, if it is a replica with
    /// its link up.
    #[inline]
    fn offsets(&mut self, now: SimTime, p: u32, world: &World) {
        let Some(node) = world.procs[p as usize].node.as_ref() else {
            return;
        };
        let repl = node.replication();
        if !repl.replica.master_link_up() {
            return;
        }
        // The master's offset only grows: only a replica that processed
        // more since last time can have passed it.
        let offset = repl.slave_repl_offset();
        if std::mem::replace(&mut self.offsets_seen[p as usize], offset) == offset {
            return;
        }
        let Some((ip, port)) = repl.replica.masterhost() else {
            return;
        };
        let Some(m) = world.proc_at_addr(ip, u32::from(port)) else {
            return;
        };
        let Some(master) = world.procs[m as usize].node.as_ref() else {
            return;
        };
        // Offsets compare only within one stream: a link still "up" to a
        // crashed incarnation while a new one (new replication ID, offset
        // 0) listens at the address is not the same master.
        if master.replication().replid() != repl.replid() {
            return;
        }
        let v = self.replica_offsets.observe(
            now,
            p,
            &self.names[p as usize],
            offset,
            &self.names[m as usize],
            master.replication().master_repl_offset(),
        );
        self.violations.extend(v);
    }

    /// The checks that read claims and slot maps, after something changed.
    #[inline(never)]
    fn evaluate(&mut self, now: SimTime, world: &World, cause: Option<String>) {
        let roles_changed = std::mem::take(&mut self.roles_changed);
        self.split_brain.update(
            now,
            world.procs.iter().enumerate().filter_map(|(p, proc)| {
                let n = proc.node.as_ref()?;
                let me = n.myself();
                (proc.state == ProcState::Running && me.is_master() && n.state_ok())
                    .then_some((p as u32, &*me.slots))
            }),
        );
        let claims: Vec<Claim> = world
            .procs
            .iter()
            .enumerate()
            .filter_map(|(p, proc)| {
                let node = proc.node.as_ref()?;
                let me = node.myself();
                (me.is_master() && me.numslots > 0).then(|| Claim {
                    proc: p as u32,
                    config_epoch: me.config_epoch,
                    unilateral: node.config_epoch_unilateral(),
                    slots: &me.slots,
                })
            })
            .collect();
        let v = self.per_slot.check(now, &claims, &self.names);
        self.violations.extend(v);

        let mut conv: Option<Result<(), NotConverged>> = None;
        let masters: Vec<(u32, u64)> = members(world)
            .filter(|(_, n)| n.is_master())
            .map(|(p, n)| (p, n.myself().config_epoch))
            .collect();
        let collision = first_collision(&masters);
        self.epoch_collision = collision.is_some();
        let collision = collision
            .filter(|_| conv.get_or_insert_with(|| converged(world)).is_ok())
            .map(|(a, b, e)| {
                format!(
                    "{} and {} have config epoch {e}",
                    self.name(a),
                    self.name(b)
                )
            });
        self.collisions.update(now, collision);

        if let Some(cause) = cause {
            let (recoverable, replicas) = self.recoverable(world, now);
            let bound = recoverable.map(|()| match &world.scenario.sentinel {
                Some(sp) => liveness::sentinel_bound(sp, self.latency),
                None if world.scenario.replicated() => liveness::replication_bound(self.latency),
                None => liveness::bound(self.node_timeout_ms, u64::from(replicas), self.latency),
            });
            self.liveness.start(now, cause, bound);
        } else if self.liveness.pending() && roles_changed {
            let since = self.liveness.since();
            if let Err(reason) = self.recoverable(world, since).0 {
                self.liveness.lapse(reason);
            }
        }
        if self.liveness.pending() {
            match conv.get_or_insert_with(|| converged(world)) {
                Ok(()) => self.liveness.converged(now),
                Err(e) => self.not_converged = Some(e.clone()),
            }
        }
        self.next_deadline = self.next_deadline();
    }

    /// Whether Redis can recover on its own from the state after a fault
    /// at `fault` ([`liveness::recoverable`]), and the most replicas of a
    /// master. A standalone node recovers from nothing: it must be running.
    fn recoverable(&self, world: &World, fault: SimTime) -> (Result<(), String>, u32) {
        if world.scenario.standalone() {
            let running = members(world).next().map(|_| ()).ok_or_else(|| {
                "the standalone node is not running (nothing takes over for it)".to_string()
            });
            return (running, 0);
        }
        if world.scenario.replicated() {
            return (replication_recoverable(world, self.lossy), 0);
        }
        let s = situation(world, self.lossy, fault);
        let replicas = s.shards.iter().map(|m| m.replicas).max().unwrap_or(0);
        (liveness::recoverable(&s), replicas)
    }

    fn name(&self, p: u32) -> &str {
        &self.names[p as usize]
    }

    /// At the end of the run (`end`): judge what waits for a deadline.
    pub fn finish(&mut self, end: SimTime, world: &World) {
        self.split_brain.finish(end);
        let not_converged = &self.not_converged;
        let why = || describe_opt(not_converged, world);
        self.violations.extend(self.liveness.finish(end, why));
        self.violations.extend(self.collisions.finish(end));
    }

    /// Every violation, in time order.
    pub fn violations(&self) -> Vec<&Violation> {
        let mut v: Vec<&Violation> = self.violations.iter().collect();
        v.sort_by_key(|v| v.at);
        v
    }

    pub fn liveness(&self) -> &Status {
        self.liveness.status()
    }

    /// At the end of the run: explain each lost write `(process that
    /// acknowledged it, slot, sent, acknowledged)` by a window, or report it.
    pub fn judge_lost_writes(
        &mut self,
        world: &World,
        lost: impl Iterator<Item = (u32, u16, SimTime, SimTime)>,
    ) {
        let (counts, v) = lost_writes_explained::judge(world, self.split_brain.windows(), lost);
        self.lost_writes = counts;
        self.violations.extend(v);
    }

    /// The lost writes by window (after [`Checks::judge_lost_writes`]).
    pub fn lost_writes(&self) -> &lost_writes_explained::LostWrites {
        &self.lost_writes
    }

    /// The split-brain windows of the run so far (an anomaly, not a
    /// violation; see [`split_brain`]).
    pub fn split_brain(&self) -> &[split_brain::Window] {
        self.split_brain.windows()
    }

    /// The `invariants` field of the `--json` summary.
    pub fn json(&self, world: &World) -> Value {
        let violations: Vec<Value> = self
            .violations()
            .into_iter()
            .map(|v| {
                json!({
                    "check": v.check,
                    "at_ms": v.at / 1000,
                    "message": v.message,
                    "context": context(world, v.at)
                        .iter()
                        .map(|h| format!("{} {}", fmt_time(h.at), describe_history(world, h)))
                        .collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({
            "checked": NAMES.len(),
            "names": NAMES,
            "violations": violations,
            "liveness": liveness_json(self.liveness()),
        })
    }
}

/// The `currentEpoch` of the `nodes.conf` process `p` would restart from.
fn persisted_epoch(world: &World, p: usize) -> Option<u64> {
    world.procs[p]
        .disk
        .nodes_conf
        .as_ref()
        .and_then(|conf| conf.current_epoch())
}

/// Whether a master and replicas with cluster mode off can converge on
/// their own: no partition, one-way rule or loss, and a running master
/// (replication mode: nobody promotes a replica but an operator), or
/// with Sentinel enough sentinels running to authorize a failover
/// (`max(quorum, sentinels/2 + 1)`) and a running replica.
fn replication_recoverable(world: &World, lossy: bool) -> Result<(), String> {
    if world.net.has_rules() {
        return Err("a partition or one-way rule is in force".into());
    }
    if lossy {
        return Err("messages are being lost (loss > 0)".into());
    }
    if world
        .current_master()
        .is_some_and(|m| world.procs[m as usize].state == ProcState::Running)
    {
        return Ok(());
    }
    let Some(sp) = &world.scenario.sentinel else {
        return Err(
            "the master is not running and nothing promotes a replica but an operator (replication mode)"
                .into(),
        );
    };
    let voters = world.sentinels_running() as u32;
    let needed = sp.quorum.max(sp.sentinels.len() as u32 / 2 + 1);
    if voters < needed {
        return Err(format!(
            "only {voters} sentinels run; a failover needs {needed} to authorize it"
        ));
    }
    if members(world).next().is_none() {
        return Err("no node is running".into());
    }
    Ok(())
}

fn describe_opt(n: &Option<NotConverged>, world: &World) -> String {
    n.as_ref()
        .map_or_else(|| "not converged".to_string(), |n| n.describe(world))
}

/// What liveness's condition reads: the slot map most running nodes hold
/// (the first in process order among equally common ones) and its masters.
/// A replica may fail over if `cluster-replica-no-failover` is off and its
/// data will still be fresh enough when its master can be FAIL at the
/// latest (`2·NT` and a second after the fault at `fault`, with no news from
/// the master): one that never synced, or lost its master long ago, waits
/// forever, in Redis as here.
fn situation(world: &World, lossy: bool, fault: SimTime) -> Situation {
    // The distinct maps in order of first appearance, with how many hold
    // each: the first of the most common wins.
    let mut maps: Vec<(Vec<(NodeId, &SlotBitmap)>, usize)> = Vec::new();
    for (_, n) in members(world) {
        let m = slot_map(n);
        match maps.iter_mut().find(|(o, _)| same_slot_map(o, &m)) {
            Some((_, count)) => *count += 1,
            None => maps.push((m, 1)),
        }
    }
    let map = maps
        .iter()
        .enumerate()
        .max_by_key(|&(i, (_, count))| (*count, usize::MAX - i))
        .map(|(_, (m, _))| m.as_slice())
        .unwrap_or_default();
    let shards = map
        .iter()
        .map(|(id, slots)| {
            let replicas: Vec<u32> = members(world)
                .filter(|(_, n)| n.master_id() == Some(*id))
                .map(|(p, _)| p)
                .collect();
            let may_fail_over = replicas
                .iter()
                .filter(|&&r| {
                    let config = &world.scenario.nodes[r as usize].config;
                    let fail_by = crate::node::mstime(fault)
                        + 2 * config.cluster_node_timeout_ms as i64
                        + 1000;
                    !config.cluster_replica_no_failover
                        && world.procs[r as usize]
                            .node
                            .as_ref()
                            .is_some_and(|n| n.data_fresh_enough_at(fail_by))
                })
                .count();
            let replaced = members(world).any(|(_, n)| {
                let me = n.myself();
                me.name != *id
                    && me.is_master()
                    && slots
                        .0
                        .iter()
                        .zip(me.slots.0.iter())
                        .all(|(s, m)| s & !m == 0)
            });
            // A running master that does not claim all it is given (its own
            // slot map lost them: an interrupted migration on a host that
            // crashed before fsyncing): nothing claims those slots again
            // until `redis-cli --cluster fix`.
            let disowned = runs(world, id).is_some_and(|p| {
                let own = &world.procs[p as usize]
                    .node
                    .as_ref()
                    .expect("running")
                    .myself()
                    .slots;
                slots.0.iter().zip(own.0.iter()).any(|(s, m)| s & !m != 0)
            });
            Shard {
                name: node_name(world, id),
                running: runs(world, id).is_some(),
                disowned,
                replaced,
                replicas: replicas.len() as u32,
                failover_replicas: may_fail_over as u32,
            }
        })
        .collect();
    Situation {
        partitioned: world.net.has_rules(),
        lossy,
        assigned_slots: assigned(map) as usize,
        open_slots: members(world).any(|(_, n)| n.open_slot_count() > 0),
        shards,
    }
}

/// The last few history entries at or before `at`.
pub fn context(world: &World, at: SimTime) -> &[HistoryEvent] {
    let end = world.history.partition_point(|h| h.at <= at);
    &world.history[end.saturating_sub(CONTEXT_ENTRIES)..end]
}

/// A replication or persistence event in words (after the process's name).
fn describe_data<'a>(e: &DataEvent, name: impl Fn(u32) -> &'a str) -> String {
    let other = |p: &Option<u32>| p.map_or("?", &name).to_string();
    match e {
        DataEvent::FullSyncStarted { replica, offset } => {
            format!("starts a full sync of {} (offset {offset})", other(replica))
        }
        DataEvent::PartialResync { replica, bytes } => format!(
            "resyncs {} partially ({bytes} bytes of backlog)",
            other(replica)
        ),
        DataEvent::ReplicaOnline { replica } => format!("has {} online", other(replica)),
        DataEvent::ReplicaDropped { replica, reason } => {
            format!("drops replica {} ({reason:?})", other(replica))
        }
        DataEvent::Fork {
            for_replication,
            fork_us,
            ..
        } => format!(
            "forks for a BGSAVE ({}, blocked {fork_us} µs)",
            if *for_replication {
                "replication"
            } else {
                "save point"
            }
        ),
        DataEvent::ForkFailed { for_replication } => format!(
            "cannot fork for {} (Cannot allocate memory)",
            if *for_replication {
                "a full sync"
            } else {
                "a save point's BGSAVE"
            }
        ),
        DataEvent::RdbLoadStarted { rdb_bytes, load_us } => {
            format!("loads its master's RDB ({rdb_bytes} bytes, {load_us} µs)")
        }
        DataEvent::FullSyncFinished { offset } => {
            format!("finishes its full sync at offset {offset}")
        }
        DataEvent::PartialResyncAccepted { offset } => {
            format!("continues from its master at offset {offset} (partial resync)")
        }
        DataEvent::MasterLinkDown => "loses its link with its master".into(),
        DataEvent::SyncAborted { .. }
        | DataEvent::PsyncUnexpectedReply { .. }
        | DataEvent::MaxmemoryBelowUsage { .. } => {
            format!("logs: {}", e.redis_log().join(" "))
        }
        DataEvent::RdbSaved { keys } => format!("saves dump.rdb ({keys} keys)"),
        DataEvent::LoadingFromDisk {
            from_aof,
            keys,
            load_us,
        } => format!(
            "loads {} ({keys} keys, {load_us} µs)",
            if *from_aof { "its AOF" } else { "dump.rdb" }
        ),
        DataEvent::ReplicaOf { master: Some(m) } => {
            format!("replicates from {} (REPLICAOF)", name(*m))
        }
        DataEvent::ReplicaOf { master: None } => "is a master (REPLICAOF NO ONE)".into(),
    }
}

/// One history entry in words.
pub fn describe_history(world: &World, h: &HistoryEvent) -> String {
    let name = |p: u32| world.procs[p as usize].name.as_str();
    match &h.kind {
        HistoryKind::Created => "the cluster is created (redis-cli --cluster create)".into(),
        HistoryKind::AdminDone { index } => format!(
            "redis-cli finished: {}",
            crate::report::describe_fault(world, &world.scenario.faults[*index as usize].action)
        ),
        HistoryKind::Data(e) => format!("{} {}", h.proc.map_or("?", name), describe_data(e, name)),
        HistoryKind::Sentinel {
            sentinel,
            kind,
            about,
            detail,
        } => format!(
            "{} {kind} {} {detail}",
            world.sentinels.procs[*sentinel as usize].name,
            about.map_or("?", |a| world.name_of(a))
        ),
        HistoryKind::Fault { index, .. } => format!(
            "fault: {}",
            crate::report::describe_fault(world, &world.scenario.faults[*index as usize].action)
        ),
        HistoryKind::Note { note, about } => {
            let who = h.proc.map_or("?", name);
            let other = |id: &NodeId| about.map_or_else(|| format!("{id:?}"), |a| name(a).into());
            match note {
                Note::Pfail { about: id } => format!("{who} flags {} fail? (PFAIL)", other(id)),
                Note::PfailCleared { about: id } => {
                    format!("{who} clears fail? (PFAIL) of {}", other(id))
                }
                Note::FailMarked { about: id } => {
                    format!("{who} marks {} fail (majority of reports)", other(id))
                }
                Note::FailReceived { about: id } => {
                    format!("{who} learns {} is fail (FAIL message)", other(id))
                }
                Note::FailCleared { about: id } => format!("{who} clears fail of {}", other(id)),
                Note::StateChanged { ok } => {
                    format!("{who} cluster_state:{}", if *ok { "ok" } else { "fail" })
                }
                Note::ElectionScheduled { delay_ms, rank } => {
                    format!("{who} schedules an election in {delay_ms} ms (rank {rank})")
                }
                Note::ElectionStarted { epoch } => {
                    format!("{who} asks for votes in epoch {epoch}")
                }
                Note::VoteGranted { to, epoch } => {
                    format!("{who} votes for {} in epoch {epoch}", other(to))
                }
                Note::Promoted {
                    config_epoch,
                    old_master,
                    manual,
                } => format!(
                    "{who} replaces {} as master (config epoch {config_epoch}, {})",
                    other(old_master),
                    crate::sim::FailoverKind::from(*manual).as_str()
                ),
                Note::ManualFailoverTimeout => format!("{who}: manual failover timed out"),
            }
        }
    }
}

/// The `liveness` object of the summary.
fn liveness_json(s: &Status) -> Value {
    let ms = |t: &SimTime| t / 1000;
    match s {
        Status::Idle => json!({ "status": "idle" }),
        Status::NotApplicable { cause, reason } => {
            json!({ "status": "not-applicable", "after": cause, "reason": reason })
        }
        Status::Pending { cause, deadline } => {
            json!({ "status": "pending", "after": cause, "deadline_ms": ms(deadline) })
        }
        Status::Recovered {
            cause,
            since,
            at,
            bound,
        } => json!({
            "status": "converged", "after": cause, "converged_ms": ms(at),
            "took_ms": ms(&(at - since)), "bound_ms": ms(bound),
        }),
        Status::Violated { cause, deadline } => {
            json!({ "status": "violated", "after": cause, "deadline_ms": ms(deadline) })
        }
        Status::Unknown { cause, deadline } => {
            json!({ "status": "unknown", "after": cause, "deadline_ms": ms(deadline) })
        }
    }
}

#[cfg(test)]
mod tests;
