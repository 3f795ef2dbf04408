//! A client's command on a node, from the connection's flags to the reply:
//! `processCommand()` (the checks of [`super::route`]) then `call()`: the
//! keyspace commands run on [`Node::keyspace`], the connection state
//! commands change the connection's [`ClientFlags`] (`ASKING`, `READONLY`,
//! `READWRITE`, `askingCommand()` and friends in `src/cluster.c`), and
//! `CLUSTER SLOTS` is rendered as `clusterReplyMultiBulkSlots()` does.
//!
//! The node is sans-IO here too: the caller owns the connection (its
//! flags) and carries the reply. What a write propagates goes into the
//! replication stream (`replicationFeedSlaves`), whose messages are
//! effects like any other.

use std::rc::Rc;

use super::bus::flags::MYSELF;
use super::command_table::CMD_DENYOOM;
use super::config::EndpointType;
use super::keyspace::{parse_i64, Caller, Executed, Keyspace, Reply};
use super::memory::OOM_ERR;
use super::replication::{resp, ReplCommand, SlaveReplState};
use super::route::{ClientFlags, Verdict};
use super::slots::CLUSTER_SLOTS;
use super::{ClusterNode, Effect, Node, NO_OWNER};
use crate::engine::SimTime;

/// What a client connection gets for one command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientReply {
    /// The command was processed: its reply (an error included) and what
    /// it propagates to replicas and the AOF.
    Done(Executed),
    /// A write while a manual failover pauses writes: no reply yet. The
    /// caller gives the command again once [`Node::writes_paused`] is
    /// false; it is then checked from the start (usually `-MOVED`).
    Blocked,
    /// `WAIT` with fewer replicas than asked having acknowledged the
    /// client's last write (`blockClient(c, BLOCKED_WAIT)`): the caller
    /// replies [`Node::count_acks`] once it reaches `numreplicas`, or at
    /// the timeout.
    Wait(WaitRequest),
}

/// A client blocked in `WAIT` (`c->bpop`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitRequest {
    /// The offset replicas must have acknowledged (the client's `woff`).
    pub offset: i64,
    pub numreplicas: i64,
    /// 0: forever.
    pub timeout_ms: i64,
}

/// What a client blocked in `WAIT` gets when its master turns replica
/// (`disconnectAllBlockedClients`).
pub const UNBLOCKED_ERR: &str =
    "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)";

/// `CLUSTER`, `ASKING`, `READONLY` and `READWRITE` on a node with
/// `cluster-enabled no`.
pub const CLUSTER_DISABLED_ERR: &str = "ERR This instance has cluster support disabled";

/// `WAIT` on a replica.
pub const WAIT_REPLICA_ERR: &str = "ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.";

impl ClientReply {
    fn reply(reply: Reply) -> ClientReply {
        ClientReply::Done(Executed {
            reply,
            propagate: Vec::new(),
        })
    }
}

impl Node {
    /// Process `argv` (command name first) from a client whose connection
    /// has `client` flags, at `now`. `ASKING` is one shot: any other
    /// command that gets a reply clears it. What the command propagates is
    /// fed to my replicas; the messages that asks for go to `out`.
    pub fn client_command(
        &mut self,
        now: SimTime,
        argv: &[&[u8]],
        client: &mut ClientFlags,
        out: &mut Vec<Effect>,
    ) -> ClientReply {
        self.set_now(now);
        let mut keyspace = std::mem::take(&mut self.keyspace);
        let (mut reply, mut evicted) = self.serve(&mut keyspace, argv, client);
        self.keyspace = keyspace;
        // The evictions' DELs go first: in the command's own propagation,
        // or on their own before a WAIT.
        if let ClientReply::Done(e) = &mut reply {
            evicted.append(&mut e.propagate);
            e.propagate = std::mem::take(&mut evicted);
        }
        if !evicted.is_empty() {
            self.feed_commands(&evicted, out);
        }
        let offset = self.repl.master_repl_offset();
        if let ClientReply::Wait(_) = reply {
            // `replicationRequestAckFromSlaves`, sent in `beforeSleep`
            // unless clients are paused.
            if !self.writes_paused() {
                self.with_repl(out, |r, now, ctx, o| {
                    r.replication_request_ack_from_slaves(now, ctx.config, o)
                });
            }
        }
        if let ClientReply::Done(e) = &reply {
            self.feed_commands(&e.propagate, out);
            if self.repl.master_repl_offset() != offset {
                client.woff = self.repl.master_repl_offset();
            }
        }
        self.record_peak_memory();
        reply
    }

    /// `propagateNow` for commands executed here: into the replication
    /// stream and the AOF (then `flushAppendOnlyFile`'s fsync, as in
    /// `beforeSleep`).
    pub(super) fn feed_commands(&mut self, commands: &[Rc<ReplCommand>], out: &mut Vec<Effect>) {
        for cmd in commands {
            self.with_repl(out, |r, now, ctx, o| {
                r.replication_feed_slaves(now, Rc::clone(cmd), ctx.config, o)
            });
        }
        self.persist_feed(commands.len(), || commands.to_vec(), out);
        self.aof_flush(out);
    }

    /// What [`Node::client_command`] would answer now, changing nothing
    /// (the command runs on a copy of the keyspace).
    pub fn preview_command(&self, argv: &[&[u8]], mut client: ClientFlags) -> ClientReply {
        let mut keyspace = self.keyspace.clone();
        self.serve(&mut keyspace, argv, &mut client).0
    }

    /// `processCommand()` then `call()`. Between the redirection and the
    /// other checks, `performEvictions()` runs before every command (a
    /// read included) and a `denyoom` command gets `-OOM` if not enough
    /// could be freed. Returns the reply and the evictions' `DEL`s, which
    /// are propagated first, whatever the command's fate.
    fn serve(
        &self,
        keyspace: &mut Keyspace,
        argv: &[&[u8]],
        client: &mut ClientFlags,
    ) -> (ClientReply, Vec<Rc<ReplCommand>>) {
        let now_ms = self.now_ms;
        keyspace.child_active = self.has_active_child_process();
        let routed = {
            let ks: &Keyspace = keyspace;
            self.check_route(argv, *client, &|key| ks.exists_at(key, now_ms))
        };
        let mut evicted = Vec::new();
        let checked = routed.and_then(|cmd| {
            let out_of_memory = self.perform_evictions(keyspace, &mut evicted);
            if out_of_memory && cmd.flags & CMD_DENYOOM != 0 {
                return Err(Verdict::Error(OOM_ERR.into()));
            }
            self.check_admission(cmd, *client).map(|()| cmd)
        });
        let reply = match checked {
            Ok(cmd) => self.call(keyspace, cmd.name, argv, client),
            Err(Verdict::Error(e)) => {
                client.asking = false;
                ClientReply::reply(Reply::Error(e))
            }
            // The only other refusal: the write pause.
            Err(_) => ClientReply::Blocked,
        };
        (reply, evicted)
    }

    /// `call()`: run an admitted command.
    fn call(
        &self,
        keyspace: &mut Keyspace,
        name: &str,
        argv: &[&[u8]],
        client: &mut ClientFlags,
    ) -> ClientReply {
        let now_ms = self.now_ms;
        let cluster_command =
            matches!(name, "asking" | "readonly" | "readwrite") || name.starts_with("cluster|");
        if cluster_command && !self.setup.config.cluster_enabled {
            client.asking = false;
            return ClientReply::reply(Reply::Error(CLUSTER_DISABLED_ERR.into()));
        }
        let reply = match name {
            "asking" => {
                client.asking = true;
                return ClientReply::reply(Reply::Ok);
            }
            "readonly" => {
                client.readonly = true;
                Reply::Ok
            }
            "readwrite" => {
                client.readonly = false;
                Reply::Ok
            }
            "cluster|slots" => self.cluster_slots(),
            "info" => Reply::Bulk(self.info(keyspace, &argv[1..]).into_bytes()),
            "restore-asking" => {
                client.asking = false;
                let (reply, propagate) = super::migrate::restore(keyspace, argv, now_ms);
                return ClientReply::Done(Executed { reply, propagate });
            }
            "wait" => return self.wait_command(argv, *client),
            _ => {
                client.asking = false;
                let replica = !self.is_master();
                return ClientReply::Done(keyspace.execute_command(
                    name,
                    argv,
                    now_ms,
                    replica,
                    Caller::Client,
                ));
            }
        };
        client.asking = false;
        ClientReply::reply(reply)
    }

    /// `waitCommand`: the number of replicas that acknowledged the
    /// client's last write, at once if they are enough, else a block.
    fn wait_command(&self, argv: &[&[u8]], client: ClientFlags) -> ClientReply {
        let err = |e: &str| ClientReply::reply(Reply::Error(e.into()));
        if self.repl.replica.masterhost().is_some() {
            return err(WAIT_REPLICA_ERR);
        }
        let Some(numreplicas) = parse_i64(argv[1]) else {
            return err("ERR value is not an integer or out of range");
        };
        let timeout_ms = match parse_i64(argv[2]) {
            None => return err("ERR timeout is not an integer or out of range"),
            Some(t) if t < 0 => return err("ERR timeout is negative"),
            Some(t) => t,
        };
        let acks = self.count_acks(client.woff);
        if acks >= numreplicas {
            return ClientReply::reply(Reply::Int(acks));
        }
        ClientReply::Wait(WaitRequest {
            offset: client.woff,
            numreplicas,
            timeout_ms,
        })
    }

    /// `replicationCountAcksByOffset`: online replicas that acknowledged
    /// `offset`.
    pub fn count_acks(&self, offset: i64) -> i64 {
        self.repl
            .slaves()
            .filter(|s| s.state == SlaveReplState::Online && s.ack_offset >= offset)
            .count() as i64
    }

    /// `CLUSTER SLOTS` (`clusterReplyMultiBulkSlots()`): one entry per
    /// maximal run of slots with the same owner, in slot order:
    /// `[start, end, master, replica...]`, each node as
    /// `addNodeToNodeReply()` renders it. Every owner is listed, a failed
    /// one included; a replica only when it is not failed and has a
    /// replication offset (`isReplicaAvailable()`).
    pub fn cluster_slots(&self) -> Reply {
        let mut out = Vec::new();
        let mut start = 0;
        while start < CLUSTER_SLOTS {
            let owner = self.slot_owner[start];
            // The run of slots with this owner, 16 at a time.
            let rest = &self.slot_owner[start..];
            let same = |c: &[u32]| c.iter().all(|&o| o == owner);
            let whole = rest.chunks_exact(16).take_while(|c| same(c)).count() * 16;
            let len = whole + rest[whole..].iter().take_while(|&&o| o == owner).count();
            let end = start + len - 1;
            if owner != NO_OWNER {
                let n = self.n(owner);
                let mut entry = vec![
                    Reply::Int(start as i64),
                    Reply::Int(end as i64),
                    self.node_reply(n),
                ];
                for &r in &n.slaves {
                    let r = self.n(r);
                    if self.replica_available(r) {
                        entry.push(self.node_reply(r));
                    }
                }
                out.push(Reply::Array(entry));
            }
            start = end + 1;
        }
        Reply::Array(out)
    }

    /// `isReplicaAvailable()`: not failed, and a replication offset other
    /// than 0 (mine as `replicationGetSlaveOffset()` gives it).
    fn replica_available(&self, r: &ClusterNode) -> bool {
        let offset = if r.flags & MYSELF != 0 {
            self.my_repl_offset()
        } else {
            r.repl_offset
        };
        !r.failed() && offset != 0
    }

    /// `addNodeToNodeReply()`: the preferred endpoint, the port, the node
    /// ID, then a map of the other endpoints (RESP2: a flat array). Nodes
    /// have no hostname yet (the bus does not carry it), so the map holds
    /// the ip unless the ip is the preferred endpoint.
    fn node_reply(&self, n: &ClusterNode) -> Reply {
        let ip = Reply::Bulk(super::render::ip_str(n.ip).into_bytes());
        let (endpoint, extra) = match self.setup.config.cluster_preferred_endpoint_type {
            EndpointType::Ip => (ip, vec![]),
            EndpointType::Hostname => (
                Reply::Bulk(b"?".to_vec()),
                vec![Reply::Bulk(b"ip".to_vec()), ip],
            ),
            EndpointType::UnknownEndpoint => (Reply::Nil, vec![Reply::Bulk(b"ip".to_vec()), ip]),
        };
        Reply::Array(vec![
            endpoint,
            Reply::Int(i64::from(n.port)),
            Reply::Bulk(n.name.hex().into_bytes()),
            Reply::Array(extra),
        ])
    }
}

/// The bytes of `reply` in RESP2, as the client reads them.
pub fn resp_len(reply: &Reply) -> u64 {
    match reply {
        Reply::Ok | Reply::Nil => 5,
        Reply::Int(i) => 3 + resp::digits_i64(*i),
        Reply::Bulk(b) => 5 + resp::digits(b.len() as u64) + b.len() as u64,
        Reply::Array(items) => {
            3 + resp::digits(items.len() as u64) + items.iter().map(resp_len).sum::<u64>()
        }
        Reply::Error(e) => 3 + e.len() as u64,
    }
}

/// The bytes of a request in RESP: `*<argc>`, then `$<len>` and the bytes
/// of each argument.
pub fn request_len(argv: &[&[u8]]) -> u64 {
    let lens: smallvec::SmallVec<[u64; 8]> = argv.iter().map(|a| a.len() as u64).collect();
    resp::multibulk_size_of(&lens)
}

#[cfg(test)]
mod tests {
    use super::super::bus::flags::*;
    use super::super::config::Config;
    use super::super::mstime;
    use super::super::route::tests::{replica_sim, Sim, A_SLOTS, B_SLOTS, MINE};
    use super::*;

    const T: SimTime = 1_000_000_000;

    fn run(s: &mut Sim, cmd: &str, client: &mut ClientFlags) -> ClientReply {
        let argv: Vec<&[u8]> = cmd.split(' ').map(str::as_bytes).collect();
        s.node.client_command(T, &argv, client, &mut Vec::new())
    }

    fn reply(s: &mut Sim, cmd: &str) -> Reply {
        match run(s, cmd, &mut ClientFlags::default()) {
            ClientReply::Done(e) => e.reply,
            other => panic!("{cmd}: {other:?}"),
        }
    }

    fn bulk(s: &str) -> Reply {
        Reply::Bulk(s.as_bytes().to_vec())
    }

    fn err(s: &str) -> Reply {
        Reply::Error(s.into())
    }

    #[test]
    fn serves_its_slots_from_its_keyspace_and_redirects_the_rest() {
        let mut s = Sim::cluster(Config::default());
        assert_eq!(reply(&mut s, "GET bar"), Reply::Nil);
        let done = run(&mut s, "SET bar v1 PX 5000", &mut ClientFlags::default());
        let ClientReply::Done(e) = done else { panic!() };
        assert_eq!(e.reply, Reply::Ok);
        // What the replication stream will carry: an absolute expiry.
        let at = (mstime(T) + 5000).to_string();
        assert_eq!(
            crate::node::argv::argvs(&e.propagate),
            [["SET", "bar", "v1", "PXAT", &at]
                .into_iter()
                .collect::<crate::node::argv::Argv>()]
        );
        assert_eq!(reply(&mut s, "GET bar"), bulk("v1"));
        assert_eq!(
            reply(&mut s, "INCR bar"),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(reply(&mut s, "GET foo"), err("MOVED 12182 10.0.0.48:6048"));
        assert_eq!(s.node.keyspace.len(), 1);
        // The cluster down: nothing is served.
        s.flag(0x30, FAIL);
        s.update_state();
        assert_eq!(
            reply(&mut s, "GET bar"),
            err("CLUSTERDOWN The cluster is down")
        );
    }

    #[test]
    fn asking_is_one_shot_and_readonly_sticks_until_readwrite() {
        let mut s = Sim::cluster(Config::default());
        let b = s.idx(0x30);
        s.node.importing_slots_from.insert(12182, b);
        let mut c = ClientFlags::default();
        assert_eq!(run(&mut s, "ASKING", &mut c), ClientReply::reply(Reply::Ok));
        assert!(c.asking);
        assert_eq!(
            run(&mut s, "SET foo 1", &mut c),
            ClientReply::Done(Executed {
                reply: Reply::Ok,
                propagate: vec![ReplCommand::from_slices(&[b"SET", b"foo", b"1"])],
            })
        );
        assert!(!c.asking, "cleared by the next command");
        assert_eq!(
            run(&mut s, "GET foo", &mut c),
            ClientReply::reply(err("MOVED 12182 10.0.0.48:6048"))
        );
        // An error reply clears it too.
        run(&mut s, "ASKING", &mut c);
        run(&mut s, "GET", &mut c);
        assert!(!c.asking);

        let mut r = replica_sim(Config::default());
        let mut c = ClientFlags::default();
        assert_eq!(
            run(&mut r, "GET bar", &mut c),
            ClientReply::reply(err("MOVED 5061 10.0.0.16:6016"))
        );
        run(&mut r, "READONLY", &mut c);
        assert!(c.readonly);
        assert_eq!(
            run(&mut r, "GET bar", &mut c),
            ClientReply::reply(Reply::Nil)
        );
        assert_eq!(
            run(&mut r, "SET bar 1", &mut c),
            ClientReply::reply(err("MOVED 5061 10.0.0.16:6016"))
        );
        run(&mut r, "READWRITE", &mut c);
        assert!(!c.readonly);
        assert_eq!(
            run(&mut r, "GET bar", &mut c),
            ClientReply::reply(err("MOVED 5061 10.0.0.16:6016"))
        );
        assert_eq!(
            run(&mut r, "READONLY x", &mut c),
            ClientReply::reply(err("ERR wrong number of arguments for 'readonly' command"))
        );
    }

    #[test]
    fn a_replica_hides_expired_keys_from_readonly_clients() {
        let mut r = replica_sim(Config::default());
        r.node.keyspace.execute(
            &[&b"SET"[..], b"bar", b"v", b"PXAT", b"1"],
            0,
            true,
            Caller::Master,
        );
        let mut c = ClientFlags {
            readonly: true,
            ..ClientFlags::default()
        };
        assert_eq!(
            run(&mut r, "GET bar", &mut c),
            ClientReply::reply(Reply::Nil)
        );
        assert_eq!(r.node.keyspace.len(), 1, "kept until the master's DEL");
    }

    #[test]
    fn paused_writes_block_then_are_checked_again() {
        let mut s = Sim::cluster(Config::default());
        s.node.election.mf_pause_end = mstime(T) + 10_000;
        let mut c = ClientFlags::default();
        assert_eq!(run(&mut s, "SET bar 1", &mut c), ClientReply::Blocked);
        assert_eq!(
            run(&mut s, "GET bar", &mut c),
            ClientReply::reply(Reply::Nil)
        );
        assert!(s.node.writes_paused());
        // When the pause is over the same command runs.
        let later = T + 10_001_000;
        let argv: [&[u8]; 3] = [b"SET", b"bar", b"1"];
        assert!(matches!(
            s.node.client_command(later, &argv, &mut c, &mut Vec::new()),
            ClientReply::Done(_)
        ));
        assert!(!s.node.writes_paused());
    }

    #[test]
    fn preview_changes_nothing() {
        let mut s = Sim::cluster(Config::default());
        reply(&mut s, "SET bar 1");
        let argv: [&[u8]; 2] = [b"INCR", b"bar"];
        let ClientReply::Done(p) = s.node.preview_command(&argv, ClientFlags::default()) else {
            panic!()
        };
        assert_eq!(p.reply, Reply::Int(2));
        assert_eq!(reply(&mut s, "GET bar"), bulk("1"));
    }

    fn node(ip: &str, port: i64, id: u8) -> Reply {
        Reply::Array(vec![
            bulk(ip),
            Reply::Int(port),
            Reply::Bulk(super::super::route::tests::id(id).hex().into_bytes()),
            Reply::Array(vec![]),
        ])
    }

    #[test]
    fn cluster_slots_lists_ranges_in_slot_order_with_available_replicas() {
        let mut s = Sim::cluster(Config::default());
        let me = s.node.myself;
        s.node.nm(me).ip = Some([10, 0, 0, 16]);
        // Replicas with no replication offset are not listed.
        let slots = |s: &Sim| s.node.cluster_slots();
        assert_eq!(
            slots(&s),
            Reply::Array(vec![
                Reply::Array(vec![
                    Reply::Int(0),
                    Reply::Int(5460),
                    node("10.0.0.16", 7000, 0x10)
                ]),
                Reply::Array(vec![
                    Reply::Int(5461),
                    Reply::Int(10922),
                    node("10.0.0.32", 6032, 0x20)
                ]),
                Reply::Array(vec![
                    Reply::Int(10923),
                    Reply::Int(16383),
                    node("10.0.0.48", 6048, 0x30)
                ]),
            ])
        );
        // With an offset a replica follows its master; a failed one is
        // left out, a failed master is not. A slot given to another node
        // splits the range; an unassigned slot is skipped.
        for (b, off) in [(0x40, 10), (0x50, 10), (0x60, 10)] {
            let i = s.idx(b);
            s.node.nm(i).repl_offset = off;
        }
        s.flag(0x50, FAIL);
        s.flag(0x30, FAIL);
        let b = s.idx(0x30);
        s.node.del_slot(100);
        s.node.del_slot(101);
        s.node.add_slot(b, 101);
        let Reply::Array(ranges) = slots(&s) else {
            panic!()
        };
        let heads: Vec<(i64, i64, usize)> = ranges
            .iter()
            .map(|r| match r {
                Reply::Array(v) => match (&v[0], &v[1]) {
                    (Reply::Int(a), Reply::Int(b)) => (*a, *b, v.len() - 2),
                    _ => panic!(),
                },
                _ => panic!(),
            })
            .collect();
        assert_eq!(
            heads,
            [
                (0, 99, 2),
                (101, 101, 2),
                (102, 5460, 2),
                (5461, 10922, 1),
                (10923, 16383, 2)
            ]
        );
        let Reply::Array(first) = &ranges[0] else {
            panic!()
        };
        assert_eq!(first[3], node("10.0.0.64", 6064, 0x40));
        assert_eq!(MINE.len() + A_SLOTS.len() + B_SLOTS.len(), CLUSTER_SLOTS);
    }

    #[test]
    fn cluster_slots_endpoints_follow_the_preferred_type() {
        let s = Sim::cluster(Config {
            cluster_preferred_endpoint_type: EndpointType::UnknownEndpoint,
            ..Config::default()
        });
        let Reply::Array(ranges) = s.node.cluster_slots() else {
            panic!()
        };
        let Reply::Array(a) = &ranges[1] else {
            panic!()
        };
        assert_eq!(
            a[2],
            Reply::Array(vec![
                Reply::Nil,
                Reply::Int(6032),
                Reply::Bulk(super::super::route::tests::id(0x20).hex().into_bytes()),
                Reply::Array(vec![bulk("ip"), bulk("10.0.0.32")]),
            ])
        );
        let s = Sim::cluster(Config {
            cluster_preferred_endpoint_type: EndpointType::Hostname,
            ..Config::default()
        });
        let Reply::Array(ranges) = s.node.cluster_slots() else {
            panic!()
        };
        let Reply::Array(a) = &ranges[1] else {
            panic!()
        };
        let Reply::Array(n) = &a[2] else { panic!() };
        assert_eq!(n[0], bulk("?"));
        assert_eq!(n[3], Reply::Array(vec![bulk("ip"), bulk("10.0.0.32")]));
    }

    #[test]
    fn resp_lengths() {
        assert_eq!(resp_len(&Reply::Ok), "+OK\r\n".len() as u64);
        assert_eq!(resp_len(&Reply::Nil), "$-1\r\n".len() as u64);
        assert_eq!(resp_len(&Reply::Int(-12)), ":-12\r\n".len() as u64);
        assert_eq!(resp_len(&bulk("hello")), "$5\r\nhello\r\n".len() as u64);
        assert_eq!(resp_len(&err("ERR x")), "-ERR x\r\n".len() as u64);
        assert_eq!(
            resp_len(&Reply::Array(vec![Reply::Int(1), bulk("")])),
            "*2\r\n:1\r\n$0\r\n\r\n".len() as u64
        );
        let v = "x".repeat(100);
        assert_eq!(
            request_len(&[b"SET", b"key:1", v.as_bytes()]),
            format!("*3\r\n$3\r\nSET\r\n$5\r\nkey:1\r\n$100\r\n{v}\r\n").len() as u64
        );
    }
}
