//! The mu-plugin as a network's operators meet it from a shell and at size:
//! the DNS check interval set in WordPress reaching every MappedDomain,
//! `wp closte-operator` (status, sync, queue, uninstall), and a network of
//! 5,000 sites synced in time-budgeted batches while a page load does no
//! per-site work. Real WordPress on MariaDB, the real sidecar, a real
//! kube-apiserver. Also: the translation template is current.

mod common;

use std::process::Command;
use std::time::Instant;

use closte_operator::api::MappedDomain;
use common::setup::Namespace;
use common::sidecar::Sidecar;
use common::sim::scratch;
use common::wait::eventually;
use common::wordpress::{MariaDb, Site, SiteOptions, WordPress, cookies, require, run};
use kube::api::{Api, ListParams};
use serde_json::{Value, json};

const PLACEHOLDER: &str = "network-e2e-client-placeholder-5d2c";
const TOKEN: &str = "network-e2e-sidecar-token-8a61-2c";

/// Sites of the scale test; `CLOSTE_E2E_SITES` overrides (the issue asks for 5,000).
fn scale_sites() -> usize {
    std::env::var("CLOSTE_E2E_SITES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5_000)
}

#[test]
fn translation_template_is_current() {
    require("xgettext");
    let root = common::repo_root();
    let dir = scratch("pot");
    let fresh = dir.join("closte-operator.pot");
    let committed = std::fs::read_to_string(
        root.join("wordpress/closte-operator/languages/closte-operator.pot"),
    )
    .unwrap();
    run(Command::new("bash")
        .arg(root.join("scripts/pot.sh"))
        .arg(&fresh)
        .current_dir(root));
    let fresh = std::fs::read_to_string(&fresh).unwrap();
    assert!(
        committed == fresh,
        "wordpress/closte-operator/languages/closte-operator.pot is stale: run `make pot`"
    );
    assert!(
        fresh.contains("msgid_plural"),
        "no plural form in:\n{fresh}"
    );
    assert!(
        fresh.contains("#. translators:"),
        "no translators' comments"
    );
}

struct Network {
    api: Api<MappedDomain>,
    sidecar: Sidecar,
    wp: WordPress,
    _db: MariaDb,
}

impl Network {
    async fn start() -> Network {
        let Namespace { ns, api, .. } = Namespace::new("wp-network").await;
        let site = Site::start(
            "wp-network-e2e",
            &ns,
            SiteOptions {
                token: TOKEN,
                client_key: PLACEHOLDER,
                // no direct Closte calls here
                direct_closte_url: "http://127.0.0.1:9/api/client",
                direct_closte_key: "unused",
                sidecar_args: &[],
            },
        )
        .await;
        Network {
            api,
            sidecar: site.sidecar,
            wp: site.wp,
            _db: site.db,
        }
    }

    /// `wp closte-operator ARGS` (`assoc`: its --options): the printed lines,
    /// or the error it ended with.
    fn cli(&self, args: &[&str], assoc: Value) -> Result<Vec<String>, String> {
        let answer = self.wp.tool("cli", json!({"args": args, "assoc": assoc}));
        if let Some(error) = answer["error"].as_str() {
            return Err(error.to_string());
        }
        Ok(answer["lines"]
            .as_array()
            .unwrap_or_else(|| panic!("cli {args:?}: {answer}"))
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect())
    }

    fn create_site(&self, domain: &str) -> u64 {
        let answer = self
            .wp
            .tool("create-site", json!({"domain": domain, "title": domain}));
        answer["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("create {domain}: {answer}"))
    }

    async fn mds(&self) -> Vec<MappedDomain> {
        self.api.list(&ListParams::default()).await.unwrap().items
    }

    async fn md(&self, domain: &str) -> Option<MappedDomain> {
        self.mds()
            .await
            .into_iter()
            .find(|md| md.spec.domain == domain)
    }

    /// The checkInterval of `domain`'s MappedDomain once it exists.
    async fn interval_of(&self, domain: &str) -> Option<String> {
        eventually(30, &format!("a MappedDomain for {domain}"), || {
            self.md(domain)
        })
        .await
        .spec
        .check_interval
    }
}

#[tokio::test]
async fn a_network_from_the_shell_and_at_scale() {
    let mut net = Network::start().await;
    interval_set_in_wordpress(&net).await;
    queue_from_the_shell(&mut net).await;
    thousands_of_sites(&net).await;
    uninstall(&net);
}

/// The interval set on the screen, then Ultimate Multisite's, reaches every
/// MappedDomain: new ones (native and Closte door) and, through the sync,
/// the existing ones. Out of range changes nothing.
async fn interval_set_in_wordpress(net: &Network) {
    net.create_site("first.net.example");
    assert_eq!(
        net.interval_of("first.net.example").await,
        None,
        "nothing set in WordPress: the sidecar's default"
    );

    let refused = net.wp.tool("interval", json!({"seconds": 5}));
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("between 10 and 300"),
        "{refused}"
    );
    assert_eq!(
        refused["interval"]["source"], "sidecar-default",
        "nothing saved: {refused}"
    );

    let saved = net.wp.tool("interval", json!({"seconds": 45}));
    assert_eq!(saved["error"], "", "{saved}");
    assert_eq!(saved["interval"]["seconds"], 45, "{saved}");
    net.create_site("second.net.example");
    assert_eq!(
        net.interval_of("second.net.example").await.as_deref(),
        Some("45s")
    );
    let door = net.wp.tool(
        "closte",
        json!({"endpoint": "adddomainalias", "method": "POST",
               "body": {"apikey": PLACEHOLDER, "domain": "door.net.example", "wildcard": 0}}),
    );
    assert_eq!(door["json"]["success"], true, "{door}");
    assert_eq!(
        net.interval_of("door.net.example").await.as_deref(),
        Some("45s"),
        "a domain added through the Closte door carries it too"
    );

    let lines = net.cli(&["sync"], json!({})).unwrap();
    assert!(
        lines.iter().any(|l| l.contains("1 intervals set")),
        "the existing first.net.example patched once: {lines:?}"
    );
    assert_eq!(
        net.interval_of("first.net.example").await.as_deref(),
        Some("45s")
    );
    let again = net.cli(&["sync"], json!({})).unwrap();
    assert!(
        again
            .iter()
            .any(|l| l.contains("0 written, 0 intervals set")),
        "nothing left to patch: {again:?}"
    );

    // Ultimate Multisite active: its setting wins, the field is read-only.
    net.wp.tool("interval", json!({"um": "20"}));
    let um = net.wp.tool("interval", json!({"seconds": 60}));
    assert!(
        um["error"].as_str().unwrap().contains("Ultimate Multisite"),
        "{um}"
    );
    assert_eq!(um["interval"]["source"], "ultimate-multisite", "{um}");
    assert_eq!(um["interval"]["seconds"], 20, "{um}");
    net.cli(&["sync"], json!({})).unwrap();
    for domain in [
        "first.net.example",
        "second.net.example",
        "door.net.example",
    ] {
        assert_eq!(
            net.interval_of(domain).await.as_deref(),
            Some("20s"),
            "{domain}"
        );
    }
    net.wp.tool("interval", json!({"um": null}));
}

/// `wp closte-operator queue|status` while the sidecar is down and after.
async fn queue_from_the_shell(net: &mut Network) {
    net.sidecar.stop();
    net.create_site("queued-a.net.example");
    net.create_site("queued-b.net.example");
    let listed = net.cli(&["queue"], json!({})).unwrap();
    for domain in ["queued-a.net.example", "queued-b.net.example"] {
        assert!(
            listed
                .iter()
                .any(|l| l.starts_with("waiting") && l.contains(&format!("domain:{domain}"))),
            "{domain} not listed: {listed:?}"
        );
    }
    let status = net.cli(&["status"], json!({}));
    assert!(
        status
            .as_ref()
            .is_err_and(|e| e.contains("cannot list the domains") && e.contains("unreachable")),
        "{status:?}"
    );
    let discarded = net
        .cli(
            &["queue", "discard", "domain:queued-b.net.example"],
            json!({}),
        )
        .unwrap();
    assert_eq!(discarded, ["domain:queued-b.net.example: discarded"]);
    let missing = net.cli(&["queue", "retry", "domain:nowhere.net.example"], json!({}));
    assert!(
        missing.as_ref().is_err_and(|e| e.contains("not waiting")),
        "{missing:?}"
    );

    net.sidecar.resume().await;
    let retried = net.cli(&["queue", "retry"], json!({"all": true})).unwrap();
    assert_eq!(retried, ["domain:queued-a.net.example: done"]);
    assert!(net.md("queued-a.net.example").await.is_some());
    assert!(
        net.md("queued-b.net.example").await.is_none(),
        "a discarded change is never sent"
    );
    let status = net.cli(&["status"], json!({})).unwrap();
    assert!(
        status.iter().any(|l| l == "queue: 0 waiting, 0 rejected"),
        "{status:?}"
    );
    let count = net.mds().await.len();
    assert!(
        status
            .iter()
            .any(|l| l.starts_with(&format!("domains: {count} ("))
                && l.ends_with(&format!("{count} not ready"))),
        "no controller here, so none is ready: {status:?}"
    );
}

/// A network of thousands of sites (rows inserted directly): a page load
/// does no per-site work, the sync goes through all of them in batches that
/// each keep to the budget, and a sync with nothing to do is one listing.
async fn thousands_of_sites(net: &Network) {
    let count = scale_sites();
    let before = net.mds().await.len();
    let inserted = net.wp.tool(
        "insert-sites",
        json!({"from": 1, "count": count, "prefix": "s"}),
    );
    let sites = inserted["sites"].as_u64().unwrap() as usize;
    assert!(sites > count, "{inserted}");

    // A front-end page load of the main site at this size (after one that
    // warms PHP's caches and runs WP-Cron's spawn check).
    reqwest::get(format!("{}/", net.wp.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let queries_file = net.wp.docroot.join("wp-content/closte-e2e-queries.json");
    let _ = std::fs::remove_file(&queries_file);
    let started = Instant::now();
    let page = reqwest::Client::new()
        .get(format!("{}/", net.wp.url))
        .header("X-Closte-E2E-Queries", "1")
        .send()
        .await
        .unwrap();
    let status = page.status();
    // the whole answer: the query log is written at shutdown, after the body
    let body = page.text().await.unwrap();
    let page_ms = started.elapsed().as_millis();
    assert_eq!(status, 200, "{body}");
    let queries: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(&queries_file).unwrap()).unwrap();
    let per_site: Vec<&String> = queries
        .iter()
        .filter(|q| {
            let q = q.to_lowercase();
            q.contains("closte_operator")
                || q.contains("wu_domain_mappings")
                || (q.contains("from wp_blogs") && !q.contains("where") && !q.contains("limit"))
        })
        .collect();
    assert!(
        per_site.is_empty(),
        "a page load read the plugin's tables or every site: {per_site:?}"
    );

    let budget = 5;
    let started = Instant::now();
    let lines = net.cli(&["sync"], json!({"budget": budget})).unwrap();
    let sync_secs = started.elapsed().as_secs_f64();
    let batches: Vec<(u64, u64)> = lines
        .iter()
        .filter(|l| l.starts_with("batch "))
        .map(|l| {
            let written = l
                .split("; ")
                .nth(1)
                .and_then(|p| p.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{l}"));
            let secs = l
                .rsplit('(')
                .next()
                .and_then(|p| p.trim_end_matches(" s)").parse().ok())
                .unwrap_or_else(|| panic!("{l}"));
            (written, secs)
        })
        .collect();
    assert!(
        lines.last().is_some_and(|l| l.starts_with("sync complete")),
        "{lines:?}"
    );
    // every new site written once, plus any site the earlier steps left unsynced
    let written = batches.last().unwrap().0 as usize;
    assert!(
        (count..count + 3).contains(&written),
        "{count} new sites, {written} written: {lines:?}"
    );
    // Stopping at the budget is the unit tests' (a fake clock); here: a
    // network this size is split (thousands of API writes never fit in 5 s),
    // and each batch's own time is reported, not bounded.
    if count >= 1_000 {
        assert!(batches.len() >= 2, "one batch for {count} sites: {lines:?}");
    }
    let longest = batches.iter().map(|(_, secs)| *secs).max().unwrap();
    let scaled = eventually(60, "a MappedDomain per new site", || async {
        let scaled: Vec<MappedDomain> = net
            .mds()
            .await
            .into_iter()
            .filter(|md| md.spec.domain.ends_with(".scale.example"))
            .collect();
        (scaled.len() == count).then_some(scaled)
    })
    .await;
    assert!(
        scaled.iter().all(|md| md.spec.site_id.is_some()),
        "every site's domain carries its site id"
    );
    assert_eq!(net.mds().await.len(), before + written);

    let started = Instant::now();
    let idle = net.cli(&["sync"], json!({"budget": budget})).unwrap();
    let idle_secs = started.elapsed().as_secs_f64();
    assert!(
        idle.first().is_some_and(
            |l| l.starts_with("batch 1:") && l.contains("; 0 written, 0 intervals set")
        ),
        "{idle:?}"
    );
    // The screen at this size: a page deep in the list, and the "not ready"
    // filter (no controller runs here, so every domain is not ready).
    let screen = "/wp-admin/network/settings.php?page=closte-operator";
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = http.get(net.wp.login_url(screen)).send().await.unwrap();
    assert_eq!(login.status(), 302);
    let cookie = cookies(&login);
    let last_page = (before + written).div_ceil(50);
    let mut screen_ms = Vec::new();
    for query in [
        format!("&paged={last_page}"),
        "&filter=not-ready&paged=2".to_string(),
    ] {
        let started = Instant::now();
        let html = http
            .get(format!("{}{screen}{query}", net.wp.url))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        screen_ms.push(started.elapsed().as_millis());
        let rows = html.matches("class=\"closte-operator-domain").count();
        let expected = if query.contains("not-ready") {
            50
        } else {
            (before + written) - (last_page - 1) * 50
        };
        assert_eq!(rows, expected, "rows of {query}");
        assert!(
            html.contains(&format!("{} domains", before + written))
                || html.contains(&format!("{} domains", thousands(before + written))),
            "the count of all domains on {query}"
        );
    }
    println!(
        "network of {sites} sites: front page {page_ms} ms with {} queries, none per site; \
         sync of {count} new sites in {} batches (budget {budget} s, longest {longest} s): {sync_secs:.1} s \
         ({:.1} ms a site); a sync with nothing to do: {idle_secs:.2} s; \
         the screen's last page {} ms, \"not ready\" page 2 {} ms",
        queries.len(),
        batches.len(),
        sync_secs * 1000.0 / count as f64,
        screen_ms[0],
        screen_ms[1]
    );
}

/// `n` as WordPress's number_format_i18n writes it in English (5,005).
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `wp closte-operator uninstall` asks first, then removes the events, the
/// network options and the queue table; MappedDomains stay.
fn uninstall(net: &Network) {
    let asked = net.cli(&["uninstall"], json!({}));
    assert!(
        asked.as_ref().is_err_and(|e| e.contains("--yes")),
        "{asked:?}"
    );
    let before = net.wp.tool("options", json!({}));
    assert!(
        !before["options"].as_array().unwrap().is_empty(),
        "{before}"
    );
    let cron = net.wp.tool("cron", json!({}));
    assert!(
        cron["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["hook"] == "closte_operator_sync"),
        "{cron}"
    );
    let done = net.cli(&["uninstall"], json!({"yes": true})).unwrap();
    assert!(
        done[0].starts_with("removed ") && !done[0].starts_with("removed 0 scheduled events"),
        "{done:?}"
    );
    let after = net.wp.tool("options", json!({}));
    assert_eq!(after["options"], json!([]), "{after}");
    assert_eq!(after["table"], false, "{after}");
}
