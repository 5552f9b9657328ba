//! `closte-operator sidecar` as a process, and its doors.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::process::{Launch, Process, http_client};
use super::sim::scratch;

pub struct Sidecar {
    /// None while stopped.
    process: Option<Process>,
    launch: Launch,
    pub url: String,
    pub token: String,
    http: reqwest::Client,
}

impl Sidecar {
    /// Starts a sidecar for `namespace` with `token` (in its environment),
    /// against the cluster of `kubeconfig`, plus `args`; waits until it is ready.
    pub async fn start(
        name: &str,
        kubeconfig: &Path,
        namespace: &str,
        token: &str,
        args: &[&str],
    ) -> Sidecar {
        let launch = Launch::sidecar(namespace, scratch(name).join("sidecar.log"))
            .kubeconfig(kubeconfig)
            .env("CLOSTE_SIDECAR_TOKEN", token)
            .args(args);
        Sidecar::launch(launch, token).await
    }

    /// Starts a sidecar for `namespace` that reads `token` from `token_file`
    /// (as a pod mounting a Secret does), its log in `dir`, plus `args`; waits
    /// until it is ready.
    pub async fn with_token_file(
        dir: &Path,
        namespace: &str,
        token: &str,
        token_file: &Path,
        args: &[&str],
    ) -> Sidecar {
        let launch = Launch::sidecar(namespace, dir.join("sidecar.log"))
            .env_remove("CLOSTE_SIDECAR_TOKEN")
            .arg("--token-file")
            .arg(token_file)
            .args(args);
        Sidecar::launch(launch, token).await
    }

    /// Starts `launch` (from [`Launch::sidecar`]), whose token is `token`,
    /// and waits until it is ready.
    pub async fn launch(launch: Launch, token: &str) -> Sidecar {
        let process = launch.start().await;
        process.ready().await;
        Sidecar {
            url: process.url(),
            token: token.into(),
            launch: process.launch(),
            process: Some(process),
            http: http_client(),
        }
    }

    /// The running process.
    pub fn process(&self) -> &Process {
        self.process.as_ref().expect("the sidecar is stopped")
    }

    /// Stops it (SIGTERM, then waits).
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop();
        }
    }

    /// Starts it again at the same address (it was its own; WordPress is
    /// configured with it), its log following the first run's, and waits
    /// until it is ready.
    pub async fn resume(&mut self) {
        assert!(self.process.is_none(), "the sidecar is already running");
        let addr = self.url.trim_start_matches("http://");
        let process = self
            .launch
            .clone()
            .append_log()
            .set("--listen", addr)
            .start()
            .await;
        process.ready().await;
        self.process = Some(process);
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.launch.log()).unwrap_or_default()
    }

    pub fn kill(&mut self) {
        if let Some(process) = &mut self.process {
            process.kill();
        }
    }

    pub fn pid(&self) -> u32 {
        self.process().pid()
    }

    /// Its `/metrics` (read with its token).
    pub async fn metrics(&self) -> String {
        let text = self.process().fetch_metrics(Some(&self.token)).await;
        text.unwrap_or_else(|e| panic!("the sidecar's /metrics: {e}"))
    }

    /// Requests it answered at `door` (`closte` or `native`) by HTTP
    /// status, from its own metrics.
    pub async fn requests(&self, door: &str) -> BTreeMap<u16, u64> {
        let text = self.metrics().await;
        let mut counts = BTreeMap::new();
        for line in text.lines() {
            let Some(labels) = line.strip_prefix("closte_operator_sidecar_requests_total{") else {
                continue;
            };
            if !labels.contains(&format!("door=\"{door}\"")) {
                continue;
            }
            let status = labels
                .split("status=\"")
                .nth(1)
                .and_then(|s| s.get(..3)?.parse().ok());
            let count = line.rsplit(' ').next().and_then(|c| c.parse::<f64>().ok());
            if let (Some(status), Some(count)) = (status, count) {
                *counts.entry(status).or_default() += count as u64;
            }
        }
        counts
    }

    /// Every request it answered at both doors, from its own metrics.
    pub async fn requests_answered(&self) -> u64 {
        let closte: u64 = self.requests("closte").await.values().sum();
        let native: u64 = self.requests("native").await.values().sum();
        closte + native
    }

    /// A request to the Closte door: `form` as the body of a POST (or the
    /// query of a GET). Returns the status and the body as text.
    pub async fn closte(
        &self,
        method: &str,
        endpoint: &str,
        form: &[(&str, &str)],
    ) -> (u16, String) {
        self.closte_with_headers(method, endpoint, form, &[]).await
    }

    /// [`Sidecar::closte`] with these request headers too.
    pub async fn closte_with_headers(
        &self,
        method: &str,
        endpoint: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> (u16, String) {
        let url = format!("{}/api/client/{endpoint}", self.url);
        let mut request = match method {
            "GET" => self.http.get(url).query(form),
            other => self.http.request(other.parse().unwrap(), url).form(form),
        };
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("sidecar reachable");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    /// A request to the native door with the right token (or `token`);
    /// returns the status and the body as JSON (Null when empty).
    pub async fn native(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.native_as(
            &self.token,
            method,
            path,
            body.map(|b| b.to_string().into_bytes()),
        )
        .await
    }

    pub async fn native_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.url))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request.send().await.expect("sidecar reachable");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }
}
