//! The proof request against the simulator's HTTPS endpoint standing in for
//! a WordPress network (`--site-token`): this network's proof verifies; a
//! proof signed with another token is recognised as another network's; a
//! site that answers no proof gives its status; a certificate the client
//! does not trust is no answer.

mod common;

use std::time::Duration;

use closte_operator::probe::proof::{ProofObservation, request};
use common::sim::Simulator;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

const TOKEN: &str = "proof-sim-token-0123456789abcdef";
const NONCE: &str = "n0nce-from-the-test-0123";
const DOMAIN: &str = "proof.example.com";

/// A client that trusts the public roots and `ca` (PEM), if given.
fn trusting(ca: Option<&std::path::Path>) -> rustls::ClientConfig {
    closte_operator::tls::install_crypto_provider();
    let mut roots = closte_operator::tls::public_roots();
    if let Some(ca) = ca {
        for cert in CertificateDer::pem_file_iter(ca).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
    }
    rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

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
