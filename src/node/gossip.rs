//! `clusterCron()`, PING/PONG/MEET with their gossip sections, the
//! handshake, and the header processing of `clusterProcessPacket()`.

use std::rc::Rc;

use super::bus::{flags::*, Body, BusMsg, GossipEntry, MsgType, NodeId, SlotBitmap};
use super::{todo, ClusterNode, Effect, LinkId, Node, Note, NO_OWNER};

impl Node {
    /// `clusterCron()`, run every 100 ms.
    pub(super) fn cluster_cron(&mut self, out: &mut Vec<Effect>) {
        self.cron_iteration += 1;
        let nt = self.setup.config.cluster_node_timeout_ms as i64;
        let handshake_timeout = nt.max(1000);
        let now = self.now_ms;
        let mut update_state = false;

        // clusterNodeCronHandleReconnect for every node.
        self.stats_pfail_nodes = 0;
        let mut k = 0;
        while k < self.live.len() {
            let idx = self.live[k];
            k += 1;
            let flags = self.n(idx).flags;
            if flags & (MYSELF | NOADDR) != 0 {
                continue;
            }
            if flags & PFAIL != 0 {
                self.stats_pfail_nodes += 1;
            }
            let n = self.n(idx);
            if n.in_handshake() && now - n.ctime > handshake_timeout {
                self.del_node(idx, out);
                k -= 1;
                continue;
            }
            if n.link.is_none() && n.ip.is_some() {
                self.create_link(idx, out);
            }
        }

        // Every 10th iteration, PING the node with the oldest pong among 5
        // random ones.
        if self.cron_iteration.is_multiple_of(10) {
            let mut min_pong_node: Option<u32> = None;
            let mut min_pong = 0;
            for _ in 0..5 {
                let pick = self.random_live();
                let this = self.n(pick);
                if this.link.is_none() || this.ping_sent != 0 {
                    continue;
                }
                if this.flags & (MYSELF | HANDSHAKE) != 0 {
                    continue;
                }
                if min_pong_node.is_none() || min_pong > this.pong_received {
                    min_pong_node = Some(pick);
                    min_pong = this.pong_received;
                }
            }
            if let Some(idx) = min_pong_node {
                let link = self.n(idx).link.expect("checked above");
                self.send_ping(link, MsgType::Ping, out);
            }
        }

        // Failure detection, link health, and the NT/2 ping rule.
        let mut k = 0;
        while k < self.live.len() {
            let idx = self.live[k];
            k += 1;
            let n = self.n(idx);
            if n.flags & (MYSELF | NOADDR | HANDSHAKE) != 0 {
                continue;
            }
            let ping_delay = now - n.ping_sent;
            let data_delay = now - n.data_received;
            if let Some(link) = n.link {
                let link_age = now - self.links[&link].ctime;
                if link_age > nt && n.ping_sent != 0 && ping_delay > nt / 2 && data_delay > nt / 2 {
                    // Disconnect the link, it will be reconnected automatically.
                    self.free_link(link, Some(out));
                }
            }
            let n = self.n(idx);
            if let Some(link) = n.link {
                if n.ping_sent == 0 && now - n.pong_received > nt / 2 {
                    self.send_ping(link, MsgType::Ping, out);
                    continue;
                }
            }
            if self.ping_mf_slave_if_needed(idx, out) {
                continue;
            }
            let n = self.n(idx);
            if n.ping_sent == 0 {
                continue;
            }
            let node_delay = ping_delay.min(data_delay);
            if node_delay > nt && n.flags & (PFAIL | FAIL) == 0 {
                let name = n.name;
                self.nm(idx).flags |= PFAIL;
                update_state = true;
                out.push(Effect::Note(Note::Pfail { about: name }));
            }
        }

        // A replica whose replication is still off turns it on once its
        // master's address is known.
        let me = self.myself();
        if let Some(m) = me.slaveof.filter(|_| me.is_slave()) {
            if self.repl.replica.masterhost().is_none() && self.n(m).ip.is_some() {
                self.replicate(m, out);
            }
        }

        self.cron_failover(out);

        if update_state || !self.state_ok {
            self.update_state(out);
        }
    }

    /// Build a header (`clusterBuildMessageHdr`).
    pub(super) fn build_header(&self, typ: MsgType, body: Body) -> BusMsg {
        let me = self.myself();
        let master = match (me.is_slave(), me.slaveof) {
            (true, Some(m)) => self.n(m),
            _ => me,
        };
        BusMsg {
            typ,
            sender: me.name,
            current_epoch: self.current_epoch,
            config_epoch: master.config_epoch,
            offset: self.my_repl_offset(),
            myslots: Rc::clone(&master.slots),
            slaveof: me.slaveof.map(|m| self.n(m).name),
            myip: self.announce_ip,
            port: me.port,
            cport: me.cport,
            flags: me.flags,
            state_ok: self.state_ok,
            mflags: self.header_mflags(),
            body,
        }
    }

    pub(super) fn gossip_entry(n: &ClusterNode) -> GossipEntry {
        GossipEntry {
            name: n.name,
            ping_sent_s: (n.ping_sent / 1000) as u32,
            pong_received_s: (n.pong_received / 1000) as u32,
            ip: n.ip,
            port: n.port,
            cport: n.cport,
            flags: n.flags,
        }
    }

    /// `clusterSendPing()`: PING, PONG or MEET with gossip entries.
    pub(super) fn send_ping(&mut self, link_id: LinkId, typ: MsgType, out: &mut Vec<Effect>) {
        self.cluster_pings_sent += 1;
        let stamp = self.cluster_pings_sent;
        let total = self.live.len() as i64;
        let mut freshnodes = total - 2;
        let mut wanted = (total / 10).max(3);
        if wanted > freshnodes {
            wanted = freshnodes;
        }
        let mut pfail_wanted = self.stats_pfail_nodes;

        let link = &self.links[&link_id];
        if !link.inbound && typ == MsgType::Ping {
            let idx = link.node.expect("outbound link has a node");
            self.nm(idx).ping_sent = self.now_ms;
        }

        let mut gossip = Vec::with_capacity((wanted.max(0) as usize) + pfail_wanted as usize);
        let mut maxiterations = wanted * 3;
        while freshnodes > 0 && (gossip.len() as i64) < wanted && maxiterations > 0 {
            maxiterations -= 1;
            let pick = self.random_live();
            if pick == self.myself {
                continue;
            }
            let this = self.n(pick);
            if this.flags & PFAIL != 0 {
                continue;
            }
            if this.flags & (HANDSHAKE | NOADDR) != 0 || (this.link.is_none() && this.numslots == 0)
            {
                freshnodes -= 1;
                continue;
            }
            if this.last_in_ping_gossip == stamp {
                continue;
            }
            gossip.push(Self::gossip_entry(this));
            self.nm(pick).last_in_ping_gossip = stamp;
            freshnodes -= 1;
        }
        if pfail_wanted > 0 {
            for &idx in &self.live {
                if pfail_wanted == 0 {
                    break;
                }
                let n = self.n(idx);
                if n.flags & (HANDSHAKE | NOADDR) != 0 || n.flags & PFAIL == 0 {
                    continue;
                }
                gossip.push(Self::gossip_entry(n));
                pfail_wanted -= 1;
            }
        }
        let msg = self.build_header(typ, Body::Gossip(gossip));
        self.send_message(Some(link_id), Rc::new(msg), out);
    }

    /// `clusterBroadcastMessage`: to every known node with a link, except
    /// myself and handshake nodes.
    pub(super) fn broadcast(&mut self, msg: BusMsg, out: &mut Vec<Effect>) {
        let msg = Rc::new(msg);
        for k in 0..self.live.len() {
            let n = self.n(self.live[k]);
            if n.flags & (MYSELF | HANDSHAKE) != 0 {
                continue;
            }
            let link = n.link;
            self.send_message(link, Rc::clone(&msg), out);
        }
    }

    fn blacklisted(&mut self, name: &NodeId) -> bool {
        let now = self.now_ms;
        self.blacklist.retain(|_, exp| *exp >= now);
        self.blacklist.contains_key(name)
    }

    /// `clusterStartHandshake`: returns false if one to this address is
    /// already in progress.
    pub(super) fn start_handshake(&mut self, ip: [u8; 4], port: u16, cport: u32) -> bool {
        let in_progress = self.live.iter().any(|&i| {
            let n = self.n(i);
            n.in_handshake() && n.ip == Some(ip) && n.port == port && n.cport == cport
        });
        if in_progress {
            return false;
        }
        let name = self.random_name();
        let mut n = ClusterNode::new(name, HANDSHAKE | MEET, self.now_ms);
        n.ip = Some(ip);
        n.port = port;
        n.cport = cport;
        self.add_node(n);
        true
    }

    /// A random 40-hex-char name (`getRandomHexChars`).
    pub(super) fn random_name(&mut self) -> NodeId {
        NodeId::random(&mut self.rng)
    }

    /// `nodeUpdateAddressIfNeeded`.
    fn update_address_if_needed(
        &mut self,
        idx: u32,
        link_id: LinkId,
        msg: &BusMsg,
        out: &mut Vec<Effect>,
    ) -> bool {
        if self.n(idx).link == Some(link_id) {
            return false;
        }
        let ip = msg.myip.unwrap_or(self.links[&link_id].peer_ip);
        let n = self.n(idx);
        if n.port == msg.port && n.cport == msg.cport && n.ip == Some(ip) {
            return false;
        }
        let old_link = n.link;
        let n = self.nm(idx);
        n.ip = Some(ip);
        n.port = msg.port;
        n.cport = msg.cport;
        n.flags &= !NOADDR;
        if let Some(l) = old_link {
            self.free_link(l, Some(out));
        }
        // My master moved: replicate its new address.
        if self.myself().is_slave() && self.myself().slaveof == Some(idx) {
            self.replicate(idx, out);
        }
        true
    }

    /// `clusterProcessPacket()`.
    pub(super) fn process_packet(&mut self, link_id: LinkId, msg: &BusMsg, out: &mut Vec<Effect>) {
        // A freed link's socket is closed: what was in flight is never read,
        // so it is not counted either.
        let Some(link) = self.links.get(&link_id) else {
            return;
        };
        self.stats_received[msg.typ as usize] += 1;
        let (link_node, link_inbound) = (link.node, link.inbound);
        let now = self.now_ms;
        let typ = msg.typ;

        // getNodeFromLinkAndMsg
        let sender = match link_node {
            Some(idx) if !self.n(idx).in_handshake() => Some(idx),
            _ => {
                let s = self.lookup(&msg.sender);
                if let (Some(s), None) = (s, link_node) {
                    self.set_inbound_link(s, link_id, out);
                }
                s
            }
        };
        if let Some(s) = sender {
            self.nm(s).data_received = now;
        }
        let mut sender_config_epoch = 0;
        if let Some(s) = sender.filter(|&s| !self.n(s).in_handshake()) {
            if msg.current_epoch > self.current_epoch {
                self.current_epoch = msg.current_epoch;
            }
            sender_config_epoch = msg.config_epoch;
            if sender_config_epoch > self.n(s).config_epoch {
                self.nm(s).config_epoch = sender_config_epoch;
                self.todo |= todo::SAVE_CONFIG | todo::FSYNC_CONFIG;
            }
            let n = self.nm(s);
            n.repl_offset = msg.offset;
            n.repl_offset_time = now;
            self.note_paused_master_offset(s, msg.mflags);
        }

        if typ == MsgType::Ping || typ == MsgType::Meet {
            let me = self.myself;
            if (typ == MsgType::Meet || self.n(me).ip.is_none())
                && self.setup.config.cluster_announce_ip.is_none()
            {
                if let Some(local) = self.links[&link_id].local_ip {
                    if self.n(me).ip != Some(local) {
                        self.nm(me).ip = Some(local);
                        self.todo |= todo::SAVE_CONFIG;
                    }
                }
            }
            if sender.is_none() && typ == MsgType::Meet {
                let name = self.random_name();
                let mut n = ClusterNode::new(name, HANDSHAKE, now);
                n.ip = Some(msg.myip.unwrap_or(self.links[&link_id].peer_ip));
                n.port = msg.port;
                n.cport = msg.cport;
                self.add_node(n);
                self.todo |= todo::SAVE_CONFIG;
                self.process_gossip_section(msg, None, out);
            }
            self.send_ping(link_id, MsgType::Pong, out);
        }

        match typ {
            MsgType::Ping | MsgType::Pong | MsgType::Meet => {
                if !link_inbound {
                    let ln = link_node.expect("outbound link has a node");
                    if self.n(ln).in_handshake() {
                        if let Some(s) = sender {
                            if self.update_address_if_needed(s, link_id, msg, out) {
                                self.todo |= todo::SAVE_CONFIG | todo::UPDATE_STATE;
                            }
                            self.del_node(ln, out);
                            return;
                        }
                        self.rename_node(ln, msg.sender);
                        let n = self.nm(ln);
                        n.flags &= !HANDSHAKE;
                        n.flags |= msg.flags & (MASTER | SLAVE);
                        self.todo |= todo::SAVE_CONFIG;
                    } else if self.n(ln).name != msg.sender {
                        let n = self.nm(ln);
                        n.flags |= NOADDR;
                        n.ip = None;
                        n.port = 0;
                        n.cport = 0;
                        self.free_link(link_id, Some(out));
                        self.todo |= todo::SAVE_CONFIG;
                        return;
                    }
                }

                if let Some(s) = sender {
                    let n = self.nm(s);
                    n.flags = (n.flags & !NOFAILOVER) | (msg.flags & NOFAILOVER);
                }

                if let Some(s) = sender {
                    if typ == MsgType::Ping
                        && !self.n(s).in_handshake()
                        && self.update_address_if_needed(s, link_id, msg, out)
                    {
                        self.todo |= todo::SAVE_CONFIG | todo::UPDATE_STATE;
                    }
                }

                if !link_inbound && typ == MsgType::Pong {
                    let ln = link_node.expect("outbound link has a node");
                    let n = self.nm(ln);
                    n.pong_received = now;
                    n.ping_sent = 0;
                    if n.timed_out() {
                        n.flags &= !PFAIL;
                        let about = n.name;
                        self.todo |= todo::SAVE_CONFIG | todo::UPDATE_STATE;
                        out.push(Effect::Note(Note::PfailCleared { about }));
                    } else if n.failed() {
                        self.clear_node_failure_if_needed(ln, out);
                    }
                }

                let Some(s) = sender else { return };

                // Role switch: slave -> master or master -> slave.
                match msg.slaveof {
                    None => self.set_node_as_master(s),
                    Some(master_name) => {
                        let master = self.lookup(&master_name);
                        if self.n(s).is_master() {
                            self.del_node_slots(s);
                            let n = self.nm(s);
                            n.flags &= !(MASTER | MIGRATE_TO);
                            n.flags |= SLAVE;
                            self.todo |= todo::SAVE_CONFIG | todo::UPDATE_STATE;
                        }
                        if let Some(m) = master {
                            if self.n(s).slaveof != Some(m) {
                                if let Some(old) = self.n(s).slaveof {
                                    self.remove_slave(old, s);
                                }
                                self.add_slave(m, s);
                                self.nm(s).slaveof = Some(m);
                                self.todo |= todo::SAVE_CONFIG;
                            }
                        }
                    }
                }

                // Slots: what the sender (or its master) claims.
                let sender_master = if self.n(s).is_master() {
                    Some(s)
                } else {
                    self.n(s).slaveof
                };
                let dirty_slots = match sender_master {
                    Some(m) if !Rc::ptr_eq(&self.n(m).slots, &msg.myslots) => {
                        if *self.n(m).slots == *msg.myslots {
                            // The same bitmap: share the sender's copy so
                            // that its next headers compare by pointer.
                            self.nm(m).slots = Rc::clone(&msg.myslots);
                            false
                        } else {
                            true
                        }
                    }
                    _ => false,
                };
                if self.n(s).is_master() && dirty_slots {
                    self.update_slots_config_with(s, sender_config_epoch, &msg.myslots, out);
                    // Usually I now see just what it claims: share its
                    // bitmap rather than keep a copy of my own (a 1000-node
                    // cluster would hold half a million of them).
                    if *self.n(s).slots == *msg.myslots {
                        self.nm(s).slots = Rc::clone(&msg.myslots);
                    }
                }
                if dirty_slots {
                    self.maybe_send_update(s, sender_config_epoch, &msg.myslots, out);
                }

                let me = self.myself;
                if self.n(me).is_master()
                    && self.n(s).is_master()
                    && sender_config_epoch == self.n(me).config_epoch
                {
                    self.handle_config_epoch_collision(s);
                }

                self.process_gossip_section(msg, Some(s), out);
            }
            MsgType::Fail => {
                let Some(_) = sender else { return };
                let Body::Fail { about } = &msg.body else {
                    return;
                };
                if let Some(f) = self.lookup(about) {
                    let n = self.nm(f);
                    if n.flags & (FAIL | MYSELF) == 0 {
                        n.flags |= FAIL;
                        n.fail_time = now;
                        n.flags &= !PFAIL;
                        self.todo |= todo::SAVE_CONFIG | todo::UPDATE_STATE;
                        out.push(Effect::Note(Note::FailReceived { about: *about }));
                    }
                }
            }
            MsgType::Update => {
                let Some(_) = sender else { return };
                let Body::Update {
                    node,
                    config_epoch,
                    slots,
                } = &msg.body
                else {
                    return;
                };
                let Some(n) = self.lookup(node) else { return };
                if self.n(n).config_epoch >= *config_epoch {
                    return;
                }
                if self.n(n).is_slave() {
                    self.set_node_as_master(n);
                }
                self.nm(n).config_epoch = *config_epoch;
                self.todo |= todo::SAVE_CONFIG | todo::FSYNC_CONFIG;
                self.update_slots_config_with(n, *config_epoch, slots, out);
            }
            MsgType::FailoverAuthRequest => {
                let Some(s) = sender else { return };
                self.send_failover_auth_if_needed(s, msg, out);
            }
            MsgType::FailoverAuthAck => {
                let Some(s) = sender else { return };
                self.receive_failover_auth_ack(s, msg.current_epoch);
            }
            MsgType::MfStart => {
                let Some(s) = sender else { return };
                self.receive_mfstart(s, link_id, out);
            }
            // Pub/sub and modules come with later work.
            _ => {}
        }
    }

    /// `setClusterNodeToInboundClusterLink`.
    fn set_inbound_link(&mut self, idx: u32, link_id: LinkId, out: &mut Vec<Effect>) {
        if let Some(old) = self.n(idx).inbound_link {
            if old != link_id {
                self.free_link(old, Some(out));
            }
        }
        self.nm(idx).inbound_link = Some(link_id);
        if let Some(l) = self.links.get_mut(&link_id) {
            l.node = Some(idx);
        }
    }

    /// `clusterProcessGossipSection()`.
    fn process_gossip_section(&mut self, msg: &BusMsg, sender: Option<u32>, out: &mut Vec<Effect>) {
        let Body::Gossip(entries) = &msg.body else {
            return;
        };
        let now = self.now_ms;
        for g in entries {
            let gflags = g.flags;
            if let Some(node) = self.lookup(&g.name) {
                if let Some(s) = sender {
                    if self.n(s).is_master() && node != self.myself {
                        if gflags & (FAIL | PFAIL) != 0 {
                            self.add_failure_report(node, s);
                            self.mark_node_as_failing_if_needed(node, out);
                        } else {
                            self.del_failure_report(node, s);
                        }
                    }
                }
                if gflags & (FAIL | PFAIL) == 0
                    && self.n(node).ping_sent == 0
                    && self.failure_reports_count(node) == 0
                {
                    let pongtime = i64::from(g.pong_received_s) * 1000;
                    let n = self.nm(node);
                    if pongtime <= now + 500 && pongtime > n.pong_received {
                        n.pong_received = pongtime;
                    }
                }
                let n = self.n(node);
                if n.flags & (FAIL | PFAIL) != 0
                    && gflags & NOADDR == 0
                    && gflags & (FAIL | PFAIL) == 0
                    && (n.ip != g.ip || n.port != g.port || n.cport != g.cport)
                {
                    if let Some(l) = n.link {
                        self.free_link(l, Some(out));
                    }
                    let n = self.nm(node);
                    n.ip = g.ip;
                    n.port = g.port;
                    n.cport = g.cport;
                    n.flags &= !NOADDR;
                }
            } else if sender.is_some() && gflags & NOADDR == 0 && !self.blacklisted(&g.name) {
                let mut n = ClusterNode::new(g.name, gflags, now);
                n.ip = g.ip;
                n.port = g.port;
                n.cport = g.cport;
                self.add_node(n);
            }
        }
    }

    /// `clusterHandleConfigEpochCollision()`.
    fn handle_config_epoch_collision(&mut self, sender: u32) {
        let me = self.myself;
        if self.n(sender).config_epoch != self.n(me).config_epoch
            || !self.n(sender).is_master()
            || !self.n(me).is_master()
        {
            return;
        }
        // Don't act if the colliding node has a smaller Node ID.
        if self.n(sender).name <= self.n(me).name {
            return;
        }
        self.current_epoch += 1;
        self.nm(me).config_epoch = self.current_epoch;
        self.config_epoch_unilateral = true;
        self.todo |= todo::SAVE_CONFIG | todo::FSYNC_CONFIG;
    }

    /// The UPDATE check of `clusterProcessPacket`: the sender claims a slot
    /// whose owner has a greater config epoch → tell it (once per packet).
    fn maybe_send_update(
        &mut self,
        sender: u32,
        sender_config_epoch: u64,
        claimed: &SlotBitmap,
        out: &mut Vec<Effect>,
    ) {
        // Redis walks the claimed slots in order and stops at the first one
        // whose owner has a greater epoch. Slots of one owner in a word
        // decide alike, and the groups come out in order of their lowest
        // slot, so the first group that qualifies holds the first such slot.
        // The sender's own bitmap is exactly the slots it owns.
        for w in 0..claimed.0.len() {
            let mut rest =
                claimed.0[w] & !self.n(sender).slots.0[w] & !self.owner_not_claiming_slot.0[w];
            while rest != 0 {
                let same = self.slots_of_owner_in_word(w, rest);
                rest &= !same;
                let owner = self.slot_owner[w * 64 + same.trailing_zeros() as usize];
                if owner == NO_OWNER || self.n(owner).config_epoch <= sender_config_epoch {
                    continue;
                }
                let Some(link) = self.n(sender).link else {
                    return;
                };
                let o = self.n(owner);
                let mut slots = (*o.slots).clone();
                for (w, nc) in slots
                    .0
                    .iter_mut()
                    .zip(self.owner_not_claiming_slot.0.iter())
                {
                    *w &= !nc;
                }
                let body = Body::Update {
                    node: o.name,
                    config_epoch: o.config_epoch,
                    slots: Rc::new(slots),
                };
                let msg = self.build_header(MsgType::Update, body);
                self.send_message(Some(link), Rc::new(msg), out);
                return;
            }
        }
    }

    /// `clusterUpdateSlotsConfigWith()`.
    pub(super) fn update_slots_config_with(
        &mut self,
        sender: u32,
        sender_config_epoch: u64,
        slots: &SlotBitmap,
        out: &mut Vec<Effect>,
    ) {
        let me = self.myself;
        if sender == me {
            return;
        }
        let curmaster = if self.n(me).is_master() {
            Some(me)
        } else {
            self.n(me).slaveof
        };
        let mut newmaster = None;
        let mut sender_slots = 0;
        let mut migrated_our_slots = 0;
        // Redis walks the 16384 slots one by one. A word of 64 at a time
        // gives the same result: the sender's own bitmap is exactly the set
        // of slots whose owner is the sender (add_slot/del_slot keep both).
        for w in 0..slots.0.len() {
            let claimed = slots.0[w];
            let owned = self.n(sender).slots.0[w];
            // Claimed and already the sender's: nothing but the flag.
            // Owned but not claimed: the owner does not claim it.
            let not_claiming = &mut self.owner_not_claiming_slot.0[w];
            *not_claiming = (*not_claiming & !owned) | (owned & !claimed);
            sender_slots += claimed.count_ones();
            // The others: each slot's decision depends on that slot and its
            // owner alone, so slots of one owner are decided together.
            let mut rest = claimed & !owned;
            let mut take = 0u64;
            while rest != 0 {
                let mut same = self.slots_of_owner_in_word(w, rest);
                rest &= !same;
                let owner = self.slot_owner[w * 64 + same.trailing_zeros() as usize];
                if !self.importing_slots_from.is_empty() {
                    let mut r = same;
                    while r != 0 {
                        let b = r.trailing_zeros();
                        r &= r - 1;
                        if self
                            .importing_slots_from
                            .contains_key(&((w * 64) as u16 + b as u16))
                        {
                            same &= !(1 << b);
                        }
                    }
                }
                let taken = if owner == NO_OWNER || self.n(owner).config_epoch < sender_config_epoch
                {
                    same
                } else {
                    same & self.owner_not_claiming_slot.0[w]
                };
                if taken != 0 && Some(owner) == curmaster {
                    newmaster = Some(sender);
                    migrated_our_slots += taken.count_ones();
                }
                take |= taken;
            }
            if take != 0 {
                self.move_slots(w, take, sender);
                self.owner_not_claiming_slot.0[w] &= !take;
                self.todo |= todo::SAVE_CONFIG | todo::UPDATE_STATE | todo::FSYNC_CONFIG;
            }
        }
        let allow_migration = self.setup.config.cluster_allow_replica_migration;
        if let (Some(nm), Some(cm)) = (newmaster, curmaster) {
            if self.n(cm).numslots == 0 && (allow_migration || sender_slots == migrated_our_slots) {
                self.set_master(nm, out);
                self.todo |= todo::SAVE_CONFIG | todo::UPDATE_STATE | todo::FSYNC_CONFIG;
                return;
            }
        }
        if let Some(m) = self.n(me).slaveof {
            if let Some(gm) = self.n(m).slaveof {
                if gm != me {
                    self.set_master(gm, out);
                    self.todo |= todo::SAVE_CONFIG | todo::UPDATE_STATE | todo::FSYNC_CONFIG;
                }
            }
        }
        // Deleting keys of lost slots comes with the keyspace.
    }
}
