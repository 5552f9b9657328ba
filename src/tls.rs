//! Process-wide TLS setup shared by every client and server in the binary.

/// Installs ring as rustls' process-default crypto provider (once; later calls
/// are no-ops). The HTTP clients and the TLS probe rely on it.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The public web's roots (Mozilla's, built into the binary): the image has
/// no CA bundle, so nothing here may depend on the machine's.
pub fn public_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    roots
}

/// A TLS client configuration that trusts [`public_roots`]: for HTTP clients
/// of public services (Closte).
pub fn public_client_config() -> rustls::ClientConfig {
    install_crypto_provider();
    rustls::ClientConfig::builder()
        .with_root_certificates(public_roots())
        .with_no_client_auth()
}
