//! Per-account flow control: paced writes, a cap on requests in flight, and a
//! shared pause after Closte answers 429.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// A token bucket that hands out reservations: a caller always gets a slot,
/// and is told how long to wait for it, so waiters are served in order and
/// never retry. Pure: the caller passes `now`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// `rate` tokens per second, at most `burst` saved up; starts full.
    pub fn new(rate: f64, burst: f64, now: Instant) -> TokenBucket {
        let burst = burst.max(1.0);
        TokenBucket {
            rate: rate.max(f64::MIN_POSITIVE),
            burst,
            tokens: burst,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now.max(self.last);
    }

    /// Reserves one token; returns how long the caller must wait before using it.
    pub fn reserve(&mut self, now: Instant) -> Duration {
        self.refill(now);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }

    /// Takes a token only if one is available now (the simulator's limiter).
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Limits for one Closte account.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlowSettings {
    /// Writes (add, delete) per second, evenly paced.
    pub write_rate: f64,
    /// Requests of any kind in flight at once.
    pub max_in_flight: usize,
}

impl FlowSettings {
    /// The default of `--closte-write-rate`.
    pub const WRITE_RATE: f64 = 10.0;
    /// The default of `--closte-max-in-flight`.
    pub const MAX_IN_FLIGHT: usize = 4;
}

impl Default for FlowSettings {
    fn default() -> Self {
        FlowSettings {
            write_rate: Self::WRITE_RATE,
            max_in_flight: Self::MAX_IN_FLIGHT,
        }
    }
}

#[derive(Debug)]
pub struct FlowControl {
    writes: Mutex<TokenBucket>,
    in_flight: Semaphore,
    paused_until: Mutex<Option<Instant>>,
}

impl FlowControl {
    pub fn new(settings: FlowSettings) -> FlowControl {
        FlowControl {
            // burst 1: writes leave evenly spaced, never in a clump a server would refuse
            writes: Mutex::new(TokenBucket::new(settings.write_rate, 1.0, Instant::now())),
            in_flight: Semaphore::new(settings.max_in_flight.max(1)),
            paused_until: Mutex::new(None),
        }
    }

    /// Waits until a request may be sent; hold the permit while it is in flight.
    pub async fn admit(&self, write: bool) -> SemaphorePermit<'_> {
        self.wait_out_pause().await;
        if write {
            let wait = self.writes.lock().unwrap().reserve(Instant::now());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
        let permit = self
            .in_flight
            .acquire()
            .await
            .expect("semaphore never closes");
        // a 429 may have arrived while this request queued
        self.wait_out_pause().await;
        permit
    }

    /// Holds every request of the account back for `duration`.
    pub fn pause_for(&self, duration: Duration) {
        let until = Instant::now() + duration;
        let mut paused = self.paused_until.lock().unwrap();
        if paused.is_none_or(|current| current < until) {
            *paused = Some(until);
        }
    }

    /// When the current pause ends, if there is one.
    pub fn paused_until(&self) -> Option<Instant> {
        self.paused_until
            .lock()
            .unwrap()
            .filter(|t| *t > Instant::now())
    }

    async fn wait_out_pause(&self) {
        while let Some(until) = self.paused_until() {
            tokio::time::sleep_until(until).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_paces_reservations() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(10.0, 1.0, t0);
        assert_eq!(bucket.reserve(t0), Duration::ZERO);
        let waits: Vec<u128> = (0..3).map(|_| bucket.reserve(t0).as_millis()).collect();
        assert_eq!(waits, [100, 200, 300]);
        // after a quiet second the bucket is full again, but holds only `burst`
        let t1 = t0 + Duration::from_secs(2);
        assert_eq!(bucket.reserve(t1), Duration::ZERO);
        assert_eq!(bucket.reserve(t1).as_millis(), 100);
    }

    #[test]
    fn try_take_respects_burst() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(5.0, 5.0, t0);
        assert_eq!((0..8).filter(|_| bucket.try_take(t0)).count(), 5);
        assert!(!bucket.try_take(t0 + Duration::from_millis(100)));
        assert!(bucket.try_take(t0 + Duration::from_millis(200)));
    }

    #[tokio::test(start_paused = true)]
    async fn writes_are_paced_and_pauses_hold_everyone() {
        let flow = FlowControl::new(FlowSettings {
            write_rate: 10.0,
            max_in_flight: 4,
        });
        let start = Instant::now();
        for _ in 0..5 {
            drop(flow.admit(true).await);
        }
        assert_eq!(start.elapsed().as_millis(), 400);
        // reads are not paced
        let start = Instant::now();
        for _ in 0..5 {
            drop(flow.admit(false).await);
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        flow.pause_for(Duration::from_secs(3));
        flow.pause_for(Duration::from_secs(1)); // a shorter pause does not shorten it
        let start = Instant::now();
        drop(flow.admit(false).await);
        assert_eq!(start.elapsed().as_secs(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn in_flight_is_capped() {
        let flow = FlowControl::new(FlowSettings {
            write_rate: 1000.0,
            max_in_flight: 2,
        });
        let a = flow.admit(false).await;
        let _b = flow.admit(false).await;
        let third = tokio::time::timeout(Duration::from_secs(1), flow.admit(false)).await;
        assert!(third.is_err(), "a third request must wait");
        drop(a);
        assert!(
            tokio::time::timeout(Duration::from_secs(1), flow.admit(false))
                .await
                .is_ok()
        );
    }
}
