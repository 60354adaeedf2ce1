//! How long to wait before an attempt: [`Backoff`] (exponential, full
//! jitter, capped) and the random numbers of its jitter, [`Jitter`].

use std::time::Duration;

/// How long to wait before each reconnect attempt: exponential backoff with
/// full jitter ("Exponential Backoff And Jitter", AWS Architecture Blog,
/// 2015), capped, and reset once a connection stayed up for a while.
///
/// Attempt `n` (counted from 1) waits a uniformly random time in
/// `[0, ceiling(n)]`, where `ceiling(n) = min(max, initial · multiplier^(n-1))`.
/// Full jitter spreads the clients of a restarted server over the whole
/// interval instead of letting them return in waves.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    /// The ceiling of the first attempt's delay. Default 500 ms: quick enough
    /// that a blip goes unnoticed, slow enough not to hammer a server that
    /// just refused.
    pub initial: Duration,
    /// The largest ceiling. Default 30 s: a client of a server that is down
    /// for long still notices its return within half a minute on average.
    pub max: Duration,
    /// Growth of the ceiling per attempt. Default 2.0. Values below 1 (or
    /// NaN) count as 1 (a constant ceiling).
    pub multiplier: f64,
    /// A connection that lived at least this long resets the attempt count,
    /// so that the next drop starts again at attempt 1. Default 30 s. A
    /// server that accepts and at once drops the connection therefore keeps
    /// the delays growing.
    pub reset_after: Duration,
    /// Give up after this many attempts in a row (counted since the last
    /// reset). `None` (the default) retries forever; `Some(0)` never
    /// reconnects.
    pub max_attempts: Option<u32>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            multiplier: 2.0,
            reset_after: Duration::from_secs(30),
            max_attempts: None,
        }
    }
}

impl Backoff {
    /// The longest delay of attempt `attempt` (counted from 1):
    /// `min(max, initial · multiplier^(attempt-1))`. Attempt 0 (the first
    /// connection) has no delay. Never overflows: a huge attempt gives `max`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        if attempt == 0 || self.initial.is_zero() {
            return Duration::ZERO;
        }
        let multiplier = if self.multiplier >= 1.0 {
            self.multiplier
        } else {
            1.0
        };
        // powi saturates to infinity for large exponents; i32::MAX is as
        // good as any larger attempt.
        let exp = i32::try_from(attempt - 1).unwrap_or(i32::MAX);
        let secs = self.initial.as_secs_f64() * multiplier.powi(exp);
        if secs.is_finite() && secs < self.max.as_secs_f64() {
            Duration::from_secs_f64(secs)
        } else {
            self.max
        }
    }

    /// The delay of attempt `attempt` for a random `unit` in `[0, 1)`:
    /// `ceiling(attempt) · unit` (full jitter). `unit` is clamped to
    /// `[0, 1]`; NaN counts as 0.
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let unit = if unit.is_nan() {
            0.0
        } else {
            unit.clamp(0.0, 1.0)
        };
        self.ceiling(attempt).mul_f64(unit)
    }
}

/// The jitter's random numbers: SplitMix64, small, fast and seedable. Not
/// for cryptography; it only spreads reconnects over time.
#[derive(Debug, Clone)]
pub struct Jitter {
    state: u64,
}

impl Jitter {
    /// A generator with a fixed seed: the same seed gives the same delays
    /// (for tests and simulations).
    pub fn new(seed: u64) -> Self {
        Jitter { state: seed }
    }

    /// A generator seeded from the OS (falls back to the clock if the OS
    /// has no randomness to give).
    pub fn from_entropy() -> Self {
        let mut b = [0u8; 8];
        let seed = match getrandom::getrandom(&mut b) {
            Ok(()) => u64::from_le_bytes(b),
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0x5eed, |d| d.as_nanos() as u64),
        };
        Jitter::new(seed)
    }

    /// The next number, uniform in `[0, 1)`.
    pub fn next_unit(&mut self) -> f64 {
        // SplitMix64 (Steele, Lea, Flood 2014), as in `java.util.SplittableRandom`.
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        // The top 53 bits fill an f64's mantissa exactly.
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn ceiling_doubles_up_to_the_cap() {
        let b = Backoff::default();
        let table = [
            (0, ms(0)),
            (1, ms(500)),
            (2, ms(1000)),
            (3, ms(2000)),
            (4, ms(4000)),
            (5, ms(8000)),
            (6, ms(16000)),
            (7, ms(30000)),
            (8, ms(30000)),
            (1000, ms(30000)),
            (u32::MAX, ms(30000)),
        ];
        for (attempt, want) in table {
            assert_eq!(b.ceiling(attempt), want, "attempt {attempt}");
        }
    }

    #[test]
    fn odd_settings_do_not_panic() {
        let b = Backoff {
            initial: Duration::MAX,
            max: Duration::MAX,
            multiplier: f64::INFINITY,
            ..Backoff::default()
        };
        assert_eq!(b.ceiling(1000), Duration::MAX);
        let b = Backoff {
            multiplier: f64::NAN,
            ..Backoff::default()
        };
        assert_eq!(b.ceiling(1000), ms(500), "NaN multiplier is constant");
        let b = Backoff {
            multiplier: 0.1,
            ..Backoff::default()
        };
        assert_eq!(b.ceiling(3), ms(500), "multiplier below 1 is constant");
        let b = Backoff {
            initial: Duration::ZERO,
            ..Backoff::default()
        };
        assert_eq!(b.ceiling(1000), Duration::ZERO);
        let b = Backoff {
            initial: Duration::from_secs(60),
            ..Backoff::default()
        };
        assert_eq!(b.ceiling(1), Duration::from_secs(30), "initial above max");
    }

    #[test]
    fn delay_is_ceiling_times_unit() {
        let b = Backoff::default();
        assert_eq!(b.delay(3, 0.0), Duration::ZERO);
        assert_eq!(b.delay(3, 0.5), ms(1000));
        assert_eq!(b.delay(3, 1.0), ms(2000));
        assert_eq!(b.delay(3, 7.0), ms(2000), "clamped");
        assert_eq!(b.delay(3, -1.0), Duration::ZERO, "clamped");
        assert_eq!(b.delay(3, f64::NAN), Duration::ZERO);
        assert_eq!(b.delay(1000, 0.5), ms(15000));
    }

    #[test]
    fn jitter_is_uniform_in_unit_interval_and_seedable() {
        let mut a = Jitter::new(42);
        let mut b = Jitter::new(42);
        let mut sum = 0.0;
        let mut below_half = 0;
        for _ in 0..10_000 {
            let u = a.next_unit();
            assert_eq!(u, b.next_unit());
            assert!((0.0..1.0).contains(&u), "{u}");
            sum += u;
            below_half += usize::from(u < 0.5);
        }
        assert!(
            (sum / 10_000.0 - 0.5).abs() < 0.02,
            "mean {}",
            sum / 10_000.0
        );
        assert!((4_800..5_200).contains(&below_half), "{below_half}");
        assert_ne!(Jitter::new(1).next_unit(), Jitter::new(2).next_unit());
    }
}
