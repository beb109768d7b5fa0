//! The gamegate binary: `serve` (the default), `check-config` and, in builds
//! with the sandbox, `sandbox`. A thin wiring of the library's `app` and
//! `telemetry`.
#![forbid(unsafe_code)]

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use gamegate::{app, config, telemetry};

/// jemalloc with its background purge: memory that closed connections and
/// finished calls held goes back to the system within its decay time, where
/// glibc's allocator kept it (see Cargo.toml).
#[cfg(all(unix, not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "gamegate",
    version,
    about = "gRPC gateway to Tencent game-platform server APIs"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the gateway. Without --config it wires itself to an in-process
    /// sandbox with demo apps, so every RPC can be called at once (builds with
    /// the sandbox only).
    Serve {
        /// A TOML configuration file; GAMEGATE_* environment variables override it.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The gRPC listen address (overrides the configuration).
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Run the platform sandbox alone, for a game team's own integration tests.
    #[cfg(feature = "sandbox")]
    Sandbox {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
    /// Read and validate a configuration file, then exit.
    CheckConfig {
        #[arg(long, short)]
        config: PathBuf,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve {
        config: None,
        listen: None,
    });
    // First, so that what reading the configuration logs (the environment
    // variables it ignores) reaches the log, in the format the file asks for.
    let configured_format = match &command {
        Command::Serve {
            config: Some(path), ..
        }
        | Command::CheckConfig { config: path } => config::Config::log_format_of(path),
        _ => None,
    };
    // Spans are exported by a layer of the same subscriber: `serve` reads
    // `[telemetry]` now (loading the configuration validates it again, and
    // stops at an error there).
    let traces = match &command {
        Command::Serve { config, .. } => {
            let telemetry = config::Config::telemetry_of(config.as_deref());
            match telemetry.otlp_endpoint.as_deref() {
                Some(endpoint) => {
                    match telemetry::trace::Exporter::start(endpoint, &telemetry.service_name) {
                        Ok(exporter) => Some(exporter),
                        Err(error) => {
                            eprintln!("gamegate: {error}");
                            return ExitCode::FAILURE;
                        }
                    }
                }
                None => None,
            }
        }
        _ => None,
    };
    if let Err(error) = telemetry::init_logging(configured_format, traces.as_ref()) {
        eprintln!("gamegate: {error}");
        return ExitCode::FAILURE;
    }
    let result = match command {
        Command::Serve { config, listen } => app::run(config.as_deref(), listen).await,
        #[cfg(feature = "sandbox")]
        Command::Sandbox { listen } => app::embedded::run_sandbox(listen).await,
        Command::CheckConfig { config } => app::check_config(&config),
    };
    // The spans of the last calls, before the process ends.
    if let Some(traces) = traces {
        traces.shutdown().await;
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("gamegate: {message}");
            ExitCode::FAILURE
        }
    }
}
