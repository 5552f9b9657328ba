//! DNS observation: what a domain resolves to, and whether that contains one
//! of the expected targets. The verdict ([`judge`]) is pure; the lookups sit
//! behind [`Resolve`] so tests and the decision logic need no network.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::{Resolver, TokioResolver};

use crate::domain::{Domain, fold_name};

/// What one lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The CNAME chain (in order) and the addresses at its end.
    Answer {
        cnames: Vec<String>,
        addresses: Vec<IpAddr>,
    },
    NxDomain,
    /// The name exists but has no A/AAAA records.
    NoAnswer,
    Error(String),
}

/// The verdict on a domain's DNS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsVerdict {
    Matched,
    TargetMismatch,
    NxDomain,
    NoAnswer,
    ResolverError,
}

/// The verdict with what was found, for status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsObservation {
    pub verdict: DnsVerdict,
    /// CNAMEs and addresses of the answer.
    pub records: Vec<String>,
    pub message: String,
}

/// Compares a lookup with the expected targets. An IP target matches an
/// address of the answer; a hostname target matches a CNAME of the chain, or
/// when one of its own addresses (`target_addresses`) is in the answer. With
/// no targets configured, any address is a match.
pub fn judge(
    name: &str,
    lookup: &Lookup,
    expected: &[String],
    target_addresses: &[IpAddr],
) -> DnsObservation {
    let (cnames, addresses) = match lookup {
        Lookup::Answer { cnames, addresses } => (cnames, addresses),
        Lookup::NxDomain => {
            return observation(
                DnsVerdict::NxDomain,
                vec![],
                format!("{name} does not exist (NXDOMAIN)"),
            );
        }
        Lookup::NoAnswer => {
            return observation(
                DnsVerdict::NoAnswer,
                vec![],
                format!("{name} has no A or AAAA record"),
            );
        }
        Lookup::Error(e) => {
            return observation(
                DnsVerdict::ResolverError,
                vec![],
                format!("cannot resolve {name}: {e}"),
            );
        }
    };
    let records: Vec<String> = cnames
        .iter()
        .map(|c| fold_name(c))
        .chain(addresses.iter().map(IpAddr::to_string))
        .collect();
    if addresses.is_empty() {
        return observation(
            DnsVerdict::NoAnswer,
            records,
            format!("{name} has no A or AAAA record"),
        );
    }
    let matched = expected.is_empty()
        || expected
            .iter()
            .any(|target| match target.parse::<IpAddr>() {
                Ok(ip) => addresses.contains(&ip),
                Err(_) => cnames.iter().any(|c| fold_name(c) == fold_name(target)),
            })
        || addresses.iter().any(|a| target_addresses.contains(a));
    if matched {
        let message = format!("{name} resolves to {}", records.join(", "));
        observation(DnsVerdict::Matched, records, message)
    } else {
        let message = format!(
            "{name} resolves to {}, expected one of {}",
            records.join(", "),
            expected.join(", ")
        );
        observation(DnsVerdict::TargetMismatch, records, message)
    }
}

fn observation(verdict: DnsVerdict, records: Vec<String>, message: String) -> DnsObservation {
    DnsObservation {
        verdict,
        records,
        message,
    }
}

/// The name to look up for a domain: itself, or a random label under a wildcard.
pub fn probe_name(domain: &Domain) -> String {
    if domain.is_wildcard() {
        format!("closte-probe-{:08x}.{}", fastrand::u32(..), domain.base())
    } else {
        domain.as_str().to_owned()
    }
}

/// Looks names up.
#[async_trait::async_trait]
pub trait Resolve: Send + Sync {
    async fn lookup(&self, name: &str) -> Lookup;
}

/// hickory-resolver: the system's configuration, or one server.
pub struct HickoryResolve(TokioResolver);

impl HickoryResolve {
    /// Uses `server` (UDP and TCP) when given, else /etc/resolv.conf. Caching is
    /// off: every check must see the current answer. `timeout` bounds each query.
    pub fn new(server: Option<SocketAddr>, timeout: Duration) -> Result<HickoryResolve, String> {
        let mut builder = match server {
            Some(addr) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let server = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                Resolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![server]),
                    TokioRuntimeProvider::default(),
                )
            }
            None => Resolver::builder_tokio().map_err(|e| e.to_string())?,
        };
        let options = builder.options_mut();
        options.cache_size = 0;
        options.timeout = timeout;
        options.attempts = 1;
        builder
            .build()
            .map(HickoryResolve)
            .map_err(|e| e.to_string())
    }
}

#[async_trait::async_trait]
impl Resolve for HickoryResolve {
    async fn lookup(&self, name: &str) -> Lookup {
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        match self.0.lookup_ip(fqdn.as_str()).await {
            Ok(answer) => {
                let mut cnames = Vec::new();
                let mut addresses = Vec::new();
                for record in answer.as_lookup().answers() {
                    match &record.data {
                        RData::CNAME(target) => cnames.push(target.0.to_ascii()),
                        RData::A(a) => addresses.push(IpAddr::V4(a.0)),
                        RData::AAAA(a) => addresses.push(IpAddr::V6(a.0)),
                        _ => {}
                    }
                }
                Lookup::Answer { cnames, addresses }
            }
            Err(e) if e.is_nx_domain() => Lookup::NxDomain,
            Err(e) if e.is_no_records_found() => Lookup::NoAnswer,
            Err(e) => Lookup::Error(e.to_string()),
        }
    }
}

/// Resolves the domain (a random name under a wildcard) and the hostname
/// targets, and judges the answer.
pub async fn observe(
    resolver: &dyn Resolve,
    domain: &Domain,
    expected: &[String],
) -> DnsObservation {
    observe_name(resolver, &probe_name(domain), expected).await
}

/// [`observe`] for a name already chosen (the TLS check reuses it as SNI).
pub async fn observe_name(
    resolver: &dyn Resolve,
    name: &str,
    expected: &[String],
) -> DnsObservation {
    let lookup = resolver.lookup(name).await;
    let mut target_addresses = Vec::new();
    for target in expected.iter().filter(|t| t.parse::<IpAddr>().is_err()) {
        if let Lookup::Answer { addresses, .. } = resolver.lookup(target).await {
            target_addresses.extend(addresses);
        }
    }
    judge(name, &lookup, expected, &target_addresses)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(cnames: &[&str], addresses: &[&str]) -> Lookup {
        Lookup::Answer {
            cnames: cnames.iter().map(|c| c.to_string()).collect(),
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
        }
    }

    fn targets(t: &[&str]) -> Vec<String> {
        t.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn verdicts() {
        let ip = answer(&[], &["203.0.113.7"]);
        assert_eq!(
            judge("a", &ip, &targets(&["203.0.113.7"]), &[]).verdict,
            DnsVerdict::Matched
        );
        assert_eq!(
            judge("a", &ip, &[], &[]).verdict,
            DnsVerdict::Matched,
            "no target: any address"
        );
        let wrong = judge("a", &ip, &targets(&["198.51.100.1"]), &[]);
        assert_eq!(wrong.verdict, DnsVerdict::TargetMismatch);
        assert_eq!(wrong.records, ["203.0.113.7"]);
        assert!(
            wrong.message.contains("expected one of 198.51.100.1"),
            "{}",
            wrong.message
        );
        // a hostname target: in the CNAME chain, or by its own addresses
        let chain = answer(
            &["edge.example.net.", "Sites.Closte.Example."],
            &["203.0.113.7"],
        );
        assert_eq!(
            judge("a", &chain, &targets(&["sites.closte.example"]), &[]).verdict,
            DnsVerdict::Matched
        );
        let by_address = judge(
            "a",
            &ip,
            &targets(&["lb.example"]),
            &["203.0.113.7".parse().unwrap()],
        );
        assert_eq!(by_address.verdict, DnsVerdict::Matched);
        assert_eq!(
            judge("a", &ip, &targets(&["lb.example"]), &[]).verdict,
            DnsVerdict::TargetMismatch
        );
        assert_eq!(
            judge("a", &Lookup::NxDomain, &[], &[]).verdict,
            DnsVerdict::NxDomain
        );
        assert_eq!(
            judge("a", &Lookup::NoAnswer, &[], &[]).verdict,
            DnsVerdict::NoAnswer
        );
        assert_eq!(
            judge("a", &answer(&["x.example."], &[]), &[], &[]).verdict,
            DnsVerdict::NoAnswer
        );
        let error = judge("a", &Lookup::Error("timeout".into()), &[], &[]);
        assert_eq!(error.verdict, DnsVerdict::ResolverError);
        assert!(error.message.contains("timeout"));
    }

    #[test]
    fn wildcards_are_probed_under_a_random_label() {
        let wild = Domain::parse("*.blogs.example.org").unwrap();
        let name = probe_name(&wild);
        assert!(
            name.starts_with("closte-probe-") && name.ends_with(".blogs.example.org"),
            "{name}"
        );
        assert_ne!(probe_name(&wild), name);
        assert_eq!(
            probe_name(&Domain::parse("a.example.com").unwrap()),
            "a.example.com"
        );
    }
}
