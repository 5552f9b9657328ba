//! The simulated Closte: accounts and their aliases, the request log, and the
//! answers to the three client API calls. No IO but the optional state file.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::faults::{ExistingAnswer, FaultKind, Faults, ListShape};
use crate::closte::limiter::TokenBucket;
use crate::closte::wire::{self, Endpoint, ListItem};
use crate::domain::{self, fold_name};

/// Requests kept in the log; older ones are dropped.
const LOG_CAPACITY: usize = 200_000;

/// One alias on a simulated site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alias {
    /// Folded name, with `*.` for a wildcard.
    pub domain: String,
    pub wildcard: bool,
    /// Unix milliseconds of registration.
    pub added_at_ms: u64,
}

impl Alias {
    fn new(domain: String, now_ms: u64) -> Alias {
        Alias {
            wildcard: domain.starts_with("*."),
            domain,
            added_at_ms: now_ms,
        }
    }

    /// Whether the simulated certificate has been issued by `now_ms`.
    pub fn issued(&self, issue_delay: Duration, now_ms: u64) -> bool {
        now_ms >= self.added_at_ms + issue_delay.as_millis() as u64
    }
}

/// One request to the client API, as the admin API shows it (no key).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    pub seq: u64,
    pub at_ms: u64,
    pub endpoint: String,
    pub method: String,
    /// Index of the account whose key was sent; absent for an unknown key.
    pub account: Option<usize>,
    pub domain: Option<String>,
    pub status: u16,
    /// The injected fault, if one answered.
    pub fault: Option<String>,
}

/// An HTTP answer of the simulated API.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub html: bool,
    pub retry_after: Option<u64>,
}

impl Answer {
    /// A JSON answer of Closte's (bodies from [`wire`]).
    fn closte(status: u16, body: String) -> Answer {
        Answer {
            status,
            body,
            html: false,
            retry_after: None,
        }
    }

    /// `{"success":true}`.
    fn success() -> Answer {
        Answer::closte(200, wire::SUCCESS_BODY.into())
    }

    /// `{"success":false,"error":...}`.
    fn failure(status: u16, error: &str) -> Answer {
        Answer::closte(status, wire::failure_body(error))
    }
}

/// What nginx in front of a service answers when the service's answer did not reach it.
const BAD_GATEWAY_PAGE: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
    <center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

/// Persisted part of the simulator: aliases per account index (never keys).
#[derive(Debug, Default, Serialize, Deserialize)]
struct StateFile {
    accounts: Vec<Vec<Alias>>,
}

/// What the HTTPS endpoint serves for an issued alias, set through the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertMode {
    /// A valid certificate for the alias.
    #[default]
    Issued,
    /// A certificate for the alias whose validity ended ten days ago.
    Expired,
    /// A valid certificate for another name.
    OtherHost,
}

#[derive(Debug)]
pub struct Sim {
    keys: Vec<String>,
    sites: Vec<BTreeMap<String, Alias>>,
    log: VecDeque<LogEntry>,
    next_seq: u64,
    faults: Faults,
    write_bucket: Option<TokenBucket>,
    pub issue_delay: Duration,
    state_file: Option<PathBuf>,
    cert_modes: HashMap<String, CertMode>,
    /// Aliases behind the proxy: DNS answers the proxy's address for them.
    proxied: std::collections::HashSet<String>,
}

/// `wildcard` as PHP and browsers send booleans.
fn truthy(value: Option<&String>) -> bool {
    matches!(
        value.map(|v| v.trim().to_ascii_lowercase()).as_deref(),
        Some("1" | "true" | "on" | "yes")
    )
}

impl Sim {
    pub fn new(keys: Vec<String>, faults: Faults, issue_delay: Duration) -> Sim {
        let mut sim = Sim {
            sites: vec![BTreeMap::new(); keys.len()],
            keys,
            log: VecDeque::new(),
            next_seq: 1,
            faults: Faults::default(),
            write_bucket: None,
            issue_delay,
            state_file: None,
            cert_modes: HashMap::new(),
            proxied: Default::default(),
        };
        sim.set_faults(faults);
        sim
    }

    /// Loads aliases from `path` if it exists, and saves there after every change.
    pub fn with_state_file(mut self, path: PathBuf) -> std::io::Result<Sim> {
        match std::fs::read(&path) {
            Ok(bytes) => {
                let state: StateFile = serde_json::from_slice(&bytes)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
                for (site, aliases) in self.sites.iter_mut().zip(state.accounts) {
                    site.extend(aliases.into_iter().map(|a| (a.domain.clone(), a)));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        self.state_file = Some(path);
        Ok(self)
    }

    pub fn save(&self) {
        let Some(path) = &self.state_file else { return };
        let state = StateFile {
            accounts: self
                .sites
                .iter()
                .map(|s| s.values().cloned().collect())
                .collect(),
        };
        let tmp = path.with_extension("tmp");
        let written = serde_json::to_vec_pretty(&state)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = written {
            tracing::error!(path = %path.display(), error = %e, "cannot save simulator state");
        }
    }

    pub fn accounts(&self) -> usize {
        self.keys.len()
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    pub fn set_faults(&mut self, faults: Faults) {
        self.write_bucket = faults
            .write_rate_limit
            .map(|rate| TokenBucket::new(rate, rate, Instant::now()));
        self.faults = faults;
    }

    /// Takes a write slot from the simulated rate limit; false means 429.
    fn admit_write(&mut self, now: Instant) -> bool {
        self.write_bucket.as_mut().is_none_or(|b| b.try_take(now))
    }

    /// The answer to a rate-limited write.
    fn rate_limited(&self) -> Answer {
        Answer {
            retry_after: self.faults.retry_after_secs,
            ..Answer::failure(429, "Too many requests")
        }
    }

    /// Answers one client API request and logs it. `fault` is the failure
    /// drawn for it ([`Faults::draw`]): most kinds answer in place of the call,
    /// which then changes nothing; `lost-answer` lets the call (the write rate
    /// limit included) run as usual and then answers as if its answer had been
    /// lost on the way back.
    pub fn serve(
        &mut self,
        endpoint: Endpoint,
        method: &str,
        params: &HashMap<String, String>,
        fault: Option<FaultKind>,
        now: Instant,
        now_ms: u64,
    ) -> Answer {
        let (mut answer, account) = match fault {
            Some(kind) if kind != FaultKind::LostAnswer => (self.fault_answer(kind), None),
            _ if endpoint.is_write() && !self.admit_write(now) => (self.rate_limited(), None),
            _ => self.call(endpoint, params, now_ms),
        };
        if let Some(lost @ FaultKind::LostAnswer) = fault {
            answer = self.fault_answer(lost);
        }
        self.record(LogEntry {
            seq: 0,
            at_ms: now_ms,
            endpoint: endpoint.path().into(),
            method: method.into(),
            account,
            domain: params.get("domain").cloned(),
            status: answer.status,
            fault: fault.map(|f| f.name().into()),
        });
        answer
    }

    /// The answer an injected failure gives.
    fn fault_answer(&self, kind: FaultKind) -> Answer {
        let page = |status: u16, body: &str| Answer {
            status,
            body: body.into(),
            html: true,
            retry_after: None,
        };
        match kind {
            FaultKind::ServerError => Answer::failure(500, "Internal server error"),
            FaultKind::BadGateway | FaultKind::LostAnswer => page(502, BAD_GATEWAY_PAGE),
            FaultKind::TooManyRequests => self.rate_limited(),
            FaultKind::Hang => page(
                504,
                "<html><body><h1>504 Gateway Time-out</h1></body></html>",
            ),
            // deliberately not Closte's wire format: a half-written answer
            FaultKind::BadJson => Answer::closte(200, r#"{"success": tr"#.into()),
        }
    }

    /// Answers one client API call. Returns the answer and the account index
    /// of the key (if known).
    fn call(
        &mut self,
        endpoint: Endpoint,
        params: &HashMap<String, String>,
        now_ms: u64,
    ) -> (Answer, Option<usize>) {
        let key = params.get("apikey").map(|k| k.trim()).unwrap_or_default();
        let Some(account) = self.keys.iter().position(|k| !key.is_empty() && k == key) else {
            return (Answer::failure(401, "Invalid API key"), None);
        };
        let raw = params.get("domain").cloned().unwrap_or_default();
        let answer = match endpoint {
            Endpoint::GetDomains => self.list(account),
            Endpoint::AddDomainAlias => {
                self.add(account, &raw, truthy(params.get("wildcard")), now_ms)
            }
            Endpoint::DeleteDomainAlias => self.delete(account, &raw),
        };
        (answer, Some(account))
    }

    fn list(&self, account: usize) -> Answer {
        let items: Vec<ListItem> = self.sites[account]
            .values()
            .zip(1..)
            .map(|(alias, id)| match self.faults.list_shape {
                ListShape::Strings => ListItem::Name(&alias.domain),
                ListShape::Objects => ListItem::Object {
                    domain: &alias.domain,
                    id,
                    wildcard: alias.wildcard,
                },
            })
            .collect();
        Answer::closte(200, wire::domains_body(&items))
    }

    fn add(&mut self, account: usize, raw: &str, wildcard_flag: bool, now_ms: u64) -> Answer {
        let name = fold_name(raw);
        let invalid = || Answer::closte(200, wire::invalid_domain_body(raw));
        if name.is_empty() || domain::validate(&name).is_err() || self.faults.rejects(&name) {
            return invalid();
        }
        if wildcard_flag != name.starts_with("*.") {
            tracing::debug!(domain = %name, wildcard_flag, "wildcard flag disagrees with the name");
        }
        if self.sites[account].contains_key(&name) {
            return match self.faults.existing_answer {
                ExistingAnswer::Error => Answer::failure(200, "Domain alias already exists"),
                ExistingAnswer::Success => Answer::success(),
            };
        }
        self.sites[account].insert(name.clone(), Alias::new(name, now_ms));
        self.save();
        Answer::success()
    }

    fn delete(&mut self, account: usize, raw: &str) -> Answer {
        let name = fold_name(raw);
        if name.is_empty() {
            return Answer::closte(200, wire::invalid_domain_body(raw));
        }
        if self.sites[account].remove(&name).is_none() {
            return Answer::failure(200, "Domain alias not found");
        }
        self.save();
        Answer::success()
    }

    /// Appends to the request log and returns the entry's sequence number.
    fn record(&mut self, mut entry: LogEntry) -> u64 {
        entry.seq = self.next_seq;
        self.next_seq += 1;
        if self.log.len() == LOG_CAPACITY {
            self.log.pop_front();
        }
        let seq = entry.seq;
        self.log.push_back(entry);
        seq
    }

    pub fn requests_since(&self, since: u64) -> Vec<LogEntry> {
        self.log.iter().filter(|e| e.seq > since).cloned().collect()
    }

    pub fn clear_requests(&mut self) {
        self.log.clear();
    }

    /// Request counts by endpoint (and injected faults), over the kept log.
    pub fn stats(&self) -> BTreeMap<String, u64> {
        let mut stats = BTreeMap::new();
        for endpoint in Endpoint::ALL {
            stats.insert(endpoint.path().to_owned(), 0);
        }
        for entry in &self.log {
            *stats.entry(entry.endpoint.clone()).or_default() += 1;
            if entry.fault.is_some() {
                *stats.entry("faults".into()).or_default() += 1;
            }
        }
        stats.insert("requests".into(), self.log.len() as u64);
        stats.insert(
            "aliases".into(),
            self.sites.iter().map(|s| s.len() as u64).sum(),
        );
        stats
    }

    /// Every alias with its account index.
    pub fn aliases(&self) -> impl Iterator<Item = (usize, &Alias)> {
        self.sites
            .iter()
            .enumerate()
            .flat_map(|(i, site)| site.values().map(move |a| (i, a)))
    }

    /// Adds an alias behind the API's back (an alias someone else created).
    pub fn admin_add(&mut self, account: usize, raw: &str, now_ms: u64) -> Result<(), String> {
        let name = fold_name(raw);
        domain::validate(&name).map_err(|e| e.to_string())?;
        let site = self
            .sites
            .get_mut(account)
            .ok_or_else(|| format!("no account {account}"))?;
        site.entry(name.clone())
            .or_insert_with(|| Alias::new(name, now_ms));
        self.save();
        Ok(())
    }

    /// Removes an alias behind the API's back (drift); true if it existed.
    pub fn admin_remove(&mut self, raw: &str) -> bool {
        let name = fold_name(raw);
        let removed = self.sites.iter_mut().any(|s| s.remove(&name).is_some());
        if removed {
            self.save();
        }
        removed
    }

    /// The alias DNS answers `name` for: the name itself, or a wildcard above it.
    pub fn dns_alias(&self, name: &str) -> Option<&Alias> {
        let name = fold_name(name);
        let exact = self.find(&name);
        exact.or_else(|| {
            let mut rest = name.as_str();
            while let Some((_, parent)) = rest.split_once('.') {
                if let Some(alias) = self.find(&format!("*.{parent}")) {
                    return Some(alias);
                }
                rest = parent;
            }
            None
        })
    }

    /// The alias whose certificate covers `name` for TLS: the name itself, or
    /// a wildcard exactly one label above it (RFC 6125).
    pub fn tls_alias(&self, name: &str) -> Option<&Alias> {
        let name = fold_name(name);
        self.find(&name).or_else(|| {
            let (_, parent) = name.split_once('.')?;
            self.find(&format!("*.{parent}"))
        })
    }

    /// Makes the HTTPS endpoint serve `mode` for the alias `domain`.
    pub fn set_cert_mode(&mut self, domain: &str, mode: CertMode) {
        self.cert_modes.insert(fold_name(domain), mode);
    }

    /// Puts `domain` behind the proxy, or takes it out.
    pub fn set_proxied(&mut self, domain: &str, proxied: bool) {
        let domain = fold_name(domain);
        if proxied {
            self.proxied.insert(domain);
        } else {
            self.proxied.remove(&domain);
        }
    }

    /// Whether `name` (an alias or a name under a wildcard alias) is behind the proxy.
    pub fn is_proxied(&self, name: &str) -> bool {
        self.dns_alias(name)
            .is_some_and(|alias| self.proxied.contains(&fold_name(&alias.domain)))
    }

    pub fn cert_mode(&self, domain: &str) -> CertMode {
        self.cert_modes.get(domain).copied().unwrap_or_default()
    }

    fn find(&self, name: &str) -> Option<&Alias> {
        self.sites.iter().find_map(|s| s.get(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A state file path that does not exist yet, in a folder of its own: (folder, file).
    fn scratch_state(name: &str) -> (PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("closte-sim-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.json");
        let _ = std::fs::remove_file(&path);
        (dir, path)
    }

    fn sim() -> Sim {
        Sim::new(
            vec!["k1".into(), "k2".into()],
            Faults::default(),
            Duration::from_secs(60),
        )
    }

    #[test]
    fn add_list_delete() {
        let mut sim = sim();
        let add = params(&[
            ("apikey", "k1"),
            ("domain", "Shop.Example.com."),
            ("wildcard", "0"),
        ]);
        let (answer, account) = sim.call(Endpoint::AddDomainAlias, &add, 1000);
        assert_eq!(
            (answer.status, answer.body.as_str(), account),
            (200, r#"{"success":true}"#, Some(0))
        );
        let (again, _) = sim.call(Endpoint::AddDomainAlias, &add, 2000);
        assert_eq!(
            again.body,
            r#"{"success":false,"error":"Domain alias already exists"}"#
        );

        let (list, _) = sim.call(Endpoint::GetDomains, &params(&[("apikey", "k1")]), 0);
        assert_eq!(
            list.body,
            r#"{"success":true,"domains":[{"Domain":"shop.example.com","Id":1,"IsWildcard":false}]}"#
        );
        // accounts are separate
        let (other, _) = sim.call(Endpoint::GetDomains, &params(&[("apikey", "k2")]), 0);
        assert_eq!(other.body, r#"{"success":true,"domains":[]}"#);

        let delete = params(&[("apikey", "k1"), ("domain", "shop.example.com")]);
        assert_eq!(
            sim.call(Endpoint::DeleteDomainAlias, &delete, 0).0.body,
            r#"{"success":true}"#
        );
        assert_eq!(
            sim.call(Endpoint::DeleteDomainAlias, &delete, 0).0.body,
            r#"{"success":false,"error":"Domain alias not found"}"#
        );
    }

    #[test]
    fn empty_domain_answer_is_byte_exact() {
        let mut sim = sim();
        let (answer, _) = sim.call(Endpoint::AddDomainAlias, &params(&[("apikey", "k1")]), 0);
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (
                200,
                r#"{"success":false,"error":"Invalid or empty domain: "}"#
            )
        );
        // the domain comes back exactly as it was sent, not folded
        let (answer, _) = sim.call(
            Endpoint::AddDomainAlias,
            &params(&[("apikey", "k1"), ("domain", "Bad..Name.")]),
            0,
        );
        assert_eq!(
            answer.body,
            r#"{"success":false,"error":"Invalid or empty domain: Bad..Name."}"#
        );
    }

    #[test]
    fn unknown_key_is_401() {
        let mut sim = sim();
        for key in [None, Some(""), Some("wrong")] {
            let mut p = params(&[("domain", "a.example.com")]);
            if let Some(key) = key {
                p.insert("apikey".into(), key.into());
            }
            let (answer, account) = sim.call(Endpoint::AddDomainAlias, &p, 0);
            assert_eq!((answer.status, account), (401, None));
        }
    }

    #[test]
    fn dns_and_tls_matching() {
        let mut sim = sim();
        sim.admin_add(0, "*.shop.example.com", 0).unwrap();
        sim.admin_add(1, "plain.example.org", 0).unwrap();
        assert!(sim.dns_alias("a.shop.example.com.").is_some());
        assert!(sim.dns_alias("b.a.shop.example.com").is_some());
        assert!(sim.dns_alias("shop.example.com").is_none());
        assert!(sim.dns_alias("PLAIN.example.org.").is_some());
        assert!(sim.tls_alias("a.shop.example.com").is_some());
        assert!(sim.tls_alias("b.a.shop.example.com").is_none());
        assert!(sim.tls_alias("plain.example.org").is_some());
        let alias = sim.tls_alias("plain.example.org").unwrap();
        assert!(!alias.issued(Duration::from_secs(60), 59_999));
        assert!(alias.issued(Duration::from_secs(60), 60_000));
        assert!(sim.admin_remove("plain.example.org"));
        assert!(!sim.admin_remove("plain.example.org"));
    }

    #[test]
    fn lost_answer_applies_the_write_then_answers_502() {
        let (dir, path) = scratch_state("lost");
        let mut sim = sim().with_state_file(path.clone()).unwrap();
        let now = Instant::now();
        let lost = Some(FaultKind::LostAnswer);
        let name = "lost.example.com";
        let saved = || std::fs::read_to_string(&path).unwrap_or_default();

        let add = params(&[("apikey", "k1"), ("domain", name), ("wildcard", "0")]);
        let answer = sim.serve(Endpoint::AddDomainAlias, "POST", &add, lost, now, 7);
        assert_eq!((answer.status, answer.html), (502, true));
        assert_eq!(answer.body, BAD_GATEWAY_PAGE);
        assert!(sim.tls_alias(name).is_some(), "the add was applied");
        assert!(saved().contains(name), "and saved");

        let delete = params(&[("apikey", "k1"), ("domain", name)]);
        let answer = sim.serve(Endpoint::DeleteDomainAlias, "POST", &delete, lost, now, 8);
        assert_eq!(answer.status, 502);
        assert!(sim.tls_alias(name).is_none(), "the delete was applied");
        assert!(!saved().contains(name), "and saved");

        // any other fault answers in place of the call, which changes nothing
        let answer = sim.serve(
            Endpoint::AddDomainAlias,
            "POST",
            &add,
            Some(FaultKind::ServerError),
            now,
            9,
        );
        assert_eq!(answer.status, 500);
        assert!(sim.tls_alias(name).is_none());

        let log: Vec<_> = sim
            .requests_since(0)
            .into_iter()
            .map(|e| (e.endpoint, e.account, e.status, e.fault))
            .collect();
        let entry = |endpoint: &str, account, status, fault: &str| {
            (endpoint.to_owned(), account, status, Some(fault.to_owned()))
        };
        assert_eq!(
            log,
            [
                entry("adddomainalias", Some(0), 502, "lost-answer"),
                entry("deletedomainalias", Some(0), 502, "lost-answer"),
                entry("adddomainalias", None, 500, "500"),
            ]
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn write_rate_limit() {
        let mut sim = Sim::new(
            vec!["k".into()],
            Faults {
                write_rate_limit: Some(2.0),
                ..Faults::default()
            },
            Duration::ZERO,
        );
        let now = Instant::now();
        assert_eq!((0..5).filter(|_| sim.admit_write(now)).count(), 2);
        assert_eq!(sim.rate_limited().retry_after, Some(1));
    }

    #[test]
    fn state_file_round_trip() {
        let (dir, path) = scratch_state("state");
        let keys = vec!["secret-key-one".into(), "secret-key-two".into()];
        let mut sim = Sim::new(keys, Faults::default(), Duration::ZERO)
            .with_state_file(path.clone())
            .unwrap();
        sim.admin_add(1, "kept.example.com", 5).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("secret-key"), "keys must not be persisted");
        let sim = Sim::new(
            vec!["a".into(), "b".into()],
            Faults::default(),
            Duration::ZERO,
        )
        .with_state_file(path)
        .unwrap();
        let aliases: Vec<_> = sim.aliases().map(|(i, a)| (i, a.domain.clone())).collect();
        assert_eq!(aliases, [(1, "kept.example.com".to_string())]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
