//! Operating the real binary (issue 13, points 3 and 5): SIGTERM under load
//! (health NOT_SERVING at once, serving through the drain delay, then the
//! listener closes and the calls in flight drain within the grace or are cut,
//! and counted), and SIGHUP (callers, secrets and a refused file; keys that
//! need a restart keep their running values). Everything over real sockets on
//! 127.0.0.1, with `gamegate` as a child process.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use gamegate::{
    proto::{SetUserStorageRequest, storage_service_client::StorageServiceClient},
    sandbox::{self, RunningSandbox, SandboxConfig},
};
use serde_json::{Value, json};
use tonic::{Code, Request, Response, Status, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::{
    binary::{Gamegate, Output},
    common::{alice_stores, demo, expect_error, loopback, rich},
};

const SET_USER_STORAGE: &str = "/api/openDataContext/set_user_storage";
const LOBBY_A_TOKEN: &str = "lobby-a-token-0123456789";
const LOBBY_B_TOKEN: &str = "lobby-b-token-9876543210";
const WRONG_SECRET: &str = "not-the-minigame-app-secret";

/// `[[callers]]` with one caller that may use every app.
fn caller(name: &str, token: &str) -> String {
    format!("[[callers]]\nname = \"{name}\"\ntoken = \"{token}\"\napps = [\"*\"]\n")
}

/// The demo mini-game app on `sandbox`, its secret written in the file.
fn minigame(sandbox: &RunningSandbox) -> String {
    format!(
        "[qq_minigame]\nbase_url = \"{}\"\n[qq_minigame.apps.{}]\nsecret = \"{}\"\n",
        sandbox.base_url(),
        demo::MINIGAME_APPID,
        demo::MINIGAME_SECRET
    )
}

async fn sandbox_admin(
    sandbox: &RunningSandbox,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let mut request =
        reqwest::Client::new().request(method, format!("{}/_sandbox{path}", sandbox.base_url()));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("sandbox admin answers");
    assert!(
        response.status().is_success(),
        "sandbox admin {path}: {}",
        response.status()
    );
    response.json().await.expect("sandbox admin answers json")
}

/// Every `set_user_storage` the sandbox receives first waits `ms`.
async fn slow_storage(sandbox: &RunningSandbox, ms: u64) {
    sandbox_admin(
        sandbox,
        reqwest::Method::POST,
        "/faults",
        Some(json!({ "path": SET_USER_STORAGE, "latency_ms": ms, "times": 0 })),
    )
    .await;
}

/// `set_user_storage` requests the sandbox received (counted before any latency).
async fn storage_requests(sandbox: &RunningSandbox) -> u64 {
    let stats = sandbox_admin(sandbox, reqwest::Method::GET, "/stats", None).await;
    stats["requests"][SET_USER_STORAGE].as_u64().unwrap_or(0)
}

fn endpoint(addr: SocketAddr) -> tonic::transport::Endpoint {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(15))
}

async fn connect(addr: SocketAddr) -> Channel {
    tokio::time::timeout(Duration::from_secs(5), endpoint(addr).connect())
        .await
        .expect("connecting does not hang")
        .expect("gamegate accepts connections")
}

fn authorized(request: SetUserStorageRequest, token: &str) -> Request<SetUserStorageRequest> {
    let mut request = Request::new(request);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// Alice stores a pair with `token`, within 15 s.
async fn store(channel: &Channel, token: &str) -> Result<Response<()>, Status> {
    let mut client = StorageServiceClient::new(channel.clone());
    let call = client.set_user_storage(authorized(alice_stores("score", "1"), token));
    match tokio::time::timeout(Duration::from_secs(15), call).await {
        Ok(result) => result.map(|response| response.map(|_| ())),
        Err(_) => panic!("a call took longer than 15 s"),
    }
}

async fn overall_health(channel: &Channel) -> ServingStatus {
    let mut client = HealthClient::new(channel.clone());
    let check = client.check(HealthCheckRequest::default());
    tokio::time::timeout(Duration::from_secs(5), check)
        .await
        .expect("health answers in time")
        .expect("health answers")
        .into_inner()
        .status()
}

/// The number after `key` (`drained=`) in a log line.
fn count(line: &str, key: &str) -> u64 {
    let at = line
        .find(key)
        .unwrap_or_else(|| panic!("no {key} in {line:?}"))
        + key.len();
    line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("{key} is not a count in {line:?}"))
}

/// Whether a new TCP connection to `addr` is refused (or fails) within 1 s.
async fn refuses_connections(addr: SocketAddr) -> bool {
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        match tokio::time::timeout(
            Duration::from_millis(300),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            Ok(Err(_)) => return true,
            Ok(Ok(_)) | Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    false
}

/// One call of the load: when it started and ended, and how it failed.
struct Call {
    started: Instant,
    ended: Instant,
    failed: Option<Status>,
}

/// Calls in a loop on a connection of its own until `stop`.
async fn load_client(addr: SocketAddr, stop: Arc<AtomicBool>, calls: Arc<Mutex<Vec<Call>>>) {
    let channel = connect(addr).await;
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let failed = store(&channel, LOBBY_A_TOKEN).await.err();
        let ended = Instant::now();
        let pause = failed.is_some();
        calls.lock().unwrap().push(Call {
            started,
            ended,
            failed,
        });
        if pause {
            // The server is gone or going: no busy loop on refusals.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// What the log-reading thread saw after the SIGTERM: the line that closes
/// the listener, the last line, everything, and when the process had exited.
struct Shutdown {
    output: Output,
    drain_over: String,
    stopped: String,
    exited: Instant,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigterm_under_load_turns_health_not_serving_serves_through_the_drain_delay_then_exits_0()
{
    const DRAIN_DELAY: Duration = Duration::from_millis(1_500);
    const GRACE: Duration = Duration::from_millis(3_000);
    const CLIENTS: usize = 16;
    let sandbox = sandbox::spawn(SandboxConfig::demo(), loopback())
        .await
        .expect("sandbox starts");
    let config = format!(
        "listen = \"127.0.0.1:0\"\ndrain_delay_ms = {}\nshutdown_grace_ms = {}\n{}{}",
        DRAIN_DELAY.as_millis(),
        GRACE.as_millis(),
        caller("lobby-a", LOBBY_A_TOKEN),
        minigame(&sandbox)
    );
    let mut gamegate = Gamegate::spawn("serve", &config, &[]);
    let mut seen = Vec::new();
    let addr = gamegate.serving(&mut seen);
    let probe = connect(addr).await;
    store(&probe, LOBBY_A_TOKEN)
        .await
        .expect("a call before the load (it fetches the access token)");
    assert_eq!(overall_health(&probe).await, ServingStatus::Serving);

    // The load: every call spends 300 ms at the platform, so that calls are
    // in flight at any moment.
    slow_storage(&sandbox, 300).await;
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| tokio::spawn(load_client(addr, stop.clone(), calls.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert!(
        calls
            .lock()
            .unwrap()
            .iter()
            .any(|call| call.failed.is_none()),
        "the load is served before the SIGTERM"
    );

    let (drain_over_tx, drain_over_rx) = tokio::sync::oneshot::channel();
    let sigterm = Instant::now();
    gamegate.signal("TERM");
    let logs = std::thread::spawn(move || {
        let drain_over = gamegate
            .wait_for_line("drain delay over", Duration::from_secs(15), &mut seen)
            .expect("the drain delay ends");
        let _ = drain_over_tx.send(Instant::now());
        let stopped = gamegate
            .wait_for_line("stopped:", Duration::from_secs(15), &mut seen)
            .expect("the stopped line");
        let output = gamegate.exit_after(DRAIN_DELAY + GRACE + Duration::from_secs(2), seen);
        Shutdown {
            output,
            drain_over,
            stopped,
            exited: Instant::now(),
        }
    });

    // Health turns NOT_SERVING at once (on a connection opened before).
    let not_serving = loop {
        let status = overall_health(&probe).await;
        if status == ServingStatus::NotServing {
            break sigterm.elapsed();
        }
        assert_eq!(status, ServingStatus::Serving);
        assert!(
            sigterm.elapsed() < Duration::from_secs(2),
            "health still SERVING 2 s after the SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(
        not_serving < Duration::from_millis(1_000),
        "health NOT_SERVING only {not_serving:?} after the SIGTERM"
    );

    // During the drain delay, a new connection is accepted and served (and
    // its health says NOT_SERVING too).
    tokio::time::sleep(Duration::from_millis(700).saturating_sub(sigterm.elapsed())).await;
    let fresh_at = sigterm.elapsed();
    let fresh = connect(addr).await;
    assert_eq!(overall_health(&fresh).await, ServingStatus::NotServing);
    store(&fresh, LOBBY_A_TOKEN).await.unwrap_or_else(|status| {
        panic!("a call on a connection opened {fresh_at:?} after the SIGTERM: {status:?}")
    });

    // Once the delay is over, new connections are refused.
    let drain_over = tokio::time::timeout(Duration::from_secs(15), drain_over_rx)
        .await
        .expect("the drain delay ends in time")
        .expect("the log thread reports it");
    assert!(
        drain_over.duration_since(sigterm) >= DRAIN_DELAY,
        "the listener closed {:?} after the SIGTERM",
        drain_over.duration_since(sigterm)
    );
    assert!(
        refuses_connections(addr).await,
        "a new connection is still accepted after the drain delay"
    );

    let shutdown = tokio::task::spawn_blocking(move || logs.join().expect("the log thread"))
        .await
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        tokio::time::timeout(Duration::from_secs(20), client)
            .await
            .expect("a load client stops")
            .expect("a load client does not panic");
    }
    let exit = shutdown.exited.duration_since(sigterm);
    let output = &shutdown.output;
    assert!(
        output.status.success(),
        "exit status {}: {}",
        output.status,
        output.stderr
    );
    assert!(
        exit < DRAIN_DELAY + GRACE + Duration::from_secs(2),
        "{exit:?} from SIGTERM to exit"
    );

    let in_flight_at_close = count(&shutdown.drain_over, "calls_in_flight=");
    let drained = count(&shutdown.stopped, "drained=");
    let cut = count(&shutdown.stopped, "cut=");
    let exit_ms = count(&shutdown.stopped, "exit_ms=");
    assert_eq!(cut, 0, "{}", shutdown.stopped);
    // Every call in flight at the close ended, and so did the ones that
    // arrived on open connections before their clients read the GOAWAY.
    assert!(drained >= in_flight_at_close, "{}", shutdown.stopped);
    assert!(
        in_flight_at_close > 0,
        "no call in flight at the close: {}",
        shutdown.drain_over
    );

    // No call that started during the drain delay (the listener closes no
    // sooner than DRAIN_DELAY after the SIGTERM; 200 ms of margin for a
    // client slow to send) failed; the ones that failed started after the
    // close, and were refused (never cut).
    let calls = calls.lock().unwrap();
    let close = sigterm + DRAIN_DELAY - Duration::from_millis(200);
    let failures: Vec<&Call> = calls.iter().filter(|call| call.failed.is_some()).collect();
    for call in &failures {
        let status = call.failed.as_ref().unwrap();
        assert!(
            call.started >= close,
            "a call started {:?} after the SIGTERM failed: {status:?}",
            call.started.saturating_duration_since(sigterm)
        );
        // UNAVAILABLE: refused, or GOAWAY seen; CANCELLED: hyper had queued
        // it on the connection that then closed, before sending a byte.
        assert!(
            matches!(status.code(), Code::Unavailable | Code::Cancelled),
            "{status:?}"
        );
    }
    let ok = |call: &&Call| call.failed.is_none();
    let during_delay = calls
        .iter()
        .filter(ok)
        .filter(|call| call.ended > sigterm && call.ended < sigterm + DRAIN_DELAY)
        .count();
    assert!(during_delay > 0, "no call completed during the drain delay");
    let started_late = calls
        .iter()
        .filter(ok)
        .filter(|call| call.started >= sigterm + Duration::from_millis(1_000))
        .count();
    assert!(
        started_late > 0,
        "no call started 1 s after the SIGTERM succeeded"
    );
    let after_close = calls
        .iter()
        .filter(ok)
        .filter(|call| call.ended >= drain_over)
        .count();

    let completed = calls.iter().filter(ok).count();
    println!(
        "drain under load ({CLIENTS} clients, 300 ms a call, drain_delay_ms=1500, \
         shutdown_grace_ms=3000): {completed} calls completed, {during_delay} of them during \
         the drain delay, {after_close} after the close was logged; {} refused after the close; \
         health NOT_SERVING {not_serving:?} after SIGTERM; new connection at {fresh_at:?} served; \
         {in_flight_at_close} in flight at the close, drained={drained} cut={cut}; SIGTERM to \
         exit {exit:?} (exit_ms={exit_ms}), status {}",
        failures.len(),
        output.status
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_longer_than_the_grace_are_cut_and_counted() {
    const CALLS: usize = 3;
    let sandbox = sandbox::spawn(SandboxConfig::demo(), loopback())
        .await
        .expect("sandbox starts");
    let config = format!(
        "listen = \"127.0.0.1:0\"\ndrain_delay_ms = 200\nshutdown_grace_ms = 500\n{}{}",
        caller("lobby-a", LOBBY_A_TOKEN),
        minigame(&sandbox)
    );
    let mut gamegate = Gamegate::spawn("serve", &config, &[]);
    let mut seen = Vec::new();
    let addr = gamegate.serving(&mut seen);
    let channel = connect(addr).await;
    store(&channel, LOBBY_A_TOKEN)
        .await
        .expect("a call before the fault (it fetches the access token)");
    let before = storage_requests(&sandbox).await;

    slow_storage(&sandbox, 5_000).await;
    let calls: Vec<_> = (0..CALLS)
        .map(|_| {
            let channel = channel.clone();
            tokio::spawn(async move { store(&channel, LOBBY_A_TOKEN).await })
        })
        .collect();
    // In flight: each has reached the platform, which holds it for 5 s.
    let until = Instant::now() + Duration::from_secs(10);
    while storage_requests(&sandbox).await < before + CALLS as u64 {
        assert!(
            Instant::now() < until,
            "the calls did not reach the sandbox"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;

    let sigterm = Instant::now();
    gamegate.signal("TERM");
    let (output, exit) = tokio::task::spawn_blocking(move || {
        let output = gamegate.exit_after(Duration::from_secs(5), seen);
        (output, sigterm.elapsed())
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "exit status {}: {}",
        output.status,
        output.stderr
    );
    assert!(
        exit < Duration::from_secs(3),
        "{exit:?} from SIGTERM to exit"
    );
    let stopped = output.containing("stopped:");
    assert_eq!(stopped.len(), 1, "{:?}", output.text());
    assert_eq!(count(&stopped[0], "cut="), CALLS as u64, "{}", stopped[0]);
    assert_eq!(count(&stopped[0], "drained="), 0, "{}", stopped[0]);
    for call in calls {
        let result = tokio::time::timeout(Duration::from_secs(5), call)
            .await
            .expect("a cut call ends with the process")
            .unwrap();
        let status = result.expect_err("a cut call does not succeed");
        assert!(
            matches!(
                status.code(),
                Code::Unavailable | Code::Unknown | Code::Cancelled | Code::Internal
            ),
            "{status:?}"
        );
    }
    println!(
        "cut calls: SIGTERM to exit {exit:?}; {}",
        stopped[0].trim_end()
    );
}

/// Rewrites the file and sends SIGHUP; returns the line that says how it
/// went (`configuration reloaded` or `the new configuration is refused`),
/// and every line in between.
fn reload(gamegate: &mut Gamegate, config: &str, seen: &mut Vec<Vec<u8>>) -> (String, Vec<String>) {
    std::fs::write(gamegate.config_path(), config).unwrap();
    let from = seen.len();
    gamegate.signal("HUP");
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let line = gamegate
            .wait_for_line("configuration", left, seen)
            .expect("the reload is answered within 10 s");
        if line.contains("configuration reloaded")
            || line.contains("the new configuration is refused")
            || line.contains("reload refused")
        {
            let lines = seen[from..]
                .iter()
                .map(|line| String::from_utf8_lossy(line).into_owned())
                .collect();
            return (line, lines);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_callers_and_secrets_and_an_invalid_file_keeps_the_running_configuration() {
    let sandbox = sandbox::spawn(SandboxConfig::demo(), loopback())
        .await
        .expect("sandbox starts");
    let secret_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret_file.path(), format!("{}\n", demo::MINIGAME_SECRET)).unwrap();
    let config = |listen: &str, callers: &str, minigame_extra: &str| {
        format!(
            "listen = \"{listen}\"\n{callers}[qq_minigame]\nbase_url = \"{url}\"\n{minigame_extra}\
             [qq_minigame.apps.{app}]\nsecret_file = \"{file}\"\n",
            url = sandbox.base_url(),
            app = demo::MINIGAME_APPID,
            file = secret_file.path().display(),
        )
    };
    let mut gamegate = Gamegate::spawn(
        "serve",
        &config("127.0.0.1:0", &caller("lobby-a", LOBBY_A_TOKEN), ""),
        &[],
    );
    let mut seen = Vec::new();
    let addr = gamegate.serving(&mut seen);
    let channel = connect(addr).await;
    store(&channel, LOBBY_A_TOKEN)
        .await
        .expect("caller A is configured");
    expect_error(
        store(&channel, LOBBY_B_TOKEN).await,
        Code::Unauthenticated,
        "CALLER_UNAUTHENTICATED",
    );

    // Caller A is replaced by caller B.
    let callers_b = caller("lobby-b", LOBBY_B_TOKEN);
    let (line, _) = reload(
        &mut gamegate,
        &config("127.0.0.1:0", &callers_b, ""),
        &mut seen,
    );
    assert!(line.contains("configuration reloaded"), "{line}");
    expect_error(
        store(&channel, LOBBY_A_TOKEN).await,
        Code::Unauthenticated,
        "CALLER_UNAUTHENTICATED",
    );
    store(&channel, LOBBY_B_TOKEN)
        .await
        .expect("caller B is reloaded");

    // Invalid files are refused, naming the key; caller B still works.
    let placeholder = caller("lobby-b", "set GAMEGATE_CALLERS__LOBBY_B__TOKEN instead");
    let invalid = [
        (
            config("127.0.0.1:0", &placeholder, ""),
            "callers.lobby-b.token",
        ),
        (
            config("127.0.0.1:0", &callers_b, "budget_ms = 0\n"),
            "qq_minigame.budget_ms",
        ),
    ];
    for (file, key) in &invalid {
        let (line, _) = reload(&mut gamegate, file, &mut seen);
        assert!(
            line.contains("the new configuration is refused"),
            "{key}: {line}"
        );
        assert!(line.contains(key), "the refusal names {key}: {line}");
        assert!(
            !line.contains("GAMEGATE_CALLERS__LOBBY_B__TOKEN instead"),
            "the value is quoted: {line}"
        );
        store(&channel, LOBBY_B_TOKEN)
            .await
            .unwrap_or_else(|status| panic!("after the refused {key}: {status:?}"));
        expect_error(
            store(&channel, LOBBY_A_TOKEN).await,
            Code::Unauthenticated,
            "CALLER_UNAUTHENTICATED",
        );
    }

    // A new listen address takes effect only at a restart: a warning names
    // it, the rest reloads, and the old address still serves, new
    // connections too.
    let moved = config("127.0.0.1:1", &callers_b, "");
    let (line, lines) = reload(&mut gamegate, &moved, &mut seen);
    assert!(line.contains("configuration reloaded"), "{line}");
    let warnings: Vec<&String> = lines
        .iter()
        .filter(|line| line.contains("only at a restart"))
        .collect();
    assert!(
        warnings.len() == 1 && warnings[0].contains("listen") && warnings[0].contains("WARN"),
        "{lines:#?}"
    );
    store(&channel, LOBBY_B_TOKEN)
        .await
        .expect("the old connection");
    store(&connect(addr).await, LOBBY_B_TOKEN)
        .await
        .expect("a new connection to the old address");

    // The app's secret file now holds a wrong secret: a reload builds new
    // platforms, so the next call fetches a token with it, and the platform
    // refuses the secret.
    std::fs::write(secret_file.path(), format!("{WRONG_SECRET}\n")).unwrap();
    let (line, _) = reload(&mut gamegate, &moved, &mut seen);
    assert!(line.contains("configuration reloaded"), "{line}");
    let status = store(&channel, LOBBY_B_TOKEN)
        .await
        .expect_err("the platform refuses the wrong secret");
    let wrong = rich(&status);
    assert_eq!(
        (wrong.code, wrong.reason.as_str()),
        (Code::Internal, "GATEWAY_CREDENTIALS_REJECTED"),
        "{status:?}"
    );
    // The right one again.
    std::fs::write(secret_file.path(), format!("{}\n", demo::MINIGAME_SECRET)).unwrap();
    let (line, _) = reload(&mut gamegate, &moved, &mut seen);
    assert!(line.contains("configuration reloaded"), "{line}");
    store(&channel, LOBBY_B_TOKEN)
        .await
        .expect("the right secret is reloaded");

    let output = gamegate.stop(seen);
    for secret in [
        LOBBY_A_TOKEN,
        LOBBY_B_TOKEN,
        demo::MINIGAME_SECRET,
        WRONG_SECRET,
    ] {
        assert!(output.containing(secret).is_empty(), "{secret} was logged");
    }
    println!(
        "reload: caller swap, two refused files, a listen change (warned) and a wrong secret \
         ({}: {}) then the right one, all through SIGHUP",
        wrong.reason, wrong.message
    );
}

/// A SIGTERM sent the moment gamegate says it serves is handled like any
/// other: the handlers are installed before that line, so the signal never
/// takes its default action (death by SIGTERM, exit 143, no drain). Nothing
/// is open, so the stopped line comes at once.
#[tokio::test]
async fn a_sigterm_at_the_serving_line_drains_and_exits_0_with_its_stopped_line() {
    let sandbox = sandbox::spawn(SandboxConfig::demo(), loopback())
        .await
        .expect("sandbox starts");
    for signal in ["HUP", "TERM"] {
        let config = format!(
            "listen = \"127.0.0.1:0\"\ndrain_delay_ms = 100\nshutdown_grace_ms = 1000\n{}{}",
            caller("lobby-a", LOBBY_A_TOKEN),
            minigame(&sandbox)
        );
        let mut gamegate = Gamegate::spawn("serve", &config, &[]);
        let mut seen = Vec::new();
        gamegate.serving(&mut seen);
        gamegate.signal(signal);
        if signal == "HUP" {
            // Reloaded, not killed: a TERM then stops it as usual.
            assert!(
                gamegate
                    .wait_for_line("configuration reloaded", Duration::from_secs(10), &mut seen)
                    .is_some(),
                "no reload after an early SIGHUP"
            );
            gamegate.signal("TERM");
        }
        let output = gamegate.exit_after(Duration::from_secs(10), seen);
        assert!(
            output.status.success(),
            "{signal}: {} {}",
            output.status,
            output.stderr
        );
        let stopped = output.containing("stopped:");
        assert_eq!(stopped.len(), 1, "{signal}: {:?}", output.text());
        assert!(stopped[0].contains("drained=0") && stopped[0].contains("cut=0"));
    }
}
