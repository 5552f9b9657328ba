//! The DNS/TLS stage machine: from the previous status and this pass's probe
//! (if one ran) to the DNSReady and CertificateReady conditions, the stage,
//! the recorded answer and certificate, and when to check again. Pure.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::Note;
use crate::api::{CertificateStatus, DnsStatus, MappedDomainStatus, Stage, conditions};
use crate::probe::dns::{DnsObservation, DnsVerdict};
use crate::probe::tls::{TlsObservation, TlsVerdict};

/// How checking is paced, from controller flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeSettings {
    /// Checks in one stage before it is called failed (checking goes on, slower).
    pub max_attempts: u32,
    /// Warn when the certificate expires within this and no new one appeared.
    pub renew_warning: Duration,
    /// How often a done domain is checked again.
    pub done_recheck: Duration,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        ProbeSettings {
            max_attempts: 6,
            renew_warning: Duration::from_secs(14 * 24 * 3600),
            done_recheck: Duration::from_secs(12 * 3600),
        }
    }
}

/// Checks slow down by this factor once a stage has failed.
const FAILED_SLOWDOWN: u32 = 4;

/// What one check saw. TLS is probed only when DNS matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub dns: DnsObservation,
    pub expected: Vec<String>,
    pub tls: Option<TlsObservation>,
}

/// One condition's status, reason and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub status: &'static str,
    pub reason: String,
    pub message: String,
}

impl Verdict {
    fn new(status: &'static str, reason: &str, message: impl Into<String>) -> Verdict {
        Verdict {
            status,
            reason: reason.to_owned(),
            message: message.into(),
        }
    }

    fn from_condition(c: &Condition) -> Verdict {
        let status = match c.status.as_str() {
            "True" => "True",
            "False" => "False",
            _ => "Unknown",
        };
        Verdict {
            status,
            reason: c.reason.clone(),
            message: c.message.clone(),
        }
    }

    pub(crate) fn is_true(&self) -> bool {
        self.status == "True"
    }
}

/// The DNS/TLS part of the next status.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckView {
    pub dns_ready: Verdict,
    pub certificate_ready: Verdict,
    pub stage: Stage,
    /// Checks exhausted in the current stage: (reason, message).
    pub exhausted: Option<(String, String)>,
    pub checks: Option<i32>,
    pub dns: Option<DnsStatus>,
    pub certificate: Option<CertificateStatus>,
    pub last_check_time: Option<Time>,
    pub next_check_time: Option<Time>,
    pub notes: Vec<Note>,
}

impl CheckView {
    pub fn ready(&self) -> bool {
        self.stage == Stage::Done
    }
}

/// Whether a registered domain is due for a check at `now`.
pub fn check_due(previous: Option<&MappedDomainStatus>, now: Timestamp) -> bool {
    previous
        .and_then(|s| s.next_check_time.as_ref())
        .is_none_or(|next| next.0 <= now)
}

fn add(now: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d)
        .ok()
        .and_then(|d| now.checked_add(d).ok())
        .unwrap_or(now)
}

fn previous_verdict(previous: &MappedDomainStatus, type_: &str) -> Option<Verdict> {
    previous
        .conditions
        .iter()
        .find(|c| c.type_ == type_ && c.reason != "NotRegistered" && c.reason != "NotChecked")
        .map(Verdict::from_condition)
}

/// The stage a DNS and certificate verdict put a domain in, before failure counting.
fn stage_of(dns: &Verdict, certificate: &Verdict) -> Stage {
    match (dns.is_true(), certificate.is_true()) {
        (false, _) => Stage::CheckingDns,
        (true, false) => Stage::CheckingSslCert,
        (true, true) => Stage::Done,
    }
}

/// The stage with failures folded back, to tell whether a stage changed.
fn base_stage(stage: Option<Stage>) -> Option<Stage> {
    match stage {
        Some(Stage::Failed) => Some(Stage::CheckingDns),
        Some(Stage::SslFailed) => Some(Stage::CheckingSslCert),
        other => other,
    }
}

/// The DNS/TLS view of a registered domain. `interval` is the spec's
/// checkInterval; `jitter` in [0, 1) spreads the next check by ±10 %.
pub fn checks(
    domain: &str,
    previous: &MappedDomainStatus,
    probe: Option<&Probe>,
    interval: Duration,
    settings: &ProbeSettings,
    now: Timestamp,
    jitter: f64,
) -> CheckView {
    let not_checked = || Verdict::new("Unknown", "NotChecked", "not checked yet");
    let Some(probe) = probe else {
        // not due: carry the last check forward
        let dns_ready =
            previous_verdict(previous, conditions::DNS_READY).unwrap_or_else(not_checked);
        let certificate_ready =
            previous_verdict(previous, conditions::CERTIFICATE_READY).unwrap_or_else(not_checked);
        let stage = match previous.stage {
            Some(
                s @ (Stage::CheckingDns
                | Stage::CheckingSslCert
                | Stage::Done
                | Stage::Failed
                | Stage::SslFailed),
            ) => s,
            _ => stage_of(&dns_ready, &certificate_ready),
        };
        let exhausted = matches!(stage, Stage::Failed | Stage::SslFailed).then(|| {
            let failing = if stage == Stage::Failed {
                &dns_ready
            } else {
                &certificate_ready
            };
            (failing.reason.clone(), failing.message.clone())
        });
        return CheckView {
            dns_ready,
            certificate_ready,
            stage,
            exhausted,
            checks: previous.checks,
            dns: previous.dns.clone(),
            certificate: previous.certificate.clone(),
            last_check_time: previous.last_check_time.clone(),
            next_check_time: previous.next_check_time.clone(),
            notes: Vec::new(),
        };
    };

    let dns_ok = probe.dns.verdict == DnsVerdict::Matched;
    let dns_ready = if dns_ok {
        Verdict::new("True", "Matched", probe.dns.message.clone())
    } else {
        Verdict::new(
            "False",
            probe.dns.verdict.reason(),
            probe.dns.message.clone(),
        )
    };
    let dns = Some(DnsStatus {
        records: probe.dns.records.clone(),
        matched: dns_ok,
        expected: probe.expected.clone(),
        message: (!dns_ok).then(|| probe.dns.message.clone()),
    });
    let mut certificate = previous.certificate.clone();
    let certificate_ready = match (&probe.tls, dns_ok) {
        (Some(tls), true) => {
            if tls.certificate.is_some() {
                certificate = tls.certificate.clone();
            }
            if tls.verdict == TlsVerdict::Valid {
                match &tls.certificate {
                    Some(cert) if cert.not_after.0 < add(now, settings.renew_warning) => {
                        Verdict::new(
                            "True",
                            "CertificateExpiringSoon",
                            format!(
                                "the certificate expires at {} and no renewed one has appeared",
                                cert.not_after.0
                            ),
                        )
                    }
                    _ => Verdict::new("True", "Valid", tls.message.clone()),
                }
            } else {
                Verdict::new("False", tls.verdict.reason(), tls.message.clone())
            }
        }
        _ => Verdict::new("Unknown", "DNSNotReady", "checked once DNS is ready"),
    };

    let stage = stage_of(&dns_ready, &certificate_ready);
    let checks = if stage == Stage::Done {
        0
    } else if base_stage(previous.stage) == Some(stage) {
        previous.checks.unwrap_or(0).saturating_add(1)
    } else {
        1
    };
    let exhausted = stage != Stage::Done && checks >= settings.max_attempts as i32;
    let (stage, exhausted) = match (stage, exhausted) {
        (Stage::CheckingDns, true) => (
            Stage::Failed,
            Some((dns_ready.reason.clone(), dns_ready.message.clone())),
        ),
        (Stage::CheckingSslCert, true) => (
            Stage::SslFailed,
            Some((
                certificate_ready.reason.clone(),
                certificate_ready.message.clone(),
            )),
        ),
        (stage, _) => (stage, None),
    };

    let spread = 0.9 + 0.2 * jitter.clamp(0.0, 1.0);
    let wait = match stage {
        Stage::Done => {
            // look again before the warning window opens, or at the slow pace
            let until_warning = certificate
                .as_ref()
                .map(|c| {
                    c.not_after
                        .0
                        .duration_since(add(now, settings.renew_warning))
                })
                .and_then(|d| Duration::try_from(d).ok())
                .filter(|d| !d.is_zero());
            until_warning.map_or(settings.done_recheck, |d| d.min(settings.done_recheck))
        }
        Stage::Failed | Stage::SslFailed => {
            interval.saturating_mul(FAILED_SLOWDOWN).mul_f64(spread)
        }
        _ => interval.mul_f64(spread),
    };

    let notes = transition_notes(
        domain,
        previous,
        stage,
        &dns_ready,
        &certificate_ready,
        certificate.as_ref(),
    );
    CheckView {
        dns_ready,
        certificate_ready,
        stage,
        exhausted,
        checks: (checks > 0).then_some(checks),
        dns,
        certificate,
        last_check_time: Some(Time(now)),
        next_check_time: Some(Time(add(now, wait))),
        notes,
    }
}

fn note(warning: bool, reason: &'static str, message: String) -> Note {
    Note {
        warning,
        reason,
        action: "Check",
        message,
    }
}

fn transition_notes(
    domain: &str,
    previous: &MappedDomainStatus,
    stage: Stage,
    dns: &Verdict,
    certificate: &Verdict,
    cert: Option<&CertificateStatus>,
) -> Vec<Note> {
    let mut notes = Vec::new();
    let before = previous.stage;
    let previous_cert_reason = previous
        .conditions
        .iter()
        .find(|c| c.type_ == conditions::CERTIFICATE_READY)
        .map(|c| c.reason.as_str());
    if before != Some(stage) {
        match stage {
            Stage::CheckingSslCert if base_stage(before) != Some(Stage::CheckingSslCert) => {
                notes.push(note(false, "DNSReady", dns.message.clone()))
            }
            Stage::Done => {
                let until = cert.map(|c| c.not_after.0.to_string()).unwrap_or_default();
                notes.push(note(
                    false,
                    "CertificateIssued",
                    format!("{domain} serves a valid certificate until {until}"),
                ))
            }
            Stage::Failed => notes.push(note(true, "DNSNotReady", dns.message.clone())),
            Stage::SslFailed => notes.push(note(
                true,
                "CertificateNotReady",
                certificate.message.clone(),
            )),
            Stage::CheckingDns
                if before == Some(Stage::Done) || before == Some(Stage::CheckingSslCert) =>
            {
                notes.push(note(true, "DNSLost", dns.message.clone()))
            }
            _ => {}
        }
    }
    if certificate.reason == "CertificateExpiringSoon"
        && previous_cert_reason != Some("CertificateExpiringSoon")
    {
        notes.push(note(
            true,
            "CertificateExpiringSoon",
            certificate.message.clone(),
        ));
    }
    if let (Some(old), Some(new)) = (previous.certificate.as_ref(), cert)
        && stage == Stage::Done
        && before == Some(Stage::Done)
        && old.serial_number != new.serial_number
    {
        notes.push(note(
            false,
            "CertificateRenewed",
            format!(
                "{domain} serves a new certificate until {}",
                new.not_after.0
            ),
        ));
    }
    notes
}
