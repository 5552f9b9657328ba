//! The flags of `closte-operator controller`.

use std::net::SocketAddr;
use std::time::Duration;

use crate::closte::{ClosteArgs, KeyArgs};
use crate::probe::ProbeArgs;

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
    /// Serve only MappedDomains with these labels (a label selector such as shard=a), to split objects between several controllers.
    #[arg(long)]
    pub selector: Option<String>,
    /// Watch Secrets' metadata so a changed API key is tried at once; needs list/watch on Secrets. Without it, each pass reads its Secret by name.
    #[arg(long)]
    pub watch_secrets: bool,
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
    /// How long a leader's Lease lasts without renewal (whole seconds); a follower takes over after it. The leader renews every 2/15 of it and stops reconciling 2/3 of it after its last renewal was sent.
    #[arg(long, default_value = "15s", value_parser = crate::api::duration::parse_flag)]
    pub lease_duration: Duration,
    #[command(flatten)]
    pub probe: ProbeArgs,
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
