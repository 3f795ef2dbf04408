//! A node's memory: `used_memory` and its peak, the `maxmemory` check of
//! `processCommand()` (`performEvictions()`, `getMaxmemoryState()`), and the
//! active expiry of `databasesCron()`. The model and its calibration are in
//! `docs/memory-model.md`; the choice of keys is in
//! [`super::keyspace`] (`evict.rs`, `expire.rs`).

use std::fmt::Write;

use std::rc::Rc;

use super::argv::ReplCommand;
use super::keyspace::{EvictResult, Keyspace};
use super::{Effect, Node};

/// `shared.oomerr`, without the leading `-`.
pub const OOM_ERR: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// `used_memory` of a cluster node with no key: a fresh Redis 7.0.15
/// cluster node (jemalloc 5.3.0, x86-64) after `CLUSTER ADDSLOTSRANGE 0
/// 16383`, one idle client connected, measured with `MEMORY STATS`
/// (`total.allocated`; `startup.allocated` was 1 600 088).
pub const BASE_USED_MEMORY: u64 = 1_663_104;

/// `used_memory` of a standalone node (`cluster-enabled no`) with no key,
/// measured the same way (`startup.allocated` was 876 416): no cluster
/// state, no `slots_to_keys`.
pub const BASE_USED_MEMORY_STANDALONE: u64 = 939_432;

impl Node {
    /// `used_memory`: [`BASE_USED_MEMORY`] (or
    /// [`BASE_USED_MEMORY_STANDALONE`]), the dataset
    /// ([`Keyspace::used_memory`]) and the replication buffer (the backlog
    /// and what replicas' output buffers still hold).
    pub fn used_memory(&self) -> u64 {
        self.used_memory_with(&self.keyspace)
    }

    fn used_memory_with(&self, keyspace: &Keyspace) -> u64 {
        let base = if self.setup.config.cluster_enabled {
            BASE_USED_MEMORY
        } else {
            BASE_USED_MEMORY_STANDALONE
        };
        base + keyspace.used_memory() + self.repl.repl_buffer_mem()
    }

    /// `used_memory_peak`.
    pub fn used_memory_peak(&self) -> u64 {
        self.used_memory_peak.max(self.used_memory())
    }

    /// `maxmemory`, bytes (0: no limit).
    pub fn maxmemory(&self) -> u64 {
        self.setup.config.maxmemory_bytes
    }

    /// Memory the host has free for a `fork()` child of this node, as the
    /// world computes it under `vm.overcommit_memory` 0 (`None`: forks
    /// never fail): a fork fails when the node uses more.
    pub fn set_host_memory_free(&mut self, free: Option<u64>) {
        self.host_memory_free = free;
    }

    /// Copy-on-write of this node's fork child so far, if one runs: host
    /// memory it uses beyond the parent's.
    pub fn child_cow_bytes(&self) -> Option<u64> {
        self.repl.master.current_cow_size()
    }

    /// Record the peak, as `call()`, `beforeSleep()` and `serverCron()` do.
    pub(super) fn record_peak_memory(&mut self) {
        self.used_memory_peak = self.used_memory_peak();
    }

    /// `performEvictions()` before a command: whether the node is out of
    /// memory (`EVICT_FAIL`) after evicting what the policy allows. Nothing
    /// is done without `maxmemory`, while loading, on a replica that
    /// ignores `maxmemory` (the default), or while clients are paused.
    pub(super) fn perform_evictions(
        &self,
        keyspace: &mut Keyspace,
        propagate: &mut Vec<Rc<ReplCommand>>,
    ) -> bool {
        let maxmemory = self.maxmemory();
        let cfg = &self.setup.config;
        if maxmemory == 0
            || self.repl.replica.loading()
            || (!self.is_master() && cfg.replica_ignore_maxmemory)
            || self.writes_paused()
        {
            return false;
        }
        let mem_used = self
            .used_memory_with(keyspace)
            .saturating_sub(self.repl.not_counted_memory(cfg));
        if mem_used <= maxmemory {
            return false;
        }
        keyspace.evict(mem_used - maxmemory, self.now_ms, propagate) == EvictResult::Fail
    }

    /// `updateMaxmemory` (`CONFIG SET maxmemory`): with a limit, a warning
    /// if it is below the memory used, then `startEvictionTimeProc`, whose
    /// `performEvictions` runs at once (the next event loop iteration,
    /// before any command); the evictions' `DEL`s are propagated.
    pub(super) fn update_maxmemory(&mut self, out: &mut Vec<Effect>) {
        let maxmemory = self.maxmemory();
        if maxmemory == 0 {
            return;
        }
        let used = self
            .used_memory()
            .saturating_sub(self.repl.not_counted_memory(&self.setup.config));
        if maxmemory < used {
            out.push(Effect::MaxmemoryBelowUsage { maxmemory, used });
        }
        let mut keyspace = std::mem::take(&mut self.keyspace);
        keyspace.child_active = self.has_active_child_process();
        let mut evicted = Vec::new();
        self.perform_evictions(&mut keyspace, &mut evicted);
        self.keyspace = keyspace;
        if !evicted.is_empty() {
            self.feed_commands(&evicted, out);
        }
    }

    /// `INFO [section ...]` (`genRedisInfoString`) with `keyspace` as my
    /// dataset: the `memory`, `persistence` and `stats` sections, with the
    /// fields redsim models, in Redis's order and format. No section,
    /// `default`, `all` or `everything`: all three; an unknown section:
    /// nothing.
    pub(super) fn info(&self, keyspace: &Keyspace, sections: &[&[u8]]) -> String {
        let want = |name: &str| {
            sections.is_empty()
                || sections.iter().any(|s| {
                    ["default", "all", "everything", name]
                        .iter()
                        .any(|n| s.eq_ignore_ascii_case(n.as_bytes()))
                })
        };
        let mut info = String::new();
        if want("memory") {
            let used = self.used_memory_with(keyspace);
            let peak = self.used_memory_peak.max(used);
            let cfg = &self.setup.config;
            let _ = write!(
                info,
                "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\nused_memory_peak:{peak}\r\nused_memory_peak_human:{}\r\nmaxmemory:{}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\nmem_not_counted_for_evict:{}\r\nmem_total_replication_buffers:{}\r\n",
                bytes_to_human(used),
                bytes_to_human(peak),
                cfg.maxmemory_bytes,
                bytes_to_human(cfg.maxmemory_bytes),
                cfg.maxmemory_policy.name(),
                self.repl.not_counted_memory(cfg),
                self.repl.repl_buffer_mem(),
            );
        }
        if want("persistence") {
            if !info.is_empty() {
                info.push_str("\r\n");
            }
            let bgsave = self.has_active_child_process();
            info.push_str(&self.persist.info(self.loading(), bgsave));
        }
        if want("stats") {
            if !info.is_empty() {
                info.push_str("\r\n");
            }
            let (r, k) = (self.repl.stats, keyspace.stats);
            let _ = write!(
                info,
                "# Stats\r\nsync_full:{}\r\nsync_partial_ok:{}\r\nsync_partial_err:{}\r\nexpired_keys:{}\r\nevicted_keys:{}\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\ntotal_forks:{}\r\n",
                r.sync_full,
                r.sync_partial_ok,
                r.sync_partial_err,
                k.expired_keys,
                k.evicted_keys,
                k.keyspace_hits,
                k.keyspace_misses,
                r.total_forks,
            );
        }
        info
    }

    /// `databasesCron()`: the hash tables' resize when no fork child runs,
    /// and the expiry, `hz` times a second (the cron ticks
    /// every 100 ms, so `hz / 10` cycles a tick, or one every `10 / hz`
    /// ticks): `activeExpireCycle(SLOW)` on a master, nothing on a
    /// replica (it waits for its master's `DEL`s), nothing while clients
    /// are paused. Returns the `DEL`s to propagate.
    pub(super) fn databases_cron(&mut self) -> Vec<Rc<ReplCommand>> {
        let mut dels = Vec::new();
        if !self.has_active_child_process() {
            self.keyspace.try_resize_hash_tables();
        }
        if !self.is_master() || self.writes_paused() || self.repl.replica.loading() {
            return dels;
        }
        let cfg = &self.setup.config;
        let (hz, effort) = (u64::from(cfg.hz), cfg.active_expire_effort);
        let i = self.cron_iteration;
        let cycles = (i + 1) * hz / 10 - i * hz / 10;
        for _ in 0..cycles {
            self.keyspace
                .active_expire_cycle(self.now_ms, cfg.hz, effort, &mut dels);
        }
        dels
    }
}

/// `bytesToHuman`.
fn bytes_to_human(n: u64) -> String {
    const K: f64 = 1024.0;
    let d = n as f64;
    match n {
        0..1024 => format!("{n}B"),
        1024..1_048_576 => format!("{:.2}K", d / K),
        1_048_576..1_073_741_824 => format!("{:.2}M", d / (K * K)),
        1_073_741_824..1_099_511_627_776 => format!("{:.2}G", d / (K * K * K)),
        _ => format!("{:.2}T", d / (K * K * K * K)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::config::{Config, MaxmemoryPolicy};
    use super::super::keyspace::{Caller, Executed, Reply};
    use super::super::route::tests::{key_in, replica_sim, Sim, MINE};
    use super::super::route::ClientFlags;
    use super::super::serve::ClientReply;
    use super::super::{Input, CRON_PERIOD};
    use super::*;
    use crate::engine::SimTime;

    const T: SimTime = 1_000_000_000;

    fn config(policy: MaxmemoryPolicy, dataset: u64) -> Config {
        Config {
            maxmemory_bytes: BASE_USED_MEMORY + dataset,
            maxmemory_policy: policy,
            ..Config::default()
        }
    }

    fn run(s: &mut Sim, cmd: &str) -> Executed {
        let argv: Vec<&[u8]> = cmd.split(' ').map(str::as_bytes).collect();
        match s
            .node
            .client_command(T, &argv, &mut ClientFlags::default(), &mut Vec::new())
        {
            ClientReply::Done(e) => e,
            other => panic!("{cmd}: {other:?}"),
        }
    }

    /// Keys of my slots, `k<i>...`.
    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| key_in(MINE, &format!("k{i}-"))).collect()
    }

    #[test]
    fn noeviction_refuses_writes_at_the_limit_with_redis_error() {
        let mut s = Sim::cluster(config(MaxmemoryPolicy::Noeviction, 20_000));
        let v = "x".repeat(100);
        let ks = keys(200);
        let mut refused = None;
        for (i, k) in ks.iter().enumerate() {
            let before = s.node.used_memory();
            let r = run(&mut s, &format!("SET {k} {v}")).reply;
            if r != Reply::Ok {
                assert_eq!(r, Reply::Error(OOM_ERR.into()));
                assert_eq!(
                    OOM_ERR,
                    "OOM command not allowed when used memory > 'maxmemory'."
                );
                assert!(before > s.node.maxmemory(), "refused only over the limit");
                refused = Some(i);
                break;
            }
        }
        let i = refused.expect("the limit was reached");
        assert!(s.node.used_memory() > s.node.maxmemory());
        // Reads, and writes that do not add memory (DEL), still work.
        assert_eq!(
            run(&mut s, &format!("GET {}", ks[0])).reply,
            Reply::Bulk(v.clone().into_bytes())
        );
        assert_eq!(run(&mut s, &format!("GET {}", ks[i])).reply, Reply::Nil);
        for k in &ks[..10] {
            assert_eq!(run(&mut s, &format!("DEL {k}")).reply, Reply::Int(1));
        }
        assert_eq!(run(&mut s, &format!("SET {} {v}", ks[i])).reply, Reply::Ok);
        assert_eq!(s.node.keyspace.stats.evicted_keys, 0);
        assert!(s.node.used_memory_peak() > s.node.maxmemory());
    }

    #[test]
    fn a_master_evicts_before_the_command_and_propagates_the_dels() {
        let mut s = Sim::cluster(config(MaxmemoryPolicy::AllkeysLru, 20_000));
        let v = "x".repeat(100);
        let ks = keys(300);
        for k in &ks {
            let e = run(&mut s, &format!("SET {k} {v}"));
            assert_eq!(e.reply, Reply::Ok);
            // The DELs of what was evicted come first, then the SET.
            let (set, dels) = e.propagate.split_last().unwrap();
            assert_eq!(&set.argv[0], b"SET");
            assert!(dels
                .iter()
                .all(|d| &d.argv[0] == b"DEL" && d.argv.len() == 2));
        }
        let evicted = s.node.keyspace.stats.evicted_keys;
        assert!(evicted > 100, "{evicted}");
        assert_eq!(s.node.keyspace.len() as u64, 300 - evicted);
        // Before each command the node is brought back under the limit.
        run(&mut s, &format!("GET {}", ks[0]));
        let not_counted = s.node.repl.not_counted_memory(&s.node.setup.config);
        assert!(s.node.used_memory() - not_counted <= s.node.maxmemory());
    }

    #[test]
    fn a_replica_does_not_evict_unless_told_to() {
        for ignore in [true, false] {
            let mut cfg = config(MaxmemoryPolicy::AllkeysRandom, 20_000);
            cfg.replica_ignore_maxmemory = ignore;
            let mut r = replica_sim(cfg);
            let v = "x".repeat(100);
            for k in keys(300) {
                r.node.keyspace.execute(
                    &[&b"SET"[..], k.as_bytes(), v.as_bytes()],
                    0,
                    true,
                    Caller::Master,
                );
            }
            assert!(r.node.used_memory() > r.node.maxmemory());
            let mut c = ClientFlags {
                readonly: true,
                ..ClientFlags::default()
            };
            r.node
                .client_command(T, &[&b"GET"[..], b"bar"], &mut c, &mut Vec::new());
            let evicted = r.node.keyspace.stats.evicted_keys;
            assert_eq!(evicted == 0, ignore, "replica-ignore-maxmemory {ignore}");
        }
    }

    #[test]
    fn info_reports_memory_and_stats_as_redis_prints_them() {
        let mut s = Sim::cluster(config(MaxmemoryPolicy::AllkeysLru, 20_000));
        let v = "x".repeat(100);
        for k in keys(300) {
            run(&mut s, &format!("SET {k} {v}"));
        }
        let Reply::Bulk(text) = run(&mut s, "INFO").reply else {
            panic!("INFO is a bulk string");
        };
        let text = String::from_utf8(text).unwrap();
        let field = |name: &str| {
            text.split("\r\n")
                .find_map(|l| l.strip_prefix(&format!("{name}:")))
                .unwrap_or_else(|| panic!("{name} in {text}"))
                .to_string()
        };
        assert!(text.starts_with("# Memory\r\nused_memory:"));
        assert!(text.contains("\r\n\r\n# Stats\r\n"));
        assert_eq!(field("used_memory"), s.node.used_memory().to_string());
        assert_eq!(field("maxmemory"), s.node.maxmemory().to_string());
        assert_eq!(field("maxmemory_human"), "1.61M");
        assert_eq!(field("maxmemory_policy"), "allkeys-lru");
        let evicted = s.node.keyspace.stats.evicted_keys;
        assert!(evicted > 0);
        assert_eq!(field("evicted_keys"), evicted.to_string());
        assert_eq!(bytes_to_human(1023), "1023B");
        assert_eq!(bytes_to_human(1536), "1.50K");
        assert_eq!(bytes_to_human(8 << 30), "8.00G");
        // One section, case-insensitive; an unknown one is empty.
        let Reply::Bulk(stats) = run(&mut s, "INFO STATS").reply else {
            panic!("INFO STATS is a bulk string");
        };
        assert!(stats.starts_with(b"# Stats\r\nsync_full:"));
        assert_eq!(run(&mut s, "INFO nosuchsection").reply, Reply::Bulk(vec![]));
    }

    #[test]
    fn active_expiry_runs_on_masters_only() {
        let mut s = Sim::cluster(Config::default());
        for k in keys(500) {
            run(&mut s, &format!("SET {k} v PX 50"));
        }
        let persistent = key_in(MINE, "persistent");
        assert_eq!(run(&mut s, &format!("SET {persistent} v")).reply, Reply::Ok);
        let mut out = Vec::new();
        for i in 1..=3 {
            s.node.handle(T + i * CRON_PERIOD, Input::Cron, &mut out);
        }
        // 500 expired keys: loops of 20 until few are left expired.
        assert_eq!(s.node.keyspace.stats.expired_keys, 500);
        assert_eq!(s.node.keyspace.len(), 1);

        let mut r = replica_sim(Config::default());
        for k in keys(50) {
            r.node.keyspace.execute(
                &[&b"SET"[..], k.as_bytes(), b"v", b"PX", b"50"],
                super::super::mstime(T),
                true,
                Caller::Master,
            );
        }
        for i in 1..=3 {
            r.node.handle(T + i * CRON_PERIOD, Input::Cron, &mut out);
        }
        assert_eq!(r.node.keyspace.stats.expired_keys, 0);
        assert_eq!(r.node.keyspace.len(), 50, "kept until the master's DELs");
    }
}
