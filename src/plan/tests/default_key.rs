//! Where the controller's own key may be used: the namespace list and
//! label selector, and objects whose namespace is allowed or no longer is.

use super::*;
use crate::api::Verification;

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
        verification: Verification::Auto,
        proof: None,
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
