//! The listener side of the network: which connections are accepted, and how
//! long they may stay, before and while the gRPC server serves them.
//!
//! - [`accepted`]: the accept loop. At most `max_connections` at once (past
//!   it a connection is accepted and closed); accept errors that say the
//!   process is out of descriptors or memory back off instead of spinning,
//!   with one log line when they start and one when accepting resumes.
//! - [`Connection`]: an accepted connection that closes itself when the
//!   client preface does not arrive in time, or when it has had no open
//!   stream for the idle timeout. hyper and h2 have neither timeout for
//!   HTTP/2 servers, hence this wrapper.
//! - [`TrackStreamsLayer`]: the tower layer that tells a connection which of
//!   its streams are open, from a request's headers to the end of its answer.
//! - [`TlsAcceptor`]: TLS (and mTLS) on the listener, its files re-read when
//!   they change; the handshake happens inside [`Connection`].

mod accept;
mod connection;
mod streams;
mod tls;

use std::time::Duration;

use tokio::net::TcpListener;
use tokio_stream::Stream;

pub use self::{
    connection::{Connection, ConnectionInfo, ConnectionMemo},
    streams::{TrackStreams, TrackStreamsLayer, TrackedBody, TrackedResponse},
    tls::{TlsAcceptor, TlsError, TlsFile, TlsProblem, TlsSettings, load_server_config},
};

/// What the accept loop and each connection enforce.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Connections held at once.
    pub max_connections: usize,
    /// The time a new connection has to send the HTTP/2 client preface.
    pub handshake_timeout: Duration,
    /// The time a connection may stay without an open stream.
    pub idle_timeout: Duration,
}

/// The connections accepted on `listener`, within `limits`, with Nagle's
/// algorithm off (tonic's own `tcp_nodelay` applies only to listeners it binds
/// itself, and small gRPC answers held back for a delayed ACK cost
/// milliseconds each). The stream yields no errors: the accept loop handles
/// them itself, since tonic's would retry at once, in a loop.
///
/// With `tls`, every connection is TLS, with the material in force at its
/// accept; the files are watched for changes as long as the stream lives.
pub fn accepted(
    listener: TcpListener,
    limits: ConnectionLimits,
    tls: Option<TlsAcceptor>,
) -> impl Stream<Item = std::io::Result<Connection>> + Send + 'static {
    let acceptor = accept::Acceptor::new(listener, limits, tls.clone());
    // Started on the first poll, inside the runtime; dropped (and stopped)
    // with the stream.
    let watcher: Option<tls::WatchGuard> = None;
    futures::stream::unfold(
        (acceptor, tls, watcher),
        |(mut acceptor, tls, mut watcher)| async move {
            if watcher.is_none() {
                watcher = tls.as_ref().map(TlsAcceptor::watch);
            }
            let connection = acceptor.accept().await;
            Some((Ok(connection), (acceptor, tls, watcher)))
        },
    )
}

/// Raises the soft limit on open files to the hard one, and returns the soft
/// limit now in force: every connection holds a descriptor, and the soft
/// default (often 1024) is far below what a gateway holds.
#[cfg(unix)]
pub fn raise_open_file_limit() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}
