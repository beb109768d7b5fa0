//! MSDK `share` and `freeflow` interfaces over HTTP: QQ and WeChat shares with their daily
//! limits, the thumbnail upload and its media_id, free-flow and IP information, and the faults on
//! the new paths.

use gamegate_sandbox::demo;
use md5::{Digest, Md5};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;
use crate::msdk_client::*;
use crate::msdk_profile::send_get;

const SHARE_QQ: &str = "/share/qq";
const UPLOAD_WX: &str = "/share/upload_wx";
const SHARE_WX: &str = "/share/wx";
const SHARE_WX_LINK: &str = "/share/wx_link";
const FREEFLOW: &str = "/freeflow/getinfo";
const CCINFO: &str = "/freeflow/get_ccinfo";

const INVITE_URL: &str = "http://gamecenter.qq.com/gcjump?appid=100703379&pf=invite&from=iphoneqq&plat=qq&originuin=111&ADTAG=gameobj.msg_invite";

/// The seed's `/share/qq` example (with the required `game_tag`), from `from` to `to`. Like the
/// example, the URL carries no openid.
fn qq_share_body(from: &str, token: &str, to: &str) -> Value {
    json!({
        "act": 1,
        "oauth_consumer_key": 100_703_379,
        "dst": 1001,
        "flag": 1,
        "image_url": "http://mat1.gtimg.com/www/images/qq2012/erweimaVideoPic.png",
        "openid": from,
        "access_token": token,
        "src": 0,
        "summary": "개요",
        "target_url": INVITE_URL,
        "title": "test by hunter",
        "fopenids": [{"openid": to, "type": 0}],
        "previewText": "나는 매일 게임을 즐겨요",
        "game_tag": "MSG_INVITE",
    })
}

fn qq_share(body: &Value) -> MsdkRequest {
    MsdkRequest::new(
        SHARE_QQ,
        demo::MSDK_QQ_APPID,
        demo::MSDK_QQ_MSDKKEY,
        None,
        body,
    )
}

fn alice_shares_to(to: &str) -> MsdkRequest {
    qq_share(&qq_share_body(
        demo::MSDK_QQ_ALICE_OPENID,
        demo::MSDK_QQ_ALICE_TOKEN,
        to,
    ))
}

fn with(mut body: Value, field: &str, value: Value) -> Value {
    body[field] = value;
    body
}

async fn received(h: &Harness, appid: &str, openid: &str) -> Vec<Value> {
    h.get_json(&format!(
        "/_sandbox/msdk/shares?appid={appid}&openid={openid}"
    ))
    .await["shares"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn qq_share_daily_limits() {
    let h = start().await;
    let carol = demo::MSDK_QQ_CAROL_OPENID;
    let success = json!({"ret": 0, "msg": "success"});
    for _ in 0..3 {
        assert_eq!(alice_shares_to(carol).send(&h).await, success);
    }
    // A fourth from the same sender the same day.
    assert_eq!(
        alice_shares_to(carol).send(&h).await,
        json!({"ret": -1403, "msg": "the receiver already got 3 shares from this sender today"})
    );
    let bob_shares = qq_share(&qq_share_body(
        demo::MSDK_QQ_BOB_OPENID,
        demo::MSDK_QQ_BOB_TOKEN,
        carol,
    ));
    assert_eq!(bob_shares.send(&h).await, success);
    assert_eq!(bob_shares.send(&h).await, success);
    // Five received today: even a new sender's first share is refused.
    assert_eq!(
        bob_shares.send(&h).await,
        json!({"ret": -1402, "msg": "the receiver already got 5 shares today"})
    );
    // Others still receive.
    assert_eq!(
        alice_shares_to(demo::MSDK_QQ_BOB_OPENID).send(&h).await,
        success
    );

    let shares = received(&h, demo::MSDK_QQ_APPID, carol).await;
    assert_eq!(shares.len(), 5, "refused shares are not recorded");
    assert_eq!(shares[0]["openid"], demo::MSDK_QQ_ALICE_OPENID);
    assert_eq!(shares[0]["to"], carol);
    assert_eq!(shares[0]["kind"], "qq");
    assert_eq!(shares[0]["game_tag"], "MSG_INVITE");
    assert_eq!(shares[4]["openid"], demo::MSDK_QQ_BOB_OPENID);
    let all = h
        .get_json(&format!(
            "/_sandbox/msdk/shares?appid={}",
            demo::MSDK_QQ_APPID
        ))
        .await;
    assert_eq!(all["shares"].as_array().unwrap().len(), 6);

    // A new day (admin): the limits start afresh.
    let (status, cleared) = h
        .admin(
            Method::DELETE,
            &format!("/_sandbox/msdk/shares?appid={}", demo::MSDK_QQ_APPID),
            json!(null),
        )
        .await;
    assert_eq!((status, cleared), (200, json!({"cleared": 6})));
    assert_eq!(alice_shares_to(carol).send(&h).await, success);
}

#[tokio::test]
async fn qq_share_checks() {
    let h = start().await;
    let body = qq_share_body(
        demo::MSDK_QQ_ALICE_OPENID,
        demo::MSDK_QQ_ALICE_TOKEN,
        demo::MSDK_QQ_BOB_OPENID,
    );
    let code = |body: Value| {
        let h = &h;
        async move { qq_share(&body).send(h).await }
    };
    // Receivers: a QQ friend who has not registered yet is fine (an invitation); a player who
    // is not a friend is not.
    assert_eq!(
        ret(&code(with(
            body.clone(),
            "fopenids",
            json!([{"openid": "67063124582BE5086B203F543E4F643C", "type": 0}])
        ))
        .await),
        0
    );
    assert_eq!(
        code(with(
            body.clone(),
            "fopenids",
            json!([{"openid": demo::MSDK_QQ_DAVE_OPENID, "type": 0}])
        ))
        .await,
        json!({"ret": -1401, "msg": "the receiver is not a friend of the sender"})
    );
    // fopenids as a JSON string ("vector or json").
    let as_string = json!([{"openid": demo::MSDK_QQ_BOB_OPENID, "type": 0}]).to_string();
    assert_eq!(
        ret(&code(with(body.clone(), "fopenids", json!(as_string))).await),
        0
    );
    assert_eq!(
        code(with(
            body.clone(),
            "fopenids",
            json!([{"openid": demo::MSDK_QQ_BOB_OPENID, "type": 0},
                   {"openid": demo::MSDK_QQ_CAROL_OPENID, "type": 0}])
        ))
        .await,
        json!({"ret": -1002, "msg": "fopenids over the limit of 1"})
    );
    // Lengths in UTF-8 bytes: 15 Korean syllables are 45 bytes.
    let k45 = "가".repeat(15);
    assert_eq!(ret(&code(with(body.clone(), "title", json!(k45))).await), 0);
    assert_eq!(
        code(with(body.clone(), "title", json!(format!("{k45}a")))).await,
        json!({"ret": -1003, "msg": "title longer than 45 bytes"})
    );
    assert_eq!(
        code(with(body.clone(), "summary", json!("s".repeat(46)))).await,
        json!({"ret": -1003, "msg": "summary longer than 45 bytes"})
    );
    let url_512 = format!("{INVITE_URL}&x={}", "y".repeat(512 - INVITE_URL.len() - 3));
    assert_eq!(url_512.len(), 512);
    assert_eq!(
        ret(&code(with(body.clone(), "target_url", json!(url_512))).await),
        0
    );
    assert_eq!(
        code(with(
            body.clone(),
            "target_url",
            json!(format!("{url_512}z"))
        ))
        .await,
        json!({"ret": -1003, "msg": "target_url longer than 512 bytes"})
    );
    // Field values.
    for (field, value, label) in [
        ("game_tag", json!("msg_invite"), "game_tag"),
        ("game_tag", json!(null), "game_tag"),
        ("game_tag", json!("MSG_HEART_SEND"), "target_url"),
        (
            "target_url",
            json!("http://gamecenter.qq.com/gcjump?ADTAG=gameobj.MSG_INVITE"),
            "target_url",
        ),
        ("act", json!(2), "act"),
        ("dst", json!("1002"), "dst"),
        ("flag", json!(0), "flag"),
        (
            "oauth_consumer_key",
            json!(100_703_380),
            "oauth_consumer_key",
        ),
        ("fopenids", json!([]), "fopenids"),
        (
            "fopenids",
            json!([{"openid": demo::MSDK_QQ_BOB_OPENID, "type": 1}]),
            "fopenids.type",
        ),
        ("fopenids", json!("not json"), "fopenids"),
        ("title", json!(""), "title"),
        ("summary", json!(null), "summary"),
    ] {
        assert_eq!(
            code(with(body.clone(), field, value.clone())).await,
            json!({"ret": -1001, "msg": format!("{label} invalid")}),
            "{field} = {value}"
        );
    }
    // The other ADTAGs go with their game tags (after a new day: Bob got 3 from Alice today).
    let new_day = format!("/_sandbox/msdk/shares?appid={}", demo::MSDK_QQ_APPID);
    assert_eq!(h.admin(Method::DELETE, &new_day, json!(null)).await.0, 200);
    let heart = with(
        with(body.clone(), "game_tag", json!("MSG_HEART_SEND")),
        "target_url",
        json!("http://gamecenter.qq.com/gcjump?ADTAG=gameobj.msg_heart"),
    );
    assert_eq!(ret(&code(heart).await), 0);

    // Tokens: body access_token (not accessToken); guests; WeChat apps.
    assert_eq!(
        code(with(
            body.clone(),
            "access_token",
            json!(demo::MSDK_QQ_BOB_TOKEN)
        ))
        .await,
        json!({"ret": -10000, "msg": "100015,access token invalid or expired", "err_type": 3})
    );
    let mut camel = body.clone();
    camel.as_object_mut().unwrap().remove("access_token");
    camel["accessToken"] = json!(demo::MSDK_QQ_ALICE_TOKEN);
    assert_eq!(
        code(camel).await,
        json!({"ret": -1001, "msg": "access_token invalid"})
    );
    let guest = MsdkRequest::guest(SHARE_QQ, body.clone());
    assert_eq!(ret(&guest.send(&h).await), -901);
    let wx = MsdkRequest::new(
        SHARE_QQ,
        demo::MSDK_WX_APPID,
        demo::MSDK_WX_MSDKKEY,
        None,
        &with(body.clone(), "oauth_consumer_key", json!(null)),
    );
    assert_eq!(ret(&wx.send(&h).await), -303);
}

/// PHP's rawurlencode: everything but `A-Z a-z 0-9 - _ . ~` as uppercase `%XX`.
fn rawurlencode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A JPEG-looking file of `len` bytes.
fn image(len: usize) -> Vec<u8> {
    let mut bytes = vec![
        0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00,
    ];
    bytes.extend(
        (0..)
            .map(|i: u32| (i % 251) as u8)
            .take(len.saturating_sub(bytes.len())),
    );
    bytes.truncate(len);
    bytes
}

fn upload_body(bytes: &[u8], filelength: usize) -> Value {
    json!({"flag": 1, "appid": demo::MSDK_WX_APPID, "secret": demo::MSDK_WX_APPKEY,
           "access_token": "", "type": "thumb", "filename": "b.jpg",
           "filelength": filelength, "content_type": "image/jpeg",
           "binary": rawurlencode(bytes)})
}

fn upload(body: &Value) -> MsdkRequest {
    // Like the example: no openid in the URL, authenticated by the secret.
    MsdkRequest::new(
        UPLOAD_WX,
        demo::MSDK_WX_APPID,
        demo::MSDK_WX_MSDKKEY,
        None,
        body,
    )
}

fn wx_share(from: &str, token: &str, to: &str, thumb: &str) -> MsdkRequest {
    MsdkRequest::new(
        SHARE_WX,
        demo::MSDK_WX_APPID,
        demo::MSDK_WX_MSDKKEY,
        None,
        &json!({"openid": from, "fopenid": to, "access_token": token, "extinfo": "extinfo",
                "title": "to a friend", "description": "test by hunter",
                "media_tag_name": "media_tag_name", "thumb_media_id": thumb}),
    )
}

#[tokio::test]
async fn upload_gives_a_media_id_that_share_wx_takes() {
    let h = start().await;
    let bytes = image(1000);
    let answer = upload(&upload_body(&bytes, 1000)).send(&h).await;
    assert_eq!(
        (&answer["ret"], &answer["msg"]),
        (&json!(0), &json!("success"))
    );
    assert_eq!(answer["type"], "thumb");
    assert_eq!(answer["expire"], "");
    let media_id = answer["media_id"].as_str().unwrap().to_owned();
    assert_eq!(media_id.len(), 64);
    let created_at: i64 = answer["created_at"].as_str().unwrap().parse().unwrap();
    assert!((created_at - now()).abs() < 60);
    assert!(!answer["access_token"].as_str().unwrap().is_empty());

    // The admin view has what was uploaded (its md5, not the bytes).
    let media = h
        .get_json(&format!(
            "/_sandbox/msdk/media?appid={}",
            demo::MSDK_WX_APPID
        ))
        .await;
    assert_eq!(
        media["media"],
        json!([{"media_id": media_id, "type": "thumb", "filename": "b.jpg",
                "content_type": "image/jpeg", "length": 1000,
                "md5": hex::encode(Md5::digest(&bytes)), "created_at": created_at.to_string(),
                "openid": ""}])
    );

    let success = json!({"ret": 0, "msg": "success"});
    let (alice, alice_token) = (demo::MSDK_WX_ALICE_OPENID, demo::MSDK_WX_ALICE_TOKEN);
    let bob = demo::MSDK_WX_BOB_OPENID;
    assert_eq!(
        wx_share(alice, alice_token, bob, &media_id).send(&h).await,
        success
    );
    // Empty = the app's registered icon.
    assert_eq!(
        wx_share(alice, alice_token, bob, "").send(&h).await,
        success
    );
    assert_eq!(
        wx_share(
            alice,
            alice_token,
            bob,
            "CAUmtmwCq6jSGWaypYRzJRpErL-vUZj8UPeU8UupzyMFGGpmOnkeUDGLLI9RiTqN"
        )
        .send(&h)
        .await,
        json!({"ret": -1404, "msg": "thumb_media_id not found"})
    );
    let shares = received(&h, demo::MSDK_WX_APPID, bob).await;
    assert_eq!(shares.len(), 2);
    assert_eq!(shares[0]["thumb_media_id"], media_id);
    assert_eq!(shares[1]["kind"], "wx");
}

#[tokio::test]
async fn upload_checks_secret_and_sizes() {
    let h = start().await;
    let code = |body: Value| {
        let h = &h;
        async move { upload(&body).send(h).await }
    };
    // 64 KB exactly is accepted (binary in the URL-encoded form: three bytes per byte).
    let full = image(65536);
    assert_eq!(ret(&code(upload_body(&full, 65536)).await), 0);
    assert_eq!(
        code(upload_body(&image(65537), 65537)).await,
        json!({"ret": -1406, "msg": "filelength over the limit of 65536 bytes"})
    );
    let small = image(100);
    for claimed in [99, 101] {
        assert_eq!(
            code(upload_body(&small, claimed)).await,
            json!({"ret": -1407, "msg": "filelength does not match the binary"}),
            "{claimed}"
        );
    }
    // filelength as a string is refused (the seed's example sends a number); a literal "+"
    // is one byte.
    let mut body = upload_body(b"a+b", 3);
    body["binary"] = json!("a+b");
    body["filelength"] = json!("3");
    assert_eq!(
        code(body.clone()).await,
        json!({"ret": -1001, "msg": "filelength invalid"})
    );
    body["filelength"] = json!(3);
    assert_eq!(ret(&code(body).await), 0);

    assert_eq!(
        code(with(
            upload_body(&small, 100),
            "secret",
            json!("demo-msdk-qq-appkey")
        ))
        .await,
        json!({"ret": -1405, "msg": "secret check failed"})
    );
    assert_eq!(
        code(with(upload_body(&small, 100), "secret", json!(null))).await,
        json!({"ret": -1001, "msg": "secret invalid"})
    );
    for (field, value) in [
        ("binary", json!("%FF%D8%G0")),
        ("binary", json!("")),
        ("filelength", json!(0)),
        ("filelength", json!("many")),
        ("content_type", json!("text/plain")),
        ("type", json!("image")),
        ("flag", json!(2)),
        ("filename", json!(null)),
    ] {
        assert_eq!(
            code(with(upload_body(&small, 100), field, value.clone())).await,
            json!({"ret": -1001, "msg": format!("{field} invalid")}),
            "{field} = {value}"
        );
    }
    let media = h
        .get_json(&format!(
            "/_sandbox/msdk/media?appid={}",
            demo::MSDK_WX_APPID
        ))
        .await;
    assert_eq!(
        media["media"].as_array().unwrap().len(),
        2,
        "only the accepted uploads"
    );
    // A QQ app cannot upload to WeChat.
    let qq = MsdkRequest::new(
        UPLOAD_WX,
        demo::MSDK_QQ_APPID,
        demo::MSDK_QQ_MSDKKEY,
        None,
        &with(upload_body(&small, 100), "appid", json!(null)),
    );
    assert_eq!(ret(&qq.send(&h).await), -303);
}

#[tokio::test]
async fn wechat_share_limits_and_checks() {
    let h = start().await;
    let success = json!({"ret": 0, "msg": "success"});
    let (alice, bob, carol) = (
        demo::MSDK_WX_ALICE_OPENID,
        demo::MSDK_WX_BOB_OPENID,
        demo::MSDK_WX_CAROL_OPENID,
    );
    let (bob_token, carol_token) = (demo::MSDK_WX_BOB_TOKEN, demo::MSDK_WX_CAROL_TOKEN);
    // The seed's example shares to oneself.
    assert_eq!(wx_share(bob, bob_token, bob, "").send(&h).await, success);
    // Bob shares to Alice three times; the fourth is refused.
    for _ in 0..3 {
        assert_eq!(wx_share(bob, bob_token, alice, "").send(&h).await, success);
    }
    assert_eq!(
        ret(&wx_share(bob, bob_token, alice, "").send(&h).await),
        -1403
    );
    // wx_link counts towards the same limits (the seed's example: openid in the URL).
    let link = |from: &str, token: &str, to: &str, url: String, thumb_url: String| {
        MsdkRequest::wx(
            SHARE_WX_LINK,
            from,
            json!({"access_token": token, "touser": to, "title": "title, wx link",
                   "description": "test by msdk 나", "url": url, "thumb_url": thumb_url}),
        )
    };
    let wiki = || "http://wiki.msdk.qq.com/".to_owned();
    let thumb = || "http://wiki.msdk.qq.com/Unity/res/share_struct_qq.png".to_owned();
    assert_eq!(
        link(carol, carol_token, alice, wiki(), thumb())
            .send(&h)
            .await,
        success
    );
    assert_eq!(
        link(carol, carol_token, alice, wiki(), thumb())
            .send(&h)
            .await,
        success
    );
    assert_eq!(
        link(carol, carol_token, alice, wiki(), thumb())
            .send(&h)
            .await,
        json!({"ret": -1402, "msg": "the receiver already got 5 shares today"})
    );
    let shares = received(&h, demo::MSDK_WX_APPID, alice).await;
    let kinds: Vec<&str> = shares.iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["wx", "wx", "wx", "wx_link", "wx_link"]);
    assert_eq!(shares[3]["url"], wiki());

    // URL lengths: 1024 bytes are fine, 1025 are not.
    let long = |len: usize| format!("http://wiki.msdk.qq.com/{}", "a".repeat(len - 24));
    assert_eq!(long(1024).len(), 1024);
    assert_eq!(
        link(
            alice,
            demo::MSDK_WX_ALICE_TOKEN,
            bob,
            long(1024),
            long(1024)
        )
        .send(&h)
        .await,
        success
    );
    assert_eq!(
        link(alice, demo::MSDK_WX_ALICE_TOKEN, bob, long(1025), thumb())
            .send(&h)
            .await,
        json!({"ret": -1003, "msg": "url longer than 1024 bytes"})
    );
    assert_eq!(
        link(alice, demo::MSDK_WX_ALICE_TOKEN, bob, wiki(), long(1025))
            .send(&h)
            .await,
        json!({"ret": -1003, "msg": "thumb_url longer than 1024 bytes"})
    );
    // Receivers must be same-game friends.
    assert_eq!(
        link(
            alice,
            demo::MSDK_WX_ALICE_TOKEN,
            demo::MSDK_WX_DAVE_OPENID,
            wiki(),
            thumb()
        )
        .send(&h)
        .await,
        json!({"ret": -1401, "msg": "the receiver is not a friend of the sender"})
    );
    assert_eq!(
        ret(&wx_share(carol, carol_token, bob, "").send(&h).await),
        -1401,
        "Carol and Bob are not friends"
    );
    // extinfo up to 2 KB; required fields; tokens.
    let mut big = wx_share(alice, demo::MSDK_WX_ALICE_TOKEN, bob, "");
    let mut body: Value = serde_json::from_slice(&big.body).unwrap();
    body["extinfo"] = json!("e".repeat(2048));
    big.body = body.to_string().into_bytes();
    assert_eq!(big.send(&h).await, success);
    body["extinfo"] = json!("e".repeat(2049));
    big.body = body.to_string().into_bytes();
    assert_eq!(
        big.send(&h).await,
        json!({"ret": -1003, "msg": "extinfo longer than 2048 bytes"})
    );
    body["extinfo"] = json!("");
    body["fopenid"] = json!(null);
    big.body = body.to_string().into_bytes();
    assert_eq!(
        big.send(&h).await,
        json!({"ret": -1001, "msg": "fopenid invalid"})
    );
    assert_eq!(
        link(alice, "expired-token", bob, wiki(), thumb())
            .send(&h)
            .await["ret"],
        -20000
    );
    let no_url = MsdkRequest::wx(
        SHARE_WX_LINK,
        alice,
        json!({"access_token": demo::MSDK_WX_ALICE_TOKEN, "touser": bob, "title": "t"}),
    );
    assert_eq!(
        no_url.send(&h).await,
        json!({"ret": -1001, "msg": "url invalid"})
    );
}

#[tokio::test]
async fn freeflow_info_without_a_body() {
    let h = start().await;
    // The seed's example: encode=1, a trailing slash, no body at all.
    let mut request = MsdkRequest::new(
        &format!("{FREEFLOW}/"),
        demo::MSDK_QQ_APPID,
        demo::MSDK_QQ_APPKEY,
        Some(demo::MSDK_QQ_ALICE_OPENID),
        &json!({}),
    )
    .raw_body(b"");
    request.encode = Some("1".into());
    request.content_type = "application/x-www-form-urlencoded";
    assert_eq!(
        request.send(&h).await,
        json!({"ret": 0, "msg": "success", "freeFlowInfo": {
            "ipList": "msdk.qq.com,203.205.128.0/19", "isFree": 1, "ccType": 1,
            "ltList": "lt.msdk.qq.com,112.90.0.0/16", "dxList": "dx.msdk.qq.com,59.37.0.0/16",
            "ydList": "yd.msdk.qq.com,120.204.0.0/16", "expire": 3600}})
    );
    // A body works too; WeChat users have free flow as well.
    let wx = MsdkRequest::wx(FREEFLOW, demo::MSDK_WX_ALICE_OPENID, json!({}));
    let answer = wx.send(&h).await;
    assert_eq!(
        (
            &answer["freeFlowInfo"]["isFree"],
            &answer["freeFlowInfo"]["ccType"]
        ),
        (&json!(1), &json!(0))
    );
    let bob = MsdkRequest::qq(FREEFLOW, demo::MSDK_QQ_BOB_OPENID, json!({}));
    assert_eq!(bob.send(&h).await["freeFlowInfo"]["isFree"], 0);
    // The openid must be a player of the app; guests are refused; a body that is not JSON is.
    let stranger = MsdkRequest::qq(FREEFLOW, "23F7F96A4920872EA3CA2DB6CB8EFE04", json!({}));
    assert_eq!(
        stranger.send(&h).await,
        json!({"ret": -1001, "msg": "openid invalid"})
    );
    let guest = MsdkRequest::guest(FREEFLOW, json!({})).raw_body(b"");
    assert_eq!(ret(&guest.send(&h).await), -901);
    let mut no_openid = bob.clone().raw_body(b"");
    no_openid.openid = None;
    assert_eq!(ret(&no_openid.send(&h).await), -1001);
    assert_eq!(ret(&bob.clone().raw_body(b"openid=1").send(&h).await), -304);
}

#[tokio::test]
async fn ip_information() {
    let h = start().await;
    let seed_ip = MsdkRequest::qq(CCINFO, demo::MSDK_QQ_ALICE_OPENID, json!({}))
        .with("ip", "59.37.125.72")
        .raw_body(b"");
    assert_eq!(
        seed_ip.send(&h).await,
        json!({"ret": 0, "msg": "success", "data": {
            "apn": "unknown", "city": "션전시", "country": "중국", "district": "난샨구",
            "extend": "unknown", "nettype": "unknown", "oper": "차이나 텔레콤",
            "province": "광동성"}})
    );
    // In the body; the body wins over the URL.
    let body_ip = MsdkRequest::wx(
        CCINFO,
        demo::MSDK_WX_ALICE_OPENID,
        json!({"ip": "120.204.9.9"}),
    )
    .with("ip", "59.37.125.72");
    assert_eq!(body_ip.send(&h).await["data"]["oper"], "차이나 모바일");
    // Without ip: the client's address (a proxy's X-Forwarded-For first, else the peer).
    let mut proxied = MsdkRequest::qq(CCINFO, demo::MSDK_QQ_ALICE_OPENID, json!({}));
    proxied
        .headers
        .push(("X-Forwarded-For", "112.90.1.1, 10.0.0.1".into()));
    assert_eq!(proxied.send(&h).await["data"]["city"], "광저우시");
    let direct = MsdkRequest::qq(CCINFO, demo::MSDK_QQ_ALICE_OPENID, json!({})).raw_body(b"");
    assert_eq!(
        direct.send(&h).await["data"],
        json!({"apn": "unknown", "city": "unknown", "country": "unknown",
               "district": "unknown", "extend": "unknown", "nettype": "unknown",
               "oper": "unknown", "province": "unknown"}),
        "127.0.0.1 is unknown"
    );
    let bad = MsdkRequest::qq(
        CCINFO,
        demo::MSDK_QQ_ALICE_OPENID,
        json!({"ip": "59.37.300.1"}),
    );
    assert_eq!(
        bad.send(&h).await,
        json!({"ret": -1001, "msg": "ip invalid"})
    );
}

#[tokio::test]
async fn faults_and_encryption_apply_to_the_new_paths() {
    let h = start().await;
    let fault = |spec: Value| {
        let h = &h;
        async move {
            let (status, answer) = h.admin(Method::POST, "/_sandbox/faults", spec).await;
            assert_eq!(status, 200, "{answer}");
        }
    };
    fault(json!({"path": "/profile/query_vip/", "busy": true})).await;
    fault(json!({"path": SHARE_WX, "code": -7})).await;
    fault(json!({"path": FREEFLOW, "http_status": 503})).await;
    fault(json!({"path": "/profile/get_wx_xinyue_vip", "malformed": true})).await;
    fault(json!({"path": UPLOAD_WX, "drop_connection": true})).await;
    fault(json!({"path": "/profile/subscribe_getlist", "latency_ms": 300})).await;

    let vip = alice("/profile/query_vip", json!({"vip": 1})).with("msdkExtInfo", "f1");
    assert_eq!(
        vip.send(&h).await,
        json!({"ret": -1, "msg": "system busy", "err_type": 1, "msdkExtInfo": "f1"})
    );
    assert_eq!(ret(&vip.send(&h).await), 0, "consumed");
    let share = wx_share(
        demo::MSDK_WX_ALICE_OPENID,
        demo::MSDK_WX_ALICE_TOKEN,
        demo::MSDK_WX_BOB_OPENID,
        "",
    );
    assert_eq!(
        share.send(&h).await,
        json!({"ret": -7, "msg": "sandbox injected error"})
    );
    let freeflow = MsdkRequest::qq(FREEFLOW, demo::MSDK_QQ_ALICE_OPENID, json!({})).raw_body(b"");
    assert_eq!(freeflow.send_raw(&h).await.status(), 503);
    let xinyue = MsdkRequest::wx(
        "/profile/get_wx_xinyue_vip",
        demo::MSDK_WX_ALICE_OPENID,
        json!({}),
    )
    .with("access_token", demo::MSDK_WX_ALICE_TOKEN);
    let (status, text) = send_get(&h, &xinyue).await;
    assert_eq!(status, 200);
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    let error = reqwest::Client::new()
        .post(h.url(&upload(&upload_body(b"x", 1)).path_and_query()))
        .body(upload_body(b"x", 1).to_string())
        .send()
        .await
        .unwrap_err();
    assert!(error.status().is_none(), "{error:?}");
    assert_eq!(ret(&upload(&upload_body(b"x", 1)).send(&h).await), 0);
    let started = std::time::Instant::now();
    assert_eq!(
        ret(&wx_alice("/profile/subscribe_getlist", json!({}))
            .send(&h)
            .await),
        0
    );
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));

    // msdktea both ways on a new interface, and the stats count canonical paths.
    let mut encrypted = wx_alice("/profile/wxget_eliteinfo", json!({}));
    encrypted.encrypt = true;
    encrypted.accept_encrypt = true;
    assert_eq!(encrypted.send(&h).await["data"]["wx_elite"], 1);
    let stats = h.get_json("/_sandbox/stats").await;
    assert_eq!(stats["requests"]["/profile/query_vip"], 2);
    assert_eq!(stats["requests"][UPLOAD_WX], 2);
    assert_eq!(stats["requests"]["/profile/get_wx_xinyue_vip"], 1);
}
