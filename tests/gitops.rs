//! GitOps health: the Argo CD health check (Lua, run by Debian's `lua5.1`,
//! the Lua Argo CD embeds) on its recorded cases and on live objects the
//! controller wrote, and kstatus (what Flux and kubectl's tooling use) on
//! live objects.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use closte_operator::api::{MappedDomain, MappedDomainSpec, Stage};
use common::operator::wait_condition;
use common::setup::Setup;
use common::wait::eventually;
use common::{create, spec};
use serde_json::Value;

fn customization() -> PathBuf {
    common::repo_root()
        .join("deploy/argocd/resource_customizations/closte-operator.io/MappedDomain")
}

/// A JSON value as a Lua table constructor.
fn lua(value: &Value) -> String {
    match value {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"), // Rust's escapes are valid Lua for these texts
        Value::Array(items) => format!(
            "{{{}}}",
            items.iter().map(lua).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("[{k:?}] = {}", lua(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Runs health.lua on `object` the way Argo CD does (the object as the
/// global `obj`); returns (status, message).
fn health(object: &Value) -> (String, String) {
    let script = format!(
        "obj = {}\nlocal hs = dofile({:?})\nio.write(hs.status, \"\\n\", hs.message or \"\")\n",
        lua(object),
        customization().join("health.lua").to_str().unwrap()
    );
    let out = Command::new("lua5.1")
        .args(["-e", &script])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run lua5.1 ({e}): install it with `apt-get install lua5.1`")
        });
    assert!(
        out.status.success(),
        "health.lua failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (status, message) = text.split_once('\n').unwrap();
    (status.to_owned(), message.to_owned())
}

fn yaml(path: &Path) -> Value {
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn argo_cd_health_check_passes_its_cases() {
    let cases = yaml(&customization().join("health_test.yaml"));
    let cases = cases["tests"].as_array().unwrap();
    assert!(cases.len() >= 8);
    for case in cases {
        let input = customization().join(case["inputPath"].as_str().unwrap());
        let (status, message) = health(&yaml(&input));
        let want = &case["healthStatus"];
        assert_eq!(
            status,
            want["status"].as_str().unwrap(),
            "{}",
            input.display()
        );
        assert_eq!(
            message,
            want["message"].as_str().unwrap(),
            "{}",
            input.display()
        );
    }
}

#[tokio::test]
async fn argo_cd_health_of_live_objects() {
    const KEY: &str = "gitops-key-77a1";
    let s = Setup::start("gitops", KEY, &["--issue-delay", "1s"], &[]).await;
    let live = |name: &'static str| {
        let api = s.api.clone();
        async move { serde_json::to_value(api.get(name).await.unwrap()).unwrap() }
    };
    create(
        &s.api,
        "good",
        MappedDomainSpec {
            check_interval: Some("10s".into()),
            ..spec("good.gitops.example")
        },
    )
    .await;
    create(
        &s.api,
        "elsewhere",
        MappedDomainSpec {
            expected_targets: Some(vec!["203.0.113.9".into()]),
            ..spec("elsewhere.gitops.example")
        },
    )
    .await;
    create(
        &s.api,
        "paused",
        MappedDomainSpec {
            suspend: Some(true),
            ..spec("paused.gitops.example")
        },
    )
    .await;
    wait_condition(
        &s.api,
        "elsewhere",
        "DNSReady",
        "False",
        Some("TargetMismatch"),
    )
    .await;
    assert_eq!(health(&live("elsewhere").await).0, "Progressing");
    wait_condition(&s.api, "paused", "Registered", "False", Some("Suspended")).await;
    assert_eq!(health(&live("paused").await).0, "Suspended");
    eventually(60, "good to be done", || async {
        let md: MappedDomain = s.api.get("good").await.ok()?;
        (md.status?.stage? == Stage::Done).then_some(())
    })
    .await;
    let (status, message) = health(&live("good").await);
    assert_eq!(status, "Healthy", "{message}");
    assert!(
        message.contains("DNS and certificate are ready"),
        "{message}"
    );
}
