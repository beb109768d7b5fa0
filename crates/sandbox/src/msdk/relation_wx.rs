//! MSDK `relation` module, WeChat side: profiles, friends, guild WeChat groups and mini-program
//! messages.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::fixture::{MsdkUser, MsdkWechatGroup};
use super::{
    Call, Credential, Interface, MsdkError, MsdkState, Scope, object, opt_int, opt_str, req_str,
};

/// `reqBody.open.ext_info`: "length limit 2k".
const MAX_EXT_INFO_BYTES: usize = 2048;

const fn wechat(
    path: &'static str,
    message_key: &'static str,
    credential: Credential,
    handler: super::Handler,
) -> Interface {
    Interface {
        path,
        scope: Scope::Wechat,
        credential,
        message_key,
        success: "success",
        reports_loss: false,
        handler,
    }
}

pub(super) const INTERFACES: &[Interface] = &[
    wechat(
        "/relation/wxprofile",
        "msg",
        Credential::AccessToken,
        wxprofile,
    ),
    wechat(
        "/relation/wxfriends",
        "msg",
        Credential::AccessToken,
        wxfriends,
    ),
    wechat(
        "/relation/wxuserinfo",
        "msg",
        Credential::AccessToken,
        wxuserinfo,
    ),
    wechat(
        "/relation/wxget_groupinfo",
        "message",
        Credential::AccessToken,
        wxget_groupinfo,
    ),
    wechat(
        "/relation/wxunlink_group",
        "msg",
        Credential::AccessToken,
        wxunlink_group,
    ),
    wechat(
        "/relation/wxget_groupstatus",
        "msg",
        Credential::AccessToken,
        wxget_groupstatus,
    ),
    wechat(
        "/relation/wxsend_groupmsg",
        "msg",
        Credential::AccessToken,
        wxsend_groupmsg,
    ),
    wechat(
        "/relation/wx_mini_send_msg",
        "msg",
        Credential::QueryAccessToken,
        wx_mini_send_msg,
    ),
];

pub(super) struct WechatGroup {
    pub(super) members: Vec<String>,
    pub(super) messages: Vec<Value>,
}

/// One app's guild WeChat groups and mini-program messages.
#[derive(Default)]
pub(super) struct WechatGroups {
    /// groupid (guild id) -> group.
    pub(super) groups: BTreeMap<String, WechatGroup>,
    pub(super) mini_messages: Vec<Value>,
}

/// Creates or replaces a guild's WeChat group (its sent messages stay).
pub(super) fn put_group(state: &mut MsdkState, group: &MsdkWechatGroup) {
    let groups = state.wechat.entry(group.appid.clone()).or_default();
    let messages = groups
        .groups
        .remove(&group.groupid)
        .map(|previous| previous.messages)
        .unwrap_or_default();
    groups.groups.insert(
        group.groupid.clone(),
        WechatGroup {
            members: group.members.clone(),
            messages,
        },
    );
}

/// The admin view of an app's WeChat groups and mini-program messages.
pub(super) fn snapshot(state: &MsdkState, appid: &str) -> Value {
    let Some(groups) = state.wechat.get(appid) else {
        return json!({"wechat_groups": [], "mini_messages": []});
    };
    let wechat_groups: Vec<Value> = groups
        .groups
        .iter()
        .map(|(groupid, group)| {
            json!({"groupid": groupid, "members": group.members, "messages": group.messages})
        })
        .collect();
    json!({"wechat_groups": wechat_groups, "mini_messages": groups.mini_messages})
}

fn caller<'a>(state: &'a MsdkState, call: &Call) -> Result<&'a MsdkUser, MsdkError> {
    state
        .user(call.appid(), &call.openid)
        .ok_or(MsdkError::WechatTokenInvalid)
}

/// The caller and their same-game friends: whose profiles the caller may see.
fn visible(state: &MsdkState, call: &Call) -> BTreeSet<String> {
    let mut visible: BTreeSet<String> = state
        .friends_of(call.appid(), &call.openid)
        .into_iter()
        .collect();
    visible.insert(call.openid.clone());
    visible
}

/// Profiles of the caller and their friends among `openids` (strangers are left out). Each
/// entry carries `country` and `language` as the table's WXInfo does (the example has them at
/// the top level), and `provice` is spelled as documented. `privilege` is the first openid's,
/// when it is visible.
fn wxprofile(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let openids = call.req_list("openids")?;
    let visible = visible(state, call);
    let mut seen = BTreeSet::new();
    let users: Vec<&MsdkUser> = openids
        .iter()
        .filter(|openid| visible.contains(*openid) && seen.insert(openid.as_str()))
        .filter_map(|openid| state.user(call.appid(), openid))
        .collect();
    let lists: Vec<Value> = users
        .iter()
        .map(|user| {
            let profile = &user.wechat;
            json!({
                "nickName": profile.nickname,
                "sex": profile.sex,
                "picture": call.url(&profile.headimgurl),
                "provice": profile.province,
                "city": profile.city,
                "openid": user.openid,
                "country": profile.country,
                "language": profile.language,
            })
        })
        .collect();
    let privilege = users
        .first()
        .filter(|user| user.openid == openids[0])
        .map(|user| user.wechat.privilege.clone())
        .unwrap_or_default();
    Ok(object([
        ("lists", json!(lists)),
        ("privilege", json!(privilege)),
    ]))
}

fn wxfriends(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    Ok(object([(
        "openids",
        json!(state.friends_of(call.appid(), &call.openid)),
    )]))
}

/// The caller's own profile. `sex` is a string here (an int in wxprofile), and the avatar ends
/// in `/0` (the original size) as in the seed's example.
fn wxuserinfo(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let user = caller(state, call)?;
    let profile = &user.wechat;
    let picture = if profile.headimgurl.is_empty() {
        String::new()
    } else {
        call.url(&format!("{}/0", profile.headimgurl))
    };
    Ok(object([
        ("nickname", json!(profile.nickname)),
        ("picture", json!(picture)),
        ("province", json!(profile.province)),
        ("city", json!(profile.city)),
        ("country", json!(profile.country)),
        ("sex", json!(profile.sex.to_string())),
        ("unionid", json!(profile.unionid)),
        ("privilege", json!(profile.privilege)),
        ("language", json!(profile.language)),
        ("gpsCity", json!(profile.gps_city)),
        ("openid", json!(user.openid)),
    ]))
}

fn group<'a>(
    state: &'a mut MsdkState,
    call: &Call,
    groupid: &str,
) -> Result<&'a mut WechatGroup, MsdkError> {
    state
        .wechat
        .get_mut(call.appid())
        .and_then(|groups| groups.groups.get_mut(groupid))
        .ok_or(MsdkError::WechatGroupNotFound)
}

/// Which of the comma-separated `openidlist` are members (in the order asked, each once), and
/// the member count.
fn wxget_groupinfo(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let groupid = call.req_str("groupid")?;
    let asked = call.req_str("openidlist")?;
    let group = group(state, call, &groupid)?;
    let mut seen = BTreeSet::new();
    let members: Vec<&str> = asked
        .split(',')
        .map(str::trim)
        .filter(|openid| {
            !openid.is_empty() && group.members.iter().any(|m| m == openid) && seen.insert(*openid)
        })
        .collect();
    Ok(object([
        ("platCode", json!("")),
        ("openidlist", json!(members.join(","))),
        ("membercount", json!(group.members.len())),
    ]))
}

/// Unbinds (forgets) the guild's WeChat group.
fn wxunlink_group(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let groupid = call.req_str("groupid")?;
    group(state, call, &groupid)?;
    if let Some(groups) = state.wechat.get_mut(call.appid()) {
        groups.groups.remove(&groupid);
    }
    Ok(Map::new())
}

/// `op_type` 0: does the guild have a group; 1: is the caller in it.
fn wxget_groupstatus(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let groupid = call.req_str("groupid")?;
    let op_type = call.opt_int("op_type")?;
    let group = state
        .wechat
        .get(call.appid())
        .and_then(|groups| groups.groups.get(&groupid));
    let has = match op_type {
        Some(0) => group.is_some(),
        Some(1) => group.is_some_and(|group| group.members.contains(&call.openid)),
        _ => return Err(MsdkError::Invalid("op_type")),
    };
    Ok(object([("is_has", json!(i32::from(has)))]))
}

/// Records a message to the guild's group from one of its members. `reqBody` may also come as
/// a JSON string holding the object (its type is "json").
fn wxsend_groupmsg(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let request = match call.body.get("reqBody") {
        Some(Value::Object(request)) => request.clone(),
        Some(Value::String(text)) => match serde_json::from_str(text) {
            Ok(Value::Object(request)) => request,
            _ => return Err(MsdkError::Invalid("reqBody")),
        },
        _ => return Err(MsdkError::Invalid("reqBody")),
    };
    let msg_type = opt_int(&request, "msg_type", "reqBody.msg_type")?
        .filter(|t| matches!(t, 1 | 2))
        .ok_or(MsdkError::Invalid("reqBody.msg_type"))?;
    opt_int(&request, "sub_type", "reqBody.sub_type")?
        .filter(|t| (1..=4).contains(t))
        .ok_or(MsdkError::Invalid("reqBody.sub_type"))?;
    opt_str(&request, "appid", "reqBody.appid")?;
    let groupid = req_str(&request, "groupid", "reqBody.groupid")?;
    let Some(Value::Object(open)) = request.get("open") else {
        return Err(MsdkError::Invalid("reqBody.open"));
    };
    req_str(open, "title", "reqBody.open.title")?;
    opt_str(open, "desc", "reqBody.open.desc")?;
    let share_url = opt_str(open, "share_url", "reqBody.open.share_url")?;
    if msg_type == 2 && share_url.is_none() {
        return Err(MsdkError::Invalid("reqBody.open.share_url"));
    }
    if let Some(ext_info) = opt_str(open, "ext_info", "reqBody.open.ext_info")?
        && ext_info.len() > MAX_EXT_INFO_BYTES
    {
        return Err(MsdkError::TooLong {
            field: "reqBody.open.ext_info",
            limit: MAX_EXT_INFO_BYTES,
        });
    }
    opt_str(open, "message_ext", "reqBody.open.message_ext")?;
    opt_str(open, "media_tag_name", "reqBody.open.media_tag_name")?;
    let group = group(state, call, &groupid)?;
    if !group.members.contains(&call.openid) {
        return Err(MsdkError::NotMember);
    }
    group.messages.push(json!({
        "openid": call.openid,
        "reqBody": request,
        "time": call.now,
    }));
    Ok(object([("platCode", json!(""))]))
}

/// A mini-program card to a same-game friend. `env_version` is "0" (release, the default), "1"
/// or "2"; the title's 80 bytes are a recommendation and not enforced.
fn wx_mini_send_msg(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let touser = call.req_str("touser")?;
    let weapp_id = call.req_str("weapp_id")?;
    let env_version = call
        .opt_str("env_version")?
        .unwrap_or_else(|| "0".to_owned());
    if !matches!(env_version.as_str(), "0" | "1" | "2") {
        return Err(MsdkError::Invalid("env_version"));
    }
    let mut message = object([
        ("openid", json!(call.openid)),
        ("touser", json!(touser)),
        ("weapp_id", json!(weapp_id)),
        ("env_version", json!(env_version)),
        ("time", json!(call.now)),
    ]);
    for field in ["path", "pic_url", "title", "media_tag_name"] {
        let value = call.opt_str(field)?.unwrap_or_default();
        message.insert(field.to_owned(), json!(value));
    }
    if !state
        .friends_of(call.appid(), &call.openid)
        .contains(&touser)
    {
        return Err(MsdkError::NotSameGameFriend);
    }
    state
        .wechat
        .entry(call.appid().to_owned())
        .or_default()
        .mini_messages
        .push(Value::Object(message));
    Ok(Map::new())
}
