//! Runs `closte-operator simulate` as a real process for a test, and talks to
//! its admin API.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;

pub struct Simulator {
    child: Child,
    pub api: String,
    pub admin: String,
    pub dns: Option<SocketAddr>,
    pub https: Option<SocketAddr>,
    pub ca: Option<PathBuf>,
    pub stderr: PathBuf,
    http: reqwest::Client,
}

/// A scratch folder under target/ for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = super::repo_root()
        .join("target/test-scratch")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Simulator {
    /// Like [`Simulator::start`], with DNS and HTTPS on free ports and its CA
    /// written to the test's scratch folder.
    pub fn start_with_probes(name: &str, args: &[&str]) -> Simulator {
        let ca = scratch(&format!("{name}-ca")).join("ca.pem");
        let mut all = vec![
            "--dns-listen",
            "127.0.0.1:0",
            "--https-listen",
            "127.0.0.1:0",
            "--ca-out",
            ca.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        let all: Vec<String> = all.iter().map(|s| s.to_string()).collect();
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        Simulator::start(name, &all)
    }

    /// Starts a simulator on free loopback ports with `args` added
    /// (`--api-key` at least), and waits for its ready line.
    pub fn start(name: &str, args: &[&str]) -> Simulator {
        closte_operator::tls::install_crypto_provider(); // for every reqwest client of the test
        let dir = scratch(name);
        let stderr = dir.join("simulator.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_closte-operator"))
            .args(["simulate", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "debug")
            .env_remove("CLOSTE_CLIENT_API_KEY")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("start closte-operator simulate");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ready: Value = serde_json::from_str(&line).unwrap_or_else(|_| {
            panic!(
                "simulator did not start: {}",
                std::fs::read_to_string(&stderr).unwrap_or_default()
            )
        });
        let text = |k: &str| ready[k].as_str().map(str::to_owned);
        Simulator {
            child,
            api: text("api").unwrap(),
            admin: text("admin").unwrap(),
            dns: text("dns").map(|a| a.parse().unwrap()),
            https: text("https").map(|a| a.parse().unwrap()),
            ca: text("ca").map(PathBuf::from),
            stderr,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.admin));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("admin API reachable");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Request counts by endpoint, plus `faults`, `requests` and `aliases`.
    pub async fn stats(&self) -> Value {
        self.admin(reqwest::Method::GET, "/stats", None).await.1
    }

    pub async fn count(&self, what: &str) -> u64 {
        self.stats().await[what].as_u64().unwrap_or(0)
    }

    pub async fn requests(&self) -> Vec<Value> {
        let (_, value) = self.admin(reqwest::Method::GET, "/requests", None).await;
        value.as_array().cloned().unwrap_or_default()
    }

    pub async fn clear_requests(&self) {
        self.admin(reqwest::Method::DELETE, "/requests", None).await;
    }

    pub async fn set_faults(&self, faults: Value) {
        let (status, body) = self
            .admin(reqwest::Method::PUT, "/faults", Some(faults))
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// Every alias's name, sorted.
    pub async fn aliases(&self) -> Vec<String> {
        let (_, value) = self.admin(reqwest::Method::GET, "/domains", None).await;
        let mut names: Vec<String> = value
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["domain"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    }

    pub async fn add_alias(&self, domain: &str, account: usize) {
        let body = serde_json::json!({ "domain": domain, "account": account });
        let (status, _) = self
            .admin(reqwest::Method::POST, "/domains", Some(body))
            .await;
        assert_eq!(status, 201);
    }

    /// Makes the HTTPS endpoint serve `mode` (issued, expired, other-host) for `domain`.
    pub async fn set_certificate(&self, domain: &str, mode: &str) {
        let path = format!("/certificates/{domain}");
        let body = serde_json::json!({ "mode": mode });
        let (status, _) = self.admin(reqwest::Method::PUT, &path, Some(body)).await;
        assert_eq!(status, 204);
    }

    pub async fn remove_alias(&self, domain: &str) -> bool {
        let path = format!("/domains/{domain}");
        self.admin(reqwest::Method::DELETE, &path, None).await.0 == 204
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        self.stop_with("TERM")
    }

    /// Sends SIGINT (Ctrl-C) and waits for the process to exit.
    pub fn interrupt(&mut self) -> ExitStatus {
        self.stop_with("INT")
    }

    fn stop_with(&mut self, signal: &str) -> ExitStatus {
        Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        self.child.wait().expect("wait for simulator")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
