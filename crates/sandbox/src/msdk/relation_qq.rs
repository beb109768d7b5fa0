//! MSDK `relation` module, Mobile QQ side: profiles, friends, VIP data, and guild ↔ QQ group
//! bindings (the `...v2` interfaces, `get_groupcode`, `send_groupmsg`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::fixture::{MsdkQqGroup, MsdkUser};
use super::{
    Call, Credential, Interface, MsdkError, MsdkState, Scope, empty_data, md5_hex, object,
};

/// Documented limits.
const MAX_VIP_OPENIDS: usize = 49;
const MAX_UNREG_FRIENDS: i64 = 20;
const MAX_GROUP_MSG_TITLE_BYTES: usize = 45;
const MAX_GROUP_MSG_DESC_BYTES: usize = 60;
/// `send_groupmsg`'s pf when the caller sends none (the seed: "qqqun" if unknown).
const DEFAULT_GROUP_MSG_PF: &str = "qqqun";
/// Group numbers of groups `createbind_groupv2` creates start here (the fixture's are lower).
pub(super) const FIRST_CREATED_GC: u64 = 600_000_001;
/// China Standard Time, the day boundary of the once-a-day reminder.
const CHINA_UTC_OFFSET_SECS: i64 = 8 * 3600;

const fn qq(
    path: &'static str,
    message_key: &'static str,
    reports_loss: bool,
    handler: super::Handler,
) -> Interface {
    Interface {
        path,
        scope: Scope::Qq,
        credential: Credential::AccessToken,
        message_key,
        success: "success",
        reports_loss,
        handler,
    }
}

pub(super) const INTERFACES: &[Interface] = &[
    qq("/relation/qqprofile", "msg", true, qqprofile),
    qq("/relation/qqfriends_detail", "msg", true, qqfriends_detail),
    qq("/relation/qq_unreg_friends", "msg", false, qq_unreg_friends),
    qq(
        "/relation/qqstrange_profile",
        "msg",
        true,
        qqstrange_profile,
    ),
    qq("/relation/qqfriends_vip", "msg", true, qqfriends_vip),
    qq(
        "/relation/get_vip_rich_info",
        "msg",
        true,
        get_vip_rich_info,
    ),
    qq(
        "/relation/createbind_groupv2",
        "message",
        false,
        createbind_group,
    ),
    qq("/relation/get_groupinfov2", "message", false, get_groupinfo),
    qq("/relation/join_groupv2", "message", false, join_group),
    qq("/relation/unlink_groupv2", "message", false, unlink_group),
    qq(
        "/relation/get_group_listv2",
        "message",
        false,
        get_group_list,
    ),
    qq(
        "/relation/bind_existing_groupv2",
        "message",
        false,
        bind_existing_group,
    ),
    qq(
        "/relation/remind_leader_bindv2",
        "message",
        false,
        remind_leader_bind,
    ),
    qq(
        "/relation/query_bind_unionv2",
        "message",
        false,
        query_bind_union,
    ),
    qq("/relation/get_groupcode", "message", false, get_groupcode),
    qq("/relation/send_groupmsg", "message", true, send_groupmsg),
];

fn is_lost(call: &Call) -> Value {
    json!(if call.degraded { "1" } else { "0" })
}

fn flag(set: bool) -> Value {
    json!(i32::from(set))
}

fn flag_text(set: bool) -> Value {
    json!(if set { "1" } else { "0" })
}

/// The caller's own record; authentication already found it.
fn caller<'a>(state: &'a MsdkState, call: &Call) -> Result<&'a MsdkUser, MsdkError> {
    state
        .user(call.appid(), &call.openid)
        .ok_or(MsdkError::QqTokenInvalid)
}

fn picture(call: &Call, user: &MsdkUser, size: &str) -> String {
    call.url(&format!("{}/{size}", user.qq.avatar_url))
}

fn picture_100(call: &Call, user: &MsdkUser) -> String {
    if user.qq.has_avatar_100 {
        picture(call, user, "100")
    } else {
        String::new()
    }
}

/// A degraded answer keeps what identifies the user (nickname, gender, avatars) and loses what
/// comes from the membership services (yellow diamond).
fn qqprofile(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let user = caller(state, call)?;
    let profile = &user.qq;
    let keep = !call.degraded;
    Ok(object([
        ("nickName", json!(profile.nickname)),
        ("gender", json!(profile.gender.text())),
        ("picture40", json!(picture(call, user, "40"))),
        ("picture100", json!(picture_100(call, user))),
        ("yellow_vip", flag(keep && profile.yellow_vip)),
        (
            "yellow_vip_level",
            json!(if keep { profile.yellow_vip_level } else { 0 }),
        ),
        ("yellow_year_vip", flag(keep && profile.yellow_year_vip)),
        ("is_lost", is_lost(call)),
    ]))
}

fn friend_entry(call: &Call, user: &MsdkUser) -> Value {
    json!({
        "openid": user.openid,
        "nickName": user.qq.nickname,
        "gender": user.qq.gender.text(),
        // The seed's example ends the URL with "/" for the caller to append "40" or "100".
        "figureurl_qq": call.url(&format!("{}/", user.qq.avatar_url)),
    })
}

/// `flag` 2 puts the caller first in the list; 1, any other value or none leaves them out.
/// Close friends (when `closefriends_flag` is 1) go both where the table puts them (top-level
/// `closefriend_lists`) and where the example does (`extinfo.closefriend_lists`). Degraded:
/// empty lists.
fn qqfriends_detail(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let include_self = call.opt_int("flag")? == Some(2);
    let close_wanted = call.opt_int("closefriends_flag")? == Some(1);
    let me = caller(state, call)?;
    let friends = state.friends_of(call.appid(), &call.openid);
    let mut lists = Vec::new();
    let mut close = Vec::new();
    if !call.degraded {
        if include_self {
            lists.push(friend_entry(call, me));
        }
        for openid in &friends {
            if let Some(friend) = state.user(call.appid(), openid) {
                lists.push(friend_entry(call, friend));
            }
        }
        close = me
            .close_friends
            .iter()
            .filter(|openid| friends.contains(openid))
            .cloned()
            .collect();
    }
    let mut answer = object([("lists", json!(lists)), ("is_lost", is_lost(call))]);
    if close_wanted {
        answer.insert("extinfo".to_owned(), json!({ "closefriend_lists": close }));
        answer.insert("closefriend_lists".to_owned(), json!(close));
    } else {
        answer.insert("extinfo".to_owned(), json!({}));
    }
    Ok(answer)
}

/// `count` defaults to 20 and may not exceed it. The seed allows the interface only to games that
/// report achievements (`score_reporting` of the app).
fn qq_unreg_friends(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    if !call.app.score_reporting {
        return Err(MsdkError::NoPermission);
    }
    let count = call.opt_int("count")?.unwrap_or(MAX_UNREG_FRIENDS);
    if count > MAX_UNREG_FRIENDS {
        return Err(MsdkError::TooMany {
            field: "count",
            limit: 20,
        });
    }
    let count = usize::try_from(count)
        .ok()
        .filter(|&count| count > 0)
        .ok_or(MsdkError::Invalid("count"))?;
    let friends: Vec<Value> = caller(state, call)?
        .unregistered_friends
        .iter()
        .take(count)
        .map(|friend| {
            json!({
                "openid": friend.openid,
                "nick_name": friend.nick_name,
                "head_img_url": call.url(&friend.head_img_url),
            })
        })
        .collect();
    Ok(object([("friends", json!(friends))]))
}

/// Players of the app among `vcopenid` (friends or not); other openids are left out. The list
/// is `list` as the table names it (the example shows `lists`). Degraded: an empty list.
fn qqstrange_profile(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let wanted = call.req_list("vcopenid")?;
    let mut seen = BTreeSet::new();
    let list: Vec<Value> = wanted
        .iter()
        .filter(|openid| !call.degraded && seen.insert(openid.as_str()))
        .filter_map(|openid| state.user(call.appid(), openid))
        .map(|user| {
            json!({
                "openid": user.openid,
                "gender": user.qq.gender.digit(),
                "nickName": user.qq.nickname,
                "qzonepicture50": call.url(&format!("{}/50", user.qq.qzone_avatar_url)),
                "qqpicture40": picture(call, user, "40"),
                "qqpicture100": picture_100(call, user),
                "qqpicture": call.url(&user.qq.avatar_url),
            })
        })
        .collect();
    Ok(object([("list", json!(list)), ("is_lost", is_lost(call))]))
}

/// At most 49 `fopenids`; `flags` is a comma-separated subset of `qq_vip`, `qq_svip`, and each
/// flag adds its fields (`qq_vip`: is_qq_vip, qq_vip_level, is_qq_year_vip; `qq_svip`:
/// is_qq_svip). Openids that are not QQ users of the app, and every openid when degraded, come
/// back with zeros.
fn qqfriends_vip(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let fopenids = call.req_list("fopenids")?;
    if fopenids.len() > MAX_VIP_OPENIDS {
        return Err(MsdkError::TooMany {
            field: "fopenids",
            limit: MAX_VIP_OPENIDS,
        });
    }
    let flags = call.req_str("flags")?;
    let (mut vip, mut svip) = (false, false);
    for name in flags.split(',').map(str::trim) {
        match name {
            "qq_vip" => vip = true,
            "qq_svip" => svip = true,
            _ => return Err(MsdkError::Invalid("flags")),
        }
    }
    call.opt_str("pf")?;
    call.opt_str("userip")?;
    let lists: Vec<Value> = fopenids
        .iter()
        .map(|openid| {
            let profile = state
                .user(call.appid(), openid)
                .filter(|_| !call.degraded)
                .map(|user| user.qq.clone())
                .unwrap_or_default();
            let mut entry = object([("openid", json!(openid))]);
            if vip {
                let active = profile.qq_vip.active(call.now);
                entry.insert("is_qq_vip".to_owned(), flag(active));
                entry.insert(
                    "qq_vip_level".to_owned(),
                    json!(if active { profile.qq_vip_level } else { 0 }),
                );
                entry.insert(
                    "is_qq_year_vip".to_owned(),
                    flag(profile.qq_year_vip.active(call.now)),
                );
            }
            if svip {
                entry.insert(
                    "is_qq_svip".to_owned(),
                    flag(profile.qq_svip.active(call.now)),
                );
            }
            Value::Object(entry)
        })
        .collect();
    Ok(object([
        ("lists", json!(lists)),
        ("is_lost", is_lost(call)),
    ]))
}

/// Every value a string, as documented. Degraded: all "0".
fn get_vip_rich_info(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let profile = if call.degraded {
        Default::default()
    } else {
        caller(state, call)?.qq.clone()
    };
    let text = |value: i64| json!(value.to_string());
    Ok(object([
        ("is_lost", is_lost(call)),
        ("is_qq_vip", flag_text(profile.qq_vip.active(call.now))),
        ("qq_vip_start", text(profile.qq_vip.start)),
        ("qq_vip_end", text(profile.qq_vip.end)),
        ("qq_year_vip_start", text(profile.qq_year_vip.start)),
        ("qq_year_vip_end", text(profile.qq_year_vip.end)),
        ("qq_svip_start", text(profile.qq_svip.start)),
        ("qq_svip_end", text(profile.qq_svip.end)),
        (
            "is_qq_year_vip",
            flag_text(profile.qq_year_vip.active(call.now)),
        ),
        ("is_svip", flag_text(profile.qq_svip.active(call.now))),
    ]))
}

// ---- guild <-> QQ group bindings -------------------------------------------------------------

/// A guild (or team, or event: `type` 0, 1, 2) as the bindings know it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct UnionKey {
    pub(super) guild_id: String,
    pub(super) zone_id: String,
    pub(super) kind: String,
}

pub(super) struct QqGroup {
    pub(super) group_name: String,
    pub(super) owner: String,
    pub(super) admins: Vec<String>,
    pub(super) members: Vec<String>,
    /// Group business cards set through `user_label`.
    pub(super) cards: BTreeMap<String, String>,
    pub(super) group_key: String,
    pub(super) group_openid: String,
    pub(super) messages: Vec<Value>,
}

impl QqGroup {
    fn new(appid: &str, gc: &str, group_name: String, owner: String) -> Self {
        Self {
            group_name,
            owner,
            admins: Vec::new(),
            members: Vec::new(),
            cards: BTreeMap::new(),
            // Deterministic, so that tests can predict them: md5 of appid and gc.
            group_key: md5_hex(&[appid.as_bytes(), b":", gc.as_bytes(), b":key"]),
            group_openid: md5_hex(&[appid.as_bytes(), b":", gc.as_bytes()]).to_ascii_uppercase(),
            messages: Vec::new(),
        }
    }

    /// 1 owner, 2 admin, 3 member, 4 not a member.
    fn relation(&self, openid: &str) -> i32 {
        if self.owner == openid {
            1
        } else if self.admins.iter().any(|a| a == openid) {
            2
        } else if self.members.iter().any(|m| m == openid) {
            3
        } else {
            4
        }
    }
}

pub(super) struct Binding {
    pub(super) union_name: String,
    pub(super) gc: String,
    pub(super) leader: String,
    pub(super) leader_roleid: String,
    pub(super) platid: String,
    pub(super) bound_at: i64,
}

/// One app's QQ groups, bindings and sent reminders.
#[derive(Default)]
pub(super) struct QqGroups {
    /// gc -> group.
    pub(super) groups: BTreeMap<String, QqGroup>,
    pub(super) bindings: BTreeMap<UnionKey, Binding>,
    pub(super) reminders: Vec<Value>,
}

impl QqGroups {
    fn binding_of_group(&self, gc: &str) -> Option<(&UnionKey, &Binding)> {
        self.bindings.iter().find(|(_, binding)| binding.gc == gc)
    }
}

/// Creates or replaces a group as if its owner had created it in QQ (its binding stays).
pub(super) fn put_group(state: &mut MsdkState, group: &MsdkQqGroup) {
    let mut created = QqGroup::new(
        &group.appid,
        &group.gc,
        group.group_name.clone(),
        group.owner.clone(),
    );
    created.admins.clone_from(&group.admins);
    created.members.clone_from(&group.members);
    let groups = state.qq.entry(group.appid.clone()).or_default();
    if let Some(previous) = groups.groups.get(&group.gc) {
        created.messages.clone_from(&previous.messages);
        created.cards.clone_from(&previous.cards);
    }
    groups.groups.insert(group.gc.clone(), created);
}

/// Dissolves a group (as its owner would in QQ); the binding stays, as the seed says, until the
/// leader unbinds or a member's join finds the group gone. False if there is no such group.
pub(super) fn dissolve_group(state: &mut MsdkState, appid: &str, gc: &str) -> bool {
    state
        .qq
        .get_mut(appid)
        .is_some_and(|groups| groups.groups.remove(gc).is_some())
}

/// Makes someone else the leader of a bound guild (a leader transfer in the game). False if the
/// guild is not bound.
pub(super) fn set_leader(state: &mut MsdkState, appid: &str, key: &UnionKey, leader: &str) -> bool {
    match state
        .qq
        .get_mut(appid)
        .and_then(|groups| groups.bindings.get_mut(key))
    {
        Some(binding) => {
            leader.clone_into(&mut binding.leader);
            true
        }
        None => false,
    }
}

/// Forgets every reminder of the app (as if a new day had started); returns how many.
pub(super) fn clear_reminders(state: &mut MsdkState, appid: &str) -> usize {
    state
        .qq
        .get_mut(appid)
        .map_or(0, |groups| std::mem::take(&mut groups.reminders).len())
}

/// The admin view of an app's QQ groups, bindings and reminders.
pub(super) fn snapshot(state: &MsdkState, appid: &str) -> Value {
    let Some(groups) = state.qq.get(appid) else {
        return json!({"qq_groups": [], "bindings": [], "reminders": []});
    };
    let qq_groups: Vec<Value> = groups
        .groups
        .iter()
        .map(|(gc, group)| {
            json!({
                "gc": gc,
                "group_name": group.group_name,
                "owner": group.owner,
                "admins": group.admins,
                "members": group.members,
                "cards": group.cards,
                "group_key": group.group_key,
                "group_openid": group.group_openid,
                "messages": group.messages,
            })
        })
        .collect();
    let bindings: Vec<Value> = groups
        .bindings
        .iter()
        .map(|(key, binding)| {
            json!({
                "guild_id": key.guild_id,
                "zone_id": key.zone_id,
                "type": key.kind,
                "union_name": binding.union_name,
                "gc": binding.gc,
                "leader_openid": binding.leader,
                "leader_roleid": binding.leader_roleid,
                "platid": binding.platid,
                "bound_at": binding.bound_at,
            })
        })
        .collect();
    json!({"qq_groups": qq_groups, "bindings": bindings, "reminders": groups.reminders})
}

/// `type`: 0 guild (also when absent or empty), 1 team, 2 event.
pub(super) fn union_kind(kind: Option<String>) -> Result<String, MsdkError> {
    match kind.as_deref() {
        None => Ok("0".to_owned()),
        Some(kind @ ("0" | "1" | "2")) => Ok(kind.to_owned()),
        Some(_) => Err(MsdkError::Invalid("type")),
    }
}

fn union_key(call: &Call) -> Result<UnionKey, MsdkError> {
    Ok(UnionKey {
        guild_id: call.req_str("guild_id")?,
        zone_id: call.req_str("zone_id")?,
        kind: union_kind(call.opt_str("type")?)?,
    })
}

/// The optional fields of the group interfaces: only their types are checked.
fn optional_fields(call: &Call, fields: &[&'static str]) -> Result<(), MsdkError> {
    for field in fields {
        call.opt_str(field)?;
    }
    Ok(())
}

fn groups_mut<'a>(state: &'a mut MsdkState, call: &Call) -> &'a mut QqGroups {
    state.qq.entry(call.appid().to_owned()).or_default()
}

/// The leader creates a QQ group named after the guild (empty without `guild_name`) and binds
/// it. Refused when the guild is already bound.
fn createbind_group(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let key = union_key(call)?;
    let platid = call.req_str("platid")?;
    let roleid = call.req_str("roleid")?;
    let guild_name = call.opt_str("guild_name")?.unwrap_or_default();
    let label = call.opt_str("user_label")?;
    optional_fields(
        call,
        &[
            "partition",
            "user_zone_id",
            "nick_name",
            "areaid",
            "ip",
            "port",
        ],
    )?;
    if state
        .qq
        .get(call.appid())
        .is_some_and(|groups| groups.bindings.contains_key(&key))
    {
        return Err(MsdkError::GuildAlreadyBound);
    }
    let gc = loop {
        let gc = state.next_gc.to_string();
        state.next_gc += 1;
        if !state
            .qq
            .get(call.appid())
            .is_some_and(|groups| groups.groups.contains_key(&gc))
        {
            break gc;
        }
    };
    let mut group = QqGroup::new(call.appid(), &gc, guild_name.clone(), call.openid.clone());
    if let Some(label) = label {
        group.cards.insert(call.openid.clone(), label);
    }
    let groups = groups_mut(state, call);
    groups.groups.insert(gc.clone(), group);
    groups.bindings.insert(
        key,
        Binding {
            union_name: guild_name.clone(),
            gc: gc.clone(),
            leader: call.openid.clone(),
            leader_roleid: roleid,
            platid,
            bound_at: call.now,
        },
    );
    Ok(object([(
        "data",
        json!({ "gc": gc, "group_name": guild_name }),
    )]))
}

/// The caller's relation to a group bound to a guild.
fn get_groupinfo(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let gc = call.req_str("gc")?;
    let groups = groups_mut(state, call);
    let group = groups.groups.get(&gc).ok_or(MsdkError::GroupNotFound)?;
    if groups.binding_of_group(&gc).is_none() {
        return Err(MsdkError::GroupNotBound);
    }
    Ok(object([(
        "data",
        json!({ "relation": group.relation(&call.openid) }),
    )]))
}

/// A guild member joins the guild's group. If the group was dissolved, the binding goes too
/// (the seed: the join "can no longer find the group ID and unbinds by default").
fn join_group(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let key = union_key(call)?;
    let gc = call.req_str("gc")?;
    call.req_str("platid")?;
    call.req_str("roleid")?;
    let label = call.opt_str("user_label")?;
    optional_fields(
        call,
        &[
            "partition",
            "user_zone_id",
            "nick_name",
            "areaid",
            "ip",
            "port",
        ],
    )?;
    let groups = groups_mut(state, call);
    let binding = groups.bindings.get(&key).ok_or(MsdkError::GuildNotBound)?;
    if binding.gc != gc {
        return Err(MsdkError::GroupMismatch);
    }
    let Some(group) = groups.groups.get_mut(&gc) else {
        groups.bindings.remove(&key);
        return Err(MsdkError::GroupNotFound);
    };
    if group.relation(&call.openid) != 4 {
        return Err(MsdkError::AlreadyMember);
    }
    group.members.push(call.openid.clone());
    if let Some(label) = label {
        group.cards.insert(call.openid.clone(), label);
    }
    Ok(empty_data())
}

/// Only the guild's leader unbinds; the group itself stays (unbound, still the owner's).
fn unlink_group(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let key = union_key(call)?;
    call.req_str("platid")?;
    call.req_str("roleid")?;
    optional_fields(
        call,
        &["guild_name", "user_zone_id", "areaid", "ip", "port"],
    )?;
    let groups = groups_mut(state, call);
    let binding = groups.bindings.get(&key).ok_or(MsdkError::GuildNotBound)?;
    if binding.leader != call.openid {
        return Err(MsdkError::NotLeader);
    }
    groups.bindings.remove(&key);
    Ok(empty_data())
}

/// Every group the caller owns (created), bound or not, by group number.
fn get_group_list(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let list: Vec<Value> = state
        .qq
        .get(call.appid())
        .map(|groups| {
            groups
                .groups
                .iter()
                .filter(|(_, group)| group.owner == call.openid)
                .map(|(gc, group)| json!({ "gc": gc, "group_name": group.group_name }))
                .collect()
        })
        .unwrap_or_default();
    Ok(object([("data", json!({ "group_list": list }))]))
}

/// The leader binds a group they own. The interface has no guild name: the union name is the
/// body's `guild_name` if sent, else empty.
fn bind_existing_group(
    state: &mut MsdkState,
    call: &Call,
) -> Result<Map<String, Value>, MsdkError> {
    let key = union_key(call)?;
    let gc = call.req_str("gc")?;
    let platid = call.req_str("platid")?;
    let roleid = call.req_str("roleid")?;
    let union_name = call.opt_str("guild_name")?.unwrap_or_default();
    optional_fields(
        call,
        &[
            "group_name",
            "partition",
            "user_zone_id",
            "areaid",
            "ip",
            "port",
        ],
    )?;
    let groups = groups_mut(state, call);
    let group = groups.groups.get(&gc).ok_or(MsdkError::GroupNotFound)?;
    if group.owner != call.openid {
        return Err(MsdkError::NotGroupOwner);
    }
    if groups.bindings.contains_key(&key) {
        return Err(MsdkError::GuildAlreadyBound);
    }
    if groups.binding_of_group(&gc).is_some() {
        return Err(MsdkError::GroupAlreadyBound);
    }
    groups.bindings.insert(
        key,
        Binding {
            union_name,
            gc,
            leader: call.openid.clone(),
            leader_roleid: roleid,
            platid,
            bound_at: call.now,
        },
    );
    Ok(empty_data())
}

/// A member reminds the leader to bind the (unbound) guild; once a day per (guild, member),
/// days in China Standard Time. The leader must be another QQ player of the app.
fn remind_leader_bind(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let key = union_key(call)?;
    let platid = call.req_str("platid")?;
    let roleid = call.req_str("roleid")?;
    let rolename = call.opt_str("rolename")?.unwrap_or_default();
    let leader = call.req_str("leaderOpenid")?;
    let leader_roleid = call.req_str("leaderRoleid")?;
    optional_fields(
        call,
        &["user_zone_id", "leaderZoneid", "areaid", "ip", "port"],
    )?;
    if leader == call.openid || state.user(call.appid(), &leader).is_none() {
        return Err(MsdkError::Invalid("leaderOpenid"));
    }
    let day = (call.now + CHINA_UTC_OFFSET_SECS).div_euclid(86_400);
    let groups = groups_mut(state, call);
    if groups.bindings.contains_key(&key) {
        return Err(MsdkError::GuildAlreadyBound);
    }
    let same = |reminder: &Value| {
        reminder["guild_id"] == json!(key.guild_id)
            && reminder["zone_id"] == json!(key.zone_id)
            && reminder["type"] == json!(key.kind)
            && reminder["openid"] == json!(call.openid)
            && reminder["day"] == json!(day)
    };
    if groups.reminders.iter().any(same) {
        return Err(MsdkError::AlreadyReminded);
    }
    groups.reminders.push(json!({
        "guild_id": key.guild_id,
        "zone_id": key.zone_id,
        "type": key.kind,
        "openid": call.openid,
        "roleid": roleid,
        "rolename": rolename,
        "platid": platid,
        "leader_openid": leader,
        "leader_roleid": leader_roleid,
        "day": day,
        "time": call.now,
    }));
    Ok(empty_data())
}

/// The guild bound to a group, matching `type` (0 when absent).
fn query_bind_union(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let gc = call.req_str("gc")?;
    let kind = union_kind(call.opt_str("type")?)?;
    optional_fields(call, &["guild_id", "zone_id"])?;
    let groups = groups_mut(state, call);
    if !groups.groups.contains_key(&gc) {
        return Err(MsdkError::GroupNotFound);
    }
    let (key, binding) = groups
        .binding_of_group(&gc)
        .filter(|(key, _)| key.kind == kind)
        .ok_or(MsdkError::GroupNotBound)?;
    Ok(object([(
        "data",
        json!({ "union_id": key.guild_id, "union_name": binding.union_name }),
    )]))
}

/// The bound group's number, name, key and openid, by guild.
fn get_groupcode(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let key = union_key(call)?;
    let groups = groups_mut(state, call);
    let binding = groups.bindings.get(&key).ok_or(MsdkError::GuildNotBound)?;
    let group = groups
        .groups
        .get(&binding.gc)
        .ok_or(MsdkError::GroupNotFound)?;
    Ok(object([(
        "data",
        json!({
            "gc": binding.gc,
            "group_name": group.group_name,
            "group_key": group.group_key,
            "group_openid": group.group_openid,
        }),
    )]))
}

/// Records a structured message to the group `group_openid` names; the sender must be in the
/// group. Title at most 45 bytes, desc at most 60. Degraded: recorded all the same, with
/// `"is_lost":"1"` (as the seed's example answers).
fn send_groupmsg(state: &mut MsdkState, call: &Call) -> Result<Map<String, Value>, MsdkError> {
    let group_openid = call.req_str("group_openid")?;
    let title = call.req_str("title")?;
    let desc = call.opt_str("desc")?.unwrap_or_default();
    for (field, text, limit) in [
        ("title", &title, MAX_GROUP_MSG_TITLE_BYTES),
        ("desc", &desc, MAX_GROUP_MSG_DESC_BYTES),
    ] {
        if text.len() > limit {
            return Err(MsdkError::TooLong { field, limit });
        }
    }
    let pf = call
        .opt_str("pf")?
        .unwrap_or_else(|| DEFAULT_GROUP_MSG_PF.to_owned());
    let image_url = call.opt_str("image_url")?.unwrap_or_default();
    let redirect_url = call.opt_str("redirect_url")?.unwrap_or_default();
    let param = call.opt_str("param")?.unwrap_or_default();
    let groups = groups_mut(state, call);
    let group = groups
        .groups
        .values_mut()
        .find(|group| group.group_openid == group_openid)
        .ok_or(MsdkError::GroupNotFound)?;
    if group.relation(&call.openid) == 4 {
        return Err(MsdkError::NotMember);
    }
    group.messages.push(json!({
        "openid": call.openid,
        "pf": pf,
        "title": title,
        "desc": desc,
        "image_url": image_url,
        "redirect_url": redirect_url,
        "param": param,
        "time": call.now,
    }));
    Ok(object([("is_lost", is_lost(call))]))
}

#[cfg(test)]
mod tests {
    use super::super::fixture::MsdkGender;
    use super::*;

    #[test]
    fn relation_codes() {
        let mut group = QqGroup::new("1", "2", "g".into(), "owner".into());
        group.admins.push("admin".into());
        group.members.push("member".into());
        assert_eq!(group.relation("owner"), 1);
        assert_eq!(group.relation("admin"), 2);
        assert_eq!(group.relation("member"), 3);
        assert_eq!(group.relation("stranger"), 4);
    }

    // python3 -c 'import hashlib; print(hashlib.md5(b"100703379:514915385").hexdigest().upper())'
    #[test]
    fn group_openid_is_md5_of_appid_and_gc() {
        let group = QqGroup::new("100703379", "514915385", String::new(), String::new());
        assert_eq!(group.group_openid, "D506520BECCF637FEC10AC55199120DB");
    }

    #[test]
    fn union_kinds() {
        assert_eq!(union_kind(None).unwrap(), "0");
        assert_eq!(union_kind(Some("2".into())).unwrap(), "2");
        assert!(union_kind(Some("3".into())).is_err());
    }

    #[test]
    fn gender_forms() {
        assert_eq!(MsdkGender::Male.text(), "남성");
        assert_eq!(MsdkGender::Female.digit(), "2");
    }
}
