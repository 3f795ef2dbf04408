//! The world: Redis processes, the network between them, TCP connections,
//! the fault schedule and the cluster manager. It turns the effects nodes
//! return into events, and events into node inputs.
//!
//! ## Connections
//! A node's `Connect` effect opens a TCP connection. Its SYN crosses the
//! network like any message; it is lost when a partition or one-way rule
//! blocks it, and then retransmitted as Linux does (1, 3, 7, 15, 31 and 63 s
//! after the first try; the connect fails after 127 s). A SYN reaching a live
//! host where no process listens is refused (RST), so a node sees the link to
//! a killed process fail after one round trip; a SYN to a crashed host gets no
//! answer. A paused (`SIGSTOP`) process's kernel still completes the
//! handshake and buffers what arrives; the process reads it when resumed.
//!
//! Messages on an open connection arrive in order (each direction is a
//! [`Pipe`]) and are dropped while a partition or one-way rule blocks them.
//! A connection closed by either end, or by a process's death, loses what
//! was in flight in both directions; the other end learns of it (EOF/RST)
//! one transit later when the network lets it through.
//!
//! Replication links are connections of their own, from a replica to its
//! master's client port, with the same rules but one: TCP does not lose
//! the bytes of a stream, so what a partition or one-way rule blocks on a
//! replication link waits and goes out, in order, once the network lets
//! it through (or is lost with the connection). Each message is charged
//! at its size on the wire; a bulk message (the RDB, the stream) is
//! reported drained to its sender when it has left the sender's end of
//! the pipe, which is when Redis writes the next one. A `fork()` for a
//! full sync stalls the master: it handles nothing for `fork_us`, and
//! what arrives meanwhile waits in its sockets.
//!
//! Client populations ([`crate::client`]) talk to the nodes over
//! connections of their own, with the same rules ([`clients`]).

mod admin;
mod clients;
mod sentinels;

use std::collections::BTreeMap;
use std::rc::Rc;

use rustc_hash::FxHashMap;

use crate::admin::create::{allocate, Allocation};
use crate::client::accounting::NO_SHARD;
use crate::client::Req;
use crate::engine::{actor_rng, Actor, EventQueue, Model, Rng, SimTime, MS, SEC};
use crate::net::{Endpoint, Network, Pipe};
use crate::node::bus::{BusMsg, NodeId};
use crate::node::config::ConfigValue;
use crate::node::persistence::{AofFile, DiskData, PersistEffect};
use crate::node::render::{ClusterCommand, ConfFile};
use crate::node::replication::{
    DropReason, RdbSnapshot, ReplEffect, ReplInput, ReplMsg, ReplNote, ReplTimer,
};
use crate::node::slots::CLUSTER_SLOTS;
use crate::node::{Effect, Input, LinkId, Node, NodeSetup, Note, CRON_PERIOD, INBOUND_LINK_BIT};
use crate::scenario::{FaultAction, Scenario};

/// Linux's SYN retransmission schedule (`tcp_syn_retries = 6`): seconds
/// after the first SYN at which it is sent again; the connect fails at the
/// last entry.
const SYN_RETRY_AT_S: [u64; 7] = [1, 3, 7, 15, 31, 63, 127];

/// What the world schedules.
#[derive(Debug)]
pub enum Event {
    /// `clusterCron` of a process incarnation.
    Cron { proc: u32, inc: u32 },
    /// A SYN reaches the target's host.
    SynArrive { conn: u32 },
    /// Time to retransmit a SYN that got no answer (or give up).
    SynRetry { conn: u32, attempt: u8 },
    /// The SYN-ACK reaches the initiator: it is connected.
    Established { conn: u32 },
    /// The handshake's last ACK reaches the acceptor: `accept()` returns.
    Accept { conn: u32 },
    /// A message becomes readable at one end.
    Deliver { conn: u32, to_b: bool, msg: Wire },
    /// A bulk replication message written towards `to_b`'s end has left
    /// the sender's end of the pipe.
    Drained { conn: u32, to_b: bool },
    /// A replication timer of a process incarnation.
    ReplTimer {
        proc: u32,
        inc: u32,
        timer: ReplTimer,
    },
    /// A process incarnation's `fork()` is over.
    Unstall { proc: u32, inc: u32 },
    /// A replication link to close now that its last reply arrived
    /// ([`ReplEffect::CloseAfterReply`]).
    CloseAfterReply { proc: u32, inc: u32, link: LinkId },
    /// The other end closed or reset the connection (EOF/RST arrives).
    Reset { conn: u32, to_b: bool },
    /// The connect failed (refused or timed out).
    ConnectFailed { conn: u32 },
    /// The i-th scheduled fault.
    Fault(u32),
    /// The cluster manager's next step.
    Admin,
    /// Client traffic.
    Client(ClientEvent),
    /// The cluster manager's commands after creation.
    Manager(ManagerEvent),
    /// Sentinels: their timers, commands, replies, hellos.
    Sentinel(Box<SentinelEvent>),
}

pub use admin::{rebalance_plan, AdminCmd, AdminReply, Manager, ManagerEvent};
pub use clients::{ClientEvent, Clients};
pub use sentinels::{SentinelEvent, SentinelProc, Sentinels};

/// What a connection carries: the cluster bus's messages, or replication's.
#[derive(Clone, Debug)]
pub enum Wire {
    Bus(Rc<BusMsg>),
    Repl(Rc<ReplMsg>),
}

impl Wire {
    fn wire_size(&self) -> u64 {
        match self {
            Wire::Bus(m) => m.wire_size(),
            Wire::Repl(m) => m.wire_size(),
        }
    }

    fn digest(&self) -> u64 {
        match self {
            Wire::Bus(m) => m.digest(),
            Wire::Repl(m) => (19 << 56) ^ m.wire_size(),
        }
    }
}

/// Which port a connection goes to: the cluster bus port, or the client
/// port (replication links). Each has its own link ids on a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Plane {
    Bus,
    Repl,
}

/// What happened on a link, for [`World::link_input`].
enum LinkEvent {
    Error,
    Recv(Wire),
}

/// What a paused process's sockets hold until it resumes.
#[derive(Debug)]
enum Pending {
    Bus(Input),
    Client {
        conn: u32,
        req: Req,
        readonly: bool,
    },
    /// The cluster manager's command in flight.
    Admin {
        token: u32,
    },
    /// The `RESTORE-ASKING`s of a `MIGRATE`.
    Restore(admin::Migration),
    /// The target's replies to this process's `MIGRATE`.
    Restored(admin::Migration, Option<Vec<crate::node::keyspace::Reply>>),
    /// A sentinel's command.
    Sentinel(Box<SentinelEvent>),
    ConfigSet(ConfigSet),
}

/// The `CONFIG SET` of fault `fault`, applied at `at`.
#[derive(Debug)]
struct ConfigSet {
    fault: u32,
    at: SimTime,
    directive: String,
    value: ConfigValue,
}

impl Conn {
    /// Messages in direction `dir` wait behind a partition.
    fn held_back(&self, dir: usize) -> bool {
        self.held.as_ref().is_some_and(|h| !h[dir].is_empty())
    }

    /// Hold `msg` in direction `dir` until the network lets it through.
    fn hold(&mut self, dir: usize, msg: Wire) {
        self.held.get_or_insert_with(Default::default)[dir].push(msg);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ConnState {
    Connecting,
    Open,
    Closed,
}

struct Conn {
    plane: Plane,
    a: u32,
    a_inc: u32,
    a_link: LinkId,
    /// The target process, if the address belongs to one.
    b: Option<u32>,
    b_inc: u32,
    b_link: LinkId,
    state: ConnState,
    /// When the first SYN was sent (retransmissions are timed from it).
    syn_start: SimTime,
    /// Messages the initiator wrote before the connection was established.
    queued: Vec<Wire>,
    ab: Pipe,
    ba: Pipe,
    /// What the network blocks, per direction (a→b, b→a), waiting to go
    /// out in order (TCP retransmitting).
    /// Boxed: a million connections of a 1000-node cluster hold nothing
    /// here outside partitions.
    held: Option<Box<[Vec<Wire>; 2]>>,
    accepted: bool,
}

/// What a process is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcState {
    Running,
    /// `SIGSTOP`: inputs are buffered until `resume`.
    Paused,
    Dead,
}

/// What a process has on disk.
#[derive(Clone, Debug, Default)]
pub struct Disk {
    /// The last `nodes.conf` written (the OS holds it even if not fsynced).
    pub nodes_conf: Option<ConfFile>,
    /// The last one fsynced: what survives a host crash.
    pub nodes_conf_fsynced: Option<ConfFile>,
    /// `dump.rdb`: the last RDB saved (always fsynced before its rename).
    pub rdb: Option<Rc<RdbSnapshot>>,
    /// The append only file, once the process wrote one.
    pub aof: Option<AofFile>,
}

/// One Redis process.
pub struct Proc {
    pub name: String,
    pub addr: crate::net::Addr,
    pub host: u32,
    pub node: Option<Node>,
    pub state: ProcState,
    /// Bumped at every death, so stale events and connections are ignored.
    pub inc: u32,
    inbox: Vec<Pending>,
    /// Client writes a manual failover's pause blocked: (connection,
    /// request), in arrival order.
    blocked: Vec<(u32, Req)>,
    /// Clients blocked in `WAIT`.
    waiting: Vec<clients::WaitingClient>,
    cron_missed: bool,
    /// Stalled in `fork()` until then: inputs wait in `inbox`.
    stalled_until: SimTime,
    pub disk: Disk,
    setup: NodeSetup,
}

/// Something that happened, for checks and reports.
#[derive(Clone, Debug, PartialEq)]
pub enum HistoryKind {
    /// A node's note; `about` resolved to a process when known.
    Note { note: Note, about: Option<u32> },
    /// Fault `index` of the scenario was applied; `masters_hit` are the
    /// slot-owning masters it killed, paused or cut off.
    Fault { index: u32, masters_hit: Vec<u32> },
    /// The cluster manager finished creating the cluster.
    Created,
    /// The cluster manager finished the operation of fault `index`.
    AdminDone { index: u32 },
    /// Replication or persistence at the process (`proc`).
    Data(DataEvent),
    /// A `sentinelEvent` of sentinel `sentinel` (`+sdown`, `+odown`,
    /// `+switch-master`, ...) about the instance at world index `about`
    /// (a node, or `nodes + j` for sentinel `j`), with its detail.
    Sentinel {
        sentinel: u32,
        kind: &'static str,
        about: Option<u32>,
        detail: String,
    },
}

/// What replication and persistence did, for reports and checks. `replica`
/// is the process at the other end of a master's replication link.
#[derive(Clone, Debug, PartialEq)]
pub enum DataEvent {
    /// Master: a full sync of `replica` starts (`+FULLRESYNC`), its stream
    /// after `offset`.
    FullSyncStarted { replica: Option<u32>, offset: i64 },
    /// Master: `+CONTINUE` to `replica`, `bytes` of backlog follow.
    PartialResync { replica: Option<u32>, bytes: i64 },
    /// Master: `replica` is online (its RDB sent, or its stream resumed).
    ReplicaOnline { replica: Option<u32> },
    /// Master: `replica` was dropped (output buffer limit, timeout).
    ReplicaDropped {
        replica: Option<u32>,
        reason: DropReason,
    },
    /// Master: `fork()` for a BGSAVE (`for_replication`, or a save point).
    Fork {
        for_replication: bool,
        fork_us: SimTime,
        used_memory: u64,
    },
    /// Master: `fork()` for a BGSAVE (`for_replication`: a full sync, whose
    /// waiting replicas were dropped; or a save point) failed (`Cannot
    /// allocate memory`: the host has less free memory than the node uses,
    /// with `overcommit_memory` 0).
    ForkFailed { for_replication: bool },
    /// Replica: the RDB is in; it loads for `load_us`.
    RdbLoadStarted { rdb_bytes: u64, load_us: SimTime },
    /// Replica: the full sync is over (`MASTER <-> REPLICA sync: Finished
    /// with success`), at `offset`.
    FullSyncFinished { offset: i64 },
    /// Replica: the master accepted a partial resync at `offset`.
    PartialResyncAccepted { offset: i64 },
    /// Replica: the link with its master went down.
    MasterLinkDown,
    /// `CONFIG SET maxmemory` to `maxmemory`, below the `used` memory
    /// (without what does not count for eviction).
    MaxmemoryBelowUsage { maxmemory: u64, used: u64 },
    /// Replica: its master answered `PSYNC` with `reply` (with the leading
    /// `-` or `+`), not one it expects (`-NOAUTH ...`): it tries `SYNC`.
    PsyncUnexpectedReply { reply: String },
    /// Replica: its master answered the sync with `error` (an
    /// authentication error, a failed BGSAVE): it reconnects and tries
    /// again.
    SyncAborted { error: String },
    /// `dump.rdb` was written (a save point, a disk sync, or a replica's
    /// received RDB), with `keys`.
    RdbSaved { keys: u64 },
    /// `REPLICAOF` (an operator's or a Sentinel's) took effect: the
    /// process now replicates from `master`, or is a master (`None`).
    ReplicaOf { master: Option<u32> },
    /// The process loads its data from disk (the AOF or `dump.rdb`).
    LoadingFromDisk {
        from_aof: bool,
        keys: u64,
        load_us: SimTime,
    },
}

impl DataEvent {
    /// The lines Redis 7.0.15 logs at warning level for this event,
    /// verbatim (`rdbSaveBackground` or `rdbSaveToSlavesSockets`, then
    /// `startBgsaveForReplication`; `updateMaxmemory`;
    /// `slaveTryPartialResynchronization`; `readSyncBulkPayload`), in order.
    pub fn redis_log(&self) -> Vec<String> {
        match self {
            DataEvent::ForkFailed { for_replication } => {
                let mut lines =
                    vec!["Can't save in background: fork: Cannot allocate memory".to_string()];
                if *for_replication {
                    lines.push("BGSAVE for replication failed".into());
                }
                lines
            }
            DataEvent::MaxmemoryBelowUsage { maxmemory, used } => vec![format!(
                "WARNING: the new maxmemory value set via CONFIG SET ({maxmemory}) is smaller than the current memory usage ({used}). This will result in key eviction and/or the inability to accept new write commands depending on the maxmemory-policy."
            )],
            DataEvent::PsyncUnexpectedReply { reply } => {
                vec![format!("Unexpected reply to PSYNC from master: {reply}")]
            }
            DataEvent::SyncAborted { error } => {
                vec![format!("MASTER aborted replication with an error: {error}")]
            }
            _ => Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct HistoryEvent {
    pub at: SimTime,
    /// The process it happened at, if any.
    pub proc: Option<u32>,
    pub kind: HistoryKind,
}

/// The cluster manager (`redis-cli --cluster create`) as a small script.
#[derive(Clone, Debug)]
enum AdminPhase {
    /// Send ADDSLOTS, SET-CONFIG-EPOCH and MEET.
    Start,
    /// Poll until every node reports the same slot configuration;
    /// `polls` failed polls since the last link check.
    WaitJoin {
        polls: u32,
    },
    Done,
}

/// A warning about something in the scenario that this version does not do.
pub type Warning = String;

pub struct World {
    pub scenario: Scenario,
    pub seed: u64,
    pub procs: Vec<Proc>,
    pub net: Network,
    net_rng: Rng,
    /// The network's draws for replication links.
    repl_net_rng: Rng,
    conns: Vec<Conn>,
    conn_of_link: FxHashMap<(u32, Plane, LinkId), u32>,
    /// The process listening on each address: its client port (where
    /// replicas connect) and its cluster bus port.
    proc_at: BTreeMap<([u8; 4], u32), u32>,
    id_to_proc: BTreeMap<NodeId, u32>,
    host_up: Vec<bool>,
    /// Per host: the live ends `(conn, to_b)` of connections whose other end
    /// died with the host. They hear nothing until the host is up again;
    /// then the next retransmission meets a kernel that knows no such
    /// connection and gets a reset.
    orphaned: Vec<Vec<(u32, bool)>>,
    next_inbound: u32,
    /// What `redis-cli --cluster create` allocated (None when the cluster
    /// comes from a `nodes_file` dump).
    allocation: Option<Allocation>,
    admin: AdminPhase,
    /// The cluster manager's operations after creation.
    pub manager: Manager,
    pub history: Vec<HistoryEvent>,
    pub warnings: Vec<Warning>,
    effects: Vec<Effect>,
    /// The client populations, their connections and their requests.
    pub clients: Clients,
    /// The shard of each slot: the masters' slot ranges when the cluster
    /// is created, in slot order ([`NO_SHARD`] for a slot no master had).
    pub shard_of_slot: Vec<u16>,
    pub shards: usize,
    /// Per process, the master its configuration names (`replicaof`, in
    /// replication and sentinel modes): what it replicates from when it
    /// starts. `REPLICAOF` from an operator or a Sentinel rewrites it
    /// (`CONFIG REWRITE`).
    pub replicaof: Vec<Option<u32>>,
    /// The sentinels (sentinel mode).
    pub sentinels: Sentinels,
}

impl World {
    /// Build the processes of a scenario and schedule the first events.
    pub fn new(
        scenario: Scenario,
        seed: u64,
        queue: &mut EventQueue<Event>,
    ) -> Result<World, String> {
        let nodes = &scenario.nodes;
        let mut hosts: Vec<u32> = nodes.iter().map(|n| n.host).collect();
        if let Some(sp) = &scenario.sentinel {
            hosts.extend(sp.sentinels.iter().map(|s| s.host));
        }
        let host_count = hosts.iter().copied().max().map_or(0, |h| h + 1) as usize;
        let net = Network::new(&scenario.network, hosts);
        let create_addrs: Vec<_> = nodes
            .iter()
            .filter(|n| n.in_create)
            .map(|n| n.addr)
            .collect();
        let mut admin_rng = actor_rng(seed, Actor::Admin);
        // A standalone node (`cluster-enabled no`) is not part of a
        // cluster: nothing to create.
        let clustered = scenario.cluster.mode == crate::scenario::Mode::Cluster;
        let allocation = match scenario.cluster.nodes_file {
            Some(_) => None,
            None if !clustered => None,
            None => Some(allocate(
                &create_addrs,
                scenario.cluster.replicas as usize,
                &mut admin_rng,
            )?),
        };
        let clients = Clients::new(&scenario, seed, queue)?;
        let mut shard_ranges: Vec<Vec<(u16, u16)>> =
            match (&allocation, &scenario.cluster.nodes_file) {
                (Some(a), _) => a.masters.iter().map(|m| m.slots.clone()).collect(),
                (None, Some(dump)) => dump
                    .nodes
                    .iter()
                    .map(|n| n.slots.clone())
                    .filter(|s| !s.is_empty())
                    .collect(),
                // Cluster mode off: the master serves every key.
                (None, None) if !clustered => vec![vec![(0, CLUSTER_SLOTS as u16 - 1)]],
                (None, None) => Vec::new(),
            };
        shard_ranges.sort();
        let mut shard_of_slot = vec![NO_SHARD; CLUSTER_SLOTS];
        for (i, ranges) in shard_ranges.iter().enumerate() {
            for &(a, b) in ranges {
                shard_of_slot[usize::from(a)..=usize::from(b)].fill(i as u16);
            }
        }
        let mut world = World {
            clients,
            shard_of_slot,
            shards: shard_ranges.len(),
            seed,
            procs: Vec::with_capacity(nodes.len()),
            net,
            net_rng: actor_rng(seed, Actor::Network),
            repl_net_rng: actor_rng(seed, Actor::ReplNetwork),
            conns: Vec::new(),
            conn_of_link: FxHashMap::default(),
            proc_at: BTreeMap::new(),
            id_to_proc: BTreeMap::new(),
            host_up: vec![true; host_count],
            orphaned: vec![Vec::new(); host_count],
            next_inbound: 0,
            admin: if allocation.is_some() {
                AdminPhase::Start
            } else {
                AdminPhase::Done
            },
            allocation,
            manager: Manager::new(seed),
            history: Vec::new(),
            warnings: Vec::new(),
            effects: Vec::new(),
            replicaof: Vec::new(),
            sentinels: Sentinels::new(nodes.len(), &scenario, seed),
            scenario,
        };
        // Replication and sentinel modes: node-1 is the master, the others
        // start with `replicaof <node-1>` in their configuration.
        world.replicaof = (0..world.scenario.nodes.len())
            .map(|i| (world.scenario.replicated() && i > 0).then_some(0))
            .collect();
        for (i, spec) in world.scenario.nodes.iter().enumerate() {
            let setup = NodeSetup {
                port: spec.addr.port,
                config: spec.config.clone(),
                planted: None,
            };
            for port in [u32::from(spec.addr.port), spec.addr.cport()] {
                world.proc_at.insert((spec.addr.ip, port), i as u32);
            }
            world.procs.push(Proc {
                name: spec.name.clone(),
                addr: spec.addr,
                host: spec.host,
                node: None,
                state: ProcState::Dead,
                inc: 0,
                inbox: Vec::new(),
                blocked: Vec::new(),
                waiting: Vec::new(),
                cron_missed: false,
                stalled_until: 0,
                disk: Disk::default(),
                setup,
            });
        }
        if let Some(dump) = &world.scenario.cluster.nodes_file {
            // Every node starts from the dump as its nodes.conf, with itself
            // as `myself`: the cluster as it was when the dump was taken.
            // Nodes only added later (add-node) start empty.
            let dump = Rc::new(dump.clone());
            for (i, proc) in world.procs.iter_mut().enumerate().take(dump.nodes.len()) {
                proc.disk.nodes_conf = Some(ConfFile::Dump {
                    dump: Rc::clone(&dump),
                    me: i,
                });
            }
        }
        for i in 0..world.procs.len() as u32 {
            world.start_proc(i, 0, queue);
        }
        for s in 0..world.sentinels.procs.len() as u32 {
            world.start_sentinel(s, 0, queue);
        }
        queue.push(0, Event::Admin);
        for (i, f) in world.scenario.faults.iter().enumerate() {
            queue.push(f.at, Event::Fault(i as u32));
        }
        Ok(world)
    }

    /// Make every node, now and after restarts, break `planted` (tests and
    /// `redsim fuzz --plant` only).
    pub fn plant(&mut self, planted: Option<crate::node::Planted>) {
        for proc in &mut self.procs {
            proc.setup.planted = planted;
            if let Some(node) = &mut proc.node {
                node.setup.planted = planted;
            }
        }
    }

    /// Start (or restart) process `p` from what is on its disk.
    fn start_proc(&mut self, p: u32, now: SimTime, queue: &mut EventQueue<Event>) {
        let proc = &mut self.procs[p as usize];
        proc.inc += 1;
        let mut rng = actor_rng(self.seed, Actor::Node(p));
        // Each incarnation draws from its own part of the node's stream.
        rng.set_word_pos(u128::from(proc.inc) << 64);
        let phase = rand::RngExt::random_range(&mut rng, 0..CRON_PERIOD);
        let tick = rand::RngExt::random_range(&mut rng, 0..10);
        let mut node = match &proc.disk.nodes_conf {
            Some(conf) => Node::load(proc.setup.clone(), rng, now, &conf.text())
                .unwrap_or_else(|e| panic!("{}: own nodes.conf did not load: {e}", proc.name)),
            None => Node::new(proc.setup.clone(), rng, now),
        };
        node.set_cron_iteration(tick);
        let data = if proc.setup.config.appendonly {
            proc.disk
                .aof
                .as_ref()
                .map(|aof| DiskData::Aof(Box::new(aof.load())))
        } else {
            proc.disk.rdb.clone().map(DiskData::Rdb)
        };
        if let Some(data) = data {
            node.load_data_from_disk(data, &mut self.effects);
        }
        if let Some(m) = self.replicaof[p as usize] {
            let a = self.procs[m as usize].addr;
            let _ = node.replicaof_command(now, Some((a.ip, a.port)), &mut self.effects);
        }
        let proc = &mut self.procs[p as usize];
        self.id_to_proc.insert(node.my_id(), p);
        proc.node = Some(node);
        proc.state = ProcState::Running;
        proc.inbox.clear();
        proc.blocked.clear();
        proc.waiting.clear();
        proc.cron_missed = false;
        proc.stalled_until = 0;
        let inc = proc.inc;
        queue.push(now + phase, Event::Cron { proc: p, inc });
        self.flush_effects(p, now, queue);
    }

    fn alive(&self, p: u32, inc: u32) -> bool {
        let proc = &self.procs[p as usize];
        proc.inc == inc && proc.state != ProcState::Dead
    }

    /// Whether process `p` is alive but handles nothing now (paused, or
    /// stalled in `fork()`): what arrives waits in its sockets.
    fn holds_input(&self, p: u32, now: SimTime) -> bool {
        let proc = &self.procs[p as usize];
        proc.state == ProcState::Paused
            || (proc.state == ProcState::Running && proc.stalled_until > now)
    }

    /// Give `input` to process `p`, or buffer it if the process is paused.
    fn input(&mut self, p: u32, now: SimTime, input: Input, queue: &mut EventQueue<Event>) {
        let held = self.holds_input(p, now);
        let free = self.host_memory_free(p);
        let proc = &mut self.procs[p as usize];
        match proc.state {
            ProcState::Dead => {}
            _ if held => proc.inbox.push(Pending::Bus(input)),
            ProcState::Paused => unreachable!("a paused process holds its input"),
            ProcState::Running => {
                let node = proc.node.as_mut().expect("running process has a node");
                node.set_host_memory_free(free);
                node.handle(now, input, &mut self.effects);
                self.flush_effects(p, now, queue);
                self.unblock(p, now, queue);
            }
        }
    }

    /// What process `p`'s host has free for a `fork()` child, when forks
    /// can fail (a `host_memory` and `vm.overcommit_memory` 0): its memory
    /// less what its running processes use (`used_memory`, and the
    /// copy-on-write of their fork children).
    fn host_memory_free(&self, p: u32) -> Option<u64> {
        let c = &self.scenario.cluster;
        let total = c.host_memory.filter(|_| c.overcommit_memory == 0)?;
        let host = self.procs[p as usize].host;
        let used: u64 = self
            .procs
            .iter()
            .filter(|q| q.host == host)
            .filter_map(|q| q.node.as_ref())
            .map(|n| n.used_memory() + n.child_cow_bytes().unwrap_or(0))
            .sum();
        Some(total.saturating_sub(used))
    }

    /// Turn the effects process `p` just returned into events.
    fn flush_effects(&mut self, p: u32, now: SimTime, queue: &mut EventQueue<Event>) {
        if self.effects.is_empty() {
            return;
        }
        let mut effects = std::mem::take(&mut self.effects);
        for e in effects.drain(..) {
            match e {
                Effect::Connect { link, ip, cport } => {
                    let b = self.proc_at.get(&(ip, cport)).copied();
                    self.connect(p, Plane::Bus, link, b, now, queue)
                }
                Effect::Send { link, msg } => {
                    self.send(p, Plane::Bus, link, Wire::Bus(msg), now, queue)
                }
                Effect::Close { link } => self.close(p, Plane::Bus, link, now, queue),
                Effect::Repl(e) => self.repl_effect(p, e, now, queue),
                Effect::Persist(e) => self.persist_effect(p, e, now, queue),
                Effect::MaxmemoryBelowUsage { maxmemory, used } => {
                    self.data_event(p, now, DataEvent::MaxmemoryBelowUsage { maxmemory, used })
                }
                Effect::SaveConfig { conf, fsync } => {
                    let disk = &mut self.procs[p as usize].disk;
                    let conf = ConfFile::Saved(conf);
                    if fsync {
                        disk.nodes_conf_fsynced = Some(conf.clone());
                    }
                    disk.nodes_conf = Some(conf);
                }
                Effect::Note(note) => {
                    let about = match &note {
                        Note::Pfail { about }
                        | Note::PfailCleared { about }
                        | Note::FailMarked { about }
                        | Note::FailReceived { about }
                        | Note::FailCleared { about }
                        | Note::VoteGranted { to: about, .. }
                        | Note::Promoted {
                            old_master: about, ..
                        } => self.id_to_proc.get(about).copied(),
                        Note::StateChanged { .. }
                        | Note::ElectionScheduled { .. }
                        | Note::ElectionStarted { .. }
                        | Note::ManualFailoverTimeout => None,
                    };
                    self.history.push(HistoryEvent {
                        at: now,
                        proc: Some(p),
                        kind: HistoryKind::Note { note, about },
                    });
                }
            }
        }
        self.effects = effects;
    }

    /// The transit of `bytes` from `from` to `to` on a connection of
    /// connection `conn`'s plane (each plane draws from its own stream).
    fn transit_to(&mut self, conn: u32, from: u32, to: u32, bytes: u64) -> crate::net::Transit {
        let rng = match self.conns[conn as usize].plane {
            Plane::Bus => &mut self.net_rng,
            Plane::Repl => &mut self.repl_net_rng,
        };
        self.net
            .transit(Endpoint::Node(from), Endpoint::Node(to), bytes, rng)
    }

    fn reachable(&self, from: u32, to: u32) -> bool {
        self.host_up[self.procs[to as usize].host as usize]
            && self.net.reachable(Endpoint::Node(from), Endpoint::Node(to))
    }

    /// Whether what connection `conn` carries towards its listening end
    /// (`to_b`) or its initiator gets through now: [`World::reachable`],
    /// and for a bus connection towards the listener, its bus port not
    /// blocked.
    fn conn_passes(&self, conn: u32, to_b: bool) -> bool {
        let c = &self.conns[conn as usize];
        let Some(b) = c.b else { return false };
        if to_b {
            self.reachable(c.a, b) && !(c.plane == Plane::Bus && self.net.bus_port_blocked(b))
        } else {
            self.reachable(b, c.a)
        }
    }

    /// Carry out what process `p`'s replication asked for.
    fn repl_effect(&mut self, p: u32, e: ReplEffect, now: SimTime, queue: &mut EventQueue<Event>) {
        match e {
            ReplEffect::Connect { link, ip, port } => {
                let b = self.proc_at.get(&(ip, u32::from(port))).copied();
                self.connect(p, Plane::Repl, link, b, now, queue);
            }
            ReplEffect::Send { link, msg } => {
                self.send(p, Plane::Repl, link, Wire::Repl(Rc::new(msg)), now, queue)
            }
            ReplEffect::Close { link } => self.close(p, Plane::Repl, link, now, queue),
            ReplEffect::CloseAfterReply { link } => {
                // When the last message written on the link arrives.
                let at = match self.conn_of_link.get(&(p, Plane::Repl, link)) {
                    Some(&c) => {
                        let c = &self.conns[c as usize];
                        let pipe = if c.a == p && c.a_link == link {
                            &c.ab
                        } else {
                            &c.ba
                        };
                        pipe.last_arrival().max(now)
                    }
                    None => now,
                };
                let inc = self.procs[p as usize].inc;
                queue.push(at, Event::CloseAfterReply { proc: p, inc, link });
            }
            ReplEffect::Timer { at, timer } => {
                let inc = self.procs[p as usize].inc;
                queue.push(
                    at.max(now),
                    Event::ReplTimer {
                        proc: p,
                        inc,
                        timer,
                    },
                );
            }
            ReplEffect::Note(note) => self.repl_note(p, note, now, queue),
            // The node turns these into its own effects.
            ReplEffect::Executed { .. } | ReplEffect::Persist(_) => {}
        }
    }

    /// A replication note of process `p`: a fork stalls it; the
    /// synchronizations go into the history.
    fn repl_note(&mut self, p: u32, note: ReplNote, now: SimTime, queue: &mut EventQueue<Event>) {
        let replica = |w: &World, link| {
            let conn = w.conn_of_link.get(&(p, Plane::Repl, link))?;
            Some(w.conns[*conn as usize].a)
        };
        let event = match note {
            ReplNote::Fork {
                fork_us,
                used_memory,
                ..
            } => {
                self.stall(p, now + fork_us, queue);
                DataEvent::Fork {
                    for_replication: true,
                    fork_us,
                    used_memory,
                }
            }
            ReplNote::FullResync { link, offset } => DataEvent::FullSyncStarted {
                replica: replica(self, link),
                offset,
            },
            ReplNote::PartialResync { link, bytes, .. } => DataEvent::PartialResync {
                replica: replica(self, link),
                bytes,
            },
            ReplNote::ReplicaOnline { link } => DataEvent::ReplicaOnline {
                replica: replica(self, link),
            },
            ReplNote::ReplicaDropped { link, reason } => DataEvent::ReplicaDropped {
                replica: replica(self, link),
                reason,
            },
            ReplNote::LoadStarted { rdb_bytes, load_us } => {
                DataEvent::RdbLoadStarted { rdb_bytes, load_us }
            }
            ReplNote::SyncFinished { offset } => DataEvent::FullSyncFinished { offset },
            ReplNote::PartialResyncAccepted { offset } => {
                DataEvent::PartialResyncAccepted { offset }
            }
            ReplNote::MasterLinkDown => DataEvent::MasterLinkDown,
            ReplNote::SyncAborted { error } => DataEvent::SyncAborted { error },
            ReplNote::PsyncUnexpectedReply { reply } => DataEvent::PsyncUnexpectedReply { reply },
            ReplNote::ForkFailed { .. } => self.fork_failed(p, true, now),
            ReplNote::ChildDone { .. } | ReplNote::Applied { .. } => return,
        };
        self.data_event(p, now, event);
    }

    /// Process `p`'s `fork()` for a BGSAVE failed: a warning (the first
    /// time), and the event.
    fn fork_failed(&mut self, p: u32, for_replication: bool, now: SimTime) -> DataEvent {
        let name = &self.procs[p as usize].name;
        let host = self.procs[p as usize].host + 1;
        if !self
            .warnings
            .iter()
            .any(|w| w.starts_with(&format!("{name}: fork()")))
        {
            let (what, then) = if for_replication {
                ("a full sync", "its replicas retry")
            } else {
                ("a save point's BGSAVE", "it retries 5 s later")
            };
            self.warnings.push(format!(
                "{name}: fork() for {what} failed at {} (Cannot allocate memory: host-{host} has less free memory than the node uses, with overcommit_memory 0); {then}",
                fmt_time(now)
            ));
        }
        DataEvent::ForkFailed { for_replication }
    }

    fn data_event(&mut self, p: u32, now: SimTime, event: DataEvent) {
        self.history.push(HistoryEvent {
            at: now,
            proc: Some(p),
            kind: HistoryKind::Data(event),
        });
    }

    /// Process `p` is blocked in `fork()` until `until`: inputs wait.
    fn stall(&mut self, p: u32, until: SimTime, queue: &mut EventQueue<Event>) {
        let proc = &mut self.procs[p as usize];
        proc.stalled_until = proc.stalled_until.max(until);
        let inc = proc.inc;
        queue.push(until, Event::Unstall { proc: p, inc });
    }

    /// What process `p`'s persistence asked of its disk.
    fn persist_effect(
        &mut self,
        p: u32,
        e: PersistEffect,
        now: SimTime,
        queue: &mut EventQueue<Event>,
    ) {
        let disk = &mut self.procs[p as usize].disk;
        let event = match e {
            PersistEffect::Fork {
                fork_us,
                used_memory,
                ..
            } => {
                self.stall(p, now + fork_us, queue);
                DataEvent::Fork {
                    for_replication: false,
                    fork_us,
                    used_memory,
                }
            }
            PersistEffect::ForkFailed => self.fork_failed(p, false, now),
            PersistEffect::RdbSaved { rdb } => {
                let keys = rdb.keys();
                disk.rdb = Some(rdb);
                DataEvent::RdbSaved { keys }
            }
            PersistEffect::AofWrite { commands } => {
                disk.aof.get_or_insert_default().write(now, &commands);
                return;
            }
            PersistEffect::AofFsync => {
                disk.aof.get_or_insert_default().fsync();
                return;
            }
            PersistEffect::AofRewritten { rdb } => {
                disk.aof.get_or_insert_default().rewrite(&rdb.keyspace);
                return;
            }
            PersistEffect::Loading {
                from_aof,
                keys,
                load_us,
            } => DataEvent::LoadingFromDisk {
                from_aof,
                keys,
                load_us,
            },
        };
        self.data_event(p, now, event);
    }

    /// The input that tells a node about link `link` of `plane`.
    fn link_input(plane: Plane, link: LinkId, what: LinkEvent) -> Input {
        match (plane, what) {
            (Plane::Bus, LinkEvent::Error) => Input::LinkError { link },
            (Plane::Bus, LinkEvent::Recv(Wire::Bus(msg))) => Input::Recv { link, msg },
            (Plane::Repl, LinkEvent::Error) => Input::Repl(ReplInput::LinkError { link }),
            (Plane::Repl, LinkEvent::Recv(Wire::Repl(msg))) => {
                let msg = Rc::try_unwrap(msg).unwrap_or_else(|m| (*m).clone());
                Input::Repl(ReplInput::Recv { link, msg })
            }
            (_, LinkEvent::Recv(_)) => unreachable!("a connection carries one plane"),
        }
    }

    fn connect(
        &mut self,
        p: u32,
        plane: Plane,
        link: LinkId,
        b: Option<u32>,
        now: SimTime,
        queue: &mut EventQueue<Event>,
    ) {
        let id = self.conns.len() as u32;
        self.conns.push(Conn {
            plane,
            a: p,
            a_inc: self.procs[p as usize].inc,
            a_link: link,
            b,
            b_inc: 0,
            b_link: 0,
            state: ConnState::Connecting,
            syn_start: now,
            queued: Vec::new(),
            ab: Pipe::new(),
            ba: Pipe::new(),
            held: None,
            accepted: false,
        });
        self.conn_of_link.insert((p, plane, link), id);
        self.send_syn(id, 0, now, queue);
    }

    /// Send SYN number `attempt` of a connect.
    fn send_syn(&mut self, conn: u32, attempt: u8, now: SimTime, queue: &mut EventQueue<Event>) {
        let c = &self.conns[conn as usize];
        let (a, b, syn_start) = (c.a, c.b, c.syn_start);
        if let Some(b) = b {
            if self.conn_passes(conn, true) {
                let t = self.transit_to(conn, a, b, 60);
                queue.push(now + t.total(), Event::SynArrive { conn });
            }
        }
        let next = syn_start + SYN_RETRY_AT_S[attempt as usize] * SEC;
        queue.push(
            next,
            Event::SynRetry {
                conn,
                attempt: attempt + 1,
            },
        );
    }

    fn send(
        &mut self,
        p: u32,
        plane: Plane,
        link: LinkId,
        msg: Wire,
        now: SimTime,
        queue: &mut EventQueue<Event>,
    ) {
        let Some(&conn) = self.conn_of_link.get(&(p, plane, link)) else {
            return;
        };
        let c = &mut self.conns[conn as usize];
        match c.state {
            ConnState::Connecting => c.queued.push(msg),
            ConnState::Closed => {}
            ConnState::Open => {
                let to_b = c.a == p && c.a_link == link;
                let dir = usize::from(!to_b);
                if c.held_back(dir) {
                    c.hold(dir, msg);
                } else {
                    self.transmit(conn, to_b, msg, now, queue);
                }
            }
        }
    }

    /// Put `msg` on the wire of open connection `conn` towards `to_b`'s
    /// end. Across a partition or one-way rule it waits in `held` (TCP
    /// retransmitting) until the network lets it through.
    fn transmit(
        &mut self,
        conn: u32,
        to_b: bool,
        msg: Wire,
        now: SimTime,
        queue: &mut EventQueue<Event>,
    ) {
        let c = &self.conns[conn as usize];
        let (from, to) = if to_b {
            (c.a, c.b.expect("open conn has a target"))
        } else {
            (c.b.expect("open"), c.a)
        };
        if !self.conn_passes(conn, to_b) {
            // TCP retransmits what a partition drops: the bytes arrive, in
            // order, once the network lets them (Linux gives up only after
            // about 15 minutes, longer than any partition here).
            self.conns[conn as usize].hold(usize::from(!to_b), msg);
            return;
        }
        let bulk = matches!(&msg, Wire::Repl(m) if m.is_bulk());
        let t = self.transit_to(conn, from, to, msg.wire_size());
        let c = &mut self.conns[conn as usize];
        let pipe = if to_b { &mut c.ab } else { &mut c.ba };
        let at = pipe.send(now, t);
        let sent = pipe.busy_until();
        queue.push(at, Event::Deliver { conn, to_b, msg });
        if bulk {
            queue.push(sent, Event::Drained { conn, to_b });
        }
    }

    /// The network changed: what open connections held goes out where it
    /// now can, in order.
    fn release_held(&mut self, now: SimTime, queue: &mut EventQueue<Event>) {
        for conn in 0..self.conns.len() as u32 {
            for to_b in [true, false] {
                let c = &mut self.conns[conn as usize];
                let dir = usize::from(!to_b);
                if !c.held_back(dir) || c.state != ConnState::Open {
                    continue;
                }
                if !self.conn_passes(conn, to_b) {
                    continue;
                }
                let held = self.conns[conn as usize]
                    .held
                    .as_mut()
                    .map(|h| std::mem::take(&mut h[dir]))
                    .unwrap_or_default();
                for msg in held {
                    self.transmit(conn, to_b, msg, now, queue);
                }
            }
        }
    }

    /// Close connection `conn`; the end that did not close it learns of it
    /// one transit later if the network lets the FIN/RST through.
    fn close_conn(
        &mut self,
        conn: u32,
        closer_is_a: Option<bool>,
        now: SimTime,
        queue: &mut EventQueue<Event>,
    ) {
        let c = &mut self.conns[conn as usize];
        if c.state == ConnState::Closed {
            return;
        }
        let was_open = c.state == ConnState::Open;
        c.state = ConnState::Closed;
        c.queued.clear();
        c.held = None;
        self.conn_of_link.remove(&(c.a, c.plane, c.a_link));
        if c.accepted {
            if let Some(b) = c.b {
                self.conn_of_link.remove(&(b, c.plane, c.b_link));
            }
        }
        let (a, b, accepted) = (c.a, c.b, c.accepted);
        // Tell the other end(s).
        if let Some(b) = b {
            if closer_is_a != Some(false) && accepted && self.conn_passes(conn, true) {
                let t = self.transit_to(conn, a, b, 60);
                queue.push(now + t.total(), Event::Reset { conn, to_b: true });
            }
            if closer_is_a != Some(true)
                && (was_open || closer_is_a.is_none())
                && self.reachable(b, a)
            {
                let t = self.transit_to(conn, b, a, 60);
                queue.push(now + t.total(), Event::Reset { conn, to_b: false });
            }
        }
    }

    fn close(
        &mut self,
        p: u32,
        plane: Plane,
        link: LinkId,
        now: SimTime,
        queue: &mut EventQueue<Event>,
    ) {
        if let Some(&conn) = self.conn_of_link.get(&(p, plane, link)) {
            let is_a = self.conns[conn as usize].a == p && self.conns[conn as usize].a_link == link;
            self.close_conn(conn, Some(is_a), now, queue);
        }
    }

    /// Host `host` is up again: the live ends of connections that died with
    /// it get a reset one trip later (their next retransmission answered by
    /// the new kernel's RST).
    fn reset_orphans(&mut self, host: usize, now: SimTime, queue: &mut EventQueue<Event>) {
        for (conn, to_b) in std::mem::take(&mut self.orphaned[host]) {
            let c = &self.conns[conn as usize];
            let (from, to) = if to_b {
                (c.a, c.b.expect("an orphan had both ends"))
            } else {
                (c.b.expect("an orphan had both ends"), c.a)
            };
            let t = self.transit_to(conn, from, to, 60);
            queue.push(now + 2 * t.total(), Event::Reset { conn, to_b });
        }
    }

    /// Kill process `p`: its memory and links are lost. With `host_down`
    /// the peers are not told (nothing answers from a dead machine).
    fn kill(&mut self, p: u32, host_down: bool, now: SimTime, queue: &mut EventQueue<Event>) {
        let proc = &mut self.procs[p as usize];
        if proc.state == ProcState::Dead {
            return;
        }
        proc.state = ProcState::Dead;
        proc.node = None;
        proc.inbox.clear();
        self.sentinels_node_died(p, host_down, now, queue);
        let proc = &mut self.procs[p as usize];
        proc.blocked.clear();
        proc.waiting.clear();
        proc.inc += 1;
        self.reset_client_conns(p, host_down, now, queue);
        self.manager_proc_died(p, now, queue);
        for conn in 0..self.conns.len() as u32 {
            let c = &self.conns[conn as usize];
            if c.state == ConnState::Closed || (c.a != p && c.b != Some(p)) {
                continue;
            }
            // A connect to the process that dies goes on: its next SYN is
            // refused (a live host) or unanswered (a dead one), or reaches
            // the process once it restarts.
            if c.state == ConnState::Connecting && c.b == Some(p) && c.a != p {
                continue;
            }
            if host_down {
                let host = self.procs[p as usize].host as usize;
                let c = &mut self.conns[conn as usize];
                // The other end (unless it is this process too) keeps its
                // socket and hears nothing until the host is up again.
                if c.state == ConnState::Open && c.b.is_some_and(|b| b != c.a) {
                    self.orphaned[host].push((conn, c.a == p));
                }
                c.state = ConnState::Closed;
                c.held = None;
                self.conn_of_link.remove(&(c.a, c.plane, c.a_link));
                if let Some(b) = c.b {
                    self.conn_of_link.remove(&(b, c.plane, c.b_link));
                }
            } else {
                let closer_is_a = c.a == p;
                self.close_conn(conn, Some(closer_is_a), now, queue);
            }
        }
    }

    fn apply_fault(&mut self, i: u32, now: SimTime, queue: &mut EventQueue<Event>) {
        let action = self.scenario.faults[i as usize].action.clone();
        let replicated = self.scenario.replicated();
        let masters_hit = (0..self.procs.len() as u32)
            .filter(|&p| {
                self.fault_cuts_off(&action, p)
                    && self
                        .procs
                        .get(p as usize)
                        .and_then(|q| q.node.as_ref())
                        .is_some_and(|n| n.is_master() && (replicated || n.myself().numslots > 0))
            })
            .collect();
        self.history.push(HistoryEvent {
            at: now,
            proc: None,
            kind: HistoryKind::Fault {
                index: i,
                masters_hit,
            },
        });
        let nodes = self.procs.len();
        match action {
            // Sentinels (world index `nodes + i`).
            FaultAction::Kill { node } if node >= nodes => {
                self.kill_sentinel((node - nodes) as u32)
            }
            FaultAction::Restart { node } if node >= nodes => {
                let s = (node - nodes) as u32;
                let host = self.sentinels.procs[s as usize].host as usize;
                self.host_up[host] = true;
                if self.sentinels.procs[s as usize].state == ProcState::Dead {
                    self.start_sentinel(s, now, queue);
                } else {
                    self.warnings.push(format!(
                        "fault {i} at {}: restart of {} ignored: it is running",
                        fmt_time(now),
                        self.sentinels.procs[s as usize].name
                    ));
                }
            }
            FaultAction::Pause { node } if node >= nodes => {
                self.pause_sentinel((node - nodes) as u32)
            }
            FaultAction::Resume { node } if node >= nodes => {
                self.resume_sentinel((node - nodes) as u32, now, queue)
            }
            FaultAction::Kill { node } => self.kill(node as u32, false, now, queue),
            FaultAction::CrashHost { host } => {
                for p in 0..self.procs.len() as u32 {
                    if self.procs[p as usize].host == host {
                        self.kill(p, true, now, queue);
                        let proc = &mut self.procs[p as usize];
                        let policy = proc.setup.config.appendfsync;
                        let disk = &mut proc.disk;
                        disk.nodes_conf = disk.nodes_conf_fsynced.clone();
                        if let Some(aof) = &mut disk.aof {
                            aof.crash(now, policy);
                        }
                    }
                }
                for s in 0..self.sentinels.procs.len() as u32 {
                    if self.sentinels.procs[s as usize].host == host {
                        self.kill_sentinel(s);
                    }
                }
                self.host_up[host as usize] = false;
            }
            FaultAction::Restart { node } => {
                let p = node as u32;
                let host = self.procs[node].host as usize;
                self.host_up[host] = true;
                self.reset_orphans(host, now, queue);
                self.release_held(now, queue);
                if self.procs[node].state == ProcState::Dead {
                    self.start_proc(p, now, queue);
                } else {
                    self.warnings.push(format!(
                        "fault {i} at {}: restart of {} ignored: it is running",
                        fmt_time(now),
                        self.procs[node].name
                    ));
                }
            }
            FaultAction::Pause { node } => {
                let proc = &mut self.procs[node];
                if proc.state == ProcState::Running {
                    proc.state = ProcState::Paused;
                }
            }
            FaultAction::Resume { node } => self.resume(node as u32, now, queue),
            FaultAction::Partition { groups } => {
                self.net.partition(&groups);
                self.release_held(now, queue);
            }
            FaultAction::Isolate { node } => {
                self.net.isolate(Endpoint::Node(node as u32));
                self.release_held(now, queue);
            }
            FaultAction::OneWay { from, to } => self.net.one_way(&from, &to),
            FaultAction::BlockBusPort { node } => match node {
                Some(n) => self.net.block_bus_port(n as u32),
                None => (0..self.procs.len() as u32).for_each(|n| self.net.block_bus_port(n)),
            },
            FaultAction::Heal => {
                self.net.heal();
                self.release_held(now, queue);
            }
            FaultAction::Latency { value, between } => self
                .net
                .set_latency(value, between.as_ref().map(|(a, b)| (&a[..], &b[..]))),
            FaultAction::Loss { value, between } => self
                .net
                .set_loss(value, between.as_ref().map(|(a, b)| (&a[..], &b[..]))),
            FaultAction::Failover { node, mode } => {
                let problem =
                    match self.command(node as u32, now, ClusterCommand::Failover(mode), queue) {
                        Some(Ok(_)) => None,
                        Some(Err(e)) => Some(format!("-{e}")),
                        None => Some("it is not running; the command was lost".to_string()),
                    };
                if let Some(p) = problem {
                    self.warnings.push(format!(
                        "fault {i} at {}: {} to {}: {p}",
                        fmt_time(now),
                        mode.command(),
                        self.procs[node].name
                    ));
                }
            }
            FaultAction::ConfigSet {
                node,
                directive,
                value,
            } => {
                let targets = match node {
                    Some(n) => n..n + 1,
                    None => 0..self.procs.len(),
                };
                for p in targets {
                    let cmd = ConfigSet {
                        fault: i,
                        at: now,
                        directive: directive.clone(),
                        value: value.clone(),
                    };
                    match self.procs[p].state {
                        ProcState::Dead => self.config_set_problem(
                            p as u32,
                            &cmd,
                            "it is not running; the command was lost",
                        ),
                        // A stopped process (or one in `fork()`) reads the
                        // command from its socket when it runs again.
                        _ if self.holds_input(p as u32, now) => {
                            self.procs[p].inbox.push(Pending::ConfigSet(cmd))
                        }
                        _ => self.config_set(p as u32, &cmd, now, queue),
                    }
                }
            }
            FaultAction::ReplicaOf { node, master } => {
                let p = node as u32;
                let reply = self.replicaof(p, master.map(|m| m as u32), now, queue);
                match reply {
                    Some(Ok(_)) => self.replicaof[node] = master.map(|m| m as u32),
                    Some(Err(e)) => self.warnings.push(format!(
                        "fault {i} at {}: REPLICAOF to {}: -{e}",
                        fmt_time(now),
                        self.procs[node].name
                    )),
                    None => self.warnings.push(format!(
                        "fault {i} at {}: REPLICAOF to {}: it is not running; the command was lost",
                        fmt_time(now),
                        self.procs[node].name
                    )),
                }
            }
            FaultAction::RepointClients { node } => self.clients.repoint(node as u32),
            action @ (FaultAction::Reshard { .. }
            | FaultAction::AddNode { .. }
            | FaultAction::DelNode { .. }
            | FaultAction::Rebalance { .. }
            | FaultAction::Fix { .. }) => self.manager_start(i, action, now, queue),
        }
    }

    /// Whether `action` kills, pauses or cuts process `p` off from others.
    pub fn fault_cuts_off(&self, action: &FaultAction, p: u32) -> bool {
        let me = Endpoint::Node(p);
        match action {
            FaultAction::Kill { node }
            | FaultAction::Pause { node }
            | FaultAction::Isolate { node } => *node as u32 == p,
            FaultAction::CrashHost { host } => self.procs[p as usize].host == *host,
            FaultAction::Partition { groups } => groups.iter().any(|g| g.contains(&me)),
            FaultAction::OneWay { from, to } => from.contains(&me) || to.contains(&me),
            FaultAction::BlockBusPort { node } => node.is_none_or(|n| n as u32 == p),
            _ => false,
        }
    }

    /// Running process `p` executes `cmd`.
    fn config_set(&mut self, p: u32, cmd: &ConfigSet, now: SimTime, queue: &mut EventQueue<Event>) {
        let node = self.procs[p as usize]
            .node
            .as_mut()
            .expect("running process has a node");
        let r = node.config_set(now, &cmd.directive, &cmd.value, &mut self.effects);
        self.flush_effects(p, now, queue);
        if let Err(problem) = r {
            self.config_set_problem(p, cmd, &problem);
        }
    }

    /// The warning for `cmd` to process `p`.
    fn config_set_problem(&mut self, p: u32, cmd: &ConfigSet, problem: &str) {
        self.warnings.push(format!(
            "fault {} at {}: CONFIG SET {} to {}: {problem}",
            cmd.fault,
            fmt_time(cmd.at),
            cmd.directive,
            self.procs[p as usize].name
        ));
    }

    /// `SIGCONT`: the process reads what its sockets buffered, in order, then
    /// its overdue timer fires once (unless it is still in `fork()`).
    fn resume(&mut self, p: u32, now: SimTime, queue: &mut EventQueue<Event>) {
        let proc = &mut self.procs[p as usize];
        if proc.state != ProcState::Paused {
            return;
        }
        proc.state = ProcState::Running;
        // The replies to its MIGRATE end its wait first.
        if let Some(i) = proc
            .inbox
            .iter()
            .position(|x| matches!(x, Pending::Restored(..)))
        {
            if let Pending::Restored(m, replies) = proc.inbox.remove(i) {
                return self.migrate_done(m, replies, now, queue);
            }
        }
        self.drain_inbox(p, now, queue);
    }

    /// A running process no longer held reads what its sockets buffered,
    /// in order, then its overdue timer fires once.
    fn drain_inbox(&mut self, p: u32, now: SimTime, queue: &mut EventQueue<Event>) {
        if self.holds_input(p, now) {
            return;
        }
        let proc = &mut self.procs[p as usize];
        let inbox = std::mem::take(&mut proc.inbox);
        let missed = std::mem::replace(&mut proc.cron_missed, false);
        for pending in inbox {
            if self.holds_input(p, now) {
                // A fork() stalled it again: the rest waits.
                self.procs[p as usize].inbox.push(pending);
                continue;
            }
            match pending {
                Pending::Bus(input) => self.input(p, now, input, queue),
                Pending::Client {
                    conn,
                    req,
                    readonly,
                } => {
                    self.serve_request(p, conn, req, readonly, now, queue);
                    self.unblock(p, now, queue);
                }
                Pending::Admin { token } => {
                    if token == self.manager.token {
                        self.manager_execute(p, now, queue);
                    }
                }
                Pending::Restore(m) => self.restore_at(m, now, queue),
                Pending::Restored(m, replies) => self.migrate_done(m, replies, now, queue),
                Pending::Sentinel(e) => {
                    self.sentinel_event(now, *e, queue);
                }
                Pending::ConfigSet(cmd) => self.config_set(p, &cmd, now, queue),
            }
        }
        if missed {
            let inc = self.procs[p as usize].inc;
            self.cron(p, inc, now, queue);
        }
    }

    fn cron(&mut self, p: u32, inc: u32, now: SimTime, queue: &mut EventQueue<Event>) {
        if !self.alive(p, inc) {
            return;
        }
        if self.holds_input(p, now) {
            self.procs[p as usize].cron_missed = true;
            return;
        }
        self.input(p, now, Input::Cron, queue);
        queue.push(now + CRON_PERIOD, Event::Cron { proc: p, inc });
    }

    /// The cluster manager: `redis-cli --cluster create`.
    fn admin_step(&mut self, now: SimTime, queue: &mut EventQueue<Event>) {
        match self.admin {
            AdminPhase::Start => {
                let create: Vec<u32> = (0..self.procs.len() as u32)
                    .filter(|&p| self.scenario.nodes[p as usize].in_create)
                    .collect();
                let alloc = self.allocation.clone().expect("create has an allocation");
                // The anti-affinity warnings redis-cli printed with its
                // plan (`clusterManagerOptimizeAntiAffinity`).
                if let Some(warning) = alloc
                    .anti_affinity
                    .verdict()
                    .filter(|v| v.starts_with("[WARNING]"))
                {
                    self.manager_log(now, warning.to_string());
                }
                // ADDSLOTS on masters.
                for m in &alloc.masters {
                    let mut slots = Vec::new();
                    for &(a, b) in &m.slots {
                        slots.extend(a..=b);
                    }
                    self.command(create[m.node], now, ClusterCommand::AddSlots(slots), queue);
                }
                // SET-CONFIG-EPOCH 1..N in argument order.
                for (k, &p) in create.iter().enumerate() {
                    self.command(p, now, ClusterCommand::SetConfigEpoch(k as u64 + 1), queue);
                }
                // Every node but the first MEETs the first.
                let first = self.procs[create[0] as usize].addr;
                for &p in &create[1..] {
                    let cmd = ClusterCommand::Meet {
                        ip: first.ip,
                        port: first.port,
                        cport: None,
                    };
                    self.command(p, now, cmd, queue);
                }
                // "Give one second for the join to start".
                self.admin = AdminPhase::WaitJoin { polls: 0 };
                queue.push(now + SEC, Event::Admin);
            }
            AdminPhase::WaitJoin { polls } => {
                // `clusterManagerWaitForClusterJoin`: after
                // CLUSTER_JOIN_CHECK_AFTER (20) + 15 % of the nodes failed
                // polls, say which bus ports seem unreachable.
                let created = self.scenario.nodes.iter().filter(|n| n.in_create).count();
                let mut polls = polls;
                if polls > 20 + (created as f32 * 0.15f32) as u32 {
                    for line in self.unreachable_bus_ports() {
                        self.manager_log(now, line);
                    }
                    polls = 0;
                }
                if self.config_consistent() {
                    let create: Vec<u32> = (0..self.procs.len() as u32)
                        .filter(|&p| self.scenario.nodes[p as usize].in_create)
                        .collect();
                    for (k, &p) in create.iter().enumerate() {
                        if let Some(m) = self.allocation.as_ref().and_then(|a| a.master_of(k)) {
                            let mp = create[m];
                            let Some(master_id) =
                                self.procs[mp as usize].node.as_ref().map(|n| n.my_id())
                            else {
                                continue;
                            };
                            self.command(p, now, ClusterCommand::Replicate(master_id), queue);
                        }
                    }
                    self.admin = AdminPhase::Done;
                    self.history.push(HistoryEvent {
                        at: now,
                        proc: None,
                        kind: HistoryKind::Created,
                    });
                } else {
                    self.admin = AdminPhase::WaitJoin { polls: polls + 1 };
                    queue.push(now + SEC, Event::Admin);
                }
            }
            AdminPhase::Done => {}
        }
    }

    /// Send a command to a process and apply its effects. Commands to a
    /// dead or paused process are lost (redis-cli would time out).
    fn command(
        &mut self,
        p: u32,
        now: SimTime,
        cmd: ClusterCommand,
        queue: &mut EventQueue<Event>,
    ) -> Option<Result<String, String>> {
        let proc = &mut self.procs[p as usize];
        if proc.state != ProcState::Running {
            return None;
        }
        let node = proc.node.as_mut().expect("running process has a node");
        let reply = node.command(now, cmd, &mut self.effects);
        self.flush_effects(p, now, queue);
        Some(reply)
    }

    /// What `clusterManagerGetLinkStatus` finds and redis-cli prints while
    /// it waits for the join: the addresses that some created node lists
    /// as `disconnected` or in `handshake`, each with the nodes that list it
    /// so (in order of first appearance; redis-cli's dict order is a hash
    /// order).
    fn unreachable_bus_ports(&self) -> Vec<String> {
        let mut status: Vec<(String, Vec<String>)> = Vec::new();
        for (p, spec) in self.procs.iter().zip(&self.scenario.nodes) {
            let Some(node) = p.node.as_ref().filter(|_| spec.in_create) else {
                continue;
            };
            for line in node.cluster_nodes().lines() {
                let f: Vec<&str> = line.split(' ').collect();
                if f.len() < 8 || f[2].contains("myself") {
                    continue;
                }
                if f[7] == "disconnected" || f[2].contains("handshake") {
                    let from = p.addr.to_string();
                    match status.iter_mut().find(|(a, _)| a == f[1]) {
                        Some((_, list)) => list.push(from),
                        None => status.push((f[1].to_string(), vec![from])),
                    }
                }
            }
        }
        if status.is_empty() {
            return Vec::new();
        }
        let mut out = vec![format!(
            "Warning: {} node(s) may be unreachable",
            status.len()
        )];
        for (addr, from) in status {
            out.push(match addr.split_once('@') {
                Some((ip_port, bus)) if bus != "0" => {
                    let ip = ip_port.rsplit_once(':').map_or(ip_port, |(ip, _)| ip);
                    format!(" - The port {bus} of node {ip} may be unreachable from:")
                }
                _ => format!(" - Node {addr} may be unreachable from:"),
            });
            out.extend(from.into_iter().map(|a| format!("   {a}")));
            out.push("Cluster bus ports must be reachable by every node.\nRemember that cluster bus ports are different from standard instance ports.".into());
        }
        out
    }

    /// `REPLICAOF` of `master`'s address (`Some`) or `REPLICAOF NO ONE`
    /// sent to process `p` (by an operator or a Sentinel), its effects
    /// applied; `None` if `p` is not running. A replica turned master is
    /// a promotion in the history (a `Promoted` note about the master it
    /// followed).
    pub(crate) fn replicaof(
        &mut self,
        p: u32,
        master: Option<u32>,
        now: SimTime,
        queue: &mut EventQueue<Event>,
    ) -> Option<Result<String, String>> {
        let addr = master.map(|m| {
            let a = self.procs[m as usize].addr;
            (a.ip, a.port)
        });
        let proc = &mut self.procs[p as usize];
        if proc.state != ProcState::Running {
            return None;
        }
        let node = proc.node.as_mut().expect("running process has a node");
        let followed = node.replication().replica.masterhost();
        let reply = node.replicaof_command(now, addr, &mut self.effects);
        self.flush_effects(p, now, queue);
        if reply.is_ok() {
            self.data_event(p, now, DataEvent::ReplicaOf { master });
        }
        let old = followed
            .filter(|_| master.is_none() && reply.is_ok())
            .and_then(|(ip, port)| self.proc_at_addr(ip, u32::from(port)));
        if let Some(old) = old {
            let old_master = self
                .id_to_proc
                .iter()
                .filter(|&(_, &q)| q == old)
                .map(|(id, _)| *id)
                .next_back();
            if let Some(old_master) = old_master {
                self.history.push(HistoryEvent {
                    at: now,
                    proc: Some(p),
                    kind: HistoryKind::Note {
                        note: Note::Promoted {
                            config_epoch: 0,
                            old_master,
                            manual: None,
                        },
                        about: Some(old),
                    },
                });
            }
        }
        Some(reply)
    }

    /// `clusterManagerIsConfigConsistent`: every created node reports the
    /// same `id:slots` for the nodes that have slots.
    fn config_consistent(&self) -> bool {
        let mut first: Option<String> = None;
        for (p, spec) in self.procs.iter().zip(&self.scenario.nodes) {
            if !spec.in_create {
                continue;
            }
            let Some(node) = &p.node else { return false };
            let sig = config_signature(&node.cluster_nodes());
            match &first {
                None => first = Some(sig),
                Some(f) if *f != sig => return false,
                _ => {}
            }
        }
        first.is_some_and(|s| !s.is_empty())
    }

    /// The process that currently has node ID `id`.
    pub fn proc_of_id(&self, id: &NodeId) -> Option<u32> {
        self.id_to_proc.get(id).copied()
    }

    /// The process listening at `ip:port` (client or bus port), if any.
    pub fn proc_at_addr(&self, ip: [u8; 4], port: u32) -> Option<u32> {
        self.proc_at.get(&(ip, port)).copied()
    }

    /// The process that process `p`'s node replicates from: its cluster
    /// master, or with cluster mode off its `replicaof` address's.
    pub fn master_of(&self, p: u32) -> Option<u32> {
        let n = self.procs[p as usize].node.as_ref()?;
        if n.setup.config.cluster_enabled {
            self.proc_of_id(&n.master_id()?)
        } else {
            let (ip, port) = n.replication().replica.masterhost()?;
            self.proc_at_addr(ip, u32::from(port))
        }
    }

    /// With cluster mode off (replication, sentinel): the live master that
    /// the most live nodes follow (itself counted), `None` if none or two
    /// tie. It is where a key's final value is read.
    pub fn current_master(&self) -> Option<u32> {
        let mut best: Option<(usize, u32)> = None;
        let mut tie = false;
        for (p, proc) in self.procs.iter().enumerate() {
            if !proc.node.as_ref().is_some_and(|n| n.is_master()) {
                continue;
            }
            let me = (proc.addr.ip, proc.addr.port);
            let followers = self
                .procs
                .iter()
                .filter_map(|q| q.node.as_ref())
                .filter(|n| n.replication().replica.masterhost() == Some(me))
                .count();
            match best {
                Some((n, _)) if n > followers + 1 => {}
                Some((n, _)) if n == followers + 1 => tie = true,
                _ => {
                    best = Some((followers + 1, p as u32));
                    tie = false;
                }
            }
        }
        best.filter(|_| !tie).map(|(_, p)| p)
    }

    /// The node of process `p`, if it is alive.
    pub fn node(&self, p: u32) -> Option<&Node> {
        self.procs[p as usize].node.as_ref()
    }
}

/// `clusterManagerGetConfigSignature` of one `CLUSTER NODES` text.
fn config_signature(nodes: &str) -> String {
    let mut cfgs: Vec<String> = Vec::new();
    for line in nodes.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        if fields.len() <= 8 {
            continue;
        }
        let mut slots: Vec<&str> = fields[8..]
            .iter()
            .copied()
            .filter(|s| !s.starts_with('['))
            .collect();
        if slots.is_empty() {
            continue;
        }
        slots.sort_unstable();
        cfgs.push(format!("{}:{}", fields[0], slots.join(",")));
    }
    cfgs.sort_unstable();
    cfgs.join("|")
}

/// `12.345s`.
pub fn fmt_time(t: SimTime) -> String {
    format!("{}.{:03}s", t / SEC, (t % SEC) / MS)
}

impl Model for World {
    type Event = Event;

    fn handle(&mut self, now: SimTime, event: Event, queue: &mut EventQueue<Event>) -> u64 {
        match event {
            Event::Cron { proc, inc } => {
                self.cron(proc, inc, now, queue);
                (1 << 56) | u64::from(proc)
            }
            Event::SynArrive { conn } => {
                let c = &self.conns[conn as usize];
                if c.state != ConnState::Connecting {
                    return 2 << 56;
                }
                let (a, b) = (c.a, c.b.expect("SYN sent to a process"));
                let target = &self.procs[b as usize];
                if target.state == ProcState::Dead {
                    // Connection refused: RST back.
                    if self.reachable(b, a) {
                        let t = self.transit_to(conn, b, a, 60);
                        queue.push(now + t.total(), Event::ConnectFailed { conn });
                    }
                } else if self.reachable(b, a) {
                    let b_inc = target.inc;
                    let t = self.transit_to(conn, b, a, 60);
                    let c = &mut self.conns[conn as usize];
                    c.b_inc = b_inc;
                    queue.push(now + t.total(), Event::Established { conn });
                }
                (2 << 56) | u64::from(conn)
            }
            Event::SynRetry { conn, attempt } => {
                let c = &self.conns[conn as usize];
                if c.state == ConnState::Connecting {
                    if attempt as usize >= SYN_RETRY_AT_S.len() {
                        self.fail_connect(conn, now, queue);
                    } else {
                        self.send_syn(conn, attempt, now, queue);
                    }
                }
                (3 << 56) | u64::from(conn)
            }
            Event::Established { conn } => {
                let c = &self.conns[conn as usize];
                let b = c.b.expect("established with a process");
                if c.state != ConnState::Connecting
                    || !self.alive(c.a, c.a_inc)
                    || !self.alive(b, c.b_inc)
                {
                    return 4 << 56;
                }
                let (a, a_link, plane) = (c.a, c.a_link, c.plane);
                self.conns[conn as usize].state = ConnState::Open;
                // The last ACK goes first on the a→b pipe, so accept() comes
                // before any data.
                let t = self.transit_to(conn, a, b, 60);
                let at = self.conns[conn as usize].ab.send(now, t);
                queue.push(at, Event::Accept { conn });
                let local_ip = self.procs[a as usize].addr.ip;
                let input = match plane {
                    Plane::Bus => Input::Connected {
                        link: a_link,
                        local_ip,
                    },
                    Plane::Repl => Input::Repl(ReplInput::Connected { link: a_link }),
                };
                self.input(a, now, input, queue);
                let queued = std::mem::take(&mut self.conns[conn as usize].queued);
                for msg in queued {
                    self.send(a, plane, a_link, msg, now, queue);
                }
                (4 << 56) | u64::from(conn)
            }
            Event::Accept { conn } => {
                let c = &self.conns[conn as usize];
                let b = c.b.expect("accepted by a process");
                if c.state != ConnState::Open || !self.alive(b, c.b_inc) {
                    return 5 << 56;
                }
                self.next_inbound += 1;
                let link = INBOUND_LINK_BIT | self.next_inbound;
                let peer_ip = self.procs[c.a as usize].addr.ip;
                let local_ip = self.procs[b as usize].addr.ip;
                let c = &mut self.conns[conn as usize];
                c.b_link = link;
                c.accepted = true;
                let plane = c.plane;
                self.conn_of_link.insert((b, plane, link), conn);
                let input = match plane {
                    Plane::Bus => Input::Accepted {
                        link,
                        peer_ip,
                        local_ip,
                    },
                    Plane::Repl => Input::Repl(ReplInput::Accepted { link }),
                };
                self.input(b, now, input, queue);
                (5 << 56) | u64::from(conn)
            }
            Event::Deliver { conn, to_b, msg } => {
                let c = &self.conns[conn as usize];
                if c.state != ConnState::Open {
                    return 6 << 56;
                }
                let (p, inc, link) = if to_b {
                    (c.b.expect("open"), c.b_inc, c.b_link)
                } else {
                    (c.a, c.a_inc, c.a_link)
                };
                if !self.alive(p, inc) {
                    return 6 << 56;
                }
                let digest = msg.digest();
                let input = World::link_input(c.plane, link, LinkEvent::Recv(msg));
                self.input(p, now, input, queue);
                (6 << 56) ^ digest ^ (u64::from(p) << 40)
            }
            Event::Drained { conn, to_b } => {
                let c = &self.conns[conn as usize];
                // The sender's end.
                let (p, inc, link) = if to_b {
                    (c.a, c.a_inc, c.a_link)
                } else {
                    (c.b.expect("open"), c.b_inc, c.b_link)
                };
                if c.state != ConnState::Open || !self.alive(p, inc) {
                    return 19 << 56;
                }
                let input = Input::Repl(ReplInput::Drained { link });
                self.input(p, now, input, queue);
                (19 << 56) | (u64::from(to_b) << 40) | u64::from(conn)
            }
            Event::ReplTimer { proc, inc, timer } => {
                if !self.alive(proc, inc) {
                    return 20 << 56;
                }
                let digest = match timer {
                    ReplTimer::RdbChunk { child } => child,
                    ReplTimer::LoadDone { transfer } => transfer.rotate_left(32),
                };
                self.input(proc, now, Input::Repl(ReplInput::Timer(timer)), queue);
                (20 << 56) ^ (u64::from(proc) << 40) ^ digest
            }
            Event::Unstall { proc, inc } => {
                if self.alive(proc, inc) {
                    self.drain_inbox(proc, now, queue);
                }
                (21 << 56) | u64::from(proc)
            }
            Event::CloseAfterReply { proc, inc, link } => {
                if self.alive(proc, inc) {
                    self.close(proc, Plane::Repl, link, now, queue);
                }
                (27 << 56) | (u64::from(link) << 24) | u64::from(proc)
            }
            Event::Reset { conn, to_b } => {
                let c = &self.conns[conn as usize];
                let (p, inc, link) = if to_b {
                    (c.b.expect("reset to a process"), c.b_inc, c.b_link)
                } else {
                    (c.a, c.a_inc, c.a_link)
                };
                if self.alive(p, inc) {
                    let input = World::link_input(c.plane, link, LinkEvent::Error);
                    self.input(p, now, input, queue);
                }
                (7 << 56) | u64::from(conn)
            }
            Event::ConnectFailed { conn } => {
                self.fail_connect(conn, now, queue);
                (8 << 56) | u64::from(conn)
            }
            Event::Fault(i) => {
                self.apply_fault(i, now, queue);
                (9 << 56) | u64::from(i)
            }
            Event::Admin => {
                self.admin_step(now, queue);
                10 << 56
            }
            Event::Client(e) => self.client_event(now, e, queue),
            Event::Manager(e) => self.manager_event(now, e, queue),
            Event::Sentinel(e) => self.sentinel_event(now, *e, queue),
        }
    }
}

impl World {
    fn fail_connect(&mut self, conn: u32, now: SimTime, queue: &mut EventQueue<Event>) {
        let c = &mut self.conns[conn as usize];
        if c.state != ConnState::Connecting {
            return;
        }
        c.state = ConnState::Closed;
        c.queued.clear();
        let (a, a_inc, a_link, plane) = (c.a, c.a_inc, c.a_link, c.plane);
        self.conn_of_link.remove(&(a, plane, a_link));
        if self.alive(a, a_inc) {
            let input = World::link_input(plane, a_link, LinkEvent::Error);
            self.input(a, now, input, queue);
        }
    }
}

/// The processes whose state handling an event can change, for observers
/// that look only at what may have changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Touches {
    /// None (a SYN reaching a host: only the connection changes).
    Nothing,
    /// This process alone: the event gives its node an input.
    Proc(u32),
    /// The process at one end of connection `conn`: the accepting end when
    /// the flag is true, else the connecting end.
    ConnEnd(u32, bool),
    /// The node a client connection goes to (a request reaching it).
    ClientConnNode(u32),
    /// Any process: faults and the cluster manager.
    Any,
    /// World index `i`: a process if `i` is one (not a sentinel).
    SentinelTarget(u32),
}

impl Touches {
    /// What handling `event` can change (known from the event alone).
    /// Each new kind of event must say here which processes it reaches.
    pub fn of(event: &Event) -> Touches {
        match event {
            Event::Cron { proc, .. } => Touches::Proc(*proc),
            Event::SynArrive { .. } => Touches::Nothing,
            // A SYN sent again reaches no process; only the last retry,
            // the connect giving up, tells the connecting end.
            Event::SynRetry { attempt, .. } if usize::from(*attempt) < SYN_RETRY_AT_S.len() => {
                Touches::Nothing
            }
            Event::SynRetry { conn, .. }
            | Event::Established { conn }
            | Event::ConnectFailed { conn } => Touches::ConnEnd(*conn, false),
            Event::Accept { conn } => Touches::ConnEnd(*conn, true),
            Event::Deliver { conn, to_b, .. } | Event::Reset { conn, to_b } => {
                Touches::ConnEnd(*conn, *to_b)
            }
            // The sender: the connecting end when the data went to the other.
            Event::Drained { conn, to_b } => Touches::ConnEnd(*conn, !*to_b),
            Event::ReplTimer { proc, .. }
            | Event::Unstall { proc, .. }
            | Event::CloseAfterReply { proc, .. } => Touches::Proc(*proc),
            Event::Fault(_) | Event::Admin => Touches::Any,
            Event::Manager(ManagerEvent::Arrive { proc, .. }) => Touches::Proc(*proc),
            Event::Manager(ManagerEvent::Restore { m, .. }) => Touches::Proc(m.target()),
            Event::Manager(ManagerEvent::Restored { m, .. }) => Touches::Proc(m.source()),
            // redis-cli reads a reply or wakes up: it only sends (a
            // process is stopped when its SHUTDOWN arrives).
            Event::Manager(ManagerEvent::Reply { .. } | ManagerEvent::Wake { .. }) => {
                Touches::Nothing
            }
            Event::Client(ClientEvent::Request { conn, .. }) => Touches::ClientConnNode(*conn),
            // A command reaching a node (SLAVEOF changes it); sentinels
            // themselves are not read by the checks but through the history.
            Event::Sentinel(e) => match **e {
                SentinelEvent::Command { to, .. } => Touches::SentinelTarget(to),
                _ => Touches::Nothing,
            },
            // The others change only the clients and their connections.
            Event::Client(
                ClientEvent::Timer { .. }
                | ClientEvent::Lane { .. }
                | ClientEvent::SynArrive { .. }
                | ClientEvent::SynRetry { .. }
                | ClientEvent::Established { .. }
                | ClientEvent::Reply { .. }
                | ClientEvent::Reset { .. }
                | ClientEvent::WaitTimeout { .. },
            ) => Touches::Nothing,
        }
    }
}

impl World {
    /// The processes `t` stands for: `None` for any.
    #[inline]
    pub fn touched(&self, t: Touches) -> Option<std::ops::Range<u32>> {
        let one = |p: u32| Some(p..p + 1);
        match t {
            Touches::Nothing => Some(0..0),
            Touches::Proc(p) => one(p),
            Touches::ConnEnd(conn, false) => one(self.conns[conn as usize].a),
            Touches::ConnEnd(conn, true) => self.conns[conn as usize].b.map_or(Some(0..0), one),
            Touches::ClientConnNode(conn) => one(self.clients.conn_node(conn)),
            Touches::Any => None,
            Touches::SentinelTarget(i) if (i as usize) < self.procs.len() => one(i),
            Touches::SentinelTarget(_) => Some(0..0),
        }
    }
}
