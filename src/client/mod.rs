//! Client populations: what a `[[workload]]` sends and how it reacts to
//! the replies, as a sans-IO state machine. A population is one instance
//! of a cluster client library (one slot map) used by `clients`
//! connections, each with at most one request outstanding: it gets
//! `(now, ClientInput)` and appends [`ClientEffect`]s (requests to send,
//! connections to drop, timers, finished requests to record). The world
//! carries requests and replies over the simulated network.
//!
//! # The client library
//!
//! It behaves as redis-py's `RedisCluster` (5.x) does, with the
//! workload's `timeout` and `retry_after`:
//!
//! - The slot map comes from `CLUSTER SLOTS`, asked of the scenario's nodes
//!   in order (redis-py's startup nodes), staying with the last one that
//!   answered and moving to the next when one fails or lists no slot. The
//!   first request of
//!   the population waits for it; the map is empty (every slot unknown)
//!   before the cluster is created, and a request for a slot with no known
//!   owner goes to the node that answered last, which replies `-CLUSTERDOWN
//!   Hash slot not served` before the cluster is created.
//! - `-MOVED`: the slot's entry is patched and the request sent to the new
//!   node; every [`MOVED_RELOAD_EVERY`]th `MOVED` reloads the whole map
//!   instead (redis-py's `reinitialize_steps`), then the request goes where
//!   the new map says.
//! - `-ASK`: `ASKING` and the request to the node named, map unchanged.
//! - One try sends the request at most [`MAX_SENDS`] times (redis-py's
//!   `RedisClusterRequestTTL`: up to 15 redirections); then it fails with
//!   the last redirection as its outcome.
//! - `timeout` is the wait for each reply; none by then fails the try and
//!   the connection is dropped (the next request to that node opens a new
//!   one). A refused or reset connection fails the try too.
//! - After a failed try (`-CLUSTERDOWN`, `-TRYAGAIN`, a timeout, a
//!   connection error, too many redirections) the client waits
//!   `retry_after` and tries the same request again (same key, same
//!   value): a new try, recorded on its own. At most [`MAX_RETRIES`]
//!   times (redis-py's `cluster_error_retry_attempts`); then the request
//!   fails for good and the client goes on with the next one. Any other
//!   error reply ends the request at once.
//! - After any of those failures but `-TRYAGAIN`, the slot map is reloaded
//!   before the client's next send, unless another connection reloaded it
//!   since the failure.
//! - A plain client (standalone and replication modes,
//!   [`Population::plain`]: redis-py's `Redis` rather than
//!   `RedisCluster`) has no slot map: it sends every request to one node
//!   (node 0, until [`Population::repoint`]), with the same timeouts and
//!   retries.
//! - With `read_from_replicas`, each new connection starts with
//!   `READONLY` (the world sends it, as redis-py's `on_connect` does) and a
//!   `GET` goes to a random replica of the slot's master listed in the
//!   map (the master when none is listed).
//!
//! # Pacing
//!
//! Client `c` of `N` sends its `k`-th request at `start + (k + c/N) *
//! N/rate`, or as soon as the previous one completes if that time has
//! passed (it catches up). Retries and the `SET` that `on_miss = "set"`
//! adds after a `GET` that found nothing do not take a place in the
//! schedule. Nothing new is sent from `stop` on; a request in flight then
//! completes.

pub mod accounting;
pub mod keys;
mod zipf;

use std::collections::BTreeMap;
use std::rc::Rc;

use rand::RngExt as _;

use crate::engine::{actor_rng, Actor, Rng, SimTime, SEC};
use crate::net::Addr;
pub use crate::node::argv::Argv;
use crate::node::keyspace::Reply;
use crate::node::replication::resp;
use crate::node::serve::request_len;
use crate::scenario::{OnMiss, Workload, WriteCmd};
use keys::{read_id, write_id, write_value, KeyChooser, KeyNames, TraceOp, NO_VALUE};

/// Sends of one try at most: the first and up to 15 redirections
/// (redis-py's `RedisClusterRequestTTL = 16`).
pub const MAX_SENDS: u8 = 16;

/// Every this many `MOVED` replies, the whole slot map is reloaded instead
/// of patched (redis-py's `reinitialize_steps = 5`).
pub const MOVED_RELOAD_EVERY: u32 = 5;

/// Tries of a request after its first (redis-py's
/// `cluster_error_retry_attempts = 3`).
pub const MAX_RETRIES: u8 = 3;

/// A command a client sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Cmd {
    Get,
    Set,
    Incr,
    Append,
    /// The library's own `CLUSTER SLOTS` (not a request of the workload).
    ClusterSlots,
}

impl Cmd {
    pub fn is_write(self) -> bool {
        matches!(self, Cmd::Set | Cmd::Incr | Cmd::Append)
    }

    /// The name as sent.
    pub fn name(self) -> &'static str {
        match self {
            Cmd::Get => "GET",
            Cmd::Set => "SET",
            Cmd::Incr => "INCR",
            Cmd::Append => "APPEND",
            Cmd::ClusterSlots => "CLUSTER SLOTS",
        }
    }
}

/// One request on the wire: a few integers; the world writes its bytes
/// when a node reads it ([`Population::command`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Req {
    pub cmd: Cmd,
    /// `ASKING` first (after `-ASK`).
    pub asking: bool,
    /// `SET ... PX <ttl>`.
    pub ttl: bool,
    pub key: u32,
    /// Which try of the client this is (replies to older tries are stale).
    pub try_id: u32,
    /// The write id whose value a `SET` or `APPEND` writes.
    pub value: u64,
}

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Outcome {
    /// `+OK`.
    Ok,
    /// A nil reply.
    Nil,
    /// A bulk reply.
    Value,
    /// An integer reply.
    Int,
    /// Gave up redirected by `-MOVED` (too many redirections, or a target
    /// it cannot connect to).
    Moved,
    /// The same with `-ASK`.
    Ask,
    /// An error reply.
    Error,
    /// No reply within `timeout`.
    Timeout,
    /// The connection could not be opened: the request was not sent.
    Refused,
    /// The connection was reset while waiting for the reply.
    Reset,
    /// No reply yet when the run ended (never in the history: see
    /// [`Population::pending`]).
    Pending,
}

impl Outcome {
    /// A normal reply: `ops.ok`.
    pub fn is_ok(self) -> bool {
        matches!(
            self,
            Outcome::Ok | Outcome::Nil | Outcome::Value | Outcome::Int
        )
    }

    /// The request may have been executed though the client does not know
    /// (no reply: a timeout or a reset connection).
    pub fn maybe_applied(self) -> bool {
        matches!(self, Outcome::Timeout | Outcome::Reset | Outcome::Pending)
    }
}

/// What the client library makes of a reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Ok,
    Nil,
    Int(i64),
    /// A bulk value: the write id it starts with ([`NO_VALUE`] if none).
    Value(u64),
    /// `-MOVED slot endpoint:port`, the endpoint resolved to a process.
    Moved {
        slot: u16,
        node: Option<u32>,
    },
    /// `-ASK slot endpoint:port`.
    Ask {
        slot: u16,
        node: Option<u32>,
    },
    /// Another error reply, by class, with its text's index in
    /// [`ErrorTexts`].
    Error {
        class: ErrorClass,
        text: u16,
    },
    /// A `CLUSTER SLOTS` reply.
    Slots(Box<[SlotRange]>),
}

/// What the library does after an error reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// `-CLUSTERDOWN`: retry after `retry_after`, reloading the slot map.
    ClusterDown,
    /// `-TRYAGAIN` (and `-LOADING`, `-MASTERDOWN`): retry after
    /// `retry_after`.
    TryAgain,
    /// `-READONLY` (a replica): with sentinels, as a connection error
    /// (redis-py's `SentinelManagedConnection`: ask them again, retry);
    /// else as any other error.
    ReadOnly,
    /// Anything else: the request fails for good.
    Other,
}

/// One entry of a `CLUSTER SLOTS` reply: its slots and nodes (master
/// first), `None` for an endpoint that is no process of the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotRange {
    pub start: u16,
    pub end: u16,
    pub nodes: Vec<Option<u32>>,
}

/// "No error text".
pub const NO_TEXT: u16 = u16::MAX;

/// The distinct error texts of a run, so that a request's record holds a
/// number.
#[derive(Clone, Debug, Default)]
pub struct ErrorTexts {
    texts: Vec<String>,
    index: BTreeMap<String, u16>,
}

impl ErrorTexts {
    /// The number of `text`; past 65534 distinct texts, [`NO_TEXT`].
    pub fn intern(&mut self, text: &str) -> u16 {
        if let Some(&i) = self.index.get(text) {
            return i;
        }
        if self.texts.len() >= usize::from(NO_TEXT) {
            return NO_TEXT;
        }
        let i = self.texts.len() as u16;
        self.texts.push(text.to_string());
        self.index.insert(text.to_string(), i);
        i
    }

    pub fn text(&self, i: u16) -> Option<&str> {
        self.texts.get(usize::from(i)).map(String::as_str)
    }
}

/// The addresses of the run's processes, as a client resolves them.
#[derive(Clone, Debug, Default)]
pub struct AddrBook {
    addrs: Vec<Addr>,
    by_addr: BTreeMap<Addr, u32>,
}

impl AddrBook {
    /// `addrs[i]` is process `i`'s.
    pub fn new(addrs: Vec<Addr>) -> AddrBook {
        let by_addr = addrs
            .iter()
            .enumerate()
            .map(|(i, a)| (*a, i as u32))
            .collect();
        AddrBook { addrs, by_addr }
    }

    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }

    /// The process at `endpoint:port` (an IPv4 address in text), if any.
    pub fn resolve(&self, endpoint: &[u8], port: u16) -> Option<u32> {
        let text = std::str::from_utf8(endpoint).ok()?;
        let mut ip = [0u8; 4];
        let mut parts = text.split('.');
        for b in &mut ip {
            *b = parts.next()?.parse().ok()?;
        }
        if parts.next().is_some() {
            return None;
        }
        self.by_addr.get(&Addr::new(ip, port)).copied()
    }
}

/// What the client library makes of `reply`: redirections and
/// `CLUSTER SLOTS` decoded, values reduced to the write id they start
/// with, error texts numbered.
pub fn parse_reply(reply: &Reply, book: &AddrBook, errors: &mut ErrorTexts) -> Answer {
    match reply {
        Reply::Ok => Answer::Ok,
        Reply::Nil => Answer::Nil,
        Reply::Int(i) => Answer::Int(*i),
        Reply::Bulk(b) => Answer::Value(read_id(b)),
        Reply::Array(entries) => {
            Answer::Slots(entries.iter().filter_map(|e| slot_range(e, book)).collect())
        }
        Reply::Error(e) => {
            let redirect = |rest: &str| {
                let (slot, target) = rest.split_once(' ')?;
                let slot: u16 = slot.parse().ok()?;
                let (endpoint, port) = target.rsplit_once(':')?;
                let node = book.resolve(endpoint.as_bytes(), port.parse().ok()?);
                Some((slot, node))
            };
            if let Some((slot, node)) = e.strip_prefix("MOVED ").and_then(redirect) {
                return Answer::Moved { slot, node };
            }
            if let Some((slot, node)) = e.strip_prefix("ASK ").and_then(redirect) {
                return Answer::Ask { slot, node };
            }
            let code = e.split(' ').next().unwrap_or_default();
            let class = match code {
                "CLUSTERDOWN" => ErrorClass::ClusterDown,
                "TRYAGAIN" | "LOADING" | "MASTERDOWN" => ErrorClass::TryAgain,
                "READONLY" => ErrorClass::ReadOnly,
                _ => ErrorClass::Other,
            };
            Answer::Error {
                class,
                text: errors.intern(e),
            }
        }
    }
}

/// One entry of a `CLUSTER SLOTS` reply.
fn slot_range(entry: &Reply, book: &AddrBook) -> Option<SlotRange> {
    let Reply::Array(items) = entry else {
        return None;
    };
    let (Some(Reply::Int(start)), Some(Reply::Int(end))) = (items.first(), items.get(1)) else {
        return None;
    };
    let nodes = items[2..]
        .iter()
        .map(|n| match n {
            Reply::Array(f) => match (f.first(), f.get(1)) {
                (Some(Reply::Bulk(ip)), Some(Reply::Int(port))) => {
                    book.resolve(ip, u16::try_from(*port).ok()?)
                }
                _ => None,
            },
            _ => None,
        })
        .collect();
    Some(SlotRange {
        start: u16::try_from(*start).ok()?,
        end: u16::try_from(*end).ok()?,
        nodes,
    })
}

/// One finished try of a request: what the run's history keeps of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpRecord {
    /// When the try was first sent.
    pub sent: SimTime,
    /// When it ended: its reply read, its timeout, its connection error.
    pub done: SimTime,
    /// `SET`/`APPEND`: the write id written; `INCR`: the reply; `GET`: the
    /// write id read ([`NO_VALUE`] if nil or none).
    pub value: u64,
    /// The client, numbered across populations.
    pub client: u32,
    pub key: u32,
    /// The process the last send went to.
    pub node: u16,
    pub slot: u16,
    /// The population (`[[workload]]` index).
    pub pop: u16,
    /// The error text of an `Error` outcome ([`NO_TEXT`] otherwise).
    pub error: u16,
    pub cmd: Cmd,
    pub outcome: Outcome,
    /// Redirections followed.
    pub redirects: u8,
    /// `SET ... PX` with the population's ttl.
    pub ttl: bool,
}

/// What a population is given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientInput {
    /// A timer set with [`ClientEffect::Timer`] fired.
    Timer { client: u32, token: u32 },
    /// The reply to try `try_id` of `client`.
    Answer {
        client: u32,
        try_id: u32,
        answer: Answer,
    },
    /// The sentinels' answer to [`ClientEffect::AskMaster`]: the master's
    /// process, or none (no sentinel knows a master that is up).
    MasterAddr { client: u32, node: Option<u32> },
    /// The connection carrying try `try_id` failed: `refused` when it
    /// could not be opened (nothing was sent), else reset.
    ConnError {
        client: u32,
        try_id: u32,
        refused: bool,
    },
}

/// Which kind of timer: the world may keep the timers of a fixed delay
/// (`now + timeout`, `now + retry_after`) in a queue of their own, in
/// order, rather than among all events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerKind {
    /// The next request of the schedule.
    Schedule,
    /// The reply's timeout.
    Timeout,
    /// The end of `retry_after`.
    Retry,
}

/// What a population asks for. `client` is the index in the population.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEffect {
    /// Send `req` to process `node` on the client's connection to it
    /// (opened first if there is none).
    Send {
        client: u32,
        node: u32,
        req: Req,
    },
    /// Drop the client's connection to `node`.
    Close {
        client: u32,
        node: u32,
    },
    /// Give [`ClientInput::Timer`] at `at`.
    Timer {
        client: u32,
        at: SimTime,
        token: u32,
        kind: TimerKind,
    },
    Record(OpRecord),
    /// A redirection the client got (followed or not).
    Redirected(Redirection),
    /// Ask the sentinels for the master's address
    /// (`SENTINEL get-master-addr-by-name`); the answer comes as
    /// [`ClientInput::MasterAddr`].
    AskMaster {
        client: u32,
    },
}

/// One `-MOVED` or `-ASK` reply a client got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Redirection {
    pub at: SimTime,
    /// The client, numbered across populations.
    pub client: u32,
    pub slot: u16,
    /// The process that replied.
    pub from: u32,
    /// The process named (`None` if the address is no process's).
    pub to: Option<u32>,
    /// `-ASK` (else `-MOVED`).
    pub ask: bool,
}

/// The population's settings, from its `[[workload]]`.
#[derive(Clone, Debug)]
struct Settings {
    clients: u32,
    /// Microseconds between two requests of one client.
    interval_us: f64,
    read_ratio: f64,
    write: Cmd,
    value_size: usize,
    ttl_ms: Option<u64>,
    /// Keys whose number is a multiple of this get the ttl (0: none).
    ttl_every: u64,
    timeout: SimTime,
    retry_after: SimTime,
    start: SimTime,
    stop: SimTime,
    read_from_replicas: bool,
    on_miss_set: bool,
    /// A plain client: no slot map, every request to [`Population::target`].
    plain: bool,
    /// A plain client that asks the sentinels for its target (sentinel
    /// mode): first, and after a connection error, a timeout or `-READONLY`.
    discover: bool,
}

/// "No node known".
const NO_NODE: u32 = u32::MAX;

/// The library's slot map.
#[derive(Clone, Debug)]
struct SlotMap {
    /// Per slot, the process of its master ([`NO_NODE`] when unknown).
    master: Vec<u32>,
    /// Per process, its replicas as the last `CLUSTER SLOTS` listed them.
    replicas: Vec<Vec<u32>>,
    /// When the last `CLUSTER SLOTS` reply arrived (`None`: never).
    loaded_at: Option<SimTime>,
}

impl SlotMap {
    fn apply(&mut self, ranges: &[SlotRange], now: SimTime) {
        self.replicas.iter_mut().for_each(Vec::clear);
        // Ranges in slot order (as `CLUSTER SLOTS` lists them): each slot
        // is written once, the gaps between them marked unknown.
        let sorted = ranges.windows(2).all(|w| w[0].end < w[1].start);
        if !sorted {
            self.master.fill(NO_NODE);
        }
        let mut next = 0;
        for r in ranges {
            let Some(Some(m)) = r.nodes.first().copied() else {
                continue;
            };
            let (start, end) = (usize::from(r.start), usize::from(r.end));
            if sorted {
                self.master[next..start].fill(NO_NODE);
                next = end + 1;
            }
            self.master[start..=end].fill(m);
            let reps = &mut self.replicas[m as usize];
            reps.clear();
            reps.extend(r.nodes[1..].iter().flatten());
        }
        if sorted {
            self.master[next..].fill(NO_NODE);
        }
        self.loaded_at = Some(now);
    }
}

/// The request a client is working on.
#[derive(Clone, Copy, Debug)]
struct Op {
    cmd: Cmd,
    key: u32,
    slot: u16,
    value: u64,
    ttl: bool,
}

/// The current try of a request.
#[derive(Clone, Copy, Debug)]
struct OpTry {
    sent: SimTime,
    redirects: u8,
}

/// A send waiting for its reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Flight {
    /// A `CLUSTER SLOTS` of the library rather than the request.
    refresh: bool,
    node: u32,
    sent: SimTime,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Until the schedule's timer.
    Idle,
    /// Until the population's first slot map arrives.
    WaitMap,
    InFlight(Flight),
    /// `retry_after` after a failed try.
    Backoff,
    Stopped,
}

#[derive(Clone, Debug)]
struct Client {
    /// Requests of the schedule completed.
    done: u64,
    /// Writes so far (the sequence number of write ids).
    seq: u32,
    op: Option<Op>,
    op_try: Option<OpTry>,
    /// Failed tries of the current request.
    failures: u8,
    phase: Phase,
    /// The one timer that counts; older ones are stale.
    timer: u32,
    try_id: u32,
    /// Reload the slot map before the next try unless it was reloaded
    /// after `failed_at`.
    want_refresh: bool,
    failed_at: SimTime,
}

/// One `[[workload]]`: its clients and their library.
#[derive(Clone, Debug)]
pub struct Population {
    pub index: u32,
    /// The number of its client 0 among all clients of the run.
    pub first_client: u32,
    cfg: Settings,
    rng: Rng,
    keys: KeyChooser,
    /// The population's `CLUSTER SLOTS` in flight.
    refreshing: bool,
    /// Clients waiting for the first slot map.
    waiting: Vec<u32>,
    /// The node asked for `CLUSTER SLOTS` (and sent requests for slots
    /// with no known owner).
    cursor: u32,
    moved: u32,
    map: SlotMap,
    nodes: u32,
    /// The node a plain client sends to (node 0 until repointed).
    target: u32,
    clients: Vec<Client>,
    names: Rc<KeyNames>,
    buf: Vec<u8>,
}

impl Population {
    /// Population `index` of a run with `seed`, for workload `w`, its
    /// clients numbered from `first_client`, `nodes` processes to talk to.
    pub fn new(
        index: u32,
        w: &Workload,
        first_client: u32,
        seed: u64,
        nodes: u32,
        trace: Option<Vec<TraceOp>>,
        names: Rc<KeyNames>,
    ) -> Result<Population, String> {
        let keys = KeyChooser::new(w, trace, &names)?;
        let ttl_every = match w.ttl {
            Some(_) if w.ttl_share > 0.0 => ((1.0 / w.ttl_share).round() as u64).max(1),
            _ => 0,
        };
        let cfg = Settings {
            clients: w.clients,
            interval_us: f64::from(w.clients) * SEC as f64 / w.rate,
            read_ratio: w.read_ratio,
            write: match w.write {
                WriteCmd::Set => Cmd::Set,
                WriteCmd::Incr => Cmd::Incr,
                WriteCmd::Append => Cmd::Append,
            },
            value_size: w.value_size_bytes as usize,
            ttl_ms: w.ttl.map(|t| t / 1000),
            ttl_every,
            timeout: w.timeout,
            retry_after: w.retry_after,
            start: w.start,
            stop: w.stop.unwrap_or(SimTime::MAX),
            read_from_replicas: w.read_from_replicas,
            on_miss_set: w.on_miss == OnMiss::Set,
            plain: false,
            discover: false,
        };
        let client = Client {
            done: 0,
            seq: 0,
            op: None,
            op_try: None,
            failures: 0,
            phase: Phase::Idle,
            timer: 0,
            try_id: 0,
            want_refresh: false,
            failed_at: 0,
        };
        Ok(Population {
            index,
            first_client,
            rng: actor_rng(seed, Actor::Clients(index)),
            keys,
            refreshing: false,
            waiting: Vec::new(),
            cursor: 0,
            moved: 0,
            map: SlotMap {
                master: vec![NO_NODE; crate::node::slots::CLUSTER_SLOTS],
                replicas: vec![Vec::new(); nodes as usize],
                loaded_at: None,
            },
            nodes,
            target: 0,
            clients: vec![client; w.clients as usize],
            names,
            buf: Vec::new(),
            cfg,
        })
    }

    /// Make the population plain clients of node 0 (nodes with
    /// `cluster-enabled no`): no `CLUSTER SLOTS`, no slot map.
    pub fn plain(mut self) -> Population {
        self.cfg.plain = true;
        self
    }

    /// Make the population plain clients of the master the sentinels name
    /// (redis-py's `Sentinel.master_for`).
    pub fn sentinel(mut self) -> Population {
        self.cfg.plain = true;
        self.cfg.discover = true;
        self.target = NO_NODE;
        self
    }

    /// Plain clients: send from now on to `node` (the application's
    /// master address changed).
    pub fn repoint(&mut self, node: u32) {
        self.target = node;
    }

    /// The tries waiting for their reply at `now`, as records with the
    /// outcome [`Outcome::Pending`].
    pub fn pending(&self, now: SimTime) -> impl Iterator<Item = OpRecord> + '_ {
        (0..self.cfg.clients).filter_map(move |c| match self.clients[c as usize].phase {
            Phase::InFlight(f) if !f.refresh => {
                let op = self.clients[c as usize].op?;
                let value = if matches!(op.cmd, Cmd::Set | Cmd::Append) {
                    op.value
                } else {
                    NO_VALUE
                };
                Some(self.record_of(now, c, f, Outcome::Pending, value, NO_TEXT))
            }
            _ => None,
        })
    }

    /// Whether timer `token` of `client` is still the one that counts (a
    /// later timer replaces it).
    pub fn timer_counts(&self, client: u32, token: u32) -> bool {
        self.clients[client as usize].timer == token
    }

    /// Whether new connections start with `READONLY`.
    pub fn read_from_replicas(&self) -> bool {
        self.cfg.read_from_replicas
    }

    /// The first timers: each client's first request.
    pub fn start(&mut self, out: &mut Vec<ClientEffect>) {
        for c in 0..self.cfg.clients {
            let due = self.due(c, 0);
            self.arm(c, TimerKind::Schedule, due, out);
        }
    }

    /// When client `c`'s `k`-th request of the schedule is due.
    fn due(&self, c: u32, k: u64) -> SimTime {
        let at = (k as f64 + f64::from(c) / f64::from(self.cfg.clients)) * self.cfg.interval_us;
        self.cfg.start.saturating_add(at as SimTime)
    }

    /// The arguments of `req` (without `ASKING`), into `argv`.
    pub fn command(&self, req: &Req, argv: &mut Argv) {
        argv.clear();
        if req.cmd == Cmd::ClusterSlots {
            argv.push(b"CLUSTER");
            argv.push(b"SLOTS");
            return;
        }
        argv.push(req.cmd.name().as_bytes());
        argv.push_with(|b| self.names.write(req.key, b));
        if matches!(req.cmd, Cmd::Set | Cmd::Append) {
            argv.push_with(|b| write_value(req.value, self.cfg.value_size, b));
        }
        if let (true, Some(ms)) = (req.ttl, self.cfg.ttl_ms) {
            argv.push(b"PX");
            argv.push_with(|b| keys::push_decimal(b, ms));
        }
    }

    /// The RESP size of the request [`Population::command`] writes for
    /// `req`, without writing it.
    pub fn request_len(&self, req: &Req) -> u64 {
        if req.cmd == Cmd::ClusterSlots {
            return request_len(&[b"CLUSTER", b"SLOTS"]);
        }
        let mut lens: smallvec::SmallVec<[u64; 6]> = smallvec::SmallVec::new();
        lens.push(req.cmd.name().len() as u64);
        lens.push(self.names.len(req.key) as u64);
        if matches!(req.cmd, Cmd::Set | Cmd::Append) {
            lens.push(keys::value_len(req.value, self.cfg.value_size) as u64);
        }
        if let (true, Some(ms)) = (req.ttl, self.cfg.ttl_ms) {
            lens.push(2);
            lens.push(resp::digits(ms));
        }
        resp::multibulk_size_of(&lens)
    }

    /// Handle one input at `now`; effects go to `out`.
    pub fn handle(&mut self, now: SimTime, input: ClientInput, out: &mut Vec<ClientEffect>) {
        match input {
            ClientInput::Timer { client, token } => {
                let cl = &self.clients[client as usize];
                if cl.timer != token {
                    return;
                }
                match cl.phase {
                    Phase::Idle => self.begin(now, client, out),
                    Phase::Backoff => self.after_backoff(now, client, out),
                    Phase::InFlight(f) => {
                        out.push(ClientEffect::Close {
                            client,
                            node: f.node,
                        });
                        self.fail(now, client, f, Outcome::Timeout, NO_TEXT, true, out);
                    }
                    Phase::WaitMap | Phase::Stopped => {}
                }
            }
            ClientInput::Answer {
                client,
                try_id,
                answer,
            } => {
                if let Some(f) = self.awaiting(client, try_id) {
                    self.answer(now, client, f, answer, out);
                }
            }
            ClientInput::MasterAddr { client, node } => {
                if self.clients[client as usize].phase != Phase::WaitMap {
                    return;
                }
                match node {
                    Some(n) => {
                        self.target = n;
                        self.dispatch(now, client, out);
                    }
                    None => {
                        self.clients[client as usize].want_refresh = true;
                        self.backoff(now, client, out);
                    }
                }
            }
            ClientInput::ConnError {
                client,
                try_id,
                refused,
            } => {
                if let Some(f) = self.awaiting(client, try_id) {
                    let outcome = if refused {
                        Outcome::Refused
                    } else {
                        Outcome::Reset
                    };
                    self.fail(now, client, f, outcome, NO_TEXT, true, out);
                }
            }
        }
    }

    /// The send of `client` waiting for try `try_id`'s reply, if any.
    fn awaiting(&self, client: u32, try_id: u32) -> Option<Flight> {
        let cl = &self.clients[client as usize];
        match cl.phase {
            Phase::InFlight(f) if cl.try_id == try_id => Some(f),
            _ => None,
        }
    }

    /// Set client `c`'s one timer: at `at` for the schedule, else after
    /// the timeout or `retry_after` from `at`.
    fn arm(&mut self, c: u32, kind: TimerKind, at: SimTime, out: &mut Vec<ClientEffect>) {
        let at = match kind {
            TimerKind::Schedule => at,
            TimerKind::Timeout => at + self.cfg.timeout,
            TimerKind::Retry => at + self.cfg.retry_after,
        };
        let cl = &mut self.clients[c as usize];
        cl.timer = cl.timer.wrapping_add(1);
        out.push(ClientEffect::Timer {
            client: c,
            at,
            token: cl.timer,
            kind,
        });
    }

    fn stop(&mut self, c: u32) {
        let cl = &mut self.clients[c as usize];
        cl.phase = Phase::Stopped;
        cl.op = None;
    }

    /// The next request of the schedule.
    fn begin(&mut self, now: SimTime, c: u32, out: &mut Vec<ClientEffect>) {
        if now >= self.cfg.stop {
            return self.stop(c);
        }
        let Some((key, trace_set)) = self.keys.next(&mut self.rng) else {
            return self.stop(c);
        };
        let cmd = match trace_set {
            Some(true) => Cmd::Set,
            Some(false) => Cmd::Get,
            None if zipf::unit(&mut self.rng) < self.cfg.read_ratio => Cmd::Get,
            None => self.cfg.write,
        };
        self.set_op(c, cmd, key);
        self.dispatch(now, c, out);
    }

    fn set_op(&mut self, c: u32, cmd: Cmd, key: u32) {
        let slot = self.names.slot(key, &mut self.buf);
        let ttl = cmd == Cmd::Set
            && self.cfg.ttl_every != 0
            && self
                .names
                .ttl_number(key)
                .is_multiple_of(self.cfg.ttl_every);
        let cl = &mut self.clients[c as usize];
        let value = if matches!(cmd, Cmd::Set | Cmd::Append) {
            cl.seq = cl.seq.wrapping_add(1);
            write_id(self.first_client + c, cl.seq)
        } else {
            0
        };
        cl.op = Some(Op {
            cmd,
            key,
            slot,
            value,
            ttl,
        });
        cl.op_try = None;
        cl.failures = 0;
    }

    /// Send the current request where the map says, once there is a map
    /// and after reloading it if a failure asked for it (a plain client:
    /// to its node).
    fn dispatch(&mut self, now: SimTime, c: u32, out: &mut Vec<ClientEffect>) {
        if self.cfg.plain {
            let cl = &mut self.clients[c as usize];
            if self.cfg.discover && (self.target == NO_NODE || cl.want_refresh) {
                cl.want_refresh = false;
                cl.phase = Phase::WaitMap;
                out.push(ClientEffect::AskMaster { client: c });
                return;
            }
            return self.send(now, c, self.target, false, out);
        }
        if self.map.loaded_at.is_none() {
            if self.refreshing {
                self.clients[c as usize].phase = Phase::WaitMap;
                self.waiting.push(c);
            } else {
                self.send_refresh(now, c, out);
            }
            return;
        }
        let cl = &mut self.clients[c as usize];
        if cl.want_refresh && !self.refreshing {
            cl.want_refresh = false;
            if self.map.loaded_at.is_some_and(|t| t <= cl.failed_at) {
                return self.send_refresh(now, c, out);
            }
        }
        let op = self.clients[c as usize]
            .op
            .expect("dispatch with a request");
        let master = self.map.master[usize::from(op.slot)];
        let node = if master == NO_NODE {
            self.cursor
        } else {
            let reps = &self.map.replicas[master as usize];
            if op.cmd == Cmd::Get && self.cfg.read_from_replicas && !reps.is_empty() {
                reps[self.rng.random_range(0..reps.len())]
            } else {
                master
            }
        };
        self.send(now, c, node, false, out);
    }

    /// Send the current request to `node`.
    fn send(&mut self, now: SimTime, c: u32, node: u32, asking: bool, out: &mut Vec<ClientEffect>) {
        let cl = &mut self.clients[c as usize];
        let op = cl.op.expect("send with a request");
        cl.try_id = cl.try_id.wrapping_add(1);
        cl.op_try.get_or_insert(OpTry {
            sent: now,
            redirects: 0,
        });
        cl.phase = Phase::InFlight(Flight {
            refresh: false,
            node,
            sent: now,
        });
        let req = Req {
            cmd: op.cmd,
            asking,
            ttl: op.ttl,
            key: op.key,
            try_id: cl.try_id,
            value: op.value,
        };
        out.push(ClientEffect::Send {
            client: c,
            node,
            req,
        });
        self.arm(c, TimerKind::Timeout, now, out);
    }

    /// Ask the cursor node for `CLUSTER SLOTS` on client `c`'s connection.
    fn send_refresh(&mut self, now: SimTime, c: u32, out: &mut Vec<ClientEffect>) {
        self.refreshing = true;
        let node = self.cursor;
        let cl = &mut self.clients[c as usize];
        cl.try_id = cl.try_id.wrapping_add(1);
        cl.phase = Phase::InFlight(Flight {
            refresh: true,
            node,
            sent: now,
        });
        let req = Req {
            cmd: Cmd::ClusterSlots,
            asking: false,
            ttl: false,
            key: 0,
            try_id: cl.try_id,
            value: 0,
        };
        out.push(ClientEffect::Send {
            client: c,
            node,
            req,
        });
        self.arm(c, TimerKind::Timeout, now, out);
    }

    fn answer(
        &mut self,
        now: SimTime,
        c: u32,
        f: Flight,
        answer: Answer,
        out: &mut Vec<ClientEffect>,
    ) {
        if f.refresh {
            let (outcome, text) = match answer {
                Answer::Slots(ranges) => {
                    self.map.apply(&ranges, now);
                    if ranges.is_empty() {
                        // A node that serves nothing (not in the cluster,
                        // or before its creation): ask another next time.
                        self.cursor = (self.cursor + 1) % self.nodes;
                    }
                    (Outcome::Ok, NO_TEXT)
                }
                Answer::Error { text, .. } => (Outcome::Error, text),
                _ => (Outcome::Error, NO_TEXT),
            };
            return self.refreshed(now, c, f, outcome, text, out);
        }
        let op = self.clients[c as usize].op.expect("reply to a request");
        let value = match (&answer, op.cmd) {
            (_, Cmd::Set | Cmd::Append) => op.value,
            (Answer::Int(i), _) => *i as u64,
            (Answer::Value(id), _) => *id,
            _ => NO_VALUE,
        };
        let outcome = match answer {
            Answer::Moved { slot, node } => return self.redirect(now, c, f, Some(slot), node, out),
            Answer::Ask { node, .. } => return self.redirect(now, c, f, None, node, out),
            Answer::Error {
                class: class @ (ErrorClass::ClusterDown | ErrorClass::TryAgain),
                text,
            } => {
                let refresh = class == ErrorClass::ClusterDown;
                return self.fail(now, c, f, Outcome::Error, text, refresh, out);
            }
            Answer::Error {
                class: ErrorClass::ReadOnly,
                text,
            } if self.cfg.discover => {
                return self.fail(now, c, f, Outcome::Error, text, true, out);
            }
            Answer::Error {
                class: ErrorClass::Other | ErrorClass::ReadOnly,
                text,
            } => {
                // Not retried: the request is over.
                self.record(now, c, f, Outcome::Error, value, text, out);
                return self.next(now, c, out);
            }
            Answer::Slots(_) => {
                self.record(now, c, f, Outcome::Error, value, NO_TEXT, out);
                return self.next(now, c, out);
            }
            Answer::Ok => Outcome::Ok,
            Answer::Nil => Outcome::Nil,
            Answer::Int(_) => Outcome::Int,
            Answer::Value(_) => Outcome::Value,
        };
        self.record(now, c, f, outcome, value, NO_TEXT, out);
        if outcome == Outcome::Nil
            && op.cmd == Cmd::Get
            && self.cfg.on_miss_set
            && now < self.cfg.stop
        {
            self.set_op(c, Cmd::Set, op.key);
            self.dispatch(now, c, out);
        } else {
            self.next(now, c, out);
        }
    }

    /// Follow `-MOVED` (with its slot) or `-ASK` to `target`.
    fn redirect(
        &mut self,
        now: SimTime,
        c: u32,
        f: Flight,
        moved: Option<u16>,
        target: Option<u32>,
        out: &mut Vec<ClientEffect>,
    ) {
        let op = self.clients[c as usize].op.expect("a redirected request");
        out.push(ClientEffect::Redirected(Redirection {
            at: now,
            client: self.first_client + c,
            slot: moved.unwrap_or(op.slot),
            from: f.node,
            to: target,
            ask: moved.is_none(),
        }));
        let t = self.clients[c as usize]
            .op_try
            .as_mut()
            .expect("a redirected request has a try");
        let (Some(target), true) = (target, t.redirects + 1 < MAX_SENDS) else {
            let outcome = if moved.is_some() {
                Outcome::Moved
            } else {
                Outcome::Ask
            };
            return self.fail(now, c, f, outcome, NO_TEXT, true, out);
        };
        t.redirects += 1;
        let Some(slot) = moved else {
            return self.send(now, c, target, true, out);
        };
        self.moved += 1;
        if self.moved.is_multiple_of(MOVED_RELOAD_EVERY) && !self.refreshing {
            return self.send_refresh(now, c, out);
        }
        self.map.master[usize::from(slot)] = target;
        self.send(now, c, target, false, out);
    }

    /// The library's `CLUSTER SLOTS` ended with `outcome`; go on with the
    /// request it was sent for, and release the clients waiting for the
    /// first map.
    fn refreshed(
        &mut self,
        now: SimTime,
        c: u32,
        f: Flight,
        outcome: Outcome,
        text: u16,
        out: &mut Vec<ClientEffect>,
    ) {
        self.refreshing = false;
        self.record(now, c, f, outcome, NO_VALUE, text, out);
        if outcome != Outcome::Ok {
            self.cursor = (self.cursor + 1) % self.nodes;
        }
        for w in std::mem::take(&mut self.waiting) {
            if self.clients[w as usize].phase == Phase::WaitMap {
                self.dispatch(now, w, out);
            }
        }
        if self.map.loaded_at.is_none() {
            self.backoff(now, c, out);
        } else {
            self.dispatch(now, c, out);
        }
    }

    /// The current try failed: record it, then retry after `retry_after`
    /// unless it was the last try (reloading the map first if `refresh`).
    /// A failed `CLUSTER SLOTS` goes on with the request instead.
    #[allow(clippy::too_many_arguments)]
    fn fail(
        &mut self,
        now: SimTime,
        c: u32,
        f: Flight,
        outcome: Outcome,
        text: u16,
        refresh: bool,
        out: &mut Vec<ClientEffect>,
    ) {
        if f.refresh {
            return self.refreshed(now, c, f, outcome, text, out);
        }
        let op = self.clients[c as usize].op.expect("a failed request");
        let value = if op.cmd == Cmd::Get || op.cmd == Cmd::Incr {
            NO_VALUE
        } else {
            op.value
        };
        self.record(now, c, f, outcome, value, text, out);
        let cl = &mut self.clients[c as usize];
        cl.op_try = None;
        cl.failures += 1;
        if refresh {
            cl.want_refresh = true;
            cl.failed_at = now;
        }
        if cl.failures > MAX_RETRIES {
            self.next(now, c, out);
        } else {
            self.backoff(now, c, out);
        }
    }

    /// Wait `retry_after` before the next try.
    fn backoff(&mut self, now: SimTime, c: u32, out: &mut Vec<ClientEffect>) {
        self.clients[c as usize].phase = Phase::Backoff;
        self.arm(c, TimerKind::Retry, now, out);
    }

    fn after_backoff(&mut self, now: SimTime, c: u32, out: &mut Vec<ClientEffect>) {
        if now >= self.cfg.stop {
            return self.stop(c);
        }
        self.dispatch(now, c, out);
    }

    /// The request is over: on to the next of the schedule.
    fn next(&mut self, now: SimTime, c: u32, out: &mut Vec<ClientEffect>) {
        let cl = &mut self.clients[c as usize];
        cl.op = None;
        cl.op_try = None;
        cl.done += 1;
        let due = self.due(c, self.clients[c as usize].done);
        if due <= now {
            self.begin(now, c, out);
        } else {
            self.clients[c as usize].phase = Phase::Idle;
            self.arm(c, TimerKind::Schedule, due, out);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        now: SimTime,
        c: u32,
        f: Flight,
        outcome: Outcome,
        value: u64,
        error: u16,
        out: &mut Vec<ClientEffect>,
    ) {
        out.push(ClientEffect::Record(
            self.record_of(now, c, f, outcome, value, error),
        ));
    }

    fn record_of(
        &self,
        now: SimTime,
        c: u32,
        f: Flight,
        outcome: Outcome,
        value: u64,
        error: u16,
    ) -> OpRecord {
        let cl = &self.clients[c as usize];
        match (f.refresh, cl.op, cl.op_try) {
            (false, Some(op), Some(t)) => OpRecord {
                sent: t.sent,
                done: now,
                value,
                client: self.first_client + c,
                key: op.key,
                node: f.node as u16,
                slot: op.slot,
                pop: self.index as u16,
                error,
                cmd: op.cmd,
                outcome,
                redirects: t.redirects,
                ttl: op.ttl,
            },
            _ => OpRecord {
                sent: f.sent,
                done: now,
                value,
                client: self.first_client + c,
                key: 0,
                node: f.node as u16,
                slot: 0,
                pop: self.index as u16,
                error,
                cmd: Cmd::ClusterSlots,
                outcome,
                redirects: 0,
                ttl: false,
            },
        }
    }
}

#[cfg(test)]
mod tests;
