//! The chart on a real node, for the node tests: a control plane with a
//! kubelet (`controlplane.sh up DIR --node`), the image imported into its
//! containerd, a Helm release pointed at the simulator on the node's address,
//! and what the tests watch of it.
//!
//! Needs root and the node's packages (containerd, runc, the CNI plugins,
//! iptables, conntrack: `.ci/run` installs them); one node per machine.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use closte_operator::api::{MappedDomain, MappedDomainSpec, Stage};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Namespace, Pod};
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use tokio::task::JoinHandle;

use super::process::Launch;
use super::sim::{Simulator, scratch};
use super::wait::eventually;
use super::{spec, succeeded as ok};

pub const KEY: &str = "node-key-7e21";

/// The node's address: pods reach this machine's servers there.
pub const NODE_IP: &str = "10.88.0.1";

pub const RELEASE: &str = "rel";

pub const DEPLOYMENT: &str = "rel-closte-operator";

pub const LEASE: &str = "closte-operator";

pub const EXAMPLES: [&str; 3] = [
    "examples/mappeddomain-basic.yaml",
    "examples/mappeddomain-idn.yaml",
    "examples/mappeddomain-wildcard.yaml",
];

/// A control plane with a node, stopped when the test process exits.
pub struct Node {
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub client: Client,
}

impl Node {
    pub async fn up() -> Node {
        assert!(
            Command::new("id")
                .arg("-u")
                .output()
                .is_ok_and(|o| o.stdout == b"0\n"),
            "the node tests need root (containerd, a bridge, iptables)"
        );
        let dir = super::repo_root()
            .join("target/controlplane-tests")
            .join(format!("node-{}", std::process::id()));
        let kubeconfig = super::start_control_plane_with(&dir, &["--node"]);
        let client = super::client_for(&kubeconfig).await;
        Node {
            dir,
            kubeconfig,
            client,
        }
    }

    pub fn import(&self, archive: &Path) {
        super::controlplane(&["import".as_ref(), self.dir.as_os_str(), archive.as_os_str()]);
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .expect("kubectl")
    }

    pub fn helm(&self, args: &[&str]) -> Output {
        Command::new(super::helm_binary())
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .expect("helm")
    }

    pub async fn namespace(&self, prefix: &str, labels: serde_json::Value) -> String {
        let name = super::namespace(&self.client, prefix).await;
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        namespaces
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": labels}})),
            )
            .await
            .unwrap();
        name
    }
}

/// `make image`, and the archive it wrote.
pub fn built_image() -> PathBuf {
    super::image::make_image(None);
    super::image::default_archive()
}

/// The release and what the test watches of it.
pub struct Release<'a> {
    pub node: &'a Node,
    pub sim: Simulator,
    pub namespace: String,
    /// Where the examples' MappedDomains live.
    pub domains: String,
    pub values: Vec<String>,
    /// The chart `helm` installs or upgrades to.
    pub chart: PathBuf,
}

impl<'a> Release<'a> {
    /// `helm install` into a namespace that enforces the restricted level,
    /// pointed at the simulator on the node's address.
    pub async fn install(node: &'a Node) -> Release<'a> {
        Release::install_with(node, current_chart(), &[]).await
    }

    /// [`Release::install`] of `chart` (another release's), with more
    /// `--set` values.
    pub async fn install_with(node: &'a Node, chart: PathBuf, more: &[String]) -> Release<'a> {
        let host: IpAddr = NODE_IP.parse().unwrap();
        let ca = scratch("node-ca").join("ca.pem");
        let sim = Simulator::launch(
            Launch::simulator(scratch("node").join("simulator.log"))
                .serving_checks(&ca)
                .listening_on(host)
                .args(["--api-key", KEY, "--issue-delay", "1s"])
                .arg(format!("--target-ip={NODE_IP}")),
        )
        .await;
        let namespace = node
            .namespace(
                "closte-system",
                json!({"pod-security.kubernetes.io/enforce": "restricted"}),
            )
            .await;
        let domains = node.namespace("shop", json!({})).await;
        let values = [
            format!("closte.apiKey={KEY}"),
            format!("closte.apiUrl={}", sim.api),
            format!("checks.dnsServer={}", sim.dns.unwrap()),
            format!("checks.httpsPort={}", sim.https.unwrap().port()),
            format!("checks.expectedTargets={{{NODE_IP}}}"),
            "leaderElection.leaseDuration=10s".to_owned(),
        ]
        .into_iter()
        .chain(more.iter().cloned())
        .flat_map(|value| ["--set".to_owned(), value])
        .chain([
            "--set-file".to_owned(),
            format!("checks.caBundle={}", ca.display()),
        ])
        .collect();
        let release = Release {
            node,
            sim,
            namespace,
            domains,
            values,
            chart,
        };
        ok(release.helm("install", &[]), "helm install");
        release
    }

    pub fn helm(&self, verb: &str, extra: &[&str]) -> Output {
        let mut args = vec![
            verb,
            RELEASE,
            self.chart.to_str().unwrap(),
            "-n",
            &self.namespace,
        ];
        args.extend(self.values.iter().map(String::as_str));
        args.extend_from_slice(extra);
        self.node.helm(&args)
    }

    pub fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.node.client.clone(), &self.namespace)
    }

    pub fn mapped_domains(&self) -> Api<MappedDomain> {
        Api::namespaced(self.node.client.clone(), &self.domains)
    }

    pub fn lease(&self) -> Api<Lease> {
        Api::namespaced(self.node.client.clone(), &self.namespace)
    }

    /// The controller pods, once both run the current template and are Ready.
    pub async fn ready_pods(&self) -> Vec<Pod> {
        let deployments: Api<Deployment> =
            Api::namespaced(self.node.client.clone(), &self.namespace);
        eventually(
            180,
            "two controller pods Ready, the rollout complete",
            || async {
                let deployment = deployments.get(DEPLOYMENT).await.ok()?;
                let status = deployment.status?;
                let done = status.ready_replicas == Some(2)
                    && status.updated_replicas == Some(2)
                    && status.replicas == Some(2)
                    && status.observed_generation == deployment.metadata.generation;
                if !done {
                    return None;
                }
                let pods = self.pods().list(&ListParams::default()).await.ok()?.items;
                let running: Vec<Pod> = pods
                    .into_iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .collect();
                (running.len() == 2).then_some(running)
            },
        )
        .await
    }

    /// The examples, applied as a user would, end `done` with a certificate,
    /// reconciled by the pod that holds the Lease.
    pub async fn examples_end_done(&self) {
        // the wildcard example names its own key's Secret
        super::create_key_secret(&self.node.client, &self.domains, "closte-api-key", KEY).await;
        for example in EXAMPLES {
            let path = super::repo_root().join(example);
            ok(
                self.node
                    .kubectl(&["apply", "-n", &self.domains, "-f", path.to_str().unwrap()]),
                "kubectl apply",
            );
        }
        self.until_all_done(EXAMPLES.len()).await;
        let holder = self.holder().await.expect("a leader");
        let pods = self.ready_pods().await;
        assert!(
            pods.iter()
                .any(|p| holder.starts_with(&format!("{}-", p.metadata.name.as_ref().unwrap()))),
            "the Lease is held by {holder}, none of the release's pods"
        );
    }

    pub async fn until_all_done(&self, count: usize) -> Vec<MappedDomain> {
        let mds = self.mapped_domains();
        eventually(
            180,
            &format!("{count} MappedDomains done with certificates"),
            || async {
                let all = mds.list(&ListParams::default()).await.ok()?.items;
                let done = all.iter().all(|md| {
                    md.status
                        .as_ref()
                        .is_some_and(|s| s.stage == Some(Stage::Done) && s.certificate.is_some())
                });
                (all.len() == count && done).then_some(all)
            },
        )
        .await
    }

    pub async fn holder(&self) -> Option<String> {
        let lease = self.lease().get(LEASE).await.ok()?;
        lease.spec?.holder_identity.filter(|h| !h.is_empty())
    }

    /// Closte adds per domain, applied or not.
    pub async fn adds(&self) -> BTreeMap<String, usize> {
        let mut adds = BTreeMap::new();
        for request in self.sim.requests().await {
            if request["endpoint"] == "adddomainalias" && request["status"] == 200 {
                let domain = request["domain"].as_str().unwrap_or_default().to_owned();
                *adds.entry(domain).or_default() += 1;
            }
        }
        adds
    }

    /// Closte writes (adds and deletes) so far.
    pub async fn writes(&self) -> u64 {
        self.sim.count("adddomainalias").await + self.sim.count("deletedomainalias").await
    }

    pub async fn until_rolled_out(&self) {
        ok(
            self.node.kubectl(&[
                "rollout",
                "status",
                "-n",
                &self.namespace,
                &format!("deployment/{DEPLOYMENT}"),
                "--timeout=180s",
            ]),
            "kubectl rollout status",
        );
        self.ready_pods().await;
    }

    /// The release's pods exited cleanly: nothing but their own logs say
    /// otherwise, and the key is in no log.
    pub fn logs_are_clean(&self) {
        let logs = self.node.dir.join("node/pod-logs");
        for entry in walk(&logs) {
            let text = std::fs::read_to_string(&entry).unwrap_or_default();
            assert!(!text.contains(KEY), "the key is in {}", entry.display());
            assert!(!text.contains("panicked"), "a panic in {}", entry.display());
        }
    }
}

/// This tree's chart.
pub fn current_chart() -> PathBuf {
    super::repo_root().join("charts/closte-operator")
}

/// What must not happen while a release is restarted or upgraded: a Closte
/// write, a status leaving `done`, a new Warning event.
pub struct Calm {
    writes: u64,
    warnings: usize,
    left_done: Arc<Mutex<Vec<String>>>,
    watch: JoinHandle<()>,
}

impl Release<'_> {
    /// Starts watching for what [`Calm`] rules out.
    pub async fn calm(&self) -> Calm {
        let left_done = Arc::new(Mutex::new(Vec::<String>::new()));
        let watch = tokio::spawn({
            let api = self.mapped_domains();
            let left = left_done.clone();
            async move {
                let mut events = watcher::watcher(api, watcher::Config::default())
                    .applied_objects()
                    .boxed();
                while let Ok(Some(md)) = events.try_next().await {
                    let stage = md.status.as_ref().and_then(|s| s.stage);
                    if stage != Some(Stage::Done) {
                        left.lock()
                            .unwrap()
                            .push(format!("{:?}: {stage:?}", md.metadata.name));
                    }
                }
            }
        });
        Calm {
            writes: self.writes().await,
            warnings: warnings(&self.events()).await,
            left_done,
            watch,
        }
    }

    /// Once a pod of the current template leads and has been over every
    /// domain: none of what `calm` rules out happened during `what`.
    pub async fn assert_calm(&self, calm: Calm, domains: usize, what: &str) {
        eventually(60, "a pod of the new template to lead", || async {
            let holder = self.holder().await?;
            let pods = self.pods().list(&ListParams::default()).await.ok()?.items;
            pods.iter()
                .any(|p| {
                    p.metadata.deletion_timestamp.is_none()
                        && holder.starts_with(&format!("{}-", p.metadata.name.as_ref().unwrap()))
                })
                .then_some(())
        })
        .await;
        // the new leader's first passes over the done domains
        self.until_all_done(domains).await;
        calm.watch.abort();
        assert_eq!(self.writes().await, calm.writes, "{what} wrote to Closte");
        let left = calm.left_done.lock().unwrap().clone();
        assert!(
            left.is_empty(),
            "statuses left done during {what}: {left:?}"
        );
        assert_eq!(
            warnings(&self.events()).await,
            calm.warnings,
            "Warning events appeared during {what}"
        );
    }

    pub fn events(&self) -> Api<Event> {
        Api::namespaced(self.node.client.clone(), &self.domains)
    }
}

pub async fn warnings(events: &Api<Event>) -> usize {
    let all = events.list(&ListParams::default()).await.unwrap().items;
    all.iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .count()
}

/// Every file under `dir`.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// The host's pids of the image's `closte-operator controller` processes.
pub fn controller_processes() -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if cmdline.starts_with(b"/usr/local/bin/closte-operator\0controller\0") {
            pids.push(pid);
        }
    }
    pids
}

/// A process's `/proc/PID/status`, as field name -> the words of its value
/// (`Uid` -> the four ids, `VmRSS` -> [kibibytes, "kB"]).
pub fn proc_status(pid: u32) -> std::collections::HashMap<String, Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| {
            let words = value.split_whitespace().map(str::to_owned).collect();
            (name.to_owned(), words)
        })
        .collect()
}

/// A domain re-checked every 10 s until done, as the examples are (the
/// default is 5 minutes).
pub fn quick(domain: &str) -> MappedDomainSpec {
    MappedDomainSpec {
        check_interval: Some("10s".into()),
        ..spec(domain)
    }
}

/// Says which step the (long) test is at.
pub fn progress(step: &str) {
    eprintln!("node test: {step}");
}
