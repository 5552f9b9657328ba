//! The events of a pass: a write is always news; otherwise only a change of
//! state or of problem is. Check events come from [`super::checks`].

use super::decide::Action;
use super::facts::{Facts, Observation, Outcome};
use super::registration::Registration;
use crate::api::DeletionPolicy;
use crate::api::conditions::{ConditionType, Reason};

/// An event to publish on the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub warning: bool,
    pub reason: Reason,
    /// What the controller did or tried (events.k8s.io `action`).
    pub action: &'static str,
    pub message: String,
}

/// The events about the alias after `action` had `outcome`.
pub fn registration_events(
    facts: &Facts<'_>,
    action: Action,
    outcome: &Outcome,
    registration: &Registration,
) -> Vec<Note> {
    let previous_reason = facts
        .previous
        .and_then(|s| s.reason(ConditionType::Registered));
    if facts.deleting {
        let mut notes: Vec<Note> = deletion_event(facts, action, outcome).into_iter().collect();
        if registration.failure().is_some() && previous_reason != Some(registration.reason()) {
            notes.push(Note {
                warning: true,
                reason: registration.reason(),
                action: "DeleteAlias",
                message: registration.message().to_owned(),
            });
        }
        return notes;
    }
    let was_registered = facts
        .previous
        .is_some_and(|s| s.is_true(ConditionType::Registered));
    let news = match registration {
        Registration::Yes { .. } => !was_registered,
        Registration::No { reason, .. } => previous_reason != Some(*reason),
    };
    if !news && *outcome != Outcome::Added {
        return Vec::new();
    }
    let warning = registration.failure().is_some() || registration.stalled();
    vec![Note {
        warning,
        reason: registration.reason(),
        action: if action == Action::Add {
            "AddAlias"
        } else {
            "Observe"
        },
        message: registration.message().to_owned(),
    }]
}

/// Deregistered when the alias went, Orphaned when it was left on purpose.
fn deletion_event(facts: &Facts<'_>, action: Action, outcome: &Outcome) -> Option<Note> {
    let domain = &facts.spec.domain;
    match (action, outcome) {
        (Action::DeleteThenRelease, Outcome::Deleted | Outcome::AlreadyAbsent) => Some(Note {
            warning: false,
            reason: Reason::Deregistered,
            action: "DeleteAlias",
            message: format!("{domain} removed from Closte"),
        }),
        (Action::Release, _)
            if facts.conflict.is_none() && facts.observation == Observation::Present =>
        {
            Some(Note {
                warning: false,
                reason: Reason::Orphaned,
                action: "ReleaseAlias",
                message: format!("{domain} left on Closte ({})", orphan_cause(facts)),
            })
        }
        _ => None,
    }
}

fn orphan_cause(facts: &Facts<'_>) -> &'static str {
    if facts.suspended() {
        "suspended"
    } else if facts.settings.dry_run {
        "dry run"
    } else if facts.spec.deletion_policy == Some(DeletionPolicy::Orphan) {
        "deletionPolicy Orphan"
    } else {
        "adopted, and deletionPolicy is unset"
    }
}
