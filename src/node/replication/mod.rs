//! Replication as Redis 7.0.15 runs it (`src/replication.c`), as a sans-IO
//! state machine: one [`Replication`] per node, both halves of it, since a
//! replica keeps a backlog and the offsets of its master's history and can
//! serve `PSYNC` as soon as it is promoted.
//!
//! * Master side ([`ReplMaster`]): `replid`, `replid2` and
//!   `second_replid_offset`, `master_repl_offset`, the shared replication
//!   buffer and the backlog over it ([`backlog`]), one client per replica
//!   with its `SLAVE_STATE_*`, `PSYNC` answered as
//!   `masterTryPartialResynchronization` decides, the `BGSAVE` child of a
//!   full sync (disk or diskless, with `repl-diskless-sync-delay`), output
//!   buffer limits, `PING`s into the stream, `REPLCONF ACK`s and
//!   `min-replicas-to-write`.
//! * Replica side ([`ReplReplica`]): `repl_state` from `REPL_STATE_CONNECT`
//!   to `REPL_STATE_CONNECTED` (`syncWithMaster`), the RDB transfer and
//!   load (`readSyncBulkPayload`), the command stream applied to the
//!   keyspace, `repl-timeout`, ACKs, and the cached master that lets a
//!   replica `PSYNC` after a disconnection or a change of master.
//!
//! Input is `(now, ReplInput)`; output is [`ReplEffect`]s: messages on
//! replication links ([`ReplMsg`], each with its size on the wire for the
//! network to charge), links to open or close, timers, and notes. A link
//! that carries bulk data reports [`ReplInput::Drained`] when everything
//! written on it is on the wire (a socket that became writable again); until
//! then, what the master has for that replica waits in its output buffer.
//!
//! # Cost model
//!
//! | cost | figure | source |
//! |---|---|---|
//! | `fork()` (parent blocked) | 10 ms per GiB of `used_memory` | Redis latency guide: 9-13 ms/GB on physical and HVM machines |
//! | child writing the RDB | `used_memory` / 300 MB/s | 300 GB in ~18 min (valkey#3609), 150 GB in 301 s (redis#8609) |
//! | RDB size | exact `rdb.c` v10 encoding of the keyspace, values incompressible | `rdbSaveRio` |
//! | transfer | the link's bandwidth (the world); diskless: paced by the child too | `rdbPipeReadHandler` |
//! | replica load | 0.65 µs per key + 1 ns per RDB byte | redis#1719, valkey#1199, redis#12654 |
//! | copy-on-write | one 4 KiB page per write while the child lives, at most the dataset | Linux CoW, THP off |
//! | output buffer | the shared buffer's blocks from the replica's, 64 bytes per block | `getClientOutputBufferMemoryUsage` |
//!
//! The replica's flush of its old dataset and the disk of a disk-based sync
//! are not charged. Times inside are Unix milliseconds and seconds as Redis
//! keeps them (`server.unixtime`); `replicationCron` runs on every tenth
//! `serverCron` tick (`hz` 10).

pub mod backlog;
mod master;
pub mod rdb;
mod replica;
pub mod resp;
#[cfg(test)]
mod tests;

use std::fmt;
use std::rc::Rc;

use rand::RngExt;

use crate::engine::{Rng, SimTime};

use super::config::Config;
use super::keyspace::{Caller, Keyspace};
use super::persistence::PersistEffect;
use super::{mstime, LinkId};
pub use crate::node::argv::ReplCommand;
use backlog::ReplBuffer;
pub use master::{ReplMaster, SlaveInfo, SlaveReplState};
pub use rdb::RdbSnapshot;
pub use replica::{ReplReplica, ReplState};

/// `CONFIG_RUN_ID_SIZE`.
pub const CONFIG_RUN_ID_SIZE: usize = 40;

/// The refusal of a write when `min-replicas-to-write` is not met
/// (`shared.noreplicaserr`, without the leading `-`).
pub const NOREPLICAS_ERR: &str = "NOREPLICAS Not enough good replicas to write.";
/// `shared.noautherr`.
pub const NOAUTH_ERR: &str = "NOAUTH Authentication required.";
/// `shared.loadingerr`.
pub const LOADING_ERR: &str = "LOADING Redis is loading the dataset in memory";
/// AUTH with a wrong password (`addAuthErrReply`).
pub const WRONGPASS_ERR: &str = "WRONGPASS invalid username-password pair or user is disabled.";
/// AUTH `<password>` to a server without `requirepass` (`authCommand`).
pub const AUTH_NOPASS_ERR: &str = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?";
/// `CONFIG_REPL_BACKLOG_MIN_SIZE`: `CONFIG SET repl-backlog-size` raises a
/// smaller value to it (`resizeReplicationBacklog`).
pub const CONFIG_REPL_BACKLOG_MIN_SIZE: u64 = 16 * 1024;
/// What replicas waiting for a full sync get when its `fork()` failed
/// (`startBgsaveForReplication`).
pub const BGSAVE_FAILED_ERR: &str = "ERR BGSAVE failed, replication can't continue";
/// `syncCommand` on a replica whose own link is down.
pub const NOMASTERLINK_ERR: &str = "NOMASTERLINK Can't SYNC while not connected with my master";

/// `replicationCron` runs every this many `serverCron` ticks
/// (`run_with_period(1000)` at `hz` 10).
pub const REPLICATION_CRON_TICKS: u64 = 10;

/// A replication ID: 40 hex characters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReplId([u8; CONFIG_RUN_ID_SIZE]);

impl ReplId {
    /// `clearReplicationId2`: forty `0`.
    pub const ZERO: ReplId = ReplId([b'0'; CONFIG_RUN_ID_SIZE]);

    /// `getRandomHexChars`.
    pub fn random(rng: &mut Rng) -> ReplId {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut id = [0u8; CONFIG_RUN_ID_SIZE];
        for c in &mut id {
            *c = HEX[rng.random_range(0..16usize)];
        }
        ReplId(id)
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("hex is ASCII")
    }
}

impl fmt::Display for ReplId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ReplId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReplId({})", self.as_str())
    }
}

/// What travels on a replication link. Replica → master: the handshake
/// commands, `PSYNC`/`SYNC`, ACKs; master → replica: replies, the RDB, the
/// command stream. `\n` keep-alives go both ways.
#[derive(Clone, Debug)]
pub enum ReplMsg {
    Ping,
    Auth {
        user: Option<String>,
        password: String,
    },
    ReplconfListeningPort {
        port: u16,
    },
    /// `REPLCONF capa eof capa psync2`.
    ReplconfCapa,
    /// `PSYNC <replid> <offset>`; `None` is `PSYNC ? -1`.
    Psync {
        replid: Option<ReplId>,
        offset: i64,
    },
    /// `SYNC` (the fallback when `PSYNC` gets an error).
    Sync,
    ReplconfAck {
        offset: i64,
    },
    /// A lone `\n`: the master's keep-alive to a replica waiting for its
    /// RDB, the replica's while it loads one. Not part of the stream.
    Newline,
    /// `+PONG`.
    Pong,
    /// `+OK`.
    Ok,
    /// An error reply, without the leading `-`.
    Error(String),
    FullResync {
        replid: ReplId,
        offset: i64,
    },
    /// `+CONTINUE <replid>` (`None`: a replica without `capa psync2`).
    Continue {
        replid: Option<ReplId>,
    },
    /// A part of the RDB transfer: `bytes` on the wire (the first part
    /// includes the `$<len>\r\n` or `$EOF:<mark>\r\n` preamble, the last the
    /// EOF mark of a diskless transfer); the last part carries the dataset.
    RdbPayload {
        bytes: u64,
        diskless: bool,
        rdb: Option<Rc<RdbSnapshot>>,
    },
    /// Part of the replication stream: `bytes` starting at `offset`, the
    /// offset of its first byte, holding `commands`.
    Stream {
        offset: i64,
        bytes: u64,
        commands: Vec<Rc<ReplCommand>>,
    },
}

impl ReplMsg {
    /// Bytes on the wire (RESP as Redis sends it; `SYNC` is inline).
    pub fn wire_size(&self) -> u64 {
        let s = |x: &str| x.len() as u64;
        match self {
            ReplMsg::Ping => resp::multibulk_size_of(&[4]),
            ReplMsg::Auth { user, password } => match user {
                Some(u) => resp::multibulk_size_of(&[4, s(u), s(password)]),
                None => resp::multibulk_size_of(&[4, s(password)]),
            },
            ReplMsg::ReplconfListeningPort { port } => {
                resp::multibulk_size_of(&[8, 14, resp::digits(u64::from(*port))])
            }
            ReplMsg::ReplconfCapa => resp::multibulk_size_of(&[8, 4, 3, 4, 6]),
            ReplMsg::Psync { replid, offset } => {
                let id = replid.map_or(1, |_| CONFIG_RUN_ID_SIZE as u64);
                resp::multibulk_size_of(&[5, id, resp::digits_i64(*offset)])
            }
            ReplMsg::Sync => 6,
            ReplMsg::ReplconfAck { offset } => {
                resp::multibulk_size_of(&[8, 3, resp::digits_i64(*offset)])
            }
            ReplMsg::Newline => 1,
            ReplMsg::Pong => resp::line_size(4),
            ReplMsg::Ok => resp::line_size(2),
            ReplMsg::Error(e) => resp::line_size(s(e)),
            ReplMsg::FullResync { offset, .. } => {
                resp::line_size(11 + 1 + CONFIG_RUN_ID_SIZE as u64 + 1 + resp::digits_i64(*offset))
            }
            ReplMsg::Continue { replid } => {
                resp::line_size(8 + replid.map_or(0, |_| 1 + CONFIG_RUN_ID_SIZE as u64))
            }
            ReplMsg::RdbPayload { bytes, .. } | ReplMsg::Stream { bytes, .. } => *bytes,
        }
    }

    /// Bulk data: the sender wants [`ReplInput::Drained`] once it is on the
    /// wire before writing more.
    pub fn is_bulk(&self) -> bool {
        matches!(self, ReplMsg::RdbPayload { .. } | ReplMsg::Stream { .. })
    }
}

/// Timers the module asks for. Each names what it belongs to, so a timer
/// outliving its child or transfer is ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplTimer {
    /// The diskless child finished producing the next RDB chunk.
    RdbChunk { child: u64 },
    /// The replica finished loading the RDB of transfer `transfer`.
    LoadDone { transfer: u64 },
}

/// What the module is given.
#[derive(Clone, Debug)]
pub enum ReplInput {
    /// `serverCron`, every 100 ms: `cronloops` is its iteration counter
    /// (`replicationCron` runs when it is a multiple of 10); `mf_paused`:
    /// clients are paused by a manual failover (no `PING` into the stream).
    Cron {
        cronloops: u64,
        mf_paused: bool,
    },
    /// A client connected to this node's port (a replica-to-be).
    Accepted {
        link: LinkId,
    },
    /// The connection to my master this module asked for is up.
    Connected {
        link: LinkId,
    },
    /// A link is gone: refused, reset, closed by the other side.
    LinkError {
        link: LinkId,
    },
    Recv {
        link: LinkId,
        msg: ReplMsg,
    },
    /// Everything written on `link` has left (only reported after bulk
    /// messages, see [`ReplMsg::is_bulk`]).
    Drained {
        link: LinkId,
    },
    Timer(ReplTimer),
}

/// Why a master dropped a replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Output buffer at or over the hard limit.
    ObufHardLimit { used: u64 },
    /// Output buffer over the soft limit for longer than its seconds.
    ObufSoftLimit { used: u64 },
    /// No ACK (online) or no progress writing the RDB for `repl-timeout`.
    Timeout,
}

/// Things observers may want to know; they never steer the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplNote {
    /// Master: `+FULLRESYNC` sent to `link`, the stream for it starts after
    /// `offset`.
    FullResync { link: LinkId, offset: i64 },
    /// Master: `+CONTINUE`, `bytes` of backlog follow from `offset`.
    PartialResync {
        link: LinkId,
        offset: i64,
        bytes: i64,
    },
    /// Master: `fork()` for a replication BGSAVE. The parent is blocked for
    /// `fork_us`.
    Fork {
        diskless: bool,
        fork_us: SimTime,
        used_memory: u64,
        rdb_bytes: u64,
    },
    /// Master: `fork()` for a replication BGSAVE failed ("Can't save in
    /// background: fork: Cannot allocate memory"): the replicas waiting for
    /// it got an error and were dropped.
    ForkFailed { diskless: bool },
    /// Master: the child (`diskless`, or writing to disk) exited (`ok`
    /// false: killed), after `cow_bytes` of copy-on-write.
    ChildDone {
        ok: bool,
        diskless: bool,
        cow_bytes: u64,
    },
    /// Master: a replica was dropped.
    ReplicaDropped { link: LinkId, reason: DropReason },
    /// Master: a replica went online (`replicaPutOnline`).
    ReplicaOnline { link: LinkId },
    /// Replica: the RDB is in; loading takes `load_us`.
    LoadStarted { rdb_bytes: u64, load_us: SimTime },
    /// Replica: `MASTER <-> REPLICA sync: Finished with success`.
    SyncFinished { offset: i64 },
    /// Replica: the master accepted a partial resynchronization.
    PartialResyncAccepted { offset: i64 },
    /// Replica: stream applied up to `reploff`.
    Applied { reploff: i64, commands: usize },
    /// Replica: the link with the master went down.
    MasterLinkDown,
    /// Replica: the master answered `PSYNC` with `reply`, neither a
    /// resynchronization nor an error it understands (`Unexpected reply to
    /// PSYNC from master: <reply>` in Redis's log): it falls back to `SYNC`.
    PsyncUnexpectedReply { reply: String },
    /// Replica: the master answered the sync with an error (`MASTER
    /// aborted replication with an error: <error>` in Redis's log).
    SyncAborted { error: String },
}

/// What the module asks for.
#[derive(Clone, Debug)]
pub enum ReplEffect {
    /// Open a connection to my master's `ip:port`.
    Connect {
        link: LinkId,
        ip: [u8; 4],
        port: u16,
    },
    Send {
        link: LinkId,
        msg: ReplMsg,
    },
    Close {
        link: LinkId,
    },
    /// Close `link` once what was written on it has reached the other end
    /// (`CLIENT_CLOSE_AFTER_REPLY`): the peer reads the reply, then the
    /// close.
    CloseAfterReply {
        link: LinkId,
    },
    /// Deliver `ReplInput::Timer(timer)` at `at`.
    Timer {
        at: SimTime,
        timer: ReplTimer,
    },
    Note(ReplNote),
    /// Replica: `count` writes of my master's stream executed on my
    /// keyspace (for `server.dirty`), and, with `appendonly yes`, the
    /// commands for the AOF.
    Executed {
        count: usize,
        commands: Vec<Rc<ReplCommand>>,
    },
    /// The disk: a replica's received RDB, its AOF after a full sync.
    Persist(PersistEffect),
}

/// What the module reads and changes beyond itself: the node's
/// configuration, its keyspace and its random stream; and what the rest of
/// the process is doing: loading its data from disk (`PSYNC` gets
/// `-LOADING`), or running a save point's BGSAVE child (no second child);
/// and whether a `fork()` would fail now for want of memory on the host.
pub struct ReplCtx<'a> {
    pub config: &'a Config,
    pub keyspace: &'a mut Keyspace,
    pub rng: &'a mut Rng,
    pub fork_enomem: bool,
    pub loading: bool,
    pub child_busy: bool,
}

/// Execute one command of a master's stream (or of an AOF) on `keyspace`
/// at `now_ms`, as a replica does. `SELECT 0` (database 0 is the only one),
/// the master's `PING`s and `REPLCONF GETACK` change nothing but the
/// offset; whether the command was a write.
pub fn apply_replicated(cmd: &ReplCommand, keyspace: &mut Keyspace, now_ms: i64) -> bool {
    let Some(name) = cmd.argv.first() else {
        return false;
    };
    if [&b"SELECT"[..], b"PING", b"REPLCONF"]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n))
    {
        return false;
    }
    cmd.argv
        .with(|argv| keyspace.execute(argv, now_ms, true, Caller::Master));
    true
}

/// `INFO stats` counters of replication.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplStats {
    pub sync_full: u64,
    pub sync_partial_ok: u64,
    pub sync_partial_err: u64,
    /// `total_forks`: successful `fork()`s.
    pub total_forks: u64,
}

/// The replication state of one node.
pub struct Replication {
    /// `server.replid`, `server.replid2`, `server.second_replid_offset`.
    replid: ReplId,
    replid2: ReplId,
    second_replid_offset: i64,
    /// The replication buffer, the backlog and `master_repl_offset`.
    buf: ReplBuffer,
    pub master: ReplMaster,
    pub replica: ReplReplica,
    pub stats: ReplStats,
    /// My listening port (`REPLCONF listening-port`).
    port: u16,
    now: SimTime,
    now_ms: i64,
    /// `replication_cron_loops`.
    replication_cron_loops: u64,
}

impl Replication {
    /// A master with no replica and no backlog (`initServer`).
    pub fn new(port: u16, now: SimTime, rng: &mut Rng) -> Replication {
        let now_ms = mstime(now);
        Replication {
            replid: ReplId::random(rng),
            replid2: ReplId::ZERO,
            second_replid_offset: -1,
            buf: ReplBuffer::default(),
            master: ReplMaster::new(now_ms / 1000),
            replica: ReplReplica::default(),
            stats: ReplStats::default(),
            port,
            now,
            now_ms,
            replication_cron_loops: 0,
        }
    }

    fn set_time(&mut self, now: SimTime) {
        self.now = now;
        self.now_ms = mstime(now);
    }

    /// `server.unixtime`.
    fn unixtime(&self) -> i64 {
        self.now_ms / 1000
    }

    /// Handle one input at `now`; effects are appended to `out`.
    pub fn handle(
        &mut self,
        now: SimTime,
        input: ReplInput,
        ctx: &mut ReplCtx,
        out: &mut Vec<ReplEffect>,
    ) {
        self.set_time(now);
        match input {
            ReplInput::Cron {
                cronloops,
                mf_paused,
            } => self.server_cron(cronloops, mf_paused, ctx, out),
            ReplInput::Accepted { link } => self.accept_client(link, ctx.config),
            ReplInput::Connected { link } => self.link_connected(link, out),
            ReplInput::LinkError { link } => self.link_error(link, ctx.config, out),
            ReplInput::Recv { link, msg } => {
                if self.master.clients.contains_key(&link) {
                    self.process_client_msg(link, msg, ctx, out);
                } else {
                    self.process_master_msg(link, msg, ctx, out);
                }
            }
            ReplInput::Drained { link } => self.link_drained(link, ctx.config, out),
            ReplInput::Timer(ReplTimer::RdbChunk { child }) => self.rdb_chunk_produced(child, out),
            ReplInput::Timer(ReplTimer::LoadDone { transfer }) => {
                self.load_done(transfer, ctx, out)
            }
        }
    }

    /// `serverCron`'s replication duties: output buffer limits
    /// (`clientsCron`), a finished child (`checkChildrenDone`), and every
    /// tenth tick `replicationCron`. While loading an RDB the process is
    /// blocked in `rdbLoad` and only pings its master with newlines.
    fn server_cron(
        &mut self,
        cronloops: u64,
        mf_paused: bool,
        ctx: &mut ReplCtx,
        out: &mut Vec<ReplEffect>,
    ) {
        if self.replica.loading() {
            self.send_newline_to_master(out);
            return;
        }
        self.clients_cron_obuf_limits(ctx.config, out);
        self.check_children_done(ctx, out);
        if cronloops.is_multiple_of(REPLICATION_CRON_TICKS) {
            self.replication_cron(mf_paused, ctx, out);
        }
    }

    /// `replicationCron`.
    fn replication_cron(&mut self, mf_paused: bool, ctx: &mut ReplCtx, out: &mut Vec<ReplEffect>) {
        self.replica_cron(ctx.config, out);
        self.master_cron(mf_paused, ctx, out);
        self.replication_cron_loops += 1;
    }

    // ----- identity --------------------------------------------------------

    /// `changeReplicationId`.
    fn change_replication_id(&mut self, rng: &mut Rng) {
        self.replid = ReplId::random(rng);
    }

    /// `clearReplicationId2`.
    fn clear_replication_id2(&mut self) {
        self.replid2 = ReplId::ZERO;
        self.second_replid_offset = -1;
    }

    /// `shiftReplicationId`: my history so far stays valid under the old ID
    /// up to the next byte, and a new history starts.
    fn shift_replication_id(&mut self, rng: &mut Rng) {
        self.replid2 = self.replid;
        self.second_replid_offset = self.buf.master_repl_offset + 1;
        self.change_replication_id(rng);
    }

    // ----- read-only views (INFO replication) --------------------------------

    /// `master_replid`.
    pub fn replid(&self) -> ReplId {
        self.replid
    }

    /// `master_replid2`.
    pub fn replid2(&self) -> ReplId {
        self.replid2
    }

    /// `second_repl_offset`.
    pub fn second_replid_offset(&self) -> i64 {
        self.second_replid_offset
    }

    pub fn master_repl_offset(&self) -> i64 {
        self.buf.master_repl_offset
    }

    /// `server.repl_buffer_mem`: the replication buffer's blocks (the
    /// backlog, and what replicas' output buffers still reference).
    pub fn repl_buffer_mem(&self) -> u64 {
        self.buf.repl_buffer_mem
    }

    /// The part of [`Replication::repl_buffer_mem`] not counted against
    /// `maxmemory` (see [`ReplBuffer::not_counted_memory`]).
    pub fn not_counted_memory(&self, config: &Config) -> u64 {
        self.buf.not_counted_memory(config.repl_backlog_size_bytes)
    }

    /// `repl_backlog_first_byte_offset` and `repl_backlog_histlen`, if there
    /// is a backlog.
    pub fn repl_backlog(&self) -> Option<(i64, i64)> {
        self.buf.backlog_range()
    }

    /// A replication BGSAVE child is running.
    pub fn has_child(&self) -> bool {
        self.master.child_running()
    }

    /// `rdbPopulateSaveInfo`: the replication ID and offset an RDB saved
    /// now carries: a master's once it has a backlog, a replica's once it
    /// has (or had) a master client; else none.
    pub fn rdb_save_info(&self) -> Option<(ReplId, i64)> {
        let r = &self.replica;
        let valid = match r.masterhost {
            None => self.buf.has_backlog(),
            Some(_) => r.master.is_some() || r.cached_master.is_some(),
        };
        valid.then_some((self.replid, self.buf.master_repl_offset))
    }

    /// `loadDataFromDisk` with an RDB carrying replication info `rsi`: a
    /// replica takes it as its own history and caches a master from it; a
    /// master keeps it as its second ID (valid up to the offset) with an
    /// empty backlog starting after it, so its replicas may `PSYNC`.
    pub fn restore_save_info(&mut self, now: SimTime, is_master: bool, rsi: (ReplId, i64)) {
        self.set_time(now);
        let (replid, offset) = rsi;
        self.buf.master_repl_offset = offset;
        if is_master {
            self.replid2 = replid;
            self.second_replid_offset = offset + 1;
            if !self.buf.has_backlog() {
                self.buf.create_backlog();
            }
            self.master.repl_no_slaves_since_s = self.unixtime();
        } else {
            self.replid = replid;
            self.replication_cache_master_using_myself();
        }
    }

    /// `replicationGetSlaveOffset()`: what this replica processed of its
    /// master's stream (0 on a master), as the cluster bus advertises it.
    pub fn slave_repl_offset(&self) -> i64 {
        let r = &self.replica;
        match (&r.masterhost, &r.master, &r.cached_master) {
            (Some(_), Some(m), _) | (Some(_), None, Some(m)) => m.reploff.max(0),
            _ => 0,
        }
    }
}
