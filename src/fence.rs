//! Whether this replica may still act, by its own monotonic clock: the
//! leader's fence. Leader election ([`crate::controller`]) extends it after
//! each renewal it made; Closte writes ([`crate::closte::Account`]) and
//! status writes check it just before they go out. A replica whose API server
//! stops answering therefore stops acting when its renew deadline passes,
//! not when it next manages to read the Lease, and no write it starts can
//! still be awaited once another replica may hold the lease. It also counts
//! the writes on their way, so a replica that stops hands the lease back only
//! once none is left.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// The window a renewal buys, measured from when its request was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Term {
    /// New work (passes, writes) may start until then: the renew deadline.
    pub act_until: Instant,
    /// A write still awaited then is abandoned: another replica may hold the
    /// lease from then on.
    pub lease_until: Instant,
}

impl Term {
    /// The term a renewal sent at `sent` buys, for a lease of `lease` and a
    /// renew deadline of `renew_deadline` (shorter).
    pub fn after(sent: Instant, renew_deadline: Duration, lease: Duration) -> Term {
        Term {
            act_until: sent + renew_deadline,
            lease_until: sent + lease,
        }
    }
}

/// Shared by the leader election and everything that writes.
#[derive(Debug, Clone)]
pub struct Fence {
    inner: Inner,
    /// Writes sent whose answer is still awaited.
    writes: Arc<watch::Sender<usize>>,
}

#[derive(Debug, Clone)]
enum Inner {
    /// No leader election: always open.
    Unfenced,
    /// Open while the current term lasts; `None` while not leading.
    Leased(Arc<watch::Sender<Option<Term>>>),
}

impl Default for Fence {
    fn default() -> Self {
        Fence::unfenced()
    }
}

impl Fence {
    /// A fence that never closes, for a controller without leader election.
    pub fn unfenced() -> Fence {
        Fence::new(Inner::Unfenced)
    }

    fn new(inner: Inner) -> Fence {
        Fence {
            inner,
            writes: Arc::new(watch::Sender::new(0)),
        }
    }

    /// A fence that is closed until a renewal opens it.
    pub fn leased() -> Fence {
        Fence::new(Inner::Leased(Arc::new(watch::Sender::new(None))))
    }

    /// A renewal succeeded: open until `term` ends.
    pub fn extend(&self, term: Term) {
        if let Inner::Leased(sender) = &self.inner {
            sender.send_replace(Some(term));
        }
    }

    /// Leadership ended: closed until the next renewal.
    pub fn close(&self) {
        if let Inner::Leased(sender) = &self.inner {
            sender.send_replace(None);
        }
    }

    fn term(&self) -> Option<Option<Term>> {
        match &self.inner {
            Inner::Unfenced => None,
            Inner::Leased(sender) => Some(*sender.borrow()),
        }
    }

    /// Whether new work may start at `now`.
    pub fn may_act(&self, now: Instant) -> bool {
        match self.term() {
            None => true,
            Some(term) => term.is_some_and(|t| now < t.act_until),
        }
    }

    /// Whether a write may start at `now`, and if so until when its answer
    /// may be awaited (`None`: no limit but the client's timeout).
    pub fn write_window(&self, now: Instant) -> Result<Option<Instant>, Fenced> {
        match self.term() {
            None => Ok(None),
            Some(Some(term)) if now < term.act_until => Ok(Some(term.lease_until)),
            Some(_) => Err(Fenced),
        }
    }

    /// Resolves when the current term's renew deadline passes without a
    /// renewal, or at once when there is no term. Never for an unfenced one.
    pub async fn expired(&self) {
        let Inner::Leased(sender) = &self.inner else {
            return std::future::pending().await;
        };
        let mut terms = sender.subscribe();
        loop {
            let Some(term) = *terms.borrow_and_update() else {
                return;
            };
            tokio::select! {
                () = tokio::time::sleep_until(term.act_until) => {
                    if *terms.borrow() == Some(term) {
                        return;
                    }
                }
                changed = terms.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

impl Fence {
    /// A write is on its way until the returned guard is dropped (its
    /// answer read, or given up on).
    pub fn writing(&self) -> Writing {
        self.writes.send_modify(|n| *n += 1);
        Writing(self.writes.clone())
    }

    /// Resolves once no write is on its way.
    pub async fn writes_done(&self) {
        let mut writes = self.writes.subscribe();
        // the sender lives as long as `self`: never an error
        let _ = writes.wait_for(|n| *n == 0).await;
    }
}

/// One write on its way; see [`Fence::writing`].
#[derive(Debug)]
pub struct Writing(Arc<watch::Sender<usize>>);

impl Drop for Writing {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

/// A write refused because this replica's term is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not written: this replica no longer holds the leader lease")]
pub struct Fenced;

#[cfg(test)]
mod tests {
    use super::*;

    const DEADLINE: Duration = Duration::from_secs(10);
    const LEASE: Duration = Duration::from_secs(15);

    #[tokio::test(start_paused = true)]
    async fn writes_done_waits_for_every_write_on_its_way() {
        let fence = Fence::leased();
        fence.writes_done().await; // none yet
        let first = fence.writing();
        let second = fence.clone().writing();
        let done = tokio::spawn({
            let fence = fence.clone();
            async move { fence.writes_done().await }
        });
        drop(first);
        tokio::task::yield_now().await;
        assert!(!done.is_finished(), "one write is still on its way");
        drop(second);
        tokio::time::timeout(Duration::from_secs(1), done)
            .await
            .expect("done once the last write is answered")
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn unfenced_is_always_open() {
        let fence = Fence::unfenced();
        fence.close();
        assert!(fence.may_act(Instant::now()));
        assert_eq!(fence.write_window(Instant::now()), Ok(None));
        let expired = tokio::time::timeout(Duration::from_secs(3600), fence.expired()).await;
        assert!(expired.is_err(), "an unfenced fence never expires");
    }

    #[tokio::test(start_paused = true)]
    async fn leased_opens_for_a_term_and_closes_at_the_renew_deadline() {
        let fence = Fence::leased();
        let now = Instant::now();
        assert!(!fence.may_act(now), "closed before the first renewal");
        assert_eq!(fence.write_window(now), Err(Fenced));

        fence.extend(Term::after(now, DEADLINE, LEASE));
        assert!(fence.may_act(now + Duration::from_secs(9)));
        assert_eq!(
            fence.write_window(now + Duration::from_secs(9)),
            Ok(Some(now + LEASE)),
            "a write is awaited until the lease could pass to another"
        );
        assert!(!fence.may_act(now + DEADLINE));
        assert_eq!(fence.write_window(now + DEADLINE), Err(Fenced));

        fence.close();
        assert!(!fence.may_act(now));
    }

    #[tokio::test(start_paused = true)]
    async fn expired_waits_out_renewals_and_resolves_at_the_last_deadline() {
        let fence = Fence::leased();
        let start = Instant::now();
        fence.extend(Term::after(start, DEADLINE, LEASE));
        let renewer = {
            let fence = fence.clone();
            tokio::spawn(async move {
                // renews twice, 4 s apart, then stops (its API server is gone)
                for _ in 0..2 {
                    tokio::time::sleep(Duration::from_secs(4)).await;
                    fence.extend(Term::after(Instant::now(), DEADLINE, LEASE));
                }
            })
        };
        fence.expired().await;
        assert_eq!(start.elapsed(), Duration::from_secs(8) + DEADLINE);
        renewer.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn expired_resolves_when_closed() {
        let fence = Fence::leased();
        let start = Instant::now();
        fence.extend(Term::after(start, DEADLINE, LEASE));
        let closer = {
            let fence = fence.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                fence.close();
            })
        };
        fence.expired().await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        closer.await.unwrap();
    }
}
