//! What a pass knows before it decides: the object, what the world looked
//! like, and the outcomes of what it did. Plain values in the plan's own
//! vocabulary; the IO modules' results are converted into them at the edge.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use super::Settings;
use super::proof::ProofCheck;
use crate::api::conditions::Reason;
use crate::api::{
    CREATED_FINALIZER, CertificateStatus, DeletionPolicy, FINALIZER, MappedDomainSpec,
    MappedDomainStatus, Ownership, Verification,
};

/// Everything the decision needs, gathered by the reconciler.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub now: Timestamp,
    pub generation: Option<i64>,
    pub spec: &'a MappedDomainSpec,
    pub previous: Option<&'a MappedDomainStatus>,
    pub deleting: bool,
    /// Which of this controller's finalizers is on the object.
    pub finalizer: Option<Finalizer>,
    /// The reconcile-requested-at annotation, if set.
    pub reconcile_request: Option<&'a str>,
    /// An older MappedDomain that claims the same domain.
    pub conflict: Option<ConflictWinner>,
    pub credentials: Credentials,
    /// The label of the key Closte last rejected for this object, if any.
    pub rejected_key: Option<String>,
    /// Why `spec.domain` breaks the domain rules (an object older than them).
    pub invalid_domain: Option<String>,
    /// What the account's alias list says about the domain.
    pub observation: Observation,
    /// When the account last recovered from Closte's trouble (the request
    /// that showed it was sent then), as far as this process has seen.
    pub account_recovered: Option<Timestamp>,
    /// The `lastCheckTime` of the status as written. `previous` may carry
    /// later checks' schedule, kept in memory: a check that changes nothing
    /// but when the domain is checked is written at most once per resync.
    pub written_check_time: Option<Timestamp>,
    pub settings: Settings,
}

/// This controller's finalizer on an object, by what it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finalizer {
    /// Holds the object until its alias is settled.
    Plain,
    /// The same, and says the alias is (being) added by this controller:
    /// the ownership intent, durable before the add.
    Created,
}

impl Finalizer {
    /// Every one, the one that says more first.
    const ALL: [Finalizer; 2] = [Finalizer::Created, Finalizer::Plain];

    pub fn name(self) -> &'static str {
        match self {
            Finalizer::Plain => FINALIZER,
            Finalizer::Created => CREATED_FINALIZER,
        }
    }

    /// The one on an object with these finalizers (`Created` wins).
    pub fn of<S: AsRef<str>>(names: &[S]) -> Option<Finalizer> {
        let has = |f: Finalizer| names.iter().any(|n| n.as_ref() == f.name());
        Finalizer::ALL.into_iter().find(|f| has(*f))
    }

    /// Whether `name` is one of this controller's finalizers.
    pub fn is_ours(name: &str) -> bool {
        Finalizer::ALL.iter().any(|f| f.name() == name)
    }
}

impl Facts<'_> {
    /// Whose the alias is as far as the object says: its finalizer carries
    /// the intent written before an add, its status what was concluded.
    pub(crate) fn previous_ownership(&self) -> Option<Ownership> {
        if self.finalizer == Some(Finalizer::Created) {
            return Some(Ownership::Created);
        }
        self.previous.and_then(|s| s.ownership)
    }

    /// Whether deleting this object should remove the alias from Closte.
    pub fn deletes_alias(&self) -> bool {
        match self.spec.deletion_policy {
            Some(DeletionPolicy::Delete) => true,
            Some(DeletionPolicy::Orphan) => false,
            None => self.previous_ownership() == Some(Ownership::Created),
        }
    }

    pub(crate) fn suspended(&self) -> bool {
        self.spec.suspend == Some(true)
    }

    /// Closte writes are off for this object: suspended or a dry run.
    pub(crate) fn writes_off(&self) -> bool {
        self.suspended() || self.settings.dry_run
    }
}

/// Another MappedDomain that holds the same domain and wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictWinner {
    pub namespace: String,
    pub name: String,
}

/// Where the object's API key comes from, and whether it could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A key was read; `label` names it without revealing it.
    Available {
        label: String,
    },
    SecretNotFound {
        secret: String,
    },
    KeyNotInSecret {
        secret: String,
        key: String,
    },
    /// No credentialsRef and the controller has no key of its own.
    NoDefaultKey,
    /// No credentialsRef, and the controller's own key does not serve the
    /// object's namespace (see [`super::DefaultKeyScope`]).
    DefaultKeyNotAllowed {
        namespace: String,
    },
    /// Not read: the object lost a conflict and will not touch Closte.
    NotRead,
}

impl Credentials {
    pub(crate) fn label(&self) -> Option<&str> {
        match self {
            Credentials::Available { label } => Some(label),
            _ => None,
        }
    }

    /// The reason and message when the key could not be read.
    pub(crate) fn problem(&self) -> Option<(Reason, String)> {
        let message = match self {
            Credentials::Available { .. } | Credentials::NotRead => return None,
            Credentials::SecretNotFound { secret } => {
                format!("Secret {secret:?} named by spec.credentialsRef does not exist")
            }
            Credentials::KeyNotInSecret { secret, key } => {
                format!("Secret {secret:?} has no non-empty key {key:?}")
            }
            Credentials::NoDefaultKey => {
                let text = "no spec.credentialsRef and the controller has no API key of its own";
                return Some((Reason::NoApiKey, text.into()));
            }
            Credentials::DefaultKeyNotAllowed { namespace } => {
                let text = format!(
                    "no spec.credentialsRef, and the controller's own API key is not allowed in namespace {namespace:?} (--default-key-namespaces, --default-key-namespace-selector); name a Secret holding the site's key in spec.credentialsRef"
                );
                return Some((Reason::DefaultKeyNotAllowed, text));
            }
        };
        Some((Reason::CredentialsNotFound, message))
    }
}

/// A failed attempt to reach or change Closte, as the plan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reason: Reason,
    pub message: String,
    pub retry: Retry,
}

/// When a failure is worth trying again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Only after a person changes something (slow retry meanwhile).
    Stop,
    /// With exponential backoff.
    BackOff,
    /// After this long (a rate limit).
    After(Duration),
}

/// What the account's alias list says about the domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// Not looked at: no key, a conflict, an invalid domain, or a pass that waits.
    NotObserved,
    Present,
    Absent,
    Failed(Failure),
}

/// What running the Closte action did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing was run.
    Idle,
    Added,
    /// The add failed but the list shows the alias.
    AlreadyPresent,
    Deleted,
    AlreadyAbsent,
    /// The finalizer may go without touching Closte.
    Released,
    Failed(Failure),
}

/// One DNS-then-TLS check of the domain. TLS is checked only when DNS matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub dns: DnsCheck,
    /// The targets the answer was compared with.
    pub expected: Vec<String>,
    pub tls: Option<TlsCheck>,
    /// How DNSReady is judged (the spec's, or the controller's default).
    pub verification: Verification,
    /// The proof request, when the mode asked for one (not sent yet: step 14).
    pub proof: Option<ProofCheck>,
}

/// The DNS answer and its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsCheck {
    /// Matched, TargetMismatch, NXDOMAIN, NoAnswer or ResolverError.
    pub reason: Reason,
    /// CNAMEs and addresses of the answer.
    pub records: Vec<String>,
    pub message: String,
}

impl DnsCheck {
    pub fn matched(&self) -> bool {
        self.reason == Reason::Matched
    }
}

/// The certificate served and its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsCheck {
    /// Valid, Untrusted, HostnameMismatch, Expired, NotYetValid,
    /// HandshakeFailed or ConnectFailed.
    pub reason: Reason,
    /// The leaf certificate, whenever one was presented.
    pub certificate: Option<CertificateStatus>,
    pub message: String,
}

impl TlsCheck {
    pub fn valid(&self) -> bool {
        self.reason == Reason::Valid
    }
}
