//! MSDK relation interfaces: profiles, friends, VIP data, limits, the lost fault and MSDK faults.

use gamegate_sandbox::demo;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;
use crate::msdk_client::*;

const QQPROFILE: &str = "/relation/qqprofile";
const FRIENDS_DETAIL: &str = "/relation/qqfriends_detail";
const UNREG: &str = "/relation/qq_unreg_friends";
const STRANGE: &str = "/relation/qqstrange_profile";
const FRIENDS_VIP: &str = "/relation/qqfriends_vip";
const RICH_INFO: &str = "/relation/get_vip_rich_info";
const WXPROFILE: &str = "/relation/wxprofile";
const WXFRIENDS: &str = "/relation/wxfriends";
const WXUSERINFO: &str = "/relation/wxuserinfo";

fn avatar(openid: &str) -> String {
    format!("http://q.qlogo.cn/qqapp/100703379/{openid}")
}

#[tokio::test]
async fn qq_profiles() {
    let h = start().await;
    let alice_openid = demo::MSDK_QQ_ALICE_OPENID;
    assert_eq!(
        alice(QQPROFILE, json!({})).send(&h).await,
        json!({
            "ret": 0, "msg": "success", "nickName": "Alice", "gender": "여성",
            "picture40": format!("{}/40", avatar(alice_openid)),
            "picture100": format!("{}/100", avatar(alice_openid)),
            "yellow_vip": 1, "yellow_vip_level": 5, "yellow_year_vip": 1, "is_lost": "0",
        })
    );
    // Carol has no 100×100 avatar.
    let carol = carol(QQPROFILE, json!({})).send(&h).await;
    assert_eq!(carol["picture100"], "");
    assert_eq!(carol["yellow_year_vip"], 0);
    let bob = bob(QQPROFILE, json!({})).send(&h).await;
    assert_eq!(bob["gender"], "남성");
}

#[tokio::test]
async fn qq_friends_with_and_without_self_and_close_friends() {
    let h = start().await;
    let answer = alice(FRIENDS_DETAIL, json!({"flag": 1, "closefriends_flag": 1}))
        .send(&h)
        .await;
    let entry = |openid: &str, nick: &str, gender: &str| {
        json!({"openid": openid, "nickName": nick, "gender": gender,
               "figureurl_qq": format!("{}/", avatar(openid))})
    };
    let bob = entry(demo::MSDK_QQ_BOB_OPENID, "Bob", "남성");
    let carol = entry(demo::MSDK_QQ_CAROL_OPENID, "Carol", "여성");
    assert_eq!(
        answer,
        json!({"ret": 0, "msg": "success", "lists": [bob, carol], "is_lost": "0",
               "extinfo": {"closefriend_lists": [demo::MSDK_QQ_BOB_OPENID]},
               "closefriend_lists": [demo::MSDK_QQ_BOB_OPENID]})
    );
    // Ints as strings are refused: the seed's example sends numbers.
    assert_eq!(
        alice(FRIENDS_DETAIL, json!({"flag": "2"})).send(&h).await,
        json!({"ret": -1001, "msg": "flag invalid"})
    );
    // flag 2 includes the caller (first); no closefriends_flag: none returned.
    let answer = alice(FRIENDS_DETAIL, json!({"flag": 2})).send(&h).await;
    let lists = answer["lists"].as_array().unwrap();
    assert_eq!(lists.len(), 3);
    assert_eq!(lists[0]["openid"], demo::MSDK_QQ_ALICE_OPENID);
    assert_eq!(answer["extinfo"], json!({}));
    assert!(answer.get("closefriend_lists").is_none());
    // Friendship is mutual: Carol lists no one but Alice and Bob list her.
    let answer = crate::msdk_client::carol(FRIENDS_DETAIL, json!({}))
        .send(&h)
        .await;
    let openids: Vec<&str> = answer["lists"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["openid"].as_str().unwrap())
        .collect();
    assert_eq!(
        openids,
        [demo::MSDK_QQ_ALICE_OPENID, demo::MSDK_QQ_BOB_OPENID]
    );
    // Dave has no friends in the app.
    let dave = qq_call(
        FRIENDS_DETAIL,
        demo::MSDK_QQ_DAVE_OPENID,
        demo::MSDK_QQ_DAVE_TOKEN,
        json!({"flag": 1}),
    );
    assert_eq!(dave.send(&h).await["lists"], json!([]));
    let bad = alice(FRIENDS_DETAIL, json!({"flag": "one"})).send(&h).await;
    assert_eq!(bad, json!({"ret": -1001, "msg": "flag invalid"}));
}

#[tokio::test]
async fn unregistered_friends_and_their_limit() {
    let h = start().await;
    // The seed's example body: accessToken and count only; the user comes from the URL.
    let request = |count: Value| {
        MsdkRequest::qq(
            UNREG,
            demo::MSDK_QQ_ALICE_OPENID,
            json!({"accessToken": demo::MSDK_QQ_ALICE_TOKEN, "count": count}),
        )
    };
    let answer = request(json!(2)).send(&h).await;
    assert_eq!(
        answer,
        json!({"ret": 0, "msg": "success", "friends": [
            {"openid": "67063124582BE5086B203F543E4F643C", "nick_name": "Frank",
             "head_img_url": "http://thirdqq.qlogo.cn/qqapp/100703379/67063124582BE5086B203F543E4F643C/100"},
            {"openid": "1A2B3C4D5E6F708192A3B4C5D6E7F809", "nick_name": "Grace",
             "head_img_url": "http://thirdqq.qlogo.cn/qqapp/100703379/1A2B3C4D5E6F708192A3B4C5D6E7F809/100"},
        ]})
    );
    assert_eq!(
        request(json!(20)).send(&h).await["friends"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        request(json!(21)).send(&h).await,
        json!({"ret": -1002, "msg": "count over the limit of 20"})
    );
    assert_eq!(
        request(json!(0)).send(&h).await,
        json!({"ret": -1001, "msg": "count invalid"})
    );
    // Without achievement reporting the interface is not allowed.
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
    assert_eq!(ret(&request(json!(5)).send(&h).await), -303);
}

#[tokio::test]
async fn strangers_by_openid_list() {
    let h = start().await;
    let answer = alice(
        STRANGE,
        json!({"appid": qq_appid_number(),
               "vcopenid": [demo::MSDK_QQ_DAVE_OPENID, "00000000000000000000000000000000",
                            demo::MSDK_QQ_CAROL_OPENID]}),
    )
    .send(&h)
    .await;
    assert_eq!(answer["is_lost"], "0");
    let list = answer["list"].as_array().expect("the table's `list`");
    assert_eq!(list.len(), 2, "unknown openids are left out");
    assert_eq!(
        list[0],
        json!({
            "openid": demo::MSDK_QQ_DAVE_OPENID, "gender": "1",
            "nickName": "/xu゛♥얼른 여기로 와இ",
            "qzonepicture50": "http://thirdapp1.qlogo.cn/qzopenapp/aff242e95d20fb902bedd93bb1dcd4c01ed5dc2a14b37510a81685c74529ab1e/50",
            "qqpicture40": format!("{}/40", avatar(demo::MSDK_QQ_DAVE_OPENID)),
            "qqpicture100": format!("{}/100", avatar(demo::MSDK_QQ_DAVE_OPENID)),
            "qqpicture": avatar(demo::MSDK_QQ_DAVE_OPENID),
        })
    );
    assert_eq!(list[1]["gender"], "2");
    // The appid as a string (the seed's table type; its example sends a number) is refused.
    assert_eq!(
        alice(STRANGE, json!({"vcopenid": [demo::MSDK_QQ_DAVE_OPENID]}))
            .send(&h)
            .await,
        json!({"ret": -1001, "msg": "appid invalid"})
    );
    let missing = alice(STRANGE, json!({"appid": qq_appid_number(), "vcopenid": []}))
        .send(&h)
        .await;
    assert_eq!(missing, json!({"ret": -1001, "msg": "vcopenid invalid"}));
}

#[tokio::test]
async fn vip_flags_and_the_49_openid_limit() {
    let h = start().await;
    let answer = alice(
        FRIENDS_VIP,
        json!({"fopenids": [demo::MSDK_QQ_ALICE_OPENID, demo::MSDK_QQ_BOB_OPENID,
                            demo::MSDK_QQ_CAROL_OPENID],
               "flags": "qq_vip,qq_svip", "pf": "openmobile_android", "userip": "127.0.0.1"}),
    )
    .send(&h)
    .await;
    assert_eq!(
        answer,
        json!({"ret": 0, "msg": "success", "is_lost": "0", "lists": [
            {"openid": demo::MSDK_QQ_ALICE_OPENID, "is_qq_vip": 1, "qq_vip_level": 6,
             "is_qq_year_vip": 1, "is_qq_svip": 1},
            {"openid": demo::MSDK_QQ_BOB_OPENID, "is_qq_vip": 0, "qq_vip_level": 0,
             "is_qq_year_vip": 0, "is_qq_svip": 0},
            {"openid": demo::MSDK_QQ_CAROL_OPENID, "is_qq_vip": 0, "qq_vip_level": 0,
             "is_qq_year_vip": 0, "is_qq_svip": 1},
        ]})
    );
    let svip_only = alice(
        FRIENDS_VIP,
        json!({"fopenids": [demo::MSDK_QQ_CAROL_OPENID], "flags": "qq_svip"}),
    )
    .send(&h)
    .await;
    assert_eq!(
        svip_only["lists"],
        json!([{"openid": demo::MSDK_QQ_CAROL_OPENID, "is_qq_svip": 1}])
    );
    let many = |n: usize| -> Vec<String> { (0..n).map(|i| format!("{i:032X}")).collect() };
    let at_limit = alice(
        FRIENDS_VIP,
        json!({"fopenids": many(49), "flags": "qq_vip"}),
    )
    .send(&h)
    .await;
    assert_eq!(at_limit["lists"].as_array().unwrap().len(), 49);
    let over = alice(
        FRIENDS_VIP,
        json!({"fopenids": many(50), "flags": "qq_vip"}),
    )
    .send(&h)
    .await;
    assert_eq!(
        over,
        json!({"ret": -1002, "msg": "fopenids over the limit of 49"})
    );
    let bad_flag = alice(
        FRIENDS_VIP,
        json!({"fopenids": many(1), "flags": "qq_vip,gold"}),
    )
    .send(&h)
    .await;
    assert_eq!(bad_flag, json!({"ret": -1001, "msg": "flags invalid"}));
    let no_list = alice(FRIENDS_VIP, json!({"flags": "qq_vip"}))
        .send(&h)
        .await;
    assert_eq!(no_list, json!({"ret": -1001, "msg": "fopenids invalid"}));
}

#[tokio::test]
async fn vip_rich_info_as_strings() {
    let h = start().await;
    assert_eq!(
        alice(RICH_INFO, json!({})).send(&h).await,
        json!({"ret": 0, "msg": "success", "is_lost": "0",
               "is_qq_vip": "1", "qq_vip_start": "1700000000", "qq_vip_end": "2524579200",
               "qq_year_vip_start": "1700000000", "qq_year_vip_end": "2524579200",
               "qq_svip_start": "1710000000", "qq_svip_end": "2524579200",
               "is_qq_year_vip": "1", "is_svip": "1"})
    );
    // Bob's membership (the seed example's dates) has expired.
    let bob = bob(RICH_INFO, json!({})).send(&h).await;
    assert_eq!(bob["is_qq_vip"], "0");
    assert_eq!(bob["qq_vip_start"], "1443461120");
    assert_eq!(bob["qq_vip_end"], "1448817920");
}

#[tokio::test]
async fn wechat_profiles_friends_and_user_info() {
    let h = start().await;
    // The seed's wxprofile example body (no appid), Alice first to get her privilege.
    let mut body = json!({"accessToken": demo::MSDK_WX_ALICE_TOKEN,
        "openids": [demo::MSDK_WX_ALICE_OPENID, demo::MSDK_WX_BOB_OPENID, demo::MSDK_WX_DAVE_OPENID]});
    let answer = MsdkRequest::wx(WXPROFILE, demo::MSDK_WX_ALICE_OPENID, body.clone())
        .send(&h)
        .await;
    assert_eq!(
        answer,
        json!({"ret": 0, "msg": "success", "privilege": ["chinaunicom"], "lists": [
            {"nickName": "헌터", "sex": 1,
             "picture": "http://wx.qlogo.cn/mmhead/RpIhxf6qwjeF1QA6YxVvE8El3ySJHWCJia63TePjLSIc",
             "provice": "Guangdong", "city": "Shenzhen", "openid": demo::MSDK_WX_ALICE_OPENID,
             "country": "CN", "language": "zh_CN"},
            {"nickName": "WeGame테스트", "sex": 2,
             "picture": "http://wx.qlogo.cn/mmopen/uQDECzzFUic3xMCxSqQwsgXZqgCB2MtscmicF20OGZiaKia6fMlqOLuGjlibiaUnVPk0GoGwkKWv2MIa8e4BSwXRHn7ia7zRn1bVz9E",
             "provice": "Guangdong", "city": "Zhongshan", "openid": demo::MSDK_WX_BOB_OPENID,
             "country": "CN", "language": "zh_CN"},
        ]}),
        "Dave is a stranger: left out"
    );
    body["openids"] = json!([demo::MSDK_WX_BOB_OPENID, demo::MSDK_WX_ALICE_OPENID]);
    let answer = MsdkRequest::wx(WXPROFILE, demo::MSDK_WX_ALICE_OPENID, body)
        .send(&h)
        .await;
    assert_eq!(
        answer["privilege"],
        json!([]),
        "only the first openid's privilege"
    );

    let friends = wx_alice(WXFRIENDS, json!({})).send(&h).await;
    assert_eq!(
        friends,
        json!({"ret": 0, "msg": "success",
               "openids": [demo::MSDK_WX_BOB_OPENID, demo::MSDK_WX_CAROL_OPENID]})
    );
    let info = wx_alice(WXUSERINFO, json!({}))
        .with("ishttps", "1")
        .send(&h)
        .await;
    assert_eq!(
        info,
        json!({"ret": 0, "msg": "success", "nickname": "헌터",
               "picture": "https://wx.qlogo.cn/mmhead/RpIhxf6qwjeF1QA6YxVvE8El3ySJHWCJia63TePjLSIc/0",
               "province": "Guangdong", "city": "Shenzhen", "country": "CN", "sex": "1",
               "unionid": "o1A_BjhwQHB2BUyasZ_Lb2rkkOpE", "privilege": ["chinaunicom"],
               "language": "zh_CN", "gpsCity": "Shenzhen", "openid": demo::MSDK_WX_ALICE_OPENID})
    );
}

impl Harness {
    async fn msdk_fault(&self, spec: Value) -> (u16, Value) {
        self.admin(Method::POST, "/_sandbox/faults", spec).await
    }
}

#[tokio::test]
async fn lost_fault_degrades_the_next_matching_answer() {
    let h = start().await;
    let (status, _) = h.msdk_fault(json!({"path": QQPROFILE, "lost": true})).await;
    assert_eq!(status, 200);
    let degraded = alice(QQPROFILE, json!({})).send(&h).await;
    assert_eq!(degraded["ret"], 0);
    assert_eq!(degraded["is_lost"], "1");
    assert_eq!(degraded["nickName"], "Alice", "identity kept");
    assert_eq!(degraded["yellow_vip"], 0, "membership data lost");
    let normal = alice(QQPROFILE, json!({})).send(&h).await;
    assert_eq!(normal["is_lost"], "0");
    assert_eq!(normal["yellow_vip"], 1);

    // A catch-all lost fault waits for an interface that answers is_lost.
    h.msdk_fault(json!({"lost": true, "times": 3})).await;
    assert_eq!(ret(&wx_alice(WXFRIENDS, json!({})).send(&h).await), 0);
    let vip = alice(
        FRIENDS_VIP,
        json!({"fopenids": [demo::MSDK_QQ_ALICE_OPENID], "flags": "qq_vip"}),
    )
    .send(&h)
    .await;
    assert_eq!(vip["is_lost"], "1");
    assert_eq!(vip["lists"][0]["is_qq_vip"], 0);
    let friends = alice(FRIENDS_DETAIL, json!({"closefriends_flag": 1}))
        .send(&h)
        .await;
    assert_eq!(
        (&friends["is_lost"], &friends["lists"]),
        (&json!("1"), &json!([]))
    );
    let rich = alice(RICH_INFO, json!({})).send(&h).await;
    assert_eq!(
        (&rich["is_lost"], &rich["is_qq_vip"]),
        (&json!("1"), &json!("0"))
    );
    assert_eq!(alice(RICH_INFO, json!({})).send(&h).await["is_lost"], "0");

    // Only interfaces with is_lost take it.
    let (status, answer) = h.msdk_fault(json!({"path": WXFRIENDS, "lost": true})).await;
    assert_eq!(status, 400, "{answer}");
}

#[tokio::test]
async fn busy_and_code_faults_in_the_msdk_envelope() {
    let h = start().await;
    h.msdk_fault(json!({"path": "/wxoauth/check_token", "busy": true}))
        .await;
    h.msdk_fault(json!({"path": QQPROFILE, "code": -2001}))
        .await;
    let check = wx_call(
        "/auth/check_token",
        demo::MSDK_WX_ALICE_OPENID,
        demo::MSDK_WX_ALICE_TOKEN,
        json!({}),
    )
    .with("msdkExtInfo", "busy_1");
    assert_eq!(
        check.send(&h).await,
        json!({"ret": -1, "msg": "system busy", "err_type": 1, "msdkExtInfo": "busy_1"})
    );
    assert_eq!(ret(&check.send(&h).await), 0, "consumed");
    let mut encrypted = alice(QQPROFILE, json!({}));
    encrypted.accept_encrypt = true;
    assert_eq!(
        encrypted.send(&h).await,
        json!({"ret": -2001, "msg": "sandbox injected error"})
    );
    let (_, listed) = h.admin(Method::GET, "/_sandbox/faults", json!(null)).await;
    assert_eq!(listed["faults"], json!([]));
    let stats = h.get_json("/_sandbox/stats").await;
    assert_eq!(stats["requests"]["/auth/check_token"], 2);
    assert_eq!(stats["requests"][QQPROFILE], 1);

    // The platform-independent faults apply to MSDK paths as they are, and the list shows lost.
    h.msdk_fault(json!({"path": "/relation/qqprofile/", "http_status": 503}))
        .await;
    h.msdk_fault(json!({"path": WXFRIENDS, "malformed": true}))
        .await;
    h.msdk_fault(json!({"path": RICH_INFO, "lost": true, "latency_ms": 1}))
        .await;
    let (_, listed) = h.admin(Method::GET, "/_sandbox/faults", json!(null)).await;
    assert_eq!(listed["faults"][0]["path"], QQPROFILE);
    assert_eq!(listed["faults"][2]["lost"], true);
    let response = alice(QQPROFILE, json!({})).send_raw(&h).await;
    assert_eq!(response.status(), 503);
    let response = wx_alice(WXFRIENDS, json!({})).send_raw(&h).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
}

/// The demo QQ appid as a JSON number, as the qqstrange_profile example sends it.
fn qq_appid_number() -> u64 {
    demo::MSDK_QQ_APPID.parse().expect("QQ appids are decimal")
}
