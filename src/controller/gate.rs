//! The passes' and the events' Kubernetes API requests in flight, at most
//! `--concurrency`, and who goes first: a new or changed object's requests
//! up to its Closte action (its read, its Secret, its finalizer write)
//! before anything else (status writes, events, periodic passes' reads).
//!
//! On a small machine the API server is what a burst of new domains waits
//! on: every status write and Event it serves while new objects still wait
//! for their finalizer write delays their adds. So the passes run four
//! times as many at once as they have requests in flight; the requests of
//! those going first take the next free slot, and while any pass goes first
//! the others (its record) get only an eighth of the slots. The cap also
//! bounds the connections (and their buffers) the client keeps: one per
//! request in flight.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
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
    static FIRST: Arc<AtomicBool>;
}

#[derive(Debug, Default)]
struct Queue {
    free: usize,
    /// Slots the others may hold while a pass goes first.
    after_beside_first: usize,
    /// Slots the others hold.
    after_in_flight: usize,
    /// Passes going first.
    first_passes: usize,
    first: VecDeque<oneshot::Sender<Slot>>,
    after: VecDeque<oneshot::Sender<Slot>>,
}

impl Queue {
    fn may_go_after(&self) -> bool {
        self.first_passes == 0 || self.after_in_flight < self.after_beside_first
    }
}

/// The slots for requests in flight.
#[derive(Debug)]
pub struct ApiGate(Mutex<Queue>);

/// One request's slot, handed to the next waiter when dropped.
#[derive(Debug)]
pub struct Slot {
    gate: Option<Arc<ApiGate>>,
    after: bool,
}

/// Counts a pass out of the first ones once, when lowered or gone.
struct GoingFirst {
    gate: Arc<ApiGate>,
    first: Arc<AtomicBool>,
}

impl Drop for GoingFirst {
    fn drop(&mut self) {
        if self.first.swap(false, Ordering::SeqCst) {
            self.gate.no_longer_first();
        }
    }
}

impl ApiGate {
    /// A gate for `slots` requests at once (at least one).
    pub fn new(slots: usize) -> Arc<ApiGate> {
        let slots = slots.max(1);
        Arc::new(ApiGate(Mutex::new(Queue {
            free: slots,
            after_beside_first: (slots / 8).max(1),
            ..Queue::default()
        })))
    }

    /// Runs a pass whose requests go first (`first`) until
    /// [`lower`](Self::lower)ed, or after.
    pub fn pass<F: Future>(
        self: &Arc<Self>,
        first: bool,
        pass: F,
    ) -> impl Future<Output = F::Output> + use<F> {
        let flag = Arc::new(AtomicBool::new(first));
        if first {
            self.0.lock().unwrap().first_passes += 1;
        }
        let going_first = GoingFirst {
            gate: self.clone(),
            first: flag.clone(),
        };
        async move {
            let _going_first = going_first;
            FIRST.scope(flag, pass).await
        }
    }

    /// From now on this task's pass goes after the first ones (its action
    /// is done: what is left is its record).
    pub fn lower(self: &Arc<Self>) {
        let was_first = FIRST.try_with(|first| first.swap(false, Ordering::SeqCst));
        if was_first == Ok(true) {
            self.no_longer_first();
        }
    }

    /// A slot for one request, at this task's priority (a pass's, see
    /// [`pass`](Self::pass); after the first ones elsewhere). Waiters of
    /// one priority are served in order.
    pub async fn enter(self: &Arc<Self>) -> Slot {
        let first = FIRST
            .try_with(|first| first.load(Ordering::SeqCst))
            .unwrap_or(false);
        let granted = {
            let mut queue = self.0.lock().unwrap();
            let free = queue.free > 0 && queue.first.is_empty();
            if first && free {
                queue.free -= 1;
                return self.slot(false);
            }
            if !first && free && queue.after.is_empty() && queue.may_go_after() {
                queue.free -= 1;
                queue.after_in_flight += 1;
                return self.slot(true);
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
        granted.await.unwrap_or(Slot {
            gate: None,
            after: false,
        })
    }

    fn slot(self: &Arc<Self>, after: bool) -> Slot {
        Slot {
            gate: Some(self.clone()),
            after,
        }
    }

    fn no_longer_first(self: &Arc<Self>) {
        let mut queue = self.0.lock().unwrap();
        queue.first_passes -= 1;
        self.grant(&mut queue);
    }

    /// A slot given back, and granted on.
    fn release(self: &Arc<Self>, after: bool) {
        let mut queue = self.0.lock().unwrap();
        queue.free += 1;
        queue.after_in_flight -= usize::from(after);
        self.grant(&mut queue);
    }

    /// Grants the free slots to the waiters that may have them: the first
    /// ones in order, then the others as far as they may go.
    fn grant(self: &Arc<Self>, queue: &mut Queue) {
        while queue.free > 0 {
            let (grant, after) = match queue.first.pop_front() {
                Some(grant) => (grant, false),
                None if queue.may_go_after() => match queue.after.pop_front() {
                    Some(grant) => (grant, true),
                    None => return,
                },
                None => return,
            };
            match grant.send(self.slot(after)) {
                Ok(()) => {
                    queue.free -= 1;
                    queue.after_in_flight += usize::from(after);
                }
                // its waiter went (a cancelled pass): nothing to give back
                Err(mut unsent) => unsent.gate = None,
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(gate) = self.gate.take() {
            gate.release(self.after);
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
            waiters.push(tokio::spawn(gate.clone().pass(first, async move {
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
        let mut lowered = tokio::spawn(gate.pass(true, async move {
            g.lower();
            g.enter().await
        }));
        tokio::task::yield_now().await;
        let g = gate.clone();
        let mut first = tokio::spawn(gate.pass(true, async move { g.enter().await }));
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
    async fn records_get_an_eighth_while_a_pass_goes_first() {
        let gate = ApiGate::new(16);
        let (done, finish) = oneshot::channel::<()>();
        let going_first = tokio::spawn(gate.pass(true, async move {
            let _ = finish.await;
        }));
        let records: Vec<_> = (0..3)
            .map(|_| {
                let g = gate.clone();
                tokio::spawn(async move { g.enter().await })
            })
            .collect();
        let mut records = records.into_iter();
        let (mut a, mut b, mut c) = (
            records.next().unwrap(),
            records.next().unwrap(),
            records.next().unwrap(),
        );
        let (a_slot, b_slot) = (entered(&mut a).await, entered(&mut b).await);
        assert!(a_slot.is_some() && b_slot.is_some(), "two of 16 slots");
        assert!(entered(&mut c).await.is_none(), "a third waits");
        done.send(()).unwrap();
        going_first.await.unwrap();
        assert!(entered(&mut c).await.is_some(), "no pass goes first now");
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
