//! A Zipf sampler over ranks `1..=n` with exponent `s > 0`: rank `k` is
//! drawn with probability proportional to `k^-s`. It is the
//! rejection-inversion method of Hörmann and Derflinger ("Rejection-
//! inversion to generate variates from monotone discrete distributions",
//! 1996): O(1) memory and time per draw whatever `n`, no table.
//!
//! Determinism: the method needs `exp` and `ln`, whose last bit depends on
//! the platform's libm. Here both are computed with additions,
//! multiplications and divisions only (correctly rounded in IEEE 754), so a
//! draw is the same on every machine.

use rand::Rng as _;

use crate::engine::Rng;

/// A uniform double in `[0, 1)` from the top 53 bits of one draw.
pub fn unit(rng: &mut Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// ln 2 in two parts: the high one has 32 trailing zero bits, so that
/// `k * LN2_HI` is exact for the `k` in use.
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
const LN2: f64 = std::f64::consts::LN_2;

/// `e^x`: `x = k ln 2 + r` with `|r| <= ln 2 / 2`, `e^r` by its Taylor
/// series (terms to r^18 / 18!, below 1e-19 of the result), then scaled by
/// `2^k`.
pub fn exp(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x > 709.78 {
        return f64::INFINITY;
    }
    if x < -745.2 {
        return 0.0;
    }
    let k = (x / LN2).round();
    let r = (x - k * LN2_HI) - k * LN2_LO;
    // Horner: 1 + r (1 + r/2 (1 + r/3 (...))).
    let mut sum = 1.0;
    for i in (1..=18).rev() {
        sum = 1.0 + sum * r / f64::from(i);
    }
    // 2^k in two steps so that neither factor overflows or underflows.
    let k = k as i32;
    let half = k / 2;
    sum * pow2(half) * pow2(k - half)
}

/// `2^k` for `-1022 <= k <= 1023`.
fn pow2(k: i32) -> f64 {
    f64::from_bits(((k + 1023) as u64) << 52)
}

/// `ln x` for `x > 0`: `x = m 2^e` with `m` in `[sqrt(1/2), sqrt(2))`, and
/// `ln m = 2 atanh(f)`, `f = (m - 1) / (m + 1)`, by its series (`|f| <=
/// 0.172`; terms to f^29).
pub fn ln(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }
    if x.is_infinite() {
        return x;
    }
    let (mut m, mut e) = if x < f64::MIN_POSITIVE {
        // Subnormal: scale into the normal range first.
        (x * pow2(54), -54)
    } else {
        (x, 0)
    };
    let bits = m.to_bits();
    e += ((bits >> 52) & 0x7ff) as i32 - 1023;
    m = f64::from_bits((bits & ((1 << 52) - 1)) | (1023 << 52));
    if m > std::f64::consts::SQRT_2 {
        m /= 2.0;
        e += 1;
    }
    let f = (m - 1.0) / (m + 1.0);
    let f2 = f * f;
    let mut term = f;
    let mut sum = 0.0;
    let mut i = 1.0;
    while i <= 29.0 {
        sum += term / i;
        term *= f2;
        i += 2.0;
    }
    f64::from(e) * LN2_HI + (2.0 * sum + f64::from(e) * LN2_LO)
}

/// `ln(1 + x) / x`, accurate near 0.
fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        ln(1.0 + x) / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// `(e^x - 1) / x`, accurate near 0.
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        (exp(x) - 1.0) / x
    } else {
        1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x))
    }
}

/// Zipf on `1..=n` with exponent `s`.
#[derive(Clone, Debug)]
pub struct Zipf {
    n: u64,
    s: f64,
    h_integral_x1: f64,
    h_integral_n: f64,
    squeeze: f64,
}

impl Zipf {
    /// `n >= 1`, `s > 0` (finite).
    pub fn new(n: u64, s: f64) -> Zipf {
        assert!(
            n >= 1 && s > 0.0 && s.is_finite(),
            "zipf needs n >= 1 and s > 0"
        );
        let mut z = Zipf {
            n,
            s,
            h_integral_x1: 0.0,
            h_integral_n: 0.0,
            squeeze: 0.0,
        };
        z.h_integral_x1 = z.h_integral(1.5) - 1.0;
        z.h_integral_n = z.h_integral(n as f64 + 0.5);
        z.squeeze = 2.0 - z.h_integral_inv(z.h_integral(2.5) - z.h(2.0));
        z
    }

    /// `h(x) = x^-s`.
    fn h(&self, x: f64) -> f64 {
        exp(-self.s * ln(x))
    }

    /// `H(x) = (x^(1-s) - 1) / (1 - s)` (`ln x` when `s = 1`), an integral
    /// of `h`.
    fn h_integral(&self, x: f64) -> f64 {
        let log_x = ln(x);
        helper2((1.0 - self.s) * log_x) * log_x
    }

    /// The inverse of `H`.
    fn h_integral_inv(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.s)).max(-1.0);
        exp(helper1(t) * x)
    }

    /// One rank in `1..=n`.
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        loop {
            let u = self.h_integral_n + unit(rng) * (self.h_integral_x1 - self.h_integral_n);
            let x = self.h_integral_inv(u);
            let k = ((x + 0.5) as u64).clamp(1, self.n);
            let kf = k as f64;
            if kf - x <= self.squeeze || u >= self.h_integral(kf + 0.5) - self.h(kf) {
                return k;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{actor_rng, Actor};

    #[test]
    fn exp_and_ln_agree_with_the_platform_within_a_few_ulps() {
        let mut r = actor_rng(1, Actor::Clients(0));
        for _ in 0..20_000 {
            let x = (unit(&mut r) - 0.5) * 200.0;
            let (a, b) = (exp(x), x.exp());
            assert!(((a - b) / b).abs() < 1e-15, "exp({x}) = {a} vs {b}");
            let y = unit(&mut r) * 1e6 + 1e-300;
            let (a, b) = (ln(y), y.ln());
            assert!(
                (a - b).abs() <= 1e-15 * b.abs().max(1.0),
                "ln({y}) = {a} vs {b}"
            );
        }
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(ln(1.0), 0.0);
        assert_eq!(exp(1000.0), f64::INFINITY);
        assert_eq!(exp(-1000.0), 0.0);
        assert!((ln(5e-324) - 5e-324f64.ln()).abs() < 1e-12);
    }

    /// The frequencies of the first ranks follow `k^-s / H(n, s)`.
    #[test]
    fn frequencies_follow_the_law() {
        for (n, s) in [(1000u64, 0.99), (50, 1.0), (10_000, 1.5), (20, 0.3)] {
            let z = Zipf::new(n, s);
            let mut r = actor_rng(7, Actor::Clients(1));
            let draws = 200_000;
            let mut counts = vec![0u32; n as usize + 1];
            for _ in 0..draws {
                let k = z.sample(&mut r);
                assert!((1..=n).contains(&k));
                counts[k as usize] += 1;
            }
            let norm: f64 = (1..=n).map(|k| (k as f64).powf(-s)).sum();
            for k in 1..=5u64 {
                let p = (k as f64).powf(-s) / norm;
                let got = f64::from(counts[k as usize]) / f64::from(draws);
                let sd = (p * (1.0 - p) / f64::from(draws)).sqrt();
                assert!(
                    (got - p).abs() < 5.0 * sd,
                    "n {n} s {s} rank {k}: {got} vs {p}"
                );
            }
        }
    }

    #[test]
    fn one_rank_and_same_seed_same_draws() {
        let mut r = actor_rng(3, Actor::Clients(0));
        let z = Zipf::new(1, 2.0);
        assert!((0..100).all(|_| z.sample(&mut r) == 1));
        let z = Zipf::new(1_000_000_000, 0.8);
        let draw = |seed| {
            let mut r = actor_rng(seed, Actor::Clients(0));
            (0..50).map(|_| z.sample(&mut r)).collect::<Vec<_>>()
        };
        assert_eq!(draw(4), draw(4));
        assert_ne!(draw(4), draw(5));
    }
}
