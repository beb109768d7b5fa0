//! Fault injection: queued misbehaviours that the next matching platform requests get instead of
//! (or, for latency alone, before) normal handling. Game teams use them to test their retry,
//! timeout and error paths against the platforms' own failure shapes.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::info;

use crate::minigame::MiniGameError;
use crate::openapi::OpenApiError;
use crate::{Platform, Sandbox, lock};

/// What `POST /_sandbox/faults` takes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FaultSpec {
    /// The platform path to match; absent = every platform path.
    path: Option<String>,
    /// How many matching requests get the fault; 0 = until cleared. Default 1.
    times: Option<u32>,
    latency_ms: Option<u64>,
    #[serde(default)]
    busy: bool,
    code: Option<i64>,
    http_status: Option<u16>,
    #[serde(default)]
    malformed: bool,
    #[serde(default)]
    drop_connection: bool,
}

/// A fault the admin API refused to queue.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FaultSpecError {
    #[error("unknown platform path {0:?}; known paths: {known}", known = crate::platform_paths().collect::<Vec<_>>().join(", "))]
    UnknownPath(String),
    #[error("a fault takes at most one of busy, code, http_status, malformed, drop_connection")]
    ConflictingActions,
    #[error(
        "a fault needs latency_ms or one of busy, code, http_status, malformed, drop_connection"
    )]
    NoEffect,
    #[error("http_status must be between 200 and 599, got {0}")]
    InvalidStatus(u16),
}

/// The misbehaviour itself, after the optional latency.
#[derive(Clone, Copy, Debug)]
enum FaultAction {
    /// The platform's busy answer (mini-game -1, OpenAPI 2000030).
    Busy,
    /// This platform code with a generic message.
    Code(i64),
    /// This HTTP status with a short text body.
    HttpStatus(StatusCode),
    /// HTTP 200 with a body that is not JSON.
    Malformed,
    /// Close the connection without any HTTP answer.
    DropConnection,
}

#[derive(Clone, Debug)]
struct Fault {
    id: u64,
    path: Option<String>,
    /// None = until cleared.
    remaining: Option<u32>,
    latency: Option<Duration>,
    action: Option<FaultAction>,
}

#[derive(Default)]
struct Queue {
    next_id: u64,
    faults: VecDeque<Fault>,
}

/// The fault queue.
#[derive(Default)]
pub(crate) struct Faults {
    queue: Mutex<Queue>,
}

impl Faults {
    /// Validates and queues a fault; returns its id.
    pub(crate) fn add(&self, spec: FaultSpec) -> Result<u64, FaultSpecError> {
        if let Some(path) = &spec.path
            && Platform::of_path(path).is_none()
        {
            return Err(FaultSpecError::UnknownPath(path.clone()));
        }
        let mut actions = Vec::new();
        if spec.busy {
            actions.push(FaultAction::Busy);
        }
        if let Some(code) = spec.code {
            actions.push(FaultAction::Code(code));
        }
        if let Some(status) = spec.http_status {
            let status = StatusCode::from_u16(status)
                .ok()
                .filter(|s| (200..600).contains(&s.as_u16()))
                .ok_or(FaultSpecError::InvalidStatus(status))?;
            actions.push(FaultAction::HttpStatus(status));
        }
        if spec.malformed {
            actions.push(FaultAction::Malformed);
        }
        if spec.drop_connection {
            actions.push(FaultAction::DropConnection);
        }
        if actions.len() > 1 {
            return Err(FaultSpecError::ConflictingActions);
        }
        let action = actions.pop();
        let latency = spec.latency_ms.map(Duration::from_millis);
        if action.is_none() && latency.is_none() {
            return Err(FaultSpecError::NoEffect);
        }
        let mut queue = lock(&self.queue);
        queue.next_id += 1;
        let id = queue.next_id;
        queue.faults.push_back(Fault {
            id,
            path: spec.path,
            remaining: match spec.times.unwrap_or(1) {
                0 => None,
                times => Some(times),
            },
            latency,
            action,
        });
        Ok(id)
    }

    /// Removes every queued fault; returns how many there were.
    pub(crate) fn clear(&self) -> usize {
        let mut queue = lock(&self.queue);
        let count = queue.faults.len();
        queue.faults.clear();
        count
    }

    /// The queued faults, oldest first, as the admin API shows them.
    pub(crate) fn list(&self) -> Vec<Value> {
        lock(&self.queue)
            .faults
            .iter()
            .map(|fault| {
                let mut view = json!({
                    "id": fault.id,
                    "path": fault.path,
                    "times_left": fault.remaining.unwrap_or(0),
                    "latency_ms": fault.latency.map(|l| l.as_millis()),
                });
                match fault.action {
                    Some(FaultAction::Busy) => view["busy"] = json!(true),
                    Some(FaultAction::Code(code)) => view["code"] = json!(code),
                    Some(FaultAction::HttpStatus(status)) => {
                        view["http_status"] = json!(status.as_u16());
                    }
                    Some(FaultAction::Malformed) => view["malformed"] = json!(true),
                    Some(FaultAction::DropConnection) => view["drop_connection"] = json!(true),
                    None => {}
                }
                view
            })
            .collect()
    }

    /// Takes one use of the oldest fault that matches `path`.
    fn take(&self, path: &str) -> Option<Fault> {
        let mut queue = lock(&self.queue);
        let index = queue
            .faults
            .iter()
            .position(|fault| fault.path.as_deref().is_none_or(|p| p == path))?;
        let fault = &mut queue.faults[index];
        let taken = fault.clone();
        match &mut fault.remaining {
            Some(1) => {
                queue.faults.remove(index);
            }
            Some(remaining) => *remaining -= 1,
            None => {}
        }
        Some(taken)
    }
}

/// Marks a response that the server loop must turn into a closed connection.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DropConnection;

/// Middleware in front of every platform route: counts the request, then applies the next
/// matching fault, if any.
pub(crate) async fn intercept(
    State(sandbox): State<Sandbox>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    sandbox.shared.stats.record(&path, request.uri().query());
    let Some(fault) = sandbox.shared.faults.take(&path) else {
        return next.run(request).await;
    };
    info!(path, fault_id = fault.id, action = ?fault.action, latency = ?fault.latency, "injecting fault");
    if let Some(latency) = fault.latency {
        tokio::time::sleep(latency).await;
    }
    let Some(action) = fault.action else {
        return next.run(request).await;
    };
    // Only platform routes pass through here, so the fallback is never taken.
    let platform = Platform::of_path(&path).unwrap_or(Platform::MiniGame);
    misbehave(platform, action)
}

fn misbehave(platform: Platform, action: FaultAction) -> Response {
    match (action, platform) {
        (FaultAction::Busy, Platform::MiniGame) => MiniGameError::Busy.into_response(),
        (FaultAction::Busy, Platform::OpenApi) => OpenApiError::Busy.into_response(),
        (FaultAction::Code(code), Platform::MiniGame) => {
            MiniGameError::Injected(code).into_response()
        }
        (FaultAction::Code(code), Platform::OpenApi) => {
            OpenApiError::Injected(code).into_response()
        }
        (FaultAction::HttpStatus(status), _) => (status, status.to_string()).into_response(),
        // What a misconfigured proxy in front of the platform would answer.
        (FaultAction::Malformed, _) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html")],
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
        )
            .into_response(),
        (FaultAction::DropConnection, _) => drop_connection(),
    }
}

/// The sandbox's own server loop sees the marker and closes the connection before answering.
/// Under another hyper-based server (e.g. `axum::serve`) the body, which fails on its first poll,
/// makes hyper abort the connection; in practice before the head is flushed, but that is hyper's
/// buffering, not a promise, hence the marker.
fn drop_connection() -> Response {
    let failing = futures_util::stream::once(async {
        Err::<Bytes, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "sandbox fault: connection dropped",
        ))
    });
    let mut response = Response::new(Body::from_stream(failing));
    response.extensions_mut().insert(DropConnection);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: Value) -> FaultSpec {
        serde_json::from_value(json).expect("valid spec")
    }

    #[test]
    fn faults_are_taken_in_fifo_order_per_path() {
        let faults = Faults::default();
        let first = faults
            .add(spec(json!({"path": "/api/getToken", "busy": true})))
            .unwrap();
        let second = faults.add(spec(json!({"code": 7, "times": 2}))).unwrap();
        assert_eq!(faults.take("/v3/user/get_dawanka_info").unwrap().id, second);
        assert_eq!(faults.take("/api/getToken").unwrap().id, first);
        assert_eq!(faults.take("/api/getToken").unwrap().id, second);
        assert!(faults.take("/api/getToken").is_none());
    }

    #[test]
    fn zero_times_lasts_until_cleared() {
        let faults = Faults::default();
        faults
            .add(spec(json!({"latency_ms": 1, "times": 0})))
            .unwrap();
        for _ in 0..5 {
            assert!(faults.take("/api/getToken").is_some());
        }
        assert_eq!(faults.clear(), 1);
        assert!(faults.take("/api/getToken").is_none());
    }

    #[test]
    fn rejects_bad_specs() {
        let faults = Faults::default();
        assert!(matches!(
            faults.add(spec(json!({"path": "/api/nope", "busy": true}))),
            Err(FaultSpecError::UnknownPath(_))
        ));
        assert!(matches!(
            faults.add(spec(json!({"busy": true, "malformed": true}))),
            Err(FaultSpecError::ConflictingActions)
        ));
        assert!(matches!(
            faults.add(spec(json!({}))),
            Err(FaultSpecError::NoEffect)
        ));
        assert!(matches!(
            faults.add(spec(json!({"http_status": 99}))),
            Err(FaultSpecError::InvalidStatus(99))
        ));
        assert!(serde_json::from_value::<FaultSpec>(json!({"latency": 5})).is_err());
    }
}
