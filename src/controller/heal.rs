//! Ends the waits Closte's trouble leaves behind. When an account recovers
//! (answers after an outage, or after a resync period without failures; see
//! [`crate::closte::reachability`]), the objects of that account that wait out a
//! failure of Closte's are nudged, and their retry gate
//! ([`crate::plan::retry_wait`]) lets them through; the account's write
//! limiter paces what they then send. While objects wait on an account in
//! trouble, it is pinged, so that the recovery is seen however long their
//! backoff has grown.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use k8s_openapi::jiff::Timestamp;
use kube::runtime::reflector::ObjectRef;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::{Instant, MissedTickBehavior};

use super::watch::{Stub, stub_ref};
use crate::closte::{AccountId, Accounts};
use crate::index::Index;

/// How often accounts are looked at for a due ping; each account spaces its
/// own pings ([`crate::closte::reachability::PING_EVERY`]).
const PING_TICK: Duration = Duration::from_secs(1);

/// Runs for as long as the controller does.
pub async fn run(
    accounts: Arc<Accounts>,
    index: Arc<RwLock<Index>>,
    nudge: UnboundedSender<ObjectRef<Stub>>,
) {
    let mut recoveries = accounts.recoveries();
    recoveries.mark_unchanged();
    // recoveries from before this run wake nothing: every object gets a
    // pass when the Controller starts
    let mut woken: HashMap<AccountId, SystemTime> = accounts
        .all()
        .iter()
        .filter_map(|a| Some((a.id(), a.recovered_at()?)))
        .collect();
    let mut pings = tokio::time::interval(PING_TICK);
    pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            changed = recoveries.changed() => {
                if changed.is_err() {
                    return; // the accounts are gone
                }
                wake(&accounts, &index, &nudge, &mut woken);
            }
            tick = pings.tick() => ping(&accounts, &index, tick),
        }
    }
}

/// Nudges the waiting objects of every account that recovered since the last
/// look.
fn wake(
    accounts: &Accounts,
    index: &RwLock<Index>,
    nudge: &UnboundedSender<ObjectRef<Stub>>,
    woken: &mut HashMap<AccountId, SystemTime>,
) {
    for account in accounts.all() {
        let Some(at) = account.recovered_at() else {
            continue;
        };
        if woken.insert(account.id(), at) == Some(at) {
            continue;
        }
        let Ok(recovered) = Timestamp::try_from(at) else {
            continue;
        };
        let waiting = index.read().unwrap().woken_by(account.id(), recovered);
        if waiting.is_empty() {
            continue;
        }
        tracing::info!(
            account = %account.label(),
            objects = waiting.len(),
            "Closte answers again: waking the objects waiting out its failure"
        );
        for key in &waiting {
            let _ = nudge.send(stub_ref(key));
        }
    }
}

/// Sends a ping for every account in trouble that objects wait on.
fn ping(accounts: &Accounts, index: &RwLock<Index>, tick: Instant) {
    for account in accounts.all() {
        if account.ping_due(tick) && index.read().unwrap().any_waiting_on(account.id()) {
            // a ping may take the whole request timeout: not in this loop
            tokio::spawn(async move { account.ping(tick).await });
        }
    }
}
