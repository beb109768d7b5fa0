//! MSDK's codes. Seed 002 refers to an error table it does not include; these
//! are the codes of the public MSDK documentation (`ERRORS.md`). `-10000` and
//! `-20000` carry the Mobile QQ / WeChat code inside, and `err_type` says what
//! to do when the code itself does not.

use std::collections::HashMap;

use crate::{
    errors::{CodeRow, lookup, range, row},
    proto::ErrorReason,
};

pub const CODES: &[CodeRow] = &[
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

/// What an MSDK `err_type` tells the caller to do.
fn err_type_reason(err_type: Option<i64>) -> Option<ErrorReason> {
    match err_type? {
        1 => Some(ErrorReason::UpstreamBusy),
        2 => Some(ErrorReason::UserReauthRequired),
        3 => Some(ErrorReason::UserTokenInvalid),
        _ => None,
    }
}

/// The reason of an MSDK answer: route overrides; the platform code inside
/// `-10000` (Mobile QQ) and `-20000` (WeChat) answers; the table; `err_type`.
pub fn classify(
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
            _ => err_type_reason(err_type).unwrap_or(ErrorReason::QqPlatformError),
        },
        -20000 => match plat_code {
            Some(40001 | 40014 | 41001 | 42001) => ErrorReason::UserTokenInvalid,
            _ => err_type_reason(err_type).unwrap_or(ErrorReason::WechatPlatformError),
        },
        _ => lookup(CODES, ret)
            .or_else(|| err_type_reason(err_type))
            .unwrap_or(ErrorReason::UpstreamUnknownCode),
    }
}
