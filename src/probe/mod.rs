//! Observing the outside world like WordPress does, but better: what a domain
//! resolves to, and which certificate it serves.

pub mod dns;
pub mod tls;
