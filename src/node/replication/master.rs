//! The master side: clients on this node's port that speak the replication
//! protocol, `syncCommand` / `masterTryPartialResynchronization`, the
//! `BGSAVE` child of a full sync, `replicationFeedSlaves`, output buffer
//! limits, and the master half of `replicationCron`.

use std::collections::BTreeMap;
use std::rc::Rc;

use crate::engine::SimTime;
use crate::node::argv::Argv;
use crate::node::config::Config;
use crate::node::persistence::PersistEffect;
use crate::node::LinkId;

use super::backlog::BufRef;
use super::rdb::{self, RdbSnapshot, RDB_CHUNK_BYTES, RDB_EOF_MARK_SIZE};
use super::{
    resp, DropReason, ReplCommand, ReplCtx, ReplEffect, ReplId, ReplMsg, ReplNote, ReplState,
    ReplTimer, Replication, AUTH_NOPASS_ERR, BGSAVE_FAILED_ERR, LOADING_ERR, NOAUTH_ERR,
    NOMASTERLINK_ERR, WRONGPASS_ERR,
};

/// `SLAVE_CAPA_EOF`, `SLAVE_CAPA_PSYNC2`.
const SLAVE_CAPA_EOF: u8 = 1 << 0;
const SLAVE_CAPA_PSYNC2: u8 = 1 << 1;

/// `SLAVE_STATE_*`: where a replica is in its synchronization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlaveReplState {
    /// Waiting for a `BGSAVE` to start (diskless delay, or a child busy).
    WaitBgsaveStart,
    /// `+FULLRESYNC` sent; the child is producing (and, diskless, sending)
    /// the RDB; the stream accumulates in its output buffer.
    WaitBgsaveEnd,
    /// Disk-based: the RDB file is being sent.
    SendBulk,
    Online,
}

/// A client connected to this node's port (Redis's `client`), a replica
/// once it sent `PSYNC` or `SYNC`.
#[derive(Debug)]
pub(super) struct Client {
    authenticated: bool,
    /// `lastinteraction` (Unix seconds).
    lastinteraction_s: i64,
    slave_capa: u8,
    slave_listening_port: u16,
    /// Came with `SYNC`: no `+FULLRESYNC`, no ACKs expected.
    pre_psync: bool,
    /// A bulk message is on the wire (the socket is not writable yet).
    in_flight: bool,
    slave: Option<Slave>,
}

/// The replica part of a client (`CLIENT_SLAVE`).
#[derive(Debug)]
pub(super) struct Slave {
    replstate: SlaveReplState,
    psync_initial_offset: i64,
    repl_ack_off: i64,
    repl_ack_time_s: i64,
    /// Diskless: online, but the stream starts with its first ACK.
    repl_start_cmd_stream_on_ack: bool,
    /// Its output buffer: a reference into the replication buffer.
    obuf: Option<BufRef>,
    obuf_soft_limit_reached_time_s: i64,
    /// Scheduled to be freed (`CLIENT_CLOSE_ASAP`).
    close_asap: Option<DropReason>,
    /// Disk-based: the RDB file being sent (`repldboff`, `repldbsize`).
    bulk: Option<BulkSend>,
    /// Diskless: when a write of the RDB last stayed incomplete; 0 once done.
    repl_last_partial_write_s: i64,
}

#[derive(Debug)]
struct BulkSend {
    sent: u64,
    size: u64,
    rdb: Rc<RdbSnapshot>,
}

/// The `BGSAVE` child of a full sync.
#[derive(Debug)]
struct RdbChild {
    id: u64,
    diskless: bool,
    rdb: Rc<RdbSnapshot>,
    used_memory: u64,
    /// When `fork()` returned and the child started.
    started: SimTime,
    save_us: SimTime,
    /// When the child exits: disk, once the file is written; diskless, once
    /// the parent read its EOF; killed, at once.
    exit_at: Option<SimTime>,
    killed: bool,
    /// Writes the parent executed since the fork (copy-on-write).
    writes: u64,
    /// Diskless: the replicas being fed (`rdb_pipe_conns`), the payload size
    /// on the wire, what was handed to the sockets, and a produced chunk
    /// waiting in the pipe.
    conns: Vec<LinkId>,
    total: u64,
    sent: u64,
    ready: Option<u64>,
}

impl RdbChild {
    /// Time to produce `len` bytes from byte `from` of the payload.
    fn produce_us(&self, from: u64, len: u64) -> SimTime {
        let at = |b: u64| u128::from(self.save_us) * u128::from(b) / u128::from(self.total.max(1));
        (at(from + len) - at(from)) as SimTime
    }

    fn next_chunk(&self) -> u64 {
        RDB_CHUNK_BYTES.min(self.total - self.sent)
    }
}

/// One replica as `INFO replication` lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlaveInfo {
    pub link: LinkId,
    pub state: SlaveReplState,
    pub listening_port: u16,
    pub ack_offset: i64,
    /// Output buffer (`omem`).
    pub obuf_bytes: u64,
}

/// The master half of [`Replication`].
#[derive(Debug)]
pub struct ReplMaster {
    pub(super) clients: BTreeMap<LinkId, Client>,
    /// `server.slaves`, in the order they became replicas.
    slaves: Vec<LinkId>,
    child: Option<RdbChild>,
    next_child_id: u64,
    repl_good_slaves_count: u32,
    pub(super) repl_no_slaves_since_s: i64,
    /// `server.slaveseldb`: -1 forces a `SELECT` before the next command.
    pub(super) slaveseldb: i32,
}

impl ReplMaster {
    pub(super) fn new(unixtime: i64) -> ReplMaster {
        ReplMaster {
            clients: BTreeMap::new(),
            slaves: Vec::new(),
            child: None,
            next_child_id: 1,
            repl_good_slaves_count: 0,
            repl_no_slaves_since_s: unixtime,
            slaveseldb: -1,
        }
    }

    fn slave(&self, link: LinkId) -> Option<&Slave> {
        self.clients.get(&link).and_then(|c| c.slave.as_ref())
    }

    fn slave_mut(&mut self, link: LinkId) -> Option<&mut Slave> {
        self.clients.get_mut(&link).and_then(|c| c.slave.as_mut())
    }

    /// `connected_slaves`.
    pub fn connected_slaves(&self) -> usize {
        self.slaves.len()
    }

    /// `min_slaves_good_slaves` as last refreshed.
    pub fn good_slaves(&self) -> u32 {
        self.repl_good_slaves_count
    }

    pub(super) fn child_running(&self) -> bool {
        self.child.is_some()
    }

    /// Copy-on-write so far of the running child, if any.
    pub fn current_cow_size(&self) -> Option<u64> {
        self.child
            .as_ref()
            .map(|c| rdb::cow_bytes(c.writes, c.used_memory))
    }
}

/// `checkClientOutputBufferLimits` for a replica using `used` bytes.
fn obuf_limit_reached(s: &mut Slave, used: u64, cfg: &Config, unixtime: i64) -> Option<DropReason> {
    let lim = cfg.client_output_buffer_limit.replica;
    // A hard limit below the backlog size is raised to it.
    let hard_limit = lim.hard_limit_bytes.max(cfg.repl_backlog_size_bytes);
    let hard = lim.hard_limit_bytes != 0 && used >= hard_limit;
    let mut soft = lim.soft_limit_bytes != 0 && used >= lim.soft_limit_bytes;
    if soft {
        if s.obuf_soft_limit_reached_time_s == 0 {
            s.obuf_soft_limit_reached_time_s = unixtime;
            soft = false;
        } else if unixtime - s.obuf_soft_limit_reached_time_s <= lim.soft_seconds as i64 {
            soft = false;
        }
    } else {
        s.obuf_soft_limit_reached_time_s = 0;
    }
    if hard {
        Some(DropReason::ObufHardLimit { used })
    } else if soft {
        Some(DropReason::ObufSoftLimit { used })
    } else {
        None
    }
}

impl Replication {
    /// `INFO replication`'s replica lines.
    pub fn slaves(&self) -> impl Iterator<Item = SlaveInfo> + '_ {
        self.master.slaves.iter().filter_map(move |&link| {
            let c = &self.master.clients[&link];
            let s = c.slave.as_ref()?;
            Some(SlaveInfo {
                link,
                state: s.replstate,
                listening_port: c.slave_listening_port,
                ack_offset: s.repl_ack_off,
                obuf_bytes: self.buf.usage(s.obuf),
            })
        })
    }

    /// `checkGoodReplicasStatus`: may a write be executed? If not, the
    /// client gets [`super::NOREPLICAS_ERR`].
    pub fn check_good_replicas_status(&self, cfg: &Config) -> bool {
        self.replica.masterhost.is_some()
            || cfg.min_replicas_max_lag_s == 0
            || cfg.min_replicas_to_write == 0
            || self.master.repl_good_slaves_count >= cfg.min_replicas_to_write
    }

    /// `refreshGoodSlavesCount` at `now` (`CONFIG SET min-replicas-*`).
    pub fn refresh_good_slaves_count_at(&mut self, now: SimTime, cfg: &Config) {
        self.set_time(now);
        self.refresh_good_slaves_count(cfg);
    }

    /// `resizeReplicationBacklog` at `now` (`CONFIG SET repl-backlog-size`,
    /// at least `CONFIG_REPL_BACKLOG_MIN_SIZE`): trim the backlog to the
    /// new size.
    pub fn resize_replication_backlog(&mut self, now: SimTime, cfg: &Config) {
        self.set_time(now);
        self.buf.trim(cfg.repl_backlog_size_bytes);
    }

    /// `refreshGoodSlavesCount`.
    fn refresh_good_slaves_count(&mut self, cfg: &Config) {
        if cfg.min_replicas_to_write == 0 || cfg.min_replicas_max_lag_s == 0 {
            return;
        }
        let now = self.unixtime();
        let lag = i64::from(cfg.min_replicas_max_lag_s);
        self.master.repl_good_slaves_count = self
            .master
            .slaves
            .iter()
            .filter_map(|l| self.master.slave(*l))
            .filter(|s| s.replstate == SlaveReplState::Online && now - s.repl_ack_time_s <= lag)
            .count() as u32;
    }

    // ----- clients --------------------------------------------------------

    pub(super) fn accept_client(&mut self, link: LinkId, cfg: &Config) {
        let client = Client {
            authenticated: cfg.requirepass.is_none(),
            lastinteraction_s: self.unixtime(),
            slave_capa: 0,
            slave_listening_port: 0,
            pre_psync: false,
            in_flight: false,
            slave: None,
        };
        self.master.clients.insert(link, client);
    }

    fn reply(link: LinkId, msg: ReplMsg, out: &mut Vec<ReplEffect>) {
        out.push(ReplEffect::Send { link, msg });
    }

    /// A command from a client (`processCommand` for the commands of the
    /// replication protocol).
    pub(super) fn process_client_msg(
        &mut self,
        link: LinkId,
        msg: ReplMsg,
        ctx: &mut ReplCtx,
        out: &mut Vec<ReplEffect>,
    ) {
        let now = self.unixtime();
        let loading = self.replica.loading();
        let Some(c) = self.master.clients.get_mut(&link) else {
            return;
        };
        c.lastinteraction_s = now;
        if let ReplMsg::Newline = msg {
            // An empty inline command: a replica loading its RDB is alive.
            if let Some(s) = &mut c.slave {
                s.repl_ack_time_s = now;
            }
            return;
        }
        if !c.authenticated && !matches!(msg, ReplMsg::Auth { .. }) {
            return Self::reply(link, ReplMsg::Error(NOAUTH_ERR.into()), out);
        }
        if (loading || ctx.loading)
            && matches!(msg, ReplMsg::Ping | ReplMsg::Psync { .. } | ReplMsg::Sync)
        {
            return Self::reply(link, ReplMsg::Error(LOADING_ERR.into()), out);
        }
        match msg {
            ReplMsg::Ping => Self::reply(link, ReplMsg::Pong, out),
            ReplMsg::Auth { user, password } => {
                let reply = match (&ctx.config.requirepass, user.as_deref()) {
                    (None, None) => ReplMsg::Error(AUTH_NOPASS_ERR.into()),
                    (None, Some("default")) => ReplMsg::Ok,
                    (Some(pass), None | Some("default")) if *pass == password => ReplMsg::Ok,
                    _ => ReplMsg::Error(WRONGPASS_ERR.into()),
                };
                c.authenticated |= matches!(reply, ReplMsg::Ok);
                Self::reply(link, reply, out);
            }
            ReplMsg::ReplconfListeningPort { port } => {
                c.slave_listening_port = port;
                Self::reply(link, ReplMsg::Ok, out);
            }
            ReplMsg::ReplconfCapa => {
                c.slave_capa |= SLAVE_CAPA_EOF | SLAVE_CAPA_PSYNC2;
                Self::reply(link, ReplMsg::Ok, out);
            }
            ReplMsg::ReplconfAck { offset } => self.replconf_ack(link, offset, ctx, out),
            ReplMsg::Psync { replid, offset } => {
                self.sync_command(link, Some((replid, offset)), ctx, out)
            }
            ReplMsg::Sync => self.sync_command(link, None, ctx, out),
            // Replies and data only a master sends: not commands.
            ReplMsg::Newline
            | ReplMsg::Pong
            | ReplMsg::Ok
            | ReplMsg::Error(_)
            | ReplMsg::FullResync { .. }
            | ReplMsg::Continue { .. }
            | ReplMsg::RdbPayload { .. }
            | ReplMsg::Stream { .. } => {}
        }
    }

    /// `REPLCONF ACK <offset>`: no reply.
    fn replconf_ack(
        &mut self,
        link: LinkId,
        offset: i64,
        ctx: &mut ReplCtx,
        out: &mut Vec<ReplEffect>,
    ) {
        let now = self.unixtime();
        let Some(s) = self.master.slave_mut(link) else {
            return;
        };
        s.repl_ack_off = s.repl_ack_off.max(offset);
        s.repl_ack_time_s = now;
        let state = s.replstate;
        if self.master.child.is_some() && state == SlaveReplState::WaitBgsaveEnd {
            self.check_children_done(ctx, out);
        }
        let Some(s) = self.master.slave_mut(link) else {
            return;
        };
        if s.repl_start_cmd_stream_on_ack && s.replstate == SlaveReplState::Online {
            s.repl_start_cmd_stream_on_ack = false;
            self.write_to_slave(link, ctx.config, out);
        }
    }

    /// `freeClient` of a client on my port. `close`: we close the
    /// connection (it is not already gone).
    pub(super) fn free_client(
        &mut self,
        link: LinkId,
        close: bool,
        reason: Option<DropReason>,
        cfg: &Config,
        out: &mut Vec<ReplEffect>,
    ) {
        let Some(c) = self.master.clients.remove(&link) else {
            return;
        };
        if let (Some(reason), Some(_)) = (reason, &c.slave) {
            // Before the close, while the link still names the replica.
            out.push(ReplEffect::Note(ReplNote::ReplicaDropped { link, reason }));
        }
        if close {
            out.push(ReplEffect::Close { link });
        }
        let Some(s) = c.slave else {
            return;
        };
        if let Some(r) = s.obuf {
            self.buf.release(r, cfg.repl_backlog_size_bytes);
        }
        self.master.slaves.retain(|&l| l != link);
        let waiting_end = self.master.slaves.iter().any(|&l| {
            self.master
                .slave(l)
                .is_some_and(|o| o.replstate == SlaveReplState::WaitBgsaveEnd)
        });
        let mut pump = false;
        if let Some(child) = &mut self.master.child {
            let kill = if child.diskless {
                match child.conns.iter().position(|&l| l == link) {
                    Some(i) => {
                        child.conns.remove(i);
                        // The others may be waiting for this one; with none
                        // left: "Diskless rdb transfer, last replica
                        // dropped, killing fork child."
                        pump = !child.conns.is_empty();
                        child.conns.is_empty()
                    }
                    None => false,
                }
            } else {
                cfg.save.is_empty() && s.replstate == SlaveReplState::WaitBgsaveEnd && !waiting_end
            };
            if kill {
                child.killed = true;
                child.exit_at = Some(self.now);
            }
        }
        if pump {
            self.rdb_pipe_pump(out);
        }
        if self.master.slaves.is_empty() {
            self.master.repl_no_slaves_since_s = self.unixtime();
        }
        self.refresh_good_slaves_count(cfg);
    }

    /// `disconnectSlaves`.
    pub(super) fn disconnect_slaves(&mut self, cfg: &Config, out: &mut Vec<ReplEffect>) {
        for link in self.master.slaves.clone() {
            self.free_client(link, true, None, cfg, out);
        }
    }

    // ----- SYNC / PSYNC -----------------------------------------------------

    /// `syncCommand`.
    fn sync_command(
        &mut self,
        link: LinkId,
        psync: Option<(Option<ReplId>, i64)>,
        ctx: &mut ReplCtx,
        out: &mut Vec<ReplEffect>,
    ) {
        if self.master.slave(link).is_some() {
            return;
        }
        if self.replica.masterhost.is_some() && self.replica.repl_state != ReplState::Connected {
            return Self::reply(link, ReplMsg::Error(NOMASTERLINK_ERR.into()), out);
        }
        match psync {
            Some((replid, offset)) => {
                if self.master_try_partial_resynchronization(link, replid, offset, ctx.config, out)
                {
                    self.stats.sync_partial_ok += 1;
                    return;
                }
                if replid.is_some() {
                    self.stats.sync_partial_err += 1;
                }
            }
            None => {
                if let Some(c) = self.master.clients.get_mut(&link) {
                    c.pre_psync = true;
                }
            }
        }
        self.stats.sync_full += 1;
        let now = self.unixtime();
        let Some(c) = self.master.clients.get_mut(&link) else {
            return;
        };
        c.slave = Some(Slave {
            replstate: SlaveReplState::WaitBgsaveStart,
            psync_initial_offset: 0,
            repl_ack_off: 0,
            repl_ack_time_s: now,
            repl_start_cmd_stream_on_ack: false,
            obuf: None,
            obuf_soft_limit_reached_time_s: 0,
            close_asap: None,
            bulk: None,
            repl_last_partial_write_s: 0,
        });
        let capa = c.slave_capa;
        self.master.slaves.push(link);
        if self.master.slaves.len() == 1 && !self.buf.has_backlog() {
            // A new backlog starts a new history.
            self.change_replication_id(ctx.rng);
            self.clear_replication_id2();
            self.buf.create_backlog();
        }
        match self.master.child.as_ref().map(|c| c.diskless) {
            Some(false) => {
                // A disk BGSAVE is running: attach if another replica is
                // registering the differences since its fork.
                let other = self.master.slaves.iter().copied().find(|&l| {
                    self.master
                        .slave(l)
                        .is_some_and(|s| s.replstate == SlaveReplState::WaitBgsaveEnd)
                });
                if let Some(other) = other {
                    let other_capa = self.master.clients[&other].slave_capa;
                    if capa & other_capa == other_capa {
                        let (obuf, initial) = {
                            let s = self.master.slave(other).expect("found above");
                            (s.obuf, s.psync_initial_offset)
                        };
                        if let Some(r) = obuf {
                            self.buf.incr_ref(r);
                        }
                        if let Some(s) = self.master.slave_mut(link) {
                            s.obuf = obuf;
                        }
                        self.setup_slave_for_full_resync(link, initial, out);
                    }
                }
            }
            Some(true) => {} // a diskless child: wait for the next BGSAVE
            None if ctx.child_busy => {} // a save point's child: wait for it
            None => {
                let cfg = ctx.config;
                let delayed = cfg.repl_diskless_sync
                    && capa & SLAVE_CAPA_EOF != 0
                    && cfg.repl_diskless_sync_delay_s > 0;
                if !delayed {
                    self.start_bgsave_for_replication(capa, ctx, out);
                }
            }
        }
    }

    /// `masterTryPartialResynchronization`: `+CONTINUE` and the backlog
    /// from `psync_offset` if the replica's history is mine (same ID, or my
    /// previous ID up to `second_replid_offset`) and the backlog still holds
    /// that offset.
    fn master_try_partial_resynchronization(
        &mut self,
        link: LinkId,
        replid: Option<ReplId>,
        psync_offset: i64,
        cfg: &Config,
        out: &mut Vec<ReplEffect>,
    ) -> bool {
        let same_history = replid == Some(self.replid)
            || (replid == Some(self.replid2) && psync_offset <= self.second_replid_offset);
        if !same_history {
            return false;
        }
        let Some((first, histlen)) = self.buf.backlog_range() else {
            return false;
        };
        if psync_offset < first || psync_offset > first + histlen {
            return false;
        }
        let now = self.unixtime();
        let obuf = self.buf.reference_offset(psync_offset);
        let replid_now = self.replid;
        let Some(c) = self.master.clients.get_mut(&link) else {
            return false;
        };
        c.slave = Some(Slave {
            replstate: SlaveReplState::Online,
            psync_initial_offset: psync_offset,
            repl_ack_off: 0,
            repl_ack_time_s: now,
            repl_start_cmd_stream_on_ack: false,
            obuf,
            obuf_soft_limit_reached_time_s: 0,
            close_asap: None,
            bulk: None,
            repl_last_partial_write_s: 0,
        });
        let psync2 = c.slave_capa & SLAVE_CAPA_PSYNC2 != 0;
        self.master.slaves.push(link);
        Self::reply(
            link,
            ReplMsg::Continue {
                replid: psync2.then_some(replid_now),
            },
            out,
        );
        out.push(ReplEffect::Note(ReplNote::PartialResync {
            link,
            offset: psync_offset,
            bytes: first + histlen - psync_offset,
        }));
        self.write_to_slave(link, cfg, out);
        self.refresh_good_slaves_count(cfg);
        true
    }

    /// `replicationSetupSlaveForFullResync`.
    fn setup_slave_for_full_resync(
        &mut self,
        link: LinkId,
        offset: i64,
        out: &mut Vec<ReplEffect>,
    ) {
        let replid = self.replid;
        let Some(c) = self.master.clients.get_mut(&link) else {
            return;
        };
        let Some(s) = &mut c.slave else {
            return;
        };
        s.psync_initial_offset = offset;
        s.replstate = SlaveReplState::WaitBgsaveEnd;
        self.master.slaveseldb = -1;
        if !c.pre_psync {
            Self::reply(link, ReplMsg::FullResync { replid, offset }, out);
        }
        out.push(ReplEffect::Note(ReplNote::FullResync { link, offset }));
    }

    // ----- the BGSAVE child -------------------------------------------------

    /// `startBgsaveForReplication`: fork a child writing the RDB to the
    /// replicas' sockets (diskless) or to disk, and set up every replica
    /// waiting for it.
    fn start_bgsave_for_replication(
        &mut self,
        mincapa: u8,
        ctx: &mut ReplCtx,
        out: &mut Vec<ReplEffect>,
    ) {
        let cfg = ctx.config;
        let diskless = cfg.repl_diskless_sync && mincapa & SLAVE_CAPA_EOF != 0;
        let offset = self.buf.master_repl_offset;
        if ctx.fork_enomem {
            self.fork_failed(diskless, offset, cfg, out);
            return;
        }
        self.stats.total_forks += 1;
        let ks = &*ctx.keyspace;
        let used_memory = ks.used_memory();
        let rdb = RdbSnapshot::take(ks, self.unixtime(), Some((self.replid, offset)));
        let fork_us = rdb::fork_us(used_memory);
        let started = self.now + fork_us;
        let save_us = rdb::rdb_save_us(used_memory);
        let id = self.master.next_child_id;
        self.master.next_child_id += 1;
        out.push(ReplEffect::Note(ReplNote::Fork {
            diskless,
            fork_us,
            used_memory,
            rdb_bytes: rdb.rdb_bytes,
        }));
        // `$EOF:<40 bytes mark>\r\n` + RDB + mark.
        let total = 5 + RDB_EOF_MARK_SIZE + 2 + rdb.rdb_bytes + RDB_EOF_MARK_SIZE;
        let mut child = RdbChild {
            id,
            diskless,
            rdb,
            used_memory,
            started,
            save_us,
            exit_at: (!diskless).then_some(started + save_us),
            killed: false,
            writes: 0,
            conns: Vec::new(),
            total,
            sent: 0,
            ready: None,
        };
        for link in self.master.slaves.clone() {
            if self.master.slave(link).map(|s| s.replstate) == Some(SlaveReplState::WaitBgsaveStart)
            {
                self.setup_slave_for_full_resync(link, offset, out);
                if diskless {
                    child.conns.push(link);
                }
            }
        }
        if diskless {
            out.push(ReplEffect::Timer {
                at: child.started + child.produce_us(0, child.next_chunk()),
                timer: ReplTimer::RdbChunk { child: id },
            });
        }
        self.master.child = Some(child);
    }

    /// The `fork()` of a full sync failed: the replicas waiting for it get
    /// `-ERR BGSAVE failed, replication can't continue` and are dropped
    /// once it is written (`CLIENT_CLOSE_AFTER_REPLY`). A diskless sync had
    /// already sent them `+FULLRESYNC` (`rdbSaveToSlavesSockets` sets them
    /// up before forking).
    fn fork_failed(
        &mut self,
        diskless: bool,
        offset: i64,
        cfg: &Config,
        out: &mut Vec<ReplEffect>,
    ) {
        out.push(ReplEffect::Note(ReplNote::ForkFailed { diskless }));
        for link in self.master.slaves.clone() {
            if self.master.slave(link).map(|s| s.replstate) != Some(SlaveReplState::WaitBgsaveStart)
            {
                continue;
            }
            if diskless {
                self.setup_slave_for_full_resync(link, offset, out);
            }
            Self::reply(link, ReplMsg::Error(BGSAVE_FAILED_ERR.into()), out);
            out.push(ReplEffect::CloseAfterReply { link });
            self.free_client(link, false, None, cfg, out);
        }
    }

    /// The diskless child produced the next chunk into the pipe.
    pub(super) fn rdb_chunk_produced(&mut self, id: u64, out: &mut Vec<ReplEffect>) {
        let Some(child) = &mut self.master.child else {
            return;
        };
        if child.id != id || child.killed {
            return;
        }
        child.ready = Some(child.next_chunk());
        self.rdb_pipe_pump(out);
    }

    /// `rdbPipeReadHandler`: once every replica took the previous chunk, hand
    /// them the next one and let the child produce the one after; after the
    /// last one, the child may exit.
    fn rdb_pipe_pump(&mut self, out: &mut Vec<ReplEffect>) {
        let now = self.unixtime();
        let Some(child) = &mut self.master.child else {
            return;
        };
        if !child.diskless || child.killed {
            return;
        }
        if child
            .conns
            .iter()
            .any(|l| self.master.clients.get(l).is_some_and(|c| c.in_flight))
        {
            return;
        }
        let Some(len) = child.ready.take() else {
            if child.sent == child.total && child.exit_at.is_none() {
                child.exit_at = Some(self.now);
            }
            return;
        };
        let last = child.sent + len == child.total;
        for &link in &child.conns {
            let Some(c) = self.master.clients.get_mut(&link) else {
                continue;
            };
            c.in_flight = true;
            if let Some(s) = &mut c.slave {
                s.repl_last_partial_write_s = now;
            }
            let msg = ReplMsg::RdbPayload {
                bytes: len,
                diskless: true,
                rdb: last.then(|| child.rdb.clone()),
            };
            out.push(ReplEffect::Send { link, msg });
        }
        child.sent += len;
        if !last {
            let next = child.next_chunk();
            out.push(ReplEffect::Timer {
                at: self.now + child.produce_us(child.sent, next),
                timer: ReplTimer::RdbChunk { child: child.id },
            });
        }
    }

    /// `checkChildrenDone` + `backgroundSaveDoneHandler`, then any BGSAVE
    /// replicas are waiting for.
    pub(super) fn check_children_done(&mut self, ctx: &mut ReplCtx, out: &mut Vec<ReplEffect>) {
        let exited = self
            .master
            .child
            .as_ref()
            .and_then(|c| c.exit_at)
            .is_some_and(|t| t <= self.now);
        if !exited {
            return;
        }
        let child = self.master.child.take().expect("checked above");
        let ok = !child.killed;
        out.push(ReplEffect::Note(ReplNote::ChildDone {
            ok,
            diskless: child.diskless,
            cow_bytes: rdb::cow_bytes(child.writes, child.used_memory),
        }));
        // A child is only killed once no replica waits for it (`freeClient`,
        // `rdbPipeReadHandler`): then there is no replica to update.
        if ok {
            if !child.diskless {
                // A disk BGSAVE writes `dump.rdb`.
                let rdb = child.rdb.clone();
                out.push(ReplEffect::Persist(PersistEffect::RdbSaved { rdb }));
            }
            self.update_slaves_waiting_bgsave(&child, ctx.config, out);
        }
        self.replication_start_pending_fork(ctx, out);
    }

    /// `updateSlavesWaitingBgsave` after a successful child.
    fn update_slaves_waiting_bgsave(
        &mut self,
        child: &RdbChild,
        cfg: &Config,
        out: &mut Vec<ReplEffect>,
    ) {
        for link in self.master.slaves.clone() {
            let Some(s) = self.master.slave_mut(link) else {
                continue;
            };
            if s.replstate != SlaveReplState::WaitBgsaveEnd {
                continue;
            }
            if child.diskless {
                // Online, but the stream waits for the first ACK.
                s.repl_start_cmd_stream_on_ack = true;
                self.replica_put_online(link, cfg, out);
            } else {
                let size = 1 + resp::digits(child.rdb.rdb_bytes) + 2 + child.rdb.rdb_bytes;
                s.replstate = SlaveReplState::SendBulk;
                s.bulk = Some(BulkSend {
                    sent: 0,
                    size,
                    rdb: child.rdb.clone(),
                });
                self.send_bulk_to_slave(link, cfg, out);
            }
        }
    }

    /// `sendBulkToSlave`: the next part of the RDB file; after the last,
    /// the replica is online and its buffered stream follows.
    fn send_bulk_to_slave(&mut self, link: LinkId, cfg: &Config, out: &mut Vec<ReplEffect>) {
        let Some(c) = self.master.clients.get_mut(&link) else {
            return;
        };
        if c.in_flight {
            return;
        }
        let Some(bulk) = c.slave.as_mut().and_then(|s| s.bulk.as_mut()) else {
            return;
        };
        let len = RDB_CHUNK_BYTES.min(bulk.size - bulk.sent);
        bulk.sent += len;
        let last = bulk.sent == bulk.size;
        let msg = ReplMsg::RdbPayload {
            bytes: len,
            diskless: false,
            rdb: last.then(|| bulk.rdb.clone()),
        };
        c.in_flight = true;
        out.push(ReplEffect::Send { link, msg });
        if last {
            if let Some(s) = &mut c.slave {
                s.bulk = None;
            }
            self.replica_put_online(link, cfg, out);
            self.write_to_slave(link, cfg, out);
        }
    }

    /// `replicaPutOnline`.
    fn replica_put_online(&mut self, link: LinkId, cfg: &Config, out: &mut Vec<ReplEffect>) {
        let now = self.unixtime();
        if let Some(s) = self.master.slave_mut(link) {
            s.replstate = SlaveReplState::Online;
            s.repl_ack_time_s = now;
        }
        self.refresh_good_slaves_count(cfg);
        out.push(ReplEffect::Note(ReplNote::ReplicaOnline { link }));
    }

    /// `shouldStartChildReplication` + `startBgsaveForReplication`: replicas
    /// waiting for a BGSAVE get one once no child runs and, diskless, the
    /// oldest waited `repl-diskless-sync-delay` (or enough of them wait).
    fn replication_start_pending_fork(&mut self, ctx: &mut ReplCtx, out: &mut Vec<ReplEffect>) {
        if self.master.child.is_some() || ctx.child_busy {
            return;
        }
        let now = self.unixtime();
        let (mut waiting, mut max_idle, mut mincapa) = (0u32, 0i64, u8::MAX);
        for l in &self.master.slaves {
            let c = &self.master.clients[l];
            if c.slave.as_ref().map(|s| s.replstate) == Some(SlaveReplState::WaitBgsaveStart) {
                waiting += 1;
                max_idle = max_idle.max(now - c.lastinteraction_s);
                mincapa &= c.slave_capa;
            }
        }
        let cfg = ctx.config;
        let max = cfg.repl_diskless_sync_max_replicas;
        if waiting > 0
            && (!cfg.repl_diskless_sync
                || (max > 0 && waiting >= max)
                || max_idle >= i64::from(cfg.repl_diskless_sync_delay_s))
        {
            self.start_bgsave_for_replication(mincapa, ctx, out);
        }
    }

    /// `checkChildrenDone` after another child (a save point's) exited:
    /// the fork replicas wait for may start now.
    pub fn child_exited(&mut self, now: SimTime, ctx: &mut ReplCtx, out: &mut Vec<ReplEffect>) {
        self.set_time(now);
        self.replication_start_pending_fork(ctx, out);
    }

    // ----- the stream -------------------------------------------------------

    /// `replicationFeedSlaves` for a command executed on this master
    /// (database 0): a `SELECT 0` first if the stream needs one, then the
    /// command, into the backlog and every replica's output buffer; replicas
    /// over their output buffer limit are dropped, idle online ones get it.
    pub fn replication_feed_slaves(
        &mut self,
        now: SimTime,
        cmd: Rc<ReplCommand>,
        cfg: &Config,
        out: &mut Vec<ReplEffect>,
    ) {
        self.set_time(now);
        if let Some(child) = &mut self.master.child {
            child.writes += 1;
        }
        self.feed_slaves(cmd, true, cfg, out);
    }

    /// `replicationRequestAckFromSlaves` as `beforeSleep` carries it out:
    /// `REPLCONF GETACK *` into the stream (with the current database: no
    /// `SELECT`); each replica answers with `REPLCONF ACK`.
    pub fn replication_request_ack_from_slaves(
        &mut self,
        now: SimTime,
        cfg: &Config,
        out: &mut Vec<ReplEffect>,
    ) {
        self.set_time(now);
        let argv = [&b"REPLCONF"[..], b"GETACK", b"*"];
        self.feed_slaves(ReplCommand::new(Argv::from_slices(&argv)), false, cfg, out);
    }

    /// `replicationFeedSlaves`; `select`: the command touches database 0
    /// (a `PING` is fed with `dictid = slaveseldb`: no `SELECT`).
    fn feed_slaves(
        &mut self,
        cmd: Rc<ReplCommand>,
        select: bool,
        cfg: &Config,
        out: &mut Vec<ReplEffect>,
    ) {
        if self.replica.masterhost.is_some() {
            return;
        }
        if !self.buf.has_backlog() && self.master.slaves.is_empty() {
            return;
        }
        if select && self.master.slaveseldb != 0 {
            let cmd = ReplCommand::new(Argv::from_slices(&[b"SELECT", b"0"]));
            let size = cmd.size;
            self.buf.log_command(cmd);
            self.feed_replication_buffer(size, cfg);
            self.master.slaveseldb = 0;
        }
        self.buf.log_command(Rc::clone(&cmd));
        if self.buf.tail_room() >= cmd.size {
            // The pieces would all go to the tail block: no new block, so
            // no limit check nor trim between them; feeding them at once
            // is the same.
            self.feed_replication_buffer(cmd.size, cfg);
        } else {
            for piece in resp::feed_pieces(&cmd.argv) {
                self.feed_replication_buffer(piece, cfg);
            }
        }
        self.free_clients_close_asap(cfg, out);
        self.write_to_online_slaves(cfg, out);
    }

    /// `replicationFeedStreamFromMasterStream`: a replica keeps the stream
    /// it applied in its own backlog (same offsets as its master's).
    pub(super) fn feed_stream_from_master(
        &mut self,
        commands: &[Rc<ReplCommand>],
        bytes: u64,
        cfg: &Config,
        out: &mut Vec<ReplEffect>,
    ) {
        if !self.buf.has_backlog() {
            return;
        }
        let mut offset = self.buf.master_repl_offset;
        for c in commands {
            self.buf.log_command_at(offset + 1, c.clone());
            offset += c.size as i64;
        }
        self.feed_replication_buffer(bytes, cfg);
        self.free_clients_close_asap(cfg, out);
        self.write_to_online_slaves(cfg, out);
    }

    /// `feedReplicationBuffer`: append `len` bytes, give replicas that have
    /// no reference yet one where these bytes start, and check their output
    /// buffer limits each time a block is allocated.
    fn feed_replication_buffer(&mut self, len: u64, cfg: &Config) {
        if !self.buf.has_backlog() {
            return;
        }
        let now = self.unixtime();
        let size = cfg.repl_backlog_size_bytes;
        let mut left = len;
        while left > 0 {
            let a = self.buf.append(left, size);
            left -= a.copied;
            for link in &self.master.slaves {
                let Some(s) = self
                    .master
                    .clients
                    .get_mut(link)
                    .and_then(|c| c.slave.as_mut())
                else {
                    continue;
                };
                if s.replstate == SlaveReplState::WaitBgsaveStart {
                    continue;
                }
                if s.obuf.is_none() {
                    s.obuf = Some(a.start);
                    self.buf.incr_ref(a.start);
                }
                if a.new_block && s.close_asap.is_none() {
                    let used = self.buf.usage(s.obuf);
                    s.close_asap = obuf_limit_reached(s, used, cfg, now);
                }
            }
            self.buf.reference_from_backlog(a.start);
            if a.new_block {
                self.buf.trim(size);
            }
        }
    }

    /// `freeClientsInAsyncFreeQueue` for replicas over their limits.
    fn free_clients_close_asap(&mut self, cfg: &Config, out: &mut Vec<ReplEffect>) {
        let doomed = |l: &LinkId| {
            self.master
                .slave(*l)
                .is_some_and(|s| s.close_asap.is_some())
        };
        if !self.master.slaves.iter().any(doomed) {
            return;
        }
        for link in self.master.slaves.clone() {
            if let Some(reason) = self.master.slave(link).and_then(|s| s.close_asap) {
                self.free_client(link, true, Some(reason), cfg, out);
            }
        }
    }

    /// `clientsCron`'s `closeClientOnOutputBufferLimitReached` for replicas.
    pub(super) fn clients_cron_obuf_limits(&mut self, cfg: &Config, out: &mut Vec<ReplEffect>) {
        let now = self.unixtime();
        for link in self.master.slaves.clone() {
            let Some(s) = self
                .master
                .clients
                .get_mut(&link)
                .and_then(|c| c.slave.as_mut())
            else {
                continue;
            };
            let used = self.buf.usage(s.obuf);
            if let Some(reason) = obuf_limit_reached(s, used, cfg, now) {
                self.free_client(link, true, Some(reason), cfg, out);
            }
        }
    }

    /// `writeToClient` for a replica: what its output buffer holds, unless
    /// the previous write is still on the wire, it is not online yet, or a
    /// diskless replica has not ACKed its RDB yet.
    fn write_to_slave(&mut self, link: LinkId, cfg: &Config, out: &mut Vec<ReplEffect>) {
        let Some(c) = self.master.clients.get_mut(&link) else {
            return;
        };
        if c.in_flight {
            return;
        }
        let Some(s) = &mut c.slave else {
            return;
        };
        if s.replstate != SlaveReplState::Online || s.repl_start_cmd_stream_on_ack {
            return;
        }
        let Some(r) = &mut s.obuf else {
            return;
        };
        if let Some((offset, bytes, commands)) =
            self.buf.take_pending(r, cfg.repl_backlog_size_bytes)
        {
            c.in_flight = true;
            let msg = ReplMsg::Stream {
                offset,
                bytes,
                commands,
            };
            out.push(ReplEffect::Send { link, msg });
        }
    }

    fn write_to_online_slaves(&mut self, cfg: &Config, out: &mut Vec<ReplEffect>) {
        // By index: writing leaves the list of replicas as it is.
        for i in 0..self.master.slaves.len() {
            self.write_to_slave(self.master.slaves[i], cfg, out);
        }
    }

    /// A bulk write on `link` is on the wire: write the next one.
    pub(super) fn link_drained(&mut self, link: LinkId, cfg: &Config, out: &mut Vec<ReplEffect>) {
        let Some(c) = self.master.clients.get_mut(&link) else {
            return;
        };
        c.in_flight = false;
        let Some(s) = &mut c.slave else {
            return;
        };
        if s.bulk.is_some() {
            return self.send_bulk_to_slave(link, cfg, out);
        }
        let feeding = self
            .master
            .child
            .as_ref()
            .is_some_and(|ch| ch.diskless && ch.conns.contains(&link));
        if feeding {
            s.repl_last_partial_write_s = 0;
            self.rdb_pipe_pump(out);
        } else {
            self.write_to_slave(link, cfg, out);
        }
    }

    // ----- replicationCron, master half -------------------------------------

    /// The master half of `replicationCron`: `PING` into the stream every
    /// `repl-ping-replica-period`, newlines to replicas waiting for their
    /// RDB, timed-out replicas dropped, the backlog freed after
    /// `repl-backlog-ttl` without replicas, a pending BGSAVE started, and
    /// the good replicas counted.
    pub(super) fn master_cron(
        &mut self,
        mf_paused: bool,
        ctx: &mut ReplCtx,
        out: &mut Vec<ReplEffect>,
    ) {
        let cfg = ctx.config;
        let now = self.unixtime();
        let period = u64::from(cfg.repl_ping_replica_period_s.max(1));
        if self.replication_cron_loops.is_multiple_of(period)
            && !self.master.slaves.is_empty()
            && !mf_paused
        {
            let ping = ReplCommand::new(Argv::from_slices(&[b"PING"]));
            self.feed_slaves(ping, false, cfg, out);
        }
        let socket_child = self.master.child.as_ref().is_some_and(|c| c.diskless);
        for &link in &self.master.slaves {
            let presync = self.master.slave(link).is_some_and(|s| {
                s.replstate == SlaveReplState::WaitBgsaveStart
                    || (s.replstate == SlaveReplState::WaitBgsaveEnd && !socket_child)
            });
            if presync {
                out.push(ReplEffect::Send {
                    link,
                    msg: ReplMsg::Newline,
                });
            }
        }
        let timeout = i64::from(cfg.repl_timeout_s);
        for link in self.master.slaves.clone() {
            let c = &self.master.clients[&link];
            let Some(s) = &c.slave else {
                continue;
            };
            let timed_out = match s.replstate {
                SlaveReplState::Online => !c.pre_psync && now - s.repl_ack_time_s > timeout,
                SlaveReplState::WaitBgsaveEnd => {
                    socket_child
                        && s.repl_last_partial_write_s != 0
                        && now - s.repl_last_partial_write_s > timeout
                }
                _ => false,
            };
            if timed_out {
                self.free_client(link, true, Some(DropReason::Timeout), cfg, out);
            }
        }
        if self.master.slaves.is_empty()
            && cfg.repl_backlog_ttl_s > 0
            && self.buf.has_backlog()
            && self.replica.masterhost.is_none()
            && now - self.master.repl_no_slaves_since_s > i64::from(cfg.repl_backlog_ttl_s)
        {
            self.change_replication_id(ctx.rng);
            self.clear_replication_id2();
            self.buf.free_backlog();
        }
        self.replication_start_pending_fork(ctx, out);
        self.refresh_good_slaves_count(ctx.config);
    }
}
