//! `lost-writes-explained`: every acknowledged write that is missing at the
//! end of the run is explained by one of the windows in which Redis
//! Cluster loses writes by design (an anomaly, counted per window); a lost
//! write no window explains is a violation.
//!
//! A write is judged by the process that acknowledged it (`node`) and what
//! happened to that process after the write was sent (`sent`: it was
//! applied somewhere between then and the acknowledgement, `acked`), read
//! from the run's history:
//!
//! - **replication lag at a crash** (`replication-lag-at-crash`): the
//!   master died or was paused after acknowledging the write, and a replica
//!   took its slots over (`Promoted` naming it) before it came back:
//!   replication is asynchronous, so what it had not streamed yet is gone;
//! - **lost on restart** (`lost-on-restart`): the master died after the
//!   acknowledgement and no replica took over: it restarted from what its
//!   disk kept (nothing without persistence, up to a second less with
//!   `appendfsync everysec` after a host crash), or stayed dead;
//! - **minority partition** (`minority-partition`): the master was cut off
//!   by a partition, isolation or one-way rule in force when it
//!   acknowledged the write, and the majority replaced it: it kept
//!   accepting writes until it noticed, about a node timeout;
//! - **interrupted migration** (`interrupted-migration`): the write's slot
//!   is still open (`MIGRATING`/`IMPORTING`) at the end on the process that
//!   acknowledged it: a migration stopped half way, and the key sits on the
//!   importing node (after `ASK`) while the slot stays with the source,
//!   until `redis-cli --cluster fix`;
//! - **split brain** (`split-brain`): the master was replaced while it
//!   still served and was not cut off (`CLUSTER FAILOVER TAKEOVER` or
//!   `FORCE` of a replica while its master was alive), or it acknowledged
//!   the write after its successor had taken the slots (during a measured
//!   split-brain window, [`super::split_brain`], or while the successor sat
//!   in a minority) and before it heard of it.
//!
//! A write acknowledged by a master that neither died, nor was paused, nor
//! was replaced afterwards must be readable: if it is not, redsim (or the
//! Redis behaviour it models) lost it for no reason Redis has.

use crate::engine::SimTime;
use crate::node::Note;
use crate::scenario::FaultAction;
use crate::world::{fmt_time, HistoryEvent, HistoryKind, World};

use super::split_brain::Window;
use super::Violation;

pub const NAME: &str = "lost-writes-explained";

/// The windows, in report order.
pub const WINDOWS: [&str; 5] = [
    "replication-lag-at-crash",
    "lost-on-restart",
    "minority-partition",
    "split-brain",
    "interrupted-migration",
];

/// Lost writes per window (indices of [`WINDOWS`]) and the unexplained.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LostWrites {
    pub by_window: [u64; 5],
    pub unexplained: u64,
}

impl LostWrites {
    pub fn total(&self) -> u64 {
        self.by_window.iter().sum::<u64>() + self.unexplained
    }
}

/// Whether fault `a` kills or stops process `p`.
fn stops(world: &World, a: &FaultAction, p: u32) -> bool {
    match *a {
        FaultAction::Kill { node } | FaultAction::Pause { node } => node as u32 == p,
        FaultAction::CrashHost { host } => world.procs[p as usize].host == host,
        _ => false,
    }
}

/// Whether fault `a` cuts process `p` off (when it hit `p` as a master).
fn cuts(a: &FaultAction) -> bool {
    matches!(
        a,
        FaultAction::Partition { .. }
            | FaultAction::Isolate { .. }
            | FaultAction::OneWay { .. }
            | FaultAction::BlockBusPort { .. }
    )
}

/// The history entries [`explain`] reads (faults and promotions), picked
/// once for all the lost writes of a run.
fn relevant(world: &World) -> Vec<&HistoryEvent> {
    world
        .history
        .iter()
        .filter(|h| {
            matches!(
                h.kind,
                HistoryKind::Fault { .. }
                    | HistoryKind::Note {
                        note: Note::Promoted { .. },
                        ..
                    }
            )
        })
        .collect()
}

/// Which window explains a write acknowledged by `node` at `acked`, if any
/// (an index of [`WINDOWS`]); `split` are the run's split-brain windows,
/// `events` the run's faults and promotions ([`relevant`]).
fn explain(
    world: &World,
    events: &[&HistoryEvent],
    split: &[Window],
    node: u32,
    slot: u16,
    sent: SimTime,
    acked: SimTime,
) -> Option<usize> {
    if world.procs[node as usize]
        .node
        .as_ref()
        .is_some_and(|n| n.slot_open(slot))
    {
        return Some(4);
    }
    let in_split = split
        .iter()
        .any(|w| w.procs.contains(&node) && w.from <= acked && w.to.is_none_or(|to| sent <= to));
    let mut cut_off = false;
    let mut stale = false;
    let mut stopped: Option<SimTime> = None;
    let mut replaced: Option<SimTime> = None;
    for h in events {
        match &h.kind {
            HistoryKind::Fault { index, masters_hit } => {
                let a = &world.scenario.faults[*index as usize].action;
                if h.at < sent {
                    if cuts(a) && masters_hit.contains(&node) {
                        cut_off = true;
                    } else if matches!(a, FaultAction::Heal) {
                        cut_off = false;
                    }
                } else if stopped.is_none() && stops(world, a, node) {
                    stopped = Some(h.at);
                }
            }
            HistoryKind::Note {
                note: Note::Promoted { old_master, .. },
                ..
            } => {
                if h.at < sent {
                    // Replaced before the write and not promoted again
                    // since: it served as a stale master (it had not heard
                    // of its successor yet).
                    if world.proc_of_id(old_master) == Some(node) {
                        stale = true;
                    } else if h.proc == Some(node) {
                        stale = false;
                    }
                } else if replaced.is_none() && world.proc_of_id(old_master) == Some(node) {
                    replaced = Some(h.at);
                }
            }
            _ => {}
        }
    }
    let served_while_replaced = replaced.is_some() || in_split || stale;
    match (stopped, replaced) {
        (Some(s), Some(r)) if s <= r => Some(0),
        (Some(_), None) if !in_split => Some(1),
        _ if served_while_replaced && cut_off => Some(2),
        _ if served_while_replaced => Some(3),
        _ => None,
    }
}

/// Judge the lost writes `(node, slot, sent, acknowledged)`; the first
/// unexplained one is the violation.
pub fn judge(
    world: &World,
    split: &[Window],
    lost: impl Iterator<Item = (u32, u16, SimTime, SimTime)>,
) -> (LostWrites, Option<Violation>) {
    let mut counts = LostWrites::default();
    let mut first: Option<(u32, SimTime)> = None;
    let mut events = None;
    for (node, slot, sent, acked) in lost {
        let events = events.get_or_insert_with(|| relevant(world));
        match explain(world, events, split, node, slot, sent, acked) {
            Some(w) => counts.by_window[w] += 1,
            None => {
                counts.unexplained += 1;
                if first.is_none_or(|(_, t)| acked < t) {
                    first = Some((node, acked));
                }
            }
        }
    }
    let v = first.map(|(node, acked)| Violation {
        check: NAME,
        at: acked,
        message: format!(
            "{} acknowledged write{} that {} lost, though {} neither died, nor was paused, nor was replaced afterwards (first acknowledged by {} at {})",
            counts.unexplained,
            if counts.unexplained == 1 { "" } else { "s" },
            if counts.unexplained == 1 { "was" } else { "were" },
            if counts.unexplained == 1 { "its master" } else { "their masters" },
            world.procs[node as usize].name,
            fmt_time(acked)
        ),
    });
    (counts, v)
}
