//! The sidecar's request parsing (`src/sidecar/request.rs`), both doors, on
//! arbitrary input.
//!
//! Input: a selector byte, then fields separated by NUL. Selector modulo 4:
//! 0, the Closte door (method from the selector's upper bits; fields: path,
//! query, body); 1, `PUT /v1/domains/{domain}` (domain, body); 2, `PUT
//! /v1/sites/{siteId}/domains` (site id, body); 3, an Authorization header.
#![no_main]

use closte_operator::closte::wire::{self, Endpoint};
use closte_operator::domain::{self, Domain};
use closte_operator::sidecar::Token;
use closte_operator::sidecar::request::{self, ClosteCall, ClosteRefusal, NativeRefusal};
use http::header::{AUTHORIZATION, HeaderValue};
use http::{HeaderMap, Method};
use libfuzzer_sys::fuzz_target;

const TOKEN: &str = "fuzz-token-0123456789abcdef012345";

const METHODS: [Method; 5] = [
    Method::POST,
    Method::GET,
    Method::PUT,
    Method::DELETE,
    Method::HEAD,
];

fuzz_target!(|data: &[u8]| {
    let Some((selector, rest)) = data.split_first() else {
        return;
    };
    let mut fields = rest.splitn(3, |b| *b == 0);
    let mut field = || fields.next().unwrap_or_default();
    match selector % 4 {
        0 => {
            let method = &METHODS[usize::from(selector >> 2) % METHODS.len()];
            let (path, query, body) = (field(), field(), field());
            closte(
                method,
                &String::from_utf8_lossy(path),
                &String::from_utf8_lossy(query),
                body,
            );
        }
        1 => {
            let (raw, body) = (field(), field());
            put_domain(&String::from_utf8_lossy(raw), body);
        }
        2 => {
            let (site, body) = (field(), field());
            site_domains(&String::from_utf8_lossy(site), body);
        }
        _ => bearer(rest),
    }
});

fn closte(method: &Method, path: &str, query: &str, body: &[u8]) {
    let token = Token::new(TOKEN).unwrap();
    let result = request::closte_call(&token, method, path, query, body);
    let params = wire::request_parameters(query, body);
    assert_eq!(result == Err(ClosteRefusal::NotForm), params.is_none());
    let Some(params) = params else { return };
    let sent = |name: &str| params.get(name).map(String::as_str);
    if result != Err(ClosteRefusal::Key) {
        assert_eq!(sent("apikey"), Some(TOKEN), "{result:?} without the token");
    }
    let received = sent("domain").unwrap_or_default();
    match result {
        Ok(ClosteCall::Write { endpoint, domain }) => {
            assert!(endpoint.is_write() && *method == Method::POST);
            assert_eq!(domain::normalize(received).as_ref(), Ok(&domain));
        }
        Ok(ClosteCall::InvalidDomain { received: echoed }) => {
            assert_eq!(echoed, received);
            assert!(domain::normalize(received).is_err());
        }
        Ok(ClosteCall::List) => assert_eq!(path, Endpoint::GetDomains.path()),
        Ok(ClosteCall::SslInstall) => assert_eq!(path, "ssl/install"),
        Err(refusal) => assert!(refusal.status().is_client_error()),
    }
}

fn put_domain(raw: &str, body: &[u8]) {
    let result = request::put_domain(raw, body);
    assert_eq!(request::domain(raw).is_ok(), domain::normalize(raw).is_ok());
    match result {
        Ok(put) => {
            canonical(&put.domain);
            assert_eq!(domain::normalize(raw).as_ref(), Ok(&put.domain));
            assert!(put.site_id.is_none_or(|id| id >= 1));
            assert!(
                blank(body) || is_object(body),
                "only a JSON object is a body"
            );
        }
        Err(NativeRefusal::Domain(_)) => assert!(domain::normalize(raw).is_err()),
        Err(_) => assert!(domain::normalize(raw).is_ok(), "the domain is read first"),
    }
}

fn site_domains(site: &str, body: &[u8]) {
    if let Ok(set) = request::site_domains(site, body) {
        assert!(set.site >= 1);
        assert!(is_object(body), "only a JSON object is a body");
        assert_eq!(site.parse::<i64>().ok(), Some(set.site));
        for (i, domain) in set.domains.iter().enumerate() {
            canonical(domain);
            assert!(!set.domains[..i].contains(domain), "{domain} twice");
        }
    }
}

fn bearer(value: &[u8]) {
    let Ok(value) = HeaderValue::from_bytes(value) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, value.clone());
    let token = request::bearer(&headers);
    if let Some(token) = token {
        assert_eq!(
            value.to_str().ok(),
            Some(format!("Bearer {token}").as_str())
        );
    }
    let expected = Token::new(TOKEN).unwrap();
    assert_eq!(expected.accepts(token), token == Some(TOKEN));
}

fn blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}

fn is_object(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|v| v.is_object())
}

fn canonical(domain: &Domain) {
    assert_eq!(domain::validate(domain.as_str()), Ok(()));
    assert_eq!(domain::normalize(domain.as_str()).as_ref(), Ok(domain));
}
