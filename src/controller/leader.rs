//! Leader election on a Lease: only the leader reconciles, and it stops at
//! once when it loses the lease.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::ControllerError;
use super::watch::Work;

/// Waits for the lease, works while holding it, and stops at once on losing it.
pub async fn lead_then_work(
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
    let health = work.health.clone();
    let metrics = work.metrics.clone();
    loop {
        health.following.store(true, Ordering::Relaxed);
        if leading.wait_for(|l| *l).await.is_err() {
            return Ok(());
        }
        tracing::info!(%identity, "became leader");
        health.following.store(false, Ordering::Relaxed);
        metrics.leader.set(1);
        tokio::select! {
            () = work.run() => tracing::error!("the controller stopped while leading"),
            _ = leading.wait_for(|l| !*l) => {
                tracing::warn!(%identity, "lost the leader lease: stopped reconciling");
            }
        }
        metrics.leader.set(0);
        health.synced.store(false, Ordering::Relaxed);
    }
}
