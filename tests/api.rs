//! The MappedDomain API against a real kube-apiserver + etcd: the CRD installs,
//! the API server enforces the same rules as `domain.rs`, spec and status are
//! separate, and `kubectl` shows what users need.

mod common;

use closte_operator::api::{
    DeletionPolicy, MappedDomain, MappedDomainSpec, Ownership, SecretKeyRef, Stage,
};
use closte_operator::domain::{self, Rule};
use common::setup::Namespace;
use common::{mapped_domain, spec};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

async fn setup(prefix: &str) -> (Client, Api<MappedDomain>, String) {
    let Namespace { client, ns, api } = Namespace::new(prefix).await;
    (client, api, ns)
}

/// The API server's message for a validation rejection (422); panics on anything else.
fn rejection(err: kube::Error) -> String {
    match err {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 422, "expected 422 Invalid, got {status:?}");
            status.message
        }
        e => panic!("unexpected error: {e}"),
    }
}

/// Creates the object and returns the API server's rejection message, if any.
async fn create(api: &Api<MappedDomain>, md: &MappedDomain) -> Result<MappedDomain, String> {
    api.create(&PostParams::default(), md)
        .await
        .map_err(rejection)
}

/// Like [`create`], for specs the Rust types cannot even hold.
async fn create_raw(client: &Client, ns: &str, name: &str, spec: Value) -> Result<(), String> {
    let resource = ApiResource::erase::<MappedDomain>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
    let mut obj = DynamicObject::new(name, &resource);
    obj.data = json!({ "spec": spec });
    api.create(&PostParams::default(), &obj)
        .await
        .map(drop)
        .map_err(rejection)
}

#[tokio::test]
async fn crd_is_established_with_names() {
    let client = common::client().await;
    common::install_crd(&client).await;
    let crds: Api<CustomResourceDefinition> = Api::all(client);
    let crd = crds.get("mappeddomains.closte-operator.io").await.unwrap();
    let conditions = crd.status.unwrap().conditions.unwrap_or_default();
    for wanted in ["Established", "NamesAccepted"] {
        assert!(
            conditions
                .iter()
                .any(|c| c.type_ == wanted && c.status == "True"),
            "{wanted} not True in {conditions:?}"
        );
    }
}

#[tokio::test]
async fn examples_are_accepted() {
    let (_, api, _) = setup("examples").await;
    let mut count = 0;
    for entry in std::fs::read_dir(common::repo_root().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let md: MappedDomain = serde_yaml::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not a MappedDomain: {e}", path.display()));
        let created = create(&api, &md)
            .await
            .unwrap_or_else(|m| panic!("{} rejected: {m}", path.display()));
        assert_eq!(created.spec, md.spec, "{} round-trips", path.display());
        count += 1;
    }
    assert!(count >= 3, "only {count} examples");
}

/// The table in tests/data/domain-cases.tsv, run against the API server: it
/// accepts exactly what `domain::validate` accepts, and rejects the rest with
/// the message of the rule `domain::validate` names.
#[tokio::test]
async fn api_server_agrees_with_domain_rules() {
    let (_, api, _) = setup("domains").await;
    let table =
        std::fs::read_to_string(common::repo_root().join("tests/data/domain-cases.tsv")).unwrap();
    let cases = domain::parse_case_table(&table);
    assert!(cases.len() >= 60);
    let mut disagreements = Vec::new();
    for (i, (name, expected)) in cases.iter().enumerate() {
        let md = mapped_domain(&format!("case-{i}"), spec(name));
        let result = create(&api, &md).await;
        let rust_rule = domain::validate(name).err().and_then(|e| e.rule());
        assert_eq!(rust_rule, *expected, "domain::validate({name:?})");
        match (expected, result) {
            (None, Ok(created)) => assert_eq!(created.spec.domain, *name),
            (Some(rule), Err(message)) if message.contains(rule.message()) => {}
            (expected, result) => disagreements.push(format!(
                "{name:?}: expected {:?}, API server said {result:?}",
                expected.map(Rule::name)
            )),
        }
    }
    assert!(disagreements.is_empty(), "{disagreements:#?}");
}

#[tokio::test]
async fn other_spec_fields_are_validated() {
    let (client, api, ns) = setup("fields").await;
    let d = "fields.example.com";
    let rejected = [
        (
            json!({"domain": d, "checkInterval": "5s"}),
            "checkInterval must be between 10s and 24h",
        ),
        (
            json!({"domain": d, "checkInterval": "25h"}),
            "checkInterval must be between 10s and 24h",
        ),
        (
            json!({"domain": d, "checkInterval": "5 minutes"}),
            "spec.checkInterval in body should match",
        ),
        (
            json!({"domain": d, "deletionPolicy": "Remove"}),
            "supported values: \"Delete\", \"Orphan\"",
        ),
        (
            json!({"domain": d, "siteId": 0}),
            "spec.siteId in body should be greater than or equal to 1",
        ),
        (
            json!({"domain": d, "credentialsRef": {"name": "Bad_Name", "key": "k"}}),
            "spec.credentialsRef.name in body should match",
        ),
        (
            json!({"domain": d, "credentialsRef": {"name": "ok", "key": "a/b"}}),
            "spec.credentialsRef.key in body should match",
        ),
        (
            json!({"domain": d, "credentialsRef": {"name": "ok"}}),
            "spec.credentialsRef.key: Required value",
        ),
        (
            json!({"domain": d, "expectedTargets": ["not a host!"]}),
            "each expectedTargets entry must be an IP address or a lowercase hostname",
        ),
        (
            json!({"domain": d, "expectedTargets": ["Upper.Example.com"]}),
            "each expectedTargets entry must be an IP address or a lowercase hostname",
        ),
        (
            json!({"domain": d, "suspend": "yes"}),
            "spec.suspend: Invalid value: \"string\"",
        ),
        (json!({"siteId": 3}), "spec.domain: Required value"),
        (
            json!({"domain": "*.shops.example.com", "verification": "HTTP"}),
            "a wildcard domain cannot be proven by a request",
        ),
        (
            json!({"domain": d, "verification": "Http"}),
            "supported values: \"DNS\", \"HTTP\", \"Auto\"",
        ),
    ];
    for (i, (spec, want)) in rejected.into_iter().enumerate() {
        let message = create_raw(&client, &ns, &format!("bad-{i}"), spec.clone())
            .await
            .expect_err(&format!("{spec} should be rejected"));
        assert!(message.contains(want), "{spec}: {message:?} lacks {want:?}");
    }
    let accepted = MappedDomainSpec {
        site_id: Some(3),
        check_interval: Some("1h30m".into()),
        expected_targets: Some(vec![
            "203.0.113.10".into(),
            "2001:db8::1".into(),
            "lb.example.net".into(),
        ]),
        credentials_ref: Some(SecretKeyRef {
            name: "closte.key".into(),
            key: "api_key-1".into(),
        }),
        deletion_policy: Some(DeletionPolicy::Delete),
        suspend: Some(true),
        ..spec("ok.example.com")
    };
    let created = create(&api, &mapped_domain("good", accepted))
        .await
        .unwrap();
    assert_eq!(created.spec.check_interval().as_secs(), 5400);
    // a wildcard is judged by DNS: Auto and DNS are fine for it
    for (name, mode) in [("wild-auto", "Auto"), ("wild-dns", "DNS")] {
        create_raw(
            &client,
            &ns,
            name,
            json!({"domain": format!("*.{name}.example.com"), "verification": mode}),
        )
        .await
        .unwrap_or_else(|m| panic!("{mode} for a wildcard: {m}"));
    }
}

#[tokio::test]
async fn domain_is_immutable_other_fields_are_not() {
    let (_, api, _) = setup("immutable").await;
    create(&api, &mapped_domain("d", spec("first.example.com")))
        .await
        .unwrap();
    let pp = PatchParams::default();
    let err = api
        .patch(
            "d",
            &pp,
            &Patch::Merge(json!({"spec": {"domain": "second.example.com"}})),
        )
        .await
        .expect_err("changing spec.domain must fail");
    assert!(
        err.to_string().contains("domain is immutable"),
        "unexpected rejection: {err}"
    );
    let patched = api
        .patch(
            "d",
            &pp,
            &Patch::Merge(json!({"spec": {"siteId": 9, "suspend": true}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.spec.site_id, Some(9));
    assert_eq!(patched.spec.domain, "first.example.com");
}

#[tokio::test]
async fn status_and_spec_are_written_separately() {
    let (_, api, _) = setup("status").await;
    let created = create(&api, &mapped_domain("s", spec("status.example.com")))
        .await
        .unwrap();
    let generation = created.metadata.generation;

    // A status write that also carries a spec change leaves spec alone.
    let status_patch = json!({
        "spec": { "siteId": 42 },
        "status": {
            "observedGeneration": generation,
            "stage": "checking-dns",
            "ownership": "Created",
            "conditions": [{
                "type": "Registered", "status": "True", "reason": "Added",
                "message": "alias added", "lastTransitionTime": "2026-01-01T00:00:00Z"
            }]
        }
    });
    let after = api
        .patch_status("s", &PatchParams::default(), &Patch::Merge(status_patch))
        .await
        .unwrap();
    let status = after.status.clone().expect("status written");
    assert_eq!(status.stage, Some(Stage::CheckingDns));
    assert_eq!(status.ownership, Some(Ownership::Created));
    assert_eq!(after.spec.site_id, None, "status subresource changed spec");
    assert_eq!(
        after.metadata.generation, generation,
        "status write bumped generation"
    );

    // A main-resource write that carries status leaves status alone.
    let mut changed = after.clone();
    changed.spec = MappedDomainSpec {
        site_id: Some(5),
        ..after.spec.clone()
    };
    changed.status.as_mut().unwrap().stage = Some(Stage::Done);
    let replaced = api
        .replace("s", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert_eq!(replaced.spec.site_id, Some(5));
    assert_eq!(replaced.status.unwrap().stage, Some(Stage::CheckingDns));
    assert!(
        replaced.metadata.generation > generation,
        "spec write bumps generation"
    );

    // An invalid status is rejected too.
    let err = api
        .patch_status(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"stage": "almost-done"}})),
        )
        .await
        .expect_err("unknown stage must be rejected");
    assert!(err.to_string().contains("almost-done"), "{err}");
}

#[tokio::test]
async fn kubectl_shows_columns_and_descriptions() {
    let (_, api, ns) = setup("kubectl").await;
    create(
        &api,
        &mapped_domain(
            "k",
            MappedDomainSpec {
                site_id: Some(4),
                ..spec("kubectl.example.com")
            },
        ),
    )
    .await
    .unwrap();

    let out = common::kubectl(&["get", "md", "-n", &ns]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "DOMAIN", "SITE", "STAGE", "READY", "EXPIRES", "AGE"]
    );
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..3], ["k", "kubectl.example.com", "4"]);

    // the category lists it too
    let out = common::kubectl(&["get", "closte", "-n", &ns, "-o", "name"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "mappeddomain.closte-operator.io/k"
    );

    for (field, words) in [
        ("mappeddomain.spec.domain", "domain alias on Closte"),
        ("mappeddomain.spec.deletionPolicy", "Orphan leaves it"),
        (
            "mappeddomain.status.certificate.notAfter",
            "End of validity",
        ),
        ("mappeddomain.status.stage", "checking-ssl-cert"),
    ] {
        let out = common::kubectl(&["explain", field]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "kubectl explain {field}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // kubectl wraps long lines; compare with whitespace folded
        let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            folded.contains(words),
            "kubectl explain {field} lacks {words:?}:\n{text}"
        );
    }
    let _ = api.get("k").await.unwrap().name_any();
}

/// A few hundred generated names (tests/common/names.rs, a deterministic
/// proptest runner: the same names every run), each sent to the API server
/// as a dry-run create: it accepts exactly those `domain::validate` accepts,
/// and rejects the others naming the rule `domain::validate` names. This is
/// the check that the CEL rules in the CRD and their Rust twins agree, on
/// input nobody wrote by hand.
#[tokio::test]
async fn api_server_agrees_with_validate_on_generated_names() {
    use futures::StreamExt;

    let (_, api, _) = setup("generated").await;
    let names = common::names::sample(600);
    let accepted = names.iter().filter(|n| domain::validate(n).is_ok()).count();
    let mut by_rule = std::collections::BTreeMap::<&str, usize>::new();
    for name in &names {
        let rule = domain::validate(name).err().and_then(|e| e.rule());
        *by_rule.entry(rule.map_or("valid", Rule::name)).or_default() += 1;
    }
    println!("generated names by verdict: {by_rule:?}");
    assert!(
        Rule::ALL
            .iter()
            .all(|rule| by_rule.contains_key(rule.name())),
        "every rule is the verdict on some name: {by_rule:?}"
    );
    assert!(
        (60..540).contains(&accepted),
        "a sample of both kinds: {accepted} of {} valid",
        names.len()
    );
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let answers: Vec<(String, Result<MappedDomain, String>)> =
        futures::stream::iter(names.into_iter().enumerate())
            .map(|(i, name)| {
                let (api, dry_run) = (api.clone(), dry_run.clone());
                async move {
                    let md = mapped_domain(&format!("generated-{i}"), spec(&name));
                    let result = api.create(&dry_run, &md).await.map_err(rejection);
                    (name, result)
                }
            })
            .buffer_unordered(8)
            .collect()
            .await;
    let mut disagreements = Vec::new();
    for (name, result) in &answers {
        match (domain::validate(name), result) {
            (Ok(()), Ok(created)) => assert_eq!(&created.spec.domain, name),
            (Err(e), Err(message)) if message.contains(e.rule().unwrap().message()) => {}
            (rust, server) => disagreements.push(format!(
                "{name:?}: validate {rust:?}, API server {server:?}"
            )),
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} disagree:\n{}",
        disagreements.len(),
        answers.len(),
        disagreements.join("\n")
    );
    let objects = api.list(&Default::default()).await.unwrap();
    assert!(
        !objects
            .items
            .iter()
            .any(|md| md.name_any().starts_with("generated-")),
        "a dry run stored nothing"
    );
}
