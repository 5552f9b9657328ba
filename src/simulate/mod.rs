//! `closte-operator simulate`: a local Closte for demos and tests. It answers
//! the client API as Closte does (where that is known), serves DNS for the
//! aliases it holds, and "issues" their certificates over HTTPS after a delay.
//! Faults are injected by flags or at run time through `/_sim/faults`.

pub mod dns;
pub mod faults;
pub mod http;
pub mod https;
pub mod state;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::net::{TcpListener, UdpSocket};

use self::faults::{ExistingAnswer, FaultKind, Faults, ListShape};
use self::state::Sim;

fn rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("{s:?} is not a number between 0 and 1")),
    }
}

#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// Address of the HTTP API: the client API under /api/client/, the admin API under /_sim/.
    #[arg(long, default_value = "127.0.0.1:8088")]
    pub listen: SocketAddr,
    /// API keys the simulated Closte accepts, one site (account) each. In the environment, comma-separated.
    #[arg(
        long = "api-key",
        env = "CLOSTE_CLIENT_API_KEY",
        hide_env_values = true,
        value_delimiter = ',',
        required = true
    )]
    pub api_keys: Vec<String>,
    /// Address of the DNS server (UDP and TCP) that answers for registered aliases; off when unset.
    #[arg(long)]
    pub dns_listen: Option<SocketAddr>,
    /// Address of the HTTPS endpoint that presents the aliases' certificates by SNI; off when unset.
    #[arg(long)]
    pub https_listen: Option<SocketAddr>,
    /// The address DNS answers with for registered aliases.
    #[arg(long, default_value = "127.0.0.1")]
    pub target_ip: IpAddr,
    /// Time from registration until an alias's certificate is served (e.g. 30s, 5m).
    #[arg(long, default_value = "10s", value_parser = crate::api::duration::parse_flag)]
    pub issue_delay: Duration,
    /// Where to write the simulator CA's certificate (PEM), for clients to trust.
    #[arg(long)]
    pub ca_out: Option<PathBuf>,
    /// File that keeps the aliases across restarts (keys are never written).
    #[arg(long)]
    pub state_file: Option<PathBuf>,
    /// Latency added to every client API request (e.g. 50ms).
    #[arg(long, default_value = "0s", value_parser = crate::api::duration::parse_flag)]
    pub latency: Duration,
    /// Share of client API requests answered with an injected failure, 0 to 1.
    #[arg(long, default_value = "0", value_parser = rate)]
    pub failure_rate: f64,
    /// The failures to inject, comma-separated, equally likely. `lost-answer`
    /// (an add or delete is applied, then answered 502) is drawn only when
    /// named; drawn for a getdomains, it leaves the request answered normally.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "500,502,429,hang,bad-json"
    )]
    pub failures: Vec<FaultKind>,
    /// How long a "hang" failure holds a request before answering 504.
    #[arg(long, default_value = "60s", value_parser = crate::api::duration::parse_flag)]
    pub hang: Duration,
    /// Writes per second accepted before answering 429; unlimited when unset.
    #[arg(long)]
    pub write_rate_limit: Option<f64>,
    /// Retry-After seconds sent with 429 answers (0 sends none).
    #[arg(long, default_value_t = 1)]
    pub retry_after: u64,
    /// A domain whose adds (and those of names under it) are rejected as invalid; repeatable.
    #[arg(long = "reject-domain")]
    pub reject_domains: Vec<String>,
    /// How getdomains writes its items.
    #[arg(long, value_enum, default_value = "objects")]
    pub list_shape: ListShape,
    /// What adding an alias that already exists answers.
    #[arg(long, value_enum, default_value = "error")]
    pub existing_answer: ExistingAnswer,
    /// Address of a simulated proxy or CDN in front of the site, on the HTTPS port: DNS answers it for aliases put behind it (PUT /_sim/proxied/DOMAIN {"proxied": true}); it serves its own CA's certificates (written to --ca-out after the site's) and hands requests on to the site.
    #[arg(long)]
    pub proxy_ip: Option<IpAddr>,
    /// The simulated site stands in for a WordPress network holding this sidecar token: its HTTPS endpoint answers proof requests (/.well-known/closte-operator/NONCE) as the mu-plugin does. Without it they get 404.
    #[arg(long, env = "CLOSTE_SIM_SITE_TOKEN", hide_env_values = true)]
    pub site_token: Option<String>,
    /// A WordPress (HOST:PORT, plain HTTP) the simulated site hands every HTTPS request on to, with its Host header and X-Forwarded-Proto: https, as Closte's web server does; proof requests are then WordPress's to answer.
    #[arg(long)]
    pub site_upstream: Option<SocketAddr>,
}

impl SimArgs {
    fn faults(&self) -> Faults {
        Faults {
            latency_ms: self.latency.as_millis() as u64,
            failure_rate: self.failure_rate,
            failure_kinds: self.failures.clone(),
            hang_ms: self.hang.as_millis() as u64,
            retry_after_secs: (self.retry_after > 0).then_some(self.retry_after),
            write_rate_limit: self.write_rate_limit,
            reject_domains: self.reject_domains.clone(),
            existing_answer: self.existing_answer,
            list_shape: self.list_shape,
            write_answer_delay_ms: 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the simulator CA: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("no usable API key: every --api-key is empty")]
    NoKeys,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SimError {
    let what = what.into();
    move |source| SimError::Io { what, source }
}

/// Binds UDP and TCP on the same port (the UDP port when 0 was asked for).
async fn bind_dns(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), SimError> {
    for _ in 0..20 {
        let udp = UdpSocket::bind(addr)
            .await
            .map_err(io(format!("cannot bind DNS (UDP) on {addr}")))?;
        let bound = udp.local_addr().map_err(io("DNS socket address"))?;
        match TcpListener::bind(bound).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if addr.port() != 0 => {
                return Err(io(format!("cannot bind DNS (TCP) on {bound}"))(e));
            }
            Err(_) => continue, // the TCP twin of a random UDP port was taken: try another
        }
    }
    Err(io(format!("cannot bind DNS on {addr}"))(
        std::io::Error::other("no free port pair"),
    ))
}

fn serve_https(
    listener: TcpListener,
    resolver: Arc<dyn rustls::server::ResolvesServerCert>,
    content: https::SiteContent,
) {
    tokio::spawn(async move {
        if let Err(e) = https::serve(listener, resolver, content).await {
            tracing::error!(error = %e, "HTTPS listener stopped");
        }
    });
}

/// Runs the simulator until SIGTERM or Ctrl-C. Prints one JSON line with the
/// bound addresses on stdout once every listener is up.
pub async fn run(args: SimArgs) -> Result<(), SimError> {
    crate::tls::install_crypto_provider();
    let keys: Vec<String> = args
        .api_keys
        .iter()
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty())
        .collect();
    if keys.is_empty() {
        return Err(SimError::NoKeys);
    }
    let mut sim = Sim::new(keys, args.faults(), args.issue_delay);
    if let Some(path) = &args.state_file {
        sim = sim
            .with_state_file(path.clone())
            .map_err(io(format!("cannot read state file {}", path.display())))?;
    }
    let shared = Arc::new(Mutex::new(sim));

    let api = TcpListener::bind(args.listen)
        .await
        .map_err(io(format!("cannot listen on {}", args.listen)))?;
    let api_addr = api.local_addr().map_err(io("API address"))?;
    let mut ready = json!({
        "api": format!("http://{api_addr}/api/client"),
        "admin": format!("http://{api_addr}/_sim"),
    });

    let _dns = match args.dns_listen {
        Some(addr) => {
            let (udp, tcp) = bind_dns(addr).await?;
            ready["dns"] = json!(udp.local_addr().map_err(io("DNS address"))?.to_string());
            let handler = dns::DnsHandler {
                sim: shared.clone(),
                target: args.target_ip,
                proxy: args.proxy_ip,
            };
            Some(dns::serve(handler, udp, tcp))
        }
        None => None,
    };

    if args.https_listen.is_some() || args.ca_out.is_some() {
        let ca = Arc::new(https::Ca::generate()?);
        let proxy_ca = match args.proxy_ip {
            Some(_) => Some(Arc::new(https::Ca::generate_named(https::PROXY_CA_NAME)?)),
            None => None,
        };
        if let Some(path) = &args.ca_out {
            let mut pem = ca.pem().to_owned();
            if let Some(proxy_ca) = &proxy_ca {
                pem.push_str(proxy_ca.pem());
            }
            std::fs::write(path, pem).map_err(io(format!("cannot write {}", path.display())))?;
            ready["ca"] = json!(path.display().to_string());
        }
        if let Some(addr) = args.https_listen {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(io(format!("cannot listen on {addr}")))?;
            let bound = listener.local_addr().map_err(io("HTTPS address"))?;
            ready["https"] = json!(bound.to_string());
            let resolver = Arc::new(https::SniResolver::new(shared.clone(), ca)?);
            let content = https::SiteContent {
                token: args.site_token.clone(),
                upstream: args.site_upstream,
            };
            serve_https(listener, resolver, content.clone());
            if let (Some(ip), Some(proxy_ca)) = (args.proxy_ip, proxy_ca) {
                // the same port on another address: one --https-port reaches both
                let addr = SocketAddr::new(ip, bound.port());
                let listener = TcpListener::bind(addr)
                    .await
                    .map_err(io(format!("cannot listen on {addr}")))?;
                ready["proxy"] = json!(addr.to_string());
                let resolver = Arc::new(https::ProxyResolver::new(shared.clone(), proxy_ca)?);
                serve_https(listener, resolver, content);
            }
        }
    }

    // listening before saying ready: a stop sent right after is not lost
    let stop = crate::shutdown::signal();
    println!("{ready}");
    tracing::info!(
        addresses = %ready,
        accounts = shared.lock().unwrap().accounts(),
        issue_delay_secs = args.issue_delay.as_secs_f64(),
        "Closte simulator ready"
    );

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        stop.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let server = axum::serve(api, http::router(shared.clone()))
        .with_graceful_shutdown(stopped(stop_rx.clone()));
    tokio::select! {
        result = server => result.map_err(io("API server"))?,
        // requests that hang on purpose must not hold up a shutdown
        () = async { stopped(stop_rx).await; tokio::time::sleep(Duration::from_secs(2)).await } => {}
    }
    shared.lock().unwrap().save();
    tracing::info!("Closte simulator stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sim: SimArgs,
    }

    #[test]
    fn flag_defaults_are_the_fault_defaults() {
        let cli = Cli::try_parse_from(["simulate", "--api-key", "k"]).unwrap();
        assert_eq!(cli.sim.faults(), Faults::default());
        let cli = Cli::try_parse_from([
            "simulate",
            "--api-key",
            "k",
            "--failures",
            "lost-answer,500",
        ])
        .unwrap();
        assert_eq!(
            cli.sim.faults().failure_kinds,
            [FaultKind::LostAnswer, FaultKind::ServerError]
        );
    }
}
