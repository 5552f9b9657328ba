//! Leader election fenced by time, against a real kube-apiserver that the
//! tests stop and start again, two leader-elected controllers and the
//! simulator. Each test has a control plane of its own (stopping the API
//! server would break any test sharing it).
//!
//! - A leader whose API server stops answering stops acting by its own clock
//!   at its renew deadline; no two replicas' passes ever overlap.
//! - A new leader settles from an alias list fetched after it took over: an
//!   add that succeeded just before the old leader lost its API server, or
//!   just before it was killed, is never repeated.
//! - A leader asked to stop waits for the answer of the write it sent, then
//!   hands the lease back: the other takes over at its next try.

mod common;

use std::path::{Path, PathBuf};

use closte_operator::api::MappedDomain;
use common::operator::{controller, wait_condition};
use common::process::Process;
use common::sim::Simulator;
use common::wait::eventually;
use common::{create, spec};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use serde_json::json;

const KEY: &str = "leader-key-41d7";
/// Renewed every 1.3 s; a leader stops 6.7 s after its last renewal was
/// sent: longer than a held answer (below) and the steps around it take on a
/// busy machine.
const LEASE: &str = "10s";
/// How long the simulator holds the answer of an applied write.
const HELD_ANSWER_MS: u64 = 2500;

/// A control plane of the test's own, a namespace, a simulator.
struct Rig {
    dir: PathBuf,
    kubeconfig: PathBuf,
    ns: String,
    api: Api<MappedDomain>,
    sim: Simulator,
}

impl Rig {
    async fn start(name: &str) -> Rig {
        let dir = common::repo_root()
            .join("target/controlplane-tests")
            .join(format!("{name}-{}", std::process::id()));
        let kubeconfig = common::start_control_plane_in(&dir);
        let client = common::client_for(&kubeconfig).await;
        common::install_crd(&client).await;
        let ns = common::namespace(&client, name).await;
        let api = Api::namespaced(client, &ns);
        let sim = Simulator::up_with_checks(name, &["--api-key", KEY]).await;
        Rig {
            dir,
            kubeconfig,
            ns,
            api,
            sim,
        }
    }

    /// A leader-elected controller for the namespace; a long resync, so the
    /// alias list it fetched stays in its cache for the whole test.
    async fn replica(&self, name: &str) -> Process {
        controller(name, &self.sim, KEY, Some(&self.ns))
            .kubeconfig(&self.kubeconfig)
            .args(["--lease-duration", LEASE, "--resync-period", "300s"])
            .start()
            .await
    }

    fn controlplane(&self, command: &str) {
        common::controlplane(&[command.as_ref(), self.dir.as_os_str()]);
    }

    /// Applied add requests for `domain`, answered or not.
    async fn adds_of(&self, domain: &str) -> usize {
        self.sim
            .requests()
            .await
            .iter()
            .filter(|r| r["endpoint"] == "adddomainalias" && r["domain"] == domain)
            .filter(|r| r["fault"].is_null() && r["status"] == 200)
            .count()
    }

    /// Creates MappedDomain `x` for `domain` and returns once Closte has
    /// applied its add while the answer is still on its way.
    async fn add_applied_answer_on_its_way(&self, domain: &str) {
        self.sim
            .set_faults(json!({ "writeAnswerDelayMs": HELD_ANSWER_MS }))
            .await;
        create(&self.api, "x", spec(domain)).await;
        self.until_on_closte(domain).await;
    }

    /// Waits until the alias is on the simulator (its add applied).
    async fn until_on_closte(&self, domain: &str) {
        eventually(30, &format!("{domain} applied on Closte"), || async {
            self.sim
                .aliases()
                .await
                .iter()
                .any(|a| a == domain)
                .then_some(())
        })
        .await;
    }
}

/// Whether the replica says it leads (`None`: it does not answer).
async fn leads(op: &Process) -> Option<bool> {
    let text = op.try_scrape(None).await?;
    Some(text.lines().any(|l| l == "closte_operator_leader 1"))
}

async fn until_leads(op: &Process, want: bool, what: &str) {
    eventually(60, what, || async {
        (leads(op).await == Some(want)).then_some(())
    })
    .await;
}

/// Waits until `text` is in the replica's log past its first `mark` bytes.
async fn until_logged(op: &Process, mark: usize, text: &str) {
    eventually(
        60,
        &format!("{text:?} in {}", op.log().display()),
        || async {
            op.log_text()
                .get(mark..)
                .is_some_and(|new| new.contains(text))
                .then_some(())
        },
    )
    .await;
}

/// When a replica led, and when its passes ended, from its log.
#[derive(Debug)]
struct Acts {
    /// [became leader, stopped leading) — open at the end while leading.
    terms: Vec<(Timestamp, Option<Timestamp>)>,
    passes: Vec<Timestamp>,
}

fn acts(log: &Path) -> Acts {
    let text = std::fs::read_to_string(log).unwrap();
    let mut acts = Acts {
        terms: Vec::new(),
        passes: Vec::new(),
    };
    for line in text.lines() {
        let Some(at) = line
            .split_whitespace()
            .next()
            .and_then(|t| t.parse::<Timestamp>().ok())
        else {
            continue;
        };
        if line.contains("became leader") {
            acts.terms.push((at, None));
        } else if line.contains("stopped leading") {
            let open = acts.terms.last_mut().expect("stopped before it led");
            assert!(open.1.is_none(), "stopped twice: {line}");
            open.1 = Some(at);
        } else if line.contains("pass ended") {
            acts.passes.push(at);
        }
    }
    acts
}

/// Every pass of each replica lies within one of its terms, and no two
/// replicas' terms overlap.
fn assert_never_both(a: &Process, b: &Process) {
    let (a, b) = (acts(a.log()), acts(b.log()));
    for (who, acts) in [("first", &a), ("second", &b)] {
        for pass in &acts.passes {
            assert!(
                acts.terms
                    .iter()
                    .any(|(from, to)| from <= pass && to.is_none_or(|to| *pass <= to)),
                "{who} replica ran a pass at {pass} while not leading: {acts:?}"
            );
        }
    }
    for (a_from, a_to) in &a.terms {
        for (b_from, b_to) in &b.terms {
            let apart = a_to.is_some_and(|a_to| a_to <= *b_from)
                || b_to.is_some_and(|b_to| b_to <= *a_from);
            assert!(
                apart,
                "both replicas led at once: [{a_from}, {a_to:?}) and [{b_from}, {b_to:?})"
            );
        }
    }
}

/// The first replica leads and the second follows, both ready.
async fn leader_and_follower(rig: &Rig, name: &str) -> (Process, Process) {
    let first = rig.replica(&format!("{name}-a")).await;
    until_leads(&first, true, "the first replica to lead").await;
    let second = rig.replica(&format!("{name}-b")).await;
    until_leads(&second, false, "the second replica to follow").await;
    (first, second)
}

#[tokio::test]
async fn a_leader_that_cannot_renew_stops_before_another_takes_over() {
    let rig = Rig::start("fence").await;
    let (first, second) = leader_and_follower(&rig, "fence").await;
    // objects re-checked every 10 s (their DNS never matches): passes go on
    // all the time, and fail while the API server is away
    for i in 0..5 {
        let mut s = spec(&format!("f{i}.fence.example"));
        s.check_interval = Some("10s".into());
        s.expected_targets = Some(vec!["192.0.2.1".into()]);
        create(&rig.api, &format!("f{i}"), s).await;
    }
    for i in 0..5 {
        wait_condition(&rig.api, &format!("f{i}"), "Registered", "True", None).await;
    }

    rig.controlplane("stop-apiserver");
    // no renewal can reach the API server: the leader stops by its own clock
    until_logged(
        &first,
        0,
        "the lease was not renewed within the renew deadline",
    )
    .await;
    assert_eq!(leads(&first).await, Some(false));
    rig.controlplane("start-apiserver");

    eventually(60, "a leader again", || async {
        (leads(&first).await? || leads(&second).await?).then_some(())
    })
    .await;
    create(&rig.api, "after", spec("after.fence.example")).await;
    wait_condition(&rig.api, "after", "Registered", "True", Some("Added")).await;

    assert_never_both(&first, &second);
    for i in 0..5 {
        assert_eq!(rig.adds_of(&format!("f{i}.fence.example")).await, 1);
    }
    assert_eq!(rig.adds_of("after.fence.example").await, 1);
}

/// The second replica leads first and fetches the alias list (kept for
/// 300 s), then the first takes over: the second now holds a list older
/// than anything the first adds.
async fn follower_with_an_old_list(rig: &Rig, name: &str) -> (Process, Process) {
    let (old, new) = (
        rig.replica(&format!("{name}-old")).await,
        format!("{name}-new"),
    );
    until_leads(&old, true, "the replica with the old list to lead").await;
    create(&rig.api, "early", spec(&format!("early.{name}.example"))).await;
    wait_condition(&rig.api, "early", "Registered", "True", Some("Added")).await;
    let new = rig.replica(&new).await;
    until_leads(&new, false, "the second replica to follow").await;
    // frozen past its lease: the other takes over; thawed, it follows
    old.signal("STOP");
    until_leads(&new, true, "the second replica to take over").await;
    old.signal("CONT");
    until_leads(&old, false, "the thawed replica to follow").await;
    (new, old)
}

#[tokio::test]
async fn an_add_answered_while_the_api_server_is_away_is_not_repeated() {
    let rig = Rig::start("away").await;
    let (leader, old_list) = follower_with_an_old_list(&rig, "away").await;
    // applied on Closte, its answer on the way: the API server goes away
    rig.add_applied_answer_on_its_way("x.away.example").await;
    let mark = leader.log_text().len();
    rig.controlplane("stop-apiserver");
    // the answer arrives; the status write after it fails
    until_logged(&leader, mark, "reconcile failed").await;
    // frozen, the leader can neither renew nor act; the API server comes
    // back and the replica with the old list takes over
    leader.signal("STOP");
    rig.sim.set_faults(json!({})).await;
    rig.controlplane("start-apiserver");
    until_leads(
        &old_list,
        true,
        "the replica with the old list to take over",
    )
    .await;
    leader.signal("CONT");
    let md = wait_condition(&rig.api, "x", "Registered", "True", None).await;

    assert_eq!(
        rig.adds_of("x.away.example").await,
        1,
        "the add was repeated; the new leader's log: {}",
        old_list.log().display()
    );
    assert_eq!(
        md.status.unwrap().ownership,
        Some(closte_operator::api::Ownership::Created),
        "the intent written before the add says whose it is"
    );
    until_leads(&leader, false, "the thawed replica to follow").await;
}

#[tokio::test]
async fn an_add_whose_leader_was_killed_before_its_status_is_not_repeated() {
    let rig = Rig::start("killed").await;
    let (mut leader, old_list) = follower_with_an_old_list(&rig, "killed").await;
    // applied on Closte, its answer on the way: the leader dies
    rig.add_applied_answer_on_its_way("x.killed.example").await;
    leader.kill();
    rig.sim.set_faults(json!({})).await;
    until_leads(
        &old_list,
        true,
        "the replica with the old list to take over",
    )
    .await;
    wait_condition(&rig.api, "x", "Registered", "True", None).await;

    assert_eq!(
        rig.adds_of("x.killed.example").await,
        1,
        "the add was repeated; the new leader's log: {}",
        old_list.log().display()
    );
}

/// The time of the first line of `log` that contains each of `texts`.
fn logged_at(log: &Path, texts: &[&str]) -> Timestamp {
    let log_text = std::fs::read_to_string(log).unwrap();
    log_text
        .lines()
        .find(|line| texts.iter().all(|text| line.contains(text)))
        .and_then(|line| line.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no line with {texts:?} in {}", log.display()))
}

#[tokio::test]
async fn a_leader_asked_to_stop_waits_for_its_write_then_hands_the_lease_back() {
    let rig = Rig::start("handover").await;
    let (mut leader, follower) = leader_and_follower(&rig, "handover").await;
    // applied on Closte, its answer on the way: the leader is asked to stop
    rig.add_applied_answer_on_its_way("x.handover.example")
        .await;
    let status = leader.stop();
    assert!(status.success(), "the leader exited with {status}");
    until_leads(&follower, true, "the follower to take over").await;
    wait_condition(&rig.api, "x", "Registered", "True", None).await;

    let answered = logged_at(leader.log(), &["closte request", "adddomainalias"]);
    let handed_back = logged_at(leader.log(), &["handed the leader lease back"]);
    assert!(
        answered <= handed_back,
        "the lease was handed back before the write's answer came; log: {}",
        leader.log().display()
    );
    // without the hand-back the follower waits a whole lease duration
    // from the last renewal it saw, which came before the hand-back
    let took_over = logged_at(follower.log(), &["became leader"]);
    let lease = std::time::Duration::from_secs(10);
    assert!(
        took_over.duration_since(handed_back).unsigned_abs() < lease,
        "the follower took over at {took_over}, {lease:?} after the hand-back at {handed_back}: \
         it waited for the lease to expire"
    );
    assert_eq!(
        rig.adds_of("x.handover.example").await,
        1,
        "the add was repeated; the new leader's log: {}",
        follower.log().display()
    );
    assert_never_both(&leader, &follower);
}
