//! The chart as its users run it, on a real node: the image built here
//! (`make image`) imported into the node's containerd, `helm install` into a
//! namespace that enforces the restricted Pod Security level, two controller
//! pods that become Ready and take the examples to `done` against the
//! simulator (served on the node's address, where pods reach this machine);
//! then leader hand-over on a pod's deletion (SIGTERM: the Lease handed
//! back), a rollout restart and a `helm upgrade`, none of which writes to
//! Closte again; and a thousand domains within the chart's memory limit.
//! The release and the node are `common::node`'s.

mod common;

use std::sync::{Arc, Mutex};

use common::node::{
    DEPLOYMENT, EXAMPLES, LEASE, Node, Release, built_image, controller_processes, proc_status,
    progress, quick,
};
use common::wait::eventually;
use common::{create, succeeded as ok};
use futures::{StreamExt, TryStreamExt};
use kube::api::ListParams;
use kube::runtime::{WatchStreamExt, watcher};

impl Release<'_> {
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
            let status = proc_status(pid);
            let field = |name: &str| status.get(name).cloned().unwrap_or_default();
            assert_eq!(field("Uid"), ["65532"; 4], "pid {pid} runs as 65532");
            assert_eq!(field("Gid"), ["65532"; 4], "pid {pid} runs in group 65532");
            assert_eq!(
                field("CapEff"),
                ["0000000000000000"],
                "pid {pid} has no capabilities"
            );
            assert_eq!(
                field("NoNewPrivs"),
                ["1"],
                "pid {pid} cannot gain privileges"
            );
            assert_eq!(
                field("Seccomp"),
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
        // how the pod's container ended, from the kubelet's last status
        let ended = Arc::new(Mutex::new(None));
        let pod_watch = tokio::spawn({
            let config = watcher::Config::default().fields(&format!("metadata.name={old_pod}"));
            let mut events = watcher::watcher(self.pods(), config)
                .applied_objects()
                .boxed();
            let ended = ended.clone();
            async move {
                while let Ok(Some(pod)) = events.try_next().await {
                    let terminated = pod
                        .status
                        .and_then(|s| s.container_statuses)
                        .and_then(|c| c.into_iter().next())
                        .and_then(|c| c.state?.terminated);
                    if terminated.is_some() {
                        *ended.lock().unwrap() = terminated;
                    }
                }
            }
        });
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
        eventually(90, "the deleted pod to be gone", || async {
            self.pods()
                .get_opt(&old_pod)
                .await
                .ok()?
                .is_none()
                .then_some(())
        })
        .await;
        pod_watch.abort();
        // the kubelet kills what still runs when the grace period ends (137)
        let ended = ended.lock().unwrap().clone();
        let ended = ended.expect("the kubelet reported how the deleted pod's container ended");
        assert_eq!(
            (ended.exit_code, ended.signal),
            (0, None),
            "the leader's container did not exit on its own after SIGTERM: {ended:?}"
        );
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
            quick("after-handover.example.com"),
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
        let calm = self.calm().await;
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
        self.assert_calm(calm, EXAMPLES.len() + 1, "a restart and an upgrade")
            .await;
    }

    /// A thousand more domains, taken to `done` by the leader's pod within
    /// the chart's memory limit: no restart, no OOM kill; its resident
    /// memory (settled and peak) against the chart's request and limit.
    async fn a_thousand_domains_fit_the_chart_memory(&self) {
        const MORE: usize = 1000;
        let before = self
            .mapped_domains()
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len();
        let api = self.mapped_domains();
        futures::stream::iter(0..MORE)
            .map(|i| {
                let api = api.clone();
                async move {
                    let name = format!("load-{i:04}");
                    create(&api, &name, quick(&format!("{name}.example.net"))).await;
                }
            })
            .buffer_unordered(16)
            .collect::<Vec<()>>()
            .await;
        self.until_all_done(before + MORE).await;

        let holder = self.holder().await.expect("a leader");
        let pods = self.ready_pods().await;
        for pod in &pods {
            let status = pod.status.as_ref().unwrap();
            for container in status.container_statuses.iter().flatten() {
                assert_eq!(
                    container.restart_count,
                    0,
                    "{} restarted: {:?}",
                    pod.metadata.name.as_deref().unwrap(),
                    container.last_state
                );
            }
        }
        let leader = pods
            .iter()
            .find(|p| holder.starts_with(&format!("{}-", p.metadata.name.as_ref().unwrap())))
            .expect("the leader's pod");
        let uid = leader.metadata.uid.clone().unwrap();
        let pid = controller_processes()
            .into_iter()
            .find(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
                    .is_ok_and(|c| c.contains(&format!("pod{uid}")))
            })
            .expect("the leader pod's process");
        let status = proc_status(pid);
        let kib = |field: &str| -> u64 {
            status
                .get(field)
                .and_then(|words| words.first()?.parse().ok())
                .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
        };
        let (rss, peak) = (kib("VmRSS") / 1024, kib("VmHWM") / 1024);
        let resources = leader.spec.as_ref().unwrap().containers[0]
            .resources
            .clone()
            .unwrap();
        let mebibytes = |q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity| -> u64 {
            q.0.strip_suffix("Mi")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("the chart's memory {} is not in Mi", q.0))
        };
        let request = mebibytes(&resources.requests.unwrap()["memory"]);
        let limit = mebibytes(&resources.limits.unwrap()["memory"]);
        eprintln!(
            "node test: leader's RSS with {} domains done: {rss} MiB settled, {peak} MiB peak \
             (chart: request {request} MiB, limit {limit} MiB)",
            before + MORE
        );
        assert!(
            peak < limit,
            "the leader's peak RSS {peak} MiB reached the chart's limit {limit} MiB"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_chart_on_a_real_node_runs_hands_over_and_upgrades_without_a_closte_write() {
    progress("control plane and node");
    let node = Node::up().await;
    progress("make image, imported into the node");
    node.import(&built_image());
    progress("helm install");
    let release = Release::install(&node).await;
    progress("pods Ready, restricted");
    release.pods_run_restricted().await;
    progress("the examples end done");
    release.examples_end_done().await;
    progress("the leader's pod deleted: the Lease handed over");
    release.leader_pod_deleted_hands_over().await;
    progress("rollout restart and helm upgrade");
    release.restart_and_upgrade_write_nothing().await;
    progress("a thousand domains within the chart's memory");
    release.a_thousand_domains_fit_the_chart_memory().await;
    release.logs_are_clean();
}
