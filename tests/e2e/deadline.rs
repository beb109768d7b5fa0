//! Every upstream call is bounded by min(caller deadline, platform budget).

use std::time::{Duration, Instant};

use gamegate::proto::GetDawankaInfoRequest;
use serde_json::json;
use tonic::Code;

use crate::common::{Harness, expect_error};

const INFO_PATH: &str = "/v3/user/get_dawanka_info";

fn info_request() -> GetDawankaInfoRequest {
    crate::common::super_player_dawanka_info()
}

#[tokio::test]
async fn a_caller_deadline_shorter_than_the_platform_ends_the_call_in_time() {
    let harness = Harness::start().await;
    harness
        .fault(json!({"path": INFO_PATH, "latency_ms": 3000}))
        .await;
    let mut request = tonic::Request::new(info_request());
    request.set_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let result = harness.dawanka().get_dawanka_info(request).await;
    let elapsed = started.elapsed();
    let error = expect_error(result, Code::DeadlineExceeded, "UPSTREAM_TIMEOUT");
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_millis(800),
        "answered after {elapsed:?}"
    );
    assert_eq!(error.metadata["endpoint"], INFO_PATH);
}

#[tokio::test]
async fn the_platform_budget_bounds_calls_without_a_deadline() {
    let harness = Harness::start_with(|config| {
        config.qq_openapi.as_mut().unwrap().budget_ms = 200;
    })
    .await;
    harness
        .fault(json!({"path": INFO_PATH, "latency_ms": 3000}))
        .await;
    let started = Instant::now();
    let result = harness.dawanka().get_dawanka_info(info_request()).await;
    let elapsed = started.elapsed();
    let error = expect_error(result, Code::DeadlineExceeded, "UPSTREAM_TIMEOUT");
    assert_eq!(error.metadata["budget_ms"], "200");
    assert!(
        elapsed >= Duration::from_millis(190) && elapsed < Duration::from_millis(700),
        "answered after {elapsed:?}"
    );
}
