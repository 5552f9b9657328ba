//! The operator's only door to Closte: a typed client, per-account flow
//! control and a shared, cached view of each account's aliases.

pub mod account;
pub mod client;
pub mod error;
pub mod key;
pub mod limiter;
pub mod wire;

pub use account::{Account, Accounts, AddOutcome, DeleteOutcome, DomainSet};
pub use client::{ClientConfig, ClosteClient};
pub use error::{ClosteError, Disposition};
pub use key::ApiKey;
pub use limiter::FlowSettings;
