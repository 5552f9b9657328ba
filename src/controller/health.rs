//! The endpoints of the controller: `/metrics` (counters plus per-object
//! gauges read from the index at scrape time), `/healthz` and `/readyz`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;

use super::ControllerError;
use crate::index::Index;
use crate::metrics::Metrics;

/// What the endpoints read besides the index: the counters and the
/// controller's readiness.
#[derive(Default)]
pub struct Health {
    pub metrics: Arc<Metrics>,
    /// The watch has listed every object once.
    pub synced: AtomicBool,
    /// True while this replica is a follower: it is ready with nothing to sync.
    pub following: AtomicBool,
}

/// The endpoints' shared state.
#[derive(Clone)]
struct Endpoints {
    health: Arc<Health>,
    /// The per-object gauges are read from it at scrape time.
    index: Arc<RwLock<Index>>,
}

pub async fn serve(
    addr: SocketAddr,
    health: Arc<Health>,
    index: Arc<RwLock<Index>>,
) -> Result<(), ControllerError> {
    async fn metrics(State(e): State<Endpoints>) -> impl IntoResponse {
        let synced = e.health.synced.load(Ordering::Relaxed);
        let body = {
            let index = e.index.read().unwrap();
            e.health.metrics.render(index.claims(), synced)
        };
        let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
        ([("content-type", content_type)], body)
    }
    async fn ready(State(Endpoints { health: h, .. }): State<Endpoints>) -> StatusCode {
        if h.synced.load(Ordering::Relaxed) || h.following.load(Ordering::Relaxed) {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .with_state(Endpoints { health, index });
    let failed = |source| ControllerError::Metrics { addr, source };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(failed)?;
    let bound = listener.local_addr().map_err(failed)?;
    tracing::info!(addr = %bound, "serving /metrics, /healthz and /readyz");
    axum::serve(listener, app).await.map_err(failed)
}
