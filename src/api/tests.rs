use super::*;
use kube::Resource;
use serde_json::Value;

#[test]
fn committed_crd_matches_generated() {
    let committed = include_str!("../../crds/mappeddomains.closte-operator.io.yaml");
    assert!(
        committed == crd_yaml(),
        "crds/mappeddomains.closte-operator.io.yaml is stale; regenerate it with\n  \
         cargo run -q -- crd > crds/mappeddomains.closte-operator.io.yaml"
    );
}

/// Walks every property of the schema and returns the paths without a description.
fn undocumented(path: &str, schema: &Value, out: &mut Vec<String>) {
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, sub) in props {
            let sub_path = format!("{path}.{name}");
            let described = sub
                .get("description")
                .and_then(Value::as_str)
                .is_some_and(|d| !d.trim().is_empty());
            if !described {
                out.push(sub_path.clone());
            }
            undocumented(&sub_path, sub, out);
        }
    }
    if let Some(items) = schema.get("items") {
        undocumented(&format!("{path}[]"), items, out);
    }
}

#[test]
fn every_field_has_a_description() {
    let crd = serde_json::to_value(MappedDomain::crd()).unwrap();
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let mut missing = Vec::new();
    undocumented("", schema, &mut missing);
    // metadata is described by the API server itself
    missing.retain(|p| p != ".metadata" && p != ".apiVersion" && p != ".kind");
    assert!(
        missing.is_empty(),
        "fields without description: {missing:?}"
    );
}

#[test]
fn the_derive_uses_group_and_version() {
    assert_eq!(MappedDomain::group(&()), GROUP);
    assert_eq!(MappedDomain::version(&()), VERSION);
    assert_eq!(MappedDomain::api_version(&()), format!("{GROUP}/{VERSION}"));
    for name in [FINALIZER, CREATED_FINALIZER, RECONCILE_REQUESTED_AT] {
        assert!(name.starts_with(&format!("{GROUP}/")), "{name}");
    }
}

#[test]
fn crd_shape() {
    let crd = serde_json::to_value(MappedDomain::crd()).unwrap();
    assert_eq!(crd["metadata"]["name"], format!("mappeddomains.{GROUP}"));
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    assert_eq!(crd["spec"]["names"]["shortNames"][0], "md");
    assert_eq!(crd["spec"]["names"]["categories"][0], "closte");
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], VERSION);
    assert!(version["subresources"]["status"].is_object());
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        ["DOMAIN", "SITE", "STAGE", "READY", "EXPIRES", "AGE"]
    );
    let schema = &version["schema"]["openAPIV3Schema"];
    assert_eq!(schema["properties"]["spec"]["required"][0], "domain");
    let conditions = &schema["properties"]["status"]["properties"]["conditions"];
    assert_eq!(conditions["x-kubernetes-list-type"], "map");
    assert_eq!(conditions["x-kubernetes-list-map-keys"][0], "type");
    // one CEL rule per domain rule but the length limit (maxLength), plus immutability
    let domain_rules =
        schema["properties"]["spec"]["properties"]["domain"]["x-kubernetes-validations"]
            .as_array()
            .unwrap();
    assert_eq!(domain_rules.len(), Rule::ALL.len());
    assert_eq!(
        schema["properties"]["spec"]["properties"]["domain"]["maxLength"],
        253
    );
}

#[test]
fn stage_and_enums_serialise_as_documented() {
    let stages = [
        (Stage::Pending, "pending"),
        (Stage::CheckingDns, "checking-dns"),
        (Stage::CheckingSslCert, "checking-ssl-cert"),
        (Stage::Done, "done"),
        (Stage::Failed, "failed"),
        (Stage::SslFailed, "ssl-failed"),
    ];
    for (stage, text) in stages {
        assert_eq!(serde_json::to_value(stage).unwrap(), text);
        assert_eq!(stage.as_str(), text, "the metrics label is the status name");
    }
    assert_eq!(serde_json::to_value(Ownership::Adopted).unwrap(), "Adopted");
    assert_eq!(
        serde_json::to_value(DeletionPolicy::Orphan).unwrap(),
        "Orphan"
    );
}

#[test]
fn spec_reads_unknown_fields_and_defaults() {
    let spec: MappedDomainSpec =
        serde_json::from_value(serde_json::json!({"domain": "example.com", "future": 1})).unwrap();
    assert_eq!(spec.check_interval(), DEFAULT_CHECK_INTERVAL);
    let spec: MappedDomainSpec = serde_json::from_value(
        serde_json::json!({"domain": "example.com", "checkInterval": "1m30s"}),
    )
    .unwrap();
    assert_eq!(spec.check_interval(), Duration::from_secs(90));
}

/// The sidecar checks a `checkInterval` with [`CheckInterval::parse`] before
/// writing it; that must refuse exactly what the CRD's schema refuses.
#[test]
fn the_check_interval_rule_has_the_crds_bounds() {
    let crd = serde_json::to_value(MappedDomain::crd()).unwrap();
    let field = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["checkInterval"];
    assert_eq!(field["maxLength"], check_interval::MAX_LEN);
    assert_eq!(field["pattern"], duration::PATTERN);
    let rule = format!(
        "duration(self) >= duration('{}s') && duration(self) <= duration('{}h')",
        check_interval::MIN.as_secs(),
        check_interval::MAX.as_secs() / 3600
    );
    assert_eq!(field["x-kubernetes-validations"][0]["rule"], rule);
}
