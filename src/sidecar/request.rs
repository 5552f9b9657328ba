//! What the two doors read from a request, before any IO: method, path,
//! query, headers and body in; a typed call or a typed refusal out. Pure.
//! The handlers in [`super::closte_door`] and [`super::native_door`] call
//! these, then talk to the API server; the fuzz target `sidecar_request`
//! calls them on arbitrary input.

use axum::http::{HeaderMap, Method, StatusCode, header};
use serde::Deserialize;

use super::Token;
use crate::api::{CheckInterval, CheckIntervalError};
use crate::closte::wire::{self, Endpoint};
use crate::domain::{self, Domain, DomainError};

/// A request to the Closte door that passed the token, path and method checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClosteCall {
    /// `getdomains`.
    List,
    /// `adddomainalias` or `deletedomainalias` of a domain that normalises.
    Write { endpoint: Endpoint, domain: Domain },
    /// An add or delete whose domain is missing or invalid: Closte answers
    /// 200 with the domain echoed exactly as received.
    InvalidDomain { received: String },
    /// `ssl/install`: Closte issues certificates by itself.
    SslInstall,
}

/// Why the Closte door refuses a request, in Closte's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClosteRefusal {
    #[error("the body is not form-encoded")]
    NotForm,
    #[error("Invalid API key")]
    Key,
    #[error("Not found")]
    NotFound,
    #[error("Method not allowed")]
    Method,
}

impl ClosteRefusal {
    pub fn status(self) -> StatusCode {
        match self {
            ClosteRefusal::NotForm => StatusCode::BAD_REQUEST,
            ClosteRefusal::Key => StatusCode::UNAUTHORIZED,
            ClosteRefusal::NotFound => StatusCode::NOT_FOUND,
            ClosteRefusal::Method => StatusCode::METHOD_NOT_ALLOWED,
        }
    }
}

/// Reads a request under `/api/client/` (`path` is what follows that prefix):
/// the parameters as PHP's `$_REQUEST` sees them, the token (`apikey`) before
/// anything else, then the endpoint and its method.
pub fn closte_call(
    token: &Token,
    method: &Method,
    path: &str,
    query: &str,
    body: &[u8],
) -> Result<ClosteCall, ClosteRefusal> {
    let params = wire::request_parameters(query, body).ok_or(ClosteRefusal::NotForm)?;
    if !token.accepts(params.get("apikey").map(String::as_str)) {
        return Err(ClosteRefusal::Key);
    }
    let endpoint = Endpoint::ALL.into_iter().find(|e| e.path() == path);
    let allowed = match endpoint {
        Some(Endpoint::GetDomains) => method == Method::GET || method == Method::POST,
        Some(_) => method == Method::POST,
        None if path == "ssl/install" => method == Method::POST,
        None => return Err(ClosteRefusal::NotFound),
    };
    if !allowed {
        return Err(ClosteRefusal::Method);
    }
    Ok(match endpoint {
        None => ClosteCall::SslInstall,
        Some(Endpoint::GetDomains) => ClosteCall::List,
        Some(endpoint) => {
            let received = params.get("domain").map(String::as_str).unwrap_or_default();
            match domain::normalize(received) {
                Ok(domain) => ClosteCall::Write { endpoint, domain },
                Err(_) => ClosteCall::InvalidDomain {
                    received: received.to_owned(),
                },
            }
        }
    })
}

/// The request header with which a Closte-door `adddomainalias` sets the
/// added domain's `spec.checkInterval` (Closte's own parameters have no
/// room for it). Case does not matter.
pub const CHECK_INTERVAL_HEADER: &str = "x-closte-operator-check-interval";

/// Why the Closte door refuses the [`CHECK_INTERVAL_HEADER`] (always 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckIntervalHeaderError {
    #[error("the header X-Closte-Operator-Check-Interval is sent more than once")]
    Repeated,
    #[error("the header X-Closte-Operator-Check-Interval is not ASCII text")]
    NotText,
    #[error("the header X-Closte-Operator-Check-Interval: {0}")]
    Invalid(#[from] CheckIntervalError),
}

/// The interval a Closte-door request asks for in [`CHECK_INTERVAL_HEADER`],
/// if it sends that header.
pub fn check_interval_header(
    headers: &HeaderMap,
) -> Result<Option<CheckInterval>, CheckIntervalHeaderError> {
    let mut values = headers.get_all(CHECK_INTERVAL_HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(CheckIntervalHeaderError::Repeated);
    }
    let text = value
        .to_str()
        .map_err(|_| CheckIntervalHeaderError::NotText)?;
    Ok(Some(CheckInterval::parse(text)?))
}

/// The most entries a site's set may list (`maxItems` in the door's
/// description): a sync reads and may write each, one at a time, so this
/// bounds the work one request can cause. A network whose site has more
/// custom domains than this is not one WordPress serves.
pub const SITE_DOMAINS_MAX: usize = 1000;

/// Why the native door refuses what a request says (400, or 413 for a set
/// with too many domains).
#[derive(Debug, thiserror::Error)]
pub enum NativeRefusal {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    CheckInterval(#[from] CheckIntervalError),
    #[error("malformed JSON body: {0}")]
    Json(#[source] serde_json::Error),
    #[error("siteId must be at least 1")]
    SiteIdBelowOne,
    #[error("the site id must be a whole number of at least 1")]
    SiteId,
    #[error(
        "a site's set lists at most {SITE_DOMAINS_MAX} domains, and this one lists {0}; nothing was written"
    )]
    TooManyDomains(usize),
}

impl NativeRefusal {
    pub fn status(&self) -> StatusCode {
        match self {
            NativeRefusal::TooManyDomains(_) => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// The bearer token of a native-door request, if it sent one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// The `{domain}` of a native-door path (already percent-decoded), normalised.
pub fn domain(raw: &str) -> Result<Domain, NativeRefusal> {
    Ok(domain::normalize(raw)?)
}

/// `PUT /v1/domains/{domain}`: the domain, the optional site id and interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutDomain {
    pub domain: Domain,
    pub site_id: Option<i64>,
    pub check_interval: Option<CheckInterval>,
}

/// An optional body field: absent is `None`; `null` is refused like any
/// other value of the wrong type.
fn some<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A body's `checkInterval`, checked like the `--check-interval` flag.
fn check_interval(raw: Option<String>) -> Result<Option<CheckInterval>, NativeRefusal> {
    Ok(raw.as_deref().map(CheckInterval::parse).transpose()?)
}

/// Reads `PUT /v1/domains/{domain}`; the body is optional
/// (`{"siteId": N, "checkInterval": "5m"}`, both optional).
pub fn put_domain(raw: &str, body: &[u8]) -> Result<PutDomain, NativeRefusal> {
    #[derive(Default, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Body {
        #[serde(default, deserialize_with = "some")]
        site_id: Option<i64>,
        #[serde(default, deserialize_with = "some")]
        check_interval: Option<String>,
    }
    let domain = domain(raw)?;
    let body: Body = if body.iter().all(u8::is_ascii_whitespace) {
        Body::default()
    } else {
        object(body)?
    };
    if body.site_id.is_some_and(|id| id < 1) {
        return Err(NativeRefusal::SiteIdBelowOne);
    }
    Ok(PutDomain {
        domain,
        site_id: body.site_id,
        check_interval: check_interval(body.check_interval)?,
    })
}

/// `PUT /v1/sites/{siteId}/domains`: the site, its whole set of domains,
/// and the interval they all get, if given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteDomains {
    pub site: i64,
    /// Normalised, each once, in the order first given.
    pub domains: Vec<Domain>,
    pub check_interval: Option<CheckInterval>,
}

/// Reads `PUT /v1/sites/{siteId}/domains` with `{"domains": [...]}` and an
/// optional `"checkInterval"`.
pub fn site_domains(site: &str, body: &[u8]) -> Result<SiteDomains, NativeRefusal> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Body {
        domains: Vec<String>,
        #[serde(default, deserialize_with = "some")]
        check_interval: Option<String>,
    }
    let site = site
        .parse::<i64>()
        .ok()
        .filter(|id| *id >= 1)
        .ok_or(NativeRefusal::SiteId)?;
    let body: Body = object(body)?;
    // counted as sent, before any is read: the bound is on the work
    if body.domains.len() > SITE_DOMAINS_MAX {
        return Err(NativeRefusal::TooManyDomains(body.domains.len()));
    }
    let mut domains = Vec::with_capacity(body.domains.len());
    for raw in &body.domains {
        let domain = domain(raw)?;
        if !domains.contains(&domain) {
            domains.push(domain);
        }
    }
    Ok(SiteDomains {
        site,
        domains,
        check_interval: check_interval(body.check_interval)?,
    })
}

/// A JSON object read as `T`. Only an object: serde would also fill a
/// struct from an array of its fields in order (`[5]` for `{"siteId": 5}`).
fn object<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, NativeRefusal> {
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(body).map_err(NativeRefusal::Json)?;
    serde_json::from_value(serde_json::Value::Object(object)).map_err(NativeRefusal::Json)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "unit-test-token-0123456789abcdef";

    fn token() -> Token {
        Token::new(TOKEN).unwrap()
    }

    fn closte(
        method: Method,
        path: &str,
        query: &str,
        body: &str,
    ) -> Result<ClosteCall, ClosteRefusal> {
        // `apikey=TOKEN` in a form stands for the right token
        let fill = |form: &str| form.replace("apikey=TOKEN", &format!("apikey={TOKEN}"));
        let (query, body) = (fill(query), fill(body));
        closte_call(&token(), &method, path, &query, body.as_bytes())
    }

    #[test]
    fn the_closte_door_checks_form_then_token_then_path_then_method() {
        use ClosteRefusal as R;
        assert_eq!(
            closte(Method::POST, "nope", "", "apikey=TOKEN&d=%G1"),
            Err(R::NotForm)
        );
        assert_eq!(closte(Method::GET, "nope", "", "apikey=bad"), Err(R::Key));
        assert_eq!(closte(Method::POST, "adddomainalias", "", ""), Err(R::Key));
        assert_eq!(
            closte(Method::POST, "nope", "apikey=TOKEN", ""),
            Err(R::NotFound)
        );
        assert_eq!(
            closte(Method::GET, "adddomainalias", "apikey=TOKEN", ""),
            Err(R::Method)
        );
        assert_eq!(
            closte(Method::PUT, "ssl/install", "apikey=TOKEN", ""),
            Err(R::Method)
        );
        for refusal in [R::NotForm, R::Key, R::NotFound, R::Method] {
            assert!(refusal.status().is_client_error());
        }
    }

    #[test]
    fn the_closte_door_reads_calls_like_closte() {
        assert_eq!(
            closte(Method::GET, "getdomains", "apikey=TOKEN", ""),
            Ok(ClosteCall::List)
        );
        assert_eq!(
            closte(Method::POST, "getdomains", "", "apikey=TOKEN"),
            Ok(ClosteCall::List)
        );
        assert_eq!(
            closte(Method::POST, "ssl/install", "", "apikey=TOKEN&domain=x"),
            Ok(ClosteCall::SslInstall)
        );
        assert_eq!(
            closte(
                Method::POST,
                "adddomainalias",
                "",
                "apikey=TOKEN&domain=Shop.Example.com."
            ),
            Ok(ClosteCall::Write {
                endpoint: Endpoint::AddDomainAlias,
                domain: Domain::parse("shop.example.com").unwrap()
            })
        );
        assert_eq!(
            closte(
                Method::POST,
                "deletedomainalias",
                "domain=b%C3%BCcher.de",
                "apikey=TOKEN"
            ),
            Ok(ClosteCall::Write {
                endpoint: Endpoint::DeleteDomainAlias,
                domain: Domain::parse("xn--bcher-kva.de").unwrap()
            })
        );
        for (body, received) in [
            ("apikey=TOKEN", ""),
            ("apikey=TOKEN&domain=Bad..x", "Bad..x"),
        ] {
            assert_eq!(
                closte(Method::POST, "adddomainalias", "", body),
                Ok(ClosteCall::InvalidDomain {
                    received: received.into()
                })
            );
        }
    }

    #[test]
    fn the_native_door_reads_a_put() {
        let put = put_domain("Shop.example.com.", b"").unwrap();
        assert_eq!(
            (put.domain.as_str(), put.site_id),
            ("shop.example.com", None)
        );
        assert_eq!(put_domain("a.example", b" \n").unwrap().site_id, None);
        assert_eq!(
            put_domain("a.example", br#"{"siteId": 7}"#)
                .unwrap()
                .site_id,
            Some(7)
        );
        for body in [
            &br#"{"siteId": 0}"#[..],
            br#"{"siteId": "7"}"#,
            br#"{"siteId": null}"#,
            b"[5]",
            br#"{"site": 7}"#,
            b"{",
            b"[]",
        ] {
            assert!(
                put_domain("a.example", body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(matches!(
            put_domain("a..example", b""),
            Err(NativeRefusal::Domain(_))
        ));
    }

    #[test]
    fn the_native_door_reads_a_site_set() {
        let set = site_domains(
            "3",
            br#"{"domains": ["B.example", "b.example.", "a.example"]}"#,
        )
        .unwrap();
        assert_eq!(set.site, 3);
        let names: Vec<&str> = set.domains.iter().map(Domain::as_str).collect();
        assert_eq!(
            names,
            ["b.example", "a.example"],
            "normalised, each once, in order"
        );
        for site in ["0", "-1", "x", "1.0", "99999999999999999999", ""] {
            assert!(matches!(
                site_domains(site, br#"{"domains": []}"#),
                Err(NativeRefusal::SiteId)
            ));
        }
        for body in [
            &b""[..],
            b"{}",
            br#"{"domains": "a.example"}"#,
            br#"{"domains": [], "x": 1}"#,
            br#"[["a.example"]]"#,
        ] {
            assert!(matches!(
                site_domains("3", body),
                Err(NativeRefusal::Json(_))
            ));
        }
        assert!(matches!(
            site_domains("3", br#"{"domains": ["ok.example", "bad..x"]}"#),
            Err(NativeRefusal::Domain(_))
        ));
    }

    #[test]
    fn a_site_set_lists_at_most_the_maximum_counted_as_sent() {
        let set = |count: usize, distinct: bool| {
            let domains: Vec<String> = (0..count)
                .map(|i| format!("d{}.example", if distinct { i } else { 0 }))
                .collect();
            serde_json::json!({ "domains": domains }).to_string()
        };
        let most = site_domains("3", set(SITE_DOMAINS_MAX, true).as_bytes()).unwrap();
        assert_eq!(most.domains.len(), SITE_DOMAINS_MAX);
        for distinct in [true, false] {
            let refused = site_domains("3", set(SITE_DOMAINS_MAX + 1, distinct).as_bytes());
            let Err(refused) = refused else {
                panic!("{} domains taken", SITE_DOMAINS_MAX + 1);
            };
            assert!(matches!(refused, NativeRefusal::TooManyDomains(1001)));
            assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
            assert!(refused.to_string().contains("at most 1000"), "{refused}");
        }
        assert!(matches!(
            site_domains("3", set(10_000, true).as_bytes()),
            Err(NativeRefusal::TooManyDomains(10_000))
        ));
        assert_eq!(NativeRefusal::SiteId.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn the_native_door_reads_a_check_interval() {
        let put = put_domain("a.example", br#"{"siteId": 7, "checkInterval": "90s"}"#).unwrap();
        assert_eq!(
            (
                put.site_id,
                put.check_interval.as_ref().map(CheckInterval::as_str)
            ),
            (Some(7), Some("90s"))
        );
        let put = put_domain("a.example", br#"{"checkInterval": "1h30m"}"#).unwrap();
        assert_eq!(
            (put.site_id, put.check_interval.unwrap().as_str()),
            (None, "1h30m"),
            "kept as written"
        );
        assert_eq!(put_domain("a.example", b"").unwrap().check_interval, None);
        let set =
            site_domains("3", br#"{"domains": ["a.example"], "checkInterval": "5m"}"#).unwrap();
        assert_eq!(set.check_interval.unwrap().as_str(), "5m");
        let set = site_domains("3", br#"{"domains": ["a.example"]}"#).unwrap();
        assert_eq!(set.check_interval, None);
        // a string that is no interval: refused, saying so; not a string: malformed
        for (bad, reason) in [
            (r#""5s""#, "between 10s and 24h"),
            (r#""25h""#, "between 10s and 24h"),
            (r#""5 m""#, "invalid duration"),
            (r#""""#, "invalid duration"),
            ("300", "expected a string"),
            ("null", "expected a string"),
        ] {
            let body = format!(r#"{{"checkInterval": {bad}}}"#);
            let message = put_domain("a.example", body.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(message.contains(reason), "{bad}: {message}");
            let body = format!(r#"{{"domains": [], "checkInterval": {bad}}}"#);
            let message = site_domains("3", body.as_bytes()).unwrap_err().to_string();
            assert!(message.contains(reason), "{bad}: {message}");
        }
        assert!(matches!(
            put_domain("a.example", br#"{"checkInterval": "5s"}"#),
            Err(NativeRefusal::CheckInterval(
                CheckIntervalError::OutOfRange(_)
            ))
        ));
    }

    #[test]
    fn the_closte_door_reads_the_check_interval_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(check_interval_header(&headers), Ok(None));
        headers.insert("X-Closte-Operator-Check-Interval", "2m".parse().unwrap());
        assert_eq!(
            check_interval_header(&headers),
            Ok(Some(CheckInterval::parse("2m").unwrap()))
        );
        for bad in ["5s", "2 m", "", "1d"] {
            headers.insert(CHECK_INTERVAL_HEADER, bad.parse().unwrap());
            let refused = check_interval_header(&headers).unwrap_err();
            assert!(matches!(refused, CheckIntervalHeaderError::Invalid(_)));
            assert!(
                refused
                    .to_string()
                    .contains("X-Closte-Operator-Check-Interval"),
                "{refused}"
            );
        }
        headers.insert(CHECK_INTERVAL_HEADER, "2m".parse().unwrap());
        headers.append(CHECK_INTERVAL_HEADER, "3m".parse().unwrap());
        assert_eq!(
            check_interval_header(&headers),
            Err(CheckIntervalHeaderError::Repeated)
        );
        let mut headers = HeaderMap::new();
        let latin1 = axum::http::HeaderValue::from_bytes(b"2m\xe9").unwrap();
        headers.insert(CHECK_INTERVAL_HEADER, latin1);
        assert_eq!(
            check_interval_header(&headers),
            Err(CheckIntervalHeaderError::NotText)
        );
    }

    #[test]
    fn bearer_reads_only_the_bearer_scheme() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&headers), None);
    }
}
