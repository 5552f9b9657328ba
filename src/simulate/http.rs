//! HTTP side of the simulator: the client API under `/api/client/` (with
//! latency, injected faults and the write rate limit) and the admin API
//! under `/_sim/` for tests.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use tokio::time::Instant;

use super::faults::{FaultKind, Faults};
use super::state::{Answer, Sim};
use crate::closte::wire::{self, Endpoint};

pub type Shared = Arc<Mutex<Sim>>;

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

pub fn router(sim: Shared) -> Router {
    Router::new()
        .route("/api/client/{endpoint}", any(client_api))
        .route("/_sim/domains", get(list_domains).post(add_domain))
        .route("/_sim/domains/{domain}", delete(remove_domain))
        .route("/_sim/requests", get(requests).delete(clear_requests))
        .route("/_sim/faults", get(get_faults).put(put_faults))
        .route("/_sim/stats", get(stats))
        .route(
            "/_sim/certificates/{domain}",
            axum::routing::put(set_certificate),
        )
        .route("/_sim/proxied/{domain}", axum::routing::put(set_proxied))
        .with_state(sim)
}

fn respond(answer: Answer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = if answer.html {
        "text/html"
    } else {
        "application/json; charset=utf-8"
    };
    let mut response =
        (status, [(header::CONTENT_TYPE, content_type)], answer.body).into_response();
    if let Some(secs) = answer.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

async fn client_api(
    State(sim): State<Shared>,
    method: Method,
    Path(endpoint): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let Some(endpoint) = Endpoint::ALL.into_iter().find(|e| e.path() == endpoint) else {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    };
    // like PHP, a body that is not form encoding is no parameters
    let query = query.unwrap_or_default();
    let params = wire::request_parameters(&query, &body)
        .or_else(|| wire::request_parameters(&query, b""))
        .unwrap_or_default();
    let (latency, fault, hang, answer_delay) = {
        let sim = sim.lock().unwrap();
        let faults = sim.faults();
        (
            faults.latency(),
            faults.draw(endpoint, fastrand::f64(), fastrand::f64()),
            Duration::from_millis(faults.hang_ms),
            Duration::from_millis(faults.write_answer_delay_ms),
        )
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let answer = sim.lock().unwrap().serve(
        endpoint,
        method.as_str(),
        &params,
        fault,
        Instant::now(),
        now_ms(),
    );
    if fault == Some(FaultKind::Hang) {
        tokio::time::sleep(hang).await;
    }
    if endpoint.is_write() && !answer_delay.is_zero() {
        tokio::time::sleep(answer_delay).await;
    }
    respond(answer)
}

async fn list_domains(State(sim): State<Shared>) -> Response {
    let sim = sim.lock().unwrap();
    let now = now_ms();
    let aliases: Vec<serde_json::Value> = sim
        .aliases()
        .map(|(account, alias)| {
            serde_json::json!({
                "domain": alias.domain,
                "wildcard": alias.wildcard,
                "account": account,
                "addedAtMs": alias.added_at_ms,
                "issued": alias.issued(sim.issue_delay, now),
            })
        })
        .collect();
    Json(aliases).into_response()
}

#[derive(Deserialize)]
struct NewAlias {
    domain: String,
    #[serde(default)]
    account: usize,
}

async fn add_domain(State(sim): State<Shared>, Json(new): Json<NewAlias>) -> Response {
    match sim
        .lock()
        .unwrap()
        .admin_add(new.account, &new.domain, now_ms())
    {
        Ok(()) => StatusCode::CREATED.into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, e).into_response(),
    }
}

async fn remove_domain(State(sim): State<Shared>, Path(domain): Path<String>) -> StatusCode {
    if sim.lock().unwrap().admin_remove(&domain) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

#[derive(Deserialize)]
struct Since {
    #[serde(default)]
    since: u64,
}

async fn requests(State(sim): State<Shared>, Query(q): Query<Since>) -> Response {
    Json(sim.lock().unwrap().requests_since(q.since)).into_response()
}

async fn clear_requests(State(sim): State<Shared>) -> StatusCode {
    sim.lock().unwrap().clear_requests();
    StatusCode::NO_CONTENT
}

async fn get_faults(State(sim): State<Shared>) -> Response {
    Json(sim.lock().unwrap().faults().clone()).into_response()
}

async fn put_faults(State(sim): State<Shared>, Json(faults): Json<Faults>) -> Response {
    if !(0.0..=1.0).contains(&faults.failure_rate) {
        return (
            StatusCode::BAD_REQUEST,
            "failureRate must be between 0 and 1",
        )
            .into_response();
    }
    tracing::info!(?faults, "fault configuration changed");
    sim.lock().unwrap().set_faults(faults.clone());
    Json(faults).into_response()
}

#[derive(Deserialize)]
struct CertificateChoice {
    mode: super::state::CertMode,
}

async fn set_certificate(
    State(sim): State<Shared>,
    Path(domain): Path<String>,
    Json(choice): Json<CertificateChoice>,
) -> StatusCode {
    sim.lock().unwrap().set_cert_mode(&domain, choice.mode);
    StatusCode::NO_CONTENT
}

#[derive(serde::Deserialize)]
struct ProxiedChoice {
    proxied: bool,
}

/// Puts `domain` behind the simulated proxy (`--proxy-ip`), or takes it out.
async fn set_proxied(
    State(sim): State<Shared>,
    Path(domain): Path<String>,
    Json(choice): Json<ProxiedChoice>,
) -> StatusCode {
    sim.lock().unwrap().set_proxied(&domain, choice.proxied);
    StatusCode::NO_CONTENT
}

async fn stats(State(sim): State<Shared>) -> Response {
    Json(sim.lock().unwrap().stats()).into_response()
}
