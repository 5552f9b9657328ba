//! The `MappedDomain` custom resource: spec, status and the generated CRD.
//! Types only; no IO.

pub mod check_interval;
pub mod conditions;
pub mod duration;

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, CustomResourceExt};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use crate::domain::{self, Rule};
pub use check_interval::{CheckInterval, CheckIntervalError};

/// API group of every resource this operator defines (the derive below
/// spells it out too: attributes take literals; a test keeps them equal).
pub const GROUP: &str = "closte-operator.io";
/// Served and stored version.
pub const VERSION: &str = "v1alpha1";
/// Finalizer that holds a MappedDomain until its alias is settled on Closte.
pub const FINALIZER: &str = "closte-operator.io/alias";
/// The same finalizer for an alias this controller adds: written (in place
/// of [`FINALIZER`]) before the add, it carries the ownership intent, so an
/// add whose answer is lost is still known as this controller's, at the
/// cost of no write of its own.
pub const CREATED_FINALIZER: &str = "closte-operator.io/alias-created";
/// Annotation whose new value forces an immediate reconcile (echoed in status).
pub const RECONCILE_REQUESTED_AT: &str = "closte-operator.io/reconcile-requested-at";
/// `checkInterval` when the spec leaves it out (Ultimate Multisite's default).
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(300);

/// Desired state of one domain alias on a Closte site.
// Each printcolumn(...) repeats `type_ = ...`, which this lint mistakes for a duplicate.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "closte-operator.io",
    version = "v1alpha1",
    kind = "MappedDomain",
    plural = "mappeddomains",
    singular = "mappeddomain",
    shortname = "md",
    category = "closte",
    namespaced,
    status = "MappedDomainStatus",
    derive = "PartialEq",
    doc = "MappedDomain declares that a domain of a WordPress multisite network must exist as a domain alias on its Closte site. The controller registers the alias, watches DNS and TLS until Closte has issued the certificate, and reports progress in status.",
    printcolumn(
        name = "DOMAIN",
        type_ = "string",
        json_path = ".spec.domain",
        description = "The mapped domain"
    ),
    printcolumn(
        name = "SITE",
        type_ = "integer",
        json_path = ".spec.siteId",
        description = "WordPress blog id"
    ),
    printcolumn(
        name = "STAGE",
        type_ = "string",
        json_path = ".status.stage",
        description = "Progress in Ultimate Multisite's vocabulary"
    ),
    printcolumn(
        name = "READY",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Whether the domain is registered, resolves and serves a valid certificate"
    ),
    printcolumn(
        name = "EXPIRES",
        type_ = "string",
        json_path = ".status.certificate.notAfter",
        description = "When the served certificate expires"
    ),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!has(self.verification) || self.verification != 'HTTP' || !self.domain.startsWith('*.')",
    "message": "a wildcard domain cannot be proven by a request (no one name answers for every name under it): use verification DNS or Auto, which judge it by DNS"
}]))]
pub struct MappedDomainSpec {
    /// The hostname to add as a domain alias on Closte: lowercase ASCII, internationalised names as punycode (xn--...), at most 253 characters, labels of 1 to 63 characters of a-z, 0-9 and '-', optionally one leading '*.' for a wildcard. No scheme, port, path, trailing dot or IP address. Immutable.
    #[schemars(schema_with = "domain_schema")]
    pub domain: String,

    /// The WordPress blog id of the site this domain maps to. Informational.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub site_id: Option<i64>,

    /// Secret in this namespace holding the Closte API key of the site. When unset, the controller's own key is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_ref: Option<SecretKeyRef>,

    /// How often DNS and TLS are re-checked while the domain is not ready, as a duration such as 300s or 5m. Between 10s and 24h; default 300s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = duration::PATTERN), length(max = 32))]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "duration(self) >= duration('10s') && duration(self) <= duration('24h')",
        "message": "checkInterval must be between 10s and 24h"
    }]))]
    pub check_interval: Option<String>,

    /// IP addresses or hostnames a correct DNS answer must contain (A/AAAA records or a CNAME target). When unset, the controller's defaults apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16), inner(length(min = 1, max = 253)))]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self.all(t, isIP(t) || t.matches('^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?[.])+[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'))",
        "message": "each expectedTargets entry must be an IP address or a lowercase hostname"
    }]))]
    pub expected_targets: Option<Vec<String>>,

    /// What happens on Closte when this object is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,

    /// Stops all writes to Closte for this object while true; DNS and TLS are still observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
}

impl MappedDomainSpec {
    /// The effective re-check interval. The API server has validated the
    /// string; an unparsable value (an older object) falls back to the default.
    pub fn check_interval(&self) -> Duration {
        self.check_interval
            .as_deref()
            .and_then(|s| duration::parse(s).ok())
            .unwrap_or(DEFAULT_CHECK_INTERVAL)
    }
}

/// A key of a Secret in the MappedDomain's own namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    #[schemars(regex(
        pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
    ))]
    pub name: String,
    /// Key within the Secret's data that holds the Closte API key.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}

/// What happens to the Closte alias when this MappedDomain is deleted: Delete removes it, Orphan leaves it. When unset, the alias is removed only if this controller created it, and left in place if it was adopted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    /// Remove the alias from Closte.
    Delete,
    /// Leave the alias on Closte.
    Orphan,
}

/// How DNSReady is judged: DNS (the answer must contain an expected target), HTTP (a request to the domain must come back from this network with this object's proof; the DNS answer is recorded, not required) or Auto (DNS, or else the proof, then recorded as Proxied: a CDN or proxy in front). When unset, the controller's --verification applies (Auto by default). A wildcard domain is judged by DNS alone: no one name answers for every name under it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Verification {
    /// The DNS answer must contain an expected target.
    #[serde(rename = "DNS")]
    Dns,
    /// A request to the domain must come back with this object's proof.
    #[serde(rename = "HTTP")]
    Http,
    /// DNS, or else the proof (a proxied domain).
    #[default]
    Auto,
}

/// Observed state of a MappedDomain, written only by the controller.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MappedDomainStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Registered, DNSReady, CertificateReady and Ready, plus Reconciling and Stalled for kstatus-aware tools (Flux, Helm, Argo CD).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// Progress in Ultimate Multisite's vocabulary: pending, checking-dns, checking-ssl-cert, done, failed or ssl-failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,

    /// Created when this controller added the alias to Closte, Adopted when it was already there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ownership: Option<Ownership>,

    /// When the alias was first seen on Closte.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_at: Option<Time>,

    /// When DNS or TLS was last checked. A check that changes nothing else
    /// is written at most once per resync period (the controller keeps the
    /// schedule meanwhile), so this is up to that much behind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check_time: Option<Time>,

    /// When the next DNS or TLS check is due, as of `lastCheckTime`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_check_time: Option<Time>,

    /// Consecutive failed attempts since the last success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub failed_attempts: Option<i32>,

    /// DNS/TLS checks made in the current stage, as of `lastCheckTime`;
    /// reset when the domain is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub checks: Option<i32>,

    /// When the last attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_time: Option<Time>,

    /// The last DNS observation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsStatus>,

    /// The certificate the domain last served over TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateStatus>,

    /// The value of the closte-operator.io/reconcile-requested-at annotation the controller last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

/// Progress in Ultimate Multisite's vocabulary: pending (not yet on Closte), checking-dns (registered, waiting for DNS), checking-ssl-cert (DNS right, waiting for the certificate), done, failed (Closte rejected the domain or the credentials), ssl-failed (no valid certificate in time).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Not yet registered on Closte.
    Pending,
    /// Registered; waiting for DNS to point at the site.
    CheckingDns,
    /// DNS is right; waiting for Closte to issue the certificate.
    CheckingSslCert,
    /// Registered, resolving and serving a valid certificate.
    Done,
    /// Closte rejected the domain or the credentials; needs a person.
    Failed,
    /// The certificate was not issued or not renewed in time.
    SslFailed,
}

impl Stage {
    /// The name status shows (and metrics label).
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Pending => "pending",
            Stage::CheckingDns => "checking-dns",
            Stage::CheckingSslCert => "checking-ssl-cert",
            Stage::Done => "done",
            Stage::Failed => "failed",
            Stage::SslFailed => "ssl-failed",
        }
    }
}

/// Who put the alias on Closte: Created when this controller added it, Adopted when it was already there.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Ownership {
    /// This controller added the alias.
    Created,
    /// The alias was already on Closte when the controller first looked.
    Adopted,
}

/// What the domain resolved to.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DnsStatus {
    /// A and AAAA addresses and CNAME targets in the answer.
    #[serde(default)]
    pub records: Vec<String>,
    /// Whether the answer contains one of the expected targets.
    pub matched: bool,
    /// The targets the answer was compared with.
    #[serde(default)]
    pub expected: Vec<String>,
    /// Why resolution failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The answer is a proxy's or CDN's, and the domain proved it reaches this network through it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub proxied: bool,
    /// The last proof request, when the verification mode asked for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<ProofStatus>,
}

/// One proof request: GET https://DOMAIN/.well-known/closte-operator/NONCE.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProofStatus {
    /// The URL asked.
    pub url: String,
    /// Proven, ProofMismatch, ProofNotFound, ProofUnexpected, ProofUnreachable or ProofTokenMissing.
    pub result: String,
    /// What came back.
    pub message: String,
}

/// A summary of the certificate the domain served.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateStatus {
    /// Issuer distinguished name.
    pub issuer: String,
    /// Subject distinguished name.
    pub subject: String,
    /// DNS names of the subject alternative name extension.
    #[serde(default)]
    pub dns_names: Vec<String>,
    /// Serial number, hexadecimal.
    pub serial_number: String,
    /// Start of validity.
    pub not_before: Time,
    /// End of validity.
    pub not_after: Time,
    /// SHA-256 fingerprint of the DER certificate, hexadecimal.
    pub sha256_fingerprint: String,
    /// Proxy when the domain is proxied: the certificate visitors see is the proxy's, and Closte's own cannot be seen from outside. Unset when served by the site itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_by: Option<String>,
}

/// Schema of `spec.domain`: the rules of [`crate::domain::Rule`] as CEL, plus
/// immutability, so the API server rejects what the Rust code rejects.
fn domain_schema(_: &mut SchemaGenerator) -> Schema {
    let mut rules: Vec<serde_json::Value> = Rule::ALL
        .iter()
        .filter_map(|rule| {
            Some(serde_json::json!({ "rule": rule.cel()?, "message": rule.message() }))
        })
        .collect();
    rules.push(serde_json::json!({
        "rule": "self == oldSelf",
        "message": "domain is immutable; create a new MappedDomain for another domain"
    }));
    json_schema!({
        "type": "string",
        "minLength": 1,
        "maxLength": domain::MAX_LEN,
        "x-kubernetes-validations": rules,
    })
}

/// The CRD as YAML, exactly as `closte-operator crd` prints it and as
/// `crds/` holds it.
pub fn crd_yaml() -> String {
    let yaml = serde_yaml::to_string(&MappedDomain::crd()).expect("CRD serialises");
    format!("# Generated by `closte-operator crd`; do not edit.\n---\n{yaml}")
}

#[cfg(test)]
mod tests;
