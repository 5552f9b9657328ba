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
    set.set(
        ConditionType::Registered,
        registered.status,
        registered.reason,
        registered.message.clone(),
    );
    let not_registered = Verdict {
        status: Status::Unknown,
        reason: Reason::NotRegistered,
        message: "the alias is not on Closte".into(),
    };
    let (dns, certificate) = match view {
        Some(view) => (&view.dns_ready, &view.certificate_ready),
        None => (&not_registered, &not_registered),
    };
    for (type_, v) in [
        (ConditionType::DnsReady, dns),
        (ConditionType::CertificateReady, certificate),
    ] {
        set.set(type_, v.status, v.reason, v.message.clone());
    }
    let ready = ready(registered, view);
    set.set(
        ConditionType::Ready,
        ready.status,
        ready.reason,
        ready.message.clone(),
    );

    let stalled_by = match view {
        _ if stalled => Some(registered),
        Some(view) => view.exhausted.as_ref(),
        None => None,
    };
    let progress = |set: &mut ConditionSet<'_>, status, reason: Reason, message: &str| {
        set.set(ConditionType::Reconciling, status, reason, message.into());
    };
    let no_problem = "no problem that needs a person".to_owned();
    match stalled_by {
        Some(why) => {
            progress(
                &mut set,
                Status::False,
                why.reason,
                "stalled; see the Stalled condition",
            );
            set.set(
                ConditionType::Stalled,
                Status::True,
                why.reason,
                why.message.clone(),
            );
        }
        None if ready.is_true() => {
            progress(&mut set, Status::False, Reason::Ready, "nothing left to do");
            set.set(
                ConditionType::Stalled,
                Status::False,
                Reason::Ready,
                no_problem,
            );
        }
        None => {
            progress(&mut set, Status::True, ready.reason, &ready.message);
            set.set(
                ConditionType::Stalled,
                Status::False,
                Reason::Progressing,
                no_problem,
            );
        }
    }
    set.finish()
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
