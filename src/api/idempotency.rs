//! Idempotency keys of writes. A caller may send `idempotency-key: <key>`
//! (1 to 64 visible ASCII characters) with any RPC whose route is not
//! idempotent; gamegate claims the key in the [`Store`] (shared by every
//! replica) with the request's fingerprint before it runs the call, and
//! records its outcome once the call ends. A repeat with the same key and the
//! same request within the window gets the recorded outcome again, byte for
//! byte and marked `idempotency-replayed: true`, without calling the
//! platform; while the first call runs, a repeat gets ABORTED with RetryInfo;
//! the same key with another request is INVALID_ARGUMENT.
//!
//! A call that certainly sent nothing to the platform (a refused request, an
//! unknown app, a failed token fetch) releases its key instead, so that the
//! caller's retry with the same key runs. Everything else, successes, the
//! platform's refusals, and the failures whose outcome is unknown (a timeout,
//! a connection lost after the request was written), is recorded: a write
//! whose outcome is unknown is never sent twice under one key.
//!
//! A key on a read (an idempotent route) is ignored, not even validated: a
//! read is safe to repeat, and remembering its answer would only serve stale
//! data.
//!
//! This module wraps the one generic path ([`crate::core::Core::execute`],
//! handed in as a future); it never copies it.

use std::{future::Future, sync::Arc, time::Duration};

use bytes::Bytes;
use prost::Message;
use prost_reflect::{DynamicMessage, Value};
use sha2::{Digest, Sha256};
use tonic::{
    Code, Status,
    metadata::{MetadataMap, MetadataValue},
};
use tonic_types::StatusExt;

use super::{access::Failure, codec::Reply};
use crate::{
    config::ListenerLimits,
    errors::GatewayError,
    plan::Route,
    platform::minigame::token::TOKEN_PATH,
    proto::Platform,
    state::{Claim, IdempotencyKey, Store},
    telemetry::trace,
};

/// How long a key's outcome is replayed when the configuration says nothing.
pub const DEFAULT_IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

/// What a key's lease adds to the listener's request timeout (which bounds
/// every call): the store's round trips and a slow scheduler.
pub const LEASE_MARGIN: Duration = Duration::from_secs(10);

/// The request metadata that carries the key.
pub const KEY_METADATA: &str = "idempotency-key";

/// The response metadata (headers, or trailers of a failure) of a replay.
pub const REPLAYED_METADATA: &str = "idempotency-replayed";

/// The longest key.
pub const MAX_KEY_CHARS: usize = 64;

/// How long keys are kept, and when a claim is given up for dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencyPolicy {
    /// How long an outcome is replayed (from the moment it was recorded).
    pub window: Duration,
    /// How long a claim without an outcome belongs to a running call; past
    /// it, the call's replica died ([`Claim::Abandoned`]).
    pub lease: Duration,
}

impl IdempotencyPolicy {
    /// Keys kept for `window`, under the listener's `request_timeout` (the
    /// longest a call can take). A window shorter than the lease is raised to
    /// it: a claim must not expire while its call may still be running, or a
    /// repeat would send the write a second time.
    pub fn new(window: Duration, request_timeout: Duration) -> Self {
        let lease = request_timeout.saturating_add(LEASE_MARGIN);
        IdempotencyPolicy {
            window: window.max(lease),
            lease,
        }
    }
}

impl Default for IdempotencyPolicy {
    fn default() -> Self {
        IdempotencyPolicy::new(
            DEFAULT_IDEMPOTENCY_WINDOW,
            ListenerLimits::default().request_timeout(),
        )
    }
}

/// The caller's key, if it sent one. Visible ASCII only: a space at either
/// end is not part of an HTTP field value (a proxy may drop it, and the same
/// key would arrive as another), and a control or non-ASCII byte is a bug of
/// the client that a refusal shows best.
pub fn requested_key(metadata: &MetadataMap) -> Result<Option<&str>, GatewayError> {
    let invalid = |problem| Err(GatewayError::IdempotencyKeyInvalid { problem });
    let mut values = metadata.get_all(KEY_METADATA).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return invalid("is sent more than once; send one key per call");
    }
    let bytes = value.as_bytes();
    if bytes.is_empty() {
        return invalid("is empty; a key is 1 to 64 visible ASCII characters");
    }
    if bytes.len() > MAX_KEY_CHARS {
        return invalid("is longer than 64 characters");
    }
    if !bytes.iter().all(u8::is_ascii_graphic) {
        return invalid(
            "holds a character that is not visible ASCII (a space, a control character or \
             a non-ASCII byte)",
        );
    }
    match std::str::from_utf8(bytes) {
        Ok(key) => Ok(Some(key)),
        Err(_) => invalid("is not ASCII"),
    }
}

/// The key as the store keeps it: `<caller>/<key>` (`-` when callers are not
/// configured), so that two callers' keys never meet, and the fingerprint of
/// the RPC and its request.
pub fn store_key(
    caller: Option<&str>,
    key: &str,
    route: &Route,
    request: &DynamicMessage,
) -> IdempotencyKey {
    IdempotencyKey {
        key: format!("{}/{key}", namespace(caller)),
        fingerprint: fingerprint(&route.grpc_path, request),
    }
}

/// The caller's part of a stored key. A caller's name may hold anything: `%`
/// and `/` are escaped so that the first `/` always ends it (caller `a/b`
/// with key `c` is not caller `a` with key `b/c`), and a caller named `-` is
/// not the open registry's `-`.
fn namespace(caller: Option<&str>) -> String {
    match caller {
        None => "-".into(),
        Some("-") => "%2D".into(),
        Some(name) => name.replace('%', "%25").replace('/', "%2F"),
    }
}

/// SHA-256 over the gRPC path and the request. Not over
/// `request.encode_to_vec()` itself: prost-reflect keeps a map field in a
/// `HashMap` and encodes it in that map's order, which differs from one
/// process to the next, so two replicas would give the same request two
/// fingerprints (`ReportWxBattle`'s `google.protobuf.Struct` is a map).
/// Instead the hash reads a canonical form of the message: known fields in
/// field-number order, map entries sorted by key, every value tagged with its
/// type and every string, list and message with its length (so that no two
/// messages read the same), and unknown fields as they were encoded.
pub fn fingerprint(grpc_path: &str, request: &DynamicMessage) -> [u8; 32] {
    let mut hasher = Sha256::new();
    feed_bytes(&mut hasher, grpc_path.as_bytes());
    feed_message(&mut hasher, request);
    hasher.finalize().into()
}

fn feed_len(hasher: &mut Sha256, len: usize) {
    hasher.update((len as u64).to_be_bytes());
}

fn feed_bytes(hasher: &mut Sha256, bytes: &[u8]) {
    feed_len(hasher, bytes.len());
    hasher.update(bytes);
}

fn feed_message(hasher: &mut Sha256, message: &DynamicMessage) {
    let mut fields: Vec<_> = message.fields().collect();
    fields.sort_by_key(|(field, _)| field.number());
    feed_len(hasher, fields.len());
    for (field, value) in fields {
        hasher.update(field.number().to_be_bytes());
        feed_value(hasher, value);
    }
    let mut unknown = Vec::new();
    for field in message.unknown_fields() {
        field.encode(&mut unknown);
    }
    feed_bytes(hasher, &unknown);
}

fn feed_value(hasher: &mut Sha256, value: &Value) {
    match value {
        Value::Bool(value) => hasher.update([1, u8::from(*value)]),
        Value::I32(value) => feed_scalar(hasher, 2, &value.to_be_bytes()),
        Value::I64(value) => feed_scalar(hasher, 3, &value.to_be_bytes()),
        Value::U32(value) => feed_scalar(hasher, 4, &value.to_be_bytes()),
        Value::U64(value) => feed_scalar(hasher, 5, &value.to_be_bytes()),
        Value::F32(value) => feed_scalar(hasher, 6, &value.to_bits().to_be_bytes()),
        Value::F64(value) => feed_scalar(hasher, 7, &value.to_bits().to_be_bytes()),
        Value::String(value) => {
            hasher.update([8]);
            feed_bytes(hasher, value.as_bytes());
        }
        Value::Bytes(value) => {
            hasher.update([9]);
            feed_bytes(hasher, value);
        }
        Value::EnumNumber(value) => feed_scalar(hasher, 10, &value.to_be_bytes()),
        Value::Message(message) => {
            hasher.update([11]);
            feed_message(hasher, message);
        }
        Value::List(values) => {
            hasher.update([12]);
            feed_len(hasher, values.len());
            for value in values {
                feed_value(hasher, value);
            }
        }
        Value::Map(entries) => {
            hasher.update([13]);
            feed_len(hasher, entries.len());
            let mut entries: Vec<_> = entries.iter().collect();
            entries.sort_by_key(|(key, _)| *key);
            for (key, value) in entries {
                feed_value(hasher, &Value::from(key.clone()));
                feed_value(hasher, value);
            }
        }
    }
}

fn feed_scalar(hasher: &mut Sha256, kind: u8, bytes: &[u8]) {
    hasher.update([kind]);
    hasher.update(bytes);
}

/// What becomes of a claimed key once its call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterCall {
    /// Keep the outcome: a repeat replays it.
    Record,
    /// Free the key: nothing was sent to the platform, a repeat runs.
    Release,
}

/// Whether `outcome` of a call of `route` is recorded or its key released.
pub fn after_call(route: &Route, outcome: &Result<DynamicMessage, GatewayError>) -> AfterCall {
    match outcome {
        Err(error) if never_sent(route, error) => AfterCall::Release,
        _ => AfterCall::Record,
    }
}

/// Whether `error` certainly ended the call before the write left gamegate.
/// Every variant is named (no `_`): a new one needs this decision.
fn never_sent(route: &Route, error: &GatewayError) -> bool {
    match error {
        // Refused by gamegate before any upstream call: the request, the
        // caller, the app, the configuration, the gateway's own limits.
        GatewayError::InvalidRequest { .. }
        | GatewayError::AppUnknown { .. }
        | GatewayError::CallerUnauthenticated
        | GatewayError::CallerIdentityConflict { .. }
        | GatewayError::AppNotAllowed { .. }
        | GatewayError::AppCredentialMissing { .. }
        | GatewayError::SessionLoginRequired { .. }
        | GatewayError::PlatformNotConfigured(_)
        | GatewayError::RequestTooLarge { .. }
        | GatewayError::RequestUnreadable { .. }
        | GatewayError::CompressionUnsupported { .. }
        | GatewayError::MethodUnknown { .. }
        | GatewayError::Overloaded { .. }
        // The app's token fetch (which comes before the write) ended
        // without a result.
        | GatewayError::FetchAborted { .. }
        | GatewayError::IdempotencyKeyInvalid { .. }
        | GatewayError::IdempotencyKeyInUse
        | GatewayError::IdempotencyKeyReused { .. }
        | GatewayError::IdempotencyOutcomeUnknown => true,
        // Held back before the upstream call: gamegate's rate limit, an open
        // circuit (a fanned-out call may have sent its other parts).
        GatewayError::RateLimited { .. } | GatewayError::CircuitOpen { .. } => {
            route.batch.is_none()
        }
        // The write may have reached the platform.
        GatewayError::OutcomeUnknown { .. } => false,
        GatewayError::Unreachable {
            platform,
            endpoint,
            source,
        } => {
            is_token_fetch(route, *platform, endpoint)
                // No byte of the request was handed to a connection (the
                // connection was refused). A fanned-out call has sent its
                // other parts, whichever part failed.
                || (!source.request_written() && route.batch.is_none())
        }
        GatewayError::Timeout {
            platform, endpoint, ..
        }
        | GatewayError::HttpStatus {
            platform, endpoint, ..
        }
        | GatewayError::Malformed {
            platform, endpoint, ..
        } => is_token_fetch(route, *platform, endpoint),
        GatewayError::Upstream(upstream) => {
            is_token_fetch(route, upstream.platform, &upstream.endpoint)
        }
    }
}

/// A failure of the mini-game app's token fetch, which comes before the
/// write: the write was not sent after it. (A write the platform refused for
/// its token did nothing, and is sent again only with a new token.) Named
/// by its endpoint, not by "any other endpoint than the route's": a failure
/// of the write reported under another name must never release its key.
fn is_token_fetch(route: &Route, platform: Platform, endpoint: &str) -> bool {
    platform == Platform::QqMinigame && endpoint == TOKEN_PATH && route.path != TOKEN_PATH
}

/// What a store keeps of an outcome. Its tags are a stored format, read by
/// other versions of gamegate during a rolling upgrade: never renumber them.
#[derive(Clone, PartialEq, Message)]
struct StoredOutcome {
    /// The gRPC code; 0 (OK) for an answer.
    #[prost(int32, tag = "1")]
    code: i32,
    /// An answer: the response message as it was sent.
    #[prost(bytes = "bytes", tag = "2")]
    response: Bytes,
    /// A failure: the status message.
    #[prost(string, tag = "3")]
    message: String,
    /// A failure: `grpc-status-details-bin`, the encoded `google.rpc.Status`
    /// with ErrorInfo and the other details.
    #[prost(bytes = "bytes", tag = "4")]
    details: Bytes,
}

/// A call's outcome as it was sent, so that a replay sends it again.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    /// The response message's bytes.
    Answer(Bytes),
    Failure {
        code: Code,
        message: String,
        details: Bytes,
    },
}

/// A recorded failure, as an access line shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedFailure {
    pub code: Code,
    pub reason: String,
    pub upstream_code: Option<i64>,
}

impl RecordedFailure {
    pub fn as_failure(&self) -> Failure<'_> {
        Failure {
            code: self.code,
            reason: &self.reason,
            upstream_code: self.upstream_code,
        }
    }
}

impl Recorded {
    /// A success: `message`, encoded once (the bytes sent are the bytes kept).
    pub fn answer(message: &DynamicMessage) -> Self {
        Recorded::Answer(Bytes::from(super::wire::encode_to_vec(message)))
    }

    /// A failure, as `status` says it.
    pub fn failure(status: &Status) -> Self {
        Recorded::Failure {
            code: status.code(),
            message: status.message().to_string(),
            details: status.details().to_vec().into(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let stored = match self {
            Recorded::Answer(response) => StoredOutcome {
                code: Code::Ok as i32,
                response: response.clone(),
                ..StoredOutcome::default()
            },
            Recorded::Failure {
                code,
                message,
                details,
            } => StoredOutcome {
                code: *code as i32,
                message: message.clone(),
                details: details.clone(),
                ..StoredOutcome::default()
            },
        };
        stored.encode_to_vec()
    }

    /// `None`: not an outcome this gamegate can read.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let stored = StoredOutcome::decode(bytes).ok()?;
        Some(match Code::from_i32(stored.code) {
            Code::Ok => Recorded::Answer(stored.response),
            code => Recorded::Failure {
                code,
                message: stored.message,
                details: stored.details,
            },
        })
    }

    /// The status of a failure.
    fn status(&self, replayed: bool) -> Option<Status> {
        match self {
            Recorded::Answer(_) => None,
            Recorded::Failure {
                code,
                message,
                details,
            } => Some(Status::with_details_and_metadata(
                *code,
                message.clone(),
                details.clone(),
                replay_metadata(replayed),
            )),
        }
    }

    /// The failure for the access line: the code, and ErrorInfo's reason and
    /// upstream code. `None` for an answer.
    pub fn access_failure(&self) -> Option<RecordedFailure> {
        let status = self.status(false)?;
        let info = status.get_details_error_info();
        Some(RecordedFailure {
            code: status.code(),
            reason: info
                .as_ref()
                .map_or_else(|| "UNSPECIFIED".into(), |info| info.reason.clone()),
            upstream_code: info.and_then(|info| info.metadata.get("upstream_code")?.parse().ok()),
        })
    }

    /// What the caller gets: the recorded answer or status; a replay says so
    /// in `idempotency-replayed: true`.
    pub fn respond(self, replayed: bool) -> Result<tonic::Response<Reply>, Status> {
        match self {
            Recorded::Answer(bytes) => {
                let mut response = tonic::Response::new(Reply::Encoded(bytes));
                *response.metadata_mut() = replay_metadata(replayed);
                Ok(response)
            }
            Recorded::Failure {
                code,
                message,
                details,
            } => Err(Status::with_details_and_metadata(
                code,
                message,
                details,
                replay_metadata(replayed),
            )),
        }
    }
}

fn replay_metadata(replayed: bool) -> MetadataMap {
    let mut metadata = MetadataMap::new();
    if replayed {
        metadata.insert(REPLAYED_METADATA, MetadataValue::from_static("true"));
    }
    metadata
}

/// How a call was served.
#[derive(Debug)]
pub enum Served {
    /// The call ran the core, or was refused before it (its key, or its
    /// fate: the error says). `recorded`: what was recorded of it under its
    /// key, which is then what the caller gets, so that the first answer and
    /// its replays are the same bytes.
    Ran {
        outcome: Result<DynamicMessage, GatewayError>,
        recorded: Option<Recorded>,
    },
    /// An earlier call's recorded outcome: the platform was not called.
    Replayed(Recorded),
}

impl Served {
    fn refused(error: GatewayError) -> Self {
        Served::Ran {
            outcome: Err(error),
            recorded: None,
        }
    }
}

/// The store and the policy a call's key is claimed with.
#[derive(Clone)]
pub struct Idempotency {
    pub store: Arc<dyn Store>,
    pub policy: IdempotencyPolicy,
}

impl Idempotency {
    /// Serves one call of `route`: `run` (the core's execution) runs at most
    /// once per key and request. A keyed write runs in a task of its own: a
    /// caller that stops waiting (its deadline, a reset) does not cancel it,
    /// so its outcome is still recorded and a repeat replays it instead of
    /// finding the key taken until its lease runs out.
    pub async fn serve<F>(
        &self,
        route: &Arc<Route>,
        caller: Option<&str>,
        metadata: &MetadataMap,
        request: &DynamicMessage,
        trace_id: Option<trace::TraceIdText>,
        run: F,
    ) -> Served
    where
        F: Future<Output = Result<DynamicMessage, GatewayError>> + Send + 'static,
    {
        let unkeyed = |outcome| Served::Ran {
            outcome,
            recorded: None,
        };
        // A login's answer holds a session key: never recorded (nor kept
        // in the store in the clear), so its key is ignored like a read's.
        if route.idempotent || route.issued_session.is_some() {
            return unkeyed(run.await);
        }
        let key = match requested_key(metadata) {
            Ok(None) => return unkeyed(run.await),
            Ok(Some(key)) => store_key(caller, key, route, request),
            Err(error) => return Served::refused(error),
        };
        let policy = self.policy;
        match self.store.claim(&key, policy.window, policy.lease).await {
            Claim::Owned => self.run_owned(route.clone(), key, trace_id, run).await,
            Claim::Running => Served::refused(GatewayError::IdempotencyKeyInUse),
            Claim::Done(bytes) => match Recorded::decode(&bytes) {
                Some(recorded) => Served::Replayed(recorded),
                None => {
                    tracing::warn!(
                        rpc = %route.grpc_path,
                        "a recorded outcome cannot be read; answering that it is unknown"
                    );
                    Served::refused(GatewayError::IdempotencyOutcomeUnknown)
                }
            },
            Claim::Abandoned => Served::refused(GatewayError::IdempotencyOutcomeUnknown),
            Claim::OtherRequest => Served::refused(GatewayError::IdempotencyKeyReused {
                window: policy.window,
            }),
        }
    }

    /// `trace_id`: the call's; a recorded failure carries it (the trace that
    /// holds the platform's answer), and its replays send the same bytes.
    async fn run_owned<F>(
        &self,
        route: Arc<Route>,
        key: IdempotencyKey,
        trace_id: Option<trace::TraceIdText>,
        run: F,
    ) -> Served
    where
        F: Future<Output = Result<DynamicMessage, GatewayError>> + Send + 'static,
    {
        let store = self.store.clone();
        let window = self.policy.window;
        let task = tokio::spawn(async move {
            let outcome = run.await;
            let recorded = match after_call(&route, &outcome) {
                AfterCall::Release => {
                    store.release(&key).await;
                    None
                }
                AfterCall::Record => {
                    let recorded = match &outcome {
                        Ok(message) => Recorded::answer(message),
                        Err(error) => {
                            let status = error.to_status();
                            let traced = trace_id.and_then(|trace_id| {
                                super::status::status_with_trace_id(&status, trace_id.as_str())
                            });
                            Recorded::failure(traced.as_ref().unwrap_or(&status))
                        }
                    };
                    store.record(&key, recorded.encode(), window).await;
                    Some(recorded)
                }
            };
            (outcome, recorded)
        });
        match task.await {
            Ok((outcome, recorded)) => Served::Ran { outcome, recorded },
            // As a panic of an unkeyed call would: its claim is abandoned
            // after the lease.
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            // The runtime is shutting down: nobody knows what the write did.
            Err(_) => Served::refused(GatewayError::IdempotencyOutcomeUnknown),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        io,
        sync::atomic::{AtomicUsize, Ordering},
    };

    use prost_reflect::Kind;
    use tonic::metadata::AsciiMetadataValue;

    use super::*;
    use crate::{
        errors::{UpstreamError, Violation},
        plan::RouteTable,
        proto::{
            self, ErrorReason, KeyValue, MiniGameUser, SetUserStorageRequest,
            SetUserStorageResponse,
        },
        state::MemoryStore,
        upstream,
    };

    const SET_USER_STORAGE: &str = "/gamegate.v1.StorageService/SetUserStorage";
    const REMOVE_USER_STORAGE: &str = "/gamegate.v1.StorageService/RemoveUserStorage";
    const GET_DAWANKA_INFO: &str = "/gamegate.v1.DawankaService/GetDawankaInfo";

    fn route(grpc_path: &str) -> Arc<Route> {
        let table = RouteTable::from_pool(&proto::DESCRIPTOR_POOL).expect("the routes compile");
        table.get(grpc_path).expect("a route").clone()
    }

    fn metadata(values: &[&[u8]]) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        for value in values {
            let value = AsciiMetadataValue::try_from(*value).expect("a header value");
            metadata.append(KEY_METADATA, value);
        }
        metadata
    }

    fn problem(values: &[&[u8]]) -> &'static str {
        match requested_key(&metadata(values)) {
            Err(GatewayError::IdempotencyKeyInvalid { problem }) => problem,
            other => panic!("{values:?} is refused, not {other:?}"),
        }
    }

    #[test]
    fn keys_are_1_to_64_visible_ascii_characters_sent_once() {
        assert_eq!(requested_key(&MetadataMap::new()).unwrap(), None);
        assert_eq!(
            requested_key(&metadata(&[b"order-42"])).unwrap(),
            Some("order-42")
        );
        let longest = "k".repeat(MAX_KEY_CHARS);
        assert_eq!(
            requested_key(&metadata(&[longest.as_bytes()])).unwrap(),
            Some(longest.as_str())
        );
        assert!(problem(&[b""]).contains("empty"));
        assert!(problem(&["k".repeat(65).as_bytes()]).contains("longer than 64"));
        for not_visible in [&b"a b"[..], b"a\tb", b"caf\xc3\xa9"] {
            assert!(
                problem(&[not_visible]).contains("not visible ASCII"),
                "{not_visible:?}"
            );
        }
        assert!(problem(&[b"a", b"b"]).contains("more than once"));
        // The reason and the detail the caller gets.
        let status = GatewayError::IdempotencyKeyInvalid {
            problem: problem(&[b""]),
        }
        .to_status();
        assert_eq!(status.code(), Code::InvalidArgument);
        let fields: Vec<String> = status
            .get_details_bad_request()
            .expect("BadRequest")
            .field_violations
            .into_iter()
            .map(|violation| violation.field)
            .collect();
        assert_eq!(fields, vec![KEY_METADATA]);
    }

    fn storage_request(value: &str) -> DynamicMessage {
        let request = SetUserStorageRequest {
            app_id: "1112345678".into(),
            user: Some(MiniGameUser {
                openid: "A0B1C2D3E4F5061728394A5B6C7D8E9F".into(),
                session_key: "HyVFkGl5F5OQWJZZaNzBBg==".into(),
            }),
            kv_list: vec![KeyValue {
                key: "score".into(),
                value: value.into(),
            }],
        };
        let descriptor = route(SET_USER_STORAGE).method_descriptor.input();
        DynamicMessage::decode(descriptor, request.encode_to_vec().as_slice()).unwrap()
    }

    #[test]
    fn stored_keys_are_the_callers_and_the_fingerprint_the_rpcs_and_requests() {
        let set = route(SET_USER_STORAGE);
        let request = storage_request("100");
        let key = |caller| store_key(caller, "order-42", &set, &request).key;
        assert_eq!(key(None), "-/order-42");
        assert_eq!(key(Some("lobby")), "lobby/order-42");
        // The first `/` always ends the caller.
        assert_eq!(key(Some("a/b")), "a%2Fb/order-42");
        assert_eq!(key(Some("a%2Fb")), "a%252Fb/order-42");
        assert_eq!(key(Some("-")), "%2D/order-42");

        let print = fingerprint(SET_USER_STORAGE, &request);
        assert_eq!(
            print,
            fingerprint(SET_USER_STORAGE, &storage_request("100"))
        );
        assert_ne!(
            print,
            fingerprint(SET_USER_STORAGE, &storage_request("101"))
        );
        assert_ne!(print, fingerprint(REMOVE_USER_STORAGE, &request));
    }

    /// `ReportWxBattle` carries a `google.protobuf.Struct`, a map whose
    /// encoding follows a `HashMap`'s order: the fingerprint must not.
    #[test]
    fn the_fingerprint_of_a_map_does_not_depend_on_its_order() {
        const REPORT_WX_BATTLE: &str = "/gamegate.v1.ProfileService/ReportWxBattle";
        let input = route(REPORT_WX_BATTLE).method_descriptor.input();
        let report = proto::DESCRIPTOR_POOL
            .get_message_by_name("gamegate.v1.WxBattleReport")
            .expect("WxBattleReport");
        let structure = proto::DESCRIPTOR_POOL
            .get_message_by_name("google.protobuf.Struct")
            .expect("Struct");
        let build = |keys: &mut dyn Iterator<Item = usize>| {
            let mut fields = std::collections::HashMap::new();
            let value_type = structure.get_field_by_name("fields").unwrap();
            let Kind::Message(entry) = value_type.kind() else {
                unreachable!()
            };
            let Kind::Message(value_message) = entry.map_entry_value_field().kind() else {
                unreachable!()
            };
            for key in keys {
                let mut value = DynamicMessage::new(value_message.clone());
                value.set_field_by_name("number_value", Value::F64(key as f64));
                fields.insert(
                    prost_reflect::MapKey::String(format!("k{key}")),
                    Value::Message(value),
                );
            }
            let mut inner = DynamicMessage::new(structure.clone());
            inner.set_field_by_name("fields", Value::Map(fields));
            let mut one = DynamicMessage::new(report.clone());
            one.set_field_by_name("user_defined", Value::Message(inner));
            let mut message = DynamicMessage::new(input.clone());
            message.set_field_by_name("reports", Value::List(vec![Value::Message(one)]));
            message
        };
        let first = build(&mut (0..12));
        let print = fingerprint(REPORT_WX_BATTLE, &first);
        let mut encodings = std::collections::HashSet::new();
        for round in 0..20 {
            let message = if round % 2 == 0 {
                build(&mut (0..12))
            } else {
                build(&mut (0..12).rev())
            };
            encodings.insert(message.encode_to_vec());
            assert_eq!(fingerprint(REPORT_WX_BATTLE, &message), print);
        }
        assert!(
            encodings.len() > 1,
            "the encoding follows the map's order (else this test shows nothing)"
        );
        assert_ne!(print, fingerprint(REPORT_WX_BATTLE, &build(&mut (0..11))));
    }

    #[test]
    fn outcomes_round_trip_through_their_encoding() {
        let response = SetUserStorageResponse::default();
        let descriptor = route(SET_USER_STORAGE).method_descriptor.output();
        let message =
            DynamicMessage::decode(descriptor, response.encode_to_vec().as_slice()).unwrap();
        // An empty message is an answer too: the code tells it from a failure.
        let answer = Recorded::answer(&message);
        assert_eq!(Recorded::decode(&answer.encode()), Some(answer.clone()));
        let some = Recorded::Answer(Bytes::from_static(b"\x0a\x02ok"));
        assert_eq!(Recorded::decode(&some.encode()), Some(some.clone()));
        let response = some.respond(true).expect("an answer");
        assert_eq!(response.metadata().get(REPLAYED_METADATA).unwrap(), "true");
        let Reply::Encoded(bytes) = response.into_inner() else {
            panic!("the recorded bytes are sent")
        };
        assert_eq!(&bytes[..], b"\x0a\x02ok");

        let status = GatewayError::Upstream(UpstreamError {
            platform: Platform::QqMinigame,
            endpoint: "/api/openDataContext/set_user_storage".into(),
            code: 87017,
            message: "storage full".into(),
            reason: ErrorReason::StorageFull,
            metadata: Vec::new(),
        })
        .to_status();
        let failure = Recorded::failure(&status);
        let decoded = Recorded::decode(&failure.encode()).unwrap();
        assert_eq!(decoded, failure);
        assert_eq!(
            decoded.access_failure(),
            Some(RecordedFailure {
                code: Code::ResourceExhausted,
                reason: "STORAGE_FULL".into(),
                upstream_code: Some(87017),
            })
        );
        let replayed = decoded.clone().respond(true).expect_err("a failure");
        assert_eq!(replayed.code(), status.code());
        assert_eq!(replayed.message(), status.message());
        assert_eq!(replayed.details(), status.details());
        assert_eq!(replayed.metadata().get(REPLAYED_METADATA).unwrap(), "true");
        let first = decoded.respond(false).expect_err("a failure");
        assert!(first.metadata().get(REPLAYED_METADATA).is_none());

        assert_eq!(Recorded::decode(b"\xff\xff"), None, "not an outcome");
    }

    fn unreachable(written: bool) -> GatewayError {
        GatewayError::Unreachable {
            platform: Platform::QqMinigame,
            endpoint: "/api/openDataContext/set_user_storage".into(),
            source: upstream::Error::new(
                upstream::ErrorKind::Connect(Arc::new(io::Error::from(
                    io::ErrorKind::ConnectionRefused,
                ))),
                upstream::Progress {
                    request_written: written,
                    answer_started: false,
                },
            ),
        }
    }

    #[test]
    fn only_failures_that_sent_nothing_release_their_key() {
        let set = route(SET_USER_STORAGE);
        let after = |error: GatewayError| after_call(&set, &Err(error));
        let write = "/api/openDataContext/set_user_storage";
        for released in [
            GatewayError::InvalidRequest {
                violations: vec![Violation {
                    field: "kv_list".into(),
                    description: "is required".into(),
                    reason: ErrorReason::FieldRequired,
                }],
            },
            GatewayError::AppUnknown {
                platform: "qq_minigame",
                app_id: "1".into(),
            },
            GatewayError::AppNotAllowed {
                caller: "lobby".into(),
                app_id: "1".into(),
            },
            GatewayError::PlatformNotConfigured("qq_minigame"),
            GatewayError::Overloaded { limit: 1 },
            GatewayError::RequestTooLarge { limit: Some(1) },
            GatewayError::FetchAborted {
                platform: "qq_minigame",
                cause: "shutting down",
            },
            // The token fetch failed: the write came after it.
            GatewayError::Upstream(UpstreamError {
                platform: Platform::QqMinigame,
                endpoint: TOKEN_PATH.into(),
                code: 40013,
                message: "invalid appid".into(),
                reason: ErrorReason::GatewayCredentialsRejected,
                metadata: Vec::new(),
            }),
            GatewayError::Timeout {
                platform: Platform::QqMinigame,
                endpoint: TOKEN_PATH.into(),
                budget: Duration::from_secs(5),
                transport: None,
            },
            // The connection was refused before a byte was written.
            unreachable(false),
        ] {
            assert_eq!(after(released.clone()), AfterCall::Release, "{released}");
        }
        for recorded in [
            GatewayError::Upstream(UpstreamError {
                platform: Platform::QqMinigame,
                endpoint: write.into(),
                code: -1,
                message: "system busy".into(),
                reason: ErrorReason::UpstreamBusy,
                metadata: Vec::new(),
            }),
            GatewayError::Timeout {
                platform: Platform::QqMinigame,
                endpoint: write.into(),
                budget: Duration::from_secs(5),
                transport: None,
            },
            GatewayError::HttpStatus {
                platform: Platform::QqMinigame,
                endpoint: write.into(),
                status: 502,
                retry_after: None,
            },
            GatewayError::Malformed {
                platform: Platform::QqMinigame,
                endpoint: write.into(),
                detail: "html".into(),
                transport: None,
            },
            // The request was written: the platform may have applied it.
            unreachable(true),
            // Another platform's path of the same name is not a token fetch.
            GatewayError::Timeout {
                platform: Platform::Msdk,
                endpoint: TOKEN_PATH.into(),
                budget: Duration::from_secs(5),
                transport: None,
            },
        ] {
            assert_eq!(after(recorded.clone()), AfterCall::Record, "{recorded}");
        }
        let answer = storage_request("1");
        assert_eq!(after_call(&set, &Ok(answer)), AfterCall::Record);
    }

    #[test]
    fn the_lease_outlasts_the_request_timeout_and_the_window_the_lease() {
        let policy = IdempotencyPolicy::default();
        assert_eq!(policy.window, DEFAULT_IDEMPOTENCY_WINDOW);
        assert_eq!(policy.lease, Duration::from_secs(70) + LEASE_MARGIN);
        let short = IdempotencyPolicy::new(Duration::from_secs(1), Duration::from_secs(70));
        assert_eq!(short.window, short.lease);
    }

    /// A stand-in for the core: counts its runs, answers `outcome`.
    fn counted(
        runs: &Arc<AtomicUsize>,
        outcome: Result<DynamicMessage, GatewayError>,
    ) -> impl Future<Output = Result<DynamicMessage, GatewayError>> + Send + 'static {
        let runs = runs.clone();
        async move {
            runs.fetch_add(1, Ordering::SeqCst);
            outcome
        }
    }

    fn idempotency() -> Idempotency {
        Idempotency {
            store: Arc::new(MemoryStore::default()),
            policy: IdempotencyPolicy::default(),
        }
    }

    #[tokio::test]
    async fn a_keyed_write_runs_once_and_is_replayed() {
        let idempotency = idempotency();
        let set = route(SET_USER_STORAGE);
        let keyed = metadata(&[b"order-42"]);
        let request = storage_request("100");
        let runs = Arc::new(AtomicUsize::new(0));
        let answer = storage_request("the answer");
        let serve = |request: DynamicMessage, outcome| {
            let (idempotency, set, keyed, runs) = (
                idempotency.clone(),
                set.clone(),
                keyed.clone(),
                runs.clone(),
            );
            async move {
                idempotency
                    .serve(
                        &set,
                        Some("lobby"),
                        &keyed,
                        &request,
                        None,
                        counted(&runs, outcome),
                    )
                    .await
            }
        };
        let first = serve(request.clone(), Ok(answer.clone())).await;
        let Served::Ran {
            outcome: Ok(_),
            recorded: Some(recorded),
        } = first
        else {
            panic!("the first call runs and is recorded: {first:?}")
        };
        assert_eq!(recorded, Recorded::answer(&answer));
        let again = serve(request.clone(), Ok(storage_request("another answer"))).await;
        let Served::Replayed(replayed) = again else {
            panic!("the repeat is replayed: {again:?}")
        };
        assert_eq!(replayed, recorded);
        assert_eq!(runs.load(Ordering::SeqCst), 1);

        let other = serve(storage_request("101"), Ok(answer.clone())).await;
        assert!(matches!(
            other,
            Served::Ran {
                outcome: Err(GatewayError::IdempotencyKeyReused { .. }),
                recorded: None
            }
        ));
        // Another caller's key of the same name is another key.
        let theirs = idempotency
            .serve(
                &set,
                Some("match"),
                &keyed,
                &request,
                None,
                counted(&runs, Ok(answer)),
            )
            .await;
        assert!(matches!(theirs, Served::Ran { outcome: Ok(_), .. }));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_released_key_runs_again_and_a_read_ignores_its_key() {
        let idempotency = idempotency();
        let set = route(SET_USER_STORAGE);
        let keyed = metadata(&[b"order-43"]);
        let request = storage_request("100");
        let runs = Arc::new(AtomicUsize::new(0));
        let refusal = GatewayError::AppNotAllowed {
            caller: "lobby".into(),
            app_id: "1112345678".into(),
        };
        for _ in 0..2 {
            let served = idempotency
                .serve(
                    &set,
                    None,
                    &keyed,
                    &request,
                    None,
                    counted(&runs, Err(refusal.clone())),
                )
                .await;
            assert!(
                matches!(
                    served,
                    Served::Ran {
                        outcome: Err(GatewayError::AppNotAllowed { .. }),
                        recorded: None
                    }
                ),
                "{served:?}"
            );
        }
        assert_eq!(runs.load(Ordering::SeqCst), 2, "released, so run again");

        let read = route(GET_DAWANKA_INFO);
        let bad_key = metadata(&[b""]);
        for _ in 0..2 {
            let served = idempotency
                .serve(
                    &read,
                    None,
                    &bad_key,
                    &request,
                    None,
                    counted(&runs, Ok(storage_request("1"))),
                )
                .await;
            assert!(matches!(
                served,
                Served::Ran {
                    outcome: Ok(_),
                    recorded: None
                }
            ));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 4, "a read is never replayed");
        let refused = idempotency
            .serve(
                &set,
                None,
                &bad_key,
                &request,
                None,
                counted(&runs, Ok(storage_request("1"))),
            )
            .await;
        assert!(matches!(
            refused,
            Served::Ran {
                outcome: Err(GatewayError::IdempotencyKeyInvalid { .. }),
                ..
            }
        ));
        assert_eq!(runs.load(Ordering::SeqCst), 4, "a bad key runs nothing");
    }

    #[tokio::test]
    async fn a_repeat_while_the_first_runs_is_aborted_and_the_first_still_records() {
        let idempotency = idempotency();
        let set = route(SET_USER_STORAGE);
        let keyed = metadata(&[b"order-44"]);
        let request = storage_request("100");
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let answer = storage_request("done");
        let slow = {
            let answer = answer.clone();
            async move {
                let _ = released.await;
                Ok(answer)
            }
        };
        let first = {
            let (idempotency, set, keyed, request) = (
                idempotency.clone(),
                set.clone(),
                keyed.clone(),
                request.clone(),
            );
            tokio::spawn(async move {
                idempotency
                    .serve(&set, None, &keyed, &request, None, slow)
                    .await
            })
        };
        tokio::task::yield_now().await;
        let runs = Arc::new(AtomicUsize::new(0));
        let second = idempotency
            .serve(
                &set,
                None,
                &keyed,
                &request,
                None,
                counted(&runs, Ok(answer.clone())),
            )
            .await;
        assert!(
            matches!(
                second,
                Served::Ran {
                    outcome: Err(GatewayError::IdempotencyKeyInUse),
                    ..
                }
            ),
            "{second:?}"
        );
        // The first caller stops waiting: its write goes on and is recorded.
        first.abort();
        release.send(()).unwrap();
        let mut replayed = None;
        for _ in 0..100 {
            match idempotency
                .serve(
                    &set,
                    None,
                    &keyed,
                    &request,
                    None,
                    counted(&runs, Ok(answer.clone())),
                )
                .await
            {
                Served::Replayed(recorded) => {
                    replayed = Some(recorded);
                    break;
                }
                _ => tokio::task::yield_now().await,
            }
        }
        assert_eq!(replayed, Some(Recorded::answer(&answer)));
        assert_eq!(runs.load(Ordering::SeqCst), 0);
    }
}
