//! `closte-operator simulate` as a real process: its API answers as Closte
//! does, its DNS answers a real resolver, its HTTPS endpoint satisfies a real
//! TLS client only after the issue delay, and `check` reads it right.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::sim::{Simulator, scratch};
use common::wait::eventually;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::{Resolver, TokioResolver};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::TlsConnector;

const KEY: &str = "sim-key-41d2";

async fn post(url: &str, form: &[(&str, &str)]) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(url)
        .form(form)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn api_answers_like_closte() {
    let sim = Simulator::up("api", &["--api-key", KEY, "--list-shape", "strings"]).await;
    let add = format!("{}/adddomainalias", sim.api);
    // Ultimate Multisite's "test connection": the exact bytes matter
    let (status, body) = post(&add, &[("apikey", KEY)]).await;
    assert_eq!(
        (status, body.as_str()),
        (
            200,
            r#"{"success":false,"error":"Invalid or empty domain: "}"#
        )
    );
    let (_, body) = post(
        &add,
        &[("apikey", KEY), ("domain", "bad domain"), ("wildcard", "")],
    )
    .await;
    assert_eq!(
        body,
        r#"{"success":false,"error":"Invalid or empty domain: bad domain"}"#
    );
    let (_, body) = post(
        &add,
        &[
            ("apikey", KEY),
            ("domain", "*.wild.example.com"),
            ("wildcard", "1"),
        ],
    )
    .await;
    assert_eq!(body, r#"{"success":true}"#);
    let (_, body) = post(
        &add,
        &[
            ("apikey", KEY),
            ("domain", "Plain.Example.com"),
            ("wildcard", "0"),
        ],
    )
    .await;
    assert_eq!(body, r#"{"success":true}"#);
    let list = reqwest::get(format!("{}/getdomains?apikey={KEY}", sim.api))
        .await
        .unwrap();
    assert_eq!(
        list.text().await.unwrap(),
        r#"{"success":true,"domains":["*.wild.example.com","plain.example.com"]}"#
    );
    let (status, _) = post(&add, &[("apikey", "nope"), ("domain", "x.example.com")]).await;
    assert_eq!(status, 401);
    let delete = format!("{}/deletedomainalias", sim.api);
    let (_, body) = post(
        &delete,
        &[
            ("apikey", KEY),
            ("domain", "plain.example.com"),
            ("wildcard", "0"),
        ],
    )
    .await;
    assert_eq!(body, r#"{"success":true}"#);
    assert_eq!(sim.aliases().await, ["*.wild.example.com"]);

    // the admin log counts every call and never holds the key
    let log = sim.requests().await;
    assert_eq!(log.len(), 7);
    assert_eq!(log[6]["endpoint"], "deletedomainalias");
    assert_eq!(
        log[5]["account"],
        serde_json::Value::Null,
        "unknown key has no account"
    );
    assert!(!serde_json::to_string(&log).unwrap().contains(KEY));
    assert!(!sim.log().contains(KEY), "simulator log holds the key");
}

#[tokio::test]
async fn lost_answer_applies_writes_and_answers_502() {
    let dir = scratch("lost-answer");
    let state = dir.join("state.json");
    let sim = Simulator::up(
        "lost-answer",
        &[
            "--api-key",
            KEY,
            "--failure-rate",
            "1",
            "--failures",
            "lost-answer",
            "--state-file",
            state.to_str().unwrap(),
        ],
    )
    .await;
    let saved = || std::fs::read_to_string(&state).unwrap_or_default();
    let form = [
        ("apikey", KEY),
        ("domain", "lost.example.com"),
        ("wildcard", "0"),
    ];
    let (status, body) = post(&format!("{}/adddomainalias", sim.api), &form).await;
    assert_eq!(status, 502);
    assert!(body.contains("<title>502 Bad Gateway</title>"), "{body}");
    assert_eq!(sim.aliases().await, ["lost.example.com"]);
    assert!(saved().contains("lost.example.com"), "{}", saved());

    // a read has nothing to apply: it is answered normally
    let list = reqwest::get(format!("{}/getdomains?apikey={KEY}", sim.api))
        .await
        .unwrap();
    assert_eq!(list.status().as_u16(), 200);
    assert!(
        list.text()
            .await
            .unwrap()
            .contains(r#""Domain":"lost.example.com""#),
        "the list shows the alias"
    );

    let (status, body) = post(&format!("{}/deletedomainalias", sim.api), &form).await;
    assert_eq!(status, 502);
    assert!(body.contains("nginx"), "{body}");
    assert!(sim.aliases().await.is_empty());
    assert!(!saved().contains("lost.example.com"), "{}", saved());

    let log: Vec<(String, u64, Option<String>)> = sim
        .requests()
        .await
        .iter()
        .map(|r| {
            (
                r["endpoint"].as_str().unwrap().to_owned(),
                r["status"].as_u64().unwrap(),
                r["fault"].as_str().map(str::to_owned),
            )
        })
        .collect();
    let lost = Some("lost-answer".to_owned());
    assert_eq!(
        log,
        [
            ("adddomainalias".to_owned(), 502, lost.clone()),
            ("getdomains".to_owned(), 200, None),
            ("deletedomainalias".to_owned(), 502, lost),
        ]
    );
}

fn resolver(dns: SocketAddr, tcp: bool) -> TokioResolver {
    let mut connection = if tcp {
        ConnectionConfig::tcp()
    } else {
        ConnectionConfig::udp()
    };
    connection.port = dns.port();
    let server = NameServerConfig::new(dns.ip(), true, vec![connection]);
    let mut builder = Resolver::builder_with_config(
        ResolverConfig::from_name_servers(vec![server]),
        TokioRuntimeProvider::default(),
    );
    builder.options_mut().cache_size = 0;
    builder.build().unwrap()
}

#[tokio::test]
async fn dns_answers_for_registered_aliases() {
    let sim = Simulator::up(
        "dns",
        &[
            "--api-key",
            KEY,
            "--dns-listen",
            "127.0.0.1:0",
            "--target-ip",
            "203.0.113.7",
        ],
    )
    .await;
    sim.add_alias("shop.example.com", 0).await;
    sim.add_alias("*.blogs.example.org", 0).await;
    let target: IpAddr = "203.0.113.7".parse().unwrap();
    for tcp in [false, true] {
        let resolver = resolver(sim.dns.unwrap(), tcp);
        for name in [
            "shop.example.com.",
            "a.blogs.example.org.",
            "x.y.blogs.example.org.",
        ] {
            let answer = resolver
                .lookup_ip(name)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let ips: Vec<IpAddr> = answer.iter().collect();
            assert_eq!(
                ips,
                [target],
                "{name} over {}",
                if tcp { "TCP" } else { "UDP" }
            );
        }
        for name in ["unknown.example.com.", "blogs.example.org."] {
            let err = resolver.lookup_ip(name).await.unwrap_err();
            assert!(err.is_nx_domain(), "{name}: {err}");
        }
    }
    // drift is visible at once
    assert!(sim.remove_alias("shop.example.com").await);
    let err = resolver(sim.dns.unwrap(), false)
        .lookup_ip("shop.example.com.")
        .await
        .unwrap_err();
    assert!(err.is_nx_domain());
}

/// Connects with SNI `name` and a client that trusts only the simulator CA.
/// Returns the peer's leaf certificate, or the handshake error.
async fn tls_handshake(sim: &Simulator, name: &str) -> Result<CertificateDer<'static>, String> {
    closte_operator::tls::install_crypto_provider();
    let pem = std::fs::read(sim.ca.as_ref().unwrap()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile_certs(&pem) {
        roots.add(cert).unwrap();
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(sim.https.unwrap())
        .await
        .unwrap();
    let server_name = ServerName::try_from(name.to_owned()).unwrap();
    let tls = TlsConnector::from(Arc::new(config))
        .connect(server_name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    Ok(tls.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned())
}

/// The certificates of a PEM file.
fn rustls_pemfile_certs(pem: &[u8]) -> Vec<CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem)
        .map(|c| c.unwrap())
        .collect()
}

#[tokio::test]
async fn https_certificate_appears_after_issue_delay() {
    let dir = scratch("https");
    let ca = dir.join("ca.pem");
    let sim = Simulator::up(
        "https",
        &[
            "--api-key",
            KEY,
            "--https-listen",
            "127.0.0.1:0",
            "--issue-delay",
            "2s",
            "--ca-out",
            ca.to_str().unwrap(),
        ],
    )
    .await;
    assert!(
        std::fs::read_to_string(&ca)
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    let registered = Instant::now();
    sim.add_alias("secure.example.com", 0).await;
    sim.add_alias("*.wild.example.net", 0).await;

    let before = tls_handshake(&sim, "secure.example.com").await.unwrap_err();
    assert!(
        before.contains("not valid for name"),
        "before issuance: {before}"
    );
    let unknown = tls_handshake(&sim, "unknown.example.com")
        .await
        .unwrap_err();
    assert!(
        unknown.contains("not valid for name"),
        "unknown name: {unknown}"
    );

    let cert = until_issued(&sim, "secure.example.com").await;
    assert!(
        registered.elapsed() >= Duration::from_millis(1900),
        "issued too early"
    );
    let der = cert.as_ref();
    assert!(contains(der, b"secure.example.com"));
    assert!(contains(der, b"Closte Simulator CA"));

    // a wildcard alias covers one label below it, not two (it was added
    // after the other: its own issue delay may still be running)
    until_issued(&sim, "a.wild.example.net").await;
    let deep = tls_handshake(&sim, "a.b.wild.example.net")
        .await
        .unwrap_err();
    assert!(deep.contains("not valid for name"), "{deep}");
}

/// Waits for the certificate of `name`, as a probe would: handshakes until one succeeds.
async fn until_issued(sim: &Simulator, name: &str) -> CertificateDer<'static> {
    eventually(10, &format!("the certificate of {name}"), || async {
        tls_handshake(sim, name).await.ok()
    })
    .await
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn state_survives_a_restart() {
    let dir = scratch("restart");
    let state = dir.join("state.json");
    let args = ["--api-key", KEY, "--state-file", state.to_str().unwrap()];
    let mut sim = Simulator::up("restart-1", &args).await;
    let (_, body) = post(
        &format!("{}/adddomainalias", sim.api),
        &[
            ("apikey", KEY),
            ("domain", "kept.example.com"),
            ("wildcard", "0"),
        ],
    )
    .await;
    assert_eq!(body, r#"{"success":true}"#);
    let status = sim.terminate();
    assert!(
        status.success(),
        "SIGTERM should stop it cleanly: {status:?}"
    );
    assert!(!std::fs::read_to_string(&state).unwrap().contains(KEY));
    let mut sim = Simulator::up("restart-2", &args).await;
    assert_eq!(sim.aliases().await, ["kept.example.com"]);
    sim.add_alias("also.example.com", 0).await;
    let status = sim.interrupt();
    assert!(
        status.success(),
        "Ctrl-C should stop it cleanly: {status:?}"
    );
    let sim = Simulator::up("restart-3", &args).await;
    assert_eq!(
        sim.aliases().await,
        ["also.example.com", "kept.example.com"]
    );
}

fn check(api: &str, key: &str) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_closte-operator"))
        .args(["check", "--closte-api-url", api])
        .env("CLOSTE_CLIENT_API_KEY", key)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains(key) || key.is_empty(),
        "check printed the key: {text}"
    );
    (out.status.code().unwrap(), text)
}

#[tokio::test]
async fn check_says_accepted_rejected_or_unreachable() {
    let sim = Simulator::up("check", &["--api-key", KEY]).await;
    let (code, text) = check(&sim.api, KEY);
    assert_eq!(code, 0, "{text}");
    assert!(text.starts_with("accepted"), "{text}");
    let (code, text) = check(&sim.api, "wrong-key-9911");
    assert_eq!(code, 2, "{text}");
    assert!(text.starts_with("rejected"), "{text}");
    // a port bound but not listening: refused, and held so nothing else takes it
    let closed = tokio::net::TcpSocket::new_v4().unwrap();
    closed.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = closed.local_addr().unwrap().port();
    let (code, text) = check(&format!("http://127.0.0.1:{port}/api/client"), KEY);
    assert_eq!(code, 3, "{text}");
    assert!(text.starts_with("unreachable"), "{text}");
    // a 5xx is not a verdict on the key
    sim.set_faults(serde_json::json!({"failureRate": 1.0, "failureKinds": ["502"]}))
        .await;
    let (code, _) = check(&sim.api, KEY);
    assert_eq!(code, 3);
    // --api-key-file wins over the environment
    sim.set_faults(serde_json::json!({})).await;
    let file = scratch("check-key-file").join("key");
    std::fs::write(&file, format!("{KEY}\n")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_closte-operator"))
        .args(["check", "--closte-api-url", &sim.api, "--api-key-file"])
        .arg(&file)
        .env("CLOSTE_CLIENT_API_KEY", "wrong-key-9911")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(!text.contains(KEY), "{text}");
    // and the probe is the one WordPress sends: an add with the key alone,
    // one per check that reached the simulator (accepted, rejected, the 5xx,
    // the key file)
    let log = sim.requests().await;
    let probes: Vec<(&str, bool, u64)> = log
        .iter()
        .map(|r| {
            (
                r["endpoint"].as_str().unwrap(),
                r["domain"].is_null(),
                r["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        probes,
        [
            ("adddomainalias", true, 200),
            ("adddomainalias", true, 401),
            ("adddomainalias", true, 502),
            ("adddomainalias", true, 200),
        ],
        "{log:?}"
    );
}

#[test]
fn help_hides_the_key_from_the_environment() {
    for (subcommand, flag) in [("simulate", "--api-key "), ("check", "--api-key-file")] {
        let out = Command::new(env!("CARGO_BIN_EXE_closte-operator"))
            .args([subcommand, "--help"])
            .env("CLOSTE_CLIENT_API_KEY", "env-secret-5512")
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains(flag), "{subcommand}: {help}");
        assert!(!help.contains("env-secret-5512"), "{subcommand}: {help}");
    }
}
