//! QQ Game OpenAPI v3 (`openapi.minigame.qq.com`, seed 001): public parameters,
//! the HMAC-SHA1 `sig` keyed by the app's appkey, and the `ret`/`msg` envelope.

mod codes;

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value as Json};
use tokio::time::Instant;

use super::{
    Apps, ConfiguredPlatform, PlatformClient,
    envelope::coded_answer,
    route_call, send,
    signing::{openapi_signature, push_query_pairs},
};
use crate::{
    config::OpenApiPlatform,
    errors::GatewayError,
    plan::{Method, Route, UpstreamRequest},
    proto::Platform,
    upstream::{self, OutgoingBody, Upstream, UpstreamHttp},
};

const PLATFORM: Platform = Platform::QqOpenapi;

/// The platform of the `[qq_openapi]` section: an appkey per app.
pub fn build(
    section: &OpenApiPlatform,
    http: &UpstreamHttp,
) -> Result<ConfiguredPlatform, upstream::InvalidBaseUrl> {
    let client = OpenApiClient {
        upstream: http.upstream_with(
            &section.base_url,
            section.max_answer_bytes,
            &section.upstream.options(),
        )?,
        appkeys: Apps::new(
            PLATFORM,
            section
                .apps
                .iter()
                .map(|(appid, app)| (appid.clone(), SecretString::clone(&app.appkey))),
        ),
    };
    Ok(ConfiguredPlatform::new(
        Box::new(client),
        Duration::from_millis(section.budget_ms),
    ))
}

pub struct OpenApiClient {
    upstream: Upstream,
    appkeys: Apps<SecretString>,
}

#[async_trait]
impl PlatformClient for OpenApiClient {
    async fn call(
        &self,
        route: &Route,
        request: &UpstreamRequest,
        deadline: Instant,
    ) -> Result<Map<String, Json>, GatewayError> {
        let appkey = self.appkeys.get(&request.app_id)?;
        let mut params = request.query.clone();
        if !params.iter().any(|(name, _)| name == "format") {
            params.push(("format".into(), "json".into()));
        }
        // Body members of a POST interface are form parameters, signed like the rest.
        for (name, value) in &request.body {
            let text = match value {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            };
            params.push((name.clone(), text));
        }
        let sig = openapi_signature(
            route.method.as_str(),
            &route.path,
            &params,
            appkey.expose_secret(),
        );
        params.push(("sig".into(), sig));
        let mut encoded = String::with_capacity(256);
        push_query_pairs(&mut encoded, params.iter().map(|(n, v)| (n, v)));
        let (target, body) = match route.method {
            Method::Get => (format!("{}?{}", route.path, encoded), None),
            Method::Post => (
                route.path.clone(),
                Some(OutgoingBody {
                    bytes: Bytes::from(encoded),
                    content_type: "application/x-www-form-urlencoded",
                }),
            ),
        };
        let call = route_call(route, &target, body, deadline);
        let answer = send(&self.upstream, PLATFORM, &route.path, call).await?;
        read_answer(route, &answer.body)
    }
}

/// The `ret`/`msg` envelope of an answer: its object when `ret` is 0, the
/// platform's refusal otherwise.
pub(crate) fn read_answer(route: &Route, body: &[u8]) -> Result<Map<String, Json>, GatewayError> {
    coded_answer(
        PLATFORM,
        route,
        body,
        "ret",
        &["msg", "message"],
        codes::CODES,
    )
}
