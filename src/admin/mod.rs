//! The admin listener (`admin_listen`, off by default): what operators and
//! kubelets ask over plain HTTP, on an address of its own so that it is never
//! exposed with the gRPC port:
//!
//! - `GET /metrics`: the metrics registry, in the Prometheus text format
//!   (0.0.4), or OpenMetrics 1.0.0 when the scraper's `Accept` asks for it
//!   (Prometheus does);
//! - `GET /ready`: 200 while gRPC health says SERVING, 503 once gamegate is
//!   draining (health NOT_SERVING), for HTTP readiness probes;
//! - `GET /live`: 200 while the process serves at all.
//!
//! Bounded like the rest: a few requests at a time, each within a timeout,
//! no request body read.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use tokio::net::TcpListener;
use tower::limit::ConcurrencyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::metrics;

const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Requests the admin listener serves at once (scrapes and probes are few).
const MAX_REQUESTS_IN_FLIGHT: usize = 16;
/// The longest one admin request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether gamegate takes new calls: what gRPC health says, for `/ready`.
#[derive(Clone, Debug)]
pub struct Readiness(Arc<AtomicBool>);

impl Default for Readiness {
    fn default() -> Self {
        Readiness(Arc::new(AtomicBool::new(true)))
    }
}

impl Readiness {
    /// Draining: `/ready` answers 503 from now on.
    pub fn not_serving(&self) {
        self.0.store(false, Ordering::Release);
    }

    pub fn is_serving(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// The admin routes.
pub fn router(readiness: Readiness) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .route(
            "/ready",
            get(move || {
                let serving = readiness.is_serving();
                async move {
                    if serving {
                        (StatusCode::OK, "SERVING\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "NOT_SERVING\n")
                    }
                }
            }),
        )
        .route("/live", get(|| async { (StatusCode::OK, "ok\n") }))
        .layer(ConcurrencyLimitLayer::new(MAX_REQUESTS_IN_FLIGHT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
}

/// Serves the admin routes on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, readiness: Readiness) -> std::io::Result<()> {
    axum::serve(listener, router(readiness)).await
}

/// Binds `addr` for [`serve`].
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

async fn scrape(headers: HeaderMap) -> Response {
    let registry = metrics::global();
    let (body, content_type) = if wants_openmetrics(&headers) {
        (registry.openmetrics_text(), OPENMETRICS_TEXT)
    } else {
        (registry.prometheus_text(), PROMETHEUS_TEXT)
    };
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}

/// Whether `Accept` prefers OpenMetrics to the Prometheus text format: it
/// names `application/openmetrics-text` with a quality at least that of any
/// `text/plain` (Prometheus sends both, OpenMetrics first and higher).
fn wants_openmetrics(headers: &HeaderMap) -> bool {
    let mut openmetrics: Option<f32> = None;
    let mut text: Option<f32> = None;
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let quality = parts
                .filter_map(|p| p.strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            let best = |seen: Option<f32>| Some(seen.map_or(quality, |s| s.max(quality)));
            match media.as_str() {
                "application/openmetrics-text" => openmetrics = best(openmetrics),
                "text/plain" | "*/*" => text = best(text),
                _ => {}
            }
        }
    }
    match (openmetrics, text) {
        (Some(om), Some(text)) => om > 0.0 && om >= text,
        (Some(om), None) => om > 0.0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn openmetrics_only_when_the_scraper_prefers_it() {
        // Prometheus 2.x's scrape Accept header.
        assert!(wants_openmetrics(&accept(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
             version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        )));
        assert!(!wants_openmetrics(&HeaderMap::new()), "curl: text");
        assert!(!wants_openmetrics(&accept("*/*")));
        assert!(!wants_openmetrics(&accept("text/plain;version=0.0.4")));
        assert!(!wants_openmetrics(&accept(
            "text/plain, application/openmetrics-text;q=0.5"
        )));
        assert!(!wants_openmetrics(&accept(
            "application/openmetrics-text;q=0"
        )));
    }
}
