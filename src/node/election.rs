//! Replica election and promotion, manual failover and replica migration:
//! Redis 7.0.15's `clusterHandleSlaveFailover()`,
//! `clusterSendFailoverAuthIfNeeded()`, `clusterFailoverReplaceYourMaster()`,
//! `clusterBumpConfigEpochWithoutConsensus()`, `CLUSTER FAILOVER
//! [FORCE|TAKEOVER]` with MFSTART and the PAUSED header flag, and
//! `clusterHandleSlaveMigration()`.
//!
//! "My replication offset" is `replicationGetSlaveOffset()` on a replica
//! and `master_repl_offset` on a master, and the data age of a replica
//! comes from its link to its master (`server.repl_state`,
//! `server.master->lastinteraction`, `server.repl_down_since`), all read
//! from the node's [`Replication`](super::replication::Replication).

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
    /// a master (what my headers advertise).
    pub fn my_repl_offset(&self) -> u64 {
        let offset = if self.myself().is_slave() {
            self.repl.slave_repl_offset()
        } else {
            self.repl.master_repl_offset()
        };
        offset.max(0) as u64
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
            self.config_epoch_unilateral = true;
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
        let epoch = self.current_epoch;
        out.push(Effect::Note(Note::VoteGranted { to, epoch }));
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
        // 1) Turn this node into a master.
        self.set_node_as_master(me);
        self.with_repl(out, |r, now, ctx, o| {
            r.replication_unset_master(now, ctx.rng, ctx.config, o)
        });
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
            conf: Rc::new(self.nodes_conf()),
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

    /// The data-age test of `clusterHandleSlaveFailover()` at Unix time
    /// `now_ms`: whether this replica's data is recent enough for an
    /// automatic failover (`cluster-replica-validity-factor`, 0 = always).
    /// The age is how long it has been disconnected from its master (since
    /// forever if it never synced), in whole seconds as `server.unixtime`
    /// counts them, minus the node timeout.
    pub fn data_fresh_enough_at(&self, now_ms: i64) -> bool {
        let nt = self.election_node_timeout();
        let unixtime = now_ms / 1000;
        let replica = &self.repl.replica;
        let mut data_age = match replica.master_last_interaction_ms() {
            Some(last) if replica.master_link_up() => (unixtime - last / 1000) * 1000,
            _ => (unixtime - replica.repl_down_since_ms() / 1000) * 1000,
        };
        if data_age > nt {
            data_age -= nt;
        }
        let factor = i64::from(self.setup.config.cluster_replica_validity_factor);
        let ping_period = self.setup.config.repl_ping_replica_period_s as i64;
        factor == 0 || data_age <= ping_period * 1000 + nt * factor
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

        if !manual_failover && !self.data_fresh_enough_at(now) {
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
            if self.setup.planted == Some(super::Planted::PromoteWithoutEpochBump) {
                if let Some(m) = self.n(me).slaveof {
                    self.nm(me).config_epoch = self.n(m).config_epoch;
                }
            } else if self.n(me).config_epoch < self.election.failover_auth_epoch {
                self.nm(me).config_epoch = self.election.failover_auth_epoch;
                self.config_epoch_unilateral = false;
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
                self.handle_slave_migration(max_slaves, out);
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
    pub(super) fn handle_slave_migration(&mut self, max_slaves: u32, out: &mut Vec<Effect>) {
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
                self.set_master(t, out);
            }
        }
    }
}

#[cfg(test)]
mod tests;
