//! AuthService end to end against the sandbox's MSDK emulation: the three
//! login-state checks (Mobile QQ, WeChat, guest), pf / pfkey, and what every
//! MSDK call shares (msdkExtInfo, the sig, msdktea, the error envelopes).

use gamegate::proto::{
    CheckTokenRequest, GetPfValRequest, GuestCheckTokenRequest, MsdkCallOptions, PfOperatingSystem,
    VerifyLoginRequest, WxUserLogin,
};
use md5::{Digest, Md5};
use serde_json::json;
use tonic::Code;

use crate::common::{Harness, demo, expect_error};

const VERIFY_PATH: &str = "/auth/verify_login";
const CHECK_PATH: &str = "/auth/check_token";
const GUEST_PATH: &str = "/auth/guest_check_token";
const PFVAL_PATH: &str = "/auth/get_pfval";
const MSDK_DOMAIN: &str = "msdk.qq.com";

fn ext_info(value: &str) -> Option<MsdkCallOptions> {
    Some(MsdkCallOptions {
        msdk_ext_info: value.into(),
        https_urls: false,
    })
}

fn verify_request(openid: &str, openkey: &str) -> VerifyLoginRequest {
    VerifyLoginRequest {
        app_id: demo::MSDK_QQ_APPID.into(),
        openid: openid.into(),
        openkey: openkey.into(),
        userip: "192.168.5.114".into(),
        options: None,
    }
}

fn check_request(openid: &str, token: &str) -> CheckTokenRequest {
    CheckTokenRequest {
        app_id: demo::MSDK_WX_APPID.into(),
        user: Some(WxUserLogin {
            openid: openid.into(),
            access_token: token.into(),
        }),
        options: None,
    }
}

fn guest_request(token: &str) -> GuestCheckTokenRequest {
    GuestCheckTokenRequest {
        app_id: demo::MSDK_GUEST_APPID.into(),
        guest_id: demo::MSDK_GUEST_OPENID.into(),
        access_token: token.into(),
        options: None,
    }
}

fn md5_hex(parts: &[&str]) -> String {
    let mut md5 = Md5::new();
    for part in parts {
        md5.update(part.as_bytes());
    }
    hex::encode(md5.finalize())
}

#[tokio::test]
async fn verify_login_accepts_a_valid_qq_login_and_echoes_msdk_ext_info() {
    let harness = Harness::start().await;
    let mut auth = harness.auth();
    let mut request = verify_request(demo::MSDK_QQ_ALICE_OPENID, demo::MSDK_QQ_ALICE_TOKEN);
    request.options = ext_info("trace_42");
    let answer = auth
        .verify_login(request)
        .await
        .expect("a valid login state is accepted")
        .into_inner();
    assert_eq!(answer.msdk_ext_info, "trace_42");

    // Without msdkExtInfo there is nothing to echo.
    let answer = auth
        .verify_login(verify_request(
            demo::MSDK_QQ_BOB_OPENID,
            demo::MSDK_QQ_BOB_TOKEN,
        ))
        .await
        .expect("bob is logged in too")
        .into_inner();
    assert_eq!(answer.msdk_ext_info, "");
    assert_eq!(harness.requests(VERIFY_PATH).await, 2);
}

#[tokio::test]
async fn verify_login_refuses_expired_wrong_and_reauth_logins() {
    let harness = Harness::start().await;
    let mut auth = harness.auth();

    // Another user's token: -10000 with the QQ platform's own code in "code,message".
    let error = expect_error(
        auth.verify_login(verify_request(
            demo::MSDK_QQ_ALICE_OPENID,
            demo::MSDK_QQ_BOB_TOKEN,
        ))
        .await,
        Code::Unauthenticated,
        "USER_TOKEN_INVALID",
    );
    assert_eq!(error.domain, MSDK_DOMAIN);
    assert_eq!(error.metadata["upstream_code"], "-10000");
    assert_eq!(error.metadata["plat_code"], "100015");
    assert_eq!(error.metadata["err_type"], "3");
    assert_eq!(error.metadata["endpoint"], VERIFY_PATH);
    assert_eq!(
        error.metadata["upstream_message"],
        "100015,access token invalid or expired"
    );
    assert!(!error.message.contains(demo::MSDK_QQ_BOB_TOKEN));

    // Alice's own token, expired on the platform.
    harness
        .msdk_expire_token(demo::MSDK_QQ_APPID, demo::MSDK_QQ_ALICE_OPENID)
        .await;
    let error = expect_error(
        auth.verify_login(verify_request(
            demo::MSDK_QQ_ALICE_OPENID,
            demo::MSDK_QQ_ALICE_TOKEN,
        ))
        .await,
        Code::Unauthenticated,
        "USER_TOKEN_INVALID",
    );
    assert_eq!(error.metadata["plat_code"], "100015");
    assert_eq!(error.metadata["err_type"], "3");
    assert!(!error.message.contains(demo::MSDK_QQ_ALICE_TOKEN));

    // Erin changed her QQ password: re-authorise (-73, err_type 2), not a token refresh.
    let error = expect_error(
        auth.verify_login(verify_request(
            demo::MSDK_QQ_ERIN_OPENID,
            demo::MSDK_QQ_ERIN_TOKEN,
        ))
        .await,
        Code::Unauthenticated,
        "USER_REAUTH_REQUIRED",
    );
    assert_eq!(error.domain, MSDK_DOMAIN);
    assert_eq!(error.metadata["upstream_code"], "-10000");
    assert_eq!(error.metadata["plat_code"], "-73");
    assert_eq!(error.metadata["err_type"], "2");
    assert_eq!(
        error.metadata["upstream_message"],
        "-73,user changed password"
    );
    // Refused logins are not retried, although the route is a read.
    assert_eq!(harness.requests(VERIFY_PATH).await, 3);
}

#[tokio::test]
async fn auth_limits_are_checked_before_the_platform_is_called() {
    let harness = Harness::start().await;
    let mut auth = harness.auth();
    let cases = [
        (
            VerifyLoginRequest {
                app_id: "wx100703379".into(),
                ..verify_request(demo::MSDK_QQ_ALICE_OPENID, demo::MSDK_QQ_ALICE_TOKEN)
            },
            "FIELD_INVALID",
            "app_id",
        ),
        (
            verify_request(demo::MSDK_QQ_ALICE_OPENID, ""),
            "FIELD_REQUIRED",
            "openkey",
        ),
        (
            verify_request("A3284A81-2ECA", demo::MSDK_QQ_ALICE_TOKEN),
            "FIELD_INVALID",
            "openid",
        ),
        (
            VerifyLoginRequest {
                options: ext_info("trace-42"),
                ..verify_request(demo::MSDK_QQ_ALICE_OPENID, demo::MSDK_QQ_ALICE_TOKEN)
            },
            "FIELD_INVALID",
            "options.msdk_ext_info",
        ),
        (
            VerifyLoginRequest {
                options: ext_info(&"x".repeat(129)),
                ..verify_request(demo::MSDK_QQ_ALICE_OPENID, demo::MSDK_QQ_ALICE_TOKEN)
            },
            "FIELD_INVALID",
            "options.msdk_ext_info",
        ),
    ];
    for (request, reason, field) in cases {
        let error = expect_error(
            auth.verify_login(request).await,
            Code::InvalidArgument,
            reason,
        );
        assert_eq!(error.domain, "gamegate");
        assert_eq!(error.bad_request_fields(), vec![field]);
    }

    let error = expect_error(
        auth.check_token(CheckTokenRequest {
            user: None,
            ..check_request(demo::MSDK_WX_ALICE_OPENID, demo::MSDK_WX_ALICE_TOKEN)
        })
        .await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_eq!(error.bad_request_fields(), vec!["user"]);

    let error = expect_error(
        auth.guest_check_token(GuestCheckTokenRequest {
            guest_id: String::new(),
            ..guest_request(demo::MSDK_GUEST_TOKEN)
        })
        .await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_eq!(error.bad_request_fields(), vec!["guest_id"]);

    let error = expect_error(
        auth.get_pf_val(GetPfValRequest {
            app_id: demo::MSDK_QQ_APPID.into(),
            openid: demo::MSDK_QQ_ALICE_OPENID.into(),
            access_token: String::new(),
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_eq!(error.bad_request_fields(), vec!["access_token"]);

    // None of them reached the sandbox.
    assert_eq!(harness.total_requests().await, 0);
}

#[tokio::test]
async fn check_token_accepts_a_wechat_login_and_refuses_bad_tokens() {
    let harness = Harness::start().await;
    let mut auth = harness.auth();
    let answer = auth
        .check_token(CheckTokenRequest {
            options: ext_info("wx_check_7"),
            ..check_request(demo::MSDK_WX_ALICE_OPENID, demo::MSDK_WX_ALICE_TOKEN)
        })
        .await
        .expect("the seed's own example token is valid")
        .into_inner();
    assert_eq!(answer.msdk_ext_info, "wx_check_7");

    // Someone else's token: WeChat's 40001 inside -20000.
    let error = expect_error(
        auth.check_token(check_request(
            demo::MSDK_WX_ALICE_OPENID,
            demo::MSDK_WX_BOB_TOKEN,
        ))
        .await,
        Code::Unauthenticated,
        "USER_TOKEN_INVALID",
    );
    assert_eq!(error.domain, MSDK_DOMAIN);
    assert_eq!(error.metadata["upstream_code"], "-20000");
    assert_eq!(error.metadata["plat_code"], "40001");
    assert_eq!(error.metadata["err_type"], "3");
    assert_eq!(error.metadata["endpoint"], CHECK_PATH);
    assert!(!error.message.contains(demo::MSDK_WX_BOB_TOKEN));

    // An expired token: 42001.
    harness
        .msdk_expire_token(demo::MSDK_WX_APPID, demo::MSDK_WX_ALICE_OPENID)
        .await;
    let error = expect_error(
        auth.check_token(CheckTokenRequest {
            options: ext_info("wx_check_8"),
            ..check_request(demo::MSDK_WX_ALICE_OPENID, demo::MSDK_WX_ALICE_TOKEN)
        })
        .await,
        Code::Unauthenticated,
        "USER_TOKEN_INVALID",
    );
    assert_eq!(error.metadata["plat_code"], "42001");
    assert_eq!(
        error.metadata["upstream_message"],
        "42001,access_token expired"
    );

    // A token issued afterwards is valid; the replaced one still answers "expired".
    let issued = harness
        .admin_post(
            "/msdk/tokens/issue",
            json!({"appid": demo::MSDK_WX_APPID, "openid": demo::MSDK_WX_ALICE_OPENID}),
        )
        .await;
    let fresh = issued["access_token"].as_str().unwrap().to_string();
    auth.check_token(check_request(demo::MSDK_WX_ALICE_OPENID, &fresh))
        .await
        .expect("the issued token is valid");
    assert_eq!(harness.requests(CHECK_PATH).await, 4);
}

#[tokio::test]
async fn guest_check_token_accepts_the_guest_and_only_on_the_guest_app() {
    let harness = Harness::start().await;
    let mut auth = harness.auth();
    let answer = auth
        .guest_check_token(GuestCheckTokenRequest {
            options: ext_info("guest_1"),
            ..guest_request(demo::MSDK_GUEST_TOKEN)
        })
        .await
        .expect("the guest's token is valid")
        .into_inner();
    assert_eq!(answer.msdk_ext_info, "guest_1");

    let error = expect_error(
        auth.guest_check_token(guest_request(demo::MSDK_QQ_ALICE_TOKEN))
            .await,
        Code::Unauthenticated,
        "USER_TOKEN_INVALID",
    );
    assert_eq!(error.metadata["upstream_code"], "-10000");
    assert_eq!(error.metadata["plat_code"], "100015");

    // The interface belongs to guest apps: the QQ app has no permission for it (-303).
    let error = expect_error(
        auth.guest_check_token(GuestCheckTokenRequest {
            app_id: demo::MSDK_QQ_APPID.into(),
            ..guest_request(demo::MSDK_GUEST_TOKEN)
        })
        .await,
        Code::FailedPrecondition,
        "MSDK_NO_PERMISSION",
    );
    assert_eq!(error.domain, MSDK_DOMAIN);
    assert_eq!(error.metadata["upstream_code"], "-303");
    assert_eq!(error.metadata["endpoint"], GUEST_PATH);
    assert!(!error.metadata.contains_key("plat_code"));
}

#[tokio::test]
async fn get_pf_val_computes_pf_and_pfkey_for_qq_wechat_and_guests() {
    let harness = Harness::start().await;
    let mut auth = harness.auth();

    // QQ: the accessToken is the pay token.
    let answer = auth
        .get_pf_val(GetPfValRequest {
            app_id: demo::MSDK_QQ_APPID.into(),
            openid: demo::MSDK_QQ_ALICE_OPENID.into(),
            access_token: demo::MSDK_QQ_ALICE_PAY_TOKEN.into(),
            platform: "desktop_m_qq".into(),
            reg_channel: "2002".into(),
            os: PfOperatingSystem::Android as i32,
            install_channel: "73213123".into(),
            offer_id: "1104674695".into(),
            options: ext_info("pf_1"),
            version: "3.0.0a".into(),
        })
        .await
        .expect("pf of a QQ user")
        .into_inner();
    let pf = format!(
        "desktop_m_qq-2002-android-73213123-qq-{}-{}",
        demo::MSDK_QQ_APPID,
        demo::MSDK_QQ_ALICE_OPENID
    );
    assert_eq!(answer.pf, pf);
    assert_eq!(
        answer.pf_key,
        md5_hex(&[demo::MSDK_QQ_APPKEY, &pf, "1104674695"])
    );
    assert_eq!(answer.msdk_ext_info, "pf_1");

    // WeChat on iOS: the seed's "iap".
    let answer = auth
        .get_pf_val(GetPfValRequest {
            app_id: demo::MSDK_WX_APPID.into(),
            openid: demo::MSDK_WX_ALICE_OPENID.into(),
            access_token: demo::MSDK_WX_ALICE_TOKEN.into(),
            platform: "desktop_m_wx".into(),
            reg_channel: "2002".into(),
            os: PfOperatingSystem::Ios as i32,
            install_channel: "73213123".into(),
            offer_id: String::new(),
            options: None,
            version: String::new(),
        })
        .await
        .expect("pf of a WeChat user")
        .into_inner();
    let pf = format!(
        "desktop_m_wx-2002-iap-73213123-wx-{}-{}",
        demo::MSDK_WX_APPID,
        demo::MSDK_WX_ALICE_OPENID
    );
    assert_eq!(answer.pf, pf);
    assert_eq!(answer.pf_key, md5_hex(&[demo::MSDK_WX_APPKEY, &pf]));

    // Guests have their own platform value.
    let answer = auth
        .get_pf_val(GetPfValRequest {
            app_id: demo::MSDK_GUEST_APPID.into(),
            openid: demo::MSDK_GUEST_OPENID.into(),
            access_token: demo::MSDK_GUEST_TOKEN.into(),
            platform: "desktop_m_guest".into(),
            reg_channel: "1".into(),
            os: PfOperatingSystem::Android as i32,
            install_channel: "2".into(),
            ..Default::default()
        })
        .await
        .expect("pf of a guest")
        .into_inner();
    assert_eq!(
        answer.pf,
        format!(
            "desktop_m_guest-1-android-2-guest-{}-{}",
            demo::MSDK_GUEST_APPID,
            demo::MSDK_GUEST_OPENID
        )
    );
    assert_eq!(answer.pf_key.len(), 32);
}

#[tokio::test]
async fn get_pf_val_refuses_the_login_token_of_a_qq_user_and_incomplete_channels() {
    let harness = Harness::start().await;
    let mut auth = harness.auth();
    let request = GetPfValRequest {
        app_id: demo::MSDK_QQ_APPID.into(),
        openid: demo::MSDK_QQ_ALICE_OPENID.into(),
        // QQ wants the pay token here, not the login token.
        access_token: demo::MSDK_QQ_ALICE_TOKEN.into(),
        platform: "desktop_m_qq".into(),
        reg_channel: "2002".into(),
        os: PfOperatingSystem::Android as i32,
        install_channel: "73213123".into(),
        ..Default::default()
    };
    let error = expect_error(
        auth.get_pf_val(request.clone()).await,
        Code::Unauthenticated,
        "USER_TOKEN_INVALID",
    );
    assert_eq!(error.metadata["plat_code"], "100015");
    assert_eq!(error.metadata["endpoint"], PFVAL_PATH);

    // The sandbox needs the channels to build the pf: a client error (-1001).
    let error = expect_error(
        auth.get_pf_val(GetPfValRequest {
            access_token: demo::MSDK_QQ_ALICE_PAY_TOKEN.into(),
            platform: String::new(),
            ..request
        })
        .await,
        Code::InvalidArgument,
        "MSDK_CLIENT_ERROR",
    );
    assert_eq!(error.domain, MSDK_DOMAIN);
    assert_eq!(error.metadata["upstream_code"], "-1001");
    assert_eq!(error.metadata["upstream_message"], "platform invalid");
}

#[tokio::test]
async fn a_wrong_msdkkey_is_gamegates_own_problem() {
    let harness = Harness::start_with(|config| {
        config
            .msdk
            .as_mut()
            .unwrap()
            .apps
            .get_mut(demo::MSDK_QQ_APPID)
            .unwrap()
            .msdkkey = secrecy::SecretString::from("not-the-msdkkey");
    })
    .await;
    let error = expect_error(
        harness
            .auth()
            .verify_login(verify_request(
                demo::MSDK_QQ_ALICE_OPENID,
                demo::MSDK_QQ_ALICE_TOKEN,
            ))
            .await,
        Code::Internal,
        "SIGNATURE_REJECTED",
    );
    assert_eq!(error.domain, MSDK_DOMAIN);
    assert_eq!(error.metadata["upstream_code"], "-502");
    assert_eq!(error.metadata["upstream_message"], "sig check failed");
    assert!(
        !error.message.contains("not-the-msdkkey"),
        "{}",
        error.message
    );
    assert!(
        error
            .metadata
            .values()
            .all(|value| !value.contains("not-the-msdkkey"))
    );
    // Refused once, not retried.
    assert_eq!(harness.requests(VERIFY_PATH).await, 1);

    // The other apps keep their own keys.
    harness
        .auth()
        .check_token(check_request(
            demo::MSDK_WX_ALICE_OPENID,
            demo::MSDK_WX_ALICE_TOKEN,
        ))
        .await
        .expect("the WeChat app signs with its own key");
}

#[tokio::test]
async fn encode_1_signs_with_the_appkey() {
    let harness = Harness::start_with(|config| {
        let apps = &mut config.msdk.as_mut().unwrap().apps;
        let qq = apps.get_mut(demo::MSDK_QQ_APPID).unwrap();
        qq.encode = 1;
        qq.appkey = Some(secrecy::SecretString::from(demo::MSDK_QQ_APPKEY));
        // Not used with encode=1.
        qq.msdkkey = secrecy::SecretString::from("not-the-msdkkey");
        let wx = apps.get_mut(demo::MSDK_WX_APPID).unwrap();
        wx.encode = 1;
        wx.appkey = Some(secrecy::SecretString::from("not-the-appkey"));
    })
    .await;
    let mut auth = harness.auth();
    let answer = auth
        .verify_login(VerifyLoginRequest {
            options: ext_info("encode_1"),
            ..verify_request(demo::MSDK_QQ_ALICE_OPENID, demo::MSDK_QQ_ALICE_TOKEN)
        })
        .await
        .expect("signed with the appkey")
        .into_inner();
    assert_eq!(answer.msdk_ext_info, "encode_1");
    let error = expect_error(
        auth.check_token(check_request(
            demo::MSDK_WX_ALICE_OPENID,
            demo::MSDK_WX_ALICE_TOKEN,
        ))
        .await,
        Code::Internal,
        "SIGNATURE_REJECTED",
    );
    assert_eq!(error.metadata["upstream_code"], "-502");
    assert!(!error.message.contains("not-the-appkey"));
}

#[tokio::test]
async fn msdktea_encrypts_both_ways_end_to_end() {
    let harness = Harness::start_with(|config| {
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
    let auth = harness.auth();
    let answer = auth
        .clone()
        .verify_login(VerifyLoginRequest {
            options: ext_info("tea_1"),
            ..verify_request(demo::MSDK_QQ_ALICE_OPENID, demo::MSDK_QQ_ALICE_TOKEN)
        })
        .await;
    assert_eq!(
        answer
            .expect("an encrypted call succeeds")
            .into_inner()
            .msdk_ext_info,
        "tea_1"
    );

    // Errors come back encrypted too, and decode the same.
    let result = auth
        .clone()
        .verify_login(verify_request(
            demo::MSDK_QQ_ERIN_OPENID,
            demo::MSDK_QQ_ERIN_TOKEN,
        ))
        .await;
    let error = expect_error(result, Code::Unauthenticated, "USER_REAUTH_REQUIRED");
    assert_eq!(error.metadata["plat_code"], "-73");
    assert_eq!(error.metadata["err_type"], "2");

    let relation = harness.relation();
    let answer = relation
        .clone()
        .get_qq_profile(gamegate::proto::GetQqProfileRequest {
            app_id: demo::MSDK_QQ_APPID.into(),
            user: Some(gamegate::proto::QqUserLogin {
                openid: demo::MSDK_QQ_ALICE_OPENID.into(),
                access_token: demo::MSDK_QQ_ALICE_TOKEN.into(),
            }),
            options: None,
        })
        .await;
    let answer = answer
        .expect("an encrypted relation call succeeds")
        .into_inner();
    assert_eq!(answer.nick_name, "Alice");
    assert_eq!(answer.yellow_vip_level, 5);

    // The sandbox saw encrypted bodies (a plain one with Content-Encrypt would be -304)
    // and encrypted its answers.
    let encryption = harness.admin_get("/msdk/encryption").await;
    assert_eq!(encryption["encrypted_requests"][VERIFY_PATH], 2);
    assert_eq!(encryption["encrypted_answers"][VERIFY_PATH], 2);
    assert_eq!(encryption["encrypted_requests"]["/relation/qqprofile"], 1);
    assert_eq!(encryption["plain_requests"], json!({}));

    // The WeChat app is not configured to encrypt.
    auth.clone()
        .check_token(check_request(
            demo::MSDK_WX_ALICE_OPENID,
            demo::MSDK_WX_ALICE_TOKEN,
        ))
        .await
        .expect("plain call");
    let encryption = harness.admin_get("/msdk/encryption").await;
    assert_eq!(encryption["plain_requests"][CHECK_PATH], 1);
    assert_eq!(encryption["encrypted_requests"].get(CHECK_PATH), None);
    assert_eq!(encryption["encrypted_answers"].get(CHECK_PATH), None);
}

#[tokio::test]
/// Regression: an encrypted answer must be recognised by its Content-Encrypt header;
/// about 1 in 256 msdktea ciphertexts start with '{' and once passed for plain JSON.
async fn every_msdktea_answer_is_decrypted_whatever_its_first_byte() {
    let harness = Harness::start_with(|config| {
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
    // Each answer's ciphertext starts with a random byte: with 2000 answers, one starts
    // with '{' but for a (255/256)^2000 < 0.05% chance.
    const TASKS: usize = 16;
    const CALLS: usize = 125;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..TASKS {
        let mut auth = harness.auth();
        tasks.spawn(async move {
            let mut failures = Vec::new();
            for _ in 0..CALLS {
                if let Err(status) = auth
                    .verify_login(verify_request(
                        demo::MSDK_QQ_ALICE_OPENID,
                        demo::MSDK_QQ_ALICE_TOKEN,
                    ))
                    .await
                {
                    failures.push(format!("{:?}: {}", status.code(), status.message()));
                }
            }
            failures
        });
    }
    let mut failures = Vec::new();
    while let Some(result) = tasks.join_next().await {
        failures.extend(result.expect("task runs"));
    }
    assert_eq!(
        harness.admin_get("/msdk/encryption").await["encrypted_answers"][VERIFY_PATH],
        TASKS * CALLS
    );
    assert!(
        failures.is_empty(),
        "{} of {} calls failed: {:?}",
        failures.len(),
        TASKS * CALLS,
        &failures[..failures.len().min(3)]
    );
}
