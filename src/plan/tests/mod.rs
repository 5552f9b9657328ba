//! The decision's tests, by concern; the shared builders are here.

mod checks;
mod decide;
mod default_key;
mod recovery;
mod registration;

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
        finalizer: Some(Finalizer::Plain),
        reconcile_request: None,
        conflict: None,
        credentials: Credentials::Available {
            label: LABEL.into(),
        },
        rejected_key: None,
        invalid_domain: None,
        observation,
        account_recovered: None,
        written_check_time: None,
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

fn condition(status: &MappedDomainStatus, type_: ConditionType) -> (&str, &str) {
    let c = status.condition(type_).unwrap();
    (c.status.as_str(), c.reason.as_str())
}

fn reasons(c: &Conclusion) -> Vec<Reason> {
    c.events.iter().map(|e| e.reason).collect()
}
