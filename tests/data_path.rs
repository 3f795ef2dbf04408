//! The data-path figures of issue 4: a killed master loses the writes
//! acknowledged within the replication delay, none with `WAIT 1 0`; a
//! master cut off in a minority acknowledges writes for about the node
//! timeout, which a long partition loses and a short one does not;
//! `min-replicas-to-write` refuses writes (`-NOREPLICAS`); a full sync
//! whose output buffer overflows loops.

mod common;
use common::*;
use redsim::client::Outcome;
use redsim::engine::SEC;
use redsim::sim::Simulation;

/// 3+3, 20 clients writing 20 000 SETs/s to node-1's slots from 3 s until
/// node-1 is killed at 10 s (so no later write hides a lost one); `wait`
/// is the workload's `wait` line, if any.
fn killed_master_under_load(wait: &str) -> String {
    format!(
        "{}[[workload]]\nclients = 20\nrate = 20000\nkeys = 100000\nread_ratio = 0\n\
         slots = \"0-5460\"\nstart = \"3s\"\nstop = \"10s\"\n{wait}\n",
        cluster_3x3(5000, "25s", &fault("10s", "kill", "node-1"))
    )
}

#[test]
fn a_killed_master_loses_only_writes_acknowledged_within_the_replication_delay_and_none_with_wait()
{
    let mut lost_some = 0;
    for seed in 1..=5 {
        let sim = run(&killed_master_under_load(""), seed);
        assert_eq!(sim.failovers().len(), 1, "seed {seed}");
        let t = sim.client_totals();
        // Only what was acknowledged in the last round trip before the
        // kill: at 20 000 writes/s, a few.
        assert!(t.lost <= 20, "seed {seed}: {t:?}");
        lost_some += usize::from(t.lost > 0);

        let sim = run(
            &killed_master_under_load("wait = { replicas = 1, timeout = \"0ms\" }"),
            seed,
        );
        assert_eq!(sim.failovers().len(), 1, "seed {seed}");
        let t = sim.client_totals();
        assert!(t.writes.acknowledged > 50_000, "seed {seed}: {t:?}");
        assert_eq!(t.lost, 0, "seed {seed}: WAIT 1 0: {t:?}");
    }
    assert!(lost_some >= 3, "{lost_some} of 5 seeds lost writes");
}

/// `WAIT` makes a write's reply wait for a replica's ACK (the master asks
/// with `REPLCONF GETACK`): at least one more round trip to the replica.
#[test]
fn wait_delays_the_acknowledgement_by_the_replicas_round_trip() {
    let toml = |wait: &str| {
        format!(
            "{}[[workload]]\nclients = 1\nrate = 100\nkeys = 100\nread_ratio = 0\nstart = \"3s\"\n{wait}\n",
            cluster_3x3(5000, "15s", "")
        )
    };
    let latency = |sim: &Simulation| {
        let v: Vec<f64> = sim
            .world
            .clients
            .ops
            .iter()
            .filter(|o| o.sent > 10 * SEC && o.outcome == Outcome::Ok)
            .map(|o| (o.done - o.sent) as f64)
            .collect();
        median(v)
    };
    let plain = latency(&run(&toml(""), 1));
    let waited = latency(&run(&toml("wait = { replicas = 1 }"), 1));
    // 200 µs one way: 400 µs to the master, 400 µs more to a replica.
    assert!((390.0..500.0).contains(&plain), "{plain}");
    assert!(waited >= plain + 390.0, "{waited} vs {plain}");
    // Asking for more replicas than there are: the timeout decides.
    let sim = run(&toml("wait = { replicas = 2, timeout = \"50ms\" }"), 1);
    let v = latency(&sim);
    assert!((50_000.0..51_000.0).contains(&v), "{v}");
}
