//! The signals that stop gamegate and that reload it. Each is listened for
//! from the moment its function is called, not from its first poll: a
//! SIGTERM or SIGHUP that arrives between "gamegate is serving" and the
//! server's first poll must be handled, not take the default action (death by
//! the signal, no drain, exit 143).

use std::future::Future;

/// Listens for SIGINT (Ctrl-C) and SIGTERM from now on; the future resolves
/// on the first of them.
pub fn shutdown() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |kind: SignalKind, name: &str| match signal(kind) {
            Ok(signal) => Some(signal),
            Err(error) => {
                tracing::warn!(%error, signal = name, "cannot listen for the signal");
                None
            }
        };
        let mut interrupt = listen(SignalKind::interrupt(), "SIGINT");
        let mut terminate = listen(SignalKind::terminate(), "SIGTERM");
        async move {
            tokio::select! {
                _ = received(interrupt.as_mut()) => {}
                _ = received(terminate.as_mut()) => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The next delivery of `signal`; never, when it could not be listened for.
#[cfg(unix)]
async fn received(signal: Option<&mut tokio::signal::unix::Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}

/// SIGHUP, the signal that asks gamegate to read its configuration again,
/// listened for from now on; `None` where there is none (not unix) or it
/// cannot be listened for.
#[cfg(unix)]
pub fn reload_requests() -> Option<tokio::signal::unix::Signal> {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(signal) => Some(signal),
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGHUP: the configuration will not reload");
            None
        }
    }
}
