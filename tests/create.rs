//! `redis-cli --cluster create` allocation against real redis-cli 7.0.15
//! output (`tests/data/create/`) and redis-cli's algorithm.

use std::collections::BTreeMap;

use rand::RngExt;
use redsim::admin::create::{allocate, render_allocation, AntiAffinity};
use redsim::admin::create_command_output;
use redsim::engine::{actor_rng, Actor};
use redsim::net::Addr;

/// One recorded `redis-cli --cluster create` run.
struct Layout {
    addrs: Vec<Addr>,
    replicas: usize,
    /// Node IDs in argument order, from the M:/S: lines.
    node_ids: Vec<String>,
    /// The printed block from `>>> Performing hash slots allocation` up to,
    /// not including, `>>> Nodes configuration updated`.
    block: String,
    json: serde_json::Value,
}

fn data(path: &str) -> String {
    let full = format!("{}/tests/data/create/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn load(layout: &str) -> Layout {
    let text = data(&format!("{layout}.create.txt"));
    let command = text.lines().next().expect("command line");
    let args: Vec<&str> = command
        .split_whitespace()
        .skip_while(|w| *w != "create")
        .skip(1)
        .collect();
    let mut addrs = Vec::new();
    let mut replicas = 0;
    let mut i = 0;
    while i < args.len() {
        match args[i] {
            "--cluster-replicas" => {
                replicas = args[i + 1].parse().expect("replicas");
                i += 1;
            }
            a if a.starts_with("--") => {}
            a => addrs.push(Addr::parse(a).expect("address")),
        }
        i += 1;
    }
    let start = text
        .find(">>> Performing hash slots allocation")
        .expect("allocation block");
    let end = text
        .find(">>> Nodes configuration updated")
        .expect("end of block");
    let block = text[start..end].to_string();
    let mut ids = BTreeMap::new();
    for line in block.lines() {
        if let Some(rest) = line
            .strip_prefix("M: ")
            .or_else(|| line.strip_prefix("S: "))
        {
            let (id, addr) = rest.split_once(' ').expect("id addr");
            ids.insert(Addr::parse(addr).expect("addr"), id.to_string());
        }
    }
    let node_ids = addrs.iter().map(|a| ids[a].clone()).collect();
    let json = serde_json::from_str(&data(&format!("{layout}.json"))).expect("json");
    Layout {
        addrs,
        replicas,
        node_ids,
        block,
        json,
    }
}

/// The final replica map as address → master address.
fn replica_map(addrs: &[Addr], replica_of: &[Option<usize>]) -> BTreeMap<String, String> {
    replica_of
        .iter()
        .enumerate()
        .filter_map(|(n, m)| m.map(|m| (addrs[n].to_string(), addrs[m].to_string())))
        .collect()
}

fn json_replica_map(v: &serde_json::Value) -> BTreeMap<String, String> {
    v.as_object()
        .expect("map")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("master").to_string()))
        .collect()
}

/// Layouts whose initial plan already has perfect anti-affinity: the output
/// is fully determined and the optimiser never draws.
#[test]
fn deterministic_layouts_match_redis_cli_byte_for_byte() {
    for name in ["b2_6n_3ips_r1_interleaved", "d_3n_r0"] {
        let l = load(name);
        for seed in 0..5 {
            let mut rng = actor_rng(seed, Actor::Admin);
            let alloc = allocate(&l.addrs, l.replicas, &mut rng).expect(name);
            assert_eq!(rng.get_word_pos(), 0, "{name}: the optimiser must not draw");
            assert_eq!(alloc.anti_affinity, AntiAffinity::NotNeeded, "{name}");
            assert_eq!(
                render_allocation(&l.addrs, &alloc, &l.node_ids),
                l.block,
                "{name}"
            );
            let mut rng = actor_rng(seed, Actor::Admin);
            assert_eq!(
                create_command_output(&l.addrs, l.replicas, &mut rng, &l.node_ids).as_deref(),
                Ok(l.block.as_str())
            );
            check_against_json(&l, &alloc);
            if l.json["replicas"].as_array().expect("replicas").is_empty() {
                assert!(alloc.replica_of.iter().all(Option::is_none));
            } else {
                let mut want = BTreeMap::new();
                for r in l.json["replicas"].as_array().expect("replicas") {
                    want.insert(
                        r["addr"].as_str().expect("addr").to_string(),
                        r["master"].as_str().expect("master").to_string(),
                    );
                }
                assert_eq!(replica_map(&l.addrs, &alloc.replica_of), want, "{name}");
            }
        }
    }
}

/// Masters, slot ranges and config epochs from the json.
fn check_against_json(l: &Layout, alloc: &redsim::admin::create::Allocation) {
    let masters = l.json["masters"].as_array().expect("masters");
    assert_eq!(alloc.masters.len(), masters.len());
    for (m, want) in alloc.masters.iter().zip(masters) {
        assert_eq!(
            l.addrs[m.node].to_string(),
            want["addr"].as_str().expect("addr")
        );
        let ranges: Vec<String> = m.slots.iter().map(|(a, b)| format!("{a}-{b}")).collect();
        let want_ranges: Vec<&str> = want["slots"]
            .as_array()
            .expect("slots")
            .iter()
            .map(|s| s.as_str().expect("range"))
            .collect();
        assert_eq!(ranges, want_ranges);
        assert_eq!(
            alloc.config_epoch(m.node),
            want["config_epoch"].as_u64().expect("epoch")
        );
    }
}

/// All six nodes on one IP: redis-cli shuffles replicas with `rand()`.
#[test]
fn one_host_layout_prints_the_plan_and_shuffles_like_redis_cli() {
    let l = load("a_6n_r1");
    let seen: Vec<BTreeMap<String, String>> = l.json["replica_maps_seen"]
        .as_array()
        .expect("replica_maps_seen")
        .iter()
        .map(json_replica_map)
        .collect();
    // The real run's own final map, from its S: lines.
    let mut real_map = BTreeMap::new();
    for r in l.json["replicas"].as_array().expect("replicas") {
        real_map.insert(
            r["addr"].as_str().expect("addr").to_string(),
            r["master"].as_str().expect("master").to_string(),
        );
    }
    assert!(seen.contains(&real_map));
    let plan_end = l.block.find("M: ").expect("M: lines");
    let plan = &l.block[..plan_end];

    let mut maps = Vec::new();
    let mut matched_real_run = false;
    for seed in 0..60 {
        let mut rng = actor_rng(seed, Actor::Admin);
        let alloc = allocate(&l.addrs, l.replicas, &mut rng).expect("a_6n_r1");
        assert_eq!(alloc.anti_affinity, AntiAffinity::SlavesWithTheirMaster);
        let text = render_allocation(&l.addrs, &alloc, &l.node_ids);
        assert_eq!(&text[..plan_end], plan, "seed {seed}: printed plan");
        check_against_json(&l, &alloc);
        let map = replica_map(&l.addrs, &alloc.replica_of);
        assert!(
            seen.contains(&map),
            "seed {seed}: {map:?} never seen in redis-cli"
        );
        if map == real_map {
            assert_eq!(text, l.block, "seed {seed}: same map, same text");
            matched_real_run = true;
        }
        // Same seed, same outcome.
        let mut again = actor_rng(seed, Actor::Admin);
        assert_eq!(allocate(&l.addrs, l.replicas, &mut again), Ok(alloc));
        if !maps.contains(&map) {
            maps.push(map);
        }
    }
    assert!(maps.len() > 1, "the shuffle must depend on the seed");
    // Every one of the 500 · 6 = 3000 iterations swaps the masters of two
    // replicas of different masters and keeps it (all swaps are neutral), so
    // the result is always an even permutation of the plan: the three
    // rotations, exactly the three maps redis-cli was seen to produce.
    assert_eq!(maps.len(), 3);
    assert!(matched_real_run, "some seed reproduces the recorded run");
}

fn addrs(list: &[&str]) -> Vec<Addr> {
    list.iter().map(|a| Addr::parse(a).expect("addr")).collect()
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{i:040x}")).collect()
}

#[test]
fn fewer_than_three_masters_is_redis_cli_error() {
    let mut rng = actor_rng(1, Actor::Admin);
    let five = addrs(&[
        "127.0.0.1:7001",
        "127.0.0.1:7002",
        "127.0.0.1:7003",
        "127.0.0.1:7004",
        "127.0.0.1:7005",
    ]);
    assert_eq!(
        allocate(&five, 1, &mut rng),
        Err("*** ERROR: Invalid configuration for cluster creation.\n\
             *** Redis Cluster requires at least 3 master nodes.\n\
             *** This is not possible with 5 nodes and 1 replicas per node.\n\
             *** At least 6 nodes are required.\n"
            .to_string())
    );
    assert_eq!(
        create_command_output(&five[..2], 0, &mut rng, &ids(2)),
        Err("*** ERROR: Invalid configuration for cluster creation.\n\
             *** Redis Cluster requires at least 3 master nodes.\n\
             *** This is not possible with 2 nodes and 0 replicas per node.\n\
             *** At least 3 nodes are required.\n"
            .to_string())
    );
}

/// Three hosts, three nodes each, two replicas per master: each master's
/// replicas sit on the two other hosts, whatever the argument order.
#[test]
fn nine_nodes_three_hosts_two_replicas_is_perfect() {
    let grouped = addrs(&[
        "10.0.0.1:7001",
        "10.0.0.1:7002",
        "10.0.0.1:7003",
        "10.0.0.2:7001",
        "10.0.0.2:7002",
        "10.0.0.2:7003",
        "10.0.0.3:7001",
        "10.0.0.3:7002",
        "10.0.0.3:7003",
    ]);
    let mut shuffled = grouped.clone();
    let mut order_rng = actor_rng(99, Actor::Admin);
    for i in (1..shuffled.len()).rev() {
        shuffled.swap(i, order_rng.random_range(0..=i));
    }
    for list in [&grouped, &shuffled] {
        let mut rng = actor_rng(7, Actor::Admin);
        let alloc = allocate(list, 2, &mut rng).expect("9 nodes");
        assert_eq!(alloc.anti_affinity, AntiAffinity::NotNeeded);
        assert_eq!(alloc.masters.len(), 3);
        let master_ips: Vec<[u8; 4]> = alloc.masters.iter().map(|m| list[m.node].ip).collect();
        assert_eq!(master_ips.len(), 3);
        assert!(master_ips[0] != master_ips[1] && master_ips[1] != master_ips[2]);
        for m in &alloc.masters {
            let hosts: Vec<[u8; 4]> = (0..list.len())
                .filter(|&n| alloc.master_of(n) == Some(m.node))
                .map(|n| list[n].ip)
                .collect();
            assert_eq!(hosts.len(), 2);
            assert_ne!(hosts[0], hosts[1]);
            assert!(!hosts.contains(&list[m.node].ip));
        }
    }
    // Grouped order: interleaving gives 10.0.0.{1,2,3}:7001 as masters.
    let mut rng = actor_rng(7, Actor::Admin);
    let text = create_command_output(&grouped, 2, &mut rng, &ids(9)).expect("9 nodes");
    let head: Vec<&str> = text.lines().take(10).collect();
    assert_eq!(
        head,
        [
            ">>> Performing hash slots allocation on 9 nodes...",
            "Master[0] -> Slots 0 - 5460",
            "Master[1] -> Slots 5461 - 10922",
            "Master[2] -> Slots 10923 - 16383",
            "Adding replica 10.0.0.2:7002 to 10.0.0.1:7001",
            "Adding replica 10.0.0.3:7002 to 10.0.0.1:7001",
            "Adding replica 10.0.0.1:7003 to 10.0.0.2:7001",
            "Adding replica 10.0.0.3:7003 to 10.0.0.2:7001",
            "Adding replica 10.0.0.2:7003 to 10.0.0.3:7001",
            "Adding replica 10.0.0.1:7002 to 10.0.0.3:7001",
        ]
    );
}

/// A plan with a replica on its master's host that one swap fixes: the
/// optimiser runs, prints `[OK] Perfect anti-affinity obtained!`, and the
/// `S:` lines differ from the `Adding replica` plan.
#[test]
fn optimiser_reaches_perfect_anti_affinity() {
    let list = addrs(&[
        "10.0.0.1:7001",
        "10.0.0.2:7001",
        "10.0.0.3:7001",
        "10.0.0.3:7002",
        "10.0.0.2:7002",
        "10.0.0.2:7003",
    ]);
    for seed in 0..20 {
        let mut rng = actor_rng(seed, Actor::Admin);
        let alloc = allocate(&list, 1, &mut rng).expect("6 nodes");
        assert_eq!(alloc.anti_affinity, AntiAffinity::Perfect);
        // The plan put 10.0.0.2:7003 on its master's host 10.0.0.2.
        assert_eq!(alloc.adding_replica, vec![(3, 0), (5, 1), (4, 2)]);
        for n in 0..list.len() {
            if let Some(m) = alloc.master_of(n) {
                assert_ne!(list[n].ip, list[m].ip, "seed {seed}");
            }
        }
        let text = render_allocation(&list, &alloc, &ids(6));
        assert!(text.contains(
            "Adding replica 10.0.0.2:7003 to 10.0.0.2:7001\n\
             Adding replica 10.0.0.2:7002 to 10.0.0.3:7001\n\
             >>> Trying to optimize slaves allocation for anti-affinity\n\
             [OK] Perfect anti-affinity obtained!\n\
             M: "
        ));
    }
}

/// Two replicas of the same master must share a host: the second warning.
#[test]
fn unavoidable_same_master_replicas_warn() {
    let list = addrs(&[
        "10.0.0.1:7001",
        "10.0.0.2:7001",
        "10.0.0.3:7001",
        "10.0.0.1:7002",
        "10.0.0.2:7002",
        "10.0.0.3:7002",
        "10.0.0.1:7003",
        "10.0.0.1:7004",
        "10.0.0.1:7005",
    ]);
    let mut rng = actor_rng(3, Actor::Admin);
    let alloc = allocate(&list, 2, &mut rng).expect("9 nodes");
    assert_eq!(
        alloc.anti_affinity,
        AntiAffinity::SlavesOfSameMasterTogether
    );
    let text = render_allocation(&list, &alloc, &ids(9));
    assert!(text.contains(
        ">>> Trying to optimize slaves allocation for anti-affinity\n\
         [WARNING] Some slaves of the same master are in the same host\n"
    ));
}

/// Leftover nodes after the first pass: `Adding extra replicas...`, one more
/// per master; with more leftovers than masters the rest stay slotless masters.
#[test]
fn extra_replicas_and_slotless_masters() {
    let seven: Vec<Addr> = (0..7).map(|i| Addr::new([10, 0, 0, i + 1], 7000)).collect();
    let mut rng = actor_rng(1, Actor::Admin);
    let alloc = allocate(&seven, 1, &mut rng).expect("7 nodes");
    assert_eq!(alloc.extra_replicas_at, Some(3));
    assert_eq!(alloc.adding_replica.len(), 4);
    let text = render_allocation(&seven, &alloc, &ids(7));
    assert!(text.contains("Adding replica 10.0.0.7:7000 to 10.0.0.3:7000\nAdding extra replicas...\nAdding replica 10.0.0.4:7000 to 10.0.0.1:7000\n"), "{text}");

    // 19 nodes, 4 replicas: 3 masters, 12 + 3 replicas, one node left over.
    let nineteen: Vec<Addr> = (0..19)
        .map(|i| Addr::new([10, 0, 1, i + 1], 7000))
        .collect();
    let alloc = allocate(&nineteen, 4, &mut rng).expect("19 nodes");
    assert_eq!(alloc.adding_replica.len(), 15);
    let masterless: Vec<usize> = (0..19)
        .filter(|&n| alloc.master_of(n).is_none() && alloc.slots_of(n).is_empty())
        .collect();
    assert_eq!(masterless.len(), 1);
    let text = render_allocation(&nineteen, &alloc, &ids(19));
    let id = &ids(19)[masterless[0]];
    assert!(text.contains(&format!(
        "M: {id} {}\n   slots: (0 slots) master\n",
        nineteen[masterless[0]]
    )));
}

/// Facts §11: slot ranges for 3 and 6 masters, config epochs 1..N.
#[test]
fn slot_ranges_and_config_epochs() {
    let cases: [(usize, &[(u16, u16)]); 2] = [
        (3, &[(0, 5460), (5461, 10922), (10923, 16383)]),
        (
            6,
            &[
                (0, 2730),
                (2731, 5460),
                (5461, 8191),
                (8192, 10922),
                (10923, 13652),
                (13653, 16383),
            ],
        ),
    ];
    for (masters, want) in cases {
        let list: Vec<Addr> = (0..masters as u16 * 2)
            .map(|i| Addr::new([127, 0, 0, 1], 7001 + i))
            .collect();
        let mut rng = actor_rng(5, Actor::Admin);
        let alloc = allocate(&list, 1, &mut rng).expect("layout");
        let got: Vec<(u16, u16)> = alloc.masters.iter().map(|m| m.slots[0]).collect();
        assert_eq!(got, want);
        let masters_in_order: Vec<usize> = alloc.masters.iter().map(|m| m.node).collect();
        assert_eq!(masters_in_order, (0..masters).collect::<Vec<_>>());
        let total: usize = alloc.masters.iter().map(|m| m.slot_count()).sum();
        assert_eq!(total, 16384);
        for n in 0..list.len() {
            assert_eq!(alloc.config_epoch(n), n as u64 + 1);
        }
    }
}
