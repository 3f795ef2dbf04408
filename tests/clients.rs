//! Client populations end to end: requests served from the nodes'
//! keyspaces, what clients see when a master dies, is paused, is cut off
//! or hands over in a manual failover, and how the summary counts it.

mod common;
use common::*;
use redsim::client::keys::NO_VALUE;
use redsim::client::{Cmd, OpRecord, Outcome};
use redsim::engine::{SimTime, MS, SEC};
use redsim::sim::Simulation;
use redsim::world::HistoryKind;

/// A 3+3 cluster, node timeout 5 s, with `workload` (the lines of one
/// `[[workload]]` table) and `faults`.
fn with_clients(duration: &str, workload: &str, faults: &str) -> String {
    cluster_3x3(
        5000,
        duration,
        &format!("[[workload]]\n{workload}\n{faults}"),
    )
}

fn created(sim: &Simulation) -> SimTime {
    sim.world
        .history
        .iter()
        .find(|h| h.kind == HistoryKind::Created)
        .expect("created")
        .at
}

/// The requests of the workload (the library's CLUSTER SLOTS left out).
fn requests(sim: &Simulation) -> impl Iterator<Item = &OpRecord> {
    sim.world
        .clients
        .ops
        .iter()
        .filter(|r| r.cmd != Cmd::ClusterSlots)
}

fn error_text(sim: &Simulation, r: &OpRecord) -> String {
    sim.world
        .clients
        .errors
        .text(r.error)
        .unwrap_or_default()
        .to_string()
}

/// node-1's slots when the cluster is created (shard 1).
fn node_1_slot(slot: u16) -> bool {
    slot <= 5460
}

#[test]
fn without_faults_every_request_succeeds_and_reads_see_the_last_write() {
    let toml = with_clients(
        "15s",
        "clients = 4\nrate = 400\nkeys = 200\nstart = \"3s\"",
        "",
    );
    let sim = run(&toml, 3);
    let t = sim.client_totals();
    // 400/s for 12 s.
    assert!((4700..=4800).contains(&t.ops.sent), "{t:?}");
    assert_eq!((t.ops.errors, t.ops.timeouts), (0, 0), "{t:?}");
    assert_eq!(t.ops.ok, t.ops.sent);
    assert_eq!(t.lost, 0);
    assert_eq!(t.unavailable, [0, 0, 0]);
    assert!(requests(&sim).all(|r| r.redirects == 0));
    // Each GET reads the value of a SET of its key that was acknowledged
    // before the GET was sent, or was in flight then, and no SET of the key
    // was acknowledged between that one's sending and the GET's.
    let sets: Vec<&OpRecord> = requests(&sim).filter(|r| r.cmd == Cmd::Set).collect();
    let mut reads = 0;
    for g in requests(&sim).filter(|r| r.cmd == Cmd::Get) {
        let newer = |after: SimTime| {
            sets.iter()
                .any(|s| s.key == g.key && s.sent > after && s.done < g.sent)
        };
        if g.value == NO_VALUE {
            assert!(!newer(0), "a GET missed an acknowledged SET: {g:?}");
            continue;
        }
        reads += 1;
        let w = sets
            .iter()
            .find(|s| s.value == g.value)
            .expect("the value was written by a SET");
        assert_eq!(w.key, g.key);
        assert!(w.sent < g.done);
        assert!(
            !newer(w.done),
            "a GET read an overwritten value: {g:?} {w:?}"
        );
    }
    assert!(reads > 1000, "{reads}");
    // The values are in the masters' keyspaces, and in their replicas',
    // each synced once (a full sync at creation) and streamed since.
    let keys: usize = (0..3)
        .map(|p| sim.world.node(p).unwrap().keyspace.len())
        .sum();
    assert_eq!(keys, 200);
    for p in 3..6 {
        let m = master_of(&sim, p).unwrap();
        let (master, replica) = (sim.world.node(m).unwrap(), sim.world.node(p).unwrap());
        assert_eq!(replica.keyspace.len(), master.keyspace.len(), "node {p}");
        assert_eq!(master.replication().stats.sync_full, 1);
        assert!(replica.replication().replica.master_link_up());
    }
}

#[test]
fn clients_started_before_the_cluster_get_clusterdown_and_retry() {
    let toml = with_clients("8s", "clients = 2\nrate = 100", "");
    let sim = run(&toml, 1);
    let created = created(&sim);
    let failed: Vec<&OpRecord> = requests(&sim).filter(|r| !r.outcome.is_ok()).collect();
    assert!(!failed.is_empty());
    for r in &failed {
        assert!(r.sent < created + 500 * MS, "{r:?}");
        assert!(error_text(&sim, r).starts_with("CLUSTERDOWN "), "{r:?}");
    }
    // Every failed request was retried every retry_after (100 ms), and
    // after the creation the requests succeed.
    let t = sim.client_totals();
    assert!(t.ops.ok > 500, "{t:?}");
    assert!(requests(&sim).any(|r| r.outcome.is_ok() && r.sent < created + 300 * MS));
    // Unavailability is counted from the creation on.
    assert!(t.unavailable.iter().all(|&u| u < 300 * MS), "{t:?}");
}

#[test]
fn a_killed_master_s_shard_is_down_until_the_promotion_and_keeps_its_writes() {
    let kill = "[[faults]]\nat = \"10s\"\naction = \"kill\"\nnode = \"node-1\"\n";
    let toml = with_clients(
        "20s",
        "clients = 1\nrate = 200\nkeys = 5000\nread_ratio = 0.3\nstart = \"3s\"",
        kill,
    );
    let sim = run(&toml, 5);
    let promoted = sim.failovers()[0].promoted_at;
    assert!(promoted > 15 * SEC, "{promoted}");
    let writes: Vec<&OpRecord> = requests(&sim).filter(|r| r.cmd == Cmd::Set).collect();
    // Writes to node-1's slots fail from the kill to the promotion (the
    // connection refused, then CLUSTERDOWN once the others see it FAIL)...
    let during: Vec<&&OpRecord> = writes
        .iter()
        .filter(|r| node_1_slot(r.slot) && r.sent >= 10 * SEC && r.done <= promoted)
        .collect();
    assert!(!during.is_empty());
    for r in &during {
        assert!(
            matches!(r.outcome, Outcome::Refused | Outcome::Reset)
                || error_text(&sim, r).starts_with("CLUSTERDOWN"),
            "{r:?} {}",
            error_text(&sim, r)
        );
    }
    // ... and succeed on the promoted replica soon after.
    let node_5 = 4;
    let back = writes
        .iter()
        .find(|r| node_1_slot(r.slot) && r.sent > promoted && r.outcome.is_ok())
        .expect("writes succeed again");
    assert_eq!(u32::from(back.node), node_5);
    assert!(back.done < promoted + 500 * MS, "{back:?}");
    let t = sim.client_totals();
    let down = t.unavailable[0];
    assert!(
        down >= promoted - 10 * SEC && down < promoted - 10 * SEC + 500 * MS,
        "{down} vs {promoted}"
    );
    assert!(
        t.unavailable[1] < 700 * MS && t.unavailable[2] < 700 * MS,
        "{t:?}"
    );
    // node-5 had the stream up to the kill: only writes whose stream was
    // still on the wire then (executed in the last round trip before it)
    // can be lost, so at most the keys last written by a request sent in
    // the last 5 ms before the kill, and none if there were none.
    let kill = 10 * SEC;
    let mut in_flight = std::collections::BTreeSet::new();
    for w in writes.iter().filter(|r| r.outcome.is_ok()) {
        let last = writes
            .iter()
            .filter(|x| x.key == w.key && x.outcome.is_ok())
            .max_by_key(|x| x.done)
            .unwrap();
        if node_1_slot(w.slot) && last.sent + 5 * MS >= kill && last.sent < kill {
            in_flight.insert(w.key);
        }
    }
    assert!(t.lost <= in_flight.len() as u64, "{t:?} {in_flight:?}");
    assert!(t.writes.acknowledged > 1000, "{t:?}");
    assert_eq!(
        t.writes.failed,
        writes.iter().filter(|r| !r.outcome.is_ok()).count() as u64
    );
}

#[test]
fn a_paused_master_answers_after_it_resumes() {
    let faults = "[[faults]]\nat = \"10s\"\naction = \"pause\"\nnode = \"node-1\"\n\
                  [[faults]]\nat = \"12s\"\naction = \"resume\"\nnode = \"node-1\"\n";
    let toml = with_clients(
        "16s",
        "clients = 2\nrate = 100\nstart = \"3s\"\ntimeout = \"5s\"",
        faults,
    );
    let sim = run(&toml, 2);
    let late: Vec<&OpRecord> = requests(&sim)
        .filter(|r| r.sent > 10 * SEC && r.sent < 12 * SEC && r.node == 0)
        .collect();
    assert!(!late.is_empty());
    for r in &late {
        assert!(r.outcome.is_ok(), "{r:?}");
        assert!(r.done > 12 * SEC && r.done < 12 * SEC + 5 * MS, "{r:?}");
    }
    let t = sim.client_totals();
    assert_eq!((t.ops.errors, t.ops.timeouts, t.lost), (0, 0, 0), "{t:?}");
}

#[test]
fn requests_to_an_unreachable_master_time_out() {
    for fault in [
        "action = \"crash-host\"\nhost = \"host-1\"",
        "action = \"isolate\"\nnode = \"node-1\"",
    ] {
        let faults = format!("[[faults]]\nat = \"10s\"\n{fault}\n");
        let toml = with_clients(
            "14s",
            "clients = 2\nrate = 100\nstart = \"3s\"\ntimeout = \"500ms\"",
            &faults,
        );
        let sim = run(&toml, 4);
        let to_node_1: Vec<&OpRecord> = requests(&sim)
            .filter(|r| r.sent > 10 * SEC + MS && r.node == 0)
            .collect();
        assert!(!to_node_1.is_empty(), "{fault}");
        for r in &to_node_1 {
            assert_eq!(r.outcome, Outcome::Timeout, "{fault}: {r:?}");
            assert_eq!(r.done - r.sent, 500 * MS);
        }
        // The other masters serve their slots all along.
        assert!(requests(&sim).any(|r| r.sent > 10 * SEC && r.node != 0 && r.outcome.is_ok()));
    }
}

#[test]
fn writes_paused_by_a_manual_failover_end_up_on_the_new_master() {
    let faults = "[[faults]]\nat = \"10s\"\naction = \"failover\"\nnode = \"node-5\"\n";
    let toml = with_clients(
        "11s",
        "clients = 16\nrate = 16000\nkeys = 100\nread_ratio = 0\nstart = \"9s\"",
        faults,
    );
    let sim = run(&toml, 6);
    let f = &sim.failovers()[0];
    assert_eq!((f.failed, f.promoted), (0, 4));
    // Writes sent to node-1 while it paused them waited, then followed
    // MOVED to node-5.
    let waited: Vec<&OpRecord> = requests(&sim)
        .filter(|r| r.sent > 10 * SEC && r.sent < f.promoted_at && node_1_slot(r.slot))
        .collect();
    assert!(!waited.is_empty());
    for r in &waited {
        assert!(r.outcome.is_ok(), "{r:?}");
        assert_eq!((r.node, r.redirects), (4, 1), "{r:?}");
        assert!(r.done > f.promoted_at, "{r:?}");
    }
    let t = sim.client_totals();
    assert_eq!((t.ops.errors, t.ops.timeouts), (0, 0), "{t:?}");
}

#[test]
fn zipf_keys_and_slot_filters_shape_the_load() {
    let toml = with_clients(
        "8s",
        "clients = 2\nrate = 500\nkeys = 1000\ndistribution = \"zipf:1.2\"\nslots = \"10923-16383\"\nstart = \"3s\"",
        "",
    );
    let sim = run(&toml, 8);
    let mut counts = std::collections::BTreeMap::<u32, u32>::new();
    for r in requests(&sim) {
        assert!(r.slot >= 10923, "{r:?}");
        assert_eq!(r.node, 2);
        *counts.entry(r.key).or_default() += 1;
    }
    let mut by_count: Vec<u32> = counts.values().copied().collect();
    by_count.sort_unstable_by(|a, b| b.cmp(a));
    // The most popular key gets a good share of the requests.
    let total: u32 = by_count.iter().sum();
    assert!(by_count[0] * 5 > total, "{by_count:?}");
}

#[test]
fn ttl_writes_expire_and_are_not_counted_lost() {
    let toml = with_clients(
        "10s",
        "clients = 1\nrate = 100\nkeys = 50\nread_ratio = 0\nttl = \"1s\"\nstart = \"3s\"\nstop = \"5s\"",
        "",
    );
    let sim = run(&toml, 1);
    // Active expiry deleted every key on the masters, and their DELs did
    // on the replicas; only the masters count them as expired.
    for p in 0..6 {
        let n = sim.world.node(p).unwrap();
        assert_eq!(n.keyspace.len(), 0, "node-{}", p + 1);
        assert_eq!(n.keyspace.stats.expired_keys > 0, n.is_master());
    }
    let t = sim.client_totals();
    assert_eq!(t.lost, 0);
    assert!(t.writes.acknowledged > 150);
}

/// Replicas are listed by CLUSTER SLOTS once they have a replication
/// offset: once synced, with their master's first `PING` into the stream
/// (every 10 s) processed. A `read_from_replicas` population then reads
/// from them, `READONLY` first on each connection.
#[test]
fn read_from_replicas_reads_from_the_replicas_listed() {
    let toml = with_clients(
        "25s",
        "clients = 2\nrate = 200\nread_ratio = 1\nread_from_replicas = true\nstart = \"22s\"",
        "",
    );
    let mut sim = Simulation::new(scenario(&toml), 3).unwrap();
    sim.run_until(22 * SEC, &mut ());
    for p in 3..6 {
        let r = sim.world.node(p).unwrap().replication();
        assert!(r.replica.master_link_up(), "node {p} synced");
        assert!(r.slave_repl_offset() > 0, "node {p} has an offset");
    }
    sim.run(&mut ());
    let reads: Vec<&OpRecord> = requests(&sim).collect();
    assert!(reads.len() > 500);
    for r in &reads {
        assert!((3..6).contains(&r.node), "{r:?}");
        assert_eq!((r.outcome, r.redirects), (Outcome::Nil, 0), "{r:?}");
    }
}
