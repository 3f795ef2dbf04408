//! Client traffic: the populations' connections to the nodes, carried over
//! the simulated network, and the requests the nodes serve.
//!
//! Each client opens one TCP connection per node it talks to, when it
//! first sends there. A connection behaves as the nodes' own do (see the
//! parent module): its SYN is lost across a partition and retransmitted on
//! Linux's schedule; a SYN to a live host where the process is dead is
//! refused (RST) one round trip later; a crashed host does not answer;
//! a paused process's kernel completes the handshake and buffers what
//! arrives. Requests and replies travel in order on their direction of
//! the connection, sized as RESP, with the latency and loss between the
//! population and the node ("clients" in partitions and one-way rules;
//! clients are on no host). A message a partition blocks is lost, so the
//! client's timeout is what notices it.
//!
//! A client that drops a connection (after a timeout) stops reading it:
//! requests already sent are still read and executed by the node, their
//! replies discarded. A process that dies resets its connections: the
//! client learns of it one transit later (not after a host crash). A
//! write that a manual failover's pause blocks is kept by the node's
//! process and given again once the pause is over.

use super::{Event, Pending, ProcState, World, SYN_RETRY_AT_S};
use crate::client::keys::KeyNames;
use crate::client::{
    parse_reply, AddrBook, Answer, Argv, ClientEffect, ClientInput, ErrorTexts, OpRecord,
    Population, Redirection, Req, TimerKind,
};
use crate::engine::{actor_rng, Actor, EventQueue, Rng, SimTime, MS, SEC};
use crate::net::{Endpoint, Pipe};
use crate::node::keyspace::Reply;
use crate::node::route::ClientFlags;
use crate::node::serve::{request_len, resp_len, ClientReply, WaitRequest, UNBLOCKED_ERR};
use rustc_hash::FxHashMap;
use std::collections::VecDeque;

/// Bytes of a SYN, SYN-ACK or RST (as for the bus).
const HANDSHAKE_BYTES: u64 = 60;

/// What the world schedules for clients.
#[derive(Debug)]
pub enum ClientEvent {
    /// A population's timer.
    Timer { pop: u32, client: u32, token: u32 },
    /// The first timer of a population's queue of timeouts (`lane` 0) or
    /// retries (1).
    Lane { pop: u32, lane: u8 },
    /// A SYN reaches the node's host.
    SynArrive { conn: u32 },
    /// Time to retransmit a SYN that got no answer (or give up).
    SynRetry { conn: u32, attempt: u8 },
    /// The SYN-ACK reaches the client.
    Established { conn: u32 },
    /// A request becomes readable at the node (`READONLY` first on a new
    /// connection of a `read_from_replicas` population).
    Request { conn: u32, req: Req, readonly: bool },
    /// A reply becomes readable at the client.
    Reply {
        conn: u32,
        try_id: u32,
        answer: Answer,
    },
    /// The connection is gone: its SYN refused or unanswered (`refused`),
    /// or reset by the node's process dying.
    Reset { conn: u32, refused: bool },
    /// The timeout of a `WAIT` of connection `conn` blocked on incarnation
    /// `inc` of process `node`.
    WaitTimeout { node: u32, inc: u32, conn: u32 },
}

/// A client blocked in the `WAIT` that follows its write.
#[derive(Clone, Debug)]
pub(super) struct WaitingClient {
    conn: u32,
    try_id: u32,
    /// The write's reply, and the bytes of the replies before `WAIT`'s.
    answer: Answer,
    bytes: u64,
    wait: WaitRequest,
    deadline: Option<SimTime>,
}

/// One client's connection to one node.
#[derive(Debug)]
struct Conn {
    pop: u32,
    client: u32,
    node: u32,
    /// The node's process incarnation that accepted it.
    node_inc: u32,
    established: bool,
    /// The node's end is gone (its process died): requests are lost.
    server_closed: bool,
    /// The client dropped it: replies are discarded.
    client_gone: bool,
    syn_start: SimTime,
    /// A request written before the connection was established.
    queued: Option<Req>,
    /// The next request starts with `READONLY`.
    readonly_first: bool,
    /// The try of the last request written on it.
    last_try: u32,
    up: Pipe,
    down: Pipe,
    /// The node's view of the connection.
    flags: ClientFlags,
}

/// The client populations of a run and their connections.
pub struct Clients {
    pub pops: Vec<Population>,
    pub names: std::rc::Rc<KeyNames>,
    pub book: AddrBook,
    pub errors: ErrorTexts,
    /// Every finished try, in the order they ended.
    pub ops: Vec<OpRecord>,
    /// Every `-MOVED` and `-ASK` the clients got, in order.
    pub redirections: Vec<Redirection>,
    conns: Vec<Conn>,
    by_client: FxHashMap<(u32, u32), u32>,
    rng: Rng,
    argv: Argv,
    effects: Vec<ClientEffect>,
    /// Per population, its timers of a fixed delay (timeouts, retries),
    /// each kind in order: one event at a time stands for each queue.
    lanes: Vec<[Lane; 2]>,
}

/// Timers due in the order they were set: (time, client, token).
#[derive(Debug, Default)]
struct Lane {
    queue: VecDeque<(SimTime, u32, u32)>,
    /// An event stands for the queue's first timer.
    armed: bool,
}

impl Clients {
    /// The node process client connection `conn` goes to.
    /// The `repoint-clients` fault: every population sends to `node`.
    pub fn repoint(&mut self, node: u32) {
        for pop in &mut self.pops {
            pop.repoint(node);
        }
    }

    pub fn conn_node(&self, conn: u32) -> u32 {
        self.conns[conn as usize].node
    }

    /// The populations of `scenario` in a run with `seed`; each client's
    /// first timer goes into `queue`.
    pub(super) fn new(
        scenario: &crate::scenario::Scenario,
        seed: u64,
        queue: &mut EventQueue<Event>,
    ) -> Result<Clients, String> {
        let numbered = scenario
            .workloads
            .iter()
            .filter(|w| w.trace.is_none())
            .map(|w| w.keys)
            .max()
            .unwrap_or(0);
        let mut names = KeyNames::new(numbered)?;
        let mut traces = Vec::new();
        for w in &scenario.workloads {
            traces.push(match &w.trace {
                Some(path) => Some(crate::client::keys::read_trace(path, &mut names)?),
                None => None,
            });
        }
        let names = std::rc::Rc::new(names);
        let nodes = scenario.nodes.len() as u32;
        let plain = scenario.cluster.mode != crate::scenario::Mode::Cluster;
        let mut pops = Vec::new();
        let mut first = 0u32;
        for (i, (w, trace)) in scenario.workloads.iter().zip(traces).enumerate() {
            let pop = Population::new(i as u32, w, first, seed, nodes, trace, names.clone())
                .map_err(|e| format!("workload[{i}]: {e}"))?;
            pops.push(match scenario.cluster.mode {
                crate::scenario::Mode::Sentinel => pop.sentinel(),
                _ if plain => pop.plain(),
                _ => pop,
            });
            first = first
                .checked_add(w.clients)
                .ok_or("too many clients in all")?;
        }
        if pops.len() > usize::from(u16::MAX) {
            return Err(format!("at most {} workloads can run", u16::MAX));
        }
        let mut clients = Clients {
            pops,
            names,
            book: AddrBook::new(scenario.nodes.iter().map(|n| n.addr).collect()),
            errors: ErrorTexts::default(),
            ops: Vec::new(),
            redirections: Vec::new(),
            conns: Vec::new(),
            by_client: FxHashMap::default(),
            rng: actor_rng(seed, Actor::ClientNetwork),
            argv: Argv::default(),
            effects: Vec::new(),
            lanes: Vec::new(),
        };
        clients
            .lanes
            .resize_with(clients.pops.len(), Default::default);
        for p in 0..clients.pops.len() {
            clients.pops[p].start(&mut clients.effects);
            let effects = std::mem::take(&mut clients.effects);
            for e in effects {
                if let ClientEffect::Timer {
                    client, at, token, ..
                } = e
                {
                    let pop = p as u32;
                    queue.push(at, Event::Client(ClientEvent::Timer { pop, client, token }));
                }
            }
        }
        Ok(clients)
    }
}

impl World {
    /// Give `input` to population `pop` and carry out its effects.
    pub(super) fn population_input(
        &mut self,
        pop: u32,
        now: SimTime,
        input: ClientInput,
        queue: &mut EventQueue<Event>,
    ) {
        let c = &mut self.clients;
        c.pops[pop as usize].handle(now, input, &mut c.effects);
        let mut effects = std::mem::take(&mut self.clients.effects);
        for e in effects.drain(..) {
            match e {
                ClientEffect::Send { client, node, req } => {
                    self.client_send(pop, client, node, req, now, queue)
                }
                ClientEffect::Close { client, node } => {
                    let gc = self.clients.pops[pop as usize].first_client + client;
                    if let Some(conn) = self.clients.by_client.remove(&(gc, node)) {
                        let c = &mut self.clients.conns[conn as usize];
                        c.client_gone = true;
                        c.queued = None;
                    }
                }
                ClientEffect::Timer {
                    client,
                    at,
                    token,
                    kind,
                } => {
                    let lane = match kind {
                        TimerKind::Schedule => None,
                        TimerKind::Timeout => Some(0),
                        TimerKind::Retry => Some(1),
                    };
                    self.set_timer(pop, lane, (at, client, token), queue);
                }
                ClientEffect::Record(r) => self.clients.ops.push(r),
                ClientEffect::Redirected(r) => self.clients.redirections.push(r),
                ClientEffect::AskMaster { client } => self.ask_sentinels(pop, client, now, queue),
            }
        }
        self.clients.effects = effects;
    }

    /// A population's timer: among the events, or at the end of its
    /// lane's queue (the lanes' delays are fixed, so their timers come in
    /// order).
    fn set_timer(
        &mut self,
        pop: u32,
        lane: Option<u8>,
        (at, client, token): (SimTime, u32, u32),
        queue: &mut EventQueue<Event>,
    ) {
        let timer = Event::Client(ClientEvent::Timer { pop, client, token });
        let Some(i) = lane else {
            queue.push(at, timer);
            return;
        };
        let l = &mut self.clients.lanes[pop as usize][usize::from(i)];
        if l.queue.back().is_some_and(|b| b.0 > at) {
            queue.push(at, timer);
            return;
        }
        l.queue.push_back((at, client, token));
        if !l.armed {
            l.armed = true;
            queue.push(at, Event::Client(ClientEvent::Lane { pop, lane: i }));
        }
    }

    /// The timers of lane `i` of `pop` that are due.
    fn fire_lane(&mut self, pop: u32, i: u8, now: SimTime, queue: &mut EventQueue<Event>) {
        let (p, i_) = (pop as usize, usize::from(i));
        while let Some(&(at, client, token)) = self.clients.lanes[p][i_].queue.front() {
            if at > now {
                break;
            }
            self.clients.lanes[p][i_].queue.pop_front();
            self.population_input(pop, now, ClientInput::Timer { client, token }, queue);
        }
        // Timers replaced since they were set need no event.
        let c = &mut self.clients;
        let l = &mut c.lanes[p][i_];
        while let Some(&(_, client, token)) = l.queue.front() {
            if c.pops[p].timer_counts(client, token) {
                break;
            }
            l.queue.pop_front();
        }
        match l.queue.front() {
            Some(&(at, ..)) => {
                queue.push(at, Event::Client(ClientEvent::Lane { pop, lane: i }));
            }
            None => l.armed = false,
        }
    }

    /// The client's connection to `node`, opened (SYN sent) if it has none.
    fn client_send(
        &mut self,
        pop: u32,
        client: u32,
        node: u32,
        req: Req,
        now: SimTime,
        queue: &mut EventQueue<Event>,
    ) {
        let gc = self.clients.pops[pop as usize].first_client + client;
        let conn = match self.clients.by_client.get(&(gc, node)) {
            Some(&conn) => conn,
            None => {
                let conn = self.clients.conns.len() as u32;
                self.clients.conns.push(Conn {
                    pop,
                    client,
                    node,
                    node_inc: 0,
                    established: false,
                    server_closed: false,
                    client_gone: false,
                    syn_start: now,
                    queued: None,
                    readonly_first: self.clients.pops[pop as usize].read_from_replicas(),
                    last_try: 0,
                    up: Pipe::new(),
                    down: Pipe::new(),
                    flags: ClientFlags::default(),
                });
                self.clients.by_client.insert((gc, node), conn);
                self.client_syn(conn, 0, now, queue);
                conn
            }
        };
        let c = &mut self.clients.conns[conn as usize];
        c.last_try = req.try_id;
        if c.established {
            self.transmit_request(conn, req, now, queue);
        } else {
            c.queued = Some(req);
        }
    }

    fn client_reachable(&self, pop: u32, node: u32, to_node: bool) -> bool {
        let (a, b) = (Endpoint::Clients(pop), Endpoint::Node(node));
        let (from, to) = if to_node { (a, b) } else { (b, a) };
        self.host_up[self.procs[node as usize].host as usize] && self.net.reachable(from, to)
    }

    /// The transit of `bytes` between population `pop` and `node`.
    fn client_transit(
        &mut self,
        pop: u32,
        node: u32,
        to_node: bool,
        bytes: u64,
    ) -> crate::net::Transit {
        let (a, b) = (Endpoint::Clients(pop), Endpoint::Node(node));
        let (from, to) = if to_node { (a, b) } else { (b, a) };
        self.net.transit(from, to, bytes, &mut self.clients.rng)
    }

    fn client_syn(&mut self, conn: u32, attempt: u8, now: SimTime, queue: &mut EventQueue<Event>) {
        let c = &self.clients.conns[conn as usize];
        let (pop, node, syn_start) = (c.pop, c.node, c.syn_start);
        if self.client_reachable(pop, node, true) {
            let t = self.client_transit(pop, node, true, HANDSHAKE_BYTES);
            queue.push(
                now + t.total(),
                Event::Client(ClientEvent::SynArrive { conn }),
            );
        }
        let next = syn_start + SYN_RETRY_AT_S[attempt as usize] * SEC;
        let attempt = attempt + 1;
        queue.push(next, Event::Client(ClientEvent::SynRetry { conn, attempt }));
    }

    /// Write `req` on an established connection.
    fn transmit_request(
        &mut self,
        conn: u32,
        req: Req,
        now: SimTime,
        queue: &mut EventQueue<Event>,
    ) {
        let c = &mut self.clients.conns[conn as usize];
        let (pop, node) = (c.pop, c.node);
        let readonly = std::mem::take(&mut c.readonly_first);
        let mut bytes = self.clients.pops[pop as usize].request_len(&req);
        if readonly {
            bytes += request_len(&[b"READONLY"]);
        }
        if req.asking {
            bytes += request_len(&[b"ASKING"]);
        }
        if !self.client_reachable(pop, node, true) {
            return;
        }
        let t = self.client_transit(pop, node, true, bytes);
        let at = self.clients.conns[conn as usize].up.send(now, t);
        let event = ClientEvent::Request {
            conn,
            req,
            readonly,
        };
        queue.push(at, Event::Client(event));
    }

    /// Process `p` reads a request from connection `conn`.
    pub(super) fn serve_request(
        &mut self,
        p: u32,
        conn: u32,
        req: Req,
        readonly: bool,
        now: SimTime,
        queue: &mut EventQueue<Event>,
    ) {
        let proc = &mut self.procs[p as usize];
        let Some(node) = proc.node.as_mut() else {
            return;
        };
        let cl = &mut self.clients;
        let c = &mut cl.conns[conn as usize];
        let mut bytes = 0;
        for (first, cmd) in [(readonly, &b"READONLY"[..]), (req.asking, b"ASKING")] {
            if first {
                let reply = node.client_command(now, &[cmd], &mut c.flags, &mut self.effects);
                if let ClientReply::Done(e) = reply {
                    bytes += resp_len(&e.reply);
                }
            }
        }
        cl.pops[c.pop as usize].command(&req, &mut cl.argv);
        let reply = cl
            .argv
            .with(|argv| node.client_command(now, argv, &mut c.flags, &mut self.effects));
        let executed = match reply {
            ClientReply::Done(executed) => executed,
            ClientReply::Wait(_) => unreachable!("workloads send WAIT after a write"),
            ClientReply::Blocked => {
                let req = Req {
                    asking: false,
                    ..req
                };
                proc.blocked.push((conn, req));
                return;
            }
        };
        bytes += resp_len(&executed.reply);
        let answer = parse_reply(&executed.reply, &cl.book, &mut cl.errors);
        let wait = self.scenario.workloads[c.pop as usize]
            .wait
            .filter(|_| req.cmd.is_write() && !matches!(executed.reply, Reply::Error(_)));
        if let Some(w) = wait {
            // The workload's `WAIT` follows the write on the connection.
            let (n, t) = (w.replicas.to_string(), (w.timeout / MS).to_string());
            let argv = [&b"WAIT"[..], n.as_bytes(), t.as_bytes()];
            match node.client_command(now, &argv, &mut c.flags, &mut self.effects) {
                ClientReply::Done(e) => bytes += resp_len(&e.reply),
                ClientReply::Wait(wait) => {
                    let deadline =
                        (wait.timeout_ms > 0).then(|| now + wait.timeout_ms as SimTime * MS);
                    let inc = proc.inc;
                    proc.waiting.push(WaitingClient {
                        conn,
                        try_id: req.try_id,
                        answer,
                        bytes,
                        wait,
                        deadline,
                    });
                    self.flush_effects(p, now, queue);
                    if let Some(at) = deadline {
                        let ev = ClientEvent::WaitTimeout { node: p, inc, conn };
                        queue.push(at, Event::Client(ev));
                    }
                    return;
                }
                ClientReply::Blocked => unreachable!("WAIT is not a write"),
            }
        }
        // What the command fed to the replication stream goes out.
        self.flush_effects(p, now, queue);
        self.send_reply(p, conn, req.try_id, answer, bytes, now, queue);
    }

    /// Send the reply of try `try_id` (`bytes` of RESP) on connection
    /// `conn` from process `p`, unless the client is gone.
    #[allow(clippy::too_many_arguments)]
    fn send_reply(
        &mut self,
        p: u32,
        conn: u32,
        try_id: u32,
        answer: Answer,
        bytes: u64,
        now: SimTime,
        queue: &mut EventQueue<Event>,
    ) {
        let c = &self.clients.conns[conn as usize];
        let (pop, gone) = (c.pop, c.client_gone);
        if gone || !self.client_reachable(pop, p, false) {
            return;
        }
        let t = self.client_transit(pop, p, false, bytes);
        let at = self.clients.conns[conn as usize].down.send(now, t);
        queue.push(
            at,
            Event::Client(ClientEvent::Reply {
                conn,
                try_id,
                answer,
            }),
        );
    }

    /// Clients of process `p` blocked in `WAIT` whose replicas acknowledged
    /// enough (`processClientsWaitingReplicas`), or whose timeout passed
    /// (`replyToBlockedClientTimedOut`), get the number of replicas that
    /// did; if it turned replica meanwhile, `-UNBLOCKED`.
    fn unblock_waiting(&mut self, p: u32, now: SimTime, queue: &mut EventQueue<Event>) {
        let proc = &mut self.procs[p as usize];
        let Some(node) = proc.node.as_ref() else {
            return;
        };
        let demoted = node.replication().replica.masterhost().is_some();
        let mut done = Vec::new();
        proc.waiting.retain(|w| {
            let acks = node.count_acks(w.wait.offset);
            let over =
                demoted || acks >= w.wait.numreplicas || w.deadline.is_some_and(|d| d <= now);
            if over {
                done.push((w.clone(), acks));
            }
            !over
        });
        for (w, acks) in done {
            let (answer, reply) = if demoted {
                let reply = Reply::Error(UNBLOCKED_ERR.into());
                let cl = &mut self.clients;
                (parse_reply(&reply, &cl.book, &mut cl.errors), reply)
            } else {
                (w.answer, Reply::Int(acks))
            };
            let bytes = w.bytes + resp_len(&reply);
            self.send_reply(p, w.conn, w.try_id, answer, bytes, now, queue);
        }
    }

    /// Give the writes a manual failover's pause blocked on process `p`
    /// again, once the pause is over.
    pub(super) fn unblock(&mut self, p: u32, now: SimTime, queue: &mut EventQueue<Event>) {
        let proc = &mut self.procs[p as usize];
        if !proc.waiting.is_empty() {
            self.unblock_waiting(p, now, queue);
        }
        let proc = &mut self.procs[p as usize];
        let paused = proc.node.as_ref().is_none_or(|n| n.writes_paused());
        if proc.blocked.is_empty() || paused {
            return;
        }
        for (conn, req) in std::mem::take(&mut proc.blocked) {
            self.serve_request(p, conn, req, false, now, queue);
        }
    }

    /// Process `p` died: its connections are reset. Unless its host went
    /// down too, each client learns of it one transit later.
    pub(super) fn reset_client_conns(
        &mut self,
        p: u32,
        host_down: bool,
        now: SimTime,
        queue: &mut EventQueue<Event>,
    ) {
        for conn in 0..self.clients.conns.len() as u32 {
            let c = &mut self.clients.conns[conn as usize];
            if c.node != p || c.server_closed || c.client_gone {
                continue;
            }
            c.server_closed = true;
            let (pop, established) = (c.pop, c.established);
            let gc = self.clients.pops[pop as usize].first_client + c.client;
            if self.clients.by_client.get(&(gc, p)) == Some(&conn) {
                self.clients.by_client.remove(&(gc, p));
            }
            if established && !host_down && self.client_reachable(pop, p, false) {
                let t = self.client_transit(pop, p, false, HANDSHAKE_BYTES);
                let refused = false;
                queue.push(
                    now + t.total(),
                    Event::Client(ClientEvent::Reset { conn, refused }),
                );
            }
        }
    }

    /// The connection failed: the client hears of it now.
    fn client_conn_failed(
        &mut self,
        conn: u32,
        refused: bool,
        now: SimTime,
        queue: &mut EventQueue<Event>,
    ) {
        let c = &mut self.clients.conns[conn as usize];
        if c.client_gone {
            return;
        }
        c.client_gone = true;
        c.queued = None;
        let (pop, client, node, try_id) = (c.pop, c.client, c.node, c.last_try);
        let gc = self.clients.pops[pop as usize].first_client + client;
        if self.clients.by_client.get(&(gc, node)) == Some(&conn) {
            self.clients.by_client.remove(&(gc, node));
        }
        let input = ClientInput::ConnError {
            client,
            try_id,
            refused,
        };
        self.population_input(pop, now, input, queue);
    }

    /// Handle a client event; returns its digest for the trace hash.
    pub(super) fn client_event(
        &mut self,
        now: SimTime,
        event: ClientEvent,
        queue: &mut EventQueue<Event>,
    ) -> u64 {
        match event {
            ClientEvent::Timer { pop, client, token } => {
                self.population_input(pop, now, ClientInput::Timer { client, token }, queue);
                (11 << 56) ^ (u64::from(pop) << 40) ^ (u64::from(client) << 8) ^ u64::from(token)
            }
            ClientEvent::Lane { pop, lane } => {
                self.fire_lane(pop, lane, now, queue);
                (18 << 56) ^ (u64::from(pop) << 8) ^ u64::from(lane)
            }
            ClientEvent::SynArrive { conn } => {
                let c = &self.clients.conns[conn as usize];
                if c.established || c.client_gone {
                    return 12 << 56;
                }
                let (pop, node) = (c.pop, c.node);
                let target = &self.procs[node as usize];
                let (dead, inc) = (target.state == ProcState::Dead, target.inc);
                if self.client_reachable(pop, node, false) {
                    let t = self.client_transit(pop, node, false, HANDSHAKE_BYTES);
                    let event = if dead {
                        ClientEvent::Reset {
                            conn,
                            refused: true,
                        }
                    } else {
                        self.clients.conns[conn as usize].node_inc = inc;
                        ClientEvent::Established { conn }
                    };
                    queue.push(now + t.total(), Event::Client(event));
                }
                (12 << 56) | u64::from(conn)
            }
            ClientEvent::SynRetry { conn, attempt } => {
                let c = &self.clients.conns[conn as usize];
                if !c.established && !c.client_gone {
                    if usize::from(attempt) >= SYN_RETRY_AT_S.len() {
                        self.client_conn_failed(conn, true, now, queue);
                    } else {
                        self.client_syn(conn, attempt, now, queue);
                    }
                }
                (13 << 56) | u64::from(conn)
            }
            ClientEvent::Established { conn } => {
                let c = &self.clients.conns[conn as usize];
                if c.established || c.client_gone {
                    return 14 << 56;
                }
                let alive = self.alive(c.node, c.node_inc);
                if c.server_closed || !alive {
                    // The process died after its SYN-ACK: the first write
                    // is refused.
                    self.client_conn_failed(conn, true, now, queue);
                } else {
                    let c = &mut self.clients.conns[conn as usize];
                    c.established = true;
                    if let Some(req) = c.queued.take() {
                        self.transmit_request(conn, req, now, queue);
                    }
                }
                (14 << 56) | u64::from(conn)
            }
            ClientEvent::Request {
                conn,
                req,
                readonly,
            } => {
                let c = &self.clients.conns[conn as usize];
                let (p, inc) = (c.node, c.node_inc);
                if c.server_closed || !self.alive(p, inc) {
                    return 15 << 56;
                }
                let digest = (15 << 56)
                    ^ (u64::from(p) << 40)
                    ^ (u64::from(req.cmd as u8) << 32)
                    ^ u64::from(req.key)
                    ^ req.value.rotate_left(17);
                if self.holds_input(p, now) {
                    let pending = Pending::Client {
                        conn,
                        req,
                        readonly,
                    };
                    self.procs[p as usize].inbox.push(pending);
                } else {
                    self.serve_request(p, conn, req, readonly, now, queue);
                    self.unblock(p, now, queue);
                }
                digest
            }
            ClientEvent::Reply {
                conn,
                try_id,
                answer,
            } => {
                let c = &self.clients.conns[conn as usize];
                if c.client_gone {
                    return 16 << 56;
                }
                let (pop, client) = (c.pop, c.client);
                let digest = (16 << 56)
                    ^ (u64::from(pop) << 40)
                    ^ (u64::from(client) << 8)
                    ^ answer_digest(&answer);
                let input = ClientInput::Answer {
                    client,
                    try_id,
                    answer,
                };
                self.population_input(pop, now, input, queue);
                digest
            }
            ClientEvent::Reset { conn, refused } => {
                self.client_conn_failed(conn, refused, now, queue);
                (17 << 56) | (u64::from(refused) << 40) | u64::from(conn)
            }
            ClientEvent::WaitTimeout { node, inc, conn } => {
                // A paused or stalled process answers once it runs again.
                if self.alive(node, inc) && !self.holds_input(node, now) {
                    self.unblock_waiting(node, now, queue);
                }
                (19 << 56) | (u64::from(node) << 32) | u64::from(conn)
            }
        }
    }
}

/// What of a reply goes into the trace hash.
fn answer_digest(a: &Answer) -> u64 {
    match a {
        Answer::Ok => 1,
        Answer::Nil => 2,
        Answer::Int(i) => 3 ^ (*i as u64).rotate_left(8),
        Answer::Value(id) => 4 ^ id.rotate_left(8),
        Answer::Moved { slot, node } => {
            5 ^ (u64::from(*slot) << 8) ^ (u64::from(node.unwrap_or(u32::MAX)) << 24)
        }
        Answer::Ask { slot, node } => {
            6 ^ (u64::from(*slot) << 8) ^ (u64::from(node.unwrap_or(u32::MAX)) << 24)
        }
        Answer::Error { text, .. } => 7 ^ (u64::from(*text) << 8),
        Answer::Slots(r) => 8 ^ ((r.len() as u64) << 8),
    }
}
