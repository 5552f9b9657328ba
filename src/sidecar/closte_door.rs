//! The Closte-compatible door under `/api/client/`: Closte's three calls with
//! Closte's parameters and answers (from `closte/wire.rs`, the same bytes the
//! simulator sends), `apikey` being the sidecar token. An unmodified Closte
//! client works against it with no change but its base URL.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Sidecar;
use super::domains::WriteError;
use crate::closte::wire::{self, Endpoint};
use crate::domain;

/// What `/ssl/install` answers: Closte needs no request for a certificate.
const SSL_MESSAGE: &str = "Closte issues the certificate by itself once DNS points at the site; \
     its progress is in the MappedDomain's status";

fn closte_answer(status: StatusCode, body: String) -> Response {
    let json = [(header::CONTENT_TYPE, "application/json; charset=utf-8")];
    (status, json, body).into_response()
}

fn failure(status: StatusCode, error: &str) -> Response {
    closte_answer(status, wire::failure_body(error))
}

/// Every request under `/api/client/`.
pub async fn handle(
    State(sidecar): State<Arc<Sidecar>>,
    method: Method,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let Some(params) = wire::request_parameters(query.as_deref().unwrap_or_default(), &body) else {
        return failure(StatusCode::BAD_REQUEST, "the body is not form-encoded");
    };
    if !sidecar
        .token
        .accepts(params.get("apikey").map(String::as_str))
    {
        return failure(StatusCode::UNAUTHORIZED, "Invalid API key");
    }
    let endpoint = Endpoint::ALL.into_iter().find(|e| e.path() == path);
    let allowed = match endpoint {
        Some(Endpoint::GetDomains) => method == Method::GET || method == Method::POST,
        Some(_) => method == Method::POST,
        None if path == "ssl/install" => method == Method::POST,
        None => return failure(StatusCode::NOT_FOUND, "Not found"),
    };
    if !allowed {
        return failure(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed");
    }
    let raw = params.get("domain").map(String::as_str).unwrap_or_default();
    match endpoint {
        None => closte_answer(StatusCode::OK, wire::success_message_body(SSL_MESSAGE)),
        Some(Endpoint::GetDomains) => {
            let domains = sidecar.domains.list();
            let names: Vec<wire::ListItem<'_>> = domains
                .iter()
                .map(|md| wire::ListItem::Name(&md.spec.domain))
                .collect();
            closte_answer(StatusCode::OK, wire::domains_body(&names))
        }
        Some(write) => {
            // Closte's own answer to a bad domain: 200, the domain as received
            let Ok(domain) = domain::normalize(raw) else {
                return closte_answer(StatusCode::OK, wire::invalid_domain_body(raw));
            };
            let result = if write == Endpoint::AddDomainAlias {
                sidecar.domains.ensure(&domain, None).await.map(drop)
            } else {
                sidecar.domains.remove(&domain).await.map(drop)
            };
            match result {
                Ok(()) => closte_answer(StatusCode::OK, wire::SUCCESS_BODY.to_owned()),
                Err(e) => failure(status_of(&e), &e.to_string()),
            }
        }
    }
}

/// The HTTP status of a write that did not happen.
pub fn status_of(error: &WriteError) -> StatusCode {
    match error {
        WriteError::Invalid(_) => StatusCode::BAD_REQUEST,
        WriteError::OtherSite { .. } | WriteError::Deleting(_) => StatusCode::CONFLICT,
        WriteError::Refused { code, .. } => match StatusCode::from_u16(*code) {
            Ok(status) if status.is_client_error() => status,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        },
        WriteError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}
