//! The DNS and TLS observers against the simulator's DNS server and HTTPS
//! endpoint, over real sockets.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use closte_operator::domain::Domain;
use closte_operator::probe::dns::{self, DnsVerdict, HickoryResolve};
use closte_operator::probe::tls::{TlsProber, TlsVerdict};
use common::sim::Simulator;
use common::wait::eventually;

const KEY: &str = "probe-key-51aa";

async fn start(name: &str) -> Simulator {
    Simulator::up_with_checks(name, &["--api-key", KEY, "--issue-delay", "1s"]).await
}

fn prober(sim: &Simulator, trust_sim: bool) -> TlsProber {
    let pem = std::fs::read(sim.ca.as_ref().unwrap()).unwrap();
    let extra = trust_sim.then_some(pem.as_slice());
    TlsProber::new(extra, sim.https.unwrap().port(), Duration::from_secs(5)).unwrap()
}

fn domain(name: &str) -> Domain {
    Domain::parse(name).unwrap()
}

#[tokio::test]
async fn dns_verdicts_against_the_simulator() {
    let sim = start("probe-dns").await;
    sim.add_alias("shop.probe.example", 0).await;
    sim.add_alias("*.wild.probe.example", 0).await;
    let resolver = HickoryResolve::new(sim.dns, Duration::from_secs(5)).unwrap();
    let local = vec!["127.0.0.1".to_string()];
    let found = dns::observe(&resolver, &domain("shop.probe.example"), &local).await;
    assert_eq!(found.verdict, DnsVerdict::Matched, "{}", found.message);
    assert_eq!(found.records, ["127.0.0.1"]);
    let wild = dns::observe(&resolver, &domain("*.wild.probe.example"), &local).await;
    assert_eq!(wild.verdict, DnsVerdict::Matched, "{}", wild.message);
    let wrong = dns::observe(
        &resolver,
        &domain("shop.probe.example"),
        &["203.0.113.99".to_string()],
    )
    .await;
    assert_eq!(wrong.verdict, DnsVerdict::TargetMismatch);
    assert!(
        wrong.message.contains("127.0.0.1"),
        "says what it found: {}",
        wrong.message
    );
    let missing = dns::observe(&resolver, &domain("absent.probe.example"), &local).await;
    assert_eq!(missing.verdict, DnsVerdict::NxDomain);
    // a resolver that does not answer: a UDP socket held, never read
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead =
        HickoryResolve::new(Some(silent.local_addr().unwrap()), Duration::from_secs(1)).unwrap();
    let error = dns::observe(&dead, &domain("shop.probe.example"), &local).await;
    assert_eq!(
        error.verdict,
        DnsVerdict::ResolverError,
        "{}",
        error.message
    );
}

#[tokio::test]
async fn tls_verdicts_and_the_recorded_certificate() {
    let sim = start("probe-tls").await;
    let local: IpAddr = "127.0.0.1".parse().unwrap();
    sim.add_alias("secure.probe.example", 0).await;
    sim.add_alias("*.wild.probe.example", 0).await;
    sim.add_alias("expired.probe.example", 0).await;
    sim.add_alias("other.probe.example", 0).await;
    let trusted = prober(&sim, true);

    // before the issue delay: the simulator's placeholder certificate
    let early = trusted.probe(local, "secure.probe.example").await;
    assert_eq!(
        early.verdict,
        TlsVerdict::HostnameMismatch,
        "{}",
        early.message
    );
    assert_eq!(
        early.certificate.as_ref().unwrap().dns_names,
        ["pending.closte-simulator.invalid"],
        "the certificate is recorded when verification fails"
    );

    let valid = eventually(10, "the certificate to be issued", || async {
        let seen = trusted.probe(local, "secure.probe.example").await;
        (seen.verdict == TlsVerdict::Valid).then_some(seen)
    })
    .await;
    let cert = valid.certificate.unwrap();
    assert_eq!(cert.dns_names, ["secure.probe.example"]);
    assert!(
        cert.issuer.contains("Closte Simulator CA"),
        "{}",
        cert.issuer
    );
    assert!(
        cert.subject.contains("secure.probe.example"),
        "{}",
        cert.subject
    );
    assert!(cert.not_after.0 > cert.not_before.0);
    assert_eq!(cert.sha256_fingerprint.len(), 32 * 3 - 1);
    assert!(
        cert.serial_number.len() % 2 == 0
            && cert
                .serial_number
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
    );

    // the recorded certificate is the one a TLS client sees
    let again = trusted
        .probe(local, "secure.probe.example")
        .await
        .certificate
        .unwrap();
    assert_eq!(again.sha256_fingerprint, cert.sha256_fingerprint);

    // a wildcard alias, probed by a name one label under it
    let wild = trusted
        .probe(local, &dns::probe_name(&domain("*.wild.probe.example")))
        .await;
    assert_eq!(wild.verdict, TlsVerdict::Valid, "{}", wild.message);

    // the same certificate without the simulator's CA is untrusted
    let untrusted = prober(&sim, false)
        .probe(local, "secure.probe.example")
        .await;
    assert_eq!(
        untrusted.verdict,
        TlsVerdict::Untrusted,
        "{}",
        untrusted.message
    );

    // an expired certificate, and one for another host
    sim.set_certificate("expired.probe.example", "expired")
        .await;
    sim.set_certificate("other.probe.example", "other-host")
        .await;
    let expired = trusted.probe(local, "expired.probe.example").await;
    assert_eq!(expired.verdict, TlsVerdict::Expired, "{}", expired.message);
    assert!(expired.certificate.unwrap().not_after.0 < k8s_openapi::jiff::Timestamp::now());
    let other = trusted.probe(local, "other.probe.example").await;
    assert_eq!(
        other.verdict,
        TlsVerdict::HostnameMismatch,
        "{}",
        other.message
    );

    // nothing listening: a port held by a socket bound but not listening,
    // so connections to it are refused and nobody else can take it meanwhile
    let held = tokio::net::TcpSocket::new_v4().unwrap();
    held.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = held.local_addr().unwrap().port();
    let closed = TlsProber::new(None, port, Duration::from_secs(2)).unwrap();
    let refused = closed.probe(local, "secure.probe.example").await;
    assert_eq!(
        refused.verdict,
        TlsVerdict::ConnectFailed,
        "{}",
        refused.message
    );
    assert!(refused.certificate.is_none());
}
