//! The Helm chart against a real API server: lint, the values schema, the
//! rendered manifests validated by the API server, install/upgrade/uninstall
//! (CRD kept), the RBAC of both identities, and the controller run with a
//! token of the chart's ServiceAccount and the chart's own arguments taking a
//! domain through its whole life.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

use closte_operator::api::{MappedDomain, MappedDomainSpec, Stage};
use common::process::{Launch, Process};
use common::sim::{Simulator, scratch};
use common::wait::eventually;
use common::{create, spec, succeeded as ok};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, DeleteParams};
use serde::Deserialize;
use serde_json::json;

const KEY: &str = "chart-key-3a7f";
const KUBE_VERSION: &str = "1.33.0";

fn chart() -> PathBuf {
    common::repo_root().join("charts/closte-operator")
}

fn helm(args: &[&str]) -> Output {
    Command::new(common::helm_binary())
        .args(args)
        .env("KUBECONFIG", common::kubeconfig())
        .output()
        .expect("run helm")
}

fn template(namespace: &str, values: &[&str]) -> Output {
    let chart = chart();
    let mut args = vec![
        "template",
        "rel",
        chart.to_str().unwrap(),
        "-n",
        namespace,
        "--kube-version",
        KUBE_VERSION,
    ];
    args.extend_from_slice(values);
    helm(&args)
}

#[test]
fn the_chart_lints_and_its_schema_refuses_bad_values() {
    let chart = chart();
    let chart = chart.to_str().unwrap();
    ok(
        helm(&["lint", chart, "--strict", "--kube-version", KUBE_VERSION]),
        "helm lint",
    );
    for values in ["ci/full-values.yaml", "ci/namespaced-values.yaml"] {
        let file = format!("{chart}/{values}");
        ok(
            helm(&[
                "lint",
                chart,
                "--strict",
                "-f",
                &file,
                "--kube-version",
                KUBE_VERSION,
            ]),
            values,
        );
    }
    for (set, why) in [
        ("replicaCount=many", "got string, want integer"),
        ("replicaCount=-1", "minimum"),
        (
            "unknownKey=1",
            "additional properties 'unknownKey' not allowed",
        ),
        ("controller.resyncPeriod=5min", "does not match pattern"),
        ("controller.logFormat=xml", "value must be one of"),
        ("checks.httpsPort=70000", "maximum"),
        ("closte.apiUrl=ftp://closte", "does not match pattern"),
        ("leaderElection.enabled=false", "value must be true"),
        ("sidecar.namespaces[0]=Bad_NS", "does not match pattern"),
        ("sidecar.credentialsSecret=key:", "does not match pattern"),
        ("sidecar.credentialsSecret=Key", "does not match pattern"),
        ("sidecar.quota.mappedDomains=-1", "minimum"),
        ("sidecar.admissionPolicy.enabled=maybe", "want boolean"),
        (
            "controller.defaultKey.namespaces[0]=Bad_NS",
            "does not match pattern",
        ),
    ] {
        let out = template("closte-system", &["--set", set]);
        assert!(!out.status.success(), "{set} was accepted");
        let error = String::from_utf8_lossy(&out.stderr);
        assert!(error.contains(why), "{set}: {error}");
    }
    // two replicas without a leader would both write: refused whichever way
    let out = template(
        "closte-system",
        &[
            "--set",
            "replicaCount=1",
            "--set",
            "leaderElection.enabled=false",
        ],
    );
    ok(out, "one replica without leader election");
}

/// The objects `helm template` renders into `namespace` with these arguments.
fn rendered_objects(namespace: &str, values: &[&str]) -> Vec<serde_json::Value> {
    let rendered = ok(template(namespace, values), "helm template");
    serde_yaml::Deserializer::from_str(&rendered)
        .map(|doc| serde_json::Value::deserialize(doc).unwrap())
        .filter(|doc| !doc.is_null())
        .collect()
}

/// The controller container's arguments that start with `prefix`.
fn controller_args(objects: &[serde_json::Value], prefix: &str) -> Vec<String> {
    let deployment = objects.iter().find(|o| o["kind"] == "Deployment").unwrap();
    deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .filter(|a| a.starts_with(prefix))
        .collect()
}

/// Whether a ClusterRole of these objects lets the controller read namespaces.
fn reads_namespaces(objects: &[serde_json::Value]) -> bool {
    objects
        .iter()
        .filter(|o| o["kind"] == "ClusterRole")
        .flat_map(|o| o["rules"].as_array().unwrap().clone())
        .any(|rule| {
            rule["resources"] == json!(["namespaces"])
                && rule["verbs"] == json!(["get", "list", "watch"])
        })
}

/// The controller's own key: every namespace without WordPress namespaces
/// (as before), only the release namespace with them, else what
/// controller.defaultKey says; a namespace selector brings read access to
/// namespaces, also when the controller's RBAC is a Role.
#[test]
fn the_default_key_serves_the_release_namespace_once_wordpress_is_prepared() {
    let sidecar = "sidecar.namespaces={wp}";
    let selector = "controller.defaultKey.namespaceSelector=closte-operator.io/default-key=true";
    for (values, flags, namespaces) in [
        (vec![], vec![], false),
        (
            vec!["--set", sidecar],
            vec!["--default-key-namespaces=closte-system"],
            false,
        ),
        (
            vec![
                "--set",
                sidecar,
                "--set",
                "controller.defaultKey.namespaces={closte-system,shared}",
            ],
            vec!["--default-key-namespaces=closte-system,shared"],
            false,
        ),
        (
            vec!["--set", sidecar, "--set", selector],
            vec!["--default-key-namespace-selector=closte-operator.io/default-key=true"],
            true,
        ),
        (
            vec![
                "--set",
                selector,
                "--set",
                "controller.watchNamespace=wordpress",
            ],
            vec!["--default-key-namespace-selector=closte-operator.io/default-key=true"],
            true,
        ),
    ] {
        let objects = rendered_objects("closte-system", &values);
        assert_eq!(
            controller_args(&objects, "--default-key"),
            flags,
            "{values:?}"
        );
        assert_eq!(reads_namespaces(&objects), namespaces, "{values:?}");
    }
}

/// The admission policy binds each WordPress namespace's sidecar
/// ServiceAccount to its configured Secret (NAME or NAME:KEY), and goes with
/// sidecar.admissionPolicy.enabled; the quota is one per namespace, off at 0.
#[test]
fn the_sidecar_policy_and_quota_follow_the_values() {
    let kinds = |objects: &[serde_json::Value], kind: &str| -> Vec<serde_json::Value> {
        objects
            .iter()
            .filter(|o| o["kind"] == kind)
            .cloned()
            .collect()
    };
    let two = "sidecar.namespaces={wp-one,wp-two}";
    let objects = rendered_objects(
        "closte-system",
        &[
            "--set",
            two,
            "--set",
            "sidecar.credentialsSecret=wp-key:closte",
        ],
    );
    let policies = kinds(&objects, "ValidatingAdmissionPolicy");
    assert_eq!(policies.len(), 1);
    let policy = &policies[0];
    let bindings = kinds(&objects, "ValidatingAdmissionPolicyBinding");
    assert_eq!(bindings.len(), 1);
    assert_eq!(
        bindings[0]["spec"]["policyName"],
        policy["metadata"]["name"]
    );
    assert_eq!(bindings[0]["spec"]["validationActions"], json!(["Deny"]));
    let users = policy["spec"]["matchConditions"][0]["expression"]
        .as_str()
        .unwrap();
    for ns in ["wp-one", "wp-two"] {
        let user = format!("'system:serviceaccount:{ns}:closte-operator-sidecar'");
        assert!(users.contains(&user), "{users}");
    }
    let validations = policy["spec"]["validations"].to_string();
    assert!(
        validations.contains("optional.of('wp-key')")
            && validations.contains("optional.of('closte')"),
        "{validations}"
    );
    let quotas = kinds(&objects, "ResourceQuota");
    assert_eq!(quotas.len(), 2);
    for quota in &quotas {
        assert_eq!(
            quota["spec"]["hard"],
            json!({"count/mappeddomains.closte-operator.io": "5000"})
        );
    }

    // NAME alone: the sidecar's own default key
    let objects = rendered_objects("closte-system", &["--set", two]);
    let validations =
        kinds(&objects, "ValidatingAdmissionPolicy")[0]["spec"]["validations"].to_string();
    assert!(
        validations.contains("optional.of('closte-api-key')")
            && validations.contains("optional.of('apiKey')"),
        "{validations}"
    );

    for values in [
        vec![],
        vec![
            "--set",
            two,
            "--set",
            "sidecar.admissionPolicy.enabled=false",
        ],
    ] {
        let objects = rendered_objects("closte-system", &values);
        assert!(
            kinds(&objects, "ValidatingAdmissionPolicy").is_empty(),
            "{values:?}"
        );
        assert!(
            kinds(&objects, "ValidatingAdmissionPolicyBinding").is_empty(),
            "{values:?}"
        );
    }
    let objects = rendered_objects(
        "closte-system",
        &["--set", two, "--set", "sidecar.quota.mappedDomains=0"],
    );
    assert!(kinds(&objects, "ResourceQuota").is_empty());
}

#[tokio::test]
async fn rendered_manifests_pass_the_api_servers_validation() {
    let client = common::client().await;
    let out = common::kubectl(&[
        "apply",
        "-f",
        common::repo_root()
            .join("tests/data/monitoring-crds.yaml")
            .to_str()
            .unwrap(),
    ]);
    ok(out, "monitoring CRDs");
    let ns = common::namespace(&client, "chart-dry").await;
    for extra in ["wp-one", "wp-two", "wordpress"] {
        let _ = common::kubectl(&["create", "namespace", extra]);
    }
    common::kubectl(&[
        "wait",
        "--for=condition=Established",
        "crd/servicemonitors.monitoring.coreos.com",
        "crd/prometheusrules.monitoring.coreos.com",
    ]);
    let chart = chart();
    for values in [
        None,
        Some("ci/full-values.yaml"),
        Some("ci/namespaced-values.yaml"),
    ] {
        let file = values.map(|v| chart.join(v).to_str().unwrap().to_owned());
        let mut args = vec![];
        if let Some(file) = &file {
            args.extend(["-f", file.as_str()]);
        }
        let rendered = ok(template(&ns, &args), "helm template");
        server_dry_run(&rendered, &format!("{values:?}"));
    }
}

/// `kubectl apply --dry-run=server` of these manifests: the API server's own
/// validation, nothing stored.
fn server_dry_run(manifests: &str, what: &str) {
    let out = common::kubectl_stdin(&["apply", "--dry-run=server", "-f", "-"], manifests);
    ok(out, &format!("server-side dry run of {what}"));
}

/// `kubectl auth can-i` as a ServiceAccount (`resource/subresource` for a
/// subresource; an empty namespace for a cluster-wide resource): true when
/// allowed.
fn can(account: &str, verb: &str, resource: &str, namespace: &str) -> bool {
    let mut args = vec!["auth", "can-i", verb, "--as", account];
    match namespace {
        "" => args.push("--all-namespaces"),
        namespace => args.extend(["-n", namespace]),
    }
    match resource.split_once('/') {
        Some((resource, subresource)) => args.extend([resource, "--subresource", subresource]),
        None => args.push(resource),
    }
    let out = common::kubectl(&args);
    match out.status.code() {
        Some(0) => true,
        Some(1) if out.stderr.is_empty() => false,
        _ => panic!(
            "kubectl auth can-i failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// Who may do what once the chart is installed: the controller's
/// ServiceAccount and a WordPress namespace's sidecar ServiceAccount. One
/// line per check: identity, verb, resource (`resource/subresource`),
/// namespace (`wp`: the WordPress namespace, `release`: the release's, `*`:
/// cluster-wide), allowed (`yes` or `no`); `#` starts a comment.
const RBAC: &str = "
    controller list   mappeddomains.closte-operator.io            wp      yes
    controller watch  mappeddomains.closte-operator.io            default yes
    controller patch  mappeddomains.closte-operator.io            wp      yes
    controller patch  mappeddomains.closte-operator.io/status     wp      yes
    controller update mappeddomains.closte-operator.io/finalizers wp      yes
    controller create events.events.k8s.io                        wp      yes
    controller get    secrets                                     wp      yes
    controller update leases.coordination.k8s.io                  release yes
    controller create mappeddomains.closte-operator.io            wp      no
    controller delete mappeddomains.closte-operator.io            wp      no
    controller list   secrets                                     wp      no
    controller watch  secrets                                     wp      no
    controller get    configmaps                                  wp      no
    controller update leases.coordination.k8s.io                  wp      no
    controller create pods                                        release no
    sidecar    create mappeddomains.closte-operator.io            wp      yes
    sidecar    delete mappeddomains.closte-operator.io            wp      yes
    sidecar    watch  mappeddomains.closte-operator.io            wp      yes
    sidecar    create mappeddomains.closte-operator.io            default no
    sidecar    list   mappeddomains.closte-operator.io            release no
    sidecar    patch  mappeddomains.closte-operator.io/status     wp      no
    sidecar    get    secrets                                     wp      no
    sidecar    list   configmaps                                  wp      no
    sidecar    get    serviceaccounts/token                       wp      no
    sidecar    create serviceaccounts/token                       wp      no
    controller list   namespaces                                  *       no  # only with controller.defaultKey.namespaceSelector
";

const CRD: &str = "mappeddomains.closte-operator.io";
const DEPLOYMENT: &str = "rel-closte-operator";

/// A Helm release `rel` of the chart, in a namespace of its own, pointed at a
/// simulator (its API, DNS and HTTPS) and serving one WordPress namespace.
/// Each method is one step of its life.
struct Release {
    client: Client,
    namespace: String,
    wordpress: String,
    sim: Simulator,
    /// The `--set` arguments it was installed with.
    values: Vec<String>,
}

impl Release {
    /// `helm install`, then waits for the CRD it brings to be established.
    async fn install() -> Release {
        let client = common::client().await;
        let namespace = common::namespace(&client, "closte-system").await;
        let wordpress = common::namespace(&client, "wp").await;
        let sim =
            Simulator::up_with_checks("chart", &["--api-key", KEY, "--issue-delay", "1s"]).await;
        let values = [
            format!("closte.apiKey={KEY}"),
            format!("closte.apiUrl={}", sim.api),
            format!("checks.dnsServer={}", sim.dns.unwrap()),
            format!("checks.httpsPort={}", sim.https.unwrap().port()),
            "checks.expectedTargets={127.0.0.1}".to_owned(),
            format!("sidecar.namespaces={{{wordpress}}}"),
        ]
        .into_iter()
        .flat_map(|value| ["--set".to_owned(), value])
        .collect();
        let release = Release {
            client,
            namespace,
            wordpress,
            sim,
            values,
        };
        ok(release.helm("install", &[]), "helm install");
        let crds = release.crds();
        eventually(30, "the CRD to be established", || async {
            let crd = crds.get(CRD).await.ok()?;
            crd.status?
                .conditions?
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
                .then_some(())
        })
        .await;
        release
    }

    /// `helm VERB rel CHART` in the release namespace with the install's
    /// values plus `extra`.
    fn helm(&self, verb: &str, extra: &[&str]) -> Output {
        let chart = chart();
        let mut args = vec![verb, "rel", chart.to_str().unwrap(), "-n", &self.namespace];
        args.extend(self.values.iter().map(String::as_str));
        args.extend_from_slice(extra);
        helm(&args)
    }

    fn crds(&self) -> Api<CustomResourceDefinition> {
        Api::all(self.client.clone())
    }

    fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn mapped_domains(&self) -> Api<MappedDomain> {
        Api::namespaced(self.client.clone(), &self.wordpress)
    }

    /// The arguments of the controller container of the installed Deployment.
    async fn controller_args(&self) -> Vec<String> {
        let deployment = self.deployments().get(DEPLOYMENT).await.unwrap();
        deployment.spec.unwrap().template.spec.unwrap().containers[0]
            .args
            .clone()
            .unwrap()
    }

    /// Every line of [`RBAC`], asked of the API server.
    fn grants_each_identity_what_it_needs_and_no_more(&self) {
        let controller = format!("system:serviceaccount:{}:{DEPLOYMENT}", self.namespace);
        let sidecar = format!(
            "system:serviceaccount:{}:closte-operator-sidecar",
            self.wordpress
        );
        let lines = RBAC.lines().map(|l| l.split('#').next().unwrap().trim());
        for line in lines.filter(|l| !l.is_empty()) {
            let [who, verb, resource, namespace, allowed] = line
                .split_whitespace()
                .collect::<Vec<_>>()
                .try_into()
                .unwrap_or_else(|_| panic!("RBAC line: {line}"));
            let who = match who {
                "controller" => &controller,
                "sidecar" => &sidecar,
                other => panic!("RBAC line names {other}"),
            };
            let namespace = match namespace {
                "wp" => &self.wordpress,
                "release" => &self.namespace,
                "*" => "",
                named => named,
            };
            let allowed = match allowed {
                "yes" => true,
                "no" => false,
                other => panic!("RBAC line says {other}, not yes or no"),
            };
            assert_eq!(
                can(who, verb, resource, namespace),
                allowed,
                "{who} {verb} {resource} in {namespace}"
            );
        }
    }

    /// The controller as the installed Deployment would run it: with a token
    /// of the chart's ServiceAccount and the container's own arguments (the
    /// key file and the metrics address made local).
    async fn controller_with_the_charts_identity(&self) -> ChartController {
        let dir = scratch("chart-controller");
        let kubeconfig = dir.join("kubeconfig");
        common::service_account_kubeconfig(&self.client, &self.namespace, DEPLOYMENT, &kubeconfig)
            .await;
        let key_file = dir.join("api-key");
        std::fs::write(&key_file, KEY).unwrap();
        let args: Vec<String> = self
            .controller_args()
            .await
            .into_iter()
            .map(|arg| match arg.split_once('=') {
                Some(("--api-key-file", _)) => format!("--api-key-file={}", key_file.display()),
                Some(("--metrics-addr", _)) => "--metrics-addr=127.0.0.1:0".to_owned(),
                _ => arg,
            })
            .collect();
        assert_eq!(args[0], "controller");
        // WordPress namespaces name their own key: the controller's own
        // serves the release namespace only
        assert!(
            args.contains(&format!("--default-key-namespaces={}", self.namespace)),
            "{args:?}"
        );
        let process = Launch::new("controller", dir.join("controller.log"))
            .args(&args[1..])
            .args(["--ca-file", self.sim.ca.as_ref().unwrap().to_str().unwrap()])
            .kubeconfig(&kubeconfig)
            .env("RUST_LOG", "info")
            .start()
            .await;
        ChartController(process)
    }

    /// A MappedDomain of the WordPress namespace, with that namespace's own
    /// key, is registered, checked (certificate issued) and done; deleted, its
    /// alias goes.
    async fn takes_a_domain_through_its_life(&self) {
        let credentials_ref =
            common::create_key_secret(&self.client, &self.wordpress, "closte-api-key", KEY).await;
        let mds = self.mapped_domains();
        let domain = MappedDomainSpec {
            check_interval: Some("10s".into()),
            credentials_ref,
            ..spec("chart.example.com")
        };
        create(&mds, "chart", domain).await;
        let done = eventually(
            60,
            "the domain to be done under the chart's identity",
            || async {
                let md = mds.get("chart").await.ok()?;
                (md.status.as_ref()?.stage? == Stage::Done).then_some(md)
            },
        )
        .await;
        assert!(done.status.unwrap().certificate.is_some());
        assert_eq!(self.sim.aliases().await, ["chart.example.com"]);
        mds.delete("chart", &DeleteParams::default()).await.unwrap();
        eventually(30, "the alias to be removed", || async {
            self.sim.aliases().await.is_empty().then_some(())
        })
        .await;
    }

    /// `helm upgrade` with one value changed: the Deployment follows.
    async fn upgrade_reaches_the_deployment(&self) {
        ok(
            self.helm("upgrade", &["--set", "controller.concurrency=8"]),
            "helm upgrade",
        );
        let args = self.controller_args().await;
        assert!(args.contains(&"--concurrency=8".to_string()), "{args:?}");
    }

    /// `helm uninstall` removes the Deployment and keeps the CRD, and with it
    /// the MappedDomains.
    async fn uninstall_keeps_the_crd_and_the_objects(&self) {
        let mds = self.mapped_domains();
        create(&mds, "survivor", spec("survivor.example.com")).await;
        ok(
            helm(&["uninstall", "rel", "-n", &self.namespace]),
            "helm uninstall",
        );
        assert!(
            self.crds().get_opt(CRD).await.unwrap().is_some(),
            "the CRD was deleted"
        );
        assert!(mds.get_opt("survivor").await.unwrap().is_some());
        assert!(
            self.deployments()
                .get_opt(DEPLOYMENT)
                .await
                .unwrap()
                .is_none()
        );
    }
}

/// The controller started by [`Release::controller_with_the_charts_identity`]
/// (killed when dropped).
struct ChartController(Process);

impl ChartController {
    /// Stops it; its log holds neither the key nor a refusal of the RBAC.
    fn stop_with_a_clean_log(mut self) {
        self.0.kill();
        let log = self.0.log_text();
        assert!(!log.contains(KEY), "the key is in the log");
        assert!(
            !log.contains("Forbidden") && !log.contains("forbidden"),
            "RBAC refused the controller:\n{log}"
        );
    }
}

#[tokio::test]
async fn install_rbac_a_domain_with_the_charts_identity_upgrade_and_uninstall() {
    let release = Release::install().await;
    release.grants_each_identity_what_it_needs_and_no_more();
    let controller = release.controller_with_the_charts_identity().await;
    release.takes_a_domain_through_its_life().await;
    controller.stop_with_a_clean_log();
    release.upgrade_reaches_the_deployment().await;
    release.uninstall_keeps_the_crd_and_the_objects().await;
}

#[test]
fn the_plain_manifests_are_rendered_from_the_chart() {
    let out = scratch("rendered-manifests");
    let status = Command::new("bash")
        .arg(common::repo_root().join("deploy/render.sh"))
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    for file in ["closte-operator.yaml", "wordpress-sidecar.yaml"] {
        let committed =
            std::fs::read_to_string(common::repo_root().join("deploy").join(file)).unwrap();
        let rendered = std::fs::read_to_string(out.join(file)).unwrap();
        assert!(
            committed == rendered,
            "deploy/{file} is stale: run `make manifests`"
        );
    }
}

/// Every file under `dir`, by its path relative to `dir`.
fn files_under(dir: &std::path::Path) -> std::collections::BTreeMap<String, String> {
    let mut found = std::collections::BTreeMap::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(next) = todo.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let relative = path.strip_prefix(dir).unwrap().to_str().unwrap().to_owned();
                found.insert(relative, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    found
}

/// The chart carries the mu-plugin exactly as `wordpress/` has it, and its
/// ConfigMap holds each file under its base name, byte for byte, which is the
/// layout the README's pod mounts (loader by subPath, the rest as a folder).
#[test]
fn the_charts_mu_plugin_configmap_is_the_wordpress_folder() {
    let source = files_under(&common::repo_root().join("wordpress"));
    let copy = files_under(&chart().join("files/mu-plugin"));
    assert!(
        source.len() >= 10,
        "too few files in wordpress/: {:?}",
        source.keys()
    );
    assert!(
        source == copy,
        "charts/closte-operator/files/mu-plugin differs from wordpress/: run `make mu-plugin`"
    );

    let rendered = ok(
        template("wp", &["--set", "sidecar.namespaces={wp}"]),
        "helm template",
    );
    let config_map = serde_yaml::Deserializer::from_str(&rendered)
        .map(|doc| serde_json::Value::deserialize(doc).unwrap())
        .find(|doc| {
            doc["kind"] == "ConfigMap" && doc["metadata"]["name"] == "closte-operator-mu-plugin"
        })
        .expect("no mu-plugin ConfigMap rendered");
    assert_eq!(config_map["metadata"]["namespace"], "wp");
    let data: std::collections::BTreeMap<String, String> =
        serde_json::from_value(config_map["data"].clone()).unwrap();
    let flat: std::collections::BTreeMap<String, String> = source
        .into_iter()
        .map(|(path, text)| (path.rsplit('/').next().unwrap().to_owned(), text))
        .collect();
    assert_eq!(
        flat.len(),
        copy.len(),
        "two files of the mu-plugin share a base name"
    );
    assert!(
        data == flat,
        "the ConfigMap's data is not the mu-plugin's files"
    );
    assert!(
        data.contains_key("closte-operator.php"),
        "the loader is missing"
    );
}

fn yaml_file(path: &std::path::Path) -> serde_json::Value {
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The named templates `closte-operator.sidecarContainer` and
/// `closte-operator.sidecarVolumes` for these values of this chart, rendered
/// the way a WordPress chart depending on it includes them: the container and
/// the list of volumes.
fn sidecar_templates(values: &serde_json::Value) -> (serde_json::Value, serde_json::Value) {
    let wrapper = scratch("sidecar-container-chart");
    std::fs::create_dir_all(wrapper.join("charts")).unwrap();
    std::fs::create_dir_all(wrapper.join("templates")).unwrap();
    let copied = Command::new("cp")
        .arg("-r")
        .arg(chart())
        .arg(wrapper.join("charts"))
        .status()
        .unwrap();
    assert!(copied.success());
    std::fs::write(
        wrapper.join("Chart.yaml"),
        "apiVersion: v2\nname: wordpress\nversion: 0.0.1\n",
    )
    .unwrap();
    std::fs::write(
        wrapper.join("values.yaml"),
        serde_json::to_string(&json!({ "closte-operator": values })).unwrap(),
    )
    .unwrap();
    std::fs::write(
        wrapper.join("templates/container.yaml"),
        r#"{{- $sub := index .Subcharts "closte-operator" }}
{{- $context := dict "Values" $sub.Values "Chart" $sub.Chart }}
containers:
{{- include "closte-operator.sidecarContainer" $context | nindent 2 }}
volumes:
{{- include "closte-operator.sidecarVolumes" $context | nindent 2 }}
"#,
    )
    .unwrap();
    let rendered = ok(
        helm(&[
            "template",
            "wp",
            wrapper.to_str().unwrap(),
            "--kube-version",
            KUBE_VERSION,
            "--show-only",
            "templates/container.yaml",
        ]),
        "helm template of a chart that includes the sidecar container",
    );
    let rendered: serde_json::Value = serde_yaml::from_str(&rendered).unwrap();
    (
        rendered["containers"][0].clone(),
        rendered["volumes"].clone(),
    )
}

const SERVICE_ACCOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// A container of this pod spec, by name.
fn container<'a>(pod: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    pod["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

/// The pod of `what` gives Kubernetes credentials to the sidecar alone:
/// nothing is mounted automatically, the WordPress container mounts neither
/// the service-account path nor any volume with a projected token, and the
/// sidecar mounts, at the path in-cluster clients read, a projected volume
/// with a short-lived token for the API server, the cluster CA and the
/// namespace. The shared sidecar token is mounted with its one key, 0440, in
/// a pod with an fsGroup (the group both containers read it with).
fn assert_kubernetes_credentials_in_the_sidecar_only(pod: &serde_json::Value, what: &str) {
    assert_eq!(
        pod["automountServiceAccountToken"], false,
        "{what}: the pod must set automountServiceAccountToken: false"
    );
    assert!(
        pod["securityContext"]["fsGroup"].is_u64(),
        "{what}: the pod needs an fsGroup to read the 0440 token files"
    );
    let volumes = pod["volumes"].as_array().unwrap();
    let with_token: Vec<&str> = volumes
        .iter()
        .filter(|v| {
            v["projected"]["sources"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s.get("serviceAccountToken").is_some()))
        })
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    let mounts = |name: &str| {
        container(pod, name)["volumeMounts"]
            .as_array()
            .unwrap()
            .clone()
    };

    for mount in mounts("wordpress") {
        let path = mount["mountPath"].as_str().unwrap();
        assert!(
            !path.starts_with("/var/run/secrets"),
            "{what}: WordPress mounts {path}"
        );
        assert!(
            !with_token.contains(&mount["name"].as_str().unwrap()),
            "{what}: WordPress mounts a projected service-account token: {mount}"
        );
    }

    let kube_api = mounts("closte-sidecar")
        .into_iter()
        .find(|m| m["mountPath"] == SERVICE_ACCOUNT_PATH)
        .unwrap_or_else(|| panic!("{what}: the sidecar mounts nothing at {SERVICE_ACCOUNT_PATH}"));
    assert_eq!(kube_api["readOnly"], true, "{what}");
    let name = kube_api["name"].as_str().unwrap();
    assert!(with_token.contains(&name), "{what}: {name} holds no token");
    let volume = volumes.iter().find(|v| v["name"] == name).unwrap();
    let sources = volume["projected"]["sources"].as_array().unwrap();
    let token = sources
        .iter()
        .find_map(|s| s.get("serviceAccountToken"))
        .unwrap();
    assert_eq!(token["path"], "token", "{what}");
    // the API server's own audience; 3607 would be stretched to a year
    assert!(token.get("audience").is_none(), "{what}: {token}");
    let lifetime = token["expirationSeconds"].as_u64().unwrap();
    assert!((600..=3600).contains(&lifetime), "{what}: {token}");
    assert!(
        sources
            .iter()
            .any(|s| s["configMap"]["name"] == "kube-root-ca.crt"
                && s["configMap"]["items"] == json!([{"key": "ca.crt", "path": "ca.crt"}])),
        "{what}: no cluster CA in {name}"
    );
    assert!(
        sources.iter().any(|s| s["downwardAPI"]["items"]
            == json!([{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}])),
        "{what}: no namespace in {name}"
    );

    let token_volume = volumes
        .iter()
        .find(|v| v["name"] == "closte-sidecar-token")
        .unwrap_or_else(|| panic!("{what}: no volume closte-sidecar-token"));
    assert_eq!(
        token_volume["secret"]["items"],
        json!([{"key": "token", "path": "token"}]),
        "{what}"
    );
}

/// File modes as kubectl reads them: YAML 1.1, where `0440` is octal.
/// serde_yaml (YAML 1.2) keeps such a number a string.
fn octal_modes(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                let octal = value
                    .as_str()
                    .filter(|_| key == "defaultMode" || key == "mode")
                    .and_then(|text| text.strip_prefix('0'))
                    .and_then(|digits| u64::from_str_radix(digits, 8).ok());
                match octal {
                    Some(mode) => *value = json!(mode),
                    None => octal_modes(value),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(octal_modes),
        _ => {}
    }
}

/// `examples/wordpress/`: the chart's values for a WordPress namespace and a
/// WordPress Deployment.
struct Example {
    dir: PathBuf,
    values: serde_json::Value,
    deployment: serde_json::Value,
}

impl Example {
    fn load() -> Example {
        let dir = common::repo_root().join("examples/wordpress");
        let values = yaml_file(&dir.join("values.yaml"));
        let deployment = yaml_file(&dir.join("deployment.yaml"));
        Example {
            dir,
            values,
            deployment,
        }
    }

    /// The Deployment's pod spec.
    fn pod(&self) -> &serde_json::Value {
        &self.deployment["spec"]["template"]["spec"]
    }
}

/// A volume of this pod spec, by name.
fn volume(pod: &serde_json::Value, name: &str) -> serde_json::Value {
    pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no volume {name}"))
        .clone()
}

/// Where container `name` of this pod spec mounts its volumes.
fn mount_paths(pod: &serde_json::Value, name: &str) -> Vec<String> {
    container(pod, name)["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap().to_owned())
        .collect()
}

/// The spec of a pod of this spec in the `wordpress` namespace as the API
/// server admits it (a server-side dry run).
fn admitted(pod_spec: &serde_json::Value) -> serde_json::Value {
    let mut pod_spec = pod_spec.clone();
    octal_modes(&mut pod_spec);
    let manifest = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "wordpress-example", "namespace": "wordpress"},
        "spec": pod_spec,
    });
    let out = common::kubectl_stdin(
        &["create", "--dry-run=server", "-o", "json", "-f", "-"],
        &manifest.to_string(),
    );
    let stored: serde_json::Value = serde_json::from_str(&ok(out, "a pod of the example")).unwrap();
    stored["spec"].clone()
}

/// The example's sidecar container and volumes are exactly what the chart's
/// named templates render (`rendered_container`, `volumes`), and its pod gives
/// Kubernetes credentials to the sidecar alone.
fn the_examples_sidecar_is_rendered(
    example: &Example,
    rendered_container: &serde_json::Value,
    volumes: &serde_json::Value,
) {
    let pod = example.pod();
    assert_eq!(
        *container(pod, "closte-sidecar"),
        *rendered_container,
        "examples/wordpress/deployment.yaml's sidecar is not what the chart renders"
    );
    for rendered in volumes.as_array().unwrap() {
        let name = rendered["name"].as_str().unwrap();
        assert_eq!(
            volume(pod, name),
            *rendered,
            "examples/wordpress/deployment.yaml's volume {name} is not what the chart renders"
        );
    }
    assert_kubernetes_credentials_in_the_sidecar_only(pod, "examples/wordpress/deployment.yaml");
}

/// The README's pod, in short, says the same as the example.
fn the_readmes_pod_says_the_same(example: &Example, volumes: &serde_json::Value) {
    let readme = std::fs::read_to_string(common::repo_root().join("README.md")).unwrap();
    let snippet = readme
        .split_once("What the WordPress pod needs")
        .and_then(|(_, after)| after.split_once("```yaml\n"))
        .and_then(|(_, after)| after.split_once("```"))
        .expect("the README's WordPress pod snippet")
        .0;
    let readme_pod: serde_json::Value = serde_yaml::from_str(snippet).unwrap();
    let readme_pod = &readme_pod["spec"];
    assert_kubernetes_credentials_in_the_sidecar_only(readme_pod, "the README's pod");
    for rendered in volumes.as_array().unwrap() {
        let name = rendered["name"].as_str().unwrap();
        assert_eq!(
            volume(readme_pod, name),
            *rendered,
            "the README's volume {name} is not what the chart renders"
        );
    }
    assert_eq!(
        container(readme_pod, "closte-sidecar")["volumeMounts"],
        container(example.pod(), "closte-sidecar")["volumeMounts"],
        "the README's sidecar mounts are not what the chart renders"
    );
}

/// The chart installed into `release_ns` with the example's values renders
/// the ServiceAccount (and its RoleBinding), the mu-plugin ConfigMap with
/// every key the WordPress container mounts, and the token Secret's name the
/// example mounts; the API server accepts both. Returns the rendered chart.
fn the_example_mounts_what_the_chart_renders(example: &Example, release_ns: &str) {
    let pod = example.pod();
    let values_file = example.dir.join("values.yaml");
    let rendered = ok(
        template(release_ns, &["-f", values_file.to_str().unwrap()]),
        "helm template with the example values",
    );
    let objects: Vec<serde_json::Value> = serde_yaml::Deserializer::from_str(&rendered)
        .map(|doc| serde_json::Value::deserialize(doc).unwrap())
        .filter(|doc| !doc.is_null())
        .collect();
    let in_wordpress = |kind: &str, name: &str| {
        objects.iter().find(|o| {
            o["kind"] == kind
                && o["metadata"]["name"] == name
                && o["metadata"]["namespace"] == "wordpress"
        })
    };
    let account = pod["serviceAccountName"].as_str().unwrap();
    assert!(
        in_wordpress("ServiceAccount", account).is_some(),
        "{account}"
    );
    assert!(in_wordpress("RoleBinding", account).is_some(), "{account}");
    let config_map = volume(pod, "closte-mu-plugin")["configMap"]["name"].clone();
    let plugin = in_wordpress("ConfigMap", config_map.as_str().unwrap())
        .expect("the mu-plugin ConfigMap the example mounts is not rendered");
    for mount in container(pod, "wordpress")["volumeMounts"]
        .as_array()
        .unwrap()
    {
        if let Some(key) = mount["subPath"].as_str() {
            assert!(
                plugin["data"][key].is_string(),
                "no key {key} in the ConfigMap"
            );
        }
    }
    assert_eq!(
        volume(pod, "closte-sidecar-token")["secret"]["secretName"],
        "closte-sidecar-token"
    );

    server_dry_run(&rendered, "the chart with examples/wordpress/values.yaml");
    server_dry_run(
        &std::fs::read_to_string(example.dir.join("deployment.yaml")).unwrap(),
        "examples/wordpress/deployment.yaml",
    );
}

/// A pod of the example's template as the API server admits it: its
/// ServiceAccount admission adds no token to WordPress, and the modes are
/// 0440. Without automountServiceAccountToken: false it would (which shows
/// the check can fail).
fn the_admitted_pod_gives_wordpress_no_token(example: &Example) {
    let pod = example.pod();
    let account = pod["serviceAccountName"].as_str().unwrap();
    let _ = common::kubectl(&["create", "serviceaccount", account, "-n", "wordpress"]);
    let stored = admitted(pod);
    let wordpress = mount_paths(&stored, "wordpress");
    assert!(
        !wordpress.iter().any(|p| p.starts_with("/var/run/secrets")),
        "{wordpress:?}"
    );
    assert!(mount_paths(&stored, "closte-sidecar").contains(&SERVICE_ACCOUNT_PATH.to_owned()));
    for volume in stored["volumes"].as_array().unwrap() {
        if volume["name"] == "closte-sidecar-token" {
            assert_eq!(volume["secret"]["defaultMode"], 0o440, "{volume}");
        }
        if volume["name"] == "closte-sidecar-kube-api" {
            assert_eq!(volume["projected"]["defaultMode"], 0o440, "{volume}");
        }
    }
    let mut automounted = pod.clone();
    automounted
        .as_object_mut()
        .unwrap()
        .remove("automountServiceAccountToken");
    let wordpress = mount_paths(&admitted(&automounted), "wordpress");
    assert!(
        wordpress.contains(&SERVICE_ACCOUNT_PATH.to_owned()),
        "the API server no longer mounts a token by default: {wordpress:?}"
    );
}

/// `examples/wordpress/`: the chart's values for a WordPress namespace and a
/// WordPress Deployment whose sidecar container and volumes are exactly what
/// the chart's named templates render for them, whose mounts find the chart's
/// ServiceAccount and mu-plugin ConfigMap, which gives Kubernetes credentials
/// to the sidecar alone (the README's pod too), and which the API server
/// accepts, its pod without a token for WordPress.
#[tokio::test]
async fn the_wordpress_example_is_what_the_chart_renders() {
    let client = common::client().await;
    let release_ns = common::namespace(&client, "chart-wp-example").await;
    let _ = common::kubectl(&["create", "namespace", "wordpress"]);
    let example = Example::load();
    let (container, volumes) = sidecar_templates(&example.values);
    the_examples_sidecar_is_rendered(&example, &container, &volumes);
    the_readmes_pod_says_the_same(&example, &volumes);
    the_example_mounts_what_the_chart_renders(&example, &release_ns);
    the_admitted_pod_gives_wordpress_no_token(&example);
}
