//! `closte-operator check`: tests an API key the way WordPress's "test
//! connection" does, and says accepted, rejected or unreachable.

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
}

/// Why the check could not run at all (as opposed to a verdict on the key).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Client(#[from] BuildError),
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
pub async fn run(args: CheckArgs) -> Result<KeyVerdict, CheckError> {
    let key = args.key.load()?;
    let client = ClosteClient::new(&args.closte.client_config())?;
    Ok(verdict(client.test_key(&key).await))
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
