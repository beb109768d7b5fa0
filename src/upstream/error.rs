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

use std::{io, sync::Arc};

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

/// How far one exchange got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// At least one byte of the request was handed to a connection, in any
    /// attempt (a re-send on a fresh connection included).
    pub request_written: bool,
    /// At least one byte of an answer arrived in the current attempt.
    pub answer_started: bool,
}

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
        }
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
}
