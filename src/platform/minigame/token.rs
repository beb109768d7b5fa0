//! `GET /api/getToken`: the app's access token, fetched with the app secret.

use std::{collections::HashMap, time::Duration};

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value as Json;
use tokio::time::Instant;

use super::{PLATFORM, codes};
use crate::{
    errors::{self, GatewayError, UpstreamError},
    platform::{
        envelope::{envelope_code, envelope_text, json_object},
        send,
        signing::encode_query,
    },
    state::{BoxFuture, IssuedToken, TokenSource},
    upstream::{Method, Upstream, UpstreamCall},
};

pub const TOKEN_PATH: &str = "/api/getToken";

pub struct TokenFetcher {
    pub upstream: Upstream,
    pub appid: String,
    pub secret: SecretString,
    /// Bounds each fetch: no caller's deadline does.
    pub timeout: Duration,
}

impl TokenSource for TokenFetcher {
    fn fetch(&self) -> BoxFuture<'_, Result<IssuedToken, GatewayError>> {
        Box::pin(async move {
            let target = format!(
                "{TOKEN_PATH}?grant_type=client_credential&appid={}&secret={}",
                encode_query(&self.appid),
                encode_query(self.secret.expose_secret())
            );
            let call = UpstreamCall {
                method: Method::Get,
                target: &target,
                body: None,
                headers: &[],
                idempotent: true,
                deadline: Instant::now() + self.timeout,
            };
            let answer = send(&self.upstream, PLATFORM, TOKEN_PATH, call).await?;
            let token = read_token_answer(&self.appid, &answer.body)?;
            tracing::info!(
                app_id = %self.appid,
                expires_in = token.expires_in.as_secs(),
                "fetched a new access token"
            );
            Ok(token)
        })
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn sealing_secret(&self) -> &SecretString {
        &self.secret
    }
}

/// The token in a `getToken` answer, or the platform's refusal.
pub(crate) fn read_token_answer(appid: &str, body: &[u8]) -> Result<IssuedToken, GatewayError> {
    let answer = json_object(PLATFORM, TOKEN_PATH, body)?;
    let code = envelope_code(&answer, "errcode").unwrap_or(-1);
    if code != 0 {
        return Err(GatewayError::Upstream(UpstreamError {
            platform: PLATFORM,
            endpoint: TOKEN_PATH.into(),
            code,
            message: envelope_text(&answer, &["errmsg"]),
            reason: errors::classify(codes::TOKEN_CODES, &HashMap::new(), code),
            metadata: vec![("app_id", appid.to_string())],
        }));
    }
    let Some(Json::String(value)) = answer.get("access_token") else {
        return Err(GatewayError::Malformed {
            platform: PLATFORM,
            endpoint: TOKEN_PATH.into(),
            detail: "access_token is missing".into(),
            transport: None,
        });
    };
    let expires_in = envelope_code(&answer, "expires_in")
        .filter(|s| *s > 0)
        .unwrap_or(7200);
    Ok(IssuedToken {
        value: SecretString::from(value.clone()),
        expires_in: Duration::from_secs(expires_in as u64),
    })
}
