//! What the run's requests add up to: the `ops`, `writes` and
//! `availability` fields of the summary, read from the requests' records
//! (the history) and the final keyspaces. Records are in the order the
//! tries ended. The library's own `CLUSTER SLOTS` are recorded but not
//! counted.
//!
//! # Counts
//!
//! - `ops`: every try of a request (a retry is a new try): `sent`; `ok` for
//!   a normal reply (after the redirections it followed); `timeouts` for
//!   no reply within `timeout`; `errors` for the rest (an error reply, a
//!   redirection it gave up on, a refused or reset connection).
//! - `writes`: the tries of `SET`, `INCR` and `APPEND`: `acknowledged`
//!   (a normal reply) and `failed` (any other outcome).
//!
//! # Lost writes
//!
//! A key's final value is read from the keyspace of the master that most
//! live nodes see as the owner of its slot (none if it is not running),
//! expired keys counting as missing. When no owner has a majority of the
//! live nodes (a cluster that split and never converged), or the owner has
//! evicted keys and the key is missing, the key's writes are not judged. A try that got an error reply or was
//! refused did not happen; one that timed out, whose connection was reset,
//! or still waiting for its reply at the end may have happened, at any
//! time after it was sent.
//!
//! - An acknowledged `SET` w is lost unless a later acknowledged `SET` of
//!   the key was sent after w was acknowledged (it overwrote w), or the
//!   final value starts with the value of w or of another `SET` of the key
//!   that may have been executed after w (acknowledged after w was sent,
//!   or without a reply), or w had a ttl that may have run out by the end
//!   (sent more than `ttl` before the end).
//! - An acknowledged `APPEND` is lost if its token is missing from the
//!   final value, unless a `SET` of the key may have been executed after
//!   it (it wiped the appends) or a `SET` of the key had a ttl.
//! - An acknowledged `INCR` that replied `r` is lost if the final value is
//!   below `r` (missing counts as 0): the counter went back. After a
//!   loss, increments on top of the lost value hide part of it, so this
//!   is a lower bound. Keys that are also `SET` are not judged.
//! - Writes to a key that is missing from a master that evicted keys
//!   (`maxmemory`) are not judged: the key may have been evicted.
//!
//! # Availability
//!
//! Shards are the masters' slot ranges when the cluster was created.
//! Writes sent from the creation on are taken per shard, in the order
//! they ended: a failed write opens an interval of unavailability (from when it
//! was sent, or the shard's last success if later) unless one is open; the
//! next acknowledged write closes it, when it is acknowledged. An interval
//! still open at the end lasts until the last failed write ended.

use super::keys::{tokens, NO_VALUE};
use super::{Cmd, OpRecord};
use crate::engine::SimTime;

/// `ops` of the summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpsCount {
    pub sent: u64,
    pub ok: u64,
    pub errors: u64,
    pub timeouts: u64,
}

/// `writes` of the summary, but `lost` ([`lost_writes`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WritesCount {
    pub acknowledged: u64,
    pub failed: u64,
}

pub fn count(log: &[OpRecord]) -> (OpsCount, WritesCount) {
    let mut ops = OpsCount::default();
    let mut writes = WritesCount::default();
    for r in log.iter().filter(|r| r.cmd != Cmd::ClusterSlots) {
        ops.sent += 1;
        let ok = r.outcome.is_ok();
        if ok {
            ops.ok += 1;
        } else if r.outcome == super::Outcome::Timeout {
            ops.timeouts += 1;
        } else {
            ops.errors += 1;
        }
        if r.cmd.is_write() {
            if ok {
                writes.acknowledged += 1;
            } else {
                writes.failed += 1;
            }
        }
    }
    (ops, writes)
}

/// Acknowledged writes missing at `end` (rules in the module's
/// documentation), from the history and the tries still waiting for their
/// reply at `end` ([`super::Outcome::Pending`]: they may have been
/// executed). `ttl[p]` is population `p`'s ttl; `final_value(key)` is the
/// key's value at the end (`Some(None)` if missing), or `None` when it
/// cannot be known (the key may have been evicted): then the key's writes
/// are not judged.
pub fn lost_writes<'a>(
    tries: impl IntoIterator<Item = &'a OpRecord>,
    ttl: &[Option<SimTime>],
    end: SimTime,
    final_value: impl FnMut(u32) -> Option<Option<Vec<u8>>>,
) -> u64 {
    lost_write_records(tries, ttl, end, final_value).len() as u64
}

/// The acknowledged writes [`lost_writes`] counts, by key.
pub fn lost_write_records<'a>(
    tries: impl IntoIterator<Item = &'a OpRecord>,
    ttl: &[Option<SimTime>],
    end: SimTime,
    mut final_value: impl FnMut(u32) -> Option<Option<Vec<u8>>>,
) -> Vec<&'a OpRecord> {
    // By key, each key's tries in history order: a counting sort (key ids
    // are dense), cheaper than comparison sorts of a million records.
    let writes: Vec<&OpRecord> = tries.into_iter().filter(|r| r.cmd.is_write()).collect();
    let Some(&any) = writes.first() else {
        return Vec::new();
    };
    let keys = writes.iter().map(|r| r.key as usize + 1).max().unwrap_or(0);
    let mut start = vec![0usize; keys + 1];
    for r in &writes {
        start[r.key as usize + 1] += 1;
    }
    for k in 1..start.len() {
        start[k] += start[k - 1];
    }
    let mut sorted = vec![any; writes.len()];
    for r in writes {
        let at = &mut start[r.key as usize];
        sorted[*at] = r;
        *at += 1;
    }
    let writes = sorted;
    let mut lost = Vec::new();
    for group in writes.chunk_by(|a, b| a.key == b.key) {
        if !group.iter().any(|r| r.outcome.is_ok()) {
            continue;
        }
        let Some(value) = final_value(group[0].key) else {
            continue;
        };
        lost_in_key(group, ttl, end, value.as_deref(), &mut lost);
    }
    lost
}

/// When a try may have taken effect until: its acknowledgement, or
/// forever without a reply; `None` if it did not happen.
fn effect_end(r: &OpRecord) -> Option<SimTime> {
    if r.outcome.is_ok() {
        Some(r.done)
    } else if r.outcome.maybe_applied() {
        Some(SimTime::MAX)
    } else {
        None
    }
}

fn lost_in_key<'a>(
    group: &[&'a OpRecord],
    ttl: &[Option<SimTime>],
    end: SimTime,
    value: Option<&[u8]>,
    lost: &mut Vec<&'a OpRecord>,
) {
    let sets = || group.iter().filter(|r| r.cmd == Cmd::Set);
    let acked = |cmd: Cmd| {
        group
            .iter()
            .filter(move |r| r.cmd == cmd && r.outcome.is_ok())
    };
    let may_expire = |r: &OpRecord| {
        r.ttl && ttl[usize::from(r.pop)].is_some_and(|t| r.sent.saturating_add(t) <= end)
    };
    let last_acked_set_sent = acked(Cmd::Set).map(|r| r.sent).max();
    // The SET the final value starts with, and when it may have taken effect.
    let first = value.and_then(|v| tokens(v).next()).unwrap_or(NO_VALUE);
    let first_set_end = sets()
        .filter(|r| r.value == first)
        .find_map(|r| effect_end(r));
    for w in acked(Cmd::Set) {
        let overwritten = last_acked_set_sent.is_some_and(|s| s > w.done);
        let survives = first_set_end.is_some_and(|e| e > w.sent);
        if !overwritten && !survives && !may_expire(w) {
            lost.push(w);
        }
    }
    let wiped_after =
        |t: SimTime| sets().any(|x| effect_end(x).is_some_and(|e| e > t)) || sets().any(|x| x.ttl);
    let mut appended: Option<Vec<u64>> = None;
    for a in acked(Cmd::Append) {
        let have = appended.get_or_insert_with(|| {
            let mut t: Vec<u64> = value.map(|v| tokens(v).collect()).unwrap_or_default();
            t.sort_unstable();
            t
        });
        if have.binary_search(&a.value).is_err() && !wiped_after(a.sent) {
            lost.push(a);
        }
    }
    if sets().next().is_none() {
        let counter = match value {
            None => Some(0),
            Some(v) => std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse::<i64>().ok()),
        };
        if let Some(counter) = counter {
            lost.extend(acked(Cmd::Incr).filter(|r| r.value as i64 > counter));
        }
    }
}

/// "No shard": a slot no master had when the cluster was created.
pub const NO_SHARD: u16 = u16::MAX;

/// For each of `shards` shards (`shard_of_slot[slot]`), the longest time
/// writes to it kept failing, counting writes sent from `from` on (rules
/// in the module's documentation).
pub fn unavailability(
    log: &[OpRecord],
    shard_of_slot: &[u16],
    shards: usize,
    from: SimTime,
) -> Vec<SimTime> {
    #[derive(Clone, Copy, Default)]
    struct Shard {
        /// Start of the open interval, and when its last failure ended.
        open: Option<(SimTime, SimTime)>,
        last_ok: SimTime,
        longest: SimTime,
    }
    let mut state = vec![Shard::default(); shards];
    for r in log.iter().filter(|r| r.cmd.is_write() && r.sent >= from) {
        let shard = shard_of_slot[usize::from(r.slot)];
        let Some(s) = state.get_mut(usize::from(shard)) else {
            continue;
        };
        if r.outcome.is_ok() {
            if let Some((start, _)) = s.open.take() {
                s.longest = s.longest.max(r.done.saturating_sub(start));
            }
            s.last_ok = r.done;
        } else {
            let start = s.open.map_or(r.sent.max(s.last_ok).max(from), |(st, _)| st);
            s.open = Some((start, r.done));
        }
    }
    state
        .iter()
        .map(|s| match s.open {
            Some((start, last)) => s.longest.max(last.saturating_sub(start)),
            None => s.longest,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::keys::{write_id, write_value};
    use super::super::{Outcome, NO_TEXT};
    use super::*;

    fn rec(
        cmd: Cmd,
        key: u32,
        sent: SimTime,
        done: SimTime,
        outcome: Outcome,
        value: u64,
    ) -> OpRecord {
        OpRecord {
            sent,
            done,
            value,
            client: 0,
            key,
            node: 0,
            slot: key as u16,
            pop: 0,
            error: NO_TEXT,
            cmd,
            outcome,
            redirects: 0,
            ttl: false,
        }
    }

    fn set(key: u32, sent: SimTime, done: SimTime, outcome: Outcome, seq: u32) -> OpRecord {
        rec(Cmd::Set, key, sent, done, outcome, write_id(1, seq))
    }

    fn val(seq: u32) -> Option<Vec<u8>> {
        let mut v = Vec::new();
        write_value(write_id(1, seq), 10, &mut v);
        Some(v)
    }

    fn lost(log: &[OpRecord], finals: &[(u32, Option<Vec<u8>>)]) -> u64 {
        lost_writes(log, &[None], 1000, |k| {
            Some(finals.iter().find(|f| f.0 == k).and_then(|f| f.1.clone()))
        })
    }

    #[test]
    fn counts_by_outcome() {
        let log = [
            set(1, 0, 1, Outcome::Ok, 1),
            rec(Cmd::Get, 1, 1, 2, Outcome::Nil, NO_VALUE),
            set(1, 2, 3, Outcome::Timeout, 2),
            set(1, 3, 4, Outcome::Error, 3),
            rec(Cmd::Get, 1, 4, 5, Outcome::Refused, NO_VALUE),
            rec(Cmd::ClusterSlots, 0, 5, 6, Outcome::Ok, NO_VALUE),
        ];
        let (ops, writes) = count(&log);
        assert_eq!(
            ops,
            OpsCount {
                sent: 5,
                ok: 2,
                errors: 2,
                timeouts: 1
            }
        );
        assert_eq!(
            writes,
            WritesCount {
                acknowledged: 1,
                failed: 2
            }
        );
    }

    #[test]
    fn a_set_is_lost_only_if_nothing_explains_the_final_value() {
        // The last acknowledged value is there: nothing lost.
        let log = [
            set(1, 0, 10, Outcome::Ok, 1),
            set(1, 20, 30, Outcome::Ok, 2),
        ];
        assert_eq!(lost(&log, &[(1, val(2))]), 0);
        // The key is gone: the last write is lost, the first was overwritten.
        assert_eq!(lost(&log, &[(1, None)]), 1);
        // The older value came back: the newer write is lost.
        assert_eq!(lost(&log, &[(1, val(1))]), 1);
        // Two concurrent writes: either may be last.
        let log = [set(1, 0, 10, Outcome::Ok, 1), set(1, 5, 15, Outcome::Ok, 2)];
        assert_eq!(lost(&log, &[(1, val(1))]), 0);
        assert_eq!(lost(&log, &[(1, val(2))]), 0);
        assert_eq!(lost(&log, &[(1, None)]), 2);
        // A write that timed out may have been applied later.
        let log = [
            set(1, 0, 10, Outcome::Ok, 1),
            set(1, 20, 1020, Outcome::Timeout, 2),
        ];
        assert_eq!(lost(&log, &[(1, val(2))]), 0);
        // So may one still waiting for its reply at the end.
        let log = [
            set(1, 0, 10, Outcome::Ok, 1),
            set(1, 20, 1000, Outcome::Pending, 2),
        ];
        assert_eq!(lost(&log, &[(1, val(2))]), 0);
        // One refused was not.
        let log = [
            set(1, 0, 10, Outcome::Ok, 1),
            set(1, 20, 21, Outcome::Refused, 2),
        ];
        assert_eq!(lost(&log, &[(1, val(2))]), 1);
        // A write with a ttl that may have run out is not counted.
        let mut w = set(1, 0, 10, Outcome::Ok, 1);
        w.ttl = true;
        assert_eq!(lost_writes(&[w], &[Some(900)], 1000, |_| Some(None)), 0);
        assert_eq!(lost_writes(&[w], &[Some(1001)], 1000, |_| Some(None)), 1);
        // Missing from a master that evicts: not judged.
        assert_eq!(lost_writes(&[w], &[Some(1001)], 1000, |_| None), 0);
    }

    #[test]
    fn appends_and_increments() {
        let app =
            |sent, done, outcome, seq| rec(Cmd::Append, 2, sent, done, outcome, write_id(1, seq));
        let log = [
            app(0, 1, Outcome::Ok, 1),
            app(2, 3, Outcome::Ok, 2),
            app(4, 5, Outcome::Ok, 3),
        ];
        let mut v = val(1).unwrap();
        v.extend(val(3).unwrap());
        assert_eq!(lost(&log, &[(2, Some(v))]), 1);
        assert_eq!(lost(&log, &[(2, None)]), 3);
        let incr = |sent, r| rec(Cmd::Incr, 3, sent, sent + 1, Outcome::Int, r);
        let log = [incr(0, 1), incr(2, 2), incr(4, 3)];
        assert_eq!(lost(&log, &[(3, Some(b"3".to_vec()))]), 0);
        assert_eq!(lost(&log, &[(3, Some(b"1".to_vec()))]), 2);
        assert_eq!(lost(&log, &[(3, None)]), 3);
    }

    #[test]
    fn unavailability_runs_from_the_first_failure_to_the_next_success() {
        let w = |slot: u16, sent, done, ok| {
            let mut r = set(
                0,
                sent,
                done,
                if ok { Outcome::Ok } else { Outcome::Error },
                1,
            );
            r.slot = slot;
            r
        };
        let shard_of_slot = [0, 1, NO_SHARD];
        let log = [
            w(0, 0, 1, true),
            w(0, 10, 11, false),
            w(1, 12, 13, false),
            w(0, 20, 21, false),
            w(0, 30, 35, true),
            w(0, 40, 41, false),
            w(0, 50, 52, false),
            w(2, 60, 61, false),
        ];
        assert_eq!(unavailability(&log, &shard_of_slot, 2, 0), [25, 1]);
        // Writes sent before `from` do not count.
        assert_eq!(unavailability(&log, &shard_of_slot, 2, 15), [15, 0]);
    }
}
