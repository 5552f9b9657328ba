//! One reconcile pass, top to bottom: read the object, [`gather`] the facts,
//! let [`plan::decide`] choose, run its Closte action, check DNS/TLS when the
//! plan asks, and write what [`plan::conclude`] derived. No decision here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::{Api, Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action as Requeue;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::Instrument;

use super::fresh::{Freshness, YIELD};
use super::gather::{self, Gathered, Observe, gather};
use super::{Context, Error};
use crate::api::Verification;
use crate::api::conditions::Reason;
use crate::api::{GROUP, MappedDomain, MappedDomainStatus, VERSION};
use crate::closte::{AddOutcome, ClosteError, DeleteOutcome};
use crate::plan::{self, Acted, Action, Conclusion, Finalizer, Outcome, Plan};

pub async fn reconcile(
    object: Arc<PartialObjectMeta<MappedDomain>>,
    ctx: Arc<Context>,
) -> Result<Requeue, Error> {
    let ns = object.namespace().ok_or(Error::NoNamespace)?;
    let name = object.name_any();
    let freshness = ctx.fresh.take(&ns, &name);
    // a new or changed object's requests go first, up to its action
    let first = !matches!(freshness, Freshness::Periodic(_));
    let _turn = match freshness {
        Freshness::Periodic(_) => match ctx.turns.try_periodic(ctx.fresh.waiting()) {
            Some(turn) => turn,
            // fresh work first: come back in a moment, spread out
            None => {
                return Ok(Requeue::requeue(
                    YIELD.mul_f64(0.25 + 0.75 * fastrand::f64()),
                ));
            }
        },
        _ => ctx.turns.fresh(),
    };
    let started = Instant::now();
    let _in_flight = ctx.metrics.reconcile_started();
    // every line about the object carries its namespace, name and domain
    let span = tracing::info_span!("reconcile", namespace = %ns, name = %name, domain = tracing::field::Empty);
    let api = Api::namespaced(ctx.sources.client.clone(), &ns);
    let result = (ctx.sources.gate)
        .pass(first, pass(&api, freshness, &ns, &name, &ctx))
        .instrument(span.clone())
        .await;
    // the pass's end, for who reads when this replica acted
    span.in_scope(|| tracing::debug!(ok = result.is_ok(), "pass ended"));
    ctx.metrics.reconciled(started.elapsed(), result.is_ok());
    result
}

/// Where a pass's object came from, and so what the pass may do with it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Source {
    /// Read from the API server: anything.
    Read,
    /// A new object's copy from its watch event: anything, as the first
    /// write puts the finalizer on, guarded by the copy's resourceVersion.
    New,
    /// A kept copy ([`super::fresh`]): checks, and a status write guarded
    /// by the copy's resourceVersion; the object is read for anything else.
    Kept,
}

/// A pass on `name`, from the copy its watch event brought when there is
/// one ([`super::fresh`]), from a fresh read otherwise. A pass that acted
/// on a copy and failed drops it: the retry reads.
async fn pass(
    api: &Api<MappedDomain>,
    freshness: Freshness,
    ns: &str,
    name: &str,
    ctx: &Context,
) -> Result<Requeue, Error> {
    let (copy, source) = match freshness {
        Freshness::New(md) => (Some(md), Source::New),
        Freshness::Periodic(Some(md)) => (Some(md), Source::Kept),
        _ => (None, Source::Read),
    };
    let result = match copy {
        Some(md) => match pass_on(api, *md, source, ctx).await {
            Ok(Passed::Done(requeue)) => Ok(requeue),
            Ok(Passed::NeedsRead) => read_and_pass(api, name, ctx).await,
            Err(e) => Err(e),
        },
        None => read_and_pass(api, name, ctx).await,
    };
    if result.is_err() && source != Source::Read {
        ctx.fresh.stale(ns, name);
    }
    result
}

async fn read_and_pass(
    api: &Api<MappedDomain>,
    name: &str,
    ctx: &Context,
) -> Result<Requeue, Error> {
    let slot = ctx.sources.gate.enter().await;
    let read = api.get_opt(name).await;
    drop(slot);
    let Some(md) = read? else {
        return Ok(Requeue::await_change());
    };
    match pass_on(api, md, Source::Read, ctx).await? {
        Passed::Done(requeue) => Ok(requeue),
        Passed::NeedsRead => unreachable!("a read object is acted on"),
    }
}

/// How a pass on an object ended.
enum Passed {
    Done(Requeue),
    /// The plan acts, and the object was a kept copy: read it first.
    NeedsRead,
}

async fn pass_on(
    api: &Api<MappedDomain>,
    md: MappedDomain,
    source: Source,
    ctx: &Context,
) -> Result<Passed, Error> {
    tracing::Span::current().record("domain", md.spec.domain.as_str());
    let uid = uid(&md);
    let rejected_key = ctx.rejected_keys.lock().unwrap().get(&uid).cloned();
    let scheduled = ctx.schedules.overlaid(&uid, md.status.as_ref());
    let mut gathered = gather(&md, &ctx.sources, rejected_key, Observe::WhenNeeded).await?;
    if let Some(scheduled) = &scheduled {
        // as if the checks' schedule kept in memory had been written
        gathered.facts.previous = Some(scheduled);
    }
    let facts = &gathered.facts;
    let plan = plan::decide(facts);
    if source == Source::Kept && plan.acts() {
        return Ok(Passed::NeedsRead);
    }
    let action = match plan {
        Plan::Skip => return Ok(Passed::Done(Requeue::await_change())),
        Plan::Wait(wait) => {
            tracing::debug!(
                wait_ms = wait.as_millis() as u64,
                "waiting before the next try"
            );
            return Ok(Passed::Done(Requeue::requeue(wait)));
        }
        Plan::Act { finalizer, action } => {
            if let Some(finalizer) = finalizer {
                // guarded by the resourceVersion read: a pass on a stale
                // object ends here, in a conflict, before it acts
                set_finalizer(ctx, api, &md, Some(finalizer)).await?;
            }
            action
        }
    };
    let acted = Acted::new(facts, action, act(action, &gathered).await?);
    // what is left is the record: after other objects' actions
    ctx.sources.gate.lower();
    let check = match (&gathered.domain, acted.wants_check(facts)) {
        (Some(domain), true) => {
            let _checking = ctx.checks.acquire().await;
            // read per check for now (docs/proof.md: to be kept by a watch)
            let prober = &ctx.sources.prober;
            let token = match md.spec.verification.unwrap_or(prober.verification) {
                Verification::Dns => None,
                _ => {
                    let secret = ctx.sources.prober.proof_secret.as_deref();
                    let ns = md.namespace().unwrap_or_default();
                    gather::proof_token(&ctx.sources, secret, &ns).await
                }
            };
            let check =
                gather::check(&ctx.sources.prober, domain, &md.spec, token.as_deref()).await;
            let tls = check.tls.as_ref().map_or(Reason::NotChecked, |t| t.reason);
            ctx.metrics.checked(check.dns.reason.as_str(), tls.as_str());
            Some(check)
        }
        _ => None,
    };
    let conclusion = plan::conclude(facts, &acted, check.as_ref(), fastrand::f64());
    // a copy's status is written only over the very object it copies
    let guard = (source == Source::Kept)
        .then(|| md.resource_version())
        .flatten();
    record(ctx, api, &md, &uid, conclusion, guard)
        .await
        .map(Passed::Done)
}

/// Runs the plan's Closte action; Closte's answer becomes the outcome. A
/// write the fence refused ends the pass: this replica no longer leads.
async fn act(action: Action, gathered: &Gathered<'_>) -> Result<Outcome, Error> {
    let write = match action {
        Action::Nothing => return Ok(Outcome::Idle),
        Action::Release => return Ok(Outcome::Released),
        Action::Add => true,
        Action::DeleteThenRelease => false,
    };
    // the plan writes to Closte only with a key and a valid domain
    let (Some(account), Some(domain)) = (&gathered.account, &gathered.domain) else {
        return Ok(Outcome::Idle);
    };
    let outcome = if write {
        tracing::info!("adding alias to Closte");
        account.add(domain).await.map(|added| match added {
            AddOutcome::Added => Outcome::Added,
            AddOutcome::AlreadyPresent => Outcome::AlreadyPresent,
        })
    } else {
        tracing::info!("removing alias from Closte");
        account.delete(domain).await.map(|deleted| match deleted {
            DeleteOutcome::Deleted => Outcome::Deleted,
            DeleteOutcome::AlreadyAbsent => Outcome::AlreadyAbsent,
        })
    };
    match outcome {
        Ok(outcome) => Ok(outcome),
        Err(ClosteError::Fenced(fenced)) => Err(fenced.into()),
        Err(e) => Ok(Outcome::Failed(gather::failure(&e))),
    }
}

/// Carries out the conclusion: remembers a rejected key, releases the
/// finalizer or writes the status (with `guard`, only over that
/// resourceVersion), then publishes events: a write that failed publishes
/// none, and its retry concludes them again.
async fn record(
    ctx: &Context,
    api: &Api<MappedDomain>,
    md: &MappedDomain,
    uid: &str,
    conclusion: Conclusion,
    guard: Option<String>,
) -> Result<Requeue, Error> {
    {
        let mut rejected = ctx.rejected_keys.lock().unwrap();
        match &conclusion.rejected_key {
            Some(label) => rejected.insert(uid.to_owned(), label.clone()),
            None => rejected.remove(uid),
        };
    }
    let requeue = if conclusion.release_finalizer {
        set_finalizer(ctx, api, md, None).await?;
        ctx.schedules.forget(uid);
        tracing::info!("finalizer released");
        Requeue::await_change()
    } else {
        if conclusion.write_status {
            write_status(ctx, api, &md.name_any(), &conclusion.status, guard).await?;
            ctx.schedules.forget(uid);
        } else if conclusion.keep_schedule {
            ctx.schedules
                .keep(uid, md.status.as_ref(), &conclusion.status);
        }
        Requeue::requeue(conclusion.requeue)
    };
    let reference = md.object_ref(&());
    for note in &conclusion.events {
        ctx.publisher.publish(note, &reference).await;
    }
    Ok(requeue)
}

fn uid(md: &MappedDomain) -> String {
    md.metadata.uid.clone().unwrap_or_default()
}

/// Server-side applies the whole status under this controller's one field
/// manager, while this replica leads; with `guard`, only over that
/// resourceVersion (a conflict otherwise).
async fn write_status(
    ctx: &Context,
    api: &Api<MappedDomain>,
    name: &str,
    status: &MappedDomainStatus,
    guard: Option<String>,
) -> Result<(), Error> {
    let mut patch = json!({
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "kind": MappedDomain::kind(&()),
        "status": status,
    });
    if let Some(resource_version) = guard {
        patch["metadata"] = json!({ "resourceVersion": resource_version });
    }
    let params = PatchParams::apply(super::FIELD_MANAGER).force();
    let _slot = ctx.sources.gate.enter().await;
    fenced(ctx)?;
    api.patch_status(name, &params, &Patch::Apply(&patch))
        .await?;
    Ok(())
}

/// Puts this controller's `finalizer` on (in place of the other) or, with
/// None, takes it off, guarded by resourceVersion so another writer's
/// finalizers are never lost; while this replica leads.
async fn set_finalizer(
    ctx: &Context,
    api: &Api<MappedDomain>,
    md: &MappedDomain,
    finalizer: Option<Finalizer>,
) -> Result<(), Error> {
    let mut finalizers: Vec<&str> = md
        .finalizers()
        .iter()
        .map(String::as_str)
        .filter(|f| !Finalizer::is_ours(f))
        .collect();
    finalizers.extend(finalizer.map(Finalizer::name));
    let patch = json!({
        "metadata": {
            "finalizers": finalizers,
            "resourceVersion": md.resource_version(),
        }
    });
    let _slot = ctx.sources.gate.enter().await;
    fenced(ctx)?;
    api.patch(
        &md.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(())
}

/// A write of the object may go out only while this replica's term lasts: a
/// replica that lost the lease must not overwrite its successor's status.
fn fenced(ctx: &Context) -> Result<(), Error> {
    if ctx.fence.may_act(tokio::time::Instant::now()) {
        Ok(())
    } else {
        Err(crate::fence::Fenced.into())
    }
}

/// Requeue after a Kubernetes API error (conflicts, timeouts): soon, jittered.
pub fn error_policy(
    object: Arc<PartialObjectMeta<MappedDomain>>,
    error: &Error,
    _ctx: Arc<Context>,
) -> Requeue {
    tracing::warn!(
        namespace = object.namespace().unwrap_or_default(),
        name = %object.name_any(),
        %error,
        "reconcile failed"
    );
    let base = match error {
        // the Namespace watch retries with its own backoff: no sooner
        Error::NamespacesNotSynced => 10_000,
        _ => 1000,
    };
    Requeue::requeue(Duration::from_millis(base + fastrand::u64(0..2000)))
}
