//! Helpers shared by the MSDK profile, share and freeflow tests: the sandbox's
//! admin views of those modules (`/_sandbox/msdk/...`), request counters, and
//! assertions on the two kinds of errors (the platform's, mapped; gamegate's
//! own, found before any call).

use gamegate::proto::{MsdkCallOptions, QqUserLogin, WxUserLogin};
use serde_json::Value;
use tonic::Code;

use crate::common::{Harness, RichError, demo};

pub const QQ: &str = demo::MSDK_QQ_APPID;
pub const WX: &str = demo::MSDK_WX_APPID;
pub const MSDK_DOMAIN: &str = "msdk.qq.com";
pub const GATEWAY_DOMAIN: &str = "gamegate";

/// `GET /_sandbox{path}` with a query, answered with JSON.
pub async fn admin_get(harness: &Harness, path: &str, query: &[(&str, &str)]) -> Value {
    let url = format!("{}/_sandbox{path}", harness.sandbox.base_url());
    let response = reqwest::Client::new()
        .get(url)
        .query(query)
        .send()
        .await
        .expect("sandbox admin answers");
    assert!(
        response.status().is_success(),
        "sandbox admin {path}: {}",
        response.status()
    );
    response.json().await.expect("sandbox admin answers json")
}

/// `method /_sandbox{path}` with a JSON body.
pub async fn admin_send(harness: &Harness, method: reqwest::Method, path: &str, body: Value) {
    let url = format!("{}/_sandbox{path}", harness.sandbox.base_url());
    let response = reqwest::Client::new()
        .request(method, url)
        .json(&body)
        .send()
        .await
        .expect("sandbox admin answers");
    assert!(
        response.status().is_success(),
        "sandbox admin {path}: {}",
        response.status()
    );
}

/// The requests the sandbox's MSDK interface `path` received, as they arrived
/// (oldest first): `method`, `query` ([name, value] pairs, `sig` left out),
/// `content_type`, `encrypted`, `has_body`, and `body` (the JSON after
/// decryption; null without a body).
pub async fn received(harness: &Harness, path: &str) -> Vec<Value> {
    let view = admin_get(harness, "/msdk/requests", &[("path", path)]).await;
    view["requests"]
        .as_array()
        .cloned()
        .expect("the sandbox lists the requests it received")
}

/// The body of the last request the sandbox's MSDK interface `path` received.
pub async fn last_body(harness: &Harness, path: &str) -> Value {
    let requests = received(harness, path).await;
    let last = requests
        .last()
        .unwrap_or_else(|| panic!("{path} received no request"));
    last["body"].clone()
}

/// Platform requests the sandbox received on `path`.
pub async fn requests(harness: &Harness, path: &str) -> u64 {
    let stats = admin_get(harness, "/stats", &[]).await;
    stats["requests"][path].as_u64().unwrap_or(0)
}

/// Platform requests the sandbox received, every path summed.
pub async fn total_requests(harness: &Harness) -> u64 {
    let stats = admin_get(harness, "/stats", &[]).await;
    stats["requests"]
        .as_object()
        .map(|paths| paths.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0)
}

/// The user's current MSDK token (and QQ pay token) now answers "expired".
pub async fn expire_token(harness: &Harness, appid: &str, openid: &str) {
    admin_send(
        harness,
        reqwest::Method::POST,
        "/msdk/tokens/expire",
        serde_json::json!({ "appid": appid, "openid": openid }),
    )
    .await;
}

/// The user's `qqscore_batch` entries, oldest first.
pub async fn scores(harness: &Harness, appid: &str, openid: &str) -> Vec<Value> {
    let view = admin_get(
        harness,
        "/msdk/scores",
        &[("appid", appid), ("openid", openid)],
    )
    .await;
    view["reports"].as_array().cloned().unwrap_or_default()
}

/// The app's `wxbattle_report` user objects, oldest first.
pub async fn battle_reports(harness: &Harness, appid: &str) -> Vec<Value> {
    let view = admin_get(harness, "/msdk/battle_reports", &[("appid", appid)]).await;
    view["reports"].as_array().cloned().unwrap_or_default()
}

/// `{"messages":[{"id","title","subscribers"}],"pushes":[..]}`.
pub async fn subscriptions(harness: &Harness, appid: &str) -> Value {
    admin_get(harness, "/msdk/subscriptions", &[("appid", appid)]).await
}

/// The app's shares, or those `receiver` got.
pub async fn shares(harness: &Harness, appid: &str, receiver: Option<&str>) -> Vec<Value> {
    let mut query = vec![("appid", appid)];
    if let Some(receiver) = receiver {
        query.push(("openid", receiver));
    }
    let view = admin_get(harness, "/msdk/shares", &query).await;
    view["shares"].as_array().cloned().unwrap_or_default()
}

/// The app's `upload_wx` uploads (length and md5 of the bytes).
pub async fn media(harness: &Harness, appid: &str) -> Vec<Value> {
    let view = admin_get(harness, "/msdk/media", &[("appid", appid)]).await;
    view["media"].as_array().cloned().unwrap_or_default()
}

/// An MSDK refusal, mapped: domain msdk.qq.com, the platform's code and the endpoint.
pub fn assert_upstream(error: &RichError, upstream_code: i64, endpoint: &str) {
    assert_eq!(error.domain, MSDK_DOMAIN, "{:?}", error.metadata);
    assert_eq!(
        error.metadata.get("upstream_code").map(String::as_str),
        Some(upstream_code.to_string().as_str()),
        "{:?}",
        error.metadata
    );
    assert_eq!(
        error.metadata.get("endpoint").map(String::as_str),
        Some(endpoint),
        "{:?}",
        error.metadata
    );
}

/// A request gamegate refused itself: INVALID_ARGUMENT, domain gamegate, a
/// BadRequest naming exactly `fields`.
pub fn assert_local(error: &RichError, fields: &[&str]) {
    assert_eq!(error.code, Code::InvalidArgument);
    assert_eq!(error.domain, GATEWAY_DOMAIN);
    assert_eq!(error.bad_request_fields(), fields, "{}", error.message);
}

pub fn qq_login(openid: &str, token: &str) -> Option<QqUserLogin> {
    Some(QqUserLogin {
        openid: openid.into(),
        access_token: token.into(),
    })
}

pub fn qq_alice() -> Option<QqUserLogin> {
    qq_login(demo::MSDK_QQ_ALICE_OPENID, demo::MSDK_QQ_ALICE_TOKEN)
}

pub fn wx_login(openid: &str, token: &str) -> Option<WxUserLogin> {
    Some(WxUserLogin {
        openid: openid.into(),
        access_token: token.into(),
    })
}

pub fn wx_alice() -> Option<WxUserLogin> {
    wx_login(demo::MSDK_WX_ALICE_OPENID, demo::MSDK_WX_ALICE_TOKEN)
}

pub fn wx_bob() -> Option<WxUserLogin> {
    wx_login(demo::MSDK_WX_BOB_OPENID, demo::MSDK_WX_BOB_TOKEN)
}

/// `msdkExtInfo` pass-through value (echoed in every answer).
pub fn ext(value: &str) -> Option<MsdkCallOptions> {
    Some(MsdkCallOptions {
        msdk_ext_info: value.into(),
        https_urls: false,
    })
}
