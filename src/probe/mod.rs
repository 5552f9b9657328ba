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

use crate::api::Verification;
use crate::domain::Domain;

fn parse_verification(text: &str) -> Result<Verification, String> {
    match text.to_ascii_lowercase().as_str() {
        "dns" => Ok(Verification::Dns),
        "http" => Ok(Verification::Http),
        "auto" => Ok(Verification::Auto),
        _ => Err(format!("{text:?} is none of DNS, HTTP, Auto")),
    }
}

/// What one check saw. TLS is probed when DNS matched, or when the domain
/// proved itself through another address (a proxy's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub dns: dns::DnsObservation,
    /// The targets the DNS answer was compared with.
    pub expected: Vec<String>,
    pub tls: Option<tls::TlsObservation>,
    /// The proof request, when one was asked for.
    pub proof: Option<proof::ProofObservation>,
}

/// Whether (and with which token) a check asks the domain for its proof.
#[derive(Debug, Clone, Copy)]
pub enum ProofAsk<'a> {
    /// No proof request.
    No,
    /// Ask for it whatever DNS says (verification HTTP).
    Always(&'a [u8]),
    /// Ask only when DNS does not match (verification Auto).
    WhenDnsMisses(&'a [u8]),
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
    /// How DNSReady is judged for MappedDomains without spec.verification: DNS, HTTP or Auto (see the CRD).
    #[arg(long, default_value = "Auto", value_parser = parse_verification)]
    pub verification: Verification,
    /// The Secret (NAME or NAME:KEY, key "token" by default) in a MappedDomain's namespace holding the WordPress sidecar token that signs the domain's proof; without it no proof is asked (verification HTTP stays unknown, Auto goes by DNS alone).
    #[arg(long)]
    pub proof_secret: Option<String>,
}

/// Why the checks cannot be set up.
#[derive(Debug, thiserror::Error)]
#[error("DNS/TLS checks: {0}")]
pub struct ProbeError(String);

/// One DNS-then-TLS check of a domain, with a global cap on checks in flight.
pub struct Prober {
    pub resolver: Arc<dyn dns::Resolve>,
    pub tls: tls::TlsProber,
    /// The proof request's TLS: the same roots as the TLS check.
    pub proof_tls: rustls::ClientConfig,
    pub timeout: Duration,
    pub https_port: u16,
    /// `--proof-secret`: where each namespace's proof token is.
    pub proof_secret: Option<String>,
    /// `--verification`: for objects without spec.verification.
    pub verification: Verification,
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
            proof_tls: tls.client_config(),
            timeout: args.probe_timeout,
            https_port: args.https_port,
            proof_secret: args.proof_secret.clone(),
            verification: args.verification,
            tls,
            in_flight: Semaphore::new(args.max_concurrent_probes.max(1)),
            default_targets: args.expected_targets.clone(),
        })
    }

    /// Resolves the domain (a random name under a wildcard), asks for its
    /// proof as `ask` says, and when DNS is right (or the proof came back
    /// through another address) probes TLS on the first address with the
    /// same name as SNI.
    pub async fn check(&self, domain: &Domain, expected: &[String], ask: ProofAsk<'_>) -> Probe {
        let _permit = self.in_flight.acquire().await.expect("never closed");
        let expected = if expected.is_empty() {
            self.default_targets.clone()
        } else {
            expected.to_vec()
        };
        let name = dns::probe_name(domain);
        let dns = dns::observe_name(self.resolver.as_ref(), &name, &expected).await;
        let address = dns.records.iter().find_map(|r| r.parse::<IpAddr>().ok());
        let matched = dns.verdict == dns::DnsVerdict::Matched;
        let token = match ask {
            ProofAsk::Always(token) => Some(token),
            ProofAsk::WhenDnsMisses(token) if !matched => Some(token),
            _ => None,
        };
        let proof = match (token, address) {
            (Some(token), Some(ip)) => {
                let nonce = proof::fresh_nonce();
                let host = name.as_str();
                Some(
                    proof::request(
                        &self.proof_tls,
                        self.timeout,
                        ip,
                        self.https_port,
                        host,
                        token,
                        &nonce,
                    )
                    .await,
                )
            }
            (Some(_), None) => Some(proof::ProofObservation::unanswered(format!(
                "{name} has no address to ask for its proof"
            ))),
            (None, _) => None,
        };
        let reached = matched || proof.as_ref().is_some_and(|p| p.verified);
        let tls = match (reached, address) {
            (true, Some(ip)) => Some(self.tls.probe(ip, &name).await),
            _ => None,
        };
        Probe {
            dns,
            expected,
            tls,
            proof,
        }
    }
}
