//! Errors of the gateway path and their one mapping to gRPC statuses with
//! standard error details (`ERRORS.md`): every status carries
//! `google.rpc.ErrorInfo`, plus `BadRequest`, `RetryInfo` or `QuotaFailure` where
//! they apply. Upstream codes become [`ErrorReason`]s through one table per
//! platform; a reason decides the gRPC code and the extra detail.

use std::{collections::HashMap, time::Duration};

use thiserror::Error;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::proto::{ErrorReason, Platform};

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

/// Everything that can go wrong on the gateway path.
#[derive(Debug, Error)]
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
    #[error("caller {caller} may not use app {app_id}")]
    AppNotAllowed { caller: String, app_id: String },
    #[error("app {app_id} has no {credential} configured in gamegate")]
    AppCredentialMissing { app_id: String, credential: String },
    #[error("platform {0} is not configured in gamegate")]
    PlatformNotConfigured(&'static str),
    #[error("{} did not answer {endpoint} within {} ms", platform_name(*.platform), .budget.as_millis())]
    Timeout {
        platform: Platform,
        endpoint: String,
        budget: Duration,
    },
    #[error("{endpoint} could not be reached")]
    Unreachable {
        platform: Platform,
        endpoint: String,
        // Never holds the URL: upstream URLs carry access tokens and openkeys.
        #[source]
        source: crate::platform::http::TransportError,
    },
    #[error("{endpoint} answered http status {status}")]
    HttpStatus {
        platform: Platform,
        endpoint: String,
        status: u16,
    },
    #[error("{endpoint} answered something that is not its documented json ({detail})")]
    Malformed {
        platform: Platform,
        endpoint: String,
        detail: String,
    },
    #[error("{} answered code {} on {}: {}", platform_name(.0.platform), .0.code, .0.endpoint, .0.message)]
    Upstream(UpstreamError),
}

fn first_description(violations: &[Violation]) -> String {
    violations
        .first()
        .map(|v| format!("{}: {}", v.field, v.description))
        .unwrap_or_default()
}

/// One row of a platform's error table: a code, or a range of codes.
pub struct CodeRow {
    pub first: i64,
    pub last: i64,
    pub reason: ErrorReason,
}

const fn row(code: i64, reason: ErrorReason) -> CodeRow {
    CodeRow {
        first: code,
        last: code,
        reason,
    }
}

const fn range(first: i64, last: i64, reason: ErrorReason) -> CodeRow {
    CodeRow {
        first,
        last,
        reason,
    }
}

/// QQ mini-game server API (seed 000) and its getToken interface.
pub const QQ_MINIGAME_CODES: &[CodeRow] = &[
    row(-1, ErrorReason::UpstreamBusy),
    row(-2, ErrorReason::KvListInvalid),
    row(-3, ErrorReason::AuthParamInvalid),
    row(-4, ErrorReason::AuthParamMissing),
    row(87016, ErrorReason::KvTooLong),
    row(87017, ErrorReason::StorageFull),
    row(87018, ErrorReason::TooManyKvPairs),
    row(87019, ErrorReason::KeyTooLong),
    row(-100050007, ErrorReason::SessionKeyInvalid),
    row(-100050019, ErrorReason::AccessTokenInvalid),
    // Codes of the access-token family shared with the WeChat-style server APIs.
    row(40001, ErrorReason::AccessTokenInvalid),
    row(40014, ErrorReason::AccessTokenInvalid),
    row(42001, ErrorReason::AccessTokenInvalid),
    row(45009, ErrorReason::UpstreamRateLimited),
    row(45011, ErrorReason::UpstreamRateLimited),
];

/// `GET /api/getToken`: here 40001 means the app secret is wrong.
pub const QQ_MINIGAME_TOKEN_CODES: &[CodeRow] = &[
    row(-1, ErrorReason::UpstreamBusy),
    row(40001, ErrorReason::GatewayCredentialsRejected),
    row(40002, ErrorReason::GatewayCredentialsRejected),
    row(40013, ErrorReason::GatewayCredentialsRejected),
    row(45009, ErrorReason::UpstreamRateLimited),
];

/// QQ Game OpenAPI v3 (seed 001).
pub const QQ_OPENAPI_CODES: &[CodeRow] = &[
    row(2000001, ErrorReason::AppidInvalid),
    row(2000002, ErrorReason::OpenidInvalid),
    row(2000003, ErrorReason::OpenkeyInvalidLength),
    row(2000004, ErrorReason::SignatureRejected),
    row(2000005, ErrorReason::OpenkeyInvalid),
    row(2000006, ErrorReason::SignatureRejected),
    row(2000007, ErrorReason::AuthenticationFailed),
    row(2000020, ErrorReason::AppidInvalid),
    row(2000021, ErrorReason::OpenidInvalid),
    row(2000022, ErrorReason::OpenkeyInvalid),
    row(2000023, ErrorReason::OpenkeyInvalid),
    row(2000024, ErrorReason::SignatureRejected),
    row(2000025, ErrorReason::AuthenticationFailed),
    row(2000030, ErrorReason::UpstreamBusy),
];

/// MSDK (seed 002 refers to an error table it does not include; the codes of
/// the public MSDK documentation, `ERRORS.md`). `-10000`/`-20000` and `err_type`
/// are resolved in [`classify_msdk`].
pub const MSDK_CODES: &[CodeRow] = &[
    row(-1, ErrorReason::UpstreamBusy),
    row(1, ErrorReason::MsdkEmptyResult),
    row(-303, ErrorReason::MsdkNoPermission),
    row(-304, ErrorReason::MsdkRequestRejected),
    row(-501, ErrorReason::MsdkRequestRejected),
    row(-502, ErrorReason::SignatureRejected),
    row(-503, ErrorReason::UpstreamRateLimited),
    row(-504, ErrorReason::MsdkNoPermission),
    row(-505, ErrorReason::MsdkRequestRejected),
    row(-506, ErrorReason::MsdkRequestRejected),
    row(-901, ErrorReason::GuestNotAllowed),
    range(-1999, -1000, ErrorReason::MsdkClientError),
    range(-9999, -2000, ErrorReason::MsdkServerError),
];

/// The reason of an upstream code: the route's own overrides first, then the
/// platform's table; codes nobody knows are `UPSTREAM_UNKNOWN_CODE`.
pub fn classify(
    table: &[CodeRow],
    overrides: &HashMap<i64, ErrorReason>,
    code: i64,
) -> ErrorReason {
    overrides
        .get(&code)
        .copied()
        .or_else(|| lookup(table, code))
        .unwrap_or(ErrorReason::UpstreamUnknownCode)
}

fn lookup(table: &[CodeRow], code: i64) -> Option<ErrorReason> {
    table
        .iter()
        .find(|r| (r.first..=r.last).contains(&code))
        .map(|r| r.reason)
}

/// What an MSDK `err_type` tells the caller to do.
fn msdk_err_type_reason(err_type: Option<i64>) -> Option<ErrorReason> {
    match err_type? {
        1 => Some(ErrorReason::UpstreamBusy),
        2 => Some(ErrorReason::UserReauthRequired),
        3 => Some(ErrorReason::UserTokenInvalid),
        _ => None,
    }
}

/// The reason of an MSDK answer: route overrides; the platform code inside
/// `-10000` (Mobile QQ) and `-20000` (WeChat) answers; the table; `err_type`.
pub fn classify_msdk(
    overrides: &HashMap<i64, ErrorReason>,
    ret: i64,
    plat_code: Option<i64>,
    err_type: Option<i64>,
) -> ErrorReason {
    if let Some(reason) = overrides.get(&ret) {
        return *reason;
    }
    match ret {
        -10000 => match plat_code {
            Some(-73) => ErrorReason::UserReauthRequired,
            _ => msdk_err_type_reason(err_type).unwrap_or(ErrorReason::QqPlatformError),
        },
        -20000 => match plat_code {
            Some(40001 | 40014 | 41001 | 42001) => ErrorReason::UserTokenInvalid,
            _ => msdk_err_type_reason(err_type).unwrap_or(ErrorReason::WechatPlatformError),
        },
        _ => lookup(MSDK_CODES, ret)
            .or_else(|| msdk_err_type_reason(err_type))
            .unwrap_or(ErrorReason::UpstreamUnknownCode),
    }
}

/// The extra detail a reason carries besides ErrorInfo.
enum Extra {
    None,
    /// BadRequest naming this field (when the upstream does not say which).
    BadRequest(&'static str),
    Retry(Duration),
    Quota {
        retry: Option<Duration>,
    },
}

/// How an upstream reason is reported: gRPC code and extra detail.
fn upstream_disposition(reason: ErrorReason) -> (Code, Extra) {
    use ErrorReason as R;
    match reason {
        R::KvTooLong | R::KeyTooLong | R::KvListInvalid => {
            (Code::InvalidArgument, Extra::BadRequest("kv_list"))
        }
        R::InteractiveKeyInvalid => (Code::InvalidArgument, Extra::BadRequest("kv_list")),
        R::AppidInvalid => (Code::InvalidArgument, Extra::BadRequest("app_id")),
        R::OpenidInvalid => (Code::InvalidArgument, Extra::BadRequest("user.openid")),
        R::OpenkeyInvalidLength => (Code::InvalidArgument, Extra::BadRequest("user.openkey")),
        R::PfUnsupported => (Code::InvalidArgument, Extra::BadRequest("user.pf")),
        R::FieldRequired | R::FieldInvalid => (Code::InvalidArgument, Extra::None),
        R::SessionKeyInvalid
        | R::OpenkeyInvalid
        | R::AuthenticationFailed
        | R::UserReauthRequired
        | R::UserTokenInvalid => (Code::Unauthenticated, Extra::None),
        R::MsdkNoPermission => (Code::FailedPrecondition, Extra::None),
        R::GuestNotAllowed => (Code::PermissionDenied, Extra::None),
        R::MsdkEmptyResult => (Code::NotFound, Extra::None),
        R::MsdkRequestRejected => (Code::Internal, Extra::None),
        R::MsdkClientError => (Code::InvalidArgument, Extra::None),
        R::MsdkServerError => (Code::Unavailable, Extra::Retry(Duration::from_secs(1))),
        R::QqPlatformError | R::WechatPlatformError => (Code::Unknown, Extra::None),
        R::StorageFull | R::TooManyKvPairs => {
            (Code::ResourceExhausted, Extra::Quota { retry: None })
        }
        R::UpstreamRateLimited => (
            Code::ResourceExhausted,
            Extra::Quota {
                retry: Some(Duration::from_secs(1)),
            },
        ),
        R::UpstreamBusy | R::UpstreamUnreachable | R::GatewayUnavailable => {
            (Code::Unavailable, Extra::Retry(Duration::from_secs(1)))
        }
        // A fresh token normally fixes it; the caller may retry.
        R::AccessTokenInvalid => (Code::Unavailable, Extra::Retry(Duration::from_secs(1))),
        R::DawankaNoBonusLeft => (Code::FailedPrecondition, Extra::None),
        R::GatewayCredentialsRejected
        | R::SignatureRejected
        | R::AuthParamInvalid
        | R::AuthParamMissing
        | R::UpstreamMalformedResponse => (Code::Internal, Extra::None),
        R::UpstreamTimeout => (Code::DeadlineExceeded, Extra::None),
        R::UpstreamHttpError => (Code::Unavailable, Extra::Retry(Duration::from_secs(1))),
        R::AppUnknown | R::AppNotAllowed => (Code::PermissionDenied, Extra::None),
        R::CallerUnauthenticated => (Code::Unauthenticated, Extra::None),
        R::PlatformNotConfigured | R::AppCredentialMissing => {
            (Code::FailedPrecondition, Extra::None)
        }
        R::UpstreamUnknownCode | R::Unspecified => (Code::Unknown, Extra::None),
    }
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
            GatewayError::CallerUnauthenticated => ErrorReason::CallerUnauthenticated,
            GatewayError::AppCredentialMissing { .. } => ErrorReason::AppCredentialMissing,
            GatewayError::AppNotAllowed { .. } => ErrorReason::AppNotAllowed,
            GatewayError::PlatformNotConfigured(_) => ErrorReason::PlatformNotConfigured,
            GatewayError::Timeout { .. } => ErrorReason::UpstreamTimeout,
            GatewayError::Unreachable { .. } => ErrorReason::UpstreamUnreachable,
            GatewayError::HttpStatus { .. } => ErrorReason::UpstreamHttpError,
            GatewayError::Malformed { .. } => ErrorReason::UpstreamMalformedResponse,
            GatewayError::Upstream(upstream) => upstream.reason,
        }
    }

    /// Whether a retry of the same call may succeed (for idempotent routes).
    pub fn is_transient(&self) -> bool {
        match self {
            GatewayError::Unreachable { .. } => true,
            GatewayError::HttpStatus { status, .. } => *status >= 500,
            GatewayError::Upstream(upstream) => matches!(
                upstream.reason,
                ErrorReason::UpstreamBusy | ErrorReason::MsdkServerError
            ),
            _ => false,
        }
    }

    /// The status returned to the caller: code, one English sentence, details.
    pub fn to_status(&self) -> Status {
        let reason = self.reason();
        let mut metadata: HashMap<String, String> = HashMap::new();
        let mut details = ErrorDetails::new();
        let (code, domain) = match self {
            GatewayError::InvalidRequest { violations } => {
                for violation in violations {
                    details.add_bad_request_violation(&violation.field, &violation.description);
                }
                (Code::InvalidArgument, GATEWAY_DOMAIN)
            }
            GatewayError::AppUnknown { app_id, platform } => {
                metadata.insert("app_id".into(), app_id.clone());
                metadata.insert("platform".into(), (*platform).into());
                (Code::PermissionDenied, GATEWAY_DOMAIN)
            }
            GatewayError::CallerUnauthenticated => (Code::Unauthenticated, GATEWAY_DOMAIN),
            GatewayError::AppCredentialMissing { app_id, credential } => {
                metadata.insert("app_id".into(), app_id.clone());
                metadata.insert("credential".into(), credential.clone());
                (Code::FailedPrecondition, GATEWAY_DOMAIN)
            }
            GatewayError::AppNotAllowed { caller, app_id } => {
                metadata.insert("caller".into(), caller.clone());
                metadata.insert("app_id".into(), app_id.clone());
                (Code::PermissionDenied, GATEWAY_DOMAIN)
            }
            GatewayError::PlatformNotConfigured(platform) => {
                metadata.insert("platform".into(), (*platform).into());
                (Code::FailedPrecondition, GATEWAY_DOMAIN)
            }
            GatewayError::Timeout {
                endpoint, budget, ..
            } => {
                metadata.insert("endpoint".into(), endpoint.clone());
                metadata.insert("budget_ms".into(), budget.as_millis().to_string());
                (Code::DeadlineExceeded, GATEWAY_DOMAIN)
            }
            GatewayError::Unreachable { endpoint, .. } => {
                metadata.insert("endpoint".into(), endpoint.clone());
                details.set_retry_info(Some(Duration::from_millis(500)));
                (Code::Unavailable, GATEWAY_DOMAIN)
            }
            GatewayError::HttpStatus {
                endpoint, status, ..
            } => {
                metadata.insert("endpoint".into(), endpoint.clone());
                metadata.insert("http_status".into(), status.to_string());
                if *status >= 500 {
                    details.set_retry_info(Some(Duration::from_secs(1)));
                    (Code::Unavailable, GATEWAY_DOMAIN)
                } else {
                    (Code::Internal, GATEWAY_DOMAIN)
                }
            }
            GatewayError::Malformed { endpoint, .. } => {
                metadata.insert("endpoint".into(), endpoint.clone());
                (Code::Internal, GATEWAY_DOMAIN)
            }
            GatewayError::Upstream(upstream) => {
                metadata.insert("upstream_code".into(), upstream.code.to_string());
                metadata.insert("upstream_message".into(), upstream.message.clone());
                metadata.insert("endpoint".into(), upstream.endpoint.clone());
                for (key, value) in &upstream.metadata {
                    metadata.insert((*key).into(), value.clone());
                }
                let (code, extra) = upstream_disposition(reason);
                match extra {
                    Extra::None => {}
                    Extra::BadRequest(field) => {
                        details.add_bad_request_violation(field, upstream.message.clone());
                    }
                    Extra::Retry(delay) => {
                        details.set_retry_info(Some(delay));
                    }
                    Extra::Quota { retry } => {
                        details.add_quota_failure_violation(
                            format!(
                                "{}:{}",
                                platform_domain(upstream.platform),
                                upstream.endpoint
                            ),
                            upstream.message.clone(),
                        );
                        if retry.is_some() {
                            details.set_retry_info(retry);
                        }
                    }
                }
                (code, platform_domain(upstream.platform))
            }
        };
        details.set_error_info(reason.info_reason(), domain, metadata);
        Status::with_error_details(code, self.to_string(), details)
    }
}
