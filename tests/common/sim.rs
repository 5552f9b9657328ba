//! The Closte simulator (`closte-operator simulate`) as a process for a
//! test, and its admin API.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use serde_json::Value;

use super::process::{Launch, Process};

pub struct Simulator {
    process: Process,
    pub api: String,
    pub admin: String,
    pub dns: Option<SocketAddr>,
    pub https: Option<SocketAddr>,
    pub ca: Option<PathBuf>,
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

/// The simulator of test `name` with `args` (`--api-key` at least); its
/// log in the test's scratch folder.
fn launch(name: &str, args: &[&str]) -> Launch {
    Launch::simulator(scratch(name).join("simulator.log")).args(args)
}

/// [`launch`] with DNS and HTTPS, its CA in a scratch folder of its own.
fn launch_with_checks(name: &str, args: &[&str]) -> Launch {
    let ca = scratch(&format!("{name}-ca")).join("ca.pem");
    launch(name, args).serving_checks(&ca)
}

impl Simulator {
    /// Starts a simulator with `args` (`--api-key` at least) and waits until
    /// it says where it listens.
    pub async fn up(name: &str, args: &[&str]) -> Simulator {
        Simulator::launch(launch(name, args)).await
    }

    /// [`Simulator::up`] with DNS and HTTPS too, for the controller's checks.
    pub async fn up_with_checks(name: &str, args: &[&str]) -> Simulator {
        Simulator::launch(launch_with_checks(name, args)).await
    }

    /// Starts `launch` (from [`Launch::simulator`]) and waits until it says
    /// where it listens.
    pub async fn launch(launch: Launch) -> Simulator {
        let process = launch.start().await;
        Simulator::from(process)
    }

    /// A started simulator process, its addresses read from its announcement.
    fn from(process: Process) -> Simulator {
        let announced = process.announced_now().expect("a started simulator");
        let ready: Value = serde_json::from_str(announced)
            .unwrap_or_else(|e| panic!("the simulator's addresses: {e}"));
        let text = |k: &str| ready[k].as_str().map(str::to_owned);
        Simulator {
            api: text("api").unwrap(),
            admin: text("admin").unwrap(),
            dns: text("dns").map(|a| a.parse().unwrap()),
            https: text("https").map(|a| a.parse().unwrap()),
            ca: text("ca").map(PathBuf::from),
            process,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The flags that send the controller's (or `status`'s) DNS and TLS
    /// checks to this simulator, never to the machine's resolver; none when
    /// it serves neither.
    pub fn check_flags(&self) -> Vec<String> {
        match (self.dns, self.https, &self.ca) {
            (Some(dns), Some(https), Some(ca)) => vec![
                format!("--dns-server={dns}"),
                format!("--https-port={}", https.port()),
                format!("--ca-file={}", ca.display()),
                "--expected-target=127.0.0.1".into(),
            ],
            _ => Vec::new(),
        }
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

    /// Puts `domain` behind the simulator's proxy (`--proxy-ip`): DNS
    /// answers the proxy's address, which serves the proxy's certificate.
    pub async fn set_proxied(&self, domain: &str, proxied: bool) {
        let body = serde_json::json!({ "proxied": proxied });
        let path = format!("/proxied/{domain}");
        let (status, _) = self.admin(reqwest::Method::PUT, &path, Some(body)).await;
        assert_eq!(status, 204);
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
        self.process.stop()
    }

    /// Sends SIGINT (Ctrl-C) and waits for the process to exit.
    pub fn interrupt(&mut self) -> ExitStatus {
        self.process.stop_with("INT")
    }

    pub fn log(&self) -> String {
        self.process.log_text()
    }

    /// Its log file.
    pub fn log_path(&self) -> &Path {
        self.process.log()
    }
}

/// A TLS client configuration that trusts the public roots and `ca` (PEM
/// file, the simulator's CAs), if given.
pub fn trusting(ca: Option<&Path>) -> rustls::ClientConfig {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    closte_operator::tls::install_crypto_provider();
    let mut roots = closte_operator::tls::public_roots();
    if let Some(ca) = ca {
        for cert in CertificateDer::pem_file_iter(ca).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
    }
    rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth()
}
