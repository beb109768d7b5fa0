//! MSDK backend (`msdk.qq.com`, seed 002): the fixed URL parameters
//! (`timestamp`, `appid`, `sig = md5(msdkkey + timestamp)`, `openid`, `encode`,
//! `conn=1` for pooled keep-alive connections), optional msdktea body
//! encryption, and the many envelopes of its answers (`ret` with `msg` or
//! `message`, `err_type`, `-10000`/`-20000` with "code,message" in `msg`).

mod codes;
pub mod msdktea;

use std::{
    collections::HashMap,
    fmt::Write as _,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use async_trait::async_trait;
use bytes::Bytes;
use md5::{Digest, Md5};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value as Json};
use tokio::time::Instant;

use super::{
    Apps, ConfiguredPlatform, PlatformClient,
    envelope::{envelope_code, envelope_text, enveloped},
    route_call, send,
    signing::{encode_query, lower_hex, push_query_pairs},
};
use crate::{
    config::MsdkPlatform,
    errors::{GatewayError, UpstreamError},
    plan::{Route, UpstreamRequest},
    proto::{BodySignatureRecipe, Platform},
    upstream::{self, OutgoingBody, Upstream, UpstreamAnswer, UpstreamCall, UpstreamHttp},
};

const PLATFORM: Platform = Platform::Msdk;

/// The content type of every MSDK request body. The body is JSON text, but
/// every request example of seed 002 labels it a form, and the platform's own
/// samples send that; gamegate sends what they send.
const REQUEST_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// The platform of the `[msdk]` section: the keys of each app.
pub fn build(
    section: &MsdkPlatform,
    http: &UpstreamHttp,
) -> Result<ConfiguredPlatform, upstream::InvalidBaseUrl> {
    let apps = section.apps.iter().map(|(appid, app)| {
        let sig_key = match (app.encode, &app.appkey) {
            (1, Some(appkey)) => appkey.clone(),
            _ => app.msdkkey.clone(),
        };
        let keys = MsdkAppKeys {
            sig_key,
            appkey: app.appkey.clone(),
            encode: app.encode,
            encrypt: app.encrypt,
            video_channels: app
                .video_channels
                .iter()
                .filter_map(|(id, secret)| Some((id.parse().ok()?, secret.clone())))
                .collect(),
        };
        (appid.clone(), keys)
    });
    let client = MsdkClient {
        upstream: http.upstream_with(
            &section.base_url,
            section.max_answer_bytes,
            &section.upstream.options(),
        )?,
        apps: Apps::new(PLATFORM, apps),
    };
    Ok(ConfiguredPlatform::new(
        Box::new(client),
        Duration::from_millis(section.budget_ms),
    ))
}

/// What gamegate holds for one MSDK app.
pub struct MsdkAppKeys {
    /// The key of `sig`: the msdkkey (`encode=2`) or the appkey (`encode=1`).
    pub sig_key: SecretString,
    /// The appkey, for interfaces that carry it in the body (upload_wx "secret").
    pub appkey: Option<SecretString>,
    pub encode: u8,
    pub encrypt: bool,
    /// Tencent Video channel_id -> channel_secret.
    pub video_channels: HashMap<i64, SecretString>,
}

/// The lowercase hex md5 of the concatenation of `parts`.
fn md5_hex(parts: &[&str]) -> String {
    let mut md5 = Md5::new();
    for part in parts {
        md5.update(part.as_bytes());
    }
    lower_hex(&md5.finalize())
}

/// The video VIP body signature (`SIGNING.md`): md5(str(channel_id) +
/// channel_secret + openid [+ accessToken] + str(timestamp)).
pub fn video_vip_signature(
    recipe: BodySignatureRecipe,
    channel_id: i64,
    channel_secret: &str,
    openid: &str,
    access_token: &str,
    timestamp: u64,
) -> String {
    let (channel_id, timestamp) = (channel_id.to_string(), timestamp.to_string());
    match recipe {
        BodySignatureRecipe::QqVideoVip => md5_hex(&[
            &channel_id,
            channel_secret,
            openid,
            access_token,
            &timestamp,
        ]),
        _ => md5_hex(&[&channel_id, channel_secret, openid, &timestamp]),
    }
}

pub struct MsdkClient {
    upstream: Upstream,
    apps: Apps<MsdkAppKeys>,
}

/// `sig` of a call: lowercase hex md5 of the key followed by the timestamp.
pub fn msdk_signature(key: &str, timestamp: &str) -> String {
    md5_hex(&[key, timestamp])
}

/// The platform code and text of a `-10000`/`-20000` message: "code,message".
fn platform_code(message: &str) -> Option<i64> {
    message.split(',').next()?.trim().parse().ok()
}

impl MsdkClient {
    /// The body with what gamegate adds from the secrets it holds: the appkey
    /// member and the video VIP signature, when the route declares them.
    fn secured_body(
        &self,
        route: &Route,
        request: &UpstreamRequest,
        app: &MsdkAppKeys,
        now: u64,
    ) -> Result<Map<String, Json>, GatewayError> {
        let missing = |credential: String| GatewayError::AppCredentialMissing {
            app_id: request.app_id.clone(),
            credential,
        };
        let mut body = request.body.clone();
        if let Some(member) = &route.appkey_member {
            let appkey = app
                .appkey
                .as_ref()
                .ok_or_else(|| missing("appkey".into()))?;
            body.insert(
                member.clone(),
                Json::String(appkey.expose_secret().to_string()),
            );
        }
        if route.body_signature != BodySignatureRecipe::Unspecified {
            let text = |name: &str| match body.get(name) {
                Some(Json::String(s)) => s.clone(),
                Some(Json::Number(n)) => n.to_string(),
                _ => String::new(),
            };
            let channel_id: i64 = text("channel_id").parse().unwrap_or_default();
            let secret = app
                .video_channels
                .get(&channel_id)
                .ok_or_else(|| missing(format!("video channel {channel_id}")))?;
            let signature = video_vip_signature(
                route.body_signature,
                channel_id,
                secret.expose_secret(),
                &text("openid"),
                &text("accessToken"),
                now,
            );
            body.insert("timestamp".into(), Json::from(now));
            body.insert("signature".into(), Json::String(signature));
        }
        Ok(body)
    }
}

#[async_trait]
impl PlatformClient for MsdkClient {
    async fn call(
        &self,
        route: &Route,
        request: &UpstreamRequest,
        deadline: Instant,
    ) -> Result<Map<String, Json>, GatewayError> {
        let app = self.apps.get(&request.app_id)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let timestamp = now.to_string();
        let body = self.secured_body(route, request, app, now)?;
        let sig = msdk_signature(app.sig_key.expose_secret(), &timestamp);
        let mut target = String::with_capacity(256);
        let _ = write!(
            target,
            "{}?timestamp={timestamp}&appid={}&sig={sig}&openid={}&encode={}&conn=1",
            route.path,
            encode_query(&request.app_id),
            encode_query(&request.openid),
            app.encode,
        );
        push_query_pairs(&mut target, request.query.iter().map(|(n, v)| (n, v)));
        // Routes that declare no body (the freeflow ones) send none, not "{}".
        let body = route.sends_body().then(|| {
            let plain = serde_json::to_vec(&body).expect("a json map always serializes");
            OutgoingBody {
                bytes: Bytes::from(if app.encrypt {
                    msdktea::encrypt(&plain)
                } else {
                    plain
                }),
                content_type: REQUEST_CONTENT_TYPE,
            }
        });
        let headers: &[(&str, &str)] = match (app.encrypt, body.is_some()) {
            (false, _) => &[],
            (true, true) => &[
                ("Content-Encrypt", "msdktea"),
                ("Accept-Encrypt", "msdktea"),
            ],
            (true, false) => &[("Accept-Encrypt", "msdktea")],
        };
        let call = UpstreamCall {
            headers,
            ..route_call(route, &target, body, deadline)
        };
        let answer = send(&self.upstream, PLATFORM, &route.path, call).await?;
        read_answer(route, &answer)
    }
}

/// An answer's body, decrypted when its headers say it is encrypted, and its
/// envelope: the object when `ret` is 0, the platform's refusal (with `err_type`
/// and the Mobile QQ / WeChat code of `-10000`/`-20000`) otherwise.
pub(crate) fn read_answer(
    route: &Route,
    answer: &UpstreamAnswer,
) -> Result<Map<String, Json>, GatewayError> {
    // The answer says whether its body is encrypted: answers refused before
    // decryption (a bad sig, say) may come back plain even when asked not to.
    let encrypted = answer
        .headers
        .get("content-encrypt")
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"msdktea"));
    let plain = if encrypted {
        msdktea::decrypt(&answer.body).map_err(|error| GatewayError::Malformed {
            platform: PLATFORM,
            endpoint: route.path.clone(),
            detail: error.to_string(),
            transport: None,
        })?
    } else {
        answer.body.to_vec()
    };
    let (answer, ret) = enveloped(PLATFORM, &route.path, &plain, "ret")?;
    if ret == 0 {
        return Ok(answer);
    }
    let message = envelope_text(&answer, &["msg", "message"]);
    let err_type = answer
        .contains_key("err_type")
        .then(|| envelope_code(&answer, "err_type"))
        .flatten();
    let plat_code = match ret {
        -10000 | -20000 => envelope_code(&answer, "platCode")
            .filter(|code| *code != 0)
            .or_else(|| platform_code(&message)),
        _ => None,
    };
    let mut metadata = Vec::new();
    if let Some(err_type) = err_type {
        metadata.push(("err_type", err_type.to_string()));
    }
    if let Some(plat_code) = plat_code {
        metadata.push(("plat_code", plat_code.to_string()));
    }
    Err(GatewayError::Upstream(UpstreamError {
        platform: PLATFORM,
        endpoint: route.path.clone(),
        code: ret,
        reason: codes::classify(&route.code_overrides, ret, plat_code, err_type),
        message,
        metadata,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sig_is_md5_of_key_then_timestamp() {
        // python3 -c 'import hashlib; print(hashlib.md5(b"demo-msdk-qq-key-00011700000000").hexdigest())'
        assert_eq!(
            msdk_signature("demo-msdk-qq-key-0001", "1700000000"),
            "bcc31f206440071872d0f6a95e2b2091"
        );
        // The PHP comment of seed 002: md5("111111") = 96e79218965e...
        assert!(msdk_signature("111", "111").starts_with("96e79218965e"));
    }

    #[test]
    fn video_vip_signatures() {
        // python3: hashlib.md5(b"30012" + b"demo-video-channel-secret" + openid
        //          [+ access_token] + b"1700000000").hexdigest()
        assert_eq!(
            video_vip_signature(
                BodySignatureRecipe::QqVideoVip,
                30012,
                "demo-video-channel-secret",
                "A3284A812ECA15269F85AE1C2D94EB37",
                "933FE8C9AB9C585D7EABD04373B7155F",
                1_700_000_000,
            ),
            "a011577e814490d3c41a88f34a82de7e"
        );
        assert_eq!(
            video_vip_signature(
                BodySignatureRecipe::WxVideoVip,
                30012,
                "demo-video-channel-secret",
                "oGRTijiaT-XrbyXKozckdNHFgPyc",
                "ignored-by-the-wechat-recipe",
                1_700_000_000,
            ),
            "c03c6231c9534b50574d926010078bca"
        );
    }

    #[test]
    fn platform_codes_are_read_from_code_comma_message() {
        assert_eq!(platform_code("-73,user changed password"), Some(-73));
        assert_eq!(platform_code("40001,invalid credential"), Some(40001));
        assert_eq!(platform_code("no code here"), None);
    }
}
