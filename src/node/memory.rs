//! A node's memory: `used_memory` and its peak, the `maxmemory` check of
//! `processCommand()` (`performEvictions()`, `getMaxmemoryState()`), and the
//! active expiry of `databasesCron()`. The model and its calibration are in
//! `docs/memory-model.md`; the choice of keys is in
//! [`super::keyspace`] (`evict.rs`, `expire.rs`).

use super::keyspace::{EvictResult, Keyspace};
use super::Node;

/// `shared.oomerr`, without the leading `-`.
pub const OOM_ERR: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// `used_memory` of a cluster node with no key: a fresh Redis 7.0.15
/// cluster node (jemalloc 5.3.0, x86-64) after `CLUSTER ADDSLOTSRANGE 0
/// 16383`, one idle client connected, measured with `MEMORY STATS`
/// (`total.allocated`; `startup.allocated` was 1 600 088).
pub const BASE_USED_MEMORY: u64 = 1_663_104;

impl Node {
    /// `used_memory`: [`BASE_USED_MEMORY`], the dataset
    /// ([`Keyspace::used_memory`]) and the replication buffer (the backlog
    /// and what replicas' output buffers still hold).
    pub fn used_memory(&self) -> u64 {
        self.used_memory_with(&self.keyspace)
    }

    fn used_memory_with(&self, keyspace: &Keyspace) -> u64 {
        BASE_USED_MEMORY + keyspace.used_memory() + self.repl.repl_buffer_mem()
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
        propagate: &mut Vec<Vec<Vec<u8>>>,
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

    /// `databasesCron()`'s expiry, `hz` times a second (the cron ticks
    /// every 100 ms, so `hz / 10` cycles a tick, or one every `10 / hz`
    /// ticks): `activeExpireCycle(SLOW)` on a master, nothing on a
    /// replica (it waits for its master's `DEL`s), nothing while clients
    /// are paused. Returns the `DEL`s to propagate.
    pub(super) fn databases_cron(&mut self) -> Vec<Vec<Vec<u8>>> {
        let mut dels = Vec::new();
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
            ClientReply::Blocked => panic!("{cmd}: blocked"),
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
            assert_eq!(set[0], b"SET");
            assert!(dels.iter().all(|d| d[0] == b"DEL" && d.len() == 2));
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
