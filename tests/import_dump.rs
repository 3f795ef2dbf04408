//! Importing a live cluster (`[cluster] nodes_file`): each `CLUSTER NODES`
//! dump captured from real Redis 7.0.15 (`tests/data/create/`, copied from
//! `../shared/reference/create/`) gives the same nodes, roles, replica-of
//! relations, slots and config epochs as the dump, on every node; the
//! imported cluster is `ok` and fails over a killed master.

mod common;

use common::{info_field, master_of, run, scenario};
use redsim::engine::MS;
use redsim::sim::Simulation;

const DUMPS: [&str; 3] = ["a_6n_r1", "b2_6n_3ips_r1_interleaved", "d_3n_r0"];

fn toml(dump: &str, duration: &str, faults: &str) -> String {
    format!(
        "duration = \"{duration}\"\n[cluster]\nnodes_file = \"tests/data/create/{dump}.cluster-nodes.txt\"\n[config]\ncluster-node-timeout = 5000\n{faults}"
    )
}

/// A `CLUSTER NODES` line without the fields that depend on the moment
/// (`ping_sent`, `pong_recv`, link state) and without `myself`: id,
/// address, flags, master, config epoch, slots.
fn stable_fields(line: &str) -> (String, Vec<String>) {
    let f: Vec<&str> = line.split(' ').collect();
    let flags: Vec<&str> = f[2].split(',').filter(|&x| x != "myself").collect();
    let mut kept = vec![
        f[1].to_string(),
        flags.join(","),
        f[3].to_string(),
        f[6].to_string(),
    ];
    kept.extend(f[8..].iter().map(|s| s.to_string()));
    (f[0].to_string(), kept)
}

fn sorted_view(text: &str) -> Vec<(String, Vec<String>)> {
    let mut v: Vec<_> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(stable_fields)
        .collect();
    v.sort();
    v
}

#[test]
fn every_node_sees_the_dump() {
    for dump in DUMPS {
        let text =
            std::fs::read_to_string(format!("tests/data/create/{dump}.cluster-nodes.txt")).unwrap();
        let want = sorted_view(&text);
        let mut sim = Simulation::new(scenario(&toml(dump, "1s", "")), 1).unwrap();
        sim.run_until(100 * MS, &mut ());
        for (i, line) in text.lines().enumerate() {
            let got = sim.cluster_nodes(i).unwrap();
            assert_eq!(sorted_view(&got), want, "{dump}: node-{}", i + 1);
            // Process i is the node of line i, and flags itself `myself`.
            let id = line.split(' ').next().unwrap();
            let mine = got.lines().find(|l| l.contains("myself")).unwrap();
            assert!(mine.starts_with(id), "{dump}: node-{}: {mine}", i + 1);
        }
    }
}

#[test]
fn config_epochs_and_roles_match_redis() {
    for dump in DUMPS {
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(format!("tests/data/create/{dump}.json")).unwrap(),
        )
        .unwrap();
        let sim = run(&toml(dump, "3s", ""), 1);
        let proc_at = |addr: &str| {
            (0..sim.world.procs.len())
                .find(|&i| sim.world.procs[i].addr.to_string() == addr)
                .unwrap()
        };
        for (addr, e) in json["epochs"].as_object().unwrap() {
            let info = sim.cluster_info(proc_at(addr)).unwrap();
            assert_eq!(
                info_field(&info, "cluster_my_epoch").unwrap(),
                e["my_epoch"].to_string(),
                "{dump}: {addr}"
            );
            assert_eq!(info_field(&info, "cluster_state").unwrap(), "ok", "{dump}");
        }
        for m in json["masters"].as_array().unwrap() {
            let p = proc_at(m["addr"].as_str().unwrap());
            assert_eq!(sim.role_of(p), "master", "{dump}");
            let nodes = sim.cluster_nodes(p).unwrap();
            let mine = nodes.lines().find(|l| l.contains("myself")).unwrap();
            let slots: Vec<&str> = mine.split(' ').skip(8).collect();
            let want: Vec<&str> = m["slots"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap())
                .collect();
            assert_eq!(slots, want, "{dump}: {mine}");
            assert_eq!(
                mine.split(' ').nth(6).unwrap(),
                m["config_epoch"].to_string()
            );
        }
        for r in json["replicas"].as_array().unwrap() {
            let p = proc_at(r["addr"].as_str().unwrap());
            let m = proc_at(r["master"].as_str().unwrap());
            assert_eq!(master_of(&sim, p as u32), Some(m as u32), "{dump}");
        }
    }
}

#[test]
fn an_imported_cluster_fails_over_a_killed_master() {
    for dump in ["a_6n_r1", "b2_6n_3ips_r1_interleaved"] {
        let text =
            std::fs::read_to_string(format!("tests/data/create/{dump}.cluster-nodes.txt")).unwrap();
        let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split(' ').collect()).collect();
        // The first master of the dump, and its replica.
        let master = lines.iter().position(|f| f[2].contains("master")).unwrap();
        let replica = lines.iter().position(|f| f[3] == lines[master][0]).unwrap();
        // The kill comes after the replica's first full sync (a replica
        // that never synced does not fail over).
        let kill = common::fault("12s", "kill", &format!("node-{}", master + 1));
        let sim = run(&toml(dump, "30s", &kill), 1);
        let f = sim.failovers();
        assert_eq!(f.len(), 1, "{dump}");
        assert_eq!(
            (f[0].failed, f[0].promoted),
            (master as u32, replica as u32),
            "{dump}"
        );
        for (i, p) in sim.world.procs.iter().enumerate() {
            if i != master {
                assert!(
                    p.node.as_ref().unwrap().state_ok(),
                    "{dump}: node-{}",
                    i + 1
                );
            }
        }
    }
}
