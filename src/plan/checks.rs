//! The DNS/TLS stage machine: from the previous status and this pass's check
//! (if one ran) to the DNSReady and CertificateReady verdicts, the stage, the
//! recorded answer and certificate, and when to check again. Pure.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::events::Note;
use super::facts::Check;
use crate::api::conditions::{ConditionType, Reason, Status};
use crate::api::{CertificateStatus, DnsStatus, MappedDomainStatus, ProofStatus, Stage};

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

impl ProbeSettings {
    /// The default of `--max-attempts`.
    pub const MAX_ATTEMPTS: u32 = 6;
    /// The default of `--renew-warning`: two weeks.
    pub const RENEW_WARNING: Duration = Duration::from_secs(14 * 24 * 3600);
    /// The default of `--done-recheck`.
    pub const DONE_RECHECK: Duration = Duration::from_secs(12 * 3600);
}

impl Default for ProbeSettings {
    fn default() -> Self {
        ProbeSettings {
            max_attempts: Self::MAX_ATTEMPTS,
            renew_warning: Self::RENEW_WARNING,
            done_recheck: Self::DONE_RECHECK,
        }
    }
}

/// Checks slow down by this factor once a stage has failed.
const FAILED_SLOWDOWN: u32 = 4;

/// One condition's status, reason and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub status: Status,
    pub reason: Reason,
    pub message: String,
}

impl Verdict {
    pub(super) fn new(status: Status, reason: Reason, message: impl Into<String>) -> Verdict {
        Verdict {
            status,
            reason,
            message: message.into(),
        }
    }

    fn not_checked() -> Verdict {
        Verdict::new(Status::Unknown, Reason::NotChecked, "not checked yet")
    }

    /// A stored verdict worth carrying forward: a real check's, in words this
    /// version knows.
    fn from_condition(c: &Condition) -> Option<Verdict> {
        let reason = Reason::parse(&c.reason)?;
        (!matches!(reason, Reason::NotRegistered | Reason::NotChecked)).then(|| Verdict {
            status: Status::parse(&c.status),
            reason,
            message: c.message.clone(),
        })
    }

    pub fn is_true(&self) -> bool {
        self.status == Status::True
    }
}

/// The DNS/TLS part of the next status.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckView {
    pub dns_ready: Verdict,
    pub certificate_ready: Verdict,
    pub stage: Stage,
    /// Checks exhausted in the current stage: the verdict that failed.
    pub exhausted: Option<Verdict>,
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

    /// The first of DNSReady and CertificateReady that is not true.
    pub fn blocking(&self) -> Option<&Verdict> {
        [&self.dns_ready, &self.certificate_ready]
            .into_iter()
            .find(|v| !v.is_true())
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

fn previous_verdict(previous: &MappedDomainStatus, type_: ConditionType) -> Verdict {
    previous
        .condition(type_)
        .and_then(Verdict::from_condition)
        .unwrap_or_else(Verdict::not_checked)
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

/// The failed stage a stage falls into after too many checks, with the
/// verdict to blame.
fn exhausted_stage(stage: Stage, dns: &Verdict, certificate: &Verdict) -> Option<(Stage, Verdict)> {
    match stage {
        Stage::CheckingDns | Stage::Failed => Some((Stage::Failed, dns.clone())),
        Stage::CheckingSslCert | Stage::SslFailed => Some((Stage::SslFailed, certificate.clone())),
        _ => None,
    }
}

/// How the DNS/TLS checks of a registered domain are paced.
#[derive(Debug, Clone, Copy)]
pub struct Pace<'a> {
    /// The spec's checkInterval.
    pub interval: Duration,
    pub settings: &'a ProbeSettings,
    pub now: Timestamp,
    /// Uniform in [0, 1): spreads the next check by ±10 %.
    pub jitter: f64,
}

/// The DNS/TLS view of a registered domain after this pass.
pub fn checks(
    domain: &str,
    previous: &MappedDomainStatus,
    check: Option<&Check>,
    pace: Pace<'_>,
) -> CheckView {
    match check {
        None => carried(previous),
        Some(check) => judged(domain, previous, check, pace),
    }
}

/// No check ran: the last one stands.
fn carried(previous: &MappedDomainStatus) -> CheckView {
    let dns_ready = previous_verdict(previous, ConditionType::DnsReady);
    let certificate_ready = previous_verdict(previous, ConditionType::CertificateReady);
    let stage = match previous.stage {
        Some(s) if s != Stage::Pending => s,
        _ => stage_of(&dns_ready, &certificate_ready),
    };
    let exhausted = matches!(stage, Stage::Failed | Stage::SslFailed)
        .then(|| exhausted_stage(stage, &dns_ready, &certificate_ready))
        .flatten()
        .map(|(_, v)| v);
    CheckView {
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
    }
}

/// The verdicts of a check that ran.
fn verdicts(check: &Check, renew_warning: Duration, now: Timestamp) -> (Verdict, Verdict, bool) {
    let judged = super::proof::dns_ready(check.verification, &check.dns, check.proof.as_ref());
    let proxied = judged.proxied;
    let dns_ready = judged.verdict;
    let reached = dns_ready.is_true();
    let certificate_ready = match &check.tls {
        Some(tls) if reached && tls.valid() => match &tls.certificate {
            Some(cert) if cert.not_after.0 < add(now, renew_warning) => Verdict::new(
                Status::True,
                Reason::CertificateExpiringSoon,
                format!(
                    "the certificate expires at {} and no renewed one has appeared",
                    cert.not_after.0
                ),
            ),
            _ => Verdict::new(Status::True, Reason::Valid, tls.message.clone()),
        },
        Some(tls) if reached => Verdict::new(Status::False, tls.reason, tls.message.clone()),
        _ => Verdict::new(
            Status::Unknown,
            Reason::DnsNotReady,
            "checked once DNS is ready",
        ),
    };
    (dns_ready, certificate_ready, proxied)
}

/// A check ran: new verdicts, the stage with failures counted, the next check.
fn judged(domain: &str, previous: &MappedDomainStatus, check: &Check, pace: Pace<'_>) -> CheckView {
    let (dns_ready, certificate_ready, proxied) =
        verdicts(check, pace.settings.renew_warning, pace.now);
    let matched = check.dns.matched();
    let dns = Some(DnsStatus {
        records: check.dns.records.clone(),
        matched,
        expected: check.expected.clone(),
        message: (!matched).then(|| check.dns.message.clone()),
        proxied,
        proof: check.proof.as_ref().map(|p| ProofStatus {
            url: p.url.clone(),
            result: p.reason().as_str().to_owned(),
            message: p.message.clone(),
        }),
    });
    // a proxied domain's certificate is the proxy's: the one visitors see
    let served = check
        .tls
        .as_ref()
        .filter(|_| dns_ready.is_true())
        .and_then(|t| t.certificate.clone())
        .map(|c| CertificateStatus {
            served_by: proxied.then(|| "Proxy".to_owned()),
            ..c
        });
    let certificate = served.or_else(|| previous.certificate.clone());

    let stage = stage_of(&dns_ready, &certificate_ready);
    let checks = if stage == Stage::Done {
        0
    } else if base_stage(previous.stage) == Some(stage) {
        previous.checks.unwrap_or(0).saturating_add(1)
    } else {
        1
    };
    let (stage, exhausted) = match exhausted_stage(stage, &dns_ready, &certificate_ready) {
        Some((failed, blame)) if checks >= pace.settings.max_attempts as i32 => {
            (failed, Some(blame))
        }
        _ => (stage, None),
    };
    let wait = next_wait(stage, certificate.as_ref(), pace);
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
        last_check_time: Some(Time(pace.now)),
        next_check_time: Some(Time(add(pace.now, wait))),
        notes,
    }
}

/// ±10 % by `jitter` (uniform in [0, 1)): periodic work is spread, so
/// objects created together are not looked at together ever after.
pub(super) fn spread(jitter: f64) -> f64 {
    0.9 + 0.2 * jitter.clamp(0.0, 1.0)
}

/// Time to the next check: the interval (slower once failed), or for a done
/// domain the slow re-check, or the opening of the renewal warning window.
fn next_wait(stage: Stage, certificate: Option<&CertificateStatus>, pace: Pace<'_>) -> Duration {
    let settings = pace.settings;
    match stage {
        Stage::Done => {
            let until_warning = certificate
                .map(|c| {
                    c.not_after
                        .0
                        .duration_since(add(pace.now, settings.renew_warning))
                })
                .and_then(|d| Duration::try_from(d).ok())
                .filter(|d| !d.is_zero());
            until_warning.map_or(settings.done_recheck, |d| d.min(settings.done_recheck))
        }
        Stage::Failed | Stage::SslFailed => pace
            .interval
            .saturating_mul(FAILED_SLOWDOWN)
            .mul_f64(spread(pace.jitter)),
        _ => pace.interval.mul_f64(spread(pace.jitter)),
    }
}

fn note(warning: bool, reason: Reason, message: String) -> Note {
    Note {
        warning,
        reason,
        action: "Check",
        message,
    }
}

/// Events for a change of stage, a certificate entering the warning window,
/// and a replaced certificate.
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
    if before != Some(stage) {
        let changed = match stage {
            Stage::CheckingSslCert if base_stage(before) != Some(Stage::CheckingSslCert) => {
                Some(note(false, Reason::DnsReady, dns.message.clone()))
            }
            Stage::Done => {
                let until = cert.map(|c| c.not_after.0.to_string()).unwrap_or_default();
                let message = format!("{domain} serves a valid certificate until {until}");
                Some(note(false, Reason::CertificateIssued, message))
            }
            Stage::Failed => Some(note(true, Reason::DnsNotReady, dns.message.clone())),
            Stage::SslFailed => Some(note(
                true,
                Reason::CertificateNotReady,
                certificate.message.clone(),
            )),
            Stage::CheckingDns if matches!(before, Some(Stage::Done | Stage::CheckingSslCert)) => {
                Some(note(true, Reason::DnsLost, dns.message.clone()))
            }
            _ => None,
        };
        notes.extend(changed);
    }
    let warned_before =
        previous.reason(ConditionType::CertificateReady) == Some(Reason::CertificateExpiringSoon);
    if certificate.reason == Reason::CertificateExpiringSoon && !warned_before {
        notes.push(note(
            true,
            Reason::CertificateExpiringSoon,
            certificate.message.clone(),
        ));
    }
    if let (Some(old), Some(new)) = (previous.certificate.as_ref(), cert)
        && stage == Stage::Done
        && before == Some(Stage::Done)
        && old.serial_number != new.serial_number
    {
        let message = format!(
            "{domain} serves a new certificate until {}",
            new.not_after.0
        );
        notes.push(note(false, Reason::CertificateRenewed, message));
    }
    notes
}
