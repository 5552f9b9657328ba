//! Whether Closte answers an account, and when it answers again after
//! trouble: a recovery, which wakes the objects that wait out a backoff.
//! Two kinds, so that a fault here and there does not wake everyone on
//! every success:
//!
//! - the end of an outage: at least [`OUTAGE_FAILURES`] transient failures
//!   (unreachable, 5xx, timeouts, unreadable answers) over [`OUTAGE_AFTER`]
//!   or longer with no success between, then a success: woken at once;
//! - the end of scattered faults: a success after a quiet period (the resync
//!   period) with no failure since the last one, so objects whose backoff
//!   grew past it go within about one resync of Closte healing.
//!
//! Requests are ordered by when they were sent, not by when their outcome
//! came (a timeout comes long after): an outcome older than the newest one of
//! the other kind says nothing about Closte now. Pure: callers pass the
//! instants.
//!
//! A *ping* is a fetch of the account's alias list (`getdomains`) sent only
//! to learn whether Closte answers again (not a DNS/TLS probe of a domain).

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// How long requests must keep failing, with no success between, to be an outage.
pub const OUTAGE_AFTER: Duration = Duration::from_secs(5);

/// How many failures in a row, at least, make an outage.
pub const OUTAGE_FAILURES: u32 = 3;

/// How often an account in trouble is asked again, so that the recovery is
/// seen even when every object waits out a long backoff.
pub const PING_EVERY: Duration = Duration::from_secs(5);

/// A success that ends trouble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// The first answer this process saw.
    First,
    /// The end of an outage whose failures spanned this long.
    Outage(Duration),
    /// A success after this long without failures.
    Quiet(Duration),
}

#[derive(Debug, Clone)]
pub struct Reachability {
    /// Failures with no success since; `None` while Closte answers.
    streak: Option<Streak>,
    /// The latest failure no recovery has followed yet.
    unanswered: Option<Instant>,
    /// The latest success.
    answered: Option<Instant>,
    /// How long without failures ends scattered faults (the resync period).
    quiet: Duration,
    /// When the request of the latest recovery was sent.
    recovered: Option<SystemTime>,
    /// When the last ping was sent.
    pinged: Option<Instant>,
}

/// Failures with no success between, by when their requests were sent.
#[derive(Debug, Clone, Copy)]
struct Streak {
    /// The first; `None`: before this process could see any, so of unknown
    /// length (objects may have failed under a previous process).
    since: Option<Instant>,
    /// The latest.
    last: Option<Instant>,
    failures: u32,
}

impl Streak {
    fn outage(&self) -> Option<Recovery> {
        let (Some(since), Some(last)) = (self.since, self.last) else {
            return Some(Recovery::First);
        };
        let lasted = last.duration_since(since);
        (lasted >= OUTAGE_AFTER && self.failures >= OUTAGE_FAILURES)
            .then_some(Recovery::Outage(lasted))
    }
}

impl Reachability {
    /// Nothing seen yet: as if in an outage of unknown length, so that the
    /// first answer wakes the objects that failed before this process.
    pub fn new(quiet: Duration) -> Reachability {
        Reachability {
            streak: Some(Streak {
                since: None,
                last: None,
                failures: 0,
            }),
            unanswered: None,
            answered: None,
            quiet,
            recovered: None,
            pinged: None,
        }
    }

    /// A request sent at `sent` failed transiently (5xx, unreachable, a
    /// timeout, an unreadable answer).
    pub fn failed(&mut self, sent: Instant) {
        // a request sent after it succeeded: Closte answers
        if self.answered.is_some_and(|answered| sent < answered) {
            return;
        }
        let streak = self.streak.unwrap_or(Streak {
            since: Some(sent),
            last: None,
            failures: 0,
        });
        self.streak = Some(Streak {
            since: streak.since.map(|since| since.min(sent)),
            last: Some(streak.last.map_or(sent, |last| last.max(sent))),
            failures: streak.failures.saturating_add(1),
        });
        self.unanswered = Some(self.unanswered.map_or(sent, |last| last.max(sent)));
    }

    /// A request sent at `sent` (`sent_wall` on the wall clock) succeeded.
    /// Returns the recovery, when that ends trouble.
    pub fn answered(&mut self, sent: Instant, sent_wall: SystemTime) -> Option<Recovery> {
        self.answered = Some(self.answered.map_or(sent, |last| last.max(sent)));
        // a request sent after it failed: Closte may still be in trouble
        if self.unanswered.is_some_and(|last| sent < last) {
            return None;
        }
        let outage = self.streak.take().and_then(|s| s.outage());
        let quiet = self
            .unanswered
            .map(|last| sent.duration_since(last))
            .filter(|calm| *calm >= self.quiet)
            .map(Recovery::Quiet);
        let recovery = outage.or(quiet)?;
        self.unanswered = None;
        self.recovered = Some(sent_wall);
        Some(recovery)
    }

    /// When the request of the latest recovery was sent.
    pub fn recovered(&self) -> Option<SystemTime> {
        self.recovered
    }

    /// Whether to ask Closte now whether it answers again (at most once per
    /// [`PING_EVERY`]): requests have failed for [`OUTAGE_AFTER`] (or since
    /// before anything was seen), or a quiet period has passed since the last
    /// failure with no success to end it.
    pub fn ping_due(&self, now: Instant) -> bool {
        let failing = self.streak.is_some_and(|s| {
            s.since
                .is_none_or(|since| now.duration_since(since) >= OUTAGE_AFTER)
        });
        let calm = self
            .unanswered
            .is_some_and(|last| now.duration_since(last) >= self.quiet);
        (failing || calm)
            && self
                .pinged
                .is_none_or(|pinged| now.duration_since(pinged) >= PING_EVERY)
    }

    /// A ping goes out now.
    pub fn pinging(&mut self, now: Instant) {
        self.pinged = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUIET: Duration = Duration::from_secs(60);

    fn secs(start: Instant, n: u64) -> Instant {
        start + Duration::from_secs(n)
    }

    fn wall(n: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + n)
    }

    /// A reachability that has seen one success: Closte answers.
    fn answering(t0: Instant) -> Reachability {
        let mut reach = Reachability::new(QUIET);
        let first = reach.answered(t0, wall(0));
        assert_eq!(first, Some(Recovery::First), "the first answer recovers");
        reach
    }

    #[test]
    fn an_outage_then_a_success_is_a_recovery() {
        let t0 = Instant::now();
        let mut reach = answering(t0);
        reach.failed(secs(t0, 1));
        assert!(!reach.ping_due(secs(t0, 3)), "not failing long enough");
        reach.failed(secs(t0, 4));
        assert!(reach.ping_due(secs(t0, 6)));
        reach.pinging(secs(t0, 6));
        assert!(!reach.ping_due(secs(t0, 8)), "one ping per period");
        reach.failed(secs(t0, 7)); // the ping failed
        assert!(reach.ping_due(secs(t0, 11)));
        let recovery = reach.answered(secs(t0, 11), wall(11));
        assert_eq!(recovery, Some(Recovery::Outage(Duration::from_secs(6))));
        assert_eq!(reach.recovered(), Some(wall(11)));
        assert!(!reach.ping_due(secs(t0, 100)), "Closte answers");
        assert_eq!(reach.answered(secs(t0, 200), wall(200)), None, "only once");
        assert_eq!(reach.recovered(), Some(wall(11)));
    }

    #[test]
    fn scattered_failures_are_no_outage() {
        let t0 = Instant::now();
        let mut reach = answering(t0);
        for n in 1..10 {
            reach.failed(secs(t0, n));
            assert_eq!(reach.answered(secs(t0, n), wall(n)), None, "second {n}");
        }
        // two failures over longer than an outage takes: not enough of them
        reach.failed(secs(t0, 20));
        reach.failed(secs(t0, 30));
        assert_eq!(reach.answered(secs(t0, 31), wall(31)), None);
        // three close together: not long enough
        for n in [40, 41, 42] {
            reach.failed(secs(t0, n));
        }
        assert_eq!(reach.answered(secs(t0, 43), wall(43)), None);
        assert_eq!(reach.recovered(), Some(wall(0)));
    }

    #[test]
    fn a_quiet_period_after_scattered_failures_is_a_recovery() {
        let t0 = Instant::now();
        let mut reach = answering(t0);
        reach.failed(secs(t0, 10));
        assert_eq!(reach.answered(secs(t0, 11), wall(11)), None);
        assert!(!reach.ping_due(secs(t0, 69)), "Closte answers");
        assert!(
            reach.ping_due(secs(t0, 70)),
            "a quiet period with nobody asking"
        );
        reach.failed(secs(t0, 50)); // the quiet period starts again
        assert_eq!(reach.answered(secs(t0, 100), wall(100)), None);
        let recovery = reach.answered(secs(t0, 110), wall(110));
        assert_eq!(recovery, Some(Recovery::Quiet(QUIET)));
        assert_eq!(reach.recovered(), Some(wall(110)));
        assert_eq!(reach.answered(secs(t0, 500), wall(500)), None, "only once");
        assert!(!reach.ping_due(secs(t0, 500)));
    }

    #[test]
    fn an_answer_sent_before_the_latest_failure_says_nothing() {
        let t0 = Instant::now();
        let mut reach = answering(t0);
        for n in [1, 5, 10] {
            reach.failed(secs(t0, n));
        }
        assert_eq!(reach.answered(secs(t0, 9), wall(9)), None);
        assert!(reach.ping_due(secs(t0, 11)), "still failing");
        let recovery = reach.answered(secs(t0, 10), wall(10));
        assert_eq!(recovery, Some(Recovery::Outage(Duration::from_secs(9))));
        assert_eq!(reach.recovered(), Some(wall(10)));
    }

    #[test]
    fn outcomes_count_by_when_their_requests_were_sent() {
        let t0 = Instant::now();
        let mut reach = answering(t0);
        for n in [1, 5] {
            reach.failed(secs(t0, n));
        }
        // a request sent at 2 hung; a ping sent at 8 fails, one at 12 succeeds
        reach.failed(secs(t0, 8));
        let recovery = reach.answered(secs(t0, 12), wall(12));
        assert_eq!(recovery, Some(Recovery::Outage(Duration::from_secs(7))));
        // the hung request times out now: older than the success, no news
        reach.failed(secs(t0, 2));
        assert!(!reach.ping_due(secs(t0, 100)));
        assert_eq!(reach.answered(secs(t0, 20), wall(20)), None);
        assert_eq!(reach.recovered(), Some(wall(12)));
    }

    #[test]
    fn a_new_process_pings_then_recovers_on_the_first_answer() {
        let t0 = Instant::now();
        let fresh = Reachability::new(QUIET);
        assert!(
            fresh.ping_due(t0),
            "objects may wait on a previous process's failures"
        );
        let mut reach = fresh.clone();
        assert_eq!(reach.answered(t0, wall(0)), Some(Recovery::First));
        assert!(!reach.ping_due(secs(t0, 60)));
        // failing since before this process: any later answer recovers
        let mut failing = fresh;
        failing.failed(secs(t0, 1));
        assert!(failing.ping_due(secs(t0, 1)));
        assert_eq!(
            failing.answered(secs(t0, 2), wall(2)),
            Some(Recovery::First)
        );
    }
}
