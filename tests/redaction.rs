//! The API key never reaches a log line or an error message: a failing run
//! with every kind of fault is captured at TRACE level (including the `log`
//! records of the HTTP stack) and searched for the key.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use closte_operator::closte::{Account, ApiKey, ClientConfig, ClosteClient, FlowSettings};
use closte_operator::domain::Domain;
use common::sim::Simulator;
use serde_json::json;

const KEY: &str = "REDACTION-CANARY-5f1e2d";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn key_never_appears_in_logs_or_errors() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init()
        .expect("the only subscriber of this test binary");

    let sim = Simulator::up("redaction", &["--api-key", KEY]).await;
    let mut seen = Vec::new(); // every error's Display and Debug
    let config = |base: String| ClientConfig {
        base_url: base,
        connect_timeout: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
    };
    let key = ApiKey::new(KEY).unwrap();
    let account = Account::new(
        key.clone(),
        ClosteClient::new(&config(sim.api.clone())).unwrap(),
        FlowSettings::default(),
        Duration::from_secs(300),
    );
    let domain = Domain::parse("canary.example.com").unwrap();
    account.add(&domain).await.unwrap();
    for kind in ["500", "502", "429", "hang", "bad-json"] {
        sim.set_faults(json!({"failureRate": 1.0, "failureKinds": [kind], "hangMs": 2000, "retryAfterSecs": 0}))
            .await;
        account.invalidate();
        let list = account.domains().await.unwrap_err();
        let add = account.add(&domain).await.unwrap_err();
        for e in [list, add] {
            seen.push(format!("{e} {e:?}"));
        }
    }
    // a write whose answer is lost, and the list that settles it
    sim.set_faults(json!({"failureRate": 1.0, "failureKinds": ["lost-answer"]}))
        .await;
    let lost = account.delete(&domain).await.unwrap_err();
    seen.push(format!("{lost} {lost:?}"));
    assert!(!account.contains(&domain).await.unwrap());
    sim.set_faults(json!({})).await;
    // the server echoes what it was sent
    let client = ClosteClient::new(&config(sim.api.clone())).unwrap();
    let echo = client.add(&key, KEY).await.unwrap_err();
    seen.push(format!("{echo} {echo:?}"));
    // wrong key, and nothing listening at all (the key sits in the GET query)
    let wrong = ClosteClient::new(&config(sim.api.clone())).unwrap();
    let e = wrong
        .list(&ApiKey::new("wrong").unwrap())
        .await
        .unwrap_err();
    seen.push(format!("{e} {e:?}"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nowhere =
        ClosteClient::new(&config(format!("http://127.0.0.1:{port}/api/client"))).unwrap();
    for e in [
        nowhere.list(&key).await.unwrap_err(),
        nowhere.add(&key, "a.example.com").await.unwrap_err(),
    ] {
        seen.push(format!("{e} {e:?}"));
    }
    seen.push(format!("{key} {key:?} {account:?}"));

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("closte request"),
        "the run logged nothing; the check would prove nothing"
    );
    assert!(logs.lines().count() > 20, "too little was captured: {logs}");
    assert!(
        logs.contains("write outcome unknown"),
        "the lost answer was not logged"
    );
    let leaks: Vec<&str> = logs.lines().filter(|l| l.contains(KEY)).collect();
    assert!(leaks.is_empty(), "the key is in the logs: {leaks:#?}");
    for text in &seen {
        assert!(!text.contains(KEY), "the key is in an error: {text}");
    }
    assert!(
        seen.iter().any(|t| t.contains("[redacted]")),
        "the echo was not redacted: {seen:?}"
    );
    assert!(
        !sim.log().contains(KEY),
        "the key is in the simulator's log"
    );
}
