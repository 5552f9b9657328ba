//! One reconcile pass: gather facts, let [`crate::plan`] decide, run the
//! action, write what it concluded. All IO of a pass is here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action as Requeue;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::Instrument;

use super::Context;
use crate::api::{FINALIZER, MappedDomain, Ownership, RECONCILE_REQUESTED_AT, conditions};
use crate::closte::{AddOutcome, ApiKey, ClosteError, DeleteOutcome};
use crate::domain::Domain;
use crate::plan::{self, Action, ConflictWinner, Credentials, Facts, Observation, Outcome};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("object has no namespace")]
    NoNamespace,
}

/// The oldest MappedDomain claiming the same domain, if it is not `md`.
fn conflict_winner(md: &MappedDomain, ctx: &Context) -> Option<ConflictWinner> {
    fn key(m: &MappedDomain) -> (Option<Timestamp>, Option<&str>) {
        (
            m.metadata.creation_timestamp.as_ref().map(|t| t.0),
            m.metadata.uid.as_deref(),
        )
    }
    let state = ctx.store.state();
    let winner = state
        .iter()
        .filter(|other| {
            other.spec.domain == md.spec.domain && other.metadata.uid != md.metadata.uid
        })
        .min_by(|a, b| key(a).cmp(&key(b)))?;
    (key(winner) < key(md)).then(|| ConflictWinner {
        namespace: winner.namespace().unwrap_or_default(),
        name: winner.name_any(),
    })
}

/// The API key for `md`: its Secret's, or the controller's own.
async fn credentials(
    md: &MappedDomain,
    ns: &str,
    ctx: &Context,
) -> Result<(Credentials, Option<ApiKey>), Error> {
    let Some(reference) = &md.spec.credentials_ref else {
        return Ok(match &ctx.default_key {
            Some(key) => (Credentials::Available, Some(key.clone())),
            None => (Credentials::NoDefaultKey, None),
        });
    };
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let Some(secret) = secrets.get_opt(&reference.name).await? else {
        return Ok((
            Credentials::SecretNotFound {
                secret: reference.name.clone(),
            },
            None,
        ));
    };
    let key = secret
        .data
        .as_ref()
        .and_then(|d| d.get(&reference.key))
        .and_then(|bytes| std::str::from_utf8(&bytes.0).ok())
        .and_then(|text| ApiKey::new(text).ok());
    Ok(match key {
        Some(key) => (Credentials::Available, Some(key)),
        None => (
            Credentials::KeyNotInSecret {
                secret: reference.name.clone(),
                key: reference.key.clone(),
            },
            None,
        ),
    })
}

pub async fn reconcile(md: Arc<MappedDomain>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    let started = Instant::now();
    let _in_flight = ctx.metrics.reconcile_started();
    // every line about the object carries its namespace, name and domain
    let span = tracing::info_span!(
        "reconcile",
        namespace = md.namespace().unwrap_or_default(),
        name = %md.name_any(),
        domain = %md.spec.domain
    );
    let result = reconcile_inner(&md, &ctx).instrument(span).await;
    ctx.metrics.reconciled(started.elapsed(), result.is_ok());
    result
}

async fn reconcile_inner(md: &MappedDomain, ctx: &Context) -> Result<Requeue, Error> {
    let ns = md.namespace().ok_or(Error::NoNamespace)?;
    let name = md.name_any();
    let api: Api<MappedDomain> = Api::namespaced(ctx.client.clone(), &ns);
    let deleting = md.metadata.deletion_timestamp.is_some();
    let has_finalizer = md.finalizers().iter().any(|f| f == FINALIZER);
    if deleting && !has_finalizer {
        return Ok(Requeue::await_change());
    }
    let uid = md.uid().unwrap_or_default();
    if ctx.is_stale(&uid, md) {
        // this controller has written a newer version; its watch event follows
        return Ok(Requeue::await_change());
    }
    let span =
        tracing::info_span!("reconcile", namespace = %ns, name = %name, domain = %md.spec.domain);
    let _enter = span.enter();
    if !deleting && !has_finalizer {
        // its own pass: the next one starts from the object this write produced
        let written = set_finalizer(&api, md, true).await?;
        ctx.wrote(&uid, &written);
        return Ok(Requeue::await_change());
    }

    let conflict = conflict_winner(md, ctx);
    let (credentials, key) = if conflict.is_some() {
        (Credentials::Available, None)
    } else {
        credentials(md, &ns, ctx).await?
    };
    // After a failure, wait out the backoff unless something changed.
    let previous_reason = md
        .status
        .as_ref()
        .and_then(|s| {
            s.conditions
                .iter()
                .find(|c| c.type_ == conditions::REGISTERED)
        })
        .map(|c| c.reason.as_str());
    let credentials_changed = match previous_reason {
        Some("CredentialsNotFound" | "NoAPIKey") => credentials == Credentials::Available,
        Some("CredentialsRejected") => {
            let rejected = ctx.rejected_keys.lock().unwrap().get(&uid).cloned();
            key.as_ref().map(ApiKey::label) != rejected
        }
        _ => false,
    };
    let reconcile_request = md
        .annotations()
        .get(RECONCILE_REQUESTED_AT)
        .map(String::as_str);
    let may_write = conflict.is_none() && md.spec.suspend != Some(true) && !ctx.settings.dry_run;
    if may_write
        && let Some(wait) = plan::retry_wait(
            md.status.as_ref(),
            md.metadata.generation,
            reconcile_request,
            credentials_changed,
            Timestamp::now(),
        )
    {
        tracing::debug!(
            wait_ms = wait.as_millis() as u64,
            "waiting before the next try"
        );
        return Ok(Requeue::requeue(wait));
    }
    let domain = Domain::parse(&md.spec.domain);
    let account = key.as_ref().map(|k| ctx.accounts.get(k));
    let observation = match (&conflict, &account, &domain) {
        (Some(_), _, _) | (_, None, _) => Observation::NotObserved,
        (None, Some(_), Err(e)) => Observation::Failed(ClosteError::DomainRejected {
            domain: md.spec.domain.clone(),
            message: e.to_string(),
        }),
        (None, Some(account), Ok(domain)) => match account.contains(domain).await {
            Ok(true) => Observation::Present,
            Ok(false) => Observation::Absent,
            Err(e) => Observation::Failed(e),
        },
    };
    let mut facts = Facts {
        now: Timestamp::now(),
        generation: md.metadata.generation,
        spec: &md.spec,
        previous: md.status.as_ref(),
        deleting,
        conflict,
        credentials,
        observation,
        reconcile_request,
        settings: ctx.settings,
        probe: None,
    };
    let action = plan::decide(&facts);
    let outcome = match (action, &account, &domain) {
        (Action::Nothing, _, _) => Outcome::Idle,
        (Action::Add, Some(account), Ok(domain)) => {
            // Record the intent first: if this process dies between the add and
            // the status write, the next one still knows the alias is ours.
            if facts.previous.and_then(|s| s.ownership) != Some(Ownership::Created) {
                let mut intent = facts.previous.cloned().unwrap_or_default();
                intent.ownership = Some(Ownership::Created);
                let written = write_status(&api, &name, &intent).await?;
                ctx.wrote(&uid, &written);
            }
            tracing::info!("adding alias to Closte");
            match account.add(domain).await {
                Ok(AddOutcome::Added) => Outcome::Added,
                Ok(AddOutcome::AlreadyPresent) => Outcome::AlreadyPresent,
                Err(e) => Outcome::Failed(e),
            }
        }
        (Action::DeleteThenRelease, Some(account), Ok(domain)) => {
            tracing::info!("removing alias from Closte");
            match account.delete(domain).await {
                Ok(DeleteOutcome::Deleted) => Outcome::Deleted,
                Ok(DeleteOutcome::AlreadyAbsent) => Outcome::AlreadyAbsent,
                Err(e) => Outcome::Failed(e),
            }
        }
        (Action::Release, _, _) => Outcome::Released,
        // decide() only writes to Closte with an account and a valid domain
        (_, _, _) => Outcome::Idle,
    };
    if !deleting
        && plan::registered_after(&facts, action, &outcome)
        && plan::check_due(md.status.as_ref(), facts.now)
        && let Ok(domain) = &domain
    {
        let expected = md.spec.expected_targets.clone().unwrap_or_default();
        let probe = ctx.prober.check(domain, &expected).await;
        let tls = probe
            .tls
            .as_ref()
            .map_or("NotChecked", |t| t.verdict.reason());
        ctx.metrics.checked(probe.dns.verdict.reason(), tls);
        facts.probe = Some(probe);
    }
    let conclusion = plan::conclude(&facts, action, &outcome, fastrand::f64());
    let rejected_now = conclusion
        .status
        .conditions
        .iter()
        .any(|c| c.type_ == conditions::REGISTERED && c.reason == "CredentialsRejected");
    {
        let mut rejected = ctx.rejected_keys.lock().unwrap();
        match (&key, rejected_now) {
            (Some(key), true) => rejected.insert(uid.clone(), key.label()),
            _ => rejected.remove(&uid),
        };
    }
    publish(ctx, md, &conclusion.events).await;
    let released = matches!(
        outcome,
        Outcome::Released | Outcome::Deleted | Outcome::AlreadyAbsent
    ) && deleting;
    if released {
        set_finalizer(&api, md, false).await?;
        ctx.forget(&uid);
        tracing::info!("finalizer released");
        return Ok(Requeue::await_change());
    }
    if md.status.as_ref() != Some(&conclusion.status) {
        let written = write_status(&api, &name, &conclusion.status).await?;
        ctx.wrote(&uid, &written);
    }
    Ok(Requeue::requeue(conclusion.requeue))
}

/// Server-side applies the whole status under this controller's one field manager.
async fn write_status(
    api: &Api<MappedDomain>,
    name: &str,
    status: &crate::api::MappedDomainStatus,
) -> Result<MappedDomain, Error> {
    let patch = json!({
        "apiVersion": "closte-operator.io/v1alpha1",
        "kind": "MappedDomain",
        "status": status,
    });
    let params = PatchParams::apply(super::FIELD_MANAGER).force();
    Ok(api
        .patch_status(name, &params, &Patch::Apply(&patch))
        .await?)
}

/// Adds or removes this controller's finalizer, guarded by resourceVersion so
/// another writer's finalizers are never lost.
async fn set_finalizer(
    api: &Api<MappedDomain>,
    md: &MappedDomain,
    present: bool,
) -> Result<MappedDomain, Error> {
    let mut finalizers: Vec<String> = md
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    if present {
        finalizers.push(FINALIZER.to_owned());
    }
    let patch = json!({
        "metadata": {
            "finalizers": finalizers,
            "resourceVersion": md.resource_version(),
        }
    });
    let name = md.name_any();
    Ok(api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?)
}

async fn publish(ctx: &Context, md: &MappedDomain, notes: &[plan::Note]) {
    let reference = md.object_ref(&());
    for note in notes {
        let event = Event {
            type_: if note.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: note.reason.into(),
            note: Some(note.message.clone()),
            action: note.action.into(),
            secondary: None,
        };
        if let Err(e) = ctx.recorder.publish(&event, &reference).await {
            tracing::warn!(error = %e, reason = note.reason, "cannot publish event");
        }
    }
}

/// Requeue after a Kubernetes API error (conflicts, timeouts): soon, jittered.
pub fn error_policy(md: Arc<MappedDomain>, error: &Error, _ctx: Arc<Context>) -> Requeue {
    tracing::warn!(
        namespace = md.namespace().unwrap_or_default(),
        name = %md.name_any(),
        domain = %md.spec.domain,
        %error,
        "reconcile failed"
    );
    Requeue::requeue(Duration::from_millis(1000 + fastrand::u64(0..2000)))
}

/// Other MappedDomains with the same domain, to reconcile when `md` lets go of it.
pub fn rivals(
    md: &MappedDomain,
    store: &kube::runtime::reflector::Store<MappedDomain>,
) -> Vec<ObjectRef<MappedDomain>> {
    store
        .state()
        .iter()
        .filter(|other| {
            other.spec.domain == md.spec.domain && other.metadata.uid != md.metadata.uid
        })
        .map(|other| ObjectRef::from_obj(other.as_ref()))
        .collect()
}
