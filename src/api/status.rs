//! ErrorInfo on every status, including those gRPC's own layer (tonic, the
//! health and reflection services) writes without one: a request over the size
//! limit, a bad frame, no message, an unknown service. `ERRORS.md`: no status
//! without an ErrorInfo. Only trailers-only responses (the status in the
//! headers) can carry such statuses here: every error of a unary call is one.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{
    errors::{GATEWAY_DOMAIN, GatewayError},
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
}
