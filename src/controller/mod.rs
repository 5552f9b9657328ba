//! `closte-operator controller`: the kube-runtime Controller on MappedDomain,
//! its leader election, and the /metrics, /healthz and /readyz endpoints.

mod reconcile;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::core::PartialObjectMeta;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher;
use kube::runtime::{Controller, WatchStreamExt};
use kube::{Api, Client, ResourceExt};
use tokio::sync::RwLock;

use crate::api::{MappedDomain, RECONCILE_REQUESTED_AT};
use crate::closte::{Accounts, ApiKey, ClosteArgs, ClosteClient, FlowSettings};
use crate::metrics::Metrics;
use crate::plan::Settings;

/// The field manager of every write the controller makes.
pub const FIELD_MANAGER: &str = "closte-operator";

#[derive(Debug, clap::Args)]
pub struct ControllerArgs {
    #[command(flatten)]
    pub closte: ClosteArgs,
    /// File holding the controller's own Closte API key (without it, CLOSTE_CLIENT_API_KEY is read); objects with spec.credentialsRef use their Secret instead.
    #[arg(long)]
    pub api_key_file: Option<PathBuf>,
    /// Watch MappedDomains in this namespace only; all namespaces when unset.
    #[arg(long)]
    pub namespace: Option<String>,
    /// How often each account's alias list is re-read and settled objects are looked at again.
    #[arg(long, default_value = "300s", value_parser = crate::api::duration::parse_flag)]
    pub resync_period: Duration,
    /// Closte writes per second, per account.
    #[arg(long, default_value_t = 10.0)]
    pub closte_write_rate: f64,
    /// Closte requests in flight at once, per account.
    #[arg(long, default_value_t = 4)]
    pub closte_max_in_flight: usize,
    /// Decide and report Closte writes without doing them.
    #[arg(long)]
    pub dry_run: bool,
    /// Reconcile passes running at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: u16,
    /// Elect a leader through a Lease so that one replica writes at a time.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// Name of the leader election Lease.
    #[arg(long, default_value = "closte-operator")]
    pub lease_name: String,
    /// Namespace of the Lease; default: the pod's namespace in a cluster, else the kubeconfig context's, else "default".
    #[arg(long)]
    pub lease_namespace: Option<String>,
    /// How long a leader's Lease lasts without renewal; a follower takes over after it.
    #[arg(long, default_value = "15s", value_parser = crate::api::duration::parse_flag)]
    pub lease_duration: Duration,
    /// DNS server (ADDR:PORT) for the checks; the system's resolver when unset.
    #[arg(long)]
    pub dns_server: Option<SocketAddr>,
    /// Where correct DNS points (an IP or a hostname) for objects without spec.expectedTargets; repeatable. Without any, any address counts.
    #[arg(long = "expected-target")]
    pub expected_targets: Vec<String>,
    /// Port of the TLS check.
    #[arg(long, default_value_t = 443)]
    pub https_port: u16,
    /// PEM file of CAs the TLS check trusts besides the public (webpki) roots.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Time limit of one DNS query or TLS handshake.
    #[arg(long, default_value = "10s", value_parser = crate::api::duration::parse_flag)]
    pub probe_timeout: Duration,
    /// DNS/TLS checks running at once.
    #[arg(long, default_value_t = 32)]
    pub max_concurrent_probes: usize,
    /// Checks in one stage before it is reported failed (stage failed or ssl-failed); checking goes on, slower.
    #[arg(long, default_value_t = 6)]
    pub max_attempts: u32,
    /// Warn (CertificateExpiringSoon) when the certificate expires within this and no renewed one has appeared.
    #[arg(long, default_value = "336h", value_parser = crate::api::duration::parse_flag)]
    pub renew_warning: Duration,
    /// How often a done domain is checked again.
    #[arg(long, default_value = "12h", value_parser = crate::api::duration::parse_flag)]
    pub done_recheck: Duration,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
}

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("cannot reach Kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Key(#[from] crate::closte::key::KeyError),
    #[error(transparent)]
    Client(#[from] crate::closte::client::BuildError),
    #[error("leader election: {0}")]
    Lease(#[from] kube_lease_manager::LeaseManagerError),
    #[error("DNS/TLS checks: {0}")]
    Probe(String),
    #[error("cannot serve metrics on {addr}: {source}")]
    Metrics {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// What every reconcile pass shares.
pub struct Context {
    client: Client,
    store: Store<MappedDomain>,
    accounts: Arc<Accounts>,
    default_key: Option<ApiKey>,
    settings: Settings,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    prober: Arc<crate::probe::Prober>,
    /// Per object (uid), the label of the key Closte last rejected, so a new
    /// key in the Secret is tried at once.
    rejected_keys: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// Per object (uid), the resourceVersion of this controller's last write.
    last_write: std::sync::Mutex<std::collections::HashMap<String, u64>>,
}

impl Context {
    /// Remembers the version a write of this controller produced.
    fn wrote(&self, uid: &str, written: &MappedDomain) {
        if let Some(version) = written.resource_version().and_then(|v| v.parse().ok()) {
            self.last_write
                .lock()
                .unwrap()
                .insert(uid.to_owned(), version);
        }
    }

    fn forget(&self, uid: &str) {
        self.last_write.lock().unwrap().remove(uid);
    }

    /// Whether `md` is older than this controller's last write of it. A pass
    /// on such a copy would undo that write (Added read back as Adopted, a
    /// backoff restarted). resourceVersions are compared as the etcd revisions
    /// they are; a non-numeric one is never called stale.
    fn is_stale(&self, uid: &str, md: &MappedDomain) -> bool {
        let seen: Option<u64> = md.resource_version().and_then(|v| v.parse().ok());
        let written = self.last_write.lock().unwrap().get(uid).copied();
        matches!((seen, written), (Some(seen), Some(written)) if seen < written)
    }
}

/// What the health and metrics endpoints read.
#[derive(Default)]
struct Health {
    metrics: Arc<Metrics>,
    store: RwLock<Option<Store<MappedDomain>>>,
    synced: AtomicBool,
    /// True while this replica is a follower: it is ready with nothing to sync.
    following: AtomicBool,
}

async fn serve_health(addr: SocketAddr, health: Arc<Health>) -> Result<(), ControllerError> {
    async fn metrics(State(h): State<Arc<Health>>) -> impl IntoResponse {
        let objects = h
            .store
            .read()
            .await
            .as_ref()
            .map(Store::state)
            .unwrap_or_default();
        let body = h.metrics.render(&objects, h.synced.load(Ordering::Relaxed));
        (
            [(
                "content-type",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
    }
    async fn ready(State(h): State<Arc<Health>>) -> StatusCode {
        if h.synced.load(Ordering::Relaxed) || h.following.load(Ordering::Relaxed) {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .with_state(health);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ControllerError::Metrics { addr, source })?;
    tracing::info!(addr = %listener.local_addr().map_err(|source| ControllerError::Metrics { addr, source })?, "serving /metrics, /healthz and /readyz");
    axum::serve(listener, app)
        .await
        .map_err(|source| ControllerError::Metrics { addr, source })
}

pub async fn run(args: ControllerArgs) -> Result<(), ControllerError> {
    crate::tls::install_crypto_provider();
    let client = Client::try_default().await?;
    let env_key = std::env::var("CLOSTE_CLIENT_API_KEY").ok();
    let default_key = match ApiKey::from_file_or_env(
        args.api_key_file.as_deref(),
        env_key.as_deref(),
    ) {
        Ok(key) => Some(key),
        Err(crate::closte::key::KeyError::Missing) => {
            tracing::warn!(
                "no default Closte API key: only MappedDomains with spec.credentialsRef can be reconciled"
            );
            None
        }
        Err(e) => return Err(e.into()),
    };
    let metrics = Arc::new(Metrics::new());
    let observer_metrics = metrics.clone();
    let closte = ClosteClient::new(&args.closte.client_config())?.with_observer(Arc::new(
        move |endpoint, outcome, took| {
            observer_metrics.closte_request(endpoint.path(), outcome, took)
        },
    ));
    let flow = FlowSettings {
        write_rate: args.closte_write_rate,
        max_in_flight: args.closte_max_in_flight,
    };
    let accounts = Arc::new(Accounts::new(closte, flow, args.resync_period));
    let health = Arc::new(Health {
        metrics: metrics.clone(),
        ..Health::default()
    });
    let server = tokio::spawn(serve_health(args.metrics_addr, health.clone()));
    let identity = format!(
        "{}-{:08x}",
        std::env::var("POD_NAME").unwrap_or_else(|_| "closte-operator".into()),
        fastrand::u32(..)
    );
    let settings = Settings {
        dry_run: args.dry_run,
        resync: args.resync_period,
        probe: crate::plan::ProbeSettings {
            max_attempts: args.max_attempts.max(1),
            renew_warning: args.renew_warning,
            done_recheck: args.done_recheck,
        },
    };
    let extra_ca =
        match &args.ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                ControllerError::Probe(format!("cannot read {}: {e}", path.display()))
            })?),
            None => None,
        };
    let prober = Arc::new(crate::probe::Prober {
        resolver: Arc::new(
            crate::probe::dns::HickoryResolve::new(args.dns_server, args.probe_timeout)
                .map_err(ControllerError::Probe)?,
        ),
        tls: crate::probe::tls::TlsProber::new(
            extra_ca.as_deref(),
            args.https_port,
            args.probe_timeout,
        )
        .map_err(|e| ControllerError::Probe(e.to_string()))?,
        in_flight: tokio::sync::Semaphore::new(args.max_concurrent_probes.max(1)),
        default_targets: args.expected_targets.clone(),
    });
    let work = Work {
        client: client.clone(),
        accounts,
        default_key,
        settings,
        metrics,
        prober,
        health: health.clone(),
        namespace: args.namespace.clone(),
        concurrency: args.concurrency,
        identity: identity.clone(),
    };
    if args.dry_run {
        tracing::warn!("dry run: Closte writes are decided and reported, never sent");
    }
    let controllers = async {
        if args.leader_elect {
            let namespace = args
                .lease_namespace
                .clone()
                .unwrap_or_else(|| client.default_namespace().to_owned());
            lead_then_work(
                &args.lease_name,
                &namespace,
                args.lease_duration,
                identity,
                work,
            )
            .await
        } else {
            work.run().await;
            Ok(())
        }
    };
    tokio::select! {
        result = controllers => result,
        result = server => result.unwrap_or(Ok(())),
        () = shutdown_signal() => {
            tracing::info!("shutting down");
            Ok(())
        }
    }
}

/// Waits for the lease, works while holding it, and stops at once on losing it.
async fn lead_then_work(
    lease: &str,
    namespace: &str,
    duration: Duration,
    identity: String,
    work: Work,
) -> Result<(), ControllerError> {
    let seconds = duration.as_secs().max(2);
    let manager = kube_lease_manager::LeaseManagerBuilder::new(work.client.clone(), lease)
        .with_namespace(namespace)
        .with_identity(identity.clone())
        .with_duration(seconds)
        .with_grace((seconds / 3).max(1))
        // no shared field manager: the library's lock relies on each candidate
        // applying under its own, so two candidates conflict instead of both winning
        .build()
        .await?;
    let (mut leading, _task) = manager.watch().await;
    tracing::info!(%lease, %namespace, %identity, "waiting for the leader lease");
    loop {
        work.health.following.store(true, Ordering::Relaxed);
        if leading.wait_for(|l| *l).await.is_err() {
            return Ok(());
        }
        tracing::info!(%identity, "became leader");
        work.health.following.store(false, Ordering::Relaxed);
        work.metrics.leader.set(1);
        tokio::select! {
            () = work.run() => tracing::error!("the controller stopped while leading"),
            _ = leading.wait_for(|l| !*l) => {
                tracing::warn!(%identity, "lost the leader lease: stopped reconciling");
            }
        }
        work.metrics.leader.set(0);
        work.health.synced.store(false, Ordering::Relaxed);
    }
}

/// Everything needed to start the controller, as often as leadership comes back.
struct Work {
    client: Client,
    accounts: Arc<Accounts>,
    default_key: Option<ApiKey>,
    settings: Settings,
    metrics: Arc<Metrics>,
    prober: Arc<crate::probe::Prober>,
    health: Arc<Health>,
    namespace: Option<String>,
    concurrency: u16,
    identity: String,
}

impl Work {
    async fn run(&self) {
        let api: Api<MappedDomain> = match &self.namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        };
        let secrets: Api<PartialObjectMeta<Secret>> = match &self.namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        };
        let (reader, writer) = reflector::store();
        *self.health.store.write().await = Some(reader.clone());
        let (nudge, nudged) = tokio::sync::mpsc::unbounded_channel::<ObjectRef<MappedDomain>>();
        let rivals_of = reader.clone();
        let health = self.health.clone();
        // Keep in memory only what the controller reads.
        let slim = |md: &mut MappedDomain| {
            md.managed_fields_mut().clear();
            md.annotations_mut()
                .retain(|k, _| k == RECONCILE_REQUESTED_AT);
            md.labels_mut().clear();
        };
        let objects = reflector::reflector(
            writer,
            watcher(api, watcher::Config::default())
                .default_backoff()
                .modify(slim),
        )
        .inspect_ok(move |event| match event {
            // a deleted object may free its domain for another
            watcher::Event::Delete(md) => {
                for rival in reconcile::rivals(md, &rivals_of) {
                    let _ = nudge.send(rival);
                }
            }
            watcher::Event::InitDone if !health.synced.swap(true, Ordering::Relaxed) => {
                tracing::info!("watch cache synced");
            }
            _ => {}
        })
        .applied_objects();
        let secret_users = reader.clone();
        let secret_changes = watcher(secrets, watcher::Config::default())
            .default_backoff()
            .touched_objects();
        let ctx = Arc::new(Context {
            client: self.client.clone(),
            store: reader.clone(),
            accounts: self.accounts.clone(),
            default_key: self.default_key.clone(),
            settings: self.settings,
            recorder: Recorder::new(
                self.client.clone(),
                Reporter {
                    controller: FIELD_MANAGER.into(),
                    instance: Some(self.identity.clone()),
                },
            ),
            metrics: self.metrics.clone(),
            prober: self.prober.clone(),
            rejected_keys: Default::default(),
            last_write: Default::default(),
        });
        let nudges =
            futures::stream::unfold(
                nudged,
                |mut rx| async move { rx.recv().await.map(|r| (r, rx)) },
            );
        Controller::for_stream(objects, reader)
            .with_config(kube::runtime::controller::Config::default().concurrency(self.concurrency))
            .reconcile_on(nudges)
            .watches_stream(secret_changes, move |secret| {
                let ns = secret.namespace();
                let name = secret.name_any();
                secret_users
                    .state()
                    .iter()
                    .filter(|md| md.namespace() == ns)
                    .filter(|md| {
                        md.spec
                            .credentials_ref
                            .as_ref()
                            .is_some_and(|r| r.name == name)
                    })
                    .map(|md| ObjectRef::from_obj(md.as_ref()))
                    .collect::<Vec<_>>()
            })
            .run(reconcile::reconcile, reconcile::error_policy, ctx)
            .for_each(|result| async move {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "reconcile error");
                }
            })
            .await;
    }
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
