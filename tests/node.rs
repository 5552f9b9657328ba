//! The chart as its users run it, on a real node: the image built here
//! (`make image`) imported into the node's containerd, `helm install` into a
//! namespace that enforces the restricted Pod Security level, two controller
//! pods that become Ready and take the examples to `done` against the
//! simulator (served on the node's address, where pods reach this machine);
//! then leader hand-over, graceful shutdown, a rollout restart and a
//! `helm upgrade`, none of which writes to Closte again.
//!
//! Needs root and the node's packages (containerd, runc, the CNI plugins,
//! iptables, conntrack: `.ci/run` installs them); one node per machine.

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use closte_operator::api::{MappedDomain, Stage};
use common::process::Launch;
use common::sim::{Simulator, scratch};
use common::wait::eventually;
use common::{create, spec, succeeded as ok};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Namespace, Pod};
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

const KEY: &str = "node-key-7e21";
/// The node's address: pods reach this machine's servers there.
const NODE_IP: &str = "10.88.0.1";
const RELEASE: &str = "rel";
const DEPLOYMENT: &str = "rel-closte-operator";
const LEASE: &str = "closte-operator";
const EXAMPLES: [&str; 3] = [
    "examples/mappeddomain-basic.yaml",
    "examples/mappeddomain-idn.yaml",
    "examples/mappeddomain-wildcard.yaml",
];

/// A control plane with a node, stopped when the test process exits.
struct Node {
    dir: PathBuf,
    kubeconfig: PathBuf,
    client: Client,
}

impl Node {
    async fn up() -> Node {
        assert!(
            Command::new("id")
                .arg("-u")
                .output()
                .is_ok_and(|o| o.stdout == b"0\n"),
            "the node tests need root (containerd, a bridge, iptables)"
        );
        let dir = common::repo_root()
            .join("target/controlplane-tests")
            .join(format!("node-{}", std::process::id()));
        let kubeconfig = common::start_control_plane_with(&dir, &["--node"]);
        let client = common::client_for(&kubeconfig).await;
        Node {
            dir,
            kubeconfig,
            client,
        }
    }

    fn import(&self, archive: &Path) {
        common::controlplane(&["import".as_ref(), self.dir.as_os_str(), archive.as_os_str()]);
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .expect("kubectl")
    }

    fn helm(&self, args: &[&str]) -> Output {
        Command::new(common::helm_binary())
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .expect("helm")
    }

    async fn namespace(&self, prefix: &str, labels: serde_json::Value) -> String {
        let name = common::namespace(&self.client, prefix).await;
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
fn built_image() -> PathBuf {
    common::image::make_image(None);
    common::image::default_archive()
}

/// The release and what the test watches of it.
struct Release<'a> {
    node: &'a Node,
    sim: Simulator,
    namespace: String,
    /// Where the examples' MappedDomains live.
    domains: String,
    values: Vec<String>,
}

impl<'a> Release<'a> {
    /// `helm install` into a namespace that enforces the restricted level,
    /// pointed at the simulator on the node's address.
    async fn install(node: &'a Node) -> Release<'a> {
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
        };
        ok(release.helm("install", &[]), "helm install");
        release
    }

    fn helm(&self, verb: &str, extra: &[&str]) -> Output {
        let chart = common::repo_root().join("charts/closte-operator");
        let mut args = vec![
            verb,
            RELEASE,
            chart.to_str().unwrap(),
            "-n",
            &self.namespace,
        ];
        args.extend(self.values.iter().map(String::as_str));
        args.extend_from_slice(extra);
        self.node.helm(&args)
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.node.client.clone(), &self.namespace)
    }

    fn mapped_domains(&self) -> Api<MappedDomain> {
        Api::namespaced(self.node.client.clone(), &self.domains)
    }

    fn lease(&self) -> Api<Lease> {
        Api::namespaced(self.node.client.clone(), &self.namespace)
    }

    /// The controller pods, once both run the current template and are Ready.
    async fn ready_pods(&self) -> Vec<Pod> {
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

    /// The restricted level admitted the pods, and they run as the chart
    /// says: user 65532, no capabilities, no privilege escalation, a
    /// read-only root filesystem, as this machine's kernel sees them.
    async fn pods_run_restricted(&self) {
        let pods = self.ready_pods().await;
        assert_eq!(pods.len(), 2);
        let processes = controller_processes();
        assert_eq!(
            processes.len(),
            2,
            "two `closte-operator controller` processes on the node: {processes:?}"
        );
        for pid in processes {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.split_whitespace().collect::<Vec<_>>())
                    .unwrap_or_default()
            };
            assert_eq!(field("Uid:"), ["65532"; 4], "pid {pid} runs as 65532");
            assert_eq!(field("Gid:"), ["65532"; 4], "pid {pid} runs in group 65532");
            assert_eq!(
                field("CapEff:"),
                ["0000000000000000"],
                "pid {pid} has no capabilities"
            );
            assert_eq!(
                field("NoNewPrivs:"),
                ["1"],
                "pid {pid} cannot gain privileges"
            );
            assert_eq!(
                field("Seccomp:"),
                ["2"],
                "pid {pid} runs under a seccomp filter"
            );
            let mounts = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
            let root = mounts
                .lines()
                .find(|l| l.split_whitespace().nth(4) == Some("/"))
                .expect("a root mount");
            let options = root.split_whitespace().nth(5).unwrap();
            assert!(
                options.split(',').any(|o| o == "ro"),
                "pid {pid}'s root filesystem is writable: {root}"
            );
        }
    }

    /// The examples, applied as a user would, end `done` with a certificate,
    /// reconciled by the pod that holds the Lease.
    async fn examples_end_done(&self) {
        for example in EXAMPLES {
            let path = common::repo_root().join(example);
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

    async fn until_all_done(&self, count: usize) -> Vec<MappedDomain> {
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

    async fn holder(&self) -> Option<String> {
        let lease = self.lease().get(LEASE).await.ok()?;
        lease.spec?.holder_identity.filter(|h| !h.is_empty())
    }

    /// Closte adds per domain, applied or not.
    async fn adds(&self) -> BTreeMap<String, usize> {
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
    async fn writes(&self) -> u64 {
        self.sim.count("adddomainalias").await + self.sim.count("deletedomainalias").await
    }

    /// Deleting the leader's pod (SIGTERM, as for any pod) hands the Lease
    /// back: the record is seen without a holder, then the other pod takes
    /// it; work goes on and no add is repeated.
    async fn leader_pod_deleted_hands_over(&self) {
        let leases = Arc::new(Mutex::new(Vec::<Option<String>>::new()));
        let watch = tokio::spawn({
            let api = self.lease();
            let seen = leases.clone();
            async move {
                let config = watcher::Config::default().fields(&format!("metadata.name={LEASE}"));
                let mut events = watcher::watcher(api, config).applied_objects().boxed();
                while let Ok(Some(lease)) = events.try_next().await {
                    let holder = lease.spec.and_then(|s| s.holder_identity);
                    seen.lock().unwrap().push(holder.filter(|h| !h.is_empty()));
                }
            }
        });
        let old = self.holder().await.expect("a leader");
        let old_pod = self
            .ready_pods()
            .await
            .into_iter()
            .map(|p| p.metadata.name.unwrap())
            .find(|name| old.starts_with(&format!("{name}-")))
            .expect("the leader's pod");
        ok(
            self.node.kubectl(&[
                "delete",
                "pod",
                "-n",
                &self.namespace,
                &old_pod,
                "--wait=false",
            ]),
            "kubectl delete pod",
        );
        let new = eventually(60, "another pod to take the Lease", || async {
            self.holder().await.filter(|h| *h != old)
        })
        .await;
        watch.abort();
        let seen = leases.lock().unwrap().clone();
        let released = seen.iter().position(Option::is_none);
        let taken = seen.iter().position(|h| h.as_deref() == Some(new.as_str()));
        assert!(
            matches!((released, taken), (Some(r), Some(t)) if r < t),
            "the old leader did not hand the Lease back before {new} took it: {seen:?}"
        );
        assert!(
            !new.starts_with(&format!("{old_pod}-")),
            "the Lease went back to the deleted pod"
        );

        let adds_before = self.adds().await;
        create(
            &self.mapped_domains(),
            "after-handover",
            spec("after-handover.example.com"),
        )
        .await;
        self.until_all_done(EXAMPLES.len() + 1).await;
        let adds = self.adds().await;
        assert!(
            adds.values().all(|n| *n == 1),
            "an add was repeated across the hand-over: {adds:?} (before: {adds_before:?})"
        );
        assert_eq!(adds.len(), EXAMPLES.len() + 1, "{adds:?}");
        self.ready_pods().await; // the Deployment replaced the deleted pod
    }

    /// `kubectl rollout restart`, then a `helm upgrade` that changes a value
    /// of the pod template: pods replaced, the Lease handed on, and no Closte
    /// write, no status leaving `done`, no Warning event.
    async fn restart_and_upgrade_write_nothing(&self) {
        let writes = self.writes().await;
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
        let events: Api<Event> = Api::namespaced(self.node.client.clone(), &self.domains);
        let warnings_before = warnings(&events).await;

        ok(
            self.node.kubectl(&[
                "rollout",
                "restart",
                "-n",
                &self.namespace,
                &format!("deployment/{DEPLOYMENT}"),
            ]),
            "kubectl rollout restart",
        );
        self.until_rolled_out().await;
        ok(
            self.helm("upgrade", &["--set", "controller.logLevel=debug"]),
            "helm upgrade",
        );
        self.until_rolled_out().await;
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
        self.until_all_done(EXAMPLES.len() + 1).await;
        watch.abort();

        assert_eq!(
            self.writes().await,
            writes,
            "a restart or upgrade wrote to Closte"
        );
        let left = left_done.lock().unwrap().clone();
        assert!(left.is_empty(), "statuses left done: {left:?}");
        assert_eq!(
            warnings(&events).await,
            warnings_before,
            "Warning events appeared"
        );
    }

    async fn until_rolled_out(&self) {
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
    fn logs_are_clean(&self) {
        let logs = self.node.dir.join("node/pod-logs");
        for entry in walk(&logs) {
            let text = std::fs::read_to_string(&entry).unwrap_or_default();
            assert!(!text.contains(KEY), "the key is in {}", entry.display());
            assert!(!text.contains("panicked"), "a panic in {}", entry.display());
        }
    }
}

async fn warnings(events: &Api<Event>) -> usize {
    let all = events.list(&ListParams::default()).await.unwrap().items;
    all.iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .count()
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
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
fn controller_processes() -> Vec<u32> {
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

#[tokio::test(flavor = "multi_thread")]
async fn the_chart_on_a_real_node_runs_hands_over_and_upgrades_without_a_closte_write() {
    let node = Node::up().await;
    node.import(&built_image());
    let release = Release::install(&node).await;
    release.pods_run_restricted().await;
    release.examples_end_done().await;
    release.leader_pod_deleted_hands_over().await;
    release.restart_and_upgrade_write_nothing().await;
    release.logs_are_clean();
}
