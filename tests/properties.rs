//! Properties on stable, with proptest: the same invariants as the fuzz
//! targets in `fuzz/` (which need nightly), over generated input. Hostnames:
//! normalise is idempotent and agrees with validate, validate names the
//! first rule that fails, object names stay apart (and no readable name has
//! the shape of a hashed one). Closte's wire format:
//! decoding never panics and classifies every answer where it belongs, the
//! encoders round-trip, form parameters read as every form decoder reads
//! them. The sidecar's request parsing: the Closte door hands on only what
//! it checked, the native door takes only JSON objects, valid site ids and
//! normalised domains. Durations: everything the CRD's pattern admits
//! parses, nothing else does, and formatted durations parse back. That `validate` agrees
//! with the CEL rules themselves is checked against the real API server in
//! `tests/api.rs` (`api_server_agrees_with_validate_on_generated_names`).

mod common;

use std::time::Duration;

use closte_operator::api::duration;
use closte_operator::closte::wire::{self, Endpoint, Response};
use closte_operator::closte::{ApiKey, ClosteError};
use closte_operator::domain::{self, Domain, Rule};
use closte_operator::sidecar::names::{has_hashed_shape, name_for};
use common::names::name;
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 2_000,
        // a failure is kept as a regression in tests/properties.proptest-regressions
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn normalise_is_idempotent_and_its_output_valid(input in name()) {
        if let Ok(domain) = domain::normalize(&input) {
            prop_assert_eq!(domain::validate(domain.as_str()), Ok(()));
            prop_assert_eq!(domain::normalize(domain.as_str()), Ok(domain.clone()));
            let respelt = format!(" {}. ", domain.as_str().to_ascii_uppercase());
            prop_assert_eq!(domain::normalize(&respelt), Ok(domain));
        }
    }

    #[test]
    fn a_valid_name_is_its_own_normal_form(input in name()) {
        if domain::validate(&input).is_ok() {
            prop_assert_eq!(domain::normalize(&input).map(|d| d.as_str().to_owned()), Ok(input));
        }
    }

    #[test]
    fn validate_names_the_first_rule_that_fails(input in name()) {
        let first = Rule::ALL.into_iter().find(|rule| !rule.holds(&input));
        prop_assert_eq!(domain::validate(&input).err().and_then(|e| e.rule()), first);
        prop_assert_eq!(Domain::parse(&input).is_ok(), first.is_none());
    }

    #[test]
    fn two_domains_never_share_an_object_name(a in name(), b in name()) {
        if let (Ok(a), Ok(b)) = (domain::normalize(&a), domain::normalize(&b)) {
            prop_assert_eq!(a == b, name_for(&a) == name_for(&b));
            for name in [name_for(&a), name_for(&b)] {
                prop_assert!(name.len() <= 253);
                prop_assert!(name.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'));
                prop_assert!(!name.starts_with('-') && !name.ends_with('-'));
            }
        }
    }
}

/// Domains made to meet in one object name: labels that read alike once
/// dots become dashes, wildcards, and last labels of 10 hex digits (the
/// shape of the hash suffix).
fn lookalike() -> impl Strategy<Value = String> {
    let label = prop::sample::select(vec![
        "a",
        "b",
        "a-b",
        "b-a",
        "ab",
        "0a1b2c3d4e",
        "c0ffee1234",
        "wildcard",
        "com",
    ]);
    let last = prop::sample::select(vec!["com", "example", "0a1b2c3d4e", "deadbeef00", "a-b"]);
    (
        prop::bool::weighted(0.2),
        prop::collection::vec(label, 1..5),
        last,
    )
        .prop_map(|(wildcard, labels, last)| {
            let name = format!("{}.{last}", labels.join("."));
            if wildcard { format!("*.{name}") } else { name }
        })
}

/// The 10 hex digits of `domain`'s SHA-256 that its hashed name ends with.
fn hash_suffix(domain: &Domain) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, domain.as_str().as_bytes());
    digest.as_ref()[..5]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

proptest! {
    #![proptest_config(config())]

    /// A name either has the hashed shape and ends with its own domain's
    /// hash, or is readable and reads back as its domain, never the shape:
    /// so no readable name is another domain's hashed one.
    #[test]
    fn a_readable_name_never_has_the_hashed_shape(input in prop_oneof![name(), lookalike()]) {
        if let Ok(domain) = domain::normalize(&input) {
            let name = name_for(&domain);
            if has_hashed_shape(&name) {
                prop_assert!(name.ends_with(&format!("-{}", hash_suffix(&domain))), "{} {}", domain, name);
            } else {
                prop_assert_eq!(name.replace('-', "."), domain.as_str());
            }
        }
    }

    #[test]
    fn lookalike_domains_get_distinct_names(a in lookalike(), b in lookalike()) {
        if let (Ok(a), Ok(b)) = (domain::normalize(&a), domain::normalize(&b)) {
            prop_assert_eq!(a == b, name_for(&a) == name_for(&b), "{} {}", a, b);
        }
    }

    /// The domain spelled like another's name (dashes read as dots) does
    /// not get that name: `a.b.example.com.0a1b2c3d4e` and the hashed name
    /// of `a-b.example.com`.
    #[test]
    fn a_domain_spelled_like_a_name_does_not_take_it(input in prop_oneof![name(), lookalike()]) {
        if let Ok(domain) = domain::normalize(&input) {
            let name = name_for(&domain);
            if let Ok(spelled) = domain::normalize(&name.replace('-', ".")) {
                prop_assert_eq!(spelled == domain, name_for(&spelled) == name, "{} {}", domain, spelled);
            }
        }
    }
}

/// JSON values of the shapes Closte's answers have, nested a little.
fn json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(vec![
            "true",
            "1",
            "TRUE",
            "0",
            "false",
            "Invalid or empty domain: x",
            "bad api key",
            ""
        ])
        .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        let key = prop::sample::select(vec![
            "success", "SUCCESS", "error", "Error", "domains", "Domains", "domain", "Domain",
            "name", "hostname", "ALIAS", "id", "x",
        ]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(key.prop_map(str::to_owned), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        json().prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..64),
        Just(b"<html><body>Bad gateway</body></html>".to_vec()),
    ]
}

const KEY: &str = "property-key-51a0";

/// A generator for what `pattern` matches (proptest's regex strategy takes no anchors).
fn unanchored(pattern: &str) -> impl Strategy<Value = String> + use<> {
    proptest::string::string_regex(pattern.trim_start_matches('^').trim_end_matches('$')).unwrap()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn decoding_never_panics_and_classifies_every_answer(
        body in body(),
        status in prop_oneof![Just(200u16), Just(401), Just(403), Just(404), Just(408), Just(429), Just(502), 100u16..600],
        endpoint in prop::sample::select(Endpoint::ALL.to_vec()),
        retry_after in prop::option::of("[ 0-9a-z]{0,6}"),
    ) {
        let key = ApiKey::new(KEY).unwrap();
        let domain = format!("{}.{KEY}", String::from_utf8_lossy(&body));
        let response = Response { status, retry_after: retry_after.as_deref(), body: &body };
        let result = wire::interpret(endpoint, Some(&domain), response, |s| key.redact(s));
        match &result {
            Ok(envelope) => {
                prop_assert!((200..300).contains(&status) && envelope.success);
                prop_assert!(endpoint != Endpoint::GetDomains || envelope.domains.is_some());
            }
            Err(ClosteError::RateLimited { retry_after: after }) => {
                prop_assert_eq!(status, 429);
                prop_assert_eq!(*after, wire::parse_retry_after(retry_after.as_deref()));
            }
            Err(ClosteError::Transient { .. }) => {
                prop_assert!(status == 408 || status >= 500 || (200..300).contains(&status));
            }
            Err(ClosteError::DomainRejected { .. }) => prop_assert!(endpoint.is_write()),
            Err(_) => {}
        }
        if let Err(error) = &result {
            prop_assert!(!error.to_string().contains(KEY), "the key in {}", error);
        }
    }

    #[test]
    fn what_the_servers_write_reads_back(text in any::<String>(), names in prop::collection::vec(any::<String>(), 0..4)) {
        let failure = wire::decode(wire::failure_body(&text).as_bytes()).unwrap();
        prop_assert!(!failure.success);
        prop_assert_eq!(failure.error.as_deref(), Some(text.as_str()));
        let items: Vec<wire::ListItem> = names.iter().map(|n| wire::ListItem::Name(n)).collect();
        let list = wire::decode(wire::domains_body(&items).as_bytes()).unwrap();
        prop_assert_eq!(list.domains, Some(names));
    }

    #[test]
    fn form_parameters_read_as_every_form_decoder_reads_them(
        query in "[a-z=&%+0-9A-F]{0,16}",
        form in prop::collection::vec(prop_oneof![
            3 => prop::sample::select(b"az=&%+09AFfg".to_vec()),
            1 => any::<u8>(),
        ], 0..24),
    ) {
        if let Some(params) = wire::request_parameters(&query, &form) {
            let mut reference = std::collections::HashMap::new();
            for part in [query.as_bytes(), &form[..]] {
                let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(part).unwrap();
                reference.extend(pairs);
            }
            prop_assert_eq!(params, reference);
        }
    }

    #[test]
    fn everything_the_crd_pattern_admits_parses_to_its_sum(text in unanchored(duration::PATTERN)) {
        // the sum as the pattern reads the parts; parse fails only when it does not fit a Duration
        let part = regex::Regex::new(r"([0-9]+(?:\.[0-9]+)?)(ns|us|ms|s|m|h)").unwrap();
        let sum: f64 = part
            .captures_iter(&text)
            .map(|c| {
                let unit = match &c[2] {
                    "ns" => 1e-9,
                    "us" => 1e-6,
                    "ms" => 1e-3,
                    "s" => 1.0,
                    "m" => 60.0,
                    _ => 3600.0,
                };
                c[1].parse::<f64>().unwrap() * unit
            })
            .sum();
        prop_assert_eq!(duration::parse(&text).ok(), Duration::try_from_secs_f64(sum).ok(), "{:?}", text);
    }

    #[test]
    fn nothing_else_parses(text in "[0-9.a-z ]{0,10}") {
        let pattern = regex::Regex::new(duration::PATTERN).unwrap();
        if duration::parse(&text).is_ok() {
            prop_assert!(pattern.is_match(&text), "{:?}", text);
        }
    }

    #[test]
    fn formatted_durations_parse_back(
        hours in 0u64..48, minutes in 0u64..120, seconds in 0u64..120, millis in 0u64..1000,
    ) {
        let expected = Duration::from_millis(((hours * 60 + minutes) * 60 + seconds) * 1000 + millis);
        let go = format!("{hours}h{minutes}m{seconds}s{millis}ms");
        let secs = format!("{}s", expected.as_secs());
        let fraction = format!("{}.{:03}s", expected.as_secs(), millis);
        for (text, want) in [
            (go, expected),
            (secs, Duration::from_secs(expected.as_secs())),
            (fraction, expected),
        ] {
            let got = duration::parse(&text).unwrap();
            let error = got.abs_diff(want);
            prop_assert!(error <= Duration::from_micros(1), "{text}: {got:?}, not {want:?}");
        }
    }
}

const TOKEN: &str = "property-token-0123456789abcdef01";

/// A form as WordPress or a stranger might send it to the Closte door.
fn form() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        name().prop_map(|n| serde_urlencoded::to_string([("v", n)]).unwrap()[2..].to_owned()),
        Just(TOKEN.to_owned()),
        "[a-z%+=&0-9A-F]{0,8}",
    ];
    let key = prop::sample::select(vec!["apikey", "domain", "wildcard", "x", ""]);
    prop::collection::vec((key, value), 0..4).prop_map(|pairs| {
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_closte_door_hands_on_only_what_it_checked(
        method in prop::sample::select(vec!["GET", "POST", "PUT", "DELETE"]),
        path in prop::sample::select(vec!["adddomainalias", "deletedomainalias", "getdomains", "ssl/install", "nope", ""]),
        query in form(),
        body in form(),
    ) {
        use closte_operator::sidecar::request::{self, ClosteCall, ClosteRefusal};
        let token = closte_operator::sidecar::Token::new(TOKEN).unwrap();
        let method: axum::http::Method = method.parse().unwrap();
        let result = request::closte_call(&token, &method, path, &query, body.as_bytes());
        let params = wire::request_parameters(&query, body.as_bytes());
        prop_assert_eq!(result == Err(ClosteRefusal::NotForm), params.is_none());
        let Some(params) = params else { return Ok(()) };
        if result != Err(ClosteRefusal::Key) {
            prop_assert_eq!(params.get("apikey").map(String::as_str), Some(TOKEN));
        }
        let received = params.get("domain").map(String::as_str).unwrap_or_default();
        match result {
            Ok(ClosteCall::Write { endpoint, domain }) => {
                prop_assert!(endpoint.is_write() && method == axum::http::Method::POST);
                prop_assert_eq!(domain::normalize(received), Ok(domain));
            }
            Ok(ClosteCall::InvalidDomain { received: echoed }) => {
                prop_assert_eq!(echoed.as_str(), received);
                prop_assert!(domain::normalize(received).is_err());
            }
            Ok(ClosteCall::List) => prop_assert_eq!(path, "getdomains"),
            Ok(ClosteCall::SslInstall) => prop_assert_eq!(path, "ssl/install"),
            Err(refusal) => prop_assert!(refusal.status().is_client_error()),
        }
    }

    #[test]
    fn the_native_door_takes_only_objects_valid_ids_and_normalised_domains(
        raw in name(),
        site in prop_oneof!["[0-9]{1,20}", "-?[0-9a-z.]{0,4}"],
        value in json(),
        site_id in prop_oneof![any::<i64>().prop_map(serde_json::Value::from), json()],
        domains in prop::collection::vec(name(), 0..4),
    ) {
        use closte_operator::sidecar::request;
        let put_body = serde_json::json!({ "siteId": site_id }).to_string();
        for body in [put_body, value.to_string(), String::new()] {
            if let Ok(put) = request::put_domain(&raw, body.as_bytes()) {
                prop_assert_eq!(domain::normalize(&raw), Ok(put.domain));
                prop_assert!(put.site_id.is_none_or(|id| id >= 1));
                let object = serde_json::from_str::<serde_json::Value>(&body).map(|v| v.is_object());
                prop_assert!(body.is_empty() || object.unwrap_or(false), "{}", body);
            }
        }
        let set_body = serde_json::json!({ "domains": domains }).to_string();
        for body in [set_body, value.to_string()] {
            if let Ok(set) = request::site_domains(&site, body.as_bytes()) {
                prop_assert_eq!(site.parse::<i64>().ok(), Some(set.site));
                prop_assert!(set.site >= 1);
                for (i, d) in set.domains.iter().enumerate() {
                    prop_assert_eq!(domain::normalize(d.as_str()), Ok(d.clone()));
                    prop_assert!(!set.domains[..i].contains(d));
                }
            }
        }
    }
}
