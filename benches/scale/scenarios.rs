//! The measured scenarios; each starts its own control plane, simulator and
//! processes, and returns its rows. Correctness (every domain on Closte,
//! nothing left behind) is asserted; speed and memory are judged against the
//! targets in the rows.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use closte_operator::api::{MappedDomain, MappedDomainSpec, SecretKeyRef};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams, PostParams};

use crate::common::sim::Simulator;
use crate::common::wait::{eventually, eventually_every};
use crate::report::Row;
use crate::rig::{
    ApiWrites, Cluster, Progress, account_key, controller_process, create_all, delete_all, domain,
    folder, percentile, sidecar_process, sim_counts, simulator,
};

/// MappedDomain writes per domain, less the create of each.
fn writes_per_domain(scenario: &'static str, size: &str, writes: ApiWrites, n: usize) -> Row {
    let per_domain = (writes.mapped_domains - n as f64) / n as f64;
    Row::info(
        scenario,
        size,
        "MappedDomain writes per domain",
        per_domain,
        "",
    )
}

/// API requests per domain by kind between two counts (every client: the
/// harness's creates and deletes, its watch's list, the controller's reads
/// and writes), the kinds that come to at least 0.01 per domain.
fn requests_per_domain_by_kind(
    scenario: &'static str,
    size: &str,
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
    n: usize,
) -> Vec<Row> {
    after
        .iter()
        .map(|(kind, count)| (kind, (count - before.get(kind).unwrap_or(&0.0)) / n as f64))
        .filter(|(_, per_domain)| *per_domain >= 0.01)
        .map(|(kind, per_domain)| {
            Row::info(
                scenario,
                size,
                format!("requests per domain: {kind}"),
                per_domain,
                "",
            )
        })
        .collect()
}

/// Events per domain.
fn events_per_domain(scenario: &'static str, size: &str, writes: ApiWrites, n: usize) -> Row {
    Row::info(
        scenario,
        size,
        "events per domain",
        writes.events / n as f64,
        "",
    )
}

fn unix_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

/// How long the scenario may take before it counts as stuck.
fn limit(bound_secs: f64) -> Duration {
    Duration::from_secs_f64(bound_secs * 3.0 + 120.0)
}

/// `n` new MappedDomains at 50 ms latency and 50 writes/s until all are on
/// Closte and `done`; then all deleted until every alias is gone.
pub async fn lifecycle(n: usize) -> Vec<Row> {
    let size = n.to_string();
    let dir = folder("lifecycle");
    let cluster = Cluster::up(&dir).await;
    let sim = simulator(
        &dir,
        1,
        &[
            "--latency",
            "50ms",
            "--write-rate-limit",
            "50",
            // the certificate is there at the first check: the shortest
            // life, whose requests step 15's targets count (a later
            // certificate costs one more check pass: a read, a status
            // write and an event)
            "--issue-delay",
            "0s",
        ],
    )
    .await;
    let ctl = controller_process(
        &cluster,
        &sim,
        dir.join("controller.log"),
        &["--closte-write-rate", "50", "--leader-elect=false"],
    );
    ctl.ready().await;
    let progress = Progress::watch(&cluster.client);
    let api: Api<MappedDomain> = Api::namespaced(cluster.client.clone(), "default");
    let bound = n as f64 / 50.0;

    let before = cluster.writes();
    let kinds_before = cluster.requests_by_kind();
    let start = Instant::now();
    let objects = (1..=n)
        .map(|i| domain(&format!("d{i}"), &format!("d{i}.bench.example")))
        .collect();
    let created = create_all(&api, objects, 16).await;
    eventually(limit(bound), "every domain on Closte", || async {
        sim.count("aliases").await >= n as u64
    })
    .await;
    let on_closte = start.elapsed().as_secs_f64();
    eventually(limit(bound), "every domain done", || async {
        progress.done() >= n
    })
    .await;
    let done = start.elapsed().as_secs_f64();
    let writes = cluster.writes() - before;
    let calls = sim_counts(&sim).await;
    let scenario = "converge";
    let mut rows = vec![
        Row::info(
            scenario,
            &size,
            "create (16 connections)",
            created.as_secs_f64(),
            "s",
        ),
        Row::info(scenario, &size, "all on Closte", on_closte, "s"),
        Row::info(
            scenario,
            &size,
            format!("on Closte / bound ({bound:.0} s)"),
            on_closte / bound,
            "x",
        )
        .at_most(1.05),
        Row::info(scenario, &size, "all done (DNS + certificate)", done, "s"),
        Row::info(
            scenario,
            &size,
            "Closte list calls",
            calls["getdomains"],
            "",
        ),
        Row::info(
            scenario,
            &size,
            "Closte add calls",
            calls["adddomainalias"],
            "",
        )
        .exactly(n as f64),
        // step 15's targets, for a domain ready at its first check
        writes_per_domain(scenario, &size, writes, n).at_most(2.0),
        events_per_domain(scenario, &size, writes, n).at_most(2.0),
        Row::info(
            scenario,
            &size,
            "API requests per domain (all clients)",
            writes.requests / n as f64,
            "",
        )
        .at_most(6.0),
        Row::info(scenario, &size, "controller CPU", ctl.cpu_seconds(), "s"),
    ];
    let kinds = cluster.requests_by_kind();
    rows.extend(requests_per_domain_by_kind(
        scenario,
        &size,
        &kinds_before,
        &kinds,
        n,
    ));

    let before = cluster.writes();
    let kinds_before = kinds;
    let calls_before = sim_counts(&sim).await;
    let start = Instant::now();
    delete_all(&api, (1..=n).map(|i| format!("d{i}")).collect(), 16).await;
    eventually(limit(bound), "every alias removed", || async {
        sim.count("aliases").await == 0
    })
    .await;
    let removed = start.elapsed().as_secs_f64();
    eventually(limit(bound), "every object gone", || async {
        api.list_metadata(&ListParams::default())
            .await
            .is_ok_and(|l| l.items.is_empty())
    })
    .await;
    let gone = start.elapsed().as_secs_f64();
    let writes = cluster.writes() - before;
    let calls = sim_counts(&sim).await;
    let delta = |k: &str| calls[k] - calls_before[k];
    let scenario = "deletion";
    rows.extend([
        Row::info(scenario, &size, "all aliases removed", removed, "s"),
        Row::info(
            scenario,
            &size,
            format!("removed / bound ({bound:.0} s)"),
            removed / bound,
            "x",
        ),
        Row::info(scenario, &size, "all objects gone", gone, "s"),
        Row::info(
            scenario,
            &size,
            "Closte delete calls",
            delta("deletedomainalias"),
            "",
        )
        .exactly(n as f64),
        Row::info(
            scenario,
            &size,
            "Closte list calls",
            delta("getdomains"),
            "",
        ),
        writes_per_domain(scenario, &size, writes, n),
        events_per_domain(scenario, &size, writes, n),
    ]);
    rows.extend(requests_per_domain_by_kind(
        scenario,
        &size,
        &kinds_before,
        &cluster.requests_by_kind(),
        n,
    ));
    assert!(ctl.panics().is_empty(), "{:?}", ctl.panics());
    rows
}

/// `n` domains taken to `done` (500 writes/s), then left alone for two
/// resync periods: Closte calls, API writes, probes and CPU in that window;
/// the controller's memory once settled and its peak.
pub async fn memory_and_steady(n: usize, resync: Duration) -> Vec<Row> {
    let size = n.to_string();
    let dir = folder(&format!("memory-{n}"));
    let cluster = Cluster::up(&dir).await;
    let sim = simulator(
        &dir,
        1,
        &[
            "--latency",
            "50ms",
            "--write-rate-limit",
            "500",
            "--issue-delay",
            "5s",
        ],
    )
    .await;
    let resync_flag = format!("{}s", resync.as_secs());
    let ctl = controller_process(
        &cluster,
        &sim,
        dir.join("controller.log"),
        &[
            "--closte-write-rate",
            "500",
            "--leader-elect=false",
            "--resync-period",
            &resync_flag,
        ],
    );
    ctl.ready().await;
    let progress = Progress::watch(&cluster.client);
    let api: Api<MappedDomain> = Api::namespaced(cluster.client.clone(), "default");
    let bound = n as f64 / 500.0;
    let start = Instant::now();
    let objects = (1..=n)
        .map(|i| domain(&format!("m{i}"), &format!("m{i}.bench.example")))
        .collect();
    create_all(&api, objects, 16).await;
    eventually(limit(bound + 60.0), "every domain done", || async {
        progress.done() >= n
    })
    .await;
    let converged = start.elapsed().as_secs_f64();
    let cpu_converge = ctl.cpu_seconds();

    // Two resync periods less a second: at most two lists fit if the account
    // keeps to one per period.
    let window = resync * 2 - Duration::from_secs(1);
    let writes0 = cluster.writes();
    let calls0 = sim_counts(&sim).await;
    let checks0 = ctl.metric("closte_operator_checks_total").await;
    let kinds0 = cluster.requests_by_kind();
    let cpu0 = ctl.cpu_seconds();
    tokio::time::sleep(window).await; // the measurement window itself
    // read before anything asks the controller for its metrics (a scrape
    // allocates, and the next trim is up to 10 s away)
    let memory = ctl.memory();
    let cpu = ctl.cpu_seconds() - cpu0;
    let writes = cluster.writes() - writes0;
    let calls = sim_counts(&sim).await;
    let delta = |k: &str| calls[k] - calls0[k];
    let checks = ctl.metric("closte_operator_checks_total").await - checks0;
    let kinds = cluster.requests_by_kind();
    let requests: f64 = kinds
        .iter()
        .map(|(kind, count)| count - kinds0.get(kind).unwrap_or(&0.0))
        .sum();
    assert!(ctl.panics().is_empty(), "{:?}", ctl.panics());

    let target = match n {
        1000 => Some(18.0),
        10000 => Some(40.0),
        _ => None,
    };
    let settled = Row::info("memory", &size, "controller RSS settled", memory.rss, "MiB");
    let window_s = window.as_secs_f64();
    let steady_size = format!("{n}, {window_s:.0} s");
    vec![
        match target {
            Some(t) => settled.at_most(t),
            None => settled,
        },
        Row::info("memory", &size, "controller RSS peak", memory.peak, "MiB"),
        Row::info("memory", &size, "all done after", converged, "s"),
        Row::info(
            "memory",
            &size,
            "controller CPU to converge",
            cpu_converge,
            "s",
        ),
        Row::info(
            "steady",
            &steady_size,
            format!("Closte lists ({}s resync)", resync.as_secs()),
            delta("getdomains"),
            "",
        )
        .at_most(2.0),
        Row::info(
            "steady",
            &steady_size,
            "Closte writes",
            delta("adddomainalias") + delta("deletedomainalias"),
            "",
        )
        .exactly(0.0),
        Row::info(
            "steady",
            &steady_size,
            "MappedDomain writes",
            writes.mapped_domains,
            "",
        )
        .exactly(0.0),
        Row::info("steady", &steady_size, "events", writes.events, "").exactly(0.0),
        Row::info("steady", &steady_size, "DNS/TLS checks run", checks, ""),
        // every client's requests but watches: the controller's reads
        // (one per object per resync) and the harness's progress watch
        Row::info(
            "steady",
            &steady_size,
            "API requests per object per resync",
            requests / n as f64 / (window.as_secs_f64() / resync.as_secs_f64()),
            "",
        )
        .at_most(1.0),
        Row::info(
            "steady",
            &steady_size,
            "API requests/s",
            requests / window.as_secs_f64(),
            "",
        ),
        Row::info("steady", &steady_size, "controller CPU", cpu, "s"),
    ]
}

/// `n` domains behind the simulator's proxy (DNS answers the proxy, whose
/// CA signs their certificates), judged by the proof (Auto): all done as
/// Proxied; the proof request's latency measured from outside, through the
/// proxy; then two resync periods alone with a short `--done-recheck`
/// (`recheck`), where each done domain costs its periodic re-checks: one
/// proof request each, and the one status write that records any domain's
/// next check (at the default 12 h re-check, the window would see none).
pub async fn proof(n: usize, resync: Duration, recheck: Duration) -> Vec<Row> {
    const TOKEN: &str = "bench-proof-sidecar-token-0123456789abcdef";
    const PROXY: &str = "127.0.0.5";
    let size = n.to_string();
    let dir = folder(&format!("proof-{n}"));
    let cluster = Cluster::up(&dir).await;
    let sim = simulator(
        &dir,
        1,
        &[
            "--write-rate-limit",
            "500",
            "--issue-delay",
            "0s",
            "--site-token",
            TOKEN,
            "--proxy-ip",
            PROXY,
        ],
    )
    .await;
    crate::common::setup::sidecar_token_secret(&cluster.client, "default", TOKEN).await;
    let names: Vec<String> = (1..=n).map(|i| format!("p{i}.bench.example")).collect();
    for name in &names {
        sim.set_proxied(name, true).await;
    }
    let resync_flag = format!("{}s", resync.as_secs());
    let recheck_flag = format!("{}s", recheck.as_secs());
    let ctl = controller_process(
        &cluster,
        &sim,
        dir.join("controller.log"),
        &[
            "--closte-write-rate",
            "500",
            "--leader-elect=false",
            "--resync-period",
            &resync_flag,
            "--done-recheck",
            &recheck_flag,
            "--proof-secret",
            crate::common::setup::SIDECAR_TOKEN_SECRET,
        ],
    );
    ctl.ready().await;
    let progress = Progress::watch(&cluster.client);
    let api: Api<MappedDomain> = Api::namespaced(cluster.client.clone(), "default");
    let start = Instant::now();
    let objects = names
        .iter()
        .enumerate()
        .map(|(i, d)| domain(&format!("p{}", i + 1), d))
        .collect();
    create_all(&api, objects, 16).await;
    eventually(
        limit(n as f64 / 50.0 + 30.0),
        "every proxied domain done",
        || async { progress.done() >= n },
    )
    .await;
    let converged = start.elapsed().as_secs_f64();
    let list = api.list(&ListParams::default()).await.unwrap();
    let proxied = list
        .items
        .iter()
        .filter(|md| {
            md.status
                .as_ref()
                .and_then(|s| s.dns.as_ref())
                .is_some_and(|d| d.proxied)
        })
        .count();

    // the proof request as the controller sends it: a TLS handshake through
    // the proxy, the request, the answer verified
    let https = sim.https.expect("the simulator serves HTTPS");
    let tls = crate::common::sim::trusting(sim.ca.as_deref());
    let mut latencies = Vec::new();
    for i in 0..200 {
        let nonce = closte_operator::probe::proof::fresh_nonce();
        let asked = Instant::now();
        let seen = closte_operator::probe::proof::request(
            &tls,
            Duration::from_secs(10),
            PROXY.parse().unwrap(),
            https.port(),
            &names[i % n],
            TOKEN.as_bytes(),
            &nonce,
        )
        .await;
        latencies.push(asked.elapsed().as_secs_f64() * 1000.0);
        assert!(seen.verified, "{seen:?}");
    }

    let window = resync * 2 - Duration::from_secs(1);
    let writes0 = cluster.writes();
    let calls0 = sim_counts(&sim).await;
    let checks0 = ctl.metric("closte_operator_checks_total").await;
    tokio::time::sleep(window).await; // the measurement window itself
    let writes = cluster.writes() - writes0;
    let calls = sim_counts(&sim).await;
    let delta = |k: &str| calls[k] - calls0[k];
    let checks = ctl.metric("closte_operator_checks_total").await - checks0;
    assert!(ctl.panics().is_empty(), "{:?}", ctl.panics());
    assert!(checks > 0.0, "no done domain was re-checked in {window:?}");
    let rechecks_bound = n as f64 * (window.as_secs_f64() / recheck.as_secs_f64()).ceil();

    let steady = format!("{n}, {:.0} s", window.as_secs_f64());
    vec![
        Row::info("proof", &size, "all done as Proxied", converged, "s"),
        Row::info("proof", &size, "domains Proxied", proxied as f64, "").exactly(n as f64),
        Row::info(
            "proof",
            &size,
            "proof request p50",
            percentile(&latencies, 50.0),
            "ms",
        ),
        Row::info(
            "proof",
            &size,
            "proof request p99",
            percentile(&latencies, 99.0),
            "ms",
        ),
        Row::info(
            "proof",
            &steady,
            format!("re-checks, one proof request each (done-recheck {recheck_flag})"),
            checks,
            "",
        )
        .at_most(rechecks_bound),
        Row::info(
            "proof",
            &steady,
            "Closte writes",
            delta("adddomainalias") + delta("deletedomainalias"),
            "",
        )
        .exactly(0.0),
        Row::info(
            "proof",
            &steady,
            // the re-check's schedule (lastCheckTime, nextCheckTime), as for
            // any domain; the proof's own result adds none
            "MappedDomain writes per re-check",
            writes.mapped_domains / checks,
            "",
        )
        .at_most(1.0),
        Row::info("proof", &steady, "events", writes.events, "").exactly(0.0),
    ]
}

/// Create -> Closte add request: `n` creates one at a time, then bursts
/// (`shapes`: how many bursts of how many objects at once), with
/// no latency and no rate limit in the way. A domain counts as created when
/// the API server's answer to its create arrives.
pub async fn latency(n: usize, shapes: &'static [(usize, usize)]) -> Vec<Row> {
    measure_latency("latency", n, shapes, 0).await
}

/// The `latency` measurement among `population` objects already present:
/// half of them `done`, half waiting on DNS (an expected target DNS never
/// answers) and re-checked every 10 s, so checks are always due while new
/// domains come.
pub async fn population(
    population: usize,
    n: usize,
    shapes: &'static [(usize, usize)],
) -> Vec<Row> {
    measure_latency("population", n, shapes, population).await
}

async fn measure_latency(
    scenario: &'static str,
    n: usize,
    shapes: &'static [(usize, usize)],
    population: usize,
) -> Vec<Row> {
    let dir = folder(scenario);
    let cluster = Cluster::up(&dir).await;
    let sim = simulator(&dir, 1, &["--issue-delay", "1s"]).await;
    let ctl = controller_process(
        &cluster,
        &sim,
        dir.join("controller.log"),
        &[
            "--closte-write-rate",
            "10000",
            "--leader-elect=false",
            // the objects that measure the API server alone are not served
            "--selector",
            &format!("{BASELINE_LABEL}!=yes"),
        ],
    );
    ctl.ready().await;
    let api: Api<MappedDomain> = Api::namespaced(cluster.client.clone(), "default");

    let mut setup_rows = Vec::new();
    if population > 0 {
        let progress = Progress::watch(&cluster.client);
        let objects = (0..population)
            .map(|i| {
                let name = format!("p{i}");
                let mut md = domain(&name, &format!("{name}.bench.example"));
                if i % 2 == 1 {
                    // never matches: checked every 10 s for as long as it exists
                    md.spec.expected_targets = Some(vec!["192.0.2.1".into()]);
                }
                md
            })
            .collect();
        let started = Instant::now();
        create_all(&api, objects, 16).await;
        // slow on purpose: the waiting half's due checks compete with the
        // adds (at 10,000, 26 adds/s instead of the 64/s of `memory`)
        let bound = population as f64 / 20.0;
        eventually(limit(bound), "the population's adds", || async {
            sim.count("adddomainalias").await >= population as u64
        })
        .await;
        eventually(limit(bound), "half the population done", || async {
            progress.done() >= population / 2
        })
        .await;
        setup_rows.push(Row::info(
            scenario,
            population.to_string(),
            "population on Closte, half done, after",
            started.elapsed().as_secs_f64(),
            "s",
        ));
    }

    let among = match population {
        0 => String::new(),
        p => format!(", {p} present"),
    };
    let mut sent: BTreeMap<String, f64> = BTreeMap::new();
    let added_before = sim.count("adddomainalias").await as usize;
    for i in 0..n {
        let name = format!("l{i}");
        let dom = format!("{name}.bench.example");
        api.create(&PostParams::default(), &domain(&name, &dom))
            .await
            .unwrap();
        sent.insert(dom.clone(), unix_ms()); // created: the API server has stored it
        let deadline = Instant::now() + Duration::from_secs(30);
        while sim.count("adddomainalias").await < (added_before + i + 1) as u64 {
            assert!(Instant::now() < deadline, "no add for {dom}");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let single = add_latencies(&sim, &sent).await;

    let mut created = added_before + n;
    let mut bursty_rows = Vec::new();
    for &(bursts, burst) in shapes {
        let many = format!("{bursts} x {burst} at once{among}");
        let mut sent_burst: BTreeMap<String, f64> = BTreeMap::new();
        let requests_before = cluster.writes().requests;
        let mut bursts_time = Duration::ZERO;
        let mut alone = Vec::new();
        for b in 0..bursts {
            // the same burst's mandatory requests, the API server alone:
            // what no controller can beat
            alone.push(mandatory_requests_time(&api, &format!("{burst}-{b}"), burst).await);
            let burst_started = Instant::now();
            let stamps: Vec<(String, f64)> = futures::stream::iter(0..burst)
                .map(|i| {
                    let api = api.clone();
                    async move {
                        let name = format!("b{burst}-{b}-{i}");
                        let dom = format!("{name}.bench.example");
                        api.create(&PostParams::default(), &domain(&name, &dom))
                            .await
                            .unwrap();
                        (dom, unix_ms())
                    }
                })
                .buffer_unordered(burst)
                .collect()
                .await;
            sent_burst.extend(stamps);
            created += burst;
            // looked at every 200 ms, as for the recorded figures: the next
            // burst then finds the controller past this one's status writes,
            // which a tighter look would not (+50 % p99 at 10 x 10)
            eventually_every(
                limit(burst as f64 / 10_000.0),
                Duration::from_millis(200),
                "the burst's adds",
                || async { sim.count("adddomainalias").await >= created as u64 },
            )
            .await;
            bursts_time += burst_started.elapsed();
        }
        let burst_time = bursts_time.as_secs_f64();
        let requests = cluster.writes().requests - requests_before - 2.0 * (bursts * burst) as f64;
        let bursty = add_latencies(&sim, &sent_burst).await;
        let alone_ms = percentile(&alone, 50.0);
        bursty_rows.extend([
            Row::info(
                scenario,
                &many,
                "create -> add p50",
                percentile(&bursty, 50.0),
                "ms",
            ),
            Row::info(
                scenario,
                &many,
                "create -> add p99",
                percentile(&bursty, 99.0),
                "ms",
            )
            .at_most(500.0),
            Row::info(
                scenario,
                &many,
                "create -> add max",
                percentile(&bursty, 100.0),
                "ms",
            ),
            Row::info(
                scenario,
                &many,
                "API server alone: a burst's creates + one write each (median)",
                alone_ms,
                "ms",
            ),
            Row::info(
                scenario,
                &many,
                "create -> add p99 / API server alone",
                percentile(&bursty, 99.0) / alone_ms,
                "x",
            )
            .at_most(1.25),
            // what bounds a burst on a small machine: the API server's request rate
            Row::info(
                scenario,
                &many,
                "API requests per domain (all clients)",
                requests / (bursts * burst) as f64,
                "",
            ),
            Row::info(
                scenario,
                &many,
                "API requests/s while bursting",
                requests / burst_time,
                "",
            ),
        ]);
    }
    assert!(ctl.panics().is_empty(), "{:?}", ctl.panics());
    let one = format!("{n} one at a time{among}");
    let mut rows = vec![
        Row::info(
            scenario,
            &one,
            "create -> add p50",
            percentile(&single, 50.0),
            "ms",
        ),
        Row::info(
            scenario,
            &one,
            "create -> add p99",
            percentile(&single, 99.0),
            "ms",
        )
        .at_most(250.0),
        Row::info(
            scenario,
            &one,
            "create -> add max",
            percentile(&single, 100.0),
            "ms",
        ),
    ];
    rows.extend(bursty_rows);
    setup_rows.extend(rows);
    setup_rows
}

/// The label of the objects that measure the API server alone.
const BASELINE_LABEL: &str = "bench-api-server-alone";

/// How long (ms) the API server takes for a burst's mandatory requests
/// alone: `burst` creates at once, each followed by one write guarded by
/// its resourceVersion (as the controller's finalizer is), of objects the
/// controller does not serve.
async fn mandatory_requests_time(api: &Api<MappedDomain>, tag: &str, burst: usize) -> f64 {
    let started = Instant::now();
    futures::stream::iter(0..burst)
        .map(|i| {
            let api = api.clone();
            async move {
                let name = format!("alone-{tag}-{i}");
                let mut md = domain(&name, &format!("{name}.bench.example"));
                md.metadata.labels = Some([(BASELINE_LABEL.to_owned(), "yes".to_owned())].into());
                let created = api.create(&PostParams::default(), &md).await.unwrap();
                let patch = serde_json::json!({"metadata": {
                    "finalizers": ["bench.example/held"],
                    "resourceVersion": created.metadata.resource_version,
                }});
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(burst)
        .collect::<Vec<()>>()
        .await;
    started.elapsed().as_secs_f64() * 1000.0
}

/// For each domain created at a time (Unix ms), how long until its first add
/// reached the simulator (a negative value: the add came before the answer
/// to the create).
async fn add_latencies(sim: &Simulator, sent: &BTreeMap<String, f64>) -> Vec<f64> {
    let mut first_add: BTreeMap<String, f64> = BTreeMap::new();
    for entry in sim.requests().await {
        if entry["endpoint"] != "adddomainalias" {
            continue;
        }
        let (Some(dom), Some(at)) = (entry["domain"].as_str(), entry["atMs"].as_f64()) else {
            continue;
        };
        first_add.entry(dom.to_owned()).or_insert(at);
    }
    sent.iter()
        .map(|(dom, at)| {
            let added = first_add
                .get(dom)
                .unwrap_or_else(|| panic!("no add logged for {dom}"));
            added - at
        })
        .collect()
}

/// The sidecar: start-up, RSS idle, request -> MappedDomain stored over `n`
/// requests one at a time with the API server otherwise idle, RSS once its
/// namespace holds those `n` domains `done`, then the latency of `n / 5`
/// more while the controller works on each new domain on the same cores.
pub async fn sidecar(n: usize, settle: Duration) -> Vec<Row> {
    let size = n.to_string();
    let busy = (n / 5).max(1);
    let dir = folder("sidecar");
    let cluster = Cluster::up(&dir).await;
    let sim = simulator(&dir, 1, &["--issue-delay", "2s"]).await;
    let progress = Progress::watch(&cluster.client);
    let token = "bench-sidecar-token-77a1-0123456789ab";
    std::fs::write(dir.join("token"), token).unwrap();
    let side = sidecar_process(
        &cluster,
        "default",
        &dir.join("token"),
        dir.join("sidecar.log"),
    );
    let startup = side.ready().await.as_secs_f64() * 1000.0;
    tokio::time::sleep(settle).await; // idle, as a sidecar mostly is
    let idle = side.memory();

    // n requests with the API server otherwise idle: the sidecar's own cost;
    // then more while the controller works on every new domain beside it
    let http = reqwest::Client::new();
    let put = |i: usize| {
        let request = http
            .put(format!("{}/v1/domains/s{i}.bench.example", side.url()))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(r#"{"siteId": 1}"#);
        async move {
            let start = Instant::now();
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body = response.text().await.unwrap();
            assert_eq!(status, 201, "{body}");
            start.elapsed().as_secs_f64() * 1000.0
        }
    };
    let mut stored = Vec::with_capacity(n);
    for i in 0..n {
        stored.push(put(i).await);
    }
    let ctl = controller_process(
        &cluster,
        &sim,
        dir.join("controller.log"),
        &["--closte-write-rate", "500", "--leader-elect=false"],
    );
    ctl.ready().await;
    eventually(
        limit(n as f64 / 500.0 + 30.0),
        "the first domains done",
        || async { progress.done() >= n },
    )
    .await;
    tokio::time::sleep(settle).await; // its cache now holds every status
    let full = side.memory();
    let mut stored_busy = Vec::with_capacity(busy);
    for i in n..n + busy {
        stored_busy.push(put(i).await);
    }
    eventually(
        limit(n as f64 / 500.0 + 30.0),
        "every domain done",
        || async { progress.done() >= n + busy },
    )
    .await;
    assert!(side.panics().is_empty(), "{:?}", side.panics());
    let idle_row = Row::info("sidecar", "idle", "sidecar RSS", idle.rss, "MiB").at_most(12.0);
    let wordpress = wordpress_rows();
    let full_row = Row::info(
        "sidecar",
        &size,
        "sidecar RSS, domains done",
        full.rss,
        "MiB",
    );
    let beside = format!("{busy}, controller at work");
    let mut rows = vec![
        Row::info("sidecar", "idle", "start -> ready", startup, "ms").at_most(1000.0),
        idle_row,
        if n == 1000 {
            full_row.at_most(16.0)
        } else {
            full_row
        },
        Row::info(
            "sidecar",
            &size,
            "request -> stored p50",
            percentile(&stored, 50.0),
            "ms",
        ),
        Row::info(
            "sidecar",
            &size,
            "request -> stored p99",
            percentile(&stored, 99.0),
            "ms",
        )
        .at_most(30.0),
        Row::info(
            "sidecar",
            &size,
            "request -> stored max",
            percentile(&stored, 100.0),
            "ms",
        ),
        Row::info(
            "sidecar",
            &beside,
            "request -> stored p50",
            percentile(&stored_busy, 50.0),
            "ms",
        ),
        Row::info(
            "sidecar",
            &beside,
            "request -> stored p99",
            percentile(&stored_busy, 99.0),
            "ms",
        ),
    ];
    rows.extend(wordpress);
    rows
}

/// The WordPress-side time to create a site with a custom domain, as the
/// WordPress end-to-end test last measured it (`cargo test --test wordpress`
/// writes `target/bench/wordpress.json`); nothing when it has not run.
fn wordpress_rows() -> Vec<Row> {
    let path = crate::common::repo_root().join("target/bench/wordpress.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("   no WordPress timing: run `cargo test --test wordpress` first");
        return Vec::new();
    };
    let timing: serde_json::Value = serde_json::from_str(&text).unwrap();
    let size = "median of 5";
    let row = |figure: &str, key: &str| {
        Row::info(
            "wordpress",
            size,
            figure,
            timing[key].as_f64().unwrap_or(f64::NAN),
            "ms",
        )
    };
    vec![
        row(
            "site with a custom domain, through the sidecar",
            "sidecarMs",
        ),
        row("the same, direct call to Closte at 300 ms", "directMs"),
        row("a site without a custom domain", "baselineMs"),
    ]
}

/// `accounts` namespaces, each with its own key in a Secret and `per`
/// domains, behind one simulator that accepts 25 writes/s in all (the rest
/// get 429) while each account may write 10/s: lists per account, and how
/// evenly the accounts finish.
pub async fn accounts(accounts: usize, per: usize) -> Vec<Row> {
    let total = accounts * per;
    let size = format!("{accounts} x {per}");
    let dir = folder("accounts");
    let cluster = Cluster::up(&dir).await;
    let sim = simulator(
        &dir,
        accounts + 1,
        &[
            "--latency",
            "50ms",
            "--write-rate-limit",
            "25",
            "--issue-delay",
            "5s",
        ],
    )
    .await;
    let ctl = controller_process(
        &cluster,
        &sim,
        dir.join("controller.log"),
        &["--closte-write-rate", "10", "--leader-elect=false"],
    );
    ctl.ready().await;
    let mut by_account: Vec<Vec<(Api<MappedDomain>, MappedDomain)>> = Vec::new();
    for a in 1..=accounts {
        let ns = format!("account-{a}");
        let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
        namespaces
            .create(
                &PostParams::default(),
                &Namespace {
                    metadata: ObjectMeta {
                        name: Some(ns.clone()),
                        ..ObjectMeta::default()
                    },
                    ..Namespace::default()
                },
            )
            .await
            .unwrap();
        let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), &ns);
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some("closte".into()),
                ..ObjectMeta::default()
            },
            string_data: Some([("apiKey".to_owned(), account_key(a))].into()),
            ..Secret::default()
        };
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
        let api: Api<MappedDomain> = Api::namespaced(cluster.client.clone(), &ns);
        let mut objects = Vec::with_capacity(per);
        for i in 0..per {
            let dom = format!("a{a}-{i}.bench.example");
            let md = crate::common::mapped_domain(
                &format!("a{a}-{i}"),
                MappedDomainSpec {
                    credentials_ref: Some(SecretKeyRef {
                        name: "closte".into(),
                        key: "apiKey".into(),
                    }),
                    ..crate::common::spec(&dom)
                },
            );
            objects.push((api.clone(), md));
        }
        by_account.push(objects);
    }
    // round robin over the accounts: all start together, so one that is
    // starved by the others' 429s finishes visibly later
    let mut objects = Vec::with_capacity(total);
    for i in 0..per {
        for account in &mut by_account {
            objects.push(account[i].clone());
        }
    }
    let start_ms = unix_ms();
    let start = Instant::now();
    futures::stream::iter(objects)
        .map(|(api, md)| async move { api.create(&PostParams::default(), &md).await.unwrap() })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    let bound = total as f64 / 25.0;
    eventually(limit(bound), "every domain on Closte", || async {
        sim.count("aliases").await >= total as u64
    })
    .await;
    let on_closte = start.elapsed().as_secs_f64();

    let mut finish: BTreeMap<u64, f64> = BTreeMap::new();
    let mut lists: BTreeMap<u64, f64> = BTreeMap::new();
    let mut refused = 0.0;
    for entry in sim.requests().await {
        if entry["status"] == 429 {
            refused += 1.0; // refused before the key is looked at: no account
        }
        let Some(account) = entry["account"].as_u64() else {
            continue;
        };
        match entry["endpoint"].as_str() {
            Some("getdomains") => *lists.entry(account).or_default() += 1.0,
            Some("adddomainalias") if entry["status"] == 200 => {
                let at = (entry["atMs"].as_f64().unwrap() - start_ms) / 1000.0;
                let end = finish.entry(account).or_default();
                *end = end.max(at);
            }
            _ => {}
        }
    }
    assert_eq!(
        finish.len(),
        accounts,
        "every account got its domains added"
    );
    let finishes: Vec<f64> = finish.values().copied().collect();
    let list_counts: Vec<f64> = lists.values().copied().collect();
    assert!(ctl.panics().is_empty(), "{:?}", ctl.panics());
    vec![
        Row::info("accounts", &size, "all on Closte", on_closte, "s"),
        Row::info(
            "accounts",
            &size,
            format!("on Closte / bound ({bound:.0} s)"),
            on_closte / bound,
            "x",
        ),
        Row::info("accounts", &size, "429 answers", refused, ""),
        Row::info(
            "accounts",
            &size,
            "account done, earliest",
            percentile(&finishes, 0.0),
            "s",
        ),
        Row::info(
            "accounts",
            &size,
            "account done, median",
            percentile(&finishes, 50.0),
            "s",
        ),
        Row::info(
            "accounts",
            &size,
            "account done, last",
            percentile(&finishes, 100.0),
            "s",
        ),
        Row::info(
            "accounts",
            &size,
            "last account / median account",
            percentile(&finishes, 100.0) / percentile(&finishes, 50.0),
            "x",
        ),
        Row::info(
            "accounts",
            &size,
            "list calls per account, max",
            percentile(&list_counts, 100.0),
            "",
        )
        .at_most(2.0),
    ]
}
