//! RelationService end to end against the sandbox's MSDK emulation: Mobile QQ
//! profiles, friends and memberships (with the fan-out of long lists and the
//! is_lost fallback), the guild <-> QQ group bindings, and the WeChat side.

use gamegate::proto::relation_service_client::RelationServiceClient;
use gamegate::proto::{
    BindExistingQqGroupRequest, CreateBindQqGroupRequest, GetQqFriendsDetailRequest,
    GetQqFriendsVipRequest, GetQqGroupCodeRequest, GetQqGroupRelationRequest, GetQqProfileRequest,
    GetQqStrangerProfilesRequest, GetQqUnregisteredFriendsRequest, GetQqVipRichInfoRequest,
    GetWxFriendsRequest, GetWxGroupMembersRequest, GetWxGroupStatusRequest, GetWxProfilesRequest,
    GetWxUserInfoRequest, JoinQqGroupRequest, ListQqGroupsRequest, MsdkCallOptions,
    MsdkDevicePlatform, QqFriendChainScope, QqGroup, QqGroupRelation, QqGroupReservedData,
    QqUnionType, QqUserLogin, QueryBoundUnionRequest, RemindLeaderBindRequest,
    SendQqGroupMessageRequest, SendWxGroupMessageRequest, SendWxMiniProgramMessageRequest,
    UnlinkQqGroupRequest, UnlinkWxGroupRequest, WxGroupMessageBody, WxGroupMessageContent,
    WxGroupMessageType, WxGroupShareSubType, WxGroupStatusQuery, WxMiniProgramVersion, WxUserLogin,
    WxUserSex,
};
use md5::{Digest, Md5};
use serde_json::{Value, json};
use tonic::{Code, transport::Channel};

use crate::common::{Harness, RichError, demo, expect_error};

const QQ: &str = demo::MSDK_QQ_APPID;
const WX: &str = demo::MSDK_WX_APPID;
const MSDK_DOMAIN: &str = "msdk.qq.com";

const QQPROFILE_PATH: &str = "/relation/qqprofile";
const VIP_PATH: &str = "/relation/qqfriends_vip";
const UNREG_PATH: &str = "/relation/qq_unreg_friends";
const SEND_GROUPMSG_PATH: &str = "/relation/send_groupmsg";
const WX_UNLINK_PATH: &str = "/relation/wxunlink_group";

const GUILD: &str = "guild_7";
const ZONE: &str = "zone_1";

// ---- request builders --------------------------------------------------------------------

fn qq_user(openid: &str, token: &str) -> Option<QqUserLogin> {
    Some(QqUserLogin {
        openid: openid.into(),
        access_token: token.into(),
    })
}

fn alice() -> Option<QqUserLogin> {
    qq_user(demo::MSDK_QQ_ALICE_OPENID, demo::MSDK_QQ_ALICE_TOKEN)
}

fn bob() -> Option<QqUserLogin> {
    qq_user(demo::MSDK_QQ_BOB_OPENID, demo::MSDK_QQ_BOB_TOKEN)
}

fn carol() -> Option<QqUserLogin> {
    qq_user(demo::MSDK_QQ_CAROL_OPENID, demo::MSDK_QQ_CAROL_TOKEN)
}

fn dave() -> Option<QqUserLogin> {
    qq_user(demo::MSDK_QQ_DAVE_OPENID, demo::MSDK_QQ_DAVE_TOKEN)
}

fn erin() -> Option<QqUserLogin> {
    qq_user(demo::MSDK_QQ_ERIN_OPENID, demo::MSDK_QQ_ERIN_TOKEN)
}

fn wx_user(openid: &str, token: &str) -> Option<WxUserLogin> {
    Some(WxUserLogin {
        openid: openid.into(),
        access_token: token.into(),
    })
}

fn wx_alice() -> Option<WxUserLogin> {
    wx_user(demo::MSDK_WX_ALICE_OPENID, demo::MSDK_WX_ALICE_TOKEN)
}

fn wx_bob() -> Option<WxUserLogin> {
    wx_user(demo::MSDK_WX_BOB_OPENID, demo::MSDK_WX_BOB_TOKEN)
}

fn wx_carol() -> Option<WxUserLogin> {
    wx_user(demo::MSDK_WX_CAROL_OPENID, demo::MSDK_WX_CAROL_TOKEN)
}

fn ext(value: &str) -> Option<MsdkCallOptions> {
    Some(MsdkCallOptions {
        msdk_ext_info: value.into(),
        https_urls: false,
    })
}

fn https() -> Option<MsdkCallOptions> {
    Some(MsdkCallOptions {
        msdk_ext_info: String::new(),
        https_urls: true,
    })
}

fn profile_request(user: Option<QqUserLogin>) -> GetQqProfileRequest {
    GetQqProfileRequest {
        app_id: QQ.into(),
        user,
        options: None,
    }
}

fn vip_request(fopenids: Vec<String>) -> GetQqFriendsVipRequest {
    GetQqFriendsVipRequest {
        app_id: QQ.into(),
        user: alice(),
        fopenids,
        flags: "qq_vip,qq_svip".into(),
        userip: "203.0.113.7".into(),
        pf: "openmobile_android".into(),
        options: None,
    }
}

fn rich_info_request(user: Option<QqUserLogin>) -> GetQqVipRichInfoRequest {
    GetQqVipRichInfoRequest {
        app_id: QQ.into(),
        user,
        options: None,
    }
}

fn create_request(
    user: Option<QqUserLogin>,
    guild_id: &str,
    name: &str,
) -> CreateBindQqGroupRequest {
    CreateBindQqGroupRequest {
        app_id: QQ.into(),
        user,
        guild_id: guild_id.into(),
        zone_id: ZONE.into(),
        guild_name: name.into(),
        plat_id: MsdkDevicePlatform::Android as i32,
        role_id: "role_leader".into(),
        user_label: "[Mage] Alice".into(),
        nick_name: "Alice".into(),
        ..Default::default()
    }
}

fn relation_request(user: Option<QqUserLogin>, gc: &str) -> GetQqGroupRelationRequest {
    GetQqGroupRelationRequest {
        app_id: QQ.into(),
        user,
        gc: gc.into(),
        options: None,
    }
}

fn join_request(user: Option<QqUserLogin>, guild_id: &str, gc: &str) -> JoinQqGroupRequest {
    JoinQqGroupRequest {
        app_id: QQ.into(),
        user,
        guild_id: guild_id.into(),
        zone_id: ZONE.into(),
        gc: gc.into(),
        plat_id: MsdkDevicePlatform::Ios as i32,
        role_id: "role_member".into(),
        user_label: "[Tank] Bob".into(),
        ..Default::default()
    }
}

fn unlink_request(user: Option<QqUserLogin>, guild_id: &str) -> UnlinkQqGroupRequest {
    UnlinkQqGroupRequest {
        app_id: QQ.into(),
        user,
        guild_id: guild_id.into(),
        zone_id: ZONE.into(),
        plat_id: MsdkDevicePlatform::Android as i32,
        role_id: "role_leader".into(),
        ..Default::default()
    }
}

fn list_request(user: Option<QqUserLogin>) -> ListQqGroupsRequest {
    ListQqGroupsRequest {
        app_id: QQ.into(),
        user,
        options: None,
    }
}

pub(crate) fn bind_existing_request(
    user: Option<QqUserLogin>,
    guild_id: &str,
    gc: &str,
) -> BindExistingQqGroupRequest {
    BindExistingQqGroupRequest {
        app_id: QQ.into(),
        user,
        guild_id: guild_id.into(),
        zone_id: ZONE.into(),
        gc: gc.into(),
        group_name: "Alice's raid group".into(),
        plat_id: MsdkDevicePlatform::Android as i32,
        role_id: "role_leader".into(),
        ..Default::default()
    }
}

pub(crate) fn remind_request(user: Option<QqUserLogin>, guild_id: &str) -> RemindLeaderBindRequest {
    RemindLeaderBindRequest {
        app_id: QQ.into(),
        user,
        guild_id: guild_id.into(),
        zone_id: ZONE.into(),
        plat_id: MsdkDevicePlatform::Ios as i32,
        role_id: "role_member".into(),
        role_name: "Bob the Tank".into(),
        leader_openid: demo::MSDK_QQ_ALICE_OPENID.into(),
        leader_role_id: "role_leader".into(),
        ..Default::default()
    }
}

pub(crate) fn union_request(user: Option<QqUserLogin>, gc: &str) -> QueryBoundUnionRequest {
    QueryBoundUnionRequest {
        app_id: QQ.into(),
        user,
        gc: gc.into(),
        union_type: QqUnionType::Unspecified as i32,
        options: None,
        guild_id: String::new(),
        zone_id: String::new(),
    }
}

fn group_code_request(user: Option<QqUserLogin>, guild_id: &str) -> GetQqGroupCodeRequest {
    GetQqGroupCodeRequest {
        app_id: QQ.into(),
        user,
        guild_id: guild_id.into(),
        zone_id: ZONE.into(),
        union_type: QqUnionType::Guild as i32,
        options: None,
    }
}

fn send_group_request(
    user: Option<QqUserLogin>,
    group_openid: &str,
    title: &str,
    desc: &str,
) -> SendQqGroupMessageRequest {
    SendQqGroupMessageRequest {
        app_id: QQ.into(),
        user,
        pf: String::new(),
        group_openid: group_openid.into(),
        title: title.into(),
        desc: desc.into(),
        image_url: "http://example.com/thumb.png".into(),
        redirect_url: "http://example.com/guild".into(),
        param: "guild=7".into(),
        options: None,
    }
}

fn wx_members_request(user: Option<WxUserLogin>, openid_list: &str) -> GetWxGroupMembersRequest {
    GetWxGroupMembersRequest {
        app_id: WX.into(),
        user,
        group_id: demo::MSDK_WX_GROUP_ID.into(),
        openid_list: openid_list.into(),
        options: None,
    }
}

fn wx_status_request(
    openid: &str,
    token: &str,
    op_type: WxGroupStatusQuery,
) -> GetWxGroupStatusRequest {
    GetWxGroupStatusRequest {
        app_id: WX.into(),
        openid: openid.into(),
        access_token: token.into(),
        group_id: demo::MSDK_WX_GROUP_ID.into(),
        op_type: op_type as i32,
        options: None,
    }
}

fn wx_unlink_request() -> UnlinkWxGroupRequest {
    UnlinkWxGroupRequest {
        app_id: WX.into(),
        openid: demo::MSDK_WX_ALICE_OPENID.into(),
        access_token: demo::MSDK_WX_ALICE_TOKEN.into(),
        group_id: demo::MSDK_WX_GROUP_ID.into(),
        options: None,
    }
}

pub(crate) fn wx_message_request(
    user: Option<WxUserLogin>,
    msg_type: WxGroupMessageType,
) -> SendWxGroupMessageRequest {
    SendWxGroupMessageRequest {
        app_id: WX.into(),
        user,
        req_body: Some(WxGroupMessageBody {
            msg_type: msg_type as i32,
            sub_type: WxGroupShareSubType::Invite as i32,
            wx_app_id: "wxa28d26b2e31a21c4".into(),
            group_id: demo::MSDK_WX_GROUP_ID.into(),
            content: Some(WxGroupMessageContent {
                title: "Raid tonight".into(),
                desc: "Join us at 21:00".into(),
                share_url: String::new(),
                ext_info: "raid=42".into(),
                message_ext: "ext".into(),
                media_tag_name: "MSG_INVITE".into(),
            }),
        }),
        options: None,
    }
}

fn mini_request(to_user: &str) -> SendWxMiniProgramMessageRequest {
    SendWxMiniProgramMessageRequest {
        app_id: WX.into(),
        openid: demo::MSDK_WX_ALICE_OPENID.into(),
        access_token: demo::MSDK_WX_ALICE_TOKEN.into(),
        to_user: to_user.into(),
        weapp_id: "wx4a0a73ec028e47d7".into(),
        page_path: "pages/main/main?v=123&t=1234".into(),
        env_version: WxMiniProgramVersion::Develop as i32,
        pic_url: "http://wx.qlogo.cn/mmopen/cover/0".into(),
        title: "coin send to you".into(),
        media_tag_name: "MSG_INVITE".into(),
        options: None,
    }
}

// ---- expectations ------------------------------------------------------------------------

/// `group_openid` and `group_key` as the sandbox derives them (see its README).
fn group_openid(gc: &str) -> String {
    md5_hex(&format!("{QQ}:{gc}")).to_ascii_uppercase()
}

fn group_key(gc: &str) -> String {
    md5_hex(&format!("{QQ}:{gc}:key"))
}

fn md5_hex(text: &str) -> String {
    hex::encode(Md5::digest(text.as_bytes()))
}

fn avatar(openid: &str, size: &str) -> String {
    format!("http://q.qlogo.cn/qqapp/{QQ}/{openid}/{size}")
}

/// An interface error of the MSDK client range, carried in the envelope's `msg`
/// or `message`.
fn assert_client_error(error: &RichError, code: i64, message: &str, endpoint: &str) {
    assert_eq!(error.domain, MSDK_DOMAIN);
    assert_eq!(error.metadata["upstream_code"], code.to_string());
    assert_eq!(error.metadata["upstream_message"], message);
    assert_eq!(error.metadata["endpoint"], endpoint);
    assert!(
        !error.metadata.contains_key("plat_code"),
        "{:?}",
        error.metadata
    );
    assert!(
        !error.metadata.contains_key("err_type"),
        "{:?}",
        error.metadata
    );
}

/// An error gamegate found itself, before any upstream call.
fn assert_local(error: &RichError, fields: &[&str]) {
    assert_eq!(error.domain, "gamegate");
    assert_eq!(error.bad_request_fields(), fields);
    assert!(
        !error.metadata.contains_key("upstream_code"),
        "{:?}",
        error.metadata
    );
}

async fn group_relation(
    relation: &mut RelationServiceClient<Channel>,
    gc: &str,
    user: Option<QqUserLogin>,
) -> Result<QqGroupRelation, tonic::Status> {
    relation
        .get_qq_group_relation(relation_request(user, gc))
        .await
        .map(|answer| {
            answer
                .into_inner()
                .relation_info
                .unwrap_or_default()
                .relation()
        })
}

fn find_group<'a>(groups: &'a Value, gc: &str) -> &'a Value {
    groups["qq_groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|group| group["gc"] == gc)
        .unwrap_or_else(|| panic!("no group {gc} in {groups}"))
}

// ---- Mobile QQ profiles, friends, memberships ---------------------------------------------

#[tokio::test]
async fn qq_profile_maps_every_field() {
    let harness = Harness::start().await;
    let mut relation = harness.relation();
    let profile = relation
        .get_qq_profile(GetQqProfileRequest {
            options: ext("trace_42"),
            ..profile_request(alice())
        })
        .await
        .expect("alice's profile")
        .into_inner();
    assert_eq!(profile.nick_name, "Alice");
    // The seed writes genders in Korean ("남성" in its example).
    assert_eq!(profile.gender, "여성");
    assert_eq!(profile.picture_40, avatar(demo::MSDK_QQ_ALICE_OPENID, "40"));
    assert_eq!(
        profile.picture_100,
        avatar(demo::MSDK_QQ_ALICE_OPENID, "100")
    );
    assert!(profile.yellow_vip);
    assert_eq!(profile.yellow_vip_level, 5);
    assert!(profile.yellow_year_vip);
    assert!(!profile.is_lost);
    assert!(!profile.served_from_cache);
    assert_eq!(profile.msdk_ext_info, "trace_42");

    // Carol has no 100x100 avatar and is not an annual yellow diamond; https on request.
    let profile = relation
        .get_qq_profile(GetQqProfileRequest {
            options: https(),
            ..profile_request(carol())
        })
        .await
        .expect("carol's profile")
        .into_inner();
    assert_eq!(profile.nick_name, "Carol");
    assert_eq!(
        profile.picture_40,
        avatar(demo::MSDK_QQ_CAROL_OPENID, "40").replace("http://", "https://")
    );
    assert_eq!(profile.picture_100, "");
    assert!(profile.yellow_vip);
    assert_eq!(profile.yellow_vip_level, 2);
    assert!(!profile.yellow_year_vip);
    assert_eq!(profile.msdk_ext_info, "");

    // Bob: male, no yellow diamond.
    let profile = relation
        .get_qq_profile(profile_request(bob()))
        .await
        .expect("bob's profile")
        .into_inner();
    assert_eq!(profile.gender, "남성");
    assert!(!profile.yellow_vip);
    assert_eq!(profile.yellow_vip_level, 0);
}

#[tokio::test]
async fn guests_are_refused_by_the_qq_and_wechat_interfaces() {
    let harness = Harness::start().await;
    let mut relation = harness.relation();
    let guest = qq_user(demo::MSDK_GUEST_OPENID, demo::MSDK_GUEST_TOKEN);
    let error = expect_error(
        relation
            .get_qq_profile(GetQqProfileRequest {
                app_id: demo::MSDK_GUEST_APPID.into(),
                ..profile_request(guest.clone())
            })
            .await,
        Code::PermissionDenied,
        "GUEST_NOT_ALLOWED",
    );
    assert_eq!(error.domain, MSDK_DOMAIN);
    assert_eq!(error.metadata["upstream_code"], "-901");
    assert_eq!(error.metadata["upstream_message"], "guest not allowed");
    assert_eq!(error.metadata["endpoint"], QQPROFILE_PATH);

    // A guest openid with the QQ app is a guest all the same.
    let error = expect_error(
        relation.get_qq_profile(profile_request(guest)).await,
        Code::PermissionDenied,
        "GUEST_NOT_ALLOWED",
    );
    assert_eq!(error.metadata["upstream_code"], "-901");

    let error = expect_error(
        relation
            .get_wx_friends(GetWxFriendsRequest {
                app_id: demo::MSDK_GUEST_APPID.into(),
                user: wx_user(demo::MSDK_GUEST_OPENID, demo::MSDK_GUEST_TOKEN),
                options: None,
            })
            .await,
        Code::PermissionDenied,
        "GUEST_NOT_ALLOWED",
    );
    assert_eq!(error.metadata["endpoint"], "/relation/wxfriends");
    // Refusals are final: not retried although these are reads.
    assert_eq!(harness.requests(QQPROFILE_PATH).await, 2);
}

#[tokio::test]
async fn qq_friends_detail_lists_same_game_friends_and_close_friends() {
    let harness = Harness::start().await;
    let mut relation = harness.relation();
    let answer = relation
        .get_qq_friends_detail(GetQqFriendsDetailRequest {
            app_id: QQ.into(),
            user: alice(),
            scope: QqFriendChainScope::IncludeSelf as i32,
            include_close_friends: true,
            options: ext("friends_1"),
        })
        .await
        .expect("alice's friends")
        .into_inner();
    let openids: Vec<&str> = answer.friends.iter().map(|f| f.openid.as_str()).collect();
    assert_eq!(
        openids,
        [
            demo::MSDK_QQ_ALICE_OPENID,
            demo::MSDK_QQ_BOB_OPENID,
            demo::MSDK_QQ_CAROL_OPENID
        ]
    );
    let bobs = &answer.friends[1];
    assert_eq!(bobs.nick_name, "Bob");
    assert_eq!(bobs.gender, "남성");
    assert_eq!(
        bobs.figure_url_qq,
        format!("http://q.qlogo.cn/qqapp/{QQ}/{}/", demo::MSDK_QQ_BOB_OPENID)
    );
    assert_eq!(answer.friends[2].gender, "여성");
    assert_eq!(
        answer.ext_info.expect("extinfo").close_friend_openids,
        [demo::MSDK_QQ_BOB_OPENID]
    );
    assert!(!answer.is_lost);
    assert!(!answer.served_from_cache);
    assert_eq!(answer.msdk_ext_info, "friends_1");

    // Bob, default scope (himself left out), no close friends asked: his own list, then
    // those who list him.
    let answer = relation
        .get_qq_friends_detail(GetQqFriendsDetailRequest {
            app_id: QQ.into(),
            user: bob(),
            ..Default::default()
        })
        .await
        .expect("bob's friends")
        .into_inner();
    let openids: Vec<&str> = answer.friends.iter().map(|f| f.openid.as_str()).collect();
    assert_eq!(
        openids,
        [demo::MSDK_QQ_CAROL_OPENID, demo::MSDK_QQ_ALICE_OPENID]
    );
    assert!(
        answer
            .ext_info
            .unwrap_or_default()
            .close_friend_openids
            .is_empty()
    );

    // Dave has no friends in the game.
    let answer = relation
        .get_qq_friends_detail(GetQqFriendsDetailRequest {
            app_id: QQ.into(),
            user: dave(),
            scope: QqFriendChainScope::ExcludeSelf as i32,
            ..Default::default()
        })
        .await
        .expect("dave's friends")
        .into_inner();
    assert!(answer.friends.is_empty());

    // The WeChat app has no permission for a Mobile QQ interface (-303).
    let error = expect_error(
        relation
            .get_qq_friends_detail(GetQqFriendsDetailRequest {
                app_id: WX.into(),
                user: alice(),
                ..Default::default()
            })
            .await,
        Code::FailedPrecondition,
        "MSDK_NO_PERMISSION",
    );
    assert_eq!(error.domain, MSDK_DOMAIN);
    assert_eq!(error.metadata["upstream_code"], "-303");
}

#[tokio::test]
async fn qq_unregistered_friends_are_at_most_twenty() {
    let harness = Harness::start().await;
    let mut relation = harness.relation();
    let request = |count: Option<i32>| GetQqUnregisteredFriendsRequest {
        app_id: QQ.into(),
        openid: demo::MSDK_QQ_ALICE_OPENID.into(),
        access_token: demo::MSDK_QQ_ALICE_TOKEN.into(),
        count,
        options: None,
    };
    let answer = relation
        .get_qq_unregistered_friends(GetQqUnregisteredFriendsRequest {
            options: ext("unreg_1"),
            ..request(Some(2))
        })
        .await
        .expect("two unregistered friends")
        .into_inner();
    let names: Vec<&str> = answer
        .friends
        .iter()
        .map(|f| f.nick_name.as_str())
        .collect();
    assert_eq!(names, ["Frank", "Grace"]);
    assert_eq!(answer.friends[0].openid, "67063124582BE5086B203F543E4F643C");
    assert_eq!(
        answer.friends[0].head_img_url,
        "http://thirdqq.qlogo.cn/qqapp/100703379/67063124582BE5086B203F543E4F643C/100"
    );
    assert_eq!(answer.msdk_ext_info, "unreg_1");

    // count is optional upstream (the platform's default is 20): all three.
    let answer = relation
        .get_qq_unregistered_friends(request(None))
        .await
        .expect("unregistered friends without a count")
        .into_inner();
    let names: Vec<&str> = answer
        .friends
        .iter()
        .map(|f| f.nick_name.as_str())
        .collect();
    assert_eq!(names, ["Frank", "Grace", "Heidi"]);
    assert_eq!(harness.requests(UNREG_PATH).await, 2);

    // 21 is over the documented limit: refused before the platform is called.
    for count in [21, 1000] {
        let error = expect_error(
            relation
                .get_qq_unregistered_friends(request(Some(count)))
                .await,
            Code::InvalidArgument,
            "FIELD_INVALID",
        );
        assert_eq!(error.domain, "gamegate");
        assert_eq!(error.bad_request_fields(), vec!["count"], "count {count}");
    }
    assert_eq!(harness.requests(UNREG_PATH).await, 2);

    // 20 is the limit itself; 0 is sent as asked and refused by the platform.
    let answer = relation
        .get_qq_unregistered_friends(request(Some(20)))
        .await
        .expect("20 is allowed")
        .into_inner();
    assert_eq!(answer.friends.len(), 3);
    let error = expect_error(
        relation.get_qq_unregistered_friends(request(Some(0))).await,
        Code::InvalidArgument,
        "MSDK_CLIENT_ERROR",
    );
    assert_client_error(&error, -1001, "count invalid", UNREG_PATH);

    // The platform allows the interface only to games that report achievements.
    harness
        .admin_put(
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
        relation.get_qq_unregistered_friends(request(Some(5))).await,
        Code::FailedPrecondition,
        "MSDK_NO_PERMISSION",
    );
    assert_eq!(error.domain, MSDK_DOMAIN);
    assert_eq!(error.metadata["upstream_code"], "-303");
    assert_eq!(
        error.metadata["upstream_message"],
        "appid has no permission for this interface"
    );
}

#[tokio::test]
async fn qq_stranger_profiles_are_given_for_players_of_the_game() {
    let harness = Harness::start().await;
    let mut relation = harness.relation();
    let answer = relation
        .get_qq_stranger_profiles(GetQqStrangerProfilesRequest {
            app_id: QQ.into(),
            user: dave(),
            openids: vec![
                demo::MSDK_QQ_ALICE_OPENID.into(),
                "00000000000000000000000000000000".into(),
                demo::MSDK_QQ_CAROL_OPENID.into(),
            ],
            options: ext("strangers"),
        })
        .await
        .expect("profiles of strangers")
        .into_inner();
    assert_eq!(answer.profiles.len(), 2, "{:?}", answer.profiles);
    let alice = &answer.profiles[0];
    assert_eq!(alice.openid, demo::MSDK_QQ_ALICE_OPENID);
    assert_eq!(alice.nick_name, "Alice");
    assert_eq!(alice.gender, "2");
    assert_eq!(
        alice.qzone_picture_50,
        "http://thirdapp1.qlogo.cn/qzopenapp/3f8c2a7d0b1e4f6a9c5d8e2b7a4f1c0d3e6b9a2c5f8d1e4b7a0c3f6e9d2b5a8c/50"
    );
    assert_eq!(
        alice.qq_picture_40,
        avatar(demo::MSDK_QQ_ALICE_OPENID, "40")
    );
    assert_eq!(
        alice.qq_picture_100,
        avatar(demo::MSDK_QQ_ALICE_OPENID, "100")
    );
    assert_eq!(
        alice.qq_picture,
        format!(
            "http://q.qlogo.cn/qqapp/{QQ}/{}",
            demo::MSDK_QQ_ALICE_OPENID
        )
    );
    let carol = &answer.profiles[1];
    assert_eq!(carol.openid, demo::MSDK_QQ_CAROL_OPENID);
    assert_eq!(carol.qq_picture_100, "");
    assert!(!answer.is_lost);
    assert_eq!(answer.msdk_ext_info, "strangers");

    let error = expect_error(
        relation
            .get_qq_stranger_profiles(GetQqStrangerProfilesRequest {
                app_id: QQ.into(),
                user: dave(),
                openids: Vec::new(),
                options: None,
            })
            .await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_local(&error, &["openids"]);
    assert_eq!(harness.requests("/relation/qqstrange_profile").await, 1);
}

#[tokio::test]
async fn qq_friends_vip_reports_each_membership() {
    let harness = Harness::start().await;
    let mut relation = harness.relation();
    let unknown = "0123456789ABCDEF0123456789ABCDEF";
    let answer = relation
        .get_qq_friends_vip(GetQqFriendsVipRequest {
            options: ext("vip_1"),
            ..vip_request(vec![
                demo::MSDK_QQ_ALICE_OPENID.into(),
                demo::MSDK_QQ_BOB_OPENID.into(),
                demo::MSDK_QQ_CAROL_OPENID.into(),
                unknown.into(),
            ])
        })
        .await
        .expect("vip data")
        .into_inner();
    let summary: Vec<(&str, bool, i32, bool, bool)> = answer
        .vips
        .iter()
        .map(|v| {
            (
                v.openid.as_str(),
                v.is_qq_vip,
                v.qq_vip_level,
                v.is_qq_year_vip,
                v.is_qq_svip,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (demo::MSDK_QQ_ALICE_OPENID, true, 6, true, true),
            // Bob's membership expired (the seed's dates).
            (demo::MSDK_QQ_BOB_OPENID, false, 0, false, false),
            (demo::MSDK_QQ_CAROL_OPENID, false, 0, false, true),
            (unknown, false, 0, false, false),
        ]
    );
    assert!(!answer.is_lost);
    assert_eq!(answer.msdk_ext_info, "vip_1");

    // A VIP business the platform does not know is the caller's mistake (-1001).
    let error = expect_error(
        relation
            .get_qq_friends_vip(GetQqFriendsVipRequest {
                flags: "qq_vip,qq_gold".into(),
                ..vip_request(vec![demo::MSDK_QQ_BOB_OPENID.into()])
            })
            .await,
        Code::InvalidArgument,
        "MSDK_CLIENT_ERROR",
    );
    assert_client_error(&error, -1001, "flags invalid", VIP_PATH);
}

#[tokio::test]
async fn long_fopenid_lists_are_split_into_calls_of_49_and_merged_in_order() {
    let harness = Harness::start().await;
    let players = [
        demo::MSDK_QQ_ALICE_OPENID,
        demo::MSDK_QQ_BOB_OPENID,
        demo::MSDK_QQ_CAROL_OPENID,
        demo::MSDK_QQ_DAVE_OPENID,
    ];
    // 120 openids: the fixture's players, then openids the platform does not know.
    let fopenids: Vec<String> = (0..120)
        .map(|i| match players.get(i % 8) {
            Some(player) => (*player).to_string(),
            None => format!("{i:032X}"),
        })
        .collect();
    let answer = harness
        .relation()
        .get_qq_friends_vip(GetQqFriendsVipRequest {
            options: ext("fan_out"),
            ..vip_request(fopenids.clone())
        })
        .await
        .expect("a long list is answered as one")
        .into_inner();
    assert_eq!(answer.vips.len(), 120);
    let answered: Vec<&str> = answer.vips.iter().map(|v| v.openid.as_str()).collect();
    assert_eq!(answered, fopenids);
    for (i, vip) in answer.vips.iter().enumerate() {
        let alice = i % 8 == 0;
        assert_eq!(vip.is_qq_vip, alice, "entry {i}");
        assert_eq!(vip.qq_vip_level, if alice { 6 } else { 0 }, "entry {i}");
        // Alice and Carol are SVIP.
        assert_eq!(vip.is_qq_svip, i % 8 == 0 || i % 8 == 2, "entry {i}");
    }
    assert!(!answer.is_lost);
    assert_eq!(answer.msdk_ext_info, "fan_out");
    // 49 + 49 + 22: three upstream calls (the platform refuses more than 49 with -1002).
    assert_eq!(harness.requests(VIP_PATH).await, 3);

    // The local ceiling is 490 openids (10 calls of 49).
    let error = expect_error(
        harness
            .relation()
            .get_qq_friends_vip(vip_request(vec![demo::MSDK_QQ_BOB_OPENID.into(); 491]))
            .await,
        Code::InvalidArgument,
        "FIELD_INVALID",
    );
    assert_local(&error, &["fopenids"]);
    assert_eq!(harness.requests(VIP_PATH).await, 3);
}

#[tokio::test]
async fn a_degraded_part_of_a_fanned_out_call_degrades_the_whole_answer() {
    let harness = Harness::start().await;
    let mut relation = harness.relation();
    let list = |len: usize| -> Vec<String> {
        (0..len)
            .map(|i| {
                if i % 8 == 0 {
                    demo::MSDK_QQ_ALICE_OPENID.to_string()
                } else {
                    demo::MSDK_QQ_BOB_OPENID.to_string()
                }
            })
            .collect()
    };
    let alices_with_vip =
        |vips: &[gamegate::proto::QqFriendVip]| vips.iter().filter(|v| v.is_qq_vip).count();

    let good = relation
        .get_qq_friends_vip(vip_request(list(120)))
        .await
        .expect("good")
        .into_inner();
    assert_eq!(alices_with_vip(&good.vips), 15);

    // One of the three parts comes back degraded: the merged answer is degraded, and the
    // last good answer to the same request is served instead.
    harness.fault(json!({"path": VIP_PATH, "lost": true})).await;
    let cached = relation
        .get_qq_friends_vip(vip_request(list(120)))
        .await
        .expect("served from cache")
        .into_inner();
    assert!(cached.served_from_cache);
    assert!(!cached.is_lost);
    assert_eq!(cached.vips, good.vips);
    assert_eq!(harness.requests(VIP_PATH).await, 6);

    // A list never asked before: the degraded merge is passed on, one part zeroed. (130
    // openids: 49 + 49 + 32, each part with some of Alice's 17 entries, whichever part
    // the fault hits.)
    harness.fault(json!({"path": VIP_PATH, "lost": true})).await;
    let degraded = relation
        .get_qq_friends_vip(vip_request(list(130)))
        .await
        .expect("degraded")
        .into_inner();
    assert!(degraded.is_lost);
    assert!(!degraded.served_from_cache);
    assert_eq!(degraded.vips.len(), 130);
    let with_vip = alices_with_vip(&degraded.vips);
    assert!(with_vip > 0 && with_vip < 17, "{with_vip} of 17");
    assert_eq!(harness.requests(VIP_PATH).await, 9);
}

#[tokio::test]
async fn qq_vip_rich_info_decodes_flags_and_timestamps() {
    let harness = Harness::start().await;
    let mut relation = harness.relation();
    let info = relation
        .get_qq_vip_rich_info(GetQqVipRichInfoRequest {
            options: ext("rich_1"),
            ..rich_info_request(alice())
        })
        .await
        .expect("alice's vip data")
        .into_inner();
    assert!(info.is_qq_vip);
    assert_eq!(info.qq_vip_start.map(|t| t.seconds), Some(1_700_000_000));
    assert_eq!(info.qq_vip_end.map(|t| t.seconds), Some(2_524_579_200));
    assert!(info.is_qq_year_vip);
    assert_eq!(
        info.qq_year_vip_start.map(|t| t.seconds),
        Some(1_700_000_000)
    );
    assert_eq!(info.qq_year_vip_end.map(|t| t.seconds), Some(2_524_579_200));
    assert!(info.is_svip);
    assert_eq!(info.qq_svip_start.map(|t| t.seconds), Some(1_710_000_000));
    assert_eq!(info.qq_svip_end.map(|t| t.seconds), Some(2_524_579_200));
    assert!(!info.is_lost);
    assert!(!info.served_from_cache);
    assert_eq!(info.msdk_ext_info, "rich_1");

    // Bob: an expired membership keeps its dates; "0" means none.
    let info = relation
        .get_qq_vip_rich_info(rich_info_request(bob()))
        .await
        .expect("bob's vip data")
        .into_inner();
    assert!(!info.is_qq_vip);
    assert_eq!(info.qq_vip_start.map(|t| t.seconds), Some(1_443_461_120));
    assert_eq!(info.qq_vip_end.map(|t| t.seconds), Some(1_448_817_920));
    assert!(!info.is_qq_year_vip);
    assert_eq!(info.qq_year_vip_start, None);
    assert_eq!(info.qq_svip_end, None);
    assert!(!info.is_svip);

    // Erin changed her password.
    let error = expect_error(
        relation
            .get_qq_vip_rich_info(rich_info_request(erin()))
            .await,
        Code::Unauthenticated,
        "USER_REAUTH_REQUIRED",
    );
    assert_eq!(error.metadata["plat_code"], "-73");
    assert_eq!(error.metadata["err_type"], "2");
    assert_eq!(error.metadata["endpoint"], "/relation/get_vip_rich_info");
}

#[tokio::test]
async fn expired_qq_tokens_are_unauthenticated_on_every_relation_read() {
    let harness = Harness::start().await;
    let mut relation = harness.relation();
    harness
        .msdk_expire_token(QQ, demo::MSDK_QQ_ALICE_OPENID)
        .await;
    let error = expect_error(
        relation.get_qq_profile(profile_request(alice())).await,
        Code::Unauthenticated,
        "USER_TOKEN_INVALID",
    );
    assert_eq!(error.metadata["upstream_code"], "-10000");
    assert_eq!(error.metadata["plat_code"], "100015");
    assert_eq!(error.metadata["err_type"], "3");
    assert!(!error.message.contains(demo::MSDK_QQ_ALICE_TOKEN));
    let error = expect_error(
        relation.list_qq_groups(list_request(alice())).await,
        Code::Unauthenticated,
        "USER_TOKEN_INVALID",
    );
    assert_eq!(error.metadata["endpoint"], "/relation/get_group_listv2");
    // Other users are unaffected.
    relation
        .get_qq_profile(profile_request(bob()))
        .await
        .expect("bob's token is still valid");
}

// ---- the is_lost fallback -----------------------------------------------------------------

#[tokio::test]
async fn degraded_profiles_are_replaced_by_the_last_good_answer_and_never_cached() {
    let harness = Harness::start().await;
    let mut relation = harness.relation();
    let good = relation
        .get_qq_profile(profile_request(alice()))
        .await
        .expect("a good answer")
        .into_inner();
    assert!(!good.is_lost);
    assert!(!good.served_from_cache);
    assert_eq!(good.yellow_vip_level, 5);

    // The platform degrades the next answer: gamegate serves the good one.
    harness
        .fault(json!({"path": QQPROFILE_PATH, "lost": true}))
        .await;
    let cached = relation
        .get_qq_profile(profile_request(alice()))
        .await
        .expect("served from cache")
        .into_inner();
    assert!(cached.served_from_cache);
    assert!(!cached.is_lost);
    assert_eq!(cached.nick_name, "Alice");
    assert!(cached.yellow_vip);
    assert_eq!(cached.yellow_vip_level, 5);
    assert!(cached.yellow_year_vip);
    assert_eq!(harness.requests(QQPROFILE_PATH).await, 2);

    // Carol's first call ever is degraded: nothing to fall back on, the degraded answer
    // is passed on as such.
    harness
        .fault(json!({"path": QQPROFILE_PATH, "lost": true}))
        .await;
    let degraded = relation
        .get_qq_profile(profile_request(carol()))
        .await
        .expect("a degraded answer")
        .into_inner();
    assert!(degraded.is_lost);
    assert!(!degraded.served_from_cache);
    assert_eq!(degraded.nick_name, "Carol");
    assert!(!degraded.yellow_vip);
    assert_eq!(degraded.yellow_vip_level, 0);

    // ... and it was not cached: the next degraded answer for Carol is not served from cache.
    harness
        .fault(json!({"path": QQPROFILE_PATH, "lost": true}))
        .await;
    let again = relation
        .get_qq_profile(profile_request(carol()))
        .await
        .expect("degraded again")
        .into_inner();
    assert!(again.is_lost);
    assert!(!again.served_from_cache);

    // A good answer for Carol then becomes her fallback.
    let good = relation
        .get_qq_profile(profile_request(carol()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(good.yellow_vip_level, 2);
    harness
        .fault(json!({"path": QQPROFILE_PATH, "lost": true}))
        .await;
    let cached = relation
        .get_qq_profile(profile_request(carol()))
        .await
        .unwrap()
        .into_inner();
    assert!(cached.served_from_cache);
    assert_eq!(cached.yellow_vip_level, 2);
    assert_eq!(harness.requests(QQPROFILE_PATH).await, 6);
}

#[tokio::test]
async fn degraded_vip_data_falls_back_per_request() {
    let harness = Harness::start().await;
    let mut relation = harness.relation();
    let good = relation
        .get_qq_vip_rich_info(rich_info_request(alice()))
        .await
        .unwrap()
        .into_inner();
    assert!(good.is_qq_vip);
    harness
        .fault(json!({"path": "/relation/get_vip_rich_info", "lost": true}))
        .await;
    let cached = relation
        .get_qq_vip_rich_info(rich_info_request(alice()))
        .await
        .unwrap()
        .into_inner();
    assert!(cached.served_from_cache);
    assert!(cached.is_qq_vip);
    assert_eq!(cached.qq_svip_start.map(|t| t.seconds), Some(1_710_000_000));

    // Another request (other options) has no last good answer of its own.
    harness
        .fault(json!({"path": "/relation/get_vip_rich_info", "lost": true}))
        .await;
    let degraded = relation
        .get_qq_vip_rich_info(GetQqVipRichInfoRequest {
            options: ext("other"),
            ..rich_info_request(alice())
        })
        .await
        .unwrap()
        .into_inner();
    assert!(degraded.is_lost);
    assert!(!degraded.served_from_cache);
    assert!(!degraded.is_qq_vip);
    assert_eq!(degraded.qq_vip_end, None);
}

// ---- QQ groups ---------------------------------------------------------------------------

#[tokio::test]
async fn a_qq_group_life_cycle_through_grpc() {
    let harness = Harness::start().await;
    let mut relation = harness.relation();

    // The leader creates the guild's group and binds it.
    let created = relation
        .create_bind_qq_group(CreateBindQqGroupRequest {
            options: ext("life_1"),
            ..create_request(alice(), GUILD, "Dragons")
        })
        .await
        .expect("created and bound")
        .into_inner();
    assert_eq!(
        created.group,
        Some(QqGroup {
            gc: "600000001".into(),
            group_name: "Dragons".into(),
        })
    );
    assert_eq!(created.msdk_ext_info, "life_1");
    let gc = created.group.unwrap().gc;

    assert_eq!(
        group_relation(&mut relation, &gc, alice()).await.unwrap(),
        QqGroupRelation::Owner
    );
    assert_eq!(
        group_relation(&mut relation, &gc, bob()).await.unwrap(),
        QqGroupRelation::NonMember
    );

    // A member joins.
    let joined = relation
        .join_qq_group(JoinQqGroupRequest {
            options: ext("life_2"),
            ..join_request(bob(), GUILD, &gc)
        })
        .await
        .expect("bob joins")
        .into_inner();
    assert_eq!(
        joined.reserved_data,
        Some(QqGroupReservedData {
            empty: String::new()
        })
    );
    assert_eq!(joined.msdk_ext_info, "life_2");
    assert_eq!(
        group_relation(&mut relation, &gc, bob()).await.unwrap(),
        QqGroupRelation::Member
    );
    assert_eq!(
        group_relation(&mut relation, &gc, carol()).await.unwrap(),
        QqGroupRelation::NonMember
    );

    let groups = harness.msdk_groups(QQ).await;
    let group = find_group(&groups, &gc);
    assert_eq!(group["owner"], demo::MSDK_QQ_ALICE_OPENID);
    assert_eq!(group["members"], json!([demo::MSDK_QQ_BOB_OPENID]));
    assert_eq!(
        group["cards"],
        json!({
            demo::MSDK_QQ_ALICE_OPENID: "[Mage] Alice",
            demo::MSDK_QQ_BOB_OPENID: "[Tank] Bob",
        })
    );
    let binding = &groups["bindings"][0];
    assert_eq!(binding["guild_id"], GUILD);
    assert_eq!(binding["zone_id"], ZONE);
    assert_eq!(binding["type"], "0");
    assert_eq!(binding["union_name"], "Dragons");
    assert_eq!(binding["gc"], gc.as_str());
    assert_eq!(binding["leader_openid"], demo::MSDK_QQ_ALICE_OPENID);
    assert_eq!(binding["leader_roleid"], "role_leader");
    assert_eq!(binding["platid"], "1");

    // The leader's groups: the one created in QQ before, and the new one.
    let listed = relation
        .list_qq_groups(ListQqGroupsRequest {
            options: ext("life_3"),
            ..list_request(alice())
        })
        .await
        .expect("alice's groups")
        .into_inner();
    assert_eq!(
        listed.created_groups.expect("data").group_list,
        [
            QqGroup {
                gc: demo::MSDK_QQ_EXISTING_GC.into(),
                group_name: "Alice's raid group".into(),
            },
            QqGroup {
                gc: gc.clone(),
                group_name: "Dragons".into(),
            },
        ]
    );
    assert_eq!(listed.msdk_ext_info, "life_3");
    let bobs = relation
        .list_qq_groups(list_request(bob()))
        .await
        .expect("bob's groups")
        .into_inner();
    assert!(
        bobs.created_groups
            .unwrap_or_default()
            .group_list
            .is_empty()
    );

    let union = relation
        .query_bound_union(QueryBoundUnionRequest {
            options: ext("life_4"),
            ..union_request(carol(), &gc)
        })
        .await
        .expect("the bound guild")
        .into_inner();
    let union_info = union.union_info.expect("data");
    assert_eq!(union_info.union_id, GUILD);
    assert_eq!(union_info.union_name, "Dragons");
    assert_eq!(union.msdk_ext_info, "life_4");

    let code = relation
        .get_qq_group_code(GetQqGroupCodeRequest {
            options: ext("life_5"),
            ..group_code_request(bob(), GUILD)
        })
        .await
        .expect("the group's codes")
        .into_inner();
    let code_group = code.group.expect("data");
    assert_eq!(code_group.gc, gc);
    assert_eq!(code_group.group_name, "Dragons");
    assert_eq!(code_group.group_key, group_key(&gc));
    assert_eq!(code_group.group_openid, group_openid(&gc));
    assert_eq!(code_group.group_openid, group["group_openid"]);
    assert_eq!(code.msdk_ext_info, "life_5");

    // A member posts to the group through its group_openid; pf defaults to "qqqun".
    let sent = relation
        .send_qq_group_message(SendQqGroupMessageRequest {
            options: ext("life_6"),
            ..send_group_request(
                bob(),
                &code_group.group_openid,
                "Raid tonight",
                "21:00 at the gate",
            )
        })
        .await
        .expect("message sent")
        .into_inner();
    assert!(!sent.is_lost);
    assert_eq!(sent.msdk_ext_info, "life_6");
    let groups = harness.msdk_groups(QQ).await;
    let messages = &find_group(&groups, &gc)["messages"];
    assert_eq!(messages.as_array().unwrap().len(), 1);
    assert_eq!(messages[0]["openid"], demo::MSDK_QQ_BOB_OPENID);
    assert_eq!(messages[0]["pf"], "qqqun");
    assert_eq!(messages[0]["title"], "Raid tonight");
    assert_eq!(messages[0]["desc"], "21:00 at the gate");
    assert_eq!(messages[0]["param"], "guild=7");

    // The leader unbinds; the group itself stays, unbound.
    let unlinked = relation
        .unlink_qq_group(UnlinkQqGroupRequest {
            options: ext("life_7"),
            ..unlink_request(alice(), GUILD)
        })
        .await
        .expect("unbound")
        .into_inner();
    assert_eq!(unlinked.reserved_data.expect("data").empty, "");
    assert_eq!(unlinked.msdk_ext_info, "life_7");

    let error = expect_error(
        group_relation(&mut relation, &gc, bob())
            .await
            .map(tonic::Response::new),
        Code::InvalidArgument,
        "MSDK_CLIENT_ERROR",
    );
    assert_client_error(
        &error,
        -1108,
        "group not bound to a guild",
        "/relation/get_groupinfov2",
    );
    let error = expect_error(
        relation
            .query_bound_union(union_request(carol(), &gc))
            .await,
        Code::InvalidArgument,
        "MSDK_CLIENT_ERROR",
    );
    assert_client_error(
        &error,
        -1108,
        "group not bound to a guild",
        "/relation/query_bind_unionv2",
    );
    let groups = harness.msdk_groups(QQ).await;
    assert_eq!(groups["bindings"], json!([]));
    assert_eq!(
        find_group(&groups, &gc)["owner"],
        demo::MSDK_QQ_ALICE_OPENID
    );

    // A member reminds the leader to bind again: once a day.
    let reminded = relation
        .remind_leader_bind(RemindLeaderBindRequest {
            options: ext("life_8"),
            ..remind_request(bob(), GUILD)
        })
        .await
        .expect("the leader is reminded")
        .into_inner();
    assert_eq!(reminded.reserved_data.expect("data").empty, "");
    assert_eq!(reminded.msdk_ext_info, "life_8");
    let error = expect_error(
        relation
            .remind_leader_bind(remind_request(bob(), GUILD))
            .await,
        Code::InvalidArgument,
        "MSDK_CLIENT_ERROR",
    );
    assert_client_error(
        &error,
        -1107,
        "the leader was already reminded today",
        "/relation/remind_leader_bindv2",
    );
    let reminders = harness.msdk_groups(QQ).await["reminders"].clone();
    assert_eq!(reminders.as_array().unwrap().len(), 1);
    assert_eq!(reminders[0]["openid"], demo::MSDK_QQ_BOB_OPENID);
    assert_eq!(reminders[0]["leader_openid"], demo::MSDK_QQ_ALICE_OPENID);
    assert_eq!(reminders[0]["rolename"], "Bob the Tank");
    assert_eq!(reminders[0]["platid"], "2");
    assert_eq!(reminders[0]["guild_id"], GUILD);
}

#[tokio::test]
async fn binding_an_existing_qq_group() {
    let harness = Harness::start().await;
    let mut relation = harness.relation();
    let gc = demo::MSDK_QQ_EXISTING_GC;

    let bound = relation
        .bind_existing_qq_group(BindExistingQqGroupRequest {
            union_type: QqUnionType::Team as i32,
            options: ext("bind_1"),
            ..bind_existing_request(alice(), "team_3", gc)
        })
        .await
        .expect("alice binds her own group")
        .into_inner();
    assert_eq!(bound.reserved_data.expect("data").empty, "");
    assert_eq!(bound.msdk_ext_info, "bind_1");

    // Bound to a team: found with type 1 only.
    let union = relation
        .query_bound_union(QueryBoundUnionRequest {
            union_type: QqUnionType::Team as i32,
            ..union_request(bob(), gc)
        })
        .await
        .expect("the bound team")
        .into_inner()
        .union_info
        .expect("data");
    assert_eq!(union.union_id, "team_3");
    // The interface takes no guild name.
    assert_eq!(union.union_name, "");
    let error = expect_error(
        relation.query_bound_union(union_request(bob(), gc)).await,
        Code::InvalidArgument,
        "MSDK_CLIENT_ERROR",
    );
    assert_eq!(error.metadata["upstream_code"], "-1108");

    // Bob was in the group already.
    let answer = relation
        .get_qq_group_relation(relation_request(bob(), gc))
        .await
        .expect("bob's relation")
        .into_inner();
    assert_eq!(
        answer.relation_info.unwrap_or_default().relation(),
        QqGroupRelation::Member
    );
    let code = relation
        .get_qq_group_code(GetQqGroupCodeRequest {
            union_type: QqUnionType::Team as i32,
            ..group_code_request(alice(), "team_3")
        })
        .await
        .expect("the team's group")
        .into_inner()
        .group
        .expect("data");
    assert_eq!(code.gc, gc);
    assert_eq!(code.group_name, "Alice's raid group");
    // The sandbox pins this one in its own unit test.
    assert_eq!(code.group_openid, "D506520BECCF637FEC10AC55199120DB");

    let groups = harness.msdk_groups(QQ).await;
    assert_eq!(groups["bindings"][0]["type"], "1");
    assert_eq!(groups["bindings"][0]["gc"], gc);

    // A group bound to a guild cannot be bound to another (-1102).
    let error = expect_error(
        relation
            .bind_existing_qq_group(bind_existing_request(alice(), "guild_other", gc))
            .await,
        Code::InvalidArgument,
        "MSDK_CLIENT_ERROR",
    );
    assert_client_error(
        &error,
        -1102,
        "group already bound to another guild",
        "/relation/bind_existing_groupv2",
    );
}

#[tokio::test]
async fn qq_group_errors_carry_the_platforms_message() {
    let harness = Harness::start().await;
    let mut relation = harness.relation();
    let gc = relation
        .create_bind_qq_group(create_request(alice(), GUILD, "Dragons"))
        .await
        .expect("created")
        .into_inner()
        .group
        .unwrap()
        .gc;

    let check = |result: Result<(), tonic::Status>, code: i64, message: &str, endpoint: &str| {
        let error = expect_error(
            result.map(tonic::Response::new),
            Code::InvalidArgument,
            "MSDK_CLIENT_ERROR",
        );
        assert_client_error(&error, code, message, endpoint);
        assert!(error.bad_request_fields().is_empty());
    };
    check(
        relation
            .create_bind_qq_group(create_request(alice(), GUILD, "Dragons again"))
            .await
            .map(drop),
        -1101,
        "guild already bound to a group",
        "/relation/createbind_groupv2",
    );
    check(
        relation
            .join_qq_group(join_request(alice(), GUILD, &gc))
            .await
            .map(drop),
        -1106,
        "already a member of the group",
        "/relation/join_groupv2",
    );
    check(
        relation
            .join_qq_group(join_request(bob(), GUILD, demo::MSDK_QQ_EXISTING_GC))
            .await
            .map(drop),
        -1109,
        "gc is not the group bound to the guild",
        "/relation/join_groupv2",
    );
    check(
        relation
            .join_qq_group(join_request(bob(), "guild_unbound", &gc))
            .await
            .map(drop),
        -1103,
        "guild not bound to a group",
        "/relation/join_groupv2",
    );
    check(
        relation
            .unlink_qq_group(unlink_request(bob(), GUILD))
            .await
            .map(drop),
        -1105,
        "only the guild leader can unbind the group",
        "/relation/unlink_groupv2",
    );
    check(
        relation
            .get_qq_group_code(group_code_request(alice(), "guild_unbound"))
            .await
            .map(drop),
        -1103,
        "guild not bound to a group",
        "/relation/get_groupcode",
    );
    check(
        relation
            .get_qq_group_relation(relation_request(alice(), "123456"))
            .await
            .map(drop),
        -1104,
        "group not found",
        "/relation/get_groupinfov2",
    );
    check(
        relation
            .send_qq_group_message(send_group_request(carol(), &group_openid(&gc), "hello", ""))
            .await
            .map(drop),
        -1110,
        "not a member of the group",
        SEND_GROUPMSG_PATH,
    );
    check(
        relation
            .bind_existing_qq_group(bind_existing_request(
                bob(),
                "guild_9",
                demo::MSDK_QQ_EXISTING_GC,
            ))
            .await
            .map(drop),
        -1105,
        "only the group owner can bind the group",
        "/relation/bind_existing_groupv2",
    );
    check(
        relation
            .remind_leader_bind(remind_request(bob(), GUILD))
            .await
            .map(drop),
        -1101,
        "guild already bound to a group",
        "/relation/remind_leader_bindv2",
    );
}

#[tokio::test]
async fn qq_group_message_limits_and_a_busy_platform() {
    let harness = Harness::start().await;
    let mut relation = harness.relation();
    let gc = relation
        .create_bind_qq_group(create_request(alice(), GUILD, "Dragons"))
        .await
        .expect("created")
        .into_inner()
        .group
        .unwrap()
        .gc;
    let target = group_openid(&gc);

    // 45 and 60 bytes are the limits themselves (UTF-8: 15 Hangul syllables are 45 bytes).
    let title = "가".repeat(15);
    let desc = "d".repeat(60);
    let sent = relation
        .send_qq_group_message(SendQqGroupMessageRequest {
            pf: "openmobile_android".into(),
            ..send_group_request(alice(), &target, &title, &desc)
        })
        .await
        .expect("messages at the limits are sent")
        .into_inner();
    assert!(!sent.is_lost);
    let groups = harness.msdk_groups(QQ).await;
    let message = &find_group(&groups, &gc)["messages"][0];
    assert_eq!(message["title"], title.as_str());
    assert_eq!(message["pf"], "openmobile_android");
    assert_eq!(harness.requests(SEND_GROUPMSG_PATH).await, 1);

    for (title, desc, field) in [
        ("가".repeat(16), String::new(), "title"),
        ("t".repeat(46), String::new(), "title"),
        ("ok".to_string(), "d".repeat(61), "desc"),
    ] {
        let error = expect_error(
            relation
                .send_qq_group_message(send_group_request(alice(), &target, &title, &desc))
                .await,
            Code::InvalidArgument,
            "FIELD_INVALID",
        );
        assert_eq!(error.domain, "gamegate");
        assert_eq!(error.bad_request_fields(), vec![field]);
    }
    let error = expect_error(
        relation
            .send_qq_group_message(send_group_request(alice(), "", "hello", ""))
            .await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_local(&error, &["group_openid"]);
    assert_eq!(harness.requests(SEND_GROUPMSG_PATH).await, 1);

    // A busy platform: UNAVAILABLE with RetryInfo, and a write is never retried.
    harness
        .fault(json!({"path": SEND_GROUPMSG_PATH, "busy": true}))
        .await;
    let error = expect_error(
        relation
            .send_qq_group_message(send_group_request(alice(), &target, "busy?", ""))
            .await,
        Code::Unavailable,
        "UPSTREAM_BUSY",
    );
    assert_eq!(error.domain, MSDK_DOMAIN);
    assert_eq!(error.metadata["upstream_code"], "-1");
    assert_eq!(error.metadata["err_type"], "1");
    assert_eq!(error.metadata["upstream_message"], "system busy");
    assert!(error.retry_delay().is_some(), "busy carries RetryInfo");
    assert_eq!(harness.requests(SEND_GROUPMSG_PATH).await, 2);
    let groups = harness.msdk_groups(QQ).await;
    assert_eq!(
        find_group(&groups, &gc)["messages"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "the busy answer sent nothing"
    );

    // A degraded answer of a write is passed on as it is (the message was recorded).
    harness
        .fault(json!({"path": SEND_GROUPMSG_PATH, "lost": true}))
        .await;
    let sent = relation
        .send_qq_group_message(send_group_request(alice(), &target, "lost?", ""))
        .await
        .expect("sent, degraded")
        .into_inner();
    assert!(sent.is_lost);
    let groups = harness.msdk_groups(QQ).await;
    assert_eq!(find_group(&groups, &gc)["messages"][1]["title"], "lost?");
}

#[tokio::test]
async fn reads_are_retried_after_a_busy_msdk_answer() {
    let harness = Harness::start().await;
    harness
        .fault(json!({"path": QQPROFILE_PATH, "busy": true}))
        .await;
    let profile = harness
        .relation()
        .get_qq_profile(profile_request(alice()))
        .await
        .expect("the read is retried")
        .into_inner();
    assert_eq!(profile.nick_name, "Alice");
    assert_eq!(harness.requests(QQPROFILE_PATH).await, 2);
}

#[tokio::test]
async fn relation_limits_are_checked_before_the_platform_is_called() {
    let harness = Harness::start().await;
    let mut relation = harness.relation();

    let error = expect_error(
        relation
            .create_bind_qq_group(create_request(alice(), "", "Dragons"))
            .await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_local(&error, &["guild_id"]);

    let error = expect_error(
        relation
            .get_qq_group_relation(relation_request(alice(), ""))
            .await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_local(&error, &["gc"]);

    let error = expect_error(
        relation
            .join_qq_group(JoinQqGroupRequest {
                gc: String::new(),
                ..join_request(bob(), GUILD, "1")
            })
            .await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_local(&error, &["gc"]);

    let error = expect_error(
        relation
            .unlink_qq_group(UnlinkQqGroupRequest {
                plat_id: MsdkDevicePlatform::Unspecified as i32,
                role_id: String::new(),
                ..unlink_request(alice(), GUILD)
            })
            .await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_local(&error, &["plat_id", "role_id"]);

    let error = expect_error(
        relation.list_qq_groups(list_request(None)).await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_local(&error, &["user"]);

    let error = expect_error(
        relation
            .bind_existing_qq_group(bind_existing_request(alice(), GUILD, ""))
            .await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_local(&error, &["gc"]);

    let error = expect_error(
        relation
            .remind_leader_bind(RemindLeaderBindRequest {
                leader_openid: String::new(),
                ..remind_request(bob(), GUILD)
            })
            .await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_local(&error, &["leader_openid"]);

    let error = expect_error(
        relation.query_bound_union(union_request(bob(), "")).await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_local(&error, &["gc"]);

    let error = expect_error(
        relation
            .get_qq_group_code(group_code_request(bob(), ""))
            .await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_local(&error, &["guild_id"]);

    // The user's openid is a word (letters, digits, underscore) of at most 64 bytes.
    let error = expect_error(
        relation
            .get_qq_profile(profile_request(qq_user(
                "A3284A81;DROP",
                demo::MSDK_QQ_ALICE_TOKEN,
            )))
            .await,
        Code::InvalidArgument,
        "FIELD_INVALID",
    );
    assert_local(&error, &["user.openid"]);

    let error = expect_error(
        relation
            .get_qq_friends_detail(GetQqFriendsDetailRequest {
                app_id: QQ.into(),
                user: alice(),
                options: ext("a b"),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "FIELD_INVALID",
    );
    assert_local(&error, &["options.msdk_ext_info"]);

    let error = expect_error(
        relation
            .get_wx_group_status(wx_status_request(
                demo::MSDK_WX_ALICE_OPENID,
                demo::MSDK_WX_ALICE_TOKEN,
                WxGroupStatusQuery::Unspecified,
            ))
            .await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_local(&error, &["op_type"]);

    let mut too_long = wx_message_request(wx_bob(), WxGroupMessageType::Structured);
    too_long
        .req_body
        .as_mut()
        .unwrap()
        .content
        .as_mut()
        .unwrap()
        .ext_info = "x".repeat(2049);
    let error = expect_error(
        relation.send_wx_group_message(too_long).await,
        Code::InvalidArgument,
        "FIELD_INVALID",
    );
    assert_local(&error, &["req_body.content.ext_info"]);

    let error = expect_error(
        relation
            .send_wx_group_message(SendWxGroupMessageRequest {
                req_body: None,
                ..wx_message_request(wx_bob(), WxGroupMessageType::Structured)
            })
            .await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_local(&error, &["req_body"]);

    let error = expect_error(
        relation
            .send_wx_mini_program_message(SendWxMiniProgramMessageRequest {
                access_token: String::new(),
                ..mini_request(demo::MSDK_WX_BOB_OPENID)
            })
            .await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_local(&error, &["access_token"]);

    let error = expect_error(
        relation
            .get_wx_profiles(GetWxProfilesRequest {
                app_id: WX.into(),
                openid: demo::MSDK_WX_ALICE_OPENID.into(),
                access_token: demo::MSDK_WX_ALICE_TOKEN.into(),
                openids: Vec::new(),
                options: None,
            })
            .await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_local(&error, &["openids"]);

    for error_field in ["group_id", "openid_list"] {
        let mut request = wx_members_request(wx_alice(), demo::MSDK_WX_BOB_OPENID);
        match error_field {
            "group_id" => request.group_id.clear(),
            _ => request.openid_list.clear(),
        }
        let error = expect_error(
            relation.get_wx_group_members(request).await,
            Code::InvalidArgument,
            "FIELD_REQUIRED",
        );
        assert_local(&error, &[error_field]);
    }

    let error = expect_error(
        relation
            .unlink_wx_group(UnlinkWxGroupRequest {
                group_id: String::new(),
                ..wx_unlink_request()
            })
            .await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_local(&error, &["group_id"]);

    // Nothing reached the sandbox.
    assert_eq!(harness.total_requests().await, 0);
}

// ---- WeChat ------------------------------------------------------------------------------

#[tokio::test]
async fn wx_profiles_and_friends() {
    let harness = Harness::start().await;
    let mut relation = harness.relation();
    let answer = relation
        .get_wx_profiles(GetWxProfilesRequest {
            app_id: WX.into(),
            openid: demo::MSDK_WX_ALICE_OPENID.into(),
            access_token: demo::MSDK_WX_ALICE_TOKEN.into(),
            openids: vec![
                demo::MSDK_WX_ALICE_OPENID.into(),
                demo::MSDK_WX_BOB_OPENID.into(),
                demo::MSDK_WX_CAROL_OPENID.into(),
                // A stranger: left out.
                demo::MSDK_WX_DAVE_OPENID.into(),
            ],
            options: ext("wxp_1"),
        })
        .await
        .expect("profiles of alice and her friends")
        .into_inner();
    let summary: Vec<(&str, &str, WxUserSex)> = answer
        .profiles
        .iter()
        .map(|p| (p.openid.as_str(), p.nick_name.as_str(), p.sex()))
        .collect();
    assert_eq!(
        summary,
        [
            (demo::MSDK_WX_ALICE_OPENID, "헌터", WxUserSex::Male),
            (demo::MSDK_WX_BOB_OPENID, "WeGame테스트", WxUserSex::Female),
            (demo::MSDK_WX_CAROL_OPENID, "Carol", WxUserSex::Unknown),
        ]
    );
    let alice = &answer.profiles[0];
    assert_eq!(
        alice.picture,
        "http://wx.qlogo.cn/mmhead/RpIhxf6qwjeF1QA6YxVvE8El3ySJHWCJia63TePjLSIc"
    );
    assert_eq!(alice.province, "Guangdong");
    assert_eq!(alice.city, "Shenzhen");
    assert_eq!(alice.country, "CN");
    assert_eq!(alice.language, "zh_CN");
    assert_eq!(answer.profiles[1].city, "Zhongshan");
    assert_eq!(answer.profiles[2].picture, "");
    assert_eq!(answer.profiles[2].language, "en");
    // The first openid's Woka privilege.
    assert_eq!(answer.privileges, ["chinaunicom"]);
    assert_eq!(answer.msdk_ext_info, "wxp_1");

    let friends = relation
        .get_wx_friends(GetWxFriendsRequest {
            app_id: WX.into(),
            user: wx_alice(),
            options: ext("wxf_1"),
        })
        .await
        .expect("alice's friends")
        .into_inner();
    assert_eq!(
        friends.openids,
        [demo::MSDK_WX_BOB_OPENID, demo::MSDK_WX_CAROL_OPENID]
    );
    assert_eq!(friends.msdk_ext_info, "wxf_1");
    let friends = relation
        .get_wx_friends(GetWxFriendsRequest {
            app_id: WX.into(),
            user: wx_user(demo::MSDK_WX_DAVE_OPENID, demo::MSDK_WX_DAVE_TOKEN),
            options: None,
        })
        .await
        .expect("dave has no friends in the game")
        .into_inner();
    assert!(friends.openids.is_empty());

    // Wrong and expired WeChat tokens.
    let error = expect_error(
        relation
            .get_wx_friends(GetWxFriendsRequest {
                app_id: WX.into(),
                user: wx_user(demo::MSDK_WX_ALICE_OPENID, demo::MSDK_WX_CAROL_TOKEN),
                options: None,
            })
            .await,
        Code::Unauthenticated,
        "USER_TOKEN_INVALID",
    );
    assert_eq!(error.metadata["upstream_code"], "-20000");
    assert_eq!(error.metadata["plat_code"], "40001");
    assert_eq!(error.metadata["err_type"], "3");
    harness
        .msdk_expire_token(WX, demo::MSDK_WX_ALICE_OPENID)
        .await;
    let error = expect_error(
        relation
            .get_wx_profiles(GetWxProfilesRequest {
                app_id: WX.into(),
                openid: demo::MSDK_WX_ALICE_OPENID.into(),
                access_token: demo::MSDK_WX_ALICE_TOKEN.into(),
                openids: vec![demo::MSDK_WX_BOB_OPENID.into()],
                options: None,
            })
            .await,
        Code::Unauthenticated,
        "USER_TOKEN_INVALID",
    );
    assert_eq!(error.metadata["plat_code"], "42001");
    assert_eq!(error.metadata["endpoint"], "/relation/wxprofile");
    assert!(!error.message.contains(demo::MSDK_WX_ALICE_TOKEN));
}

#[tokio::test]
async fn wx_user_info_maps_every_field() {
    let harness = Harness::start().await;
    let mut relation = harness.relation();
    let info = relation
        .get_wx_user_info(GetWxUserInfoRequest {
            app_id: WX.into(),
            user: wx_alice(),
            options: Some(MsdkCallOptions {
                msdk_ext_info: "wxu_1".into(),
                https_urls: true,
            }),
        })
        .await
        .expect("alice's own profile")
        .into_inner();
    assert_eq!(info.nickname, "헌터");
    assert_eq!(
        info.picture,
        "https://wx.qlogo.cn/mmhead/RpIhxf6qwjeF1QA6YxVvE8El3ySJHWCJia63TePjLSIc/0"
    );
    assert_eq!(info.province, "Guangdong");
    assert_eq!(info.city, "Shenzhen");
    assert_eq!(info.country, "CN");
    // A string here ("1"), a number in wxprofile: both decode to the enum.
    assert_eq!(info.sex(), WxUserSex::Male);
    assert_eq!(info.unionid, "o1A_BjhwQHB2BUyasZ_Lb2rkkOpE");
    assert_eq!(info.privileges, ["chinaunicom"]);
    assert_eq!(info.language, "zh_CN");
    assert_eq!(info.gps_city, "Shenzhen");
    assert_eq!(info.openid, demo::MSDK_WX_ALICE_OPENID);
    assert_eq!(info.msdk_ext_info, "wxu_1");

    let info = relation
        .get_wx_user_info(GetWxUserInfoRequest {
            app_id: WX.into(),
            user: wx_carol(),
            options: None,
        })
        .await
        .expect("carol's own profile")
        .into_inner();
    assert_eq!(info.sex(), WxUserSex::Unknown);
    assert_eq!(info.picture, "");
    assert!(info.privileges.is_empty());

    // The QQ app has no permission for a WeChat interface (-303).
    let error = expect_error(
        relation
            .get_wx_user_info(GetWxUserInfoRequest {
                app_id: QQ.into(),
                user: wx_alice(),
                options: None,
            })
            .await,
        Code::FailedPrecondition,
        "MSDK_NO_PERMISSION",
    );
    assert_eq!(error.metadata["upstream_code"], "-303");
    assert_eq!(error.metadata["endpoint"], "/relation/wxuserinfo");
}

#[tokio::test]
async fn wx_group_members_status_and_unlink() {
    let harness = Harness::start().await;
    let mut relation = harness.relation();
    let asked = format!(
        "{},{},{}",
        demo::MSDK_WX_ALICE_OPENID,
        demo::MSDK_WX_CAROL_OPENID,
        demo::MSDK_WX_BOB_OPENID
    );
    let members = relation
        .get_wx_group_members(GetWxGroupMembersRequest {
            options: ext("wxg_1"),
            ..wx_members_request(wx_alice(), &asked)
        })
        .await
        .expect("members of mt2group")
        .into_inner();
    assert_eq!(
        members.openid_list,
        format!(
            "{},{}",
            demo::MSDK_WX_ALICE_OPENID,
            demo::MSDK_WX_BOB_OPENID
        )
    );
    assert_eq!(members.member_count, 2);
    assert_eq!(members.plat_code, "");
    assert_eq!(members.msdk_ext_info, "wxg_1");

    let status = |openid: &str, token: &str, query| wx_status_request(openid, token, query);
    let created = relation
        .get_wx_group_status(GetWxGroupStatusRequest {
            options: ext("wxs_1"),
            ..status(
                demo::MSDK_WX_CAROL_OPENID,
                demo::MSDK_WX_CAROL_TOKEN,
                WxGroupStatusQuery::Created,
            )
        })
        .await
        .expect("status")
        .into_inner();
    assert!(created.has_group);
    assert_eq!(created.msdk_ext_info, "wxs_1");
    let joined = |openid, token| status(openid, token, WxGroupStatusQuery::Joined);
    assert!(
        !relation
            .get_wx_group_status(joined(
                demo::MSDK_WX_CAROL_OPENID,
                demo::MSDK_WX_CAROL_TOKEN
            ))
            .await
            .unwrap()
            .into_inner()
            .has_group
    );
    assert!(
        relation
            .get_wx_group_status(joined(demo::MSDK_WX_BOB_OPENID, demo::MSDK_WX_BOB_TOKEN))
            .await
            .unwrap()
            .into_inner()
            .has_group
    );

    let unlinked = relation
        .unlink_wx_group(UnlinkWxGroupRequest {
            options: ext("wxu_2"),
            ..wx_unlink_request()
        })
        .await
        .expect("unbound")
        .into_inner();
    assert_eq!(unlinked.msdk_ext_info, "wxu_2");
    assert_eq!(
        harness.msdk_groups(WX).await["wechat_groups"],
        json!([]),
        "the group is forgotten"
    );
    assert!(
        !relation
            .get_wx_group_status(status(
                demo::MSDK_WX_ALICE_OPENID,
                demo::MSDK_WX_ALICE_TOKEN,
                WxGroupStatusQuery::Created,
            ))
            .await
            .unwrap()
            .into_inner()
            .has_group
    );

    // wxget_groupinfo answers with "message", wxunlink_group with "msg": both read.
    let error = expect_error(
        relation
            .get_wx_group_members(wx_members_request(wx_alice(), &asked))
            .await,
        Code::InvalidArgument,
        "MSDK_CLIENT_ERROR",
    );
    assert_client_error(
        &error,
        -1201,
        "wechat group not found",
        "/relation/wxget_groupinfo",
    );
    let error = expect_error(
        relation.unlink_wx_group(wx_unlink_request()).await,
        Code::InvalidArgument,
        "MSDK_CLIENT_ERROR",
    );
    assert_client_error(&error, -1201, "wechat group not found", WX_UNLINK_PATH);

    // The WeChat token check comes first on wxget_groupstatus too.
    harness
        .msdk_expire_token(WX, demo::MSDK_WX_BOB_OPENID)
        .await;
    let error = expect_error(
        relation
            .get_wx_group_status(joined(demo::MSDK_WX_BOB_OPENID, demo::MSDK_WX_BOB_TOKEN))
            .await,
        Code::Unauthenticated,
        "USER_TOKEN_INVALID",
    );
    assert_eq!(error.metadata["plat_code"], "42001");
}

#[tokio::test]
async fn wx_group_messages_from_members_only() {
    let harness = Harness::start().await;
    let mut relation = harness.relation();
    let sent = relation
        .send_wx_group_message(SendWxGroupMessageRequest {
            options: ext("wxm_1"),
            ..wx_message_request(wx_bob(), WxGroupMessageType::Structured)
        })
        .await
        .expect("bob posts to his guild's group")
        .into_inner();
    assert_eq!(sent.plat_code, "");
    assert_eq!(sent.msdk_ext_info, "wxm_1");
    let groups = harness.msdk_groups(WX).await;
    let message = &groups["wechat_groups"][0]["messages"][0];
    assert_eq!(message["openid"], demo::MSDK_WX_BOB_OPENID);
    assert_eq!(
        message["reqBody"],
        json!({
            "msg_type": 1,
            "sub_type": 1,
            "appid": "wxa28d26b2e31a21c4",
            "groupid": demo::MSDK_WX_GROUP_ID,
            "open": {
                "title": "Raid tonight",
                "desc": "Join us at 21:00",
                "ext_info": "raid=42",
                "message_ext": "ext",
                "media_tag_name": "MSG_INVITE",
            },
        })
    );

    // A link share needs its share_url: refused by the declared rule, before
    // any call (msdk_wire.rs shows the platform never sees it).
    let error = expect_error(
        relation
            .send_wx_group_message(wx_message_request(wx_bob(), WxGroupMessageType::Link))
            .await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_eq!(error.bad_request_fields(), ["req_body.content.share_url"]);
    let mut link = wx_message_request(wx_bob(), WxGroupMessageType::Link);
    let body = link.req_body.as_mut().unwrap();
    body.sub_type = WxGroupShareSubType::Gift as i32;
    body.content.as_mut().unwrap().share_url = "https://game.weixin.qq.com/gift".into();
    relation
        .send_wx_group_message(link)
        .await
        .expect("a link share with its url");
    let groups = harness.msdk_groups(WX).await;
    let message = &groups["wechat_groups"][0]["messages"][1]["reqBody"];
    assert_eq!(message["msg_type"], 2);
    assert_eq!(message["sub_type"], 3);
    assert_eq!(
        message["open"]["share_url"],
        "https://game.weixin.qq.com/gift"
    );

    // Carol is not in the group (-1110).
    let error = expect_error(
        relation
            .send_wx_group_message(wx_message_request(
                wx_carol(),
                WxGroupMessageType::Structured,
            ))
            .await,
        Code::InvalidArgument,
        "MSDK_CLIENT_ERROR",
    );
    assert_client_error(
        &error,
        -1110,
        "not a member of the group",
        "/relation/wxsend_groupmsg",
    );
}

#[tokio::test]
async fn wx_mini_program_messages_go_to_same_game_friends() {
    let harness = Harness::start().await;
    let mut relation = harness.relation();
    let sent = relation
        .send_wx_mini_program_message(SendWxMiniProgramMessageRequest {
            options: ext("mini_1"),
            ..mini_request(demo::MSDK_WX_BOB_OPENID)
        })
        .await
        .expect("sent to bob")
        .into_inner();
    assert_eq!(sent.msdk_ext_info, "mini_1");
    let messages = harness.msdk_groups(WX).await["mini_messages"].clone();
    assert_eq!(messages.as_array().unwrap().len(), 1);
    let message = &messages[0];
    assert_eq!(message["openid"], demo::MSDK_WX_ALICE_OPENID);
    assert_eq!(message["touser"], demo::MSDK_WX_BOB_OPENID);
    assert_eq!(message["weapp_id"], "wx4a0a73ec028e47d7");
    assert_eq!(message["path"], "pages/main/main?v=123&t=1234");
    assert_eq!(message["env_version"], "1");
    assert_eq!(message["title"], "coin send to you");
    assert_eq!(message["media_tag_name"], "MSG_INVITE");

    // Dave is not Alice's friend (-1202).
    let error = expect_error(
        relation
            .send_wx_mini_program_message(mini_request(demo::MSDK_WX_DAVE_OPENID))
            .await,
        Code::InvalidArgument,
        "MSDK_CLIENT_ERROR",
    );
    assert_client_error(
        &error,
        -1202,
        "touser is not a friend playing the same game",
        "/relation/wx_mini_send_msg",
    );

    // The token travels in the URL here, and is checked all the same.
    let error = expect_error(
        relation
            .send_wx_mini_program_message(SendWxMiniProgramMessageRequest {
                access_token: demo::MSDK_WX_BOB_TOKEN.into(),
                ..mini_request(demo::MSDK_WX_BOB_OPENID)
            })
            .await,
        Code::Unauthenticated,
        "USER_TOKEN_INVALID",
    );
    assert_eq!(error.metadata["plat_code"], "40001");
    assert!(!error.message.contains(demo::MSDK_WX_BOB_TOKEN));
    assert_eq!(
        harness.msdk_groups(WX).await["mini_messages"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

// ---- the MSDK error table ----------------------------------------------------------------

#[tokio::test]
async fn every_documented_msdk_code_is_mapped() {
    let harness = Harness::start().await;
    let mut relation = harness.relation();
    let cases = [
        (1, Code::NotFound, "MSDK_EMPTY_RESULT"),
        (-303, Code::FailedPrecondition, "MSDK_NO_PERMISSION"),
        (-304, Code::Internal, "MSDK_REQUEST_REJECTED"),
        (-501, Code::Internal, "MSDK_REQUEST_REJECTED"),
        (-502, Code::Internal, "SIGNATURE_REJECTED"),
        (-504, Code::FailedPrecondition, "MSDK_NO_PERMISSION"),
        (-505, Code::Internal, "MSDK_REQUEST_REJECTED"),
        (-506, Code::Internal, "MSDK_REQUEST_REJECTED"),
        (-901, Code::PermissionDenied, "GUEST_NOT_ALLOWED"),
        (-1000, Code::InvalidArgument, "MSDK_CLIENT_ERROR"),
        (-1999, Code::InvalidArgument, "MSDK_CLIENT_ERROR"),
        (-2000, Code::Unavailable, "MSDK_SERVER_ERROR"),
        (-9999, Code::Unavailable, "MSDK_SERVER_ERROR"),
        // -10000 / -20000 without a "code,message" the gateway knows.
        (-10000, Code::Unknown, "QQ_PLATFORM_ERROR"),
        (-20000, Code::Unknown, "WECHAT_PLATFORM_ERROR"),
        (4242, Code::Unknown, "UPSTREAM_UNKNOWN_CODE"),
        // Last: the platform's frequency limit holds the app back afterwards.
        (-503, Code::ResourceExhausted, "UPSTREAM_RATE_LIMITED"),
    ];
    for (code, grpc_code, reason) in cases {
        harness
            .fault(json!({"path": WX_UNLINK_PATH, "code": code}))
            .await;
        let error = expect_error(
            relation
                .unlink_wx_group(UnlinkWxGroupRequest {
                    options: ext("codes"),
                    ..wx_unlink_request()
                })
                .await,
            grpc_code,
            reason,
        );
        assert_eq!(error.domain, MSDK_DOMAIN, "{code}");
        assert_eq!(error.metadata["upstream_code"], code.to_string());
        assert_eq!(error.metadata["upstream_message"], "sandbox injected error");
        assert_eq!(error.metadata["endpoint"], WX_UNLINK_PATH);
        assert!(!error.metadata.contains_key("plat_code"), "{code}");
        if grpc_code == Code::Unavailable {
            assert!(error.retry_delay().is_some(), "{code} carries RetryInfo");
        }
        if grpc_code == Code::ResourceExhausted {
            assert!(error.has_quota_failure(), "{code} carries QuotaFailure");
        }
    }
    // A write: one upstream request per call, none retried; the group is still there.
    assert_eq!(harness.requests(WX_UNLINK_PATH).await, cases.len() as u64);
    assert_eq!(
        harness.msdk_groups(WX).await["wechat_groups"][0]["groupid"],
        demo::MSDK_WX_GROUP_ID
    );
}
