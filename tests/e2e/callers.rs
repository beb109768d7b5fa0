//! Caller authentication: configured callers must present their bearer token and
//! may use only their apps; probes stay open.

use gamegate::{config::Caller, proto::SetUserStorageRequest};
use secrecy::SecretString;
use tonic::{Code, Request};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::common::{Harness, alice_stores, demo, expect_error, super_player_dawanka_info};

const LOBBY_TOKEN: &str = "lobby-server-token-0123456789";

fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

fn storage_request() -> SetUserStorageRequest {
    alice_stores("score", "1")
}

#[tokio::test]
async fn callers_need_their_token_and_may_use_only_their_apps() {
    let harness = Harness::start_with(|config| {
        config.callers = vec![Caller {
            name: "lobby".into(),
            token: SecretString::from(LOBBY_TOKEN),
            token_file: None,
            certificate_san: None,
            apps: vec![demo::MINIGAME_APPID.into()],
            receive_session_keys: false,
        }];
    })
    .await;
    let mut storage = harness.storage();

    let error = expect_error(
        storage.set_user_storage(storage_request()).await,
        Code::Unauthenticated,
        "CALLER_UNAUTHENTICATED",
    );
    assert_eq!(error.domain, "gamegate");
    expect_error(
        storage
            .set_user_storage(with_token(storage_request(), "not-the-token-at-all"))
            .await,
        Code::Unauthenticated,
        "CALLER_UNAUTHENTICATED",
    );
    assert_eq!(harness.get_token_calls(demo::MINIGAME_APPID).await, 0);

    storage
        .set_user_storage(with_token(storage_request(), LOBBY_TOKEN))
        .await
        .expect("the lobby may use its mini-game app");

    let error = expect_error(
        harness
            .dawanka()
            .get_dawanka_info(with_token(super_player_dawanka_info(), LOBBY_TOKEN))
            .await,
        Code::PermissionDenied,
        "APP_NOT_ALLOWED",
    );
    assert_eq!(error.metadata["caller"], "lobby");
    assert_eq!(error.metadata["app_id"], demo::OPENAPI_APPID);

    // Health probes need no token.
    HealthClient::new(harness.channel.clone())
        .check(HealthCheckRequest::default())
        .await
        .expect("health is open to probes");
}
