//! The one HTTP client every platform sends through: HTTP/1.1 over pooled
//! keep-alive connections (TLS for https bases), a deadline on every call, and
//! errors that never carry the URL (upstream URLs hold access tokens, secrets
//! and openkeys).
//!
//! Why not reqwest or hyper-util's pooled client (what gamegate used before):
//! the benchmark (`bench/FINDINGS.md`) measured about 30 KiB of state per
//! upstream connection in hyper's client (a dispatch channel block of 9 KiB,
//! 8 KiB write and 8-16 KiB read buffers, a task per connection) and two URL
//! re-parses per call in reqwest (14 % of a storage call). A platform call is one
//! small request and one answer on a connection of its own, so here the calling
//! task drives its connection itself: no task or channel per connection, read
//! buffers sized to the answer and released while the connection is idle. Heads
//! and chunk sizes are parsed by `httparse` (hyper's parser), TLS is rustls.

mod base_url;
mod connection;
mod error;

use std::{
    collections::VecDeque,
    io,
    net::SocketAddr,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use tokio::{net::TcpStream, time::Instant};
use tokio_rustls::{
    TlsConnector,
    rustls::{self, pki_types::ServerName},
};

use self::connection::{Answer, Connection, Stream};
pub use self::{
    base_url::{BaseUrl, InvalidBaseUrl},
    error::{Cause, Error, ErrorKind, Progress},
};
use crate::metrics;

/// The HTTP method of an upstream interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

const USER_AGENT: &str = concat!("gamegate/", env!("CARGO_PKG_VERSION"));
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Below the keep-alive timeouts platforms' front ends commonly use (nginx: 60-75 s),
/// so that gamegate, not the platform, retires an idle connection.
const IDLE_TIMEOUT: Duration = Duration::from_secs(50);
const MAX_IDLE_PER_BASE: usize = 256;
/// First read buffer of an exchange; an answer head plus a small JSON body fit.
const FIRST_READ: usize = 2048;
const MAX_HEAD_BYTES: usize = 64 * 1024;
const MAX_HEADERS: usize = 64;
/// The largest answer body a platform may send unless configured otherwise:
/// the largest documented answers (friend lists of a few hundred entries) are
/// tens of KiB, and every byte of an answer costs more once parsed.
pub const DEFAULT_MAX_ANSWER_BYTES: usize = 512 * 1024;

/// A body to send and its content type.
pub struct OutgoingBody {
    pub bytes: Bytes,
    pub content_type: &'static str,
}

/// A 2xx answer: its status, headers and body.
pub struct UpstreamAnswer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// The HTTP client: what every upstream shares (the TLS configuration, built
/// the first time an https base is used).
#[derive(Clone, Default)]
pub struct UpstreamHttp {
    tls: Arc<OnceLock<TlsConnector>>,
}

impl UpstreamHttp {
    pub fn new() -> Self {
        Self::default()
    }

    /// A client trusting only `roots` (tests, private platforms).
    pub fn with_root_certificates(roots: rustls::RootCertStore) -> Self {
        let http = Self::default();
        let _ = http.tls.set(tls_connector(roots));
        http
    }

    /// The upstream at `base_url`, with its own connection pool and the
    /// default answer size limit.
    pub fn upstream(&self, base_url: &str) -> Result<Upstream, InvalidBaseUrl> {
        self.upstream_limited(base_url, DEFAULT_MAX_ANSWER_BYTES)
    }

    /// The upstream at `base_url`, accepting answer bodies of at most
    /// `max_answer_bytes`.
    pub fn upstream_limited(
        &self,
        base_url: &str,
        max_answer_bytes: usize,
    ) -> Result<Upstream, InvalidBaseUrl> {
        let base = BaseUrl::parse(base_url)?;
        let tls = if base.tls {
            let connector = self
                .tls
                .get_or_init(|| {
                    let mut roots = rustls::RootCertStore::empty();
                    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                    tls_connector(roots)
                })
                .clone();
            let name = ServerName::try_from(base.host.clone()).map_err(|_| InvalidBaseUrl {
                url: base_url.to_string(),
                problem: "the host is not a valid tls server name",
            })?;
            Some((connector, name))
        } else {
            None
        };
        let metrics = metrics::global().upstream_host(&base.host_header);
        Ok(Upstream {
            inner: Arc::new(UpstreamInner {
                host: Arc::from(base.host_header.as_str()),
                base,
                tls,
                connect_timeout: CONNECT_TIMEOUT,
                metrics,
                idle: Mutex::new(VecDeque::new()),
                max_answer_bytes,
            }),
        })
    }
}

fn tls_connector(roots: rustls::RootCertStore) -> TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsConnector::from(Arc::new(config))
}

/// One call to send: everything but the platform's base URL.
pub struct UpstreamCall<'a> {
    pub method: Method,
    /// Path and query after the base URL's prefix, already percent-encoded.
    pub target: &'a str,
    pub body: Option<OutgoingBody>,
    pub headers: &'a [(&'a str, &'a str)],
    /// A read may be sent again when a reused connection turns out closed.
    pub idempotent: bool,
    pub deadline: Instant,
}

/// One platform base URL and its pool of idle keep-alive connections.
#[derive(Clone)]
pub struct Upstream {
    inner: Arc<UpstreamInner>,
}

struct UpstreamInner {
    base: BaseUrl,
    /// What errors name: the base URL's authority without a default port
    /// (the `Host` header), never a path or query.
    host: Arc<str>,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    /// Resolving and connecting together, then the TLS handshake, each take
    /// at most this long ([`CONNECT_TIMEOUT`]; shorter in tests).
    connect_timeout: Duration,
    /// Oldest at the front; calls take the most recently used.
    idle: Mutex<VecDeque<Connection>>,
    /// The largest answer body accepted, enforced while it is read.
    max_answer_bytes: usize,
    /// This host's connections and bytes.
    metrics: metrics::HostMetrics,
}

impl Upstream {
    /// Sends one request and returns a 2xx answer, within `call.deadline`.
    pub async fn send(&self, call: UpstreamCall<'_>) -> Result<UpstreamAnswer, Error> {
        let mut progress = Progress::default();
        if call.deadline <= Instant::now() {
            return Err(self.error(ErrorKind::Timeout, progress));
        }
        let request = self
            .request_bytes(&call)
            .map_err(|kind| self.error(kind, progress))?;
        // The exchange borrows `progress`; once the timer drops the exchange,
        // what it recorded tells whether the request had been written.
        let exchanged = tokio::time::timeout_at(
            call.deadline,
            self.exchange(&request, call.idempotent, &mut progress),
        )
        .await;
        if progress.request_written {
            self.inner.metrics.sent(request.len());
        }
        let answer = match exchanged {
            Err(_) => return Err(self.error(ErrorKind::Timeout, progress)),
            Ok(Err(kind)) => return Err(self.error(kind, progress)),
            Ok(Ok(answer)) => answer,
        };
        self.inner.metrics.received(answer.body.len());
        if !(200..300).contains(&answer.status) {
            return Err(self.error(ErrorKind::Status(answer.status), progress));
        }
        Ok(UpstreamAnswer {
            status: answer.status,
            headers: answer.headers,
            body: answer.body,
        })
    }

    fn error(&self, kind: ErrorKind, progress: Progress) -> Error {
        Error::new(kind, progress).with_host(self.inner.host.clone())
    }

    /// The request head and body, in one buffer (one write, one TLS record).
    fn request_bytes(&self, call: &UpstreamCall<'_>) -> Result<Vec<u8>, ErrorKind> {
        // Targets are built from declared paths and percent-encoded values; a
        // space or control character would let a value rewrite the request.
        let unsafe_text = |text: &str| text.bytes().any(|b| b < b' ' || b == 0x7f);
        if !call.target.starts_with('/') || call.target.contains(' ') || unsafe_text(call.target) {
            return Err(ErrorKind::InvalidRequest("the target is not a path"));
        }
        if call
            .headers
            .iter()
            .any(|(name, value)| unsafe_text(name) || unsafe_text(value))
        {
            return Err(ErrorKind::InvalidRequest(
                "a header holds a control character",
            ));
        }
        let base = &self.inner.base;
        let body_len = call.body.as_ref().map_or(0, |body| body.bytes.len());
        let mut out = Vec::with_capacity(256 + base.prefix.len() + call.target.len() + body_len);
        let mut put = |parts: &[&[u8]]| parts.iter().for_each(|part| out.extend_from_slice(part));
        put(&[
            call.method.as_str().as_bytes(),
            b" ",
            base.prefix.as_bytes(),
            call.target.as_bytes(),
            b" HTTP/1.1\r\nhost: ",
            base.host_header.as_bytes(),
            b"\r\nuser-agent: ",
            USER_AGENT.as_bytes(),
            b"\r\n",
        ]);
        for (name, value) in call.headers {
            put(&[name.as_bytes(), b": ", value.as_bytes(), b"\r\n"]);
        }
        match &call.body {
            Some(body) => {
                let len = body.bytes.len().to_string();
                put(&[
                    b"content-type: ",
                    body.content_type.as_bytes(),
                    b"\r\ncontent-length: ",
                    len.as_bytes(),
                    b"\r\n\r\n",
                    &body.bytes,
                ]);
            }
            None if call.method == Method::Post => put(&[b"content-length: 0\r\n\r\n"]),
            None => put(&[b"\r\n"]),
        }
        Ok(out)
    }

    async fn exchange(
        &self,
        request: &[u8],
        idempotent: bool,
        progress: &mut Progress,
    ) -> Result<Answer, ErrorKind> {
        if let Some(mut connection) = self.checkout() {
            match connection.round_trip(request, progress).await {
                Ok(answer) => {
                    self.checkin(connection, answer.keep_alive);
                    return Ok(answer);
                }
                // The platform closed this connection while it sat idle and the
                // close crossed our request: a read may go again on a new one.
                Err(error) if idempotent && closed_before_answering(&error, progress) => {
                    tracing::debug!(%error, "a reused connection was closed; sending on a new one");
                }
                Err(error) => return Err(error),
            }
        }
        let mut connection = self.connect().await?;
        progress.answer_started = false;
        let answer = connection.round_trip(request, progress).await?;
        self.checkin(connection, answer.keep_alive);
        Ok(answer)
    }

    fn checkout(&self) -> Option<Connection> {
        let mut idle = self.inner.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(mut connection) = idle.pop_back() {
            if connection.idle_since.elapsed() < IDLE_TIMEOUT && connection.is_open() {
                self.inner.metrics.idle_changed(idle.len());
                return Some(connection);
            }
        }
        self.inner.metrics.idle_changed(0);
        None
    }

    fn checkin(&self, mut connection: Connection, keep_alive: bool) {
        if !keep_alive {
            return;
        }
        // An idle connection holds no read buffer (what is left was handed
        // out with the answer's body).
        if connection.buffer.is_empty() {
            connection.buffer = BytesMut::new();
        } else {
            // Bytes beyond the answer: the connection's framing is lost.
            return;
        }
        connection.idle_since = Instant::now();
        let mut idle = self.inner.idle.lock().unwrap_or_else(|e| e.into_inner());
        while idle
            .front()
            .is_some_and(|oldest| oldest.idle_since.elapsed() >= IDLE_TIMEOUT)
        {
            idle.pop_front();
        }
        if idle.len() < MAX_IDLE_PER_BASE {
            idle.push_back(connection);
        }
        self.inner.metrics.idle_changed(idle.len());
    }

    async fn connect(&self) -> Result<Connection, ErrorKind> {
        let base = &self.inner.base;
        let connect_timeout = self.inner.connect_timeout;
        // The name is resolved apart from connecting, so that a name that does
        // not resolve (`dns`) is told from a host that refuses
        // (`connect_refused`). Both share one connect timeout, as when
        // `TcpStream::connect` resolved the name itself; a resolver that does
        // not answer within it is `dns` too: the operator's problem is the
        // resolver, not the platform's host. (An IP literal resolves at once,
        // without a resolver thread.)
        let until = Instant::now() + connect_timeout;
        let resolving = tokio::net::lookup_host((base.host.as_str(), base.port));
        let addresses: Vec<SocketAddr> = tokio::time::timeout_at(until, resolving)
            .await
            .map_err(|_| ErrorKind::ResolveTimeout)?
            .map_err(ErrorKind::resolve)?
            .collect();
        if addresses.is_empty() {
            return Err(ErrorKind::resolve(io::Error::new(
                io::ErrorKind::NotFound,
                "the name has no address",
            )));
        }
        let tcp = tokio::time::timeout_at(until, connect_to_any(&addresses))
            .await
            .map_err(|_| ErrorKind::ConnectTimeout)?
            .map_err(ErrorKind::connect)?;
        // A request is one write; waiting for an ACK before sending it helps nobody.
        tcp.set_nodelay(true).map_err(ErrorKind::connect)?;
        let stream = match &self.inner.tls {
            None => Stream::Plain(tcp),
            Some((connector, name)) => {
                let handshake = connector.connect(name.clone(), tcp);
                let tls = tokio::time::timeout(connect_timeout, handshake)
                    .await
                    .map_err(|_| ErrorKind::ConnectTimeout)?
                    .map_err(ErrorKind::tls)?;
                Stream::Tls(Box::new(tls))
            }
        };
        let mut connection = Connection::new(stream, self.inner.max_answer_bytes);
        connection.open = Some(self.inner.metrics.connection_opened());
        Ok(connection)
    }
}

/// A connection to the first of `addresses` that accepts one, in order (as
/// `TcpStream::connect` tries them); the last address's error if none does.
async fn connect_to_any(addresses: &[SocketAddr]) -> io::Result<TcpStream> {
    let mut last_error = None;
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(tcp) => return Ok(tcp),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrNotAvailable)))
}

/// What a reused connection the platform had already closed looks like: no
/// byte of an answer, then the end of the stream or a reset.
fn closed_before_answering(error: &ErrorKind, progress: &Progress) -> bool {
    if progress.answer_started {
        return false;
    }
    match error {
        ErrorKind::ClosedEarly => true,
        ErrorKind::Io(error) => matches!(
            error.kind(),
            std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::UnexpectedEof
        ),
        _ => false,
    }
}

/// Reads one answer from an in-memory platform exactly as a connection reads
/// one from a socket, for the fuzz targets (`fuzz/`): the status, the
/// headers and body, and whether the connection could carry another request.
#[cfg(feature = "fuzzing")]
pub(crate) async fn read_answer_from(
    platform: tokio::io::DuplexStream,
) -> Result<(u16, UpstreamAnswer, bool), ErrorKind> {
    let mut connection = Connection::new(Stream::Memory(platform), DEFAULT_MAX_ANSWER_BYTES);
    // An empty request: nothing is written, the answer is read as after a request.
    let answer = connection.round_trip(&[], &mut Progress::default()).await?;
    let parsed = UpstreamAnswer {
        status: answer.status,
        headers: answer.headers,
        body: answer.body,
    };
    Ok((answer.status, parsed, answer.keep_alive))
}

#[cfg(test)]
mod tests;
