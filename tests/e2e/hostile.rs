//! Hostile or broken input: what gamegate refuses, and that every refusal is a
//! gRPC status with ErrorInfo (or HTTP 415 for what is not gRPC, gRPC-Web or
//! Connect at all).
//! Requests that are too large are refused from their 5-byte gRPC frame
//! header, before their body is decoded, and an unauthenticated one from its
//! headers, before its body is read.

use std::{net::SocketAddr, time::Duration};

use bytes::Bytes;
use gamegate::{
    config::Caller,
    proto::{GetQqFriendsVipRequest, QqUserLogin, SetUserStorageRequest},
};
use http::{HeaderMap, StatusCode};
use secrecy::SecretString;
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tonic::{Code, Request, Status};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::common::{Harness, alice_stores, demo, expect_error, rich};

const SET_PATH: &str = "/api/openDataContext/set_user_storage";
const SET_RPC: &str = "/gamegate.v1.StorageService/SetUserStorage";
const TOKEN: &str = "hostile-suite-caller-token-0123";

fn set_request(value_len: usize) -> SetUserStorageRequest {
    alice_stores("score", &"1".repeat(value_len))
}

fn vip_request(fopenids: usize) -> GetQqFriendsVipRequest {
    GetQqFriendsVipRequest {
        app_id: demo::MSDK_QQ_APPID.into(),
        user: Some(QqUserLogin {
            openid: demo::MSDK_QQ_ALICE_OPENID.into(),
            access_token: demo::MSDK_QQ_ALICE_TOKEN.into(),
        }),
        fopenids: vec![demo::MSDK_QQ_BOB_OPENID.into(); fopenids],
        flags: "qq_vip".into(),
        userip: "203.0.113.7".into(),
        pf: "openmobile_android".into(),
        options: None,
    }
}

fn with_authorization<T>(message: T, value: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", value.parse().unwrap());
    request
}

fn with_caller(config: &mut gamegate::config::Config) {
    config.callers = vec![Caller {
        name: "lobby".into(),
        token: SecretString::from(TOKEN),
        token_file: None,
        certificate_san: None,
        apps: vec!["*".into()],
        receive_session_keys: false,
    }];
}

/// What a raw HTTP/2 exchange ended with.
struct RawAnswer {
    status: StatusCode,
    headers: HeaderMap,
    trailers: Option<HeaderMap>,
}

impl RawAnswer {
    fn grpc_status(&self) -> Status {
        Status::from_header_map(&self.headers)
            .or_else(|| self.trailers.as_ref().and_then(Status::from_header_map))
            .unwrap_or_else(|| panic!("no grpc status: {:?}", self.headers))
    }
}

/// One HTTP/2 request as a broken or hostile client sends it.
async fn raw(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: Bytes) -> RawAnswer {
    let tcp = TcpStream::connect(addr).await.expect("connects");
    let (mut client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut request = http::Request::post(format!("http://{addr}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let (response, mut stream) = client
        .send_request(request.body(()).unwrap(), false)
        .expect("the request is sent");
    // The server may answer before it reads the body (and reset the stream).
    let _ = stream.send_data(body, true);
    let response = response.await.expect("an answer");
    let (parts, mut body) = response.into_parts();
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    let trailers = body.trailers().await.ok().flatten();
    RawAnswer {
        status: parts.status,
        headers: parts.headers,
        trailers,
    }
}

fn grpc_frame(compressed: bool, message: &[u8]) -> Bytes {
    let mut frame = vec![u8::from(compressed)];
    frame.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(message);
    frame.into()
}

const GRPC: (&str, &str) = ("content-type", "application/grpc");
const TE: (&str, &str) = ("te", "trailers");

#[tokio::test]
async fn a_request_over_its_rpcs_size_limit_is_refused_before_it_is_decoded() {
    let harness = Harness::start().await;
    let mut storage = harness.storage().max_encoding_message_size(usize::MAX);
    let error = expect_error(
        storage.set_user_storage(set_request(2 * 1024 * 1024)).await,
        Code::ResourceExhausted,
        "REQUEST_TOO_LARGE",
    );
    assert_eq!(error.domain, "gamegate");
    let limit: usize = error.metadata["limit_bytes"].parse().unwrap();
    assert!(
        (64 * 1024..1024 * 1024).contains(&limit),
        "SetUserStorage's limit follows from its declared limits: {limit}"
    );
    assert!(
        error.retry_delay().is_none(),
        "the same call will not fit later"
    );
    assert_eq!(
        harness.total_requests().await,
        0,
        "the platform saw nothing"
    );

    // Just over the limit: refused from the frame header alone.
    let answer = raw(
        harness.gateway.as_ref().unwrap().addr,
        SET_RPC,
        &[GRPC, TE],
        grpc_frame(false, &vec![0u8; limit + 1]),
    )
    .await;
    let status = answer.grpc_status();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(rich(&status).reason, "REQUEST_TOO_LARGE");

    // A value over its own documented limit but within the size limit is a
    // bad request, as before.
    expect_error(
        storage.set_user_storage(set_request(2000)).await,
        Code::InvalidArgument,
        "KV_TOO_LONG",
    );
}

#[tokio::test]
async fn an_unauthenticated_request_is_refused_before_its_body_is_read() {
    let harness = Harness::start_with(with_caller).await;
    let mut storage = harness.storage().max_encoding_message_size(usize::MAX);
    // 4 MiB without a token: refused from the headers.
    expect_error(
        storage.set_user_storage(set_request(4 * 1024 * 1024)).await,
        Code::Unauthenticated,
        "CALLER_UNAUTHENTICATED",
    );
    // With the token, the size limit refuses it.
    expect_error(
        storage
            .set_user_storage(with_authorization(
                set_request(4 * 1024 * 1024),
                &format!("Bearer {TOKEN}"),
            ))
            .await,
        Code::ResourceExhausted,
        "REQUEST_TOO_LARGE",
    );
    assert_eq!(harness.total_requests().await, 0);
    // The scheme is case-insensitive.
    for scheme in ["bearer", "BEARER"] {
        storage
            .set_user_storage(with_authorization(
                set_request(1),
                &format!("{scheme} {TOKEN}"),
            ))
            .await
            .unwrap_or_else(|status| panic!("{scheme}: {status:?}"));
    }
}

#[tokio::test]
async fn a_list_over_its_bound_is_refused_whole_with_one_violation() {
    let harness = Harness::start().await;
    let error = expect_error(
        harness
            .relation()
            .get_qq_friends_vip(vip_request(491))
            .await,
        Code::InvalidArgument,
        "FIELD_INVALID",
    );
    assert_eq!(error.bad_request_fields(), vec!["fopenids"]);
    assert_eq!(harness.requests("/relation/qqfriends_vip").await, 0);
}

#[tokio::test]
async fn every_refusal_of_the_grpc_layer_carries_error_info() {
    let harness = Harness::start().await;
    let addr = harness.gateway.as_ref().unwrap().addr;
    let expect = |answer: RawAnswer, code: Code, reason: &str| {
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "gRPC errors ride on HTTP 200"
        );
        let status = answer.grpc_status();
        let error = rich(&status);
        assert_eq!(
            (status.code(), error.reason.as_str()),
            (code, reason),
            "{status:?}"
        );
        assert_eq!(error.domain, "gamegate");
    };

    let not_protobuf = raw(addr, SET_RPC, &[GRPC, TE], grpc_frame(false, &[0xff; 16])).await;
    expect(not_protobuf, Code::InvalidArgument, "REQUEST_UNREADABLE");

    let no_message = raw(addr, SET_RPC, &[GRPC, TE], Bytes::new()).await;
    expect(no_message, Code::Internal, "REQUEST_UNREADABLE");

    let cut_frame = raw(addr, SET_RPC, &[GRPC, TE], Bytes::from_static(&[0, 0, 0])).await;
    expect(cut_frame, Code::Internal, "REQUEST_UNREADABLE");

    let compressed = raw(
        addr,
        SET_RPC,
        &[GRPC, TE, ("grpc-encoding", "gzip")],
        grpc_frame(true, &[0x1f, 0x8b]),
    )
    .await;
    expect(compressed, Code::Unimplemented, "COMPRESSION_UNSUPPORTED");

    let unknown_method = raw(
        addr,
        "/gamegate.v1.StorageService/NoSuchMethod",
        &[GRPC, TE],
        grpc_frame(false, &[]),
    )
    .await;
    expect(unknown_method, Code::Unimplemented, "METHOD_UNKNOWN");

    let unknown_service = raw(
        addr,
        "/no.such.Service/Call",
        &[GRPC, TE],
        grpc_frame(false, &[]),
    )
    .await;
    expect(unknown_service, Code::Unimplemented, "METHOD_UNKNOWN");

    let json = raw(
        addr,
        SET_RPC,
        &[("content-type", "text/plain")],
        Bytes::from_static(b"{}"),
    )
    .await;
    // JSON is Connect's now (tests/e2e/connect.rs); plain text is no one's.
    assert_eq!(json.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let error = HealthClient::new(harness.channel.clone())
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .expect_err("an unknown service has no health");
    let info = rich(&error);
    assert_eq!(
        (error.code(), info.reason.as_str()),
        (Code::NotFound, "METHOD_UNKNOWN")
    );
    assert_eq!(harness.total_requests().await, 0);
}

#[tokio::test]
async fn calls_past_the_in_flight_limit_are_refused_with_retry_info() {
    let harness = Harness::start_with(|config| config.limits.max_calls_in_flight = 1).await;
    harness
        .fault(json!({"path": SET_PATH, "latency_ms": 600, "times": 1}))
        .await;
    let mut slow = harness.storage();
    let first = tokio::spawn(async move { slow.set_user_storage(set_request(1)).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let error = expect_error(
        harness.storage().set_user_storage(set_request(1)).await,
        Code::ResourceExhausted,
        "GATEWAY_OVERLOADED",
    );
    assert_eq!(error.domain, "gamegate");
    assert!(
        error.retry_delay().is_some(),
        "another replica or a moment later"
    );
    assert!(error.has_quota_failure());
    first.await.unwrap().expect("the call in flight is served");
    harness
        .storage()
        .set_user_storage(set_request(1))
        .await
        .expect("a place is free again");
}

/// A platform at a raw socket that answers every request with `answer`.
async fn platform_answering(answer: Vec<u8>) -> (String, tokio::task::JoinHandle<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let served = tokio::spawn(async move {
        let mut served = 0;
        while let Ok(Ok((mut socket, _))) =
            tokio::time::timeout(Duration::from_secs(1), listener.accept()).await
        {
            let mut request = vec![0u8; 64 * 1024];
            let _ = socket.read(&mut request).await;
            served += 1;
            let _ = socket.write_all(&answer).await;
            let _ = socket.shutdown().await;
        }
        served
    });
    (url, served)
}

#[tokio::test]
async fn an_answer_over_the_platforms_size_limit_is_malformed_not_unreachable() {
    let huge = 8 * 1024 * 1024;
    let by_length = format!("HTTP/1.1 200 OK\r\ncontent-length: {huge}\r\n\r\n[1").into_bytes();
    let mut chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..40 {
        chunked.extend_from_slice(b"800\r\n");
        chunked.extend_from_slice(&[b'1'; 0x800]);
        chunked.extend_from_slice(b"\r\n");
    }
    let bad_framing = b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n{}".to_vec();
    for (name, answer) in [
        ("content-length", by_length),
        ("chunked", chunked),
        ("framing", bad_framing),
    ] {
        let (url, served) = platform_answering(answer).await;
        let harness = Harness::start_with(|config| {
            let msdk = config.msdk.as_mut().unwrap();
            msdk.base_url = url.clone();
            msdk.max_answer_bytes = 64 * 1024;
        })
        .await;
        let error = expect_error(
            harness.relation().get_qq_friends_vip(vip_request(1)).await,
            Code::Unavailable,
            "UPSTREAM_MALFORMED_RESPONSE",
        );
        assert_eq!(
            error.metadata["endpoint"], "/relation/qqfriends_vip",
            "{name}"
        );
        drop(harness);
        assert_eq!(
            served.await.unwrap(),
            1,
            "{name}: a malformed answer is not retried"
        );
    }
}
