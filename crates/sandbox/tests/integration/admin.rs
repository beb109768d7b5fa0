use gamegate_sandbox::{Sandbox, SandboxConfig, demo};
use reqwest::Method;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn unknown_paths_are_json_404_and_not_counted() {
    let h = start().await;
    for path in ["/api/nothing", "/v3/user/get_info", "/_sandbox/nothing"] {
        let response = h.client.get(h.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 404);
        let answer: serde_json::Value = response.json().await.unwrap();
        assert_eq!(answer["error"], "unknown path");
    }
    let stats = h.get_json("/_sandbox/stats").await;
    assert_eq!(stats, json!({"get_token_calls": {}, "requests": {}}));
}

#[tokio::test]
async fn put_minigame_user_then_sign_with_its_key() {
    let h = start().await;
    let openid = "11112222333344445555666677778888";
    let session_key = "bmV3LXNlc3Npb24ta2V5";
    let (status, _) = h
        .admin(
            Method::PUT,
            "/_sandbox/minigame/users",
            json!({"appid": demo::MINIGAME_APPID, "openid": openid, "session_key": session_key}),
        )
        .await;
    assert_eq!(status, 200);
    let token = h.get_token().await;
    let body = r#"{"kv_list":[{"key":"k","value":"v"}]}"#;
    assert_eq!(
        h.storage_call(SET, &token, openid, session_key, body).await,
        0
    );
    // Replacing the session key invalidates signatures made with the old one.
    h.admin(
        Method::PUT,
        "/_sandbox/minigame/users",
        json!({"appid": demo::MINIGAME_APPID, "openid": openid, "session_key": "other"}),
    )
    .await;
    assert_eq!(
        h.storage_call(SET, &token, openid, session_key, body).await,
        -100_050_007
    );

    let (status, answer) = h
        .admin(
            Method::PUT,
            "/_sandbox/minigame/users",
            json!({"appid": "404", "openid": openid, "session_key": "x"}),
        )
        .await;
    assert_eq!(status, 404, "{answer}");
    let response = h
        .client
        .get(h.url("/_sandbox/minigame/storage?appid=1&openid=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn put_apps_at_run_time() {
    let h = start().await;
    let (status, _) = h
        .admin(
            Method::PUT,
            "/_sandbox/minigame/apps",
            json!({"appid": "2220000001", "secret": "s3cret"}),
        )
        .await;
    assert_eq!(status, 200);
    let answer = h
        .get_json("/api/getToken?grant_type=client_credential&appid=2220000001&secret=s3cret")
        .await;
    assert_eq!(answer["errcode"], 0);

    let (status, _) = h
        .admin(
            Method::PUT,
            "/_sandbox/openapi/apps",
            json!({"appid": "2220000002", "appkey": "another-key"}),
        )
        .await;
    assert_eq!(status, 200);
    let openid = "0123456789ABCDEF0123456789ABCDEF";
    let openkey = "00000000000000000000000000000001";
    let (status, _) = h
        .admin(
            Method::PUT,
            "/_sandbox/openapi/users",
            json!({"appid": "2220000002", "openid": openid, "openkey": openkey,
                   "dawanka": {"score": 1, "level": 1}}),
        )
        .await;
    assert_eq!(status, 200);
    let path = openapi_path(
        "another-key",
        DAWANKA_INFO,
        &[
            ("appid", "2220000002"),
            ("openid", openid),
            ("openkey", openkey),
            ("pf", "qqgame"),
        ],
    );
    let answer = h.get_json(&path).await;
    assert_eq!(answer["ret"], 0, "{answer}");
    assert_eq!(answer["payReturnCount"], 0);
}

#[tokio::test]
async fn put_and_get_openapi_user() {
    let h = start().await;
    let state = json!({"score": 42, "level": 4, "binding": true, "discount": 15,
        "pay_return_count": 1, "used": 7, "is_using_card": false, "real_level": 0,
        "card_expire_ts": 0});
    let (status, _) = h
        .admin(
            Method::PUT,
            "/_sandbox/openapi/users",
            json!({"appid": demo::OPENAPI_APPID, "openid": demo::OPENAPI_SUPER_OPENID,
                   "openkey": "11111111111111111111111111111111", "dawanka": state}),
        )
        .await;
    assert_eq!(status, 200);
    let query = format!(
        "/_sandbox/openapi/users?appid={}&openid={}",
        demo::OPENAPI_APPID,
        demo::OPENAPI_SUPER_OPENID
    );
    assert_eq!(h.get_json(&query).await, state);
    // The old openkey no longer authenticates.
    assert_eq!(
        h.openapi(DAWANKA_INFO, &super_player()).await["ret"],
        2_000_023
    );
    let params = [
        ("appid", demo::OPENAPI_APPID),
        ("openid", demo::OPENAPI_SUPER_OPENID),
        ("openkey", "11111111111111111111111111111111"),
        ("pf", "qqgame"),
        ("version", "2"),
    ];
    let answer = h.openapi(DAWANKA_INFO, &params).await;
    assert_eq!(answer["level"], 4);
    assert_eq!(answer["payReturnCount"], 1);
    let answer = h.openapi(DAWANKA_PAY, &params).await;
    assert_eq!(
        answer,
        json!({"ret": 0, "msg": "report success.", "use": 8, "left": 0})
    );

    for bad in [
        json!({"appid": demo::OPENAPI_APPID, "openid": "short", "openkey": "11111111111111111111111111111111"}),
        json!({"appid": demo::OPENAPI_APPID, "openid": demo::OPENAPI_SUPER_OPENID, "openkey": "short"}),
        json!({"appid": demo::OPENAPI_APPID, "openid": demo::OPENAPI_SUPER_OPENID,
               "openkey": "11111111111111111111111111111111", "dawanka": {"level": 5}}),
    ] {
        let (status, _) = h.admin(Method::PUT, "/_sandbox/openapi/users", bad).await;
        assert_eq!(status, 400);
    }
}

#[tokio::test]
async fn config_rejects_negative_durations() {
    let h = start().await;
    let (status, _) = h
        .admin(
            Method::PUT,
            "/_sandbox/config",
            json!({"token_ttl_secs": -1}),
        )
        .await;
    assert_eq!(status, 400);
    let (status, config) = h.admin(Method::GET, "/_sandbox/config", json!(null)).await;
    assert_eq!(status, 200);
    assert_eq!(
        config,
        json!({"token_ttl_secs": 7200.0, "token_grace_secs": 300.0, "storage_total_cap_bytes": 65536, "code_ttl_secs": 300.0})
    );
}

#[tokio::test]
async fn shutdown_stops_serving_and_state_is_shared() {
    let h = start().await;
    let sandbox: Sandbox = h.sandbox.sandbox().clone();
    assert!(format!("{sandbox:?}").starts_with("Sandbox"));
    let url = h.url(
        "/api/getToken?grant_type=client_credential&appid=1112345678&secret=demo-minigame-app-secret",
    );
    assert_eq!(h.get_json(&url[h.base.len()..]).await["errcode"], 0);
    h.sandbox.shutdown().await;
    let error = reqwest::Client::new().get(&url).send().await.unwrap_err();
    assert!(error.is_connect() || error.is_request(), "{error:?}");
}

#[tokio::test]
async fn router_and_serve_work_on_a_caller_listener() {
    let sandbox = Sandbox::new(SandboxConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sandbox.serve(listener, async move {
        let _ = stopped.await;
    }));
    let answer: serde_json::Value = reqwest::get(format!("http://{addr}/_sandbox/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["requests"], json!({}));
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
