//! The flags of `closte-operator controller`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::closte::{ClosteArgs, KeyArgs};

#[derive(Debug, clap::Args)]
pub struct ControllerArgs {
    #[command(flatten)]
    pub closte: ClosteArgs,
    /// The controller's own key; objects with spec.credentialsRef use their Secret's instead.
    #[command(flatten)]
    pub key: KeyArgs,
    /// Watch MappedDomains in this namespace only; all namespaces when unset.
    #[arg(long)]
    pub namespace: Option<String>,
    /// How often each account's alias list is re-read and settled objects are looked at again.
    #[arg(long, default_value = "300s", value_parser = crate::api::duration::parse_flag)]
    pub resync_period: Duration,
    /// Closte writes per second, per account.
    #[arg(long, default_value_t = 10.0)]
    pub closte_write_rate: f64,
    /// Closte requests in flight at once, per account.
    #[arg(long, default_value_t = 4)]
    pub closte_max_in_flight: usize,
    /// Decide and report Closte writes without doing them.
    #[arg(long)]
    pub dry_run: bool,
    /// Reconcile passes running at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: u16,
    /// Elect a leader through a Lease so that one replica writes at a time.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// Name of the leader election Lease.
    #[arg(long, default_value = "closte-operator")]
    pub lease_name: String,
    /// Namespace of the Lease; default: the pod's namespace in a cluster, else the kubeconfig context's, else "default".
    #[arg(long)]
    pub lease_namespace: Option<String>,
    /// How long a leader's Lease lasts without renewal; a follower takes over after it.
    #[arg(long, default_value = "15s", value_parser = crate::api::duration::parse_flag)]
    pub lease_duration: Duration,
    /// DNS server (ADDR:PORT) for the checks; the system's resolver when unset.
    #[arg(long)]
    pub dns_server: Option<SocketAddr>,
    /// Where correct DNS points (an IP or a hostname) for objects without spec.expectedTargets; repeatable. Without any, any address counts.
    #[arg(long = "expected-target")]
    pub expected_targets: Vec<String>,
    /// Port of the TLS check.
    #[arg(long, default_value_t = 443)]
    pub https_port: u16,
    /// PEM file of CAs the TLS check trusts besides the public (webpki) roots.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Time limit of one DNS query or TLS handshake.
    #[arg(long, default_value = "10s", value_parser = crate::api::duration::parse_flag)]
    pub probe_timeout: Duration,
    /// DNS/TLS checks running at once.
    #[arg(long, default_value_t = 32)]
    pub max_concurrent_probes: usize,
    /// Checks in one stage before it is reported failed (stage failed or ssl-failed); checking goes on, slower.
    #[arg(long, default_value_t = 6)]
    pub max_attempts: u32,
    /// Warn (CertificateExpiringSoon) when the certificate expires within this and no renewed one has appeared.
    #[arg(long, default_value = "336h", value_parser = crate::api::duration::parse_flag)]
    pub renew_warning: Duration,
    /// How often a done domain is checked again.
    #[arg(long, default_value = "12h", value_parser = crate::api::duration::parse_flag)]
    pub done_recheck: Duration,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
}
