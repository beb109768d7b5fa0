//! ShareService end to end against the sandbox's MSDK `share` emulation: the
//! directed Mobile QQ share and its daily limits, the WeChat thumbnail upload
//! (raw bytes sent rawurlencoded, their length and the app's appkey added by
//! gamegate), and the WeChat message and link shares.

use gamegate::proto::share_service_client::ShareServiceClient;
use gamegate::proto::{
    QqShareFriend, QqShareGameTag, ShareQqRequest, ShareWxLinkRequest, ShareWxRequest,
    UploadWxThumbRequest,
};
use md5::{Digest, Md5};
use tonic::{Code, transport::Channel};

use crate::common::{Harness, demo, expect_error};
use crate::msdk_support::{
    GATEWAY_DOMAIN, QQ, WX, admin_send, assert_local, assert_upstream, ext, media, requests,
    shares, total_requests,
};

const SHARE_QQ_PATH: &str = "/share/qq";
const UPLOAD_PATH: &str = "/share/upload_wx";
const SHARE_WX_PATH: &str = "/share/wx";
const WX_LINK_PATH: &str = "/share/wx_link";

const INVITE_URL: &str = "http://gamecenter.qq.com/gcjump?appid=100703379&pf=invite&from=iphoneqq&plat=qq&originuin=111&ADTAG=gameobj.msg_invite";
const HEART_URL: &str = "http://gamecenter.qq.com/gcjump?appid=100703379&ADTAG=gameobj.msg_heart";
/// One of Alice's QQ friends who has not registered with the app yet (Frank).
const ALICE_UNREGISTERED_FRIEND: &str = "67063124582BE5086B203F543E4F643C";

fn share(harness: &Harness) -> ShareServiceClient<Channel> {
    ShareServiceClient::new(harness.channel.clone())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

// ---- /share/qq ---------------------------------------------------------------------------

fn qq_share(from: (&str, &str), to: &str) -> ShareQqRequest {
    ShareQqRequest {
        app_id: QQ.into(),
        openid: from.0.into(),
        access_token: from.1.into(),
        userip: "203.0.113.7".into(),
        act: None,
        dst: None,
        roaming_flag: None,
        image_url: "http://mat1.gtimg.com/www/images/qq2012/erweimaVideoPic.png".into(),
        src: None,
        summary: "개요".into(),
        target_url: INVITE_URL.into(),
        title: "test by hunter".into(),
        fopenids: vec![QqShareFriend {
            openid: to.into(),
            friend_type: 0,
        }],
        preview_text: "나는 매일 게임을 즐겨요".into(),
        game_tag: QqShareGameTag::Invite as i32,
        options: None,
    }
}

const QQ_ALICE: (&str, &str) = (demo::MSDK_QQ_ALICE_OPENID, demo::MSDK_QQ_ALICE_TOKEN);
const QQ_BOB: (&str, &str) = (demo::MSDK_QQ_BOB_OPENID, demo::MSDK_QQ_BOB_TOKEN);
const QQ_CAROL: (&str, &str) = (demo::MSDK_QQ_CAROL_OPENID, demo::MSDK_QQ_CAROL_TOKEN);

#[tokio::test]
async fn share_qq_reaches_a_friend() {
    let harness = Harness::start().await;
    let mut client = share(&harness);

    let mut request = qq_share(QQ_ALICE, demo::MSDK_QQ_BOB_OPENID);
    request.options = ext("share_1");
    let answer = client
        .share_qq(request)
        .await
        .expect("share/qq succeeds")
        .into_inner();
    assert_eq!(answer.msdk_ext_info, "share_1");
    let received = shares(&harness, QQ, Some(demo::MSDK_QQ_BOB_OPENID)).await;
    assert_eq!(received.len(), 1, "{received:?}");
    let record = &received[0];
    assert_eq!(record["kind"], "qq");
    assert_eq!(record["openid"], demo::MSDK_QQ_ALICE_OPENID);
    assert_eq!(record["to"], demo::MSDK_QQ_BOB_OPENID);
    assert_eq!(record["game_tag"], "MSG_INVITE");
    assert_eq!(record["title"], "test by hunter");
    assert_eq!(record["summary"], "개요");
    assert_eq!(record["target_url"], INVITE_URL);
    assert_eq!(record["userip"], "203.0.113.7");
    assert_eq!(record["src"], 0);

    // An invitation to a QQ friend who does not play yet, with a heart.
    let mut heart = qq_share(QQ_ALICE, ALICE_UNREGISTERED_FRIEND);
    heart.game_tag = QqShareGameTag::HeartSend as i32;
    heart.target_url = HEART_URL.into();
    client
        .share_qq(heart)
        .await
        .expect("an invitation succeeds");
    let invited = shares(&harness, QQ, Some(ALICE_UNREGISTERED_FRIEND)).await;
    assert_eq!(invited.len(), 1);
    assert_eq!(invited[0]["game_tag"], "MSG_HEART_SEND");

    // Dave is nobody's friend: -1401.
    let error = expect_error(
        client
            .share_qq(qq_share(QQ_ALICE, demo::MSDK_QQ_DAVE_OPENID))
            .await,
        Code::InvalidArgument,
        "MSDK_CLIENT_ERROR",
    );
    assert_upstream(&error, -1401, SHARE_QQ_PATH);

    // The target_url's ADTAG must be the game_tag's (case-sensitive): -1001.
    let mut pvp = qq_share(QQ_ALICE, demo::MSDK_QQ_BOB_OPENID);
    pvp.game_tag = QqShareGameTag::FriendPvp as i32;
    let error = expect_error(
        client.share_qq(pvp).await,
        Code::InvalidArgument,
        "MSDK_CLIENT_ERROR",
    );
    assert_upstream(&error, -1001, SHARE_QQ_PATH);
    assert_eq!(requests(&harness, SHARE_QQ_PATH).await, 4);

    // Documented limits, checked before any call: 45-byte title, one friend, a game tag.
    let mut long_title = qq_share(QQ_ALICE, demo::MSDK_QQ_BOB_OPENID);
    long_title.title = "제목".repeat(8); // 48 bytes
    let error = expect_error(
        client.share_qq(long_title).await,
        Code::InvalidArgument,
        "FIELD_INVALID",
    );
    assert_local(&error, &["title"]);
    let mut two = qq_share(QQ_ALICE, demo::MSDK_QQ_BOB_OPENID);
    two.fopenids.push(QqShareFriend {
        openid: demo::MSDK_QQ_CAROL_OPENID.into(),
        friend_type: 0,
    });
    let error = expect_error(
        client.share_qq(two).await,
        Code::InvalidArgument,
        "FIELD_INVALID",
    );
    assert_local(&error, &["fopenids"]);
    let mut untagged = qq_share(QQ_ALICE, demo::MSDK_QQ_BOB_OPENID);
    untagged.game_tag = QqShareGameTag::Unspecified as i32;
    let error = expect_error(
        client.share_qq(untagged).await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_local(&error, &["game_tag"]);
    assert_eq!(requests(&harness, SHARE_QQ_PATH).await, 4);
    assert_eq!(
        shares(&harness, QQ, Some(demo::MSDK_QQ_BOB_OPENID))
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn share_qq_daily_limits() {
    let harness = Harness::start().await;
    let mut client = share(&harness);
    let to_bob = |from| qq_share(from, demo::MSDK_QQ_BOB_OPENID);

    // At most 3 a day from the same sender.
    for _ in 0..3 {
        client
            .share_qq(to_bob(QQ_ALICE))
            .await
            .expect("within limits");
    }
    let error = expect_error(
        client.share_qq(to_bob(QQ_ALICE)).await,
        Code::InvalidArgument,
        "MSDK_CLIENT_ERROR",
    );
    assert_upstream(&error, -1403, SHARE_QQ_PATH);
    assert_eq!(
        error.metadata["upstream_message"],
        "the receiver already got 3 shares from this sender today"
    );

    // At most 5 a day in all: two more from Carol, then the sixth (Bob to himself) is refused.
    for _ in 0..2 {
        client
            .share_qq(to_bob(QQ_CAROL))
            .await
            .expect("within limits");
    }
    let error = expect_error(
        client.share_qq(to_bob(QQ_BOB)).await,
        Code::InvalidArgument,
        "MSDK_CLIENT_ERROR",
    );
    assert_upstream(&error, -1402, SHARE_QQ_PATH);
    assert_eq!(
        error.metadata["upstream_message"],
        "the receiver already got 5 shares today"
    );
    // Refused shares do not count; each was sent once (shares are never retried).
    assert_eq!(
        shares(&harness, QQ, Some(demo::MSDK_QQ_BOB_OPENID))
            .await
            .len(),
        5
    );
    assert_eq!(requests(&harness, SHARE_QQ_PATH).await, 7);

    // Carol still receives.
    client
        .share_qq(qq_share(QQ_ALICE, demo::MSDK_QQ_CAROL_OPENID))
        .await
        .expect("another receiver has its own limits");

    // A new day.
    admin_send(
        &harness,
        reqwest::Method::DELETE,
        &format!("/msdk/shares?appid={QQ}"),
        serde_json::json!({}),
    )
    .await;
    client
        .share_qq(to_bob(QQ_ALICE))
        .await
        .expect("the limits start afresh");
}

// ---- /share/upload_wx and /share/wx ------------------------------------------------------

pub(crate) fn upload(image: Vec<u8>) -> UploadWxThumbRequest {
    UploadWxThumbRequest {
        app_id: WX.into(),
        openid: demo::MSDK_WX_ALICE_OPENID.into(),
        access_token: String::new(),
        flag: None,
        media_type: String::new(),
        filename: "b.jpg".into(),
        content_type: "image/jpeg".into(),
        image,
        options: None,
    }
}

pub(crate) fn wx_share(to: &str, thumb_media_id: &str) -> ShareWxRequest {
    ShareWxRequest {
        app_id: WX.into(),
        openid: demo::MSDK_WX_ALICE_OPENID.into(),
        access_token: demo::MSDK_WX_ALICE_TOKEN.into(),
        fopenid: to.into(),
        extinfo: "extinfo".into(),
        title: "to a friend".into(),
        description: "test by hunter".into(),
        media_tag_name: "MSG_INVITE".into(),
        thumb_media_id: thumb_media_id.into(),
        options: None,
    }
}

/// A JPEG-looking image with every byte value, and those rawurlencode must escape.
fn image_bytes() -> Vec<u8> {
    let mut image = b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00+/ %~-_.\xFF\x00".to_vec();
    image.extend(0..=255u8);
    image.extend_from_slice(b"a+b c/d%2B%%zz\r\n\xFF\xD9");
    image
}

fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

#[tokio::test]
async fn upload_wx_thumb_then_share_with_it() {
    let harness = Harness::start().await;
    let mut client = share(&harness);
    let image = image_bytes();

    let mut request = upload(image.clone());
    request.options = ext("upload");
    let started = now();
    let uploaded = client
        .upload_wx_thumb(request)
        .await
        .expect("upload_wx succeeds")
        .into_inner();
    assert_eq!(uploaded.media_type, "thumb");
    assert_eq!(uploaded.media_id.len(), 64, "{}", uploaded.media_id);
    let created = uploaded.created_at.expect("created_at").seconds;
    assert!((started - 5..=now() + 5).contains(&created), "{created}");
    assert_eq!(uploaded.msdk_ext_info, "upload");

    // The sandbox decoded exactly the bytes sent.
    let stored = media(&harness, WX).await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0]["media_id"], uploaded.media_id.as_str());
    assert_eq!(stored[0]["length"], image.len());
    assert_eq!(stored[0]["md5"], md5_hex(&image));
    assert_eq!(stored[0]["type"], "thumb");
    assert_eq!(stored[0]["filename"], "b.jpg");
    assert_eq!(stored[0]["content_type"], "image/jpeg");

    // Share with it.
    client
        .share_wx(wx_share(demo::MSDK_WX_BOB_OPENID, &uploaded.media_id))
        .await
        .expect("share/wx with the uploaded thumbnail succeeds");
    let received = shares(&harness, WX, Some(demo::MSDK_WX_BOB_OPENID)).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["kind"], "wx");
    assert_eq!(received[0]["openid"], demo::MSDK_WX_ALICE_OPENID);
    assert_eq!(received[0]["thumb_media_id"], uploaded.media_id.as_str());
    assert_eq!(received[0]["title"], "to a friend");
    assert_eq!(received[0]["extinfo"], "extinfo");
    assert_eq!(received[0]["media_tag_name"], "MSG_INVITE");

    // The app's icon (no media_id), to oneself as in the seed's example.
    client
        .share_wx(wx_share(demo::MSDK_WX_ALICE_OPENID, ""))
        .await
        .expect("share/wx with the default image succeeds");

    // A media_id the app never uploaded: -1404.
    let error = expect_error(
        client
            .share_wx(wx_share(
                demo::MSDK_WX_BOB_OPENID,
                "CAUmtmwCq6jSGWaypYRzJRpErL-vUZj8UPeU8UupzyMFGGpmOnkeUDGLLI9RiTqN",
            ))
            .await,
        Code::InvalidArgument,
        "MSDK_CLIENT_ERROR",
    );
    assert_upstream(&error, -1404, SHARE_WX_PATH);

    // 64 KB is the limit: 65536 bytes go, 65537 are refused before any call.
    let full: Vec<u8> = (0..65_536u32).map(|i| (i % 251) as u8).collect();
    let big = client
        .upload_wx_thumb(upload(full.clone()))
        .await
        .expect("65536 bytes are accepted")
        .into_inner();
    let stored = media(&harness, WX).await;
    let entry = stored
        .iter()
        .find(|m| m["media_id"] == big.media_id.as_str())
        .expect("the big upload is stored");
    assert_eq!(entry["length"], 65_536);
    assert_eq!(entry["md5"], md5_hex(&full));
    assert_eq!(requests(&harness, UPLOAD_PATH).await, 2);

    let error = expect_error(
        client.upload_wx_thumb(upload(vec![0x2B; 65_537])).await,
        Code::InvalidArgument,
        "FIELD_INVALID",
    );
    assert_local(&error, &["image"]);
    let error = expect_error(
        client.upload_wx_thumb(upload(Vec::new())).await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_local(&error, &["image"]);
    assert_eq!(requests(&harness, UPLOAD_PATH).await, 2);
}

#[tokio::test]
async fn upload_wx_thumb_secret_is_the_configured_appkey() {
    const WRONG: &str = "not-the-wechat-appkey";
    // A wrong appkey: the platform's -1405, the key never shown.
    let harness = Harness::start_with(|config| {
        config
            .msdk
            .as_mut()
            .unwrap()
            .apps
            .get_mut(WX)
            .unwrap()
            .appkey = Some(secrecy::SecretString::from(WRONG));
    })
    .await;
    let error = expect_error(
        share(&harness).upload_wx_thumb(upload(image_bytes())).await,
        Code::InvalidArgument,
        "MSDK_CLIENT_ERROR",
    );
    assert_upstream(&error, -1405, UPLOAD_PATH);
    for key in [WRONG, demo::MSDK_WX_APPKEY] {
        assert!(!error.message.contains(key), "{}", error.message);
        assert!(error.metadata.values().all(|v| !v.contains(key)));
    }
    assert!(media(&harness, WX).await.is_empty());

    // No appkey configured: gamegate cannot fill "secret" and sends nothing.
    let harness = Harness::start_with(|config| {
        config
            .msdk
            .as_mut()
            .unwrap()
            .apps
            .get_mut(WX)
            .unwrap()
            .appkey = None;
    })
    .await;
    let error = expect_error(
        share(&harness).upload_wx_thumb(upload(image_bytes())).await,
        Code::FailedPrecondition,
        "APP_CREDENTIAL_MISSING",
    );
    assert_eq!(error.domain, GATEWAY_DOMAIN);
    assert_eq!(error.metadata["app_id"], WX);
    assert_eq!(error.metadata["credential"], "appkey");
    assert_eq!(total_requests(&harness).await, 0);
}

#[tokio::test]
async fn share_wx_limits() {
    let harness = Harness::start().await;
    let mut client = share(&harness);

    // Dave plays, but is nobody's friend: -1401.
    let error = expect_error(
        client
            .share_wx(wx_share(demo::MSDK_WX_DAVE_OPENID, ""))
            .await,
        Code::InvalidArgument,
        "MSDK_CLIENT_ERROR",
    );
    assert_upstream(&error, -1401, SHARE_WX_PATH);

    // extinfo is limited to 2 KB, locally.
    let mut long = wx_share(demo::MSDK_WX_BOB_OPENID, "");
    long.extinfo = "x".repeat(2049);
    let error = expect_error(
        client.share_wx(long).await,
        Code::InvalidArgument,
        "FIELD_INVALID",
    );
    assert_local(&error, &["extinfo"]);
    let mut exact = wx_share(demo::MSDK_WX_BOB_OPENID, "");
    exact.extinfo = "x".repeat(2048);
    client.share_wx(exact).await.expect("2048 bytes are fine");
    assert_eq!(requests(&harness, SHARE_WX_PATH).await, 2);

    // WeChat shares and link shares count together: 3 from one sender a day.
    client
        .share_wx(wx_share(demo::MSDK_WX_BOB_OPENID, ""))
        .await
        .expect("second share");
    client
        .share_wx_link(wx_link(demo::MSDK_WX_BOB_OPENID))
        .await
        .expect("third share, a link");
    let error = expect_error(
        client
            .share_wx_link(wx_link(demo::MSDK_WX_BOB_OPENID))
            .await,
        Code::InvalidArgument,
        "MSDK_CLIENT_ERROR",
    );
    assert_upstream(&error, -1403, WX_LINK_PATH);
    let error = expect_error(
        client
            .share_wx(wx_share(demo::MSDK_WX_BOB_OPENID, ""))
            .await,
        Code::InvalidArgument,
        "MSDK_CLIENT_ERROR",
    );
    assert_upstream(&error, -1403, SHARE_WX_PATH);
    let kinds: Vec<String> = shares(&harness, WX, Some(demo::MSDK_WX_BOB_OPENID))
        .await
        .iter()
        .map(|s| s["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["wx", "wx", "wx_link"]);
}

// ---- /share/wx_link ----------------------------------------------------------------------

fn wx_link(to: &str) -> ShareWxLinkRequest {
    ShareWxLinkRequest {
        app_id: WX.into(),
        openid: demo::MSDK_WX_ALICE_OPENID.into(),
        access_token: demo::MSDK_WX_ALICE_TOKEN.into(),
        to_user: to.into(),
        title: "title, wx link".into(),
        description: "test by msdk 나".into(),
        url: "http://wiki.msdk.qq.com/".into(),
        thumb_url: "http://wiki.msdk.qq.com/Unity/res/share_struct_qq.png".into(),
        options: None,
    }
}

#[tokio::test]
async fn share_wx_link_reaches_a_friend() {
    let harness = Harness::start().await;
    let mut client = share(&harness);

    let mut request = wx_link(demo::MSDK_WX_CAROL_OPENID);
    request.options = ext("link");
    let answer = client
        .share_wx_link(request)
        .await
        .expect("share/wx_link succeeds")
        .into_inner();
    assert_eq!(answer.msdk_ext_info, "link");
    let received = shares(&harness, WX, Some(demo::MSDK_WX_CAROL_OPENID)).await;
    assert_eq!(received.len(), 1, "{received:?}");
    let record = &received[0];
    assert_eq!(record["kind"], "wx_link");
    assert_eq!(record["openid"], demo::MSDK_WX_ALICE_OPENID);
    assert_eq!(record["to"], demo::MSDK_WX_CAROL_OPENID);
    assert_eq!(record["title"], "title, wx link");
    assert_eq!(record["description"], "test by msdk 나");
    assert_eq!(record["url"], "http://wiki.msdk.qq.com/");
    assert_eq!(
        record["thumb_url"],
        "http://wiki.msdk.qq.com/Unity/res/share_struct_qq.png"
    );

    // Not a friend: -1401.
    let error = expect_error(
        client
            .share_wx_link(wx_link(demo::MSDK_WX_DAVE_OPENID))
            .await,
        Code::InvalidArgument,
        "MSDK_CLIENT_ERROR",
    );
    assert_upstream(&error, -1401, WX_LINK_PATH);

    // url is limited to 1024 bytes and required, locally.
    let mut long = wx_link(demo::MSDK_WX_CAROL_OPENID);
    long.url = format!("http://wiki.msdk.qq.com/?q={}", "q".repeat(1000));
    let error = expect_error(
        client.share_wx_link(long).await,
        Code::InvalidArgument,
        "FIELD_INVALID",
    );
    assert_local(&error, &["url"]);
    let mut nowhere = wx_link(demo::MSDK_WX_CAROL_OPENID);
    nowhere.url = String::new();
    let error = expect_error(
        client.share_wx_link(nowhere).await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_local(&error, &["url"]);
    assert_eq!(requests(&harness, WX_LINK_PATH).await, 2);
}
