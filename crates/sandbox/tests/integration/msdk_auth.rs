//! MSDK access checks, login states, guests, msdkExtInfo, https and msdktea over HTTP.

use gamegate_sandbox::demo;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;
use crate::msdk_client::*;

const VERIFY_LOGIN: &str = "/auth/verify_login";
const CHECK_TOKEN: &str = "/auth/check_token";
const GUEST_CHECK: &str = "/auth/guest_check_token";
const PFVAL: &str = "/auth/get_pfval";
const QQPROFILE: &str = "/relation/qqprofile";

/// The seed's verify_login example, with Alice's values.
fn verify_login() -> MsdkRequest {
    MsdkRequest::qq(
        VERIFY_LOGIN,
        demo::MSDK_QQ_ALICE_OPENID,
        json!({
            "appid": 100_703_379,
            "openid": demo::MSDK_QQ_ALICE_OPENID,
            "openkey": demo::MSDK_QQ_ALICE_TOKEN,
            "userip": "192.168.5.114",
        }),
    )
}

fn check_token(openid: &str, token: &str) -> MsdkRequest {
    MsdkRequest::wx(
        CHECK_TOKEN,
        openid,
        json!({"accessToken": token, "openid": openid}),
    )
}

#[tokio::test]
async fn login_checks_answer_as_the_seed_shows() {
    let h = start().await;
    assert_eq!(
        verify_login().send(&h).await,
        json!({"ret": 0, "msg": "user is logged in"})
    );
    let wx = check_token(demo::MSDK_WX_ALICE_OPENID, demo::MSDK_WX_ALICE_TOKEN);
    assert_eq!(wx.send(&h).await, json!({"ret": 0, "msg": "ok"}));
    // wxoauth is the same module; the seed's examples also post with a trailing slash and as
    // application/x-www-form-urlencoded.
    let mut alias = wx.clone();
    alias.path = "/wxoauth/check_token".into();
    assert_eq!(ret(&alias.send(&h).await), 0);
    let mut slash = wx.clone();
    slash.path = "/auth/check_token/".into();
    slash.content_type = "application/x-www-form-urlencoded";
    assert_eq!(ret(&slash.send(&h).await), 0);
    // encode=1 signs with the appkey instead.
    let mut appkey = verify_login();
    appkey.encode = Some("1".into());
    appkey.key = demo::MSDK_QQ_APPKEY.into();
    assert_eq!(ret(&appkey.send(&h).await), 0);

    let stats = h.get_json("/_sandbox/stats").await;
    assert_eq!(
        stats["requests"][CHECK_TOKEN], 3,
        "aliases count as one path"
    );
}

#[tokio::test]
async fn access_layer_codes_in_order() {
    let h = start().await;
    let code = |request: MsdkRequest| {
        let h = &h;
        async move {
            let answer = request.send(h).await;
            assert!(answer["msg"].is_string(), "{answer}");
            ret(&answer)
        }
    };
    let base = verify_login();

    let mut r = base.clone();
    r.appid = None;
    assert_eq!(code(r).await, -506, "appid missing");
    let mut r = base.clone();
    r.appid = Some("100000000".into());
    r.timestamp = None;
    assert_eq!(
        code(r).await,
        -504,
        "unknown appid comes before the other parameters"
    );
    for missing in ["timestamp", "sig", "encode"] {
        let mut r = base.clone();
        match missing {
            "timestamp" => r.timestamp = None,
            "sig" => r.sig = Some(String::new()),
            _ => r.encode = None,
        }
        assert_eq!(code(r).await, -506, "{missing} missing");
    }
    let mut r = base.clone();
    r.encode = Some("3".into());
    assert_eq!(code(r).await, -506, "encode 3");

    for (offset, expected) in [(-601, -502), (601, -502), (-590, 0), (590, 0)] {
        let mut r = base.clone();
        r.timestamp = Some((now() + offset).to_string());
        assert_eq!(code(r).await, expected, "timestamp offset {offset}");
    }
    let mut r = base.clone();
    r.timestamp = Some("yesterday".into());
    assert_eq!(code(r).await, -502, "timestamp not a number");
    let mut r = base.clone();
    r.sig = Some(msdk_sig("wrong-key", r.timestamp.as_deref().unwrap()));
    assert_eq!(code(r).await, -502, "wrong key");
    let mut r = base.clone();
    r.sig = Some(msdk_sig(demo::MSDK_QQ_MSDKKEY, r.timestamp.as_deref().unwrap()).to_uppercase());
    assert_eq!(code(r).await, -502, "uppercase sig");
    let mut r = base.clone();
    r.encode = Some("1".into());
    assert_eq!(code(r).await, -502, "encode=1 with the msdkkey");

    let mut r = base.clone();
    r.path = "/relation/no_such_interface".into();
    assert_eq!(code(r).await, -505);
    let mut r = base.clone();
    r.path = "/wxoauth/qqprofile".into();
    assert_eq!(code(r).await, -505, "qqprofile is not in the login module");
    assert_eq!(code(base.clone().raw_body(b"")).await, -501);
    assert_eq!(code(base.clone().raw_body(b"  \n")).await, -501);
    assert_eq!(code(base.clone().raw_body(b"appid=1&openid=2")).await, -304);
    assert_eq!(code(base.clone().raw_body(b"[1,2]")).await, -304);
    assert_eq!(code(base.clone().raw_body(&[0xff, 0xfe, b'{'])).await, -304);

    // Unknown interfaces are not counted; modules the sandbox does not emulate are plain 404s.
    let stats = h.get_json("/_sandbox/stats").await;
    assert!(
        stats["requests"]
            .get("/relation/no_such_interface")
            .is_none()
    );
    let mut r = base.clone();
    r.path = "/pay/query".into();
    assert_eq!(r.send_raw(&h).await.status(), 404);
}

#[tokio::test]
async fn body_identity_must_match_the_url() {
    let h = start().await;
    let mut body = json!({"openid": demo::MSDK_QQ_BOB_OPENID, "openkey": demo::MSDK_QQ_BOB_TOKEN});
    let mismatch = MsdkRequest::qq(VERIFY_LOGIN, demo::MSDK_QQ_ALICE_OPENID, body.clone());
    assert_eq!(
        mismatch.send(&h).await,
        json!({"ret": -1001, "msg": "openid invalid"})
    );
    // The URL openid alone is enough (qq_unreg_friends' body has none).
    body.as_object_mut().unwrap().remove("openid");
    let url_only = MsdkRequest::qq(VERIFY_LOGIN, demo::MSDK_QQ_BOB_OPENID, body.clone());
    assert_eq!(ret(&url_only.send(&h).await), 0);
    body["appid"] = "wxcde873f99466f74a".into();
    let wrong_app = MsdkRequest::qq(VERIFY_LOGIN, demo::MSDK_QQ_BOB_OPENID, body);
    assert_eq!(
        wrong_app.send(&h).await,
        json!({"ret": -1001, "msg": "appid invalid"})
    );
    let no_token = MsdkRequest::qq(
        VERIFY_LOGIN,
        demo::MSDK_QQ_BOB_OPENID,
        json!({"accessToken": demo::MSDK_QQ_BOB_TOKEN}),
    );
    assert_eq!(
        no_token.send(&h).await,
        json!({"ret": -1001, "msg": "openkey invalid"}),
        "verify_login takes openkey, not accessToken"
    );
}

#[tokio::test]
async fn token_errors_have_the_platform_forms() {
    let h = start().await;
    let qq_invalid =
        json!({"ret": -10000, "msg": "100015,access token invalid or expired", "err_type": 3});
    let mut wrong = verify_login();
    wrong.body = json!({"openid": demo::MSDK_QQ_ALICE_OPENID, "openkey": "0123456789ABCDEF0123456789ABCDEF"})
        .to_string()
        .into_bytes();
    assert_eq!(wrong.send(&h).await, qq_invalid);
    // A token of another user is no better.
    let other = alice(QQPROFILE, json!({"accessToken": demo::MSDK_QQ_BOB_TOKEN}));
    assert_eq!(other.send(&h).await, qq_invalid);
    // Erin changed her password: re-authorise, whatever token is sent.
    let erin = qq_call(
        QQPROFILE,
        demo::MSDK_QQ_ERIN_OPENID,
        demo::MSDK_QQ_ERIN_TOKEN,
        json!({}),
    );
    let password_changed =
        json!({"ret": -10000, "msg": "-73,user changed password", "err_type": 2});
    assert_eq!(erin.send(&h).await, password_changed);
    let erin_login = MsdkRequest::qq(
        VERIFY_LOGIN,
        demo::MSDK_QQ_ERIN_OPENID,
        json!({"openkey": demo::MSDK_QQ_ERIN_TOKEN}),
    );
    assert_eq!(erin_login.send(&h).await, password_changed);

    let wx_invalid = json!({"ret": -20000, "msg": "40001,invalid credential", "err_type": 3});
    assert_eq!(
        check_token(demo::MSDK_WX_ALICE_OPENID, "not-a-token")
            .send(&h)
            .await,
        wx_invalid
    );
    // An openid the app does not know has no valid token either.
    assert_eq!(
        check_token("oGRTijNobodyNobodyNobody0000", demo::MSDK_WX_ALICE_TOKEN)
            .send(&h)
            .await,
        wx_invalid
    );
}

#[tokio::test]
async fn expire_and_issue_tokens_through_the_admin_api() {
    let h = start().await;
    let user = json!({"appid": demo::MSDK_WX_APPID, "openid": demo::MSDK_WX_ALICE_OPENID});
    let (status, _) = h
        .admin(Method::POST, "/_sandbox/msdk/tokens/expire", user.clone())
        .await;
    assert_eq!(status, 200);
    let wx_expired = json!({"ret": -20000, "msg": "42001,access_token expired", "err_type": 3});
    let old = check_token(demo::MSDK_WX_ALICE_OPENID, demo::MSDK_WX_ALICE_TOKEN);
    assert_eq!(old.send(&h).await, wx_expired);

    let (status, issued) = h
        .admin(Method::POST, "/_sandbox/msdk/tokens/issue", user.clone())
        .await;
    assert_eq!(status, 200, "{issued}");
    let token = issued["access_token"].as_str().unwrap().to_owned();
    assert_ne!(token, demo::MSDK_WX_ALICE_TOKEN);
    assert_eq!(
        ret(&check_token(demo::MSDK_WX_ALICE_OPENID, &token)
            .send(&h)
            .await),
        0
    );
    // The replaced token stays "expired", not "invalid".
    assert_eq!(old.send(&h).await, wx_expired);

    // QQ: expired or replaced tokens are the one QQ error, 100015.
    let qq_user = json!({"appid": demo::MSDK_QQ_APPID, "openid": demo::MSDK_QQ_ALICE_OPENID});
    h.admin(
        Method::POST,
        "/_sandbox/msdk/tokens/expire",
        qq_user.clone(),
    )
    .await;
    let answer = verify_login().send(&h).await;
    assert_eq!(answer["ret"], -10000);
    assert_eq!(answer["msg"], "100015,access token invalid or expired");
    let chosen = json!({"appid": demo::MSDK_QQ_APPID, "openid": demo::MSDK_QQ_ALICE_OPENID,
                        "access_token": "00000000000000000000000000000001"});
    let (_, issued) = h
        .admin(Method::POST, "/_sandbox/msdk/tokens/issue", chosen)
        .await;
    assert_eq!(issued["access_token"], "00000000000000000000000000000001");
    let fresh = MsdkRequest::qq(
        VERIFY_LOGIN,
        demo::MSDK_QQ_ALICE_OPENID,
        json!({"openkey": "00000000000000000000000000000001"}),
    );
    assert_eq!(ret(&fresh.send(&h).await), 0);
    assert_eq!(ret(&verify_login().send(&h).await), -10000);

    let unknown = json!({"appid": demo::MSDK_QQ_APPID, "openid": "nobody"});
    let (status, _) = h
        .admin(Method::POST, "/_sandbox/msdk/tokens/expire", unknown)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn guests_only_on_the_guest_interfaces() {
    let h = start().await;
    // The seed's guest example shape: G_ appid and openid, body guestid.
    let guest = MsdkRequest::guest(
        GUEST_CHECK,
        json!({"accessToken": demo::MSDK_GUEST_TOKEN, "guestid": demo::MSDK_GUEST_OPENID}),
    );
    assert_eq!(guest.send(&h).await, json!({"ret": 0, "msg": "ok"}));
    let mut wrong = guest.clone();
    wrong.body = json!({"accessToken": "FFFF", "guestid": demo::MSDK_GUEST_OPENID})
        .to_string()
        .into_bytes();
    assert_eq!(ret(&wrong.send(&h).await), -10000);

    let guest_profile = MsdkRequest::guest(
        QQPROFILE,
        json!({"accessToken": demo::MSDK_GUEST_TOKEN, "openid": demo::MSDK_GUEST_OPENID}),
    );
    assert_eq!(
        guest_profile.send(&h).await,
        json!({"ret": -901, "msg": "guest not allowed"})
    );
    // A G_ openid under the QQ appid is a guest too.
    let mixed = MsdkRequest::qq(
        QQPROFILE,
        demo::MSDK_GUEST_OPENID,
        json!({"accessToken": demo::MSDK_GUEST_TOKEN}),
    );
    assert_eq!(ret(&mixed.send(&h).await), -901);
    // Non-guest apps may not use the guest check; QQ apps not the WeChat interfaces.
    let qq_guest_check = MsdkRequest::qq(
        GUEST_CHECK,
        demo::MSDK_QQ_ALICE_OPENID,
        json!({"accessToken": demo::MSDK_QQ_ALICE_TOKEN, "guestid": demo::MSDK_QQ_ALICE_OPENID}),
    );
    assert_eq!(
        qq_guest_check.send(&h).await,
        json!({"ret": -303, "msg": "appid has no permission for this interface"})
    );
    let qq_on_wx = alice("/relation/wxfriends", json!({}));
    assert_eq!(ret(&qq_on_wx.send(&h).await), -303);
    let wx_on_qq = wx_alice(QQPROFILE, json!({}));
    assert_eq!(ret(&wx_on_qq.send(&h).await), -303);
}

#[tokio::test]
async fn pf_and_pfkey() {
    let h = start().await;
    // The seed's get_pfval example, with WeChat Alice (the token is her access token).
    let body = json!({
        "appid": demo::MSDK_WX_APPID,
        "openid": demo::MSDK_WX_ALICE_OPENID,
        "accessToken": demo::MSDK_WX_ALICE_TOKEN,
        "platform": "desktop_m_wx",
        "regChannel": "2002",
        "os": "android",
        "installchannel": "73213123",
        "offerid": "1104674695",
    });
    let mut request = MsdkRequest::wx(PFVAL, demo::MSDK_WX_ALICE_OPENID, body.clone());
    request.openid = None;
    request = request.with("version", "3.0.0a");
    // python3: hashlib.md5(b"demo-msdk-wx-appkey" + pf.encode() + b"1104674695").hexdigest()
    assert_eq!(
        request.send(&h).await,
        json!({"ret": 0, "msg": "ok",
               "pf": "desktop_m_wx-2002-android-73213123-wx-wxcde873f99466f74a-oGRTijiaT-XrbyXKozckdNHFgPyc",
               "pfkey": "4939ebda710646728a658483fe5ee47e"})
    );
    let mut missing = body.clone();
    missing.as_object_mut().unwrap().remove("os");
    let answer = MsdkRequest::wx(PFVAL, demo::MSDK_WX_ALICE_OPENID, missing)
        .send(&h)
        .await;
    assert_eq!(answer, json!({"ret": -1001, "msg": "os invalid"}));

    // QQ takes the pay token; the access token is not it.
    let qq_body = |token: &str| {
        json!({"openid": demo::MSDK_QQ_ALICE_OPENID, "accessToken": token,
               "platform": "desktop_m_qq", "regChannel": "1001", "os": "iap",
               "installchannel": "5555"})
    };
    let paid = MsdkRequest::qq(
        PFVAL,
        demo::MSDK_QQ_ALICE_OPENID,
        qq_body(demo::MSDK_QQ_ALICE_PAY_TOKEN),
    );
    let answer = paid.send(&h).await;
    assert_eq!(
        answer["pf"],
        "desktop_m_qq-1001-iap-5555-qq-100703379-A3284A812ECA15269F85AE1C2D94EB37"
    );
    // python3: hashlib.md5(b"demo-msdk-qq-appkey" + pf.encode()).hexdigest() (no offerid)
    assert_eq!(answer["pfkey"], "8eb8f2d5e1e9eeba819d845bf9910ad3");
    let login_token = MsdkRequest::qq(
        PFVAL,
        demo::MSDK_QQ_ALICE_OPENID,
        qq_body(demo::MSDK_QQ_ALICE_TOKEN),
    );
    assert_eq!(ret(&login_token.send(&h).await), -10000);
    // The seed gives guests a platform value (desktop_m_guest): get_pfval takes them.
    let guest = MsdkRequest::guest(
        PFVAL,
        json!({"openid": demo::MSDK_GUEST_OPENID, "accessToken": demo::MSDK_GUEST_TOKEN,
               "platform": "desktop_m_guest", "regChannel": "1", "os": "android",
               "installchannel": "1"}),
    );
    let answer = guest.send(&h).await;
    assert_eq!(ret(&answer), 0, "{answer}");
    assert!(
        answer["pf"]
            .as_str()
            .unwrap()
            .ends_with("-guest-G_100703379-G_5F1A0C2E3D4B59687A8B9CADBECFD0E1")
    );
}

#[tokio::test]
async fn msdk_ext_info_is_echoed_on_every_answer() {
    let h = start().await;
    let ok = verify_login()
        .with("msdkExtInfo", "req_0042")
        .send(&h)
        .await;
    assert_eq!(
        ok,
        json!({"ret": 0, "msg": "user is logged in", "msdkExtInfo": "req_0042"})
    );
    let mut bad_sig = verify_login().with("msdkExtInfo", "req_0043");
    bad_sig.sig = Some("0".repeat(32));
    assert_eq!(
        bad_sig.send(&h).await,
        json!({"ret": -502, "msg": "sig check failed", "msdkExtInfo": "req_0043"})
    );
    let token = alice(QQPROFILE, json!({"accessToken": "WRONG"})).with("msdkExtInfo", "x1");
    assert_eq!(token.send(&h).await["msdkExtInfo"], "x1");
    // Only letters, digits and '_': anything else is refused and not echoed.
    let invalid = verify_login().with("msdkExtInfo", "a-b");
    assert_eq!(
        invalid.send(&h).await,
        json!({"ret": -1001, "msg": "msdkExtInfo invalid"})
    );
    let empty = verify_login().with("msdkExtInfo", "");
    assert_eq!(
        empty.send(&h).await,
        json!({"ret": 0, "msg": "user is logged in"})
    );
}

#[tokio::test]
async fn msdktea_bodies_both_ways() {
    let h = start().await;
    let mut both = alice(QQPROFILE, json!({})).with("msdkExtInfo", "enc1");
    both.encrypt = true;
    both.accept_encrypt = true;
    let answer = both.send(&h).await;
    assert_eq!(ret(&answer), 0, "{answer}");
    assert_eq!(answer["nickName"], "Alice");
    assert_eq!(answer["msdkExtInfo"], "enc1");

    // Encrypted request, plain answer; and plain request, encrypted answer.
    let mut request_only = both.clone();
    request_only.accept_encrypt = false;
    assert_eq!(request_only.send(&h).await["nickName"], "Alice");
    let mut answer_only = both.clone();
    answer_only.encrypt = false;
    assert_eq!(answer_only.send(&h).await["nickName"], "Alice");
    // The seed writes the header value with a semicolon.
    let mut semicolon = both.clone();
    semicolon.encrypt = false;
    semicolon.accept_encrypt = false;
    semicolon
        .headers
        .push(("Accept-Encrypt", "msdktea;".into()));
    let response = semicolon.send_raw(&h).await;
    assert_eq!(response.headers()["content-encrypt"], "msdktea");
    let plain = tea_decrypt(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&plain).unwrap()["ret"], 0);

    // Errors are encrypted too when asked.
    let mut error = both.clone();
    error.sig = Some("f".repeat(32));
    assert_eq!(ret(&error.send(&h).await), -502);

    // A body that does not decrypt is -304: plain JSON sent as encrypted, a broken trailer,
    // or an encryption the platform does not know.
    let mut plain_as_encrypted = alice(QQPROFILE, json!({}));
    plain_as_encrypted
        .headers
        .push(("Content-Encrypt", "msdktea".into()));
    assert_eq!(ret(&plain_as_encrypted.send(&h).await), -304);
    let mut cipher = tea_encrypt(&both.body, &[7; 16]);
    let last = cipher.len() - 1;
    cipher[last] ^= 0x55;
    let mut broken = alice(QQPROFILE, json!({})).raw_body(&cipher);
    broken.headers.push(("Content-Encrypt", "msdktea".into()));
    assert_eq!(
        broken.send(&h).await,
        json!({"ret": -304, "msg": "body cannot be decrypted"})
    );
    let mut unknown = alice(QQPROFILE, json!({}));
    unknown.headers.push(("Content-Encrypt", "aes".into()));
    assert_eq!(ret(&unknown.send(&h).await), -304);
    // An encrypted empty document is an empty body.
    let mut empty = alice(QQPROFILE, json!({})).raw_body(b"");
    empty.encrypt = true;
    assert_eq!(ret(&empty.send(&h).await), -501);

    // The admin API tells how each request came (by its Content-Encrypt) and was answered.
    let (status, counters) = h
        .admin(Method::GET, "/_sandbox/msdk/encryption", Value::Null)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        counters,
        json!({
            "encrypted_requests": {QQPROFILE: 6},
            "plain_requests": {QQPROFILE: 3},
            "encrypted_answers": {QQPROFILE: 4},
        })
    );
    let (status, _) = h
        .admin(Method::DELETE, "/_sandbox/msdk/encryption", Value::Null)
        .await;
    assert_eq!(status, 200);
    let (_, counters) = h
        .admin(Method::GET, "/_sandbox/msdk/encryption", Value::Null)
        .await;
    assert_eq!(
        counters,
        json!({"encrypted_requests": {}, "plain_requests": {}, "encrypted_answers": {}})
    );
}

#[tokio::test]
async fn https_urls_on_request() {
    let h = start().await;
    let http = alice(QQPROFILE, json!({})).send(&h).await;
    assert_eq!(
        http["picture40"],
        "http://q.qlogo.cn/qqapp/100703379/A3284A812ECA15269F85AE1C2D94EB37/40"
    );
    let https = alice(QQPROFILE, json!({}))
        .with("ishttps", "1")
        .send(&h)
        .await;
    assert_eq!(
        https["picture40"],
        "https://q.qlogo.cn/qqapp/100703379/A3284A812ECA15269F85AE1C2D94EB37/40"
    );
    let by_version = alice(QQPROFILE, json!({}))
        .with("version", "2.16.0i")
        .send(&h)
        .await;
    assert!(
        by_version["picture100"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
    let old_version = alice(QQPROFILE, json!({}))
        .with("version", "2.15.0")
        .send(&h)
        .await;
    assert!(
        old_version["picture100"]
            .as_str()
            .unwrap()
            .starts_with("http://")
    );
}
