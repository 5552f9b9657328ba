//! The operator's only door to Closte: a typed client, per-account flow
//! control and a shared, cached view of each account's aliases.

pub mod account;
pub mod client;
pub mod error;
pub mod key;
pub mod limiter;
pub mod reachability;
pub mod wire;

pub use account::{Account, AccountId, Accounts, AddOutcome, DeleteOutcome};
pub use client::{ClientConfig, ClosteClient};
pub use error::{ClosteError, Disposition};
pub use key::{ApiKey, KeyArgs};
pub use limiter::FlowSettings;

use std::time::Duration;

use crate::api::duration::flag_default;

/// Command-line settings for reaching Closte, shared by every subcommand that does.
#[derive(Debug, Clone, clap::Args)]
pub struct ClosteArgs {
    /// Base URL of Closte's client API.
    #[arg(long, env = "CLOSTE_API_URL", default_value = client::DEFAULT_BASE_URL)]
    pub closte_api_url: String,
    /// How long to wait for a connection to Closte.
    #[arg(long, default_value = flag_default(ClientConfig::CONNECT_TIMEOUT), value_parser = crate::api::duration::parse_flag)]
    pub closte_connect_timeout: Duration,
    /// How long to wait for a whole Closte request.
    #[arg(long, default_value = flag_default(ClientConfig::TIMEOUT), value_parser = crate::api::duration::parse_flag)]
    pub closte_timeout: Duration,
}

impl ClosteArgs {
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig {
            base_url: self.closte_api_url.clone(),
            connect_timeout: self.closte_connect_timeout,
            timeout: self.closte_timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        closte: ClosteArgs,
    }

    #[test]
    fn flag_defaults_are_the_client_defaults() {
        let config = Cli::try_parse_from(["closte"])
            .unwrap()
            .closte
            .client_config();
        let default = ClientConfig::default();
        assert_eq!(config.connect_timeout, default.connect_timeout);
        assert_eq!(config.timeout, default.timeout);
    }
}
