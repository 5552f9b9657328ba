//! The proof a mapped domain answers at `/.well-known/closte-operator/NONCE`
//! (the mu-plugin's `Closte_Operator_Proof`): an HMAC-SHA256 of the scheme,
//! the host and the nonce under the WordPress namespace's sidecar token.
//! Only a WordPress holding that token answers it; another network's answer
//! differs. The request itself is the probe's (step 14, not yet sent).

use ring::hmac;

/// Names the scheme, in the answer and in what is signed.
pub const SCHEME: &str = "closte-operator-proof-v1";

/// The path of a proof request with `nonce`.
pub fn path(nonce: &str) -> String {
    format!("/.well-known/closte-operator/{nonce}")
}

fn key_and_message(token: &[u8], host: &str, nonce: &str) -> (hmac::Key, String) {
    let key = hmac::Key::new(hmac::HMAC_SHA256, token);
    let message = format!("{SCHEME}\n{}\n{nonce}", host.to_ascii_lowercase());
    (key, message)
}

/// The answer this network gives for `host` and `nonce` (host compared in
/// lower case, as WordPress stores site domains).
pub fn expected_answer(token: &[u8], host: &str, nonce: &str) -> String {
    let (key, message) = key_and_message(token, host, nonce);
    let tag = hmac::sign(&key, message.as_bytes());
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("{SCHEME} {hex}")
}

/// Whether a response body is this network's proof (surrounding whitespace,
/// such as the mu-plugin's newline, aside); the tag is verified by ring, in
/// constant time.
pub fn proves(body: &str, token: &[u8], host: &str, nonce: &str) -> bool {
    let Some(hex) = body
        .trim()
        .strip_prefix(SCHEME)
        .and_then(|r| r.strip_prefix(' '))
    else {
        return false;
    };
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    let tag: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or_default())
        .collect();
    let (key, message) = key_and_message(token, host, nonce);
    hmac::verify(&key, message.as_bytes(), &tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &[u8] = b"proof-test-token-0123456789abcdef";
    const NONCE: &str = "n0nce-0123456789abcdef";

    /// The same vector as tests/wordpress/unit/ProofTest.php: PHP's
    /// hash_hmac and this agree.
    #[test]
    fn the_answer_is_the_mu_plugins() {
        assert_eq!(
            expected_answer(TOKEN, "SHOP.example.com", NONCE),
            "closte-operator-proof-v1 f97c943e8cd78f3479a79f7d78ac99099054594a94f00a82fe0b99826ef4fffa"
        );
    }

    #[test]
    fn only_this_token_host_and_nonce_prove() {
        let body = format!("{}\n", expected_answer(TOKEN, "shop.example.com", NONCE));
        assert!(proves(&body, TOKEN, "shop.example.com", NONCE));
        assert!(!proves(
            &body,
            b"another-namespace-token",
            "shop.example.com",
            NONCE
        ));
        assert!(!proves(&body, TOKEN, "shop.example.org", NONCE));
        assert!(!proves(
            &body,
            TOKEN,
            "shop.example.com",
            "another-nonce-0123456789"
        ));
        assert!(!proves(
            "<html>parked</html>",
            TOKEN,
            "shop.example.com",
            NONCE
        ));
        assert!(!proves("", TOKEN, "shop.example.com", NONCE));
    }
}
