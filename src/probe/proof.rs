//! The proof a mapped domain answers at `/.well-known/closte-operator/NONCE`
//! (the mu-plugin's `Closte_Operator_Proof`): an HMAC-SHA256 of the scheme,
//! the host and the nonce under the WordPress namespace's sidecar token.
//! Only a WordPress holding that token answers it; another network's answer
//! differs. The request itself is the probe's (step 14, not yet sent).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use ring::hmac;

/// Names the scheme, in the answer and in what is signed.
pub const SCHEME: &str = "closte-operator-proof-v1";

/// The path of a proof request with `nonce`.
pub fn path(nonce: &str) -> String {
    format!("/.well-known/closte-operator/{nonce}")
}

/// For a path: `None` when it is no proof request, `Some(None)` when it is
/// one with a malformed nonce, else the nonce (16 to 128 of
/// `[A-Za-z0-9_-]`, as the mu-plugin accepts).
pub fn nonce_of(path: &str) -> Option<Option<&str>> {
    let nonce = path.strip_prefix("/.well-known/closte-operator/")?;
    let fine = (16..=128).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    Some(fine.then_some(nonce))
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

/// What one proof request saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofObservation {
    /// The URL asked.
    pub url: String,
    /// The status of the last answer; `None` when no answer came.
    pub status: Option<u16>,
    /// The answer had this scheme's shape (whoever signed it).
    pub proof_shaped: bool,
    /// The answer verified under the token: this network's proof.
    pub verified: bool,
    pub latency: Duration,
    pub message: String,
}

impl ProofObservation {
    /// No request could be sent (no address).
    pub fn unanswered(message: String) -> ProofObservation {
        ProofObservation {
            url: String::new(),
            status: None,
            proof_shaped: false,
            verified: false,
            latency: Duration::ZERO,
            message,
        }
    }
}

/// A nonce for one proof request: 24 random letters and digits, so no cache
/// in front of the domain can answer it.
pub fn fresh_nonce() -> String {
    std::iter::repeat_with(fastrand::alphanumeric)
        .take(24)
        .collect()
}

/// Redirects followed, within the same host only.
const MAX_REDIRECTS: usize = 3;
/// Bytes of an answer read; a proof is 90.
const MAX_BODY: usize = 4096;

/// Asks `host` for its proof of `nonce` at `ip`:`port` (the address DNS gave,
/// so through any proxy in front), trusting `tls`'s roots, and verifies the
/// answer under `token`.
pub async fn request(
    tls: &rustls::ClientConfig,
    timeout: Duration,
    ip: IpAddr,
    port: u16,
    host: &str,
    token: &[u8],
    nonce: &str,
) -> ProofObservation {
    let authority = if port == 443 {
        host.to_owned()
    } else {
        format!("{host}:{port}")
    };
    let url = format!("https://{authority}{}", path(nonce));
    let started = Instant::now();
    let seen = |status, proof_shaped, verified, message: String| ProofObservation {
        url: url.clone(),
        status,
        proof_shaped,
        verified,
        latency: started.elapsed(),
        message,
    };
    let same_host = host.to_ascii_lowercase();
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls.clone())
        .resolve(host, SocketAddr::new(ip, port))
        .redirect(reqwest::redirect::Policy::custom(move |attempt| {
            let same = attempt
                .url()
                .host_str()
                .is_some_and(|h| h.eq_ignore_ascii_case(&same_host));
            if same && attempt.previous().len() <= MAX_REDIRECTS {
                attempt.follow()
            } else {
                attempt.stop()
            }
        }))
        .timeout(timeout)
        .user_agent(concat!(
            "closte-operator/",
            env!("CARGO_PKG_VERSION"),
            " (proof)"
        ))
        .build();
    let client = match client {
        Ok(client) => client,
        Err(e) => {
            return seen(
                None,
                false,
                false,
                format!("cannot build the proof request: {e}"),
            );
        }
    };
    let response = match client.get(&url).send().await {
        Ok(response) => response,
        Err(e) => {
            let what = if e.is_timeout() {
                "timed out"
            } else {
                "failed"
            };
            return seen(
                None,
                false,
                false,
                format!("GET {url} {what}: {}", e.without_url()),
            );
        }
    };
    let status = response.status().as_u16();
    let body = match response.bytes().await {
        Ok(bytes) => String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_BODY)]).into_owned(),
        Err(e) => {
            return seen(
                Some(status),
                false,
                false,
                format!("GET {url}: {status}, body lost: {}", e.without_url()),
            );
        }
    };
    let proof_shaped = body.trim_start().starts_with(SCHEME);
    let verified = status == 200 && proves(&body, token, host, nonce);
    let message = match (verified, proof_shaped) {
        (true, _) => format!("GET {url}: this network's proof"),
        (false, true) => format!(
            "GET {url}: {status}, a proof signed with another token (another network or namespace)"
        ),
        (false, false) => format!("GET {url}: {status}, no proof in the answer"),
    };
    seen(Some(status), proof_shaped, verified, message)
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
    fn nonces_are_read_as_the_mu_plugin_reads_them() {
        assert_eq!(nonce_of("/"), None);
        assert_eq!(nonce_of("/.well-known/acme-challenge/x"), None);
        assert_eq!(nonce_of(&path(NONCE)), Some(Some(NONCE)));
        for bad in [
            "",
            "short",
            &"a".repeat(129),
            "n0nce-0123456789abcdef/x",
            "../../wp-config.php",
        ] {
            assert_eq!(nonce_of(&path(bad)), Some(None), "{bad}");
        }
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
