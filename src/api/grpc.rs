//! The gRPC adapter: one tower service mounted under the path of every routed
//! service; it finds the route of the request's path, decodes the request as a
//! dynamic message of the RPC's input type, authenticates the caller from its
//! `authorization` metadata, reads its deadline from `grpc-timeout`, and calls
//! the core.

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use prost_reflect::DynamicMessage;
use tokio::time::Instant;
use tonic::{
    Status,
    metadata::MetadataMap,
    server::{Grpc, UnaryService},
};

use super::codec::DynamicCodec;
use crate::{
    auth::CallerRegistry,
    core::{self, CallDeadline, Core},
    plan::{Route, RouteTable},
    state::BoxFuture,
};

/// The gRPC service of every routed RPC.
#[derive(Clone)]
pub struct GrpcGateway {
    inner: Arc<Shared>,
}

struct Shared {
    routes: Arc<RouteTable>,
    callers: CallerRegistry,
    core: Core,
}

impl GrpcGateway {
    pub fn new(routes: Arc<RouteTable>, callers: CallerRegistry, core: Core) -> Self {
        GrpcGateway {
            inner: Arc::new(Shared {
                routes,
                callers,
                core,
            }),
        }
    }
}

impl<B> tower::Service<http::Request<B>> for GrpcGateway
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

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
    inner: Arc<Shared>,
    route: Arc<Route>,
}

impl UnaryService<DynamicMessage> for RouteHandler {
    type Response = DynamicMessage;
    type Future = BoxFuture<'static, Result<tonic::Response<DynamicMessage>, Status>>;

    fn call(&mut self, request: tonic::Request<DynamicMessage>) -> Self::Future {
        let inner = self.inner.clone();
        let route = self.route.clone();
        Box::pin(async move {
            let deadline = CallDeadline {
                received_at: Instant::now(),
                caller_timeout: grpc_timeout(request.metadata()),
            };
            let authorization = request
                .metadata()
                .get("authorization")
                .and_then(|value| value.to_str().ok());
            let outcome = match inner.callers.authenticate(authorization) {
                Ok(caller) => {
                    inner
                        .core
                        .execute(&route, caller, request.get_ref(), deadline)
                        .await
                }
                Err(error) => Err(error),
            };
            core::record(&route, deadline.received_at, &outcome);
            outcome
                .map(tonic::Response::new)
                .map_err(|error| error.to_status())
        })
    }
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
