//! An accepted connection that closes itself when its client does not finish
//! the HTTP/2 handshake (on HTTP/1.1: send its first request head) in time,
//! or when it has had no open stream for the idle timeout.
//!
//! Neither hyper nor h2 bounds either time for an HTTP/2 server (hyper's
//! header read timeout is HTTP/1 only; h2's handshake waits for the preface
//! as long as it takes), and tonic serves connections in tasks of its own, so
//! the bound lives in the IO: a read or write on a connection whose deadline
//! has passed fails with `TimedOut`, and hyper drops the connection. The
//! deadline is a timer polled with every read and write, so it fires even
//! when the client sends nothing; h2 keeps a read pending on every connection
//! it serves. Open streams are counted by `TrackStreamsLayer`, from a
//! request's headers to the end of its answer, so a call waiting on a
//! platform keeps its connection busy even when no byte moves.
//!
//! With TLS, the handshake happens here too, on the first read or write, so
//! on the connection's own task and never in the accept loop: a client that
//! sends no ClientHello holds nothing but its own connection, until the
//! handshake timeout closes it. That timeout covers the TLS handshake and
//! the HTTP/2 preface together, and the preface is counted in the decrypted
//! bytes.

use std::{
    any::Any,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc, Mutex, OnceLock, PoisonError,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    sync::OwnedSemaphorePermit,
    time::{Instant, Sleep, sleep_until},
};
use tokio_rustls::{rustls::ServerConfig, server::TlsStream};
use tonic::transport::server::Connected;

use super::{ConnectionLimits, tls};

/// An accepted TCP connection, holding one of the listener's connection slots
/// until it is dropped.
pub struct Connection {
    stream: Transport,
    local_addr: Option<SocketAddr>,
    remote_addr: SocketAddr,
    /// The verified client certificate's names, once the TLS handshake is
    /// done; shared with every `ConnectionInfo`, which tonic takes before it.
    client_names: Arc<OnceLock<Arc<[String]>>>,
    activity: Arc<Activity>,
    preface: Preface,
    limits: ConnectionLimits,
    deadline: Pin<Box<Sleep>>,
    closed: Option<Closed>,
    _slot: OwnedSemaphorePermit,
}

impl Connection {
    /// With `tls`, the connection is TLS, its handshake done on the first
    /// read or write.
    pub(super) fn new(
        stream: TcpStream,
        remote_addr: SocketAddr,
        slot: OwnedSemaphorePermit,
        limits: ConnectionLimits,
        tls: Option<Arc<ServerConfig>>,
    ) -> Connection {
        let accepted_at = Instant::now();
        let local_addr = stream.local_addr().ok();
        let stream = match tls {
            // Lazy: no byte is read or written until the connection's task
            // polls it.
            Some(config) => Transport::Handshaking(Box::new(
                tokio_rustls::TlsAcceptor::from(config).accept(stream),
            )),
            None => Transport::Plain(stream),
        };
        Connection {
            stream,
            local_addr,
            remote_addr,
            client_names: Arc::default(),
            activity: Arc::new(Activity {
                accepted_at,
                open_streams: AtomicUsize::new(0),
                idle_since_ms: AtomicU64::new(0),
                memo: ConnectionMemo::default(),
            }),
            preface: Preface::default(),
            limits,
            deadline: Box::pin(sleep_until(accepted_at + limits.handshake_timeout)),
            closed: None,
            _slot: slot,
        }
    }

    /// The next deadline, or why the connection is over.
    fn check(&self, now: Instant) -> Result<Instant, Closed> {
        let activity = &self.activity;
        if !self.preface.complete() {
            let deadline = activity.accepted_at + self.limits.handshake_timeout;
            return if now >= deadline {
                Err(Closed::Handshake)
            } else {
                Ok(deadline)
            };
        }
        if activity.open_streams.load(Ordering::Acquire) > 0 {
            // Busy: look again an idle timeout from now; the stream that ends
            // last records when the connection became idle.
            return Ok(now + self.limits.idle_timeout);
        }
        let idle_since =
            std::time::Duration::from_millis(activity.idle_since_ms.load(Ordering::Acquire));
        let deadline = activity.accepted_at + idle_since + self.limits.idle_timeout;
        if now >= deadline {
            Err(Closed::Idle)
        } else {
            Ok(deadline)
        }
    }

    /// Ready with the error to fail IO with once the connection is over.
    fn poll_limits(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        if let Some(closed) = self.closed {
            return Poll::Ready(closed.error());
        }
        while self.deadline.as_mut().poll(cx).is_ready() {
            match self.check(Instant::now()) {
                Ok(next) => self.deadline.as_mut().reset(next),
                Err(closed) => {
                    tracing::debug!(remote_addr = %self.remote_addr, reason = closed.reason(), "closing a connection");
                    self.closed = Some(closed);
                    return Poll::Ready(closed.error());
                }
            }
        }
        Poll::Pending
    }

    /// The stream to read and write, once the TLS handshake (if any) is done.
    fn poll_stream(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Stream<'_>>> {
        if let Transport::Handshaking(accept) = &mut self.stream {
            match Pin::new(accept.as_mut()).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(stream)) => {
                    // Set before the first decrypted byte reaches hyper, so
                    // before any request of the connection exists.
                    if let Some([leaf, ..]) = stream.get_ref().1.peer_certificates() {
                        let _ = self.client_names.set(tls::certificate_names(leaf).into());
                    }
                    self.stream = Transport::Tls(Box::new(stream));
                }
                Poll::Ready(Err(error)) => {
                    tracing::debug!(remote_addr = %self.remote_addr, %error, "tls handshake failed");
                    self.stream = Transport::Failed;
                    return Poll::Ready(Err(error));
                }
            }
        }
        Poll::Ready(match &mut self.stream {
            Transport::Plain(stream) => Ok(Stream::Plain(stream)),
            Transport::Tls(stream) => Ok(Stream::Tls(stream)),
            Transport::Handshaking(_) => unreachable!("the handshake is done or failed above"),
            Transport::Failed => Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the tls handshake failed",
            )),
        })
    }
}

/// The connection's byte stream, and how far its TLS has come.
enum Transport {
    Plain(TcpStream),
    /// Boxed: a rustls connection is kilobytes, a plaintext one is not.
    Handshaking(Box<tokio_rustls::Accept<TcpStream>>),
    Tls(Box<TlsStream<TcpStream>>),
    /// The handshake failed (the error was returned once); hyper drops the
    /// connection.
    Failed,
}

/// A borrowed stream ready for IO.
enum Stream<'a> {
    Plain(&'a mut TcpStream),
    Tls(&'a mut TlsStream<TcpStream>),
}

macro_rules! with_stream {
    ($stream:expr, |$io:ident| $body:expr) => {
        match $stream {
            Stream::Plain($io) => {
                let $io = Pin::new($io);
                $body
            }
            Stream::Tls($io) => {
                let $io = Pin::new($io);
                $body
            }
        }
    };
}

#[derive(Debug, Clone, Copy)]
enum Closed {
    Handshake,
    Idle,
}

impl Closed {
    fn reason(self) -> &'static str {
        match self {
            Closed::Handshake => {
                "no http/2 client preface or http/1.1 request head (after tls, if any) within the \
                 handshake timeout"
            }
            Closed::Idle => "no open stream within the idle timeout",
        }
    }

    fn error(self) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, self.reason())
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Poll::Ready(error) = this.poll_limits(cx) {
            return Poll::Ready(Err(error));
        }
        let before = buf.filled().len();
        let read = match this.poll_stream(cx) {
            Poll::Ready(Ok(stream)) => with_stream!(stream, |io| io.poll_read(cx, buf)),
            Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
            Poll::Pending => return Poll::Pending,
        };
        if !this.preface.complete()
            && matches!(read, Poll::Ready(Ok(())))
            && this.preface.feed(&buf.filled()[before..])
        {
            // From now on the idle timeout applies, counted from here.
            let activity = &this.activity;
            let now_ms = activity.accepted_at.elapsed().as_millis() as u64;
            activity.idle_since_ms.fetch_max(now_ms, Ordering::AcqRel);
            this.deadline
                .as_mut()
                .reset(Instant::now() + this.limits.idle_timeout);
        }
        read
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // Checked on writes too: a client that stops reading leaves h2
        // waiting to write, not to read.
        if let Poll::Ready(error) = this.poll_limits(cx) {
            return Poll::Ready(Err(error));
        }
        let stream = std::task::ready!(this.poll_stream(cx))?;
        with_stream!(stream, |io| io.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Poll::Ready(error) = this.poll_limits(cx) {
            return Poll::Ready(Err(error));
        }
        let stream = std::task::ready!(this.poll_stream(cx))?;
        with_stream!(stream, |io| io.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match &self.stream {
            Transport::Plain(stream) => stream.is_write_vectored(),
            // What tokio-rustls says of its streams, before and after the
            // handshake alike.
            Transport::Handshaking(_) | Transport::Tls(_) | Transport::Failed => true,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let stream = std::task::ready!(self.get_mut().poll_stream(cx))?;
        with_stream!(stream, |io| io.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match &mut this.stream {
            // Nothing to say to a client whose handshake never finished: the
            // socket closes when the connection is dropped.
            Transport::Handshaking(_) | Transport::Failed => Poll::Ready(Ok(())),
            Transport::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            // Sends close_notify, then shuts the socket down.
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }
}

/// What tonic puts in every request's extensions; `TrackStreamsLayer` reads
/// it.
#[derive(Clone)]
pub struct ConnectionInfo {
    pub local_addr: Option<SocketAddr>,
    pub remote_addr: SocketAddr,
    pub(super) activity: Arc<Activity>,
    client_names: Arc<OnceLock<Arc<[String]>>>,
}

impl ConnectionInfo {
    /// The DNS and URI subject alternative names of the client certificate
    /// that the TLS handshake verified (against `client_ca_file`), as in
    /// `lobby.game.internal` or `spiffe://cluster/ns/game/sa/lobby`; `None`
    /// for a plaintext connection or a TLS one without a client certificate.
    /// tonic takes this before the handshake; every request of the
    /// connection comes after it, so a request always sees the names.
    pub fn client_certificate_names(&self) -> Option<Arc<[String]>> {
        self.client_names.get().cloned()
    }

    /// What the layers above keep for this connection.
    pub fn memo(&self) -> &ConnectionMemo {
        &self.activity.memo
    }
}

impl Connected for Connection {
    type ConnectInfo = ConnectionInfo;

    fn connect_info(&self) -> ConnectionInfo {
        ConnectionInfo {
            local_addr: self.local_addr,
            remote_addr: self.remote_addr,
            activity: self.activity.clone(),
            client_names: self.client_names.clone(),
        }
    }
}

/// What a connection and the streams on it share.
pub(super) struct Activity {
    accepted_at: Instant,
    open_streams: AtomicUsize,
    /// When the last stream ended, in milliseconds since the accept.
    idle_since_ms: AtomicU64,
    memo: ConnectionMemo,
}

/// One value a layer above keeps for the life of a connection, opaque here:
/// the caller its credentials named (`auth`), so that the requests after the
/// first are not authenticated from scratch.
#[derive(Default)]
pub struct ConnectionMemo(Mutex<Option<Arc<dyn Any + Send + Sync>>>);

impl ConnectionMemo {
    pub fn get(&self) -> Option<Arc<dyn Any + Send + Sync>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn set(&self, value: Arc<dyn Any + Send + Sync>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(value);
    }
}

impl Activity {
    pub(super) fn stream_opened(self: &Arc<Self>) -> StreamGuard {
        self.open_streams.fetch_add(1, Ordering::AcqRel);
        StreamGuard(self.clone())
    }
}

/// One open stream; dropped when its answer has been sent (or abandoned).
pub(super) struct StreamGuard(Arc<Activity>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let activity = &self.0;
        // Recorded before the count drops, so that the connection never sees
        // no stream with an old idle time.
        let now_ms = activity.accepted_at.elapsed().as_millis() as u64;
        activity.idle_since_ms.fetch_max(now_ms, Ordering::AcqRel);
        activity.open_streams.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How much of the connection's first request has arrived: for HTTP/2 the
/// client preface, the 24-byte magic then a SETTINGS frame (a 9-byte header
/// whose first 3 bytes are its length); for HTTP/1.1 (a first byte that is
/// not the magic's, as hyper-util's auto builder also decides) the first
/// request's head, up to its blank line. After it, the idle timeout applies
/// (an HTTP/1.1 connection has an open stream while a request is served, as
/// an HTTP/2 one does). Nothing is validated here: h2 and hyper refuse a
/// broken preface or head themselves.
#[derive(Debug, Default)]
struct Preface {
    seen: usize,
    frame_header: [u8; FRAME_HEADER_LEN],
    complete: bool,
    /// The connection speaks HTTP/1.
    http1: bool,
    /// The last four bytes of an HTTP/1 head, to find its `\r\n\r\n`.
    tail: u32,
}

const MAGIC: &[u8; MAGIC_LEN] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const MAGIC_LEN: usize = 24;
const FRAME_HEADER_LEN: usize = 9;
/// `\r\n\r\n`, the end of an HTTP/1 head, as four bytes read in a row.
const HEAD_END: u32 = u32::from_be_bytes(*b"\r\n\r\n");

impl Preface {
    fn complete(&self) -> bool {
        self.complete
    }

    /// Counts the next bytes read; true once the preface is complete.
    fn feed(&mut self, bytes: &[u8]) -> bool {
        if self.complete {
            return true;
        }
        for (index, &byte) in (self.seen..).zip(bytes) {
            if !self.http1 && index < MAGIC_LEN && byte != MAGIC[index] {
                // Not HTTP/2: the bytes so far (a prefix of the magic) were
                // the start of an HTTP/1 request line.
                self.http1 = true;
                self.tail = MAGIC[index.saturating_sub(3)..index]
                    .iter()
                    .fold(0, |tail, &b| (tail << 8) | u32::from(b));
            }
            if self.http1 {
                self.tail = (self.tail << 8) | u32::from(byte);
                if self.tail == HEAD_END {
                    self.complete = true;
                    return true;
                }
                continue;
            }
            if index >= MAGIC_LEN + FRAME_HEADER_LEN {
                break;
            }
            if index >= MAGIC_LEN {
                self.frame_header[index - MAGIC_LEN] = byte;
            }
        }
        self.seen += bytes.len();
        if !self.http1 && self.seen >= MAGIC_LEN + FRAME_HEADER_LEN {
            let [a, b, c, ..] = self.frame_header;
            let settings_len = u32::from_be_bytes([0, a, b, c]) as usize;
            self.complete = self.seen >= MAGIC_LEN + FRAME_HEADER_LEN + settings_len;
        }
        self.complete
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preface(settings_len: usize) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&(settings_len as u32).to_be_bytes()[1..]);
        bytes.extend_from_slice(&[0x4, 0, 0, 0, 0, 0]);
        bytes.extend(std::iter::repeat_n(0, settings_len));
        bytes
    }

    #[test]
    fn the_preface_is_complete_after_the_magic_and_the_whole_settings_frame() {
        for settings_len in [0, 6, 18] {
            let bytes = preface(settings_len);
            let mut whole = Preface::default();
            assert!(!whole.feed(&bytes[..bytes.len() - 1]));
            assert!(whole.feed(&bytes[bytes.len() - 1..]));

            let mut byte_by_byte = Preface::default();
            let completed_at = bytes
                .iter()
                .position(|&byte| byte_by_byte.feed(&[byte]))
                .unwrap();
            assert_eq!(completed_at, bytes.len() - 1);
        }
    }

    #[test]
    fn half_a_preface_is_not_a_preface() {
        let mut preface = Preface::default();
        assert!(!preface.feed(&MAGIC[..10]));
        assert!(!preface.feed(&MAGIC[10..]));
        assert!(!preface.feed(&[0, 0, 6, 4]));
    }

    #[test]
    fn an_http1_connection_is_past_its_preface_at_the_end_of_its_first_head() {
        let head = b"POST /gamegate.v1.StorageService/SetUserStorage HTTP/1.1\r\nhost: x\r\n\r\n{}";
        let mut whole = Preface::default();
        assert!(whole.feed(head));
        let mut byte_by_byte = Preface::default();
        let completed_at = head
            .iter()
            .position(|&byte| byte_by_byte.feed(&[byte]))
            .unwrap();
        assert_eq!(completed_at, head.len() - 3, "at the blank line");
        let mut half = Preface::default();
        assert!(!half.feed(b"GET / HTTP/1.1\r\nhost: x\r\n"));
        // A request line that starts like the magic, then is not it.
        let mut prefix = Preface::default();
        assert!(!prefix.feed(b"PRI * HTTP/1.1\r\n"));
        assert!(prefix.feed(b"\r\n"));
    }

    #[test]
    fn more_frames_after_the_preface_in_one_read_complete_it() {
        let mut bytes = preface(12);
        bytes.extend_from_slice(&[0, 0, 0, 4, 1, 0, 0, 0, 0]);
        assert!(Preface::default().feed(&bytes));
    }
}
