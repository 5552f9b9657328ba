//! From facts and the outcome of the action to status, events and requeue.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use std::time::Duration;

use super::checks;
use super::{Action, Conclusion, Facts, Note, Observation, Outcome, SLOW_RETRY, error_requeue};
use crate::api::{MappedDomainStatus, Ownership, Stage, conditions};
use crate::closte::{ClosteError, Disposition};

/// Whether the alias is on Closte after this pass, and why (not).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Registration {
    Yes {
        reason: &'static str,
        message: String,
    },
    No {
        reason: &'static str,
        message: String,
        /// Needs a person; retrying will not help.
        stalled: bool,
        /// The failure this pass met, if any.
        failure: Option<ClosteError>,
    },
}

fn registration(facts: &Facts<'_>, action: Action, outcome: &Outcome) -> Registration {
    let domain = &facts.spec.domain;
    let was_registered = facts
        .previous
        .and_then(|s| find(&s.conditions, conditions::REGISTERED))
        .is_some_and(|c| c.status == "True");
    let adopted_or_present = || {
        if facts.previous_ownership().is_none() {
            Registration::Yes {
                reason: "Adopted",
                message: format!("{domain} was already on Closte; adopted"),
            }
        } else {
            Registration::Yes {
                reason: "Present",
                message: format!("{domain} is on Closte"),
            }
        }
    };
    let no = |reason, message: String, stalled| Registration::No {
        reason,
        message,
        stalled,
        failure: None,
    };
    let failed = |error: &ClosteError| Registration::No {
        reason: error.reason(),
        message: error.to_string(),
        stalled: error.disposition() == Disposition::Stop,
        failure: Some(error.clone()),
    };
    if let Some(winner) = &facts.conflict {
        let message = format!(
            "{domain} is claimed by MappedDomain {}/{}, which is older; this one will not touch Closte",
            winner.namespace, winner.name
        );
        return no("DomainConflict", message, true);
    }
    if let Some(problem) = facts.credentials.problem() {
        let reason = match facts.credentials {
            super::Credentials::NoDefaultKey => "NoAPIKey",
            _ => "CredentialsNotFound",
        };
        return Registration::No {
            reason,
            message: problem.clone(),
            stalled: true,
            failure: Some(ClosteError::CredentialsRejected { message: problem }),
        };
    }
    match outcome {
        Outcome::Failed(error) => return failed(error),
        Outcome::Added if was_registered => {
            return Registration::Yes {
                reason: "ReRegistered",
                message: format!("{domain} had vanished from Closte; added again"),
            };
        }
        Outcome::Added => {
            return Registration::Yes {
                reason: "Added",
                message: format!("{domain} added to Closte"),
            };
        }
        Outcome::AlreadyPresent => return adopted_or_present(),
        Outcome::Deleted | Outcome::AlreadyAbsent | Outcome::Released => {
            return no("Deregistered", format!("{domain} is not on Closte"), false);
        }
        Outcome::Idle => {}
    }
    match &facts.observation {
        Observation::Failed(error) => failed(error),
        Observation::Present => adopted_or_present(),
        Observation::NotObserved => no(
            "Pending",
            format!("{domain} not checked on Closte yet"),
            false,
        ),
        Observation::Absent if facts.deleting => {
            no("Deregistered", format!("{domain} is not on Closte"), false)
        }
        Observation::Absent if facts.spec.suspend == Some(true) => no(
            "Suspended",
            "spec.suspend is true: Closte is not written".into(),
            false,
        ),
        Observation::Absent if facts.settings.dry_run => no(
            "DryRun",
            format!("dry run: would add {domain} to Closte"),
            false,
        ),
        Observation::Absent => {
            debug_assert_ne!(action, Action::Add, "an add always has an outcome");
            no("Pending", format!("{domain} is not on Closte yet"), false)
        }
    }
}

fn find<'c>(conditions: &'c [Condition], type_: &str) -> Option<&'c Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Builds the conditions, keeping `lastTransitionTime` where the status did not change.
struct ConditionSet<'a> {
    previous: &'a [Condition],
    now: &'a Time,
    generation: Option<i64>,
    out: Vec<Condition>,
}

impl ConditionSet<'_> {
    fn set(&mut self, type_: &str, status: &str, reason: &str, message: String) {
        let last_transition_time = find(self.previous, type_)
            .filter(|c| c.status == status)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| self.now.clone());
        self.out.push(Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message,
            observed_generation: self.generation,
            last_transition_time,
        });
    }
}

/// Status, events and requeue after running `action` with `outcome`.
/// `jitter` is uniform in [0, 1) and spreads backoff delays.
pub fn conclude(facts: &Facts<'_>, action: Action, outcome: &Outcome, jitter: f64) -> Conclusion {
    let previous = facts.previous.cloned().unwrap_or_default();
    let now = Time(facts.now);
    let registration = registration(facts, action, outcome);
    let mut status = MappedDomainStatus {
        observed_generation: facts.generation,
        last_handled_reconcile_at: facts
            .reconcile_request
            .map(str::to_owned)
            .or(previous.last_handled_reconcile_at.clone()),
        ..previous.clone()
    };

    let mut set = ConditionSet {
        previous: &previous.conditions,
        now: &now,
        generation: facts.generation,
        out: Vec::new(),
    };
    let (registered, stalled, mut reason, mut message) = match &registration {
        Registration::Yes { reason, message } => {
            (true, false, (*reason).to_owned(), message.clone())
        }
        Registration::No {
            reason,
            message,
            stalled,
            ..
        } => (false, *stalled, (*reason).to_owned(), message.clone()),
    };
    // Still registered and nothing written: keep the words of the transition,
    // so a settled object's status stays byte-for-byte the same.
    if let Some(kept) = find(&previous.conditions, conditions::REGISTERED)
        && registered
        && kept.status == "True"
        && *outcome == Outcome::Idle
    {
        (reason, message) = (kept.reason.clone(), kept.message.clone());
    }
    let reason = reason.as_str();
    let reg_status = if registered { "True" } else { "False" };
    set.set(conditions::REGISTERED, reg_status, reason, message.clone());

    // DNS and TLS, once the alias is on Closte
    let view = registered.then(|| {
        checks::checks(
            &facts.spec.domain,
            &previous,
            facts.probe.as_ref(),
            facts.spec.check_interval(),
            &facts.settings.probe,
            facts.now,
            jitter,
        )
    });
    match &view {
        Some(view) => {
            for (type_, v) in [
                (conditions::DNS_READY, &view.dns_ready),
                (conditions::CERTIFICATE_READY, &view.certificate_ready),
            ] {
                set.set(type_, v.status, &v.reason, v.message.clone());
            }
        }
        None => {
            for type_ in [conditions::DNS_READY, conditions::CERTIFICATE_READY] {
                set.set(
                    type_,
                    "Unknown",
                    "NotRegistered",
                    "the alias is not on Closte".into(),
                );
            }
        }
    }
    let (ready, ready_reason, ready_message) = match &view {
        Some(view) if view.ready() => (
            true,
            "Ready".to_owned(),
            format!("{message}; DNS and certificate are ready"),
        ),
        Some(view) if !view.dns_ready.is_true() => (
            false,
            view.dns_ready.reason.clone(),
            view.dns_ready.message.clone(),
        ),
        Some(view) => (
            false,
            view.certificate_ready.reason.clone(),
            view.certificate_ready.message.clone(),
        ),
        None => (false, reason.to_owned(), message.clone()),
    };
    set.set(
        conditions::READY,
        if ready { "True" } else { "False" },
        &ready_reason,
        ready_message.clone(),
    );
    let exhausted = view.as_ref().and_then(|v| v.exhausted.clone());
    let stalled_by = if stalled {
        Some((reason.to_owned(), message.clone()))
    } else {
        exhausted
    };
    match &stalled_by {
        Some((why, what)) => {
            set.set(
                conditions::RECONCILING,
                "False",
                why,
                "stalled; see the Stalled condition".into(),
            );
            set.set(conditions::STALLED, "True", why, what.clone());
        }
        None if ready => {
            set.set(
                conditions::RECONCILING,
                "False",
                "Ready",
                "nothing left to do".into(),
            );
            set.set(
                conditions::STALLED,
                "False",
                "Ready",
                "no problem that needs a person".into(),
            );
        }
        None => {
            set.set(
                conditions::RECONCILING,
                "True",
                &ready_reason,
                ready_message,
            );
            set.set(
                conditions::STALLED,
                "False",
                "Progressing",
                "no problem that needs a person".into(),
            );
        }
    }
    status.conditions = set.out;

    status.stage = Some(match (&view, stalled) {
        (Some(view), _) => view.stage,
        (None, true) => Stage::Failed,
        (None, false) => Stage::Pending,
    });
    match &view {
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
    status.ownership = match outcome {
        Outcome::Added => Some(Ownership::Created),
        _ if registered && previous.ownership.is_none() => Some(Ownership::Adopted),
        _ => previous.ownership,
    };
    if registered && status.registered_at.is_none() {
        status.registered_at = Some(now.clone());
    }
    let failure = match &registration {
        Registration::No { failure, .. } => failure.clone(),
        Registration::Yes { .. } => None,
    };
    let failed_attempts = match &failure {
        Some(_) => previous.failed_attempts.unwrap_or(0).saturating_add(1),
        None => 0,
    };
    status.failed_attempts = (failed_attempts > 0).then_some(failed_attempts);
    if failure.is_some() {
        status.last_failure_time = Some(now.clone());
    }

    let requeue = match (&failure, stalled) {
        (Some(error), _) => error_requeue(error, failed_attempts as u32, jitter),
        (None, true) => SLOW_RETRY,
        (None, false) => facts.settings.resync,
    };
    let mut events = events(facts, &previous, action, outcome, &registration);
    let requeue = match view {
        Some(view) => {
            events.extend(view.notes);
            let next = view
                .next_check_time
                .and_then(|t| Duration::try_from(t.0.duration_since(facts.now)).ok())
                .unwrap_or(requeue);
            requeue.min(next)
        }
        None => requeue,
    };
    Conclusion {
        status,
        events,
        requeue,
    }
}

fn events(
    facts: &Facts<'_>,
    previous: &MappedDomainStatus,
    action: Action,
    outcome: &Outcome,
    registration: &Registration,
) -> Vec<Note> {
    let domain = &facts.spec.domain;
    let previous_reason =
        find(&previous.conditions, conditions::REGISTERED).map(|c| c.reason.as_str());
    let mut notes = Vec::new();
    match (action, outcome) {
        (Action::DeleteThenRelease, Outcome::Deleted | Outcome::AlreadyAbsent) => {
            notes.push(Note {
                warning: false,
                reason: "Deregistered",
                action: "DeleteAlias",
                message: format!("{domain} removed from Closte"),
            })
        }
        (Action::Release, _)
            if facts.deleting
                && facts.conflict.is_none()
                && facts.observation == Observation::Present =>
        {
            notes.push(Note {
                warning: false,
                reason: "Orphaned",
                action: "ReleaseAlias",
                message: format!("{domain} left on Closte ({})", orphan_cause(facts)),
            })
        }
        _ => {}
    }
    if facts.deleting {
        if let Registration::No {
            failure: Some(_),
            reason,
            message,
            ..
        } = registration
            && previous_reason != Some(reason)
        {
            notes.push(Note {
                warning: true,
                reason,
                action: "DeleteAlias",
                message: message.clone(),
            });
        }
        return notes;
    }
    let (warning, reason, message) = match registration {
        Registration::Yes { reason, message } => (false, *reason, message.clone()),
        Registration::No {
            reason,
            message,
            failure,
            stalled,
        } => (failure.is_some() || *stalled, *reason, message.clone()),
    };
    // a write is always news; otherwise only a change of state or problem is
    let was_registered =
        find(&previous.conditions, conditions::REGISTERED).is_some_and(|c| c.status == "True");
    let registered = matches!(registration, Registration::Yes { .. });
    let wrote = matches!(outcome, Outcome::Added);
    let news = if registered {
        !was_registered
    } else {
        previous_reason != Some(reason)
    };
    if wrote || news {
        let action = match action {
            Action::Add => "AddAlias",
            _ => "Observe",
        };
        notes.push(Note {
            warning,
            reason,
            action,
            message,
        });
    }
    notes
}

fn orphan_cause(facts: &Facts<'_>) -> &'static str {
    if facts.spec.suspend == Some(true) {
        "suspended"
    } else if facts.settings.dry_run {
        "dry run"
    } else if facts.spec.deletion_policy == Some(crate::api::DeletionPolicy::Orphan) {
        "deletionPolicy Orphan"
    } else {
        "adopted, and deletionPolicy is unset"
    }
}

/// Whether the alias is on Closte after running `action` with `outcome`; a
/// DNS/TLS check is worth running only then.
pub fn registered_after(facts: &Facts<'_>, action: Action, outcome: &Outcome) -> bool {
    matches!(
        registration(facts, action, outcome),
        Registration::Yes { .. }
    )
}
