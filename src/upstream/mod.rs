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
mod options;
mod proxy;

use std::{
    collections::VecDeque,
    io,
    net::SocketAddr,
    sync::{
        Arc, Mutex, OnceLock, Weak,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use tokio::{
    net::TcpStream,
    sync::{Notify, OwnedSemaphorePermit, Semaphore, TryAcquireError},
    time::Instant,
};
use tokio_rustls::{
    TlsConnector,
    rustls::{
        self,
        pki_types::{CertificateDer, PrivateKeyDer, ServerName},
    },
};

use self::connection::{Answer, Connection, Stream};
pub use self::{
    base_url::{BaseUrl, InvalidBaseUrl},
    error::{Cause, Error, ErrorKind, Progress},
    options::{OptionsError, ProxySetting, UpstreamOptions},
    proxy::no_proxy_matches,
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
/// so that gamegate, not the platform, retires an idle connection (the
/// default of `idle_timeout_ms`).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(50);
const MAX_IDLE_PER_BASE: usize = 256;
/// How often the pool's sweep looks for idle connections to close: a quarter
/// of the idle timeout, within these bounds. The sweep is what closes a
/// connection the platform closed (a socket left in CLOSE_WAIT otherwise, until
/// the next call) and one idle too long; calls never wait for it.
const SWEEP_MIN: Duration = Duration::from_millis(100);
const SWEEP_MAX: Duration = Duration::from_secs(5);
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

/// The HTTP client: what every upstream shares (the TLS configuration
/// trusting the webpki roots, built the first time an https base without a
/// `ca_file` or client certificate of its own is used).
#[derive(Clone, Default)]
pub struct UpstreamHttp {
    tls: Arc<OnceLock<TlsConnector>>,
}

impl UpstreamHttp {
    pub fn new() -> Self {
        Self::default()
    }

    /// A client trusting only `roots` (tests, private platforms) where an
    /// upstream's options name no `ca_file` of their own.
    pub fn with_root_certificates(roots: rustls::RootCertStore) -> Self {
        let http = Self::default();
        let _ = http
            .tls
            .set(tls_connector(roots, None).expect("a client without certificate builds"));
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
        self.upstream_with(base_url, max_answer_bytes, &UpstreamOptions::default())
    }

    /// The upstream at `base_url` with a platform's transport `options`
    /// (proxy, CA, client certificate, connection cap, idle timeout), the
    /// proxy variables of the process environment read now. The options were
    /// checked with the configuration ([`UpstreamOptions::check`]); should
    /// they fail here all the same (a file removed since), the error is
    /// logged in full and the base URL refused.
    pub fn upstream_with(
        &self,
        base_url: &str,
        max_answer_bytes: usize,
        options: &UpstreamOptions,
    ) -> Result<Upstream, InvalidBaseUrl> {
        let base = BaseUrl::parse(base_url)?;
        let prepared = options
            .prepare(&base, &|name| std::env::var(name).ok())
            .map_err(|error| {
                tracing::error!(
                    host = %base.host_header,
                    %error,
                    "the platform's upstream settings cannot be used"
                );
                InvalidBaseUrl {
                    url: base_url.to_string(),
                    problem: "its upstream settings (proxy, ca_file, client certificate) cannot \
                              be used: the error logged before says why",
                }
            })?;
        if let Some(proxy) = &prepared.proxy {
            tracing::info!(
                host = %base.host_header,
                proxy = %proxy.authority,
                "the platform is reached through a proxy"
            );
        }
        let tls = if base.tls {
            let connector = match prepared.tls {
                Some(own) => own,
                None => self
                    .tls
                    .get_or_init(|| {
                        tls_connector(webpki_roots(), None)
                            .expect("a client without certificate builds")
                    })
                    .clone(),
            };
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
                proxy: prepared.proxy,
                idle_timeout: options.idle_timeout,
                slots: options
                    .max_connections
                    .map(|max| Arc::new(Semaphore::new(max.min(Semaphore::MAX_PERMITS)))),
                waiting: AtomicUsize::new(0),
                checked_in: Notify::new(),
                sweeping: AtomicBool::new(false),
            }),
        })
    }
}

/// The webpki roots (Mozilla's), what a platform without a `ca_file` is
/// trusted by.
fn webpki_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    roots
}

/// A TLS client trusting `roots`, showing `client` (a certificate chain and
/// its key) to servers that ask for one. Fails only for a client certificate
/// that cannot be used (its key not the certificate's, or of no supported
/// kind).
fn tls_connector(
    roots: rustls::RootCertStore,
    client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<TlsConnector, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots);
    let mut config = match client {
        None => builder.with_no_client_auth(),
        Some((chain, key)) => builder.with_client_auth_cert(chain, key)?,
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// One call to send: everything but the platform's base URL.
pub struct UpstreamCall<'a> {
    pub method: Method,
    /// Path and query after the base URL's prefix, already percent-encoded.
    pub target: &'a str,
    pub body: Option<OutgoingBody>,
    pub headers: &'a [(&'a str, &'a str)],
    /// Whether the call is a read. The client never sends a call twice itself:
    /// a failure on a stale pooled connection says so
    /// ([`Error::is_stale_connection`]) and the retry policy resends reads.
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
    /// The proxy calls go through: a `CONNECT` tunnel for an https base,
    /// absolute-form requests for an http one.
    proxy: Option<proxy::Proxy>,
    /// An idle connection older than this is closed, not reused.
    idle_timeout: Duration,
    /// One permit per connection that may be open (`max_connections`), held
    /// by each open connection (in its metrics guard) until it is dropped;
    /// `None`: no cap.
    slots: Option<Arc<Semaphore>>,
    /// Calls waiting for a slot, and how a checked-in connection wakes them
    /// (it is theirs to take: it holds a slot already). Touched only with a cap.
    waiting: AtomicUsize,
    checked_in: Notify,
    /// Whether the sweep of idle connections runs (started by the first
    /// connection pooled; it ends when the upstream is dropped).
    sweeping: AtomicBool,
}

/// A call over the connection cap: what it got once it waited.
enum Slot {
    /// A slot of its own: open a connection.
    Granted(Option<OwnedSemaphorePermit>),
    /// A connection another call checked in meanwhile.
    Pooled(Connection),
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
        // The exchange borrows `progress` (and `reused`); once the timer drops
        // the exchange, what it recorded tells whether the request had been
        // written and whether an answer had begun.
        let mut reused = false;
        let exchanged = tokio::time::timeout_at(
            call.deadline,
            self.exchange(&request, &mut progress, &mut reused),
        )
        .await;
        if progress.request_written {
            self.inner.metrics.sent(request.len());
        }
        let answer = match exchanged {
            Err(_) => return Err(self.error(ErrorKind::Timeout, progress)),
            Ok(Err(kind)) => {
                // Told, not acted on: the caller's retry policy resends a read
                // within its attempts and budget (`call.idempotent` is its
                // business, not the client's).
                let stale = reused && closed_before_answering(&kind, &progress);
                return Err(self.error(kind, progress).with_stale_connection(stale));
            }
            Ok(Ok(answer)) => answer,
        };
        self.inner.metrics.received(answer.body.len());
        if !(200..300).contains(&answer.status) {
            let retry_after = answer
                .headers
                .get(http::header::RETRY_AFTER)
                .and_then(|value| {
                    error::retry_after_delay(value.as_bytes(), std::time::SystemTime::now())
                });
            return Err(self
                .error(ErrorKind::Status(answer.status), progress)
                .with_retry_after(retry_after));
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
        // Through a proxy, an http base's requests are in absolute form
        // (RFC 9112 3.2.2), with the proxy's credentials; an https base's go
        // in a tunnel, as to the platform itself.
        let proxied = self.inner.proxy.as_ref().filter(|_| !base.tls);
        let scheme: &[u8] = if proxied.is_some() { b"http://" } else { b"" };
        let authority: &[u8] = if proxied.is_some() {
            base.host_header.as_bytes()
        } else {
            b""
        };
        put(&[
            call.method.as_str().as_bytes(),
            b" ",
            scheme,
            authority,
            base.prefix.as_bytes(),
            call.target.as_bytes(),
            b" HTTP/1.1\r\nhost: ",
            base.host_header.as_bytes(),
            b"\r\nuser-agent: ",
            USER_AGENT.as_bytes(),
            b"\r\n",
        ]);
        if let Some(authorization) = proxied.and_then(|proxy| proxy.authorization.as_ref()) {
            use secrecy::ExposeSecret;
            put(&[
                b"proxy-authorization: ",
                authorization.expose_secret().as_bytes(),
                b"\r\n",
            ]);
        }
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

    /// One request on one connection, pooled (`reused` is then set) or new.
    /// Never sent twice: a pooled connection the platform had closed fails
    /// the exchange (and is dropped), and [`Error::is_stale_connection`] tells
    /// the caller, whose retry policy counts every send.
    async fn exchange(
        &self,
        request: &[u8],
        progress: &mut Progress,
        reused: &mut bool,
    ) -> Result<Answer, ErrorKind> {
        let mut connection = match self.checkout() {
            Some(connection) => {
                *reused = true;
                connection
            }
            None => self.connect().await?,
        };
        let answer = connection.round_trip(request, progress).await?;
        self.checkin(connection, answer.keep_alive);
        Ok(answer)
    }

    /// The most recently used idle connection that can still carry a
    /// request. Those found closed or too old on the way are closed outside
    /// the pool's lock.
    fn checkout(&self) -> Option<Connection> {
        let mut dead = Vec::new();
        let found = {
            let mut idle = self.inner.idle.lock().unwrap_or_else(|e| e.into_inner());
            let mut found = None;
            while let Some(mut connection) = idle.pop_back() {
                if connection.idle_since.elapsed() < self.inner.idle_timeout && connection.is_open()
                {
                    found = Some(connection);
                    break;
                }
                dead.push(connection);
            }
            self.inner.metrics.idle_changed(idle.len());
            found
        };
        drop(dead);
        found
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
        if !self.inner.sweeping.load(Ordering::Relaxed) {
            self.start_sweeping();
        }
        connection.idle_since = Instant::now();
        let mut refused = None;
        let mut expired = Vec::new();
        {
            let mut idle = self.inner.idle.lock().unwrap_or_else(|e| e.into_inner());
            while idle
                .front()
                .is_some_and(|oldest| oldest.idle_since.elapsed() >= self.inner.idle_timeout)
            {
                expired.extend(idle.pop_front());
            }
            if idle.len() < MAX_IDLE_PER_BASE {
                idle.push_back(connection);
            } else {
                refused = Some(connection);
            }
            self.inner.metrics.idle_changed(idle.len());
        }
        // Closed outside the lock: a TLS close_notify is a write.
        drop((refused, expired));
        if self.inner.slots.is_some() && self.inner.waiting.load(Ordering::Acquire) > 0 {
            self.inner.checked_in.notify_waiters();
        }
    }

    /// Starts the sweep of this pool's idle connections: a task holding only
    /// a weak reference, so that it ends with the upstream. Every
    /// [`sweep_period`] it closes the idle connections the platform closed
    /// (no CLOSE_WAIT socket lingers until the next call) or idle for longer
    /// than the idle timeout. Without a runtime (an upstream used outside
    /// one) nothing is swept; calls still skip such connections.
    fn start_sweeping(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.inner.sweeping.swap(true, Ordering::Relaxed) {
            return;
        }
        let pool = Arc::downgrade(&self.inner);
        let period = sweep_period(self.inner.idle_timeout);
        runtime.spawn(sweep(pool, period));
    }

    /// A slot for a new connection, or, over the cap, what frees first: a
    /// slot (a connection closed) or an idle connection checked in. Waits as
    /// long as the call's deadline lets it (the exchange runs under it).
    async fn slot(&self) -> Slot {
        let Some(slots) = &self.inner.slots else {
            return Slot::Granted(None);
        };
        loop {
            match slots.clone().try_acquire_owned() {
                Ok(permit) => return Slot::Granted(Some(permit)),
                Err(TryAcquireError::Closed) => return Slot::Granted(None),
                Err(TryAcquireError::NoPermits) => {}
            }
            let waiting = Waiting::new(&self.inner.waiting);
            let checked_in = self.inner.checked_in.notified();
            // Registered before looking, so that a check-in after the look wakes it.
            if let Some(connection) = self.checkout() {
                return Slot::Pooled(connection);
            }
            tokio::select! {
                permit = slots.clone().acquire_owned() => {
                    return Slot::Granted(permit.ok());
                }
                () = checked_in => {}
            }
            drop(waiting);
            if let Some(connection) = self.checkout() {
                return Slot::Pooled(connection);
            }
        }
    }

    async fn connect(&self) -> Result<Connection, ErrorKind> {
        let slot = match self.slot().await {
            Slot::Pooled(connection) => return Ok(connection),
            Slot::Granted(slot) => slot,
        };
        let base = &self.inner.base;
        let proxy = self.inner.proxy.as_ref();
        let connect_timeout = self.inner.connect_timeout;
        // Through a proxy, the proxy's name is resolved and connected to, and
        // the errors name it (the platform's name is the proxy's to resolve).
        let (host, port) = match proxy {
            Some(proxy) => (proxy.host.as_str(), proxy.port),
            None => (base.host.as_str(), base.port),
        };
        let named = |error: io::Error| match proxy {
            Some(proxy) => proxy.named(error),
            None => error,
        };
        // The name is resolved apart from connecting, so that a name that does
        // not resolve (`dns`) is told from a host that refuses
        // (`connect_refused`). Both share one connect timeout, as when
        // `TcpStream::connect` resolved the name itself; a resolver that does
        // not answer within it is `dns` too: the operator's problem is the
        // resolver, not the platform's host. (An IP literal resolves at once,
        // without a resolver thread.)
        let until = Instant::now() + connect_timeout;
        let resolving = tokio::net::lookup_host((host, port));
        let addresses: Vec<SocketAddr> = tokio::time::timeout_at(until, resolving)
            .await
            .map_err(|_| ErrorKind::ResolveTimeout)?
            .map_err(|error| ErrorKind::resolve(named(error)))?
            .collect();
        if addresses.is_empty() {
            return Err(ErrorKind::resolve(named(io::Error::new(
                io::ErrorKind::NotFound,
                "the name has no address",
            ))));
        }
        let mut tcp = tokio::time::timeout_at(until, connect_to_any(&addresses))
            .await
            .map_err(|_| ErrorKind::ConnectTimeout)?
            .map_err(|error| ErrorKind::connect(named(error)))?;
        // A request is one write; waiting for an ACK before sending it helps nobody.
        tcp.set_nodelay(true).map_err(ErrorKind::connect)?;
        let stream = match &self.inner.tls {
            None => Stream::Plain(tcp),
            Some((connector, name)) => {
                if let Some(proxy) = proxy {
                    let target = if base.host.contains(':') {
                        format!("[{}]:{}", base.host, base.port)
                    } else {
                        format!("{}:{}", base.host, base.port)
                    };
                    proxy
                        .tunnel(&mut tcp, &target, until)
                        .await
                        .map_err(|error| match error {
                            proxy::TunnelError::Refused(error) => ErrorKind::connect(error),
                            proxy::TunnelError::Timeout => ErrorKind::ConnectTimeout,
                        })?;
                }
                let handshake = connector.connect(name.clone(), tcp);
                let tls = tokio::time::timeout(connect_timeout, handshake)
                    .await
                    .map_err(|_| ErrorKind::ConnectTimeout)?
                    .map_err(ErrorKind::tls)?;
                Stream::Tls(Box::new(tls))
            }
        };
        let mut connection = Connection::new(stream, self.inner.max_answer_bytes);
        let open = self.inner.metrics.connection_opened();
        connection.open = Some(match slot {
            Some(slot) => open.holding(slot),
            None => open,
        });
        Ok(connection)
    }
}

/// Counts a call waiting for a connection slot while it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn sweep_period(idle_timeout: Duration) -> Duration {
    (idle_timeout / 4).clamp(SWEEP_MIN, SWEEP_MAX)
}

/// The sweep of one pool (see [`Upstream::start_sweeping`]).
async fn sweep(pool: Weak<UpstreamInner>, period: Duration) {
    let mut ticks = tokio::time::interval_at(Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(inner) = pool.upgrade() else {
            return;
        };
        let reaped = inner.reap();
        drop(inner);
        // Closed outside the lock, and without holding the upstream.
        drop(reaped);
    }
}

impl UpstreamInner {
    /// Takes out of the pool the idle connections closed by the platform
    /// (or holding bytes nobody asked for) and those idle too long.
    fn reap(&self) -> Vec<Connection> {
        let mut reaped = Vec::new();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let mut index = 0;
        while index < idle.len() {
            let connection = &mut idle[index];
            if connection.idle_since.elapsed() >= self.idle_timeout || !connection.is_open() {
                reaped.extend(idle.remove(index));
            } else {
                index += 1;
            }
        }
        if !reaped.is_empty() {
            self.metrics.idle_changed(idle.len());
        }
        reaped
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
/// byte of an answer, then the end of the stream or a reset (while the
/// request was written, or after). A deadline is not: a platform that keeps
/// the connection open and silent is slow, not gone.
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
mod pool_tests;
#[cfg(test)]
mod tests;
