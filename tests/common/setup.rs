//! The setups the integration tests share: a namespace with the CRD
//! installed, and optionally a simulator and a controller for it.

use closte_operator::api::MappedDomain;
use kube::{Api, Client};

use super::operator::controller;
use super::process::Process;
use super::sim::Simulator;

/// A fresh namespace (name starting with `prefix`) on the test control plane,
/// with the CRD installed.
pub struct Namespace {
    pub client: Client,
    pub ns: String,
    pub api: Api<MappedDomain>,
}

impl Namespace {
    pub async fn new(prefix: &str) -> Namespace {
        let client = super::client().await;
        super::install_crd(&client).await;
        let ns = super::namespace(&client, prefix).await;
        let api = Api::namespaced(client.clone(), &ns);
        Namespace { client, ns, api }
    }
}

/// A namespace, a simulator with DNS and HTTPS accepting `key` (plus
/// `sim_args`), and a controller for that namespace (plus `operator_args`).
pub struct Setup {
    pub client: Client,
    pub ns: String,
    pub api: Api<MappedDomain>,
    pub sim: Simulator,
    pub operator: Process,
}

impl Setup {
    pub async fn start(name: &str, key: &str, sim_args: &[&str], operator_args: &[&str]) -> Setup {
        let Namespace { client, ns, api } = Namespace::new(name).await;
        let mut args = vec!["--api-key", key];
        args.extend_from_slice(sim_args);
        let sim = Simulator::up_with_checks(name, &args).await;
        // its own scratch folder: starting one empties it, and the simulator's log is there
        let operator = controller(&format!("{name}-controller"), &sim, key, Some(&ns))
            .args(operator_args)
            .start()
            .await;
        Setup {
            client,
            ns,
            api,
            sim,
            operator,
        }
    }
}

/// The namespace's sidecar token Secret, as the chart names it: the key
/// WordPress signs its proofs with, which the controller reads.
pub async fn sidecar_token_secret(client: &Client, namespace: &str, token: &str) {
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::{Patch, PatchParams};
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": SIDECAR_TOKEN_SECRET},
        "stringData": {"token": token},
    }))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), namespace)
        .patch(
            SIDECAR_TOKEN_SECRET,
            &PatchParams::apply("closte-operator-tests").force(),
            &Patch::Apply(&secret),
        )
        .await
        .unwrap();
}

/// The chart's name of the sidecar token Secret (`sidecar.tokenSecret`).
pub const SIDECAR_TOKEN_SECRET: &str = "closte-sidecar-token";
