//! `split-brain`: an anomaly Redis Cluster has by design, measured rather
//! than flagged. A *split-brain window* is an interval during which two or
//! more running nodes would each accept writes for the same slot: each is a
//! master in its own view, owns the slot in its own slot map, and reports
//! `cluster_state:ok` (a node in the minority turns `fail` only after about
//! a node timeout; an old master that was paused or cut off serves its old
//! slots until a message tells it of its successor).
//!
//! Recomputed whenever a node's role, slot map, state or liveness changes:
//! each accepting node's own slots are OR-ed a word at a time; slots seen
//! twice are the split.

use crate::engine::SimTime;
use crate::node::bus::SlotBitmap;

pub const NAME: &str = "split-brain";

/// One window: when, how many slots at most, and who accepted writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    pub from: SimTime,
    /// `None` while open.
    pub to: Option<SimTime>,
    /// The most slots accepted twice at one moment.
    pub slots: u32,
    /// The processes that accepted writes for a doubly-accepted slot.
    pub procs: Vec<u32>,
}

/// The windows of a run.
#[derive(Default)]
pub struct SplitBrain {
    windows: Vec<Window>,
}

impl SplitBrain {
    /// At `now`, these processes accept writes for these slots.
    pub fn update<'a>(
        &mut self,
        now: SimTime,
        accepting: impl Iterator<Item = (u32, &'a SlotBitmap)>,
    ) {
        let mut once = SlotBitmap::default();
        let mut twice = SlotBitmap::default();
        let accepting: Vec<(u32, &SlotBitmap)> = accepting.collect();
        for (_, slots) in &accepting {
            for w in 0..once.0.len() {
                twice.0[w] |= once.0[w] & slots.0[w];
                once.0[w] |= slots.0[w];
            }
        }
        let count: u32 = twice.0.iter().map(|w| w.count_ones()).sum();
        let open = self.windows.last_mut().filter(|w| w.to.is_none());
        if count == 0 {
            if let Some(w) = open {
                w.to = Some(now);
            }
            return;
        }
        let procs: Vec<u32> = accepting
            .iter()
            .filter(|(_, s)| s.0.iter().zip(twice.0.iter()).any(|(a, b)| a & b != 0))
            .map(|(p, _)| *p)
            .collect();
        match open {
            Some(w) => {
                w.slots = w.slots.max(count);
                for p in procs {
                    if !w.procs.contains(&p) {
                        w.procs.push(p);
                    }
                }
            }
            None => self.windows.push(Window {
                from: now,
                to: None,
                slots: count,
                procs,
            }),
        }
    }

    /// Close a window still open at the end of the run.
    pub fn finish(&mut self, end: SimTime) {
        if let Some(w) = self.windows.last_mut().filter(|w| w.to.is_none()) {
            w.to = Some(end);
        }
    }

    pub fn windows(&self) -> &[Window] {
        &self.windows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(range: std::ops::Range<usize>) -> SlotBitmap {
        let mut b = SlotBitmap::default();
        for s in range {
            b.set(s);
        }
        b
    }

    #[test]
    fn a_window_opens_when_two_nodes_accept_one_slot_and_closes_after() {
        let (a, b) = (slots(0..100), slots(50..200));
        let c = slots(200..300);
        let mut sb = SplitBrain::default();
        sb.update(10, [(0, &a), (2, &c)].into_iter());
        assert!(sb.windows().is_empty());
        sb.update(20, [(0, &a), (1, &b), (2, &c)].into_iter());
        sb.update(25, [(0, &a), (1, &b)].into_iter());
        sb.update(30, [(1, &b)].into_iter());
        sb.update(40, [(0, &a), (1, &b)].into_iter());
        sb.finish(50);
        assert_eq!(
            sb.windows(),
            &[
                Window {
                    from: 20,
                    to: Some(30),
                    slots: 50,
                    procs: vec![0, 1]
                },
                Window {
                    from: 40,
                    to: Some(50),
                    slots: 50,
                    procs: vec![0, 1]
                },
            ]
        );
    }
}
