//! Secrets never reach the logs: everything gamegate (and its sandbox, and the
//! libraries below them) logs at debug level, over successful and failing calls,
//! is searched for every secret involved.

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use gamegate::proto::{
    DawankaDataVersion, GetDawankaInfoRequest, GetQqProfileRequest, GetQqVideoVipRequest, KeyValue,
    MiniGameUser, QqGameUser, QqUserLogin, SetUserStorageRequest,
};
use secrecy::SecretString;
use serde_json::json;
use tracing_subscriber::fmt::MakeWriter;

use crate::common::{Harness, demo};

#[derive(Clone, Default)]
struct CapturedLog(Arc<Mutex<Vec<u8>>>);

impl Write for CapturedLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for CapturedLog {
    type Writer = CapturedLog;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

const WRONG_SECRET: &str = "wrong-app-secret-never-logged";

// One thread, so that every task of the gateway and the sandbox logs into the
// subscriber installed here.
#[tokio::test(flavor = "current_thread")]
async fn no_secret_is_ever_logged() {
    let log = CapturedLog::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("debug")
        .with_writer(log.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let storage_call = |session_key: &str| SetUserStorageRequest {
        app_id: demo::MINIGAME_APPID.into(),
        user: Some(MiniGameUser {
            openid: demo::MINIGAME_ALICE_OPENID.into(),
            session_key: session_key.into(),
        }),
        kv_list: vec![KeyValue {
            key: "score".into(),
            value: "1".into(),
        }],
    };
    let dawanka_call = |openkey: &str| GetDawankaInfoRequest {
        app_id: demo::OPENAPI_APPID.into(),
        user: Some(QqGameUser {
            openid: demo::OPENAPI_SUPER_OPENID.into(),
            openkey: openkey.into(),
            ..Default::default()
        }),
        version: DawankaDataVersion::V2 as i32,
    };

    let harness = Harness::start().await;
    let mut storage = harness.storage();
    let mut dawanka = harness.dawanka();
    storage
        .set_user_storage(storage_call(demo::MINIGAME_ALICE_SESSION_KEY))
        .await
        .unwrap();
    let _ = storage
        .set_user_storage(storage_call(demo::MINIGAME_BOB_SESSION_KEY))
        .await
        .unwrap_err();
    harness.revoke_tokens(demo::MINIGAME_APPID).await;
    storage
        .set_user_storage(storage_call(demo::MINIGAME_ALICE_SESSION_KEY))
        .await
        .unwrap();
    harness
        .fault(json!({"path": "/api/openDataContext/set_user_storage", "drop_connection": true}))
        .await;
    let _ = storage
        .set_user_storage(storage_call(demo::MINIGAME_ALICE_SESSION_KEY))
        .await
        .unwrap_err();
    dawanka
        .get_dawanka_info(dawanka_call(demo::OPENAPI_SUPER_OPENKEY))
        .await
        .unwrap();
    let _ = dawanka
        .get_dawanka_info(dawanka_call(demo::OPENAPI_UNLIMITED_OPENKEY))
        .await
        .unwrap_err();

    let wrong_secret = Harness::start_with(|config| {
        config
            .qq_minigame
            .as_mut()
            .unwrap()
            .apps
            .get_mut(demo::MINIGAME_APPID)
            .unwrap()
            .secret = SecretString::from(WRONG_SECRET);
    })
    .await;
    let _ = wrong_secret
        .storage()
        .set_user_storage(storage_call(demo::MINIGAME_ALICE_SESSION_KEY))
        .await
        .unwrap_err();

    // MSDK: an encrypted app, a refused token, a signed video VIP call.
    let msdk = Harness::start_with(|config| {
        config
            .msdk
            .as_mut()
            .unwrap()
            .apps
            .get_mut(demo::MSDK_QQ_APPID)
            .unwrap()
            .encrypt = true;
    })
    .await;
    let qq_login = |token: &str| {
        Some(QqUserLogin {
            openid: demo::MSDK_QQ_ALICE_OPENID.into(),
            access_token: token.into(),
        })
    };
    let mut relation =
        gamegate::proto::relation_service_client::RelationServiceClient::new(msdk.channel.clone());
    relation
        .get_qq_profile(GetQqProfileRequest {
            app_id: demo::MSDK_QQ_APPID.into(),
            user: qq_login(demo::MSDK_QQ_ALICE_TOKEN),
            options: None,
        })
        .await
        .unwrap();
    let _ = relation
        .get_qq_profile(GetQqProfileRequest {
            app_id: demo::MSDK_QQ_APPID.into(),
            user: qq_login(demo::MSDK_QQ_BOB_TOKEN),
            options: None,
        })
        .await
        .unwrap_err();
    gamegate::proto::profile_service_client::ProfileServiceClient::new(msdk.channel.clone())
        .get_qq_video_vip(GetQqVideoVipRequest {
            app_id: demo::MSDK_QQ_APPID.into(),
            user: qq_login(demo::MSDK_QQ_ALICE_TOKEN),
            channel_id: demo::MSDK_VIDEO_CHANNEL_ID as i32,
            options: None,
        })
        .await
        .unwrap();

    let captured = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(
        captured.contains("access token refused"),
        "the capture missed gamegate's own logs:\n{captured}"
    );
    for secret in [
        demo::MINIGAME_SECRET,
        WRONG_SECRET,
        demo::MINIGAME_ALICE_SESSION_KEY,
        demo::MINIGAME_BOB_SESSION_KEY,
        demo::OPENAPI_APPKEY,
        demo::OPENAPI_SUPER_OPENKEY,
        demo::OPENAPI_UNLIMITED_OPENKEY,
        demo::MSDK_QQ_MSDKKEY,
        demo::MSDK_QQ_APPKEY,
        demo::MSDK_QQ_ALICE_TOKEN,
        demo::MSDK_QQ_BOB_TOKEN,
        demo::MSDK_VIDEO_CHANNEL_SECRET,
        "access_token=",
        "accessToken",
        "secret=",
        "openkey=",
        "sig=",
    ] {
        assert!(
            !captured.contains(secret),
            "{secret:?} was logged:\n{}",
            captured
                .lines()
                .filter(|line| line.contains(secret))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
