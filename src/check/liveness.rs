//! `liveness`: after the last fault, when Redis can recover on its own, the
//! cluster is converged again within a bound derived from the node timeout.
//!
//! **When it applies.** Each fault (and the moment the cluster is created,
//! or the start of a run from a dump) starts an obligation, judged on the
//! state right after it ([`recoverable`]): no partition or one-way rule in
//! force, no `loss` above 0 so far in the run, all 16384 slots assigned in
//! the slot map most running nodes hold, a majority of the masters in that
//! map running (the quorum for FAIL and for votes: `size / 2 + 1`), and
//! every master in it that is not running (dead or paused) either has a
//! running replica that may fail over (`cluster-replica-no-failover no`) or
//! has been replaced already (a running master claims all its slots, as
//! after `CLUSTER FAILOVER TAKEOVER`). A later fault replaces the
//! obligation, so a `heal`, `resume` or `restart` ending the last fault
//! starts the one that counts.
//!
//! A replica *may* fail over when `cluster-replica-no-failover` is off and
//! Redis's data-age test (`cluster-replica-validity-factor`) would pass when
//! its master can be FAIL at the latest, `2·NT` and a second after the
//! fault: one that never synced (down "since ever") may not. While the
//! obligation waits, a change that leaves the cluster unable to recover on
//! its own ends it ([`Liveness::lapse`]).
//!
//! **What must happen.** The cluster is *converged* ([`super::converged`]):
//! every running node reports `cluster_state:ok`, they all see the same
//! slot → master map, and every slot's master in it is running.
//!
//! **The bound** ([`bound`]) is the longer of the two ways Redis recovers,
//! with `NT` = `cluster-node-timeout`, `R` the most replicas of a master:
//!
//! - *a failover* (a master is gone): detection `2·NT + 300 ms` (a PING is
//!   sent once the last PONG is `NT/2` old, PFAIL `NT` later, FAIL once the
//!   failure reports of a majority have reached a node, which takes at
//!   most one more `NT/2` since every node pings every other that often and
//!   gossips every PFAIL node; plus three 100 ms cron ticks), then the
//!   election `2·(1000 ms·R) + 2·A + 100 ms` (`A` = auth timeout =
//!   `max(2·NT, 2000 ms)`; an election starts `500 + random(500) +
//!   1000·rank` ms after FAIL with rank < R, and one failed round is allowed
//!   for: the retry starts `2·A` after the first), then propagation
//!   `NT/2 + 100 ms` (nodes that missed the winner's PONG broadcast learn
//!   the new owner from the next PING or UPDATE);
//! - *a return* (a node healed, resumed or restarted): reconnection
//!   `NT + 200 ms` (a link waiting for a PONG is dropped after `NT` and
//!   reconnected at the next cron), then the longest of: FAIL cleared on a
//!   master still serving its slots (`CLUSTER_FAIL_UNDO_TIME_MULT · NT`
//!   after it was set, learned at the next PING, `2.5·NT + 200 ms`), the
//!   rejoin delay of a master that was in a minority (`NT` clamped to
//!   500..5000 ms) and `CLUSTER_WRITABLE_DELAY` (2000 ms) of a restarted
//!   master; plus a cron tick.
//!
//! Plus ten one-way network latencies (the messages on the way: FAIL,
//! vote request and ack, PONG, UPDATE, reconnection). For the default
//! `NT = 15 s` and one replica this is 100 s; for `NT = 5 s`, 35 s. A
//! second failed election in a row (split votes twice) would exceed it;
//! Redis gives no hard bound there, and such a run is reported.
//!
//! A standalone node (`cluster.mode = "standalone"`) has no cluster: it is
//! converged when it runs, and an obligation applies only if it runs after
//! the fault (nothing takes over for a dead or paused one).
//!
//! A run that ends before the bound without having converged is `unknown`
//! (not enough quiet time), not a violation.

use super::Violation;
use crate::engine::{SimTime, MS};
use crate::node::slots::CLUSTER_SLOTS;
use crate::node::{MAX_REJOIN_DELAY_MS, MIN_REJOIN_DELAY_MS, WRITABLE_DELAY_MS};

pub const NAME: &str = "liveness";

/// `CLUSTER_FAIL_UNDO_TIME_MULT`.
const FAIL_UNDO_TIME_MULT: u64 = crate::node::FAIL_UNDO_TIME_MULT as u64;
/// One `clusterCron` period, ms.
const CRON_MS: u64 = crate::node::CRON_PERIOD / MS;

/// The time the cluster has to converge after a fault (module docs), for
/// node timeout `nt_ms`, at most `replicas` replicas per master (at least 1
/// is assumed) and one-way network latency up to `latency`.
/// The bound with cluster mode off and no Sentinel: replicas reconnect
/// within a second and resync (`repl-diskless-sync-delay`, 5 s, the
/// transfer and the load): 30 s, plus ten network latencies.
pub fn replication_bound(latency: SimTime) -> SimTime {
    30_000 * MS + 10 * latency
}

/// The bound with Sentinel: `down-after-milliseconds` to S_DOWN, a second
/// to O_DOWN, two elections (a failed one is retried after `2 ×
/// failover-timeout`), the promotion and the replicas' reconfiguration
/// (up to `failover-timeout`), then an old master's conversion (8 s after
/// it reports itself master) and resync ([`replication_bound`]).
pub fn sentinel_bound(sp: &crate::scenario::SentinelSpec, latency: SimTime) -> SimTime {
    let failover = sp.down_after_ms + 1000 + 3 * sp.failover_timeout_ms;
    (failover + 8000) * MS + replication_bound(latency)
}

pub fn bound(nt_ms: u64, replicas: u64, latency: SimTime) -> SimTime {
    let auth_timeout = (2 * nt_ms).max(2000);
    let detection = 2 * nt_ms + 3 * CRON_MS;
    let election = 2 * 1000 * replicas.max(1) + 2 * auth_timeout + CRON_MS;
    let propagation = nt_ms / 2 + CRON_MS;
    let failover = detection + election + propagation;
    let reconnect = nt_ms + 2 * CRON_MS;
    let fail_undo = FAIL_UNDO_TIME_MULT * nt_ms + nt_ms / 2 + 2 * CRON_MS;
    let rejoin = nt_ms.clamp(MIN_REJOIN_DELAY_MS as u64, MAX_REJOIN_DELAY_MS as u64);
    let ret = reconnect + fail_undo.max(rejoin).max(WRITABLE_DELAY_MS as u64) + CRON_MS;
    failover.max(ret) * MS + 10 * latency
}

/// A master of the slot map in force when a fault happened.
#[derive(Clone, Debug, PartialEq)]
pub struct Shard {
    pub name: String,
    /// The master's process runs (not dead, not paused) with the same ID.
    pub running: bool,
    /// It runs but does not claim some of the slots the map gives it.
    pub disowned: bool,
    /// A running master other than it claims all its slots already (a
    /// takeover that the others have not heard of yet).
    pub replaced: bool,
    /// Running replicas of it.
    pub replicas: u32,
    /// Those that may fail over (`cluster-replica-no-failover no`).
    pub failover_replicas: u32,
}

/// What the condition of liveness reads right after a fault.
#[derive(Clone, Debug, PartialEq)]
pub struct Situation {
    /// A partition, one-way rule or blocked port is in force.
    pub partitioned: bool,
    /// A `loss` above 0 has been in force.
    pub lossy: bool,
    /// Slots assigned in the slot map most running nodes hold.
    pub assigned_slots: usize,
    /// Some running node has a slot open (`MIGRATING`/`IMPORTING`): a
    /// migration in progress, or one interrupted that only `redis-cli
    /// --cluster fix` closes.
    pub open_slots: bool,
    /// The masters of that map.
    pub shards: Vec<Shard>,
}

/// `Ok` when Redis can recover from `s` on its own, else why not.
pub fn recoverable(s: &Situation) -> Result<(), String> {
    if s.partitioned {
        return Err("a partition, one-way rule or blocked port is in force".into());
    }
    if s.lossy {
        return Err("the network loses messages (loss > 0)".into());
    }
    if s.open_slots {
        return Err(
            "slots are open (a migration in progress or interrupted; `redis-cli --cluster fix` closes them)"
                .into(),
        );
    }
    if s.assigned_slots < CLUSTER_SLOTS {
        return Err(format!(
            "only {} of {CLUSTER_SLOTS} slots are assigned",
            s.assigned_slots
        ));
    }
    let running = s.shards.iter().filter(|m| m.running || m.replaced).count();
    let quorum = s.shards.len() / 2 + 1;
    if running < quorum {
        return Err(format!(
            "only {running} of {} masters are running, fewer than the {quorum} needed to fail the others over",
            s.shards.len()
        ));
    }
    if let Some(m) = s.shards.iter().find(|m| m.disowned) {
        return Err(format!(
            "{} does not claim all the slots the others give it (`redis-cli --cluster fix` assigns them)",
            m.name
        ));
    }
    if let Some(m) = s
        .shards
        .iter()
        .find(|m| !m.running && !m.replaced && m.failover_replicas == 0)
    {
        return Err(format!(
            "{} is down and has no running replica that may fail over",
            m.name
        ));
    }
    Ok(())
}

/// Where the last obligation stands.
#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    /// Nothing started yet.
    Idle,
    /// Redis cannot be expected to recover from what `cause` left.
    NotApplicable {
        cause: String,
        reason: String,
    },
    Pending {
        cause: String,
        deadline: SimTime,
    },
    Recovered {
        cause: String,
        since: SimTime,
        at: SimTime,
        bound: SimTime,
    },
    Violated {
        cause: String,
        deadline: SimTime,
    },
    /// The run ended before the deadline, not converged.
    Unknown {
        cause: String,
        deadline: SimTime,
    },
}

/// The check.
pub struct Liveness {
    status: Status,
    since: SimTime,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness {
            status: Status::Idle,
            since: 0,
        }
    }
}

impl Liveness {
    /// A fault (described by `cause`) at `now`: a new obligation with this
    /// bound, or none for this reason.
    pub fn start(&mut self, now: SimTime, cause: String, bound: Result<SimTime, String>) {
        self.since = now;
        self.status = match bound {
            Ok(b) => Status::Pending {
                cause,
                deadline: now + b,
            },
            Err(reason) => Status::NotApplicable { cause, reason },
        };
    }

    /// The fault that started the obligation waiting, and when.
    pub fn since(&self) -> SimTime {
        self.since
    }

    /// While an obligation waits, the cluster changed into one Redis cannot
    /// recover on its own (`reason`): the obligation lapses. (The state
    /// right after a fault can hide it: a master cut off in a minority,
    /// replaced, then told of its successor only after the successor died,
    /// is a replica that never synced with it.)
    pub fn lapse(&mut self, reason: String) {
        if let Status::Pending { cause, .. } = &mut self.status {
            self.status = Status::NotApplicable {
                cause: std::mem::take(cause),
                reason: format!("then {reason}"),
            };
        }
    }

    /// The deadline of the obligation waiting for convergence, if any.
    pub fn deadline(&self) -> Option<SimTime> {
        match self.status {
            Status::Pending { deadline, .. } => Some(deadline),
            _ => None,
        }
    }

    /// Whether an obligation waits for convergence.
    pub fn pending(&self) -> bool {
        matches!(self.status, Status::Pending { .. })
    }

    /// The cluster is converged at `now` (call [`Liveness::due`] first).
    pub fn converged(&mut self, now: SimTime) {
        if let Status::Pending { cause, deadline } = &mut self.status {
            self.status = Status::Recovered {
                cause: std::mem::take(cause),
                since: self.since,
                at: now,
                bound: *deadline - self.since,
            };
        }
    }

    /// Before anything changes at `now` (the state held until now): the
    /// violation if the deadline passed unconverged; `why` says what was
    /// still wrong.
    pub fn due(&mut self, now: SimTime, why: impl FnOnce() -> String) -> Option<Violation> {
        self.overdue(|d| d < now, why)
    }

    /// At the end of the run: a violation if the deadline passed, else the
    /// status becomes `Unknown`.
    pub fn finish(&mut self, end: SimTime, why: impl FnOnce() -> String) -> Option<Violation> {
        let v = self.overdue(|d| d <= end, why);
        if let Status::Pending { cause, deadline } = &mut self.status {
            self.status = Status::Unknown {
                cause: std::mem::take(cause),
                deadline: *deadline,
            };
        }
        v
    }

    fn overdue(
        &mut self,
        passed: impl Fn(SimTime) -> bool,
        why: impl FnOnce() -> String,
    ) -> Option<Violation> {
        let Status::Pending { cause, deadline } = &mut self.status else {
            return None;
        };
        if !passed(*deadline) {
            return None;
        }
        let (cause, deadline) = (std::mem::take(cause), *deadline);
        let v = Violation {
            check: NAME,
            at: deadline,
            message: format!(
                "not converged {} after {cause}: {}",
                crate::world::fmt_time(deadline - self.since),
                why()
            ),
        };
        self.status = Status::Violated { cause, deadline };
        Some(v)
    }

    pub fn status(&self) -> &Status {
        &self.status
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::SEC;

    fn shard(name: &str, running: bool, failover_replicas: u32) -> Shard {
        Shard {
            name: name.into(),
            running,
            disowned: false,
            replaced: false,
            replicas: failover_replicas,
            failover_replicas,
        }
    }

    fn healthy() -> Situation {
        Situation {
            partitioned: false,
            lossy: false,
            assigned_slots: CLUSTER_SLOTS,
            open_slots: false,
            shards: vec![
                shard("node-1", true, 1),
                shard("node-2", true, 1),
                shard("node-3", true, 1),
            ],
        }
    }

    #[test]
    fn bound_follows_the_formula() {
        // NT 5 s, one replica: failover 10.3 + (2 + 20 + 0.1) + 2.6 = 35 s;
        // return 5.2 + 12.7 + 0.1 = 18 s.
        assert_eq!(bound(5000, 1, 0), 35 * SEC);
        assert_eq!(bound(5000, 0, 0), 35 * SEC, "at least one replica");
        // NT 15 s: 30.3 + (2 + 60 + 0.1) + 7.6 = 100 s.
        assert_eq!(bound(15_000, 1, 0), 100 * SEC);
        // NT 3 s, five replicas: 6.3 + (10 + 12 + 0.1) + 1.6 = 30 s.
        assert_eq!(bound(3000, 5, 0), 30 * SEC);
        // NT 100 ms: the auth timeout's 2 s floor and the writable delay
        // dominate: 0.5 + (2 + 4 + 0.1) + 0.15 = 6.75 s.
        assert_eq!(bound(100, 1, 0), 6750 * MS);
        assert_eq!(bound(5000, 1, 20 * MS), 35 * SEC + 200 * MS);
    }

    #[test]
    fn recoverable_when_healed_or_a_minority_of_masters_can_be_replaced() {
        assert_eq!(recoverable(&healthy()), Ok(()));
        let mut s = healthy();
        s.shards[0] = shard("node-1", false, 1);
        assert_eq!(recoverable(&s), Ok(()));
    }

    #[test]
    fn not_recoverable_without_a_replica_that_may_fail_over() {
        let mut s = healthy();
        s.shards[1] = shard("node-2", false, 0);
        assert_eq!(
            recoverable(&s),
            Err("node-2 is down and has no running replica that may fail over".into())
        );
        // Unless a replica has taken its slots over already.
        s.shards[1].replaced = true;
        assert_eq!(recoverable(&s), Ok(()));
        // Replaced masters count towards the majority.
        s.shards[0] = shard("node-1", false, 1);
        assert_eq!(recoverable(&s), Ok(()));
    }

    #[test]
    fn not_recoverable_with_open_slots() {
        let mut s = healthy();
        s.open_slots = true;
        assert!(recoverable(&s).unwrap_err().starts_with("slots are open"));
    }

    #[test]
    fn not_recoverable_without_a_majority_of_masters() {
        let mut s = healthy();
        s.shards[0] = shard("node-1", false, 1);
        s.shards[1] = shard("node-2", false, 1);
        assert_eq!(
            recoverable(&s),
            Err(
                "only 1 of 3 masters are running, fewer than the 2 needed to fail the others over"
                    .into()
            )
        );
        // 3 of 5 is a majority, 2 of 4 is not.
        let five: Vec<Shard> = (0..5).map(|i| shard("m", i < 3, 1)).collect();
        s.shards = five;
        assert_eq!(recoverable(&s), Ok(()));
        s.shards.pop();
        s.shards[2].running = false;
        assert!(recoverable(&s).is_err());
    }

    #[test]
    fn not_recoverable_while_partitioned_lossy_or_uncovered() {
        let mut s = healthy();
        s.partitioned = true;
        assert_eq!(
            recoverable(&s),
            Err("a partition, one-way rule or blocked port is in force".into())
        );
        let mut s = healthy();
        s.lossy = true;
        assert!(recoverable(&s).is_err());
        let mut s = healthy();
        s.assigned_slots = 16000;
        assert_eq!(
            recoverable(&s),
            Err("only 16000 of 16384 slots are assigned".into())
        );
    }

    #[test]
    fn converging_in_time_is_recovered() {
        let mut l = Liveness::default();
        l.start(10 * SEC, "kill node-1 at 10.000s".into(), Ok(35 * SEC));
        assert!(l.pending());
        assert!(l.due(18 * SEC, || unreachable!()).is_none());
        l.converged(18 * SEC);
        assert_eq!(
            *l.status(),
            Status::Recovered {
                cause: "kill node-1 at 10.000s".into(),
                since: 10 * SEC,
                at: 18 * SEC,
                bound: 35 * SEC
            }
        );
        assert!(l.finish(100 * SEC, || unreachable!()).is_none());
    }

    #[test]
    fn not_converging_by_the_deadline_is_a_violation() {
        let mut l = Liveness::default();
        l.start(10 * SEC, "heal at 10.000s".into(), Ok(35 * SEC));
        assert!(l.due(45 * SEC, || unreachable!()).is_none());
        let v = l
            .due(45 * SEC + 1, || "node-1 reports cluster_state:fail".into())
            .expect("violation");
        assert_eq!(v.check, NAME);
        assert_eq!(v.at, 45 * SEC);
        assert_eq!(
            v.message,
            "not converged 35.000s after heal at 10.000s: node-1 reports cluster_state:fail"
        );
        // Converging later does not undo it.
        l.converged(50 * SEC);
        assert!(matches!(l.status(), Status::Violated { .. }));
        // At the end of a run, too.
        let mut l = Liveness::default();
        l.start(10 * SEC, "x".into(), Ok(35 * SEC));
        assert!(l.finish(45 * SEC, || "why".into()).is_some());
    }

    #[test]
    fn a_run_ending_before_the_deadline_is_unknown_and_a_new_fault_replaces_it() {
        let mut l = Liveness::default();
        l.start(10 * SEC, "kill node-1 at 10.000s".into(), Ok(35 * SEC));
        l.start(
            20 * SEC,
            "kill node-2 at 20.000s".into(),
            Err("node-2 is down and has no running replica that may fail over".into()),
        );
        assert!(!l.pending());
        assert!(l.due(100 * SEC, || unreachable!()).is_none());
        l.start(30 * SEC, "restart node-2 at 30.000s".into(), Ok(35 * SEC));
        assert!(l.finish(60 * SEC, || unreachable!()).is_none());
        assert_eq!(
            *l.status(),
            Status::Unknown {
                cause: "restart node-2 at 30.000s".into(),
                deadline: 65 * SEC
            }
        );
    }
}
