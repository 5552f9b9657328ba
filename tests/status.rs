//! `closte-operator status` against a controller, the simulator and a real
//! API server: a healthy domain, DNS pointing elsewhere, a certificate not
//! issued yet, and a rejected key each say what is wrong and what to do.

mod common;

use std::process::Command;

use closte_operator::api::{MappedDomainSpec, Stage};
use common::operator::wait_condition;
use common::process::Launch;
use common::setup::Setup;
use common::sim::Simulator;
use common::wait::eventually;
use common::{create, spec};
use serde_json::{Value, json};

const KEY: &str = "status-key-4be2";

/// Runs `status` (text, or JSON with `-o json`) against the test cluster and `sim`.
fn status(sim: &Simulator, ns: &str, name: &str, extra: &[&str]) -> (i32, String) {
    let out = Launch::run("status")
        .args([name, "-n", ns, "--closte-api-url", &sim.api])
        .args(sim.check_flags())
        .args(extra)
        .kubeconfig(common::kubeconfig())
        .env("CLOSTE_CLIENT_API_KEY", KEY)
        .output();
    let text = String::from_utf8(out.stdout).unwrap();
    (out.status.code().unwrap(), text)
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test]
async fn healthy_and_misdirected_domains() {
    let s = Setup::start("status", KEY, &["--issue-delay", "1s"], &[]).await;
    let quick = |domain: &str| MappedDomainSpec {
        check_interval: Some("10s".into()),
        ..spec(domain)
    };
    create(&s.api, "good", quick("good.status.example")).await;
    create(
        &s.api,
        "elsewhere",
        MappedDomainSpec {
            expected_targets: Some(vec!["203.0.113.50".into()]),
            ..quick("elsewhere.status.example")
        },
    )
    .await;
    eventually(60, "good to be done", || async {
        (s.api.get("good").await.ok()?.status?.stage? == Stage::Done).then_some(())
    })
    .await;
    let (code, text) = status(&s.sim, &s.ns, "good", &[]);
    println!("$ closte-operator status good\n{text}(exit {code})\n");
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("stage done, Ready"), "{text}");
    assert!(text.contains("On Closte      present"), "{text}");
    assert!(text.contains("Certificate    Valid: issued by"), "{text}");
    assert!(text.contains("nothing to do"), "{text}");
    let (_, out) = status(&s.sim, &s.ns, "good", &["-o", "json"]);
    let report = json(&out);
    assert_eq!(report["ready"], true);
    assert_eq!(report["closte"], "present");
    assert_eq!(report["dns"]["verdict"], "Matched");
    assert!(report["certificate"]["daysLeft"].as_i64().unwrap() > 30);
    assert_eq!(report["next"], json!([]));

    wait_condition(
        &s.api,
        "elsewhere",
        "DNSReady",
        "False",
        Some("TargetMismatch"),
    )
    .await;
    let (code, text) = status(&s.sim, &s.ns, "elsewhere", &[]);
    println!("$ closte-operator status elsewhere\n{text}(exit {code})\n");
    assert_eq!(code, 1, "not Ready: {text}");
    assert!(text.contains("DNS            TargetMismatch"), "{text}");
    assert!(
        text.contains("DNS for elsewhere.status.example answers 127.0.0.1, not 203.0.113.50"),
        "{text}"
    );

    // as a kubectl plugin
    let plugins = common::sim::scratch("status-plugin");
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_closte-operator"),
        plugins.join("kubectl-closte"),
    )
    .unwrap();
    let path = format!("{}:{}", plugins.display(), std::env::var("PATH").unwrap());
    let out = Command::new("kubectl")
        .args(["closte", "status", "good", "-n", &s.ns, "-o", "json"])
        .args([
            "--closte-api-url",
            &s.sim.api,
            "--dns-server",
            &s.sim.dns.unwrap().to_string(),
        ])
        .args(["--https-port", &s.sim.https.unwrap().port().to_string()])
        .args(["--ca-file", s.sim.ca.as_ref().unwrap().to_str().unwrap()])
        .env("PATH", path)
        .env("KUBECONFIG", common::kubeconfig())
        .env("CLOSTE_CLIENT_API_KEY", KEY)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json(&String::from_utf8(out.stdout).unwrap())["ready"], true);
}

#[tokio::test]
async fn a_certificate_not_yet_issued_and_a_rejected_key() {
    let s = Setup::start(
        "status-wait",
        KEY,
        &["--issue-delay", "1h", "--api-key", "second-site-key"],
        &[],
    )
    .await;
    create(&s.api, "waiting", spec("waiting.status.example")).await;
    wait_condition(
        &s.api,
        "waiting",
        "CertificateReady",
        "False",
        Some("HostnameMismatch"),
    )
    .await;
    let (code, text) = status(&s.sim, &s.ns, "waiting", &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("no valid certificate for waiting.status.example yet"),
        "{text}"
    );
    assert!(text.contains("usually 5 to 10 minutes"), "{text}");

    let with_secret = MappedDomainSpec {
        credentials_ref: common::create_key_secret(&s.client, &s.ns, "closte", "not-the-key").await,
        ..spec("rejected.status.example")
    };
    create(&s.api, "rejected", with_secret).await;
    wait_condition(
        &s.api,
        "rejected",
        "Stalled",
        "True",
        Some("CredentialsRejected"),
    )
    .await;
    let (code, text) = status(&s.sim, &s.ns, "rejected", &[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("On Closte      unknown"), "{text}");
    assert!(
        text.contains(
            "Closte refused the API key (key \"apiKey\" of Secret \"closte\" in this namespace)"
        ),
        "{text}"
    );
    assert!(!text.contains("not-the-key"), "the key is printed");

    let (code, _) = status(&s.sim, &s.ns, "no-such-domain", &[]);
    assert_eq!(code, 2, "a missing object is an error, not a verdict");
}
