//! The controller as a test starts it, and its statuses as the tests wait
//! on them.

use closte_operator::api::MappedDomain;
use kube::Api;

use super::process::Launch;
use super::sim::{Simulator, scratch};
use super::wait::eventually;

/// The controller of test `name` (its log in its own scratch folder) against
/// `sim` with `key` as its own key, for `namespace` (every namespace when
/// None; the lease lives in that namespace).
pub fn controller(name: &str, sim: &Simulator, key: &str, namespace: Option<&str>) -> Launch {
    let launch = Launch::controller(sim, scratch(name).join("controller.log"))
        .env("CLOSTE_CLIENT_API_KEY", key);
    match namespace {
        Some(ns) => launch.namespace(ns),
        None => launch,
    }
}

/// The condition `type_` of the object as (status, reason), if any.
pub fn condition(md: &MappedDomain, type_: &str) -> Option<(String, String)> {
    md.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

/// Waits until condition `type_` of `name` has `status` (and `reason`, if given).
pub async fn wait_condition(
    api: &Api<MappedDomain>,
    name: &str,
    type_: &str,
    status: &str,
    reason: Option<&str>,
) -> MappedDomain {
    eventually(
        30,
        &format!("{name} {type_}={status} {reason:?}"),
        || async {
            let md = api.get_opt(name).await.ok().flatten()?;
            let (s, r) = condition(&md, type_)?;
            (s == status && reason.is_none_or(|want| want == r)).then_some(md)
        },
    )
    .await
}

pub async fn wait_gone(api: &Api<MappedDomain>, name: &str) {
    eventually(30, &format!("{name} to be deleted"), || async {
        api.get_opt(name)
            .await
            .ok()
            .and_then(|o| o.is_none().then_some(()))
    })
    .await
}
