//! Traces across the hop: a server span per gRPC call, a client span per
//! upstream attempt, both `tracing` spans of target [`TARGET`].
//!
//! The caller's span comes from its metadata: W3C `traceparent` (and
//! `tracestate`), else `grpc-trace-bin` (OpenCensus' binary format, which
//! older gRPC clients send), decoded by the OpenTelemetry projects' own
//! propagators. A call without either gets a fresh trace id, so that a caller
//! can always quote one: every log line written while serving the call
//! carries it (`trace_id`, see [`CallTraceLayer`] and [`super::json::JsonLines`]),
//! and so does the ErrorInfo of every error the call returns.
//!
//! With `[telemetry] otlp_endpoint` set, [`Exporter::start`] builds an
//! OpenTelemetry tracer provider (parent-based always-on sampler: a caller's
//! unsampled span is not recorded; batch span processor; OTLP over gRPC) and
//! [`Exporter::layer`] turns the spans of [`TARGET`] (and nothing else: no
//! log event, no span of a library) into OpenTelemetry spans with the
//! attributes a trace viewer expects. Without it no OpenTelemetry span is
//! built: the call's span holds its trace id only, and upstream attempts have
//! no span at all.

use std::{
    cell::RefCell,
    fmt,
    future::Future,
    sync::{Arc, RwLock},
};

use base64::{
    Engine as _, alphabet,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
};
use opentelemetry::{
    Context, KeyValue,
    propagation::{Extractor, TextMapPropagator},
    trace::{SpanContext, TraceContextExt, TraceId, TracerProvider as _},
};
use opentelemetry_contrib::trace::propagator::binary::{BinaryFormat, BinaryPropagator};
use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::{
    Resource,
    propagation::TraceContextPropagator,
    trace::{Sampler, SdkTracer, SdkTracerProvider},
};
use thiserror::Error;
use tracing::{
    Metadata, Span, Subscriber,
    field::Empty,
    instrument::{Instrument, Instrumented},
};
use tracing_opentelemetry::{OpenTelemetryLayer, OpenTelemetrySpanExt};
use tracing_subscriber::{
    Layer,
    filter::{FilterFn, Filtered},
    registry::LookupSpan,
};

use crate::proto::Platform;

/// The target of the call and upstream spans (the log filter always enables
/// it: tracing does not depend on the log level).
pub const TARGET: &str = "gamegate::trace";

/// The span field holding the call's trace id (32 lowercase hex digits).
const TRACE_ID_FIELD: &str = "trace_id";

/// The OTLP exporter and the tracer provider behind it.
pub struct Exporter {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

#[derive(Debug, Error)]
#[error("traces cannot be exported to {endpoint}: {source}")]
pub struct ExporterError {
    endpoint: String,
    source: opentelemetry_otlp::ExporterBuildError,
}

/// The OpenTelemetry layer: the spans of [`TARGET`] only.
pub type OtelLayer<S> =
    Filtered<OpenTelemetryLayer<S, SdkTracer>, FilterFn<fn(&Metadata<'_>) -> bool>, S>;

impl Exporter {
    /// Spans exported to `endpoint` (`http(s)://host:port`, OTLP over gRPC)
    /// in batches, as `service_name`. Call within the Tokio runtime (the gRPC
    /// channel's worker runs there); nothing is sent until a span ends.
    pub fn start(endpoint: &str, service_name: &str) -> Result<Exporter, ExporterError> {
        let mut builder = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint);
        if endpoint.starts_with("https://") {
            builder = builder
                .with_tls_config(tonic::transport::ClientTlsConfig::new().with_webpki_roots());
        }
        let exporter = builder.build().map_err(|source| ExporterError {
            endpoint: endpoint.to_string(),
            source,
        })?;
        let resource = Resource::builder()
            .with_service_name(service_name.to_string())
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        let provider = SdkTracerProvider::builder()
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
            .with_resource(resource)
            .with_batch_exporter(exporter)
            .build();
        let tracer = provider.tracer("gamegate");
        Ok(Exporter { provider, tracer })
    }

    /// The layer that makes OpenTelemetry spans of the call and upstream
    /// spans, for a subscriber `S`.
    pub fn layer<S>(&self) -> OtelLayer<S>
    where
        S: Subscriber + for<'span> LookupSpan<'span>,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.tracer.clone())
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_filter(FilterFn::new(is_trace_span as fn(&Metadata<'_>) -> bool))
    }

    /// Exports what is left and stops, waiting at most 5 s (the SDK's
    /// shutdown timeout) for the collector.
    pub async fn shutdown(self) {
        let provider = self.provider;
        // Blocking: it waits for the batch thread, whose export runs on the
        // runtime's gRPC channel.
        match tokio::task::spawn_blocking(move || provider.shutdown()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "spans left unexported at shutdown"),
            Err(error) => tracing::warn!(%error, "spans left unexported at shutdown"),
        }
    }
}

fn is_trace_span(metadata: &Metadata<'_>) -> bool {
    metadata.is_span() && metadata.target() == TARGET
}

/// What the current subscriber's [`CallTraceLayer`] says (nothing without
/// one: no exporter, no trace id field).
fn settings() -> CallTraceLayer {
    tracing::dispatcher::get_default(|dispatch| {
        dispatch
            .downcast_ref::<CallTraceLayer>()
            .copied()
            .unwrap_or_default()
    })
}

/// Whether the current subscriber exports spans: without an exporter no
/// OpenTelemetry span is built.
fn exporting() -> bool {
    settings().exporting
}

/// Keeps `trace_id` with the call's `span`, where [`super::json::JsonLines`] finds
/// it (no span field: a field would be formatted into every JSON line again).
fn attach(span: &Span, trace_id: TraceIdText) {
    span.with_subscriber(|(id, dispatch)| {
        if let Some(span) = dispatch
            .downcast_ref::<tracing_subscriber::Registry>()
            .and_then(|registry| registry.span(id))
        {
            span.extensions_mut().replace(CallTraceId(trace_id));
        }
    });
}

/// A trace id as the logs and errors write it: 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TraceIdText([u8; 32]);

impl TraceIdText {
    pub fn of(trace_id: TraceId) -> TraceIdText {
        let mut text = [0; 32];
        hex::encode_to_slice(trace_id.to_bytes(), &mut text).expect("16 bytes are 32 digits");
        TraceIdText(text)
    }

    #[cfg(test)]
    fn parse(text: &str) -> Option<TraceIdText> {
        let bytes: [u8; 32] = text.as_bytes().try_into().ok()?;
        bytes
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
            .then_some(TraceIdText(bytes))
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("hex digits are ascii")
    }
}

impl fmt::Display for TraceIdText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for TraceIdText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A random, valid trace id (W3C: 16 random bytes, not all zero).
fn fresh_trace_id() -> TraceId {
    loop {
        let id = rand::random::<u128>();
        if id != 0 {
            return TraceId::from(id);
        }
    }
}

/// gRPC's binary metadata: standard base64, padded or not.
const GRPC_BINARY: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

const TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");
const TRACESTATE: http::HeaderName = http::HeaderName::from_static("tracestate");
const GRPC_TRACE_BIN: http::HeaderName = http::HeaderName::from_static("grpc-trace-bin");

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        // The propagator's two names, without parsing them on every call.
        let value = match key {
            "traceparent" => self.0.get(TRACEPARENT),
            "tracestate" => self.0.get(TRACESTATE),
            other => self.0.get(other),
        };
        value?.to_str().ok()
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// The caller's span, from its metadata: W3C `traceparent` (with its
/// `tracestate`), else `grpc-trace-bin`; `None` when neither holds a valid one.
pub fn caller_span_context(headers: &http::HeaderMap) -> Option<SpanContext> {
    if headers.contains_key(TRACEPARENT) {
        let extracted = TraceContextPropagator::new()
            .extract_with_context(&Context::new(), &HeaderExtractor(headers));
        let span_context = extracted.span().span_context().clone();
        if span_context.is_valid() {
            return Some(span_context);
        }
    }
    let binary = headers.get(GRPC_TRACE_BIN)?;
    let bytes = GRPC_BINARY.decode(binary.as_bytes()).ok()?;
    let span_context = BinaryPropagator::new().deserialize_from_bytes(&bytes);
    span_context.is_valid().then_some(span_context)
}

/// The server span of one gRPC call, and its trace id.
pub struct CallTrace {
    span: Span,
    trace_id: TraceIdText,
    exporting: bool,
}

impl CallTrace {
    /// The span of a call to `rpc` (its path, `/package.Service/Method`;
    /// `None` for a path that names no RPC), a child of the caller's span when
    /// `headers` carry one.
    pub fn start(rpc: Option<&str>, headers: &http::HeaderMap) -> CallTrace {
        let parent = caller_span_context(headers);
        let settings = settings();
        let exporting = settings.exporting;
        if !exporting {
            let trace_id = TraceIdText::of(
                parent
                    .as_ref()
                    .map_or_else(fresh_trace_id, SpanContext::trace_id),
            );
            let span = tracing::info_span!(target: TARGET, "rpc", trace_id = Empty);
            attach(&span, trace_id);
            if settings.trace_id_field {
                span.record(TRACE_ID_FIELD, tracing::field::display(trace_id));
            }
            return CallTrace {
                span,
                trace_id,
                exporting,
            };
        }
        // The name of an unknown method is the caller's text: not a span name.
        let name = rpc.map_or("grpc", |rpc| rpc.trim_start_matches('/'));
        let span = tracing::info_span!(
            target: TARGET,
            "rpc",
            trace_id = Empty,
            otel.name = name,
            otel.kind = "server",
            otel.status_code = Empty,
        );
        if let Some(parent) = &parent {
            // Fails only when the span is disabled (`gamegate::trace=off`).
            let _ = span.set_parent(Context::new().with_remote_span_context(parent.clone()));
        }
        // Attributes, not fields: the log lines of the call need not repeat them.
        span.set_attribute("rpc.system", "grpc");
        if let Some((service, method)) =
            rpc.and_then(|rpc| rpc.trim_start_matches('/').split_once('/'))
        {
            span.set_attribute("rpc.service", service.to_string());
            span.set_attribute("rpc.method", method.to_string());
        }
        // The span starts here: its trace id is the caller's or a new one.
        let started = span.context().span().span_context().trace_id();
        let trace_id = TraceIdText::of(if started != TraceId::INVALID {
            started
        } else {
            parent
                .as_ref()
                .map_or_else(fresh_trace_id, SpanContext::trace_id)
        });
        attach(&span, trace_id);
        if settings.trace_id_field {
            span.record(TRACE_ID_FIELD, tracing::field::display(trace_id));
        }
        CallTrace {
            span,
            trace_id,
            exporting,
        }
    }

    pub fn span(&self) -> &Span {
        &self.span
    }

    /// The call's trace id, as its log lines and errors carry it.
    pub fn trace_id(&self) -> &str {
        self.trace_id.as_str()
    }

    pub fn trace_id_text(&self) -> TraceIdText {
        self.trace_id
    }

    /// Ends the span of a call answered with gRPC status `code`.
    pub fn end(self, code: i32) {
        if self.exporting {
            self.span
                .set_attribute("rpc.grpc.status_code", i64::from(code));
            // The codes OpenTelemetry's conventions count as a server's errors
            // (UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL,
            // UNAVAILABLE, DATA_LOSS); the others are the caller's.
            if matches!(code, 2 | 4 | 12 | 13 | 14 | 15) {
                self.span.record("otel.status_code", "error");
            }
        }
    }
}

/// `future`, the work of the current call, holding its upstream attempts
/// until their platform's code is read ([`platform_code`]); `elsewhere`: it
/// may run in a task of its own, and then carries the call's span itself (its
/// log lines carry the call's trace id wherever it runs).
pub fn in_call<F: Future>(future: F, elsewhere: bool) -> CallScope<F> {
    use futures::future::Either;
    let scoped = if exporting() {
        Either::Left(HELD_ATTEMPT.scope(RefCell::new(None), future))
    } else {
        Either::Right(future)
    };
    if elsewhere {
        Either::Left(scoped.in_current_span())
    } else {
        Either::Right(scoped)
    }
}

type Scoped<F> =
    futures::future::Either<tokio::task::futures::TaskLocalFuture<RefCell<Option<Span>>, F>, F>;

pub type CallScope<F> = futures::future::Either<Instrumented<Scoped<F>>, Scoped<F>>;

tokio::task_local! {
    /// The last upstream attempt of the call that answered, until the
    /// platform's code in its answer is read.
    static HELD_ATTEMPT: RefCell<Option<Span>>;
}

/// Records the platform's code (`errcode`, `ret`) read from the answer of the
/// call's last upstream attempt on that attempt's span, and ends it. Nothing
/// without a held attempt (no exporter, or outside a call). The platforms read
/// an answer as soon as it arrives (no await between): the held attempt is the
/// one whose answer is read, even when a call's attempts run concurrently.
pub fn platform_code(code: i64) {
    let _ = HELD_ATTEMPT.try_with(|held| {
        if let Some(span) = held.borrow_mut().take() {
            span.record("gamegate.platform.code", code);
        }
    });
}

/// The platforms' hosts and ports, for `server.address` and `server.port` of
/// the upstream spans: the gateway's builder registers each configured
/// platform's base URL (one gateway per process, as the binary runs).
static PLATFORM_ADDRESSES: RwLock<Vec<(Platform, Arc<str>, u16)>> = RwLock::new(Vec::new());

/// The upstream spans of `platform` name `host` and `port` from now on.
pub fn set_platform_address(platform: Platform, host: &str, port: u16) {
    let mut addresses = PLATFORM_ADDRESSES
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    addresses.retain(|(known, _, _)| *known != platform);
    addresses.push((platform, Arc::from(host), port));
}

fn platform_address(platform: Platform) -> Option<(Arc<str>, u16)> {
    PLATFORM_ADDRESSES
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .iter()
        .find(|(known, _, _)| *known == platform)
        .map(|(_, host, port)| (host.clone(), *port))
}

/// The client span of one upstream attempt (none without an exporter).
pub struct UpstreamAttempt {
    span: Span,
}

impl UpstreamAttempt {
    /// An attempt to send `method` `path` (the route's declared path: never
    /// the query, which holds tokens and signatures) to `platform`.
    pub fn start(platform: Platform, method: &'static str, path: &str) -> UpstreamAttempt {
        if !exporting() {
            return UpstreamAttempt { span: Span::none() };
        }
        let (host, port) = platform_address(platform).unzip();
        let span = tracing::info_span!(
            target: TARGET,
            "upstream",
            otel.name = %format_args!("{method} {path}"),
            otel.kind = "client",
            otel.status_code = Empty,
            server.address = host.as_deref(),
            // i64: OpenTelemetry's integers (a u64 would arrive as text).
            server.port = port.map(i64::from),
            http.request.method = method,
            url.path = path,
            http.response.status_code = Empty,
            gamegate.platform.code = Empty,
            error.type = Empty,
        );
        UpstreamAttempt { span }
    }

    /// The span to send in.
    pub fn span(&self) -> Span {
        self.span.clone()
    }

    /// The platform answered with HTTP `status`: the span stays open until
    /// the platform's code in the answer is read ([`platform_code`]), or the
    /// call ends.
    pub fn answered(self, status: u16) {
        if self.span.is_disabled() {
            return;
        }
        self.span
            .record("http.response.status_code", i64::from(status));
        let span = self.span;
        let _ = HELD_ATTEMPT.try_with(move |held| *held.borrow_mut() = Some(span));
    }

    /// The attempt failed: with an HTTP error `status` if the platform
    /// answered one; `error_type` is the gateway's reason.
    pub fn failed(self, status: Option<u16>, error_type: &'static str) {
        if self.span.is_disabled() {
            return;
        }
        if let Some(status) = status {
            self.span
                .record("http.response.status_code", i64::from(status));
        }
        self.span.record("error.type", error_type);
        self.span.record("otel.status_code", "error");
    }
}

/// The trace id of a call, kept with its span for the log lines.
#[derive(Clone, Copy)]
pub(super) struct CallTraceId(pub(super) TraceIdText);

/// How the subscriber it is part of takes the calls' spans: whether an
/// [`Exporter`] is installed, and whether the call's span shows its trace id
/// as a field (text lines; JSON lines have it first, [`super::json::JsonLines`]).
/// It does nothing itself: the spans ask it.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallTraceLayer {
    exporting: bool,
    trace_id_field: bool,
}

impl CallTraceLayer {
    pub fn new(exporting: bool, trace_id_field: bool) -> Self {
        CallTraceLayer {
            exporting,
            trace_id_field,
        }
    }
}

impl<S: Subscriber> Layer<S> for CallTraceLayer {}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        headers
    }

    #[test]
    fn the_callers_span_comes_from_traceparent_and_tracestate() {
        let context = caller_span_context(&headers(&[
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            ("tracestate", "congo=t61rcWkgMzE"),
        ]))
        .expect("a valid traceparent");
        assert_eq!(
            TraceIdText::of(context.trace_id()).as_str(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(context.span_id().to_string(), "00f067aa0ba902b7");
        assert!(context.is_sampled() && context.is_remote());
        assert_eq!(context.trace_state().get("congo"), Some("t61rcWkgMzE"));
    }

    #[test]
    fn grpc_trace_bin_is_read_when_there_is_no_valid_traceparent() {
        // OpenCensus' 29 bytes: version 0; field 0, the trace id; field 1,
        // the span id; field 2, the options (sampled).
        let mut bytes = vec![0, 0];
        bytes.extend(hex::decode("4bf92f3577b34da6a3ce929d0e0e4736").unwrap());
        bytes.push(1);
        bytes.extend(hex::decode("00f067aa0ba902b7").unwrap());
        bytes.extend([2, 1]);
        for encoded in [
            base64::engine::general_purpose::STANDARD.encode(&bytes),
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(&bytes),
        ] {
            let context = caller_span_context(&headers(&[
                ("traceparent", "not a traceparent"),
                ("grpc-trace-bin", &encoded),
            ]))
            .expect("a valid grpc-trace-bin");
            assert_eq!(
                TraceIdText::of(context.trace_id()).as_str(),
                "4bf92f3577b34da6a3ce929d0e0e4736"
            );
            assert_eq!(context.span_id().to_string(), "00f067aa0ba902b7");
            assert!(context.is_sampled());
        }
    }

    #[test]
    fn invalid_trace_contexts_are_none() {
        for pairs in [
            &[][..],
            &[(
                "traceparent",
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            )][..],
            &[(
                "traceparent",
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            )][..],
            &[("grpc-trace-bin", "!!!")][..],
            &[("grpc-trace-bin", "AAA")][..],
        ] {
            assert!(caller_span_context(&headers(pairs)).is_none(), "{pairs:?}");
        }
    }

    #[test]
    fn fresh_trace_ids_are_32_hex_digits_and_differ() {
        let one = TraceIdText::of(fresh_trace_id());
        let two = TraceIdText::of(fresh_trace_id());
        assert_ne!(one, two);
        assert!(TraceIdText::parse(one.as_str()).is_some());
        assert!(TraceIdText::parse("4BF92F3577B34DA6A3CE929D0E0E4736").is_none());
        assert!(TraceIdText::parse("4bf9").is_none());
    }

    #[test]
    fn without_an_exporter_a_call_has_the_callers_trace_id_and_no_upstream_span() {
        let subscriber = {
            use tracing_subscriber::layer::SubscriberExt;
            tracing_subscriber::registry().with(CallTraceLayer::new(false, false))
        };
        tracing::subscriber::with_default(subscriber, || {
            let call = CallTrace::start(
                Some("/gamegate.v1.StorageService/SetUserStorage"),
                &headers(&[(
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                )]),
            );
            assert_eq!(call.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
            assert!(!call.span().is_disabled());
            let _entered = call.span().enter();
            let attempt = UpstreamAttempt::start(Platform::QqMinigame, "POST", "/api/getToken");
            assert!(attempt.span().is_disabled());
            // A call without a traceparent gets one of its own.
            let fresh = CallTrace::start(None, &http::HeaderMap::new());
            assert_ne!(fresh.trace_id(), call.trace_id());
        });
    }
}
