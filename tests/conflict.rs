//! One domain claimed from two namespaces: the older MappedDomain wins, the
//! other is Stalled and never touches Closte, and takes over when the winner
//! goes. Its own test binary: its controller watches all namespaces.

mod common;

use closte_operator::api::{MappedDomain, Ownership};
use common::operator::{condition, controller, wait_condition, wait_gone};
use common::sim::Simulator;
use common::wait::eventually;
use common::{create, spec};
use kube::api::{Api, DeleteParams};

const KEY: &str = "conflict-key-2c44";

/// This machine's clock (the API server's too), in whole seconds since the epoch.
fn now_second() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn oldest_claim_wins_and_hands_over() {
    let client = common::client().await;
    common::install_crd(&client).await;
    let sim = Simulator::up_with_checks("conflict", &["--api-key", KEY]).await;
    let _operator = controller("conflict", &sim, KEY, None).start().await;
    let first_ns = common::namespace(&client, "tenant-a").await;
    let second_ns = common::namespace(&client, "tenant-b").await;
    let first: Api<MappedDomain> = Api::namespaced(client.clone(), &first_ns);
    let second: Api<MappedDomain> = Api::namespaced(client.clone(), &second_ns);
    let domain = "contested.example.com";

    let mine = create(&first, "mine", spec(domain)).await;
    wait_condition(&first, "mine", "Registered", "True", Some("Added")).await;
    // creationTimestamp has one-second resolution: the second object is
    // created once the clock has left the first one's second
    let created = mine.metadata.creation_timestamp.unwrap().0.as_second();
    eventually(
        5,
        "the clock to pass the first object's creation second",
        || async { (now_second() > created).then_some(()) },
    )
    .await;
    create(&second, "theirs", spec(domain)).await;
    let loser = wait_condition(&second, "theirs", "Stalled", "True", Some("DomainConflict")).await;
    let message = &loser
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == "Stalled")
        .unwrap()
        .message;
    assert!(message.contains(&format!("{first_ns}/mine")), "{message}");
    let writes =
        |log: Vec<serde_json::Value>| log.iter().filter(|r| r["endpoint"] != "getdomains").count();
    assert_eq!(
        writes(sim.requests().await),
        1,
        "the loser must not write to Closte"
    );

    // the winner goes (and, having created the alias, removes it); the loser takes over
    first
        .delete("mine", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&first, "mine").await;
    let winner = wait_condition(&second, "theirs", "Registered", "True", None).await;
    assert_eq!(condition(&winner, "Stalled").unwrap().0, "False");
    assert_eq!(winner.status.unwrap().ownership, Some(Ownership::Created));
    assert_eq!(sim.aliases().await, [domain]);
}
