//! TLS observation: connect to the domain with its name as SNI, record the
//! certificate it serves, and judge it with rustls' own verification, also
//! when it fails, so status can say why.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use tokio_rustls::TlsConnector;
use x509_parser::extensions::GeneralName;

use crate::api::CertificateStatus;

/// The verdict on a served certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVerdict {
    Valid,
    Untrusted,
    HostnameMismatch,
    Expired,
    NotYetValid,
    HandshakeFailed,
    ConnectFailed,
}

impl TlsVerdict {
    /// The verdict for a rustls verification error.
    pub fn from_error(error: &rustls::Error) -> TlsVerdict {
        match error {
            rustls::Error::InvalidCertificate(e) => match e {
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    TlsVerdict::Expired
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    TlsVerdict::NotYetValid
                }
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => TlsVerdict::HostnameMismatch,
                _ => TlsVerdict::Untrusted,
            },
            _ => TlsVerdict::HandshakeFailed,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsObservation {
    pub verdict: TlsVerdict,
    /// The leaf certificate, whenever one was presented.
    pub certificate: Option<CertificateStatus>,
    pub message: String,
}

/// Reads the fields status shows from a DER certificate.
pub fn describe(der: &[u8]) -> Option<CertificateStatus> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let time =
        |t: &x509_parser::time::ASN1Time| Timestamp::from_second(t.timestamp()).ok().map(Time);
    let dns_names = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(name) => Some(name.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let mut serial = format!("{:X}", cert.serial);
    if serial.len() % 2 == 1 {
        serial.insert(0, '0'); // whole bytes, as `openssl x509 -serial` prints
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let fingerprint: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    Some(CertificateStatus {
        issuer: cert.issuer().to_string(),
        subject: cert.subject().to_string(),
        dns_names,
        serial_number: serial,
        not_before: time(&cert.validity().not_before)?,
        not_after: time(&cert.validity().not_after)?,
        sha256_fingerprint: fingerprint.join(":"),
        served_by: None,
    })
}

/// Lets every handshake complete, remembering the presented chain and what
/// real verification said of it.
#[derive(Debug)]
struct Recorder {
    inner: Arc<WebPkiServerVerifier>,
    seen: Mutex<Option<(CertificateDer<'static>, Result<(), rustls::Error>)>>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
            .map(drop);
        *self.seen.lock().unwrap() = Some((end_entity.clone().into_owned(), verdict));
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProberError {
    #[error("cannot read CA file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("cannot build the certificate verifier: {0}")]
    Verifier(String),
}

/// Probes domains over TLS, trusting the webpki roots plus extra CAs.
#[derive(Debug, Clone)]
pub struct TlsProber {
    verifier: Arc<WebPkiServerVerifier>,
    port: u16,
    timeout: Duration,
}

impl TlsProber {
    /// `extra_ca_pem`: more trusted roots, PEM (e.g. the simulator's CA).
    pub fn new(
        extra_ca_pem: Option<&[u8]>,
        port: u16,
        timeout: Duration,
    ) -> Result<TlsProber, ProberError> {
        use rustls::pki_types::pem::PemObject;
        crate::tls::install_crypto_provider();
        let mut roots = crate::tls::public_roots();
        if let Some(pem) = extra_ca_pem {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| ProberError::CaFile {
                    path: "--ca-file".into(),
                    reason: e.to_string(),
                })?;
                roots.add(cert).map_err(|e| ProberError::CaFile {
                    path: "--ca-file".into(),
                    reason: e.to_string(),
                })?;
            }
        }
        let verifier = WebPkiServerVerifier::builder(Arc::new(roots))
            .build()
            .map_err(|e| ProberError::Verifier(e.to_string()))?;
        Ok(TlsProber {
            verifier,
            port,
            timeout,
        })
    }

    /// A client trusting what this prober trusts (the proof request's).
    pub fn client_config(&self) -> rustls::ClientConfig {
        rustls::ClientConfig::builder()
            .with_webpki_verifier(self.verifier.clone())
            .with_no_client_auth()
    }

    /// Connects to `ip` on the probe port with SNI `name` and judges what it serves.
    pub async fn probe(&self, ip: IpAddr, name: &str) -> TlsObservation {
        let failed = |verdict, message: String| TlsObservation {
            verdict,
            certificate: None,
            message,
        };
        let Ok(server_name) = ServerName::try_from(name.to_owned()) else {
            return failed(
                TlsVerdict::HandshakeFailed,
                format!("{name} is not a valid server name"),
            );
        };
        let addr = SocketAddr::new(ip, self.port);
        let tcp =
            match tokio::time::timeout(self.timeout, tokio::net::TcpStream::connect(addr)).await {
                Ok(Ok(tcp)) => tcp,
                Ok(Err(e)) => {
                    return failed(
                        TlsVerdict::ConnectFailed,
                        format!("cannot connect to {addr}: {e}"),
                    );
                }
                Err(_) => {
                    return failed(
                        TlsVerdict::ConnectFailed,
                        format!("no connection to {addr} within {:?}", self.timeout),
                    );
                }
            };
        let recorder = Arc::new(Recorder {
            inner: self.verifier.clone(),
            seen: Mutex::new(None),
        });
        let config = rustls::ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(recorder.clone())
            .with_no_client_auth();
        let handshake = TlsConnector::from(Arc::new(config)).connect(server_name, tcp);
        let result = tokio::time::timeout(self.timeout, handshake).await;
        let seen = recorder.seen.lock().unwrap().take();
        match (seen, result) {
            (Some((der, verdict)), _) => {
                let certificate = describe(der.as_ref());
                match verdict {
                    Ok(()) => TlsObservation {
                        verdict: TlsVerdict::Valid,
                        certificate,
                        message: format!("{name} serves a valid certificate"),
                    },
                    Err(e) => TlsObservation {
                        verdict: TlsVerdict::from_error(&e),
                        certificate,
                        message: format!("{name}: {e}"),
                    },
                }
            }
            (None, Ok(Err(e))) => failed(
                TlsVerdict::HandshakeFailed,
                format!("TLS handshake with {addr} failed: {e}"),
            ),
            (None, Err(_)) => failed(
                TlsVerdict::HandshakeFailed,
                format!("no TLS handshake with {addr} within {:?}", self.timeout),
            ),
            (None, Ok(Ok(_))) => failed(
                TlsVerdict::HandshakeFailed,
                "the server presented no certificate".into(),
            ),
        }
    }
}
