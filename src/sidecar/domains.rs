//! The namespace's MappedDomains as the sidecar sees and changes them: read
//! from a watch cache, written with server-side apply under the sidecar's own
//! field manager. Both doors go through here.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use serde::Serialize;
use serde_json::json;

use super::names::name_for;
use crate::api::{CheckInterval, MappedDomain, SecretKeyRef};
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
    cache: Store<MappedDomain>,
    template: Template,
}

/// The normalised domain an object claims (as written when it breaks the rules).
fn claimed(md: &MappedDomain) -> String {
    crate::index::claimed_domain(&md.spec.domain)
}

/// Whether the object carries the sidecar's managed-by label: only such
/// objects get a requested checkInterval when they exist already.
fn managed_by_sidecar(md: &MappedDomain) -> bool {
    md.metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(MANAGED_BY.0))
        .is_some_and(|value| value == MANAGED_BY.1)
}

impl Domains {
    pub fn new(api: Api<MappedDomain>, cache: Store<MappedDomain>, template: Template) -> Domains {
        Domains {
            api,
            cache,
            template,
        }
    }

    /// Every MappedDomain of the namespace, by domain.
    pub fn list(&self) -> Vec<Arc<MappedDomain>> {
        let mut all = self.cache.state();
        all.sort_by(|a, b| a.spec.domain.cmp(&b.spec.domain));
        all
    }

    /// The MappedDomain claiming `domain`, from the cache.
    pub fn find(&self, domain: &Domain) -> Option<Arc<MappedDomain>> {
        self.cache.find(|md| claimed(md) == domain.as_str())
    }

    /// The object at the name `domain` has (the cached object's, else the
    /// one the sidecar would give it), as the API server has it now.
    async fn at_name(&self, domain: &Domain) -> Result<Option<MappedDomain>, WriteError> {
        let name = match self.find(domain) {
            Some(md) => md.metadata.name.clone().unwrap_or_default(),
            None => name_for(domain),
        };
        timed(async { Ok(self.api.get_opt(&name).await?) }).await
    }

    /// What a write of `domain` (for `site`, with `interval`, if given) must
    /// do, from a fresh read: see [`decide`].
    async fn plan(&self, wanted: &Wanted<'_>) -> Result<Write, WriteError> {
        let existing = self.at_name(wanted.domain).await?;
        decide(wanted, existing, &self.template)
    }

    /// Carries out a [`Domains::plan`].
    async fn write(
        &self,
        domain: &Domain,
        write: Write,
    ) -> Result<(Ensured, MappedDomain), WriteError> {
        let (ensured, name, fields) = match write {
            Write::Nothing(md) => return Ok((Ensured::Unchanged, *md)),
            Write::Create { name, fields } => (Ensured::Created, name, fields),
            Write::Update { name, fields } => (Ensured::Updated, name, fields),
        };
        let written = timed(self.apply(&name, domain, &fields)).await?;
        let (site, check_interval) = (fields.site, fields.check_interval.as_deref());
        tracing::info!(%domain, name, site, check_interval, ?ensured, "MappedDomain written");
        let version = written.metadata.resource_version.clone();
        self.settle(&written, |cached| {
            cached.is_some_and(|md| md.metadata.resource_version == version)
        })
        .await;
        Ok((ensured, written))
    }

    /// Makes sure a MappedDomain for `domain` exists (for `site`, if given),
    /// with `interval` if given (see [`decide`]). Idempotent; refuses a
    /// domain that belongs to another site.
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
        self.write(domain, write).await
    }

    async fn apply(
        &self,
        name: &str,
        domain: &Domain,
        fields: &Fields,
    ) -> Result<MappedDomain, WriteError> {
        let patch = strip_nulls(apply_patch(name, domain, fields));
        let params = PatchParams::apply(FIELD_MANAGER);
        Ok(self.api.patch(name, &params, &Patch::Apply(&patch)).await?)
    }

    /// Deletes the MappedDomain of `domain`; `false` when there was none
    /// (an object at its name that is there for another domain is left alone).
    pub async fn remove(&self, domain: &Domain) -> Result<bool, WriteError> {
        let Some(md) = self.at_name(domain).await? else {
            return Ok(false);
        };
        if claimed(&md) != domain.as_str() {
            return Ok(false);
        }
        timed(async {
            let name = md.metadata.name.clone().unwrap_or_default();
            match self.api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {
                    tracing::info!(%domain, name, "MappedDomain deleted");
                    // gone, or (with a finalizer) marked for deletion
                    let uid = md.metadata.uid.clone();
                    self.settle(&md, |cached| {
                        cached.is_none_or(|c| {
                            c.metadata.uid != uid || c.metadata.deletion_timestamp.is_some()
                        })
                    })
                    .await;
                    Ok(true)
                }
                Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    /// Makes site `site`'s MappedDomains exactly `domains` (with `interval`,
    /// if given: see [`decide`]): creates the missing, deletes the site's
    /// others, touches nothing else. Refuses the whole set, writing nothing,
    /// when one of them cannot be written (another site's, being deleted,
    /// its name taken): every listed domain is read fresh from the API
    /// server before the first write, so a cache that has not yet seen a
    /// recent write cannot let a refusal come halfway. Idempotent: a sync
    /// cut short (503) is completed by the next.
    pub async fn sync(
        &self,
        site: i64,
        domains: &[Domain],
        interval: Option<&CheckInterval>,
    ) -> Result<SyncReport, WriteError> {
        let mut writes = Vec::with_capacity(domains.len());
        for domain in domains {
            let wanted = Wanted {
                domain,
                site: Some(site),
                interval,
            };
            writes.push(self.plan(&wanted).await?);
        }
        let mut report = SyncReport::default();
        for (domain, write) in domains.iter().zip(writes) {
            let (ensured, _) = self.write(domain, write).await?;
            let list = match ensured {
                Ensured::Created => &mut report.created,
                Ensured::Updated => &mut report.updated,
                Ensured::Unchanged => &mut report.unchanged,
            };
            list.push(domain.to_string());
        }
        let listed: Vec<&str> = domains.iter().map(Domain::as_str).collect();
        let stale: Vec<Domain> = self
            .list()
            .iter()
            .filter(|md| md.spec.site_id == Some(site))
            .filter_map(|md| Domain::parse(&claimed(md)).ok())
            .filter(|d| !listed.contains(&d.as_str()))
            .collect();
        for domain in stale {
            if self.remove(&domain).await? {
                report.deleted.push(domain.to_string());
            }
        }
        Ok(report)
    }
}

impl Domains {
    /// Waits until the watch cache's copy of `object` satisfies `shown`, so
    /// that reads, which come from the cache, see a write once it is
    /// answered. Bounded by [`SETTLE_TIMEOUT`]: the write is done either way.
    async fn settle(&self, object: &MappedDomain, shown: impl Fn(Option<&MappedDomain>) -> bool) {
        let key = ObjectRef::new(object.metadata.name.as_deref().unwrap_or_default())
            .within(object.metadata.namespace.as_deref().unwrap_or_default());
        let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
        while !shown(self.cache.get(&key).as_deref()) {
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(
                    name = key.name,
                    "the watch cache did not show a write in time"
                );
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

/// The spec fields the sidecar applies besides the domain. Under server-side
/// apply, a field the sidecar applied before and leaves out is removed: every
/// write sends all of them, those it does not mean to change as they are.
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
    /// Create the object of this name.
    Create { name: String, fields: Fields },
    /// Change the object of this name: its site id (it had none), its
    /// checkInterval, or both.
    Update { name: String, fields: Fields },
    /// It is there as asked.
    Nothing(Box<MappedDomain>),
}

/// What a write of `wanted` must do, given the object at its name as the
/// API server has it now (`existing`). Refuses a name that another domain's
/// MappedDomain holds, an object being deleted, and another site's domain.
///
/// A new object gets the requested interval, else the template's. An
/// existing one gets the requested interval only when the sidecar manages
/// it (its managed-by label) and its own differs, as written; any other
/// object's interval is left as it is. Setting the site id of an object
/// that has none adopts it as before: it gets the template's credentials
/// and expected targets; an interval change alone changes nothing else.
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
    let new_interval = wanted.interval.filter(|asked| {
        managed_by_sidecar(&md) && md.spec.check_interval.as_deref() != Some(asked.as_str())
    });
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
    Ok(Write::Update { name, fields })
}

/// The server-side apply patch of the object `name` for `domain`, with the
/// sidecar's labels; unset fields are `null` (see [`strip_nulls`]).
fn apply_patch(name: &str, domain: &Domain, fields: &Fields) -> serde_json::Value {
    let mut labels = BTreeMap::from([(MANAGED_BY.0, MANAGED_BY.1.to_owned())]);
    if let Some(site) = fields.site {
        labels.insert(SITE_LABEL, site.to_string());
    }
    json!({
        "apiVersion": "closte-operator.io/v1alpha1",
        "kind": "MappedDomain",
        "metadata": { "name": name, "labels": labels },
        "spec": {
            "domain": domain.as_str(),
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

/// Server-side apply owns every field it sends: leave unset ones out.
fn strip_nulls(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => map
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k, strip_nulls(v)))
            .collect(),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::MappedDomainSpec;

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

    /// An object for `d` at the sidecar's name, with the managed-by label or without.
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
        if managed {
            let labels = BTreeMap::from([(MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned())]);
            md.metadata.labels = Some(labels);
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
            Ok(Write::Update { fields, .. }) => fields,
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
    fn an_object_the_sidecar_does_not_manage_keeps_its_interval() {
        let md = existing("a.example", false, Some(3), Some("1h"));
        assert!(matches!(
            decided("a.example", Some(3), Some("60s"), Some(md)),
            Ok(Write::Nothing(_))
        ));
        // another manager's label is not the sidecar's
        let mut md = existing("a.example", false, Some(3), Some("1h"));
        md.metadata.labels = Some(BTreeMap::from([(
            MANAGED_BY.0.to_owned(),
            "helm".to_owned(),
        )]));
        assert!(matches!(
            decided("a.example", None, Some("60s"), Some(md)),
            Ok(Write::Nothing(_))
        ));
        // setting its site id still happens; its interval is sent as it is
        let md = existing("a.example", false, None, Some("1h"));
        let fields = update(decided("a.example", Some(3), Some("60s"), Some(md)));
        assert_eq!(fields.site, Some(3));
        assert_eq!(fields.check_interval.as_deref(), Some("1h"));
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
        let mut md = existing("b.example", true, None, Some("10s"));
        md.metadata.name = Some("a-example".into());
        assert!(matches!(
            decided("a.example", None, Some("60s"), Some(md)),
            Err(WriteError::NameTaken { .. })
        ));
    }

    #[test]
    fn the_patch_sends_every_field_the_sidecar_owns_and_its_labels() {
        let fields = Fields {
            site: Some(3),
            check_interval: Some("60s".into()),
            credentials_ref: None,
            expected_targets: None,
        };
        let patch = strip_nulls(apply_patch("a-example", &domain("a.example"), &fields));
        assert_eq!(
            patch,
            json!({
                "apiVersion": "closte-operator.io/v1alpha1",
                "kind": "MappedDomain",
                "metadata": { "name": "a-example", "labels": {
                    "app.kubernetes.io/managed-by": "closte-operator-sidecar",
                    "closte-operator.io/site-id": "3",
                }},
                "spec": { "domain": "a.example", "siteId": 3, "checkInterval": "60s" },
            })
        );
    }
}
