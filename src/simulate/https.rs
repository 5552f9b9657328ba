//! HTTPS side of the simulator: a CA of its own, and for each registered
//! alias (chosen by SNI) a certificate that appears once the issue delay has
//! passed. Before that, and for unknown names, a certificate for another name.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::http::{Shared, now_ms};
use super::state::CertMode;

/// Issuer common name of every certificate the simulator hands out.
pub const CA_NAME: &str = "Closte Simulator CA";
/// The common name of the simulated proxy's CA.
pub const PROXY_CA_NAME: &str = "Closte Simulator Proxy CA";
/// The name on the certificate served before issuance and to unknown names.
pub const PENDING_NAME: &str = "pending.closte-simulator.invalid";
/// The name on the certificate of an alias set to serve another host's.
pub const OTHER_HOST_NAME: &str = "other-host.closte-simulator.invalid";
/// Validity of an issued certificate, as Let's Encrypt gives.
const VALIDITY: Duration = Duration::from_secs(90 * 24 * 3600);

pub struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

impl Ca {
    pub fn generate() -> Result<Ca, rcgen::Error> {
        Ca::generate_named(CA_NAME)
    }

    /// A CA with common name `name` (the proxy's differs from the site's).
    pub fn generate_named(name: &str) -> Result<Ca, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        dn.push(DnType::OrganizationName, "closte-operator simulator");
        params.distinguished_name = dn;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + time::Duration::days(3650);
        let key = KeyPair::generate()?;
        let pem = params.self_signed(&key)?.pem();
        Ok(Ca { params, key, pem })
    }

    /// The CA certificate, PEM, for clients to trust.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// A leaf certificate for `name`, valid from `not_before` for 90 days.
    fn issue(
        &self,
        name: &str,
        not_before: OffsetDateTime,
    ) -> Result<Arc<CertifiedKey>, rcgen::Error> {
        let mut params = CertificateParams::new(vec![name.to_owned()])?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.not_before = not_before;
        params.not_after = not_before + VALIDITY;
        params.serial_number = Some(SerialNumber::from_slice(&fastrand::u64(1..).to_be_bytes()));
        let key = KeyPair::generate()?;
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer)?;
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signer = rustls::crypto::ring::sign::any_supported_type(&der)
            .map_err(|_| rcgen::Error::KeyGenerationUnavailable)?;
        Ok(Arc::new(CertifiedKey::new(
            vec![CertificateDer::from(cert.der().to_vec())],
            signer,
        )))
    }
}

/// Picks the certificate by SNI from the simulator's current aliases.
pub struct SniResolver {
    sim: Shared,
    ca: Arc<Ca>,
    pending: Arc<CertifiedKey>,
    issued: Mutex<HashMap<(String, u64, CertMode), Arc<CertifiedKey>>>,
}

impl std::fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SniResolver")
    }
}

impl SniResolver {
    pub fn new(sim: Shared, ca: Arc<Ca>) -> Result<SniResolver, rcgen::Error> {
        let pending = ca.issue(
            PENDING_NAME,
            OffsetDateTime::now_utc() - time::Duration::hours(1),
        )?;
        Ok(SniResolver {
            sim,
            ca,
            pending,
            issued: Mutex::new(HashMap::new()),
        })
    }

    fn certificate_for(&self, server_name: &str) -> Arc<CertifiedKey> {
        let now = now_ms();
        let alias = {
            let sim = self.sim.lock().unwrap();
            sim.tls_alias(server_name)
                .filter(|a| a.issued(sim.issue_delay, now))
                .map(|a| {
                    let issued_at = a.added_at_ms + sim.issue_delay.as_millis() as u64;
                    (a.domain.clone(), issued_at, sim.cert_mode(&a.domain))
                })
        };
        let Some((domain, issued_at_ms, mode)) = alias else {
            return self.pending.clone();
        };
        let mut issued = self.issued.lock().unwrap();
        let key = (domain.clone(), issued_at_ms, mode);
        if let Some(cert) = issued.get(&key) {
            return cert.clone();
        }
        let issued_at = OffsetDateTime::from_unix_timestamp((issued_at_ms / 1000) as i64)
            .unwrap_or_else(|_| OffsetDateTime::now_utc());
        let (name, not_before) = match mode {
            CertMode::Issued => (domain.as_str(), issued_at),
            CertMode::Expired => (
                domain.as_str(),
                OffsetDateTime::now_utc() - time::Duration::days(100),
            ),
            CertMode::OtherHost => (OTHER_HOST_NAME, issued_at),
        };
        match self.ca.issue(name, not_before) {
            Ok(cert) => {
                issued.insert(key, cert.clone());
                cert
            }
            Err(e) => {
                tracing::error!(%domain, error = %e, "cannot issue simulated certificate");
                self.pending.clone()
            }
        }
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(match hello.server_name() {
            Some(name) => self.certificate_for(name),
            None => self.pending.clone(),
        })
    }
}

/// The proxy's certificates: its own CA's, for the proxied aliases, valid at
/// once (a CDN holds its own certificate for the domain).
pub struct ProxyResolver {
    sim: Shared,
    ca: Arc<Ca>,
    pending: Arc<CertifiedKey>,
    issued: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl std::fmt::Debug for ProxyResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProxyResolver")
    }
}

impl ProxyResolver {
    pub fn new(sim: Shared, ca: Arc<Ca>) -> Result<ProxyResolver, rcgen::Error> {
        let pending = ca.issue(
            PENDING_NAME,
            OffsetDateTime::now_utc() - time::Duration::hours(1),
        )?;
        Ok(ProxyResolver {
            sim,
            ca,
            pending,
            issued: Mutex::new(HashMap::new()),
        })
    }
}

impl ResolvesServerCert for ProxyResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let Some(name) = hello.server_name().map(str::to_ascii_lowercase) else {
            return Some(self.pending.clone());
        };
        if !self.sim.lock().unwrap().is_proxied(&name) {
            return Some(self.pending.clone());
        }
        let mut issued = self.issued.lock().unwrap();
        if let Some(cert) = issued.get(&name) {
            return Some(cert.clone());
        }
        let not_before = OffsetDateTime::now_utc() - time::Duration::hours(1);
        match self.ca.issue(&name, not_before) {
            Ok(cert) => {
                issued.insert(name, cert.clone());
                Some(cert)
            }
            Err(e) => {
                tracing::error!(%name, error = %e, "cannot issue the proxy's certificate");
                Some(self.pending.clone())
            }
        }
    }
}

/// Accepts TCP connections, completes TLS handshakes off the accept loop, and
/// hands finished streams to axum.
struct TlsListener {
    streams: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.streams.recv().await {
            Some(stream) => stream,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

/// What the simulated site serves behind its certificates.
#[derive(Clone, Debug, Default)]
pub struct SiteContent {
    /// Answers proof requests (`/.well-known/closte-operator/NONCE`) as a
    /// WordPress network holding this sidecar token would; without it, 404.
    pub token: Option<String>,
    /// Hands every request on, over plain HTTP with its Host, to this
    /// WordPress (as Closte's web server hands it to PHP); `token` is then
    /// WordPress's own business.
    pub upstream: Option<SocketAddr>,
}

/// Serves HTTPS on `listener` until the task is dropped, with the
/// certificates `resolver` picks (the site's, or the proxy's: the proxy
/// serves what the site serves) and the site's `content`.
pub async fn serve(
    listener: TcpListener,
    resolver: Arc<dyn ResolvesServerCert>,
    content: SiteContent,
) -> std::io::Result<()> {
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let addr = listener.local_addr()?;
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, peer)) = listener.accept().await else {
                continue;
            };
            // answers go out whole: Nagle's wait on the client's delayed ACK
            // would add 40 ms to every request
            let _ = tcp.set_nodelay(true);
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp));
                match handshake.await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send((tls, peer)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    let app = match content.upstream {
        Some(upstream) => {
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .map_err(std::io::Error::other)?;
            Router::new().fallback(move |request: Request| {
                let client = client.clone();
                async move { forward(&client, upstream, request).await }
            })
        }
        None => Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
            let token = content.token.clone();
            async move { stand_in(token.as_deref(), &uri, &headers) }
        }),
    };
    axum::serve(TlsListener { streams: rx, addr }, app).await
}

/// The site without a WordPress behind it: a page naming the host, and the
/// proof when it holds a token.
fn stand_in(token: Option<&str>, uri: &Uri, headers: &HeaderMap) -> (StatusCode, String) {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("unknown");
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    match (crate::probe::proof::nonce_of(uri.path()), token) {
        (None, _) => (StatusCode::OK, format!("Closte simulator serving {host}\n")),
        (Some(Some(nonce)), Some(token)) => {
            let answer = crate::probe::proof::expected_answer(token.as_bytes(), host, nonce);
            (StatusCode::OK, format!("{answer}\n"))
        }
        (Some(_), _) => (StatusCode::NOT_FOUND, "Not Found\n".to_owned()),
    }
}

/// Headers that belong to one connection, not to the request or answer.
const HOP_BY_HOP: [&str; 4] = ["connection", "keep-alive", "transfer-encoding", "upgrade"];

/// `request` handed on to `upstream` over HTTP with its method, path, Host
/// and body, marked as having arrived over HTTPS; its answer handed back
/// as it came (redirects included). 502 when the upstream cannot answer.
async fn forward(client: &reqwest::Client, upstream: SocketAddr, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 16 << 20).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n").into_response();
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut headers = parts.headers;
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
    // the site stands where port 443 would be: visitors' Host names no port
    let host = headers.get("host").and_then(|h| h.to_str().ok());
    let bare = host
        .and_then(|h| h.rsplit_once(':'))
        .map(|(h, _)| h.to_owned());
    if let Some(Ok(bare)) = bare.map(HeaderValue::try_from) {
        headers.insert("host", bare);
    }
    let answer = client
        .request(parts.method, format!("http://{upstream}{path}"))
        .headers(headers)
        .body(body)
        .send()
        .await;
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => {
            tracing::debug!(%upstream, error = %e, "the site's upstream did not answer");
            return (
                StatusCode::BAD_GATEWAY,
                "the site's upstream did not answer\n",
            )
                .into_response();
        }
    };
    let status = answer.status();
    let mut headers = answer.headers().clone();
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    match answer.bytes().await {
        Ok(body) => (status, headers, body).into_response(),
        Err(_) => (StatusCode::BAD_GATEWAY, "the site's upstream broke off\n").into_response(),
    }
}
