//! The QQ mini-game server API's codes (seed 000) and its getToken interface's.

use crate::{
    errors::{CodeRow, row},
    proto::ErrorReason,
};

/// The server API (storage, interactive data).
pub const CODES: &[CodeRow] = &[
    row(-1, ErrorReason::UpstreamBusy),
    row(-2, ErrorReason::KvListInvalid),
    row(-3, ErrorReason::AuthParamInvalid),
    row(-4, ErrorReason::AuthParamMissing),
    row(87016, ErrorReason::KvTooLong),
    row(87017, ErrorReason::StorageFull),
    row(87018, ErrorReason::TooManyKvPairs),
    row(87019, ErrorReason::KeyTooLong),
    row(-100050007, ErrorReason::SessionKeyInvalid),
    // jscode2session: the login code is unknown, used or expired.
    row(40029, ErrorReason::LoginCodeInvalid),
    row(-100050019, ErrorReason::AccessTokenInvalid),
    // Codes of the access-token family shared with the WeChat-style server APIs.
    row(40001, ErrorReason::AccessTokenInvalid),
    row(40014, ErrorReason::AccessTokenInvalid),
    row(42001, ErrorReason::AccessTokenInvalid),
    row(45009, ErrorReason::UpstreamRateLimited),
    row(45011, ErrorReason::UpstreamRateLimited),
];

/// `GET /api/getToken`: here 40001 means the app secret is wrong.
pub const TOKEN_CODES: &[CodeRow] = &[
    row(-1, ErrorReason::UpstreamBusy),
    row(40001, ErrorReason::GatewayCredentialsRejected),
    row(40002, ErrorReason::GatewayCredentialsRejected),
    row(40013, ErrorReason::GatewayCredentialsRejected),
    row(45009, ErrorReason::UpstreamRateLimited),
];

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::errors::{classify, disposition};

    #[test]
    fn login_codes_map_to_their_reasons() {
        let none = HashMap::new();
        assert_eq!(classify(CODES, &none, 40029), ErrorReason::LoginCodeInvalid);
        assert_eq!(
            classify(CODES, &none, 45011),
            ErrorReason::UpstreamRateLimited
        );
        assert_eq!(classify(CODES, &none, -1), ErrorReason::UpstreamBusy);
        let code = |reason| disposition::of_reason(reason).code;
        assert_eq!(
            code(ErrorReason::LoginCodeInvalid),
            tonic::Code::Unauthenticated
        );
        assert_eq!(
            code(ErrorReason::SessionLoginRequired),
            tonic::Code::Unauthenticated
        );
        assert!(!disposition::of_reason(ErrorReason::LoginCodeInvalid).transient);
    }
}
