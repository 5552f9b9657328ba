//! Observing the outside world like WordPress does, but better: what a domain
//! resolves to, and which certificate it serves.

pub mod dns;
pub mod tls;

use std::net::IpAddr;
use std::sync::Arc;

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

/// One DNS-then-TLS check of a domain, with a global cap on checks in flight.
pub struct Prober {
    pub resolver: Arc<dyn dns::Resolve>,
    pub tls: tls::TlsProber,
    pub in_flight: Semaphore,
    /// Targets for objects without spec.expectedTargets.
    pub default_targets: Vec<String>,
}

impl Prober {
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
