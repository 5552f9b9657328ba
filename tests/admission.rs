//! The chart's containment of a compromised WordPress, as an attacker meets
//! it: the chart's objects installed into a real API server, a token of the
//! sidecar's ServiceAccount obtained with a TokenRequest (as a stolen one
//! would be), and with it every write the sidecar would not make refused by
//! the chart's ValidatingAdmissionPolicy with its message; what the sidecar
//! writes (the real sidecar, under that token) allowed; a cluster admin not
//! affected; the MappedDomain quota counting the sidecar's writes and
//! stopping them at its limit.

mod common;

use std::path::PathBuf;
use std::process::Command;

use closte_operator::api::MappedDomain;
use common::sidecar::Sidecar;
use common::sim::scratch;
use common::succeeded as ok;
use common::wait::eventually;
use k8s_openapi::api::core::v1::ResourceQuota;
use kube::Client;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use serde::Deserialize;
use serde_json::{Value, json};

const RELEASE: &str = "rel";
const SIDECAR: &str = "closte-operator-sidecar";
/// The chart's default sidecar.credentialsSecret (NAME, so key apiKey).
const SECRET: &str = "closte-api-key";
const QUOTA: &str = "closte-operator-mappeddomains";
const COUNT: &str = "count/mappeddomains.closte-operator.io";
const TOKEN: &str = "admission-sidecar-token-7f3e9b2c4d51";

/// `helm template` of the chart into `namespace` with these `--set` values.
fn render(namespace: &str, sets: &[&str]) -> String {
    let helm = ok(
        Command::new("bash")
            .arg(common::repo_root().join("tests/tools/helm.sh"))
            .output()
            .unwrap(),
        "tests/tools/helm.sh (make helm)",
    );
    let chart = common::repo_root().join("charts/closte-operator");
    let mut command = Command::new(helm.trim());
    command.args(["template", RELEASE, chart.to_str().unwrap()]);
    command.args(["-n", namespace, "--kube-version", "1.33.0"]);
    for set in sets {
        command.args(["--set", set]);
    }
    ok(command.output().unwrap(), "helm template")
}

/// A kubeconfig and a client that act with a token of the sidecar's
/// ServiceAccount in `namespace`, as whoever stole one would.
async fn stolen_token(admin: &Client, namespace: &str) -> (PathBuf, Client, String) {
    let kubeconfig = scratch("admission-stolen").join("kubeconfig");
    common::service_account_kubeconfig(admin, namespace, SIDECAR, &kubeconfig).await;
    let client = common::client_for(&kubeconfig).await;
    let user = format!("system:serviceaccount:{namespace}:{SIDECAR}");
    (kubeconfig, client, user)
}

/// A MappedDomain exactly as the sidecar writes one for a site: its two
/// labels, the site id, the configured Secret; nothing else.
fn as_the_sidecar_writes(name: &str, domain: &str, site: i64) -> Value {
    json!({
        "apiVersion": "closte-operator.io/v1alpha1",
        "kind": "MappedDomain",
        "metadata": {
            "name": name,
            "labels": {
                "app.kubernetes.io/managed-by": SIDECAR,
                "closte-operator.io/site-id": site.to_string(),
            },
        },
        "spec": {
            "domain": domain,
            "siteId": site,
            "credentialsRef": {"name": SECRET, "key": "apiKey"},
        },
    })
}

fn object(value: Value) -> DynamicObject {
    serde_json::from_value(value).unwrap()
}

/// The message of the policy's validation whose message starts with `start`.
fn message(policy: &Value, start: &str) -> String {
    policy["spec"]["validations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["message"].as_str())
        .find(|m| m.starts_with(start))
        .unwrap_or_else(|| panic!("no validation message starts with {start:?}"))
        .to_owned()
}

/// The write was refused by the chart's policy with `message`.
#[track_caller]
fn refused_by_policy<T: std::fmt::Debug>(
    result: Result<T, kube::Error>,
    policy: &str,
    message: &str,
    what: &str,
) {
    match result {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 403, "{what}: {status:?}");
            assert!(
                status
                    .message
                    .contains(&format!("ValidatingAdmissionPolicy '{policy}'"))
                    && status.message.contains(message),
                "{what}: refused, but not with the policy's message {message:?}: {}",
                status.message
            );
        }
        other => panic!("{what}: not refused: {other:?}"),
    }
}

#[tokio::test]
async fn a_stolen_sidecar_token_writes_only_what_the_sidecar_would() {
    let t = Stolen::install().await;
    t.policy_in_force().await;
    sidecar_would_never_make_these(&t).await;
    as_the_sidecar_writes_it_is_allowed(&t).await;
    the_real_sidecar_works_under_the_stolen_token(&t).await;
    a_cluster_admin_is_not_affected(&t).await;
    others_objects_are_left_alone(&t).await;
    its_own_objects_stay_in_shape(&t).await;
    the_quota_counts_the_sidecar_too(&t).await;
    it_reaches_no_further_than_rbac(&t).await;
}

/// The chart's objects for one WordPress namespace, as `helm install` would
/// create them, and a token stolen from its sidecar's ServiceAccount.
struct Stolen {
    admin: Client,
    /// The WordPress namespace, and the release's.
    wp: String,
    release_ns: String,
    /// A kubeconfig, and a client, with the stolen token; its user name.
    kubeconfig: PathBuf,
    stolen: Client,
    user: String,
    /// The chart's ValidatingAdmissionPolicy, and its name.
    policy: Value,
    policy_name: String,
    /// MappedDomains in `wp` as the stolen token sees them, and as the admin does.
    as_sidecar: Api<DynamicObject>,
    as_admin: Api<DynamicObject>,
    resource: ApiResource,
}

impl Stolen {
    async fn install() -> Stolen {
        let admin = common::client().await;
        common::install_crd(&admin).await;
        let release_ns = common::namespace(&admin, "closte-system").await;
        let wp = common::namespace(&admin, "wp").await;
        // its CRD is the one just installed
        let rendered = render(
            &release_ns,
            &[
                "crds.enabled=false",
                &format!("sidecar.namespaces={{{wp}}}"),
            ],
        );
        ok(
            common::kubectl_stdin(&["apply", "-f", "-"], &rendered),
            "kubectl apply of the chart",
        );
        let policy = serde_yaml::Deserializer::from_str(&rendered)
            .map(|doc| Value::deserialize(doc).unwrap())
            .find(|o| o["kind"] == "ValidatingAdmissionPolicy")
            .expect("the chart renders a ValidatingAdmissionPolicy");
        let policy_name = policy["metadata"]["name"].as_str().unwrap().to_owned();
        assert_eq!(policy_name, format!("{RELEASE}-closte-operator-sidecar"));
        let (kubeconfig, stolen, user) = stolen_token(&admin, &wp).await;
        let resource = ApiResource::erase::<MappedDomain>(&());
        Stolen {
            as_sidecar: Api::namespaced_with(stolen.clone(), &wp, &resource),
            as_admin: Api::namespaced_with(admin.clone(), &wp, &resource),
            admin,
            wp,
            release_ns,
            kubeconfig,
            stolen,
            user,
            policy,
            policy_name,
            resource,
        }
    }

    /// The API server loads policies in the background: waits until it
    /// refuses (a dry run stores nothing either way).
    async fn policy_in_force(&self) {
        let dry_run = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        eventually(30, "the policy to be in force", || async {
            let no_key = object(without_credentials("no-key", "no-key.example.com"));
            match self.as_sidecar.create(&dry_run, &no_key).await {
                Err(kube::Error::Api(status)) if status.code == 403 => Some(()),
                _ => None,
            }
        })
        .await;
    }
}

/// A MappedDomain as the sidecar writes it but without its credentialsRef:
/// the controller's own (platform) key.
fn without_credentials(name: &str, domain: &str) -> Value {
    let mut md = as_the_sidecar_writes(name, domain, 7);
    md["spec"].as_object_mut().unwrap().remove("credentialsRef");
    md
}

/// Creates the sidecar would never make, each refused with its message and nothing stored.
async fn sidecar_would_never_make_these(t: &Stolen) {
    let Stolen {
        policy,
        policy_name,
        as_sidecar,
        as_admin,
        ..
    } = t;
    let policy_name = policy_name.as_str();
    let create = PostParams::default();
    let mut attacks: Vec<(&str, Value, String)> = vec![(
        "no credentialsRef: the controller's own (platform) key",
        without_credentials("no-key", "no-key.example.com"),
        message(policy, "spec.credentialsRef"),
    )];
    let mut attack = |what: &'static str, change: &dyn Fn(&mut Value), start: &str| {
        let mut md = as_the_sidecar_writes("attack", "attack.example.com", 7);
        change(&mut md);
        attacks.push((what, md, message(policy, start)));
    };
    attack(
        "another Secret: another site's key",
        &|md| md["spec"]["credentialsRef"]["name"] = json!("other-site-key"),
        "spec.credentialsRef",
    );
    attack(
        "another key of the configured Secret",
        &|md| md["spec"]["credentialsRef"]["key"] = json!("otherKey"),
        "spec.credentialsRef",
    );
    attack(
        "credentialsRef null",
        &|md| md["spec"]["credentialsRef"] = Value::Null,
        "spec.credentialsRef",
    );
    attack(
        "deletionPolicy Delete: take an alias it did not create with it",
        &|md| md["spec"]["deletionPolicy"] = json!("Delete"),
        "spec.deletionPolicy",
    );
    attack(
        "suspend",
        &|md| md["spec"]["suspend"] = json!(true),
        "spec.suspend",
    );
    attack(
        "expectedTargets: a check that passes anywhere",
        &|md| md["spec"]["expectedTargets"] = json!(["198.51.100.7"]),
        "spec.expectedTargets",
    );
    attack(
        "a foreign label: another release's shard",
        &|md| md["metadata"]["labels"]["shard"] = json!("b"),
        "labels:",
    );
    attack(
        "a site-id label that is not spec.siteId",
        &|md| md["metadata"]["labels"]["closte-operator.io/site-id"] = json!("8"),
        "labels:",
    );
    attack(
        "no managed-by label: an object that looks hand-made",
        &|md| {
            md["metadata"]["labels"]
                .as_object_mut()
                .unwrap()
                .remove("app.kubernetes.io/managed-by");
        },
        "labels:",
    );
    attack(
        "another managed-by value",
        &|md| md["metadata"]["labels"]["app.kubernetes.io/managed-by"] = json!("Helm"),
        "labels:",
    );
    attack(
        "an annotation: a reconcile on demand",
        &|md| {
            md["metadata"]["annotations"] =
                json!({"closte-operator.io/reconcile-requested-at": "2030-01-01T00:00:00Z"})
        },
        "annotations",
    );
    attack(
        "a finalizer: an object nobody can delete",
        &|md| md["metadata"]["finalizers"] = json!(["example.com/block"]),
        "annotations",
    );
    for (what, md, message) in attacks {
        let name = md["metadata"]["name"].as_str().unwrap().to_owned();
        refused_by_policy(
            as_sidecar.create(&create, &object(md)).await,
            policy_name,
            &message,
            what,
        );
        assert!(
            as_admin.get_opt(&name).await.unwrap().is_none(),
            "{what}: stored"
        );
    }
}

/// Exactly as the sidecar writes it (server-side apply under its field manager): allowed.
async fn as_the_sidecar_writes_it_is_allowed(t: &Stolen) {
    let Stolen { as_sidecar, .. } = t;
    let apply = PatchParams::apply(SIDECAR);
    let well_formed = as_the_sidecar_writes("shop-example-com", "shop.example.com", 7);
    as_sidecar
        .patch(
            "shop-example-com",
            &apply,
            &Patch::Apply(object(well_formed)),
        )
        .await
        .expect("a MappedDomain as the sidecar writes it");
}

/// The real sidecar under the stolen token, with the chart's --credentials-secret: creates, updates and deletes its own; an admin's suspend on its object stays.
async fn the_real_sidecar_works_under_the_stolen_token(t: &Stolen) {
    let Stolen {
        wp,
        kubeconfig,
        as_admin,
        ..
    } = t;
    let sidecar = Sidecar::start(
        "admission",
        kubeconfig,
        wp,
        TOKEN,
        &["--credentials-secret", SECRET],
    )
    .await;
    let (status, answer) = sidecar
        .native(
            "PUT",
            "/v1/domains/site.example.com",
            Some(json!({"siteId": 3})),
        )
        .await;
    assert_eq!(status, 201, "{answer}\n{}", sidecar.log_text());
    let (status, answer) = sidecar
        .closte(
            "POST",
            "adddomainalias",
            &[("apikey", TOKEN), ("domain", "door.example.com")],
        )
        .await;
    assert_eq!(status, 200, "{answer}\n{}", sidecar.log_text());
    assert!(answer.contains("\"success\":true"), "{answer}");
    // an admin's suspend on the sidecar's object stays; the sidecar may
    // still change what is its own
    let suspend = json!({"spec": {"suspend": true}});
    as_admin
        .patch(
            "site-example-com",
            &PatchParams::default(),
            &Patch::Merge(&suspend),
        )
        .await
        .unwrap();
    let (status, answer) = sidecar
        .native(
            "PUT",
            "/v1/domains/site.example.com",
            Some(json!({"siteId": 3, "checkInterval": "2m"})),
        )
        .await;
    assert_eq!(status, 200, "{answer}\n{}", sidecar.log_text());
    let site = as_admin.get("site-example-com").await.unwrap();
    assert_eq!(site.data["spec"]["checkInterval"], "2m");
    assert_eq!(site.data["spec"]["suspend"], true);
    let (status, answer) = sidecar
        .native("DELETE", "/v1/domains/site.example.com", None)
        .await;
    assert_eq!(status, 204, "{answer}\n{}", sidecar.log_text());
}

/// A cluster admin, kubectl-style, in the same namespace: not affected.
async fn a_cluster_admin_is_not_affected(t: &Stolen) {
    let Stolen { wp, .. } = t;
    let by_hand = json!({
        "apiVersion": "closte-operator.io/v1alpha1",
        "kind": "MappedDomain",
        "metadata": {"name": "by-hand", "namespace": wp, "labels": {"shard": "a"}},
        "spec": {"domain": "by-hand.example.com", "deletionPolicy": "Orphan"},
    });
    ok(
        common::kubectl_stdin(&["create", "-f", "-"], &by_hand.to_string()),
        "kubectl create without credentialsRef, as the cluster admin",
    );
}

/// Objects the sidecar did not make: neither changed nor deleted with the stolen token, not even to make them look like its own.
async fn others_objects_are_left_alone(t: &Stolen) {
    let Stolen {
        policy,
        policy_name,
        as_sidecar,
        as_admin,
        ..
    } = t;
    let policy_name = policy_name.as_str();
    let foreign = message(policy, "the sidecar changes and deletes only");
    let adopt = json!({
        "metadata": {"labels": {"app.kubernetes.io/managed-by": SIDECAR}},
        "spec": {"credentialsRef": {"name": SECRET, "key": "apiKey"}},
    });
    refused_by_policy(
        as_sidecar
            .patch("by-hand", &PatchParams::default(), &Patch::Merge(&adopt))
            .await,
        policy_name,
        &foreign,
        "adopting an admin's object",
    );
    refused_by_policy(
        as_sidecar.delete("by-hand", &DeleteParams::default()).await,
        policy_name,
        &foreign,
        "deleting an admin's object",
    );
    assert!(as_admin.get_opt("by-hand").await.unwrap().is_some());
}

/// Its own objects: no field it never sets, no other key, no foreign label; deleting them is its to do.
async fn its_own_objects_stay_in_shape(t: &Stolen) {
    let Stolen {
        policy,
        policy_name,
        as_sidecar,
        ..
    } = t;
    let policy_name = policy_name.as_str();
    for (what, patch, start) in [
        (
            "suspending its own",
            json!({"spec": {"suspend": true}}),
            "spec.suspend",
        ),
        (
            "switching its own to another key",
            json!({"spec": {"credentialsRef": {"name": "other-site-key"}}}),
            "spec.credentialsRef",
        ),
        (
            "dropping the key of its own",
            json!({"spec": {"credentialsRef": null}}),
            "spec.credentialsRef",
        ),
        (
            "deletionPolicy on its own",
            json!({"spec": {"deletionPolicy": "Delete"}}),
            "spec.deletionPolicy",
        ),
        (
            "a foreign label on its own",
            json!({"metadata": {"labels": {"shard": "b"}}}),
            "labels:",
        ),
    ] {
        refused_by_policy(
            as_sidecar
                .patch(
                    "shop-example-com",
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await,
            policy_name,
            &message(policy, start),
            what,
        );
    }
    as_sidecar
        .delete("shop-example-com", &DeleteParams::default())
        .await
        .expect("the sidecar deletes its own");
}

/// The quota: one per WordPress namespace, counting everyone's MappedDomains, the sidecar's too. This control plane has no kube-controller-manager, so the test plays its quota controller: it fills in the status (hard and used) that admission then counts on.
async fn the_quota_counts_the_sidecar_too(t: &Stolen) {
    let Stolen {
        admin,
        wp,
        as_sidecar,
        as_admin,
        ..
    } = t;
    let create = PostParams::default();
    let quotas: Api<ResourceQuota> = Api::namespaced(admin.clone(), wp);
    let quota = quotas.get(QUOTA).await.expect("the chart's ResourceQuota");
    let hard = quota.spec.unwrap().hard.unwrap();
    // 5,000 by default, in the API server's canonical form
    assert_eq!(hard[COUNT].0, "5k");
    let stored = || async {
        as_admin
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len()
    };
    let used = |quota: &ResourceQuota| -> usize {
        quota.status.as_ref().unwrap().used.as_ref().unwrap()[COUNT]
            .0
            .parse()
            .unwrap()
    };
    let count = stored().await;
    let status = json!({"status": {"hard": {COUNT: "5000"}, "used": {COUNT: count.to_string()}}});
    quotas
        .patch_status(QUOTA, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    as_sidecar
        .create(
            &create,
            &object(as_the_sidecar_writes(
                "one-example-com",
                "one.example.com",
                4,
            )),
        )
        .await
        .expect("a well-formed create within the quota");
    let quota = quotas.get(QUOTA).await.unwrap();
    assert_eq!(
        used(&quota),
        count + 1,
        "the sidecar's create was not counted"
    );

    // at the limit (lowered here to what is used), the next create is refused
    let limit = (count + 1).to_string();
    let lowered = json!({"spec": {"hard": {COUNT: limit}}});
    quotas
        .patch(QUOTA, &PatchParams::default(), &Patch::Merge(&lowered))
        .await
        .unwrap();
    let status = json!({"status": {"hard": {COUNT: limit}}});
    quotas
        .patch_status(QUOTA, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    match as_sidecar
        .create(
            &create,
            &object(as_the_sidecar_writes(
                "two-example-com",
                "two.example.com",
                4,
            )),
        )
        .await
    {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 403, "{status:?}");
            assert!(
                status.message.contains(&format!("exceeded quota: {QUOTA}")),
                "{}",
                status.message
            );
        }
        other => panic!("a create beyond the quota: {other:?}"),
    }
}

/// The sidecar's identity reaches no further than RBAC lets it; the policy names it exactly.
async fn it_reaches_no_further_than_rbac(t: &Stolen) {
    let Stolen {
        release_ns,
        stolen,
        user,
        policy,
        resource,
        ..
    } = t;
    let create = PostParams::default();
    let users = policy["spec"]["matchConditions"][0]["expression"]
        .as_str()
        .unwrap();
    assert!(users.contains(&format!("'{user}'")), "{users}");
    let elsewhere: Api<DynamicObject> = Api::namespaced_with(stolen.clone(), release_ns, resource);
    match elsewhere
        .create(
            &create,
            &object(as_the_sidecar_writes("x-example-com", "x.example.com", 1)),
        )
        .await
    {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("the release namespace: {other:?}"),
    }
}
