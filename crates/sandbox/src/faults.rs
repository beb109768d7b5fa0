//! Fault injection: queued misbehaviours that the next matching platform requests get instead of
//! (or, for latency alone, before) normal handling. Game teams use them to test their retry,
//! timeout and error paths against the platforms' own failure shapes. MSDK paths also take a
//! `lost` fault, which lets the request through and degrades its answer (`"is_lost":"1"`).

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
use crate::msdk::{self, MsdkError};
use crate::openapi::OpenApiError;
use crate::{Platform, Sandbox, lock, platform_path};

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
    /// With `http_status`: the answer's `Retry-After`, in seconds (a 429 or
    /// 503 of a platform that says when to come back).
    retry_after_s: Option<u64>,
    #[serde(default)]
    malformed: bool,
    #[serde(default)]
    drop_connection: bool,
    /// MSDK only: the answer is the degraded one (`"is_lost":"1"`, default or partial data).
    #[serde(default)]
    lost: bool,
}

/// A fault the admin API refused to queue.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FaultSpecError {
    #[error("unknown platform path {0:?}; known paths: {known}", known = crate::platform_paths().collect::<Vec<_>>().join(", "))]
    UnknownPath(String),
    #[error(
        "a fault takes at most one of busy, code, http_status, malformed, drop_connection, lost"
    )]
    ConflictingActions,
    #[error(
        "a fault needs latency_ms or one of busy, code, http_status, malformed, drop_connection, lost"
    )]
    NoEffect,
    #[error("lost applies only to MSDK interfaces that answer is_lost, not {0:?}")]
    LostUnsupported(String),
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
    /// The status, and the `Retry-After` seconds it carries.
    HttpStatus(StatusCode, Option<u64>),
    /// HTTP 200 with a body that is not JSON.
    Malformed,
    /// Close the connection without any HTTP answer.
    DropConnection,
    /// MSDK: let the request through, marked for a degraded answer.
    Lost,
}

impl FaultAction {
    /// A `lost` fault waits for a request whose answer has `is_lost`; the others take any.
    fn applies_to(self, path: &str) -> bool {
        !matches!(self, Self::Lost) || msdk::reports_loss(path)
    }
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
        // Stored in canonical form, so that `/wxoauth/x` and `/auth/x/` name `/auth/x`.
        let path = match &spec.path {
            Some(path) => Some(
                platform_path(path)
                    .ok_or_else(|| FaultSpecError::UnknownPath(path.clone()))?
                    .1,
            ),
            None => None,
        };
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
            actions.push(FaultAction::HttpStatus(status, spec.retry_after_s));
        }
        if spec.malformed {
            actions.push(FaultAction::Malformed);
        }
        if spec.drop_connection {
            actions.push(FaultAction::DropConnection);
        }
        if spec.lost {
            if let Some(path) = path
                && !msdk::reports_loss(path)
            {
                return Err(FaultSpecError::LostUnsupported(path.to_owned()));
            }
            actions.push(FaultAction::Lost);
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
            path: path.map(str::to_owned),
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
                    Some(FaultAction::HttpStatus(status, _)) => {
                        view["http_status"] = json!(status.as_u16());
                    }
                    Some(FaultAction::Malformed) => view["malformed"] = json!(true),
                    Some(FaultAction::DropConnection) => view["drop_connection"] = json!(true),
                    Some(FaultAction::Lost) => view["lost"] = json!(true),
                    None => {}
                }
                view
            })
            .collect()
    }

    /// Takes one use of the oldest fault that matches `path` (a canonical platform path).
    fn take(&self, path: &str) -> Option<Fault> {
        let mut queue = lock(&self.queue);
        let index = queue.faults.iter().position(|fault| {
            fault.path.as_deref().is_none_or(|p| p == path)
                && fault.action.is_none_or(|action| action.applies_to(path))
        })?;
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
    mut request: Request,
    next: Next,
) -> Response {
    let Some((platform, path)) = platform_path(request.uri().path()) else {
        // An unknown interface of an MSDK module: MSDK answers it (-505), but like an unknown
        // path it is not counted and takes no fault.
        return next.run(request).await;
    };
    sandbox.shared.stats.record(path, request.uri().query());
    let Some(fault) = sandbox.shared.faults.take(path) else {
        return next.run(request).await;
    };
    info!(path, fault_id = fault.id, action = ?fault.action, latency = ?fault.latency, "injecting fault");
    if let Some(latency) = fault.latency {
        tokio::time::sleep(latency).await;
    }
    let Some(action) = fault.action else {
        return next.run(request).await;
    };
    match misbehave(platform, action, &request) {
        Some(response) => response,
        None => {
            request.extensions_mut().insert(msdk::Degrade);
            next.run(request).await
        }
    }
}

/// The answer instead of the platform's; None for `lost`, which lets the request through.
fn misbehave(platform: Platform, action: FaultAction, request: &Request) -> Option<Response> {
    // MSDK answers echo msdkExtInfo and follow Accept-Encrypt, faults included.
    let msdk_answer =
        |error: MsdkError| msdk::injected_answer(request.headers(), request.uri().query(), &error);
    let response = match (action, platform) {
        (FaultAction::Lost, _) => return None,
        (FaultAction::Busy, Platform::MiniGame) => MiniGameError::Busy.into_response(),
        (FaultAction::Busy, Platform::OpenApi) => OpenApiError::Busy.into_response(),
        (FaultAction::Busy, Platform::Msdk) => msdk_answer(MsdkError::Busy),
        (FaultAction::Code(code), Platform::MiniGame) => {
            MiniGameError::Injected(code).into_response()
        }
        (FaultAction::Code(code), Platform::OpenApi) => {
            OpenApiError::Injected(code).into_response()
        }
        (FaultAction::Code(code), Platform::Msdk) => msdk_answer(MsdkError::Injected(code)),
        (FaultAction::HttpStatus(status, None), _) => (status, status.to_string()).into_response(),
        (FaultAction::HttpStatus(status, Some(seconds)), _) => (
            status,
            [(header::RETRY_AFTER, seconds.to_string())],
            status.to_string(),
        )
            .into_response(),
        // What a misconfigured proxy in front of the platform would answer.
        (FaultAction::Malformed, _) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html")],
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
        )
            .into_response(),
        (FaultAction::DropConnection, _) => drop_connection(),
    };
    Some(response)
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
        assert!(matches!(
            faults.add(spec(json!({"path": "/auth/check_token", "lost": true}))),
            Err(FaultSpecError::LostUnsupported(_))
        ));
        assert!(matches!(
            faults.add(spec(json!({"lost": true, "busy": true}))),
            Err(FaultSpecError::ConflictingActions)
        ));
    }

    #[test]
    fn msdk_paths_are_stored_canonical() {
        let faults = Faults::default();
        let id = faults
            .add(spec(json!({"path": "/wxoauth/check_token/", "busy": true})))
            .unwrap();
        assert_eq!(faults.list()[0]["path"], "/auth/check_token");
        assert_eq!(faults.take("/auth/check_token").unwrap().id, id);
    }

    #[test]
    fn lost_waits_for_an_interface_with_is_lost() {
        let faults = Faults::default();
        let lost = faults.add(spec(json!({"lost": true}))).unwrap();
        assert!(faults.take("/auth/verify_login").is_none());
        assert!(faults.take("/api/getToken").is_none());
        assert_eq!(faults.take("/relation/qqprofile").unwrap().id, lost);
        assert!(faults.take("/relation/qqprofile").is_none());
    }
}
