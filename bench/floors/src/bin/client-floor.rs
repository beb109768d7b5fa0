//! The client floors: one HTTP/1.1 POST sent over and over on keep-alive connections, by
//! gamegate's own upstream client (`gamegate::upstream`, its public API) or by hyper 1's
//! lowest-level client (`hyper::client::conn::http1` over a tokio `TcpStream`), each answer read
//! in full and checked (status 200, body containing `--expect`).
//!
//!   client-floor --client gamegate|hyper --url http://127.0.0.1:18480/path?query \
//!       --body-file storage.json [--content-type application/json] [--expect '"errcode":0'] \
//!       [--connections 8] [--warmup 500] --requests 2000
//!
//! `--connections` tasks send at the same time, each one request after the other: gamegate's
//! pool then holds that many connections, as under gamegate's `-c 8 -m 16` load; the hyper
//! client opens one connection per task. The warm-up requests go first (all tasks), then the
//! measured ones. bench/run.sh runs this under callgrind twice, with two `--requests`, and takes
//! the difference: start-up, connections, warm-up and exit cancel out.
//!
//! `#[tokio::main]` like gamegate's binary: pinned to one core, one worker.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use gamegate::upstream::{Method, OutgoingBody, UpstreamCall, UpstreamHttp};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpStream, time::Instant};

#[cfg(all(unix, not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// What gamegate's client sends as `user-agent` (src/upstream/mod.rs): the hyper client sends
/// the same, so that both requests have the same bytes.
const USER_AGENT: &str = "gamegate/0.1.0";

struct Args {
    client: String,
    /// `host:port`, the authority of `--url`.
    authority: String,
    /// Path and query of `--url`.
    target: String,
    body: Bytes,
    content_type: &'static str,
    expect: String,
    connections: usize,
    warmup: usize,
    requests: usize,
}

fn usage() -> ! {
    eprintln!(
        "usage: client-floor --client gamegate|hyper --url http://HOST:PORT/PATH?QUERY \
         --body-file FILE [--content-type TYPE] [--expect TEXT] [--connections 8] \
         [--warmup 500] --requests N"
    );
    std::process::exit(2)
}

fn args() -> Args {
    let mut client = None;
    let mut url = None;
    let mut body_file = None;
    let mut content_type = "application/json".to_string();
    let mut expect = String::new();
    let mut connections = 8;
    let mut warmup = 500;
    let mut requests = None;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let value = it.next().unwrap_or_else(|| usage());
        let number = |v: &str| v.parse::<usize>().unwrap_or_else(|_| usage());
        match arg.as_str() {
            "--client" => client = Some(value),
            "--url" => url = Some(value),
            "--body-file" => body_file = Some(value),
            "--content-type" => content_type = value,
            "--expect" => expect = value,
            "--connections" => connections = number(&value),
            "--warmup" => warmup = number(&value),
            "--requests" => requests = Some(number(&value)),
            _ => usage(),
        }
    }
    let (Some(client), Some(url), Some(body_file), Some(requests)) =
        (client, url, body_file, requests)
    else {
        usage()
    };
    if client != "gamegate" && client != "hyper" || connections == 0 {
        usage()
    }
    let rest = url.strip_prefix("http://").unwrap_or_else(|| usage());
    let (authority, target) = match rest.find('/') {
        Some(i) => (rest[..i].to_string(), rest[i..].to_string()),
        None => (rest.to_string(), "/".to_string()),
    };
    let body = std::fs::read(&body_file).unwrap_or_else(|e| {
        eprintln!("{body_file}: {e}");
        std::process::exit(2)
    });
    Args {
        client,
        authority,
        target,
        body: Bytes::from(body),
        // A `&'static str` is what gamegate's OutgoingBody takes.
        content_type: Box::leak(content_type.into_boxed_str()),
        expect,
        connections,
        warmup,
        requests,
    }
}

/// Hands out request numbers below `limit` to the tasks.
struct Counter {
    next: AtomicUsize,
    limit: usize,
}

impl Counter {
    fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            next: AtomicUsize::new(0),
            limit,
        })
    }
    fn take(&self) -> bool {
        self.next.fetch_add(1, Ordering::Relaxed) < self.limit
    }
}

fn check(args: &Args, status: u16, body: &[u8]) {
    let found = args.expect.is_empty()
        || body
            .windows(args.expect.len())
            .any(|w| w == args.expect.as_bytes());
    if status != 200 || !found {
        eprintln!(
            "unexpected answer: status {status}, body {}",
            String::from_utf8_lossy(body)
        );
        std::process::exit(1);
    }
}

async fn run_gamegate(args: Arc<Args>) {
    let upstream = UpstreamHttp::new()
        .upstream(&format!("http://{}", args.authority))
        .expect("a valid base URL");
    for phase in [args.warmup, args.requests] {
        let counter = Counter::new(phase);
        let mut tasks = Vec::new();
        for _ in 0..args.connections {
            let (args, upstream, counter) = (args.clone(), upstream.clone(), counter.clone());
            tasks.push(tokio::spawn(async move {
                while counter.take() {
                    let call = UpstreamCall {
                        method: Method::Post,
                        target: &args.target,
                        body: Some(OutgoingBody {
                            bytes: args.body.clone(),
                            content_type: args.content_type,
                        }),
                        headers: &[],
                        idempotent: false,
                        deadline: Instant::now() + Duration::from_secs(30),
                    };
                    match upstream.send(call).await {
                        Ok(answer) => check(&args, answer.status, &answer.body),
                        Err(error) => {
                            eprintln!("gamegate client: {error}");
                            std::process::exit(1);
                        }
                    }
                }
            }));
        }
        for task in tasks {
            task.await.expect("a task ends");
        }
    }
}

async fn run_hyper(args: Arc<Args>) {
    // One connection per task, opened before the warm-up and kept for the whole run.
    let mut senders = Vec::new();
    for _ in 0..args.connections {
        let stream = TcpStream::connect(&args.authority).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                eprintln!("hyper connection: {error}");
            }
        });
        senders.push(sender);
    }
    for phase in [args.warmup, args.requests] {
        let counter = Counter::new(phase);
        let mut tasks = Vec::new();
        for mut sender in std::mem::take(&mut senders) {
            let (args, counter) = (args.clone(), counter.clone());
            tasks.push(tokio::spawn(async move {
                while counter.take() {
                    let request = http::Request::post(&args.target)
                        .header(http::header::HOST, &args.authority)
                        .header(http::header::USER_AGENT, USER_AGENT)
                        .header(http::header::CONTENT_TYPE, args.content_type)
                        .header(http::header::CONTENT_LENGTH, args.body.len())
                        .body(Full::new(args.body.clone()))
                        .expect("a valid request");
                    sender.ready().await.expect("connection ready");
                    let answer = sender.send_request(request).await.unwrap_or_else(|error| {
                        eprintln!("hyper client: {error}");
                        std::process::exit(1)
                    });
                    let status = answer.status().as_u16();
                    let body = answer
                        .into_body()
                        .collect()
                        .await
                        .expect("the answer body")
                        .to_bytes();
                    check(&args, status, &body);
                }
                sender
            }));
        }
        for task in tasks {
            senders.push(task.await.expect("a task ends"));
        }
    }
}

#[tokio::main]
async fn main() {
    let args = Arc::new(args());
    if args.client == "gamegate" {
        run_gamegate(args.clone()).await;
    } else {
        run_hyper(args.clone()).await;
    }
    println!(
        "{} client: {} + {} requests over {} connections answered",
        args.client, args.warmup, args.requests, args.connections
    );
}
