//! Automatic failover end to end, against real Redis 7.0.15
//! (`tests/data/failover-T5000.json`, a copy of the shared reference: 3 masters + 3 replicas on
//! loopback, cluster-node-timeout 5000; times from the fault to the replica
//! reporting itself master).

mod common;
use common::*;
use redsim::engine::SEC;
use redsim::sim::FailoverKind;

const SEEDS: std::ops::RangeInclusive<u64> = 1..=50;

/// Runs `faults` on a 3+3 cluster (T = 5000) for each seed and returns the
/// times (s) from the fault at 15 s (the replicas synced with their
/// masters, as before the real trials) to node-5 taking over node-1's slots,
/// checking on every seed that exactly that failover happened with the
/// epochs real Redis shows (new config epoch 7, current epoch 7 everywhere).
fn failover_times(faults: &str) -> Vec<f64> {
    let toml = cluster_3x3(5000, "35s", faults);
    SEEDS
        .map(|seed| {
            let sim = run(&toml, seed);
            let f = sim.failovers();
            assert_eq!(f.len(), 1, "seed {seed}: {f:?}");
            let f = &f[0];
            assert_eq!((f.failed, f.promoted), (0, 4), "seed {seed}");
            assert_eq!(f.kind, FailoverKind::Automatic);
            assert_eq!(f.config_epoch, 7, "seed {seed}");
            assert_eq!(f.died, Some(15 * SEC));
            let fail = f.fail.expect("FAIL before the election");
            assert!(fail < f.promoted_at, "seed {seed}");
            // The election waits 500..1000 ms after FAIL (rank 0), plus the
            // cron tick that sees it and the votes' round trip.
            let wait = f.promoted_at - fail;
            assert!(
                (500_000..1_300_000).contains(&wait),
                "seed {seed}: promoted {} after FAIL",
                secs(wait)
            );
            for p in 1..6 {
                let n = sim.world.node(p).unwrap();
                assert_eq!(n.current_epoch, 7, "seed {seed}: node-{}", p + 1);
                assert!(n.state_ok(), "seed {seed}: node-{}", p + 1);
            }
            assert!(sim.world.node(4).unwrap().is_master());
            secs(f.promoted_at - 15 * SEC)
        })
        .collect()
}

/// kill -9 of a master: real median 8.28 s over 10 trials (7.41–8.69 s).
#[test]
fn killed_master_is_replaced_in_real_redis_time() {
    let t = failover_times("[[faults]]\nat = \"15s\"\naction = \"kill\"\nnode = \"node-1\"\n");
    let m = median(t.clone());
    eprintln!("kill, T=5000: median kill -> promotion {m:.3} s (real 8.28)");
    assert!((m - 8.28).abs() / 8.28 < 0.10, "median {m}");
    // Every trial lies in what the mechanism allows: PFAIL after T (+ up to
    // the ping period), FAIL within the reports' gossip, then the election.
    assert!(t.iter().all(|&x| (6.0..10.5).contains(&x)), "{t:?}");
}

/// SIGSTOP of a master: real median 7.60 s over 3 trials (6.90–8.26 s).
#[test]
fn paused_master_is_replaced_in_real_redis_time() {
    let t = failover_times(
        "[[faults]]\nat = \"15s\"\naction = \"pause\"\nnode = \"node-1\"\n[[faults]]\nat = \"34s\"\naction = \"resume\"\nnode = \"node-1\"\n",
    );
    let m = median(t.clone());
    eprintln!("pause, T=5000: median pause -> promotion {m:.3} s (real 7.60)");
    assert!((m - 7.60).abs() / 7.60 < 0.10, "median {m}");
    assert!(t.iter().all(|&x| (6.0..10.5).contains(&x)), "{t:?}");
}

fn expect_failover_time(config: &str, bound: &str) -> redsim::sim::ExpectResult {
    let toml = cluster_3x3_conf(
        5000,
        "40s",
        config,
        &format!("[[faults]]\nat = \"10s\"\naction = \"kill\"\nnode = \"node-1\"\n[[expect]]\nmax_failover_time = \"{bound}\"\n"),
    );
    let mut sim = redsim::sim::Simulation::new(scenario(&toml), 3).unwrap();
    let mut r = sim.run(&mut ());
    assert_eq!(r.len(), 2, "{r:?}: max_failover_time, then the invariants");
    r.remove(0)
}

/// `max_failover_time`: from the kill to the replica's promotion.
#[test]
fn max_failover_time_is_checked() {
    let r = expect_failover_time("", "10s");
    assert_eq!(r.ok, Some(true), "{r:?}");
    assert_eq!(r.text, "max_failover_time = 10.000s at end");
    let r = expect_failover_time("", "5s");
    assert_eq!(r.ok, Some(false));
    let reason = r.reason.unwrap();
    assert!(reason.starts_with("node-1 was replaced after "), "{reason}");
    // No replica may take over: node-1 stays down until the end (30 s).
    let r = expect_failover_time("cluster-replica-no-failover = \"yes\"", "20s");
    assert_eq!(r.ok, Some(false));
    assert_eq!(
        r.reason.as_deref(),
        Some("node-1 has had no replacement for 30.000s")
    );
}
