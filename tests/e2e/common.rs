//! The harness: a sandbox and a gamegate wired to it, both on 127.0.0.1:0.

use std::{collections::HashMap, net::SocketAddr, time::Duration};

use gamegate::{
    app::RunningGateway,
    config::Config,
    proto::{
        DawankaDataVersion, GetDawankaInfoRequest, KeyValue, MiniGameUser, QqGameUser,
        SetUserStorageRequest, auth_service_client::AuthServiceClient,
        dawanka_service_client::DawankaServiceClient,
        relation_service_client::RelationServiceClient,
        storage_service_client::StorageServiceClient,
    },
    sandbox::{self, RunningSandbox, SandboxConfig},
};
use serde_json::{Value, json};
use tonic::{Code, Status, transport::Channel};
use tonic_types::{ErrorDetails, StatusExt};

pub use gamegate::sandbox::demo;

pub struct Harness {
    pub sandbox: RunningSandbox,
    pub gateway: Option<RunningGateway>,
    pub channel: Channel,
    admin: reqwest::Client,
}

impl Harness {
    pub async fn start() -> Harness {
        Harness::start_with(|_| {}).await
    }

    /// Starts with the demo configuration, changed by `customize`.
    pub async fn start_with(customize: impl FnOnce(&mut Config)) -> Harness {
        let sandbox = sandbox::spawn(SandboxConfig::demo(), loopback())
            .await
            .expect("sandbox starts");
        let mut config = Config::demo(loopback(), &sandbox.base_url());
        customize(&mut config);
        let gateway = RunningGateway::spawn(config)
            .await
            .expect("gamegate starts");
        let channel = Channel::from_shared(gateway.endpoint())
            .unwrap()
            .connect()
            .await
            .expect("gamegate accepts connections");
        Harness {
            sandbox,
            gateway: Some(gateway),
            channel,
            admin: reqwest::Client::new(),
        }
    }

    pub fn storage(&self) -> StorageServiceClient<Channel> {
        StorageServiceClient::new(self.channel.clone())
    }

    pub fn dawanka(&self) -> DawankaServiceClient<Channel> {
        DawankaServiceClient::new(self.channel.clone())
    }

    pub fn auth(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::new(self.channel.clone())
    }

    pub fn relation(&self) -> RelationServiceClient<Channel> {
        RelationServiceClient::new(self.channel.clone())
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/_sandbox{path}", self.sandbox.base_url());
        let mut request = self.admin.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("sandbox admin answers");
        assert!(
            response.status().is_success(),
            "sandbox admin {path}: {}",
            response.status()
        );
        response.json().await.expect("sandbox admin answers json")
    }

    /// Clears every queued fault.
    pub async fn clear_faults(&self) {
        self.admin(reqwest::Method::DELETE, "/faults", None).await;
    }

    /// Queues a fault (see the sandbox README).
    pub async fn fault(&self, fault: Value) {
        self.admin(reqwest::Method::POST, "/faults", Some(fault))
            .await;
    }

    pub async fn sandbox_config(&self, config: Value) {
        self.admin(reqwest::Method::PUT, "/config", Some(config))
            .await;
    }

    pub async fn revoke_tokens(&self, appid: &str) {
        self.admin(
            reqwest::Method::POST,
            "/minigame/revoke_tokens",
            Some(json!({ "appid": appid })),
        )
        .await;
    }

    /// Platform requests the sandbox received on `path`.
    pub async fn requests(&self, path: &str) -> u64 {
        let stats = self.admin(reqwest::Method::GET, "/stats", None).await;
        stats["requests"][path].as_u64().unwrap_or(0)
    }

    pub async fn get_token_calls(&self, appid: &str) -> u64 {
        let stats = self.admin(reqwest::Method::GET, "/stats", None).await;
        stats["get_token_calls"][appid].as_u64().unwrap_or(0)
    }

    pub async fn stored(&self, appid: &str, openid: &str) -> Value {
        self.admin(
            reqwest::Method::GET,
            &format!("/minigame/storage?appid={appid}&openid={openid}"),
            None,
        )
        .await
    }

    pub async fn dawanka_state(&self, appid: &str, openid: &str) -> Value {
        self.admin(
            reqwest::Method::GET,
            &format!("/openapi/users?appid={appid}&openid={openid}"),
            None,
        )
        .await
    }

    /// `GET /_sandbox{path}`.
    pub async fn admin_get(&self, path: &str) -> Value {
        self.admin(reqwest::Method::GET, path, None).await
    }

    /// `POST /_sandbox{path}` with a JSON body.
    pub async fn admin_post(&self, path: &str, body: Value) -> Value {
        self.admin(reqwest::Method::POST, path, Some(body)).await
    }

    /// `PUT /_sandbox{path}` with a JSON body.
    pub async fn admin_put(&self, path: &str, body: Value) -> Value {
        self.admin(reqwest::Method::PUT, path, Some(body)).await
    }

    /// Platform requests the sandbox received, every path summed.
    pub async fn total_requests(&self) -> u64 {
        let stats = self.admin_get("/stats").await;
        stats["requests"]
            .as_object()
            .map(|paths| paths.values().filter_map(Value::as_u64).sum())
            .unwrap_or(0)
    }

    /// The MSDK user's current access token (and QQ pay token) now answers "expired".
    pub async fn msdk_expire_token(&self, appid: &str, openid: &str) {
        self.admin_post(
            "/msdk/tokens/expire",
            json!({ "appid": appid, "openid": openid }),
        )
        .await;
    }

    /// The app's QQ groups, bindings, reminders, WeChat groups and mini-program messages.
    pub async fn msdk_groups(&self, appid: &str) -> Value {
        self.admin_get(&format!("/msdk/groups?appid={appid}")).await
    }

    pub async fn shutdown_gateway(&mut self) {
        if let Some(gateway) = self.gateway.take() {
            gateway.shutdown().await.expect("gamegate stops cleanly");
        }
    }
}

pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// The decoded rich error of a status.
pub struct RichError {
    pub code: Code,
    pub message: String,
    pub reason: String,
    pub domain: String,
    pub metadata: HashMap<String, String>,
    pub details: ErrorDetails,
}

impl RichError {
    pub fn bad_request_fields(&self) -> Vec<String> {
        self.details
            .bad_request()
            .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
            .unwrap_or_default()
    }

    pub fn retry_delay(&self) -> Option<Duration> {
        self.details.retry_info().and_then(|r| r.retry_delay)
    }

    pub fn has_quota_failure(&self) -> bool {
        self.details
            .quota_failure()
            .is_some_and(|q| !q.violations.is_empty())
    }
}

/// Decodes ErrorInfo (which every gamegate error must carry) and the rest.
pub fn rich(status: &Status) -> RichError {
    let details = status.get_error_details();
    let info = details
        .error_info()
        .unwrap_or_else(|| panic!("status without ErrorInfo: {status:?}"))
        .clone();
    RichError {
        code: status.code(),
        message: status.message().to_string(),
        reason: info.reason,
        domain: info.domain,
        metadata: info.metadata,
        details,
    }
}

/// Asserts the code and the ErrorInfo reason of a failed call, and returns it.
pub fn expect_error<T: std::fmt::Debug>(
    result: Result<tonic::Response<T>, Status>,
    code: Code,
    reason: &str,
) -> RichError {
    let status = match result {
        Ok(response) => panic!("expected {code:?}/{reason}, got {response:?}"),
        Err(status) => status,
    };
    let error = rich(&status);
    assert_eq!(
        (error.code, error.reason.as_str()),
        (code, reason),
        "status: {status:?}"
    );
    error
}

/// The demo mini-game player alice storing one pair.
pub fn alice_stores(key: &str, value: &str) -> SetUserStorageRequest {
    SetUserStorageRequest {
        app_id: demo::MINIGAME_APPID.into(),
        user: Some(MiniGameUser {
            openid: demo::MINIGAME_ALICE_OPENID.into(),
            session_key: demo::MINIGAME_ALICE_SESSION_KEY.into(),
        }),
        kv_list: vec![KeyValue {
            key: key.into(),
            value: value.into(),
        }],
    }
}

/// The demo super-dawanka player asking for its dawanka info (version 2).
pub fn super_player_dawanka_info() -> GetDawankaInfoRequest {
    GetDawankaInfoRequest {
        app_id: demo::OPENAPI_APPID.into(),
        user: Some(QqGameUser {
            openid: demo::OPENAPI_SUPER_OPENID.into(),
            openkey: demo::OPENAPI_SUPER_OPENKEY.into(),
            ..Default::default()
        }),
        version: DawankaDataVersion::V2 as i32,
    }
}
