//! QQ mini-game server API (`api.q.qq.com`, seed 000): app access tokens from
//! `getToken`, the login-state signature over the exact body bytes, and the
//! `errcode`/`errmsg` envelope.

use std::{collections::HashMap, future::Future, pin::Pin, sync::Arc, time::Duration};

use bytes::Bytes;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value as Json};
use tokio::time::Instant;

use super::{
    Apps,
    http::{OutgoingBody, UpstreamHttp, envelope_code, envelope_text, enveloped, json_object},
    signing::{minigame_signature, openapi_encode},
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
    base_url: String,
    http: UpstreamHttp,
    tokens: Apps<Arc<TokenCache>>,
}

impl MiniGameClient {
    /// `apps`: appid -> app secret.
    pub fn new(
        base_url: &str,
        http: UpstreamHttp,
        apps: impl IntoIterator<Item = (String, SecretString)>,
        token_fetch_timeout: Duration,
    ) -> Self {
        let base_url = base_url.trim_end_matches('/').to_string();
        let tokens = apps.into_iter().map(|(appid, secret)| {
            let source = TokenFetcher {
                base_url: base_url.clone(),
                http: http.clone(),
                appid: appid.clone(),
                secret,
                timeout: token_fetch_timeout,
            };
            (appid, TokenCache::new(source, token_fetch_timeout))
        });
        let tokens = Apps::new(PLATFORM, tokens);
        MiniGameClient {
            base_url,
            http,
            tokens,
        }
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
        let mut query = String::new();
        for (name, value) in &request.query {
            query.push_str(&format!(
                "{}={}&",
                openapi_encode(name),
                openapi_encode(value)
            ));
        }
        query.push_str(&format!("signature={signature}&sig_method=hmac_sha256"));

        // One refresh and one retry when the platform refuses the app's token;
        // the refused call did nothing, so retrying it is safe even for writes.
        let mut refreshed = false;
        loop {
            let token = tokens.get().await?;
            let url = format!(
                "{}{}?access_token={}&{}",
                self.base_url,
                route.path,
                openapi_encode(token.value.expose_secret()),
                query
            );
            let bytes = self
                .http
                .send(
                    PLATFORM,
                    &route.path,
                    route.method,
                    &url,
                    Some(OutgoingBody {
                        bytes: body.clone(),
                        content_type: "application/json",
                    }),
                    deadline,
                )
                .await?;
            let (answer, code) = enveloped(PLATFORM, &route.path, &bytes, "errcode")?;
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
    base_url: String,
    http: UpstreamHttp,
    appid: String,
    secret: SecretString,
    timeout: Duration,
}

impl TokenSource for TokenFetcher {
    fn fetch(
        &self,
    ) -> Pin<Box<dyn Future<Output = Result<IssuedToken, GatewayError>> + Send + '_>> {
        Box::pin(async move {
            let url = format!(
                "{}{}?grant_type=client_credential&appid={}&secret={}",
                self.base_url,
                TOKEN_PATH,
                openapi_encode(&self.appid),
                openapi_encode(self.secret.expose_secret())
            );
            let deadline = Instant::now() + self.timeout;
            let bytes = self
                .http
                .send(PLATFORM, TOKEN_PATH, Method::Get, &url, None, deadline)
                .await?;
            let answer = json_object(PLATFORM, TOKEN_PATH, &bytes)?;
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
