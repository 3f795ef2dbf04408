//! `one-vote-per-epoch`: a node grants at most one vote per epoch.
//!
//! Read from the `VoteGranted { to, epoch }` notes: the epoch is the
//! voter's `currentEpoch` when it voted, which it records as
//! `lastVoteEpoch` and fsyncs before the vote leaves
//! (`clusterSendFailoverAuthIfNeeded`). A voter is a node ID, so the rule
//! holds across restarts from `nodes.conf`. It is what makes an election's
//! majority unique: two replicas cannot both collect a majority in one
//! epoch if no master votes twice in it.

use std::collections::BTreeMap;

use super::Violation;
use crate::engine::SimTime;
use crate::node::bus::NodeId;

pub const NAME: &str = "one-vote-per-epoch";

/// The check: every vote seen, by (voter, epoch).
#[derive(Default)]
pub struct OneVotePerEpoch {
    votes: BTreeMap<(NodeId, u64), (SimTime, String)>,
}

impl OneVotePerEpoch {
    /// `voter` (called `voter_name`) voted for `to` in `epoch` at `at`.
    pub fn vote(
        &mut self,
        at: SimTime,
        voter: NodeId,
        voter_name: &str,
        epoch: u64,
        to: String,
    ) -> Option<Violation> {
        match self.votes.get(&(voter, epoch)) {
            Some((first_at, first_to)) => Some(Violation {
                check: NAME,
                at,
                message: format!(
                    "{voter_name} voted twice in epoch {epoch}: for {first_to} at {}, for {to} at {}",
                    crate::world::fmt_time(*first_at),
                    crate::world::fmt_time(at)
                ),
            }),
            None => {
                self.votes.insert((voter, epoch), (at, to));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::SEC;

    #[test]
    fn a_second_vote_in_an_epoch_is_a_violation() {
        let (a, b) = (NodeId([1; 20]), NodeId([2; 20]));
        let mut c = OneVotePerEpoch::default();
        assert!(c.vote(SEC, a, "node-1", 7, "node-5".into()).is_none());
        // Another voter in the same epoch, the same voter in another epoch.
        assert!(c.vote(SEC, b, "node-2", 7, "node-5".into()).is_none());
        assert!(c.vote(2 * SEC, a, "node-1", 8, "node-6".into()).is_none());
        let v = c
            .vote(3 * SEC, a, "node-1", 7, "node-6".into())
            .expect("violation");
        assert_eq!(v.check, NAME);
        assert_eq!(v.at, 3 * SEC);
        assert_eq!(
            v.message,
            "node-1 voted twice in epoch 7: for node-5 at 1.000s, for node-6 at 3.000s"
        );
    }
}
