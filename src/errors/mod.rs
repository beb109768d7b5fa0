//! Errors of the gateway path and their one mapping to gRPC statuses with
//! standard error details (`ERRORS.md`): every status carries
//! `google.rpc.ErrorInfo`, plus `BadRequest`, `RetryInfo` or `QuotaFailure` where
//! they apply. Upstream codes become [`ErrorReason`]s through one table per
//! platform (next to each platform's client); a reason decides the gRPC code,
//! the extra detail and whether a read may be retried, in one table
//! ([`disposition`]).

mod code_table;
pub mod disposition;

use std::{collections::HashMap, time::Duration};

use thiserror::Error;
use tonic::Status;
use tonic_types::{ErrorDetails, StatusExt};

pub use self::{
    code_table::{CodeRow, classify, lookup, range, row},
    disposition::{Detail, Disposition},
};
use crate::{
    proto::{ErrorReason, Platform},
    upstream::{self, Cause},
};

/// The ErrorInfo domain of errors found by gamegate itself.
pub const GATEWAY_DOMAIN: &str = "gamegate";

/// The ErrorInfo domain of a platform: its production host.
pub fn platform_domain(platform: Platform) -> &'static str {
    match platform {
        Platform::QqMinigame => "api.q.qq.com",
        Platform::QqOpenapi => "openapi.minigame.qq.com",
        Platform::Msdk => "msdk.qq.com",
        Platform::Unspecified => GATEWAY_DOMAIN,
    }
}

/// A short name of a platform, for logs and messages.
pub fn platform_name(platform: Platform) -> &'static str {
    match platform {
        Platform::QqMinigame => "qq_minigame",
        Platform::QqOpenapi => "qq_openapi",
        Platform::Msdk => "msdk",
        Platform::Unspecified => "unspecified",
    }
}

/// One broken limit of the request, found before any upstream call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The field path in proto names, e.g. `kv_list[2].key`.
    pub field: String,
    pub description: String,
    pub reason: ErrorReason,
}

/// What the platform answered when it refused a call.
#[derive(Debug, Clone)]
pub struct UpstreamError {
    pub platform: Platform,
    /// The upstream path.
    pub endpoint: String,
    pub code: i64,
    pub message: String,
    pub reason: ErrorReason,
    /// What the platform adds (MSDK `err_type`, `plat_code`, ...).
    pub metadata: Vec<(&'static str, String)>,
}

/// The transport failure behind a [`GatewayError::Timeout`] or
/// [`GatewayError::Malformed`] (an [`GatewayError::Unreachable`] keeps its
/// [`upstream::Error`], which tells the same).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportFailure {
    pub cause: Cause,
    /// The platform's host (`host[:port]`): never a URL, a path or a query.
    pub host: String,
}

impl TransportFailure {
    /// The cause and host of `error`; `None` when it is not a transport failure
    /// (a complete answer with a non-2xx status).
    pub fn of(error: &upstream::Error) -> Option<Self> {
        error.cause().map(|cause| TransportFailure {
            cause,
            host: error.host().to_string(),
        })
    }
}

/// Everything that can go wrong on the gateway path. Cloneable, so that one
/// failed token fetch can be handed to every call that waited for it.
#[derive(Debug, Clone, Error)]
pub enum GatewayError {
    #[error("the request breaks a documented limit: {}", first_description(.violations))]
    InvalidRequest { violations: Vec<Violation> },
    #[error("no {platform} app with id {app_id} is configured in gamegate")]
    AppUnknown {
        platform: &'static str,
        app_id: String,
    },
    #[error("the call carries no valid caller token")]
    CallerUnauthenticated,
    /// The token is one caller's and the client certificate another's.
    #[error(
        "the call's token is caller {token_caller}'s and its client certificate caller \
         {certificate_caller}'s: send one caller's credentials"
    )]
    CallerIdentityConflict {
        token_caller: String,
        certificate_caller: String,
    },
    #[error("caller {caller} may not use app {app_id}")]
    AppNotAllowed { caller: String, app_id: String },
    #[error("app {app_id} has no {credential} configured in gamegate")]
    AppCredentialMissing { app_id: String, credential: String },
    /// A storage call without a session key for a user gamegate holds none for.
    #[error(
        "gamegate holds no session key for this user of app {app_id}: log the user in through \
         MiniGameLoginService.Code2Session, or send the session_key"
    )]
    SessionLoginRequired { app_id: String },
    #[error("platform {0} is not configured in gamegate")]
    PlatformNotConfigured(&'static str),
    #[error(
        "{} did not answer {endpoint}{} within {} ms{}",
        platform_name(*.platform),
        on_host(.transport.as_ref().map(|t| t.host.as_str())),
        .budget.as_millis(),
        .transport.as_ref().map(|t| format!(": {}", t.cause)).unwrap_or_default()
    )]
    Timeout {
        platform: Platform,
        endpoint: String,
        budget: Duration,
        /// `None` when gamegate's own deadline timer ended the call, not the
        /// upstream client.
        transport: Option<TransportFailure>,
    },
    #[error("{endpoint}{} could not be reached: {}", on_host(Some(.source.host())), unreachable_cause(.source))]
    Unreachable {
        platform: Platform,
        endpoint: String,
        // Never holds the URL: upstream URLs carry access tokens and openkeys.
        #[source]
        source: upstream::Error,
    },
    #[error("{endpoint} answered http status {status}{}", match .status {
        429 => " (too many requests)",
        _ => "",
    })]
    HttpStatus {
        platform: Platform,
        endpoint: String,
        status: u16,
        /// The answer's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    #[error(
        "{endpoint}{} answered something that is not its documented json{}",
        on_host(.transport.as_ref().map(|t| t.host.as_str())),
        match .transport {
            Some(transport) => format!(": {} ({detail})", transport.cause),
            None => format!(" ({detail})"),
        }
    )]
    Malformed {
        platform: Platform,
        endpoint: String,
        detail: String,
        /// `Some` when the answer was not valid HTTP or was cut (a transport
        /// failure), `None` when valid HTTP carried a body that is not the
        /// documented JSON.
        transport: Option<TransportFailure>,
    },
    #[error("{} answered code {} on {}: {}", platform_name(.0.platform), .0.code, .0.endpoint, .0.message)]
    Upstream(UpstreamError),
    /// The request message is larger than its RPC accepts.
    #[error("the request is larger than this rpc accepts{}", limit.map(|n| format!(" ({n} bytes)")).unwrap_or_default())]
    RequestTooLarge {
        /// `None` where gRPC's own layer refused it under a limit gamegate
        /// did not set (health, reflection).
        limit: Option<usize>,
    },
    /// The request cannot be read as the method's message.
    #[error("the request cannot be read as the method's message: {detail}")]
    RequestUnreadable { detail: String },
    #[error("the request is compressed ({encoding}); gamegate accepts uncompressed messages only")]
    CompressionUnsupported { encoding: String },
    /// No route serves this gRPC path.
    #[error("gamegate has no rpc {path}")]
    MethodUnknown { path: String },
    /// As many calls are in flight as gamegate is configured to hold.
    #[error("gamegate is at its limit of {limit} calls in flight; retry shortly")]
    Overloaded { limit: usize },
    /// A shared fetch (an app's access token) ended without a result.
    #[error("the {platform} access token fetch ended without a result: {cause}")]
    FetchAborted {
        platform: &'static str,
        cause: &'static str,
    },
    /// The `idempotency-key` metadata of a write is not a valid key.
    #[error("the idempotency-key metadata {problem}")]
    IdempotencyKeyInvalid { problem: &'static str },
    /// A call with the same key and request is still running somewhere.
    #[error(
        "a call with this idempotency-key is still running; retry after it ends to get its outcome"
    )]
    IdempotencyKeyInUse,
    /// The key was claimed for another request (or another RPC).
    #[error(
        "this idempotency-key was used with another request within the last {} s; give each \
         write its own key",
        .window.as_secs()
    )]
    IdempotencyKeyReused { window: Duration },
    /// The key's first call stopped without recording its outcome, after the
    /// write may have been sent.
    #[error(
        "the call that first used this idempotency-key stopped before its outcome was recorded: \
         the platform may have applied the write, and it is not sent again under this key"
    )]
    IdempotencyOutcomeUnknown,
    /// A write that may have reached the platform got no complete,
    /// well-formed answer: whether the platform applied it is unknown.
    #[error(
        "{endpoint}{} may have applied this write, but its outcome is unknown ({what}); sending \
         it again could apply it twice: check its effect with a read, or send writes with an \
         idempotency-key to make a retry safe",
        on_host(.transport.as_ref().map(|t| t.host.as_str()))
    )]
    OutcomeUnknown {
        platform: Platform,
        endpoint: String,
        /// What went wrong after the request was written, for the message.
        what: String,
        transport: Option<TransportFailure>,
    },
    /// The platform's circuit is open: recent calls failed, new ones fail fast
    /// until a probe succeeds.
    #[error(
        "{} is failing (most recent calls got no answer or an http 5xx): gamegate is holding \
         calls back for {} ms before it probes again",
        platform_name(*.platform),
        .retry_after.as_millis()
    )]
    CircuitOpen {
        platform: Platform,
        retry_after: Duration,
    },
    /// gamegate's own rate limit towards the platform is spent, or the
    /// platform asked the app to slow down.
    #[error(
        "gamegate's rate limit {limit} towards {} is spent{}; the next call is let through in {} ms",
        platform_name(*.platform),
        if *.platform_asked { " (the platform asked this app to slow down)" } else { "" },
        .retry_after.as_millis()
    )]
    RateLimited {
        platform: Platform,
        /// The limit's name: `platform`, `app:<app id>` or
        /// `path:<app id>:<upstream path>` (no secret: app ids are public).
        limit: String,
        retry_after: Duration,
        /// The platform answered a frequency-limit code: the app is held back
        /// for the time it implied.
        platform_asked: bool,
    },
}

/// ` on <host>` for a message, or nothing when the host is unknown.
fn on_host(host: Option<&str>) -> String {
    match host {
        Some(host) if !host.is_empty() => format!(" on {host}"),
        _ => String::new(),
    }
}

/// `<cause> (<what failed>)`, or what failed alone when it has no cause.
fn unreachable_cause(source: &upstream::Error) -> String {
    match source.cause() {
        Some(cause) => format!("{cause} ({source})"),
        None => source.to_string(),
    }
}

fn first_description(violations: &[Violation]) -> String {
    violations
        .first()
        .map(|v| format!("{}: {}", v.field, v.description))
        .unwrap_or_default()
}

impl GatewayError {
    /// The reason reported in ErrorInfo.
    pub fn reason(&self) -> ErrorReason {
        match self {
            GatewayError::InvalidRequest { violations } => violations
                .first()
                .map(|v| v.reason)
                .unwrap_or(ErrorReason::FieldInvalid),
            GatewayError::AppUnknown { .. } => ErrorReason::AppUnknown,
            GatewayError::CallerUnauthenticated | GatewayError::CallerIdentityConflict { .. } => {
                ErrorReason::CallerUnauthenticated
            }
            GatewayError::AppCredentialMissing { .. } => ErrorReason::AppCredentialMissing,
            GatewayError::AppNotAllowed { .. } => ErrorReason::AppNotAllowed,
            GatewayError::SessionLoginRequired { .. } => ErrorReason::SessionLoginRequired,
            GatewayError::PlatformNotConfigured(_) => ErrorReason::PlatformNotConfigured,
            GatewayError::Timeout { .. } => ErrorReason::UpstreamTimeout,
            GatewayError::Unreachable { .. } => ErrorReason::UpstreamUnreachable,
            GatewayError::HttpStatus { status: 429, .. } => ErrorReason::UpstreamRateLimited,
            GatewayError::HttpStatus { status, .. } if *status >= 500 => {
                ErrorReason::UpstreamHttpError
            }
            GatewayError::HttpStatus { .. } => ErrorReason::UpstreamHttpRefused,
            GatewayError::Malformed { .. } => ErrorReason::UpstreamMalformedResponse,
            GatewayError::Upstream(upstream) => upstream.reason,
            GatewayError::FetchAborted { .. } => ErrorReason::GatewayUnavailable,
            GatewayError::RequestTooLarge { .. } => ErrorReason::RequestTooLarge,
            GatewayError::RequestUnreadable { .. } => ErrorReason::RequestUnreadable,
            GatewayError::CompressionUnsupported { .. } => ErrorReason::CompressionUnsupported,
            GatewayError::MethodUnknown { .. } => ErrorReason::MethodUnknown,
            GatewayError::Overloaded { .. } => ErrorReason::GatewayOverloaded,
            GatewayError::IdempotencyKeyInvalid { .. } => ErrorReason::IdempotencyKeyInvalid,
            GatewayError::IdempotencyKeyInUse => ErrorReason::IdempotencyKeyInUse,
            GatewayError::IdempotencyKeyReused { .. } => ErrorReason::IdempotencyKeyReused,
            GatewayError::IdempotencyOutcomeUnknown => ErrorReason::IdempotencyOutcomeUnknown,
            GatewayError::OutcomeUnknown { .. } => ErrorReason::UpstreamOutcomeUnknown,
            GatewayError::CircuitOpen { .. } => ErrorReason::UpstreamCircuitOpen,
            GatewayError::RateLimited { .. } => ErrorReason::GatewayRateLimited,
        }
    }

    /// The ErrorInfo domain: the platform's whenever the platform sent an
    /// HTTP answer (a code, an HTTP error status, a malformed answer), else
    /// gamegate's (its own limits, no answer, an outcome it cannot know).
    pub fn domain(&self) -> &'static str {
        match self {
            GatewayError::Upstream(upstream) => platform_domain(upstream.platform),
            GatewayError::HttpStatus { platform, .. }
            | GatewayError::Malformed { platform, .. } => platform_domain(*platform),
            _ => GATEWAY_DOMAIN,
        }
    }

    /// The `RetryInfo` delay this error tells: its own (a `Retry-After`, a
    /// limit's next free slot, a circuit's next probe) where it knows one,
    /// else its reason's.
    pub fn retry_after(&self) -> Option<Duration> {
        let by_reason = self.disposition().retry_after;
        match self {
            GatewayError::HttpStatus {
                retry_after: Some(delay),
                ..
            } if by_reason.is_some() => Some(*delay),
            GatewayError::CircuitOpen { retry_after, .. }
            | GatewayError::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => by_reason,
        }
    }

    /// This error as the outcome of a write (an RPC that is not idempotent)
    /// to `endpoint`: when the request may have reached the platform and no
    /// complete, well-formed answer came back (a connection lost after the
    /// request was written, a cut or malformed answer), the outcome is
    /// unknown, and nothing may invite a retry. Errors of other endpoints
    /// (the app's token fetch before the write) are left as they are.
    pub fn of_write(self, endpoint: &str) -> GatewayError {
        match self {
            GatewayError::Unreachable {
                platform,
                endpoint: failed,
                source,
            } if failed == endpoint && source.may_have_reached_platform() => {
                let transport = TransportFailure::of(&source);
                GatewayError::OutcomeUnknown {
                    platform,
                    endpoint: failed,
                    what: unreachable_cause(&source),
                    transport,
                }
            }
            GatewayError::Malformed {
                platform,
                endpoint: failed,
                detail,
                transport,
            } if failed == endpoint => GatewayError::OutcomeUnknown {
                platform,
                endpoint: failed,
                what: match &transport {
                    Some(transport) => format!("{}: {detail}", transport.cause),
                    None => format!("the answer is not its documented json: {detail}"),
                },
                transport,
            },
            other => other,
        }
    }

    /// How this error is reported and whether a read may be retried: the
    /// reason's row of the table, except that a request gamegate refused
    /// itself is always a bad request, whatever limit it broke.
    pub fn disposition(&self) -> Disposition {
        match self {
            GatewayError::InvalidRequest { .. } => disposition::LOCAL_VIOLATION,
            _ => disposition::of_reason(self.reason()),
        }
    }

    /// The transport failure behind this error, with the platform host it
    /// happened with: for [`GatewayError::Unreachable`], and for
    /// [`GatewayError::Timeout`] and [`GatewayError::Malformed`] when the
    /// upstream client produced them. `None` for everything else (a timeout
    /// of gamegate's own deadline timer, an answer that is valid HTTP but not
    /// the documented JSON, an HTTP error status).
    pub fn transport_cause(&self) -> Option<(Cause, &str)> {
        match self {
            GatewayError::Unreachable { source, .. } => {
                source.cause().map(|cause| (cause, source.host()))
            }
            GatewayError::Timeout {
                transport: Some(transport),
                ..
            }
            | GatewayError::Malformed {
                transport: Some(transport),
                ..
            }
            | GatewayError::OutcomeUnknown {
                transport: Some(transport),
                ..
            } => Some((transport.cause, transport.host.as_str())),
            _ => None,
        }
    }

    /// Whether a read failed only because its pooled connection had been
    /// closed by the platform: it goes again at once, on a new connection.
    pub fn is_stale_connection(&self) -> bool {
        matches!(self, GatewayError::Unreachable { source, .. } if source.is_stale_connection())
    }

    /// Whether a retry of the same call may succeed (for idempotent routes).
    pub fn is_transient(&self) -> bool {
        self.disposition().transient
    }

    /// The status returned to the caller: code, one English sentence, details.
    pub fn to_status(&self) -> Status {
        let reason = self.reason();
        let disposition = self.disposition();
        let mut metadata: HashMap<String, String> = HashMap::new();
        let mut details = ErrorDetails::new();
        let domain = self.domain();
        let mut put = |key: &str, value: String| {
            metadata.insert(key.to_string(), value);
        };
        match self {
            GatewayError::InvalidRequest { violations } => {
                for violation in violations {
                    details.add_bad_request_violation(&violation.field, &violation.description);
                }
            }
            GatewayError::AppUnknown { app_id, platform } => {
                put("app_id", app_id.clone());
                put("platform", (*platform).into());
            }
            GatewayError::CallerUnauthenticated
            | GatewayError::CallerIdentityConflict { .. }
            | GatewayError::RequestUnreadable { .. }
            | GatewayError::IdempotencyKeyInUse
            | GatewayError::IdempotencyOutcomeUnknown => {}
            GatewayError::IdempotencyKeyInvalid { problem } => {
                if let Detail::BadRequest { field } = disposition.detail {
                    details.add_bad_request_violation(field, *problem);
                }
            }
            GatewayError::IdempotencyKeyReused { window } => {
                put("window_ms", window.as_millis().to_string());
                if let Detail::BadRequest { field } = disposition.detail {
                    details.add_bad_request_violation(
                        field,
                        "was used with another request within the window",
                    );
                }
            }
            GatewayError::RequestTooLarge { limit } => {
                if let Some(limit) = limit {
                    put("limit_bytes", limit.to_string());
                }
            }
            GatewayError::CompressionUnsupported { encoding } => {
                put("grpc_encoding", encoding.clone());
            }
            GatewayError::MethodUnknown { path } => {
                put("method", path.clone());
            }
            GatewayError::Overloaded { limit } => {
                details.add_quota_failure_violation(
                    "gamegate:calls_in_flight",
                    format!("at most {limit} calls in flight"),
                );
            }
            GatewayError::AppCredentialMissing { app_id, credential } => {
                put("app_id", app_id.clone());
                put("credential", credential.clone());
            }
            GatewayError::AppNotAllowed { caller, app_id } => {
                put("caller", caller.clone());
                put("app_id", app_id.clone());
            }
            GatewayError::SessionLoginRequired { app_id } => {
                put("app_id", app_id.clone());
            }
            GatewayError::PlatformNotConfigured(platform)
            | GatewayError::FetchAborted { platform, .. } => {
                put("platform", (*platform).into());
            }
            GatewayError::Timeout {
                endpoint, budget, ..
            } => {
                put("endpoint", endpoint.clone());
                put("budget_ms", budget.as_millis().to_string());
            }
            GatewayError::Unreachable { endpoint, .. }
            | GatewayError::Malformed { endpoint, .. } => {
                put("endpoint", endpoint.clone());
            }
            GatewayError::HttpStatus {
                platform,
                endpoint,
                status,
                ..
            } => {
                put("endpoint", endpoint.clone());
                put("http_status", status.to_string());
                if disposition.detail == Detail::QuotaFailure {
                    details.add_quota_failure_violation(
                        format!("{}:{endpoint}", platform_domain(*platform)),
                        format!("http status {status}"),
                    );
                }
            }
            GatewayError::Upstream(upstream) => {
                put("upstream_code", upstream.code.to_string());
                put("upstream_message", upstream.message.clone());
                put("endpoint", upstream.endpoint.clone());
                for (key, value) in &upstream.metadata {
                    put(key, value.clone());
                }
                match disposition.detail {
                    Detail::None => {}
                    Detail::BadRequest { field } => {
                        details.add_bad_request_violation(field, upstream.message.clone());
                    }
                    Detail::QuotaFailure => {
                        details.add_quota_failure_violation(
                            format!(
                                "{}:{}",
                                platform_domain(upstream.platform),
                                upstream.endpoint
                            ),
                            upstream.message.clone(),
                        );
                    }
                }
            }
            GatewayError::OutcomeUnknown { endpoint, .. } => {
                put("endpoint", endpoint.clone());
            }
            GatewayError::CircuitOpen { platform, .. } => {
                put("platform", platform_name(*platform).into());
            }
            GatewayError::RateLimited {
                platform,
                limit,
                platform_asked,
                ..
            } => {
                put("platform", platform_name(*platform).into());
                put("limit", limit.clone());
                details.add_quota_failure_violation(
                    format!("gamegate:rate_limit:{}:{limit}", platform_name(*platform)),
                    if *platform_asked {
                        "the platform asked this app to slow down".to_string()
                    } else {
                        "the configured rate towards the platform is spent".to_string()
                    },
                );
            }
        }
        if let Some((cause, host)) = self.transport_cause() {
            put("cause", cause.as_str().into());
            put("host", host.into());
        }
        if let Some(delay) = self.retry_after() {
            details.set_retry_info(Some(delay));
        }
        details.set_error_info(reason.info_reason(), domain, metadata);
        Status::with_error_details(disposition.code, self.to_string(), details)
    }
}

#[cfg(test)]
mod tests;
