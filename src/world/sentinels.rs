//! Sentinel processes (`cluster.mode = "sentinel"`): each runs a
//! [`Sentinel`] on a host of its own, with world index `nodes + i` for
//! the network and the faults (kill, restart, pause, resume, isolate,
//! partitions, `crash-host`).
//!
//! A sentinel's commands and their replies cross the network as single
//! messages, with the latency and loss between the two processes (drawn
//! from a stream of their own): a message a partition or one-way rule
//! blocks is lost (the link is not reset; Sentinel's own timeouts notice),
//! a command to a dead process on a live host comes back as a link error
//! (RST) one round trip later, a paused process keeps what arrives and
//! handles it when resumed. A node keeps the sentinels whose pub/sub link
//! reached it as subscribers of `__sentinel__:hello` until it dies (they
//! then get a link error); a `PUBLISH` there reaches every subscriber, the
//! sender included. `SLAVEOF` is the node's `REPLICAOF` (and `CONFIG
//! REWRITE`: a restart keeps it), then `CLIENT KILL TYPE normal`: the
//! clients' connections to the node are reset.
//!
//! Clients ask the sentinels for the master as redis-py's `Sentinel`
//! (`discover_master`) does: in order, the first running sentinel that
//! answers with a master it does not flag S_DOWN or O_DOWN; a dead
//! sentinel costs a round trip (refused), an unreachable or paused one
//! the workload's `timeout`.

use super::{Event, HistoryEvent, HistoryKind, ProcState, World};
use crate::client::ClientInput;
use crate::engine::{actor_rng, Actor, EventQueue, Rng, SimTime, MS};
use crate::net::{Addr, Endpoint};
use crate::sentinel::{Cmd, Effect, Input, InstanceInfo, Reply, Sentinel, SentinelConf};

/// Bytes of a sentinel command or reply on the wire (RESP, small).
const SENTINEL_MSG_BYTES: u64 = 200;

/// One Sentinel process.
pub struct SentinelProc {
    pub name: String,
    pub addr: Addr,
    pub host: u32,
    pub state: ProcState,
    /// Bumped at every death.
    pub inc: u32,
    pub sentinel: Option<Sentinel>,
    /// `sentinel.conf` as last flushed.
    conf: Option<SentinelConf>,
    inbox: Vec<SentinelEvent>,
    timer_missed: bool,
}

/// What the world schedules for sentinels.
#[derive(Debug)]
pub enum SentinelEvent {
    /// `sentinelTimer` of sentinel `s`'s incarnation `inc`.
    Timer { s: u32, inc: u32 },
    /// A sentinel's command reaches process `to` (world index: a node, or
    /// `nodes + j` for sentinel `j`), incarnation `to_inc`.
    Command {
        from: u32,
        from_inc: u32,
        to: u32,
        to_inc: u32,
        cmd: Cmd,
    },
    /// A reply, a link error or a hello reaches sentinel `s`.
    Input { s: u32, inc: u32, input: Input },
    /// Sentinel `s`'s pub/sub link reaches node `p`: it subscribes.
    Subscribe {
        s: u32,
        inc: u32,
        p: u32,
        p_inc: u32,
    },
    /// The sentinels' answer to a client of population `pop`.
    MasterAddr {
        pop: u32,
        client: u32,
        node: Option<u32>,
    },
}

/// The sentinels of a world and what they share.
#[derive(Default)]
pub struct Sentinels {
    pub procs: Vec<SentinelProc>,
    /// Per node: the sentinels `(s, inc)` subscribed to its hello channel.
    subscribers: Vec<Vec<(u32, u32)>>,
    rng: Option<Rng>,
}

impl Sentinels {
    pub fn new(world_nodes: usize, scenario: &crate::scenario::Scenario, seed: u64) -> Sentinels {
        let Some(spec) = &scenario.sentinel else {
            return Sentinels::default();
        };
        Sentinels {
            procs: spec
                .sentinels
                .iter()
                .map(|s| SentinelProc {
                    name: s.name.clone(),
                    addr: s.addr,
                    host: s.host,
                    state: ProcState::Dead,
                    inc: 0,
                    sentinel: None,
                    conf: None,
                    inbox: Vec::new(),
                    timer_missed: false,
                })
                .collect(),
            subscribers: vec![Vec::new(); world_nodes],
            rng: Some(actor_rng(seed, Actor::SentinelNetwork)),
        }
    }
}

impl World {
    /// The world index of sentinel `s`.
    fn sentinel_index(&self, s: u32) -> u32 {
        self.procs.len() as u32 + s
    }

    fn host_of(&self, i: u32) -> u32 {
        match (i as usize).checked_sub(self.procs.len()) {
            None => self.procs[i as usize].host,
            Some(s) => self.sentinels.procs[s].host,
        }
    }

    /// Whether a message from world index `a` reaches `b` now.
    fn s_reachable(&self, a: u32, b: u32) -> bool {
        self.host_up[self.host_of(b) as usize]
            && self.net.reachable(Endpoint::Node(a), Endpoint::Node(b))
    }

    fn s_transit(&mut self, a: Endpoint, b: Endpoint) -> SimTime {
        let rng = self.sentinels.rng.as_mut().expect("sentinel mode");
        self.net.transit(a, b, SENTINEL_MSG_BYTES, rng).total()
    }

    /// The world index listening at `addr` (a node's client port or a
    /// sentinel's port).
    fn s_target(&self, addr: Addr) -> Option<u32> {
        if let Some(p) = self.proc_at_addr(addr.ip, u32::from(addr.port)) {
            return Some(p);
        }
        let s = self.sentinels.procs.iter().position(|s| s.addr == addr)?;
        Some(self.sentinel_index(s as u32))
    }

    /// `(state, inc)` of world index `i`.
    fn s_state(&self, i: u32) -> (ProcState, u32) {
        match (i as usize).checked_sub(self.procs.len()) {
            None => (self.procs[i as usize].state, self.procs[i as usize].inc),
            Some(s) => (self.sentinels.procs[s].state, self.sentinels.procs[s].inc),
        }
    }

    /// The name of world index `i`: a node's, or a sentinel's.
    pub fn name_of(&self, i: u32) -> &str {
        match (i as usize).checked_sub(self.procs.len()) {
            None => &self.procs[i as usize].name,
            Some(s) => &self.sentinels.procs[s].name,
        }
    }

    /// How many sentinels run (not dead, not paused).
    pub fn sentinels_running(&self) -> usize {
        self.sentinels
            .procs
            .iter()
            .filter(|s| s.state == ProcState::Running)
            .count()
    }

    /// Start (or restart) sentinel `s` from its `sentinel.conf`.
    pub(super) fn start_sentinel(&mut self, s: u32, now: SimTime, queue: &mut EventQueue<Event>) {
        let idx = self.sentinel_index(s);
        let master = self.procs[0].addr;
        let spec = self.scenario.sentinel.as_ref().expect("sentinel mode");
        let sp = &mut self.sentinels.procs[s as usize];
        sp.inc += 1;
        let mut rng = actor_rng(self.seed, Actor::Node(idx));
        rng.set_word_pos(u128::from(sp.inc) << 64);
        let phase = rand::RngExt::random_range(&mut rng, 0..100 * MS);
        sp.sentinel = Some(Sentinel::new(
            sp.addr,
            master,
            spec,
            sp.conf.as_ref(),
            rng,
            now,
        ));
        sp.state = ProcState::Running;
        sp.inbox.clear();
        sp.timer_missed = false;
        let inc = sp.inc;
        queue.push(
            now + phase,
            Event::Sentinel(Box::new(SentinelEvent::Timer { s, inc })),
        );
    }

    /// Sentinel `s` dies (`kill`, or its host crashed).
    pub(super) fn kill_sentinel(&mut self, s: u32) {
        let sp = &mut self.sentinels.procs[s as usize];
        if sp.state == ProcState::Dead {
            return;
        }
        sp.state = ProcState::Dead;
        sp.sentinel = None;
        sp.inbox.clear();
        sp.inc += 1;
    }

    pub(super) fn pause_sentinel(&mut self, s: u32) {
        let sp = &mut self.sentinels.procs[s as usize];
        if sp.state == ProcState::Running {
            sp.state = ProcState::Paused;
        }
    }

    /// `SIGCONT`: what arrived meanwhile, then the overdue timer.
    pub(super) fn resume_sentinel(&mut self, s: u32, now: SimTime, queue: &mut EventQueue<Event>) {
        let sp = &mut self.sentinels.procs[s as usize];
        if sp.state != ProcState::Paused {
            return;
        }
        sp.state = ProcState::Running;
        let inbox = std::mem::take(&mut sp.inbox);
        let missed = std::mem::replace(&mut sp.timer_missed, false);
        for e in inbox {
            self.sentinel_event(now, e, queue);
        }
        if missed {
            let inc = self.sentinels.procs[s as usize].inc;
            self.sentinel_event(now, SentinelEvent::Timer { s, inc }, queue);
        }
    }

    /// Node `p` died: the sentinels subscribed to it get a reset.
    pub(super) fn sentinels_node_died(
        &mut self,
        p: u32,
        host_down: bool,
        now: SimTime,
        queue: &mut EventQueue<Event>,
    ) {
        let Some(subs) = self.sentinels.subscribers.get_mut(p as usize) else {
            return;
        };
        let subs = std::mem::take(subs);
        if host_down {
            return;
        }
        let to = self.procs[p as usize].addr;
        for (s, inc) in subs {
            let idx = self.sentinel_index(s);
            if self.s_reachable(p, idx) {
                let t = self.s_transit(Endpoint::Node(p), Endpoint::Node(idx));
                let input = Input::LinkError { to };
                queue.push(
                    now + t,
                    Event::Sentinel(Box::new(SentinelEvent::Input { s, inc, input })),
                );
            }
        }
    }

    /// Give `input` to sentinel `s` and carry out its effects.
    fn sentinel_input(
        &mut self,
        s: u32,
        input: Input,
        now: SimTime,
        queue: &mut EventQueue<Event>,
    ) -> SimTime {
        let mut out = Vec::new();
        let sp = &mut self.sentinels.procs[s as usize];
        let sentinel = sp.sentinel.as_mut().expect("running sentinel");
        let delay = sentinel.handle(now, input, &mut out);
        sp.conf = Some(sentinel.conf());
        self.sentinel_effects(s, out, now, queue);
        delay
    }

    fn sentinel_effects(
        &mut self,
        s: u32,
        effects: Vec<Effect>,
        now: SimTime,
        queue: &mut EventQueue<Event>,
    ) {
        let inc = self.sentinels.procs[s as usize].inc;
        for e in effects {
            match e {
                Effect::Connect { to, pubsub } => {
                    let Some((t, p_inc, d)) = self.sentinel_link(s, to, now, queue) else {
                        continue;
                    };
                    if pubsub && (t as usize) < self.procs.len() {
                        let ev = SentinelEvent::Subscribe {
                            s,
                            inc,
                            p: t,
                            p_inc,
                        };
                        queue.push(now + d, Event::Sentinel(Box::new(ev)));
                    }
                }
                Effect::Send { to, cmd } => {
                    let Some((t, to_inc, d)) = self.sentinel_link(s, to, now, queue) else {
                        continue;
                    };
                    let ev = SentinelEvent::Command {
                        from: s,
                        from_inc: inc,
                        to: t,
                        to_inc,
                        cmd,
                    };
                    queue.push(now + d, Event::Sentinel(Box::new(ev)));
                }
                Effect::Event(e) => {
                    let about = self.s_target(e.instance);
                    self.history.push(HistoryEvent {
                        at: now,
                        proc: None,
                        kind: HistoryKind::Sentinel {
                            sentinel: s,
                            kind: e.kind,
                            about,
                            detail: e.detail,
                        },
                    });
                }
            }
        }
    }

    /// Sentinel `s` sends to `to`: the world index there, its incarnation
    /// and the transit, or `None` when the message is lost (unreachable)
    /// or refused (a dead process: the link error comes back a round trip
    /// later).
    fn sentinel_link(
        &mut self,
        s: u32,
        to: Addr,
        now: SimTime,
        queue: &mut EventQueue<Event>,
    ) -> Option<(u32, u32, SimTime)> {
        let me = self.sentinel_index(s);
        let t = self.s_target(to)?;
        if !self.s_reachable(me, t) {
            return None;
        }
        let (state, t_inc) = self.s_state(t);
        let d = self.s_transit(Endpoint::Node(me), Endpoint::Node(t));
        if state != ProcState::Dead {
            return Some((t, t_inc, d));
        }
        if self.s_reachable(t, me) {
            let inc = self.sentinels.procs[s as usize].inc;
            let input = Input::LinkError { to };
            queue.push(
                now + 2 * d,
                Event::Sentinel(Box::new(SentinelEvent::Input { s, inc, input })),
            );
        }
        None
    }

    /// Send `reply` from world index `from` to sentinel `s` (incarnation
    /// `inc`), if the network lets it through.
    fn sentinel_reply(
        &mut self,
        from: u32,
        s: u32,
        inc: u32,
        reply: Reply,
        now: SimTime,
        queue: &mut EventQueue<Event>,
    ) {
        let to = self.sentinel_index(s);
        if !self.s_reachable(from, to) {
            return;
        }
        let addr = match (from as usize).checked_sub(self.procs.len()) {
            None => self.procs[from as usize].addr,
            Some(j) => self.sentinels.procs[j].addr,
        };
        let d = self.s_transit(Endpoint::Node(from), Endpoint::Node(to));
        let input = Input::Reply { from: addr, reply };
        queue.push(
            now + d,
            Event::Sentinel(Box::new(SentinelEvent::Input { s, inc, input })),
        );
    }

    /// `INFO` of node `p` as Sentinel reads it.
    fn instance_info(&self, p: u32, now: SimTime) -> InstanceInfo {
        let node = self.procs[p as usize].node.as_ref().expect("a live node");
        let r = node.replication();
        let master_host = r.replica.masterhost().map(|(ip, port)| Addr::new(ip, port));
        InstanceInfo {
            run_id: node.my_id(),
            role_master: node.is_master(),
            slaves: if node.is_master() {
                r.slaves()
                    .filter_map(|sl| {
                        let conn = self.conn_of_link.get(&(p, super::Plane::Repl, sl.link))?;
                        let replica = self.conns[*conn as usize].a;
                        Some(Addr::new(
                            self.procs[replica as usize].addr.ip,
                            sl.listening_port,
                        ))
                    })
                    .collect()
            } else {
                Vec::new()
            },
            master_link_up: r.replica.master_link_up(),
            master_link_down_since_s: (master_host.is_some() && !r.replica.master_link_up()).then(
                || {
                    let since = r.replica.repl_down_since_ms();
                    if since == 0 {
                        // Never connected: Redis prints -1 ("down since ever").
                        -1
                    } else {
                        (crate::node::mstime(now) - since) / 1000
                    }
                },
            ),
            master_host,
            slave_priority: node.setup.config.replica_priority,
            slave_repl_offset: r.slave_repl_offset(),
        }
    }

    /// A sentinel event.
    pub(super) fn sentinel_event(
        &mut self,
        now: SimTime,
        event: SentinelEvent,
        queue: &mut EventQueue<Event>,
    ) -> u64 {
        match event {
            SentinelEvent::Timer { s, inc } => {
                let sp = &mut self.sentinels.procs[s as usize];
                if sp.inc != inc || sp.state == ProcState::Dead {
                    return 30 << 56;
                }
                if sp.state == ProcState::Paused {
                    sp.timer_missed = true;
                    return 30 << 56;
                }
                let delay = self.sentinel_input(s, Input::Timer, now, queue);
                queue.push(
                    now + delay,
                    Event::Sentinel(Box::new(SentinelEvent::Timer { s, inc })),
                );
                (30 << 56) | u64::from(s)
            }
            SentinelEvent::Input { s, inc, input } => {
                let sp = &mut self.sentinels.procs[s as usize];
                if sp.inc != inc || sp.state == ProcState::Dead {
                    return 31 << 56;
                }
                if sp.state == ProcState::Paused {
                    sp.inbox.push(SentinelEvent::Input { s, inc, input });
                    return 31 << 56;
                }
                self.sentinel_input(s, input, now, queue);
                (31 << 56) | u64::from(s)
            }
            SentinelEvent::Subscribe { s, inc, p, p_inc } => {
                let proc = &self.procs[p as usize];
                if proc.inc == p_inc && proc.state != ProcState::Dead {
                    self.sentinels.subscribers[p as usize].push((s, inc));
                }
                (32 << 56) | (u64::from(s) << 32) | u64::from(p)
            }
            SentinelEvent::MasterAddr { pop, client, node } => {
                let input = ClientInput::MasterAddr { client, node };
                self.population_input(pop, now, input, queue);
                (33 << 56) | (u64::from(pop) << 32) | u64::from(client)
            }
            SentinelEvent::Command {
                from,
                from_inc,
                to,
                to_inc,
                cmd,
            } => {
                let digest = (34 << 56) | (u64::from(from) << 32) | u64::from(to);
                let (state, inc) = self.s_state(to);
                if inc != to_inc || state == ProcState::Dead {
                    return digest;
                }
                let node = (to as usize) < self.procs.len();
                let held = if node {
                    self.holds_input(to, now)
                } else {
                    state == ProcState::Paused
                };
                if held {
                    let e = SentinelEvent::Command {
                        from,
                        from_inc,
                        to,
                        to_inc,
                        cmd,
                    };
                    match (to as usize).checked_sub(self.procs.len()) {
                        None => self.procs[to as usize]
                            .inbox
                            .push(super::Pending::Sentinel(Box::new(e))),
                        Some(j) => self.sentinels.procs[j].inbox.push(e),
                    }
                    return digest;
                }
                match (to as usize).checked_sub(self.procs.len()) {
                    None => self.sentinel_command_at_node(to, from, from_inc, cmd, now, queue),
                    Some(j) => {
                        let sp = &mut self.sentinels.procs[j];
                        let mut out = Vec::new();
                        let sentinel = sp.sentinel.as_mut().expect("running sentinel");
                        let reply = sentinel.command(now, cmd, &mut out);
                        sp.conf = Some(sentinel.conf());
                        self.sentinel_effects(j as u32, out, now, queue);
                        self.sentinel_reply(to, from, from_inc, reply, now, queue);
                    }
                }
                digest
            }
        }
    }

    /// Node `p` handles sentinel `from`'s command.
    pub(super) fn sentinel_command_at_node(
        &mut self,
        p: u32,
        from: u32,
        from_inc: u32,
        cmd: Cmd,
        now: SimTime,
        queue: &mut EventQueue<Event>,
    ) {
        let reply = match cmd {
            Cmd::Ping => {
                let node = self.procs[p as usize].node.as_ref().expect("a live node");
                if node.loading() {
                    Reply::Loading
                } else {
                    Reply::Pong
                }
            }
            Cmd::Info => Reply::Info(Box::new(self.instance_info(p, now))),
            Cmd::Publish(hello) => {
                let via = self.procs[p as usize].addr;
                let subs = self.sentinels.subscribers[p as usize].clone();
                for (s, inc) in subs {
                    let idx = self.sentinel_index(s);
                    if self.s_reachable(p, idx) {
                        let d = self.s_transit(Endpoint::Node(p), Endpoint::Node(idx));
                        let input = Input::Hello {
                            via,
                            hello: hello.clone(),
                        };
                        queue.push(
                            now + d,
                            Event::Sentinel(Box::new(SentinelEvent::Input { s, inc, input })),
                        );
                    }
                }
                Reply::Published
            }
            Cmd::SlaveOf(to) => {
                let master = to.and_then(|a| self.proc_at_addr(a.ip, u32::from(a.port)));
                if to.is_none() || master.is_some() {
                    if let Some(Ok(_)) = self.replicaof(p, master, now, queue) {
                        self.replicaof[p as usize] = master;
                    }
                    // CLIENT KILL TYPE normal.
                    self.reset_client_conns(p, false, now, queue);
                }
                Reply::Ok
            }
            Cmd::IsMasterDownByAddr { .. } => Reply::Ok,
        };
        self.sentinel_reply(p, from, from_inc, reply, now, queue);
    }

    /// A client of population `pop` asks the sentinels for the master
    /// (redis-py's `discover_master`).
    pub(super) fn ask_sentinels(
        &mut self,
        pop: u32,
        client: u32,
        now: SimTime,
        queue: &mut EventQueue<Event>,
    ) {
        let timeout = self.scenario.workloads[pop as usize].timeout;
        let me = Endpoint::Clients(pop);
        let mut delay = 0;
        let mut node = None;
        for j in 0..self.sentinels.procs.len() {
            let idx = self.sentinel_index(j as u32);
            let there = Endpoint::Node(idx);
            let reachable = self.host_up[self.sentinels.procs[j].host as usize]
                && self.net.reachable(me, there)
                && self.net.reachable(there, me);
            let state = self.sentinels.procs[j].state;
            match state {
                ProcState::Running if reachable => {
                    delay += self.s_transit(me, there) + self.s_transit(there, me);
                    let sentinel = self.sentinels.procs[j].sentinel.as_ref();
                    let addr = sentinel.and_then(Sentinel::master_for_clients);
                    node = addr.and_then(|a| self.proc_at_addr(a.ip, u32::from(a.port)));
                    if node.is_some() {
                        break;
                    }
                }
                ProcState::Dead if reachable => {
                    delay += self.s_transit(me, there) + self.s_transit(there, me);
                }
                _ => delay += timeout,
            }
        }
        let ev = SentinelEvent::MasterAddr { pop, client, node };
        queue.push(now + delay, Event::Sentinel(Box::new(ev)));
    }
}
