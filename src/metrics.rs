//! Prometheus metrics: counters and histograms updated as work happens, and
//! per-object gauges computed from the watch cache at scrape time.

use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use std::fmt::Write;

use crate::api::Stage;
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
    pub fn render<'c>(
        &self,
        claims: impl Iterator<Item = &'c Claim> + Clone,
        synced: bool,
    ) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String");
        text.truncate(text.trim_end_matches("# EOF\n").len());
        render_claims(&mut text, claims, synced);
        text.push_str("# EOF\n");
        text
    }
}

/// The per-object gauges, written straight into the exposition: at 10,000
/// objects, building them as metric families first cost twice the memory of
/// the text itself.
fn render_claims<'c>(
    text: &mut String,
    claims: impl Iterator<Item = &'c Claim> + Clone,
    synced: bool,
) {
    let stage_name = |c: &Claim| c.stage.map_or("unknown", Stage::as_str);
    header(
        text,
        "mapped_domain_ready",
        "1 when the MappedDomain is Ready",
    );
    for claim in claims.clone() {
        sample(
            text,
            "mapped_domain_ready",
            claim,
            None,
            i64::from(claim.ready),
        );
    }
    header(
        text,
        "mapped_domain_stage",
        "The stage of each MappedDomain (value 1)",
    );
    for claim in claims.clone() {
        sample(
            text,
            "mapped_domain_stage",
            claim,
            Some(stage_name(claim)),
            1,
        );
    }
    header(
        text,
        "certificate_expiry_timestamp_seconds",
        "When the certificate each MappedDomain serves expires (Unix time)",
    );
    for claim in claims.clone() {
        if let Some(not_after) = claim.cert_not_after {
            sample(
                text,
                "certificate_expiry_timestamp_seconds",
                claim,
                None,
                not_after,
            );
        }
    }
    let mut by_stage = std::collections::BTreeMap::<&str, i64>::new();
    let mut count = 0;
    for claim in claims {
        *by_stage.entry(stage_name(claim)).or_default() += 1;
        count += 1;
    }
    header(text, "mapped_domains", "MappedDomains by stage");
    for (stage, n) in by_stage {
        let _ = writeln!(
            text,
            "closte_operator_mapped_domains{{stage=\"{stage}\"}} {n}"
        );
    }
    header(text, "cached_objects", "MappedDomains in the watch cache");
    let _ = writeln!(
        text,
        "closte_operator_cached_objects {}",
        if synced { count } else { 0 }
    );
}

fn header(text: &mut String, name: &str, help: &str) {
    let _ = writeln!(text, "# HELP closte_operator_{name} {help}.");
    let _ = writeln!(text, "# TYPE closte_operator_{name} gauge");
}

/// One sample labelled with the object (and its stage, if given).
fn sample(text: &mut String, name: &str, claim: &Claim, stage: Option<&str>, value: i64) {
    let _ = write!(text, "closte_operator_{name}{{namespace=\"");
    escape(text, &claim.key.namespace);
    text.push_str("\",name=\"");
    escape(text, &claim.key.name);
    text.push_str("\",domain=\"");
    escape(text, &claim.domain);
    if let Some(stage) = stage {
        let _ = write!(text, "\",stage=\"{stage}");
    }
    let _ = writeln!(text, "\"}} {value}");
}

/// A label value as OpenMetrics writes it.
fn escape(text: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => text.push_str("\\\\"),
            '"' => text.push_str("\\\""),
            '\n' => text.push_str("\\n"),
            c => text.push(c),
        }
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
        let mut claim = Claim::from_resource(&md);
        let text = metrics.render([&claim].into_iter(), true);
        for line in [
            "closte_operator_reconciles_total{result=\"ok\"} 1",
            "closte_operator_closte_requests_total{endpoint=\"adddomainalias\",outcome=\"ok\"} 2",
            "closte_operator_closte_request_duration_seconds_count{endpoint=\"adddomainalias\"} 2",
            "closte_operator_leader 1",
            "closte_operator_reconciles_in_flight 1",
            "closte_operator_checks_total{dns=\"Matched\",tls=\"Valid\"} 1",
            "closte_operator_mapped_domain_ready{namespace=\"n\",name=\"a\",domain=\"a.example.com\"} 0",
            "closte_operator_mapped_domain_stage{namespace=\"n\",name=\"a\",domain=\"a.example.com\",stage=\"checking-dns\"} 1",
            "closte_operator_mapped_domains{stage=\"checking-dns\"} 1",
            "# TYPE closte_operator_mapped_domain_ready gauge",
            "closte_operator_cached_objects 1",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(
            !text.contains("certificate_expiry_timestamp_seconds{"),
            "no certificate yet"
        );
        claim.cert_not_after = Some(1_800_000_000);
        claim.key.name = "we\"ird".into();
        let text = metrics.render([&claim].into_iter(), false);
        assert!(text.contains(
            "closte_operator_certificate_expiry_timestamp_seconds{namespace=\"n\",name=\"we\\\"ird\",domain=\"a.example.com\"} 1800000000"
        ), "{text}");
        assert!(
            text.contains("closte_operator_cached_objects 0"),
            "not synced yet"
        );
        drop(in_flight);
        assert!(
            metrics
                .render(std::iter::empty(), true)
                .contains("closte_operator_reconciles_in_flight 0")
        );
        assert_eq!(text.matches("# EOF").count(), 1);
        assert!(text.ends_with("# EOF\n"));
    }
}
