use std::time::Duration;

use gamegate_sandbox::{SandboxConfig, demo};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

const ALICE: &str = demo::MINIGAME_ALICE_OPENID;
const ALICE_KEY: &str = demo::MINIGAME_ALICE_SESSION_KEY;

#[tokio::test]
async fn get_token_issues_distinct_tokens_and_counts_calls() {
    let h = start().await;
    let query = format!(
        "/api/getToken?grant_type=client_credential&appid={}&secret={}",
        demo::MINIGAME_APPID,
        demo::MINIGAME_SECRET
    );
    let first = h.get_json(&query).await;
    assert_eq!(first["errcode"], 0);
    assert_eq!(first["errmsg"], "ok");
    assert_eq!(first["expires_in"], 7200);
    let token = first["access_token"].as_str().unwrap();
    assert!(token.len() >= 32);
    let second = h.get_json(&query).await;
    assert_ne!(second["access_token"], first["access_token"]);

    let stats = h.get_json("/_sandbox/stats").await;
    assert_eq!(stats["get_token_calls"][demo::MINIGAME_APPID], 2);
    assert_eq!(stats["requests"]["/api/getToken"], 2);
}

#[tokio::test]
async fn get_token_error_codes() {
    let h = start().await;
    let cases = [
        (
            format!(
                "grant_type=authorization_code&appid={}&secret={}",
                demo::MINIGAME_APPID,
                demo::MINIGAME_SECRET
            ),
            40002,
        ),
        (
            format!(
                "appid={}&secret={}",
                demo::MINIGAME_APPID,
                demo::MINIGAME_SECRET
            ),
            40002,
        ),
        (
            format!(
                "grant_type=client_credential&appid=999&secret={}",
                demo::MINIGAME_SECRET
            ),
            40013,
        ),
        (
            format!(
                "grant_type=client_credential&appid={}&secret=wrong",
                demo::MINIGAME_APPID
            ),
            40001,
        ),
        (
            format!(
                "grant_type=client_credential&appid={}",
                demo::MINIGAME_APPID
            ),
            40001,
        ),
    ];
    for (query, code) in cases {
        let answer = h.get_json(&format!("/api/getToken?{query}")).await;
        assert_eq!(answer["errcode"], code, "{query}");
        assert!(answer.get("access_token").is_none());
    }
}

#[tokio::test]
async fn set_remove_and_read_storage() {
    let h = start().await;
    let body = r#"{"kv_list":[{"key":"score","value":"100"},{"key":"gold","value":"3000"}]}"#;
    assert_eq!(h.alice(SET, body).await, 0);
    assert_eq!(
        h.alice_storage().await,
        json!({"kv": {"score": "100", "gold": "3000"}, "interactive": {}})
    );
    // Overwrite one key, add another.
    let body = r#"{"kv_list":[{"key":"score","value":"250"},{"key":"level","value":"7"}]}"#;
    assert_eq!(h.alice(SET, body).await, 0);
    // Absent keys are fine; a single string is taken as one key.
    assert_eq!(h.alice(REMOVE, r#"{"key":["gold","nope"]}"#).await, 0);
    assert_eq!(h.alice(REMOVE, r#"{"key":"level"}"#).await, 0);
    assert_eq!(h.alice_storage().await["kv"], json!({"score": "250"}));
    // Bob's storage is separate.
    let bob = h
        .get_json(&format!(
            "/_sandbox/minigame/storage?appid={}&openid={}",
            demo::MINIGAME_APPID,
            demo::MINIGAME_BOB_OPENID
        ))
        .await;
    assert_eq!(bob, json!({"kv": {}, "interactive": {}}));
}

#[tokio::test]
async fn auth_error_codes_in_order() {
    let h = start().await;
    let token = h.get_token().await;
    let body = r#"{"kv_list":[{"key":"score","value":"100"}]}"#;
    let signature = sign_body(ALICE_KEY, body.as_bytes());
    let full =
        format!("access_token={token}&openid={ALICE}&signature={signature}&sig_method=hmac_sha256");
    assert_eq!(h.storage_call_raw(SET, &full, body).await, 0);

    // -4: each auth parameter missing or empty; wins over every later check.
    for drop in ["access_token", "openid", "signature", "sig_method"] {
        let query: Vec<&str> = full
            .split('&')
            .filter(|pair| !pair.starts_with(&format!("{drop}=")))
            .collect();
        assert_eq!(
            h.storage_call_raw(SET, &query.join("&"), body).await,
            -4,
            "{drop}"
        );
    }
    let empty_token = full.replace(&token, "");
    assert_eq!(h.storage_call_raw(SET, &empty_token, "not json").await, -4);

    // -3: a sig_method the platform does not support, even with a bad token.
    let md5 = format!("access_token=bogus&openid={ALICE}&signature={signature}&sig_method=md5");
    assert_eq!(h.storage_call_raw(INTERACTIVE, &md5, body).await, -3);

    // -100050019: unknown token, even with a bad signature.
    let bogus = format!("access_token=bogus&openid={ALICE}&signature=00&sig_method=hmac_sha256");
    assert_eq!(h.storage_call_raw(SET, &bogus, body).await, -100_050_019);

    // -100050007: wrong signature, session_key decoded first, another user's key, unknown user.
    let sig_of = |key: &[u8]| {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
        mac.update(body.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    };
    use base64::Engine;
    let decoded_key = base64::engine::general_purpose::STANDARD
        .decode(ALICE_KEY)
        .unwrap();
    for (openid, signature) in [
        (ALICE, "0".repeat(64)),
        (ALICE, sig_of(&decoded_key)),
        (ALICE, sig_of(demo::MINIGAME_BOB_SESSION_KEY.as_bytes())),
        (ALICE, signature.to_ascii_uppercase()),
        ("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", signature.clone()),
    ] {
        let query = format!(
            "access_token={token}&openid={openid}&signature={signature}&sig_method=hmac_sha256"
        );
        assert_eq!(h.storage_call_raw(SET, &query, body).await, -100_050_007);
    }
    // The signature covers the exact bytes: same JSON, one more space.
    let respaced = r#"{"kv_list": [{"key":"score","value":"100"}]}"#;
    assert_eq!(h.storage_call_raw(SET, &full, respaced).await, -100_050_007);

    // -2: correctly signed bodies that are not what the endpoint needs.
    for (path, bad_body) in [
        (SET, "not json"),
        (SET, r#"{"kv":[]}"#),
        (SET, r#"{"kv_list":{"key":"a","value":"b"}}"#),
        (SET, r#"{"kv_list":[{"key":"a","value":1}]}"#),
        (REMOVE, r#"{"keys":["a"]}"#),
        (REMOVE, r#"{"key":[1]}"#),
        (INTERACTIVE, r#"{"kv_list":[]}"#),
        (INTERACTIVE, r#"{"kv_list":[{"key":"51","value":1}]}"#),
        (INTERACTIVE, r#"{"kv_list":[{"key":"0","value":1}]}"#),
        (INTERACTIVE, r#"{"kv_list":[{"key":"score","value":1}]}"#),
        (INTERACTIVE, r#"{"kv_list":[{"key":"1","value":"1"}]}"#),
        (INTERACTIVE, r#"{"kv_list":[{"key":"1","value":1.5}]}"#),
        (INTERACTIVE, r#"{"other":1}"#),
    ] {
        assert_eq!(
            h.storage_call(path, &token, ALICE, ALICE_KEY, bad_body)
                .await,
            -2,
            "{path} {bad_body}"
        );
    }
    // Nothing but the first call was stored.
    assert_eq!(
        h.alice_storage().await,
        json!({"kv": {"score": "100"}, "interactive": {}})
    );
}

fn kv_body(pairs: &[(String, String)]) -> String {
    let list: Vec<Value> = pairs
        .iter()
        .map(|(key, value)| json!({"key": key, "value": value}))
        .collect();
    json!({ "kv_list": list }).to_string()
}

fn pair(key: impl Into<String>, value: impl Into<String>) -> (String, String) {
    (key.into(), value.into())
}

#[tokio::test]
async fn storage_limits_are_enforced_all_or_nothing() {
    let h = start().await;
    let ok = pair("ok", "1");

    // 87019: empty key, key over 128 bytes (a 128-byte key is fine).
    assert_eq!(
        h.alice(SET, &kv_body(&[ok.clone(), pair("", "1")])).await,
        87019
    );
    assert_eq!(
        h.alice(SET, &kv_body(&[ok.clone(), pair("k".repeat(129), "1")]))
            .await,
        87019
    );
    // 87016: key+value over 1024 bytes, counted in bytes (é is 2 bytes).
    assert_eq!(
        h.alice(SET, &kv_body(&[ok.clone(), pair("k", "v".repeat(1024))]))
            .await,
        87016
    );
    assert_eq!(
        h.alice(SET, &kv_body(&[ok.clone(), pair("k", "é".repeat(512))]))
            .await,
        87016
    );
    assert_eq!(
        h.alice_storage().await["kv"],
        json!({}),
        "nothing stored on failure"
    );

    assert_eq!(
        h.alice(
            SET,
            &kv_body(&[pair("k".repeat(128), "v"), pair("big", "v".repeat(1021))])
        )
        .await,
        0,
        "limits are inclusive"
    );

    // 87018: more than 128 pairs after merging with what is stored (2 now).
    let many: Vec<_> = (0..126).map(|i| pair(format!("n{i}"), "1")).collect();
    assert_eq!(h.alice(SET, &kv_body(&many)).await, 0, "128 pairs fit");
    assert_eq!(
        h.alice(SET, &kv_body(&[pair("one-more", "1")])).await,
        87018
    );
    // Overwriting an existing key does not add a pair.
    assert_eq!(h.alice(SET, &kv_body(&[pair("n0", "2")])).await, 0);
    let stored = h.alice_storage().await;
    assert_eq!(stored["kv"].as_object().unwrap().len(), 128);
    assert!(stored["kv"].get("one-more").is_none());
}

#[tokio::test]
async fn total_size_cap_gives_87017() {
    let h = start_with(SandboxConfig {
        storage_total_cap_bytes: 2000,
        ..SandboxConfig::demo()
    })
    .await;
    // 1000 + 1000 bytes: exactly at the cap.
    let a = pair("a", "x".repeat(999));
    let b = pair("b", "x".repeat(999));
    assert_eq!(h.alice(SET, &kv_body(&[a])).await, 0);
    assert_eq!(
        h.alice(SET, &kv_body(&[b.clone(), pair("c", "1")])).await,
        87017
    );
    assert_eq!(h.alice_storage().await["kv"].as_object().unwrap().len(), 1);
    assert_eq!(h.alice(SET, &kv_body(&[b])).await, 0);
    // Removing frees space.
    assert_eq!(h.alice(REMOVE, r#"{"key":["a"]}"#).await, 0);
    assert_eq!(h.alice(SET, &kv_body(&[pair("c", "1")])).await, 0);

    // The cap can be changed at run time.
    let (status, _) = h
        .admin(
            Method::PUT,
            "/_sandbox/config",
            json!({"storage_total_cap_bytes": 100}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(h.alice(SET, &kv_body(&[pair("d", "1")])).await, 87017);
}

#[tokio::test]
async fn interactive_data_keeps_the_last_value() {
    let h = start().await;
    let body = r#"{"kv_list":[{"key":"1","value":1},{"key":"50","value":3}]}"#;
    assert_eq!(h.alice(INTERACTIVE, body).await, 0);
    assert_eq!(
        h.alice(INTERACTIVE, r#"{"kv_list":[{"key":"1","value":0}]}"#)
            .await,
        0
    );
    assert_eq!(
        h.alice_storage().await["interactive"],
        json!({"1": 0, "50": 3})
    );
}

#[tokio::test]
async fn old_tokens_live_for_the_grace_period_and_tokens_expire() {
    let h = start().await;
    let (status, config) = h
        .admin(
            Method::PUT,
            "/_sandbox/config",
            json!({"token_ttl_secs": 1.0, "token_grace_secs": 0.4}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(config["token_ttl_secs"], 1.0);
    let body = r#"{"kv_list":[{"key":"1","value":1}]}"#;
    let call = |token: String| {
        let h = &h;
        async move {
            h.storage_call(INTERACTIVE, &token, ALICE, ALICE_KEY, body)
                .await
        }
    };

    let old = h.get_token().await;
    let new = h.get_token().await;
    assert_eq!(call(old.clone()).await, 0, "old token within grace");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(call(old).await, -100_050_019, "old token after grace");
    assert_eq!(call(new.clone()).await, 0, "new token before its ttl");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(call(new).await, -100_050_019, "new token after its ttl");
}

#[tokio::test]
async fn zero_grace_invalidates_the_previous_token_at_once() {
    let h = start_with(SandboxConfig {
        token_grace: Duration::ZERO,
        ..SandboxConfig::demo()
    })
    .await;
    let body = r#"{"kv_list":[{"key":"1","value":1}]}"#;
    let old = h.get_token().await;
    let new = h.get_token().await;
    assert_eq!(
        h.storage_call(INTERACTIVE, &old, ALICE, ALICE_KEY, body)
            .await,
        -100_050_019
    );
    assert_eq!(
        h.storage_call(INTERACTIVE, &new, ALICE, ALICE_KEY, body)
            .await,
        0
    );
}

#[tokio::test]
async fn revoked_tokens_are_refused() {
    let h = start().await;
    let token = h.get_token().await;
    let body = r#"{"kv_list":[{"key":"1","value":1}]}"#;
    assert_eq!(
        h.storage_call(INTERACTIVE, &token, ALICE, ALICE_KEY, body)
            .await,
        0
    );
    let (status, answer) = h
        .admin(
            Method::POST,
            "/_sandbox/minigame/revoke_tokens",
            json!({"appid": demo::MINIGAME_APPID}),
        )
        .await;
    assert_eq!((status, answer), (200, json!({"revoked": 1})));
    assert_eq!(
        h.storage_call(INTERACTIVE, &token, ALICE, ALICE_KEY, body)
            .await,
        -100_050_019
    );
    // A new token works again.
    assert_eq!(h.alice(INTERACTIVE, body).await, 0);
}

#[tokio::test]
async fn jscode2session_checks_the_app_and_a_single_use_code_and_issues_a_new_key() {
    let h = start().await;
    let mint = |openid: &'static str, unionid: Option<&'static str>| {
        let h = &h;
        async move {
            let mut body = json!({"appid": demo::MINIGAME_APPID, "openid": openid});
            if let Some(unionid) = unionid {
                body["unionid"] = json!(unionid);
            }
            let (status, answer) = h
                .admin(Method::POST, "/_sandbox/minigame/codes", body)
                .await;
            assert_eq!(status, 200, "{answer}");
            answer["js_code"].as_str().unwrap().to_owned()
        }
    };
    let login = |code: &str, secret: &str| {
        format!(
            "/sns/jscode2session?appid={}&secret={secret}&js_code={code}&grant_type=authorization_code",
            demo::MINIGAME_APPID
        )
    };
    let code = mint("newuser", Some("union-1")).await;
    let wrong = h.get_json(&login(&code, "not-the-secret")).await;
    assert_eq!(wrong["errcode"], 40001);
    let answer = h.get_json(&login(&code, demo::MINIGAME_SECRET)).await;
    assert_eq!(answer["errcode"], 0, "{answer}");
    assert_eq!(answer["openid"], "newuser");
    assert_eq!(answer["unionid"], "union-1");
    let first_key = answer["session_key"].as_str().unwrap().to_owned();
    assert_eq!(first_key.len(), 24);
    let reused = h.get_json(&login(&code, demo::MINIGAME_SECRET)).await;
    assert_eq!(reused["errcode"], 40029);
    let unknown = h
        .get_json(&login("nosuchcode", demo::MINIGAME_SECRET))
        .await;
    assert_eq!(unknown["errcode"], 40029);

    let code = mint("newuser", None).await;
    let answer = h.get_json(&login(&code, demo::MINIGAME_SECRET)).await;
    assert!(answer.get("unionid").is_none());
    assert_ne!(answer["session_key"].as_str().unwrap(), first_key);

    let (status, _) = h
        .admin(
            Method::PUT,
            "/_sandbox/config",
            json!({"code_ttl_secs": 0.1}),
        )
        .await;
    assert_eq!(status, 200);
    let code = mint("newuser", None).await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    let expired = h.get_json(&login(&code, demo::MINIGAME_SECRET)).await;
    assert_eq!(expired["errcode"], 40029);

    let (status, _) = h
        .admin(
            Method::POST,
            "/_sandbox/minigame/codes",
            json!({"appid": "9999999999", "openid": "x"}),
        )
        .await;
    assert_eq!(status, 404);
}
