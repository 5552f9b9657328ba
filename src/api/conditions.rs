//! Condition types and reasons of `MappedDomain.status.conditions`.
//!
//! `Ready`, `Reconciling` and `Stalled` follow kstatus, so Flux, `helm --wait`
//! and Argo CD health checks read a MappedDomain without custom scripts.

/// The alias exists on the Closte site.
pub const REGISTERED: &str = "Registered";
/// The domain's DNS answer contains an expected target.
pub const DNS_READY: &str = "DNSReady";
/// The domain serves a valid certificate that covers it.
pub const CERTIFICATE_READY: &str = "CertificateReady";
/// Registered, DNS ready and certificate ready: the domain is done.
pub const READY: &str = "Ready";
/// The controller is still working toward the desired state (kstatus).
pub const RECONCILING: &str = "Reconciling";
/// The controller cannot make progress without a change by a person (kstatus).
pub const STALLED: &str = "Stalled";

/// Every condition type the controller writes, in display order.
pub const ALL: [&str; 6] = [
    REGISTERED,
    DNS_READY,
    CERTIFICATE_READY,
    READY,
    RECONCILING,
    STALLED,
];
