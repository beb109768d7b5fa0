//! ProfileService end to end against the sandbox's MSDK `profile` emulation:
//! first-login flags, QQ VIP kinds (a repeated enum sent as one bit mask), the
//! one-shot Blue Diamond gift, wifi, QQ achievement and WeChat battle reports
//! (a `google.protobuf.Struct` passed on with its integers), the Tencent Video
//! memberships (body signature computed by gamegate from the configured
//! channel secret), the two GET interfaces, WeChat privileges, subscriptions
//! and elite flags.

use gamegate::proto::profile_service_client::ProfileServiceClient;
use gamegate::proto::{
    ClaimBlueDiamondGiftRequest, ClearWxSubscriptionRequest, GetQqFirstRegistrationRequest,
    GetQqVideoVipRequest, GetWifiEligibilityRequest, GetWxEliteInfoRequest,
    GetWxFirstRegistrationRequest, GetWxVideoVipRequest, GetWxVipRequest, GetWxXinyueVipRequest,
    GetXinyueSuperRequest, ListWxSubscriptionsRequest, PushWxSubscriptionRequest, QqScoreEntry,
    QqScoreRankRelevance, QqVipKind, QueryQqVipRequest, ReportQqScoresRequest,
    ReportWxBattleRequest, SetWxSubscriptionsRequest, WxBattleBaseInfo, WxBattleInfo,
    WxBattlePlatform, WxBattleReport, WxSubscriptionOperation, WxUserLogin, WxVipQuery,
    WxVipQueryType, XinyueAccessType, XinyueSuperLevel,
};
use prost_types::{Struct, Timestamp, Value as PbValue, value::Kind};
use serde_json::{Value, json};
use tonic::{Code, transport::Channel};

use crate::common::{Harness, demo, expect_error};
use crate::msdk_support::{
    GATEWAY_DOMAIN, QQ, WX, admin_send, assert_local, assert_upstream, battle_reports,
    expire_token, ext, qq_alice, qq_login, requests, scores, subscriptions, total_requests,
    wx_alice, wx_bob,
};

const QQ_FIRST_REG_PATH: &str = "/profile/qqget_first_reg";
const QUERY_VIP_PATH: &str = "/profile/query_vip";
const GET_GIFT_PATH: &str = "/profile/get_gift";
const GET_WIFI_PATH: &str = "/profile/get_wifi";
const QQ_SCORE_PATH: &str = "/profile/qqscore_batch";
const QQ_VIDEO_PATH: &str = "/profile/qqget_video_vip";
const XINYUE_SUPER_PATH: &str = "/profile/get_xinyue_super";
const WX_XINYUE_PATH: &str = "/profile/get_wx_xinyue_vip";
const WX_VIP_PATH: &str = "/profile/wxget_vip";
const WX_FIRST_REG_PATH: &str = "/profile/wxget_first_reg";
const WX_VIDEO_PATH: &str = "/profile/wxget_video_vip";
const WX_BATTLE_PATH: &str = "/profile/wxbattle_report";
const SUB_LIST_PATH: &str = "/profile/subscribe_getlist";
const SUB_SET_PATH: &str = "/profile/subscribe_setlist";
const SUB_PUSH_PATH: &str = "/profile/subscribe_push";
const SUB_CLEAR_PATH: &str = "/profile/subscribe_clear";
const ELITE_PATH: &str = "/profile/wxget_eliteinfo";

/// 2050-01-01T00:00:00Z, when the demo's active memberships end.
const Y2050: i64 = 2_524_579_200;
/// An openid that is no player of either demo app.
const STRANGER_QQ: &str = "0123456789ABCDEF0123456789ABCDEF";
const STRANGER_WX: &str = "oGRTij_not_a_player_of_the_app";

fn profile(harness: &Harness) -> ProfileServiceClient<Channel> {
    ProfileServiceClient::new(harness.channel.clone())
}

fn ts(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

// ---- first-login flags -------------------------------------------------------------------

fn qq_first_reg(openid: &str, token: &str) -> GetQqFirstRegistrationRequest {
    GetQqFirstRegistrationRequest {
        app_id: QQ.into(),
        openid: openid.into(),
        access_token: token.into(),
        options: None,
    }
}

#[tokio::test]
async fn qq_first_registration_flags() {
    let harness = Harness::start().await;
    let mut client = profile(&harness);

    let mut request = qq_first_reg(demo::MSDK_QQ_ALICE_OPENID, demo::MSDK_QQ_ALICE_TOKEN);
    request.options = ext("first_reg_1");
    let alice = client
        .get_qq_first_registration(request)
        .await
        .expect("qqget_first_reg succeeds")
        .into_inner();
    assert!(!alice.need_pop);
    assert!(alice.realname_verified);
    assert!(alice.mobile_registered);
    assert_eq!(alice.msdk_ext_info, "first_reg_1");

    let bob = client
        .get_qq_first_registration(qq_first_reg(
            demo::MSDK_QQ_BOB_OPENID,
            demo::MSDK_QQ_BOB_TOKEN,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (bob.need_pop, bob.realname_verified, bob.mobile_registered),
        (true, true, false)
    );

    // Erin changed her QQ password: -10000 with the Mobile QQ code -73.
    let error = expect_error(
        client
            .get_qq_first_registration(qq_first_reg(
                demo::MSDK_QQ_ERIN_OPENID,
                demo::MSDK_QQ_ERIN_TOKEN,
            ))
            .await,
        Code::Unauthenticated,
        "USER_REAUTH_REQUIRED",
    );
    assert_upstream(&error, -10000, QQ_FIRST_REG_PATH);
    assert_eq!(error.metadata["plat_code"], "-73");

    // No token: refused before any call.
    let before = total_requests(&harness).await;
    let error = expect_error(
        client
            .get_qq_first_registration(qq_first_reg(demo::MSDK_QQ_ALICE_OPENID, ""))
            .await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_local(&error, &["access_token"]);
    assert_eq!(total_requests(&harness).await, before);
    assert_eq!(requests(&harness, QQ_FIRST_REG_PATH).await, 3);
}

#[tokio::test]
async fn wx_first_registration_flags() {
    let harness = Harness::start().await;
    let mut client = profile(&harness);
    let request = |openid: &str, token: &str| GetWxFirstRegistrationRequest {
        app_id: WX.into(),
        openid: openid.into(),
        access_token: token.into(),
        options: None,
    };

    let alice = client
        .get_wx_first_registration(request(
            demo::MSDK_WX_ALICE_OPENID,
            demo::MSDK_WX_ALICE_TOKEN,
        ))
        .await
        .expect("wxget_first_reg succeeds")
        .into_inner();
    assert_eq!(
        (
            alice.need_pop,
            alice.realname_verified,
            alice.mobile_registered
        ),
        (false, true, true)
    );
    let bob = client
        .get_wx_first_registration(request(demo::MSDK_WX_BOB_OPENID, demo::MSDK_WX_BOB_TOKEN))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (bob.need_pop, bob.realname_verified, bob.mobile_registered),
        (true, false, false)
    );

    // Bob's token for Alice: WeChat's 40001 inside -20000.
    let error = expect_error(
        client
            .get_wx_first_registration(request(demo::MSDK_WX_ALICE_OPENID, demo::MSDK_WX_BOB_TOKEN))
            .await,
        Code::Unauthenticated,
        "USER_TOKEN_INVALID",
    );
    assert_upstream(&error, -20000, WX_FIRST_REG_PATH);
    assert_eq!(error.metadata["plat_code"], "40001");
}

// ---- query_vip ---------------------------------------------------------------------------

fn query_vip(kinds: &[QqVipKind]) -> QueryQqVipRequest {
    QueryQqVipRequest {
        app_id: QQ.into(),
        user: qq_alice(),
        vip_kinds: kinds.iter().map(|kind| *kind as i32).collect(),
        options: None,
    }
}

#[tokio::test]
async fn query_vip_sends_the_kinds_as_one_bit_mask() {
    let harness = Harness::start().await;
    let mut client = profile(&harness);

    // NORMAL (0x1) | BLUE (0x4) | XINYUE_NEW (0x200) = 517: the sandbox answers one entry per
    // bit of the mask it received, in flag order.
    let answer = client
        .query_qq_vip(query_vip(&[
            QqVipKind::Member,
            QqVipKind::BlueDiamond,
            QqVipKind::XinyueLevel,
        ]))
        .await
        .expect("query_vip succeeds")
        .into_inner();
    let kinds: Vec<QqVipKind> = answer.vip_statuses.iter().map(|s| s.kind()).collect();
    assert_eq!(
        kinds,
        [
            QqVipKind::Member,
            QqVipKind::BlueDiamond,
            QqVipKind::XinyueLevel
        ]
    );
    let [member, blue, xinyue] = &answer.vip_statuses[..] else {
        unreachable!()
    };
    // Alice: QQ VIP 6, annual (her memberships); blue diamond 7, annual, luxury; Xinyue level 11.
    assert_eq!(
        (
            member.is_vip,
            member.is_year_vip,
            member.level,
            member.is_luxury
        ),
        (true, true, 6, false)
    );
    assert_eq!(
        (blue.is_vip, blue.is_year_vip, blue.level, blue.is_luxury),
        (true, true, 7, true)
    );
    assert_eq!(
        (xinyue.is_vip, xinyue.is_year_vip, xinyue.level),
        (true, false, 11)
    );

    // Order and repetition do not matter: a mask. QQ level (0x2) | red (0x8) | super (0x10).
    let answer = client
        .query_qq_vip(query_vip(&[
            QqVipKind::SuperMember,
            QqVipKind::QqLevel,
            QqVipKind::RedDiamond,
            QqVipKind::SuperMember,
        ]))
        .await
        .unwrap()
        .into_inner();
    let summary: Vec<(QqVipKind, bool, i32)> = answer
        .vip_statuses
        .iter()
        .map(|s| (s.kind(), s.is_vip, s.level))
        .collect();
    assert_eq!(
        summary,
        [
            (QqVipKind::QqLevel, true, 10),
            (QqVipKind::RedDiamond, false, 0),
            (QqVipKind::SuperMember, true, 0),
        ]
    );
    assert_eq!(requests(&harness, QUERY_VIP_PATH).await, 2);

    // No kind: refused locally.
    let error = expect_error(
        client.query_qq_vip(query_vip(&[])).await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_local(&error, &["vip_kinds"]);
    assert_eq!(requests(&harness, QUERY_VIP_PATH).await, 2);

    // An expired login: Mobile QQ's 100015 inside -10000.
    expire_token(&harness, QQ, demo::MSDK_QQ_ALICE_OPENID).await;
    let error = expect_error(
        client.query_qq_vip(query_vip(&[QqVipKind::Member])).await,
        Code::Unauthenticated,
        "USER_TOKEN_INVALID",
    );
    assert_upstream(&error, -10000, QUERY_VIP_PATH);
    assert_eq!(error.metadata["plat_code"], "100015");
}

// ---- get_gift, get_wifi ------------------------------------------------------------------

fn gift_request(app_id: &str, openid: &str) -> ClaimBlueDiamondGiftRequest {
    ClaimBlueDiamondGiftRequest {
        app_id: app_id.into(),
        openid: openid.into(),
        options: None,
    }
}

#[tokio::test]
async fn blue_diamond_gift_is_claimed_once() {
    let harness = Harness::start().await;
    let mut client = profile(&harness);

    let first = client
        .claim_blue_diamond_gift(gift_request(QQ, demo::MSDK_QQ_ALICE_OPENID))
        .await
        .expect("get_gift succeeds")
        .into_inner();
    let gifts: Vec<(&str, i32)> = first
        .gift_packs
        .iter()
        .map(|g| (g.gift_id.as_str(), g.gift_count))
        .collect();
    assert_eq!(gifts, [("1001", 1), ("1002", 3)]);

    let second = client
        .claim_blue_diamond_gift(gift_request(QQ, demo::MSDK_QQ_ALICE_OPENID))
        .await
        .expect("a second claim succeeds, with nothing")
        .into_inner();
    assert!(second.gift_packs.is_empty(), "{second:?}");
    // Two calls, two requests: a claim is never retried.
    assert_eq!(requests(&harness, GET_GIFT_PATH).await, 2);

    // Carol's own gift is still there.
    let carol = client
        .claim_blue_diamond_gift(gift_request(QQ, demo::MSDK_QQ_CAROL_OPENID))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(carol.gift_packs.len(), 1);
    assert_eq!(carol.gift_packs[0].gift_id, "2001");
    assert_eq!(carol.gift_packs[0].gift_count, 1);

    // Not a player of the app.
    let error = expect_error(
        client
            .claim_blue_diamond_gift(gift_request(QQ, STRANGER_QQ))
            .await,
        Code::InvalidArgument,
        "MSDK_CLIENT_ERROR",
    );
    assert_upstream(&error, -1001, GET_GIFT_PATH);

    // Guests get no gift: -901.
    let error = expect_error(
        client
            .claim_blue_diamond_gift(gift_request(
                demo::MSDK_GUEST_APPID,
                demo::MSDK_GUEST_OPENID,
            ))
            .await,
        Code::PermissionDenied,
        "GUEST_NOT_ALLOWED",
    );
    assert_upstream(&error, -901, GET_GIFT_PATH);
}

#[tokio::test]
async fn wifi_eligibility() {
    let harness = Harness::start().await;
    let mut client = profile(&harness);
    let request = |app_id: &str, openid: &str| GetWifiEligibilityRequest {
        app_id: app_id.into(),
        openid: openid.into(),
        options: ext("wifi"),
    };

    let alice = client
        .get_wifi_eligibility(request(QQ, demo::MSDK_QQ_ALICE_OPENID))
        .await
        .expect("get_wifi succeeds")
        .into_inner();
    assert!(alice.wifi_vip);
    assert_eq!(alice.msdk_ext_info, "wifi");
    let bob = client
        .get_wifi_eligibility(request(QQ, demo::MSDK_QQ_BOB_OPENID))
        .await
        .unwrap()
        .into_inner();
    assert!(!bob.wifi_vip);

    // A Mobile QQ interface called with the WeChat app: -303.
    let error = expect_error(
        client
            .get_wifi_eligibility(request(WX, demo::MSDK_QQ_ALICE_OPENID))
            .await,
        Code::FailedPrecondition,
        "MSDK_NO_PERMISSION",
    );
    assert_upstream(&error, -303, GET_WIFI_PATH);
    assert_eq!(
        error.metadata["upstream_message"],
        "appid has no permission for this interface"
    );
}

// ---- qqscore_batch -----------------------------------------------------------------------

fn score_request(scores: Vec<QqScoreEntry>) -> ReportQqScoresRequest {
    ReportQqScoresRequest {
        app_id: QQ.into(),
        user: qq_alice(),
        scores,
        options: None,
    }
}

#[tokio::test]
async fn qq_scores_are_reported() {
    let harness = Harness::start().await;
    let mut client = profile(&harness);

    client
        .report_qq_scores(score_request(vec![
            QqScoreEntry {
                data: "999".into(),
                expires: ts(1_893_456_000),
                report_type: Some(1),
                rank_relevance: QqScoreRankRelevance::Ranking as i32,
            },
            QqScoreEntry {
                data: "1999".into(),
                expires: None,
                report_type: None,
                rank_relevance: QqScoreRankRelevance::Other as i32,
            },
        ]))
        .await
        .expect("qqscore_batch succeeds");
    let stored = scores(&harness, QQ, demo::MSDK_QQ_ALICE_OPENID).await;
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert_eq!(stored[0]["data"], "999");
    assert_eq!(stored[0]["expires"], "1893456000");
    assert_eq!(stored[0]["type"], 1);
    assert_eq!(stored[0]["mode"], "overwrite");
    assert_eq!(stored[0]["bcover"], 0);
    assert_eq!(stored[1]["data"], "1999");
    assert_eq!(stored[1]["expires"], "0");
    assert_eq!(stored[1]["mode"], "increment");
    assert_eq!(stored[1]["bcover"], 1);

    // Local limits: at least one entry, each with data.
    let before = total_requests(&harness).await;
    let error = expect_error(
        client.report_qq_scores(score_request(vec![])).await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_local(&error, &["scores"]);
    let error = expect_error(
        client
            .report_qq_scores(score_request(vec![
                QqScoreEntry {
                    data: "1".into(),
                    ..Default::default()
                },
                QqScoreEntry::default(),
            ]))
            .await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_local(&error, &["scores[1].data"]);
    assert_eq!(total_requests(&harness).await, before);

    // Without the reporting permission granted by Mobile QQ: -303, nothing stored.
    admin_send(
        &harness,
        reqwest::Method::PUT,
        "/msdk/apps",
        json!({
            "appid": QQ,
            "platform": "qq",
            "msdkkey": demo::MSDK_QQ_MSDKKEY,
            "appkey": demo::MSDK_QQ_APPKEY,
            "score_reporting": false,
        }),
    )
    .await;
    let error = expect_error(
        client
            .report_qq_scores(score_request(vec![QqScoreEntry {
                data: "5000".into(),
                ..Default::default()
            }]))
            .await,
        Code::FailedPrecondition,
        "MSDK_NO_PERMISSION",
    );
    assert_upstream(&error, -303, QQ_SCORE_PATH);
    assert_eq!(
        scores(&harness, QQ, demo::MSDK_QQ_ALICE_OPENID).await.len(),
        2
    );
}

// ---- Tencent Video -----------------------------------------------------------------------

fn qq_video(openid: &str, token: &str, channel_id: i32) -> GetQqVideoVipRequest {
    GetQqVideoVipRequest {
        app_id: QQ.into(),
        user: qq_login(openid, token),
        channel_id,
        options: None,
    }
}

fn wx_video(openid: &str, channel_id: i32) -> GetWxVideoVipRequest {
    GetWxVideoVipRequest {
        app_id: WX.into(),
        openid: openid.into(),
        channel_id,
        options: None,
    }
}

const CHANNEL: i32 = demo::MSDK_VIDEO_CHANNEL_ID as i32;

#[tokio::test]
async fn qq_video_vip_is_signed_by_gamegate() {
    let harness = Harness::start().await;
    let mut client = profile(&harness);

    let mut request = qq_video(
        demo::MSDK_QQ_ALICE_OPENID,
        demo::MSDK_QQ_ALICE_TOKEN,
        CHANNEL,
    );
    request.options = ext("video");
    let alice = client
        .get_qq_video_vip(request)
        .await
        .expect("the signature gamegate computed is accepted")
        .into_inner();
    assert_eq!(alice.service_type, "TXSP");
    assert_eq!(alice.vip_level, 4);
    assert_eq!(alice.vip_score, 3855);
    assert!(alice.is_member);
    assert!(alice.is_annual);
    assert_eq!(alice.annual_begin, ts(1_504_242_106));
    assert_eq!(alice.annual_end, ts(Y2050));
    assert_eq!(alice.begin_time, ts(1_497_261_816));
    assert_eq!(alice.end_time, ts(Y2050));
    assert_eq!(alice.msdk_ext_info, "video");

    // Bob's membership ended in 2017; no annual membership: 0 upstream, unset here.
    let bob = client
        .get_qq_video_vip(qq_video(
            demo::MSDK_QQ_BOB_OPENID,
            demo::MSDK_QQ_BOB_TOKEN,
            CHANNEL,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!bob.is_member);
    assert!(!bob.is_annual);
    assert_eq!(bob.annual_begin, None);
    assert_eq!(bob.annual_end, None);
    assert_eq!(bob.begin_time, ts(1_487_524_745));
    assert_eq!(bob.end_time, ts(1_487_704_961));
    assert_eq!((bob.vip_level, bob.vip_score), (1, 120));
    assert_eq!(requests(&harness, QQ_VIDEO_PATH).await, 2);

    // A channel gamegate holds no secret for: nothing is sent.
    let error = expect_error(
        client
            .get_qq_video_vip(qq_video(
                demo::MSDK_QQ_ALICE_OPENID,
                demo::MSDK_QQ_ALICE_TOKEN,
                40001,
            ))
            .await,
        Code::FailedPrecondition,
        "APP_CREDENTIAL_MISSING",
    );
    assert_eq!(error.domain, GATEWAY_DOMAIN);
    assert_eq!(error.metadata["app_id"], QQ);
    assert!(
        error.metadata["credential"].contains("40001"),
        "{error:?}",
        error = error.metadata
    );
    // Channel ids start at 1.
    let error = expect_error(
        client
            .get_qq_video_vip(qq_video(
                demo::MSDK_QQ_ALICE_OPENID,
                demo::MSDK_QQ_ALICE_TOKEN,
                0,
            ))
            .await,
        Code::InvalidArgument,
        "FIELD_INVALID",
    );
    assert_local(&error, &["channel_id"]);
    assert_eq!(requests(&harness, QQ_VIDEO_PATH).await, 2);
}

#[tokio::test]
async fn wx_video_vip_is_signed_by_gamegate() {
    let harness = Harness::start().await;
    let mut client = profile(&harness);

    let alice = client
        .get_wx_video_vip(wx_video(demo::MSDK_WX_ALICE_OPENID, CHANNEL))
        .await
        .expect("the signature gamegate computed is accepted")
        .into_inner();
    assert_eq!(
        (
            alice.service_type.as_str(),
            alice.vip_level,
            alice.vip_score
        ),
        ("TXSP", 3, 2100)
    );
    assert!(alice.is_member && alice.is_annual);
    assert_eq!(alice.annual_begin, ts(1_504_242_106));
    assert_eq!(alice.annual_end, ts(Y2050));
    assert_eq!(alice.begin_time, ts(1_497_261_816));
    assert_eq!(alice.end_time, ts(Y2050));

    // The seed's own example answer: expired, no type, level 0.
    let bob = client
        .get_wx_video_vip(wx_video(demo::MSDK_WX_BOB_OPENID, CHANNEL))
        .await
        .unwrap()
        .into_inner();
    assert!(!bob.is_member && !bob.is_annual);
    assert_eq!(bob.service_type, "");
    assert_eq!(bob.begin_time, ts(1_487_524_745));
    assert_eq!(bob.end_time, ts(1_487_704_961));
    assert_eq!(bob.annual_end, None);

    let error = expect_error(
        client
            .get_wx_video_vip(wx_video(demo::MSDK_WX_ALICE_OPENID, 30013))
            .await,
        Code::FailedPrecondition,
        "APP_CREDENTIAL_MISSING",
    );
    assert_eq!(error.domain, GATEWAY_DOMAIN);
    assert_eq!(error.metadata["app_id"], WX);
    assert_eq!(requests(&harness, WX_VIDEO_PATH).await, 2);

    // Not a player of the app (the interface has no token): -1001.
    let error = expect_error(
        client
            .get_wx_video_vip(wx_video(STRANGER_WX, CHANNEL))
            .await,
        Code::InvalidArgument,
        "MSDK_CLIENT_ERROR",
    );
    assert_upstream(&error, -1001, WX_VIDEO_PATH);
}

#[tokio::test]
async fn a_wrong_channel_secret_is_refused_and_never_shown() {
    const WRONG: &str = "not-the-video-channel-secret";
    let harness = Harness::start_with(|config| {
        let msdk = config.msdk.as_mut().expect("demo config has msdk");
        for appid in [QQ, WX] {
            msdk.apps
                .get_mut(appid)
                .expect("demo app")
                .video_channels
                .insert(
                    demo::MSDK_VIDEO_CHANNEL_ID.to_string(),
                    secrecy::SecretString::from(WRONG),
                );
        }
    })
    .await;
    let mut client = profile(&harness);

    let error = expect_error(
        client
            .get_qq_video_vip(qq_video(
                demo::MSDK_QQ_ALICE_OPENID,
                demo::MSDK_QQ_ALICE_TOKEN,
                CHANNEL,
            ))
            .await,
        Code::InvalidArgument,
        "MSDK_CLIENT_ERROR",
    );
    assert_upstream(&error, -1303, QQ_VIDEO_PATH);
    assert_eq!(error.metadata["upstream_message"], "signature check failed");
    let error_wx = expect_error(
        client
            .get_wx_video_vip(wx_video(demo::MSDK_WX_ALICE_OPENID, CHANNEL))
            .await,
        Code::InvalidArgument,
        "MSDK_CLIENT_ERROR",
    );
    assert_upstream(&error_wx, -1303, WX_VIDEO_PATH);

    for error in [&error, &error_wx] {
        for secret in [WRONG, demo::MSDK_VIDEO_CHANNEL_SECRET] {
            assert!(!error.message.contains(secret), "{}", error.message);
            assert!(
                error.metadata.values().all(|v| !v.contains(secret)),
                "{:?}",
                error.metadata
            );
        }
    }
    // Each was sent once: a signature error is not transient.
    assert_eq!(requests(&harness, QQ_VIDEO_PATH).await, 1);
    assert_eq!(requests(&harness, WX_VIDEO_PATH).await, 1);
}

// ---- GET interfaces ----------------------------------------------------------------------

fn xinyue_super(
    app_id: &str,
    openid: &str,
    token: &str,
    access_type: XinyueAccessType,
    trace_id: &str,
) -> GetXinyueSuperRequest {
    GetXinyueSuperRequest {
        app_id: app_id.into(),
        openid: openid.into(),
        access_token: token.into(),
        access_type: access_type as i32,
        trace_id: trace_id.into(),
        options: None,
    }
}

#[tokio::test]
async fn xinyue_super_is_a_get_with_the_parameters_in_the_url() {
    let harness = Harness::start().await;
    let mut client = profile(&harness);

    let trace = format!(
        "msdkdemo-{}-20180116155309-123456",
        demo::MSDK_QQ_ALICE_OPENID
    );
    let alice = client
        .get_xinyue_super(xinyue_super(
            QQ,
            demo::MSDK_QQ_ALICE_OPENID,
            demo::MSDK_QQ_ALICE_TOKEN,
            XinyueAccessType::Qq,
            &trace,
        ))
        .await
        .expect("get_xinyue_super succeeds (a GET: a POST would be HTTP 405)")
        .into_inner();
    assert_eq!(alice.level(), XinyueSuperLevel::SuperR);
    assert_eq!(alice.openid, demo::MSDK_QQ_ALICE_OPENID);
    assert_eq!(alice.trace_id, trace);

    let carol = client
        .get_xinyue_super(xinyue_super(
            QQ,
            demo::MSDK_QQ_CAROL_OPENID,
            demo::MSDK_QQ_CAROL_TOKEN,
            XinyueAccessType::Qq,
            "",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(carol.level(), XinyueSuperLevel::TopR);
    assert_eq!(carol.trace_id, "");
    let bob = client
        .get_xinyue_super(xinyue_super(
            QQ,
            demo::MSDK_QQ_BOB_OPENID,
            demo::MSDK_QQ_BOB_TOKEN,
            XinyueAccessType::Qq,
            "t_bob",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bob.level(), XinyueSuperLevel::None);

    // The same interface for a WeChat login.
    let wx = client
        .get_xinyue_super(xinyue_super(
            WX,
            demo::MSDK_WX_ALICE_OPENID,
            demo::MSDK_WX_ALICE_TOKEN,
            XinyueAccessType::Wechat,
            "t_wx",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(wx.level(), XinyueSuperLevel::SuperR);
    assert_eq!(wx.openid, demo::MSDK_WX_ALICE_OPENID);
    assert_eq!(wx.trace_id, "t_wx");
    assert_eq!(requests(&harness, XINYUE_SUPER_PATH).await, 4);

    // A WeChat access type for the Mobile QQ app: -1001.
    let error = expect_error(
        client
            .get_xinyue_super(xinyue_super(
                QQ,
                demo::MSDK_QQ_ALICE_OPENID,
                demo::MSDK_QQ_ALICE_TOKEN,
                XinyueAccessType::Wechat,
                "",
            ))
            .await,
        Code::InvalidArgument,
        "MSDK_CLIENT_ERROR",
    );
    assert_upstream(&error, -1001, XINYUE_SUPER_PATH);

    // No access type: refused locally.
    let error = expect_error(
        client
            .get_xinyue_super(xinyue_super(
                QQ,
                demo::MSDK_QQ_ALICE_OPENID,
                demo::MSDK_QQ_ALICE_TOKEN,
                XinyueAccessType::Unspecified,
                "",
            ))
            .await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_local(&error, &["access_type"]);
    assert_eq!(requests(&harness, XINYUE_SUPER_PATH).await, 5);
}

#[tokio::test]
async fn wx_xinyue_vip_is_a_get_with_the_parameters_in_the_url() {
    let harness = Harness::start().await;
    let mut client = profile(&harness);
    let request = |openid: &str, token: &str, serial: &str| GetWxXinyueVipRequest {
        app_id: WX.into(),
        openid: openid.into(),
        access_token: token.into(),
        serial: serial.into(),
        options: ext("xinyue"),
    };

    let alice = client
        .get_wx_xinyue_vip(request(
            demo::MSDK_WX_ALICE_OPENID,
            demo::MSDK_WX_ALICE_TOKEN,
            "MSDK_20180327_181625_123456",
        ))
        .await
        .expect("get_wx_xinyue_vip succeeds")
        .into_inner();
    assert_eq!(alice.level, 2);
    assert_eq!(alice.serial, "MSDK_20180327_181625_123456");
    assert_eq!(alice.msdk_ext_info, "xinyue");
    let bob = client
        .get_wx_xinyue_vip(request(
            demo::MSDK_WX_BOB_OPENID,
            demo::MSDK_WX_BOB_TOKEN,
            "",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((bob.level, bob.serial.as_str()), (0, ""));

    // An expired WeChat token: 42001 inside -20000.
    expire_token(&harness, WX, demo::MSDK_WX_ALICE_OPENID).await;
    let error = expect_error(
        client
            .get_wx_xinyue_vip(request(
                demo::MSDK_WX_ALICE_OPENID,
                demo::MSDK_WX_ALICE_TOKEN,
                "s",
            ))
            .await,
        Code::Unauthenticated,
        "USER_TOKEN_INVALID",
    );
    assert_upstream(&error, -20000, WX_XINYUE_PATH);
    assert_eq!(error.metadata["plat_code"], "42001");
}

// ---- WeChat privileges and elites --------------------------------------------------------

#[tokio::test]
async fn wx_vip_lists_the_user_then_the_friends() {
    let harness = Harness::start().await;
    let mut client = profile(&harness);
    let request = |query: Option<WxVipQuery>| GetWxVipRequest {
        app_id: WX.into(),
        user: wx_alice(),
        query,
        options: None,
    };
    let same_game = Some(WxVipQuery {
        optype: WxVipQueryType::SameGameFriends as i32,
    });

    let answer = client
        .get_wx_vip(request(same_game))
        .await
        .expect("wxget_vip succeeds")
        .into_inner();
    let infos = answer.data.expect("data").vip_infos;
    let rows: Vec<(&str, i32, i64, &str)> = infos
        .iter()
        .map(|i| (i.openid.as_str(), i.level, i.score, i.nick.as_str()))
        .collect();
    assert_eq!(
        rows,
        [
            (demo::MSDK_WX_ALICE_OPENID, 1, 310, "VIP1"),
            (demo::MSDK_WX_BOB_OPENID, 0, 0, "VIP0"),
            (demo::MSDK_WX_CAROL_OPENID, 0, 0, "VIP0"),
        ]
    );

    let error = expect_error(
        client
            .get_wx_vip(request(Some(WxVipQuery { optype: 0 })))
            .await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_local(&error, &["query.optype"]);
    let error = expect_error(
        client.get_wx_vip(request(None)).await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_local(&error, &["query"]);
    assert_eq!(requests(&harness, WX_VIP_PATH).await, 1);
}

#[tokio::test]
async fn wx_elite_info() {
    let harness = Harness::start().await;
    let mut client = profile(&harness);
    let request = |app_id: &str, user: Option<WxUserLogin>| GetWxEliteInfoRequest {
        app_id: app_id.into(),
        user,
        options: None,
    };

    let alice = client
        .get_wx_elite_info(request(WX, wx_alice()))
        .await
        .expect("wxget_eliteinfo succeeds")
        .into_inner()
        .elite_info
        .expect("data");
    assert_eq!((alice.wx_elite, alice.game_elite), (true, false));
    let bob = client
        .get_wx_elite_info(request(WX, wx_bob()))
        .await
        .unwrap()
        .into_inner()
        .elite_info
        .expect("data");
    assert_eq!((bob.wx_elite, bob.game_elite), (false, true));

    // A WeChat interface called with the Mobile QQ app: -303.
    let error = expect_error(
        client.get_wx_elite_info(request(QQ, wx_alice())).await,
        Code::FailedPrecondition,
        "MSDK_NO_PERMISSION",
    );
    assert_upstream(&error, -303, ELITE_PATH);
}

// ---- wxbattle_report ---------------------------------------------------------------------

fn text(value: &str) -> PbValue {
    PbValue {
        kind: Some(Kind::StringValue(value.into())),
    }
}

fn number(value: f64) -> PbValue {
    PbValue {
        kind: Some(Kind::NumberValue(value)),
    }
}

fn object(fields: &[(&str, PbValue)]) -> PbValue {
    PbValue {
        kind: Some(Kind::StructValue(Struct {
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        })),
    }
}

fn struct_of(fields: &[(&str, PbValue)]) -> Struct {
    match object(fields).kind {
        Some(Kind::StructValue(s)) => s,
        _ => unreachable!(),
    }
}

pub(crate) fn battle_request(reports: Vec<WxBattleReport>) -> ReportWxBattleRequest {
    ReportWxBattleRequest {
        app_id: WX.into(),
        openid: demo::MSDK_WX_ALICE_OPENID.into(),
        reports,
        options: None,
    }
}

fn base_info(plat_id: WxBattlePlatform) -> Option<WxBattleBaseInfo> {
    Some(WxBattleBaseInfo {
        game_name: "全民飞机大战".into(),
        plat_id: plat_id as i32,
        partition_id: "9".into(),
        role_id: "wongcai".into(),
        level: Some(2),
    })
}

#[tokio::test]
async fn wx_battle_report_keeps_integers_and_nested_names() {
    let harness = Harness::start().await;
    let mut client = profile(&harness);

    let user_defined = struct_of(&[
        (
            "goldcoin",
            object(&[("name", text("금화")), ("value", number(358_267.0))]),
        ),
        (
            "power",
            object(&[("name", text("체력")), ("value", number(86_542.0))]),
        ),
        (
            "plane",
            object(&[("name", text("전투기")), ("value", text("블레이징 엔젤"))]),
        ),
        (
            "ratio",
            object(&[("name", text("ratio")), ("value", number(0.5))]),
        ),
    ]);
    client
        .report_wx_battle(battle_request(vec![
            WxBattleReport {
                base_info: base_info(WxBattlePlatform::Ios),
                battle_info: Some(WxBattleInfo {
                    score: Some(4_288_625),
                    is_win: Some(true),
                }),
                user_defined: Some(user_defined),
            },
            WxBattleReport {
                base_info: Some(WxBattleBaseInfo {
                    plat_id: WxBattlePlatform::Android as i32,
                    ..Default::default()
                }),
                battle_info: None,
                user_defined: None,
            },
        ]))
        .await
        .expect("wxbattle_report succeeds");

    let reports = battle_reports(&harness, WX).await;
    assert_eq!(reports.len(), 2, "{reports:?}");
    assert!(
        reports
            .iter()
            .all(|r| r["openid"] == demo::MSDK_WX_ALICE_OPENID)
    );
    let first = &reports[0]["report"];
    assert_eq!(first["baseinfo"]["gamename"], "全民飞机大战");
    assert_eq!(first["baseinfo"]["platid"], json!(0));
    assert_eq!(first["baseinfo"]["partitionid"], "9");
    assert_eq!(first["baseinfo"]["roleid"], "wongcai");
    assert_eq!(first["baseinfo"]["level"], json!(2));
    assert_eq!(first["battleinfo"]["score"], json!(4_288_625));
    assert_eq!(first["battleinfo"]["iswin"], json!(true));
    let defined = &first["userdefined"];
    // Integers stay integers (the Struct holds doubles): 358267, never 358267.0.
    assert_eq!(defined["goldcoin"]["value"].as_i64(), Some(358_267));
    assert_eq!(defined["goldcoin"]["value"].to_string(), "358267");
    assert_eq!(defined["goldcoin"]["name"], "금화");
    assert_eq!(defined["power"]["value"].to_string(), "86542");
    assert_eq!(defined["power"]["name"], "체력");
    assert_eq!(
        defined["plane"],
        json!({"name": "전투기", "value": "블레이징 엔젤"})
    );
    assert_eq!(defined["ratio"]["value"], json!(0.5));

    let second = &reports[1]["report"];
    assert_eq!(second["baseinfo"]["platid"], json!(1));
    assert!(second["baseinfo"]["level"].is_null(), "{second}");
    assert!(second["battleinfo"].is_null(), "{second}");
    assert!(second["userdefined"].is_null(), "{second}");

    // Local checks: a report needs base info with a platform.
    let before = total_requests(&harness).await;
    let error = expect_error(
        client.report_wx_battle(battle_request(vec![])).await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_local(&error, &["reports"]);
    let error = expect_error(
        client
            .report_wx_battle(battle_request(vec![WxBattleReport {
                base_info: base_info(WxBattlePlatform::Unspecified),
                ..Default::default()
            }]))
            .await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_local(&error, &["reports[0].base_info.plat_id"]);
    assert_eq!(total_requests(&harness).await, before);

    // Not a player of the app (the interface has no token): -1001, nothing stored.
    let mut request = battle_request(vec![WxBattleReport {
        base_info: base_info(WxBattlePlatform::Android),
        ..Default::default()
    }]);
    request.openid = STRANGER_WX.into();
    let error = expect_error(
        client.report_wx_battle(request).await,
        Code::InvalidArgument,
        "MSDK_CLIENT_ERROR",
    );
    assert_upstream(&error, -1001, WX_BATTLE_PATH);
    assert_eq!(battle_reports(&harness, WX).await.len(), 2);
}

// ---- subscriptions -----------------------------------------------------------------------

fn set_subscriptions(
    user: Option<WxUserLogin>,
    ids: &[i64],
    operation: WxSubscriptionOperation,
) -> SetWxSubscriptionsRequest {
    SetWxSubscriptionsRequest {
        app_id: WX.into(),
        user,
        message_ids: ids.to_vec(),
        operation: operation as i32,
        options: None,
    }
}

async fn subscribed(
    client: &mut ProfileServiceClient<Channel>,
    user: Option<WxUserLogin>,
) -> Vec<i64> {
    let answer = client
        .list_wx_subscriptions(ListWxSubscriptionsRequest {
            app_id: WX.into(),
            user,
            options: None,
        })
        .await
        .expect("subscribe_getlist succeeds")
        .into_inner();
    assert!(!answer.has_more);
    answer
        .subscriptions
        .iter()
        .filter(|s| s.subscribed)
        .map(|s| s.message_id)
        .collect()
}

fn subscribers_of(view: &Value, id: i64) -> Vec<String> {
    view["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .unwrap_or_else(|| panic!("message {id} in {view}"))["subscribers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn subscription_life_cycle() {
    let harness = Harness::start().await;
    let mut client = profile(&harness);

    // The app's messages, none subscribed yet.
    let answer = client
        .list_wx_subscriptions(ListWxSubscriptionsRequest {
            app_id: WX.into(),
            user: wx_alice(),
            options: ext("subs"),
        })
        .await
        .expect("subscribe_getlist succeeds")
        .into_inner();
    let offered: Vec<(i64, &str, bool)> = answer
        .subscriptions
        .iter()
        .map(|s| (s.message_id, s.title.as_str(), s.subscribed))
        .collect();
    assert_eq!(
        offered,
        [
            (19, "2111", false),
            (43, "test_msg", false),
            (77, "daily_reward", false)
        ]
    );
    assert!(!answer.has_more);
    assert_eq!(answer.msdk_ext_info, "subs");

    // Set: Alice subscribes to 19 and 77, Bob to 77; Alice then cancels 19.
    client
        .set_wx_subscriptions(set_subscriptions(
            wx_alice(),
            &[19, 77],
            WxSubscriptionOperation::Subscribe,
        ))
        .await
        .expect("subscribe_setlist succeeds");
    client
        .set_wx_subscriptions(set_subscriptions(
            wx_bob(),
            &[77],
            WxSubscriptionOperation::Subscribe,
        ))
        .await
        .unwrap();
    assert_eq!(subscribed(&mut client, wx_alice()).await, [19, 77]);
    client
        .set_wx_subscriptions(set_subscriptions(
            wx_alice(),
            &[19],
            WxSubscriptionOperation::Unsubscribe,
        ))
        .await
        .unwrap();
    assert_eq!(subscribed(&mut client, wx_alice()).await, [77]);
    assert_eq!(subscribed(&mut client, wx_bob()).await, [77]);

    // An id the app does not offer: -1304, and nothing changes.
    let error = expect_error(
        client
            .set_wx_subscriptions(set_subscriptions(
                wx_alice(),
                &[43, 999],
                WxSubscriptionOperation::Subscribe,
            ))
            .await,
        Code::InvalidArgument,
        "MSDK_CLIENT_ERROR",
    );
    assert_upstream(&error, -1304, SUB_SET_PATH);
    assert_eq!(subscribed(&mut client, wx_alice()).await, [77]);

    // Push: it reaches both subscribers.
    client
        .push_wx_subscription(PushWxSubscriptionRequest {
            app_id: WX.into(),
            openid: demo::MSDK_WX_ALICE_OPENID.into(),
            message_id: 77,
            options: None,
        })
        .await
        .expect("subscribe_push succeeds");
    let view = subscriptions(&harness, WX).await;
    let pushes = view["pushes"].as_array().unwrap();
    assert_eq!(pushes.len(), 1, "{view}");
    assert_eq!(pushes[0]["msgId"], 77);
    assert_eq!(pushes[0]["title"], "daily_reward");
    assert_eq!(pushes[0]["openid"], demo::MSDK_WX_ALICE_OPENID);
    let mut reached: Vec<&str> = pushes[0]["subscribers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    reached.sort_unstable();
    let mut expected = vec![demo::MSDK_WX_ALICE_OPENID, demo::MSDK_WX_BOB_OPENID];
    expected.sort_unstable();
    assert_eq!(reached, expected);

    // Clear: every subscriber of 77 removed.
    client
        .clear_wx_subscription(ClearWxSubscriptionRequest {
            app_id: WX.into(),
            openid: String::new(),
            message_id: 77,
            options: None,
        })
        .await
        .expect("subscribe_clear succeeds");
    let view = subscriptions(&harness, WX).await;
    assert!(subscribers_of(&view, 77).is_empty(), "{view}");
    assert!(subscribed(&mut client, wx_alice()).await.is_empty());
    assert!(subscribed(&mut client, wx_bob()).await.is_empty());

    // Push and clear of a message the app does not offer: -1304.
    let error = expect_error(
        client
            .push_wx_subscription(PushWxSubscriptionRequest {
                app_id: WX.into(),
                openid: String::new(),
                message_id: 999,
                options: None,
            })
            .await,
        Code::InvalidArgument,
        "MSDK_CLIENT_ERROR",
    );
    assert_upstream(&error, -1304, SUB_PUSH_PATH);
    let error = expect_error(
        client
            .clear_wx_subscription(ClearWxSubscriptionRequest {
                app_id: WX.into(),
                openid: String::new(),
                message_id: 999,
                options: None,
            })
            .await,
        Code::InvalidArgument,
        "MSDK_CLIENT_ERROR",
    );
    assert_upstream(&error, -1304, SUB_CLEAR_PATH);
    assert_eq!(
        subscriptions(&harness, WX).await["pushes"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Local checks of setlist: ids and an operation are required.
    let before = requests(&harness, SUB_SET_PATH).await;
    let error = expect_error(
        client
            .set_wx_subscriptions(set_subscriptions(
                wx_alice(),
                &[],
                WxSubscriptionOperation::Subscribe,
            ))
            .await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_local(&error, &["message_ids"]);
    let error = expect_error(
        client
            .set_wx_subscriptions(set_subscriptions(
                wx_alice(),
                &[19],
                WxSubscriptionOperation::Unspecified,
            ))
            .await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_local(&error, &["operation"]);
    assert_eq!(requests(&harness, SUB_SET_PATH).await, before);

    // An expired token for the list.
    expire_token(&harness, WX, demo::MSDK_WX_BOB_OPENID).await;
    let error = expect_error(
        client
            .list_wx_subscriptions(ListWxSubscriptionsRequest {
                app_id: WX.into(),
                user: wx_bob(),
                options: None,
            })
            .await,
        Code::Unauthenticated,
        "USER_TOKEN_INVALID",
    );
    assert_upstream(&error, -20000, SUB_LIST_PATH);
}
