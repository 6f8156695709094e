//! Seeded randomness, split into independent streams.
//!
//! Every minute of normal traffic draws from its own generator, seeded from
//! `(seed, stream, minute)`; each injected event has its own streams too. So a minute's
//! rows do not depend on how the history was cut into `simulate` calls, and an injected
//! event changes nothing but what the event itself adds.

use rand::{Rng as _, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Stream ids: one per independent use, so no two uses share a sequence.
pub(crate) mod stream {
    pub const MINUTE: u64 = 1;
    pub const DAY: u64 = 2;
    pub const ADDRESSES: u64 = 3;
    pub const EVENT: u64 = 4;
    pub const SLOW_NOISE: u64 = 6;
    /// Per-minute draws of the events made minute by minute (`upload`, `flood`).
    pub const EVENT_MINUTE: u64 = 7;
    /// `deploy`'s service: fixed by the seed alone (not by the event's time), so that a
    /// later call's `deploy@0` continues the same service with the same clients.
    pub const DEPLOY: u64 = 8;
}

/// SplitMix64's finaliser: a cheap, well-mixing bijection on u64.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A deterministic generator with the few distributions the simulator needs (rand 0.10
/// has no Poisson or normal without rand_distr, and these are a few lines each).
pub(crate) struct Rng(ChaCha8Rng);

impl Rng {
    pub fn new(seed: u64, stream: u64, index: i64) -> Self {
        let s = mix(mix(seed ^ mix(stream)) ^ index as u64);
        Rng(ChaCha8Rng::seed_from_u64(s))
    }

    pub fn u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [0, n); 0 when n is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            ((u128::from(self.u64()) * u128::from(n)) >> 64) as u64
        }
    }

    /// Uniform in [lo, hi] (hi ≥ lo).
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    /// Uniform in [lo, hi) for floats.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// A uniformly chosen element (the slice must not be empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// A heavy-headed index in [0, n): index 0 is the most popular, a Zipf-like shape
    /// (`n · u^k`) that is cheap to draw.
    pub fn zipf(&mut self, n: usize, k: f64) -> usize {
        ((n as f64 * self.f64().powf(k)) as usize).min(n.saturating_sub(1))
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.f64().max(1e-300);
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Log-normal with the given median and log-space spread.
    pub fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }

    /// Poisson counts: Knuth's product method for small means, a rounded normal for
    /// large ones (where the two are indistinguishable for our purposes).
    pub fn poisson(&mut self, lambda: f64) -> u64 {
        if lambda.is_nan() || lambda <= 0.0 {
            return 0;
        }
        if lambda < 30.0 {
            let limit = (-lambda).exp();
            let mut k = 0;
            let mut p = self.f64();
            while p > limit {
                k += 1;
                p *= self.f64();
            }
            k
        } else {
            (lambda + lambda.sqrt() * self.normal()).round().max(0.0) as u64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_deterministic_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| Rng::new(1, 2, 3).u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(Rng::new(1, 2, 3).u64(), Rng::new(1, 2, 4).u64());
        assert_ne!(Rng::new(1, 2, 3).u64(), Rng::new(1, 3, 3).u64());
        assert_ne!(Rng::new(1, 2, 3).u64(), Rng::new(2, 2, 3).u64());
    }

    #[test]
    fn poisson_mean_is_close() {
        let mut r = Rng::new(7, 0, 0);
        for lambda in [0.5, 4.0, 100.0] {
            let n = 20_000;
            let mean = (0..n).map(|_| r.poisson(lambda) as f64).sum::<f64>() / n as f64;
            assert!(
                (mean - lambda).abs() < 0.05 * lambda + 0.05,
                "{lambda}: {mean}"
            );
        }
        assert_eq!(r.poisson(0.0), 0);
        assert_eq!(r.poisson(f64::NAN), 0);
    }

    #[test]
    fn ranges_stay_inside() {
        let mut r = Rng::new(9, 0, 0);
        for _ in 0..10_000 {
            assert!(r.below(7) < 7);
            let b = r.between(3, 5);
            assert!((3..=5).contains(&b));
            assert!(r.zipf(10, 2.0) < 10);
            let f = r.f64();
            assert!((0.0..1.0).contains(&f));
        }
        assert_eq!(r.below(0), 0);
    }
}
