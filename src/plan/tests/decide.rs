//! What a pass does: adds, adoptions, conflicts, deletion by policy and
//! ownership, suspend and dry run, the finalizer, and status writes.

use super::*;

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
fn only_closte_calls_and_finalizer_changes_act() {
    // a pass that does not act may run from a kept copy (controller::fresh)
    let spec = spec("shop.example.com");
    let (_, first) = pass(&facts(&spec, None, Observation::Absent), Outcome::Added);
    let settled = facts(&spec, Some(&first.status), Observation::Present);
    assert!(!decide(&settled).acts(), "{:?}", decide(&settled));
    let vanished = facts(&spec, Some(&first.status), Observation::Absent);
    assert!(decide(&vanished).acts());
    let mut unheld = facts(&spec, Some(&first.status), Observation::Present);
    unheld.finalizer = None;
    assert!(decide(&unheld).acts(), "the finalizer is put back");
    assert!(!Plan::Wait(Duration::from_secs(1)).acts());
    assert!(!Plan::Skip.acts());
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
fn the_finalizer_comes_first_and_goes_last() {
    let spec = spec("shop.example.com");
    // a new object: the finalizer goes on in the pass that acts, before it
    let mut fresh = facts(&spec, None, Observation::Absent);
    fresh.finalizer = None;
    assert!(
        observes(&fresh),
        "a new object's first pass looks at Closte"
    );
    assert_eq!(
        decide(&fresh),
        Plan::Act {
            finalizer: Some(Finalizer::Created),
            action: Action::Add
        },
        "before an add, the finalizer that carries the intent: one write"
    );
    fresh.observation = Observation::Present;
    assert_eq!(
        decide(&fresh),
        Plan::Act {
            finalizer: Some(Finalizer::Plain),
            action: Action::Nothing
        },
        "an alias already there: held, not claimed"
    );
    fresh.observation = Observation::Absent;
    fresh.deleting = true;
    assert_eq!(
        decide(&fresh),
        Plan::Skip,
        "deleting without our finalizer: not ours"
    );
    // a backoff does not keep the finalizer off
    let failed = failed_status(&spec, transient(), 3);
    let mut unheld = facts(&spec, Some(&failed), Observation::NotObserved);
    assert!(matches!(decide(&unheld), Plan::Wait(_)));
    unheld.finalizer = None;
    assert_eq!(
        decide(&unheld),
        Plan::Act {
            finalizer: Some(Finalizer::Plain),
            action: Action::Nothing
        }
    );

    // the intent is written before an add, once
    let absent = facts(&spec, None, Observation::Absent);
    assert_eq!(
        decide(&absent),
        Plan::Act {
            finalizer: Some(Finalizer::Created),
            action: Action::Add
        },
        "re-adding an alias the object did not own: the intent first"
    );
    let mut intended = absent.clone();
    intended.finalizer = Some(Finalizer::Created);
    assert_eq!(intended.previous_ownership(), Some(Ownership::Created));
    assert_eq!(
        decide(&intended),
        Plan::Act {
            finalizer: None,
            action: Action::Add
        }
    );
    // an alias that landed while its answer was lost is still its own
    let mut landed = facts(&spec, None, Observation::Present);
    landed.finalizer = Some(Finalizer::Created);
    let (action, c) = pass(&landed, Outcome::Idle);
    assert_eq!(action, Action::Nothing);
    assert_eq!(c.status.ownership, Some(Ownership::Created));
    let created = MappedDomainStatus {
        ownership: Some(Ownership::Created),
        ..Default::default()
    };
    let again = facts(&spec, Some(&created), Observation::Absent);
    assert_eq!(
        decide(&again),
        Plan::Act {
            finalizer: None,
            action: Action::Add
        },
        "an object from before the intent finalizer: its status says whose"
    );

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

#[test]
fn resyncs_are_spread() {
    let spec = spec("shop.example.com");
    let (_, first) = pass(&facts(&spec, None, Observation::Absent), Outcome::Added);
    let settled = facts(&spec, Some(&first.status), Observation::Present);
    let acted = Acted::new(&settled, Action::Nothing, Outcome::Idle);
    let requeue = |jitter| conclude(&settled, &acted, None, jitter).requeue;
    assert_eq!(requeue(0.5), RESYNC);
    assert_eq!(requeue(0.0), RESYNC.mul_f64(0.9));
    assert_eq!(requeue(1.0), RESYNC.mul_f64(1.1));
}
