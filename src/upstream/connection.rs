//! One keep-alive HTTP/1.1 connection, driven by the calling task: the request
//! written in one go, the answer's head and body framing read as RFC 9112 says,
//! a read buffer allocated only once the answer starts to arrive and grown as
//! its bytes do.
//!
//! Framing is strict, as hyper's and Pingora's clients are, because a
//! connection whose framing gamegate and the platform (or a proxy between
//! them) read differently would hand one call's answer to the next call:
//!
//! - `Content-Length` is digits only (no sign, no whitespace inside, no
//!   overflow). Several values are accepted only when they are all the same,
//!   on separate lines or as a list (`5, 5`), as hyper does (RFC 9110 8.6
//!   allows it: some proxies duplicate the field); any other list is refused.
//! - `Transfer-Encoding` must be exactly `chunked`, once. gamegate sends no `TE`
//!   header, so a platform may not apply any other coding (RFC 9110 10.1.4),
//!   and gamegate could not decode one.
//! - An answer with both `Transfer-Encoding` and `Content-Length`, or an
//!   HTTP/1.0 answer with `Transfer-Encoding`, is read as chunked (RFC 9112
//!   6.3) but its framing is ambiguous: the connection is closed after it
//!   (RFC 9112 6.1), never pooled.
//! - An HTTP/1.0 answer is reused only with `Connection: keep-alive`.
//! - At most [`MAX_INTERIM_HEADS`] 1xx heads precede the final answer.
//! - Chunk-size lines are hex digits, optional whitespace and extensions, then
//!   CRLF: at most [`MAX_CHUNK_LINE`] bytes each, [`MAX_CHUNK_EXTENSIONS`] of
//!   extensions in one answer.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll, Waker},
};

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::TcpStream,
    time::Instant,
};
use tokio_rustls::client::TlsStream;

use super::{
    FIRST_READ, MAX_HEAD_BYTES, MAX_HEADERS,
    error::{ErrorKind, Progress},
};

/// Interim (1xx) heads accepted before the final one: a platform sends one
/// `100 Continue` or a `103 Early Hints` at most; an endless stream of them
/// would hold the call until its deadline.
pub(super) const MAX_INTERIM_HEADS: usize = 4;
/// The longest chunk-size line, extensions and CRLF included.
pub(super) const MAX_CHUNK_LINE: usize = 1024;
/// Chunk extensions of one answer, in all (hyper's bound): gamegate ignores
/// them, so they could only make an answer cost more than its body.
pub(super) const MAX_CHUNK_EXTENSIONS: usize = 16 * 1024;

/// A parsed answer, whatever its status.
pub(super) struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Whether the connection may carry another request: HTTP/1.1 (or 1.0
    /// with `keep-alive`), no `Connection: close`, a body delimited otherwise
    /// than by the close, and unambiguous framing.
    pub keep_alive: bool,
}

/// How an answer's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// `Content-Length` (or none: 204, 304, 1xx), as declared; checked against
    /// the body limit before any of it is read.
    Length(u64),
    Chunked,
    UntilClose,
}

/// A parsed head.
struct Head {
    status: u16,
    headers: HeaderMap,
    framing: Framing,
    keep_alive: bool,
}

pub(super) struct Connection {
    pub stream: Stream,
    /// Bytes read and not yet consumed; empty (no allocation) while idle.
    pub buffer: BytesMut,
    pub idle_since: Instant,
    /// The largest answer body read, checked as it arrives.
    max_body: usize,
    /// Counts this connection as open in the metrics until it is dropped.
    pub open: Option<crate::metrics::OpenConnection>,
}

impl Connection {
    /// Whether an idle connection can carry a request: nothing to read yet. A
    /// platform that closed it has sent a FIN (a read of 0), and bytes nobody
    /// asked for mean its framing is lost.
    pub fn is_open(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        let mut probe = [0u8; 1];
        let mut probe = ReadBuf::new(&mut probe);
        matches!(
            Pin::new(&mut self.stream).poll_read(&mut cx, &mut probe),
            Poll::Pending
        )
    }

    pub fn new(stream: Stream, max_body: usize) -> Self {
        Connection {
            stream,
            buffer: BytesMut::new(),
            idle_since: Instant::now(),
            max_body,
            open: None,
        }
    }

    /// Writes the request and reads its answer, recording in `progress` how far
    /// it got as it goes (so that a failure, or a deadline that drops this
    /// future, can tell a request never sent from one sent, and an answer not
    /// begun from one cut short).
    pub async fn round_trip(
        &mut self,
        request: &[u8],
        progress: &mut Progress,
    ) -> Result<Answer, ErrorKind> {
        let mut unwritten = request;
        while !unwritten.is_empty() {
            match self.stream.write(unwritten).await.map_err(ErrorKind::io)? {
                0 => return Err(ErrorKind::io(io::ErrorKind::WriteZero.into())),
                written => {
                    progress.request_written = true;
                    unwritten = &unwritten[written..];
                }
            }
        }
        self.stream.flush().await.map_err(ErrorKind::io)?;
        self.read_answer(progress).await
    }

    /// Reads more bytes into the buffer; 0 at the end of the stream. `want` is
    /// how many bytes the buffer should hold for the caller to go on: the
    /// buffer grows geometrically towards it as bytes arrive, never to it at
    /// once (a platform declaring a large body and sending little of it costs
    /// what it sent, not what it declared).
    async fn fill(&mut self, progress: &mut Progress, want: usize) -> Result<usize, ErrorKind> {
        if self.buffer.capacity() == 0 {
            // Allocate only once the answer starts to arrive: a call waiting
            // for a slow platform holds no buffer.
            if let Stream::Plain(tcp) = &self.stream {
                tcp.readable().await.map_err(ErrorKind::io)?;
            }
            self.buffer.reserve(FIRST_READ);
        } else if self.buffer.capacity() == self.buffer.len() {
            let room = want.saturating_sub(self.buffer.len()).max(1);
            self.buffer
                .reserve(self.buffer.len().max(FIRST_READ).min(room));
        }
        let read = self
            .stream
            .read_buf(&mut self.buffer)
            .await
            .map_err(ErrorKind::io)?;
        // Set at the first byte, not when the answer is done: a deadline that
        // ends the exchange mid-answer must still see that one began.
        progress.answer_started |= read > 0;
        Ok(read)
    }

    async fn fill_or_closed(
        &mut self,
        progress: &mut Progress,
        want: usize,
    ) -> Result<(), ErrorKind> {
        match self.fill(progress, want).await? {
            0 => Err(ErrorKind::ClosedEarly),
            _ => Ok(()),
        }
    }

    async fn read_answer(&mut self, progress: &mut Progress) -> Result<Answer, ErrorKind> {
        let mut interim = 0;
        let head = loop {
            let head = self.read_head(progress).await?;
            match head.status {
                101 => return Err(ErrorKind::Protocol("unexpected protocol switch")),
                // 1xx answers (100 Continue, 103 Early Hints) precede the real one.
                100..=199 => {
                    interim += 1;
                    if interim > MAX_INTERIM_HEADS {
                        return Err(ErrorKind::Protocol("too many interim answers"));
                    }
                }
                _ => break head,
            }
        };
        let body = match head.framing {
            Framing::Length(length) => self.read_length(progress, length).await?,
            Framing::Chunked => self.read_chunked(progress).await?,
            Framing::UntilClose => {
                let want = self.max_body.saturating_add(1);
                while self.fill(progress, want).await? > 0 {
                    if self.buffer.len() > self.max_body {
                        return Err(ErrorKind::TooLarge(self.max_body));
                    }
                }
                self.buffer.split().freeze()
            }
        };
        Ok(Answer {
            status: head.status,
            headers: head.headers,
            body,
            keep_alive: head.keep_alive,
        })
    }

    /// Status, headers, body framing and whether the connection stays open.
    async fn read_head(&mut self, progress: &mut Progress) -> Result<Head, ErrorKind> {
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
                        return Err(ErrorKind::Protocol("too many headers"));
                    }
                    Err(_) => return Err(ErrorKind::Protocol("malformed answer head")),
                }
                if self.buffer.len() >= MAX_HEAD_BYTES {
                    return Err(ErrorKind::TooLarge(MAX_HEAD_BYTES));
                }
            }
            self.fill_or_closed(progress, MAX_HEAD_BYTES).await?;
        }
    }

    async fn read_length(
        &mut self,
        progress: &mut Progress,
        length: u64,
    ) -> Result<Bytes, ErrorKind> {
        let length = usize::try_from(length)
            .ok()
            .filter(|length| *length <= self.max_body)
            .ok_or(ErrorKind::TooLarge(self.max_body))?;
        while self.buffer.len() < length {
            self.fill_or_closed(progress, length).await?;
        }
        Ok(self.buffer.split_to(length).freeze())
    }

    async fn read_chunked(&mut self, progress: &mut Progress) -> Result<Bytes, ErrorKind> {
        let mut body = BytesMut::new();
        let mut extensions = 0usize;
        loop {
            let line = loop {
                if let Some(line) = chunk_size_line(&self.buffer)? {
                    break line;
                }
                self.fill_or_closed(progress, MAX_CHUNK_LINE).await?;
            };
            extensions += line.extensions;
            if extensions > MAX_CHUNK_EXTENSIONS {
                return Err(ErrorKind::Protocol("chunk extensions too long"));
            }
            self.buffer.advance(line.len);
            if line.size == 0 {
                self.skip_trailers(progress).await?;
                return Ok(body.freeze());
            }
            let mut remaining = usize::try_from(line.size)
                .ok()
                .filter(|size| *size <= self.max_body - body.len())
                .ok_or(ErrorKind::TooLarge(self.max_body))?;
            // The chunk moves to the body as it arrives, so that the read
            // buffer stays small whatever the chunk's size.
            while remaining > 0 {
                if self.buffer.is_empty() {
                    self.fill_or_closed(progress, remaining.saturating_add(2))
                        .await?;
                }
                let take = remaining.min(self.buffer.len());
                body.extend_from_slice(&self.buffer[..take]);
                self.buffer.advance(take);
                remaining -= take;
            }
            while self.buffer.len() < 2 {
                self.fill_or_closed(progress, 2).await?;
            }
            if &self.buffer[..2] != b"\r\n" {
                return Err(ErrorKind::Protocol("chunk not followed by crlf"));
            }
            self.buffer.advance(2);
        }
    }

    /// The trailer section after the last chunk, up to its empty line; at most
    /// [`MAX_HEAD_BYTES`] in all. Trailers are not kept (no platform sends
    /// any gamegate needs), but each must be a line of its own.
    async fn skip_trailers(&mut self, progress: &mut Progress) -> Result<(), ErrorKind> {
        let mut skipped = 0usize;
        loop {
            match self.buffer.windows(2).position(|w| w == b"\r\n") {
                Some(0) => {
                    self.buffer.advance(2);
                    return Ok(());
                }
                Some(line) if skipped + line + 2 > MAX_HEAD_BYTES => {
                    return Err(ErrorKind::TooLarge(MAX_HEAD_BYTES));
                }
                Some(line) => {
                    if self.buffer[..line]
                        .iter()
                        .any(|b| matches!(b, b'\r' | b'\n'))
                    {
                        return Err(ErrorKind::Protocol("malformed trailer"));
                    }
                    self.buffer.advance(line + 2);
                    skipped += line + 2;
                }
                None if skipped + self.buffer.len() >= MAX_HEAD_BYTES => {
                    return Err(ErrorKind::TooLarge(MAX_HEAD_BYTES));
                }
                None => self.fill_or_closed(progress, MAX_HEAD_BYTES).await?,
            }
        }
    }
}

/// A complete chunk-size line.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ChunkLine {
    /// Its length, CRLF included.
    pub len: usize,
    pub size: u64,
    /// Bytes of extensions (from the first `;`).
    pub extensions: usize,
}

/// The chunk-size line at the start of `buffer` (RFC 9112 7.1): `None` while
/// it is incomplete. Checked byte by byte as it arrives, so that the verdict
/// never depends on how the bytes were cut: 1*HEXDIG, optional whitespace,
/// optional extensions (`;` then visible characters, spaces and tabs; never a
/// bare CR or LF, which would let the line end differently for another
/// reader), CRLF.
pub(super) fn chunk_size_line(buffer: &[u8]) -> Result<Option<ChunkLine>, ErrorKind> {
    const MALFORMED: ErrorKind = ErrorKind::Protocol("malformed chunk size");
    enum State {
        Size,
        Whitespace,
        Extension,
        Lf,
    }
    let mut state = State::Size;
    let mut size: u64 = 0;
    let mut digits = 0usize;
    let mut extension_start = None;
    for (at, &byte) in buffer.iter().enumerate() {
        if at >= MAX_CHUNK_LINE {
            return Err(ErrorKind::Protocol("chunk size line too long"));
        }
        state = match state {
            State::Size => match byte {
                b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                    let digit = (byte as char).to_digit(16).unwrap_or_default();
                    size = size
                        .checked_mul(16)
                        .and_then(|size| size.checked_add(u64::from(digit)))
                        .ok_or(ErrorKind::Protocol("chunk size too large"))?;
                    digits += 1;
                    State::Size
                }
                _ if digits == 0 => return Err(MALFORMED),
                b' ' | b'\t' => State::Whitespace,
                b';' => {
                    extension_start = Some(at);
                    State::Extension
                }
                b'\r' => State::Lf,
                _ => return Err(MALFORMED),
            },
            State::Whitespace => match byte {
                b' ' | b'\t' => State::Whitespace,
                b';' => {
                    extension_start = Some(at);
                    State::Extension
                }
                b'\r' => State::Lf,
                _ => return Err(MALFORMED),
            },
            State::Extension => match byte {
                b'\r' => State::Lf,
                b'\t' | b' '..=b'~' | 0x80.. => State::Extension,
                _ => return Err(ErrorKind::Protocol("malformed chunk extension")),
            },
            State::Lf => match byte {
                b'\n' => {
                    let len = at + 1;
                    return Ok(Some(ChunkLine {
                        len,
                        size,
                        extensions: extension_start.map_or(0, |start| at - 1 - start),
                    }));
                }
                _ => return Err(MALFORMED),
            },
        };
    }
    // A line not complete within the bound cannot become so.
    if buffer.len() >= MAX_CHUNK_LINE {
        return Err(ErrorKind::Protocol("chunk size line too long"));
    }
    Ok(None)
}

/// The value of one `Content-Length` field: 1*DIGIT (RFC 9110 8.6), or a list
/// of the same 1*DIGIT (see the module doc).
fn content_length_value(value: &[u8]) -> Result<u64, ErrorKind> {
    const INVALID: ErrorKind = ErrorKind::Protocol("invalid content-length");
    let mut length = None;
    for element in value.split(|b| *b == b',') {
        let element = trim_whitespace(element);
        // `u64::from_str` would take a sign ("+2"): digits are checked first.
        if element.is_empty() || !element.iter().all(u8::is_ascii_digit) {
            return Err(INVALID);
        }
        let parsed = std::str::from_utf8(element)
            .ok()
            .and_then(|digits| digits.parse::<u64>().ok())
            .ok_or(INVALID)?;
        if length.is_some_and(|seen| seen != parsed) {
            return Err(ErrorKind::Protocol("conflicting content-length"));
        }
        length = Some(parsed);
    }
    length.ok_or(INVALID)
}

/// Without the optional whitespace (spaces and tabs, RFC 9110 5.6.3) around a
/// list element.
fn trim_whitespace(mut text: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = text {
        text = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = text {
        text = rest;
    }
    text
}

fn parse_head(response: &httparse::Response<'_, '_>) -> Result<Head, ErrorKind> {
    let status = response.code.ok_or(ErrorKind::Protocol("no status"))?;
    if status < 100 {
        return Err(ErrorKind::Protocol("invalid status"));
    }
    let http11 = response.version == Some(1);
    let mut headers = HeaderMap::with_capacity(response.headers.len());
    let mut content_length: Option<u64> = None;
    // The transfer codings of every `Transfer-Encoding` field, in order.
    let mut codings = 0usize;
    let mut chunked_only = true;
    let mut transfer_encoded = false;
    // `close` wins whatever the order; HTTP/1.0 stays open only when asked.
    let mut close_token = false;
    let mut keep_alive_token = false;
    for header in response.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes())
            .map_err(|_| ErrorKind::Protocol("invalid header name"))?;
        let value = HeaderValue::from_bytes(header.value)
            .map_err(|_| ErrorKind::Protocol("invalid header value"))?;
        if name == http::header::CONTENT_LENGTH {
            let length = content_length_value(header.value)?;
            if content_length.is_some_and(|seen| seen != length) {
                return Err(ErrorKind::Protocol("conflicting content-length"));
            }
            content_length = Some(length);
        } else if name == http::header::TRANSFER_ENCODING {
            transfer_encoded = true;
            // Empty list elements are ignored (RFC 9110 5.6.1.2).
            for coding in header.value.split(|b| *b == b',').map(trim_whitespace) {
                if !coding.is_empty() {
                    codings += 1;
                    chunked_only &= coding.eq_ignore_ascii_case(b"chunked");
                }
            }
        } else if name == http::header::CONNECTION {
            for token in header.value.split(|b| *b == b',').map(trim_whitespace) {
                close_token |= token.eq_ignore_ascii_case(b"close");
                keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
        headers.append(name, value);
    }
    if transfer_encoded && !(chunked_only && codings == 1) {
        return Err(ErrorKind::Protocol("transfer-encoding is not chunked"));
    }
    // RFC 9112 6.1 and 6.3: read as chunked, then closed.
    let ambiguous = transfer_encoded && (content_length.is_some() || !http11);
    let framing = if matches!(status, 204 | 304) || (100..200).contains(&status) {
        Framing::Length(0)
    } else if transfer_encoded {
        // RFC 9112 6.3: transfer-encoding wins over content-length.
        Framing::Chunked
    } else if let Some(length) = content_length {
        Framing::Length(length)
    } else {
        Framing::UntilClose
    };
    let close = close_token || (!http11 && !keep_alive_token);
    let keep_alive = !close && !ambiguous && framing != Framing::UntilClose;
    Ok(Head {
        status,
        headers,
        framing,
        keep_alive,
    })
}

pub(super) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// An in-memory platform, for the fuzz targets (`fuzz/`); absent from
    /// every other build.
    #[cfg(feature = "fuzzing")]
    Memory(tokio::io::DuplexStream),
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
            #[cfg(feature = "fuzzing")]
            Stream::Memory(memory) => Pin::new(memory).poll_read(cx, buf),
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
            #[cfg(feature = "fuzzing")]
            Stream::Memory(memory) => Pin::new(memory).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
            #[cfg(feature = "fuzzing")]
            Stream::Memory(memory) => Pin::new(memory).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
            #[cfg(feature = "fuzzing")]
            Stream::Memory(memory) => Pin::new(memory).poll_shutdown(cx),
        }
    }
}
