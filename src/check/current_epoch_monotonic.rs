//! `current-epoch-monotonic`: a node's `currentEpoch` never decreases while
//! it runs, and a restarted node starts with at least the `currentEpoch` of
//! the `nodes.conf` it restarts from.
//!
//! Across a restart the bound is what survived on disk, not the last value
//! in memory, because that is what Redis guarantees: `clusterProcessPacket`
//! raises `currentEpoch` to a sender's without saving the configuration
//! (cluster.c, "Update our currentEpoch if we see a newer epoch"), so a
//! node killed before its next save restarts with the older value and
//! learns the newer one again from the next PING. What Redis does save,
//! with an fsync, before acting on it is every epoch it creates or votes in:
//! an election (`failover_auth_sent`), a vote (`lastVoteEpoch`), a new
//! config epoch (collision, takeover, `SET-CONFIG-EPOCH`). So after `kill`
//! the bound is the last `nodes.conf` written, and after `crash-host` the
//! last one fsynced (the one the host keeps); a restarted node below it is a
//! violation, a node back at that value is not. (`clusterLoadConfig` also
//! raises `currentEpoch` to the greatest config epoch in the file.)

use super::Violation;
use crate::engine::SimTime;

pub const NAME: &str = "current-epoch-monotonic";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Life {
    /// Not seen yet.
    Unknown,
    /// Incarnation `inc` runs with this `currentEpoch`.
    Running { inc: u32, epoch: u64 },
    /// Dead; the `currentEpoch` of the `nodes.conf` it left, if any.
    Down { persisted: Option<u64> },
}

/// The check, one entry per process.
pub struct CurrentEpochMonotonic {
    procs: Vec<Life>,
}

impl CurrentEpochMonotonic {
    pub fn new(procs: usize) -> Self {
        CurrentEpochMonotonic {
            procs: vec![Life::Unknown; procs],
        }
    }

    /// Process `p` (called `name`), incarnation `inc`, runs (or is paused)
    /// with `currentEpoch` `epoch` at `now`.
    pub fn running(
        &mut self,
        now: SimTime,
        p: u32,
        name: &str,
        inc: u32,
        epoch: u64,
    ) -> Option<Violation> {
        let message = match self.procs[p as usize] {
            Life::Running { inc: i, epoch: e } if i == inc && epoch < e => {
                Some(format!("{name}: currentEpoch went down from {e} to {epoch}"))
            }
            Life::Down {
                persisted: Some(f),
            } if epoch < f => Some(format!(
                "{name} restarted with currentEpoch {epoch}, below the {f} of the nodes.conf it restarted from"
            )),
            _ => None,
        };
        self.procs[p as usize] = Life::Running { inc, epoch };
        message.map(|message| Violation {
            check: NAME,
            at: now,
            message,
        })
    }

    /// Process `p` died; `persisted` is the `currentEpoch` of the
    /// `nodes.conf` that survives it.
    pub fn down(&mut self, p: u32, persisted: Option<u64>) {
        self.procs[p as usize] = Life::Down { persisted };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decrease_while_running_is_a_violation() {
        let mut c = CurrentEpochMonotonic::new(2);
        assert!(c.running(0, 1, "node-2", 1, 6).is_none());
        assert!(c.running(10, 1, "node-2", 1, 7).is_none());
        assert!(c.running(20, 1, "node-2", 1, 7).is_none());
        let v = c.running(30, 1, "node-2", 1, 5).expect("violation");
        assert_eq!(v.check, NAME);
        assert_eq!(v.at, 30);
        assert_eq!(v.message, "node-2: currentEpoch went down from 7 to 5");
    }

    #[test]
    fn a_restart_is_held_to_what_survived_on_disk_not_to_memory() {
        let mut c = CurrentEpochMonotonic::new(1);
        c.running(0, 0, "node-1", 1, 9);
        // The last save had 8 (9 was learned from a PING, not saved).
        c.down(0, Some(8));
        assert!(c.running(10, 0, "node-1", 2, 8).is_none());
        c.down(0, Some(8));
        let v = c.running(20, 0, "node-1", 3, 7).expect("violation");
        assert_eq!(
            v.message,
            "node-1 restarted with currentEpoch 7, below the 8 of the nodes.conf it restarted from"
        );
        // Without a nodes.conf there is no bound.
        c.down(0, None);
        assert!(c.running(30, 0, "node-1", 4, 0).is_none());
    }
}
