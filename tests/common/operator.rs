//! Runs `closte-operator controller` as a real process against the test
//! control plane and a simulator, and waits on what it writes.

use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use closte_operator::api::MappedDomain;
use kube::Api;

use super::sim::{Simulator, scratch};

pub struct Operator {
    child: Child,
    pub log: PathBuf,
    pub metrics: String,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Operator {
    /// Starts a controller for `namespace` (all namespaces when None; the lease
    /// lives in that namespace) with `key` as its own, plus `args`. `name`
    /// names its scratch folder.
    pub fn start(
        name: &str,
        sim: &Simulator,
        key: &str,
        namespace: Option<&str>,
        args: &[&str],
    ) -> Operator {
        Operator::start_on(super::kubeconfig(), name, sim, key, namespace, args)
    }

    /// [`Operator::start`] against the control plane of `kubeconfig`.
    pub fn start_on(
        kubeconfig: &std::path::Path,
        name: &str,
        sim: &Simulator,
        key: &str,
        namespace: Option<&str>,
        args: &[&str],
    ) -> Operator {
        let log = scratch(name).join("controller.log");
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_closte-operator"));
        command
            .arg("controller")
            .args(["--closte-api-url", &sim.api])
            .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .env("CLOSTE_CLIENT_API_KEY", key)
            .env("RUST_LOG", "info,closte_operator=debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        // checks go to the simulator's DNS and HTTPS, never to the machine's resolver
        if let (Some(dns), Some(https), Some(ca)) = (sim.dns, sim.https, &sim.ca) {
            command
                .args(["--dns-server", &dns.to_string()])
                .args(["--https-port", &https.port().to_string()])
                .args(["--ca-file", ca.to_str().unwrap()])
                .args(["--expected-target", "127.0.0.1"]);
        }
        if let Some(ns) = namespace {
            command.args(["--namespace", ns, "--lease-namespace", ns]);
        }
        Operator {
            child: command.spawn().expect("start closte-operator controller"),
            log,
            metrics: format!("http://127.0.0.1:{port}"),
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub async fn scrape(&self) -> String {
        reqwest::get(format!("{}/metrics", self.metrics))
            .await
            .expect("metrics endpoint")
            .text()
            .await
            .unwrap()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `check` every 100 ms until it returns Some, or panics after `secs`.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The condition `type_` of the object as (status, reason), if any.
pub fn condition(md: &MappedDomain, type_: &str) -> Option<(String, String)> {
    md.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

/// Waits until condition `type_` of `name` has `status` (and `reason`, if given).
pub async fn wait_condition(
    api: &Api<MappedDomain>,
    name: &str,
    type_: &str,
    status: &str,
    reason: Option<&str>,
) -> MappedDomain {
    eventually(
        30,
        &format!("{name} {type_}={status} {reason:?}"),
        || async {
            let md = api.get_opt(name).await.ok().flatten()?;
            let (s, r) = condition(&md, type_)?;
            (s == status && reason.is_none_or(|want| want == r)).then_some(md)
        },
    )
    .await
}

pub async fn wait_gone(api: &Api<MappedDomain>, name: &str) {
    eventually(30, &format!("{name} to be deleted"), || async {
        api.get_opt(name)
            .await
            .ok()
            .and_then(|o| o.is_none().then_some(()))
    })
    .await
}
