//! Malformed scenario files: each error names the file, line, column, key
//! path and what was expected. Also: no input makes `parse` panic.

use std::path::Path;

use proptest::prelude::*;
use redsim::scenario::{self, Format};

/// Load `tests/data/malformed/<name>` (cargo runs tests from the package root)
/// and return the error text.
fn err(name: &str) -> String {
    let p = format!("tests/data/malformed/{name}");
    match scenario::load(Path::new(&p)) {
        Ok(_) => panic!("{p} loaded but must fail"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn add_node_gap_toml() {
    assert_eq!(
        err("add_node_gap.toml"),
        "tests/data/malformed/add_node_gap.toml:7:1: faults: node-8 is added but node-7 is not: nodes joining with add-node must be numbered node-7, node-8, ... without gaps"
    );
}

#[test]
fn at_beyond_duration_toml() {
    assert_eq!(
        err("at_beyond_duration.toml"),
        "tests/data/malformed/at_beyond_duration.toml:8:6: faults[0].at: fault is scheduled after the end of the run (duration)"
    );
}

#[test]
fn bad_address_toml() {
    assert_eq!(
        err("bad_address.toml"),
        "tests/data/malformed/bad_address.toml:4:31: cluster.addresses[1]: expected \"ip:port\" with an IPv4 address, got \"10.0.0.2\""
    );
}

#[test]
fn bad_duration_unit_toml() {
    assert_eq!(
        err("bad_duration_unit.toml"),
        "tests/data/malformed/bad_duration_unit.toml:1:12: duration: expected a duration such as \"250us\", \"5ms\", \"1.5s\", \"2m\" or an integer of milliseconds, got \"60 parsecs\""
    );
}

#[test]
fn bad_failover_mode_toml() {
    assert_eq!(
        err("bad_failover_mode.toml"),
        "tests/data/malformed/bad_failover_mode.toml:11:8: faults[0].mode: unknown failover mode \"forced\" (expected one of: default, force, takeover)"
    );
}

#[test]
fn bad_group_member_toml() {
    assert_eq!(
        err("bad_group_member.toml"),
        "tests/data/malformed/bad_group_member.toml:10:24: faults[0].groups[1][0]: unknown group member \"nodes-2\" (expected node-1 ... node-6, host-1 ... host-6, \"clients\" or \"rest\")"
    );
}

#[test]
fn bad_latency_table_toml() {
    assert_eq!(
        err("bad_latency_table.toml"),
        "tests/data/malformed/bad_latency_table.toml:8:11: network.latency: expected a duration, { min, max } or { mean, jitter }"
    );
}

#[test]
fn bad_maxmemory_policy_toml() {
    assert_eq!(
        err("bad_maxmemory_policy.toml"),
        "tests/data/malformed/bad_maxmemory_policy.toml:8:20: config.maxmemory-policy: expected one of: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction; got \"allkeys-lru2\""
    );
}

#[test]
fn bad_mode_toml() {
    assert_eq!(
        err("bad_mode.toml"),
        "tests/data/malformed/bad_mode.toml:4:8: cluster.mode: unknown mode \"clusters\" (expected one of: cluster, standalone, replication, sentinel)"
    );
}

#[test]
fn bad_slot_range_toml() {
    assert_eq!(
        err("bad_slot_range.toml"),
        "tests/data/malformed/bad_slot_range.toml:8:9: workload[0].slots: slot range \"5-3\" starts after it ends (expected start <= end)"
    );
}

#[test]
fn bad_zipf_toml() {
    assert_eq!(
        err("bad_zipf.toml"),
        "tests/data/malformed/bad_zipf.toml:8:16: workload[0].distribution: expected \"zipf:<s>\" with a number s > 0 (e.g. \"zipf:0.99\"), got \"zipf:-1\""
    );
}

#[test]
fn config_set_bad_value_toml() {
    assert_eq!(
        err("config_set_bad_value.toml"),
        "tests/data/malformed/config_set_bad_value.toml:12:9: faults[0].value: expected one of: always, everysec, no; got \"sometimes\""
    );
}

#[test]
fn duplicate_address_toml() {
    assert_eq!(
        err("duplicate_address.toml"),
        "tests/data/malformed/duplicate_address.toml:4:48: cluster.addresses[2]: duplicate address 10.0.0.1:7000"
    );
}

#[test]
fn duplicate_key_toml() {
    assert_eq!(
        err("duplicate_key.toml"),
        "tests/data/malformed/duplicate_key.toml:2:1: duplicate key"
    );
}

#[test]
fn duration_missing_toml() {
    assert_eq!(
        err("duration_missing.toml"),
        "tests/data/malformed/duration_missing.toml:1:1: duration: missing required key (expected a duration such as \"60s\")"
    );
}

#[test]
fn expect_bad_role_toml() {
    assert_eq!(
        err("expect_bad_role.toml"),
        "tests/data/malformed/expect_bad_role.toml:8:21: expect[0].role.node-1: unknown role \"leader\" (expected one of: master, replica, slave)"
    );
}

#[test]
fn expect_min_replicas_zero_toml() {
    assert_eq!(
        err("expect_min_replicas_zero.toml"),
        "tests/data/malformed/expect_min_replicas_zero.toml:8:29: expect[0].min_replicas.node-1: expected an integer between 1 and 999, got 0"
    );
}

#[test]
fn fault_key_for_other_action_toml() {
    assert_eq!(
        err("fault_key_for_other_action.toml"),
        "tests/data/malformed/fault_key_for_other_action.toml:10:1: faults[0].node: unknown key \"node\" (expected one of: at, action)"
    );
}

#[test]
fn fault_node_9_toml() {
    assert_eq!(
        err("fault_node_9.toml"),
        "tests/data/malformed/fault_node_9.toml:10:8: faults[0].node: unknown node \"node-9\" (this scenario has node-1 ... node-6)"
    );
}

#[test]
fn hosts_too_many_toml() {
    assert_eq!(
        err("hosts_too_many.toml"),
        "tests/data/malformed/hosts_too_many.toml:5:9: cluster.hosts: expected at most 6 hosts (one per node), got 7"
    );
}

#[test]
fn huge_integer_toml() {
    assert_eq!(
        err("huge_integer.toml"),
        "tests/data/malformed/huge_integer.toml:2:8: seed: expected an integer >= 0, got -1"
    );
}

#[test]
fn json_bad_latency_fault_json() {
    assert_eq!(
        err("json_bad_latency_fault.json"),
        "tests/data/malformed/json_bad_latency_fault.json:5:49: faults[0].value: expected a duration, { min, max } or { mean, jitter }"
    );
}

#[test]
fn json_duplicate_key_json() {
    assert_eq!(
        err("json_duplicate_key.json"),
        "tests/data/malformed/json_duplicate_key.json:5:3: duplicate key \"seed\""
    );
}

#[test]
fn json_huge_int_json() {
    assert_eq!(
        err("json_huge_int.json"),
        "tests/data/malformed/json_huge_int.json:4:11: seed: expected an integer >= 0, got 123456789012345678901234567890"
    );
}

#[test]
fn json_null_json() {
    assert_eq!(
        err("json_null.json"),
        "tests/data/malformed/json_null.json:4:24: network.loss: expected a number, got null"
    );
}

#[test]
fn json_syntax_json() {
    assert_eq!(
        err("json_syntax.json"),
        "tests/data/malformed/json_syntax.json:3:28: expected a string key"
    );
}

#[test]
fn json_unknown_key_json() {
    assert_eq!(
        err("json_unknown_key.json"),
        "tests/data/malformed/json_unknown_key.json:5:37: faults[0].nod: unknown key \"nod\" (did you mean \"node\"?) (expected one of: at, action, node)"
    );
}

#[test]
fn loss_too_big_toml() {
    assert_eq!(
        err("loss_too_big.toml"),
        "tests/data/malformed/loss_too_big.toml:8:8: network.loss: expected a number between 0 and 1, got 1.5"
    );
}

#[test]
fn misspelt_directive_toml() {
    assert_eq!(
        err("misspelt_directive.toml"),
        "tests/data/malformed/misspelt_directive.toml:8:1: config.cluster-node-timout: unknown directive 'cluster-node-timout' (did you mean 'cluster-node-timeout'?)"
    );
}

#[test]
fn negative_timeout_toml() {
    assert_eq!(
        err("negative_timeout.toml"),
        "tests/data/malformed/negative_timeout.toml:8:24: config.cluster-node-timeout: expected an integer >= 0 (milliseconds), got -5"
    );
}

#[test]
fn node_config_bad_value_toml() {
    assert_eq!(
        err("node_config_bad_value.toml"),
        "tests/data/malformed/node_config_bad_value.toml:8:13: node.node-4.config.maxmemory: expected a size: bytes, or a number with unit b, k, kb, m, mb, g or gb (\"64kb\", \"100mb\", \"1gb\"), got \"1tb\""
    );
}

#[test]
fn nodes_file_missing_toml() {
    assert_eq!(
        err("nodes_file_missing.toml"),
        "tests/data/malformed/nodes_file_missing.toml:4:14: cluster.nodes_file: cannot read tests/data/malformed/missing.txt: No such file or directory (os error 2)"
    );
}

#[test]
fn sentinel_in_cluster_toml() {
    assert_eq!(
        err("sentinel_in_cluster.toml"),
        "tests/data/malformed/sentinel_in_cluster.toml:7:2: sentinel: a [sentinel] table is only allowed with cluster.mode = \"sentinel\""
    );
}

#[test]
fn slot_16384_toml() {
    assert_eq!(
        err("slot_16384.toml"),
        "tests/data/malformed/slot_16384.toml:10:9: faults[0].slots: slot 16384 is out of range (expected 0..16383)"
    );
}

#[test]
fn toml_syntax_toml() {
    assert_eq!(
        err("toml_syntax.toml"),
        "tests/data/malformed/toml_syntax.toml:5:11: string values must be quoted, expected literal string"
    );
}

#[test]
fn too_few_masters_toml() {
    assert_eq!(
        err("too_few_masters.toml"),
        "tests/data/malformed/too_few_masters.toml:4:9: cluster.nodes: Redis Cluster requires at least 3 master nodes. This is not possible with 4 nodes and 1 replicas per node. At least 6 nodes are required."
    );
}

#[test]
fn trace_missing_toml() {
    assert_eq!(
        err("trace_missing.toml"),
        "tests/data/malformed/trace_missing.toml:8:9: workload[0].trace: trace file \"no-such-file.trace\" not found (looked for tests/data/malformed/no-such-file.trace)"
    );
}

#[test]
fn unknown_action_toml() {
    assert_eq!(
        err("unknown_action.toml"),
        "tests/data/malformed/unknown_action.toml:9:10: faults[0].action: unknown action \"kil\" (expected one of: kill, restart, pause, resume, crash-host, partition, isolate, one-way, heal, block-port, latency, loss, failover, reshard, add-node, del-node, rebalance, fix, config-set, replicaof, replicaof-no-one, repoint-clients)"
    );
}

#[test]
fn unknown_node_config_toml() {
    assert_eq!(
        err("unknown_node_config.toml"),
        "tests/data/malformed/unknown_node_config.toml:7:7: node.node-9: unknown node \"node-9\" (this scenario has node-1 ... node-6)"
    );
}

#[test]
fn unknown_top_key_toml() {
    assert_eq!(
        err("unknown_top_key.toml"),
        "tests/data/malformed/unknown_top_key.toml:7:2: netwrok: unknown key \"netwrok\" (did you mean \"network\"?) (expected one of: name, description, seed, duration, cluster, config, node, network, workload, faults, expect, sentinel)"
    );
}

#[test]
fn unknown_workload_key_toml() {
    assert_eq!(
        err("unknown_workload_key.toml"),
        "tests/data/malformed/unknown_workload_key.toml:9:1: workload[0].read_ration: unknown key \"read_ration\" (did you mean \"read_ratio\"?) (expected one of: clients, rate, keys, distribution, read_ratio, write, value_size, ttl, timeout, retry_after, start, stop, read_from_replicas, slots, ttl_share, on_miss, trace, wait)"
    );
}

#[test]
fn wrong_type_toml() {
    assert_eq!(
        err("wrong_type.toml"),
        "tests/data/malformed/wrong_type.toml:4:9: cluster.nodes: expected an integer, got a string (\"6\")"
    );
}

#[test]
fn load_needs_a_known_extension() {
    let e = scenario::load(Path::new("tests/data/scenarios/ops.trace")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "tests/data/scenarios/ops.trace: unknown scenario format (expected a file name ending in .toml or .json)"
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!("duration = {}1{}", "[".repeat(100_000), "]".repeat(100_000));
    let e = scenario::parse(&deep, Format::Toml, "deep.toml", Path::new(".")).unwrap_err();
    assert!(e.to_string().starts_with("deep.toml:1:"), "{e}");
    let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(scenario::parse(&deep, Format::Json, "deep.json", Path::new(".")).is_err());
}

const VALID: &[&str] = &[
    include_str!("data/scenarios/full.toml"),
    include_str!("data/scenarios/doc_example.toml"),
    include_str!("data/scenarios/doc_sentinel.toml"),
];
const VALID_JSON: &str = include_str!("data/scenarios/full.json");

fn base() -> &'static Path {
    Path::new("tests/data/scenarios")
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,300}") {
        let _ = scenario::parse(&s, Format::Toml, "x.toml", base());
        let _ = scenario::parse(&s, Format::Json, "x.json", base());
    }

    #[test]
    fn mutated_valid_files_never_panic(
        which in 0..4usize,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0..4u8, "[-0-9a-z\\[\\]{}\",=.:\n ]{0,6}"), 1..4),
    ) {
        let mut text: String = if which == 3 { VALID_JSON.to_string() } else { VALID[which].to_string() };
        for (at, kind, ins) in edits {
            let chars: Vec<char> = text.chars().collect();
            let i = at.index(chars.len() + 1);
            let mut out: String = chars[..i].iter().collect();
            let rest: String = chars[i..].iter().collect();
            match kind {
                0 => { out.push_str(&ins); out.push_str(&rest); }
                1 => { out.extend(rest.chars().skip(ins.len().max(1))); }
                2 => { out.push_str(&ins); out.extend(rest.chars().skip(ins.len())); }
                _ => { out.push_str("-99999999999999999999"); out.extend(rest.chars().skip(1)); }
            }
            text = out;
        }
        let fmt = if which == 3 { Format::Json } else { Format::Toml };
        let _ = scenario::parse(&text, fmt, "m", base());
    }

    #[test]
    fn value_substitution_never_panics(
        key in prop::sample::select(vec!["seed", "duration", "[cluster]\nnodes", "[cluster]\nreplicas", "[cluster]\nhosts",
            "[network]\nlatency", "[network]\nbandwidth", "[[workload]]\nrate", "[[workload]]\nslots", "[config]\nmaxmemory",
            "[config]\nsave", "[config]\nhz", "[[faults]]\nat = \"1s\"\naction = \"loss\"\nvalue", "[[expect]]\nat"]),
        value in prop::sample::select(vec!["-1", "0", "9223372036854775807", "nan", "inf", "-inf", "1e308", "\"\"", "[]", "{}",
            "true", "\"1.5s\"", "\"-3\"", "\"0-16383\"", "\"99999999999999999999gb\"", "1979-05-27", "[[1]]", "{ min = 1 }"]),
    ) {
        let text = "duration = \"10s\"\n[cluster]\nnodes = 6\n";
        let text = if key.starts_with('[') { format!("{text}{key} = {value}\n") } else { format!("{key} = {value}\n{text}") };
        let _ = scenario::parse(&text, Format::Toml, "v.toml", base());
    }
}

#[test]
fn rebalance_and_fix_options_are_checked() {
    assert_eq!(
        err("rebalance_bad_weight.toml"),
        "tests/data/malformed/rebalance_bad_weight.toml:10:24: faults[0].weights.node-1: expected a weight >= 0, got -1"
    );
    assert_eq!(
        err("rebalance_unknown_weight_node.toml"),
        "tests/data/malformed/rebalance_unknown_weight_node.toml:10:13: faults[0].weights.node-9: unknown node \"node-9\" (this scenario has node-1 ... node-6)"
    );
    assert_eq!(
        err("fix_bad_flag.toml"),
        "tests/data/malformed/fix_bad_flag.toml:10:11: faults[0].replace: expected true or false, got a string (\"yes\")"
    );
}

#[test]
fn wait_misspelt_key_toml() {
    assert_eq!(
        err("wait_misspelt_key.toml"),
        "tests/data/malformed/wait_misspelt_key.toml:8:10: workload[0].wait.replica: unknown key \"replica\" (did you mean \"replicas\"?) (expected one of: replicas, timeout)"
    );
}

#[test]
fn wait_timeout_not_ms_toml() {
    assert_eq!(
        err("wait_timeout_not_ms.toml"),
        "tests/data/malformed/wait_timeout_not_ms.toml:8:34: workload[0].wait.timeout: expected whole milliseconds (WAIT takes milliseconds; 0 = forever)"
    );
}

#[test]
fn block_port_errors_toml() {
    assert_eq!(
        err("block_port_data.toml"),
        "tests/data/malformed/block_port_data.toml:10:8: faults[0].port: unknown port \"data\" (expected one of: bus)"
    );
    assert_eq!(
        err("block_port_node_9.toml"),
        "tests/data/malformed/block_port_node_9.toml:11:8: faults[0].node: unknown node \"node-9\" (expected \"all\" or node-1 ... node-6)"
    );
    assert_eq!(
        err("block_port_no_port.toml"),
        "tests/data/malformed/block_port_no_port.toml:7:1: faults[0].port: missing required key (expected \"bus\" (the cluster bus port))"
    );
    assert_eq!(
        err("block_port_standalone.toml"),
        "tests/data/malformed/block_port_standalone.toml:8:10: faults[0].action: action \"block-port\" is only available with mode = \"cluster\""
    );
}
