//! The second pure step of a pass: from the facts, what the action did and
//! the DNS/TLS check (if one ran) to the new status, the events, whether the
//! finalizer goes, and when to look again.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::checks::{self, CheckView, Pace};
use super::conditions;
use super::decide::Action;
use super::events::{self, Note};
use super::facts::{Check, Facts, Outcome, Retry};
use super::registration::{self, Registration};
use super::{SLOW_RETRY, backoff};
use crate::api::conditions::Reason;
use crate::api::{MappedDomainStatus, Ownership, Stage};

/// A pass after its action: what was done, and where that leaves the alias
/// (computed once, read by [`Acted::wants_check`] and [`conclude`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acted {
    pub action: Action,
    pub outcome: Outcome,
    pub registration: Registration,
}

impl Acted {
    pub fn new(facts: &Facts<'_>, action: Action, outcome: Outcome) -> Acted {
        let registration = registration::registration(facts, &outcome);
        Acted {
            action,
            outcome,
            registration,
        }
    }

    /// Whether to check DNS and TLS now: the alias is on Closte and a check is due.
    pub fn wants_check(&self, facts: &Facts<'_>) -> bool {
        !facts.deleting
            && self.registration.is_registered()
            && (checks::check_due(facts.previous, facts.now) || spec_changed(facts))
    }
}

/// The spec changed since the status was written (targets, verification,
/// interval): the domain is judged again at once, not at the old pace.
fn spec_changed(facts: &Facts<'_>) -> bool {
    let observed = facts.previous.and_then(|s| s.observed_generation);
    observed.is_some() && facts.generation.is_some() && observed != facts.generation
}

/// Status, events and what else to do at the end of a pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Conclusion {
    pub status: MappedDomainStatus,
    /// `status` differs from the object's: write it.
    pub write_status: bool,
    /// `status` differs from the object's only in the checks' schedule
    /// (`checks`, `lastCheckTime`, `nextCheckTime`) and the written one is
    /// less than a resync old: keep the schedule in memory instead.
    pub keep_schedule: bool,
    /// The alias is settled and the object is going: remove the finalizer
    /// (instead of writing status).
    pub release_finalizer: bool,
    pub events: Vec<Note>,
    pub requeue: Duration,
    /// The label of the key Closte rejected in this pass, to remember.
    pub rejected_key: Option<String>,
}

/// Everything the pass concludes. `jitter` is uniform in [0, 1) and spreads
/// backoff delays and check times.
pub fn conclude(
    facts: &Facts<'_>,
    acted: &Acted,
    check: Option<&Check>,
    jitter: f64,
) -> Conclusion {
    let previous = facts.previous.cloned().unwrap_or_default();
    let registration = &acted.registration;
    let view = registration.is_registered().then(|| {
        let pace = Pace {
            interval: facts.spec.check_interval(),
            settings: &facts.settings.probe,
            now: facts.now,
            jitter,
        };
        checks::checks(&facts.spec.domain, &previous, check, pace)
    });
    let status = status(facts, &previous, acted, view.as_ref());
    let mut events = events::registration_events(facts, acted.action, &acted.outcome, registration);
    let requeue = requeue(
        facts,
        registration,
        status.failed_attempts,
        view.as_ref(),
        jitter,
    );
    if let Some(view) = view {
        events.extend(view.notes);
    }
    let release_finalizer = facts.deleting
        && matches!(
            acted.outcome,
            Outcome::Released | Outcome::Deleted | Outcome::AlreadyAbsent
        );
    let changed = !release_finalizer && facts.previous != Some(&status);
    let keep_schedule = changed && schedule_only(facts, &status);
    Conclusion {
        write_status: changed && !keep_schedule,
        keep_schedule,
        status,
        release_finalizer,
        events,
        requeue,
        rejected_key: (registration.reason() == Reason::CredentialsRejected)
            .then(|| facts.credentials.label().map(str::to_owned))
            .flatten(),
    }
}

/// Whether `next` differs from the previous status only in when the domain
/// was and will be checked, and the written status was checked less than a
/// resync ago. Those checks (a domain still waiting on DNS, a done domain's
/// re-check) would otherwise each cost a status write: thousands of objects
/// checked every few seconds keep the API server busy with nothing new. The
/// written `lastCheckTime` stays at most a resync behind.
fn schedule_only(facts: &Facts<'_>, next: &MappedDomainStatus) -> bool {
    let Some(written) = facts.written_check_time else {
        return false;
    };
    let recent = facts
        .now
        .duration_since(written)
        .try_into()
        .is_ok_and(|age: Duration| age < facts.settings.resync);
    let unscheduled = |s: &MappedDomainStatus| MappedDomainStatus {
        checks: None,
        last_check_time: None,
        next_check_time: None,
        ..s.clone()
    };
    recent && facts.previous.map(unscheduled) == Some(unscheduled(next))
}

/// The next status: conditions, stage, the check's records, ownership and
/// the failure count.
fn status(
    facts: &Facts<'_>,
    previous: &MappedDomainStatus,
    acted: &Acted,
    view: Option<&CheckView>,
) -> MappedDomainStatus {
    let now = Time(facts.now);
    let registration = &acted.registration;
    let registered = registration.is_registered();
    let wrote = acted.outcome != Outcome::Idle;
    let verdict = conditions::registered_verdict(previous, registration, wrote);
    let conditions = conditions::conditions(
        &previous.conditions,
        &now,
        facts.generation,
        &verdict,
        registration.stalled(),
        view,
    );
    let failed = registration.failure().is_some();
    let failed_attempts = previous.failed_attempts.unwrap_or(0).saturating_add(1);
    let mut status = MappedDomainStatus {
        observed_generation: facts.generation,
        conditions,
        stage: Some(match view {
            Some(view) => view.stage,
            None if registration.stalled() => Stage::Failed,
            None => Stage::Pending,
        }),
        // The intent written before an add stands whatever the add answered:
        // an answer lost on the way may hide an alias that landed.
        ownership: match (acted.action, facts.previous_ownership()) {
            (Action::Add, _) => Some(Ownership::Created),
            (_, None) if registered => Some(Ownership::Adopted),
            (_, ownership) => ownership,
        },
        registered_at: previous
            .registered_at
            .clone()
            .or_else(|| registered.then(|| now.clone())),
        failed_attempts: failed.then_some(failed_attempts),
        last_failure_time: if failed {
            Some(now.clone())
        } else {
            previous.last_failure_time.clone()
        },
        last_handled_reconcile_at: facts
            .reconcile_request
            .map(str::to_owned)
            .or_else(|| previous.last_handled_reconcile_at.clone()),
        ..previous.clone()
    };
    match view {
        Some(view) => {
            status.dns = view.dns.clone();
            status.certificate = view.certificate.clone();
            status.checks = view.checks;
            status.last_check_time = view.last_check_time.clone();
            status.next_check_time = view.next_check_time.clone();
        }
        None => {
            status.checks = None;
            status.next_check_time = None;
        }
    }
    status
}

/// When to look again: after a failure's backoff (or its rate-limit pause),
/// slowly when stalled, at the resync otherwise; and never after the next
/// DNS/TLS check is due.
fn requeue(
    facts: &Facts<'_>,
    registration: &Registration,
    failed_attempts: Option<i32>,
    view: Option<&CheckView>,
    jitter: f64,
) -> Duration {
    let base = match registration.failure() {
        Some(failure) => match failure.retry {
            Retry::Stop => SLOW_RETRY,
            Retry::After(pause) => pause,
            Retry::BackOff => backoff::delay(failed_attempts.unwrap_or(1) as u32, jitter),
        },
        None if registration.stalled() => SLOW_RETRY,
        None => facts.settings.resync.mul_f64(checks::spread(jitter)),
    };
    let next_check = view
        .and_then(|v| v.next_check_time.as_ref())
        .and_then(|t| Duration::try_from(t.0.duration_since(facts.now)).ok());
    next_check.map_or(base, |next| base.min(next))
}
