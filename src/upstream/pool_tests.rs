//! The pool's hygiene and the proxies, against servers on 127.0.0.1: the
//! sweep closes idle connections the platform closed and those idle too long;
//! the connection cap makes calls wait (within their deadline) and every way
//! a connection ends gives its slot back; http bases through a proxy send
//! absolute-form requests with the proxy's credentials, https bases a
//! `CONNECT`, and a refusing proxy is named in the error without its
//! credentials. (tests/e2e/interop.rs runs the same against nginx and
//! tinyproxy.)

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use secrecy::SecretString;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};

use super::*;

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// How a test server treats each connection.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Answers every request with OK after `delay`, keeping the connection.
    Answer { delay: Duration },
    /// Answers one request, then closes the connection after `after`.
    AnswerThenClose { after: Duration },
    /// Closes the connection without answering.
    Close,
}

struct Server {
    address: String,
    accepted: Arc<AtomicUsize>,
    requests: mpsc::UnboundedReceiver<String>,
}

/// A server doing `behaviour(n)` with its n-th connection.
async fn server(behaviour: impl Fn(usize) -> Behaviour + Send + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let accepted = Arc::new(AtomicUsize::new(0));
    let (seen, requests) = mpsc::unbounded_channel();
    let counter = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let index = counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(stream, behaviour(index), seen.clone()));
        }
    });
    Server {
        address,
        accepted,
        requests,
    }
}

async fn serve(mut stream: TcpStream, behaviour: Behaviour, seen: mpsc::UnboundedSender<String>) {
    loop {
        let Some(head) = read_head(&mut stream).await else {
            return;
        };
        let _ = seen.send(head);
        match behaviour {
            Behaviour::Answer { delay } => {
                tokio::time::sleep(delay).await;
                if stream.write_all(OK).await.is_err() {
                    return;
                }
            }
            Behaviour::AnswerThenClose { after } => {
                let _ = stream.write_all(OK).await;
                tokio::time::sleep(after).await;
                return;
            }
            Behaviour::Close => return,
        }
    }
}

/// A request head and its (small, content-length) body, as text.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut bytes = Vec::new();
    let mut byte = [0u8; 1];
    while !bytes.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        bytes.push(byte[0]);
    }
    let head = String::from_utf8(bytes).unwrap();
    let length: usize = head
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_string)
        })
        .map_or(0, |n| n.trim().parse().unwrap());
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.ok()?;
    Some(head)
}

fn get(deadline: Duration) -> UpstreamCall<'static> {
    UpstreamCall {
        method: Method::Get,
        target: "/v3/user/get_info?openkey=SECRET-OPENKEY",
        body: None,
        headers: &[],
        idempotent: true,
        deadline: Instant::now() + deadline,
    }
}

fn upstream_at(base: &str, options: UpstreamOptions) -> Upstream {
    UpstreamHttp::new()
        .upstream_with(base, DEFAULT_MAX_ANSWER_BYTES, &options)
        .unwrap()
}

fn idle(upstream: &Upstream) -> usize {
    upstream.inner.idle.lock().unwrap().len()
}

/// Waits (at most 5 s) for `condition`.
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let until = Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(Instant::now() < until, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test]
async fn the_sweep_closes_idle_connections_the_platform_closed() {
    let server = server(|_| Behaviour::AnswerThenClose {
        after: Duration::from_millis(50),
    })
    .await;
    let options = UpstreamOptions {
        proxy: ProxySetting::Off,
        // A sweep every 250 ms; the connection itself is not too old.
        idle_timeout: Duration::from_secs(1),
        ..UpstreamOptions::default()
    };
    let upstream = upstream_at(&format!("http://{}", server.address), options);
    upstream.send(get(SECOND)).await.unwrap();
    assert_eq!(idle(&upstream), 1, "kept for the next call");
    eventually("the closed connection is swept", || idle(&upstream) == 0).await;
    // The next call opens a new connection, without failing on the old one.
    upstream.send(get(SECOND)).await.unwrap();
    assert_eq!(server.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn the_sweep_closes_connections_idle_too_long() {
    let server = server(|_| Behaviour::Answer {
        delay: Duration::ZERO,
    })
    .await;
    let options = UpstreamOptions {
        proxy: ProxySetting::Off,
        idle_timeout: Duration::from_millis(300),
        ..UpstreamOptions::default()
    };
    let upstream = upstream_at(&format!("http://{}", server.address), options);
    upstream.send(get(SECOND)).await.unwrap();
    upstream.send(get(SECOND)).await.unwrap();
    assert_eq!(server.accepted.load(Ordering::SeqCst), 1, "reused");
    assert_eq!(idle(&upstream), 1);
    eventually("the idle connection is closed", || idle(&upstream) == 0).await;
    // The sweep holds the upstream weakly: it ends with it.
    let pool = Arc::downgrade(&upstream.inner);
    drop(upstream);
    assert!(pool.upgrade().is_none());
}

#[tokio::test]
async fn calls_over_the_cap_wait_for_a_connection_within_their_deadline() {
    let server = server(|_| Behaviour::Answer {
        delay: Duration::from_millis(200),
    })
    .await;
    let options = UpstreamOptions {
        proxy: ProxySetting::Off,
        max_connections: Some(1),
        ..UpstreamOptions::default()
    };
    let upstream = upstream_at(&format!("http://{}", server.address), options);
    let calls = (0..3).map(|_| {
        let upstream = upstream.clone();
        tokio::spawn(async move { upstream.send(get(5 * SECOND)).await.map(drop) })
    });
    for call in futures::future::join_all(calls).await {
        call.unwrap().unwrap();
    }
    assert_eq!(
        server.accepted.load(Ordering::SeqCst),
        1,
        "three calls, one connection"
    );

    // A call that cannot get a connection before its deadline sent nothing.
    let busy = {
        let upstream = upstream.clone();
        tokio::spawn(async move { upstream.send(get(5 * SECOND)).await.map(drop) })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let error = upstream
        .send(get(Duration::from_millis(100)))
        .await
        .err()
        .unwrap();
    assert_eq!(error.cause(), Some(Cause::TimeoutBeforeSend), "{error}");
    assert!(!error.request_written());
    busy.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_connection_that_fails_gives_its_slot_back() {
    let server = server(|n| {
        if n == 0 {
            Behaviour::Close
        } else {
            Behaviour::Answer {
                delay: Duration::ZERO,
            }
        }
    })
    .await;
    let options = UpstreamOptions {
        proxy: ProxySetting::Off,
        max_connections: Some(1),
        ..UpstreamOptions::default()
    };
    let upstream = upstream_at(&format!("http://{}", server.address), options);
    let error = upstream.send(get(SECOND)).await.err().unwrap();
    assert_eq!(error.cause(), Some(Cause::ClosedEarly), "{error}");
    // Had the failed connection kept its slot, this call would wait forever.
    upstream.send(get(SECOND)).await.unwrap();
    let slots = upstream.inner.slots.as_ref().unwrap();
    assert_eq!(
        slots.available_permits(),
        0,
        "the pooled connection holds it"
    );
}

/// A proxy that records each request head and answers every one with
/// `answer` (a CONNECT too: with anything but a 200 there is no tunnel).
async fn fake_proxy(answer: &'static [u8]) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let accepted = Arc::new(AtomicUsize::new(0));
    let (seen, requests) = mpsc::unbounded_channel();
    let counter = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let seen = seen.clone();
            tokio::spawn(async move {
                while let Some(head) = read_head(&mut stream).await {
                    let _ = seen.send(head);
                    if stream.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Server {
        address,
        accepted,
        requests,
    }
}

fn through(proxy: &Server, user: Option<(&str, &str)>) -> UpstreamOptions {
    UpstreamOptions {
        proxy: ProxySetting::Url(format!("http://{}", proxy.address)),
        proxy_user: user.map(|(user, _)| user.to_string()),
        proxy_password: user.map(|(_, password)| SecretString::from(password)),
        ..UpstreamOptions::default()
    }
}

#[tokio::test]
async fn http_bases_send_absolute_form_requests_to_the_proxy() {
    let mut proxy = fake_proxy(OK).await;
    let upstream = upstream_at(
        "http://msdk.example:8080/base",
        through(&proxy, Some(("gamegate", "s3cret"))),
    );
    upstream.send(get(SECOND)).await.unwrap();
    let head = proxy.requests.recv().await.unwrap();
    assert!(
        head.starts_with(
            "GET http://msdk.example:8080/base/v3/user/get_info?openkey=SECRET-OPENKEY HTTP/1.1\r\n"
        ),
        "{head}"
    );
    assert!(head.contains("host: msdk.example:8080\r\n"), "{head}");
    // base64("gamegate:s3cret")
    assert!(
        head.contains("proxy-authorization: Basic Z2FtZWdhdGU6czNjcmV0\r\n"),
        "{head}"
    );
    // Kept alive with the proxy like with a platform.
    upstream.send(get(SECOND)).await.unwrap();
    assert_eq!(proxy.accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_proxy_refusing_the_tunnel_is_named_without_the_credentials() {
    let mut proxy = fake_proxy(
        b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    let upstream = upstream_at(
        "https://api.example",
        through(&proxy, Some(("gamegate", "s3cret-password"))),
    );
    let error = upstream.send(get(SECOND)).await.err().unwrap();
    let head = proxy.requests.recv().await.unwrap();
    assert!(
        head.starts_with("CONNECT api.example:443 HTTP/1.1\r\n"),
        "{head}"
    );
    assert!(head.contains("proxy-authorization: Basic "), "{head}");
    assert_eq!(error.cause(), Some(Cause::ConnectRefused), "{error}");
    assert!(!error.request_written());
    let text = format!("{error} {error:?}");
    assert!(text.contains(&proxy.address), "{text}");
    assert!(text.contains("refused the credentials"), "{text}");
    assert_eq!(error.host(), "api.example");
    for secret in ["s3cret", "Z2FtZWdhdGU6czNjcmV0", "SECRET-OPENKEY"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }

    // Other refusals name the status.
    let proxy = fake_proxy(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n").await;
    let upstream = upstream_at("https://api.example", through(&proxy, None));
    let error = upstream.send(get(SECOND)).await.err().unwrap();
    assert_eq!(error.cause(), Some(Cause::ConnectRefused));
    assert!(error.to_string().contains("status 403"), "{error}");
}

#[tokio::test]
async fn a_proxy_that_is_down_is_named() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    drop(listener);
    let options = UpstreamOptions {
        proxy: ProxySetting::Url(format!("http://{address}")),
        ..UpstreamOptions::default()
    };
    let upstream = upstream_at("http://msdk.example", options);
    let error = upstream.send(get(SECOND)).await.err().unwrap();
    assert_eq!(error.cause(), Some(Cause::ConnectRefused), "{error}");
    assert!(error.to_string().contains(&address), "{error}");
    assert_eq!(error.host(), "msdk.example");

    // no_proxy: the platform is reached directly (here: refused by itself).
    let options = UpstreamOptions {
        proxy: ProxySetting::Url(format!("http://{address}")),
        no_proxy: Some("127.0.0.1".into()),
        ..UpstreamOptions::default()
    };
    let server = server(|_| Behaviour::Answer {
        delay: Duration::ZERO,
    })
    .await;
    let upstream = upstream_at(&format!("http://{}", server.address), options);
    upstream.send(get(SECOND)).await.unwrap();
}
