//! Connect (unary, JSON and protobuf, POST and GET) and gRPC-Web on the gRPC
//! port, over HTTP/1.1 and HTTP/2, through the same path as gRPC: callers,
//! deadlines, the same errors with the same details; CORS for configured
//! origins only.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::STANDARD_NO_PAD};
use gamegate::{
    config::Caller,
    proto::{GetDawankaInfoRequest, GetDawankaInfoResponse, SetUserStorageResponse},
};
use prost::Message;
use reqwest::{Client, StatusCode, header::HeaderMap};
use secrecy::SecretString;
use serde_json::{Value, json};
use tonic::Code;
use tonic_types::pb;

use crate::common::{Harness, alice_stores, demo, super_player_dawanka_info};

const SET: &str = "/gamegate.v1.StorageService/SetUserStorage";
const INFO: &str = "/gamegate.v1.DawankaService/GetDawankaInfo";

fn http1() -> Client {
    Client::builder().http1_only().build().unwrap()
}

fn http2() -> Client {
    Client::builder().http2_prior_knowledge().build().unwrap()
}

fn url(harness: &Harness, path: &str) -> String {
    format!("{}{path}", harness.gateway.as_ref().unwrap().endpoint())
}

/// alice stores `key` = `value`, as Connect's JSON writes it (lowerCamelCase).
fn alice_stores_json(key: &str, value: &str) -> Value {
    json!({
        "appId": demo::MINIGAME_APPID,
        "user": {
            "openid": demo::MINIGAME_ALICE_OPENID,
            "sessionKey": demo::MINIGAME_ALICE_SESSION_KEY,
        },
        "kvList": [{"key": key, "value": value}],
    })
}

/// The super player's dawanka info request, with proto field names (which
/// the JSON mapping accepts too) and the enum by name.
fn dawanka_json() -> Value {
    json!({
        "app_id": demo::OPENAPI_APPID,
        "user": {"openid": demo::OPENAPI_SUPER_OPENID, "openkey": demo::OPENAPI_SUPER_OPENKEY},
        "version": "DAWANKA_DATA_VERSION_V2",
    })
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// The Connect error's code and its ErrorInfo (decoded from `value`).
    fn error(&self) -> (String, pb::ErrorInfo) {
        let body = self.json();
        let info = connect_details(&body)
            .into_iter()
            .find(|(kind, _)| kind == "google.rpc.ErrorInfo")
            .map(|(_, value)| pb::ErrorInfo::decode(&value[..]).unwrap())
            .unwrap_or_else(|| panic!("no ErrorInfo: {body}"));
        (body["code"].as_str().unwrap().to_string(), info)
    }
}

/// A Connect error's details: each one's type and decoded bytes.
fn connect_details(body: &Value) -> Vec<(String, Vec<u8>)> {
    body["details"]
        .as_array()
        .map(|details| {
            details
                .iter()
                .map(|detail| {
                    let value = detail["value"].as_str().unwrap();
                    (
                        detail["type"].as_str().unwrap().to_string(),
                        STANDARD_NO_PAD.decode(value).unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("an answer");
    Answer {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.bytes().await.unwrap().to_vec(),
    }
}

async fn post_json(client: &Client, harness: &Harness, path: &str, body: &Value) -> Answer {
    send(
        client
            .post(url(harness, path))
            .header("content-type", "application/json")
            .header("connect-protocol-version", "1")
            .body(body.to_string()),
    )
    .await
}

#[tokio::test]
async fn a_write_and_a_read_over_connect_json_on_http1_and_http2() {
    let harness = Harness::start().await;
    for (client, version, value) in [
        (http1(), reqwest::Version::HTTP_11, "101"),
        (http2(), reqwest::Version::HTTP_2, "102"),
    ] {
        let response = client
            .post(url(&harness, SET))
            .header("content-type", "application/json")
            .header("connect-protocol-version", "1")
            .body(alice_stores_json("score", value).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.version(), version);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.json::<Value>().await.unwrap(), json!({}));
        let stored = harness
            .stored(demo::MINIGAME_APPID, demo::MINIGAME_ALICE_OPENID)
            .await;
        assert!(stored.to_string().contains(value), "{stored}");

        let read = post_json(&client, &harness, INFO, &dawanka_json()).await;
        assert_eq!(read.status, StatusCode::OK, "{:?}", read.json());
        let info = read.json();
        // Proto3 JSON: lowerCamelCase names, 64-bit integers as strings,
        // enums by name.
        assert!(info["score"].is_string(), "{info}");
        assert!(
            info["level"]
                .as_str()
                .unwrap()
                .starts_with("DAWANKA_LEVEL_"),
            "{info}"
        );
        assert!(
            info.get("discountPercent").is_some() || info.get("payReturnCount").is_some(),
            "{info}"
        );
    }
}

#[tokio::test]
async fn a_write_and_a_read_over_connect_proto() {
    let harness = Harness::start().await;
    for client in [http1(), http2()] {
        let answer = send(
            client
                .post(url(&harness, SET))
                .header("content-type", "application/proto")
                .body(alice_stores("score", "7").encode_to_vec()),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.headers["content-type"], "application/proto");
        SetUserStorageResponse::decode(&answer.body[..]).unwrap();

        let answer = send(
            client
                .post(url(&harness, INFO))
                .header("content-type", "application/proto")
                .body(super_player_dawanka_info().encode_to_vec()),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK);
        let info = GetDawankaInfoResponse::decode(&answer.body[..]).unwrap();
        let by_grpc = harness
            .dawanka()
            .get_dawanka_info(super_player_dawanka_info())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(info, by_grpc, "the same answer both ways");
    }
}

#[tokio::test]
async fn a_read_only_rpc_by_get_and_a_write_by_get_refused() {
    let harness = Harness::start().await;
    let client = http1();
    let message = dawanka_json().to_string();
    let query: String = url_encode(&message);
    let answer = send(client.get(format!(
        "{}?connect=v1&encoding=json&message={query}",
        url(&harness, INFO)
    )))
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.json());
    assert!(answer.json()["score"].is_string());

    let binary = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(super_player_dawanka_info().encode_to_vec());
    let answer = send(client.get(format!(
        "{}?connect=v1&encoding=proto&base64=1&message={binary}",
        url(&harness, INFO)
    )))
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    GetDawankaInfoResponse::decode(&answer.body[..]).unwrap();

    let write = url_encode(&alice_stores_json("score", "1").to_string());
    let before = harness.total_requests().await;
    let answer = send(client.get(format!(
        "{}?connect=v1&encoding=json&message={write}",
        url(&harness, SET)
    )))
    .await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(answer.headers["allow"], "POST");
    let (code, info) = answer.error();
    assert_eq!(
        (code.as_str(), info.reason.as_str()),
        ("invalid_argument", "REQUEST_UNREADABLE")
    );
    assert_eq!(
        harness.total_requests().await,
        before,
        "the platform was not called"
    );
}

fn url_encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[tokio::test]
async fn connect_timeout_ms_is_the_callers_deadline() {
    let harness = Harness::start().await;
    harness
        .fault(json!({"path": "/v3/user/get_dawanka_info", "latency_ms": 3000}))
        .await;
    let started = std::time::Instant::now();
    let answer = send(
        http1()
            .post(url(&harness, INFO))
            .header("content-type", "application/json")
            .header("connect-timeout-ms", "500")
            .body(dawanka_json().to_string()),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(answer.status, StatusCode::GATEWAY_TIMEOUT);
    let (code, info) = answer.error();
    assert_eq!(code, "deadline_exceeded");
    assert_eq!(info.domain, "gamegate");
    assert!(info.metadata.contains_key("trace_id"), "{info:?}");
}

#[tokio::test]
async fn envelope_errors_carry_error_info() {
    let harness = Harness::start().await;
    let client = http1();
    let unknown = post_json(
        &client,
        &harness,
        "/gamegate.v1.StorageService/NoSuch",
        &json!({}),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let (code, info) = unknown.error();
    assert_eq!(
        (code.as_str(), info.reason.as_str()),
        ("unimplemented", "METHOD_UNKNOWN")
    );

    let text = send(
        client
            .post(url(&harness, SET))
            .header("content-type", "text/plain")
            .body("{}"),
    )
    .await;
    assert_eq!(text.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(text.error().1.reason, "REQUEST_UNREADABLE");

    let broken = send(
        client
            .post(url(&harness, SET))
            .header("content-type", "application/json")
            .body("{\"appId\": "),
    )
    .await;
    assert_eq!(broken.status, StatusCode::BAD_REQUEST);
    let (code, info) = broken.error();
    assert_eq!(
        (code.as_str(), info.reason.as_str()),
        ("invalid_argument", "REQUEST_UNREADABLE")
    );

    let version = send(
        client
            .post(url(&harness, SET))
            .header("content-type", "application/json")
            .header("connect-protocol-version", "2")
            .body(alice_stores_json("a", "1").to_string()),
    )
    .await;
    assert_eq!(version.status, StatusCode::BAD_REQUEST);

    let gzip = send(
        client
            .post(url(&harness, SET))
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(alice_stores_json("a", "1").to_string()),
    )
    .await;
    let (code, info) = gzip.error();
    assert_eq!(
        (code.as_str(), info.reason.as_str()),
        ("unimplemented", "COMPRESSION_UNSUPPORTED")
    );

    // Over the route's limit, refused from Content-Length.
    let huge = send(
        client
            .post(url(&harness, SET))
            .header("content-type", "application/proto")
            .body(vec![0u8; 4 << 20]),
    )
    .await;
    assert_eq!(huge.status, StatusCode::TOO_MANY_REQUESTS);
    let (code, info) = huge.error();
    assert_eq!(
        (code.as_str(), info.reason.as_str()),
        ("resource_exhausted", "REQUEST_TOO_LARGE")
    );
    assert_eq!(harness.total_requests().await, 0);
}

#[tokio::test]
async fn a_configured_caller_needs_its_token_over_connect() {
    const TOKEN: &str = "lobby-server-token-0123456789";
    let harness = Harness::start_with(|config| {
        config.callers = vec![Caller {
            name: "lobby".into(),
            token: SecretString::from(TOKEN),
            token_file: None,
            certificate_san: None,
            apps: vec![demo::MINIGAME_APPID.into()],
            receive_session_keys: false,
        }];
    })
    .await;
    let client = http1();
    let anonymous = post_json(&client, &harness, SET, &alice_stores_json("a", "1")).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let (code, info) = anonymous.error();
    assert_eq!(
        (code.as_str(), info.reason.as_str()),
        ("unauthenticated", "CALLER_UNAUTHENTICATED")
    );
    assert!(!String::from_utf8_lossy(&anonymous.body).contains(TOKEN));

    let known = send(
        client
            .post(url(&harness, SET))
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(alice_stores_json("a", "1").to_string()),
    )
    .await;
    assert_eq!(known.status, StatusCode::OK, "{:?}", known.json());
}

#[tokio::test]
async fn an_idempotency_key_over_connect_replays_the_first_answer() {
    let harness = Harness::start().await;
    let keyed = |client: &Client| {
        client
            .post(url(&harness, SET))
            .header("content-type", "application/json")
            .header("idempotency-key", "connect-write-1")
            .body(alice_stores_json("score", "5").to_string())
    };
    let first = send(keyed(&http1())).await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(!first.headers.contains_key("idempotency-replayed"));
    // The repeat, over HTTP/2 this time: the same key, the same answer.
    let repeat = send(keyed(&http2())).await;
    assert_eq!(repeat.status, StatusCode::OK);
    assert_eq!(repeat.headers["idempotency-replayed"], "true");
    assert_eq!(repeat.body, first.body);
    assert_eq!(
        harness
            .requests("/api/openDataContext/set_user_storage")
            .await,
        1,
        "one upstream write"
    );
}

#[tokio::test]
async fn the_same_fault_gives_the_same_details_over_grpc_and_connect() {
    let harness = Harness::start().await;
    let long_key = "k".repeat(129);
    let status = harness
        .storage()
        .set_user_storage(alice_stores(&long_key, "1"))
        .await
        .expect_err("a key of 129 bytes is refused");
    assert_eq!(status.code(), Code::InvalidArgument);

    let counted_before = key_too_long_errors();
    let answer = post_json(&http2(), &harness, SET, &alice_stores_json(&long_key, "1")).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    // Counted as gRPC's are (the metrics are the process's: other tests
    // only add to them).
    assert!(
        key_too_long_errors() > counted_before,
        "the Connect error is counted"
    );
    assert_eq!(answer.error().1.reason, "KEY_TOO_LONG");
    let body = answer.json();
    assert_eq!(body["code"], "invalid_argument");
    let kinds = assert_same_error(&status, &body);
    assert!(
        kinds.contains(&"google.rpc.BadRequest".to_string()),
        "{kinds:?}"
    );
    let bad_request = body["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|detail| detail["type"] == "google.rpc.BadRequest")
        .unwrap();
    assert_eq!(
        bad_request["debug"]["fieldViolations"][0]["field"],
        "kv_list[0].key"
    );
}

#[tokio::test]
async fn a_platforms_busy_answer_gives_the_same_retry_info_over_grpc_and_connect() {
    let harness = Harness::start().await;
    harness
        .fault(json!({"path": "/api/openDataContext/set_user_storage", "code": -1, "times": 2}))
        .await;
    let status = harness
        .storage()
        .set_user_storage(alice_stores("score", "1"))
        .await
        .expect_err("the platform is busy");
    let answer = post_json(&http1(), &harness, SET, &alice_stores_json("score", "1")).await;
    let body = answer.json();
    assert_eq!(answer.status, connect_http_status(status.code()), "{body}");
    let kinds = assert_same_error(&status, &body);
    if status.code() == Code::Unavailable {
        assert!(
            kinds.contains(&"google.rpc.RetryInfo".to_string()),
            "{kinds:?}"
        );
    }
}

/// The HTTP status Connect gives a code (the few these tests meet).
fn connect_http_status(code: Code) -> StatusCode {
    match code {
        Code::InvalidArgument | Code::FailedPrecondition => StatusCode::BAD_REQUEST,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unknown | Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        other => panic!("not expected here: {other:?}"),
    }
}

/// A gRPC status and a Connect error body say the same: code, message,
/// and the same details in the same order, byte for byte, but for the
/// ErrorInfo's trace id (each call has its own). Returns the details' types.
fn assert_same_error(status: &tonic::Status, body: &Value) -> Vec<String> {
    assert_eq!(body["message"], status.message());
    let grpc = pb::Status::decode(status.details()).unwrap();
    let grpc_details: Vec<(String, Vec<u8>)> = grpc
        .details
        .iter()
        .map(|any| {
            (
                any.type_url
                    .trim_start_matches("type.googleapis.com/")
                    .to_string(),
                any.value.clone(),
            )
        })
        .collect();
    let connect_details = connect_details(body);
    let kinds = |details: &[(String, Vec<u8>)]| -> Vec<String> {
        details.iter().map(|(kind, _)| kind.clone()).collect()
    };
    assert_eq!(kinds(&grpc_details), kinds(&connect_details));
    for ((kind, grpc_value), (_, connect_value)) in grpc_details.iter().zip(&connect_details) {
        if kind == "google.rpc.ErrorInfo" {
            let mut by_grpc = pb::ErrorInfo::decode(&grpc_value[..]).unwrap();
            let mut by_connect = pb::ErrorInfo::decode(&connect_value[..]).unwrap();
            assert!(by_grpc.metadata.remove("trace_id").is_some());
            assert!(by_connect.metadata.remove("trace_id").is_some());
            assert_eq!(by_grpc, by_connect);
        } else {
            assert_eq!(grpc_value, connect_value, "{kind}");
        }
    }
    kinds(&grpc_details)
}

/// `gamegate_rpc_errors_total` of SetUserStorage's KEY_TOO_LONG, in this
/// process.
fn key_too_long_errors() -> f64 {
    gamegate::metrics::global()
        .prometheus_text()
        .lines()
        .filter(|line| {
            line.starts_with("gamegate_rpc_errors_total{")
                && line.contains("rpc_method=\"SetUserStorage\"")
                && line.contains("error_reason=\"KEY_TOO_LONG\"")
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A gRPC-Web frame: flags, length, message.
fn grpc_web_frame(flags: u8, message: &[u8]) -> Vec<u8> {
    let mut frame = vec![flags];
    frame.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(message);
    frame
}

/// The frames of a gRPC-Web body: its messages, and its trailers' text.
fn grpc_web_frames(mut body: &[u8]) -> (Vec<Vec<u8>>, String) {
    let mut messages = Vec::new();
    let mut trailers = String::new();
    while body.len() >= 5 {
        let flags = body[0];
        let len = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
        let payload = &body[5..5 + len];
        if flags & 0x80 != 0 {
            trailers.push_str(&String::from_utf8_lossy(payload));
        } else {
            messages.push(payload.to_vec());
        }
        body = &body[5 + len..];
    }
    (messages, trailers)
}

#[tokio::test]
async fn grpc_web_binary_on_http1_and_text_on_http2() {
    let harness = Harness::start().await;
    let request = GetDawankaInfoRequest::encode_to_vec(&super_player_dawanka_info());
    let answer = send(
        http1()
            .post(url(&harness, INFO))
            .header("content-type", "application/grpc-web+proto")
            .header("x-grpc-web", "1")
            .body(grpc_web_frame(0, &request)),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        answer.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/grpc-web")
    );
    let (messages, trailers) = grpc_web_frames(&answer.body);
    assert_eq!(messages.len(), 1);
    GetDawankaInfoResponse::decode(&messages[0][..]).unwrap();
    assert!(trailers.contains("grpc-status:0"), "{trailers:?}");

    // An error: trailers-only, the status in the headers, with ErrorInfo
    // (the same KEY_TOO_LONG as over gRPC).
    let long_key = "k".repeat(129);
    let answer = send(
        http1()
            .post(url(&harness, SET))
            .header("content-type", "application/grpc-web+proto")
            .body(grpc_web_frame(
                0,
                &alice_stores(&long_key, "1").encode_to_vec(),
            )),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    let status = tonic::Status::from_header_map(&answer.headers).expect("a trailers-only status");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(crate::common::rich(&status).reason, "KEY_TOO_LONG");

    // The text form: the frames in base64, over HTTP/2 this time.
    let text = base64::engine::general_purpose::STANDARD.encode(grpc_web_frame(0, &request));
    let answer = send(
        http2()
            .post(url(&harness, INFO))
            .header("content-type", "application/grpc-web-text")
            .header("accept", "application/grpc-web-text")
            .body(text),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        answer.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/grpc-web-text")
    );
    // Each frame may be encoded on its own (the message, then the
    // trailers): decoded chunk by chunk, each ending with its padding.
    let text = String::from_utf8(answer.body.clone()).expect("base64 text");
    let mut body = Vec::new();
    let mut rest = text.as_str();
    while !rest.is_empty() {
        let end = rest
            .find('=')
            .map(|at| at + rest[at..].bytes().take_while(|&b| b == b'=').count())
            .unwrap_or(rest.len());
        body.extend(
            base64::engine::general_purpose::STANDARD
                .decode(&rest[..end])
                .unwrap(),
        );
        rest = &rest[end..];
    }
    let (messages, trailers) = grpc_web_frames(&body);
    assert_eq!(messages.len(), 1);
    GetDawankaInfoResponse::decode(&messages[0][..]).unwrap();
    assert!(trailers.contains("grpc-status:0"), "{trailers:?}");
}

#[tokio::test]
async fn cors_preflights_are_answered_for_configured_origins_only() {
    let harness = Harness::start_with(|config| {
        config.listener.cors_allowed_origins = vec!["https://ops.example.com".into()];
    })
    .await;
    let preflight = |origin: &'static str| {
        http1()
            .request(reqwest::Method::OPTIONS, url(&harness, SET))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,connect-protocol-version,authorization",
            )
    };
    let allowed = send(preflight("https://ops.example.com")).await;
    assert!(allowed.status.is_success(), "{}", allowed.status);
    assert_eq!(
        allowed.headers["access-control-allow-origin"],
        "https://ops.example.com"
    );
    let headers = allowed.headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(headers.contains("connect-protocol-version"), "{headers}");

    let other = send(preflight("https://evil.example.com")).await;
    assert!(!other.headers.contains_key("access-control-allow-origin"));

    // A call from the allowed origin can read gRPC's status headers.
    let call = send(
        http1()
            .post(url(&harness, INFO))
            .header("origin", "https://ops.example.com")
            .header("content-type", "application/json")
            .body(dawanka_json().to_string()),
    )
    .await;
    assert_eq!(call.status, StatusCode::OK);
    assert!(
        call.headers["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("grpc-status")
    );

    // Without configured origins, no CORS header at all.
    let closed = Harness::start().await;
    let answer = send(
        http1()
            .request(reqwest::Method::OPTIONS, url(&closed, SET))
            .header("origin", "https://ops.example.com")
            .header("access-control-request-method", "POST"),
    )
    .await;
    assert!(!answer.headers.contains_key("access-control-allow-origin"));
}

/// Reads until the server closes the connection (or `within` passes):
/// what it sent, and whether it closed.
async fn read_until_closed(
    stream: &mut tokio::net::TcpStream,
    within: Duration,
) -> (Vec<u8>, bool) {
    use tokio::io::AsyncReadExt;
    let deadline = tokio::time::Instant::now() + within;
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return (received, false),
            Ok(Ok(0) | Err(_)) => return (received, true),
            Ok(Ok(read)) => received.extend_from_slice(&buffer[..read]),
        }
    }
}

#[tokio::test]
async fn http1_connections_keep_the_listeners_handshake_and_idle_timeouts() {
    use tokio::{io::AsyncWriteExt, net::TcpStream};
    let harness = Harness::start_with(|config| {
        config.listener.handshake_timeout_ms = 500;
        config.listener.idle_timeout_ms = 1_000;
    })
    .await;
    let addr = harness.gateway.as_ref().unwrap().addr;

    // Half a request head: closed by the handshake timeout, unanswered.
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(
        b"POST /gamegate.v1.StorageService/SetUserStorage HTTP/1.1\r\nhost: gamegate\r\n",
    )
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let (received, closed) = read_until_closed(&mut half, Duration::from_secs(5)).await;
    assert!(closed, "a half head is closed");
    assert!(
        received.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&received)
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // A whole call, kept alive: answered, then closed by the idle timeout.
    let mut kept = TcpStream::connect(addr).await.unwrap();
    let body = dawanka_json().to_string();
    let request = format!(
        "POST {INFO} HTTP/1.1\r\nhost: gamegate\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    kept.write_all(request.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let (received, closed) = read_until_closed(&mut kept, Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(closed, "closed once idle");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

/// curl (PHP's included) sends `Expect: 100-continue` with a body over 1 KiB
/// and waits for the interim answer before it sends the body.
#[tokio::test]
async fn an_http1_call_with_expect_100_continue_gets_its_interim_answer() {
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpStream,
    };
    let harness = Harness::start().await;
    let mut stream = TcpStream::connect(harness.gateway.as_ref().unwrap().addr)
        .await
        .unwrap();
    let body = alice_stores_json("score", &"9".repeat(1000)).to_string();
    let head = format!(
        "POST {SET} HTTP/1.1\r\nhost: gamegate\r\ncontent-type: application/json\r\n\
         connect-protocol-version: 1\r\nexpect: 100-continue\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buffer = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
        .await
        .expect("an interim answer")
        .unwrap();
    let interim = String::from_utf8_lossy(&buffer[..read]).to_string();
    assert!(interim.starts_with("HTTP/1.1 100 Continue"), "{interim}");
    stream.write_all(body.as_bytes()).await.unwrap();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
        .await
        .expect("the answer")
        .unwrap();
    let answer = String::from_utf8_lossy(&buffer[..read]).to_string();
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.ends_with("{}"), "{answer}");
}
