//! The access line: one `info` line per call that reached its route (target
//! `gamegate::access`), whatever its outcome, with what an on-call engineer
//! filters on: the RPC, the app, the caller, the platform and its code, the
//! gRPC code and ErrorInfo reason, the duration. Never a secret or a token;
//! the user's openid only when `log_openid` is on. Calls refused before their
//! message is read (a wrong token, an overload, a compressed message) are
//! counted by the rate-limited failure lines of `core::record` instead: a
//! flood of them must not write a line each. A message that cannot be read
//! (too large, not the method's) is answered by tonic's codec with its status
//! and leaves no line.

use std::{borrow::Cow, time::Duration};

use prost_reflect::{DynamicMessage, ReflectMessage, Value};
use tonic::Code;

use crate::{
    auth::RegisteredCaller,
    errors::{GatewayError, platform_name},
    plan::Route,
};

/// What a logged value taken from the caller's message may hold: app ids and
/// openids are far shorter, a hostile one is cut.
const MAX_LOGGED_CHARS: usize = 64;

/// How access lines are written, from the configuration.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccessLog {
    /// Whether the line names the user's openid.
    pub openid: bool,
}

/// One call, as its access line shows it.
pub struct AccessLine<'a> {
    pub route: &'a Route,
    pub request: &'a DynamicMessage,
    pub caller: Option<&'a RegisteredCaller>,
    /// How the call failed, if it did.
    pub outcome: Result<(), Failure<'a>>,
    /// The answer is a recorded one, replayed under the call's idempotency
    /// key: the platform was not called.
    pub replayed: bool,
    pub elapsed: Duration,
}

/// A failed call as its access line shows it: taken from the error, or from
/// the status of a replayed failure (whose error is another call's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure<'a> {
    pub code: Code,
    /// The ErrorInfo reason.
    pub reason: &'a str,
    /// The platform's code, when the platform answered one.
    pub upstream_code: Option<i64>,
}

impl Failure<'static> {
    /// `error`, answered with `code`.
    pub fn of(error: &GatewayError, code: Code) -> Self {
        Failure {
            code,
            reason: error.reason().info_reason(),
            upstream_code: match error {
                GatewayError::Upstream(upstream) => Some(upstream.code),
                _ => None,
            },
        }
    }
}

impl AccessLog {
    pub fn write(&self, line: &AccessLine<'_>) {
        let app = string_field(line.request, "app_id");
        let openid = self.openid.then(|| openid_of(line.request)).flatten();
        let (grpc_code, reason, upstream_code) = match &line.outcome {
            // The platform answered its success code.
            Ok(()) => (Code::Ok, None, Some(0)),
            Err(failure) => (failure.code, Some(failure.reason), failure.upstream_code),
        };
        tracing::info!(
            target: "gamegate::access",
            rpc = line.route.grpc_path.as_str(),
            app = app.as_deref().unwrap_or(""),
            caller = line.caller.map_or("", |caller| caller.name.as_str()),
            platform = platform_name(line.route.platform),
            upstream_code,
            grpc_code = code_name(grpc_code),
            reason,
            duration_ms = line.elapsed.as_secs_f64() * 1000.0,
            openid = openid.as_deref(),
            // Only on replays: the other lines stay as they were.
            replayed = line.replayed.then_some(true),
            "call"
        );
    }
}

/// A top-level string field, cut to [`MAX_LOGGED_CHARS`] (borrowed from the
/// message when the field is set).
fn string_field<'m>(message: &'m DynamicMessage, name: &str) -> Option<Cow<'m, str>> {
    let field = message.descriptor().get_field_by_name(name)?;
    let cut = |text: &str| -> usize {
        text.char_indices()
            .nth(MAX_LOGGED_CHARS)
            .map_or(text.len(), |(end, _)| end)
    };
    match message.get_field(&field) {
        Cow::Borrowed(Value::String(text)) => Some(Cow::Borrowed(&text[..cut(text)])),
        Cow::Owned(Value::String(mut text)) => {
            text.truncate(cut(&text));
            Some(Cow::Owned(text))
        }
        _ => None,
    }
}

/// The user's openid: a top-level `openid`, or the `user` message's.
fn openid_of(message: &DynamicMessage) -> Option<String> {
    if let Some(openid) = string_field(message, "openid") {
        return Some(openid.into_owned());
    }
    let field = message.descriptor().get_field_by_name("user")?;
    match &*message.get_field(&field) {
        Value::Message(user) => string_field(user, "openid").map(Cow::into_owned),
        _ => None,
    }
}

/// The code's name as gRPC spells it (`DEADLINE_EXCEEDED`).
pub(super) fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{plan::RouteTable, proto};

    fn storage_request(app_id: &str, openid: &str) -> DynamicMessage {
        let table = RouteTable::from_pool(&proto::DESCRIPTOR_POOL).expect("the routes compile");
        let route = table
            .get("/gamegate.v1.StorageService/SetUserStorage")
            .expect("the storage route");
        let mut message = DynamicMessage::new(route.method_descriptor.input());
        message.set_field_by_name("app_id", Value::String(app_id.into()));
        let mut user = DynamicMessage::new(
            message
                .descriptor()
                .get_field_by_name("user")
                .and_then(|field| field.kind().as_message().cloned())
                .expect("a user message"),
        );
        user.set_field_by_name("openid", Value::String(openid.into()));
        message.set_field_by_name("user", Value::Message(user));
        message
    }

    #[test]
    fn logged_fields_are_cut_to_64_characters_and_borrowed_when_set() {
        let long = "\u{4e2d}".repeat(100);
        let message = storage_request(&long, "A0B1C2D3");
        let app = string_field(&message, "app_id").expect("a string field");
        assert!(matches!(app, Cow::Borrowed(_)), "no copy of a set field");
        assert_eq!(app, "\u{4e2d}".repeat(MAX_LOGGED_CHARS));
        assert_eq!(openid_of(&message).as_deref(), Some("A0B1C2D3"));
        let short = storage_request("1112345678", "");
        assert_eq!(
            string_field(&short, "app_id").as_deref(),
            Some("1112345678")
        );
        assert_eq!(string_field(&short, "no_such_field"), None);
        let unset = DynamicMessage::new(short.descriptor());
        assert_eq!(string_field(&unset, "app_id").as_deref(), Some(""));
    }
}
