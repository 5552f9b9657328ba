//! The controller's statuses as the tests wait on them, and the helpers kept
//! for the files not yet moved to [`Launch`].

use std::ops::{Deref, DerefMut};

use closte_operator::api::MappedDomain;
use kube::Api;

use super::process::{Launch, Process};
use super::sim::{Simulator, scratch};

// kept for the files not yet moved to Launch
pub use super::wait::eventually;

// kept for the files not yet moved to Launch: a controller process and its
// metrics address; `Launch::controller(..).start()` is the way now.
pub struct Operator {
    process: Process,
    pub metrics: String,
}

// kept for the files not yet moved to Launch
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Operator {
    // kept for the files not yet moved to Launch
    pub fn start(
        name: &str,
        sim: &Simulator,
        key: &str,
        namespace: Option<&str>,
        args: &[&str],
    ) -> Operator {
        Operator::start_on(super::kubeconfig(), name, sim, key, namespace, args)
    }

    // kept for the files not yet moved to Launch
    pub fn start_on(
        kubeconfig: &std::path::Path,
        name: &str,
        sim: &Simulator,
        key: &str,
        namespace: Option<&str>,
        args: &[&str],
    ) -> Operator {
        let process = controller(name, sim, key, namespace)
            .kubeconfig(kubeconfig)
            .args(args)
            .spawn();
        // blocks the thread while it starts: the synchronous signature is kept
        process.announced_blocking();
        Operator::from(process)
    }

    /// A started controller process.
    pub fn from(process: Process) -> Operator {
        Operator {
            metrics: process.url(),
            process,
        }
    }
}

impl Deref for Operator {
    type Target = Process;
    fn deref(&self) -> &Process {
        &self.process
    }
}

impl DerefMut for Operator {
    fn deref_mut(&mut self) -> &mut Process {
        &mut self.process
    }
}

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
