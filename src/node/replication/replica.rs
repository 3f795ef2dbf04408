//! The replica side: `replicationSetMaster` / `replicationUnsetMaster`,
//! `connectWithMaster` and the `syncWithMaster` handshake,
//! `slaveTryPartialResynchronization`, `readSyncBulkPayload` and the load,
//! the master client that applies the stream, the cached master, and the
//! replica half of `replicationCron`.

use std::rc::Rc;

use crate::engine::{Rng, SimTime};
use crate::node::config::Config;
use crate::node::LinkId;

use super::rdb::RdbSnapshot;
use super::{
    apply_replicated, ReplCtx, ReplEffect, ReplId, ReplMsg, ReplNote, ReplTimer, Replication,
};
use crate::node::persistence::PersistEffect;

/// `server.repl_state` (the transient `SEND_HANDSHAKE` and `SEND_PSYNC`
/// states, and `RECEIVE_IP_REPLY`, unused without `replica-announce-ip`,
/// are never seen between two inputs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReplState {
    /// Not a replica (`REPL_STATE_NONE`).
    #[default]
    None,
    /// Must connect to the master.
    Connect,
    /// Connecting.
    Connecting,
    ReceivePingReply,
    ReceiveAuthReply,
    ReceivePortReply,
    ReceiveCapaReply,
    ReceivePsyncReply,
    /// Receiving (then loading) the RDB.
    Transfer,
    Connected,
}

impl ReplState {
    /// `slaveIsInHandshakeState`.
    fn in_handshake(self) -> bool {
        matches!(
            self,
            ReplState::ReceivePingReply
                | ReplState::ReceiveAuthReply
                | ReplState::ReceivePortReply
                | ReplState::ReceiveCapaReply
                | ReplState::ReceivePsyncReply
        )
    }
}

/// The client that represents my master (`server.master`), or its cached
/// copy (`server.cached_master`).
#[derive(Clone, Debug)]
pub(super) struct MasterClient {
    link: Option<LinkId>,
    replid: ReplId,
    /// What I processed of its stream.
    pub(super) reploff: i64,
    /// `lastinteraction` (Unix seconds).
    lastinteraction_s: i64,
}

/// A full sync in progress: the RDB being received, then loaded.
#[derive(Debug)]
struct Transfer {
    id: u64,
    /// `repl_transfer_read`.
    read: u64,
    loading: Option<Loading>,
}

#[derive(Debug)]
struct Loading {
    rdb: Rc<RdbSnapshot>,
    /// The RDB came with an EOF mark: ACK at once when loaded.
    diskless: bool,
    /// What the master sent meanwhile (it waits in the socket).
    queued: Vec<ReplMsg>,
    /// The link broke meanwhile (noticed once loaded).
    link_lost: bool,
}

/// The replica half of [`Replication`].
#[derive(Debug)]
pub struct ReplReplica {
    /// `server.masterhost` / `masterport`.
    pub(super) masterhost: Option<([u8; 4], u16)>,
    pub(super) repl_state: ReplState,
    /// `server.repl_transfer_s`: the link during handshake and transfer.
    repl_transfer_s: Option<LinkId>,
    repl_transfer_lastio_s: i64,
    pub(super) master: Option<MasterClient>,
    pub(super) cached_master: Option<MasterClient>,
    /// From `+FULLRESYNC`.
    master_replid: ReplId,
    master_initial_offset: i64,
    /// `server.repl_down_since` (Unix seconds, 0 = never up or up now).
    repl_down_since_s: i64,
    transfer: Option<Transfer>,
    next_link: LinkId,
    next_transfer: u64,
    /// `replicationSendNewlineToMaster`'s last second.
    newline_sent_s: i64,
}

impl Default for ReplReplica {
    fn default() -> Self {
        ReplReplica {
            masterhost: None,
            repl_state: ReplState::None,
            repl_transfer_s: None,
            repl_transfer_lastio_s: 0,
            master: None,
            cached_master: None,
            master_replid: ReplId::ZERO,
            master_initial_offset: -1,
            repl_down_since_s: 0,
            transfer: None,
            next_link: 1,
            next_transfer: 1,
            newline_sent_s: 0,
        }
    }
}

impl ReplReplica {
    /// `server.masterhost` / `masterport`: whom I replicate, if anyone.
    pub fn masterhost(&self) -> Option<([u8; 4], u16)> {
        self.masterhost
    }

    pub fn repl_state(&self) -> ReplState {
        self.repl_state
    }

    /// `master_link_status:up`.
    pub fn master_link_up(&self) -> bool {
        self.repl_state == ReplState::Connected
    }

    /// `server.master->lastinteraction` in Unix ms, while connected.
    pub fn master_last_interaction_ms(&self) -> Option<i64> {
        self.master.as_ref().map(|m| m.lastinteraction_s * 1000)
    }

    /// `server.repl_down_since` in Unix ms (`master_link_down_since`).
    pub fn repl_down_since_ms(&self) -> i64 {
        self.repl_down_since_s * 1000
    }

    /// Loading an RDB from the master (`server.loading`).
    pub fn loading(&self) -> bool {
        self.transfer.as_ref().is_some_and(|t| t.loading.is_some())
    }

    /// Bytes of RDB received so far in the current transfer.
    pub fn transfer_read(&self) -> Option<u64> {
        self.transfer.as_ref().map(|t| t.read)
    }
}

impl Replication {
    // ----- role changes -----------------------------------------------------

    /// `replicationSetMaster`: replicate `ip:port`. A master turning replica
    /// keeps its own history as a cached master, to `PSYNC` with the new
    /// master if it was promoted from its replicas.
    pub fn replication_set_master(
        &mut self,
        now: SimTime,
        ip: [u8; 4],
        port: u16,
        out: &mut Vec<ReplEffect>,
    ) {
        self.set_time(now);
        let was_master = self.replica.masterhost.is_none();
        self.replica.masterhost = None;
        self.free_master(false, true, out);
        self.replica.masterhost = Some((ip, port));
        self.cancel_replication_handshake(false, out);
        if was_master {
            self.replica.cached_master = None;
            self.replication_cache_master_using_myself();
        }
        self.replica.repl_state = ReplState::Connect;
        self.connect_with_master(out);
    }

    /// `replicationUnsetMaster`: become a master. My history stays valid as
    /// `replid2` up to my offset, so my former master's other replicas (and
    /// the former master) can `PSYNC` with me.
    pub fn replication_unset_master(
        &mut self,
        now: SimTime,
        rng: &mut Rng,
        cfg: &Config,
        out: &mut Vec<ReplEffect>,
    ) {
        self.set_time(now);
        if self.replica.masterhost.is_none() {
            return;
        }
        self.replica.masterhost = None;
        self.free_master(false, true, out);
        self.replica.cached_master = None;
        self.cancel_replication_handshake(false, out);
        self.shift_replication_id(rng);
        self.disconnect_slaves(cfg, out);
        self.replica.repl_state = ReplState::None;
        self.master.slaveseldb = -1;
        self.master.repl_no_slaves_since_s = self.unixtime();
        self.replica.repl_down_since_s = 0;
    }

    /// `replicationCacheMasterUsingMyself`.
    pub(super) fn replication_cache_master_using_myself(&mut self) {
        self.replica.master_initial_offset = self.buf.master_repl_offset;
        self.replica.cached_master = Some(MasterClient {
            link: None,
            replid: self.replid,
            reploff: self.buf.master_repl_offset,
            lastinteraction_s: self.unixtime(),
        });
    }

    /// `freeClient(server.master)`: cache it for a later `PSYNC` (not after
    /// a protocol error), and reconnect at once if still a replica
    /// (`replicationHandleMasterDisconnection`).
    fn free_master(&mut self, protocol_error: bool, close: bool, out: &mut Vec<ReplEffect>) {
        let Some(mut m) = self.replica.master.take() else {
            return;
        };
        if let (true, Some(link)) = (close, m.link) {
            out.push(ReplEffect::Close { link });
        }
        if !protocol_error {
            m.link = None;
            self.replica.cached_master = Some(m);
        }
        self.replica.repl_state = ReplState::Connect;
        self.replica.repl_down_since_s = self.unixtime();
        out.push(ReplEffect::Note(ReplNote::MasterLinkDown));
        if self.replica.masterhost.is_some() {
            self.connect_with_master(out);
        }
    }

    // ----- connection and handshake -----------------------------------------

    /// `connectWithMaster`.
    fn connect_with_master(&mut self, out: &mut Vec<ReplEffect>) {
        let Some((ip, port)) = self.replica.masterhost else {
            return;
        };
        let link = self.replica.next_link;
        self.replica.next_link += 1;
        self.replica.repl_transfer_s = Some(link);
        self.replica.repl_transfer_lastio_s = self.unixtime();
        self.replica.repl_state = ReplState::Connecting;
        out.push(ReplEffect::Connect { link, ip, port });
    }

    /// `cancelReplicationHandshake`: abort a connection, handshake or
    /// transfer in progress; with `reconnect`, connect again at once.
    fn cancel_replication_handshake(&mut self, reconnect: bool, out: &mut Vec<ReplEffect>) -> bool {
        let r = &mut self.replica;
        if r.repl_state != ReplState::Transfer
            && r.repl_state != ReplState::Connecting
            && !r.repl_state.in_handshake()
        {
            return false;
        }
        self.sync_error(true, out);
        if reconnect {
            self.connect_with_master(out);
        }
        true
    }

    /// The `error:` path of `syncWithMaster`: drop the link (closing it if
    /// `close`), back to `REPL_STATE_CONNECT`; `replicationCron` retries.
    fn sync_error(&mut self, close: bool, out: &mut Vec<ReplEffect>) {
        let r = &mut self.replica;
        if let (true, Some(link)) = (close, r.repl_transfer_s) {
            out.push(ReplEffect::Close { link });
        }
        r.repl_transfer_s = None;
        r.transfer = None;
        r.repl_state = ReplState::Connect;
    }

    /// The connection to the master is up: `PING` first.
    pub(super) fn link_connected(&mut self, link: LinkId, out: &mut Vec<ReplEffect>) {
        let r = &mut self.replica;
        if r.repl_state == ReplState::Connecting && r.repl_transfer_s == Some(link) {
            r.repl_state = ReplState::ReceivePingReply;
            out.push(ReplEffect::Send {
                link,
                msg: ReplMsg::Ping,
            });
        }
    }

    pub(super) fn link_error(&mut self, link: LinkId, cfg: &Config, out: &mut Vec<ReplEffect>) {
        if self.master.clients.contains_key(&link) {
            return self.free_client(link, false, None, cfg, out);
        }
        let r = &mut self.replica;
        if r.master.as_ref().is_some_and(|m| m.link == Some(link)) {
            return self.free_master(false, false, out);
        }
        if r.repl_transfer_s != Some(link) {
            return;
        }
        match r.transfer.as_mut().and_then(|t| t.loading.as_mut()) {
            // Noticed when the load is over and the link is read again.
            Some(l) => l.link_lost = true,
            None if r.repl_state == ReplState::Transfer => {
                // "I/O error trying to sync with MASTER: connection lost"
                r.repl_transfer_s = None;
                self.cancel_replication_handshake(true, out);
            }
            None => self.sync_error(false, out),
        }
    }

    /// A message from my master (`syncWithMaster` during the handshake,
    /// `readSyncBulkPayload` during the transfer, the master client once
    /// connected).
    pub(super) fn process_master_msg(
        &mut self,
        link: LinkId,
        msg: ReplMsg,
        ctx: &mut ReplCtx,
        out: &mut Vec<ReplEffect>,
    ) {
        let r = &mut self.replica;
        if r.master.as_ref().is_some_and(|m| m.link == Some(link)) {
            return self.master_stream_msg(msg, ctx, out);
        }
        if r.repl_transfer_s != Some(link) {
            return;
        }
        let cfg = ctx.config;
        match r.repl_state {
            ReplState::ReceivePingReply => {
                // `+PONG`, or an authentication error: go on either way.
                let ok = match &msg {
                    ReplMsg::Pong => true,
                    ReplMsg::Error(e) => {
                        e.starts_with("NOAUTH")
                            || e.starts_with("NOPERM")
                            || e.starts_with("ERR operation not permitted")
                    }
                    _ => false,
                };
                if !ok {
                    return self.sync_error(true, out);
                }
                if let Some(password) = &cfg.masterauth {
                    let msg = ReplMsg::Auth {
                        user: cfg.masteruser.clone(),
                        password: password.clone(),
                    };
                    out.push(ReplEffect::Send { link, msg });
                }
                let port = self.port;
                out.push(ReplEffect::Send {
                    link,
                    msg: ReplMsg::ReplconfListeningPort { port },
                });
                out.push(ReplEffect::Send {
                    link,
                    msg: ReplMsg::ReplconfCapa,
                });
                self.replica.repl_state = if cfg.masterauth.is_some() {
                    ReplState::ReceiveAuthReply
                } else {
                    ReplState::ReceivePortReply
                };
            }
            ReplState::ReceiveAuthReply => {
                if let ReplMsg::Error(_) = msg {
                    // "Unable to AUTH to MASTER"
                    return self.sync_error(true, out);
                }
                r.repl_state = ReplState::ReceivePortReply;
            }
            // Errors to REPLCONF are not critical.
            ReplState::ReceivePortReply => r.repl_state = ReplState::ReceiveCapaReply,
            ReplState::ReceiveCapaReply => {
                // `slaveTryPartialResynchronization`, writing half.
                r.master_initial_offset = -1;
                let (replid, offset) = match &r.cached_master {
                    Some(m) => (Some(m.replid), m.reploff + 1),
                    None => (None, -1),
                };
                r.repl_state = ReplState::ReceivePsyncReply;
                out.push(ReplEffect::Send {
                    link,
                    msg: ReplMsg::Psync { replid, offset },
                });
            }
            ReplState::ReceivePsyncReply => self.psync_reply(link, msg, ctx, out),
            ReplState::Transfer => match r.transfer.as_mut().and_then(|t| t.loading.as_mut()) {
                Some(l) => l.queued.push(msg),
                None => self.read_sync_bulk_payload(msg, ctx, out),
            },
            ReplState::None | ReplState::Connect | ReplState::Connecting | ReplState::Connected => {
            }
        }
    }

    /// `slaveTryPartialResynchronization`, reading half, and what
    /// `syncWithMaster` does with its outcome.
    fn psync_reply(
        &mut self,
        link: LinkId,
        msg: ReplMsg,
        ctx: &mut ReplCtx,
        out: &mut Vec<ReplEffect>,
    ) {
        let now = self.unixtime();
        match msg {
            // Keep-alive before the reply.
            ReplMsg::Newline => {}
            ReplMsg::FullResync { replid, offset } => {
                self.replica.master_replid = replid;
                self.replica.master_initial_offset = offset;
                self.start_transfer();
            }
            ReplMsg::Continue { replid } => {
                let Some(mut m) = self.replica.cached_master.take() else {
                    // +CONTINUE to `PSYNC ? -1`: not a reply we can use.
                    return self.sync_error(true, out);
                };
                if let Some(new) = replid.filter(|&id| id != m.replid) {
                    // The master's ID changed (it was promoted): my history
                    // stays valid under the old one up to here.
                    self.replid2 = m.replid;
                    self.second_replid_offset = self.buf.master_repl_offset + 1;
                    self.replid = new;
                    m.replid = new;
                    self.disconnect_slaves(ctx.config, out);
                }
                // `replicationResurrectCachedMaster`.
                m.link = Some(link);
                m.lastinteraction_s = now;
                let reploff = m.reploff;
                self.replica.master = Some(m);
                self.replica.repl_transfer_s = None;
                self.replica.repl_state = ReplState::Connected;
                self.replica.repl_down_since_s = 0;
                if !self.buf.has_backlog() {
                    self.buf.create_backlog();
                }
                out.push(ReplEffect::Note(ReplNote::PartialResyncAccepted {
                    offset: reploff,
                }));
            }
            // The master cannot serve us now: try again from scratch later.
            ReplMsg::Error(e) if e.starts_with("NOMASTERLINK") || e.starts_with("LOADING") => {
                self.sync_error(true, out)
            }
            // Any other reply: the master does not support PSYNC. Retry
            // with SYNC; its reply is read as the transfer's first line.
            // An error but `-ERR` is logged as unexpected (at warning
            // level; `-ERR` at notice level).
            other => {
                if let ReplMsg::Error(e) = other {
                    if !e.starts_with("ERR") {
                        let reply = format!("-{e}");
                        out.push(ReplEffect::Note(ReplNote::PsyncUnexpectedReply { reply }));
                    }
                }
                out.push(ReplEffect::Send {
                    link,
                    msg: ReplMsg::Sync,
                });
                self.start_transfer();
            }
        }
    }

    fn start_transfer(&mut self) {
        let r = &mut self.replica;
        r.repl_state = ReplState::Transfer;
        r.repl_transfer_lastio_s = self.now_ms / 1000;
        r.transfer = Some(Transfer {
            id: r.next_transfer,
            read: 0,
            loading: None,
        });
        r.next_transfer += 1;
    }

    /// `readSyncBulkPayload`.
    fn read_sync_bulk_payload(
        &mut self,
        msg: ReplMsg,
        ctx: &mut ReplCtx,
        out: &mut Vec<ReplEffect>,
    ) {
        let now = self.unixtime();
        match msg {
            ReplMsg::Newline => self.replica.repl_transfer_lastio_s = now,
            ReplMsg::RdbPayload {
                bytes,
                diskless,
                rdb,
            } => {
                self.replica.repl_transfer_lastio_s = now;
                if let Some(t) = &mut self.replica.transfer {
                    t.read += bytes;
                }
                if let Some(rdb) = rdb {
                    self.start_loading(rdb, diskless, ctx, out);
                }
            }
            // "MASTER aborted replication with an error", or "Bad protocol
            // from MASTER": abort and reconnect at once.
            other => {
                if let ReplMsg::Error(error) = other {
                    out.push(ReplEffect::Note(ReplNote::SyncAborted { error }));
                }
                self.cancel_replication_handshake(true, out);
            }
        }
    }

    /// The RDB is in: `replicationAttachToNewMaster`, flush the old data,
    /// and load (the process is busy until [`ReplTimer::LoadDone`]).
    fn start_loading(
        &mut self,
        rdb: Rc<RdbSnapshot>,
        diskless: bool,
        ctx: &mut ReplCtx,
        out: &mut Vec<ReplEffect>,
    ) {
        self.replica.cached_master = None;
        self.disconnect_slaves(ctx.config, out);
        self.buf.free_backlog();
        ctx.keyspace.clear();
        // `repl-diskless-load disabled`: the payload was written to a temp
        // file, fsynced and renamed to `dump.rdb` before being loaded.
        out.push(ReplEffect::Persist(PersistEffect::RdbSaved {
            rdb: rdb.clone(),
        }));
        self.send_newline_to_master(out);
        let load_us = rdb.load_us();
        let rdb_bytes = rdb.rdb_bytes;
        let Some(t) = &mut self.replica.transfer else {
            return;
        };
        t.loading = Some(Loading {
            rdb,
            diskless,
            queued: Vec::new(),
            link_lost: false,
        });
        out.push(ReplEffect::Timer {
            at: self.now + load_us,
            timer: ReplTimer::LoadDone { transfer: t.id },
        });
        out.push(ReplEffect::Note(ReplNote::LoadStarted {
            rdb_bytes,
            load_us,
        }));
    }

    /// The load is over: the master client is created with the offset of
    /// `+FULLRESYNC`, my history becomes the master's, and what the master
    /// sent meanwhile is read.
    pub(super) fn load_done(&mut self, id: u64, ctx: &mut ReplCtx, out: &mut Vec<ReplEffect>) {
        let r = &mut self.replica;
        if !r
            .transfer
            .as_ref()
            .is_some_and(|t| t.id == id && t.loading.is_some())
        {
            return;
        }
        let loading = r
            .transfer
            .take()
            .and_then(|t| t.loading)
            .expect("checked above");
        if ctx.config.appendonly {
            let rdb = loading.rdb.clone();
            out.push(ReplEffect::Persist(PersistEffect::AofRewritten { rdb }));
        }
        ctx.keyspace.load(match Rc::try_unwrap(loading.rdb) {
            Ok(snapshot) => snapshot.keyspace,
            Err(shared) => shared.keyspace.clone(),
        });
        let link = r.repl_transfer_s.take();
        let reploff = r.master_initial_offset;
        r.master = Some(MasterClient {
            link,
            replid: r.master_replid,
            reploff,
            lastinteraction_s: self.now_ms / 1000,
        });
        r.repl_state = ReplState::Connected;
        r.repl_down_since_s = 0;
        self.replid = r.master_replid;
        self.buf.master_repl_offset = reploff;
        self.clear_replication_id2();
        if !self.buf.has_backlog() {
            self.buf.create_backlog();
        }
        out.push(ReplEffect::Note(ReplNote::SyncFinished { offset: reploff }));
        if loading.link_lost {
            return self.free_master(false, false, out);
        }
        if loading.diskless {
            self.replication_send_ack(out);
        }
        for msg in loading.queued {
            self.master_stream_msg(msg, ctx, out);
        }
    }

    /// What the master client reads once connected: the stream (applied,
    /// then kept in my backlog for my own replicas), and keep-alives.
    fn master_stream_msg(&mut self, msg: ReplMsg, ctx: &mut ReplCtx, out: &mut Vec<ReplEffect>) {
        let now_ms = self.now_ms;
        let Some(m) = &mut self.replica.master else {
            return;
        };
        m.lastinteraction_s = now_ms / 1000;
        let ReplMsg::Stream {
            offset,
            bytes,
            commands,
        } = msg
        else {
            return;
        };
        if offset != m.reploff + 1 {
            // Not the byte we expect next: a protocol error.
            return self.free_master(true, true, out);
        }
        // The writes, counted; kept for the AOF only when there is one.
        let (mut count, mut written) = (0, Vec::new());
        let aof = ctx.config.appendonly;
        let mut getack = None;
        let mut cmd_offset = m.reploff;
        for cmd in &commands {
            if apply_replicated(cmd, ctx.keyspace, now_ms) {
                count += 1;
                if aof {
                    written.push(Rc::clone(cmd));
                }
            } else if cmd
                .argv
                .get(1)
                .is_some_and(|a| a.eq_ignore_ascii_case(b"GETACK"))
            {
                // `REPLCONF GETACK`: ACK what was processed before it.
                getack = Some(cmd_offset);
            }
            cmd_offset += cmd.size as i64;
        }
        if count > 0 {
            out.push(ReplEffect::Executed {
                count,
                commands: written,
            });
        }
        m.reploff += bytes as i64;
        let reploff = m.reploff;
        if let (Some(offset), Some(link)) = (getack, m.link) {
            out.push(ReplEffect::Send {
                link,
                msg: ReplMsg::ReplconfAck { offset },
            });
        }
        self.feed_stream_from_master(&commands, bytes, ctx.config, out);
        out.push(ReplEffect::Note(ReplNote::Applied {
            reploff,
            commands: commands.len(),
        }));
    }

    /// `replicationSendAck`.
    fn replication_send_ack(&mut self, out: &mut Vec<ReplEffect>) {
        if let Some(MasterClient {
            link: Some(link),
            reploff,
            ..
        }) = self.replica.master
        {
            out.push(ReplEffect::Send {
                link,
                msg: ReplMsg::ReplconfAck { offset: reploff },
            });
        }
    }

    /// `replicationSendNewlineToMaster`: at most once a second.
    pub(super) fn send_newline_to_master(&mut self, out: &mut Vec<ReplEffect>) {
        let now = self.unixtime();
        let r = &mut self.replica;
        if now == r.newline_sent_s {
            return;
        }
        r.newline_sent_s = now;
        if let Some(link) = r.repl_transfer_s {
            out.push(ReplEffect::Send {
                link,
                msg: ReplMsg::Newline,
            });
        }
    }

    /// The replica half of `replicationCron`: handshake, transfer and
    /// master timeouts (`repl-timeout`), connecting, and the ACK.
    pub(super) fn replica_cron(&mut self, cfg: &Config, out: &mut Vec<ReplEffect>) {
        let now = self.unixtime();
        let timeout = i64::from(cfg.repl_timeout_s);
        let r = &self.replica;
        if r.masterhost.is_some() {
            let s = r.repl_state;
            if (s == ReplState::Connecting || s.in_handshake() || s == ReplState::Transfer)
                && now - r.repl_transfer_lastio_s > timeout
            {
                // "Timeout connecting to the MASTER..." / "Timeout receiving
                // bulk data from MASTER..."
                self.cancel_replication_handshake(true, out);
            }
        }
        let r = &self.replica;
        if r.masterhost.is_some()
            && r.repl_state == ReplState::Connected
            && r.master
                .as_ref()
                .is_some_and(|m| now - m.lastinteraction_s > timeout)
        {
            // "MASTER timeout: no data nor PING received..."
            self.free_master(false, true, out);
        }
        if self.replica.repl_state == ReplState::Connect {
            self.connect_with_master(out);
        }
        if self.replica.masterhost.is_some() {
            self.replication_send_ack(out);
        }
    }
}
