//! The shared view of one Closte account: its alias list, fetched at most once
//! per resync period however many objects ask, kept current after each write,
//! and refetched early when a write's answer disagrees with it or leaves an
//! alias's presence unknown.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::client::ClosteClient;
use super::error::{ClosteError, Disposition};
use super::key::ApiKey;
use super::limiter::{FlowControl, FlowSettings};
use crate::domain::{Domain, fold_name};

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

#[derive(Debug, Default)]
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
}

#[derive(Debug)]
pub struct Account {
    key: ApiKey,
    client: ClosteClient,
    flow: FlowControl,
    resync: Duration,
    created: Instant,
    view: Mutex<View>,
    /// Serialises list fetches; callers queued behind one share its result.
    fetching: tokio::sync::Mutex<()>,
}

impl Account {
    pub fn new(key: ApiKey, client: ClosteClient, flow: FlowSettings, resync: Duration) -> Account {
        Account {
            key,
            client,
            flow: FlowControl::new(flow),
            resync,
            created: Instant::now(),
            view: Mutex::new(View::default()),
            fetching: tokio::sync::Mutex::new(()),
        }
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
        let result = {
            let _permit = self.flow.admit(false).await;
            self.client.list(&self.key).await
        };
        self.note_rate_limit(&result);
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
    async fn write(&self, domain: &Domain, present: bool) -> Result<Written, ClosteError> {
        let result = {
            let _permit = self.flow.admit(true).await;
            if present {
                self.client.add(&self.key, domain.as_str()).await
            } else {
                self.client.delete(&self.key, domain.as_str()).await
            }
        };
        self.note_rate_limit(&result);
        match result {
            Ok(()) => {
                self.record_write(domain, present);
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

/// Every account the process talks to, one [`Account`] per API key.
#[derive(Debug)]
pub struct Accounts {
    client: ClosteClient,
    flow: FlowSettings,
    resync: Duration,
    accounts: Mutex<HashMap<ApiKey, Arc<Account>>>,
}

impl Accounts {
    pub fn new(client: ClosteClient, flow: FlowSettings, resync: Duration) -> Accounts {
        Accounts {
            client,
            flow,
            resync,
            accounts: Mutex::new(HashMap::new()),
        }
    }

    /// The account of `key`, created on first use.
    pub fn get(&self, key: &ApiKey) -> Arc<Account> {
        self.accounts
            .lock()
            .unwrap()
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(Account::new(
                    key.clone(),
                    self.client.clone(),
                    self.flow,
                    self.resync,
                ))
            })
            .clone()
    }
}
