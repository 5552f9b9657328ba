//! The proof request against the simulator's HTTPS endpoint standing in for
//! a WordPress network (`--site-token`): this network's proof verifies; a
//! proof signed with another token is recognised as another network's; a
//! site that answers no proof gives its status; a certificate the client
//! does not trust is no answer. Then the controller: `verification: HTTP`
//! goes by the proof, signed with the namespace's sidecar token.

mod common;

use std::time::Duration;

use closte_operator::api::{MappedDomainSpec, Verification};
use closte_operator::probe::proof::{ProofObservation, request};
use common::operator::wait_condition;
use common::setup::{Setup, sidecar_token_secret};
use common::sim::{Simulator, trusting};
use common::{create, spec};
use kube::api::{Patch, PatchParams};

const TOKEN: &str = "proof-sim-token-0123456789abcdef";
const NONCE: &str = "n0nce-from-the-test-0123";
const DOMAIN: &str = "proof.example.com";

async fn ask(sim: &Simulator, tls: &rustls::ClientConfig, token: &str) -> ProofObservation {
    let https = sim.https.expect("the simulator serves HTTPS");
    request(
        tls,
        Duration::from_secs(10),
        https.ip(),
        https.port(),
        DOMAIN,
        token.as_bytes(),
        NONCE,
    )
    .await
}

#[tokio::test]
async fn a_network_proves_itself_and_no_other_network_can() {
    let sim = Simulator::up_with_checks(
        "proof",
        &[
            "--api-key",
            "proof-key",
            "--issue-delay",
            "0s",
            "--site-token",
            TOKEN,
        ],
    )
    .await;
    sim.add_alias(DOMAIN, 0).await;
    let tls = trusting(sim.ca.as_deref());

    let ours = ask(&sim, &tls, TOKEN).await;
    assert!(ours.verified, "{ours:?}");
    assert_eq!(ours.status, Some(200));
    assert!(
        ours.url
            .ends_with("/.well-known/closte-operator/n0nce-from-the-test-0123")
    );

    let theirs = ask(&sim, &tls, "another-namespace-token-0123456789").await;
    assert!(!theirs.verified, "{theirs:?}");
    assert!(theirs.proof_shaped, "{theirs:?}");
    assert!(
        theirs.message.contains("another token"),
        "{}",
        theirs.message
    );

    // the simulator's CA not trusted: the handshake fails, no answer
    let untrusted = ask(&sim, &trusting(None), TOKEN).await;
    assert_eq!(untrusted.status, None, "{untrusted:?}");
    assert!(!untrusted.verified);
}

#[tokio::test]
async fn a_site_that_answers_no_proof_gives_its_status() {
    let sim = Simulator::up_with_checks(
        "proof-none",
        &["--api-key", "proof-key", "--issue-delay", "0s"],
    )
    .await;
    sim.add_alias(DOMAIN, 0).await;
    let seen = ask(&sim, &trusting(sim.ca.as_deref()), TOKEN).await;
    assert_eq!(seen.status, Some(404), "{seen:?}");
    assert!(!seen.verified && !seen.proof_shaped, "{seen:?}");
}

/// The namespace's token becomes another network's and `name` is touched
/// (a new generation is judged at once): its proof no longer verifies.
async fn token_becomes_another_networks(s: &Setup, name: &str) {
    sidecar_token_secret(&s.client, &s.ns, "another-network-token-0123456789").await;
    s.api
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"checkInterval": "11s"}})),
        )
        .await
        .unwrap();
    wait_condition(&s.api, name, "DNSReady", "False", Some("ProofMismatch")).await;
}

#[tokio::test]
async fn the_controller_goes_by_the_proof_and_a_new_mode_rejudges_without_a_write() {
    let s = Setup::start(
        "proof-controller",
        "proof-key",
        &["--issue-delay", "0s", "--site-token", TOKEN],
        &["--proof-secret", "closte-sidecar-token"],
    )
    .await;
    sidecar_token_secret(&s.client, &s.ns, TOKEN).await;
    create(
        &s.api,
        "proven",
        MappedDomainSpec {
            verification: Some(Verification::Http),
            check_interval: Some("10s".into()),
            ..spec(DOMAIN)
        },
    )
    .await;
    wait_condition(&s.api, "proven", "DNSReady", "True", Some("Proven")).await;
    wait_condition(&s.api, "proven", "Ready", "True", Some("Ready")).await;
    let writes = s.sim.count("adddomainalias").await + s.sim.count("deletedomainalias").await;

    // the namespace's token is another network's now: its proof no longer verifies
    token_becomes_another_networks(&s, "proven").await;

    // DNS alone decides again: the same object, re-judged
    s.api
        .patch(
            "proven",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"verification": "DNS"}})),
        )
        .await
        .unwrap();
    wait_condition(&s.api, "proven", "DNSReady", "True", Some("Matched")).await;
    let after = s.sim.count("adddomainalias").await + s.sim.count("deletedomainalias").await;
    assert_eq!(after, writes, "re-judging wrote to Closte");
}

#[tokio::test]
async fn a_domain_behind_a_proxy_is_ready_as_proxied_with_the_proxys_certificate() {
    let s = Setup::start(
        "proof-proxy",
        "proof-key",
        &[
            "--issue-delay",
            "0s",
            "--site-token",
            TOKEN,
            "--proxy-ip",
            "127.0.0.2",
        ],
        &["--proof-secret", "closte-sidecar-token"],
    )
    .await;
    sidecar_token_secret(&s.client, &s.ns, TOKEN).await;
    s.sim.set_proxied(DOMAIN, true).await;
    create(
        &s.api,
        "cdn",
        MappedDomainSpec {
            check_interval: Some("10s".into()),
            ..spec(DOMAIN)
        },
    )
    .await;
    let md = wait_condition(&s.api, "cdn", "DNSReady", "True", Some("Proxied")).await;
    let status = md.status.unwrap();
    assert_eq!(
        status.dns.as_ref().unwrap().records,
        ["127.0.0.2"],
        "the proxy's address"
    );
    wait_condition(&s.api, "cdn", "Ready", "True", Some("Ready")).await;
    let md = s.api.get("cdn").await.unwrap();
    let certificate = md
        .status
        .unwrap()
        .certificate
        .expect("the served certificate");
    assert!(
        certificate.issuer.contains("Proxy CA"),
        "the proxy's certificate is recorded: {}",
        certificate.issuer
    );
    assert_eq!(certificate.served_by.as_deref(), Some("Proxy"));
    let md = s.api.get("cdn").await.unwrap();
    let dns = md.status.unwrap().dns.unwrap();
    assert!(dns.proxied);
    let proof = dns.proof.expect("the proof recorded");
    assert_eq!(proof.result, "Proven");
    assert!(
        proof.url.starts_with("https://proof.example.com:"),
        "{}",
        proof.url
    );

    // the same domain behind the proxy, but the network's token is another's: not Ready
    token_becomes_another_networks(&s, "cdn").await;
}

#[tokio::test]
async fn check_domain_runs_the_proof_once() {
    let sim = Simulator::up_with_checks(
        "proof-check",
        &[
            "--api-key",
            "proof-key",
            "--issue-delay",
            "0s",
            "--site-token",
            TOKEN,
            "--proxy-ip",
            "127.0.0.2",
        ],
    )
    .await;
    sim.add_alias(DOMAIN, 0).await;
    sim.set_proxied(DOMAIN, true).await;
    let token = common::sim::scratch("proof-check-token").join("token");
    let run = |token_text: &str| {
        std::fs::write(&token, token_text).unwrap();
        std::process::Command::new(common::process::BINARY)
            .args(["check", "--domain", DOMAIN, "--proof-token-file"])
            .arg(&token)
            .args(sim.check_flags())
            .output()
            .unwrap()
    };
    let proxied = run(TOKEN);
    let said = String::from_utf8_lossy(&proxied.stdout);
    assert!(
        proxied.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&proxied.stderr)
    );
    assert!(said.contains("DNSReady     True (Proxied)"), "{said}");
    assert!(said.contains("the proxy's"), "{said}");
    let proof_line = said.lines().find(|l| l.starts_with("Proof ")).unwrap();
    let latency = proof_line
        .rsplit_once(" (")
        .and_then(|(_, ms)| ms.strip_suffix(" ms)")?.parse::<u64>().ok());
    assert!(latency.is_some(), "the proof's latency: {proof_line}");

    let other = run("another-network-token-0123456789");
    let said = String::from_utf8_lossy(&other.stdout);
    assert_eq!(other.status.code(), Some(1), "{said}");
    assert!(
        said.contains("DNSReady     False (ProofMismatch)"),
        "{said}"
    );
}

/// What a domain pointed elsewhere serves: a registrar's parking page (200
/// and some HTML for every path), or, for hosts under `gone.`, a server
/// that has nothing for it (404).
async fn elsewhere() -> std::net::SocketAddr {
    use axum::http::{HeaderMap, StatusCode};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(|headers: HeaderMap| async move {
        let host = headers.get("host").and_then(|h| h.to_str().ok());
        if host.is_some_and(|h| h.starts_with("gone.")) {
            (StatusCode::NOT_FOUND, "<html><body>Not here</body></html>")
        } else {
            (
                StatusCode::OK,
                "<html><body>This domain is parked. Buy it now!</body></html>",
            )
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test]
async fn dns_right_but_a_parked_page_or_a_404_is_not_ready_and_says_why() {
    let upstream = elsewhere().await.to_string();
    let s = Setup::start(
        "proof-parked",
        "proof-key",
        &["--issue-delay", "0s", "--site-upstream", &upstream],
        &["--proof-secret", "closte-sidecar-token"],
    )
    .await;
    sidecar_token_secret(&s.client, &s.ns, TOKEN).await;
    for (name, domain, reason, seen) in [
        (
            "parked",
            "parked.example.com",
            "ProofUnexpected",
            "200, no proof in the answer",
        ),
        ("gone", "gone.example.com", "ProofNotFound", "404"),
    ] {
        create(
            &s.api,
            name,
            MappedDomainSpec {
                verification: Some(Verification::Http),
                check_interval: Some("10s".into()),
                ..spec(domain)
            },
        )
        .await;
        let md = wait_condition(&s.api, name, "DNSReady", "False", Some(reason)).await;
        let status = md.status.unwrap();
        let dns = status.dns.as_ref().unwrap();
        assert!(dns.matched, "{domain}: DNS is right: {dns:?}");
        let proof = dns.proof.as_ref().unwrap();
        assert!(proof.message.contains(seen), "{domain}: {proof:?}");
        assert!(!status.is_true(closte_operator::api::conditions::ConditionType::Ready));
    }
}
