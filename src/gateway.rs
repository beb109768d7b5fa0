//! The one generic path every gateway RPC takes: decode the request as a dynamic
//! message of the RPC's input type, validate and map it by its declared route,
//! call the platform within `min(caller deadline, platform budget)`, decode the
//! answer into the RPC's output type, or turn the error into a rich status.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use tokio::time::Instant;
use tonic::{
    Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    metadata::MetadataMap,
    server::{Grpc, UnaryService},
};

use futures::{StreamExt, TryStreamExt};
use serde_json::{Map, Value as Json};

use crate::{
    callers::{CallerRegistry, RegisteredCaller},
    errors::GatewayError,
    mapping::{self, UpstreamRequest},
    platform::Platforms,
    routes::{Route, RouteTable},
};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The gateway service, mounted under the path of every routed gRPC service.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<GatewayInner>,
}

struct GatewayInner {
    routes: Arc<RouteTable>,
    platforms: Platforms,
    callers: CallerRegistry,
    /// The last good answers of routes that serve them when the platform's
    /// answer is degraded, by route, app and request fingerprint.
    last_good_answers: moka::sync::Cache<String, Arc<Map<String, Json>>>,
}

/// The member by which MSDK marks a degraded answer ("1": data partly lost).
const LOST_MARKER: &str = "is_lost";

/// Upstream calls of one fanned-out request that run at once.
const FAN_OUT_PARALLELISM: usize = 4;

fn is_lost(answer: &Map<String, Json>) -> bool {
    match answer.get(LOST_MARKER) {
        Some(Json::String(s)) => s.trim() == "1" || s.trim() == "true",
        Some(Json::Number(n)) => n.as_i64() == Some(1),
        Some(Json::Bool(b)) => *b,
        _ => false,
    }
}

/// Merges the answers of a fanned-out call: lists are concatenated in request
/// order, other members come from the first answer, and the merge is degraded
/// if any part was.
fn merge_answers(answers: Vec<Map<String, Json>>) -> Map<String, Json> {
    let any_lost = answers.iter().any(is_lost);
    let mut parts = answers.into_iter();
    let mut merged = parts.next().unwrap_or_default();
    for part in parts {
        for (key, value) in part {
            match (merged.get_mut(&key), value) {
                (Some(Json::Array(list)), Json::Array(more)) => list.extend(more),
                (None, value) => {
                    merged.insert(key, value);
                }
                _ => {}
            }
        }
    }
    if any_lost {
        merged.insert(LOST_MARKER.into(), Json::String("1".into()));
    }
    merged
}

impl Gateway {
    pub fn new(routes: Arc<RouteTable>, platforms: Platforms, callers: CallerRegistry) -> Self {
        Gateway {
            inner: Arc::new(GatewayInner {
                routes,
                platforms,
                callers,
                last_good_answers: moka::sync::Cache::builder()
                    .max_capacity(100_000)
                    .time_to_live(Duration::from_secs(24 * 3600))
                    .build(),
            }),
        }
    }
}

impl<B> tower::Service<http::Request<B>> for Gateway
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move {
            let Some(route) = inner.routes.get(request.uri().path()).cloned() else {
                let status =
                    Status::unimplemented(format!("gamegate has no rpc {}", request.uri().path()));
                return Ok(status.into_http());
            };
            let codec = DynamicCodec::new(route.method_descriptor.input());
            let handler = RouteHandler { inner, route };
            Ok(Grpc::new(codec).unary(handler, request).await)
        })
    }
}

struct RouteHandler {
    inner: Arc<GatewayInner>,
    route: Arc<Route>,
}

impl UnaryService<DynamicMessage> for RouteHandler {
    type Response = DynamicMessage;
    type Future = BoxFuture<Result<tonic::Response<DynamicMessage>, Status>>;

    fn call(&mut self, request: tonic::Request<DynamicMessage>) -> Self::Future {
        let inner = self.inner.clone();
        let route = self.route.clone();
        Box::pin(async move {
            let started = Instant::now();
            let caller_timeout = grpc_timeout(request.metadata());
            let outcome = match inner.callers.authenticate(request.metadata()) {
                Ok(caller) => {
                    inner
                        .execute(&route, caller, request.get_ref(), started, caller_timeout)
                        .await
                }
                Err(error) => Err(error),
            };
            match outcome {
                Ok(answer) => {
                    tracing::debug!(
                        rpc = %route.grpc_path,
                        elapsed_us = started.elapsed().as_micros() as u64,
                        "rpc answered"
                    );
                    Ok(tonic::Response::new(answer))
                }
                Err(error) => {
                    let reason = error.reason().info_reason();
                    match &error {
                        GatewayError::InvalidRequest { .. } => {
                            tracing::debug!(rpc = %route.grpc_path, reason, %error, "rpc refused")
                        }
                        _ => tracing::warn!(
                            rpc = %route.grpc_path,
                            endpoint = %route.path,
                            reason,
                            %error,
                            "rpc failed"
                        ),
                    }
                    Err(error.to_status())
                }
            }
        })
    }
}

impl GatewayInner {
    async fn execute(
        &self,
        route: &Route,
        caller: Option<&RegisteredCaller>,
        message: &DynamicMessage,
        started: Instant,
        caller_timeout: Option<Duration>,
    ) -> Result<DynamicMessage, GatewayError> {
        let request = mapping::build_request(route, message)?;
        if let Some(caller) = caller.filter(|c| !c.may_use(&request.app_id)) {
            return Err(GatewayError::AppNotAllowed {
                caller: caller.name.clone(),
                app_id: request.app_id.clone(),
            });
        }
        let budget = self.platforms.budget(route.platform)?;
        // Answer a little before the caller's own deadline, so that the caller
        // receives our DEADLINE_EXCEEDED with its details rather than a bare
        // cancellation.
        let effective = match caller_timeout {
            Some(timeout) => budget.min(timeout.saturating_sub(deadline_margin(timeout))),
            None => budget,
        };
        let deadline = started + effective;
        let answer =
            tokio::time::timeout_at(deadline, self.call_upstream(route, &request, deadline))
                .await
                .unwrap_or_else(|_| {
                    Err(GatewayError::Timeout {
                        platform: route.platform,
                        endpoint: route.path.clone(),
                        budget: effective,
                    })
                })
                .map_err(|error| match error {
                    // Whichever timer fired, the call had `effective` in all.
                    GatewayError::Timeout {
                        platform, endpoint, ..
                    } => GatewayError::Timeout {
                        platform,
                        endpoint,
                        budget: effective,
                    },
                    other => other,
                })?;
        let (answer, served_from_cache) = self.degraded_fallback(route, &request, answer);
        let mut message = mapping::decode_response(&route.response, &answer).map_err(|detail| {
            GatewayError::Malformed {
                platform: route.platform,
                endpoint: route.path.clone(),
                detail,
            }
        })?;
        if let (true, Some(field)) = (served_from_cache, &route.served_from_cache) {
            message.set_field(field, prost_reflect::Value::Bool(true));
        }
        Ok(message)
    }

    /// One upstream call, or several in parallel when a list is longer than the
    /// platform takes in one call.
    async fn call_upstream(
        &self,
        route: &Route,
        request: &UpstreamRequest,
        deadline: Instant,
    ) -> Result<Arc<Map<String, Json>>, GatewayError> {
        let oversized =
            route
                .batch
                .as_ref()
                .and_then(|(member, size)| match request.body.get(member) {
                    Some(Json::Array(items)) if items.len() > *size => Some((member, items, *size)),
                    _ => None,
                });
        let Some((member, items, size)) = oversized else {
            return self
                .platforms
                .call(route, request, deadline)
                .await
                .map(Arc::new);
        };
        let parts: Vec<UpstreamRequest> = items
            .chunks(size)
            .map(|chunk| {
                let mut part = request.clone();
                part.body
                    .insert(member.clone(), Json::Array(chunk.to_vec()));
                part
            })
            .collect();
        tracing::debug!(endpoint = %route.path, calls = parts.len(), "fanning out a long list");
        let calls: Vec<_> = parts
            .iter()
            .map(|part| self.platforms.call(route, part, deadline))
            .collect();
        let answers: Vec<Map<String, Json>> = futures::stream::iter(calls)
            .buffered(FAN_OUT_PARALLELISM)
            .try_collect()
            .await?;
        Ok(Arc::new(merge_answers(answers)))
    }

    /// For routes that declare it: a degraded answer (is_lost) is replaced by the
    /// last good answer to the same request, if there is one; good answers are
    /// remembered; degraded ones never are.
    fn degraded_fallback(
        &self,
        route: &Route,
        request: &UpstreamRequest,
        answer: Arc<Map<String, Json>>,
    ) -> (Arc<Map<String, Json>>, bool) {
        if !route.serve_cached_when_lost {
            return (answer, false);
        }
        let key = format!("{}|{}|{}", route.path, request.app_id, request.fingerprint);
        if !is_lost(&answer) {
            // Most answers repeat the last one: replacing an equal entry costs more
            // than comparing it.
            if self.last_good_answers.get(&key).as_deref() != Some(&*answer) {
                self.last_good_answers.insert(key, answer.clone());
            }
            return (answer, false);
        }
        match self.last_good_answers.get(&key) {
            Some(cached) => {
                tracing::info!(endpoint = %route.path, "degraded answer; serving the last good one");
                (cached, true)
            }
            None => (answer, false),
        }
    }
}

/// A twentieth of the caller's timeout, at most 20 ms.
fn deadline_margin(timeout: Duration) -> Duration {
    (timeout / 20).min(Duration::from_millis(20))
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

/// Encodes dynamic messages and decodes them as `decode`'s type: a server's
/// codec decodes requests, a client's (tools, tests) decodes responses.
#[derive(Clone)]
pub struct DynamicCodec {
    decode: MessageDescriptor,
}

impl DynamicCodec {
    pub fn new(decode: MessageDescriptor) -> Self {
        DynamicCodec { decode }
    }
}

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynamicEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        DynamicEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        DynamicDecoder {
            descriptor: self.decode.clone(),
        }
    }
}

pub struct DynamicEncoder;

impl Encoder for DynamicEncoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn encode(&mut self, item: DynamicMessage, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|error| Status::internal(format!("response encoding failed: {error}")))
    }
}

pub struct DynamicDecoder {
    descriptor: MessageDescriptor,
}

impl Decoder for DynamicDecoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<DynamicMessage>, Status> {
        DynamicMessage::decode(self.descriptor.clone(), src)
            .map(Some)
            .map_err(|error| {
                Status::invalid_argument(format!("request is not valid protobuf: {error}"))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}

#[cfg(test)]
mod fan_out_tests {
    use serde_json::json;

    use super::*;

    fn object(value: Json) -> Map<String, Json> {
        match value {
            Json::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn merged_answers_concatenate_lists_in_order_and_keep_degradation() {
        let merged = merge_answers(vec![
            object(json!({"ret": 0, "lists": [1, 2], "is_lost": "0", "msdkExtInfo": "a"})),
            object(json!({"ret": 0, "lists": [3], "is_lost": "1", "msdkExtInfo": "a"})),
            object(json!({"ret": 0, "lists": [4, 5], "is_lost": "0", "extra": true})),
        ]);
        assert_eq!(
            Json::Object(merged),
            json!({"ret": 0, "lists": [1, 2, 3, 4, 5], "is_lost": "1", "msdkExtInfo": "a", "extra": true})
        );
    }

    #[test]
    fn lost_markers_in_every_spelling() {
        for lost in [json!("1"), json!(1), json!(true), json!(" 1 ")] {
            assert!(is_lost(&object(json!({ "is_lost": lost }))));
        }
        for fine in [json!("0"), json!(0), json!(false), json!("")] {
            assert!(!is_lost(&object(json!({ "is_lost": fine }))));
        }
        assert!(!is_lost(&object(json!({}))));
    }
}
