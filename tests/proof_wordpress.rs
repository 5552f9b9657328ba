//! The proof end to end, with real WordPress: a site's custom domain behind
//! the simulator's proxy (DNS answers the proxy, whose own CA signs the
//! certificate) reaches the simulated Closte site, which hands the request
//! to WordPress as Closte's web server does; the mu-plugin answers the
//! controller's proof request and the domain ends Ready as `Proxied`.
//! Then the refusals a stranger meets at the proof endpoint through the
//! same path, and a deleted site whose domain still resolves and still has
//! its certificate, but no longer proves.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use closte_operator::api::{MappedDomain, Stage};
use closte_operator::probe::proof::request;
use common::operator::controller;
use common::process::{BINARY, Process};
use common::setup::{Namespace, SIDECAR_TOKEN_SECRET, sidecar_token_secret};
use common::sidecar::Sidecar;
use common::sim::{Simulator, trusting};
use common::wait::eventually;
use common::wordpress::{MariaDb, Site, SiteOptions, WordPress};
use kube::api::{Api, ListParams};
use serde_json::json;

const SIM_KEY: &str = "proof-e2e-closte-key-19c2";
const TOKEN: &str = "proof-e2e-sidecar-token-6f03-d1e8a";
const DOMAIN: &str = "shop.proof-e2e.example";
/// The simulated proxy's address (on loopback, beside the site's).
const PROXY_IP: &str = "127.0.0.3";

struct Env {
    api: Api<MappedDomain>,
    sim: Simulator,
    wp: WordPress,
    /// The proxy: DNS's answer for DOMAIN, on the site's HTTPS port.
    proxy: SocketAddr,
    _operator: Process,
    _sidecar: Sidecar,
    _db: MariaDb,
}

impl Env {
    /// WordPress first (the simulated site hands requests on to it), then
    /// the simulator with its proxy, then the controller reading the
    /// namespace's sidecar token.
    async fn start() -> Env {
        let Namespace { client, ns, api } = Namespace::new("proof-wp").await;
        let site = Site::start(
            "proof-wordpress",
            &ns,
            SiteOptions {
                token: TOKEN,
                client_key: "proof-e2e-client-placeholder",
                // no direct Closte calls here
                direct_closte_url: "http://127.0.0.1:9/api/client",
                direct_closte_key: "unused",
                sidecar_args: &["--check-interval", "10s"],
            },
        )
        .await;
        let upstream = format!("127.0.0.1:{}", site.wp.port);
        let sim = Simulator::up_with_checks(
            "proof-wordpress-sim",
            &[
                "--api-key",
                SIM_KEY,
                "--issue-delay",
                "0s",
                "--proxy-ip",
                PROXY_IP,
                "--site-upstream",
                &upstream,
            ],
        )
        .await;
        sidecar_token_secret(&client, &ns, TOKEN).await;
        let operator = controller("proof-wordpress-controller", &sim, SIM_KEY, Some(&ns))
            .args(["--proof-secret", SIDECAR_TOKEN_SECRET])
            .start()
            .await;
        let proxy = SocketAddr::new(
            PROXY_IP.parse().unwrap(),
            sim.https.expect("the simulator serves HTTPS").port(),
        );
        Env {
            api,
            sim,
            wp: site.wp,
            proxy,
            _operator: operator,
            _sidecar: site.sidecar,
            _db: site.db,
        }
    }

    async fn md(&self, domain: &str) -> Option<MappedDomain> {
        let list = self.api.list(&ListParams::default()).await.unwrap();
        list.items.into_iter().find(|md| md.spec.domain == domain)
    }

    /// The proof for DOMAIN asked through the proxy, as the controller asks it.
    async fn prove(&self, token: &str) -> closte_operator::probe::proof::ProofObservation {
        let tls = trusting(self.sim.ca.as_deref());
        let nonce = closte_operator::probe::proof::fresh_nonce();
        request(
            &tls,
            Duration::from_secs(10),
            self.proxy.ip(),
            self.proxy.port(),
            DOMAIN,
            token.as_bytes(),
            &nonce,
        )
        .await
    }

    /// A stranger's client: DOMAIN resolved to the proxy, no redirects.
    fn stranger(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .use_preconfigured_tls(trusting(self.sim.ca.as_deref()))
            .resolve(DOMAIN, self.proxy)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap()
    }

    /// `closte-operator check --domain DOMAIN` with the network's token: its
    /// exit code and what it said.
    fn check(&self) -> (Option<i32>, String) {
        let token = common::sim::scratch("proof-wordpress-check").join("token");
        std::fs::write(&token, TOKEN).unwrap();
        let out = std::process::Command::new(BINARY)
            .args(["check", "--domain", DOMAIN, "--proof-token-file"])
            .arg(&token)
            .args(self.sim.check_flags())
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), said)
    }
}

#[tokio::test]
async fn a_wordpress_site_behind_a_proxy_proves_itself_until_it_is_deleted() {
    let env = Env::start().await;
    env.sim.set_proxied(DOMAIN, true).await;
    let created = env
        .wp
        .tool("create-site", json!({"domain": DOMAIN, "title": "Shop"}));
    let id = created["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("create {DOMAIN}: {created}"));

    // the controller's proof went through the proxy to WordPress
    let md = eventually(90, &format!("{DOMAIN} to be done"), || async {
        let md = env.md(DOMAIN).await.ok_or("no MappedDomain")?;
        match &md.status {
            Some(status) if status.stage == Some(Stage::Done) => Ok(md),
            status => Err(format!("{status:?}")),
        }
    })
    .await;
    let status = md.status.unwrap();
    let dns_ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "DNSReady")
        .expect("DNSReady");
    assert_eq!(
        (dns_ready.status.as_str(), dns_ready.reason.as_str()),
        ("True", "Proxied"),
        "{dns_ready:?}"
    );
    let dns = status.dns.expect("dns status");
    assert_eq!(dns.records, [PROXY_IP], "DNS answered the proxy");
    let proof = dns.proof.expect("the proof is recorded");
    assert_eq!(proof.result, "Proven", "{proof:?}");
    assert!(
        proof.url.starts_with(&format!(
            "https://{DOMAIN}:{}/.well-known/closte-operator/",
            env.proxy.port()
        )),
        "{proof:?}"
    );
    let certificate = status.certificate.expect("the served certificate");
    assert_eq!(certificate.served_by.as_deref(), Some("Proxy"));
    assert!(
        certificate.issuer.contains("Proxy CA"),
        "the proxy's certificate: {}",
        certificate.issuer
    );

    // WordPress's answer verifies under this network's token only
    let ours = env.prove(TOKEN).await;
    assert!(ours.verified, "{ours:?}");
    let theirs = env.prove("another-network-token-5d1e0a9c").await;
    assert!(!theirs.verified && theirs.proof_shaped, "{theirs:?}");

    the_proof_endpoint_refuses_strangers(&env).await;

    // the site is deleted: its MappedDomain and alias go
    let deleted = env.wp.tool("delete-site", json!({"id": id}));
    assert_eq!(deleted["exists"], false, "{deleted}");
    eventually(60, "the deleted site's alias to be gone", || async {
        (env.md(DOMAIN).await.is_none() && !env.sim.aliases().await.iter().any(|a| a == DOMAIN))
            .then_some(())
    })
    .await;
    // ...but suppose DNS and the certificate still look right (the alias
    // put back by hand, the proxy still in front): no proof comes back
    env.sim.add_alias(DOMAIN, 0).await;
    let gone = env.prove(TOKEN).await;
    assert!(!gone.verified && !gone.proof_shaped, "{gone:?}");
    assert_eq!(gone.status, Some(302), "{gone:?}");
    let (code, said) = env.check();
    assert_eq!(code, Some(1), "check --domain of a deleted site:\n{said}");
    // WordPress sends a host it has no site for to the network's main site
    assert!(
        said.contains("DNSReady     False (ProofUnexpected)") && said.contains(": 302,"),
        "{said}"
    );
}

/// What a stranger gets from the proof endpoint through the proxy: the
/// proof for a well-formed GET only, nothing cached, and for anything else
/// a bare 404 that reveals nothing of WordPress.
async fn the_proof_endpoint_refuses_strangers(env: &Env) {
    let client = env.stranger();
    let url = |path: &str| format!("https://{DOMAIN}{path}");
    let nonce = closte_operator::probe::proof::fresh_nonce();
    let proof_path = format!("/.well-known/closte-operator/{nonce}");

    let answer = client.get(url(&proof_path)).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.headers()["cache-control"],
        "no-store, max-age=0",
        "a proof must not be cached by the proxy"
    );
    let body = answer.text().await.unwrap();
    assert!(
        body.starts_with("closte-operator-proof-v1 ") && !body.contains(TOKEN),
        "{body}"
    );

    let refused = [
        ("POST", proof_path.clone()),
        ("PUT", proof_path.clone()),
        ("GET", "/.well-known/closte-operator/short".to_owned()),
        ("GET", "/.well-known/closte-operator/".to_owned()),
        (
            "GET",
            "/.well-known/closte-operator/..%2F..%2Fwp-config.php".to_owned(),
        ),
        ("GET", format!("/.well-known/closte-operator/{nonce}%00")),
        (
            "GET",
            format!("/.well-known/closte-operator/{}", "a".repeat(200)),
        ),
    ];
    for (method, path) in refused {
        let answer = client
            .request(method.parse().unwrap(), url(&path))
            .send()
            .await
            .unwrap();
        let status = answer.status();
        let body = answer.text().await.unwrap();
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert_eq!(body, "Not Found\n", "{method} {path} revealed more");
    }
}
