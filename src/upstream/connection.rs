//! One keep-alive HTTP/1.1 connection, driven by the calling task: the request
//! written in one go, the answer's head and body framing read as RFC 9112 says,
//! a read buffer allocated only once the answer starts to arrive.

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

/// A parsed answer, whatever its status.
pub(super) struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub keep_alive: bool,
}

/// How an answer's body is delimited.
pub(super) enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

pub(super) struct Connection {
    pub stream: Stream,
    /// Bytes read and not yet consumed; empty (no allocation) while idle.
    pub buffer: BytesMut,
    pub idle_since: Instant,
    /// Whether any byte of the current answer arrived.
    answer_started: bool,
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
            answer_started: false,
            max_body,
            open: None,
        }
    }

    /// Writes the request and reads its answer, recording in `progress` how far
    /// it got (so that a failure can tell a request never sent from one sent).
    pub async fn round_trip(
        &mut self,
        request: &[u8],
        progress: &mut Progress,
    ) -> Result<Answer, ErrorKind> {
        self.answer_started = false;
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
        let answer = self.read_answer().await;
        progress.answer_started = self.answer_started;
        answer
    }

    /// Reads more bytes into the buffer; 0 at the end of the stream.
    async fn fill(&mut self) -> Result<usize, ErrorKind> {
        if self.buffer.capacity() == 0 {
            // Allocate only once the answer starts to arrive: a call waiting
            // for a slow platform holds no buffer.
            if let Stream::Plain(tcp) = &self.stream {
                tcp.readable().await.map_err(ErrorKind::io)?;
            }
            self.buffer.reserve(FIRST_READ);
        } else if self.buffer.capacity() == self.buffer.len() {
            self.buffer.reserve(self.buffer.len().max(FIRST_READ));
        }
        let read = self
            .stream
            .read_buf(&mut self.buffer)
            .await
            .map_err(ErrorKind::io)?;
        self.answer_started |= read > 0;
        Ok(read)
    }

    async fn fill_or_closed(&mut self) -> Result<(), ErrorKind> {
        match self.fill().await? {
            0 => Err(ErrorKind::ClosedEarly),
            _ => Ok(()),
        }
    }

    async fn read_answer(&mut self) -> Result<Answer, ErrorKind> {
        loop {
            let (status, headers, framing, keep_alive) = self.read_head().await?;
            // 1xx answers (100 Continue, 103 Early Hints) precede the real one.
            if (100..200).contains(&status) && status != 101 {
                continue;
            }
            if status == 101 {
                return Err(ErrorKind::Protocol("unexpected protocol switch"));
            }
            let body = match framing {
                Framing::Length(length) => self.read_length(length).await?,
                Framing::Chunked => self.read_chunked().await?,
                Framing::UntilClose => {
                    while self.fill().await? > 0 {
                        if self.buffer.len() > self.max_body {
                            return Err(ErrorKind::TooLarge(self.max_body));
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
    async fn read_head(&mut self) -> Result<(u16, HeaderMap, Framing, bool), ErrorKind> {
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
            self.fill_or_closed().await?;
        }
    }

    async fn read_length(&mut self, length: usize) -> Result<Bytes, ErrorKind> {
        if length > self.max_body {
            return Err(ErrorKind::TooLarge(self.max_body));
        }
        if self.buffer.capacity() < length {
            self.buffer.reserve(length - self.buffer.len());
        }
        while self.buffer.len() < length {
            self.fill_or_closed().await?;
        }
        Ok(self.buffer.split_to(length).freeze())
    }

    async fn read_chunked(&mut self) -> Result<Bytes, ErrorKind> {
        let mut body = BytesMut::new();
        loop {
            let (consumed, size) = match httparse::parse_chunk_size(&self.buffer) {
                Ok(httparse::Status::Complete(sized)) => sized,
                Ok(httparse::Status::Partial) => {
                    if self.buffer.len() > 1024 {
                        return Err(ErrorKind::Protocol("chunk size line too long"));
                    }
                    self.fill_or_closed().await?;
                    continue;
                }
                Err(_) => return Err(ErrorKind::Protocol("malformed chunk size")),
            };
            self.buffer.advance(consumed);
            let size = usize::try_from(size).unwrap_or(usize::MAX);
            if size == 0 {
                self.skip_trailers().await?;
                return Ok(body.freeze());
            }
            if size > self.max_body - body.len() {
                return Err(ErrorKind::TooLarge(self.max_body));
            }
            while self.buffer.len() < size + 2 {
                self.fill_or_closed().await?;
            }
            if &self.buffer[size..size + 2] != b"\r\n" {
                return Err(ErrorKind::Protocol("chunk not followed by crlf"));
            }
            body.extend_from_slice(&self.buffer[..size]);
            self.buffer.advance(size + 2);
        }
    }

    /// The trailer section after the last chunk, up to its empty line.
    async fn skip_trailers(&mut self) -> Result<(), ErrorKind> {
        loop {
            match self.buffer.windows(2).position(|w| w == b"\r\n") {
                Some(0) => {
                    self.buffer.advance(2);
                    return Ok(());
                }
                Some(line) => self.buffer.advance(line + 2),
                None if self.buffer.len() >= MAX_HEAD_BYTES => {
                    return Err(ErrorKind::TooLarge(MAX_HEAD_BYTES));
                }
                None => self.fill_or_closed().await?,
            }
        }
    }
}

fn parse_head(
    response: &httparse::Response<'_, '_>,
) -> Result<(u16, HeaderMap, Framing, bool), ErrorKind> {
    let status = response.code.ok_or(ErrorKind::Protocol("no status"))?;
    let http11 = response.version == Some(1);
    let mut headers = HeaderMap::with_capacity(response.headers.len());
    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    let mut transfer_encoded = false;
    let mut close = !http11;
    for header in response.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes())
            .map_err(|_| ErrorKind::Protocol("invalid header name"))?;
        let value = HeaderValue::from_bytes(header.value)
            .map_err(|_| ErrorKind::Protocol("invalid header value"))?;
        if name == http::header::CONTENT_LENGTH {
            let length = std::str::from_utf8(header.value)
                .ok()
                .map(str::trim)
                // RFC 9110 8.6: digits only (`usize::from_str` would take "+2").
                .filter(|text| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|text| text.parse::<usize>().ok())
                .ok_or(ErrorKind::Protocol("invalid content-length"))?;
            if content_length.is_some_and(|seen| seen != length) {
                return Err(ErrorKind::Protocol("conflicting content-length"));
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
