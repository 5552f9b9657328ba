//! The names of the MappedDomains the sidecar writes: read off the domain,
//! so a person finds `shop-example-com` for `shop.example.com`, and unique:
//! where the readable form could stand for two domains, a short hash of the
//! domain follows. Pure.

use std::fmt::Write;

use crate::domain::Domain;

/// Kubernetes object names are at most 253 characters; keep room for the suffix.
const READABLE_MAX: usize = 200;
/// The hash suffix: this many hex digits of the domain's SHA-256, after a dash.
const HASH_HEX_DIGITS: usize = 10;

/// The MappedDomain name for `domain`: dots become dashes, a leading `*.`
/// becomes `wildcard-`. A domain with a dash of its own, a wildcard, one too
/// long, or one whose readable name would have the hashed shape (its last
/// label is 10 hex digits) gets `-` and 10 hex digits of its SHA-256,
/// because `a-b.example` and `a.b-example` (or `*.example` and
/// `wildcard.example`, or `a.b.example.com.0a1b2c3d4e` and the hashed name
/// of `a-b.example.com`) would otherwise share a name.
pub fn name_for(domain: &Domain) -> String {
    let (prefix, base) = match domain.as_str().strip_prefix("*.") {
        Some(base) => ("wildcard-", base),
        None => ("", domain.as_str()),
    };
    let readable = format!("{prefix}{}", base.replace('.', "-"));
    if prefix.is_empty()
        && !base.contains('-')
        && readable.len() <= READABLE_MAX
        && !has_hashed_shape(&readable)
    {
        return readable;
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, domain.as_str().as_bytes());
    let mut name: String = readable.chars().take(READABLE_MAX).collect();
    let name_end = name.trim_end_matches('-').len();
    name.truncate(name_end);
    name.push('-');
    for byte in &digest.as_ref()[..HASH_HEX_DIGITS / 2] {
        let _ = write!(name, "{byte:02x}");
    }
    name
}

/// Whether `name` ends the way a hashed name does: a dash and 10 lowercase
/// hex digits. Every hashed name does; no readable one may, or a domain
/// could be given the name of another's.
pub fn has_hashed_shape(name: &str) -> bool {
    let Some((_, suffix)) = name.rsplit_once('-') else {
        return false;
    };
    suffix.len() == HASH_HEX_DIGITS
        && suffix
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
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
    fn a_last_label_of_ten_hex_digits_gets_a_hash_too() {
        let hashed = name("a-b.example.com");
        // the domain that reads as that hashed name
        let lookalike = format!("a.b.example.com.{}", &hashed[hashed.len() - 10..]);
        assert_ne!(name(&lookalike), hashed);
        assert!(has_hashed_shape(&name(&lookalike)));
        assert_eq!(name(&lookalike).len(), lookalike.len() + 11);
        // nine or eleven digits, or a letter past f: readable as before
        for readable in [
            "a.b.0a1b2c3d4",
            "a.b.0a1b2c3d4e5",
            "a.b.0a1b2c3d4g",
            "a.0a1b2c3d4e.com",
        ] {
            let n = name(readable);
            assert_eq!(n, readable.replace('.', "-"));
            assert!(!has_hashed_shape(&n), "{n}");
        }
    }

    #[test]
    fn the_hashed_shape_is_a_dash_and_ten_lowercase_hex_digits() {
        assert!(has_hashed_shape("x-0123456789"));
        assert!(has_hashed_shape("x-y-abcdef0123"));
        for other in [
            "0123456789",
            "x-012345678",
            "x-01234567890",
            "x-ABCDEF0123",
            "x-",
        ] {
            assert!(!has_hashed_shape(other), "{other}");
        }
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
