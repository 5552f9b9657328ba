//! Schemathesis against the sidecar's native door as `docs/sidecar-openapi.yaml`
//! describes it: the sidecar as a process on a real kube-apiserver, every
//! check schemathesis has (status codes and headers documented, bodies
//! conforming to the response schemas, schema-violating input refused,
//! schema-valid input accepted, no auth ignored, resources there after a
//! create and gone after a delete).
//!
//! What no check of schemathesis can see is what an answer wrote. A recorder
//! does: schemathesis (one worker) calls it before and after every request
//! (hooks in `tests/schemathesis/hooks.py`); it snapshots the namespace's
//! MappedDomains each time and judges the pair: a refusal (4xx, 5xx) or a
//! read changes nothing; a write changes only the objects of its own
//! domains, and gives them the checkInterval it asked for (every object
//! here is the sidecar's own); nothing changes between two requests. A problem fails that
//! request in schemathesis's report too (a custom check), with the curl that
//! reproduces it.
//!
//! `SIDECAR_SCHEMA_EXAMPLES` (default 25 per operation) and
//! `SIDECAR_SCHEMA_SEED` (default 1) size and vary the run. schemathesis
//! comes from `tests/tools/schemathesis.sh install` (`make schemathesis`,
//! `bash .ci/run`); without it this test fails and says so.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use closte_operator::api::MappedDomain;
use closte_operator::domain;
use common::setup::Namespace;
use common::sidecar::Sidecar;
use common::sim::scratch;
use kube::Api;
use kube::api::ListParams;
use serde::Deserialize;
use serde_json::{Value, json};

const TOKEN: &str = "schema-token-0b6e-0123456789abcdef";

/// One MappedDomain as the recorder compares them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Object {
    resource_version: String,
    domain: String,
    site: Option<i64>,
    check_interval: Option<String>,
}

/// The namespace's MappedDomains by name.
type Snapshot = BTreeMap<String, Object>;

/// What the hook says about one request and its answer.
#[derive(Debug, Deserialize)]
struct Call {
    method: String,
    /// The operation's path template, as in the description.
    template: String,
    /// The path as sent, percent-encoded.
    path: String,
    status: u16,
    /// The body's `domains`, for a site's set.
    domains: Option<Value>,
    /// The body's `checkInterval`.
    #[serde(rename = "checkInterval")]
    check_interval: Option<Value>,
}

impl Call {
    /// The path's last but `back` segment, percent-decoded as the sidecar's router does.
    fn segment(&self, back: usize) -> Option<String> {
        let raw = self.path.rsplit('/').nth(back)?;
        let mut bytes = Vec::new();
        let mut rest = raw.bytes();
        while let Some(b) = rest.next() {
            if b == b'%' {
                let hex = [rest.next()?, rest.next()?];
                bytes.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
            } else {
                bytes.push(b);
            }
        }
        String::from_utf8(bytes).ok()
    }
}

#[derive(Default)]
struct Log {
    before: Option<Snapshot>,
    last: Option<Snapshot>,
    calls: Vec<(String, u16)>,
    /// Successful writes that asked for a checkInterval.
    interval_writes: usize,
    problems: Vec<String>,
}

struct Recorder {
    api: Api<MappedDomain>,
    openapi: Value,
    log: Mutex<Log>,
}

async fn snapshot(api: &Api<MappedDomain>) -> Snapshot {
    api.list(&ListParams::default())
        .await
        .expect("list MappedDomains")
        .items
        .into_iter()
        .map(|md| {
            let object = Object {
                resource_version: md.metadata.resource_version.clone().unwrap_or_default(),
                domain: md.spec.domain.clone(),
                site: md.spec.site_id,
                check_interval: md.spec.check_interval.clone(),
            };
            (md.metadata.name.unwrap_or_default(), object)
        })
        .collect()
}

async fn before(State(recorder): State<Arc<Recorder>>) -> Json<Value> {
    let now = snapshot(&recorder.api).await;
    let mut log = recorder.log.lock().unwrap();
    if let Some(last) = &log.last
        && *last != now
    {
        let problem = format!(
            "MappedDomains changed between two requests: {:?}",
            changed(last, &now)
        );
        log.problems.push(problem);
    }
    log.before = Some(now);
    Json(json!({}))
}

async fn after(State(recorder): State<Arc<Recorder>>, Json(call): Json<Call>) -> Json<Value> {
    let now = snapshot(&recorder.api).await;
    let mut log = recorder.log.lock().unwrap();
    let before = log.before.take().expect("the hook calls /before first");
    let problem = judge(&recorder.openapi, &call, &before, &now).map(|p| {
        format!(
            "{} {} answered {}: {p}",
            call.method, call.path, call.status
        )
    });
    log.calls
        .push((format!("{} {}", call.method, call.template), call.status));
    if call.method == "PUT" && call.status < 300 && call.check_interval.is_some() {
        log.interval_writes += 1;
    }
    log.problems.extend(problem.clone());
    log.last = Some(now);
    Json(json!({ "problem": problem }))
}

/// The names whose object differs between two snapshots.
fn changed(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let names: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    names
        .into_iter()
        .filter(|name| before.get(*name) != after.get(*name))
        .cloned()
        .collect()
}

/// The domain a raw name stands for, as the sidecar reads it.
fn normalised(raw: &str) -> Option<String> {
    domain::normalize(raw).ok().map(|d| d.as_str().to_owned())
}

/// What is wrong with one exchange, if anything.
fn judge(openapi: &Value, call: &Call, before: &Snapshot, after: &Snapshot) -> Option<String> {
    let operation = &openapi["paths"][&call.template][call.method.to_ascii_lowercase()];
    if operation.is_null() {
        if call.status != 405 {
            return Some("a method the path does not take must be 405".into());
        }
    } else if operation["responses"][call.status.to_string()].is_null() {
        return Some("a status the description does not list".into());
    }
    let changed = changed(before, after);
    let read = call.method == "GET" || call.method == "HEAD";
    if call.status >= 300 || read {
        return (!changed.is_empty()).then(|| format!("nothing may change, and {changed:?} did"));
    }
    // a write that succeeded: only its own domains' objects may change
    let domain_of = |name: &String| {
        before
            .get(name)
            .or_else(|| after.get(name))
            .map(|o| o.domain.clone())
    };
    let with_domain = |snapshot: &Snapshot, d: &str| snapshot.values().any(|o| o.domain == d);
    // a write that asked for an interval: each of its domains has it after it
    let asked = call.check_interval.as_ref().and_then(Value::as_str);
    let lacks_interval = |d: &str| {
        asked.is_some_and(|asked| {
            !after
                .values()
                .any(|o| o.domain == d && o.check_interval.as_deref() == Some(asked))
        })
    };
    match (call.method.as_str(), call.template.as_str()) {
        ("PUT", "/v1/domains/{domain}") | ("DELETE", "/v1/domains/{domain}") => {
            let Some(d) = call.segment(0).as_deref().and_then(normalised) else {
                return Some("success for a domain that is not one".into());
            };
            if let Some(other) = changed.iter().find(|n| domain_of(n).as_deref() != Some(&d)) {
                return Some(format!("{other} changed, which is not {d}'s"));
            }
            let there = with_domain(after, &d);
            if call.method == "PUT" && !there {
                return Some(format!("no MappedDomain for {d} after it"));
            }
            if call.method == "DELETE" && there {
                return Some(format!("{d} still has a MappedDomain after it"));
            }
            if call.status == 201 && with_domain(before, &d) {
                return Some(format!("201 Created, yet {d} was there before"));
            }
            if call.method == "PUT" && lacks_interval(&d) {
                return Some(format!("{d} has not the checkInterval {asked:?} after it"));
            }
        }
        ("PUT", "/v1/sites/{siteId}/domains") => {
            let Some(site) = call.segment(1).and_then(|s| s.parse::<i64>().ok()) else {
                return Some("success for a site id that is not one".into());
            };
            let listed: Vec<String> = call
                .domains
                .as_ref()
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|i| normalised(i.as_str()?))
                        .collect()
                })
                .unwrap_or_default();
            let its_own = |name: &String| {
                domain_of(name).is_some_and(|d| listed.contains(&d))
                    || before.get(name).is_some_and(|o| o.site == Some(site))
            };
            if let Some(other) = changed.iter().find(|n| !its_own(n)) {
                return Some(format!(
                    "{other} changed, which is neither listed nor site {site}'s"
                ));
            }
            for d in &listed {
                if !after
                    .values()
                    .any(|o| &o.domain == d && o.site == Some(site))
                {
                    return Some(format!("{d} is not site {site}'s after it"));
                }
                if lacks_interval(d) {
                    return Some(format!("{d} has not the checkInterval {asked:?} after it"));
                }
            }
            if let Some(stale) = after
                .values()
                .find(|o| o.site == Some(site) && !listed.contains(&o.domain))
            {
                return Some(format!("{} is still site {site}'s after it", stale.domain));
            }
        }
        _ => return Some("a success on an operation that writes nothing known".into()),
    }
    None
}

/// The schemathesis program, or a failed test saying how to install it.
fn schemathesis() -> PathBuf {
    let script = common::repo_root().join("tests/tools/schemathesis.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg("path")
        .output()
        .expect("run tests/tools/schemathesis.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let program = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    assert!(
        program.is_file(),
        "schemathesis is not installed ({} is missing). Install it (PyPI, a cached virtualenv) with\n  \
         bash tests/tools/schemathesis.sh install      (or: make schemathesis)\n\
         `bash .ci/run` and `make test` install it.",
        program.display()
    );
    program
}

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).map_or(default, |v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_is_documented_and_refusals_write_nothing() {
    let program = schemathesis();
    let examples = setting("SIDECAR_SCHEMA_EXAMPLES", 25);
    let seed = setting("SIDECAR_SCHEMA_SEED", 1);
    let ns = Namespace::new("schema").await;
    let sidecar = Sidecar::start("schema", common::kubeconfig(), &ns.ns, TOKEN, &[]).await;
    let description = common::repo_root().join("docs/sidecar-openapi.yaml");
    let openapi: Value =
        serde_yaml::from_str(&std::fs::read_to_string(&description).unwrap()).unwrap();

    let recorder = Arc::new(Recorder {
        api: ns.api.clone(),
        openapi,
        log: Mutex::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let recorder_url = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/before", post(before))
        .route("/after", post(after))
        .with_state(recorder.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let requests_before = sidecar.requests("native").await;

    let dir = scratch("schemathesis");
    let started = Instant::now();
    let out = tokio::process::Command::new(&program)
        .arg("run")
        .arg(&description)
        .args(["--url", &sidecar.url])
        .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
        .args(["--checks", "all"])
        .args(["--max-examples", &examples.to_string()])
        .args(["--seed", &seed.to_string()])
        .args(["--workers", "1"])
        .args(["--report", "junit", "--report-dir"])
        .arg(&dir)
        .current_dir(&dir)
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("PYTHONPATH", common::repo_root().join("tests/schemathesis"))
        .env("SIDECAR_SCHEMA_RECORDER", &recorder_url)
        .env("NO_COLOR", "1")
        .output()
        .await
        .expect("run schemathesis");
    let took = started.elapsed();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let log = std::mem::take(&mut *recorder.log.lock().unwrap());
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    for (_, status) in &log.calls {
        *by_status.entry(*status).or_default() += 1;
    }
    println!(
        "schemathesis: {} requests in {took:.1?} (seed {seed}, {examples} examples per operation); by status {by_status:?}; {} successful writes with a checkInterval",
        log.calls.len(),
        log.interval_writes
    );

    assert!(
        log.problems.is_empty(),
        "what the answers wrote:\n{}\n--- schemathesis ---\n{report}",
        log.problems.join("\n")
    );
    assert!(
        out.status.success(),
        "schemathesis found failures (seed {seed}):\n{report}\n--- sidecar log ---\n{}",
        sidecar.log_text()
    );
    // Every request went through the recorder but those of the check
    // ignored_auth, which goes around the hooks and must get a 401 (and
    // which the recorder would see as a change between two requests, or
    // after the last one, had it written anything).
    assert_eq!(
        snapshot(&ns.api).await,
        log.last.clone().unwrap(),
        "MappedDomains changed after the last request"
    );
    let mut counted = sidecar.requests("native").await;
    for (status, before) in requests_before {
        *counted.entry(status).or_default() -= before;
    }
    let unseen: BTreeMap<u16, u64> = counted
        .iter()
        .map(|(status, n)| {
            (
                *status,
                n.saturating_sub(by_status.get(status).copied().unwrap_or(0) as u64),
            )
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    // only refused tokens never reach the recorder
    let unexplained: Vec<&u16> = unseen.keys().filter(|status| **status != 401).collect();
    assert!(
        unexplained.is_empty(),
        "the sidecar answered requests the recorder never saw, by status: {unseen:?}"
    );
    // and the run meant something: writes done and writes refused, each operation reached
    let writes = |ok: bool| {
        log.calls
            .iter()
            .filter(|(op, status)| !op.starts_with("GET") && (*status < 300) == ok)
            .count()
    };
    assert!(log.calls.len() >= 100, "only {} requests", log.calls.len());
    assert!(
        writes(true) >= 10,
        "only {} successful writes",
        writes(true)
    );
    assert!(writes(false) >= 10, "only {} refused writes", writes(false));
    assert!(
        log.interval_writes >= 1,
        "no successful write asked for a checkInterval"
    );
    for operation in [
        "GET /v1/domains",
        "GET /v1/domains/{domain}",
        "PUT /v1/domains/{domain}",
        "DELETE /v1/domains/{domain}",
        "PUT /v1/sites/{siteId}/domains",
    ] {
        assert!(
            log.calls
                .iter()
                .any(|(op, status)| op == operation && *status < 300),
            "{operation} never succeeded"
        );
    }
}
