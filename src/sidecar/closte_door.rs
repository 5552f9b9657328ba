//! The Closte-compatible door under `/api/client/`: Closte's three calls with
//! Closte's parameters and answers (from `closte/wire.rs`, the same bytes the
//! simulator sends), `apikey` being the sidecar token. An unmodified Closte
//! client works against it with no change but its base URL.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Sidecar;
use super::domains::WriteError;
use super::request::{self, ClosteCall};
use crate::closte::wire::{self, Endpoint};

/// What `/ssl/install` answers: Closte needs no request for a certificate.
const SSL_MESSAGE: &str = "Closte issues the certificate by itself once DNS points at the site; \
     its progress is in the MappedDomain's status";

fn closte_answer(status: StatusCode, body: String) -> Response {
    let json = [(header::CONTENT_TYPE, "application/json; charset=utf-8")];
    (status, json, body).into_response()
}

/// A refusal in Closte's shape: `{"success":false,"error":"..."}`.
pub fn failure(status: StatusCode, error: &str) -> Response {
    closte_answer(status, wire::failure_body(error))
}

/// Every request under `/api/client/`.
pub async fn handle(
    State(sidecar): State<Arc<Sidecar>>,
    method: Method,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // a path that is not UTF-8, a body over the limit: refused in Closte's shape too
    let (path, body) = match (path, body) {
        (Ok(Path(path)), Ok(body)) => (path, body),
        (Err(e), _) => return failure(e.status(), &e.body_text()),
        (_, Err(e)) => return failure(e.status(), &e.body_text()),
    };
    let query = query.as_deref().unwrap_or_default();
    let token = sidecar.tokens.current();
    let call = match request::closte_call(&token, &method, &path, query, &body) {
        Ok(call) => call,
        Err(refusal) => return failure(refusal.status(), &refusal.to_string()),
    };
    match call {
        ClosteCall::SslInstall => {
            closte_answer(StatusCode::OK, wire::success_message_body(SSL_MESSAGE))
        }
        ClosteCall::List => {
            let domains = sidecar.domains.list();
            let names: Vec<wire::ListItem<'_>> = domains
                .iter()
                .map(|md| wire::ListItem::Name(&md.spec.domain))
                .collect();
            closte_answer(StatusCode::OK, wire::domains_body(&names))
        }
        // Closte's own answer to a bad domain: 200, the domain as received
        ClosteCall::InvalidDomain { received } => {
            closte_answer(StatusCode::OK, wire::invalid_domain_body(&received))
        }
        ClosteCall::Write { endpoint, domain } => {
            let result = if endpoint == Endpoint::AddDomainAlias {
                // only an add has a use for it; refused before anything is written
                let interval = match request::check_interval_header(&headers) {
                    Ok(interval) => interval,
                    Err(refusal) => return failure(StatusCode::BAD_REQUEST, &refusal.to_string()),
                };
                let ensured = sidecar.domains.ensure(&domain, None, interval.as_ref());
                ensured.await.map(drop)
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
        WriteError::OtherSite { .. }
        | WriteError::Deleting(_)
        | WriteError::NameTaken { .. }
        | WriteError::NotManaged { .. }
        | WriteError::Raced(_) => StatusCode::CONFLICT,
        WriteError::Refused { code, .. } => match StatusCode::from_u16(*code) {
            Ok(status) if status.is_client_error() => status,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        },
        WriteError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}
