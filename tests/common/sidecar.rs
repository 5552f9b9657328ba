//! Runs `closte-operator sidecar` as a real process and talks to its doors.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::operator::{eventually, free_port};
use super::sim::scratch;

pub struct Sidecar {
    child: Child,
    pub url: String,
    pub token: String,
    pub log: PathBuf,
    http: reqwest::Client,
}

impl Sidecar {
    /// Starts a sidecar for `namespace` with `token`, against the cluster of
    /// `kubeconfig`, plus `args`; waits until it is ready.
    pub async fn start(
        name: &str,
        kubeconfig: &Path,
        namespace: &str,
        token: &str,
        args: &[&str],
    ) -> Sidecar {
        closte_operator::tls::install_crypto_provider();
        let log = scratch(name).join("sidecar.log");
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_closte-operator"))
            .arg("sidecar")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--namespace", namespace])
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .env("CLOSTE_SIDECAR_TOKEN", token)
            .env("RUST_LOG", "info,closte_operator=debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start closte-operator sidecar");
        let sidecar = Sidecar {
            child,
            url: format!("http://127.0.0.1:{port}"),
            token: token.into(),
            log,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
        };
        eventually(30, "the sidecar to be ready", || async {
            let ready = sidecar
                .http
                .get(format!("{}/readyz", sidecar.url))
                .send()
                .await;
            ready.ok().filter(|r| r.status() == 200).map(drop)
        })
        .await;
        sidecar
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

impl Drop for Sidecar {
    fn drop(&mut self) {
        self.kill();
    }
}
