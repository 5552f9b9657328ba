//! Closte's wire format (`src/closte/wire.rs`) on arbitrary bytes: every
//! decoder, and the encoders round-tripped through them.
//!
//! Input: a flags byte (bits 0-1: endpoint; bit 2: the body's first line is
//! a Retry-After value), two bytes of HTTP status (big-endian, modulo 1000),
//! then the body. The body also serves as request parameters (query before
//! the first `?`, form after) and as text for the encoders.
#![no_main]

use std::collections::HashMap;

use closte_operator::closte::wire::{self, Endpoint, Response};
use closte_operator::closte::{ApiKey, ClosteError};
use libfuzzer_sys::fuzz_target;

const KEY: &str = "fuzz-key-7c1d";

fuzz_target!(|data: &[u8]| {
    let [flags, hi, lo, rest @ ..] = data else {
        return;
    };
    let endpoint = Endpoint::ALL[usize::from(flags & 3) % 3];
    let status = u16::from_be_bytes([*hi, *lo]) % 1000;
    let (retry_after, body) = match (flags & 4 != 0, rest.iter().position(|b| *b == b'\n')) {
        (true, Some(end)) => (std::str::from_utf8(&rest[..end]).ok(), &rest[end + 1..]),
        _ => (None, rest),
    };
    answers(endpoint, status, retry_after, body);
    parameters(body);
    round_trips(&String::from_utf8_lossy(body));
});

/// `decode` and `interpret`: no panic, and each error class where it belongs.
fn answers(endpoint: Endpoint, status: u16, retry_after: Option<&str>, body: &[u8]) {
    let envelope = wire::decode(body);
    if envelope.is_some() {
        let value: serde_json::Value = serde_json::from_slice(body).expect("decoded, so JSON");
        assert!(value.is_object());
    }
    let key = ApiKey::new(KEY).unwrap();
    let domain = String::from_utf8_lossy(body);
    let response = Response {
        status,
        retry_after,
        body,
    };
    let result = wire::interpret(endpoint, Some(&domain), response, |s| key.redact(s));
    match &result {
        Ok(envelope) => {
            assert!((200..300).contains(&status) && envelope.success);
            assert!(endpoint != Endpoint::GetDomains || envelope.domains.is_some());
            assert_eq!(Some(envelope), wire::decode(body).as_ref());
        }
        Err(ClosteError::RateLimited { retry_after: after }) => {
            assert_eq!(status, 429);
            assert_eq!(*after, wire::parse_retry_after(retry_after));
        }
        Err(ClosteError::Transient { .. }) => {
            assert!(status == 408 || status >= 500 || (200..300).contains(&status));
        }
        Err(ClosteError::CredentialsRejected { .. }) => assert_ne!(status, 429),
        Err(ClosteError::DomainRejected { .. }) => assert!(endpoint.is_write()),
        Err(_) => {}
    }
    if let Err(error) = &result {
        assert!(!format!("{error}").contains(KEY), "the key in {error}");
        assert!(!format!("{error:?}").contains(KEY), "the key in {error:?}");
    }
    if let Some(after) = wire::parse_retry_after(retry_after) {
        assert_eq!(
            retry_after.unwrap().trim().parse::<u64>().ok(),
            Some(after.as_secs())
        );
    }
}

/// `request_parameters`: when it accepts a form, it reads it exactly as the
/// WHATWG form decoder does (later pairs win, as in PHP's `$_REQUEST`).
fn parameters(bytes: &[u8]) {
    let (query, form) = match bytes.iter().position(|b| *b == b'?') {
        Some(at) => (&bytes[..at], &bytes[at + 1..]),
        None => (&b""[..], bytes),
    };
    let query = String::from_utf8_lossy(query);
    let Some(params) = wire::request_parameters(&query, form) else {
        return;
    };
    let mut reference = HashMap::new();
    for part in [query.as_bytes(), form] {
        for (name, value) in form_urlencoded::parse(part) {
            reference.insert(name.into_owned(), value.into_owned());
        }
    }
    assert_eq!(
        params,
        reference,
        "query {query:?}, form {:?}",
        String::from_utf8_lossy(form)
    );
}

/// What the servers write reads back as what they meant.
fn round_trips(text: &str) {
    let failure = wire::decode(wire::failure_body(text).as_bytes()).expect("a failure decodes");
    assert!(!failure.success);
    assert_eq!(failure.error.as_deref(), Some(text));
    let answer = wire::interpret(
        Endpoint::AddDomainAlias,
        Some(text),
        Response {
            status: 200,
            retry_after: None,
            body: wire::invalid_domain_body(text).as_bytes(),
        },
        str::to_owned,
    );
    assert_eq!(
        answer,
        Err(ClosteError::DomainRejected {
            domain: text.to_owned(),
            message: wire::invalid_domain_error(text),
        })
    );
    let names: Vec<&str> = text.split('\n').collect();
    let strings: Vec<wire::ListItem> = names.iter().map(|n| wire::ListItem::Name(n)).collect();
    let objects: Vec<wire::ListItem> = names
        .iter()
        .map(|n| wire::ListItem::Object {
            domain: n,
            id: 7,
            wildcard: false,
        })
        .collect();
    for items in [strings, objects] {
        let list = wire::decode(wire::domains_body(&items).as_bytes()).expect("a list decodes");
        assert!(list.success);
        assert_eq!(
            list.domains.as_deref(),
            Some(&names.iter().map(|n| n.to_string()).collect::<Vec<_>>()[..])
        );
    }
}
