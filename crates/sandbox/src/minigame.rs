//! QQ mini-game server API (seed 000, host `api.q.qq.com`): access tokens and the user's cloud
//! storage. Answers are `{"errcode":..,"errmsg":..}` JSON with HTTP 200, as the platform does.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::{Value, json};
use sha2::Sha256;
use tracing::{debug, info};

use crate::query::QueryParams;
use crate::{Sandbox, SandboxConfig, constant_time_eq, lock};

pub(crate) const GET_TOKEN: &str = "/api/getToken";
pub(crate) const SET_USER_STORAGE: &str = "/api/openDataContext/set_user_storage";
pub(crate) const REMOVE_USER_STORAGE: &str = "/api/openDataContext/remove_user_storage";
pub(crate) const SET_USER_INTERACTIVE_DATA: &str = "/api/setuserinteractivedata";
pub(crate) const JSCODE2SESSION: &str = "/sns/jscode2session";

pub(crate) const PATHS: [&str; 5] = [
    GET_TOKEN,
    JSCODE2SESSION,
    SET_USER_STORAGE,
    REMOVE_USER_STORAGE,
    SET_USER_INTERACTIVE_DATA,
];

/// The only signature method the platform supports.
const SIG_METHOD: &str = "hmac_sha256";
/// Documented limits of set_user_storage.
const MAX_KEY_BYTES: usize = 128;
const MAX_KV_BYTES: usize = 1024;
const MAX_PAIRS: usize = 128;
/// setuserinteractivedata keys are "1".."50".
const INTERACTIVE_KEYS: std::ops::RangeInclusive<u8> = 1..=50;
/// Access tokens are opaque to callers; this length is comfortably unguessable.
const TOKEN_LEN: usize = 48;
/// Login codes and session keys: as long as the platform's (32 and 24 characters).
const CODE_LEN: usize = 32;
const SESSION_KEY_LEN: usize = 24;
/// jscode2session: at most this many logins of one user per minute (then 45011).
const LOGINS_PER_MINUTE: usize = 100;

fn random_text(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// An answer other than success, with the platform's code. The Display text is the `errmsg`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MiniGameError {
    #[error("system busy")]
    Busy,
    #[error("sandbox injected error")]
    Injected(i64),
    #[error("invalid credential, appsecret is wrong")]
    SecretWrong,
    #[error("invalid grant_type")]
    GrantTypeInvalid,
    #[error("invalid appid")]
    AppidInvalid,
    #[error("auth parameter missing")]
    AuthParameterMissing,
    #[error("auth parameter type error, sig_method must be hmac_sha256")]
    SigMethodUnsupported,
    #[error("access_token invalid or expired")]
    AccessTokenInvalid,
    #[error("signature check failed")]
    SignatureInvalid,
    #[error("{0}")]
    BodyInvalid(&'static str),
    #[error("key-value too long")]
    KeyValueTooLong,
    #[error("user storage over the size limit")]
    StorageFull,
    #[error("too many key-value pairs")]
    TooManyPairs,
    #[error("key empty or too long")]
    KeyTooLong,
    #[error("invalid code")]
    CodeInvalid,
    #[error("api freq out of limit")]
    FrequencyLimited,
}

impl MiniGameError {
    pub(crate) fn code(&self) -> i64 {
        match self {
            Self::Busy => -1,
            Self::Injected(code) => *code,
            Self::SecretWrong => 40001,
            Self::GrantTypeInvalid => 40002,
            Self::AppidInvalid => 40013,
            Self::AuthParameterMissing => -4,
            Self::SigMethodUnsupported => -3,
            Self::AccessTokenInvalid => -100_050_019,
            Self::SignatureInvalid => -100_050_007,
            Self::BodyInvalid(_) => -2,
            Self::KeyValueTooLong => 87016,
            Self::StorageFull => 87017,
            Self::TooManyPairs => 87018,
            Self::KeyTooLong => 87019,
            Self::CodeInvalid => 40029,
            Self::FrequencyLimited => 45011,
        }
    }
}

impl IntoResponse for MiniGameError {
    fn into_response(self) -> Response {
        Json(json!({ "errcode": self.code(), "errmsg": self.to_string() })).into_response()
    }
}

fn ok() -> Json<Value> {
    Json(json!({ "errcode": 0, "errmsg": "ok" }))
}

/// Checks a storage `signature`: lowercase hex of HMAC-SHA256 keyed with the session_key's UTF-8
/// bytes (not base64-decoded) over the exact body bytes received.
pub(crate) fn verify_signature(session_key: &str, body: &[u8], signature: &str) -> bool {
    // The platform issues lowercase hex; anything else is not a signature it would accept.
    let well_formed = signature.len() == 64
        && signature
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let Ok(received) = hex::decode(signature) else {
        return false;
    };
    well_formed
        && hmac_sha256(session_key, body)
            .verify_slice(&received)
            .is_ok()
}

fn hmac_sha256(session_key: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(session_key.as_bytes())
        .expect("hmac takes keys of any length");
    mac.update(body);
    mac
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct UserKey {
    appid: String,
    openid: String,
}

struct Token {
    appid: String,
    valid_until: Instant,
}

/// A login code minted through the admin API: single-use, valid `code_ttl`.
struct LoginCode {
    user: UserKey,
    unionid: Option<String>,
    valid_until: Instant,
}

#[derive(Default)]
struct UserStorage {
    kv: BTreeMap<String, String>,
    interactive: BTreeMap<u8, i64>,
}

/// Token lifetimes and the storage cap, changeable at run time through the admin API.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    pub(crate) token_ttl: Duration,
    pub(crate) token_grace: Duration,
    pub(crate) storage_total_cap_bytes: usize,
    /// How long a login code is valid (the platform says 5 minutes).
    pub(crate) code_ttl: Duration,
}

struct PlatformState {
    settings: Settings,
    /// appid -> app secret.
    apps: HashMap<String, String>,
    /// user -> session_key.
    users: HashMap<UserKey, String>,
    /// access_token -> its app and lifetime.
    tokens: HashMap<String, Token>,
    storage: HashMap<UserKey, UserStorage>,
    /// Login codes not used yet.
    codes: HashMap<String, LoginCode>,
    /// Each user's logins of the last minute.
    logins: HashMap<UserKey, std::collections::VecDeque<Instant>>,
}

/// The mini-game platform's state.
pub(crate) struct MiniGame {
    state: Mutex<PlatformState>,
}

/// A snapshot of one user's storage, for the admin API.
pub(crate) struct StorageSnapshot {
    pub(crate) kv: BTreeMap<String, String>,
    pub(crate) interactive: BTreeMap<String, i64>,
}

impl MiniGame {
    pub(crate) fn new(config: &SandboxConfig) -> Self {
        let apps = config
            .minigame_apps
            .iter()
            .map(|app| (app.appid.clone(), app.secret.clone()))
            .collect::<HashMap<_, _>>();
        let mut users = HashMap::new();
        for user in &config.minigame_users {
            if !apps.contains_key(&user.appid) {
                tracing::warn!(
                    appid = %user.appid,
                    openid = %user.openid,
                    "mini-game user of an unknown app cannot be reached"
                );
            }
            let key = UserKey {
                appid: user.appid.clone(),
                openid: user.openid.clone(),
            };
            users.insert(key, user.session_key.clone());
        }
        let settings = Settings {
            token_ttl: config.token_ttl,
            token_grace: config.token_grace,
            storage_total_cap_bytes: config.storage_total_cap_bytes,
            code_ttl: config.code_ttl,
        };
        Self {
            state: Mutex::new(PlatformState {
                settings,
                apps,
                users,
                tokens: HashMap::new(),
                storage: HashMap::new(),
                codes: HashMap::new(),
                logins: HashMap::new(),
            }),
        }
    }

    pub(crate) fn settings(&self) -> Settings {
        lock(&self.state).settings
    }

    pub(crate) fn update_settings(&self, update: impl FnOnce(&mut Settings)) -> Settings {
        let mut state = lock(&self.state);
        update(&mut state.settings);
        state.settings
    }

    /// Creates or replaces an app (its tokens stay valid).
    pub(crate) fn put_app(&self, appid: &str, secret: &str) {
        lock(&self.state)
            .apps
            .insert(appid.to_owned(), secret.to_owned());
    }

    /// Creates or replaces a user of a known app; false if the app is unknown. Stored data stays.
    pub(crate) fn put_user(&self, appid: &str, openid: &str, session_key: &str) -> bool {
        let mut state = lock(&self.state);
        if !state.apps.contains_key(appid) {
            return false;
        }
        let key = UserKey {
            appid: appid.to_owned(),
            openid: openid.to_owned(),
        };
        state.users.insert(key, session_key.to_owned());
        true
    }

    /// Mints a login code for a user of a known app (what qq.login() gives the client); None if
    /// the app is unknown. The user need not exist yet: the login creates it.
    pub(crate) fn mint_code(
        &self,
        appid: &str,
        openid: &str,
        unionid: Option<String>,
    ) -> Option<String> {
        let mut state = lock(&self.state);
        if !state.apps.contains_key(appid) {
            return None;
        }
        let now = Instant::now();
        state.codes.retain(|_, code| code.valid_until > now);
        let code = random_text(CODE_LEN);
        let valid_until = now + state.settings.code_ttl;
        state.codes.insert(
            code.clone(),
            LoginCode {
                user: UserKey {
                    appid: appid.to_owned(),
                    openid: openid.to_owned(),
                },
                unionid,
                valid_until,
            },
        );
        Some(code)
    }

    /// jscode2session: checks the app's credentials and the code (single-use, not expired), and
    /// issues the user a new session key, which replaces the one before.
    fn login(
        &self,
        params: &QueryParams,
    ) -> Result<(UserKey, Option<String>, String), MiniGameError> {
        if params.get("grant_type").as_deref() != Some("authorization_code") {
            return Err(MiniGameError::GrantTypeInvalid);
        }
        let appid = params.get("appid").unwrap_or_default();
        let mut state = lock(&self.state);
        let Some(secret) = state.apps.get(appid.as_ref()) else {
            return Err(MiniGameError::AppidInvalid);
        };
        let given = params.get("secret").unwrap_or_default();
        if !constant_time_eq(given.as_bytes(), secret.as_bytes()) {
            return Err(MiniGameError::SecretWrong);
        }
        let js_code = params.get("js_code").unwrap_or_default();
        let now = Instant::now();
        let user = match state.codes.get(js_code.as_ref()) {
            Some(code) if code.valid_until > now && code.user.appid == appid => code.user.clone(),
            Some(_) => {
                state.codes.remove(js_code.as_ref());
                return Err(MiniGameError::CodeInvalid);
            }
            None => return Err(MiniGameError::CodeInvalid),
        };
        // The rate limit leaves the code usable.
        let logins = state.logins.entry(user.clone()).or_default();
        while logins
            .front()
            .is_some_and(|at| now.duration_since(*at) >= Duration::from_secs(60))
        {
            logins.pop_front();
        }
        if logins.len() >= LOGINS_PER_MINUTE {
            return Err(MiniGameError::FrequencyLimited);
        }
        logins.push_back(now);
        let code = state
            .codes
            .remove(js_code.as_ref())
            .expect("the code was just found");
        let session_key = random_text(SESSION_KEY_LEN);
        state.users.insert(user.clone(), session_key.clone());
        Ok((user, code.unionid, session_key))
    }

    /// Invalidates every token of the app at once; None if the app is unknown.
    pub(crate) fn revoke_tokens(&self, appid: &str) -> Option<usize> {
        let mut state = lock(&self.state);
        if !state.apps.contains_key(appid) {
            return None;
        }
        let before = state.tokens.len();
        state.tokens.retain(|_, token| token.appid != appid);
        Some(before - state.tokens.len())
    }

    /// The user's stored data; None if the user is unknown.
    pub(crate) fn storage(&self, appid: &str, openid: &str) -> Option<StorageSnapshot> {
        let state = lock(&self.state);
        let key = UserKey {
            appid: appid.to_owned(),
            openid: openid.to_owned(),
        };
        if !state.users.contains_key(&key) {
            return None;
        }
        let storage = state.storage.get(&key);
        Some(StorageSnapshot {
            kv: storage.map(|s| s.kv.clone()).unwrap_or_default(),
            interactive: storage
                .map(|s| {
                    s.interactive
                        .iter()
                        .map(|(k, v)| (k.to_string(), *v))
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    /// getToken: checks the app's credentials and issues a new token; the app's earlier tokens
    /// then live at most `token_grace` longer.
    fn issue_token(&self, params: &QueryParams) -> Result<(String, Duration), MiniGameError> {
        if params.get("grant_type").as_deref() != Some("client_credential") {
            return Err(MiniGameError::GrantTypeInvalid);
        }
        let appid = params.get("appid").unwrap_or_default();
        let mut state = lock(&self.state);
        let Some(secret) = state.apps.get(appid.as_ref()) else {
            return Err(MiniGameError::AppidInvalid);
        };
        let given = params.get("secret").unwrap_or_default();
        if !constant_time_eq(given.as_bytes(), secret.as_bytes()) {
            return Err(MiniGameError::SecretWrong);
        }
        let now = Instant::now();
        let Settings {
            token_ttl,
            token_grace,
            ..
        } = state.settings;
        let grace_end = now + token_grace;
        for token in state.tokens.values_mut() {
            if token.appid == appid && token.valid_until > grace_end {
                token.valid_until = grace_end;
            }
        }
        // Forget dead tokens here so that the table does not grow without bound.
        state.tokens.retain(|_, token| token.valid_until > now);
        let token: String = rand::rng()
            .sample_iter(&Alphanumeric)
            .take(TOKEN_LEN)
            .map(char::from)
            .collect();
        state.tokens.insert(
            token.clone(),
            Token {
                appid: appid.into_owned(),
                valid_until: now + token_ttl,
            },
        );
        Ok((token, token_ttl))
    }

    /// The auth checks shared by the storage endpoints, in the platform's order: parameters
    /// present, sig_method, access_token, then openid and signature.
    fn authenticate(&self, params: &QueryParams, body: &[u8]) -> Result<UserKey, MiniGameError> {
        let (Some(access_token), Some(openid), Some(signature), Some(sig_method)) = (
            params.get_non_empty("access_token"),
            params.get_non_empty("openid"),
            params.get_non_empty("signature"),
            params.get_non_empty("sig_method"),
        ) else {
            return Err(MiniGameError::AuthParameterMissing);
        };
        if sig_method != SIG_METHOD {
            return Err(MiniGameError::SigMethodUnsupported);
        }
        let state = lock(&self.state);
        let appid = match state.tokens.get(access_token.as_ref()) {
            Some(token) if token.valid_until > Instant::now() => token.appid.clone(),
            _ => return Err(MiniGameError::AccessTokenInvalid),
        };
        let user = UserKey {
            appid,
            openid: openid.into_owned(),
        };
        match state.users.get(&user) {
            Some(session_key) if verify_signature(session_key, body, &signature) => Ok(user),
            _ => Err(MiniGameError::SignatureInvalid),
        }
    }

    fn set_user_storage(
        &self,
        user: &UserKey,
        pairs: Vec<(String, String)>,
    ) -> Result<(), MiniGameError> {
        for (key, value) in &pairs {
            if key.is_empty() || key.len() > MAX_KEY_BYTES {
                return Err(MiniGameError::KeyTooLong);
            }
            if key.len() + value.len() > MAX_KV_BYTES {
                return Err(MiniGameError::KeyValueTooLong);
            }
        }
        let mut state = lock(&self.state);
        let cap = state.settings.storage_total_cap_bytes;
        let storage = state.storage.entry(user.clone()).or_default();
        // Merge into a copy: the platform stores all pairs or none.
        let mut merged = storage.kv.clone();
        merged.extend(pairs);
        if merged.len() > MAX_PAIRS {
            return Err(MiniGameError::TooManyPairs);
        }
        let total: usize = merged.iter().map(|(k, v)| k.len() + v.len()).sum();
        if total > cap {
            return Err(MiniGameError::StorageFull);
        }
        storage.kv = merged;
        Ok(())
    }

    fn remove_user_storage(&self, user: &UserKey, keys: &[String]) {
        let mut state = lock(&self.state);
        if let Some(storage) = state.storage.get_mut(user) {
            for key in keys {
                storage.kv.remove(key);
            }
        }
    }

    fn set_interactive(&self, user: &UserKey, pairs: Vec<(u8, i64)>) {
        let mut state = lock(&self.state);
        let storage = state.storage.entry(user.clone()).or_default();
        storage.interactive.extend(pairs);
    }
}

pub(crate) fn routes() -> Router<Sandbox> {
    Router::new()
        .route(GET_TOKEN, get(get_token))
        .route(JSCODE2SESSION, get(jscode2session))
        .route(SET_USER_STORAGE, post(set_user_storage))
        .route(REMOVE_USER_STORAGE, post(remove_user_storage))
        .route(SET_USER_INTERACTIVE_DATA, post(set_user_interactive_data))
}

async fn get_token(
    State(sandbox): State<Sandbox>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, MiniGameError> {
    let params = QueryParams::parse(query.as_deref());
    let appid = params.get("appid").unwrap_or_default().into_owned();
    match sandbox.shared.minigame.issue_token(&params) {
        Ok((token, ttl)) => {
            info!(appid, "access token issued");
            // Round up so that a sub-second test lifetime does not announce 0.
            let expires_in = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
            Ok(Json(json!({
                "errcode": 0,
                "errmsg": "ok",
                "access_token": token,
                "expires_in": expires_in,
            })))
        }
        Err(error) => {
            info!(appid, code = error.code(), "get token refused");
            Err(error)
        }
    }
}

async fn jscode2session(
    State(sandbox): State<Sandbox>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, MiniGameError> {
    let params = QueryParams::parse(query.as_deref());
    let appid = params.get("appid").unwrap_or_default().into_owned();
    match sandbox.shared.minigame.login(&params) {
        Ok((user, unionid, session_key)) => {
            // The session key is a credential: never logged.
            info!(appid, openid = %user.openid, "user logged in");
            let mut answer = json!({
                "errcode": 0,
                "errmsg": "ok",
                "openid": user.openid,
                "session_key": session_key,
            });
            if let Some(unionid) = unionid {
                answer["unionid"] = json!(unionid);
            }
            Ok(Json(answer))
        }
        Err(error) => {
            info!(appid, code = error.code(), "login refused");
            Err(error)
        }
    }
}

/// Authenticates a storage request and parses its body, logging refusals.
fn accept<T>(
    sandbox: &Sandbox,
    endpoint: &'static str,
    query: Option<&str>,
    body: &[u8],
    parse: impl FnOnce(&[u8]) -> Result<T, MiniGameError>,
) -> Result<(UserKey, T), MiniGameError> {
    let params = QueryParams::parse(query);
    let result = sandbox
        .shared
        .minigame
        .authenticate(&params, body)
        .and_then(|user| Ok((user, parse(body)?)));
    if let Err(error) = &result {
        let openid = params.get("openid").unwrap_or_default();
        info!(endpoint, %openid, code = error.code(), "mini-game request refused");
    }
    result
}

fn refused(endpoint: &'static str, user: &UserKey, error: MiniGameError) -> MiniGameError {
    info!(endpoint, appid = %user.appid, openid = %user.openid, code = error.code(), "mini-game request refused");
    error
}

async fn set_user_storage(
    State(sandbox): State<Sandbox>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Json<Value>, MiniGameError> {
    let (user, pairs) = accept(
        &sandbox,
        SET_USER_STORAGE,
        query.as_deref(),
        &body,
        parse_kv_list,
    )?;
    let count = pairs.len();
    sandbox
        .shared
        .minigame
        .set_user_storage(&user, pairs)
        .map_err(|error| refused(SET_USER_STORAGE, &user, error))?;
    debug!(appid = %user.appid, openid = %user.openid, pairs = count, "user storage set");
    Ok(ok())
}

async fn remove_user_storage(
    State(sandbox): State<Sandbox>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Json<Value>, MiniGameError> {
    let (user, keys) = accept(
        &sandbox,
        REMOVE_USER_STORAGE,
        query.as_deref(),
        &body,
        parse_key_list,
    )?;
    sandbox.shared.minigame.remove_user_storage(&user, &keys);
    debug!(appid = %user.appid, openid = %user.openid, keys = keys.len(), "user storage removed");
    Ok(ok())
}

async fn set_user_interactive_data(
    State(sandbox): State<Sandbox>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Json<Value>, MiniGameError> {
    let (user, pairs) = accept(
        &sandbox,
        SET_USER_INTERACTIVE_DATA,
        query.as_deref(),
        &body,
        parse_interactive_list,
    )?;
    let count = pairs.len();
    sandbox.shared.minigame.set_interactive(&user, pairs);
    debug!(appid = %user.appid, openid = %user.openid, pairs = count, "interactive data set");
    Ok(ok())
}

/// The `kv_list` array of a body, or -2.
fn kv_list(body: &[u8]) -> Result<Vec<Value>, MiniGameError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| MiniGameError::BodyInvalid("body is not json"))?;
    match value.get("kv_list") {
        Some(Value::Array(items)) => Ok(items.clone()),
        Some(_) => Err(MiniGameError::BodyInvalid("kv_list is not an array")),
        None => Err(MiniGameError::BodyInvalid("kv_list missing")),
    }
}

/// set_user_storage: `{"kv_list":[{"key":"..","value":".."}]}` with string keys and values.
fn parse_kv_list(body: &[u8]) -> Result<Vec<(String, String)>, MiniGameError> {
    kv_list(body)?
        .iter()
        .map(|item| match (item.get("key"), item.get("value")) {
            (Some(Value::String(key)), Some(Value::String(value))) => {
                Ok((key.clone(), value.clone()))
            }
            _ => Err(MiniGameError::BodyInvalid(
                "kv_list items need a string key and a string value",
            )),
        })
        .collect()
}

/// remove_user_storage: `{"key":["..",..]}`. The document types `key` as a string while its
/// example sends a list, so a single string is taken as a one-key list.
fn parse_key_list(body: &[u8]) -> Result<Vec<String>, MiniGameError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| MiniGameError::BodyInvalid("body is not json"))?;
    match value.get("key") {
        Some(Value::String(key)) => Ok(vec![key.clone()]),
        Some(Value::Array(keys)) => keys
            .iter()
            .map(|key| match key {
                Value::String(key) => Ok(key.clone()),
                _ => Err(MiniGameError::BodyInvalid("key items must be strings")),
            })
            .collect(),
        Some(_) => Err(MiniGameError::BodyInvalid("key must be a list of strings")),
        None => Err(MiniGameError::BodyInvalid("key missing")),
    }
}

/// setuserinteractivedata: a non-empty `kv_list` with keys "1".."50" and integer values.
fn parse_interactive_list(body: &[u8]) -> Result<Vec<(u8, i64)>, MiniGameError> {
    let items = kv_list(body)?;
    if items.is_empty() {
        return Err(MiniGameError::BodyInvalid("kv_list is empty"));
    }
    items
        .iter()
        .map(|item| {
            let key = item
                .get("key")
                .and_then(Value::as_str)
                .and_then(interactive_key)
                .ok_or(MiniGameError::BodyInvalid(
                    "kv_list keys must be \"1\" to \"50\"",
                ))?;
            let value =
                item.get("value")
                    .and_then(Value::as_i64)
                    .ok_or(MiniGameError::BodyInvalid(
                        "kv_list values must be integers",
                    ))?;
            Ok((key, value))
        })
        .collect()
}

/// A key in canonical decimal form ("7", not "07" or "+7") within "1".."50".
fn interactive_key(key: &str) -> Option<u8> {
    let number: u8 = key.parse().ok()?;
    (INTERACTIVE_KEYS.contains(&number) && number.to_string() == key).then_some(number)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors computed independently of this code, with Python's standard library:
    //   python3 -c 'import hmac,hashlib; print(hmac.new(b"HyVFkGl5F5OQWJZZaNzBBg==",
    //     b"{\"kv_list\":[{\"key\":\"score\",\"value\":\"100\"}]}", hashlib.sha256).hexdigest())'
    const ALICE_SESSION_KEY: &str = "HyVFkGl5F5OQWJZZaNzBBg==";
    const SET_BODY: &[u8] = br#"{"kv_list":[{"key":"score","value":"100"}]}"#;
    const SET_BODY_SIGNATURE: &str =
        "f026a8d27ebc5f205fdfd0cdd0db90f3b0308571df4cc1653478f22b5a72af82";
    // The signed content quoted by the document (seed 000), same key:
    //   hmac.new(b"HyVFkGl5F5OQWJZZaNzBBg==", b'{"kv_list":[{"key":"1","value":0}]}',
    //            hashlib.sha256).hexdigest()
    const SEED_BODY: &[u8] = br#"{"kv_list":[{"key":"1","value":0}]}"#;
    const SEED_BODY_SIGNATURE: &str =
        "d8b0ae81b9af33181e2440dee41b047a71fbea101f994533a4882e67dfda6959";
    // What a client gets wrong by base64-decoding the session_key first:
    //   hmac.new(base64.b64decode("HyVFkGl5F5OQWJZZaNzBBg=="), SET_BODY, hashlib.sha256).hexdigest()
    const DECODED_KEY_SIGNATURE: &str =
        "328aea5985a7f1d8663c140a55009e35f55ef64e40c42c7814396d9cfd7d8695";

    #[test]
    fn accepts_python_vectors() {
        assert!(verify_signature(
            ALICE_SESSION_KEY,
            SET_BODY,
            SET_BODY_SIGNATURE
        ));
        assert!(verify_signature(
            ALICE_SESSION_KEY,
            SEED_BODY,
            SEED_BODY_SIGNATURE
        ));
    }

    #[test]
    fn rejects_a_signature_made_with_the_decoded_session_key() {
        assert!(!verify_signature(
            ALICE_SESSION_KEY,
            SET_BODY,
            DECODED_KEY_SIGNATURE
        ));
    }

    #[test]
    fn signs_the_exact_bytes() {
        // Same JSON value, different bytes: the signature no longer matches.
        let reformatted = br#"{"kv_list": [{"key":"score","value":"100"}]}"#;
        assert!(!verify_signature(
            ALICE_SESSION_KEY,
            reformatted,
            SET_BODY_SIGNATURE
        ));
    }

    #[test]
    fn rejects_uppercase_or_malformed_hex() {
        let upper = SET_BODY_SIGNATURE.to_ascii_uppercase();
        assert!(!verify_signature(ALICE_SESSION_KEY, SET_BODY, &upper));
        assert!(!verify_signature(
            ALICE_SESSION_KEY,
            SET_BODY,
            &SET_BODY_SIGNATURE[..62]
        ));
        assert!(!verify_signature(ALICE_SESSION_KEY, SET_BODY, "zz"));
    }

    #[test]
    fn interactive_keys_are_canonical_1_to_50() {
        assert_eq!(interactive_key("1"), Some(1));
        assert_eq!(interactive_key("50"), Some(50));
        for bad in ["0", "51", "01", "+1", " 1", "score", ""] {
            assert_eq!(interactive_key(bad), None, "{bad:?}");
        }
    }
}
