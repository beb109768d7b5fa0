//! The shape of a platform's error table: codes, or ranges of codes, and the
//! reason each one means. The tables themselves live next to their platform's
//! client (`platform/*/codes.rs`).

use std::collections::HashMap;

use crate::proto::ErrorReason;

/// One row of a platform's error table: a code, or a range of codes.
pub struct CodeRow {
    pub first: i64,
    pub last: i64,
    pub reason: ErrorReason,
}

pub const fn row(code: i64, reason: ErrorReason) -> CodeRow {
    CodeRow {
        first: code,
        last: code,
        reason,
    }
}

pub const fn range(first: i64, last: i64, reason: ErrorReason) -> CodeRow {
    CodeRow {
        first,
        last,
        reason,
    }
}

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

/// The first row of `table` that holds `code`.
pub fn lookup(table: &[CodeRow], code: i64) -> Option<ErrorReason> {
    table
        .iter()
        .find(|r| (r.first..=r.last).contains(&code))
        .map(|r| r.reason)
}
