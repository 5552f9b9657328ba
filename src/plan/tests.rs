use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::*;
use crate::api::conditions::{ConditionType, Reason};
use crate::api::{DeletionPolicy, MappedDomainSpec, MappedDomainStatus, Ownership, Stage};

const RESYNC: Duration = Duration::from_secs(300);
const LABEL: &str = "account-0001";

fn spec(domain: &str) -> MappedDomainSpec {
    MappedDomainSpec {
        domain: domain.into(),
        ..MappedDomainSpec::default()
    }
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

fn facts<'a>(
    spec: &'a MappedDomainSpec,
    previous: Option<&'a MappedDomainStatus>,
    observation: Observation,
) -> Facts<'a> {
    Facts {
        now: at(0),
        generation: Some(1),
        spec,
        previous,
        deleting: false,
        finalized: true,
        reconcile_request: None,
        conflict: None,
        credentials: Credentials::Available {
            label: LABEL.into(),
        },
        rejected_key: None,
        invalid_domain: None,
        observation,
        account_recovered: None,
        settings: Settings {
            dry_run: false,
            resync: RESYNC,
            probe: ProbeSettings::default(),
        },
    }
}

fn transient() -> Failure {
    Failure {
        reason: Reason::ClosteUnavailable,
        message: "Closte unavailable: HTTP 502".into(),
        retry: Retry::BackOff,
    }
}

fn rejected_domain() -> Failure {
    Failure {
        reason: Reason::DomainRejected,
        message: "Closte rejected domain: Invalid or empty domain: shop.example.com".into(),
        retry: Retry::Stop,
    }
}

/// The action of a plan that acts.
fn action_of(facts: &Facts<'_>) -> Action {
    match decide(facts) {
        Plan::Act { action, .. } => action,
        other => panic!("expected an action, got {other:?}"),
    }
}

/// decide, pretend the action had `outcome` (and `check` ran), conclude.
fn pass_checked(facts: &Facts<'_>, outcome: Outcome, check: Option<Check>) -> (Action, Conclusion) {
    let action = action_of(facts);
    let outcome = if action == Action::Nothing {
        Outcome::Idle
    } else {
        outcome
    };
    let acted = Acted::new(facts, action, outcome);
    (action, conclude(facts, &acted, check.as_ref(), 0.5))
}

fn pass(facts: &Facts<'_>, outcome: Outcome) -> (Action, Conclusion) {
    pass_checked(facts, outcome, None)
}

fn condition(status: &MappedDomainStatus, type_: ConditionType) -> (&str, &str) {
    let c = status.condition(type_).unwrap();
    (c.status.as_str(), c.reason.as_str())
}

fn reasons(c: &Conclusion) -> Vec<Reason> {
    c.events.iter().map(|e| e.reason).collect()
}

#[test]
fn new_domain_is_added_and_owned() {
    let spec = spec("shop.example.com");
    let f = facts(&spec, None, Observation::Absent);
    let (action, c) = pass(&f, Outcome::Added);
    assert_eq!(action, Action::Add);
    let s = &c.status;
    assert_eq!(condition(s, ConditionType::Registered), ("True", "Added"));
    assert_eq!(condition(s, ConditionType::Ready), ("False", "NotChecked"));
    assert_eq!(
        condition(s, ConditionType::Reconciling),
        ("True", "NotChecked")
    );
    assert_eq!(
        condition(s, ConditionType::Stalled),
        ("False", "Progressing")
    );
    assert_eq!(
        condition(s, ConditionType::DnsReady),
        ("Unknown", "NotChecked")
    );
    assert_eq!(s.stage, Some(Stage::CheckingDns));
    assert_eq!(s.ownership, Some(Ownership::Created));
    assert_eq!(s.observed_generation, Some(1));
    assert_eq!(s.registered_at, Some(Time(at(0))));
    assert_eq!(s.failed_attempts, None);
    assert_eq!(c.requeue, RESYNC);
    assert_eq!(c.events.len(), 1);
    assert_eq!(
        (c.events[0].reason, c.events[0].warning),
        (Reason::Added, false)
    );
    assert_eq!(ConditionType::ALL.len(), s.conditions.len());
}

#[test]
fn existing_alias_is_adopted_without_a_write() {
    let spec = spec("shop.example.com");
    let (action, c) = pass(&facts(&spec, None, Observation::Present), Outcome::Idle);
    assert_eq!(action, Action::Nothing);
    assert_eq!(c.status.ownership, Some(Ownership::Adopted));
    assert_eq!(
        condition(&c.status, ConditionType::Registered),
        ("True", "Adopted")
    );
    assert_eq!(c.events[0].reason, Reason::Adopted);
}

#[test]
fn settled_domain_changes_nothing() {
    let spec = spec("shop.example.com");
    let (_, first) = pass(&facts(&spec, None, Observation::Absent), Outcome::Added);
    let mut later = facts(&spec, Some(&first.status), Observation::Present);
    later.now = at(600);
    let (action, second) = pass(&later, Outcome::Idle);
    assert_eq!(action, Action::Nothing);
    assert_eq!(
        second.status, first.status,
        "a settled domain must not rewrite status"
    );
    assert!(second.events.is_empty());
    assert_eq!(second.status.ownership, Some(Ownership::Created));
}

#[test]
fn vanished_alias_is_added_again() {
    let spec = spec("shop.example.com");
    let (_, first) = pass(&facts(&spec, None, Observation::Absent), Outcome::Added);
    let (action, c) = pass(
        &facts(&spec, Some(&first.status), Observation::Absent),
        Outcome::Added,
    );
    assert_eq!(action, Action::Add);
    assert_eq!(
        condition(&c.status, ConditionType::Registered),
        ("True", "ReRegistered")
    );
    assert_eq!(c.events[0].reason, Reason::ReRegistered);
}

#[test]
fn conflict_loser_never_touches_closte() {
    let spec = spec("shop.example.com");
    let mut f = facts(&spec, None, Observation::NotObserved);
    f.conflict = Some(ConflictWinner {
        namespace: "a".into(),
        name: "first".into(),
    });
    let (action, c) = pass(&f, Outcome::Idle);
    assert_eq!(action, Action::Nothing);
    assert_eq!(
        condition(&c.status, ConditionType::Stalled),
        ("True", "DomainConflict")
    );
    assert_eq!(condition(&c.status, ConditionType::Reconciling).0, "False");
    assert_eq!(c.status.stage, Some(Stage::Failed));
    assert_eq!(c.status.failed_attempts, None);
    assert!(c.events[0].warning && c.events[0].message.contains("a/first"));
    f.deleting = true;
    f.observation = Observation::Present;
    assert_eq!(action_of(&f), Action::Release);
}

#[test]
fn missing_credentials_stall_and_retry_slowly() {
    let spec = spec("shop.example.com");
    let mut f = facts(&spec, None, Observation::NotObserved);
    f.credentials = Credentials::SecretNotFound {
        secret: "closte".into(),
    };
    let (action, c) = pass(&f, Outcome::Idle);
    assert_eq!(action, Action::Nothing);
    assert_eq!(
        condition(&c.status, ConditionType::Stalled),
        ("True", "CredentialsNotFound")
    );
    assert_eq!(c.requeue, SLOW_RETRY);
    assert_eq!(c.status.failed_attempts, Some(1));
    let mut again = facts(&spec, Some(&c.status), Observation::NotObserved);
    again.credentials = f.credentials.clone();
    again.now = at(1);
    assert_eq!(
        decide(&again),
        Plan::Wait(SLOW_RETRY - Duration::from_secs(1))
    );
    again.now = at(300);
    let (_, c2) = pass(&again, Outcome::Idle);
    assert!(c2.events.is_empty(), "same problem, no new event");
    assert_eq!(c2.status.failed_attempts, Some(2));
}

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
fn a_failed_add_keeps_the_intent() {
    // the add's answer was lost: the alias may be on Closte, and is ours if so
    let spec = spec("shop.example.com");
    let (action, c) = pass(
        &facts(&spec, None, Observation::Absent),
        Outcome::Failed(transient()),
    );
    assert_eq!(action, Action::Add);
    assert_eq!(c.status.ownership, Some(Ownership::Created));
    let mut deleting = facts(&spec, Some(&c.status), Observation::Present);
    deleting.deleting = true;
    deleting.now = at(10);
    assert!(deleting.deletes_alias());
    assert_eq!(action_of(&deleting), Action::DeleteThenRelease);
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
fn rejected_domain_stalls_once() {
    let spec = spec("shop.example.com");
    let rejected = rejected_domain();
    let (_, c) = pass(
        &facts(&spec, None, Observation::Absent),
        Outcome::Failed(rejected.clone()),
    );
    assert_eq!(
        condition(&c.status, ConditionType::Stalled),
        ("True", "DomainRejected")
    );
    assert_eq!(c.status.stage, Some(Stage::Failed));
    assert_eq!(c.requeue, SLOW_RETRY);
    assert!(c.events[0].warning);
    let mut later = facts(&spec, Some(&c.status), Observation::Absent);
    later.now = at(300);
    let (_, again) = pass(&later, Outcome::Failed(rejected));
    assert!(again.events.is_empty());
}

#[test]
fn deletion_follows_policy_and_ownership() {
    let cases = [
        (
            None,
            Some(Ownership::Created),
            Observation::Present,
            Action::DeleteThenRelease,
        ),
        (
            None,
            Some(Ownership::Adopted),
            Observation::Present,
            Action::Release,
        ),
        (None, None, Observation::Present, Action::Release),
        (
            Some(DeletionPolicy::Orphan),
            Some(Ownership::Created),
            Observation::Present,
            Action::Release,
        ),
        (
            Some(DeletionPolicy::Delete),
            Some(Ownership::Adopted),
            Observation::Present,
            Action::DeleteThenRelease,
        ),
        (
            Some(DeletionPolicy::Delete),
            Some(Ownership::Created),
            Observation::Absent,
            Action::Release,
        ),
        (
            Some(DeletionPolicy::Delete),
            Some(Ownership::Created),
            Observation::NotObserved,
            Action::Nothing,
        ),
        (
            Some(DeletionPolicy::Delete),
            Some(Ownership::Created),
            Observation::Failed(transient()),
            Action::Nothing,
        ),
    ];
    for (policy, ownership, observation, want) in cases {
        let mut spec = spec("shop.example.com");
        spec.deletion_policy = policy;
        let previous = MappedDomainStatus {
            ownership,
            ..Default::default()
        };
        let mut f = facts(&spec, Some(&previous), observation.clone());
        f.deleting = true;
        assert_eq!(
            action_of(&f),
            want,
            "{policy:?} {ownership:?} {observation:?}"
        );
    }
}

#[test]
fn deletion_events() {
    let spec = spec("shop.example.com");
    let previous = MappedDomainStatus {
        ownership: Some(Ownership::Adopted),
        ..Default::default()
    };
    let mut f = facts(&spec, Some(&previous), Observation::Present);
    f.deleting = true;
    let (_, c) = pass(&f, Outcome::Released);
    assert_eq!(c.events[0].reason, Reason::Orphaned);
    assert!(c.events[0].message.contains("adopted"));
    let created = MappedDomainStatus {
        ownership: Some(Ownership::Created),
        ..Default::default()
    };
    let mut f = facts(&spec, Some(&created), Observation::Present);
    f.deleting = true;
    let (action, c) = pass(&f, Outcome::Deleted);
    assert_eq!(action, Action::DeleteThenRelease);
    assert_eq!(c.events[0].reason, Reason::Deregistered);
}

#[test]
fn suspend_and_dry_run_write_nothing() {
    let mut suspended = spec("shop.example.com");
    suspended.suspend = Some(true);
    let (action, c) = pass(&facts(&suspended, None, Observation::Absent), Outcome::Idle);
    assert_eq!(action, Action::Nothing);
    assert_eq!(
        condition(&c.status, ConditionType::Registered),
        ("False", "Suspended")
    );
    let plain = spec("shop.example.com");
    let mut f = facts(&plain, None, Observation::Absent);
    f.settings.dry_run = true;
    let (action, c) = pass(&f, Outcome::Idle);
    assert_eq!(action, Action::Nothing);
    assert_eq!(
        condition(&c.status, ConditionType::Registered),
        ("False", "DryRun")
    );
    assert!(c.events[0].message.contains("would add"));
    // deleting a suspended object lets it go without a Closte write
    let created = MappedDomainStatus {
        ownership: Some(Ownership::Created),
        ..Default::default()
    };
    let mut f = facts(&suspended, Some(&created), Observation::Present);
    f.deleting = true;
    assert_eq!(action_of(&f), Action::Release);
}

#[test]
fn reconcile_request_is_echoed() {
    let spec = spec("shop.example.com");
    let mut f = facts(&spec, None, Observation::Present);
    f.reconcile_request = Some("2026-11-24T10:00:00Z");
    let (_, c) = pass(&f, Outcome::Idle);
    assert_eq!(
        c.status.last_handled_reconcile_at.as_deref(),
        Some("2026-11-24T10:00:00Z")
    );
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

/// The status after a pass that failed with `failure` at `at(0)`, with
/// `attempts` failures in all.
fn failed_status(spec: &MappedDomainSpec, failure: Failure, attempts: i32) -> MappedDomainStatus {
    let (_, c) = pass(
        &facts(spec, None, Observation::Absent),
        Outcome::Failed(failure),
    );
    MappedDomainStatus {
        failed_attempts: Some(attempts),
        ..c.status
    }
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

#[test]
fn the_finalizer_comes_first_and_goes_last() {
    let spec = spec("shop.example.com");
    let mut fresh = facts(&spec, None, Observation::NotObserved);
    fresh.finalized = false;
    assert_eq!(decide(&fresh), Plan::AddFinalizer);
    assert!(!observes(&fresh));
    fresh.deleting = true;
    assert_eq!(
        decide(&fresh),
        Plan::Skip,
        "deleting without our finalizer: not ours"
    );

    // the intent is written before an add, once
    let absent = facts(&spec, None, Observation::Absent);
    let Plan::Act { intent, action } = decide(&absent) else {
        panic!("expected an action")
    };
    assert_eq!(action, Action::Add);
    assert_eq!(intent.unwrap().ownership, Some(Ownership::Created));
    let created = MappedDomainStatus {
        ownership: Some(Ownership::Created),
        ..Default::default()
    };
    let again = facts(&spec, Some(&created), Observation::Absent);
    assert!(matches!(
        decide(&again),
        Plan::Act {
            intent: None,
            action: Action::Add
        }
    ));

    // a deletion that removed the alias releases the finalizer instead of writing status
    let mut deleting = facts(&spec, Some(&created), Observation::Present);
    deleting.deleting = true;
    let (_, c) = pass(&deleting, Outcome::Deleted);
    assert!(c.release_finalizer && !c.write_status);
    // one that failed keeps it, and says why
    let (_, c) = pass(&deleting, Outcome::Failed(transient()));
    assert!(!c.release_finalizer && c.write_status);
    assert_eq!(c.events[0].reason, Reason::ClosteUnavailable);
    assert_eq!(c.events[0].action, "DeleteAlias");
}

#[test]
fn an_invalid_domain_stalls_without_asking_closte() {
    let spec = spec("bad..example.com");
    let mut f = facts(&spec, None, Observation::NotObserved);
    f.invalid_domain = Some("invalid domain \"bad..example.com\": empty label".into());
    assert!(!observes(&f));
    let (action, c) = pass(&f, Outcome::Idle);
    assert_eq!(action, Action::Nothing);
    assert_eq!(
        condition(&c.status, ConditionType::Stalled),
        ("True", "DomainRejected")
    );
    assert_eq!(c.requeue, SLOW_RETRY);
}

#[test]
fn unchanged_status_is_not_written() {
    let spec = spec("shop.example.com");
    let (_, first) = pass(&facts(&spec, None, Observation::Present), Outcome::Idle);
    assert!(first.write_status);
    let (_, second) = pass(
        &facts(&spec, Some(&first.status), Observation::Present),
        Outcome::Idle,
    );
    assert!(!second.write_status);
}

mod stages {
    use super::*;
    use crate::api::CertificateStatus;

    fn cert(serial: &str, not_after_days: i64) -> CertificateStatus {
        CertificateStatus {
            issuer: "CN=Test CA".into(),
            subject: "CN=shop.example.com".into(),
            dns_names: vec!["shop.example.com".into()],
            serial_number: serial.into(),
            not_before: Time(at(-3600)),
            not_after: Time(at(not_after_days * 86400)),
            sha256_fingerprint: "AA".into(),
        }
    }

    fn tls(reason: Reason, certificate: Option<CertificateStatus>) -> TlsCheck {
        TlsCheck {
            reason,
            certificate,
            message: format!("tls says {reason}"),
        }
    }

    fn check(dns: Reason, tls: Option<TlsCheck>) -> Check {
        Check {
            dns: DnsCheck {
                reason: dns,
                records: vec!["203.0.113.7".into()],
                message: format!("dns says {dns}"),
            },
            expected: vec!["203.0.113.7".into()],
            tls,
        }
    }

    /// Runs checks over a registered domain, one pass per check, 600 s apart.
    fn run(checks: Vec<Check>) -> Vec<Conclusion> {
        let spec = spec("shop.example.com");
        let (_, first) = pass(&facts(&spec, None, Observation::Absent), Outcome::Added);
        let mut status = first.status;
        let mut out = Vec::new();
        for (i, c) in checks.into_iter().enumerate() {
            let mut f = facts(&spec, Some(&status), Observation::Present);
            f.now = at(600 * (i as i64 + 1));
            let (_, c) = pass_checked(&f, Outcome::Idle, Some(c));
            status = c.status.clone();
            out.push(c);
        }
        out
    }

    #[test]
    fn dns_then_certificate_then_done() {
        let valid = || Some(tls(Reason::Valid, Some(cert("01", 90))));
        let passes = run(vec![
            check(Reason::NxDomain, None),
            check(Reason::NxDomain, None),
            check(
                Reason::Matched,
                Some(tls(Reason::HostnameMismatch, Some(cert("FF", 90)))),
            ),
            check(Reason::Matched, valid()),
        ]);
        let s = &passes[1].status;
        assert_eq!(s.stage, Some(Stage::CheckingDns));
        assert_eq!(s.checks, Some(2));
        assert_eq!(condition(s, ConditionType::DnsReady), ("False", "NXDOMAIN"));
        assert_eq!(
            condition(s, ConditionType::CertificateReady),
            ("Unknown", "DNSNotReady")
        );
        assert_eq!(condition(s, ConditionType::Ready), ("False", "NXDOMAIN"));
        // next check: the checkInterval (300 s), spread ±10 % (jitter 0.5: exact)
        assert_eq!(s.next_check_time, Some(Time(at(1200 + 300))));

        let s = &passes[2].status;
        assert_eq!(s.stage, Some(Stage::CheckingSslCert));
        assert_eq!(s.checks, Some(1), "a new stage counts from one");
        assert_eq!(
            condition(s, ConditionType::CertificateReady),
            ("False", "HostnameMismatch")
        );
        assert_eq!(
            s.certificate.as_ref().unwrap().serial_number,
            "FF",
            "recorded though invalid"
        );
        assert_eq!(reasons(&passes[2]), [Reason::DnsReady]);

        let done = &passes[3];
        let s = &done.status;
        assert_eq!(s.stage, Some(Stage::Done));
        assert_eq!(s.checks, None);
        assert_eq!(condition(s, ConditionType::Ready), ("True", "Ready"));
        assert_eq!(condition(s, ConditionType::Reconciling).0, "False");
        assert_eq!(condition(s, ConditionType::Stalled).0, "False");
        assert_eq!(s.certificate.as_ref().unwrap().serial_number, "01");
        assert!(s.dns.as_ref().unwrap().matched);
        assert_eq!(reasons(done), [Reason::CertificateIssued]);
        // done: the slow re-check
        assert_eq!(s.next_check_time, Some(Time(at(2400 + 12 * 3600))));
        // the resync (drift) comes first
        assert_eq!(done.requeue, RESYNC);
    }

    #[test]
    fn failed_after_max_attempts_but_still_checking() {
        let mut probes: Vec<Check> = (0..6)
            .map(|_| check(Reason::TargetMismatch, None))
            .collect();
        probes.push(check(
            Reason::Matched,
            Some(tls(Reason::Valid, Some(cert("01", 90)))),
        ));
        let passes = run(probes);
        let s = &passes[4].status;
        assert_eq!(s.stage, Some(Stage::CheckingDns));
        let failed = &passes[5];
        assert_eq!(failed.status.stage, Some(Stage::Failed));
        assert_eq!(
            condition(&failed.status, ConditionType::Stalled),
            ("True", "TargetMismatch")
        );
        assert_eq!(reasons(failed), [Reason::DnsNotReady]);
        // slower, not stopped: 4 x 300 s
        assert_eq!(failed.status.next_check_time, Some(Time(at(3600 + 1200))));
        // a late DNS fix still ends done
        assert_eq!(passes[6].status.stage, Some(Stage::Done));
        assert_eq!(
            condition(&passes[6].status, ConditionType::Stalled).0,
            "False"
        );
    }

    #[test]
    fn ssl_failed_after_max_attempts() {
        let probes = (0..6)
            .map(|_| check(Reason::Matched, Some(tls(Reason::Untrusted, None))))
            .collect();
        let passes = run(probes);
        let last = &passes[5];
        assert_eq!(last.status.stage, Some(Stage::SslFailed));
        assert_eq!(
            condition(&last.status, ConditionType::Stalled),
            ("True", "Untrusted")
        );
        assert_eq!(reasons(last), [Reason::CertificateNotReady]);
    }

    #[test]
    fn flapping_dns_and_a_replaced_certificate() {
        let valid = |serial: &str| Some(tls(Reason::Valid, Some(cert(serial, 90))));
        let passes = run(vec![
            check(Reason::Matched, valid("01")),
            check(Reason::TargetMismatch, None),
            check(Reason::Matched, valid("01")),
            check(Reason::Matched, valid("02")),
        ]);
        assert_eq!(passes[1].status.stage, Some(Stage::CheckingDns));
        assert_eq!(reasons(&passes[1]), [Reason::DnsLost]);
        assert_eq!(
            condition(&passes[1].status, ConditionType::Ready).0,
            "False"
        );
        assert_eq!(
            passes[1].status.certificate.as_ref().unwrap().serial_number,
            "01",
            "kept"
        );
        assert_eq!(passes[2].status.stage, Some(Stage::Done));
        assert_eq!(reasons(&passes[3]), [Reason::CertificateRenewed]);
    }

    #[test]
    fn expiring_certificate_warns_once() {
        let soon = || Some(tls(Reason::Valid, Some(cert("01", 5))));
        let passes = run(vec![
            check(Reason::Matched, soon()),
            check(Reason::Matched, soon()),
        ]);
        let s = &passes[0].status;
        assert_eq!(
            condition(s, ConditionType::CertificateReady),
            ("True", "CertificateExpiringSoon")
        );
        assert_eq!(condition(s, ConditionType::Ready).0, "True", "still valid");
        assert_eq!(
            reasons(&passes[0]),
            [Reason::CertificateIssued, Reason::CertificateExpiringSoon]
        );
        assert!(passes[0].events[1].warning);
        assert!(reasons(&passes[1]).is_empty(), "warned once");
        // a certificate far from the window: the 12 h re-check
        let fine = run(vec![check(
            Reason::Matched,
            Some(tls(Reason::Valid, Some(cert("01", 20)))),
        )]);
        assert_eq!(
            fine[0].status.next_check_time,
            Some(Time(at(600 + 12 * 3600)))
        );
        // one whose warning window opens in an hour is looked at then
        let mut near = cert("01", 14);
        near.not_after = Time(at(14 * 86400 + 600 + 3600));
        let near = run(vec![check(
            Reason::Matched,
            Some(tls(Reason::Valid, Some(near))),
        )]);
        assert_eq!(near[0].status.next_check_time, Some(Time(at(600 + 3600))));
    }

    #[test]
    fn no_probe_carries_the_last_check_forward() {
        let passes = run(vec![check(
            Reason::Matched,
            Some(tls(Reason::Valid, Some(cert("01", 90)))),
        )]);
        let done = passes[0].status.clone();
        let spec = spec("shop.example.com");
        let mut f = facts(&spec, Some(&done), Observation::Present);
        f.now = at(700);
        assert!(!checks::check_due(Some(&done), f.now));
        let (_, c) = pass(&f, Outcome::Idle);
        assert_eq!(c.status, done, "nothing changes between checks");
        assert!(c.events.is_empty());
        assert!(checks::check_due(Some(&done), at(600 + 12 * 3600)));
    }
}

fn not_allowed() -> Credentials {
    Credentials::DefaultKeyNotAllowed {
        namespace: "tenant".into(),
    }
}

fn selector(text: &str) -> Option<kube::core::Selector> {
    Some(crate::selector::parse(text).unwrap())
}

fn labels(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn without_either_flag_the_default_key_serves_every_namespace() {
    let scope = DefaultKeyScope::from_flags(None, None);
    assert_eq!(scope, DefaultKeyScope::Everywhere);
    assert!(scope.allows("anything", None));
    assert!(!scope.needs_labels("anything"));
    assert!(scope.selector().is_none(), "no Namespace watch");
}

#[test]
fn the_default_key_serves_listed_namespaces_and_matching_labels_only() {
    let listed = [
        "wp-platform".to_owned(),
        " shared ".to_owned(),
        String::new(),
    ];
    let allowed = labels(&[("closte-operator.io/default-key", "allowed")]);
    let other = labels(&[("closte-operator.io/default-key", "no")]);

    let by_name = DefaultKeyScope::from_flags(Some(&listed), None);
    assert!(by_name.allows("wp-platform", None));
    assert!(by_name.allows("shared", None), "names are trimmed");
    assert!(
        !by_name.allows("tenant", Some(&allowed)),
        "no selector given"
    );
    assert!(!by_name.allows("", None), "an empty name names nothing");
    assert!(!by_name.needs_labels("tenant"));

    let by_label =
        DefaultKeyScope::from_flags(None, selector("closte-operator.io/default-key=allowed"));
    assert!(by_label.needs_labels("tenant"));
    assert!(by_label.allows("tenant", Some(&allowed)));
    assert!(!by_label.allows("tenant", Some(&other)));
    assert!(!by_label.allows("tenant", Some(&labels(&[]))));
    assert!(!by_label.allows("tenant", None), "an unknown namespace");

    let both = DefaultKeyScope::from_flags(Some(&listed), selector("!closte-operator.io/tenant"));
    assert!(
        both.allows("wp-platform", None),
        "a listed name needs no labels"
    );
    assert!(!both.needs_labels("wp-platform"));
    assert!(both.allows("tenant", Some(&labels(&[]))));
    assert!(
        !both.allows("tenant", None),
        "an unknown namespace matches no selector, not even a negative one"
    );

    // given empty (the restrictive default a chart may render): nowhere
    let nowhere = DefaultKeyScope::from_flags(Some(&[]), None);
    assert!(!nowhere.allows("default", None));
    assert!(nowhere.selector().is_none());
}

#[test]
fn a_default_key_not_allowed_stalls_without_touching_closte() {
    let spec = spec("shop.example.com");
    let mut f = facts(&spec, None, Observation::NotObserved);
    f.credentials = not_allowed();
    assert!(!observes(&f), "no alias list is read for it");
    let (action, c) = pass(&f, Outcome::Idle);
    assert_eq!(action, Action::Nothing);
    let s = &c.status;
    assert_eq!(
        condition(s, ConditionType::Registered),
        ("False", "DefaultKeyNotAllowed")
    );
    assert_eq!(
        condition(s, ConditionType::Stalled),
        ("True", "DefaultKeyNotAllowed")
    );
    assert_eq!(condition(s, ConditionType::Reconciling).0, "False");
    assert_eq!(condition(s, ConditionType::Ready).0, "False");
    let message = &s.condition(ConditionType::Stalled).unwrap().message;
    for part in [
        "\"tenant\"",
        "--default-key-namespaces",
        "--default-key-namespace-selector",
        "spec.credentialsRef",
    ] {
        assert!(message.contains(part), "{part} not in {message:?}");
    }
    assert_eq!(s.stage, Some(Stage::Failed));
    assert_eq!(s.ownership, None, "no intent: nothing is added");
    assert_eq!(c.requeue, SLOW_RETRY, "no retry loop");
    assert_eq!(c.events.len(), 1);
    assert!(c.events[0].warning);
    assert_eq!(c.events[0].reason, Reason::DefaultKeyNotAllowed);
    assert_eq!(c.rejected_key, None);

    // its own status write brings a pass: it waits, and says nothing new
    let mut again = facts(&spec, Some(&c.status), Observation::NotObserved);
    again.credentials = not_allowed();
    again.now = at(1);
    assert_eq!(
        decide(&again),
        Plan::Wait(SLOW_RETRY - Duration::from_secs(1))
    );
    again.now = at(300);
    let (action, c2) = pass(&again, Outcome::Idle);
    assert_eq!(action, Action::Nothing);
    assert!(c2.events.is_empty(), "same problem, no new event");
}

#[test]
fn a_namespace_allowed_later_registers_at_once() {
    let spec = spec("shop.example.com");
    let mut f = facts(&spec, None, Observation::NotObserved);
    f.credentials = not_allowed();
    let (_, c) = pass(&f, Outcome::Idle);
    // the namespace's label is added ten seconds later: the key is read
    let mut allowed = facts(&spec, Some(&c.status), Observation::NotObserved);
    allowed.now = at(10);
    assert_eq!(retry_wait(&allowed), None, "no wait for the slow retry");
    assert!(observes(&allowed));
    allowed.observation = Observation::Absent;
    let acted = Acted::new(&allowed, Action::Add, Outcome::Added);
    assert!(
        acted.wants_check(&allowed),
        "checked at once, not at the old pace"
    );
    let not_yet = Check {
        dns: DnsCheck {
            reason: Reason::NxDomain,
            records: Vec::new(),
            message: "shop.example.com does not exist".into(),
        },
        expected: Vec::new(),
        tls: None,
    };
    let (action, c) = pass_checked(&allowed, Outcome::Added, Some(not_yet));
    assert_eq!(action, Action::Add);
    assert_eq!(
        condition(&c.status, ConditionType::Registered),
        ("True", "Added")
    );
    assert_eq!(
        condition(&c.status, ConditionType::Stalled),
        ("False", "Progressing")
    );
    assert_eq!(c.status.failed_attempts, None);
}

/// Registered earlier with the default key, in a namespace no longer
/// allowed: Stalled, the alias left on Closte, its ownership kept; deleting
/// the object keeps the finalizer rather than spend the key to remove it.
#[test]
fn a_registered_object_whose_namespace_is_no_longer_allowed_keeps_its_alias() {
    let spec = spec("shop.example.com");
    let (_, first) = pass(&facts(&spec, None, Observation::Absent), Outcome::Added);
    let mut f = facts(&spec, Some(&first.status), Observation::NotObserved);
    f.now = at(600);
    f.credentials = not_allowed();
    let (action, c) = pass(&f, Outcome::Idle);
    assert_eq!(action, Action::Nothing, "nothing is deleted");
    assert_eq!(
        condition(&c.status, ConditionType::Stalled),
        ("True", "DefaultKeyNotAllowed")
    );
    assert_eq!(
        condition(&c.status, ConditionType::Registered).0,
        "False",
        "not known to be on Closte any more: not asked"
    );
    assert_eq!(c.status.ownership, Some(Ownership::Created));
    assert_eq!(c.status.registered_at, first.status.registered_at);
    assert_eq!(c.events[0].reason, Reason::DefaultKeyNotAllowed);

    let mut deleting = facts(&spec, Some(&c.status), Observation::NotObserved);
    deleting.now = at(1200);
    deleting.deleting = true;
    deleting.credentials = not_allowed();
    assert!(!observes(&deleting));
    let (action, d) = pass(&deleting, Outcome::Idle);
    assert_eq!(action, Action::Nothing);
    assert!(!d.release_finalizer, "the alias it created waits for a key");
    // never registered, deletionPolicy unset: nothing of its own on Closte
    let mut never = facts(&spec, None, Observation::NotObserved);
    never.deleting = true;
    never.credentials = not_allowed();
    let (action, d) = pass(&never, Outcome::Released);
    assert_eq!(action, Action::Release);
    assert!(d.release_finalizer);
}
