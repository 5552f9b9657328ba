//! The Helm chart against a real API server: lint, the values schema, the
//! rendered manifests validated by the API server, install/upgrade/uninstall
//! (CRD kept), the RBAC of both identities, and the controller run with a
//! token of the chart's ServiceAccount and the chart's own arguments taking a
//! domain through its whole life.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use closte_operator::api::{MappedDomain, Stage};
use common::operator::{eventually, free_port};
use common::sim::{Simulator, scratch};
use common::{create, spec};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, PostParams};
use serde::Deserialize;
use serde_json::json;

const KEY: &str = "chart-key-3a7f";
const KUBE_VERSION: &str = "1.33.0";

fn chart() -> PathBuf {
    common::repo_root().join("charts/closte-operator")
}

fn helm(args: &[&str]) -> Output {
    let out = Command::new("bash")
        .arg(common::repo_root().join("tests/tools/helm.sh"))
        .output()
        .expect("run tests/tools/helm.sh");
    assert!(
        out.status.success(),
        "helm is missing and could not be built (make helm):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let helm = String::from_utf8(out.stdout).unwrap();
    Command::new(helm.trim())
        .args(args)
        .env("KUBECONFIG", common::kubeconfig())
        .output()
        .expect("run helm")
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
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
    use std::io::Write;
    let mut apply = Command::new("kubectl")
        .args(["apply", "--dry-run=server", "-f", "-"])
        .env("KUBECONFIG", common::kubeconfig())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    apply
        .stdin
        .take()
        .unwrap()
        .write_all(manifests.as_bytes())
        .unwrap();
    let out = apply.wait_with_output().unwrap();
    ok(out, &format!("server-side dry run of {what}"));
}

/// `kubectl auth can-i` as a ServiceAccount (`resource/subresource` for a
/// subresource): true when allowed.
fn can(account: &str, verb: &str, resource: &str, namespace: &str) -> bool {
    let mut args = vec!["auth", "can-i", verb, "-n", namespace, "--as", account];
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

#[tokio::test]
async fn install_rbac_a_domain_with_the_charts_identity_upgrade_and_uninstall() {
    let client = common::client().await;
    let release_ns = common::namespace(&client, "closte-system").await;
    let wp = common::namespace(&client, "wp").await;
    let sim = Simulator::start_with_probes("chart", &["--api-key", KEY, "--issue-delay", "1s"]);
    let chart = chart();
    let wp_list = format!("sidecar.namespaces={{{wp}}}");
    let dns = format!("checks.dnsServer={}", sim.dns.unwrap());
    let https = format!("checks.httpsPort={}", sim.https.unwrap().port());
    let api_url = format!("closte.apiUrl={}", sim.api);
    let key = format!("closte.apiKey={KEY}");
    let install = [
        "install",
        "rel",
        chart.to_str().unwrap(),
        "-n",
        &release_ns,
        "--set",
        &key,
        "--set",
        &api_url,
        "--set",
        &dns,
        "--set",
        &https,
        "--set",
        "checks.expectedTargets={127.0.0.1}",
        "--set",
        &wp_list,
    ];
    ok(helm(&install), "helm install");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    eventually(30, "the CRD to be established", || async {
        let crd = crds.get("mappeddomains.closte-operator.io").await.ok()?;
        crd.status?
            .conditions?
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
            .then_some(())
    })
    .await;

    // the RBAC matrix of both identities
    let controller = format!("system:serviceaccount:{release_ns}:rel-closte-operator");
    let sidecar = format!("system:serviceaccount:{wp}:closte-operator-sidecar");
    for (who, verb, resource, namespace, allowed) in [
        (
            &controller,
            "list",
            "mappeddomains.closte-operator.io",
            wp.as_str(),
            true,
        ),
        (
            &controller,
            "watch",
            "mappeddomains.closte-operator.io",
            "default",
            true,
        ),
        (
            &controller,
            "patch",
            "mappeddomains.closte-operator.io",
            wp.as_str(),
            true,
        ),
        (
            &controller,
            "patch",
            "mappeddomains.closte-operator.io/status",
            wp.as_str(),
            true,
        ),
        (
            &controller,
            "update",
            "mappeddomains.closte-operator.io/finalizers",
            wp.as_str(),
            true,
        ),
        (
            &controller,
            "create",
            "events.events.k8s.io",
            wp.as_str(),
            true,
        ),
        (&controller, "get", "secrets", wp.as_str(), true),
        (
            &controller,
            "update",
            "leases.coordination.k8s.io",
            release_ns.as_str(),
            true,
        ),
        (
            &controller,
            "create",
            "mappeddomains.closte-operator.io",
            wp.as_str(),
            false,
        ),
        (
            &controller,
            "delete",
            "mappeddomains.closte-operator.io",
            wp.as_str(),
            false,
        ),
        (&controller, "list", "secrets", wp.as_str(), false),
        (&controller, "watch", "secrets", wp.as_str(), false),
        (&controller, "get", "configmaps", wp.as_str(), false),
        (
            &controller,
            "update",
            "leases.coordination.k8s.io",
            wp.as_str(),
            false,
        ),
        (&controller, "create", "pods", release_ns.as_str(), false),
        (
            &sidecar,
            "create",
            "mappeddomains.closte-operator.io",
            wp.as_str(),
            true,
        ),
        (
            &sidecar,
            "delete",
            "mappeddomains.closte-operator.io",
            wp.as_str(),
            true,
        ),
        (
            &sidecar,
            "watch",
            "mappeddomains.closte-operator.io",
            wp.as_str(),
            true,
        ),
        (
            &sidecar,
            "create",
            "mappeddomains.closte-operator.io",
            "default",
            false,
        ),
        (
            &sidecar,
            "list",
            "mappeddomains.closte-operator.io",
            release_ns.as_str(),
            false,
        ),
        (
            &sidecar,
            "patch",
            "mappeddomains.closte-operator.io/status",
            wp.as_str(),
            false,
        ),
        (&sidecar, "get", "secrets", wp.as_str(), false),
        (&sidecar, "list", "configmaps", wp.as_str(), false),
    ] {
        assert_eq!(
            can(who, verb, resource, namespace),
            allowed,
            "{who} {verb} {resource} in {namespace}"
        );
    }

    // the controller with the chart's identity and the chart's own arguments
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &release_ns);
    let request: TokenRequest =
        serde_json::from_value(json!({"spec": {"expirationSeconds": 3600}})).unwrap();
    let token = accounts
        .create_token_request("rel-closte-operator", &PostParams::default(), &request)
        .await
        .unwrap()
        .status
        .unwrap()
        .token;
    let original = std::fs::read_to_string(common::kubeconfig()).unwrap();
    let server = original
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .unwrap();
    let ca = original
        .lines()
        .find_map(|l| l.trim().strip_prefix("certificate-authority: "))
        .unwrap();
    let dir = scratch("chart-controller");
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: {server}, certificate-authority: {ca}}}\n\
             users:\n- name: controller\n  user: {{token: {token}}}\ncontexts:\n- name: c\n  context: {{cluster: c, user: controller, namespace: {release_ns}}}\n\
             current-context: c\n"
        ),
    )
    .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &release_ns);
    let deployment = deployments.get("rel-closte-operator").await.unwrap();
    let container = &deployment.spec.unwrap().template.spec.unwrap().containers[0];
    let key_file = dir.join("api-key");
    std::fs::write(&key_file, KEY).unwrap();
    let port = free_port();
    let args: Vec<String> = container
        .args
        .clone()
        .unwrap()
        .into_iter()
        .map(|arg| match arg.split_once('=') {
            Some(("--api-key-file", _)) => format!("--api-key-file={}", key_file.display()),
            Some(("--metrics-addr", _)) => format!("--metrics-addr=127.0.0.1:{port}"),
            _ => arg,
        })
        .collect();
    assert_eq!(args[0], "controller");
    let log = dir.join("controller.log");
    let mut controller_process = Command::new(env!("CARGO_BIN_EXE_closte-operator"))
        .args(&args)
        .args(["--ca-file", sim.ca.as_ref().unwrap().to_str().unwrap()])
        .env("KUBECONFIG", &kubeconfig)
        .env("RUST_LOG", "info")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mds: Api<MappedDomain> = Api::namespaced(client.clone(), &wp);
    let mut domain = spec("chart.example.com");
    domain.check_interval = Some("10s".into());
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
    assert_eq!(sim.aliases().await, ["chart.example.com"]);
    mds.delete("chart", &DeleteParams::default()).await.unwrap();
    eventually(30, "the alias to be removed", || async {
        sim.aliases().await.is_empty().then_some(())
    })
    .await;
    let _ = controller_process.kill();
    let _ = controller_process.wait();
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(!log_text.contains(KEY), "the key is in the log");
    assert!(
        !log_text.contains("Forbidden") && !log_text.contains("forbidden"),
        "RBAC refused the controller:\n{log_text}"
    );

    // upgrade: a changed value reaches the Deployment
    let mut upgrade = install.to_vec();
    upgrade[0] = "upgrade";
    upgrade.extend(["--set", "controller.concurrency=8"]);
    ok(helm(&upgrade), "helm upgrade");
    let args = deployments
        .get("rel-closte-operator")
        .await
        .unwrap()
        .spec
        .unwrap()
        .template
        .spec
        .unwrap()
        .containers[0]
        .args
        .clone()
        .unwrap();
    assert!(args.contains(&"--concurrency=8".to_string()), "{args:?}");

    // uninstall keeps the CRD, and with it the MappedDomains
    create(&mds, "survivor", spec("survivor.example.com")).await;
    ok(
        helm(&["uninstall", "rel", "-n", &release_ns]),
        "helm uninstall",
    );
    assert!(
        crds.get_opt("mappeddomains.closte-operator.io")
            .await
            .unwrap()
            .is_some(),
        "the CRD was deleted"
    );
    assert!(mds.get_opt("survivor").await.unwrap().is_some());
    assert!(
        deployments
            .get_opt("rel-closte-operator")
            .await
            .unwrap()
            .is_none()
    );
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

/// The named template `closte-operator.sidecarContainer` for these values of
/// this chart, rendered the way a WordPress chart depending on it includes it.
fn sidecar_container(values: &serde_json::Value) -> serde_json::Value {
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
containers:
{{- include "closte-operator.sidecarContainer" (dict "Values" $sub.Values "Chart" $sub.Chart) | nindent 2 }}
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
    rendered["containers"][0].clone()
}

/// `examples/wordpress/`: the chart's values for a WordPress namespace and a
/// WordPress Deployment whose sidecar container is exactly what the chart's
/// named template renders for them, whose mounts find the chart's ServiceAccount
/// and mu-plugin ConfigMap, and which the API server accepts.
#[tokio::test]
async fn the_wordpress_example_is_what_the_chart_renders() {
    let client = common::client().await;
    let release_ns = common::namespace(&client, "chart-wp-example").await;
    let _ = common::kubectl(&["create", "namespace", "wordpress"]);
    let example = common::repo_root().join("examples/wordpress");
    let values = yaml_file(&example.join("values.yaml"));
    let deployment = yaml_file(&example.join("deployment.yaml"));
    let pod = &deployment["spec"]["template"]["spec"];
    let containers = pod["containers"].as_array().unwrap();
    let sidecar = containers
        .iter()
        .find(|c| c["name"] == "closte-sidecar")
        .expect("no closte-sidecar container in the example");
    assert_eq!(
        *sidecar,
        sidecar_container(&values),
        "examples/wordpress/deployment.yaml's sidecar is not what the chart renders"
    );

    let values_file = example.join("values.yaml");
    let rendered = ok(
        template(&release_ns, &["-f", values_file.to_str().unwrap()]),
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
    let volume = |name: &str| {
        pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no volume {name}"))
            .clone()
    };
    let config_map = volume("closte-mu-plugin")["configMap"]["name"].clone();
    let plugin = in_wordpress("ConfigMap", config_map.as_str().unwrap())
        .expect("the mu-plugin ConfigMap the example mounts is not rendered");
    let wordpress = containers
        .iter()
        .find(|c| c["name"] == "wordpress")
        .unwrap();
    for mount in wordpress["volumeMounts"].as_array().unwrap() {
        if let Some(key) = mount["subPath"].as_str() {
            assert!(
                plugin["data"][key].is_string(),
                "no key {key} in the ConfigMap"
            );
        }
    }
    assert_eq!(
        volume("closte-sidecar-token")["secret"]["secretName"],
        "closte-sidecar-token"
    );

    server_dry_run(&rendered, "the chart with examples/wordpress/values.yaml");
    server_dry_run(
        &std::fs::read_to_string(example.join("deployment.yaml")).unwrap(),
        "examples/wordpress/deployment.yaml",
    );
}
