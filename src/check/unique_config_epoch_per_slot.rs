//! `unique-config-epoch-per-slot`: at any moment, the masters that claim a
//! slot have pairwise different config epochs.
//!
//! A master *claims* the slots of its own `myself` entry: what it would
//! serve and what it advertises in every PING and PONG, whatever the others
//! think of it. Dead processes claim nothing; a paused (`SIGSTOP`) master
//! still claims its slots (it serves them again when resumed).
//!
//! This is what makes Redis's slot ownership well defined: when two masters
//! claim a slot, every node gives it to the greater config epoch
//! (`clusterUpdateSlotsConfigWith`), and an election gives its winner an
//! epoch that a majority of masters granted once. Two claims with the same
//! epoch would leave the owner to the order in which messages arrive.
//! Redis itself breaks this on purpose when a node takes an epoch without a
//! majority's agreement (`clusterBumpConfigEpochWithoutConsensus`: `CLUSTER
//! FAILOVER TAKEOVER`, the bump that closes a slot import; or a config epoch
//! collision's bump): another node may win an election in that same epoch,
//! since taking it consumed no vote, until the collision handling separates
//! them. A pair where either epoch was taken so is not a violation (the
//! fuzzer found one: a TAKEOVER and a concurrent election both at epoch 10,
//! `tests/regressions/`).

use std::collections::BTreeSet;

use super::Violation;
use crate::engine::SimTime;
use crate::node::bus::SlotBitmap;

pub const NAME: &str = "unique-config-epoch-per-slot";

/// The slots a master claims, with its config epoch.
pub struct Claim<'a> {
    pub proc: u32,
    pub config_epoch: u64,
    /// The epoch was taken without a majority's agreement.
    pub unilateral: bool,
    pub slots: &'a SlotBitmap,
}

/// Every pair of claims `(a, b)`, `a` before `b` in `claims`, with the same
/// config epoch and a slot in common, with the first such slot; in the
/// order of `claims`. Only claims of equal epochs are compared (sorted by
/// epoch first: a 500-master cluster has 125 000 pairs, nearly all of
/// different epochs).
pub fn conflicts(claims: &[Claim]) -> Vec<(u32, u32, u64, usize)> {
    let mut order: Vec<usize> = (0..claims.len())
        .filter(|&i| !claims[i].unilateral)
        .collect();
    order.sort_by_key(|&i| (claims[i].config_epoch, i));
    let mut out = Vec::new();
    for group in order.chunk_by(|&i, &j| claims[i].config_epoch == claims[j].config_epoch) {
        for (k, &i) in group.iter().enumerate() {
            let a = &claims[i];
            for b in group[k + 1..].iter().map(|&j| &claims[j]) {
                let common = a.slots.0.iter().zip(b.slots.0.iter()).enumerate();
                if let Some((w, both)) = common
                    .map(|(w, (x, y))| (w, x & y))
                    .find(|&(_, both)| both != 0)
                {
                    let slot = w * 64 + both.trailing_zeros() as usize;
                    out.push((a.proc, b.proc, a.config_epoch, slot));
                }
            }
        }
    }
    out.sort_by_key(|&(a, b, ..)| (a, b));
    out
}

/// The check: each conflicting pair is reported once, when first seen.
#[derive(Default)]
pub struct UniqueConfigEpochPerSlot {
    reported: BTreeSet<(u32, u32, u64)>,
}

impl UniqueConfigEpochPerSlot {
    /// Look at the claims in force at `now`; `names[p]` names process `p`.
    pub fn check(&mut self, now: SimTime, claims: &[Claim], names: &[String]) -> Vec<Violation> {
        let mut out = Vec::new();
        for (a, b, epoch, slot) in conflicts(claims) {
            if self.reported.insert((a, b, epoch)) {
                out.push(Violation {
                    check: NAME,
                    at: now,
                    message: format!(
                        "{} and {} both claim slot {slot} with config epoch {epoch}",
                        names[a as usize], names[b as usize]
                    ),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(r: std::ops::RangeInclusive<usize>) -> SlotBitmap {
        let mut b = SlotBitmap::default();
        for s in r {
            b.set(s);
        }
        b
    }

    fn names() -> Vec<String> {
        (1..=4).map(|i| format!("node-{i}")).collect()
    }

    #[test]
    fn same_epoch_on_a_common_slot_is_a_violation_reported_once() {
        let (a, b) = (slots(0..=5460), slots(5000..=10922));
        let claims = [
            Claim {
                proc: 0,
                config_epoch: 7,
                unilateral: false,
                slots: &a,
            },
            Claim {
                proc: 2,
                config_epoch: 7,
                unilateral: false,
                slots: &b,
            },
        ];
        let mut c = UniqueConfigEpochPerSlot::default();
        let v = c.check(1_000_000, &claims, &names());
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].check, NAME);
        assert_eq!(v[0].at, 1_000_000);
        assert_eq!(
            v[0].message,
            "node-1 and node-3 both claim slot 5000 with config epoch 7"
        );
        assert!(c.check(2_000_000, &claims, &names()).is_empty());
    }

    #[test]
    fn different_epochs_or_disjoint_slots_are_fine() {
        let (a, b, c) = (slots(0..=5460), slots(0..=5460), slots(5461..=16383));
        let claims = [
            Claim {
                proc: 0,
                config_epoch: 1,
                unilateral: false,
                slots: &a,
            },
            // The old master, cut off, still claims them: a smaller epoch.
            Claim {
                proc: 1,
                config_epoch: 7,
                unilateral: false,
                slots: &b,
            },
            // Same epoch as node-1 (a collision), but no slot in common.
            Claim {
                proc: 2,
                config_epoch: 1,
                unilateral: false,
                slots: &c,
            },
        ];
        assert!(conflicts(&claims).is_empty());
    }

    #[test]
    fn an_epoch_taken_without_consensus_is_not_a_violation() {
        let a = slots(0..=5460);
        let claims = [
            Claim {
                proc: 0,
                config_epoch: 10,
                unilateral: true,
                slots: &a,
            },
            Claim {
                proc: 1,
                config_epoch: 10,
                unilateral: false,
                slots: &a,
            },
        ];
        assert!(conflicts(&claims).is_empty());
    }

    #[test]
    fn every_conflicting_pair_is_found() {
        let a = slots(100..=200);
        let claims: Vec<Claim> = (0..3)
            .map(|p| Claim {
                proc: p,
                config_epoch: 4,
                unilateral: false,
                slots: &a,
            })
            .collect();
        assert_eq!(
            conflicts(&claims),
            vec![(0, 1, 4, 100), (0, 2, 4, 100), (1, 2, 4, 100)]
        );
    }
}
