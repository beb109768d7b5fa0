//! The gamegate binary: `serve` (the default) and `sandbox`.
#![forbid(unsafe_code)]

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use gamegate::{config::Config, sandbox, server};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

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
    /// sandbox with demo apps, so every RPC can be called at once.
    Serve {
        /// A TOML configuration file; GAMEGATE_* environment variables override it.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The gRPC listen address (overrides the configuration).
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Run the platform sandbox alone, for a game team's own integration tests.
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
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("GAMEGATE_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_target(false)
        .init();
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve {
        config: None,
        listen: None,
    }) {
        Command::Serve { config, listen } => serve(config, listen).await,
        Command::Sandbox { listen } => run_sandbox(listen).await,
        Command::CheckConfig { config } => Config::load(Some(&config))
            .map(|_| println!("{}: ok", config.display()))
            .map_err(|e| e.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("gamegate: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config_path: Option<PathBuf>, listen: Option<SocketAddr>) -> Result<(), String> {
    let mut embedded_sandbox = None;
    let mut config = match &config_path {
        Some(path) => Config::load(Some(path)).map_err(|e| e.to_string())?,
        None => {
            let running = sandbox::spawn(
                sandbox::SandboxConfig::demo(),
                SocketAddr::from(([127, 0, 0, 1], 0)),
            )
            .await
            .map_err(|e| format!("the embedded sandbox cannot start: {e}"))?;
            let config = Config::demo(
                SocketAddr::from(([127, 0, 0, 1], 50051)),
                &running.base_url(),
            );
            embedded_sandbox = Some(running);
            config
        }
    };
    if let Some(listen) = listen {
        config.listen = listen;
    }
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    match &embedded_sandbox {
        Some(sandbox) => print_demo_banner(addr, &sandbox.base_url()),
        None => tracing::info!(%addr, "gamegate is serving"),
    }
    server::serve(&config, listener, shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    if let Some(sandbox) = embedded_sandbox {
        sandbox.shutdown().await;
    }
    Ok(())
}

async fn run_sandbox(listen: SocketAddr) -> Result<(), String> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("gamegate sandbox listening on http://{addr} (demo apps; admin API under /_sandbox/)");
    sandbox::Sandbox::new(sandbox::SandboxConfig::demo())
        .serve(listener, shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

fn print_demo_banner(addr: SocketAddr, sandbox_url: &str) {
    use gamegate::sandbox::demo;
    println!(
        r#"gamegate listening on {addr} (gRPC, plaintext), wired to the built-in sandbox at {sandbox_url}

Try it with grpcurl (server reflection is on):
  grpcurl -plaintext {addr} list
  grpcurl -plaintext -d '{{"app_id":"{mg_app}","user":{{"openid":"{mg_openid}","session_key":"{mg_key}"}},"kv_list":[{{"key":"score","value":"100"}}]}}' \
    {addr} gamegate.v1.StorageService/SetUserStorage
  grpcurl -plaintext -d '{{"app_id":"{oa_app}","user":{{"openid":"{oa_openid}","openkey":"{oa_key}"}},"version":"DAWANKA_DATA_VERSION_V2"}}' \
    {addr} gamegate.v1.DawankaService/GetDawankaInfo
  grpcurl -plaintext {addr} grpc.health.v1.Health/Check

Stop with Ctrl-C."#,
        mg_app = demo::MINIGAME_APPID,
        mg_openid = demo::MINIGAME_ALICE_OPENID,
        mg_key = demo::MINIGAME_ALICE_SESSION_KEY,
        oa_app = demo::OPENAPI_APPID,
        oa_openid = demo::OPENAPI_SUPER_OPENID,
        oa_key = demo::OPENAPI_SUPER_OPENKEY,
    );
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
}
