//! The Closte client and account view against the simulator, over real HTTP:
//! every fault kind, flow control, and the coalesced list.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use closte_operator::closte::reachability::OUTAGE_AFTER;
use closte_operator::closte::{
    Account, Accounts, AddOutcome, ApiKey, ClientConfig, ClosteClient, ClosteError, DeleteOutcome,
    FlowSettings,
};
use closte_operator::domain::Domain;
use common::sim::Simulator;
use common::wait::eventually;
use serde_json::json;

const KEY: &str = "test-key-7f3a9c";

fn client(sim: &Simulator, timeout: Duration) -> ClosteClient {
    ClosteClient::new(&ClientConfig {
        base_url: sim.api.clone(),
        connect_timeout: Duration::from_secs(2),
        timeout,
    })
    .unwrap()
}

fn account(sim: &Simulator, flow: FlowSettings) -> Arc<Account> {
    let key = ApiKey::new(KEY).unwrap();
    Arc::new(Account::new(
        key,
        client(sim, Duration::from_secs(5)),
        flow,
        Duration::from_secs(300),
    ))
}

fn domain(name: &str) -> Domain {
    Domain::parse(name).unwrap()
}

#[tokio::test]
async fn add_list_delete_round_trip() {
    let sim = Simulator::up("round-trip", &["--api-key", KEY, "--list-shape", "objects"]).await;
    let key = ApiKey::new(KEY).unwrap();
    let c = client(&sim, Duration::from_secs(5));
    assert_eq!(c.list(&key).await.unwrap(), Vec::<String>::new());
    c.add(&key, "shop.example.com").await.unwrap();
    c.add(&key, "*.blogs.example.org").await.unwrap();
    assert_eq!(
        c.list(&key).await.unwrap(),
        ["*.blogs.example.org", "shop.example.com"]
    );
    // the wire request carried wildcard=1 for the wildcard only
    assert_eq!(
        sim.aliases().await,
        ["*.blogs.example.org", "shop.example.com"]
    );
    let again = c.add(&key, "shop.example.com").await.unwrap_err();
    assert!(matches!(again, ClosteError::Unexpected { .. }), "{again}");
    c.delete(&key, "shop.example.com").await.unwrap();
    assert_eq!(c.list(&key).await.unwrap(), ["*.blogs.example.org"]);

    // invalid domains are rejected, and say so
    let rejected = c.add(&key, "not a domain").await.unwrap_err();
    assert_eq!(
        rejected,
        ClosteError::DomainRejected {
            domain: "not a domain".into(),
            message: "Invalid or empty domain: not a domain".into()
        }
    );
}

#[tokio::test]
async fn account_settles_disagreements_with_the_list() {
    let sim = Simulator::up("settle", &["--api-key", KEY]).await;
    let account = account(&sim, FlowSettings::default());
    let d = domain("adopted.example.com");
    sim.add_alias(d.as_str(), 0).await; // someone else added it
    assert_eq!(account.add(&d).await.unwrap(), AddOutcome::AlreadyPresent);
    assert_eq!(account.delete(&d).await.unwrap(), DeleteOutcome::Deleted);
    assert_eq!(
        account.delete(&d).await.unwrap(),
        DeleteOutcome::AlreadyAbsent
    );
    assert!(!account.contains(&d).await.unwrap());
    assert_eq!(account.add(&d).await.unwrap(), AddOutcome::Added);
    // the local view follows writes without a new list call
    sim.clear_requests().await;
    assert!(account.contains(&d).await.unwrap());
    assert_eq!(sim.count("getdomains").await, 0);
}

#[tokio::test]
async fn every_fault_kind_becomes_its_error() {
    let sim = Simulator::up("faults", &["--api-key", KEY]).await;
    let key = ApiKey::new(KEY).unwrap();
    let c = client(&sim, Duration::from_secs(1));
    let cases = [
        ("500", "Closte unavailable: HTTP 500"),
        ("502", "Closte unavailable: HTTP 502 with an HTML page"),
        ("429", "Closte rate limit reached (retry after 3s)"),
        ("hang", "Closte unavailable: no answer within 1s"),
        (
            "bad-json",
            "Closte unavailable: HTTP 200 with a body that is not a JSON object",
        ),
    ];
    for (kind, text) in cases {
        sim.set_faults(json!({"failureRate": 1.0, "failureKinds": [kind], "hangMs": 3000, "retryAfterSecs": 3}))
            .await;
        for result in [
            c.list(&key).await.map(drop),
            c.add(&key, "f.example.com").await,
        ] {
            let err = result.unwrap_err();
            assert!(err.to_string().starts_with(text), "{kind}: {err}");
            let expected_retry = if kind == "429" {
                closte_operator::closte::Disposition::RetryAfter(Duration::from_secs(3))
            } else {
                closte_operator::closte::Disposition::BackOff
            };
            assert_eq!(err.disposition(), expected_retry, "{kind}");
        }
    }
    sim.set_faults(json!({})).await;
    assert!(
        c.list(&key).await.unwrap().is_empty(),
        "a write answered with a fault must not land"
    );
}

#[tokio::test]
async fn wrong_key_and_unreachable_server() {
    let sim = Simulator::up("wrong-key", &["--api-key", KEY]).await;
    let c = client(&sim, Duration::from_secs(2));
    let wrong = ApiKey::new("not-the-key").unwrap();
    for result in [
        c.list(&wrong).await.map(drop),
        c.add(&wrong, "a.example.com").await,
    ] {
        assert!(
            matches!(result, Err(ClosteError::CredentialsRejected { .. })),
            "{result:?}"
        );
    }

    // a server that accepts and hangs up at once (a reset), and a closed port
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
    // a port bound but not listening: refused, and held so nothing else takes it
    let closed = tokio::net::TcpSocket::new_v4().unwrap();
    closed.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    for base in [
        format!("http://{addr}/api/client"),
        format!("http://127.0.0.1:{closed_port}/api/client"),
    ] {
        let c = ClosteClient::new(&ClientConfig {
            base_url: base.clone(),
            ..ClientConfig::default()
        })
        .unwrap();
        let err = c.list(&wrong).await.unwrap_err();
        assert!(
            matches!(err, ClosteError::Transient { .. }),
            "{base}: {err}"
        );
    }
}

#[tokio::test]
async fn concurrent_callers_share_one_list_request() {
    let sim = Simulator::up("coalesce", &["--api-key", KEY, "--latency", "200ms"]).await;
    let account = account(&sim, FlowSettings::default());
    let callers = 100;
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let account = account.clone();
            tokio::spawn(async move { account.domains().await.unwrap().len() })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 0);
    }
    let first_round = sim.count("getdomains").await;
    assert_eq!(first_round, 1, "{callers} concurrent callers");
    println!("coalescing: {callers} concurrent callers -> {first_round} getdomains request(s)");

    // within the resync period the cached list answers
    for _ in 0..10 {
        account.domains().await.unwrap();
    }
    assert_eq!(sim.count("getdomains").await, 1);

    // a disagreement makes the next caller refetch, once
    account.invalidate();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let account = account.clone();
            tokio::spawn(async move { account.domains().await.map(|d| d.len()) })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(sim.count("getdomains").await, 2);
}

#[tokio::test]
async fn failed_list_is_shared_by_its_waiters_then_retried() {
    let sim = Simulator::up("coalesce-fail", &["--api-key", KEY, "--latency", "200ms"]).await;
    sim.set_faults(json!({"latencyMs": 200, "failureRate": 1.0, "failureKinds": ["500"]}))
        .await;
    let account = account(&sim, FlowSettings::default());
    let tasks: Vec<_> = (0..30)
        .map(|_| {
            let account = account.clone();
            tokio::spawn(async move { account.domains().await.is_err() })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap());
    }
    assert_eq!(
        sim.count("getdomains").await,
        1,
        "waiters must not each retry"
    );
    sim.set_faults(json!({})).await;
    assert!(account.domains().await.is_ok(), "a later call tries again");
}

fn tick() -> tokio::time::Instant {
    tokio::time::Instant::now()
}

/// The end of an outage (every request failing for a while) is announced
/// once, seen by a ping; faults here and there among successes announce
/// none (not for a resync period without failures, longer than this test).
#[tokio::test]
async fn an_account_announces_the_end_of_an_outage_only() {
    let sim = Simulator::up("recovery", &["--api-key", KEY]).await;
    let accounts = Accounts::new(
        client(&sim, Duration::from_secs(5)),
        FlowSettings::default(),
        Duration::from_secs(300),
    );
    let mut recoveries = accounts.recoveries();
    let account = accounts.get(&ApiKey::new(KEY).unwrap());
    // objects may wait on a failure a previous process saw: the first answer counts
    assert!(account.ping_due(tick()), "nothing seen yet");
    account.ping(tick()).await;
    assert!(recoveries.has_changed().unwrap());
    recoveries.mark_unchanged();
    let first = account.recovered_at().unwrap();

    sim.set_faults(json!({"failureRate": 0.3, "failureKinds": ["500"]}))
        .await;
    let until = Instant::now() + OUTAGE_AFTER + Duration::from_secs(1);
    let mut failed = 0;
    while Instant::now() < until {
        failed += usize::from(account.refresh().await.is_err());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(failed > 0, "no fault was drawn");
    sim.set_faults(json!({})).await;
    account.refresh().await.unwrap();
    assert!(
        !recoveries.has_changed().unwrap(),
        "partial faults are no outage ({failed} failures)"
    );

    sim.set_faults(json!({"failureRate": 1.0, "failureKinds": ["500", "502"]}))
        .await;
    for _ in 0..3 {
        assert!(account.refresh().await.is_err());
    }
    assert!(!account.ping_due(tick()), "failing for too short a time");
    eventually(10, "a ping to be due", || async {
        account.ping_due(tick()).then_some(())
    })
    .await;
    account.ping(tick()).await;
    assert!(!recoveries.has_changed().unwrap(), "still failing");
    sim.set_faults(json!({})).await;
    eventually(10, "a ping to see Closte answer", || async {
        account.ping(tick()).await;
        recoveries.has_changed().unwrap().then_some(())
    })
    .await;
    assert!(account.recovered_at().unwrap() > first);
    assert!(!account.ping_due(tick()), "Closte answers: no more pings");
    assert_eq!(accounts.all().len(), 1);
}

#[tokio::test]
async fn rate_limit_pauses_the_whole_account() {
    let sim = Simulator::up("pause", &["--api-key", KEY]).await;
    let account = account(&sim, FlowSettings::default());
    sim.set_faults(json!({"failureRate": 1.0, "failureKinds": ["429"], "retryAfterSecs": 2}))
        .await;
    let err = account
        .add(&domain("limited.example.com"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ClosteError::RateLimited {
            retry_after: Some(Duration::from_secs(2))
        }
    );
    sim.set_faults(json!({})).await;
    sim.clear_requests().await;

    // a read of the same account waits out the pause
    let started = Instant::now();
    account.domains().await.unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1800),
        "waited only {waited:?}"
    );
    let log = sim.requests().await;
    assert_eq!(
        log.len(),
        1,
        "nothing reached Closte during the pause: {log:?}"
    );
}

#[tokio::test]
async fn writes_are_paced_and_in_flight_capped() {
    let sim = Simulator::up("pacing", &["--api-key", KEY]).await;
    let paced = account(
        &sim,
        FlowSettings {
            write_rate: 20.0,
            max_in_flight: 4,
        },
    );
    let started = Instant::now();
    for i in 0..11 {
        paced
            .add(&domain(&format!("p{i}.example.com")))
            .await
            .unwrap();
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(480),
        "11 writes at 20/s took {elapsed:?}"
    );

    // 6 slow writes through 2 slots take 3 rounds
    sim.set_faults(json!({"latencyMs": 300})).await;
    let capped = account(
        &sim,
        FlowSettings {
            write_rate: 1000.0,
            max_in_flight: 2,
        },
    );
    let started = Instant::now();
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let capped = capped.clone();
            tokio::spawn(async move { capped.add(&domain(&format!("c{i}.example.com"))).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(880),
        "6 writes via 2 slots took {elapsed:?}"
    );
    // both slots in use: some two writes were in Closte's 300 ms at once
    // (served less than the latency apart), which one slot never allows
    let mut served: Vec<u64> = sim
        .requests()
        .await
        .iter()
        .filter(|r| r["endpoint"] == "adddomainalias")
        .filter(|r| r["domain"].as_str().is_some_and(|d| d.starts_with('c')))
        .map(|r| r["atMs"].as_u64().unwrap())
        .collect();
    assert_eq!(served.len(), 6, "the 6 writes in the simulator's log");
    served.sort_unstable();
    assert!(
        served.windows(2).any(|w| w[1] - w[0] < 300),
        "the slots were not used in parallel: served at {served:?}"
    );
}

#[tokio::test]
async fn simulator_write_rate_limit_answers_429() {
    let sim = Simulator::up(
        "sim-limit",
        &[
            "--api-key",
            KEY,
            "--write-rate-limit",
            "5",
            "--retry-after",
            "1",
        ],
    )
    .await;
    let key = ApiKey::new(KEY).unwrap();
    let c = client(&sim, Duration::from_secs(5));
    let mut limited = 0;
    for i in 0..12 {
        if let Err(ClosteError::RateLimited { retry_after }) =
            c.add(&key, &format!("r{i}.example.com")).await
        {
            assert_eq!(retry_after, Some(Duration::from_secs(1)));
            limited += 1;
        }
    }
    assert!(
        limited >= 5,
        "only {limited} of 12 back-to-back writes were limited"
    );
    // a paced account stays under the limit and never sees a 429
    let account = account(
        &sim,
        FlowSettings {
            write_rate: 4.0,
            max_in_flight: 4,
        },
    );
    // the same limit, its bucket full again (as after a quiet second)
    sim.set_faults(json!({"writeRateLimit": 5.0, "retryAfterSecs": 1}))
        .await;
    sim.clear_requests().await;
    for i in 0..6 {
        account
            .add(&domain(&format!("q{i}.example.com")))
            .await
            .unwrap();
    }
    let log = sim.requests().await;
    let writes: Vec<u64> = log
        .iter()
        .filter(|r| r["endpoint"] == "adddomainalias")
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(writes, [200; 6], "{log:?}");
    assert_eq!(log.iter().filter(|r| r["status"] == 429).count(), 0);
}

/// Endpoint and injected fault of every request in the simulator's log.
async fn calls(sim: &Simulator) -> Vec<(String, Option<String>)> {
    sim.requests()
        .await
        .iter()
        .map(|r| {
            (
                r["endpoint"].as_str().unwrap().to_owned(),
                r["fault"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn call(endpoint: &str, fault: Option<&str>) -> (String, Option<String>) {
    (endpoint.to_owned(), fault.map(str::to_owned))
}

/// Closte applies the write, but the answer is lost: the cached list, fetched
/// before the write, must not answer for that name.
#[tokio::test]
async fn a_lost_answer_is_settled_by_a_newer_list() {
    let sim = Simulator::up("lost-answer", &["--api-key", KEY]).await;
    let account = account(&sim, FlowSettings::default());
    let d = domain("lost.example.com");
    assert!(!account.contains(&d).await.unwrap(), "cached: absent");
    sim.set_faults(json!({"failureRate": 1.0, "failureKinds": ["lost-answer"]}))
        .await;
    sim.clear_requests().await;

    let err = account.add(&d).await.unwrap_err();
    assert!(matches!(err, ClosteError::Transient { .. }), "{err}");
    assert!(account.contains(&d).await.unwrap(), "the add was applied");
    let lost = Some("lost-answer");
    assert_eq!(
        calls(&sim).await,
        [call("adddomainalias", lost), call("getdomains", None)]
    );

    let err = account.delete(&d).await.unwrap_err();
    assert!(matches!(err, ClosteError::Transient { .. }), "{err}");
    assert!(
        !account.contains(&d).await.unwrap(),
        "the delete was applied"
    );
    assert_eq!(
        calls(&sim).await,
        [
            call("adddomainalias", lost),
            call("getdomains", None),
            call("deletedomainalias", lost),
            call("getdomains", None),
        ]
    );
    // settled: the list just fetched answers from now on
    assert!(!account.contains(&d).await.unwrap());
    assert_eq!(sim.count("getdomains").await, 2);
}

/// The unknown outcome is one name's: every other name keeps the cached list,
/// and concurrent callers for that name share one list request.
#[tokio::test]
async fn an_unknown_outcome_refetches_for_its_name_only() {
    let sim = Simulator::up("lost-one-name", &["--api-key", KEY]).await;
    let others: Vec<Domain> = (0..50)
        .map(|i| domain(&format!("o{i}.example.com")))
        .collect();
    for d in &others {
        sim.add_alias(d.as_str(), 0).await;
    }
    let account = account(&sim, FlowSettings::default());
    assert_eq!(account.domains().await.unwrap().len(), 50);
    sim.set_faults(json!({"latencyMs": 200, "failureRate": 1.0, "failureKinds": ["lost-answer"]}))
        .await;
    let unknown = domain("unknown.example.com");
    account.add(&unknown).await.unwrap_err();
    sim.clear_requests().await;

    for d in &others {
        assert!(account.contains(d).await.unwrap(), "{d:?}");
    }
    assert_eq!(
        sim.count("getdomains").await,
        0,
        "other names use the cache"
    );

    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let account = account.clone();
            let unknown = unknown.clone();
            tokio::spawn(async move { account.contains(&unknown).await.unwrap() })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap(), "the add was applied");
    }
    assert_eq!(sim.count("getdomains").await, 1, "callers share one list");
    assert!(account.contains(&unknown).await.unwrap());
    assert_eq!(sim.count("getdomains").await, 1, "settled by that list");
}

/// A later successful write of the name settles it; a 429 is not applied and
/// leaves nothing unknown.
#[tokio::test]
async fn a_successful_write_settles_and_a_rate_limit_is_not_applied() {
    let sim = Simulator::up("lost-then-written", &["--api-key", KEY]).await;
    let account = account(&sim, FlowSettings::default());
    let d = domain("settled.example.com");
    assert!(!account.contains(&d).await.unwrap());
    sim.set_faults(json!({"failureRate": 1.0, "failureKinds": ["lost-answer"]}))
        .await;
    account.add(&d).await.unwrap_err();
    sim.set_faults(json!({})).await;
    assert_eq!(account.delete(&d).await.unwrap(), DeleteOutcome::Deleted);
    sim.clear_requests().await;
    assert!(!account.contains(&d).await.unwrap());
    assert_eq!(sim.count("getdomains").await, 0, "the delete settled it");

    sim.set_faults(json!({"failureRate": 1.0, "failureKinds": ["429"], "retryAfterSecs": 1}))
        .await;
    let limited = domain("limited.example.com");
    let err = account.add(&limited).await.unwrap_err();
    assert!(matches!(err, ClosteError::RateLimited { .. }), "{err}");
    assert!(!account.contains(&limited).await.unwrap());
    assert_eq!(
        calls(&sim).await,
        [call("adddomainalias", Some("429"))],
        "no list after a 429"
    );
}
