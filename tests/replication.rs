//! Replication end to end: replicas sync when the cluster is created and
//! follow the stream, a promoted replica has the data, its sibling resyncs
//! partially, `repl-timeout` drops a partitioned link.

mod common;
use common::*;
use redsim::engine::SEC;
use redsim::node::Node;
use redsim::sim::Simulation;

fn node(sim: &Simulation, p: u32) -> &Node {
    sim.world.node(p).expect("running")
}

/// The replicas of `m` (process indices).
fn replicas_of(sim: &Simulation, m: u32) -> Vec<u32> {
    (0..sim.world.procs.len() as u32)
        .filter(|&p| sim.world.node(p).is_some() && master_of(sim, p) == Some(m))
        .collect()
}

#[test]
fn replicas_sync_at_creation_and_follow_the_stream() {
    let toml = format!(
        "{}[[workload]]\nclients = 2\nrate = 500\nkeys = 300\nread_ratio = 0\nstart = \"3s\"\nstop = \"20s\"\n",
        cluster_3x3(5000, "21s", "")
    );
    let sim = run(&toml, 2);
    for m in 0..3 {
        let master = node(&sim, m);
        let r = master.replication();
        // One full sync (the replica's PSYNC of its own history refused).
        assert_eq!(r.stats.sync_full, 1, "node-{}", m + 1);
        assert_eq!(r.stats.sync_partial_err, 1, "node-{}", m + 1);
        assert!(r.master_repl_offset() > 10_000);
        for p in replicas_of(&sim, m) {
            let replica = node(&sim, p);
            assert!(replica.replication().replica.master_link_up());
            // The writes stopped a second ago: all applied.
            assert_eq!(
                replica.replication().slave_repl_offset(),
                r.master_repl_offset(),
                "node-{}",
                p + 1
            );
            assert_eq!(replica.keyspace.len(), master.keyspace.len());
            assert!(!master.keyspace.is_empty());
            for i in 0..master.keyspace.len() {
                let (k, e) = master.keyspace.key_at(i).unwrap();
                assert_eq!(replica.keyspace.peek(k), Some(e));
            }
        }
    }
}

/// Two replicas per master: when node-1 dies the winner becomes master with
/// node-1's history as its `replid2`, and its sibling continues from where
/// it was (`+CONTINUE`, no second full sync).
#[test]
fn the_sibling_of_a_promoted_replica_resyncs_partially() {
    let toml = format!(
        "duration = \"30s\"\n[cluster]\nnodes = 9\nreplicas = 2\n[config]\ncluster-node-timeout = 5000\n\
         [[workload]]\nclients = 1\nrate = 200\nkeys = 100\nread_ratio = 0\nstart = \"3s\"\n{}",
        fault("15s", "kill", "node-1")
    );
    let sim = run(&toml, 4);
    let f = &sim.failovers()[0];
    assert_eq!(f.failed, 0);
    let promoted = f.promoted;
    let siblings: Vec<u32> = replicas_of(&sim, promoted);
    assert_eq!(siblings.len(), 1, "the sibling follows the winner");
    let r = node(&sim, promoted).replication();
    assert_eq!(r.stats.sync_full, 0, "no full sync after the promotion");
    assert_eq!(r.stats.sync_partial_ok, 1);
    assert!(r.second_replid_offset() > 0);
    let sibling = node(&sim, siblings[0]);
    assert!(sibling.replication().replica.master_link_up());
    assert_eq!(sibling.replication().replid(), r.replid());
    assert_eq!(sibling.keyspace.len(), node(&sim, promoted).keyspace.len());
    assert!(sim.client_totals().lost <= 1, "{:?}", sim.client_totals());
}

/// A replica that hears nothing from its master (a one-way rule): after
/// `repl-timeout` (60 s, whole seconds) it drops the link; after the heal
/// it reconnects and continues where it was (`+CONTINUE`).
#[test]
fn repl_timeout_drops_a_partitioned_link_and_the_replica_resyncs_partially() {
    let faults =
        "[[faults]]\nat = \"12s\"\naction = \"one-way\"\nfrom = [\"node-1\"]\nto = [\"node-5\"]\n\
                  [[faults]]\nat = \"80s\"\naction = \"heal\"\n";
    let toml = cluster_3x3(5000, "90s", faults);
    let mut sim = Simulation::new(scenario(&toml), 1).unwrap();
    sim.run_until(12 * SEC, &mut ());
    assert_eq!(master_of(&sim, 4), Some(0));
    assert!(node(&sim, 4).replication().replica.master_link_up());
    // Nothing from node-1 reaches node-5: its PINGs (every 10 s, the last
    // one before the cut at 2-12 s) wait on the wire.
    sim.run_until(62 * SEC, &mut ());
    assert!(node(&sim, 4).replication().replica.master_link_up());
    sim.run_until(75 * SEC, &mut ());
    let replica = &node(&sim, 4).replication().replica;
    assert!(!replica.master_link_up(), "MASTER timeout");
    let down = replica.repl_down_since_ms() - redsim::node::BASE_UNIX_MS;
    assert!((63_000..=74_000).contains(&down), "{down}");
    // node-5 cannot connect again (node-1's SYN-ACKs are blocked); after
    // the heal it does, and continues from its offset.
    sim.run(&mut ());
    let r = node(&sim, 4).replication();
    assert!(r.replica.master_link_up());
    let m = node(&sim, 0).replication();
    assert_eq!(m.stats.sync_full, 1);
    assert_eq!(m.stats.sync_partial_ok, 1);
    assert_eq!(r.slave_repl_offset(), m.master_repl_offset());
}
