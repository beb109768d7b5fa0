//! The upstream HTTP/1.1 client against scripted servers on 127.0.0.1: framing
//! (length, chunked, until close, 1xx, byte-at-a-time), keep-alive reuse, stale
//! pooled connections, deadlines, limits, TLS, errors without secrets, and one
//! real failure of each [`Cause`], each naming the host.

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
async fn a_read_is_resent_once_when_a_reused_connection_closes_under_it() {
    // The first connection answers once, then closes on the next request
    // without answering (the close crossed the request).
    let server = scripted(vec![
        vec![Reply::Send(OK_HELLO), Reply::Close],
        vec![Reply::Send(OK_HELLO), Reply::Close],
        vec![Reply::Send(OK_HELLO)],
    ])
    .await;
    let upstream = upstream(&server.base);
    upstream.send(post("/x", SECOND, true)).await.unwrap();
    let answer = upstream.send(post("/x", SECOND, true)).await.unwrap();
    assert_eq!(&answer.body[..], b"hello");
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
    // A write is not sent twice: the caller learns the platform was unreachable.
    let error = upstream
        .send(post("/x", SECOND, false))
        .await
        .err()
        .unwrap();
    assert!(matches!(error.kind(), ErrorKind::ClosedEarly), "{error:?}");
    // It was written, and no answer came: the platform may have applied it.
    assert!(error.request_written() && !error.answer_complete());
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
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
    // sent again on a new connection.
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
