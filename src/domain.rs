//! Hostname validation and normalisation for mapped domains. Pure: no IO.
//!
//! [`Rule`] is the single source of truth for what a valid `spec.domain` is.
//! Each rule has a Rust check and the CEL expression the API server runs, with
//! the same message, so the controller, the sidecar and the API server agree
//! and reject the same input with the same words.

use std::fmt;

/// Longest hostname DNS allows in text form (RFC 1035 without the root dot).
pub const MAX_LEN: usize = 253;
/// Longest label DNS allows.
pub const MAX_LABEL_LEN: usize = 63;

/// One validation rule of `spec.domain`, in the order they are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rule {
    TooLong,
    SchemeOrPath,
    Port,
    Lowercase,
    Characters,
    Wildcard,
    LabelLength,
    LabelHyphen,
    TwoLabels,
    NumericTld,
}

impl Rule {
    /// Every rule, in checking order.
    pub const ALL: [Rule; 10] = [
        Rule::TooLong,
        Rule::SchemeOrPath,
        Rule::Port,
        Rule::Lowercase,
        Rule::Characters,
        Rule::Wildcard,
        Rule::LabelLength,
        Rule::LabelHyphen,
        Rule::TwoLabels,
        Rule::NumericTld,
    ];

    /// A short stable name, used in test tables and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Rule::TooLong => "too-long",
            Rule::SchemeOrPath => "scheme-or-path",
            Rule::Port => "port",
            Rule::Lowercase => "lowercase",
            Rule::Characters => "characters",
            Rule::Wildcard => "wildcard",
            Rule::LabelLength => "label-length",
            Rule::LabelHyphen => "label-hyphen",
            Rule::TwoLabels => "two-labels",
            Rule::NumericTld => "numeric-tld",
        }
    }

    /// Looks a rule up by [`Rule::name`].
    pub fn from_name(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The message shown to users, by the API server and by this crate alike.
    pub fn message(self) -> &'static str {
        match self {
            // The API server's own maxLength wording, which it reports instead of any CEL rule.
            Rule::TooLong => "may not be more than 253 bytes",
            Rule::SchemeOrPath => {
                "domain must be a bare hostname, without scheme (http://) or path"
            }
            Rule::Port => "domain must not include a port",
            Rule::Lowercase => "domain must be lowercase",
            Rule::Characters => {
                "domain may contain only a-z, 0-9, '-' and '.', plus a leading '*.'; \
                 write internationalised names in punycode (xn--...)"
            }
            Rule::Wildcard => "a wildcard is allowed only as a single leading '*.'",
            Rule::LabelLength => {
                "every dot-separated label must be 1 to 63 characters \
                 (no empty label, no leading or trailing dot)"
            }
            Rule::LabelHyphen => "labels must not start or end with '-'",
            Rule::TwoLabels => {
                "domain must have at least two labels besides a wildcard, like example.com"
            }
            Rule::NumericTld => {
                "the last label must not be all digits (IP addresses are not domains)"
            }
        }
    }

    /// The CEL expression the API server evaluates (`self` is the domain string).
    /// Each must hold exactly when [`Rule::holds`] does. `None` for the length
    /// limit, which the schema's `maxLength` enforces: the API server skips CEL
    /// rules once it fails, and needs it to bound their cost anyway.
    pub fn cel(self) -> Option<&'static str> {
        Some(match self {
            Rule::TooLong => return None,
            Rule::SchemeOrPath => "!self.contains('/')",
            Rule::Port => "!self.contains(':')",
            Rule::Lowercase => "self == self.lowerAscii()",
            Rule::Characters => "self.matches('^[a-zA-Z0-9.*-]+$')",
            Rule::Wildcard => {
                "!self.contains('*') || (self.startsWith('*.') && self.lastIndexOf('*') == 0)"
            }
            Rule::LabelLength => "self.split('.').all(l, l.size() >= 1 && l.size() <= 63)",
            Rule::LabelHyphen => "self.split('.').all(l, !l.startsWith('-') && !l.endsWith('-'))",
            Rule::TwoLabels => "self.split('.').filter(l, l != '*').size() >= 2",
            Rule::NumericTld => "!self.matches('[.][0-9]+$')",
        })
    }

    /// Whether `s` satisfies this rule on its own.
    pub fn holds(self, s: &str) -> bool {
        match self {
            // in characters, as the API server counts maxLength (whatever its
            // message says); the same as bytes for every name that passes the rest
            Rule::TooLong => s.chars().count() <= MAX_LEN,
            Rule::SchemeOrPath => !s.contains('/'),
            Rule::Port => !s.contains(':'),
            Rule::Lowercase => !s.chars().any(|c| c.is_ascii_uppercase()),
            Rule::Characters => {
                !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".*-".contains(c))
            }
            Rule::Wildcard => !s.contains('*') || (s.starts_with("*.") && s.rfind('*') == Some(0)),
            Rule::LabelLength => s
                .split('.')
                .all(|l| (1..=MAX_LABEL_LEN).contains(&l.chars().count())),
            Rule::LabelHyphen => s
                .split('.')
                .all(|l| !l.starts_with('-') && !l.ends_with('-')),
            Rule::TwoLabels => s.split('.').filter(|l| *l != "*").count() >= 2,
            Rule::NumericTld => match s.rsplit_once('.') {
                Some((_, last)) => last.is_empty() || !last.bytes().all(|b| b.is_ascii_digit()),
                None => true,
            },
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// Why a string is not a valid mapped domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("invalid domain {input:?}: {rule}")]
    Invalid { input: String, rule: Rule },
    #[error("invalid domain {input:?}: not a valid internationalised domain name")]
    Idna { input: String },
}

impl DomainError {
    /// The failed rule, when the error is one of the API server's rules.
    pub fn rule(&self) -> Option<Rule> {
        match self {
            DomainError::Invalid { rule, .. } => Some(*rule),
            DomainError::Idna { .. } => None,
        }
    }
}

/// A validated, canonical mapped domain: what `spec.domain` holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Domain(String);

impl Domain {
    /// Accepts exactly what the API server accepts for `spec.domain`.
    pub fn parse(s: &str) -> Result<Domain, DomainError> {
        validate(s)?;
        Ok(Domain(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for `*.example.com`.
    pub fn is_wildcard(&self) -> bool {
        self.0.starts_with("*.")
    }

    /// The domain without a leading `*.`.
    pub fn base(&self) -> &str {
        self.0.strip_prefix("*.").unwrap_or(&self.0)
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks `s` against every [`Rule`] and reports the first that fails.
pub fn validate(s: &str) -> Result<(), DomainError> {
    match Rule::ALL.into_iter().find(|rule| !rule.holds(s)) {
        None => Ok(()),
        Some(rule) => Err(DomainError::Invalid {
            input: s.to_owned(),
            rule,
        }),
    }
}

/// Turns what a person or WordPress typed into the canonical form: trimmed,
/// lowercase, no trailing dot, Unicode labels as punycode; then validates it.
pub fn normalize(input: &str) -> Result<Domain, DomainError> {
    let trimmed = input.trim();
    let trimmed = trimmed.strip_suffix('.').unwrap_or(trimmed);
    let (wildcard, rest) = match trimmed.strip_prefix("*.") {
        Some(rest) => ("*.", rest),
        None => ("", trimmed),
    };
    let ascii = if rest.is_ascii() {
        rest.to_ascii_lowercase()
    } else {
        idna::domain_to_ascii_cow(rest.as_bytes(), idna::AsciiDenyList::STD3)
            .map_err(|_| DomainError::Idna {
                input: input.to_owned(),
            })?
            .into_owned()
    };
    Domain::parse(&format!("{wildcard}{ascii}"))
}

/// The form of a domain that claims compare: normalised, so that two
/// spellings of one name conflict (as written when it breaks the rules).
pub fn claimed_domain(domain: &str) -> String {
    normalize(domain).map_or_else(|_| domain.to_owned(), |d| d.as_str().to_owned())
}

/// A name as Closte may echo it, folded for comparison: trimmed, lowercase,
/// without a trailing dot.
pub fn fold_name(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Reads a table of domain cases, one per line: `valid<TAB>NAME` or
/// `invalid<TAB>NAME<TAB>RULE` (a [`Rule::name`]); `#` starts a comment.
/// In NAME, `{c*N}` stands for N copies of `c`, `\s` for a space and `""` for
/// the empty string, so long and blank cases stay readable. The same table
/// drives the unit tests and the API server integration test.
pub fn parse_case_table(text: &str) -> Vec<(String, Option<Rule>)> {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let name = expand_case_name(fields.get(1).copied().unwrap_or_default());
            let rule = match (fields[0], fields.get(2)) {
                ("valid", None) => None,
                ("invalid", Some(rule)) => Some(
                    Rule::from_name(rule).unwrap_or_else(|| panic!("unknown rule in {line:?}")),
                ),
                _ => panic!("malformed case line {line:?}"),
            };
            (name, rule)
        })
        .collect()
}

fn expand_case_name(raw: &str) -> String {
    if raw == "\"\"" {
        return String::new();
    }
    let mut out = String::new();
    let mut rest = raw;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("unclosed {") + start;
        let (c, n) = rest[start + 1..end].split_once('*').expect("{c*N}");
        out.push_str(&c.repeat(n.parse().expect("repeat count")));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out.replace("\\s", " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table shared with the API server integration test (tests/api.rs).
    const CASES: &str = include_str!("../tests/data/domain-cases.tsv");

    fn cases() -> Vec<(String, Option<Rule>)> {
        parse_case_table(CASES)
    }

    #[test]
    fn table_has_enough_cases() {
        let cases = cases();
        assert!(cases.len() >= 60, "only {} cases", cases.len());
        assert!(cases.iter().filter(|(_, r)| r.is_none()).count() >= 20);
        // every rule is exercised by at least one case
        for rule in Rule::ALL {
            assert!(
                cases.iter().any(|(_, r)| *r == Some(rule)),
                "no case for rule {}",
                rule.name()
            );
        }
    }

    #[test]
    fn validate_agrees_with_table() {
        for (input, expected) in cases() {
            let got = validate(&input).err().and_then(|e| e.rule());
            assert_eq!(got, expected, "validate({input:?})");
        }
    }

    #[test]
    fn normalize_examples() {
        let ok = [
            ("Example.COM", "example.com"),
            ("  example.com.  ", "example.com"),
            ("*.Example.com.", "*.example.com"),
            ("bücher.de", "xn--bcher-kva.de"),
            ("*.BÜCHER.de", "*.xn--bcher-kva.de"),
            ("münchen.example.org", "xn--mnchen-3ya.example.org"),
            ("xn--bcher-kva.de", "xn--bcher-kva.de"),
            ("日本.jp", "xn--wgv71a.jp"),
        ];
        for (input, want) in ok {
            assert_eq!(
                normalize(input).unwrap().as_str(),
                want,
                "normalize({input:?})"
            );
        }
        let bad = [
            ("http://example.com", Some(Rule::SchemeOrPath)),
            ("example.com:443", Some(Rule::Port)),
            ("exa mple.com", Some(Rule::Characters)),
            ("example..com", Some(Rule::LabelLength)),
            ("10.0.0.1", Some(Rule::NumericTld)),
            ("bü cher.de", None),
            ("", Some(Rule::Characters)),
        ];
        for (input, rule) in bad {
            let err = normalize(input).unwrap_err();
            assert_eq!(err.rule(), rule, "normalize({input:?}) = {err}");
        }
    }

    #[test]
    fn domain_helpers() {
        let d = Domain::parse("*.shop.example.com").unwrap();
        assert!(d.is_wildcard());
        assert_eq!(d.base(), "shop.example.com");
        let d = Domain::parse("example.com").unwrap();
        assert!(!d.is_wildcard());
        assert_eq!(d.base(), "example.com");
    }

    #[test]
    fn fold_name_ignores_case_and_trailing_dot() {
        assert_eq!(fold_name(" Example.com. "), "example.com");
        assert_eq!(fold_name("*.A.b."), "*.a.b");
        assert_ne!(fold_name("a.example.com"), fold_name("example.com"));
    }

    #[test]
    fn error_names_the_rule() {
        let err = validate("-a.example.com").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid domain \"-a.example.com\": labels must not start or end with '-'"
        );
    }

    #[test]
    fn every_rule_has_distinct_name_and_cel() {
        for a in Rule::ALL {
            assert_eq!(Rule::from_name(a.name()), Some(a));
            for b in Rule::ALL {
                if a != b {
                    assert!(a.cel().is_none() || a.cel() != b.cel());
                    assert_ne!(a.message(), b.message());
                }
            }
        }
    }
}
