//! The upstream HTTP/1.1 client against scripted servers on 127.0.0.1: framing
//! (length, chunked, until close, 1xx, byte-at-a-time, and a table of
//! malformed and ambiguous answers), keep-alive reuse, stale pooled
//! connections reported and never resent, deadlines, limits, `Retry-After`,
//! TLS, errors without secrets, and one real failure of each [`Cause`], each
//! naming the host.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};

use super::*;

/// What a scripted server does with each request of a connection.
#[derive(Clone, Copy)]
enum Reply {
    /// Writes the bytes and keeps reading requests.
    Send(&'static [u8]),
    /// Writes the bytes one at a time, flushing each.
    Trickle(&'static [u8]),
    /// Writes the bytes, then closes the connection.
    SendAndClose(&'static [u8]),
    /// Closes the connection without answering.
    Close,
    /// Never answers.
    Hang,
    /// Resets the connection (SO_LINGER 0, then close) without answering.
    Reset,
}

struct Scripted {
    base: String,
    connections: Arc<AtomicUsize>,
    requests: mpsc::UnboundedReceiver<Vec<u8>>,
}

/// A server whose n-th connection answers its requests with `script[n]`
/// (the last script repeats).
async fn scripted(script: Vec<Vec<Reply>>) -> Scripted {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/prefix/", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let (seen, requests) = mpsc::unbounded_channel();
    let counter = connections.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let index = counter.fetch_add(1, Ordering::SeqCst);
            let replies = script[index.min(script.len() - 1)].clone();
            tokio::spawn(serve(stream, replies, seen.clone()));
        }
    });
    Scripted {
        base,
        connections,
        requests,
    }
}

async fn serve(mut stream: TcpStream, replies: Vec<Reply>, seen: mpsc::UnboundedSender<Vec<u8>>) {
    stream.set_nodelay(true).unwrap();
    let mut pending = Vec::new();
    for reply in replies {
        let Some(request) = read_request(&mut stream, &mut pending).await else {
            return;
        };
        let _ = seen.send(request);
        match reply {
            Reply::Send(bytes) => stream.write_all(bytes).await.unwrap(),
            Reply::Trickle(bytes) => {
                for byte in bytes {
                    stream.write_all(&[*byte]).await.unwrap();
                    stream.flush().await.unwrap();
                    tokio::task::yield_now().await;
                }
            }
            Reply::SendAndClose(bytes) => {
                stream.write_all(bytes).await.unwrap();
                return;
            }
            Reply::Close => return,
            Reply::Reset => {
                stream.set_zero_linger().unwrap();
                return;
            }
            Reply::Hang => {
                tokio::time::sleep(Duration::from_secs(30)).await;
                return;
            }
        }
    }
    // Out of replies: keep the connection open and silent.
    tokio::time::sleep(Duration::from_secs(30)).await;
}

/// One request: its head and a content-length body.
async fn read_request(stream: &mut TcpStream, pending: &mut Vec<u8>) -> Option<Vec<u8>> {
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length: "))
                .map_or(0, |n| n.trim().parse().unwrap());
            if pending.len() >= end + 4 + length {
                return Some(pending.drain(..end + 4 + length).collect());
            }
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        pending.extend_from_slice(&chunk[..n]);
    }
}

const OK_HELLO: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Encrypt: msdktea\r\n\r\nhello";

fn post<'a>(target: &'a str, deadline: Duration, idempotent: bool) -> UpstreamCall<'a> {
    UpstreamCall {
        method: Method::Post,
        target,
        body: Some(OutgoingBody {
            bytes: Bytes::from_static(b"{}"),
            content_type: "application/json",
        }),
        headers: &[("accept-encrypt", "msdktea")],
        idempotent,
        deadline: Instant::now() + deadline,
    }
}

fn upstream(base: &str) -> Upstream {
    UpstreamHttp::new().upstream(base).unwrap()
}

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn base_urls() {
    let base = BaseUrl::parse("http://127.0.0.1:8080/prefix/").unwrap();
    assert_eq!(
        base,
        BaseUrl {
            tls: false,
            host: "127.0.0.1".into(),
            port: 8080,
            host_header: "127.0.0.1:8080".into(),
            prefix: "/prefix".into(),
        }
    );
    let base = BaseUrl::parse("https://api.q.qq.com").unwrap();
    assert_eq!(
        (
            base.tls,
            base.port,
            base.host_header.as_str(),
            base.prefix.as_str()
        ),
        (true, 443, "api.q.qq.com", "")
    );
    let base = BaseUrl::parse("http://[::1]:9000").unwrap();
    assert_eq!(
        (base.host.as_str(), base.host_header.as_str()),
        ("::1", "[::1]:9000")
    );
    for bad in [
        "ftp://x",
        "http://user:pw@x",
        "http://x/?a=1",
        "not a url",
        "/path",
    ] {
        assert!(BaseUrl::parse(bad).is_err(), "{bad} was accepted");
    }
    let error = BaseUrl::parse("http://gamegate:hunter2@x").unwrap_err();
    assert!(!error.to_string().contains("hunter2"), "{error}");
}

#[tokio::test]
async fn keep_alive_connections_are_reused_and_requests_are_well_formed() {
    let mut server = scripted(vec![vec![Reply::Send(OK_HELLO); 3]]).await;
    let upstream = upstream(&server.base);
    for _ in 0..3 {
        let answer = upstream.send(post("/x?y=1", SECOND, false)).await.unwrap();
        assert_eq!(&answer.body[..], b"hello");
        assert_eq!(answer.headers.get("content-encrypt").unwrap(), "msdktea");
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
    let request = String::from_utf8(server.requests.recv().await.unwrap()).unwrap();
    let port = server
        .base
        .split(':')
        .nth(2)
        .unwrap()
        .trim_end_matches("/prefix/");
    assert_eq!(
        request,
        format!(
            "POST /prefix/x?y=1 HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nuser-agent: {USER_AGENT}\r\n\
             accept-encrypt: msdktea\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{{}}"
        )
    );
}

#[tokio::test]
async fn chunked_answers_with_extensions_and_trailers() {
    const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
        5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n";
    let server = scripted(vec![vec![Reply::Send(CHUNKED), Reply::Trickle(CHUNKED)]]).await;
    let upstream = upstream(&server.base);
    for _ in 0..2 {
        let answer = upstream.send(post("/x", SECOND, false)).await.unwrap();
        assert_eq!(&answer.body[..], b"hello world");
    }
    // Framing was kept: the second answer came on the same connection.
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn answers_arriving_a_byte_at_a_time_and_after_100_continue() {
    const CONTINUED: &[u8] =
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let server = scripted(vec![vec![Reply::Trickle(OK_HELLO), Reply::Send(CONTINUED)]]).await;
    let upstream = upstream(&server.base);
    let answer = upstream.send(post("/x", SECOND, false)).await.unwrap();
    assert_eq!(&answer.body[..], b"hello");
    let answer = upstream.send(post("/x", SECOND, false)).await.unwrap();
    assert_eq!(&answer.body[..], b"ok");
}

#[tokio::test]
async fn an_answer_delimited_by_close_is_read_to_the_end_and_not_reused() {
    const UNTIL_CLOSE: &[u8] = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"ret\":0}";
    let server = scripted(vec![vec![Reply::SendAndClose(UNTIL_CLOSE)]]).await;
    let upstream = upstream(&server.base);
    for _ in 0..2 {
        let answer = upstream.send(post("/x", SECOND, false)).await.unwrap();
        assert_eq!(&answer.body[..], b"{\"ret\":0}");
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_pooled_connection_the_platform_closed_is_not_used() {
    // The platform answers with keep-alive, then closes the idle connection.
    let server = scripted(vec![vec![Reply::SendAndClose(OK_HELLO)]]).await;
    let upstream = upstream(&server.base);
    upstream.send(post("/x", SECOND, false)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // A write: it must not be sent on the closed connection and fail.
    let answer = upstream.send(post("/x", SECOND, false)).await.unwrap();
    assert_eq!(&answer.body[..], b"hello");
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_reused_connection_closed_under_a_request_is_reported_stale_and_not_resent() {
    // Each connection answers once, then closes (or resets) on the next
    // request without answering: the close crossed the request.
    let server = scripted(vec![
        vec![Reply::Send(OK_HELLO), Reply::Close],
        vec![Reply::Send(OK_HELLO), Reply::Reset],
        vec![Reply::Send(OK_HELLO)],
    ])
    .await;
    let upstream = upstream(&server.base);
    upstream.send(post("/x", SECOND, true)).await.unwrap();
    // A read: the client does not send it again itself (the retry policy
    // does, counting the attempt); it says why.
    let error = upstream.send(post("/x", SECOND, true)).await.err().unwrap();
    assert!(matches!(error.kind(), ErrorKind::ClosedEarly), "{error:?}");
    assert!(error.is_stale_connection(), "{error:?}");
    assert!(error.request_written() && !error.answer_started());
    assert!(error.may_have_reached_platform() && !error.answer_malformed());
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
    // What the retry policy does next: a new connection (the closed one was
    // not pooled again).
    let answer = upstream.send(post("/x", SECOND, true)).await.unwrap();
    assert_eq!(&answer.body[..], b"hello");
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
    // A write on a reused connection reset under it: stale too, and the
    // platform may have read it (the caller does not resend a write).
    let error = upstream
        .send(post("/x", SECOND, false))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(error.kind(), ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::ConnectionReset),
        "{error:?}"
    );
    assert!(error.is_stale_connection() && error.may_have_reached_platform());
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_new_connection_closed_before_answering_is_not_stale() {
    let server = scripted(vec![vec![Reply::Close]]).await;
    let error = upstream(&server.base)
        .send(post("/x", SECOND, true))
        .await
        .err()
        .unwrap();
    assert!(matches!(error.kind(), ErrorKind::ClosedEarly), "{error:?}");
    // The platform took a new connection and dropped the request: not the
    // race of an idle connection, so nothing says a resend would fare better.
    assert!(!error.is_stale_connection() && error.may_have_reached_platform());
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_reused_connection_that_goes_silent_is_a_timeout_not_stale() {
    let server = scripted(vec![vec![Reply::Send(OK_HELLO), Reply::Hang]]).await;
    let upstream = upstream(&server.base);
    upstream.send(post("/x", SECOND, true)).await.unwrap();
    let error = upstream
        .send(post("/x", Duration::from_millis(200), true))
        .await
        .err()
        .unwrap();
    assert!(
        error.is_timeout() && !error.is_stale_connection(),
        "{error:?}"
    );
    assert!(error.may_have_reached_platform());
}

#[tokio::test]
async fn the_first_answer_byte_counts_even_when_the_deadline_ends_the_exchange() {
    // Part of a head, then silence: the exchange is dropped by the deadline
    // mid-answer, and must still tell that an answer had begun.
    let server = scripted(vec![vec![Reply::Send(b"HTTP/1.1 200 OK\r\nContent-Le")]]).await;
    let error = failure(&upstream(&server.base), Duration::from_millis(200)).await;
    assert_cause(&error, Cause::TimeoutAfterSend, &host_of(&server.base));
    assert!(
        error.answer_started() && !error.answer_complete(),
        "{error:?}"
    );
    assert!(error.may_have_reached_platform() && !error.is_stale_connection());
}

#[tokio::test]
async fn may_have_reached_platform_is_a_written_request_without_a_complete_answer() {
    // Nothing written: a refused connection, a deadline already past.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let refused = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let error = failure(&upstream(&refused), SECOND).await;
    assert!(!error.may_have_reached_platform(), "{error:?}");
    let server = scripted(vec![vec![
        Reply::Send(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"),
        Reply::Send(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n{}"),
    ]])
    .await;
    let upstream = upstream(&server.base);
    let error = failure(&upstream, Duration::ZERO).await;
    assert!(!error.may_have_reached_platform(), "{error:?}");
    // Answered completely (a non-2xx status): the outcome is known.
    let error = failure(&upstream, SECOND).await;
    assert_eq!(error.status(), Some(503));
    assert!(!error.may_have_reached_platform(), "{error:?}");
    // Answered, but not with a well-formed answer (cut short): the platform
    // had the request and its outcome is not known.
    let server = scripted(vec![vec![Reply::SendAndClose(
        b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}",
    )]])
    .await;
    let error = failure(&self::upstream(&server.base), SECOND).await;
    assert!(error.answer_malformed() && error.may_have_reached_platform());
}

#[tokio::test]
async fn a_retry_after_of_a_non_2xx_answer_is_kept_and_bounded() {
    const BUSY: &[u8] =
        b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n";
    const BUSY_FOR_DAYS: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
        Retry-After: 864000\r\nContent-Length: 0\r\n\r\n";
    const BUSY_SOON: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
        Retry-After: soon\r\nContent-Length: 0\r\n\r\n";
    const UNAVAILABLE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
    let server = scripted(vec![vec![
        Reply::Send(BUSY),
        Reply::Send(BUSY_FOR_DAYS),
        Reply::Send(BUSY_SOON),
        Reply::Send(UNAVAILABLE),
    ]])
    .await;
    let upstream = upstream(&server.base);
    let mut outcomes = Vec::new();
    for _ in 0..4 {
        let error = failure(&upstream, SECOND).await;
        assert_eq!(error.cause(), None, "{error:?}");
        // The header's value is never in the error's text.
        for text in [error.to_string(), format!("{error:?}")] {
            assert!(!text.contains("soon") && !text.contains("864000"), "{text}");
        }
        outcomes.push((error.status(), error.retry_after()));
    }
    assert_eq!(
        outcomes,
        [
            (Some(429), Some(Duration::from_secs(7))),
            (Some(503), Some(error::MAX_RETRY_AFTER)),
            (Some(503), None),
            (Some(503), None),
        ]
    );
}

#[test]
fn retry_after_values() {
    use std::time::UNIX_EPOCH;
    // Sun, 06 Nov 1994 08:49:37 GMT (RFC 9110's example).
    let now = UNIX_EPOCH + Duration::from_secs(784_111_777);
    let delay = |value: &str| error::retry_after_delay(value.as_bytes(), now);
    assert_eq!(delay("120"), Some(Duration::from_secs(120)));
    assert_eq!(delay(" 0 "), Some(Duration::ZERO));
    assert_eq!(delay("3601"), Some(error::MAX_RETRY_AFTER));
    assert_eq!(
        delay("99999999999999999999999"),
        Some(error::MAX_RETRY_AFTER)
    );
    assert_eq!(
        delay("Sun, 06 Nov 1994 08:51:07 GMT"),
        Some(Duration::from_secs(90))
    );
    assert_eq!(
        delay("Thu, 01 Mar 1996 00:00:00 GMT"),
        Some(error::MAX_RETRY_AFTER)
    );
    // Already past: no delay.
    assert_eq!(delay("Sat, 05 Nov 1994 08:49:37 GMT"), Some(Duration::ZERO));
    assert_eq!(delay("Thu, 01 Jan 1970 00:00:00 GMT"), Some(Duration::ZERO));
    // A leap day, against a clock just before it.
    let leap = UNIX_EPOCH + Duration::from_secs(951_782_399); // 2000-02-28 23:59:59
    assert_eq!(
        error::retry_after_delay(b"Tue, 29 Feb 2000 00:00:01 GMT", leap),
        Some(Duration::from_secs(2))
    );
    for bad in [
        "",
        "-1",
        "+5",
        "1.5",
        "5 s",
        "soon",
        // The obsolete date forms are not read.
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 32 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 06 Nov 1969 08:49:37 GMT",
    ] {
        assert_eq!(delay(bad), None, "{bad:?}");
    }
}

#[tokio::test]
async fn status_deadline_and_limits() {
    const UNAVAILABLE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
    static HUGE_HEAD: std::sync::LazyLock<&'static [u8]> = std::sync::LazyLock::new(|| {
        let mut head = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
        head.extend(std::iter::repeat_n(b'a', MAX_HEAD_BYTES));
        head.extend_from_slice(b"\r\n\r\n");
        head.leak()
    });
    let server = scripted(vec![vec![Reply::Send(UNAVAILABLE), Reply::Hang]]).await;
    let upstream = upstream(&server.base);
    let error = upstream
        .send(post("/x?access_token=secret-token", SECOND, false))
        .await
        .err()
        .unwrap();
    assert_eq!(error.status(), Some(503), "{error:?}");
    assert!(error.request_written() && error.answer_complete());
    let started = std::time::Instant::now();
    let error = upstream
        .send(post(
            "/x?access_token=secret-token",
            Duration::from_millis(200),
            false,
        ))
        .await
        .err()
        .unwrap();
    assert!(error.is_timeout(), "{error:?}");
    // The server read the request and never answered.
    assert!(error.request_written() && !error.answer_complete());
    assert!(started.elapsed() < Duration::from_millis(600));
    for text in [format!("{error}"), format!("{error:?}")] {
        assert!(!text.contains("secret-token"), "{text}");
    }

    let server = scripted(vec![vec![Reply::Send(&HUGE_HEAD)]]).await;
    let error = self::upstream(&server.base)
        .send(post("/x?access_token=secret-token", SECOND, false))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(error.kind(), ErrorKind::TooLarge(MAX_HEAD_BYTES)),
        "{error:?}"
    );
    for text in [format!("{error}"), format!("{error:?}")] {
        assert!(!text.contains("secret-token"), "{text}");
    }
}

#[tokio::test]
async fn a_content_length_that_is_not_only_digits_is_bad_framing() {
    for answer in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\n{}"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: -0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2 2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
    ] {
        let server = scripted(vec![vec![Reply::Send(answer)]]).await;
        let error = upstream(&server.base)
            .send(post("/x", SECOND, false))
            .await
            .err()
            .unwrap_or_else(|| panic!("accepted {:?}", String::from_utf8_lossy(answer)));
        assert!(
            matches!(error.kind(), ErrorKind::Protocol("invalid content-length")),
            "{error:?}"
        );
        assert!(error.answer_malformed());
    }
}

#[tokio::test]
async fn targets_that_could_rewrite_the_request_are_refused() {
    let server = scripted(vec![vec![Reply::Send(OK_HELLO)]]).await;
    let upstream = upstream(&server.base);
    for target in ["/x y", "/x\r\nx-injected: 1", "x"] {
        let error = upstream
            .send(post(target, SECOND, false))
            .await
            .err()
            .unwrap();
        assert!(
            matches!(error.kind(), ErrorKind::InvalidRequest(_)),
            "{error:?}"
        );
        assert!(!error.request_written());
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 0);
}

/// A TLS server on 127.0.0.1 presenting `cert` (signed by `key`), answering
/// every `{}`-terminated request with [`OK_HELLO`]; its port.
async fn tls_server(
    cert: rustls::pki_types::CertificateDer<'static>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> u16 {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut pending = Vec::new();
                loop {
                    let mut chunk = [0u8; 4096];
                    let Ok(n) = tls.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    pending.extend_from_slice(&chunk[..n]);
                    if pending.ends_with(b"{}") {
                        pending.clear();
                        tls.write_all(OK_HELLO).await.unwrap();
                        tls.flush().await.unwrap();
                    }
                }
            });
        }
    });
    port
}

/// A self-signed certificate for `names` and its key.
fn self_signed(
    names: &[&str],
) -> (
    rustls::pki_types::CertificateDer<'static>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let names = names
        .iter()
        .map(|name| name.to_string())
        .collect::<Vec<_>>();
    let certified = rcgen::generate_simple_self_signed(names).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    (certified.cert.der().clone(), key)
}

#[tokio::test]
async fn https_bases_speak_tls_and_check_the_certificate() {
    let (cert, key) = self_signed(&["localhost"]);
    let port = tls_server(cert.clone(), key).await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let trusting = UpstreamHttp::with_root_certificates(roots)
        .upstream(&format!("https://localhost:{port}"))
        .unwrap();
    for _ in 0..2 {
        let answer = trusting.send(post("/x", SECOND, false)).await.unwrap();
        assert_eq!(&answer.body[..], b"hello");
    }

    // The public roots do not know this certificate.
    let error = UpstreamHttp::new()
        .upstream(&format!("https://localhost:{port}"))
        .unwrap()
        .send(post("/x", SECOND, false))
        .await
        .err()
        .unwrap();
    assert!(matches!(error.kind(), ErrorKind::Tls(_)), "{error:?}");
    assert!(!error.request_written());
}

#[tokio::test]
async fn a_refused_connection_writes_nothing() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let error = upstream(&base)
        .send(post("/x", SECOND, false))
        .await
        .err()
        .unwrap();
    assert!(matches!(error.kind(), ErrorKind::Connect(_)), "{error:?}");
    assert!(!error.request_written() && !error.answer_complete());
    assert_cause(&error, Cause::ConnectRefused, &host_of(&base));
}

#[tokio::test]
async fn a_deadline_already_past_sends_nothing() {
    let server = scripted(vec![vec![Reply::Send(OK_HELLO)]]).await;
    let error = upstream(&server.base)
        .send(post("/x", Duration::ZERO, false))
        .await
        .err()
        .unwrap();
    assert!(error.is_timeout() && !error.request_written(), "{error:?}");
    assert_eq!(server.connections.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_read_cut_after_part_of_its_answer_is_not_resent() {
    const CUT: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhel";
    let server = scripted(vec![vec![Reply::Send(OK_HELLO), Reply::SendAndClose(CUT)]]).await;
    let upstream = upstream(&server.base);
    upstream.send(post("/x", SECOND, true)).await.unwrap();
    let error = upstream.send(post("/x", SECOND, true)).await.err().unwrap();
    assert!(matches!(error.kind(), ErrorKind::ClosedEarly), "{error:?}");
    assert!(error.request_written() && !error.answer_complete());
    // The platform answered something: the request reached it, so it is not
    // "nothing received", nor a stale connection a read could go again on.
    assert!(error.answer_started() && error.answer_malformed());
    assert!(!error.is_stale_connection() && error.may_have_reached_platform());
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
}

// One real failure per cause: each names the host (`host:port`, the port
// because it is not 80), never the target.

/// A target whose query holds what must never leave gamegate's request.
const SECRET_TARGET: &str = "/v3/user/get_dawanka_info?openkey=secret-openkey&sig=secret-sig";

/// The host part of a `http://host:port/...` base.
fn host_of(base: &str) -> String {
    BaseUrl::parse(base).unwrap().host_header
}

fn with_connect_timeout(mut upstream: Upstream, timeout: Duration) -> Upstream {
    Arc::get_mut(&mut upstream.inner)
        .expect("an upstream nobody else holds")
        .connect_timeout = timeout;
    upstream
}

async fn failure(upstream: &Upstream, deadline: Duration) -> Error {
    match upstream.send(post(SECRET_TARGET, deadline, false)).await {
        Ok(answer) => panic!("answered {:?}", answer.body),
        Err(error) => error,
    }
}

/// `error` is of `cause` with `host`, and its texts hold nothing of the
/// target. (What the gateway makes of it, `platform::transport_error`, is a
/// layer above: `errors::tests` and the end-to-end `causes` tests check it.)
fn assert_cause(error: &Error, cause: Cause, host: &str) {
    assert_eq!(error.cause(), Some(cause), "{error:?}");
    assert_eq!(error.host(), host, "{error:?}");
    for text in [error.to_string(), format!("{error:?}")] {
        assert!(
            !text.contains("secret") && !text.contains("get_dawanka_info"),
            "{text}"
        );
    }
}

/// A listener whose accept queue is full and never drained: Linux drops the
/// SYN of every further connect (`tcp_abort_on_overflow` is 0 by default), so
/// a connect to it neither succeeds nor fails until a timeout. A backlog of 0
/// holds one connection; probes are queued until one is not answered.
async fn full_backlog() -> (tokio::net::TcpListener, Vec<TcpStream>, String) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let address = listener.local_addr().unwrap();
    let mut queued = Vec::new();
    loop {
        let probe = TcpStream::connect(address);
        match tokio::time::timeout(Duration::from_millis(100), probe).await {
            Ok(Ok(stream)) => queued.push(stream),
            Ok(Err(error)) => panic!("a connect to a full backlog failed at once: {error}"),
            Err(_) => break,
        }
        assert!(queued.len() < 16, "the accept queue never fills");
    }
    (listener, queued, format!("http://{address}"))
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_dns_and_the_default_port_is_not_named() {
    // `.invalid` never resolves (RFC 6761). Here the resolver says so within
    // milliseconds; a resolver that hung would end at the connect timeout,
    // which is `dns` too, so the test shortens that timeout to stay fast and
    // deterministic wherever it runs.
    let upstream = with_connect_timeout(
        upstream("http://platform.gamegate-test.invalid/prefix"),
        SECOND,
    );
    let started = std::time::Instant::now();
    let error = failure(&upstream, Duration::from_secs(5)).await;
    assert!(started.elapsed() < Duration::from_millis(1_500));
    assert_cause(&error, Cause::Dns, "platform.gamegate-test.invalid");
    assert!(
        matches!(
            error.kind(),
            ErrorKind::Resolve(_) | ErrorKind::ResolveTimeout
        ),
        "{error:?}"
    );
    assert!(!error.request_written());
}

#[tokio::test]
async fn a_connect_nobody_answers_is_connect_timeout() {
    let (_listener, _queued, base) = full_backlog().await;
    let upstream = with_connect_timeout(upstream(&base), Duration::from_millis(200));
    let started = std::time::Instant::now();
    let error = failure(&upstream, Duration::from_secs(5)).await;
    let elapsed = started.elapsed();
    assert_cause(&error, Cause::ConnectTimeout, &host_of(&base));
    assert!(
        elapsed >= Duration::from_millis(190) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
    assert!(!error.request_written());
}

#[tokio::test]
async fn a_deadline_that_passes_before_the_request_is_written_is_timeout_before_send() {
    // Already past: nothing is attempted.
    let server = scripted(vec![vec![Reply::Send(OK_HELLO)]]).await;
    let error = failure(&upstream(&server.base), Duration::ZERO).await;
    assert_cause(&error, Cause::TimeoutBeforeSend, &host_of(&server.base));
    assert_eq!(server.connections.load(Ordering::SeqCst), 0);

    // Shorter than the connect: it passes while connecting (the connect
    // timeout, 3 s, is far off).
    let (_listener, _queued, base) = full_backlog().await;
    let started = std::time::Instant::now();
    let error = failure(&upstream(&base), Duration::from_millis(150)).await;
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_cause(&error, Cause::TimeoutBeforeSend, &host_of(&base));
    assert!(error.is_timeout() && !error.request_written());
}

#[tokio::test]
async fn a_platform_that_reads_the_request_and_stalls_is_timeout_after_send() {
    let mut server = scripted(vec![vec![Reply::Hang]]).await;
    let error = failure(&upstream(&server.base), Duration::from_millis(200)).await;
    assert_cause(&error, Cause::TimeoutAfterSend, &host_of(&server.base));
    assert!(error.request_written());
    // The server did read it.
    assert!(server.requests.recv().await.is_some());
}

#[tokio::test]
async fn certificates_that_cannot_be_trusted_are_tls() {
    // Trusted, but for another name.
    let (cert, key) = self_signed(&["other.example"]);
    let port = tls_server(cert.clone(), key).await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let base = format!("https://localhost:{port}");
    let error = failure(
        &UpstreamHttp::with_root_certificates(roots)
            .upstream(&base)
            .unwrap(),
        SECOND,
    )
    .await;
    assert_cause(&error, Cause::Tls, &format!("localhost:{port}"));
    assert!(!error.request_written());

    // For this name, but signed by nobody the client trusts.
    let (cert, key) = self_signed(&["localhost"]);
    let port = tls_server(cert, key).await;
    let (other, _) = self_signed(&["localhost"]);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(other).unwrap();
    let error = failure(
        &UpstreamHttp::with_root_certificates(roots)
            .upstream(&format!("https://localhost:{port}"))
            .unwrap(),
        SECOND,
    )
    .await;
    assert_cause(&error, Cause::Tls, &format!("localhost:{port}"));
}

#[tokio::test]
async fn a_platform_that_resets_the_connection_is_reset() {
    let server = scripted(vec![vec![Reply::Reset]]).await;
    let error = failure(&upstream(&server.base), SECOND).await;
    assert_cause(&error, Cause::Reset, &host_of(&server.base));
    assert!(
        matches!(error.kind(), ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::ConnectionReset),
        "{error:?}"
    );
    assert!(error.request_written() && !error.answer_malformed());
}

#[tokio::test]
async fn a_platform_that_closes_before_its_answer_is_complete_is_closed_early() {
    // Mid-answer: the gateway calls it a malformed answer, the cause says how.
    const CUT: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhel";
    let server = scripted(vec![vec![Reply::SendAndClose(CUT)]]).await;
    let error = failure(&upstream(&server.base), SECOND).await;
    assert_cause(&error, Cause::ClosedEarly, &host_of(&server.base));
    assert!(error.answer_malformed());
    // Before any byte of an answer.
    let server = scripted(vec![vec![Reply::Close]]).await;
    let error = failure(&upstream(&server.base), SECOND).await;
    assert_cause(&error, Cause::ClosedEarly, &host_of(&server.base));
    assert!(error.request_written() && !error.answer_malformed());
}

#[tokio::test]
async fn an_answer_that_is_not_http_is_malformed_answer() {
    let server = scripted(vec![vec![Reply::Send(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")]]).await;
    let error = failure(&upstream(&server.base), SECOND).await;
    assert_cause(&error, Cause::MalformedAnswer, &host_of(&server.base));
    assert!(error.answer_malformed());
}

#[tokio::test]
async fn an_http_error_status_is_no_transport_failure() {
    const UNAVAILABLE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
    let server = scripted(vec![vec![Reply::Send(UNAVAILABLE)]]).await;
    let error = failure(&upstream(&server.base), SECOND).await;
    assert_eq!((error.status(), error.cause()), (Some(503), None));
    assert_eq!(error.host(), host_of(&server.base));
}

/// Reads `answer` with a connection over a real socket, the platform writing
/// it whole or a byte at a time, then closing: the answer and how far it got.
async fn read_over_socket(
    answer: &[u8],
    trickle: bool,
    max_body: usize,
) -> (Result<connection::Answer, ErrorKind>, Progress, Connection) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (mut platform, _) = listener.accept().await.unwrap();
    platform.set_nodelay(true).unwrap();
    let answer = answer.to_vec();
    tokio::spawn(async move {
        // A write fails once the client stopped reading: nothing to check.
        if trickle {
            for byte in &answer {
                if platform.write_all(&[*byte]).await.is_err() {
                    return;
                }
                tokio::task::yield_now().await;
            }
        } else if platform.write_all(&answer).await.is_err() {
            return;
        }
        let _ = platform.shutdown().await;
    });
    let mut connection = Connection::new(Stream::Plain(client), max_body);
    let mut progress = Progress::default();
    let read = tokio::time::timeout(
        Duration::from_secs(10),
        connection.round_trip(&[], &mut progress),
    )
    .await
    .expect("an answer that ends");
    (read, progress, connection)
}

/// What a row of [`malformed_and_ambiguous_answers`] must come to.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Accepted with this body, the connection reusable.
    Kept(&'static [u8]),
    /// Accepted with this body, the connection closed after it.
    Closed(&'static [u8]),
    /// Refused: `ErrorKind::Protocol(text)`, cause `malformed_answer`.
    Malformed(&'static str),
    /// Refused: over a limit, cause `malformed_answer`.
    TooLarge,
    /// Cut short after part of an answer: cause `closed_early`, malformed.
    Cut,
    /// Closed before any byte: cause `closed_early`, nothing received.
    Nothing,
}

fn repeated(prefix: &str, unit: &str, times: usize, suffix: &str) -> Vec<u8> {
    format!("{prefix}{}{suffix}", unit.repeat(times)).into_bytes()
}

#[tokio::test]
async fn malformed_and_ambiguous_answers() {
    use Expect::*;
    const OK: &str = "HTTP/1.1 200 OK\r\n";
    const CHUNKED: &str = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    let text = |t: &str| t.as_bytes().to_vec();
    let rows: Vec<(Vec<u8>, Expect)> = vec![
        // Content-Length.
        (
            text("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
            Kept(b"hello"),
        ),
        (
            text("HTTP/1.1 200 OK\r\nContent-Length: 005\r\n\r\nhello"),
            Kept(b"hello"),
        ),
        // Identical duplicates, on two lines or as a list, as hyper takes them.
        (
            text("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"),
            Kept(b"hello"),
        ),
        (
            text("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello"),
            Kept(b"hello"),
        ),
        (
            text("HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!"),
            Malformed("conflicting content-length"),
        ),
        (
            text("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
            Malformed("conflicting content-length"),
        ),
        (
            text("HTTP/1.1 200 OK\r\nContent-Length: 5,\r\n\r\nhello"),
            Malformed("invalid content-length"),
        ),
        (
            text("HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello"),
            Malformed("invalid content-length"),
        ),
        (
            text("HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nhello"),
            Malformed("invalid content-length"),
        ),
        (
            text("HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\nhello"),
            Malformed("invalid content-length"),
        ),
        (
            text("HTTP/1.1 200 OK\r\nContent-Length: 5 5\r\n\r\nhello"),
            Malformed("invalid content-length"),
        ),
        (
            text("HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\nhello"),
            Malformed("invalid content-length"),
        ),
        (
            text("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
            Malformed("invalid content-length"),
        ),
        (
            text("HTTP/1.1 200 OK\r\nContent-Length: 600000\r\n\r\nhello"),
            TooLarge,
        ),
        (
            text("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello"),
            Cut,
        ),
        // Transfer-Encoding.
        (
            text("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
            Kept(b"hello"),
        ),
        (
            text("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nhello"),
            Malformed("transfer-encoding is not chunked"),
        ),
        (
            text(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            ),
            Malformed("transfer-encoding is not chunked"),
        ),
        (
            text("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nhello"),
            Malformed("transfer-encoding is not chunked"),
        ),
        (
            text(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            ),
            Malformed("transfer-encoding is not chunked"),
        ),
        (
            text("HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\n\r\nhello"),
            Malformed("transfer-encoding is not chunked"),
        ),
        (
            text("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"),
            Cut,
        ),
        // Both: chunked wins, and the connection is not trusted after it.
        (
            text(
                "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            ),
            Closed(b"hello"),
        ),
        (
            text(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            ),
            Closed(b"hello"),
        ),
        // HTTP/1.0.
        (
            text("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"),
            Closed(b"ok"),
        ),
        (
            text("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"),
            Kept(b"ok"),
        ),
        (
            text("HTTP/1.0 200 OK\r\nConnection: close, keep-alive\r\nContent-Length: 2\r\n\r\nok"),
            Closed(b"ok"),
        ),
        (
            text("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nok"),
            Closed(b"ok"),
        ),
        (
            text(
                "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            ),
            Closed(b"ok"),
        ),
        // Connection, and no framing at all.
        (
            text("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"),
            Closed(b"ok"),
        ),
        (
            text("HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Close\r\nContent-Length: 2\r\n\r\nok"),
            Closed(b"ok"),
        ),
        (text("HTTP/1.1 200 OK\r\n\r\nok"), Closed(b"ok")),
        (text("HTTP/1.1 204 No Content\r\n\r\n"), Kept(b"")),
        (
            text("HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n"),
            Kept(b""),
        ),
        // Interim heads: at most four.
        (
            repeated(
                "",
                "HTTP/1.1 100 Continue\r\n\r\n",
                4,
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            ),
            Kept(b"ok"),
        ),
        (
            repeated(
                "",
                "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n",
                5,
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            ),
            Malformed("too many interim answers"),
        ),
        (
            text("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"),
            Malformed("unexpected protocol switch"),
        ),
        (text("HTTP/1.1 100 Continue\r\n\r\n"), Cut),
        // The head.
        (
            text("HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n"),
            Malformed("invalid status"),
        ),
        (
            text("SSH-2.0-OpenSSH_9.6\r\n\r\n"),
            Malformed("malformed answer head"),
        ),
        (
            text("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n  folded\r\n\r\nok"),
            Malformed("malformed answer head"),
        ),
        (text("HTTP/1.1 200 OK\r\nContent-"), Cut),
        (text(""), Nothing),
        // Chunk-size lines.
        (
            format!("{CHUNKED}5 ;name=value\r\nhello\r\n0\r\n\r\n").into_bytes(),
            Kept(b"hello"),
        ),
        (
            format!("{CHUNKED}5;a=1;b=\"x y\"\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n").into_bytes(),
            Kept(b"hello"),
        ),
        (
            format!("{CHUNKED}+5\r\nhello\r\n0\r\n\r\n").into_bytes(),
            Malformed("malformed chunk size"),
        ),
        (
            format!("{CHUNKED}0x5\r\nhello\r\n0\r\n\r\n").into_bytes(),
            Malformed("malformed chunk size"),
        ),
        (
            format!("{CHUNKED} 5\r\nhello\r\n0\r\n\r\n").into_bytes(),
            Malformed("malformed chunk size"),
        ),
        (
            format!("{CHUNKED}\r\nhello\r\n0\r\n\r\n").into_bytes(),
            Malformed("malformed chunk size"),
        ),
        (
            format!("{CHUNKED}5\nhello\r\n0\r\n\r\n").into_bytes(),
            Malformed("malformed chunk size"),
        ),
        (
            format!("{CHUNKED}5\rhello\r\n0\r\n\r\n").into_bytes(),
            Malformed("malformed chunk size"),
        ),
        (
            format!("{CHUNKED}5;a\nb\r\nhello\r\n0\r\n\r\n").into_bytes(),
            Malformed("malformed chunk extension"),
        ),
        (
            format!("{CHUNKED}10000000000000000\r\n").into_bytes(),
            Malformed("chunk size too large"),
        ),
        (format!("{CHUNKED}100000\r\nhello").into_bytes(), TooLarge),
        (
            format!("{CHUNKED}5\r\nhello!\r\n0\r\n\r\n").into_bytes(),
            Malformed("chunk not followed by crlf"),
        ),
        (
            repeated(&format!("{CHUNKED}5;"), "e", 1100, "\r\nhello\r\n0\r\n\r\n"),
            Malformed("chunk size line too long"),
        ),
        (
            repeated(
                CHUNKED,
                &format!("1;{}\r\nx\r\n", "e".repeat(1000)),
                17,
                "0\r\n\r\n",
            ),
            Malformed("chunk extensions too long"),
        ),
        (
            repeated(
                CHUNKED,
                &format!("1;{}\r\nx\r\n", "e".repeat(1000)),
                16,
                "0\r\n\r\n",
            ),
            Kept(b"xxxxxxxxxxxxxxxx"),
        ),
        (
            format!("{CHUNKED}5\r\nhello\r\n0\r\nX-Trailer: a\rb\r\n\r\n").into_bytes(),
            Malformed("malformed trailer"),
        ),
        (
            format!("{CHUNKED}5\r\nhello\r\n0\r\nX-Trailer: 1\r\n").into_bytes(),
            Cut,
        ),
        (
            format!("{OK}Content-Length: 2\r\n\r\nok").into_bytes(),
            Kept(b"ok"),
        ),
    ];
    assert!(rows.len() >= 25);
    for (answer, expect) in rows {
        let shown = String::from_utf8_lossy(&answer[..answer.len().min(160)]).into_owned();
        for trickle in [false, true] {
            let (read, progress, connection) =
                read_over_socket(&answer, trickle, DEFAULT_MAX_ANSWER_BYTES).await;
            let context = format!("{shown:?} (a byte at a time: {trickle})");
            match (expect, read) {
                (Kept(body) | Closed(body), Ok(read)) => {
                    assert_eq!(&read.body[..], body, "{context}");
                    assert_eq!(read.keep_alive, matches!(expect, Kept(_)), "{context}");
                    // Whatever is kept alive ended exactly where its framing said.
                    if read.keep_alive {
                        assert!(connection.buffer.is_empty(), "{context}");
                    }
                }
                (Malformed(_) | TooLarge | Cut | Nothing, Err(kind)) => {
                    let error = Error::new(kind.clone(), progress);
                    let cause = match expect {
                        Cut | Nothing => Cause::ClosedEarly,
                        _ => Cause::MalformedAnswer,
                    };
                    assert_eq!(error.cause(), Some(cause), "{context}: {kind:?}");
                    assert_eq!(
                        error.answer_malformed(),
                        !matches!(expect, Nothing),
                        "{context}"
                    );
                    assert_eq!(
                        progress.answer_started,
                        !matches!(expect, Nothing),
                        "{context}"
                    );
                    match expect {
                        Malformed(text) => assert!(
                            matches!(kind, ErrorKind::Protocol(t) if t == text),
                            "{context}: {kind:?}"
                        ),
                        TooLarge => assert!(
                            matches!(kind, ErrorKind::TooLarge(_)),
                            "{context}: {kind:?}"
                        ),
                        _ => assert!(
                            matches!(kind, ErrorKind::ClosedEarly),
                            "{context}: {kind:?}"
                        ),
                    }
                }
                (expect, read) => panic!(
                    "{context}: expected {expect:?}, got {:?}",
                    read.map(|a| (a.status, a.body, a.keep_alive))
                ),
            }
        }
    }
}

#[tokio::test]
async fn a_declared_length_is_not_reserved_before_the_body_arrives() {
    // 500 000 bytes declared, 10 sent, then silence: the buffer holds what
    // arrived (grown as it did), not what was declared.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (mut platform, _) = listener.accept().await.unwrap();
    platform
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 500000\r\n\r\n0123456789")
        .await
        .unwrap();
    let mut connection = Connection::new(Stream::Plain(client), 1 << 20);
    let mut progress = Progress::default();
    let read = tokio::time::timeout(
        Duration::from_millis(200),
        connection.round_trip(&[], &mut progress),
    )
    .await;
    assert!(read.is_err(), "the answer cannot be complete");
    assert!(progress.answer_started);
    assert!(
        connection.buffer.capacity() <= 4 * FIRST_READ,
        "{} bytes reserved for 10",
        connection.buffer.capacity()
    );
    drop(platform);

    // A body that does arrive grows the buffer geometrically to its size,
    // not beyond twice it.
    let mut body = vec![b'a'; 300_000];
    body[299_999] = b'z';
    let mut answer = b"HTTP/1.1 200 OK\r\nContent-Length: 300000\r\n\r\n".to_vec();
    answer.extend_from_slice(&body);
    let (read, _, _) = read_over_socket(&answer, false, DEFAULT_MAX_ANSWER_BYTES).await;
    let read = read.unwrap();
    assert_eq!(read.body.len(), 300_000);
    assert!(read.keep_alive && read.body.ends_with(b"z"));
    // A large chunked body: the read buffer stays small, the body holds it.
    let mut chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n493e0\r\n".to_vec();
    chunked.extend_from_slice(&body);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let (read, _, connection) = read_over_socket(&chunked, false, DEFAULT_MAX_ANSWER_BYTES).await;
    assert_eq!(read.unwrap().body, body);
    assert!(connection.buffer.capacity() < 300_000);
}

#[test]
fn chunk_size_lines_are_checked_as_they_arrive() {
    use connection::{ChunkLine, MAX_CHUNK_LINE};
    let chunk_size_line = |bytes: &[u8]| connection::chunk_size_line(bytes).ok();
    let line = |len, size, extensions| {
        Some(Some(ChunkLine {
            len,
            size,
            extensions,
        }))
    };
    assert_eq!(chunk_size_line(b"1A\r\nrest"), line(4, 26, 0));
    assert_eq!(chunk_size_line(b"5;x=1\r\n"), line(7, 5, 4));
    assert_eq!(chunk_size_line(b"5\t ;x\r\n"), line(7, 5, 2));
    // Incomplete, yet valid so far.
    for partial in [&b""[..], b"5", b"5;ext", b"5\r", b"ffffffffffffffff"] {
        assert_eq!(chunk_size_line(partial), Some(None), "{partial:?}");
    }
    // Wrong at the first byte that is, whatever follows.
    for bad in [
        &b"+"[..],
        b"-1",
        b" 5",
        b";",
        b"5x",
        b"5 x",
        b"5\rx",
        b"5\n",
        b"5;\x01",
    ] {
        assert!(chunk_size_line(bad).is_none(), "{bad:?}");
    }
    assert!(chunk_size_line(b"10000000000000000").is_none());
    assert!(chunk_size_line(&[b'0'; MAX_CHUNK_LINE]).is_none());
    assert_eq!(chunk_size_line(&[b'0'; MAX_CHUNK_LINE - 1]), Some(None));
}
