//! `checkInterval` and similar fields hold Kubernetes-style durations
//! (`90s`, `5m`, `1h30m`), the syntax CEL's `duration()` accepts; so do
//! the command-line flags, whose defaults are written here from the
//! settings' constants. Pure.

use std::time::Duration;

/// OpenAPI pattern for the duration strings this module parses.
pub const PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {0:?}: expected a number and unit (ns, us, ms, s, m, h), e.g. 300s or 1h30m"
)]
pub struct DurationError(pub String);

/// Parses a duration such as `300s`, `1.5h` or `1h30m` (Go's `time.ParseDuration`
/// without signs, the subset [`PATTERN`] allows).
pub fn parse(s: &str) -> Result<Duration, DurationError> {
    let err = || DurationError(s.to_owned());
    if s.is_empty() {
        return Err(err());
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        let (num, tail) = rest.split_at(num_end);
        if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
            return Err(err());
        }
        let value: f64 = num.parse().map_err(|_| err())?;
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_end);
        let seconds = match unit {
            "ns" => 1e-9,
            "us" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(err()),
        };
        total += value * seconds;
        rest = next;
    }
    Duration::try_from_secs_f64(total).map_err(|_| err())
}

/// [`parse`] for command-line flags (clap's `value_parser`).
pub fn parse_flag(s: &str) -> Result<Duration, String> {
    parse(s).map_err(|e| e.to_string())
}

/// A whole-second duration as a flag's default: whole hours in `h`, else
/// seconds (`300s`, `12h`); [`parse`] reads it back.
pub fn flag_default(d: Duration) -> String {
    match d.as_secs() {
        s if s > 0 && s % 3600 == 0 => format!("{}h", s / 3600),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_defaults_read_back() {
        for (d, flag) in [
            (300, "300s"),
            (12 * 3600, "12h"),
            (336 * 3600, "336h"),
            (0, "0s"),
        ] {
            assert_eq!(flag_default(Duration::from_secs(d)), flag);
            assert_eq!(parse(flag), Ok(Duration::from_secs(d)));
        }
    }

    #[test]
    fn parses_go_style_durations() {
        let cases = [
            ("300s", 300.0),
            ("10s", 10.0),
            ("5m", 300.0),
            ("1h30m", 5400.0),
            ("1.5h", 5400.0),
            ("24h", 86400.0),
            ("1500ms", 1.5),
            ("2m30s", 150.0),
        ];
        for (s, secs) in cases {
            assert_eq!(parse(s).unwrap().as_secs_f64(), secs, "{s}");
        }
    }

    #[test]
    fn rejects_other_syntax() {
        for s in [
            "", "10", "s", "10 s", "-5s", "1d", "5mins", ".5s", "5.s", "1h 30m", "PT5M",
        ] {
            assert!(parse(s).is_err(), "{s:?} should fail");
        }
    }
}
