use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;
use crate::api::{DeletionPolicy, Stage, conditions};

const RESYNC: Duration = Duration::from_secs(300);

fn spec(domain: &str) -> MappedDomainSpec {
    serde_json::from_value(serde_json::json!({ "domain": domain })).unwrap()
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

fn facts<'a>(
    spec: &'a MappedDomainSpec,
    previous: Option<&'a MappedDomainStatus>,
    observation: Observation,
) -> Facts<'a> {
    Facts {
        now: at(0),
        generation: Some(1),
        spec,
        previous,
        deleting: false,
        conflict: None,
        credentials: Credentials::Available,
        observation,
        reconcile_request: None,
        settings: Settings {
            dry_run: false,
            resync: RESYNC,
            probe: ProbeSettings::default(),
        },
        probe: None,
    }
}

/// decide, pretend the action had `outcome`, conclude.
fn pass(facts: &Facts<'_>, outcome: Outcome) -> (Action, Conclusion) {
    let action = decide(facts);
    let outcome = if action == Action::Nothing {
        Outcome::Idle
    } else {
        outcome
    };
    (action, conclude(facts, action, &outcome, 0.5))
}

fn condition<'s>(status: &'s MappedDomainStatus, type_: &str) -> (&'s str, &'s str) {
    let c = status.conditions.iter().find(|c| c.type_ == type_).unwrap();
    (c.status.as_str(), c.reason.as_str())
}

#[test]
fn new_domain_is_added_and_owned() {
    let spec = spec("shop.example.com");
    let f = facts(&spec, None, Observation::Absent);
    let (action, c) = pass(&f, Outcome::Added);
    assert_eq!(action, Action::Add);
    let s = &c.status;
    assert_eq!(condition(s, conditions::REGISTERED), ("True", "Added"));
    assert_eq!(condition(s, conditions::READY), ("False", "NotChecked"));
    assert_eq!(
        condition(s, conditions::RECONCILING),
        ("True", "NotChecked")
    );
    assert_eq!(condition(s, conditions::STALLED), ("False", "Progressing"));
    assert_eq!(
        condition(s, conditions::DNS_READY),
        ("Unknown", "NotChecked")
    );
    assert_eq!(s.stage, Some(Stage::CheckingDns));
    assert_eq!(s.ownership, Some(Ownership::Created));
    assert_eq!(s.observed_generation, Some(1));
    assert_eq!(s.registered_at, Some(Time(at(0))));
    assert_eq!(s.failed_attempts, None);
    assert_eq!(c.requeue, RESYNC);
    assert_eq!(c.events.len(), 1);
    assert_eq!((c.events[0].reason, c.events[0].warning), ("Added", false));
    assert_eq!(conditions::ALL.len(), s.conditions.len());
}

#[test]
fn existing_alias_is_adopted_without_a_write() {
    let spec = spec("shop.example.com");
    let (action, c) = pass(&facts(&spec, None, Observation::Present), Outcome::Idle);
    assert_eq!(action, Action::Nothing);
    assert_eq!(c.status.ownership, Some(Ownership::Adopted));
    assert_eq!(
        condition(&c.status, conditions::REGISTERED),
        ("True", "Adopted")
    );
    assert_eq!(c.events[0].reason, "Adopted");
}

#[test]
fn settled_domain_changes_nothing() {
    let spec = spec("shop.example.com");
    let (_, first) = pass(&facts(&spec, None, Observation::Absent), Outcome::Added);
    let mut later = facts(&spec, Some(&first.status), Observation::Present);
    later.now = at(600);
    let (action, second) = pass(&later, Outcome::Idle);
    assert_eq!(action, Action::Nothing);
    assert_eq!(
        second.status, first.status,
        "a settled domain must not rewrite status"
    );
    assert!(second.events.is_empty());
    assert_eq!(second.status.ownership, Some(Ownership::Created));
}

#[test]
fn vanished_alias_is_added_again() {
    let spec = spec("shop.example.com");
    let (_, first) = pass(&facts(&spec, None, Observation::Absent), Outcome::Added);
    let (action, c) = pass(
        &facts(&spec, Some(&first.status), Observation::Absent),
        Outcome::Added,
    );
    assert_eq!(action, Action::Add);
    assert_eq!(
        condition(&c.status, conditions::REGISTERED),
        ("True", "ReRegistered")
    );
    assert_eq!(c.events[0].reason, "ReRegistered");
}

#[test]
fn conflict_loser_never_touches_closte() {
    let spec = spec("shop.example.com");
    let mut f = facts(&spec, None, Observation::NotObserved);
    f.conflict = Some(ConflictWinner {
        namespace: "a".into(),
        name: "first".into(),
    });
    let (action, c) = pass(&f, Outcome::Idle);
    assert_eq!(action, Action::Nothing);
    assert_eq!(
        condition(&c.status, conditions::STALLED),
        ("True", "DomainConflict")
    );
    assert_eq!(condition(&c.status, conditions::RECONCILING).0, "False");
    assert_eq!(c.status.stage, Some(Stage::Failed));
    assert_eq!(c.status.failed_attempts, None);
    assert!(c.events[0].warning && c.events[0].message.contains("a/first"));
    f.deleting = true;
    f.observation = Observation::Present;
    assert_eq!(decide(&f), Action::Release);
}

#[test]
fn missing_credentials_stall_and_retry_slowly() {
    let spec = spec("shop.example.com");
    let mut f = facts(&spec, None, Observation::NotObserved);
    f.credentials = Credentials::SecretNotFound {
        secret: "closte".into(),
    };
    let (action, c) = pass(&f, Outcome::Idle);
    assert_eq!(action, Action::Nothing);
    assert_eq!(
        condition(&c.status, conditions::STALLED),
        ("True", "CredentialsNotFound")
    );
    assert_eq!(c.requeue, SLOW_RETRY);
    assert_eq!(c.status.failed_attempts, Some(1));
    let mut again = facts(&spec, Some(&c.status), Observation::NotObserved);
    again.credentials = f.credentials.clone();
    let (_, c2) = pass(&again, Outcome::Idle);
    assert!(c2.events.is_empty(), "same problem, no new event");
    assert_eq!(c2.status.failed_attempts, Some(2));
}

#[test]
fn transient_errors_back_off_then_recover() {
    let spec = spec("shop.example.com");
    let down = ClosteError::Transient {
        reason: "HTTP 502".into(),
    };
    let mut status: Option<MappedDomainStatus> = None;
    let mut delays = Vec::new();
    for _ in 0..4 {
        let f = facts(&spec, status.as_ref(), Observation::Absent);
        let (action, c) = pass(&f, Outcome::Failed(down.clone()));
        assert_eq!(action, Action::Add);
        assert_eq!(condition(&c.status, conditions::STALLED).0, "False");
        assert_eq!(
            condition(&c.status, conditions::READY),
            ("False", "ClosteUnavailable")
        );
        assert_eq!(c.status.stage, Some(Stage::Pending));
        delays.push(c.requeue.as_secs());
        status = Some(c.status);
    }
    assert_eq!(delays, [5, 10, 20, 40]);
    assert_eq!(status.as_ref().unwrap().failed_attempts, Some(4));
    assert_eq!(
        status.as_ref().unwrap().last_failure_time,
        Some(Time(at(0)))
    );
    let (_, ok) = pass(
        &facts(&spec, status.as_ref(), Observation::Absent),
        Outcome::Added,
    );
    assert_eq!(ok.status.failed_attempts, None);
    assert_eq!(
        ok.status.last_failure_time,
        Some(Time(at(0))),
        "history is kept"
    );
}

#[test]
fn rate_limit_waits_as_told() {
    let spec = spec("shop.example.com");
    let limited = ClosteError::RateLimited {
        retry_after: Some(Duration::from_secs(42)),
    };
    let (_, c) = pass(
        &facts(&spec, None, Observation::Absent),
        Outcome::Failed(limited),
    );
    assert_eq!(c.requeue, Duration::from_secs(42));
    assert_eq!(condition(&c.status, conditions::STALLED).0, "False");
}

#[test]
fn rejected_domain_stalls_once() {
    let spec = spec("shop.example.com");
    let rejected = ClosteError::DomainRejected {
        domain: "shop.example.com".into(),
        message: "Invalid or empty domain: shop.example.com".into(),
    };
    let (_, c) = pass(
        &facts(&spec, None, Observation::Absent),
        Outcome::Failed(rejected.clone()),
    );
    assert_eq!(
        condition(&c.status, conditions::STALLED),
        ("True", "DomainRejected")
    );
    assert_eq!(c.status.stage, Some(Stage::Failed));
    assert_eq!(c.requeue, SLOW_RETRY);
    assert!(c.events[0].warning);
    let (_, again) = pass(
        &facts(&spec, Some(&c.status), Observation::Absent),
        Outcome::Failed(rejected),
    );
    assert!(again.events.is_empty());
}

#[test]
fn deletion_follows_policy_and_ownership() {
    let cases = [
        (
            None,
            Some(Ownership::Created),
            Observation::Present,
            Action::DeleteThenRelease,
        ),
        (
            None,
            Some(Ownership::Adopted),
            Observation::Present,
            Action::Release,
        ),
        (None, None, Observation::Present, Action::Release),
        (
            Some(DeletionPolicy::Orphan),
            Some(Ownership::Created),
            Observation::Present,
            Action::Release,
        ),
        (
            Some(DeletionPolicy::Delete),
            Some(Ownership::Adopted),
            Observation::Present,
            Action::DeleteThenRelease,
        ),
        (
            Some(DeletionPolicy::Delete),
            Some(Ownership::Created),
            Observation::Absent,
            Action::Release,
        ),
        (
            Some(DeletionPolicy::Delete),
            Some(Ownership::Created),
            Observation::NotObserved,
            Action::Nothing,
        ),
        (
            Some(DeletionPolicy::Delete),
            Some(Ownership::Created),
            Observation::Failed(ClosteError::Transient { reason: "x".into() }),
            Action::Nothing,
        ),
    ];
    for (policy, ownership, observation, want) in cases {
        let mut spec = spec("shop.example.com");
        spec.deletion_policy = policy;
        let previous = MappedDomainStatus {
            ownership,
            ..Default::default()
        };
        let mut f = facts(&spec, Some(&previous), observation.clone());
        f.deleting = true;
        assert_eq!(decide(&f), want, "{policy:?} {ownership:?} {observation:?}");
    }
}

#[test]
fn deletion_events() {
    let spec = spec("shop.example.com");
    let previous = MappedDomainStatus {
        ownership: Some(Ownership::Adopted),
        ..Default::default()
    };
    let mut f = facts(&spec, Some(&previous), Observation::Present);
    f.deleting = true;
    let (_, c) = pass(&f, Outcome::Released);
    assert_eq!(c.events[0].reason, "Orphaned");
    assert!(c.events[0].message.contains("adopted"));
    let created = MappedDomainStatus {
        ownership: Some(Ownership::Created),
        ..Default::default()
    };
    let mut f = facts(&spec, Some(&created), Observation::Present);
    f.deleting = true;
    let (action, c) = pass(&f, Outcome::Deleted);
    assert_eq!(action, Action::DeleteThenRelease);
    assert_eq!(c.events[0].reason, "Deregistered");
}

#[test]
fn suspend_and_dry_run_write_nothing() {
    let mut suspended = spec("shop.example.com");
    suspended.suspend = Some(true);
    let (action, c) = pass(&facts(&suspended, None, Observation::Absent), Outcome::Idle);
    assert_eq!(action, Action::Nothing);
    assert_eq!(
        condition(&c.status, conditions::REGISTERED),
        ("False", "Suspended")
    );
    let plain = spec("shop.example.com");
    let mut f = facts(&plain, None, Observation::Absent);
    f.settings.dry_run = true;
    let (action, c) = pass(&f, Outcome::Idle);
    assert_eq!(action, Action::Nothing);
    assert_eq!(
        condition(&c.status, conditions::REGISTERED),
        ("False", "DryRun")
    );
    assert!(c.events[0].message.contains("would add"));
    // deleting a suspended object lets it go without a Closte write
    let created = MappedDomainStatus {
        ownership: Some(Ownership::Created),
        ..Default::default()
    };
    let mut f = facts(&suspended, Some(&created), Observation::Present);
    f.deleting = true;
    assert_eq!(decide(&f), Action::Release);
}

#[test]
fn reconcile_request_is_echoed() {
    let spec = spec("shop.example.com");
    let mut f = facts(&spec, None, Observation::Present);
    f.reconcile_request = Some("2026-11-24T10:00:00Z");
    let (_, c) = pass(&f, Outcome::Idle);
    assert_eq!(
        c.status.last_handled_reconcile_at.as_deref(),
        Some("2026-11-24T10:00:00Z")
    );
}

#[test]
fn failures_gate_the_next_try() {
    let spec = spec("shop.example.com");
    let down = ClosteError::Transient {
        reason: "HTTP 502".into(),
    };
    let (_, c) = pass(
        &facts(&spec, None, Observation::Absent),
        Outcome::Failed(down),
    );
    let s = &c.status;
    // 5 s backoff at the short end of the jitter: 4 s
    assert_eq!(
        retry_wait(Some(s), Some(1), None, false, at(1)),
        Some(Duration::from_secs(3))
    );
    assert_eq!(retry_wait(Some(s), Some(1), None, false, at(4)), None);
    // a spec change, a reconcile request or new credentials make it due at once
    assert_eq!(retry_wait(Some(s), Some(2), None, false, at(1)), None);
    assert_eq!(
        retry_wait(Some(s), Some(1), Some("now"), false, at(1)),
        None
    );
    assert_eq!(retry_wait(Some(s), Some(1), None, true, at(1)), None);
    // no failure, no gate
    let (_, ok) = pass(&facts(&spec, None, Observation::Absent), Outcome::Added);
    assert_eq!(
        retry_wait(Some(&ok.status), Some(1), None, false, at(0)),
        None
    );
    // a rejection waits for the slow retry
    let rejected = ClosteError::DomainRejected {
        domain: "d".into(),
        message: "no".into(),
    };
    let (_, r) = pass(
        &facts(&spec, None, Observation::Absent),
        Outcome::Failed(rejected),
    );
    assert_eq!(
        retry_wait(Some(&r.status), Some(1), None, false, at(100)),
        Some(SLOW_RETRY - Duration::from_secs(100))
    );
}

mod stages {
    use super::*;
    use crate::api::CertificateStatus;
    use crate::probe::dns::{DnsObservation, DnsVerdict};
    use crate::probe::tls::{TlsObservation, TlsVerdict};

    fn dns(verdict: DnsVerdict) -> DnsObservation {
        DnsObservation {
            verdict,
            records: vec!["203.0.113.7".into()],
            message: format!("dns says {}", verdict.reason()),
        }
    }

    fn cert(serial: &str, not_after_days: i64) -> CertificateStatus {
        CertificateStatus {
            issuer: "CN=Test CA".into(),
            subject: "CN=shop.example.com".into(),
            dns_names: vec!["shop.example.com".into()],
            serial_number: serial.into(),
            not_before: Time(at(-3600)),
            not_after: Time(at(not_after_days * 86400)),
            sha256_fingerprint: "AA".into(),
        }
    }

    fn tls(verdict: TlsVerdict, certificate: Option<CertificateStatus>) -> TlsObservation {
        TlsObservation {
            verdict,
            certificate,
            message: format!("tls says {}", verdict.reason()),
        }
    }

    fn probe(d: DnsVerdict, t: Option<TlsObservation>) -> Probe {
        Probe {
            dns: dns(d),
            expected: vec!["203.0.113.7".into()],
            tls: t,
        }
    }

    /// Runs checks over a registered domain, one pass per probe, `step` seconds apart.
    fn run(probes: Vec<Probe>) -> Vec<Conclusion> {
        let spec = spec("shop.example.com");
        let (_, first) = pass(&facts(&spec, None, Observation::Absent), Outcome::Added);
        let mut status = first.status;
        let mut out = Vec::new();
        for (i, p) in probes.into_iter().enumerate() {
            let mut f = facts(&spec, Some(&status), Observation::Present);
            f.now = at(600 * (i as i64 + 1));
            f.probe = Some(p);
            let (_, c) = pass(&f, Outcome::Idle);
            status = c.status.clone();
            out.push(c);
        }
        out
    }

    fn reasons(c: &Conclusion) -> Vec<&'static str> {
        c.events.iter().map(|e| e.reason).collect()
    }

    #[test]
    fn dns_then_certificate_then_done() {
        let valid = || Some(tls(TlsVerdict::Valid, Some(cert("01", 90))));
        let passes = run(vec![
            probe(DnsVerdict::NxDomain, None),
            probe(DnsVerdict::NxDomain, None),
            probe(
                DnsVerdict::Matched,
                Some(tls(TlsVerdict::HostnameMismatch, Some(cert("FF", 90)))),
            ),
            probe(DnsVerdict::Matched, valid()),
        ]);
        let s = &passes[1].status;
        assert_eq!(s.stage, Some(Stage::CheckingDns));
        assert_eq!(s.checks, Some(2));
        assert_eq!(condition(s, conditions::DNS_READY), ("False", "NXDOMAIN"));
        assert_eq!(
            condition(s, conditions::CERTIFICATE_READY),
            ("Unknown", "DNSNotReady")
        );
        assert_eq!(condition(s, conditions::READY), ("False", "NXDOMAIN"));
        // next check: the checkInterval (300 s), spread ±10 % (jitter 0.5: exact)
        assert_eq!(s.next_check_time, Some(Time(at(1200 + 300))));

        let s = &passes[2].status;
        assert_eq!(s.stage, Some(Stage::CheckingSslCert));
        assert_eq!(s.checks, Some(1), "a new stage counts from one");
        assert_eq!(
            condition(s, conditions::CERTIFICATE_READY),
            ("False", "HostnameMismatch")
        );
        assert_eq!(
            s.certificate.as_ref().unwrap().serial_number,
            "FF",
            "recorded though invalid"
        );
        assert_eq!(reasons(&passes[2]), ["DNSReady"]);

        let done = &passes[3];
        let s = &done.status;
        assert_eq!(s.stage, Some(Stage::Done));
        assert_eq!(s.checks, None);
        assert_eq!(condition(s, conditions::READY), ("True", "Ready"));
        assert_eq!(condition(s, conditions::RECONCILING).0, "False");
        assert_eq!(condition(s, conditions::STALLED).0, "False");
        assert_eq!(s.certificate.as_ref().unwrap().serial_number, "01");
        assert!(s.dns.as_ref().unwrap().matched);
        assert_eq!(reasons(done), ["CertificateIssued"]);
        // done: the slow re-check
        assert_eq!(s.next_check_time, Some(Time(at(2400 + 12 * 3600))));
        // the resync (drift) comes first
        assert_eq!(done.requeue, RESYNC);
    }

    #[test]
    fn failed_after_max_attempts_but_still_checking() {
        let mut probes: Vec<Probe> = (0..6)
            .map(|_| probe(DnsVerdict::TargetMismatch, None))
            .collect();
        probes.push(probe(
            DnsVerdict::Matched,
            Some(tls(TlsVerdict::Valid, Some(cert("01", 90)))),
        ));
        let passes = run(probes);
        let s = &passes[4].status;
        assert_eq!(s.stage, Some(Stage::CheckingDns));
        let failed = &passes[5];
        assert_eq!(failed.status.stage, Some(Stage::Failed));
        assert_eq!(
            condition(&failed.status, conditions::STALLED),
            ("True", "TargetMismatch")
        );
        assert_eq!(reasons(failed), ["DNSNotReady"]);
        // slower, not stopped: 4 x 300 s
        assert_eq!(failed.status.next_check_time, Some(Time(at(3600 + 1200))));
        // a late DNS fix still ends done
        assert_eq!(passes[6].status.stage, Some(Stage::Done));
        assert_eq!(condition(&passes[6].status, conditions::STALLED).0, "False");
    }

    #[test]
    fn ssl_failed_after_max_attempts() {
        let probes = (0..6)
            .map(|_| probe(DnsVerdict::Matched, Some(tls(TlsVerdict::Untrusted, None))))
            .collect();
        let passes = run(probes);
        let last = &passes[5];
        assert_eq!(last.status.stage, Some(Stage::SslFailed));
        assert_eq!(
            condition(&last.status, conditions::STALLED),
            ("True", "Untrusted")
        );
        assert_eq!(reasons(last), ["CertificateNotReady"]);
    }

    #[test]
    fn flapping_dns_and_a_replaced_certificate() {
        let valid = |serial: &str| Some(tls(TlsVerdict::Valid, Some(cert(serial, 90))));
        let passes = run(vec![
            probe(DnsVerdict::Matched, valid("01")),
            probe(DnsVerdict::TargetMismatch, None),
            probe(DnsVerdict::Matched, valid("01")),
            probe(DnsVerdict::Matched, valid("02")),
        ]);
        assert_eq!(passes[1].status.stage, Some(Stage::CheckingDns));
        assert_eq!(reasons(&passes[1]), ["DNSLost"]);
        assert_eq!(condition(&passes[1].status, conditions::READY).0, "False");
        assert_eq!(
            passes[1].status.certificate.as_ref().unwrap().serial_number,
            "01",
            "kept"
        );
        assert_eq!(passes[2].status.stage, Some(Stage::Done));
        assert_eq!(reasons(&passes[3]), ["CertificateRenewed"]);
    }

    #[test]
    fn expiring_certificate_warns_once() {
        let soon = || Some(tls(TlsVerdict::Valid, Some(cert("01", 5))));
        let passes = run(vec![
            probe(DnsVerdict::Matched, soon()),
            probe(DnsVerdict::Matched, soon()),
        ]);
        let s = &passes[0].status;
        assert_eq!(
            condition(s, conditions::CERTIFICATE_READY),
            ("True", "CertificateExpiringSoon")
        );
        assert_eq!(condition(s, conditions::READY).0, "True", "still valid");
        assert_eq!(
            reasons(&passes[0]),
            ["CertificateIssued", "CertificateExpiringSoon"]
        );
        assert!(passes[0].events[1].warning);
        assert!(reasons(&passes[1]).is_empty(), "warned once");
        // a certificate far from the window: the 12 h re-check
        let fine = run(vec![probe(
            DnsVerdict::Matched,
            Some(tls(TlsVerdict::Valid, Some(cert("01", 20)))),
        )]);
        assert_eq!(
            fine[0].status.next_check_time,
            Some(Time(at(600 + 12 * 3600)))
        );
        // one whose warning window opens in an hour is looked at then
        let mut near = cert("01", 14);
        near.not_after = Time(at(14 * 86400 + 600 + 3600));
        let near = run(vec![probe(
            DnsVerdict::Matched,
            Some(tls(TlsVerdict::Valid, Some(near))),
        )]);
        assert_eq!(near[0].status.next_check_time, Some(Time(at(600 + 3600))));
    }

    #[test]
    fn no_probe_carries_the_last_check_forward() {
        let passes = run(vec![probe(
            DnsVerdict::Matched,
            Some(tls(TlsVerdict::Valid, Some(cert("01", 90)))),
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
}
