//! The admin views of the MSDK `profile` and `share` modules (`/_sandbox/msdk/...`): achievement
//! and battle reports, subscriptions and pushes, shares, uploaded media.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::routing::get;
use serde_json::json;
use tracing::info;

use super::{profile, share};
use crate::Sandbox;
use crate::admin::{AdminError, AdminResult};
use crate::query::QueryParams;

pub(super) fn routes() -> Router<Sandbox> {
    Router::new()
        .route("/msdk/scores", get(scores))
        .route("/msdk/battle_reports", get(battle_reports))
        .route("/msdk/subscriptions", get(subscriptions))
        .route("/msdk/shares", get(shares).delete(clear_shares))
        .route("/msdk/media", get(media))
}

/// `appid` (required, a known app) and the optional `openid` of the query.
fn target(
    sandbox: &Sandbox,
    query: Option<&str>,
    needs_openid: bool,
) -> Result<(String, Option<String>), AdminError> {
    let params = QueryParams::parse(query);
    let appid = params
        .get_non_empty("appid")
        .map(|appid| appid.into_owned())
        .ok_or(AdminError::Invalid("query needs appid"))?;
    let openid = params.get_non_empty("openid").map(|o| o.into_owned());
    if needs_openid && openid.is_none() {
        return Err(AdminError::Invalid("query needs appid and openid"));
    }
    if !sandbox.shared.msdk.state().apps.contains_key(&appid) {
        return Err(AdminError::NotFound("msdk app"));
    }
    Ok((appid, openid))
}

async fn scores(State(sandbox): State<Sandbox>, RawQuery(query): RawQuery) -> AdminResult {
    let (appid, openid) = target(&sandbox, query.as_deref(), true)?;
    let state = sandbox.shared.msdk.state();
    Ok(axum::Json(profile::scores(
        &state,
        &appid,
        openid.as_deref().unwrap_or_default(),
    )))
}

async fn battle_reports(State(sandbox): State<Sandbox>, RawQuery(query): RawQuery) -> AdminResult {
    let (appid, _) = target(&sandbox, query.as_deref(), false)?;
    let state = sandbox.shared.msdk.state();
    Ok(axum::Json(profile::battle_reports(&state, &appid)))
}

async fn subscriptions(State(sandbox): State<Sandbox>, RawQuery(query): RawQuery) -> AdminResult {
    let (appid, _) = target(&sandbox, query.as_deref(), false)?;
    let state = sandbox.shared.msdk.state();
    Ok(axum::Json(profile::subscriptions(&state, &appid)))
}

/// The app's shares, or (with `openid`) those the user received.
async fn shares(State(sandbox): State<Sandbox>, RawQuery(query): RawQuery) -> AdminResult {
    let (appid, openid) = target(&sandbox, query.as_deref(), false)?;
    let state = sandbox.shared.msdk.state();
    Ok(axum::Json(share::shares(&state, &appid, openid.as_deref())))
}

/// Forgets the app's shares: the daily limits start afresh, as on a new day.
async fn clear_shares(State(sandbox): State<Sandbox>, RawQuery(query): RawQuery) -> AdminResult {
    let (appid, _) = target(&sandbox, query.as_deref(), false)?;
    let mut state = sandbox.shared.msdk.state();
    let cleared = share::clear_shares(&mut state, &appid);
    info!(appid, cleared, "msdk shares cleared");
    Ok(axum::Json(json!({ "cleared": cleared })))
}

async fn media(State(sandbox): State<Sandbox>, RawQuery(query): RawQuery) -> AdminResult {
    let (appid, _) = target(&sandbox, query.as_deref(), false)?;
    let state = sandbox.shared.msdk.state();
    Ok(axum::Json(share::media(&state, &appid)))
}
