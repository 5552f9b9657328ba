//! Label selectors as kubectl writes them (`a=b,c!=d,e in (f,g),!h`), parsed
//! into kube's [`Selector`] so a flag is checked when the process starts and
//! labels are matched in process. No IO.

use std::collections::BTreeSet;

use kube::core::{Expression, Selector};

/// Why a label selector does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error("empty label selector: it would select everything")]
    Empty,
    #[error("empty requirement in label selector {0:?}")]
    EmptyRequirement(String),
    #[error("invalid label key {0:?}")]
    Key(String),
    #[error("invalid label value {value:?} for key {key:?}")]
    Value { key: String, value: String },
    #[error(
        "cannot read requirement {0:?}: use key, !key, key=value, key!=value, key in (a,b) or key notin (a,b)"
    )]
    Requirement(String),
    #[error("unbalanced parentheses in label selector {0:?}")]
    Parentheses(String),
}

/// Parses a label selector; the empty one is refused (it would select
/// everything, which a restriction never means).
pub fn parse(text: &str) -> Result<Selector, SelectorError> {
    if text.trim().is_empty() {
        return Err(SelectorError::Empty);
    }
    split_requirements(text)?
        .into_iter()
        .map(requirement)
        .collect::<Result<Vec<Expression>, _>>()
        .map(Selector::from_iter)
}

/// Splits at the commas outside parentheses.
fn split_requirements(text: &str) -> Result<Vec<&str>, SelectorError> {
    let unbalanced = || SelectorError::Parentheses(text.to_owned());
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0u32, 0);
    for (at, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.checked_sub(1).ok_or_else(unbalanced)?,
            ',' if depth == 0 => {
                parts.push(&text[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(unbalanced());
    }
    parts.push(&text[start..]);
    Ok(parts)
}

fn requirement(part: &str) -> Result<Expression, SelectorError> {
    let part = part.trim();
    if part.is_empty() {
        return Err(SelectorError::EmptyRequirement(part.to_owned()));
    }
    if let Some(key) = part.strip_prefix('!') {
        return Ok(Expression::DoesNotExist(key_of(key)?));
    }
    if let Some((key, value)) = part.split_once("!=") {
        let key = key_of(key)?;
        let value = value_of(&key, value)?;
        return Ok(Expression::NotEqual(key, value));
    }
    if let Some((key, value)) = part.split_once('=') {
        let key = key_of(key)?;
        // `==` is the same as `=`
        let value = value.strip_prefix('=').unwrap_or(value);
        let value = value_of(&key, value)?;
        return Ok(Expression::Equal(key, value));
    }
    if let Some(open) = part.find('(') {
        let (head, set) = part.split_at(open);
        let mut words = head.split_whitespace();
        let (Some(key), Some(operator), None) = (words.next(), words.next(), words.next()) else {
            return Err(SelectorError::Requirement(part.to_owned()));
        };
        let Some(values) = set.strip_prefix('(').and_then(|s| s.strip_suffix(')')) else {
            return Err(SelectorError::Requirement(part.to_owned()));
        };
        let key = key_of(key)?;
        let values = values
            .split(',')
            .map(|v| value_of(&key, v))
            .collect::<Result<BTreeSet<String>, _>>()?;
        return match operator {
            "in" => Ok(Expression::In(key, values)),
            "notin" => Ok(Expression::NotIn(key, values)),
            _ => Err(SelectorError::Requirement(part.to_owned())),
        };
    }
    if part.split_whitespace().count() == 1 && !part.contains(['<', '>']) {
        return Ok(Expression::Exists(key_of(part)?));
    }
    Err(SelectorError::Requirement(part.to_owned()))
}

/// A label key: an optional DNS subdomain prefix and `/`, then a name.
fn key_of(text: &str) -> Result<String, SelectorError> {
    let key = text.trim();
    let invalid = || SelectorError::Key(key.to_owned());
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        p.len() <= 253
            && p.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            })
    });
    if prefix_ok && !name.is_empty() && name_ok(name) {
        Ok(key.to_owned())
    } else {
        Err(invalid())
    }
}

/// A label value: empty, or a name.
fn value_of(key: &str, text: &str) -> Result<String, SelectorError> {
    let value = text.trim();
    if value.is_empty() || name_ok(value) {
        Ok(value.to_owned())
    } else {
        Err(SelectorError::Value {
            key: key.to_owned(),
            value: value.to_owned(),
        })
    }
}

/// At most 63 characters of `[A-Za-z0-9_.-]`, alphanumeric at both ends.
fn name_ok(name: &str) -> bool {
    let bytes = name.as_bytes();
    let edge = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
    name.len() <= 63
        && edge(bytes.first())
        && edge(bytes.last())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kube::core::SelectorExt;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_every_operator_kubectl_knows_but_gt_and_lt() {
        let selector = parse(
            "closte-operator.io/default-key=allowed, tier==web,env!=dev,zone in (a, b),team notin (x),owner,!legacy",
        )
        .unwrap();
        assert_eq!(
            selector.to_string(),
            "closte-operator.io/default-key=allowed,tier=web,env!=dev,zone in (a,b),team notin (x),owner,!legacy"
        );
        let allowed = labels(&[
            ("closte-operator.io/default-key", "allowed"),
            ("tier", "web"),
            ("zone", "b"),
            ("owner", "platform"),
        ]);
        assert!(selector.matches(&allowed));
        let mut legacy = allowed.clone();
        legacy.insert("legacy".into(), String::new());
        assert!(!selector.matches(&legacy));
        let mut other_zone = allowed.clone();
        other_zone.insert("zone".into(), "c".into());
        assert!(!selector.matches(&other_zone));
    }

    #[test]
    fn an_equality_matches_only_that_value() {
        let selector = parse("closte-operator.io/default-key=allowed").unwrap();
        assert!(selector.matches(&labels(&[("closte-operator.io/default-key", "allowed")])));
        assert!(!selector.matches(&labels(&[("closte-operator.io/default-key", "denied")])));
        assert!(!selector.matches(&labels(&[])));
    }

    #[test]
    fn refuses_what_kubectl_refuses_and_the_empty_selector() {
        for (text, want) in [
            ("", SelectorError::Empty),
            ("  ", SelectorError::Empty),
            ("a=b,", SelectorError::EmptyRequirement(String::new())),
            ("a b", SelectorError::Requirement("a b".into())),
            ("count>3", SelectorError::Requirement("count>3".into())),
            ("a in (b", SelectorError::Parentheses("a in (b".into())),
            ("a in b)", SelectorError::Parentheses("a in b)".into())),
            (
                "a within (b)",
                SelectorError::Requirement("a within (b)".into()),
            ),
            ("-a=b", SelectorError::Key("-a".into())),
            ("Upper.Case/a=b", SelectorError::Key("Upper.Case/a".into())),
            ("/a=b", SelectorError::Key("/a".into())),
            (
                "a=b c",
                SelectorError::Value {
                    key: "a".into(),
                    value: "b c".into(),
                },
            ),
            (
                "a=-b",
                SelectorError::Value {
                    key: "a".into(),
                    value: "-b".into(),
                },
            ),
        ] {
            assert_eq!(parse(text).unwrap_err(), want, "{text:?}");
        }
        assert!(parse("a=").is_ok(), "an empty value is a value");
    }
}
