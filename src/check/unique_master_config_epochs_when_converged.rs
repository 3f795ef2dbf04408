//! `unique-master-config-epochs-when-converged`: no two running masters
//! keep the same config epoch for a node timeout while the cluster is
//! converged.
//!
//! *Converged* is [`super::converged`]: no partition or one-way rule in
//! force, and every running node of the cluster reports `cluster_state:ok`,
//! all of them see the same slot → master map, and every slot's master in it
//! is a running master. Dead and paused processes are left out.
//!
//! Equal config epochs happen: two masters bumping their epoch without
//! consensus at once (`CLUSTER FAILOVER TAKEOVER`), nodes that start with
//! epoch 0. Redis resolves them in `clusterHandleConfigEpochCollision`: when
//! a master gets a PING or PONG from a master with its own config epoch and
//! a smaller node ID, it takes `currentEpoch + 1`. In a converged cluster
//! every node pings every other at least every `cluster-node-timeout / 2`
//! (`clusterCron`), so a collision outliving a whole node timeout of
//! convergence means the resolution is broken.

use super::Violation;
use crate::engine::SimTime;

pub const NAME: &str = "unique-master-config-epochs-when-converged";

/// The first two of `masters` (process, config epoch) with the same
/// config epoch, smallest epoch first, with that epoch.
pub fn first_collision(masters: &[(u32, u64)]) -> Option<(u32, u32, u64)> {
    let mut by_epoch = masters.to_vec();
    by_epoch.sort_by_key(|&(p, e)| (e, p));
    by_epoch
        .windows(2)
        .find(|w| w[0].1 == w[1].1)
        .map(|w| (w[0].0, w[1].0, w[0].1))
}

/// The check: how long a collision has lasted in a converged cluster.
pub struct UniqueMasterConfigEpochs {
    /// How long a collision may last while converged (the node timeout).
    window: SimTime,
    /// Since when a collision and convergence have held together, and the
    /// collision then (as text).
    since: Option<(SimTime, String)>,
    /// The current spell was already reported.
    reported: bool,
}

impl UniqueMasterConfigEpochs {
    pub fn new(window: SimTime) -> Self {
        UniqueMasterConfigEpochs {
            window,
            since: None,
            reported: false,
        }
    }

    /// What holds from `now` on: `Some(collision)` when two running masters
    /// share a config epoch *and* the cluster is converged, else `None`.
    pub fn update(&mut self, now: SimTime, collision: Option<String>) {
        match collision {
            None => {
                self.since = None;
                self.reported = false;
            }
            Some(c) => {
                if self.since.is_none() && !self.reported {
                    self.since = Some((now, c));
                }
            }
        }
    }

    /// When the current spell becomes a violation, if one is under way.
    pub fn deadline(&self) -> Option<SimTime> {
        self.since.as_ref().map(|(since, _)| since + self.window)
    }

    /// Called before the state changes at `now` (it held until now): the
    /// violation if it lasted longer than the window.
    pub fn due(&mut self, now: SimTime) -> Option<Violation> {
        self.overdue(|deadline| deadline < now)
    }

    /// At the end of the run (`end`): the state held through it.
    pub fn finish(&mut self, end: SimTime) -> Option<Violation> {
        self.overdue(|deadline| deadline <= end)
    }

    fn overdue(&mut self, passed: impl Fn(SimTime) -> bool) -> Option<Violation> {
        let (since, what) = self.since.as_ref()?;
        let deadline = since + self.window;
        if !passed(deadline) {
            return None;
        }
        let v = Violation {
            check: NAME,
            at: deadline,
            message: format!(
                "{what} since {} while the cluster is converged, for {} (the node timeout) without being resolved",
                crate::world::fmt_time(*since),
                crate::world::fmt_time(self.window)
            ),
        };
        self.since = None;
        self.reported = true;
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{MS, SEC};

    #[test]
    fn collisions_are_found_by_epoch() {
        assert_eq!(first_collision(&[(0, 3), (1, 4), (2, 5)]), None);
        assert_eq!(
            first_collision(&[(4, 9), (0, 3), (1, 9), (2, 3)]),
            Some((0, 2, 3))
        );
    }

    #[test]
    fn a_collision_outliving_the_window_while_converged_is_reported_once() {
        let mut c = UniqueMasterConfigEpochs::new(5 * SEC);
        let what = || Some("node-1 and node-2 have config epoch 3".to_string());
        c.update(10 * SEC, what());
        assert!(c.due(15 * SEC).is_none(), "exactly the window: not yet");
        c.update(15 * SEC, what());
        let v = c.due(15 * SEC + MS).expect("violation");
        assert_eq!(v.check, NAME);
        assert_eq!(v.at, 15 * SEC);
        assert_eq!(
            v.message,
            "node-1 and node-2 have config epoch 3 since 10.000s while the cluster is converged, for 5.000s (the node timeout) without being resolved"
        );
        // The same spell is not reported again.
        c.update(16 * SEC, what());
        assert!(c.finish(60 * SEC).is_none());
        // A new spell after the collision (or convergence) ended is.
        c.update(17 * SEC, None);
        c.update(18 * SEC, what());
        assert_eq!(c.finish(23 * SEC).map(|v| v.at), Some(23 * SEC));
    }

    #[test]
    fn a_collision_resolved_in_time_or_not_converged_is_fine() {
        let mut c = UniqueMasterConfigEpochs::new(5 * SEC);
        c.update(10 * SEC, Some("x".into()));
        c.update(14 * SEC, None);
        assert!(c.due(30 * SEC).is_none());
        assert!(c.finish(30 * SEC).is_none());
    }
}
