//! Fault injection for the simulated Closte API, set by flags and changed at
//! run time through `PUT /_sim/faults`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::closte::wire::Endpoint;

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
    /// An add or delete is applied, then its answer is lost on the way: HTTP
    /// 502 with a proxy's HTML page. Never drawn for getdomains (nothing to
    /// apply), which then answers normally.
    #[serde(rename = "lost-answer")]
    #[value(name = "lost-answer")]
    LostAnswer,
}

impl FaultKind {
    /// The failures drawn from when none are named: each answers in place of
    /// the call, which then changes nothing. `lost-answer` must be named.
    pub const DEFAULT_MIX: [FaultKind; 5] = [
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
            FaultKind::LostAnswer => "lost-answer",
        }
    }

    /// Whether the fault can befall a request to `endpoint`: losing the answer
    /// of a call that changes nothing is the same as answering it.
    pub fn applies_to(self, endpoint: Endpoint) -> bool {
        self != FaultKind::LostAnswer || endpoint.is_write()
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
    /// Delay between applying a write (add or delete) and answering it: the
    /// window in which a write is done on Closte while its caller cannot know yet.
    pub write_answer_delay_ms: u64,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            latency_ms: 0,
            failure_rate: 0.0,
            failure_kinds: FaultKind::DEFAULT_MIX.to_vec(),
            hang_ms: 60_000,
            retry_after_secs: Some(1),
            write_rate_limit: None,
            reject_domains: Vec::new(),
            existing_answer: ExistingAnswer::Error,
            list_shape: ListShape::Objects,
            write_answer_delay_ms: 0,
        }
    }
}

impl Faults {
    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms)
    }

    /// Draws the fault for one request to `endpoint` from two uniform numbers
    /// in [0, 1). A kind that cannot befall the endpoint (`lost-answer` for a
    /// read) draws no fault: the request is answered normally.
    pub fn draw(&self, endpoint: Endpoint, roll: f64, pick: f64) -> Option<FaultKind> {
        if self.failure_kinds.is_empty() || roll >= self.failure_rate {
            return None;
        }
        let index =
            ((pick * self.failure_kinds.len() as f64) as usize).min(self.failure_kinds.len() - 1);
        Some(self.failure_kinds[index]).filter(|kind| kind.applies_to(endpoint))
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
        let add = Endpoint::AddDomainAlias;
        assert_eq!(faults.draw(add, 0.5, 0.0), None);
        assert_eq!(faults.draw(add, 0.1, 0.0), Some(FaultKind::ServerError));
        assert_eq!(faults.draw(add, 0.1, 0.99), Some(FaultKind::BadJson));
        faults.failure_kinds = vec![FaultKind::Hang];
        assert_eq!(faults.draw(add, 0.29, 0.5), Some(FaultKind::Hang));
        faults.failure_kinds.clear();
        assert_eq!(faults.draw(add, 0.0, 0.0), None);
    }

    #[test]
    fn lost_answer_is_named_explicitly_and_befalls_writes_only() {
        use FaultKind::*;
        assert_eq!(
            Faults::default().failure_kinds,
            [ServerError, BadGateway, TooManyRequests, Hang, BadJson]
        );
        let mut faults: Faults =
            serde_json::from_str(r#"{"failureRate":1,"failureKinds":["lost-answer"]}"#).unwrap();
        assert_eq!(faults.failure_kinds, [LostAnswer]);
        for write in [Endpoint::AddDomainAlias, Endpoint::DeleteDomainAlias] {
            assert_eq!(faults.draw(write, 0.0, 0.5), Some(LostAnswer));
        }
        assert_eq!(faults.draw(Endpoint::GetDomains, 0.0, 0.5), None);
        // a read still draws the other kinds at their share
        faults.failure_kinds = vec![LostAnswer, ServerError];
        assert_eq!(faults.draw(Endpoint::GetDomains, 0.0, 0.2), None);
        assert_eq!(
            faults.draw(Endpoint::GetDomains, 0.0, 0.7),
            Some(ServerError)
        );
    }

    #[test]
    fn each_kind_has_one_name_in_flags_json_and_the_log() {
        use clap::ValueEnum;
        for &kind in FaultKind::value_variants() {
            let flag = kind.to_possible_value().unwrap();
            assert_eq!(flag.get_name(), kind.name());
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.name());
        }
        assert_eq!(
            FaultKind::from_str("lost-answer", false),
            Ok(FaultKind::LostAnswer)
        );
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
