//! The gRPC adapter: one tower service mounted under the path of every routed
//! service (and as the fallback of every other path). Before a byte of the
//! body is read it finds the route, checks the content type and encoding,
//! authenticates the caller from its `authorization` metadata and takes a
//! place among the calls in flight; then it decodes the request as a dynamic
//! message of the RPC's input type, within the route's size limit, reads the
//! deadline from `grpc-timeout`, and calls the core, through the idempotency
//! keys of writes (`idempotency`: a repeat is answered from the record). Every
//! gRPC request is served in its call's span (`telemetry::trace`): a child of
//! the caller's when its metadata names one; its trace id is on every line the
//! call writes and in the ErrorInfo of the error it returns, if any.
//!
//! What is not `application/grpc` goes to `api::connect` (one header check,
//! before anything else), which enters this path at the same two points:
//! `Shared::admit` before the body is read, `RouteHandler` once the
//! message is decoded.

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use http::{HeaderMap, header};
use prost_reflect::DynamicMessage;
use tokio::time::Instant;
use tonic::{
    Status,
    metadata::MetadataMap,
    server::{Grpc, UnaryService},
};
use tracing::Instrument;

use arc_swap::ArcSwap;

use super::{
    access::{AccessLine, AccessLog, Failure},
    codec::{GatewayCodec, Reply},
    idempotency::{Idempotency, IdempotencyPolicy, Served},
    status,
};
use crate::{
    auth::{CallerRegistry, RegisteredCaller},
    config::Limits,
    core::{self, CallDeadline, Core},
    errors::GatewayError,
    limits::{self, CallsInFlight, InFlight},
    metrics, net,
    plan::{Route, RouteTable},
    state::{BoxFuture, Store},
    telemetry::trace,
};

/// The gRPC service of every routed RPC.
#[derive(Clone)]
pub struct GrpcGateway {
    inner: Arc<Shared>,
}

pub(super) struct Shared {
    pub(super) routes: Arc<RouteTable>,
    in_flight: CallsInFlight,
    /// The state shared across replicas (idempotency records); one for the
    /// life of the gateway, whatever reloads.
    store: Arc<dyn Store>,
    /// How long idempotency keys are kept; each call takes the one current
    /// at its start.
    idempotency: ArcSwap<IdempotencyPolicy>,
    /// What a reload replaces; each call takes the one current at its start
    /// and keeps it to its end.
    serving: ArcSwap<Serving>,
}

/// What a call is served with, built from one configuration: callers,
/// platforms (apps, secrets, budgets), limits, what the access line shows.
pub struct Serving {
    pub callers: CallerRegistry,
    pub core: Core,
    pub limits: Limits,
    pub access_log: AccessLog,
}

impl GrpcGateway {
    /// `max_calls_in_flight` holds for the life of the gateway: a reload does
    /// not change it.
    pub fn new(
        routes: Arc<RouteTable>,
        serving: Serving,
        max_calls_in_flight: usize,
        store: Arc<dyn Store>,
    ) -> Self {
        for route in routes.routes() {
            metrics::global().declare_rpc(&route.grpc_path);
        }
        GrpcGateway {
            inner: Arc::new(Shared {
                routes,
                in_flight: CallsInFlight::new(max_calls_in_flight),
                store,
                idempotency: ArcSwap::from_pointee(IdempotencyPolicy::default()),
                serving: ArcSwap::from_pointee(serving),
            }),
        }
    }

    /// Serves new calls with `serving`; calls in flight finish with the one
    /// they started with.
    pub fn replace(&self, serving: Serving) {
        self.inner.serving.store(Arc::new(serving));
    }

    /// Keys claimed from now on are kept as `policy` says (the default:
    /// [`IdempotencyPolicy::default`]); may be called again on a reload.
    pub fn set_idempotency(&self, policy: IdempotencyPolicy) {
        self.inner.idempotency.store(Arc::new(policy));
    }

    /// Calls in flight now.
    pub fn calls_in_flight(&self) -> usize {
        self.inner.in_flight.current()
    }

    /// Calls that have ended since the start.
    pub fn calls_finished(&self) -> u64 {
        self.inner.in_flight.finished()
    }
}

pub(super) type Response = http::Response<tonic::body::Body>;

impl<B> tower::Service<http::Request<B>> for GrpcGateway
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let inner = self.inner.clone();
        // Every call is counted, refusals before its route or its caller is
        // known included; an unknown path counts as `unknown`.
        let observed = metrics::global().rpc_started(request.uri().path());
        // One header check: gRPC (and gRPC-Web, which `api::web` has turned
        // into gRPC by now) goes on as it always did; anything else is
        // Connect's, or refused by it with 415.
        if !is_grpc(request.headers()) {
            return Box::pin(async move {
                let (response, outcome) = super::connect::serve(inner, request).await;
                observed.finish(outcome);
                Ok(response)
            });
        }
        Box::pin(async move {
            let response = inner.serve(request).await;
            observed.finish(status::outcome_of(&response));
            Ok(response)
        })
    }
}

impl Shared {
    async fn serve<B>(self: Arc<Self>, request: http::Request<B>) -> Response
    where
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    {
        let received_at = Instant::now();
        let route = self.routes.get(request.uri().path()).cloned();
        let call = trace::CallTrace::start(
            route.as_ref().map(|route| route.grpc_path.as_str()),
            request.headers(),
        );
        let mut request = request;
        if request
            .headers()
            .contains_key(super::idempotency::KEY_METADATA)
        {
            // A keyed write's failure is recorded with its trace id (an
            // extension costs an allocation: only for keyed calls).
            request.extensions_mut().insert(call.trace_id_text());
        }
        let response = self
            .serve_call(request, route, received_at)
            .instrument(call.span().clone())
            .await;
        let code = status::grpc_code(&response);
        let response = match code {
            0 => response,
            _ => status::with_trace_id(response, call.trace_id()),
        };
        call.end(code);
        response
    }

    /// A gRPC request, within its call's span: `route` is the one its path
    /// names, if any.
    async fn serve_call<B>(
        self: Arc<Self>,
        request: http::Request<B>,
        route: Option<Arc<Route>>,
        received_at: Instant,
    ) -> Response
    where
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    {
        let Some(route) = route else {
            let path = request.uri().path();
            tracing::debug!(path = %path.escape_debug(), "no such rpc");
            return refusal(GatewayError::MethodUnknown {
                path: path.to_string(),
            });
        };
        if let Some(encoding) = compression(request.headers()) {
            let error = GatewayError::CompressionUnsupported { encoding };
            core::record(&route, &Err(error.clone()));
            return refusal(error);
        }
        let admitted = match self.admit(&route, request.headers(), request.extensions()) {
            Ok(admitted) => admitted,
            Err(error) => return refusal(error),
        };
        let limit = admitted.limit;
        let codec = GatewayCodec::new(route.method_descriptor.input());
        let (handler, _in_flight) = admitted.handler(route, received_at);
        let response = Grpc::new(codec)
            .max_decoding_message_size(limit)
            .unary(handler, request)
            .await;
        status::with_error_info(response, Some(limit))
    }
}

/// A call let in before its body is read: its caller, its place among the
/// calls in flight, the configuration it is served with.
pub(super) struct Admitted {
    serving: Arc<Serving>,
    idempotency: Idempotency,
    caller: Option<Arc<RegisteredCaller>>,
    in_flight: InFlight,
    /// The largest request the route accepts.
    pub(super) limit: usize,
}

impl Admitted {
    /// The handler of the shared path, and the call's place among the calls
    /// in flight (held until the answer is built).
    pub(super) fn handler(
        self,
        route: Arc<Route>,
        received_at: Instant,
    ) -> (RouteHandler, InFlight) {
        let handler = RouteHandler {
            serving: self.serving,
            idempotency: self.idempotency,
            route,
            caller: self.caller,
            received_at,
        };
        (handler, self.in_flight)
    }
}

impl Shared {
    /// What every protocol checks before it reads a byte of the body: the
    /// caller (from `authorization` or its client certificate; an
    /// unauthenticated request costs its headers only) and a place among
    /// the calls in flight. A refusal is recorded here.
    pub(super) fn admit(
        &self,
        route: &Route,
        headers: &HeaderMap,
        extensions: &http::Extensions,
    ) -> Result<Admitted, GatewayError> {
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        // The verified client certificate's names, on an mTLS connection.
        let connection = extensions.get::<net::ConnectionInfo>();
        let certificate_names = connection.and_then(net::ConnectionInfo::client_certificate_names);
        let serving = self.serving.load_full();
        let admitted = serving
            .callers
            .authenticate_remembering(
                authorization,
                certificate_names.as_deref(),
                connection.map(net::ConnectionInfo::memo),
            )
            .and_then(|caller| Ok((caller, self.in_flight.enter()?)));
        let (caller, in_flight) = match admitted {
            Ok(admitted) => admitted,
            Err(error) => {
                core::record(route, &Err(error.clone()));
                return Err(error);
            }
        };
        Ok(Admitted {
            limit: limits::max_request_bytes(route, &serving.limits),
            idempotency: Idempotency {
                store: self.store.clone(),
                policy: **self.idempotency.load(),
            },
            serving,
            caller,
            in_flight,
        })
    }
}

/// The one path of a call once its message is decoded, whatever protocol
/// brought it: the deadline from `grpc-timeout` in its metadata, the
/// idempotency key, the core, the access line. gRPC calls it through tonic's
/// `Grpc::unary`, Connect directly (`api::connect`).
pub(super) struct RouteHandler {
    serving: Arc<Serving>,
    idempotency: Idempotency,
    route: Arc<Route>,
    caller: Option<Arc<RegisteredCaller>>,
    received_at: Instant,
}

impl UnaryService<DynamicMessage> for RouteHandler {
    type Response = Reply;
    type Future = BoxFuture<'static, Result<tonic::Response<Reply>, Status>>;

    fn call(&mut self, request: tonic::Request<DynamicMessage>) -> Self::Future {
        let serving = self.serving.clone();
        let idempotency = self.idempotency.clone();
        let route = self.route.clone();
        let caller = self.caller.clone();
        let received_at = self.received_at;
        Box::pin(async move {
            let deadline = CallDeadline {
                received_at,
                caller_timeout: grpc_timeout(request.metadata()),
            };
            let (metadata, extensions, message) = request.into_parts();
            let trace_id = extensions.get::<trace::TraceIdText>().copied();
            let message = Arc::new(message);
            // The one path, as a future the idempotency layer may run in a
            // task of its own (hence owned).
            // A keyed write runs in a task of the idempotency layer: it
            // carries the call's span there.
            let elsewhere = metadata.contains_key(super::idempotency::KEY_METADATA);
            let run = {
                let (serving, route, caller, message) = (
                    serving.clone(),
                    route.clone(),
                    caller.clone(),
                    message.clone(),
                );
                trace::in_call(
                    async move {
                        serving
                            .core
                            .execute(&route, caller.as_deref(), &message, deadline)
                            .await
                    },
                    elsewhere,
                )
            };
            let served = idempotency
                .serve(
                    &route,
                    caller.as_deref().map(|caller| caller.name.as_str()),
                    &metadata,
                    &message,
                    trace_id,
                    run,
                )
                .await;
            let access_line = |outcome, replayed| {
                serving.access_log.write(&AccessLine {
                    route: &route,
                    request: &message,
                    caller: caller.as_deref(),
                    outcome,
                    replayed,
                    elapsed: received_at.elapsed(),
                })
            };
            match served {
                Served::Ran { outcome, recorded } => {
                    core::record(&route, &outcome);
                    access_line(
                        match &outcome {
                            Ok(_) => Ok(()),
                            Err(error) => Err(Failure::of(error, error.disposition().code)),
                        },
                        false,
                    );
                    match (outcome, recorded) {
                        // What was recorded is what is sent: a replay sends
                        // the same bytes.
                        (_, Some(recorded)) => status::as_recorded(recorded.respond(false)),
                        (Ok(message), None) => Ok(tonic::Response::new(Reply::Message(message))),
                        (Err(error), None) => Err(error.to_status()),
                    }
                }
                Served::Replayed(recorded) => {
                    let failure = recorded.access_failure();
                    access_line(
                        failure
                            .as_ref()
                            .map_or(Ok(()), |failure| Err(failure.as_failure())),
                        true,
                    );
                    status::as_recorded(recorded.respond(true))
                }
            }
        })
    }
}

/// A refusal before the body is read: a trailers-only gRPC response.
fn refusal(error: GatewayError) -> Response {
    error.to_status().into_http()
}

/// `application/grpc`, alone or with a subtype (`application/grpc+proto`).
pub(super) fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value.strip_prefix("application/grpc").is_some_and(|rest| {
                rest.is_empty() || rest.starts_with('+') || rest.starts_with(';')
            })
        })
}

/// The request's `grpc-encoding` when it is not `identity`: gamegate accepts
/// uncompressed messages only (a compressed message hides its size until it is
/// inflated).
fn compression(headers: &HeaderMap) -> Option<String> {
    let encoding = headers.get("grpc-encoding")?;
    let text = String::from_utf8_lossy(encoding.as_bytes());
    (text != "identity").then(|| text.escape_debug().to_string())
}

/// The caller's `grpc-timeout` header: digits and a unit (H, M, S, m, u, n).
pub fn grpc_timeout(metadata: &MetadataMap) -> Option<Duration> {
    let text = metadata.get("grpc-timeout")?.to_str().ok()?;
    if text.len() < 2 || text.len() > 9 {
        return None;
    }
    let (digits, unit) = text.split_at(text.len() - 1);
    let value: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(value.saturating_mul(3600)),
        "M" => Duration::from_secs(value.saturating_mul(60)),
        "S" => Duration::from_secs(value),
        "m" => Duration::from_millis(value),
        "u" => Duration::from_micros(value),
        "n" => Duration::from_nanos(value),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn grpc_timeout_units() {
        let mut metadata = MetadataMap::new();
        for (text, expected) in [
            ("250m", Duration::from_millis(250)),
            ("3S", Duration::from_secs(3)),
            ("2M", Duration::from_secs(120)),
            ("1H", Duration::from_secs(3600)),
            ("900u", Duration::from_micros(900)),
            ("5n", Duration::from_nanos(5)),
        ] {
            metadata.insert("grpc-timeout", text.parse().unwrap());
            assert_eq!(grpc_timeout(&metadata), Some(expected), "{text}");
        }
        metadata.insert("grpc-timeout", "12x".parse().unwrap());
        assert_eq!(grpc_timeout(&metadata), None);
        metadata.insert("grpc-timeout", "1234567890S".parse().unwrap());
        assert_eq!(grpc_timeout(&metadata), None, "more than 8 digits");
    }

    #[test]
    fn grpc_content_types() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            is_grpc(&headers)
        };
        assert!(with("application/grpc"));
        assert!(with("application/grpc+proto"));
        assert!(!with("application/json"));
        assert!(!with("application/grpc-web"));
        assert!(!with("application/grpcx"));
        assert!(!is_grpc(&HeaderMap::new()));
    }
}
