//! One row per [`ErrorReason`]: the gRPC code it is reported with, whether a
//! read that failed with it may be sent again by gamegate, the `RetryInfo` delay
//! the caller is told, and the extra detail it carries. `to_status`, the retry
//! policy and the tests all read this table; nothing else decides these.
//!
//! The one rule outside the table: a request gamegate refuses itself, before
//! any upstream call, is a bad request ([`LOCAL_VIOLATION`]) whatever limit it
//! broke. The same reason reported by the platform can mean more: 128 pairs in
//! one call is a malformed request, the platform's 87018 (the user's stored
//! pairs are over its limit) is a full quota.

use std::time::Duration;

use tonic::Code;

use crate::proto::ErrorReason;

/// The extra standard detail of a status, besides ErrorInfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    None,
    /// `BadRequest` naming this field with the platform's message (the
    /// platform does not say which field it refused).
    BadRequest {
        field: &'static str,
    },
    /// `QuotaFailure` naming the platform and endpoint whose quota is full.
    QuotaFailure,
}

/// How one reason is reported and handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disposition {
    pub code: Code,
    /// A read that failed with this reason may be sent again at once by
    /// gamegate (the failure is transient and says nothing about the request).
    pub transient: bool,
    /// The `RetryInfo` delay told to the caller; `None`: no `RetryInfo`, the
    /// same call will not succeed by waiting.
    pub retry_after: Option<Duration>,
    pub detail: Detail,
}

const fn plain(code: Code) -> Disposition {
    Disposition {
        code,
        transient: false,
        retry_after: None,
        detail: Detail::None,
    }
}

const fn bad_request(field: &'static str) -> Disposition {
    Disposition {
        detail: Detail::BadRequest { field },
        ..plain(Code::InvalidArgument)
    }
}

/// Unavailable for now; the caller may retry after `delay`, and gamegate
/// itself may retry a read at once when `transient`.
const fn unavailable(delay: Duration, transient: bool) -> Disposition {
    Disposition {
        transient,
        retry_after: Some(delay),
        ..plain(Code::Unavailable)
    }
}

const fn quota(retry_after: Option<Duration>) -> Disposition {
    Disposition {
        retry_after,
        detail: Detail::QuotaFailure,
        ..plain(Code::ResourceExhausted)
    }
}

const ONE_SECOND: Duration = Duration::from_secs(1);
/// A connection that failed is usually replaced at once.
const RECONNECT: Duration = Duration::from_millis(500);
/// In-flight calls end within milliseconds to a platform's budget.
const OVERLOAD_BACKOFF: Duration = Duration::from_millis(200);

/// The field `BadRequest` names for the idempotency-key reasons: the metadata
/// key, not a field of the message.
pub const IDEMPOTENCY_KEY_FIELD: &str = "idempotency-key";

/// What every request gamegate refuses itself is: INVALID_ARGUMENT, with a
/// `BadRequest` that lists each violation it found.
pub const LOCAL_VIOLATION: Disposition = plain(Code::InvalidArgument);

/// The row of `reason`.
pub const fn of_reason(reason: ErrorReason) -> Disposition {
    use ErrorReason as R;
    match reason {
        // The request as sent breaks a documented format or limit.
        R::FieldRequired | R::FieldInvalid | R::MsdkClientError => plain(Code::InvalidArgument),
        R::KvTooLong | R::KeyTooLong | R::KvListInvalid | R::InteractiveKeyInvalid => {
            bad_request("kv_list")
        }
        R::AppidInvalid => bad_request("app_id"),
        R::OpenidInvalid => bad_request("user.openid"),
        R::OpenkeyInvalidLength => bad_request("user.openkey"),
        R::PfUnsupported => bad_request("user.pf"),

        // The end user's credential: the player logs in again; no retry.
        R::SessionKeyInvalid
        | R::SessionLoginRequired
        | R::LoginCodeInvalid
        | R::OpenkeyInvalid
        | R::AuthenticationFailed
        | R::UserReauthRequired
        | R::UserTokenInvalid => plain(Code::Unauthenticated),

        // The calling game server.
        R::CallerUnauthenticated => plain(Code::Unauthenticated),
        R::AppUnknown | R::AppNotAllowed | R::GuestNotAllowed => plain(Code::PermissionDenied),

        // The app's configuration or permissions, in gamegate or at the platform.
        R::PlatformNotConfigured
        | R::AppCredentialMissing
        | R::MsdkNoPermission
        | R::DawankaNoBonusLeft => plain(Code::FailedPrecondition),

        R::MsdkEmptyResult => plain(Code::NotFound),

        // Quotas: full until something changes, or rate limits that pass.
        R::StorageFull | R::TooManyKvPairs => quota(None),
        R::UpstreamRateLimited => quota(Some(ONE_SECOND)),

        // Passing trouble at the platform or on the way to it.
        R::UpstreamBusy | R::MsdkServerError | R::UpstreamHttpError => {
            unavailable(ONE_SECOND, true)
        }
        R::UpstreamUnreachable => unavailable(RECONNECT, true),
        R::GatewayUnavailable => unavailable(ONE_SECOND, false),
        // The platform refused the app's token after gamegate already refreshed
        // it once: a later call normally gets a fresh one.
        R::AccessTokenInvalid => unavailable(ONE_SECOND, false),

        R::UpstreamTimeout => plain(Code::DeadlineExceeded),

        // What gamegate's gRPC layer refuses before the request is decoded or
        // routed: the codes gRPC prescribes.
        R::RequestTooLarge => plain(Code::ResourceExhausted),
        R::RequestUnreadable => plain(Code::InvalidArgument),
        R::MethodUnknown | R::CompressionUnsupported => plain(Code::Unimplemented),
        // Another replica, or this one shortly, takes the call.
        R::GatewayOverloaded => quota(Some(OVERLOAD_BACKOFF)),

        // gamegate's own credentials, signatures or requests were refused, or
        // the platform's answer cannot be read: a problem for an operator.
        R::GatewayCredentialsRejected
        | R::SignatureRejected
        | R::AuthParamInvalid
        | R::AuthParamMissing
        | R::MsdkRequestRejected
        | R::UpstreamHttpRefused => plain(Code::Internal),
        // An answer that is not valid HTTP or not the documented JSON: the
        // platform's (or a proxy's) trouble, never a bug of gamegate's; the
        // caller may try again later, but the same answer a moment later is
        // likely the same (a misconfigured proxy, an oversized list), so
        // gamegate does not resend it at once. (For a write the outcome is
        // unknown: `UpstreamOutcomeUnknown`.)
        R::UpstreamMalformedResponse => unavailable(ONE_SECOND, false),
        // A write that may have been applied: nothing invites a retry.
        R::UpstreamOutcomeUnknown => plain(Code::Unknown),
        // Fail fast while the platform is failing; RetryInfo: the next probe.
        R::UpstreamCircuitOpen => unavailable(ONE_SECOND, false),
        // gamegate's own rate limit; RetryInfo: when a call is let through.
        R::GatewayRateLimited => quota(Some(ONE_SECOND)),

        R::QqPlatformError | R::WechatPlatformError | R::UpstreamUnknownCode | R::Unspecified => {
            plain(Code::Unknown)
        }

        // Idempotency keys of writes: the header is the caller's to fix...
        R::IdempotencyKeyInvalid | R::IdempotencyKeyReused => bad_request(IDEMPOTENCY_KEY_FIELD),
        // ...a call with the key is running: its outcome is there once it ends
        // (ABORTED: a concurrency conflict the caller resolves by retrying
        // the same call, as gRPC's status guide says)...
        R::IdempotencyKeyInUse => Disposition {
            retry_after: Some(ONE_SECOND),
            ..plain(Code::Aborted)
        },
        // ...or it died with the write maybe sent: waiting changes nothing.
        R::IdempotencyOutcomeUnknown => plain(Code::Unknown),
    }
}
