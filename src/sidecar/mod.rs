//! `closte-operator sidecar`: the loopback HTTP server next to WordPress that
//! writes MappedDomains in its own namespace. Two doors (see DESIGN.md,
//! "Sidecar contract"): the Closte-compatible one in [`closte_door`] and the
//! native JSON one in [`native_door`]; both write through [`domains`].

pub mod closte_door;
pub mod domains;
pub mod names;
pub mod native_door;
pub mod request;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, put};
use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::api::{CheckInterval, MappedDomain, SecretKeyRef};
use domains::{Domains, Template};

/// Bodies larger than this are refused (413).
const BODY_LIMIT: usize = 64 * 1024;

#[derive(Debug, clap::Args)]
pub struct SidecarArgs {
    /// Address to listen on; keep it on loopback: WordPress is the only client.
    #[arg(long, default_value = "127.0.0.1:8087")]
    pub listen: SocketAddr,
    /// Namespace whose MappedDomains the sidecar writes; default: the pod's own (its service account's), else the kubeconfig context's.
    #[arg(long)]
    pub namespace: Option<String>,
    /// File holding the shared token WordPress sends; without it, CLOSTE_SIDECAR_TOKEN is read.
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

/// The shared token. Compared in constant time; never printed.
pub struct Token(Vec<u8>);

impl Token {
    pub fn load(file: Option<&std::path::Path>) -> Result<Token, SidecarError> {
        let text = match file {
            Some(path) => {
                std::fs::read_to_string(path).map_err(|source| SidecarError::TokenFile {
                    path: path.to_owned(),
                    source,
                })?
            }
            None => std::env::var("CLOSTE_SIDECAR_TOKEN").unwrap_or_default(),
        };
        Token::new(&text)
    }

    /// The token in `text`, without surrounding whitespace; it may not be empty.
    pub fn new(text: &str) -> Result<Token, SidecarError> {
        let token = text.trim();
        if token.is_empty() {
            return Err(SidecarError::NoToken);
        }
        Ok(Token(token.as_bytes().to_vec()))
    }

    /// Whether `offered` is the token; the time taken does not depend on where they differ.
    pub fn accepts(&self, offered: Option<&str>) -> bool {
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
    token: Token,
    domains: Domains,
    metrics: Metrics,
    ready: AtomicBool,
}

pub async fn run(args: SidecarArgs) -> Result<(), SidecarError> {
    crate::tls::install_crypto_provider();
    let token = Token::load(args.token_file.as_deref())?;
    let client = Client::try_default().await?;
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_owned());
    let api: Api<MappedDomain> = Api::namespaced(client, &namespace);
    let (cache, writer) = reflector::store();
    let template = Template {
        credentials_ref: args.credentials_secret.clone(),
        check_interval: args.check_interval.clone(),
        expected_targets: (!args.expected_targets.is_empty())
            .then(|| args.expected_targets.clone()),
    };
    let sidecar = Arc::new(Sidecar {
        token,
        domains: Domains::new(api.clone(), cache, template),
        metrics: Metrics::new(),
        ready: AtomicBool::new(false),
    });
    let watched = sidecar.clone();
    let watch = reflector::reflector(
        writer,
        watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .modify(|md: &mut MappedDomain| {
                // keep what the doors show
                md.managed_fields_mut().clear();
                md.annotations_mut().clear();
            }),
    )
    .for_each(move |event| {
        match event {
            Ok(Event::InitDone) if !watched.ready.swap(true, Ordering::Relaxed) => {
                tracing::info!("watch cache synced");
            }
            // the watch retries with backoff; meanwhile reads use the cache
            Err(e) => tracing::warn!(error = %e, "watching MappedDomains"),
            _ => {}
        }
        futures::future::ready(())
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| SidecarError::Listen {
            addr: args.listen,
            source,
        })?;
    tracing::info!(addr = %args.listen, %namespace, "sidecar listening");
    tokio::spawn(crate::memory::trim_periodically());
    let server = axum::serve(listener, router(sidecar));
    tokio::select! {
        result = server => result.map_err(|source| SidecarError::Listen { addr: args.listen, source }),
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
        .route("/v1/sites/{site}/domains", put(native_door::sync_site))
        .route("/v1/openapi.yaml", get(native_door::openapi))
        .fallback(native_door::not_found)
        .method_not_allowed_fallback(native_door::method_not_allowed)
        .layer(middleware::from_fn_with_state(sidecar.clone(), observe))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(sidecar)
}

async fn ready(State(sidecar): State<Arc<Sidecar>>) -> StatusCode {
    if sidecar.ready.load(Ordering::Relaxed) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

async fn metrics(State(sidecar): State<Arc<Sidecar>>, headers: HeaderMap) -> Response {
    if !sidecar.token.accepts(request::bearer(&headers)) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let mut text = String::new();
    encode(&mut text, &sidecar.metrics.registry).expect("writing to a String");
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([("content-type", content_type)], text).into_response()
}

/// Counts and times every request by door and status; logs writes' outcomes.
async fn observe(State(sidecar): State<Arc<Sidecar>>, request: Request, next: Next) -> Response {
    let door = match request.uri().path() {
        p if p.starts_with("/api/client/") => "closte",
        p if p.starts_with("/v1/") => "native",
        _ => "other",
    };
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
