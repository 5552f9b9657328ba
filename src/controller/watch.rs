//! What the controller watches and keeps: one watch of MappedDomains that
//! feeds the [`Index`] (a compact claim per object) and a store of bare stubs (name
//! and namespace) for the kube-runtime Controller, plus (opt-in) a watch of Secrets'
//! metadata mapped to their users through the index, and (with
//! `--default-key-namespace-selector`) a watch of Namespaces' labels. Whole
//! objects are kept only as [`FreshObjects`] says: new ones, and copies of
//! those on their way to Ready, within a bound; other passes read.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Config;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{Controller, PredicateConfig, WatchStreamExt, predicates};
use kube::{Api, Client, ResourceExt};
use tokio::sync::mpsc::UnboundedSender;

use super::events::Publisher;
use super::fresh::FreshObjects;
use super::gate::{ApiGate, passes};
use super::gather::Sources;
use super::health::Health;
use super::{Context, FIELD_MANAGER, reconcile};
use crate::api::MappedDomain;
use crate::closte::{Accounts, ApiKey};
use crate::fence::Fence;
use crate::index::{Claim, Index, ObjectKey};
use crate::metrics::Metrics;
use crate::plan::{DefaultKeyScope, Settings};
use crate::probe::Prober;

/// What the Controller caches per object: a stub with its name and
/// namespace, nothing else.
pub(super) type Stub = PartialObjectMeta<MappedDomain>;

/// Objects per page of the initial list: bounds the memory a (re-)list takes.
const LIST_PAGE: u32 = 250;

/// How long the Controller waits for the first list of Namespaces (the
/// default key's selector) before it starts without them; passes that need
/// them then fail and are retried until they come.
const NAMESPACES_LIST_WAIT: Duration = Duration::from_secs(10);

/// Everything needed to start the controller, as often as leadership comes back.
pub struct Reconciler {
    pub client: Client,
    pub accounts: Arc<Accounts>,
    pub default_key: Option<ApiKey>,
    /// Where the default key may be used.
    pub default_key_scope: DefaultKeyScope,
    pub settings: Settings,
    pub metrics: Arc<Metrics>,
    pub prober: Arc<Prober>,
    pub health: Arc<Health>,
    /// The claims the watch keeps; passes, the heal loop and /metrics read it.
    pub index: Arc<RwLock<Index>>,
    pub namespace: Option<String>,
    /// Label selector of the MappedDomains this controller serves.
    pub selector: Option<String>,
    /// Watch Secrets (metadata) so a changed key is tried at once.
    pub watch_secrets: bool,
    pub concurrency: u16,
    pub identity: String,
    /// Open while this replica may write.
    pub fence: Fence,
}

impl Reconciler {
    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        match &self.namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        }
    }

    /// Runs the Controller until the watch ends (it does not, but for errors
    /// it cannot recover from).
    pub async fn run(&self) {
        let index = self.index.clone();
        let (reader, writer) = reflector::store::<Stub>();
        let (nudge, nudged) = tokio::sync::mpsc::unbounded_channel::<ObjectRef<Stub>>();
        let health = self.health.clone();
        let feed = index.clone();
        let fresh = Arc::new(FreshObjects::default());
        let fresh_feed = fresh.clone();
        // its own task: sharing the Controller's (select!) slowed the passes,
        // 2,000 new domains took 1.18 x the write-rate bound instead of 1.01 x;
        // it goes with the Controller
        let _heal = AbortOnDrop(tokio::spawn(super::heal::run(
            self.accounts.clone(),
            index.clone(),
            nudge.clone(),
        )));
        // the default key's selector needs namespaces' labels; a change of
        // them re-decides the namespace's objects
        let (namespaces, _namespace_watch) = match self.default_key_scope.selector() {
            Some(_) => {
                let (reader, writer) = reflector::store();
                let task = tokio::spawn(watch_namespaces(
                    self.client.clone(),
                    writer,
                    index.clone(),
                    nudge.clone(),
                ));
                (Some(reader), Some(AbortOnDrop(task)))
            }
            None => (None, None),
        };
        if let Some(store) = &namespaces {
            let listed = tokio::time::timeout(NAMESPACES_LIST_WAIT, store.wait_until_ready()).await;
            if !matches!(listed, Ok(Ok(()))) {
                tracing::warn!(
                    "Namespaces not listed yet: objects without spec.credentialsRef outside --default-key-namespaces wait for them"
                );
            }
        }
        let mut config = watcher::Config::default().page_size(LIST_PAGE);
        if let Some(selector) = &self.selector {
            config = config.labels(selector);
        }
        let events = watcher::watcher(self.api::<MappedDomain>(), config)
            .default_backoff()
            .try_filter_map(move |event| {
                let event = index_event(&feed, &fresh_feed, &nudge, &health, event);
                futures::future::ready(Ok(event))
            });
        let stubs = reflector::reflector(writer, events).applied_objects();
        // Watching Secrets needs list/watch on all of them, which many cluster
        // owners refuse; without it a pass reads its Secret by name, so a new
        // key is seen on the next pass rather than at once.
        let secrets = if self.watch_secrets {
            watcher::watcher(
                self.api::<PartialObjectMeta<Secret>>(),
                watcher::Config::default(),
            )
            .default_backoff()
            .touched_objects()
            .boxed()
        } else {
            futures::stream::empty().boxed()
        };
        let users = index.clone();
        let gate = ApiGate::new(usize::from(self.concurrency));
        let ctx = Arc::new(Context {
            sources: Sources {
                client: self.client.clone(),
                gate: gate.clone(),
                accounts: self.accounts.clone(),
                default_key: self.default_key.clone(),
                default_key_scope: self.default_key_scope.clone(),
                namespaces,
                prober: self.prober.clone(),
                settings: self.settings,
                index,
            },
            publisher: Publisher::spawn(self.client.clone(), gate, FIELD_MANAGER, &self.identity),
            metrics: self.metrics.clone(),
            fresh,
            turns: super::fresh::Turns::new(self.concurrency),
            checks: tokio::sync::Semaphore::new(usize::from(self.concurrency)),
            schedules: Default::default(),
            fence: self.fence.clone(),
            rejected_keys: Mutex::new(HashMap::new()),
        });
        let nudges =
            futures::stream::unfold(
                nudged,
                |mut rx| async move { rx.recv().await.map(|r| (r, rx)) },
            );
        let controller = Controller::for_stream(stubs, reader)
            .with_config(Config::default().concurrency(passes(self.concurrency)))
            .reconcile_on(nudges)
            .watches_stream(secrets, move |secret| {
                let ns = secret.namespace().unwrap_or_default();
                let users = users
                    .read()
                    .unwrap()
                    .users_of_secret(&ns, &secret.name_any());
                users
                    .into_iter()
                    .map(|key| stub_ref(&key))
                    .collect::<Vec<_>>()
            })
            .run(reconcile::reconcile, reconcile::error_policy, ctx)
            .for_each(|result| async move {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "reconcile error");
                }
            });
        controller.await;
    }
}

/// Keeps every namespace's labels in `store` and nudges the objects without
/// `spec.credentialsRef` in a namespace whose labels changed (or appeared):
/// the change may give them the default key or take it away. Its own task,
/// so the store fills however busy the Controller's passes are.
async fn watch_namespaces(
    client: Client,
    store: reflector::store::Writer<PartialObjectMeta<Namespace>>,
    index: Arc<RwLock<Index>>,
    nudge: UnboundedSender<ObjectRef<Stub>>,
) {
    let changed = watcher::watcher(
        Api::<PartialObjectMeta<Namespace>>::all(client),
        watcher::Config::default(),
    )
    .default_backoff()
    .modify(|ns| {
        // labels are what counts
        ns.metadata.managed_fields = None;
        ns.metadata.annotations = None;
    })
    .reflect(store)
    .applied_objects()
    .predicate_filter(predicates::labels, PredicateConfig::default());
    let mut changed = std::pin::pin!(changed);
    while let Some(namespace) = changed.next().await {
        let namespace = match namespace {
            Ok(namespace) => namespace.name_any(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch Namespaces for the default key's namespace selector (needs get/list/watch on namespaces)");
                continue;
            }
        };
        let users = index.read().unwrap().default_key_users(&namespace);
        if !users.is_empty() {
            tracing::debug!(%namespace, objects = users.len(), "namespace labels changed: deciding the default key again");
        }
        for key in users {
            let _ = nudge.send(stub_ref(&key));
        }
    }
}

/// A task that ends when its handle is dropped: the heal loop must not
/// outlive the Controller it nudges (leadership lost, shutdown).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Applies a watch event to the index, marks a new or changed object
/// fresh (keeping copies as [`FreshObjects`] says), nudges the rivals of a claim that went (after the index has
/// forgotten it), and passes the event on with only the object's stub,
/// unless it changed nothing a pass reacts to (this controller's own status
/// and finalizer writes): those would only cost a pass and a read.
fn index_event(
    index: &RwLock<Index>,
    fresh: &FreshObjects,
    nudge: &UnboundedSender<ObjectRef<Stub>>,
    health: &Health,
    event: Event<MappedDomain>,
) -> Option<Event<Stub>> {
    let mut rivals = Vec::new();
    let event = {
        let mut index = index.write().unwrap();
        match event {
            Event::Init => {
                index.reset_begin();
                Event::Init
            }
            Event::InitApply(md) => {
                index.apply(Claim::from_resource(&md));
                fresh.offer(&md, false);
                Event::InitApply(stub_of(&md))
            }
            Event::InitDone => {
                rivals = index.reset_done();
                Event::InitDone
            }
            Event::Apply(md) => {
                let news = index.apply(Claim::from_resource(&md));
                fresh.offer(&md, news);
                if !news {
                    return None;
                }
                Event::Apply(stub_of(&md))
            }
            Event::Delete(md) => {
                fresh.forget(&md);
                let claim = Claim::from_resource(&md);
                rivals = index.delete(&claim.key);
                Event::Delete(stub_of(&md))
            }
        }
    };
    if matches!(event, Event::InitDone) && !health.synced.swap(true, Ordering::Relaxed) {
        tracing::info!("watch cache synced");
    }
    for rival in rivals {
        // a claim that went may free its domain for another
        let _ = nudge.send(stub_ref(&rival));
    }
    Some(event)
}

fn stub_of(md: &MappedDomain) -> Stub {
    PartialObjectMeta {
        types: None,
        metadata: ObjectMeta {
            name: md.metadata.name.clone(),
            namespace: md.metadata.namespace.clone(),
            ..ObjectMeta::default()
        },
        _phantom: std::marker::PhantomData,
    }
}

pub(super) fn stub_ref(key: &ObjectKey) -> ObjectRef<Stub> {
    ObjectRef::new(&key.name).within(&key.namespace)
}
