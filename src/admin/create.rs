//! `redis-cli --cluster create`: which nodes become masters, which slots they
//! get, which master each replica follows, and what redis-cli prints about it.
//!
//! This follows `clusterManagerCommandCreate()` and
//! `clusterManagerOptimizeAntiAffinity()` in Redis 7.0.15's `src/redis-cli.c`:
//!
//! 1. `masters = nodes / (replicas + 1)`, at least 3.
//! 2. Nodes are grouped by IP (groups in order of first appearance, nodes in
//!    argument order inside a group) and interleaved round-robin across the
//!    groups; the first `masters` interleaved nodes are the masters, in that
//!    order (`Master[0]`, `Master[1]`, …).
//! 3. Slots: `per = 16384 / masters` in `float`; master `i` gets
//!    `first ..= lround(cursor + per - 1)` (the last master up to 16383), then
//!    `cursor += per`, all in single precision as redis-cli computes it.
//! 4. The other interleaved nodes are rotated left by one. For each master in
//!    order, up to `replicas` times: take the first remaining node on a
//!    different IP, else the first remaining node. If nodes remain, a second
//!    pass (`Adding extra replicas...`) gives at most one more to each master.
//!    A node left after that stays a master without slots.
//! 5. If the anti-affinity score is non-zero, up to `500 · nodes` times: pick a
//!    random offending replica and a random other replica, swap their masters,
//!    and undo the swap only if the score got worse; stop at score 0.
//!    redis-cli draws with `rand()` seeded from `time(NULL)`; here the draws
//!    come from the caller's [`Rng`], so the outcome is one redis-cli could
//!    produce, and the same seed always gives the same outcome. Each
//!    `rand() % n` is one `random_range(0..n)`; the optimiser draws two per
//!    iteration and nothing else in this module draws.
//!
//! Hosts are compared by IPv4 address (redis-cli compares the IP strings as
//! given; the two differ only for spellings such as `127.0.0.01`).
//!
//! The `Adding replica` lines show the plan of step 4; the final `S:` lines
//! show the masters after step 5.

use std::fmt::Write as _;

use rand::RngExt;

use crate::engine::Rng;
use crate::net::Addr;
use crate::node::slots::CLUSTER_SLOTS;

/// A master that received slots, in redis-cli's `Master[i]` order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasterPlan {
    /// Index of the node in the argument list.
    pub node: usize,
    /// Inclusive slot ranges (redis-cli gives each master one range).
    pub slots: Vec<(u16, u16)>,
}

impl MasterPlan {
    /// Number of slots this master owns.
    pub fn slot_count(&self) -> usize {
        self.slots
            .iter()
            .map(|&(a, b)| usize::from(b) - usize::from(a) + 1)
            .sum()
    }
}

/// How the anti-affinity step ended, i.e. which lines redis-cli printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AntiAffinity {
    /// The initial plan scored 0: the optimiser printed nothing.
    NotNeeded,
    /// `[OK] Perfect anti-affinity obtained!`
    Perfect,
    /// `[WARNING] Some slaves are in the same host as their master`
    SlavesWithTheirMaster,
    /// `[WARNING] Some slaves of the same master are in the same host`
    SlavesOfSameMasterTogether,
}

impl AntiAffinity {
    /// The line redis-cli printed after `>>> Trying to optimize slaves
    /// allocation for anti-affinity`, if it printed that step.
    pub fn verdict(self) -> Option<&'static str> {
        match self {
            AntiAffinity::NotNeeded => None,
            AntiAffinity::Perfect => Some("[OK] Perfect anti-affinity obtained!"),
            AntiAffinity::SlavesWithTheirMaster => {
                Some("[WARNING] Some slaves are in the same host as their master")
            }
            AntiAffinity::SlavesOfSameMasterTogether => {
                Some("[WARNING] Some slaves of the same master are in the same host")
            }
        }
    }
}

/// The outcome of `redis-cli --cluster create`'s allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocation {
    /// Number of nodes given.
    pub node_count: usize,
    /// The `--cluster-replicas` value.
    pub replicas: usize,
    /// Masters with slots, in `Master[i]` order.
    pub masters: Vec<MasterPlan>,
    /// For each node (argument order), the node index of the master it
    /// replicates after optimisation; `None` for masters.
    pub replica_of: Vec<Option<usize>>,
    /// The `Adding replica R to M` lines as `(replica, master)` node indices,
    /// in print order (the plan before optimisation).
    pub adding_replica: Vec<(usize, usize)>,
    /// If `Adding extra replicas...` was printed, the number of
    /// `adding_replica` lines printed before it.
    pub extra_replicas_at: Option<usize>,
    /// Whether the optimiser ran and how it ended.
    pub anti_affinity: AntiAffinity,
}

impl Allocation {
    /// The config epoch redis-cli gives node `node_index` with
    /// `CLUSTER SET-CONFIG-EPOCH`: 1..N in argument order, replicas included
    /// (a replica reports its master's config epoch once it has joined it).
    pub fn config_epoch(&self, node_index: usize) -> u64 {
        assert!(
            node_index < self.node_count,
            "config_epoch: node {node_index} out of {} nodes",
            self.node_count
        );
        node_index as u64 + 1
    }

    /// The master node `node_index` replicates, if it is a replica.
    pub fn master_of(&self, node_index: usize) -> Option<usize> {
        self.replica_of[node_index]
    }

    /// The slot ranges of node `node_index` (empty for replicas and for
    /// masters that got no slots).
    pub fn slots_of(&self, node_index: usize) -> &[(u16, u16)] {
        self.masters
            .iter()
            .find(|m| m.node == node_index)
            .map_or(&[][..], |m| &m.slots)
    }
}

/// The text redis-cli prints when there are too few nodes for 3 masters,
/// exactly (it ends with a newline).
fn too_few_masters(nodes: usize, replicas: usize) -> String {
    format!(
        "*** ERROR: Invalid configuration for cluster creation.\n\
         *** Redis Cluster requires at least 3 master nodes.\n\
         *** This is not possible with {nodes} nodes and {replicas} replicas per node.\n\
         *** At least {} nodes are required.\n",
        3 * (replicas + 1)
    )
}

/// Run redis-cli's allocation for `addrs` (argument order) and
/// `--cluster-replicas replicas`. `rng` is drawn from only where redis-cli
/// calls `rand()` (the anti-affinity optimiser).
///
/// Errors: fewer than 3 masters (redis-cli's exact text, ending in a
/// newline); and, as input validation of our own, a repeated address or more
/// masters than slots.
pub fn allocate(addrs: &[Addr], replicas: usize, rng: &mut Rng) -> Result<Allocation, String> {
    let node_count = addrs.len();
    let masters_count = node_count / (replicas + 1);
    if masters_count < 3 {
        return Err(too_few_masters(node_count, replicas));
    }
    if masters_count > CLUSTER_SLOTS {
        return Err(format!(
            "{masters_count} masters cannot share {CLUSTER_SLOTS} slots"
        ));
    }
    for (i, a) in addrs.iter().enumerate() {
        if addrs[..i].contains(a) {
            return Err(format!("address {a} is given more than once"));
        }
    }

    let hosts = HostGroups::new(addrs);

    // Round-robin across the IP groups.
    let mut interleaved = Vec::with_capacity(node_count);
    for round in 0.. {
        if interleaved.len() == node_count {
            break;
        }
        for group in &hosts.groups {
            if let Some(&n) = group.get(round) {
                interleaved.push(n);
            }
        }
    }
    let rest = interleaved.split_off(masters_count);
    let master_nodes = interleaved;

    let masters = split_slots(&master_nodes);

    // The remaining nodes, rotated left by one. A taken node becomes `None`;
    // `start` is where redis-cli's advanced array pointer now begins.
    let mut pool: Vec<Option<usize>> = rest.into_iter().map(Some).collect();
    if !pool.is_empty() {
        pool.rotate_left(1);
    }
    let mut start = 0;
    let mut available = pool.len();
    let mut replica_of = vec![None; node_count];
    let mut adding_replica = Vec::new();
    let mut extra_replicas_at = None;
    let mut assign_unused = false;
    loop {
        for &master in &master_nodes {
            let master_ip = addrs[master].ip;
            let mut assigned = 0;
            while assigned < replicas && available > 0 {
                let mut first_same_ip = None;
                let mut found = None;
                for (j, slot) in pool.iter_mut().enumerate().skip(start) {
                    let Some(n) = *slot else { continue };
                    if addrs[n].ip != master_ip {
                        found = Some(n);
                        *slot = None;
                        break;
                    }
                    first_same_ip.get_or_insert(j);
                }
                let replica = match (found, first_same_ip) {
                    (Some(n), _) => n,
                    (None, Some(j)) => {
                        start = j + 1;
                        pool[j].expect("first_same_ip points at a node")
                    }
                    (None, None) => break,
                };
                assigned += 1;
                available -= 1;
                replica_of[replica] = Some(master);
                adding_replica.push((replica, master));
                if assign_unused {
                    break;
                }
            }
        }
        if !assign_unused && available > 0 {
            assign_unused = true;
            extra_replicas_at = Some(adding_replica.len());
            continue;
        }
        break;
    }

    let anti_affinity = optimize_anti_affinity(&hosts, &mut replica_of, rng);

    Ok(Allocation {
        node_count,
        replicas,
        masters,
        replica_of,
        adding_replica,
        extra_replicas_at,
        anti_affinity,
    })
}

/// Split the 16384 slots among `master_nodes` as redis-cli does, with its
/// single-precision arithmetic and `lround`.
fn split_slots(master_nodes: &[usize]) -> Vec<MasterPlan> {
    let slots = CLUSTER_SLOTS as i64;
    let count = master_nodes.len();
    let per_node = CLUSTER_SLOTS as f32 / count as f32;
    let mut cursor = 0.0f32;
    let mut first: i64 = 0;
    let mut out = Vec::with_capacity(count);
    for (i, &node) in master_nodes.iter().enumerate() {
        // `lround` rounds half away from zero, as `f64::round` does.
        let mut last = f64::from(cursor + per_node - 1.0).round() as i64;
        if last > slots || i == count - 1 {
            last = slots - 1;
        }
        last = last.max(first);
        out.push(MasterPlan {
            node,
            slots: vec![(first as u16, last as u16)],
        });
        first = last + 1;
        cursor += per_node;
    }
    out
}

/// Nodes grouped by IP: groups in order of first appearance, nodes in
/// argument order (redis-cli's `ips` / `ip_nodes` arrays).
struct HostGroups {
    groups: Vec<Vec<usize>>,
}

impl HostGroups {
    fn new(addrs: &[Addr]) -> Self {
        let mut ips: Vec<[u8; 4]> = Vec::new();
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for (n, a) in addrs.iter().enumerate() {
            match ips.iter().position(|ip| *ip == a.ip) {
                Some(g) => groups[g].push(n),
                None => {
                    ips.push(a.ip);
                    groups.push(vec![n]);
                }
            }
        }
        HostGroups { groups }
    }
}

/// `clusterManagerGetAntiAffinityScore()`: per host, for each master with the
/// nodes of its replication group on that host: `10000 · k` if the master is
/// there with `k ≥ 1` of its replicas, else `k` if `k ≥ 2` of its replicas are
/// there. If `offenders` is given, it receives, per scoring group, the first
/// replica (argument order) of that master on that host.
///
/// redis-cli walks the groups of one host in `dict` order; we walk them in
/// order of first appearance. Only the order of `offenders` depends on this,
/// and it is only indexed by random numbers.
fn anti_affinity_score(
    hosts: &HostGroups,
    replica_of: &[Option<usize>],
    mut offenders: Option<&mut Vec<usize>>,
) -> u64 {
    let mut score = 0;
    // (master, master is on this host, replicas of it on this host)
    let mut related: Vec<(usize, bool, u64)> = Vec::new();
    for group in &hosts.groups {
        related.clear();
        for &n in group {
            let key = replica_of[n].unwrap_or(n);
            let entry = match related.iter().position(|r| r.0 == key) {
                Some(i) => &mut related[i],
                None => {
                    related.push((key, false, 0));
                    related.last_mut().expect("just pushed")
                }
            };
            if replica_of[n].is_some() {
                entry.2 += 1;
            } else {
                entry.1 = true;
            }
        }
        for &(master, has_master, replica_count) in &related {
            let len = u64::from(has_master) + replica_count;
            if len < 2 {
                continue;
            }
            score += if has_master { 10000 * (len - 1) } else { len };
            if let Some(out) = offenders.as_deref_mut() {
                // Group members are in argument order, so the first match
                // here is the first in redis-cli's node list.
                if let Some(&r) = group.iter().find(|&&r| replica_of[r] == Some(master)) {
                    out.push(r);
                }
            }
        }
    }
    score
}

/// `clusterManagerOptimizeAntiAffinity()`, drawing from `rng` where redis-cli
/// calls `rand()`.
fn optimize_anti_affinity(
    hosts: &HostGroups,
    replica_of: &mut [Option<usize>],
    rng: &mut Rng,
) -> AntiAffinity {
    if anti_affinity_score(hosts, replica_of, None) == 0 {
        return AntiAffinity::NotNeeded;
    }
    let mut offenders = Vec::new();
    let mut other_replicas = Vec::new();
    for _ in 0..500 * replica_of.len() {
        offenders.clear();
        let score = anti_affinity_score(hosts, replica_of, Some(&mut offenders));
        if score == 0 || offenders.is_empty() {
            break;
        }
        let first = offenders[rng.random_range(0..offenders.len())];
        other_replicas.clear();
        other_replicas
            .extend((0..replica_of.len()).filter(|&n| n != first && replica_of[n].is_some()));
        if other_replicas.is_empty() {
            break;
        }
        let second = other_replicas[rng.random_range(0..other_replicas.len())];
        replica_of.swap(first, second);
        // Keep the swap unless it makes things worse: the best plan may need
        // several combined swaps.
        if anti_affinity_score(hosts, replica_of, None) > score {
            replica_of.swap(first, second);
        }
    }
    match anti_affinity_score(hosts, replica_of, None) {
        0 => AntiAffinity::Perfect,
        s if s >= 10000 => AntiAffinity::SlavesWithTheirMaster,
        _ => AntiAffinity::SlavesOfSameMasterTogether,
    }
}

/// What redis-cli prints from `>>> Performing hash slots allocation on N
/// nodes...` through the last `M:`/`S:` block, before it asks to set the
/// configuration. `node_ids[i]` is the node ID of `addrs[i]`.
pub fn render_allocation(addrs: &[Addr], alloc: &Allocation, node_ids: &[String]) -> String {
    assert_eq!(addrs.len(), alloc.node_count, "render_allocation: addrs");
    assert_eq!(
        node_ids.len(),
        alloc.node_count,
        "render_allocation: node_ids"
    );
    let mut out = String::new();
    let _ = writeln!(
        out,
        ">>> Performing hash slots allocation on {} nodes...",
        alloc.node_count
    );
    for (i, m) in alloc.masters.iter().enumerate() {
        let (first, last) = m.slots[0];
        let _ = writeln!(out, "Master[{i}] -> Slots {first} - {last}");
    }
    for (k, &(replica, master)) in alloc.adding_replica.iter().enumerate() {
        if alloc.extra_replicas_at == Some(k) {
            out.push_str("Adding extra replicas...\n");
        }
        let _ = writeln!(
            out,
            "Adding replica {} to {}",
            addrs[replica], addrs[master]
        );
    }
    if alloc.extra_replicas_at == Some(alloc.adding_replica.len()) {
        out.push_str("Adding extra replicas...\n");
    }
    if let Some(verdict) = alloc.anti_affinity.verdict() {
        out.push_str(">>> Trying to optimize slaves allocation for anti-affinity\n");
        out.push_str(verdict);
        out.push('\n');
    }
    for (n, addr) in addrs.iter().enumerate() {
        let id = &node_ids[n];
        match alloc.replica_of[n] {
            Some(master) => {
                let _ = writeln!(out, "S: {id} {addr}\n   replicates {}", node_ids[master]);
            }
            None => {
                let slots = alloc.slots_of(n);
                let count: usize = slots.iter().map(|&(a, b)| usize::from(b - a) + 1).sum();
                let ranges: Vec<String> = slots
                    .iter()
                    .map(|&(a, b)| {
                        if a == b {
                            format!("[{a}]")
                        } else {
                            format!("[{a}-{b}]")
                        }
                    })
                    .collect();
                let _ = writeln!(
                    out,
                    "M: {id} {addr}\n   slots:{} ({count} slots) master",
                    ranges.join(",")
                );
            }
        }
    }
    out
}
#[cfg(test)]
mod tests {
    use super::*;

    /// redis-cli splits in `float`; with 78 masters single precision gives
    /// other boundaries than double would (14282/14283). The expected values
    /// come from the same arithmetic compiled with gcc (identical for every
    /// master count from 3 to 2000).
    #[test]
    fn split_uses_single_precision() {
        let nodes: Vec<usize> = (0..78).collect();
        let split = split_slots(&nodes);
        assert_eq!(split[67].slots, vec![(14073, 14283)]);
        assert_eq!(split[68].slots, vec![(14284, 14493)]);
        assert_eq!(split[77].slots[0].1, 16383);
        let total: usize = split.iter().map(MasterPlan::slot_count).sum();
        assert_eq!(total, CLUSTER_SLOTS);
    }
}
