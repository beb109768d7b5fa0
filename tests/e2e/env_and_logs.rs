//! The real binary under hostile input: the variables Kubernetes gives a pod,
//! a configuration variable that does not parse, caller values carrying
//! newlines and terminal escapes (text and JSON logs), a flood of wrong
//! tokens. Each test runs `gamegate` as a child process with a clean
//! environment and a configuration file of its own, and reads the bytes it
//! writes, exactly as an operator's log collector would.

use std::{
    net::SocketAddr,
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

use crate::{
    binary::{Gamegate, Output},
    common::{demo, loopback},
};

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
    let config = format!(
        "{NO_UPSTREAM}\n[[callers]]\nname = \"lobby\"\ntoken = \"{LOBBY_TOKEN}\"\napps = [\"*\"]\n"
    );
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

/// A caller's token of digits only, set by the caller's name.
const DIGIT_TOKEN: &str = "0123456789012345";

/// Every secret from where an operator keeps it: the app's secret in a file
/// (a Secret volume), the caller's token (all digits, a leading zero) from
/// the environment by the caller's name. Logs are JSON on a pipe by default,
/// every call leaves one access line, HTTP/2 internals stay quiet at debug,
/// and no secret reaches the output.
#[tokio::test]
async fn secrets_from_files_and_named_variables_json_logs_and_one_access_line_per_call() {
    let sandbox = sandbox::spawn(SandboxConfig::demo(), loopback())
        .await
        .expect("sandbox starts");
    let secret_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret_file.path(), format!("{}\n", demo::MINIGAME_SECRET)).unwrap();
    let config = format!(
        "listen = \"127.0.0.1:0\"\n\
         [[callers]]\nname = \"lobby-server\"\napps = [\"{app}\"]\n\
         [qq_minigame]\nbase_url = \"{url}\"\n\
         [qq_minigame.apps.{app}]\nsecret_file = \"{file}\"\n",
        app = demo::MINIGAME_APPID,
        url = sandbox.base_url(),
        file = secret_file.path().display(),
    );
    let env = [
        // Unset: the default of a pipe.
        ("GAMEGATE_LOG_FORMAT", ""),
        ("GAMEGATE_LOG", "debug"),
        ("GAMEGATE_CALLERS__LOBBY_SERVER__TOKEN", DIGIT_TOKEN),
    ];
    let mut gamegate = Gamegate::spawn("serve", &config, &env);
    let mut seen = Vec::new();
    let addr = gamegate.serving(&mut seen);
    let channel = connect(addr).await;
    let call = |app_id: &str| {
        let mut request = Request::new(storage_request(app_id));
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {DIGIT_TOKEN}").parse().unwrap(),
        );
        let mut storage = StorageServiceClient::new(channel.clone());
        async move { storage.set_user_storage(request).await }
    };
    call(demo::MINIGAME_APPID)
        .await
        .expect("the token of digits and the secret from its file work");
    let refused = call("1000000001").await.expect_err("an app it may not use");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let output = gamegate.stop(seen);

    let events: Vec<serde_json::Value> = output
        .text()
        .iter()
        .map(|line| {
            assert!(!line.contains('\u{1b}'), "a colour escape: {line:?}");
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
        })
        .collect();
    let access: Vec<&serde_json::Value> = events
        .iter()
        .filter(|event| event["fields"]["message"] == "call")
        .collect();
    assert_eq!(access.len(), 2, "one access line per call: {access:#?}");
    let fields = |at: usize| &access[at]["fields"];
    assert_eq!(
        fields(0)["rpc"],
        "/gamegate.v1.StorageService/SetUserStorage"
    );
    assert_eq!(fields(0)["app"], demo::MINIGAME_APPID);
    assert_eq!(fields(0)["caller"], "lobby-server");
    assert_eq!(fields(0)["platform"], "qq_minigame");
    assert_eq!(fields(0)["grpc_code"], "OK");
    assert_eq!(fields(0)["upstream_code"], 0);
    assert!(
        fields(0)["duration_ms"].as_f64().is_some(),
        "{:?}",
        fields(0)
    );
    assert!(
        fields(0).get("openid").is_none(),
        "openid only when asked for"
    );
    assert_eq!(access[0]["level"], "INFO");
    assert_eq!(fields(1)["grpc_code"], "PERMISSION_DENIED");
    assert_eq!(fields(1)["reason"], "APP_NOT_ALLOWED");
    // HTTP/2 frames and hyper's connection lines stay below the debug asked
    // for: what is left is gamegate's own.
    let frames: Vec<&serde_json::Value> = events
        .iter()
        .filter(|event| {
            let text = event.to_string();
            text.contains("frame") || text.contains("Frame")
        })
        .collect();
    assert!(frames.is_empty(), "http/2 internals: {frames:#?}");
    assert!(events.len() < 40, "{} lines for two calls", events.len());
    for secret in [DIGIT_TOKEN, demo::MINIGAME_SECRET] {
        assert!(
            output.containing(secret).is_empty() && !output.stderr.contains(secret),
            "{secret} was logged"
        );
    }
}

/// A case of refusal: what it is, the file, the environment, what the error
/// must say.
type RefusalCase = (
    &'static str,
    String,
    Vec<(&'static str, &'static str)>,
    &'static str,
);

/// Each refusal of the binary names where the key was set: the file's line
/// and column, or the exact variable; never a secret.
#[test]
fn every_refusal_names_the_file_line_or_the_variable_and_never_the_secret() {
    let platform = "[qq_openapi]\nbase_url = \"http://127.0.0.1:9\"\n";
    let cases: [RefusalCase; 6] = [
        (
            "a budget out of range",
            format!("{platform}budget_ms = 0\n"),
            vec![],
            ".toml:3:1: qq_openapi.budget_ms is 0",
        ),
        (
            "a budget from the environment",
            platform.to_string(),
            vec![("GAMEGATE_QQ_OPENAPI__BUDGET_MS", "soon")],
            "environment variable GAMEGATE_QQ_OPENAPI__BUDGET_MS: qq_openapi.budget_ms: invalid type",
        ),
        (
            "a short appkey of digits",
            format!("{platform}[qq_openapi.apps.1110766236]\n"),
            vec![(
                "GAMEGATE_QQ_OPENAPI__APPS__1110766236__APPKEY",
                "0123456789",
            )],
            "environment variable GAMEGATE_QQ_OPENAPI__APPS__1110766236__APPKEY: \
             qq_openapi.apps.1110766236.appkey has 10 characters",
        ),
        (
            "a caller with no apps",
            format!(
                "{platform}[qq_openapi.apps.1110766236]\nappkey = \"0123456789abcdef\"\n\
                 [[callers]]\nname = \"lobby\"\ntoken = \"lobby-token-0123456789\"\napps = []\n"
            ),
            vec![],
            ".toml:8:1: callers.lobby.apps is empty",
        ),
        (
            "a caller naming an unknown app",
            format!(
                "{platform}[qq_openapi.apps.1110766236]\nappkey = \"0123456789abcdef\"\n\
                 [[callers]]\nname = \"lobby\"\ntoken = \"lobby-token-0123456789\"\napps = [\"42\"]\n"
            ),
            vec![],
            "callers.lobby.apps names \"42\", which no platform section configures",
        ),
        (
            "a token for a caller that does not exist",
            format!(
                "{platform}[qq_openapi.apps.1110766236]\nappkey = \"0123456789abcdef\"\n\
                 [[callers]]\nname = \"lobby\"\napps = [\"*\"]\n"
            ),
            vec![("GAMEGATE_CALLERS__0__TOKEN", "9876543210987654")],
            "environment variable GAMEGATE_CALLERS__0__TOKEN: callers has no caller named \"0\"",
        ),
    ];
    for (case, config, env, expected) in cases {
        let output =
            Gamegate::spawn("check-config", &config, &env).exit_within(Duration::from_secs(30));
        assert!(!output.status.success(), "{case}: {}", output.status);
        assert!(
            output.stderr.contains(expected),
            "{case}: expected {expected:?} in {}",
            output.stderr
        );
        for (_, value) in &env {
            assert!(
                value.len() < 5 || !output.stderr.contains(value),
                "{case}: the value is quoted: {}",
                output.stderr
            );
        }
        assert!(
            !output.stderr.contains("default."),
            "{case}: {}",
            output.stderr
        );
    }
}
