//! Eviction as Redis 7.0.15 approximates it (`src/evict.c`): the 24-bit
//! LRU clock, the 8-bit logarithmic LFU counter, `maxmemory-samples` keys
//! sampled into the 16-entry eviction pool, and the random policies.
//!
//! What the node decides (`performEvictions` in `processCommand`: whether
//! it is over `maxmemory`, by how much, whether it may evict at all) is in
//! `serve.rs`; this module frees a given amount of the dataset.
//!
//! Sampling: Redis samples with `dictGetSomeKeys` (adjacent buckets of a
//! hash table, i.e. keys in no particular order) from the main dictionary
//! (`allkeys-*`) or the `expires` one (`volatile-*`). Here every sample is
//! an independent random position of the insertion-ordered dictionary (the
//! order of positions is the order of insertion, so adjacent positions
//! would be keys of the same age), and a `volatile-*` sample keeps only
//! keys with a TTL, probing at most 16 positions per key wanted before
//! walking the dictionary from a random position.

use rand::RngExt;

use std::rc::Rc;

use super::{Entry, Keyspace, ReplCommand};
use crate::node::config::{Config, MaxmemoryPolicy};

/// `LRU_CLOCK_MAX`: the clock has 24 bits.
pub const LRU_CLOCK_MAX: u32 = (1 << 24) - 1;
/// `LRU_CLOCK_RESOLUTION`: one tick a second.
pub const LRU_CLOCK_RESOLUTION_MS: i64 = 1000;
/// `LFU_INIT_VAL`: the counter of a new object.
pub const LFU_INIT_VAL: u8 = 5;
/// `EVPOOL_SIZE`.
pub const EVPOOL_SIZE: usize = 16;

/// `LRU_CLOCK()` at Unix time `now_ms` (`getLRUClock`).
pub fn lru_clock(now_ms: i64) -> u32 {
    ((now_ms / LRU_CLOCK_RESOLUTION_MS) as u64 & u64::from(LRU_CLOCK_MAX)) as u32
}

/// `estimateObjectIdleTime`: ms since the access recorded in `lru`, the
/// clock wrapping after 194 days.
pub fn estimate_idle_time_ms(lru: u32, now_ms: i64) -> u64 {
    let clock = u64::from(lru_clock(now_ms));
    let lru = u64::from(lru);
    let ticks = if clock >= lru {
        clock - lru
    } else {
        clock + (u64::from(LRU_CLOCK_MAX) - lru)
    };
    ticks * LRU_CLOCK_RESOLUTION_MS as u64
}

/// `LFUGetTimeInMinutes`: 16 bits of Unix minutes.
fn lfu_time_in_minutes(now_ms: i64) -> u32 {
    ((now_ms / 1000 / 60) & 65535) as u32
}

/// `LFUDecrAndReturn`: the counter of `lru` after one decrement per
/// `lfu-decay-time` minutes elapsed since its last decrement time.
pub fn lfu_decr_and_return(lru: u32, now_ms: i64, lfu_decay_time: u32) -> u8 {
    let ldt = lru >> 8;
    let counter = lru & 255;
    let now = lfu_time_in_minutes(now_ms);
    // `LFUTimeElapsed`.
    let elapsed = if now >= ldt {
        now - ldt
    } else {
        65535 - ldt + now
    };
    let periods = elapsed.checked_div(lfu_decay_time).unwrap_or(0);
    counter.saturating_sub(periods) as u8
}

/// `LFULogIncr` with the uniform draw `r` in [0, 1): the counter grows by
/// one with probability `1 / ((counter - LFU_INIT_VAL) * lfu_log_factor + 1)`
/// (always at or below `LFU_INIT_VAL`), saturating at 255.
pub fn lfu_log_incr(counter: u8, lfu_log_factor: u32, r: f64) -> u8 {
    if counter == 255 {
        return 255;
    }
    let baseval = f64::from(counter.saturating_sub(LFU_INIT_VAL));
    let p = 1.0 / (baseval * f64::from(lfu_log_factor) + 1.0);
    if r < p {
        counter + 1
    } else {
        counter
    }
}

/// The settings that shape how keys age and which are evicted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryPolicy {
    pub maxmemory_policy: MaxmemoryPolicy,
    pub maxmemory_samples: u32,
    pub lfu_log_factor: u32,
    /// Minutes.
    pub lfu_decay_time: u32,
}

impl Default for MemoryPolicy {
    fn default() -> Self {
        MemoryPolicy::DEFAULT
    }
}

impl MemoryPolicy {
    /// Redis 7.0.15's defaults (what [`Config::default`] holds). Cheap: a
    /// keyspace is taken out of its node (`mem::take`) for every command.
    pub const DEFAULT: MemoryPolicy = MemoryPolicy {
        maxmemory_policy: MaxmemoryPolicy::Noeviction,
        maxmemory_samples: 5,
        lfu_log_factor: 10,
        lfu_decay_time: 1,
    };

    pub fn from_config(c: &Config) -> MemoryPolicy {
        MemoryPolicy {
            maxmemory_policy: c.maxmemory_policy,
            maxmemory_samples: c.maxmemory_samples,
            lfu_log_factor: c.lfu_log_factor,
            lfu_decay_time: c.lfu_decay_time_min,
        }
    }

    /// `MAXMEMORY_FLAG_LFU`.
    pub fn is_lfu(&self) -> bool {
        use MaxmemoryPolicy::*;
        matches!(self.maxmemory_policy, VolatileLfu | AllkeysLfu)
    }

    /// `MAXMEMORY_FLAG_ALLKEYS`.
    fn allkeys(&self) -> bool {
        use MaxmemoryPolicy::*;
        matches!(
            self.maxmemory_policy,
            AllkeysLru | AllkeysLfu | AllkeysRandom
        )
    }

    /// The `lru` field of a new object (`createObject`).
    pub(super) fn new_object_lru(&self, now_ms: i64) -> u32 {
        if self.is_lfu() {
            self.lfu_lru(now_ms, LFU_INIT_VAL)
        } else {
            lru_clock(now_ms)
        }
    }

    /// The LFU `lru` field: this minute, and `counter`.
    pub(super) fn lfu_lru(&self, now_ms: i64, counter: u8) -> u32 {
        (lfu_time_in_minutes(now_ms) << 8) | u32::from(counter)
    }

    /// The pool's score of `e` (higher: a better candidate): idle ms,
    /// `255 - counter`, or the nearer the expiry the higher.
    fn score(&self, e: &Entry, now_ms: i64) -> u64 {
        use MaxmemoryPolicy::*;
        match self.maxmemory_policy {
            VolatileLfu | AllkeysLfu => {
                255 - u64::from(lfu_decr_and_return(e.lru, now_ms, self.lfu_decay_time))
            }
            VolatileTtl => u64::MAX - e.expire_at_ms.unwrap_or(0) as u64,
            _ => estimate_idle_time_ms(e.lru, now_ms),
        }
    }
}

/// One entry of the eviction pool.
#[derive(Clone, Debug)]
pub(super) struct PoolEntry {
    idle: u64,
    key: Vec<u8>,
}

/// What `performEvictions` achieved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvictResult {
    /// Enough memory was freed (`EVICT_OK`).
    Ok,
    /// Nothing (more) could be evicted (`EVICT_FAIL`).
    Fail,
}

impl Keyspace {
    /// `performEvictions`' loop: evict keys by the policy until
    /// `mem_tofree` bytes of the dataset are freed, each one counted in
    /// `evicted_keys` and propagated as `DEL` (into `propagate`).
    /// `noeviction`, or no key the policy may pick, is `Fail`. The time
    /// limit of `maxmemory-eviction-tenacity` is not modelled: evicting
    /// costs no simulated time, so the loop runs to its end.
    pub fn evict(
        &mut self,
        mem_tofree: u64,
        now_ms: i64,
        propagate: &mut Vec<Rc<ReplCommand>>,
    ) -> EvictResult {
        use MaxmemoryPolicy::*;
        let policy = self.policy.maxmemory_policy;
        if policy == Noeviction {
            return EvictResult::Fail;
        }
        let mut freed = 0;
        while freed < mem_tofree {
            let best = match policy {
                AllkeysRandom | VolatileRandom => self.random_key(),
                _ => self.pool_best(now_ms),
            };
            let Some(key) = best else {
                return EvictResult::Fail;
            };
            let before = self.used_memory();
            self.remove(&key);
            freed += before - self.used_memory();
            self.stats.evicted_keys += 1;
            propagate.push(ReplCommand::from_slices(&[b"DEL", &key]));
        }
        EvictResult::Ok
    }

    /// The LRU / LFU / TTL choice: fill the pool, then take its best entry
    /// that still exists (a deleted one is a ghost, dropped), refilling
    /// while none does.
    fn pool_best(&mut self, now_ms: i64) -> Option<Vec<u8>> {
        loop {
            if self.candidates() == 0 {
                return None;
            }
            self.eviction_pool_populate(now_ms);
            while let Some(e) = self.pool.pop() {
                let live = self
                    .dict
                    .get(e.key.as_slice())
                    .is_some_and(|v| self.policy.allkeys() || v.expire_at_ms.is_some());
                if live {
                    return Some(e.key);
                }
            }
        }
    }

    /// Keys the policy may evict: all, or those with a TTL.
    fn candidates(&self) -> usize {
        if self.policy.allkeys() {
            self.dict.len()
        } else {
            self.volatile
        }
    }

    /// `evictionPoolPopulate`: sample keys, insert each by score into the
    /// pool (ascending), dropping the worst when it is full.
    fn eviction_pool_populate(&mut self, now_ms: i64) {
        let samples = self.sample_positions(self.policy.maxmemory_samples as usize);
        for pos in samples {
            let (key, e) = self.dict.get_index(pos).expect("sampled position");
            let idle = self.policy.score(e, now_ms);
            let pool = &mut self.pool;
            let k = pool.iter().take_while(|p| p.idle < idle).count();
            if k == 0 && pool.len() == EVPOOL_SIZE {
                // Worse than the worst, and no room.
                continue;
            }
            let entry = PoolEntry {
                idle,
                key: key.to_vec(),
            };
            if pool.len() < EVPOOL_SIZE {
                pool.insert(k, entry);
            } else {
                // Full: drop the worst (first) and insert at k-1.
                pool.remove(0);
                pool.insert(k - 1, entry);
            }
        }
    }

    /// `dictGetRandomKey` of the main dictionary or of the keys with a TTL.
    fn random_key(&mut self) -> Option<Vec<u8>> {
        let pos = *self.sample_positions(1).first()?;
        self.dict.get_index(pos).map(|(k, _)| k.to_vec())
    }

    /// Up to `count` random positions of keys the policy may evict.
    fn sample_positions(&mut self, count: usize) -> Vec<usize> {
        let n = self.dict.len();
        if self.candidates() == 0 {
            return Vec::new();
        }
        let allkeys = self.policy.allkeys();
        let mut out = Vec::with_capacity(count);
        let mut probes = 0;
        while out.len() < count && probes < 16 * count {
            let pos = self.rng().random_range(0..n);
            probes += 1;
            if allkeys || self.dict[pos].expire_at_ms.is_some() {
                out.push(pos);
            }
        }
        if out.is_empty() {
            // Few keys with a TTL: walk to the next one.
            let start = self.rng().random_range(0..n);
            out.extend(
                (0..n)
                    .map(|i| (start + i) % n)
                    .find(|&p| self.dict[p].expire_at_ms.is_some()),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests;
