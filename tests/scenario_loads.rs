//! Every whole example of scenario-format.md (and a few more) loads, and the
//! same tree in TOML and JSON gives the same `Scenario`.

use std::path::{Path, PathBuf};

use redsim::engine::{MS, SEC};
use redsim::net::{Addr, Endpoint, LatencySpec};
use redsim::node::config::MaxmemoryPolicy;
use redsim::scenario::{self, FaultAction, Mode, Role};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/scenarios")
        .join(name)
}

fn load(name: &str) -> scenario::Scenario {
    scenario::load(&data(name)).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_bundled_scenario_loads() {
    for e in std::fs::read_dir(data("")).unwrap() {
        let p = e.unwrap().path();
        if matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("toml" | "json")
        ) {
            scenario::load(&p).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

#[test]
fn doc_example() {
    let s = load("doc_example.toml");
    assert_eq!(s.name, "master crash");
    assert_eq!(s.seed, 7);
    assert_eq!(s.duration, 60 * SEC);
    assert_eq!(s.nodes.len(), 6);
    assert_eq!(s.nodes[0].addr, Addr::new([10, 0, 0, 1], 6379));
    assert_eq!(s.nodes[5].addr, Addr::new([10, 0, 0, 6], 6379));
    assert_eq!(s.config.cluster_node_timeout_ms, 5000);
    assert!(s.config.cluster_enabled);
    assert_eq!(s.workloads[0].clients, 4);
    assert_eq!(s.faults[0].action, FaultAction::Kill { node: 0 });
    assert_eq!(s.expects[0].at, None);
    assert_eq!(s.expects[0].max_unavailable, Some(8 * SEC));
    assert_eq!(s.expects[1].at, Some(5 * SEC));
    assert_eq!(s.expects[1].role.get(&0), Some(&Role::Master));
}

#[test]
fn doc_fragments() {
    let s = load("doc_sentinel.toml");
    assert_eq!(s.cluster.mode, Mode::Sentinel);
    assert_eq!(s.nodes.len(), 3);
    let sp = s.sentinel.unwrap();
    assert_eq!(
        (
            sp.quorum,
            sp.down_after_ms,
            sp.failover_timeout_ms,
            sp.parallel_syncs
        ),
        (2, 5000, 10000, 1)
    );
    assert_eq!(sp.sentinels.len(), 3);
    assert_eq!(sp.sentinels[0].host, 3);
    let s = load("doc_config.toml");
    assert_eq!(s.config.repl_backlog_size_bytes, 1 << 20);
    assert_eq!(s.config.maxmemory_bytes, 100 << 20);
    assert_eq!(s.config.maxmemory_policy, MaxmemoryPolicy::AllkeysLru);
    assert!(s.config.appendonly);
}

#[test]
fn toml_and_json_agree() {
    let t = load("full.toml");
    let mut j = load("full.json");
    assert_ne!(t.source, j.source);
    j.source = t.source.clone();
    assert_eq!(t, j);
}

#[test]
fn full_scenario_resolves() {
    let s = load("full.toml");
    assert_eq!(s.nodes.len(), 7);
    assert!(!s.nodes[6].in_create);
    assert_eq!(s.cluster.create_count, 6);
    // 3 hosts round-robin: node-7 is the third node on host 1.
    assert_eq!(s.nodes[6].addr, Addr::new([10, 0, 0, 1], 6381));
    assert_eq!(s.nodes[3].addr, Addr::new([10, 0, 0, 1], 6380));
    assert_eq!(s.nodes[3].host, 0);
    assert_eq!(s.nodes[3].config.maxmemory_bytes, 1 << 30);
    assert!(s.nodes[6].config.appendonly);
    assert_eq!(s.nodes[0].config.maxmemory_bytes, 100 << 20);
    assert_eq!(s.config.cluster_replica_validity_factor, 0);
    assert!(matches!(
        s.network.latency,
        LatencySpec::Normal {
            mean: 1000,
            jitter: 200
        }
    ));
    assert_eq!(s.network.bandwidth_bps, 100_000_000);
    let w = &s.workloads[0];
    assert_eq!(w.timeout, 500 * MS);
    assert_eq!(w.value_size_bytes, 1024);
    assert_eq!(w.slots, Some(vec![(0, 99), (200, 200)]));
    assert!(s.workloads[1]
        .trace
        .as_ref()
        .unwrap()
        .ends_with("ops.trace"));
    // Faults are sorted by time: kill at 10s comes first.
    assert_eq!(s.faults[0].action, FaultAction::Kill { node: 0 });
    let FaultAction::Partition { groups } = &s.faults[1].action else {
        panic!()
    };
    // host-2 holds node-2 and node-5.
    assert_eq!(
        groups[0],
        vec![Endpoint::Node(0), Endpoint::Node(1), Endpoint::Node(4)]
    );
    assert_eq!(
        groups[1],
        vec![
            Endpoint::Node(2),
            Endpoint::Node(3),
            Endpoint::Node(5),
            Endpoint::Node(6),
            Endpoint::Clients(0),
            Endpoint::Clients(1)
        ]
    );
    assert!(s.faults.iter().any(|f| f.action
        == FaultAction::ConfigSet {
            node: None,
            directive: "replica-read-only".into(),
            value: redsim::node::config::ConfigValue::Str("no".into())
        }));
    assert!(s
        .faults
        .iter()
        .any(|f| f.action == FaultAction::CrashHost { host: 2 }));
}

#[test]
fn nodes_file_and_addresses() {
    let s = load("from_dump.toml");
    assert_eq!(s.nodes.len(), 7);
    assert_eq!(s.nodes[0].addr, Addr::new([127, 0, 0, 12], 7001));
    assert_eq!(s.nodes[2].host, 1);
    assert_eq!(s.cluster.hosts, 3);
    assert_eq!(s.nodes[6].addr, Addr::new([127, 0, 0, 12], 7003));
    assert_eq!(s.cluster.nodes_file.as_ref().unwrap().nodes.len(), 6);
    let s = load("addresses.toml");
    assert_eq!(s.cluster.hosts, 3);
    assert_eq!(
        s.nodes.iter().map(|n| n.host).collect::<Vec<_>>(),
        vec![0, 1, 0, 1, 2, 2]
    );
    let s = load("standalone.toml");
    assert_eq!(s.nodes.len(), 1);
    assert!(!s.config.cluster_enabled);
    let s = load("replication.json");
    assert_eq!(s.nodes.len(), 3);
    assert_eq!(s.name, "replication");
}
