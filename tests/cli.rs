//! The `redsim` binary: output shapes and exit statuses.

use std::process::Command;

fn redsim(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_redsim"))
        .args(args)
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn keyslot_prints_cluster_keyslot() {
    let (code, out, _) = redsim(&[
        "keyslot",
        "foo",
        "bar",
        "{user1000}.following",
        "foo{}{bar}",
    ]);
    assert_eq!(code, 0);
    assert_eq!(out, "12182\n5061\n3443\n8363\n");
}

#[test]
fn run_prints_summary_and_passes_expectations() {
    let (code, out, _) = redsim(&["run", "scenarios/master-crash.toml"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("kill node-1"), "{out}");
    assert!(out.contains("ok    cluster_state = ok at 9.000s"), "{out}");
    assert!(out.contains("node-1   10.0.0.1:6379    dead"), "{out}");
}

#[test]
fn run_json_has_the_documented_fields() {
    let (code, out, _) = redsim(&[
        "run",
        "scenarios/master-crash.toml",
        "--json",
        "--seed",
        "3",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("one JSON object");
    for k in [
        "scenario",
        "seed",
        "trace_hash",
        "sim_time_ms",
        "events",
        "failovers",
        "final",
        "ops",
        "writes",
        "availability",
        "invariants",
        "expectations",
        "not_implemented",
    ] {
        assert!(v.get(k).is_some(), "missing {k}");
    }
    assert_eq!(v["seed"], 3);
    assert_eq!(v["sim_time_ms"], 60000);
    assert_eq!(v["final"]["nodes"].as_array().unwrap().len(), 6);
    assert_eq!(v["final"]["nodes"][0]["alive"], false);
    assert_eq!(v["final"]["nodes"][1]["slots"], "5461-10922");
    assert_eq!(v["final"]["current_epoch"], 7);
    let f = &v["failovers"][0];
    assert_eq!(v["failovers"].as_array().unwrap().len(), 1);
    assert_eq!(f["failed"], "node-1");
    assert_eq!(f["promoted"], "node-5");
    assert_eq!(f["kind"], "automatic");
    assert_eq!(f["died_ms"], 10000);
    assert_eq!(f["config_epoch"], 7);
    let (fail, promoted) = (
        f["fail_ms"].as_u64().unwrap(),
        f["promoted_ms"].as_u64().unwrap(),
    );
    assert!(15000 < fail && fail < promoted, "{f}");
    assert_eq!(v["final"]["nodes"][4]["role"], "master");
    assert_eq!(v["final"]["nodes"][4]["slots"], "0-5460");
    assert_eq!(v["final"]["nodes"][4]["config_epoch"], 7);
    assert_eq!(v["trace_hash"].as_str().unwrap().len(), 16);
    let det = &v["detections"][0];
    assert_eq!(det["node"], "node-1");
    assert!(det["first_fail_ms"].as_u64().unwrap() > 15000);
}

#[test]
fn failed_expectation_exits_1() {
    let dir = std::env::temp_dir().join("redsim-cli-test");
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("fail.toml");
    std::fs::write(
        &f,
        "duration = \"20s\"\n[cluster]\nnodes = 3\n[[expect]]\nat = \"10s\"\ncluster_state = \"fail\"\n",
    )
    .unwrap();
    let (code, out, _) = redsim(&["run", f.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAIL  cluster_state = fail at 10.000s  (not fail on node-1, node-2, node-3)"),
        "{out}"
    );
}

#[test]
fn bad_input_exits_2_with_file_line_and_key() {
    let (code, _, err) = redsim(&["validate", "tests/data/malformed/unknown_action.toml"]);
    assert_eq!(code, 2);
    assert!(err.contains("tests/data/malformed/unknown_action.toml:9:10: faults[0].action: unknown action \"kil\""), "{err}");
    let (code, _, err) = redsim(&["run", "tests/data/malformed/misspelt_directive.toml"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("did you mean 'cluster-node-timeout'?"),
        "{err}"
    );
    let (code, _, err) = redsim(&["run", "does-not-exist.toml"]);
    assert_eq!(code, 2);
    assert!(err.starts_with("error: does-not-exist.toml"), "{err}");
}

#[test]
fn validate_accepts_bundled_scenarios() {
    for s in [
        "master-crash",
        "paused-master",
        "host-crash",
        "partition-master",
    ] {
        let (code, out, _) = redsim(&["validate", &format!("scenarios/{s}.toml")]);
        assert_eq!(code, 0, "{s}: {out}");
        assert!(out.contains(": ok ("), "{out}");
    }
}

#[test]
fn check_determinism_agrees() {
    let (code, out, _) = redsim(&["run", "scenarios/paused-master.toml", "--check-determinism"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("deterministic: both runs processed "),
        "{out}"
    );
}

#[test]
fn trace_writes_one_json_line_per_event() {
    let path = std::env::temp_dir().join("redsim-trace-test.jsonl");
    let (code, out, _) = redsim(&[
        "run",
        "scenarios/host-crash.toml",
        "--json",
        "--trace",
        path.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count() as u64, v["events"].as_u64().unwrap());
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert!(first.get("t_us").is_some() && first.get("event").is_some());
}

#[test]
fn nodes_and_info_show_a_moment_of_a_run() {
    let (code, out, _) = redsim(&[
        "nodes",
        "scenarios/master-crash.toml",
        "--at",
        "20s",
        "--node",
        "node-2",
    ]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6);
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" myself,master - 0 ") && l.ends_with(" connected 5461-10922")),
        "{out}"
    );
    // node-1 was killed at 10 s and node-5 took its slots (about 18.9 s).
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" master,fail - ") && l.ends_with(" 1 disconnected")),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" master - 0 ") && l.ends_with(" 7 connected 0-5460")),
        "{out}"
    );
    assert_eq!(lines.iter().filter(|l| l.contains(" slave ")).count(), 2);
    let (code, out, _) = redsim(&[
        "info",
        "scenarios/master-crash.toml",
        "--at",
        "20s",
        "--node",
        "node-2",
    ]);
    assert_eq!(code, 0);
    assert!(out.starts_with("cluster_state:ok\ncluster_slots_assigned:16384\ncluster_slots_ok:16384\ncluster_slots_pfail:0\ncluster_slots_fail:0\ncluster_known_nodes:6\ncluster_size:3\ncluster_current_epoch:7\ncluster_my_epoch:2\n"), "{out}");
    let (code, _, err) = redsim(&[
        "nodes",
        "scenarios/master-crash.toml",
        "--at",
        "20s",
        "--node",
        "node-9",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("no node named \"node-9\""), "{err}");
}

/// `redsim create` prints redis-cli's allocation block for each recorded
/// layout (node IDs differ: they are masked).
#[test]
fn create_matches_redis_cli() {
    for layout in ["d_3n_r0", "b2_6n_3ips_r1_interleaved"] {
        let real =
            std::fs::read_to_string(format!("tests/data/create/{layout}.create.txt")).unwrap();
        let cmd: Vec<&str> = real.lines().next().unwrap().split(' ').collect();
        let addrs: Vec<&str> = cmd
            .iter()
            .copied()
            .filter(|a| a.contains(':') && !a.starts_with("--"))
            .collect();
        let replicas = cmd
            .iter()
            .position(|a| *a == "--cluster-replicas")
            .map(|i| cmd[i + 1])
            .unwrap_or("0");
        let mut args = vec!["create"];
        args.extend(&addrs);
        args.extend(["--replicas", replicas]);
        let (code, out, _) = redsim(&args);
        assert_eq!(code, 0);
        let start = real.find(">>> Performing hash slots allocation").unwrap();
        let end = real.find(">>> Nodes configuration updated").unwrap();
        let mask = |s: &str| -> String {
            s.lines()
                .map(|l| {
                    l.split(' ')
                        .map(|w| {
                            if w.len() == 40 && w.bytes().all(|b| b.is_ascii_hexdigit()) {
                                "<id>"
                            } else {
                                w
                            }
                        })
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(mask(&out), mask(&real[start..end]), "{layout}");
    }
}

/// `redsim run ... --json | head -1`: a closed standard output ends the
/// program quietly, without a panic.
#[test]
fn closed_stdout_is_not_a_panic() {
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_redsim"))
        .args(["run", "scenarios/master-crash.toml", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("waits");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn query_prints_the_reply_of_the_node_at_that_time() {
    let q = |at: &str, node: &str, cmd: &[&str]| {
        let mut args = vec![
            "query",
            "scenarios/master-crash.toml",
            "--at",
            at,
            "--node",
            node,
            "--",
        ];
        args.extend_from_slice(cmd);
        redsim(&args)
    };
    // node-1 (0-5460) is killed at 10 s, FAIL at 17.229 s, node-5 promoted
    // at 17.882 s (seed 7); bar hashes to 5061.
    let (code, out, _) = q("9s", "node-2", &["GET", "bar"]);
    assert_eq!((code, out.as_str()), (0, "-MOVED 5061 10.0.0.1:6379\n"));
    let (code, out, _) = q("17500ms", "node-2", &["GET", "bar"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "-CLUSTERDOWN The cluster is down\n")
    );
    let (_, out, _) = q("17500ms", "node-2", &["MGET", "bar", "foo"]);
    assert_eq!(
        out,
        "-CROSSSLOT Keys in request don't hash to the same slot\n"
    );
    let (_, out, _) = q("20s", "node-2", &["set", "bar", "1"]);
    assert_eq!(out, "-MOVED 5061 10.0.0.5:6379\n");
    let (code, out, _) = q("20s", "node-5", &["SET", "bar", "1"]);
    assert_eq!(code, 0);
    assert_eq!(out, "OK\n");
    // Nothing changes the run: the key is still missing.
    let (_, out, _) = q("20s", "node-5", &["INCR", "bar"]);
    assert_eq!(out, "(integer) 1\n");
    // A replica serves reads of its master's slots to READONLY clients.
    let (_, out, _) = q("9s", "node-5", &["GET", "bar"]);
    assert_eq!(out, "-MOVED 5061 10.0.0.1:6379\n");
    let (_, out, _) = redsim(&[
        "query",
        "scenarios/master-crash.toml",
        "--at",
        "9s",
        "--node",
        "node-5",
        "--readonly",
        "--",
        "GET",
        "bar",
    ]);
    assert_eq!(out, "(nil)\n");
    // A key a workload wrote (master-crash-load.toml, seed 7).
    let (_, out, _) = redsim(&[
        "query",
        "scenarios/master-crash-load.toml",
        "--at",
        "9s",
        "--node",
        "node-1",
        "--",
        "GET",
        "key:8",
    ]);
    assert_eq!(out, format!("\"1.329.{}\"\n", "x".repeat(94)));
    let (_, out, _) = q("9s", "node-2", &["CLUSTER", "SLOTS"]);
    assert!(
        out.starts_with("1) 1) (integer) 0\n   2) (integer) 5460\n   3) 1) \"10.0.0.1\"\n      2) (integer) 6379\n"),
        "{out}"
    );
    // Command errors come first, as Redis's.
    let (_, out, _) = q("9s", "node-2", &["GET"]);
    assert_eq!(out, "-ERR wrong number of arguments for 'get' command\n");
    let (code, out, err) = q("9s", "node-2", &["PING"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "-ERR unknown command 'PING', with args beginning with: \n"
    );
    assert!(
        err.contains("note: redsim's command table has only GET SET"),
        "{err}"
    );
    // WAIT: node-2 has one online replica (node-6); a replica refuses it.
    let (_, out, _) = q("20s", "node-2", &["WAIT", "1", "0"]);
    assert_eq!(out, "(integer) 1\n");
    let (code, out, _) = q("20s", "node-2", &["WAIT", "2", "100"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "(blocked: fewer than 2 replicas acknowledged offset 0; WAIT replies when 2 do, or after 100 ms with the number that did)\n"
    );
    let (_, out, _) = q("20s", "node-2", &["WAIT", "1", "-1"]);
    assert_eq!(out, "-ERR timeout is negative\n");
    let (_, out, _) = q("20s", "node-6", &["WAIT", "1", "0"]);
    assert!(out.starts_with("-ERR WAIT cannot be used with replica instances."));
    // No answer from a dead or paused node; bad arguments.
    let (code, _, err) = q("20s", "node-1", &["GET", "bar"]);
    assert_eq!(code, 1);
    assert_eq!(err, "node-1 is not running at 20.000s\n");
    let (code, _, err) = redsim(&[
        "query",
        "scenarios/paused-master.toml",
        "--at",
        "12s",
        "--node",
        "node-2",
        "--",
        "GET",
        "foo",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("node-2 is paused (SIGSTOP)"), "{err}");
    let (code, _, _) = q("9s", "node-9", &["GET", "bar"]);
    assert_eq!(code, 2);
    let (code, _, _) = redsim(&[
        "query",
        "scenarios/master-crash.toml",
        "--at",
        "9s",
        "GET",
        "bar",
    ]);
    assert_eq!(code, 2, "the command goes after --");
}

#[test]
fn a_standalone_node_runs_and_refuses_cluster_views() {
    let (code, out, err) = redsim(&["run", "scenarios/standalone-cache.toml"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("created   standalone node (cluster-enabled no)"));
    assert!(out.contains("master cluster_enabled:0"));
    assert!(out.contains("0 MOVED, 0 ASK"));
    let (code, out, err) = redsim(&["nodes", "scenarios/standalone-cache.toml", "--at", "1s"]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        err,
        "node-1: ERR This instance has cluster support disabled at 1.000s\n"
    );
    let (code, out, _) = redsim(&[
        "query",
        "scenarios/standalone-cache.toml",
        "--at",
        "1s",
        "--",
        "CLUSTER",
        "SLOTS",
    ]);
    assert_eq!(code, 0);
    assert!(
        out.contains("This instance has cluster support disabled"),
        "{out}"
    );
}

#[test]
fn bench_measures_each_file_in_its_own_process() {
    let (code, out, err) = redsim(&[
        "bench",
        "--repeat",
        "2",
        "--json",
        "scenarios/master-crash.toml",
        "scenarios/paused-master.toml",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("one JSON array");
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["scenario"], "master crash");
    // The same events as `redsim run` reports for the scenario.
    assert_eq!(rows[0]["events"], 11968);
    assert_eq!(rows[0]["sim_time_ms"], 60000);
    assert_eq!(rows[0]["repeat"], 2);
    assert_eq!(rows[1]["scenario"], "paused master");
    for r in rows {
        assert!(r["events_per_sec"].as_f64().unwrap() > 0.0);
        assert!(r["best_wall_ms"].as_f64() <= r["median_wall_ms"].as_f64());
        if cfg!(target_os = "linux") {
            assert!(r["peak_rss_kib"].as_u64().unwrap() > 0);
        }
    }

    let (code, out, _) = redsim(&["bench", "--repeat", "1", "scenarios/master-crash.toml"]);
    assert_eq!(code, 0);
    let mut lines = out.lines();
    assert!(lines.next().unwrap().starts_with("scenario "), "{out}");
    assert!(lines.next().unwrap().starts_with("master crash "), "{out}");

    let (code, _, err) = redsim(&["bench", "tests/data/malformed/nodes_file_missing.toml"]);
    assert_eq!(code, 2);
    assert!(err.contains("cluster.nodes_file"), "{err}");
}

#[test]
fn run_report_without_a_value_writes_to_reports_file_stem() {
    let cwd = std::env::temp_dir().join(format!("redsim-cli-report-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cwd);
    std::fs::create_dir_all(&cwd).unwrap();
    let scenario = std::fs::canonicalize("scenarios/master-crash.toml").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_redsim"))
        .args(["run", scenario.to_str().unwrap(), "--report"])
        .current_dir(&cwd)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("report: 10 files in reports/master-crash/"),
        "{stderr}"
    );
    // The summary still goes to standard output.
    assert!(String::from_utf8_lossy(&out.stdout).contains("kill node-1"));
    for f in [
        "index.html",
        "summary.json",
        "availability.svg",
        "availability.png",
        "latency.svg",
        "roles.svg",
        "replication.png",
    ] {
        assert!(cwd.join("reports/master-crash").join(f).is_file(), "{f}");
    }
}

#[test]
fn sweep_prints_medians_and_refuses_bad_settings() {
    let dir = std::env::temp_dir().join(format!("redsim-cli-sweep-{}", std::process::id()));
    let (code, out, err) = redsim(&[
        "sweep",
        "scenarios/master-crash.toml",
        "--set",
        "cluster-node-timeout=1000,2000",
        "--seeds",
        "2",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("sweep  master crash  (2 combinations x 2 seeds = 4 runs)"),
        "{out}"
    );
    assert!(out.contains("cluster-node-timeout=2000"), "{out}");
    assert!(dir.join("sweep.csv").is_file());
    let (code, _, err) = redsim(&[
        "sweep",
        "scenarios/master-crash.toml",
        "--set",
        "cluster-node-timeout=fast",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.starts_with("error: scenarios/master-crash.toml with --set cluster-node-timeout=fast: config.cluster-node-timeout:"),
        "{err}"
    );
    let (code, _, err) = redsim(&[
        "sweep",
        "scenarios/master-crash.toml",
        "--set",
        "x=1",
        "--seeds",
        "0",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("--seeds 0"), "{err}");
}

/// The scenarios `redsim bench` is pointed at load (running the 1000-node
/// ones takes minutes: `redsim bench scenarios/scale/1000-nodes.toml`).
#[test]
fn bench_and_scale_scenarios_load() {
    for (file, nodes) in [
        ("scenarios/bench/clients-3x3.toml", 6),
        ("scenarios/bench/fuzz-3x3.toml", 6),
        ("scenarios/scale/1000-nodes.toml", 1000),
        ("scenarios/scale/1000-nodes-create.toml", 1000),
    ] {
        let (code, out, err) = redsim(&["validate", file]);
        assert_eq!(code, 0, "{file}: {err}");
        assert!(out.contains(&format!(": ok ({nodes} nodes")), "{out}");
    }
}
