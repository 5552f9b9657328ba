//! The names of the MappedDomains the sidecar writes: read off the domain,
//! so a person finds `shop-example-com` for `shop.example.com`, and unique:
//! where the readable form could stand for two domains, a short hash of the
//! domain follows. Pure.

use std::fmt::Write;

use crate::domain::Domain;

/// Kubernetes object names are at most 253 characters; keep room for the suffix.
const READABLE_MAX: usize = 200;

/// The MappedDomain name for `domain`: dots become dashes, a leading `*.`
/// becomes `wildcard-`. A domain with a dash of its own, a wildcard, or one
/// too long gets `-` and 10 hex digits of its SHA-256, because `a-b.example`
/// and `a.b-example` (or `*.example` and `wildcard.example`) would otherwise
/// share a name.
pub fn name_for(domain: &Domain) -> String {
    let (prefix, base) = match domain.as_str().strip_prefix("*.") {
        Some(base) => ("wildcard-", base),
        None => ("", domain.as_str()),
    };
    let readable = format!("{prefix}{}", base.replace('.', "-"));
    if prefix.is_empty() && !base.contains('-') && readable.len() <= READABLE_MAX {
        return readable;
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, domain.as_str().as_bytes());
    let mut name: String = readable.chars().take(READABLE_MAX).collect();
    let name_end = name.trim_end_matches('-').len();
    name.truncate(name_end);
    name.push('-');
    for byte in &digest.as_ref()[..5] {
        let _ = write!(name, "{byte:02x}");
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(d: &str) -> String {
        name_for(&Domain::parse(d).unwrap())
    }

    #[test]
    fn readable_where_unambiguous() {
        assert_eq!(name("shop.example.com"), "shop-example-com");
        assert!(name("*.blogs.example.org").starts_with("wildcard-blogs-example-org-"));
        assert_eq!(
            name("xn--bcher-kva.example").len(),
            "xn--bcher-kva-example".len() + 11
        );
    }

    #[test]
    fn dashes_get_a_hash_so_names_stay_unique() {
        let (a, b) = (name("a-b.example.com"), name("a.b-example.com"));
        assert_ne!(a, b);
        assert!(
            a.starts_with("a-b-example-com-") && a.len() == "a-b-example-com".len() + 11,
            "{a}"
        );
        assert_eq!(a, name("a-b.example.com"), "deterministic");
        // a wildcard and the plain name never meet
        assert_ne!(name("*.example.com"), name("wildcard.example.com"));
    }

    #[test]
    fn every_name_is_a_valid_object_name() {
        let long = format!(
            "{}.example.com",
            ["a".repeat(63), "b".repeat(63), "c".repeat(63)].join(".")
        );
        for d in [
            "shop.example.com",
            "*.x.example",
            "a-b.example.com",
            long.as_str(),
        ] {
            let n = name(d);
            assert!(n.len() <= 253, "{n}");
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{n}"
            );
            assert!(!n.starts_with('-') && !n.ends_with('-'), "{n}");
        }
    }
}
