//! StorageService end to end: happy paths, local limits (no upstream call),
//! and every documented upstream code.

use gamegate::proto::{
    InteractiveValue, KeyValue, MiniGameUser, RemoveUserStorageRequest,
    SetUserInteractiveDataRequest, SetUserStorageRequest,
};
use serde_json::json;
use tonic::Code;

use crate::common::{Harness, demo, expect_error};

const SET_PATH: &str = "/api/openDataContext/set_user_storage";
const INTERACTIVE_PATH: &str = "/api/setuserinteractivedata";

fn set_request(pairs: &[(&str, &str)]) -> SetUserStorageRequest {
    SetUserStorageRequest {
        app_id: demo::MINIGAME_APPID.into(),
        user: Some(MiniGameUser {
            openid: demo::MINIGAME_ALICE_OPENID.into(),
            session_key: demo::MINIGAME_ALICE_SESSION_KEY.into(),
        }),
        kv_list: pairs
            .iter()
            .map(|(key, value)| KeyValue {
                key: key.to_string(),
                value: value.to_string(),
            })
            .collect(),
    }
}

#[tokio::test]
async fn set_then_remove_user_storage() {
    let harness = Harness::start().await;
    let mut storage = harness.storage();
    storage
        .set_user_storage(set_request(&[
            ("score", "100"),
            ("gold", "3000"),
            ("名字", "小明"),
        ]))
        .await
        .expect("set_user_storage succeeds");
    let stored = harness
        .stored(demo::MINIGAME_APPID, demo::MINIGAME_ALICE_OPENID)
        .await;
    assert_eq!(
        stored["kv"],
        json!({"score": "100", "gold": "3000", "名字": "小明"})
    );

    storage
        .remove_user_storage(RemoveUserStorageRequest {
            app_id: demo::MINIGAME_APPID.into(),
            user: Some(MiniGameUser {
                openid: demo::MINIGAME_ALICE_OPENID.into(),
                session_key: demo::MINIGAME_ALICE_SESSION_KEY.into(),
            }),
            keys: vec!["gold".into(), "score".into()],
        })
        .await
        .expect("remove_user_storage succeeds");
    let stored = harness
        .stored(demo::MINIGAME_APPID, demo::MINIGAME_ALICE_OPENID)
        .await;
    assert_eq!(stored["kv"], json!({"名字": "小明"}));
    // One token for all three calls.
    assert_eq!(harness.get_token_calls(demo::MINIGAME_APPID).await, 1);
}

#[tokio::test]
async fn set_user_interactive_data() {
    let harness = Harness::start().await;
    harness
        .storage()
        .set_user_interactive_data(SetUserInteractiveDataRequest {
            app_id: demo::MINIGAME_APPID.into(),
            user: Some(MiniGameUser {
                openid: demo::MINIGAME_BOB_OPENID.into(),
                session_key: demo::MINIGAME_BOB_SESSION_KEY.into(),
            }),
            kv_list: vec![
                InteractiveValue {
                    key: "1".into(),
                    value: 1,
                },
                InteractiveValue {
                    key: "50".into(),
                    value: 1,
                },
            ],
        })
        .await
        .expect("setuserinteractivedata succeeds");
    let stored = harness
        .stored(demo::MINIGAME_APPID, demo::MINIGAME_BOB_OPENID)
        .await;
    assert_eq!(stored["interactive"], json!({"1": 1, "50": 1}));
}

#[tokio::test]
async fn documented_limits_are_checked_before_the_platform_is_called() {
    let harness = Harness::start().await;
    let mut storage = harness.storage();

    let long_key = "k".repeat(129);
    let error = expect_error(
        storage
            .set_user_storage(set_request(&[("ok", "1"), (&long_key, "1")]))
            .await,
        Code::InvalidArgument,
        "KEY_TOO_LONG",
    );
    assert_eq!(error.domain, "gamegate");
    assert_eq!(error.bad_request_fields(), vec!["kv_list[1].key"]);

    // 128 bytes of key is fine locally; key + value over 1024 is not.
    let key = "k".repeat(128);
    let value = "v".repeat(1024 - 128 + 1);
    let error = expect_error(
        storage
            .set_user_storage(set_request(&[(&key, &value)]))
            .await,
        Code::InvalidArgument,
        "KV_TOO_LONG",
    );
    assert_eq!(error.bad_request_fields(), vec!["kv_list[0]"]);

    let many: Vec<(String, String)> = (0..129).map(|i| (format!("k{i}"), "1".into())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let error = expect_error(
        storage.set_user_storage(set_request(&many)).await,
        Code::InvalidArgument,
        "TOO_MANY_KV_PAIRS",
    );
    assert_eq!(error.bad_request_fields(), vec!["kv_list"]);

    let error = expect_error(
        storage.set_user_storage(set_request(&[])).await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_eq!(error.bad_request_fields(), vec!["kv_list"]);

    // Without a session key (and no login through gamegate): UNAUTHENTICATED.
    let mut no_session = set_request(&[("score", "1")]);
    no_session.user.as_mut().unwrap().session_key.clear();
    expect_error(
        storage.set_user_storage(no_session).await,
        Code::Unauthenticated,
        "SESSION_LOGIN_REQUIRED",
    );

    let mut no_user = set_request(&[("score", "1")]);
    no_user.user = None;
    let error = expect_error(
        storage.set_user_storage(no_user).await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_eq!(error.bad_request_fields(), vec!["user"]);

    for bad_key in ["0", "51", "abc", ""] {
        let result = storage
            .set_user_interactive_data(SetUserInteractiveDataRequest {
                app_id: demo::MINIGAME_APPID.into(),
                user: Some(MiniGameUser {
                    openid: demo::MINIGAME_BOB_OPENID.into(),
                    session_key: demo::MINIGAME_BOB_SESSION_KEY.into(),
                }),
                kv_list: vec![InteractiveValue {
                    key: bad_key.into(),
                    value: 1,
                }],
            })
            .await;
        let reason = if bad_key.is_empty() {
            "FIELD_REQUIRED"
        } else {
            "INTERACTIVE_KEY_INVALID"
        };
        let error = expect_error(result, Code::InvalidArgument, reason);
        assert_eq!(
            error.bad_request_fields(),
            vec!["kv_list[0].key"],
            "key {bad_key:?}"
        );
    }

    // None of these reached the platform, nor fetched a token.
    assert_eq!(harness.requests(SET_PATH).await, 0);
    assert_eq!(harness.requests(INTERACTIVE_PATH).await, 0);
    assert_eq!(harness.get_token_calls(demo::MINIGAME_APPID).await, 0);
}

#[tokio::test]
async fn platform_limits_come_back_as_quota_failures() {
    let harness = Harness::start().await;
    let mut storage = harness.storage();

    // 87018: 128 pairs stored, the 129th distinct key is refused by the platform.
    let pairs: Vec<(String, String)> = (0..128).map(|i| (format!("k{i}"), "1".into())).collect();
    let pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    storage
        .set_user_storage(set_request(&pairs))
        .await
        .expect("128 pairs fit");
    let error = expect_error(
        storage
            .set_user_storage(set_request(&[("one-more", "1")]))
            .await,
        Code::ResourceExhausted,
        "TOO_MANY_KV_PAIRS",
    );
    assert_eq!(error.domain, "api.q.qq.com");
    assert_eq!(error.metadata["upstream_code"], "87018");
    assert_eq!(error.metadata["endpoint"], SET_PATH);
    assert!(error.has_quota_failure());

    // 87017: the user's total size is over the platform's cap.
    harness
        .sandbox_config(json!({"storage_total_cap_bytes": 2000}))
        .await;
    let big = "v".repeat(1000);
    let mut bobs = set_request(&[("big1", &big), ("big2", &big)]);
    bobs.user = Some(MiniGameUser {
        openid: demo::MINIGAME_BOB_OPENID.into(),
        session_key: demo::MINIGAME_BOB_SESSION_KEY.into(),
    });
    let error = expect_error(
        storage.set_user_storage(bobs).await,
        Code::ResourceExhausted,
        "STORAGE_FULL",
    );
    assert_eq!(error.metadata["upstream_code"], "87017");
    assert!(error.has_quota_failure());
}

#[tokio::test]
async fn a_wrong_session_key_is_unauthenticated() {
    let harness = Harness::start().await;
    let mut request = set_request(&[("score", "1")]);
    request.user.as_mut().unwrap().session_key = demo::MINIGAME_BOB_SESSION_KEY.into();
    let error = expect_error(
        harness.storage().set_user_storage(request).await,
        Code::Unauthenticated,
        "SESSION_KEY_INVALID",
    );
    assert_eq!(error.metadata["upstream_code"], "-100050007");
    assert!(
        !error.message.contains(demo::MINIGAME_BOB_SESSION_KEY),
        "the session key leaked into the message: {}",
        error.message
    );
}

#[tokio::test]
async fn every_documented_upstream_code_is_mapped() {
    let harness = Harness::start().await;
    let mut storage = harness.storage();
    let cases = [
        (-1, Code::Unavailable, "UPSTREAM_BUSY"),
        (-2, Code::InvalidArgument, "KV_LIST_INVALID"),
        (-3, Code::Internal, "AUTH_PARAM_INVALID"),
        (-4, Code::Internal, "AUTH_PARAM_MISSING"),
        (87016, Code::InvalidArgument, "KV_TOO_LONG"),
        (87017, Code::ResourceExhausted, "STORAGE_FULL"),
        (87018, Code::ResourceExhausted, "TOO_MANY_KV_PAIRS"),
        (87019, Code::InvalidArgument, "KEY_TOO_LONG"),
        (-100050007, Code::Unauthenticated, "SESSION_KEY_INVALID"),
        (777, Code::Unknown, "UPSTREAM_UNKNOWN_CODE"),
        // Last: the platform's frequency limit holds the app back (below).
        (45009, Code::ResourceExhausted, "UPSTREAM_RATE_LIMITED"),
    ];
    for (code, grpc_code, reason) in cases {
        harness
            .fault(json!({"path": INTERACTIVE_PATH, "code": code}))
            .await;
        let error = expect_error(
            storage
                .set_user_interactive_data(SetUserInteractiveDataRequest {
                    app_id: demo::MINIGAME_APPID.into(),
                    user: Some(MiniGameUser {
                        openid: demo::MINIGAME_ALICE_OPENID.into(),
                        session_key: demo::MINIGAME_ALICE_SESSION_KEY.into(),
                    }),
                    kv_list: vec![InteractiveValue {
                        key: "7".into(),
                        value: 1,
                    }],
                })
                .await,
            grpc_code,
            reason,
        );
        assert_eq!(error.metadata["upstream_code"], code.to_string());
        assert_eq!(error.metadata["endpoint"], INTERACTIVE_PATH);
        assert!(error.metadata.contains_key("upstream_message"));
        if grpc_code == Code::Unavailable {
            assert!(error.retry_delay().is_some(), "busy carries RetryInfo");
        }
        if grpc_code == Code::InvalidArgument {
            assert_eq!(error.bad_request_fields(), vec!["kv_list"]);
        }
    }
    // Writes are never retried: one upstream request per call.
    assert_eq!(harness.requests(INTERACTIVE_PATH).await, cases.len() as u64);

    // The platform asked the app to slow down: its next call is held back
    // by gamegate, without reaching the platform, for the second it implied.
    let held = expect_error(
        storage.set_user_storage(set_request(&[("a", "1")])).await,
        Code::ResourceExhausted,
        "GATEWAY_RATE_LIMITED",
    );
    assert_eq!(held.domain, "gamegate");
    assert_eq!(
        held.metadata["limit"],
        format!("app:{}", demo::MINIGAME_APPID)
    );
    assert!(held.has_quota_failure());
    let delay = held
        .retry_delay()
        .expect("RetryInfo: when it is let through");
    assert!(delay <= std::time::Duration::from_secs(1), "{delay:?}");
    assert_eq!(harness.requests(SET_PATH).await, 0, "nothing sent");
    tokio::time::sleep(delay + std::time::Duration::from_millis(50)).await;
    storage
        .set_user_storage(set_request(&[("a", "1")]))
        .await
        .expect("let through once the time passed");
}

#[tokio::test]
async fn transport_faults_of_writes_are_retryable_refused_or_outcome_unknown() {
    let harness = Harness::start().await;
    let mut storage = harness.storage();

    harness
        .fault(json!({"path": SET_PATH, "http_status": 503}))
        .await;
    let error = expect_error(
        storage.set_user_storage(set_request(&[("a", "1")])).await,
        Code::Unavailable,
        "UPSTREAM_HTTP_ERROR",
    );
    assert_eq!(error.metadata["http_status"], "503");
    assert!(error.retry_delay().is_some());

    // A 4xx is the platform refusing what gamegate sent: nothing to wait for.
    harness
        .fault(json!({"path": SET_PATH, "http_status": 404}))
        .await;
    let error = expect_error(
        storage.set_user_storage(set_request(&[("a", "1")])).await,
        Code::Internal,
        "UPSTREAM_HTTP_REFUSED",
    );
    assert_eq!(error.metadata["http_status"], "404");
    assert_eq!(error.retry_delay(), None);

    // A write whose answer is not the documented JSON, or whose connection
    // is lost after the platform read it: the platform may have applied it.
    // UNKNOWN, and nothing invites a retry.
    for fault in [
        json!({"path": SET_PATH, "malformed": true}),
        json!({"path": SET_PATH, "drop_connection": true}),
    ] {
        harness.fault(fault.clone()).await;
        let error = expect_error(
            storage.set_user_storage(set_request(&[("a", "1")])).await,
            Code::Unknown,
            "UPSTREAM_OUTCOME_UNKNOWN",
        );
        assert_eq!(error.retry_delay(), None, "{fault}");
        assert_eq!(error.domain, "gamegate", "{fault}");
        assert_eq!(error.metadata["endpoint"], SET_PATH);
        assert!(
            error.message.contains("may have applied") && error.message.contains("idempotency-key"),
            "{}",
            error.message
        );
    }

    // And the platform still works afterwards.
    storage
        .set_user_storage(set_request(&[("a", "1")]))
        .await
        .expect("recovered");
}

#[tokio::test]
async fn an_app_gamegate_does_not_hold_is_refused_locally() {
    let harness = Harness::start().await;
    let mut request = set_request(&[("a", "1")]);
    request.app_id = "999".into();
    let error = expect_error(
        harness.storage().set_user_storage(request).await,
        Code::PermissionDenied,
        "APP_UNKNOWN",
    );
    assert_eq!(error.domain, "gamegate");
    assert_eq!(error.metadata["app_id"], "999");
    assert_eq!(
        harness.total_requests().await,
        0,
        "the platform saw nothing: no token fetch, no call"
    );
}

#[test]
fn debug_output_redacts_session_keys() {
    let request = set_request(&[("a", "1")]);
    let printed = format!("{request:?}");
    assert!(
        !printed.contains(demo::MINIGAME_ALICE_SESSION_KEY),
        "{printed}"
    );
    assert!(printed.contains("<redacted>"));
    assert!(printed.contains(demo::MINIGAME_ALICE_OPENID));
}
