//! QQ mini-game server API (`api.q.qq.com`, seed 000): app access tokens from
//! `getToken` (kept in the state store), the login-state signature over the
//! exact body bytes, and the `errcode`/`errmsg` envelope. Routes that declare
//! `app_secret_member` (jscode2session) are called with the app secret instead;
//! the session keys their answers issue are kept in the state store, and
//! storage calls without a session key are signed with the kept one.

mod codes;
pub(crate) mod token;

use std::{fmt::Write as _, sync::Arc, time::Duration};

use async_trait::async_trait;
use bytes::Bytes;
use secrecy::ExposeSecret;
use serde_json::{Map, Value as Json};
use tokio::time::Instant;

use self::token::TokenFetcher;
use super::{
    Apps, ConfiguredPlatform, PlatformClient,
    envelope::coded_answer,
    route_call, send,
    signing::{encode_query, minigame_signature, push_query_pairs},
};
use crate::{
    config::MiniGamePlatform,
    errors::GatewayError,
    plan::{Route, UpstreamRequest},
    proto::{ErrorReason, Platform},
    state::{AccessTokens, SessionKeys, Store, TokenScope},
    upstream::{self, OutgoingBody, Upstream, UpstreamHttp},
};

const PLATFORM: Platform = Platform::QqMinigame;

/// The platform of the `[qq_minigame]` section: a token source per app, its
/// tokens kept in `store`.
pub fn build(
    section: &MiniGamePlatform,
    http: &UpstreamHttp,
    store: &dyn Store,
) -> Result<ConfiguredPlatform, upstream::InvalidBaseUrl> {
    let upstream = http.upstream_with(
        &section.base_url,
        section.max_answer_bytes,
        &section.upstream.options(),
    )?;
    let budget = Duration::from_millis(section.budget_ms);
    let session_max_age = Duration::from_secs(section.session_max_age_secs.max(1));
    let sessions = section.apps.iter().map(|(appid, app)| {
        let scope = TokenScope {
            platform: PLATFORM,
            app_id: appid.clone(),
        };
        let custody = store.session_keys(scope, &app.secret, session_max_age);
        (
            appid.clone(),
            AppSessions {
                secret: app.secret.clone(),
                custody,
            },
        )
    });
    let sessions = Apps::new(PLATFORM, sessions.collect::<Vec<_>>());
    let tokens = section.apps.iter().map(|(appid, app)| {
        let source = TokenFetcher {
            upstream: upstream.clone(),
            appid: appid.clone(),
            secret: app.secret.clone(),
            timeout: budget,
        };
        let scope = TokenScope {
            platform: PLATFORM,
            app_id: appid.clone(),
        };
        (appid.clone(), store.access_tokens(scope, Arc::new(source)))
    });
    let tokens = Apps::new(PLATFORM, tokens.collect::<Vec<_>>());
    let client = MiniGameClient {
        upstream,
        tokens,
        sessions,
    };
    Ok(ConfiguredPlatform::new(Box::new(client), budget))
}

pub struct MiniGameClient {
    upstream: Upstream,
    tokens: Apps<Arc<dyn AccessTokens>>,
    sessions: Apps<AppSessions>,
}

/// An app's secret (for the routes called with it) and its users' session
/// keys in custody.
struct AppSessions {
    secret: secrecy::SecretString,
    custody: Arc<dyn SessionKeys>,
}

impl MiniGameClient {
    /// A route called with the app secret (jscode2session): the request's
    /// query, the secret, no access token and no signature. A session key
    /// the answer issues is kept for its openid, replacing the one before.
    async fn call_with_secret(
        &self,
        route: &Route,
        request: &UpstreamRequest,
        secret_member: &str,
        deadline: Instant,
    ) -> Result<Map<String, Json>, GatewayError> {
        let app = self.sessions.get(&request.app_id)?;
        let mut target = String::with_capacity(route.path.len() + 160);
        target.push_str(&route.path);
        target.push('?');
        push_query_pairs(&mut target, request.query.iter().map(|(n, v)| (n, v)));
        if !request.query.is_empty() {
            target.push('&');
        }
        let _ = write!(
            target,
            "{}={}",
            encode_query(secret_member),
            encode_query(app.secret.expose_secret())
        );
        let answer = send(
            &self.upstream,
            PLATFORM,
            &route.path,
            route_call(route, &target, None, deadline),
        )
        .await?;
        let answer = read_answer(route, &answer.body)?;
        if let Some(issued) = &route.issued_session {
            let text = |member: &str| match answer.get(member) {
                Some(Json::String(text)) if !text.is_empty() => Some(text.clone()),
                _ => None,
            };
            match (text(&issued.openid_member), text(&issued.key_member)) {
                (Some(openid), Some(key)) => {
                    app.custody
                        .put(&openid, secrecy::SecretString::from(key))
                        .await;
                    tracing::debug!(app_id = %request.app_id, %openid, "session key kept");
                }
                _ => {
                    return Err(GatewayError::Malformed {
                        platform: PLATFORM,
                        endpoint: route.path.clone(),
                        detail: format!(
                            "{} or {} is missing",
                            issued.openid_member, issued.key_member
                        ),
                        transport: None,
                    });
                }
            }
        }
        Ok(answer)
    }
}

#[async_trait]
impl PlatformClient for MiniGameClient {
    async fn call(
        &self,
        route: &Route,
        request: &UpstreamRequest,
        deadline: Instant,
    ) -> Result<Map<String, Json>, GatewayError> {
        if let Some(member) = &route.app_secret_member {
            return self
                .call_with_secret(route, request, member, deadline)
                .await;
        }
        let tokens = self.tokens.get(&request.app_id)?;
        // The session key the caller sent, or the one kept from the user's
        // last login through gamegate.
        let kept = if request.session_key_from_custody {
            let app = self.sessions.get(&request.app_id)?;
            Some(app.custody.get(&request.openid).await.ok_or_else(|| {
                GatewayError::SessionLoginRequired {
                    app_id: request.app_id.clone(),
                }
            })?)
        } else {
            None
        };
        // Serialize once, sign these bytes, send these bytes.
        let body =
            Bytes::from(serde_json::to_vec(&request.body).expect("a json map always serializes"));
        let session_key = kept
            .as_ref()
            .or(request.session_key.as_ref())
            .map(|k| k.expose_secret())
            .unwrap_or_default();
        let signature = minigame_signature(session_key, &body);
        let mut query = String::with_capacity(160);
        push_query_pairs(&mut query, request.query.iter().map(|(n, v)| (n, v)));
        if !query.is_empty() {
            query.push('&');
        }
        let _ = write!(query, "signature={signature}&sig_method=hmac_sha256");

        // One refresh and one retry when the platform refuses the app's token;
        // the refused call did nothing, so retrying it is safe even for writes.
        let mut refreshed = false;
        loop {
            let token = tokens.get().await?;
            let mut target = String::with_capacity(route.path.len() + 64 + query.len());
            let _ = write!(
                target,
                "{}?access_token={}&{query}",
                route.path,
                encode_query(token.value.expose_secret()),
            );
            let body = Some(OutgoingBody {
                bytes: body.clone(),
                content_type: "application/json",
            });
            let answer = send(
                &self.upstream,
                PLATFORM,
                &route.path,
                route_call(route, &target, body, deadline),
            )
            .await?;
            match read_answer(route, &answer.body) {
                Err(GatewayError::Upstream(refusal))
                    if refusal.reason == ErrorReason::AccessTokenInvalid && !refreshed =>
                {
                    tracing::info!(
                        endpoint = %route.path,
                        upstream_code = refusal.code,
                        "access token refused; refreshing it and retrying once"
                    );
                    crate::metrics::global()
                        .token_refused(crate::errors::platform_name(PLATFORM), &request.app_id);
                    tokens.invalidate(&token);
                    refreshed = true;
                }
                outcome => return outcome,
            }
        }
    }
}

/// The `errcode`/`errmsg` envelope of an answer: its object when `errcode` is
/// 0, the platform's refusal otherwise.
pub(crate) fn read_answer(route: &Route, body: &[u8]) -> Result<Map<String, Json>, GatewayError> {
    coded_answer(PLATFORM, route, body, "errcode", &["errmsg"], codes::CODES)
}
