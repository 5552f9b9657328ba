//! DNS and TLS observation end to end: the controller process checks the
//! simulator's DNS and HTTPS and records what it saw in status.

mod common;

use std::time::Duration;

use closte_operator::api::{MappedDomain, MappedDomainSpec, Stage};
use closte_operator::probe::tls::TlsProber;
use common::operator::{condition, wait_condition};
use common::process::Process;
use common::setup::Setup;
use common::sim::Simulator;
use common::wait::eventually;
use common::{create, spec};
use kube::api::Api;

const KEY: &str = "checks-key-0c7e";

/// A namespace, a simulator with DNS and HTTPS (`issue_delay`), and a
/// controller checking against them.
async fn setup(name: &str, issue_delay: &str) -> (Api<MappedDomain>, Simulator, Process) {
    let s = Setup::start(name, KEY, &["--issue-delay", issue_delay], &[]).await;
    (s.api, s.sim, s.operator)
}

async fn stage(api: &Api<MappedDomain>, name: &str) -> Option<Stage> {
    api.get(name).await.ok()?.status?.stage
}

#[tokio::test]
async fn domains_reach_done_with_the_certificate_recorded() {
    let (api, sim, _operator) = setup("checks", "3s").await;
    let ns = api.namespace().unwrap().to_owned();
    create(
        &api,
        "shop",
        MappedDomainSpec {
            check_interval: Some("10s".into()),
            ..spec("shop.checks.example")
        },
    )
    .await;
    create(
        &api,
        "wild",
        MappedDomainSpec {
            check_interval: Some("10s".into()),
            ..spec("*.wild.checks.example")
        },
    )
    .await;

    // registered at once, the certificate not issued yet
    eventually(20, "shop to wait for its certificate", || async {
        (stage(&api, "shop").await == Some(Stage::CheckingSslCert)).then_some(())
    })
    .await;
    let md = api.get("shop").await.unwrap();
    assert_eq!(
        condition(&md, "DNSReady").unwrap(),
        ("True".into(), "Matched".into())
    );
    assert_eq!(
        condition(&md, "CertificateReady").unwrap(),
        ("False".into(), "HostnameMismatch".into())
    );
    assert!(md.status.as_ref().unwrap().next_check_time.is_some());

    for name in ["shop", "wild"] {
        let md = wait_condition(&api, name, "Ready", "True", Some("Ready")).await;
        let status = md.status.unwrap();
        assert_eq!(status.stage, Some(Stage::Done));
        assert_eq!(status.dns.as_ref().unwrap().records, ["127.0.0.1"]);
        let cert = status.certificate.unwrap();
        assert!(
            cert.issuer.contains("Closte Simulator CA"),
            "{}",
            cert.issuer
        );
        assert!(status.last_check_time.is_some());
        if name == "shop" {
            assert_eq!(cert.dns_names, ["shop.checks.example"]);
            // the recorded certificate is the one a TLS client sees
            let pem = std::fs::read(sim.ca.as_ref().unwrap()).unwrap();
            let prober = TlsProber::new(
                Some(&pem),
                sim.https.unwrap().port(),
                Duration::from_secs(5),
            )
            .unwrap();
            let seen = prober
                .probe("127.0.0.1".parse().unwrap(), "shop.checks.example")
                .await;
            assert_eq!(
                seen.certificate.unwrap().sha256_fingerprint,
                cert.sha256_fingerprint
            );
        } else {
            assert_eq!(cert.dns_names, ["*.wild.checks.example"]);
        }
    }
    // kubectl shows it
    let out = common::kubectl(&["get", "md", "shop", "-n", &ns]);
    let table = String::from_utf8_lossy(&out.stdout);
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[2], "done", "{table}");
    assert_eq!(row[3], "True", "{table}");
    assert!(row[4].starts_with("20"), "EXPIRES shows a date: {table}");
}

#[tokio::test]
async fn wrong_target_other_host_and_expired_certificates() {
    let (api, sim, operator) = setup("badchecks", "0s").await;
    sim.set_certificate("other.checks.example", "other-host")
        .await;
    sim.set_certificate("expired.checks.example", "expired")
        .await;
    create(&api, "other", spec("other.checks.example")).await;
    create(&api, "expired", spec("expired.checks.example")).await;
    create(
        &api,
        "elsewhere",
        MappedDomainSpec {
            expected_targets: Some(vec!["203.0.113.50".into()]),
            check_interval: Some("10s".into()),
            ..spec("elsewhere.checks.example")
        },
    )
    .await;
    wait_condition(
        &api,
        "other",
        "CertificateReady",
        "False",
        Some("HostnameMismatch"),
    )
    .await;
    let expired = wait_condition(
        &api,
        "expired",
        "CertificateReady",
        "False",
        Some("Expired"),
    )
    .await;
    let cert = expired.status.unwrap().certificate.unwrap();
    assert!(
        cert.not_after.0 < k8s_openapi::jiff::Timestamp::now(),
        "the expired certificate is recorded"
    );
    let elsewhere = wait_condition(
        &api,
        "elsewhere",
        "DNSReady",
        "False",
        Some("TargetMismatch"),
    )
    .await;
    let dns = elsewhere.status.unwrap().dns.unwrap();
    assert_eq!(dns.records, ["127.0.0.1"]);
    assert_eq!(dns.expected, ["203.0.113.50"]);
    assert!(!dns.matched);
    assert_eq!(stage(&api, "elsewhere").await, Some(Stage::CheckingDns));

    // checked again 10 s on with the same answer: the check is counted,
    // its schedule kept in memory, the object not written
    let mismatches = r#"closte_operator_checks_total{dns="TargetMismatch""#;
    let before = operator.metric(mismatches).await;
    eventually(30, "elsewhere to be checked again", || async {
        (operator.metric(mismatches).await > before).then_some(())
    })
    .await;
    let again = api.get("elsewhere").await.unwrap();
    assert_eq!(
        again.metadata.resource_version, elsewhere.metadata.resource_version,
        "a check that changed nothing but its schedule was written: {:?}",
        again.status
    );
}
