//! A `spec.checkInterval` the CRD accepts, checked before it is written: the
//! sidecar's `--check-interval` flag and the interval a WordPress request
//! asks for go through the same rule, so a value the API server would refuse
//! (422) is refused with a reason before anything is sent. Pure.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::duration::{self, DurationError};

/// The shortest interval the CRD's validation rule allows.
pub const MIN: Duration = Duration::from_secs(10);
/// The longest interval the CRD's validation rule allows.
pub const MAX: Duration = Duration::from_secs(24 * 3600);
/// The CRD's `maxLength` of the field.
pub const MAX_LEN: usize = 32;

/// A valid `checkInterval`, kept as written (`5m` stays `5m`): the object
/// shows what was asked for, and equal strings mean "nothing to change".
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct CheckInterval(String);

/// Why a string is not a `checkInterval`. Messages are for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckIntervalError {
    #[error("checkInterval: {0}")]
    Syntax(#[from] DurationError),
    #[error("checkInterval {0:?} is longer than {MAX_LEN} characters")]
    TooLong(String),
    #[error("checkInterval {0:?} must be between 10s and 24h")]
    OutOfRange(String),
}

impl CheckInterval {
    /// `s` if the CRD accepts it as `checkInterval`: a duration such as
    /// `300s`, `5m` or `1h30m`, of at most [`MAX_LEN`] characters, between
    /// [`MIN`] and [`MAX`].
    pub fn parse(s: &str) -> Result<CheckInterval, CheckIntervalError> {
        // checked first: the length bounds the parse, and the API server
        // checks it before the rule
        if s.len() > MAX_LEN {
            return Err(CheckIntervalError::TooLong(s.to_owned()));
        }
        let interval = duration::parse(s)?;
        if !(MIN..=MAX).contains(&interval) {
            return Err(CheckIntervalError::OutOfRange(s.to_owned()));
        }
        Ok(CheckInterval(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for CheckInterval {
    type Err = CheckIntervalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CheckInterval::parse(s)
    }
}

impl fmt::Display for CheckInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_crds_range_as_written() {
        for s in [
            "10s", "300s", "5m", "1h30m", "1.5h", "24h", "86400s", "10000ms",
        ] {
            assert_eq!(CheckInterval::parse(s).unwrap().as_str(), s);
        }
    }

    #[test]
    fn refuses_what_the_crd_refuses_with_the_reason() {
        for s in ["9s", "9999ms", "24h1ns", "25h", "0s"] {
            assert!(
                matches!(
                    CheckInterval::parse(s),
                    Err(CheckIntervalError::OutOfRange(_))
                ),
                "{s}"
            );
        }
        for s in ["", "10", "5 m", "-10s", "1d", "PT5M", "ten seconds"] {
            assert!(
                matches!(CheckInterval::parse(s), Err(CheckIntervalError::Syntax(_))),
                "{s}"
            );
        }
        // in range, but longer than the CRD's maxLength
        let long = format!("{}10s", "0".repeat(MAX_LEN));
        assert!(matches!(
            CheckInterval::parse(&long),
            Err(CheckIntervalError::TooLong(_))
        ));
        let at_limit = format!("{}10s", "0".repeat(MAX_LEN - 3));
        assert!(CheckInterval::parse(&at_limit).is_ok());
        let message = CheckInterval::parse("5s").unwrap_err().to_string();
        assert!(message.contains("between 10s and 24h"), "{message}");
    }
}
