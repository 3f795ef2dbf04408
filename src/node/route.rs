//! What a client sees: the checks Redis 7.0.15 makes on a command before
//! running it, as far as the cluster is concerned. `processCommand()`
//! (`src/server.c`) looks the command up, checks its arity, asks
//! `getNodeByQuery()` (`src/cluster.c`) who serves its keys and answers
//! with `clusterRedirectClient()` if that is not this node, refuses writes
//! without enough good replicas (`min-replicas-to-write`) and commands
//! while loading (its data from disk, or its master's RDB), and blocks
//! writes while a manual
//! failover pauses them.
//!
//! [`Node::process_command`] is a query on the node as its last input left
//! it: it reads `cluster_state` (kept by `clusterUpdateState()`, see
//! `failure.rs`), the slot owners, the migrating and importing slots, my
//! role and the write pause, and changes nothing. The keyspace stays
//! abstract: the caller says which keys exist. The data path calls it
//! before executing a command and runs the command on
//! [`Verdict::Execute`].
//!
//! Left out because nothing can produce them yet: MULTI/EXEC (all queued
//! commands are routed together), MIGRATE (served locally in an open slot),
//! shard pub/sub (`cluster-allow-pubsubshard-when-down`), TLS plaintext
//! ports in redirections, `CLIENT PAUSE ALL`, and two of the checks
//! `processCommand()` makes between the redirection and the pause
//! (MASTERDOWN, BUSY; the OOM and MISCONF checks are made, the first in
//! `serve.rs`). `-READONLY You can't write against a read
//! only replica.` is checked, but cannot happen to a command with keys in
//! cluster mode: a replica redirects a keyed write to its master
//! (`-MOVED`) before that check; with cluster mode off (`replicaof`) it is
//! what a replica answers every write.

use super::command_table::{
    lookup_command, CommandSpec, Keys, CMD_ASKING, CMD_LOADING, CMD_MAY_REPLICATE, CMD_READONLY,
    CMD_WRITE,
};
use super::config::EndpointType;
use super::persistence::MISCONF_ERR;
use super::render::{ip_str, CommandError};
use super::replication::{LOADING_ERR, NOREPLICAS_ERR};
use super::slots::key_hash_slot;
use super::{ClusterNode, Node, NO_OWNER};

/// `shared.roslaveerr`: a write to a read-only replica.
pub const READONLY_ERR: &str = "READONLY You can't write against a read only replica.";

/// Who is on the other end of the connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientKind {
    /// An ordinary client.
    #[default]
    Normal,
    /// `CLIENT_MASTER`: my master's replication stream. Redis obeys it
    /// (`mustObeyClient`): no redirection.
    Master,
    /// `CLIENT_SLAVE`: a replica's connection. It may not touch the
    /// keyspace and is never paused.
    Replica,
}

/// The client flags routing reads (`client->flags`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientFlags {
    /// `CLIENT_READONLY`: the client sent READONLY (READWRITE clears it).
    pub readonly: bool,
    /// `CLIENT_ASKING`: the client sent ASKING before this command. One
    /// shot: the caller clears it once the command has been processed.
    pub asking: bool,
    pub kind: ClientKind,
    /// `client->woff`: the replication offset right after the client's
    /// last command that propagated something (what `WAIT` waits for).
    pub woff: i64,
}

/// A client request as `getNodeByQuery()` sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// The command's `CMD_*` flags (`getCommandFlags`).
    pub flags: u64,
    /// Its key arguments, in order (`getKeysFromCommand`).
    pub keys: Keys<'a>,
    pub client: ClientFlags,
}

impl<'a> Request<'a> {
    /// The request `argv` makes with command `cmd` (`argv[0]` is its name).
    pub fn new(cmd: &CommandSpec, argv: &[&'a [u8]], client: ClientFlags) -> Request<'a> {
        Request {
            flags: cmd.flags,
            keys: cmd.keys(argv),
            client,
        }
    }
}

/// Why `getNodeByQuery()` does not let this node serve a request: the
/// `CLUSTER_REDIR_*` codes, with the target of a redirection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterRedir {
    /// Keys in different slots.
    CrossSlot,
    /// `CLUSTER_REDIR_UNSTABLE`: several keys of a slot being migrated or
    /// imported, some of them missing here.
    Unstable,
    /// The cluster is down.
    DownState,
    /// The cluster is down, reads allowed (`cluster-allow-reads-when-down`),
    /// and this is a write.
    DownRoState,
    /// The first key's slot has no owner.
    DownUnbound,
    /// The slot is served by the node at `endpoint:port`.
    Moved {
        slot: u16,
        endpoint: String,
        port: u16,
    },
    /// The slot is being migrated to the node at `endpoint:port`, which may
    /// have the keys: ask there (with ASKING).
    Ask {
        slot: u16,
        endpoint: String,
        port: u16,
    },
}

impl ClusterRedir {
    /// `clusterRedirectClient()`: the error reply, without the leading `-`.
    pub fn reply(&self) -> CommandError {
        match self {
            ClusterRedir::CrossSlot => {
                "CROSSSLOT Keys in request don't hash to the same slot".into()
            }
            ClusterRedir::Unstable => {
                "TRYAGAIN Multiple keys request during rehashing of slot".into()
            }
            ClusterRedir::DownState => "CLUSTERDOWN The cluster is down".into(),
            ClusterRedir::DownRoState => {
                "CLUSTERDOWN The cluster is down and only accepts read commands".into()
            }
            ClusterRedir::DownUnbound => "CLUSTERDOWN Hash slot not served".into(),
            ClusterRedir::Moved {
                slot,
                endpoint,
                port,
            } => format!("MOVED {slot} {endpoint}:{port}"),
            ClusterRedir::Ask {
                slot,
                endpoint,
                port,
            } => format!("ASK {slot} {endpoint}:{port}"),
        }
    }
}

/// What `processCommand()` does with a request before running it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every check passed: the command runs on this node.
    Execute,
    /// A write while a manual failover pauses writes
    /// (`blockClient(c, BLOCKED_POSTPONE)`): the client gets no reply
    /// until the pause ends, when Redis processes the command again from
    /// the start. By then the failover has usually made this node a
    /// replica, and the answer is `-MOVED` to the new master.
    Blocked,
    /// An error reply, Redis's text without the leading `-`.
    Error(CommandError),
}

impl Node {
    /// `processCommand()` up to `call()`, as far as modelled: command
    /// lookup and arity, then the cluster redirection (skipped for my
    /// master's stream, and with `cluster-enabled no`), then refusing a replica's connection access to the
    /// keyspace, then the write pause of a manual failover (as it stands
    /// at my last input; Redis lifts it in `serverCron`). The eviction and
    /// OOM check between the redirection and the rest changes the keyspace
    /// and is only done by [`Node::client_command`].
    /// `key_exists(key)` answers whether `key` is in my keyspace and not
    /// logically expired (`lookupKeyReadWithFlags` with `LOOKUP_NOEXPIRE`);
    /// it is asked only for keys of slots being migrated or imported.
    pub fn process_command(
        &self,
        argv: &[&[u8]],
        client: ClientFlags,
        key_exists: &dyn Fn(&[u8]) -> bool,
    ) -> Verdict {
        let checked = self
            .check_route(argv, client, key_exists)
            .and_then(|cmd| self.check_admission(cmd, client));
        match checked {
            Ok(()) => Verdict::Execute,
            Err(verdict) => verdict,
        }
    }

    /// `processCommand()` up to the redirection: the command is known and
    /// has its arity, and this node serves its keys.
    pub(super) fn check_route(
        &self,
        argv: &[&[u8]],
        client: ClientFlags,
        key_exists: &dyn Fn(&[u8]) -> bool,
    ) -> Result<&'static CommandSpec, Verdict> {
        let cmd = lookup_command(argv).map_err(Verdict::Error)?;
        // `server.cluster_enabled`: a standalone node serves every key.
        if self.setup.config.cluster_enabled && client.kind != ClientKind::Master {
            let req = Request::new(cmd, argv, client);
            if let Err(redir) = self.get_node_by_query(&req, key_exists) {
                return Err(Verdict::Error(redir.reply()));
            }
        }
        Ok(cmd)
    }

    /// `processCommand()` after the redirection and the OOM check (which
    /// evicts, see `serve.rs`).
    pub(super) fn check_admission(
        &self,
        cmd: &'static CommandSpec,
        client: ClientFlags,
    ) -> Result<(), Verdict> {
        // `-MISCONF`: writes refused after a failed BGSAVE, but my
        // master's (Redis panics then, unless
        // `replica-ignore-disk-write-errors`: not modelled).
        if cmd.flags & CMD_WRITE != 0
            && client.kind != ClientKind::Master
            && self.persist.writes_denied_by_disk_error(&self.setup.config)
        {
            return Err(Verdict::Error(MISCONF_ERR.into()));
        }
        if cmd.flags & CMD_WRITE != 0 && !self.repl.check_good_replicas_status(&self.setup.config) {
            return Err(Verdict::Error(NOREPLICAS_ERR.into()));
        }
        // `-READONLY`: a read-only replica refuses writes but its master's.
        if cmd.flags & CMD_WRITE != 0
            && self.repl.replica.masterhost().is_some()
            && self.setup.config.replica_read_only
            && client.kind != ClientKind::Master
        {
            return Err(Verdict::Error(READONLY_ERR.into()));
        }
        // MASTERDOWN would come here.
        if self.loading() && cmd.flags & CMD_LOADING == 0 {
            return Err(Verdict::Error(LOADING_ERR.into()));
        }
        if client.kind == ClientKind::Replica
            && cmd.flags & (CMD_MAY_REPLICATE | CMD_WRITE | CMD_READONLY) != 0
        {
            return Err(Verdict::Error(
                "ERR Replica can't interact with the keyspace".into(),
            ));
        }
        if client.kind != ClientKind::Replica
            && self.writes_paused()
            && cmd.flags & (CMD_WRITE | CMD_MAY_REPLICATE) != 0
        {
            return Err(Verdict::Blocked);
        }
        Ok(())
    }

    /// `getNodeByQuery()` (7.0.15 `src/cluster.c` lines 6656-6867): `Ok`
    /// if this node serves the request, else why not. The checks come in Redis's order: the first key's slot must
    /// have an owner, every other key must be in that slot, then the
    /// cluster state, then migrating and importing slots, then reads from a
    /// replica in READONLY mode, then MOVED to the owner.
    pub fn get_node_by_query(
        &self,
        req: &Request,
        key_exists: &dyn Fn(&[u8]) -> bool,
    ) -> Result<(), ClusterRedir> {
        let mut firstkey: Option<&[u8]> = None;
        let mut slot = 0u16;
        let mut n = NO_OWNER;
        let mut multiple_keys = false;
        let (mut migrating_slot, mut importing_slot) = (false, false);
        let (mut missing_keys, mut existing_keys) = (0u32, 0u32);
        for &thiskey in &req.keys {
            let thisslot = key_hash_slot(thiskey);
            match firstkey {
                None => {
                    firstkey = Some(thiskey);
                    slot = thisslot;
                    n = self.slot_owner[usize::from(slot)];
                    if n == NO_OWNER {
                        return Err(ClusterRedir::DownUnbound);
                    }
                    if n == self.myself && self.migrating_slots_to.contains_key(&slot) {
                        migrating_slot = true;
                    } else if self.importing_slots_from.contains_key(&slot) {
                        importing_slot = true;
                    }
                }
                Some(first) if first != thiskey => {
                    if slot != thisslot {
                        return Err(ClusterRedir::CrossSlot);
                    }
                    multiple_keys = true;
                }
                Some(_) => {}
            }
            if migrating_slot || importing_slot {
                if key_exists(thiskey) {
                    existing_keys += 1;
                } else {
                    missing_keys += 1;
                }
            }
        }
        // No key at all: served here.
        if n == NO_OWNER {
            return Ok(());
        }

        if !self.state_ok {
            if !self.setup.config.cluster_allow_reads_when_down {
                return Err(ClusterRedir::DownState);
            }
            if req.flags & CMD_WRITE != 0 {
                return Err(ClusterRedir::DownRoState);
            }
        }

        if migrating_slot && missing_keys > 0 {
            if existing_keys > 0 {
                return Err(ClusterRedir::Unstable);
            }
            let (endpoint, port) = self.redirect_address(self.migrating_slots_to[&slot]);
            return Err(ClusterRedir::Ask {
                slot,
                endpoint,
                port,
            });
        }

        if importing_slot && (req.client.asking || req.flags & CMD_ASKING != 0) {
            if multiple_keys && missing_keys > 0 {
                return Err(ClusterRedir::Unstable);
            }
            return Ok(());
        }

        let me = self.myself();
        if req.client.readonly
            && req.flags & CMD_WRITE == 0
            && me.is_slave()
            && me.slaveof == Some(n)
        {
            return Ok(());
        }

        if n != self.myself {
            let (endpoint, port) = self.redirect_address(n);
            return Err(ClusterRedir::Moved {
                slot,
                endpoint,
                port,
            });
        }
        Ok(())
    }

    /// The `endpoint:port` a redirection to node `idx` names.
    fn redirect_address(&self, idx: u32) -> (String, u16) {
        let n = self.n(idx);
        (self.preferred_endpoint(n), n.port)
    }

    /// `getPreferredEndpoint()` (`cluster-preferred-endpoint-type`).
    /// Hostnames travel in a ping extension the bus does not carry yet, so
    /// every node's hostname is empty and `hostname` gives Redis's `?`.
    fn preferred_endpoint(&self, n: &ClusterNode) -> String {
        match self.setup.config.cluster_preferred_endpoint_type {
            EndpointType::Ip => ip_str(n.ip),
            EndpointType::Hostname => "?".into(),
            EndpointType::UnknownEndpoint => String::new(),
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use rand::SeedableRng;

    use super::super::bus::flags::*;
    use super::super::bus::NodeId;
    use super::super::config::Config;
    use super::super::slots::CLUSTER_SLOTS;
    use super::super::{NodeSetup, WRITABLE_DELAY_MS};
    use super::*;
    use crate::engine::Rng;

    pub(in crate::node) fn id(b: u8) -> NodeId {
        NodeId([b; 20])
    }

    fn err(s: &str) -> Verdict {
        Verdict::Error(s.into())
    }

    /// Slots of the standard layout: me (0x10), A (0x20), B (0x30).
    pub(in crate::node) const MINE: std::ops::Range<usize> = 0..5461;
    pub(in crate::node) const A_SLOTS: std::ops::Range<usize> = 5461..10923;
    pub(in crate::node) const B_SLOTS: std::ops::Range<usize> = 10923..16384;

    /// A key hashing into `slots`, with `prefix` (found by counting).
    pub(in crate::node) fn key_in(slots: std::ops::Range<usize>, prefix: &str) -> String {
        (0..)
            .map(|i| format!("{prefix}{i}"))
            .find(|k| slots.contains(&usize::from(key_hash_slot(k.as_bytes()))))
            .unwrap()
    }

    pub(in crate::node) struct Sim {
        pub(in crate::node) node: Node,
    }

    impl Sim {
        /// Myself (id byte `me`) and nothing else, at simulated time 1000 s.
        pub(in crate::node) fn new(config: Config, me: u8) -> Sim {
            let setup = NodeSetup {
                port: 7000,
                config: Config {
                    cluster_enabled: true,
                    ..config
                },
                planted: None,
            };
            let mut node = Node::new(setup, Rng::seed_from_u64(1), 1_000_000_000);
            let my = node.myself;
            node.rename_node(my, id(me));
            Sim { node }
        }

        /// Peer `b` at 10.0.0.b, port 6000 + b, with `flags` and `slots`.
        pub(in crate::node) fn peer(
            &mut self,
            b: u8,
            flags: u16,
            slots: std::ops::Range<usize>,
        ) -> u32 {
            let mut c = ClusterNode::new(id(b), flags, 0);
            c.ip = Some([10, 0, 0, b]);
            c.port = 6000 + u16::from(b);
            c.cport = 16000 + u32::from(b);
            let idx = self.node.add_node(c);
            for j in slots {
                self.node.add_slot(idx, j);
            }
            idx
        }

        pub(in crate::node) fn idx(&self, b: u8) -> u32 {
            self.node.lookup(&id(b)).unwrap()
        }

        /// Masters me (0x10), A (0x20), B (0x30) with `MINE`, `A_SLOTS`,
        /// `B_SLOTS`, one replica each (0x40, 0x50, 0x60); state computed.
        pub(in crate::node) fn cluster(config: Config) -> Sim {
            let mut s = Sim::new(config, 0x10);
            let me = s.node.myself;
            for j in MINE {
                s.node.add_slot(me, j);
            }
            s.peer(0x20, MASTER, A_SLOTS);
            s.peer(0x30, MASTER, B_SLOTS);
            for (r, m) in [(0x40, me), (0x50, s.idx(0x20)), (0x60, s.idx(0x30))] {
                let r = s.peer(r, SLAVE, 0..0);
                s.node.nm(r).slaveof = Some(m);
                s.node.add_slave(m, r);
            }
            s.update_state();
            s
        }

        /// `clusterUpdateState()` now, past the writable delay of a master
        /// that just started.
        pub(in crate::node) fn update_state(&mut self) {
            self.node.first_call_time = self.node.now_ms - WRITABLE_DELAY_MS;
            self.node.update_state(&mut Vec::new());
        }

        pub(in crate::node) fn flag(&mut self, b: u8, flags: u16) {
            let i = self.idx(b);
            self.node.nm(i).flags |= flags;
        }

        /// `cmd` (space-separated) from a normal client; no key exists.
        fn q(&self, cmd: &str) -> Verdict {
            self.query(cmd, ClientFlags::default(), &|_| false)
        }

        fn query(&self, cmd: &str, client: ClientFlags, exists: &dyn Fn(&[u8]) -> bool) -> Verdict {
            let argv: Vec<&[u8]> = cmd.split(' ').map(str::as_bytes).collect();
            self.node.process_command(&argv, client, exists)
        }
    }

    const READONLY: ClientFlags = ClientFlags {
        readonly: true,
        asking: false,
        kind: ClientKind::Normal,
        woff: 0,
    };
    const ASKING: ClientFlags = ClientFlags {
        readonly: false,
        asking: true,
        kind: ClientKind::Normal,
        woff: 0,
    };

    #[test]
    fn my_slots_are_served_others_moved_to_their_owner() {
        let s = Sim::cluster(Config::default());
        assert!(s.node.state_ok());
        // bar = 5061 (mine), foo = 12182 (B).
        assert_eq!(s.q("GET bar"), Verdict::Execute);
        assert_eq!(s.q("SET bar 1"), Verdict::Execute);
        assert_eq!(s.q("GET foo"), err("MOVED 12182 10.0.0.48:6048"));
        assert_eq!(s.q("SET foo 1"), err("MOVED 12182 10.0.0.48:6048"));
        let ka = key_in(A_SLOTS, "a");
        let slot = key_hash_slot(ka.as_bytes());
        assert_eq!(
            s.q(&format!("INCR {ka}")),
            err(&format!("MOVED {slot} 10.0.0.32:6032"))
        );
        // Same key twice, or keys sharing a hash tag: one slot.
        assert_eq!(s.q("MGET bar bar"), Verdict::Execute);
        assert_eq!(s.q("MSET {bar}1 x {bar}2 y"), Verdict::Execute);
        assert_eq!(s.q("DEL {foo}a {foo}b"), err("MOVED 12182 10.0.0.48:6048"));
    }

    #[test]
    fn lookup_and_arity_errors_come_before_routing() {
        let mut s = Sim::cluster(Config::default());
        s.flag(0x30, FAIL);
        s.update_state();
        assert_eq!(
            s.q("GET"),
            err("ERR wrong number of arguments for 'get' command")
        );
        assert_eq!(
            s.q("FLY foo"),
            err("ERR unknown command 'FLY', with args beginning with: 'foo' ")
        );
        assert_eq!(s.q("GET foo"), err("CLUSTERDOWN The cluster is down"));
    }

    #[test]
    fn unbound_first_key_then_crossslot_then_cluster_down() {
        let mut s = Sim::cluster(Config::default());
        // Unassign slot 12182 (foo) and mark A failed: cluster down.
        s.node.del_slot(12182);
        s.flag(0x20, FAIL);
        s.update_state();
        assert!(!s.node.state_ok());
        // The first key's slot has no owner: checked before anything else,
        // even the other keys' slots.
        assert_eq!(s.q("MGET foo bar"), err("CLUSTERDOWN Hash slot not served"));
        // Keys in two slots: CROSSSLOT, before the cluster state (5061 vs
        // 866, both mine, and 5061 vs the unbound 12182).
        assert_eq!(
            s.q("MGET bar hello"),
            err("CROSSSLOT Keys in request don't hash to the same slot")
        );
        assert_eq!(
            s.q("MGET bar foo"),
            err("CROSSSLOT Keys in request don't hash to the same slot")
        );
        // One slot, served by me, but the cluster is down.
        assert_eq!(s.q("GET bar"), err("CLUSTERDOWN The cluster is down"));
        assert_eq!(s.q("GET a"), err("CLUSTERDOWN The cluster is down"));
    }

    #[test]
    fn require_full_coverage_no_keeps_serving_bound_slots() {
        for full_coverage in [true, false] {
            let mut s = Sim::cluster(Config {
                cluster_require_full_coverage: full_coverage,
                ..Config::default()
            });
            s.node.del_slot(12182);
            s.update_state();
            assert_eq!(s.node.state_ok(), !full_coverage);
            // The unbound slot: DOWN_UNBOUND either way.
            assert_eq!(s.q("GET foo"), err("CLUSTERDOWN Hash slot not served"));
            if full_coverage {
                assert_eq!(s.q("GET bar"), err("CLUSTERDOWN The cluster is down"));
                assert_eq!(s.q("GET a"), err("CLUSTERDOWN The cluster is down"));
            } else {
                assert_eq!(s.q("GET bar"), Verdict::Execute);
                // a = 15495, still B's.
                assert_eq!(s.q("GET a"), err("MOVED 15495 10.0.0.48:6048"));
            }
        }
        // Without full coverage a FAIL owner does not bring the cluster
        // down (a majority is still reachable): its slots are MOVED to it.
        let mut s = Sim::cluster(Config {
            cluster_require_full_coverage: false,
            ..Config::default()
        });
        s.flag(0x30, FAIL);
        s.update_state();
        assert!(s.node.state_ok());
        assert_eq!(s.q("GET foo"), err("MOVED 12182 10.0.0.48:6048"));
    }

    #[test]
    fn allow_reads_when_down_serves_reads_refuses_writes() {
        let mut s = Sim::cluster(Config {
            cluster_allow_reads_when_down: true,
            ..Config::default()
        });
        s.flag(0x30, FAIL);
        s.update_state();
        assert!(!s.node.state_ok());
        assert_eq!(s.q("GET bar"), Verdict::Execute);
        assert_eq!(s.q("MGET bar {bar}x"), Verdict::Execute);
        assert_eq!(
            s.q("SET bar 1"),
            err("CLUSTERDOWN The cluster is down and only accepts read commands")
        );
        // Writes are refused before redirection; reads go on to MOVED.
        assert_eq!(
            s.q("DEL foo"),
            err("CLUSTERDOWN The cluster is down and only accepts read commands")
        );
        assert_eq!(s.q("TTL foo"), err("MOVED 12182 10.0.0.48:6048"));
        assert_eq!(
            s.q("EXISTS bar hello"),
            err("CROSSSLOT Keys in request don't hash to the same slot")
        );
    }

    /// Me (0x40) replicating M (0x10, `MINE`); masters A and B as usual.
    pub(in crate::node) fn replica_sim(config: Config) -> Sim {
        let mut s = Sim::new(config, 0x40);
        let m = s.peer(0x10, MASTER, MINE);
        s.peer(0x20, MASTER, A_SLOTS);
        s.peer(0x30, MASTER, B_SLOTS);
        s.node.set_master(m, &mut Vec::new());
        s.update_state();
        assert!(s.node.state_ok());
        s
    }

    #[test]
    fn replica_serves_readonly_clients_reads_of_its_masters_slots() {
        let s = replica_sim(Config::default());
        // Without READONLY: MOVED to the master, reads and writes alike.
        assert_eq!(s.q("GET bar"), err("MOVED 5061 10.0.0.16:6016"));
        assert_eq!(s.q("SET bar 1"), err("MOVED 5061 10.0.0.16:6016"));
        let q = |cmd| s.query(cmd, READONLY, &|_| false);
        assert_eq!(q("GET bar"), Verdict::Execute);
        assert_eq!(q("MGET bar {bar}1"), Verdict::Execute);
        // Writes, even READONLY: MOVED (never -READONLY in cluster mode).
        assert_eq!(q("SET bar 1"), err("MOVED 5061 10.0.0.16:6016"));
        assert_eq!(q("EXPIRE bar 10"), err("MOVED 5061 10.0.0.16:6016"));
        // Another master's slot: MOVED there.
        assert_eq!(q("GET foo"), err("MOVED 12182 10.0.0.48:6048"));
    }

    #[test]
    fn replica_reads_when_down_need_allow_reads_when_down() {
        for allow in [false, true] {
            let mut s = replica_sim(Config {
                cluster_allow_reads_when_down: allow,
                ..Config::default()
            });
            s.flag(0x30, FAIL);
            s.update_state();
            assert!(!s.node.state_ok());
            let v = s.query("GET bar", READONLY, &|_| false);
            if allow {
                assert_eq!(v, Verdict::Execute);
                assert_eq!(s.q("GET bar"), err("MOVED 5061 10.0.0.16:6016"));
            } else {
                assert_eq!(v, err("CLUSTERDOWN The cluster is down"));
            }
        }
    }

    #[test]
    fn migrating_slot_asks_for_missing_keys_tryagain_for_a_mix() {
        let mut s = Sim::cluster(Config::default());
        let a = s.idx(0x20);
        s.node.migrating_slots_to.insert(5061, a);
        let ask = err("ASK 5061 10.0.0.32:6032");
        let have =
            |keys: &'static [&'static str]| move |k: &[u8]| keys.iter().any(|x| x.as_bytes() == k);
        // All keys here: served.
        assert_eq!(
            s.query("GET bar", ClientFlags::default(), &have(&["bar"])),
            Verdict::Execute
        );
        assert_eq!(
            s.query(
                "MGET bar {bar}1",
                ClientFlags::default(),
                &have(&["bar", "{bar}1"])
            ),
            Verdict::Execute
        );
        // None here: ASK the target, reads and writes alike.
        assert_eq!(s.q("GET bar"), ask);
        assert_eq!(s.q("SET bar 1"), ask);
        assert_eq!(s.q("MGET bar {bar}1"), ask);
        // Some here, some not: TRYAGAIN.
        assert_eq!(
            s.query("MGET bar {bar}1", ClientFlags::default(), &have(&["bar"])),
            err("TRYAGAIN Multiple keys request during rehashing of slot")
        );
        // Another slot of mine is not affected.
        assert_eq!(s.q("GET hello"), Verdict::Execute);
        // Once the slot is A's (rebound by a newer config), the migrating
        // mark left behind no longer matters: MOVED, not ASK.
        s.node.del_slot(5061);
        s.node.add_slot(a, 5061);
        assert_eq!(s.q("GET bar"), err("MOVED 5061 10.0.0.32:6032"));
        s.node.del_slot(5061);
        let me = s.node.myself;
        s.node.add_slot(me, 5061);
        // The cluster state comes first.
        s.flag(0x30, FAIL);
        s.update_state();
        assert_eq!(s.q("GET bar"), err("CLUSTERDOWN The cluster is down"));
    }

    #[test]
    fn importing_slot_served_only_with_asking() {
        let mut s = Sim::cluster(Config::default());
        let b = s.idx(0x30);
        s.node.importing_slots_from.insert(12182, b);
        let have = |k: &[u8]| k == b"{foo}1";
        // Without ASKING: the owner is still B.
        assert_eq!(s.q("GET foo"), err("MOVED 12182 10.0.0.48:6048"));
        assert_eq!(
            s.query("GET {foo}1", ClientFlags::default(), &have),
            err("MOVED 12182 10.0.0.48:6048")
        );
        // With ASKING: served, present or not.
        assert_eq!(s.query("GET foo", ASKING, &have), Verdict::Execute);
        assert_eq!(s.query("SET foo 1", ASKING, &have), Verdict::Execute);
        // The same key twice is not "multiple keys".
        assert_eq!(s.query("MGET foo foo", ASKING, &have), Verdict::Execute);
        // Several keys, some missing: TRYAGAIN; all here: served.
        assert_eq!(
            s.query("MGET {foo}1 {foo}2", ASKING, &have),
            err("TRYAGAIN Multiple keys request during rehashing of slot")
        );
        assert_eq!(
            s.query("MGET {foo}1 {foo}2", ASKING, &|_| true),
            Verdict::Execute
        );
    }

    #[test]
    fn manual_failover_pause_blocks_writes_after_routing() {
        let mut s = Sim::cluster(Config::default());
        // The pause an MFSTART from my replica leaves (`pauseClients`).
        s.node.election.mf_pause_end = s.node.now_ms + 10_000;
        assert!(s.node.writes_paused());
        assert_eq!(s.q("SET bar 1"), Verdict::Blocked);
        assert_eq!(s.q("DEL bar {bar}x"), Verdict::Blocked);
        assert_eq!(s.q("GET bar"), Verdict::Execute);
        // Redirection comes first.
        assert_eq!(s.q("SET foo 1"), err("MOVED 12182 10.0.0.48:6048"));
        // Replicas' connections are never paused (and may not write).
        let replica = ClientFlags {
            kind: ClientKind::Replica,
            ..ClientFlags::default()
        };
        assert_eq!(
            s.query("SET bar 1", replica, &|_| false),
            err("ERR Replica can't interact with the keyspace")
        );
        // The pause is over.
        s.node.now_ms += 10_000;
        assert_eq!(s.q("SET bar 1"), Verdict::Execute);
    }

    #[test]
    fn master_stream_is_not_redirected_replica_connection_refused() {
        let mut s = replica_sim(Config::default());
        let master = ClientFlags {
            kind: ClientKind::Master,
            ..ClientFlags::default()
        };
        assert_eq!(s.query("SET bar 1", master, &|_| false), Verdict::Execute);
        assert_eq!(s.query("SET foo 1", master, &|_| false), Verdict::Execute);
        s.flag(0x30, FAIL);
        s.update_state();
        assert_eq!(s.query("DEL foo", master, &|_| false), Verdict::Execute);

        let s = Sim::cluster(Config::default());
        let replica = ClientFlags {
            kind: ClientKind::Replica,
            ..ClientFlags::default()
        };
        // Routed first, then refused.
        assert_eq!(
            s.query("GET foo", replica, &|_| false),
            err("MOVED 12182 10.0.0.48:6048")
        );
        assert_eq!(
            s.query("GET bar", replica, &|_| false),
            err("ERR Replica can't interact with the keyspace")
        );
    }

    #[test]
    fn redirections_print_the_preferred_endpoint() {
        for (typ, text) in [
            (EndpointType::Ip, "MOVED 12182 10.0.0.48:6048"),
            (EndpointType::Hostname, "MOVED 12182 ?:6048"),
            (EndpointType::UnknownEndpoint, "MOVED 12182 :6048"),
        ] {
            let s = Sim::cluster(Config {
                cluster_preferred_endpoint_type: typ,
                ..Config::default()
            });
            assert_eq!(s.q("GET foo"), err(text));
        }
    }

    #[test]
    fn minority_master_is_down_until_the_rejoin_delay_has_passed() {
        let mut s = Sim::cluster(Config {
            cluster_node_timeout_ms: 3000,
            ..Config::default()
        });
        assert_eq!(s.q("GET bar"), Verdict::Execute);
        // A and B unreachable (PFAIL): 1 of 3 masters, a minority.
        s.flag(0x20, PFAIL);
        s.flag(0x30, PFAIL);
        s.node.update_state(&mut Vec::new());
        assert!(!s.node.state_ok());
        assert_eq!(s.q("GET bar"), err("CLUSTERDOWN The cluster is down"));
        // Reachable again: still down for the rejoin delay (clamp(NT,
        // 500, 5000) = 3 s after the last time in the minority).
        let left_minority = s.node.now_ms;
        for b in [0x20, 0x30] {
            let i = s.idx(b);
            s.node.nm(i).flags &= !PFAIL;
        }
        s.node.now_ms = left_minority + 2999;
        s.node.update_state(&mut Vec::new());
        assert_eq!(s.q("GET bar"), err("CLUSTERDOWN The cluster is down"));
        s.node.now_ms = left_minority + 3000;
        s.node.update_state(&mut Vec::new());
        assert!(s.node.state_ok());
        assert_eq!(s.q("GET bar"), Verdict::Execute);
    }

    #[test]
    fn every_slot_is_served_or_moved_to_its_owner() {
        let s = Sim::cluster(Config::default());
        // A key for every slot, found by counting.
        let mut key_of: Vec<Option<String>> = vec![None; CLUSTER_SLOTS];
        let mut missing = CLUSTER_SLOTS;
        for i in 0.. {
            let k = format!("k{i}");
            let j = usize::from(key_hash_slot(k.as_bytes()));
            if key_of[j].is_none() {
                key_of[j] = Some(k);
                missing -= 1;
                if missing == 0 {
                    break;
                }
            }
        }
        let mut served = 0;
        for (j, key) in key_of.iter().enumerate() {
            let req = Request {
                flags: CMD_READONLY,
                keys: [key.as_deref().unwrap().as_bytes()].into_iter().collect(),
                client: ClientFlags::default(),
            };
            let owner = s.node.slot_owner(j).unwrap();
            match s.node.get_node_by_query(&req, &|_| false) {
                Ok(()) => {
                    assert_eq!(owner.name, id(0x10), "slot {j}");
                    served += 1;
                }
                Err(ClusterRedir::Moved {
                    slot,
                    endpoint,
                    port,
                }) => {
                    assert_eq!(usize::from(slot), j);
                    assert_eq!((endpoint, port), (ip_str(owner.ip), owner.port));
                }
                Err(e) => panic!("slot {j}: {e:?}"),
            }
        }
        assert_eq!(served, MINE.len());
        // No key at all: served here, whatever the state.
        let req = Request {
            flags: CMD_WRITE,
            keys: Keys::new(),
            client: ClientFlags::default(),
        };
        assert_eq!(s.node.get_node_by_query(&req, &|_| false), Ok(()));
    }
}
