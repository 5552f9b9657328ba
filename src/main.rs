//! Command-line entry point: parses arguments and dispatches to a subcommand.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use closte_operator::{api, check, controller, memory, sidecar, simulate, status, telemetry};

#[derive(Parser)]
#[command(
    name = "closte-operator",
    version,
    about = "Keeps WordPress multisite mapped domains registered as Closte domain aliases"
)]
struct Cli {
    /// Log line format on stderr.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "LOG_FORMAT"
    )]
    log_format: telemetry::LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the MappedDomain CustomResourceDefinition as YAML.
    Crd,
    /// Run the reconciler that keeps Closte in line with MappedDomains.
    Controller(Box<controller::ControllerArgs>),
    /// Run the loopback HTTP API that lets WordPress manage MappedDomains.
    Sidecar(sidecar::SidecarArgs),
    /// Run a local Closte stand-in (API, DNS and HTTPS) for demos and tests.
    Simulate(Box<simulate::SimArgs>),
    /// Test a Closte API key the way WordPress's "test connection" does.
    Check(check::CheckArgs),
    /// Show one domain: resource status, Closte presence, DNS answer, certificate, and what to do next (exit 0 only when Ready). Also `kubectl closte status`.
    Status(Box<status::StatusArgs>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    match cli.command {
        Command::Crd => {
            print!("{}", api::crd_yaml());
            ExitCode::SUCCESS
        }
        Command::Simulate(args) => finish("simulate", runtime().block_on(simulate::run(*args))),
        Command::Check(args) => match runtime().block_on(check::run(args)) {
            Ok(outcome) => {
                println!("{outcome}");
                ExitCode::from(outcome.exit_code())
            }
            Err(e) => {
                eprintln!("closte-operator check: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Controller(args) => {
            memory::limit_arenas();
            finish("controller", runtime().block_on(controller::run(*args)))
        }
        Command::Sidecar(args) => {
            memory::limit_arenas();
            finish("sidecar", runtime().block_on(sidecar::run(args)))
        }
        Command::Status(args) => match runtime().block_on(status::run(&args)) {
            Ok(report) => {
                match args.output {
                    status::Output::Text => print!("{}", status::render(&report)),
                    status::Output::Json => println!(
                        "{}",
                        serde_json::to_string_pretty(&report).expect("a report serialises")
                    ),
                }
                ExitCode::from(if report.ready { 0 } else { 1 })
            }
            Err(e) => {
                eprintln!("closte-operator status: {e}");
                ExitCode::from(2)
            }
        },
    }
}

/// The exit code of a long-running subcommand, its error logged and printed.
fn finish<E: std::fmt::Display>(subcommand: &str, result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, subcommand, "stopped with an error");
            eprintln!("closte-operator {subcommand}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}
