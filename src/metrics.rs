//! Prometheus metrics: counters and histograms updated as work happens, and
//! per-object gauges computed from the watch cache at scrape time.

use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::index::Claim;

type Labels = Vec<(&'static str, String)>;

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 12))
}

pub struct Metrics {
    registry: Registry,
    reconciles: Family<Labels, Counter>,
    reconcile_seconds: Histogram,
    closte_requests: Family<Labels, Counter>,
    closte_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    in_flight: Gauge,
    checks: Family<Labels, Counter>,
    pub leader: Gauge,
}

/// Counts a reconcile pass as in flight until dropped.
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("closte_operator");
        let reconciles = Family::<Labels, Counter>::default();
        let reconcile_seconds = latency_histogram();
        let closte_requests = Family::<Labels, Counter>::default();
        let closte_seconds =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        let leader = Gauge::default();
        let in_flight = Gauge::default();
        let checks = Family::<Labels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconcile passes by result",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in one reconcile pass",
            reconcile_seconds.clone(),
        );
        registry.register(
            "closte_requests",
            "Closte API requests by endpoint and outcome",
            closte_requests.clone(),
        );
        registry.register(
            "closte_request_duration_seconds",
            "Closte API request latency by endpoint",
            closte_seconds.clone(),
        );
        registry.register(
            "leader",
            "Whether this replica holds the leader lease",
            leader.clone(),
        );
        registry.register(
            "reconciles_in_flight",
            "Reconcile passes running now",
            in_flight.clone(),
        );
        registry.register(
            "checks",
            "DNS/TLS checks by DNS and TLS verdict",
            checks.clone(),
        );
        Metrics {
            registry,
            reconciles,
            reconcile_seconds,
            closte_requests,
            closte_seconds,
            in_flight,
            checks,
            leader,
        }
    }

    pub fn reconcile_started(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    pub fn checked(&self, dns: &'static str, tls: &'static str) {
        self.checks
            .get_or_create(&vec![("dns", dns.into()), ("tls", tls.into())])
            .inc();
    }

    pub fn reconciled(&self, took: Duration, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.reconciles
            .get_or_create(&vec![("result", result.into())])
            .inc();
        self.reconcile_seconds.observe(took.as_secs_f64());
    }

    pub fn closte_request(&self, endpoint: &'static str, outcome: &'static str, took: Duration) {
        self.closte_requests
            .get_or_create(&vec![
                ("endpoint", endpoint.into()),
                ("outcome", outcome.into()),
            ])
            .inc();
        self.closte_seconds
            .get_or_create(&vec![("endpoint", endpoint.into())])
            .observe(took.as_secs_f64());
    }

    /// The text exposition: process metrics, then gauges from the index's
    /// claims (read at scrape time, so nothing per object is kept here).
    pub fn render<'c>(&self, claims: impl IntoIterator<Item = &'c Claim>, synced: bool) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String");
        let mut text = text.trim_end_matches("# EOF\n").to_owned();

        let mut cache = Registry::with_prefix("closte_operator");
        let ready = Family::<Labels, Gauge>::default();
        let stage = Family::<Labels, Gauge>::default();
        let by_stage = Family::<Labels, Gauge>::default();
        let expiry = Family::<Labels, Gauge>::default();
        let cached = Gauge::<i64>::default();
        let mut count = 0;
        for claim in claims {
            count += 1;
            let stage_name = claim
                .stage
                .and_then(|s| serde_json::to_value(s).ok())
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| "unknown".into());
            let object = vec![
                ("namespace", claim.key.namespace.to_string()),
                ("name", claim.key.name.to_string()),
                ("domain", claim.domain.to_string()),
            ];
            ready.get_or_create(&object).set(i64::from(claim.ready));
            if let Some(not_after) = claim.cert_not_after {
                expiry.get_or_create(&object).set(not_after);
            }
            let mut with_stage = object.clone();
            with_stage.push(("stage", stage_name.clone()));
            stage.get_or_create(&with_stage).set(1);
            by_stage.get_or_create(&vec![("stage", stage_name)]).inc();
        }
        cached.set(if synced { count } else { 0 });
        cache.register(
            "mapped_domain_ready",
            "1 when the MappedDomain is Ready",
            ready,
        );
        cache.register(
            "mapped_domain_stage",
            "The stage of each MappedDomain (value 1)",
            stage,
        );
        cache.register("mapped_domains", "MappedDomains by stage", by_stage);
        cache.register(
            "certificate_expiry_timestamp_seconds",
            "When the certificate each MappedDomain serves expires (Unix time)",
            expiry,
        );
        cache.register("cached_objects", "MappedDomains in the watch cache", cached);
        encode(&mut text, &cache).expect("writing to a String");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_what_was_recorded() {
        let metrics = Metrics::new();
        metrics.reconciled(Duration::from_millis(20), true);
        metrics.closte_request("adddomainalias", "ok", Duration::from_millis(7));
        metrics.closte_request("adddomainalias", "ok", Duration::from_millis(9));
        metrics.leader.set(1);
        metrics.checked("Matched", "Valid");
        let in_flight = metrics.reconcile_started();
        let md: crate::api::MappedDomain = serde_json::from_value(serde_json::json!({
            "apiVersion": "closte-operator.io/v1alpha1", "kind": "MappedDomain",
            "metadata": {"name": "a", "namespace": "n"},
            "spec": {"domain": "a.example.com"},
            "status": {"stage": "checking-dns"}
        }))
        .unwrap();
        let text = metrics.render([&Claim::from_resource(&md)], true);
        for line in [
            "closte_operator_reconciles_total{result=\"ok\"} 1",
            "closte_operator_closte_requests_total{endpoint=\"adddomainalias\",outcome=\"ok\"} 2",
            "closte_operator_closte_request_duration_seconds_count{endpoint=\"adddomainalias\"} 2",
            "closte_operator_leader 1",
            "closte_operator_reconciles_in_flight 1",
            "closte_operator_checks_total{dns=\"Matched\",tls=\"Valid\"} 1",
            "closte_operator_mapped_domain_ready{namespace=\"n\",name=\"a\",domain=\"a.example.com\"} 0",
            "closte_operator_mapped_domains{stage=\"checking-dns\"} 1",
            "closte_operator_cached_objects 1",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        drop(in_flight);
        assert!(
            metrics
                .render([], true)
                .contains("closte_operator_reconciles_in_flight 0")
        );
        assert_eq!(text.matches("# EOF").count(), 1);
        assert!(text.ends_with("# EOF\n"));
    }
}
