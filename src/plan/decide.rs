//! The first pure step of a pass: from the facts to what the pass does
//! before anything else is known (the retry gate, the Closte action and the
//! finalizer written before it, which carries the ownership intent).

use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::facts::{Facts, Finalizer, Observation};
use super::{SLOW_RETRY, backoff};
use crate::api::conditions::{ConditionType, Reason};
use crate::api::{MappedDomainStatus, Ownership};

/// What a pass does.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Deleting and the finalizer is already gone: nothing left to do.
    Skip,
    /// The last attempt failed and its backoff has not run out.
    Wait(Duration),
    /// Put `finalizer` on first (if any), then run `action` and conclude.
    Act {
        finalizer: Option<Finalizer>,
        action: Action,
    },
}

impl Plan {
    /// Whether the plan writes to Closte or the finalizer: a pass that only
    /// checks and writes status does not.
    pub fn acts(&self) -> bool {
        matches!(self, Plan::Act { finalizer, action } if finalizer.is_some() || *action != Action::Nothing)
    }
}

/// The one thing a pass does to Closte and the finalizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Nothing,
    /// Add the alias.
    Add,
    /// Remove the alias, then release the finalizer.
    DeleteThenRelease,
    /// Release the finalizer without touching Closte.
    Release,
}

/// The plan for a pass. `facts.observation` is what [`observes`] asked for.
pub fn decide(facts: &Facts<'_>) -> Plan {
    if let Some(early) = preflight(facts) {
        return early;
    }
    let action = action(facts);
    Plan::Act {
        finalizer: finalizer_first(facts, action),
        action,
    }
}

/// The finalizer to write before `action`, if the object lacks it. Before
/// an add it is the one that carries the intent: if the process dies between
/// the add and the status write, the next one still knows the alias is its
/// own. One write makes the object both held and owned.
fn finalizer_first(facts: &Facts<'_>, action: Action) -> Option<Finalizer> {
    if facts.deleting {
        return None;
    }
    let adds = action == Action::Add;
    match facts.finalizer {
        None if adds => Some(Finalizer::Created),
        None => Some(Finalizer::Plain),
        Some(Finalizer::Plain)
            if adds && facts.previous_ownership() != Some(Ownership::Created) =>
        {
            Some(Finalizer::Created)
        }
        Some(_) => None,
    }
}

/// Whether the pass needs the account's alias list: it may act on Closte.
pub fn observes(facts: &Facts<'_>) -> bool {
    facts.conflict.is_none()
        && facts.credentials.label().is_some()
        && facts.invalid_domain.is_none()
        && preflight(facts).is_none()
}

/// The plans that need no observation of Closte.
fn preflight(facts: &Facts<'_>) -> Option<Plan> {
    match facts.finalizer {
        None if facts.deleting => return Some(Plan::Skip),
        // a new object (or one whose finalizer was taken off): the
        // finalizer goes on in this pass, whatever an old backoff says
        None => return None,
        Some(_) => {}
    }
    let may_write = facts.conflict.is_none() && !facts.writes_off();
    match retry_wait(facts) {
        Some(wait) if may_write => Some(Plan::Wait(wait)),
        _ => None,
    }
}

fn action(facts: &Facts<'_>) -> Action {
    if facts.deleting {
        if facts.conflict.is_some() || !facts.deletes_alias() || facts.writes_off() {
            return Action::Release;
        }
        return match facts.observation {
            Observation::Present => Action::DeleteThenRelease,
            Observation::Absent => Action::Release,
            // unknown: keep the finalizer until Closte can be asked
            Observation::NotObserved | Observation::Failed(_) => Action::Nothing,
        };
    }
    match facts.observation {
        Observation::Absent if facts.conflict.is_none() && !facts.writes_off() => Action::Add,
        _ => Action::Nothing,
    }
}

/// Whether the credentials differ from those that failed last time: a new
/// Secret or key, or another key than the one Closte rejected.
fn credentials_changed(facts: &Facts<'_>) -> bool {
    let Some(previous) = facts
        .previous
        .and_then(|s| s.reason(ConditionType::Registered))
    else {
        return false;
    };
    match previous {
        reason if reason.credentials_missing() => facts.credentials.label().is_some(),
        Reason::CredentialsRejected => facts.credentials.label() != facts.rejected_key.as_deref(),
        _ => false,
    }
}

/// When the object last failed on Closte's trouble (not its own), while it
/// waits on that failure: what an account's recovery can wake.
pub fn waiting_on_closte(status: &MappedDomainStatus) -> Option<Timestamp> {
    status.failed_attempts.filter(|n| *n > 0)?;
    let reason = Reason::parse(&status.condition(ConditionType::Registered)?.reason)?;
    reason
        .closte_trouble()
        .then_some(status.last_failure_time.as_ref()?.0)
}

/// Whether an account that recovered with a request sent at `recovered` did
/// so after a failure recorded at `failed`. Status times are whole seconds
/// (rounded down), so a recovery within the failure's own second counts: the
/// objects that failed on an outage's last requests are not left behind, and
/// one that failed again just after a recovery tries once more.
pub fn answered_since(failed: Timestamp, recovered: Timestamp) -> bool {
    recovered.as_second() >= failed.as_second()
}

/// Whether the account has recovered since the object's failure on Closte's
/// trouble: the backoff is for trouble that is over.
fn woken(facts: &Facts<'_>) -> bool {
    let failed = facts.previous.and_then(waiting_on_closte);
    matches!((failed, facts.account_recovered), (Some(f), Some(r)) if answered_since(f, r))
}

/// How long to wait before trying Closte again after the failure recorded in
/// the previous status; `None` when a try is due now. A try is due at once
/// when the spec changed, a reconcile was requested, the credentials changed,
/// or the failure was Closte's and the account has recovered since. This
/// gate keeps the controller's own status writes (which trigger a pass) from
/// turning backoff into a retry loop.
pub fn retry_wait(facts: &Facts<'_>) -> Option<Duration> {
    let previous = facts.previous?;
    let attempts = previous.failed_attempts.filter(|n| *n > 0)?;
    let last_failure = previous.last_failure_time.as_ref()?.0;
    let registered = previous.condition(ConditionType::Registered)?;
    let reconcile_requested = facts
        .reconcile_request
        .is_some_and(|r| previous.last_handled_reconcile_at.as_deref() != Some(r));
    if registered.observed_generation != facts.generation
        || reconcile_requested
        || credentials_changed(facts)
        || woken(facts)
    {
        return None;
    }
    let wait = match Reason::parse(&registered.reason) {
        Some(reason) if reason.needs_person() => SLOW_RETRY,
        // Closte's Retry-After decides: the pass comes back after it, and the
        // account's shared pause holds every write until it has passed
        Some(Reason::RateLimited) => Duration::ZERO,
        _ => backoff::delay(attempts as u32, 0.0), // the short end of the jitter range
    };
    let elapsed = facts.now.duration_since(last_failure);
    let remaining = SignedDuration::try_from(wait).ok()? - elapsed;
    Duration::try_from(remaining).ok().filter(|d| !d.is_zero())
}
