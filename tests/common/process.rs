//! The one way the tests, the WordPress harness and the benchmark run the
//! binary as a process: [`Launch`] says how (subcommand, flags, environment,
//! log file), [`Process`] is the running program.
//!
//! Every server binds port 0 on loopback and says in its log which address
//! it got (the controller's "serving /metrics ..." line, the sidecar's
//! "sidecar listening", the simulator's "Closte simulator ready"): no port is
//! ever picked beforehand and released for the child to bind.

use std::ffi::{OsStr, OsString};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::sim::Simulator;
use super::wait::eventually_every;

/// The binary under test, as cargo built it for this test or bench.
pub const BINARY: &str = env!("CARGO_BIN_EXE_closte-operator");

/// How long a server may take to say where it listens, or to be ready.
const STARTUP: Duration = Duration::from_secs(30);
/// How often to look while it starts: often, as the benchmark reports the
/// sidecar's start-up time.
const STARTUP_POLL: Duration = Duration::from_millis(20);

/// How to run the binary: one subcommand with its flags, environment and
/// log file. Cloneable, so a stopped process can be started again as it was.
#[derive(Clone, Debug)]
pub struct Launch {
    program: OsString,
    wrapper: Vec<OsString>,
    subcommand: String,
    args: Vec<OsString>,
    env: Vec<(OsString, Option<OsString>)>,
    log: PathBuf,
    append: bool,
    /// The control plane it talks to: the tests' own (started on first use)
    /// unless set.
    cluster: Cluster,
    /// The log line that says where it listens, and its field holding the address.
    announcement: Option<(&'static str, &'static str)>,
}

impl Launch {
    /// `closte-operator SUBCOMMAND`, its log (stderr) written to `log`, with
    /// `RUST_LOG=info,closte_operator=debug`.
    pub fn new(subcommand: &str, log: impl Into<PathBuf>) -> Launch {
        let announcement = match subcommand {
            "controller" => Some(("serving /metrics", "addr")),
            "sidecar" => Some(("sidecar listening", "addr")),
            "simulate" => Some(("Closte simulator ready", "addresses")),
            _ => None,
        };
        Launch {
            program: BINARY.into(),
            wrapper: Vec::new(),
            subcommand: subcommand.into(),
            args: Vec::new(),
            env: Vec::new(),
            log: log.into(),
            append: false,
            cluster: Cluster::None,
            announcement,
        }
        .env("RUST_LOG", "info,closte_operator=debug")
    }

    /// The controller against `sim` (its Closte API; with DNS and HTTPS when
    /// the simulator serves them, every check goes to it, never to the
    /// machine's resolver), metrics on a port of its own choosing, the test
    /// control plane. Set its key with `.env("CLOSTE_CLIENT_API_KEY", key)`.
    pub fn controller(sim: &Simulator, log: impl Into<PathBuf>) -> Launch {
        Launch::new("controller", log)
            .arg(format!("--closte-api-url={}", sim.api))
            .args(sim.check_flags())
            .arg("--metrics-addr=127.0.0.1:0")
            .tests_cluster()
    }

    /// A subcommand that runs to its end (`crd`, `status`, a refused
    /// start, ...), for [`Launch::output`]; no control plane unless
    /// `.kubeconfig(..)` names one.
    pub fn run(subcommand: &str) -> Launch {
        let mut launch = Launch::new(subcommand, PathBuf::new());
        launch.announcement = None;
        launch.env.clear(); // its output is the test's to read: the caller's RUST_LOG
        launch
    }

    /// The sidecar for `namespace` on a port of its own choosing, against
    /// the test control plane. Give it a token with `.env("CLOSTE_SIDECAR_TOKEN", ..)`
    /// or `--token-file`.
    pub fn sidecar(namespace: &str, log: impl Into<PathBuf>) -> Launch {
        Launch::new("sidecar", log)
            .arg("--listen=127.0.0.1:0")
            .arg(format!("--namespace={namespace}"))
            .tests_cluster()
    }

    /// The Closte simulator on a port of its own choosing; add `--api-key` at
    /// least. Never inherits the machine's `CLOSTE_CLIENT_API_KEY`.
    pub fn simulator(log: impl Into<PathBuf>) -> Launch {
        Launch::new("simulate", log)
            .arg("--listen=127.0.0.1:0")
            .env("RUST_LOG", "debug")
            .env_remove("CLOSTE_CLIENT_API_KEY")
    }

    /// The simulator's DNS and HTTPS too (ports of their own choosing), its
    /// CA written to `ca`.
    pub fn serving_checks(self, ca: &Path) -> Launch {
        self.arg("--dns-listen=127.0.0.1:0")
            .arg("--https-listen=127.0.0.1:0")
            .arg("--ca-out")
            .arg(ca)
    }

    /// Its servers on `host` instead of loopback (where a node's pods reach
    /// this machine).
    pub fn listening_on(mut self, host: std::net::IpAddr) -> Launch {
        for arg in &mut self.args {
            let flag = arg.to_str().and_then(|a| a.strip_suffix("=127.0.0.1:0"));
            if let Some(flag) = flag {
                *arg = format!("{flag}={host}:0").into();
            }
        }
        self
    }

    /// The controller's flags for one namespace, its lease there too.
    pub fn namespace(self, namespace: &str) -> Launch {
        self.arg(format!("--namespace={namespace}"))
            .arg(format!("--lease-namespace={namespace}"))
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Launch {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Launch {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Replaces `--FLAG=VALUE` (as the constructors write their flags).
    pub fn set(mut self, flag: &str, value: impl std::fmt::Display) -> Launch {
        let prefix = format!("{flag}=");
        self.args
            .retain(|a| !a.to_string_lossy().starts_with(&prefix));
        self.arg(format!("{flag}={value}"))
    }

    pub fn env(mut self, name: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Launch {
        self.env
            .push((name.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    pub fn env_remove(mut self, name: impl AsRef<OsStr>) -> Launch {
        self.env.push((name.as_ref().to_owned(), None));
        self
    }

    /// Against the control plane of `kubeconfig`.
    pub fn kubeconfig(mut self, kubeconfig: &Path) -> Launch {
        self.cluster = Cluster::Of(kubeconfig.to_owned());
        self
    }

    /// Against the tests' control plane, started when the process is.
    fn tests_cluster(mut self) -> Launch {
        self.cluster = Cluster::Tests;
        self
    }

    /// Runs another build of the binary (the benchmark's `BENCH_BIN`).
    pub fn program(mut self, program: impl AsRef<OsStr>) -> Launch {
        self.program = program.as_ref().to_owned();
        self
    }

    /// Runs the binary under `wrapper` (a program and its arguments, e.g.
    /// `heaptrack -o DIR/heap`); nothing when empty.
    pub fn wrapper(mut self, wrapper: &str) -> Launch {
        self.wrapper = wrapper.split_whitespace().map(OsString::from).collect();
        self
    }

    /// Adds to the log file instead of emptying it (a restart's log follows
    /// the first run's).
    pub fn append_log(mut self) -> Launch {
        self.append = true;
        self
    }

    pub fn log(&self) -> &Path {
        &self.log
    }

    fn command(&self) -> Command {
        let mut command = match self.wrapper.split_first() {
            Some((program, words)) => {
                let mut command = Command::new(program);
                command.args(words).arg(&self.program);
                command
            }
            None => Command::new(&self.program),
        };
        command.arg(&self.subcommand).args(&self.args);
        match &self.cluster {
            Cluster::None => {}
            Cluster::Tests => {
                command.env("KUBECONFIG", super::kubeconfig());
            }
            Cluster::Of(path) => {
                command.env("KUBECONFIG", path);
            }
        }
        for (name, value) in &self.env {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
        if self.log.as_os_str().is_empty() {
            command.stdout(Stdio::piped()).stderr(Stdio::piped());
            return command;
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(self.append)
            .truncate(!self.append)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.log.display()));
        command.stdout(Stdio::null()).stderr(log);
        command
    }

    /// Runs it to its end (made with [`Launch::run`]): its status and both
    /// outputs.
    pub fn output(self) -> std::process::Output {
        assert!(
            self.log.as_os_str().is_empty(),
            "output() is for Launch::run"
        );
        self.command()
            .output()
            .unwrap_or_else(|e| panic!("cannot run closte-operator {}: {e}", self.subcommand))
    }

    /// Starts it and returns at once; [`Process::addr`] waits for the address.
    pub fn spawn(self) -> Process {
        closte_operator::tls::install_crypto_provider(); // for every reqwest client of the test
        // an earlier run's lines (an appended log) announce nothing of this one
        let earlier = match self.append {
            true => std::fs::metadata(&self.log).map_or(0, |m| m.len() as usize),
            false => 0,
        };
        let child = self
            .command()
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start closte-operator {}: {e}", self.subcommand));
        Process {
            child,
            launch: self,
            earlier,
            announced: OnceLock::new(),
            started: Instant::now(),
            http: http_client(),
        }
    }

    /// Starts it and waits until it says where it listens (when it is a
    /// server).
    pub async fn start(self) -> Process {
        let announces = self.announcement.is_some();
        let process = self.spawn();
        if announces {
            process.announced().await;
        }
        process
    }
}

#[derive(Clone, Debug)]
enum Cluster {
    None,
    Tests,
    Of(PathBuf),
}

/// A running `closte-operator`; killed when dropped.
pub struct Process {
    child: Child,
    launch: Launch,
    /// Bytes of the log written by earlier runs.
    earlier: usize,
    announced: OnceLock<String>,
    started: Instant,
    http: reqwest::Client,
}

impl Process {
    /// Its log file (stderr).
    pub fn log(&self) -> &Path {
        self.launch.log()
    }

    /// What its log line announcing the listener says (the address, or the
    /// simulator's JSON of addresses), read once it is there. Fails the test
    /// when the process exits first or says nothing in time.
    pub async fn announced(&self) -> &str {
        if let Some(value) = self.announced.get() {
            return value;
        }
        let value = eventually_every(STARTUP, STARTUP_POLL, &self.what_listens(), || async {
            self.announcement()
        })
        .await;
        self.announced.get_or_init(|| value)
    }

    /// What it announced, if that has been read already.
    pub fn announced_now(&self) -> Option<&str> {
        self.announced.get().map(String::as_str)
    }

    fn what_listens(&self) -> String {
        format!(
            "closte-operator {} to say where it listens (in {})",
            self.launch.subcommand,
            self.log().display()
        )
    }

    fn announcement(&self) -> Result<String, String> {
        let (message, field) = self
            .launch
            .announcement
            .expect("this subcommand serves nothing");
        let log = self.log_text();
        if let Some(value) = log
            .get(self.earlier..)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(message))
            .find_map(|l| log_field(l, field))
        {
            return Ok(value);
        }
        assert!(
            self.running(),
            "closte-operator {} exited:\n{log}",
            self.launch.subcommand
        );
        Err(log.lines().last().unwrap_or("an empty log").to_owned())
    }

    /// The address it listens on.
    pub async fn addr(&self) -> SocketAddr {
        parse_addr(self.announced().await)
    }

    /// `http://ADDR` of its listener; only once it has announced it
    /// ([`Launch::start`] waits for that).
    pub fn url(&self) -> String {
        let announced = self
            .announced_now()
            .expect("the address is known once the process is started (Launch::start)");
        format!("http://{}", parse_addr(announced))
    }

    /// Waits until `GET /readyz` answers 200; returns the time since it was
    /// started.
    pub async fn ready(&self) -> Duration {
        self.addr().await;
        let readyz = format!("{}/readyz", self.url());
        eventually_exited(self, "/readyz to answer 200", || async {
            let response = self.http.get(&readyz).send().await;
            match response {
                Ok(r) if r.status() == 200 => Ok(()),
                Ok(r) => Err(r.status().to_string()),
                Err(e) => Err(e.to_string()),
            }
        })
        .await;
        self.started.elapsed()
    }

    /// Its `/metrics` as text.
    pub async fn scrape(&self) -> String {
        self.fetch_metrics(None)
            .await
            .unwrap_or_else(|e| panic!("no /metrics from {}: {e}", self.log().display()))
    }

    /// Its `/metrics` (with `token` as bearer, for the sidecar), None when
    /// the endpoint does not answer.
    pub async fn try_scrape(&self, token: Option<&str>) -> Option<String> {
        self.fetch_metrics(token).await.ok()
    }

    /// Its `/metrics`, or why it did not answer.
    pub async fn fetch_metrics(&self, token: Option<&str>) -> Result<String, reqwest::Error> {
        let mut request = self
            .http
            .get(format!("http://{}/metrics", self.addr().await));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await?.error_for_status()?.text().await
    }

    /// The sum of every series of a metric (by name prefix, labels included),
    /// e.g. `closte_operator_mapped_domains{stage="done"}`.
    pub async fn metric(&self, series: &str) -> f64 {
        metric_sum(&self.scrape().await, series)
    }

    /// Like [`Process::metric`], None when the endpoint does not answer.
    pub async fn try_metric(&self, series: &str) -> Option<f64> {
        Some(metric_sum(&self.try_scrape(None).await?, series))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    /// Lines of its log that say it panicked.
    pub fn panics(&self) -> Vec<String> {
        self.log_text()
            .lines()
            .filter(|l| l.contains("panicked"))
            .map(str::to_owned)
            .collect()
    }

    /// Fails the test when its log says it panicked.
    pub fn assert_no_panic(&self) {
        let panics = self.panics();
        assert!(
            panics.is_empty(),
            "{} panicked: {panics:?}",
            self.log().display()
        );
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it still runs (not exited, not even as a zombie not yet waited for).
    pub fn running(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).is_ok_and(|stat| {
            // the state follows the command name, which is in parentheses
            !stat
                .rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z'))
        })
    }

    /// Sends `signal` (TERM, INT, KILL, STOP, CONT, ...) without waiting.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal} {}", self.pid());
    }

    /// SIGTERM, and waits for it to exit.
    pub fn stop(&mut self) -> ExitStatus {
        self.stop_with("TERM")
    }

    /// Sends `signal` and waits for it to exit.
    pub fn stop_with(&mut self, signal: &str) -> ExitStatus {
        if let Ok(Some(status)) = self.child.try_wait() {
            return status;
        }
        self.signal(signal);
        self.child.wait().expect("wait for closte-operator")
    }

    /// Its exit status, if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// SIGKILL, and waits.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// How it was started: to start it again, e.g.
    /// `process.launch().append_log().set("--listen", addr)`.
    pub fn launch(&self) -> Launch {
        self.launch.clone()
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

/// [`eventually`] that fails at once, with the log, when the process exits.
async fn eventually_exited<F, Fut>(process: &Process, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let what = format!("{what} ({})", process.log().display());
    eventually_every(STARTUP, STARTUP_POLL, &what, || {
        assert!(
            process.running(),
            "{} exited:\n{}",
            process.log().display(),
            process.log_text()
        );
        check()
    })
    .await
}

/// The value of field `name` in one log line, in the text format
/// (`name=value`) or the JSON one (`"fields":{"name":"value"}`).
pub fn log_field(line: &str, name: &str) -> Option<String> {
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(line) {
        return json["fields"][name].as_str().map(str::to_owned);
    }
    let start = line.find(&format!(" {name}="))? + name.len() + 2;
    let value = line[start..].split_whitespace().next()?;
    Some(value.trim_matches('"').to_owned())
}

/// The address in an announcement: the address itself, or the simulator's
/// The tests' HTTP client for a process's endpoints. It keeps no
/// connection alive: a server that closes an idle one (the sidecar's
/// `--header-read-timeout`) just as the next request is sent on it fails
/// that request, however rarely.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// JSON whose `api` is `http://ADDR/api/client`.
fn parse_addr(announced: &str) -> SocketAddr {
    if let Ok(addr) = announced.parse() {
        return addr;
    }
    let json: serde_json::Value =
        serde_json::from_str(announced).unwrap_or_else(|_| panic!("not an address: {announced}"));
    let api = json["api"].as_str().expect("the simulator's API address");
    api.trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// The sum of every series of `text` (OpenMetrics) whose line starts with
/// `series`.
pub fn metric_sum(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(series))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
