//! The flags of `closte-operator controller`, and the settings they give.

use std::net::SocketAddr;
use std::time::Duration;

use crate::api::duration::flag_default;
use crate::closte::{ClosteArgs, FlowSettings, KeyArgs};
use crate::plan::{DefaultKeyScope, ProbeSettings, Settings};
use crate::probe::ProbeArgs;

#[derive(Debug, clap::Args)]
pub struct ControllerArgs {
    #[command(flatten)]
    pub closte: ClosteArgs,
    /// The controller's own key; objects with spec.credentialsRef use their Secret's instead.
    #[command(flatten)]
    pub key: KeyArgs,
    /// Namespaces where MappedDomains without spec.credentialsRef may use the controller's own key (comma-separated or repeated; empty allows none). With neither this nor --default-key-namespace-selector, the key serves every namespace; elsewhere such objects are Stalled with DefaultKeyNotAllowed.
    #[arg(long, value_name = "NS,...", value_delimiter = ',')]
    pub default_key_namespaces: Option<Vec<String>>,
    /// Namespaces whose labels match this selector (e.g. closte-operator.io/default-key=allowed) may use the controller's own key too; watches Namespaces, so it needs get/list/watch on them.
    #[arg(long, value_name = "SELECTOR", value_parser = crate::selector::parse)]
    pub default_key_namespace_selector: Option<kube::core::Selector>,
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
    #[arg(long, default_value = flag_default(Settings::RESYNC), value_parser = crate::api::duration::parse_flag)]
    pub resync_period: Duration,
    /// Closte writes per second, per account.
    #[arg(long, default_value_t = FlowSettings::WRITE_RATE)]
    pub closte_write_rate: f64,
    /// Closte requests in flight at once, per account.
    #[arg(long, default_value_t = FlowSettings::MAX_IN_FLIGHT)]
    pub closte_max_in_flight: usize,
    /// Decide and report Closte writes without doing them.
    #[arg(long)]
    pub dry_run: bool,
    /// Kubernetes API requests the reconcile passes and their events have in flight at once, with four times as many passes running; a new or changed object's requests up to its Closte call go first, and periodic re-checks get half as many passes (a sixteenth while new or changed objects are served).
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
    #[arg(long, default_value_t = ProbeSettings::MAX_ATTEMPTS)]
    pub max_attempts: u32,
    /// Warn (CertificateExpiringSoon) when the certificate expires within this and no renewed one has appeared.
    #[arg(long, default_value = flag_default(ProbeSettings::RENEW_WARNING), value_parser = crate::api::duration::parse_flag)]
    pub renew_warning: Duration,
    /// How often a done domain is checked again.
    #[arg(long, default_value = flag_default(ProbeSettings::DONE_RECHECK), value_parser = crate::api::duration::parse_flag)]
    pub done_recheck: Duration,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
}

impl ControllerArgs {
    /// The decisions' settings, from the flags.
    pub fn settings(&self) -> Settings {
        Settings {
            dry_run: self.dry_run,
            resync: self.resync_period,
            probe: ProbeSettings {
                max_attempts: self.max_attempts.max(1),
                renew_warning: self.renew_warning,
                done_recheck: self.done_recheck,
            },
        }
    }

    /// Each account's flow control, from the flags.
    pub fn flow(&self) -> FlowSettings {
        FlowSettings {
            write_rate: self.closte_write_rate,
            max_in_flight: self.closte_max_in_flight,
        }
    }

    /// Where the controller's own key may be used, from the two flags.
    pub fn default_key_scope(&self) -> DefaultKeyScope {
        DefaultKeyScope::from_flags(
            self.default_key_namespaces.as_deref(),
            self.default_key_namespace_selector.clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ControllerArgs,
    }

    fn scope(flags: &[&str]) -> DefaultKeyScope {
        let argv = std::iter::once("controller").chain(flags.iter().copied());
        Cli::try_parse_from(argv).unwrap().args.default_key_scope()
    }

    fn only(namespaces: &[&str], selector: Option<&str>) -> DefaultKeyScope {
        DefaultKeyScope::Only {
            namespaces: namespaces.iter().map(|n| n.to_string()).collect(),
            selector: selector.map(|s| crate::selector::parse(s).unwrap()),
        }
    }

    #[test]
    fn flag_defaults_are_the_settings_defaults() {
        let args = Cli::try_parse_from(["controller"]).unwrap().args;
        assert_eq!(args.settings(), Settings::default());
        assert_eq!(args.flow(), FlowSettings::default());
    }

    #[test]
    fn the_default_key_flags_give_its_scope() {
        assert_eq!(scope(&[]), DefaultKeyScope::Everywhere);
        assert_eq!(
            scope(&["--default-key-namespaces", "a,b"]),
            only(&["a", "b"], None)
        );
        assert_eq!(
            scope(&[
                "--default-key-namespaces",
                "a",
                "--default-key-namespaces=b"
            ]),
            only(&["a", "b"], None),
            "repeated"
        );
        assert_eq!(
            scope(&["--default-key-namespaces="]),
            only(&[], None),
            "given empty: no namespace"
        );
        let label = "closte-operator.io/default-key=allowed";
        assert_eq!(
            scope(&["--default-key-namespace-selector", label]),
            only(&[], Some(label))
        );
        assert_eq!(
            scope(&[
                "--default-key-namespaces",
                "wp",
                "--default-key-namespace-selector",
                label
            ]),
            only(&["wp"], Some(label))
        );
        let bad = Cli::try_parse_from(["controller", "--default-key-namespace-selector", "a b"]);
        assert!(
            bad.is_err(),
            "a selector that does not parse stops the start"
        );
    }
}
