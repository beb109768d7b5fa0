//! QQ Game OpenAPI v3's codes (seed 001).

use crate::{
    errors::{CodeRow, row},
    proto::ErrorReason,
};

pub const CODES: &[CodeRow] = &[
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
