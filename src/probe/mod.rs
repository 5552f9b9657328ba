//! Observing the outside world like WordPress does, but better: what a domain
//! resolves to, and which certificate it serves.

pub mod dns;
pub mod proof;
pub mod tls;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::domain::Domain;

/// What one check saw. TLS is probed only when DNS matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub dns: dns::DnsObservation,
    /// The targets the DNS answer was compared with.
    pub expected: Vec<String>,
    pub tls: Option<tls::TlsObservation>,
}

/// How DNS and TLS are checked, for every subcommand that checks them.
#[derive(Debug, Clone, clap::Args)]
pub struct ProbeArgs {
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
}

/// Why the checks cannot be set up.
#[derive(Debug, thiserror::Error)]
#[error("DNS/TLS checks: {0}")]
pub struct ProbeError(String);

/// One DNS-then-TLS check of a domain, with a global cap on checks in flight.
pub struct Prober {
    pub resolver: Arc<dyn dns::Resolve>,
    pub tls: tls::TlsProber,
    pub in_flight: Semaphore,
    /// Targets for objects without spec.expectedTargets.
    pub default_targets: Vec<String>,
}

impl Prober {
    pub fn from_args(args: &ProbeArgs) -> Result<Prober, ProbeError> {
        let extra_ca = match &args.ca_file {
            Some(path) => Some(
                std::fs::read(path)
                    .map_err(|e| ProbeError(format!("cannot read {}: {e}", path.display())))?,
            ),
            None => None,
        };
        let resolver =
            dns::HickoryResolve::new(args.dns_server, args.probe_timeout).map_err(ProbeError)?;
        let tls = tls::TlsProber::new(extra_ca.as_deref(), args.https_port, args.probe_timeout)
            .map_err(|e| ProbeError(e.to_string()))?;
        Ok(Prober {
            resolver: Arc::new(resolver),
            tls,
            in_flight: Semaphore::new(args.max_concurrent_probes.max(1)),
            default_targets: args.expected_targets.clone(),
        })
    }

    /// Resolves the domain (a random name under a wildcard) and, when DNS is
    /// right, probes TLS on the first address with the same name as SNI.
    pub async fn check(&self, domain: &Domain, expected: &[String]) -> Probe {
        let _permit = self.in_flight.acquire().await.expect("never closed");
        let expected = if expected.is_empty() {
            self.default_targets.clone()
        } else {
            expected.to_vec()
        };
        let name = dns::probe_name(domain);
        let dns = dns::observe_name(self.resolver.as_ref(), &name, &expected).await;
        let address = dns.records.iter().find_map(|r| r.parse::<IpAddr>().ok());
        let tls = match (dns.verdict, address) {
            (dns::DnsVerdict::Matched, Some(ip)) => Some(self.tls.probe(ip, &name).await),
            _ => None,
        };
        Probe { dns, expected, tls }
    }
}
