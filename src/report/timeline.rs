//! What the plots of a report show, read from a run: the nodes' state
//! sampled at a fixed step while the run goes ([`Sampler`], an observer:
//! it never steers), and the history's faults and protocol steps as bands
//! and markers ([`Timeline`]).
//!
//! **Writable slots.** A slot is writable at a moment when some running
//! (not paused) master holds it in its own slot map while its own
//! `cluster_state` is `ok`: a write that reaches that node is accepted
//! (steps 2-8 of `redsim query` let it through). A master cut off in a
//! minority counts until it sees the cluster down (its writes may be
//! lost, but they are accepted); a cluster whose nodes see a master FAIL
//! and not yet its replacement counts nothing (every node answers
//! `CLUSTERDOWN`). With cluster mode off (standalone, replication,
//! Sentinel), a running master serves every slot and a replica none.

use crate::engine::{Hooks, SimTime, MS};
use crate::node::bus::SlotBitmap;
use crate::node::slots::CLUSTER_SLOTS;
use crate::node::Note;
use crate::scenario::FaultAction;
use crate::world::{DataEvent, HistoryKind, ProcState, World};

/// What a process was at a sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Master,
    Replica,
    Paused,
    Dead,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Replica => "replica",
            Role::Paused => "paused",
            Role::Dead => "dead",
        }
    }
}

/// One process at one sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeSample {
    pub role: Role,
    /// Its own config epoch (0 when dead).
    pub config_epoch: u64,
    /// `master_repl_offset` (what a replica has processed of its master's
    /// stream; 0 when dead).
    pub repl_offset: i64,
}

/// The state of the run at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    pub at: SimTime,
    pub nodes: Vec<NodeSample>,
    /// Slots writable then (see the module's documentation).
    pub writable_slots: u32,
}

/// Samples the world every `step` of simulated time, before the first
/// event after each sample time: the state at that moment exactly.
#[derive(Clone, Debug)]
pub struct Sampler {
    step: SimTime,
    next: SimTime,
    pub samples: Vec<Sample>,
}

impl Sampler {
    /// A sampler taking about 2000 samples over `duration`, at most
    /// every 50 ms and at least every 1 ms.
    pub fn for_duration(duration: SimTime) -> Sampler {
        Sampler {
            step: (duration / 2000).clamp(MS, 50 * MS),
            next: 0,
            samples: Vec::new(),
        }
    }

    pub fn step(&self) -> SimTime {
        self.step
    }

    /// After the run: the samples due up to `end` (inclusive), and the
    /// timeline of the run.
    pub fn into_timeline(mut self, world: &World, end: SimTime) -> Timeline {
        while self.next <= end {
            self.take(world);
        }
        Timeline::new(world, self, end)
    }

    fn take(&mut self, world: &World) {
        self.samples.push(sample(world, self.next));
        self.next += self.step;
    }
}

impl Hooks<World> for Sampler {
    fn before(&mut self, at: SimTime, _seq: u64, _event: &crate::world::Event, world: &World) {
        while self.next < at {
            self.take(world);
        }
    }
}

/// The world's state now, as a sample at `at`.
pub fn sample(world: &World, at: SimTime) -> Sample {
    let mut writable = SlotBitmap::default();
    let nodes = world
        .procs
        .iter()
        .map(|p| match (&p.node, p.state) {
            (None, _) | (_, ProcState::Dead) => NodeSample {
                role: Role::Dead,
                config_epoch: 0,
                repl_offset: 0,
            },
            (Some(n), state) => {
                let paused = state == ProcState::Paused;
                if !n.setup.config.cluster_enabled && !paused && n.is_master() {
                    // A master with cluster mode off (standalone, or the
                    // master of a replication or Sentinel setup) serves
                    // every key.
                    writable.0.fill(u64::MAX);
                } else if n.is_master() && !paused && n.state_ok() {
                    for (w, s) in writable.0.iter_mut().zip(n.myself().slots.0.iter()) {
                        *w |= s;
                    }
                }
                NodeSample {
                    role: match (paused, n.is_master()) {
                        (true, _) => Role::Paused,
                        (false, true) => Role::Master,
                        (false, false) => Role::Replica,
                    },
                    config_epoch: n.my_epoch(),
                    repl_offset: n.replication().master_repl_offset(),
                }
            }
        })
        .collect();
    Sample {
        at,
        nodes,
        writable_slots: writable.count(),
    }
}

/// A fault drawn as a shaded band, from when it was applied to what ended
/// it (a restart, resume or heal; the end of the run if nothing did).
#[derive(Clone, Debug, PartialEq)]
pub struct Band {
    pub from: SimTime,
    pub to: SimTime,
    pub label: String,
}

/// What a marker marks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MarkerKind {
    Pfail,
    Fail,
    ElectionStarted,
    Promoted,
    Heal,
}

impl MarkerKind {
    pub const ALL: [MarkerKind; 5] = [
        MarkerKind::Pfail,
        MarkerKind::Fail,
        MarkerKind::ElectionStarted,
        MarkerKind::Promoted,
        MarkerKind::Heal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MarkerKind::Pfail => "PFAIL",
            MarkerKind::Fail => "FAIL",
            MarkerKind::ElectionStarted => "election",
            MarkerKind::Promoted => "promoted",
            MarkerKind::Heal => "heal",
        }
    }
}

/// A moment of the protocol: the first `PFAIL` and `FAIL` about a node
/// after each fault, each election started, each promotion, each heal,
/// resume or restart.
#[derive(Clone, Debug, PartialEq)]
pub struct Marker {
    pub at: SimTime,
    pub kind: MarkerKind,
    pub label: String,
}

/// A synchronization of a replica with its master.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sync {
    pub at: SimTime,
    pub proc: u32,
    pub full: bool,
    pub offset: i64,
}

/// Everything the plots draw about one run.
#[derive(Clone, Debug)]
pub struct Timeline {
    pub samples: Vec<Sample>,
    pub step: SimTime,
    pub end: SimTime,
    pub bands: Vec<Band>,
    pub markers: Vec<Marker>,
    pub syncs: Vec<Sync>,
}

impl Timeline {
    pub fn new(world: &World, sampler: Sampler, end: SimTime) -> Timeline {
        let name = |p: u32| world.procs[p as usize].name.as_str();
        let mut markers = Vec::new();
        let mut syncs = Vec::new();
        // (kind, about) already marked since the last fault.
        let mut seen: Vec<(MarkerKind, u32)> = Vec::new();
        for h in &world.history {
            match &h.kind {
                HistoryKind::Fault { index, .. } => {
                    seen.clear();
                    let action = &world.scenario.faults[*index as usize].action;
                    if matches!(
                        action,
                        FaultAction::Heal
                            | FaultAction::Resume { .. }
                            | FaultAction::Restart { .. }
                    ) {
                        markers.push(Marker {
                            at: h.at,
                            kind: MarkerKind::Heal,
                            label: super::describe_fault(world, action),
                        });
                    }
                }
                HistoryKind::Note { note, about } => {
                    let kind = match note {
                        Note::Pfail { .. } => MarkerKind::Pfail,
                        Note::FailMarked { .. } | Note::FailReceived { .. } => MarkerKind::Fail,
                        Note::ElectionStarted { .. } => MarkerKind::ElectionStarted,
                        Note::Promoted { .. } => MarkerKind::Promoted,
                        _ => continue,
                    };
                    let label = match (kind, note, *about, h.proc) {
                        (MarkerKind::Pfail | MarkerKind::Fail, _, Some(a), _) => {
                            if seen.contains(&(kind, a)) {
                                continue;
                            }
                            seen.push((kind, a));
                            format!("{} {}", kind.as_str(), name(a))
                        }
                        (_, Note::ElectionStarted { epoch }, _, Some(p)) => {
                            format!("{} asks votes (epoch {epoch})", name(p))
                        }
                        (_, Note::Promoted { config_epoch, .. }, _, Some(p)) => {
                            format!("{} promoted (epoch {config_epoch})", name(p))
                        }
                        _ => continue,
                    };
                    markers.push(Marker {
                        at: h.at,
                        kind,
                        label,
                    });
                }
                HistoryKind::Data(
                    e @ (DataEvent::FullSyncFinished { offset }
                    | DataEvent::PartialResyncAccepted { offset }),
                ) => syncs.extend(h.proc.map(|proc| Sync {
                    at: h.at,
                    proc,
                    full: matches!(e, DataEvent::FullSyncFinished { .. }),
                    offset: *offset,
                })),
                _ => {}
            }
        }
        merge_close(&mut markers, end / 50);
        Timeline {
            step: sampler.step(),
            samples: sampler.samples,
            end,
            bands: fault_bands(world, end),
            markers,
            syncs,
        }
    }

    /// The samples from the first at which every slot was writable (the
    /// cluster fully up; none if it never was): the availability figures
    /// count from there, leaving out the creation.
    fn since_up(&self) -> &[Sample] {
        let first = self
            .samples
            .iter()
            .position(|s| s.writable_slots as usize == CLUSTER_SLOTS)
            .unwrap_or(self.samples.len());
        &self.samples[first..]
    }

    /// Seconds during which some slot was not writable, after the cluster
    /// was first fully up (to the sampling step).
    pub fn unwritable_s(&self) -> f64 {
        let n = self
            .since_up()
            .iter()
            .filter(|s| (s.writable_slots as usize) < CLUSTER_SLOTS)
            .count();
        secs(n as u64 * self.step)
    }

    /// Slot-seconds not writable after the cluster was first fully up,
    /// divided by the number of slots: the whole cluster's downtime,
    /// weighted by the slots down.
    pub fn slot_unavailability_s(&self) -> f64 {
        let missing: u64 = self
            .since_up()
            .iter()
            .map(|s| (CLUSTER_SLOTS as u64).saturating_sub(u64::from(s.writable_slots)))
            .sum();
        secs(missing * self.step) / CLUSTER_SLOTS as f64
    }
}

/// A PFAIL or FAIL marker within `window` after the previous one of its
/// kind joins it (`PFAIL node-5 (+2 more)`), so that labels do not pile
/// up.
fn merge_close(markers: &mut Vec<Marker>, window: SimTime) {
    let mut out: Vec<(Marker, usize)> = Vec::with_capacity(markers.len());
    for m in markers.drain(..) {
        let joins = matches!(m.kind, MarkerKind::Pfail | MarkerKind::Fail);
        let prev = out
            .iter_mut()
            .rev()
            .find(|(p, _)| p.kind == m.kind && m.at - p.at <= window);
        match prev {
            Some((_, more)) if joins => *more += 1,
            _ => out.push((m, 0)),
        }
    }
    *markers = out
        .into_iter()
        .map(|(mut m, more)| {
            if more > 0 {
                m.label.push_str(&format!(" (+{more} more)"));
            }
            m
        })
        .collect();
}

/// Simulated time in seconds.
pub fn secs(t: SimTime) -> f64 {
    t as f64 / crate::engine::SEC as f64
}

/// Each fault as a band: from its time to what ends it. A kill or a
/// host crash ends at the next restart of that node (or a node of that
/// host), a pause at its resume, a network fault at the next heal; the
/// operations of the cluster manager (reshard, add-node, ...) at their
/// end; a manual failover is a moment.
fn fault_bands(world: &World, end: SimTime) -> Vec<Band> {
    let faults = &world.scenario.faults;
    let admin_done = |i: usize| {
        world.history.iter().find_map(|h| match h.kind {
            HistoryKind::AdminDone { index } if index as usize == i => Some(h.at),
            _ => None,
        })
    };
    let mut bands = Vec::new();
    for (i, f) in faults.iter().enumerate() {
        let later = || faults[i + 1..].iter();
        let ended_by = |pred: &dyn Fn(&FaultAction) -> bool| {
            later().find(|g| pred(&g.action)).map_or(end, |g| g.at)
        };
        let to = match &f.action {
            FaultAction::Kill { node } => {
                ended_by(&|a| matches!(a, FaultAction::Restart { node: n } if n == node))
            }
            FaultAction::CrashHost { host } => ended_by(
                &|a| matches!(a, FaultAction::Restart { node: n } if world.procs[*n].host == *host),
            ),
            FaultAction::Pause { node } => {
                ended_by(&|a| matches!(a, FaultAction::Resume { node: n } if n == node))
            }
            FaultAction::Partition { .. }
            | FaultAction::Isolate { .. }
            | FaultAction::OneWay { .. }
            | FaultAction::Latency { .. }
            | FaultAction::Loss { .. } => ended_by(&|a| matches!(a, FaultAction::Heal)),
            FaultAction::Restart { .. } | FaultAction::Resume { .. } | FaultAction::Heal => {
                continue
            }
            FaultAction::Reshard { .. }
            | FaultAction::AddNode { .. }
            | FaultAction::DelNode { .. }
            | FaultAction::Rebalance { .. }
            | FaultAction::Fix { .. } => admin_done(i).unwrap_or(end),
            _ => f.at,
        };
        bands.push(Band {
            from: f.at,
            to: to.max(f.at),
            label: super::describe_fault(world, &f.action),
        });
    }
    bands
}

/// The figures a report leads with and a sweep tabulates, for one run.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Figures {
    /// From the fault that cut a master off to its replica's promotion
    /// (the run's first such failover), in seconds.
    pub failover_s: Option<f64>,
    /// [`Timeline::unwritable_s`].
    pub unwritable_s: f64,
    /// [`Timeline::slot_unavailability_s`].
    pub slot_unavailability_s: f64,
    /// The longest time writes kept failing for the clients, over the
    /// shards (none without a workload).
    pub client_unavailable_s: Option<f64>,
    pub lost_writes: u64,
    pub acknowledged_writes: u64,
    /// `keyspace_hits / (hits + misses)` over the live nodes at the end
    /// (none if no key was looked up).
    pub hit_ratio: Option<f64>,
}

impl Figures {
    pub fn of(sim: &crate::sim::Simulation, t: &Timeline) -> Figures {
        let totals = sim.client_totals();
        let (hits, misses) = sim.keyspace_lookups();
        Figures {
            failover_s: sim
                .failovers()
                .iter()
                .find_map(|f| f.died.map(|d| secs(f.promoted_at - d))),
            unwritable_s: t.unwritable_s(),
            slot_unavailability_s: t.slot_unavailability_s(),
            client_unavailable_s: (!sim.world.scenario.workloads.is_empty())
                .then(|| secs(totals.unavailable.iter().copied().max().unwrap_or(0))),
            lost_writes: totals.lost,
            acknowledged_writes: totals.writes.acknowledged,
            hit_ratio: (hits + misses > 0).then(|| hits as f64 / (hits + misses) as f64),
        }
    }
}
