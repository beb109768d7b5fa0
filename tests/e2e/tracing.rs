//! Tracing across the hop: the real binary exports its spans over OTLP/gRPC to
//! a receiver of this test (OpenTelemetry's own `TraceService`), and each
//! call's trace id is in its log lines and its error's ErrorInfo.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use gamegate::{
    proto::{SetUserStorageRequest, storage_service_client::StorageServiceClient},
    sandbox::{self, SandboxConfig},
};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::any_value,
    trace::v1::{Span, span::SpanKind},
};
use tokio::{net::TcpListener, sync::oneshot};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Code, Request, Response, Status, metadata::MetadataValue, transport::Channel};

use crate::{
    binary::Gamegate,
    common::{alice_stores, demo, loopback, rich},
};

/// What the receiver was sent.
#[derive(Clone, Default)]
struct Receiver {
    exports: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.exports.lock().unwrap().push(request.into_inner());
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// A span as received, with its resource's `service.name`.
struct Received {
    service: String,
    span: Span,
}

impl Receiver {
    /// An OTLP/gRPC trace receiver on an ephemeral loopback port.
    async fn start() -> (Receiver, SocketAddr, oneshot::Sender<()>) {
        let listener = TcpListener::bind(loopback()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let receiver = Receiver::default();
        let (stop, stopped) = oneshot::channel::<()>();
        let service = TraceServiceServer::new(receiver.clone());
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                    let _ = stopped.await;
                })
                .await
                .expect("the receiver serves");
        });
        (receiver, addr, stop)
    }

    fn spans(&self) -> Vec<Received> {
        let mut spans = Vec::new();
        for export in self.exports.lock().unwrap().iter() {
            for resource_spans in &export.resource_spans {
                let service = resource_spans
                    .resource
                    .as_ref()
                    .and_then(|resource| string_attribute(&resource.attributes, "service.name"))
                    .unwrap_or_default();
                for scope in &resource_spans.scope_spans {
                    for span in &scope.spans {
                        spans.push(Received {
                            service: service.clone(),
                            span: span.clone(),
                        });
                    }
                }
            }
        }
        spans
    }
}

fn attribute<'a>(
    attributes: &'a [opentelemetry_proto::tonic::common::v1::KeyValue],
    key: &str,
) -> Option<&'a any_value::Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn string_attribute(
    attributes: &[opentelemetry_proto::tonic::common::v1::KeyValue],
    key: &str,
) -> Option<String> {
    match attribute(attributes, key)? {
        any_value::Value::StringValue(text) => Some(text.clone()),
        _ => None,
    }
}

fn int_attribute(
    attributes: &[opentelemetry_proto::tonic::common::v1::KeyValue],
    key: &str,
) -> Option<i64> {
    match attribute(attributes, key)? {
        any_value::Value::IntValue(value) => Some(*value),
        _ => None,
    }
}

/// The caller's trace and span ids (W3C).
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN_ID: &str = "00f067aa0ba902b7";
const ERROR_TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const ERROR_PARENT_SPAN_ID: &str = "b7ad6b7169203331";
/// Sent in `grpc-trace-bin` only.
const BINARY_TRACE_ID: &str = "5b8efff798038103d269b633813fc60c";
const BINARY_PARENT_SPAN_ID: &str = "eee19b7ec3c1b174";
/// Sent unsampled (`-00`): its spans are not recorded.
const UNSAMPLED_TRACE_ID: &str = "7c2d57d0e2b1c84d9a0f3e6b5d4c3b2a";

const SET_PATH: &str = "/api/openDataContext/set_user_storage";
const SET_RPC: &str = "gamegate.v1.StorageService/SetUserStorage";

fn storage_request(session_key: &str) -> SetUserStorageRequest {
    let mut request = alice_stores("score", "1");
    if let Some(user) = request.user.as_mut() {
        user.session_key = session_key.into();
    }
    request
}

fn traceparent(trace_id: &str, span_id: &str, flags: &str) -> Request<()> {
    let mut request = Request::new(());
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-{span_id}-{flags}").parse().unwrap(),
    );
    // Kept, and carried into the spans' context.
    request
        .metadata_mut()
        .insert("tracestate", "congo=t61rcWkgMzE".parse().unwrap());
    request
}

fn with_context<T>(context: Request<()>, message: T) -> Request<T> {
    let (metadata, extensions, ()) = context.into_parts();
    Request::from_parts(metadata, extensions, message)
}

fn hex_of(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// One call whose trace id is the caller's, one failing, one without a trace
/// context, one with `grpc-trace-bin`, one unsampled; then SIGTERM, which
/// flushes the spans left.
// Two workers: the receiver serves while this test waits for the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_cross_the_hop_and_the_trace_id_is_in_logs_and_errors() {
    let (receiver, receiver_addr, stop_receiver) = Receiver::start().await;
    let sandbox = sandbox::spawn(SandboxConfig::demo(), loopback())
        .await
        .expect("sandbox starts");
    let sandbox_port = sandbox
        .base_url()
        .rsplit(':')
        .next()
        .and_then(|port| port.parse::<i64>().ok())
        .expect("the sandbox's url ends with its port");
    let config = format!(
        "listen = \"127.0.0.1:0\"\n\
         drain_delay_ms = 0\n\
         [telemetry]\n\
         otlp_endpoint = \"http://{receiver_addr}\"\n\
         service_name = \"gamegate-e2e\"\n\
         [qq_minigame]\nbase_url = \"{url}\"\n\
         [qq_minigame.apps.{app}]\nsecret = \"{secret}\"\n",
        url = sandbox.base_url(),
        app = demo::MINIGAME_APPID,
        secret = demo::MINIGAME_SECRET,
    );
    let mut gamegate = Gamegate::spawn("serve", &config, &[("GAMEGATE_LOG_FORMAT", "json")]);
    let mut seen = Vec::new();
    let addr = gamegate.serving(&mut seen);
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .expect("gamegate accepts connections");
    let mut storage = StorageServiceClient::new(channel);

    // 1. The caller's trace: the first call of the app also fetches its token.
    storage
        .set_user_storage(with_context(
            traceparent(TRACE_ID, PARENT_SPAN_ID, "01"),
            storage_request(demo::MINIGAME_ALICE_SESSION_KEY),
        ))
        .await
        .expect("the call succeeds");

    // 2. A platform's refusal: its ErrorInfo names the caller's trace.
    let refused = storage
        .set_user_storage(with_context(
            traceparent(ERROR_TRACE_ID, ERROR_PARENT_SPAN_ID, "01"),
            storage_request(demo::MINIGAME_BOB_SESSION_KEY),
        ))
        .await
        .expect_err("bob's session key is not alice's");
    let refused = rich(&refused);
    assert_eq!(
        (refused.code, refused.reason.as_str()),
        (Code::Unauthenticated, "SESSION_KEY_INVALID")
    );
    assert_eq!(refused.metadata["trace_id"], ERROR_TRACE_ID);
    assert_eq!(refused.metadata["upstream_code"], "-100050007");

    // 3. No trace context: a fresh trace id, which the error carries.
    let mut unknown_app = storage_request(demo::MINIGAME_ALICE_SESSION_KEY);
    unknown_app.app_id = "1000000001".into();
    let unknown = rich(
        &storage
            .set_user_storage(unknown_app)
            .await
            .expect_err("no such app"),
    );
    let fresh_trace_id = unknown.metadata["trace_id"].clone();
    assert_eq!(fresh_trace_id.len(), 32, "{fresh_trace_id:?}");
    assert!(
        fresh_trace_id
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
        "{fresh_trace_id:?}"
    );
    assert_ne!(fresh_trace_id, "0".repeat(32));

    // 4. OpenCensus' binary context only (a client that still sends it).
    let mut binary = vec![0, 0];
    binary.extend(hex::decode(BINARY_TRACE_ID).unwrap());
    binary.push(1);
    binary.extend(hex::decode(BINARY_PARENT_SPAN_ID).unwrap());
    binary.extend([2, 1]);
    let mut request = Request::new(storage_request(demo::MINIGAME_ALICE_SESSION_KEY));
    request
        .metadata_mut()
        .insert_bin("grpc-trace-bin", MetadataValue::from_bytes(&binary));
    storage
        .set_user_storage(request)
        .await
        .expect("the call succeeds");

    // 5. An unsampled caller: nothing recorded, the trace id still in the log.
    storage
        .set_user_storage(with_context(
            traceparent(UNSAMPLED_TRACE_ID, PARENT_SPAN_ID, "00"),
            storage_request(demo::MINIGAME_ALICE_SESSION_KEY),
        ))
        .await
        .expect("the call succeeds");

    gamegate.signal("TERM");
    let output = gamegate.exit_after(Duration::from_secs(30), seen);
    assert!(output.status.success(), "{}", output.stderr);
    let _ = stop_receiver.send(());

    // The log: every line of a call carries its trace id, first.
    let events: Vec<serde_json::Value> = output
        .text()
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let access: Vec<&serde_json::Value> = events
        .iter()
        .filter(|event| event["fields"]["message"] == "call")
        .collect();
    let access_trace_ids: Vec<&str> = access
        .iter()
        .map(|event| {
            event["trace_id"]
                .as_str()
                .unwrap_or_else(|| panic!("no trace_id: {event}"))
        })
        .collect();
    assert_eq!(
        access_trace_ids,
        [
            TRACE_ID,
            ERROR_TRACE_ID,
            fresh_trace_id.as_str(),
            BINARY_TRACE_ID,
            UNSAMPLED_TRACE_ID
        ],
        "{access:#?}"
    );
    for line in output.text() {
        if line.contains("\"trace_id\"") {
            assert!(line.starts_with("{\"trace_id\":\""), "{line}");
        }
    }
    let failed: Vec<&serde_json::Value> = events
        .iter()
        .filter(|event| event["fields"]["message"] == "rpc failed")
        .collect();
    assert!(
        failed
            .iter()
            .any(|event| event["trace_id"] == ERROR_TRACE_ID
                && event["fields"]["reason"] == "SESSION_KEY_INVALID"),
        "the failure line of the refused call: {failed:#?}"
    );

    // The spans.
    let spans = receiver.spans();
    assert!(
        spans
            .iter()
            .all(|received| received.service == "gamegate-e2e"),
        "service.name"
    );
    let of_trace = |trace_id: &str| -> Vec<&Span> {
        spans
            .iter()
            .map(|received| &received.span)
            .filter(|span| hex_of(&span.trace_id) == trace_id)
            .collect()
    };
    let kind_of = |spans: &[&Span], kind: SpanKind| -> Vec<Span> {
        spans
            .iter()
            .filter(|span| span.kind == kind as i32)
            .map(|span| (*span).clone())
            .collect()
    };

    // 1. One server span, child of the caller's; two upstream spans, its
    // children: the call's own request and the access token's fetch it
    // started (the first call of the app).
    let trace = of_trace(TRACE_ID);
    let servers = kind_of(&trace, SpanKind::Server);
    let clients = kind_of(&trace, SpanKind::Client);
    assert_eq!(
        (servers.len(), clients.len(), trace.len()),
        (1, 2, 3),
        "the caller's trace: {trace:#?}"
    );
    let server = &servers[0];
    let client = clients
        .iter()
        .find(|span| string_attribute(&span.attributes, "url.path").as_deref() == Some(SET_PATH))
        .unwrap_or_else(|| panic!("no span of {SET_PATH}: {clients:#?}"));
    assert_eq!(hex_of(&server.parent_span_id), PARENT_SPAN_ID);
    assert_eq!(server.trace_state, "congo=t61rcWkgMzE");
    assert_eq!(server.name, SET_RPC);
    let server_attributes: HashMap<&str, Option<&any_value::Value>> = [
        "rpc.system",
        "rpc.service",
        "rpc.method",
        "rpc.grpc.status_code",
    ]
    .into_iter()
    .map(|key| (key, attribute(&server.attributes, key)))
    .collect();
    assert_eq!(
        string_attribute(&server.attributes, "rpc.system").as_deref(),
        Some("grpc"),
        "{server_attributes:?}"
    );
    assert_eq!(
        string_attribute(&server.attributes, "rpc.service").as_deref(),
        Some("gamegate.v1.StorageService")
    );
    assert_eq!(
        string_attribute(&server.attributes, "rpc.method").as_deref(),
        Some("SetUserStorage")
    );
    assert_eq!(
        int_attribute(&server.attributes, "rpc.grpc.status_code"),
        Some(0)
    );

    assert_eq!(
        client.parent_span_id, server.span_id,
        "the upstream span is the call's child"
    );
    assert_eq!(client.name, format!("POST {SET_PATH}"));
    assert_eq!(
        string_attribute(&client.attributes, "server.address").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(
        int_attribute(&client.attributes, "server.port"),
        Some(sandbox_port)
    );
    assert_eq!(
        string_attribute(&client.attributes, "http.request.method").as_deref(),
        Some("POST")
    );
    // The declared path: the query holds the access token and the signature.
    assert_eq!(
        string_attribute(&client.attributes, "url.path").as_deref(),
        Some(SET_PATH)
    );
    assert_eq!(
        int_attribute(&client.attributes, "http.response.status_code"),
        Some(200)
    );
    assert_eq!(
        int_attribute(&client.attributes, "gamegate.platform.code"),
        Some(0)
    );
    for span in [server, client] {
        let text = format!("{:?}", span.attributes);
        assert!(
            !text.contains("access_token") && !text.contains("signature"),
            "{text}"
        );
        assert!(!text.contains(demo::MINIGAME_SECRET), "{text}");
    }

    // The access token's fetch runs in a task of its own, shared by every
    // call that waits for it (`state::spawn_shared_fetch`), in the span of
    // the call that started it. It has no query either.
    let token_fetches: Vec<&Span> = spans
        .iter()
        .map(|received| &received.span)
        .filter(|span| {
            string_attribute(&span.attributes, "url.path").as_deref() == Some("/api/getToken")
        })
        .collect();
    assert_eq!(
        token_fetches.len(),
        1,
        "one token fetch: {token_fetches:#?}"
    );
    let token_fetch = token_fetches[0];
    assert_eq!(token_fetch.kind, SpanKind::Client as i32);
    assert_eq!(token_fetch.name, "GET /api/getToken");
    assert_eq!(hex_of(&token_fetch.trace_id), TRACE_ID);
    assert_eq!(
        token_fetch.parent_span_id, server.span_id,
        "the fetch is a child of the call that started it"
    );
    assert_eq!(
        int_attribute(&token_fetch.attributes, "http.response.status_code"),
        Some(200)
    );

    // 2. The refusal: the call's status, the platform's code on the attempt.
    let trace = of_trace(ERROR_TRACE_ID);
    let servers = kind_of(&trace, SpanKind::Server);
    let clients = kind_of(&trace, SpanKind::Client);
    assert_eq!((servers.len(), clients.len()), (1, 1), "{trace:#?}");
    assert_eq!(hex_of(&servers[0].parent_span_id), ERROR_PARENT_SPAN_ID);
    assert_eq!(
        int_attribute(&servers[0].attributes, "rpc.grpc.status_code"),
        Some(Code::Unauthenticated as i64)
    );
    assert_eq!(clients[0].parent_span_id, servers[0].span_id);
    assert_eq!(
        int_attribute(&clients[0].attributes, "gamegate.platform.code"),
        Some(-100050007)
    );

    // 3. A fresh trace: the server span is its root; no upstream call.
    let trace = of_trace(&fresh_trace_id);
    assert_eq!(trace.len(), 1, "{trace:#?}");
    assert_eq!(trace[0].kind, SpanKind::Server as i32);
    assert!(trace[0].parent_span_id.is_empty());
    assert_eq!(
        int_attribute(&trace[0].attributes, "rpc.grpc.status_code"),
        Some(Code::PermissionDenied as i64)
    );

    // 4. grpc-trace-bin.
    let trace = of_trace(BINARY_TRACE_ID);
    let servers = kind_of(&trace, SpanKind::Server);
    assert_eq!((servers.len(), trace.len()), (1, 2), "{trace:#?}");
    assert_eq!(hex_of(&servers[0].parent_span_id), BINARY_PARENT_SPAN_ID);

    // 5. Unsampled: not exported.
    assert!(of_trace(UNSAMPLED_TRACE_ID).is_empty());
    drop(sandbox);
}
