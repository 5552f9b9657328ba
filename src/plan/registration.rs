//! Whether the alias is on Closte after a pass, and why (not): an ordered
//! chain of small links, each owning its reasons; the first that speaks
//! names the Registered condition. (Not a DNS/TLS [`super::Check`].)

use super::facts::{Facts, Failure, Observation, Outcome, Retry};
use crate::api::conditions::{ConditionType, Reason};

/// Where a pass leaves the alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    Yes {
        reason: Reason,
        message: String,
    },
    No {
        reason: Reason,
        message: String,
        /// Needs a person; retrying will not help.
        stalled: bool,
        /// The failure this pass met, if any.
        failure: Option<Failure>,
    },
}

impl Registration {
    pub fn is_registered(&self) -> bool {
        matches!(self, Registration::Yes { .. })
    }

    pub fn reason(&self) -> Reason {
        match self {
            Registration::Yes { reason, .. } | Registration::No { reason, .. } => *reason,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Registration::Yes { message, .. } | Registration::No { message, .. } => message,
        }
    }

    pub fn stalled(&self) -> bool {
        matches!(self, Registration::No { stalled: true, .. })
    }

    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Registration::No { failure, .. } => failure.as_ref(),
            Registration::Yes { .. } => None,
        }
    }

    fn no(reason: Reason, message: String) -> Registration {
        Registration::No {
            reason,
            message,
            stalled: false,
            failure: None,
        }
    }

    fn failed(failure: &Failure) -> Registration {
        Registration::No {
            reason: failure.reason,
            message: failure.message.clone(),
            stalled: failure.retry == Retry::Stop,
            failure: Some(failure.clone()),
        }
    }
}

/// One link of the chain: the registration it names, if it speaks.
type Link = fn(&Facts<'_>, &Outcome) -> Option<Registration>;

/// The chain, in order: who may touch Closte at all, then what the action
/// did, then what the list showed, then why nothing was written.
const CHAIN: [Link; 6] = [
    conflict,
    credentials,
    domain,
    outcome,
    observation,
    writes_off,
];

/// Where `outcome` (of the pass's action) leaves the alias.
pub fn registration(facts: &Facts<'_>, outcome: &Outcome) -> Registration {
    CHAIN
        .iter()
        .find_map(|link| link(facts, outcome))
        .unwrap_or_else(|| {
            let domain = &facts.spec.domain;
            Registration::no(Reason::Pending, format!("{domain} is not on Closte yet"))
        })
}

fn conflict(facts: &Facts<'_>, _: &Outcome) -> Option<Registration> {
    let winner = facts.conflict.as_ref()?;
    Some(Registration::No {
        reason: Reason::DomainConflict,
        message: format!(
            "{} is claimed by MappedDomain {}/{}, which is older; this one will not touch Closte",
            facts.spec.domain, winner.namespace, winner.name
        ),
        stalled: true,
        failure: None,
    })
}

fn credentials(facts: &Facts<'_>, _: &Outcome) -> Option<Registration> {
    let (reason, message) = facts.credentials.problem()?;
    Some(Registration::failed(&Failure {
        reason,
        message,
        retry: Retry::Stop,
    }))
}

fn domain(facts: &Facts<'_>, _: &Outcome) -> Option<Registration> {
    let problem = facts.invalid_domain.as_ref()?;
    Some(Registration::failed(&Failure {
        reason: Reason::DomainRejected,
        message: problem.clone(),
        retry: Retry::Stop,
    }))
}

fn outcome(facts: &Facts<'_>, outcome: &Outcome) -> Option<Registration> {
    let domain = &facts.spec.domain;
    let was_registered = facts
        .previous
        .is_some_and(|s| s.is_true(ConditionType::Registered));
    Some(match outcome {
        Outcome::Idle => return None,
        Outcome::Failed(failure) => Registration::failed(failure),
        Outcome::Added if was_registered => Registration::Yes {
            reason: Reason::ReRegistered,
            message: format!("{domain} had vanished from Closte; added again"),
        },
        Outcome::Added => Registration::Yes {
            reason: Reason::Added,
            message: format!("{domain} added to Closte"),
        },
        Outcome::AlreadyPresent => present(facts),
        Outcome::Deleted | Outcome::AlreadyAbsent | Outcome::Released => {
            Registration::no(Reason::Deregistered, format!("{domain} is not on Closte"))
        }
    })
}

fn observation(facts: &Facts<'_>, _: &Outcome) -> Option<Registration> {
    let domain = &facts.spec.domain;
    match &facts.observation {
        Observation::Failed(failure) => Some(Registration::failed(failure)),
        Observation::Present => Some(present(facts)),
        Observation::NotObserved => Some(Registration::no(
            Reason::Pending,
            format!("{domain} not checked on Closte yet"),
        )),
        Observation::Absent if facts.deleting => Some(Registration::no(
            Reason::Deregistered,
            format!("{domain} is not on Closte"),
        )),
        Observation::Absent => None,
    }
}

fn writes_off(facts: &Facts<'_>, _: &Outcome) -> Option<Registration> {
    if facts.suspended() {
        let message = "spec.suspend is true: Closte is not written".into();
        return Some(Registration::no(Reason::Suspended, message));
    }
    let domain = &facts.spec.domain;
    facts.settings.dry_run.then(|| {
        Registration::no(
            Reason::DryRun,
            format!("dry run: would add {domain} to Closte"),
        )
    })
}

/// On Closte without this pass adding it: adopted the first time it is seen.
fn present(facts: &Facts<'_>) -> Registration {
    let domain = &facts.spec.domain;
    if facts.previous_ownership().is_none() {
        Registration::Yes {
            reason: Reason::Adopted,
            message: format!("{domain} was already on Closte; adopted"),
        }
    } else {
        Registration::Yes {
            reason: Reason::Present,
            message: format!("{domain} is on Closte"),
        }
    }
}
