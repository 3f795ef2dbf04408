use super::*;
use crate::engine::{actor_rng, Actor};
use crate::node::keyspace::{Caller, Reply};
use MaxmemoryPolicy::*;

/// A whole minute (and second) of Unix time.
const T0: i64 = 1_700_000_040_000;

fn keyspace(policy: MaxmemoryPolicy) -> Keyspace {
    let mut ks = Keyspace::new();
    let p = MemoryPolicy {
        maxmemory_policy: policy,
        ..MemoryPolicy::default()
    };
    ks.configure(p, actor_rng(7, Actor::Admin));
    ks
}

fn cmd(ks: &mut Keyspace, now: i64, s: &str) -> Reply {
    let argv: Vec<&[u8]> = s.split(' ').map(str::as_bytes).collect();
    ks.execute(&argv, now, false, Caller::Client).reply
}

/// `n` keys `k<i>` of 100 bytes, written one a second from `T0`; key `i`
/// has a TTL of `ttl(i)` seconds when it gives one.
fn fill(ks: &mut Keyspace, n: usize, ttl: impl Fn(usize) -> Option<i64>) {
    let v = "x".repeat(100);
    for i in 0..n {
        let now = T0 + 1000 * i as i64;
        match ttl(i) {
            Some(s) => cmd(ks, now, &format!("SET k{i} {v} EX {s}")),
            None => cmd(ks, now, &format!("SET k{i} {v}")),
        };
    }
}

/// Evict `count` keys' worth of memory at `now`; the evicted keys' indices.
fn evict_keys(ks: &mut Keyspace, count: u64, now: i64) -> (EvictResult, Vec<usize>) {
    let per_key = ks.used_memory() / ks.len() as u64;
    let mut dels = Vec::new();
    let r = ks.evict(count * per_key, now, &mut dels);
    let idx = dels
        .iter()
        .map(|d| {
            assert_eq!(&d.argv[0], b"DEL");
            std::str::from_utf8(&d.argv[1][1..])
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    (r, idx)
}

#[test]
fn lru_clock_ticks_each_second_and_wraps_after_24_bits() {
    assert_eq!(lru_clock(5_999), 5);
    assert_eq!(lru_clock(i64::from(LRU_CLOCK_MAX) * 1000 + 1000), 0);
    let lru = lru_clock(T0);
    assert_eq!(estimate_idle_time_ms(lru, T0 + 999), 0, "1 s resolution");
    assert_eq!(estimate_idle_time_ms(lru, T0 + 61_500), 61_000);
    // An object touched just before the wrap.
    let before_wrap = LRU_CLOCK_MAX - 2;
    let now = (i64::from(LRU_CLOCK_MAX) + 1 + 3) * 1000; // clock 3
    assert_eq!(estimate_idle_time_ms(before_wrap, now), (3 + 2) * 1000);
}

#[test]
fn lfu_counter_grows_logarithmically_as_redis_formula() {
    // From LFU_INIT_VAL, the b-th increment needs (b * factor + 1) hits on
    // average: C is reached after (C - 5) * (5 * (C - 6) + 1) hits for
    // factor 10 (redis.conf's table: 100 hits -> 10, 1000 -> 18,
    // 100K -> 142).
    let mut rng = actor_rng(3, Actor::Admin);
    let expected = |hits: f64| {
        (6..=255)
            .find(|&c| f64::from((c - 5) * (5 * (c - 6) + 1)) >= hits)
            .unwrap() as f64
    };
    for (hits, tolerance) in [(100, 1.5), (1000, 1.5), (100_000, 4.0)] {
        let runs = 20;
        let mut sum = 0.0;
        for _ in 0..runs {
            let mut c = LFU_INIT_VAL;
            for _ in 0..hits {
                c = lfu_log_incr(c, 10, rng.random());
            }
            sum += f64::from(c);
        }
        let mean = sum / f64::from(runs);
        let want = expected(f64::from(hits));
        assert!(
            (mean - want).abs() <= tolerance,
            "{hits} hits: mean counter {mean}, formula {want}"
        );
    }
    // At or below LFU_INIT_VAL every hit counts; 255 saturates.
    assert_eq!(lfu_log_incr(0, 10, 0.999), 1);
    assert_eq!(lfu_log_incr(5, 10, 0.999), 6);
    assert_eq!(lfu_log_incr(255, 0, 0.0), 255);
    // Factor 0: always.
    assert_eq!(lfu_log_incr(100, 0, 0.999), 101);
}

#[test]
fn lfu_counter_decays_one_per_decay_time() {
    let p = MemoryPolicy {
        maxmemory_policy: AllkeysLfu,
        ..MemoryPolicy::default()
    };
    let lru = p.lfu_lru(T0, 20);
    assert_eq!(lfu_decr_and_return(lru, T0 + 59_000, 1), 20);
    assert_eq!(lfu_decr_and_return(lru, T0 + 3 * 60_000, 1), 17);
    assert_eq!(lfu_decr_and_return(lru, T0 + 3 * 60_000, 2), 19);
    assert_eq!(lfu_decr_and_return(lru, T0 + 3 * 60_000, 0), 20, "no decay");
    assert_eq!(lfu_decr_and_return(lru, T0 + 60 * 60_000, 1), 0, "floor");
    // A new object starts at LFU_INIT_VAL; an access decays then counts.
    let mut ks = keyspace(AllkeysLfu);
    cmd(&mut ks, T0, "SET a 1");
    assert_eq!(ks.peek(b"a").unwrap().lru & 255, u32::from(LFU_INIT_VAL));
    cmd(&mut ks, T0, "GET a");
    assert_eq!(ks.peek(b"a").unwrap().lru & 255, 6);
    // Overwriting keeps the counter (dbOverwrite).
    cmd(&mut ks, T0, "SET a 2");
    assert_eq!(ks.peek(b"a").unwrap().lru & 255, 6);
    // Five minutes later: 6 - 5 = 1, then +1 (always below LFU_INIT_VAL).
    cmd(&mut ks, T0 + 5 * 60_000, "GET a");
    assert_eq!(ks.peek(b"a").unwrap().lru & 255, 2);
}

#[test]
fn allkeys_lru_evicts_the_least_recently_used_keys() {
    let mut ks = keyspace(AllkeysLru);
    fill(&mut ks, 1000, |_| None);
    // Keys 0..100 were read again at the end: recently used.
    let now = T0 + 1_000_000;
    for i in 0..100 {
        cmd(&mut ks, now, &format!("GET k{i}"));
    }
    let (r, evicted) = evict_keys(&mut ks, 100, now + 1000);
    assert_eq!(r, EvictResult::Ok);
    assert!(evicted.len() >= 100, "{}", evicted.len());
    assert_eq!(ks.stats.evicted_keys, evicted.len() as u64);
    // None of the recently read keys, and mostly the oldest of the rest.
    assert!(evicted.iter().all(|&i| i >= 100), "{evicted:?}");
    let old = evicted.iter().filter(|&&i| i < 550).count();
    assert!(old * 10 >= evicted.len() * 9, "{old} of {}", evicted.len());
    assert_eq!(ks.len(), 1000 - evicted.len());
}

#[test]
fn allkeys_lfu_keeps_the_frequently_used_keys() {
    let mut ks = keyspace(AllkeysLfu);
    fill(&mut ks, 1000, |_| None);
    let now = T0 + 1_000_000;
    // Hot keys: every tenth key, read 30 times.
    for _ in 0..30 {
        for i in (0..1000).step_by(10) {
            cmd(&mut ks, now, &format!("GET k{i}"));
        }
    }
    let (_, evicted) = evict_keys(&mut ks, 500, now);
    assert!(evicted.len() >= 500);
    let hot = evicted.iter().filter(|&&i| i % 10 == 0).count();
    assert!(hot <= 2, "{hot} hot keys evicted");
}

#[test]
fn volatile_ttl_evicts_the_nearest_expiry_and_only_volatile_keys() {
    let mut ks = keyspace(VolatileTtl);
    // Even keys have a TTL: key i, written at T0 + i s, expires in
    // (3000 - 2i) s, at T0 + (3000 - i) s: the later written, the sooner.
    fill(&mut ks, 1000, |i| {
        (i % 2 == 0).then_some(3000 - 2 * i as i64)
    });
    let (r, evicted) = evict_keys(&mut ks, 50, T0 + 1_000_000);
    assert_eq!(r, EvictResult::Ok);
    assert!(evicted.iter().all(|&i| i % 2 == 0), "only keys with a TTL");
    let near = evicted.iter().filter(|&&i| i >= 500).count();
    assert!(
        near * 10 >= evicted.len() * 9,
        "{near} of {}",
        evicted.len()
    );
}

#[test]
fn volatile_policies_fail_without_volatile_keys() {
    for policy in [VolatileLru, VolatileLfu, VolatileRandom, VolatileTtl] {
        let mut ks = keyspace(policy);
        fill(&mut ks, 100, |_| None);
        let (r, evicted) = evict_keys(&mut ks, 10, T0 + 200_000);
        assert_eq!((r, evicted.len()), (EvictResult::Fail, 0), "{policy:?}");
        // A few volatile keys: those go, then it fails.
        cmd(&mut ks, T0, "SET v1 x EX 100");
        cmd(&mut ks, T0, "SET v2 x EX 100");
        let (r, mut evicted) = evict_keys(&mut ks, 10, T0 + 200_000);
        evicted.sort();
        assert_eq!(r, EvictResult::Fail, "{policy:?}");
        assert_eq!(evicted, [1, 2], "{policy:?}");
        assert_eq!(ks.len(), 100);
    }
}

#[test]
fn random_policies_and_noeviction() {
    let mut ks = keyspace(AllkeysRandom);
    fill(&mut ks, 1000, |_| None);
    let before = ks.used_memory();
    let (r, evicted) = evict_keys(&mut ks, 200, T0 + 2_000_000);
    assert_eq!(r, EvictResult::Ok);
    assert!(before - ks.used_memory() >= 200 * (before / 1000));
    // Spread over the whole keyspace, old and new alike.
    let old = evicted.iter().filter(|&&i| i < 500).count();
    assert!((70..=130).contains(&old), "{old} of {}", evicted.len());

    let mut ks = keyspace(VolatileRandom);
    fill(&mut ks, 1000, |i| (i % 4 == 0).then_some(3600));
    let (_, evicted) = evict_keys(&mut ks, 100, T0 + 2_000_000);
    assert!(evicted.iter().all(|&i| i % 4 == 0));

    let mut ks = keyspace(Noeviction);
    fill(&mut ks, 10, |_| None);
    assert_eq!(evict_keys(&mut ks, 1, T0).0, EvictResult::Fail);
    assert_eq!(ks.len(), 10);
}

#[test]
fn the_pool_keeps_the_sixteen_best_candidates() {
    let mut ks = keyspace(AllkeysLru);
    fill(&mut ks, 1000, |_| None);
    for _ in 0..20 {
        ks.eviction_pool_populate(T0 + 1_000_000);
    }
    assert_eq!(ks.pool.len(), EVPOOL_SIZE);
    assert!(ks.pool.windows(2).all(|w| w[0].idle <= w[1].idle));
}

#[test]
fn more_samples_approximate_lru_better() {
    // The mean index (age rank: 0 oldest) of 200 keys evicted from 2000.
    let mean_evicted_index = |samples: u32| {
        let mut ks = Keyspace::new();
        let p = MemoryPolicy {
            maxmemory_policy: AllkeysLru,
            maxmemory_samples: samples,
            ..MemoryPolicy::default()
        };
        ks.configure(p, actor_rng(11, Actor::Admin));
        fill(&mut ks, 2000, |_| None);
        let (_, evicted) = evict_keys(&mut ks, 200, T0 + 3_000_000);
        evicted.iter().sum::<usize>() as f64 / evicted.len() as f64
    };
    let (one, five, ten) = (
        mean_evicted_index(1),
        mean_evicted_index(5),
        mean_evicted_index(10),
    );
    // Exact LRU would give 99.5; one sample is random eviction (the pool
    // keeps nothing better than what it is handed one at a time).
    assert!(one > 800.0, "{one}");
    assert!(five < 300.0 && ten < five, "{five} {ten}");
}
