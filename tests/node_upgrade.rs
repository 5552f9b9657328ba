//! An upgrade as users make it, on a real node: the previous release's chart
//! and image (its commit, built here), the examples taken to `done` by its
//! pods, then `helm upgrade` to this tree's chart and image. The CRD is
//! updated, the pods run the new image, and the upgrade writes nothing to
//! Closte and moves no status out of `done`.
//!
//! The node and the release are `common::node`'s (root, the node's packages).

mod common;

use common::image::{chart_versions, previous_release};
use common::node::{EXAMPLES, Node, Release, built_image, current_chart, progress};
use common::succeeded as ok;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams};

/// The release this tree upgrades from: the latest in CHANGELOG.md.
const PREVIOUS: &str = "0.1.0";

impl Release<'_> {
    /// The chart label on the CRD and the image of every controller pod.
    async fn versions(&self) -> (String, Vec<String>) {
        let crds: Api<CustomResourceDefinition> = Api::all(self.node.client.clone());
        let crd = crds.get("mappeddomains.closte-operator.io").await.unwrap();
        let chart = crd.metadata.labels.unwrap_or_default()["helm.sh/chart"].clone();
        let pods = self.ready_pods().await;
        let images = pods
            .iter()
            .map(|p| {
                p.spec.as_ref().unwrap().containers[0]
                    .image
                    .clone()
                    .unwrap()
            })
            .collect();
        (chart, images)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upgrade_from_the_previous_release_updates_the_crd_and_writes_nothing() {
    progress("the previous release's image (built once per machine)");
    let previous = previous_release(PREVIOUS);
    progress("control plane and node");
    let node = Node::up().await;
    progress("both images, imported into the node");
    node.import(&previous.archive);
    node.import(&built_image());
    let versions = |chart: &std::path::Path| {
        let found = chart_versions(&std::fs::read_to_string(chart.join("Chart.yaml")).unwrap());
        (found.version, found.app_version)
    };
    let (old_chart, old_app) = versions(&previous.chart);
    let current = current_chart();
    let (new_chart, new_app) = versions(&current);
    assert_ne!(
        old_chart, new_chart,
        "this tree's chart has the version of {PREVIOUS}: raise it (CHANGELOG.md)"
    );

    progress(&format!("helm install of {PREVIOUS}'s chart"));
    let mut release = Release::install_with(&node, previous.chart.clone(), &[]).await;
    release.examples_end_done().await;
    let (chart, images) = release.versions().await;
    assert_eq!(chart, format!("closte-operator-{old_chart}"));
    assert!(
        images.iter().all(|i| i.ends_with(&format!(":{old_app}"))),
        "{images:?}"
    );

    progress("helm upgrade to this tree's chart");
    let calm = release.calm().await;
    release.chart = current;
    ok(release.helm("upgrade", &[]), "helm upgrade");
    release.until_rolled_out().await;
    release
        .assert_calm(
            calm,
            EXAMPLES.len(),
            &format!("the upgrade from {PREVIOUS}"),
        )
        .await;
    let (chart, images) = release.versions().await;
    assert_eq!(
        chart,
        format!("closte-operator-{new_chart}"),
        "the CRD was not updated by the upgrade"
    );
    assert!(
        images.iter().all(|i| i.ends_with(&format!(":{new_app}"))),
        "pods still run the old image: {images:?}"
    );
    let mds = release
        .mapped_domains()
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(
        mds.items.len(),
        EXAMPLES.len(),
        "the upgrade lost MappedDomains"
    );
    release.logs_are_clean();
}
