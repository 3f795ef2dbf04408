//! Scripted tests: nodes wired by hand through a small network with latency
//! and bandwidth (one FIFO pipe per direction of each connection, as the
//! world's `net::Pipe`), driven by an event queue.

use std::collections::BTreeMap;

use super::*;
use crate::engine::{actor_rng, Actor, EventQueue, MS, SEC};
use crate::node::argv::Argv;
use crate::node::keyspace::{Caller, Keyspace};
use crate::node::INBOUND_LINK_BIT;

const LATENCY: SimTime = 100; // µs, one way

struct Proc {
    repl: Replication,
    ks: Keyspace,
    cfg: Config,
    rng: Rng,
    ip: [u8; 4],
    port: u16,
    cronloops: u64,
    next_inbound: LinkId,
    /// A save point's BGSAVE child runs (`ReplCtx::child_busy`).
    child_busy: bool,
}

struct Conn {
    /// (process, link) of each end: 0 the connecting side, 1 the accepting.
    ends: [(usize, LinkId); 2],
    busy_until: [SimTime; 2],
    last_arrival: [SimTime; 2],
    open: bool,
}

enum Ev {
    Cron(usize),
    Input(usize, ReplInput),
    Deliver {
        conn: usize,
        to: usize,
        msg: ReplMsg,
    },
    Drained {
        conn: usize,
        from: usize,
    },
    Write {
        p: usize,
        key: String,
        len: usize,
    },
}

struct Harness {
    now: SimTime,
    queue: EventQueue<Ev>,
    procs: Vec<Proc>,
    conns: Vec<Conn>,
    by_link: BTreeMap<(usize, LinkId), (usize, usize)>,
    bandwidth_bps: u64,
    /// Processes cut off from everyone: their traffic is lost, new
    /// connections to or from them are refused.
    isolated: Vec<bool>,
    notes: Vec<(SimTime, usize, ReplNote)>,
    /// When each process last received something.
    last_delivery: Vec<SimTime>,
    sent: Vec<(SimTime, usize, ReplMsg)>,
    connects: Vec<(SimTime, usize)>,
    refused_writes: Vec<(SimTime, String)>,
    /// Largest output buffer of any replica seen on each process, and when
    /// it first reached `watch_obuf`.
    watch_obuf: u64,
    obuf_crossed: Option<SimTime>,
}

fn argv(args: &[&str]) -> Vec<Vec<u8>> {
    args.iter().map(|a| a.as_bytes().to_vec()).collect()
}

impl Harness {
    fn new(n: usize, bandwidth_bps: u64, config: impl Fn(usize) -> Config) -> Harness {
        let mut queue = EventQueue::new();
        let procs = (0..n)
            .map(|i| {
                let mut rng = actor_rng(7, Actor::Node(i as u32));
                // Crons at different phases, as independent processes.
                queue.push(i as SimTime * 10 * MS, Ev::Cron(i));
                Proc {
                    repl: Replication::new(7000 + i as u16, 0, &mut rng),
                    ks: Keyspace::new(),
                    cfg: config(i),
                    rng,
                    ip: [10, 0, 0, i as u8 + 1],
                    port: 7000 + i as u16,
                    cronloops: 0,
                    next_inbound: INBOUND_LINK_BIT | 1,
                    child_busy: false,
                }
            })
            .collect();
        Harness {
            now: 0,
            queue,
            procs,
            conns: Vec::new(),
            by_link: BTreeMap::new(),
            bandwidth_bps,
            isolated: vec![false; n],
            notes: Vec::new(),
            last_delivery: vec![0; n],
            sent: Vec::new(),
            connects: Vec::new(),
            refused_writes: Vec::new(),
            watch_obuf: u64::MAX,
            obuf_crossed: None,
        }
    }

    fn input(&mut self, p: usize, input: ReplInput) {
        let mut out = Vec::new();
        let pr = &mut self.procs[p];
        let mut ctx = ReplCtx {
            config: &pr.cfg,
            keyspace: &mut pr.ks,
            rng: &mut pr.rng,
            fork_enomem: false,
            loading: false,
            child_busy: pr.child_busy,
        };
        pr.repl.handle(self.now, input, &mut ctx, &mut out);
        self.effects(p, out);
    }

    fn effects(&mut self, p: usize, out: Vec<ReplEffect>) {
        for e in out {
            match e {
                ReplEffect::Connect { link, ip, port } => self.connect(p, link, ip, port),
                ReplEffect::Send { link, msg } => self.send(p, link, msg),
                // No messages in flight here: the reply is already queued.
                ReplEffect::Close { link } | ReplEffect::CloseAfterReply { link } => {
                    self.close(p, link)
                }
                ReplEffect::Timer { at, timer } => {
                    self.queue.push(at, Ev::Input(p, ReplInput::Timer(timer)));
                }
                ReplEffect::Note(n) => self.notes.push((self.now, p, n)),
                // No disk in this harness.
                ReplEffect::Executed { .. } | ReplEffect::Persist(_) => {}
            }
        }
        for s in self.procs[p].repl.slaves() {
            if s.obuf_bytes >= self.watch_obuf && self.obuf_crossed.is_none() {
                self.obuf_crossed = Some(self.now);
            }
        }
    }

    fn connect(&mut self, p: usize, link: LinkId, ip: [u8; 4], port: u16) {
        self.connects.push((self.now, p));
        let target = self.procs.iter().position(|q| q.ip == ip && q.port == port);
        let Some(q) = target.filter(|&q| !self.isolated[q] && !self.isolated[p]) else {
            self.queue
                .push(self.now + SEC, Ev::Input(p, ReplInput::LinkError { link }));
            return;
        };
        let qlink = self.procs[q].next_inbound;
        self.procs[q].next_inbound += 1;
        let id = self.conns.len();
        self.conns.push(Conn {
            ends: [(p, link), (q, qlink)],
            busy_until: [0; 2],
            last_arrival: [0; 2],
            open: true,
        });
        self.by_link.insert((p, link), (id, 0));
        self.by_link.insert((q, qlink), (id, 1));
        self.queue.push(
            self.now + LATENCY,
            Ev::Input(q, ReplInput::Accepted { link: qlink }),
        );
        self.queue.push(
            self.now + 2 * LATENCY,
            Ev::Input(p, ReplInput::Connected { link }),
        );
    }

    fn send(&mut self, p: usize, link: LinkId, msg: ReplMsg) {
        let Some(&(id, side)) = self.by_link.get(&(p, link)) else {
            return;
        };
        self.sent.push((self.now, p, msg.clone()));
        let c = &mut self.conns[id];
        if !c.open {
            return;
        }
        let bits_us = u128::from(msg.wire_size()) * 8 * u128::from(SEC);
        let ser = bits_us.div_ceil(u128::from(self.bandwidth_bps)) as SimTime;
        let sent = self.now.max(c.busy_until[side]) + ser;
        c.busy_until[side] = sent;
        let at = (sent + LATENCY).max(c.last_arrival[side]);
        c.last_arrival[side] = at;
        let to = c.ends[1 - side].0;
        let bulk = msg.is_bulk();
        if self.isolated[p] || self.isolated[to] {
            return; // lost, and the socket never drains
        }
        self.queue.push(
            at,
            Ev::Deliver {
                conn: id,
                to: 1 - side,
                msg,
            },
        );
        if bulk {
            self.queue.push(
                sent,
                Ev::Drained {
                    conn: id,
                    from: side,
                },
            );
        }
    }

    fn close(&mut self, p: usize, link: LinkId) {
        let Some(&(id, side)) = self.by_link.get(&(p, link)) else {
            return;
        };
        let c = &mut self.conns[id];
        if !c.open {
            return;
        }
        c.open = false;
        let (q, qlink) = c.ends[1 - side];
        // The FIN is lost too if either side is cut off: the other end
        // finds out by its own timeout.
        if !self.isolated[p] && !self.isolated[q] {
            self.queue.push(
                self.now + LATENCY,
                Ev::Input(q, ReplInput::LinkError { link: qlink }),
            );
        }
    }

    /// Cut `p` off: its connections break (both ends see an error) and its
    /// traffic is lost until [`Harness::heal`].
    fn isolate(&mut self, p: usize) {
        self.isolated[p] = true;
    }

    fn heal(&mut self, p: usize) {
        self.isolated[p] = false;
    }

    /// Both ends of every connection of `p` see it break.
    fn break_links(&mut self, p: usize) {
        for id in 0..self.conns.len() {
            let c = &mut self.conns[id];
            if c.open && (c.ends[0].0 == p || c.ends[1].0 == p) {
                c.open = false;
                for (q, l) in c.ends {
                    self.queue.push(
                        self.now + LATENCY,
                        Ev::Input(q, ReplInput::LinkError { link: l }),
                    );
                }
            }
        }
    }

    fn run_until(&mut self, t: SimTime) {
        while self.queue.peek_time().is_some_and(|at| at <= t) {
            let (at, _, ev) = self.queue.pop().expect("peeked");
            self.now = at;
            match ev {
                Ev::Cron(p) => {
                    let cronloops = self.procs[p].cronloops;
                    self.procs[p].cronloops += 1;
                    self.queue.push(at + 100 * MS, Ev::Cron(p));
                    self.input(
                        p,
                        ReplInput::Cron {
                            cronloops,
                            mf_paused: false,
                        },
                    );
                }
                Ev::Input(p, input) => self.input(p, input),
                Ev::Deliver { conn, to, msg } => {
                    let c = &self.conns[conn];
                    let (q, link) = c.ends[to];
                    if c.open && !self.isolated[q] {
                        self.last_delivery[q] = at;
                        self.input(q, ReplInput::Recv { link, msg });
                    }
                }
                Ev::Drained { conn, from } => {
                    let c = &self.conns[conn];
                    let (q, link) = c.ends[from];
                    if c.open {
                        self.input(q, ReplInput::Drained { link });
                    }
                }
                Ev::Write { p, key, len } => {
                    let value = "v".repeat(len);
                    let _ = self.write(p, &["SET", &key, &value]);
                }
            }
        }
        self.now = t;
    }

    fn run_for(&mut self, d: SimTime) {
        self.run_until(self.now + d);
    }

    /// A client write on `p`: refused without enough good replicas, else
    /// executed and fed to the replicas.
    fn write(&mut self, p: usize, args: &[&str]) -> Result<(), String> {
        let pr = &mut self.procs[p];
        if !pr.repl.check_good_replicas_status(&pr.cfg) {
            self.refused_writes
                .push((self.now, NOREPLICAS_ERR.to_string()));
            return Err(NOREPLICAS_ERR.to_string());
        }
        let ex = pr
            .ks
            .execute(&argv(args), mstime(self.now), false, Caller::Client);
        let mut out = Vec::new();
        for cmd in ex.propagate {
            pr.repl
                .replication_feed_slaves(self.now, cmd, &pr.cfg, &mut out);
        }
        self.effects(p, out);
        Ok(())
    }

    /// `SET w<i % keys> <len bytes>` every `every` from now until `until`.
    fn schedule_writes(
        &mut self,
        p: usize,
        until: SimTime,
        every: SimTime,
        keys: usize,
        len: usize,
    ) {
        let mut t = self.now + every;
        let mut i = 0;
        while t < until {
            let key = format!("w{}", i % keys);
            self.queue.push(t, Ev::Write { p, key, len });
            t += every;
            i += 1;
        }
    }

    fn set_master(&mut self, r: usize, m: usize) {
        let (ip, port) = (self.procs[m].ip, self.procs[m].port);
        let mut out = Vec::new();
        self.procs[r]
            .repl
            .replication_set_master(self.now, ip, port, &mut out);
        self.effects(r, out);
    }

    fn unset_master(&mut self, p: usize) {
        let mut out = Vec::new();
        let pr = &mut self.procs[p];
        pr.repl
            .replication_unset_master(self.now, &mut pr.rng, &pr.cfg, &mut out);
        self.effects(p, out);
    }

    fn repl(&self, p: usize) -> &Replication {
        &self.procs[p].repl
    }

    fn notes_of(&self, p: usize) -> impl Iterator<Item = (SimTime, &ReplNote)> + '_ {
        self.notes
            .iter()
            .filter(move |n| n.1 == p)
            .map(|n| (n.0, &n.2))
    }

    fn first_note(&self, p: usize, f: impl Fn(&ReplNote) -> bool) -> Option<SimTime> {
        self.notes_of(p).find(|(_, n)| f(n)).map(|(t, _)| t)
    }

    fn count_notes(&self, p: usize, f: impl Fn(&ReplNote) -> bool) -> usize {
        self.notes_of(p).filter(|(_, n)| f(n)).count()
    }

    /// Replica `r` holds exactly master `m`'s data at the same offset.
    fn assert_in_sync(&self, m: usize, r: usize) {
        let (mr, rr) = (self.repl(m), self.repl(r));
        assert_eq!(rr.replica.repl_state(), ReplState::Connected);
        assert_eq!(rr.master_repl_offset(), mr.master_repl_offset(), "offsets");
        assert_eq!(rr.slave_repl_offset(), mr.master_repl_offset());
        assert_eq!(rr.replid(), mr.replid());
        assert!(
            same_data(&self.procs[m].ks, &self.procs[r].ks),
            "datasets differ"
        );
    }
}

fn same_data(a: &Keyspace, b: &Keyspace) -> bool {
    a.len() == b.len()
        && (0..a.len())
            .filter_map(|i| a.key_at(i))
            .all(|(k, e)| b.peek(k) == Some(e))
}

fn with(f: impl Fn(&mut Config)) -> impl Fn(usize) -> Config {
    move |_| {
        let mut c = Config::default();
        f(&mut c);
        c
    }
}

const GBIT: u64 = 1_000_000_000;

/// Master 0 with `keys` keys, replica 1 syncing from it.
fn synced_pair(config: impl Fn(usize) -> Config, keys: usize) -> Harness {
    let mut h = Harness::new(2, GBIT, config);
    for i in 0..keys {
        h.write(0, &["SET", &format!("k{i}"), "value"]).unwrap();
    }
    h.set_master(1, 0);
    h.run_for(10 * SEC + 500 * MS);
    h.assert_in_sync(0, 1);
    h
}

#[test]
fn handshake_full_sync_then_streaming() {
    let mut h = Harness::new(2, GBIT, |_| Config::default());
    for i in 0..100 {
        h.write(0, &["SET", &format!("k{i}"), "value"]).unwrap();
    }
    // No replica, no backlog: the offset does not move.
    assert_eq!(h.repl(0).master_repl_offset(), 0);
    let old_replid = h.repl(0).replid();
    let own = h.repl(1).replid();
    h.set_master(1, 0);
    h.run_for(10 * SEC + 500 * MS);

    // The handshake, in order, then the diskless transfer.
    // A master turning replica offers its own history
    // (`replicationCacheMasterUsingMyself`): `PSYNC <its replid> 1`, which
    // the master refuses (ID mismatch) with a full resync. The replica
    // pings with a newline while it flushes and loads, then ACKs.
    let from_replica: Vec<String> = h
        .sent
        .iter()
        .filter(|s| s.1 == 1)
        .take(6)
        .map(|s| format!("{:?}", s.2))
        .collect();
    assert_eq!(
        from_replica,
        [
            "Ping".to_string(),
            "ReplconfListeningPort { port: 7001 }".into(),
            "ReplconfCapa".into(),
            format!("Psync {{ replid: Some({own:?}), offset: 1 }}"),
            "Newline".into(),
            "ReplconfAck { offset: 0 }".into(),
        ]
    );
    assert_eq!(h.repl(0).stats.sync_partial_err, 1);
    // The first replica created the backlog and a new history.
    assert_ne!(h.repl(0).replid(), old_replid);
    let psync_at = h
        .sent
        .iter()
        .find(|s| matches!(s.2, ReplMsg::Psync { .. }))
        .unwrap()
        .0;
    let fork_at = h
        .first_note(0, |n| matches!(n, ReplNote::Fork { diskless: true, .. }))
        .unwrap();
    // repl-diskless-sync-delay 5 in whole seconds of `server.unixtime`,
    // checked by replicationCron once a second.
    assert_eq!((mstime(fork_at) / 1000) - (mstime(psync_at) / 1000), 5);
    h.assert_in_sync(0, 1);
    assert_eq!(h.repl(0).stats.sync_full, 1);
    // No write yet: the first PING (14 bytes, every 10 s) is the stream.
    assert_eq!(h.repl(1).master_repl_offset(), 14);

    // Streaming: a SELECT 0 (23 bytes) precedes the first command after the
    // full sync, then commands and PINGs (14 bytes) every 10 s.
    h.write(0, &["SET", "a", "1"]).unwrap();
    let set_a = resp::multibulk_size(&Argv::from_iter(&["SET", "a", "1"])) as i64;
    assert_eq!(h.repl(0).master_repl_offset(), 14 + 23 + set_a);
    h.write(0, &["SET", "b", "2"]).unwrap();
    assert_eq!(h.repl(0).master_repl_offset(), 14 + 23 + 2 * set_a);
    h.run_for(30 * SEC);
    let pings = (h.repl(0).master_repl_offset() - 14 - 23 - 2 * set_a) / 14;
    assert_eq!(pings, 3);
    h.assert_in_sync(0, 1);
    assert_eq!(h.procs[1].ks.peek(b"b").unwrap().value.to_bytes(), b"2");
    // The master saw the replica's ACK of everything.
    let s = h.repl(0).slaves().next().unwrap();
    assert_eq!(s.state, SlaveReplState::Online);
    assert_eq!(s.ack_offset, h.repl(0).master_repl_offset());
    assert_eq!(s.listening_port, 7001);
    assert_eq!(h.repl(0).master.connected_slaves(), 1);
    assert_eq!(h.repl(0).master.current_cow_size(), None);
}

#[test]
fn disk_based_sync_sends_the_file_then_the_buffered_stream() {
    let mut h = Harness::new(2, GBIT, with(|c| c.repl_diskless_sync = false));
    for i in 0..1000 {
        h.write(0, &["SET", &format!("k{i}"), "value"]).unwrap();
    }
    h.set_master(1, 0);
    h.schedule_writes(0, 3 * SEC, 10 * MS, 50, 100);
    h.run_for(5 * SEC);
    h.assert_in_sync(0, 1);
    // No delay: the BGSAVE starts on PSYNC.
    let psync_at = h
        .sent
        .iter()
        .find(|s| matches!(s.2, ReplMsg::Psync { .. }))
        .unwrap()
        .0;
    let fork_at = h
        .first_note(0, |n| {
            matches!(
                n,
                ReplNote::Fork {
                    diskless: false,
                    ..
                }
            )
        })
        .unwrap();
    assert!(fork_at - psync_at < MS);
    // The master kept the replica alive with newlines while it waited.
    assert!(h
        .first_note(0, |n| matches!(n, ReplNote::ReplicaOnline { .. }))
        .is_some());
}

#[test]
fn partial_resync_after_a_short_disconnect() {
    let mut h = synced_pair(|_| Config::default(), 100);
    h.schedule_writes(0, h.now + SEC, 10 * MS, 20, 50);
    h.run_for(SEC + 500 * MS);
    h.isolate(1);
    h.break_links(1);
    // Writes the replica misses while it cannot reconnect.
    for i in 0..5 {
        h.write(0, &["SET", &format!("missed{i}"), "v"]).unwrap();
    }
    h.run_for(2 * SEC);
    h.heal(1);
    h.run_for(2 * SEC);
    // The replica reconnected with its cached master and got the missing
    // bytes from the backlog.
    assert_eq!(h.repl(0).stats.sync_partial_ok, 1);
    assert_eq!(h.repl(0).stats.sync_full, 1);
    assert_eq!(
        h.count_notes(1, |n| matches!(n, ReplNote::PartialResyncAccepted { .. })),
        1
    );
    h.assert_in_sync(0, 1);
    // The replica kept its selected database: no SELECT after +CONTINUE.
    let before = h.repl(0).master_repl_offset();
    h.write(0, &["SET", "x", "y"]).unwrap();
    let set = resp::multibulk_size(&Argv::from_iter(&["SET", "x", "y"])) as i64;
    assert_eq!(h.repl(0).master_repl_offset() - before, set);
    h.run_for(SEC);
    h.assert_in_sync(0, 1);
}

#[test]
fn full_resync_when_the_backlog_was_overrun() {
    let mut h = synced_pair(|_| Config::default(), 100);
    h.isolate(1);
    h.break_links(1);
    // 2 MB of writes while the replica is away: more than the 1 MB backlog.
    h.schedule_writes(0, h.now + 4 * SEC, 2 * MS, 20, 1000);
    h.run_for(5 * SEC);
    let (first, _) = h.repl(0).repl_backlog().unwrap();
    assert!(first > h.repl(1).slave_repl_offset() + 1);
    let before = h.repl(0).stats;
    h.heal(1);
    h.run_for(10 * SEC);
    assert_eq!(
        h.repl(0).stats.sync_partial_err,
        before.sync_partial_err + 1
    );
    assert_eq!(h.repl(0).stats.sync_full, before.sync_full + 1);
    h.assert_in_sync(0, 1);
}

#[test]
fn psync2_siblings_and_the_old_master_continue_after_a_promotion() {
    let mut h = Harness::new(3, GBIT, |_| Config::default());
    for i in 0..100 {
        h.write(0, &["SET", &format!("k{i}"), "value"]).unwrap();
    }
    h.set_master(1, 0);
    h.set_master(2, 0);
    h.run_for(10 * SEC);
    h.schedule_writes(0, h.now + 2 * SEC, 10 * MS, 20, 50);
    h.run_for(3 * SEC);
    h.assert_in_sync(0, 1);
    h.assert_in_sync(0, 2);
    let old_id = h.repl(0).replid();
    let offset = h.repl(1).master_repl_offset();

    // Failover: the master is cut off, replica 1 is promoted.
    h.isolate(0);
    h.break_links(0);
    h.run_for(SEC);
    h.unset_master(1);
    assert_eq!(h.repl(1).replid2(), old_id);
    assert_eq!(h.repl(1).second_replid_offset(), offset + 1);
    assert_ne!(h.repl(1).replid(), old_id);
    // The sibling follows the new master with its cached master: +CONTINUE.
    h.set_master(2, 1);
    h.run_for(SEC);
    assert_eq!(h.repl(1).stats.sync_partial_ok, 1);
    assert_eq!(h.repl(1).stats.sync_full, 0);
    assert_eq!(h.repl(2).replid(), h.repl(1).replid());
    assert_eq!(h.repl(2).replid2(), old_id);
    // A new master's stream starts with a SELECT (`replicationUnsetMaster`
    // resets `slaveseldb`).
    let before = h.repl(1).master_repl_offset();
    h.write(1, &["SET", "after", "failover"]).unwrap();
    let set = resp::multibulk_size(&Argv::from_iter(&["SET", "after", "failover"])) as i64;
    assert_eq!(h.repl(1).master_repl_offset() - before, 23 + set);
    h.run_for(SEC);
    h.assert_in_sync(1, 2);

    // The old master comes back and is made a replica of the new one: it
    // synthesizes a cached master from its own history and continues too.
    h.heal(0);
    h.set_master(0, 1);
    h.run_for(SEC);
    assert_eq!(h.repl(1).stats.sync_partial_ok, 2);
    assert_eq!(h.repl(1).stats.sync_full, 0);
    h.assert_in_sync(1, 0);
}

#[test]
fn an_old_master_that_took_writes_after_the_promotion_needs_a_full_resync() {
    let mut h = synced_pair(|_| Config::default(), 100);
    h.isolate(1);
    h.break_links(1);
    h.run_for(SEC);
    // The replica is promoted while the old master, still a master on its
    // side of the partition, accepts a write.
    h.unset_master(1);
    h.write(0, &["SET", "lost", "write"]).unwrap();
    h.heal(1);
    h.set_master(0, 1);
    h.run_for(10 * SEC);
    assert_eq!(h.repl(1).stats.sync_partial_err, 1);
    assert_eq!(h.repl(1).stats.sync_full, 1);
    h.assert_in_sync(1, 0);
    assert!(h.procs[0].ks.peek(b"lost").is_none());
}

#[test]
fn noauth_loop_without_masterauth_and_the_retries_with_a_wrong_one() {
    let mut h = Harness::new(2, GBIT, |i| {
        let mut c = Config::default();
        if i == 0 {
            c.requirepass = Some("secret".into());
        }
        c
    });
    h.set_master(1, 0);
    h.run_for(2 * SEC);
    // Every command gets -NOAUTH; PSYNC's error makes the replica fall back
    // to SYNC, whose error aborts the transfer and reconnects at once
    // (`cancelReplicationHandshake(1)`): a tight loop, never synced.
    let attempts = h.connects.iter().filter(|c| c.1 == 1).count();
    assert!(attempts > 100, "{attempts} attempts in 2 s");
    assert_eq!(h.repl(0).stats.sync_full, 0);
    assert_ne!(h.repl(1).replica.repl_state(), ReplState::Connected);
    let noauth = h
        .sent
        .iter()
        .filter(|s| s.1 == 0 && matches!(&s.2, ReplMsg::Error(e) if e == NOAUTH_ERR))
        .count();
    assert!(noauth >= 5 * (attempts - 1));
    assert!(h
        .sent
        .iter()
        .any(|s| s.1 == 1 && matches!(s.2, ReplMsg::Sync)));

    // A wrong password: AUTH fails, the handshake stops, replicationCron
    // reconnects once a second.
    h.procs[1].cfg.masterauth = Some("wrong".into());
    h.run_for(SEC);
    let before = h.connects.len();
    h.run_for(5 * SEC);
    let per_second = (h.connects.len() - before) as f64 / 5.0;
    assert!((0.8..=1.2).contains(&per_second), "{per_second} attempts/s");
    assert!(h
        .sent
        .iter()
        .any(|s| matches!(&s.2, ReplMsg::Error(e) if e == WRONGPASS_ERR)));

    // The right one: synced.
    h.procs[1].cfg.masterauth = Some("secret".into());
    h.run_for(10 * SEC);
    h.assert_in_sync(0, 1);
}

#[test]
fn output_buffer_hard_limit_drops_the_sync_forever_until_the_limit_is_raised() {
    let mb = 1 << 20;
    // 64 MB over 100 Mbit/s: ~5.4 s of transfer, while 10 MB/s of writes
    // pile up in the replica's output buffer.
    let mut h = Harness::new(2, 100_000_000, |_| {
        let mut c = Config::default();
        c.client_output_buffer_limit.replica.hard_limit_bytes = 16 * mb;
        c.client_output_buffer_limit.replica.soft_limit_bytes = 0;
        c
    });
    let big = "x".repeat(mb as usize - 64);
    for i in 0..64 {
        h.write(0, &["SET", &format!("big{i}"), &big]).unwrap();
    }
    h.set_master(1, 0);
    h.schedule_writes(0, 200 * SEC, 25 * MS, 8, 256 * 1024);
    h.run_for(60 * SEC);
    let drops = h.count_notes(0, |n| {
        matches!(
            n,
            ReplNote::ReplicaDropped {
                reason: DropReason::ObufHardLimit { .. },
                ..
            }
        )
    });
    assert!(drops >= 4, "{drops} drops in 60 s");
    assert_eq!(h.repl(0).stats.sync_full as usize, drops + 1);
    assert!(h
        .first_note(1, |n| matches!(n, ReplNote::SyncFinished { .. }))
        .is_none());
    // Every attempt paid a fork; the writes during each one dirtied pages.
    let cow: Vec<u64> = h
        .notes_of(0)
        .filter_map(|(_, n)| match n {
            ReplNote::ChildDone { cow_bytes, .. } => Some(*cow_bytes),
            _ => None,
        })
        .collect();
    assert!(cow.len() >= drops && cow.iter().all(|&b| b > 0 && b % 4096 == 0));

    h.procs[0]
        .cfg
        .client_output_buffer_limit
        .replica
        .hard_limit_bytes = 256 * mb;
    // The attempt in progress (forked at 59 s) goes on; while its child
    // runs, the copy-on-write grows with the writes.
    let cow = h.repl(0).master.current_cow_size().expect("a child runs");
    h.run_for(500 * MS);
    assert!(h.repl(0).master.current_cow_size().unwrap() > cow);
    h.run_for(29 * SEC + 500 * MS);
    assert!(h
        .first_note(1, |n| matches!(n, ReplNote::SyncFinished { .. }))
        .is_some());
    assert_eq!(h.repl(1).replica.repl_state(), ReplState::Connected);
    h.run_until(201 * SEC);
    h.assert_in_sync(0, 1);
}

#[test]
fn output_buffer_soft_limit_needs_the_seconds_over_it() {
    let mb = 1 << 20;
    let mut h = Harness::new(2, 20_000_000, |_| {
        let mut c = Config::default();
        c.client_output_buffer_limit.replica.hard_limit_bytes = 0;
        c.client_output_buffer_limit.replica.soft_limit_bytes = 4 * mb;
        c.client_output_buffer_limit.replica.soft_seconds = 10;
        c
    });
    let big = "x".repeat(mb as usize - 64);
    for i in 0..64 {
        h.write(0, &["SET", &format!("big{i}"), &big]).unwrap();
    }
    h.watch_obuf = 4 * mb;
    h.set_master(1, 0);
    // 64 MB at 20 Mbit/s: ~27 s of transfer; 1 MB/s of writes meanwhile.
    h.schedule_writes(0, 40 * SEC, 100 * MS, 8, 100 * 1024);
    h.run_for(40 * SEC);
    let crossed = h.obuf_crossed.expect("the buffer went over the soft limit");
    let dropped = h
        .first_note(0, |n| {
            matches!(
                n,
                ReplNote::ReplicaDropped {
                    reason: DropReason::ObufSoftLimit { .. },
                    ..
                }
            )
        })
        .expect("dropped");
    // Over the limit for more than 10 s, counted in whole seconds.
    let over = dropped - crossed;
    assert!(
        over > 10 * SEC && over <= 12 * SEC,
        "{over} µs over the soft limit"
    );
}

/// One child at a time: while a save point's BGSAVE runs, a replica's full
/// sync waits; when it exits (`checkChildrenDone`) the fork starts.
#[test]
fn a_full_sync_waits_for_a_save_child() {
    let mut h = Harness::new(2, GBIT, |_| Config {
        repl_diskless_sync_delay_s: 0,
        ..Config::default()
    });
    h.write(0, &["SET", "k", "v"]).unwrap();
    h.procs[0].child_busy = true;
    h.set_master(1, 0);
    h.run_for(3 * SEC);
    let fork = |n: &ReplNote| matches!(n, ReplNote::Fork { .. });
    assert_eq!(h.first_note(0, fork), None, "no fork beside the save child");
    // No `+FULLRESYNC` before the fork: the replica waits for its reply.
    assert_eq!(h.repl(1).replica.repl_state(), ReplState::ReceivePsyncReply);
    h.procs[0].child_busy = false;
    let mut out = Vec::new();
    let pr = &mut h.procs[0];
    let mut ctx = ReplCtx {
        config: &pr.cfg,
        keyspace: &mut pr.ks,
        rng: &mut pr.rng,
        fork_enomem: false,
        loading: false,
        child_busy: false,
    };
    pr.repl.child_exited(h.now, &mut ctx, &mut out);
    h.effects(0, out);
    assert_eq!(h.first_note(0, fork), Some(h.now));
    h.run_for(SEC);
    h.assert_in_sync(0, 1);
}

#[test]
fn repl_timeout_on_both_sides() {
    let mut h = synced_pair(|_| Config::default(), 100);
    h.run_for(3 * SEC);
    let cut = h.now;
    // What the election reads: link up, last interaction within a second.
    let r = &h.repl(1).replica;
    assert!(r.master_link_up());
    assert!(mstime(cut) - r.master_last_interaction_ms().unwrap() < 11_000);
    assert_eq!(r.repl_down_since_ms(), 0);
    // Nothing crosses any more, but no connection breaks.
    h.isolate(1);
    h.run_for(70 * SEC);
    // The replica: no data nor PING for more than 60 s (the last PING may
    // have come up to 10 s before the cut).
    let down_at = h.first_note(1, |n| *n == ReplNote::MasterLinkDown).unwrap();
    let down = down_at - cut;
    assert!(down > 50 * SEC && down <= 62 * SEC, "{down}");
    let r = &h.repl(1).replica;
    assert!(!r.master_link_up());
    assert_eq!(r.master_last_interaction_ms(), None);
    assert_eq!(r.repl_down_since_ms(), mstime(down_at) / 1000 * 1000);
    // Its cached master keeps the offset it reached.
    assert_eq!(
        h.repl(1).slave_repl_offset(),
        h.repl(1).master_repl_offset()
    );
    // The master: no ACK for more than 60 s (the replica ACKs every second).
    let dropped = h
        .first_note(0, |n| {
            matches!(
                n,
                ReplNote::ReplicaDropped {
                    reason: DropReason::Timeout,
                    ..
                }
            )
        })
        .unwrap()
        - cut;
    assert!(dropped > 60 * SEC && dropped <= 62 * SEC, "{dropped}");
    h.heal(1);
    h.run_for(5 * SEC);
    assert_eq!(h.repl(0).stats.sync_partial_ok, 1);
    h.assert_in_sync(0, 1);
}

#[test]
fn repl_timeout_during_the_transfer() {
    let mb = 1 << 20;
    let mut h = Harness::new(2, 10_000_000, |_| Config::default());
    let big = "x".repeat(mb as usize - 64);
    for i in 0..32 {
        h.write(0, &["SET", &format!("big{i}"), &big]).unwrap();
    }
    h.set_master(1, 0);
    h.run_for(12 * SEC);
    assert!(h.repl(1).replica.transfer_read().is_some_and(|r| r > 0));
    let cut = h.now;
    h.isolate(0);
    h.run_for(70 * SEC);
    // "Timeout receiving bulk data from MASTER": the replica drops the
    // transfer after more than 60 s without data (what was on the wire at
    // the cut still arrived), and tries again.
    let last_data = h.last_delivery[1];
    let retry = h.connects.iter().find(|c| c.1 == 1 && c.0 > cut).unwrap().0;
    let idle = retry - last_data;
    assert!(idle > 60 * SEC && idle <= 62 * SEC, "{idle}");
    // The master's diskless child could not write for 60 s either.
    assert!(h
        .first_note(0, |n| matches!(
            n,
            ReplNote::ReplicaDropped {
                reason: DropReason::Timeout,
                ..
            }
        ))
        .is_some());
    assert!(h
        .first_note(0, |n| matches!(n, ReplNote::ChildDone { ok: false, .. }))
        .is_some());
}

#[test]
fn min_replicas_to_write_refuses_writes_without_good_replicas() {
    let mut h = Harness::new(2, GBIT, with(|c| c.min_replicas_to_write = 1));
    assert_eq!(
        h.write(0, &["SET", "a", "1"]),
        Err(NOREPLICAS_ERR.to_string())
    );
    assert_eq!(
        NOREPLICAS_ERR,
        "NOREPLICAS Not enough good replicas to write."
    );
    h.set_master(1, 0);
    h.run_for(10 * SEC);
    assert_eq!(h.repl(0).master.good_slaves(), 1);
    assert_eq!(h.write(0, &["SET", "a", "1"]), Ok(()));
    // The replica stops ACKing: after more than min-replicas-max-lag (10 s)
    // the next refresh finds no good replica.
    let cut = h.now;
    h.isolate(1);
    h.run_for(9 * SEC);
    assert_eq!(h.write(0, &["SET", "b", "1"]), Ok(()));
    h.run_for(4 * SEC);
    assert!(h.write(0, &["SET", "c", "1"]).is_err());
    let refused = h.refused_writes.iter().map(|r| r.0).max().unwrap();
    assert!(refused - cut > 10 * SEC);
    // A replica's own writes are not subject to it.
    assert!(h.repl(1).check_good_replicas_status(&h.procs[1].cfg));
}

#[test]
fn a_full_sync_of_1_gb_over_1_gbit_takes_fork_plus_transfer_plus_load() {
    let mib = 1usize << 20;
    let mut h = Harness::new(2, GBIT, |_| Config::default());
    // 1024 values that fill a 1 MiB jemalloc class each: 1 GiB of data.
    let value = "v".repeat(mib - 16);
    for i in 0..1024 {
        h.write(0, &["SET", &format!("key:{i:04}"), &value])
            .unwrap();
    }
    let used = h.procs[0].ks.used_memory();
    assert!(used > 1 << 30 && used < (1 << 30) + (1 << 20), "{used}");
    h.set_master(1, 0);
    h.run_for(25 * SEC);
    h.assert_in_sync(0, 1);

    let psync_at = h
        .sent
        .iter()
        .find(|s| matches!(s.2, ReplMsg::Psync { .. }))
        .unwrap()
        .0;
    let (fork_at, fork_us, rdb_bytes) = h
        .notes_of(0)
        .find_map(|(t, n)| match n {
            ReplNote::Fork {
                fork_us, rdb_bytes, ..
            } => Some((t, *fork_us, *rdb_bytes)),
            _ => None,
        })
        .unwrap();
    let (loaded_at, load_us) = h
        .notes_of(1)
        .find_map(|(t, n)| match n {
            ReplNote::LoadStarted { load_us, .. } => Some((t, *load_us)),
            _ => None,
        })
        .unwrap();
    let synced_at = h
        .first_note(1, |n| matches!(n, ReplNote::SyncFinished { .. }))
        .unwrap();

    // Fork: 10 ms per GiB.
    assert_eq!(fork_us, 10_000);
    // The RDB: the values and a few bytes per key.
    assert!(rdb_bytes > used - 2 * (1 << 20) && rdb_bytes < used);
    // On the wire: `$EOF:<mark>\r\n`, the RDB, the mark; at 1 Gbit/s.
    let wire = 47 + rdb_bytes + 40;
    let transfer = wire * 8 * SEC / GBIT;
    assert!(transfer > 8 * SEC && transfer < 9 * SEC);
    // The child serialises faster (300 MB/s) than the link: the transfer
    // ends one link-time after the fork, plus the first chunk's production
    // and the latency.
    let first_chunk = rdb::rdb_save_us(used) * rdb::RDB_CHUNK_BYTES / wire;
    let expected = fork_us + first_chunk + transfer + LATENCY;
    let got = loaded_at - fork_at;
    assert!(
        got >= expected && got < expected + 5 * MS,
        "{got} vs {expected}"
    );
    // Loading: 0.65 µs per key + 1 ns per byte, ~1.07 s.
    assert_eq!(load_us, rdb::rdb_load_us(1024, rdb_bytes));
    assert_eq!(synced_at - loaded_at, load_us);
    // Seconds in all: the 5 s diskless delay, ~8.6 s of transfer, ~1 s of load.
    let total = synced_at - psync_at;
    assert!(total > 14 * SEC && total < 16 * SEC, "{total}");
}

#[test]
fn bad_input_does_not_panic() {
    let mut h = synced_pair(|_| Config::default(), 10);
    // A stream from the wrong offset is a protocol error: the replica
    // drops the link without caching the master and syncs again.
    let link = h
        .by_link
        .iter()
        .find(|(k, _)| k.0 == 1)
        .map(|(k, _)| k.1)
        .unwrap();
    let off = h.repl(1).slave_repl_offset();
    h.input(
        1,
        ReplInput::Recv {
            link,
            msg: ReplMsg::Stream {
                offset: off + 100,
                bytes: 5,
                commands: vec![],
            },
        },
    );
    assert_eq!(h.repl(1).replica.repl_state(), ReplState::Connecting);
    // Nonsense to the master: replies as commands, unknown links, PSYNC to
    // offsets far outside the backlog, stale timers.
    let inbound = h.repl(0).slaves().next().map(|s| s.link);
    for msg in [
        ReplMsg::Pong,
        ReplMsg::Psync {
            replid: Some(h.repl(0).replid()),
            offset: i64::MAX,
        },
        ReplMsg::ReplconfAck { offset: -5 },
    ] {
        h.input(
            0,
            ReplInput::Recv {
                link: INBOUND_LINK_BIT | 999,
                msg: msg.clone(),
            },
        );
        if let Some(l) = inbound {
            h.input(0, ReplInput::Recv { link: l, msg });
        }
    }
    h.input(0, ReplInput::Timer(ReplTimer::RdbChunk { child: 77 }));
    h.input(1, ReplInput::Timer(ReplTimer::LoadDone { transfer: 77 }));
    h.input(1, ReplInput::Drained { link: 12345 });
    h.run_for(10 * SEC);
    h.assert_in_sync(0, 1);
}
