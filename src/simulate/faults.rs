//! Fault injection for the simulated Closte API, set by flags and changed at
//! run time through `PUT /_sim/faults`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One injected failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum FaultKind {
    /// HTTP 500 with a JSON body.
    #[serde(rename = "500")]
    #[value(name = "500")]
    ServerError,
    /// HTTP 502 with an HTML page, as a proxy in front of Closte sends.
    #[serde(rename = "502")]
    #[value(name = "502")]
    BadGateway,
    /// HTTP 429 with `Retry-After`.
    #[serde(rename = "429")]
    #[value(name = "429")]
    TooManyRequests,
    /// No answer until `hangMs` has passed (past the client's timeout), then 504.
    #[serde(rename = "hang")]
    #[value(name = "hang")]
    Hang,
    /// HTTP 200 with a truncated JSON body.
    #[serde(rename = "bad-json")]
    #[value(name = "bad-json")]
    BadJson,
}

impl FaultKind {
    pub const ALL: [FaultKind; 5] = [
        FaultKind::ServerError,
        FaultKind::BadGateway,
        FaultKind::TooManyRequests,
        FaultKind::Hang,
        FaultKind::BadJson,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::ServerError => "500",
            FaultKind::BadGateway => "502",
            FaultKind::TooManyRequests => "429",
            FaultKind::Hang => "hang",
            FaultKind::BadJson => "bad-json",
        }
    }
}

/// How `getdomains` writes its items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ListShape {
    /// Plain strings.
    Strings,
    /// Objects with PascalCase fields (`Domain`, `IsWildcard`, `Id`), as a .NET service writes them.
    #[default]
    Objects,
}

/// What an add of an alias that already exists answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ExistingAnswer {
    /// `{"success": false, "error": "Domain alias already exists"}`.
    #[default]
    Error,
    /// `{"success": true}`.
    Success,
}

/// The whole fault configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Faults {
    /// Delay added to every API request.
    pub latency_ms: u64,
    /// Share of API requests (0.0 to 1.0) answered with an injected failure.
    pub failure_rate: f64,
    /// The failures to draw from, equally likely.
    pub failure_kinds: Vec<FaultKind>,
    /// How long a `hang` lasts.
    pub hang_ms: u64,
    /// `Retry-After` seconds of injected and rate-limit 429s; none when unset.
    pub retry_after_secs: Option<u64>,
    /// Writes per second accepted across all accounts; more answer 429. Unlimited when unset.
    pub write_rate_limit: Option<f64>,
    /// Domains (and names under them) that adds reject as invalid.
    pub reject_domains: Vec<String>,
    pub existing_answer: ExistingAnswer,
    pub list_shape: ListShape,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            latency_ms: 0,
            failure_rate: 0.0,
            failure_kinds: FaultKind::ALL.to_vec(),
            hang_ms: 60_000,
            retry_after_secs: Some(1),
            write_rate_limit: None,
            reject_domains: Vec::new(),
            existing_answer: ExistingAnswer::Error,
            list_shape: ListShape::Objects,
        }
    }
}

impl Faults {
    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms)
    }

    /// Draws the fault for one request from two uniform numbers in [0, 1).
    pub fn draw(&self, roll: f64, pick: f64) -> Option<FaultKind> {
        if self.failure_kinds.is_empty() || roll >= self.failure_rate {
            return None;
        }
        let index =
            ((pick * self.failure_kinds.len() as f64) as usize).min(self.failure_kinds.len() - 1);
        Some(self.failure_kinds[index])
    }

    /// Whether an add of `domain` (folded) is refused as invalid.
    pub fn rejects(&self, domain: &str) -> bool {
        let base = domain.strip_prefix("*.").unwrap_or(domain);
        self.reject_domains.iter().any(|r| {
            let r = r.trim_end_matches('.').to_ascii_lowercase();
            base == r || base.ends_with(&format!(".{r}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draw_honours_rate_and_mix() {
        let mut faults = Faults {
            failure_rate: 0.3,
            ..Faults::default()
        };
        assert_eq!(faults.draw(0.5, 0.0), None);
        assert_eq!(faults.draw(0.1, 0.0), Some(FaultKind::ServerError));
        assert_eq!(faults.draw(0.1, 0.99), Some(FaultKind::BadJson));
        faults.failure_kinds = vec![FaultKind::Hang];
        assert_eq!(faults.draw(0.29, 0.5), Some(FaultKind::Hang));
        faults.failure_kinds.clear();
        assert_eq!(faults.draw(0.0, 0.0), None);
    }

    #[test]
    fn partial_json_keeps_defaults() {
        let faults: Faults =
            serde_json::from_str(r#"{"failureRate":1,"failureKinds":["429","bad-json"]}"#).unwrap();
        assert_eq!(faults.failure_rate, 1.0);
        assert_eq!(
            faults.failure_kinds,
            [FaultKind::TooManyRequests, FaultKind::BadJson]
        );
        assert_eq!(faults.hang_ms, 60_000);
    }

    #[test]
    fn rejects_domains_and_names_under_them() {
        let faults = Faults {
            reject_domains: vec!["Rejected.Example".into()],
            ..Faults::default()
        };
        assert!(faults.rejects("rejected.example"));
        assert!(faults.rejects("shop.rejected.example"));
        assert!(faults.rejects("*.rejected.example"));
        assert!(!faults.rejects("notrejected.example"));
    }
}
