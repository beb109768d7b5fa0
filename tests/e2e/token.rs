//! The app access token: single-flight fetches, refresh ahead of expiry, one
//! refresh and one retry when the platform refuses it, never a loop.

use std::time::Duration;

use futures::future::join_all;
use gamegate::proto::SetUserStorageRequest;
use serde_json::json;
use tonic::Code;

use crate::common::{Harness, alice_stores, demo, expect_error};

const SET_PATH: &str = "/api/openDataContext/set_user_storage";

fn request(key: &str) -> SetUserStorageRequest {
    alice_stores(key, "1")
}

async fn burst(harness: &Harness, calls: usize) {
    let results = join_all((0..calls).map(|i| {
        let mut storage = harness.storage();
        async move {
            storage
                .set_user_storage(request(&format!("k{}", i % 100)))
                .await
        }
    }))
    .await;
    for result in results {
        result.expect("every call of the burst succeeds");
    }
}

#[tokio::test]
async fn concurrent_calls_fetch_one_token_at_a_time() {
    let harness = Harness::start().await;
    // Tokens live 1 s; old ones die as soon as a new one is issued.
    harness
        .sandbox_config(json!({"token_ttl_secs": 1, "token_grace_secs": 0}))
        .await;

    burst(&harness, 50).await;
    assert_eq!(harness.get_token_calls(demo::MINIGAME_APPID).await, 1);

    // The token has expired: the whole burst waits for one fetch.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    burst(&harness, 50).await;
    assert_eq!(harness.get_token_calls(demo::MINIGAME_APPID).await, 2);
}

#[tokio::test]
async fn the_token_is_refreshed_ahead_of_expiry_by_one_task() {
    let harness = Harness::start().await;
    harness
        .sandbox_config(json!({"token_ttl_secs": 5, "token_grace_secs": 60}))
        .await;
    burst(&harness, 1).await;
    // Past the refresh point (4/5 of the lifetime: 4 s), well before expiry (5 s):
    // calls are served with the current token while exactly one background
    // fetch replaces it. (The exact timing is the store's unit tests' job, under
    // a paused clock; here the window is wide enough for a loaded machine.)
    tokio::time::sleep(Duration::from_millis(4200)).await;
    burst(&harness, 40).await;
    wait_for_token_calls(&harness, 2).await;
    // The replacement is used from then on.
    burst(&harness, 10).await;
    assert_eq!(harness.get_token_calls(demo::MINIGAME_APPID).await, 2);
}

/// Waits (at most 5 s) until the sandbox has issued `expected` tokens.
async fn wait_for_token_calls(harness: &Harness, expected: u64) {
    let started = std::time::Instant::now();
    loop {
        let calls = harness.get_token_calls(demo::MINIGAME_APPID).await;
        assert!(
            calls <= expected,
            "{calls} getToken calls, expected {expected}"
        );
        if calls == expected {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still {calls} getToken calls after 5 s, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_token_fetch_slower_than_every_callers_deadline_still_completes_once() {
    let harness = Harness::start().await;
    // Every getToken takes 400 ms; every caller gives up after 150 ms. A fetch
    // that ran in its caller's task died with it, and no call ever succeeded.
    harness
        .fault(json!({"path": "/api/getToken", "latency_ms": 400, "times": 0}))
        .await;
    let mut storage = harness.storage();
    let started = std::time::Instant::now();
    let mut timed_out = 0;
    loop {
        let mut call = tonic::Request::new(request("k"));
        call.set_timeout(Duration::from_millis(150));
        match storage.set_user_storage(call).await {
            Ok(_) => break,
            // tonic's channel enforces the same timeout on the client side;
            // gamegate answers a little before it, but on a loaded machine
            // the client's own timer can still win that race. Either way the
            // caller gave up: what this test is about is the single fetch.
            Err(status) if status.code() == Code::Cancelled && is_client_timeout(&status) => {
                timed_out += 1;
            }
            Err(status) => {
                let error = crate::common::rich(&status);
                assert_eq!(
                    (error.code, error.reason.as_str()),
                    (Code::DeadlineExceeded, "UPSTREAM_TIMEOUT"),
                    "{status:?}"
                );
                timed_out += 1;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no call succeeded in 10 s"
        );
    }
    assert!(timed_out >= 1, "the first caller cannot have waited 400 ms");
    assert_eq!(
        harness.get_token_calls(demo::MINIGAME_APPID).await,
        1,
        "one fetch, whatever the callers' deadlines"
    );
    // Later calls use the token at once.
    burst(&harness, 5).await;
    assert_eq!(harness.get_token_calls(demo::MINIGAME_APPID).await, 1);
}

/// The client's own deadline fired (tonic's transport says "Timeout
/// expired"), not an answer from gamegate.
fn is_client_timeout(status: &tonic::Status) -> bool {
    status.details().is_empty() && status.message() == "Timeout expired"
}

#[tokio::test]
async fn a_refused_token_is_refreshed_once_and_the_call_retried_once() {
    let harness = Harness::start().await;
    burst(&harness, 1).await;
    assert_eq!(harness.get_token_calls(demo::MINIGAME_APPID).await, 1);

    // The platform forgets the token: concurrent calls fail with -100050019, one
    // of them refreshes, every one retries once and succeeds.
    harness.revoke_tokens(demo::MINIGAME_APPID).await;
    burst(&harness, 20).await;
    assert_eq!(harness.get_token_calls(demo::MINIGAME_APPID).await, 2);
    let requests = harness.requests(SET_PATH).await;
    assert_eq!(
        requests,
        1 + 20 + 20,
        "each call of the burst was sent at most twice"
    );
}

#[tokio::test]
async fn a_token_refused_twice_is_an_error_not_a_loop() {
    let harness = Harness::start().await;
    harness
        .fault(json!({"path": SET_PATH, "code": -100050019, "times": 0}))
        .await;
    let error = expect_error(
        harness.storage().set_user_storage(request("k")).await,
        Code::Unavailable,
        "ACCESS_TOKEN_INVALID",
    );
    assert_eq!(error.metadata["upstream_code"], "-100050019");
    assert_eq!(harness.requests(SET_PATH).await, 2);
    assert_eq!(harness.get_token_calls(demo::MINIGAME_APPID).await, 2);
}

#[tokio::test]
async fn a_wrong_app_secret_is_reported_without_the_secret() {
    let harness = Harness::start_with(|config| {
        let platform = config.qq_minigame.as_mut().unwrap();
        platform.apps.get_mut(demo::MINIGAME_APPID).unwrap().secret =
            secrecy::SecretString::from("wrong-secret-value");
    })
    .await;
    let error = expect_error(
        harness.storage().set_user_storage(request("k")).await,
        Code::Internal,
        "GATEWAY_CREDENTIALS_REJECTED",
    );
    assert_eq!(error.metadata["upstream_code"], "40001");
    assert_eq!(error.metadata["endpoint"], "/api/getToken");
    let everything = format!("{} {:?}", error.message, error.metadata);
    assert!(!everything.contains("wrong-secret-value"), "{everything}");
    assert_eq!(harness.requests(SET_PATH).await, 0);
}
