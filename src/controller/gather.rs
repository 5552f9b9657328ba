//! The IO step before a decision: everything a pass knows about one
//! MappedDomain, read from Kubernetes, the index and Closte, and converted
//! into the plan's vocabulary. Needs no running Controller: `status` and the
//! sidecar build [`Sources`] from a client and call [`gather`] and [`check`].

use std::sync::{Arc, RwLock};

use futures::FutureExt;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};

use super::Error;
use super::gate::ApiGate;
use crate::api::conditions::Reason;
use crate::api::{MappedDomain, MappedDomainSpec, RECONCILE_REQUESTED_AT, Verification};
use crate::closte::{Account, AccountId, Accounts, ApiKey, ClosteError, Disposition};
use crate::domain::{Domain, claimed_domain};
use crate::index::{Index, ObjectKey};
use crate::plan::proof::{ProofCheck, ProofOutcome};
use crate::plan::{
    self, Check, ConflictWinner, Credentials, DefaultKeyScope, DnsCheck, Facts, Failure, Finalizer,
    Observation, Retry, Settings, TlsCheck,
};
use crate::probe::dns::{DnsObservation, DnsVerdict};
use crate::probe::proof::ProofObservation;
use crate::probe::tls::{TlsObservation, TlsVerdict};
use crate::probe::{Probe, Prober, ProofAsk};

/// Where facts come from.
pub struct Sources {
    pub client: Client,
    /// Every request a pass makes takes a slot of it.
    pub gate: Arc<ApiGate>,
    pub accounts: Arc<Accounts>,
    /// The controller's own key, for objects without `spec.credentialsRef`.
    pub default_key: Option<ApiKey>,
    /// The namespaces where that key may be used.
    pub default_key_scope: DefaultKeyScope,
    /// Every namespace's labels, kept by a watch, when the scope has a
    /// selector; without it they are read by name when needed.
    pub namespaces: Option<NamespaceStore>,
    pub prober: Arc<Prober>,
    pub settings: Settings,
    /// Every claim, for conflicts.
    pub index: Arc<RwLock<Index>>,
}

/// What the namespace watch keeps: metadata, labels being what counts.
pub type NamespaceStore = Store<PartialObjectMeta<Namespace>>;

/// When to read the account's alias list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observe {
    /// When the plan may act on it (not while a backoff runs).
    WhenNeeded,
    /// Whenever a key and a valid domain allow it (a diagnosis).
    Always,
}

/// The facts of one pass, and the handles its action needs.
pub struct Gathered<'a> {
    pub facts: Facts<'a>,
    /// The account of the object's key, when one could be read.
    pub account: Option<Arc<Account>>,
    /// `spec.domain` when it passes the domain rules.
    pub domain: Option<Domain>,
}

/// Reads everything a decision about `md` needs. `rejected_key` is the label
/// of the key Closte last rejected for this object, as remembered by the caller.
pub async fn gather<'a>(
    md: &'a MappedDomain,
    sources: &Sources,
    rejected_key: Option<String>,
    observe: Observe,
) -> Result<Gathered<'a>, Error> {
    let now = Timestamp::now();
    let conflict = conflict_winner(md, &sources.index);
    let (credentials, key) = match conflict {
        Some(_) => (Credentials::NotRead, None),
        None => credentials(md, sources).await?,
    };
    let domain = Domain::parse(&md.spec.domain);
    let account = key.map(|k| sources.accounts.get(&k));
    if let Some(account) = &account {
        note_account(md, &sources.index, account.id());
    }
    // read after the index knows the account: a recovery announced later
    // finds this object there
    let account_recovered = account
        .as_ref()
        .and_then(|a| a.recovered_at())
        .and_then(|at| Timestamp::try_from(at).ok());
    let mut facts = Facts {
        now,
        generation: md.metadata.generation,
        spec: &md.spec,
        previous: md.status.as_ref(),
        deleting: md.metadata.deletion_timestamp.is_some(),
        finalizer: Finalizer::of(md.finalizers()),
        reconcile_request: md
            .annotations()
            .get(RECONCILE_REQUESTED_AT)
            .map(String::as_str),
        conflict,
        credentials,
        rejected_key,
        invalid_domain: domain.as_ref().err().map(ToString::to_string),
        observation: Observation::NotObserved,
        account_recovered,
        written_check_time: md
            .status
            .as_ref()
            .and_then(|s| s.last_check_time.as_ref())
            .map(|t| t.0),
        settings: sources.settings,
    };
    let wanted = match observe {
        Observe::WhenNeeded => plan::observes(&facts),
        Observe::Always => facts.conflict.is_none(),
    };
    if let (true, Some(account), Ok(domain)) = (wanted, &account, &domain) {
        facts.observation = match account.contains(domain).await {
            Ok(true) => Observation::Present,
            Ok(false) => Observation::Absent,
            Err(e) => Observation::Failed(failure(&e)),
        };
    }
    Ok(Gathered {
        facts,
        account,
        domain: domain.ok(),
    })
}

/// Notes in the index which account the object's key belongs to (the watch
/// cannot tell), so that the account's recovery finds the object.
fn note_account(md: &MappedDomain, index: &RwLock<Index>, account: AccountId) {
    let key = ObjectKey {
        namespace: md.namespace().unwrap_or_default().into(),
        name: md.name_any().into(),
    };
    if index.read().unwrap().account_of(&key) != Some(account) {
        index.write().unwrap().set_account(&key, account);
    }
}

/// The oldest other MappedDomain claiming the same domain, if older than `md`.
fn conflict_winner(md: &MappedDomain, index: &RwLock<Index>) -> Option<ConflictWinner> {
    let created = md.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let uid = md.metadata.uid.as_deref().unwrap_or_default();
    let index = index.read().unwrap();
    let winner = index.winner(&claimed_domain(&md.spec.domain), created, uid)?;
    Some(ConflictWinner {
        namespace: winner.namespace.to_string(),
        name: winner.name.to_string(),
    })
}

/// The API key for `md`: its Secret's (read by name, so a rotated key is
/// seen on the next pass), or the controller's own where its scope allows.
async fn credentials(
    md: &MappedDomain,
    sources: &Sources,
) -> Result<(Credentials, Option<ApiKey>), Error> {
    let available = |key: ApiKey| {
        let label = key.label();
        (Credentials::Available { label }, Some(key))
    };
    let ns = md.namespace().ok_or(Error::NoNamespace)?;
    let Some(reference) = &md.spec.credentials_ref else {
        let Some(key) = &sources.default_key else {
            return Ok((Credentials::NoDefaultKey, None));
        };
        if !default_key_allowed(sources, &ns).await? {
            tracing::debug!("the default key is not allowed in this namespace");
            return Ok((Credentials::DefaultKeyNotAllowed { namespace: ns }, None));
        }
        return Ok(available(key.clone()));
    };
    let secrets: Api<Secret> = Api::namespaced(sources.client.clone(), &ns);
    let slot = sources.gate.enter().await;
    let read = secrets.get_opt(&reference.name).await;
    drop(slot);
    let Some(secret) = read? else {
        let secret = reference.name.clone();
        return Ok((Credentials::SecretNotFound { secret }, None));
    };
    let key = secret
        .data
        .as_ref()
        .and_then(|d| d.get(&reference.key))
        .and_then(|bytes| std::str::from_utf8(&bytes.0).ok())
        .and_then(|text| ApiKey::new(text).ok());
    Ok(match key {
        Some(key) => available(key),
        None => {
            let (secret, key) = (reference.name.clone(), reference.key.clone());
            (Credentials::KeyNotInSecret { secret, key }, None)
        }
    })
}

/// Whether the controller's own key serves `namespace`: by name, or by the
/// namespace's labels (from the watch, else read by name).
async fn default_key_allowed(sources: &Sources, namespace: &str) -> Result<bool, Error> {
    let scope = &sources.default_key_scope;
    if !scope.needs_labels(namespace) {
        return Ok(scope.allows(namespace, None));
    }
    // an unknown namespace (not listed yet, or gone) matches no selector
    let labels = match &sources.namespaces {
        Some(store) => {
            // the Controller starts once they are listed; a pass never waits
            let listed = store.wait_until_ready().now_or_never();
            if !matches!(listed, Some(Ok(()))) {
                return Err(Error::NamespacesNotSynced);
            }
            store
                .get(&ObjectRef::new(namespace))
                .map(|ns| ns.metadata.labels.clone().unwrap_or_default())
        }
        None => {
            let namespaces: Api<Namespace> = Api::all(sources.client.clone());
            let _slot = sources.gate.enter().await;
            namespaces
                .get_metadata_opt(namespace)
                .await?
                .map(|ns| ns.metadata.labels.unwrap_or_default())
        }
    };
    Ok(scope.allows(namespace, labels.as_ref()))
}

/// Checks DNS and TLS of `domain` as `spec` expects them, asking for the
/// domain's proof (signed with `token`) where its verification needs one.
pub async fn check(
    prober: &Prober,
    domain: &Domain,
    spec: &MappedDomainSpec,
    token: Option<&[u8]>,
) -> Check {
    let expected = spec.expected_targets.as_deref().unwrap_or_default();
    let verification = match spec.verification.unwrap_or(prober.verification) {
        // no one name answers for every name under a wildcard: DNS judges it
        _ if domain.is_wildcard() => Verification::Dns,
        mode => mode,
    };
    let ask = match (verification, token) {
        (Verification::Http, Some(token)) => ProofAsk::Always(token),
        (Verification::Auto, Some(token)) => ProofAsk::WhenDnsMisses(token),
        _ => ProofAsk::No,
    };
    let mut check = Check {
        verification,
        ..check_from(prober.check(domain, expected, ask).await)
    };
    if verification == Verification::Http && token.is_none() {
        check.proof = Some(ProofCheck {
            outcome: ProofOutcome::NoToken,
            url: String::new(),
            message: "no proof asked: the controller has no WordPress sidecar token for this \
                      namespace (--proof-secret)"
                .into(),
            latency: std::time::Duration::ZERO,
        });
    }
    check
}

/// The WordPress sidecar token of `namespace` (`--proof-secret`), which
/// signs its domains' proofs; `None` when not configured or not there.
pub async fn proof_token(
    sources: &Sources,
    secret: Option<&str>,
    namespace: &str,
) -> Option<Vec<u8>> {
    let (name, key) = match secret?.split_once(':') {
        Some((name, key)) => (name, key),
        None => (secret?, "token"),
    };
    let secrets: Api<Secret> = Api::namespaced(sources.client.clone(), namespace);
    let slot = sources.gate.enter().await;
    let found = secrets.get_opt(name).await.ok();
    drop(slot);
    let found = found??;
    let token = found.data?.remove(key)?.0;
    let token = String::from_utf8(token).ok()?.trim().as_bytes().to_vec();
    (!token.is_empty()).then_some(token)
}

/// A Closte error as the plan sees it.
pub fn failure(error: &ClosteError) -> Failure {
    let reason = match error {
        ClosteError::DomainRejected { .. } => Reason::DomainRejected,
        ClosteError::CredentialsRejected { .. } => Reason::CredentialsRejected,
        ClosteError::RateLimited { .. } => Reason::RateLimited,
        ClosteError::Transient { .. } => Reason::ClosteUnavailable,
        ClosteError::Unexpected { .. } => Reason::UnexpectedAnswer,
        // a pass ends before its conclusion when fenced (see reconcile): never in a status
        ClosteError::Fenced(_) => Reason::ClosteUnavailable,
    };
    let retry = match error.disposition() {
        Disposition::Stop => Retry::Stop,
        Disposition::BackOff => Retry::BackOff,
        Disposition::RetryAfter(pause) => Retry::After(pause),
    };
    Failure {
        reason,
        message: error.to_string(),
        retry,
    }
}

/// A probe's observations as the plan sees them.
pub fn check_from(probe: Probe) -> Check {
    Check {
        dns: dns_check(probe.dns),
        expected: probe.expected,
        tls: probe.tls.map(tls_check),
        verification: Verification::Auto,
        proof: probe.proof.map(proof_check),
    }
}

fn dns_check(observation: DnsObservation) -> DnsCheck {
    let reason = match observation.verdict {
        DnsVerdict::Matched => Reason::Matched,
        DnsVerdict::TargetMismatch => Reason::TargetMismatch,
        DnsVerdict::NxDomain => Reason::NxDomain,
        DnsVerdict::NoAnswer => Reason::NoAnswer,
        DnsVerdict::ResolverError => Reason::ResolverError,
    };
    DnsCheck {
        reason,
        records: observation.records,
        message: observation.message,
    }
}

fn proof_check(seen: ProofObservation) -> ProofCheck {
    let outcome = match (seen.verified, seen.proof_shaped, seen.status) {
        (true, _, _) => ProofOutcome::Proven,
        (false, true, _) => ProofOutcome::OtherNetwork,
        (false, false, Some(404)) => ProofOutcome::NotFound,
        (false, false, Some(_)) => ProofOutcome::Unexpected,
        (false, false, None) => ProofOutcome::Unreachable,
    };
    ProofCheck {
        outcome,
        url: seen.url,
        message: seen.message,
        latency: seen.latency,
    }
}

fn tls_check(observation: TlsObservation) -> TlsCheck {
    let reason = match observation.verdict {
        TlsVerdict::Valid => Reason::Valid,
        TlsVerdict::Untrusted => Reason::Untrusted,
        TlsVerdict::HostnameMismatch => Reason::HostnameMismatch,
        TlsVerdict::Expired => Reason::Expired,
        TlsVerdict::NotYetValid => Reason::NotYetValid,
        TlsVerdict::HandshakeFailed => Reason::HandshakeFailed,
        TlsVerdict::ConnectFailed => Reason::ConnectFailed,
    };
    TlsCheck {
        reason,
        certificate: observation.certificate,
        message: observation.message,
    }
}
