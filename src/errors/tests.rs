//! The disposition table over every `ErrorReason` the proto declares, and
//! `to_status` reading it for every kind of error.

use std::{io, time::Duration};

use tonic::Code;
use tonic_types::StatusExt;

use super::*;
use crate::proto::DESCRIPTOR_POOL;

/// Every value of `gamegate.v1.ErrorReason`, read from the descriptor (so that a
/// value added to the proto is covered without touching this test).
fn every_reason() -> Vec<ErrorReason> {
    let descriptor = DESCRIPTOR_POOL
        .get_enum_by_name("gamegate.v1.ErrorReason")
        .expect("common.proto declares ErrorReason");
    let reasons: Vec<ErrorReason> = descriptor
        .values()
        .map(|value| {
            ErrorReason::try_from(value.number())
                .unwrap_or_else(|_| panic!("{} is not in the generated enum", value.name()))
        })
        .collect();
    assert!(reasons.len() > 40, "{} reasons", reasons.len());
    reasons
}

fn upstream_error(reason: ErrorReason) -> GatewayError {
    GatewayError::Upstream(UpstreamError {
        platform: Platform::Msdk,
        endpoint: "/relation/qqfriends_detail".into(),
        code: -1,
        message: "what the platform said".into(),
        reason,
        metadata: vec![("err_type", "1".into())],
    })
}

/// The standard details a status carries, as a caller decodes them.
struct Decoded {
    code: Code,
    reason: String,
    domain: String,
    retry_after: Option<Duration>,
    bad_request_fields: Vec<String>,
    quota_failures: usize,
}

fn decode(status: &Status) -> Decoded {
    let details = status.get_error_details();
    let info = details
        .error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo: {status:?}"));
    Decoded {
        code: status.code(),
        reason: info.reason.clone(),
        domain: info.domain.clone(),
        retry_after: details.retry_info().and_then(|r| r.retry_delay),
        bad_request_fields: details
            .bad_request()
            .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
            .unwrap_or_default(),
        quota_failures: details.quota_failure().map_or(0, |q| q.violations.len()),
    }
}

#[test]
fn every_reason_has_one_coherent_disposition() {
    for reason in every_reason() {
        let row = disposition::of_reason(reason);
        let name = reason.info_reason();
        if row.transient {
            assert_eq!(
                row.code,
                Code::Unavailable,
                "{name}: transient is unavailable"
            );
            assert!(row.retry_after.is_some(), "{name}: transient tells when");
        }
        if row.retry_after.is_some() {
            assert!(
                // ABORTED: a concurrent call with the same idempotency key.
                matches!(
                    row.code,
                    Code::Unavailable | Code::ResourceExhausted | Code::Aborted
                ),
                "{name}: RetryInfo only where waiting helps, not on {:?}",
                row.code
            );
        }
        // A message too large is gRPC's RESOURCE_EXHAUSTED, with no quota in it.
        assert_eq!(
            row.detail == Detail::QuotaFailure,
            row.code == Code::ResourceExhausted && reason != ErrorReason::RequestTooLarge,
            "{name}: QuotaFailure goes with RESOURCE_EXHAUSTED"
        );
        if let Detail::BadRequest { field } = row.detail {
            assert_eq!(row.code, Code::InvalidArgument, "{name}");
            assert!(!field.is_empty(), "{name}");
        }
        assert_ne!(row.code, Code::Ok, "{name}");
    }
}

#[test]
fn a_platform_answer_is_reported_as_its_reasons_row_says() {
    for reason in every_reason() {
        let error = upstream_error(reason);
        let row = disposition::of_reason(reason);
        let status = error.to_status();
        let decoded = decode(&status);
        let name = reason.info_reason();
        assert_eq!(decoded.code, row.code, "{name}");
        assert_eq!(decoded.reason, name);
        assert_eq!(decoded.domain, "msdk.qq.com", "{name}");
        assert_eq!(decoded.retry_after, row.retry_after, "{name}");
        assert_eq!(error.is_transient(), row.transient, "{name}");
        match row.detail {
            Detail::None => {
                assert!(decoded.bad_request_fields.is_empty(), "{name}");
                assert_eq!(decoded.quota_failures, 0, "{name}");
            }
            Detail::BadRequest { field } => {
                assert_eq!(
                    decoded.bad_request_fields,
                    vec![field.to_string()],
                    "{name}"
                )
            }
            Detail::QuotaFailure => assert_eq!(decoded.quota_failures, 1, "{name}"),
        }
    }
}

/// One error of every kind gamegate finds itself.
fn gateway_errors() -> Vec<GatewayError> {
    let transport = upstream::Error::new(
        upstream::ErrorKind::Connect(std::sync::Arc::new(io::Error::from(
            io::ErrorKind::ConnectionRefused,
        ))),
        upstream::Progress::default(),
    );
    let endpoint = || "/api/openDataContext/set_user_storage".to_string();
    vec![
        GatewayError::InvalidRequest {
            violations: vec![Violation {
                field: "kv_list".into(),
                description: "holds 129 items; at most 128 are allowed".into(),
                reason: ErrorReason::TooManyKvPairs,
            }],
        },
        GatewayError::AppUnknown {
            platform: "qq_minigame",
            app_id: "999".into(),
        },
        GatewayError::CallerUnauthenticated,
        GatewayError::AppNotAllowed {
            caller: "lobby".into(),
            app_id: "999".into(),
        },
        GatewayError::AppCredentialMissing {
            app_id: "100703379".into(),
            credential: "appkey".into(),
        },
        GatewayError::PlatformNotConfigured("msdk"),
        GatewayError::Timeout {
            platform: Platform::QqMinigame,
            endpoint: endpoint(),
            budget: Duration::from_millis(300),
            transport: None,
        },
        GatewayError::Timeout {
            platform: Platform::QqMinigame,
            endpoint: endpoint(),
            budget: Duration::from_millis(300),
            transport: Some(TransportFailure {
                cause: Cause::TimeoutAfterSend,
                host: "api.q.qq.com".into(),
            }),
        },
        GatewayError::Unreachable {
            platform: Platform::QqMinigame,
            endpoint: endpoint(),
            source: transport,
        },
        GatewayError::HttpStatus {
            platform: Platform::QqMinigame,
            endpoint: endpoint(),
            status: 503,
            retry_after: None,
        },
        GatewayError::HttpStatus {
            platform: Platform::QqMinigame,
            endpoint: endpoint(),
            status: 404,
            retry_after: None,
        },
        GatewayError::Malformed {
            platform: Platform::QqMinigame,
            endpoint: endpoint(),
            detail: "the answer is not json".into(),
            transport: None,
        },
        GatewayError::Malformed {
            platform: Platform::QqMinigame,
            endpoint: endpoint(),
            detail: "the connection closed before the answer was complete".into(),
            transport: Some(TransportFailure {
                cause: Cause::ClosedEarly,
                host: "api.q.qq.com".into(),
            }),
        },
        GatewayError::FetchAborted {
            platform: "qq_minigame",
            cause: "the runtime is shutting down",
        },
        GatewayError::RequestTooLarge { limit: Some(65536) },
        GatewayError::RequestUnreadable {
            detail: "not protobuf".into(),
        },
        GatewayError::CompressionUnsupported {
            encoding: "gzip".into(),
        },
        GatewayError::MethodUnknown {
            path: "/gamegate.v1.StorageService/Nope".into(),
        },
        GatewayError::Overloaded { limit: 4096 },
        GatewayError::IdempotencyKeyInvalid {
            problem: "is empty",
        },
        GatewayError::IdempotencyKeyInUse,
        GatewayError::IdempotencyKeyReused {
            window: Duration::from_secs(86_400),
        },
        GatewayError::IdempotencyOutcomeUnknown,
        GatewayError::OutcomeUnknown {
            platform: Platform::QqMinigame,
            endpoint: "/api/openDataContext/set_user_storage".into(),
            what: "reset after the request was written".into(),
            transport: None,
        },
        GatewayError::CircuitOpen {
            platform: Platform::Msdk,
            retry_after: Duration::from_millis(2500),
        },
        GatewayError::RateLimited {
            platform: Platform::QqMinigame,
            limit: "app:1112345678".into(),
            retry_after: Duration::from_millis(40),
            platform_asked: false,
        },
    ]
}

#[test]
fn errors_found_by_gamegate_read_the_same_table() {
    for error in gateway_errors() {
        let row = error.disposition();
        let status = error.to_status();
        let decoded = decode(&status);
        assert_eq!(decoded.code, row.code, "{error}");
        assert_eq!(decoded.reason, error.reason().info_reason(), "{error}");
        // The platform's domain only where the platform sent an HTTP answer.
        let answered = matches!(
            error,
            GatewayError::HttpStatus { .. } | GatewayError::Malformed { .. }
        );
        assert_eq!(decoded.domain == GATEWAY_DOMAIN, !answered, "{error}");
        assert_eq!(decoded.domain, error.domain(), "{error}");
        // The reason's delay, or the error's own where it knows one.
        assert_eq!(decoded.retry_after, error.retry_after(), "{error}");
        assert_eq!(
            decoded.retry_after.is_some(),
            row.retry_after.is_some(),
            "{error}"
        );
        let quota_failures = usize::from(row.detail == Detail::QuotaFailure);
        assert_eq!(decoded.quota_failures, quota_failures, "{error}");
        if !matches!(error, GatewayError::InvalidRequest { .. }) {
            assert_eq!(row, disposition::of_reason(error.reason()), "{error}");
        }
    }
}

#[test]
fn a_request_refused_locally_is_a_bad_request_whatever_its_reason() {
    let error = &gateway_errors()[0];
    let decoded = decode(&error.to_status());
    assert_eq!(decoded.code, Code::InvalidArgument);
    assert_eq!(decoded.reason, "TOO_MANY_KV_PAIRS");
    assert_eq!(decoded.bad_request_fields, vec!["kv_list"]);
    assert_eq!(decoded.quota_failures, 0);
    // The platform's 87018 (stored pairs over the limit) is a full quota.
    let decoded = decode(&upstream_error(ErrorReason::TooManyKvPairs).to_status());
    assert_eq!(decoded.code, Code::ResourceExhausted);
}

#[test]
fn what_errors_md_prescribes_for_the_retry_cases() {
    use ErrorReason as R;
    let row = disposition::of_reason;
    assert_eq!(
        row(R::UpstreamBusy).retry_after,
        Some(Duration::from_secs(1))
    );
    assert!(row(R::UpstreamBusy).transient);
    assert_eq!(
        row(R::UpstreamUnreachable).retry_after,
        Some(Duration::from_millis(500))
    );
    assert!(row(R::UpstreamHttpError).transient);
    assert!(!row(R::UpstreamHttpRefused).transient);
    assert_eq!(row(R::UpstreamHttpRefused).code, Code::Internal);
    // gamegate never retries what a later token or the rate limit decides.
    assert!(!row(R::AccessTokenInvalid).transient);
    assert!(!row(R::UpstreamRateLimited).transient);
    assert_eq!(row(R::UpstreamTimeout).code, Code::DeadlineExceeded);
    assert_eq!(row(R::UpstreamTimeout).retry_after, None);
}

#[test]
fn idempotency_key_refusals_carry_what_the_caller_needs() {
    let gateway_errors = gateway_errors();
    let of = |reason: &str| {
        let error = gateway_errors
            .iter()
            .find(|error| error.reason().info_reason() == reason)
            .unwrap_or_else(|| panic!("no {reason} among gateway_errors()"));
        decode(&error.to_status())
    };
    let in_use = of("IDEMPOTENCY_KEY_IN_USE");
    assert_eq!(in_use.code, Code::Aborted);
    assert_eq!(in_use.retry_after, Some(Duration::from_secs(1)));
    for reason in ["IDEMPOTENCY_KEY_INVALID", "IDEMPOTENCY_KEY_REUSED"] {
        let decoded = of(reason);
        assert_eq!(decoded.code, Code::InvalidArgument, "{reason}");
        assert_eq!(
            decoded.bad_request_fields,
            vec!["idempotency-key"],
            "{reason}"
        );
        assert_eq!(decoded.retry_after, None, "{reason}");
    }
    // An outcome nobody knows: waiting does not tell it, so no RetryInfo.
    let unknown = of("IDEMPOTENCY_OUTCOME_UNKNOWN");
    assert_eq!(unknown.code, Code::Unknown);
    assert_eq!(unknown.retry_after, None);
}

fn refused(host: &str, written: bool) -> upstream::Error {
    upstream::Error::new(
        upstream::ErrorKind::Connect(std::sync::Arc::new(io::Error::from(
            io::ErrorKind::ConnectionRefused,
        ))),
        upstream::Progress {
            request_written: written,
            answer_started: false,
        },
    )
    .with_host(host.into())
}

#[test]
fn transport_failures_name_their_cause_and_host_in_metadata_and_message() {
    const ENDPOINT: &str = "/v3/user/get_dawanka_info";
    let unreachable = GatewayError::Unreachable {
        platform: Platform::QqOpenapi,
        endpoint: ENDPOINT.into(),
        source: refused("openapi.example.com:8443", false),
    };
    let timeout = GatewayError::Timeout {
        platform: Platform::QqOpenapi,
        endpoint: ENDPOINT.into(),
        budget: Duration::from_millis(300),
        transport: Some(TransportFailure {
            cause: Cause::TimeoutBeforeSend,
            host: "openapi.example.com".into(),
        }),
    };
    let malformed = GatewayError::Malformed {
        platform: Platform::QqOpenapi,
        endpoint: ENDPOINT.into(),
        detail: "the answer is not valid http/1.1: malformed answer head".into(),
        transport: Some(TransportFailure {
            cause: Cause::MalformedAnswer,
            host: "openapi.example.com".into(),
        }),
    };
    for (error, cause, host, message) in [
        (
            &unreachable,
            "connect_refused",
            "openapi.example.com:8443",
            "/v3/user/get_dawanka_info on openapi.example.com:8443 could not be reached: \
             connect_refused (cannot connect: connection refused)",
        ),
        (
            &timeout,
            "timeout_before_send",
            "openapi.example.com",
            "qq_openapi did not answer /v3/user/get_dawanka_info on openapi.example.com within \
             300 ms: timeout_before_send",
        ),
        (
            &malformed,
            "malformed_answer",
            "openapi.example.com",
            "/v3/user/get_dawanka_info on openapi.example.com answered something that is not its \
             documented json: malformed_answer (the answer is not valid http/1.1: malformed \
             answer head)",
        ),
    ] {
        assert_eq!(
            error.transport_cause().map(|(c, h)| (c.as_str(), h)),
            Some((cause, host)),
            "{error}"
        );
        assert_eq!(error.to_string(), message);
        let status = error.to_status();
        assert_eq!(status.message(), message);
        let details = status.get_error_details();
        let info = details.error_info().unwrap();
        assert_eq!(info.metadata["cause"], cause, "{error}");
        assert_eq!(info.metadata["host"], host, "{error}");
        assert_eq!(info.metadata["endpoint"], ENDPOINT, "{error}");
        // A malformed answer came from the platform; the others did not.
        let expected_domain = match error {
            GatewayError::Malformed { .. } => "openapi.minigame.qq.com",
            _ => GATEWAY_DOMAIN,
        };
        assert_eq!(info.domain, expected_domain, "{error}");
    }
    assert_eq!(unreachable.to_status().code(), Code::Unavailable);
    assert_eq!(timeout.to_status().code(), Code::DeadlineExceeded);
    // A read's malformed answer: the platform's trouble, worth a retry.
    assert_eq!(malformed.to_status().code(), Code::Unavailable);
}

#[test]
fn errors_without_a_transport_failure_carry_no_cause() {
    let endpoint = || "/v3/user/get_dawanka_info".to_string();
    for error in [
        // gamegate's own deadline timer ended the call.
        GatewayError::Timeout {
            platform: Platform::QqOpenapi,
            endpoint: endpoint(),
            budget: Duration::from_millis(300),
            transport: None,
        },
        // Valid HTTP whose body is not the documented JSON.
        GatewayError::Malformed {
            platform: Platform::QqOpenapi,
            endpoint: endpoint(),
            detail: "the answer is not json".into(),
            transport: None,
        },
        // A complete answer: not a transport failure.
        GatewayError::HttpStatus {
            platform: Platform::QqOpenapi,
            endpoint: endpoint(),
            status: 503,
            retry_after: None,
        },
        upstream_error(ErrorReason::UpstreamBusy),
    ] {
        assert_eq!(error.transport_cause(), None, "{error}");
        let metadata = error
            .to_status()
            .get_error_details()
            .error_info()
            .unwrap()
            .metadata
            .clone();
        assert!(
            !metadata.contains_key("cause") && !metadata.contains_key("host"),
            "{error}: {metadata:?}"
        );
    }
}

#[test]
fn cause_names_are_the_published_ones() {
    let names: Vec<&str> = Cause::ALL.iter().map(|cause| cause.as_str()).collect();
    assert_eq!(
        names,
        [
            "dns",
            "connect_refused",
            "connect_timeout",
            "tls",
            "reset",
            "closed_early",
            "timeout_before_send",
            "timeout_after_send",
            "malformed_answer",
        ]
    );
    for cause in Cause::ALL {
        assert_eq!(cause.to_string(), cause.as_str());
    }
}
