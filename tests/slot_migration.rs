//! Slot migration and cluster administration: `redis-cli --cluster
//! reshard`, `add-node`, `del-node`, `rebalance`, `fix`, and what clients
//! see meanwhile (Redis 7.0.15 `src/cluster.c`, `src/redis-cli.c`).

mod common;

use std::path::Path;

use redsim::engine::SEC;
use redsim::node::slots::key_hash_slot;
use redsim::sim::Simulation;

fn run_file(path: &str) -> Simulation {
    let s = redsim::scenario::load(Path::new(path)).unwrap_or_else(|e| panic!("{e}"));
    let seed = s.seed;
    let mut sim = Simulation::new(s, seed).expect("runnable");
    sim.run(&mut ());
    sim
}

/// The process of `node-<n>`.
fn p(n: u32) -> u32 {
    n - 1
}

/// What redis-cli printed, without the times.
fn cli_lines(sim: &Simulation) -> Vec<&str> {
    sim.world
        .manager
        .log
        .iter()
        .map(|(_, l)| l.as_str())
        .collect()
}

/// The line of `CLUSTER NODES` (as `viewer` prints it) about `node`.
fn nodes_line(sim: &Simulation, viewer: u32, node: u32) -> String {
    let id = sim.world.node(node).unwrap().my_id().hex();
    let text = sim.world.node(viewer).unwrap().cluster_nodes();
    text.lines()
        .find(|l| l.starts_with(&id))
        .unwrap()
        .to_string()
}

/// Keys of `slot` in process `proc`'s keyspace.
fn keys_of_slot(sim: &Simulation, proc: u32, slot: u16) -> Vec<Vec<u8>> {
    let ks = &sim.world.node(proc).unwrap().keyspace;
    (0..ks.len())
        .filter_map(|i| ks.key_at(i))
        .filter(|(k, _)| key_hash_slot(k) == slot)
        .map(|(k, _)| k.to_vec())
        .collect()
}

#[test]
fn reshard_under_load_keeps_every_acknowledged_write_and_clients_see_ask_then_moved() {
    // scenarios/reshard.toml: node-7 (master) and node-8 (its replica)
    // join, then 1000 slots move from node-1 to node-7 from 20 s on under
    // 4000 requests/s, half of them on the slots that move.
    let sim = run_file("scenarios/reshard.toml");
    let t = sim.client_totals();
    assert!(t.writes.acknowledged > 50_000, "{:?}", t.writes);
    // Every acknowledged write is readable at the end (read from the
    // master most nodes see as the key's slot owner).
    assert_eq!(t.lost, 0);
    // A slot moves without downtime: no write failed.
    assert_eq!(t.writes.failed, 0, "{:?}", t.writes);
    let done = sim.world.manager.log.last().unwrap().0;
    assert_eq!(cli_lines(&sim).last(), Some(&"[OK] done"));
    assert!(sim.world.warnings.is_empty(), "{:?}", sim.world.warnings);

    // The clients met -ASK (a key already moved, its slot still open) and
    // -MOVED (the slot closed): every ASK from node-1 names node-7, for a
    // slot that moves, before the reshard was over; some slot was asked
    // about and then moved.
    let r = &sim.world.clients.redirections;
    let asks: Vec<_> = r.iter().filter(|r| r.ask).collect();
    assert!(!asks.is_empty());
    for a in &asks {
        assert_eq!((a.from, a.to), (p(1), Some(p(7))), "{a:?}");
        assert!(a.slot < 1000 && a.at > 20 * SEC && a.at < done, "{a:?}");
    }
    let moved_after_ask = asks.iter().any(|a| {
        r.iter()
            .any(|m| !m.ask && m.slot == a.slot && m.at > a.at && m.to == Some(p(7)))
    });
    assert!(moved_after_ask, "no slot was asked about then moved");
    for m in r
        .iter()
        .filter(|m| !m.ask && m.at > 20 * SEC && m.slot < 1000)
    {
        assert_eq!(m.to, Some(p(7)), "{m:?}");
    }

    // The keys moved: none left on node-1 (nor on its replica node-5), as
    // many on node-7 as on its replica node-8 (the RESTOREs replicated).
    for slot in 0..1000 {
        assert!(keys_of_slot(&sim, p(1), slot).is_empty(), "slot {slot}");
        assert!(keys_of_slot(&sim, p(5), slot).is_empty(), "slot {slot}");
        assert_eq!(
            keys_of_slot(&sim, p(7), slot).len(),
            keys_of_slot(&sim, p(8), slot).len(),
            "slot {slot}"
        );
    }

    // The final CLUSTER NODES: node-7 serves 0-999 with the greatest
    // config epoch (bumped when it closed its first import), node-1 keeps
    // 1000-5460 with its epoch of the creation; every node agrees.
    let epoch7 = sim.world.node(p(7)).unwrap().myself().config_epoch;
    let current = sim.world.node(p(2)).unwrap().current_epoch;
    assert_eq!(epoch7, current);
    for viewer in 0..8 {
        let l7 = nodes_line(&sim, viewer, p(7));
        assert!(
            l7.ends_with(&format!(" {epoch7} connected 0-999")),
            "{viewer}: {l7}"
        );
        let l1 = nodes_line(&sim, viewer, p(1));
        assert!(l1.ends_with(" 1 connected 1000-5460"), "{viewer}: {l1}");
        assert!(!sim
            .world
            .node(viewer)
            .unwrap()
            .cluster_nodes()
            .contains('['));
    }
}

/// A 3+3 cluster and node-7, empty, with 4 clients on the keys of slots
/// 0-99 (about 49 a slot), 2000 requests/s, half of them `SET`s, until
/// `stop`; then `faults`.
fn loaded_0_99(stop: &str, faults: &str) -> String {
    format!(
        r#"duration = "60s"
[cluster]
nodes = 6
replicas = 1
[config]
cluster-node-timeout = 5000
[[workload]]
clients = 4
rate = 2000
keys = 800000
read_ratio = 0.5
slots = "0-99"
start = "3s"
stop = "{stop}"
[[faults]]
at = "5s"
action = "add-node"
node = "node-7"
{faults}"#
    )
}

#[test]
fn killing_the_source_mid_migration_leaves_the_slot_open_until_fix() {
    let toml = loaded_0_99(
        "38s",
        r#"
[[faults]]
at = "15s"
action = "reshard"
slots = "0-99"
from = "node-1"
to = "node-7"
[[faults]]
at = "15203ms"
action = "kill"
node = "node-1"
[[faults]]
at = "35s"
action = "fix"
[[faults]]
at = "40s"
action = "fix"
with_unreachable_masters = true
replace = true
"#,
    );
    let mut sim = Simulation::new(common::scenario(&toml), 3).unwrap();

    // At 30 s: node-1 died while moving slot 28 to node-7 (10 of its keys
    // had moved); redis-cli stopped; node-5, node-1's replica, took over
    // node-1's slots (28 and up: it never had the open state, a replica
    // does not keep it).
    sim.run_until(30 * SEC, &mut ());
    assert!(sim.world.warnings[0].contains("reshard stopped at 15.203s"));
    let (n5, n7) = (sim.world.node(p(5)).unwrap(), sim.world.node(p(7)).unwrap());
    assert!(n5.is_master());
    assert_eq!(n5.slot_owner(28).unwrap().name, n5.my_id());
    assert_eq!(n7.slot_owner(27).unwrap().name, n7.my_id());
    // node-7 still imports slot 28 from the dead node-1, and so (as
    // Redis's clusterUpdateSlotsConfigWith skips importing slots) keeps
    // it bound to node-1: with a FAIL owner for a slot it reports the
    // cluster down and refuses even its own slots until the slot is fixed.
    let open = n7.open_slots();
    assert_eq!(open.len(), 1);
    assert_eq!((open[0].0, open[0].2), (28, false));
    assert_eq!(
        Some(open[0].1),
        sim.world
            .node(p(2))
            .unwrap()
            .known_nodes()
            .find(|n| n.failed())
            .map(|n| n.name)
    );
    assert!(!n7.state_ok());
    assert_eq!(n7.count_keys_in_slot(28), 10);
    assert_eq!(n5.count_keys_in_slot(28), 32);

    // Just before the second fix: the keys both nodes hold with
    // different values. node-7's copies are from before the kill; node-5
    // holds a key again only if a client wrote it after the failover (the
    // DEL of each migrated key reached node-5 before node-1 died), so its
    // copy is the newer, acknowledged one.
    sim.run_until(40 * SEC - 1, &mut ());
    let (n5, n7) = (sim.world.node(p(5)).unwrap(), sim.world.node(p(7)).unwrap());
    let k7 = keys_of_slot(&sim, p(7), 28);
    let differ: Vec<&Vec<u8>> = k7
        .iter()
        .filter(|k| matches!((n5.keyspace.peek(k), n7.keyspace.peek(k)), (Some(a), Some(b)) if a.value != b.value))
        .collect();
    let on_5 = n5.count_keys_in_slot(28);
    assert!(
        on_5 > k7.len(),
        "node-5 has the most keys: it is chosen as the owner"
    );
    let union = on_5 + k7.iter().filter(|k| n5.keyspace.peek(k).is_none()).count();

    sim.run(&mut ());
    // The first fix refused: node-1 is a known master redis-cli cannot
    // reach (as redis-cli 7.0.15 does without
    // --cluster-fix-with-unreachable-masters).
    assert!(
        sim.world.warnings[1].contains("Fixing open slots with 1 unreachable masters is dangerous")
    );
    assert_eq!(sim.world.warnings.len(), 2, "{:?}", sim.world.warnings);
    let lines = cli_lines(&sim);
    assert!(lines.contains(&">>> Fixing open slot 28"), "{lines:?}");
    assert_eq!(lines.last(), Some(&"[OK] done"));
    // The slot is closed everywhere, owned by node-5 with all its keys,
    // and the cluster is whole again.
    for q in (0..7).filter(|&q| q != p(1)) {
        let n = sim.world.node(q).unwrap();
        assert!(n.open_slots().is_empty(), "node-{}", q + 1);
        assert_eq!(
            n.slot_owner(28).unwrap().name,
            sim.world.node(p(5)).unwrap().my_id()
        );
        assert!(n.state_ok(), "node-{}", q + 1);
    }
    assert!(keys_of_slot(&sim, p(7), 28).is_empty());
    assert_eq!(keys_of_slot(&sim, p(5), 28).len(), union);

    // What was lost. Writes node-1 acknowledged reached node-5 before the
    // kill (replication takes a fraction of a millisecond here), so the
    // failover itself lost nothing. The fix did: it moved node-7's keys
    // to the chosen owner, node-5 (the node with the most keys of the
    // slot), and where both had a key, --cluster-replace let node-7's
    // older copy replace node-5's newer one: each such key's last
    // acknowledged write is gone (the clients stopped at 38 s, so nothing
    // wrote them again). Redis would lose exactly these: the same
    // redis-cli code picks the owner by key count and MIGRATEs with
    // REPLACE; without --cluster-replace it stops instead ("Found N
    // key(s) in both source node and target node having different
    // values"), and had node-7 held more keys, node-5's newer copies
    // would have replaced node-7's and nothing would be lost.
    let t = sim.client_totals();
    println!(
        "lost {} of {} acknowledged writes ({} failed, node-7 refusing its slots); {} key(s) differed before the fix",
        t.lost,
        t.writes.acknowledged,
        t.writes.failed,
        differ.len()
    );
    assert_eq!(t.lost, differ.len() as u64);
    assert!(!differ.is_empty());
}

/// The cluster of `tests/data/rebalance/` (four Redis 7.0.15 masters on
/// loopback, 127.0.0.1:7101 with every slot) and `faults`.
fn one_master_has_all(faults: &str) -> String {
    format!(
        r#"duration = "60s"
[cluster]
nodes_file = "tests/data/rebalance/one-master-has-all.cluster-nodes.txt"
[config]
cluster-node-timeout = 5000
{faults}"#
    )
}

#[test]
fn rebalance_plans_as_redis_cli_and_ends_as_the_real_run() {
    // Without --cluster-use-empty-masters the empty masters do not count.
    let sim = common::run(
        &one_master_has_all("[[faults]]\nat = \"1s\"\naction = \"rebalance\"\n"),
        1,
    );
    assert_eq!(
        cli_lines(&sim)[1],
        "*** No rebalancing needed! All nodes are within the 2.00% threshold."
    );
    let sim = common::run(
        &one_master_has_all(
            "[[faults]]\nat = \"1s\"\naction = \"rebalance\"\nuse_empty_masters = true\n",
        ),
        1,
    );
    assert_eq!(
        cli_lines(&sim)[1..5],
        [
            ">>> Rebalancing across 4 nodes. Total weight = 4.00",
            "Moving 4096 slots from 127.0.0.1:7101 to 127.0.0.1:7102",
            "Moving 4096 slots from 127.0.0.1:7101 to 127.0.0.1:7103",
            "Moving 4096 slots from 127.0.0.1:7101 to 127.0.0.1:7104",
        ]
    );
    // With a weight, the plan and the end state of the real run
    // (tests/data/rebalance/README.md): ranges in slot order, and each
    // target's config epoch bumped once, in turn, past the current epoch.
    let sim = common::run(
        &one_master_has_all(
            "[[faults]]\nat = \"1s\"\naction = \"rebalance\"\nuse_empty_masters = true\nweights = { \"node-2\" = 2 }\n",
        ),
        1,
    );
    assert_eq!(
        cli_lines(&sim)[1..],
        [
            ">>> Rebalancing across 4 nodes. Total weight = 5.00",
            "Moving 6554 slots from 127.0.0.1:7101 to 127.0.0.1:7102",
            "Moving 3277 slots from 127.0.0.1:7101 to 127.0.0.1:7103",
            "Moving 3277 slots from 127.0.0.1:7101 to 127.0.0.1:7104",
            "[OK] done",
        ]
    );
    for (node, tail) in [
        (1, " 3 connected 13108-16383"),
        (2, " 4 connected 0-6553"),
        (3, " 5 connected 6554-9830"),
        (4, " 6 connected 9831-13107"),
    ] {
        for viewer in 0..4 {
            let l = nodes_line(&sim, viewer, p(node));
            assert!(l.ends_with(tail), "node-{node} seen by {viewer}: {l}");
        }
    }
    assert!(common::all_running_and_ok(&sim));
}

#[test]
fn add_a_master_and_a_replica_reshard_then_delete_the_emptied_master() {
    let toml = common::cluster_3x3(
        5000,
        "60s",
        r#"
[[faults]]
at = "3s"
action = "add-node"
node = "node-7"
[[faults]]
at = "4s"
action = "add-node"
node = "node-8"
replica_of = "node-7"
[[faults]]
at = "8s"
action = "reshard"
slots = "0-5460"
from = "node-1"
to = "node-7"
[[faults]]
at = "9s"
action = "del-node"
node = "node-2"
[[faults]]
at = "40s"
action = "del-node"
node = "node-1"
[[expect]]
at = "end"
cluster_state = "ok"
"#,
    );
    let mut sim = Simulation::new(common::scenario(&toml), 1).unwrap();
    let results = sim.run(&mut ());
    assert!(results.iter().all(|r| r.ok == Some(true)), "{results:?}");
    // del-node of a master with slots is refused with redis-cli's message
    // (it waited for the reshard, which ran first).
    assert_eq!(sim.world.warnings.len(), 1, "{:?}", sim.world.warnings);
    assert!(sim.world.warnings[0]
        .ends_with("[ERR] Node 10.0.0.2:6379 is not empty! Reshard data away and try again."));
    // node-1, left without slots by the reshard, turned into a replica of
    // node-7 (SETSLOT NODE of its last slot); del-node made every node
    // forget it and stopped it.
    assert!(sim.world.node(p(1)).is_none());
    for q in (0..8).filter(|&q| q != p(1)) {
        let n = sim.world.node(q).unwrap();
        assert_eq!(n.known_nodes().count(), 7, "node-{}", q + 1);
        assert_eq!(
            n.slot_owner(0).unwrap().name,
            sim.world.node(p(7)).unwrap().my_id()
        );
    }
    assert_eq!(common::master_of(&sim, p(8)), Some(p(7)));
    for x in sim.world.procs.iter().filter_map(|x| x.node.as_ref()) {
        assert!(x.state_ok());
    }
}

#[test]
fn a_migrate_on_the_wire_when_the_source_dies_still_lands_on_the_target() {
    // node-7 is paused just as a MIGRATE of 10 keys of slot 14 is on its
    // way to it; node-1, the source, dies before node-7 reads it. What
    // node-1 wrote is delivered anyway (TCP sends it before the reset),
    // so node-7 restores the 10 keys; node-1 never deleted them, so
    // node-5, its replica and now the slot's owner, has them too, with the
    // same values. redis-cli's fix then meets BUSYKEY, compares the values
    // (DEBUG DIGEST-VALUE), finds them equal and migrates with REPLACE:
    // it needs no `replace`, and nothing is lost. (The clients stop
    // before, so that nothing writes the keys again on node-5.)
    let toml = loaded_0_99(
        "15100ms",
        r#"
[[faults]]
at = "15s"
action = "reshard"
slots = "0-99"
from = "node-1"
to = "node-7"
[[faults]]
at = "15101ms"
action = "pause"
node = "node-7"
[[faults]]
at = "15150ms"
action = "kill"
node = "node-1"
[[faults]]
at = "15200ms"
action = "resume"
node = "node-7"
[[faults]]
at = "30s"
action = "fix"
with_unreachable_masters = true
"#,
    );
    let mut sim = Simulation::new(common::scenario(&toml), 3).unwrap();
    sim.run_until(29 * SEC, &mut ());
    let (n5, n7) = (sim.world.node(p(5)).unwrap(), sim.world.node(p(7)).unwrap());
    assert!(n5.is_master());
    let open = n7.open_slots();
    assert_eq!((open.len(), open[0].0), (1, 14));
    let k7 = keys_of_slot(&sim, p(7), 14);
    assert_eq!(k7.len(), 10);
    for k in &k7 {
        assert_eq!(n5.keyspace.peek(k), n7.keyspace.peek(k), "{k:?}");
    }
    sim.run(&mut ());
    let lines = cli_lines(&sim);
    assert!(lines.contains(&"*** Replacing target keys..."), "{lines:?}");
    assert_eq!(lines.last(), Some(&"[OK] done"));
    for q in (0..7).filter(|&q| q != p(1)) {
        let n = sim.world.node(q).unwrap();
        assert!(n.open_slots().is_empty() && n.state_ok(), "node-{}", q + 1);
    }
    assert!(keys_of_slot(&sim, p(7), 14).is_empty());
    assert_eq!(sim.client_totals().lost, 0);
}
