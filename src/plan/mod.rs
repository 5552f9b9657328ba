//! The pure decision of the controller. A pass is gather (IO) → [`decide`]
//! (pure) → act (IO) → [`conclude`] (pure) → write (IO):
//!
//! - [`decide`] turns the [`Facts`] into a [`Plan`]: wait out a backoff, or
//!   run one Closte [`Action`], after putting the [`Finalizer`] on (the one
//!   that carries the ownership intent before an add);
//! - [`Acted::new`] reads where the action's [`Outcome`] leaves the alias,
//!   and says whether a DNS/TLS [`Check`] is due;
//! - [`conclude`] gives the new status, the events, whether the finalizer
//!   goes, and when to look again.
//!
//! No IO, no clock, no randomness of its own, and nothing from the IO
//! modules: `now` and `jitter` are arguments, and Closte, DNS and TLS results
//! arrive converted into this module's types.

pub mod backoff;
pub mod checks;
mod conclude;
mod conditions;
mod decide;
mod default_key;
mod events;
mod facts;
pub mod proof;
mod registration;

use std::time::Duration;

pub use checks::ProbeSettings;
pub use conclude::{Acted, Conclusion, conclude};
pub use decide::{Action, Plan, answered_since, decide, observes, retry_wait, waiting_on_closte};
pub use default_key::DefaultKeyScope;
pub use events::Note;
pub use facts::{
    Check, ConflictWinner, Credentials, DnsCheck, Facts, Failure, Finalizer, Observation, Outcome,
    Retry, TlsCheck,
};
pub use registration::Registration;

/// How the controller is configured, as far as decisions go.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Log and report Closte writes instead of doing them.
    pub dry_run: bool,
    /// How often a settled object is looked at again (drift, expiry).
    pub resync: Duration,
    /// How DNS/TLS checks are paced.
    pub probe: ProbeSettings,
}

impl Settings {
    /// The default of `--resync-period`.
    pub const RESYNC: Duration = Duration::from_secs(300);
}

/// The controller's flag defaults (the flags take them from here).
impl Default for Settings {
    fn default() -> Self {
        Settings {
            dry_run: false,
            resync: Self::RESYNC,
            probe: ProbeSettings::default(),
        }
    }
}

/// Requeue for errors that need a person (rejected key or domain, missing Secret).
pub const SLOW_RETRY: Duration = Duration::from_secs(300);

#[cfg(test)]
mod tests;
