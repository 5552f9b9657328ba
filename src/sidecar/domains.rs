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
use crate::api::{MappedDomain, SecretKeyRef};
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

/// What every MappedDomain the sidecar writes gets, from its flags.
#[derive(Debug, Clone, Default)]
pub struct Template {
    pub credentials_ref: Option<SecretKeyRef>,
    pub check_interval: Option<String>,
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
    /// It was there; its site id was set.
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

    /// What a write of `domain` (for `site`, if given) must do, from a fresh
    /// read; refuses another site's domain, one being deleted, and a name
    /// that another domain's MappedDomain holds.
    async fn plan(&self, domain: &Domain, site: Option<i64>) -> Result<Write, WriteError> {
        let Some(md) = self.at_name(domain).await? else {
            return Ok(Write::Create(name_for(domain)));
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
        match (md.spec.site_id, site) {
            (Some(held), Some(wanted)) if held != wanted => Err(WriteError::OtherSite {
                domain: domain.to_string(),
                site: held,
            }),
            (None, Some(_)) => Ok(Write::SetSite(name)),
            _ => Ok(Write::Nothing(Box::new(md))),
        }
    }

    /// Carries out a [`Domains::plan`].
    async fn write(
        &self,
        domain: &Domain,
        site: Option<i64>,
        write: Write,
    ) -> Result<(Ensured, MappedDomain), WriteError> {
        let (ensured, name) = match write {
            Write::Nothing(md) => return Ok((Ensured::Unchanged, *md)),
            Write::Create(name) => (Ensured::Created, name),
            Write::SetSite(name) => (Ensured::Updated, name),
        };
        let written = timed(self.apply(&name, domain, site)).await?;
        tracing::info!(%domain, name, site, ?ensured, "MappedDomain written");
        let version = written.metadata.resource_version.clone();
        self.settle(&written, |cached| {
            cached.is_some_and(|md| md.metadata.resource_version == version)
        })
        .await;
        Ok((ensured, written))
    }

    /// Makes sure a MappedDomain for `domain` exists (for `site`, if given).
    /// Idempotent; refuses a domain that belongs to another site.
    pub async fn ensure(
        &self,
        domain: &Domain,
        site: Option<i64>,
    ) -> Result<(Ensured, MappedDomain), WriteError> {
        let write = self.plan(domain, site).await?;
        self.write(domain, site, write).await
    }

    async fn apply(
        &self,
        name: &str,
        domain: &Domain,
        site: Option<i64>,
    ) -> Result<MappedDomain, WriteError> {
        let mut labels = BTreeMap::from([(MANAGED_BY.0, MANAGED_BY.1.to_owned())]);
        if let Some(site) = site {
            labels.insert(SITE_LABEL, site.to_string());
        }
        let t = &self.template;
        let patch = json!({
            "apiVersion": "closte-operator.io/v1alpha1",
            "kind": "MappedDomain",
            "metadata": { "name": name, "labels": labels },
            "spec": {
                "domain": domain.as_str(),
                "siteId": site,
                "credentialsRef": t.credentials_ref,
                "checkInterval": t.check_interval,
                "expectedTargets": t.expected_targets,
            },
        });
        let patch = strip_nulls(patch);
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

    /// Makes site `site`'s MappedDomains exactly `domains`: creates the
    /// missing, deletes the site's others, touches nothing else. Refuses the
    /// whole set, writing nothing, when one of them cannot be written (another
    /// site's, being deleted, its name taken): every listed domain is read
    /// fresh from the API server before the first write, so a cache that
    /// has not yet seen a recent write cannot let a refusal come halfway.
    /// Idempotent: a sync cut short (503) is completed by the next.
    pub async fn sync(&self, site: i64, domains: &[Domain]) -> Result<SyncReport, WriteError> {
        let mut writes = Vec::with_capacity(domains.len());
        for domain in domains {
            writes.push(self.plan(domain, Some(site)).await?);
        }
        let mut report = SyncReport::default();
        for (domain, write) in domains.iter().zip(writes) {
            let (ensured, _) = self.write(domain, Some(site), write).await?;
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

/// What [`Domains::write`] has to do for one domain.
enum Write {
    Create(String),
    /// Set the site id of the object of this name, which has none.
    SetSite(String),
    /// It is there as asked.
    Nothing(Box<MappedDomain>),
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
