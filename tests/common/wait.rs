//! The one way the tests and the benchmark wait for something: poll a check
//! until it holds, and on timeout say what was awaited and what the last
//! look saw.

use std::fmt::Debug;
use std::future::Future;
use std::time::{Duration, Instant};

/// How long to wait: a [`Duration`], or a whole number of seconds.
pub trait Limit {
    fn duration(self) -> Duration;
}

impl Limit for Duration {
    fn duration(self) -> Duration {
        self
    }
}

impl Limit for u64 {
    fn duration(self) -> Duration {
        Duration::from_secs(self)
    }
}

/// What a check returns: `Some`/`Ok` when it holds (with the value waited
/// for), `None`/`Err(observation)` when not yet.
pub trait Look {
    type Value;
    /// The value, or what was seen instead (for the timeout message).
    fn seen(self) -> Result<Self::Value, String>;
}

impl<T> Look for Option<T> {
    type Value = T;
    fn seen(self) -> Result<T, String> {
        self.ok_or_else(|| "not yet".to_owned())
    }
}

impl<T, E: Debug> Look for Result<T, E> {
    type Value = T;
    fn seen(self) -> Result<T, String> {
        self.map_err(|e| format!("{e:?}"))
    }
}

impl Look for bool {
    type Value = ();
    fn seen(self) -> Result<(), String> {
        if self {
            Ok(())
        } else {
            Err("false".to_owned())
        }
    }
}

/// Polls `check` (every 100 ms) until it holds and returns its value; fails
/// the test after `limit` with `what` and the last observation.
pub async fn eventually<L, F, Fut>(limit: impl Limit, what: &str, check: F) -> L::Value
where
    L: Look,
    F: FnMut() -> Fut,
    Fut: Future<Output = L>,
{
    eventually_every(limit, Duration::from_millis(100), what, check).await
}

/// [`eventually`] looking every `every`.
pub async fn eventually_every<L, F, Fut>(
    limit: impl Limit,
    every: Duration,
    what: &str,
    mut check: F,
) -> L::Value
where
    L: Look,
    F: FnMut() -> Fut,
    Fut: Future<Output = L>,
{
    let limit = limit.duration();
    let deadline = Instant::now() + limit;
    loop {
        let last = match check().await.seen() {
            Ok(value) => return value,
            Err(last) => last,
        };
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}; last seen: {last}"
        );
        tokio::time::sleep(every).await;
    }
}
