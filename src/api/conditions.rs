//! The one vocabulary of `MappedDomain.status.conditions` and of the
//! controller's events: condition types, statuses and reasons, and the one
//! setter that writes conditions. No IO, no clock.
//!
//! `Ready`, `Reconciling` and `Stalled` follow kstatus, so Flux, `helm --wait`
//! and Argo CD health checks read a MappedDomain without custom scripts.
//! Reason strings are API (alerts, `kubectl wait`, tools read them): a
//! published [`Reason::as_str`] never changes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::MappedDomainStatus;

/// The condition types the controller writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConditionType {
    /// The alias exists on the Closte site.
    Registered,
    /// The domain's DNS answer contains an expected target.
    DnsReady,
    /// The domain serves a valid certificate that covers it.
    CertificateReady,
    /// Registered, DNS ready and certificate ready: the domain is done.
    Ready,
    /// The controller is still working toward the desired state (kstatus).
    Reconciling,
    /// The controller cannot make progress without a change by a person (kstatus).
    Stalled,
}

impl ConditionType {
    /// Every type, in the order status lists them.
    pub const ALL: [ConditionType; 6] = [
        ConditionType::Registered,
        ConditionType::DnsReady,
        ConditionType::CertificateReady,
        ConditionType::Ready,
        ConditionType::Reconciling,
        ConditionType::Stalled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConditionType::Registered => "Registered",
            ConditionType::DnsReady => "DNSReady",
            ConditionType::CertificateReady => "CertificateReady",
            ConditionType::Ready => "Ready",
            ConditionType::Reconciling => "Reconciling",
            ConditionType::Stalled => "Stalled",
        }
    }
}

/// A condition's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    True,
    False,
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::True => "True",
            Status::False => "False",
            Status::Unknown => "Unknown",
        }
    }

    /// Anything but "True" or "False" reads as Unknown.
    pub fn parse(s: &str) -> Status {
        match s {
            "True" => Status::True,
            "False" => Status::False,
            _ => Status::Unknown,
        }
    }

    pub fn from_bool(b: bool) -> Status {
        if b { Status::True } else { Status::False }
    }
}

macro_rules! reasons {
    ($( $(#[$doc:meta])* $variant:ident = $text:literal, )*) => {
        /// Every reason of a condition or event, with its wire string.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Reason {
            $( $(#[$doc])* $variant, )*
        }

        impl Reason {
            pub const ALL: &'static [Reason] = &[$(Reason::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $( Reason::$variant => $text, )*
                }
            }

            /// The reason a stored string names; `None` for one this
            /// version does not know (written by another version).
            pub fn parse(s: &str) -> Option<Reason> {
                match s {
                    $( $text => Some(Reason::$variant), )*
                    _ => None,
                }
            }
        }
    };
}

reasons! {
    // Registered: on Closte
    /// This controller added the alias.
    Added = "Added",
    /// The alias was already on Closte when the controller first looked.
    Adopted = "Adopted",
    /// The alias is on Closte (seen again after a write).
    Present = "Present",
    /// The alias had vanished from Closte and was added again.
    ReRegistered = "ReRegistered",
    // Registered: not on Closte
    /// The alias is not on Closte (deleting, or removed).
    Deregistered = "Deregistered",
    /// Not looked at or not added yet.
    Pending = "Pending",
    /// `spec.suspend` stops writes.
    Suspended = "Suspended",
    /// The controller runs with `--dry-run`.
    DryRun = "DryRun",
    /// An older MappedDomain claims the same domain.
    DomainConflict = "DomainConflict",
    /// The Secret or its key named by `spec.credentialsRef` is missing.
    CredentialsNotFound = "CredentialsNotFound",
    /// No `spec.credentialsRef` and no key of the controller's own.
    NoApiKey = "NoAPIKey",
    /// No `spec.credentialsRef`, and the controller's own key does not serve
    /// the object's namespace.
    DefaultKeyNotAllowed = "DefaultKeyNotAllowed",
    /// Closte refused the API key.
    CredentialsRejected = "CredentialsRejected",
    /// Closte (or the domain rules) refused the domain.
    DomainRejected = "DomainRejected",
    /// Closte asked to slow down.
    RateLimited = "RateLimited",
    /// Closte did not answer, or answered with an error page.
    ClosteUnavailable = "ClosteUnavailable",
    /// Closte answered something the client does not understand.
    UnexpectedAnswer = "UnexpectedAnswer",
    // DNSReady and CertificateReady before a check
    /// The alias is not on Closte, so DNS and TLS are not checked.
    NotRegistered = "NotRegistered",
    /// Not checked yet.
    NotChecked = "NotChecked",
    /// CertificateReady waits for DNS (also the event when DNS stays wrong).
    DnsNotReady = "DNSNotReady",
    // DNSReady
    /// The answer contains an expected target.
    Matched = "Matched",
    /// The answer contains none of the expected targets.
    TargetMismatch = "TargetMismatch",
    /// The name does not exist.
    NxDomain = "NXDOMAIN",
    /// The name has no A or AAAA record.
    NoAnswer = "NoAnswer",
    /// The resolver failed.
    ResolverError = "ResolverError",
    /// DNS answers other addresses (a CDN or proxy), and a request to the
    /// domain came back from this network with this object's proof.
    Proxied = "Proxied",
    /// `verification: HTTP`: a request to the domain came back with this
    /// object's proof.
    Proven = "Proven",
    // the proof, when it fails
    /// The domain answered with another network's or namespace's proof.
    ProofMismatch = "ProofMismatch",
    /// The domain answered 404: nothing of this network serves it.
    ProofNotFound = "ProofNotFound",
    /// The domain answered something that is no proof (a parked page, an
    /// error, a redirect to another host).
    ProofUnexpected = "ProofUnexpected",
    /// No answer to the proof request (connection, TLS or timeout).
    ProofUnreachable = "ProofUnreachable",
    /// `verification: HTTP`, but the controller has no WordPress token for
    /// this namespace to check a proof with (`--proof-secret`).
    ProofTokenMissing = "ProofTokenMissing",
    // CertificateReady
    /// A trusted certificate that covers the domain.
    Valid = "Valid",
    /// Valid, but it expires within the warning window with no renewal in sight.
    CertificateExpiringSoon = "CertificateExpiringSoon",
    /// The chain does not lead to a trusted root.
    Untrusted = "Untrusted",
    /// The certificate does not cover the domain.
    HostnameMismatch = "HostnameMismatch",
    /// The certificate has expired.
    Expired = "Expired",
    /// The certificate is not valid yet.
    NotYetValid = "NotYetValid",
    /// The TLS handshake failed.
    HandshakeFailed = "HandshakeFailed",
    /// No TCP connection to the domain's address.
    ConnectFailed = "ConnectFailed",
    // Ready, Reconciling, Stalled
    /// Nothing left to do.
    Ready = "Ready",
    /// Working on it; nothing needs a person.
    Progressing = "Progressing",
    // events only
    /// The alias was left on Closte when the object went.
    Orphaned = "Orphaned",
    /// DNS became right.
    DnsReady = "DNSReady",
    /// A valid certificate appeared.
    CertificateIssued = "CertificateIssued",
    /// The certificate stayed wrong for too many checks.
    CertificateNotReady = "CertificateNotReady",
    /// DNS stopped pointing at the site.
    DnsLost = "DNSLost",
    /// A new certificate replaced the old one.
    CertificateRenewed = "CertificateRenewed",
}

impl Reason {
    /// Whether a Registered failure with this reason waits for a person
    /// (a slow retry) rather than for backoff.
    pub fn needs_person(self) -> bool {
        matches!(
            self,
            Reason::DomainRejected
                | Reason::CredentialsRejected
                | Reason::CredentialsNotFound
                | Reason::NoApiKey
                | Reason::DefaultKeyNotAllowed
        )
    }

    /// Whether a Registered failure with this reason is Closte's trouble
    /// (unreachable, 5xx, a rate limit, an answer not understood) rather than
    /// the object's: it may clear for every object of the account at once.
    pub fn closte_trouble(self) -> bool {
        matches!(
            self,
            Reason::ClosteUnavailable | Reason::RateLimited | Reason::UnexpectedAnswer
        )
    }

    /// A Registered reason that means no key could be used: a key that
    /// appears (or a namespace the default key comes to serve) is tried at once.
    pub fn credentials_missing(self) -> bool {
        matches!(
            self,
            Reason::CredentialsNotFound | Reason::NoApiKey | Reason::DefaultKeyNotAllowed
        )
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl MappedDomainStatus {
    /// The condition of type `type_`, if status has one.
    pub fn condition(&self, type_: ConditionType) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_.as_str())
    }

    /// Whether condition `type_` is "True".
    pub fn is_true(&self, type_: ConditionType) -> bool {
        self.condition(type_)
            .is_some_and(|c| Status::parse(&c.status) == Status::True)
    }

    /// The reason of condition `type_`, when this version knows it.
    pub fn reason(&self, type_: ConditionType) -> Option<Reason> {
        self.condition(type_).and_then(|c| Reason::parse(&c.reason))
    }
}

/// Builds the conditions of a new status. The only writer of conditions: it
/// keeps `lastTransitionTime` while a condition's status stays the same and
/// stamps every condition with the generation it describes.
pub struct ConditionSet<'a> {
    previous: &'a [Condition],
    now: &'a Time,
    generation: Option<i64>,
    out: Vec<Condition>,
}

impl<'a> ConditionSet<'a> {
    pub fn new(previous: &'a [Condition], now: &'a Time, generation: Option<i64>) -> Self {
        ConditionSet {
            previous,
            now,
            generation,
            out: Vec::with_capacity(ConditionType::ALL.len()),
        }
    }

    pub fn set(&mut self, type_: ConditionType, status: Status, reason: Reason, message: String) {
        let last_transition_time = self
            .previous
            .iter()
            .find(|c| c.type_ == type_.as_str() && c.status == status.as_str())
            .map(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| self.now.clone());
        self.out.push(Condition {
            type_: type_.as_str().into(),
            status: status.as_str().into(),
            reason: reason.as_str().into(),
            message,
            observed_generation: self.generation,
            last_transition_time,
        });
    }

    pub fn finish(self) -> Vec<Condition> {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    #[test]
    fn reason_strings_round_trip_and_stay_unique() {
        let mut seen = std::collections::HashSet::new();
        for reason in Reason::ALL {
            assert_eq!(Reason::parse(reason.as_str()), Some(*reason));
            assert!(seen.insert(reason.as_str()), "{reason} twice");
        }
        assert_eq!(Reason::parse("SomethingNew"), None);
        // published names, byte for byte
        assert_eq!(Reason::NoApiKey.as_str(), "NoAPIKey");
        assert_eq!(Reason::NxDomain.as_str(), "NXDOMAIN");
        assert_eq!(Reason::DnsNotReady.as_str(), "DNSNotReady");
        assert_eq!(ConditionType::DnsReady.as_str(), "DNSReady");
    }

    #[test]
    fn setter_keeps_transition_time_while_status_holds() {
        let t0 = Time(Timestamp::from_second(1_800_000_000).unwrap());
        let t1 = Time(Timestamp::from_second(1_800_000_600).unwrap());
        let mut first = ConditionSet::new(&[], &t0, Some(1));
        first.set(
            ConditionType::Ready,
            Status::False,
            Reason::Pending,
            "a".into(),
        );
        first.set(
            ConditionType::Registered,
            Status::True,
            Reason::Added,
            "b".into(),
        );
        let first = first.finish();
        let mut second = ConditionSet::new(&first, &t1, Some(2));
        second.set(
            ConditionType::Ready,
            Status::True,
            Reason::Ready,
            "c".into(),
        );
        second.set(
            ConditionType::Registered,
            Status::True,
            Reason::Present,
            "d".into(),
        );
        let second = second.finish();
        assert_eq!(second[0].last_transition_time, t1, "Ready flipped");
        assert_eq!(second[1].last_transition_time, t0, "Registered held");
        assert!(second.iter().all(|c| c.observed_generation == Some(2)));
        let status = MappedDomainStatus {
            conditions: second,
            ..Default::default()
        };
        assert!(status.is_true(ConditionType::Ready));
        assert_eq!(
            status.reason(ConditionType::Registered),
            Some(Reason::Present)
        );
        assert!(status.condition(ConditionType::Stalled).is_none());
    }
}
