//! The DNS/TLS stages after registration: checks, attempts, a replaced or
//! expiring certificate, and the recheck of a done domain.

use super::*;
use crate::api::{CertificateStatus, Verification};
use crate::plan::checks::check_due;

fn cert(serial: &str, not_after_days: i64) -> CertificateStatus {
    CertificateStatus {
        issuer: "CN=Test CA".into(),
        subject: "CN=shop.example.com".into(),
        dns_names: vec!["shop.example.com".into()],
        serial_number: serial.into(),
        not_before: Time(at(-3600)),
        not_after: Time(at(not_after_days * 86400)),
        sha256_fingerprint: "AA".into(),
        served_by: None,
    }
}

fn tls(reason: Reason, certificate: Option<CertificateStatus>) -> TlsCheck {
    TlsCheck {
        reason,
        certificate,
        message: format!("tls says {reason}"),
    }
}

fn check(dns: Reason, tls: Option<TlsCheck>) -> Check {
    Check {
        dns: DnsCheck {
            reason: dns,
            records: vec!["203.0.113.7".into()],
            message: format!("dns says {dns}"),
        },
        expected: vec!["203.0.113.7".into()],
        tls,
        verification: Verification::Auto,
        proof: None,
    }
}

/// Runs checks over a registered domain, one pass per check, 600 s apart.
fn run(checks: Vec<Check>) -> Vec<Conclusion> {
    let spec = spec("shop.example.com");
    let (_, first) = pass(&facts(&spec, None, Observation::Absent), Outcome::Added);
    let mut status = first.status;
    let mut out = Vec::new();
    for (i, c) in checks.into_iter().enumerate() {
        let mut f = facts(&spec, Some(&status), Observation::Present);
        f.now = at(600 * (i as i64 + 1));
        let (_, c) = pass_checked(&f, Outcome::Idle, Some(c));
        status = c.status.clone();
        out.push(c);
    }
    out
}

#[test]
fn dns_then_certificate_then_done() {
    let valid = || Some(tls(Reason::Valid, Some(cert("01", 90))));
    let passes = run(vec![
        check(Reason::NxDomain, None),
        check(Reason::NxDomain, None),
        check(
            Reason::Matched,
            Some(tls(Reason::HostnameMismatch, Some(cert("FF", 90)))),
        ),
        check(Reason::Matched, valid()),
    ]);
    let s = &passes[1].status;
    assert_eq!(s.stage, Some(Stage::CheckingDns));
    assert_eq!(s.checks, Some(2));
    assert_eq!(condition(s, ConditionType::DnsReady), ("False", "NXDOMAIN"));
    assert_eq!(
        condition(s, ConditionType::CertificateReady),
        ("Unknown", "DNSNotReady")
    );
    assert_eq!(condition(s, ConditionType::Ready), ("False", "NXDOMAIN"));
    // next check: the checkInterval (300 s), spread ±10 % (jitter 0.5: exact)
    assert_eq!(s.next_check_time, Some(Time(at(1200 + 300))));

    let s = &passes[2].status;
    assert_eq!(s.stage, Some(Stage::CheckingSslCert));
    assert_eq!(s.checks, Some(1), "a new stage counts from one");
    assert_eq!(
        condition(s, ConditionType::CertificateReady),
        ("False", "HostnameMismatch")
    );
    assert_eq!(
        s.certificate.as_ref().unwrap().serial_number,
        "FF",
        "recorded though invalid"
    );
    assert_eq!(reasons(&passes[2]), [Reason::DnsReady]);

    let done = &passes[3];
    let s = &done.status;
    assert_eq!(s.stage, Some(Stage::Done));
    assert_eq!(s.checks, None);
    assert_eq!(condition(s, ConditionType::Ready), ("True", "Ready"));
    assert_eq!(condition(s, ConditionType::Reconciling).0, "False");
    assert_eq!(condition(s, ConditionType::Stalled).0, "False");
    assert_eq!(s.certificate.as_ref().unwrap().serial_number, "01");
    assert!(s.dns.as_ref().unwrap().matched);
    assert_eq!(reasons(done), [Reason::CertificateIssued]);
    // done: the slow re-check
    assert_eq!(s.next_check_time, Some(Time(at(2400 + 12 * 3600))));
    // the resync (drift) comes first
    assert_eq!(done.requeue, RESYNC);
}

#[test]
fn failed_after_max_attempts_but_still_checking() {
    let mut probes: Vec<Check> = (0..6)
        .map(|_| check(Reason::TargetMismatch, None))
        .collect();
    probes.push(check(
        Reason::Matched,
        Some(tls(Reason::Valid, Some(cert("01", 90)))),
    ));
    let passes = run(probes);
    let s = &passes[4].status;
    assert_eq!(s.stage, Some(Stage::CheckingDns));
    let failed = &passes[5];
    assert_eq!(failed.status.stage, Some(Stage::Failed));
    assert_eq!(
        condition(&failed.status, ConditionType::Stalled),
        ("True", "TargetMismatch")
    );
    assert_eq!(reasons(failed), [Reason::DnsNotReady]);
    // slower, not stopped: 4 x 300 s
    assert_eq!(failed.status.next_check_time, Some(Time(at(3600 + 1200))));
    // a late DNS fix still ends done
    assert_eq!(passes[6].status.stage, Some(Stage::Done));
    assert_eq!(
        condition(&passes[6].status, ConditionType::Stalled).0,
        "False"
    );
}

#[test]
fn ssl_failed_after_max_attempts() {
    let probes = (0..6)
        .map(|_| check(Reason::Matched, Some(tls(Reason::Untrusted, None))))
        .collect();
    let passes = run(probes);
    let last = &passes[5];
    assert_eq!(last.status.stage, Some(Stage::SslFailed));
    assert_eq!(
        condition(&last.status, ConditionType::Stalled),
        ("True", "Untrusted")
    );
    assert_eq!(reasons(last), [Reason::CertificateNotReady]);
}

#[test]
fn flapping_dns_and_a_replaced_certificate() {
    let valid = |serial: &str| Some(tls(Reason::Valid, Some(cert(serial, 90))));
    let passes = run(vec![
        check(Reason::Matched, valid("01")),
        check(Reason::TargetMismatch, None),
        check(Reason::Matched, valid("01")),
        check(Reason::Matched, valid("02")),
    ]);
    assert_eq!(passes[1].status.stage, Some(Stage::CheckingDns));
    assert_eq!(reasons(&passes[1]), [Reason::DnsLost]);
    assert_eq!(
        condition(&passes[1].status, ConditionType::Ready).0,
        "False"
    );
    assert_eq!(
        passes[1].status.certificate.as_ref().unwrap().serial_number,
        "01",
        "kept"
    );
    assert_eq!(passes[2].status.stage, Some(Stage::Done));
    assert_eq!(reasons(&passes[3]), [Reason::CertificateRenewed]);
}

#[test]
fn expiring_certificate_warns_once() {
    let soon = || Some(tls(Reason::Valid, Some(cert("01", 5))));
    let passes = run(vec![
        check(Reason::Matched, soon()),
        check(Reason::Matched, soon()),
    ]);
    let s = &passes[0].status;
    assert_eq!(
        condition(s, ConditionType::CertificateReady),
        ("True", "CertificateExpiringSoon")
    );
    assert_eq!(condition(s, ConditionType::Ready).0, "True", "still valid");
    assert_eq!(
        reasons(&passes[0]),
        [Reason::CertificateIssued, Reason::CertificateExpiringSoon]
    );
    assert!(passes[0].events[1].warning);
    assert!(reasons(&passes[1]).is_empty(), "warned once");
    // a certificate far from the window: the 12 h re-check
    let fine = run(vec![check(
        Reason::Matched,
        Some(tls(Reason::Valid, Some(cert("01", 20)))),
    )]);
    assert_eq!(
        fine[0].status.next_check_time,
        Some(Time(at(600 + 12 * 3600)))
    );
    // one whose warning window opens in an hour is looked at then
    let mut near = cert("01", 14);
    near.not_after = Time(at(14 * 86400 + 600 + 3600));
    let near = run(vec![check(
        Reason::Matched,
        Some(tls(Reason::Valid, Some(near))),
    )]);
    assert_eq!(near[0].status.next_check_time, Some(Time(at(600 + 3600))));
}

#[test]
fn no_probe_carries_the_last_check_forward() {
    let passes = run(vec![check(
        Reason::Matched,
        Some(tls(Reason::Valid, Some(cert("01", 90)))),
    )]);
    let done = passes[0].status.clone();
    let spec = spec("shop.example.com");
    let mut f = facts(&spec, Some(&done), Observation::Present);
    f.now = at(700);
    assert!(!check_due(Some(&done), f.now));
    let (_, c) = pass(&f, Outcome::Idle);
    assert_eq!(c.status, done, "nothing changes between checks");
    assert!(c.events.is_empty());
    assert!(check_due(Some(&done), at(600 + 12 * 3600)));
}

#[test]
fn an_edited_spec_is_judged_again_at_once() {
    let done = run(vec![check(
        Reason::Matched,
        Some(tls(Reason::Valid, Some(cert("01", 90)))),
    )]);
    let status = done[0].status.clone();
    assert_eq!(status.stage, Some(Stage::Done));
    let spec = spec("shop.example.com");
    // a minute later, long before the next check: not due
    let mut f = facts(&spec, Some(&status), Observation::Present);
    f.now = at(660);
    let acted = Acted::new(&f, Action::Nothing, Outcome::Idle);
    assert!(
        !acted.wants_check(&f),
        "a done domain waits for its re-check"
    );
    // the same minute, with a new generation (verification, targets, interval changed)
    f.generation = status.observed_generation.map(|g| g + 1);
    assert!(acted.wants_check(&f), "an edit is judged at once");
}

#[test]
fn a_check_that_only_moves_the_schedule_is_kept_not_written_for_up_to_a_resync() {
    let spec = spec("shop.example.com");
    let (_, first) = pass(&facts(&spec, None, Observation::Absent), Outcome::Added);
    // one written check: DNS not there yet
    let mut f = facts(&spec, Some(&first.status), Observation::Present);
    f.now = at(10);
    let (_, written) = pass_checked(&f, Outcome::Idle, Some(check(Reason::NxDomain, None)));
    assert!(written.write_status);
    let written = written.status;

    // the same answer 10 s later: only checks and their times move
    let recheck = |kept: &MappedDomainStatus, now: i64, dns: Reason| {
        let mut f = facts(&spec, Some(kept), Observation::Present);
        f.now = at(now);
        f.written_check_time = written.last_check_time.as_ref().map(|t| t.0);
        pass_checked(&f, Outcome::Idle, Some(check(dns, None))).1
    };
    let kept = recheck(&written, 20, Reason::NxDomain);
    assert!(kept.keep_schedule && !kept.write_status, "{kept:?}");
    assert_eq!(kept.status.checks, Some(2), "counted all the same");
    assert!(kept.events.is_empty());
    // from the kept schedule, the count goes on
    let again = recheck(&kept.status, 30, Reason::NxDomain);
    assert!(again.keep_schedule);
    assert_eq!(again.status.checks, Some(3));

    // a resync after the written check, it is written
    let late = recheck(&kept.status, 10 + RESYNC.as_secs() as i64, Reason::NxDomain);
    assert!(late.write_status && !late.keep_schedule);
    // anything else that changed is written at once
    let other = recheck(&kept.status, 30, Reason::TargetMismatch);
    assert!(other.write_status && !other.keep_schedule);
    // and without a written check to go by (a first check), always
    let mut f = facts(&spec, Some(&written), Observation::Present);
    f.now = at(20);
    let (_, unknown) = pass_checked(&f, Outcome::Idle, Some(check(Reason::NxDomain, None)));
    assert!(unknown.write_status);
}
