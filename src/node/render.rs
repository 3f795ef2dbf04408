//! Text exactly as Redis prints it: `CLUSTER NODES` (`clusterGenNodeDescription`),
//! `CLUSTER INFO`, `nodes.conf`; and the `CLUSTER` subcommands the cluster
//! manager uses (MEET, ADDSLOTS, SET-CONFIG-EPOCH, REPLICATE, ...; those of
//! slot migration are in `migrate.rs`).

use std::fmt::Write;

use std::rc::Rc;

use super::bus::{flags::*, MsgType, NodeId, SlotBitmap};
use super::slots::CLUSTER_SLOTS;
use super::{todo, ClusterNode, Effect, Node};

/// `representClusterNodeFlags`: in Redis's order, `noflags` if none.
pub fn flags_string(flags: u16) -> String {
    let mut s = String::new();
    write_flags(&mut s, flags);
    s
}

/// [`flags_string`] appended to `out`.
fn write_flags(out: &mut String, flags: u16) {
    const TABLE: [(u16, &str); 8] = [
        (MYSELF, "myself"),
        (MASTER, "master"),
        (SLAVE, "slave"),
        (PFAIL, "fail?"),
        (FAIL, "fail"),
        (HANDSHAKE, "handshake"),
        (NOADDR, "noaddr"),
        (NOFAILOVER, "nofailover"),
    ];
    let start = out.len();
    for (f, name) in TABLE {
        if flags & f != 0 {
            if out.len() > start {
                out.push(',');
            }
            out.push_str(name);
        }
    }
    if out.len() == start {
        out.push_str("noflags");
    }
}

/// The decimal digits of `v` appended to `out` (what `write!` does, without
/// the formatting machinery: nodes.conf is rendered on every config save).
fn push_u64(out: &mut String, v: u64) {
    let mut buf = [0u8; 20];
    out.push_str(std::str::from_utf8(decimal(v, &mut buf)).expect("ASCII digits"));
}

/// The decimal digits of `n`, written at the end of `buf`.
pub fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Slot ranges as `CLUSTER NODES` prints them: ` 0-5460 5462`.
pub fn write_slot_ranges(out: &mut String, ranges: impl Iterator<Item = (usize, usize)>) {
    for (a, b) in ranges {
        out.push(' ');
        push_u64(out, a as u64);
        if a != b {
            out.push('-');
            push_u64(out, b as u64);
        }
    }
}

pub(super) fn ip_str(ip: Option<[u8; 4]>) -> String {
    let mut s = String::new();
    write_ip(&mut s, ip);
    s
}

/// [`ip_str`] appended to `out`.
fn write_ip(out: &mut String, ip: Option<[u8; 4]>) {
    if let Some(octets) = ip {
        for (i, o) in octets.into_iter().enumerate() {
            if i > 0 {
                out.push('.');
            }
            push_u64(out, u64::from(o));
        }
    }
}

/// A reply error, as Redis sends it (without the leading `-`).
pub type CommandError = String;

/// The `CLUSTER` subcommands a node answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterCommand {
    Meet {
        ip: [u8; 4],
        port: u16,
        cport: Option<u32>,
    },
    AddSlots(Vec<u16>),
    DelSlots(Vec<u16>),
    SetSlot(u16, super::migrate::SetSlot),
    Forget(NodeId),
    BumpEpoch,
    SetConfigEpoch(u64),
    Replicate(NodeId),
    Nodes,
    Info,
    MyId,
    CountFailureReports(NodeId),
    /// `CLUSTER FAILOVER [FORCE|TAKEOVER]`.
    Failover(super::FailoverMode),
}

/// One node's line of `CLUSTER NODES` / `nodes.conf`, as the fields
/// `clusterGenNodeDescription` prints (slots shared, not copied).
#[derive(Clone, Debug)]
struct NodeLine {
    name: NodeId,
    ip: Option<[u8; 4]>,
    port: u16,
    cport: u32,
    flags: u16,
    master: Option<NodeId>,
    ping_sent: i64,
    pong_received: i64,
    config_epoch: u64,
    connected: bool,
    /// `None` when the node has no slots.
    slots: Option<Rc<SlotBitmap>>,
}

/// What `clusterSaveConfig` wrote, kept as the fields it prints and turned
/// into text only when read (a restart, a check): a config save is an O(nodes)
/// copy of small records, not the rendering of every line.
#[derive(Clone, Debug)]
pub struct NodesConf {
    lines: Vec<NodeLine>,
    /// My open slots: `(slot, node, migrating)` ([`Node::open_slots`]).
    open: Vec<(u16, NodeId, bool)>,
    current_epoch: u64,
    last_vote_epoch: u64,
}

/// A `nodes.conf` on disk: one a node saved, or text put there before the
/// node first started (a scenario's `CLUSTER NODES` dump, a test).
#[derive(Clone, Debug)]
pub enum ConfFile {
    Saved(Rc<NodesConf>),
    Text(Rc<str>),
    /// Node `me`'s file made from a scenario's dump, rendered when read
    /// (a thousand nodes share one dump rather than hold a copy each).
    Dump {
        dump: Rc<super::conf_file::NodesFile>,
        me: usize,
    },
}

impl ConfFile {
    /// The file's text.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            ConfFile::Saved(conf) => conf.text().into(),
            ConfFile::Text(text) => std::borrow::Cow::Borrowed(text),
            ConfFile::Dump { dump, me } => super::conf_file::nodes_conf_from_dump(dump, *me).into(),
        }
    }

    /// `currentEpoch` in the `vars` line, if the file loads and has one.
    pub fn current_epoch(&self) -> Option<u64> {
        match self {
            ConfFile::Saved(conf) => Some(conf.current_epoch),
            _ => super::conf_file::parse_nodes(&self.text())
                .ok()
                .and_then(|f| f.current_epoch),
        }
    }
}

impl NodesConf {
    /// The file's text.
    pub fn text(&self) -> String {
        let mut s = String::with_capacity(self.lines.len() * 120 + 48);
        for line in &self.lines {
            line.write(&self.open, &mut s);
            s.push('\n');
        }
        let _ = writeln!(
            s,
            "vars currentEpoch {} lastVoteEpoch {}",
            self.current_epoch, self.last_vote_epoch
        );
        s
    }
}

impl NodeLine {
    /// `clusterGenNodeDescription`; `open` is printed on the `myself` line.
    fn write(&self, open: &[(u16, NodeId, bool)], out: &mut String) {
        self.name.write_hex(out);
        out.push(' ');
        write_ip(out, self.ip);
        out.push(':');
        push_u64(out, u64::from(self.port));
        out.push('@');
        push_u64(out, u64::from(self.cport));
        out.push(' ');
        write_flags(out, self.flags);
        out.push(' ');
        match self.master {
            Some(m) => m.write_hex(out),
            None => out.push('-'),
        }
        for v in [self.ping_sent, self.pong_received] {
            out.push(' ');
            if v < 0 {
                out.push('-');
            }
            push_u64(out, v.unsigned_abs());
        }
        out.push(' ');
        push_u64(out, self.config_epoch);
        out.push_str(if self.connected {
            " connected"
        } else {
            " disconnected"
        });
        if let Some(slots) = &self.slots {
            write_slot_ranges(out, slots.ranges());
        }
        if self.flags & MYSELF != 0 {
            for &(slot, peer, migrating) in open {
                let arrow = if migrating { "->-" } else { "-<-" };
                let _ = write!(out, " [{slot}{arrow}{peer}]");
            }
        }
    }
}

impl Node {
    /// The fields of `n`'s line.
    fn node_line(&self, n: &ClusterNode) -> NodeLine {
        let config_epoch = match (n.is_slave(), n.slaveof) {
            (true, Some(m)) => self.n(m).config_epoch,
            _ => n.config_epoch,
        };
        NodeLine {
            name: n.name,
            ip: n.ip,
            port: n.port,
            cport: n.cport,
            flags: n.flags,
            master: n.slaveof.map(|m| self.n(m).name),
            ping_sent: n.ping_sent,
            pong_received: n.pong_received,
            config_epoch,
            connected: n.link.is_some() || n.flags & MYSELF != 0,
            slots: (n.numslots > 0).then(|| Rc::clone(&n.slots)),
        }
    }

    /// `CLUSTER NODES` as this node prints it now.
    pub fn cluster_nodes(&self) -> String {
        let open = self.open_slots();
        let mut s = String::with_capacity(self.live.len() * 120);
        for &i in &self.live {
            self.node_line(self.n(i)).write(&open, &mut s);
            s.push('\n');
        }
        s
    }

    /// The `nodes.conf` content (`clusterSaveConfig`): every node but those
    /// in handshake, then the `vars` line.
    pub fn nodes_conf(&self) -> NodesConf {
        let mut lines = Vec::with_capacity(self.live.len());
        lines.extend(
            self.live
                .iter()
                .map(|&i| self.n(i))
                .filter(|n| !n.in_handshake())
                .map(|n| self.node_line(n)),
        );
        NodesConf {
            lines,
            open: self.open_slots(),
            current_epoch: self.current_epoch,
            last_vote_epoch: self.last_vote_epoch,
        }
    }

    /// `CLUSTER INFO` as this node prints it now (lines end in CRLF).
    pub fn cluster_info(&self) -> String {
        let (mut assigned, mut ok, mut pfail, mut fail) = (0, 0, 0, 0);
        for j in 0..CLUSTER_SLOTS {
            let Some(n) = self.slot_owner(j) else {
                continue;
            };
            assigned += 1;
            if n.failed() {
                fail += 1;
            } else if n.timed_out() {
                pfail += 1;
            } else {
                ok += 1;
            }
        }
        let mut s = String::with_capacity(600);
        let _ = write!(
            s,
            "cluster_state:{}\r\ncluster_slots_assigned:{assigned}\r\ncluster_slots_ok:{ok}\r\n\
             cluster_slots_pfail:{pfail}\r\ncluster_slots_fail:{fail}\r\ncluster_known_nodes:{}\r\n\
             cluster_size:{}\r\ncluster_current_epoch:{}\r\ncluster_my_epoch:{}\r\n",
            if self.state_ok { "ok" } else { "fail" },
            self.live.len(),
            self.size,
            self.current_epoch,
            self.my_epoch()
        );
        for (stats, dir) in [
            (&self.stats_sent, "sent"),
            (&self.stats_received, "received"),
        ] {
            let mut total = 0;
            for t in MsgType::ALL {
                let v = stats[t as usize];
                if v == 0 {
                    continue;
                }
                total += v;
                let _ = write!(s, "cluster_stats_messages_{}_{dir}:{v}\r\n", t.name());
            }
            let _ = write!(s, "cluster_stats_messages_{dir}:{total}\r\n");
        }
        s.push_str("total_cluster_links_buffer_limit_exceeded:0\r\n");
        s
    }

    /// Run a `CLUSTER` subcommand (`clusterCommand`). Effects (a config save)
    /// go to `out` as with any input.
    pub fn command(
        &mut self,
        now: crate::engine::SimTime,
        cmd: ClusterCommand,
        out: &mut Vec<Effect>,
    ) -> Result<String, CommandError> {
        self.set_now(now);
        let reply = self.run_command(cmd, out);
        self.before_sleep(out);
        reply
    }

    fn run_command(
        &mut self,
        cmd: ClusterCommand,
        out: &mut Vec<Effect>,
    ) -> Result<String, CommandError> {
        match cmd {
            ClusterCommand::Meet { ip, port, cport } => {
                let cport = cport.unwrap_or(u32::from(port) + 10000);
                if port == 0 || cport == 0 || cport > 65535 {
                    return Err(format!(
                        "ERR Invalid node address specified: {}:{port}",
                        ip_str(Some(ip))
                    ));
                }
                self.start_handshake(ip, port, cport);
                Ok("OK".into())
            }
            ClusterCommand::AddSlots(slots) => self.cluster_update_slots(&slots, false),
            ClusterCommand::DelSlots(slots) => self.cluster_update_slots(&slots, true),
            ClusterCommand::SetSlot(slot, action) => self.cluster_setslot(slot, action, out),
            ClusterCommand::Forget(id) => self.cluster_forget(&id, out),
            ClusterCommand::BumpEpoch => Ok(self.cluster_bumpepoch()),
            ClusterCommand::SetConfigEpoch(epoch) => {
                if self.live.len() > 1 {
                    Err("ERR The user can assign a config epoch only when the node does not know any other node.".into())
                } else if self.myself().config_epoch != 0 {
                    Err("ERR Node config epoch is already non-zero".into())
                } else {
                    let me = self.myself;
                    self.nm(me).config_epoch = epoch;
                    if self.current_epoch < epoch {
                        self.current_epoch = epoch;
                    }
                    self.todo |= todo::UPDATE_STATE | todo::SAVE_CONFIG;
                    Ok("OK".into())
                }
            }
            ClusterCommand::Replicate(id) => {
                let Some(n) = self.lookup(&id) else {
                    return Err(format!("ERR Unknown node {id}"));
                };
                if n == self.myself {
                    return Err("ERR Can't replicate myself".into());
                }
                if self.n(n).is_slave() {
                    return Err("ERR I can only replicate a master, not a replica.".into());
                }
                if self.myself().is_master()
                    && (self.myself().numslots != 0 || !self.keyspace.is_empty())
                {
                    return Err(
                        "ERR To set a master the node must be empty and without assigned slots."
                            .into(),
                    );
                }
                self.set_master(n, out);
                self.todo |= todo::UPDATE_STATE | todo::SAVE_CONFIG;
                Ok("OK".into())
            }
            ClusterCommand::Nodes => Ok(self.cluster_nodes()),
            ClusterCommand::Info => Ok(self.cluster_info()),
            ClusterCommand::MyId => Ok(self.my_id().hex()),
            ClusterCommand::CountFailureReports(id) => match self.lookup(&id) {
                Some(n) => Ok(self.failure_reports_count(n).to_string()),
                None => Err(format!("ERR Unknown node {id}")),
            },
            ClusterCommand::Failover(mode) => self.cluster_failover_command(mode, out),
        }
    }
}
