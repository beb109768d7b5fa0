//! ErrorInfo on every status, including those gRPC's own layer (tonic, the
//! health and reflection services) writes without one: a request over the size
//! limit, a bad frame, no message, an unknown service. `ERRORS.md`: no status
//! without an ErrorInfo. Only trailers-only responses (the status in the
//! headers) can carry such statuses here: every error of a unary call is one.
//! The ErrorInfo of a call's error also carries the call's `trace_id`
//! ([`with_trace_id`]), so that a caller can quote it; but an answer from an
//! idempotency record is sent as recorded ([`as_recorded`]): a repeat gets the
//! bytes of the first answer, the first call's trace id included.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetail, ErrorDetails, StatusExt};

use crate::{
    errors::{GATEWAY_DOMAIN, GatewayError},
    metrics,
    proto::ErrorReason,
};

const GRPC_STATUS: &str = "grpc-status";
const GRPC_DETAILS: &str = "grpc-status-details-bin";

/// `response` with an ErrorInfo added to its status when it is an error
/// without one. `request_limit`: the size limit the request was read under,
/// for tonic's "message too large" (OUT_OF_RANGE, which gRPC names
/// RESOURCE_EXHAUSTED).
pub fn with_error_info<B>(
    mut response: http::Response<B>,
    request_limit: Option<usize>,
) -> http::Response<B> {
    let headers = response.headers();
    match headers.get(GRPC_STATUS) {
        None => return response,
        Some(code) if code.as_bytes() == b"0" => return response,
        Some(_) if headers.contains_key(GRPC_DETAILS) => return response,
        Some(_) => {}
    }
    let Some(status) = Status::from_header_map(headers) else {
        return response;
    };
    let completed = complete(&status, request_limit);
    let headers = response.headers_mut();
    headers.remove("grpc-message");
    if completed.add_header(headers).is_err() {
        tracing::debug!("a status could not be written as headers");
    }
    response
}

/// The status gamegate reports for one its gRPC layer wrote without details:
/// the same code (but RESOURCE_EXHAUSTED for a message too large, as gRPC
/// prescribes), with ErrorInfo.
fn complete(status: &Status, request_limit: Option<usize>) -> Status {
    match status.code() {
        Code::OutOfRange => GatewayError::RequestTooLarge {
            limit: request_limit,
        }
        .to_status(),
        code => {
            let reason = match code {
                // No such method, or (grpc.health.v1 Check) no such service.
                Code::Unimplemented | Code::NotFound => ErrorReason::MethodUnknown,
                _ => ErrorReason::RequestUnreadable,
            };
            let details =
                ErrorDetails::with_error_info(reason.info_reason(), GATEWAY_DOMAIN, HashMap::new());
            Status::with_error_details(code, status.message(), details)
        }
    }
}

/// How a call ended, as its response says, for the metrics: the code from
/// a trailers-only status (every error; a success's status is in its
/// trailers), and for an error its ErrorInfo reason, one of gamegate's.
pub fn outcome_of<B>(response: &http::Response<B>) -> metrics::RpcOutcome {
    let headers = response.headers();
    let replayed = headers.contains_key(super::idempotency::REPLAYED_METADATA);
    match headers.get(GRPC_STATUS) {
        None => outcome_of_status(None, replayed),
        Some(code) if code.as_bytes() == b"0" => outcome_of_status(None, replayed),
        Some(_) => match Status::from_header_map(headers) {
            Some(status) => outcome_of_status(Some(&status), replayed),
            None => metrics::RpcOutcome {
                code: super::access::code_name(Code::Unknown),
                reason: None,
                replayed,
            },
        },
    }
}

/// How a call ended, for the metrics: `status` when it failed (its code
/// and ErrorInfo reason), else OK. Connect's answers are no gRPC responses:
/// their adapter hands the status over itself.
pub fn outcome_of_status(status: Option<&Status>, replayed: bool) -> metrics::RpcOutcome {
    let Some(status) = status.filter(|status| status.code() != Code::Ok) else {
        return metrics::RpcOutcome {
            code: super::access::code_name(Code::Ok),
            reason: None,
            replayed,
        };
    };
    let reason = status.get_details_error_info().map(|info| {
        ErrorReason::from_str_name(&format!("ERROR_REASON_{}", info.reason))
            .map_or("OTHER", ErrorReason::info_reason)
    });
    metrics::RpcOutcome {
        code: super::access::code_name(status.code()),
        reason,
        replayed,
    }
}

/// The ErrorInfo metadata key of a call's trace id.
pub const TRACE_ID_METADATA: &str = "trace_id";

/// Marks, between the handler and [`with_trace_id`], a status that is an
/// idempotency record's; never sent.
const RECORDED_MARKER: &str = "gamegate-internal-recorded";

/// `answer`, an idempotency record's, to be sent exactly as recorded:
/// [`with_trace_id`] leaves its status alone.
pub fn as_recorded<T>(answer: Result<T, Status>) -> Result<T, Status> {
    answer.map_err(|mut status| {
        status.metadata_mut().insert(
            RECORDED_MARKER,
            tonic::metadata::MetadataValue::from_static("1"),
        );
        status
    })
}

/// `grpc-status`, looked up without parsing its name.
const GRPC_STATUS_NAME: http::HeaderName = http::HeaderName::from_static(GRPC_STATUS);

/// `response` with `trace_id` in the ErrorInfo metadata of its status, when
/// it is an error (trailers-only, with ErrorInfo: every error of a call by
/// then) without one, and not an idempotency record's ([`as_recorded`]).
/// Successes pass untouched, at the cost of one header lookup.
pub fn with_trace_id<B>(mut response: http::Response<B>, trace_id: &str) -> http::Response<B> {
    let headers = response.headers();
    match headers.get(GRPC_STATUS_NAME) {
        None => return response,
        Some(code) if code.as_bytes() == b"0" => return response,
        Some(_) => {}
    }
    if response.headers_mut().remove(RECORDED_MARKER).is_some() {
        return response;
    }
    let Some(status) = Status::from_header_map(response.headers()) else {
        return response;
    };
    let Some(traced) = status_with_trace_id(&status, trace_id) else {
        return response;
    };
    let headers = response.headers_mut();
    headers.remove("grpc-message");
    if traced.add_header(headers).is_err() {
        tracing::debug!("a status could not be written as headers");
    }
    response
}

/// `status` as the caller gets it over a protocol that is not gRPC (Connect):
/// [`with_trace_id`]'s rule for a status rather than a response. An
/// idempotency record's ([`as_recorded`]) is sent as recorded, without its
/// marker; any other gets `trace_id` in its ErrorInfo.
pub fn for_caller(mut status: Status, trace_id: &str) -> Status {
    if status.metadata_mut().remove(RECORDED_MARKER).is_some() {
        return status;
    }
    status_with_trace_id(&status, trace_id).unwrap_or(status)
}

/// `status` with `trace_id` in its ErrorInfo metadata; `None` when it has no
/// ErrorInfo or already carries a trace id.
pub fn status_with_trace_id(status: &Status, trace_id: &str) -> Option<Status> {
    let mut details = status.get_error_details_vec();
    let info = details.iter_mut().find_map(|detail| match detail {
        ErrorDetail::ErrorInfo(info) => Some(info),
        _ => None,
    })?;
    if info.metadata.contains_key(TRACE_ID_METADATA) {
        return None;
    }
    info.metadata
        .insert(TRACE_ID_METADATA.to_string(), trace_id.to_string());
    Some(Status::with_error_details_vec(
        status.code(),
        status.message(),
        details,
    ))
}

/// The gRPC status code of a response: a trailers-only status's, else OK
/// (a unary call's errors are all trailers-only).
pub fn grpc_code<B>(response: &http::Response<B>) -> i32 {
    response
        .headers()
        .get(GRPC_STATUS_NAME)
        .and_then(|code| code.to_str().ok()?.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason_of(response: &http::Response<()>) -> (Code, String) {
        let status = Status::from_header_map(response.headers()).expect("a status");
        let info = status
            .get_details_error_info()
            .expect("ErrorInfo on every status");
        assert_eq!(info.domain, GATEWAY_DOMAIN);
        (status.code(), info.reason)
    }

    fn tonic_status(status: Status) -> http::Response<()> {
        status.into_http()
    }

    #[test]
    fn tonic_statuses_get_error_info() {
        let too_large = with_error_info(
            tonic_status(Status::out_of_range(
                "Error, decoded message length too large",
            )),
            Some(4096),
        );
        assert_eq!(
            reason_of(&too_large),
            (Code::ResourceExhausted, "REQUEST_TOO_LARGE".into())
        );
        let missing = with_error_info(
            tonic_status(Status::internal("Missing request message.")),
            None,
        );
        assert_eq!(
            reason_of(&missing),
            (Code::Internal, "REQUEST_UNREADABLE".into())
        );
        let unknown = with_error_info(
            tonic_status(Status::not_found("service not registered")),
            None,
        );
        assert_eq!(
            reason_of(&unknown),
            (Code::NotFound, "METHOD_UNKNOWN".into())
        );
    }

    #[test]
    fn statuses_with_details_and_successes_are_left_alone() {
        let ours = GatewayError::CallerUnauthenticated.to_status();
        let response = with_error_info(tonic_status(ours), None);
        assert_eq!(
            reason_of(&response),
            (Code::Unauthenticated, "CALLER_UNAUTHENTICATED".into())
        );
        let ok = with_error_info(http::Response::new(()), None);
        assert!(ok.headers().is_empty());
    }

    #[test]
    fn an_errors_error_info_gets_the_trace_id_and_keeps_the_rest() {
        let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
        let overloaded = GatewayError::Overloaded { limit: 8 }.to_status();
        let before = overloaded.get_error_details();
        let response = with_trace_id(tonic_status(overloaded), trace_id);
        assert_eq!(grpc_code(&response), Code::ResourceExhausted as i32);
        let status = Status::from_header_map(response.headers()).unwrap();
        let details = status.get_error_details();
        let info = details.error_info().expect("ErrorInfo");
        assert_eq!(info.metadata[TRACE_ID_METADATA], trace_id);
        assert_eq!(info.reason, before.error_info().unwrap().reason);
        assert_eq!(
            details.retry_info().and_then(|r| r.retry_delay),
            before.retry_info().and_then(|r| r.retry_delay),
        );
        assert!(details.retry_info().is_some(), "RetryInfo kept");
        let ok = with_trace_id(http::Response::new(()), trace_id);
        assert!(ok.headers().is_empty());
        assert_eq!(grpc_code(&ok), 0);
    }

    #[test]
    fn a_recorded_status_is_sent_as_recorded() {
        let recorded = GatewayError::Overloaded { limit: 8 }.to_status();
        let details = recorded.details().to_vec();
        let Err(marked) = as_recorded::<()>(Err(recorded)) else {
            unreachable!()
        };
        let response = with_trace_id(tonic_status(marked), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(
            !response.headers().contains_key(RECORDED_MARKER),
            "never sent"
        );
        let status = Status::from_header_map(response.headers()).unwrap();
        assert_eq!(status.details(), &details[..], "the same bytes");
    }
}
