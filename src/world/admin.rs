//! The cluster manager after creation: `redis-cli --cluster reshard`,
//! `add-node`, `del-node`, `rebalance` and `fix` (Redis 7.0.15
//! `src/redis-cli.c`), driven as redis-cli drives them: one command at a
//! time, each a round trip between redis-cli and a node, so an operation
//! takes simulated time and the cluster moves on between its steps.
//!
//! redis-cli runs where the client populations are: on no host, outside
//! partitions (it reaches every node the clients reach), with their
//! latency. Its network draws come from its own stream.
//!
//! Each operation starts as redis-cli does: it loads the cluster from one
//! node (`clusterManagerLoadInfoFromNode`: `CLUSTER NODES` of that node,
//! then of every node it lists that is not failed, noaddr or
//! disconnected; the masters among those skipped are "unreachable"),
//! then decides from what those nodes say (read when the last of those
//! replies is produced). A slot moves as `clusterManagerMoveSlot` moves
//! it: `SETSLOT IMPORTING` on the target, `SETSLOT MIGRATING` on the
//! source, `GETKEYSINSLOT <slot> 10` and a `MIGRATE` of those keys until
//! none is left (`--cluster-pipeline` 10), then `SETSLOT NODE` on the
//! target, the source, and every other master. `MIGRATE` blocks the
//! source until the target's replies are back (see
//! [`crate::node::migrate`]).
//!
//! An operation that fails stops as redis-cli exits: with its message as
//! a warning. Differences from redis-cli: `del-node` stops the deleted
//! node's process instead of sending it `CLUSTER RESET SOFT` (the step
//! operators take next); `add-node` sends no `FUNCTION DUMP/RESTORE`
//! (functions are not modelled); `DEBUG DIGEST-VALUE` on a `BUSYKEY`
//! compares the two values without round trips; operations that overlap
//! run one after the other.

use std::collections::VecDeque;
use std::rc::Rc;

use super::{fmt_time, Event, HistoryEvent, HistoryKind, Pending, ProcState, World};
use crate::engine::{actor_rng, Actor, EventQueue, Rng, SimTime, SEC};
use crate::net::Endpoint;
use crate::node::bus::flags::{FAIL, HANDSHAKE, NOADDR};
use crate::node::bus::NodeId;
use crate::node::keyspace::Reply;
use crate::node::migrate::{MigrateBatch, SetSlot};
use crate::node::render::ClusterCommand;
use crate::node::route::ClientFlags;
use crate::node::serve::{request_len, resp_len, ClientReply};
use crate::node::slots::CLUSTER_SLOTS;
use crate::scenario::FaultAction;
use rand::RngExt as _;

/// Where redis-cli is on the network.
const MANAGER: Endpoint = Endpoint::Clients(u32::MAX);

/// `--cluster-pipeline`: keys per `MIGRATE`.
pub const PIPELINE: usize = 10;
/// `--cluster-timeout` (ms): the `MIGRATE` timeout.
pub const MIGRATE_TIMEOUT_MS: u64 = 60_000;
/// Bytes of a short reply (`+OK`, an integer).
const SHORT_REPLY: u64 = 5;

/// A command redis-cli sends.
#[derive(Clone, Debug, PartialEq)]
pub enum AdminCmd {
    Cluster(ClusterCommand),
    CountKeysInSlot(u16),
    GetKeysInSlot(u16),
    Migrate {
        target: u32,
        keys: Vec<Vec<u8>>,
        replace: bool,
    },
    /// `SHUTDOWN NOSAVE`.
    Shutdown,
}

impl AdminCmd {
    /// Bytes on the wire (RESP), near enough.
    fn wire_len(&self) -> u64 {
        match self {
            AdminCmd::Migrate { keys, .. } => {
                let mut argv: Vec<&[u8]> = vec![b"MIGRATE", b"10.0.0.1", b"6379", b"", b"0"];
                argv.push(b"60000");
                argv.push(b"KEYS");
                argv.extend(keys.iter().map(Vec::as_slice));
                request_len(&argv)
            }
            _ => 64,
        }
    }
}

/// What redis-cli reads back.
#[derive(Clone, Debug, PartialEq)]
pub enum AdminReply {
    Ok(String),
    Error(String),
    Int(usize),
    Keys(Vec<Vec<u8>>),
    /// The connection was refused or reset.
    Io,
}

impl AdminReply {
    fn len(&self) -> u64 {
        match self {
            AdminReply::Ok(s) | AdminReply::Error(s) => 3 + s.len() as u64,
            AdminReply::Keys(k) => k.iter().map(|k| 16 + k.len() as u64).sum::<u64>() + 4,
            _ => SHORT_REPLY,
        }
    }

    fn digest(&self) -> u64 {
        match self {
            AdminReply::Ok(s) => 1 ^ ((s.len() as u64) << 8),
            AdminReply::Error(s) => 2 ^ ((s.len() as u64) << 8),
            AdminReply::Int(i) => 3 ^ ((*i as u64) << 8),
            AdminReply::Keys(k) => 4 ^ ((k.len() as u64) << 8),
            AdminReply::Io => 5,
        }
    }
}

/// The manager's events.
#[derive(Debug)]
pub enum ManagerEvent {
    /// The command in flight reaches process `proc` (incarnation `inc`).
    Arrive { proc: u32, inc: u32, token: u32 },
    /// Its reply reaches redis-cli.
    Reply { token: u32, reply: AdminReply },
    /// `MIGRATE`'s `RESTORE-ASKING`s reach the target.
    Restore { m: Migration, target_inc: u32 },
    /// redis-cli's `sleep(1)` is over.
    Wake { token: u32 },
    /// The target's replies (`None`: a socket error or the timeout) reach
    /// the source.
    Restored {
        m: Migration,
        replies: Option<Vec<Reply>>,
    },
}

/// A `MIGRATE` under way: the batch from the source (its incarnation)
/// to the target, and the manager's token when it was sent.
#[derive(Clone, Debug)]
pub struct Migration {
    source: u32,
    source_inc: u32,
    target: u32,
    token: u32,
    batch: Rc<MigrateBatch>,
}

impl Migration {
    pub fn source(&self) -> u32 {
        self.source
    }

    pub fn target(&self) -> u32 {
        self.target
    }
}

/// What to do with the reply of a command.
#[derive(Clone, Debug, PartialEq)]
enum OnReply {
    /// An error stops the operation.
    Check,
    /// An error starting with this text is accepted.
    Accept(&'static str),
    /// `GETKEYSINSLOT` of a slot being moved.
    Keys(Move),
    /// `MIGRATE` of these keys.
    Migrate(Move, Vec<Vec<u8>>, bool),
}

/// One slot moving (`clusterManagerMoveSlot`).
#[derive(Clone, Debug, PartialEq)]
struct Move {
    source: u32,
    target: u32,
    slot: u16,
    /// `CLUSTER_MANAGER_OPT_COLD`: keys only, no SETSLOT.
    cold: bool,
    /// The masters told the new owner, after the target and the source.
    others: Vec<u32>,
}

/// A step of an operation.
#[derive(Clone, Debug, PartialEq)]
enum Step {
    Cmd(u32, AdminCmd, OnReply),
    /// Decide the next steps from the cluster as loaded.
    Plan,
    /// Move one slot.
    Move(Move),
    /// `sleep(1)`.
    Sleep,
    /// Fix this open slot (after the `COUNTKEYSINSLOT`s before it).
    FixSlot(u16),
    /// `clusterManagerWaitForClusterJoin`: poll every second.
    WaitJoin(Vec<u32>),
    /// `clusterManagerFixSlotsCoverage`, after the open slots: find the
    /// slots no loaded node covers (`unreachable` masters were not loaded).
    FixCoverage {
        unreachable: usize,
    },
    /// Cover these slots (after the `COUNTKEYSINSLOT`s before it).
    CoverSlots(Vec<u16>),
}

/// One operation: a fault's action.
#[derive(Debug)]
struct Job {
    fault: u32,
    action: FaultAction,
    /// The node redis-cli is pointed at.
    entry: u32,
    steps: VecDeque<Step>,
    /// The nodes redis-cli loaded.
    loaded: Vec<CmNode>,
}

/// The cluster manager's state.
pub struct Manager {
    queue: VecDeque<Job>,
    job: Option<Job>,
    /// The command in flight: where, what, and what to do with its reply.
    inflight: Option<(u32, AdminCmd, OnReply)>,
    /// Bumped whenever the command in flight is given up, so stale
    /// events are ignored.
    pub(super) token: u32,
    rng: Rng,
    /// What redis-cli printed, with the time.
    pub log: Vec<(SimTime, String)>,
}

impl Manager {
    pub fn new(seed: u64) -> Manager {
        let mut rng = actor_rng(seed, Actor::Admin);
        // Apart from the draws of `--cluster create`.
        rng.set_word_pos(1 << 64);
        Manager {
            queue: VecDeque::new(),
            job: None,
            inflight: None,
            token: 0,
            rng,
            log: Vec::new(),
        }
    }

    /// Whether an operation is running or waiting.
    pub fn busy(&self) -> bool {
        self.job.is_some() || !self.queue.is_empty()
    }
}

/// A node as redis-cli loaded it.
#[derive(Clone, Debug)]
struct CmNode {
    proc: u32,
    id: NodeId,
    master: bool,
    replicate: Option<NodeId>,
    slots: Vec<u16>,
}

impl World {
    /// Start (or queue) the operation of fault `i`.
    pub(super) fn manager_start(
        &mut self,
        i: u32,
        action: FaultAction,
        now: SimTime,
        queue: &mut EventQueue<Event>,
    ) {
        let entry = match &action {
            FaultAction::Reshard { from, .. } => *from as u32,
            FaultAction::AddNode { .. }
            | FaultAction::DelNode { .. }
            | FaultAction::Rebalance { .. }
            | FaultAction::Fix { .. } => self.entry_node(&action),
            _ => unreachable!("not a cluster manager action"),
        };
        let job = Job {
            fault: i,
            action,
            entry,
            steps: VecDeque::new(),
            loaded: Vec::new(),
        };
        self.manager.queue.push_back(job);
        if self.manager.job.is_none() {
            self.manager_next_job(now, queue);
        }
    }

    /// The node redis-cli is pointed at: the first created node that is
    /// running and is not the one being deleted.
    fn entry_node(&self, action: &FaultAction) -> u32 {
        let skip = match action {
            FaultAction::DelNode { node } => Some(*node as u32),
            _ => None,
        };
        (0..self.procs.len() as u32)
            .filter(|&p| self.scenario.nodes[p as usize].in_create && Some(p) != skip)
            .find(|&p| self.procs[p as usize].state == ProcState::Running)
            .unwrap_or(0)
    }

    fn manager_next_job(&mut self, now: SimTime, queue: &mut EventQueue<Event>) {
        self.manager.job = self.manager.queue.pop_front();
        let Some(job) = &self.manager.job else {
            return;
        };
        let entry = job.entry;
        let text = self.manager_title(&job.action);
        self.manager_log(now, text);
        // clusterManagerLoadInfoFromNode: the entry node, then the others.
        let mut steps: VecDeque<Step> = VecDeque::new();
        steps.push_back(Step::Cmd(
            entry,
            AdminCmd::Cluster(ClusterCommand::Nodes),
            OnReply::Check,
        ));
        if let Some(node) = self.procs[entry as usize].node.as_ref() {
            for n in node.known_nodes() {
                let Some(p) = self.proc_of_id(&n.name) else {
                    continue;
                };
                if p != entry && n.flags & (FAIL | NOADDR | HANDSHAKE) == 0 {
                    steps.push_back(Step::Cmd(
                        p,
                        AdminCmd::Cluster(ClusterCommand::Nodes),
                        OnReply::Accept(""),
                    ));
                }
            }
        }
        steps.push_back(Step::Plan);
        if let Some(job) = &mut self.manager.job {
            job.steps = steps;
        }
        self.manager_step(now, queue);
    }

    fn manager_title(&self, action: &FaultAction) -> String {
        let addr = |p: usize| self.procs[p].addr.to_string();
        match action {
            FaultAction::Reshard { slots, from, to } => format!(
                ">>> Resharding {} slots from {} to {}",
                slots
                    .iter()
                    .map(|&(a, b)| usize::from(b - a) + 1)
                    .sum::<usize>(),
                addr(*from),
                addr(*to)
            ),
            FaultAction::AddNode { node, .. } => {
                format!(">>> Adding node {} to cluster", addr(*node))
            }
            FaultAction::DelNode { node } => format!(">>> Removing node {}", addr(*node)),
            FaultAction::Rebalance { .. } => ">>> Rebalancing".to_string(),
            FaultAction::Fix { .. } => ">>> Fixing the cluster".to_string(),
            _ => unreachable!("not a cluster manager action"),
        }
    }

    pub(super) fn manager_log(&mut self, now: SimTime, line: String) {
        self.manager.log.push((now, line));
    }

    /// The operation fails: redis-cli prints `msg` and exits.
    fn manager_fail(&mut self, now: SimTime, msg: String, queue: &mut EventQueue<Event>) {
        if let Some(job) = self.manager.job.take() {
            let what = action_name(&job.action);
            self.warnings.push(format!(
                "fault {} at {}: {what} stopped at {}: {msg}",
                job.fault,
                fmt_time(self.scenario.faults[job.fault as usize].at),
                fmt_time(now)
            ));
            self.manager_log(now, msg);
        }
        self.manager.inflight = None;
        self.manager.token += 1;
        self.manager_next_job(now, queue);
    }

    /// Run steps until one waits for a reply.
    fn manager_step(&mut self, now: SimTime, queue: &mut EventQueue<Event>) {
        loop {
            let Some(job) = &mut self.manager.job else {
                return;
            };
            let Some(step) = job.steps.pop_front() else {
                let job = self.manager.job.take().expect("a job");
                self.manager_log(now, "[OK] done".to_string());
                self.history.push(HistoryEvent {
                    at: now,
                    proc: None,
                    kind: HistoryKind::AdminDone { index: job.fault },
                });
                self.manager_next_job(now, queue);
                return;
            };
            match step {
                Step::Cmd(p, cmd, on) => return self.manager_send(p, cmd, on, now, queue),
                Step::Plan => {
                    if let Err(msg) = self.manager_plan(now) {
                        return self.manager_fail(now, msg, queue);
                    }
                }
                Step::Move(m) => {
                    let mut steps = Vec::new();
                    if !m.cold {
                        let (s, t) = (self.id_of(m.source), self.id_of(m.target));
                        steps.push(setslot(m.target, m.slot, SetSlot::Importing(s)));
                        steps.push(setslot(m.source, m.slot, SetSlot::Migrating(t)));
                    }
                    steps.push(Step::Cmd(
                        m.source,
                        AdminCmd::GetKeysInSlot(m.slot),
                        OnReply::Keys(m),
                    ));
                    let job = self.manager.job.as_mut().expect("a job");
                    for s in steps.into_iter().rev() {
                        job.steps.push_front(s);
                    }
                }
                Step::Sleep => return self.manager_sleep(now, queue),
                Step::FixSlot(slot) => {
                    let nodes = self.manager.job.as_ref().expect("a job").loaded.clone();
                    match self.fix_open_slot(&nodes, slot) {
                        Ok(steps) => {
                            let job = self.manager.job.as_mut().expect("a job");
                            for s in steps.into_iter().rev() {
                                job.steps.push_front(s);
                            }
                        }
                        Err(msg) => return self.manager_fail(now, msg, queue),
                    }
                }
                Step::FixCoverage { unreachable } => {
                    if let Err(msg) = self.fix_coverage(unreachable, now) {
                        return self.manager_fail(now, msg, queue);
                    }
                }
                Step::CoverSlots(slots) => self.cover_slots(&slots, now),
                Step::WaitJoin(procs) => {
                    if !self.consistent(&procs) {
                        let job = self.manager.job.as_mut().expect("a job");
                        job.steps.push_front(Step::WaitJoin(procs));
                        return self.manager_sleep(now, queue);
                    }
                }
            }
        }
    }

    /// Every one of `procs` reports the same slot configuration.
    fn consistent(&self, procs: &[u32]) -> bool {
        let mut sigs = procs.iter().map(|&p| {
            self.procs[p as usize]
                .node
                .as_ref()
                .map(|n| super::config_signature(&n.cluster_nodes()))
        });
        let first = sigs.next().flatten();
        first.is_some() && sigs.all(|s| s == first)
    }

    /// Go on with the next step in a second.
    fn manager_sleep(&mut self, now: SimTime, queue: &mut EventQueue<Event>) {
        let token = self.manager.token;
        queue.push(now + SEC, Event::Manager(ManagerEvent::Wake { token }));
    }

    /// The ID of process `p`'s node as redis-cli loaded it (else as it
    /// is now).
    fn id_of(&self, p: u32) -> NodeId {
        let loaded = self
            .manager
            .job
            .as_ref()
            .and_then(|j| j.loaded.iter().find(|n| n.proc == p).map(|n| n.id));
        loaded
            .or_else(|| self.node(p).map(|n| n.my_id()))
            .unwrap_or_default()
    }

    fn manager_transit(&mut self, p: u32, to_node: bool, bytes: u64) -> Option<SimTime> {
        let (a, b) = (MANAGER, Endpoint::Node(p));
        let (from, to) = if to_node { (a, b) } else { (b, a) };
        let host_up = self.host_up[self.procs[p as usize].host as usize];
        if !host_up || !self.net.reachable(from, to) {
            return None;
        }
        Some(
            self.net
                .transit(from, to, bytes, &mut self.manager.rng)
                .total(),
        )
    }

    fn manager_send(
        &mut self,
        p: u32,
        cmd: AdminCmd,
        on: OnReply,
        now: SimTime,
        queue: &mut EventQueue<Event>,
    ) {
        let bytes = cmd.wire_len();
        self.manager.inflight = Some((p, cmd, on));
        let token = self.manager.token;
        let proc = &self.procs[p as usize];
        if proc.state == ProcState::Dead {
            // Connection refused, one round trip later.
            match self.manager_transit(p, true, 60) {
                Some(t) => {
                    queue.push(
                        now + 2 * t,
                        Event::Manager(ManagerEvent::Reply {
                            token,
                            reply: AdminReply::Io,
                        }),
                    );
                }
                None => self.manager_unreachable(p, now, queue),
            }
            return;
        }
        let inc = proc.inc;
        match self.manager_transit(p, true, bytes) {
            Some(t) => {
                queue.push(
                    now + t,
                    Event::Manager(ManagerEvent::Arrive {
                        proc: p,
                        inc,
                        token,
                    }),
                );
            }
            None => self.manager_unreachable(p, now, queue),
        }
    }

    /// redis-cli cannot reach `p`: it would wait forever; the operation
    /// is given up.
    fn manager_unreachable(&mut self, p: u32, now: SimTime, queue: &mut EventQueue<Event>) {
        let msg = format!(
            "Could not reach node {} ({})",
            self.procs[p as usize].name, self.procs[p as usize].addr
        );
        self.manager_fail(now, msg, queue);
    }

    /// Process `p` died: a command in flight to it is lost; redis-cli
    /// sees the connection reset.
    pub(super) fn manager_proc_died(
        &mut self,
        p: u32,
        now: SimTime,
        queue: &mut EventQueue<Event>,
    ) {
        let Some((q, ..)) = &self.manager.inflight else {
            return;
        };
        if *q != p {
            return;
        }
        self.manager.token += 1;
        let token = self.manager.token;
        let t = self.manager_transit(p, false, 60).unwrap_or(0);
        queue.push(
            now + t,
            Event::Manager(ManagerEvent::Reply {
                token,
                reply: AdminReply::Io,
            }),
        );
    }

    /// Handle a manager event; returns its digest for the trace hash.
    pub(super) fn manager_event(
        &mut self,
        now: SimTime,
        e: ManagerEvent,
        queue: &mut EventQueue<Event>,
    ) -> u64 {
        match e {
            ManagerEvent::Arrive { proc, inc, token } => {
                if token != self.manager.token || !self.alive(proc, inc) {
                    return 22 << 56;
                }
                if self.holds_input(proc, now) {
                    self.procs[proc as usize]
                        .inbox
                        .push(Pending::Admin { token });
                } else {
                    self.manager_execute(proc, now, queue);
                }
                (22 << 56) | u64::from(proc)
            }
            ManagerEvent::Wake { token } => {
                if token == self.manager.token && self.manager.inflight.is_none() {
                    self.manager_step(now, queue);
                }
                26 << 56
            }
            ManagerEvent::Reply { token, reply } => {
                if token != self.manager.token {
                    return 23 << 56;
                }
                let digest = (23 << 56) ^ reply.digest();
                self.manager_reply(reply, now, queue);
                digest
            }
            ManagerEvent::Restore { m, target_inc } => {
                // What the source wrote reaches the target even if the
                // source died since (TCP delivers it before the reset).
                let target = m.target;
                if !self.alive(target, target_inc) {
                    self.restored(m, None, now, queue);
                } else if self.holds_input(target, now) {
                    self.procs[target as usize].inbox.push(Pending::Restore(m));
                } else {
                    self.restore_at(m, now, queue);
                }
                (24 << 56) | u64::from(target)
            }
            ManagerEvent::Restored { m, replies } => {
                let source = m.source;
                if !self.alive(source, m.source_inc) {
                    return 25 << 56;
                }
                if self.procs[source as usize].state == ProcState::Paused {
                    let pending = Pending::Restored(m, replies);
                    self.procs[source as usize].inbox.push(pending);
                } else {
                    self.migrate_done(m, replies, now, queue);
                }
                (25 << 56) | u64::from(source)
            }
        }
    }

    /// The source of a `MIGRATE` reads the target's replies: the keys
    /// acknowledged are deleted, the source handles its other clients
    /// again and answers redis-cli (unless redis-cli gave up meanwhile).
    pub(super) fn migrate_done(
        &mut self,
        m: Migration,
        replies: Option<Vec<Reply>>,
        now: SimTime,
        queue: &mut EventQueue<Event>,
    ) {
        let source = m.source;
        let reply = match replies {
            Some(r) => {
                let node = self.procs[source as usize].node.as_mut().expect("alive");
                let reply = node.migrate_finish(now, &m.batch, &r, &mut self.effects);
                self.flush_effects(source, now, queue);
                match reply {
                    Reply::Error(e) => AdminReply::Error(e),
                    _ => AdminReply::Ok("OK".into()),
                }
            }
            None => AdminReply::Error("IOERR error or timeout reading to target instance".into()),
        };
        self.unstall(source, now, queue);
        if m.token == self.manager.token {
            self.manager_answer(source, reply, now, queue);
        }
    }

    /// The target of a `MIGRATE` reads its `RESTORE-ASKING`s.
    pub(super) fn restore_at(&mut self, m: Migration, now: SimTime, queue: &mut EventQueue<Event>) {
        let target = m.target;
        let node = self.procs[target as usize].node.as_mut().expect("alive");
        let mut replies = Vec::new();
        for argv in &m.batch.restores {
            let argv: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
            let mut flags = ClientFlags::default();
            match node.client_command(now, &argv, &mut flags, &mut self.effects) {
                ClientReply::Done(e) => replies.push(e.reply),
                // A manual failover's pause holds the write: in Redis the
                // source's MIGRATE would wait for it, and time out.
                ClientReply::Blocked | ClientReply::Wait(_) => {
                    replies.push(Reply::Error("IOERR the target paused writes".into()))
                }
            }
        }
        self.flush_effects(target, now, queue);
        self.restored(m, Some(replies), now, queue);
    }

    /// Send the target's replies back to the source; without them (the
    /// target is dead) the reset, one transit later. Replies the network
    /// blocks never come: `MIGRATE` times out.
    fn restored(
        &mut self,
        m: Migration,
        replies: Option<Vec<Reply>>,
        now: SimTime,
        queue: &mut EventQueue<Event>,
    ) {
        let (source, target) = (m.source, m.target);
        let at = if self.reachable(target, source) {
            let bytes = replies
                .as_ref()
                .map_or(60, |r| r.iter().map(resp_len).sum());
            let t = self.net.transit(
                Endpoint::Node(target),
                Endpoint::Node(source),
                bytes,
                &mut self.manager.rng,
            );
            now + t.total()
        } else {
            now + MIGRATE_TIMEOUT_MS * 1000
        };
        let replies = replies.filter(|_| self.reachable(target, source));
        queue.push(at, Event::Manager(ManagerEvent::Restored { m, replies }));
    }

    /// Process `p` reads the command in flight.
    pub(super) fn manager_execute(&mut self, p: u32, now: SimTime, queue: &mut EventQueue<Event>) {
        let Some((_, cmd, _)) = self.manager.inflight.clone() else {
            return;
        };
        let node = self.procs[p as usize]
            .node
            .as_mut()
            .expect("a running node");
        let reply = match cmd {
            AdminCmd::Cluster(c) => match node.command(now, c, &mut self.effects) {
                Ok(s) => AdminReply::Ok(s),
                Err(e) => AdminReply::Error(e),
            },
            AdminCmd::CountKeysInSlot(slot) => AdminReply::Int(node.count_keys_in_slot(slot)),
            AdminCmd::GetKeysInSlot(slot) => {
                AdminReply::Keys(node.get_keys_in_slot(slot, PIPELINE))
            }
            AdminCmd::Migrate {
                target,
                keys,
                replace,
            } => {
                let Some(batch) = node.migrate_prepare(&keys, replace) else {
                    return self.manager_answer(p, AdminReply::Ok("NOKEY".into()), now, queue);
                };
                return self.migrate_send(p, target, batch, now, queue);
            }
            AdminCmd::Shutdown => {
                // No reply: the connection closes.
                self.manager.inflight = None;
                self.kill(p, false, now, queue);
                return self.manager_step(now, queue);
            }
        };
        self.flush_effects(p, now, queue);
        self.manager_answer(p, reply, now, queue);
    }

    /// The source of a `MIGRATE` writes the batch to the target and
    /// blocks until the replies are read.
    fn migrate_send(
        &mut self,
        source: u32,
        target: u32,
        batch: MigrateBatch,
        now: SimTime,
        queue: &mut EventQueue<Event>,
    ) {
        let bytes = batch.wire_len();
        let m = Migration {
            source,
            source_inc: self.procs[source as usize].inc,
            target,
            token: self.manager.token,
            batch: Rc::new(batch),
        };
        self.procs[source as usize].stalled_until = SimTime::MAX;
        let t = &self.procs[target as usize];
        let (target_inc, dead) = (t.inc, t.state == ProcState::Dead);
        if !self.reachable(source, target) {
            let at = now + MIGRATE_TIMEOUT_MS * 1000;
            queue.push(
                at,
                Event::Manager(ManagerEvent::Restored { m, replies: None }),
            );
            return;
        }
        if dead {
            // Refused: the reset comes back from the target's host.
            return self.restored(m, None, now, queue);
        }
        let tr = self.net.transit(
            Endpoint::Node(source),
            Endpoint::Node(target),
            bytes,
            &mut self.manager.rng,
        );
        queue.push(
            now + tr.total(),
            Event::Manager(ManagerEvent::Restore { m, target_inc }),
        );
    }

    /// The source is no longer blocked in `MIGRATE`.
    fn unstall(&mut self, p: u32, now: SimTime, queue: &mut EventQueue<Event>) {
        self.procs[p as usize].stalled_until = now;
        self.drain_inbox(p, now, queue);
    }

    /// Send `reply` from `p` back to redis-cli.
    fn manager_answer(
        &mut self,
        p: u32,
        reply: AdminReply,
        now: SimTime,
        queue: &mut EventQueue<Event>,
    ) {
        let token = self.manager.token;
        match self.manager_transit(p, false, reply.len()) {
            Some(t) => {
                queue.push(
                    now + t,
                    Event::Manager(ManagerEvent::Reply { token, reply }),
                );
            }
            None => self.manager_unreachable(p, now, queue),
        }
    }

    /// redis-cli reads the reply of the command in flight.
    fn manager_reply(&mut self, reply: AdminReply, now: SimTime, queue: &mut EventQueue<Event>) {
        let Some((p, _, on)) = self.manager.inflight.take() else {
            return;
        };
        let addr = self.procs[p as usize].addr;
        let err = match &reply {
            AdminReply::Error(e) => Some(e.clone()),
            AdminReply::Io => {
                let msg = format!("I/O error: the connection to {addr} was lost");
                return self.manager_fail(now, msg, queue);
            }
            _ => None,
        };
        match on {
            OnReply::Check | OnReply::Accept(_) => {
                if let Some(e) = err {
                    let accepted = matches!(on, OnReply::Accept(a) if e.starts_with(a));
                    if !accepted {
                        return self.manager_fail(
                            now,
                            format!("Node {addr} replied with error:\n{e}"),
                            queue,
                        );
                    }
                }
            }
            OnReply::Keys(m) => {
                let keys = match reply {
                    AdminReply::Keys(k) => k,
                    _ => {
                        let e = err.unwrap_or_default();
                        return self.manager_fail(
                            now,
                            format!("Node {addr} replied with error:\n{e}"),
                            queue,
                        );
                    }
                };
                if keys.is_empty() {
                    let steps = self.slot_owner_steps(&m);
                    let job = self.manager.job.as_mut().expect("a job");
                    for s in steps.into_iter().rev() {
                        job.steps.push_front(s);
                    }
                } else {
                    let job = self.manager.job.as_mut().expect("a job");
                    let target = m.target;
                    let cmd = AdminCmd::Migrate {
                        target,
                        keys: keys.clone(),
                        replace: false,
                    };
                    job.steps.push_front(Step::Cmd(
                        m.source,
                        cmd,
                        OnReply::Migrate(m, keys, false),
                    ));
                }
            }
            OnReply::Migrate(m, keys, replaced) => {
                if let Some(e) = err {
                    let busy = e.contains("BUSYKEY");
                    if !busy || replaced {
                        return self.manager_fail(
                            now,
                            format!("Node {addr} replied with error:\n{e}"),
                            queue,
                        );
                    }
                    // Same values on both nodes (or --cluster-replace):
                    // MIGRATE again with REPLACE.
                    let replace = matches!(
                        self.manager.job.as_ref().map(|j| &j.action),
                        Some(FaultAction::Fix { replace: true, .. })
                    );
                    let diffs = self.differing_keys(m.source, m.target, &keys);
                    if !replace && !diffs.is_empty() {
                        return self.manager_fail(
                            now,
                            format!(
                                "*** Found {} key(s) in both source node and target node having different values.",
                                diffs.len()
                            ),
                            queue,
                        );
                    }
                    self.manager_log(now, "*** Replacing target keys...".into());
                    let cmd = AdminCmd::Migrate {
                        target: m.target,
                        keys: keys.clone(),
                        replace: true,
                    };
                    let job = self.manager.job.as_mut().expect("a job");
                    job.steps
                        .push_front(Step::Cmd(m.source, cmd, OnReply::Migrate(m, keys, true)));
                } else {
                    let job = self.manager.job.as_mut().expect("a job");
                    job.steps.push_front(Step::Cmd(
                        m.source,
                        AdminCmd::GetKeysInSlot(m.slot),
                        OnReply::Keys(m),
                    ));
                }
            }
        }
        self.manager_step(now, queue);
    }

    /// The keys of `keys` both nodes hold with different values
    /// (`clusterManagerCompareKeysValues`).
    fn differing_keys(&self, a: u32, b: u32, keys: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let (Some(na), Some(nb)) = (self.node(a), self.node(b)) else {
            return Vec::new();
        };
        keys.iter()
            .filter(|k| match (na.keyspace.peek(k), nb.keyspace.peek(k)) {
                (Some(x), Some(y)) => x.value != y.value,
                _ => false,
            })
            .cloned()
            .collect()
    }

    /// After the keys of a moved slot: `SETSLOT NODE` on the target, the
    /// source (which may have turned replica: accepted), the others.
    fn slot_owner_steps(&self, m: &Move) -> Vec<Step> {
        if m.cold {
            return Vec::new();
        }
        let t = self.id_of(m.target);
        let mut steps = vec![
            setslot(m.target, m.slot, SetSlot::Node(t)),
            Step::Cmd(
                m.source,
                AdminCmd::Cluster(ClusterCommand::SetSlot(m.slot, SetSlot::Node(t))),
                OnReply::Accept("ERR Please use SETSLOT only with masters."),
            ),
        ];
        for &o in &m.others {
            if o != m.source && o != m.target {
                steps.push(setslot(o, m.slot, SetSlot::Node(t)));
            }
        }
        steps
    }

    /// The cluster as redis-cli loaded it from the entry node: the nodes
    /// it could talk to, in its order, and how many masters it could not.
    fn loaded(&self, entry: u32) -> (Vec<CmNode>, usize) {
        let Some(node) = self.node(entry) else {
            return (Vec::new(), 0);
        };
        let mut nodes = Vec::new();
        let mut unreachable = 0;
        let me = node.my_id();
        let mut ids = vec![me];
        ids.extend(node.known_nodes().map(|n| n.name).filter(|&n| n != me));
        for id in ids {
            let n = node.node_by_name(&id).expect("listed");
            let p = self.proc_of_id(&id);
            let ok = n.flags & (FAIL | NOADDR | HANDSHAKE) == 0
                && (id == me || n.link.is_some())
                && p.is_some_and(|p| self.node(p).is_some_and(|x| x.my_id() == id));
            if !ok {
                unreachable += usize::from(n.is_master());
                continue;
            }
            let p = p.expect("checked");
            let own = self.node(p).expect("checked");
            nodes.push(CmNode {
                proc: p,
                id,
                master: own.is_master(),
                replicate: own.master_id(),
                slots: own.myself().slots.iter().map(|j| j as u16).collect(),
            });
        }
        (nodes, unreachable)
    }

    /// `clusterManagerCheckCluster`: the problems redis-cli reports.
    fn check_cluster(&self, nodes: &[CmNode]) -> Vec<String> {
        let mut errors = Vec::new();
        let procs: Vec<u32> = nodes.iter().map(|n| n.proc).collect();
        if !self.consistent(&procs) {
            errors.push("[ERR] Nodes don't agree about configuration!".to_string());
        }
        let mut open = Vec::new();
        for n in nodes.iter().filter(|n| n.master) {
            for (j, ..) in self
                .node(n.proc)
                .map(|x| x.open_slots())
                .unwrap_or_default()
            {
                open.push(j);
            }
        }
        if !open.is_empty() {
            open.sort_unstable();
            open.dedup();
            let list: Vec<String> = open.iter().map(u16::to_string).collect();
            errors.push(format!(
                "[WARNING] The following slots are open: {}.",
                list.join(",")
            ));
        }
        let covered: usize = {
            let mut c = vec![false; CLUSTER_SLOTS];
            for n in nodes {
                for &j in &n.slots {
                    c[usize::from(j)] = true;
                }
            }
            c.iter().filter(|&&x| x).count()
        };
        if covered != CLUSTER_SLOTS {
            errors.push(format!(
                "[ERR] Not all {CLUSTER_SLOTS} slots are covered by nodes."
            ));
        }
        errors
    }

    /// The `Plan` step: what the operation does, decided from the
    /// cluster as loaded.
    fn manager_plan(&mut self, now: SimTime) -> Result<(), String> {
        let job = self.manager.job.as_ref().expect("a job");
        let (entry, action) = (job.entry, job.action.clone());
        let (nodes, unreachable) = self.loaded(entry);
        if nodes.is_empty() {
            return Err(format!(
                "[ERR] Sorry, can't connect to node {}",
                self.procs[entry as usize].addr
            ));
        }
        let masters = all_masters(&nodes);
        self.manager.job.as_mut().expect("a job").loaded = nodes.clone();
        let addr = |p: u32| self.procs[p as usize].addr;
        let find = |p: usize| nodes.iter().find(|n| n.proc == p as u32);
        let mut steps: Vec<Step> = Vec::new();
        match action {
            FaultAction::Reshard { slots, from, to } => {
                let errors = self.check_cluster(&nodes);
                if !errors.is_empty() {
                    return Err(format!(
                        "{}\n*** Please fix your cluster problems before resharding",
                        errors.join("\n")
                    ));
                }
                let (Some(src), Some(dst)) = (find(from), find(to)) else {
                    return Err(
                        "*** The specified node is not known or not a master, please retry.".into(),
                    );
                };
                if !src.master || !dst.master {
                    return Err(
                        "*** The specified node is not known or not a master, please retry.".into(),
                    );
                }
                for &(a, b) in &slots {
                    for j in a..=b {
                        if !src.slots.contains(&j) {
                            self.warnings.push(format!(
                                "reshard at {}: slot {j} is not {}'s; it was skipped",
                                fmt_time(now),
                                self.procs[from].name
                            ));
                            continue;
                        }
                        steps.push(Step::Move(Move {
                            source: from as u32,
                            target: to as u32,
                            slot: j,
                            cold: false,
                            others: masters.clone(),
                        }));
                    }
                }
            }
            FaultAction::AddNode { node, replica_of } => {
                let errors = self.check_cluster(&nodes);
                if !errors.is_empty() {
                    return Err(errors.join("\n"));
                }
                let master = match replica_of {
                    Some(m) => match find(m).filter(|n| n.master) {
                        Some(n) => Some(n.id),
                        None => {
                            return Err(format!("[ERR] No such master ID {}", self.id_of(m as u32)))
                        }
                    },
                    None => None,
                };
                let p = node as u32;
                let empty = self
                    .node(p)
                    .is_some_and(|n| n.known_nodes().count() == 1 && n.keyspace.is_empty());
                if self.node(p).is_none() {
                    return Err(format!("[ERR] Sorry, can't connect to node {}", addr(p)));
                }
                if !empty {
                    return Err(format!(
                        "[ERR] Node {} is not empty. Either the node already knows other nodes (check with CLUSTER NODES) or contains some key in database 0.",
                        addr(p)
                    ));
                }
                let first = addr(nodes[0].proc);
                steps.push(Step::Cmd(
                    p,
                    AdminCmd::Cluster(ClusterCommand::Info),
                    OnReply::Check,
                ));
                steps.push(Step::Cmd(
                    p,
                    AdminCmd::Cluster(ClusterCommand::Meet {
                        ip: first.ip,
                        port: first.port,
                        cport: None,
                    }),
                    OnReply::Check,
                ));
                if let Some(id) = master {
                    let mut all: Vec<u32> = nodes.iter().map(|n| n.proc).collect();
                    all.push(p);
                    steps.push(Step::Sleep);
                    steps.push(Step::WaitJoin(all));
                    steps.push(Step::Cmd(
                        p,
                        AdminCmd::Cluster(ClusterCommand::Replicate(id)),
                        OnReply::Check,
                    ));
                }
            }
            FaultAction::DelNode { node } => {
                let Some(del) = find(node) else {
                    return Err(format!("[ERR] No such node ID {}", self.id_of(node as u32)));
                };
                if !del.slots.is_empty() {
                    return Err(format!(
                        "[ERR] Node {} is not empty! Reshard data away and try again.",
                        addr(node as u32)
                    ));
                }
                let id = del.id;
                for n in &nodes {
                    if n.proc == node as u32 {
                        continue;
                    }
                    if n.replicate == Some(id) {
                        let m = least_replicas(&nodes).expect("a master");
                        steps.push(Step::Cmd(
                            n.proc,
                            AdminCmd::Cluster(ClusterCommand::Replicate(m)),
                            OnReply::Check,
                        ));
                    }
                    steps.push(Step::Cmd(
                        n.proc,
                        AdminCmd::Cluster(ClusterCommand::Forget(id)),
                        OnReply::Check,
                    ));
                }
                steps.push(Step::Cmd(node as u32, AdminCmd::Shutdown, OnReply::Check));
            }
            FaultAction::Rebalance {
                weights,
                threshold,
                use_empty_masters,
            } => {
                let errors = self.check_cluster(&nodes);
                if !errors.is_empty() {
                    return Err(format!(
                        "{}\n*** Please fix your cluster problems before rebalancing",
                        errors.join("\n")
                    ));
                }
                let masters: Vec<(u32, Vec<u16>, f32)> = nodes
                    .iter()
                    .filter(|n| n.master && n.replicate.is_none())
                    .map(|n| {
                        let w = weights
                            .iter()
                            .find(|(i, _)| *i as u32 == n.proc)
                            .map_or(1.0, |&(_, w)| w as f32);
                        (n.proc, n.slots.clone(), w)
                    })
                    .collect();
                let plan = rebalance_plan(&masters, threshold as f32, use_empty_masters);
                match plan {
                    Err(msg) => self.manager_log(now, msg),
                    Ok((header, moves)) => {
                        self.manager_log(now, header);
                        for (src, dst, table) in moves {
                            let line = format!(
                                "Moving {} slots from {} to {}",
                                table.len(),
                                self.procs[src as usize].addr,
                                self.procs[dst as usize].addr
                            );
                            self.manager_log(now, line);
                            for slot in table {
                                steps.push(Step::Move(Move {
                                    source: src,
                                    target: dst,
                                    slot,
                                    cold: false,
                                    others: all_masters(&nodes),
                                }));
                            }
                        }
                    }
                }
            }
            FaultAction::Fix {
                with_unreachable_masters,
                ..
            } => {
                let mut open: Vec<u16> = Vec::new();
                for n in nodes.iter().filter(|n| n.master) {
                    open.extend(
                        self.node(n.proc)
                            .map(|x| x.open_slots())
                            .unwrap_or_default()
                            .iter()
                            .map(|o| o.0),
                    );
                }
                open.sort_unstable();
                open.dedup();
                if !open.is_empty() && unreachable > 0 && !with_unreachable_masters {
                    return Err(format!("*** Fixing open slots with {unreachable} unreachable masters is dangerous: redis-cli will assume that slots about masters that are not reachable are not covered, and will try to reassign them to the reachable nodes. This can cause data loss and is rarely what you want to do. If you really want to proceed use the --cluster-fix-with-unreachable-masters option."));
                }
                for slot in open {
                    self.manager_log(now, format!(">>> Fixing open slot {slot}"));
                    // redis-cli asks each master how many keys of the slot
                    // it holds, then decides.
                    for n in nodes.iter().filter(|n| n.master) {
                        steps.push(Step::Cmd(
                            n.proc,
                            AdminCmd::CountKeysInSlot(slot),
                            OnReply::Check,
                        ));
                    }
                    steps.push(Step::FixSlot(slot));
                }
                steps.push(Step::FixCoverage { unreachable });
            }
            _ => unreachable!("not a cluster manager action"),
        }
        let job = self.manager.job.as_mut().expect("a job");
        for s in steps.into_iter().rev() {
            job.steps.push_front(s);
        }
        Ok(())
    }

    /// `clusterManagerFixSlotsCoverage`, first half: the slots no loaded
    /// node covers; refused with unreachable masters unless
    /// `--cluster-fix-with-unreachable-masters`; then each master is asked
    /// whether it holds keys of each (`GETKEYSINSLOT <slot> 1`, here
    /// `COUNTKEYSINSLOT`: one round trip each).
    fn fix_coverage(&mut self, unreachable: usize, now: SimTime) -> Result<(), String> {
        let job = self.manager.job.as_ref().expect("a job");
        let force = matches!(
            job.action,
            FaultAction::Fix {
                with_unreachable_masters: true,
                ..
            }
        );
        let mut covered = vec![false; CLUSTER_SLOTS];
        for n in &job.loaded {
            for &j in &n.slots {
                covered[usize::from(j)] = true;
            }
        }
        let uncovered: Vec<u16> = (0..CLUSTER_SLOTS as u16)
            .filter(|&j| !covered[usize::from(j)])
            .collect();
        if uncovered.is_empty() {
            return Ok(());
        }
        let masters = all_masters(&job.loaded);
        self.manager_log(
            now,
            format!("[ERR] Not all {CLUSTER_SLOTS} slots are covered by nodes."),
        );
        if unreachable > 0 && !force {
            return Err(format!("*** Fixing slots coverage with {unreachable} unreachable masters is dangerous: redis-cli will assume that slots about masters that are not reachable are not covered, and will try to reassign them to the reachable nodes. This can cause data loss and is rarely what you want to do. If you really want to proceed use the --cluster-fix-with-unreachable-masters option."));
        }
        self.manager_log(now, ">>> Fixing slots coverage...".to_string());
        let mut steps: Vec<Step> = Vec::new();
        for &slot in &uncovered {
            for &m in &masters {
                steps.push(Step::Cmd(
                    m,
                    AdminCmd::CountKeysInSlot(slot),
                    OnReply::Check,
                ));
            }
        }
        steps.push(Step::CoverSlots(uncovered));
        let job = self.manager.job.as_mut().expect("a job");
        for s in steps.into_iter().rev() {
            job.steps.push_front(s);
        }
        Ok(())
    }

    /// `clusterManagerFixSlotsCoverage`, second half: the uncovered slots
    /// with keys in no master go to a random master (redis-cli seeds
    /// `rand()` with the time at each pick, so within a second every pick
    /// is the same master: one draw here), those with keys in one master
    /// to it, those with keys in several to the one with the most, the
    /// others' keys moved to it. Each case's slots are listed, then each
    /// slot gets its `>>> Covering slot <n> ...` line, as redis-cli prints
    /// them (all at the time of the plan; redis-cli prints each before
    /// its commands). redis-cli takes the slots in the order of its
    /// `clusterManagerUncoveredSlots` dict (a hash order); here ascending.
    fn cover_slots(&mut self, slots: &[u16], now: SimTime) {
        let nodes = self.manager.job.as_ref().expect("a job").loaded.clone();
        let masters = all_masters(&nodes);
        let holders = |w: &World, slot: u16| -> Vec<(usize, u32)> {
            masters
                .iter()
                .map(|&m| (w.node(m).map_or(0, |n| n.count_keys_in_slot(slot)), m))
                .filter(|&(c, _)| c > 0)
                .collect()
        };
        let (mut none, mut single, mut multi) = (Vec::new(), Vec::new(), Vec::new());
        for &slot in slots {
            match holders(self, slot).len() {
                0 => none.push(slot),
                1 => single.push(slot),
                _ => multi.push(slot),
            }
        }
        let mut steps: Vec<Step> = Vec::new();
        if !none.is_empty() {
            self.manager_log(
                now,
                format!(
                    "The following uncovered slots have no keys across the cluster:\n{}",
                    slots_list(&none)
                ),
            );
            let m = masters[self.manager.rng.random_range(0..masters.len())];
            for &slot in &none {
                self.log_covering(slot, m, now);
                steps.extend(set_slot_owner(m, slot, false));
            }
        }
        if !single.is_empty() {
            self.manager_log(
                now,
                format!(
                    "The following uncovered slots have keys in just one node:\n{}",
                    slots_list(&single)
                ),
            );
            for &slot in &single {
                let m = holders(self, slot)[0].1;
                self.log_covering(slot, m, now);
                steps.extend(set_slot_owner(m, slot, false));
            }
        }
        if !multi.is_empty() {
            self.manager_log(
                now,
                format!(
                    "The following uncovered slots have keys in multiple nodes:\n{}",
                    slots_list(&multi)
                ),
            );
            let all = all_masters(&nodes);
            for &slot in &multi {
                let h = holders(self, slot);
                // `clusterManagerGetNodeWithMostKeysInSlot`: the first
                // with the most.
                let target = h.iter().fold(h[0], |b, &x| if x.0 > b.0 { x } else { b }).1;
                let tid = self.id_of(target);
                self.manager_log(
                    now,
                    format!(
                        ">>> Covering slot {slot} moving keys to {}",
                        self.procs[target as usize].addr
                    ),
                );
                steps.extend(set_slot_owner(target, slot, true));
                for &(_, src) in h.iter().filter(|x| x.1 != target) {
                    steps.push(setslot(src, slot, SetSlot::Node(tid)));
                    steps.push(setslot(src, slot, SetSlot::Importing(tid)));
                    steps.push(Step::Move(Move {
                        source: src,
                        target,
                        slot,
                        cold: true,
                        others: all.clone(),
                    }));
                    steps.push(setslot(src, slot, SetSlot::Stable));
                }
            }
        }
        let job = self.manager.job.as_mut().expect("a job");
        for s in steps.into_iter().rev() {
            job.steps.push_front(s);
        }
    }

    /// `>>> Covering slot <slot> with <ip>:<port>` (master `m`).
    fn log_covering(&mut self, slot: u16, m: u32, now: SimTime) {
        let line = format!(
            ">>> Covering slot {slot} with {}",
            self.procs[m as usize].addr
        );
        self.manager_log(now, line);
    }

    /// `clusterManagerFixOpenSlot` for `slot`: its owners (by
    /// configuration or by keys), the migrating and importing nodes, and
    /// the case that applies. The key counts and open slots are read from
    /// the nodes as the last `COUNTKEYSINSLOT` left them.
    fn fix_open_slot(&mut self, nodes: &[CmNode], slot: u16) -> Result<Vec<Step>, String> {
        let count = |p: u32| self.node(p).map_or(0, |n| n.count_keys_in_slot(slot));
        let masters: Vec<&CmNode> = nodes.iter().filter(|n| n.master).collect();
        let mut owners: Vec<u32> = Vec::new();
        for n in &masters {
            if n.slots.contains(&slot) || count(n.proc) > 0 {
                owners.push(n.proc);
            }
        }
        let mut owner = (owners.len() == 1).then(|| owners[0]);
        let (mut migrating, mut importing) = (Vec::new(), Vec::new());
        for n in &masters {
            let open = self
                .node(n.proc)
                .map(|x| x.open_slots())
                .unwrap_or_default();
            match open.iter().find(|o| o.0 == slot) {
                Some(&(_, _, true)) => migrating.push(n.proc),
                Some(&(_, _, false)) => importing.push(n.proc),
                None if Some(n.proc) != owner && count(n.proc) > 0 => importing.push(n.proc),
                None => {}
            }
        }
        let mut steps = Vec::new();
        if owner.is_none() {
            // The node with the most keys in the slot.
            let best = masters
                .iter()
                .map(|n| (count(n.proc), n.proc))
                .fold(None, |b: Option<(usize, u32)>, x| match b {
                    Some(b) if b.0 >= x.0 => Some(b),
                    _ => Some(x),
                })
                .map(|b| b.1);
            let Some(o) = best else {
                return Err("[ERR] Can't select a slot owner. Impossible to fix.".into());
            };
            owner = Some(o);
            steps.push(setslot(o, slot, SetSlot::Stable));
            steps.push(Step::Cmd(
                o,
                AdminCmd::Cluster(ClusterCommand::DelSlots(vec![slot])),
                OnReply::Accept(""),
            ));
            steps.push(Step::Cmd(
                o,
                AdminCmd::Cluster(ClusterCommand::AddSlots(vec![slot])),
                OnReply::Check,
            ));
            steps.push(Step::Cmd(
                o,
                AdminCmd::Cluster(ClusterCommand::BumpEpoch),
                OnReply::Accept(""),
            ));
            migrating.retain(|&p| p != o);
            importing.retain(|&p| p != o);
        }
        let owner = owner.expect("chosen");
        let oid = self.id_of(owner);
        if owners.len() > 1 {
            for &n in owners.iter().filter(|&&n| n != owner) {
                steps.push(Step::Cmd(
                    n,
                    AdminCmd::Cluster(ClusterCommand::DelSlots(vec![slot])),
                    OnReply::Accept(""),
                ));
                steps.push(setslot(n, slot, SetSlot::Node(oid)));
                steps.push(setslot(n, slot, SetSlot::Importing(oid)));
                importing.retain(|&p| p != n);
                importing.push(n);
                migrating.retain(|&p| p != n);
            }
        }
        let all = all_masters(nodes);
        let mv = |source, target, cold| {
            Step::Move(Move {
                source,
                target,
                slot,
                cold,
                others: all.clone(),
            })
        };
        if migrating.len() == 1 && importing.len() == 1 {
            steps.push(mv(migrating[0], importing[0], false));
        } else if migrating.is_empty() && !importing.is_empty() {
            for &n in importing.iter().filter(|&&n| n != owner) {
                steps.push(mv(n, owner, true));
                steps.push(setslot(n, slot, SetSlot::Stable));
            }
            for &n in all.iter().filter(|&&n| n != owner) {
                steps.push(setslot(n, slot, SetSlot::Node(oid)));
            }
        } else if migrating.len() == 1 && importing.is_empty() {
            let n = migrating[0];
            if Some(n) != Some(owner) && count(n) > 0 {
                return Err(format!("[ERR] Sorry, redis-cli can't fix this slot yet (work in progress). Slot is set as migrating in {}, as importing in , owner is {}", self.procs[n as usize].addr, self.procs[owner as usize].addr));
            }
            steps.push(setslot(n, slot, SetSlot::Stable));
        } else {
            return Err(format!(
                "[ERR] Sorry, redis-cli can't fix this slot yet (work in progress). Slot is set as migrating in {} node(s), as importing in {} node(s), owner is {}",
                migrating.len(),
                importing.len(),
                self.procs[owner as usize].addr
            ));
        }
        Ok(steps)
    }
}

fn setslot(p: u32, slot: u16, a: SetSlot) -> Step {
    Step::Cmd(
        p,
        AdminCmd::Cluster(ClusterCommand::SetSlot(slot, a)),
        OnReply::Check,
    )
}

/// `clusterManagerSetSlotOwner`: `DELSLOTS` (its error ignored),
/// `ADDSLOTS`, with `do_clear` `SETSLOT STABLE`, and `BUMPEPOCH`.
fn set_slot_owner(p: u32, slot: u16, do_clear: bool) -> Vec<Step> {
    let cmd = |c: ClusterCommand, on: OnReply| Step::Cmd(p, AdminCmd::Cluster(c), on);
    let mut steps = vec![
        cmd(ClusterCommand::DelSlots(vec![slot]), OnReply::Accept("")),
        cmd(ClusterCommand::AddSlots(vec![slot]), OnReply::Check),
    ];
    if do_clear {
        steps.push(setslot(p, slot, SetSlot::Stable));
    }
    steps.push(cmd(ClusterCommand::BumpEpoch, OnReply::Accept("")));
    steps
}

/// Slots as runs `(first, last)`, in slot order.
fn slot_runs(slots: &[u16]) -> Vec<(usize, usize)> {
    let mut b = crate::node::bus::SlotBitmap::default();
    for &s in slots {
        b.set(usize::from(s));
    }
    b.ranges().collect()
}

/// `clusterManagerPrintSlotsList`: `[0-5460],[5462]`.
fn slots_list(slots: &[u16]) -> String {
    let runs: Vec<String> = slot_runs(slots)
        .into_iter()
        .map(|(a, b)| {
            if a == b {
                format!("[{a}]")
            } else {
                format!("[{a}-{b}]")
            }
        })
        .collect();
    runs.join(",")
}

fn all_masters(nodes: &[CmNode]) -> Vec<u32> {
    nodes.iter().filter(|n| n.master).map(|n| n.proc).collect()
}

/// `clusterManagerNodeWithLeastReplicas`: the first master with the
/// fewest replicas among the loaded nodes.
fn least_replicas(nodes: &[CmNode]) -> Option<NodeId> {
    nodes
        .iter()
        .filter(|n| n.master)
        .map(|m| {
            let r = nodes.iter().filter(|n| n.replicate == Some(m.id)).count();
            (r, m.id)
        })
        .fold(None, |b: Option<(usize, NodeId)>, x| match b {
            Some(b) if b.0 <= x.0 => Some(b),
            _ => Some(x),
        })
        .map(|b| b.1)
}

/// The action's name in the scenario format.
fn action_name(a: &FaultAction) -> &'static str {
    match a {
        FaultAction::Reshard { .. } => "reshard",
        FaultAction::AddNode { .. } => "add-node",
        FaultAction::DelNode { .. } => "del-node",
        FaultAction::Rebalance { .. } => "rebalance",
        FaultAction::Fix { .. } => "fix",
        _ => "action",
    }
}

/// Slots moving from one process to another: `(source, target, slots)`.
pub type SlotMove = (u32, u32, Vec<u16>);

/// `clusterManagerCommandRebalance`'s plan for `masters` (process, its
/// slots in order, weight), in redis-cli's node order, single precision
/// as redis-cli computes: the moves `(source, target, slots)` in order,
/// or the message it prints when no move is needed.
pub fn rebalance_plan(
    masters: &[(u32, Vec<u16>, f32)],
    threshold: f32,
    use_empty: bool,
) -> Result<(String, Vec<SlotMove>), String> {
    struct N {
        proc: u32,
        slots: Vec<u16>,
        weight: f32,
        balance: i64,
    }
    let mut involved: Vec<N> = Vec::new();
    let mut total_weight = 0f32;
    for (p, slots, w) in masters {
        if !use_empty && slots.is_empty() {
            continue;
        }
        total_weight += w;
        involved.push(N {
            proc: *p,
            slots: slots.clone(),
            weight: *w,
            balance: 0,
        });
    }
    let mut threshold_reached = false;
    let mut total_balance = 0i64;
    for n in &mut involved {
        let expected = ((CLUSTER_SLOTS as f32 / total_weight) * n.weight) as i64;
        let count = n.slots.len() as i64;
        n.balance = count - expected;
        total_balance += n.balance;
        if threshold > 0.0 {
            if count > 0 {
                let err_perc = (100.0 - (100.0 * expected as f64 / count as f64)).abs() as f32;
                if err_perc > threshold {
                    threshold_reached = true;
                }
            } else if expected > 1 {
                threshold_reached = true;
            }
        }
    }
    if !threshold_reached {
        return Err(format!(
            "*** No rebalancing needed! All nodes are within the {threshold:.2}% threshold."
        ));
    }
    while total_balance > 0 {
        for n in &mut involved {
            if n.balance <= 0 && total_balance > 0 {
                n.balance -= 1;
                total_balance -= 1;
            }
        }
    }
    // qsort by balance (glibc's is a merge sort: stable).
    involved.sort_by_key(|n| n.balance);
    let header = format!(
        ">>> Rebalancing across {} nodes. Total weight = {total_weight:.2}",
        involved.len()
    );
    let mut moves = Vec::new();
    let (mut dst, mut src) = (0usize, involved.len().saturating_sub(1));
    while dst < src {
        let db = involved[dst].balance.abs();
        let sb = involved[src].balance.abs();
        let numslots = db.min(sb) as usize;
        if numslots > 0 {
            // clusterManagerComputeReshardTable with one source: its
            // first `numslots` slots; OPT_UPDATE moves them in the plan.
            let table: Vec<u16> = involved[src].slots.drain(..numslots).collect();
            involved[dst].slots.extend(&table);
            involved[dst].slots.sort_unstable();
            moves.push((involved[src].proc, involved[dst].proc, table));
        }
        involved[dst].balance += numslots as i64;
        involved[src].balance -= numslots as i64;
        if involved[dst].balance == 0 {
            dst += 1;
        }
        if involved[src].balance == 0 {
            src -= 1;
        }
    }
    Ok((header, moves))
}
