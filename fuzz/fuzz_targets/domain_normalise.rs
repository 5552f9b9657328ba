//! Hostname rules and normalisation (`src/domain.rs`) on arbitrary text.
//!
//! Input: bytes read as UTF-8 (invalid sequences become U+FFFD); a NUL
//! splits them into two names, checked alone and as a pair.
#![no_main]

use closte_operator::domain::{self, Domain, Rule};
use closte_operator::sidecar::names::name_for;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (a, b) = match text.split_once('\0') {
        Some((a, b)) => (a, Some(b)),
        None => (text.as_ref(), None),
    };
    let a = check(a);
    if let (Some(a), Some(b)) = (a, b.and_then(check)) {
        // two domains never share a MappedDomain name
        assert_eq!(a == b, name_for(&a) == name_for(&b), "{a} and {b}");
    }
});

/// Every invariant of one input; returns its normal form, if it has one.
fn check(input: &str) -> Option<Domain> {
    // validate names the first rule that fails, in order, or none fails
    let verdict = domain::validate(input);
    let first_failing = Rule::ALL.into_iter().find(|rule| !rule.holds(input));
    assert_eq!(verdict.as_ref().err().and_then(|e| e.rule()), first_failing);
    assert_eq!(Domain::parse(input).is_ok(), verdict.is_ok());

    let normalised = domain::normalize(input);
    if verdict.is_ok() {
        // a valid name is already in normal form
        assert_eq!(normalised.as_ref().map(Domain::as_str), Ok(input));
    }
    let domain = normalised.ok()?;
    let canonical = domain.as_str();
    assert_eq!(
        domain::validate(canonical),
        Ok(()),
        "normalize returned {canonical:?}"
    );
    // idempotent, and blind to case, surrounding space and one trailing dot
    assert_eq!(domain::normalize(canonical).as_ref(), Ok(&domain));
    let respelt = format!(" {}.\t", canonical.to_ascii_uppercase());
    assert_eq!(domain::normalize(&respelt).as_ref(), Ok(&domain));
    assert_eq!(domain::fold_name(canonical), canonical);
    assert!(canonical.is_ascii() && canonical.len() <= domain::MAX_LEN);
    assert_eq!(domain.is_wildcard(), canonical.starts_with("*."));
    if domain.is_wildcard() {
        assert_eq!(
            domain::validate(domain.base()),
            Ok(()),
            "the base of {canonical}"
        );
    }
    // its MappedDomain name is a valid object name (a DNS-1123 subdomain)
    let name = name_for(&domain);
    assert!(name.len() <= 253, "{name}");
    assert!(
        name.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
        "{name}"
    );
    assert!(!name.starts_with('-') && !name.ends_with('-'), "{name}");
    Some(domain)
}
