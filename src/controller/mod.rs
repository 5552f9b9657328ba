//! `closte-operator controller`: wires the pieces together. A pass is in
//! [`reconcile`] (on [`gather`] and [`crate::plan`]); what is watched and
//! kept is in [`watch`] (new and changed objects, served first, in [`fresh`],
//! unwritten checks' schedules in [`schedules`]); whose API requests go
//! first in [`gate`]; leader election in
//! [`leader`]; the endpoints in [`health`].

mod args;
mod events;
mod fresh;
pub mod gate;
pub mod gather;
mod heal;
mod health;
mod leader;
mod reconcile;
mod schedules;
mod watch;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};

use kube::Client;

pub use args::ControllerArgs;

use crate::closte::{Accounts, ApiKey, ClosteClient};
use crate::fence::Fence;
use crate::index::Index;
use crate::metrics::Metrics;
use crate::plan::DefaultKeyScope;
use crate::probe::Prober;

/// The field manager of every write the controller makes.
pub const FIELD_MANAGER: &str = "closte-operator";

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("cannot reach Kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Key(#[from] crate::closte::key::KeyError),
    #[error(transparent)]
    Client(#[from] crate::closte::client::BuildError),
    #[error(transparent)]
    Probe(#[from] crate::probe::ProbeError),
    #[error("cannot serve metrics on {addr}: {source}")]
    Metrics {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Why a pass failed (it is retried soon).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("object has no namespace")]
    NoNamespace,
    /// The default key's selector needs namespaces' labels, and the watch
    /// has not listed them yet (or cannot: it needs list/watch on Namespaces).
    #[error(
        "Namespaces not listed yet: the default key's namespace selector cannot be decided (the controller needs get/list/watch on namespaces)"
    )]
    NamespacesNotSynced,
    /// This replica's leadership term ended: the pass stops, writing nothing.
    #[error(transparent)]
    Fenced(#[from] crate::fence::Fenced),
}

/// What every reconcile pass shares.
pub struct Context {
    sources: gather::Sources,
    publisher: events::Publisher,
    metrics: Arc<Metrics>,
    /// New and changed objects, served first (new ones as the watch
    /// brought them).
    fresh: Arc<fresh::FreshObjects>,
    /// The turns of periodic passes.
    turns: fresh::Turns,
    /// DNS/TLS checks in flight, as many as API requests: a check's
    /// connections and TLS buffers are what passes would otherwise hold
    /// four times over (see [`gate`]).
    checks: tokio::sync::Semaphore,
    /// Checks' schedules kept in place of status writes.
    schedules: schedules::Schedules,
    /// Open while this replica may write (always, without leader election).
    fence: Fence,
    /// Per object (uid), the label of the key Closte last rejected, so a new
    /// key in the Secret is tried at once.
    rejected_keys: Mutex<HashMap<String, String>>,
}

pub async fn run(args: ControllerArgs) -> Result<(), ControllerError> {
    crate::tls::install_crypto_provider();
    let client = Client::try_default().await?;
    let default_key = default_key(&args)?;
    let metrics = Arc::new(Metrics::new());
    let observer_metrics = metrics.clone();
    let closte = ClosteClient::new(&args.closte.client_config())?.with_observer(Arc::new(
        move |endpoint, outcome, took| {
            observer_metrics.closte_request(endpoint.path(), outcome, took)
        },
    ));
    let flow = args.flow();
    let health = Arc::new(health::Health {
        metrics: metrics.clone(),
        ..health::Health::default()
    });
    let index = Arc::new(RwLock::new(Index::default()));
    let server = tokio::spawn(health::serve(
        args.metrics_addr,
        health.clone(),
        index.clone(),
    ));
    tokio::spawn(crate::memory::trim_periodically());
    let identity = format!(
        "{}-{:08x}",
        std::env::var("POD_NAME").unwrap_or_else(|_| "closte-operator".into()),
        fastrand::u32(..)
    );
    let fence = if args.leader_elect {
        Fence::leased()
    } else {
        Fence::unfenced()
    };
    let accounts = Accounts::new(closte, flow, args.resync_period).with_fence(fence.clone());
    let reconciler = watch::Reconciler {
        client: client.clone(),
        accounts: Arc::new(accounts),
        default_key,
        default_key_scope: default_key_scope(&args),
        settings: args.settings(),
        metrics,
        prober: Arc::new(Prober::from_args(&args.probe)?),
        health,
        index,
        namespace: args.namespace.clone(),
        selector: args.selector.clone(),
        watch_secrets: args.watch_secrets,
        concurrency: args.concurrency,
        identity: identity.clone(),
        fence: fence.clone(),
    };
    if args.dry_run {
        tracing::warn!("dry run: Closte writes are decided and reported, never sent");
    }
    let signal = crate::shutdown::signal(); // handlers installed now
    let stop = async {
        signal.await;
        tracing::info!("shutting down");
    };
    let controllers = async {
        if !args.leader_elect {
            tokio::select! {
                () = reconciler.run() => {}
                () = stop => {}
            }
            return Ok(());
        }
        let election = leader::Election {
            lease: args.lease_name.clone(),
            namespace: args
                .lease_namespace
                .clone()
                .unwrap_or_else(|| client.default_namespace().to_owned()),
            identity,
            timing: leader::Timing::from_lease(args.lease_duration),
        };
        leader::lead_then_reconcile(election, fence, reconciler, stop).await
    };
    tokio::select! {
        result = controllers => result,
        result = server => result.unwrap_or(Ok(())),
    }
}

fn default_key(args: &ControllerArgs) -> Result<Option<ApiKey>, ControllerError> {
    match args.key.load() {
        Ok(key) => Ok(Some(key)),
        Err(crate::closte::key::KeyError::Missing) => {
            tracing::warn!(
                "no default Closte API key: only MappedDomains with spec.credentialsRef can be reconciled"
            );
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// The default key's scope, logged once: it decides who spends the platform's account.
fn default_key_scope(args: &ControllerArgs) -> DefaultKeyScope {
    let scope = args.default_key_scope();
    match &scope {
        DefaultKeyScope::Everywhere => tracing::info!(
            "the default Closte API key serves every namespace (neither --default-key-namespaces nor --default-key-namespace-selector given)"
        ),
        DefaultKeyScope::Only {
            namespaces,
            selector,
        } => tracing::info!(
            namespaces = ?namespaces,
            selector = %selector.as_ref().map_or_else(|| "-".to_owned(), ToString::to_string),
            "the default Closte API key serves only these namespaces and those whose labels match the selector"
        ),
    }
    scope
}
