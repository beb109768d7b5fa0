//! MSDK `profile` module: first-login flags, VIP data, the blue-diamond gift, wifi, achievement
//! and battle reports, Tencent Video memberships, Xinyue levels, WeChat privileges, message
//! subscriptions and elite flags.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::fixture::MsdkUser;
use super::fixture_profile::{MsdkFirstRegistration, MsdkVideoVip, MsdkVipEntry};
use super::{
    Call, Credential, Interface, MsdkError, MsdkState, Scope, UserKey, md5_hex, object, opt_int,
    opt_str,
};
use crate::constant_time_eq;

/// The seed: the video signature's `timestamp` is valid for 15 minutes (server time).
pub(super) const VIDEO_SIGNATURE_WINDOW_SECS: i64 = 900;

/// The `query_vip` flags in answer order, and their union.
const VIP_FLAGS: [i64; 9] = [1, 2, 4, 8, 16, 64, 128, 256, 512];
const VIP_MEMBER: i64 = 1;
const VIP_SUPER: i64 = 16;
const VIP_YELLOW: i64 = 128;

const fn profile(
    path: &'static str,
    scope: Scope,
    credential: Credential,
    success: &'static str,
    handler: super::Handler,
) -> Interface {
    Interface {
        path,
        scope,
        credential,
        message_key: "msg",
        success,
        reports_loss: false,
        handler,
    }
}

pub(super) const INTERFACES: &[Interface] = &[
    profile(
        "/profile/qqget_first_reg",
        Scope::Qq,
        Credential::AccessToken,
        "success",
        first_reg,
    ),
    // The example's msg is empty; so is the sandbox's.
    profile(
        "/profile/query_vip",
        Scope::Qq,
        Credential::AccessToken,
        "",
        query_vip,
    ),
    profile(
        "/profile/get_gift",
        Scope::Qq,
        Credential::PlayerOnly,
        "success",
        get_gift,
    ),
    profile(
        "/profile/get_wifi",
        Scope::Qq,
        Credential::PlayerOnly,
        "success",
        get_wifi,
    ),
    profile(
        "/profile/qqscore_batch",
        Scope::Qq,
        Credential::AccessToken,
        "success",
        qqscore_batch,
    ),
    profile(
        "/profile/qqget_video_vip",
        Scope::Qq,
        Credential::AccessToken,
        "OK",
        video_vip,
    ),
    profile(
        "/profile/get_xinyue_super",
        Scope::Player,
        Credential::QueryGet,
        "success",
        get_xinyue_super,
    ),
    profile(
        "/profile/get_wx_xinyue_vip",
        Scope::Wechat,
        Credential::QueryGet,
        "success.",
        get_wx_xinyue_vip,
    ),
    profile(
        "/profile/wxget_vip",
        Scope::Wechat,
        Credential::AccessToken,
        "success",
        wxget_vip,
    ),
    profile(
        "/profile/wxget_first_reg",
        Scope::Wechat,
        Credential::AccessToken,
        "success",
        first_reg,
    ),
    profile(
        "/profile/wxget_video_vip",
        Scope::Wechat,
        Credential::PlayerOnly,
        "OK",
        video_vip,
    ),
    profile(
        "/profile/wxbattle_report",
        Scope::Wechat,
        Credential::PlayerOnly,
        "success",
        wxbattle_report,
    ),
    profile(
        "/profile/subscribe_getlist",
        Scope::Wechat,
        Credential::AccessToken,
        "success",
        subscribe_getlist,
    ),
    profile(
        "/profile/subscribe_setlist",
        Scope::Wechat,
        Credential::AccessToken,
        "success",
        subscribe_setlist,
    ),
    profile(
        "/profile/subscribe_push",
        Scope::Wechat,
        Credential::SourceOnly,
        "success",
        subscribe_push,
    ),
    profile(
        "/profile/subscribe_clear",
        Scope::Wechat,
        Credential::SourceOnly,
        "success",
        subscribe_clear,
    ),
    profile(
        "/profile/wxget_eliteinfo",
        Scope::Wechat,
        Credential::AccessToken,
        "success",
        wxget_eliteinfo,
    ),
];

/// One app's profile-module state.
#[derive(Default)]
pub(super) struct ProfileState {
    /// openid -> `qqscore_batch` entries, oldest first.
    scores: BTreeMap<String, Vec<Value>>,
    /// `wxbattle_report` reports, oldest first, one per user object.
    battle_reports: Vec<Value>,
    /// msgId -> subscribed openids.
    subscribers: BTreeMap<i64, BTreeSet<String>>,
    /// `subscribe_push` calls, oldest first.
    pushes: Vec<Value>,
}

fn app_state<'a>(state: &'a mut MsdkState, call: &Call) -> &'a mut ProfileState {
    state.profile.entry(call.appid().to_owned()).or_default()
}

/// The admin view of a user's achievement reports.
pub(super) fn scores(state: &MsdkState, appid: &str, openid: &str) -> Value {
    let reports = state
        .profile
        .get(appid)
        .and_then(|profile| profile.scores.get(openid))
        .cloned()
        .unwrap_or_default();
    json!({ "reports": reports })
}

/// The admin view of an app's battle reports.
pub(super) fn battle_reports(state: &MsdkState, appid: &str) -> Value {
    let reports = state
        .profile
        .get(appid)
        .map(|profile| profile.battle_reports.clone())
        .unwrap_or_default();
    json!({ "reports": reports })
}

/// The admin view of an app's subscriptions (per configured message) and pushes.
pub(super) fn subscriptions(state: &MsdkState, appid: &str) -> Value {
    let profile = state.profile.get(appid);
    let messages: Vec<Value> = state
        .apps
        .get(appid)
        .map(|app| app.subscribe_messages.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|message| {
            let subscribers: Vec<&String> = profile
                .and_then(|p| p.subscribers.get(&message.id))
                .map(|set| set.iter().collect())
                .unwrap_or_default();
            json!({"id": message.id, "title": message.title, "subscribers": subscribers})
        })
        .collect();
    let pushes = profile.map(|p| p.pushes.clone()).unwrap_or_default();
    json!({ "messages": messages, "pushes": pushes })
}

/// The caller's own record; authentication already found it.
fn caller<'a>(state: &'a MsdkState, call: &Call) -> Result<&'a MsdkUser, MsdkError> {
    state
        .user(call.appid(), &call.openid)
        .ok_or(MsdkError::Invalid("openid"))
}

fn digit(set: bool) -> &'static str {
    if set { "1" } else { "0" }
}

/// `qqget_first_reg` and `wxget_first_reg`: the flags as "1"/"0" strings.
fn first_reg(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let user = caller(state, call)?;
    let flags: MsdkFirstRegistration = if call.app.platform == super::MsdkPlatform::Wechat {
        user.wechat.first_registration
    } else {
        user.qq.first_registration
    };
    Ok(object([
        ("need_pop", json!(digit(flags.need_pop))),
        ("realname_flag", json!(digit(flags.realname))),
        ("mobile_flag", json!(digit(flags.mobile))),
    ]))
}

/// One `list` entry per requested bit, in flag order. Entries of the fixture win; flags 1, 16
/// and 128 otherwise come from the memberships `qqprofile` and `qqfriends_vip` answer.
fn query_vip(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let mask = call
        .opt_int("vip")?
        .filter(|mask| *mask > 0 && mask & !VIP_FLAGS.iter().sum::<i64>() == 0)
        .ok_or(MsdkError::Invalid("vip"))?;
    let user = caller(state, call)?;
    let qq = &user.qq;
    let list: Vec<Value> = VIP_FLAGS
        .iter()
        .filter(|flag| mask & **flag != 0)
        .map(|&flag| {
            let entry = qq
                .vip
                .iter()
                .find(|entry| entry.flag == flag)
                .copied()
                .unwrap_or_else(|| {
                    let mut entry = MsdkVipEntry {
                        flag,
                        ..MsdkVipEntry::default()
                    };
                    match flag {
                        VIP_MEMBER => {
                            entry.isvip = i32::from(qq.qq_vip.active(call.now));
                            entry.year = i32::from(qq.qq_year_vip.active(call.now));
                            entry.level = if entry.isvip == 1 { qq.qq_vip_level } else { 0 };
                        }
                        VIP_SUPER => entry.isvip = i32::from(qq.qq_svip.active(call.now)),
                        VIP_YELLOW => {
                            entry.isvip = i32::from(qq.yellow_vip);
                            entry.year = i32::from(qq.yellow_year_vip);
                            entry.level = qq.yellow_vip_level;
                        }
                        _ => {}
                    }
                    entry
                });
            json!({
                "flag": flag,
                "isvip": entry.isvip,
                "year": entry.year,
                "level": entry.level,
                "luxury": entry.luxury,
            })
        })
        .collect();
    Ok(object([("list", json!(list))]))
}

/// Hands out the user's blue-diamond gifts and deletes them: a second claim finds an empty
/// `GiftPackList`.
fn get_gift(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let record = state
        .users
        .get_mut(&UserKey::new(call.appid(), &call.openid))
        .ok_or(MsdkError::Invalid("openid"))?;
    let gifts = std::mem::take(&mut record.user.qq.blue_gifts);
    let list: Vec<Value> = gifts
        .iter()
        .map(|gift| json!({"giftId": gift.gift_id, "giftCount": gift.gift_count.to_string()}))
        .collect();
    Ok(object([("GiftPackList", json!(list))]))
}

fn get_wifi(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let user = caller(state, call)?;
    Ok(object([("wifiVip", json!(i32::from(user.qq.wifi_vip)))]))
}

/// Stores every `param` entry (all or none). `type` 1 is an overwrite report, anything else an
/// incremental one; `bcover` is 0 (ranking data) or 1; `expires` an integer (0 = never).
fn qqscore_batch(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    if !call.app.score_reporting {
        return Err(MsdkError::NoPermission);
    }
    let Some(Value::Array(params)) = call.body.get("param") else {
        return Err(MsdkError::Invalid("param"));
    };
    if params.is_empty() {
        return Err(MsdkError::Invalid("param"));
    }
    let mut reports = Vec::with_capacity(params.len());
    for param in params {
        let Value::Object(param) = param else {
            return Err(MsdkError::Invalid("param"));
        };
        let data = opt_str(param, "data", "param.data")?.ok_or(MsdkError::Invalid("param.data"))?;
        let expires = match opt_str(param, "expires", "param.expires")? {
            None => 0,
            Some(text) => text
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|expires| *expires >= 0)
                .ok_or(MsdkError::Invalid("param.expires"))?,
        };
        let kind = opt_int(param, "type", "param.type")?.unwrap_or(0);
        let bcover = opt_int(param, "bcover", "param.bcover")?.unwrap_or(1);
        if !matches!(bcover, 0 | 1) {
            return Err(MsdkError::Invalid("param.bcover"));
        }
        reports.push(json!({
            "data": data,
            "expires": expires.to_string(),
            "type": kind,
            "mode": if kind == 1 { "overwrite" } else { "increment" },
            "bcover": bcover,
            "time": call.now,
        }));
    }
    app_state(state, call)
        .scores
        .entry(call.openid.clone())
        .or_default()
        .extend(reports);
    // The example's answer has an undocumented "type":0; so does the sandbox's.
    Ok(object([("type", json!(0))]))
}

/// `qqget_video_vip` and `wxget_video_vip`: body `channel_id`, `timestamp`, `signature`, where
/// signature = lowercase hex md5(str(channel_id) + channel_secret + openid [+ accessToken, QQ
/// only] + str(timestamp)).
fn video_vip(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let channel_id = call
        .opt_int("channel_id")?
        .ok_or(MsdkError::Invalid("channel_id"))?;
    let timestamp = call
        .opt_int("timestamp")?
        .ok_or(MsdkError::Invalid("timestamp"))?;
    let signature = call.req_str("signature")?;
    let channel = call
        .app
        .video_channels
        .iter()
        .find(|channel| channel.channel_id == channel_id)
        .ok_or(MsdkError::UnknownVideoChannel)?;
    if call.now.abs_diff(timestamp) > VIDEO_SIGNATURE_WINDOW_SECS.unsigned_abs() {
        return Err(MsdkError::VideoTimestampExpired);
    }
    let wechat = call.app.platform == super::MsdkPlatform::Wechat;
    let token = if wechat {
        String::new()
    } else {
        call.req_str("accessToken")?
    };
    let expected = md5_hex(&[
        channel_id.to_string().as_bytes(),
        channel.channel_secret.as_bytes(),
        call.openid.as_bytes(),
        token.as_bytes(),
        timestamp.to_string().as_bytes(),
    ]);
    if !constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
        return Err(MsdkError::VideoSignatureMismatch);
    }
    let user = caller(state, call)?;
    let vip: &MsdkVideoVip = if wechat {
        &user.wechat.video_vip
    } else {
        &user.qq.video_vip
    };
    Ok(object([
        ("annual_beg", json!(vip.annual_beg)),
        ("annual_end", json!(vip.annual_end)),
        ("beg_time", json!(vip.beg_time)),
        ("end_time", json!(vip.end_time)),
        ("is_annual", json!(i32::from(vip.annual_end > call.now))),
        ("service_type", json!(vip.service_type)),
        ("status", json!(i32::from(vip.end_time > call.now))),
        ("vip_lv", json!(vip.vip_lv)),
        ("vip_score", json!(vip.vip_score)),
    ]))
}

/// GET, parameters in the URL. `access_type` 1 (Mobile QQ login) or 2 (WeChat login) must be
/// the app's platform; `trace_id` is echoed.
fn get_xinyue_super(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let expected = if call.app.platform == super::MsdkPlatform::Wechat {
        2
    } else {
        1
    };
    if call.opt_int("access_type")? != Some(expected) {
        return Err(MsdkError::Invalid("access_type"));
    }
    let trace_id = call.opt_str("trace_id")?.unwrap_or_default();
    let user = caller(state, call)?;
    let level = if expected == 2 {
        user.wechat.xinyue_super
    } else {
        user.qq.xinyue_super
    };
    Ok(object([
        ("openid", json!(call.openid)),
        ("ilevel", json!(level)),
        ("trace_id", json!(trace_id)),
    ]))
}

/// GET, parameters in the URL; `serial` is echoed.
fn get_wx_xinyue_vip(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let serial = call.opt_str("serial")?.unwrap_or_default();
    let user = caller(state, call)?;
    Ok(object([
        ("ilevel", json!(user.wechat.xinyue_vip)),
        ("serial", json!(serial)),
    ]))
}

/// `json` is `{"optype":1}` (an object, or a JSON string of one): the caller first, then their
/// same-game friends.
fn wxget_vip(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let request = json_object(call.body.get("json"), "json")?;
    if opt_int(&request, "optype", "json.optype")? != Some(1) {
        return Err(MsdkError::Invalid("json.optype"));
    }
    let mut openids = vec![call.openid.clone()];
    openids.extend(state.friends_of(call.appid(), &call.openid));
    let vipinfo: Vec<Value> = openids
        .iter()
        .filter_map(|openid| state.user(call.appid(), openid))
        .map(|user| {
            json!({
                "openid": user.openid,
                "level": user.wechat.vip_level,
                "score": user.wechat.vip_score,
                "nick": format!("VIP{}", user.wechat.vip_level),
                // "currently unusable, ignore them".
                "logo_url": "",
                "logo_faceurl": "",
            })
        })
        .collect();
    Ok(object([("data", json!({ "vipinfo": vipinfo }))]))
}

/// An object field, or a JSON string holding one.
fn json_object(
    value: Option<&Value>,
    label: &'static str,
) -> Result<Map<String, Value>, MsdkError> {
    match value {
        Some(Value::Object(object)) => Ok(object.clone()),
        Some(Value::String(text)) => match serde_json::from_str(text) {
            Ok(Value::Object(object)) => Ok(object),
            _ => Err(MsdkError::Invalid(label)),
        },
        _ => Err(MsdkError::Invalid(label)),
    }
}

/// `json` is one user object or an array of them (or a JSON string of either). Each needs
/// `baseinfo.platid` (0 or 1); the documented fields must have their documented types. Every
/// object is stored (all or none).
fn wxbattle_report(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let json = match call.body.get("json") {
        Some(Value::String(text)) => {
            serde_json::from_str(text).map_err(|_| MsdkError::Invalid("json"))?
        }
        Some(value) => value.clone(),
        None => return Err(MsdkError::Invalid("json")),
    };
    let reports = match json {
        Value::Array(items) if !items.is_empty() => items,
        Value::Object(_) => vec![json],
        _ => return Err(MsdkError::Invalid("json")),
    };
    for report in &reports {
        check_battle_report(report)?;
    }
    let stored = &mut app_state(state, call).battle_reports;
    for report in reports {
        stored.push(json!({"openid": call.openid, "report": report, "time": call.now}));
    }
    Ok(Map::new())
}

fn check_battle_report(report: &Value) -> Result<(), MsdkError> {
    let Value::Object(report) = report else {
        return Err(MsdkError::Invalid("json"));
    };
    let Some(Value::Object(base)) = report.get("baseinfo") else {
        return Err(MsdkError::Invalid("json.baseinfo"));
    };
    match opt_int(base, "platid", "json.baseinfo.platid")? {
        Some(0 | 1) => {}
        _ => return Err(MsdkError::Invalid("json.baseinfo.platid")),
    }
    opt_str(base, "gamename", "json.baseinfo.gamename")?;
    opt_str(base, "partitionid", "json.baseinfo.partitionid")?;
    opt_str(base, "roleid", "json.baseinfo.roleid")?;
    opt_int(base, "level", "json.baseinfo.level")?;
    match report.get("battleinfo") {
        None | Some(Value::Null) => {}
        Some(Value::Object(battle)) => {
            opt_int(battle, "score", "json.battleinfo.score")?;
            if !matches!(
                battle.get("iswin"),
                None | Some(Value::Bool(_) | Value::Null)
            ) {
                return Err(MsdkError::Invalid("json.battleinfo.iswin"));
            }
        }
        Some(_) => return Err(MsdkError::Invalid("json.battleinfo")),
    }
    if !matches!(
        report.get("userdefined"),
        None | Some(Value::Object(_) | Value::Null)
    ) {
        return Err(MsdkError::Invalid("json.userdefined"));
    }
    Ok(())
}

/// Every message the app offers, with the caller's status; no paging (`more` is false).
fn subscribe_getlist(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let subscribers = state
        .profile
        .get(call.appid())
        .map(|profile| &profile.subscribers);
    let list: Vec<Value> = call
        .app
        .subscribe_messages
        .iter()
        .map(|message| {
            let status = subscribers
                .and_then(|s| s.get(&message.id))
                .is_some_and(|set| set.contains(&call.openid));
            json!({"id": message.id, "title": message.title, "status": status})
        })
        .collect();
    Ok(object([
        ("subscribeList", json!(list)),
        ("more", json!(false)),
    ]))
}

/// A message id the app offers.
fn message_id(call: &Call, value: Option<&Value>) -> Result<i64, MsdkError> {
    let id = match value {
        Some(Value::Number(number)) => number.as_i64(),
        Some(Value::String(text)) => text.trim().parse().ok(),
        _ => None,
    }
    .ok_or(MsdkError::Invalid("msgId"))?;
    if call.app.subscribe_messages.iter().any(|m| m.id == id) {
        Ok(id)
    } else {
        Err(MsdkError::UnknownSubscribeMessage)
    }
}

/// `msgId` a list of ids (a single id is taken as a list of one), `opType` 0 subscribe,
/// 1 cancel. All ids must be offered by the app, else nothing changes.
fn subscribe_setlist(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let ids: Vec<i64> = match call.body.get("msgId") {
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|item| message_id(call, Some(item)))
            .collect::<Result<_, _>>()?,
        Some(Value::Array(_)) | None => return Err(MsdkError::Invalid("msgId")),
        single => vec![message_id(call, single)?],
    };
    let subscribe = match call.opt_int("opType")? {
        Some(0) => true,
        Some(1) => false,
        _ => return Err(MsdkError::Invalid("opType")),
    };
    let profile = app_state(state, call);
    for id in ids {
        let set = profile.subscribers.entry(id).or_default();
        if subscribe {
            set.insert(call.openid.clone());
        } else {
            set.remove(&call.openid);
        }
    }
    Ok(Map::new())
}

/// Pushes the message to everyone subscribed to it: recorded with the subscribers it reached.
fn subscribe_push(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let id = message_id(call, call.body.get("msgId"))?;
    let title = call
        .app
        .subscribe_messages
        .iter()
        .find(|m| m.id == id)
        .map(|m| m.title.clone())
        .unwrap_or_default();
    let profile = app_state(state, call);
    let subscribers: Vec<String> = profile
        .subscribers
        .get(&id)
        .map(|set| set.iter().cloned().collect())
        .unwrap_or_default();
    profile.pushes.push(json!({
        "msgId": id,
        "title": title,
        "openid": call.openid,
        "subscribers": subscribers,
        "time": call.now,
    }));
    Ok(Map::new())
}

/// Removes every subscriber of the message.
fn subscribe_clear(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let id = message_id(call, call.body.get("msgId"))?;
    app_state(state, call).subscribers.remove(&id);
    Ok(Map::new())
}

fn wxget_eliteinfo(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let user = caller(state, call)?;
    Ok(object([(
        "data",
        json!({
            "wx_elite": i32::from(user.wechat.wx_elite),
            "game_elite": i32::from(user.wechat.game_elite),
        }),
    )]))
}

#[cfg(test)]
mod tests {
    use super::*;

    // python3 -c 'import hashlib; print(hashlib.md5(b"30012" b"demo-video-channel-secret"
    //   b"A3284A812ECA15269F85AE1C2D94EB37" b"933FE8C9AB9C585D7EABD04373B7155F"
    //   b"1700000000").hexdigest())'
    // python3 -c 'import hashlib; print(hashlib.md5(b"30012" b"demo-video-channel-secret"
    //   b"oGRTijiaT-XrbyXKozckdNHFgPyc" b"1700000000").hexdigest())'
    #[test]
    fn video_signature_vectors() {
        assert_eq!(
            md5_hex(&[
                b"30012",
                b"demo-video-channel-secret",
                b"A3284A812ECA15269F85AE1C2D94EB37",
                b"933FE8C9AB9C585D7EABD04373B7155F",
                b"1700000000",
            ]),
            "a011577e814490d3c41a88f34a82de7e"
        );
        assert_eq!(
            md5_hex(&[
                b"30012",
                b"demo-video-channel-secret",
                b"oGRTijiaT-XrbyXKozckdNHFgPyc",
                b"1700000000",
            ]),
            "c03c6231c9534b50574d926010078bca"
        );
    }

    #[test]
    fn vip_flags_cover_the_documented_bits() {
        assert_eq!(VIP_FLAGS.iter().sum::<i64>(), 0x3df);
    }

    #[test]
    fn battle_reports_are_checked() {
        assert!(check_battle_report(&json!({"baseinfo": {"platid": 0}})).is_ok());
        assert!(check_battle_report(&json!({"baseinfo": {"platid": "1"}})).is_ok());
        for bad in [
            json!({}),
            json!({"baseinfo": {"platid": 2}}),
            json!({"baseinfo": {"platid": 0, "level": "high"}}),
            json!({"baseinfo": {"platid": 0}, "battleinfo": {"iswin": "yes"}}),
            json!({"baseinfo": {"platid": 0}, "userdefined": []}),
            json!([1]),
        ] {
            assert!(check_battle_report(&bad).is_err(), "{bad}");
        }
    }
}
