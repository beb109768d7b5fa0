//! The commands of the binary, as functions: `serve` with a configuration file
//! or, in builds with the sandbox, wired to an embedded one; `check-config`.

use std::{net::SocketAddr, path::Path};

use tokio::net::TcpListener;

use super::signal;
use crate::config::Config;

/// Serves until SIGINT/SIGTERM: with `config_path`, against the configured
/// platforms; without one, against the embedded sandbox (builds with the
/// `sandbox` feature only).
pub async fn run(config_path: Option<&Path>, listen: Option<SocketAddr>) -> Result<(), String> {
    #[cfg(feature = "sandbox")]
    let mut embedded = None;
    let mut config = match config_path {
        Some(path) => Config::load(Some(path)).map_err(|e| e.to_string())?,
        #[cfg(feature = "sandbox")]
        None => {
            let (sandbox, config) = super::embedded::start().await?;
            embedded = Some(sandbox);
            config
        }
        #[cfg(not(feature = "sandbox"))]
        None => {
            return Err(
                "this build has no embedded sandbox: run it with --config <file>".to_string(),
            );
        }
    };
    if let Some(listen) = listen {
        config.listen = listen;
    }
    // Listened for before the serving line: a signal sent at it is handled.
    let shutdown = signal::shutdown();
    #[cfg(unix)]
    let hangups = config_path.and_then(|_| signal::reload_requests());
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    #[cfg(feature = "sandbox")]
    match &embedded {
        Some(sandbox) => super::embedded::print_banner(addr, &sandbox.base_url()),
        None => tracing::info!(%addr, tls = config.tls.is_some(), "gamegate is serving"),
    }
    #[cfg(not(feature = "sandbox"))]
    tracing::info!(%addr, tls = config.tls.is_some(), "gamegate is serving");
    let (reloads, reloaded) = tokio::sync::mpsc::channel(1);
    #[cfg(unix)]
    if let (Some(path), Some(hangups)) = (config_path, hangups) {
        tokio::spawn(reload_on_sighup(
            hangups,
            path.to_path_buf(),
            listen,
            reloads,
        ));
    }
    super::serve(&config, listener, shutdown, reloaded)
        .await
        .map_err(|e| e.to_string())?;
    #[cfg(feature = "sandbox")]
    if let Some(sandbox) = embedded {
        sandbox.shutdown().await;
    }
    Ok(())
}

/// On every SIGHUP, reads `path` and the environment again and validates the
/// result completely; a valid configuration goes to `reloads` (the server
/// swaps it in), an invalid one is refused with an error line and the running
/// one stays. `listen` (the command line's) still overrides the file's.
#[cfg(unix)]
async fn reload_on_sighup(
    mut hangups: tokio::signal::unix::Signal,
    path: std::path::PathBuf,
    listen: Option<SocketAddr>,
    reloads: tokio::sync::mpsc::Sender<Config>,
) {
    while hangups.recv().await.is_some() {
        tracing::info!(path = %path.display(), "SIGHUP: reading the configuration again");
        match Config::load(Some(&path)) {
            Ok(mut config) => {
                if let Some(listen) = listen {
                    config.listen = listen;
                }
                if reloads.send(config).await.is_err() {
                    return;
                }
            }
            Err(error) => tracing::error!(
                %error,
                "the new configuration is refused; the running one stays"
            ),
        }
    }
}

/// Reads and validates a configuration file.
pub fn check_config(path: &Path) -> Result<(), String> {
    Config::load(Some(path))
        .map(|_| println!("{}: ok", path.display()))
        .map_err(|e| e.to_string())
}
