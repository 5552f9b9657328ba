//! Leader election on a Lease, as client-go does it, fenced by time: only the
//! leader reconciles, and it stops on its own clock.
//!
//! A candidate reads the Lease every retry period. It takes the lease when
//! nobody holds it, when it holds it itself, or when the holder's record has
//! not changed for a whole lease duration as measured by the candidate's own
//! clock from when it first saw that record (never by comparing the holder's
//! wall-clock `renewTime` with its own). Every take and renewal is an update
//! guarded by `resourceVersion`, so two candidates cannot both win.
//!
//! The leader renews every retry period. Each successful renewal extends the
//! [`Fence`] to the renew deadline, counted from when the renewal was sent;
//! when that deadline passes without another renewal (the API server does not
//! answer, say) the leader stops reconciling and writes nothing more, whatever
//! the API server answers later. The deadline is shorter than the lease, and
//! a write's answer is awaited at most until the lease's end, so no replica
//! can hold the lease while another still acts. A new leader invalidates every
//! account's alias list: it decides from lists fetched after it took over.
//!
//! A leader asked to stop (SIGTERM) stops starting work, waits until every
//! Closte write it sent is answered (at most until its lease could pass
//! anyway), then hands the lease back, as client-go's `ReleaseOnCancel` does:
//! the next leader takes over at its next try instead of a lease duration
//! later. A leader that dies without that leaves the lease to expire.

use std::sync::atomic::Ordering;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use tokio::time::Instant;

use super::ControllerError;
use super::watch::Reconciler;
use crate::fence::{Fence, Term};

/// The Lease and the times of the election.
#[derive(Debug, Clone)]
pub struct Election {
    pub lease: String,
    pub namespace: String,
    pub identity: String,
    pub timing: Timing,
}

/// client-go's proportions: with a 15 s lease, renew every 2 s and stop after
/// 10 s without a renewal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long a record stands without renewal before another may take the lease.
    pub lease: Duration,
    /// How long the leader acts after its last renewal was sent.
    pub renew_deadline: Duration,
    /// How often candidates and the leader go to the Lease.
    pub retry: Duration,
}

impl Timing {
    pub fn from_lease(lease: Duration) -> Timing {
        // whole seconds, as the Lease records it
        let lease = Duration::from_secs(lease.as_secs().max(2));
        Timing {
            lease,
            renew_deadline: lease * 2 / 3,
            retry: (lease * 2 / 15).max(Duration::from_millis(100)),
        }
    }

    fn term(&self, sent: Instant) -> Term {
        Term::after(sent, self.renew_deadline, self.lease)
    }
}

/// A Lease record as a candidate saw it, and since when by its clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// Changes with every write of the Lease.
    pub resource_version: String,
    pub holder: Option<String>,
    /// The holder's lease duration.
    pub lease: Duration,
    /// When this candidate first saw this record.
    pub since: Instant,
}

/// What a candidate may do with the Lease it observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nobody holds it, or the holder's record stood a whole lease duration.
    Take,
    /// It is this candidate's own.
    Renew,
    /// Another holds it until then at the earliest.
    Wait(Instant),
}

/// The pure decision of one try.
pub fn step(observed: &Observed, me: &str, now: Instant) -> Step {
    match observed.holder.as_deref() {
        None | Some("") => Step::Take,
        Some(holder) if holder == me => Step::Renew,
        Some(_) => {
            let free_at = observed.since + observed.lease;
            if now >= free_at {
                Step::Take
            } else {
                Step::Wait(free_at)
            }
        }
    }
}

/// One candidate's view of the Lease between tries.
struct Elector {
    api: Api<Lease>,
    election: Election,
    observed: Option<Observed>,
}

/// How a try ended.
enum Tried {
    /// This replica holds the lease; the write that says so was sent then.
    Holds(Instant),
    /// Another replica holds it (or won the race for it).
    Other,
}

impl Elector {
    /// Notes the record read at `now`; a record seen before keeps its time.
    fn observe(&mut self, lease: &Lease, now: Instant) {
        let resource_version = lease.metadata.resource_version.clone().unwrap_or_default();
        if self
            .observed
            .as_ref()
            .is_some_and(|o| o.resource_version == resource_version)
        {
            return;
        }
        let spec = lease.spec.as_ref();
        let seconds = spec.and_then(|s| s.lease_duration_seconds).unwrap_or(0);
        self.observed = Some(Observed {
            resource_version,
            holder: spec.and_then(|s| s.holder_identity.clone()),
            lease: Duration::from_secs(seconds.max(1) as u64),
            since: now,
        });
    }

    fn held_by_me(&self) -> bool {
        self.observed
            .as_ref()
            .is_some_and(|o| o.holder.as_deref() == Some(self.election.identity.as_str()))
    }

    /// The spec that takes or renews `previous` for this replica.
    fn claim(&self, previous: Option<&LeaseSpec>, renew: bool) -> LeaseSpec {
        let now = MicroTime(Timestamp::now());
        let transitions = previous.and_then(|s| s.lease_transitions).unwrap_or(0);
        LeaseSpec {
            holder_identity: Some(self.election.identity.clone()),
            lease_duration_seconds: Some(self.election.timing.lease.as_secs().max(1) as i32),
            acquire_time: match renew {
                true => previous.and_then(|s| s.acquire_time.clone()),
                false => None,
            }
            .or_else(|| Some(now.clone())),
            renew_time: Some(now),
            lease_transitions: Some(if renew { transitions } else { transitions + 1 }),
            ..LeaseSpec::default()
        }
    }

    /// Reads the Lease and takes or renews it when [`step`] allows.
    async fn try_hold(&mut self) -> Result<Tried, kube::Error> {
        let name = self.election.lease.clone();
        let Some(mut lease) = self.api.get_opt(&name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name),
                    ..ObjectMeta::default()
                },
                spec: Some(self.claim(None, false)),
            };
            let sent = Instant::now();
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => {
                    self.observe(&created, Instant::now());
                    Ok(Tried::Holds(sent))
                }
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(Tried::Other),
                Err(e) => Err(e),
            };
        };
        self.observe(&lease, Instant::now());
        let observed = self.observed.as_ref().expect("just observed");
        let renew = match step(observed, &self.election.identity, Instant::now()) {
            Step::Wait(_) => return Ok(Tried::Other),
            Step::Renew => true,
            Step::Take => false,
        };
        // the read's resourceVersion stays on the object: a replace
        // conflicts if anyone wrote the Lease since
        lease.spec = Some(self.claim(lease.spec.as_ref(), renew));
        let sent = Instant::now();
        match self
            .api
            .replace(&self.election.lease, &PostParams::default(), &lease)
            .await
        {
            Ok(updated) => {
                self.observe(&updated, Instant::now());
                Ok(Tried::Holds(sent))
            }
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(Tried::Other),
            Err(e) => Err(e),
        }
    }

    /// Tries every retry period until this replica holds the lease; returns
    /// when the holding write was sent.
    async fn acquire(&mut self) -> Instant {
        let mut failing = false;
        loop {
            match self.try_hold().await {
                Ok(Tried::Holds(sent)) => return sent,
                Ok(Tried::Other) => failing = false,
                Err(error) if !failing => {
                    failing = true;
                    tracing::warn!(%error, lease = %self.election.lease, "cannot read or take the leader lease; trying again");
                }
                Err(error) => tracing::debug!(%error, "cannot read or take the leader lease"),
            }
            tokio::time::sleep(jittered(self.election.timing.retry)).await;
        }
    }

    /// Hands the lease back when this replica still holds it: no holder,
    /// a one-second duration (client-go's release). A conflict means someone
    /// else wrote it meanwhile: then it is not ours to hand back.
    async fn release(&mut self) {
        let name = &self.election.lease;
        let identity = &self.election.identity;
        let mut lease = match self.api.get_opt(name).await {
            Ok(Some(lease)) => lease,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%error, lease = %name, "cannot read the leader lease to hand it back; it expires on its own");
                return;
            }
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(identity.as_str()) {
            return;
        }
        let now = MicroTime(Timestamp::now());
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.acquire_time = Some(now.clone());
        spec.renew_time = Some(now);
        match self.api.replace(name, &PostParams::default(), &lease).await {
            Ok(_) => tracing::info!(%identity, lease = %name, "handed the leader lease back"),
            Err(error) => {
                tracing::warn!(%error, lease = %name, "cannot hand the leader lease back; it expires on its own")
            }
        }
    }

    /// Renews every retry period while the fence holds; returns why leading
    /// ended: the renew deadline passed, or another replica holds the lease.
    async fn keep(&mut self, fence: &Fence) -> &'static str {
        const EXPIRED: &str = "the lease was not renewed within the renew deadline";
        loop {
            tokio::select! {
                () = fence.expired() => return EXPIRED,
                () = tokio::time::sleep(self.election.timing.retry) => {}
            }
            let tried = tokio::select! {
                () = fence.expired() => return EXPIRED,
                tried = self.try_hold() => tried,
            };
            match tried {
                Ok(Tried::Holds(sent)) => fence.extend(self.election.timing.term(sent)),
                Ok(Tried::Other) if !self.held_by_me() => {
                    return "another replica holds the lease";
                }
                // a conflict with a write of our own record: read it again
                Ok(Tried::Other) => {}
                Err(error) => tracing::warn!(
                    %error,
                    "cannot renew the leader lease; trying again until the renew deadline"
                ),
            }
        }
    }
}

/// Spreads candidates' tries over a fifth of the period.
fn jittered(period: Duration) -> Duration {
    period.mul_f64(1.0 + 0.2 * fastrand::f64())
}

/// Waits for the lease, reconciles while holding it, and stops as soon as the
/// fence closes; then waits for the lease again. Returns when `stop`
/// resolves, having handed the lease back if it held it.
pub async fn lead_then_reconcile(
    election: Election,
    fence: Fence,
    reconciler: Reconciler,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), ControllerError> {
    const STOP: &str = "asked to stop";
    tokio::pin!(stop);
    let timing = election.timing;
    let identity = election.identity.clone();
    tracing::info!(
        lease = %election.lease,
        namespace = %election.namespace,
        %identity,
        lease_secs = timing.lease.as_secs_f64(),
        renew_deadline_secs = timing.renew_deadline.as_secs_f64(),
        "waiting for the leader lease"
    );
    let mut elector = Elector {
        api: Api::namespaced(reconciler.client.clone(), &election.namespace),
        election,
        observed: None,
    };
    let health = reconciler.health.clone();
    let metrics = reconciler.metrics.clone();
    loop {
        health.following.store(true, Ordering::Relaxed);
        let sent = tokio::select! {
            sent = elector.acquire() => sent,
            () = &mut stop => return Ok(()),
        };
        fence.extend(timing.term(sent));
        reconciler.accounts.invalidate_all();
        tracing::info!(%identity, "became leader");
        health.following.store(false, Ordering::Relaxed);
        metrics.leader.set(1);
        let mut run = Box::pin(reconciler.run());
        let why = tokio::select! {
            () = &mut run => "the controller stopped",
            why = elector.keep(&fence) => why,
            () = &mut stop => STOP,
        };
        fence.close();
        if why == STOP {
            // passes go on only to see their writes answered; new ones are fenced
            tokio::select! {
                () = fence.writes_done() => {}
                () = &mut run => {}
            }
            drop(run); // what is left of its passes would be fenced anyway
            tracing::info!(%identity, reason = why, "stopped leading: every write answered");
            metrics.leader.set(0);
            elector.release().await;
            return Ok(());
        }
        tracing::warn!(%identity, reason = why, "stopped leading: stopped reconciling");
        metrics.leader.set(0);
        health.synced.store(false, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(holder: Option<&str>, since: Instant) -> Observed {
        Observed {
            resource_version: "1".into(),
            holder: holder.map(str::to_owned),
            lease: Duration::from_secs(15),
            since,
        }
    }

    #[test]
    fn timing_keeps_client_go_s_proportions() {
        let t = Timing::from_lease(Duration::from_secs(15));
        assert_eq!(t.renew_deadline, Duration::from_secs(10));
        assert_eq!(t.retry, Duration::from_secs(2));
        let short = Timing::from_lease(Duration::from_secs(1));
        assert_eq!(short.lease, Duration::from_secs(2), "at least 2 s");
        assert!(short.retry < short.renew_deadline && short.renew_deadline < short.lease);
    }

    #[test]
    fn a_free_or_own_lease_is_taken_or_renewed() {
        let now = Instant::now();
        assert_eq!(step(&observed(None, now), "a", now), Step::Take);
        assert_eq!(step(&observed(Some(""), now), "a", now), Step::Take);
        assert_eq!(step(&observed(Some("a"), now), "a", now), Step::Renew);
    }

    #[test]
    fn another_s_lease_is_taken_only_after_it_stood_a_whole_duration_here() {
        let seen = Instant::now();
        let record = observed(Some("b"), seen);
        let free_at = seen + Duration::from_secs(15);
        assert_eq!(
            step(&record, "a", seen + Duration::from_secs(14)),
            Step::Wait(free_at)
        );
        assert_eq!(step(&record, "a", free_at), Step::Take);
    }

    #[test]
    fn a_term_ends_acting_before_the_lease_can_pass() {
        let t = Timing::from_lease(Duration::from_secs(15));
        let sent = Instant::now();
        let term = t.term(sent);
        // a follower counts from when it saw the record, after `sent`: it can
        // take over at `lease_until` at the earliest; the leader stops acting
        // a third of the lease before
        assert_eq!(term.act_until, sent + Duration::from_secs(10));
        assert_eq!(term.lease_until, sent + Duration::from_secs(15));
    }
}
