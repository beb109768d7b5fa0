//! What can go wrong between gamegate and a platform below the platform's own
//! semantics, and how far the exchange got before it did.
//!
//! The layers above decide with these facts alone: a read may be sent again,
//! a write that never left gamegate may be retried by its caller, a write whose
//! request was written and whose answer never arrived whole may have been
//! applied. So every error keeps whether any byte of the request was written and
//! whether a complete answer arrived. The texts never hold the URL, a header
//! value or a body (upstream URLs carry access tokens and openkeys).

use std::{io, sync::Arc};

use thiserror::Error;

use super::CONNECT_TIMEOUT;

/// Which step of an exchange failed.
#[derive(Debug, Clone, Error)]
pub enum ErrorKind {
    /// No TCP connection could be opened (refused, unroutable, name not found).
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

/// A failed exchange: what failed, and how far the exchange had got.
#[derive(Debug, Clone, Error)]
#[error("{kind}")]
pub struct Error {
    kind: ErrorKind,
    request_written: bool,
    answer_started: bool,
    answer_complete: bool,
}

impl Error {
    pub fn new(kind: ErrorKind, progress: Progress) -> Self {
        let answer_complete = matches!(kind, ErrorKind::Status(_));
        Error {
            kind,
            request_written: progress.request_written || answer_complete,
            answer_started: progress.answer_started || answer_complete,
            answer_complete,
        }
    }

    pub fn kind(&self) -> &ErrorKind {
        &self.kind
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
