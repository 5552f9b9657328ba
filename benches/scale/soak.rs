//! The fault soak and its chaos variant: continuous creates, deletes and spec
//! changes while the simulator fails 30 % of requests (every kind, including
//! writes applied whose answer is lost); in the chaos variant two
//! leader-elected controllers are killed with SIGKILL in turn and the API
//! server restarts once. Then Closte heals, and the run checks that the
//! aliases are exactly the desired set, that no alias someone else made was
//! touched, that no add was repeated without a fault to explain it, that
//! nothing panicked, and that the key appears in no output.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use closte_operator::api::MappedDomain;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::common::sim::Simulator;
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
/// recovery normally wakes it at once), a takeover's lease and a write's
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
    let mut run = SoakRun::start(soak).await;
    let churn = run.churn().await;
    let healing = run.heal().await;
    let audit = run.audit().await;
    run.rows(&churn, &healing, &audit)
}

/// One soak: its control plane, the failing simulator, the controllers, and
/// the objects it keeps alive.
struct SoakRun {
    soak: Soak,
    scenario: &'static str,
    size: String,
    dir: std::path::PathBuf,
    cluster: Cluster,
    sim: Simulator,
    api: Api<MappedDomain>,
    controllers: Vec<Process>,
    /// How many times each replica was started again.
    generations: Vec<usize>,
    /// The logs of replicas killed so far.
    logs: Vec<PathBuf>,
    /// Objects made so far, and those alive.
    made: usize,
    alive: Vec<String>,
}

/// What the churn did.
struct Churn {
    operations: u64,
    kills: u64,
    restarted: bool,
}

/// How long healing took, in seconds, and what was desired at the end.
struct Healing {
    exact_after: f64,
    done_after: f64,
    wanted: usize,
}

/// What the run checks once healed.
struct Audit {
    foreign_missing: usize,
    duplicates: usize,
    explained: usize,
    faults: usize,
    panics: usize,
    leaks: usize,
}

impl SoakRun {
    /// A control plane, the simulator failing 30 % of requests with aliases
    /// someone else made, the replicas ready, and the first objects.
    async fn start(soak: Soak) -> SoakRun {
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
        )
        .await;
        for i in 0..FOREIGN {
            sim.add_alias(&format!("f{i}.foreign.example"), 0).await;
        }
        let api: Api<MappedDomain> = Api::namespaced(cluster.client.clone(), "default");
        let replicas = if soak.chaos { 2 } else { 1 };
        let mut run = SoakRun {
            soak,
            scenario,
            size,
            dir,
            cluster,
            sim,
            api,
            controllers: Vec::new(),
            generations: vec![0; replicas],
            logs: Vec::new(),
            made: 0,
            alive: Vec::new(),
        };
        run.controllers = (0..replicas).map(|n| run.replica(n)).collect();
        for c in &run.controllers {
            c.ready().await;
        }
        let initial: Vec<MappedDomain> = (0..run.soak.domains).map(|_| run.new_object()).collect();
        create_all(&run.api, initial, 16).await;
        run
    }

    /// Replica `n` in its current generation, leader-elected in the chaos
    /// variant.
    fn replica(&self, n: usize) -> Process {
        let resync = format!("{}s", RESYNC.as_secs());
        let lease = format!("{}s", LEASE.as_secs());
        let timeout = format!("{}s", CLOSTE_TIMEOUT.as_secs());
        let mut args = vec![
            "--closte-write-rate",
            "100",
            "--closte-timeout",
            &timeout,
            "--resync-period",
            &resync,
        ];
        if self.soak.chaos {
            args.extend([
                "--leader-elect=true",
                "--lease-namespace",
                "default",
                "--lease-duration",
                &lease,
            ]);
        } else {
            args.push("--leader-elect=false");
        }
        let log = format!("controller-{n}-{}.log", self.generations[n]);
        controller_process(&self.cluster, &self.sim, self.dir.join(log), &args)
    }

    /// A new object, counted alive.
    fn new_object(&mut self) -> MappedDomain {
        self.made += 1;
        let name = format!("c{}", self.made);
        self.alive.push(name.clone());
        domain(&name, &format!("{name}.soak.example"))
    }

    /// About 20 changes a second, a third each of create, delete and spec
    /// change; in the chaos variant a replica dies every 5 s and the API
    /// server restarts once, halfway.
    async fn churn(&mut self) -> Churn {
        let mut churn = Churn {
            operations: 0,
            kills: 0,
            restarted: false,
        };
        let started = Instant::now();
        let mut last_kill = Instant::now();
        while started.elapsed() < self.soak.churn {
            if self.change_something().await {
                churn.operations += 1;
            }
            if self.soak.chaos && last_kill.elapsed() > Duration::from_secs(5) {
                self.kill_a_replica().await;
                churn.kills += 1;
                last_kill = Instant::now();
            }
            if self.soak.chaos && !churn.restarted && started.elapsed() > self.soak.churn / 2 {
                self.cluster.restart_apiserver();
                churn.restarted = true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await; // the churn's pace
        }
        churn
    }

    /// One create, delete or spec change; false when there was nothing to
    /// delete or change.
    async fn change_something(&mut self) -> bool {
        match fastrand::u8(0..3) {
            0 => {
                let md = self.new_object();
                // the API server may be restarting: a refused create is not made
                if self.api.create(&PostParams::default(), &md).await.is_err() {
                    self.alive.pop();
                }
            }
            1 if !self.alive.is_empty() => {
                let name = self.alive.swap_remove(fastrand::usize(..self.alive.len()));
                if self
                    .api
                    .delete(&name, &DeleteParams::default())
                    .await
                    .is_err()
                {
                    self.alive.push(name);
                }
            }
            _ if !self.alive.is_empty() => {
                let name = &self.alive[fastrand::usize(..self.alive.len())];
                let interval = if fastrand::bool() { "10s" } else { "15s" };
                let patch = json!({"spec": {"checkInterval": interval}});
                let _ = self
                    .api
                    .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await;
            }
            _ => return false,
        }
        true
    }

    /// SIGKILL for the leader (any replica when none says so), and a fresh
    /// one in its place.
    async fn kill_a_replica(&mut self) {
        let victim = leader(&self.controllers)
            .await
            .unwrap_or_else(|| fastrand::usize(..self.controllers.len()));
        self.controllers[victim].kill();
        self.generations[victim] += 1;
        let fresh = self.replica(victim);
        let dead = std::mem::replace(&mut self.controllers[victim], fresh);
        self.logs.push(dead.log().to_path_buf());
    }

    /// Closte heals; waits for the exact desired set, then every object done.
    async fn heal(&self) -> Healing {
        let (api, sim) = (&self.api, &self.sim);
        sim.set_faults(json!({"latencyMs": 20, "failureRate": 0.0, "hangMs": 3000}))
            .await;
        let healed = Instant::now();
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
                let desired: BTreeSet<String> = list
                    .items
                    .iter()
                    .filter(|md| md.metadata.deletion_timestamp.is_none())
                    .map(|md| md.spec.domain.clone())
                    .collect();
                // no object still being deleted, and the sets equal
                desired.len() == list.items.len() && ours == desired
            },
        )
        .await;
        let exact_after = healed.elapsed().as_secs_f64();
        let wanted = api.list(&ListParams::default()).await.unwrap().items.len();
        eventually(heal_deadline(), "every object done", || async {
            api.list(&ListParams::default()).await.is_ok_and(|l| {
                let done = l
                    .items
                    .iter()
                    .filter(|md| {
                        md.status
                            .as_ref()
                            .is_some_and(|s| s.stage == Some(closte_operator::api::Stage::Done))
                    })
                    .count();
                l.items.len() == wanted && done == wanted
            })
        })
        .await;
        Healing {
            exact_after,
            done_after: healed.elapsed().as_secs_f64(),
            wanted,
        }
    }

    /// Foreign aliases kept, adds not repeated without a fault to explain
    /// it, no panic, the key in no log; the controllers stopped.
    async fn audit(&mut self) -> Audit {
        let aliases: BTreeSet<String> = self.sim.aliases().await.into_iter().collect();
        let foreign_missing = (0..FOREIGN)
            .filter(|i| !aliases.contains(&format!("f{i}.foreign.example")))
            .count();
        let (duplicates, explained, faults) = repeated_adds(&self.sim.requests().await);
        for c in self.controllers.drain(..) {
            self.logs.push(c.log().to_path_buf());
        }
        let mut panics = 0usize;
        let mut leaks = 0usize;
        for log in self
            .logs
            .iter()
            .map(PathBuf::as_path)
            .chain([self.sim.log_path()])
        {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            panics += text.matches("panicked").count();
            leaks += text.matches(KEY).count();
        }
        Audit {
            foreign_missing,
            duplicates,
            explained,
            faults,
            panics,
            leaks,
        }
    }

    fn rows(&self, churn: &Churn, healing: &Healing, audit: &Audit) -> Vec<Row> {
        let (scenario, size) = (self.scenario, self.size.as_str());
        let info = |what: &str, value: f64, unit: &'static str| {
            Row::info(scenario, size, what, value, unit)
        };
        vec![
            info(
                "changes made (create/delete/spec)",
                churn.operations as f64,
                "",
            ),
            info("faults injected", audit.faults as f64, ""),
            info("controllers killed (SIGKILL)", churn.kills as f64, ""),
            info(
                "API server restarts",
                if churn.restarted { 1.0 } else { 0.0 },
                "",
            ),
            info("healed -> exact set", healing.exact_after, "s")
                .at_most(2.0 * RESYNC.as_secs_f64()),
            info("healed -> every object done", healing.done_after, "s"),
            info("domains desired at the end", healing.wanted as f64, ""),
            info("foreign aliases deleted", audit.foreign_missing as f64, "")
                .exactly(0.0)
                .must(),
            info(
                "adds repeated, a fault explains",
                audit.explained as f64,
                "",
            ),
            info(
                "adds repeated, no fault explains",
                (audit.duplicates - audit.explained) as f64,
                "",
            )
            .exactly(0.0)
            .must(),
            info("panics", audit.panics as f64, "").exactly(0.0).must(),
            info("API key in any output", audit.leaks as f64, "")
                .exactly(0.0)
                .must(),
        ]
    }
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
