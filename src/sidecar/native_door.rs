//! The native JSON door under `/v1/`: domains with their stage, conditions
//! and certificate (read from the watch cache), idempotent writes of one
//! domain, and the whole set of one site. Described by `docs/sidecar-openapi.yaml`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::Sidecar;
use super::closte_door::status_of;
use super::domains::{Ensured, WriteError, managed_by_sidecar};
use super::request::{self, NativeRefusal};
use crate::api::conditions::ConditionType;
use crate::api::{CertificateStatus, MappedDomain, Stage};

/// The OpenAPI description of this door, served at `/v1/openapi.yaml`.
pub const OPENAPI: &str = include_str!("../../docs/sidecar-openapi.yaml");

/// An error answer: `{"error": "..."}` with its status.
#[derive(Debug)]
pub struct DoorError {
    status: StatusCode,
    message: String,
}

fn error(status: StatusCode, message: impl Into<String>) -> DoorError {
    DoorError {
        status,
        message: message.into(),
    }
}

impl IntoResponse for DoorError {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Error {
            error: String,
        }
        let body = Error {
            error: self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<WriteError> for DoorError {
    fn from(e: WriteError) -> Self {
        error(status_of(&e), e.to_string())
    }
}

impl From<NativeRefusal> for DoorError {
    fn from(e: NativeRefusal) -> Self {
        error(e.status(), e.to_string())
    }
}

/// An error answer in this door's shape, for refusals made outside it.
pub fn refusal(status: StatusCode, message: &str) -> Response {
    error(status, message).into_response()
}

/// One domain as the door shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DomainView<'a> {
    domain: &'a str,
    name: &'a str,
    site_id: Option<i64>,
    /// Whether the sidecar made it (its managed-by label): only such it changes or deletes.
    managed: bool,
    /// `spec.checkInterval` as written; `null` when unset (the CRD's default applies).
    check_interval: Option<&'a str>,
    stage: Option<Stage>,
    ready: bool,
    /// The Ready condition's reason and message.
    reason: Option<&'a str>,
    message: Option<&'a str>,
    conditions: Vec<ConditionView<'a>>,
    certificate: Option<&'a CertificateStatus>,
}

#[derive(Serialize)]
struct ConditionView<'a> {
    #[serde(rename = "type")]
    type_: &'a str,
    status: &'a str,
    reason: &'a str,
    message: &'a str,
}

impl<'a> DomainView<'a> {
    fn of(md: &'a MappedDomain) -> DomainView<'a> {
        let status = md.status.as_ref();
        let ready = status.and_then(|s| s.condition(ConditionType::Ready));
        DomainView {
            domain: &md.spec.domain,
            name: md.metadata.name.as_deref().unwrap_or_default(),
            site_id: md.spec.site_id,
            managed: managed_by_sidecar(md),
            check_interval: md.spec.check_interval.as_deref(),
            stage: status.and_then(|s| s.stage),
            ready: status.is_some_and(|s| s.is_true(ConditionType::Ready)),
            reason: ready.map(|c| c.reason.as_str()),
            message: ready.map(|c| c.message.as_str()),
            conditions: status
                .map(|s| {
                    s.conditions
                        .iter()
                        .map(|c| ConditionView {
                            type_: &c.type_,
                            status: &c.status,
                            reason: &c.reason,
                            message: &c.message,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            certificate: status.and_then(|s| s.certificate.as_ref()),
        }
    }
}

/// The request's bearer token, checked; `Err` is the 401 answer.
fn authorize(sidecar: &Sidecar, headers: &HeaderMap) -> Result<(), DoorError> {
    if sidecar.tokens.accepts(request::bearer(headers)) {
        Ok(())
    } else {
        Err(error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong token: send Authorization: Bearer <sidecar token>",
        ))
    }
}

/// A path parameter, or the 400 answer (JSON, like every answer of this
/// door) when it is not UTF-8 once percent-decoded.
fn param(path: Result<Path<String>, PathRejection>) -> Result<String, DoorError> {
    path.map(|Path(p)| p)
        .map_err(|e| error(e.status(), e.body_text()))
}

/// The body, or the 413 answer (JSON) when it is larger than the limit.
fn body(bytes: Result<Bytes, BytesRejection>) -> Result<Bytes, DoorError> {
    bytes.map_err(|e| error(e.status(), e.body_text()))
}

pub async fn list(
    State(sidecar): State<Arc<Sidecar>>,
    headers: HeaderMap,
) -> Result<Response, DoorError> {
    authorize(&sidecar, &headers)?;
    #[derive(Serialize)]
    struct List<'a> {
        domains: Vec<DomainView<'a>>,
    }
    let all = sidecar.domains.list();
    let domains = all.iter().map(|md| DomainView::of(md)).collect();
    Ok(Json(List { domains }).into_response())
}

pub async fn get_one(
    State(sidecar): State<Arc<Sidecar>>,
    headers: HeaderMap,
    raw: Result<Path<String>, PathRejection>,
) -> Result<Response, DoorError> {
    authorize(&sidecar, &headers)?;
    let domain = request::domain(&param(raw)?)?;
    let md = sidecar.domains.find(&domain).ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            format!("no MappedDomain for {domain}"),
        )
    })?;
    Ok(Json(DomainView::of(&md)).into_response())
}

pub async fn put_one(
    State(sidecar): State<Arc<Sidecar>>,
    headers: HeaderMap,
    raw: Result<Path<String>, PathRejection>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, DoorError> {
    authorize(&sidecar, &headers)?;
    let put = request::put_domain(&param(raw)?, &body(bytes)?)?;
    let (ensured, md) = sidecar
        .domains
        .ensure(&put.domain, put.site_id, put.check_interval.as_ref())
        .await?;
    let status = match ensured {
        Ensured::Created => StatusCode::CREATED,
        Ensured::Updated | Ensured::Unchanged => StatusCode::OK,
    };
    Ok((status, Json(DomainView::of(&md))).into_response())
}

pub async fn delete_one(
    State(sidecar): State<Arc<Sidecar>>,
    headers: HeaderMap,
    raw: Result<Path<String>, PathRejection>,
) -> Result<Response, DoorError> {
    authorize(&sidecar, &headers)?;
    let domain = request::domain(&param(raw)?)?;
    sidecar.domains.remove(&domain).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn sync_site(
    State(sidecar): State<Arc<Sidecar>>,
    headers: HeaderMap,
    site: Result<Path<String>, PathRejection>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, DoorError> {
    authorize(&sidecar, &headers)?;
    let wanted = request::site_domains(&param(site)?, &body(bytes)?)?;
    let report = sidecar
        .domains
        .sync(wanted.site, &wanted.domains, wanted.check_interval.as_ref())
        .await?;
    Ok(Json(report).into_response())
}

pub async fn openapi(
    State(sidecar): State<Arc<Sidecar>>,
    headers: HeaderMap,
) -> Result<Response, DoorError> {
    authorize(&sidecar, &headers)?;
    Ok(([(header::CONTENT_TYPE, "application/yaml")], OPENAPI).into_response())
}

/// Any path no door knows.
pub async fn not_found() -> DoorError {
    error(StatusCode::NOT_FOUND, "no such path")
}

/// A known path asked with a method it does not take.
pub async fn method_not_allowed() -> DoorError {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this path",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::MappedDomainSpec;

    #[test]
    fn a_domain_shows_its_check_interval_as_written_or_null() {
        let mut md = MappedDomain::new(
            "a-example",
            MappedDomainSpec {
                domain: "a.example".into(),
                ..Default::default()
            },
        );
        let view = serde_json::to_value(DomainView::of(&md)).unwrap();
        assert_eq!(view["checkInterval"], serde_json::Value::Null);
        assert!(view.as_object().unwrap().contains_key("checkInterval"));
        md.spec.check_interval = Some("1h30m".into());
        let view = serde_json::to_value(DomainView::of(&md)).unwrap();
        assert_eq!(view["checkInterval"], "1h30m");
    }

    #[test]
    fn a_domain_says_whether_the_sidecar_made_it() {
        let mut md = MappedDomain::new(
            "a-example",
            MappedDomainSpec {
                domain: "a.example".into(),
                ..Default::default()
            },
        );
        let view = serde_json::to_value(DomainView::of(&md)).unwrap();
        assert_eq!(view["managed"], false);
        let label = super::super::domains::MANAGED_BY;
        md.metadata.labels = Some([(label.0.to_owned(), label.1.to_owned())].into());
        let view = serde_json::to_value(DomainView::of(&md)).unwrap();
        assert_eq!(view["managed"], true);
    }
}
