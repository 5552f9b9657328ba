//! The benchmark harness (`make bench`): every scenario against a real
//! control plane, the simulator and the binary under test, one table of
//! figures next to their targets, and a JSON file of the same rows.
//!
//!   cargo bench --bench scale -- [SCENARIO[=SIZE] ...] [--churn SECS] [--json PATH]
//!
//! Scenarios and their default sizes: lifecycle=2000 (converge, then
//! deletion), memory=1000,10000 (and steady state at a 60 s resync),
//! steady=10000 (at the default 300 s resync), latency=1000, population=10000,
//! sidecar=1000, accounts=200x10, soak=1000, chaos=1000; none named: all.
//! Under `cargo test` (no `--bench` argument) it runs every scenario small and
//! fast, as CI's variant: the correctness checks hold at any size, the speed
//! targets are shown but only judged on a release build at full size.

#[path = "../../tests/common/mod.rs"]
mod common;
mod report;
mod rig;
mod scenarios;
mod soak;

use std::path::PathBuf;
use std::time::Duration;

use report::{Row, Verdict};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `cargo bench`: full sizes, release build.
    Full,
    /// `cargo test`: small sizes, CI's variant.
    Quick,
}

#[derive(Debug)]
struct Options {
    mode: Mode,
    scenarios: Vec<(String, Option<String>)>,
    churn: Option<u64>,
    json: Option<PathBuf>,
}

const SCENARIOS: [&str; 10] = [
    "lifecycle",
    "memory",
    "steady",
    "proof",
    "latency",
    "population",
    "sidecar",
    "accounts",
    "soak",
    "chaos",
];

fn options() -> Result<Options, String> {
    let mut options = Options {
        mode: Mode::Quick,
        scenarios: Vec::new(),
        churn: None,
        json: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bench" => options.mode = Mode::Full,
            "--quick" => options.mode = Mode::Quick,
            "--churn" => {
                let secs = args.next().ok_or("--churn needs seconds")?;
                options.churn = Some(secs.parse().map_err(|_| format!("--churn {secs}"))?);
            }
            "--json" => options.json = Some(args.next().ok_or("--json needs a path")?.into()),
            "-h" | "--help" => return Err(String::new()),
            flag if flag.starts_with('-') => {
                eprintln!("ignoring {flag} (not a flag of this harness)");
            }
            scenario => {
                let (name, size) = match scenario.split_once('=') {
                    Some((name, size)) => (name, Some(size.to_owned())),
                    None => (scenario, None),
                };
                if !SCENARIOS.contains(&name) {
                    return Err(format!("unknown scenario {name}"));
                }
                options.scenarios.push((name.to_owned(), size));
            }
        }
    }
    if options.scenarios.is_empty() {
        options.scenarios = SCENARIOS.iter().map(|s| (s.to_string(), None)).collect();
    }
    Ok(options)
}

fn number(size: &str) -> Result<usize, String> {
    size.parse().map_err(|_| format!("not a size: {size}"))
}

/// One scenario at its size, in its own task so that a failed one is
/// reported as such and the others still run.
async fn scenario(name: &str, size: Option<&str>, options: &Options) -> Result<Vec<Row>, String> {
    let full = options.mode == Mode::Full;
    let pick = |full_size: &str, quick: &str| {
        size.map(str::to_owned)
            .unwrap_or_else(|| if full { full_size } else { quick }.to_owned())
    };
    let churn = Duration::from_secs(options.churn.unwrap_or(if full { 300 } else { 20 }));
    let task = match name {
        "lifecycle" => tokio::spawn(scenarios::lifecycle(number(&pick("2000", "60"))?)),
        "memory" => {
            let sizes: Vec<usize> = pick("1000,10000", "100")
                .split(',')
                .map(number)
                .collect::<Result<_, _>>()?;
            let resync = Duration::from_secs(if full { 60 } else { 10 });
            tokio::spawn(async move {
                let mut rows = Vec::new();
                for n in sizes {
                    rows.extend(scenarios::memory_and_steady(n, resync).await);
                }
                rows
            })
        }
        // the steady state at the default resync (memory's is 60 s)
        "steady" => {
            let n = number(&pick("10000", "100"))?;
            let resync = if full {
                closte_operator::plan::Settings::RESYNC
            } else {
                Duration::from_secs(10)
            };
            tokio::spawn(scenarios::memory_and_steady(n, resync))
        }
        "proof" => {
            let resync = Duration::from_secs(if full { 60 } else { 10 });
            let recheck = Duration::from_secs(if full { 30 } else { 5 });
            tokio::spawn(scenarios::proof(
                number(&pick("1000", "20"))?,
                resync,
                recheck,
            ))
        }
        "latency" => {
            let shapes: &'static [(usize, usize)] = if full {
                &[(10, 10), (10, 100)]
            } else {
                &[(2, 5), (2, 15)]
            };
            tokio::spawn(scenarios::latency(number(&pick("1000", "30"))?, shapes))
        }
        "population" => {
            let (population, n, shapes): (_, _, &'static [(usize, usize)]) = if full {
                (10_000, 1000, &[(10, 100)])
            } else {
                (200, 20, &[(2, 15)])
            };
            let population = size.map(number).transpose()?.unwrap_or(population);
            tokio::spawn(scenarios::population(population, n, shapes))
        }
        "sidecar" => {
            let settle = Duration::from_secs(if full { 20 } else { 1 });
            tokio::spawn(scenarios::sidecar(number(&pick("1000", "30"))?, settle))
        }
        "accounts" => {
            let size = pick("200x10", "6x5");
            let (accounts, per) = size
                .split_once('x')
                .ok_or(format!("accounts=AxN, not {size}"))?;
            tokio::spawn(scenarios::accounts(number(accounts)?, number(per)?))
        }
        "soak" | "chaos" => tokio::spawn(soak::run(soak::Soak {
            domains: number(&pick("1000", "40"))?,
            churn,
            chaos: name == "chaos",
        })),
        _ => unreachable!("checked in options()"),
    };
    task.await.map_err(|e| match e.try_into_panic() {
        Ok(panic) => panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panicked".into()),
        Err(e) => e.to_string(),
    })
}

#[tokio::main]
async fn main() {
    let options = match options() {
        Ok(options) => options,
        Err(problem) => {
            eprintln!("{problem}\n\n{}", include_str!("usage.txt"));
            std::process::exit(2);
        }
    };
    closte_operator::tls::install_crypto_provider();
    let mut rows: Vec<Row> = Vec::new();
    let mut failed = Vec::new();
    for (name, size) in &options.scenarios {
        eprintln!("== {name} {}", size.as_deref().unwrap_or("(default size)"));
        let started = std::time::Instant::now();
        match scenario(name, size.as_deref(), &options).await {
            Ok(new) => {
                eprint!("{}", report::table(&new));
                rows.extend(new);
            }
            Err(problem) => {
                eprintln!("   FAILED: {problem}");
                failed.push(format!("{name}: {problem}"));
            }
        }
        eprintln!("   ({:.0} s)", started.elapsed().as_secs_f64());
    }
    println!("\n{}", report::table(&rows));
    let json = options.json.clone().unwrap_or_else(|| {
        common::repo_root().join(match options.mode {
            Mode::Full => "target/bench/results.json",
            Mode::Quick => "target/bench/results-quick.json",
        })
    });
    let document = serde_json::json!({
        "mode": if options.mode == Mode::Full { "full" } else { "quick" },
        "binary": rig::bin(),
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "rows": rows,
        "failed": failed,
    });
    std::fs::create_dir_all(json.parent().unwrap()).unwrap();
    std::fs::write(&json, serde_json::to_string_pretty(&document).unwrap()).unwrap();
    let markdown = json.with_extension("md");
    std::fs::write(&markdown, report::markdown(&rows)).unwrap();
    println!("results: {} and {}", json.display(), markdown.display());
    let wrong: Vec<&Row> = rows
        .iter()
        .filter(|r| r.must && r.verdict == Verdict::Missed)
        .collect();
    if !failed.is_empty() || !wrong.is_empty() {
        eprintln!("failed scenarios: {failed:#?}\ncorrectness checks missed: {wrong:#?}");
        std::process::exit(1);
    }
}
