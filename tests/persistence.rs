//! Persistence on restart: what a master killed (or whose host crashed) and
//! restarted without a failover still has, with each persistence mode; a
//! replica restarted from its RDB resyncs partially, from its AOF fully;
//! `-LOADING` while it loads; the fork of a save point stalls the master.

mod common;
use common::*;
use redsim::engine::{SimTime, SEC};
use redsim::node::keyspace::{Executed, Reply};
use redsim::node::route::ClientFlags;
use redsim::node::serve::ClientReply;
use redsim::sim::Simulation;
use redsim::world::DataEvent;

/// 3+3 without failovers; a client writes only to node-2's slots from 3 s
/// to 10 s (200 writes/s over 500 keys); node-2 dies at 10 s (`death`: a
/// `kill`, or `crash-host` of its host) and restarts at 12 s.
fn restart_scenario(persistence: &str, death: &str) -> String {
    let death = match death {
        "kill" => fault("10s", "kill", "node-2"),
        _ => "[[faults]]\nat = \"10s\"\naction = \"crash-host\"\nhost = \"host-2\"\n".into(),
    };
    format!(
        "duration = \"20s\"\n[cluster]\nnodes = 6\nreplicas = 1\n[config]\n\
         cluster-node-timeout = 5000\ncluster-replica-no-failover = \"yes\"\n{persistence}\n\
         [[workload]]\nclients = 2\nrate = 200\nkeys = 500\nread_ratio = 0\nslots = \"5461-10922\"\n\
         start = \"3s\"\nstop = \"10s\"\n{death}{}",
        fault("12s", "restart", "node-2")
    )
}

/// (acknowledged writes, lost writes) of a run.
fn acked_lost(toml: &str, seed: u64) -> (u64, u64) {
    acked_lost_keys(toml, seed).0
}

/// [`acked_lost`], and the number of keys written.
fn acked_lost_keys(toml: &str, seed: u64) -> ((u64, u64), usize) {
    let sim = run(toml, seed);
    let t = sim.client_totals();
    assert!(
        sim.world.node(1).is_some_and(|n| n.is_master()),
        "node-2 is back as master"
    );
    let keys: std::collections::BTreeSet<u32> = sim
        .world
        .clients
        .ops
        .iter()
        .filter(|o| o.cmd.is_write() && o.outcome.is_ok())
        .map(|o| o.key)
        .collect();
    ((t.writes.acknowledged, t.lost), keys.len())
}

#[test]
fn a_restarted_master_without_persistence_comes_back_empty_and_loses_every_write() {
    for seed in 1..=3 {
        let ((acked, lost), keys) = acked_lost_keys(&restart_scenario("save = \"\"", "kill"), seed);
        assert!(acked > 1000, "seed {seed}: {acked}");
        // Every key's last write is gone.
        assert_eq!(lost as usize, keys, "seed {seed}: {lost} of {acked} lost");
        // The default save points need 60 s: the same within this run.
        let (_, lost_default) = acked_lost(&restart_scenario("", "kill"), seed);
        assert_eq!(lost_default, lost, "seed {seed}");
    }
}

#[test]
fn rdb_save_points_keep_what_the_last_save_had() {
    for seed in 1..=3 {
        // A BGSAVE once a change is older than a second: about every 2 s.
        let (_, lost) = acked_lost(&restart_scenario("save = \"1 1\"", "kill"), seed);
        assert!(lost > 0, "seed {seed}: the writes after the last save");
        // Keys written only before the last save keep their value.
        let (_, none) = acked_lost(&restart_scenario("save = \"\"", "kill"), seed);
        assert!(lost < none * 9 / 10, "seed {seed}: {lost} vs {none}");
    }
}

#[test]
fn with_an_aof_a_kill_loses_nothing_whatever_appendfsync_says() {
    for fsync in ["always", "everysec", "no"] {
        let conf = format!("appendonly = \"yes\"\nappendfsync = \"{fsync}\"\nsave = \"\"");
        let (acked, lost) = acked_lost(&restart_scenario(&conf, "kill"), 1);
        assert!(acked > 1000);
        assert_eq!(lost, 0, "appendfsync {fsync}: the OS has every write");
    }
}

#[test]
fn a_host_crash_loses_what_the_aof_had_not_fsynced() {
    for seed in 1..=3 {
        let conf = |fsync: &str| format!("appendonly = \"yes\"\nappendfsync = \"{fsync}\"");
        let (_, always) = acked_lost(&restart_scenario(&conf("always"), "crash-host"), seed);
        assert_eq!(always, 0, "seed {seed}: always: every acknowledged write");
        // everysec: the writes since the last fsync, at most a second's
        // (200 writes).
        let (_, everysec) = acked_lost(&restart_scenario(&conf("everysec"), "crash-host"), seed);
        assert!(
            (1..=200).contains(&everysec),
            "seed {seed}: everysec lost {everysec}"
        );
        // no: nothing older than 30 s, so every write of this run.
        let (_, no) = acked_lost(&restart_scenario(&conf("no"), "crash-host"), seed);
        let (_, none) = acked_lost(&restart_scenario("save = \"\"", "crash-host"), seed);
        assert_eq!(no, none, "seed {seed}: appendfsync no");
    }
}

/// node-5 (node-1's replica) restarts: from the RDB its full sync left it,
/// it has node-1's replication ID and offset and continues partially; from
/// an AOF it has neither and gets a full sync.
#[test]
fn a_restarted_replica_resyncs_partially_from_its_rdb_and_fully_from_its_aof() {
    let scenario = |conf: &str| {
        format!(
            "duration = \"25s\"\n[cluster]\nnodes = 6\nreplicas = 1\n[config]\n\
             cluster-node-timeout = 5000\n{conf}\n\
             [[workload]]\nclients = 2\nrate = 200\nkeys = 500\nread_ratio = 0\nstart = \"3s\"\nstop = \"20s\"\n{}{}",
            fault("15s", "kill", "node-5"),
            fault("16s", "restart", "node-5")
        )
    };
    for seed in 1..=3 {
        let sim = run(&scenario(""), seed);
        assert_eq!(master_of(&sim, 4), Some(0));
        let m = sim.world.node(0).unwrap().replication();
        assert_eq!(m.stats.sync_full, 1, "seed {seed}: only the first sync");
        assert_eq!(m.stats.sync_partial_ok, 1, "seed {seed}");
        let ev = data_events(&sim, 4);
        let loaded = ev.iter().find_map(|(t, e)| match e {
            DataEvent::LoadingFromDisk { from_aof, keys, .. } => Some((*t, *from_aof, *keys)),
            _ => None,
        });
        assert_eq!(loaded.map(|l| (l.0, l.1)), Some((16 * SEC, false)));
        assert!(ev
            .iter()
            .any(|(t, e)| *t > 16 * SEC && matches!(e, DataEvent::PartialResyncAccepted { .. })));
        let r = sim.world.node(4).unwrap();
        assert_eq!(r.keyspace.len(), sim.world.node(0).unwrap().keyspace.len());
        assert_eq!(r.replication().slave_repl_offset(), m.master_repl_offset());

        let sim = run(&scenario("appendonly = \"yes\""), seed);
        let m = sim.world.node(0).unwrap().replication();
        assert_eq!(m.stats.sync_full, 2, "seed {seed}: AOF: a full sync again");
        assert_eq!(m.stats.sync_partial_ok, 0, "seed {seed}");
        assert!(data_events(&sim, 4).iter().any(|(_, e)| matches!(
            e,
            DataEvent::LoadingFromDisk { from_aof: true, keys, .. } if *keys > 0
        )));
        let r = sim.world.node(4).unwrap();
        assert_eq!(r.keyspace.len(), sim.world.node(0).unwrap().keyspace.len());
    }
}

fn get(sim: &Simulation, p: u32, key: &str, readonly: bool) -> Reply {
    let node = sim.world.node(p).expect("running");
    let flags = ClientFlags {
        readonly,
        ..ClientFlags::default()
    };
    match node.preview_command(&[b"GET", key.as_bytes()], flags) {
        ClientReply::Done(e) => e.reply,
        other => panic!("{other:?}"),
    }
}

/// node-2 holds about 190 000 keys; every node has an AOF and a save
/// point. The save points' forks stall node-2. Restarted, it loads its AOF
/// for about 0.15 s (0.65 µs a key, 1 ns a byte) and only then serves its
/// data (meanwhile a key gets `-CLUSTERDOWN`: Redis checks the cluster
/// before loading, and a process that just started is in state fail). Its
/// replica node-6, restarted from its AOF, gets a full sync; while it loads
/// the RDB its READONLY reads get `-LOADING`.
#[test]
fn loading_answers_loading_and_the_save_fork_stalls_the_master() {
    let toml = format!(
        "duration = \"40s\"\n[cluster]\nnodes = 6\nreplicas = 1\n[config]\n\
         cluster-node-timeout = 5000\ncluster-replica-no-failover = \"yes\"\n\
         appendonly = \"yes\"\nsave = \"2 150000\"\n\
         [[workload]]\nclients = 20\nrate = 40000\nkeys = 600000\nread_ratio = 0\n\
         slots = \"5461-10922\"\nstart = \"3s\"\nstop = \"20s\"\n{}{}{}{}",
        fault("25s", "kill", "node-2"),
        fault("26s", "restart", "node-2"),
        fault("28s", "kill", "node-6"),
        fault("29s", "restart", "node-6")
    );
    let mut sim = Simulation::new(scenario(&toml), 1).unwrap();
    sim.run_until(25 * SEC - 1, &mut ());
    assert_eq!(master_of(&sim, 5), Some(1), "node-6 replicates node-2");
    let keys = sim.world.node(1).unwrap().keyspace.len();
    assert!(keys > 150_000, "{keys}");
    // The save points forked: the master handled nothing meanwhile.
    let ev = data_events(&sim, 1);
    let (fork_at, fork_us) = ev
        .iter()
        .filter_map(|(t, e)| match e {
            DataEvent::Fork {
                for_replication: false,
                fork_us,
                ..
            } => Some((*t, *fork_us)),
            _ => None,
        })
        .max_by_key(|f| f.1)
        .expect("a save point's fork");
    assert!(fork_us >= 300, "{fork_us} µs");
    let sent_during: Vec<_> = sim
        .world
        .clients
        .ops
        .iter()
        .filter(|o| o.node == 1 && o.sent > fork_at && o.sent < fork_at + fork_us)
        .collect();
    assert!(sent_during.len() > 5, "{}", sent_during.len());
    for op in sent_during {
        assert!(
            op.done >= fork_at + fork_us,
            "{op:?} replied during the fork"
        );
    }
    assert!(ev
        .iter()
        .any(|(_, e)| matches!(e, DataEvent::RdbSaved { .. })));

    sim.run_until(26 * SEC + 50_000, &mut ());
    let load_us = data_events(&sim, 1)
        .iter()
        .find_map(|(_, e)| match e {
            DataEvent::LoadingFromDisk {
                from_aof: true,
                load_us,
                keys: k,
            } if *k as usize == keys => Some(*load_us),
            _ => None,
        })
        .expect("loaded its AOF");
    assert!(load_us > 100_000, "{load_us}");
    let node = sim.world.node(1).unwrap();
    assert!(node.loading());
    assert_eq!(
        get(&sim, 1, "key:2", false),
        Reply::Error("CLUSTERDOWN The cluster is down".into())
    );
    // A command without keys skips the cluster checks: `-LOADING`.
    let wait = node.preview_command(&[b"WAIT", b"0", b"0"], ClientFlags::default());
    assert_eq!(
        wait,
        ClientReply::Done(Executed {
            reply: Reply::Error("LOADING Redis is loading the dataset in memory".into()),
            propagate: Vec::new(),
        })
    );
    sim.run_until(26 * SEC + load_us + 100_000, &mut ());
    assert!(!sim.world.node(1).unwrap().loading());
    // Its data, once the cluster is ok for it (2 s after the start).
    sim.run_until(29 * SEC - 1, &mut ());
    assert!(matches!(get(&sim, 1, "key:2", false), Reply::Bulk(_)));

    // node-6's full sync: find the moment its RDB load starts.
    let mut t = 30 * SEC;
    let loaded_at = loop {
        sim.run_until(t, &mut ());
        let started = data_events(&sim, 5)
            .into_iter()
            .find_map(|(at, e)| match e {
                DataEvent::RdbLoadStarted { load_us, .. } if at > 29 * SEC => Some((at, load_us)),
                _ => None,
            });
        if let Some(s) = started {
            break s;
        }
        assert!(t < 39 * SEC, "no full sync of node-6");
        t += 10_000;
    };
    assert!(loaded_at.1 > 50_000, "{loaded_at:?}");
    assert!(sim.world.node(5).unwrap().state_ok());
    assert_eq!(
        get(&sim, 5, "key:2", true),
        Reply::Error("LOADING Redis is loading the dataset in memory".into())
    );
    sim.run_until(loaded_at.0 + loaded_at.1 + 100_000, &mut ());
    assert!(matches!(get(&sim, 5, "key:2", true), Reply::Bulk(_)));
}

#[test]
fn runs_with_persistence_and_wait_are_deterministic() {
    let toml = restart_scenario(
        "appendonly = \"yes\"\nappendfsync = \"everysec\"\nsave = \"1 1\"",
        "crash-host",
    )
    .replace(
        "stop = \"10s\"\n",
        "stop = \"10s\"\nwait = { replicas = 1, timeout = \"20ms\" }\n",
    );
    let hash = |seed| {
        let sim = run(&toml, seed);
        (sim.stats.hash.hex(), sim.stats.events, sim.client_totals())
    };
    let a = hash(5);
    assert_eq!(a, hash(5));
    assert_ne!(a.0, hash(6).0);
}

/// Node `p`'s `INFO <section>` field `key`, as an integer or text.
fn info(sim: &Simulation, p: usize, section: &str, key: &str) -> String {
    match sim.query(p, &[b"INFO", section.as_bytes()], ClientFlags::default()) {
        Ok(ClientReply::Done(Executed {
            reply: Reply::Bulk(b),
            ..
        })) => info_field(&String::from_utf8(b).unwrap(), key).expect(key),
        other => panic!("{other:?}"),
    }
}

/// node-5 (node-1's replica) is down while node-1 takes 6 MB of writes (more
/// than its backlog) and comes back at 9 s for a full sync. A sync to disk
/// is `rdbSaveBackground`: when its child is done, `dirty` drops by what it
/// was at the fork and `lastsave` is now (`backgroundSaveDoneHandlerDisk`);
/// a diskless one's child changes neither (`backgroundSaveDoneHandlerSocket`).
#[test]
fn a_full_sync_to_disk_counts_as_a_save_and_a_diskless_one_does_not() {
    let toml = |diskless: &str| {
        format!(
            "duration = \"15s\"\n[cluster]\nnodes = 6\nreplicas = 1\n[config]\n\
             cluster-node-timeout = 5000\ncluster-replica-no-failover = \"yes\"\n\
             repl-diskless-sync = \"{diskless}\"\n\
             [[workload]]\nclients = 2\nrate = 2000\nkeys = 5000\nvalue_size = 1000\n\
             read_ratio = 0\nslots = \"0-5460\"\nstart = \"4s\"\nstop = \"7s\"\n{}{}",
            fault("3s", "kill", "node-5"),
            fault("9s", "restart", "node-5")
        )
    };
    let field = |sim: &Simulation, key| info(sim, 0, "persistence", key);
    let disk = run(&toml("no"), 1);
    let diskless = run(&toml("yes"), 1);
    for sim in [&disk, &diskless] {
        assert_eq!(master_of(sim, 4), Some(0));
        assert_eq!(sim.world.node(0).unwrap().replication().stats.sync_full, 2);
        assert_eq!(field(sim, "rdb_last_bgsave_status"), "ok");
    }
    let writes = diskless.client_totals().writes.acknowledged;
    assert!(writes > 5000, "{writes}");
    assert_eq!(
        field(&diskless, "rdb_changes_since_last_save"),
        writes.to_string()
    );
    assert_eq!(field(&disk, "rdb_changes_since_last_save"), "0");
    let saved = |sim: &Simulation| -> i64 { field(sim, "rdb_last_save_time").parse().unwrap() };
    // The diskless run's is the start; the disk sync forked at about 9 s.
    assert!(
        (9..=11).contains(&(saved(&disk) - saved(&diskless))),
        "{} {}",
        saved(&disk),
        saved(&diskless)
    );
}

/// `vm.overcommit_memory` 0 on 64 MB hosts; node-1 takes about 45 MB from
/// 3 s to 6 s with a save point `save 1 1`. Its first BGSAVEs fork; once
/// it uses more than its host has free, `fork()` fails: Redis logs `Can't
/// save in background: fork: Cannot allocate memory`, `lastbgsave_status`
/// is `err`, and `serverCron` tries again only more than
/// `CONFIG_BGSAVE_RETRY_DELAY` (5 s) after the failed attempt.
#[test]
fn a_save_points_fork_fails_without_memory_and_is_retried_after_5_seconds() {
    let toml = "duration = \"30s\"\n[cluster]\nnodes = 3\nreplicas = 0\n\
                host_memory = \"64mb\"\novercommit_memory = 0\n[config]\nsave = \"1 1\"\n\
                [[workload]]\nclients = 10\nrate = 15000\nkeys = 60000\nslots = \"0-5460\"\n\
                read_ratio = 0\nvalue_size = 2000\nstart = \"3s\"\nstop = \"6s\"\n";
    let sim = run(toml, 1);
    let ev = data_events(&sim, 0);
    let forks = ev
        .iter()
        .filter(|(_, e)| {
            matches!(
                e,
                DataEvent::Fork {
                    for_replication: false,
                    ..
                }
            )
        })
        .count();
    let failed: Vec<SimTime> = ev
        .iter()
        .filter(|(_, e)| {
            matches!(
                e,
                DataEvent::ForkFailed {
                    for_replication: false
                }
            )
        })
        .map(|(t, _)| *t)
        .collect();
    assert!(forks > 0 && failed.len() >= 3, "{forks} {failed:?}");
    assert!(failed[0] > 4 * SEC, "{failed:?}");
    for w in failed.windows(2) {
        assert!((5 * SEC..7 * SEC).contains(&(w[1] - w[0])), "{failed:?}");
    }
    // Successful forks only count in `total_forks`.
    assert_eq!(info(&sim, 0, "stats", "total_forks"), forks.to_string());
    assert_eq!(
        info(&sim, 0, "persistence", "rdb_last_bgsave_status"),
        "err"
    );
    let log = sim.redis_log();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(
        (log[0].proc, log[0].line.as_str(), log[0].count as usize),
        (
            0,
            "Can't save in background: fork: Cannot allocate memory",
            failed.len()
        )
    );
    assert!(
        sim.world.warnings[0].starts_with("node-1: fork() for a save point's BGSAVE failed at"),
        "{:?}",
        sim.world.warnings
    );
}

/// After a failed BGSAVE (save points set, `stop-writes-on-bgsave-error
/// yes`, Redis's default) a master refuses its clients' writes with
/// `-MISCONF` and keeps serving reads; with `stop-writes-on-bgsave-error
/// no` the writes go on.
#[test]
fn writes_get_misconf_after_a_failed_bgsave_unless_stop_writes_is_off() {
    const MISCONF: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";
    let toml = |stop: &str| {
        format!(
            "duration = \"12s\"\n[cluster]\nnodes = 3\nreplicas = 0\n\
             host_memory = \"64mb\"\novercommit_memory = 0\n[config]\nsave = \"1 1\"\n\
             stop-writes-on-bgsave-error = \"{stop}\"\n\
             [[workload]]\nclients = 10\nrate = 15000\nkeys = 60000\nslots = \"0-5460\"\n\
             read_ratio = 0.2\nvalue_size = 2000\nstart = \"3s\"\nstop = \"10s\"\n"
        )
    };
    let sim = run(&toml("yes"), 1);
    let first_failure = data_events(&sim, 0)
        .iter()
        .find(|(_, e)| {
            matches!(
                e,
                DataEvent::ForkFailed {
                    for_replication: false
                }
            )
        })
        .map(|&(t, _)| t)
        .expect("the save point's fork fails");
    let refused = writes_refused_with(&sim, MISCONF);
    assert!(refused.len() > 1000, "{}", refused.len());
    assert!(refused.iter().all(|r| r.done > first_failure));
    // Writes before the failure went through.
    let c = &sim.world.clients;
    assert!(c.ops.iter().any(|r| r.cmd.is_write() && r.outcome.is_ok()));

    let sim = run(&toml("no"), 1);
    let c = &sim.world.clients;
    assert!(
        c.ops.iter().all(|r| r.outcome.is_ok()),
        "no MISCONF with stop-writes-on-bgsave-error no"
    );
}
