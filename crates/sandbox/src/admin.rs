//! The admin API under `/_sandbox`: faults, counters, run-time settings and state fixtures (the
//! MSDK part lives in `msdk::admin`).
//! Plain JSON with HTTP status codes (400 for a bad request, 404 for an unknown app or user).

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tracing::info;

use crate::faults::{FaultSpec, FaultSpecError};
use crate::query::QueryParams;
use crate::{DawankaState, Sandbox};

#[derive(Debug, thiserror::Error)]
pub(crate) enum AdminError {
    #[error("invalid json body: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Fault(#[from] FaultSpecError),
    #[error("{0}")]
    Invalid(&'static str),
    #[error("unknown {0}")]
    NotFound(&'static str),
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let status = match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Json(_) | Self::Fault(_) | Self::Invalid(_) => StatusCode::BAD_REQUEST,
        };
        // The message may quote the request (serde does), so it goes back to the caller only,
        // never to the log.
        info!(status = status.as_u16(), "admin request refused");
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

pub(crate) type AdminResult = Result<Json<Value>, AdminError>;

/// Parses a JSON body whatever its content type, so that `curl -d` works as it is.
pub(crate) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, AdminError> {
    Ok(serde_json::from_slice(body)?)
}

pub(crate) fn routes() -> Router<Sandbox> {
    Router::new()
        .route(
            "/faults",
            post(add_fault).delete(clear_faults).get(list_faults),
        )
        .route("/stats", get(stats).delete(reset_stats))
        .route("/config", get(get_config).put(put_config))
        .route("/minigame/apps", put(put_minigame_app))
        .route("/minigame/users", put(put_minigame_user))
        .route("/minigame/revoke_tokens", post(revoke_tokens))
        .route("/minigame/codes", post(mint_minigame_code))
        .route("/minigame/storage", get(minigame_storage))
        .route("/openapi/apps", put(put_openapi_app))
        .route(
            "/openapi/users",
            put(put_openapi_user).get(get_openapi_user),
        )
        .merge(crate::msdk::admin::routes())
}

async fn add_fault(State(sandbox): State<Sandbox>, body: Bytes) -> AdminResult {
    let spec: FaultSpec = parse(&body)?;
    let id = sandbox.shared.faults.add(spec)?;
    info!(fault_id = id, "fault queued");
    Ok(Json(json!({ "id": id })))
}

async fn clear_faults(State(sandbox): State<Sandbox>) -> Json<Value> {
    let cleared = sandbox.shared.faults.clear();
    info!(cleared, "faults cleared");
    Json(json!({ "cleared": cleared }))
}

async fn list_faults(State(sandbox): State<Sandbox>) -> Json<Value> {
    Json(json!({ "faults": sandbox.shared.faults.list() }))
}

async fn stats(State(sandbox): State<Sandbox>) -> AdminResult {
    Ok(Json(serde_json::to_value(sandbox.shared.stats.snapshot())?))
}

async fn reset_stats(State(sandbox): State<Sandbox>) -> Json<Value> {
    sandbox.shared.stats.reset();
    Json(json!({}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigUpdate {
    /// Fractions are allowed so that tests can use sub-second lifetimes.
    token_ttl_secs: Option<f64>,
    token_grace_secs: Option<f64>,
    storage_total_cap_bytes: Option<usize>,
    code_ttl_secs: Option<f64>,
}

fn config_view(sandbox: &Sandbox) -> Json<Value> {
    let settings = sandbox.shared.minigame.settings();
    Json(json!({
        "token_ttl_secs": settings.token_ttl.as_secs_f64(),
        "token_grace_secs": settings.token_grace.as_secs_f64(),
        "storage_total_cap_bytes": settings.storage_total_cap_bytes,
        "code_ttl_secs": settings.code_ttl.as_secs_f64(),
    }))
}

async fn get_config(State(sandbox): State<Sandbox>) -> Json<Value> {
    config_view(&sandbox)
}

async fn put_config(State(sandbox): State<Sandbox>, body: Bytes) -> AdminResult {
    let update: ConfigUpdate = parse(&body)?;
    let seconds = |value: Option<f64>| {
        value
            .map(|secs| {
                Duration::try_from_secs_f64(secs)
                    .map_err(|_| AdminError::Invalid("durations must be finite and not negative"))
            })
            .transpose()
    };
    let ttl = seconds(update.token_ttl_secs)?;
    let grace = seconds(update.token_grace_secs)?;
    let code_ttl = seconds(update.code_ttl_secs)?;
    let settings = sandbox.shared.minigame.update_settings(|settings| {
        if let Some(ttl) = ttl {
            settings.token_ttl = ttl;
        }
        if let Some(grace) = grace {
            settings.token_grace = grace;
        }
        if let Some(cap) = update.storage_total_cap_bytes {
            settings.storage_total_cap_bytes = cap;
        }
        if let Some(code_ttl) = code_ttl {
            settings.code_ttl = code_ttl;
        }
    });
    info!(
        token_ttl = ?settings.token_ttl,
        token_grace = ?settings.token_grace,
        storage_total_cap_bytes = settings.storage_total_cap_bytes,
        code_ttl = ?settings.code_ttl,
        "settings changed"
    );
    Ok(config_view(&sandbox))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MiniGameAppBody {
    appid: String,
    secret: String,
}

async fn put_minigame_app(State(sandbox): State<Sandbox>, body: Bytes) -> AdminResult {
    let app: MiniGameAppBody = parse(&body)?;
    if app.appid.is_empty() || app.secret.is_empty() {
        return Err(AdminError::Invalid("appid and secret must not be empty"));
    }
    sandbox.shared.minigame.put_app(&app.appid, &app.secret);
    info!(appid = %app.appid, "mini-game app stored");
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MiniGameUserBody {
    appid: String,
    openid: String,
    session_key: String,
}

async fn put_minigame_user(State(sandbox): State<Sandbox>, body: Bytes) -> AdminResult {
    let user: MiniGameUserBody = parse(&body)?;
    if user.openid.is_empty() || user.session_key.is_empty() {
        return Err(AdminError::Invalid(
            "openid and session_key must not be empty",
        ));
    }
    if !sandbox
        .shared
        .minigame
        .put_user(&user.appid, &user.openid, &user.session_key)
    {
        return Err(AdminError::NotFound("mini-game app"));
    }
    info!(appid = %user.appid, openid = %user.openid, "mini-game user stored");
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MintCodeBody {
    appid: String,
    openid: String,
    #[serde(default)]
    unionid: Option<String>,
}

/// What qq.login() gives a client: a login code for jscode2session.
async fn mint_minigame_code(State(sandbox): State<Sandbox>, body: Bytes) -> AdminResult {
    let request: MintCodeBody = parse(&body)?;
    if request.openid.is_empty() {
        return Err(AdminError::Invalid("openid must not be empty"));
    }
    let Some(js_code) =
        sandbox
            .shared
            .minigame
            .mint_code(&request.appid, &request.openid, request.unionid)
    else {
        return Err(AdminError::NotFound("mini-game app"));
    };
    info!(appid = %request.appid, openid = %request.openid, "login code minted");
    Ok(Json(json!({ "js_code": js_code })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    appid: String,
}

async fn revoke_tokens(State(sandbox): State<Sandbox>, body: Bytes) -> AdminResult {
    let RevokeBody { appid } = parse(&body)?;
    let revoked = sandbox
        .shared
        .minigame
        .revoke_tokens(&appid)
        .ok_or(AdminError::NotFound("mini-game app"))?;
    info!(appid, revoked, "access tokens revoked");
    Ok(Json(json!({ "revoked": revoked })))
}

/// `appid` and `openid` from an admin query string.
fn user_query(query: Option<&str>) -> Result<(String, String), AdminError> {
    let params = QueryParams::parse(query);
    match (
        params.get_non_empty("appid"),
        params.get_non_empty("openid"),
    ) {
        (Some(appid), Some(openid)) => Ok((appid.into_owned(), openid.into_owned())),
        _ => Err(AdminError::Invalid("query needs appid and openid")),
    }
}

async fn minigame_storage(
    State(sandbox): State<Sandbox>,
    RawQuery(query): RawQuery,
) -> AdminResult {
    let (appid, openid) = user_query(query.as_deref())?;
    let storage = sandbox
        .shared
        .minigame
        .storage(&appid, &openid)
        .ok_or(AdminError::NotFound("mini-game user"))?;
    Ok(Json(
        json!({ "kv": storage.kv, "interactive": storage.interactive }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenApiAppBody {
    appid: String,
    appkey: String,
}

async fn put_openapi_app(State(sandbox): State<Sandbox>, body: Bytes) -> AdminResult {
    let app: OpenApiAppBody = parse(&body)?;
    if app.appid.is_empty() || app.appkey.is_empty() {
        return Err(AdminError::Invalid("appid and appkey must not be empty"));
    }
    sandbox.shared.openapi.put_app(&app.appid, &app.appkey);
    info!(appid = %app.appid, "openapi app stored");
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenApiUserBody {
    appid: String,
    openid: String,
    openkey: String,
    #[serde(default)]
    dawanka: DawankaState,
}

async fn put_openapi_user(State(sandbox): State<Sandbox>, body: Bytes) -> AdminResult {
    let user: OpenApiUserBody = parse(&body)?;
    // The platform's own format checks (2000002, 2000003) would make such a user unreachable.
    if user.openid.len() != 32 || !user.openid.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AdminError::Invalid("openid must be 32 hex characters"));
    }
    if user.openkey.len() != 32 {
        return Err(AdminError::Invalid("openkey must be 32 bytes"));
    }
    if !(0..=4).contains(&user.dawanka.level) || !(0..=4).contains(&user.dawanka.real_level) {
        return Err(AdminError::Invalid("dawanka levels must be 0 to 4"));
    }
    if user.dawanka.pay_return_count < -1 {
        return Err(AdminError::Invalid(
            "pay_return_count must be -1 (unlimited) or more",
        ));
    }
    if !sandbox
        .shared
        .openapi
        .put_user(&user.appid, &user.openid, &user.openkey, user.dawanka)
    {
        return Err(AdminError::NotFound("openapi app"));
    }
    info!(appid = %user.appid, openid = %user.openid, "openapi user stored");
    Ok(Json(json!({})))
}

async fn get_openapi_user(
    State(sandbox): State<Sandbox>,
    RawQuery(query): RawQuery,
) -> AdminResult {
    let (appid, openid) = user_query(query.as_deref())?;
    let dawanka = sandbox
        .shared
        .openapi
        .dawanka(&appid, &openid)
        .ok_or(AdminError::NotFound("openapi user"))?;
    Ok(Json(serde_json::to_value(dawanka)?))
}
