//! A gRPC status as the Connect protocol writes an error: the HTTP status the
//! spec maps its code to, and the JSON body
//! `{"code": "...", "message": "...", "details": [...]}`. The details are the
//! status's own (`grpc-status-details-bin` is a `google.rpc.Status` whose
//! details are `Any` messages): each `Any` becomes a Connect detail, `type`
//! its type URL without `type.googleapis.com/`, `value` its bytes in base64
//! without padding, and `debug` its JSON rendering, so that a Connect caller
//! reads the same ErrorInfo, BadRequest, RetryInfo and QuotaFailure a gRPC
//! caller decodes.

use base64::{Engine, engine::general_purpose::STANDARD_NO_PAD};
use http::StatusCode;
use prost::Message;
use prost_reflect::{DynamicMessage, SerializeOptions};
use serde_json::{Map, Value, json};
use tonic::{Code, Status};

use crate::proto;

/// The prefix of every type URL gamegate writes.
const TYPE_URL_PREFIX: &str = "type.googleapis.com/";

/// The Connect name of a code (`invalid_argument`); Connect spells
/// `CANCELLED` with one L.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "canceled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

/// The HTTP status of an error with `code`, as the Connect spec maps them.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        // 499, nginx's "client closed request": the spec's choice.
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
    }
}

/// The JSON body of `status`.
pub fn error_body(status: &Status) -> Value {
    let mut body = Map::new();
    body.insert("code".into(), json!(code_name(status.code())));
    if !status.message().is_empty() {
        body.insert("message".into(), json!(status.message()));
    }
    let details = details_of(status);
    if !details.is_empty() {
        body.insert("details".into(), Value::Array(details));
    }
    Value::Object(body)
}

/// The status's details as Connect details; none when it has none (or
/// they cannot be read, which gamegate's own never are).
fn details_of(status: &Status) -> Vec<Value> {
    if status.details().is_empty() {
        return Vec::new();
    }
    let Ok(decoded) = tonic_types::pb::Status::decode(status.details()) else {
        tracing::debug!("a status's details are not a google.rpc.Status");
        return Vec::new();
    };
    decoded
        .details
        .iter()
        .map(|any| {
            let type_name = any
                .type_url
                .strip_prefix(TYPE_URL_PREFIX)
                .unwrap_or(&any.type_url);
            let mut detail = Map::new();
            detail.insert("type".into(), json!(type_name));
            detail.insert("value".into(), json!(STANDARD_NO_PAD.encode(&any.value)));
            if let Some(debug) = debug_of(type_name, &any.value) {
                detail.insert("debug".into(), debug);
            }
            Value::Object(detail)
        })
        .collect()
}

/// A detail's JSON rendering, for people reading the body (the spec's
/// optional `debug`): decoded with the descriptor pool, which holds the
/// `google.rpc` details.
fn debug_of(type_name: &str, value: &[u8]) -> Option<Value> {
    let descriptor = proto::DESCRIPTOR_POOL.get_message_by_name(type_name)?;
    let message = DynamicMessage::decode(descriptor, value).ok()?;
    message
        .serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new())
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::GatewayError;

    #[test]
    fn an_error_is_its_code_message_and_every_detail() {
        let status = GatewayError::Overloaded { limit: 8 }.to_status();
        let body = error_body(&status);
        assert_eq!(body["code"], "resource_exhausted");
        assert_eq!(body["message"], status.message());
        let details = body["details"].as_array().expect("details");
        let types: Vec<&str> = details
            .iter()
            .map(|detail| detail["type"].as_str().unwrap())
            .collect();
        assert!(types.contains(&"google.rpc.ErrorInfo"), "{types:?}");
        assert!(types.contains(&"google.rpc.RetryInfo"), "{types:?}");
        let info = details
            .iter()
            .find(|detail| detail["type"] == "google.rpc.ErrorInfo")
            .unwrap();
        assert_eq!(info["debug"]["reason"], "GATEWAY_OVERLOADED");
        assert_eq!(info["debug"]["domain"], crate::errors::GATEWAY_DOMAIN);
        // The value is the ErrorInfo's bytes, base64 without padding.
        let value = info["value"].as_str().unwrap();
        assert!(!value.ends_with('='));
        let bytes = STANDARD_NO_PAD.decode(value).unwrap();
        let decoded = tonic_types::pb::ErrorInfo::decode(&bytes[..]).unwrap();
        assert_eq!(decoded.reason, "GATEWAY_OVERLOADED");
        assert_eq!(http_status(status.code()), StatusCode::TOO_MANY_REQUESTS);
    }

    #[test]
    fn codes_map_to_the_specs_http_statuses() {
        for (code, name, http) in [
            (Code::Cancelled, "canceled", 499),
            (Code::InvalidArgument, "invalid_argument", 400),
            (Code::DeadlineExceeded, "deadline_exceeded", 504),
            (Code::Unimplemented, "unimplemented", 501),
            (Code::Unauthenticated, "unauthenticated", 401),
            (Code::Unavailable, "unavailable", 503),
            (Code::FailedPrecondition, "failed_precondition", 400),
            (Code::Aborted, "aborted", 409),
        ] {
            assert_eq!(code_name(code), name);
            assert_eq!(http_status(code).as_u16(), http, "{name}");
        }
        let bare = error_body(&Status::new(Code::Internal, ""));
        assert_eq!(bare, json!({"code": "internal"}));
    }
}
