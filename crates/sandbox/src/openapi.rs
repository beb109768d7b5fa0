//! QQ Game OpenAPI v3, dawanka interfaces (seed 001, host `openapi.minigame.qq.com`). Answers are
//! `{"ret":..,"msg":..}` JSON with HTTP 200, as the platform does.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_encode};
use serde_json::{Value, json};
use sha1::Sha1;
use tracing::info;

use crate::query::QueryParams;
use crate::{DawankaState, Sandbox, SandboxConfig, lock};

pub(crate) const GET_DAWANKA_INFO: &str = "/v3/user/get_dawanka_info";
pub(crate) const REPORT_DAWANKA_PAY: &str = "/v3/user/report_dawanka_pay";

pub(crate) const PATHS: [&str; 2] = [GET_DAWANKA_INFO, REPORT_DAWANKA_PAY];

/// The only `pf` these interfaces support.
const SUPPORTED_PF: &str = "qqgame";
/// The sandbox's choice for a refused report; the document lists no code for it.
const NO_PAY_RETURN_LEFT: i64 = 1;

/// OpenAPI V3 `enc`: every byte but `A-Z a-z 0-9 - _ .` percent-encoded, uppercase hex (the
/// crate always writes uppercase hex).
const ENC: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// An answer other than success, with the platform's `ret`. The Display text is the `msg`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenApiError {
    #[error("appid invalid")]
    AppidInvalid,
    #[error("openid invalid")]
    OpenidInvalid,
    #[error("openkey length is not 32 bytes")]
    OpenkeyLength,
    #[error("sig invalid")]
    SigInvalid,
    #[error("authentication of openid failed")]
    OpenidAuthFailed,
    #[error("authentication of openid/openkey failed")]
    OpenkeyAuthFailed,
    #[error("authentication of sig failed")]
    SigAuthFailed,
    #[error("other authentication error: only pf=qqgame is supported")]
    PfUnsupported,
    #[error("backend error")]
    Busy,
    #[error("sandbox injected error")]
    Injected(i64),
    #[error("no top-up bonus uses left")]
    NoPayReturnLeft,
}

impl OpenApiError {
    pub(crate) fn code(&self) -> i64 {
        match self {
            Self::AppidInvalid => 2_000_001,
            Self::OpenidInvalid => 2_000_002,
            Self::OpenkeyLength => 2_000_003,
            Self::SigInvalid => 2_000_004,
            Self::OpenidAuthFailed => 2_000_021,
            Self::OpenkeyAuthFailed => 2_000_023,
            Self::SigAuthFailed => 2_000_024,
            Self::PfUnsupported => 2_000_025,
            Self::Busy => 2_000_030,
            Self::Injected(code) => *code,
            Self::NoPayReturnLeft => NO_PAY_RETURN_LEFT,
        }
    }
}

impl IntoResponse for OpenApiError {
    fn into_response(self) -> Response {
        Json(json!({ "ret": self.code(), "msg": self.to_string() })).into_response()
    }
}

/// The OpenAPI V3 signature source: `METHOD&enc(path)&enc(sorted name=value pairs joined by &)`.
/// `params` are the decoded parameters without `sig`; values are joined unencoded.
pub(crate) fn signature_source<'a>(
    method: &str,
    path: &str,
    params: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
) -> String {
    let mut params: Vec<_> = params.into_iter().collect();
    // Stable sort by name bytes: duplicates keep their received order.
    params.sort_by(|a, b| a.0.cmp(b.0));
    let mut joined = Vec::new();
    for (index, (name, value)) in params.into_iter().enumerate() {
        if index > 0 {
            joined.push(b'&');
        }
        joined.extend_from_slice(name);
        joined.push(b'=');
        joined.extend_from_slice(value);
    }
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        percent_encode(path.as_bytes(), ENC),
        percent_encode(&joined, ENC)
    )
}

/// HMAC-SHA1 keyed with `appkey + "&"` over the signature source; base64 of it is the `sig`.
fn signature_mac(appkey: &str, source: &str) -> Hmac<Sha1> {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(format!("{appkey}&").as_bytes())
        .expect("hmac takes keys of any length");
    mac.update(source.as_bytes());
    mac
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct UserKey {
    appid: String,
    openid: String,
}

struct UserRecord {
    openkey: String,
    dawanka: DawankaState,
}

struct PlatformState {
    /// appid -> appkey.
    apps: HashMap<String, String>,
    users: HashMap<UserKey, UserRecord>,
}

/// The OpenAPI platform's state.
pub(crate) struct OpenApi {
    state: Mutex<PlatformState>,
}

impl OpenApi {
    pub(crate) fn new(config: &SandboxConfig) -> Self {
        let apps = config
            .openapi_apps
            .iter()
            .map(|app| (app.appid.clone(), app.appkey.clone()))
            .collect::<HashMap<_, _>>();
        let mut users = HashMap::new();
        for user in &config.openapi_users {
            if !apps.contains_key(&user.appid) {
                tracing::warn!(
                    appid = %user.appid,
                    openid = %user.openid,
                    "openapi user of an unknown app cannot be reached"
                );
            }
            users.insert(
                UserKey {
                    appid: user.appid.clone(),
                    openid: user.openid.clone(),
                },
                UserRecord {
                    openkey: user.openkey.clone(),
                    dawanka: user.dawanka.clone(),
                },
            );
        }
        Self {
            state: Mutex::new(PlatformState { apps, users }),
        }
    }

    /// Creates or replaces an app.
    pub(crate) fn put_app(&self, appid: &str, appkey: &str) {
        lock(&self.state)
            .apps
            .insert(appid.to_owned(), appkey.to_owned());
    }

    /// Creates or replaces a user of a known app; false if the app is unknown.
    pub(crate) fn put_user(
        &self,
        appid: &str,
        openid: &str,
        openkey: &str,
        dawanka: DawankaState,
    ) -> bool {
        let mut state = lock(&self.state);
        if !state.apps.contains_key(appid) {
            return false;
        }
        let key = UserKey {
            appid: appid.to_owned(),
            openid: openid.to_owned(),
        };
        state.users.insert(
            key,
            UserRecord {
                openkey: openkey.to_owned(),
                dawanka,
            },
        );
        true
    }

    pub(crate) fn dawanka(&self, appid: &str, openid: &str) -> Option<DawankaState> {
        let key = UserKey {
            appid: appid.to_owned(),
            openid: openid.to_owned(),
        };
        lock(&self.state)
            .users
            .get(&key)
            .map(|user| user.dawanka.clone())
    }

    /// The public-parameter checks, in order: appid, openid format, openkey length, sig format,
    /// sig, pf, then the user and their openkey.
    fn authenticate(&self, path: &str, params: &QueryParams) -> Result<UserKey, OpenApiError> {
        let state = lock(&self.state);
        let appid = params
            .get_non_empty("appid")
            .ok_or(OpenApiError::AppidInvalid)?;
        let appkey = state
            .apps
            .get(appid.as_ref())
            .ok_or(OpenApiError::AppidInvalid)?;
        let openid = params
            .get("openid")
            .filter(|openid| openid.len() == 32 && openid.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or(OpenApiError::OpenidInvalid)?;
        let openkey = params
            .get("openkey")
            .filter(|openkey| openkey.len() == 32)
            .ok_or(OpenApiError::OpenkeyLength)?;
        let sig = params
            .get_non_empty("sig")
            .and_then(|sig| BASE64.decode(sig.as_bytes()).ok())
            .ok_or(OpenApiError::SigInvalid)?;
        let source = signature_source("GET", path, params.pairs_except("sig"));
        if signature_mac(appkey, &source).verify_slice(&sig).is_err() {
            return Err(OpenApiError::SigAuthFailed);
        }
        if params.get("pf").as_deref() != Some(SUPPORTED_PF) {
            return Err(OpenApiError::PfUnsupported);
        }
        let key = UserKey {
            appid: appid.into_owned(),
            openid: openid.into_owned(),
        };
        let user = state
            .users
            .get(&key)
            .ok_or(OpenApiError::OpenidAuthFailed)?;
        if !crate::constant_time_eq(user.openkey.as_bytes(), openkey.as_bytes()) {
            return Err(OpenApiError::OpenkeyAuthFailed);
        }
        Ok(key)
    }

    /// Uses one top-up bonus: refused when none is left, unlimited (-1) stays unlimited.
    fn report_pay(&self, key: &UserKey) -> Result<(i32, i32), OpenApiError> {
        let mut state = lock(&self.state);
        let user = state
            .users
            .get_mut(key)
            .ok_or(OpenApiError::OpenidAuthFailed)?;
        let dawanka = &mut user.dawanka;
        if dawanka.pay_return_count == 0 {
            return Err(OpenApiError::NoPayReturnLeft);
        }
        dawanka.used = dawanka.used.saturating_add(1);
        if dawanka.pay_return_count > 0 {
            dawanka.pay_return_count -= 1;
        }
        Ok((dawanka.used, dawanka.pay_return_count))
    }
}

pub(crate) fn routes() -> Router<Sandbox> {
    Router::new()
        .route(GET_DAWANKA_INFO, get(get_dawanka_info))
        .route(REPORT_DAWANKA_PAY, get(report_dawanka_pay))
}

/// Authenticates an OpenAPI request, logging refusals.
fn accept(
    sandbox: &Sandbox,
    path: &'static str,
    params: &QueryParams,
) -> Result<UserKey, OpenApiError> {
    sandbox
        .shared
        .openapi
        .authenticate(path, params)
        .inspect_err(|error| {
            let appid = params.get("appid").unwrap_or_default();
            let openid = params.get("openid").unwrap_or_default();
            info!(path, %appid, %openid, code = error.code(), "openapi request refused");
        })
}

/// Levels 3 (potential) and 4 (quasi) exist only in v2 data; v1 callers see them as 0.
fn visible_level(level: i32, v2: bool) -> i32 {
    if !v2 && matches!(level, 3 | 4) {
        0
    } else {
        level
    }
}

async fn get_dawanka_info(
    State(sandbox): State<Sandbox>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, OpenApiError> {
    let params = QueryParams::parse(query.as_deref());
    let key = accept(&sandbox, GET_DAWANKA_INFO, &params)?;
    let v2 = params.get("version").as_deref() == Some("2");
    let dawanka = sandbox
        .shared
        .openapi
        .dawanka(&key.appid, &key.openid)
        .ok_or(OpenApiError::OpenidAuthFailed)?;
    let mut answer = json!({
        "ret": 0,
        "msg": "",
        "score": dawanka.score,
        "level": visible_level(dawanka.level, v2),
        "binding": dawanka.binding,
        "discount": dawanka.discount,
        "payReturnCount": dawanka.pay_return_count,
        "isUsingCard": dawanka.is_using_card,
    });
    // The document returns these two only while a privilege card is in use.
    if dawanka.is_using_card {
        answer["realLevel"] = json!(visible_level(dawanka.real_level, v2));
        answer["CardExpireTs"] = json!(dawanka.card_expire_ts);
    }
    info!(appid = %key.appid, openid = %key.openid, v2, "dawanka info answered");
    Ok(Json(answer))
}

async fn report_dawanka_pay(
    State(sandbox): State<Sandbox>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, OpenApiError> {
    let params = QueryParams::parse(query.as_deref());
    let key = accept(&sandbox, REPORT_DAWANKA_PAY, &params)?;
    let (used, left) = sandbox.shared.openapi.report_pay(&key).inspect_err(|error| {
        info!(appid = %key.appid, openid = %key.openid, code = error.code(), "dawanka pay report refused");
    })?;
    info!(appid = %key.appid, openid = %key.openid, used, left, "dawanka pay reported");
    Ok(Json(json!({
        "ret": 0,
        "msg": "report success.",
        "use": used,
        "left": left,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(appkey: &str, path: &str, params: &[(&str, &str)]) -> (String, String) {
        let pairs = params.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes()));
        let source = signature_source("GET", path, pairs);
        let sig = BASE64.encode(signature_mac(appkey, &source).finalize().into_bytes());
        (source, sig)
    }

    // The example of Tencent's public OpenAPI V3 signature documentation, checked with Python:
    //   enc = lambda s: "".join(c if c.isascii() and (c.isalnum() or c in "-_.")
    //                           else "".join("%%%02X" % b for b in c.encode()) for c in s)
    //   src = "GET&" + enc(path) + "&" + enc("&".join(k + "=" + v for k, v in sorted(params.items())))
    //   base64.b64encode(hmac.new((appkey + "&").encode(), src.encode(), hashlib.sha1).digest())
    #[test]
    fn matches_the_published_tencent_example() {
        let (source, sig) = sig(
            "228bf094169a40a3bd188ba37ebe8723",
            "/v3/user/get_info",
            &[
                ("openid", "11111111111111111"),
                ("openkey", "2222222222222222"),
                ("appid", "123456"),
                ("pf", "qzone"),
                ("format", "json"),
                ("userip", "112.90.139.30"),
            ],
        );
        assert_eq!(
            source,
            "GET&%2Fv3%2Fuser%2Fget_info&appid%3D123456%26format%3Djson%26openid%3D11111111111111111\
             %26openkey%3D2222222222222222%26pf%3Dqzone%26userip%3D112.90.139.30"
        );
        assert_eq!(sig, "FdJkiDYwMj5Aj1UG2RUPc83iokk=");
    }

    // Same Python code, demo app, with values that need encoding (space, '/', '~', '+') and a
    // userip with dots (which stay as they are).
    #[test]
    fn encodes_values_as_python_does() {
        let (source, sig) = sig(
            "demo-openapi-appkey",
            GET_DAWANKA_INFO,
            &[
                ("version", "2"),
                ("appid", "1110766236"),
                ("openid", "AB055EE03EE6F7CCB31F6CCE75A50A38"),
                ("openkey", "CC11B9096D458AEFDEF72981AE5A136D"),
                ("pf", "qqgame"),
                ("format", "json"),
                ("userip", "203.0.113.7"),
                ("note", "a b/c~+"),
            ],
        );
        assert_eq!(
            source,
            "GET&%2Fv3%2Fuser%2Fget_dawanka_info&appid%3D1110766236%26format%3Djson\
             %26note%3Da%20b%2Fc%7E%2B%26openid%3DAB055EE03EE6F7CCB31F6CCE75A50A38\
             %26openkey%3DCC11B9096D458AEFDEF72981AE5A136D%26pf%3Dqqgame\
             %26userip%3D203.0.113.7%26version%3D2"
        );
        assert_eq!(sig, "dNrGk/pyS/K9IiplsO2pHoZ6r7Q=");
    }

    // Python as above: the document's report_dawanka_pay example parameters with the demo appkey.
    #[test]
    fn report_example_vector() {
        let (_, sig) = sig(
            "demo-openapi-appkey",
            REPORT_DAWANKA_PAY,
            &[
                ("appid", "1110766236"),
                ("openid", "AB055EE03EE6F7CCB31F6CCE75A50A38"),
                ("openkey", "CC11B9096D458AEFDEF72981AE5A136D"),
                ("pf", "qqgame"),
            ],
        );
        assert_eq!(sig, "9ZzjoIFnMM7NWsknzxjuPEgLQmg=");
    }

    #[test]
    fn verifies_a_received_query() {
        let params = QueryParams::parse(Some(
            "appid=1110766236&openid=AB055EE03EE6F7CCB31F6CCE75A50A38\
             &openkey=CC11B9096D458AEFDEF72981AE5A136D&pf=qqgame&sig=9ZzjoIFnMM7NWsknzxjuPEgLQmg%3D",
        ));
        let openapi = OpenApi::new(&SandboxConfig::demo());
        let key = openapi
            .authenticate(REPORT_DAWANKA_PAY, &params)
            .expect("valid sig");
        assert_eq!(key.openid, "AB055EE03EE6F7CCB31F6CCE75A50A38");
        // The same query against the other path fails the signature.
        let error = openapi.authenticate(GET_DAWANKA_INFO, &params).unwrap_err();
        assert_eq!(error.code(), 2_000_024);
    }

    #[test]
    fn v1_hides_v2_levels() {
        assert_eq!(visible_level(3, false), 0);
        assert_eq!(visible_level(4, false), 0);
        assert_eq!(visible_level(2, false), 2);
        assert_eq!(visible_level(3, true), 3);
    }
}
