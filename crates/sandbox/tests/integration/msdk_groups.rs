//! Guild ↔ QQ group bindings, reminders, group messages, and guild WeChat groups.

use gamegate_sandbox::demo;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;
use crate::msdk_client::*;

const CREATEBIND: &str = "/relation/createbind_groupv2";
const GROUPINFO: &str = "/relation/get_groupinfov2";
const JOIN: &str = "/relation/join_groupv2";
const UNLINK: &str = "/relation/unlink_groupv2";
const GROUP_LIST: &str = "/relation/get_group_listv2";
const BIND_EXISTING: &str = "/relation/bind_existing_groupv2";
const REMIND: &str = "/relation/remind_leader_bindv2";
const QUERY_UNION: &str = "/relation/query_bind_unionv2";
const GROUPCODE: &str = "/relation/get_groupcode";
const SEND_GROUPMSG: &str = "/relation/send_groupmsg";

/// The guild fields of the seed's examples.
fn guild(extra: Value) -> Value {
    let mut body = json!({"guild_id": "123", "zone_id": "123", "platid": "1", "roleid": "1",
                          "partition": "1"});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

/// `ret` and the `message` the group interfaces answer with (never `msg` on success).
fn outcome(answer: &Value) -> (i64, &str) {
    let text = answer["message"]
        .as_str()
        .or_else(|| answer["msg"].as_str())
        .unwrap_or_else(|| panic!("no message in {answer}"));
    (ret(answer), text)
}

async fn groups_view(h: &Harness, appid: &str) -> Value {
    h.get_json(&format!("/_sandbox/msdk/groups?appid={appid}"))
        .await
}

#[tokio::test]
async fn create_query_join_unlink_life_cycle() {
    let h = start().await;
    let created = alice(
        CREATEBIND,
        guild(json!({"guild_name": "그룹 기능 테스트", "user_label": "[Mage] Alice"})),
    )
    .send(&h)
    .await;
    assert_eq!(created["ret"], 0, "{created}");
    assert_eq!(created["message"], "success");
    assert!(
        created.get("msg").is_none(),
        "the seed documents `message` here"
    );
    let gc = created["data"]["gc"].as_str().unwrap().to_owned();
    assert_eq!(created["data"]["group_name"], "그룹 기능 테스트");

    let relation = |answer: Value| answer["data"]["relation"].as_i64().unwrap();
    assert_eq!(
        relation(alice(GROUPINFO, json!({"gc": gc})).send(&h).await),
        1
    );
    assert_eq!(
        relation(bob(GROUPINFO, json!({"gc": gc})).send(&h).await),
        4
    );

    let joined = bob(JOIN, guild(json!({"gc": gc}))).send(&h).await;
    assert_eq!(
        joined,
        json!({"ret": 0, "message": "success", "data": {"empty": ""}})
    );
    assert_eq!(
        relation(bob(GROUPINFO, json!({"gc": gc})).send(&h).await),
        3
    );
    assert_eq!(
        outcome(&bob(JOIN, guild(json!({"gc": gc}))).send(&h).await),
        (-1106, "already a member of the group")
    );
    assert_eq!(
        outcome(&carol(JOIN, guild(json!({"gc": "999"}))).send(&h).await),
        (-1109, "gc is not the group bound to the guild")
    );

    // The guild a group is bound to, and the group of a guild.
    let union = bob(QUERY_UNION, json!({"gc": gc, "type": "0"}))
        .send(&h)
        .await;
    assert_eq!(
        union["data"],
        json!({"union_id": "123", "union_name": "그룹 기능 테스트"})
    );
    assert_eq!(
        outcome(
            &bob(QUERY_UNION, json!({"gc": gc, "type": "1"}))
                .send(&h)
                .await
        ),
        (-1108, "group not bound to a guild")
    );
    let code = bob(GROUPCODE, guild(json!({"type": "0"}))).send(&h).await;
    let group_openid = code["data"]["group_openid"].as_str().unwrap().to_owned();
    assert_eq!(group_openid.len(), 32);
    assert_eq!(code["data"]["gc"], gc.as_str());
    assert!(code["data"]["group_key"].is_string());

    // Only the leader unbinds.
    assert_eq!(
        outcome(&bob(UNLINK, guild(json!({}))).send(&h).await),
        (-1105, "only the guild leader can unbind the group")
    );
    assert_eq!(
        outcome(&alice(UNLINK, guild(json!({"roleid": ""}))).send(&h).await),
        (-1001, "roleid invalid")
    );
    let unlinked = alice(UNLINK, guild(json!({"guild_name": "x"})))
        .send(&h)
        .await;
    assert_eq!(outcome(&unlinked), (0, "success"));
    assert_eq!(
        outcome(&bob(GROUPCODE, guild(json!({}))).send(&h).await),
        (-1103, "guild not bound to a group")
    );
    assert_eq!(
        outcome(&alice(GROUPINFO, json!({"gc": gc})).send(&h).await),
        (-1108, "group not bound to a guild")
    );
    assert_eq!(
        outcome(&alice(UNLINK, guild(json!({}))).send(&h).await),
        (-1103, "guild not bound to a group")
    );

    // The group stays Alice's, so she can bind it again; a second create is refused.
    let view = groups_view(&h, demo::MSDK_QQ_APPID).await;
    let group = view["qq_groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["gc"] == gc.as_str())
        .unwrap();
    assert_eq!(group["members"], json!([demo::MSDK_QQ_BOB_OPENID]));
    assert_eq!(group["cards"][demo::MSDK_QQ_ALICE_OPENID], "[Mage] Alice");
    assert_eq!(view["bindings"], json!([]));
    assert_eq!(
        outcome(&alice(CREATEBIND, guild(json!({}))).send(&h).await),
        (0, "success")
    );
    assert_eq!(
        outcome(&alice(CREATEBIND, guild(json!({}))).send(&h).await),
        (-1101, "guild already bound to a group")
    );
    assert_eq!(
        outcome(&alice(GROUPINFO, json!({"gc": "1"})).send(&h).await),
        (-1104, "group not found")
    );
}

#[tokio::test]
async fn group_messages_to_the_bound_group() {
    let h = start().await;
    alice(CREATEBIND, guild(json!({"guild_name": "raid"})))
        .send(&h)
        .await;
    let code = alice(GROUPCODE, guild(json!({}))).send(&h).await;
    let group_openid = code["data"]["group_openid"].as_str().unwrap().to_owned();
    let message = |title: &str, desc: &str| {
        json!({"pf": "qqqun", "group_openid": group_openid, "title": title, "desc": desc,
               "redirect_url": "http://www.qq.com/",
               "image_url": "http://p.qlogo.cn/gh/31asdasd0/312248990/100", "param": "11"})
    };
    assert_eq!(
        alice(SEND_GROUPMSG, message("11", "11")).send(&h).await,
        json!({"ret": 0, "message": "success", "is_lost": "0"})
    );
    // 45 bytes of title and 60 of desc are fine; one more byte is not (15 × 3-byte 한 = 45).
    let title45 = "한".repeat(15);
    let desc60 = "d".repeat(60);
    assert_eq!(
        ret(&alice(SEND_GROUPMSG, message(&title45, &desc60))
            .send(&h)
            .await),
        0
    );
    assert_eq!(
        outcome(
            &alice(SEND_GROUPMSG, message(&format!("{title45}x"), "d"))
                .send(&h)
                .await
        ),
        (-1003, "title longer than 45 bytes")
    );
    assert_eq!(
        outcome(
            &alice(SEND_GROUPMSG, message("t", &format!("{desc60}x")))
                .send(&h)
                .await
        ),
        (-1003, "desc longer than 60 bytes")
    );
    // Carol is not in the group; an unknown group_openid is no group.
    assert_eq!(
        outcome(&carol(SEND_GROUPMSG, message("hi", "")).send(&h).await),
        (-1110, "not a member of the group")
    );
    let mut unknown = message("hi", "");
    unknown["group_openid"] = "00000000000000000000000000000000".into();
    assert_eq!(ret(&alice(SEND_GROUPMSG, unknown).send(&h).await), -1104);
    // A lost fault: the message is still recorded, the answer says is_lost 1 (the seed's example).
    h.admin(
        Method::POST,
        "/_sandbox/faults",
        json!({"path": SEND_GROUPMSG, "lost": true}),
    )
    .await;
    assert_eq!(
        alice(SEND_GROUPMSG, message("lost", "")).send(&h).await["is_lost"],
        "1"
    );
    let view = groups_view(&h, demo::MSDK_QQ_APPID).await;
    let sent: Vec<&Value> = view["qq_groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["messages"].as_array().unwrap())
        .collect();
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[0]["title"], "11");
    assert_eq!(sent[0]["openid"], demo::MSDK_QQ_ALICE_OPENID);
    assert_eq!(sent[2]["title"], "lost");
}

#[tokio::test]
async fn bind_an_existing_group() {
    let h = start().await;
    let list = alice(GROUP_LIST, json!({})).send(&h).await;
    assert_eq!(
        list,
        json!({"ret": 0, "message": "success", "data": {"group_list": [
            {"gc": demo::MSDK_QQ_EXISTING_GC, "group_name": "Alice's raid group"}]}})
    );
    assert_eq!(
        bob(GROUP_LIST, json!({})).send(&h).await["data"]["group_list"],
        json!([])
    );
    let existing = |extra: Value| {
        let mut body = guild(json!({"gc": demo::MSDK_QQ_EXISTING_GC}));
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    assert_eq!(
        outcome(&bob(BIND_EXISTING, existing(json!({}))).send(&h).await),
        (-1105, "only the group owner can bind the group")
    );
    assert_eq!(
        outcome(
            &alice(BIND_EXISTING, existing(json!({"gc": "42"})))
                .send(&h)
                .await
        ),
        (-1104, "group not found")
    );
    assert_eq!(
        alice(
            BIND_EXISTING,
            existing(json!({"group_name": "Alice's raid group"}))
        )
        .send(&h)
        .await,
        json!({"ret": 0, "message": "success", "data": {"empty": ""}})
    );
    // Bob was already a member of it: relation 3.
    let info = bob(GROUPINFO, json!({"gc": demo::MSDK_QQ_EXISTING_GC}))
        .send(&h)
        .await;
    assert_eq!(info["data"]["relation"], 3);
    // The same group for another guild, or another group for the same guild: refused.
    assert_eq!(
        outcome(
            &alice(BIND_EXISTING, existing(json!({"guild_id": "456"})))
                .send(&h)
                .await
        ),
        (-1102, "group already bound to another guild")
    );
    assert_eq!(
        outcome(&alice(BIND_EXISTING, existing(json!({}))).send(&h).await),
        (-1101, "guild already bound to a group")
    );
}

#[tokio::test]
async fn remind_the_leader_once_a_day() {
    let h = start().await;
    let remind = |extra: Value| {
        let mut body = guild(json!({"rolename": "Bob the bard",
            "leaderOpenid": demo::MSDK_QQ_ALICE_OPENID, "leaderRoleid": "7",
            "leaderZoneid": "123", "type": "0", "areaid": "1"}));
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    assert_eq!(
        bob(REMIND, remind(json!({}))).send(&h).await,
        json!({"ret": 0, "message": "success", "data": {"empty": ""}})
    );
    assert_eq!(
        outcome(&bob(REMIND, remind(json!({}))).send(&h).await),
        (-1107, "the leader was already reminded today")
    );
    // Per (guild, member): Carol may, and Bob may for another guild.
    assert_eq!(ret(&carol(REMIND, remind(json!({}))).send(&h).await), 0);
    assert_eq!(
        ret(&bob(REMIND, remind(json!({"guild_id": "456"})))
            .send(&h)
            .await),
        0
    );
    let view = groups_view(&h, demo::MSDK_QQ_APPID).await;
    assert_eq!(view["reminders"].as_array().unwrap().len(), 3);
    assert_eq!(
        view["reminders"][0]["leader_openid"],
        demo::MSDK_QQ_ALICE_OPENID
    );
    // A new day (the admin API forgets the reminders).
    let (status, cleared) = h
        .admin(
            Method::DELETE,
            &format!("/_sandbox/msdk/reminders?appid={}", demo::MSDK_QQ_APPID),
            json!(null),
        )
        .await;
    assert_eq!((status, cleared), (200, json!({"cleared": 3})));
    assert_eq!(ret(&bob(REMIND, remind(json!({}))).send(&h).await), 0);

    // The leader must be another player of the app; a bound guild needs no reminder.
    assert_eq!(
        outcome(
            &bob(
                REMIND,
                remind(json!({"leaderOpenid": "00000000000000000000000000000000"}))
            )
            .send(&h)
            .await
        ),
        (-1001, "leaderOpenid invalid")
    );
    assert_eq!(
        outcome(
            &bob(
                REMIND,
                remind(json!({"leaderOpenid": demo::MSDK_QQ_BOB_OPENID}))
            )
            .send(&h)
            .await
        ),
        (-1001, "leaderOpenid invalid")
    );
    assert_eq!(
        outcome(
            &bob(REMIND, remind(json!({"leaderRoleid": null})))
                .send(&h)
                .await
        ),
        (-1001, "leaderRoleid invalid")
    );
    alice(CREATEBIND, guild(json!({}))).send(&h).await;
    assert_eq!(
        outcome(
            &carol(REMIND, remind(json!({"guild_id": "123"})))
                .send(&h)
                .await
        ),
        (-1101, "guild already bound to a group")
    );
}

#[tokio::test]
async fn dissolved_groups_and_leader_transfer() {
    let h = start().await;
    let created = alice(CREATEBIND, guild(json!({}))).send(&h).await;
    let gc = created["data"]["gc"].as_str().unwrap().to_owned();
    // A leader transfer in the game: Bob may unbind now, Alice no more.
    let (status, _) = h
        .admin(
            Method::POST,
            "/_sandbox/msdk/qq_bindings/leader",
            json!({"appid": demo::MSDK_QQ_APPID, "guild_id": "123", "zone_id": "123",
                   "leader_openid": demo::MSDK_QQ_BOB_OPENID}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(ret(&alice(UNLINK, guild(json!({}))).send(&h).await), -1105);

    // Alice dissolves the group in QQ: the binding stays until a member's join finds it gone.
    let (status, _) = h
        .admin(
            Method::DELETE,
            &format!(
                "/_sandbox/msdk/qq_groups?appid={}&gc={gc}",
                demo::MSDK_QQ_APPID
            ),
            json!(null),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        ret(&carol(GROUPCODE, guild(json!({}))).send(&h).await),
        -1104
    );
    assert_eq!(
        outcome(&carol(JOIN, guild(json!({"gc": gc}))).send(&h).await),
        (-1104, "group not found")
    );
    assert_eq!(
        ret(&carol(GROUPCODE, guild(json!({}))).send(&h).await),
        -1103,
        "unbound by the join"
    );
}

#[tokio::test]
async fn wechat_guild_groups() {
    let h = start().await;
    let group = |extra: Value| {
        let mut body = json!({"groupid": demo::MSDK_WX_GROUP_ID});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let members = wx_alice(
        "/relation/wxget_groupinfo",
        group(
            json!({"openidlist": format!("{},{},{}", demo::MSDK_WX_CAROL_OPENID,
                                           demo::MSDK_WX_BOB_OPENID, demo::MSDK_WX_ALICE_OPENID)}),
        ),
    )
    .send(&h)
    .await;
    assert_eq!(
        members,
        json!({"ret": 0, "message": "success", "platCode": "", "membercount": 2,
               "openidlist": format!("{},{}", demo::MSDK_WX_BOB_OPENID, demo::MSDK_WX_ALICE_OPENID)})
    );
    let status = |op_type: i64, openid: &str, token: &str| {
        wx_call(
            "/relation/wxget_groupstatus",
            openid,
            token,
            group(json!({"op_type": op_type})),
        )
    };
    let is_has = |answer: Value| answer["is_has"].as_i64().unwrap();
    assert_eq!(
        is_has(
            status(0, demo::MSDK_WX_CAROL_OPENID, demo::MSDK_WX_CAROL_TOKEN)
                .send(&h)
                .await
        ),
        1
    );
    assert_eq!(
        is_has(
            status(1, demo::MSDK_WX_CAROL_OPENID, demo::MSDK_WX_CAROL_TOKEN)
                .send(&h)
                .await
        ),
        0
    );
    assert_eq!(
        is_has(
            status(1, demo::MSDK_WX_ALICE_OPENID, demo::MSDK_WX_ALICE_TOKEN)
                .send(&h)
                .await
        ),
        1
    );
    let bad = status(2, demo::MSDK_WX_ALICE_OPENID, demo::MSDK_WX_ALICE_TOKEN)
        .send(&h)
        .await;
    assert_eq!(bad, json!({"ret": -1001, "msg": "op_type invalid"}));

    // The seed's wxsend_groupmsg body (less its trailing comma).
    let req_body = |msg_type: i64, open: Value| {
        json!({"reqBody": {"msg_type": msg_type, "sub_type": 2, "appid": "wxa28d26b2e31a21c4",
                           "groupid": demo::MSDK_WX_GROUP_ID, "open": open}})
    };
    let open = json!({"title": "test1", "desc": "test2",
        "share_url": "https://game.weixin.qq.com/cgi-bin/act?noticeid=90103953",
        "ext_info": "test3", "message_ext": "test4", "media_tag_name": "test5"});
    let sent = wx_alice("/relation/wxsend_groupmsg", req_body(1, open.clone()))
        .send(&h)
        .await;
    assert_eq!(sent, json!({"ret": 0, "msg": "success", "platCode": ""}));
    let no_link = json!({"title": "t"});
    assert_eq!(
        wx_alice("/relation/wxsend_groupmsg", req_body(2, no_link))
            .send(&h)
            .await,
        json!({"ret": -1001, "msg": "reqBody.open.share_url invalid"})
    );
    let long = json!({"title": "t", "ext_info": "x".repeat(2049)});
    assert_eq!(
        wx_alice("/relation/wxsend_groupmsg", req_body(1, long))
            .send(&h)
            .await,
        json!({"ret": -1003, "msg": "reqBody.open.ext_info longer than 2048 bytes"})
    );
    let as_string = json!({"reqBody": req_body(1, open.clone())["reqBody"].to_string()});
    assert_eq!(
        ret(&wx_alice("/relation/wxsend_groupmsg", as_string)
            .send(&h)
            .await),
        0,
        "reqBody as a JSON string"
    );
    let carol = wx_call(
        "/relation/wxsend_groupmsg",
        demo::MSDK_WX_CAROL_OPENID,
        demo::MSDK_WX_CAROL_TOKEN,
        req_body(1, open),
    );
    assert_eq!(ret(&carol.send(&h).await), -1110);

    // Unlink: then the group is gone.
    let unlink = wx_alice("/relation/wxunlink_group", group(json!({})));
    assert_eq!(unlink.send(&h).await, json!({"ret": 0, "msg": "success"}));
    assert_eq!(
        unlink.send(&h).await,
        json!({"ret": -1201, "msg": "wechat group not found"})
    );
    assert_eq!(
        is_has(
            status(0, demo::MSDK_WX_ALICE_OPENID, demo::MSDK_WX_ALICE_TOKEN)
                .send(&h)
                .await
        ),
        0
    );

    // Groups are created through the admin API (the WeChat client creates them upstream).
    let (status_code, _) = h
        .admin(
            Method::PUT,
            "/_sandbox/msdk/wechat_groups",
            json!({"appid": demo::MSDK_WX_APPID, "groupid": "guild-7",
                   "members": [demo::MSDK_WX_CAROL_OPENID]}),
        )
        .await;
    assert_eq!(status_code, 200);
    let view = groups_view(&h, demo::MSDK_WX_APPID).await;
    assert_eq!(
        view["wechat_groups"],
        json!([{"groupid": "guild-7", "members": [demo::MSDK_WX_CAROL_OPENID], "messages": []}])
    );
}

#[tokio::test]
async fn mini_program_messages_to_same_game_friends() {
    let h = start().await;
    // The seed's example body; access_token travels in the URL.
    let message = |touser: &str| {
        json!({"touser": touser, "weapp_id": "wx4a0a73ec028e47d7",
               "path": "pages/main/main?v=123&t=1234", "env_version": "0",
               "pic_url": "wx.qlogo.cn/mmopen/vi_32/Q0j4TwGTfTKGKKZJsD7uySDq53Jtrppy2YPbt7YMxGrPjicZI4hynR9WWLoR9uxepMTUZWBdqNI0g8srfX9EIBg/0",
               "title": "coin send to you", "media_tag_name": "MSG_INVITE"})
    };
    let send = |touser: &str, token: Option<&str>| {
        let request = MsdkRequest::wx(
            "/relation/wx_mini_send_msg",
            demo::MSDK_WX_ALICE_OPENID,
            message(touser),
        );
        match token {
            Some(token) => request.with("access_token", token),
            None => request,
        }
    };
    assert_eq!(
        send(demo::MSDK_WX_BOB_OPENID, Some(demo::MSDK_WX_ALICE_TOKEN))
            .send(&h)
            .await,
        json!({"ret": 0, "msg": "success"})
    );
    assert_eq!(
        send(demo::MSDK_WX_BOB_OPENID, None).send(&h).await,
        json!({"ret": -506, "msg": "access_token missing"})
    );
    assert_eq!(
        ret(&send(demo::MSDK_WX_BOB_OPENID, Some("stale")).send(&h).await),
        -20000
    );
    assert_eq!(
        send(demo::MSDK_WX_DAVE_OPENID, Some(demo::MSDK_WX_ALICE_TOKEN))
            .send(&h)
            .await,
        json!({"ret": -1202, "msg": "touser is not a friend playing the same game"})
    );
    let mut bad_env = message(demo::MSDK_WX_BOB_OPENID);
    bad_env["env_version"] = "3".into();
    let request = MsdkRequest::wx(
        "/relation/wx_mini_send_msg",
        demo::MSDK_WX_ALICE_OPENID,
        bad_env,
    )
    .with("access_token", demo::MSDK_WX_ALICE_TOKEN);
    assert_eq!(ret(&request.send(&h).await), -1001);
    let view = groups_view(&h, demo::MSDK_WX_APPID).await;
    let sent = view["mini_messages"].as_array().unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["touser"], demo::MSDK_WX_BOB_OPENID);
    assert_eq!(sent[0]["title"], "coin send to you");
}

#[tokio::test]
async fn admin_msdk_endpoints_validate() {
    let h = start().await;
    let (status, _) = h
        .admin(Method::GET, "/_sandbox/msdk/groups?appid=nope", json!(null))
        .await;
    assert_eq!(status, 404);
    let (status, _) = h
        .admin(Method::GET, "/_sandbox/msdk/groups", json!(null))
        .await;
    assert_eq!(status, 400);
    let (status, _) = h
        .admin(
            Method::PUT,
            "/_sandbox/msdk/users",
            json!({"appid": "nope", "openid": "x", "access_token": "y"}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = h
        .admin(
            Method::PUT,
            "/_sandbox/msdk/apps",
            json!({"appid": "G_1", "platform": "qq", "msdkkey": "k", "appkey": "a"}),
        )
        .await;
    assert_eq!(status, 400, "a G_ appid is a guest app");
    // A new QQ user through the admin API, friends with Alice.
    let openid = "0123456789ABCDEF0123456789ABCDEF";
    let (status, answer) = h
        .admin(
            Method::PUT,
            "/_sandbox/msdk/users",
            json!({"appid": demo::MSDK_QQ_APPID, "openid": openid,
                   "access_token": "11112222333344445555666677778888",
                   "friends": [demo::MSDK_QQ_ALICE_OPENID],
                   "qq": {"nickname": "Ivan", "avatar_url": "http://q.qlogo.cn/qqapp/100703379/x"}}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let friends = alice("/relation/qqfriends_detail", json!({}))
        .send(&h)
        .await;
    assert_eq!(friends["lists"].as_array().unwrap().len(), 3);
    let ivan = qq_call(
        "/relation/qqprofile",
        openid,
        "11112222333344445555666677778888",
        json!({}),
    )
    .send(&h)
    .await;
    assert_eq!(ivan["nickName"], "Ivan");
    assert_eq!(ivan["gender"], "남성", "the platform's default");
    let (status, _) = h
        .admin(
            Method::PUT,
            "/_sandbox/msdk/qq_groups",
            json!({"appid": demo::MSDK_QQ_APPID, "gc": "777", "group_name": "Ivan's",
                   "owner": openid}),
        )
        .await;
    assert_eq!(status, 200);
    let list = qq_call(
        "/relation/get_group_listv2",
        openid,
        "11112222333344445555666677778888",
        json!({}),
    )
    .send(&h)
    .await;
    assert_eq!(
        list["data"]["group_list"],
        json!([{"gc": "777", "group_name": "Ivan's"}])
    );
}
