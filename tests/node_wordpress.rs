//! The WordPress example for real, on a node: WordPress from Debian's
//! packages as a pod (`make wordpress-image`), built from
//! `examples/wordpress/deployment.yaml` with the chart's sidecar container
//! and the mu-plugin mounted from the chart's ConfigMap, its database a
//! MariaDB on the node's address. A site created in that WordPress becomes a
//! MappedDomain that ends `done`; inside the running WordPress container
//! there is no Kubernetes credential.
//!
//! The node and the release are `common::node`'s (root, the node's packages).

mod common;

use std::path::Path;

use closte_operator::api::{MappedDomain, Stage};
use common::image::wordpress_image;
use common::node::{
    KEY, NODE_IP, Node, Release, built_image, controller_processes, current_chart, progress,
};
use common::sim::scratch;
use common::wait::eventually;
use common::wordpress::MariaDb;
use common::{create_key_secret, succeeded as ok};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, ResourceQuota, Secret};
use kube::api::{Api, ListParams, PostParams};
use serde_json::{Value, json};

/// The network's main site (DOMAIN_CURRENT_SITE); requests name it in Host.
const NETWORK: &str = "wordpress.test";
const DATABASE_PORT: u16 = 3306;

/// The example's Deployment, for this node: our WordPress image and its
/// database, the multisite settings, the test helpers (no mail, wp-tool.php)
/// and the sidecar re-checking every 10 s; WordPress itself as locked down as
/// the sidecar (the namespace enforces the restricted level).
fn deployment(namespace: &str, image: &str) -> Deployment {
    let text =
        std::fs::read_to_string(common::repo_root().join("examples/wordpress/deployment.yaml"))
            .unwrap();
    let mut d: Value = serde_yaml::from_str(&text).expect("the example is YAML");
    octal_modes(&mut d);
    d["metadata"]["namespace"] = json!(namespace);
    let spec = &mut d["spec"]["template"]["spec"];
    let wordpress = &mut spec["containers"][0];
    assert_eq!(wordpress["name"], "wordpress");
    wordpress["image"] = json!(image);
    wordpress["imagePullPolicy"] = json!("Never");
    let extra = wordpress["env"][0]["value"].as_str().unwrap().to_owned();
    assert_eq!(wordpress["env"][0]["name"], "WORDPRESS_CONFIG_EXTRA");
    let multisite = format!(
        "if ( ! defined( 'CLOSTE_E2E_INSTALLING' ) ) {{\n\
         define( 'WP_ALLOW_MULTISITE', true ); define( 'MULTISITE', true );\n\
         define( 'SUBDOMAIN_INSTALL', false ); define( 'DOMAIN_CURRENT_SITE', '{NETWORK}' );\n\
         define( 'PATH_CURRENT_SITE', '/' ); define( 'SITE_ID_CURRENT_SITE', 1 ); define( 'BLOG_ID_CURRENT_SITE', 1 );\n\
         }}\n\
         define( 'DISABLE_WP_CRON', true ); define( 'WP_HTTP_BLOCK_EXTERNAL', true );\n\
         define( 'AUTOMATIC_UPDATER_DISABLED', true ); define( 'DISALLOW_FILE_MODS', true );\n"
    );
    wordpress["env"] = json!([
        {"name": "WORDPRESS_DB_HOST", "value": format!("{NODE_IP}:{DATABASE_PORT}")},
        {"name": "WORDPRESS_DB_USER", "value": "wp"},
        {"name": "WORDPRESS_DB_PASSWORD", "value": "wp"},
        {"name": "WORDPRESS_DB_NAME", "value": "wordpress"},
        {"name": "WORDPRESS_CONFIG_EXTRA", "value": multisite + &extra},
    ]);
    wordpress["securityContext"] = json!({
        "runAsNonRoot": true, "runAsUser": 33, "runAsGroup": 33,
        "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"},
    });
    let mounts = wordpress["volumeMounts"].as_array_mut().unwrap();
    mounts.push(json!({"name": "tmp", "mountPath": "/tmp"}));
    mounts.push(json!({"name": "closte-e2e", "mountPath": "/closte-e2e", "readOnly": true}));
    mounts.push(json!({
        "name": "closte-e2e", "mountPath": "/var/www/html/wp-content/mu-plugins/closte-e2e.php",
        "subPath": "closte-e2e.php", "readOnly": true,
    }));
    let sidecar = &mut spec["containers"][1];
    assert_eq!(sidecar["name"], "closte-sidecar");
    for arg in sidecar["args"].as_array_mut().unwrap() {
        if arg
            .as_str()
            .is_some_and(|a| a.starts_with("--check-interval="))
        {
            *arg = json!("--check-interval=10s");
        }
    }
    let volumes = spec["volumes"].as_array_mut().unwrap();
    volumes.push(json!({"name": "tmp", "emptyDir": {}}));
    volumes.push(json!({"name": "closte-e2e", "configMap": {"name": "closte-e2e"}}));
    serde_json::from_value(d).expect("a Deployment")
}

/// File modes written as YAML 1.1 octal (`0440`), as kubectl reads them;
/// YAML 1.2 parsers keep them as strings.
fn octal_modes(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                let octal = v.as_str().and_then(|t| {
                    t.strip_prefix('0')
                        .and_then(|digits| i64::from_str_radix(digits, 8).ok())
                });
                match octal {
                    Some(mode) if key == "defaultMode" || key == "mode" => *v = json!(mode),
                    _ => octal_modes(v),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(octal_modes),
        _ => {}
    }
}

/// The test helpers as a ConfigMap: the e2e mu-plugin and wp-tool.php.
fn helpers(namespace: &str) -> ConfigMap {
    let dir = common::repo_root().join("tests/wordpress");
    let read = |p: &str| std::fs::read_to_string(dir.join(p)).unwrap();
    serde_json::from_value(json!({
        "metadata": {"name": "closte-e2e", "namespace": namespace},
        "data": {
            "closte-e2e.php": read("mu-plugins/closte-e2e.php"),
            "wp-tool.php": read("wp-tool.php"),
        },
    }))
    .unwrap()
}

struct WordPressPod<'a> {
    release: &'a Release<'a>,
    namespace: String,
}

impl WordPressPod<'_> {
    /// `wp-tool.php COMMAND ARGS` run in the WordPress container
    /// (`kubectl exec`): WordPress's own PHP, files, settings and sidecar.
    fn tool(&self, command: &str, args: Value) -> Value {
        let out = self.release.node.kubectl(&[
            "exec",
            "-n",
            &self.namespace,
            "deployment/wordpress",
            "-c",
            "wordpress",
            "--",
            "php",
            "/closte-e2e/wp-tool.php",
            "/var/www/html",
            NETWORK,
            command,
            &args.to_string(),
        ]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "wp-tool.php {command} in the pod failed: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(stdout.lines().last().unwrap_or_default())
            .unwrap_or_else(|e| panic!("wp-tool.php {command} answered {stdout}: {e}"))
    }

    async fn pod(&self) -> Pod {
        let pods: Api<Pod> = Api::namespaced(self.release.node.client.clone(), &self.namespace);
        eventually(180, "the WordPress pod Ready", || async {
            let all = pods.list(&ListParams::default()).await.ok()?.items;
            all.into_iter().find(|p| {
                p.metadata.deletion_timestamp.is_none()
                    && p.status.as_ref().is_some_and(|s| {
                        s.conditions
                            .iter()
                            .flatten()
                            .any(|c| c.type_ == "Ready" && c.status == "True")
                    })
            })
        })
        .await
    }
}

/// The host's pid of the WordPress container's PHP server in pod `uid`.
fn wordpress_process(uid: &str) -> u32 {
    let ours = |pid: &u32| {
        std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .is_ok_and(|c| c.contains(&format!("pod{uid}")))
    };
    let controllers = controller_processes();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(ours)
        .filter(|pid| !controllers.contains(pid))
        .find(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            cmdline.split(|b| *b == 0).any(|a| a == b"-S")
        })
        .expect("the WordPress container's php -S")
}

/// Every file under `dir`, as the process sees it.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => found.extend(files(&path)),
                Ok(t) if t.is_file() => found.push(path),
                _ => {}
            }
        }
    }
    found
}

/// What a stranger who runs code in WordPress finds: no service account
/// token where clients look, no Kubernetes token in any secret or projected
/// mount (a JWT), only the sidecar's shared token.
fn holds_no_kubernetes_token(pid: u32) {
    let root = std::path::PathBuf::from(format!("/proc/{pid}/root"));
    assert!(
        !root.join("var/run/secrets/kubernetes.io").exists(),
        "WordPress sees /var/run/secrets/kubernetes.io"
    );
    let mounts = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    for line in mounts.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (point, kind) = (fields[4], fields[fields.len() - 3]);
        if kind != "tmpfs" || point.starts_with("/dev") || point == "/tmp" {
            continue;
        }
        for file in files(&root.join(point.trim_start_matches('/'))) {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            assert!(
                !text.trim_start().starts_with("eyJ"),
                "{} in the WordPress container holds a token (a JWT)",
                file.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_site_created_in_a_wordpress_pod_ends_done_and_wordpress_holds_no_token() {
    progress("the images: closte-operator, and WordPress from Debian's packages");
    let archive = scratch("node-wordpress-image").join("closte-wordpress.oci.tar");
    let image = wordpress_image(&archive);
    progress("control plane and node");
    let node = Node::up().await;
    node.import(&built_image());
    node.import(&archive);
    progress("MariaDB on the node's address");
    let _db = MariaDb::start_listening(
        &scratch("node-wordpress-db"),
        format!("{NODE_IP}:{DATABASE_PORT}").parse().unwrap(),
    )
    .await;

    progress("helm install, with a WordPress namespace for the sidecar");
    let namespace = node
        .namespace(
            "wordpress",
            json!({"pod-security.kubernetes.io/enforce": "restricted"}),
        )
        .await;
    let release = Release::install_with(
        &node,
        current_chart(),
        &[
            format!("sidecar.namespaces={{{namespace}}}"),
            "sidecar.credentialsSecret=closte-api-key".to_owned(),
        ],
    )
    .await;
    create_key_secret(&node.client, &namespace, "closte-api-key", KEY).await;
    let secrets: Api<Secret> = Api::namespaced(node.client.clone(), &namespace);
    let token: Secret = serde_json::from_value(json!({
        "metadata": {"name": "closte-sidecar-token"},
        "stringData": {"token": "node-wordpress-sidecar-token-0123456789abcdef"},
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &token)
        .await
        .unwrap();
    let config_maps: Api<ConfigMap> = Api::namespaced(node.client.clone(), &namespace);
    config_maps
        .create(&PostParams::default(), &helpers(&namespace))
        .await
        .unwrap();

    // The chart's quota on MappedDomains refuses every write until the quota
    // controller counts the new resource (its discovery runs every 30 s);
    // WordPress would queue the site's domain and retry on WP-Cron.
    let quotas: Api<ResourceQuota> = Api::namespaced(node.client.clone(), &namespace);
    eventually(90, "the MappedDomain quota counted", || async {
        let quota = quotas.get("closte-operator-mappeddomains").await.ok()?;
        let used = quota.status?.used?;
        used.contains_key("count/mappeddomains.closte-operator.io")
            .then_some(())
    })
    .await;

    progress("the WordPress Deployment");
    let deployments: Api<Deployment> = Api::namespaced(node.client.clone(), &namespace);
    deployments
        .create(&PostParams::default(), &deployment(&namespace, &image))
        .await
        .expect("the restricted level admits the WordPress pod");
    let wordpress = WordPressPod {
        release: &release,
        namespace: namespace.clone(),
    };
    let pod = wordpress.pod().await;

    progress("a multisite network installed, a site created in it");
    let installed = wordpress.tool(
        "install",
        json!({"user": "admin", "email": "admin@example.com", "password": "node-password"}),
    );
    assert!(
        installed["user_id"].as_u64().is_some(),
        "install: {installed}"
    );
    let domain = "shop.customer-node.example";
    let site = wordpress.tool("create-site", json!({"domain": domain, "title": "Shop"}));
    assert!(site["id"].as_u64().is_some(), "create-site: {site}");

    progress("its MappedDomain, written by the sidecar, ends done");
    let mds: Api<MappedDomain> = Api::namespaced(node.client.clone(), &namespace);
    let done = eventually(
        180,
        &format!("a MappedDomain for {domain} done"),
        || async {
            let all = mds.list(&ListParams::default()).await.ok()?.items;
            all.into_iter().find(|md| {
                md.spec.domain == domain
                    && md
                        .status
                        .as_ref()
                        .is_some_and(|s| s.stage == Some(Stage::Done) && s.certificate.is_some())
            })
        },
    )
    .await;
    assert_eq!(
        done.spec.credentials_ref.as_ref().map(|r| r.name.as_str()),
        Some("closte-api-key"),
        "the sidecar names its namespace's Secret"
    );
    let adds = release.adds().await;
    assert_eq!(adds.get(domain), Some(&1), "{adds:?}");

    progress("no Kubernetes credential inside the WordPress container");
    let uid = pod.metadata.uid.clone().unwrap();
    holds_no_kubernetes_token(wordpress_process(&uid));
    let spec = pod.spec.as_ref().unwrap();
    assert_eq!(spec.automount_service_account_token, Some(false));
    let env = node.kubectl(&[
        "exec",
        "-n",
        &namespace,
        "deployment/wordpress",
        "-c",
        "wordpress",
        "--",
        "php",
        "-r",
        "echo json_encode(is_readable('/var/run/secrets/kubernetes.io/serviceaccount/token'));",
    ]);
    ok(env.clone(), "kubectl exec php -r");
    assert_eq!(String::from_utf8_lossy(&env.stdout), "false");
    release.logs_are_clean();
}
