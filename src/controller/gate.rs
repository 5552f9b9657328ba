//! The passes' and the events' Kubernetes API requests in flight, at most
//! `--concurrency`, and who goes first when they queue: a new or changed
//! object's requests up to its Closte action (its read, its Secret, its
//! finalizer write) before anything else (status writes, events, periodic
//! passes' reads).
//!
//! On a small machine the API server is what a burst of new domains waits
//! on: every status write and Event sent while new objects still wait for
//! their finalizer write delays their adds. So the passes run four times as
//! many at once as they have requests in flight, and those that are past
//! their action queue behind the ones that are not. The cap also bounds the
//! connections (and their buffers) the client keeps: one per request in
//! flight.

use std::cell::Cell;
use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// Passes at once per request in flight: most of a pass is spent on
/// Closte, DNS and TLS, or waiting for its slot.
const PASSES_PER_SLOT: u16 = 4;

/// The passes that run at once for `requests` in flight.
pub fn passes(requests: u16) -> u16 {
    requests.saturating_mul(PASSES_PER_SLOT)
}

tokio::task_local! {
    /// Whether the pass running in this task still goes first.
    static FIRST: Cell<bool>;
}

/// Runs a pass whose requests go first (`first`) or after: see [`lower`].
pub async fn pass<F: Future>(first: bool, pass: F) -> F::Output {
    FIRST.scope(Cell::new(first), pass).await
}

/// From now on this pass's requests go after the first ones (its action is
/// done: what is left is its record).
pub fn lower() {
    let _ = FIRST.try_with(|first| first.set(false));
}

#[derive(Debug, Default)]
struct Queue {
    free: usize,
    first: VecDeque<oneshot::Sender<Slot>>,
    after: VecDeque<oneshot::Sender<Slot>>,
}

/// The slots for requests in flight.
#[derive(Debug)]
pub struct ApiGate(Mutex<Queue>);

/// One request's slot, handed to the next waiter when dropped.
#[derive(Debug)]
pub struct Slot(Option<Arc<ApiGate>>);

impl ApiGate {
    /// A gate for `slots` requests at once (at least one).
    pub fn new(slots: usize) -> Arc<ApiGate> {
        Arc::new(ApiGate(Mutex::new(Queue {
            free: slots.max(1),
            ..Queue::default()
        })))
    }

    /// A slot for one request, at this task's priority (a pass's, see
    /// [`pass`]; after the first ones elsewhere). Waiters of one priority
    /// are served in order.
    pub async fn enter(self: &Arc<Self>) -> Slot {
        let first = FIRST.try_with(Cell::get).unwrap_or(false);
        let granted = {
            let mut queue = self.0.lock().unwrap();
            if queue.free > 0 {
                queue.free -= 1;
                return Slot(Some(self.clone()));
            }
            let (grant, granted) = oneshot::channel();
            match first {
                true => queue.first.push_back(grant),
                false => queue.after.push_back(grant),
            }
            granted
        };
        // the gate lives as long as `self`: a grant is never dropped unsent
        // but to a waiter that went, so this only guards against a bug
        granted.await.unwrap_or(Slot(None))
    }

    /// A slot given back: to the first waiter still waiting, else freed.
    fn release(self: &Arc<Self>) {
        let mut queue = self.0.lock().unwrap();
        loop {
            let Some(grant) = queue.first.pop_front().or_else(|| queue.after.pop_front()) else {
                queue.free += 1;
                return;
            };
            match grant.send(Slot(Some(self.clone()))) {
                Ok(()) => return,
                // its waiter went (a cancelled pass): not a release
                Err(mut unsent) => unsent.0 = None,
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(gate) = self.0.take() {
            gate.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// The slot `entering` got within a few scheduler turns, if it did.
    async fn entered(entering: &mut tokio::task::JoinHandle<Slot>) -> Option<Slot> {
        let entered = tokio::time::timeout(Duration::from_millis(50), entering).await;
        entered.ok().map(|slot| slot.unwrap())
    }

    #[tokio::test]
    async fn at_most_its_slots_at_once() {
        let gate = ApiGate::new(2);
        let a = gate.enter().await;
        let _b = gate.enter().await;
        let g = gate.clone();
        let mut third = tokio::spawn(async move { g.enter().await });
        assert!(entered(&mut third).await.is_none(), "a third slot of two");
        drop(a);
        assert!(
            entered(&mut third).await.is_some(),
            "a slot given back goes on"
        );
    }

    #[tokio::test]
    async fn first_waiters_before_earlier_after_ones() {
        let gate = ApiGate::new(1);
        let held = gate.enter().await;
        let (order, served) = tokio::sync::mpsc::unbounded_channel();
        let mut waiters = Vec::new();
        for (name, first) in [("status", false), ("event", false), ("finalizer", true)] {
            let (gate, order) = (gate.clone(), order.clone());
            waiters.push(tokio::spawn(pass(first, async move {
                let _slot = gate.enter().await;
                order.send(name).unwrap();
            })));
            // queued in this order
            tokio::task::yield_now().await;
        }
        drop((held, order));
        for waiter in waiters {
            waiter.await.unwrap();
        }
        let mut served = served;
        let mut got = Vec::new();
        while let Some(name) = served.recv().await {
            got.push(name);
        }
        assert_eq!(got, ["finalizer", "status", "event"]);
    }

    #[tokio::test]
    async fn a_lowered_pass_goes_after() {
        let gate = ApiGate::new(1);
        let held = gate.enter().await;
        let g = gate.clone();
        let mut lowered = tokio::spawn(pass(true, async move {
            lower();
            g.enter().await
        }));
        tokio::task::yield_now().await;
        let g = gate.clone();
        let mut first = tokio::spawn(pass(true, async move { g.enter().await }));
        tokio::task::yield_now().await;
        drop(held);
        let first_slot = entered(&mut first).await;
        assert!(first_slot.is_some(), "the pass still first goes first");
        assert!(
            entered(&mut lowered).await.is_none(),
            "the lowered one after it"
        );
        drop(first_slot);
        assert!(entered(&mut lowered).await.is_some());
    }

    #[tokio::test]
    async fn a_waiter_that_goes_loses_no_slot() {
        let gate = ApiGate::new(1);
        let held = gate.enter().await;
        let g = gate.clone();
        let gone = tokio::spawn(async move { g.enter().await });
        tokio::task::yield_now().await;
        gone.abort();
        let _ = gone.await;
        drop(held);
        let again = tokio::time::timeout(Duration::from_millis(50), gate.enter()).await;
        assert!(again.is_ok(), "the slot came back");
        assert_eq!(gate.0.lock().unwrap().free, 0);
    }
}
