//! Cluster bus messages (`clusterMsg` in `src/cluster.h`), as values rather
//! than bytes. Sizes are computed as Redis lays them out, so that the network
//! charges the right transfer time.

use std::fmt;
use std::rc::Rc;

/// A node ID: 40 lowercase hex characters in Redis, 20 bytes here. Ordering
/// of the bytes equals the ordering of the hex strings (`memcmp` in
/// `clusterHandleConfigEpochCollision`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NodeId(pub [u8; 20]);

impl NodeId {
    /// Parse 40 hex characters (as `verifyClusterNodeId` accepts them).
    pub fn parse(s: &str) -> Option<NodeId> {
        let b = s.as_bytes();
        if b.len() != 40 {
            return None;
        }
        let mut out = [0u8; 20];
        for (i, o) in out.iter_mut().enumerate() {
            let hi = (b[2 * i] as char).to_digit(16)?;
            let lo = (b[2 * i + 1] as char).to_digit(16)?;
            *o = (hi * 16 + lo) as u8;
        }
        Some(NodeId(out))
    }

    /// A random ID (`getRandomHexChars`), drawn from `rng`.
    pub fn random(rng: &mut impl rand::Rng) -> NodeId {
        let mut id = [0u8; 20];
        rng.fill_bytes(&mut id);
        NodeId(id)
    }

    pub fn write_hex(&self, s: &mut String) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 40];
        for (i, b) in self.0.into_iter().enumerate() {
            buf[2 * i] = HEX[usize::from(b >> 4)];
            buf[2 * i + 1] = HEX[usize::from(b & 15)];
        }
        s.push_str(std::str::from_utf8(&buf).expect("hex digits"));
    }

    pub fn hex(&self) -> String {
        let mut s = String::with_capacity(40);
        self.write_hex(&mut s);
        s
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &self.hex()[..8])
    }
}

/// Node flags, with Redis's bit values (`src/cluster.h`).
pub mod flags {
    pub const MASTER: u16 = 1;
    pub const SLAVE: u16 = 2;
    pub const PFAIL: u16 = 4;
    pub const FAIL: u16 = 8;
    pub const MYSELF: u16 = 16;
    pub const HANDSHAKE: u16 = 32;
    pub const NOADDR: u16 = 64;
    pub const MEET: u16 = 128;
    pub const MIGRATE_TO: u16 = 256;
    pub const NOFAILOVER: u16 = 512;
}

/// `mflags[0]` bits.
pub mod mflags {
    pub const PAUSED: u8 = 1;
    pub const FORCEACK: u8 = 2;
}

/// The 16384-bit slot bitmap of a header (`myslots`).
#[derive(Clone, PartialEq, Eq)]
pub struct SlotBitmap(pub [u64; 256]);

impl Default for SlotBitmap {
    fn default() -> Self {
        SlotBitmap([0; 256])
    }
}

thread_local! {
    static EMPTY_SLOTS: Rc<SlotBitmap> = Rc::new(SlotBitmap::default());
    /// Bitmaps handed out by [`SlotBitmap::shared`], by a hash of their
    /// words (for lookups only: nothing iterates it).
    static SHARED_SLOTS: std::cell::RefCell<rustc_hash::FxHashMap<u64, Vec<std::rc::Weak<SlotBitmap>>>> =
        Default::default();
}

impl SlotBitmap {
    /// The empty bitmap, shared: a node knows every other node's slots and
    /// most own none (replicas, handshakes), so each of those points here
    /// until it gets slots (copy on write) instead of holding 2 KiB of zeros.
    pub fn empty() -> Rc<SlotBitmap> {
        EMPTY_SLOTS.with(Rc::clone)
    }

    /// An equal bitmap already in use, or `bits` itself from now on: the
    /// nodes of a cluster loaded from `nodes.conf` files (a dump of 500
    /// masters) hold one copy of each master's slots, not one per node.
    pub fn shared(bits: Rc<SlotBitmap>) -> Rc<SlotBitmap> {
        use std::hash::{Hash, Hasher};
        let mut h = rustc_hash::FxHasher::default();
        bits.0.hash(&mut h);
        SHARED_SLOTS.with(|m| {
            let mut m = m.borrow_mut();
            let bucket = m.entry(h.finish()).or_default();
            bucket.retain(|w| w.strong_count() > 0);
            if let Some(same) = bucket
                .iter()
                .filter_map(|w| w.upgrade())
                .find(|s| **s == *bits)
            {
                return same;
            }
            bucket.push(Rc::downgrade(&bits));
            bits
        })
    }
}

impl fmt::Debug for SlotBitmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SlotBitmap({} slots)", self.count())
    }
}

impl SlotBitmap {
    #[inline]
    pub fn get(&self, slot: usize) -> bool {
        self.0[slot >> 6] & (1 << (slot & 63)) != 0
    }
    #[inline]
    pub fn set(&mut self, slot: usize) {
        self.0[slot >> 6] |= 1 << (slot & 63);
    }
    #[inline]
    pub fn clear(&mut self, slot: usize) {
        self.0[slot >> 6] &= !(1 << (slot & 63));
    }
    pub fn count(&self) -> u32 {
        self.0.iter().map(|w| w.count_ones()).sum()
    }
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&w| w == 0)
    }
    /// The runs of set slots as inclusive `(first, last)` ranges, in
    /// ascending order, found a word at a time.
    pub fn ranges(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let mut pos = 0;
        std::iter::from_fn(move || {
            let first = self.next_with(pos, false)?;
            let end = self.next_with(first, true).unwrap_or(self.0.len() * 64);
            pos = end;
            Some((first, end - 1))
        })
    }

    /// The first slot at or after `from` whose bit is set (`clear` false)
    /// or clear (`clear` true).
    fn next_with(&self, from: usize, clear: bool) -> Option<usize> {
        let flip = if clear { u64::MAX } else { 0 };
        let mut i = from >> 6;
        let mut w = (self.0.get(i)? ^ flip) & (u64::MAX << (from & 63));
        loop {
            if w != 0 {
                return Some(i * 64 + w.trailing_zeros() as usize);
            }
            i += 1;
            w = self.0.get(i)? ^ flip;
        }
    }

    /// The set slots in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(i, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let b = w.trailing_zeros() as usize;
                w &= w - 1;
                Some(i * 64 + b)
            })
        })
    }
}

/// Message types, numbered as `CLUSTERMSG_TYPE_*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MsgType {
    Ping = 0,
    Pong = 1,
    Meet = 2,
    Fail = 3,
    Publish = 4,
    FailoverAuthRequest = 5,
    FailoverAuthAck = 6,
    Update = 7,
    MfStart = 8,
    Module = 9,
    PublishShard = 10,
}

pub const MSG_TYPE_COUNT: usize = 11;

impl MsgType {
    /// The name used in `CLUSTER INFO` (`clusterGetMessageTypeString`).
    pub fn name(self) -> &'static str {
        match self {
            MsgType::Ping => "ping",
            MsgType::Pong => "pong",
            MsgType::Meet => "meet",
            MsgType::Fail => "fail",
            MsgType::Publish => "publish",
            MsgType::FailoverAuthRequest => "auth-req",
            MsgType::FailoverAuthAck => "auth-ack",
            MsgType::Update => "update",
            MsgType::MfStart => "mfstart",
            MsgType::Module => "module",
            MsgType::PublishShard => "publishshard",
        }
    }

    pub const ALL: [MsgType; MSG_TYPE_COUNT] = [
        MsgType::Ping,
        MsgType::Pong,
        MsgType::Meet,
        MsgType::Fail,
        MsgType::Publish,
        MsgType::FailoverAuthRequest,
        MsgType::FailoverAuthAck,
        MsgType::Update,
        MsgType::MfStart,
        MsgType::Module,
        MsgType::PublishShard,
    ];
}

/// One gossip entry (`clusterMsgDataGossip`, 104 bytes on the wire).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GossipEntry {
    pub name: NodeId,
    /// Seconds, as Redis truncates them (`ping_sent/1000`).
    pub ping_sent_s: u32,
    pub pong_received_s: u32,
    pub ip: Option<[u8; 4]>,
    pub port: u16,
    pub cport: u32,
    pub flags: u16,
}

/// What follows the header.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// AUTH_REQUEST, AUTH_ACK, MFSTART: header only.
    None,
    /// PING, PONG, MEET.
    Gossip(Vec<GossipEntry>),
    /// FAIL about a node.
    Fail { about: NodeId },
    /// UPDATE: the named node's config epoch and slots.
    Update {
        node: NodeId,
        config_epoch: u64,
        slots: Rc<SlotBitmap>,
    },
}

/// One cluster bus message: the header fields of `clusterMsg` and its body.
#[derive(Clone, Debug, PartialEq)]
pub struct BusMsg {
    pub typ: MsgType,
    pub sender: NodeId,
    pub current_epoch: u64,
    /// The sender's config epoch, or its master's if it is a replica.
    pub config_epoch: u64,
    /// Replication offset: a master's `master_repl_offset`, a replica's
    /// processed offset.
    pub offset: u64,
    /// The sender's slots, or its master's if it is a replica.
    pub myslots: Rc<SlotBitmap>,
    /// The sender's master, if it is a replica.
    pub slaveof: Option<NodeId>,
    /// `cluster-announce-ip`, if set; otherwise the receiver uses the
    /// connection's address.
    pub myip: Option<[u8; 4]>,
    pub port: u16,
    pub cport: u32,
    pub flags: u16,
    /// The sender's `cluster_state` is ok.
    pub state_ok: bool,
    pub mflags: u8,
    pub body: Body,
}

/// `sizeof(clusterMsg) - sizeof(union clusterMsgData)`.
pub const HEADER_BYTES: u64 = 2256;
pub const GOSSIP_ENTRY_BYTES: u64 = 104;

impl BusMsg {
    /// Bytes on the wire (`totlen`).
    pub fn wire_size(&self) -> u64 {
        HEADER_BYTES
            + match &self.body {
                Body::None => 0,
                Body::Gossip(g) => GOSSIP_ENTRY_BYTES * g.len() as u64,
                Body::Fail { .. } => 40,
                Body::Update { .. } => 8 + 40 + 2048,
            }
    }

    /// A digest of the message for the trace hash.
    pub fn digest(&self) -> u64 {
        let mut h = self.typ as u64;
        for (i, b) in self.sender.0[..8].iter().enumerate() {
            h ^= u64::from(*b) << (8 * i);
        }
        h ^ self.current_epoch.rotate_left(17)
            ^ self.config_epoch.rotate_left(33)
            ^ u64::from(self.flags).rotate_left(49)
            ^ match &self.body {
                Body::Gossip(g) => (g.len() as u64).rotate_left(56),
                _ => 0,
            }
    }
}
