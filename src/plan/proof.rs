//! DNSReady from the DNS answer and, where the mode asks for it, the proof:
//! a request to the domain that came back from this network with this
//! object's proof. A domain behind a CDN or proxy never resolves to the
//! Closte site, but it proves; a domain whose DNS looks right while it
//! serves another network does not. Pure.

use super::checks::Verdict;
use super::facts::DnsCheck;
use crate::api::Verification;
use crate::api::conditions::{Reason, Status};

/// What the proof request got back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofOutcome {
    /// This network's proof for this object.
    Proven,
    /// A proof, but another network's or namespace's.
    OtherNetwork,
    /// 404: nothing of this network serves the domain.
    NotFound,
    /// Anything else: another status, a body that is no proof, a redirect to
    /// another host.
    Unexpected,
    /// No answer: connection, TLS or timeout.
    Unreachable,
    /// Not asked: the controller has no token for the namespace to check
    /// an answer with.
    NoToken,
}

/// One proof request and what came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofCheck {
    pub outcome: ProofOutcome,
    /// The URL asked, without the nonce's secret part.
    pub url: String,
    /// What was seen, for the condition's message.
    pub message: String,
    /// How long the request took: shown by `check --domain`, never put in
    /// the status (it would change, and cost a write, at every check).
    pub latency: std::time::Duration,
}

impl ProofCheck {
    fn proven(&self) -> bool {
        self.outcome == ProofOutcome::Proven
    }

    pub fn reason(&self) -> Reason {
        match self.outcome {
            ProofOutcome::Proven => Reason::Proven,
            ProofOutcome::OtherNetwork => Reason::ProofMismatch,
            ProofOutcome::NotFound => Reason::ProofNotFound,
            ProofOutcome::Unexpected => Reason::ProofUnexpected,
            ProofOutcome::Unreachable => Reason::ProofUnreachable,
            ProofOutcome::NoToken => Reason::ProofTokenMissing,
        }
    }
}

/// Whether a check of this mode needs the proof request, given the DNS
/// answer: HTTP always, Auto only when DNS does not match.
pub fn proof_needed(mode: Verification, dns: &DnsCheck) -> bool {
    match mode {
        Verification::Dns => false,
        Verification::Http => true,
        Verification::Auto => !dns.matched(),
    }
}

/// DNSReady, and whether the domain is served through a proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsJudgement {
    pub verdict: Verdict,
    /// The proof stands in for DNS: the certificate seen is the proxy's.
    pub proxied: bool,
}

/// DNSReady of one check. `proof` is `None` when none was asked (see
/// [`proof_needed`]) or none could be sent.
pub fn dns_ready(mode: Verification, dns: &DnsCheck, proof: Option<&ProofCheck>) -> DnsJudgement {
    let plain = |verdict| DnsJudgement {
        verdict,
        proxied: false,
    };
    let by_dns = || {
        Verdict::new(
            Status::from_bool(dns.matched()),
            dns.reason,
            dns.message.clone(),
        )
    };
    match (mode, proof) {
        (Verification::Dns, _) => plain(by_dns()),
        (Verification::Auto, _) if dns.matched() => plain(by_dns()),
        // no proof to go by: the DNS answer's own verdict stands
        (Verification::Auto, None) => plain(by_dns()),
        (Verification::Http, None) => plain(Verdict::new(
            Status::Unknown,
            Reason::NotChecked,
            "the proof has not been requested yet",
        )),
        (Verification::Http, Some(p)) => plain(Verdict::new(
            Status::from_bool(p.proven()),
            p.reason(),
            p.message.clone(),
        )),
        (Verification::Auto, Some(p)) if p.proven() => DnsJudgement {
            verdict: Verdict::new(
                Status::True,
                Reason::Proxied,
                format!(
                    "{}, but the domain proves this network: a proxy or CDN in front; {}",
                    dns.message, p.message
                ),
            ),
            proxied: true,
        },
        // the proof says more than the mismatch: it was asked and failed
        (Verification::Auto, Some(p)) => plain(Verdict::new(
            Status::False,
            p.reason(),
            format!("{}; {}", dns.message, p.message),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dns(reason: Reason) -> DnsCheck {
        DnsCheck {
            reason,
            records: vec!["198.51.100.7".into()],
            message: format!("DNS: {reason}"),
        }
    }

    fn proof(outcome: ProofOutcome) -> ProofCheck {
        ProofCheck {
            outcome,
            url: "https://shop.example.com/.well-known/closte-operator/n".into(),
            message: "proof: seen".into(),
            latency: std::time::Duration::from_millis(20),
        }
    }

    use ProofOutcome::*;
    use Verification::*;

    /// mode, DNS answer, proof -> DNSReady's status and reason, proxied.
    type Row = (
        Verification,
        Reason,
        Option<ProofOutcome>,
        Status,
        Reason,
        bool,
    );

    /// mode x DNS x proof -> (status, reason, proxied): the whole table.
    #[test]
    fn the_decision_table() {
        let rows: &[Row] = &[
            // DNS: today's rule, whatever a proof said
            (
                Dns,
                Reason::Matched,
                None,
                Status::True,
                Reason::Matched,
                false,
            ),
            (
                Dns,
                Reason::TargetMismatch,
                Some(Proven),
                Status::False,
                Reason::TargetMismatch,
                false,
            ),
            (
                Dns,
                Reason::NxDomain,
                None,
                Status::False,
                Reason::NxDomain,
                false,
            ),
            // Auto: DNS first
            (
                Auto,
                Reason::Matched,
                None,
                Status::True,
                Reason::Matched,
                false,
            ),
            (
                Auto,
                Reason::Matched,
                Some(OtherNetwork),
                Status::True,
                Reason::Matched,
                false,
            ),
            (
                Auto,
                Reason::TargetMismatch,
                None,
                Status::False,
                Reason::TargetMismatch,
                false,
            ),
            // Auto: a proxied domain proves
            (
                Auto,
                Reason::TargetMismatch,
                Some(Proven),
                Status::True,
                Reason::Proxied,
                true,
            ),
            // Auto: pointing elsewhere is never Ready, and says why
            (
                Auto,
                Reason::TargetMismatch,
                Some(OtherNetwork),
                Status::False,
                Reason::ProofMismatch,
                false,
            ),
            (
                Auto,
                Reason::TargetMismatch,
                Some(NotFound),
                Status::False,
                Reason::ProofNotFound,
                false,
            ),
            (
                Auto,
                Reason::TargetMismatch,
                Some(Unexpected),
                Status::False,
                Reason::ProofUnexpected,
                false,
            ),
            (
                Auto,
                Reason::NxDomain,
                Some(Unreachable),
                Status::False,
                Reason::ProofUnreachable,
                false,
            ),
            // HTTP without a token to check a proof with: not Ready, and says why
            (
                Http,
                Reason::Matched,
                Some(NoToken),
                Status::False,
                Reason::ProofTokenMissing,
                false,
            ),
            // HTTP: the proof decides; DNS is only recorded
            (
                Http,
                Reason::TargetMismatch,
                Some(Proven),
                Status::True,
                Reason::Proven,
                false,
            ),
            (
                Http,
                Reason::Matched,
                Some(Proven),
                Status::True,
                Reason::Proven,
                false,
            ),
            (
                Http,
                Reason::Matched,
                Some(OtherNetwork),
                Status::False,
                Reason::ProofMismatch,
                false,
            ),
            (
                Http,
                Reason::Matched,
                Some(NotFound),
                Status::False,
                Reason::ProofNotFound,
                false,
            ),
            (
                Http,
                Reason::Matched,
                None,
                Status::Unknown,
                Reason::NotChecked,
                false,
            ),
        ];
        for (mode, answer, outcome, status, reason, proxied) in rows {
            let p = outcome.clone().map(proof);
            let got = dns_ready(*mode, &dns(*answer), p.as_ref());
            assert_eq!(
                (got.verdict.status, got.verdict.reason, got.proxied),
                (*status, *reason, *proxied),
                "{mode:?} x {answer} x {outcome:?}"
            );
        }
    }

    #[test]
    fn the_proof_is_asked_only_where_it_can_decide() {
        assert!(!proof_needed(Dns, &dns(Reason::TargetMismatch)));
        assert!(!proof_needed(Auto, &dns(Reason::Matched)));
        assert!(proof_needed(Auto, &dns(Reason::TargetMismatch)));
        assert!(proof_needed(Auto, &dns(Reason::NxDomain)));
        assert!(proof_needed(Http, &dns(Reason::Matched)));
    }

    #[test]
    fn a_proxied_verdict_names_both_answers() {
        let got = dns_ready(Auto, &dns(Reason::TargetMismatch), Some(&proof(Proven)));
        assert!(
            got.verdict.message.contains("DNS: TargetMismatch"),
            "{}",
            got.verdict.message
        );
        assert!(
            got.verdict.message.contains("proof: seen"),
            "{}",
            got.verdict.message
        );
    }
}
