//! Closte's wire format: the answers as Closte writes them (one definition for
//! every server that speaks for Closte: the simulator, the sidecar's
//! Closte-compatible door), the same answers read tolerantly, and the mapping
//! of HTTP answers to [`ClosteError`]s. Pure: bytes and status codes in,
//! results out.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::error::ClosteError;

/// The three endpoints of the client API, relative to the base URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    GetDomains,
    AddDomainAlias,
    DeleteDomainAlias,
}

impl Endpoint {
    pub const ALL: [Endpoint; 3] = [
        Endpoint::GetDomains,
        Endpoint::AddDomainAlias,
        Endpoint::DeleteDomainAlias,
    ];

    pub fn path(self) -> &'static str {
        match self {
            Endpoint::GetDomains => "getdomains",
            Endpoint::AddDomainAlias => "adddomainalias",
            Endpoint::DeleteDomainAlias => "deletedomainalias",
        }
    }

    pub fn is_write(self) -> bool {
        self != Endpoint::GetDomains
    }
}

/// The prefix of Closte's answer to an add with an invalid or empty domain.
pub const INVALID_DOMAIN_PREFIX: &str = "Invalid or empty domain: ";

/// The body of a successful add or delete.
pub const SUCCESS_BODY: &str = r#"{"success":true}"#;

/// The body of a failed call: `{"success":false,"error":"..."}`, keys in
/// Closte's order, `error` escaped as JSON requires.
pub fn failure_body(error: &str) -> String {
    #[derive(Serialize)]
    struct Failure<'a> {
        success: bool,
        error: &'a str,
    }
    encode(&Failure {
        success: false,
        error,
    })
}

/// A success that says something: `{"success":true,"message":"..."}`.
pub fn success_message_body(message: &str) -> String {
    #[derive(Serialize)]
    struct Success<'a> {
        success: bool,
        message: &'a str,
    }
    encode(&Success {
        success: true,
        message,
    })
}

/// The error text for an invalid or empty domain: the prefix, then the domain
/// exactly as it was received (nothing at all for a missing one).
pub fn invalid_domain_error(received: &str) -> String {
    format!("{INVALID_DOMAIN_PREFIX}{received}")
}

/// The answer to an add (or delete) with an invalid or empty domain. For an
/// empty one it is byte for byte
/// `{"success":false,"error":"Invalid or empty domain: "}`, which Ultimate
/// Multisite's "test connection" takes as proof that the key is accepted.
pub fn invalid_domain_body(received: &str) -> String {
    failure_body(&invalid_domain_error(received))
}

/// One item of a `getdomains` list, in either shape a server may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ListItem<'a> {
    /// A plain string: `"shop.example.com"`.
    Name(&'a str),
    /// An object with PascalCase fields, as a .NET service writes it:
    /// `{"Domain":"shop.example.com","Id":1,"IsWildcard":false}`.
    Object {
        #[serde(rename = "Domain")]
        domain: &'a str,
        #[serde(rename = "Id")]
        id: u64,
        #[serde(rename = "IsWildcard")]
        wildcard: bool,
    },
}

/// The body of a successful `getdomains`: `{"success":true,"domains":[...]}`.
pub fn domains_body(items: &[ListItem<'_>]) -> String {
    #[derive(Serialize)]
    struct List<'a> {
        success: bool,
        domains: &'a [ListItem<'a>],
    }
    encode(&List {
        success: true,
        domains: items,
    })
}

/// The parameters of a client API request as PHP's `$_REQUEST` sees them:
/// the query string, then the form body over it. `None` when either is not
/// form encoding: a broken `%` escape, or bytes that are not UTF-8.
pub fn request_parameters(query: &str, body: &[u8]) -> Option<HashMap<String, String>> {
    let mut params = HashMap::new();
    for part in [query.as_bytes(), body] {
        for pair in part.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let mut halves = pair.splitn(2, |b| *b == b'=');
            let name = form_decode(halves.next()?)?;
            let value = form_decode(halves.next().unwrap_or_default())?;
            params.insert(name, value);
        }
    }
    Some(params)
}

/// One form-encoded name or value: `+` is a space, `%XX` a byte (two hex
/// digits, nothing else: `u8::from_str_radix` would also take `+c`).
fn form_decode(encoded: &[u8]) -> Option<String> {
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut rest = encoded.iter();
    while let Some(&b) = rest.next() {
        bytes.push(match b {
            b'+' => b' ',
            b'%' => {
                let high = hex_digit(*rest.next()?)?;
                high << 4 | hex_digit(*rest.next()?)?
            }
            other => other,
        });
    }
    String::from_utf8(bytes).ok()
}

fn hex_digit(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Serialises a body made of strings, numbers and booleans only, which cannot fail.
fn encode(body: &impl Serialize) -> String {
    serde_json::to_string(body).expect("strings, numbers and booleans always serialise")
}

/// The fields of an answer body the client reads; everything else is ignored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Envelope {
    pub success: bool,
    pub error: Option<String>,
    /// Domain names of a `getdomains` answer, as Closte wrote them.
    pub domains: Option<Vec<String>>,
}

/// Reads a JSON answer. Tolerant of shape: `success` as a bool, number or
/// string; `error` as any scalar; `domains` items as strings or as objects
/// with a name-like key in any case. `None` when the body is not a JSON object.
pub fn decode(body: &[u8]) -> Option<Envelope> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let object = value.as_object()?;
    let field = |name: &str| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    let success = match field("success") {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64() == Some(1.0),
        Some(Value::String(s)) => matches!(s.to_ascii_lowercase().as_str(), "true" | "1"),
        _ => false,
    };
    let error = match field("error") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    };
    let domains = field("domains")
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(item_name).collect());
    Some(Envelope {
        success,
        error,
        domains,
    })
}

/// Keys that may hold a domain's name in a `domains` item, in preference order.
const NAME_KEYS: [&str; 4] = ["domain", "name", "hostname", "alias"];

fn item_name(item: &Value) -> Option<String> {
    match item {
        Value::String(s) => Some(s.clone()),
        Value::Object(map) => NAME_KEYS.iter().find_map(|wanted| {
            map.iter()
                .find(|(k, v)| k.eq_ignore_ascii_case(wanted) && v.is_string())
                .and_then(|(_, v)| v.as_str().map(str::to_owned))
        }),
        _ => None,
    }
}

/// Parses `Retry-After` given in seconds (the HTTP-date form is treated as absent).
pub fn parse_retry_after(value: Option<&str>) -> Option<Duration> {
    value?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Whether an error text speaks of the key rather than the request.
fn mentions_credentials(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    [
        "api key",
        "apikey",
        "api_key",
        "unauthor",
        "forbidden",
        "access denied",
        "not authorized",
        "authentication",
        "credential",
        "token",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

/// A short description of a body for error messages: never more than 120
/// characters, and HTML pages (a proxy in front of Closte) named as such.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "empty body".into();
    }
    if text.starts_with('<') {
        return "an HTML page".into();
    }
    let short: String = text.chars().take(120).collect();
    if short.len() < text.len() {
        format!("{short}...")
    } else {
        short
    }
}

/// The answer to one request, as the server gave it.
#[derive(Debug, Clone, Copy)]
pub struct Response<'a> {
    pub status: u16,
    pub retry_after: Option<&'a str>,
    pub body: &'a [u8],
}

/// Turns an HTTP answer into the decoded envelope of a successful call, or
/// the error the caller should act on. `domain` is what was sent (for writes).
/// Text from the server is passed through `redact` before it lands in an error.
pub fn interpret(
    endpoint: Endpoint,
    domain: Option<&str>,
    response: Response<'_>,
    redact: impl Fn(&str) -> String,
) -> Result<Envelope, ClosteError> {
    let status = response.status;
    if status == 429 {
        return Err(ClosteError::RateLimited {
            retry_after: parse_retry_after(response.retry_after),
        });
    }
    if status == 408 || status >= 500 {
        return Err(ClosteError::Transient {
            reason: format!("HTTP {status} with {}", redact(&snippet(response.body))),
        });
    }
    let envelope = decode(response.body);
    if status == 401 || status == 403 {
        let detail = envelope
            .and_then(|e| e.error)
            .unwrap_or_else(|| format!("HTTP {status}"));
        return Err(ClosteError::CredentialsRejected {
            message: redact(&detail),
        });
    }
    let Some(envelope) = envelope else {
        let reason = format!(
            "HTTP {status} with a body that is not a JSON object ({})",
            redact(&snippet(response.body))
        );
        // A 2xx that is not JSON is a proxy or a half-written answer: worth a retry.
        return Err(if (200..300).contains(&status) {
            ClosteError::Transient { reason }
        } else {
            ClosteError::Unexpected { reason }
        });
    };
    if envelope.success && (200..300).contains(&status) {
        if endpoint == Endpoint::GetDomains && envelope.domains.is_none() {
            return Err(ClosteError::Unexpected {
                reason: "getdomains answered success without a domains list".into(),
            });
        }
        return Ok(envelope);
    }
    let message = redact(
        envelope
            .error
            .as_deref()
            .unwrap_or("success is false and no error was given"),
    );
    if message.starts_with(INVALID_DOMAIN_PREFIX.trim_end()) && endpoint.is_write() {
        return Err(ClosteError::DomainRejected {
            domain: redact(domain.unwrap_or_default()),
            message,
        });
    }
    if mentions_credentials(&message) {
        return Err(ClosteError::CredentialsRejected { message });
    }
    Err(ClosteError::Unexpected {
        reason: format!("HTTP {status}: {message}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(body: &str) -> Vec<String> {
        decode(body.as_bytes()).unwrap().domains.unwrap()
    }

    #[test]
    fn list_items_as_strings_or_objects_of_any_case() {
        assert_eq!(
            names(r#"{"success":true,"domains":["a.com","B.com."]}"#),
            ["a.com", "B.com."]
        );
        assert_eq!(
            names(
                r#"{"Success":true,"Domains":[
                    {"Domain":"a.com","Id":1,"IsWildcard":false},
                    {"name":"b.com"},
                    {"HostName":"c.com","extra":{"x":1}},
                    {"ALIAS":"*.d.com"},
                    {"Id":5},
                    42,
                    null,
                    {"domain":7,"name":"e.com"}
                ]}"#
            ),
            ["a.com", "b.com", "c.com", "*.d.com", "e.com"]
        );
    }

    #[test]
    fn success_in_several_spellings() {
        for body in [
            r#"{"success":true}"#,
            r#"{"success":1}"#,
            r#"{"success":"true"}"#,
            r#"{"SUCCESS":"1"}"#,
        ] {
            assert!(decode(body.as_bytes()).unwrap().success, "{body}");
        }
        for body in [
            r#"{"success":false}"#,
            r#"{"success":0}"#,
            r#"{}"#,
            r#"{"success":"no"}"#,
        ] {
            assert!(!decode(body.as_bytes()).unwrap().success, "{body}");
        }
        assert_eq!(decode(b"[1,2]"), None);
        assert_eq!(decode(b"<html>"), None);
        assert_eq!(
            decode(br#"{"success":false,"error":{"code":3}}"#)
                .unwrap()
                .error
                .as_deref(),
            Some(r#"{"code":3}"#)
        );
    }

    fn run(endpoint: Endpoint, status: u16, body: &str) -> Result<Envelope, ClosteError> {
        let response = Response {
            status,
            retry_after: None,
            body: body.as_bytes(),
        };
        interpret(endpoint, Some("x.example.com"), response, |s| {
            s.replace("KEY", "[redacted]")
        })
    }

    #[test]
    fn classifies_answers() {
        use ClosteError::*;
        let add = Endpoint::AddDomainAlias;
        assert!(run(add, 200, r#"{"success":true}"#).is_ok());
        assert!(matches!(
            run(
                add,
                200,
                r#"{"success":false,"error":"Invalid or empty domain: x.example.com"}"#
            ),
            Err(DomainRejected { .. })
        ));
        assert!(matches!(run(add, 401, ""), Err(CredentialsRejected { .. })));
        assert!(matches!(
            run(add, 403, "<html>no</html>"),
            Err(CredentialsRejected { .. })
        ));
        assert!(matches!(
            run(add, 200, r#"{"success":false,"error":"Invalid API key"}"#),
            Err(CredentialsRejected { .. })
        ));
        assert!(matches!(run(add, 500, "oops"), Err(Transient { .. })));
        assert!(matches!(
            run(add, 502, "<html><body>Bad gateway</body></html>"),
            Err(Transient { .. })
        ));
        assert!(matches!(
            run(add, 200, "{\"success\": tr"),
            Err(Transient { .. })
        ));
        assert!(matches!(run(add, 404, "Not Found"), Err(Unexpected { .. })));
        assert!(matches!(
            run(
                add,
                200,
                r#"{"success":false,"error":"Domain already exists"}"#
            ),
            Err(Unexpected { .. })
        ));
        assert!(matches!(
            run(Endpoint::GetDomains, 200, r#"{"success":true}"#),
            Err(Unexpected { .. })
        ));
        // a getdomains failure never reads as a domain rejection
        assert!(matches!(
            run(
                Endpoint::GetDomains,
                200,
                r#"{"success":false,"error":"Invalid or empty domain: "}"#
            ),
            Err(Unexpected { .. })
        ));
    }

    #[test]
    fn success_and_failure_bodies_decode_to_what_they_say() {
        assert_eq!(SUCCESS_BODY, r#"{"success":true}"#);
        for endpoint in [Endpoint::AddDomainAlias, Endpoint::DeleteDomainAlias] {
            assert_eq!(
                run(endpoint, 200, SUCCESS_BODY),
                Ok(Envelope {
                    success: true,
                    error: None,
                    domains: None
                })
            );
        }
        assert_eq!(
            failure_body("Too many requests"),
            r#"{"success":false,"error":"Too many requests"}"#
        );
        for text in [
            "Domain alias not found",
            "quote \" backslash \\ newline \n tab \t",
            "\u{1} control, ünïcode ✓",
            "",
        ] {
            let body = failure_body(text);
            assert_eq!(
                decode(body.as_bytes()),
                Some(Envelope {
                    success: false,
                    error: Some(text.into()),
                    domains: None
                }),
                "{body}"
            );
        }
        assert_eq!(
            run(
                Endpoint::DeleteDomainAlias,
                200,
                &failure_body("Domain alias not found")
            ),
            Err(ClosteError::Unexpected {
                reason: "HTTP 200: Domain alias not found".into()
            })
        );
    }

    #[test]
    fn invalid_domain_body_is_byte_exact_and_reads_as_a_rejection() {
        assert_eq!(
            invalid_domain_body(""),
            r#"{"success":false,"error":"Invalid or empty domain: "}"#
        );
        assert_eq!(
            invalid_domain_error("Bad Name."),
            "Invalid or empty domain: Bad Name."
        );
        for received in ["", "bad domain", "x.example.com", "a\"b\\c"] {
            let body = invalid_domain_body(received);
            let response = Response {
                status: 200,
                retry_after: None,
                body: body.as_bytes(),
            };
            assert_eq!(
                interpret(
                    Endpoint::AddDomainAlias,
                    Some(received),
                    response,
                    str::to_owned
                ),
                Err(ClosteError::DomainRejected {
                    domain: received.into(),
                    message: format!("Invalid or empty domain: {received}"),
                }),
                "{body}"
            );
        }
    }

    #[test]
    fn domain_lists_in_both_shapes_decode_to_their_names() {
        let names = ["shop.example.com", "*.blogs.example.org", "q\"uote.example"];
        let strings: Vec<ListItem> = names.iter().map(|n| ListItem::Name(n)).collect();
        let objects: Vec<ListItem> = names
            .iter()
            .zip(1..)
            .map(|(n, id)| ListItem::Object {
                domain: n,
                id,
                wildcard: n.starts_with("*."),
            })
            .collect();
        assert_eq!(
            domains_body(&strings[..2]),
            r#"{"success":true,"domains":["shop.example.com","*.blogs.example.org"]}"#
        );
        assert_eq!(
            domains_body(&objects[..2]),
            r#"{"success":true,"domains":[{"Domain":"shop.example.com","Id":1,"IsWildcard":false},{"Domain":"*.blogs.example.org","Id":2,"IsWildcard":true}]}"#
        );
        assert_eq!(domains_body(&[]), r#"{"success":true,"domains":[]}"#);
        for items in [&strings, &objects] {
            let envelope = run(Endpoint::GetDomains, 200, &domains_body(items)).unwrap();
            assert!(envelope.success);
            assert_eq!(envelope.domains.unwrap(), names);
        }
        assert_eq!(
            run(Endpoint::GetDomains, 200, &domains_body(&[]))
                .unwrap()
                .domains,
            Some(vec![])
        );
    }

    #[test]
    fn request_parameters_read_like_php_and_refuse_broken_forms() {
        let params = request_parameters(
            "apikey=q&x=1",
            b"apikey=b%20ody&domain=*.a.example&wildcard=",
        )
        .unwrap();
        assert_eq!(params["apikey"], "b ody", "the body wins over the query");
        assert_eq!(params["domain"], "*.a.example");
        assert_eq!(params["wildcard"], "");
        assert_eq!(params["x"], "1");
        assert_eq!(
            request_parameters("", b"a=one+two%2B").unwrap()["a"],
            "one two+"
        );
        assert!(
            request_parameters("", b"domain=%FF%FE").is_none(),
            "not UTF-8"
        );
        assert!(
            request_parameters("", b"domain=%G1").is_none(),
            "a broken escape"
        );
        assert!(request_parameters("a=%", b"").is_none());
        assert!(request_parameters("", b"").unwrap().is_empty());
        assert_eq!(
            request_parameters("", b"a=%2b%2B%C3%BC").unwrap()["a"],
            "++\u{fc}"
        );
    }

    /// Found by the fuzz target closte_decode (minimised input
    /// `ff ff 3f 25 2b 63`, a form of `%+c`): a sign was taken as the first
    /// hex digit of an escape, so `%+c` read as the byte 0x0c where PHP and
    /// every form decoder read `% c`. A broken escape refuses the form.
    #[test]
    fn an_escape_is_two_hex_digits_and_nothing_else() {
        for broken in [
            &b"%+c"[..],
            b"domain=a%+c",
            b"a=%-1",
            b"a=% 1",
            b"a=%1+",
            b"a=%+",
        ] {
            assert_eq!(
                request_parameters("", broken),
                None,
                "{}",
                String::from_utf8_lossy(broken)
            );
            let query = std::str::from_utf8(broken).unwrap();
            assert_eq!(request_parameters(query, b""), None, "{query}");
        }
    }

    #[test]
    fn rate_limits_carry_retry_after() {
        let response = Response {
            status: 429,
            retry_after: Some(" 12 "),
            body: b"",
        };
        assert_eq!(
            interpret(Endpoint::GetDomains, None, response, str::to_owned),
            Err(ClosteError::RateLimited {
                retry_after: Some(Duration::from_secs(12))
            })
        );
        assert_eq!(
            parse_retry_after(Some("Wed, 21 Oct 2026 07:28:00 GMT")),
            None
        );
        assert_eq!(parse_retry_after(None), None);
    }

    #[test]
    fn server_text_is_redacted_and_short() {
        let err = run(
            Endpoint::AddDomainAlias,
            200,
            r#"{"success":false,"error":"bad apikey KEY"}"#,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Closte rejected the API key: bad apikey [redacted]"
        );
        let long = "x".repeat(500);
        let err = run(Endpoint::AddDomainAlias, 503, &long).unwrap_err();
        assert!(err.to_string().len() < 200, "{err}");
        let err = run(
            Endpoint::AddDomainAlias,
            502,
            "<!DOCTYPE html><html>KEY</html>",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Closte unavailable: HTTP 502 with an HTML page"
        );
    }
}
