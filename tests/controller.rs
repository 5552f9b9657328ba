//! The controller as a process, against a real kube-apiserver and the
//! simulator over HTTP. Each test has its own namespace, simulator and
//! controller (watching only that namespace).

mod common;

use std::time::Instant;

use closte_operator::api::{
    CREATED_FINALIZER, DeletionPolicy, FINALIZER, MappedDomain, MappedDomainSpec, Ownership,
    SecretKeyRef, Stage,
};
use common::operator::{condition, controller, wait_condition, wait_gone};
use common::process::Process;
use common::setup::Setup;
use common::sim::Simulator;
use common::wait::eventually;
use common::{create, create_key_secret, key_secret, spec};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

const KEY: &str = "controller-key-83b1";

async fn setup(name: &str, sim_args: &[&str], operator_args: &[&str]) -> Setup {
    Setup::start(name, KEY, sim_args, operator_args).await
}

/// Creates one MappedDomain per name, with domain `NAME.SUFFIX`.
async fn create_all(api: &Api<MappedDomain>, names: &[String], suffix: &str) {
    for name in names {
        create(api, name, spec(&format!("{name}.{suffix}"))).await;
    }
}

async fn event_reasons(client: &Client, ns: &str, name: &str) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    let mut list: Vec<Event> = events.list(&ListParams::default()).await.unwrap().items;
    list.retain(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name));
    list.iter().filter_map(|e| e.reason.clone()).collect()
}

/// The controller's log lines about `name` in `ns` that say `message`.
fn lines_about<'a>(log: &'a str, ns: &str, name: &str, message: &str) -> Vec<&'a str> {
    let object = format!("namespace={ns} name={name}");
    log.lines()
        .filter(|l| l.contains(message))
        .filter(|l| {
            l.split_once(&object)
                .is_some_and(|(_, after)| after.starts_with([' ', '}']))
        })
        .collect()
}

/// Waits until the controller has ended a pass of `name` in `ns` (a debug
/// line): whatever that pass sends to Closte has been sent.
async fn wait_pass_ended(operator: &Process, ns: &str, name: &str) {
    eventually(30, &format!("a pass of {ns}/{name} to end"), || async {
        let log = operator.log_text();
        (!lines_about(&log, ns, name, "pass ended").is_empty()).then_some(())
    })
    .await
}

/// Waits until the controller's retry gate has held back more than `seen`
/// passes of `name` in `ns` ("waiting before the next try", a debug line);
/// returns the `wait_ms` of each, in the order logged.
async fn wait_held_back(operator: &Process, ns: &str, name: &str, seen: usize) -> Vec<u64> {
    eventually(
        30,
        &format!(
            "pass {} of {ns}/{name} held back by the retry gate",
            seen + 1
        ),
        || async {
            let log = operator.log_text();
            let waits: Vec<u64> = lines_about(&log, ns, name, "waiting before the next try")
                .into_iter()
                .map(|l| {
                    l.split_once("wait_ms=")
                        .and_then(|(_, after)| after.split_whitespace().next()?.parse().ok())
                        .unwrap_or_else(|| panic!("no wait_ms in {l}"))
                })
                .collect();
            (waits.len() > seen).then_some(waits)
        },
    )
    .await
}

/// Successful add requests per domain in the simulator's log.
async fn adds(sim: &Simulator) -> Vec<String> {
    sim.requests()
        .await
        .iter()
        .filter(|r| r["endpoint"] == "adddomainalias" && r["status"] == 200 && r["fault"].is_null())
        .filter_map(|r| r["domain"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn create_registers_and_delete_removes() {
    let s = setup("lifecycle", &[], &[]).await;
    let created = create(&s.api, "shop", spec("shop.lifecycle.example")).await;
    let md = wait_condition(&s.api, "shop", "Registered", "True", Some("Added")).await;
    let status = md.status.clone().unwrap();
    assert_eq!(status.ownership, Some(Ownership::Created));
    assert_eq!(status.stage, Some(Stage::CheckingSslCert));
    assert_eq!(status.observed_generation, created.metadata.generation);
    assert_eq!(
        md.finalizers(),
        [CREATED_FINALIZER],
        "the finalizer that says the alias is this controller's"
    );
    assert_eq!(condition(&md, "Ready").unwrap().0, "False");
    assert_eq!(
        condition(&md, "DNSReady").unwrap().0,
        "True",
        "the simulator's DNS points here"
    );
    assert_eq!(s.sim.aliases().await, ["shop.lifecycle.example"]);
    eventually(10, "the Added event", || async {
        let r = event_reasons(&s.client, &s.ns, "shop").await;
        r.contains(&"Added".to_string()).then_some(())
    })
    .await;

    // a spec change is observed: observedGeneration follows generation
    let patched = s
        .api
        .patch(
            "shop",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"siteId": 9}})),
        )
        .await
        .unwrap();
    eventually(10, "observedGeneration to follow", || async {
        let md = s.api.get("shop").await.ok()?;
        (md.status?.observed_generation == patched.metadata.generation).then_some(())
    })
    .await;

    s.api
        .delete("shop", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&s.api, "shop").await;
    assert!(
        s.sim.aliases().await.is_empty(),
        "the alias this controller created is removed"
    );
    assert_eq!(
        adds(&s.sim).await,
        ["shop.lifecycle.example"],
        "exactly one add"
    );
}

#[tokio::test]
async fn orphan_and_adopted_aliases_survive_deletion() {
    let s = setup("orphans", &[], &[]).await;
    s.sim.add_alias("adopted.orphans.example", 0).await;
    create(&s.api, "adopted", spec("adopted.orphans.example")).await;
    create(
        &s.api,
        "kept",
        MappedDomainSpec {
            deletion_policy: Some(DeletionPolicy::Orphan),
            ..spec("kept.orphans.example")
        },
    )
    .await;
    create(
        &s.api,
        "forced",
        MappedDomainSpec {
            deletion_policy: Some(DeletionPolicy::Delete),
            ..spec("forced.orphans.example")
        },
    )
    .await;
    let adopted = wait_condition(&s.api, "adopted", "Registered", "True", Some("Adopted")).await;
    assert_eq!(
        adopted.finalizers(),
        [FINALIZER],
        "held, without the finalizer that claims the alias"
    );
    assert_eq!(adopted.status.unwrap().ownership, Some(Ownership::Adopted));
    wait_condition(&s.api, "kept", "Registered", "True", None).await;
    wait_condition(&s.api, "forced", "Registered", "True", None).await;
    s.sim.add_alias("unnamed.orphans.example", 0).await; // no MappedDomain names it
    for name in ["adopted", "kept", "forced"] {
        s.api.delete(name, &DeleteParams::default()).await.unwrap();
    }
    for name in ["adopted", "kept", "forced"] {
        wait_gone(&s.api, name).await;
    }
    assert_eq!(
        s.sim.aliases().await,
        [
            "adopted.orphans.example",
            "kept.orphans.example",
            "unnamed.orphans.example"
        ]
    );
    eventually(10, "the Orphaned event", || async {
        let r = event_reasons(&s.client, &s.ns, "adopted").await;
        r.contains(&"Orphaned".to_string()).then_some(())
    })
    .await;
}

#[tokio::test]
async fn rejected_domain_stalls_without_a_retry_storm() {
    // the Secret watch: a touch of its Secret wakes the object up
    let s = setup(
        "rejected",
        &["--reject-domain", "rejected.example"],
        &["--watch-secrets"],
    )
    .await;
    let secrets: Api<Secret> = Api::namespaced(s.client.clone(), &s.ns);
    let with_secret = MappedDomainSpec {
        credentials_ref: create_key_secret(&s.client, &s.ns, "closte", KEY).await,
        ..spec("shop.rejected.example")
    };
    create(&s.api, "bad", with_secret).await;
    let md = wait_condition(&s.api, "bad", "Stalled", "True", Some("DomainRejected")).await;
    assert_eq!(md.status.as_ref().unwrap().stage, Some(Stage::Failed));
    assert_eq!(condition(&md, "Reconciling").unwrap().0, "False");
    for condition in ["--for=condition=Stalled", "--for=condition=Ready=False"] {
        let out = common::kubectl(&["wait", "-n", &s.ns, condition, "md/bad", "--timeout=10s"]);
        assert!(
            out.status.success(),
            "{condition}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // the rejection waits on a person: passes that wake it up (a touch of
    // its Secret, the same key) are held back for minutes, not retried
    wait_pass_ended(&s.operator, &s.ns, "bad").await;
    let mut waits = Vec::new();
    for touch in ["1", "2"] {
        let label = json!({"metadata": {"labels": {"tests.closte-operator.io/touched": touch}}});
        secrets
            .patch("closte", &PatchParams::default(), &Patch::Merge(&label))
            .await
            .unwrap();
        waits = wait_held_back(&s.operator, &s.ns, "bad", waits.len()).await;
    }
    assert!(
        waits.iter().all(|ms| *ms > 60_000),
        "a held-back pass comes back within a minute: waits {waits:?} ms"
    );
    let attempts = s
        .sim
        .requests()
        .await
        .iter()
        .filter(|r| r["endpoint"] == "adddomainalias")
        .count();
    assert_eq!(attempts, 1, "the rejected domain was sent again");
}

#[tokio::test]
async fn outage_then_recovery_converges_without_duplicates() {
    let s = setup(
        "outage",
        &["--failure-rate", "1", "--failures", "500,502,bad-json"],
        &[],
    )
    .await;
    let names: Vec<String> = (0..5).map(|i| format!("d{i}")).collect();
    create_all(&s.api, &names, "outage.example").await;
    for name in &names {
        let md = eventually(30, "a failure to show in status", || async {
            let md = s.api.get(name).await.ok()?;
            (md.status.as_ref()?.failed_attempts? >= 1).then_some(md)
        })
        .await;
        let (status, reason) = condition(&md, "Ready").unwrap();
        assert_eq!(status, "False");
        assert!(
            ["ClosteUnavailable", "UnexpectedAnswer"].contains(&reason.as_str()),
            "{reason}"
        );
        assert_eq!(
            condition(&md, "Stalled").unwrap().0,
            "False",
            "an outage is not stalled"
        );
        assert!(md.status.unwrap().last_failure_time.is_some());
    }
    s.sim.set_faults(json!({})).await;
    for name in &names {
        let md = wait_condition(&s.api, name, "Registered", "True", None).await;
        assert_eq!(
            md.status.unwrap().failed_attempts,
            None,
            "success resets the count"
        );
    }
    let mut added = adds(&s.sim).await;
    added.sort();
    let expected: Vec<String> = names
        .iter()
        .map(|n| format!("{n}.outage.example"))
        .collect();
    assert_eq!(added, expected, "each domain added exactly once");
}

/// Objects created during a full outage back off well past a minute; once
/// Closte heals, the account's recovery wakes them at once (paced by the
/// write rate, so Closte's own limit at that rate is never hit), while an
/// object waiting on a person keeps waiting.
#[tokio::test]
async fn healing_wakes_objects_waiting_out_an_outage() {
    const RESYNC: &str = "300s"; // resync is not what saves them
    let rejected = json!(["rejected.heal.example"]);
    let s = setup("heal", &[], &["--resync-period", RESYNC]).await;
    // waiting on a person: Closte refused its domain before the outage
    s.sim.set_faults(json!({ "rejectDomains": rejected })).await;
    create(&s.api, "refused", spec("shop.rejected.heal.example")).await;
    wait_condition(&s.api, "refused", "Stalled", "True", Some("DomainRejected")).await;

    s.sim
        .set_faults(json!({
            "failureRate": 1.0, "failureKinds": ["500", "502"], "rejectDomains": rejected,
        }))
        .await;
    let names: Vec<String> = (0..30).map(|i| format!("h{i}")).collect();
    create_all(&s.api, &names, "heal.example").await;
    // five failures: the next try is at least 64 s (80 s less the jitter) away
    eventually(150, "every object to have failed five times", || async {
        let list = s.api.list(&ListParams::default()).await.ok()?;
        let waiting = list
            .items
            .iter()
            .filter(|md| names.contains(&md.name_any()))
            .filter(|md| md.status.as_ref().and_then(|st| st.failed_attempts) >= Some(5))
            .count();
        (waiting == names.len()).then_some(())
    })
    .await;

    s.sim
        .set_faults(json!({ "writeRateLimit": 10.0, "rejectDomains": rejected }))
        .await;
    let healed = Instant::now();
    let mut expected: Vec<String> = names.iter().map(|n| format!("{n}.heal.example")).collect();
    expected.sort();
    eventually(120, "every alias on Closte after healing", || async {
        (s.sim.aliases().await == expected).then_some(())
    })
    .await;
    println!(
        "healed: all {} aliases on Closte after {:?}",
        names.len(),
        healed.elapsed()
    );
    // woken, not waited out: the account's recovery let every waiting
    // object through at once (their backoff had at least 64 s to run)
    let woken: Vec<String> = s
        .operator
        .log_text()
        .lines()
        .filter(|l| l.contains("waking the objects waiting out its failure"))
        .map(str::to_owned)
        .collect();
    assert!(
        woken
            .iter()
            .any(|l| l.contains(&format!("objects={}", names.len()))),
        "the recovery did not wake all {} objects at once: {woken:#?}",
        names.len()
    );

    let log = s.sim.requests().await;
    let limited = log.iter().filter(|r| r["status"] == 429).count();
    assert_eq!(limited, 0, "woken writes ran into Closte's rate limit");
    let refused = "shop.rejected.heal.example";
    let mut added = adds(&s.sim).await;
    added.retain(|d| d != refused); // answered 200 with Closte's refusal
    added.sort();
    assert_eq!(added, expected, "each domain added exactly once");
    let refused_adds = log.iter().filter(|r| r["domain"] == refused).count();
    assert_eq!(refused_adds, 1, "the refused domain was woken too");
    let md = s.api.get("refused").await.unwrap();
    assert_eq!(
        condition(&md, "Stalled"),
        Some(("True".into(), "DomainRejected".into()))
    );
}

#[tokio::test]
async fn vanished_alias_is_added_back() {
    let s = setup("drift", &[], &["--resync-period", "2s"]).await;
    create(&s.api, "d", spec("drift.example.org")).await;
    wait_condition(&s.api, "d", "Registered", "True", Some("Added")).await;
    assert!(s.sim.remove_alias("drift.example.org").await);
    eventually(20, "the alias to come back", || async {
        (s.sim.aliases().await == ["drift.example.org"]).then_some(())
    })
    .await;
    eventually(10, "the ReRegistered event", || async {
        let r = event_reasons(&s.client, &s.ns, "d").await;
        r.contains(&"ReRegistered".to_string()).then_some(())
    })
    .await;
}

#[tokio::test]
async fn credentials_missing_wrong_then_fixed() {
    // instant rotation needs the (opt-in) Secret watch
    let s = setup(
        "creds",
        &["--api-key", "site-two-key"],
        &["--watch-secrets"],
    )
    .await;
    let credentials_ref = Some(SecretKeyRef {
        name: "closte".into(),
        key: "apiKey".into(),
    });
    let with_secret = MappedDomainSpec {
        credentials_ref,
        ..spec("creds.example.net")
    };
    create(&s.api, "c", with_secret).await;
    wait_condition(&s.api, "c", "Stalled", "True", Some("CredentialsNotFound")).await;
    let secrets: Api<Secret> = Api::namespaced(s.client.clone(), &s.ns);
    let secret = |key: &str| key_secret("closte", key);
    secrets
        .create(&PostParams::default(), &secret("wrong-key"))
        .await
        .unwrap();
    wait_condition(&s.api, "c", "Stalled", "True", Some("CredentialsRejected")).await;
    secrets
        .replace("closte", &PostParams::default(), &secret("site-two-key"))
        .await
        .unwrap();
    wait_condition(&s.api, "c", "Registered", "True", Some("Added")).await;
    // the alias went to the second site, not the controller's own
    let log = s.sim.requests().await;
    let add = log
        .iter()
        .find(|r| r["endpoint"] == "adddomainalias" && r["status"] == 200)
        .unwrap();
    assert_eq!(add["account"], 1);
    let status = serde_json::to_string(&s.api.get("c").await.unwrap().status).unwrap();
    assert!(!status.contains("site-two-key") && !status.contains("wrong-key"));
}

#[tokio::test]
async fn suspend_and_dry_run_write_nothing() {
    let s = setup("suspend", &[], &[]).await;
    create(
        &s.api,
        "s",
        MappedDomainSpec {
            suspend: Some(true),
            ..spec("suspended.example.com")
        },
    )
    .await;
    wait_condition(&s.api, "s", "Registered", "False", Some("Suspended")).await;
    assert!(s.sim.aliases().await.is_empty());
    s.api
        .patch(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspend": false}})),
        )
        .await
        .unwrap();
    wait_condition(&s.api, "s", "Registered", "True", Some("Added")).await;

    let dry_ns = common::namespace(&s.client, "dry").await;
    let sim2 = Simulator::up_with_checks("dry-sim", &["--api-key", KEY]).await;
    let _dry = controller("dry-run", &sim2, KEY, Some(&dry_ns))
        .args(["--dry-run"])
        .start()
        .await;
    let dry_api: Api<MappedDomain> = Api::namespaced(s.client.clone(), &dry_ns);
    create(&dry_api, "d", spec("dry.example.com")).await;
    let md = wait_condition(&dry_api, "d", "Registered", "False", Some("DryRun")).await;
    assert_eq!(
        condition(&md, "Ready"),
        Some(("False".into(), "DryRun".into())),
        "Ready says why nothing was written"
    );
    assert!(sim2.aliases().await.is_empty());
    assert_eq!(adds(&sim2).await.len(), 0);
}

#[tokio::test]
async fn many_objects_share_one_list_call() {
    // pacing far above the batch size: what is measured is the controller, not the limiter
    let s = setup(
        "batch",
        &[],
        &[
            "--closte-write-rate",
            "100000",
            "--closte-max-in-flight",
            "16",
        ],
    )
    .await;
    let count = 200;
    let mut created_at = Vec::new();
    let started = Instant::now();
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let api = s.api.clone();
            tokio::spawn(async move {
                let at = std::time::SystemTime::now();
                create(&api, &format!("b{i}"), spec(&format!("b{i}.batch.example"))).await;
                (format!("b{i}.batch.example"), at)
            })
        })
        .collect();
    for task in tasks {
        created_at.push(task.await.unwrap());
    }
    eventually(60, "every alias on the simulator", || async {
        (s.sim.count("aliases").await == count as u64).then_some(())
    })
    .await;
    let converged = started.elapsed();
    let lists = s.sim.count("getdomains").await;
    assert!(lists <= 2, "{lists} list calls for {count} objects");
    // create -> add request latency, from the simulator's log
    let log = s.sim.requests().await;
    let mut latencies: Vec<u64> = created_at
        .iter()
        .filter_map(|(domain, at)| {
            let add = log
                .iter()
                .find(|r| r["endpoint"] == "adddomainalias" && r["domain"] == domain.as_str())?;
            let created_ms = at
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64;
            Some(add["atMs"].as_u64()?.saturating_sub(created_ms))
        })
        .collect();
    latencies.sort_unstable();
    assert_eq!(latencies.len(), count);
    let p = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "{count} objects: converged in {converged:?}; create->add p50 {} ms, p99 {} ms; {lists} getdomains call(s)",
        p(0.5),
        p(0.99)
    );
    // one object on a quiet controller: created -> add request
    let at = std::time::SystemTime::now();
    create(&s.api, "single", spec("single.batch.example")).await;
    let add_ms = eventually(10, "the single add", || async {
        let log = s.sim.requests().await;
        let add = log.iter().find(|r| r["domain"] == "single.batch.example")?;
        add["atMs"].as_u64()
    })
    .await;
    let created_ms = at
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    println!(
        "one object on a settled controller: create->add {} ms",
        add_ms.saturating_sub(created_ms)
    );
    let metrics = eventually(30, "every object to show in the metrics", || async {
        let text = s.operator.scrape().await;
        text.contains("closte_operator_mapped_domains{stage=\"checking-ssl-cert\"} 201")
            .then_some(text)
    })
    .await;
    assert!(
        metrics.contains(
            "closte_operator_closte_requests_total{endpoint=\"adddomainalias\",outcome=\"ok\"} 201"
        ),
        "{metrics}"
    );
    assert!(!metrics.contains(KEY));
    assert!(
        !s.operator.log_text().contains(KEY),
        "the key is in the controller log"
    );
}

#[tokio::test]
async fn only_the_leader_writes_and_a_follower_takes_over() {
    let s = setup("leader", &[], &["--lease-duration", "4s"]).await;
    let mut second = controller("leader-2", &s.sim, KEY, Some(&s.ns))
        .args(["--lease-duration", "4s"])
        .start()
        .await;
    let leader_of = |op: &Process| {
        let url = format!("{}/metrics", op.url());
        async move {
            let text = match reqwest::get(&url).await {
                Ok(r) => r.text().await.ok()?,
                Err(e) => {
                    eprintln!("{url}: {e}");
                    return None;
                }
            };
            Some(text.lines().any(|l| l == "closte_operator_leader 1"))
        }
    };
    let first_leads = eventually(30, "a leader", || async {
        let (a, b) = (leader_of(&s.operator).await?, leader_of(&second).await?);
        (a != b).then_some(a)
    })
    .await;
    create(&s.api, "one", spec("one.leader.example")).await;
    wait_condition(&s.api, "one", "Registered", "True", Some("Added")).await;
    // the follower never reconciles: it adds nothing and logs no Closte
    // request (the leader's log shows such lines are written)
    let (leader_log, follower_log) = if first_leads {
        (s.operator.log_text(), second.log_text())
    } else {
        (second.log_text(), s.operator.log_text())
    };
    assert!(
        leader_log.contains("closte request"),
        "the leader logged no Closte request: the check below would prove nothing"
    );
    assert!(
        !follower_log.contains("closte request"),
        "the follower talked to Closte"
    );
    // both are ready (the follower has nothing to sync)
    for op in [&s.operator, &second] {
        let ready = reqwest::get(format!("{}/readyz", op.url()))
            .await
            .unwrap()
            .status();
        assert_eq!(ready, 200);
    }

    // kill -9 the leader; the follower takes over within the lease duration
    let killed_at = Instant::now();
    let survivor = if first_leads {
        let mut first = s.operator;
        first.kill();
        second
    } else {
        second.kill();
        s.operator
    };
    create(&s.api, "two", spec("two.leader.example")).await;
    wait_condition(&s.api, "two", "Registered", "True", Some("Added")).await;
    println!(
        "leader killed: follower registered a new domain after {:?}",
        killed_at.elapsed()
    );
    // a takeover: the survivor became leader (once, having followed until
    // now) and added the new domain itself
    assert!(leader_of(&survivor).await.unwrap());
    let log = survivor.log_text();
    assert_eq!(log.matches("became leader").count(), 1, "{log}");
    assert!(
        log.lines()
            .any(|l| l.contains("name=two ") && l.contains("adding alias to Closte")),
        "the survivor did not add two.leader.example:\n{log}"
    );
    let mut added = adds(&s.sim).await;
    added.sort();
    assert_eq!(added, ["one.leader.example", "two.leader.example"]);
}

#[tokio::test]
async fn killed_mid_batch_the_final_set_matches_the_desired_set() {
    let s = setup("restart", &[], &["--closte-write-rate", "20"]).await;
    let mut operator = s.operator;
    let names: Vec<String> = (0..40).map(|i| format!("r{i}")).collect();
    create_all(&s.api, &names, "restart.example").await;
    eventually(30, "some adds", || async {
        (s.sim.count("aliases").await >= 10).then_some(())
    })
    .await;
    operator.kill(); // SIGKILL in the middle of the batch
    // delete a mix of registered and not yet registered objects while it is down
    for name in names.iter().step_by(3) {
        s.api.delete(name, &DeleteParams::default()).await.unwrap();
    }
    let _restarted = controller("restart-2", &s.sim, KEY, Some(&s.ns))
        .args(["--closte-write-rate", "20"])
        .start()
        .await;
    let desired: Vec<String> = names
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 != 0)
        .map(|(_, n)| format!("{n}.restart.example"))
        .collect();
    for name in names.iter().step_by(3) {
        wait_gone(&s.api, name).await;
    }
    let mut desired_sorted = desired.clone();
    desired_sorted.sort();
    let last_difference = std::sync::Mutex::new(String::new());
    eventually(60, "Closte's aliases to be the desired set", || async {
        let aliases = s.sim.aliases().await;
        if aliases == desired_sorted {
            return Some(());
        }
        let extra: Vec<_> = aliases
            .iter()
            .filter(|a| !desired_sorted.contains(a))
            .collect();
        let missing: Vec<_> = desired_sorted
            .iter()
            .filter(|d| !aliases.contains(d))
            .collect();
        let difference = format!("extra on Closte: {extra:?}; missing: {missing:?}");
        let mut last = last_difference.lock().unwrap();
        if *last != difference {
            eprintln!("{difference}");
            *last = difference;
        }
        None
    })
    .await;
    for name in names
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 != 0)
        .map(|(_, n)| n)
    {
        wait_condition(&s.api, name, "Registered", "True", None).await;
    }
    // no alias added twice after success (the restarted controller's list
    // shows what the killed one added), and every desired one added
    let mut added = adds(&s.sim).await;
    added.sort();
    let mut once = added.clone();
    once.dedup();
    assert_eq!(added, once, "an alias was added twice");
    let missing: Vec<_> = desired.iter().filter(|d| !added.contains(d)).collect();
    assert!(missing.is_empty(), "never added: {missing:?}");
}

#[tokio::test]
async fn reconcile_request_and_secrets_stay_out_of_sight() {
    let s = setup("request", &[], &[]).await;
    create(&s.api, "q", spec("request.example.com")).await;
    wait_condition(&s.api, "q", "Registered", "True", None).await;
    s.api
        .patch(
            "q",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"closte-operator.io/reconcile-requested-at": "2026-11-24T12:00:00Z"}}})),
        )
        .await
        .unwrap();
    eventually(20, "the request to be echoed", || async {
        let md = s.api.get("q").await.ok()?;
        (md.status?.last_handled_reconcile_at.as_deref() == Some("2026-11-24T12:00:00Z"))
            .then_some(())
    })
    .await;
    // the key is nowhere a user can read
    let events: Api<Event> = Api::namespaced(s.client.clone(), &s.ns);
    let events = eventually(10, "events to be published", || async {
        let all =
            serde_json::to_string(&events.list(&ListParams::default()).await.ok()?.items).unwrap();
        all.contains("request.example.com").then_some(all)
    })
    .await;
    let status = serde_json::to_string(&s.api.get("q").await.unwrap().status).unwrap();
    let metrics = s.operator.scrape().await;
    for (what, text) in [
        ("events", &events),
        ("status", &status),
        ("metrics", &metrics),
        ("log", &s.operator.log_text()),
    ] {
        assert!(!text.contains(KEY), "the API key is in the {what}");
    }
}

/// Closte applies an add but its answer is lost; the object is deleted before
/// the retry. The alias's presence is unknown after the lost answer, so the
/// deletion waits for a fresh list, finds the alias and removes it (a delete
/// whose answer is lost too is settled the same way).
#[tokio::test]
async fn a_lost_answer_never_leaves_an_alias_behind() {
    let s = setup(
        "lost",
        &["--failure-rate", "1", "--failures", "lost-answer"],
        &[],
    )
    .await;
    create(&s.api, "l", spec("lost.example.com")).await;
    let md = eventually(30, "the lost add to show in status", || async {
        let md = s.api.get("l").await.ok()?;
        (md.status.as_ref()?.failed_attempts? >= 1).then_some(md)
    })
    .await;
    assert_eq!(condition(&md, "Ready").unwrap().1, "ClosteUnavailable");
    assert_eq!(
        s.sim.aliases().await,
        ["lost.example.com"],
        "the add was applied"
    );
    s.api.delete("l", &DeleteParams::default()).await.unwrap();
    wait_gone(&s.api, "l").await;
    assert!(
        s.sim.aliases().await.is_empty(),
        "the alias whose add answer was lost is removed"
    );
    let log = s.sim.requests().await;
    let writes: Vec<&str> = log
        .iter()
        .filter(|r| r["endpoint"] != "getdomains")
        .map(|r| r["endpoint"].as_str().unwrap())
        .collect();
    assert_eq!(writes.first(), Some(&"adddomainalias"));
    assert_eq!(
        writes.iter().filter(|w| **w == "adddomainalias").count(),
        1,
        "no second add: the list showed the first one had landed: {writes:?}"
    );
    assert!(writes.contains(&"deletedomainalias"), "{writes:?}");
}

/// `--selector` splits the objects between controllers: the other's are not touched.
#[tokio::test]
async fn a_selector_limits_what_the_controller_serves() {
    let s = setup("selector", &[], &["--selector", "shard=a"]).await;
    let mut mine = closte_operator::api::MappedDomain::new("mine", spec("mine.selector.example"));
    mine.metadata.labels = Some([("shard".to_string(), "a".to_string())].into());
    s.api.create(&PostParams::default(), &mine).await.unwrap();
    create(&s.api, "theirs", spec("theirs.selector.example")).await;
    wait_condition(&s.api, "mine", "Registered", "True", Some("Added")).await;
    let theirs = s.api.get("theirs").await.unwrap();
    assert!(
        theirs.status.is_none(),
        "the other shard's object was reconciled"
    );
    assert!(theirs.finalizers().is_empty());
    assert_eq!(s.sim.aliases().await, ["mine.selector.example"]);
}

/// The controller's own key serves only the namespaces the platform allows:
/// by name (`--default-key-namespaces`) or by a namespace label matching
/// `--default-key-namespace-selector`, re-decided when the labels change.
/// Elsewhere an object without `credentialsRef` is Stalled without a single
/// Closte request; one with `credentialsRef` is served anywhere.
#[tokio::test]
async fn the_default_key_serves_only_allowed_namespaces() {
    const LABEL: &str = "closte-operator.io/default-key";
    let client = common::client().await;
    common::install_crd(&client).await;
    let listed = common::namespace(&client, "dk-listed").await;
    let labelled = common::namespace(&client, "dk-labelled").await;
    let later = common::namespace(&client, "dk-later").await;
    let denied = common::namespace(&client, "dk-denied").await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let set_label = |ns: String, value: Option<&'static str>| {
        let namespaces = namespaces.clone();
        async move {
            let patch = json!({"metadata": {"labels": {LABEL: value}}});
            namespaces
                .patch(&ns, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .unwrap();
        }
    };
    set_label(labelled.clone(), Some("allowed")).await;
    set_label(later.clone(), Some("not-yet")).await;
    // its own shard: the controller watches every namespace, and other
    // tests' objects are not its business
    let shard = format!("default-key-{}", std::process::id());
    let sim = Simulator::up_with_checks(
        "default-key",
        &["--api-key", KEY, "--api-key", "tenant-key"],
    )
    .await;
    let operator = controller("default-key-controller", &sim, KEY, None)
        .args([
            "--selector",
            &format!("test-shard={shard}"),
            "--leader-elect",
            "false",
            "--default-key-namespaces",
            &format!("{listed},unused-namespace"),
            "--default-key-namespace-selector",
            &format!("{LABEL}=allowed"),
        ])
        .start()
        .await;
    let api = |ns: &str| -> Api<MappedDomain> { Api::namespaced(client.clone(), ns) };
    let create_in = |ns: &str, name: &str, spec: MappedDomainSpec| {
        let api = api(ns);
        let mut md = MappedDomain::new(name, spec);
        md.metadata.labels = Some([("test-shard".to_string(), shard.clone())].into());
        async move { api.create(&PostParams::default(), &md).await.unwrap() }
    };

    // not allowed: Stalled with the reason, and Closte never hears of it
    create_in(&denied, "free-ride", spec("free-ride.default-key.example")).await;
    let md = wait_condition(
        &api(&denied),
        "free-ride",
        "Stalled",
        "True",
        Some("DefaultKeyNotAllowed"),
    )
    .await;
    let stalled = md.status.as_ref().unwrap();
    let message = &stalled
        .condition(closte_operator::api::conditions::ConditionType::Stalled)
        .unwrap()
        .message;
    assert!(
        message.contains(&denied) && message.contains("--default-key-namespace-selector"),
        "{message}"
    );
    assert_eq!(stalled.stage, Some(Stage::Failed));
    assert_eq!(condition(&md, "Registered").unwrap().0, "False");
    // the pass that decided has ended: whatever it would send, it has sent
    wait_pass_ended(&operator, &denied, "free-ride").await;
    assert_eq!(
        sim.requests().await,
        Vec::<serde_json::Value>::new(),
        "no Closte request at all: no add, no getdomains"
    );
    let reasons = eventually(10, "the DefaultKeyNotAllowed event", || async {
        let r = event_reasons(&client, &denied, "free-ride").await;
        r.contains(&"DefaultKeyNotAllowed".to_string()).then_some(r)
    })
    .await;
    assert_eq!(
        reasons
            .iter()
            .filter(|r| *r == "DefaultKeyNotAllowed")
            .count(),
        1,
        "one event, not one per pass: {reasons:?}"
    );

    // allowed by name, and by label
    create_in(&listed, "by-name", spec("by-name.default-key.example")).await;
    create_in(&labelled, "by-label", spec("by-label.default-key.example")).await;
    wait_condition(
        &api(&listed),
        "by-name",
        "Registered",
        "True",
        Some("Added"),
    )
    .await;
    wait_condition(
        &api(&labelled),
        "by-label",
        "Registered",
        "True",
        Some("Added"),
    )
    .await;

    // a label added later: the namespace's objects are decided again at once
    // (not at the next resync, minutes away)
    create_in(&later, "waits", spec("waits.default-key.example")).await;
    wait_condition(
        &api(&later),
        "waits",
        "Stalled",
        "True",
        Some("DefaultKeyNotAllowed"),
    )
    .await;
    set_label(later.clone(), Some("allowed")).await;
    let md = wait_condition(&api(&later), "waits", "Registered", "True", Some("Added")).await;
    assert_eq!(condition(&md, "Stalled").unwrap().0, "False");

    // its own key is not the platform's to give or take: served anywhere
    let own_key = MappedDomainSpec {
        credentials_ref: create_key_secret(&client, &denied, "closte", "tenant-key").await,
        ..spec("own-key.default-key.example")
    };
    create_in(&denied, "own-key", own_key).await;
    wait_condition(
        &api(&denied),
        "own-key",
        "Registered",
        "True",
        Some("Added"),
    )
    .await;

    // the label taken away: Stalled, and the alias it registered stays on Closte
    set_label(labelled.clone(), None).await;
    let md = wait_condition(
        &api(&labelled),
        "by-label",
        "Stalled",
        "True",
        Some("DefaultKeyNotAllowed"),
    )
    .await;
    assert_eq!(md.status.unwrap().ownership, Some(Ownership::Created));

    let log = sim.requests().await;
    let touching = |domain: &str| {
        log.iter()
            .filter(|r| r["domain"] == domain)
            .map(|r| r["endpoint"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert!(touching("free-ride.default-key.example").is_empty());
    assert_eq!(
        touching("by-label.default-key.example"),
        ["adddomainalias"],
        "nothing deleted"
    );
    let own = log
        .iter()
        .find(|r| r["domain"] == "own-key.default-key.example")
        .unwrap();
    assert_eq!(own["account"], 1, "added with the tenant's key");
    assert_eq!(
        sim.aliases().await,
        [
            "by-label.default-key.example",
            "by-name.default-key.example",
            "own-key.default-key.example",
            "waits.default-key.example",
        ]
    );
    assert_eq!(
        api(&denied)
            .get("free-ride")
            .await
            .unwrap()
            .status
            .unwrap()
            .failed_attempts,
        Some(1),
        "one pass decided, the rest waited"
    );
}
