//! What clients see while the cluster changes: the reply a node gives to a
//! keyed command (`getNodeByQuery` / `clusterRedirectClient`) before a
//! master dies, while its slots are uncovered, after its replica took over;
//! and on a master cut off in a minority.

mod common;
use common::*;
use redsim::engine::{SimTime, SEC};
use redsim::node::route::{ClientFlags, Verdict};
use redsim::node::slots::key_hash_slot;
use redsim::sim::Simulation;

const KILL: &str = "[[faults]]\nat = \"10s\"\naction = \"kill\"\nnode = \"node-1\"\n";

/// The reply node `p` (process index) gives to `cmd` from a normal client,
/// no key existing.
fn query(sim: &Simulation, p: u32, cmd: &str) -> Verdict {
    let argv: Vec<&[u8]> = cmd.split(' ').map(str::as_bytes).collect();
    sim.world
        .node(p)
        .expect("node running")
        .process_command(&argv, ClientFlags::default(), &|_| false)
}

fn err(s: &str) -> Verdict {
    Verdict::Error(s.into())
}

/// Run a fresh simulation of `toml` with `seed` up to `t`.
fn at(toml: &str, seed: u64, t: SimTime) -> Simulation {
    let mut sim = Simulation::new(scenario(toml), seed).unwrap();
    sim.run_until(t, &mut ());
    sim
}

/// A key in node-2's slots (5461-10922).
fn key_of_node_2() -> String {
    (0..)
        .map(|i| format!("k{i}"))
        .find(|k| (5461..=10922).contains(&key_hash_slot(k.as_bytes())))
        .unwrap()
}

/// Masters node-1..3 hold 0-5460, 5461-10922, 10923-16383; node-5
/// replicates node-1. `bar` hashes to 5061 (node-1), `foo` to 12182
/// (node-3). node-1 is killed at 10 s; node-2 is asked about `bar`.
#[test]
fn killed_master_moved_then_clusterdown_then_moved_to_the_promoted_replica() {
    let toml = cluster_3x3(5000, "40s", KILL);
    let mine = key_of_node_2();
    for seed in 1..=4 {
        let full = run(&toml, seed);
        let fail = first_fail(&full, 1, 0).expect("node-2 sees node-1 FAIL");
        let promoted = full.failovers()[0].promoted_at;
        let changes = state_changes(&full, 1);
        let (down, _) = *changes
            .iter()
            .find(|&&(t, ok)| t > 10 * SEC && !ok)
            .expect("node-2 goes down");
        let (up, _) = *changes
            .iter()
            .find(|&&(t, ok)| t > down && ok)
            .expect("node-2 ok again");
        // Down when node-1 is FAIL (its slots uncovered), up once it
        // learns node-5 serves them.
        assert_eq!(down, fail, "seed {seed}");
        assert!(promoted < up, "seed {seed}");

        let sim = at(&toml, seed, 9 * SEC);
        assert_eq!(query(&sim, 1, "GET bar"), err("MOVED 5061 10.0.0.1:6379"));
        assert_eq!(
            query(&sim, 1, "SET foo 1"),
            err("MOVED 12182 10.0.0.3:6379")
        );
        assert_eq!(query(&sim, 1, &format!("GET {mine}")), Verdict::Execute);

        // Just before the FAIL: node-1 is dead but node-2 still redirects
        // there (PFAIL does not take a slot out of coverage).
        let sim = at(&toml, seed, down - 1);
        assert_eq!(query(&sim, 1, "GET bar"), err("MOVED 5061 10.0.0.1:6379"));

        // FAIL: the whole cluster is down for node-2, its own slots too.
        for t in [down, (down + up) / 2, up - 1] {
            let sim = at(&toml, seed, t);
            for cmd in ["GET bar", "GET foo", &format!("INCR {mine}")] {
                assert_eq!(
                    query(&sim, 1, cmd),
                    err("CLUSTERDOWN The cluster is down"),
                    "seed {seed} at {}: {cmd}",
                    secs(t)
                );
            }
            // The key check comes first.
            assert_eq!(
                query(&sim, 1, &format!("MGET bar {mine}")),
                err("CROSSSLOT Keys in request don't hash to the same slot")
            );
        }

        // The replica took over: MOVED to node-5.
        let sim = at(&toml, seed, up);
        assert_eq!(query(&sim, 1, "GET bar"), err("MOVED 5061 10.0.0.5:6379"));
        assert_eq!(query(&sim, 1, &format!("GET {mine}")), Verdict::Execute);
        assert_eq!(query(&sim, 4, "SET bar 1"), Verdict::Execute);
    }
}

/// With `cluster-allow-reads-when-down yes`, a surviving master keeps
/// serving reads of its own slots while the cluster is down, and refuses
/// writes with the read-only variant of CLUSTERDOWN.
#[test]
fn allow_reads_when_down_keeps_reads_going_on_survivors() {
    let toml = cluster_3x3_conf(5000, "40s", "cluster-allow-reads-when-down = \"yes\"", KILL);
    let mine = key_of_node_2();
    let full = run(&toml, 2);
    let fail = first_fail(&full, 1, 0).unwrap();
    let sim = at(&toml, 2, fail);
    assert!(!sim.world.node(1).unwrap().state_ok());
    assert_eq!(query(&sim, 1, &format!("GET {mine}")), Verdict::Execute);
    assert_eq!(
        query(&sim, 1, &format!("SET {mine} 1")),
        err("CLUSTERDOWN The cluster is down and only accepts read commands")
    );
    // A read of the failed master's slot is still redirected to it.
    assert_eq!(query(&sim, 1, "GET bar"), err("MOVED 5061 10.0.0.1:6379"));
}

/// node-1 is isolated from 10 s to 30 s and its replica may not fail over
/// (`cluster-replica-no-failover yes`). About a node timeout after the cut
/// it finds itself in the minority and answers CLUSTERDOWN for its own
/// slots; after the heal it stays down for the rejoin delay (5 s), then
/// serves again.
#[test]
fn isolated_master_answers_clusterdown_until_the_rejoin_delay_after_heal() {
    let faults = "[[faults]]\nat = \"10s\"\naction = \"isolate\"\nnode = \"node-1\"\n[[faults]]\nat = \"30s\"\naction = \"heal\"\n";
    let toml = cluster_3x3_conf(5000, "50s", "cluster-replica-no-failover = \"yes\"", faults);
    for seed in 1..=3 {
        let full = run(&toml, seed);
        let changes = state_changes(&full, 0);
        let (down, _) = *changes
            .iter()
            .find(|&&(t, ok)| t > 10 * SEC && !ok)
            .expect("node-1 goes down");
        let (up, _) = *changes
            .iter()
            .find(|&&(t, ok)| t > down && ok)
            .expect("node-1 ok again");
        assert!(
            (15 * SEC..=17_700_000).contains(&down),
            "seed {seed}: down at {}",
            secs(down)
        );
        assert!(up >= 35 * SEC, "seed {seed}: up at {}", secs(up));

        let before = at(&toml, seed, down - 1);
        assert_eq!(query(&before, 0, "SET bar 1"), Verdict::Execute);
        for t in [down, 29 * SEC, 32 * SEC, up - 1] {
            let sim = at(&toml, seed, t);
            assert_eq!(
                query(&sim, 0, "SET bar 1"),
                err("CLUSTERDOWN The cluster is down"),
                "seed {seed} at {}",
                secs(t)
            );
            assert_eq!(
                query(&sim, 0, "GET bar"),
                err("CLUSTERDOWN The cluster is down")
            );
        }
        let sim = at(&toml, seed, up);
        assert_eq!(query(&sim, 0, "SET bar 1"), Verdict::Execute);
        assert_eq!(query(&sim, 0, "GET foo"), err("MOVED 12182 10.0.0.3:6379"));
    }
}
