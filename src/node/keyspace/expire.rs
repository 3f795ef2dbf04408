//! Active expiry: `activeExpireCycle(ACTIVE_EXPIRE_CYCLE_SLOW)` of Redis
//! 7.0.15 (`src/expire.c`), run by a master's `serverCron` `hz` times a
//! second.
//!
//! Each loop samples up to 20 keys with a TTL (more with
//! `active-expire-effort`), deletes the expired ones (counted in
//! `expired_keys`, `DEL` propagated), and the cycle goes on while more than
//! 10 % of the sampled keys were expired. Redis walks the buckets of the
//! `expires` table with a cursor; here the cursor walks the positions of the
//! main dictionary, skipping keys without a TTL (at most 20 positions per
//! key wanted, scaled by the share of keys without a TTL, as Redis checks
//! at most 20 buckets per key).
//!
//! Time budget: Redis stops a cycle once it has used
//! `25 % (+2 % per effort step) / hz` of a second, checking every 16
//! loops. Simulated commands cost no time, so the budget is counted in
//! loops: one loop is taken to cost 1 µs per key it wants to sample (20 µs
//! by default), i.e. at most 1250 loops (25 000 keys) per cycle at `hz` 10.
//! The fast cycle of `beforeSleep` is not modelled.

use std::rc::Rc;

use super::{Keyspace, ReplCommand};

/// `ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP`.
pub const ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP: u64 = 20;
/// `ACTIVE_EXPIRE_CYCLE_SLOW_TIME_PERC`.
pub const ACTIVE_EXPIRE_CYCLE_SLOW_TIME_PERC: u64 = 25;
/// `ACTIVE_EXPIRE_CYCLE_ACCEPTABLE_STALE`.
pub const ACTIVE_EXPIRE_CYCLE_ACCEPTABLE_STALE: u64 = 10;
/// The modelled cost of sampling one key, µs (see the module's comment).
pub const SAMPLE_COST_US: u64 = 1;

/// The cycle's state kept between calls.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct ExpireCycle {
    /// `db->expires_cursor`, a position of the dictionary.
    cursor: usize,
}

impl Keyspace {
    /// `activeExpireCycle(ACTIVE_EXPIRE_CYCLE_SLOW)` at `now_ms` with `hz`
    /// and `active-expire-effort`; the `DEL`s go to `propagate`.
    pub fn active_expire_cycle(
        &mut self,
        now_ms: i64,
        hz: u32,
        effort: u32,
        propagate: &mut Vec<Rc<ReplCommand>>,
    ) {
        let effort = u64::from(effort.clamp(1, 10)) - 1;
        let keys_per_loop =
            ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP + ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP / 4 * effort;
        let time_perc = ACTIVE_EXPIRE_CYCLE_SLOW_TIME_PERC + 2 * effort;
        let acceptable_stale = ACTIVE_EXPIRE_CYCLE_ACCEPTABLE_STALE - effort;
        let timelimit_us = (time_perc * 1_000_000 / u64::from(hz.max(1)) / 100).max(1);
        let mut iteration: u64 = 0;
        loop {
            iteration += 1;
            if self.volatile == 0 {
                break;
            }
            let num = (self.volatile as u64).min(keys_per_loop);
            let len = self.dict.len();
            let max_checked = num * 20 * (len.div_ceil(self.volatile) as u64);
            let (mut sampled, mut expired, mut checked) = (0u64, 0u64, 0u64);
            while sampled < num && checked < max_checked && !self.dict.is_empty() {
                checked += 1;
                let pos = self.expire.cursor % self.dict.len();
                let (key, e) = self.dict.get_index(pos).expect("position in range");
                let Some(at) = e.expire_at_ms else {
                    self.expire.cursor = pos + 1;
                    continue;
                };
                sampled += 1;
                if now_ms > at {
                    // `activeExpireCycleTryExpire`: the last key moves
                    // into this position, which is looked at next.
                    let key = key.clone();
                    self.remove(&key);
                    self.stats.expired_keys += 1;
                    propagate.push(ReplCommand::from_slices(&[b"DEL", &key]));
                    expired += 1;
                } else {
                    self.expire.cursor = pos + 1;
                }
            }
            if iteration & 0xf == 0 && iteration * keys_per_loop * SAMPLE_COST_US > timelimit_us {
                break;
            }
            if sampled != 0 && expired * 100 / sampled <= acceptable_stale {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Caller;
    use super::*;

    const T0: i64 = 1_700_000_000_000;

    /// `n` keys; key `i` expires 10 ms after T0 when `expires(i)`, else in
    /// a day.
    fn keyspace(n: usize, expires: impl Fn(usize) -> bool) -> Keyspace {
        let mut ks = Keyspace::new();
        for i in 0..n {
            let px = if expires(i) { "10" } else { "86400000" };
            let key = format!("k{i}");
            let argv = [&b"SET"[..], key.as_bytes(), b"v", b"PX", px.as_bytes()];
            ks.execute(&argv, T0, false, Caller::Client);
        }
        ks
    }

    #[test]
    fn a_cycle_stops_once_a_loop_finds_few_expired_keys() {
        // One key in 100 expired: the first loop's 20 keys hold one (5 %).
        let mut ks = keyspace(1000, |i| i % 100 == 0);
        let mut dels = Vec::new();
        ks.active_expire_cycle(T0 + 100, 10, 1, &mut dels);
        assert_eq!((ks.stats.expired_keys, dels.len()), (1, 1));
        assert_eq!(dels[0].argv, vec![b"DEL".to_vec(), b"k0".to_vec()]);
        // The cursor goes on from there: in 50 cycles it has seen them all.
        for _ in 0..50 {
            ks.active_expire_cycle(T0 + 100, 10, 1, &mut dels);
        }
        assert_eq!(ks.stats.expired_keys, 10);
        assert_eq!(ks.len(), 990);
    }

    #[test]
    fn a_cycle_is_bounded_by_its_time_budget() {
        let mut ks = keyspace(30_000, |_| true);
        let mut dels = Vec::new();
        ks.active_expire_cycle(T0 + 100, 10, 1, &mut dels);
        // 25 ms at hz 10, 20 µs a loop, checked every 16 loops: 1264 loops.
        assert_eq!(ks.stats.expired_keys, 1264 * 20);
        ks.active_expire_cycle(T0 + 100, 10, 1, &mut dels);
        assert_eq!(ks.stats.expired_keys, 30_000);
        assert!(ks.is_empty());
        // Nothing expired yet: one loop, nothing deleted.
        let mut ks = keyspace(100, |_| false);
        ks.active_expire_cycle(T0 + 100, 10, 1, &mut dels);
        assert_eq!((ks.stats.expired_keys, ks.len()), (0, 100));
    }
}
