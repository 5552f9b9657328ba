//! The shared view of one Closte account: its alias list, fetched at most once
//! per resync period however many objects ask, kept current after each write,
//! and refetched early when a write's answer disagrees with it or leaves an
//! alias's presence unknown; and whether Closte answers it ([`Reachability`]), so
//! that the end of an outage is seen and announced.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::time::Instant;

use super::client::ClosteClient;
use super::error::{ClosteError, Disposition};
use super::key::ApiKey;
use super::limiter::{FlowControl, FlowSettings};
use super::reachability::{Reachability, Recovery};
use crate::domain::{Domain, fold_name};
use crate::fence::Fence;

/// Alias names of an account, folded (lowercase, no trailing dot).
pub type DomainSet = BTreeSet<String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    Added,
    /// The add failed, but the list shows the alias is there.
    AlreadyPresent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    /// The delete failed, but the list shows the alias is gone.
    AlreadyAbsent,
}

/// Which account, within one process: a number, so the key stays out of sight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AccountId(pub u32);

#[derive(Debug)]
struct View {
    /// The last good list and when the request that fetched it started.
    list: Option<(Arc<DomainSet>, Instant)>,
    /// The last failed fetch and when it ended, for callers that waited on it.
    failure: Option<(ClosteError, Instant)>,
    /// Set when a write disagreed with the list: only a newer list will do.
    stale_since: Option<Instant>,
    /// Writes done locally while a list fetch was in flight, to replay over
    /// that list (empty otherwise, so it never grows unbounded).
    journal: Vec<(String, bool)>,
    /// A list fetch is on its way (fetches run one at a time).
    fetching: bool,
    /// Names whose last write has an unknown outcome (the answer was lost or
    /// never came), with when the failed answer was seen: only a list whose
    /// request started at or after it may say whether the name is there. (Not
    /// when the write started: a list sent while the write was on its way may
    /// have been served before the write was applied.)
    uncertain: HashMap<String, Instant>,
    /// Whether Closte answers, from every request's outcome.
    reachability: Reachability,
}

impl View {
    /// Nothing known yet; scattered faults end after `quiet` without any.
    fn new(quiet: Duration) -> View {
        View {
            list: None,
            failure: None,
            stale_since: None,
            journal: Vec::new(),
            fetching: false,
            uncertain: HashMap::new(),
            reachability: Reachability::new(quiet),
        }
    }
}

/// When a request went out, on both clocks: the monotonic one orders it
/// against failures, the wall clock compares it with times kept in status.
#[derive(Debug, Clone, Copy)]
struct Sent {
    at: Instant,
    wall: SystemTime,
}

impl Sent {
    fn now() -> Sent {
        Sent {
            at: Instant::now(),
            wall: SystemTime::now(),
        }
    }
}

#[derive(Debug)]
pub struct Account {
    id: AccountId,
    key: ApiKey,
    client: ClosteClient,
    flow: FlowControl,
    resync: Duration,
    /// Writes go out only while this replica's leadership term lasts.
    fence: Fence,
    created: Instant,
    view: Mutex<View>,
    /// Serialises list fetches; callers queued behind one share its result.
    fetching: tokio::sync::Mutex<()>,
    /// Counts the recoveries of every account of the process.
    recoveries: watch::Sender<u64>,
}

impl Account {
    /// An account on its own (outside [`Accounts`]): nobody hears its recoveries.
    pub fn new(key: ApiKey, client: ClosteClient, flow: FlowSettings, resync: Duration) -> Account {
        let settings = Settings {
            flow,
            resync,
            fence: Fence::unfenced(),
        };
        Account::with(AccountId(0), key, client, settings, watch::Sender::new(0))
    }

    fn with(
        id: AccountId,
        key: ApiKey,
        client: ClosteClient,
        settings: Settings,
        recoveries: watch::Sender<u64>,
    ) -> Account {
        Account {
            id,
            key,
            client,
            flow: FlowControl::new(settings.flow),
            resync: settings.resync,
            fence: settings.fence,
            created: Instant::now(),
            view: Mutex::new(View::new(settings.resync)),
            fetching: tokio::sync::Mutex::new(()),
            recoveries,
        }
    }

    pub fn id(&self) -> AccountId {
        self.id
    }

    /// The key's label, for logs.
    pub fn label(&self) -> String {
        self.key.label()
    }

    /// When the request of the account's latest recovery was sent (see
    /// [`super::reachability`]; the first answer this process saw counts as one).
    pub fn recovered_at(&self) -> Option<SystemTime> {
        self.view.lock().unwrap().reachability.recovered()
    }

    /// Whether the account is in trouble (or not asked yet) such that a
    /// [`Account::ping`] is due at `now`.
    pub fn ping_due(&self, now: Instant) -> bool {
        self.view.lock().unwrap().reachability.ping_due(now)
    }

    /// Asks Closte for the list when a ping is due and no fetch is on its
    /// way, so a recovery is seen while every object waits out its backoff.
    /// A read, so not paced as writes are.
    /// `now` is the caller's clock tick, so pings keep its period exactly.
    pub async fn ping(&self, now: Instant) {
        {
            let mut view = self.view.lock().unwrap();
            if view.fetching || !view.reachability.ping_due(now) {
                return;
            }
            view.reachability.pinging(now);
        }
        match self.refresh().await {
            Ok(_) => tracing::debug!(account = %self.key.label(), "ping: Closte answers"),
            Err(error) => {
                tracing::debug!(account = %self.key.label(), %error, "ping: Closte still fails")
            }
        }
    }

    /// Notes what a request sent at `sent` says about Closte answering (its
    /// error, `None` for a success), and announces a recovery. A rate limit,
    /// a refusal or an answer not understood are answers but no success: they
    /// say nothing about an outage.
    fn note_reachability(&self, sent: Sent, error: Option<&ClosteError>) {
        let recovery = {
            let mut view = self.view.lock().unwrap();
            match error {
                None => view.reachability.answered(sent.at, sent.wall),
                Some(ClosteError::Transient { .. }) => {
                    view.reachability.failed(sent.at);
                    None
                }
                Some(_) => None,
            }
        };
        let account = self.key.label();
        match recovery {
            None => return,
            Some(Recovery::First) => tracing::debug!(%account, "Closte answers the account"),
            Some(Recovery::Outage(lasted)) => tracing::info!(
                %account,
                failing_secs = lasted.as_secs(),
                "Closte answers the account again after an outage"
            ),
            Some(Recovery::Quiet(calm)) => tracing::info!(
                %account,
                quiet_secs = calm.as_secs(),
                "Closte answers the account without failing again"
            ),
        }
        self.recoveries.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The alias list, at most one resync period old (or newer than the last
    /// disagreement). Concurrent callers share one request.
    ///
    /// A write with an unknown outcome does not make this list refetch: the
    /// answer for such a name comes from [`Account::contains`], which waits for
    /// a list that can tell.
    pub async fn domains(&self) -> Result<Arc<DomainSet>, ClosteError> {
        self.list_since(self.fresh_since()).await
    }

    /// The oldest request start a list may have to answer [`Account::domains`].
    fn fresh_since(&self) -> Instant {
        let since = Instant::now()
            .checked_sub(self.resync)
            .unwrap_or(self.created)
            .max(self.created);
        match self.view.lock().unwrap().stale_since {
            Some(stale) => since.max(stale),
            None => since,
        }
    }

    /// A list fetched after this call started.
    pub async fn refresh(&self) -> Result<Arc<DomainSet>, ClosteError> {
        self.list_since(Instant::now()).await
    }

    /// Marks the list as out of date; the next [`Account::domains`] refetches.
    pub fn invalidate(&self) {
        self.view.lock().unwrap().stale_since = Some(Instant::now());
    }

    /// Whether the account has the alias, by the cached list. After a write of
    /// this name whose outcome is unknown (a [`ClosteError::Transient`] answer:
    /// 5xx, 408, a timeout, a reset, an unreadable answer), only a list whose
    /// request started after that write's answer (or its absence) was seen
    /// may answer; one is fetched when needed, shared with concurrent callers.
    /// Other names keep using the cached list.
    pub async fn contains(&self, domain: &Domain) -> Result<bool, ClosteError> {
        let name = fold_name(domain.as_str());
        let mut since = self.fresh_since();
        if let Some(unknown_since) = self.view.lock().unwrap().uncertain.get(&name) {
            since = since.max(*unknown_since);
        }
        Ok(self.list_since(since).await?.contains(&name))
    }

    fn cached_since(&self, since: Instant) -> Option<Arc<DomainSet>> {
        let view = self.view.lock().unwrap();
        view.list
            .as_ref()
            .filter(|(_, fetched)| *fetched >= since)
            .map(|(list, _)| list.clone())
    }

    async fn list_since(&self, since: Instant) -> Result<Arc<DomainSet>, ClosteError> {
        if let Some(list) = self.cached_since(since) {
            return Ok(list);
        }
        let entered = Instant::now();
        let _fetching = self.fetching.lock().await;
        if let Some(list) = self.cached_since(since) {
            return Ok(list);
        }
        if let Some((error, at)) = &self.view.lock().unwrap().failure
            && *at >= entered
        {
            return Err(error.clone()); // a fetch that ended while this caller waited failed
        }
        let started = Instant::now();
        let journaling = Journaling::start(&self.view);
        let (sent, result) = {
            let _permit = self.flow.admit(false).await;
            let sent = Sent::now();
            (sent, self.client.list(&self.key).await)
        };
        self.note_rate_limit(&result);
        let result = self.keep_list(journaling, started, result);
        // after the list is kept: the objects a recovery wakes read it
        self.note_reachability(sent, result.as_ref().err());
        result
    }

    /// Keeps what a list fetch that started at `started` brought: the list
    /// with the writes journaled meanwhile, or its failure for its waiters.
    fn keep_list(
        &self,
        journaling: Journaling<'_>,
        started: Instant,
        result: Result<Vec<String>, ClosteError>,
    ) -> Result<Arc<DomainSet>, ClosteError> {
        let mut view = self.view.lock().unwrap();
        let journal = journaling.finish(&mut view);
        match result {
            Ok(names) => {
                let mut list: DomainSet = names.iter().map(|n| fold_name(n)).collect();
                // writes that finished after the request started may be missing from it
                for (name, added) in &journal {
                    if *added {
                        list.insert(name.clone());
                    } else {
                        list.remove(name);
                    }
                }
                let list = Arc::new(list);
                view.list = Some((list.clone(), started));
                view.failure = None;
                // this list tells whether the names written before it started are there
                view.uncertain.retain(|_, since| *since > started);
                tracing::debug!(account = %self.key.label(), aliases = list.len(), "fetched Closte alias list");
                Ok(list)
            }
            Err(error) => {
                view.failure = Some((error.clone(), Instant::now()));
                Err(error)
            }
        }
    }

    fn record_write(&self, domain: &Domain, added: bool) {
        let name = fold_name(domain.as_str());
        let mut view = self.view.lock().unwrap();
        view.uncertain.remove(&name);
        if view.fetching {
            view.journal.push((name.clone(), added));
        }
        if let Some((list, _)) = view.list.as_mut() {
            let list = Arc::make_mut(list);
            if added {
                list.insert(name);
            } else {
                list.remove(&name);
            }
        }
    }

    fn note_rate_limit<T>(&self, result: &Result<T, ClosteError>) {
        if let Err(error @ ClosteError::RateLimited { .. }) = result
            && let Disposition::RetryAfter(pause) = error.disposition()
        {
            tracing::warn!(account = %self.key.label(), pause_secs = pause.as_secs(), "Closte rate limit: pausing the account");
            self.flow.pause_for(pause);
        }
    }

    /// Adds the alias. When Closte refuses in a way that may mean "already
    /// there", the answer comes from a fresh list, never from the error text.
    pub async fn add(&self, domain: &Domain) -> Result<AddOutcome, ClosteError> {
        Ok(match self.write(domain, true).await? {
            Written::ByUs => AddOutcome::Added,
            Written::AlreadySo => AddOutcome::AlreadyPresent,
        })
    }

    /// Removes the alias; an alias that is already gone counts as removed.
    pub async fn delete(&self, domain: &Domain) -> Result<DeleteOutcome, ClosteError> {
        Ok(match self.write(domain, false).await? {
            Written::ByUs => DeleteOutcome::Deleted,
            Written::AlreadySo => DeleteOutcome::AlreadyAbsent,
        })
    }

    /// Adds (`present`) or removes the alias. An answer that may mean the
    /// alias is already as wanted is settled by a fresh list.
    ///
    /// Sent only while the fence is open (checked after the flow control's
    /// wait, just before sending), and awaited at most until the lease could
    /// pass to another replica. Whatever stops the answer from being read (a
    /// lost answer, that limit, or the pass being dropped) leaves the name
    /// uncertain, so no list older than that may deny the write.
    async fn write(&self, domain: &Domain, present: bool) -> Result<Written, ClosteError> {
        let (sent, result) = {
            let _permit = self.flow.admit(true).await;
            let window = self.fence.write_window(Instant::now())?;
            let _writing = self.fence.writing();
            let sent = Sent::now();
            let in_flight = InFlight::start(&self.view, domain);
            let request = async {
                if present {
                    self.client.add(&self.key, domain.as_str()).await
                } else {
                    self.client.delete(&self.key, domain.as_str()).await
                }
            };
            let result = match window {
                None => request.await,
                Some(until) => tokio::time::timeout_at(until, request)
                    .await
                    .unwrap_or_else(|_| {
                        Err(ClosteError::Transient {
                            reason:
                                "no answer before the leader lease could pass to another replica"
                                    .into(),
                        })
                    }),
            };
            in_flight.answered();
            (sent, result)
        };
        self.note_rate_limit(&result);
        match result {
            Ok(()) => {
                self.record_write(domain, present);
                self.note_reachability(sent, None);
                Ok(Written::ByUs)
            }
            Err(error @ (ClosteError::Unexpected { .. } | ClosteError::DomainRejected { .. })) => {
                self.invalidate();
                match self.refresh().await {
                    Ok(list) if list.contains(&fold_name(domain.as_str())) == present => {
                        Ok(Written::AlreadySo)
                    }
                    _ => Err(error),
                }
            }
            Err(error @ ClosteError::Transient { .. }) => {
                self.note_reachability(sent, Some(&error));
                // Closte may have applied it; only a later list can say
                let name = fold_name(domain.as_str());
                tracing::debug!(
                    account = %self.key.label(),
                    domain = self.key.redact(&name),
                    "write outcome unknown: a newer list will say whether the alias is there"
                );
                self.view
                    .lock()
                    .unwrap()
                    .uncertain
                    .insert(name, Instant::now());
                Err(error)
            }
            // a rate limit or a rejected key: not applied
            Err(error) => Err(error),
        }
    }
}

/// A write on its way: when dropped before its answer was read (the pass was
/// cancelled, leadership lost, shutdown), Closte may still apply it, so the
/// name becomes uncertain from then on.
struct InFlight<'a> {
    view: &'a Mutex<View>,
    name: Option<String>,
}

impl<'a> InFlight<'a> {
    fn start(view: &'a Mutex<View>, domain: &Domain) -> InFlight<'a> {
        InFlight {
            view,
            name: Some(fold_name(domain.as_str())),
        }
    }

    /// The answer (or its failure) was read: the caller settles the name.
    fn answered(mut self) {
        self.name = None;
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(name) = self.name.take() {
            self.view
                .lock()
                .unwrap()
                .uncertain
                .insert(name, Instant::now());
        }
    }
}

/// Journals writes while a list fetch is on its way; stops when finished or
/// dropped (a cancelled fetch), so the journal never outlives its fetch.
struct Journaling<'a>(Option<&'a Mutex<View>>);

impl<'a> Journaling<'a> {
    fn start(view: &'a Mutex<View>) -> Journaling<'a> {
        view.lock().unwrap().fetching = true;
        Journaling(Some(view))
    }

    /// The writes journaled meanwhile; under the same lock as the list that
    /// replays them, so no write falls between.
    fn finish(mut self, view: &mut View) -> Vec<(String, bool)> {
        self.0 = None;
        view.fetching = false;
        std::mem::take(&mut view.journal)
    }
}

impl Drop for Journaling<'_> {
    fn drop(&mut self) {
        if let Some(view) = self.0 {
            let mut view = view.lock().unwrap();
            view.fetching = false;
            view.journal.clear();
        }
    }
}

/// Whether a write changed Closte, or found it already as wanted.
enum Written {
    ByUs,
    AlreadySo,
}

/// What every account of a process is built with.
#[derive(Debug, Clone)]
struct Settings {
    flow: FlowSettings,
    resync: Duration,
    fence: Fence,
}

/// Every account the process talks to, one [`Account`] per API key.
#[derive(Debug)]
pub struct Accounts {
    client: ClosteClient,
    settings: Settings,
    accounts: Mutex<HashMap<ApiKey, Arc<Account>>>,
    recoveries: watch::Sender<u64>,
}

impl Accounts {
    pub fn new(client: ClosteClient, flow: FlowSettings, resync: Duration) -> Accounts {
        Accounts {
            client,
            settings: Settings {
                flow,
                resync,
                fence: Fence::unfenced(),
            },
            accounts: Mutex::new(HashMap::new()),
            recoveries: watch::Sender::new(0),
        }
    }

    /// The account of `key`, created on first use.
    pub fn get(&self, key: &ApiKey) -> Arc<Account> {
        let mut accounts = self.accounts.lock().unwrap();
        let id = AccountId(accounts.len() as u32); // accounts are never dropped
        accounts
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(Account::with(
                    id,
                    key.clone(),
                    self.client.clone(),
                    self.settings.clone(),
                    self.recoveries.clone(),
                ))
            })
            .clone()
    }

    /// Writes only while `fence` is open (a leader-elected controller).
    pub fn with_fence(mut self, fence: Fence) -> Accounts {
        self.settings.fence = fence;
        self
    }

    /// Marks every account's list out of date: a new leader decides only
    /// from lists fetched after it took over, never from one kept from an
    /// earlier term, which cannot show what another replica wrote meanwhile.
    pub fn invalidate_all(&self) {
        for account in self.all() {
            account.invalidate();
        }
    }

    /// Every account so far.
    pub fn all(&self) -> Vec<Arc<Account>> {
        self.accounts.lock().unwrap().values().cloned().collect()
    }

    /// Changes whenever an account recovers from an outage; see
    /// [`Account::recovered_at`] for which and when.
    pub fn recoveries(&self) -> watch::Receiver<u64> {
        self.recoveries.subscribe()
    }
}
