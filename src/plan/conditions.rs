//! The conditions of the next status, from where the alias stands and what
//! DNS and TLS showed. Ready is the first of Registered, DNSReady and
//! CertificateReady that is not true; Reconciling and Stalled follow kstatus.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::checks::{CheckView, Verdict};
use super::registration::Registration;
use crate::api::MappedDomainStatus;
use crate::api::conditions::{ConditionSet, ConditionType, Reason, Status};

/// The words of the Registered condition, kept from the last transition while
/// the alias stays registered and nothing was written, so a settled object's
/// status stays byte-for-byte the same.
pub fn registered_verdict(
    previous: &MappedDomainStatus,
    registration: &Registration,
    wrote: bool,
) -> Verdict {
    let fresh = Verdict {
        status: Status::from_bool(registration.is_registered()),
        reason: registration.reason(),
        message: registration.message().to_owned(),
    };
    if wrote || !registration.is_registered() {
        return fresh;
    }
    previous
        .condition(ConditionType::Registered)
        .filter(|c| Status::parse(&c.status) == Status::True)
        .and_then(|c| {
            Some(Verdict {
                status: Status::True,
                reason: Reason::parse(&c.reason)?,
                message: c.message.clone(),
            })
        })
        .unwrap_or(fresh)
}

/// The six conditions, in display order.
pub fn conditions(
    previous: &[Condition],
    now: &Time,
    generation: Option<i64>,
    registered: &Verdict,
    stalled: bool,
    view: Option<&CheckView>,
) -> Vec<Condition> {
    let mut set = ConditionSet::new(previous, now, generation);
    put(&mut set, ConditionType::Registered, registered);
    let not_registered = Verdict {
        status: Status::Unknown,
        reason: Reason::NotRegistered,
        message: "the alias is not on Closte".into(),
    };
    let (dns, certificate) = match view {
        Some(view) => (&view.dns_ready, &view.certificate_ready),
        None => (&not_registered, &not_registered),
    };
    put(&mut set, ConditionType::DnsReady, dns);
    put(&mut set, ConditionType::CertificateReady, certificate);
    let ready = ready(registered, view);
    put(&mut set, ConditionType::Ready, &ready);

    let stalled_by = match view {
        _ if stalled => Some(registered),
        Some(view) => view.exhausted.as_ref(),
        None => None,
    };
    progress(&mut set, stalled_by, &ready);
    set.finish()
}

fn put(set: &mut ConditionSet<'_>, type_: ConditionType, verdict: &Verdict) {
    set.set(
        type_,
        verdict.status,
        verdict.reason,
        verdict.message.clone(),
    );
}

/// Reconciling and Stalled (kstatus): stalled by a problem that needs a
/// person, done, or still working on the Ready condition's reason.
fn progress(set: &mut ConditionSet<'_>, stalled_by: Option<&Verdict>, ready: &Verdict) {
    let verdict = |status, reason, message: String| Verdict {
        status,
        reason,
        message,
    };
    let no_problem = || "no problem that needs a person".to_owned();
    let (reconciling, stalled) = match stalled_by {
        Some(why) => (
            verdict(
                Status::False,
                why.reason,
                "stalled; see the Stalled condition".to_owned(),
            ),
            verdict(Status::True, why.reason, why.message.clone()),
        ),
        None if ready.is_true() => (
            verdict(
                Status::False,
                Reason::Ready,
                "nothing left to do".to_owned(),
            ),
            verdict(Status::False, Reason::Ready, no_problem()),
        ),
        None => (
            verdict(Status::True, ready.reason, ready.message.clone()),
            verdict(Status::False, Reason::Progressing, no_problem()),
        ),
    };
    put(set, ConditionType::Reconciling, &reconciling);
    put(set, ConditionType::Stalled, &stalled);
}

/// Ready when DNS and the certificate are, else the first of Registered,
/// DNSReady and CertificateReady that is not true.
fn ready(registered: &Verdict, view: Option<&CheckView>) -> Verdict {
    let blocking = match view {
        Some(view) if view.ready() => {
            return Verdict {
                status: Status::True,
                reason: Reason::Ready,
                message: format!("{}; DNS and certificate are ready", registered.message),
            };
        }
        Some(view) => view.blocking().unwrap_or(&view.certificate_ready),
        None => registered,
    };
    Verdict {
        status: Status::False,
        ..blocking.clone()
    }
}
