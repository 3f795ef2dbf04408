//! One Redis Cluster node as a sans-IO state machine.
//!
//! A [`Node`] gets `(now, Input)` and appends [`Effect`]s to an output buffer:
//! messages to send on its links, links to open or close, its `nodes.conf` to
//! save, and notes for observers. It never sees the event queue, the network
//! or another node's memory, so every protocol step can be driven by a script
//! of inputs in a unit test.
//!
//! Names follow Redis 7.0.15 `src/cluster.c`: `current_epoch`,
//! `config_epoch`, `ping_sent`, `pong_received`, PFAIL, FAIL, and so on. Times
//! inside the node are Unix milliseconds (`mstime()`), derived from the
//! simulated clock with [`mstime`].

pub mod argv;
pub mod bus;
pub mod command_table;
pub mod conf_file;
pub mod config;
mod election;
mod failure;
mod gossip;
pub mod keyspace;
mod load;
mod memory;
pub mod migrate;
pub mod persistence;
pub mod render;
mod replicaof;
pub mod replication;
pub mod route;
pub mod serve;
pub mod slots;

use std::collections::BTreeMap;
use std::rc::Rc;

use rand::RngExt;
use rustc_hash::FxHashMap;

use crate::engine::{Rng, SimTime};
use bus::{flags::*, BusMsg, NodeId, SlotBitmap};
use config::{Config, ConfigValue};
pub use election::FailoverMode;
use persistence::{PersistEffect, Persistence};
use render::NodesConf;
use replication::{ReplCtx, ReplEffect, ReplInput, Replication, CONFIG_REPL_BACKLOG_MIN_SIZE};
use slots::CLUSTER_SLOTS;

/// Simulated time 0 as Unix milliseconds: the clock the `CLUSTER NODES`
/// ping/pong columns are printed in (2023-11-14T22:13:20Z).
pub const BASE_UNIX_MS: i64 = 1_700_000_000_000;

/// Redis's `mstime()` at simulated time `now`.
#[inline]
pub fn mstime(now: SimTime) -> i64 {
    BASE_UNIX_MS + (now / 1000) as i64
}

/// A link of this node: outbound links get ids counted by the node, inbound
/// links ids given by whoever accepts the connection, with this bit set.
pub type LinkId = u32;
pub const INBOUND_LINK_BIT: u32 = 1 << 31;

/// `CLUSTER_FAIL_REPORT_VALIDITY_MULT`, `CLUSTER_FAIL_UNDO_TIME_MULT`.
pub const FAIL_REPORT_VALIDITY_MULT: i64 = 2;
pub const FAIL_UNDO_TIME_MULT: i64 = 2;
/// `CLUSTER_WRITABLE_DELAY`, `CLUSTER_MIN/MAX_REJOIN_DELAY` (ms).
pub const WRITABLE_DELAY_MS: i64 = 2000;
pub const MIN_REJOIN_DELAY_MS: i64 = 500;
pub const MAX_REJOIN_DELAY_MS: i64 = 5000;
/// The cron period: `clusterCron` runs from `serverCron` every 100 ms.
pub const CRON_PERIOD: SimTime = 100_000;

/// What a node is given.
#[derive(Clone, Debug)]
pub enum Input {
    /// `clusterCron()`: every 100 ms.
    Cron,
    /// A new inbound connection on the bus port.
    Accepted {
        link: LinkId,
        peer_ip: [u8; 4],
        local_ip: [u8; 4],
    },
    /// An outbound connection this node asked for is established.
    Connected { link: LinkId, local_ip: [u8; 4] },
    /// A link is gone: connect refused or timed out, reset, EOF.
    LinkError { link: LinkId },
    /// A message arrived on a link.
    Recv { link: LinkId, msg: Rc<BusMsg> },
    /// Replication: a link on the client port, a message, a timer.
    Repl(ReplInput),
}

/// Things observers may want to know; they never steer the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    Pfail {
        about: NodeId,
    },
    PfailCleared {
        about: NodeId,
    },
    /// This node marked `about` FAIL itself (quorum of reports reached).
    FailMarked {
        about: NodeId,
    },
    /// This node learned `about` is FAIL from a FAIL message.
    FailReceived {
        about: NodeId,
    },
    FailCleared {
        about: NodeId,
    },
    StateChanged {
        ok: bool,
    },
    /// This replica scheduled an election `delay_ms` from now.
    ElectionScheduled {
        delay_ms: i64,
        rank: u32,
    },
    /// This replica asked for votes for `epoch`.
    ElectionStarted {
        epoch: u64,
    },
    /// This master voted for replica `to` in `epoch` (its `currentEpoch`,
    /// recorded as `lastVoteEpoch`).
    VoteGranted {
        to: NodeId,
        epoch: u64,
    },
    /// This replica became the master of its shard, replacing `old_master`;
    /// `manual` is the `CLUSTER FAILOVER` mode when the failover was manual.
    Promoted {
        config_epoch: u64,
        old_master: NodeId,
        manual: Option<FailoverMode>,
    },
    /// A manual failover was abandoned after `CLUSTER_MF_TIMEOUT`.
    ManualFailoverTimeout,
}

/// What a node asks for.
#[derive(Clone, Debug)]
pub enum Effect {
    /// `updateMaxmemory` (`CONFIG SET maxmemory`) found the new limit
    /// below the memory used (`used`, without what does not count).
    MaxmemoryBelowUsage {
        maxmemory: u64,
        used: u64,
    },
    /// Open an outbound bus connection to `ip:cport`.
    Connect {
        link: LinkId,
        ip: [u8; 4],
        cport: u32,
    },
    /// Send a message on a link (outbound or inbound).
    Send {
        link: LinkId,
        msg: Rc<BusMsg>,
    },
    /// Close a link.
    Close {
        link: LinkId,
    },
    /// `clusterSaveConfig`: the new `nodes.conf` content.
    SaveConfig {
        conf: Rc<NodesConf>,
        fsync: bool,
    },
    Note(Note),
    /// Replication: links on the client ports, messages, timers, notes.
    Repl(ReplEffect),
    /// Persistence: the disk's `dump.rdb` and AOF, forks, loading.
    Persist(PersistEffect),
}

/// `server.cluster->todo_before_sleep` bits.
mod todo {
    pub const HANDLE_FAILOVER: u8 = 1 << 0;
    pub const UPDATE_STATE: u8 = 1 << 1;
    pub const SAVE_CONFIG: u8 = 1 << 2;
    pub const FSYNC_CONFIG: u8 = 1 << 3;
    pub const HANDLE_MANUALFAILOVER: u8 = 1 << 4;
}

/// A node as this node knows it (`clusterNode`), myself included.
#[derive(Clone, Debug)]
pub struct ClusterNode {
    pub name: NodeId,
    pub flags: u16,
    /// Creation time (ms), for the handshake timeout.
    pub ctime: i64,
    pub config_epoch: u64,
    pub slots: Rc<SlotBitmap>,
    pub numslots: u32,
    /// Entry index of the master, if a replica.
    pub slaveof: Option<u32>,
    pub slaves: Vec<u32>,
    pub ping_sent: i64,
    pub pong_received: i64,
    pub data_received: i64,
    pub fail_time: i64,
    pub voted_time: i64,
    pub repl_offset_time: i64,
    pub orphaned_time: i64,
    pub repl_offset: u64,
    /// None = no address (NOADDR or unknown).
    pub ip: Option<[u8; 4]>,
    pub port: u16,
    pub cport: u32,
    /// Outbound link (`node->link`), inbound link (`node->inbound_link`).
    pub link: Option<LinkId>,
    pub inbound_link: Option<LinkId>,
    /// Failure reports: (reporting master's entry, time ms).
    pub fail_reports: Vec<(u32, i64)>,
    pub last_in_ping_gossip: u64,
}

impl ClusterNode {
    fn new(name: NodeId, flags: u16, now_ms: i64) -> Self {
        ClusterNode {
            name,
            flags,
            ctime: now_ms,
            config_epoch: 0,
            slots: SlotBitmap::empty(),
            numslots: 0,
            slaveof: None,
            slaves: Vec::new(),
            ping_sent: 0,
            pong_received: 0,
            data_received: 0,
            fail_time: 0,
            voted_time: 0,
            repl_offset_time: 0,
            orphaned_time: 0,
            repl_offset: 0,
            ip: None,
            port: 0,
            cport: 0,
            link: None,
            inbound_link: None,
            fail_reports: Vec::new(),
            last_in_ping_gossip: 0,
        }
    }
    #[inline]
    pub fn is_master(&self) -> bool {
        self.flags & MASTER != 0
    }
    #[inline]
    pub fn is_slave(&self) -> bool {
        self.flags & SLAVE != 0
    }
    #[inline]
    pub fn in_handshake(&self) -> bool {
        self.flags & HANDSHAKE != 0
    }
    /// PFAIL (`nodeTimedOut`).
    #[inline]
    pub fn timed_out(&self) -> bool {
        self.flags & PFAIL != 0
    }
    #[inline]
    pub fn failed(&self) -> bool {
        self.flags & FAIL != 0
    }
}

/// A bus link (`clusterLink`).
#[derive(Clone, Debug)]
struct Link {
    /// The node this link belongs to (outbound: always; inbound: once known).
    node: Option<u32>,
    inbound: bool,
    ctime: i64,
    /// Address of the other end, and ours, as the socket knows them.
    peer_ip: [u8; 4],
    local_ip: Option<[u8; 4]>,
}

/// Static facts about the process: its port and configuration.
#[derive(Clone, Debug)]
pub struct NodeSetup {
    pub port: u16,
    pub config: Config,
    /// A Redis rule broken on purpose (tests and `redsim fuzz --plant`
    /// only; no scenario key sets it).
    pub planted: Option<Planted>,
}

/// Redis rules a node can be told to break, to show that the checks and the
/// fuzzer find what they are meant to find. Each names the check it breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Planted {
    /// A master that comes back while still owning its slots keeps its
    /// FAIL flag forever (the `CLUSTER_FAIL_UNDO_TIME_MULT` rule of
    /// `clearNodeFailureIfNeeded` skipped; breaks `liveness`).
    KeepFail,
    /// A restarted node ignores the `currentEpoch` of its `nodes.conf` and
    /// starts from 0 (breaks `current-epoch-monotonic`).
    ForgetCurrentEpoch,
    /// An elected replica takes its master's slots with its master's config
    /// epoch instead of the election's (breaks the per-slot epoch rule).
    PromoteWithoutEpochBump,
}

impl Planted {
    pub const ALL: [Planted; 3] = [
        Planted::KeepFail,
        Planted::ForgetCurrentEpoch,
        Planted::PromoteWithoutEpochBump,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Planted::KeepFail => "keep-fail",
            Planted::ForgetCurrentEpoch => "forget-current-epoch",
            Planted::PromoteWithoutEpochBump => "promote-without-epoch-bump",
        }
    }

    pub fn parse(s: &str) -> Option<Planted> {
        Planted::ALL.into_iter().find(|p| p.name() == s)
    }
}

/// One Redis Cluster node.
pub struct Node {
    pub setup: NodeSetup,
    /// `cluster-announce-ip`, parsed once (headers carry it as `myip`).
    announce_ip: Option<[u8; 4]>,
    rng: Rng,
    now: SimTime,
    now_ms: i64,
    /// Known nodes (`server.cluster->nodes`); removed entries are `None`.
    nodes: Vec<Option<ClusterNode>>,
    /// Live entry indices in insertion order: our stand-in for dict order.
    live: Vec<u32>,
    by_name: FxHashMap<NodeId, u32>,
    myself: u32,
    /// Slot → entry index of its owner, `NO_OWNER` if unassigned.
    slot_owner: Vec<u32>,
    /// Bumped at every change of `slot_owner` (see [`Node::slot_map_version`]).
    slot_map_version: u64,
    /// Bumped at every change of my own slots (see [`Node::myslots_version`]).
    myslots_version: u64,
    owner_not_claiming_slot: SlotBitmap,
    migrating_slots_to: BTreeMap<u16, u32>,
    importing_slots_from: BTreeMap<u16, u32>,
    pub current_epoch: u64,
    pub last_vote_epoch: u64,
    state_ok: bool,
    /// `server.cluster->size`: masters with slots, as last computed.
    size: u32,
    todo: u8,
    stats_pfail_nodes: u32,
    cron_iteration: u64,
    cluster_pings_sent: u64,
    first_call_time: i64,
    among_minority_time: i64,
    stats_sent: [u64; bus::MSG_TYPE_COUNT],
    stats_received: [u64; bus::MSG_TYPE_COUNT],
    links: FxHashMap<LinkId, Link>,
    next_link: LinkId,
    blacklist: BTreeMap<NodeId, i64>,
    /// Election and manual-failover state (`failover_auth_*`, `mf_*`).
    election: election::FailoverState,
    /// Replication, both halves (`server.master`, `server.slaves`, ...),
    /// and its random stream: the node's, with the top bit of the stream
    /// number set, so what replication draws never shifts the cluster
    /// bus's draws.
    repl: Replication,
    repl_rng: Rng,
    /// Scratch buffer for what `repl` asks for.
    repl_out: Vec<ReplEffect>,
    /// Database 0: empty at start unless loaded from disk
    /// ([`Node::load_data_from_disk`]).
    pub keyspace: keyspace::Keyspace,
    /// `stat_peak_memory` as last recorded.
    used_memory_peak: u64,
    /// What the host has free for a `fork()` child under
    /// `vm.overcommit_memory` 0, as the world last said (`None`: no limit).
    host_memory_free: Option<u64>,
    /// The keys of the slot `GETKEYSINSLOT` last listed.
    slot_keys_cache: migrate::SlotKeysCache,
    /// Save points, the AOF's fsyncs, the load at start.
    persist: Persistence,
    /// (redsim's bookkeeping, for the checks) My config epoch was taken
    /// without a majority's agreement: `CLUSTER FAILOVER TAKEOVER`, the
    /// bump that closes a slot import, or a config epoch collision.
    config_epoch_unilateral: bool,
}

pub const NO_OWNER: u32 = u32::MAX;

/// `cluster-announce-ip` as the 4 bytes a header carries.
fn announce_ip_of(config: &Config) -> Option<[u8; 4]> {
    config
        .cluster_announce_ip
        .as_deref()
        .and_then(|s| crate::net::Addr::parse(&format!("{s}:1")).ok())
        .map(|a| a.ip)
}

impl Node {
    /// A fresh node with an empty `nodes.conf`: a new random ID, flags
    /// `myself,master`, no address known yet (it learns its IP from MEET).
    pub fn new(setup: NodeSetup, mut rng: Rng, now: SimTime) -> Node {
        let id = NodeId::random(&mut rng);
        let mut node = Node::empty(setup, rng, now);
        let now_ms = node.now_ms;
        let mut me = ClusterNode::new(id, MYSELF | MASTER, now_ms);
        (me.port, me.cport) = node.derive_announced_ports();
        me.ip = node.announce_ip;
        node.myself = node.add_node(me);
        // `clusterInit()` (which writes nodes.conf) only runs in cluster
        // mode.
        if node.setup.config.cluster_enabled {
            node.todo |= todo::SAVE_CONFIG | todo::FSYNC_CONFIG;
        }
        node
    }

    fn empty(setup: NodeSetup, rng: Rng, now: SimTime) -> Node {
        let mut repl_rng = rng.clone();
        repl_rng.set_stream(rng.get_stream() | 1 << 63);
        let repl = Replication::new(setup.port, now, &mut repl_rng);
        // The keyspace's stream (LFU increments, eviction and expiry
        // sampling): the node's with the second bit from the top set.
        let mut mem_rng = rng.clone();
        mem_rng.set_stream(rng.get_stream() | 1 << 62);
        let mut keyspace = keyspace::Keyspace::new();
        keyspace.configure(keyspace::MemoryPolicy::from_config(&setup.config), mem_rng);
        keyspace.standalone = !setup.config.cluster_enabled;
        let announce_ip = announce_ip_of(&setup.config);
        Node {
            setup,
            announce_ip,
            rng,
            now,
            now_ms: mstime(now),
            nodes: Vec::new(),
            live: Vec::new(),
            by_name: FxHashMap::default(),
            myself: 0,
            slot_owner: vec![NO_OWNER; CLUSTER_SLOTS],
            slot_map_version: 0,
            myslots_version: 0,
            owner_not_claiming_slot: SlotBitmap::default(),
            migrating_slots_to: BTreeMap::new(),
            importing_slots_from: BTreeMap::new(),
            current_epoch: 0,
            last_vote_epoch: 0,
            state_ok: false,
            size: 1,
            todo: 0,
            stats_pfail_nodes: 0,
            cron_iteration: 0,
            cluster_pings_sent: 0,
            first_call_time: 0,
            among_minority_time: 0,
            stats_sent: [0; bus::MSG_TYPE_COUNT],
            stats_received: [0; bus::MSG_TYPE_COUNT],
            links: FxHashMap::default(),
            next_link: 1,
            blacklist: BTreeMap::new(),
            election: election::FailoverState::default(),
            repl,
            repl_rng,
            repl_out: Vec::new(),
            keyspace,
            used_memory_peak: 0,
            host_memory_free: None,
            slot_keys_cache: migrate::SlotKeysCache::default(),
            persist: Persistence::new(now),
            config_epoch_unilateral: false,
        }
    }

    /// Whether `slot` is open here (`MIGRATING` or `IMPORTING`).
    pub fn slot_open(&self, slot: u16) -> bool {
        self.migrating_slots_to.contains_key(&slot) || self.importing_slots_from.contains_key(&slot)
    }

    /// How many slots this node has open (`MIGRATING` or `IMPORTING`).
    pub fn open_slot_count(&self) -> usize {
        self.migrating_slots_to.len() + self.importing_slots_from.len()
    }

    /// Whether my config epoch was taken without a majority's agreement
    /// (`CLUSTER FAILOVER TAKEOVER`, a slot import's bump, a config epoch
    /// collision) rather than won in an election or set at creation.
    pub fn config_epoch_unilateral(&self) -> bool {
        self.config_epoch_unilateral
    }

    /// Handle one input at time `now`; effects are appended to `out`.
    pub fn handle(&mut self, now: SimTime, input: Input, out: &mut Vec<Effect>) {
        self.set_now(now);
        match input {
            Input::Cron => self.server_cron(out),
            Input::Accepted {
                link,
                peer_ip,
                local_ip,
            } => {
                self.links.insert(
                    link,
                    Link {
                        node: None,
                        inbound: true,
                        ctime: self.now_ms,
                        peer_ip,
                        local_ip: Some(local_ip),
                    },
                );
            }
            Input::Connected { link, local_ip } => self.link_connected(link, local_ip, out),
            Input::LinkError { link } => self.free_link(link, None),
            Input::Recv { link, msg } => self.process_packet(link, &msg, out),
            Input::Repl(input) => {
                self.with_repl(out, |r, now, ctx, o| r.handle(now, input, ctx, o))
            }
        }
        self.before_sleep(out);
        self.record_peak_memory();
    }

    fn set_now(&mut self, now: SimTime) {
        self.now = now;
        self.now_ms = mstime(now);
    }

    /// `serverCron`'s part: `databasesCron` (active expiry), save points,
    /// `replicationCron` (every tenth tick, inside the module), then
    /// `clusterCron` (with `cluster-enabled yes`). While loading its data from disk, or an RDB from its
    /// master, the process is blocked in `rdbLoad`: no `serverCron` runs (a
    /// replica only pings its master with newlines).
    fn server_cron(&mut self, out: &mut Vec<Effect>) {
        if self.now < self.persist.loading_until() {
            return;
        }
        let expired = self.databases_cron();
        if !expired.is_empty() {
            self.feed_commands(&expired, out);
        }
        if !self.repl.replica.loading() {
            self.persistence_cron(out);
        }
        let cronloops = self.cron_iteration;
        let mf_paused = self.writes_paused();
        self.with_repl(out, |r, now, ctx, o| {
            r.handle(
                now,
                ReplInput::Cron {
                    cronloops,
                    mf_paused,
                },
                ctx,
                o,
            )
        });
        if self.setup.config.cluster_enabled {
            if !self.loading() {
                self.cluster_cron(out);
            }
        } else {
            // `cronloops` (which `clusterCron` counts in cluster mode).
            self.cron_iteration += 1;
        }
    }

    /// Run `f` on my replication state with my configuration, keyspace and
    /// random stream; what it asks for goes to `out`.
    fn with_repl(
        &mut self,
        out: &mut Vec<Effect>,
        f: impl FnOnce(&mut Replication, SimTime, &mut ReplCtx, &mut Vec<ReplEffect>),
    ) {
        let mut effects = std::mem::take(&mut self.repl_out);
        let fork_enomem = self.fork_enomem();
        let mut ctx = ReplCtx {
            config: &self.setup.config,
            keyspace: &mut self.keyspace,
            rng: &mut self.repl_rng,
            fork_enomem,
            loading: self.now < self.persist.loading_until(),
            child_busy: self.persist.has_child(),
        };
        f(&mut self.repl, self.now, &mut ctx, &mut effects);
        for e in effects.drain(..) {
            match e {
                ReplEffect::Executed { count, commands } => {
                    self.persist_feed(count, || commands, out)
                }
                ReplEffect::Persist(e) => out.push(Effect::Persist(e)),
                ReplEffect::Note(note) => {
                    self.persist_repl_note(&note);
                    out.push(Effect::Repl(ReplEffect::Note(note)));
                }
                e => out.push(Effect::Repl(e)),
            }
        }
        self.repl_out = effects;
    }

    /// `hasActiveChildProcess`: a BGSAVE child runs, a save point's or a
    /// full sync's.
    pub(super) fn has_active_child_process(&self) -> bool {
        self.repl.has_child() || self.persist.has_child()
    }

    /// Whether a `fork()` now fails with `Cannot allocate memory`: my host
    /// has less free memory than I use, with `vm.overcommit_memory` 0.
    fn fork_enomem(&self) -> bool {
        self.host_memory_free
            .is_some_and(|free| self.used_memory() > free)
    }

    /// `replicationSetMaster(n->ip, n->port)` for node `idx`, if its
    /// address is known (else `clusterCron` does it once it is).
    fn replicate(&mut self, idx: u32, out: &mut Vec<Effect>) {
        let n = self.n(idx);
        if let Some(ip) = n.ip {
            let port = n.port;
            self.with_repl(out, |r, now, _, o| {
                r.replication_set_master(now, ip, port, o)
            });
        }
    }

    /// `beforeSleep()`: the AOF's fsync, then `clusterBeforeSleep()`:
    /// deferred state update and config save.
    fn before_sleep(&mut self, out: &mut Vec<Effect>) {
        self.aof_flush(out);
        self.before_sleep_failover(out);
        let flags = self.todo;
        self.todo &= todo::HANDLE_FAILOVER | todo::HANDLE_MANUALFAILOVER;
        if flags & todo::UPDATE_STATE != 0 {
            self.update_state(out);
        }
        if flags & todo::SAVE_CONFIG != 0 {
            out.push(Effect::SaveConfig {
                conf: Rc::new(self.nodes_conf()),
                fsync: flags & todo::FSYNC_CONFIG != 0,
            });
        }
    }

    // ----- node table -------------------------------------------------------

    fn add_node(&mut self, n: ClusterNode) -> u32 {
        let idx = self.nodes.len() as u32;
        self.by_name.insert(n.name, idx);
        self.nodes.push(Some(n));
        self.live.push(idx);
        idx
    }

    #[inline]
    pub(crate) fn n(&self, idx: u32) -> &ClusterNode {
        self.nodes[idx as usize].as_ref().expect("live node entry")
    }

    #[inline]
    pub(crate) fn nm(&mut self, idx: u32) -> &mut ClusterNode {
        self.nodes[idx as usize].as_mut().expect("live node entry")
    }

    pub(crate) fn lookup(&self, name: &NodeId) -> Option<u32> {
        self.by_name.get(name).copied()
    }

    /// `clusterRenameNode`.
    fn rename_node(&mut self, idx: u32, name: NodeId) {
        let old = self.n(idx).name;
        self.by_name.remove(&old);
        self.nm(idx).name = name;
        self.by_name.insert(name, idx);
    }

    /// `clusterDelNode` + `freeClusterNode`.
    fn del_node(&mut self, idx: u32, out: &mut Vec<Effect>) {
        for j in 0..CLUSTER_SLOTS {
            if self.slot_owner[j] == idx {
                self.del_slot(j);
            }
        }
        self.importing_slots_from.retain(|_, v| *v != idx);
        self.migrating_slots_to.retain(|_, v| *v != idx);
        for k in 0..self.live.len() {
            let other = self.live[k];
            if other != idx {
                self.del_failure_report(other, idx);
            }
        }
        let node = self.nodes[idx as usize].take().expect("live node entry");
        for s in &node.slaves {
            if let Some(sn) = self.nodes[*s as usize].as_mut() {
                sn.slaveof = None;
            }
        }
        if node.is_slave() {
            if let Some(m) = node.slaveof {
                self.remove_slave(m, idx);
            }
        }
        self.by_name.remove(&node.name);
        self.live.retain(|&i| i != idx);
        for l in [node.link, node.inbound_link].into_iter().flatten() {
            self.links.remove(&l);
            out.push(Effect::Close { link: l });
        }
    }

    fn remove_slave(&mut self, master: u32, slave: u32) {
        let m = self.nm(master);
        let Some(pos) = m.slaves.iter().position(|&s| s == slave) else {
            return; // not its replica: MIGRATE_TO is left alone
        };
        m.slaves.remove(pos);
        if m.slaves.is_empty() {
            m.flags &= !MIGRATE_TO;
        }
    }

    fn add_slave(&mut self, master: u32, slave: u32) {
        let m = self.nm(master);
        if !m.slaves.contains(&slave) {
            m.slaves.push(slave);
            m.flags |= MIGRATE_TO;
        }
    }

    fn masters_have_slaves(&self) -> bool {
        self.live
            .iter()
            .any(|&i| self.n(i).is_master() && !self.n(i).slaves.is_empty())
    }

    /// `clusterAddSlot`.
    pub(crate) fn add_slot(&mut self, idx: u32, slot: usize) -> bool {
        if self.slot_owner[slot] != NO_OWNER {
            return false;
        }
        let first_migrate = self.n(idx).numslots == 0 && self.masters_have_slaves();
        let n = self.nm(idx);
        if !n.slots.get(slot) {
            Rc::make_mut(&mut n.slots).set(slot);
            n.numslots += 1;
            if n.numslots == 1 && first_migrate {
                n.flags |= MIGRATE_TO;
            }
        }
        self.slot_owner[slot] = idx;
        self.slot_map_changed(idx);
        true
    }

    /// `clusterDelSlot`.
    pub(crate) fn del_slot(&mut self, slot: usize) -> bool {
        let owner = self.slot_owner[slot];
        if owner == NO_OWNER {
            return false;
        }
        let n = self.nm(owner);
        if n.slots.get(slot) {
            Rc::make_mut(&mut n.slots).clear(slot);
            n.numslots -= 1;
        }
        self.slot_owner[slot] = NO_OWNER;
        self.slot_map_changed(owner);
        true
    }

    /// The slots of `mask` (word `w` of the slot bitmap, not empty) that
    /// have the same owner (or none) as its lowest slot.
    pub(crate) fn slots_of_owner_in_word(&self, w: usize, mask: u64) -> u64 {
        let owners = &self.slot_owner[w * 64..w * 64 + 64];
        let owner = owners[mask.trailing_zeros() as usize];
        // Every owner compared, no early exit: the loop vectorizes.
        if owners.iter().fold(true, |all, &o| all & (o == owner)) {
            return mask;
        }
        let mut same = 0u64;
        for (b, &o) in owners.iter().enumerate() {
            same |= u64::from(o == owner) << b;
        }
        same & mask
    }

    /// `clusterDelSlot` then `clusterAddSlot(to)` for every slot of `mask`
    /// in word `w` of the slot bitmap, a word at a time.
    pub(crate) fn move_slots(&mut self, w: usize, mask: u64, to: u32) {
        let mut rest = mask;
        while rest != 0 {
            let owner = self.slot_owner[w * 64 + rest.trailing_zeros() as usize];
            let same = self.slots_of_owner_in_word(w, rest);
            rest &= !same;
            if owner == self.myself {
                self.myslots_version += 1;
            }
            if owner != NO_OWNER {
                let n = self.nm(owner);
                let had = n.slots.0[w] & same;
                if had != 0 {
                    Rc::make_mut(&mut n.slots).0[w] &= !had;
                    n.numslots -= had.count_ones();
                }
            }
        }
        let first_migrate = self.n(to).numslots == 0 && self.masters_have_slaves();
        let n = self.nm(to);
        let new = mask & !n.slots.0[w];
        if new != 0 {
            Rc::make_mut(&mut n.slots).0[w] |= new;
            n.numslots += new.count_ones();
            if n.numslots == new.count_ones() && first_migrate {
                n.flags |= MIGRATE_TO;
            }
        }
        let owners = &mut self.slot_owner[w * 64..w * 64 + 64];
        if mask == u64::MAX {
            owners.fill(to);
        } else {
            let mut r = mask;
            while r != 0 {
                owners[r.trailing_zeros() as usize] = to;
                r &= r - 1;
            }
        }
        self.slot_map_changed(to);
    }

    /// After `slot_owner` changed, slots of `owner` among them.
    fn slot_map_changed(&mut self, owner: u32) {
        self.slot_map_version += 1;
        if owner == self.myself {
            self.myslots_version += 1;
        }
    }

    /// `clusterDelNodeSlots`.
    fn del_node_slots(&mut self, idx: u32) {
        let owned: Vec<usize> = self.n(idx).slots.iter().collect();
        for j in owned {
            self.del_slot(j);
        }
    }

    /// `clusterSetNodeAsMaster`.
    fn set_node_as_master(&mut self, idx: u32) {
        if self.n(idx).is_master() {
            return;
        }
        if let Some(m) = self.n(idx).slaveof {
            self.remove_slave(m, idx);
            if idx != self.myself {
                self.nm(idx).flags |= MIGRATE_TO;
            }
        }
        let n = self.nm(idx);
        n.flags &= !SLAVE;
        n.flags |= MASTER;
        n.slaveof = None;
        self.todo |= todo::SAVE_CONFIG | todo::UPDATE_STATE;
    }

    /// `clusterSetMaster`: make myself a replica of `master`.
    fn set_master(&mut self, master: u32, out: &mut Vec<Effect>) {
        let me = self.myself;
        debug_assert_ne!(master, me);
        if self.n(me).is_master() {
            let m = self.nm(me);
            m.flags &= !(MASTER | MIGRATE_TO);
            m.flags |= SLAVE;
            self.migrating_slots_to.clear();
            self.importing_slots_from.clear();
        } else if let Some(old) = self.n(me).slaveof {
            self.remove_slave(old, me);
        }
        self.nm(me).slaveof = Some(master);
        self.add_slave(master, me);
        self.replicate(master, out);
        self.reset_manual_failover();
    }

    // ----- links --------------------------------------------------------------

    fn create_link(&mut self, idx: u32, out: &mut Vec<Effect>) {
        let id = self.next_link;
        self.next_link += 1;
        debug_assert!(id & INBOUND_LINK_BIT == 0, "outbound link ids exhausted");
        let n = self.n(idx);
        let ip = n.ip.expect("connect needs an address");
        let cport = n.cport;
        self.links.insert(
            id,
            Link {
                node: Some(idx),
                inbound: false,
                ctime: self.now_ms,
                peer_ip: ip,
                local_ip: None,
            },
        );
        self.nm(idx).link = Some(id);
        out.push(Effect::Connect {
            link: id,
            ip,
            cport,
        });
    }

    /// `freeClusterLink`. With `out`, the other end is told (a close we
    /// decided); without, the link is already gone at the socket level.
    fn free_link(&mut self, id: LinkId, out: Option<&mut Vec<Effect>>) {
        let Some(link) = self.links.remove(&id) else {
            return;
        };
        if let Some(idx) = link.node {
            if let Some(n) = self.nodes[idx as usize].as_mut() {
                if n.link == Some(id) {
                    n.link = None;
                } else if n.inbound_link == Some(id) {
                    n.inbound_link = None;
                }
            }
        }
        if let Some(out) = out {
            out.push(Effect::Close { link: id });
        }
    }

    /// `clusterLinkConnectHandler`: queue a PING (or MEET) at once.
    fn link_connected(&mut self, id: LinkId, local_ip: [u8; 4], out: &mut Vec<Effect>) {
        let Some(link) = self.links.get_mut(&id) else {
            return;
        };
        link.local_ip = Some(local_ip);
        let idx = link.node.expect("outbound link has a node");
        let old_ping_sent = self.n(idx).ping_sent;
        let typ = if self.n(idx).flags & MEET != 0 {
            bus::MsgType::Meet
        } else {
            bus::MsgType::Ping
        };
        self.send_ping(id, typ, out);
        if old_ping_sent != 0 {
            self.nm(idx).ping_sent = old_ping_sent;
        }
        self.nm(idx).flags &= !MEET;
    }

    /// `clusterSendMessage`: counted only when there is a link.
    fn send_message(&mut self, link: Option<LinkId>, msg: Rc<BusMsg>, out: &mut Vec<Effect>) {
        if let Some(link) = link {
            self.stats_sent[msg.typ as usize] += 1;
            out.push(Effect::Send { link, msg });
        }
    }

    /// `CONFIG SET directive value` at `now` (the name canonical, the value
    /// checked when the scenario was loaded): from now on the node runs with
    /// it, after the directive's apply function (`config.c`). A restart
    /// forgets it (no `CONFIG REWRITE`). `appendonly` is refused: turning
    /// the AOF on starts a rewrite this version does not model.
    pub fn config_set(
        &mut self,
        now: SimTime,
        directive: &str,
        value: &ConfigValue,
        out: &mut Vec<Effect>,
    ) -> Result<(), String> {
        if directive == "appendonly" {
            return Err("CONFIG SET appendonly is not modelled yet (the AOF rewrite it starts); the command was skipped".into());
        }
        self.set_now(now);
        self.setup.config.set(directive, value)?;
        match directive {
            "maxmemory-policy" | "maxmemory-samples" | "lfu-log-factor" | "lfu-decay-time" => {
                let policy = keyspace::MemoryPolicy::from_config(&self.setup.config);
                self.keyspace.set_policy(policy);
            }
            // `clusterUpdateMyselfIp`: unset, the address is learnt again
            // from the next MEET or PING.
            "cluster-announce-ip" => {
                self.announce_ip = announce_ip_of(&self.setup.config);
                let me = self.myself;
                self.nm(me).ip = self.announce_ip;
            }
            "maxmemory" => self.update_maxmemory(out),
            // `updateReplBacklogSize`: `resizeReplicationBacklog`.
            "repl-backlog-size" => {
                let cfg = &mut self.setup.config;
                cfg.repl_backlog_size_bytes = cfg
                    .repl_backlog_size_bytes
                    .max(CONFIG_REPL_BACKLOG_MIN_SIZE);
                self.with_repl(out, |r, now, ctx, _| {
                    r.resize_replication_backlog(now, ctx.config)
                });
            }
            // `updateGoodSlaves`: `refreshGoodSlavesCount`.
            "min-replicas-to-write" | "min-replicas-max-lag" => {
                self.with_repl(out, |r, now, ctx, _| {
                    r.refresh_good_slaves_count_at(now, ctx.config)
                });
            }
            // `updateClusterAnnouncedPort`: `clusterUpdateMyselfAnnouncedPorts`;
            // the next messages' headers carry them.
            "cluster-announce-port" | "cluster-announce-bus-port" | "cluster-announce-tls-port" => {
                let me = self.myself;
                (self.nm(me).port, self.nm(me).cport) = self.derive_announced_ports();
            }
            _ => {}
        }
        self.before_sleep(out);
        self.record_peak_memory();
        Ok(())
    }

    /// `deriveAnnouncedPorts` (without TLS): my client port and bus port
    /// as I announce them, `cluster-announce-port` and
    /// `cluster-announce-bus-port` if set, else my port and port + 10000.
    fn derive_announced_ports(&self) -> (u16, u32) {
        let cfg = &self.setup.config;
        let port = self.setup.port;
        let announced_port = match cfg.cluster_announce_port {
            0 => port,
            p => p,
        };
        let announced_cport = match cfg.cluster_announce_bus_port {
            0 => u32::from(port) + 10000,
            p => u32::from(p),
        };
        (announced_port, announced_cport)
    }

    // ----- read-only views ----------------------------------------------------

    pub fn myself(&self) -> &ClusterNode {
        self.n(self.myself)
    }

    pub fn my_id(&self) -> NodeId {
        self.myself().name
    }

    /// My role: the cluster's flags in cluster mode, else whether I
    /// replicate from anyone (`server.masterhost`, set by `REPLICAOF`).
    pub fn is_master(&self) -> bool {
        if self.setup.config.cluster_enabled {
            self.myself().is_master()
        } else {
            self.repl.replica.masterhost().is_none()
        }
    }

    /// Where `clusterCron`'s iteration counter stands. A real process
    /// starts at a moment unrelated to the others', so which tick of its
    /// second carries the random PING (every 10th) differs between
    /// processes; the world sets it at start.
    pub fn set_cron_iteration(&mut self, iteration: u64) {
        self.cron_iteration = iteration;
    }

    /// `cluster_state:ok`.
    pub fn state_ok(&self) -> bool {
        self.state_ok
    }

    /// Known nodes in table order.
    pub fn known_nodes(&self) -> impl Iterator<Item = &ClusterNode> {
        self.live.iter().map(move |&i| self.n(i))
    }

    pub fn node_by_name(&self, name: &NodeId) -> Option<&ClusterNode> {
        self.lookup(name).map(|i| self.n(i))
    }

    /// The owner of `slot` as this node sees it.
    pub fn slot_owner(&self, slot: usize) -> Option<&ClusterNode> {
        match self.slot_owner[slot] {
            NO_OWNER => None,
            i => Some(self.n(i)),
        }
    }

    /// A number that changes at every change of this node's slot → owner
    /// table, so an observer can tell that a node's view of the slots is
    /// unchanged without reading 16384 slots.
    pub fn slot_map_version(&self) -> u64 {
        self.slot_map_version
    }

    /// A number that changes whenever my own slots (`myself->slots`) do.
    pub fn myslots_version(&self) -> u64 {
        self.myslots_version
    }

    /// My master's ID, if I am a replica.
    pub fn master_id(&self) -> Option<NodeId> {
        self.myself().slaveof.map(|m| self.n(m).name)
    }

    /// The config epoch shown for me: my master's if I am a replica.
    pub fn my_epoch(&self) -> u64 {
        let me = self.myself();
        match (me.is_slave(), me.slaveof) {
            (true, Some(m)) => self.n(m).config_epoch,
            _ => me.config_epoch,
        }
    }

    /// My replication state, as `INFO replication` shows it.
    pub fn replication(&self) -> &Replication {
        &self.repl
    }

    /// A uniformly random known node (`dictGetRandomKey`).
    fn random_live(&mut self) -> u32 {
        let i = self.rng.random_range(0..self.live.len());
        self.live[i]
    }
}

#[cfg(test)]
mod tests;
