//! The Connect protocol (unary only), on the gRPC port: `POST /<service>/<rpc>`
//! with an `application/json` (proto3 JSON mapping) or `application/proto`
//! body, and, for a read-only RPC (its route is idempotent), `GET` with the
//! message in the query. This adapter only translates the envelope: it reads
//! the request into the RPC's input message and hands it to the one path of
//! the gRPC adapter (`grpc::Shared::admit`, then `RouteHandler`: caller
//! authentication, calls in flight, idempotency keys, core, access line),
//! then writes the answer or the status that path returns as Connect does.
//! `Connect-Timeout-Ms` enters as the `grpc-timeout` the path reads.
//!
//! Every error is a Connect error (`error::error_body`) carrying the same
//! details the gRPC status does, ErrorInfo always, with the call's trace id.

mod error;

use std::{sync::Arc, time::Duration};

use base64::{
    Engine,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
};
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use prost::Message;
use prost_reflect::{DeserializeOptions, DynamicMessage, MessageDescriptor, SerializeOptions};
use thiserror::Error;
use tokio::time::Instant;
use tonic::{Code, Status, metadata::MetadataMap, server::UnaryService};
use tracing::Instrument;

pub use self::error::{code_name, error_body, http_status};
use super::{
    codec::Reply,
    grpc::{Response, Shared},
    idempotency, status,
};
use crate::{errors::GatewayError, metrics, plan::Route, telemetry::trace};

/// How much larger than the route's limit a JSON body may be before it is
/// read: field names, quotes and base64 make a message's JSON larger than its
/// binary encoding. The decoded message is held to the limit itself.
const JSON_EXPANSION: usize = 4;

const CONNECT_PROTOCOL_VERSION: &str = "connect-protocol-version";
const CONNECT_TIMEOUT_MS: &str = "connect-timeout-ms";
const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// How the request's message is encoded, and so the answer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Json,
    Proto,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Json => "application/json",
            Encoding::Proto => "application/proto",
        }
    }

    /// The encoding a Connect unary content type names; `None` for any
    /// other (`charset` parameters allowed on JSON: UTF-8 is JSON's own).
    fn of_content_type(value: &str) -> Option<Encoding> {
        let (media, _parameters) = value.split_once(';').unwrap_or((value, ""));
        match media.trim().to_ascii_lowercase().as_str() {
            "application/json" => Some(Encoding::Json),
            "application/proto" => Some(Encoding::Proto),
            _ => None,
        }
    }
}

/// Why a request is refused before it reaches the shared path's core, over
/// what [`GatewayError`] says of the call: the HTTP status some envelope
/// errors take instead of their code's.
#[derive(Debug, Error)]
enum Refusal {
    /// Neither Connect's nor gRPC's content type.
    #[error(
        "the content type {0} is not served: gamegate speaks gRPC (application/grpc), gRPC-Web \
         (application/grpc-web) and Connect (application/json, application/proto)"
    )]
    MediaType(String),
    /// A write by GET: Connect allows GET only for RPCs without side effects.
    #[error("{0} has side effects: call it by POST (GET serves read-only rpcs only)")]
    NotReadOnly(String),
    /// Neither GET nor POST.
    #[error("the method {0} is not Connect's: send POST (or GET for a read-only rpc)")]
    Method(String),
    #[error(transparent)]
    Gateway(#[from] GatewayError),
}

impl Refusal {
    fn status(&self) -> Status {
        match self {
            Refusal::Gateway(error) => error.to_status(),
            other => GatewayError::RequestUnreadable {
                detail: other.to_string(),
            }
            .to_status(),
        }
    }

    fn http_status(&self, code: Code) -> StatusCode {
        match self {
            Refusal::MediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Refusal::NotReadOnly(_) | Refusal::Method(_) => StatusCode::METHOD_NOT_ALLOWED,
            // No route: the path names nothing here, as HTTP says it (and
            // Connect clients read 404 as unimplemented).
            Refusal::Gateway(GatewayError::MethodUnknown { .. }) => StatusCode::NOT_FOUND,
            Refusal::Gateway(_) => http_status(code),
        }
    }
}

/// Serves one request that is not gRPC: a Connect call, or a refusal.
/// Returns how the call ended, for the metrics.
pub(super) async fn serve<B>(
    shared: Arc<Shared>,
    request: http::Request<B>,
) -> (Response, metrics::RpcOutcome)
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    let received_at = Instant::now();
    let route = shared.routes.get(request.uri().path()).cloned();
    let call = trace::CallTrace::start(
        route.as_ref().map(|route| route.grpc_path.as_str()),
        request.headers(),
    );
    let keyed = request.headers().contains_key(idempotency::KEY_METADATA);
    let trace_id = call.trace_id_text();
    let outcome = serve_call(
        shared,
        request,
        route,
        received_at,
        keyed.then_some(trace_id),
    )
    .instrument(call.span().clone())
    .await;
    let (response, status) = match outcome {
        Ok(answer) => (answer, None),
        Err((status, http)) => {
            let status = status::for_caller(status, call.trace_id());
            (error_response(&status, http), Some(status))
        }
    };
    let replayed = response
        .headers()
        .contains_key(idempotency::REPLAYED_METADATA);
    let outcome = status::outcome_of_status(status.as_ref(), replayed);
    call.end(status.as_ref().map_or(0, |status| status.code() as i32));
    (response, outcome)
}

/// An error: its status and the HTTP status it is sent with.
type Failed = (Status, StatusCode);

/// The call, within its span: the answer, or the status of its failure.
async fn serve_call<B>(
    shared: Arc<Shared>,
    request: http::Request<B>,
    route: Option<Arc<Route>>,
    received_at: Instant,
    keyed_trace_id: Option<trace::TraceIdText>,
) -> Result<Response, Failed>
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    let refused = |refusal: Refusal| {
        let status = refusal.status();
        let http = refusal.http_status(status.code());
        Err((status, http))
    };
    let (parts, body) = request.into_parts();
    // The protocol first: what is neither Connect nor gRPC gets 415 whatever
    // its path.
    let encoding = match &parts.method {
        &Method::POST => {
            let content_type = parts
                .headers
                .get(header::CONTENT_TYPE)
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
                .unwrap_or_default();
            match Encoding::of_content_type(&content_type) {
                Some(encoding) => Some(encoding),
                None => {
                    let shown = content_type.chars().take(64).collect::<String>();
                    return refused(Refusal::MediaType(shown.escape_debug().to_string()));
                }
            }
        }
        &Method::GET => None,
        other => return refused(Refusal::Method(other.as_str().escape_debug().to_string())),
    };
    let Some(route) = route else {
        let path = parts.uri.path();
        tracing::debug!(path = %path.escape_debug(), "no such rpc");
        return refused(Refusal::Gateway(GatewayError::MethodUnknown {
            path: path.to_string(),
        }));
    };
    let record = |refusal: Refusal| {
        if let Refusal::Gateway(error) = &refusal {
            crate::core::record(&route, &Err(error.clone()));
        }
        refused(refusal)
    };
    if parts.method == Method::GET && !route.idempotent {
        return record(Refusal::NotReadOnly(route.grpc_path.clone()));
    }
    // Everything the headers (or the query) say, before the caller is
    // authenticated: a broken envelope costs nothing more.
    let envelope = match &encoding {
        Some(encoding) => post_envelope(&parts.headers, *encoding),
        None => get_envelope(&parts.headers, parts.uri.query().unwrap_or("")),
    };
    let (encoding, query_message, caller_timeout) = match envelope {
        Ok(envelope) => envelope,
        Err(refusal) => return record(refusal),
    };
    let admitted = match shared.admit(&route, &parts.headers, &parts.extensions) {
        Ok(admitted) => admitted,
        Err(error) => return refused(Refusal::Gateway(error)),
    };
    let limit = admitted.limit;
    let too_large = || {
        let error = GatewayError::RequestTooLarge { limit: Some(limit) };
        let status = error.to_status();
        (status, http_status(Code::ResourceExhausted))
    };
    let bytes = match query_message {
        Some(bytes) => bytes,
        None => {
            let body_limit = match encoding {
                Encoding::Proto => limit,
                Encoding::Json => limit.saturating_mul(JSON_EXPANSION),
            };
            match read_body(body, body_limit).await {
                Ok(bytes) => bytes,
                Err(BodyError::TooLarge) => return Err(too_large()),
                Err(BodyError::Unreadable(detail)) => {
                    return refused(Refusal::Gateway(GatewayError::RequestUnreadable { detail }));
                }
            }
        }
    };
    let input = route.method_descriptor.input();
    let message = match decode(&input, encoding, &bytes) {
        Ok(message) => message,
        Err(error) => return refused(Refusal::Gateway(error)),
    };
    if encoding == Encoding::Json && message.encoded_len() > limit {
        return Err(too_large());
    }
    let mut headers = parts.headers;
    // The caller's deadline as the shared path reads it; a `grpc-timeout`
    // sent by a Connect caller is not its deadline.
    headers.remove(GRPC_TIMEOUT);
    if let Some(timeout) = caller_timeout {
        headers.insert(GRPC_TIMEOUT, grpc_timeout_value(timeout));
    }
    let mut extensions = parts.extensions;
    if let Some(trace_id) = keyed_trace_id {
        extensions.insert(trace_id);
    }
    let output = route.method_descriptor.output();
    let (mut handler, _in_flight) = admitted.handler(route, received_at);
    let answer = handler
        .call(tonic::Request::from_parts(
            MetadataMap::from_headers(headers),
            extensions,
            message,
        ))
        .await;
    match answer {
        Ok(answer) => success_response(answer, &output, encoding)
            .map_err(|status| (status, http_status(Code::Internal))),
        Err(status) => {
            let http = http_status(status.code());
            Err((status, http))
        }
    }
}

/// A POST's envelope: its protocol version and deadline headers, its
/// encoding (`Content-Encoding`: identity only).
fn post_envelope(
    headers: &HeaderMap,
    encoding: Encoding,
) -> Result<(Encoding, Option<Bytes>, Option<Duration>), Refusal> {
    check_version(
        headers
            .get(CONNECT_PROTOCOL_VERSION)
            .map(HeaderValue::as_bytes),
    )?;
    if let Some(value) = headers.get(header::CONTENT_ENCODING) {
        check_compression(value.as_bytes())?;
    }
    Ok((encoding, None, caller_timeout(headers)?))
}

/// A GET's envelope: `connect=v1`, `encoding=json|proto`, `message` (with
/// `base64=1`, URL-safe base64), `compression` (identity only).
fn get_envelope(
    headers: &HeaderMap,
    query: &str,
) -> Result<(Encoding, Option<Bytes>, Option<Duration>), Refusal> {
    let mut connect = None;
    let mut encoding = None;
    let mut message = None;
    let mut base64 = false;
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = query_decode(value);
        match name {
            "connect" => connect = Some(value),
            "encoding" => encoding = Some(value),
            "message" => message = Some(value),
            "base64" => base64 = value.as_slice() == b"1",
            "compression" => check_compression(&value)?,
            _ => {}
        }
    }
    let unreadable = |detail: &str| {
        Refusal::Gateway(GatewayError::RequestUnreadable {
            detail: detail.to_string(),
        })
    };
    match connect.as_deref() {
        None | Some(b"v1") => {}
        Some(_) => return Err(unreadable("the query's connect is not v1")),
    }
    let encoding = match encoding.as_deref() {
        Some(b"json") => Encoding::Json,
        Some(b"proto") => Encoding::Proto,
        _ => {
            return Err(unreadable(
                "a GET names its message's encoding in the query: encoding=json or encoding=proto",
            ));
        }
    };
    let message = message.unwrap_or_default();
    let message = if base64 {
        URL_SAFE_ANY_PADDING
            .decode(&message)
            .map_err(|_| unreadable("the query's message is not URL-safe base64"))?
    } else {
        message
    };
    Ok((
        encoding,
        Some(Bytes::from(message)),
        caller_timeout(headers)?,
    ))
}

/// URL-safe base64, padded or not (the spec allows both).
const URL_SAFE_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A query value, percent-decoded (`+` is a space, as forms write it).
fn query_decode(value: &str) -> Vec<u8> {
    let spaced = value.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).collect()
}

/// `Connect-Protocol-Version` (or the query's `connect`): absent, or `1`.
fn check_version(value: Option<&[u8]>) -> Result<(), Refusal> {
    match value {
        None | Some(b"1") => Ok(()),
        Some(_) => Err(Refusal::Gateway(GatewayError::RequestUnreadable {
            detail: "connect-protocol-version is not 1".into(),
        })),
    }
}

/// Uncompressed messages only, as on gRPC (a compressed message hides its
/// size until it is inflated).
fn check_compression(value: &[u8]) -> Result<(), Refusal> {
    if value.is_empty() || value == b"identity" {
        return Ok(());
    }
    let encoding = String::from_utf8_lossy(value)
        .chars()
        .take(32)
        .collect::<String>()
        .escape_debug()
        .to_string();
    Err(Refusal::Gateway(GatewayError::CompressionUnsupported {
        encoding,
    }))
}

/// `Connect-Timeout-Ms`: at most 10 digits of milliseconds; a malformed one is
/// refused (a caller that means a deadline must not run without one).
fn caller_timeout(headers: &HeaderMap) -> Result<Option<Duration>, Refusal> {
    let Some(value) = headers.get(CONNECT_TIMEOUT_MS) else {
        return Ok(None);
    };
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > 10 || !bytes.iter().all(u8::is_ascii_digit) {
        return Err(Refusal::Gateway(GatewayError::RequestUnreadable {
            detail: "connect-timeout-ms is not 1 to 10 digits".into(),
        }));
    }
    let millis: u64 = std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(u64::MAX);
    Ok(Some(Duration::from_millis(millis)))
}

/// `timeout` as `grpc-timeout` writes it (8 digits at most): milliseconds,
/// or seconds past 8 digits of them.
fn grpc_timeout_value(timeout: Duration) -> HeaderValue {
    let millis = timeout.as_millis();
    let text = if millis < 100_000_000 {
        format!("{millis}m")
    } else {
        format!("{}S", (timeout.as_secs()).min(99_999_999))
    };
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("99999999S"))
}

enum BodyError {
    TooLarge,
    Unreadable(String),
}

/// The body, refused as soon as it is known to pass `limit` (from its
/// `Content-Length`, or while it arrives): never buffered past it.
async fn read_body<B>(body: B, limit: usize) -> Result<Bytes, BodyError>
where
    B: http_body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if body.size_hint().lower() > limit as u64 {
        return Err(BodyError::TooLarge);
    }
    let mut body = std::pin::pin!(body);
    let mut bytes = BytesMut::new();
    while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        let frame = frame.map_err(|error| {
            BodyError::Unreadable(format!("the body could not be read: {}", error.into()))
        })?;
        if let Ok(mut data) = frame.into_data() {
            use bytes::Buf;
            if bytes.len().saturating_add(data.remaining()) > limit {
                return Err(BodyError::TooLarge);
            }
            while data.has_remaining() {
                let chunk = data.chunk();
                let len = chunk.len();
                bytes.put_slice(chunk);
                data.advance(len);
            }
        }
    }
    Ok(bytes.freeze())
}

/// The message, as `encoding` reads it: proto3's JSON mapping (both field
/// names accepted, unknown fields refused), or protobuf.
fn decode(
    descriptor: &MessageDescriptor,
    encoding: Encoding,
    bytes: &[u8],
) -> Result<DynamicMessage, GatewayError> {
    let unreadable = |kind: &str, error: &dyn std::fmt::Display| GatewayError::RequestUnreadable {
        detail: format!("not valid {kind} of {}: {error}", descriptor.full_name()),
    };
    match encoding {
        Encoding::Proto => DynamicMessage::decode(descriptor.clone(), bytes)
            .map_err(|error| unreadable("protobuf", &error)),
        Encoding::Json => {
            let mut deserializer = serde_json::Deserializer::from_slice(bytes);
            let message = DynamicMessage::deserialize_with_options(
                descriptor.clone(),
                &mut deserializer,
                &DeserializeOptions::new(),
            )
            .map_err(|error| unreadable("JSON", &without_values(&error)))?;
            deserializer
                .end()
                .map_err(|error| unreadable("JSON", &without_values(&error)))?;
            Ok(message)
        }
    }
}

/// A JSON error as the caller reads it: its kind and position, without the
/// value serde quotes (`invalid type: string "…"`), which may be an openkey
/// or a session key put in the wrong field: no secret is ever in an error.
fn without_values(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let kind = text
        .split(['"', '`', '\''])
        .next()
        .unwrap_or("")
        .trim_end_matches([' ', ':', ','])
        .trim_end_matches(" at line");
    let kind = kind.split(" at line ").next().unwrap_or(kind);
    format!("{kind} at line {} column {}", error.line(), error.column())
}

/// A success: the answer in the request's encoding, with the path's
/// response metadata (`idempotency-replayed`) as headers.
fn success_response(
    answer: tonic::Response<Reply>,
    output: &MessageDescriptor,
    encoding: Encoding,
) -> Result<Response, Status> {
    let (metadata, reply, _) = answer.into_parts();
    let body = match (reply, encoding) {
        (Reply::Encoded(bytes), Encoding::Proto) => bytes,
        (Reply::Message(message), Encoding::Proto) => {
            Bytes::from(super::wire::encode_to_vec(&message))
        }
        (reply, Encoding::Json) => {
            // A recorded answer is kept as protobuf: the same message, in
            // the caller's encoding.
            let message = match reply {
                Reply::Message(message) => message,
                Reply::Encoded(bytes) => DynamicMessage::decode(output.clone(), bytes)
                    .map_err(|error| Status::internal(format!("a recorded answer: {error}")))?,
            };
            let json = message
                .serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new())
                .map_err(|error| Status::internal(format!("response encoding failed: {error}")))?;
            Bytes::from(json.to_string())
        }
    };
    let mut response = http::Response::new(tonic::body::Body::new(http_body_full(body)));
    let headers = response.headers_mut();
    copy_metadata(metadata.into_headers(), headers);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(encoding.content_type()),
    );
    Ok(response)
}

/// A Connect error: its JSON body, with the status's metadata as headers.
fn error_response(status: &Status, http: StatusCode) -> Response {
    let body = error_body(status).to_string();
    let mut response =
        http::Response::new(tonic::body::Body::new(http_body_full(Bytes::from(body))));
    *response.status_mut() = http;
    let headers = response.headers_mut();
    copy_metadata(status.metadata().clone().into_headers(), headers);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if http == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        headers.insert(
            HeaderName::from_static("accept-post"),
            HeaderValue::from_static(
                "application/grpc, application/grpc-web, application/json, application/proto",
            ),
        );
    } else if http == StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
    }
    response
}

/// The path's metadata as Connect headers: gRPC's own fields are not
/// Connect's.
fn copy_metadata(from: HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from.iter() {
        if name.as_str().starts_with("grpc-") || name == header::CONTENT_TYPE {
            continue;
        }
        to.append(name.clone(), value.clone());
    }
}

/// A body of one chunk.
fn http_body_full(bytes: Bytes) -> Full {
    Full(Some(bytes))
}

/// A body of one chunk, sent at once.
struct Full(Option<Bytes>);

impl http_body::Body for Full {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(
            self.get_mut()
                .0
                .take()
                .map(|bytes| Ok(http_body::Frame::data(bytes))),
        )
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.0.as_ref().map_or(0, |bytes| bytes.len() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GET is allowed by the route's `idempotent` flag; the proto says the
    /// same to Connect's generated clients (which then use GET) with
    /// `idempotency_level = NO_SIDE_EFFECTS`: the two never disagree.
    #[test]
    fn read_only_routes_are_marked_no_side_effects_in_the_proto() {
        let table = crate::plan::RouteTable::from_pool(&crate::proto::DESCRIPTOR_POOL).unwrap();
        const NO_SIDE_EFFECTS: i32 = 1;
        let mut reads = 0;
        for route in table.routes() {
            let options = route.method_descriptor.options();
            let level = options
                .get_field_by_name("idempotency_level")
                .and_then(|value| value.as_enum_number())
                .unwrap_or(0);
            assert_eq!(
                level == NO_SIDE_EFFECTS,
                route.idempotent,
                "{}: idempotent and idempotency_level disagree",
                route.grpc_path
            );
            reads += usize::from(route.idempotent);
        }
        assert!(reads > 0);
    }

    #[test]
    fn json_errors_keep_their_kind_and_place_but_not_the_values() {
        let descriptor = crate::proto::DESCRIPTOR_POOL
            .get_message_by_name("gamegate.v1.GetDawankaInfoRequest")
            .unwrap();
        let secret = "CC11B9096D458AEFDEF72981AE5A136D";
        for body in [
            format!(r#"{{"appId": 1, "user": {{"openkey": ["{secret}"]}}}}"#),
            format!(r#"{{"user": {{"openkey": {{"{secret}": 1}}}}}}"#),
            format!(r#"{{"{secret}": 1}}"#),
            format!(r#"{{"version": "{secret}"}}"#),
            format!(r#"{{"appId": "{secret}""#),
        ] {
            let error = decode(&descriptor, Encoding::Json, body.as_bytes()).unwrap_err();
            let text = error.to_string();
            assert!(!text.contains(secret), "{text}");
            assert!(text.contains("at line 1 column"), "{text}");
        }
    }

    #[test]
    fn content_types() {
        assert_eq!(
            Encoding::of_content_type("application/json; charset=utf-8"),
            Some(Encoding::Json)
        );
        assert_eq!(
            Encoding::of_content_type("application/proto"),
            Some(Encoding::Proto)
        );
        assert_eq!(Encoding::of_content_type("application/grpc"), None);
        assert_eq!(Encoding::of_content_type("text/plain"), None);
    }

    #[test]
    fn the_connect_timeout_becomes_a_grpc_timeout() {
        let mut headers = HeaderMap::new();
        headers.insert(CONNECT_TIMEOUT_MS, HeaderValue::from_static("250"));
        let timeout = caller_timeout(&headers).ok().flatten().unwrap();
        assert_eq!(timeout, Duration::from_millis(250));
        assert_eq!(grpc_timeout_value(timeout), "250m");
        assert_eq!(
            grpc_timeout_value(Duration::from_millis(9_999_999_999)),
            "9999999S"
        );
        headers.insert(CONNECT_TIMEOUT_MS, HeaderValue::from_static("12345678901"));
        assert!(caller_timeout(&headers).is_err());
        headers.insert(CONNECT_TIMEOUT_MS, HeaderValue::from_static("-1"));
        assert!(caller_timeout(&headers).is_err());
    }

    #[test]
    fn a_get_reads_its_message_from_the_query() {
        let headers = HeaderMap::new();
        let (encoding, message, _) = get_envelope(
            &headers,
            "connect=v1&encoding=json&message=%7B%22a%22%3A1%7D",
        )
        .ok()
        .unwrap();
        assert_eq!(encoding, Encoding::Json);
        assert_eq!(message.unwrap(), Bytes::from_static(b"{\"a\":1}"));
        let (encoding, message, _) =
            get_envelope(&headers, "encoding=proto&base64=1&message=CgNhYmM")
                .ok()
                .unwrap();
        assert_eq!(encoding, Encoding::Proto);
        assert_eq!(message.unwrap(), Bytes::from_static(b"\n\x03abc"));
        assert!(get_envelope(&headers, "connect=v2&encoding=json").is_err());
        assert!(get_envelope(&headers, "message=x").is_err(), "no encoding");
        assert!(get_envelope(&headers, "encoding=json&compression=gzip").is_err());
    }
}
