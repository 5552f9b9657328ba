//! The pure decision of the controller: facts and `now` in, a Closte action
//! out ([`decide`]); then the action's outcome in, the new status, events and
//! requeue time out ([`conclude`]). No IO, no clock, no randomness of its own.

pub mod backoff;
pub mod checks;
mod status;

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use crate::api::{DeletionPolicy, MappedDomainSpec, MappedDomainStatus, Ownership};
use crate::closte::{ClosteError, Disposition};

pub use checks::{Probe, ProbeSettings, check_due};
pub use status::{conclude, registered_after};

/// How the controller is configured, as far as decisions go.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Log and report Closte writes instead of doing them.
    pub dry_run: bool,
    /// How often a settled object is looked at again (drift, expiry).
    pub resync: Duration,
    /// How DNS/TLS checks are paced.
    pub probe: ProbeSettings,
}

/// Where the object's API key comes from, and whether it could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    Available,
    SecretNotFound {
        secret: String,
    },
    KeyNotInSecret {
        secret: String,
        key: String,
    },
    /// No credentialsRef and the controller has no key of its own.
    NoDefaultKey,
}

impl Credentials {
    fn problem(&self) -> Option<String> {
        match self {
            Credentials::Available => None,
            Credentials::SecretNotFound { secret } => Some(format!(
                "Secret {secret:?} named by spec.credentialsRef does not exist"
            )),
            Credentials::KeyNotInSecret { secret, key } => {
                Some(format!("Secret {secret:?} has no non-empty key {key:?}"))
            }
            Credentials::NoDefaultKey => {
                Some("no spec.credentialsRef and the controller has no API key of its own".into())
            }
        }
    }
}

/// What the account's alias list says about the domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// Not looked at: credentials missing or the object lost a conflict.
    NotObserved,
    Present,
    Absent,
    Failed(ClosteError),
}

/// Another MappedDomain that holds the same domain and wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictWinner {
    pub namespace: String,
    pub name: String,
}

/// Everything the decision needs, gathered by the reconciler.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub now: Timestamp,
    pub generation: Option<i64>,
    pub spec: &'a MappedDomainSpec,
    pub previous: Option<&'a MappedDomainStatus>,
    pub deleting: bool,
    pub conflict: Option<ConflictWinner>,
    pub credentials: Credentials,
    pub observation: Observation,
    /// The reconcile-requested-at annotation, if set.
    pub reconcile_request: Option<&'a str>,
    /// The DNS/TLS check of this pass, when one was due and ran.
    pub probe: Option<Probe>,
    pub settings: Settings,
}

impl Facts<'_> {
    fn previous_ownership(&self) -> Option<Ownership> {
        self.previous.and_then(|s| s.ownership)
    }

    /// Whether deleting this object should remove the alias from Closte.
    pub fn deletes_alias(&self) -> bool {
        match self.spec.deletion_policy {
            Some(DeletionPolicy::Delete) => true,
            Some(DeletionPolicy::Orphan) => false,
            None => self.previous_ownership() == Some(Ownership::Created),
        }
    }

    fn suspended(&self) -> bool {
        self.spec.suspend == Some(true)
    }
}

/// The one thing a reconcile pass does to Closte and the finalizer.
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

/// Picks the action. The reconciler guarantees the finalizer is on the object
/// before Closte is touched, and only calls this with observed facts.
pub fn decide(facts: &Facts<'_>) -> Action {
    if facts.deleting {
        if facts.conflict.is_some() || !facts.deletes_alias() {
            return Action::Release;
        }
        // Suspended or dry run: let the deletion through, leave Closte alone.
        if facts.suspended() || facts.settings.dry_run {
            return Action::Release;
        }
        return match facts.observation {
            Observation::Present => Action::DeleteThenRelease,
            Observation::Absent => Action::Release,
            // unknown: keep the finalizer until Closte can be asked
            Observation::NotObserved | Observation::Failed(_) => Action::Nothing,
        };
    }
    if facts.conflict.is_some() || facts.suspended() || facts.settings.dry_run {
        return Action::Nothing;
    }
    match facts.observation {
        Observation::Absent => Action::Add,
        _ => Action::Nothing,
    }
}

/// What running the action did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing was run.
    Idle,
    Added,
    /// The add failed but the list shows the alias.
    AlreadyPresent,
    Deleted,
    AlreadyAbsent,
    Released,
    Failed(ClosteError),
}

/// An event to publish on the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub warning: bool,
    pub reason: &'static str,
    pub action: &'static str,
    pub message: String,
}

/// Status, events and when to look again.
#[derive(Debug, Clone, PartialEq)]
pub struct Conclusion {
    pub status: MappedDomainStatus,
    pub events: Vec<Note>,
    pub requeue: Duration,
}

/// Requeue for errors that need a person (rejected key or domain, missing Secret).
pub const SLOW_RETRY: Duration = Duration::from_secs(300);

fn error_requeue(error: &ClosteError, failed_attempts: u32, jitter: f64) -> Duration {
    match error.disposition() {
        Disposition::Stop => SLOW_RETRY,
        Disposition::RetryAfter(pause) => pause,
        Disposition::BackOff => backoff::delay(failed_attempts, jitter),
    }
}

#[cfg(test)]
mod tests;

/// Registered reasons whose retry waits for a person, not for backoff.
const NEEDS_A_PERSON: [&str; 4] = [
    "DomainRejected",
    "CredentialsRejected",
    "CredentialsNotFound",
    "NoAPIKey",
];

/// How long to wait before trying Closte again after the failure recorded in
/// `previous`; `None` when a try is due now. A try is due at once when the
/// spec changed, a reconcile was requested, or the credentials changed. This
/// gate keeps the controller's own status writes (which trigger a reconcile)
/// from turning backoff into a retry loop.
pub fn retry_wait(
    previous: Option<&MappedDomainStatus>,
    generation: Option<i64>,
    reconcile_request: Option<&str>,
    credentials_changed: bool,
    now: Timestamp,
) -> Option<Duration> {
    let previous = previous?;
    let attempts = previous.failed_attempts.filter(|n| *n > 0)?;
    let last_failure = previous.last_failure_time.as_ref()?.0;
    let registered = previous
        .conditions
        .iter()
        .find(|c| c.type_ == crate::api::conditions::REGISTERED)?;
    if registered.observed_generation != generation
        || credentials_changed
        || reconcile_request
            .is_some_and(|r| previous.last_handled_reconcile_at.as_deref() != Some(r))
    {
        return None;
    }
    let wait = if NEEDS_A_PERSON.contains(&registered.reason.as_str()) {
        SLOW_RETRY
    } else {
        backoff::delay(attempts as u32, 0.0) // the short end of the jitter range
    };
    let elapsed = now.duration_since(last_failure);
    let remaining = k8s_openapi::jiff::SignedDuration::try_from(wait).ok()? - elapsed;
    Duration::try_from(remaining).ok().filter(|d| !d.is_zero())
}
