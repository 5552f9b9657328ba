//! Command-line entry point: parses arguments and dispatches to a subcommand.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use closte_operator::{api, check, controller, simulate, telemetry};

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
    Sidecar,
    /// Run a local Closte stand-in (API, DNS and HTTPS) for demos and tests.
    Simulate(Box<simulate::SimArgs>),
    /// Test a Closte API key the way WordPress's "test connection" does.
    Check(check::CheckArgs),
    /// Show one domain: resource status, Closte presence, DNS answer and certificate.
    Status {
        /// Name of the MappedDomain.
        name: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    match cli.command {
        Command::Crd => {
            print!("{}", api::crd_yaml());
            ExitCode::SUCCESS
        }
        Command::Simulate(args) => match runtime().block_on(simulate::run(*args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "simulator failed");
                eprintln!("closte-operator simulate: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Check(args) => match runtime().block_on(check::run(args)) {
            Ok(verdict) => {
                println!("{verdict}");
                ExitCode::from(verdict.exit_code())
            }
            Err(e) => {
                eprintln!("closte-operator check: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Controller(args) => match runtime().block_on(controller::run(*args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "controller failed");
                eprintln!("closte-operator controller: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Sidecar | Command::Status { .. } => {
            eprintln!("closte-operator: this subcommand is not yet implemented");
            ExitCode::from(2)
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}
