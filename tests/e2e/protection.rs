//! Protecting the platforms and telling the truth about failures, through a
//! real gamegate and sandbox: a read whose connection is lost after the
//! platform read it (retried, then UNAVAILABLE), HTTP 429 with `Retry-After`
//! (RESOURCE_EXHAUSTED, and the app held back), a burst beyond a configured
//! bucket (answered by gamegate, the platform sees no excess call), and a
//! platform that fails and recovers (the circuit opens, fails calls fast,
//! probes, and closes).

use std::time::{Duration, Instant};

use gamegate::config::{CircuitConfig, RateSpec};
use serde_json::json;
use tonic::Code;

use crate::common::{Harness, expect_error, super_player_dawanka_info};

const INFO_PATH: &str = "/v3/user/get_dawanka_info";
const OPENAPI_DOMAIN: &str = "openapi.minigame.qq.com";

#[tokio::test]
async fn a_read_whose_connection_is_lost_after_it_was_read_is_retried_then_unavailable() {
    let harness = Harness::start().await;
    let mut dawanka = harness.dawanka();
    // Once: the retry on a new connection gets the answer.
    harness
        .fault(json!({"path": INFO_PATH, "drop_connection": true}))
        .await;
    dawanka
        .get_dawanka_info(super_player_dawanka_info())
        .await
        .expect("the read is sent again and answered");
    assert_eq!(harness.requests(INFO_PATH).await, 2);

    // Every time: a bounded number of attempts, then UNAVAILABLE with
    // RetryInfo (a read is safe to repeat), found by gamegate.
    harness
        .fault(json!({"path": INFO_PATH, "drop_connection": true, "times": 0}))
        .await;
    let error = expect_error(
        dawanka.get_dawanka_info(super_player_dawanka_info()).await,
        Code::Unavailable,
        "UPSTREAM_UNREACHABLE",
    );
    assert!(error.retry_delay().is_some());
    assert_eq!(error.domain, "gamegate");
    assert_eq!(error.metadata["cause"], "closed_early");
    assert_eq!(
        harness.requests(INFO_PATH).await,
        2 + 3,
        "three attempts, no more"
    );
}

#[tokio::test]
async fn http_429_is_resource_exhausted_with_its_retry_after_and_holds_the_app_back() {
    let harness = Harness::start().await;
    let mut dawanka = harness.dawanka();
    harness
        .fault(json!({"path": INFO_PATH, "http_status": 429, "retry_after_s": 2}))
        .await;
    let started = Instant::now();
    let error = expect_error(
        dawanka.get_dawanka_info(super_player_dawanka_info()).await,
        Code::ResourceExhausted,
        "UPSTREAM_RATE_LIMITED",
    );
    assert_eq!(error.domain, OPENAPI_DOMAIN, "the platform answered");
    assert_eq!(error.retry_delay(), Some(Duration::from_secs(2)));
    assert!(error.has_quota_failure());
    assert_eq!(error.metadata["http_status"], "429");
    assert_eq!(harness.requests(INFO_PATH).await, 1, "a 429 is not retried");

    // The app's next calls wait out the platform's two seconds in gamegate.
    let held = expect_error(
        dawanka.get_dawanka_info(super_player_dawanka_info()).await,
        Code::ResourceExhausted,
        "GATEWAY_RATE_LIMITED",
    );
    assert_eq!(held.domain, "gamegate");
    let delay = held.retry_delay().expect("RetryInfo");
    assert!(
        delay <= Duration::from_secs(2) && delay + started.elapsed() >= Duration::from_millis(1900),
        "{delay:?}"
    );
    assert_eq!(harness.requests(INFO_PATH).await, 1, "nothing sent");
}

#[tokio::test]
async fn a_burst_beyond_the_apps_bucket_is_answered_by_gamegate_alone() {
    let harness = Harness::start_with(|config| {
        config.qq_openapi.as_mut().unwrap().rate_limits.per_app = Some(RateSpec {
            rate_per_s: 0.5,
            burst: 3,
        });
    })
    .await;
    let calls = (0..10).map(|_| {
        let mut dawanka = harness.dawanka();
        async move { dawanka.get_dawanka_info(super_player_dawanka_info()).await }
    });
    let outcomes = futures::future::join_all(calls).await;
    let (answered, refused): (Vec<_>, Vec<_>) = outcomes.into_iter().partition(Result::is_ok);
    assert_eq!(
        (answered.len(), refused.len()),
        (3, 7),
        "the burst, then none"
    );
    for refusal in refused {
        let error = expect_error(refusal, Code::ResourceExhausted, "GATEWAY_RATE_LIMITED");
        assert_eq!(error.domain, "gamegate");
        assert!(error.has_quota_failure());
        assert_eq!(
            error.metadata["limit"],
            format!("app:{}", crate::common::demo::OPENAPI_APPID)
        );
        let delay = error.retry_delay().expect("when a call is let through");
        assert!(
            delay > Duration::ZERO && delay <= Duration::from_secs(2),
            "{delay:?}"
        );
    }
    assert_eq!(
        harness.requests(INFO_PATH).await,
        3,
        "the platform saw no call beyond the bucket"
    );
}

#[tokio::test]
async fn a_failing_platform_opens_its_circuit_and_closes_it_when_probes_succeed() {
    let harness = Harness::start_with(|config| {
        config.qq_openapi.as_mut().unwrap().circuit = CircuitConfig {
            min_calls: 4,
            failure_ratio: 0.5,
            open_ms: 400,
            probes: 2,
            ..CircuitConfig::default()
        };
    })
    .await;
    let mut dawanka = harness.dawanka();
    harness
        .fault(json!({"path": INFO_PATH, "http_status": 503, "times": 0}))
        .await;
    for _ in 0..4 {
        expect_error(
            dawanka.get_dawanka_info(super_player_dawanka_info()).await,
            Code::Unavailable,
            "UPSTREAM_HTTP_ERROR",
        );
    }
    let sent = harness.requests(INFO_PATH).await;

    // Open: calls fail at once, with the time of the next probe.
    let started = Instant::now();
    let error = expect_error(
        dawanka.get_dawanka_info(super_player_dawanka_info()).await,
        Code::Unavailable,
        "UPSTREAM_CIRCUIT_OPEN",
    );
    assert!(started.elapsed() < Duration::from_millis(200), "fast");
    assert_eq!(error.domain, "gamegate");
    assert_eq!(error.metadata["platform"], "qq_openapi");
    let delay = error.retry_delay().expect("RetryInfo: the next probe");
    assert!(delay <= Duration::from_millis(400), "{delay:?}");
    assert_eq!(harness.requests(INFO_PATH).await, sent, "nothing sent");

    // The platform recovers; after the open time the probes go through and
    // close the circuit.
    harness.clear_faults().await;
    tokio::time::sleep(delay + Duration::from_millis(50)).await;
    for _ in 0..2 {
        dawanka
            .get_dawanka_info(super_player_dawanka_info())
            .await
            .expect("a probe succeeds");
    }
    for _ in 0..5 {
        dawanka
            .get_dawanka_info(super_player_dawanka_info())
            .await
            .expect("closed again");
    }
    assert_eq!(harness.requests(INFO_PATH).await, sent + 7);
}

#[tokio::test]
async fn a_failed_probe_opens_the_circuit_again() {
    let harness = Harness::start_with(|config| {
        config.qq_openapi.as_mut().unwrap().circuit = CircuitConfig {
            min_calls: 2,
            open_ms: 200,
            probes: 1,
            ..CircuitConfig::default()
        };
    })
    .await;
    let mut dawanka = harness.dawanka();
    harness
        .fault(json!({"path": INFO_PATH, "http_status": 502, "times": 0}))
        .await;
    for _ in 0..2 {
        expect_error(
            dawanka.get_dawanka_info(super_player_dawanka_info()).await,
            Code::Unavailable,
            "UPSTREAM_HTTP_ERROR",
        );
    }
    expect_error(
        dawanka.get_dawanka_info(super_player_dawanka_info()).await,
        Code::Unavailable,
        "UPSTREAM_CIRCUIT_OPEN",
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    // The probe fails: open again, for twice as long.
    expect_error(
        dawanka.get_dawanka_info(super_player_dawanka_info()).await,
        Code::Unavailable,
        "UPSTREAM_HTTP_ERROR",
    );
    let error = expect_error(
        dawanka.get_dawanka_info(super_player_dawanka_info()).await,
        Code::Unavailable,
        "UPSTREAM_CIRCUIT_OPEN",
    );
    let delay = error.retry_delay().expect("RetryInfo");
    assert!(delay > Duration::from_millis(250), "{delay:?}");
}
