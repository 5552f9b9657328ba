//! What can go wrong talking to Closte, and what the caller should do about it.

use std::time::Duration;

/// A failed Closte call. Messages never contain the API key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClosteError {
    /// Closte refused the domain itself; retrying will not help.
    #[error("Closte rejected domain {domain:?}: {message}")]
    DomainRejected { domain: String, message: String },
    /// The API key is unknown or revoked; retrying will not help until it changes.
    #[error("Closte rejected the API key: {message}")]
    CredentialsRejected { message: String },
    /// Too many requests; the whole account should pause.
    #[error("Closte rate limit reached{}", retry_after_text(.retry_after))]
    RateLimited { retry_after: Option<Duration> },
    /// Network trouble, timeouts, 5xx, proxy error pages, malformed answers.
    #[error("Closte unavailable: {reason}")]
    Transient { reason: String },
    /// An answer the client does not understand.
    #[error("unexpected answer from Closte: {reason}")]
    Unexpected { reason: String },
    /// Not sent: this replica's leadership term is over ([`crate::fence`]).
    #[error(transparent)]
    Fenced(#[from] crate::fence::Fenced),
}

fn retry_after_text(retry_after: &Option<Duration>) -> String {
    retry_after
        .map(|d| format!(" (retry after {}s)", d.as_secs()))
        .unwrap_or_default()
}

/// What a caller should do after an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Give up until the input (domain, key) changes; report it.
    Stop,
    /// Try again later with exponential backoff.
    BackOff,
    /// Try again after this long (the whole account waits).
    RetryAfter(Duration),
}

/// Pause used for a 429 without `Retry-After`.
pub const DEFAULT_RATE_LIMIT_PAUSE: Duration = Duration::from_secs(5);

impl ClosteError {
    pub fn disposition(&self) -> Disposition {
        match self {
            ClosteError::DomainRejected { .. } | ClosteError::CredentialsRejected { .. } => {
                Disposition::Stop
            }
            ClosteError::RateLimited { retry_after } => {
                Disposition::RetryAfter(retry_after.unwrap_or(DEFAULT_RATE_LIMIT_PAUSE))
            }
            ClosteError::Transient { .. }
            | ClosteError::Unexpected { .. }
            | ClosteError::Fenced(_) => Disposition::BackOff,
        }
    }

    /// A short CamelCase reason for conditions, events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ClosteError::DomainRejected { .. } => "DomainRejected",
            ClosteError::CredentialsRejected { .. } => "CredentialsRejected",
            ClosteError::RateLimited { .. } => "RateLimited",
            ClosteError::Transient { .. } => "ClosteUnavailable",
            ClosteError::Unexpected { .. } => "UnexpectedAnswer",
            ClosteError::Fenced(_) => "NotLeader",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispositions() {
        let rejected = ClosteError::DomainRejected {
            domain: "x".into(),
            message: "no".into(),
        };
        assert_eq!(rejected.disposition(), Disposition::Stop);
        let limited = ClosteError::RateLimited { retry_after: None };
        assert_eq!(
            limited.disposition(),
            Disposition::RetryAfter(DEFAULT_RATE_LIMIT_PAUSE)
        );
        assert_eq!(limited.to_string(), "Closte rate limit reached");
        let limited = ClosteError::RateLimited {
            retry_after: Some(Duration::from_secs(7)),
        };
        assert_eq!(
            limited.to_string(),
            "Closte rate limit reached (retry after 7s)"
        );
        let down = ClosteError::Transient {
            reason: "HTTP 502".into(),
        };
        assert_eq!(down.disposition(), Disposition::BackOff);
        assert_eq!(down.reason(), "ClosteUnavailable");
    }
}
