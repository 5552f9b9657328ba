//! What every scenario stands on: a fresh control plane, the simulator, the
//! controller and the sidecar as processes of the binary under test, and
//! readings of them (API server request counts, `/metrics`, `/proc`).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use closte_operator::api::{MappedDomain, MappedDomainSpec, Stage};
use futures::StreamExt;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Client, ResourceExt};

use crate::common;
use crate::common::process::Launch;
pub use crate::common::process::Process;
use crate::common::sim::Simulator;

/// The binary under test: the release build under `cargo bench`, the debug
/// build under `cargo test`; `BENCH_BIN=path` measures another build (the
/// simulator stays this one).
pub fn bin() -> String {
    std::env::var("BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_closte-operator").into())
}

/// The simulator's key for account 0.
pub const KEY: &str = "bench-key-5c1e";

/// A scenario's own folder under `target/bench/`, emptied.
pub fn folder(name: &str) -> PathBuf {
    let dir = common::repo_root().join("target/bench").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A control plane of its own, with the CRD installed and its write path
/// warmed up (the API server prepares a new CRD's storage on the first write,
/// about 2 s that are not the controller's). Stopped on drop.
pub struct Cluster {
    dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub client: Client,
}

impl Cluster {
    pub async fn up(dir: &std::path::Path) -> Cluster {
        let dir = dir.join("controlplane");
        let kubeconfig = common::start_control_plane_in(&dir);
        let client = common::client_for(&kubeconfig).await;
        common::install_crd(&client).await;
        let api: Api<MappedDomain> = Api::namespaced(client.clone(), "default");
        api.create(
            &PostParams::default(),
            &domain("warm-up", "warm-up.example"),
        )
        .await
        .expect("first write");
        api.delete("warm-up", &DeleteParams::default())
            .await
            .unwrap();
        Cluster {
            dir,
            kubeconfig,
            client,
        }
    }

    /// The API server's own metrics, as Prometheus text.
    fn metrics(&self) -> String {
        let out = Command::new("kubectl")
            .args(["get", "--raw", "/metrics"])
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .expect("kubectl");
        assert!(out.status.success(), "API server metrics");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Requests the API server has counted so far: writes by resource, and all.
    pub fn writes(&self) -> ApiWrites {
        let mut writes = ApiWrites::default();
        for line in self.metrics().lines() {
            if !line.starts_with("apiserver_request_total{") {
                continue;
            }
            let write = ["POST", "PUT", "PATCH", "APPLY", "DELETE"]
                .iter()
                .any(|v| line.contains(&format!("verb=\"{v}\"")));
            let count: f64 = line.rsplit(' ').next().unwrap().parse().unwrap_or(0.0);
            if !line.contains("verb=\"WATCH\"") {
                writes.requests += count;
            }
            if !write {
                continue;
            }
            if line.contains("resource=\"mappeddomains\"") {
                writes.mapped_domains += count;
            } else if line.contains("resource=\"events\"") {
                writes.events += count;
            }
        }
        writes
    }

    /// Requests the API server has counted so far by kind, `VERB resource`
    /// or `VERB resource/subresource` (watches left out), of every client.
    pub fn requests_by_kind(&self) -> BTreeMap<String, f64> {
        let mut kinds = BTreeMap::new();
        for line in self.metrics().lines() {
            let Some(labels) = line.strip_prefix("apiserver_request_total{") else {
                continue;
            };
            let label = |name: &str| {
                labels
                    .split(&format!("{name}=\""))
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .unwrap_or_default()
                    .to_owned()
            };
            let (verb, resource, sub) = (label("verb"), label("resource"), label("subresource"));
            if verb == "WATCH" || resource.is_empty() {
                continue;
            }
            let kind = match sub.as_str() {
                "" => format!("{verb} {resource}"),
                sub => format!("{verb} {resource}/{sub}"),
            };
            let count: f64 = line.rsplit(' ').next().unwrap().parse().unwrap_or(0.0);
            *kinds.entry(kind).or_insert(0.0) += count;
        }
        kinds
    }

    /// Stops kube-apiserver and starts it again (etcd and its state kept).
    pub fn restart_apiserver(&self) {
        common::controlplane(&["restart-apiserver".as_ref(), self.dir.as_os_str()]);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(common::repo_root().join("tests/controlplane/controlplane.sh"))
            .arg("down")
            .arg(&self.dir)
            .stderr(Stdio::null())
            .status();
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct ApiWrites {
    /// MappedDomain writes: creates, patches (status included), deletes.
    pub mapped_domains: f64,
    pub events: f64,
    /// Every request but watches, reads included, of every client.
    pub requests: f64,
}

impl std::ops::Sub for ApiWrites {
    type Output = ApiWrites;
    fn sub(self, earlier: ApiWrites) -> ApiWrites {
        ApiWrites {
            mapped_domains: self.mapped_domains - earlier.mapped_domains,
            events: self.events - earlier.events,
            requests: self.requests - earlier.requests,
        }
    }
}

/// The simulator with DNS, HTTPS and `accounts` keys (`KEY` first, then
/// `KEY-1`...), plus `args`.
pub async fn simulator(dir: &std::path::Path, accounts: usize, args: &[&str]) -> Simulator {
    let keys: Vec<String> = (0..accounts).map(account_key).collect();
    let mut all: Vec<&str> = Vec::new();
    for key in &keys {
        all.extend(["--api-key", key.as_str()]);
    }
    all.extend_from_slice(args);
    let name = dir.file_name().unwrap().to_str().unwrap();
    Simulator::up_with_checks(&format!("bench-{name}"), &all).await
}

pub fn account_key(account: usize) -> String {
    if account == 0 {
        KEY.to_owned()
    } else {
        format!("{KEY}-{account}")
    }
}

/// The controller under test against `sim` with `KEY` as its own key,
/// watching every namespace of `cluster`, DNS and TLS checked against the
/// simulator, plus `args`; started, not yet ready.
pub fn controller_process(
    cluster: &Cluster,
    sim: &Simulator,
    log: PathBuf,
    args: &[&str],
) -> Process {
    // BENCH_WRAPPER="heaptrack -o DIR/heap" profiles the controller (RSS is then the wrapper's)
    let wrapper = std::env::var("BENCH_WRAPPER").unwrap_or_default();
    under_test(Launch::controller(sim, log), cluster)
        .wrapper(&wrapper)
        .env("CLOSTE_CLIENT_API_KEY", KEY)
        .args(args)
        .spawn()
}

/// The sidecar under test for `namespace`, its token in `token_file`;
/// started, not yet ready.
pub fn sidecar_process(
    cluster: &Cluster,
    namespace: &str,
    token_file: &std::path::Path,
    log: PathBuf,
) -> Process {
    under_test(Launch::sidecar(namespace, log), cluster)
        .arg("--token-file")
        .arg(token_file)
        .args(["--check-interval", "10s"])
        .spawn()
}

/// The build under test, logging at `info` as a deployment does, against `cluster`.
fn under_test(launch: Launch, cluster: &Cluster) -> Launch {
    launch
        .program(bin())
        .kubeconfig(&cluster.kubeconfig)
        .env("RUST_LOG", "info")
}

/// A MappedDomain for `domain` checked every 10 s (so `done` comes soon after
/// the certificate).
pub fn domain(name: &str, domain: &str) -> MappedDomain {
    common::mapped_domain(
        name,
        MappedDomainSpec {
            check_interval: Some("10s".into()),
            ..common::spec(domain)
        },
    )
}

/// Creates `objects` over `writers` concurrent requests; how long it took.
pub async fn create_all(
    api: &Api<MappedDomain>,
    objects: Vec<MappedDomain>,
    writers: usize,
) -> Duration {
    let start = Instant::now();
    let failures: Vec<String> = futures::stream::iter(objects)
        .map(|md| async move {
            api.create(&PostParams::default(), &md)
                .await
                .err()
                .map(|e| format!("{}: {e}", md.metadata.name.unwrap()))
        })
        .buffer_unordered(writers)
        .filter_map(|failure| async move { failure })
        .collect()
        .await;
    assert!(failures.is_empty(), "creates refused: {failures:?}");
    start.elapsed()
}

/// Deletes these objects over `writers` concurrent requests.
pub async fn delete_all(api: &Api<MappedDomain>, names: Vec<String>, writers: usize) {
    futures::stream::iter(names)
        .map(|name| async move {
            api.delete(&name, &DeleteParams::default())
                .await
                .expect("delete")
        })
        .buffer_unordered(writers)
        .collect::<Vec<_>>()
        .await;
}

/// How many MappedDomains (in every namespace) are `done`, kept by a watch of
/// the harness's own: waiting on it costs the controller nothing (polling its
/// `/metrics` would: at 10,000 objects every scrape renders megabytes).
pub struct Progress {
    done: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    pub fn watch(client: &Client) -> Progress {
        let api: Api<MappedDomain> = Api::all(client.clone());
        let done = Arc::new(AtomicUsize::new(0));
        let counter = done.clone();
        let task = tokio::spawn(async move {
            let mut states: HashMap<String, bool> = HashMap::new();
            let events = watcher(api, watcher::Config::default()).default_backoff();
            futures::pin_mut!(events);
            while let Some(event) = events.next().await {
                let (object, gone) = match event {
                    Ok(Event::Apply(md) | Event::InitApply(md)) => (md, false),
                    Ok(Event::Delete(md)) => (md, true),
                    _ => continue,
                };
                let key = format!(
                    "{}/{}",
                    object.namespace().unwrap_or_default(),
                    object.name_any()
                );
                let is_done =
                    !gone && object.status.as_ref().and_then(|s| s.stage) == Some(Stage::Done);
                if is_done {
                    states.insert(key, true);
                } else {
                    states.remove(&key);
                }
                counter.store(states.len(), Ordering::Relaxed);
            }
        });
        Progress { done, task }
    }

    pub fn done(&self) -> usize {
        self.done.load(Ordering::Relaxed)
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Simulator request counts by endpoint.
pub async fn sim_counts(sim: &Simulator) -> BTreeMap<String, f64> {
    let stats = sim.stats().await;
    stats
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
        .collect()
}

/// Percentile `p` (0..=100) of `values` in milliseconds, nearest rank.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
