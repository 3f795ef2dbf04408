//! Slot migration on one node (Redis 7.0.15 `src/cluster.c`): the
//! `CLUSTER` subcommands that open, close and reassign a slot (`SETSLOT`,
//! `ADDSLOTS`/`DELSLOTS`, `FORGET`), the ones that list a slot's keys
//! (`COUNTKEYSINSLOT`, `GETKEYSINSLOT`), and `MIGRATE` / `RESTORE-ASKING`,
//! which move keys with their TTL from one master to another.
//!
//! `MIGRATE` is synchronous in Redis: the source writes every
//! `RESTORE-ASKING` to the target and blocks (`connSyncWrite`,
//! `connSyncReadLine`) until the replies are read. Here it is cut in two
//! sans-IO halves: [`Node::migrate_prepare`] builds the commands the
//! target will read, and [`Node::migrate_finish`], given the target's
//! replies, deletes the keys it acknowledged and propagates their `DEL`.
//! The world carries the commands and replies over the network and keeps
//! the source from handling anything in between.
//!
//! The keyspace counts the keys of each slot; a slot's keys are listed by
//! scanning it, once per slot migrated (Redis keeps a list per slot,
//! `slots_to_keys`, newest first): `GETKEYSINSLOT` returns them in the
//! keyspace's order.
//!
//! The `DUMP` payload of a string is its bytes, a type byte before them,
//! and the 2-byte RDB version and 8-byte checksum after them (the
//! checksum is not computed: the payload never leaves the simulation),
//! so a `RESTORE-ASKING` is as long on the wire as Redis's.

use std::rc::Rc;

use super::argv::{Argv, ReplCommand};
use super::bus::{NodeId, SlotBitmap};
use super::election::BroadcastTarget;
use super::keyspace::{parse_i64, Entry, Keyspace, Reply, Value};
use super::render::CommandError;
use super::slots::{key_hash_slot, CLUSTER_SLOTS};
use super::{todo, Effect, Node, NO_OWNER};

/// The `RDB_VERSION` of Redis 7.0, as `createDumpPayload` writes it.
const RDB_VERSION: u16 = 10;
/// `RDB_TYPE_STRING`.
const RDB_TYPE_STRING: u8 = 0;
/// `CLUSTER_BLACKLIST_TTL`: seconds a forgotten node is not re-added.
const BLACKLIST_TTL_MS: i64 = 60_000;

/// `CLUSTER SETSLOT <slot> <action>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetSlot {
    Migrating(NodeId),
    Importing(NodeId),
    Stable,
    Node(NodeId),
}

impl SetSlot {
    /// The subcommand as redis-cli writes it (`MIGRATING <id>`, ...).
    pub fn text(&self) -> String {
        match self {
            SetSlot::Migrating(id) => format!("MIGRATING {id}"),
            SetSlot::Importing(id) => format!("IMPORTING {id}"),
            SetSlot::Stable => "STABLE".into(),
            SetSlot::Node(id) => format!("NODE {id}"),
        }
    }
}

/// What `MIGRATE` sends the target: one `RESTORE-ASKING` per key still
/// there and not expired, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrateBatch {
    pub keys: Vec<Vec<u8>>,
    pub restores: Vec<Vec<Vec<u8>>>,
}

impl MigrateBatch {
    /// Bytes of the commands on the wire (RESP).
    pub fn wire_len(&self) -> u64 {
        self.restores
            .iter()
            .map(|argv| {
                let refs: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
                super::serve::request_len(&refs)
            })
            .sum()
    }
}

/// `createDumpPayload` of a string value.
pub fn dump_payload(value: &Value) -> Vec<u8> {
    let mut p = vec![RDB_TYPE_STRING];
    p.extend_from_slice(&value.to_bytes());
    p.extend_from_slice(&RDB_VERSION.to_le_bytes());
    p.extend_from_slice(&[0; 8]);
    p
}

/// `verifyDumpPayload` + `rdbLoadObject`: the value of a payload.
fn load_payload(p: &[u8]) -> Result<Vec<u8>, CommandError> {
    if p.len() < 11 || p[p.len() - 10..p.len() - 8] != RDB_VERSION.to_le_bytes() {
        return Err("ERR DUMP payload version or checksum are wrong".into());
    }
    if p[0] != RDB_TYPE_STRING {
        return Err("ERR Bad data format".into());
    }
    Ok(p[1..p.len() - 10].to_vec())
}

/// The keys of one slot as last listed, for `GETKEYSINSLOT` during a
/// migration (one scan of the keyspace per slot rather than one per
/// batch): still valid while every key of the slot is one of them.
#[derive(Clone, Debug, Default)]
pub struct SlotKeysCache {
    slot: u16,
    keys: Vec<Vec<u8>>,
}

impl SlotKeysCache {
    /// The first `count` keys of `slot` in `keyspace`.
    fn keys_in_slot(&mut self, keyspace: &Keyspace, slot: u16, count: usize) -> Vec<Vec<u8>> {
        let total = keyspace.count_keys_in_slot(slot);
        if total == 0 {
            return Vec::new();
        }
        self.keys.retain(|k| keyspace.peek(k).is_some());
        if self.slot != slot || self.keys.len() != total {
            self.slot = slot;
            self.keys = (0..keyspace.len())
                .filter_map(|i| keyspace.key_at(i))
                .filter(|(k, _)| key_hash_slot(k) == slot)
                .map(|(k, _)| k.to_vec())
                .collect();
        }
        self.keys.iter().take(count).cloned().collect()
    }
}

impl Node {
    /// `CLUSTER SETSLOT` (7.0.15 `clusterCommand`).
    pub(super) fn cluster_setslot(
        &mut self,
        slot: u16,
        action: SetSlot,
        out: &mut Vec<Effect>,
    ) -> Result<String, CommandError> {
        if self.myself().is_slave() {
            return Err("ERR Please use SETSLOT only with masters.".into());
        }
        let j = usize::from(slot);
        if j >= CLUSTER_SLOTS {
            return Err("ERR Invalid or out of range slot".into());
        }
        let me = self.myself;
        let master = |node: &Node, id: &NodeId, unknown: &str| match node.lookup(id) {
            None => Err(format!("ERR {unknown} {id}")),
            Some(n) if node.n(n).is_slave() => Err("ERR Target node is not a master".into()),
            Some(n) => Ok(n),
        };
        match action {
            SetSlot::Migrating(id) => {
                if self.slot_owner[j] != me {
                    return Err(format!("ERR I'm not the owner of hash slot {slot}"));
                }
                let n = master(self, &id, "I don't know about node")?;
                self.migrating_slots_to.insert(slot, n);
            }
            SetSlot::Importing(id) => {
                if self.slot_owner[j] == me {
                    return Err(format!("ERR I'm already the owner of hash slot {slot}"));
                }
                let n = master(self, &id, "I don't know about node")?;
                self.importing_slots_from.insert(slot, n);
            }
            SetSlot::Stable => {
                self.importing_slots_from.remove(&slot);
                self.migrating_slots_to.remove(&slot);
            }
            SetSlot::Node(id) => {
                let n = master(self, &id, "Unknown node")?;
                let keys = self.keyspace.count_keys_in_slot(slot);
                if self.slot_owner[j] == me && n != me && keys != 0 {
                    return Err(format!(
                        "ERR Can't assign hashslot {slot} to a different node while I still hold keys for this hash slot."
                    ));
                }
                if keys == 0 {
                    self.migrating_slots_to.remove(&slot);
                }
                let slot_was_mine = self.slot_owner[j] == me;
                self.del_slot(j);
                self.add_slot(n, j);
                if slot_was_mine
                    && n != me
                    && self.myself().numslots == 0
                    && self.setup.config.cluster_allow_replica_migration
                {
                    self.set_master(n, out);
                    self.todo |= todo::SAVE_CONFIG | todo::UPDATE_STATE | todo::FSYNC_CONFIG;
                }
                if n == me && self.importing_slots_from.contains_key(&slot) {
                    // The slot was migrated by hand: a new config epoch,
                    // without agreement, so that the new owner wins.
                    self.bump_config_epoch_without_consensus();
                    self.importing_slots_from.remove(&slot);
                    self.broadcast_pong(BroadcastTarget::All, out);
                }
            }
        }
        self.todo |= todo::SAVE_CONFIG | todo::UPDATE_STATE;
        Ok("OK".into())
    }

    /// `CLUSTER ADDSLOTS` / `CLUSTER DELSLOTS`: every argument is parsed,
    /// then every slot checked, before any changes
    /// (`checkSlotAssignmentsOrReply`); then `clusterUpdateSlots` clears
    /// their importing state.
    pub(super) fn cluster_update_slots(
        &mut self,
        slots: &[u16],
        del: bool,
    ) -> Result<String, CommandError> {
        if slots.iter().any(|&s| usize::from(s) >= CLUSTER_SLOTS) {
            return Err("ERR Invalid or out of range slot".into());
        }
        let mut seen = SlotBitmap::default();
        for &s in slots {
            let s = usize::from(s);
            let owned = self.slot_owner[s] != NO_OWNER;
            if del && !owned {
                return Err(format!("ERR Slot {s} is already unassigned"));
            }
            if !del && owned {
                return Err(format!("ERR Slot {s} is already busy"));
            }
            if seen.get(s) {
                return Err(format!("ERR Slot {s} specified multiple times"));
            }
            seen.set(s);
        }
        if !self.importing_slots_from.is_empty() {
            for s in slots {
                self.importing_slots_from.remove(s);
            }
        }
        if del {
            for s in seen.iter() {
                self.del_slot(s);
            }
        } else {
            // `clusterAddSlot` for each, a word of the bitmap at a time:
            // every slot is free, so the order does not matter.
            let me = self.myself;
            for (w, &mask) in seen.0.iter().enumerate() {
                if mask != 0 {
                    self.move_slots(w, mask, me);
                }
            }
        }
        self.todo |= todo::SAVE_CONFIG | todo::UPDATE_STATE;
        Ok("OK".into())
    }

    /// `CLUSTER BUMPEPOCH`: `BUMPED <epoch>` or `STILL <epoch>`.
    pub(super) fn cluster_bumpepoch(&mut self) -> String {
        let bumped = self.bump_config_epoch_without_consensus();
        let word = if bumped { "BUMPED" } else { "STILL" };
        format!("{word} {}", self.myself().config_epoch)
    }

    /// `CLUSTER FORGET <id>`.
    pub(super) fn cluster_forget(
        &mut self,
        id: &NodeId,
        out: &mut Vec<Effect>,
    ) -> Result<String, CommandError> {
        let Some(n) = self.lookup(id) else {
            return Err(format!("ERR Unknown node {id}"));
        };
        if n == self.myself {
            return Err("ERR I tried hard but I can't forget myself...".into());
        }
        if self.myself().is_slave() && self.myself().slaveof == Some(n) {
            return Err("ERR Can't forget my master!".into());
        }
        // clusterBlacklistAddNode: clean up, then (re)arm the entry.
        let now = self.now_ms;
        self.blacklist.retain(|_, exp| *exp >= now);
        self.blacklist.insert(*id, now + BLACKLIST_TTL_MS);
        self.del_node(n, out);
        self.todo |= todo::UPDATE_STATE | todo::SAVE_CONFIG;
        Ok("OK".into())
    }

    /// My open slots as the `myself` line of `CLUSTER NODES` lists them:
    /// `(slot, node, migrating)`, in slot order (a slot both migrating and
    /// importing shows as migrating).
    pub fn open_slots(&self) -> Vec<(u16, NodeId, bool)> {
        let mut open: Vec<(u16, NodeId, bool)> = self
            .migrating_slots_to
            .iter()
            .map(|(&j, &n)| (j, self.n(n).name, true))
            .collect();
        open.extend(
            self.importing_slots_from
                .iter()
                .filter(|(j, _)| !self.migrating_slots_to.contains_key(j))
                .map(|(&j, &n)| (j, self.n(n).name, false)),
        );
        open.sort_unstable_by_key(|o| o.0);
        open
    }

    /// `CLUSTER COUNTKEYSINSLOT <slot>`.
    pub fn count_keys_in_slot(&self, slot: u16) -> usize {
        self.keyspace.count_keys_in_slot(slot)
    }

    /// `CLUSTER GETKEYSINSLOT <slot> <count>`.
    pub fn get_keys_in_slot(&mut self, slot: u16, count: usize) -> Vec<Vec<u8>> {
        self.slot_keys_cache
            .keys_in_slot(&self.keyspace, slot, count)
    }

    /// `MIGRATE host port "" 0 timeout [REPLACE] KEYS key...` up to the
    /// write to the target: the `RESTORE-ASKING` of each key that is here
    /// and not expired, with its TTL relative to now (at least 1 ms).
    /// `None` when no key is here (`+NOKEY`).
    pub fn migrate_prepare(&self, keys: &[Vec<u8>], replace: bool) -> Option<MigrateBatch> {
        let mut batch = MigrateBatch {
            keys: Vec::new(),
            restores: Vec::new(),
        };
        let mut found = false;
        for key in keys {
            let Some(e) = self.keyspace.peek(key).filter(|e| !e.expired(self.now_ms)) else {
                continue;
            };
            found = true;
            let ttl = match e.expire_at_ms {
                None => 0,
                Some(at) if at - self.now_ms < 0 => continue,
                Some(at) => (at - self.now_ms).max(1),
            };
            let mut argv = vec![
                b"RESTORE-ASKING".to_vec(),
                key.clone(),
                ttl.to_string().into_bytes(),
                dump_payload(&e.value),
            ];
            if replace {
                argv.push(b"REPLACE".to_vec());
            }
            batch.keys.push(key.clone());
            batch.restores.push(argv);
        }
        found.then_some(batch)
    }

    /// The rest of `MIGRATE` once the target's replies (one per
    /// `RESTORE-ASKING`, in order) are read at `now`: each key the target
    /// acknowledged is deleted here, and the deletions go to my replicas
    /// (and the AOF) as one `DEL`. The reply is `+OK`, or the first error of the target.
    pub fn migrate_finish(
        &mut self,
        now: crate::engine::SimTime,
        batch: &MigrateBatch,
        replies: &[Reply],
        out: &mut Vec<Effect>,
    ) -> Reply {
        self.set_now(now);
        let mut error = None;
        let mut del = Argv::from_slices(&[b"DEL"]);
        for (key, reply) in batch.keys.iter().zip(replies) {
            match reply {
                Reply::Error(e) => {
                    error.get_or_insert_with(|| {
                        format!("ERR Target instance replied with error: {e}")
                    });
                }
                _ => {
                    self.keyspace.remove(key);
                    del.push(key);
                }
            }
        }
        if del.len() > 1 {
            self.feed_commands(&[ReplCommand::new(del)], out);
        }
        self.before_sleep(out);
        match error {
            Some(e) => Reply::Error(e),
            None => Reply::Ok,
        }
    }
}

/// `restoreCommand` for `RESTORE-ASKING key ttl payload [REPLACE]
/// [ABSTTL]` on `keyspace` at `now_ms`: the reply and what it propagates
/// (the key as a `SET ... PXAT`, the absolute expiry Redis rewrites the
/// TTL to; a `DEL` when it replaced a key with an expired one).
pub fn restore(
    keyspace: &mut Keyspace,
    argv: &[&[u8]],
    now_ms: i64,
) -> (Reply, Vec<Rc<ReplCommand>>) {
    let err = |e: &str| (Reply::Error(e.into()), Vec::new());
    let (mut replace, mut absttl) = (false, false);
    for a in &argv[4..] {
        if a.eq_ignore_ascii_case(b"replace") {
            replace = true;
        } else if a.eq_ignore_ascii_case(b"absttl") {
            absttl = true;
        } else {
            return err("ERR syntax error");
        }
    }
    let key = argv[1];
    if !replace && keyspace.exists_at(key, now_ms) {
        return err("BUSYKEY Target key name already exists.");
    }
    let Some(mut ttl) = parse_i64(argv[2]) else {
        return err("ERR value is not an integer or out of range");
    };
    if ttl < 0 {
        return err("ERR Invalid TTL value, must be >= 0");
    }
    let value = match load_payload(argv[3]) {
        Ok(v) => v,
        Err(e) => return (Reply::Error(e), Vec::new()),
    };
    let deleted = replace && keyspace.remove(key);
    if ttl != 0 && !absttl {
        ttl += now_ms;
    }
    // checkAlreadyExpired (a master that is not loading).
    if ttl != 0 && ttl <= now_ms {
        let propagate = if deleted {
            vec![ReplCommand::from_slices(&[b"DEL", key])]
        } else {
            Vec::new()
        };
        return (Reply::Ok, propagate);
    }
    // A key found expired is replaced like a missing one.
    keyspace.remove(key);
    let mut set = Argv::from_slices(&[b"SET", key, &value]);
    if ttl != 0 {
        set.push(b"PXAT");
        set.push(ttl.to_string().as_bytes());
    }
    keyspace.insert(
        key,
        Entry {
            value: Value::encode(&value),
            expire_at_ms: (ttl != 0).then_some(ttl),
            // Set by `insert`, as for a new object.
            lru: 0,
        },
    );
    (Reply::Ok, vec![ReplCommand::new(set)])
}

#[cfg(test)]
mod tests {
    use super::super::config::Config;
    use super::super::render::ClusterCommand;
    use super::super::route::tests::{id, Sim};
    use super::super::route::ClientFlags;
    use super::super::serve::ClientReply;
    use super::*;
    use crate::engine::SimTime;

    const T: SimTime = 1_000_000_000;

    fn cmd(s: &mut Sim, c: ClusterCommand) -> Result<String, String> {
        s.node.command(T, c, &mut Vec::new())
    }

    fn setslot(s: &mut Sim, slot: u16, a: SetSlot) -> Result<String, String> {
        cmd(s, ClusterCommand::SetSlot(slot, a))
    }

    fn run(s: &mut Sim, line: &str, client: &mut ClientFlags) -> Reply {
        let argv: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        match s.node.client_command(T, &argv, client, &mut Vec::new()) {
            ClientReply::Done(e) => e.reply,
            other => panic!("{other:?}"),
        }
    }

    fn myself_line(s: &Sim) -> String {
        let nodes = s.node.cluster_nodes();
        nodes
            .lines()
            .find(|l| l.contains("myself"))
            .unwrap()
            .to_string()
    }

    #[test]
    fn setslot_errors_are_redis_texts() {
        let mut s = Sim::cluster(Config::default());
        // bar = 5061 (mine), foo = 12182 (B = 0x30).
        assert_eq!(
            setslot(&mut s, 12182, SetSlot::Migrating(id(0x20))),
            Err("ERR I'm not the owner of hash slot 12182".into())
        );
        assert_eq!(
            setslot(&mut s, 5061, SetSlot::Importing(id(0x20))),
            Err("ERR I'm already the owner of hash slot 5061".into())
        );
        assert_eq!(
            setslot(&mut s, 5061, SetSlot::Migrating(id(0x99))),
            Err(format!("ERR I don't know about node {}", id(0x99)))
        );
        assert_eq!(
            setslot(&mut s, 5061, SetSlot::Migrating(id(0x50))),
            Err("ERR Target node is not a master".into())
        );
        assert_eq!(
            setslot(&mut s, 5061, SetSlot::Node(id(0x99))),
            Err(format!("ERR Unknown node {}", id(0x99)))
        );
        assert_eq!(
            setslot(&mut s, 16384, SetSlot::Stable),
            Err("ERR Invalid or out of range slot".into())
        );
        run(&mut s, "SET bar 1", &mut ClientFlags::default());
        assert_eq!(
            setslot(&mut s, 5061, SetSlot::Node(id(0x20))),
            Err("ERR Can't assign hashslot 5061 to a different node while I still hold keys for this hash slot.".into())
        );
        let mut r = super::super::route::tests::replica_sim(Config::default());
        assert_eq!(
            setslot(&mut r, 5061, SetSlot::Stable),
            Err("ERR Please use SETSLOT only with masters.".into())
        );
    }

    #[test]
    fn open_slots_show_in_the_myself_line_and_route_ask() {
        let mut s = Sim::cluster(Config::default());
        setslot(&mut s, 5061, SetSlot::Migrating(id(0x20))).unwrap();
        setslot(&mut s, 12182, SetSlot::Importing(id(0x30))).unwrap();
        let line = myself_line(&s);
        assert!(
            line.ends_with(&format!(
                " 0-5460 [5061->-{}] [12182-<-{}]",
                id(0x20),
                id(0x30)
            )),
            "{line}"
        );
        // The other lines show no open slot.
        assert_eq!(s.node.cluster_nodes().matches('[').count(), 2);
        let mut c = ClientFlags::default();
        assert_eq!(
            run(&mut s, "GET bar", &mut c),
            Reply::Error("ASK 5061 10.0.0.32:6032".into())
        );
        // STABLE closes both kinds.
        setslot(&mut s, 5061, SetSlot::Stable).unwrap();
        setslot(&mut s, 12182, SetSlot::Stable).unwrap();
        assert!(!myself_line(&s).contains('['));
        assert_eq!(run(&mut s, "GET bar", &mut c), Reply::Nil);
    }

    #[test]
    fn restore_asking_is_served_by_the_importing_node_and_propagated() {
        let mut s = Sim::cluster(Config::default());
        let payload = dump_payload(&Value::Str(b"v1".to_vec()));
        let mut argv: Vec<&[u8]> = vec![b"RESTORE-ASKING", b"foo", b"5000", &payload];
        let mut c = ClientFlags::default();
        let run_argv = |s: &mut Sim, argv: &[&[u8]], c: &mut ClientFlags| match s
            .node
            .client_command(T, argv, c, &mut Vec::new())
        {
            ClientReply::Done(e) => e,
            other => panic!("{other:?}"),
        };
        // Not importing: B owns the slot.
        assert_eq!(
            run_argv(&mut s, &argv, &mut c).reply,
            Reply::Error("MOVED 12182 10.0.0.48:6048".into())
        );
        setslot(&mut s, 12182, SetSlot::Importing(id(0x30))).unwrap();
        // Served without ASKING (the command has the ASKING flag).
        let e = run_argv(&mut s, &argv, &mut c);
        assert_eq!(e.reply, Reply::Ok);
        let at = (super::super::mstime(T) + 5000).to_string();
        assert_eq!(
            crate::node::argv::argvs(&e.propagate),
            vec![vec![
                b"SET".to_vec(),
                b"foo".to_vec(),
                b"v1".to_vec(),
                b"PXAT".to_vec(),
                at.clone().into_bytes()
            ]]
        );
        let entry = s.node.keyspace.peek(b"foo").unwrap();
        assert_eq!(entry.expire_at_ms, Some(at.parse().unwrap()));
        // Already there: BUSYKEY unless REPLACE.
        assert_eq!(
            run_argv(&mut s, &argv, &mut c).reply,
            Reply::Error("BUSYKEY Target key name already exists.".into())
        );
        argv.push(b"REPLACE");
        assert_eq!(run_argv(&mut s, &argv, &mut c).reply, Reply::Ok);
        assert_eq!(
            run_argv(
                &mut s,
                &[b"RESTORE-ASKING", b"{foo}x", b"-1", &payload],
                &mut c
            )
            .reply,
            Reply::Error("ERR Invalid TTL value, must be >= 0".into())
        );
        assert_eq!(
            run_argv(&mut s, &[b"RESTORE-ASKING", b"{foo}x", b"0", b"xx"], &mut c).reply,
            Reply::Error("ERR DUMP payload version or checksum are wrong".into())
        );
    }

    #[test]
    fn migrate_moves_keys_with_their_ttl_and_deletes_the_acknowledged() {
        let mut s = Sim::cluster(Config::default());
        let mut c = ClientFlags::default();
        run(&mut s, "SET bar 1", &mut c);
        run(&mut s, "SET {bar}a xyz PX 3000", &mut c);
        run(&mut s, "SET hello 2", &mut c);
        assert_eq!(s.node.count_keys_in_slot(5061), 2);
        let keys = s.node.get_keys_in_slot(5061, 10);
        assert_eq!(keys, vec![b"bar".to_vec(), b"{bar}a".to_vec()]);
        assert_eq!(s.node.get_keys_in_slot(5061, 1).len(), 1);
        assert_eq!(s.node.migrate_prepare(&[b"nope".to_vec()], false), None);
        let batch = s.node.migrate_prepare(&keys, false).unwrap();
        assert_eq!(batch.keys, keys);
        assert_eq!(batch.restores[0][2], b"0");
        assert_eq!(batch.restores[1][2], b"3000");
        assert_eq!(
            batch.restores[1][3],
            dump_payload(&Value::Str(b"xyz".to_vec()))
        );
        assert!(batch.wire_len() > 60);
        // The target took the first key and refused the second.
        let replies = [
            Reply::Ok,
            Reply::Error("BUSYKEY Target key name already exists.".into()),
        ];
        let mut out = Vec::new();
        let reply = s.node.migrate_finish(T, &batch, &replies, &mut out);
        assert_eq!(
            reply,
            Reply::Error(
                "ERR Target instance replied with error: BUSYKEY Target key name already exists."
                    .into()
            )
        );
        assert!(s.node.keyspace.peek(b"bar").is_none());
        assert!(s.node.keyspace.peek(b"{bar}a").is_some());
        assert_eq!(s.node.count_keys_in_slot(5061), 1);
        let batch = s.node.migrate_prepare(&[b"{bar}a".to_vec()], true).unwrap();
        assert_eq!(batch.restores[0].last().unwrap(), b"REPLACE");
        assert_eq!(
            s.node.migrate_finish(T, &batch, &[Reply::Ok], &mut out),
            Reply::Ok
        );
        assert_eq!(s.node.count_keys_in_slot(5061), 0);
    }

    #[test]
    fn setslot_node_closes_an_import_with_a_new_config_epoch() {
        let mut s = Sim::cluster(Config::default());
        let me = s.node.myself;
        s.node.nm(me).config_epoch = 1;
        let b = s.idx(0x30);
        s.node.nm(b).config_epoch = 3;
        s.node.current_epoch = 3;
        setslot(&mut s, 12182, SetSlot::Importing(id(0x30))).unwrap();
        setslot(&mut s, 12182, SetSlot::Node(id(0x10))).unwrap();
        assert_eq!(s.node.slot_owner(12182).unwrap().name, id(0x10));
        assert_eq!(s.node.current_epoch, 4);
        assert_eq!(s.node.myself().config_epoch, 4);
        assert!(!myself_line(&s).contains('['));
        assert!(myself_line(&s).ends_with(" 4 connected 0-5460 12182"));
        // Already the greatest epoch: no bump for the next one.
        setslot(&mut s, 12183, SetSlot::Importing(id(0x30))).unwrap();
        setslot(&mut s, 12183, SetSlot::Node(id(0x10))).unwrap();
        assert_eq!(s.node.myself().config_epoch, 4);
        // Giving a slot away without keys: no bump, the migrating mark goes.
        setslot(&mut s, 100, SetSlot::Migrating(id(0x20))).unwrap();
        setslot(&mut s, 100, SetSlot::Node(id(0x20))).unwrap();
        assert_eq!(s.node.slot_owner(100).unwrap().name, id(0x20));
        assert!(!myself_line(&s).contains('['));
        assert_eq!(s.node.myself().config_epoch, 4);
    }

    #[test]
    fn a_master_giving_its_last_slot_away_becomes_a_replica() {
        let mut s = Sim::cluster(Config::default());
        let mine: Vec<u16> = (1..5461).collect();
        cmd(&mut s, ClusterCommand::DelSlots(mine)).unwrap();
        assert_eq!(s.node.myself().numslots, 1);
        setslot(&mut s, 0, SetSlot::Node(id(0x20))).unwrap();
        assert!(s.node.myself().is_slave());
        assert_eq!(s.node.master_id(), Some(id(0x20)));
    }

    #[test]
    fn addslots_delslots_forget() {
        let mut s = Sim::cluster(Config::default());
        assert_eq!(
            cmd(&mut s, ClusterCommand::DelSlots(vec![1, 2, 1])),
            Err("ERR Slot 1 specified multiple times".into())
        );
        cmd(&mut s, ClusterCommand::DelSlots(vec![1, 2])).unwrap();
        assert_eq!(
            cmd(&mut s, ClusterCommand::DelSlots(vec![2])),
            Err("ERR Slot 2 is already unassigned".into())
        );
        assert!(s.node.slot_owner(1).is_none());
        cmd(&mut s, ClusterCommand::AddSlots(vec![1])).unwrap();
        assert_eq!(s.node.slot_owner(1).unwrap().name, id(0x10));
        assert_eq!(
            cmd(&mut s, ClusterCommand::Forget(id(0x10))),
            Err("ERR I tried hard but I can't forget myself...".into())
        );
        assert_eq!(
            cmd(&mut s, ClusterCommand::Forget(id(0x99))),
            Err(format!("ERR Unknown node {}", id(0x99)))
        );
        cmd(&mut s, ClusterCommand::Forget(id(0x50))).unwrap();
        assert!(s.node.node_by_name(&id(0x50)).is_none());
        let mut r = super::super::route::tests::replica_sim(Config::default());
        assert_eq!(
            cmd(&mut r, ClusterCommand::Forget(id(0x10))),
            Err("ERR Can't forget my master!".into())
        );
        // A forgotten node is not added back from gossip for a minute.
        assert!(s.node.blacklist.contains_key(&id(0x50)));
    }
}
