//! `replica-offset-not-ahead`: a replica connected to its master has never
//! processed more of the replication stream than the master has produced.
//!
//! Read after every event that reaches a replica whose link is up
//! (`master_link_status:up`, `repl_state` CONNECTED): its processed offset
//! (`replicationGetSlaveOffset`, what `INFO replication` calls
//! `slave_repl_offset`) against `master_repl_offset` of the process at the
//! address it replicates from, when both follow the same stream (the same
//! replication ID: a link can stay up to a crashed incarnation while a new
//! one, with a new ID and offset 0, listens at the address). A replica only
//! applies what its master sent,
//! so the master is always at or ahead; a replica ahead would mean it holds
//! writes its master never had (a PSYNC accepted at a wrong offset, a
//! stream applied twice). Reported once per replica.

use super::Violation;
use crate::engine::SimTime;

pub const NAME: &str = "replica-offset-not-ahead";

/// The check: which replicas were reported already (by process).
pub struct ReplicaOffsetNotAhead {
    reported: Vec<bool>,
}

impl ReplicaOffsetNotAhead {
    pub fn new(procs: usize) -> Self {
        ReplicaOffsetNotAhead {
            reported: vec![false; procs],
        }
    }

    /// Replica `p` (called `name`), connected to `master`, has processed
    /// `offset`; its master is at `master_offset`.
    pub fn observe(
        &mut self,
        at: SimTime,
        p: u32,
        name: &str,
        offset: i64,
        master: &str,
        master_offset: i64,
    ) -> Option<Violation> {
        if offset <= master_offset || self.reported[p as usize] {
            return None;
        }
        self.reported[p as usize] = true;
        Some(Violation {
            check: NAME,
            at,
            message: format!(
                "{name} processed replication offset {offset}, ahead of its master {master} at {master_offset}"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_ahead_of_its_master_is_reported_once() {
        let mut c = ReplicaOffsetNotAhead::new(2);
        assert_eq!(c.observe(1, 1, "node-2", 100, "node-1", 100), None);
        let v = c
            .observe(2, 1, "node-2", 101, "node-1", 100)
            .expect("ahead");
        assert_eq!(v.check, NAME);
        assert_eq!(
            v.message,
            "node-2 processed replication offset 101, ahead of its master node-1 at 100"
        );
        assert_eq!(c.observe(3, 1, "node-2", 200, "node-1", 100), None);
    }
}
