//! What every scenario stands on: a fresh control plane, the simulator, the
//! controller and the sidecar as processes of the binary under test, and
//! readings of them (API server request counts, `/metrics`, `/proc`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use closte_operator::api::{MappedDomain, MappedDomainSpec, Stage};
use futures::StreamExt;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Client, ResourceExt};

use crate::common;
use crate::common::operator::free_port;
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

    /// Requests the API server has counted so far: writes by resource, and all.
    pub fn writes(&self) -> ApiWrites {
        let out = Command::new("kubectl")
            .args(["get", "--raw", "/metrics"])
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .expect("kubectl");
        assert!(out.status.success(), "API server metrics");
        let mut writes = ApiWrites::default();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
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
pub fn simulator(dir: &std::path::Path, accounts: usize, args: &[&str]) -> Simulator {
    let keys: Vec<String> = (0..accounts).map(account_key).collect();
    let mut all: Vec<&str> = Vec::new();
    for key in &keys {
        all.extend(["--api-key", key.as_str()]);
    }
    all.extend_from_slice(args);
    let name = dir.file_name().unwrap().to_str().unwrap();
    Simulator::start_with_probes(&format!("bench-{name}"), &all)
}

pub fn account_key(account: usize) -> String {
    if account == 0 {
        KEY.to_owned()
    } else {
        format!("{KEY}-{account}")
    }
}

/// A controller or sidecar process; killed on drop.
pub struct Process {
    child: Child,
    pub log: PathBuf,
    /// Its HTTP address: metrics and health for the controller, both doors
    /// for the sidecar.
    pub http: String,
    started: Instant,
}

impl Process {
    /// The controller against `sim` with `KEY` as its own key, watching every
    /// namespace, DNS and TLS checked against the simulator, plus `args`.
    pub fn controller(cluster: &Cluster, sim: &Simulator, log: PathBuf, args: &[&str]) -> Process {
        let port = free_port();
        // BENCH_WRAPPER="heaptrack -o DIR/heap" profiles the controller (RSS is then the wrapper's)
        let wrapper = std::env::var("BENCH_WRAPPER").unwrap_or_default();
        let mut words = wrapper.split_whitespace();
        let mut command = match words.next() {
            Some(program) => {
                let mut command = Command::new(program);
                command.args(words).arg(bin());
                command
            }
            None => Command::new(bin()),
        };
        command
            .arg("controller")
            .args(["--closte-api-url", &sim.api])
            .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
            .args(["--dns-server", &sim.dns.unwrap().to_string()])
            .args(["--https-port", &sim.https.unwrap().port().to_string()])
            .args(["--ca-file", sim.ca.as_ref().unwrap().to_str().unwrap()])
            .args(["--expected-target", "127.0.0.1"])
            .args(args)
            .env("CLOSTE_CLIENT_API_KEY", KEY);
        Process::spawn(command, cluster, log, port)
    }

    /// The sidecar for `namespace`, its token in `token_file`.
    pub fn sidecar(
        cluster: &Cluster,
        namespace: &str,
        token_file: &std::path::Path,
        log: PathBuf,
    ) -> Process {
        let port = free_port();
        let mut command = Command::new(bin());
        command
            .arg("sidecar")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--namespace", namespace])
            .arg("--token-file")
            .arg(token_file)
            .args(["--check-interval", "10s"]);
        Process::spawn(command, cluster, log, port)
    }

    fn spawn(mut command: Command, cluster: &Cluster, log: PathBuf, port: u16) -> Process {
        let child = command
            .env("KUBECONFIG", &cluster.kubeconfig)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start closte-operator");
        Process {
            child,
            log,
            http: format!("http://127.0.0.1:{port}"),
            started: Instant::now(),
        }
    }

    /// Waits until `/readyz` answers 200; how long it took since the start.
    pub async fn ready(&mut self) -> Duration {
        let http = reqwest::Client::new();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "{} exited ({status}):\n{}",
                    self.log.display(),
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            let ok = http
                .get(format!("{}/readyz", self.http))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return self.started.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident and peak resident memory, in MiB.
    pub fn memory(&self) -> Memory {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|kib| kib.parse::<f64>().ok())
                .unwrap_or(0.0)
                / 1024.0
        };
        Memory {
            rss: field("VmRSS:"),
            peak: field("VmHWM:"),
        }
    }

    /// User plus system CPU seconds so far.
    pub fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // fields after the command name, which is in parentheses
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
        ticks / 100.0
    }

    /// The sum of every series of a metric (by name prefix, labels included),
    /// e.g. `closte_operator_mapped_domains{stage="done"}`.
    pub async fn metric(&self, series: &str) -> f64 {
        self.try_metric(series).await.expect("metrics endpoint")
    }

    /// Like [`Process::metric`], None when the endpoint does not answer.
    pub async fn try_metric(&self, series: &str) -> Option<f64> {
        let text = reqwest::get(format!("{}/metrics", self.http))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        Some(
            text.lines()
                .filter(|l| l.starts_with(series))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum(),
        )
    }

    /// Lines of its log that say it panicked.
    pub fn panics(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("panicked"))
            .map(str::to_owned)
            .collect()
    }

    /// SIGKILL, and wait.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub rss: f64,
    pub peak: f64,
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

/// Polls `check` every 200 ms until it holds; panics with `what` after
/// `limit`. Returns the time waited.
pub async fn until<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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
