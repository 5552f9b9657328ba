//! Process-wide TLS setup shared by every client and server in the binary.

/// Installs ring as rustls' process-default crypto provider (once; later calls
/// are no-ops). The HTTP clients and the TLS probe rely on it.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
