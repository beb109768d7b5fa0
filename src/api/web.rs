//! gRPC-Web (binary `application/grpc-web+proto` and text
//! `application/grpc-web-text`) on the gRPC port, and CORS for browsers.
//!
//! tonic-web turns a gRPC-Web request into a gRPC one and its answer back,
//! around the same service, so a gRPC-Web call takes the gRPC path whole.
//! It is put in front of gRPC-Web requests only ([`WebLayer`]): tonic-web
//! answers 400 to every other HTTP/1.1 request, and Connect's are served on
//! HTTP/1.1 too (`api::connect`). The check is one header lookup.
//!
//! CORS ([`cors`]) is off unless `[listener] cors_allowed_origins` names
//! origins: then tower-http answers preflights for them and adds the
//! response headers a browser needs to read gRPC-Web's and Connect's
//! answers.

use std::task::{Context, Poll};

use http::{HeaderName, HeaderValue, Method, header};
use tonic_web::{GrpcWebLayer, GrpcWebService};
use tower::{Layer, Service};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Puts tonic-web in front of the gRPC-Web requests of a service.
#[derive(Debug, Clone, Copy, Default)]
pub struct WebLayer;

impl<S: Clone> Layer<S> for WebLayer {
    type Service = Web<S>;

    fn layer(&self, inner: S) -> Web<S> {
        Web {
            web: GrpcWebLayer::new().layer(inner.clone()),
            inner,
        }
    }
}

/// A service whose gRPC-Web requests go through tonic-web, the rest straight
/// to it.
#[derive(Debug, Clone)]
pub struct Web<S> {
    inner: S,
    web: GrpcWebService<S>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<S, B> Service<http::Request<B>> for Web<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = <S as Service<http::Request<B>>>::Error,
        > + Clone,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError> + std::fmt::Display,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = <S as Service<http::Request<B>>>::Error;
    type Future = futures::future::Either<
        tonic_web::ResponseFuture<<S as Service<http::Request<tonic::body::Body>>>::Future>,
        <S as Service<http::Request<B>>>::Future,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The routes are always ready; both handles are asked all the same.
        std::task::ready!(Service::<http::Request<B>>::poll_ready(&mut self.inner, cx))?;
        Service::<http::Request<B>>::poll_ready(&mut self.web, cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if is_grpc_web(request.headers()) {
            futures::future::Either::Left(self.web.call(request))
        } else {
            futures::future::Either::Right(self.inner.call(request))
        }
    }
}

/// `application/grpc-web`, alone or with a subtype or `-text`.
fn is_grpc_web(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc-web"))
}

/// The request headers gRPC-Web and Connect clients send.
const ALLOWED_HEADERS: &[&str] = &[
    "content-type",
    "connect-protocol-version",
    "connect-timeout-ms",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "authorization",
    "idempotency-key",
    "traceparent",
];

/// The response headers a browser script may read: gRPC's status (in
/// gRPC-Web's headers when an answer is trailers-only), the replay mark.
const EXPOSED_HEADERS: &[&str] = &[
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
    "idempotency-replayed",
    "connect-protocol-version",
    "connect-content-encoding",
    "connect-accept-encoding",
];

/// The CORS layer for `origins` (validated: exact origins, or `*` alone);
/// `None` when there are none, and then no CORS header is ever written.
pub fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow_origin = if origins.iter().any(|origin| origin == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|origin| HeaderValue::from_str(origin).ok()),
        )
    };
    let names = |names: &[&'static str]| -> Vec<HeaderName> {
        names
            .iter()
            .map(|name| HeaderName::from_static(name))
            .collect()
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([Method::POST, Method::GET])
            .allow_headers(names(ALLOWED_HEADERS))
            .expose_headers(names(EXPOSED_HEADERS))
            .max_age(std::time::Duration::from_secs(2 * 60 * 60)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_web_content_types() {
        let with = |value: &'static str| {
            let mut headers = http::HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            is_grpc_web(&headers)
        };
        assert!(with("application/grpc-web"));
        assert!(with("application/grpc-web+proto"));
        assert!(with("application/grpc-web-text"));
        assert!(!with("application/grpc"));
        assert!(!with("application/json"));
        assert!(cors(&[]).is_none());
        assert!(cors(&["https://ops.example.com".into()]).is_some());
    }
}
