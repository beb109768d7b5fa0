//! MSDK `profile` interfaces over HTTP: first-login flags, VIP data, the one-shot gift, wifi,
//! achievement and battle reports, Tencent Video memberships (body signature and its 15-minute
//! window), the GET interfaces, WeChat privileges, subscriptions and elite flags.

use gamegate_sandbox::demo;
use md5::{Digest, Md5};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;
use crate::msdk_client::*;

const QQ_FIRST_REG: &str = "/profile/qqget_first_reg";
const WX_FIRST_REG: &str = "/profile/wxget_first_reg";
const QUERY_VIP: &str = "/profile/query_vip";
const GET_GIFT: &str = "/profile/get_gift";
const GET_WIFI: &str = "/profile/get_wifi";
const SCORE_BATCH: &str = "/profile/qqscore_batch";
const QQ_VIDEO: &str = "/profile/qqget_video_vip";
const WX_VIDEO: &str = "/profile/wxget_video_vip";
const XINYUE_SUPER: &str = "/profile/get_xinyue_super";
const WX_XINYUE: &str = "/profile/get_wx_xinyue_vip";
const WX_VIP: &str = "/profile/wxget_vip";
const BATTLE: &str = "/profile/wxbattle_report";
const SUB_LIST: &str = "/profile/subscribe_getlist";
const SUB_SET: &str = "/profile/subscribe_setlist";
const SUB_PUSH: &str = "/profile/subscribe_push";
const SUB_CLEAR: &str = "/profile/subscribe_clear";
const ELITE: &str = "/profile/wxget_eliteinfo";

/// The client's own video signature: lowercase hex md5 of the parts joined.
fn video_signature(parts: &[&str]) -> String {
    hex::encode(Md5::digest(parts.concat().as_bytes()))
}

/// A GET request with every parameter in the URL; returns the status and the body text.
pub async fn send_get(h: &Harness, request: &MsdkRequest) -> (u16, String) {
    let response = h
        .client
        .get(h.url(&request.path_and_query()))
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.text().await.unwrap_or_default(),
    )
}

async fn get_json(h: &Harness, request: &MsdkRequest) -> Value {
    let (status, text) = send_get(h, request).await;
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

fn wx_bob(path: &str, body: Value) -> MsdkRequest {
    wx_call(
        path,
        demo::MSDK_WX_BOB_OPENID,
        demo::MSDK_WX_BOB_TOKEN,
        body,
    )
}

#[tokio::test]
async fn first_registration_flags() {
    let h = start().await;
    // The seed's shape: the openid in the URL, only the token in the body.
    let seed_like = MsdkRequest::qq(
        QQ_FIRST_REG,
        demo::MSDK_QQ_ALICE_OPENID,
        json!({"accessToken": demo::MSDK_QQ_ALICE_TOKEN}),
    );
    assert_eq!(
        seed_like.send(&h).await,
        json!({"ret": 0, "msg": "success", "need_pop": "0", "realname_flag": "1",
               "mobile_flag": "1"})
    );
    let bob = bob(QQ_FIRST_REG, json!({})).send(&h).await;
    assert_eq!(
        (&bob["need_pop"], &bob["mobile_flag"]),
        (&json!("1"), &json!("0"))
    );
    let wx = wx_bob(WX_FIRST_REG, json!({})).send(&h).await;
    assert_eq!(
        wx,
        json!({"ret": 0, "msg": "success", "need_pop": "1", "realname_flag": "0",
               "mobile_flag": "0"})
    );

    // Tokens, guests and platforms as everywhere else.
    let wrong = alice(
        QQ_FIRST_REG,
        json!({"accessToken": "0F6D3680BE37ADB831480D4D394F0614"}),
    );
    assert_eq!(
        wrong.send(&h).await,
        json!({"ret": -10000, "msg": "100015,access token invalid or expired", "err_type": 3})
    );
    let wrong = wx_bob(WX_FIRST_REG, json!({"accessToken": "nope"}));
    assert_eq!(ret(&wrong.send(&h).await), -20000);
    let erin = qq_call(
        QQ_FIRST_REG,
        demo::MSDK_QQ_ERIN_OPENID,
        demo::MSDK_QQ_ERIN_TOKEN,
        json!({}),
    );
    assert_eq!(ret(&erin.send(&h).await), -10000);
    let guest = MsdkRequest::guest(QQ_FIRST_REG, json!({"accessToken": demo::MSDK_GUEST_TOKEN}));
    assert_eq!(
        guest.send(&h).await,
        json!({"ret": -901, "msg": "guest not allowed"})
    );
    assert_eq!(ret(&alice(WX_FIRST_REG, json!({})).send(&h).await), -303);
    assert_eq!(ret(&wx_bob(QQ_FIRST_REG, json!({})).send(&h).await), -303);
    // No body: -501 as for every POST interface.
    assert_eq!(
        ret(&alice(QQ_FIRST_REG, json!({})).raw_body(b"").send(&h).await),
        -501
    );
}

#[tokio::test]
async fn query_vip_answers_one_entry_per_requested_bit() {
    let h = start().await;
    let answer = alice(QUERY_VIP, json!({"vip": 512})).send(&h).await;
    assert_eq!(
        answer,
        json!({"ret": 0, "msg": "", "list": [
            {"flag": 512, "isvip": 1, "year": 0, "level": 11, "luxury": 0}]})
    );
    // The bits as a decimal string: refused, the seed's example sends a number.
    assert_eq!(
        alice(QUERY_VIP, json!({"vip": "149"})).send(&h).await,
        json!({"ret": -1001, "msg": "vip invalid"})
    );
    // Member, blue, super and yellow.
    let answer = alice(QUERY_VIP, json!({"vip": 149})).send(&h).await;
    assert_eq!(
        answer["list"],
        json!([
            {"flag": 1, "isvip": 1, "year": 1, "level": 6, "luxury": 0},
            {"flag": 4, "isvip": 1, "year": 1, "level": 7, "luxury": 1},
            {"flag": 16, "isvip": 1, "year": 0, "level": 0, "luxury": 0},
            {"flag": 128, "isvip": 1, "year": 1, "level": 5, "luxury": 0},
        ])
    );
    // Every documented bit at once: nine entries in flag order.
    let all = alice(QUERY_VIP, json!({"vip": 0x3df})).send(&h).await;
    let flags: Vec<i64> = all["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["flag"].as_i64().unwrap())
        .collect();
    assert_eq!(flags, [1, 2, 4, 8, 16, 64, 128, 256, 512]);
    // Bob's membership expired; Carol has no entries but SVIP.
    let bob = bob(QUERY_VIP, json!({"vip": 3})).send(&h).await;
    assert_eq!(
        bob["list"],
        json!([{"flag": 1, "isvip": 0, "year": 0, "level": 0, "luxury": 0},
               {"flag": 2, "isvip": 1, "year": 0, "level": 3, "luxury": 0}])
    );
    let carol = carol(QUERY_VIP, json!({"vip": 0x14})).send(&h).await;
    assert_eq!(carol["list"][0]["isvip"], 0);
    assert_eq!(carol["list"][1]["isvip"], 1);

    for vip in [
        json!(0),
        json!(0x20),
        json!(0x400),
        json!(-1),
        json!("x"),
        json!(null),
    ] {
        assert_eq!(
            alice(QUERY_VIP, json!({"vip": vip})).send(&h).await,
            json!({"ret": -1001, "msg": "vip invalid"}),
            "{vip}"
        );
    }
}

#[tokio::test]
async fn blue_diamond_gift_is_claimed_once() {
    let h = start().await;
    // The seed's body: appid and openid, no token.
    let claim = MsdkRequest::qq(
        GET_GIFT,
        demo::MSDK_QQ_ALICE_OPENID,
        json!({"appid": demo::MSDK_QQ_APPID, "openid": demo::MSDK_QQ_ALICE_OPENID}),
    )
    .with("msdkExtInfo", "testhunter");
    assert_eq!(
        claim.send(&h).await,
        json!({"ret": 0, "msg": "success", "msdkExtInfo": "testhunter", "GiftPackList": [
            {"giftId": "1001", "giftCount": "1"}, {"giftId": "1002", "giftCount": "3"}]})
    );
    assert_eq!(
        claim.send(&h).await,
        json!({"ret": 0, "msg": "success", "msdkExtInfo": "testhunter", "GiftPackList": []}),
        "deleted after the first claim"
    );
    let carol = carol(GET_GIFT, json!({})).send(&h).await;
    assert_eq!(carol["GiftPackList"][0]["giftId"], "2001");
    assert_eq!(
        bob(GET_GIFT, json!({})).send(&h).await["GiftPackList"],
        json!([])
    );
    // Re-creating the user through the admin API brings the fixture's gifts back.
    let (status, _) = h
        .admin(
            Method::PUT,
            "/_sandbox/msdk/users",
            json!({"appid": demo::MSDK_QQ_APPID, "openid": demo::MSDK_QQ_ALICE_OPENID,
                   "access_token": demo::MSDK_QQ_ALICE_TOKEN,
                   "qq": {"nickname": "Alice", "blue_gifts": [{"gift_id": "9", "gift_count": 2}]}}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        claim.send(&h).await["GiftPackList"],
        json!([{"giftId": "9", "giftCount": "2"}])
    );

    // No token, but the openid must be a player of the app; guests are refused.
    let stranger = MsdkRequest::qq(
        GET_GIFT,
        "00000000000000000000000000000000",
        json!({"appid": demo::MSDK_QQ_APPID}),
    );
    assert_eq!(
        stranger.send(&h).await,
        json!({"ret": -1001, "msg": "openid invalid"})
    );
    let guest = MsdkRequest::guest(GET_GIFT, json!({"openid": demo::MSDK_GUEST_OPENID}));
    assert_eq!(ret(&guest.send(&h).await), -901);
}

#[tokio::test]
async fn wifi_eligibility() {
    let h = start().await;
    assert_eq!(
        alice(GET_WIFI, json!({})).send(&h).await,
        json!({"ret": 0, "msg": "success", "wifiVip": 1})
    );
    assert_eq!(bob(GET_WIFI, json!({})).send(&h).await["wifiVip"], 0);
}

#[tokio::test]
async fn score_reports_are_stored_per_user() {
    let h = start().await;
    // The seed's example body, as Alice.
    let body = json!({"param": [
        {"type": 3, "bcover": 1, "data": "999", "expires": "123459751"},
        {"type": 1, "bcover": 0, "data": 1999, "expires": 0}]});
    assert_eq!(
        alice(SCORE_BATCH, body.clone()).send(&h).await,
        json!({"ret": 0, "msg": "success", "type": 0})
    );
    let scores = |openid: &str| {
        let url = format!(
            "/_sandbox/msdk/scores?appid={}&openid={openid}",
            demo::MSDK_QQ_APPID
        );
        let h = &h;
        async move { h.get_json(&url).await }
    };
    let stored = scores(demo::MSDK_QQ_ALICE_OPENID).await;
    let reports = stored["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 2);
    assert_eq!(
        (
            &reports[0]["data"],
            &reports[0]["mode"],
            &reports[0]["expires"]
        ),
        (&json!("999"), &json!("increment"), &json!("123459751"))
    );
    assert_eq!(
        (
            &reports[1]["data"],
            &reports[1]["mode"],
            &reports[1]["bcover"]
        ),
        (&json!("1999"), &json!("overwrite"), &json!(0))
    );
    assert_eq!(
        scores(demo::MSDK_QQ_BOB_OPENID).await,
        json!({"reports": []})
    );

    // Invalid entries store nothing.
    for (param, field) in [
        (json!([]), "param"),
        (json!("999"), "param"),
        (json!([{"bcover": 1}]), "param.data"),
        (json!([{"data": "1", "bcover": 2}]), "param.bcover"),
        (json!([{"data": "1", "expires": "soon"}]), "param.expires"),
        (json!([{"data": "1"}, 5]), "param"),
    ] {
        assert_eq!(
            alice(SCORE_BATCH, json!({"param": param})).send(&h).await,
            json!({"ret": -1001, "msg": format!("{field} invalid")}),
        );
    }
    assert_eq!(
        scores(demo::MSDK_QQ_ALICE_OPENID).await["reports"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (status, _) = h
        .admin(
            Method::GET,
            "/_sandbox/msdk/scores?appid=100703379",
            json!(null),
        )
        .await;
    assert_eq!(status, 400, "openid is required");
    let (status, _) = h
        .admin(
            Method::GET,
            "/_sandbox/msdk/scores?appid=1&openid=x",
            json!(null),
        )
        .await;
    assert_eq!(status, 404);

    // A game without achievement-reporting permission.
    let (status, _) = h
        .admin(
            Method::PUT,
            "/_sandbox/msdk/apps",
            json!({"appid": demo::MSDK_QQ_APPID, "platform": "qq",
                   "msdkkey": demo::MSDK_QQ_MSDKKEY, "appkey": demo::MSDK_QQ_APPKEY,
                   "score_reporting": false}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        alice(SCORE_BATCH, body).send(&h).await,
        json!({"ret": -303, "msg": "appid has no permission for this interface"})
    );
}

#[test]
fn client_video_signatures_match_python() {
    // python3 -c 'import hashlib; print(hashlib.md5(b"30012" b"demo-video-channel-secret"
    //   b"A3284A812ECA15269F85AE1C2D94EB37" b"933FE8C9AB9C585D7EABD04373B7155F"
    //   b"1700000000").hexdigest())'
    assert_eq!(
        video_signature(&[
            "30012",
            demo::MSDK_VIDEO_CHANNEL_SECRET,
            demo::MSDK_QQ_ALICE_OPENID,
            demo::MSDK_QQ_ALICE_TOKEN,
            "1700000000",
        ]),
        "a011577e814490d3c41a88f34a82de7e"
    );
    // python3 -c 'import hashlib; print(hashlib.md5(b"30012" b"demo-video-channel-secret"
    //   b"oGRTijiaT-XrbyXKozckdNHFgPyc" b"1700000000").hexdigest())'
    assert_eq!(
        video_signature(&[
            "30012",
            demo::MSDK_VIDEO_CHANNEL_SECRET,
            demo::MSDK_WX_ALICE_OPENID,
            "1700000000",
        ]),
        "c03c6231c9534b50574d926010078bca"
    );
}

fn qq_video(timestamp: i64, signature: &str) -> MsdkRequest {
    alice(
        QQ_VIDEO,
        json!({"channel_id": demo::MSDK_VIDEO_CHANNEL_ID, "timestamp": timestamp,
               "signature": signature}),
    )
}

fn qq_video_signature(timestamp: i64) -> String {
    video_signature(&[
        &demo::MSDK_VIDEO_CHANNEL_ID.to_string(),
        demo::MSDK_VIDEO_CHANNEL_SECRET,
        demo::MSDK_QQ_ALICE_OPENID,
        demo::MSDK_QQ_ALICE_TOKEN,
        &timestamp.to_string(),
    ])
}

#[tokio::test]
async fn qq_video_membership_with_signature() {
    let h = start().await;
    let ts = now();
    assert_eq!(
        qq_video(ts, &qq_video_signature(ts)).send(&h).await,
        json!({"ret": 0, "msg": "OK", "annual_beg": 1_504_242_106, "annual_end": 2_524_579_200_i64,
               "beg_time": 1_497_261_816, "end_time": 2_524_579_200_i64, "is_annual": 1,
               "service_type": "TXSP", "status": 1, "vip_lv": 4, "vip_score": 3855})
    );
    // The seed's example sends numbers: numbers as strings are refused.
    let strings = alice(
        QQ_VIDEO,
        json!({"channel_id": "30012", "timestamp": ts,
               "signature": qq_video_signature(ts)}),
    );
    assert_eq!(
        strings.send(&h).await,
        json!({"ret": -1001, "msg": "channel_id invalid"})
    );

    // The 15-minute window, both ways (900 s is still fine).
    for (offset, expected) in [(-890, 0), (890, 0), (-960, -1302), (960, -1302)] {
        let t = ts + offset;
        let answer = qq_video(t, &qq_video_signature(t)).send(&h).await;
        assert_eq!(ret(&answer), expected, "offset {offset}: {answer}");
    }
    let old = ts - 3600;
    assert_eq!(
        qq_video(old, &qq_video_signature(old)).send(&h).await,
        json!({"ret": -1302, "msg": "timestamp more than 900 seconds from now"})
    );
    // Wrong signatures: another secret, the WeChat formula (no token), uppercase hex.
    let other_secret = video_signature(&[
        "30012",
        "another-secret",
        demo::MSDK_QQ_ALICE_OPENID,
        demo::MSDK_QQ_ALICE_TOKEN,
        &ts.to_string(),
    ]);
    let no_token = video_signature(&[
        "30012",
        demo::MSDK_VIDEO_CHANNEL_SECRET,
        demo::MSDK_QQ_ALICE_OPENID,
        &ts.to_string(),
    ]);
    for signature in [
        other_secret,
        no_token,
        qq_video_signature(ts).to_uppercase(),
    ] {
        assert_eq!(
            qq_video(ts, &signature).send(&h).await,
            json!({"ret": -1303, "msg": "signature check failed"})
        );
    }
    let unknown_channel = alice(
        QQ_VIDEO,
        json!({"channel_id": 30013, "timestamp": ts, "signature": qq_video_signature(ts)}),
    );
    assert_eq!(
        unknown_channel.send(&h).await,
        json!({"ret": -1301, "msg": "channel_id is not a video channel of the app"})
    );
    for (body, field) in [
        (json!({"timestamp": ts, "signature": "x"}), "channel_id"),
        (json!({"channel_id": 30012, "signature": "x"}), "timestamp"),
        (json!({"channel_id": 30012, "timestamp": ts}), "signature"),
        (
            json!({"channel_id": "abc", "timestamp": ts, "signature": "x"}),
            "channel_id",
        ),
    ] {
        assert_eq!(
            alice(QQ_VIDEO, body).send(&h).await,
            json!({"ret": -1001, "msg": format!("{field} invalid")})
        );
    }
    // The token is checked first, as everywhere.
    let mut wrong_token = qq_video(ts, &qq_video_signature(ts));
    wrong_token.body = json!({"accessToken": "X", "appid": demo::MSDK_QQ_APPID,
                              "openid": demo::MSDK_QQ_ALICE_OPENID, "channel_id": 30012,
                              "timestamp": ts, "signature": qq_video_signature(ts)})
    .to_string()
    .into_bytes();
    assert_eq!(ret(&wrong_token.send(&h).await), -10000);
}

#[tokio::test]
async fn wechat_video_membership_without_token() {
    let h = start().await;
    let ts = now();
    let signature = |openid: &str, ts: i64| {
        video_signature(&[
            "30012",
            demo::MSDK_VIDEO_CHANNEL_SECRET,
            openid,
            &ts.to_string(),
        ])
    };
    // The seed's body: appid, openid, channel_id, timestamp, signature; no token.
    let request = |openid: &str, ts: i64, signature: String| {
        MsdkRequest::wx(
            WX_VIDEO,
            openid,
            json!({"appid": demo::MSDK_WX_APPID, "openid": openid, "channel_id": 30012,
                   "timestamp": ts, "signature": signature}),
        )
    };
    let alice = request(
        demo::MSDK_WX_ALICE_OPENID,
        ts,
        signature(demo::MSDK_WX_ALICE_OPENID, ts),
    );
    let answer = alice.send(&h).await;
    assert_eq!(
        (
            &answer["ret"],
            &answer["msg"],
            &answer["status"],
            &answer["vip_lv"]
        ),
        (&json!(0), &json!("OK"), &json!(1), &json!(3))
    );
    // Bob's membership is the seed's expired one.
    let bob = request(
        demo::MSDK_WX_BOB_OPENID,
        ts,
        signature(demo::MSDK_WX_BOB_OPENID, ts),
    );
    assert_eq!(
        bob.send(&h).await,
        json!({"ret": 0, "msg": "OK", "annual_beg": 0, "annual_end": 0,
               "beg_time": 1_487_524_745, "end_time": 1_487_704_961, "is_annual": 0,
               "service_type": "", "status": 0, "vip_lv": 0, "vip_score": 0})
    );
    // Someone else's signature, and the window.
    let swapped = request(
        demo::MSDK_WX_ALICE_OPENID,
        ts,
        signature(demo::MSDK_WX_BOB_OPENID, ts),
    );
    assert_eq!(ret(&swapped.send(&h).await), -1303);
    let late = ts - 901 - 60;
    let stale = request(
        demo::MSDK_WX_ALICE_OPENID,
        late,
        signature(demo::MSDK_WX_ALICE_OPENID, late),
    );
    assert_eq!(ret(&stale.send(&h).await), -1302);
    // Not a player of the app.
    let stranger = request("oGRTijNOBODY", ts, signature("oGRTijNOBODY", ts));
    assert_eq!(
        stranger.send(&h).await,
        json!({"ret": -1001, "msg": "openid invalid"})
    );
}

#[tokio::test]
async fn xinyue_levels_are_get_interfaces() {
    let h = start().await;
    let trace = "msdkdemo-A3284A812ECA15269F85AE1C2D94EB37-20180116155309-123456";
    let qq = MsdkRequest::qq(XINYUE_SUPER, demo::MSDK_QQ_ALICE_OPENID, json!({}))
        .with("access_type", "1")
        .with("access_token", demo::MSDK_QQ_ALICE_TOKEN)
        .with("trace_id", trace)
        .raw_body(b"");
    assert_eq!(
        get_json(&h, &qq).await,
        json!({"ret": 0, "msg": "success", "openid": demo::MSDK_QQ_ALICE_OPENID,
               "ilevel": 10, "trace_id": trace})
    );
    // Carol is a top R; the trailing slash and msdkExtInfo work as for POST interfaces.
    let mut carol = MsdkRequest::qq(XINYUE_SUPER, demo::MSDK_QQ_CAROL_OPENID, json!({}))
        .with("access_type", "1")
        .with("access_token", demo::MSDK_QQ_CAROL_TOKEN)
        .with("msdkExtInfo", "x1");
    carol.path.push('/');
    let answer = get_json(&h, &carol).await;
    assert_eq!(
        (
            &answer["ilevel"],
            &answer["trace_id"],
            &answer["msdkExtInfo"]
        ),
        (&json!(11), &json!(""), &json!("x1"))
    );
    // WeChat logins use access_type 2.
    let wx = MsdkRequest::wx(XINYUE_SUPER, demo::MSDK_WX_ALICE_OPENID, json!({}))
        .with("access_type", "2")
        .with("access_token", demo::MSDK_WX_ALICE_TOKEN);
    assert_eq!(get_json(&h, &wx).await["ilevel"], 10);
    let mismatch = MsdkRequest::wx(XINYUE_SUPER, demo::MSDK_WX_ALICE_OPENID, json!({}))
        .with("access_type", "1")
        .with("access_token", demo::MSDK_WX_ALICE_TOKEN);
    assert_eq!(
        get_json(&h, &mismatch).await,
        json!({"ret": -1001, "msg": "access_type invalid"})
    );
    let no_token = MsdkRequest::qq(XINYUE_SUPER, demo::MSDK_QQ_ALICE_OPENID, json!({}))
        .with("access_type", "1");
    assert_eq!(
        get_json(&h, &no_token).await,
        json!({"ret": -506, "msg": "access_token missing"})
    );
    let wrong = MsdkRequest::qq(XINYUE_SUPER, demo::MSDK_QQ_ALICE_OPENID, json!({}))
        .with("access_type", "1")
        .with("access_token", demo::MSDK_QQ_BOB_TOKEN);
    assert_eq!(ret(&get_json(&h, &wrong).await), -10000);
    let guest = MsdkRequest::guest(XINYUE_SUPER, json!({}))
        .with("access_type", "1")
        .with("access_token", demo::MSDK_GUEST_TOKEN);
    assert_eq!(ret(&get_json(&h, &guest).await), -901);
    // POST to a GET interface is refused by HTTP.
    assert_eq!(qq.send_raw(&h).await.status(), 405);

    let serial = "MSDK_20180327_181625_123456";
    let wx_vip = MsdkRequest::wx(WX_XINYUE, demo::MSDK_WX_ALICE_OPENID, json!({}))
        .with("access_token", demo::MSDK_WX_ALICE_TOKEN)
        .with("serial", serial);
    assert_eq!(
        get_json(&h, &wx_vip).await,
        json!({"ret": 0, "msg": "success.", "ilevel": 2, "serial": serial})
    );
    let bob = MsdkRequest::wx(WX_XINYUE, demo::MSDK_WX_BOB_OPENID, json!({}))
        .with("access_token", demo::MSDK_WX_BOB_TOKEN);
    assert_eq!(get_json(&h, &bob).await["ilevel"], 0);
    let expired = MsdkRequest::wx(WX_XINYUE, demo::MSDK_WX_BOB_OPENID, json!({}))
        .with("access_token", "8_navsBc9yyjjABA");
    assert_eq!(ret(&get_json(&h, &expired).await), -20000);
    let qq_app = MsdkRequest::qq(WX_XINYUE, demo::MSDK_QQ_ALICE_OPENID, json!({}))
        .with("access_token", demo::MSDK_QQ_ALICE_TOKEN);
    assert_eq!(ret(&get_json(&h, &qq_app).await), -303);
    // The URL sig is checked like any other.
    let mut bad_sig = wx_vip.clone();
    bad_sig.sig = Some("0".repeat(32));
    assert_eq!(ret(&get_json(&h, &bad_sig).await), -502);
}

#[tokio::test]
async fn wechat_privileges_of_the_caller_and_friends() {
    let h = start().await;
    let answer = wx_alice(WX_VIP, json!({"json": {"optype": 1}}))
        .send(&h)
        .await;
    let entry = |openid: &str, level: i64, score: i64| {
        json!({"openid": openid, "level": level, "score": score,
               "nick": format!("VIP{level}"), "logo_url": "", "logo_faceurl": ""})
    };
    assert_eq!(
        answer,
        json!({"ret": 0, "msg": "success", "data": {"vipinfo": [
            entry(demo::MSDK_WX_ALICE_OPENID, 1, 310),
            entry(demo::MSDK_WX_BOB_OPENID, 0, 0),
            entry(demo::MSDK_WX_CAROL_OPENID, 0, 0),
        ]}})
    );
    let dave = wx_call(
        WX_VIP,
        demo::MSDK_WX_DAVE_OPENID,
        demo::MSDK_WX_DAVE_TOKEN,
        json!({"json": "{\"optype\":\"1\"}"}),
    );
    assert_eq!(
        dave.send(&h).await["data"]["vipinfo"],
        json!([entry(demo::MSDK_WX_DAVE_OPENID, 0, 0)])
    );
    for json in [json!({"optype": 2}), json!({}), json!(1), json!("nope")] {
        let answer = wx_alice(WX_VIP, json!({"json": json})).send(&h).await;
        assert_eq!(ret(&answer), -1001, "{answer}");
    }
}

#[tokio::test]
async fn battle_reports_single_and_batch() {
    let h = start().await;
    // The seed's example: Bob's report, no token.
    let single = json!({"baseinfo": {"gamename": "xxx", "platid": 0, "partitionid": "9",
                                     "roleid": "hunter", "level": 2},
                        "battleinfo": {"score": 4_288_625, "iswin": true}});
    let report = |json: Value| {
        MsdkRequest::wx(
            BATTLE,
            demo::MSDK_WX_BOB_OPENID,
            json!({"appid": demo::MSDK_WX_APPID, "openid": demo::MSDK_WX_BOB_OPENID,
                   "json": json}),
        )
    };
    assert_eq!(
        report(single.clone()).send(&h).await,
        json!({"ret": 0, "msg": "success"})
    );
    let custom = json!({"baseinfo": {"platid": 1},
                        "userdefined": {"goldcoin": {"name": "금화", "value": 358_267}}});
    assert_eq!(
        ret(&report(json!([single.clone(), custom.clone()]))
            .send(&h)
            .await),
        0
    );
    let url = format!(
        "/_sandbox/msdk/battle_reports?appid={}",
        demo::MSDK_WX_APPID
    );
    let stored = h.get_json(&url).await;
    let reports = stored["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 3);
    assert_eq!(reports[0]["openid"], demo::MSDK_WX_BOB_OPENID);
    assert_eq!(reports[0]["report"], single);
    assert_eq!(reports[2]["report"], custom);

    for (json, field) in [
        (json!({"baseinfo": {"platid": 2}}), "json.baseinfo.platid"),
        (json!({"battleinfo": {"score": 1}}), "json.baseinfo"),
        (
            json!([single.clone(), {"baseinfo": {"platid": 0, "level": "2x"}}]),
            "json.baseinfo.level",
        ),
        (
            json!({"baseinfo": {"platid": 0}, "battleinfo": {"score": "high"}}),
            "json.battleinfo.score",
        ),
        (json!([]), "json"),
        (json!(42), "json"),
    ] {
        assert_eq!(
            report(json).send(&h).await,
            json!({"ret": -1001, "msg": format!("{field} invalid")})
        );
    }
    assert_eq!(
        h.get_json(&url).await["reports"].as_array().unwrap().len(),
        3,
        "refused batches store nothing"
    );
    let stranger = MsdkRequest::wx(BATTLE, "oGRTijNOBODY", json!({"json": single}));
    assert_eq!(ret(&stranger.send(&h).await), -1001);
    let qq = MsdkRequest::qq(
        BATTLE,
        demo::MSDK_QQ_ALICE_OPENID,
        json!({"json": {"baseinfo": {"platid": 0}}}),
    );
    assert_eq!(ret(&qq.send(&h).await), -303);
}

#[tokio::test]
async fn subscription_life_cycle() {
    let h = start().await;
    let list = |answer: &Value| -> Vec<(i64, bool)> {
        answer["subscribeList"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["id"].as_i64().unwrap(), m["status"].as_bool().unwrap()))
            .collect()
    };
    let fresh = wx_alice(SUB_LIST, json!({})).send(&h).await;
    assert_eq!(
        fresh,
        json!({"ret": 0, "msg": "success", "more": false, "subscribeList": [
            {"id": 19, "title": "2111", "status": false},
            {"id": 43, "title": "test_msg", "status": false},
            {"id": 77, "title": "daily_reward", "status": false}]})
    );
    assert_eq!(
        wx_alice(SUB_SET, json!({"msgId": [77, 19], "opType": 0}))
            .send(&h)
            .await,
        json!({"ret": 0, "msg": "success"})
    );
    let answer = wx_alice(SUB_LIST, json!({})).send(&h).await;
    assert_eq!(list(&answer), [(19, true), (43, false), (77, true)]);
    // The seed's example sends numbers: ids or opType as strings are refused.
    assert_eq!(
        wx_bob(SUB_SET, json!({"msgId": ["77"], "opType": 0}))
            .send(&h)
            .await,
        json!({"ret": -1001, "msg": "msgId invalid"})
    );
    assert_eq!(
        ret(&wx_bob(SUB_SET, json!({"msgId": [77], "opType": "0"}))
            .send(&h)
            .await),
        -1001
    );
    assert_eq!(
        ret(&wx_bob(SUB_SET, json!({"msgId": [77], "opType": 0}))
            .send(&h)
            .await),
        0
    );
    // Bob's view is his own.
    let answer = wx_bob(SUB_LIST, json!({})).send(&h).await;
    assert_eq!(list(&answer), [(19, false), (43, false), (77, true)]);

    // Push (the seed's body: appid, openid, msgId; no token) reaches both.
    let push = |id: Value| {
        MsdkRequest::wx(
            SUB_PUSH,
            demo::MSDK_WX_BOB_OPENID,
            json!({"appid": demo::MSDK_WX_APPID, "openid": demo::MSDK_WX_BOB_OPENID,
                   "msgId": id}),
        )
    };
    assert_eq!(
        push(json!(77)).send(&h).await,
        json!({"ret": 0, "msg": "success"})
    );
    // Alice cancels 19.
    assert_eq!(
        ret(&wx_alice(SUB_SET, json!({"msgId": [19], "opType": 1}))
            .send(&h)
            .await),
        0
    );
    let url = format!("/_sandbox/msdk/subscriptions?appid={}", demo::MSDK_WX_APPID);
    let admin = h.get_json(&url).await;
    assert_eq!(
        admin["messages"],
        json!([
            {"id": 19, "title": "2111", "subscribers": []},
            {"id": 43, "title": "test_msg", "subscribers": []},
            {"id": 77, "title": "daily_reward",
             "subscribers": [demo::MSDK_WX_ALICE_OPENID, demo::MSDK_WX_BOB_OPENID]},
        ])
    );
    let pushes = admin["pushes"].as_array().unwrap();
    assert_eq!(pushes.len(), 1);
    assert_eq!(pushes[0]["msgId"], 77);
    assert_eq!(pushes[0]["openid"], demo::MSDK_WX_BOB_OPENID);
    assert_eq!(
        pushes[0]["subscribers"],
        json!([demo::MSDK_WX_ALICE_OPENID, demo::MSDK_WX_BOB_OPENID])
    );

    // Clear (no openid at all: it is optional) empties the message's subscribers.
    let clear = MsdkRequest::new(
        SUB_CLEAR,
        demo::MSDK_WX_APPID,
        demo::MSDK_WX_MSDKKEY,
        None,
        &json!({"appid": demo::MSDK_WX_APPID, "msgId": 77}),
    );
    assert_eq!(clear.send(&h).await, json!({"ret": 0, "msg": "success"}));
    let answer = wx_alice(SUB_LIST, json!({})).send(&h).await;
    assert_eq!(list(&answer), [(19, false), (43, false), (77, false)]);
    assert_eq!(
        ret(&push(json!("77")).send(&h).await),
        -1001,
        "msgId as a string"
    );
    assert_eq!(ret(&push(json!(77)).send(&h).await), 0);
    let admin = h.get_json(&url).await;
    assert_eq!(admin["pushes"][1]["subscribers"], json!([]));

    // Unknown message ids, bad opType.
    let unknown = json!({"ret": -1304, "msg": "msgId is not a message of the app"});
    assert_eq!(
        wx_alice(SUB_SET, json!({"msgId": [77, 999], "opType": 0}))
            .send(&h)
            .await,
        unknown
    );
    assert_eq!(push(json!(999)).send(&h).await, unknown);
    let mut clear_unknown = clear.clone();
    clear_unknown.body = json!({"msgId": 999}).to_string().into_bytes();
    assert_eq!(clear_unknown.send(&h).await, unknown);
    let answer = wx_alice(SUB_LIST, json!({})).send(&h).await;
    assert_eq!(
        list(&answer),
        [(19, false), (43, false), (77, false)],
        "nothing changed"
    );
    for (body, field) in [
        (json!({"msgId": [77], "opType": 2}), "opType"),
        (json!({"msgId": [77]}), "opType"),
        (json!({"msgId": [], "opType": 0}), "msgId"),
        (json!({"opType": 0}), "msgId"),
        (json!({"msgId": ["x"], "opType": 0}), "msgId"),
    ] {
        assert_eq!(
            wx_alice(SUB_SET, body).send(&h).await,
            json!({"ret": -1001, "msg": format!("{field} invalid")})
        );
    }
    assert_eq!(
        wx_alice(
            SUB_SET,
            json!({"msgId": [77], "opType": 0, "accessToken": "bad"})
        )
        .send(&h)
        .await["ret"],
        -20000
    );
}

#[tokio::test]
async fn elite_flags() {
    let h = start().await;
    assert_eq!(
        wx_alice(ELITE, json!({})).send(&h).await,
        json!({"ret": 0, "msg": "success", "data": {"wx_elite": 1, "game_elite": 0}})
    );
    assert_eq!(
        wx_bob(ELITE, json!({})).send(&h).await["data"],
        json!({"wx_elite": 0, "game_elite": 1})
    );
    // The seed's example has neither a URL nor a body openid: the sandbox needs one.
    let no_openid = MsdkRequest::new(
        ELITE,
        demo::MSDK_WX_APPID,
        demo::MSDK_WX_MSDKKEY,
        None,
        &json!({"accessToken": demo::MSDK_WX_ALICE_TOKEN}),
    );
    assert_eq!(
        no_openid.send(&h).await,
        json!({"ret": -1001, "msg": "openid invalid"})
    );
}
