//! The real binary under hostile input: the variables Kubernetes gives a pod,
//! a configuration variable that does not parse, caller values carrying
//! newlines and terminal escapes (text and JSON logs), a flood of wrong
//! tokens. Each test runs `gamegate` as a child process with a clean
//! environment and a configuration file of its own, and reads the bytes it
//! writes, exactly as an operator's log collector would.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::SocketAddr,
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use futures::StreamExt;
use gamegate::{
    proto::{
        KeyValue, MiniGameUser, SetUserStorageRequest, storage_service_client::StorageServiceClient,
    },
    sandbox::{self, SandboxConfig},
};
use tonic::{Code, Request, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::common::{demo, loopback};

/// What Kubernetes sets in every pod of a namespace with a Service named
/// `gamegate` (port 50051, named `grpc`), unless `enableServiceLinks: false`.
const KUBERNETES_SERVICE_VARIABLES: [(&str, &str); 8] = [
    ("GAMEGATE_SERVICE_HOST", "10.0.0.1"),
    ("GAMEGATE_SERVICE_PORT", "50051"),
    ("GAMEGATE_SERVICE_PORT_GRPC", "50051"),
    ("GAMEGATE_PORT", "tcp://10.0.0.1:50051"),
    ("GAMEGATE_PORT_50051_TCP", "tcp://10.0.0.1:50051"),
    ("GAMEGATE_PORT_50051_TCP_PROTO", "tcp"),
    ("GAMEGATE_PORT_50051_TCP_PORT", "50051"),
    ("GAMEGATE_PORT_50051_TCP_ADDR", "10.0.0.1"),
];

/// A mini-game platform with no app: every call fails with APP_UNKNOWN before
/// any upstream byte, so nothing listens at the base URL.
const NO_UPSTREAM: &str = r#"
listen = "127.0.0.1:0"
[qq_minigame]
base_url = "http://127.0.0.1:9"
"#;

const LOBBY_TOKEN: &str = "lobby-server-token-0123456789";

/// What a forging caller sends as its app id: a newline, a line that looks
/// like gamegate's, a screen-clearing escape; and, for the JSON format, what
/// JSON itself does not escape (a C1 CSI, DEL, a Unicode line separator).
const FORGED: &str = "x\nFORGED line \u{1b}[2J";
const FORGED_UNICODE: &str = "y\u{9b}2J\u{7f}\u{2028}FORGED line\r\nFORGED too";

/// A gamegate child process and what it writes.
struct Gamegate {
    child: Child,
    _config: tempfile::TempPath,
    stdout: mpsc::Receiver<Vec<u8>>,
    stderr: Option<thread::JoinHandle<Vec<u8>>>,
}

/// What a gamegate wrote, once it ended.
struct Output {
    status: ExitStatus,
    /// stdout (the log) line by line, each with its newline, as bytes.
    lines: Vec<Vec<u8>>,
    stderr: String,
}

impl Output {
    fn text(&self) -> Vec<String> {
        self.lines
            .iter()
            .map(|line| String::from_utf8(line.clone()).expect("the log is utf-8"))
            .collect()
    }

    fn containing(&self, needle: &str) -> Vec<String> {
        self.text()
            .into_iter()
            .filter(|line| line.contains(needle))
            .collect()
    }
}

impl Gamegate {
    /// `gamegate <command> --config <file holding config>` with only `env` in
    /// its environment.
    fn spawn(command: &str, config: &str, env: &[(&str, &str)]) -> Gamegate {
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        file.write_all(config.as_bytes()).unwrap();
        let config = file.into_temp_path();
        let mut child = Command::new(env!("CARGO_BIN_EXE_gamegate"))
            .arg(command)
            .arg("--config")
            .arg(&config)
            .env_clear()
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the gamegate binary runs");
        let (lines, stdout) = mpsc::channel();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        thread::spawn(move || {
            loop {
                let mut line = Vec::new();
                match out.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if lines.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = err.read_to_end(&mut bytes);
            bytes
        });
        Gamegate {
            child,
            _config: config,
            stdout,
            stderr: Some(stderr),
        }
    }

    /// Waits for the "gamegate is serving" line; returns the address in it
    /// and keeps the lines before it for [`Gamegate::stop`].
    fn serving(&mut self, seen: &mut Vec<Vec<u8>>) -> SocketAddr {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let line = match self.stdout.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => {
                    let output = self.stop(std::mem::take(seen));
                    panic!(
                        "gamegate did not serve ({}):\n{}\n{}",
                        output.status,
                        output.text().join(""),
                        output.stderr
                    );
                }
            };
            let text = String::from_utf8_lossy(&line).into_owned();
            seen.push(line);
            if text.contains("gamegate is serving") {
                // `addr=127.0.0.1:PORT` (text) or `"addr":"127.0.0.1:PORT"` (JSON).
                let at = text
                    .find("127.0.0.1:")
                    .expect("the serving line names its address");
                let port: String = text[at + "127.0.0.1:".len()..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                return SocketAddr::from(([127, 0, 0, 1], port.parse().unwrap()));
            }
        }
    }

    /// Kills the process (every line written so far has reached the pipe:
    /// each log line is one write) and collects what it wrote.
    fn stop(&mut self, mut lines: Vec<Vec<u8>>) -> Output {
        let _ = self.child.kill();
        let status = self.child.wait().expect("gamegate is waited for");
        lines.extend(self.stdout.iter());
        let stderr = self
            .stderr
            .take()
            .map(|t| t.join().unwrap())
            .unwrap_or_default();
        Output {
            status,
            lines,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    /// Waits at most `timeout` for the process to end by itself.
    fn exit_within(&mut self, timeout: Duration) -> Output {
        let until = Instant::now() + timeout;
        while self.child.try_wait().expect("gamegate is polled").is_none() {
            assert!(
                Instant::now() < until,
                "gamegate still runs after {timeout:?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
        self.stop(Vec::new())
    }
}

impl Drop for Gamegate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn storage_request(app_id: &str) -> SetUserStorageRequest {
    SetUserStorageRequest {
        app_id: app_id.into(),
        user: Some(MiniGameUser {
            openid: demo::MINIGAME_ALICE_OPENID.into(),
            session_key: demo::MINIGAME_ALICE_SESSION_KEY.into(),
        }),
        kv_list: vec![KeyValue {
            key: "score".into(),
            value: "1".into(),
        }],
    }
}

async fn connect(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .expect("gamegate accepts connections")
}

#[tokio::test]
async fn gamegate_starts_and_serves_among_kubernetes_service_variables() {
    let sandbox = sandbox::spawn(SandboxConfig::demo(), loopback())
        .await
        .expect("sandbox starts");
    let config = format!(
        "listen = \"127.0.0.1:0\"\n[qq_minigame]\nbase_url = \"{}\"\n",
        sandbox.base_url()
    );
    // The app's secret comes from a nested variable, which still works.
    let secret_variable = format!(
        "GAMEGATE_QQ_MINIGAME__APPS__{}__SECRET",
        demo::MINIGAME_APPID
    );
    let mut env = KUBERNETES_SERVICE_VARIABLES.to_vec();
    env.push(("GAMEGATE_LOG", "debug"));
    env.push((&secret_variable, demo::MINIGAME_SECRET));
    let mut gamegate = Gamegate::spawn("serve", &config, &env);
    let mut seen = Vec::new();
    let addr = gamegate.serving(&mut seen);

    let channel = connect(addr).await;
    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest::default())
        .await
        .expect("health answers")
        .into_inner();
    assert_eq!(health.status(), ServingStatus::Serving);
    StorageServiceClient::new(channel)
        .set_user_storage(storage_request(demo::MINIGAME_APPID))
        .await
        .expect("a call through the configured sandbox succeeds");

    let output = gamegate.stop(seen);
    for (name, _) in KUBERNETES_SERVICE_VARIABLES {
        let ignored = output.containing(&format!("variable=\"{name}\""));
        assert!(
            ignored.len() == 1 && ignored[0].contains("DEBUG"),
            "one debug line names {name}: {ignored:?}"
        );
    }
    for not_ignored in ["GAMEGATE_LOG", secret_variable.as_str()] {
        assert!(
            output
                .containing(&format!("variable=\"{not_ignored}\""))
                .is_empty(),
            "{not_ignored} was reported as ignored"
        );
    }
    for value in ["10.0.0.1", "tcp://", demo::MINIGAME_SECRET] {
        assert!(
            output.containing(value).is_empty(),
            "{value:?} was logged: {:?}",
            output.containing(value)
        );
    }
}

#[test]
fn a_configuration_variable_that_does_not_parse_stops_gamegate_and_is_named() {
    let mut env = KUBERNETES_SERVICE_VARIABLES.to_vec();
    env.push(("GAMEGATE_LISTEN", "not-an-address"));
    for command in ["serve", "check-config"] {
        let output =
            Gamegate::spawn(command, NO_UPSTREAM, &env).exit_within(Duration::from_secs(30));
        assert!(!output.status.success(), "{command}: {}", output.status);
        assert!(
            output.stderr.contains("GAMEGATE_LISTEN"),
            "{command}: the error names the variable: {}",
            output.stderr
        );
    }
}

/// Asserts that no line of `output` was forged or carries a control character
/// other than its own newline.
fn assert_no_forged_line(format: &str, output: &Output) {
    for line in output.text() {
        let body = line
            .strip_suffix('\n')
            .expect("every line ends with a newline");
        assert!(
            !body.trim_start().starts_with("FORGED"),
            "{format}: a forged line: {line:?}"
        );
        assert!(
            !body.chars().any(|c| c.is_control() || c == '\u{2028}'),
            "{format}: a raw control character: {line:?}"
        );
    }
    assert!(
        !output.lines.iter().flatten().any(|&byte| byte == 0x1b),
        "{format}: an ESC byte in the log"
    );
}

#[tokio::test]
async fn a_callers_newlines_and_escapes_never_reach_the_log_in_text_or_json() {
    // An app id may hold letters, digits and underscores only, so these are
    // refused before any lookup; the refusal is logged (at debug) without a
    // forged line, in both formats. The subscriber's escaping of any value
    // that does reach a line is tested in `telemetry::escape`.
    for format in ["text", "json"] {
        let mut gamegate = Gamegate::spawn(
            "serve",
            NO_UPSTREAM,
            &[
                ("GAMEGATE_LOG_FORMAT", format),
                ("GAMEGATE_LOG", "info,gamegate=debug"),
            ],
        );
        let mut seen = Vec::new();
        let addr = gamegate.serving(&mut seen);
        let mut storage = StorageServiceClient::new(connect(addr).await);
        for app_id in [FORGED, FORGED_UNICODE] {
            let status = storage
                .set_user_storage(storage_request(app_id))
                .await
                .expect_err("not an app id");
            assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        }
        let output = gamegate.stop(seen);

        assert_no_forged_line(format, &output);
        let refusals = output.containing("rpc refused");
        assert_eq!(refusals.len(), 2, "{format}: {:?}", output.text());
        if format == "json" {
            for line in output.text() {
                serde_json::from_str::<serde_json::Value>(&line)
                    .unwrap_or_else(|e| panic!("not one json object ({e}): {line}"));
            }
        }
    }
}

#[tokio::test]
async fn a_flood_of_wrong_tokens_writes_a_handful_of_warnings_counting_the_rest() {
    let config =
        format!("{NO_UPSTREAM}\n[[callers]]\nname = \"lobby\"\ntoken = \"{LOBBY_TOKEN}\"\n");
    let mut gamegate = Gamegate::spawn("serve", &config, &[]);
    let mut seen = Vec::new();
    let addr = gamegate.serving(&mut seen);
    let channel = connect(addr).await;
    let wrong_token_call = || {
        let mut storage = StorageServiceClient::new(channel.clone());
        async move {
            let mut request = Request::new(storage_request(demo::MINIGAME_APPID));
            request.metadata_mut().insert(
                "authorization",
                "Bearer not-the-lobby-token-at-all".parse().unwrap(),
            );
            storage.set_user_storage(request).await.unwrap_err().code()
        }
    };

    const FLOOD: usize = 2_000;
    let started = Instant::now();
    let codes: Vec<Code> = futures::stream::iter(0..FLOOD)
        .map(|_| wrong_token_call())
        .buffer_unordered(64)
        .collect()
        .await;
    let flood = started.elapsed();
    assert!(codes.iter().all(|code| *code == Code::Unauthenticated));
    // One more once the limiter has let a line through again: it carries the
    // count of everything left out before it.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(wrong_token_call().await, Code::Unauthenticated);
    let output = gamegate.stop(seen);

    let warnings = output.containing(" WARN ");
    let failures = output.containing("rpc failed");
    let suppressed: Vec<u64> = failures
        .iter()
        .filter_map(|line| {
            let at = line.find("suppressed=")? + "suppressed=".len();
            let digits: String = line[at..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
        .collect();
    let sample = &failures[..failures.len().min(10)];
    assert_eq!(
        failures.len() as u64 + suppressed.iter().sum::<u64>(),
        FLOOD as u64 + 1,
        "every failed call is written or counted ({} lines): {sample:#?}",
        failures.len()
    );
    assert!(
        !suppressed.is_empty(),
        "a line carries the count ({} lines): {sample:#?}",
        failures.len()
    );
    // A burst of five, one a second of the flood, the one after the pause.
    let allowed = 5 + flood.as_secs() as usize + 1 + 1;
    assert!(
        warnings.len() <= allowed,
        "{} warnings for a flood of {flood:?}: {:#?}",
        warnings.len(),
        &warnings[..warnings.len().min(10)]
    );
}

#[test]
fn the_unmodified_example_configuration_does_not_start() {
    let example = include_str!("../../deploy/gamegate.example.toml");
    for command in ["serve", "check-config"] {
        let output = Gamegate::spawn(command, example, &KUBERNETES_SERVICE_VARIABLES)
            .exit_within(Duration::from_secs(30));
        assert!(!output.status.success(), "{command}: {}", output.status);
        assert!(
            output.stderr.contains("placeholder")
                && output
                    .stderr
                    .contains("GAMEGATE_QQ_MINIGAME__APPS__1112345678__SECRET"),
            "{command}: the error names the key and its variable: {}",
            output.stderr
        );
    }
}
