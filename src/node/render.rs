//! Text exactly as Redis prints it: `CLUSTER NODES` (`clusterGenNodeDescription`),
//! `CLUSTER INFO`, `nodes.conf`; and the `CLUSTER` subcommands the cluster
//! manager uses (MEET, ADDSLOTS, SET-CONFIG-EPOCH, REPLICATE, ...; those of
//! slot migration are in `migrate.rs`).

use std::fmt::Write;

use super::bus::{flags::*, MsgType, NodeId};
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

impl Node {
    /// `clusterGenNodeDescription` for one node.
    fn node_description(&self, n: &ClusterNode, out: &mut String) {
        n.name.write_hex(out);
        out.push(' ');
        write_ip(out, n.ip);
        out.push(':');
        push_u64(out, u64::from(n.port));
        out.push('@');
        push_u64(out, u64::from(n.cport));
        out.push(' ');
        write_flags(out, n.flags);
        out.push(' ');
        match n.slaveof {
            Some(m) => self.n(m).name.write_hex(out),
            None => out.push('-'),
        }
        let epoch = match (n.is_slave(), n.slaveof) {
            (true, Some(m)) => self.n(m).config_epoch,
            _ => n.config_epoch,
        };
        let connected = n.link.is_some() || n.flags & MYSELF != 0;
        for v in [n.ping_sent, n.pong_received] {
            out.push(' ');
            if v < 0 {
                out.push('-');
            }
            push_u64(out, v.unsigned_abs());
        }
        out.push(' ');
        push_u64(out, epoch);
        out.push_str(if connected {
            " connected"
        } else {
            " disconnected"
        });
        if n.numslots > 0 {
            write_slot_ranges(out, n.slots.ranges());
        }
        let open_slots =
            !(self.migrating_slots_to.is_empty() && self.importing_slots_from.is_empty());
        if n.flags & MYSELF != 0 && open_slots {
            let mut open: Vec<u16> = self
                .migrating_slots_to
                .keys()
                .chain(self.importing_slots_from.keys())
                .copied()
                .collect();
            open.sort_unstable();
            open.dedup();
            for j in open {
                if let Some(&to) = self.migrating_slots_to.get(&j) {
                    let _ = write!(out, " [{j}->-{}]", self.n(to).name);
                } else if let Some(&from) = self.importing_slots_from.get(&j) {
                    let _ = write!(out, " [{j}-<-{}]", self.n(from).name);
                }
            }
        }
    }

    /// `CLUSTER NODES` as this node prints it now.
    pub fn cluster_nodes(&self) -> String {
        self.nodes_text(false)
    }

    fn nodes_text(&self, skip_handshake: bool) -> String {
        let mut s = String::with_capacity(self.live.len() * 120);
        for &i in &self.live {
            let n = self.n(i);
            if skip_handshake && n.in_handshake() {
                continue;
            }
            self.node_description(n, &mut s);
            s.push('\n');
        }
        s
    }

    /// The `nodes.conf` content (`clusterSaveConfig`).
    pub fn nodes_conf(&self) -> String {
        let mut s = self.nodes_text(true);
        let _ = writeln!(
            s,
            "vars currentEpoch {} lastVoteEpoch {}",
            self.current_epoch, self.last_vote_epoch
        );
        s
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
