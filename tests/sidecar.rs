//! The sidecar as a process against a real kube-apiserver: both doors,
//! idempotency, whole-set sync, bad input, an API server outage, and its RBAC
//! for real (run with a token of its own ServiceAccount).

mod common;

use std::path::PathBuf;

use closte_operator::api::{MappedDomain, MappedDomainSpec, Stage};
use common::operator::controller;
use common::process::Launch;
use common::proxy::Proxy;
use common::setup::Namespace;
use common::sidecar::Sidecar;
use common::sim::{Simulator, scratch};
use common::wait::eventually;
use common::{create, spec};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const TOKEN: &str = "sidecar-token-5d1e-0123456789abcdef";
const EMPTY_DOMAIN: &str = r#"{"success":false,"error":"Invalid or empty domain: "}"#;

async fn setup(name: &str, args: &[&str]) -> (Namespace, Sidecar) {
    let ns = Namespace::new(name).await;
    let sidecar = Sidecar::start(name, common::kubeconfig(), &ns.ns, TOKEN, args).await;
    (ns, sidecar)
}

/// The object's only writer is the sidecar, by update.
fn assert_written_by_the_sidecar(md: &MappedDomain) {
    let managers: Vec<_> = md
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|f| Some((f.manager.clone()?, f.operation.clone()?)))
        .collect();
    assert_eq!(
        managers,
        [("closte-operator-sidecar".into(), "Update".into())]
    );
}

/// The namespace's MappedDomains as (name, domain, site id), sorted.
async fn objects(api: &Api<MappedDomain>) -> Vec<(String, String, Option<i64>)> {
    let mut all: Vec<_> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|md| (md.metadata.name.unwrap(), md.spec.domain, md.spec.site_id))
        .collect();
    all.sort();
    all
}

/// Waits until the sidecar's cache shows `domain` (present or not).
async fn cached(sidecar: &Sidecar, domain: &str, present: bool) {
    let path = format!("/v1/domains/{}", domain.replace('*', "%2A"));
    eventually(
        10,
        &format!("{domain} in the sidecar's cache: {present}"),
        || async {
            let (status, _) = sidecar.native("GET", &path, None).await;
            ((status == 200) == present).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn the_closte_door_answers_as_closte_does() {
    let (ns, sidecar) = setup(
        "closte-door",
        &[
            "--credentials-secret",
            "closte-api-key",
            "--check-interval",
            "10s",
        ],
    )
    .await;
    closte_test_connection_and_add(&ns, &sidecar).await;
    closte_add_again_and_list(&ns, &sidecar).await;
    closte_certificate_requests(&sidecar).await;
    closte_wrong_token_writes_nothing(&ns, &sidecar).await;
}

/// The form of a Closte add of `domain`, with the token.
fn add(domain: &str) -> [(&str, &str); 3] {
    [("apikey", TOKEN), ("domain", domain), ("wildcard", "0")]
}

/// Ultimate Multisite's "test connection" byte for byte, a bad domain echoed, an add written as the sidecar's.
async fn closte_test_connection_and_add(ns: &Namespace, sidecar: &Sidecar) {
    let (status, body) = sidecar
        .closte("POST", "adddomainalias", &[("apikey", TOKEN)])
        .await;
    assert_eq!((status, body.as_str()), (200, EMPTY_DOMAIN));
    // a bad domain is echoed exactly as sent
    let (_, body) = sidecar
        .closte("POST", "adddomainalias", &add("Bad..Example.com"))
        .await;
    assert_eq!(
        body,
        r#"{"success":false,"error":"Invalid or empty domain: Bad..Example.com"}"#
    );

    let (status, body) = sidecar
        .closte("POST", "adddomainalias", &add("Shop.Example.com"))
        .await;
    assert_eq!((status, body.as_str()), (200, r#"{"success":true}"#));
    let md = ns.api.get("shop-example-com").await.unwrap();
    assert_eq!(md.spec.domain, "shop.example.com", "normalised");
    assert_eq!(
        md.spec.credentials_ref.as_ref().unwrap().name,
        "closte-api-key"
    );
    assert_eq!(md.spec.credentials_ref.as_ref().unwrap().key, "apiKey");
    assert_eq!(md.spec.check_interval.as_deref(), Some("10s"));
    let labels = md.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("closte-operator-sidecar")
    );
    assert_written_by_the_sidecar(&md);
}

/// An add of what is there is success (Ultimate Multisite logs anything else); the list and a delete.
async fn closte_add_again_and_list(ns: &Namespace, sidecar: &Sidecar) {
    let (_, body) = sidecar
        .closte("POST", "adddomainalias", &add("shop.example.com"))
        .await;
    assert_eq!(body, r#"{"success":true}"#);
    let (_, body) = sidecar
        .closte(
            "POST",
            "adddomainalias",
            &[
                ("apikey", TOKEN),
                ("domain", "*.Blogs.example.org"),
                ("wildcard", "1"),
            ],
        )
        .await;
    assert_eq!(body, r#"{"success":true}"#);
    let (_, body) = sidecar
        .closte("POST", "adddomainalias", &add("bücher.example"))
        .await;
    assert_eq!(body, r#"{"success":true}"#);
    let mut domains: Vec<String> = objects(&ns.api).await.into_iter().map(|o| o.1).collect();
    domains.sort();
    assert_eq!(
        domains,
        [
            "*.blogs.example.org",
            "shop.example.com",
            "xn--bcher-kva.example"
        ]
    );
    cached(sidecar, "xn--bcher-kva.example", true).await;
    let (status, body) = sidecar
        .closte("GET", "getdomains", &[("apikey", TOKEN)])
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        r#"{"success":true,"domains":["*.blogs.example.org","shop.example.com","xn--bcher-kva.example"]}"#
    );
}

/// The certificate requests Ultimate Multisite makes after an add.
async fn closte_certificate_requests(sidecar: &Sidecar) {
    let (status, body) = sidecar
        .closte(
            "POST",
            "ssl/install",
            &[
                ("apikey", TOKEN),
                ("domain", "shop.example.com"),
                ("type", "letsencrypt"),
            ],
        )
        .await;
    assert_eq!(status, 200);
    assert!(body.starts_with(r#"{"success":true,"message":"#), "{body}");
    for other in ["installssl", "ssl", "certificate/install"] {
        let (status, body) = sidecar.closte("POST", other, &[("apikey", TOKEN)]).await;
        assert_eq!(
            (status, body.as_str()),
            (404, r#"{"success":false,"error":"Not found"}"#)
        );
    }
}

/// A wrong or missing token: Closte's failure, and nothing written.
async fn closte_wrong_token_writes_nothing(ns: &Namespace, sidecar: &Sidecar) {
    for form in [
        vec![("apikey", "nope"), ("domain", "x.example.com")],
        vec![("domain", "x.example.com")],
    ] {
        let (status, body) = sidecar.closte("POST", "adddomainalias", &form).await;
        assert_eq!(
            (status, body.as_str()),
            (401, r#"{"success":false,"error":"Invalid API key"}"#)
        );
    }
    let (status, _) = sidecar
        .closte("GET", "adddomainalias", &add("y.example.com"))
        .await;
    assert_eq!(status, 405);
    assert_eq!(
        objects(&ns.api).await.len(),
        3,
        "nothing written by refused requests"
    );

    let (_, body) = sidecar
        .closte("POST", "deletedomainalias", &add("shop.example.com"))
        .await;
    assert_eq!(body, r#"{"success":true}"#);
    assert!(ns.api.get_opt("shop-example-com").await.unwrap().is_none());
    let (_, body) = sidecar
        .closte("POST", "deletedomainalias", &add("shop.example.com"))
        .await;
    assert_eq!(
        body, r#"{"success":true}"#,
        "deleting what is gone is success"
    );
    assert!(
        !sidecar.log_text().contains(TOKEN),
        "the token is in the log"
    );
}

#[tokio::test]
async fn the_native_door_writes_idempotently_and_syncs_a_site() {
    let (ns, sidecar) = setup("native-door", &[]).await;
    native_put_is_idempotent(&ns, &sidecar).await;
    another_site_cannot_take_it(&sidecar).await;
    controller_status_is_shown(&ns, &sidecar).await;
    whole_set_sync(&ns, &sidecar).await;
    whole_set_refuses_another_sites_domain(&ns, &sidecar).await;
}

/// A PUT creates, the same PUT again changes nothing.
async fn native_put_is_idempotent(ns: &Namespace, sidecar: &Sidecar) {
    let (status, created) = sidecar
        .native(
            "PUT",
            "/v1/domains/shop.example.com",
            Some(json!({"siteId": 2})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["name"], "shop-example-com");
    assert_eq!(created["siteId"], 2);
    let (status, again) = sidecar
        .native(
            "PUT",
            "/v1/domains/shop.example.com",
            Some(json!({"siteId": 2})),
        )
        .await;
    assert_eq!(
        (status, &again["name"]),
        (200, &created["name"]),
        "idempotent"
    );
    let md = ns.api.get("shop-example-com").await.unwrap();
    let labels = md.metadata.labels.unwrap();
    assert_eq!(labels["closte-operator.io/site-id"], "2");
}

/// Another site cannot take a domain.
async fn another_site_cannot_take_it(sidecar: &Sidecar) {
    let (status, refused) = sidecar
        .native(
            "PUT",
            "/v1/domains/shop.example.com",
            Some(json!({"siteId": 3})),
        )
        .await;
    assert_eq!(status, 409);
    assert!(
        refused["error"].as_str().unwrap().contains("site 2"),
        "{refused}"
    );
}

/// What the controller wrote is shown: stage, Ready, certificate.
async fn controller_status_is_shown(ns: &Namespace, sidecar: &Sidecar) {
    let status_patch = json!({"status": {
        "stage": "done",
        "conditions": [{"type": "Ready", "status": "True", "reason": "Ready",
                        "message": "all good", "lastTransitionTime": "2026-11-25T10:00:00Z"}],
        "certificate": {"issuer": "CN=CA", "subject": "CN=shop.example.com", "dnsNames": ["shop.example.com"],
            "serialNumber": "01", "notBefore": "2026-11-25T10:00:00Z", "notAfter": "2027-02-23T10:00:00Z",
            "sha256Fingerprint": "AB"}
    }});
    ns.api
        .patch_status(
            "shop-example-com",
            &PatchParams::default(),
            &Patch::Merge(status_patch),
        )
        .await
        .unwrap();
    let view = eventually(10, "the status in the sidecar's view", || async {
        let (_, view) = sidecar
            .native("GET", "/v1/domains/SHOP.example.com.", None)
            .await;
        (view["stage"] == "done").then_some(view)
    })
    .await;
    assert_eq!(view["ready"], true);
    assert_eq!(view["reason"], "Ready");
    assert_eq!(view["certificate"]["notAfter"], "2027-02-23T10:00:00Z");
    assert_eq!(view["conditions"][0]["type"], "Ready");
    let (_, list) = sidecar.native("GET", "/v1/domains", None).await;
    assert_eq!(list["domains"].as_array().unwrap().len(), 1);
}

/// Whole-set sync of site 3: creates, deletes its own stale ones, leaves the rest.
async fn whole_set_sync(ns: &Namespace, sidecar: &Sidecar) {
    create(&ns.api, "by-hand", spec("by-hand.example.com")).await;
    let (status, _) = sidecar
        .native(
            "PUT",
            "/v1/domains/other.example.com",
            Some(json!({"siteId": 4})),
        )
        .await;
    assert_eq!(status, 201);
    let (status, report) = sidecar
        .native(
            "PUT",
            "/v1/sites/3/domains",
            Some(json!({"domains": ["a.example.com", "B.example.com"]})),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["created"], json!(["a.example.com", "b.example.com"]));
    cached(sidecar, "b.example.com", true).await;
    let (_, report) = sidecar
        .native(
            "PUT",
            "/v1/sites/3/domains",
            Some(json!({"domains": ["b.example.com", "c.example.com"]})),
        )
        .await;
    assert_eq!(report["created"], json!(["c.example.com"]));
    assert_eq!(report["unchanged"], json!(["b.example.com"]));
    assert_eq!(report["deleted"], json!(["a.example.com"]));
    let domains: Vec<(String, Option<i64>)> = objects(&ns.api)
        .await
        .into_iter()
        .map(|(_, d, s)| (d, s))
        .collect();
    for kept in [
        ("by-hand.example.com".to_string(), None),
        ("other.example.com".to_string(), Some(4)),
        ("shop.example.com".to_string(), Some(2)),
    ] {
        assert!(domains.contains(&kept), "{kept:?} was touched: {domains:?}");
    }
    assert!(!domains.iter().any(|(d, _)| d == "a.example.com"));
}

/// A listed domain of another site: 409, and nothing written.
async fn whole_set_refuses_another_sites_domain(ns: &Namespace, sidecar: &Sidecar) {
    let before = objects(&ns.api).await;
    let (status, _) = sidecar
        .native(
            "PUT",
            "/v1/sites/3/domains",
            Some(json!({"domains": ["new.example.com", "other.example.com"]})),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(objects(&ns.api).await, before);

    for _ in 0..2 {
        let (status, body) = sidecar
            .native("DELETE", "/v1/domains/shop.example.com", None)
            .await;
        assert_eq!((status, body), (204, Value::Null), "idempotent");
    }
    assert!(ns.api.get_opt("shop-example-com").await.unwrap().is_none());
}

/// method, path, body, token, expected status
type Case<'a> = (&'a str, &'a str, Option<Vec<u8>>, &'a str, u16);

#[tokio::test]
async fn bad_input_gets_a_reason_and_changes_nothing() {
    let (ns, sidecar) = setup("bad-input", &[]).await;
    create(&ns.api, "kept", spec("kept.example.com")).await;
    let before = objects(&ns.api).await;
    native_door_refuses_bad_input(&ns, &sidecar).await;
    closte_door_refuses_bad_input(&sidecar).await;
    closte_door_refuses_odd_paths_and_big_bodies(&sidecar).await;
    native_door_serves_its_description(&sidecar).await;
    assert_eq!(objects(&ns.api).await, before, "bad input wrote something");
}

/// The native door: every bad request refused with its reason, nothing written.
async fn native_door_refuses_bad_input(ns: &Namespace, sidecar: &Sidecar) {
    let before = objects(&ns.api).await;
    let big = format!(r#"{{"siteId": 2, "pad": "{}"}}"#, "x".repeat(70 * 1024));
    let cases: Vec<Case> = vec![
        ("PUT", "/v1/domains/bad..example.com", None, TOKEN, 400),
        ("PUT", "/v1/domains/x.com:80", None, TOKEN, 400),
        ("PUT", "/v1/domains/192.0.2.1", None, TOKEN, 400),
        (
            "PUT",
            "/v1/domains/new.example.com",
            Some(b"{not json".to_vec()),
            TOKEN,
            400,
        ),
        (
            "PUT",
            "/v1/domains/new.example.com",
            Some(br#"{"siteId": "two"}"#.to_vec()),
            TOKEN,
            400,
        ),
        (
            "PUT",
            "/v1/domains/new.example.com",
            Some(br#"{"siteId": 0}"#.to_vec()),
            TOKEN,
            400,
        ),
        (
            "PUT",
            "/v1/domains/new.example.com",
            Some(br#"{"site": 2}"#.to_vec()),
            TOKEN,
            400,
        ),
        (
            "PUT",
            "/v1/domains/new.example.com",
            Some(br#"{"checkInterval": "5s"}"#.to_vec()),
            TOKEN,
            400,
        ),
        (
            "PUT",
            "/v1/sites/2/domains",
            Some(br#"{"domains": ["new.example.com"], "checkInterval": "1d"}"#.to_vec()),
            TOKEN,
            400,
        ),
        (
            "PUT",
            "/v1/domains/new.example.com",
            Some(big.into_bytes()),
            TOKEN,
            413,
        ),
        (
            "PUT",
            "/v1/domains/new.example.com",
            None,
            "wrong-token",
            401,
        ),
        ("PUT", "/v1/domains/new.example.com", None, "", 401),
        ("POST", "/v1/domains/new.example.com", None, TOKEN, 405),
        ("PATCH", "/v1/domains", None, TOKEN, 405),
        (
            "PUT",
            "/v1/sites/zero/domains",
            Some(br#"{"domains": []}"#.to_vec()),
            TOKEN,
            400,
        ),
        (
            "PUT",
            "/v1/sites/0/domains",
            Some(br#"{"domains": []}"#.to_vec()),
            TOKEN,
            400,
        ),
        (
            "PUT",
            "/v1/sites/2/domains",
            Some(br#"{"domains": ["ok.example.com", "bad..x"]}"#.to_vec()),
            TOKEN,
            400,
        ),
        ("PUT", "/v1/sites/2/domains", None, TOKEN, 400),
        (
            "DELETE",
            "/v1/domains/kept.example.com",
            None,
            "wrong-token",
            401,
        ),
        ("GET", "/v1/nothing", None, TOKEN, 404),
        ("PUT", "/v1/domains/%FF.example.com", None, TOKEN, 400),
        ("DELETE", "/v1/domains/%C3", None, TOKEN, 400),
        (
            "PUT",
            "/v1/sites/%FF/domains",
            Some(br#"{"domains": []}"#.to_vec()),
            TOKEN,
            400,
        ),
        ("GET", "/v1/domains", None, "wrong-token", 401),
        ("GET", "/metrics", None, "wrong-token", 401),
    ];
    for (method, path, body, token, want) in cases {
        let (status, answer) = sidecar.native_as(token, method, path, body).await;
        assert_eq!(status, want, "{method} {path}: {answer}");
        if path != "/metrics" {
            assert!(
                answer["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{method} {path}: no reason in {answer}"
            );
        }
        assert_eq!(
            objects(&ns.api).await,
            before,
            "{method} {path} wrote something"
        );
    }
}

/// The Closte door: a body that is not form encoding, an unknown path.
async fn closte_door_refuses_bad_input(sidecar: &Sidecar) {
    let response = reqwest::Client::new()
        .post(format!("{}/api/client/adddomainalias", sidecar.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body([format!("apikey={TOKEN}").as_bytes(), b"&domain=%FF%FE"].concat())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .starts_with(r#"{"success":false,"error":"#)
    );
    let (status, _) = sidecar
        .closte("POST", "nosuchcall", &[("apikey", TOKEN)])
        .await;
    assert_eq!(status, 404);
}

/// A path that is not UTF-8 and a body over the limit: refused in Closte's shape.
async fn closte_door_refuses_odd_paths_and_big_bodies(sidecar: &Sidecar) {
    let big = format!(
        "apikey={TOKEN}&domain=x.example.com&pad={}",
        "x".repeat(70 * 1024)
    );
    for (path, body, want) in [
        ("%FF", format!("apikey={TOKEN}"), 400),
        ("adddomainalias", big, 413),
    ] {
        let response = reqwest::Client::new()
            .post(format!("{}/api/client/{path}", sidecar.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), want, "{path}");
        let text = response.text().await.unwrap();
        assert!(
            text.starts_with(r#"{"success":false,"error":"#),
            "{path}: {text}"
        );
    }
}

/// The door's own description is served.
async fn native_door_serves_its_description(sidecar: &Sidecar) {
    let (status, openapi) = sidecar.native("GET", "/v1/openapi.yaml", None).await;
    assert_eq!(status, 200);
    assert!(
        openapi
            .as_str()
            .unwrap()
            .contains("/v1/sites/{siteId}/domains")
    );
}

/// A kubeconfig like the test cluster's, but pointing at `server`.
fn kubeconfig_via(server: std::net::SocketAddr, name: &str) -> PathBuf {
    let original = std::fs::read_to_string(common::kubeconfig()).unwrap();
    let rewritten: String = original
        .lines()
        .map(|line| match line.trim_start().strip_prefix("server: ") {
            Some(_) => format!("    server: https://{server}"),
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let path = scratch(name).join("kubeconfig");
    std::fs::write(&path, rewritten).unwrap();
    path
}

fn api_server(kubeconfig: &std::path::Path) -> std::net::SocketAddr {
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    let server = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: https://"))
        .unwrap();
    server.parse().unwrap()
}

#[tokio::test]
async fn an_api_server_outage_is_503_never_done_and_recovers() {
    let ns = Namespace::new("outage").await;
    let proxy = Proxy::start(api_server(common::kubeconfig())).await;
    let kubeconfig = kubeconfig_via(proxy.addr, "outage-kubeconfig");
    let sidecar = Sidecar::start("outage", &kubeconfig, &ns.ns, TOKEN, &[]).await;
    let (status, _) = sidecar
        .native("PUT", "/v1/domains/before.example.com", None)
        .await;
    assert_eq!(status, 201);
    cached(&sidecar, "before.example.com", true).await;

    proxy.down();
    let (status, answer) = sidecar
        .native("PUT", "/v1/domains/during.example.com", None)
        .await;
    assert_eq!(status, 503, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("unavailable"),
        "{answer}"
    );
    let (status, body) = sidecar
        .closte(
            "POST",
            "adddomainalias",
            &[("apikey", TOKEN), ("domain", "during.example.com")],
        )
        .await;
    assert_eq!(status, 503);
    assert!(
        body.starts_with(r#"{"success":false,"error":"#),
        "never reported done: {body}"
    );
    let (status, list) = sidecar.native("GET", "/v1/domains", None).await;
    assert_eq!(status, 200, "reads come from the cache");
    assert_eq!(list["domains"].as_array().unwrap().len(), 1);
    assert!(
        ns.api
            .get_opt("during-example-com")
            .await
            .unwrap()
            .is_none()
    );

    proxy.up().await;
    let answer = eventually(30, "writes to work again", || async {
        let (status, answer) = sidecar
            .native("PUT", "/v1/domains/during.example.com", None)
            .await;
        (status == 201).then_some(answer)
    })
    .await;
    assert_eq!(answer["domain"], "during.example.com");
    assert!(
        ns.api
            .get_opt("during-example-com")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn its_service_account_may_write_its_namespace_and_nothing_else() {
    use k8s_openapi::api::core::v1::Secret;

    let ns = Namespace::new("rbac").await;
    let other = common::namespace(&ns.client, "rbac-other").await;
    // the committed manifests, applied as a user would
    let manifests =
        std::fs::read_to_string(common::repo_root().join("deploy/wordpress-sidecar.yaml"))
            .unwrap()
            .replace("namespace: wordpress", &format!("namespace: {}", ns.ns));
    let path = scratch("rbac-manifests").join("rbac.yaml");
    std::fs::write(&path, manifests).unwrap();
    let out = common::kubectl(&["apply", "-n", &ns.ns, "-f", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let kubeconfig = scratch("rbac-kubeconfig").join("kubeconfig");
    common::service_account_kubeconfig(&ns.client, &ns.ns, "closte-operator-sidecar", &kubeconfig)
        .await;

    // the sidecar runs under that identity and works in its namespace
    let sidecar = Sidecar::start("rbac", &kubeconfig, &ns.ns, TOKEN, &[]).await;
    let (status, answer) = sidecar
        .native(
            "PUT",
            "/v1/domains/rbac.example.com",
            Some(json!({"siteId": 5})),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let (status, _) = sidecar
        .native("DELETE", "/v1/domains/rbac.example.com", None)
        .await;
    assert_eq!(status, 204);

    // and nothing else: another namespace, Secrets, status
    let as_sidecar = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(&kubeconfig).unwrap(),
            &Default::default(),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    let forbidden = |result: Result<_, kube::Error>| match result {
        Err(kube::Error::Api(status)) => status.code == 403,
        _ => false,
    };
    let elsewhere: Api<MappedDomain> = Api::namespaced(as_sidecar.clone(), &other);
    let md = MappedDomain::new(
        "x",
        MappedDomainSpec {
            ..spec("x.example.com")
        },
    );
    assert!(forbidden(
        elsewhere
            .create(&PostParams::default(), &md)
            .await
            .map(drop)
    ));
    assert!(forbidden(
        elsewhere.list(&ListParams::default()).await.map(drop)
    ));
    let secrets: Api<Secret> = Api::namespaced(as_sidecar.clone(), &ns.ns);
    assert!(forbidden(
        secrets.list(&ListParams::default()).await.map(drop)
    ));
    assert!(forbidden(secrets.get_opt("closte-api-key").await.map(drop)));
    let own: Api<MappedDomain> = Api::namespaced(as_sidecar, &ns.ns);
    create(&ns.api, "mine", spec("mine.example.com")).await;
    let status = Patch::Merge(json!({"status": {"stage": "done"}}));
    assert!(forbidden(
        own.patch_status("mine", &PatchParams::default(), &status)
            .await
            .map(drop)
    ));
}

/// The issue's first check: `curl -d apikey=TOKEN -d domain=...` creates the
/// MappedDomain, and the controller takes it to done.
#[tokio::test]
async fn a_closte_add_through_the_sidecar_ends_done() {
    const KEY: &str = "sidecar-e2e-key-91c0";
    let (ns, sidecar) = setup("sidecar-e2e", &["--check-interval", "10s"]).await;
    let sim = Simulator::up_with_checks(
        "sidecar-e2e-sim",
        &["--api-key", KEY, "--issue-delay", "1s"],
    )
    .await;
    let _operator = controller("sidecar-e2e", &sim, KEY, Some(&ns.ns))
        .start()
        .await;
    let (_, body) = sidecar
        .closte("POST", "adddomainalias", &[("apikey", TOKEN)])
        .await;
    assert_eq!(body, EMPTY_DOMAIN);
    let (_, body) = sidecar
        .closte(
            "POST",
            "adddomainalias",
            &[("apikey", TOKEN), ("domain", "shop.example.com")],
        )
        .await;
    assert_eq!(body, r#"{"success":true}"#);
    eventually(60, "the domain to be done", || async {
        let md = ns.api.get("shop-example-com").await.ok()?;
        (md.status?.stage? == Stage::Done).then_some(())
    })
    .await;
    assert_eq!(sim.aliases().await, ["shop.example.com"]);
    let (_, view) = sidecar
        .native("GET", "/v1/domains/shop.example.com", None)
        .await;
    assert!(view["certificate"]["notAfter"].is_string(), "{view}");
}

/// An object made by hand may sit at the name the sidecar would give another
/// domain: the sidecar neither reports that domain as there, nor overwrites
/// nor deletes the object.
#[tokio::test]
async fn a_name_held_for_another_domain_is_never_taken_for_this_one() {
    let (ns, sidecar) = setup("name-taken", &[]).await;
    create(&ns.api, "shop-example-com", spec("other.example.com")).await;
    let before = objects(&ns.api).await;
    for body in [None, Some(json!({"siteId": 2}))] {
        let (status, answer) = sidecar
            .native("PUT", "/v1/domains/shop.example.com", body)
            .await;
        assert_eq!(status, 409, "{answer}");
        let reason = answer["error"].as_str().unwrap();
        assert!(reason.contains("other.example.com"), "{reason}");
    }
    let (status, _) = sidecar
        .native("DELETE", "/v1/domains/shop.example.com", None)
        .await;
    assert_eq!(status, 204, "its domain has no MappedDomain: gone already");
    let (_, body) = sidecar
        .closte(
            "POST",
            "deletedomainalias",
            &[("apikey", TOKEN), ("domain", "shop.example.com")],
        )
        .await;
    assert_eq!(body, r#"{"success":true}"#);
    let (status, _) = sidecar
        .native(
            "PUT",
            "/v1/sites/2/domains",
            Some(json!({"domains": ["new.example.com", "shop.example.com"]})),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(objects(&ns.api).await, before, "nothing written or deleted");
}

/// A site set whose last domain belongs to another site is refused before
/// anything is written, even when the sidecar's cache has not yet seen that
/// domain's object (written through the sidecar a moment before).
#[tokio::test]
async fn a_site_set_is_refused_whole_even_before_the_cache_catches_up() {
    let (ns, sidecar) = setup("sync-fresh", &[]).await;
    for round in 0..20 {
        let theirs = format!("theirs{round}.example.com");
        let (status, _) = sidecar
            .native(
                "PUT",
                &format!("/v1/domains/{theirs}"),
                Some(json!({"siteId": 9})),
            )
            .await;
        assert_eq!(status, 201);
        let (status, answer) = sidecar
            .native(
                "PUT",
                "/v1/sites/3/domains",
                Some(json!({"domains": [format!("mine{round}.example.com"), theirs]})),
            )
            .await;
        assert_eq!(status, 409, "{answer}");
        assert!(answer["error"].as_str().unwrap().contains("site 9"));
        let mine = format!("mine{round}-example-com");
        assert!(
            ns.api.get_opt(&mine).await.unwrap().is_none(),
            "round {round}: {mine} written by a refused set"
        );
    }
}

/// A read right after a write sees it: a write is answered once the
/// sidecar's own cache, where reads come from, shows it.
#[tokio::test]
async fn a_read_right_after_a_write_sees_it() {
    let (_ns, sidecar) = setup("read-your-writes", &[]).await;
    for round in 0..20 {
        let path = format!("/v1/domains/r{round}.example.com");
        let (status, _) = sidecar
            .native("PUT", &path, Some(json!({"siteId": 3})))
            .await;
        assert_eq!(status, 201);
        let (status, view) = sidecar.native("GET", &path, None).await;
        assert_eq!((status, &view["siteId"]), (200, &json!(3)), "round {round}");
        let (_, list) = sidecar.native("GET", "/v1/domains", None).await;
        assert_eq!(
            list["domains"].as_array().unwrap().len(),
            1,
            "round {round}"
        );
        let (_, report) = sidecar
            .native(
                "PUT",
                "/v1/sites/3/domains",
                Some(json!({"domains": [format!("s{round}.example.com")]})),
            )
            .await;
        assert_eq!(report["deleted"], json!([format!("r{round}.example.com")]));
        let (status, _) = sidecar.native("GET", &path, None).await;
        assert_eq!(status, 404, "round {round}: deleted, yet still read");
        let (status, _) = sidecar
            .native("DELETE", &format!("/v1/domains/s{round}.example.com"), None)
            .await;
        assert_eq!(status, 204);
        let (_, list) = sidecar.native("GET", "/v1/domains", None).await;
        assert_eq!(list["domains"], json!([]), "round {round}");
    }
}

/// The object's checkInterval and resource version, as the API server has it.
async fn interval_of(api: &Api<MappedDomain>, name: &str) -> (Option<String>, String) {
    let md = api.get(name).await.unwrap();
    (
        md.spec.check_interval,
        md.metadata.resource_version.unwrap(),
    )
}

/// Waits until the sidecar's read of `domain` shows `interval` as its checkInterval.
async fn shown_interval(sidecar: &Sidecar, domain: &str, interval: Value) {
    let path = format!("/v1/domains/{domain}");
    eventually(
        10,
        &format!("{domain} read with checkInterval {interval}"),
        || async {
            let (status, view) = sidecar.native("GET", &path, None).await;
            (status == 200 && view["checkInterval"] == interval).then_some(())
        },
    )
    .await;
}

/// WordPress's DNS check interval on the native door: a created domain gets
/// it, a changed one updates the sidecar's objects (one domain, a whole
/// site), leaving the rest of their spec alone; without it nothing changes;
/// an invalid one is 400 and changes nothing; an object the sidecar does
/// not manage keeps its own.
#[tokio::test]
async fn the_native_door_writes_a_check_interval_and_updates_it() {
    let (ns, sidecar) = setup(
        "interval-native",
        &["--check-interval", "10s", "--credentials-secret", "key"],
    )
    .await;
    interval_created_then_changed(&ns, &sidecar).await;
    same_interval_writes_nothing(&ns, &sidecar).await;
    invalid_interval_is_refused(&ns, &sidecar).await;
    site_set_takes_the_interval(&ns, &sidecar).await;
    hand_made_objects_keep_their_interval(&ns, &sidecar).await;
    reads_show_each_interval(&ns, &sidecar).await;
}

/// One domain: created with an interval, then changed; the site id, credentials and manager kept.
async fn interval_created_then_changed(ns: &Namespace, sidecar: &Sidecar) {
    let path = "/v1/domains/one.example.com";
    let (status, view) = sidecar
        .native(
            "PUT",
            path,
            Some(json!({"siteId": 2, "checkInterval": "60s"})),
        )
        .await;
    assert_eq!(
        (status, &view["checkInterval"]),
        (201, &json!("60s")),
        "{view}"
    );
    assert_eq!(
        interval_of(&ns.api, "one-example-com").await.0.as_deref(),
        Some("60s")
    );
    let (status, view) = sidecar
        .native("PUT", path, Some(json!({"checkInterval": "2m"})))
        .await;
    assert_eq!(
        (status, &view["checkInterval"]),
        (200, &json!("2m")),
        "{view}"
    );
    let md = ns.api.get("one-example-com").await.unwrap();
    assert_written_by_the_sidecar(&md);
    assert_eq!(md.spec.check_interval.as_deref(), Some("2m"));
    assert_eq!(md.spec.site_id, Some(2), "the site id kept");
    assert_eq!(md.spec.credentials_ref.unwrap().name, "key");
    let labels = md.metadata.labels.unwrap();
    assert_eq!(labels["closte-operator.io/site-id"], "2");
    shown_interval(sidecar, "one.example.com", json!("2m")).await;
}

/// The same again, or none: nothing written, not even the flag's 10s.
async fn same_interval_writes_nothing(ns: &Namespace, sidecar: &Sidecar) {
    let path = "/v1/domains/one.example.com";
    let (_, version) = interval_of(&ns.api, "one-example-com").await;
    for body in [
        Some(json!({"checkInterval": "2m"})),
        Some(json!({"siteId": 2})),
        None,
    ] {
        let (status, view) = sidecar.native("PUT", path, body.clone()).await;
        assert_eq!(
            (status, &view["checkInterval"]),
            (200, &json!("2m")),
            "{body:?}"
        );
        assert_eq!(
            interval_of(&ns.api, "one-example-com").await,
            (Some("2m".into()), version.clone()),
            "{body:?} wrote"
        );
    }
}

/// Invalid intervals: 400 with the reason, and nothing written.
async fn invalid_interval_is_refused(ns: &Namespace, sidecar: &Sidecar) {
    let path = "/v1/domains/one.example.com";
    let (_, version) = interval_of(&ns.api, "one-example-com").await;
    for (bad, reason) in [
        (json!("5s"), "between 10s and 24h"),
        (json!("25h"), "between 10s and 24h"),
        (json!("1d"), "invalid duration"),
        (json!(300), "expected a string"),
    ] {
        for (put, body) in [
            (path, json!({"checkInterval": bad})),
            (
                "/v1/sites/2/domains",
                json!({"domains": ["one.example.com", "new.example.com"], "checkInterval": bad}),
            ),
        ] {
            let (status, answer) = sidecar.native("PUT", put, Some(body)).await;
            assert_eq!(status, 400, "{put} {bad}: {answer}");
            let error = answer["error"].as_str().unwrap();
            assert!(error.contains(reason), "{put} {bad}: {error}");
        }
    }
    assert_eq!(
        interval_of(&ns.api, "one-example-com").await,
        (Some("2m".into()), version)
    );
    assert!(ns.api.get_opt("new-example-com").await.unwrap().is_none());
}

/// A site's set: the flag's interval on creation, then WordPress's on all.
async fn site_set_takes_the_interval(ns: &Namespace, sidecar: &Sidecar) {
    let (status, report) = sidecar
        .native(
            "PUT",
            "/v1/sites/3/domains",
            Some(json!({"domains": ["a.example.com", "b.example.com"]})),
        )
        .await;
    assert_eq!(
        (status, &report["created"]),
        (200, &json!(["a.example.com", "b.example.com"]))
    );
    assert_eq!(
        interval_of(&ns.api, "a-example-com").await.0.as_deref(),
        Some("10s")
    );
    // one without a site yet (as the Closte door writes them) joins the set
    let (status, _) = sidecar
        .native("PUT", "/v1/domains/c.example.com", None)
        .await;
    assert_eq!(status, 201);
    let (status, report) = sidecar
        .native(
            "PUT",
            "/v1/sites/3/domains",
            Some(json!({
                "domains": ["a.example.com", "b.example.com", "c.example.com", "d.example.com"],
                "checkInterval": "90s",
            })),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["created"], json!(["d.example.com"]));
    assert_eq!(
        report["updated"],
        json!(["a.example.com", "b.example.com", "c.example.com"])
    );
    assert_eq!(report["unchanged"], json!([]));
    for name in [
        "a-example-com",
        "b-example-com",
        "c-example-com",
        "d-example-com",
    ] {
        let md = ns.api.get(name).await.unwrap();
        assert_eq!(md.spec.check_interval.as_deref(), Some("90s"), "{name}");
        assert_eq!(md.spec.site_id, Some(3), "{name}");
        assert_eq!(md.spec.credentials_ref.unwrap().name, "key", "{name}");
    }
    let (_, report) = sidecar
        .native(
            "PUT",
            "/v1/sites/3/domains",
            Some(json!({
                "domains": ["a.example.com", "b.example.com", "c.example.com", "d.example.com"],
                "checkInterval": "90s",
            })),
        )
        .await;
    assert_eq!(report["updated"], json!([]), "{report}");
    assert_eq!(report["unchanged"].as_array().unwrap().len(), 4, "{report}");
    assert_eq!(
        interval_of(&ns.api, "one-example-com").await.0.as_deref(),
        Some("2m"),
        "another site's"
    );
}

/// Objects made by hand (no managed-by label) are not the sidecar's: 409, untouched.
async fn hand_made_objects_keep_their_interval(ns: &Namespace, sidecar: &Sidecar) {
    let by_hand = |domain: &str, site: Option<i64>| MappedDomainSpec {
        check_interval: Some("1h".into()),
        site_id: site,
        ..spec(domain)
    };
    create(
        &ns.api,
        "kept-example-com",
        by_hand("kept.example.com", Some(5)),
    )
    .await;
    create(
        &ns.api,
        "adopted-example-com",
        by_hand("adopted.example.com", None),
    )
    .await;
    let kept_before = interval_of(&ns.api, "kept-example-com").await;
    let adopted_before = interval_of(&ns.api, "adopted-example-com").await;
    let (status, answer) = sidecar
        .native(
            "PUT",
            "/v1/domains/kept.example.com",
            Some(json!({"checkInterval": "60s"})),
        )
        .await;
    assert_eq!(status, 409, "{answer}");
    let reason = answer["error"].as_str().unwrap();
    assert!(reason.contains("not made by the sidecar"), "{reason}");
    let (status, report) = sidecar
        .native(
            "PUT",
            "/v1/sites/5/domains",
            Some(json!({"domains": ["kept.example.com", "adopted.example.com"], "checkInterval": "60s"})),
        )
        .await;
    assert_eq!(status, 409, "{report}");
    assert_eq!(interval_of(&ns.api, "kept-example-com").await, kept_before);
    assert_eq!(
        interval_of(&ns.api, "adopted-example-com").await,
        adopted_before
    );
    let adopted = ns.api.get("adopted-example-com").await.unwrap();
    assert_eq!(adopted.spec.site_id, None, "not adopted");
}

/// Every read shows each domain's interval as written.
async fn reads_show_each_interval(ns: &Namespace, sidecar: &Sidecar) {
    create(&ns.api, "bare-example-com", spec("bare.example.com")).await;
    shown_interval(sidecar, "bare.example.com", Value::Null).await;
    shown_interval(sidecar, "d.example.com", json!("90s")).await;
    let (_, list) = sidecar.native("GET", "/v1/domains", None).await;
    let intervals: Vec<(&str, &Value)> = list["domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["domain"].as_str().unwrap(), &d["checkInterval"]))
        .collect();
    assert_eq!(
        intervals,
        [
            ("a.example.com", &json!("90s")),
            ("adopted.example.com", &json!("1h")),
            ("b.example.com", &json!("90s")),
            ("bare.example.com", &Value::Null),
            ("c.example.com", &json!("90s")),
            ("d.example.com", &json!("90s")),
            ("kept.example.com", &json!("1h")),
            ("one.example.com", &json!("2m")),
        ]
    );
}

/// The Closte door's `X-Closte-Operator-Check-Interval` header does for an
/// added domain what `checkInterval` does on the native door.
#[tokio::test]
async fn a_closte_add_can_carry_a_check_interval() {
    const HEADER: &str = "X-Closte-Operator-Check-Interval";
    let (ns, sidecar) = setup("interval-closte", &["--check-interval", "10s"]).await;
    let add = |domain: &'static str| [("apikey", TOKEN), ("domain", domain)];
    let sidecar = &sidecar;
    let add_with = |domain: &'static str, interval: &'static str| async move {
        let headers = [(HEADER, interval)];
        sidecar
            .closte_with_headers("POST", "adddomainalias", &add(domain), &headers)
            .await
    };

    let (status, body) = add_with("shop.example.com", "45s").await;
    assert_eq!((status, body.as_str()), (200, r#"{"success":true}"#));
    assert_eq!(
        interval_of(&ns.api, "shop-example-com").await.0.as_deref(),
        Some("45s")
    );
    let (_, body) = add_with("shop.example.com", "3m").await;
    assert_eq!(body, r#"{"success":true}"#);
    let (interval, version) = interval_of(&ns.api, "shop-example-com").await;
    assert_eq!(interval.as_deref(), Some("3m"));
    // without it: as before (the flag's for a new one; an existing one keeps its own)
    let (_, body) = sidecar
        .closte("POST", "adddomainalias", &add("shop.example.com"))
        .await;
    assert_eq!(body, r#"{"success":true}"#);
    assert_eq!(
        interval_of(&ns.api, "shop-example-com").await,
        (Some("3m".into()), version.clone())
    );
    let (_, body) = sidecar
        .closte("POST", "adddomainalias", &add("blog.example.com"))
        .await;
    assert_eq!(body, r#"{"success":true}"#);
    assert_eq!(
        interval_of(&ns.api, "blog-example-com").await.0.as_deref(),
        Some("10s")
    );

    // invalid: Closte's refusal with the reason, nothing written
    let before = objects(&ns.api).await;
    for (domain, bad) in [
        ("shop.example.com", "5s"),
        ("new.example.com", "5s"),
        ("new.example.com", "2 minutes"),
    ] {
        let (status, body) = add_with(domain, bad).await;
        assert_eq!(status, 400, "{domain} {bad}: {body}");
        assert!(
            body.starts_with(
                r#"{"success":false,"error":"the header X-Closte-Operator-Check-Interval: "#
            ),
            "{body}"
        );
    }
    assert_eq!(objects(&ns.api).await, before);
    assert_eq!(
        interval_of(&ns.api, "shop-example-com").await,
        (Some("3m".into()), version)
    );

    // an object made by hand is not the sidecar's: refused in Closte's shape, untouched
    let by_hand = MappedDomainSpec {
        check_interval: Some("1h".into()),
        ..spec("kept.example.com")
    };
    create(&ns.api, "kept-example-com", by_hand).await;
    let kept_before = interval_of(&ns.api, "kept-example-com").await;
    let (status, body) = add_with("kept.example.com", "60s").await;
    assert_eq!(status, 409, "{body}");
    let refusal = r#"{"success":false,"error":"the MappedDomain kept-example-com for kept.example.com was not made by the sidecar"#;
    assert!(body.starts_with(refusal), "{body}");
    assert_eq!(interval_of(&ns.api, "kept-example-com").await, kept_before);
}

/// An object the sidecar did not make (no managed-by label) is not touched
/// through either door: a write of its domain is 409 with the reason, a
/// delete too, a site's sync neither deletes nor counts it; found by the
/// domain it claims even where its name does not follow the sidecar's rule.
#[tokio::test]
async fn what_the_sidecar_did_not_make_it_leaves_alone() {
    let (ns, sidecar) = setup("unmanaged", &[]).await;
    let by_hand = MappedDomainSpec {
        site_id: Some(3),
        ..spec("by-hand.example.com")
    };
    create(&ns.api, "by-hand-example-com", by_hand).await;
    create(&ns.api, "odd-name", spec("odd.example.com")).await;
    let (status, view) = sidecar
        .native(
            "PUT",
            "/v1/domains/mine.example.com",
            Some(json!({"siteId": 3})),
        )
        .await;
    assert_eq!((status, &view["managed"]), (201, &json!(true)), "{view}");
    cached(&sidecar, "odd.example.com", true).await;
    cached(&sidecar, "by-hand.example.com", true).await;
    let before = objects_with_versions(&ns.api).await;

    let (status, view) = sidecar
        .native("GET", "/v1/domains/odd.example.com", None)
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        (&view["name"], &view["managed"]),
        (&json!("odd-name"), &json!(false))
    );
    let refused = |answer: &Value, name: &str| {
        let reason = answer["error"].as_str().unwrap_or_default();
        assert!(
            reason.contains(&format!("the MappedDomain {name} for "))
                && reason.contains("was not made by the sidecar")
                && reason.contains("app.kubernetes.io/managed-by=closte-operator-sidecar"),
            "{answer}"
        );
    };
    for (domain, name) in [
        ("by-hand.example.com", "by-hand-example-com"),
        ("odd.example.com", "odd-name"),
    ] {
        let path = format!("/v1/domains/{domain}");
        for body in [
            None,
            Some(json!({"siteId": 3})),
            Some(json!({"checkInterval": "60s"})),
        ] {
            let (status, answer) = sidecar.native("PUT", &path, body.clone()).await;
            assert_eq!(status, 409, "PUT {domain} {body:?}: {answer}");
            refused(&answer, name);
        }
        let (status, answer) = sidecar.native("DELETE", &path, None).await;
        assert_eq!(status, 409, "DELETE {domain}: {answer}");
        refused(&answer, name);
        for endpoint in ["adddomainalias", "deletedomainalias"] {
            let (status, body) = sidecar
                .closte("POST", endpoint, &[("apikey", TOKEN), ("domain", domain)])
                .await;
            assert_eq!(status, 409, "{endpoint} {domain}: {body}");
            assert!(
                body.starts_with(&format!(
                    r#"{{"success":false,"error":"the MappedDomain {name} for {domain} was not made by the sidecar"#
                )),
                "{body}"
            );
        }
        // listed in a site's set: the whole set is refused, nothing written
        let (status, answer) = sidecar
            .native(
                "PUT",
                "/v1/sites/3/domains",
                Some(json!({"domains": ["new.example.com", domain]})),
            )
            .await;
        assert_eq!(status, 409, "{answer}");
        refused(&answer, name);
    }
    assert_eq!(objects_with_versions(&ns.api).await, before);

    // site 3's sync: its own stale one goes, the hand-made one of site 3 stays and is not reported
    let (status, report) = sidecar
        .native(
            "PUT",
            "/v1/sites/3/domains",
            Some(json!({"domains": ["new.example.com"]})),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["deleted"], json!(["mine.example.com"]), "{report}");
    assert_eq!(report["created"], json!(["new.example.com"]), "{report}");
    let after = objects_with_versions(&ns.api).await;
    for kept in ["by-hand-example-com", "odd-name"] {
        assert_eq!(
            after.iter().find(|o| o.0 == kept),
            before.iter().find(|o| o.0 == kept),
            "{kept} was touched"
        );
    }
    assert!(ns.api.get_opt("mine-example-com").await.unwrap().is_none());
    // an empty set for the site: still not counted as the site's
    let (status, report) = sidecar
        .native("PUT", "/v1/sites/3/domains", Some(json!({"domains": []})))
        .await;
    assert_eq!(
        (status, &report["deleted"]),
        (200, &json!(["new.example.com"]))
    );
    assert!(
        ns.api
            .get_opt("by-hand-example-com")
            .await
            .unwrap()
            .is_some()
    );
}

/// The namespace's MappedDomains as (name, domain, site id, resourceVersion), sorted.
async fn objects_with_versions(
    api: &Api<MappedDomain>,
) -> Vec<(String, String, Option<i64>, String)> {
    let mut all: Vec<_> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|md| {
            (
                md.metadata.name.unwrap(),
                md.spec.domain,
                md.spec.site_id,
                md.metadata.resource_version.unwrap(),
            )
        })
        .collect();
    all.sort();
    all
}

/// Two PUTs of one domain for two sites at the same moment: exactly one
/// wins, the other is 409, and the object is the winner's. Both when the
/// object is created by the race and when an existing one without a site
/// gets its site by it.
#[tokio::test]
async fn of_two_writers_racing_for_a_domain_exactly_one_wins() {
    use futures::StreamExt;
    const PAIRS: usize = 40;
    let (ns, sidecar) = setup("race", &[]).await;
    let sidecar = &sidecar;
    let race = |domain: String| async move {
        let path = format!("/v1/domains/{domain}");
        let (one, two) = tokio::join!(
            sidecar.native("PUT", &path, Some(json!({"siteId": 1}))),
            sidecar.native("PUT", &path, Some(json!({"siteId": 2}))),
        );
        (domain, one, two)
    };
    for existing in [false, true] {
        let domains: Vec<String> = (0..PAIRS)
            .map(|i| {
                format!(
                    "{}{i}.race.example.com",
                    if existing { "update" } else { "create" }
                )
            })
            .collect();
        if existing {
            for domain in &domains {
                let (status, _) = sidecar
                    .native("PUT", &format!("/v1/domains/{domain}"), None)
                    .await;
                assert_eq!(status, 201);
            }
        }
        // a few pairs at a time: well inside the sidecar's concurrency limit
        let results: Vec<_> = futures::stream::iter(domains.into_iter().map(race))
            .buffer_unordered(4)
            .collect()
            .await;
        for (domain, (one, answer_one), (two, answer_two)) in results {
            let won = match (one, two) {
                (201 | 200, 409) => 1,
                (409, 201 | 200) => 2,
                _ => panic!("{domain}: {one} {answer_one} and {two} {answer_two}"),
            };
            let winner_status = if won == 1 { one } else { two };
            assert_eq!(winner_status, if existing { 200 } else { 201 }, "{domain}");
            let loser = if won == 1 { &answer_two } else { &answer_one };
            let reason = loser["error"].as_str().unwrap_or_default();
            assert!(
                reason.contains(&format!("belongs to site {won}"))
                    || reason.contains("kept being changed"),
                "{domain}: {loser}"
            );
            let name = closte_operator::sidecar::names::name_for(
                &closte_operator::domain::Domain::parse(&domain).unwrap(),
            );
            let md = ns.api.get(&name).await.unwrap();
            assert_eq!(md.spec.site_id, Some(won), "{domain}: not the winner's");
            let labels = md.metadata.labels.unwrap_or_default();
            assert_eq!(labels["closte-operator.io/site-id"], won.to_string());
        }
    }
}

/// A site's set of more than 1,000 domains is refused (413, with the
/// reason) before anything is read or written.
#[tokio::test]
async fn a_site_set_over_the_maximum_is_refused_and_writes_nothing() {
    let (ns, sidecar) = setup("max-items", &[]).await;
    for count in [10_000, 1_001] {
        let domains: Vec<String> = (0..count).map(|i| format!("d{i}.example.com")).collect();
        let (status, answer) = sidecar
            .native(
                "PUT",
                "/v1/sites/3/domains",
                Some(json!({ "domains": domains })),
            )
            .await;
        assert_eq!(status, 413, "{count}: {answer}");
        let reason = answer["error"].as_str().unwrap();
        assert!(
            reason.contains("at most 1000 domains") && reason.contains(&format!("lists {count}")),
            "{reason}"
        );
        assert!(
            objects(&ns.api).await.is_empty(),
            "{count}: something written"
        );
    }
}

/// Sends `head` (a request's start, unfinished) on a new connection and
/// returns the connection.
async fn stalled(sidecar: &Sidecar, head: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let addr = sidecar.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

/// Everything the other side sends until it closes the connection, and
/// how long that took; panics when it is still open after `limit`.
async fn until_closed(
    stream: &mut tokio::net::TcpStream,
    limit: std::time::Duration,
) -> (String, std::time::Duration) {
    use tokio::io::AsyncReadExt;
    let started = std::time::Instant::now();
    let mut received = Vec::new();
    let read = tokio::time::timeout(limit, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the connection is still open after {limit:?}");
    (
        String::from_utf8_lossy(&received).into_owned(),
        started.elapsed(),
    )
}

/// A client that starts a request and never finishes its headers, or
/// sends nothing, is disconnected after --header-read-timeout.
#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    use std::time::Duration;
    let (_ns, sidecar) = setup("header-timeout", &["--header-read-timeout", "1s"]).await;
    let partial = [
        String::new(),
        "GET /v1/domains HTT".to_owned(),
        format!("GET /v1/domains HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"),
    ];
    let mut connections = Vec::new();
    for head in &partial {
        connections.push(stalled(&sidecar, head).await);
    }
    for (head, connection) in partial.iter().zip(&mut connections) {
        let (_, took) = until_closed(connection, Duration::from_secs(10)).await;
        println!("{head:?}: closed after {took:?}");
    }
    // and a whole request is answered as ever
    let (status, _) = sidecar.native("GET", "/v1/domains", None).await;
    assert_eq!(status, 200);
}

/// With as many requests in progress as --max-concurrent-requests, one
/// more waits a second and gets 503 with Retry-After (the health checks
/// are not held); a request that takes longer than --request-timeout (here
/// a body that never comes) is cut short with 503.
#[tokio::test]
async fn requests_at_once_and_their_duration_are_bounded() {
    use std::time::{Duration, Instant};
    let (_ns, sidecar) = setup(
        "busy",
        &["--max-concurrent-requests", "2", "--request-timeout", "6s"],
    )
    .await;
    let head = format!(
        "PUT /v1/domains/slow.example.com HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    );
    let started = Instant::now();
    let mut slow = vec![
        stalled(&sidecar, &head).await,
        stalled(&sidecar, &head).await,
    ];

    let client = reqwest::Client::new();
    let busy = eventually(5, "a request refused as busy", || async {
        let response = client
            .get(format!("{}/v1/domains", sidecar.url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .ok()?;
        (response.status() == 503).then_some(response)
    })
    .await;
    assert_eq!(busy.headers()["retry-after"], "1");
    let answer: Value = serde_json::from_str(&busy.text().await.unwrap()).unwrap();
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("busy: 2 requests"),
        "{answer}"
    );
    let (status, body) = sidecar
        .closte("GET", "getdomains", &[("apikey", TOKEN)])
        .await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.starts_with(r#"{"success":false,"error":"busy: "#),
        "{body}"
    );
    let health = client
        .get(format!("{}/readyz", sidecar.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "the health checks are not held");

    for connection in &mut slow {
        let (answer, _) = until_closed(connection, Duration::from_secs(20)).await;
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains("took longer than 6s"), "{answer}");
    }
    // not before the request timeout (the time after it is reported, not judged)
    let took = started.elapsed();
    println!("slow requests cut short after {took:?}");
    assert!(took >= Duration::from_secs(5), "cut short after {took:?}");
    let (status, _) = sidecar.native("GET", "/v1/domains", None).await;
    assert_eq!(status, 200, "free again");
}

/// The token file as Kubernetes mounts a Secret: `token` links to
/// `..data/token`, `..data` to a timestamped folder; an update writes a new
/// folder and swaps `..data` in one rename.
struct SecretVolume {
    dir: PathBuf,
    version: usize,
}

impl SecretVolume {
    fn new(name: &str, token: &str) -> SecretVolume {
        let dir = scratch(name).join("volume");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut volume = SecretVolume { dir, version: 0 };
        volume.update(token);
        std::os::unix::fs::symlink("..data/token", volume.file()).unwrap();
        volume
    }

    fn file(&self) -> PathBuf {
        self.dir.join("token")
    }

    /// The Secret updated as the kubelet does it.
    fn update(&mut self, token: &str) {
        self.version += 1;
        let folder = format!("..2026_01_01_00_00_0{}.{}", self.version, self.version);
        std::fs::create_dir(self.dir.join(&folder)).unwrap();
        std::fs::write(self.dir.join(&folder).join("token"), format!("{token}\n")).unwrap();
        let staged = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&folder, &staged).unwrap();
        std::fs::rename(&staged, self.dir.join("..data")).unwrap();
        if self.version > 1 {
            let old = format!(
                "..2026_01_01_00_00_0{}.{}",
                self.version - 1,
                self.version - 1
            );
            std::fs::remove_dir_all(self.dir.join(old)).unwrap();
        }
    }
}

/// A rotated token is followed without a restart: after a Secret update
/// (a symlink swap) and after a plain rewrite of the file, the new token
/// is accepted and the old refused within seconds; while the file holds no
/// usable token, every token is refused.
#[tokio::test]
async fn a_rotated_token_is_followed_without_a_restart() {
    const FIRST: &str = "first-token-0123456789abcdef0123";
    const SECOND: &str = "second-token-0123456789abcdef012";
    const THIRD: &str = "third-token-0123456789abcdef0123";
    let mut volume = SecretVolume::new("token-rotation-volume", FIRST);
    let file = volume.file().display().to_string();
    let ns = Namespace::new("token-rotation").await;
    // the environment's token is not used when there is a file
    let sidecar = Sidecar::start(
        "token-rotation",
        common::kubeconfig(),
        &ns.ns,
        TOKEN,
        &["--token-file", &file],
    )
    .await;
    assert_eq!(token_status(&sidecar, FIRST).await, 200);
    assert_eq!(token_status(&sidecar, TOKEN).await, 401);

    volume.update(SECOND);
    follows(
        &sidecar,
        Some(SECOND),
        &[FIRST],
        "the Secret's new token, not the old",
    )
    .await;
    let (status, body) = sidecar
        .closte("GET", "getdomains", &[("apikey", SECOND)])
        .await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"success":true,"domains":[]}"#)
    );

    std::fs::write(volume.file(), format!("{THIRD}\n")).unwrap();
    follows(
        &sidecar,
        Some(THIRD),
        &[SECOND, FIRST],
        "the rewritten file's token",
    )
    .await;

    std::fs::write(volume.file(), "too-short\n").unwrap();
    follows(&sidecar, None, &[THIRD, "too-short"], "every token refused").await;
    assert!(sidecar.log_text().contains("holds no usable token"));
    volume.update(FIRST);
    follows(&sidecar, Some(FIRST), &[THIRD], "a usable token again").await;
    assert!(
        !sidecar.log_text().contains("0123456789abcdef"),
        "a token is in the log"
    );
}

/// The status of a read with `token`.
async fn token_status(sidecar: &Sidecar, token: &str) -> u16 {
    let (status, _) = sidecar.native_as(token, "GET", "/v1/domains", None).await;
    status
}

/// Waits until `accepted` (if any) is accepted and each of `refused` refused.
async fn follows(sidecar: &Sidecar, accepted: Option<&str>, refused: &[&str], what: &str) {
    eventually(10, what, || async move {
        if let Some(token) = accepted
            && token_status(sidecar, token).await != 200
        {
            return None;
        }
        for token in refused {
            if token_status(sidecar, token).await != 401 {
                return None;
            }
        }
        Some(())
    })
    .await;
}

/// A token shorter than 32 bytes stops the sidecar at start, saying why,
/// before it talks to Kubernetes.
#[test]
fn a_short_token_is_refused_at_start() {
    let dir = scratch("short-token");
    let file = dir.join("token");
    std::fs::write(&file, format!("{}\n", &TOKEN[..31])).unwrap();
    for (args, env, origin) in [
        (
            vec!["--token-file", file.to_str().unwrap()],
            None,
            file.display().to_string(),
        ),
        (
            vec![],
            Some(&TOKEN[..20]),
            "CLOSTE_SIDECAR_TOKEN".to_owned(),
        ),
    ] {
        let mut launch = Launch::run("sidecar")
            .args(&args)
            .kubeconfig(&dir.join("no-such-kubeconfig"))
            .env_remove("CLOSTE_SIDECAR_TOKEN");
        if let Some(token) = env {
            launch = launch.env("CLOSTE_SIDECAR_TOKEN", token);
        }
        let out = launch.output();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        let length = if env.is_some() { 20 } else { 31 };
        assert!(
            stderr.contains(&format!(
                "the token from {origin} is {length} bytes long; the sidecar takes none shorter than 32 bytes"
            )),
            "{stderr}"
        );
        assert!(
            !stderr.contains(&TOKEN[..20]),
            "the token printed: {stderr}"
        );
    }
}
