//! Parse a `CLUSTER NODES` dump or a `nodes.conf` file (facts §2.3/§2.4):
//!
//! `<id> <ip>:<port>@<cport>[,<hostname>] <flags> <master-id|-> <ping_sent_ms>
//! <pong_recv_ms> <configEpoch> <connected|disconnected> <slot-ranges...>`
//!
//! with slot tokens `a-b`, `a`, `[slot->-<nodeid>]` (migrating) and
//! `[slot-<-<nodeid>]` (importing), an optional final
//! `vars currentEpoch <n> lastVoteEpoch <n>` line, and blank lines ignored.

use std::fmt;

use crate::net::Addr;

/// Number of hash slots.
const SLOTS: u32 = 16384;

/// The flag names `CLUSTER NODES` prints.
pub const FLAG_NAMES: [&str; 9] = [
    "myself",
    "master",
    "slave",
    "fail?",
    "fail",
    "handshake",
    "noaddr",
    "nofailover",
    "noflags",
];

/// One node line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeLine {
    /// 40 lowercase hex characters.
    pub id: String,
    /// None when Redis printed no ip (a node that has not learned its
    /// address yet, or a NOADDR node).
    pub ip: Option<[u8; 4]>,
    pub port: u16,
    /// Cluster bus port; port + 10000 when the `@cport` part is missing.
    pub cport: u32,
    pub hostname: Option<String>,
    /// Flag names in file order (`myself`, `master`, `slave`, `fail?` ...).
    pub flags: Vec<String>,
    /// `None` for `-`.
    pub master_id: Option<String>,
    pub ping_sent_ms: u64,
    pub pong_recv_ms: u64,
    pub config_epoch: u64,
    pub connected: bool,
    /// Inclusive slot ranges, in file order.
    pub slots: Vec<(u16, u16)>,
    /// `[slot->-<nodeid>]`: slot being migrated to that node.
    pub migrating: Vec<(u16, String)>,
    /// `[slot-<-<nodeid>]`: slot being imported from that node.
    pub importing: Vec<(u16, String)>,
}

impl NodeLine {
    /// Whether the line carries this flag.
    /// `ip:port`, when the line has an ip and a port.
    pub fn addr(&self) -> Option<Addr> {
        match (self.ip, self.port) {
            (Some(ip), port) if port != 0 => Some(Addr::new(ip, port)),
            _ => None,
        }
    }

    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
}

/// A whole dump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodesFile {
    pub nodes: Vec<NodeLine>,
    pub current_epoch: Option<u64>,
    pub last_vote_epoch: Option<u64>,
}

/// The `nodes.conf` of node `me` of a `CLUSTER NODES` dump: its line flagged
/// `myself`, the others not, ping/pong columns zero, and the current epoch
/// the greatest config epoch of the dump.
pub fn nodes_conf_from_dump(dump: &NodesFile, me: usize) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    for (i, l) in dump.nodes.iter().enumerate() {
        let mut flags: Vec<&str> = l
            .flags
            .iter()
            .map(String::as_str)
            .filter(|f| *f != "myself" && *f != "noflags")
            .collect();
        if i == me {
            flags.insert(0, "myself");
        }
        if flags.is_empty() {
            flags.push("noflags");
        }
        let ip =
            l.ip.map(|[a, b, c, d]| format!("{a}.{b}.{c}.{d}"))
                .unwrap_or_default();
        let _ = write!(
            s,
            "{} {ip}:{}@{} {} {} 0 0 {} connected",
            l.id,
            l.port,
            l.cport,
            flags.join(","),
            l.master_id.as_deref().unwrap_or("-"),
            l.config_epoch
        );
        super::render::write_slot_ranges(
            &mut s,
            l.slots
                .iter()
                .map(|&(a, b)| (usize::from(a), usize::from(b))),
        );
        s.push('\n');
    }
    let epoch = dump.nodes.iter().map(|l| l.config_epoch).max().unwrap_or(0);
    let _ = writeln!(
        s,
        "vars currentEpoch {} lastVoteEpoch 0",
        dump.current_epoch.unwrap_or(0).max(epoch)
    );
    s
}

/// A parse error with its 1-based line number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfFileError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ConfFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ConfFileError {}

/// `verifyClusterNodeId()`: exactly 40 characters in `[a-z0-9]`; redsim
/// additionally requires hex, as `getRandomHexChars` generates.
pub fn verify_node_id(id: &str) -> Result<(), String> {
    if id.len() != 40
        || !id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!(
            "expected a node id of 40 lowercase hex characters, got {id:?}"
        ));
    }
    Ok(())
}

fn parse_slot(s: &str) -> Result<u16, String> {
    match s.parse::<u32>() {
        Ok(n) if n < SLOTS => Ok(n as u16),
        _ => Err(format!("expected a slot number 0..16383, got {s:?}")),
    }
}

fn parse_u64(s: &str, what: &str) -> Result<u64, String> {
    s.parse::<u64>()
        .map_err(|_| format!("{what}: expected a non-negative integer, got {s:?}"))
}

fn parse_line(line: &str) -> Result<NodeLine, String> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 8 {
        return Err(format!(
            "expected at least 8 fields (<id> <ip:port@cport> <flags> <master> <ping-sent> <pong-recv> <config-epoch> <link-state>), got {}",
            f.len()
        ));
    }
    verify_node_id(f[0])?;
    // ip:port@cport[,hostname]
    let (addr_part, hostname) = match f[1].split_once(',') {
        Some((a, h)) => (
            a,
            if h.is_empty() {
                None
            } else {
                Some(h.to_string())
            },
        ),
        None => (f[1], None),
    };
    let (hostport, cport) = match addr_part.split_once('@') {
        Some((hp, c)) => {
            let c: u32 = c
                .parse()
                .ok()
                .filter(|c| (1..=65535).contains(c))
                .ok_or_else(|| format!("expected a bus port 1..65535 after '@', got {c:?}"))?;
            (hp, Some(c))
        }
        None => (addr_part, None),
    };
    // Redis prints an unknown address as ":port" (and a NOADDR node as ":0@0").
    let (ip, port) = match hostport.rsplit_once(':') {
        Some(("", p)) => {
            let port: u16 = p
                .parse()
                .map_err(|_| format!("address: expected a port after ':', got {p:?}"))?;
            (None, port)
        }
        _ => {
            let a = Addr::parse(hostport).map_err(|e| format!("address: {e}"))?;
            (Some(a.ip), a.port)
        }
    };
    let cport = cport.unwrap_or(u32::from(port) + 10000);
    let mut flags = Vec::new();
    for fl in f[2].split(',') {
        if !FLAG_NAMES.contains(&fl) {
            return Err(format!(
                "unknown flag {fl:?} (expected some of: {})",
                FLAG_NAMES.join(", ")
            ));
        }
        flags.push(fl.to_string());
    }
    let master_id = if f[3] == "-" {
        None
    } else {
        verify_node_id(f[3]).map_err(|e| format!("master id: {e}"))?;
        Some(f[3].to_string())
    };
    let ping_sent_ms = parse_u64(f[4], "ping-sent")?;
    let pong_recv_ms = parse_u64(f[5], "pong-recv")?;
    let config_epoch = parse_u64(f[6], "config-epoch")?;
    let connected = match f[7] {
        "connected" => true,
        "disconnected" => false,
        other => {
            return Err(format!(
                "expected \"connected\" or \"disconnected\", got {other:?}"
            ))
        }
    };
    let mut slots = Vec::new();
    let mut migrating = Vec::new();
    let mut importing = Vec::new();
    for tok in &f[8..] {
        if let Some(inner) = tok.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            let (slot, id, migr) = if let Some((s, id)) = inner.split_once("->-") {
                (s, id, true)
            } else if let Some((s, id)) = inner.split_once("-<-") {
                (s, id, false)
            } else {
                return Err(format!(
                    "expected an open slot \"[<slot>->-<nodeid>]\" or \"[<slot>-<-<nodeid>]\", got {tok:?}"
                ));
            };
            let slot = parse_slot(slot)?;
            verify_node_id(id)?;
            if migr {
                migrating.push((slot, id.to_string()));
            } else {
                importing.push((slot, id.to_string()));
            }
        } else if let Some((a, b)) = tok.split_once('-') {
            let (a, b) = (parse_slot(a)?, parse_slot(b)?);
            if a > b {
                return Err(format!("slot range {tok:?} has its start after its end"));
            }
            slots.push((a, b));
        } else {
            let s = parse_slot(tok)?;
            slots.push((s, s));
        }
    }
    Ok(NodeLine {
        id: f[0].to_string(),
        ip,
        port,
        cport,
        hostname,
        flags,
        master_id,
        ping_sent_ms,
        pong_recv_ms,
        config_epoch,
        connected,
        slots,
        migrating,
        importing,
    })
}

/// Parse a whole `CLUSTER NODES` dump or `nodes.conf`.
pub fn parse_nodes(text: &str) -> Result<NodesFile, ConfFileError> {
    let mut out = NodesFile {
        nodes: Vec::new(),
        current_epoch: None,
        last_vote_epoch: None,
    };
    let mut seen_vars = false;
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        let err = |message: String| ConfFileError {
            line: lineno,
            message,
        };
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        if seen_vars {
            return Err(err("nothing may follow the \"vars\" line".to_string()));
        }
        let words: Vec<&str> = trimmed.split_whitespace().collect();
        if words[0] == "vars" {
            seen_vars = true;
            if words.len() % 2 != 1 {
                return Err(err(
                    "expected \"vars currentEpoch <n> lastVoteEpoch <n>\" (name/value pairs)"
                        .to_string(),
                ));
            }
            for kv in words[1..].chunks(2) {
                let n = parse_u64(kv[1], kv[0]).map_err(err)?;
                match kv[0] {
                    "currentEpoch" => out.current_epoch = Some(n),
                    "lastVoteEpoch" => out.last_vote_epoch = Some(n),
                    other => {
                        return Err(err(format!(
                            "unknown variable {other:?} (expected currentEpoch or lastVoteEpoch)"
                        )))
                    }
                }
            }
            continue;
        }
        let node = parse_line(trimmed).map_err(err)?;
        if out.nodes.iter().any(|n| n.id == node.id) {
            return Err(err(format!("node id {} appears twice", node.id)));
        }
        out.nodes.push(node);
    }
    if out.nodes.is_empty() {
        return Err(ConfFileError {
            line: text.lines().count().max(1),
            message: "no node lines found".to_string(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(name: &str) -> String {
        let p = format!("{}/tests/data/create/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(p).unwrap()
    }

    #[test]
    fn parses_reference_dumps() {
        for name in [
            "a_6n_r1.cluster-nodes.txt",
            "b2_6n_3ips_r1_interleaved.cluster-nodes.txt",
            "d_3n_r0.cluster-nodes.txt",
        ] {
            let f = parse_nodes(&data(name)).unwrap();
            let masters: Vec<_> = f.nodes.iter().filter(|n| n.has_flag("master")).collect();
            assert_eq!(masters.len(), 3, "{name}");
            let mut slots: Vec<(u16, u16)> = masters.iter().flat_map(|m| m.slots.clone()).collect();
            slots.sort();
            assert_eq!(slots, vec![(0, 5460), (5461, 10922), (10923, 16383)]);
            assert_eq!(f.nodes.iter().filter(|n| n.has_flag("myself")).count(), 1);
        }
        let f = parse_nodes(&data("a_6n_r1.cluster-nodes.txt")).unwrap();
        let n = &f.nodes[0];
        assert_eq!(n.id, "08943add63e04343fba0e9ab8fdf3721cfb5f013");
        assert_eq!(n.addr(), Some(Addr::new([127, 0, 0, 1], 7006)));
        assert_eq!(n.cport, 17006);
        assert_eq!(n.flags, vec!["slave"]);
        assert_eq!(
            n.master_id.as_deref(),
            Some("a6bae1c97a199149454e93a6c0e18f4e8650de2a")
        );
        assert_eq!(n.pong_recv_ms, 1795311253533);
        assert_eq!(n.config_epoch, 2);
        assert!(n.connected);
        assert_eq!(f.current_epoch, None);
    }

    #[test]
    fn nodes_conf_with_vars_open_slots_hostname() {
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let text = format!(
            "{a} 10.0.0.1:6379,host-a myself,master - 0 0 3 connected 0-99 200 [5->-{b}] [7-<-{b}]\n\n\
             {b} 10.0.0.2:6380 slave,fail? {a} 1 2 3 disconnected\n\
             vars currentEpoch 5 lastVoteEpoch 4\n"
        );
        let f = parse_nodes(&text).unwrap();
        assert_eq!(f.nodes[0].hostname.as_deref(), Some("host-a"));
        assert_eq!(f.nodes[0].cport, 16379);
        assert_eq!(f.nodes[0].slots, vec![(0, 99), (200, 200)]);
        assert_eq!(f.nodes[0].migrating, vec![(5, b.clone())]);
        assert_eq!(f.nodes[0].importing, vec![(7, b.clone())]);
        assert_eq!(f.nodes[1].cport, 16380);
        assert!(!f.nodes[1].connected);
        assert_eq!(f.current_epoch, Some(5));
        assert_eq!(f.last_vote_epoch, Some(4));
    }

    #[test]
    fn malformed_lines() {
        let a = "a".repeat(40);
        let cases = [
            (
                "xyz 1.2.3.4:1@2 master - 0 0 0 connected",
                "expected a node id of 40 lowercase hex characters, got \"xyz\"",
            ),
            (
                &format!("{a} 1.2.3.4:1@2 master - 0 0"),
                "expected at least 8 fields",
            ),
            (
                &format!("{a} 1.2.3:1@2 master - 0 0 0 connected"),
                "address: expected \"ip:port\"",
            ),
            (
                &format!("{a} 1.2.3.4:1@2 master,bogus - 0 0 0 connected"),
                "unknown flag \"bogus\"",
            ),
            (
                &format!("{a} 1.2.3.4:1@2 master - 0 0 -1 connected"),
                "config-epoch: expected a non-negative integer, got \"-1\"",
            ),
            (
                &format!("{a} 1.2.3.4:1@2 master - 0 0 0 up"),
                "expected \"connected\" or \"disconnected\"",
            ),
            (
                &format!("{a} 1.2.3.4:1@2 master - 0 0 0 connected 16384"),
                "expected a slot number 0..16383, got \"16384\"",
            ),
            (
                &format!("{a} 1.2.3.4:1@2 master - 0 0 0 connected 5-3"),
                "has its start after its end",
            ),
            (
                &format!("{a} 1.2.3.4:1@2 master - 0 0 0 connected [5-x]"),
                "expected an open slot",
            ),
            (
                &format!("{a} 1.2.3.4:1@x master - 0 0 0 connected"),
                "expected a bus port",
            ),
            (
                &format!("{a} 1.2.3.4:1@2 slave XYZ 0 0 0 connected"),
                "master id: expected a node id",
            ),
            ("vars currentEpoch", "expected \"vars currentEpoch"),
            ("", "no node lines found"),
        ];
        for (text, want) in cases {
            let text = format!("\n{text}");
            let e = parse_nodes(&text).unwrap_err();
            assert!(
                e.message.starts_with(want) || e.message.contains(want),
                "{text}: {e}"
            );
            if !want.starts_with("no node") {
                assert_eq!(e.line, 2, "{text}");
            }
        }
        let dup = format!(
            "{a} 1.2.3.4:1@2 master - 0 0 0 connected\n{a} 1.2.3.4:2@2 master - 0 0 0 connected"
        );
        assert_eq!(
            parse_nodes(&dup).unwrap_err().to_string(),
            format!("line 2: node id {a} appears twice")
        );
    }
}
