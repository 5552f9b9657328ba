//! `closte-operator sidecar`: the loopback HTTP server next to WordPress that
//! writes MappedDomains in its own namespace. Two doors (see DESIGN.md,
//! "Sidecar contract"): the Closte-compatible one in [`closte_door`] and the
//! native JSON one in [`native_door`]; both write through [`domains`].

pub mod cache;
pub mod closte_door;
pub mod domains;
pub mod names;
pub mod native_door;
pub mod request;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, put};
use futures::StreamExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::sync::Semaphore;

use crate::api::duration::parse_flag as parse_duration;
use crate::api::{CheckInterval, MappedDomain, SecretKeyRef};
use cache::Cache;
use domains::{Domains, Template};

/// Bodies larger than this are refused (413).
const BODY_LIMIT: usize = 64 * 1024;
/// A site's set may list up to [`request::SITE_DOMAINS_MAX`] domains of up
/// to 253 bytes each: its route takes bodies up to this size.
const SITE_SET_BODY_LIMIT: usize = 512 * 1024;
/// How long a request waits for a turn when the sidecar is handling as many
/// as it may at once, before it is refused (503 with Retry-After).
const QUEUE_WAIT: Duration = Duration::from_secs(1);
/// How often the token file is read again.
const TOKEN_POLL: Duration = Duration::from_secs(1);
/// The shortest token the sidecar takes, in bytes (`openssl rand -hex 32`
/// makes one of 64).
pub const TOKEN_MIN_BYTES: usize = 32;

#[derive(Debug, clap::Args)]
pub struct SidecarArgs {
    /// Address to listen on; keep it on loopback: WordPress is the only client.
    #[arg(long, default_value = "127.0.0.1:8087")]
    pub listen: SocketAddr,
    /// Namespace whose MappedDomains the sidecar writes; default: the pod's own (its service account's), else the kubeconfig context's.
    #[arg(long)]
    pub namespace: Option<String>,
    /// File holding the shared token WordPress sends (at least 32 bytes), read again every second while it runs; without it, CLOSTE_SIDECAR_TOKEN is read.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Secret (NAME or NAME:KEY, key default apiKey) with the Closte API key, set as spec.credentialsRef of every MappedDomain written.
    #[arg(long, value_parser = parse_secret_ref)]
    pub credentials_secret: Option<SecretKeyRef>,
    /// spec.checkInterval of every MappedDomain created (10s..24h), unless the request gives one; the CRD's default when unset.
    #[arg(long)]
    pub check_interval: Option<CheckInterval>,
    /// spec.expectedTargets of every MappedDomain written (an IP or a hostname); repeatable.
    #[arg(long = "expected-target")]
    pub expected_targets: Vec<String>,
    /// Requests handled at once; more wait up to a second for a turn, then get 503 with Retry-After.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_concurrent_requests: u32,
    /// The longest one request may take (a slow body included); longer ones are cut short with 503.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// The longest a client may take to send a request's headers, and an idle connection stays open.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,
}

fn parse_secret_ref(s: &str) -> Result<SecretKeyRef, String> {
    let (name, key) = s.split_once(':').unwrap_or((s, "apiKey"));
    if name.is_empty() || key.is_empty() {
        return Err(format!("{s:?}: expected NAME or NAME:KEY"));
    }
    Ok(SecretKeyRef {
        name: name.into(),
        key: key.into(),
    })
}

#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    #[error("cannot reach Kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("no token: give --token-file or set CLOSTE_SIDECAR_TOKEN")]
    NoToken,
    #[error(
        "the token from {origin} is {length} bytes long; the sidecar takes none shorter than {TOKEN_MIN_BYTES} bytes (make one with: openssl rand -hex 32)"
    )]
    ShortToken { origin: String, length: usize },
    #[error("cannot read the token file {path}: {source}")]
    TokenFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Why a text is no token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("it is empty")]
    Empty,
    #[error("it is {0} bytes long, and a token needs at least {TOKEN_MIN_BYTES}")]
    TooShort(usize),
}

/// The shared token. Compared in constant time; never printed.
pub struct Token(Vec<u8>);

impl Token {
    /// The token in `text`, without surrounding whitespace: at least
    /// [`TOKEN_MIN_BYTES`], so that it cannot be guessed.
    pub fn new(text: &str) -> Result<Token, TokenError> {
        let token = text.trim();
        match token.len() {
            0 => Err(TokenError::Empty),
            length if length < TOKEN_MIN_BYTES => Err(TokenError::TooShort(length)),
            _ => Ok(Token(token.as_bytes().to_vec())),
        }
    }

    /// A token that accepts nothing: what the sidecar holds while its
    /// token file holds no valid token.
    pub fn refusing_all() -> Token {
        Token(Vec::new())
    }

    /// Whether `offered` is the token; the time taken does not depend on where they differ.
    pub fn accepts(&self, offered: Option<&str>) -> bool {
        if self.0.is_empty() {
            return false;
        }
        let offered = offered.unwrap_or_default().as_bytes();
        let mut difference = u8::from(offered.len() != self.0.len());
        for (i, expected) in self.0.iter().enumerate() {
            difference |= expected ^ offered.get(i).copied().unwrap_or(!expected);
        }
        difference == 0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token([redacted])")
    }
}

/// The text of the token given at start: the file's, else the environment's.
fn token_text(file: Option<&Path>) -> Result<String, SidecarError> {
    match file {
        Some(path) => std::fs::read_to_string(path).map_err(|source| SidecarError::TokenFile {
            path: path.to_owned(),
            source,
        }),
        None => Ok(std::env::var("CLOSTE_SIDECAR_TOKEN").unwrap_or_default()),
    }
}

/// The token given at start, or why the sidecar does not start.
fn start_token(file: Option<&Path>) -> Result<(Token, String), SidecarError> {
    let text = token_text(file)?;
    let origin = || match file {
        Some(path) => path.display().to_string(),
        None => "CLOSTE_SIDECAR_TOKEN".to_owned(),
    };
    match Token::new(&text) {
        Ok(token) => Ok((token, text)),
        Err(TokenError::Empty) => Err(SidecarError::NoToken),
        Err(TokenError::TooShort(length)) => Err(SidecarError::ShortToken {
            origin: origin(),
            length,
        }),
    }
}

/// The token the sidecar accepts now. One from a file follows the file:
/// see [`follow_token_file`].
pub struct Tokens {
    current: RwLock<Arc<Token>>,
}

impl Tokens {
    pub fn new(token: Token) -> Tokens {
        Tokens {
            current: RwLock::new(Arc::new(token)),
        }
    }

    pub fn current(&self) -> Arc<Token> {
        self.current.read().expect("token lock poisoned").clone()
    }

    pub fn accepts(&self, offered: Option<&str>) -> bool {
        self.current().accepts(offered)
    }

    fn replace(&self, token: Token) {
        *self.current.write().expect("token lock poisoned") = Arc::new(token);
    }
}

/// The token a read of the token file gives, or why there is none (then
/// every request is refused: a token that was replaced must stop working
/// even when its replacement is unusable).
fn token_from_file(read: &Result<String, String>) -> Result<Token, String> {
    let text = read.as_ref().map_err(|e| format!("cannot read it: {e}"))?;
    Token::new(text).map_err(|e| e.to_string())
}

/// Reads the token file every [`TOKEN_POLL`], and when what it holds
/// changes, accepts the new token and refuses the old: a Kubernetes Secret
/// volume updates the file in place (by swapping a symlink), and a rotated
/// token must work, and the old one stop working, without a restart.
/// `first` is the text the sidecar started with.
async fn follow_token_file(tokens: Arc<Tokens>, path: PathBuf, first: String) {
    let mut last: Result<String, String> = Ok(first);
    let mut tick = tokio::time::interval(TOKEN_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let read = tokio::fs::read_to_string(&path)
            .await
            .map_err(|e| e.to_string());
        if read == last {
            continue;
        }
        let file = path.display();
        match token_from_file(&read) {
            Ok(token) => {
                tokens.replace(token);
                tracing::info!(%file, "the token file changed: its token is accepted now, the one before is not");
            }
            Err(why) => {
                tokens.replace(Token::refusing_all());
                tracing::error!(%file, why, "the token file holds no usable token: every request is refused until it does");
            }
        }
        last = read;
    }
}

/// The bounds on the work requests can make the sidecar do.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Requests handled at once (all but `/healthz` and `/readyz`).
    pub concurrent_requests: usize,
    /// How long a request waits for a turn before it is refused.
    pub queue_wait: Duration,
    /// How long one request may take, its body included.
    pub request_timeout: Duration,
}

/// Why a request was refused before or while it was handled (503, with
/// Retry-After: both go away by themselves).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Overload {
    #[error(
        "busy: {0} requests are being handled, the most the sidecar handles at once; try again in a second"
    )]
    Busy(usize),
    #[error(
        "the request took longer than {}s and was cut short; writes are idempotent: send it again",
        .0.as_secs_f64()
    )]
    TimedOut(Duration),
}

/// Which door a path belongs to, for metrics and for the shape of an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Door {
    Closte,
    Native,
    Other,
}

impl Door {
    fn of(path: &str) -> Door {
        if path.starts_with("/api/client/") {
            Door::Closte
        } else if path.starts_with("/v1/") {
            Door::Native
        } else {
            Door::Other
        }
    }

    fn label(self) -> &'static str {
        match self {
            Door::Closte => "closte",
            Door::Native => "native",
            Door::Other => "other",
        }
    }

    /// An error answer in this door's shape.
    fn refuse(self, status: StatusCode, message: &str) -> Response {
        match self {
            Door::Closte => closte_door::failure(status, message),
            Door::Native | Door::Other => native_door::refusal(status, message),
        }
    }
}

type Labels = Vec<(&'static str, String)>;

/// Requests by door and outcome, and their latency.
struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    seconds: Family<Labels, Histogram, fn() -> Histogram>,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("closte_operator_sidecar");
        let requests = Family::default();
        let seconds = Family::<_, _, fn() -> Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 14))
        });
        registry.register(
            "requests",
            "Requests by door and HTTP status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Request latency by door",
            seconds.clone(),
        );
        Metrics {
            registry,
            requests,
            seconds,
        }
    }
}

/// What every request shares.
pub struct Sidecar {
    tokens: Arc<Tokens>,
    domains: Domains,
    cache: Arc<Cache>,
    metrics: Metrics,
    limits: Limits,
    /// One permit per request being handled.
    turns: Semaphore,
}

pub async fn run(args: SidecarArgs) -> Result<(), SidecarError> {
    crate::tls::install_crypto_provider();
    let (token, token_text) = start_token(args.token_file.as_deref())?;
    let tokens = Arc::new(Tokens::new(token));
    let client = Client::try_default().await?;
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_owned());
    let api: Api<MappedDomain> = Api::namespaced(client, &namespace);
    let cache = Arc::new(Cache::default());
    let template = Template {
        credentials_ref: args.credentials_secret.clone(),
        check_interval: args.check_interval.clone(),
        expected_targets: (!args.expected_targets.is_empty())
            .then(|| args.expected_targets.clone()),
    };
    let limits = Limits {
        concurrent_requests: args.max_concurrent_requests as usize,
        queue_wait: QUEUE_WAIT,
        request_timeout: args.request_timeout,
    };
    let sidecar = Arc::new(Sidecar {
        tokens: tokens.clone(),
        domains: Domains::new(api.clone(), cache.clone(), template),
        cache: cache.clone(),
        metrics: Metrics::new(),
        limits,
        turns: Semaphore::new(limits.concurrent_requests),
    });
    let watch = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(|md: &mut MappedDomain| {
            // keep what the doors show
            md.managed_fields_mut().clear();
            md.annotations_mut().clear();
        })
        .for_each(move |event| {
            match event {
                Ok(event) => {
                    let first_sync = matches!(event, Event::InitDone) && !cache.synced();
                    cache.apply_event(event);
                    if first_sync {
                        tracing::info!("watch cache synced");
                    }
                }
                // the watch retries with backoff; meanwhile reads use the cache
                Err(e) => tracing::warn!(error = %e, "watching MappedDomains"),
            }
            futures::future::ready(())
        });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| SidecarError::Listen {
            addr: args.listen,
            source,
        })?;
    // the address bound, not the one asked for: with port 0 the caller learns it here
    let bound = listener
        .local_addr()
        .map_err(|source| SidecarError::Listen {
            addr: args.listen,
            source,
        })?;
    tracing::info!(addr = %bound, %namespace, "sidecar listening");
    tokio::spawn(crate::memory::trim_periodically());
    if let Some(path) = args.token_file.clone() {
        tokio::spawn(follow_token_file(tokens, path, token_text));
    }
    let server = serve(listener, router(sidecar), args.header_read_timeout);
    tokio::select! {
        () = server => Ok(()),
        () = watch => {
            tracing::error!("the watch stopped");
            Ok(())
        }
        () = crate::shutdown::signal() => {
            tracing::info!("shutting down");
            Ok(())
        }
    }
}

/// Serves `app` on `listener`, HTTP/1, one task per connection. A client
/// that does not finish sending a request's headers within
/// `header_read_timeout` (or leaves a connection idle that long) is
/// disconnected: axum's own server sets no such bound.
async fn serve(listener: tokio::net::TcpListener, app: Router, header_read_timeout: Duration) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // out of file descriptors, say: wait for some to be freed
                tracing::warn!(error = %e, "accepting a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended");
            }
        });
    }
}

/// Both doors, the health endpoints and the metrics.
pub fn router(sidecar: Arc<Sidecar>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route("/api/client/{*path}", any(closte_door::handle))
        .route("/v1/domains", get(native_door::list))
        .route(
            "/v1/domains/{domain}",
            get(native_door::get_one)
                .put(native_door::put_one)
                .delete(native_door::delete_one),
        )
        .route(
            "/v1/sites/{site}/domains",
            put(native_door::sync_site).layer(DefaultBodyLimit::max(SITE_SET_BODY_LIMIT)),
        )
        .route("/v1/openapi.yaml", get(native_door::openapi))
        .fallback(native_door::not_found)
        .method_not_allowed_fallback(native_door::method_not_allowed)
        .layer(middleware::from_fn_with_state(sidecar.clone(), bound))
        .layer(middleware::from_fn_with_state(sidecar.clone(), observe))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(sidecar)
}

/// Holds every request but the health checks to the [`Limits`]: a turn
/// among the requests handled at once, waited for up to `queue_wait`, and
/// at most `request_timeout` to answer.
async fn bound(State(sidecar): State<Arc<Sidecar>>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path == "/healthz" || path == "/readyz" {
        return next.run(request).await;
    }
    let door = Door::of(path);
    let limits = sidecar.limits;
    let turn = tokio::time::timeout(limits.queue_wait, sidecar.turns.acquire()).await;
    let Ok(Ok(_turn)) = turn else {
        return overloaded(door, Overload::Busy(limits.concurrent_requests));
    };
    match tokio::time::timeout(limits.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => overloaded(door, Overload::TimedOut(limits.request_timeout)),
    }
}

/// The 503 answer to an [`Overload`], in the door's shape.
fn overloaded(door: Door, why: Overload) -> Response {
    let mut response = door.refuse(StatusCode::SERVICE_UNAVAILABLE, &why.to_string());
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    // the request may be cut off mid-body: the connection cannot be reused
    if matches!(why, Overload::TimedOut(_)) {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

async fn ready(State(sidecar): State<Arc<Sidecar>>) -> StatusCode {
    if sidecar.cache.synced() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

async fn metrics(State(sidecar): State<Arc<Sidecar>>, headers: HeaderMap) -> Response {
    if !sidecar.tokens.accepts(request::bearer(&headers)) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let mut text = String::new();
    encode(&mut text, &sidecar.metrics.registry).expect("writing to a String");
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([("content-type", content_type)], text).into_response()
}

/// Counts and times every request by door and status; logs writes' outcomes.
async fn observe(State(sidecar): State<Arc<Sidecar>>, request: Request, next: Next) -> Response {
    let door = Door::of(request.uri().path()).label();
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    let took = started.elapsed();
    let status = response.status();
    sidecar
        .metrics
        .requests
        .get_or_create(&vec![
            ("door", door.into()),
            ("status", status.as_str().into()),
        ])
        .inc();
    sidecar
        .metrics
        .seconds
        .get_or_create(&vec![("door", door.into())])
        .observe(took.as_secs_f64());
    tracing::debug!(%method, path, status = status.as_u16(), took_ms = took.as_millis() as u64, "request");
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "unit-test-token-0123456789abcdef";

    #[test]
    fn a_token_has_at_least_the_minimum_length_after_trimming() {
        assert_eq!(TOKEN.len(), TOKEN_MIN_BYTES);
        assert!(Token::new(TOKEN).unwrap().accepts(Some(TOKEN)));
        assert!(Token::new(&format!("  {TOKEN}\n")).is_ok());
        let short = &TOKEN[1..];
        assert!(matches!(Token::new(short), Err(TokenError::TooShort(31))));
        assert!(matches!(
            Token::new(&format!(" {short}\n")),
            Err(TokenError::TooShort(31))
        ));
        assert!(matches!(Token::new(" \n"), Err(TokenError::Empty)));
    }

    #[test]
    fn a_token_accepts_only_itself() {
        let token = Token::new(TOKEN).unwrap();
        for other in [None, Some(""), Some(&TOKEN[1..]), Some("x")] {
            assert!(!token.accepts(other), "{other:?}");
        }
        let longer = format!("{TOKEN}x");
        assert!(!token.accepts(Some(&longer)));
        let refusing = Token::refusing_all();
        for offered in [None, Some(""), Some(TOKEN)] {
            assert!(!refusing.accepts(offered), "{offered:?}");
        }
        assert_eq!(format!("{token:?}"), "Token([redacted])");
    }

    #[test]
    fn the_start_token_must_be_there_and_long_enough() {
        let dir = std::env::temp_dir().join(format!("sidecar-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "too-short\n").unwrap();
        let refused = start_token(Some(&file)).unwrap_err();
        let message = refused.to_string();
        assert!(matches!(
            refused,
            SidecarError::ShortToken { length: 9, .. }
        ));
        assert!(message.contains(&file.display().to_string()), "{message}");
        assert!(message.contains("openssl rand -hex 32"), "{message}");
        assert!(
            !message.contains("too-short"),
            "the token in the message: {message}"
        );
        std::fs::write(&file, "\n").unwrap();
        assert!(matches!(
            start_token(Some(&file)),
            Err(SidecarError::NoToken)
        ));
        std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
        let (token, text) = start_token(Some(&file)).unwrap();
        assert!(token.accepts(Some(TOKEN)));
        assert_eq!(
            text,
            format!("{TOKEN}\n"),
            "the text compared with later reads"
        );
        assert!(matches!(
            start_token(Some(&dir.join("missing"))),
            Err(SidecarError::TokenFile { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_token_file_without_a_usable_token_refuses_everything() {
        let read = |text: &str| Ok::<_, String>(text.to_owned());
        assert!(token_from_file(&read(TOKEN)).unwrap().accepts(Some(TOKEN)));
        for (unusable, reason) in [
            (read(""), "empty"),
            (read("s3cr3t"), "6 bytes long"),
            (
                Err("No such file".to_owned()),
                "cannot read it: No such file",
            ),
        ] {
            let why = token_from_file(&unusable).unwrap_err();
            assert!(why.contains(reason) && !why.contains("s3cr3t"), "{why}");
        }
        let tokens = Tokens::new(Token::new(TOKEN).unwrap());
        tokens.replace(Token::refusing_all());
        assert!(!tokens.accepts(Some(TOKEN)));
    }

    #[test]
    fn overloads_say_what_to_do_and_doors_are_told_apart() {
        assert!(Overload::Busy(16).to_string().contains("16 requests"));
        let timed_out = Overload::TimedOut(Duration::from_secs(30)).to_string();
        assert!(timed_out.contains("longer than 30s"), "{timed_out}");
        assert_eq!(Door::of("/api/client/adddomainalias"), Door::Closte);
        assert_eq!(Door::of("/v1/domains"), Door::Native);
        assert_eq!(Door::of("/metrics"), Door::Other);
        let answer = overloaded(Door::Native, Overload::Busy(2));
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer.headers()[header::RETRY_AFTER], "1");
        assert!(!answer.headers().contains_key(header::CONNECTION));
        let answer = overloaded(Door::Closte, Overload::TimedOut(Duration::from_secs(1)));
        assert_eq!(answer.headers()[header::CONNECTION], "close");
    }
}
