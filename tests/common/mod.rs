//! Shared harness of the integration tests: one real control plane per test
//! binary, a client for it, a namespace per test, the CRD installed. The
//! binary runs as a process through [`process::Launch`]; waiting is
//! [`wait::eventually`].
#![allow(dead_code)] // each test binary uses a different part

pub mod image;
pub mod names;
pub mod node;
pub mod operator;
pub mod process;
pub mod proxy;
pub mod setup;
pub mod sidecar;
pub mod sim;
pub mod wait;
pub mod wordpress;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use closte_operator::api::{MappedDomain, MappedDomainSpec, SecretKeyRef};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, Config, CustomResourceExt};

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The kubeconfig of the control plane the tests run against.
///
/// `KUBECONFIG`, when set, names an existing control plane; it must be on a
/// loopback address unless `CLOSTE_TEST_ALLOW_REMOTE_CLUSTER=1`, so a shell
/// pointed at a real cluster never gets test objects. Otherwise a fresh one is
/// started (built on first use) and stopped when this test process exits.
pub fn kubeconfig() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| match std::env::var_os("KUBECONFIG") {
        Some(path) if !path.is_empty() => {
            let path = PathBuf::from(path);
            refuse_remote(&path);
            path
        }
        _ => start_control_plane(),
    })
}

fn refuse_remote(path: &Path) {
    if std::env::var("CLOSTE_TEST_ALLOW_REMOTE_CLUSTER").as_deref() == Ok("1") {
        return;
    }
    let config = Kubeconfig::read_from(path)
        .unwrap_or_else(|e| panic!("cannot read KUBECONFIG {}: {e}", path.display()));
    for cluster in config.clusters {
        let server = cluster.cluster.and_then(|c| c.server).unwrap_or_default();
        let local = ["https://127.0.0.1:", "https://localhost:", "https://[::1]:"]
            .iter()
            .any(|p| server.starts_with(p));
        assert!(
            local,
            "KUBECONFIG names cluster {server}, which is not on this machine; the tests create \
             and delete objects. Unset KUBECONFIG to let them start their own control plane, or \
             set CLOSTE_TEST_ALLOW_REMOTE_CLUSTER=1."
        );
    }
}

fn start_control_plane() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let name = exe.file_stem().unwrap().to_string_lossy().into_owned();
    let dir = repo_root()
        .join("target/controlplane-tests")
        .join(format!("{name}-{}", std::process::id()));
    start_control_plane_in(&dir)
}

/// Starts a control plane with its state in `dir`, stopped when this process
/// exits; returns its kubeconfig.
pub fn start_control_plane_in(dir: &Path) -> PathBuf {
    start_control_plane_with(dir, &[])
}

/// [`start_control_plane_in`] with more options of `controlplane.sh up`
/// (`--node`).
pub fn start_control_plane_with(dir: &Path, options: &[&str]) -> PathBuf {
    let script = repo_root().join("tests/controlplane/controlplane.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg("up")
        .arg(dir)
        .arg("--watch")
        .arg(std::process::id().to_string())
        .args(options)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "could not start the local control plane (kube-apiserver + etcd).\n\
         It is built from the Go module proxy on first use: it needs `go`, `openssl`, `curl`\n\
         and network access to the proxy; `make controlplane` builds it on its own.\n\
         --- controlplane.sh said ---\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join("kubeconfig")
}

pub async fn client() -> Client {
    client_for(kubeconfig()).await
}

/// A client for the control plane of this kubeconfig.
pub async fn client_for(path: &Path) -> Client {
    let kubeconfig = Kubeconfig::read_from(path).expect("readable kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("valid kubeconfig");
    Client::try_from(config).expect("client")
}

/// Installs (server-side apply) the generated CRD and waits until it is Established.
pub async fn install_crd(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = MappedDomain::crd();
    let name = crd.metadata.name.clone().unwrap();
    crds.patch(
        &name,
        &PatchParams::apply("closte-operator-tests").force(),
        &Patch::Apply(&crd),
    )
    .await
    .expect("apply CRD");
    let established = await_condition(crds, &name, conditions::is_crd_established());
    tokio::time::timeout(Duration::from_secs(30), established)
        .await
        .expect("CRD established within 30s")
        .expect("watch CRD");
}

/// A fresh namespace for one test; its name starts with `prefix`. Left in
/// place: the control plane (no namespace controller) goes away as a whole.
pub async fn namespace(client: &Client, prefix: &str) -> String {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": { "generateName": format!("{prefix}-") }
    }))
    .unwrap();
    let created = namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
    created.metadata.name.unwrap()
}

/// Runs the machine's kubectl against the test control plane.
pub fn kubectl(args: &[&str]) -> std::process::Output {
    Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", kubeconfig())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run kubectl ({e}); install it, e.g. apt-get install kubernetes-client")
        })
}

/// kubectl (as the cluster admin) with `input` on its standard input.
pub fn kubectl_stdin(args: &[&str], input: &str) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut kubectl = Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", kubeconfig())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run kubectl ({e}); install it, e.g. apt-get install kubernetes-client")
        });
    kubectl
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    kubectl.wait_with_output().unwrap()
}

/// The helm binary (built once per version by `tests/tools/helm.sh`).
pub fn helm_binary() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let out = Command::new("bash")
            .arg(repo_root().join("tests/tools/helm.sh"))
            .output()
            .expect("run tests/tools/helm.sh");
        assert!(
            out.status.success(),
            "helm is missing and could not be built (make helm):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
    .clone()
}

/// The standard output of a command that must have succeeded; otherwise
/// fails with both its outputs.
pub fn succeeded(out: std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `git ARGS` run in `dir`, which must succeed; its trimmed output.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(args)
        .env("TZ", "UTC")
        .current_dir(dir)
        .output()
        .expect("run git");
    succeeded(out, &format!("git {}", args.join(" ")))
        .trim()
        .to_owned()
}

/// A kubeconfig (written to `path`) for the test control plane that acts
/// with a fresh token (TokenRequest, one hour) of the ServiceAccount
/// `account` in `namespace`, as a pod of it would, or whoever stole its token.
pub async fn service_account_kubeconfig(
    admin: &Client,
    namespace: &str,
    account: &str,
    path: &Path,
) {
    use k8s_openapi::api::authentication::v1::TokenRequest;
    use k8s_openapi::api::core::v1::ServiceAccount;
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), namespace);
    let request: TokenRequest =
        serde_json::from_value(serde_json::json!({"spec": {"expirationSeconds": 3600}})).unwrap();
    let token = accounts
        .create_token_request(account, &PostParams::default(), &request)
        .await
        .unwrap()
        .status
        .unwrap()
        .token;
    let original = std::fs::read_to_string(kubeconfig()).unwrap();
    let field = |name: &str| {
        original
            .lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in the test kubeconfig"))
            .to_owned()
    };
    let (server, ca) = (field("server: "), field("certificate-authority: "));
    std::fs::write(
        path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: {server}, certificate-authority: {ca}}}\n\
             users:\n- name: {account}\n  user: {{token: {token}}}\ncontexts:\n- name: c\n  context: {{cluster: c, user: {account}, namespace: {namespace}}}\n\
             current-context: c\n"
        ),
    )
    .unwrap();
}

/// The spec of a MappedDomain for `domain` with every other field unset; set
/// others with struct update syntax (typed, so a misspelt field cannot pass
/// silently).
pub fn spec(domain: &str) -> MappedDomainSpec {
    MappedDomainSpec {
        domain: domain.into(),
        ..MappedDomainSpec::default()
    }
}

/// A Secret `name` holding `key` under `apiKey`, as a MappedDomain's
/// `credentialsRef` names it.
pub fn key_secret(name: &str, key: &str) -> Secret {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "stringData": {"apiKey": key},
    }))
    .unwrap()
}

/// Creates [`key_secret`] `name` in `namespace` and returns the reference a
/// MappedDomain's `spec.credentialsRef` holds to it.
pub async fn create_key_secret(
    client: &Client,
    namespace: &str,
    name: &str,
    key: &str,
) -> Option<SecretKeyRef> {
    Api::<Secret>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &key_secret(name, key))
        .await
        .unwrap_or_else(|e| panic!("create Secret {namespace}/{name}: {e}"));
    Some(SecretKeyRef {
        name: name.into(),
        key: "apiKey".into(),
    })
}

/// A MappedDomain named `name`; its namespace comes from the Api it is created with.
pub fn mapped_domain(name: &str, spec: MappedDomainSpec) -> MappedDomain {
    MappedDomain::new(name, spec)
}

/// Creates `name` with `spec` and returns what the API server stored.
pub async fn create(api: &Api<MappedDomain>, name: &str, spec: MappedDomainSpec) -> MappedDomain {
    api.create(&PostParams::default(), &mapped_domain(name, spec))
        .await
        .unwrap_or_else(|e| panic!("create {name}: {e}"))
}

/// Runs `controlplane.sh ARGS...` (build, up, down, stop-apiserver, ...),
/// fails with what it said unless it succeeds, and returns what it printed.
pub fn controlplane(args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new("bash")
        .arg(repo_root().join("tests/controlplane/controlplane.sh"))
        .args(args)
        .output()
        .expect("run controlplane.sh");
    assert!(
        out.status.success(),
        "controlplane.sh {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A program built with the control plane (`kstatus`), from its cache.
pub fn controlplane_tool(name: &str) -> PathBuf {
    PathBuf::from(controlplane(&["build".as_ref()]).trim()).join(name)
}
