//! QQ mini-game server API (`api.q.qq.com`, seed 000): app access tokens from
//! `getToken`, the login-state signature over the exact body bytes, and the
//! `errcode`/`errmsg` envelope.

use std::{
    collections::HashMap, fmt::Write as _, future::Future, pin::Pin, sync::Arc, time::Duration,
};

use bytes::Bytes;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value as Json};
use tokio::time::Instant;

use super::{
    Apps,
    http::{
        OutgoingBody, Upstream, UpstreamCall, envelope_code, envelope_text, enveloped, json_object,
    },
    signing::{encode_query, minigame_signature, push_query_pairs},
};
use crate::{
    errors::{self, GatewayError, UpstreamError},
    mapping::UpstreamRequest,
    proto::{ErrorReason, Platform},
    routes::{Method, Route},
    token::{IssuedToken, TokenCache, TokenSource},
};

const PLATFORM: Platform = Platform::QqMinigame;
const TOKEN_PATH: &str = "/api/getToken";

pub struct MiniGameClient {
    upstream: Upstream,
    tokens: Apps<Arc<TokenCache>>,
}

impl MiniGameClient {
    /// `apps`: appid -> app secret.
    pub fn new(
        upstream: Upstream,
        apps: impl IntoIterator<Item = (String, SecretString)>,
        token_fetch_timeout: Duration,
    ) -> Self {
        let tokens = apps.into_iter().map(|(appid, secret)| {
            let source = TokenFetcher {
                upstream: upstream.clone(),
                appid: appid.clone(),
                secret,
                timeout: token_fetch_timeout,
            };
            (appid, TokenCache::new(source, token_fetch_timeout))
        });
        let tokens = Apps::new(PLATFORM, tokens);
        MiniGameClient { upstream, tokens }
    }

    pub async fn call(
        &self,
        route: &Route,
        request: &UpstreamRequest,
        deadline: Instant,
    ) -> Result<Map<String, Json>, GatewayError> {
        let tokens = self.tokens.get(&request.app_id)?;
        // Serialize once, sign these bytes, send these bytes.
        let body =
            Bytes::from(serde_json::to_vec(&request.body).expect("a json map always serializes"));
        let session_key = request
            .session_key
            .as_ref()
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
            let answer = self
                .upstream
                .send(UpstreamCall::route(
                    PLATFORM,
                    route,
                    &target,
                    Some(OutgoingBody {
                        bytes: body.clone(),
                        content_type: "application/json",
                    }),
                    deadline,
                ))
                .await?;
            let (answer, code) = enveloped(PLATFORM, &route.path, &answer.body, "errcode")?;
            if code == 0 {
                return Ok(answer);
            }
            let reason = errors::classify(errors::QQ_MINIGAME_CODES, &route.code_overrides, code);
            if reason == ErrorReason::AccessTokenInvalid && !refreshed {
                tracing::info!(
                    endpoint = %route.path,
                    upstream_code = code,
                    "access token refused; refreshing it and retrying once"
                );
                tokens.invalidate(&token);
                refreshed = true;
                continue;
            }
            return Err(GatewayError::Upstream(UpstreamError {
                platform: PLATFORM,
                endpoint: route.path.clone(),
                code,
                message: envelope_text(&answer, &["errmsg"]),
                reason,
                metadata: Vec::new(),
            }));
        }
    }
}

struct TokenFetcher {
    upstream: Upstream,
    appid: String,
    secret: SecretString,
    timeout: Duration,
}

impl TokenSource for TokenFetcher {
    fn fetch(
        &self,
    ) -> Pin<Box<dyn Future<Output = Result<IssuedToken, GatewayError>> + Send + '_>> {
        Box::pin(async move {
            let target = format!(
                "{TOKEN_PATH}?grant_type=client_credential&appid={}&secret={}",
                encode_query(&self.appid),
                encode_query(self.secret.expose_secret())
            );
            let answer = self
                .upstream
                .send(UpstreamCall {
                    platform: PLATFORM,
                    endpoint: TOKEN_PATH,
                    method: Method::Get,
                    target: &target,
                    body: None,
                    headers: &[],
                    idempotent: true,
                    deadline: Instant::now() + self.timeout,
                })
                .await?;
            let answer = json_object(PLATFORM, TOKEN_PATH, &answer.body)?;
            let code = envelope_code(&answer, "errcode").unwrap_or(-1);
            if code != 0 {
                return Err(GatewayError::Upstream(UpstreamError {
                    platform: PLATFORM,
                    endpoint: TOKEN_PATH.into(),
                    code,
                    message: envelope_text(&answer, &["errmsg"]),
                    reason: errors::classify(
                        errors::QQ_MINIGAME_TOKEN_CODES,
                        &HashMap::new(),
                        code,
                    ),
                    metadata: vec![("app_id", self.appid.clone())],
                }));
            }
            let Some(Json::String(value)) = answer.get("access_token") else {
                return Err(GatewayError::Malformed {
                    platform: PLATFORM,
                    endpoint: TOKEN_PATH.into(),
                    detail: "access_token is missing".into(),
                });
            };
            let expires_in = envelope_code(&answer, "expires_in")
                .filter(|s| *s > 0)
                .unwrap_or(7200);
            tracing::info!(app_id = %self.appid, expires_in, "fetched a new access token");
            Ok(IssuedToken {
                value: SecretString::from(value.clone()),
                expires_in: Duration::from_secs(expires_in as u64),
            })
        })
    }
}
