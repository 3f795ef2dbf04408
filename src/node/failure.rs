//! Failure reports, PFAIL → FAIL, FAIL clearing, and `clusterUpdateState()`.

use super::bus::{flags::*, Body, MsgType};
use super::slots::CLUSTER_SLOTS;
use super::{
    todo, Effect, Node, Note, FAIL_REPORT_VALIDITY_MULT, FAIL_UNDO_TIME_MULT, MAX_REJOIN_DELAY_MS,
    MIN_REJOIN_DELAY_MS, WRITABLE_DELAY_MS,
};

impl Node {
    fn node_timeout_ms(&self) -> i64 {
        self.setup.config.cluster_node_timeout_ms as i64
    }

    /// `clusterNodeAddFailureReport`: add or refresh `sender`'s report about
    /// `failing`.
    pub(super) fn add_failure_report(&mut self, failing: u32, sender: u32) {
        let now = self.now_ms;
        let n = self.nm(failing);
        if let Some(r) = n.fail_reports.iter_mut().find(|r| r.0 == sender) {
            r.1 = now;
        } else {
            n.fail_reports.push((sender, now));
        }
    }

    /// `clusterNodeCleanupFailureReports`.
    fn cleanup_failure_reports(&mut self, idx: u32) {
        let maxtime = self.node_timeout_ms() * FAIL_REPORT_VALIDITY_MULT;
        let now = self.now_ms;
        self.nm(idx).fail_reports.retain(|r| now - r.1 <= maxtime);
    }

    /// `clusterNodeDelFailureReport`.
    pub(super) fn del_failure_report(&mut self, idx: u32, sender: u32) {
        let n = self.nm(idx);
        let before = n.fail_reports.len();
        n.fail_reports.retain(|r| r.0 != sender);
        if n.fail_reports.len() != before {
            self.cleanup_failure_reports(idx);
        }
    }

    /// `clusterNodeFailureReportsCount`.
    pub(super) fn failure_reports_count(&mut self, idx: u32) -> usize {
        if self.n(idx).fail_reports.is_empty() {
            return 0;
        }
        self.cleanup_failure_reports(idx);
        self.n(idx).fail_reports.len()
    }

    /// `markNodeAsFailingIfNeeded()`.
    pub(super) fn mark_node_as_failing_if_needed(&mut self, idx: u32, out: &mut Vec<Effect>) {
        let needed_quorum = self.size / 2 + 1;
        let n = self.n(idx);
        if !n.timed_out() || n.failed() {
            return;
        }
        let mut failures = self.failure_reports_count(idx) as u32;
        if self.myself().is_master() {
            failures += 1;
        }
        if failures < needed_quorum {
            return;
        }
        let now = self.now_ms;
        let n = self.nm(idx);
        n.flags &= !PFAIL;
        n.flags |= FAIL;
        n.fail_time = now;
        let about = n.name;
        out.push(Effect::Note(Note::FailMarked { about }));
        let msg = self.build_header(MsgType::Fail, Body::Fail { about });
        self.broadcast(msg, out);
        self.todo |= todo::UPDATE_STATE | todo::SAVE_CONFIG;
    }

    /// `clearNodeFailureIfNeeded()`: called on a PONG from a FAIL node.
    pub(super) fn clear_node_failure_if_needed(&mut self, idx: u32, out: &mut Vec<Effect>) {
        let now = self.now_ms;
        let undo = self.node_timeout_ms() * FAIL_UNDO_TIME_MULT;
        let n = self.nm(idx);
        debug_assert!(n.failed());
        let about = n.name;
        if n.is_slave() || n.numslots == 0 {
            n.flags &= !FAIL;
            self.todo |= todo::UPDATE_STATE | todo::SAVE_CONFIG;
            out.push(Effect::Note(Note::FailCleared { about }));
            return;
        }
        let keep = self.setup.planted == Some(super::Planted::KeepFail);
        let n = self.nm(idx);
        if n.is_master() && n.numslots > 0 && now - n.fail_time > undo && !keep {
            n.flags &= !FAIL;
            self.todo |= todo::UPDATE_STATE | todo::SAVE_CONFIG;
            out.push(Effect::Note(Note::FailCleared { about }));
        }
    }

    /// `clusterUpdateState()`.
    pub(super) fn update_state(&mut self, out: &mut Vec<Effect>) {
        self.todo &= !todo::UPDATE_STATE;
        let now = self.now_ms;
        if self.first_call_time == 0 {
            self.first_call_time = now;
        }
        if self.myself().is_master()
            && !self.state_ok
            && now - self.first_call_time < WRITABLE_DELAY_MS
        {
            return;
        }

        // Redis checks each slot for an owner that is not FAIL; counting per
        // node is the same, as a node's `numslots` are the slots it owns.
        let mut new_ok = true;
        if self.setup.config.cluster_require_full_coverage {
            let mut covered = 0;
            for &i in &self.live {
                let n = self.n(i);
                if n.numslots > 0 && n.failed() {
                    new_ok = false;
                }
                covered += n.numslots as usize;
            }
            new_ok &= covered == CLUSTER_SLOTS;
        }

        let mut size = 0;
        let mut reachable_masters = 0;
        for &i in &self.live {
            let n = self.n(i);
            if n.is_master() && n.numslots > 0 {
                size += 1;
                if n.flags & (FAIL | PFAIL) == 0 {
                    reachable_masters += 1;
                }
            }
        }
        self.size = size;
        let needed_quorum = size / 2 + 1;
        if reachable_masters < needed_quorum {
            new_ok = false;
            self.among_minority_time = now;
        }

        if new_ok != self.state_ok {
            let rejoin_delay = self
                .node_timeout_ms()
                .clamp(MIN_REJOIN_DELAY_MS, MAX_REJOIN_DELAY_MS);
            if new_ok && self.myself().is_master() && now - self.among_minority_time < rejoin_delay
            {
                return;
            }
            self.state_ok = new_ok;
            out.push(Effect::Note(Note::StateChanged { ok: new_ok }));
        }
    }
}
