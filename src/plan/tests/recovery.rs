//! Failures and recovery: backoff, Closte's rate limit, the retry gate,
//! new credentials, and the wake after an account answers again.

use super::*;

#[test]
fn transient_errors_back_off_then_recover() {
    let spec = spec("shop.example.com");
    let down = transient();
    let mut status: Option<MappedDomainStatus> = None;
    let mut delays = Vec::new();
    let mut now = 0;
    for _ in 0..4 {
        let mut f = facts(&spec, status.as_ref(), Observation::Absent);
        f.now = at(now);
        let (action, c) = pass(&f, Outcome::Failed(down.clone()));
        assert_eq!(action, Action::Add);
        assert_eq!(condition(&c.status, ConditionType::Stalled).0, "False");
        assert_eq!(
            condition(&c.status, ConditionType::Ready),
            ("False", "ClosteUnavailable")
        );
        assert_eq!(c.status.stage, Some(Stage::Pending));
        delays.push(c.requeue.as_secs());
        status = Some(c.status);
        now += c.requeue.as_secs() as i64;
    }
    assert_eq!(delays, [5, 10, 20, 40]);
    assert_eq!(status.as_ref().unwrap().failed_attempts, Some(4));
    let last_failure = Some(Time(at(5 + 10 + 20)));
    assert_eq!(status.as_ref().unwrap().last_failure_time, last_failure);
    let mut f = facts(&spec, status.as_ref(), Observation::Absent);
    f.now = at(now);
    let (_, ok) = pass(&f, Outcome::Added);
    assert_eq!(ok.status.failed_attempts, None);
    assert_eq!(ok.status.last_failure_time, last_failure, "history is kept");
}

#[test]
fn rate_limit_waits_as_told() {
    let spec = spec("shop.example.com");
    let limited = Failure {
        reason: Reason::RateLimited,
        message: "Closte rate limit reached (retry after 42s)".into(),
        retry: Retry::After(Duration::from_secs(42)),
    };
    let (_, c) = pass(
        &facts(&spec, None, Observation::Absent),
        Outcome::Failed(limited),
    );
    assert_eq!(c.requeue, Duration::from_secs(42));
    assert_eq!(condition(&c.status, ConditionType::Stalled).0, "False");
}

#[test]
fn failures_gate_the_next_try() {
    let spec = spec("shop.example.com");
    let (_, c) = pass(
        &facts(&spec, None, Observation::Absent),
        Outcome::Failed(transient()),
    );
    let s = &c.status;
    let later = |secs: i64| {
        let mut f = facts(&spec, Some(s), Observation::NotObserved);
        f.now = at(secs);
        f
    };
    // 5 s backoff at the short end of the jitter: 4 s
    assert_eq!(retry_wait(&later(1)), Some(Duration::from_secs(3)));
    assert_eq!(decide(&later(1)), Plan::Wait(Duration::from_secs(3)));
    assert!(!observes(&later(1)), "a waiting pass does not ask Closte");
    assert_eq!(retry_wait(&later(4)), None);
    assert!(observes(&later(4)));
    // a spec change, a reconcile request or new credentials make it due at once
    let mut changed = later(1);
    changed.generation = Some(2);
    assert_eq!(retry_wait(&changed), None);
    let mut requested = later(1);
    requested.reconcile_request = Some("now");
    assert_eq!(retry_wait(&requested), None);
    // suspended or conflicting objects never wait: they write nothing anyway
    let mut suspended_spec = spec.clone();
    suspended_spec.suspend = Some(true);
    let mut suspended = facts(&suspended_spec, Some(s), Observation::NotObserved);
    suspended.now = at(1);
    assert!(matches!(decide(&suspended), Plan::Act { .. }));
    // no failure, no gate
    let (_, ok) = pass(&facts(&spec, None, Observation::Absent), Outcome::Added);
    assert_eq!(
        retry_wait(&facts(&spec, Some(&ok.status), Observation::NotObserved)),
        None
    );
    // a rejection waits for the slow retry
    let (_, r) = pass(
        &facts(&spec, None, Observation::Absent),
        Outcome::Failed(rejected_domain()),
    );
    let mut f = facts(&spec, Some(&r.status), Observation::NotObserved);
    f.now = at(100);
    assert_eq!(retry_wait(&f), Some(SLOW_RETRY - Duration::from_secs(100)));
}

/// Facts at `at(30)` for an object with `status`, whose account answered
/// again at `recovered` (seconds, as `at`) when given.
fn thirty_seconds_on<'a>(
    spec: &'a MappedDomainSpec,
    status: &'a MappedDomainStatus,
    recovered: Option<Timestamp>,
) -> Facts<'a> {
    let mut f = facts(spec, Some(status), Observation::NotObserved);
    f.now = at(30);
    f.account_recovered = recovered;
    f
}

#[test]
fn a_rate_limit_waits_for_closte_s_pause_not_the_backoff() {
    let spec = spec("shop.example.com");
    let limited = Failure {
        reason: Reason::RateLimited,
        message: "Closte asked to slow down".into(),
        retry: Retry::After(Duration::from_secs(2)),
    };
    // six 429s in a row: a transient failure would wait 128 s
    let status = failed_status(&spec, limited, 6);
    let (_, c) = pass(
        &facts(&spec, Some(&status), Observation::Absent),
        Outcome::Failed(Failure {
            reason: Reason::RateLimited,
            message: "Closte asked to slow down".into(),
            retry: Retry::After(Duration::from_secs(2)),
        }),
    );
    assert_eq!(c.requeue, Duration::from_secs(2), "back after Retry-After");
    let mut f = facts(&spec, Some(&status), Observation::NotObserved);
    f.now = at(2);
    assert_eq!(retry_wait(&f), None, "and the gate lets that pass try");
    let backed_off = failed_status(&spec, transient(), 6);
    let mut f = facts(&spec, Some(&backed_off), Observation::NotObserved);
    f.now = at(2);
    assert!(retry_wait(&f).is_some(), "a 5xx still backs off");
}

#[test]
fn an_account_that_answers_again_wakes_closte_failures() {
    let spec = spec("shop.example.com");
    // six failures: the next try is 128 s after the last at the earliest
    let status = failed_status(&spec, transient(), 6);
    let waiting = Some(Duration::from_secs(128 - 30));
    assert_eq!(waiting_on_closte(&status), Some(at(0)));
    assert_eq!(
        retry_wait(&thirty_seconds_on(&spec, &status, None)),
        waiting
    );
    // the account answered after the failure: due now, and the add runs
    let mut woken = thirty_seconds_on(&spec, &status, Some(at(20)));
    assert_eq!(retry_wait(&woken), None);
    assert!(observes(&woken));
    woken.observation = Observation::Absent;
    assert_eq!(action_of(&woken), Action::Add);
    // status keeps whole seconds: a recovery within the failure's own second
    // counts, so the last objects to fail in an outage are not left behind
    let same_second = at(0).checked_add(Duration::from_millis(900)).unwrap();
    let f = thirty_seconds_on(&spec, &status, Some(same_second));
    assert_eq!(retry_wait(&f), None);
    // a rate limit and an answer not understood are Closte's trouble too
    for (reason, retry) in [
        (Reason::RateLimited, Retry::After(Duration::from_secs(5))),
        (Reason::UnexpectedAnswer, Retry::BackOff),
    ] {
        let failure = Failure {
            reason,
            message: "Closte said no".into(),
            retry,
        };
        let status = failed_status(&spec, failure, 6);
        let f = thirty_seconds_on(&spec, &status, Some(at(20)));
        assert_eq!(retry_wait(&f), None, "{reason}");
    }
}

#[test]
fn a_recovery_before_the_failure_wakes_nothing() {
    let spec = spec("shop.example.com");
    let status = failed_status(&spec, transient(), 6);
    let waiting = Duration::from_secs(128 - 30);
    let earlier = thirty_seconds_on(&spec, &status, Some(at(-5)));
    assert_eq!(retry_wait(&earlier), Some(waiting));
    assert_eq!(decide(&earlier), Plan::Wait(waiting));
    assert!(!observes(&earlier), "a waiting pass does not ask Closte");
    let just_before = thirty_seconds_on(&spec, &status, Some(at(-1)));
    assert_eq!(retry_wait(&just_before), Some(waiting));
}

#[test]
fn failures_that_need_a_person_are_not_woken() {
    let spec = spec("shop.example.com");
    let rejected_key = Failure {
        reason: Reason::CredentialsRejected,
        message: "Closte rejected the API key: Invalid API key".into(),
        retry: Retry::Stop,
    };
    let slow = Some(SLOW_RETRY - Duration::from_secs(30));
    for failure in [rejected_domain(), rejected_key] {
        let status = failed_status(&spec, failure.clone(), 1);
        assert_eq!(waiting_on_closte(&status), None, "{}", failure.reason);
        let mut f = thirty_seconds_on(&spec, &status, Some(at(20)));
        f.rejected_key = Some(LABEL.into());
        assert_eq!(retry_wait(&f), slow, "{}", failure.reason);
    }
    // a missing Secret: no key, so no account to answer; the recovery of
    // another's changes nothing
    let mut missing = facts(&spec, None, Observation::NotObserved);
    missing.credentials = Credentials::SecretNotFound {
        secret: "closte".into(),
    };
    let (_, c) = pass(&missing, Outcome::Idle);
    let mut f = thirty_seconds_on(&spec, &c.status, Some(at(20)));
    f.credentials = missing.credentials.clone();
    assert_eq!(retry_wait(&f), slow);
    // a conflict is not a failure: nothing to wake, nothing to wait for
    let mut lost = facts(&spec, None, Observation::NotObserved);
    lost.conflict = Some(ConflictWinner {
        namespace: "a".into(),
        name: "first".into(),
    });
    let (_, c) = pass(&lost, Outcome::Idle);
    assert_eq!(waiting_on_closte(&c.status), None);
}

#[test]
fn new_credentials_end_the_wait() {
    let spec = spec("shop.example.com");
    // a missing Secret: due again as soon as a key can be read
    let mut missing = facts(&spec, None, Observation::NotObserved);
    missing.credentials = Credentials::SecretNotFound {
        secret: "closte".into(),
    };
    let (_, c) = pass(&missing, Outcome::Idle);
    let mut still_missing = facts(&spec, Some(&c.status), Observation::NotObserved);
    still_missing.credentials = missing.credentials.clone();
    still_missing.now = at(10);
    assert!(retry_wait(&still_missing).is_some());
    let mut found = facts(&spec, Some(&c.status), Observation::NotObserved);
    found.now = at(10);
    assert_eq!(retry_wait(&found), None);

    // a rejected key: remembered by label; the same key waits, another does not
    let rejected = Failure {
        reason: Reason::CredentialsRejected,
        message: "Closte rejected the API key: Invalid API key".into(),
        retry: Retry::Stop,
    };
    let (_, c) = pass(
        &facts(&spec, None, Observation::Absent),
        Outcome::Failed(rejected),
    );
    assert_eq!(
        c.rejected_key.as_deref(),
        Some(LABEL),
        "remember which key failed"
    );
    assert_eq!(
        condition(&c.status, ConditionType::Stalled),
        ("True", "CredentialsRejected")
    );
    let mut same = facts(&spec, Some(&c.status), Observation::NotObserved);
    same.rejected_key = c.rejected_key.clone();
    same.now = at(10);
    assert!(retry_wait(&same).is_some());
    let mut rotated = same.clone();
    rotated.credentials = Credentials::Available {
        label: "account-0002".into(),
    };
    assert_eq!(retry_wait(&rotated), None);
    let (_, ok) = pass(&facts(&spec, None, Observation::Absent), Outcome::Added);
    assert_eq!(ok.rejected_key, None, "forgotten once it works");
}
