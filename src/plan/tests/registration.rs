//! Why the alias is not registered: missing credentials, a rejected or
//! invalid domain.

use super::*;

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
