//! The accept loop. It is hyper's own (not `axum::serve`) because a `drop_connection` fault must
//! close the connection without an HTTP answer, and only a hyper service that fails can do that.

use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::pin;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt;
use tracing::{debug, info, warn};

use crate::faults::DropConnection;
use crate::{Sandbox, SandboxConfig};

/// How long in-flight requests may take to finish once shutdown starts (a latency fault can hold
/// one for as long as it was told to).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause after a failed accept (e.g. out of file descriptors) so that the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The error a service returns to make hyper close the connection.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by a sandbox fault")]
struct ConnectionDropped;

pub(crate) async fn serve(
    sandbox: Sandbox,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let router = sandbox.router();
    let (stop_sender, stop) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(serve_connection(router.clone(), stream, peer, stop.clone()));
                }
                Err(error) => {
                    warn!(%error, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            // Reap finished connections as we go so that the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    // Idle keep-alive connections close now, busy ones after their current answer.
    let _ = stop_sender.send(true);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            connections = connections.len(),
            "connections still busy at shutdown were cut"
        );
        connections.shutdown().await;
    }
    info!("sandbox stopped");
    Ok(())
}

async fn serve_connection(
    router: Router,
    stream: TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
) {
    // Small JSON answers: do not let Nagle hold them back.
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |mut request: hyper::Request<Incoming>| {
        // The peer address, for answers about the client (MSDK `get_ccinfo` without `ip`).
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        let router = router.clone();
        async move {
            let response = router
                .oneshot(request)
                .await
                .unwrap_or_else(|never: Infallible| match never {});
            if response.extensions().get::<DropConnection>().is_some() {
                return Err(ConnectionDropped);
            }
            Ok(response)
        }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service);
    let mut connection = pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        // The guard wait_for returns must not live across the await below (it is not Send).
        () = async { let _ = stop.wait_for(|stop| *stop).await; } => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        debug!(%peer, %error, "connection closed with an error");
    }
}

/// A sandbox serving in a background task. Dropping it stops the server too.
pub struct RunningSandbox {
    pub addr: SocketAddr,
    sandbox: Sandbox,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl RunningSandbox {
    /// `http://IP:PORT`, with a loopback address in place of an unspecified one so that the URL
    /// can be connected to.
    pub fn base_url(&self) -> String {
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, self.addr.port()))
    }

    /// The served sandbox (shares its state).
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// Stops accepting, lets in-flight requests finish (bounded), and waits for the server task.
    pub async fn shutdown(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => warn!(%error, "sandbox server failed"),
                Err(error) => warn!(%error, "sandbox server task failed"),
            }
        }
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

impl std::fmt::Debug for RunningSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningSandbox")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Binds `addr` (use `127.0.0.1:0` for an ephemeral port), then serves a new sandbox with
/// `config` in a tokio task.
pub async fn spawn(config: SandboxConfig, addr: SocketAddr) -> io::Result<RunningSandbox> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let sandbox = Sandbox::new(config);
    let (shutdown, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(sandbox.clone().serve(listener, async move {
        // A dropped sender (RunningSandbox dropped) stops the server as well.
        let _ = stopped.await;
    }));
    info!(%addr, "sandbox listening");
    Ok(RunningSandbox {
        addr,
        sandbox,
        shutdown: Some(shutdown),
        task: Some(task),
    })
}
