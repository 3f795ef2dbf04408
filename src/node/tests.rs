//! Scripted-input tests of one or a few [`Node`]s, wired by hand.
//!
//! [`Net`] is a tiny message pump: `Connect` becomes `Accepted` on the peer
//! plus `Connected` on the caller, `Send` becomes `Recv` on the other end of
//! the link, `Close` becomes `LinkError` on the other end. Delivery is
//! instantaneous and FIFO; the clock only moves when the test says so. Pairs
//! of nodes can be cut (messages and connects between them are silently
//! dropped, as with a partition where TCP stays up), and a node can be
//! paused (no cron, nothing delivered to or from it).

use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;

use super::bus::{flags::*, Body, BusMsg, GossipEntry, MsgType, NodeId};
use super::config::Config;
use super::render::{flags_string, ClusterCommand};
use super::slots::CLUSTER_SLOTS;
use super::*;
use crate::engine::{actor_rng, Actor, MS};

const SEED: u64 = 0x5eed;

fn ip_of(i: usize) -> [u8; 4] {
    [10, 0, 0, i as u8 + 1]
}

fn port_of(i: usize) -> u16 {
    7000 + i as u16
}

/// What happened, for assertions on timing.
#[derive(Clone, Debug)]
struct Event {
    at_ms: i64,
    node: usize,
    note: Note,
}

struct Net {
    now: SimTime,
    nodes: Vec<Node>,
    next_cron: Vec<SimTime>,
    /// (node, link) → (peer node, peer link).
    peer: HashMap<(usize, LinkId), (usize, LinkId)>,
    next_inbound: u32,
    queue: VecDeque<(usize, Input)>,
    cut: HashSet<(usize, usize)>,
    paused: Vec<bool>,
    /// Connects that were swallowed by a cut: (from, link, to).
    pending_connects: Vec<(usize, LinkId, usize)>,
    events: Vec<Event>,
    saved: Vec<Option<(String, bool)>>,
    /// Every message delivered: (from, to, msg).
    log: Vec<(usize, usize, Rc<BusMsg>)>,
}

impl Net {
    fn new(n: usize, nt_ms: u64) -> Net {
        Net::with_config(
            n,
            Config {
                cluster_node_timeout_ms: nt_ms,
                ..Config::default()
            },
        )
    }

    fn with_config(n: usize, config: Config) -> Net {
        let nodes = (0..n)
            .map(|i| {
                let setup = NodeSetup {
                    port: port_of(i),
                    config: Config {
                        cluster_enabled: true,
                        ..config.clone()
                    },
                    planted: None,
                };
                Node::new(setup, actor_rng(SEED, Actor::Node(i as u32)), 0)
            })
            .collect();
        Net {
            now: 0,
            nodes,
            // Stagger the crons a little, as real processes are.
            next_cron: (0..n).map(|i| i as SimTime * 7 * MS).collect(),
            peer: HashMap::new(),
            next_inbound: 1,
            queue: VecDeque::new(),
            cut: HashSet::new(),
            paused: vec![false; n],
            pending_connects: Vec::new(),
            events: Vec::new(),
            saved: vec![None; n],
            log: Vec::new(),
        }
    }

    fn now_ms(&self) -> i64 {
        mstime(self.now)
    }

    fn blocked(&self, a: usize, b: usize) -> bool {
        self.paused[a] || self.paused[b] || self.cut.contains(&(a.min(b), a.max(b)))
    }

    fn cut_pair(&mut self, a: usize, b: usize) {
        self.cut.insert((a.min(b), a.max(b)));
    }

    /// Cut `i` from every other node.
    fn isolate(&mut self, i: usize) {
        for j in 0..self.nodes.len() {
            if j != i {
                self.cut_pair(i, j);
            }
        }
    }

    /// Cut every link between the two groups.
    fn partition(&mut self, a: &[usize], b: &[usize]) {
        for &x in a {
            for &y in b {
                self.cut_pair(x, y);
            }
        }
    }

    /// Remove all cuts; connects that were swallowed complete now.
    fn heal(&mut self) {
        self.cut.clear();
        let pending = std::mem::take(&mut self.pending_connects);
        for (from, link, to) in pending {
            self.connect(from, link, to);
        }
        self.pump();
    }

    fn connect(&mut self, from: usize, link: LinkId, to: usize) {
        if self.blocked(from, to) {
            self.pending_connects.push((from, link, to));
            return;
        }
        let inbound = INBOUND_LINK_BIT | self.next_inbound;
        self.next_inbound += 1;
        self.peer.insert((from, link), (to, inbound));
        self.peer.insert((to, inbound), (from, link));
        self.queue.push_back((
            to,
            Input::Accepted {
                link: inbound,
                peer_ip: ip_of(from),
                local_ip: ip_of(to),
            },
        ));
        self.queue.push_back((
            from,
            Input::Connected {
                link,
                local_ip: ip_of(from),
            },
        ));
    }

    fn effects(&mut self, from: usize, out: Vec<Effect>) {
        for e in out {
            match e {
                Effect::Connect { link, ip, cport } => {
                    let to = (0..self.nodes.len())
                        .find(|&j| ip_of(j) == ip && u32::from(port_of(j)) + 10000 == cport);
                    match to {
                        Some(to) => self.connect(from, link, to),
                        None => self.queue.push_back((from, Input::LinkError { link })),
                    }
                }
                Effect::Send { link, msg } => {
                    if let Some(&(to, plink)) = self.peer.get(&(from, link)) {
                        if !self.blocked(from, to) {
                            self.log.push((from, to, Rc::clone(&msg)));
                            self.queue.push_back((to, Input::Recv { link: plink, msg }));
                        }
                    }
                }
                // This harness carries the bus only.
                Effect::Repl(_) | Effect::Persist(_) | Effect::MaxmemoryBelowUsage { .. } => {}
                Effect::Close { link } => {
                    self.pending_connects
                        .retain(|p| !(p.0 == from && p.1 == link));
                    if let Some((to, plink)) = self.peer.remove(&(from, link)) {
                        self.peer.remove(&(to, plink));
                        if !self.blocked(from, to) {
                            self.queue.push_back((to, Input::LinkError { link: plink }));
                        }
                    }
                }
                Effect::SaveConfig { conf, fsync } => self.saved[from] = Some((conf.text(), fsync)),
                Effect::Note(note) => self.events.push(Event {
                    at_ms: self.now_ms(),
                    node: from,
                    note,
                }),
            }
        }
    }

    fn pump(&mut self) {
        while let Some((to, input)) = self.queue.pop_front() {
            if self.paused[to] {
                continue;
            }
            let mut out = Vec::new();
            self.nodes[to].handle(self.now, input, &mut out);
            self.effects(to, out);
        }
    }

    fn inject(&mut self, to: usize, input: Input) -> Vec<Effect> {
        let mut out = Vec::new();
        self.nodes[to].handle(self.now, input, &mut out);
        out
    }

    fn cmd(&mut self, i: usize, c: ClusterCommand) -> Result<String, String> {
        let mut out = Vec::new();
        let r = self.nodes[i].command(self.now, c, &mut out);
        self.effects(i, out);
        self.pump();
        r
    }

    /// Run crons and deliveries until `t` (simulated µs).
    fn run_until(&mut self, t: SimTime) {
        loop {
            let (i, next) = self
                .next_cron
                .iter()
                .copied()
                .enumerate()
                .min_by_key(|&(i, c)| (c, i))
                .expect("nodes");
            if next > t {
                break;
            }
            self.now = next;
            self.next_cron[i] += CRON_PERIOD;
            if self.paused[i] {
                continue;
            }
            let mut out = Vec::new();
            self.nodes[i].handle(self.now, Input::Cron, &mut out);
            self.effects(i, out);
            self.pump();
        }
        self.now = t;
    }

    fn run_ms(&mut self, ms: u64) {
        self.run_until(self.now + ms * MS);
    }

    /// Run until `cond` holds, at most `max_ms`; the time it took, in ms.
    fn run_until_cond(&mut self, max_ms: u64, mut cond: impl FnMut(&Net) -> bool) -> Option<u64> {
        let start = self.now;
        while self.now < start + max_ms * MS {
            if cond(self) {
                return Some((self.now - start) / MS);
            }
            self.run_ms(1);
        }
        cond(self).then(|| (self.now - start) / MS)
    }

    fn id(&self, i: usize) -> NodeId {
        self.nodes[i].my_id()
    }

    /// Node `i`'s view of node `j`.
    fn view(&self, i: usize, j: usize) -> Option<&ClusterNode> {
        self.nodes[i].node_by_name(&self.id(j))
    }

    fn flags(&self, i: usize, j: usize) -> u16 {
        self.view(i, j).map_or(0, |n| n.flags)
    }

    fn full_mesh(&self) -> bool {
        let n = self.nodes.len();
        (0..n).all(|i| {
            self.nodes[i].known_nodes().count() == n
                && (0..n).all(|j| {
                    self.view(i, j)
                        .is_some_and(|v| !v.in_handshake() && (i == j || v.link.is_some()))
                })
        })
    }

    /// Meet everybody with node 0 and run until the mesh is full.
    fn mesh(&mut self) {
        for i in 1..self.nodes.len() {
            self.cmd(i, meet(0)).unwrap();
        }
        let took = self.run_until_cond(10_000, Net::full_mesh);
        assert!(took.is_some(), "no full mesh after 10 s");
    }

    /// Events of one kind at one node.
    fn times(&self, node: usize, f: impl Fn(&Note) -> bool) -> Vec<i64> {
        self.events
            .iter()
            .filter(|e| e.node == node && f(&e.note))
            .map(|e| e.at_ms)
            .collect()
    }
}

fn meet(j: usize) -> ClusterCommand {
    ClusterCommand::Meet {
        ip: ip_of(j),
        port: port_of(j),
        cport: None,
    }
}

fn range(a: usize, b: usize) -> Vec<u16> {
    (a..=b).map(|s| s as u16).collect()
}

/// `n` nodes; the first `masters` get config epochs 1.. and equal slot
/// ranges (covering all 16384 slots); full mesh; the remaining nodes are
/// slotless masters unless made replicas by `replicas` (replica → master).
fn cluster(n: usize, masters: usize, replicas: &[(usize, usize)], config: Config) -> Net {
    let mut net = Net::with_config(n, config);
    for m in 0..masters {
        let a = m * CLUSTER_SLOTS / masters;
        let b = (m + 1) * CLUSTER_SLOTS / masters - 1;
        net.cmd(m, ClusterCommand::AddSlots(range(a, b))).unwrap();
        net.cmd(m, ClusterCommand::SetConfigEpoch(m as u64 + 1))
            .unwrap();
    }
    net.mesh();
    for &(r, m) in replicas {
        let id = net.id(m);
        net.cmd(r, ClusterCommand::Replicate(id)).unwrap();
    }
    net.run_ms(3000);
    net
}

fn nt(ms: u64) -> Config {
    Config {
        cluster_node_timeout_ms: ms,
        ..Config::default()
    }
}

fn info_field(info: &str, key: &str) -> Option<String> {
    info.split("\r\n")
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
        .map(str::to_string)
}

// ----- handshake -------------------------------------------------------------

#[test]
fn meet_handshake_learns_real_ids_and_addresses() {
    let mut net = Net::new(2, 15000);
    // B (1) meets A (0).
    let mut out = Vec::new();
    net.nodes[1].command(0, meet(0), &mut out).unwrap();
    // Before any delivery: B knows a handshake node with a random name.
    let hs: Vec<_> = net.nodes[1]
        .known_nodes()
        .filter(|n| n.in_handshake())
        .collect();
    assert_eq!(hs.len(), 1);
    assert_ne!(hs[0].name, net.id(0));
    assert_eq!(hs[0].flags, HANDSHAKE | MEET);
    assert!(net.nodes[1]
        .cluster_nodes()
        .contains(" handshake - 0 0 0 disconnected\n"));
    net.effects(1, out);
    net.pump();
    net.run_ms(1000);

    for (i, j) in [(0, 1), (1, 0)] {
        let v = net.view(i, j).expect("knows the other by its real ID");
        assert!(!v.in_handshake(), "{i} sees {j} in handshake");
        assert_eq!(v.flags, MASTER);
        assert_eq!(v.ip, Some(ip_of(j)));
        assert_eq!(v.port, port_of(j));
        assert_eq!(v.cport, u32::from(port_of(j)) + 10000);
        assert!(v.link.is_some() && v.inbound_link.is_some());
        assert_eq!(net.nodes[i].known_nodes().count(), 2);
    }
    // Each learned its own address: A from the MEET, B from A's first PING.
    assert_eq!(net.nodes[0].myself().ip, Some(ip_of(0)));
    assert_eq!(net.nodes[1].myself().ip, Some(ip_of(1)));
}

#[test]
fn full_mesh_by_gossip_within_seconds() {
    let mut net = Net::new(6, 15000);
    for i in 1..6 {
        net.cmd(i, meet(0)).unwrap();
    }
    let took = net
        .run_until_cond(10_000, Net::full_mesh)
        .expect("full mesh");
    assert!(took <= 5000, "full mesh took {took} ms");
    // Nodes 1..5 only met node 0: 1 knows 2 through gossip, without MEET.
    assert_eq!(net.view(1, 2).unwrap().ip, Some(ip_of(2)));
}

#[test]
fn handshake_node_expires_after_max_nt_1000() {
    let mut net = Net::new(1, 500);
    // Nobody listens at 10.0.0.9: the connect fails, the handshake expires.
    net.cmd(
        0,
        ClusterCommand::Meet {
            ip: [10, 0, 0, 9],
            port: 7000,
            cport: None,
        },
    )
    .unwrap();
    net.run_ms(950);
    assert_eq!(net.nodes[0].known_nodes().count(), 2);
    net.run_ms(200);
    assert_eq!(net.nodes[0].known_nodes().count(), 1);
}

// ----- commands --------------------------------------------------------------

#[test]
fn set_config_epoch_errors() {
    let mut net = Net::new(2, 15000);
    assert_eq!(
        net.cmd(0, ClusterCommand::SetConfigEpoch(5)),
        Ok("OK".into())
    );
    assert_eq!(net.nodes[0].myself().config_epoch, 5);
    assert_eq!(net.nodes[0].current_epoch, 5);
    assert_eq!(
        net.cmd(0, ClusterCommand::SetConfigEpoch(6)),
        Err("ERR Node config epoch is already non-zero".into())
    );
    net.cmd(1, meet(0)).unwrap();
    assert_eq!(
        net.cmd(1, ClusterCommand::SetConfigEpoch(7)),
        Err("ERR The user can assign a config epoch only when the node does not know any other node.".into())
    );
    assert_eq!(net.nodes[1].myself().config_epoch, 0);
}

#[test]
fn addslots_errors() {
    let mut net = Net::new(1, 15000);
    assert_eq!(
        net.cmd(0, ClusterCommand::AddSlots(vec![1, 2])),
        Ok("OK".into())
    );
    assert_eq!(
        net.cmd(0, ClusterCommand::AddSlots(vec![3, 2])),
        Err("ERR Slot 2 is already busy".into())
    );
    assert_eq!(
        net.cmd(0, ClusterCommand::AddSlots(vec![5, 6, 5])),
        Err("ERR Slot 5 specified multiple times".into())
    );
    // Every argument is parsed before any slot is checked.
    assert_eq!(
        net.cmd(0, ClusterCommand::AddSlots(vec![7, 7, 1, 16384])),
        Err("ERR Invalid or out of range slot".into())
    );
    // Nothing of a failed command is applied.
    assert!(net.nodes[0].slot_owner(3).is_none());
    assert!(net.nodes[0].slot_owner(5).is_none());
    assert_eq!(net.nodes[0].myself().numslots, 2);
}

// ----- slots and cluster state -----------------------------------------------

#[test]
fn slots_propagate_through_headers() {
    let net = cluster(3, 3, &[], nt(15000));
    for i in 0..3 {
        for (slot, owner) in [
            (0, 0),
            (5460, 0),
            (5461, 1),
            (10921, 1),
            (10922, 2),
            (16383, 2),
        ] {
            assert_eq!(
                net.nodes[i].slot_owner(slot).map(|n| n.name),
                Some(net.id(owner)),
                "node {i} slot {slot}"
            );
        }
        assert_eq!(net.view(i, 1).unwrap().config_epoch, 2);
    }
}

#[test]
fn state_ok_only_after_writable_delay_and_full_coverage() {
    let mut net = Net::new(3, 15000);
    for m in 0..3 {
        let a = m * CLUSTER_SLOTS / 3;
        let b = (m + 1) * CLUSTER_SLOTS / 3 - 1;
        net.cmd(m, ClusterCommand::AddSlots(range(a, b))).unwrap();
    }
    // The first clusterUpdateState call of every node was at t=0 (the
    // ADDSLOTS above): no master may go ok before 2000 ms.
    net.cmd(1, meet(0)).unwrap();
    net.cmd(2, meet(0)).unwrap();
    net.run_until(1999 * MS);
    assert!(net.full_mesh());
    for i in 0..3 {
        assert!(
            !net.nodes[i].state_ok(),
            "node {i} ok before the writable delay"
        );
    }
    net.run_until(2100 * MS);
    for i in 0..3 {
        assert!(
            net.nodes[i].state_ok(),
            "node {i} not ok after the writable delay"
        );
        let t = net.times(i, |n| *n == Note::StateChanged { ok: true });
        assert_eq!(t.len(), 1);
        assert!(t[0] - BASE_UNIX_MS >= 2000, "{t:?}");
    }
    assert!(net.nodes[0]
        .cluster_info()
        .starts_with("cluster_state:ok\r\n"));
}

#[test]
fn missing_slot_fails_state_unless_full_coverage_off() {
    for full in [true, false] {
        let mut net = Net::with_config(
            2,
            Config {
                cluster_require_full_coverage: full,
                ..nt(15000)
            },
        );
        net.cmd(0, ClusterCommand::AddSlots(range(0, 8191)))
            .unwrap();
        net.cmd(1, ClusterCommand::AddSlots(range(8192, 16382)))
            .unwrap();
        net.mesh();
        net.run_ms(3000);
        for i in 0..2 {
            assert_eq!(
                net.nodes[i].state_ok(),
                !full,
                "full_coverage={full} node {i}"
            );
            assert_eq!(
                info_field(&net.nodes[i].cluster_info(), "cluster_slots_assigned").as_deref(),
                Some("16383")
            );
        }
    }
}

// ----- failure detection -----------------------------------------------------

#[test]
fn pfail_after_node_timeout_within_window() {
    const NT: i64 = 2000;
    let mut net = cluster(3, 3, &[], nt(NT as u64));
    net.run_ms(1234);
    let t0 = net.now_ms();
    net.isolate(2);
    net.run_ms(4000);
    for i in 0..2 {
        let t = net.times(i, |n| *n == Note::Pfail { about: net.id(2) });
        assert!(!t.is_empty(), "node {i} never flagged node 2");
        let d = t[0] - t0;
        assert!(
            d > NT && d <= NT + NT / 2 + 200,
            "node {i}: PFAIL after {d} ms"
        );
        assert!(net.nodes[i].cluster_nodes().contains(" master,fail"));
    }
    assert!(net.nodes[0]
        .cluster_nodes()
        .lines()
        .any(|l| l.starts_with(&net.id(2).hex()) && l.contains(" master,fail ")));
}

#[test]
fn fail_by_majority_reports_and_broadcast() {
    const NT: i64 = 1000;
    // 3 slot owners (quorum 2) and node 3, a slotless master that keeps
    // talking to node 2.
    let mut net = cluster(4, 3, &[], nt(NT as u64));
    let t0 = net.now_ms();
    net.cut_pair(0, 2);
    net.cut_pair(1, 2);
    net.run_ms(3000);
    let about = net.id(2);
    let marked: Vec<_> = (0..2)
        .flat_map(|i| net.times(i, |n| *n == Note::FailMarked { about }))
        .collect();
    assert!(!marked.is_empty(), "nobody marked node 2 FAIL");
    assert!(marked.iter().all(|&t| t - t0 > NT), "{marked:?}");
    for i in 0..2 {
        assert!(net.flags(i, 2) & FAIL != 0);
        assert!(net.flags(i, 2) & PFAIL == 0);
    }
    // Node 3 never saw node 2 time out, yet it is FAIL there by the message.
    assert!(net.times(3, |n| *n == Note::Pfail { about }).is_empty());
    let got = net.times(3, |n| *n == Note::FailReceived { about });
    assert_eq!(got.len(), 1);
    let fail_time = got[0];
    assert!(net.flags(3, 2) & FAIL != 0);
    assert!(
        !net.nodes[3].state_ok(),
        "a FAIL slot owner breaks full coverage"
    );

    // Node 3 keeps getting PONGs from node 2, but a slot owner's FAIL is
    // only undone 2×NT after fail_time.
    net.run_until_cond(10_000, |n| n.flags(3, 2) & FAIL == 0)
        .expect("FAIL cleared");
    let cleared = net.times(3, |n| *n == Note::FailCleared { about })[0];
    let d = cleared - fail_time;
    assert!(
        d > 2 * NT && d <= 2 * NT + NT / 2 + 200,
        "cleared {d} ms after FAIL"
    );
}

#[test]
fn failure_reports_expire_after_two_node_timeouts() {
    const NT: i64 = 1000;
    for (gap, expect_fail) in [(2 * NT + 100, false), (2 * NT - 100, true)] {
        // 5 slot owners: quorum 3 = myself + 2 reports.
        let mut net = cluster(5, 5, &[], nt(NT as u64));
        for i in 1..5 {
            net.paused[i] = true;
        }
        net.run_until_cond(3000, |n| n.flags(0, 4) & PFAIL != 0)
            .expect("PFAIL");
        let report = |net: &mut Net, from: usize| {
            let me = net.nodes[0].lookup(&net.id(from)).unwrap();
            let link = net.nodes[0].n(me).inbound_link.expect("inbound link");
            let n4 = net.nodes[from].lookup(&net.id(4)).unwrap();
            let mut g = Node::gossip_entry(net.nodes[from].n(n4));
            g.flags |= PFAIL;
            let msg = net.nodes[from].build_header(MsgType::Ping, Body::Gossip(vec![g]));
            net.inject(
                0,
                Input::Recv {
                    link,
                    msg: Rc::new(msg),
                },
            )
        };
        report(&mut net, 1);
        let n4 = net.nodes[0].lookup(&net.id(4)).unwrap();
        assert_eq!(net.nodes[0].failure_reports_count(n4), 1);
        net.run_ms(gap as u64);
        let out = report(&mut net, 2);
        let marked = out
            .iter()
            .any(|e| matches!(e, Effect::Note(Note::FailMarked { about }) if *about == net.id(4)));
        assert_eq!(marked, expect_fail, "gap {gap} ms");
        assert_eq!(net.flags(0, 4) & FAIL != 0, expect_fail);
    }
}

#[test]
fn pfail_cleared_only_by_pong_on_outbound_link() {
    let mut net = cluster(3, 3, &[], nt(1000));
    net.cut_pair(0, 2);
    net.run_until_cond(3000, |n| n.flags(0, 2) & PFAIL != 0)
        .expect("PFAIL");
    // Node 1 still reaches node 2: no FAIL, a single report is no quorum.
    net.run_ms(1000);
    assert_eq!(net.flags(0, 2) & (PFAIL | FAIL), PFAIL);

    let n2 = net.nodes[0].lookup(&net.id(2)).unwrap();
    let pong = Rc::new(net.nodes[2].build_header(MsgType::Pong, Body::Gossip(vec![])));
    let inbound = net.nodes[0].n(n2).inbound_link.expect("inbound link");
    net.inject(
        0,
        Input::Recv {
            link: inbound,
            msg: Rc::clone(&pong),
        },
    );
    assert_eq!(
        net.flags(0, 2) & PFAIL,
        PFAIL,
        "a PONG on the inbound link cleared PFAIL"
    );
    let outbound = net.nodes[0].n(n2).link.expect("outbound link");
    let out = net.inject(
        0,
        Input::Recv {
            link: outbound,
            msg: pong,
        },
    );
    assert_eq!(net.flags(0, 2) & PFAIL, 0);
    assert!(out
        .iter()
        .any(|e| matches!(e, Effect::Note(Note::PfailCleared { about }) if *about == net.id(2))));
}

#[test]
fn slotless_fail_cleared_by_first_pong() {
    let mut net = cluster(4, 3, &[], nt(1000));
    let about = net.id(3);
    net.isolate(3);
    net.run_until_cond(5000, |n| (0..3).all(|i| n.flags(i, 3) & FAIL != 0))
        .expect("FAIL everywhere");
    net.heal();
    let healed = net.now_ms();
    net.run_until_cond(3000, |n| (0..3).all(|i| n.flags(i, 3) & FAIL == 0))
        .expect("FAIL cleared");
    for i in 0..3 {
        let t = net.times(i, |n| *n == Note::FailCleared { about });
        // Cleared by the first PONG: within a ping period, not after 2×NT.
        assert!(t[0] - healed <= 600, "node {i}: {}", t[0] - healed);
    }
}

#[test]
fn minority_master_fails_and_waits_rejoin_delay() {
    const NT: i64 = 1000;
    // Masters 0,1,2; node 3 replicates 0. Partition {0,3} | {1,2}.
    let mut net = cluster(4, 3, &[(3, 0)], nt(NT as u64));
    assert!((0..4).all(|i| net.nodes[i].state_ok()));
    net.partition(&[0, 3], &[1, 2]);
    net.run_ms(3000);
    assert!(!net.nodes[0].state_ok());
    assert!(!net.nodes[3].state_ok());
    // No FAIL on the minority side: one master is no quorum.
    assert_eq!(net.flags(0, 1) & FAIL, 0);
    let t_fail = net.times(0, |n| *n == Note::StateChanged { ok: false });
    let t_pfail = net.times(0, |n| matches!(n, Note::Pfail { .. }));
    // The master fails as soon as it lost the majority (the second PFAIL).
    assert_eq!(t_fail[0], t_pfail[1]);

    net.heal();
    net.run_ms(3000);
    assert!(net.nodes[0].state_ok() && net.nodes[3].state_ok());
    for (i, rejoin) in [(0, NT), (3, 0)] {
        let back = *net
            .times(i, |n| *n == Note::StateChanged { ok: true })
            .last()
            .unwrap();
        let clear = net.times(i, |n| matches!(n, Note::PfailCleared { .. }))[0];
        let d = back - clear;
        assert!(
            d >= rejoin - 100 && d <= rejoin + 200,
            "node {i}: ok {d} ms after first PONG"
        );
    }
}

// ----- epochs ----------------------------------------------------------------

#[test]
fn config_epoch_collision_smaller_id_bumps() {
    let mut net = Net::new(2, 15000);
    for i in 0..2 {
        net.cmd(i, ClusterCommand::SetConfigEpoch(5)).unwrap();
    }
    net.mesh();
    net.run_ms(1000);
    let (small, big) = if net.id(0) < net.id(1) {
        (0, 1)
    } else {
        (1, 0)
    };
    assert_eq!(net.nodes[small].myself().config_epoch, 6);
    assert_eq!(net.nodes[big].myself().config_epoch, 5);
    for i in 0..2 {
        assert_eq!(net.nodes[i].current_epoch, 6);
    }
    assert_eq!(net.view(big, small).unwrap().config_epoch, 6);
}

#[test]
fn zero_epochs_become_unique() {
    let mut net = Net::new(4, 15000);
    net.mesh();
    net.run_ms(5000);
    let mut epochs: Vec<u64> = (0..4).map(|i| net.nodes[i].myself().config_epoch).collect();
    epochs.sort();
    epochs.dedup();
    assert_eq!(epochs.len(), 4, "{epochs:?}");
}

// ----- gossip ----------------------------------------------------------------

/// A node knowing `n - 1` fake connected peers, `pfail` of them PFAIL.
fn gossip_len(n: usize, pfail: usize) -> (usize, usize) {
    let setup = NodeSetup {
        port: 7000,
        config: Config {
            cluster_enabled: true,
            ..Config::default()
        },
        planted: None,
    };
    let mut node = Node::new(setup, actor_rng(SEED, Actor::Node(0)), 0);
    for k in 1..n {
        let mut c = ClusterNode::new(NodeId([k as u8; 20]), MASTER, 0);
        c.ip = Some([10, 1, 0, k as u8]);
        c.port = 7000;
        c.cport = 17000;
        c.link = Some(1000 + k as u32);
        if k <= pfail {
            c.flags |= PFAIL;
        }
        node.add_node(c);
    }
    node.stats_pfail_nodes = pfail as u32;
    let target = node.lookup(&NodeId([1; 20])).unwrap();
    node.links.insert(
        7,
        Link {
            node: Some(target),
            inbound: false,
            ctime: 0,
            peer_ip: [10, 1, 0, 1],
            local_ip: None,
        },
    );
    let mut out = Vec::new();
    node.send_ping(7, MsgType::Ping, &mut out);
    let [Effect::Send { msg, .. }] = &out[..] else {
        panic!("{out:?}")
    };
    let Body::Gossip(g) = &msg.body else { panic!() };
    let pfails = g.iter().filter(|e| e.flags & PFAIL != 0).count();
    (g.len(), pfails)
}

#[test]
fn gossip_section_sizes() {
    assert_eq!(gossip_len(3, 0), (1, 0)); // capped at N-2
    assert_eq!(gossip_len(4, 0), (2, 0));
    assert_eq!(gossip_len(6, 0), (3, 0));
    assert_eq!(gossip_len(20, 0), (3, 0));
    assert_eq!(gossip_len(45, 0), (4, 0)); // N/10
    assert_eq!(gossip_len(45, 2), (6, 2)); // plus every PFAIL node
}

#[test]
fn pings_carry_pfail_nodes() {
    let mut net = cluster(6, 3, &[], nt(1000));
    net.isolate(5);
    net.run_until_cond(3000, |n| n.flags(0, 5) & PFAIL != 0)
        .expect("PFAIL");
    let from = net.log.len();
    net.run_ms(500);
    let about = net.id(5);
    let pings: Vec<_> = net.log[from..]
        .iter()
        .filter(|(f, _, m)| *f == 0 && m.typ == MsgType::Ping)
        .collect();
    assert!(!pings.is_empty());
    for (_, _, m) in pings {
        let Body::Gossip(g) = &m.body else { panic!() };
        // 6 known nodes: 3 random entries (but never a PFAIL one) + the PFAIL node.
        assert!(g.iter().any(|e| e.name == about && e.flags & PFAIL != 0));
        assert_eq!(g.iter().filter(|e| e.name == about).count(), 1);
        assert!(g.len() <= 4);
    }
}

// ----- text ------------------------------------------------------------------

#[test]
fn flags_strings_in_redis_order() {
    assert_eq!(flags_string(MYSELF | MASTER), "myself,master");
    assert_eq!(flags_string(MYSELF | SLAVE), "myself,slave");
    assert_eq!(flags_string(SLAVE | PFAIL), "slave,fail?");
    assert_eq!(flags_string(MASTER | FAIL), "master,fail");
    assert_eq!(flags_string(HANDSHAKE | MEET), "handshake");
    assert_eq!(
        flags_string(MASTER | NOADDR | NOFAILOVER | MIGRATE_TO),
        "master,noaddr,nofailover"
    );
    assert_eq!(flags_string(0), "noflags");
    assert_eq!(flags_string(MEET), "noflags");
}

#[test]
fn cluster_nodes_lines() {
    let mut net = Net::new(3, 15000);
    let mut slots = range(0, 5460);
    slots.push(5462);
    net.cmd(0, ClusterCommand::AddSlots(slots)).unwrap();
    net.cmd(0, ClusterCommand::SetConfigEpoch(3)).unwrap();
    net.mesh();
    let m = net.id(0);
    net.cmd(1, ClusterCommand::Replicate(m)).unwrap();
    net.run_ms(2000);

    let text = net.nodes[2].cluster_nodes();
    assert!(text.ends_with('\n'));
    let line = |id: NodeId| -> Vec<String> {
        let l = text
            .lines()
            .find(|l| l.starts_with(&id.hex()))
            .expect("line");
        l.split(' ').map(str::to_string).collect()
    };
    let master = line(net.id(0));
    assert_eq!(master[1], "10.0.0.1:7000@17000");
    assert_eq!(master[2], "master");
    assert_eq!(master[3], "-");
    assert_eq!(master[6], "3");
    assert_eq!(master[7], "connected");
    assert_eq!(&master[8..], ["0-5460", "5462"]);
    let replica = line(net.id(1));
    assert_eq!(replica[2], "slave");
    assert_eq!(replica[3], m.hex());
    assert_eq!(
        replica[6], "3",
        "a replica prints its master's config epoch"
    );
    assert_eq!(replica.len(), 8);
    let me = line(net.id(2));
    assert_eq!(me[1], "10.0.0.3:7002@17002");
    assert_eq!(me[2], "myself,master");
    assert_eq!(me[4], "0");
    assert_eq!(me[7], "connected");
    // ping_sent / pong_received are Unix ms.
    let pong: i64 = master[5].parse().unwrap();
    assert!(pong > BASE_UNIX_MS && pong <= net.now_ms());

    // The replica's own line, and its my_epoch in CLUSTER INFO.
    let rtext = net.nodes[1].cluster_nodes();
    assert!(rtext.contains(&format!(" myself,slave {} ", m.hex())));
    assert_eq!(
        info_field(&net.nodes[1].cluster_info(), "cluster_my_epoch").as_deref(),
        Some("3")
    );

    // Cut node 2 from node 0: fail?, then disconnected once the link drops.
    net.cut_pair(0, 2);
    net.run_until_cond(40_000, |n| n.flags(2, 0) & PFAIL != 0)
        .expect("PFAIL");
    assert_eq!(
        line_flags(&net.nodes[2].cluster_nodes(), net.id(0)),
        "master,fail?"
    );
    net.run_until_cond(40_000, |n| n.view(2, 0).unwrap().link.is_none())
        .expect("link dropped");
    let l = net.nodes[2].cluster_nodes();
    let l = l
        .lines()
        .find(|l| l.starts_with(&m.hex()))
        .unwrap()
        .to_string();
    assert!(l.contains(" disconnected"), "{l}");
}

fn line_flags(text: &str, id: NodeId) -> String {
    let l = text
        .lines()
        .find(|l| l.starts_with(&id.hex()))
        .expect("line");
    l.split(' ').nth(2).unwrap().to_string()
}

#[test]
fn cluster_info_fields_and_counters() {
    let mut net = Net::new(2, 15000);
    let info = net.nodes[0].cluster_info();
    let keys: Vec<&str> = info
        .split_terminator("\r\n")
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "cluster_state",
            "cluster_slots_assigned",
            "cluster_slots_ok",
            "cluster_slots_pfail",
            "cluster_slots_fail",
            "cluster_known_nodes",
            "cluster_size",
            "cluster_current_epoch",
            "cluster_my_epoch",
            "cluster_stats_messages_sent",
            "cluster_stats_messages_received",
            "total_cluster_links_buffer_limit_exceeded",
        ]
    );
    assert!(info.ends_with("\r\n") && !info.replace("\r\n", "").contains('\n'));
    assert_eq!(info_field(&info, "cluster_size").as_deref(), Some("1"));
    assert_eq!(
        info_field(&info, "cluster_known_nodes").as_deref(),
        Some("1")
    );

    net.cmd(1, meet(0)).unwrap();
    net.run_ms(1500);
    let i0 = net.nodes[0].cluster_info();
    let i1 = net.nodes[1].cluster_info();
    // B sent a MEET, A received it; nobody sent a FAIL.
    assert_eq!(
        info_field(&i1, "cluster_stats_messages_meet_sent").as_deref(),
        Some("1")
    );
    assert_eq!(
        info_field(&i0, "cluster_stats_messages_meet_received").as_deref(),
        Some("1")
    );
    assert!(info_field(&i0, "cluster_stats_messages_meet_sent").is_none());
    assert!(!i0.contains("fail_sent") && !i0.contains("update"));
    let per_type = |info: &str, dir: &str| -> u64 {
        info.split("\r\n")
            .filter(|l| l.starts_with("cluster_stats_messages_") && l.contains(&format!("_{dir}:")))
            .filter(|l| !l.starts_with(&format!("cluster_stats_messages_{dir}:")))
            .map(|l| l.rsplit(':').next().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    let total: u64 = info_field(&i0, "cluster_stats_messages_sent")
        .unwrap()
        .parse()
        .unwrap();
    assert!(total > 0);
    assert_eq!(per_type(&i0, "sent"), total);
    // Field order: ping before pong before meet, sent block before received.
    let p = i0.find("cluster_stats_messages_ping_sent").unwrap();
    let q = i0.find("cluster_stats_messages_pong_sent").unwrap();
    let r = i0.find("cluster_stats_messages_sent:").unwrap();
    let s = i0.find("cluster_stats_messages_ping_received").unwrap();
    assert!(p < q && q < r && r < s);
    assert_eq!(info_field(&i0, "cluster_known_nodes").as_deref(), Some("2"));
}

#[test]
fn nodes_conf_skips_handshake_nodes_and_ends_with_vars() {
    let mut net = Net::new(2, 15000);
    net.cmd(0, ClusterCommand::SetConfigEpoch(4)).unwrap();
    let (text, _) = net.saved[0].clone().expect("saved");
    assert_eq!(text.lines().count(), 2);
    assert!(
        text.ends_with("\nvars currentEpoch 4 lastVoteEpoch 0\n"),
        "{text}"
    );

    // A MEET to nowhere: a handshake node in CLUSTER NODES, not in nodes.conf.
    net.cmd(
        0,
        ClusterCommand::Meet {
            ip: [10, 0, 0, 99],
            port: 7000,
            cport: None,
        },
    )
    .unwrap();
    assert_eq!(net.nodes[0].cluster_nodes().lines().count(), 2);
    assert!(net.nodes[0].cluster_nodes().contains(" handshake "));
    let conf = net.nodes[0].nodes_conf().text();
    assert!(!conf.contains("handshake"));
    assert_eq!(conf.lines().count(), 2);

    net.cmd(1, meet(0)).unwrap();
    net.run_ms(500);
    let (text, _) = net.saved[0].clone().expect("saved");
    assert!(text.contains(&net.id(1).hex()));
    assert!(!text.contains("handshake"));
    assert!(text
        .lines()
        .last()
        .unwrap()
        .starts_with("vars currentEpoch 4 "));
}
#[test]
fn messages_on_freed_links_are_not_counted() {
    let mut net = Net::new(2, 15000);
    let msg =
        Rc::new(net.nodes[1].build_header(MsgType::Ping, Body::Gossip(Vec::<GossipEntry>::new())));
    net.inject(0, Input::Recv { link: 12345, msg });
    assert_eq!(
        info_field(
            &net.nodes[0].cluster_info(),
            "cluster_stats_messages_received"
        )
        .as_deref(),
        Some("0")
    );
}

#[test]
fn remove_slave_keeps_migrate_to_when_not_a_replica() {
    // clusterNodeRemoveSlave only clears MIGRATE_TO when it removed the
    // last replica, not when the node was not a replica at all.
    let mut net = Net::new(3, 15000);
    net.mesh();
    let (id1, id2) = (net.id(1), net.id(2));
    let node = &mut net.nodes[0];
    let m = node.lookup(&id1).unwrap();
    let x = node.lookup(&id2).unwrap();
    node.nm(m).flags |= MIGRATE_TO;
    node.remove_slave(m, x);
    assert_ne!(node.n(m).flags & MIGRATE_TO, 0);
    node.add_slave(m, x);
    node.remove_slave(m, x);
    assert_eq!(node.n(m).flags & MIGRATE_TO, 0);
    assert!(node.n(m).slaves.is_empty());
}

#[test]
fn gossip_about_myself_sets_my_pong_time() {
    // 7.0.15 applies a gossiped pong time even to `myself`: the myself line
    // of CLUSTER NODES ends up with a non-zero, whole-second pong column.
    let mut net = Net::new(3, 15000);
    net.mesh();
    net.run_ms(5000);
    let pongs: Vec<i64> = (0..3)
        .map(|i| net.nodes[i].myself().pong_received)
        .collect();
    assert!(pongs.iter().any(|&p| p > 0), "{pongs:?}");
    for p in pongs {
        assert_eq!(p % 1000, 0);
        assert_eq!(net.nodes[0].myself().ping_sent, 0);
    }
}

/// A header from node `from` as node `to` would receive it on its outbound
/// link to `from`, claiming to be a master of `slots_of`'s slots with
/// `config_epoch`.
fn claim(
    net: &Net,
    from: usize,
    to: usize,
    slots_of: usize,
    config_epoch: u64,
    typ: MsgType,
) -> Input {
    let mut msg = net.nodes[from].build_header(typ, Body::Gossip(Vec::new()));
    msg.slaveof = None;
    msg.flags = (msg.flags & !SLAVE) | MASTER;
    msg.config_epoch = config_epoch;
    msg.myslots = Rc::clone(&net.view(to, slots_of).unwrap().slots);
    let link = net.view(to, from).unwrap().link.expect("linked");
    Input::Recv {
        link,
        msg: Rc::new(msg),
    }
}

/// clusterUpdateSlotsConfigWith: a claim with a greater config epoch takes
/// the slots; a master that lost its last slot becomes a replica of the
/// claimer; a smaller epoch changes nothing.
#[test]
fn higher_epoch_claim_rebinds_slots_and_demotes_the_old_master() {
    let mut net = cluster(4, 3, &[(3, 0)], nt(5000));
    let old_slots = net.view(1, 0).unwrap().slots.iter().count();
    // A stale claim (epoch 0 < 1) is ignored.
    let stale = claim(&net, 3, 1, 0, 0, MsgType::Pong);
    net.inject(1, stale);
    assert_eq!(net.nodes[1].slot_owner(0).unwrap().name, net.id(0));
    // Epoch 10 wins every slot of node 0.
    let newer = claim(&net, 3, 1, 0, 10, MsgType::Pong);
    net.inject(1, newer);
    for s in [0, old_slots - 1] {
        assert_eq!(net.nodes[1].slot_owner(s).unwrap().name, net.id(3));
    }
    assert_eq!(net.view(1, 0).unwrap().numslots, 0);
    // The old master itself: it loses its last slot and follows node 3.
    let newer = claim(&net, 3, 0, 0, 10, MsgType::Pong);
    net.inject(0, newer);
    assert!(net.nodes[0].myself().is_slave());
    assert_eq!(net.nodes[0].master_id(), Some(net.id(3)));
}

/// A PING claiming slots whose owner has a greater config epoch is answered
/// with one UPDATE about that owner; the receiver of the UPDATE rebinds.
#[test]
fn stale_claim_gets_an_update() {
    let mut net = cluster(4, 3, &[(3, 0)], nt(5000));
    let newer = claim(&net, 3, 1, 0, 10, MsgType::Pong);
    net.inject(1, newer);
    // node 0 still claims its old slots with epoch 1.
    let stale = claim(&net, 0, 1, 3, 1, MsgType::Ping);
    let out = net.inject(1, stale);
    let updates: Vec<_> = out
        .iter()
        .filter_map(|e| match e {
            Effect::Send { msg, .. } if msg.typ == MsgType::Update => Some(msg.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(updates.len(), 1, "{out:?}");
    let Body::Update {
        node,
        config_epoch,
        slots,
    } = &updates[0].body
    else {
        panic!("not an UPDATE body");
    };
    assert_eq!((*node, *config_epoch), (net.id(3), 10));
    assert!(slots.get(0));
    // Node 0 applies it: node 3 becomes master of its slots, node 0 its replica.
    let link = net.view(0, 1).unwrap().link.unwrap();
    net.inject(
        0,
        Input::Recv {
            link,
            msg: Rc::clone(&updates[0]),
        },
    );
    assert_eq!(net.nodes[0].slot_owner(0).unwrap().name, net.id(3));
    assert_eq!(net.nodes[0].master_id(), Some(net.id(3)));
}

#[test]
fn slot_ranges_are_found_a_word_at_a_time() {
    use super::bus::SlotBitmap;
    let mut b = SlotBitmap::default();
    assert_eq!(b.ranges().count(), 0);
    for s in [0usize, 1, 2, 63, 64, 65, 127, 200, 16383] {
        b.set(s);
    }
    for s in 1000..=5460 {
        b.set(s);
    }
    let want: Vec<(usize, usize)> = vec![
        (0, 2),
        (63, 65),
        (127, 127),
        (200, 200),
        (1000, 5460),
        (16383, 16383),
    ];
    assert_eq!(b.ranges().collect::<Vec<_>>(), want);
    let mut text = String::new();
    super::render::write_slot_ranges(&mut text, b.ranges());
    assert_eq!(text, " 0-2 63-65 127 200 1000-5460 16383");
    let full = SlotBitmap([u64::MAX; 256]);
    assert_eq!(full.ranges().collect::<Vec<_>>(), vec![(0, 16383)]);
}
