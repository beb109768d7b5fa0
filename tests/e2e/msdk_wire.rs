//! Wire fidelity of the MSDK requests (issue 12): what the sandbox received,
//! member by member, against what the seed's request examples send.

use std::time::{SystemTime, UNIX_EPOCH};

use gamegate::proto::free_flow_service_client::FreeFlowServiceClient;
use gamegate::proto::profile_service_client::ProfileServiceClient;
use gamegate::proto::share_service_client::ShareServiceClient;
use gamegate::proto::{
    BindExistingQqGroupRequest, GetFreeFlowInfoRequest, GetIpInfoRequest, GetPfValRequest,
    GetQqStrangerProfilesRequest, GetQqVipRichInfoRequest, PfOperatingSystem, QqUnionType,
    QueryBoundUnionRequest, RemindLeaderBindRequest, SendWxGroupMessageRequest, VerifyLoginRequest,
    WxBattleBaseInfo, WxBattleInfo, WxBattlePlatform, WxBattleReport, WxGroupMessageType,
    WxGroupShareSubType,
};
use md5::{Digest, Md5};
use serde_json::{Value, json};
use tonic::Code;

use crate::common::{Harness, demo, expect_error};
use crate::msdk_profile::battle_request;
use crate::msdk_relation as relation_tests;
use crate::msdk_share::{upload, wx_share};
use crate::msdk_support::{
    GATEWAY_DOMAIN, QQ, admin_get, last_body, qq_alice, qq_login, received, requests,
    total_requests, wx_bob,
};

const WX_BATTLE_PATH: &str = "/profile/wxbattle_report";
const UPLOAD_PATH: &str = "/share/upload_wx";
const SHARE_WX_PATH: &str = "/share/wx";
const GETINFO_PATH: &str = "/freeflow/getinfo";
const CCINFO_PATH: &str = "/freeflow/get_ccinfo";
const STRANGER_PATH: &str = "/relation/qqstrange_profile";
const VERIFY_PATH: &str = "/auth/verify_login";
const PFVAL_PATH: &str = "/auth/get_pfval";
const BIND_EXISTING_PATH: &str = "/relation/bind_existing_groupv2";
const REMIND_PATH: &str = "/relation/remind_leader_bindv2";
const UNION_PATH: &str = "/relation/query_bind_unionv2";
const WX_GROUPMSG_PATH: &str = "/relation/wxsend_groupmsg";
const RICH_INFO_PATH: &str = "/relation/get_vip_rich_info";

const FORM: &str = "application/x-www-form-urlencoded";
const ZONE: &str = "zone_1";

// ---- helpers -----------------------------------------------------------------------------

/// The demo QQ appid as the JSON number the seed's examples send.
fn qq_appid_number() -> u64 {
    QQ.parse().expect("the demo QQ appid is decimal")
}

/// Whether a received record's query holds `[name, value]`.
fn query_has(record: &Value, name: &str, value: &str) -> bool {
    query_value(record, name).as_deref() == Some(value)
}

/// The value of a query parameter of a received record.
fn query_value(record: &Value, name: &str) -> Option<String> {
    record["query"]
        .as_array()
        .expect("query is a list of pairs")
        .iter()
        .find(|pair| pair[0] == name)
        .and_then(|pair| pair[1].as_str().map(str::to_owned))
}

/// The last request `path` received (the whole record).
async fn last_record(harness: &Harness, path: &str) -> Value {
    received(harness, path)
        .await
        .pop()
        .unwrap_or_else(|| panic!("{path} received no request"))
}

/// Whether a JSON object has the member `name` at all.
fn has_member(body: &Value, name: &str) -> bool {
    body.as_object()
        .unwrap_or_else(|| panic!("not a JSON object: {body}"))
        .contains_key(name)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A signed MSDK request straight to the sandbox (no gamegate): the URL of
/// SIGNING.md (timestamp, appid, sig = lowercase md5(msdkkey + timestamp),
/// openid, encode=2), the body as given with the given content type. Answers
/// the JSON envelope.
async fn raw_msdk_post(
    harness: &Harness,
    path: &str,
    (appid, msdkkey): (&str, &str),
    openid: &str,
    content_type: &str,
    body: &Value,
) -> Value {
    let timestamp = now().to_string();
    let sig = hex::encode(Md5::digest(format!("{msdkkey}{timestamp}").as_bytes()));
    let url = format!(
        "{}{path}?timestamp={timestamp}&appid={appid}&sig={sig}&openid={openid}&encode=2",
        harness.sandbox.base_url()
    );
    let response = reqwest::Client::new()
        .post(url)
        .header("Content-Type", content_type)
        .body(body.to_string())
        .send()
        .await
        .expect("the sandbox answers");
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.expect("an MSDK JSON envelope")
}

const QQ_KEYS: (&str, &str) = (demo::MSDK_QQ_APPID, demo::MSDK_QQ_MSDKKEY);

// ---- request builders (as in the module tests) -------------------------------------------

fn battle_report(plat_id: WxBattlePlatform, score: i64) -> WxBattleReport {
    WxBattleReport {
        base_info: Some(WxBattleBaseInfo {
            game_name: "全民飞机大战".into(),
            plat_id: plat_id as i32,
            partition_id: "9".into(),
            role_id: "wongcai".into(),
            level: Some(2),
        }),
        battle_info: Some(WxBattleInfo {
            score: Some(score),
            is_win: Some(true),
        }),
        user_defined: None,
    }
}

fn verify_request(openid: &str, openkey: &str) -> VerifyLoginRequest {
    VerifyLoginRequest {
        app_id: QQ.into(),
        openid: openid.into(),
        openkey: openkey.into(),
        userip: "192.168.5.114".into(),
        options: None,
    }
}

fn stranger_request() -> GetQqStrangerProfilesRequest {
    GetQqStrangerProfilesRequest {
        app_id: QQ.into(),
        user: qq_login(demo::MSDK_QQ_DAVE_OPENID, demo::MSDK_QQ_DAVE_TOKEN),
        openids: vec![
            demo::MSDK_QQ_ALICE_OPENID.into(),
            demo::MSDK_QQ_CAROL_OPENID.into(),
        ],
        options: None,
    }
}

fn qq_bob() -> Option<gamegate::proto::QqUserLogin> {
    qq_login(demo::MSDK_QQ_BOB_OPENID, demo::MSDK_QQ_BOB_TOKEN)
}

/// A link or structured share to Bob's WeChat group (msdk_relation's), with `share_url`.
fn wx_message_request(msg_type: WxGroupMessageType, share_url: &str) -> SendWxGroupMessageRequest {
    let mut request = relation_tests::wx_message_request(wx_bob(), msg_type);
    let body = request.req_body.as_mut().expect("reqBody");
    body.sub_type = WxGroupShareSubType::Gift as i32;
    body.content.as_mut().expect("open").share_url = share_url.into();
    request
}

/// Alice binds the demo's existing group to a team (msdk_relation's request).
fn bind_existing_request(guild_id: &str) -> BindExistingQqGroupRequest {
    BindExistingQqGroupRequest {
        union_type: QqUnionType::Team as i32,
        ..relation_tests::bind_existing_request(qq_alice(), guild_id, demo::MSDK_QQ_EXISTING_GC)
    }
}

/// Bob reminds the leader of `guild_id` (msdk_relation's request).
fn remind_request(guild_id: &str) -> RemindLeaderBindRequest {
    relation_tests::remind_request(qq_bob(), guild_id)
}

/// Bob asks which team the demo's existing group is bound to.
fn union_request() -> QueryBoundUnionRequest {
    QueryBoundUnionRequest {
        union_type: QqUnionType::Team as i32,
        ..relation_tests::union_request(qq_bob(), demo::MSDK_QQ_EXISTING_GC)
    }
}

fn pf_val_request(version: &str) -> GetPfValRequest {
    GetPfValRequest {
        app_id: QQ.into(),
        openid: demo::MSDK_QQ_ALICE_OPENID.into(),
        access_token: demo::MSDK_QQ_ALICE_PAY_TOKEN.into(),
        platform: "desktop_m_qq".into(),
        reg_channel: "2002".into(),
        os: PfOperatingSystem::Android as i32,
        install_channel: "73213123".into(),
        offer_id: "1104674695".into(),
        options: None,
        version: version.into(),
    }
}

// ---- 1. wxbattle_report: one report is an object, several an array ------------------------

#[tokio::test]
async fn wx_battle_report_sends_one_report_as_an_object_and_two_as_an_array() {
    let harness = Harness::start().await;
    let mut client = ProfileServiceClient::new(harness.channel.clone());

    client
        .report_wx_battle(battle_request(vec![battle_report(
            WxBattlePlatform::Ios,
            4_288_625,
        )]))
        .await
        .expect("one report succeeds");
    let body = last_body(&harness, WX_BATTLE_PATH).await;
    let json = &body["json"];
    assert!(json.is_object(), "one report is one object: {body}");
    assert!(has_member(json, "baseinfo"), "{json}");
    assert_eq!(json["baseinfo"]["platid"], json!(0));
    assert_eq!(json["battleinfo"]["score"], json!(4_288_625));

    client
        .report_wx_battle(battle_request(vec![
            battle_report(WxBattlePlatform::Ios, 1),
            battle_report(WxBattlePlatform::Android, 2),
        ]))
        .await
        .expect("two reports succeed");
    let body = last_body(&harness, WX_BATTLE_PATH).await;
    let items = body["json"]
        .as_array()
        .unwrap_or_else(|| panic!("two reports are an array: {body}"));
    assert_eq!(items.len(), 2, "{body}");
    assert!(
        items
            .iter()
            .all(|item| item.is_object() && has_member(item, "baseinfo"))
    );
    assert_eq!(items[1]["baseinfo"]["platid"], json!(1));
    assert_eq!(items[1]["battleinfo"]["score"], json!(2));
    assert_eq!(requests(&harness, WX_BATTLE_PATH).await, 2);
}

// ---- 2. always_send members -------------------------------------------------------------

#[tokio::test]
async fn always_send_members_go_empty_and_other_empty_members_stay_out() {
    let harness = Harness::start().await;
    let mut client = ShareServiceClient::new(harness.channel.clone());

    // upload_wx: "access_token" is always sent, as the seed's example does ("").
    client
        .upload_wx_thumb(upload(b"\xFF\xD8\xFF\xE0thumb\xFF\xD9".to_vec()))
        .await
        .expect("upload_wx succeeds");
    let body = last_body(&harness, UPLOAD_PATH).await;
    assert!(has_member(&body, "access_token"), "{body}");
    assert_eq!(body["access_token"], json!(""), "{body}");

    // share/wx: "thumb_media_id" is always sent; "extinfo" and "media_tag_name"
    // (no always_send in share.proto) are left out when empty.
    let mut request = wx_share(demo::MSDK_WX_BOB_OPENID, "");
    request.extinfo = String::new();
    request.media_tag_name = String::new();
    client
        .share_wx(request)
        .await
        .expect("share/wx without a thumbnail succeeds");
    let body = last_body(&harness, SHARE_WX_PATH).await;
    assert!(has_member(&body, "thumb_media_id"), "{body}");
    assert_eq!(body["thumb_media_id"], json!(""), "{body}");
    assert!(!has_member(&body, "extinfo"), "{body}");
    assert!(!has_member(&body, "media_tag_name"), "{body}");
    // Given, they are sent.
    client
        .share_wx(wx_share(demo::MSDK_WX_BOB_OPENID, ""))
        .await
        .expect("share/wx with extinfo succeeds");
    let body = last_body(&harness, SHARE_WX_PATH).await;
    assert_eq!(body["extinfo"], "extinfo");
    assert_eq!(body["media_tag_name"], "MSG_INVITE");
    assert_eq!(body["thumb_media_id"], json!(""));
}

// ---- 3. freeflow: no body, parameters in the URL ----------------------------------------

#[tokio::test]
async fn freeflow_requests_have_no_body_and_their_parameters_in_the_url() {
    let harness = Harness::start().await;
    let mut client = FreeFlowServiceClient::new(harness.channel.clone());

    client
        .get_free_flow_info(GetFreeFlowInfoRequest {
            app_id: QQ.into(),
            openid: demo::MSDK_QQ_ALICE_OPENID.into(),
            options: None,
        })
        .await
        .expect("freeflow/getinfo succeeds");
    let record = last_record(&harness, GETINFO_PATH).await;
    assert_eq!(record["method"], "POST", "{record}");
    assert_eq!(record["has_body"], json!(false), "{record}");
    assert!(record["body"].is_null(), "{record}");
    assert!(
        query_has(&record, "openid", demo::MSDK_QQ_ALICE_OPENID),
        "{record}"
    );

    client
        .get_ip_info(GetIpInfoRequest {
            app_id: QQ.into(),
            openid: demo::MSDK_QQ_ALICE_OPENID.into(),
            ip: "59.37.125.72".into(),
            options: None,
        })
        .await
        .expect("freeflow/get_ccinfo succeeds");
    let record = last_record(&harness, CCINFO_PATH).await;
    assert_eq!(record["method"], "POST", "{record}");
    assert_eq!(record["has_body"], json!(false), "{record}");
    assert!(record["body"].is_null(), "{record}");
    assert!(
        query_has(&record, "openid", demo::MSDK_QQ_ALICE_OPENID),
        "{record}"
    );
    assert!(query_has(&record, "ip", "59.37.125.72"), "{record}");
}

// ---- 4. numeric appids ------------------------------------------------------------------

#[tokio::test]
async fn appid_is_a_json_number_where_the_seed_sends_one() {
    let harness = Harness::start().await;

    harness
        .relation()
        .get_qq_stranger_profiles(stranger_request())
        .await
        .expect("qqstrange_profile succeeds");
    let body = last_body(&harness, STRANGER_PATH).await;
    assert!(body["appid"].is_u64(), "appid is a number: {body}");
    assert_eq!(body["appid"].as_u64(), Some(qq_appid_number()));

    harness
        .auth()
        .verify_login(verify_request(
            demo::MSDK_QQ_ALICE_OPENID,
            demo::MSDK_QQ_ALICE_TOKEN,
        ))
        .await
        .expect("verify_login succeeds");
    let body = last_body(&harness, VERIFY_PATH).await;
    assert!(body["appid"].is_u64(), "appid is a number: {body}");
    assert_eq!(body["appid"].as_u64(), Some(qq_appid_number()));
}

// ---- 5. optional members of the seed's examples -----------------------------------------

#[tokio::test]
async fn optional_example_members_are_sent_when_given_and_only_then() {
    let harness = Harness::start().await;
    let mut relation = harness.relation();

    // bind_existing_groupv2 "partition": Alice binds her own group to a team.
    relation
        .bind_existing_qq_group(BindExistingQqGroupRequest {
            partition: "1".into(),
            ..bind_existing_request("team_3")
        })
        .await
        .expect("alice binds her group");
    let body = last_body(&harness, BIND_EXISTING_PATH).await;
    assert_eq!(body["partition"], json!("1"), "{body}");
    // Without it (the group is bound now: refused, but received).
    let _ = relation
        .bind_existing_qq_group(bind_existing_request("team_4"))
        .await;
    assert_eq!(requests(&harness, BIND_EXISTING_PATH).await, 2);
    let body = last_body(&harness, BIND_EXISTING_PATH).await;
    assert!(!has_member(&body, "partition"), "{body}");

    // query_bind_unionv2 "guild_id" and "zone_id": the team just bound.
    let union = relation
        .query_bound_union(QueryBoundUnionRequest {
            guild_id: "team_3".into(),
            zone_id: ZONE.into(),
            ..union_request()
        })
        .await
        .expect("the bound team")
        .into_inner()
        .union_info
        .expect("data");
    assert_eq!(union.union_id, "team_3");
    let body = last_body(&harness, UNION_PATH).await;
    assert_eq!(body["guild_id"], json!("team_3"), "{body}");
    assert_eq!(body["zone_id"], json!(ZONE), "{body}");
    relation
        .query_bound_union(union_request())
        .await
        .expect("the bound team, asked without guild and zone");
    let body = last_body(&harness, UNION_PATH).await;
    assert!(!has_member(&body, "guild_id"), "{body}");
    assert!(!has_member(&body, "zone_id"), "{body}");

    // remind_leader_bindv2 "gc" and "partition": Bob reminds Alice of unbound guilds.
    relation
        .remind_leader_bind(RemindLeaderBindRequest {
            gc: demo::MSDK_QQ_EXISTING_GC.into(),
            partition: "1".into(),
            ..remind_request("guild_7")
        })
        .await
        .expect("the leader is reminded");
    let body = last_body(&harness, REMIND_PATH).await;
    assert_eq!(body["gc"], json!(demo::MSDK_QQ_EXISTING_GC), "{body}");
    assert_eq!(body["partition"], json!("1"), "{body}");
    relation
        .remind_leader_bind(remind_request("guild_8"))
        .await
        .expect("the leader is reminded of another guild");
    let body = last_body(&harness, REMIND_PATH).await;
    assert!(!has_member(&body, "gc"), "{body}");
    assert!(!has_member(&body, "partition"), "{body}");

    // get_pfval "version" goes in the URL.
    let mut auth = harness.auth();
    auth.get_pf_val(pf_val_request("3.0.0a"))
        .await
        .expect("pf with a version");
    let record = last_record(&harness, PFVAL_PATH).await;
    assert!(query_has(&record, "version", "3.0.0a"), "{record}");
    assert!(!has_member(&record["body"], "version"), "{record}");
    auth.get_pf_val(pf_val_request(""))
        .await
        .expect("pf without a version");
    let record = last_record(&harness, PFVAL_PATH).await;
    assert_eq!(query_value(&record, "version"), None, "{record}");
}

// ---- 6. content type --------------------------------------------------------------------

#[tokio::test]
async fn bodies_are_labelled_form_urlencoded_and_the_sandbox_also_reads_json() {
    let harness = Harness::start().await;
    harness
        .auth()
        .verify_login(verify_request(
            demo::MSDK_QQ_ALICE_OPENID,
            demo::MSDK_QQ_ALICE_TOKEN,
        ))
        .await
        .expect("verify_login succeeds");
    harness
        .relation()
        .get_qq_stranger_profiles(stranger_request())
        .await
        .expect("qqstrange_profile succeeds");
    ShareServiceClient::new(harness.channel.clone())
        .share_wx(wx_share(demo::MSDK_WX_BOB_OPENID, ""))
        .await
        .expect("share/wx succeeds");
    for path in [VERIFY_PATH, STRANGER_PATH, SHARE_WX_PATH] {
        let record = last_record(&harness, path).await;
        assert_eq!(record["has_body"], json!(true), "{record}");
        assert_eq!(record["content_type"], json!(FORM), "{record}");
    }
    // Every request with a body that gamegate sent, whatever the interface.
    let all = admin_get(&harness, "/msdk/requests", &[]).await;
    let all = all["requests"].as_array().expect("requests");
    assert_eq!(all.len(), 3, "{all:?}");
    for record in all.iter().filter(|r| r["has_body"] == json!(true)) {
        assert_eq!(record["content_type"], json!(FORM), "{record}");
    }

    // Straight to the sandbox: the same verify_login body is read with either
    // label, and refused (-304) with another.
    let body = json!({
        "appid": qq_appid_number(),
        "openid": demo::MSDK_QQ_ALICE_OPENID,
        "openkey": demo::MSDK_QQ_ALICE_TOKEN,
        "userip": "192.168.5.114",
    });
    let alice = demo::MSDK_QQ_ALICE_OPENID;
    for content_type in ["application/json", FORM] {
        let answer =
            raw_msdk_post(&harness, VERIFY_PATH, QQ_KEYS, alice, content_type, &body).await;
        assert_eq!(answer["ret"], json!(0), "{content_type}: {answer}");
    }
    let answer = raw_msdk_post(&harness, VERIFY_PATH, QQ_KEYS, alice, "text/xml", &body).await;
    assert_eq!(answer["ret"], json!(-304), "{answer}");
    let records = received(&harness, VERIFY_PATH).await;
    let labels: Vec<&Value> = records.iter().map(|r| &r["content_type"]).collect();
    assert_eq!(
        labels,
        [
            &json!(FORM),
            &json!("application/json"),
            &json!(FORM),
            &json!("text/xml")
        ]
    );
}

// ---- 7. required_when: a link share needs its share_url ---------------------------------

#[tokio::test]
async fn a_wx_link_share_without_share_url_is_refused_before_any_call() {
    let harness = Harness::start().await;
    let mut relation = harness.relation();

    let before = total_requests(&harness).await;
    let error = expect_error(
        relation
            .send_wx_group_message(wx_message_request(WxGroupMessageType::Link, ""))
            .await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_eq!(error.domain, GATEWAY_DOMAIN);
    let fields = error.bad_request_fields();
    assert_eq!(fields.len(), 1, "{fields:?}");
    assert!(fields[0].ends_with("share_url"), "{fields:?}");
    assert_eq!(fields[0], "req_body.content.share_url");
    assert!(
        !error.metadata.contains_key("upstream_code"),
        "{:?}",
        error.metadata
    );
    assert_eq!(requests(&harness, WX_GROUPMSG_PATH).await, 0);
    assert_eq!(total_requests(&harness).await, before);

    // A structured share needs none; a link share with one reaches the platform.
    relation
        .send_wx_group_message(wx_message_request(WxGroupMessageType::Structured, ""))
        .await
        .expect("a structured share without a url");
    relation
        .send_wx_group_message(wx_message_request(
            WxGroupMessageType::Link,
            "https://game.weixin.qq.com/gift",
        ))
        .await
        .expect("a link share with its url");
    assert_eq!(requests(&harness, WX_GROUPMSG_PATH).await, 2);
    let body = last_body(&harness, WX_GROUPMSG_PATH).await;
    assert_eq!(body["reqBody"]["msg_type"], json!(2), "{body}");
    assert_eq!(
        body["reqBody"]["open"]["share_url"],
        "https://game.weixin.qq.com/gift"
    );
}

// ---- 8. "0" timestamps are unset --------------------------------------------------------

#[tokio::test]
async fn zero_timestamps_of_vip_rich_info_are_left_unset() {
    let harness = Harness::start().await;

    // What the sandbox answers for Bob (never an annual member, never an SVIP).
    let answer = raw_msdk_post(
        &harness,
        RICH_INFO_PATH,
        QQ_KEYS,
        demo::MSDK_QQ_BOB_OPENID,
        FORM,
        &json!({
            "appid": QQ,
            "openid": demo::MSDK_QQ_BOB_OPENID,
            "accessToken": demo::MSDK_QQ_BOB_TOKEN,
        }),
    )
    .await;
    assert_eq!(answer["ret"], json!(0), "{answer}");
    for member in [
        "qq_year_vip_start",
        "qq_year_vip_end",
        "qq_svip_start",
        "qq_svip_end",
    ] {
        assert_eq!(answer[member], json!("0"), "{member}: {answer}");
    }

    // Through gamegate: those are None, not the Unix epoch; the others are kept.
    let info = harness
        .relation()
        .get_qq_vip_rich_info(GetQqVipRichInfoRequest {
            app_id: QQ.into(),
            user: qq_bob(),
            options: None,
        })
        .await
        .expect("bob's vip data")
        .into_inner();
    assert_eq!(info.qq_year_vip_start, None);
    assert_eq!(info.qq_year_vip_end, None);
    assert_eq!(info.qq_svip_start, None);
    assert_eq!(info.qq_svip_end, None);
    assert_eq!(info.qq_vip_start.map(|t| t.seconds), Some(1_443_461_120));
    assert_eq!(info.qq_vip_end.map(|t| t.seconds), Some(1_448_817_920));
    assert_eq!(requests(&harness, RICH_INFO_PATH).await, 2);
}
