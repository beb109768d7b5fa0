//! What can go wrong between gamegate and a platform below the platform's own
//! semantics, and how far the exchange got before it did.
//!
//! The layers above decide with these facts alone: a read may be sent again,
//! a write that never left gamegate may be retried by its caller, a write whose
//! request was written and whose answer never arrived whole may have been
//! applied. So every error keeps whether any byte of the request was written and
//! whether a complete answer arrived. The texts never hold the URL, a header
//! value or a body (upstream URLs carry access tokens and openkeys).
//!
//! For the operator, every transport failure also names the host gamegate was
//! talking to (the base URL's authority, never its path or a query) and a
//! [`Cause`]: one of a fixed set of classes, fit for a metric label.
//!
//! The client itself never sends a request twice: a reused connection that
//! the platform had closed is reported ([`Error::is_stale_connection`]), and
//! the caller's retry policy, which counts attempts and holds the retry
//! budget, decides whether to send again.

use std::{
    io,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use thiserror::Error;

use super::CONNECT_TIMEOUT;

/// Why an exchange failed below HTTP, in one word an operator (and a metric
/// label, an ErrorInfo `cause`) can act on. A complete answer with a non-2xx
/// status is not a transport failure and has no cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cause {
    /// The host name did not resolve: no such name, no address, or no answer
    /// from the resolver within the connect timeout.
    Dns,
    /// The TCP connection was refused, or the network said at once that the
    /// host cannot be reached (unreachable network or host, no local address,
    /// not permitted): nothing was sent.
    ConnectRefused,
    /// Opening the TCP connection or its TLS session took longer than the
    /// connect timeout (no answer to the SYN: a full backlog, a firewall that
    /// drops, a host that is down), or the system gave up connecting.
    ConnectTimeout,
    /// The TLS handshake failed (a certificate not trusted or not for this
    /// host, no common protocol, an alert, the peer leaving mid-handshake), or
    /// a TLS record of an open session could not be read.
    Tls,
    /// An open connection was broken under the exchange: reset, aborted, a
    /// broken pipe, or lost by the network.
    Reset,
    /// The platform closed the connection (a clean end of stream) before its
    /// answer was complete, whether or not the answer had started.
    ClosedEarly,
    /// The call's deadline passed before any byte of the request was written
    /// (while connecting, or already past when the call was made).
    TimeoutBeforeSend,
    /// The call's deadline passed after the request was written, before the
    /// whole answer arrived.
    TimeoutAfterSend,
    /// The answer arrived but is not valid HTTP/1.1 within the limits: bad
    /// framing, a malformed head, an answer over the size limit.
    MalformedAnswer,
}

impl Cause {
    /// Every cause, in declaration order (for metrics that pre-register labels).
    pub const ALL: [Cause; 9] = [
        Cause::Dns,
        Cause::ConnectRefused,
        Cause::ConnectTimeout,
        Cause::Tls,
        Cause::Reset,
        Cause::ClosedEarly,
        Cause::TimeoutBeforeSend,
        Cause::TimeoutAfterSend,
        Cause::MalformedAnswer,
    ];

    /// The snake_case name: a metric label value and the ErrorInfo `cause`
    /// metadata. Part of the API: never renamed.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Dns => "dns",
            Cause::ConnectRefused => "connect_refused",
            Cause::ConnectTimeout => "connect_timeout",
            Cause::Tls => "tls",
            Cause::Reset => "reset",
            Cause::ClosedEarly => "closed_early",
            Cause::TimeoutBeforeSend => "timeout_before_send",
            Cause::TimeoutAfterSend => "timeout_after_send",
            Cause::MalformedAnswer => "malformed_answer",
        }
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which step of an exchange failed.
#[derive(Debug, Clone, Error)]
pub enum ErrorKind {
    /// The host name did not resolve (no such name, no address).
    #[error("cannot resolve the host: {0}")]
    Resolve(#[source] Arc<io::Error>),
    /// The resolver did not answer within the connect timeout.
    #[error("resolving the host took longer than {} ms", CONNECT_TIMEOUT.as_millis())]
    ResolveTimeout,
    /// No TCP connection could be opened to any address of the host
    /// (refused, unreachable).
    #[error("cannot connect: {0}")]
    Connect(#[source] Arc<io::Error>),
    /// Opening the connection or its TLS session took too long.
    #[error("connecting took longer than {} ms", CONNECT_TIMEOUT.as_millis())]
    ConnectTimeout,
    #[error("tls handshake failed: {0}")]
    Tls(#[source] Arc<io::Error>),
    /// The call's deadline passed; [`Error::request_written`] says whether the
    /// request had been written by then.
    #[error("no answer before the deadline")]
    Timeout,
    /// The connection failed while the request was written or the answer read.
    #[error("the connection failed: {0}")]
    Io(#[source] Arc<io::Error>),
    /// The platform closed the connection before its answer was complete.
    #[error("the connection closed before the answer was complete")]
    ClosedEarly,
    #[error("the answer is not valid http/1.1: {0}")]
    Protocol(&'static str),
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    /// A complete answer whose status is not 2xx.
    #[error("the platform answered http status {0}")]
    Status(u16),
    /// The request itself cannot be written (nothing was sent).
    #[error("the request cannot be written: {0}")]
    InvalidRequest(&'static str),
}

impl ErrorKind {
    pub(super) fn resolve(error: io::Error) -> Self {
        ErrorKind::Resolve(Arc::new(error))
    }

    pub(super) fn io(error: io::Error) -> Self {
        ErrorKind::Io(Arc::new(error))
    }

    pub(super) fn connect(error: io::Error) -> Self {
        ErrorKind::Connect(Arc::new(error))
    }

    pub(super) fn tls(error: io::Error) -> Self {
        ErrorKind::Tls(Arc::new(error))
    }
}

/// How far one exchange got (one request on one connection: the client never
/// sends it again itself).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// At least one byte of the request was handed to the connection.
    pub request_written: bool,
    /// At least one byte of an answer arrived (set as that byte is read, so
    /// that a deadline ending the exchange mid-answer still tells it began).
    pub answer_started: bool,
}

/// The longest `Retry-After` delay kept: a platform asking for more (or a
/// clock far off) must not park a caller's retries for days.
pub(super) const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// A failed exchange: what failed, with which host, and how far the exchange
/// had got. Its text is the failed step's alone (the host and cause are
/// told apart by [`Error::host`] and [`Error::cause`], for the layers above
/// to place them).
#[derive(Debug, Clone, Error)]
#[error("{kind}")]
pub struct Error {
    kind: ErrorKind,
    /// The platform's host (`host[:port]`, the port only when not the
    /// scheme's default); "" for an error not made by an [`super::Upstream`].
    host: Arc<str>,
    request_written: bool,
    answer_started: bool,
    answer_complete: bool,
    /// A reused pooled connection, closed or reset before any byte of the
    /// answer arrived.
    stale_connection: bool,
    /// A non-2xx answer's `Retry-After`, bounded by [`MAX_RETRY_AFTER`].
    retry_after: Option<Duration>,
}

impl Error {
    /// An error of no particular host (see [`Error::with_host`]).
    pub fn new(kind: ErrorKind, progress: Progress) -> Self {
        let answer_complete = matches!(kind, ErrorKind::Status(_));
        Error {
            kind,
            host: Arc::from(""),
            request_written: progress.request_written || answer_complete,
            answer_started: progress.answer_started || answer_complete,
            answer_complete,
            stale_connection: false,
            retry_after: None,
        }
    }

    /// The same error, telling whether it happened on a reused pooled
    /// connection the platform had closed (see [`Error::is_stale_connection`]).
    pub(super) fn with_stale_connection(mut self, stale: bool) -> Self {
        self.stale_connection = stale && !self.answer_started;
        self
    }

    /// The same error, with the delay a non-2xx answer's `Retry-After` asked for.
    pub(super) fn with_retry_after(mut self, delay: Option<Duration>) -> Self {
        self.retry_after = delay.map(|delay| delay.min(MAX_RETRY_AFTER));
        self
    }

    /// The same error, naming the host it happened with.
    pub fn with_host(mut self, host: Arc<str>) -> Self {
        self.host = host;
        self
    }

    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The host gamegate was talking to: the base URL's host, with `:port`
    /// when the port is not the scheme's default; never a path or a query.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The class of a transport failure; `None` for a complete answer with a
    /// non-2xx status (not a transport failure) and for a request gamegate
    /// refused to write (nothing was attempted).
    ///
    /// How io errors are classed (the remaining ones within the nine classes):
    ///
    /// | step | io error | cause |
    /// |---|---|---|
    /// | resolving | any, no address, the resolver too slow | `dns` |
    /// | connecting | `ConnectionRefused` | `connect_refused` |
    /// | connecting | `TimedOut` (the system gave up), or the connect timeout | `connect_timeout` |
    /// | connecting | any other (`NetworkUnreachable`, `HostUnreachable`, `AddrNotAvailable`, `PermissionDenied`, ...): the network or the system refused at once, nothing was sent | `connect_refused` |
    /// | TLS handshake | any (certificate, alert, the peer leaving mid-handshake) | `tls` |
    /// | TLS handshake | longer than the connect timeout | `connect_timeout` |
    /// | exchange | `ConnectionReset`, `ConnectionAborted`, `BrokenPipe`, `NotConnected`, `TimedOut` (retransmissions unanswered), any other | `reset` |
    /// | exchange | a clean end of stream, `UnexpectedEof` (TLS without close_notify), `WriteZero` | `closed_early` |
    /// | exchange | `InvalidData` (only rustls reports it: a TLS record that cannot be read) | `tls` |
    /// | exchange | bad HTTP framing, an answer over the limits | `malformed_answer` |
    /// | any | the call's deadline, by whether a byte of the request was written | `timeout_before_send` / `timeout_after_send` |
    pub fn cause(&self) -> Option<Cause> {
        Some(match &self.kind {
            ErrorKind::Resolve(_) | ErrorKind::ResolveTimeout => Cause::Dns,
            ErrorKind::Connect(error) => match error.kind() {
                io::ErrorKind::TimedOut => Cause::ConnectTimeout,
                _ => Cause::ConnectRefused,
            },
            ErrorKind::ConnectTimeout => Cause::ConnectTimeout,
            ErrorKind::Tls(_) => Cause::Tls,
            ErrorKind::Timeout if self.request_written => Cause::TimeoutAfterSend,
            ErrorKind::Timeout => Cause::TimeoutBeforeSend,
            ErrorKind::Io(error) => match error.kind() {
                io::ErrorKind::UnexpectedEof | io::ErrorKind::WriteZero => Cause::ClosedEarly,
                io::ErrorKind::InvalidData => Cause::Tls,
                _ => Cause::Reset,
            },
            ErrorKind::ClosedEarly => Cause::ClosedEarly,
            ErrorKind::Protocol(_) | ErrorKind::TooLarge(_) => Cause::MalformedAnswer,
            ErrorKind::Status(_) | ErrorKind::InvalidRequest(_) => return None,
        })
    }

    /// Whether any byte of the request may have reached the platform.
    pub fn request_written(&self) -> bool {
        self.request_written
    }

    /// Whether any byte of an answer arrived (a complete one included).
    pub fn answer_started(&self) -> bool {
        self.answer_started
    }

    /// Whether the platform may have received the request and acted on it
    /// without gamegate learning the outcome: some byte of the request was
    /// written and no complete well-formed answer came back. A write failing
    /// so has an unknown outcome; one failing otherwise was not applied (no
    /// byte left gamegate) or was answered.
    pub fn may_have_reached_platform(&self) -> bool {
        self.request_written && !self.answer_complete
    }

    /// Whether the request went on a reused pooled connection that turned out
    /// closed or reset before any byte of the answer arrived: the platform
    /// retired an idle connection as the request crossed it. A read may be
    /// sent again at once, on a new connection (the failed one is never pooled
    /// again); the client does not do so itself, so that every send counts
    /// against the caller's attempts and retry budget. A write may not: the
    /// platform may have read it before closing ([`Error::may_have_reached_platform`]).
    /// Never true for a fresh connection, nor once an answer had begun.
    pub fn is_stale_connection(&self) -> bool {
        self.stale_connection
    }

    /// Whether a complete answer arrived (only an answer with a non-2xx status
    /// fails after one did).
    pub fn answer_complete(&self) -> bool {
        self.answer_complete
    }

    /// Whether the platform answered, but not with valid HTTP/1.1 within the
    /// limits: bad framing, an answer over the size limit, or one cut short.
    pub fn answer_malformed(&self) -> bool {
        match self.kind {
            ErrorKind::Protocol(_) | ErrorKind::TooLarge(_) => true,
            ErrorKind::ClosedEarly | ErrorKind::Io(_) => self.answer_started,
            _ => false,
        }
    }

    pub fn is_timeout(&self) -> bool {
        matches!(self.kind, ErrorKind::Timeout)
    }

    /// The HTTP status of a complete non-2xx answer.
    pub fn status(&self) -> Option<u16> {
        match self.kind {
            ErrorKind::Status(status) => Some(status),
            _ => None,
        }
    }

    /// How long a non-2xx answer (a 429, a 503) asked to wait before another
    /// request, from its `Retry-After` header: delta-seconds, or an
    /// IMF-fixdate relative to the clock when the answer arrived (the
    /// obsolete date forms are not read); at most an hour; `None` without a
    /// valid one.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

/// The delay a `Retry-After` value asks for (RFC 9110 10.2.3), as of `now`:
/// delta-seconds, or an HTTP-date in the IMF-fixdate form every sender must
/// use (`Sun, 06 Nov 1994 08:49:37 GMT`; the obsolete RFC 850 and asctime
/// forms are not read: `None`). A date already past is no delay. Bounded by
/// [`MAX_RETRY_AFTER`] (so that a huge number is that bound, not an error).
pub(super) fn retry_after_delay(value: &[u8], now: SystemTime) -> Option<Duration> {
    let value = value.trim_ascii();
    let delay = if !value.is_empty() && value.iter().all(u8::is_ascii_digit) {
        // Saturating: twenty digits of seconds mean "a long time", not garbage.
        let seconds = value.iter().fold(0u64, |seconds, digit| {
            seconds
                .saturating_mul(10)
                .saturating_add(u64::from(digit - b'0'))
        });
        Duration::from_secs(seconds)
    } else {
        let at = UNIX_EPOCH + Duration::from_secs(imf_fixdate(value)?);
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

/// Seconds since the Unix epoch of an IMF-fixdate (RFC 9110 5.6.7).
fn imf_fixdate(text: &[u8]) -> Option<u64> {
    const DAYS: [&[u8]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
    const MONTHS: [&[u8]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let number = |digits: &[u8]| -> Option<u64> {
        digits.iter().try_fold(0u64, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
        })
    };
    // "Sun, 06 Nov 1994 08:49:37 GMT": every field at a fixed place.
    if text.len() != 29
        || !DAYS.contains(&&text[0..3])
        || &text[3..5] != b", "
        || text[7] != b' '
        || text[11] != b' '
        || text[16] != b' '
        || text[19] != b':'
        || text[22] != b':'
        || &text[25..] != b" GMT"
    {
        return None;
    }
    let day = number(&text[5..7])?;
    let month = MONTHS.iter().position(|m| *m == &text[8..11])? as u64 + 1;
    let year = number(&text[12..16])?;
    let (hour, minute, second) = (
        number(&text[17..19])?,
        number(&text[20..22])?,
        number(&text[23..25])?,
    );
    if !(1..=31).contains(&day) || year < 1970 || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm), years from March.
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let year_of_era = y % 400;
    let day_of_year = (153 * m + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}
