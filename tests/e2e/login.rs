//! MiniGameLoginService.Code2Session end to end: a login through gamegate,
//! then storage calls without a session key (gamegate keeps it), single-use
//! and expiring codes, a newer login replacing the kept key, who receives the
//! key, the key never in a log line, and a fleet sharing the kept keys.

use std::{net::SocketAddr, time::Duration};

use gamegate::{
    config::Caller,
    proto::{
        Code2SessionRequest, Code2SessionResponse, KeyValue, MiniGameUser,
        RemoveUserStorageRequest, SetUserStorageRequest,
        mini_game_login_service_client::MiniGameLoginServiceClient,
        storage_service_client::StorageServiceClient,
    },
    sandbox::{self, SandboxConfig},
};
use secrecy::SecretString;
use serde_json::json;
use tonic::{Code, Request, transport::Channel};

use crate::{
    binary::Gamegate,
    common::{Harness, demo, expect_error, loopback},
    fleet::{ONE_FLEET_AT_A_TIME, require_redis, unique_prefix},
};

const OPENID: &str = demo::MINIGAME_ALICE_OPENID;

fn login(js_code: &str) -> Code2SessionRequest {
    Code2SessionRequest {
        app_id: demo::MINIGAME_APPID.into(),
        js_code: js_code.into(),
    }
}

fn store(pairs: &[(&str, &str)], session_key: &str) -> SetUserStorageRequest {
    SetUserStorageRequest {
        app_id: demo::MINIGAME_APPID.into(),
        user: Some(MiniGameUser {
            openid: OPENID.into(),
            session_key: session_key.into(),
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

/// What qq.login() gives the client: a code minted by the sandbox.
async fn mint(harness: &Harness, openid: &str) -> String {
    let minted = harness
        .admin_post(
            "/minigame/codes",
            json!({"appid": demo::MINIGAME_APPID, "openid": openid}),
        )
        .await;
    minted["js_code"].as_str().expect("a js_code").to_string()
}

fn login_client(harness: &Harness) -> MiniGameLoginServiceClient<Channel> {
    MiniGameLoginServiceClient::new(harness.channel.clone())
}

async fn log_in(harness: &Harness) -> Code2SessionResponse {
    let code = mint(harness, OPENID).await;
    login_client(harness)
        .code2_session(login(&code))
        .await
        .expect("the login succeeds")
        .into_inner()
}

#[tokio::test]
async fn a_login_lets_storage_calls_leave_the_session_key_out() {
    let harness = Harness::start().await;
    let answer = log_in(&harness).await;
    assert_eq!(answer.openid, OPENID);
    assert_eq!(
        answer.session_key, "",
        "not returned unless configured to be"
    );

    let mut storage = harness.storage();
    storage
        .set_user_storage(store(&[("score", "7"), ("gold", "9")], ""))
        .await
        .expect("signed with the kept session key");
    let stored = harness.stored(demo::MINIGAME_APPID, OPENID).await;
    assert_eq!(stored["kv"], json!({"score": "7", "gold": "9"}));

    storage
        .remove_user_storage(RemoveUserStorageRequest {
            app_id: demo::MINIGAME_APPID.into(),
            user: Some(MiniGameUser {
                openid: OPENID.into(),
                session_key: String::new(),
            }),
            keys: vec!["gold".into()],
        })
        .await
        .expect("signed with the kept session key");
    let stored = harness.stored(demo::MINIGAME_APPID, OPENID).await;
    assert_eq!(stored["kv"], json!({"score": "7"}));

    // The login issued a new key: the demo's old one is refused now.
    expect_error(
        storage
            .set_user_storage(store(&[("score", "8")], demo::MINIGAME_ALICE_SESSION_KEY))
            .await,
        Code::Unauthenticated,
        "SESSION_KEY_INVALID",
    );
}

#[tokio::test]
async fn without_a_login_a_call_without_a_key_needs_one() {
    let harness = Harness::start().await;
    let error = expect_error(
        harness
            .storage()
            .set_user_storage(store(&[("a", "1")], ""))
            .await,
        Code::Unauthenticated,
        "SESSION_LOGIN_REQUIRED",
    );
    assert_eq!(error.domain, "gamegate");
    assert!(error.message.contains("Code2Session"), "{}", error.message);
    assert_eq!(
        harness
            .requests("/api/openDataContext/set_user_storage")
            .await,
        0,
        "nothing was sent"
    );
    // An explicit key keeps today's behaviour.
    harness
        .storage()
        .set_user_storage(store(&[("a", "1")], demo::MINIGAME_ALICE_SESSION_KEY))
        .await
        .expect("an explicit key signs the call");
}

#[tokio::test]
async fn a_used_or_expired_code_is_refused_and_never_retried() {
    let harness = Harness::start().await;
    let code = mint(&harness, OPENID).await;
    let mut client = login_client(&harness);
    client.code2_session(login(&code)).await.expect("first use");
    let error = expect_error(
        client.code2_session(login(&code)).await,
        Code::Unauthenticated,
        "LOGIN_CODE_INVALID",
    );
    assert_eq!(error.domain, "api.q.qq.com");
    assert_eq!(error.metadata["upstream_code"], "40029");
    assert!(
        !error.message.contains(&code),
        "the code is not echoed: {}",
        error.message
    );
    assert_eq!(harness.requests("/sns/jscode2session").await, 2);

    harness.sandbox_config(json!({"code_ttl_secs": 0.2})).await;
    let code = mint(&harness, OPENID).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    expect_error(
        client.code2_session(login(&code)).await,
        Code::Unauthenticated,
        "LOGIN_CODE_INVALID",
    );

    // Busy: UNAVAILABLE, and not resent (the code would be spent).
    harness.sandbox_config(json!({"code_ttl_secs": 300})).await;
    harness
        .fault(json!({"path": "/sns/jscode2session", "busy": true}))
        .await;
    let before = harness.requests("/sns/jscode2session").await;
    let code = mint(&harness, OPENID).await;
    expect_error(
        client.code2_session(login(&code)).await,
        Code::Unavailable,
        "UPSTREAM_BUSY",
    );
    assert_eq!(harness.requests("/sns/jscode2session").await, before + 1);
}

#[tokio::test]
async fn a_user_logging_in_too_often_is_rate_limited() {
    let harness = Harness::start().await;
    let mut client = login_client(&harness);
    for _ in 0..100 {
        let code = mint(&harness, OPENID).await;
        client.code2_session(login(&code)).await.expect("a login");
    }
    let code = mint(&harness, OPENID).await;
    let error = expect_error(
        client.code2_session(login(&code)).await,
        Code::ResourceExhausted,
        "UPSTREAM_RATE_LIMITED",
    );
    assert_eq!(error.metadata["upstream_code"], "45011");
}

#[tokio::test]
async fn a_newer_login_replaces_the_kept_key() {
    let harness = Harness::start_with(|config| {
        config.qq_minigame.as_mut().unwrap().return_session_keys = true;
    })
    .await;
    let first = log_in(&harness).await.session_key;
    let second = log_in(&harness).await.session_key;
    assert!(!first.is_empty() && !second.is_empty());
    assert_ne!(first, second);

    let mut storage = harness.storage();
    expect_error(
        storage.set_user_storage(store(&[("k", "1")], &first)).await,
        Code::Unauthenticated,
        "SESSION_KEY_INVALID",
    );
    storage
        .set_user_storage(store(&[("k", "2")], ""))
        .await
        .expect("the kept key is the newer one");
    storage
        .set_user_storage(store(&[("k", "3")], &second))
        .await
        .expect("the newer key, sent explicitly");
    let stored = harness.stored(demo::MINIGAME_APPID, OPENID).await;
    assert_eq!(stored["kv"], json!({"k": "3"}));
}

#[tokio::test]
async fn only_callers_allowed_to_receive_session_keys_get_them() {
    let caller = |name: &str, token: &str, receive: bool| Caller {
        name: name.into(),
        token: SecretString::from(token),
        token_file: None,
        certificate_san: None,
        apps: vec!["*".into()],
        receive_session_keys: receive,
    };
    let harness = Harness::start_with(|config| {
        config.callers = vec![
            caller("lobby", "lobby-token-0123456789", false),
            caller("auth", "auth-token-0123456789", true),
        ];
    })
    .await;
    let call = |token: &str, code: String| {
        let mut request = Request::new(login(&code));
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        request
    };
    let mut client = login_client(&harness);
    let lobby = client
        .code2_session(call("lobby-token-0123456789", mint(&harness, OPENID).await))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(lobby.openid, OPENID);
    assert_eq!(lobby.session_key, "");
    let auth = client
        .code2_session(call("auth-token-0123456789", mint(&harness, OPENID).await))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(auth.session_key.len(), 24);
    // The key it received is the one gamegate keeps, and the sandbox's now.
    let mut request = Request::new(store(&[("x", "1")], &auth.session_key));
    request.metadata_mut().insert(
        "authorization",
        "Bearer lobby-token-0123456789".parse().unwrap(),
    );
    harness.storage().set_user_storage(request).await.unwrap();
}

/// Two replicas (real processes, trace logs) sharing a Redis prefix: a login
/// on one, a storage call without a key on the other; the key is in no line
/// either wrote.
#[tokio::test]
async fn replicas_share_kept_keys_and_never_log_them() {
    require_redis(6379);
    let _one_fleet = ONE_FLEET_AT_A_TIME.lock().await;
    let sandbox = sandbox::spawn(SandboxConfig::demo(), loopback())
        .await
        .expect("sandbox starts");
    let config = format!(
        "listen = \"127.0.0.1:0\"\ndrain_delay_ms = 0\n\
         [[callers]]\nname = \"auth\"\ntoken = \"auth-token-0123456789\"\napps = [\"*\"]\n\
         receive_session_keys = true\n\
         [store]\nredis_url = \"redis://127.0.0.1:6379\"\nkey_prefix = \"{}\"\n\
         [qq_minigame]\nbase_url = \"{}\"\n\
         [qq_minigame.apps.{}]\nsecret = \"{}\"\n",
        unique_prefix("login"),
        sandbox.base_url(),
        demo::MINIGAME_APPID,
        demo::MINIGAME_SECRET,
    );
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let mut gamegate = Gamegate::spawn("serve", &config, &[("GAMEGATE_LOG", "trace")]);
        let mut seen = Vec::new();
        let addr: SocketAddr = gamegate.serving(&mut seen);
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .expect("a replica accepts connections");
        replicas.push((gamegate, seen, channel));
    }
    fn authorized<T>(message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.metadata_mut().insert(
            "authorization",
            "Bearer auth-token-0123456789".parse().unwrap(),
        );
        request
    }
    let client = reqwest::Client::new();
    let minted: serde_json::Value = client
        .post(format!("{}/_sandbox/minigame/codes", sandbox.base_url()))
        .json(&json!({"appid": demo::MINIGAME_APPID, "openid": OPENID}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = minted["js_code"].as_str().unwrap().to_string();
    let answer = MiniGameLoginServiceClient::new(replicas[0].2.clone())
        .code2_session(authorized(login(&code)))
        .await
        .expect("the login on the first replica")
        .into_inner();
    let key = answer.session_key;
    assert_eq!(key.len(), 24);
    StorageServiceClient::new(replicas[1].2.clone())
        .set_user_storage(authorized(store(&[("fleet", "1")], "")))
        .await
        .expect("the second replica signs with the key the first kept");
    let stored: serde_json::Value = client
        .get(format!(
            "{}/_sandbox/minigame/storage?appid={}&openid={OPENID}",
            sandbox.base_url(),
            demo::MINIGAME_APPID
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stored["kv"], json!({"fleet": "1"}));

    let mut lines = Vec::new();
    for (mut gamegate, seen, _) in replicas {
        let output = gamegate.stop(seen);
        lines.extend(output.text());
        for secret in [key.as_str(), code.as_str(), demo::MINIGAME_SECRET] {
            assert!(
                output.containing(secret).is_empty(),
                "a credential in the log: {:?}",
                output.containing(secret)
            );
        }
    }
    assert!(
        lines.iter().any(|line| line.contains("session key kept")),
        "trace logs were written: {lines:#?}"
    );
}

#[test]
fn debug_output_redacts_login_codes_and_issued_keys() {
    let request = login("the-login-code-0123");
    let answer = Code2SessionResponse {
        openid: OPENID.into(),
        unionid: String::new(),
        session_key: "the-issued-session-key".into(),
    };
    let text = format!("{request:?} {answer:?}");
    assert!(!text.contains("the-login-code-0123"), "{text}");
    assert!(!text.contains("the-issued-session-key"), "{text}");
    assert!(text.contains(OPENID), "{text}");
}
