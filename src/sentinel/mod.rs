//! One Redis Sentinel (Redis 7.0.15 `src/sentinel.c`) monitoring one
//! master, as a sans-IO state machine: `(now, Input)` in, [`Effect`]s out.
//! The names are Sentinel's: `sentinelRedisInstance` ([`Instance`]) with
//! its `SRI_*` flags, `sentinelTimer` ([`Sentinel::timer`]) run every
//! `1000 / hz` ms with `hz = 10 + rand() % 10` drawn anew after each run
//! (so sentinels do not stay in step), `sentinelHandleRedisInstance` for
//! the master, its replicas and the other sentinels, in that order.
//!
//! - **Monitoring**: `PING` when the last reply is older than
//!   `min(down-after-milliseconds, 1 s)` (and no `PING` sent in the last
//!   half of that), `INFO` every 10 s (every second for replicas while the
//!   master is O_DOWN or failing over, or while their link is down), a
//!   hello (`PUBLISH __sentinel__:hello`) every 2 s to the master, the
//!   replicas and the known sentinels. Hellos reach the other sentinels
//!   through the instances' pub/sub channel: that is how they discover
//!   each other. `INFO` of the master lists its replicas.
//! - **S_DOWN** (`sentinelCheckSubjectivelyDown`): no valid reply to a
//!   `PING` for `down-after-milliseconds` (counted from the first
//!   unanswered one), or a master reporting itself a replica for that long
//!   plus two `INFO` periods.
//! - **O_DOWN** (`sentinelCheckObjectivelyDown`): S_DOWN here and at
//!   least `quorum` sentinels (this one included) answered
//!   `SENTINEL is-master-down-by-addr` with 1 in the last 5 s (asked every
//!   second while S_DOWN).
//! - **Election** (`sentinelStartFailover`, `sentinelVoteLeader`,
//!   `sentinelGetLeader`): a sentinel that sees O_DOWN and has not tried
//!   for `2 × failover-timeout` bumps `current_epoch`, asks the others for
//!   their vote (`is-master-down-by-addr` with its run id) and waits
//!   `rand() % SENTINEL_MAX_DESYNC` ms; a sentinel votes once per epoch
//!   (first come) and, when it voted for another, delays its own try. The
//!   winner needs `max(quorum, voters / 2 + 1)` votes of the sentinels it
//!   knows (itself included); without it the try is aborted after
//!   `min(10 s, failover-timeout)`.
//! - **Failover**: `sentinelSelectSlave` (not S_DOWN, link up, replied in
//!   the last 5 s, `INFO` fresh, link to the master not down for too long,
//!   priority not 0; then lowest priority, greatest offset, smallest run
//!   id), `SLAVEOF NO ONE`, the promotion seen in `INFO`
//!   (`+promoted-slave`, the master's config epoch = the failover epoch),
//!   `SLAVEOF` to the other replicas `parallel-syncs` at a time, the end
//!   (`+failover-end`, or on `failover-timeout`) and `+switch-master`: the
//!   promoted replica is the master, the old one a replica. An old master
//!   that returns reporting itself master is converted
//!   (`+convert-to-slave`) once it has reported so for 8 s.
//! - **TILT**: a timer run more than 2 s after the previous one (the
//!   process was stopped) enters TILT for 30 s: monitoring goes on, no
//!   acting, and `is-master-down-by-addr` answers 0.
//!
//! Links are simplified: a link "connects" at once (as hiredis's async
//! connect lets Sentinel queue commands before it completes); the world
//! reports [`Input::LinkError`] when a command meets a dead process or the
//! process dies, and loses what a partition blocks. No `AUTH`, scripts,
//! `CLIENT SETNAME`, or configuration commands.

use rand::RngExt;

use crate::engine::{Rng, SimTime, MS};
use crate::net::Addr;
use crate::node::bus::NodeId;
use crate::scenario::SentinelSpec;

pub const SRI_MASTER: u32 = 1 << 0;
pub const SRI_SLAVE: u32 = 1 << 1;
pub const SRI_SENTINEL: u32 = 1 << 2;
pub const SRI_S_DOWN: u32 = 1 << 3;
pub const SRI_O_DOWN: u32 = 1 << 4;
pub const SRI_MASTER_DOWN: u32 = 1 << 5;
pub const SRI_FAILOVER_IN_PROGRESS: u32 = 1 << 6;
pub const SRI_PROMOTED: u32 = 1 << 7;
pub const SRI_RECONF_SENT: u32 = 1 << 8;
pub const SRI_RECONF_INPROG: u32 = 1 << 9;
pub const SRI_RECONF_DONE: u32 = 1 << 10;

pub const SENTINEL_PING_PERIOD: i64 = 1000;
const SENTINEL_INFO_PERIOD: i64 = 10_000;
const SENTINEL_ASK_PERIOD: i64 = 1000;
const SENTINEL_PUBLISH_PERIOD: i64 = 2000;
const SENTINEL_TILT_TRIGGER: i64 = 2000;
const SENTINEL_TILT_PERIOD: i64 = SENTINEL_PING_PERIOD * 30;
const SENTINEL_SLAVE_RECONF_TIMEOUT: i64 = 10_000;
const SENTINEL_MIN_LINK_RECONNECT_PERIOD: i64 = 15_000;
const SENTINEL_ELECTION_TIMEOUT: i64 = 10_000;
const SENTINEL_MAX_PENDING_COMMANDS: u32 = 100;
pub const SENTINEL_MAX_DESYNC: i64 = 1000;
const CONFIG_DEFAULT_HZ: u64 = 10;

/// `SENTINEL_FAILOVER_STATE_*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FailoverState {
    None,
    WaitStart,
    SelectSlave,
    SendSlaveofNoone,
    WaitPromotion,
    ReconfSlaves,
    UpdateConfig,
}

/// A hello: `sentinel_ip,sentinel_port,sentinel_runid,current_epoch,
/// master_name,master_ip,master_port,master_config_epoch`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    pub addr: Addr,
    pub runid: NodeId,
    pub current_epoch: u64,
    pub master: Addr,
    pub master_config_epoch: u64,
}

/// The lines of `INFO` Sentinel reads (`sentinelRefreshInstanceInfo`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceInfo {
    pub run_id: NodeId,
    /// `role:master` (else `role:slave`).
    pub role_master: bool,
    /// A master's `slave<n>:ip=...,port=...` lines.
    pub slaves: Vec<Addr>,
    /// A replica's `master_host`/`master_port`.
    pub master_host: Option<Addr>,
    pub master_link_up: bool,
    /// `master_link_down_since_seconds`, when the link is down.
    pub master_link_down_since_s: Option<i64>,
    pub slave_priority: u32,
    pub slave_repl_offset: i64,
}

/// A command a sentinel sends to an instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cmd {
    Ping,
    Info,
    /// `PUBLISH __sentinel__:hello <hello>` (to a sentinel: its own
    /// `PUBLISH`, which processes the hello directly).
    Publish(Hello),
    /// `MULTI, SLAVEOF <addr> | NO ONE, CONFIG REWRITE, CLIENT KILL TYPE
    /// normal, CLIENT KILL TYPE pubsub, EXEC`.
    SlaveOf(Option<Addr>),
    /// `SENTINEL is-master-down-by-addr <ip> <port> <current_epoch>
    /// <runid | *>`.
    IsMasterDownByAddr {
        master: Addr,
        current_epoch: u64,
        runid: Option<NodeId>,
    },
}

/// What an instance answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Pong,
    /// `-LOADING`: valid as a `PING` reply.
    Loading,
    Info(Box<InstanceInfo>),
    Published,
    IsMasterDown {
        down: bool,
        leader: Option<NodeId>,
        leader_epoch: u64,
    },
    Ok,
}

/// What a sentinel is given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// `sentinelTimer`.
    Timer,
    /// The reply of instance `from`.
    Reply { from: Addr, reply: Reply },
    /// The link to `to` failed (refused, reset).
    LinkError { to: Addr },
    /// A hello arrived on the pub/sub link of instance `via`.
    Hello { via: Addr, hello: Hello },
}

/// What a sentinel asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Open the links to `to` (the command link, and the pub/sub link
    /// subscribed to `__sentinel__:hello` for a master or replica).
    Connect {
        to: Addr,
        pubsub: bool,
    },
    Send {
        to: Addr,
        cmd: Cmd,
    },
    Event(Event),
}

/// A `sentinelEvent`: its type (`+sdown`, `+switch-master`, ...), the
/// instance it is about, and a detail (an epoch, the new address).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: &'static str,
    pub instance: Addr,
    pub detail: String,
}

/// `instanceLink`.
#[derive(Clone, Debug)]
struct Link {
    disconnected: bool,
    pending_commands: u32,
    cc_conn_time: i64,
    pc_conn_time: i64,
    pc_last_activity: i64,
    last_reconn_time: i64,
    act_ping_time: i64,
    last_ping_time: i64,
    last_pong_time: i64,
    last_avail_time: i64,
}

impl Link {
    /// `createInstanceLink`.
    fn new(now: i64) -> Link {
        Link {
            disconnected: true,
            pending_commands: 0,
            cc_conn_time: 0,
            pc_conn_time: 0,
            pc_last_activity: 0,
            last_reconn_time: -SENTINEL_PING_PERIOD,
            act_ping_time: now,
            last_ping_time: 0,
            last_pong_time: now,
            last_avail_time: now,
        }
    }
}

/// `sentinelRedisInstance`.
#[derive(Clone, Debug)]
pub struct Instance {
    pub flags: u32,
    pub addr: Addr,
    pub runid: Option<NodeId>,
    link: Link,
    last_pub_time: i64,
    last_hello_time: i64,
    last_master_down_reply_time: i64,
    pub s_down_since_time: i64,
    pub o_down_since_time: i64,
    info_refresh: i64,
    role_reported: u32,
    role_reported_time: i64,
    master_link_down_time: i64,
    slave_master_host: Option<Addr>,
    slave_conf_change_time: i64,
    slave_master_link_up: bool,
    pub slave_priority: u32,
    pub slave_repl_offset: i64,
    slave_reconf_sent_time: i64,
    pub leader: Option<NodeId>,
    pub leader_epoch: u64,
    // Master only.
    pub config_epoch: u64,
    pub failover_state: FailoverState,
    failover_state_change_time: i64,
    failover_start_time: i64,
    pub failover_epoch: u64,
    /// Index in [`Sentinel::slaves`].
    promoted_slave: Option<usize>,
}

impl Instance {
    /// `createSentinelRedisInstance`.
    fn new(flags: u32, addr: Addr, now: i64) -> Instance {
        Instance {
            flags,
            addr,
            runid: None,
            link: Link::new(now),
            last_pub_time: 0,
            last_hello_time: now,
            last_master_down_reply_time: now,
            s_down_since_time: 0,
            o_down_since_time: 0,
            info_refresh: 0,
            role_reported: flags & (SRI_MASTER | SRI_SLAVE),
            role_reported_time: now,
            master_link_down_time: 0,
            slave_master_host: None,
            slave_conf_change_time: now,
            slave_master_link_up: false,
            slave_priority: 100,
            slave_repl_offset: 0,
            slave_reconf_sent_time: 0,
            leader: None,
            leader_epoch: 0,
            config_epoch: 0,
            failover_state: FailoverState::None,
            failover_state_change_time: 0,
            failover_start_time: 0,
            failover_epoch: 0,
            promoted_slave: None,
        }
    }

    /// `sentinelRedisInstanceNoDownFor`.
    fn no_down_for(&self, now: i64, ms: i64) -> bool {
        let most_recent = self.s_down_since_time.max(self.o_down_since_time);
        most_recent == 0 || now - most_recent > ms
    }
}

/// Which instance: the master, a replica, another sentinel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Which {
    Master,
    Slave(usize),
    Sentinel(usize),
}

/// What survives a restart (`sentinel.conf` as `sentinelFlushConfig`
/// rewrites it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentinelConf {
    pub myid: NodeId,
    pub current_epoch: u64,
    pub master: Addr,
    pub config_epoch: u64,
    pub leader_epoch: u64,
    pub known_replicas: Vec<Addr>,
    pub known_sentinels: Vec<(Addr, NodeId)>,
}

/// One Sentinel process monitoring one master.
pub struct Sentinel {
    pub myid: NodeId,
    pub current_epoch: u64,
    /// My own address (what my hellos announce).
    pub my_addr: Addr,
    quorum: u32,
    down_after_period: i64,
    failover_timeout: i64,
    parallel_syncs: u32,
    pub master: Instance,
    pub slaves: Vec<Instance>,
    pub sentinels: Vec<Instance>,
    pub tilt: bool,
    tilt_start_time: i64,
    previous_time: i64,
    rng: Rng,
    now: i64,
}

fn ms(now: SimTime) -> i64 {
    crate::node::mstime(now)
}

impl Sentinel {
    /// A sentinel started at `now` with `sentinel monitor <master> ...`
    /// and the scenario's directives, or from its `sentinel.conf`.
    pub fn new(
        my_addr: Addr,
        master: Addr,
        spec: &SentinelSpec,
        conf: Option<&SentinelConf>,
        mut rng: Rng,
        now: SimTime,
    ) -> Sentinel {
        let now = ms(now);
        let myid = conf.map_or_else(|| NodeId::random(&mut rng), |c| c.myid);
        let mut s = Sentinel {
            myid,
            current_epoch: 0,
            my_addr,
            quorum: spec.quorum,
            down_after_period: spec.down_after_ms as i64,
            failover_timeout: spec.failover_timeout_ms as i64,
            parallel_syncs: spec.parallel_syncs,
            master: Instance::new(SRI_MASTER, master, now),
            slaves: Vec::new(),
            sentinels: Vec::new(),
            tilt: false,
            tilt_start_time: 0,
            previous_time: now,
            rng,
            now,
        };
        if let Some(c) = conf {
            s.current_epoch = c.current_epoch;
            s.master = Instance::new(SRI_MASTER, c.master, now);
            s.master.config_epoch = c.config_epoch;
            s.master.leader_epoch = c.leader_epoch;
            for &a in &c.known_replicas {
                s.slaves.push(Instance::new(SRI_SLAVE, a, now));
            }
            for &(a, id) in &c.known_sentinels {
                let mut i = Instance::new(SRI_SENTINEL, a, now);
                i.runid = Some(id);
                s.sentinels.push(i);
            }
        }
        s
    }

    /// What `sentinel.conf` holds now.
    pub fn conf(&self) -> SentinelConf {
        SentinelConf {
            myid: self.myid,
            current_epoch: self.current_epoch,
            master: self.master.addr,
            config_epoch: self.master.config_epoch,
            leader_epoch: self.master.leader_epoch,
            known_replicas: self.slaves.iter().map(|s| s.addr).collect(),
            known_sentinels: self
                .sentinels
                .iter()
                .filter_map(|s| Some((s.addr, s.runid?)))
                .collect(),
        }
    }

    /// `sentinelGetCurrentMasterAddress`: the promoted replica's address
    /// once the failover reached `RECONF_SLAVES`.
    pub fn current_master_address(&self) -> Addr {
        match self.master.promoted_slave {
            Some(p)
                if self.master.flags & SRI_FAILOVER_IN_PROGRESS != 0
                    && self.master.failover_state >= FailoverState::ReconfSlaves =>
            {
                self.slaves[p].addr
            }
            _ => self.master.addr,
        }
    }

    /// What `SENTINEL MASTERS` tells redis-py's `discover_master`: the
    /// master's address unless this sentinel flags it S_DOWN or O_DOWN.
    pub fn master_for_clients(&self) -> Option<Addr> {
        (self.master.flags & (SRI_S_DOWN | SRI_O_DOWN) == 0).then_some(self.master.addr)
    }

    /// Handle `input` at `now`. For [`Input::Timer`], returns the delay
    /// to the next timer (`1000 / hz` ms, `hz` drawn anew).
    pub fn handle(&mut self, now: SimTime, input: Input, out: &mut Vec<Effect>) -> SimTime {
        self.now = ms(now);
        match input {
            Input::Timer => return self.timer(out),
            Input::Reply { from, reply } => self.reply(from, reply, out),
            Input::LinkError { to } => {
                for w in self.find_all(to) {
                    let l = &mut self.inst_mut(w).link;
                    l.disconnected = true;
                    l.pending_commands = 0;
                }
            }
            Input::Hello { via, hello } => {
                for w in self.find_all(via) {
                    self.inst_mut(w).link.pc_last_activity = self.now;
                }
                if hello.runid != self.myid {
                    self.process_hello(&hello, out);
                }
            }
        }
        0
    }

    /// A command from another sentinel (or a client) on my port, at `now`.
    pub fn command(&mut self, now: SimTime, cmd: Cmd, out: &mut Vec<Effect>) -> Reply {
        self.now = ms(now);
        match cmd {
            Cmd::Ping => Reply::Pong,
            Cmd::Publish(hello) => {
                if hello.runid != self.myid {
                    self.process_hello(&hello, out);
                }
                Reply::Published
            }
            Cmd::IsMasterDownByAddr {
                master,
                current_epoch,
                runid,
            } => {
                let known = master == self.master.addr;
                let down = !self.tilt && known && self.master.flags & SRI_S_DOWN != 0;
                let (leader, leader_epoch) = match runid {
                    Some(r) if known => self.vote_leader(current_epoch, r, out),
                    _ => (None, 0),
                };
                Reply::IsMasterDown {
                    down,
                    leader,
                    leader_epoch,
                }
            }
            Cmd::Info | Cmd::SlaveOf(_) => Reply::Ok,
        }
    }

    fn inst(&self, w: Which) -> &Instance {
        match w {
            Which::Master => &self.master,
            Which::Slave(i) => &self.slaves[i],
            Which::Sentinel(i) => &self.sentinels[i],
        }
    }

    fn inst_mut(&mut self, w: Which) -> &mut Instance {
        match w {
            Which::Master => &mut self.master,
            Which::Slave(i) => &mut self.slaves[i],
            Which::Sentinel(i) => &mut self.sentinels[i],
        }
    }

    /// Every instance at `addr`.
    fn find_all(&self, addr: Addr) -> Vec<Which> {
        let mut v = Vec::new();
        if self.master.addr == addr {
            v.push(Which::Master);
        }
        v.extend(
            (0..self.slaves.len())
                .filter(|&i| self.slaves[i].addr == addr)
                .map(Which::Slave),
        );
        v.extend(
            (0..self.sentinels.len())
                .filter(|&i| self.sentinels[i].addr == addr)
                .map(Which::Sentinel),
        );
        v
    }

    fn event(&self, kind: &'static str, instance: Addr, detail: String, out: &mut Vec<Effect>) {
        out.push(Effect::Event(Event {
            kind,
            instance,
            detail,
        }));
    }

    fn send(&mut self, w: Which, cmd: Cmd, out: &mut Vec<Effect>) {
        let i = self.inst_mut(w);
        i.link.pending_commands += 1;
        out.push(Effect::Send { to: i.addr, cmd });
    }

    // ----- sentinelTimer ---------------------------------------------------

    fn timer(&mut self, out: &mut Vec<Effect>) -> SimTime {
        self.check_tilt_condition(out);
        self.handle_instance(Which::Master, out);
        for i in 0..self.slaves.len() {
            self.handle_instance(Which::Slave(i), out);
        }
        for i in 0..self.sentinels.len() {
            self.handle_instance(Which::Sentinel(i), out);
        }
        if self.master.failover_state == FailoverState::UpdateConfig {
            self.failover_switch_to_promoted_slave(out);
        }
        let hz = CONFIG_DEFAULT_HZ + self.rng.random_range(0..CONFIG_DEFAULT_HZ);
        // serverCron returns `1000 / server.hz` ms to the event loop.
        (1000 / hz) * MS
    }

    /// `sentinelCheckTiltCondition`.
    fn check_tilt_condition(&mut self, out: &mut Vec<Effect>) {
        let delta = self.now - self.previous_time;
        if !(0..=SENTINEL_TILT_TRIGGER).contains(&delta) {
            self.tilt = true;
            self.tilt_start_time = self.now;
            self.event("+tilt", self.my_addr, "#tilt mode entered".into(), out);
        }
        self.previous_time = self.now;
    }

    /// `sentinelHandleRedisInstance`.
    fn handle_instance(&mut self, w: Which, out: &mut Vec<Effect>) {
        self.reconnect_instance(w, out);
        self.send_periodic_commands(w, out);
        if self.tilt {
            if self.now - self.tilt_start_time < SENTINEL_TILT_PERIOD {
                return;
            }
            self.tilt = false;
            self.event("-tilt", self.my_addr, "#tilt mode exited".into(), out);
        }
        self.check_subjectively_down(w, out);
        if w == Which::Master {
            self.check_objectively_down(out);
            if self.start_failover_if_needed(out) {
                self.ask_master_state_to_other_sentinels(true, out);
            }
            self.failover_state_machine(out);
            self.ask_master_state_to_other_sentinels(false, out);
        }
    }

    /// `sentinelReconnectInstance`.
    fn reconnect_instance(&mut self, w: Which, out: &mut Vec<Effect>) {
        let now = self.now;
        let i = self.inst_mut(w);
        if !i.link.disconnected || now - i.link.last_reconn_time < SENTINEL_PING_PERIOD {
            return;
        }
        i.link.last_reconn_time = now;
        i.link.pending_commands = 0;
        i.link.cc_conn_time = now;
        let pubsub = i.flags & SRI_SENTINEL == 0;
        if pubsub {
            i.link.pc_conn_time = now;
            i.link.pc_last_activity = now;
        }
        i.link.disconnected = false;
        out.push(Effect::Connect { to: i.addr, pubsub });
        self.send_ping(w, out);
    }

    /// `sentinelSendPing`.
    fn send_ping(&mut self, w: Which, out: &mut Vec<Effect>) {
        self.send(w, Cmd::Ping, out);
        let now = self.now;
        let l = &mut self.inst_mut(w).link;
        l.last_ping_time = now;
        if l.act_ping_time == 0 {
            l.act_ping_time = now;
        }
    }

    /// `sentinelSendPeriodicCommands`.
    fn send_periodic_commands(&mut self, w: Which, out: &mut Vec<Effect>) {
        let now = self.now;
        let master_flags = self.master.flags;
        let i = self.inst(w);
        if i.link.disconnected || i.link.pending_commands >= SENTINEL_MAX_PENDING_COMMANDS {
            return;
        }
        let info_period = if i.flags & SRI_SLAVE != 0
            && (master_flags & (SRI_O_DOWN | SRI_FAILOVER_IN_PROGRESS) != 0
                || i.master_link_down_time != 0)
        {
            1000
        } else {
            SENTINEL_INFO_PERIOD
        };
        let ping_period = self.down_after_period.min(SENTINEL_PING_PERIOD);
        if i.flags & SRI_SENTINEL == 0
            && (i.info_refresh == 0 || now - i.info_refresh > info_period)
        {
            self.send(w, Cmd::Info, out);
        }
        let i = self.inst(w);
        if now - i.link.last_pong_time > ping_period
            && now - i.link.last_ping_time > ping_period / 2
        {
            self.send_ping(w, out);
        }
        if now - self.inst(w).last_pub_time > SENTINEL_PUBLISH_PERIOD {
            let hello = self.hello();
            self.send(w, Cmd::Publish(hello), out);
        }
    }

    /// `sentinelSendHello`'s payload.
    fn hello(&self) -> Hello {
        Hello {
            addr: self.my_addr,
            runid: self.myid,
            current_epoch: self.current_epoch,
            master: self.current_master_address(),
            master_config_epoch: self.master.config_epoch,
        }
    }

    /// `sentinelForceHelloUpdateForMaster`.
    fn force_hello_update(&mut self) {
        let p = SENTINEL_PUBLISH_PERIOD + 1;
        let all = std::iter::once(&mut self.master)
            .chain(self.slaves.iter_mut())
            .chain(self.sentinels.iter_mut());
        for i in all {
            if i.last_pub_time >= p {
                i.last_pub_time -= p;
            }
        }
    }

    // ----- replies ---------------------------------------------------------

    fn reply(&mut self, from: Addr, reply: Reply, out: &mut Vec<Effect>) {
        let now = self.now;
        for w in self.find_all(from) {
            let i = self.inst_mut(w);
            i.link.pending_commands = i.link.pending_commands.saturating_sub(1);
            let sentinel = i.flags & SRI_SENTINEL != 0;
            match &reply {
                // `sentinelPingReplyCallback`.
                Reply::Pong | Reply::Loading => {
                    i.link.last_avail_time = now;
                    i.link.act_ping_time = 0;
                    i.link.last_pong_time = now;
                }
                Reply::Published => i.last_pub_time = now,
                Reply::Info(info) if !sentinel => self.refresh_instance_info(w, info, out),
                // `sentinelReceiveIsMasterDownReply`.
                &Reply::IsMasterDown {
                    down,
                    leader,
                    leader_epoch,
                } if sentinel => {
                    i.last_master_down_reply_time = now;
                    if down {
                        i.flags |= SRI_MASTER_DOWN;
                    } else {
                        i.flags &= !SRI_MASTER_DOWN;
                    }
                    if let Some(l) = leader {
                        i.leader = Some(l);
                        i.leader_epoch = leader_epoch;
                    }
                }
                _ => {}
            }
        }
    }

    /// `sentinelRefreshInstanceInfo`.
    fn refresh_instance_info(&mut self, w: Which, info: &InstanceInfo, out: &mut Vec<Effect>) {
        let now = self.now;
        let is_master = self.inst(w).flags & SRI_MASTER != 0;
        let old_runid = self.inst(w).runid;
        match old_runid {
            None => self.inst_mut(w).runid = Some(info.run_id),
            Some(r) if r != info.run_id => {
                self.inst_mut(w).runid = Some(info.run_id);
                let a = self.inst(w).addr;
                self.event("+reboot", a, String::new(), out);
            }
            _ => {}
        }
        if is_master {
            for &a in &info.slaves {
                if !self.slaves.iter().any(|s| s.addr == a) {
                    self.slaves.push(Instance::new(SRI_SLAVE, a, now));
                    self.event("+slave", a, String::new(), out);
                }
            }
        }
        let role = if info.role_master {
            SRI_MASTER
        } else {
            SRI_SLAVE
        };
        let i = self.inst_mut(w);
        i.master_link_down_time = info.master_link_down_since_s.map_or(0, |s| s * 1000);
        if role == SRI_SLAVE {
            if i.slave_master_host != info.master_host {
                i.slave_master_host = info.master_host;
                i.slave_conf_change_time = now;
            }
            i.slave_master_link_up = info.master_link_up;
            i.slave_priority = info.slave_priority;
            i.slave_repl_offset = info.slave_repl_offset;
        }
        i.info_refresh = now;
        if role != i.role_reported {
            i.role_reported_time = now;
            i.role_reported = role;
            if role == SRI_SLAVE {
                i.slave_conf_change_time = now;
            }
            let kind = if i.flags & (SRI_MASTER | SRI_SLAVE) == role {
                "+role-change"
            } else {
                "-role-change"
            };
            let a = i.addr;
            let detail = format!(
                "new reported role is {}",
                if role == SRI_MASTER {
                    "master"
                } else {
                    "slave"
                }
            );
            self.event(kind, a, detail, out);
        }
        if self.tilt {
            return;
        }
        let i = self.inst(w);
        let (flags, addr) = (i.flags, i.addr);
        // Slave -> master.
        if flags & SRI_SLAVE != 0 && role == SRI_MASTER {
            if flags & SRI_PROMOTED != 0
                && self.master.flags & SRI_FAILOVER_IN_PROGRESS != 0
                && self.master.failover_state == FailoverState::WaitPromotion
            {
                self.master.config_epoch = self.master.failover_epoch;
                self.master.failover_state = FailoverState::ReconfSlaves;
                self.master.failover_state_change_time = now;
                self.event("+promoted-slave", addr, String::new(), out);
                let m = self.master.addr;
                self.event("+failover-state-reconf-slaves", m, String::new(), out);
                self.force_hello_update();
            } else {
                let wait_time = SENTINEL_PUBLISH_PERIOD * 4;
                let i = self.inst(w);
                if flags & SRI_PROMOTED == 0
                    && self.master_looks_sane()
                    && i.no_down_for(now, wait_time)
                    && now - i.role_reported_time > wait_time
                {
                    let m = self.master.addr;
                    self.send_slave_of(w, Some(m), out);
                    self.event("+convert-to-slave", addr, String::new(), out);
                }
            }
        }
        // A replica following another master.
        let i = self.inst(w);
        if flags & SRI_SLAVE != 0
            && role == SRI_SLAVE
            && i.slave_master_host != Some(self.master.addr)
        {
            let wait_time = self.failover_timeout;
            if self.master_looks_sane()
                && i.no_down_for(now, wait_time)
                && now - i.slave_conf_change_time > wait_time
            {
                let m = self.master.addr;
                self.send_slave_of(w, Some(m), out);
                self.event("+fix-slave-config", addr, String::new(), out);
            }
        }
        // Reconfiguration progress.
        let promoted = self.master.promoted_slave.map(|p| self.slaves[p].addr);
        let i = self.inst_mut(w);
        if flags & SRI_SLAVE != 0
            && role == SRI_SLAVE
            && i.flags & (SRI_RECONF_SENT | SRI_RECONF_INPROG) != 0
        {
            if i.flags & SRI_RECONF_SENT != 0
                && promoted.is_some()
                && i.slave_master_host == promoted
            {
                i.flags &= !SRI_RECONF_SENT;
                i.flags |= SRI_RECONF_INPROG;
                self.event("+slave-reconf-inprog", addr, String::new(), out);
            }
            let i = self.inst_mut(w);
            if i.flags & SRI_RECONF_INPROG != 0 && i.slave_master_link_up {
                i.flags &= !SRI_RECONF_INPROG;
                i.flags |= SRI_RECONF_DONE;
                self.event("+slave-reconf-done", addr, String::new(), out);
            }
        }
    }

    /// `sentinelMasterLooksSane`.
    fn master_looks_sane(&self) -> bool {
        let m = &self.master;
        m.flags & SRI_MASTER != 0
            && m.role_reported == SRI_MASTER
            && m.flags & (SRI_S_DOWN | SRI_O_DOWN) == 0
            && self.now - m.info_refresh < SENTINEL_INFO_PERIOD * 2
    }

    /// `sentinelProcessHelloMessage`.
    fn process_hello(&mut self, h: &Hello, out: &mut Vec<Effect>) {
        let now = self.now;
        let known = self
            .sentinels
            .iter()
            .position(|s| s.addr == h.addr && s.runid == Some(h.runid));
        let si = match known {
            Some(i) => i,
            None => {
                let before = self.sentinels.len();
                self.sentinels.retain(|s| s.runid != Some(h.runid));
                let removed = self.sentinels.len() != before;
                if removed {
                    let m = self.master.addr;
                    self.event("+sentinel-address-switch", m, String::new(), out);
                } else if let Some(o) = self.sentinels.iter().position(|s| s.addr == h.addr) {
                    self.event("+sentinel-invalid-addr", h.addr, String::new(), out);
                    self.sentinels.remove(o);
                }
                let mut si = Instance::new(SRI_SENTINEL, h.addr, now);
                si.runid = Some(h.runid);
                self.sentinels.push(si);
                if !removed {
                    self.event("+sentinel", h.addr, String::new(), out);
                }
                self.sentinels.len() - 1
            }
        };
        if h.current_epoch > self.current_epoch {
            self.current_epoch = h.current_epoch;
            let m = self.master.addr;
            self.event("+new-epoch", m, h.current_epoch.to_string(), out);
        }
        if self.master.config_epoch < h.master_config_epoch {
            self.master.config_epoch = h.master_config_epoch;
            if h.master != self.master.addr {
                self.event("+config-update-from", h.addr, String::new(), out);
                let old = self.master.addr;
                self.event("+switch-master", old, format!("{old} {}", h.master), out);
                self.reset_master_and_change_address(h.master);
            }
        }
        if let Some(s) = self.sentinels.get_mut(si) {
            s.last_hello_time = now;
        }
    }

    // ----- down checks -----------------------------------------------------

    /// `sentinelCheckSubjectivelyDown`.
    fn check_subjectively_down(&mut self, w: Which, out: &mut Vec<Effect>) {
        let now = self.now;
        let down_after = self.down_after_period;
        let i = self.inst_mut(w);
        let elapsed = if i.link.act_ping_time != 0 {
            now - i.link.act_ping_time
        } else if i.link.disconnected {
            now - i.link.last_avail_time
        } else {
            0
        };
        let l = &mut i.link;
        if !l.disconnected
            && now - l.cc_conn_time > SENTINEL_MIN_LINK_RECONNECT_PERIOD
            && l.act_ping_time != 0
            && now - l.act_ping_time > down_after / 2
            && now - l.last_pong_time > down_after / 2
        {
            l.disconnected = true;
            l.pending_commands = 0;
        }
        if !l.disconnected
            && i.flags & SRI_SENTINEL == 0
            && now - l.pc_conn_time > SENTINEL_MIN_LINK_RECONNECT_PERIOD
            && now - l.pc_last_activity > SENTINEL_PUBLISH_PERIOD * 3
        {
            l.disconnected = true;
            l.pending_commands = 0;
        }
        let sdown = elapsed > down_after
            || (i.flags & SRI_MASTER != 0
                && i.role_reported == SRI_SLAVE
                && now - i.role_reported_time > down_after + SENTINEL_INFO_PERIOD * 2);
        let addr = i.addr;
        if sdown {
            if i.flags & SRI_S_DOWN == 0 {
                i.s_down_since_time = now;
                i.flags |= SRI_S_DOWN;
                self.event("+sdown", addr, String::new(), out);
            }
        } else if i.flags & SRI_S_DOWN != 0 {
            i.flags &= !SRI_S_DOWN;
            self.event("-sdown", addr, String::new(), out);
        }
    }

    /// `sentinelCheckObjectivelyDown`.
    fn check_objectively_down(&mut self, out: &mut Vec<Effect>) {
        let mut quorum = 0;
        let mut odown = false;
        if self.master.flags & SRI_S_DOWN != 0 {
            quorum = 1 + self
                .sentinels
                .iter()
                .filter(|s| s.flags & SRI_MASTER_DOWN != 0)
                .count() as u32;
            odown = quorum >= self.quorum;
        }
        let m = self.master.addr;
        if odown {
            if self.master.flags & SRI_O_DOWN == 0 {
                self.master.flags |= SRI_O_DOWN;
                self.master.o_down_since_time = self.now;
                let detail = format!("#quorum {quorum}/{}", self.quorum);
                self.event("+odown", m, detail, out);
            }
        } else if self.master.flags & SRI_O_DOWN != 0 {
            self.master.flags &= !SRI_O_DOWN;
            self.event("-odown", m, String::new(), out);
        }
    }

    /// `sentinelAskMasterStateToOtherSentinels`.
    fn ask_master_state_to_other_sentinels(&mut self, forced: bool, out: &mut Vec<Effect>) {
        let now = self.now;
        let runid = (self.master.failover_state > FailoverState::None).then_some(self.myid);
        let sdown = self.master.flags & SRI_S_DOWN != 0;
        for k in 0..self.sentinels.len() {
            let s = &mut self.sentinels[k];
            if now - s.last_master_down_reply_time > SENTINEL_ASK_PERIOD * 5 {
                s.flags &= !SRI_MASTER_DOWN;
                s.leader = None;
            }
            if !sdown
                || s.link.disconnected
                || (!forced && now - s.last_master_down_reply_time < SENTINEL_ASK_PERIOD)
            {
                continue;
            }
            let cmd = Cmd::IsMasterDownByAddr {
                master: self.master.addr,
                current_epoch: self.current_epoch,
                runid,
            };
            self.send(Which::Sentinel(k), cmd, out);
        }
    }

    // ----- election --------------------------------------------------------

    /// `sentinelVoteLeader`.
    fn vote_leader(
        &mut self,
        req_epoch: u64,
        req_runid: NodeId,
        out: &mut Vec<Effect>,
    ) -> (Option<NodeId>, u64) {
        let m = self.master.addr;
        if req_epoch > self.current_epoch {
            self.current_epoch = req_epoch;
            self.event("+new-epoch", m, req_epoch.to_string(), out);
        }
        if self.master.leader_epoch < req_epoch && self.current_epoch <= req_epoch {
            self.master.leader = Some(req_runid);
            self.master.leader_epoch = self.current_epoch;
            let mut detail = String::new();
            req_runid.write_hex(&mut detail);
            detail.push_str(&format!(" {}", self.master.leader_epoch));
            self.event("+vote-for-leader", m, detail, out);
            if req_runid != self.myid {
                self.master.failover_start_time =
                    self.now + self.rng.random_range(0..SENTINEL_MAX_DESYNC);
            }
        }
        (self.master.leader, self.master.leader_epoch)
    }

    /// `sentinelGetLeader`.
    fn get_leader(&mut self, epoch: u64, out: &mut Vec<Effect>) -> Option<NodeId> {
        let voters = self.sentinels.len() as u64 + 1;
        let mut counters: Vec<(NodeId, u64)> = Vec::new();
        let incr = |c: &mut Vec<(NodeId, u64)>, id: NodeId| -> u64 {
            match c.iter_mut().find(|(x, _)| *x == id) {
                Some((_, n)) => {
                    *n += 1;
                    *n
                }
                None => {
                    c.push((id, 1));
                    1
                }
            }
        };
        for s in &self.sentinels {
            if let Some(l) = s.leader.filter(|_| s.leader_epoch == self.current_epoch) {
                incr(&mut counters, l);
            }
        }
        let mut winner: Option<NodeId> = None;
        let mut max_votes = 0;
        for &(id, v) in &counters {
            if v > max_votes {
                max_votes = v;
                winner = Some(id);
            }
        }
        let (myvote, leader_epoch) = self.vote_leader(epoch, winner.unwrap_or(self.myid), out);
        if let Some(v) = myvote.filter(|_| leader_epoch == epoch) {
            let votes = incr(&mut counters, v);
            if votes > max_votes {
                max_votes = votes;
                winner = Some(v);
            }
        }
        let voters_quorum = voters / 2 + 1;
        winner.filter(|_| max_votes >= voters_quorum && max_votes >= u64::from(self.quorum))
    }

    /// `sentinelStartFailoverIfNeeded`.
    fn start_failover_if_needed(&mut self, out: &mut Vec<Effect>) -> bool {
        let m = &self.master;
        if m.flags & SRI_O_DOWN == 0
            || m.flags & SRI_FAILOVER_IN_PROGRESS != 0
            || self.now - m.failover_start_time < self.failover_timeout * 2
        {
            return false;
        }
        // sentinelStartFailover.
        self.current_epoch += 1;
        let m = &mut self.master;
        m.failover_state = FailoverState::WaitStart;
        m.flags |= SRI_FAILOVER_IN_PROGRESS;
        m.failover_epoch = self.current_epoch;
        m.failover_start_time = self.now + self.rng.random_range(0..SENTINEL_MAX_DESYNC);
        m.failover_state_change_time = self.now;
        let a = m.addr;
        self.event("+new-epoch", a, self.current_epoch.to_string(), out);
        self.event("+try-failover", a, String::new(), out);
        true
    }

    /// `sentinelFailoverStateMachine`.
    fn failover_state_machine(&mut self, out: &mut Vec<Effect>) {
        if self.master.flags & SRI_FAILOVER_IN_PROGRESS == 0 {
            return;
        }
        match self.master.failover_state {
            FailoverState::WaitStart => self.failover_wait_start(out),
            FailoverState::SelectSlave => self.failover_select_slave(out),
            FailoverState::SendSlaveofNoone => self.failover_send_slave_of_no_one(out),
            FailoverState::WaitPromotion => {
                if self.now - self.master.failover_state_change_time > self.failover_timeout {
                    let m = self.master.addr;
                    self.event("-failover-abort-slave-timeout", m, String::new(), out);
                    self.abort_failover();
                }
            }
            FailoverState::ReconfSlaves => self.failover_reconf_next_slave(out),
            FailoverState::None | FailoverState::UpdateConfig => {}
        }
    }

    /// `sentinelFailoverWaitStart`.
    fn failover_wait_start(&mut self, out: &mut Vec<Effect>) {
        let epoch = self.master.failover_epoch;
        let leader = self.get_leader(epoch, out);
        let m = self.master.addr;
        if leader != Some(self.myid) {
            let election_timeout = SENTINEL_ELECTION_TIMEOUT.min(self.failover_timeout);
            if self.now - self.master.failover_start_time > election_timeout {
                self.event("-failover-abort-not-elected", m, String::new(), out);
                self.abort_failover();
            }
            return;
        }
        self.event("+elected-leader", m, String::new(), out);
        self.master.failover_state = FailoverState::SelectSlave;
        self.master.failover_state_change_time = self.now;
        self.event("+failover-state-select-slave", m, String::new(), out);
    }

    /// `sentinelSelectSlave`.
    fn select_slave(&self) -> Option<usize> {
        let now = self.now;
        let m = &self.master;
        let mut max_master_down_time = 0;
        if m.flags & SRI_S_DOWN != 0 {
            max_master_down_time += now - m.s_down_since_time;
        }
        max_master_down_time += self.down_after_period * 10;
        let info_validity_time = if m.flags & SRI_S_DOWN != 0 {
            SENTINEL_PING_PERIOD * 5
        } else {
            SENTINEL_INFO_PERIOD * 3
        };
        let mut candidates: Vec<usize> = (0..self.slaves.len())
            .filter(|&k| {
                let s = &self.slaves[k];
                s.flags & (SRI_S_DOWN | SRI_O_DOWN) == 0
                    && !s.link.disconnected
                    && now - s.link.last_avail_time <= SENTINEL_PING_PERIOD * 5
                    && s.slave_priority != 0
                    && now - s.info_refresh <= info_validity_time
                    && s.master_link_down_time <= max_master_down_time
            })
            .collect();
        // compareSlavesForPromotion.
        candidates.sort_by(|&a, &b| {
            let (a, b) = (&self.slaves[a], &self.slaves[b]);
            a.slave_priority
                .cmp(&b.slave_priority)
                .then(b.slave_repl_offset.cmp(&a.slave_repl_offset))
                .then_with(|| match (a.runid, b.runid) {
                    (Some(x), Some(y)) => x.cmp(&y),
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, None) => std::cmp::Ordering::Equal,
                })
        });
        candidates.first().copied()
    }

    /// `sentinelFailoverSelectSlave`.
    fn failover_select_slave(&mut self, out: &mut Vec<Effect>) {
        let m = self.master.addr;
        match self.select_slave() {
            None => {
                self.event("-failover-abort-no-good-slave", m, String::new(), out);
                self.abort_failover();
            }
            Some(k) => {
                let a = self.slaves[k].addr;
                self.event("+selected-slave", a, String::new(), out);
                self.slaves[k].flags |= SRI_PROMOTED;
                self.master.promoted_slave = Some(k);
                self.master.failover_state = FailoverState::SendSlaveofNoone;
                self.master.failover_state_change_time = self.now;
                self.event("+failover-state-send-slaveof-noone", a, String::new(), out);
            }
        }
    }

    /// `sentinelFailoverSendSlaveOfNoOne`.
    fn failover_send_slave_of_no_one(&mut self, out: &mut Vec<Effect>) {
        let k = self.master.promoted_slave.expect("a promoted slave");
        if self.slaves[k].link.disconnected {
            if self.now - self.master.failover_state_change_time > self.failover_timeout {
                let m = self.master.addr;
                self.event("-failover-abort-slave-timeout", m, String::new(), out);
                self.abort_failover();
            }
            return;
        }
        self.send_slave_of(Which::Slave(k), None, out);
        let a = self.slaves[k].addr;
        self.event("+failover-state-wait-promotion", a, String::new(), out);
        self.master.failover_state = FailoverState::WaitPromotion;
        self.master.failover_state_change_time = self.now;
    }

    /// `sentinelSendSlaveOf`.
    fn send_slave_of(&mut self, w: Which, to: Option<Addr>, out: &mut Vec<Effect>) {
        self.send(w, Cmd::SlaveOf(to), out);
    }

    /// `sentinelFailoverReconfNextSlave`.
    fn failover_reconf_next_slave(&mut self, out: &mut Vec<Effect>) {
        let now = self.now;
        let promoted = self.master.promoted_slave.map(|p| self.slaves[p].addr);
        let mut in_progress = self
            .slaves
            .iter()
            .filter(|s| s.flags & (SRI_RECONF_SENT | SRI_RECONF_INPROG) != 0)
            .count() as u32;
        for k in 0..self.slaves.len() {
            if in_progress >= self.parallel_syncs {
                break;
            }
            let s = &mut self.slaves[k];
            if s.flags & (SRI_PROMOTED | SRI_RECONF_DONE) != 0 {
                continue;
            }
            if s.flags & SRI_RECONF_SENT != 0
                && now - s.slave_reconf_sent_time > SENTINEL_SLAVE_RECONF_TIMEOUT
            {
                s.flags &= !SRI_RECONF_SENT;
                s.flags |= SRI_RECONF_DONE;
                let a = s.addr;
                self.event("-slave-reconf-sent-timeout", a, String::new(), out);
            }
            let s = &self.slaves[k];
            if s.flags & (SRI_RECONF_SENT | SRI_RECONF_INPROG) != 0 || s.link.disconnected {
                continue;
            }
            self.send_slave_of(Which::Slave(k), promoted, out);
            let s = &mut self.slaves[k];
            s.flags |= SRI_RECONF_SENT;
            s.slave_reconf_sent_time = now;
            let a = s.addr;
            self.event("+slave-reconf-sent", a, String::new(), out);
            in_progress += 1;
        }
        self.failover_detect_end(out);
    }

    /// `sentinelFailoverDetectEnd`.
    fn failover_detect_end(&mut self, out: &mut Vec<Effect>) {
        let Some(p) = self.master.promoted_slave else {
            return;
        };
        if self.slaves[p].flags & SRI_S_DOWN != 0 {
            return;
        }
        let elapsed = self.now - self.master.failover_state_change_time;
        let mut not_reconfigured = self
            .slaves
            .iter()
            .filter(|s| s.flags & (SRI_PROMOTED | SRI_RECONF_DONE | SRI_S_DOWN) == 0)
            .count();
        let m = self.master.addr;
        let timeout = elapsed > self.failover_timeout;
        if timeout {
            not_reconfigured = 0;
            self.event("+failover-end-for-timeout", m, String::new(), out);
        }
        if not_reconfigured == 0 {
            self.event("+failover-end", m, String::new(), out);
            self.master.failover_state = FailoverState::UpdateConfig;
            self.master.failover_state_change_time = self.now;
        }
        if timeout {
            let promoted = self.slaves[p].addr;
            for k in 0..self.slaves.len() {
                let s = &self.slaves[k];
                if s.flags & (SRI_PROMOTED | SRI_RECONF_DONE | SRI_RECONF_SENT) != 0
                    || s.link.disconnected
                {
                    continue;
                }
                self.send_slave_of(Which::Slave(k), Some(promoted), out);
                let a = self.slaves[k].addr;
                self.event("+slave-reconf-sent-be", a, String::new(), out);
                self.slaves[k].flags |= SRI_RECONF_SENT;
            }
        }
    }

    /// `sentinelFailoverSwitchToPromotedSlave`.
    fn failover_switch_to_promoted_slave(&mut self, out: &mut Vec<Effect>) {
        let old = self.master.addr;
        let new = self
            .master
            .promoted_slave
            .map_or(old, |p| self.slaves[p].addr);
        self.event("+switch-master", old, format!("{old} {new}"), out);
        self.reset_master_and_change_address(new);
    }

    /// `sentinelAbortFailover`.
    fn abort_failover(&mut self) {
        let m = &mut self.master;
        m.flags &= !SRI_FAILOVER_IN_PROGRESS;
        m.failover_state = FailoverState::None;
        m.failover_state_change_time = self.now;
        if let Some(p) = m.promoted_slave.take() {
            self.slaves[p].flags &= !SRI_PROMOTED;
        }
    }

    /// `sentinelResetMasterAndChangeAddress` (and `sentinelResetMaster`
    /// keeping the sentinels): the replicas but the new master, and the
    /// old master as a replica, are known again from scratch.
    fn reset_master_and_change_address(&mut self, new: Addr) {
        let now = self.now;
        let mut slaves: Vec<Addr> = self
            .slaves
            .iter()
            .map(|s| s.addr)
            .filter(|&a| a != new)
            .collect();
        if new != self.master.addr {
            slaves.push(self.master.addr);
        }
        let m = &mut self.master;
        m.flags &= SRI_MASTER;
        m.leader = None;
        m.failover_state = FailoverState::None;
        m.failover_state_change_time = 0;
        m.failover_start_time = 0;
        m.promoted_slave = None;
        m.runid = None;
        m.slave_master_host = None;
        m.link = Link::new(now);
        m.link.act_ping_time = now;
        m.role_reported_time = now;
        m.role_reported = SRI_MASTER;
        m.addr = new;
        m.o_down_since_time = 0;
        m.s_down_since_time = 0;
        m.info_refresh = 0;
        m.last_pub_time = 0;
        self.slaves = slaves
            .into_iter()
            .map(|a| Instance::new(SRI_SLAVE, a, now))
            .collect();
    }
}

#[cfg(test)]
mod tests;
