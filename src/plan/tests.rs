use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;
use crate::api::{DeletionPolicy, Stage, conditions};

const RESYNC: Duration = Duration::from_secs(300);

fn spec(domain: &str) -> MappedDomainSpec {
    serde_json::from_value(serde_json::json!({ "domain": domain })).unwrap()
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
        conflict: None,
        credentials: Credentials::Available,
        observation,
        reconcile_request: None,
        settings: Settings {
            dry_run: false,
            resync: RESYNC,
        },
    }
}

/// decide, pretend the action had `outcome`, conclude.
fn pass(facts: &Facts<'_>, outcome: Outcome) -> (Action, Conclusion) {
    let action = decide(facts);
    let outcome = if action == Action::Nothing {
        Outcome::Idle
    } else {
        outcome
    };
    (action, conclude(facts, action, &outcome, 0.5))
}

fn condition<'s>(status: &'s MappedDomainStatus, type_: &str) -> (&'s str, &'s str) {
    let c = status.conditions.iter().find(|c| c.type_ == type_).unwrap();
    (c.status.as_str(), c.reason.as_str())
}

#[test]
fn new_domain_is_added_and_owned() {
    let spec = spec("shop.example.com");
    let f = facts(&spec, None, Observation::Absent);
    let (action, c) = pass(&f, Outcome::Added);
    assert_eq!(action, Action::Add);
    let s = &c.status;
    assert_eq!(condition(s, conditions::REGISTERED), ("True", "Added"));
    assert_eq!(condition(s, conditions::READY), ("False", "CheckingDNS"));
    assert_eq!(
        condition(s, conditions::RECONCILING),
        ("True", "CheckingDNS")
    );
    assert_eq!(condition(s, conditions::STALLED), ("False", "Progressing"));
    assert_eq!(
        condition(s, conditions::DNS_READY),
        ("Unknown", "NotChecked")
    );
    assert_eq!(s.stage, Some(Stage::CheckingDns));
    assert_eq!(s.ownership, Some(Ownership::Created));
    assert_eq!(s.observed_generation, Some(1));
    assert_eq!(s.registered_at, Some(Time(at(0))));
    assert_eq!(s.failed_attempts, None);
    assert_eq!(c.requeue, RESYNC);
    assert_eq!(c.events.len(), 1);
    assert_eq!((c.events[0].reason, c.events[0].warning), ("Added", false));
    assert_eq!(conditions::ALL.len(), s.conditions.len());
}

#[test]
fn existing_alias_is_adopted_without_a_write() {
    let spec = spec("shop.example.com");
    let (action, c) = pass(&facts(&spec, None, Observation::Present), Outcome::Idle);
    assert_eq!(action, Action::Nothing);
    assert_eq!(c.status.ownership, Some(Ownership::Adopted));
    assert_eq!(
        condition(&c.status, conditions::REGISTERED),
        ("True", "Adopted")
    );
    assert_eq!(c.events[0].reason, "Adopted");
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
        condition(&c.status, conditions::REGISTERED),
        ("True", "ReRegistered")
    );
    assert_eq!(c.events[0].reason, "ReRegistered");
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
        condition(&c.status, conditions::STALLED),
        ("True", "DomainConflict")
    );
    assert_eq!(condition(&c.status, conditions::RECONCILING).0, "False");
    assert_eq!(c.status.stage, Some(Stage::Failed));
    assert_eq!(c.status.failed_attempts, None);
    assert!(c.events[0].warning && c.events[0].message.contains("a/first"));
    f.deleting = true;
    f.observation = Observation::Present;
    assert_eq!(decide(&f), Action::Release);
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
        condition(&c.status, conditions::STALLED),
        ("True", "CredentialsNotFound")
    );
    assert_eq!(c.requeue, SLOW_RETRY);
    assert_eq!(c.status.failed_attempts, Some(1));
    let mut again = facts(&spec, Some(&c.status), Observation::NotObserved);
    again.credentials = f.credentials.clone();
    let (_, c2) = pass(&again, Outcome::Idle);
    assert!(c2.events.is_empty(), "same problem, no new event");
    assert_eq!(c2.status.failed_attempts, Some(2));
}

#[test]
fn transient_errors_back_off_then_recover() {
    let spec = spec("shop.example.com");
    let down = ClosteError::Transient {
        reason: "HTTP 502".into(),
    };
    let mut status: Option<MappedDomainStatus> = None;
    let mut delays = Vec::new();
    for _ in 0..4 {
        let f = facts(&spec, status.as_ref(), Observation::Absent);
        let (action, c) = pass(&f, Outcome::Failed(down.clone()));
        assert_eq!(action, Action::Add);
        assert_eq!(condition(&c.status, conditions::STALLED).0, "False");
        assert_eq!(
            condition(&c.status, conditions::READY),
            ("False", "ClosteUnavailable")
        );
        assert_eq!(c.status.stage, Some(Stage::Pending));
        delays.push(c.requeue.as_secs());
        status = Some(c.status);
    }
    assert_eq!(delays, [5, 10, 20, 40]);
    assert_eq!(status.as_ref().unwrap().failed_attempts, Some(4));
    assert_eq!(
        status.as_ref().unwrap().last_failure_time,
        Some(Time(at(0)))
    );
    let (_, ok) = pass(
        &facts(&spec, status.as_ref(), Observation::Absent),
        Outcome::Added,
    );
    assert_eq!(ok.status.failed_attempts, None);
    assert_eq!(
        ok.status.last_failure_time,
        Some(Time(at(0))),
        "history is kept"
    );
}

#[test]
fn rate_limit_waits_as_told() {
    let spec = spec("shop.example.com");
    let limited = ClosteError::RateLimited {
        retry_after: Some(Duration::from_secs(42)),
    };
    let (_, c) = pass(
        &facts(&spec, None, Observation::Absent),
        Outcome::Failed(limited),
    );
    assert_eq!(c.requeue, Duration::from_secs(42));
    assert_eq!(condition(&c.status, conditions::STALLED).0, "False");
}

#[test]
fn rejected_domain_stalls_once() {
    let spec = spec("shop.example.com");
    let rejected = ClosteError::DomainRejected {
        domain: "shop.example.com".into(),
        message: "Invalid or empty domain: shop.example.com".into(),
    };
    let (_, c) = pass(
        &facts(&spec, None, Observation::Absent),
        Outcome::Failed(rejected.clone()),
    );
    assert_eq!(
        condition(&c.status, conditions::STALLED),
        ("True", "DomainRejected")
    );
    assert_eq!(c.status.stage, Some(Stage::Failed));
    assert_eq!(c.requeue, SLOW_RETRY);
    assert!(c.events[0].warning);
    let (_, again) = pass(
        &facts(&spec, Some(&c.status), Observation::Absent),
        Outcome::Failed(rejected),
    );
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
            Observation::Failed(ClosteError::Transient { reason: "x".into() }),
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
        assert_eq!(decide(&f), want, "{policy:?} {ownership:?} {observation:?}");
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
    assert_eq!(c.events[0].reason, "Orphaned");
    assert!(c.events[0].message.contains("adopted"));
    let created = MappedDomainStatus {
        ownership: Some(Ownership::Created),
        ..Default::default()
    };
    let mut f = facts(&spec, Some(&created), Observation::Present);
    f.deleting = true;
    let (action, c) = pass(&f, Outcome::Deleted);
    assert_eq!(action, Action::DeleteThenRelease);
    assert_eq!(c.events[0].reason, "Deregistered");
}

#[test]
fn suspend_and_dry_run_write_nothing() {
    let mut suspended = spec("shop.example.com");
    suspended.suspend = Some(true);
    let (action, c) = pass(&facts(&suspended, None, Observation::Absent), Outcome::Idle);
    assert_eq!(action, Action::Nothing);
    assert_eq!(
        condition(&c.status, conditions::REGISTERED),
        ("False", "Suspended")
    );
    let plain = spec("shop.example.com");
    let mut f = facts(&plain, None, Observation::Absent);
    f.settings.dry_run = true;
    let (action, c) = pass(&f, Outcome::Idle);
    assert_eq!(action, Action::Nothing);
    assert_eq!(
        condition(&c.status, conditions::REGISTERED),
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
    assert_eq!(decide(&f), Action::Release);
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
    let down = ClosteError::Transient {
        reason: "HTTP 502".into(),
    };
    let (_, c) = pass(
        &facts(&spec, None, Observation::Absent),
        Outcome::Failed(down),
    );
    let s = &c.status;
    // 5 s backoff at the short end of the jitter: 4 s
    assert_eq!(
        retry_wait(Some(s), Some(1), None, false, at(1)),
        Some(Duration::from_secs(3))
    );
    assert_eq!(retry_wait(Some(s), Some(1), None, false, at(4)), None);
    // a spec change, a reconcile request or new credentials make it due at once
    assert_eq!(retry_wait(Some(s), Some(2), None, false, at(1)), None);
    assert_eq!(
        retry_wait(Some(s), Some(1), Some("now"), false, at(1)),
        None
    );
    assert_eq!(retry_wait(Some(s), Some(1), None, true, at(1)), None);
    // no failure, no gate
    let (_, ok) = pass(&facts(&spec, None, Observation::Absent), Outcome::Added);
    assert_eq!(
        retry_wait(Some(&ok.status), Some(1), None, false, at(0)),
        None
    );
    // a rejection waits for the slow retry
    let rejected = ClosteError::DomainRejected {
        domain: "d".into(),
        message: "no".into(),
    };
    let (_, r) = pass(
        &facts(&spec, None, Observation::Absent),
        Outcome::Failed(rejected),
    );
    assert_eq!(
        retry_wait(Some(&r.status), Some(1), None, false, at(100)),
        Some(SLOW_RETRY - Duration::from_secs(100))
    );
}
