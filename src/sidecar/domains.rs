//! The namespace's MappedDomains as the sidecar sees and changes them: read
//! from its watch cache ([`super::cache`]), written under the sidecar's own
//! field manager. Both doors go through here.
//!
//! The sidecar touches only what it made: an object without its managed-by
//! label is refused (409) to every write and delete, and a site's sync
//! neither deletes nor counts it. New objects are created (which fails when
//! the name is taken meanwhile); changes carry the `resourceVersion` they
//! were decided on, deletes the uid and `resourceVersion`: of two requests
//! racing for one object, one wins and the other decides again on what the
//! winner wrote.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use serde::Serialize;
use serde_json::json;

use super::cache::Cache;
use super::names::name_for;
use crate::api::{CheckInterval, MappedDomain, MappedDomainSpec, SecretKeyRef};
use crate::domain::{self, Domain};

/// The field manager of every write the sidecar makes.
pub const FIELD_MANAGER: &str = "closte-operator-sidecar";
/// Label with the WordPress site (blog) id of a MappedDomain.
pub const SITE_LABEL: &str = "closte-operator.io/site-id";
/// The standard label that says who manages an object, and its value here.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", FIELD_MANAGER);

/// The longest a write may take before the request fails (and says so).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a write's answer waits for the watch cache to show it.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often one domain's write is decided again after losing a race to
/// another writer (or to the controller, whose status writes change the
/// `resourceVersion` a delete is conditioned on) before the request gives up.
const ATTEMPTS: usize = 4;

/// What every MappedDomain the sidecar writes gets, from its flags
/// (`check_interval` only when the request gives none).
#[derive(Debug, Clone, Default)]
pub struct Template {
    pub credentials_ref: Option<SecretKeyRef>,
    pub check_interval: Option<CheckInterval>,
    pub expected_targets: Option<Vec<String>>,
}

/// Why a write did not happen. Messages are for the caller.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Invalid(#[from] domain::DomainError),
    #[error("{domain} belongs to site {site}")]
    OtherSite { domain: String, site: i64 },
    #[error("{0} is being deleted; try again when it is gone")]
    Deleting(String),
    #[error("the MappedDomain {name} is there for {theirs}, not {domain}")]
    NameTaken {
        name: String,
        domain: String,
        theirs: String,
    },
    #[error(
        "the MappedDomain {name} for {domain} was not made by the sidecar (it lacks the label {key}={value}); the sidecar neither changes nor deletes it",
        key = MANAGED_BY.0,
        value = MANAGED_BY.1
    )]
    NotManaged { name: String, domain: String },
    #[error("{0} kept being changed by other writers while this request wrote it; try again")]
    Raced(String),
    #[error("the Kubernetes API refused the write ({code}): {message}")]
    Refused { code: u16, message: String },
    #[error("the Kubernetes API is unavailable: {0}")]
    Unavailable(String),
}

impl From<kube::Error> for WriteError {
    fn from(error: kube::Error) -> Self {
        match error {
            kube::Error::Api(status) => WriteError::Refused {
                code: status.code,
                message: status.message,
            },
            other => WriteError::Unavailable(other.to_string()),
        }
    }
}

/// `error`, read as a lost race for `domain` when the API server answered
/// one of `codes` (409: the name was taken, or a precondition failed; 404:
/// the object went away), else as it is.
fn lost_race(error: kube::Error, codes: &[u16], domain: &Domain) -> WriteError {
    match error {
        kube::Error::Api(status) if codes.contains(&status.code) => {
            WriteError::Raced(domain.to_string())
        }
        other => other.into(),
    }
}

/// What [`Domains::ensure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ensured {
    Created,
    /// It was there; its site id was set, or its checkInterval changed.
    Updated,
    Unchanged,
}

/// What a whole-set sync of one site did, by domain.
#[derive(Debug, Default, Serialize)]
pub struct SyncReport {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub deleted: Vec<String>,
    pub unchanged: Vec<String>,
}

pub struct Domains {
    api: Api<MappedDomain>,
    cache: Arc<Cache>,
    template: Template,
}

/// The normalised domain an object claims (as written when it breaks the rules).
fn claimed(md: &MappedDomain) -> String {
    crate::domain::claimed_domain(&md.spec.domain)
}

/// Whether the object carries the sidecar's managed-by label: only such
/// objects does the sidecar change or delete.
pub fn managed_by_sidecar(md: &MappedDomain) -> bool {
    md.metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(MANAGED_BY.0))
        .is_some_and(|value| value == MANAGED_BY.1)
}

impl Domains {
    pub fn new(api: Api<MappedDomain>, cache: Arc<Cache>, template: Template) -> Domains {
        Domains {
            api,
            cache,
            template,
        }
    }

    /// Every MappedDomain of the namespace, by domain.
    pub fn list(&self) -> Vec<Arc<MappedDomain>> {
        let mut all = self.cache.objects();
        all.sort_by(|a, b| a.spec.domain.cmp(&b.spec.domain));
        all
    }

    /// The MappedDomain claiming `domain`, from the cache's index.
    pub fn find(&self, domain: &Domain) -> Option<Arc<MappedDomain>> {
        self.cache.claiming(domain.as_str(), &name_for(domain))
    }

    /// The name of `domain`'s object: the cached one claiming it, else the
    /// one the sidecar would give it.
    fn name_of(&self, domain: &Domain) -> String {
        match self.find(domain) {
            Some(md) => md.metadata.name.clone().unwrap_or_default(),
            None => name_for(domain),
        }
    }

    /// The object of this name as the API server has it now.
    async fn fresh(&self, name: &str) -> Result<Option<MappedDomain>, WriteError> {
        timed(async { Ok(self.api.get_opt(name).await?) }).await
    }

    /// What a write of `wanted` must do, from a fresh read: see [`decide`].
    async fn plan(&self, wanted: &Wanted<'_>) -> Result<Write, WriteError> {
        let existing = self.fresh(&self.name_of(wanted.domain)).await?;
        decide(wanted, existing, &self.template)
    }

    /// Carries out a [`Domains::plan`]; a write that lost a race is decided
    /// again on what the winner wrote (at most [`ATTEMPTS`] times in all).
    async fn carry_out(
        &self,
        wanted: &Wanted<'_>,
        mut write: Write,
    ) -> Result<(Ensured, MappedDomain), WriteError> {
        let mut attempt = 1;
        loop {
            match self.write(wanted.domain, write).await {
                Err(WriteError::Raced(_)) if attempt < ATTEMPTS => {
                    attempt += 1;
                    let domain = wanted.domain;
                    tracing::debug!(%domain, attempt, "another writer got there first: deciding again");
                    write = self.plan(wanted).await?;
                }
                result => return result,
            }
        }
    }

    /// One attempt at a [`Write`]; [`WriteError::Raced`] when another
    /// writer got there first.
    async fn write(
        &self,
        domain: &Domain,
        write: Write,
    ) -> Result<(Ensured, MappedDomain), WriteError> {
        let (ensured, written) = match write {
            Write::Nothing(md) => return Ok((Ensured::Unchanged, *md)),
            Write::Create { name, fields } => {
                let object = new_object(&name, domain, &fields);
                let params = PostParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..PostParams::default()
                };
                let created = timed(async {
                    let created = self.api.create(&params, &object).await;
                    created.map_err(|e| lost_race(e, &[409], domain))
                })
                .await?;
                (Ensured::Created, created)
            }
            Write::Update {
                name,
                resource_version,
                fields,
            } => {
                let patch = update_patch(&resource_version, &fields);
                let params = PatchParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..PatchParams::default()
                };
                let updated = timed(async {
                    let updated = self.api.patch(&name, &params, &Patch::Merge(&patch)).await;
                    updated.map_err(|e| lost_race(e, &[404, 409], domain))
                })
                .await?;
                (Ensured::Updated, updated)
            }
        };
        let name = written.metadata.name.as_deref().unwrap_or_default();
        let (site, check_interval) = (written.spec.site_id, written.spec.check_interval.as_deref());
        tracing::info!(%domain, name, site, check_interval, ?ensured, "MappedDomain written");
        let version = written.metadata.resource_version.clone();
        self.settle(name, |cached| {
            cached.is_some_and(|md| md.metadata.resource_version == version)
        })
        .await;
        Ok((ensured, written))
    }

    /// Makes sure a MappedDomain for `domain` exists (for `site`, if given),
    /// with `interval` if given (see [`decide`]). Idempotent; refuses a
    /// domain that belongs to another site, and an object the sidecar did
    /// not make.
    pub async fn ensure(
        &self,
        domain: &Domain,
        site: Option<i64>,
        interval: Option<&CheckInterval>,
    ) -> Result<(Ensured, MappedDomain), WriteError> {
        let wanted = Wanted {
            domain,
            site,
            interval,
        };
        let write = self.plan(&wanted).await?;
        self.carry_out(&wanted, write).await
    }

    /// Deletes the MappedDomain of `domain`; `false` when there was none
    /// (an object at its name that is there for another domain is left
    /// alone). Refuses one the sidecar did not make.
    pub async fn remove(&self, domain: &Domain) -> Result<bool, WriteError> {
        self.remove_named(domain, &self.name_of(domain)).await
    }

    /// Deletes the object `name` for `domain`, read fresh: see [`removal`].
    /// The delete is conditioned on the uid and `resourceVersion` it was
    /// decided on; when another writer changed the object meanwhile, it is
    /// decided again (at most [`ATTEMPTS`] times in all).
    async fn remove_named(&self, domain: &Domain, name: &str) -> Result<bool, WriteError> {
        let mut attempt = 1;
        loop {
            let Some(md) = removal(domain, self.fresh(name).await?)? else {
                return Ok(false);
            };
            match self.delete(domain, &md).await {
                Err(WriteError::Raced(_)) if attempt < ATTEMPTS => {
                    attempt += 1;
                    tracing::debug!(%domain, attempt, "changed since it was read: deciding again");
                }
                result => return result,
            }
        }
    }

    /// One attempt at deleting `md`, as it was read.
    async fn delete(&self, domain: &Domain, md: &MappedDomain) -> Result<bool, WriteError> {
        let name = md.metadata.name.clone().unwrap_or_default();
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: md.metadata.uid.clone(),
                resource_version: md.metadata.resource_version.clone(),
            }),
            ..DeleteParams::default()
        };
        timed(async {
            match self.api.delete(&name, &params).await {
                Ok(_) => {
                    tracing::info!(%domain, name, "MappedDomain deleted");
                    // gone, or (with a finalizer) marked for deletion
                    let uid = md.metadata.uid.clone();
                    self.settle(&name, |cached| {
                        cached.is_none_or(|c| {
                            c.metadata.uid != uid || c.metadata.deletion_timestamp.is_some()
                        })
                    })
                    .await;
                    Ok(true)
                }
                Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
                Err(e) => Err(lost_race(e, &[409], domain)),
            }
        })
        .await
    }

    /// Makes site `site`'s MappedDomains exactly `domains` (with `interval`,
    /// if given: see [`decide`]): creates the missing, deletes the site's
    /// others that the sidecar made, touches nothing else. Refuses the
    /// whole set, writing nothing, when one of them cannot be written
    /// (another site's, being deleted, its name taken, not the sidecar's):
    /// every listed domain is read fresh from the API server before the
    /// first write, so a cache that has not yet seen a recent write cannot
    /// let a refusal come halfway. Idempotent: a sync cut short (503, or a
    /// 409 from a writer racing it) is completed by the next.
    pub async fn sync(
        &self,
        site: i64,
        domains: &[Domain],
        interval: Option<&CheckInterval>,
    ) -> Result<SyncReport, WriteError> {
        let wanted: Vec<Wanted<'_>> = domains
            .iter()
            .map(|domain| Wanted {
                domain,
                site: Some(site),
                interval,
            })
            .collect();
        let mut writes = Vec::with_capacity(wanted.len());
        for one in &wanted {
            writes.push(self.plan(one).await?);
        }
        let mut report = SyncReport::default();
        for (one, write) in wanted.iter().zip(writes) {
            let (ensured, _) = self.carry_out(one, write).await?;
            let list = match ensured {
                Ensured::Created => &mut report.created,
                Ensured::Updated => &mut report.updated,
                Ensured::Unchanged => &mut report.unchanged,
            };
            list.push(one.domain.to_string());
        }
        let listed: HashSet<&str> = domains.iter().map(Domain::as_str).collect();
        let mut stale: Vec<(String, String)> = self
            .cache
            .entries()
            .into_iter()
            .filter(|(md, claimed)| {
                md.spec.site_id == Some(site)
                    && managed_by_sidecar(md)
                    && !listed.contains(claimed.as_str())
            })
            .map(|(md, claimed)| (claimed, md.metadata.name.clone().unwrap_or_default()))
            .collect();
        stale.sort();
        for (claimed, name) in stale {
            // the sidecar writes only valid domains; anything else is not its own
            let Ok(domain) = Domain::parse(&claimed) else {
                continue;
            };
            if self.remove_named(&domain, &name).await? {
                report.deleted.push(claimed);
            }
        }
        Ok(report)
    }
}

impl Domains {
    /// Waits until the watch cache's copy of the object `name` satisfies
    /// `shown`, so that reads, which come from the cache, see a write once
    /// it is answered. Bounded by [`SETTLE_TIMEOUT`]: the write is done
    /// either way.
    async fn settle(&self, name: &str, shown: impl Fn(Option<&MappedDomain>) -> bool) {
        let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
        while !shown(self.cache.get(name).as_deref()) {
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(name, "the watch cache did not show a write in time");
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// What a request asks of one domain.
#[derive(Debug, Clone, Copy)]
struct Wanted<'a> {
    domain: &'a Domain,
    site: Option<i64>,
    interval: Option<&'a CheckInterval>,
}

/// The spec fields the sidecar writes besides the domain. Every write sends
/// all of them, those it does not mean to change as they are.
#[derive(Debug, Clone, PartialEq)]
struct Fields {
    site: Option<i64>,
    check_interval: Option<String>,
    credentials_ref: Option<SecretKeyRef>,
    expected_targets: Option<Vec<String>>,
}

/// What [`Domains::write`] has to do for one domain.
#[derive(Debug, PartialEq)]
enum Write {
    /// Create the object of this name (fails if the name is taken by then).
    Create { name: String, fields: Fields },
    /// Change the object of this name, as long as it is still at
    /// `resource_version`: its site id (it had none), its checkInterval, or both.
    Update {
        name: String,
        resource_version: String,
        fields: Fields,
    },
    /// It is there as asked.
    Nothing(Box<MappedDomain>),
}

/// What a write of `wanted` must do, given the object at its name as the
/// API server has it now (`existing`). Refuses a name that another domain's
/// MappedDomain holds, an object the sidecar did not make, an object being
/// deleted, and another site's domain.
///
/// A new object gets the requested interval, else the template's. An
/// existing one gets the requested interval when its own differs, as
/// written. Setting the site id of an object that has none gives it the
/// template's credentials and expected targets too; an interval change
/// alone changes nothing else.
fn decide(
    wanted: &Wanted<'_>,
    existing: Option<MappedDomain>,
    template: &Template,
) -> Result<Write, WriteError> {
    let domain = wanted.domain;
    let Some(md) = existing else {
        let interval = wanted.interval.or(template.check_interval.as_ref());
        let fields = Fields {
            site: wanted.site,
            check_interval: interval.map(|i| i.as_str().to_owned()),
            credentials_ref: template.credentials_ref.clone(),
            expected_targets: template.expected_targets.clone(),
        };
        let name = name_for(domain);
        return Ok(Write::Create { name, fields });
    };
    let name = md.metadata.name.clone().unwrap_or_default();
    let theirs = claimed(&md);
    if theirs != domain.as_str() {
        let domain = domain.to_string();
        return Err(WriteError::NameTaken {
            name,
            domain,
            theirs,
        });
    }
    if !managed_by_sidecar(&md) {
        let domain = domain.to_string();
        return Err(WriteError::NotManaged { name, domain });
    }
    if md.metadata.deletion_timestamp.is_some() {
        return Err(WriteError::Deleting(domain.to_string()));
    }
    if let (Some(held), Some(asked)) = (md.spec.site_id, wanted.site)
        && held != asked
    {
        return Err(WriteError::OtherSite {
            domain: domain.to_string(),
            site: held,
        });
    }
    let sets_site = md.spec.site_id.is_none() && wanted.site.is_some();
    let new_interval = wanted
        .interval
        .filter(|asked| md.spec.check_interval.as_deref() != Some(asked.as_str()));
    if !sets_site && new_interval.is_none() {
        return Ok(Write::Nothing(Box::new(md)));
    }
    let spec = &md.spec;
    let check_interval = match new_interval {
        Some(asked) => Some(asked.as_str().to_owned()),
        None => spec.check_interval.clone(),
    };
    let fields = if sets_site {
        Fields {
            site: wanted.site,
            check_interval,
            credentials_ref: template.credentials_ref.clone(),
            expected_targets: template.expected_targets.clone(),
        }
    } else {
        Fields {
            site: spec.site_id,
            check_interval,
            credentials_ref: spec.credentials_ref.clone(),
            expected_targets: spec.expected_targets.clone(),
        }
    };
    // the API server sets it on every object it returns
    let resource_version = md.metadata.resource_version.clone().unwrap_or_default();
    Ok(Write::Update {
        name,
        resource_version,
        fields,
    })
}

/// Whether a delete of `domain` deletes `existing` (the object at its name,
/// read fresh): `None` when there is nothing of `domain`'s to delete (no
/// object, or one there for another domain); refuses an object the sidecar
/// did not make.
fn removal(
    domain: &Domain,
    existing: Option<MappedDomain>,
) -> Result<Option<MappedDomain>, WriteError> {
    let Some(md) = existing else {
        return Ok(None);
    };
    if claimed(&md) != domain.as_str() {
        return Ok(None);
    }
    if !managed_by_sidecar(&md) {
        let name = md.metadata.name.clone().unwrap_or_default();
        let domain = domain.to_string();
        return Err(WriteError::NotManaged { name, domain });
    }
    Ok(Some(md))
}

/// The sidecar's labels for an object of `site`.
fn labels(site: Option<i64>) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([(MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned())]);
    if let Some(site) = site {
        labels.insert(SITE_LABEL.to_owned(), site.to_string());
    }
    labels
}

/// The object the sidecar creates at `name` for `domain`.
fn new_object(name: &str, domain: &Domain, fields: &Fields) -> MappedDomain {
    let mut md = MappedDomain::new(
        name,
        MappedDomainSpec {
            domain: domain.as_str().to_owned(),
            site_id: fields.site,
            credentials_ref: fields.credentials_ref.clone(),
            check_interval: fields.check_interval.clone(),
            expected_targets: fields.expected_targets.clone(),
            ..MappedDomainSpec::default()
        },
    );
    md.metadata.labels = Some(labels(fields.site));
    md
}

/// The JSON merge patch of an update: every field the sidecar writes (an
/// unset one `null`, which removes it), the site label, and the
/// `resourceVersion` the update was decided on, which the API server
/// checks (409 when the object changed since).
fn update_patch(resource_version: &str, fields: &Fields) -> serde_json::Value {
    let mut metadata = json!({ "resourceVersion": resource_version });
    // only the site label: `labels: null` would remove every label
    if let Some(site) = fields.site {
        metadata["labels"] = json!({ (SITE_LABEL): site.to_string() });
    }
    json!({
        "metadata": metadata,
        "spec": {
            "siteId": fields.site,
            "credentialsRef": fields.credentials_ref,
            "checkInterval": fields.check_interval,
            "expectedTargets": fields.expected_targets,
        },
    })
}

/// A request to the API server bounded by [`WRITE_TIMEOUT`].
async fn timed<T>(write: impl Future<Output = Result<T, WriteError>>) -> Result<T, WriteError> {
    tokio::time::timeout(WRITE_TIMEOUT, write)
        .await
        .unwrap_or_else(|_| {
            Err(WriteError::Unavailable(format!(
                "no answer within {}s",
                WRITE_TIMEOUT.as_secs()
            )))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain(d: &str) -> Domain {
        Domain::parse(d).unwrap()
    }

    fn interval(s: &str) -> CheckInterval {
        CheckInterval::parse(s).unwrap()
    }

    fn template() -> Template {
        Template {
            credentials_ref: Some(SecretKeyRef {
                name: "closte-api-key".into(),
                key: "apiKey".into(),
            }),
            check_interval: Some(interval("10s")),
            expected_targets: Some(vec!["192.0.2.1".into()]),
        }
    }

    /// An object for `d` at the sidecar's name as the API server returns
    /// it (uid, resourceVersion 7), with the managed-by label or without.
    fn existing(d: &str, managed: bool, site: Option<i64>, every: Option<&str>) -> MappedDomain {
        let mut md = MappedDomain::new(
            &name_for(&domain(d)),
            MappedDomainSpec {
                domain: d.into(),
                site_id: site,
                check_interval: every.map(str::to_owned),
                ..Default::default()
            },
        );
        md.metadata.uid = Some("uid-1".into());
        md.metadata.resource_version = Some("7".into());
        if managed {
            md.metadata.labels = Some(labels(site));
        }
        md
    }

    fn decided(
        d: &str,
        site: Option<i64>,
        asked: Option<&str>,
        md: Option<MappedDomain>,
    ) -> Result<Write, WriteError> {
        let asked = asked.map(interval);
        let d = domain(d);
        let wanted = Wanted {
            domain: &d,
            site,
            interval: asked.as_ref(),
        };
        decide(&wanted, md, &template())
    }

    /// The fields of an update, or a panic saying what was decided instead.
    fn update(write: Result<Write, WriteError>) -> Fields {
        match write {
            Ok(Write::Update {
                fields,
                resource_version,
                ..
            }) => {
                assert_eq!(resource_version, "7", "conditioned on what was read");
                fields
            }
            other => panic!("not an update: {other:?}"),
        }
    }

    #[test]
    fn a_new_object_gets_the_asked_interval_else_the_templates() {
        let Ok(Write::Create { name, fields }) = decided("a.example", Some(3), Some("60s"), None)
        else {
            panic!("not a create");
        };
        assert_eq!(name, "a-example");
        assert_eq!(fields.check_interval.as_deref(), Some("60s"));
        assert_eq!(fields.site, Some(3));
        assert_eq!(fields.credentials_ref, template().credentials_ref);
        let Ok(Write::Create { fields, .. }) = decided("a.example", None, None, None) else {
            panic!("not a create");
        };
        assert_eq!(fields.check_interval.as_deref(), Some("10s"), "the flag's");
    }

    #[test]
    fn a_managed_object_gets_an_asked_interval_that_differs_and_nothing_else_changes() {
        let mut md = existing("a.example", true, Some(3), Some("10s"));
        md.spec.credentials_ref = None;
        md.spec.expected_targets = Some(vec!["shop.example".into()]);
        let fields = update(decided("a.example", None, Some("2m"), Some(md.clone())));
        assert_eq!(
            fields,
            Fields {
                site: Some(3),
                check_interval: Some("2m".into()),
                credentials_ref: None,
                expected_targets: Some(vec!["shop.example".into()]),
            },
            "the object's own site, credentials and targets, not the template's"
        );
        // the same, as written: nothing to do; `2m` is not `120s`
        md.spec.check_interval = Some("2m".into());
        for (site, asked) in [(None, Some("2m")), (Some(3), Some("2m")), (Some(3), None)] {
            assert!(
                matches!(
                    decided("a.example", site, asked, Some(md.clone())),
                    Ok(Write::Nothing(_))
                ),
                "{site:?} {asked:?}"
            );
        }
        let fields = update(decided("a.example", Some(3), Some("120s"), Some(md)));
        assert_eq!(fields.check_interval.as_deref(), Some("120s"));
        // an object with no interval yet gets one
        let md = existing("a.example", true, None, None);
        let fields = update(decided("a.example", None, Some("30s"), Some(md)));
        assert_eq!(fields.check_interval.as_deref(), Some("30s"));
    }

    #[test]
    fn an_object_the_sidecar_did_not_make_is_refused_whatever_is_asked() {
        let mut by_helm = existing("a.example", false, Some(3), Some("1h"));
        by_helm.metadata.labels = Some(BTreeMap::from([(
            MANAGED_BY.0.to_owned(),
            "helm".to_owned(),
        )]));
        for md in [
            existing("a.example", false, Some(3), Some("1h")),
            existing("a.example", false, None, None),
            by_helm,
        ] {
            // even what would change nothing: the caller learns it is not the sidecar's
            for (site, asked) in [(None, None), (Some(3), None), (Some(3), Some("60s"))] {
                let refused = decided("a.example", site, asked, Some(md.clone()));
                let Err(WriteError::NotManaged { name, domain }) = refused else {
                    panic!("{site:?} {asked:?}: {refused:?}");
                };
                assert_eq!((name.as_str(), domain.as_str()), ("a-example", "a.example"));
            }
            let Err(refused) = removal(&domain("a.example"), Some(md)) else {
                panic!("an unmanaged object deleted");
            };
            let reason = refused.to_string();
            assert!(
                reason.contains("not made by the sidecar")
                    && reason.contains("app.kubernetes.io/managed-by=closte-operator-sidecar"),
                "{reason}"
            );
        }
    }

    #[test]
    fn setting_the_site_keeps_the_interval_and_adopts_the_template_otherwise() {
        let md = existing("a.example", true, None, Some("90s"));
        let fields = update(decided("a.example", Some(4), None, Some(md.clone())));
        assert_eq!(
            fields,
            Fields {
                site: Some(4),
                check_interval: Some("90s".into()),
                credentials_ref: template().credentials_ref,
                expected_targets: template().expected_targets,
            }
        );
        let fields = update(decided("a.example", Some(4), Some("5m"), Some(md)));
        assert_eq!(
            (fields.site, fields.check_interval.as_deref()),
            (Some(4), Some("5m")),
            "both in one write"
        );
    }

    #[test]
    fn refusals_come_before_any_interval() {
        let md = existing("a.example", true, Some(3), Some("10s"));
        assert!(matches!(
            decided("a.example", Some(4), Some("60s"), Some(md)),
            Err(WriteError::OtherSite { site: 3, .. })
        ));
        let mut md = existing("a.example", true, None, Some("10s"));
        let now = k8s_openapi::jiff::Timestamp::from_second(1_800_000_000).unwrap();
        md.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now));
        assert!(matches!(
            decided("a.example", None, Some("60s"), Some(md)),
            Err(WriteError::Deleting(_))
        ));
        // a name held for another domain: said so, managed or not
        for managed in [true, false] {
            let mut md = existing("b.example", managed, None, Some("10s"));
            md.metadata.name = Some("a-example".into());
            assert!(matches!(
                decided("a.example", None, Some("60s"), Some(md)),
                Err(WriteError::NameTaken { .. })
            ));
        }
    }

    #[test]
    fn a_delete_takes_only_the_sidecars_object_of_this_domain() {
        let d = domain("a.example");
        assert!(removal(&d, None).unwrap().is_none(), "nothing there");
        let mut theirs = existing("b.example", true, None, None);
        theirs.metadata.name = Some("a-example".into());
        assert!(
            removal(&d, Some(theirs)).unwrap().is_none(),
            "another domain's object at the name is left alone"
        );
        let mine = existing("a.example", true, Some(3), None);
        assert_eq!(removal(&d, Some(mine.clone())).unwrap(), Some(mine));
    }

    #[test]
    fn a_new_object_carries_the_sidecars_labels() {
        let fields = Fields {
            site: Some(3),
            check_interval: Some("60s".into()),
            credentials_ref: template().credentials_ref,
            expected_targets: None,
        };
        let md = new_object("a-example", &domain("a.example"), &fields);
        assert_eq!(
            serde_json::to_value(&md).unwrap(),
            json!({
                "apiVersion": "closte-operator.io/v1alpha1",
                "kind": "MappedDomain",
                "metadata": { "name": "a-example", "labels": {
                    "app.kubernetes.io/managed-by": "closte-operator-sidecar",
                    "closte-operator.io/site-id": "3",
                }},
                "spec": {
                    "domain": "a.example",
                    "siteId": 3,
                    "checkInterval": "60s",
                    "credentialsRef": { "name": "closte-api-key", "key": "apiKey" },
                },
            })
        );
        let md = new_object(
            "a-example",
            &domain("a.example"),
            &Fields {
                site: None,
                ..fields
            },
        );
        assert_eq!(
            md.metadata.labels.unwrap().len(),
            1,
            "no site label without a site"
        );
    }

    #[test]
    fn an_update_is_conditioned_on_the_version_it_was_decided_on() {
        let fields = Fields {
            site: Some(3),
            check_interval: Some("60s".into()),
            credentials_ref: None,
            expected_targets: None,
        };
        assert_eq!(
            update_patch("41", &fields),
            json!({
                "metadata": {
                    "resourceVersion": "41",
                    "labels": { "closte-operator.io/site-id": "3" },
                },
                "spec": {
                    "siteId": 3,
                    "credentialsRef": null,
                    "checkInterval": "60s",
                    "expectedTargets": null,
                },
            })
        );
        // without a site the labels are not touched (null would remove them all)
        let patch = update_patch(
            "41",
            &Fields {
                site: None,
                ..fields
            },
        );
        assert_eq!(patch["metadata"], json!({ "resourceVersion": "41" }));
    }

    #[test]
    fn conflicts_and_vanished_objects_are_lost_races() {
        let api = |code: u16| {
            kube::Error::Api(
                kube::core::Status {
                    code,
                    message: format!("code {code}"),
                    ..Default::default()
                }
                .boxed(),
            )
        };
        let d = domain("a.example");
        assert!(matches!(
            lost_race(api(409), &[409], &d),
            WriteError::Raced(_)
        ));
        assert!(matches!(
            lost_race(api(404), &[404, 409], &d),
            WriteError::Raced(_)
        ));
        assert!(matches!(
            lost_race(api(404), &[409], &d),
            WriteError::Refused { code: 404, .. }
        ));
        assert!(matches!(
            lost_race(api(422), &[404, 409], &d),
            WriteError::Refused { code: 422, .. }
        ));
    }
}
