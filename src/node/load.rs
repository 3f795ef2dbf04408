//! Starting a node from its `nodes.conf` (`clusterLoadConfig()`).

use std::rc::Rc;

use super::bus::{flags::*, NodeId, SlotBitmap};
use super::conf_file::parse_nodes;
use super::{ClusterNode, Node, NodeSetup};
use crate::engine::{Rng, SimTime};

impl Node {
    /// A node restarted from `nodes.conf` text, as `clusterLoadConfig` reads
    /// it: the same ID, roles, slots and epochs; `fail?`/`fail` flags kept
    /// (FAIL with `fail_time = now`); non-zero ping/pong times replaced by
    /// now; a replica's config epoch loaded as 0 (it shows its master's);
    /// `currentEpoch` raised to the greatest config epoch seen. Links start
    /// disconnected and the cluster state is FAIL.
    pub fn load(setup: NodeSetup, rng: Rng, now: SimTime, text: &str) -> Result<Node, String> {
        let file =
            parse_nodes(text).map_err(|e| format!("nodes.conf line {}: {}", e.line, e.message))?;
        let mut node = Node::empty(setup, rng, now);
        let now_ms = node.now_ms;
        let mut myself = None;
        let id_of = |s: &str| NodeId::parse(s).ok_or_else(|| format!("bad node id {s:?}"));
        for line in &file.nodes {
            let name = id_of(&line.id)?;
            let idx = match node.lookup(&name) {
                Some(i) => i,
                None => node.add_node(ClusterNode::new(name, 0, now_ms)),
            };
            let mut flags = 0;
            for f in &line.flags {
                flags |= match f.as_str() {
                    "myself" => MYSELF,
                    "master" => MASTER,
                    "slave" => SLAVE,
                    "fail?" => PFAIL,
                    "fail" => FAIL,
                    "handshake" => HANDSHAKE,
                    "noaddr" => NOADDR,
                    "nofailover" => NOFAILOVER,
                    _ => 0,
                };
            }
            if flags & MYSELF != 0 {
                myself = Some(idx);
            }
            if let Some(m) = &line.master_id {
                let mname = id_of(m)?;
                let midx = match node.lookup(&mname) {
                    Some(i) => i,
                    None => node.add_node(ClusterNode::new(mname, 0, now_ms)),
                };
                node.nm(idx).slaveof = Some(midx);
                node.add_slave(midx, idx);
            }
            let n = node.nm(idx);
            n.flags = flags;
            if flags & FAIL != 0 {
                n.fail_time = now_ms;
            }
            n.ip = line.ip;
            n.port = line.port;
            n.cport = line.cport;
            if line.ping_sent_ms != 0 {
                n.ping_sent = now_ms;
            }
            if line.pong_recv_ms != 0 {
                n.pong_received = now_ms;
            }
            n.config_epoch = if n.is_slave() && n.slaveof.is_some() {
                0
            } else {
                line.config_epoch
            };
            for &(a, b) in &line.slots {
                for s in a..=b {
                    node.add_slot(idx, usize::from(s));
                }
            }
        }
        let me = myself.ok_or("nodes.conf has no myself line")?;
        node.myself = me;
        for k in 0..node.live.len() {
            let i = node.live[k];
            if node.n(i).numslots > 0 {
                let n = node.nm(i);
                n.slots = SlotBitmap::shared(Rc::clone(&n.slots));
            }
        }
        for line in &file.nodes {
            if NodeId::parse(&line.id) != Some(node.n(me).name) {
                continue;
            }
            for (slot, id) in &line.migrating {
                if let Some(to) = node.lookup(&id_of(id)?) {
                    node.migrating_slots_to.insert(*slot, to);
                }
            }
            for (slot, id) in &line.importing {
                if let Some(from) = node.lookup(&id_of(id)?) {
                    node.importing_slots_from.insert(*slot, from);
                }
            }
        }
        node.current_epoch = file.current_epoch.unwrap_or(0);
        node.last_vote_epoch = file.last_vote_epoch.unwrap_or(0);
        let max_epoch = node
            .known_nodes()
            .map(|n| n.config_epoch)
            .max()
            .unwrap_or(0);
        node.current_epoch = node.current_epoch.max(max_epoch);
        if node.setup.planted == Some(super::Planted::ForgetCurrentEpoch) {
            node.current_epoch = 0;
        }
        // Our own ports are what we were started with (`clusterInit`:
        // `deriveAnnouncedPorts`).
        (node.nm(me).port, node.nm(me).cport) = node.derive_announced_ports();
        Ok(node)
    }
}
