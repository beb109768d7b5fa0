//! Hostile input at the listener: stream and header limits advertised and
//! enforced (streams past the limit refused, bodiless ones ended), idle and
//! half-handshaken connections closed in time while real clients are served,
//! the connection limit, descriptor exhaustion without a spinning accept loop,
//! and descriptors given back (memory reused) once connections close. Every
//! test talks to 127.0.0.1 only, with a bounded number of connections; the
//! last two run the gamegate binary, so that its descriptor limit can be
//! lowered and its CPU time and memory read from /proc.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::{StreamExt, future::join_all};
use gamegate::proto::GetDawankaInfoRequest;
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::Semaphore,
    time::{Instant, sleep, timeout, timeout_at},
};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::common::Harness;

const MAGIC: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const REFUSED_STREAM: u32 = 0x7;
const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
const SETTINGS_MAX_HEADER_LIST_SIZE: u16 = 0x6;

/// The HTTP/2 client preface: the magic and an empty SETTINGS frame.
fn client_preface() -> Vec<u8> {
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&[0, 0, 0, SETTINGS, 0, 0, 0, 0, 0]);
    bytes
}

/// What the hostile connection `index` sends: most nothing, one in ten half
/// the magic, one in ten the magic without its SETTINGS frame.
fn first_bytes(index: usize) -> &'static [u8] {
    match index % 10 {
        0 => &MAGIC[..12],
        1 => MAGIC,
        _ => &[],
    }
}

/// `count` connections, opened 100 at a time (the backlog is 1024), each
/// sending `send(index)` first.
async fn connect_many(
    addr: SocketAddr,
    count: usize,
    send: impl Fn(usize) -> Vec<u8>,
) -> Vec<TcpStream> {
    futures::stream::iter(0..count)
        .map(|index| {
            let bytes = send(index);
            async move {
                let mut stream = TcpStream::connect(addr).await.unwrap();
                stream.write_all(&bytes).await.unwrap();
                stream
            }
        })
        .buffer_unordered(100)
        .collect()
        .await
}

/// The test process holds thousands of sockets too.
fn raise_open_file_limit() {
    gamegate::net::raise_open_file_limit().expect("the open file limit can be raised");
}

fn gateway_addr(harness: &Harness) -> SocketAddr {
    harness.gateway.as_ref().expect("gamegate runs").addr
}

/// One frame: kind, flags, stream id, payload.
async fn read_frame(stream: &mut TcpStream) -> std::io::Result<(u8, u8, u32, Vec<u8>)> {
    let mut header = [0u8; 9];
    stream.read_exact(&mut header).await?;
    let length = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
    let stream_id = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & !(1 << 31);
    let mut payload = vec![0u8; length];
    stream.read_exact(&mut payload).await?;
    Ok((header[3], header[4], stream_id, payload))
}

fn frame(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut bytes = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    bytes.extend_from_slice(&[kind, flags]);
    bytes.extend_from_slice(&stream_id.to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// The server's first SETTINGS frame, as identifier -> value.
async fn server_settings(addr: SocketAddr) -> HashMap<u16, u32> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(&client_preface()).await.unwrap();
    loop {
        let (kind, flags, _, payload) = timeout(Duration::from_secs(5), read_frame(&mut stream))
            .await
            .expect("the server sends its settings")
            .unwrap();
        if kind == SETTINGS && flags & ACK == 0 {
            return payload
                .chunks_exact(6)
                .map(|entry| {
                    (
                        u16::from_be_bytes([entry[0], entry[1]]),
                        u32::from_be_bytes([entry[2], entry[3], entry[4], entry[5]]),
                    )
                })
                .collect();
        }
    }
}

/// When the server closed `stream` (EOF or reset), reading and discarding
/// what it sends; `None` if it is still open at `deadline`.
async fn closed_by(stream: &mut TcpStream, deadline: Instant) -> Option<Instant> {
    let mut buffer = [0u8; 1024];
    loop {
        match timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(Instant::now()),
            Ok(Ok(_)) => {}
        }
    }
}

async fn health_check(channel: Channel) -> ServingStatus {
    let response = timeout(
        Duration::from_secs(2),
        HealthClient::new(channel).check(HealthCheckRequest::default()),
    )
    .await
    .expect("answered within 2 s")
    .expect("served");
    response.into_inner().status()
}

#[tokio::test]
async fn the_server_advertises_its_stream_and_header_limits() {
    let harness = Harness::start().await;
    let settings = server_settings(gateway_addr(&harness)).await;
    assert_eq!(settings.get(&SETTINGS_MAX_CONCURRENT_STREAMS), Some(&256));
    assert_eq!(settings.get(&SETTINGS_MAX_HEADER_LIST_SIZE), Some(&16_384));

    let harness = Harness::start_with(|config| config.listener.max_concurrent_streams = 8).await;
    let settings = server_settings(gateway_addr(&harness)).await;
    assert_eq!(settings.get(&SETTINGS_MAX_CONCURRENT_STREAMS), Some(&8));
}

/// A request's header block, every field a literal without indexing (HPACK
/// 6.2.2), so that no encoder state is needed.
fn request_headers(path: &str) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "127.0.0.1"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ] {
        block.push(0);
        block.push(name.len() as u8);
        block.extend_from_slice(name.as_bytes());
        block.push(value.len() as u8);
        block.extend_from_slice(value.as_bytes());
    }
    block
}

#[tokio::test]
async fn streams_past_the_advertised_limit_are_refused_and_bodiless_ones_end_after_the_body_timeout()
 {
    let body_timeout = Duration::from_secs(1);
    let harness = Harness::start_with(|config| {
        config.listener.request_body_timeout_ms = body_timeout.as_millis() as u64;
    })
    .await;
    let mut stream = TcpStream::connect(gateway_addr(&harness)).await.unwrap();
    stream.write_all(&client_preface()).await.unwrap();
    stream
        .write_all(&frame(SETTINGS, ACK, 0, &[]))
        .await
        .unwrap();
    // 300 requests on one connection whose bodies never come.
    let headers = request_headers("/grpc.health.v1.Health/Check");
    let mut requests = Vec::new();
    for index in 0..300 {
        requests.extend(frame(HEADERS, END_HEADERS, 2 * index + 1, &headers));
    }
    let sent_at = Instant::now();
    stream.write_all(&requests).await.unwrap();

    // The 44 past 256 are refused at once; the others are answered (with an
    // error: no body came) once the body timeout has passed.
    let mut refused = 0;
    let mut answered = HashMap::new();
    while refused + answered.len() < 300 {
        let (kind, _, stream_id, payload) =
            timeout(Duration::from_secs(10), read_frame(&mut stream))
                .await
                .expect("every stream is refused or answered within 10 s")
                .unwrap();
        match kind {
            RST_STREAM
                if u32::from_be_bytes(payload[..4].try_into().unwrap()) == REFUSED_STREAM =>
            {
                assert!(
                    sent_at.elapsed() < body_timeout,
                    "refused at once, not after {:?}",
                    sent_at.elapsed()
                );
                refused += 1;
            }
            HEADERS => {
                answered
                    .entry(stream_id)
                    .or_insert_with(|| sent_at.elapsed());
            }
            _ => {}
        }
    }
    assert_eq!(
        refused, 44,
        "streams past MAX_CONCURRENT_STREAMS are refused"
    );
    let earliest = answered.values().min().unwrap();
    let latest = answered.values().max().unwrap();
    eprintln!("256 bodiless streams answered {earliest:?} to {latest:?} after they opened");
    assert!(
        *earliest >= body_timeout - Duration::from_millis(50),
        "answered before the body timeout: {earliest:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_half_preface_connections_are_closed_in_time_while_a_client_is_served() {
    raise_open_file_limit();
    let handshake_timeout = Duration::from_secs(1);
    let harness = Harness::start_with(|config| {
        config.listener.handshake_timeout_ms = handshake_timeout.as_millis() as u64;
    })
    .await;
    let addr = gateway_addr(&harness);

    // A client calling all along, every 100 ms for 3 s.
    let channel = harness.channel.clone();
    let client = tokio::spawn(async move {
        for _ in 0..30 {
            assert_eq!(health_check(channel.clone()).await, ServingStatus::Serving);
            sleep(Duration::from_millis(100)).await;
        }
    });

    // Each is watched from the moment it is open: closed a handshake timeout
    // after gamegate accepted it, with 2 s of slack for a loaded machine.
    let slack = Duration::from_secs(2);
    let connecting = Arc::new(Semaphore::new(100));
    let watched = (0..2_000).map(|index| {
        let connecting = connecting.clone();
        tokio::spawn(async move {
            let permit = connecting.acquire_owned().await.unwrap();
            // gamegate cannot accept the connection (and start its timer)
            // before the connect starts, nor after the first bytes are
            // written: the lower bound is measured from the one, the upper
            // from the other (on a loaded machine the task may run late
            // between them).
            let connect_started = Instant::now();
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream.write_all(first_bytes(index)).await.unwrap();
            let opened_at = Instant::now();
            drop(permit);
            let closed = closed_by(&mut stream, opened_at + handshake_timeout + slack).await;
            (
                opened_at,
                closed.map(|closed_at| (closed_at - opened_at, closed_at - connect_started)),
            )
        })
    });
    let watched: Vec<_> = join_all(watched)
        .await
        .into_iter()
        .map(|joined| joined.unwrap())
        .collect();
    let opened_at = watched.iter().map(|(opened_at, _)| *opened_at);
    let opened_in = opened_at.clone().max().unwrap() - opened_at.min().unwrap();
    let open = watched.iter().filter(|(_, after)| after.is_none()).count();
    assert_eq!(
        open, 0,
        "connections still open a handshake timeout + {slack:?} after they opened"
    );
    let after: Vec<Duration> = watched
        .iter()
        .filter_map(|(_, after)| after.map(|(after_open, _)| after_open))
        .collect();
    let earliest = after.iter().min().unwrap();
    let latest = after.iter().max().unwrap();
    eprintln!("2,000 connections opened in {opened_in:?}, closed {earliest:?} to {latest:?} after");
    let earliest_since_connect = watched
        .iter()
        .filter_map(|(_, after)| after.map(|(_, since_connect)| since_connect))
        .min()
        .unwrap();
    assert!(
        earliest_since_connect >= handshake_timeout - Duration::from_millis(50),
        "a connection was closed before its handshake timeout: {earliest_since_connect:?} after \
         its connect started"
    );

    client.await.expect("the client was served all along");
}

fn dawanka_info_request() -> GetDawankaInfoRequest {
    crate::common::super_player_dawanka_info()
}

#[tokio::test]
async fn a_connection_is_closed_after_the_idle_timeout_but_not_while_a_call_waits_on_a_platform() {
    let idle_timeout = Duration::from_secs(1);
    let harness = Harness::start_with(|config| {
        config.listener.handshake_timeout_ms = 10_000;
        config.listener.idle_timeout_ms = idle_timeout.as_millis() as u64;
    })
    .await;
    // A connection that completes the handshake and opens no stream.
    let mut idle = TcpStream::connect(gateway_addr(&harness)).await.unwrap();
    idle.write_all(&client_preface()).await.unwrap();
    let opened_at = Instant::now();

    // A call the platform answers after 2.5 idle timeouts, on another one.
    harness
        .fault(json!({"path": "/v3/user/get_dawanka_info", "latency_ms": 2_500}))
        .await;
    let mut dawanka = harness.dawanka();
    let slow_call = tokio::spawn(async move {
        let started = Instant::now();
        let answer = dawanka.get_dawanka_info(dawanka_info_request()).await;
        (answer, started.elapsed())
    });

    let closed_at = closed_by(&mut idle, opened_at + Duration::from_secs(5))
        .await
        .expect("the idle connection is closed");
    let closed_after = closed_at - opened_at;
    assert!(
        closed_after >= idle_timeout - Duration::from_millis(50)
            && closed_after < idle_timeout + Duration::from_secs(2),
        "closed after {closed_after:?}"
    );

    let (answer, took) = slow_call.await.unwrap();
    answer.expect("a call waiting on the platform keeps its connection");
    assert!(took >= Duration::from_millis(2_500), "{took:?}");

    // Its connection idles out in turn; the client reconnects on its own.
    sleep(idle_timeout * 2).await;
    harness
        .dawanka()
        .get_dawanka_info(dawanka_info_request())
        .await
        .expect("served on a new connection");
}

#[tokio::test]
async fn the_connection_limit_holds_and_closed_connections_free_their_slots() {
    let max_connections = 50;
    let harness = Harness::start_with(|config| {
        config.listener.max_connections = max_connections;
        config.listener.handshake_timeout_ms = 30_000;
    })
    .await;
    let addr = gateway_addr(&harness);

    // The harness's channel holds one slot; these hold the others, then ten
    // more come: gamegate accepts in order, and closes those ten at once.
    let mut held = Vec::new();
    for _ in 0..max_connections - 1 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    let mut over = Vec::new();
    for _ in 0..10 {
        over.push(TcpStream::connect(addr).await.unwrap());
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    for stream in &mut over {
        assert!(
            closed_by(stream, deadline).await.is_some(),
            "a connection past the limit is closed"
        );
    }
    let deadline = Instant::now() + Duration::from_millis(300);
    let still_open = join_all(held.iter_mut().map(|stream| closed_by(stream, deadline)))
        .await
        .iter()
        .filter(|closed| closed.is_none())
        .count();
    assert_eq!(
        still_open,
        max_connections - 1,
        "the ones within the limit stay"
    );

    // The connection already held is served; a new client is not, while full.
    assert_eq!(
        health_check(harness.channel.clone()).await,
        ServingStatus::Serving
    );
    let endpoint = Channel::from_shared(format!("http://{addr}")).unwrap();
    let served = timeout(Duration::from_secs(5), serves_a_new_client(&endpoint))
        .await
        .expect("answered within 5 s");
    assert!(!served, "a new client is refused at the limit");

    // Closing connections frees their slots.
    held.truncate(max_connections - 11);
    timeout(Duration::from_secs(5), async {
        while !serves_a_new_client(&endpoint).await {
            sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("a slot frees within 5 s");
}

/// Whether a client on a new connection gets an answer (an HTTP/2 client's
/// handshake may complete before it reads that the server closed).
async fn serves_a_new_client(endpoint: &Endpoint) -> bool {
    let Ok(channel) = endpoint.connect().await else {
        return false;
    };
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .is_ok()
}

/// The gamegate binary, run by `sh` under a `ulimit`, serving the config
/// `listener_section` (and no platform: health is all these tests call).
struct Binary {
    child: Child,
    addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Binary {
    fn start(ulimit: &str, listener_section: &str) -> Binary {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("gamegate.toml");
        std::fs::write(
            &config,
            format!("listen = \"127.0.0.1:0\"\n\n[listener]\n{listener_section}\n"),
        )
        .unwrap();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit {ulimit} && exec \"$0\" serve --config \"$1\""
            ))
            .arg(env!("CARGO_BIN_EXE_gamegate"))
            .arg(&config)
            .env("GAMEGATE_LOG", "info")
            .env("GAMEGATE_LOG_FORMAT", "text")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("sh runs gamegate");
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let collected = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let line = strip_ansi(&line);
                if line.contains("gamegate is serving") {
                    let addr = line.split("addr=").nth(1).and_then(|rest| {
                        rest.split_whitespace().next()?.parse::<SocketAddr>().ok()
                    });
                    let _ = addr_tx.send(addr);
                }
                collected.lock().unwrap().push(line);
            }
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(20))
            .ok()
            .flatten()
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!(
                    "gamegate did not say where it serves: {:?}",
                    lines.lock().unwrap()
                )
            });
        Binary {
            child,
            addr,
            lines,
            _dir: dir,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn proc(&self, file: &str) -> String {
        std::fs::read_to_string(format!("/proc/{}/{file}", self.pid())).unwrap()
    }

    /// User + system CPU time so far.
    fn cpu_time(&self) -> Duration {
        let stat = self.proc("stat");
        // Fields after the command name, which may hold spaces: state is
        // field 3, utime 14 and stime 15.
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
            .split_whitespace()
            .collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        Duration::from_millis(ticks * 1000 / clock_ticks_per_second())
    }

    fn rss_kib(&self) -> u64 {
        self.proc("status")
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/<pid>/status")
    }

    fn open_files(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .unwrap()
            .count()
    }

    /// The soft and hard limits on open files.
    fn open_file_limits(&self) -> (u64, u64) {
        let limits = self.proc("limits");
        let line = limits
            .lines()
            .find(|line| line.starts_with("Max open files"))
            .unwrap();
        let values: Vec<u64> = line
            .split_whitespace()
            .filter_map(|word| word.parse().ok())
            .collect();
        (values[0], values[1])
    }

    fn log_lines(&self, containing: &str) -> Vec<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|line| line.contains(containing))
            .cloned()
            .collect()
    }

    async fn wait_for_log(&self, containing: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = self.log_lines(containing).pop() {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {containing:?} within {within:?}: {:?}",
                self.lines.lock().unwrap()
            );
            sleep(Duration::from_millis(20)).await;
        }
    }

    async fn channel(&self) -> Channel {
        timeout(
            Duration::from_secs(5),
            Channel::from_shared(format!("http://{}", self.addr))
                .unwrap()
                .connect(),
        )
        .await
        .expect("connected within 5 s")
        .expect("gamegate accepts connections")
    }

    /// Waits until gamegate holds `at_least` (or, with `false`, at most)
    /// `count` descriptors.
    async fn wait_for_open_files(&self, count: usize, at_least: bool, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let open = self.open_files();
            if (at_least && open >= count) || (!at_least && open <= count) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "gamegate holds {open} descriptors after {within:?}, expected {} {count}",
                if at_least { "at least" } else { "at most" }
            );
            sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100)
}

/// Log lines without terminal colours, whatever the subscriber decided.
fn strip_ansi(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

#[tokio::test]
async fn out_of_descriptors_the_accept_loop_backs_off_logs_once_and_serves_again() {
    raise_open_file_limit();
    let gamegate = Binary::start("-n 64", "handshake_timeout_ms = 60000");
    assert_eq!(gamegate.open_file_limits(), (64, 64), "the premise");
    assert_eq!(
        health_check(gamegate.channel().await).await,
        ServingStatus::Serving
    );

    // 100 connections that send nothing: about 50 fill gamegate's
    // descriptors, the others wait in the backlog.
    let mut held = Vec::new();
    for _ in 0..100 {
        held.push(TcpStream::connect(gamegate.addr).await.unwrap());
    }
    let warning = gamegate
        .wait_for_log("cannot accept connections", Duration::from_secs(5))
        .await;
    assert!(
        warning.contains("WARN") && warning.contains("errno=24"),
        "{warning}"
    );

    // Over 2 s of exhaustion it sleeps: a spinning loop would burn ~2 s.
    let before = gamegate.cpu_time();
    sleep(Duration::from_secs(2)).await;
    let spent = gamegate.cpu_time() - before;
    eprintln!("cpu time over 2 s with descriptors exhausted: {spent:?}");
    assert!(
        spent <= Duration::from_millis(200),
        "gamegate spent {spent:?} of CPU in 2 s out of descriptors"
    );
    assert_eq!(
        gamegate.log_lines("cannot accept connections").len(),
        1,
        "one warning per episode"
    );

    // Once the connections close, it accepts and serves again, and says so once.
    drop(held);
    assert_eq!(
        health_check(gamegate.channel().await).await,
        ServingStatus::Serving
    );
    let resumed = gamegate
        .wait_for_log("accepting connections again", Duration::from_secs(5))
        .await;
    let failed: u64 = resumed
        .split("failed_accepts=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .expect("failed_accepts in the line");
    eprintln!("{resumed}");
    assert!(failed >= 2, "{resumed}");
    assert_eq!(gamegate.log_lines("cannot accept connections").len(), 1);
}

/// What 2,000 connections cost and leave behind, in the binary.
///
/// gamegate frees what a connection holds: its descriptors go back to the
/// idle count, VmRSS does not grow round after round (below the first round's
/// peak plus what one round holds), and jemalloc's background purge gives the
/// memory back: within 10 MiB of idle a few seconds after the last round
/// closed (measured 39.9 MiB against 32.1 idle, 4.5 s after; debug build).
/// With glibc's malloc, which the binary used before, freed memory stayed with
/// the process: idle ~26 MiB, 54-60 MiB after a round closed, ~85 MiB after
/// five rounds (`trim_threshold=0`, `arena_max=1` changed nothing).
#[tokio::test]
async fn connections_that_close_give_back_their_descriptors_and_their_memory_is_reused() {
    raise_open_file_limit();
    // A soft limit of 1024, below what 2,000 connections need: gamegate raises
    // it to the hard limit itself.
    let gamegate = Binary::start(
        "-S -n 1024",
        "handshake_timeout_ms = 60000\nidle_timeout_ms = 60000",
    );
    let logged = gamegate
        .wait_for_log("open file limit", Duration::from_secs(5))
        .await;
    let (soft, hard) = gamegate.open_file_limits();
    assert_eq!(soft, hard, "the soft limit is raised to the hard one");
    assert!(
        hard >= 2_200,
        "the premise: a hard limit of {hard} is too low"
    );
    assert!(logged.contains(&format!("open_files={hard}")), "{logged}");

    assert_eq!(
        health_check(gamegate.channel().await).await,
        ServingStatus::Serving
    );
    sleep(Duration::from_millis(300)).await;
    let idle_files = gamegate.open_files();
    let idle_rss = gamegate.rss_kib();

    // 2,000 connections: half send nothing, half the whole client preface
    // (so that h2 holds its state for them); three rounds.
    let mut rounds = Vec::new();
    // Set by the first round: what one round may add on top of its peak.
    let mut bound: Option<u64> = None;
    for _ in 0..3 {
        let held = connect_many(gamegate.addr, 2_000, |index| {
            if index % 2 == 0 {
                client_preface()
            } else {
                Vec::new()
            }
        })
        .await;
        gamegate
            .wait_for_open_files(idle_files + 2_000, true, Duration::from_secs(10))
            .await;
        sleep(Duration::from_millis(300)).await;
        let held_rss = gamegate.rss_kib();
        drop(held);
        gamegate
            .wait_for_open_files(idle_files, false, Duration::from_secs(10))
            .await;
        sleep(Duration::from_millis(500)).await;
        // jemalloc purges on its own clock: on a loaded machine the memory
        // of a closed round may take a little longer to come back, so a
        // round gets up to 3 s to fall below the bound before it counts.
        let mut after = gamegate.rss_kib();
        if let Some(bound) = bound {
            let until = std::time::Instant::now() + Duration::from_secs(3);
            while after >= bound && std::time::Instant::now() < until {
                sleep(Duration::from_millis(200)).await;
                after = gamegate.rss_kib();
            }
        } else {
            bound = Some(held_rss + held_rss.saturating_sub(idle_rss));
        }
        rounds.push((held_rss, after));
    }
    eprintln!("VmRSS KiB: idle {idle_rss}, (2,000 held, after they closed) per round {rounds:?}");
    let (first_peak, _) = rounds[0];
    let one_round = first_peak.saturating_sub(idle_rss);
    let (_, last_after) = rounds[rounds.len() - 1];
    assert!(
        last_after < first_peak + one_round,
        "VmRSS grows round after round: idle {idle_rss} KiB, rounds {rounds:?}"
    );
    // jemalloc's background purge gives the rest back within its decay time.
    let given_back = Instant::now();
    let mut rss = gamegate.rss_kib();
    while rss > idle_rss + 10 * 1024 && given_back.elapsed() < Duration::from_secs(30) {
        sleep(Duration::from_millis(500)).await;
        rss = gamegate.rss_kib();
    }
    eprintln!(
        "VmRSS {rss} KiB {} ms after the last round closed (idle {idle_rss} KiB)",
        given_back.elapsed().as_millis()
    );
    assert!(
        rss <= idle_rss + 10 * 1024,
        "VmRSS stays {rss} KiB, more than 10 MiB over idle ({idle_rss} KiB)"
    );
    assert_eq!(
        health_check(gamegate.channel().await).await,
        ServingStatus::Serving
    );
}
