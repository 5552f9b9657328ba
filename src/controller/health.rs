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

/// What the endpoints read.
#[derive(Default)]
pub struct Health {
    pub metrics: Arc<Metrics>,
    pub index: Arc<RwLock<Index>>,
    /// The watch has listed every object once.
    pub synced: AtomicBool,
    /// True while this replica is a follower: it is ready with nothing to sync.
    pub following: AtomicBool,
}

pub async fn serve(addr: SocketAddr, health: Arc<Health>) -> Result<(), ControllerError> {
    async fn metrics(State(h): State<Arc<Health>>) -> impl IntoResponse {
        let synced = h.synced.load(Ordering::Relaxed);
        let body = {
            let index = h.index.read().unwrap();
            h.metrics.render(index.claims(), synced)
        };
        let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
        ([("content-type", content_type)], body)
    }
    async fn ready(State(h): State<Arc<Health>>) -> StatusCode {
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
        .with_state(health);
    let failed = |source| ControllerError::Metrics { addr, source };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(failed)?;
    let bound = listener.local_addr().map_err(failed)?;
    tracing::info!(addr = %bound, "serving /metrics, /healthz and /readyz");
    axum::serve(listener, app).await.map_err(failed)
}
