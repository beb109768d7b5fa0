//! The MSDK part of the admin API (`/_sandbox/msdk/...`): apps, users, login states, groups.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::routing::{post, put};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde::Deserialize;
use serde_json::json;
use tracing::info;

use super::fixture::{MsdkApp, MsdkPlatform, MsdkQqGroup, MsdkUser, MsdkWechatGroup};
use super::relation_qq::{self, UnionKey};
use super::{OLD_TOKENS_KEPT, UserKey, relation_wx};
use crate::Sandbox;
use crate::admin::{AdminError, AdminResult, parse};
use crate::query::QueryParams;

/// Length of an issued token (QQ tokens are 32 hex characters, WeChat ones longer).
const QQ_TOKEN_LEN: usize = 32;
const WECHAT_TOKEN_LEN: usize = 86;

pub(crate) fn routes() -> Router<Sandbox> {
    Router::new()
        .merge(super::admin_profile::routes())
        .route("/msdk/apps", put(put_app))
        .route("/msdk/users", put(put_user))
        .route("/msdk/tokens/expire", post(expire_token))
        .route("/msdk/tokens/issue", post(issue_token))
        .route("/msdk/groups", axum::routing::get(groups))
        .route(
            "/msdk/qq_groups",
            put(put_qq_group).delete(dissolve_qq_group),
        )
        .route("/msdk/qq_bindings/leader", post(set_leader))
        .route("/msdk/wechat_groups", put(put_wechat_group))
        .route("/msdk/reminders", axum::routing::delete(clear_reminders))
        .route(
            "/msdk/requests",
            axum::routing::get(received_requests).delete(clear_received_requests),
        )
        .route(
            "/msdk/encryption",
            axum::routing::get(encryption).delete(clear_encryption),
        )
}

/// How the MSDK requests arrived and were answered: msdktea or plain, per interface.
async fn encryption(State(sandbox): State<Sandbox>) -> AdminResult {
    let state = sandbox.shared.msdk.state();
    Ok(axum::Json(json!(state.encryption)))
}

/// The last requests the MSDK interfaces received (at most `wire::KEPT`), oldest first: all
/// of them, or (with `path`) those of one interface.
async fn received_requests(
    State(sandbox): State<Sandbox>,
    RawQuery(query): RawQuery,
) -> AdminResult {
    let params = QueryParams::parse(query.as_deref());
    let path = params.get_non_empty("path");
    let state = sandbox.shared.msdk.state();
    Ok(axum::Json(
        json!({ "requests": state.received.of(path.as_deref()) }),
    ))
}

/// Forgets the received requests.
async fn clear_received_requests(State(sandbox): State<Sandbox>) -> AdminResult {
    sandbox.shared.msdk.state().received.clear();
    Ok(axum::Json(json!({})))
}

/// Resets the encryption counters.
async fn clear_encryption(State(sandbox): State<Sandbox>) -> AdminResult {
    let mut state = sandbox.shared.msdk.state();
    state.encryption = super::Encryption::default();
    Ok(axum::Json(json!({})))
}

fn not_empty(values: &[&str], what: &'static str) -> Result<(), AdminError> {
    if values.iter().any(|value| value.is_empty()) {
        return Err(AdminError::Invalid(what));
    }
    Ok(())
}

async fn put_app(State(sandbox): State<Sandbox>, body: Bytes) -> AdminResult {
    let app: MsdkApp = parse(&body)?;
    not_empty(
        &[&app.appid, &app.msdkkey, &app.appkey],
        "appid, msdkkey and appkey must not be empty",
    )?;
    if (app.platform == MsdkPlatform::Guest) != app.appid.starts_with("G_") {
        return Err(AdminError::Invalid(
            "guest apps, and only they, have an appid starting with G_",
        ));
    }
    let mut state = sandbox.shared.msdk.state();
    info!(appid = %app.appid, platform = ?app.platform, "msdk app stored");
    state.apps.insert(app.appid.clone(), app);
    Ok(axum::Json(json!({})))
}

/// Creates or replaces a user; a replaced user's login state starts afresh (not expired).
async fn put_user(State(sandbox): State<Sandbox>, body: Bytes) -> AdminResult {
    let user: MsdkUser = parse(&body)?;
    not_empty(
        &[&user.openid, &user.access_token],
        "openid and access_token must not be empty",
    )?;
    let mut state = sandbox.shared.msdk.state();
    if !state.apps.contains_key(&user.appid) {
        return Err(AdminError::NotFound("msdk app"));
    }
    info!(appid = %user.appid, openid = %user.openid, "msdk user stored");
    state.put_user(user);
    Ok(axum::Json(json!({})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBody {
    appid: String,
    openid: String,
}

/// The user's current token (and a QQ user's pay token) now answers "expired" until a new one is
/// issued.
async fn expire_token(State(sandbox): State<Sandbox>, body: Bytes) -> AdminResult {
    let UserBody { appid, openid } = parse(&body)?;
    let mut state = sandbox.shared.msdk.state();
    let record = state
        .users
        .get_mut(&UserKey::new(&appid, &openid))
        .ok_or(AdminError::NotFound("msdk user"))?;
    record.expired = true;
    info!(appid, openid, "msdk access token expired");
    Ok(axum::Json(json!({})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueBody {
    appid: String,
    openid: String,
    /// A chosen token instead of a random one.
    access_token: Option<String>,
}

/// A new current token (random unless given); the previous one answers "expired" from now on.
async fn issue_token(State(sandbox): State<Sandbox>, body: Bytes) -> AdminResult {
    let IssueBody {
        appid,
        openid,
        access_token,
    } = parse(&body)?;
    if access_token.as_deref() == Some("") {
        return Err(AdminError::Invalid("access_token must not be empty"));
    }
    let mut state = sandbox.shared.msdk.state();
    let platform = state
        .apps
        .get(&appid)
        .map(|app| app.platform)
        .ok_or(AdminError::NotFound("msdk app"))?;
    let record = state
        .users
        .get_mut(&UserKey::new(&appid, &openid))
        .ok_or(AdminError::NotFound("msdk user"))?;
    let token = access_token.unwrap_or_else(|| random_token(platform));
    let previous = std::mem::replace(&mut record.user.access_token, token.clone());
    if previous != token {
        record.old_tokens.push(previous);
        if record.old_tokens.len() > OLD_TOKENS_KEPT {
            record.old_tokens.remove(0);
        }
    }
    record.old_tokens.retain(|old| *old != token);
    record.expired = false;
    info!(appid, openid, "msdk access token issued");
    Ok(axum::Json(json!({ "access_token": token })))
}

/// Tokens shaped like the platform's: 32 uppercase hex for QQ and guests, longer URL-safe text
/// for WeChat.
fn random_token(platform: MsdkPlatform) -> String {
    let mut rng = rand::rng();
    match platform {
        MsdkPlatform::Wechat => (&mut rng)
            .sample_iter(&Alphanumeric)
            .take(WECHAT_TOKEN_LEN)
            .map(char::from)
            .collect(),
        MsdkPlatform::Qq | MsdkPlatform::Guest => (0..QQ_TOKEN_LEN)
            .map(|_| char::from(b"0123456789ABCDEF"[rng.random_range(0..16)]))
            .collect(),
    }
}

fn appid_query(query: Option<&str>) -> Result<String, AdminError> {
    QueryParams::parse(query)
        .get_non_empty("appid")
        .map(|appid| appid.into_owned())
        .ok_or(AdminError::Invalid("query needs appid"))
}

/// The app's QQ groups (members, cards, messages sent), guild bindings, reminders, WeChat
/// groups and mini-program messages.
async fn groups(State(sandbox): State<Sandbox>, RawQuery(query): RawQuery) -> AdminResult {
    let appid = appid_query(query.as_deref())?;
    let state = sandbox.shared.msdk.state();
    if !state.apps.contains_key(&appid) {
        return Err(AdminError::NotFound("msdk app"));
    }
    let mut view = relation_qq::snapshot(&state, &appid);
    if let (Some(view), serde_json::Value::Object(wechat)) =
        (view.as_object_mut(), relation_wx::snapshot(&state, &appid))
    {
        view.extend(wechat);
    }
    Ok(axum::Json(view))
}

async fn put_qq_group(State(sandbox): State<Sandbox>, body: Bytes) -> AdminResult {
    let group: MsdkQqGroup = parse(&body)?;
    not_empty(&[&group.gc, &group.owner], "gc and owner must not be empty")?;
    let mut state = sandbox.shared.msdk.state();
    if !state.apps.contains_key(&group.appid) {
        return Err(AdminError::NotFound("msdk app"));
    }
    relation_qq::put_group(&mut state, &group);
    info!(appid = %group.appid, gc = %group.gc, "msdk qq group stored");
    Ok(axum::Json(json!({})))
}

/// Dissolves a QQ group (`?appid=&gc=`); its guild binding stays, as on the platform.
async fn dissolve_qq_group(
    State(sandbox): State<Sandbox>,
    RawQuery(query): RawQuery,
) -> AdminResult {
    let appid = appid_query(query.as_deref())?;
    let gc = QueryParams::parse(query.as_deref())
        .get_non_empty("gc")
        .map(|gc| gc.into_owned())
        .ok_or(AdminError::Invalid("query needs appid and gc"))?;
    let mut state = sandbox.shared.msdk.state();
    if !relation_qq::dissolve_group(&mut state, &appid, &gc) {
        return Err(AdminError::NotFound("qq group"));
    }
    info!(appid, gc, "msdk qq group dissolved");
    Ok(axum::Json(json!({})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LeaderBody {
    appid: String,
    guild_id: String,
    zone_id: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    leader_openid: String,
}

/// A leader transfer in the game: the new leader may unbind (the seed says so).
async fn set_leader(State(sandbox): State<Sandbox>, body: Bytes) -> AdminResult {
    let leader: LeaderBody = parse(&body)?;
    let kind = relation_qq::union_kind(leader.kind.filter(|k| !k.is_empty()))
        .map_err(|_| AdminError::Invalid("type must be 0, 1 or 2"))?;
    let key = UnionKey {
        guild_id: leader.guild_id,
        zone_id: leader.zone_id,
        kind,
    };
    let mut state = sandbox.shared.msdk.state();
    if !relation_qq::set_leader(&mut state, &leader.appid, &key, &leader.leader_openid) {
        return Err(AdminError::NotFound("guild binding"));
    }
    info!(appid = %leader.appid, guild_id = %key.guild_id, "msdk guild leader changed");
    Ok(axum::Json(json!({})))
}

async fn put_wechat_group(State(sandbox): State<Sandbox>, body: Bytes) -> AdminResult {
    let group: MsdkWechatGroup = parse(&body)?;
    not_empty(&[&group.groupid], "groupid must not be empty")?;
    let mut state = sandbox.shared.msdk.state();
    if !state.apps.contains_key(&group.appid) {
        return Err(AdminError::NotFound("msdk app"));
    }
    relation_wx::put_group(&mut state, &group);
    info!(appid = %group.appid, groupid = %group.groupid, "msdk wechat group stored");
    Ok(axum::Json(json!({})))
}

/// Forgets the app's reminders, as if a new day had started.
async fn clear_reminders(State(sandbox): State<Sandbox>, RawQuery(query): RawQuery) -> AdminResult {
    let appid = appid_query(query.as_deref())?;
    let mut state = sandbox.shared.msdk.state();
    if !state.apps.contains_key(&appid) {
        return Err(AdminError::NotFound("msdk app"));
    }
    let cleared = relation_qq::clear_reminders(&mut state, &appid);
    info!(appid, cleared, "msdk reminders cleared");
    Ok(axum::Json(json!({ "cleared": cleared })))
}
