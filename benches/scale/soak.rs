//! The fault soak and its chaos variant: continuous creates, deletes and spec
//! changes while the simulator fails 30 % of requests (every kind, including
//! writes applied whose answer is lost); in the chaos variant two
//! leader-elected controllers are killed with SIGKILL in turn and the API
//! server restarts once. Then Closte heals, and the run checks that the
//! aliases are exactly the desired set, that no alias someone else made was
//! touched, that no add was repeated without a fault to explain it, that
//! nothing panicked, and that the key appears in no output.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use closte_operator::api::MappedDomain;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::common::wait::eventually;
use crate::report::Row;
use crate::rig::{
    Cluster, KEY, Process, controller_process, create_all, domain, folder, simulator,
};

/// Aliases made behind the operator's back, which it must never delete.
const FOREIGN: usize = 20;
const RESYNC: Duration = Duration::from_secs(20);
const LEASE: Duration = Duration::from_secs(4);
const CLOSTE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the correctness checks after healing may wait, from what the
/// scenario sets: the two resync periods DESIGN allows, plus the longest
/// backoff an object may still be waiting out when Closte heals (the cap; a
/// recovery normally releases it at once), a takeover's lease and a write's
/// timeout. The time taken is reported as a figure; only a real hang fails.
fn heal_deadline() -> Duration {
    2 * RESYNC + closte_operator::plan::backoff::MAX + LEASE + CLOSTE_TIMEOUT
}

pub struct Soak {
    /// Domains alive at a time, roughly.
    pub domains: usize,
    pub churn: Duration,
    pub chaos: bool,
}

pub async fn run(soak: Soak) -> Vec<Row> {
    let scenario = if soak.chaos { "chaos" } else { "soak" };
    let size = format!("{}, {} s", soak.domains, soak.churn.as_secs());
    let dir = folder(scenario);
    let cluster = Cluster::up(&dir).await;
    let sim = simulator(
        &dir,
        1,
        &[
            "--latency",
            "20ms",
            "--issue-delay",
            "2s",
            "--hang",
            "3s",
            "--failure-rate",
            "0.3",
            "--failures",
            "500",
            "--failures",
            "502",
            "--failures",
            "429",
            "--failures",
            "hang",
            "--failures",
            "bad-json",
            "--failures",
            "lost-answer",
        ],
    );
    for i in 0..FOREIGN {
        sim.add_alias(&format!("f{i}.foreign.example"), 0).await;
    }
    let resync = format!("{}s", RESYNC.as_secs());
    let (lease, timeout) = (
        format!("{}s", LEASE.as_secs()),
        format!("{}s", CLOSTE_TIMEOUT.as_secs()),
    );
    let replica_args = || -> Vec<String> {
        let mut args: Vec<String> = [
            "--closte-write-rate",
            "100",
            "--closte-timeout",
            &timeout,
            "--resync-period",
            &resync,
        ]
        .map(String::from)
        .to_vec();
        if soak.chaos {
            args.extend(
                [
                    "--leader-elect=true",
                    "--lease-namespace",
                    "default",
                    "--lease-duration",
                    &lease,
                ]
                .map(String::from),
            );
        } else {
            args.push("--leader-elect=false".into());
        }
        args
    };
    let start_replica = |n: usize, generation: usize| {
        let args = replica_args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        controller_process(
            &cluster,
            &sim,
            dir.join(format!("controller-{n}-{generation}.log")),
            &args,
        )
    };
    let replicas = if soak.chaos { 2 } else { 1 };
    let mut controllers: Vec<Process> = (0..replicas).map(|n| start_replica(n, 0)).collect();
    let mut generations = vec![0; replicas];
    let mut logs = Vec::new();
    for c in &mut controllers {
        c.ready().await;
    }

    let api: Api<MappedDomain> = Api::namespaced(cluster.client.clone(), "default");
    let mut next = 0usize;
    let mut alive: Vec<String> = Vec::new();
    let mut new_object = |alive: &mut Vec<String>| {
        next += 1;
        let name = format!("c{next}");
        alive.push(name.clone());
        domain(&name, &format!("{name}.soak.example"))
    };
    let initial: Vec<MappedDomain> = (0..soak.domains).map(|_| new_object(&mut alive)).collect();
    create_all(&api, initial, 16).await;

    // churn: about 20 changes a second, a third each of create, delete and
    // spec change; in the chaos variant a replica dies every 5 s and the API
    // server restarts once, halfway
    let mut operations = 0u64;
    let mut kills = 0u64;
    let mut restarted = false;
    let started = Instant::now();
    let mut last_kill = Instant::now();
    while started.elapsed() < soak.churn {
        match fastrand::u8(0..3) {
            0 => {
                let md = new_object(&mut alive);
                // the API server may be restarting: a refused create is not made
                if api.create(&PostParams::default(), &md).await.is_err() {
                    alive.pop();
                }
            }
            1 if !alive.is_empty() => {
                let name = alive.swap_remove(fastrand::usize(..alive.len()));
                if api.delete(&name, &DeleteParams::default()).await.is_err() {
                    alive.push(name);
                }
            }
            _ if !alive.is_empty() => {
                let name = &alive[fastrand::usize(..alive.len())];
                let interval = if fastrand::bool() { "10s" } else { "15s" };
                let patch = json!({"spec": {"checkInterval": interval}});
                let _ = api
                    .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await;
            }
            _ => continue,
        }
        operations += 1;
        if soak.chaos && last_kill.elapsed() > Duration::from_secs(5) {
            let victim = leader(&controllers)
                .await
                .unwrap_or_else(|| fastrand::usize(..replicas));
            controllers[victim].kill();
            generations[victim] += 1;
            let fresh = start_replica(victim, generations[victim]);
            let dead = std::mem::replace(&mut controllers[victim], fresh);
            logs.push(dead.log.clone());
            drop(dead);
            kills += 1;
            last_kill = Instant::now();
        }
        if soak.chaos && !restarted && started.elapsed() > soak.churn / 2 {
            cluster.restart_apiserver();
            restarted = true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // heal, and wait for the exact desired set
    sim.set_faults(json!({"latencyMs": 20, "failureRate": 0.0, "hangMs": 3000}))
        .await;
    let healed = Instant::now();
    let desired = |list: &[MappedDomain]| -> BTreeSet<String> {
        list.iter()
            .filter(|md| md.metadata.deletion_timestamp.is_none())
            .map(|md| md.spec.domain.clone())
            .collect()
    };
    eventually(
        heal_deadline(),
        "Closte holds exactly the desired set",
        || async {
            let Ok(list) = api.list(&ListParams::default()).await else {
                return false;
            };
            let ours: BTreeSet<String> = sim
                .aliases()
                .await
                .into_iter()
                .filter(|a| a.ends_with(".soak.example"))
                .collect();
            list.items
                .iter()
                .all(|md| md.metadata.deletion_timestamp.is_none())
                && ours == desired(&list.items)
        },
    )
    .await;
    let exact_after = healed.elapsed().as_secs_f64();
    let wanted = api.list(&ListParams::default()).await.unwrap().items;
    eventually(heal_deadline(), "every object done", || async {
        api.list(&ListParams::default()).await.is_ok_and(|l| {
            l.items.iter().all(|md| {
                md.status
                    .as_ref()
                    .is_some_and(|s| s.stage == Some(closte_operator::api::Stage::Done))
            })
        })
    })
    .await;
    let done_after = healed.elapsed().as_secs_f64();

    let aliases: BTreeSet<String> = sim.aliases().await.into_iter().collect();
    let foreign_missing = (0..FOREIGN)
        .filter(|i| !aliases.contains(&format!("f{i}.foreign.example")))
        .count();
    let (duplicates, explained, faults) = repeated_adds(&sim.requests().await);
    for c in &controllers {
        logs.push(c.log.clone());
    }
    let mut panics = 0usize;
    let mut leaks = 0usize;
    for log in logs.iter().chain([&sim.stderr]) {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        panics += text.matches("panicked").count();
        leaks += text.matches(KEY).count();
    }
    drop(controllers);

    vec![
        Row::info(
            scenario,
            &size,
            "changes made (create/delete/spec)",
            operations as f64,
            "",
        ),
        Row::info(scenario, &size, "faults injected", faults as f64, ""),
        Row::info(
            scenario,
            &size,
            "controllers killed (SIGKILL)",
            kills as f64,
            "",
        ),
        Row::info(
            scenario,
            &size,
            "API server restarts",
            if restarted { 1.0 } else { 0.0 },
            "",
        ),
        Row::info(scenario, &size, "healed -> exact set", exact_after, "s")
            .at_most(2.0 * RESYNC.as_secs_f64()),
        Row::info(
            scenario,
            &size,
            "healed -> every object done",
            done_after,
            "s",
        ),
        Row::info(
            scenario,
            &size,
            "domains desired at the end",
            wanted.len() as f64,
            "",
        ),
        Row::info(
            scenario,
            &size,
            "foreign aliases deleted",
            foreign_missing as f64,
            "",
        )
        .exactly(0.0)
        .must(),
        Row::info(
            scenario,
            &size,
            "adds repeated, a fault explains",
            explained as f64,
            "",
        ),
        Row::info(
            scenario,
            &size,
            "adds repeated, no fault explains",
            (duplicates - explained) as f64,
            "",
        )
        .exactly(0.0)
        .must(),
        Row::info(scenario, &size, "panics", panics as f64, "")
            .exactly(0.0)
            .must(),
        Row::info(scenario, &size, "API key in any output", leaks as f64, "")
            .exactly(0.0)
            .must(),
    ]
}

/// The replica that holds the lease now, if one says so.
async fn leader(controllers: &[Process]) -> Option<usize> {
    for (i, c) in controllers.iter().enumerate() {
        if c.try_metric("closte_operator_leader").await == Some(1.0) {
            return Some(i);
        }
    }
    None
}

/// Adds that reached Closte for an alias already there (applied adds only:
/// answered normally, or applied with the answer lost), and how many of
/// those follow a write of that domain whose outcome the controller could not
/// know (answer lost, timeout, bad JSON, 5xx); plus the faults injected.
fn repeated_adds(log: &[serde_json::Value]) -> (usize, usize, usize) {
    let mut present: BTreeMap<&str, bool> = BTreeMap::new();
    let mut uncertain: BTreeMap<&str, bool> = BTreeMap::new();
    let (mut duplicates, mut explained, mut faults) = (0, 0, 0);
    for entry in log {
        let fault = entry["fault"].as_str();
        if fault.is_some() {
            faults += 1;
        }
        let Some(dom) = entry["domain"].as_str() else {
            continue;
        };
        let endpoint = entry["endpoint"].as_str().unwrap_or_default();
        if endpoint == "getdomains" {
            continue;
        }
        let applied = match fault {
            None => entry["status"] == 200,
            Some(kind) => kind == "lost-answer",
        };
        if fault.is_some() && fault != Some("429") {
            uncertain.insert(dom, true);
        }
        if !applied {
            continue;
        }
        let was_there = present.get(dom).copied().unwrap_or(false);
        if endpoint == "adddomainalias" {
            // an answered add of an alias already there says so, which the
            // controller treats as done: count it once as a repeat
            if was_there {
                duplicates += 1;
                if uncertain.get(dom).copied().unwrap_or(false) {
                    explained += 1;
                }
            }
            present.insert(dom, true);
        } else {
            present.insert(dom, false);
        }
        if fault.is_none() {
            uncertain.insert(dom, false);
        }
    }
    (duplicates, explained, faults)
}
