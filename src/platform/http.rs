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

use std::{
    collections::VecDeque,
    io,
    pin::Pin,
    sync::{Arc, Mutex, OnceLock},
    task::{Context, Poll, Waker},
    time::Duration,
};

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value as Json};
use thiserror::Error;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::TcpStream,
    time::Instant,
};
use tokio_rustls::{
    TlsConnector,
    client::TlsStream,
    rustls::{self, pki_types::ServerName},
};

use crate::{
    errors::GatewayError,
    proto::Platform,
    routes::{Method, Route},
};

const USER_AGENT: &str = concat!("gamegate/", env!("CARGO_PKG_VERSION"));
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Below the keep-alive timeouts platforms' front ends commonly use (nginx: 60-75 s),
/// so that gamegate, not the platform, retires an idle connection.
const IDLE_TIMEOUT: Duration = Duration::from_secs(50);
const MAX_IDLE_PER_BASE: usize = 256;
/// First read buffer of an exchange; an answer head plus a small JSON body fit.
const FIRST_READ: usize = 2048;
const MAX_HEAD_BYTES: usize = 64 * 1024;
const MAX_HEADERS: usize = 64;
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// A body to send and its content type.
pub struct OutgoingBody {
    pub bytes: Bytes,
    pub content_type: &'static str,
}

/// A 2xx answer: its headers and body.
pub struct UpstreamAnswer {
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// What went wrong between gamegate and a platform below HTTP semantics. The
/// texts never hold the URL, a header value or a body.
#[derive(Debug, Error)]
pub enum TransportError {
    #[error("cannot connect: {0}")]
    Connect(#[source] io::Error),
    #[error("connecting took longer than {} ms", CONNECT_TIMEOUT.as_millis())]
    ConnectTimeout,
    #[error("tls handshake failed: {0}")]
    Tls(#[source] io::Error),
    #[error("the connection failed: {0}")]
    Io(#[source] io::Error),
    #[error("the connection closed before the answer was complete")]
    Closed,
    #[error("the answer is not valid http/1.1: {0}")]
    Protocol(&'static str),
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the request cannot be written: {0}")]
    InvalidRequest(&'static str),
}

impl TransportError {
    /// Nothing of an answer arrived: what a reused connection the platform had
    /// already closed looks like.
    fn nothing_received(&self) -> bool {
        match self {
            TransportError::Closed => true,
            TransportError::Io(error) => matches!(
                error.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::UnexpectedEof
            ),
            _ => false,
        }
    }
}

/// A base URL gamegate cannot use.
#[derive(Debug, Error)]
#[error("base_url {url:?}: {problem}")]
pub struct InvalidBaseUrl {
    pub url: String,
    pub problem: &'static str,
}

/// The parts of a platform base URL (`http[s]://host[:port][/prefix]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    pub tls: bool,
    /// Without brackets for IPv6 (what a socket address and SNI need).
    pub host: String,
    pub port: u16,
    /// The `Host` header: the authority as written, without a default port.
    pub host_header: String,
    /// The path before every endpoint, without a trailing `/` ("" for none).
    pub prefix: String,
}

impl BaseUrl {
    pub fn parse(url: &str) -> Result<Self, InvalidBaseUrl> {
        let invalid = |problem| InvalidBaseUrl {
            // A base URL with user info may hold a password: not repeated in errors.
            url: if url.contains('@') {
                "(not shown: it holds user info)".into()
            } else {
                url.to_string()
            },
            problem,
        };
        let uri: http::Uri = url.parse().map_err(|_| invalid("not a url"))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(invalid("the scheme must be http or https")),
        };
        if uri.query().is_some() {
            return Err(invalid("a base url takes no query"));
        }
        let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
        if authority.as_str().contains('@') {
            return Err(invalid("credentials in a base url are not supported"));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            return Err(invalid("no host"));
        }
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let default_port = port == if tls { 443 } else { 80 };
        let host_header = if default_port {
            authority.host().to_string()
        } else {
            format!("{}:{port}", authority.host())
        };
        Ok(BaseUrl {
            tls,
            host: host.to_string(),
            port,
            host_header,
            prefix: uri.path().trim_end_matches('/').to_string(),
        })
    }
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

    /// The upstream at `base_url`, with its own connection pool.
    pub fn upstream(&self, base_url: &str) -> Result<Upstream, InvalidBaseUrl> {
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
        Ok(Upstream {
            inner: Arc::new(UpstreamInner {
                base,
                tls,
                idle: Mutex::new(VecDeque::new()),
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
    pub platform: Platform,
    /// The route's path, for errors and logs (never the target: it holds secrets).
    pub endpoint: &'a str,
    pub method: Method,
    /// Path and query after the base URL's prefix, already percent-encoded.
    pub target: &'a str,
    pub body: Option<OutgoingBody>,
    pub headers: &'a [(&'a str, &'a str)],
    /// A read may be sent again when a reused connection turns out closed.
    pub idempotent: bool,
    pub deadline: Instant,
}

impl<'a> UpstreamCall<'a> {
    /// A call of a declared route: its path, method and idempotence, no extra headers.
    pub fn route(
        platform: Platform,
        route: &'a Route,
        target: &'a str,
        body: Option<OutgoingBody>,
        deadline: Instant,
    ) -> Self {
        UpstreamCall {
            platform,
            endpoint: &route.path,
            method: route.method,
            target,
            body,
            headers: &[],
            idempotent: route.idempotent,
            deadline,
        }
    }
}

/// One platform base URL and its pool of idle keep-alive connections.
#[derive(Clone)]
pub struct Upstream {
    inner: Arc<UpstreamInner>,
}

struct UpstreamInner {
    base: BaseUrl,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    /// Oldest at the front; calls take the most recently used.
    idle: Mutex<VecDeque<Connection>>,
}

impl Upstream {
    /// Sends one request and returns a 2xx answer, within `call.deadline`.
    pub async fn send(&self, call: UpstreamCall<'_>) -> Result<UpstreamAnswer, GatewayError> {
        let now = Instant::now();
        let timeout = |budget: Duration| GatewayError::Timeout {
            platform: call.platform,
            endpoint: call.endpoint.to_string(),
            budget,
        };
        if call.deadline <= now {
            return Err(timeout(Duration::ZERO));
        }
        let unreachable = |source| GatewayError::Unreachable {
            platform: call.platform,
            endpoint: call.endpoint.to_string(),
            source,
        };
        let request = self.request_bytes(&call).map_err(unreachable)?;
        let answer =
            match tokio::time::timeout_at(call.deadline, self.exchange(&request, call.idempotent))
                .await
            {
                Err(_) => return Err(timeout(call.deadline - now)),
                Ok(Err(error)) => return Err(unreachable(error)),
                Ok(Ok(answer)) => answer,
            };
        if !(200..300).contains(&answer.status) {
            return Err(GatewayError::HttpStatus {
                platform: call.platform,
                endpoint: call.endpoint.to_string(),
                status: answer.status,
            });
        }
        Ok(UpstreamAnswer {
            headers: answer.headers,
            body: answer.body,
        })
    }

    /// The request head and body, in one buffer (one write, one TLS record).
    fn request_bytes(&self, call: &UpstreamCall<'_>) -> Result<Vec<u8>, TransportError> {
        // Targets are built from declared paths and percent-encoded values; a
        // space or control character would let a value rewrite the request.
        let unsafe_text = |text: &str| text.bytes().any(|b| b < b' ' || b == 0x7f);
        if !call.target.starts_with('/') || call.target.contains(' ') || unsafe_text(call.target) {
            return Err(TransportError::InvalidRequest("the target is not a path"));
        }
        if call
            .headers
            .iter()
            .any(|(name, value)| unsafe_text(name) || unsafe_text(value))
        {
            return Err(TransportError::InvalidRequest(
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

    async fn exchange(&self, request: &[u8], idempotent: bool) -> Result<Answer, TransportError> {
        if let Some(mut connection) = self.checkout() {
            match connection.round_trip(request).await {
                Ok(answer) => {
                    self.checkin(connection, answer.keep_alive);
                    return Ok(answer);
                }
                // The platform closed this connection while it sat idle and the
                // close crossed our request: a read may go again on a new one.
                Err(error) if idempotent && error.nothing_received() => {
                    tracing::debug!(%error, "a reused connection was closed; sending on a new one");
                }
                Err(error) => return Err(error),
            }
        }
        let mut connection = self.connect().await?;
        let answer = connection.round_trip(request).await?;
        self.checkin(connection, answer.keep_alive);
        Ok(answer)
    }

    fn checkout(&self) -> Option<Connection> {
        let mut idle = self.inner.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(mut connection) = idle.pop_back() {
            if connection.idle_since.elapsed() < IDLE_TIMEOUT && connection.is_open() {
                return Some(connection);
            }
        }
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
    }

    async fn connect(&self) -> Result<Connection, TransportError> {
        let base = &self.inner.base;
        let connecting = TcpStream::connect((base.host.as_str(), base.port));
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| TransportError::ConnectTimeout)?
            .map_err(TransportError::Connect)?;
        // A request is one write; waiting for an ACK before sending it helps nobody.
        tcp.set_nodelay(true).map_err(TransportError::Connect)?;
        let stream = match &self.inner.tls {
            None => Stream::Plain(tcp),
            Some((connector, name)) => {
                let handshake = connector.connect(name.clone(), tcp);
                let tls = tokio::time::timeout(CONNECT_TIMEOUT, handshake)
                    .await
                    .map_err(|_| TransportError::ConnectTimeout)?
                    .map_err(TransportError::Tls)?;
                Stream::Tls(Box::new(tls))
            }
        };
        Ok(Connection {
            stream,
            buffer: BytesMut::new(),
            idle_since: Instant::now(),
        })
    }
}

/// A parsed answer, whatever its status.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
    keep_alive: bool,
}

/// How an answer's body is delimited.
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

struct Connection {
    stream: Stream,
    /// Bytes read and not yet consumed; empty (no allocation) while idle.
    buffer: BytesMut,
    idle_since: Instant,
}

impl Connection {
    /// Whether an idle connection can carry a request: nothing to read yet. A
    /// platform that closed it has sent a FIN (a read of 0), and bytes nobody
    /// asked for mean its framing is lost.
    fn is_open(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        let mut probe = [0u8; 1];
        let mut probe = ReadBuf::new(&mut probe);
        matches!(
            Pin::new(&mut self.stream).poll_read(&mut cx, &mut probe),
            Poll::Pending
        )
    }

    async fn round_trip(&mut self, request: &[u8]) -> Result<Answer, TransportError> {
        self.stream
            .write_all(request)
            .await
            .map_err(TransportError::Io)?;
        self.stream.flush().await.map_err(TransportError::Io)?;
        self.read_answer().await
    }

    /// Reads more bytes into the buffer; 0 at the end of the stream.
    async fn fill(&mut self) -> Result<usize, TransportError> {
        if self.buffer.capacity() == 0 {
            // Allocate only once the answer starts to arrive: a call waiting
            // for a slow platform holds no buffer.
            if let Stream::Plain(tcp) = &self.stream {
                tcp.readable().await.map_err(TransportError::Io)?;
            }
            self.buffer.reserve(FIRST_READ);
        } else if self.buffer.capacity() == self.buffer.len() {
            self.buffer.reserve(self.buffer.len().max(FIRST_READ));
        }
        self.stream
            .read_buf(&mut self.buffer)
            .await
            .map_err(TransportError::Io)
    }

    async fn fill_or_closed(&mut self) -> Result<(), TransportError> {
        match self.fill().await? {
            0 => Err(TransportError::Closed),
            _ => Ok(()),
        }
    }

    async fn read_answer(&mut self) -> Result<Answer, TransportError> {
        loop {
            let (status, headers, framing, keep_alive) = self.read_head().await?;
            // 1xx answers (100 Continue, 103 Early Hints) precede the real one.
            if (100..200).contains(&status) && status != 101 {
                continue;
            }
            if status == 101 {
                return Err(TransportError::Protocol("unexpected protocol switch"));
            }
            let body = match framing {
                Framing::Length(length) => self.read_length(length).await?,
                Framing::Chunked => self.read_chunked().await?,
                Framing::UntilClose => {
                    while self.fill().await? > 0 {
                        if self.buffer.len() > MAX_BODY_BYTES {
                            return Err(TransportError::TooLarge(MAX_BODY_BYTES));
                        }
                    }
                    self.buffer.split().freeze()
                }
            };
            let keep_alive = keep_alive && !matches!(framing, Framing::UntilClose);
            return Ok(Answer {
                status,
                headers,
                body,
                keep_alive,
            });
        }
    }

    /// Status, headers, body framing and whether the connection stays open.
    async fn read_head(&mut self) -> Result<(u16, HeaderMap, Framing, bool), TransportError> {
        loop {
            if !self.buffer.is_empty() {
                let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut response = httparse::Response::new(&mut slots);
                match response.parse(&self.buffer) {
                    Ok(httparse::Status::Complete(head_len)) => {
                        let head = parse_head(&response)?;
                        self.buffer.advance(head_len);
                        return Ok(head);
                    }
                    Ok(httparse::Status::Partial) => {}
                    Err(httparse::Error::TooManyHeaders) => {
                        return Err(TransportError::Protocol("too many headers"));
                    }
                    Err(_) => return Err(TransportError::Protocol("malformed answer head")),
                }
                if self.buffer.len() >= MAX_HEAD_BYTES {
                    return Err(TransportError::TooLarge(MAX_HEAD_BYTES));
                }
            }
            self.fill_or_closed().await?;
        }
    }

    async fn read_length(&mut self, length: usize) -> Result<Bytes, TransportError> {
        if length > MAX_BODY_BYTES {
            return Err(TransportError::TooLarge(MAX_BODY_BYTES));
        }
        if self.buffer.capacity() < length {
            self.buffer.reserve(length - self.buffer.len());
        }
        while self.buffer.len() < length {
            self.fill_or_closed().await?;
        }
        Ok(self.buffer.split_to(length).freeze())
    }

    async fn read_chunked(&mut self) -> Result<Bytes, TransportError> {
        let mut body = BytesMut::new();
        loop {
            let (consumed, size) = match httparse::parse_chunk_size(&self.buffer) {
                Ok(httparse::Status::Complete(sized)) => sized,
                Ok(httparse::Status::Partial) => {
                    if self.buffer.len() > 1024 {
                        return Err(TransportError::Protocol("chunk size line too long"));
                    }
                    self.fill_or_closed().await?;
                    continue;
                }
                Err(_) => return Err(TransportError::Protocol("malformed chunk size")),
            };
            self.buffer.advance(consumed);
            let size = usize::try_from(size).unwrap_or(usize::MAX);
            if size == 0 {
                self.skip_trailers().await?;
                return Ok(body.freeze());
            }
            if size > MAX_BODY_BYTES - body.len() {
                return Err(TransportError::TooLarge(MAX_BODY_BYTES));
            }
            while self.buffer.len() < size + 2 {
                self.fill_or_closed().await?;
            }
            if &self.buffer[size..size + 2] != b"\r\n" {
                return Err(TransportError::Protocol("chunk not followed by crlf"));
            }
            body.extend_from_slice(&self.buffer[..size]);
            self.buffer.advance(size + 2);
        }
    }

    /// The trailer section after the last chunk, up to its empty line.
    async fn skip_trailers(&mut self) -> Result<(), TransportError> {
        loop {
            match self.buffer.windows(2).position(|w| w == b"\r\n") {
                Some(0) => {
                    self.buffer.advance(2);
                    return Ok(());
                }
                Some(line) => self.buffer.advance(line + 2),
                None if self.buffer.len() >= MAX_HEAD_BYTES => {
                    return Err(TransportError::TooLarge(MAX_HEAD_BYTES));
                }
                None => self.fill_or_closed().await?,
            }
        }
    }
}

fn parse_head(
    response: &httparse::Response<'_, '_>,
) -> Result<(u16, HeaderMap, Framing, bool), TransportError> {
    let status = response.code.ok_or(TransportError::Protocol("no status"))?;
    let http11 = response.version == Some(1);
    let mut headers = HeaderMap::with_capacity(response.headers.len());
    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    let mut transfer_encoded = false;
    let mut close = !http11;
    for header in response.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes())
            .map_err(|_| TransportError::Protocol("invalid header name"))?;
        let value = HeaderValue::from_bytes(header.value)
            .map_err(|_| TransportError::Protocol("invalid header value"))?;
        if name == http::header::CONTENT_LENGTH {
            let length = std::str::from_utf8(header.value)
                .ok()
                .and_then(|text| text.trim().parse::<usize>().ok())
                .ok_or(TransportError::Protocol("invalid content-length"))?;
            if content_length.is_some_and(|seen| seen != length) {
                return Err(TransportError::Protocol("conflicting content-length"));
            }
            content_length = Some(length);
        } else if name == http::header::TRANSFER_ENCODING {
            transfer_encoded = true;
            // Chunked must be the last coding applied.
            chunked = header
                .value
                .rsplit(|b| *b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name == http::header::CONNECTION {
            for token in header.value.split(|b| *b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && !http11 {
                    close = false;
                }
            }
        }
        headers.append(name, value);
    }
    let framing = if matches!(status, 204 | 304) || (100..200).contains(&status) {
        Framing::Length(0)
    } else if transfer_encoded {
        // RFC 9112 6.3: transfer-encoding wins over content-length.
        if chunked {
            Framing::Chunked
        } else {
            Framing::UntilClose
        }
    } else if let Some(length) = content_length {
        Framing::Length(length)
    } else {
        Framing::UntilClose
    };
    Ok((status, headers, framing, !close))
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Parses an answer that must be a JSON object.
pub fn json_object(
    platform: Platform,
    endpoint: &str,
    bytes: &[u8],
) -> Result<Map<String, Json>, GatewayError> {
    match serde_json::from_slice::<Json>(bytes) {
        Ok(Json::Object(object)) => Ok(object),
        Ok(_) => Err(GatewayError::Malformed {
            platform,
            endpoint: endpoint.to_string(),
            detail: "the answer is json but not an object".into(),
        }),
        Err(error) => Err(GatewayError::Malformed {
            platform,
            endpoint: endpoint.to_string(),
            detail: format!("the answer is not json: {error}"),
        }),
    }
}

/// Parses an answer whose envelope carries its result code in `code_member`
/// (`errcode`, `ret`): the JSON object and that code (0 = success).
pub fn enveloped(
    platform: Platform,
    endpoint: &str,
    bytes: &[u8],
    code_member: &str,
) -> Result<(Map<String, Json>, i64), GatewayError> {
    let answer = json_object(platform, endpoint, bytes)?;
    match envelope_code(&answer, code_member) {
        Some(code) => Ok((answer, code)),
        None => Err(GatewayError::Malformed {
            platform,
            endpoint: endpoint.to_string(),
            detail: format!("{code_member} is not an integer"),
        }),
    }
}

/// Reads an integer envelope member (`errcode`, `ret`) leniently: a number or a
/// string holding one. Absent means 0.
pub fn envelope_code(object: &Map<String, Json>, name: &str) -> Option<i64> {
    match object.get(name) {
        None | Some(Json::Null) => Some(0),
        Some(Json::Number(n)) => n.as_i64(),
        Some(Json::String(s)) if s.trim().is_empty() => Some(0),
        Some(Json::String(s)) => s.trim().parse().ok(),
        Some(_) => None,
    }
}

/// Reads a text envelope member (`errmsg`, `msg`), whatever its JSON type.
pub fn envelope_text(object: &Map<String, Json>, names: &[&str]) -> String {
    for name in names {
        match object.get(*name) {
            Some(Json::String(s)) => return s.clone(),
            Some(Json::Null) | None => continue,
            Some(other) => return other.to_string(),
        }
    }
    String::new()
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
