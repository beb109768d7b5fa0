//! The listener side of the network: how accepted connections are prepared
//! before the gRPC server sees them.

use tokio::net::{TcpListener, TcpStream};
use tokio_stream::{Stream, StreamExt, wrappers::TcpListenerStream};

/// Accepted connections with Nagle's algorithm off: tonic's own `tcp_nodelay`
/// applies only to listeners it binds itself, and small gRPC answers held back
/// for a delayed ACK cost milliseconds each.
pub fn accepted(listener: TcpListener) -> impl Stream<Item = std::io::Result<TcpStream>> {
    TcpListenerStream::new(listener).map(|accepted| {
        accepted.inspect(|stream| {
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%error, "cannot disable nagle on an accepted connection");
            }
        })
    })
}
