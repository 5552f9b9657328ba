//! `closte-operator check`: tests an API key the way WordPress's "test
//! connection" does, and says accepted, rejected or unreachable; with
//! `--domain D`, checks that domain once instead (DNS, the proof, the
//! certificate) as the controller would.

use crate::closte::client::BuildError;
use crate::closte::key::KeyError;
use crate::closte::wire::INVALID_DOMAIN_PREFIX;
use crate::closte::{ClosteArgs, ClosteClient, ClosteError, KeyArgs};

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub closte: ClosteArgs,
    #[command(flatten)]
    pub key: KeyArgs,
    /// Check this domain once (DNS, its proof, its certificate) instead of the API key.
    #[arg(long)]
    pub domain: Option<String>,
    /// File holding the WordPress sidecar token that signs the domain's proof (with --domain); without it no proof is asked.
    #[arg(long, requires = "domain")]
    pub proof_token_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub probe: crate::probe::ProbeArgs,
}

/// Why the check could not run at all (as opposed to a verdict on the key).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Client(#[from] BuildError),
    #[error(transparent)]
    Probe(#[from] crate::probe::ProbeError),
    #[error("{0}")]
    Domain(String),
    #[error("cannot read the proof token file {path}: {source}")]
    TokenFile {
        path: String,
        source: std::io::Error,
    },
}

/// What a check found, printed as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Key(KeyVerdict),
    /// The domain's lines, and whether it would be Ready.
    Domain {
        report: String,
        ready: bool,
    },
}

impl Outcome {
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Key(verdict) => verdict.exit_code(),
            Outcome::Domain { ready, .. } => u8::from(!ready),
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Key(verdict) => verdict.fmt(f),
            Outcome::Domain { report, .. } => f.write_str(report.trim_end()),
        }
    }
}

/// The verdict on a key, with the exit code each maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyVerdict {
    Accepted,
    Rejected(String),
    Unreachable(String),
}

impl KeyVerdict {
    pub fn exit_code(&self) -> u8 {
        match self {
            KeyVerdict::Accepted => 0,
            KeyVerdict::Rejected(_) => 2,
            KeyVerdict::Unreachable(_) => 3,
        }
    }
}

impl std::fmt::Display for KeyVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyVerdict::Accepted => f.write_str("accepted: Closte accepted the API key"),
            KeyVerdict::Rejected(why) => write!(f, "rejected: {why}"),
            KeyVerdict::Unreachable(why) => write!(f, "unreachable: {why}"),
        }
    }
}

/// Reads the key test's outcome as Ultimate Multisite does: only the exact
/// "Invalid or empty domain: " answer proves the key is accepted.
pub fn verdict(result: Result<(), ClosteError>) -> KeyVerdict {
    match result {
        Err(ClosteError::DomainRejected { message, .. }) if message == INVALID_DOMAIN_PREFIX => {
            KeyVerdict::Accepted
        }
        Err(e @ (ClosteError::Transient { .. } | ClosteError::RateLimited { .. })) => {
            KeyVerdict::Unreachable(e.to_string())
        }
        Err(e) => KeyVerdict::Rejected(e.to_string()),
        Ok(()) => KeyVerdict::Rejected(
            "Closte accepted an empty domain, which a real Closte does not".into(),
        ),
    }
}

/// Runs the check; `Err` when no key could be read or no client built.
pub async fn run(args: CheckArgs) -> Result<Outcome, CheckError> {
    if let Some(domain) = &args.domain {
        return check_domain(&args, domain).await;
    }
    let key = args.key.load()?;
    let client = ClosteClient::new(&args.closte.client_config())?;
    Ok(Outcome::Key(verdict(client.test_key(&key).await)))
}

/// One check of `name`, judged as the controller judges it.
async fn check_domain(args: &CheckArgs, name: &str) -> Result<Outcome, CheckError> {
    use std::fmt::Write;

    let domain =
        crate::domain::Domain::parse(name).map_err(|e| CheckError::Domain(e.to_string()))?;
    let token = match &args.proof_token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|source| CheckError::TokenFile {
                    path: path.display().to_string(),
                    source,
                })?
                .trim()
                .as_bytes()
                .to_vec(),
        ),
        None => None,
    };
    let prober = crate::probe::Prober::from_args(&args.probe)?;
    let spec = crate::api::MappedDomainSpec {
        domain: name.to_owned(),
        ..Default::default()
    };
    let check = crate::controller::gather::check(&prober, &domain, &spec, token.as_deref()).await;
    let judged =
        crate::plan::proof::dns_ready(check.verification, &check.dns, check.proof.as_ref());
    let mut report = String::new();
    let _ = writeln!(
        report,
        "DNS          {}: {}",
        check.dns.reason, check.dns.message
    );
    if let Some(proof) = &check.proof {
        let _ = writeln!(
            report,
            "Proof        {}: {} ({} ms)",
            proof.reason(),
            proof.message,
            proof.latency.as_millis()
        );
    }
    let _ = writeln!(
        report,
        "DNSReady     {} ({})",
        judged.verdict.status.as_str(),
        judged.verdict.reason
    );
    let certificate_valid = match &check.tls {
        Some(tls) => {
            let by = if judged.proxied { " (the proxy's)" } else { "" };
            let _ = writeln!(report, "Certificate  {}{by}: {}", tls.reason, tls.message);
            tls.valid()
        }
        None => {
            let _ = writeln!(
                report,
                "Certificate  not checked (checked once DNSReady is true)"
            );
            false
        }
    };
    Ok(Outcome::Domain {
        ready: judged.verdict.is_true() && certificate_valid,
        report,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        let rejected = |message: &str| {
            Err(ClosteError::DomainRejected {
                domain: String::new(),
                message: message.into(),
            })
        };
        assert_eq!(
            verdict(rejected("Invalid or empty domain: ")),
            KeyVerdict::Accepted
        );
        assert_eq!(
            verdict(rejected("Invalid or empty domain: ")).exit_code(),
            0
        );
        // not byte-exact: not accepted
        assert_eq!(verdict(rejected("Invalid or empty domain:")).exit_code(), 2);
        let key = Err(ClosteError::CredentialsRejected {
            message: "Invalid API key".into(),
        });
        assert_eq!(verdict(key).exit_code(), 2);
        let down = Err(ClosteError::Transient {
            reason: "connection refused".into(),
        });
        assert_eq!(
            verdict(down).to_string(),
            "unreachable: Closte unavailable: connection refused"
        );
        assert_eq!(
            verdict(Err(ClosteError::RateLimited { retry_after: None })).exit_code(),
            3
        );
        assert_eq!(verdict(Ok(())).exit_code(), 2);
    }

    /// The answer every Closte-compatible server gives to the key test is the one
    /// the check accepts.
    #[test]
    fn the_encoded_key_test_answer_is_accepted() {
        use crate::closte::wire::{self, Endpoint, Response};
        let answer = |body: &str| {
            let response = Response {
                status: 200,
                retry_after: None,
                body: body.as_bytes(),
            };
            wire::interpret(Endpoint::AddDomainAlias, None, response, str::to_owned).map(drop)
        };
        assert_eq!(
            verdict(answer(&wire::invalid_domain_body(""))),
            KeyVerdict::Accepted
        );
        assert_eq!(
            verdict(answer(&wire::invalid_domain_body("x"))).exit_code(),
            2
        );
    }
}
