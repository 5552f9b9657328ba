//! Exponential backoff with jitter for transient Closte errors, driven by the
//! failure count kept in status (so a restart does not reset it).

use std::time::Duration;

pub const FIRST: Duration = Duration::from_secs(5);
pub const MAX: Duration = Duration::from_secs(600);

/// Delay before attempt `failed_attempts + 1`: 5 s doubling up to 10 min,
/// spread ±20 % by `jitter` (uniform in [0, 1)) so objects do not retry in step.
pub fn delay(failed_attempts: u32, jitter: f64) -> Duration {
    let exponent = failed_attempts.saturating_sub(1).min(16);
    let base = FIRST.saturating_mul(1 << exponent).min(MAX);
    base.mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_then_caps() {
        let secs: Vec<u64> = (1..=10).map(|n| delay(n, 0.5).as_secs()).collect();
        assert_eq!(secs, [5, 10, 20, 40, 80, 160, 320, 600, 600, 600]);
        assert_eq!(delay(0, 0.5).as_secs(), 5);
        assert_eq!(delay(u32::MAX, 0.5), MAX);
    }

    #[test]
    fn jitter_spreads_by_a_fifth() {
        assert_eq!(delay(1, 0.0), Duration::from_secs(4));
        assert_eq!(delay(1, 1.0), Duration::from_secs(6));
        assert_eq!(delay(8, 1.0), Duration::from_secs(720));
    }
}
