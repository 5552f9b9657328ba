//! The HTTP client for Closte's client API: one request per call, no caching
//! and no flow control (see [`super::account`] for those).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::ClosteError;
use super::key::ApiKey;
use super::wire::{self, Endpoint, Envelope};

pub const DEFAULT_BASE_URL: &str = "https://app.closte.com/api/client";

/// Where Closte is and how long to wait for it.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub base_url: String,
    pub connect_timeout: Duration,
    pub timeout: Duration,
}

impl ClientConfig {
    /// The default of `--closte-connect-timeout`.
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    /// The default of `--closte-timeout`.
    pub const TIMEOUT: Duration = Duration::from_secs(30);
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            base_url: DEFAULT_BASE_URL.into(),
            connect_timeout: Self::CONNECT_TIMEOUT,
            timeout: Self::TIMEOUT,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot build the Closte HTTP client: {0}")]
pub struct BuildError(String);

/// Called after every request with the endpoint, the outcome (`ok` or an
/// error reason) and the latency; metrics hang off it.
pub type Observer = Arc<dyn Fn(Endpoint, &'static str, Duration) + Send + Sync>;

#[derive(Clone, Default)]
struct ObserverSlot(Option<Observer>);

impl std::fmt::Debug for ObserverSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Some(observer)"
        } else {
            "None"
        })
    }
}

#[derive(Debug, Clone)]
pub struct ClosteClient {
    http: reqwest::Client,
    base: String,
    timeout: Duration,
    observer: ObserverSlot,
}

impl ClosteClient {
    pub fn new(config: &ClientConfig) -> Result<ClosteClient, BuildError> {
        let http = reqwest::Client::builder()
            // the built-in roots: the platform verifier's default would look
            // for the machine's CA bundle, which the image does not have
            .tls_backend_preconfigured(crate::tls::public_client_config())
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .user_agent(concat!("closte-operator/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| BuildError(e.without_url().to_string()))?;
        Ok(ClosteClient {
            http,
            base: config.base_url.trim_end_matches('/').to_owned(),
            timeout: config.timeout,
            observer: ObserverSlot::default(),
        })
    }

    /// Reports every request to `observer`.
    pub fn with_observer(mut self, observer: Observer) -> ClosteClient {
        self.observer = ObserverSlot(Some(observer));
        self
    }

    /// Every alias of the key's site, as Closte spells them.
    pub async fn list(&self, key: &ApiKey) -> Result<Vec<String>, ClosteError> {
        let envelope = self.call(Endpoint::GetDomains, key, None).await?;
        Ok(envelope.domains.unwrap_or_default())
    }

    /// Adds `domain` as an alias (`wildcard` is derived from a leading `*.`).
    pub async fn add(&self, key: &ApiKey, domain: &str) -> Result<(), ClosteError> {
        self.call(Endpoint::AddDomainAlias, key, Some(domain))
            .await
            .map(drop)
    }

    /// Removes the alias `domain`.
    pub async fn delete(&self, key: &ApiKey, domain: &str) -> Result<(), ClosteError> {
        self.call(Endpoint::DeleteDomainAlias, key, Some(domain))
            .await
            .map(drop)
    }

    /// Ultimate Multisite's "test connection": an add with the key and nothing
    /// else. Closte answers `Invalid or empty domain: ` when it accepts the key.
    pub async fn test_key(&self, key: &ApiKey) -> Result<(), ClosteError> {
        self.call(Endpoint::AddDomainAlias, key, None)
            .await
            .map(drop)
    }

    async fn call(
        &self,
        endpoint: Endpoint,
        key: &ApiKey,
        domain: Option<&str>,
    ) -> Result<Envelope, ClosteError> {
        let url = format!("{}/{}", self.base, endpoint.path());
        let mut form: Vec<(&str, &str)> = vec![("apikey", key.expose())];
        if let Some(domain) = domain {
            let wildcard = if domain.starts_with("*.") { "1" } else { "0" };
            form.extend([("domain", domain), ("wildcard", wildcard)]);
        }
        let request = if endpoint.is_write() {
            self.http.post(&url).form(&form)
        } else {
            self.http.get(&url).query(&form)
        };
        let started = Instant::now();
        let result = self.send(request, endpoint, domain, key).await;
        let elapsed = started.elapsed();
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.reason(),
        };
        tracing::debug!(
            endpoint = endpoint.path(),
            domain = key.redact(domain.unwrap_or_default()),
            elapsed_ms = elapsed.as_millis() as u64,
            outcome,
            "closte request"
        );
        if let Some(observer) = &self.observer.0 {
            observer(endpoint, outcome, elapsed);
        }
        result
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        endpoint: Endpoint,
        domain: Option<&str>,
        key: &ApiKey,
    ) -> Result<Envelope, ClosteError> {
        let transport = |e: reqwest::Error| self.transport_error(e, key);
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.bytes().await.map_err(transport)?;
        let response = wire::Response {
            status,
            retry_after: retry_after.as_deref(),
            body: &body,
        };
        wire::interpret(endpoint, domain, response, |text| key.redact(text))
    }

    /// Describes a transport failure without the URL (whose query may hold the key).
    fn transport_error(&self, error: reqwest::Error, key: &ApiKey) -> ClosteError {
        let error = error.without_url();
        let reason = if error.is_timeout() {
            format!("no answer within {}s", self.timeout.as_secs())
        } else {
            let mut text = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        };
        ClosteError::Transient {
            reason: key.redact(&reason),
        }
    }
}
