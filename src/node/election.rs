//! Replica election and promotion, manual failover and replica migration:
//! Redis 7.0.15's `clusterHandleSlaveFailover()`,
//! `clusterSendFailoverAuthIfNeeded()`, `clusterFailoverReplaceYourMaster()`,
//! `clusterBumpConfigEpochWithoutConsensus()`, `CLUSTER FAILOVER
//! [FORCE|TAKEOVER]` with MFSTART and the PAUSED header flag, and
//! `clusterHandleSlaveMigration()`.
//!
//! The replication link is not modelled yet. Until the replication work lands,
//! "my replication offset" (`replicationGetSlaveOffset()` on a replica,
//! `master_repl_offset` on a master) is `myself().repl_offset`, set with
//! [`Node::set_repl_offset`], and the link to my master is described by
//! [`Node::master_link_up`], [`Node::master_last_interaction_ms`] and
//! [`Node::repl_down_since_ms`], which default to "link up, last interaction
//! = now" (data age 0). The replication issue will drive these fields.

use std::rc::Rc;

use rand::RngExt;

use super::bus::{flags::*, mflags, Body, BusMsg, MsgType};
use super::render::CommandError;
use super::{todo, Effect, LinkId, Node, Note, NO_OWNER};

/// `CLUSTER_MF_TIMEOUT`: a manual failover is abandoned after 5 s.
pub const MF_TIMEOUT_MS: i64 = 5000;
/// `CLUSTER_MF_PAUSE_MULT`: the master pauses writes for 2 × the timeout.
pub const MF_PAUSE_MULT: i64 = 2;
/// `CLUSTER_SLAVE_MIGRATION_DELAY`.
pub const SLAVE_MIGRATION_DELAY_MS: i64 = 5000;

/// The option of `CLUSTER FAILOVER [FORCE|TAKEOVER]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailoverMode {
    Default,
    Force,
    Takeover,
}

impl FailoverMode {
    /// The command as an operator types it.
    pub fn command(self) -> &'static str {
        match self {
            FailoverMode::Default => "CLUSTER FAILOVER",
            FailoverMode::Force => "CLUSTER FAILOVER FORCE",
            FailoverMode::Takeover => "CLUSTER FAILOVER TAKEOVER",
        }
    }

    /// The optional argument as `clusterCommand` parses it (case-insensitive).
    pub fn parse(arg: Option<&str>) -> Result<FailoverMode, CommandError> {
        match arg {
            None => Ok(FailoverMode::Default),
            Some(a) if a.eq_ignore_ascii_case("force") => Ok(FailoverMode::Force),
            Some(a) if a.eq_ignore_ascii_case("takeover") => Ok(FailoverMode::Takeover),
            Some(_) => Err("ERR syntax error".into()),
        }
    }
}

/// `CLUSTER_BROADCAST_ALL` / `CLUSTER_BROADCAST_LOCAL_SLAVES`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BroadcastTarget {
    All,
    LocalSlaves,
}

/// The election and manual-failover fields of `clusterState`.
#[derive(Clone, Debug, Default)]
pub(super) struct FailoverState {
    /// Time of the previous or next election (ms).
    pub failover_auth_time: i64,
    /// Votes received so far.
    pub failover_auth_count: u32,
    /// True if we already asked for votes.
    pub failover_auth_sent: bool,
    /// This replica's rank for the current auth request.
    pub failover_auth_rank: u32,
    /// Epoch of the current election.
    pub failover_auth_epoch: u64,
    /// Manual failover time limit (ms), 0 if none in progress.
    pub mf_end: i64,
    /// Master side: the replica performing the manual failover.
    pub mf_slave: Option<u32>,
    /// Replica side: the master's offset from its first PAUSED header
    /// (`mf_master_offset`, -1 in Redis = `None`).
    pub mf_master_offset: Option<u64>,
    /// Replica side: the manual failover can start requesting votes.
    pub mf_can_start: bool,
    /// Master side: `pauseClients(PAUSE_DURING_FAILOVER, end, WRITE)`; 0 = not paused.
    pub mf_pause_end: i64,
    /// Replica side: the mode of the `CLUSTER FAILOVER` in progress (not in
    /// Redis, which logs it; kept to report the failover's kind).
    pub mf_mode: Option<FailoverMode>,
}

impl Node {
    fn election_node_timeout(&self) -> i64 {
        self.setup.config.cluster_node_timeout_ms as i64
    }

    /// `replicationGetSlaveOffset()` on a replica, `master_repl_offset` on
    /// a master (stand-in until the replication work lands).
    pub fn my_repl_offset(&self) -> u64 {
        self.myself().repl_offset
    }

    /// Set my replication offset (driven by the replication model).
    pub fn set_repl_offset(&mut self, offset: u64) {
        let me = self.myself;
        self.nm(me).repl_offset = offset;
    }

    /// Write clients are paused by a manual failover (master side).
    pub fn writes_paused(&self) -> bool {
        self.election.mf_pause_end > self.now_ms
    }

    /// A manual failover is in progress (`mf_end != 0`).
    pub fn manual_failover_in_progress(&self) -> bool {
        self.election.mf_end != 0
    }

    /// Epoch of the current or last election of this replica.
    pub fn failover_auth_epoch(&self) -> u64 {
        self.election.failover_auth_epoch
    }

    /// `clusterBroadcastPong()`.
    pub(super) fn broadcast_pong(&mut self, target: BroadcastTarget, out: &mut Vec<Effect>) {
        let me = self.myself;
        let my_master = self.n(me).slaveof;
        for k in 0..self.live.len() {
            let idx = self.live[k];
            let n = self.n(idx);
            let Some(link) = n.link else { continue };
            if idx == me || n.in_handshake() {
                continue;
            }
            if target == BroadcastTarget::LocalSlaves {
                let local_slave = n.is_slave()
                    && n.slaveof.is_some()
                    && (n.slaveof == Some(me) || n.slaveof == my_master);
                if !local_slave {
                    continue;
                }
            }
            self.send_ping(link, MsgType::Pong, out);
        }
    }

    /// `clusterGetMaxEpoch()`.
    pub(super) fn get_max_epoch(&self) -> u64 {
        self.known_nodes()
            .map(|n| n.config_epoch)
            .max()
            .unwrap_or(0)
            .max(self.current_epoch)
    }

    /// `clusterBumpConfigEpochWithoutConsensus()`: true if bumped.
    pub(super) fn bump_config_epoch_without_consensus(&mut self) -> bool {
        let max_epoch = self.get_max_epoch();
        let me = self.myself;
        let mine = self.n(me).config_epoch;
        if mine == 0 || mine != max_epoch {
            self.current_epoch += 1;
            self.nm(me).config_epoch = self.current_epoch;
            self.todo |= todo::SAVE_CONFIG | todo::FSYNC_CONFIG;
            true
        } else {
            false
        }
    }

    /// `clusterGetSlaveRank()`: how many other replicas of my master (not
    /// NOFAILOVER) advertise a greater replication offset than mine.
    pub(super) fn get_slave_rank(&self) -> u32 {
        let me = self.myself;
        let Some(master) = self.n(me).slaveof else {
            return 0;
        };
        let myoffset = self.my_repl_offset();
        self.n(master)
            .slaves
            .iter()
            .filter(|&&s| {
                let n = self.n(s);
                s != me && n.flags & NOFAILOVER == 0 && n.repl_offset > myoffset
            })
            .count() as u32
    }

    /// `isSlotUnclaimed()`.
    fn slot_is_unclaimed(&self, j: usize) -> bool {
        self.slot_owner[j] == NO_OWNER || self.owner_not_claiming_slot.get(j)
    }

    /// `clusterSendFailoverAuthIfNeeded()`: vote for `node` if every rule
    /// allows it; refusals are silent (Redis only logs them).
    pub(super) fn send_failover_auth_if_needed(
        &mut self,
        node: u32,
        request: &BusMsg,
        out: &mut Vec<Effect>,
    ) {
        let me = self.myself;
        let force_ack = request.mflags & mflags::FORCEACK != 0;
        // Only masters serving slots vote.
        if self.n(me).is_slave() || self.n(me).numslots == 0 {
            return;
        }
        // Request epoch must be >= our currentEpoch.
        if request.current_epoch < self.current_epoch {
            return;
        }
        // Already voted for this epoch.
        if self.last_vote_epoch == self.current_epoch {
            return;
        }
        // The requester must be a replica whose master is FAIL (or FORCEACK).
        let n = self.n(node);
        let Some(master) = n.slaveof.filter(|_| !n.is_master()) else {
            return;
        };
        if !self.n(master).failed() && !force_ack {
            return;
        }
        // No vote for a replica of the same master within 2 × node timeout.
        let now = self.now_ms;
        if now - self.n(master).voted_time < self.election_node_timeout() * 2 {
            return;
        }
        // Every claimed slot's owner must not have a greater config epoch.
        for j in request.myslots.iter() {
            if self.slot_is_unclaimed(j)
                || self.n(self.slot_owner[j]).config_epoch <= request.config_epoch
            {
                continue;
            }
            return;
        }
        // We can vote for this replica.
        self.last_vote_epoch = self.current_epoch;
        self.nm(master).voted_time = now;
        self.todo |= todo::SAVE_CONFIG | todo::FSYNC_CONFIG;
        // clusterSendFailoverAuth
        if let Some(link) = self.n(node).link {
            let msg = self.build_header(MsgType::FailoverAuthAck, Body::None);
            self.send_message(Some(link), Rc::new(msg), out);
        }
        let to = self.n(node).name;
        out.push(Effect::Note(Note::VoteGranted { to }));
    }

    /// `CLUSTERMSG_TYPE_FAILOVER_AUTH_ACK` in `clusterProcessPacket`.
    pub(super) fn receive_failover_auth_ack(&mut self, sender: u32, sender_current_epoch: u64) {
        let s = self.n(sender);
        if s.is_master()
            && s.numslots > 0
            && sender_current_epoch >= self.election.failover_auth_epoch
        {
            self.election.failover_auth_count += 1;
            // Maybe we reached a quorum: check ASAP.
            self.todo |= todo::HANDLE_FAILOVER;
        }
    }

    /// `CLUSTERMSG_TYPE_MFSTART` in `clusterProcessPacket`: a replica of
    /// mine asks for a manual failover.
    pub(super) fn receive_mfstart(&mut self, sender: u32, link: LinkId, out: &mut Vec<Effect>) {
        if self.n(sender).slaveof != Some(self.myself) {
            return;
        }
        self.reset_manual_failover();
        let now = self.now_ms;
        self.election.mf_end = now + MF_TIMEOUT_MS;
        self.election.mf_slave = Some(sender);
        self.election.mf_pause_end = now + MF_TIMEOUT_MS * MF_PAUSE_MULT;
        // Ping at once so the replica learns the paused offset.
        self.send_ping(link, MsgType::Ping, out);
    }

    /// The manual-failover check in the header processing of
    /// `clusterProcessPacket`: my master sent its offset while paused.
    pub(super) fn note_paused_master_offset(&mut self, sender: u32, msg_mflags: u8) {
        let me = self.n(self.myself);
        if self.election.mf_end != 0
            && me.is_slave()
            && me.slaveof == Some(sender)
            && msg_mflags & mflags::PAUSED != 0
            && self.election.mf_master_offset.is_none()
        {
            self.election.mf_master_offset = Some(self.n(sender).repl_offset);
            self.todo |= todo::HANDLE_MANUALFAILOVER;
        }
    }

    /// The `mflags` of my headers (`clusterBuildMessageHdr`).
    pub(super) fn header_mflags(&self) -> u8 {
        if self.myself().is_master() && self.election.mf_end != 0 {
            mflags::PAUSED
        } else {
            0
        }
    }

    /// `clusterCron`: ping the manual-failover replica every cron. Returns
    /// true if a ping was sent (the caller `continue`s as Redis does).
    pub(super) fn ping_mf_slave_if_needed(&mut self, idx: u32, out: &mut Vec<Effect>) -> bool {
        if self.election.mf_end != 0
            && self.myself().is_master()
            && self.election.mf_slave == Some(idx)
        {
            if let Some(link) = self.n(idx).link {
                self.send_ping(link, MsgType::Ping, out);
                return true;
            }
        }
        false
    }

    /// `resetManualFailover()`.
    pub(super) fn reset_manual_failover(&mut self) {
        let e = &mut self.election;
        if e.mf_slave.is_some() {
            // We were a master failing over: unpause regardless of outcome.
            e.mf_pause_end = 0;
        }
        e.mf_end = 0;
        e.mf_can_start = false;
        e.mf_slave = None;
        e.mf_master_offset = None;
        e.mf_mode = None;
    }

    /// `manualFailoverCheckTimeout()`.
    pub(super) fn manual_failover_check_timeout(&mut self, out: &mut Vec<Effect>) {
        if self.election.mf_end != 0 && self.election.mf_end < self.now_ms {
            out.push(Effect::Note(Note::ManualFailoverTimeout));
            self.reset_manual_failover();
        }
    }

    /// `clusterHandleManualFailover()`.
    pub(super) fn handle_manual_failover(&mut self) {
        let e = &self.election;
        if e.mf_end == 0 || e.mf_can_start {
            return;
        }
        let Some(master_offset) = e.mf_master_offset else {
            return; // Wait for the offset.
        };
        if master_offset == self.my_repl_offset() {
            self.election.mf_can_start = true;
            self.todo |= todo::HANDLE_FAILOVER;
            return;
        }
        self.todo |= todo::HANDLE_MANUALFAILOVER;
    }

    /// `CLUSTER FAILOVER [FORCE|TAKEOVER]`.
    pub(super) fn cluster_failover_command(
        &mut self,
        mode: FailoverMode,
        out: &mut Vec<Effect>,
    ) -> Result<String, CommandError> {
        let force = mode != FailoverMode::Default;
        let me = self.n(self.myself);
        if me.is_master() {
            return Err("ERR You should send CLUSTER FAILOVER to a replica".into());
        }
        let Some(master) = me.slaveof else {
            return Err("ERR I'm a replica but my master is unknown to me".into());
        };
        if !force && (self.n(master).failed() || self.n(master).link.is_none()) {
            return Err("ERR Master is down or failed, please use CLUSTER FAILOVER FORCE".into());
        }
        self.reset_manual_failover();
        self.election.mf_end = self.now_ms + MF_TIMEOUT_MS;
        self.election.mf_mode = Some(mode);
        match mode {
            FailoverMode::Takeover => {
                // No election: a new config epoch without consensus.
                self.bump_config_epoch_without_consensus();
                self.failover_replace_your_master(out);
            }
            FailoverMode::Force => self.election.mf_can_start = true,
            FailoverMode::Default => {
                // clusterSendMFStart
                if let Some(link) = self.n(master).link {
                    let msg = self.build_header(MsgType::MfStart, Body::None);
                    self.send_message(Some(link), Rc::new(msg), out);
                }
            }
        }
        Ok("OK".into())
    }

    /// `clusterFailoverReplaceYourMaster()`: become master, take the old
    /// master's slots, tell everyone. The caller set the config epoch.
    pub(super) fn failover_replace_your_master(&mut self, out: &mut Vec<Effect>) {
        let me = self.myself;
        let Some(oldmaster) = self.n(me).slaveof else {
            return;
        };
        if self.n(me).is_master() {
            return;
        }
        // 1) Turn this node into a master. (`replicationUnsetMaster()` comes
        //    with the replication model.)
        self.set_node_as_master(me);
        // 2) Claim all the slots assigned to our master.
        let slots = Rc::clone(&self.n(oldmaster).slots);
        for (w, &mask) in slots.0.iter().enumerate() {
            if mask != 0 {
                self.move_slots(w, mask, me);
            }
        }
        // 3) Update state and save config.
        self.update_state(out);
        out.push(Effect::SaveConfig {
            text: self.nodes_conf(),
            fsync: true,
        });
        out.push(Effect::Note(Note::Promoted {
            config_epoch: self.n(me).config_epoch,
            old_master: self.n(oldmaster).name,
            manual: self.election.mf_mode.filter(|_| self.election.mf_end != 0),
        }));
        // 4) Pong all the other nodes.
        self.broadcast_pong(BroadcastTarget::All, out);
        // 5) Clear a manual failover in progress.
        self.reset_manual_failover();
    }

    /// `clusterHandleSlaveFailover()`.
    pub(super) fn handle_slave_failover(&mut self, out: &mut Vec<Effect>) {
        let now = self.now_ms;
        let auth_age = now - self.election.failover_auth_time;
        let needed_quorum = self.size / 2 + 1;
        let manual_failover = self.election.mf_end != 0 && self.election.mf_can_start;
        self.todo &= !todo::HANDLE_FAILOVER;

        let nt = self.election_node_timeout();
        let auth_timeout = (nt * 2).max(2000);
        let auth_retry_time = auth_timeout * 2;

        // Preconditions.
        let me = self.n(self.myself);
        if me.is_master() {
            return;
        }
        let Some(master) = me.slaveof else {
            return;
        };
        let m = self.n(master);
        // Master not FAIL, or `cluster-replica-no-failover`: only a manual
        // failover may go on.
        let auto_refused = !m.failed() || self.setup.config.cluster_replica_no_failover;
        if (auto_refused && !manual_failover) || m.numslots == 0 {
            return;
        }

        // Data age: how long we have been disconnected from the master, in
        // whole seconds as `server.unixtime` counts them.
        let unixtime = now / 1000;
        let mut data_age = if self.master_link_up {
            let last = self.master_last_interaction_ms.unwrap_or(now);
            (unixtime - last / 1000) * 1000
        } else {
            (unixtime - self.repl_down_since_ms / 1000) * 1000
        };
        if data_age > nt {
            data_age -= nt;
        }
        let factor = i64::from(self.setup.config.cluster_replica_validity_factor);
        let ping_period = self.setup.config.repl_ping_replica_period_s as i64;
        if factor != 0 && data_age > ping_period * 1000 + nt * factor && !manual_failover {
            return;
        }

        // Schedule a new election if the previous one's retry time elapsed.
        if auth_age > auth_retry_time {
            let e = &mut self.election;
            e.failover_auth_time = now + 500 + self.rng.random_range(0..500i64);
            e.failover_auth_count = 0;
            e.failover_auth_sent = false;
            let rank = self.get_slave_rank();
            let e = &mut self.election;
            e.failover_auth_rank = rank;
            e.failover_auth_time += i64::from(rank) * 1000;
            if e.mf_end != 0 {
                e.failover_auth_time = now;
                e.failover_auth_rank = 0;
                self.todo |= todo::HANDLE_FAILOVER;
            }
            out.push(Effect::Note(Note::ElectionScheduled {
                delay_ms: self.election.failover_auth_time - now,
                rank: self.election.failover_auth_rank,
            }));
            // Tell the other replicas our offset.
            self.broadcast_pong(BroadcastTarget::LocalSlaves, out);
            return;
        }

        // Our rank may have got worse since scheduling: add delay.
        if !self.election.failover_auth_sent && self.election.mf_end == 0 {
            let newrank = self.get_slave_rank();
            let e = &mut self.election;
            if newrank > e.failover_auth_rank {
                e.failover_auth_time += i64::from(newrank - e.failover_auth_rank) * 1000;
                e.failover_auth_rank = newrank;
            }
        }

        if now < self.election.failover_auth_time {
            return; // Still waiting for the delay.
        }
        if auth_age > auth_timeout {
            return; // The election expired.
        }

        // Ask for votes.
        if !self.election.failover_auth_sent {
            self.current_epoch += 1;
            let epoch = self.current_epoch;
            self.election.failover_auth_epoch = epoch;
            out.push(Effect::Note(Note::ElectionStarted { epoch }));
            // clusterRequestFailoverAuth
            let mut msg = self.build_header(MsgType::FailoverAuthRequest, Body::None);
            if self.election.mf_end != 0 {
                msg.mflags |= mflags::FORCEACK;
            }
            self.broadcast(msg, out);
            self.election.failover_auth_sent = true;
            self.todo |= todo::SAVE_CONFIG | todo::UPDATE_STATE | todo::FSYNC_CONFIG;
            return;
        }

        // Quorum?
        if self.election.failover_auth_count >= needed_quorum {
            let me = self.myself;
            if self.n(me).config_epoch < self.election.failover_auth_epoch {
                self.nm(me).config_epoch = self.election.failover_auth_epoch;
            }
            self.failover_replace_your_master(out);
        }
    }

    /// `clusterCountNonFailingSlaves()`.
    fn count_non_failing_slaves(&self, idx: u32) -> u32 {
        self.n(idx)
            .slaves
            .iter()
            .filter(|&&s| !self.n(s).failed())
            .count() as u32
    }

    /// The tail of `clusterCron()`: orphaned-master statistics (computed in
    /// Redis's node loop), manual-failover timeout, failover, migration.
    pub(super) fn cron_failover(&mut self, out: &mut Vec<Effect>) {
        let me = self.myself;
        let mut orphaned_masters = 0;
        let mut max_slaves = 0;
        let mut this_slaves = 0;
        if self.n(me).is_slave() {
            for &idx in &self.live {
                let n = self.n(idx);
                if n.flags & (MYSELF | NOADDR | HANDSHAKE) != 0 || !n.is_master() || n.failed() {
                    continue;
                }
                let okslaves = self.count_non_failing_slaves(idx);
                if okslaves == 0 && n.numslots > 0 && n.flags & MIGRATE_TO != 0 {
                    orphaned_masters += 1;
                }
                max_slaves = max_slaves.max(okslaves);
                if self.n(me).slaveof == Some(idx) {
                    this_slaves = okslaves;
                }
            }
        }

        self.manual_failover_check_timeout(out);

        if self.n(me).is_slave() {
            self.handle_manual_failover();
            self.handle_slave_failover(out);
            if orphaned_masters > 0
                && max_slaves >= 2
                && this_slaves == max_slaves
                && self.setup.config.cluster_allow_replica_migration
            {
                self.handle_slave_migration(max_slaves);
            }
        }
    }

    /// The failover part of `clusterBeforeSleep()`. Redis handles what the
    /// handlers schedule (`HANDLE_FAILOVER` after scheduling a manual
    /// failover, `HANDLE_MANUALFAILOVER` while waiting for the offset) in the
    /// next event-loop turn, which follows at once; we run up to three
    /// turns here instead of waiting for the next input.
    pub(super) fn before_sleep_failover(&mut self, out: &mut Vec<Effect>) {
        for _ in 0..3 {
            let flags = self.todo & (todo::HANDLE_FAILOVER | todo::HANDLE_MANUALFAILOVER);
            if flags == 0 {
                return;
            }
            self.todo &= !flags;
            if flags & todo::HANDLE_MANUALFAILOVER != 0 {
                if self.myself().is_slave() {
                    self.handle_manual_failover();
                    self.handle_slave_failover(out);
                }
            } else {
                self.handle_slave_failover(out);
            }
        }
    }

    /// `clusterHandleSlaveMigration()`.
    pub(super) fn handle_slave_migration(&mut self, max_slaves: u32) {
        let now = self.now_ms;
        // Step 1: only if the cluster state is ok.
        if !self.state_ok {
            return;
        }
        // Step 2: my master must keep more than `migration-barrier` replicas.
        let me = self.myself;
        let Some(mymaster) = self.n(me).slaveof else {
            return;
        };
        let okslaves = self
            .n(mymaster)
            .slaves
            .iter()
            .filter(|&&s| !self.n(s).failed() && !self.n(s).timed_out())
            .count() as u32;
        if okslaves <= self.setup.config.cluster_migration_barrier {
            return;
        }
        // Step 3: the candidate is the replica with the smallest ID among
        // the masters with `max_slaves` working replicas.
        let mut candidate = me;
        let mut target = None;
        for k in 0..self.live.len() {
            let idx = self.live[k];
            let n = self.n(idx);
            let mut is_orphaned = !(n.is_slave() || n.failed()) && n.flags & MIGRATE_TO != 0;
            let okslaves = if n.is_master() {
                self.count_non_failing_slaves(idx)
            } else {
                0
            };
            if okslaves > 0 {
                is_orphaned = false;
            }
            if is_orphaned {
                if target.is_none() && n.numslots > 0 {
                    target = Some(idx);
                }
                if n.orphaned_time == 0 {
                    self.nm(idx).orphaned_time = now;
                }
            } else {
                self.nm(idx).orphaned_time = 0;
            }
            if okslaves == max_slaves {
                for &s in &self.n(idx).slaves {
                    if self.n(s).name < self.n(candidate).name {
                        candidate = s;
                    }
                }
            }
        }
        // Step 4: migrate if the target stayed orphaned long enough.
        if let Some(t) = target {
            if candidate == me && now - self.n(t).orphaned_time > SLAVE_MIGRATION_DELAY_MS {
                self.set_master(t);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use rand::SeedableRng;

    use super::super::bus::{flags::*, mflags, Body, BusMsg, MsgType, NodeId};
    use super::super::config::Config;
    use super::super::render::ClusterCommand;
    use super::super::{
        ClusterNode, Effect, Input, Link, LinkId, Node, NodeSetup, Note, BASE_UNIX_MS,
    };
    use super::FailoverMode;
    use crate::engine::{Rng, SimTime};

    /// Unix ms (what the node sees) of the test start.
    const T0_MS: i64 = BASE_UNIX_MS + 1_000_000;

    /// Simulated time at Unix ms `ms`.
    fn sim(ms: i64) -> SimTime {
        ((ms - BASE_UNIX_MS) * 1000) as SimTime
    }

    fn id(b: u8) -> NodeId {
        NodeId([b; 20])
    }

    /// Master M (0x10, slots 0..5461, FAIL unless told), masters A (0x20)
    /// and B (0x30) with the rest; myself (0x50) and R2 (0x60), R3 (0x70)
    /// replicate M. Link id of a peer = its first ID byte.
    struct Sim {
        node: Node,
        now_ms: i64,
        out: Vec<Effect>,
    }

    impl Sim {
        fn new(seed: u64, nt: u64, my_id: u8) -> Sim {
            let config = Config {
                cluster_node_timeout_ms: nt,
                ..Config::default()
            };
            let setup = NodeSetup { port: 7000, config };
            let rng = Rng::seed_from_u64(seed);
            let mut node = Node::new(setup, rng, sim(T0_MS));
            let me = node.myself;
            node.rename_node(me, id(my_id));
            Sim {
                node,
                now_ms: T0_MS,
                out: Vec::new(),
            }
        }

        fn peer(&mut self, b: u8, flags: u16, slots: std::ops::Range<usize>) -> u32 {
            let n = &mut self.node;
            let mut c = ClusterNode::new(id(b), flags, 0);
            c.ip = Some([10, 0, 0, b]);
            c.port = 7000;
            c.cport = 17000;
            let idx = n.add_node(c);
            let link = LinkId::from(b);
            n.links.insert(
                link,
                Link {
                    node: Some(idx),
                    inbound: false,
                    ctime: 0,
                    peer_ip: [10, 0, 0, b],
                    local_ip: Some([10, 0, 0, 1]),
                },
            );
            n.nm(idx).link = Some(link);
            n.nm(idx).pong_received = T0_MS; // no NT/2 pings at first
            for j in slots {
                n.add_slot(idx, j);
            }
            idx
        }

        fn idx(&self, b: u8) -> u32 {
            self.node.lookup(&id(b)).unwrap()
        }

        /// The standard shard layout seen by a replica of M (me = 0x50).
        fn replica(seed: u64, nt: u64) -> Sim {
            let mut s = Sim::new(seed, nt, 0x50);
            let m = s.peer(0x10, MASTER | FAIL, 0..5461);
            s.peer(0x20, MASTER, 5461..10923);
            s.peer(0x30, MASTER, 10923..16384);
            s.node.set_master(m);
            for b in [0x60, 0x70] {
                let r = s.peer(b, SLAVE, 0..0);
                s.node.nm(r).slaveof = Some(m);
                s.node.add_slave(m, r);
            }
            for e in [1, 2, 3] {
                let i = s.idx(e * 0x10);
                s.node.nm(i).config_epoch = u64::from(e);
            }
            s.node.current_epoch = 3;
            s.node.update_state(&mut Vec::new());
            assert_eq!(s.node.size, 3);
            s
        }

        /// A voter: me = master 0x20 with slots; M (0x10, FAIL) with
        /// replica R (0x50); master B (0x30).
        fn voter(nt: u64) -> Sim {
            let mut s = Sim::new(7, nt, 0x20);
            let me = s.node.myself;
            for j in 5461..10923 {
                s.node.add_slot(me, j);
            }
            s.node.nm(me).config_epoch = 2;
            let m = s.peer(0x10, MASTER | FAIL, 0..5461);
            s.peer(0x30, MASTER, 10923..16384);
            let r = s.peer(0x50, SLAVE, 0..0);
            s.node.nm(r).slaveof = Some(m);
            s.node.add_slave(m, r);
            s.node.nm(m).config_epoch = 1;
            s.node.nm(s.idx(0x30)).config_epoch = 3;
            s.node.current_epoch = 3;
            s
        }

        fn at(&mut self, ms: i64) -> &mut Sim {
            self.now_ms = ms;
            self
        }

        /// A cron tick; every peer just answered a PING, so links stay up
        /// and no peer turns PFAIL (these tests are not about gossip).
        fn cron(&mut self) -> Vec<Effect> {
            let me = self.node.myself;
            for k in 0..self.node.live.len() {
                let i = self.node.live[k];
                if i != me {
                    let n = self.node.nm(i);
                    n.ping_sent = 0;
                    n.pong_received = self.now_ms;
                    n.data_received = self.now_ms;
                }
            }
            let mut out = Vec::new();
            self.node.handle(sim(self.now_ms), Input::Cron, &mut out);
            self.out.extend(out.iter().cloned());
            out
        }

        fn recv(&mut self, msg: BusMsg) -> Vec<Effect> {
            let link = LinkId::from(msg.sender.0[0]);
            let mut out = Vec::new();
            let input = Input::Recv {
                link,
                msg: Rc::new(msg),
            };
            self.node.handle(sim(self.now_ms), input, &mut out);
            self.out.extend(out.iter().cloned());
            out
        }

        fn command(&mut self, cmd: ClusterCommand) -> (Result<String, String>, Vec<Effect>) {
            let mut out = Vec::new();
            let r = self.node.command(sim(self.now_ms), cmd, &mut out);
            (r, out)
        }

        /// A header-only message from peer `b` as that peer would build it.
        fn msg(&self, typ: MsgType, b: u8, current_epoch: u64) -> BusMsg {
            let n = self.node.n(self.idx(b));
            let master = match n.slaveof {
                Some(m) if n.is_slave() => self.node.n(m),
                _ => n,
            };
            BusMsg {
                typ,
                sender: id(b),
                current_epoch,
                config_epoch: master.config_epoch,
                offset: n.repl_offset,
                myslots: Rc::clone(&master.slots),
                slaveof: n
                    .slaveof
                    .filter(|_| n.is_slave())
                    .map(|m| self.node.n(m).name),
                myip: None,
                port: 7000,
                cport: 17000,
                flags: n.flags & (MASTER | SLAVE),
                state_ok: true,
                mflags: 0,
                body: Body::None,
            }
        }
    }

    fn notes(out: &[Effect]) -> Vec<Note> {
        out.iter()
            .filter_map(|e| match e {
                Effect::Note(n) => Some(n.clone()),
                _ => None,
            })
            .collect()
    }

    fn sent(out: &[Effect], typ: MsgType) -> Vec<(LinkId, Rc<BusMsg>)> {
        out.iter()
            .filter_map(|e| match e {
                Effect::Send { link, msg } if msg.typ == typ => Some((*link, Rc::clone(msg))),
                _ => None,
            })
            .collect()
    }

    fn scheduled(out: &[Effect]) -> Option<(i64, u32)> {
        notes(out).into_iter().find_map(|n| match n {
            Note::ElectionScheduled { delay_ms, rank } => Some((delay_ms, rank)),
            _ => None,
        })
    }

    fn started(out: &[Effect]) -> Option<u64> {
        notes(out).into_iter().find_map(|n| match n {
            Note::ElectionStarted { epoch } => Some(epoch),
            _ => None,
        })
    }

    fn set_offset(s: &mut Sim, b: u8, off: u64) {
        let i = s.idx(b);
        s.node.nm(i).repl_offset = off;
    }

    #[test]
    fn election_delay_is_500_to_1000_ms_plus_1000_per_rank() {
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..40 {
            for (rank, offsets) in [(0u32, [0u64, 0]), (1, [200, 50]), (2, [200, 300])] {
                let mut s = Sim::replica(seed, 15000);
                s.node.set_repl_offset(100);
                set_offset(&mut s, 0x60, offsets[0]);
                set_offset(&mut s, 0x70, offsets[1]);
                let out = s.at(T0_MS + 100).cron();
                let (delay, r) = scheduled(&out).expect("election scheduled");
                assert_eq!(r, rank);
                let base = delay - 1000 * i64::from(rank);
                assert!((500..1000).contains(&base), "delay {delay} rank {rank}");
                assert_eq!(s.node.election.failover_auth_time, T0_MS + 100 + delay);
                seen.insert(base / 100);
                // PONG to the other replicas of my master only.
                let pongs: Vec<LinkId> = sent(&out, MsgType::Pong).iter().map(|p| p.0).collect();
                assert_eq!(pongs, vec![0x60, 0x70]);
                // Not started before the delay, started at it.
                let auth_time = s.node.election.failover_auth_time;
                assert_eq!(started(&s.at(auth_time - 1).cron()), None);
                assert_eq!(started(&s.at(auth_time).cron()), Some(4));
            }
        }
        assert!(seen.len() >= 4, "random part barely varies: {seen:?}");
    }

    #[test]
    fn rank_counts_replicas_with_greater_offset_ties_share() {
        let mut s = Sim::replica(1, 15000);
        s.node.set_repl_offset(100);
        set_offset(&mut s, 0x60, 100);
        set_offset(&mut s, 0x70, 100);
        assert_eq!(s.node.get_slave_rank(), 0);
        set_offset(&mut s, 0x60, 101);
        assert_eq!(s.node.get_slave_rank(), 1);
        set_offset(&mut s, 0x70, 101);
        assert_eq!(s.node.get_slave_rank(), 2);
        // NOFAILOVER replicas don't count.
        let r3 = s.idx(0x70);
        s.node.nm(r3).flags |= NOFAILOVER;
        assert_eq!(s.node.get_slave_rank(), 1);
        // Two replicas at the same offset as each other share rank 0.
        let mut t = Sim::replica(1, 15000);
        t.node.set_repl_offset(50);
        set_offset(&mut t, 0x60, 50);
        assert_eq!(t.node.get_slave_rank(), 0);
    }

    #[test]
    fn worse_rank_while_waiting_adds_delay() {
        let mut s = Sim::replica(3, 15000);
        s.node.set_repl_offset(100);
        let (delay, rank) = scheduled(&s.at(T0_MS + 100).cron()).unwrap();
        assert_eq!(rank, 0);
        // R2 advertises a better offset in a PONG header.
        let mut pong = s.msg(MsgType::Pong, 0x60, 3);
        pong.offset = 500;
        pong.body = Body::Gossip(Vec::new());
        s.at(T0_MS + 200).recv(pong);
        s.at(T0_MS + 300).cron();
        assert_eq!(s.node.election.failover_auth_rank, 1);
        assert_eq!(
            s.node.election.failover_auth_time,
            T0_MS + 100 + delay + 1000
        );
        // A better rank never removes delay.
        set_offset(&mut s, 0x60, 0);
        s.at(T0_MS + 400).cron();
        assert_eq!(
            s.node.election.failover_auth_time,
            T0_MS + 100 + delay + 1000
        );
    }

    #[test]
    fn no_election_without_fail_slots_or_with_no_failover_or_stale_data() {
        // Master not FAIL.
        let mut s = Sim::replica(1, 15000);
        let m = s.idx(0x10);
        s.node.nm(m).flags &= !FAIL;
        assert_eq!(scheduled(&s.at(T0_MS + 100).cron()), None);
        // cluster-replica-no-failover.
        let mut s = Sim::replica(1, 15000);
        s.node.setup.config.cluster_replica_no_failover = true;
        assert_eq!(scheduled(&s.at(T0_MS + 100).cron()), None);
        // Data too old: down for more than 10 s + 10 × NT + NT (whole
        // seconds): 176 s refuses, 175 s does not.
        let mut s = Sim::replica(1, 15000);
        s.node.master_link_up = false;
        s.node.repl_down_since_ms = T0_MS - 176_000;
        assert_eq!(scheduled(&s.at(T0_MS + 100).cron()), None);
        s.node.repl_down_since_ms = T0_MS - 175_000;
        assert!(scheduled(&s.at(T0_MS + 100).cron()).is_some());
        // Same with the link up and an old last interaction.
        let mut s = Sim::replica(1, 15000);
        s.node.master_last_interaction_ms = Some(T0_MS - 176_000);
        assert_eq!(scheduled(&s.at(T0_MS + 100).cron()), None);
        // But a manual (FORCE) failover ignores data age.
        let (r, _) = s.command(ClusterCommand::Failover(FailoverMode::Force));
        r.unwrap();
        assert_eq!(scheduled(&s.at(T0_MS + 200).cron()), Some((0, 0)));
        // Factor 0 never refuses.
        let mut s = Sim::replica(1, 15000);
        s.node.setup.config.cluster_replica_validity_factor = 0;
        s.node.master_link_up = false;
        s.node.repl_down_since_ms = 0;
        assert!(scheduled(&s.at(T0_MS + 100).cron()).is_some());
    }

    /// Request from R (0x50) for `epoch`, claiming M's slots at M's epoch.
    fn request(s: &Sim, epoch: u64) -> BusMsg {
        s.msg(MsgType::FailoverAuthRequest, 0x50, epoch)
    }

    fn acks(out: &[Effect]) -> Vec<LinkId> {
        sent(out, MsgType::FailoverAuthAck)
            .iter()
            .map(|a| a.0)
            .collect()
    }

    #[test]
    fn vote_granted_with_fsynced_last_vote_epoch() {
        let mut s = Sim::voter(15000);
        let req = request(&s, 4);
        let out = s.at(T0_MS).recv(req);
        assert_eq!(acks(&out), vec![0x50]);
        assert!(notes(&out).contains(&Note::VoteGranted { to: id(0x50) }));
        assert_eq!(s.node.last_vote_epoch, 4);
        assert_eq!(s.node.n(s.idx(0x10)).voted_time, T0_MS);
        let save = out.iter().find_map(|e| match e {
            Effect::SaveConfig { text, fsync } => Some((text.clone(), *fsync)),
            _ => None,
        });
        let (text, fsync) = save.expect("config saved");
        assert!(fsync);
        assert!(text.contains("lastVoteEpoch 4"), "{text}");
    }

    #[test]
    fn every_vote_refusal_rule_refuses_silently() {
        type Tweak = fn(&mut Sim, &mut BusMsg);
        let cases: Vec<(&str, Tweak)> = vec![
            ("voter is a replica", |s, _| {
                let me = s.node.myself;
                s.node.nm(me).flags = MYSELF | SLAVE;
            }),
            ("voter has no slots", |s, _| {
                let me = s.node.myself;
                let slots: Vec<usize> = s.node.n(me).slots.iter().collect();
                for j in slots {
                    s.node.del_slot(j);
                }
            }),
            ("request epoch < current epoch", |s, m| {
                s.node.current_epoch = 5;
                m.current_epoch = 4;
            }),
            ("already voted this epoch", |s, _| {
                s.node.last_vote_epoch = 4
            }),
            ("requester is a master", |s, m| {
                let r = s.idx(0x50);
                let old = s.node.n(r).slaveof.unwrap();
                s.node.remove_slave(old, r);
                s.node.nm(r).slaveof = None;
                s.node.nm(r).flags = MASTER;
                m.slaveof = None;
                m.flags = MASTER;
            }),
            ("requester's master unknown", |s, m| {
                let r = s.idx(0x50);
                s.node.nm(r).slaveof = None;
                m.slaveof = Some(id(0x99));
            }),
            ("master not FAIL, no FORCEACK", |s, _| {
                let m = s.idx(0x10);
                s.node.nm(m).flags &= !FAIL;
            }),
            ("voted for this master within 2 NT", |s, _| {
                let m = s.idx(0x10);
                s.node.nm(m).voted_time = T0_MS - 29_999;
            }),
            ("claimed slot owned with a greater epoch", |_, m| {
                let mut slots = (*m.myslots).clone();
                slots.set(12000); // owned by B, epoch 3 > 1
                m.myslots = Rc::new(slots);
            }),
        ];
        for (what, tweak) in cases {
            let mut s = Sim::voter(15000);
            let mut req = request(&s, 4);
            tweak(&mut s, &mut req);
            let before = s.node.last_vote_epoch;
            let out = s.at(T0_MS).recv(req);
            assert!(acks(&out).is_empty(), "{what}: voted");
            assert!(
                !out.iter()
                    .any(|e| matches!(e, Effect::Send { msg, .. } if msg.typ != MsgType::Pong)),
                "{what}: replied"
            );
            assert_eq!(s.node.last_vote_epoch, before, "{what}");
        }
    }

    #[test]
    fn forceack_votes_for_replica_of_live_master_and_lockout_expires() {
        let mut s = Sim::voter(15000);
        let m = s.idx(0x10);
        s.node.nm(m).flags &= !FAIL;
        let mut req = request(&s, 4);
        req.mflags |= mflags::FORCEACK;
        assert_eq!(acks(&s.at(T0_MS).recv(req)), vec![0x50]);
        // Same master, later epoch, 2 NT - 1 ms later: refused; 2 NT + 1: granted.
        let mut req = request(&s, 5);
        req.mflags |= mflags::FORCEACK;
        assert!(acks(&s.at(T0_MS + 29_999).recv(req.clone())).is_empty());
        req.current_epoch = 6;
        assert_eq!(acks(&s.at(T0_MS + 30_001).recv(req)), vec![0x50]);
    }

    #[test]
    fn one_vote_per_epoch() {
        let mut s = Sim::voter(15000);
        // A second failed master M2 (0x40) with replica R2 (0x60).
        let m2 = s.peer(0x40, MASTER | FAIL, 0..0);
        let r2 = s.peer(0x60, SLAVE, 0..0);
        s.node.nm(r2).slaveof = Some(m2);
        s.node.add_slave(m2, r2);
        let req = request(&s, 4);
        assert_eq!(acks(&s.at(T0_MS).recv(req)), vec![0x50]);
        let other = s.msg(MsgType::FailoverAuthRequest, 0x60, 4);
        assert!(acks(&s.recv(other)).is_empty());
        let other = s.msg(MsgType::FailoverAuthRequest, 0x60, 5);
        assert_eq!(acks(&s.recv(other)), vec![0x60]);
        assert_eq!(s.node.last_vote_epoch, 5);
    }

    /// Run a replica until it has sent its auth request; returns the epoch.
    fn start_election(s: &mut Sim) -> u64 {
        let (delay, _) = scheduled(&s.at(T0_MS + 100).cron()).unwrap();
        let out = s.at(T0_MS + 100 + delay).cron();
        let reqs = sent(&out, MsgType::FailoverAuthRequest);
        assert_eq!(reqs.len(), 5, "broadcast to every linked node");
        assert_eq!(reqs[0].1.myslots.count(), 5461, "claims M's slots");
        assert_eq!(reqs[0].1.config_epoch, 1, "with M's config epoch");
        started(&out).unwrap()
    }

    #[test]
    fn quorum_counts_only_slot_owning_masters_at_or_after_the_election_epoch() {
        let mut s = Sim::replica(5, 15000);
        let epoch = start_election(&mut s);
        assert_eq!(epoch, 4);
        assert_eq!(s.node.current_epoch, 4);
        let t = s.now_ms + 10;
        s.at(t);
        // From a replica: not counted.
        let a = s.msg(MsgType::FailoverAuthAck, 0x60, 4);
        s.recv(a);
        // From a master without slots: not counted.
        let e = s.peer(0x40, MASTER, 0..0);
        let _ = e;
        let a = s.msg(MsgType::FailoverAuthAck, 0x40, 4);
        s.recv(a);
        // From a slot owner with an older current epoch: not counted.
        let a = s.msg(MsgType::FailoverAuthAck, 0x20, 3);
        s.recv(a);
        assert_eq!(s.node.election.failover_auth_count, 0);
        assert!(!s.node.is_master());
        // One valid vote out of the needed 2.
        let a = s.msg(MsgType::FailoverAuthAck, 0x20, 4);
        let out = s.recv(a);
        assert_eq!(s.node.election.failover_auth_count, 1);
        assert!(!s.node.is_master());
        assert!(notes(&out).is_empty());
        // The second vote wins at once (before-sleep handling).
        let a = s.msg(MsgType::FailoverAuthAck, 0x30, 5);
        let out = s.recv(a);
        assert!(s.node.is_master());
        assert!(notes(&out).contains(&Note::Promoted {
            config_epoch: 4,
            old_master: id(0x10),
            manual: None
        }));
        let me = s.node.myself();
        assert_eq!(me.config_epoch, 4);
        assert_eq!(me.numslots, 5461);
        assert_eq!(s.node.slot_owner(0).unwrap().name, id(0x50));
        assert_eq!(s.node.slot_owner(5460).unwrap().name, id(0x50));
        assert_eq!(s.node.n(s.idx(0x10)).numslots, 0);
        assert!(!s.node.n(s.idx(0x10)).slaves.contains(&s.node.myself));
        // PONG to everybody, config saved with fsync.
        assert_eq!(sent(&out, MsgType::Pong).len(), 6);
        assert!(out
            .iter()
            .any(|e| matches!(e, Effect::SaveConfig { fsync: true, text } if text.contains("myself,master"))));
    }

    #[test]
    fn election_times_out_then_retries_after_twice_the_timeout() {
        // NT = 1000: auth timeout 2000 ms, retry 4000 ms.
        let mut s = Sim::replica(9, 1000);
        let epoch = start_election(&mut s);
        let auth_time = s.node.election.failover_auth_time;
        // Expired: a late quorum is not acted upon.
        s.at(auth_time + 2001);
        for b in [0x20, 0x30] {
            let a = s.msg(MsgType::FailoverAuthAck, b, epoch);
            s.recv(a);
        }
        assert_eq!(s.node.election.failover_auth_count, 2);
        s.cron();
        assert!(!s.node.is_master(), "won after the auth timeout");
        // Quorum within the timeout would have won: check the boundary.
        let mut w = Sim::replica(9, 1000);
        let epoch_w = start_election(&mut w);
        let at = w.node.election.failover_auth_time + 2000;
        w.at(at);
        for b in [0x20, 0x30] {
            let a = w.msg(MsgType::FailoverAuthAck, b, epoch_w);
            w.recv(a);
        }
        assert!(w.node.is_master());
        // No new schedule until 4000 ms after the previous auth time.
        assert_eq!(scheduled(&s.at(auth_time + 4000).cron()), None);
        let (delay, _) = scheduled(&s.at(auth_time + 4001).cron()).expect("retry");
        let out = s.at(auth_time + 4001 + delay).cron();
        assert_eq!(started(&out), Some(epoch + 1));
        assert_eq!(s.node.election.failover_auth_count, 0);
    }

    #[test]
    fn failover_command_errors() {
        let mut s = Sim::voter(15000);
        let (r, _) = s.command(ClusterCommand::Failover(FailoverMode::Default));
        assert_eq!(
            r.unwrap_err(),
            "ERR You should send CLUSTER FAILOVER to a replica"
        );
        let mut s = Sim::replica(1, 15000);
        let (r, _) = s.command(ClusterCommand::Failover(FailoverMode::Default));
        assert_eq!(
            r.unwrap_err(),
            "ERR Master is down or failed, please use CLUSTER FAILOVER FORCE"
        );
        let m = s.idx(0x10);
        s.node.nm(m).flags &= !FAIL;
        s.node.nm(m).link = None;
        let (r, _) = s.command(ClusterCommand::Failover(FailoverMode::Default));
        assert!(r.unwrap_err().starts_with("ERR Master is down"));
        let me = s.node.myself;
        s.node.nm(me).slaveof = None;
        let (r, _) = s.command(ClusterCommand::Failover(FailoverMode::Force));
        assert_eq!(
            r.unwrap_err(),
            "ERR I'm a replica but my master is unknown to me"
        );
        assert_eq!(
            FailoverMode::parse(Some("TakeOver")),
            Ok(FailoverMode::Takeover)
        );
        assert_eq!(FailoverMode::parse(None), Ok(FailoverMode::Default));
        assert_eq!(
            FailoverMode::parse(Some("now")).unwrap_err(),
            "ERR syntax error"
        );
    }

    #[test]
    fn takeover_bumps_the_epoch_and_promotes_without_votes() {
        let mut s = Sim::replica(1, 15000);
        let m = s.idx(0x10);
        s.node.nm(m).flags &= !FAIL; // master healthy; no majority needed
        let (r, out) = s
            .at(T0_MS + 100)
            .command(ClusterCommand::Failover(FailoverMode::Takeover));
        assert_eq!(r.unwrap(), "OK");
        assert!(s.node.is_master());
        assert_eq!(s.node.current_epoch, 4);
        assert_eq!(s.node.myself().config_epoch, 4);
        assert_eq!(s.node.myself().numslots, 5461);
        assert!(sent(&out, MsgType::FailoverAuthRequest).is_empty());
        assert_eq!(sent(&out, MsgType::Pong).len(), 5);
        assert!(notes(&out).contains(&Note::Promoted {
            config_epoch: 4,
            old_master: id(0x10),
            manual: Some(FailoverMode::Takeover)
        }));
        assert!(!s.node.manual_failover_in_progress());
    }

    #[test]
    fn bump_without_consensus_only_if_zero_or_not_the_max() {
        let mut s = Sim::voter(15000);
        // My epoch 2 is not the max (B has 3, current 3).
        assert!(s.node.bump_config_epoch_without_consensus());
        assert_eq!((s.node.current_epoch, s.node.myself().config_epoch), (4, 4));
        assert!(!s.node.bump_config_epoch_without_consensus());
        assert_eq!(s.node.current_epoch, 4);
    }

    #[test]
    fn force_starts_at_once_with_forceack_but_still_needs_votes() {
        let mut s = Sim::replica(2, 15000);
        let m = s.idx(0x10);
        s.node.nm(m).flags &= !FAIL;
        let (r, out) = s
            .at(T0_MS + 100)
            .command(ClusterCommand::Failover(FailoverMode::Force));
        assert_eq!(r.unwrap(), "OK");
        assert!(sent(&out, MsgType::MfStart).is_empty());
        let out = s.at(T0_MS + 200).cron();
        assert_eq!(scheduled(&out), Some((0, 0)));
        let reqs = sent(&out, MsgType::FailoverAuthRequest);
        assert_eq!(reqs.len(), 5);
        assert_ne!(reqs[0].1.mflags & mflags::FORCEACK, 0);
        // No votes: no promotion, and the manual failover times out.
        s.at(T0_MS + 2000).cron();
        assert!(!s.node.is_master());
        let out = s.at(T0_MS + 5200).cron();
        assert!(notes(&out).contains(&Note::ManualFailoverTimeout));
        assert!(!s.node.is_master());
        // With a majority of votes (in time) it wins.
        let mut s = Sim::replica(2, 15000);
        let m = s.idx(0x10);
        s.node.nm(m).flags &= !FAIL;
        let (r, _) = s
            .at(T0_MS + 100)
            .command(ClusterCommand::Failover(FailoverMode::Force));
        r.unwrap();
        let epoch = started(&s.at(T0_MS + 200).cron()).unwrap();
        for b in [0x20, 0x30] {
            let a = s.msg(MsgType::FailoverAuthAck, b, epoch);
            s.at(T0_MS + 250).recv(a);
        }
        assert!(s.node.is_master());
        assert_eq!(s.node.myself().config_epoch, epoch);
    }

    #[test]
    fn default_manual_failover_waits_for_paused_offset() {
        let mut s = Sim::replica(4, 15000);
        let m = s.idx(0x10);
        s.node.nm(m).flags &= !FAIL;
        s.node.set_repl_offset(1000);
        let (r, out) = s
            .at(T0_MS + 100)
            .command(ClusterCommand::Failover(FailoverMode::Default));
        assert_eq!(r.unwrap(), "OK");
        let mf = sent(&out, MsgType::MfStart);
        assert_eq!(mf.len(), 1);
        assert_eq!(mf[0].0, 0x10);
        // A PING from the master without PAUSED: nothing.
        let mut ping = s.msg(MsgType::Ping, 0x10, 3);
        ping.body = Body::Gossip(Vec::new());
        ping.offset = 1000;
        let out = s.at(T0_MS + 150).recv(ping.clone());
        assert_eq!(started(&out), None);
        // PAUSED at 1200 while I am at 1000: wait.
        ping.mflags = mflags::PAUSED;
        ping.offset = 1200;
        let out = s.at(T0_MS + 160).recv(ping);
        assert_eq!(started(&out), None);
        assert_eq!(s.node.election.mf_master_offset, Some(1200));
        assert_eq!(started(&s.at(T0_MS + 200).cron()), None);
        // Caught up: the election starts at once (no delay), FORCEACK set.
        s.node.set_repl_offset(1200);
        let out = s.at(T0_MS + 300).cron();
        assert_eq!(scheduled(&out), Some((0, 0)));
        let reqs = sent(&out, MsgType::FailoverAuthRequest);
        assert_eq!(reqs.len(), 5);
        assert_ne!(reqs[0].1.mflags & mflags::FORCEACK, 0);
    }

    #[test]
    fn manual_failover_times_out_after_5_s() {
        let mut s = Sim::replica(4, 15000);
        let m = s.idx(0x10);
        s.node.nm(m).flags &= !FAIL;
        s.at(T0_MS + 100)
            .command(ClusterCommand::Failover(FailoverMode::Default))
            .0
            .unwrap();
        assert!(s.node.manual_failover_in_progress());
        let out = s.at(T0_MS + 5100).cron();
        assert!(!notes(&out).contains(&Note::ManualFailoverTimeout));
        assert!(s.node.manual_failover_in_progress());
        let out = s.at(T0_MS + 5101).cron();
        assert!(notes(&out).contains(&Note::ManualFailoverTimeout));
        assert!(!s.node.manual_failover_in_progress());
    }

    #[test]
    fn manual_failover_honours_retry_time_of_previous_election() {
        // An automatic election at ~T0+1 s, lost; the master comes back.
        let mut s = Sim::replica(6, 15000);
        start_election(&mut s);
        let m = s.idx(0x10);
        s.node.nm(m).flags &= !FAIL;
        let t = s.node.election.failover_auth_time + 10_000;
        s.at(t)
            .command(ClusterCommand::Failover(FailoverMode::Force))
            .0
            .unwrap();
        let mut out = Vec::new();
        for k in 1..=52 {
            out.extend(s.at(t + 100 * k).cron());
        }
        assert_eq!(scheduled(&out), None);
        assert!(sent(&out, MsgType::FailoverAuthRequest).is_empty());
        assert!(notes(&out).contains(&Note::ManualFailoverTimeout));
    }

    #[test]
    fn master_pauses_on_mfstart_and_pings_replica_with_paused_flag() {
        let mut s = Sim::voter(15000);
        let m = s.idx(0x10);
        s.node.nm(m).flags &= !FAIL;
        // Make R (0x50) my replica instead.
        let r = s.idx(0x50);
        s.node.remove_slave(m, r);
        let me = s.node.myself;
        s.node.nm(r).slaveof = Some(me);
        s.node.add_slave(me, r);
        // MFSTART from a node that is not my replica: ignored.
        let mf = s.msg(MsgType::MfStart, 0x30, 3);
        let out = s.at(T0_MS).recv(mf);
        assert!(out.is_empty() || sent(&out, MsgType::Ping).is_empty());
        assert!(!s.node.writes_paused());
        let mf = s.msg(MsgType::MfStart, 0x50, 3);
        let out = s.at(T0_MS).recv(mf);
        let pings = sent(&out, MsgType::Ping);
        assert_eq!(pings.len(), 1);
        assert_eq!(pings[0].0, 0x50);
        assert_eq!(pings[0].1.mflags, mflags::PAUSED);
        assert!(s.node.writes_paused());
        // Every cron pings the replica, flagged PAUSED.
        for k in 1..=3 {
            let out = s.at(T0_MS + 100 * k).cron();
            let pings = sent(&out, MsgType::Ping);
            assert!(pings
                .iter()
                .any(|p| p.0 == 0x50 && p.1.mflags == mflags::PAUSED));
        }
        // Timeout: unpaused, no more PAUSED headers.
        let out = s.at(T0_MS + 5001).cron();
        assert!(notes(&out).contains(&Note::ManualFailoverTimeout));
        assert!(!s.node.writes_paused());
        assert_eq!(s.node.header_mflags(), 0);
    }

    #[test]
    fn replica_migrates_to_orphaned_master_after_5_s() {
        // Me (0x05, smallest ID) and 0x60 replicate A (0x20); master B
        // (0x30) lost its replica (MIGRATE_TO set, no replicas).
        let mut s = Sim::new(1, 15000, 0x05);
        s.peer(0x10, MASTER, 0..5461);
        let a = s.peer(0x20, MASTER, 5461..10923);
        let b = s.peer(0x30, MASTER, 10923..16384);
        s.node.set_master(a);
        let r = s.peer(0x60, SLAVE, 0..0);
        s.node.nm(r).slaveof = Some(a);
        s.node.add_slave(a, r);
        s.node.nm(b).flags |= MIGRATE_TO;
        s.node.state_ok = true;
        s.node.update_state(&mut Vec::new());
        assert!(s.node.state_ok());
        s.at(T0_MS + 100).cron();
        assert_eq!(s.node.master_id(), Some(id(0x20)));
        s.at(T0_MS + 5100).cron();
        assert_eq!(s.node.master_id(), Some(id(0x20)));
        s.at(T0_MS + 5101).cron();
        assert_eq!(s.node.master_id(), Some(id(0x30)));
        // With barrier 2, nobody moves.
        let mut t = Sim::new(1, 15000, 0x05);
        t.node.setup.config.cluster_migration_barrier = 2;
        t.peer(0x10, MASTER, 0..5461);
        let a = t.peer(0x20, MASTER, 5461..10923);
        let b = t.peer(0x30, MASTER, 10923..16384);
        t.node.set_master(a);
        let r = t.peer(0x60, SLAVE, 0..0);
        t.node.nm(r).slaveof = Some(a);
        t.node.add_slave(a, r);
        t.node.nm(b).flags |= MIGRATE_TO;
        t.node.update_state(&mut Vec::new());
        t.at(T0_MS + 100).cron();
        t.at(T0_MS + 6000).cron();
        assert_eq!(t.node.master_id(), Some(id(0x20)));
    }

    /// Four nodes wired together: masters M (0x10), A (0x20), B (0x30) and
    /// R (0x50) replicating M. Messages are delivered at once; `dead` nodes
    /// neither run nor receive.
    struct Cluster {
        sims: Vec<Sim>,
        dead: Vec<bool>,
        now_ms: i64,
        /// (time, node byte, note)
        notes: Vec<(i64, u8, Note)>,
    }

    const IDS: [u8; 4] = [0x10, 0x20, 0x30, 0x50];

    impl Cluster {
        fn new(nt: u64) -> Cluster {
            let slots = |b: u8| match b {
                0x10 => 0..5461,
                0x20 => 5461..10923,
                0x30 => 10923..16384,
                _ => 0..0,
            };
            let mut sims = Vec::new();
            for (k, &me) in IDS.iter().enumerate() {
                let mut s = Sim::new(100 + k as u64, nt, me);
                let my = s.node.myself;
                for j in slots(me) {
                    s.node.add_slot(my, j);
                }
                s.node.nm(my).config_epoch = u64::from(me >> 4).min(3);
                for &b in IDS.iter().filter(|&&b| b != me) {
                    let flags = if b == 0x50 { SLAVE } else { MASTER };
                    let i = s.peer(b, flags, slots(b));
                    s.node.nm(i).config_epoch = u64::from(b >> 4).min(3);
                }
                let m = s.idx(0x10);
                if me == 0x50 {
                    s.node.nm(my).config_epoch = 0;
                    s.node.set_master(m);
                } else {
                    let r = s.idx(0x50);
                    s.node.nm(r).slaveof = Some(m);
                    s.node.nm(r).config_epoch = 0;
                    s.node.add_slave(m, r);
                }
                s.node.current_epoch = 3;
                s.node.update_state(&mut Vec::new());
                sims.push(s);
            }
            Cluster {
                sims,
                dead: vec![false; IDS.len()],
                now_ms: T0_MS,
                notes: Vec::new(),
            }
        }

        fn pos(b: u8) -> usize {
            IDS.iter().position(|&x| x == b).unwrap()
        }

        fn deliver(
            &mut self,
            from: usize,
            out: Vec<Effect>,
            queue: &mut Vec<(usize, usize, Rc<BusMsg>)>,
        ) {
            for e in out {
                match e {
                    Effect::Send { link, msg } => {
                        let node = &self.sims[from].node;
                        let Some(to) = node.links.get(&link).and_then(|l| l.node) else {
                            continue;
                        };
                        let to = Self::pos(node.n(to).name.0[0]);
                        queue.push((from, to, msg));
                    }
                    Effect::Note(n) => self.notes.push((self.now_ms, IDS[from], n)),
                    _ => {}
                }
            }
        }

        /// One 100 ms cron round on every live node, then all traffic.
        fn step(&mut self) {
            self.now_ms += 100;
            let mut queue = Vec::new();
            for k in 0..IDS.len() {
                if self.dead[k] {
                    continue;
                }
                let mut out = Vec::new();
                let now = sim(self.now_ms);
                self.sims[k].node.handle(now, Input::Cron, &mut out);
                self.deliver(k, out, &mut queue);
            }
            let mut q = 0;
            while q < queue.len() {
                let (from, to, msg) = queue[q].clone();
                q += 1;
                if self.dead[to] || self.dead[from] {
                    continue;
                }
                let node = &self.sims[to].node;
                let Some(link) = node.n(node.idx_of(IDS[from])).link else {
                    continue;
                };
                let mut out = Vec::new();
                let now = sim(self.now_ms);
                self.sims[to]
                    .node
                    .handle(now, Input::Recv { link, msg }, &mut out);
                self.deliver(to, out, &mut queue);
            }
        }

        fn first_note(&self, who: u8, f: impl Fn(&Note) -> bool) -> Option<i64> {
            self.notes
                .iter()
                .find(|(_, b, n)| *b == who && f(n))
                .map(|(t, _, _)| *t)
        }
    }

    impl Node {
        fn idx_of(&self, b: u8) -> u32 {
            self.lookup(&id(b)).unwrap()
        }
    }

    #[test]
    fn four_nodes_master_dies_replica_is_elected_and_everyone_agrees() {
        let mut c = Cluster::new(1000);
        for _ in 0..10 {
            c.step();
        }
        c.dead[Cluster::pos(0x10)] = true;
        let killed = c.now_ms;
        for _ in 0..100 {
            c.step();
        }
        let failed = [0x20, 0x30]
            .iter()
            .filter_map(|&b| c.first_note(b, |n| matches!(n, Note::FailMarked { .. })))
            .min()
            .expect("a master marked M FAIL");
        assert!(failed - killed > 1000, "FAIL before node timeout");
        let sched = c
            .first_note(0x50, |n| {
                matches!(n, Note::ElectionScheduled { rank: 0, .. })
            })
            .expect("scheduled");
        // R learns FAIL from the FAIL message at once, and schedules its
        // election in the next cron (Redis: clusterCron, not a todo flag).
        let learned = c
            .first_note(0x50, |n| *n == Note::FailReceived { about: id(0x10) })
            .expect("FAIL received");
        assert_eq!(learned, failed);
        assert_eq!(sched, failed + 100);
        let start = c
            .first_note(0x50, |n| *n == Note::ElectionStarted { epoch: 4 })
            .expect("started");
        assert!((500..1100).contains(&(start - sched)), "{}", start - sched);
        let won = c
            .first_note(0x50, |n| {
                matches!(n, Note::Promoted { config_epoch: 4, old_master, manual: None } if *old_master == id(0x10))
            })
            .expect("promoted");
        assert_eq!(won, start, "votes arrive within the same round");
        for b in [0x20, 0x30] {
            assert!(c
                .first_note(b, |n| *n == Note::VoteGranted { to: id(0x50) })
                .is_some());
        }
        for &b in &[0x20, 0x30, 0x50] {
            let node = &c.sims[Cluster::pos(b)].node;
            let owner = node.slot_owner(0).unwrap();
            assert_eq!(owner.name, id(0x50), "slot 0 as seen by {b:#x}");
            assert_eq!(owner.config_epoch, 4);
            assert!(owner.is_master());
            assert_eq!(node.slot_owner(5460).unwrap().name, id(0x50));
        }
    }
}
