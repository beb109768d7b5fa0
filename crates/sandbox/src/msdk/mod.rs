//! MSDK backend (seed 002, hosts `msdk.qq.com` / `msdktest.qq.com`): the `auth` module (also
//! reachable as `wxoauth`, which the seed makes interchangeable), the `relation`, `profile`,
//! `share` and `freeflow` modules.
//!
//! Every request goes through the same access checks before its interface sees it, in this
//! order: appid present (-506), appid known (-504), timestamp/sig/encode present (-506), encode
//! 1 or 2 (-506), timestamp within 600 s of now (-502), sig (-502), interface known (-505), body
//! not empty (-501; the GET and `freeflow` interfaces may have none), body decrypts and is a JSON object (-304), guest rules (-901) and app
//! platform (-303), `msdkExtInfo` format (-1001), body `appid` (-1001), then the user's login
//! state (-10000 / -20000). Answers are HTTP 200 JSON with `ret` and `msg` (or `message` for the
//! interfaces the seed documents so), plus `msdkExtInfo` when the request carried a valid one,
//! encrypted with msdktea when the request asked for it.

pub(crate) mod admin;
mod admin_profile;
mod auth;
pub(crate) mod fixture;
pub(crate) mod fixture_profile;
mod freeflow;
mod profile;
mod relation_qq;
mod relation_wx;
mod share;
mod tea;
pub(crate) mod wire;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use md5::{Digest, Md5};
use serde_json::{Map, Value, json};
use tracing::{debug, info, warn};

use crate::query::QueryParams;
use crate::{Sandbox, SandboxConfig, constant_time_eq, lock};
use fixture::{MsdkApp, MsdkPlatform, MsdkUser};

/// The seed's "about 10 minutes": timestamps further from now than this are refused (-502).
const TIMESTAMP_WINDOW_SECS: i64 = 600;
/// Bodies are small JSON documents; anything bigger is refused before it is read.
const MAX_BODY_BYTES: usize = 1 << 20;
/// How many replaced tokens of a user are remembered (they answer "expired", not "invalid").
const OLD_TOKENS_KEPT: usize = 16;
/// The version from which the seed says answers use https URLs without `ishttps`.
const HTTPS_FROM_VERSION: (u64, u64, u64) = (2, 16, 0);

const CONTENT_ENCRYPT: HeaderName = HeaderName::from_static("content-encrypt");
const ACCEPT_ENCRYPT: HeaderName = HeaderName::from_static("accept-encrypt");
const MSDKTEA: &str = "msdktea";

/// The marker a `lost` fault leaves on a request: its answer is the degraded one
/// (`"is_lost":"1"` with default or partial data).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Degrade;

/// An answer other than success. The Display text is the `msg`; for the platform errors it is
/// the platform's own "code,message" form.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MsdkError {
    #[error("{0} missing")]
    MissingParameter(&'static str),
    #[error("encode invalid")]
    EncodeInvalid,
    #[error("appid invalid or no permission")]
    UnknownApp,
    #[error("timestamp invalid or out of range")]
    TimestampOutOfRange,
    #[error("sig check failed")]
    SigMismatch,
    #[error("interface not found")]
    UnknownInterface,
    #[error("body empty")]
    EmptyBody,
    #[error("body is not a json object")]
    BodyNotJson,
    #[error("body cannot be decrypted")]
    BodyNotDecryptable,
    #[error("guest not allowed")]
    GuestNotAllowed,
    #[error("appid has no permission for this interface")]
    NoPermission,
    #[error("100015,access token invalid or expired")]
    QqTokenInvalid,
    #[error("-73,user changed password")]
    QqPasswordChanged,
    #[error("40001,invalid credential")]
    WechatTokenInvalid,
    #[error("42001,access_token expired")]
    WechatTokenExpired,
    #[error("{0} invalid")]
    Invalid(&'static str),
    /// A body member of another JSON type than the seed's request example sends. The
    /// platform's message is the same as for any invalid member; `expected` is for the log.
    #[error("{member} invalid")]
    WrongJsonType {
        member: String,
        expected: &'static str,
    },
    #[error("content type not accepted")]
    ContentTypeNotAccepted,
    #[error("{field} over the limit of {limit}")]
    TooMany { field: &'static str, limit: usize },
    #[error("{field} longer than {limit} bytes")]
    TooLong { field: &'static str, limit: usize },
    #[error("guild already bound to a group")]
    GuildAlreadyBound,
    #[error("group already bound to another guild")]
    GroupAlreadyBound,
    #[error("guild not bound to a group")]
    GuildNotBound,
    #[error("group not found")]
    GroupNotFound,
    #[error("only the guild leader can unbind the group")]
    NotLeader,
    #[error("only the group owner can bind the group")]
    NotGroupOwner,
    #[error("already a member of the group")]
    AlreadyMember,
    #[error("the leader was already reminded today")]
    AlreadyReminded,
    #[error("group not bound to a guild")]
    GroupNotBound,
    #[error("gc is not the group bound to the guild")]
    GroupMismatch,
    #[error("not a member of the group")]
    NotMember,
    #[error("wechat group not found")]
    WechatGroupNotFound,
    #[error("touser is not a friend playing the same game")]
    NotSameGameFriend,
    #[error("channel_id is not a video channel of the app")]
    UnknownVideoChannel,
    #[error("timestamp more than 900 seconds from now")]
    VideoTimestampExpired,
    #[error("signature check failed")]
    VideoSignatureMismatch,
    #[error("msgId is not a message of the app")]
    UnknownSubscribeMessage,
    #[error("the receiver is not a friend of the sender")]
    NotShareFriend,
    #[error("the receiver already got {limit} shares today")]
    ReceiverDailyLimit { limit: usize },
    #[error("the receiver already got {limit} shares from this sender today")]
    SenderDailyLimit { limit: usize },
    #[error("thumb_media_id not found")]
    UnknownMedia,
    #[error("secret check failed")]
    SecretMismatch,
    #[error("filelength over the limit of {limit} bytes")]
    FileTooLarge { limit: i64 },
    #[error("filelength does not match the binary")]
    FileLengthMismatch,
    #[error("system busy")]
    Busy,
    #[error("sandbox injected error")]
    Injected(i64),
}

impl MsdkError {
    pub(crate) fn code(&self) -> i64 {
        match self {
            Self::MissingParameter(_) | Self::EncodeInvalid => -506,
            Self::UnknownApp => -504,
            Self::TimestampOutOfRange | Self::SigMismatch => -502,
            Self::UnknownInterface => -505,
            Self::EmptyBody => -501,
            Self::BodyNotJson | Self::BodyNotDecryptable | Self::ContentTypeNotAccepted => -304,
            Self::GuestNotAllowed => -901,
            Self::NoPermission => -303,
            Self::QqTokenInvalid | Self::QqPasswordChanged => -10000,
            Self::WechatTokenInvalid | Self::WechatTokenExpired => -20000,
            Self::Invalid(_) | Self::WrongJsonType { .. } => -1001,
            Self::TooMany { .. } => -1002,
            Self::TooLong { .. } => -1003,
            Self::GuildAlreadyBound => -1101,
            Self::GroupAlreadyBound => -1102,
            Self::GuildNotBound => -1103,
            Self::GroupNotFound => -1104,
            Self::NotLeader | Self::NotGroupOwner => -1105,
            Self::AlreadyMember => -1106,
            Self::AlreadyReminded => -1107,
            Self::GroupNotBound => -1108,
            Self::GroupMismatch => -1109,
            Self::NotMember => -1110,
            Self::WechatGroupNotFound => -1201,
            Self::NotSameGameFriend => -1202,
            Self::UnknownVideoChannel => -1301,
            Self::VideoTimestampExpired => -1302,
            Self::VideoSignatureMismatch => -1303,
            Self::UnknownSubscribeMessage => -1304,
            Self::NotShareFriend => -1401,
            Self::ReceiverDailyLimit { .. } => -1402,
            Self::SenderDailyLimit { .. } => -1403,
            Self::UnknownMedia => -1404,
            Self::SecretMismatch => -1405,
            Self::FileTooLarge { .. } => -1406,
            Self::FileLengthMismatch => -1407,
            Self::Busy => -1,
            Self::Injected(code) => *code,
        }
    }

    /// MSDK's hint to the caller: 1 retry later, 2 re-authorise, 3 refresh the access token.
    fn err_type(&self) -> Option<i64> {
        match self {
            Self::Busy => Some(1),
            Self::QqPasswordChanged => Some(2),
            Self::QqTokenInvalid | Self::WechatTokenInvalid | Self::WechatTokenExpired => Some(3),
            _ => None,
        }
    }
}

/// Which apps may call an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    Qq,
    Wechat,
    /// Only the guest app (`G_` appid).
    Guest,
    /// Every app, guests included (`get_pfval`: the seed gives guests their own platform value).
    Any,
    /// QQ and WeChat apps, not guests (`freeflow`, `get_xinyue_super`).
    Player,
}

/// Where an interface takes the user and their credential from.
#[derive(Clone, Copy, Debug)]
enum Credential {
    /// Body `openid` (or the URL's) and body `accessToken`.
    AccessToken,
    /// `verify_login`: body `openid` (or the URL's) and body `openkey`.
    Openkey,
    /// `guest_check_token`: body `guestid` (or the URL `openid`) and body `accessToken`.
    Guest,
    /// `get_pfval`: as `AccessToken`, but a QQ user's `accessToken` is their pay token.
    PayToken,
    /// `wx_mini_send_msg`: the URL `openid` and the URL `access_token`.
    QueryAccessToken,
    /// The share interfaces: body `openid` (or the URL's) and body `access_token`.
    BodyAccessToken,
    /// No token documented: body `openid` (or the URL's), a player of the app (-1001 otherwise).
    PlayerOnly,
    /// `subscribe_push`/`subscribe_clear`: no token; the openid (body or URL) is optional.
    SourceOnly,
    /// `upload_wx`: body `secret` is the app's appkey; the openid is optional.
    AppSecret,
    /// The GET interfaces: no body; URL `openid` and URL `access_token`, and the interface's
    /// parameters in the URL too.
    QueryGet,
    /// `freeflow`: as `PlayerOnly`, but the body may be empty and URL parameters fill in what
    /// the body lacks (the seed's examples send none).
    PlayerFromUrl,
}

impl Credential {
    /// The interface's parameters may come in the URL (merged under the body's) and its body
    /// may be empty.
    fn url_parameters(self) -> bool {
        matches!(self, Self::QueryGet | Self::PlayerFromUrl)
    }
}

type Handler = fn(&mut MsdkState, &Call) -> Result<Map<String, Value>, MsdkError>;

/// One emulated interface.
struct Interface {
    /// Canonical path (`/auth/...`, never the `wxoauth` alias).
    path: &'static str,
    scope: Scope,
    credential: Credential,
    /// `msg`, or `message` for the 11 relation interfaces the seed documents with it.
    message_key: &'static str,
    /// The success text the seed's examples show.
    success: &'static str,
    /// The answer carries `is_lost`, so a `lost` fault applies to it.
    reports_loss: bool,
    handler: Handler,
}

fn interfaces() -> impl Iterator<Item = &'static Interface> {
    auth::INTERFACES
        .iter()
        .chain(relation_qq::INTERFACES)
        .chain(relation_wx::INTERFACES)
        .chain(profile::INTERFACES)
        .chain(share::INTERFACES)
        .chain(freeflow::INTERFACES)
}

/// Every canonical MSDK path the sandbox answers.
pub(crate) fn paths() -> impl Iterator<Item = &'static str> {
    interfaces().map(|interface| interface.path)
}

/// The canonical path of an emulated MSDK interface: one trailing slash dropped (the seed's
/// examples post to `/relation/qqprofile/`) and `wxoauth` folded into `auth`.
pub(crate) fn canonical_path(path: &str) -> Option<&'static str> {
    find(path).map(|interface| interface.path)
}

fn find(path: &str) -> Option<&'static Interface> {
    let path = path.strip_suffix('/').unwrap_or(path);
    let (module, name) = path.strip_prefix('/')?.split_once('/')?;
    let module = if module == "wxoauth" { "auth" } else { module };
    interfaces().find(|interface| {
        interface
            .path
            .strip_prefix('/')
            .and_then(|p| p.split_once('/'))
            == Some((module, name))
    })
}

/// Whether a `lost` fault can apply to this canonical path.
pub(crate) fn reports_loss(path: &str) -> bool {
    find(path).is_some_and(|interface| interface.reports_loss)
}

/// Every route of the emulated modules. An unknown interface of these modules is an MSDK answer
/// (-505), not a 404.
pub(crate) fn routes() -> Router<Sandbox> {
    let mut router = Router::new();
    for module in [
        "auth", "wxoauth", "relation", "profile", "share", "freeflow",
    ] {
        router = router
            .route(&format!("/{module}/{{interface}}"), post(handle))
            .route(&format!("/{module}/{{interface}}/"), post(handle));
    }
    // The GET interfaces have routes of their own: POST to them is 405.
    for interface in interfaces().filter(|i| matches!(i.credential, Credential::QueryGet)) {
        router = router
            .route(interface.path, get(handle))
            .route(&format!("{}/", interface.path), get(handle));
    }
    router
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct UserKey {
    appid: String,
    openid: String,
}

impl UserKey {
    fn new(appid: &str, openid: &str) -> Self {
        Self {
            appid: appid.to_owned(),
            openid: openid.to_owned(),
        }
    }
}

struct UserRecord {
    user: MsdkUser,
    /// Set by the admin API: the current token answers "expired".
    expired: bool,
    /// Tokens replaced by an issued one: they answer "expired" too.
    old_tokens: Vec<String>,
}

/// The whole MSDK state, behind one lock: a request reads and changes it in one go.
pub(crate) struct MsdkState {
    apps: HashMap<String, MsdkApp>,
    users: HashMap<UserKey, UserRecord>,
    /// Users in the order they were added, for stable listings (friends of a friend).
    user_order: Vec<UserKey>,
    qq: HashMap<String, relation_qq::QqGroups>,
    wechat: HashMap<String, relation_wx::WechatGroups>,
    /// The number of the next QQ group `createbind_groupv2` creates.
    next_gc: u64,
    /// How the requests of each interface arrived and were answered (see [`Encryption`]).
    encryption: Encryption,
    /// Per appid: `profile` and `share` module state.
    profile: HashMap<String, profile::ProfileState>,
    share: HashMap<String, share::ShareState>,
    /// The last requests as they arrived (see [`wire`]).
    received: wire::Received,
}

/// Per canonical path, how many requests that reached an MSDK interface (faulted ones do not)
/// came with a msdktea body (`Content-Encrypt`) or a plain one, and how many answers were
/// encrypted (`Accept-Encrypt`). `GET /_sandbox/msdk/encryption` shows it, so that a client's
/// tests can tell that its bodies really travelled encrypted.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub(crate) struct Encryption {
    encrypted_requests: std::collections::BTreeMap<String, u64>,
    plain_requests: std::collections::BTreeMap<String, u64>,
    encrypted_answers: std::collections::BTreeMap<String, u64>,
}

impl Encryption {
    fn record(&mut self, path: &str, encrypted_request: bool, encrypted_answer: bool) {
        let requests = if encrypted_request {
            &mut self.encrypted_requests
        } else {
            &mut self.plain_requests
        };
        *requests.entry(path.to_owned()).or_default() += 1;
        if encrypted_answer {
            *self.encrypted_answers.entry(path.to_owned()).or_default() += 1;
        }
    }
}

impl MsdkState {
    fn user(&self, appid: &str, openid: &str) -> Option<&MsdkUser> {
        self.users
            .get(&UserKey::new(appid, openid))
            .map(|record| &record.user)
    }

    /// Same-game friends: the user's own list, then the users who list them, each once and only
    /// if they are users of the app.
    fn friends_of(&self, appid: &str, openid: &str) -> Vec<String> {
        let mut friends: Vec<String> = Vec::new();
        let mut push = |candidate: &str| {
            if candidate != openid
                && self.user(appid, candidate).is_some()
                && !friends.iter().any(|f| f == candidate)
            {
                friends.push(candidate.to_owned());
            }
        };
        if let Some(user) = self.user(appid, openid) {
            user.friends.iter().for_each(|f| push(f));
        }
        for key in self.user_order.iter().filter(|key| key.appid == appid) {
            if self
                .user(appid, &key.openid)
                .is_some_and(|other| other.friends.iter().any(|f| f == openid))
            {
                push(&key.openid);
            }
        }
        friends
    }

    fn put_user(&mut self, user: MsdkUser) {
        let key = UserKey::new(&user.appid, &user.openid);
        if !self.users.contains_key(&key) {
            self.user_order.push(key.clone());
        }
        self.users.insert(
            key,
            UserRecord {
                user,
                expired: false,
                old_tokens: Vec::new(),
            },
        );
    }

    /// Checks a user's credential. A user the app does not know has no valid token.
    fn check_token(
        &self,
        app: &MsdkApp,
        openid: &str,
        token: &str,
        pay: bool,
    ) -> Result<(), MsdkError> {
        let (invalid, expired) = match app.platform {
            MsdkPlatform::Wechat => (MsdkError::WechatTokenInvalid, MsdkError::WechatTokenExpired),
            // Guest tokens are checked like QQ ones: the guest app is a Mobile QQ app's variant.
            MsdkPlatform::Qq | MsdkPlatform::Guest => {
                (MsdkError::QqTokenInvalid, MsdkError::QqTokenInvalid)
            }
        };
        let Some(record) = self.users.get(&UserKey::new(&app.appid, openid)) else {
            return Err(invalid);
        };
        if record.user.password_changed && app.platform == MsdkPlatform::Qq {
            return Err(MsdkError::QqPasswordChanged);
        }
        let current = if pay && app.platform == MsdkPlatform::Qq {
            &record.user.pay_token
        } else {
            &record.user.access_token
        };
        if !current.is_empty() && constant_time_eq(current.as_bytes(), token.as_bytes()) {
            return if record.expired { Err(expired) } else { Ok(()) };
        }
        if record
            .old_tokens
            .iter()
            .any(|old| constant_time_eq(old.as_bytes(), token.as_bytes()))
        {
            return Err(expired);
        }
        Err(invalid)
    }
}

/// The MSDK platform.
pub(crate) struct Msdk {
    state: Mutex<MsdkState>,
}

/// What an interface handler gets: the authenticated caller and the parsed request.
struct Call {
    app: MsdkApp,
    openid: String,
    body: Map<String, Value>,
    https: bool,
    degraded: bool,
    now: i64,
    /// The client's address (`X-Forwarded-For`, else the peer), for `get_ccinfo` without `ip`.
    client_ip: Option<String>,
}

impl Call {
    fn appid(&self) -> &str {
        &self.app.appid
    }

    /// A URL as the answer shows it: https when the request asked for it (`ishttps=1` or a
    /// recent `version`).
    fn url(&self, url: &str) -> String {
        match url.strip_prefix("http://") {
            Some(rest) if self.https => format!("https://{rest}"),
            _ => url.to_owned(),
        }
    }

    fn opt_str(&self, field: &'static str) -> Result<Option<String>, MsdkError> {
        opt_str(&self.body, field, field)
    }

    fn req_str(&self, field: &'static str) -> Result<String, MsdkError> {
        req_str(&self.body, field, field)
    }

    fn opt_int(&self, field: &'static str) -> Result<Option<i64>, MsdkError> {
        opt_int(&self.body, field, field)
    }

    fn req_list(&self, field: &'static str) -> Result<Vec<String>, MsdkError> {
        req_list(&self.body, field, field)
    }
}

// Body field readers. The seed types ids as strings but its examples send some as numbers (and
// ints as strings), so a string field takes a JSON number and an int field a decimal string.
// Members the seed's request example sends as a number must come as one all the same: that
// check (`wire::check_member_types`) runs before any reader.

/// A string field; absent, null or empty is None.
fn opt_str(
    map: &Map<String, Value>,
    key: &str,
    label: &'static str,
) -> Result<Option<String>, MsdkError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.is_empty() => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(Value::Number(number)) => Ok(Some(number.to_string())),
        Some(_) => Err(MsdkError::Invalid(label)),
    }
}

/// A string field that must be present and not empty.
fn req_str(map: &Map<String, Value>, key: &str, label: &'static str) -> Result<String, MsdkError> {
    opt_str(map, key, label)?.ok_or(MsdkError::Invalid(label))
}

/// An integer field; absent, null or empty is None.
fn opt_int(
    map: &Map<String, Value>,
    key: &str,
    label: &'static str,
) -> Result<Option<i64>, MsdkError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
        Some(Value::String(text)) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| MsdkError::Invalid(label)),
        Some(Value::Number(number)) => number.as_i64().map(Some).ok_or(MsdkError::Invalid(label)),
        Some(_) => Err(MsdkError::Invalid(label)),
    }
}

/// A non-empty list of non-empty strings.
fn req_list(
    map: &Map<String, Value>,
    key: &str,
    label: &'static str,
) -> Result<Vec<String>, MsdkError> {
    let Some(Value::Array(items)) = map.get(key) else {
        return Err(MsdkError::Invalid(label));
    };
    if items.is_empty() {
        return Err(MsdkError::Invalid(label));
    }
    items
        .iter()
        .map(|item| match item {
            Value::String(text) if !text.is_empty() => Ok(text.clone()),
            _ => Err(MsdkError::Invalid(label)),
        })
        .collect()
}

/// A JSON object from a list of pairs (the answers' fields).
fn object<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect()
}

/// `{"empty":""}`, the reserved `data` of several group interfaces.
fn empty_data() -> Map<String, Value> {
    object([("data", json!({ "empty": "" }))])
}

fn md5_hex(parts: &[&[u8]]) -> String {
    let mut md5 = Md5::new();
    for part in parts {
        md5.update(part);
    }
    hex::encode(md5.finalize())
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

/// `msdkExtInfo` may only hold letters, digits and `_`.
fn valid_ext_info(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether an encryption header names msdktea (the seed writes it `msdktea;`).
fn names_msdktea(value: &HeaderValue) -> bool {
    value
        .to_str()
        .map(|v| v.trim().trim_end_matches(';').trim())
        .is_ok_and(|v| v.eq_ignore_ascii_case(MSDKTEA))
}

/// https answers: `ishttps=1`; or, without `ishttps`, a `version` of 2.16.0 or later (the
/// seed's two ways, `ishttps` first).
fn wants_https(params: &QueryParams) -> bool {
    if let Some(ishttps) = params.get_non_empty("ishttps") {
        return ishttps == "1";
    }
    params
        .get_non_empty("version")
        .and_then(|version| parse_version(&version))
        .is_some_and(|version| version >= HTTPS_FROM_VERSION)
}

/// `2.16.0i` -> (2, 16, 0): the leading digits of up to three dot-separated parts.
fn parse_version(version: &str) -> Option<(u64, u64, u64)> {
    let mut parts = version.split('.').map(|part| {
        let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u64>().ok()
    });
    let major = parts.next()??;
    let minor = parts.next().flatten().unwrap_or(0);
    let patch = parts.next().flatten().unwrap_or(0);
    Some((major, minor, patch))
}

/// How answers to one request are written: the `msdkExtInfo` echo and the encryption.
struct Reply {
    ext_info: Option<String>,
    encrypt: bool,
}

impl Reply {
    fn new(headers: &HeaderMap, params: &QueryParams) -> Self {
        Self {
            // An invalid value is refused (-1001) and not echoed.
            ext_info: params
                .get_non_empty("msdkExtInfo")
                .filter(|value| valid_ext_info(value))
                .map(|value| value.into_owned()),
            encrypt: headers.get(ACCEPT_ENCRYPT).is_some_and(names_msdktea),
        }
    }

    fn answer(&self, mut body: Map<String, Value>) -> Response {
        if let Some(ext_info) = &self.ext_info {
            body.insert("msdkExtInfo".to_owned(), json!(ext_info));
        }
        let json = Value::Object(body).to_string().into_bytes();
        if self.encrypt {
            (
                [
                    (header::CONTENT_TYPE, "application/octet-stream"),
                    (CONTENT_ENCRYPT, MSDKTEA),
                ],
                tea::encrypt(&json),
            )
                .into_response()
        } else {
            ([(header::CONTENT_TYPE, "application/json")], json).into_response()
        }
    }

    fn error(&self, message_key: &str, error: &MsdkError) -> Response {
        let mut body = object([
            ("ret", json!(error.code())),
            (message_key, json!(error.to_string())),
        ]);
        if let Some(err_type) = error.err_type() {
            body.insert("err_type".to_owned(), json!(err_type));
        }
        self.answer(body)
    }
}

/// The answer of a `busy` or `code` fault on an MSDK path, echoed and encrypted like any other.
pub(crate) fn injected_answer(
    headers: &HeaderMap,
    query: Option<&str>,
    error: &MsdkError,
) -> Response {
    Reply::new(headers, &QueryParams::parse(query)).error("msg", error)
}

/// What passed the access checks.
struct Accepted {
    interface: &'static Interface,
    app: MsdkApp,
    body: Map<String, Value>,
}

impl Msdk {
    pub(crate) fn new(config: &SandboxConfig) -> Self {
        let mut state = MsdkState {
            apps: config
                .msdk_apps
                .iter()
                .map(|app| (app.appid.clone(), app.clone()))
                .collect(),
            users: HashMap::new(),
            user_order: Vec::new(),
            qq: HashMap::new(),
            wechat: HashMap::new(),
            next_gc: relation_qq::FIRST_CREATED_GC,
            encryption: Encryption::default(),
            profile: HashMap::new(),
            share: HashMap::new(),
            received: wire::Received::default(),
        };
        for user in &config.msdk_users {
            if !state.apps.contains_key(&user.appid) {
                warn!(appid = %user.appid, openid = %user.openid, "msdk user of an unknown app cannot be reached");
            }
            state.put_user(user.clone());
        }
        for group in &config.msdk_qq_groups {
            relation_qq::put_group(&mut state, group);
        }
        for group in &config.msdk_wechat_groups {
            relation_wx::put_group(&mut state, group);
        }
        Self {
            state: Mutex::new(state),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, MsdkState> {
        lock(&self.state)
    }

    /// The access checks (see the module documentation for their order).
    fn accept(
        state: &MsdkState,
        path: &str,
        params: &QueryParams,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<Accepted, MsdkError> {
        let appid = params
            .get_non_empty("appid")
            .ok_or(MsdkError::MissingParameter("appid"))?;
        let app = state
            .apps
            .get(appid.as_ref())
            .ok_or(MsdkError::UnknownApp)?
            .clone();
        let timestamp = params
            .get_non_empty("timestamp")
            .ok_or(MsdkError::MissingParameter("timestamp"))?;
        let sig = params
            .get_non_empty("sig")
            .ok_or(MsdkError::MissingParameter("sig"))?;
        let key = match params.get_non_empty("encode").as_deref() {
            Some("2") => &app.msdkkey,
            Some("1") => &app.appkey,
            Some(_) => return Err(MsdkError::EncodeInvalid),
            None => return Err(MsdkError::MissingParameter("encode")),
        };
        let sent_at: i64 = timestamp
            .parse()
            .map_err(|_| MsdkError::TimestampOutOfRange)?;
        if now.abs_diff(sent_at) > TIMESTAMP_WINDOW_SECS.unsigned_abs() {
            return Err(MsdkError::TimestampOutOfRange);
        }
        // md5 hex is lowercase, and the seed asks for a lowercase sig: uppercase is refused.
        let expected = md5_hex(&[key.as_bytes(), timestamp.as_bytes()]);
        if !constant_time_eq(expected.as_bytes(), sig.as_bytes()) {
            return Err(MsdkError::SigMismatch);
        }
        let interface = find(path).ok_or(MsdkError::UnknownInterface)?;
        // GET and freeflow requests may come without a body (their parameters in the URL).
        let url_parameters = interface.credential.url_parameters();
        if body.trim_ascii().is_empty() && !url_parameters {
            return Err(MsdkError::EmptyBody);
        }
        let plain = match headers.get(CONTENT_ENCRYPT) {
            _ if body.trim_ascii().is_empty() => b"{}".to_vec(),
            None => body.to_vec(),
            Some(value) if names_msdktea(value) => {
                tea::decrypt(body).map_err(|_| MsdkError::BodyNotDecryptable)?
            }
            // An encryption the platform does not know cannot be read either.
            Some(_) => return Err(MsdkError::BodyNotDecryptable),
        };
        if plain.trim_ascii().is_empty() {
            return Err(MsdkError::EmptyBody);
        }
        if !body.trim_ascii().is_empty() {
            wire::check_content_type(headers)?;
        }
        let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(&plain) else {
            return Err(MsdkError::BodyNotJson);
        };
        wire::check_member_types(interface.path, &body)?;
        if url_parameters {
            for (name, value) in params.pairs_except("sig") {
                let value = Value::String(String::from_utf8_lossy(value).into_owned());
                body.entry(String::from_utf8_lossy(name)).or_insert(value);
            }
        }
        let guest_id = |field: &str| {
            body.get(field)
                .and_then(Value::as_str)
                .is_some_and(|id| id.starts_with("G_"))
        };
        let guest = app.platform == MsdkPlatform::Guest
            || params
                .get("openid")
                .is_some_and(|openid| openid.starts_with("G_"))
            || guest_id("openid")
            || guest_id("guestid");
        match interface.scope {
            Scope::Any => {}
            Scope::Guest if app.platform != MsdkPlatform::Guest => {
                return Err(MsdkError::NoPermission);
            }
            Scope::Guest => {}
            Scope::Qq | Scope::Wechat | Scope::Player if guest => {
                return Err(MsdkError::GuestNotAllowed);
            }
            Scope::Qq if app.platform != MsdkPlatform::Qq => return Err(MsdkError::NoPermission),
            Scope::Wechat if app.platform != MsdkPlatform::Wechat => {
                return Err(MsdkError::NoPermission);
            }
            Scope::Qq | Scope::Wechat | Scope::Player => {}
        }
        if params
            .get_non_empty("msdkExtInfo")
            .is_some_and(|value| !valid_ext_info(&value))
        {
            return Err(MsdkError::Invalid("msdkExtInfo"));
        }
        // The body's appid, when sent, must be the URL's (a guest app's body may leave out `G_`).
        if let Some(body_appid) = opt_str(&body, "appid", "appid")? {
            let bare = |id: &str| id.strip_prefix("G_").unwrap_or(id).to_owned();
            if bare(&body_appid) != bare(&app.appid) {
                return Err(MsdkError::Invalid("appid"));
            }
        }
        Ok(Accepted {
            interface,
            app,
            body,
        })
    }

    /// The caller's openid after checking their credential where the interface takes it.
    fn authenticate(
        state: &MsdkState,
        accepted: &Accepted,
        params: &QueryParams,
    ) -> Result<String, MsdkError> {
        let body = &accepted.body;
        let url_openid = params.get_non_empty("openid").map(|o| o.into_owned());
        // The user named in the body, else in the URL; both must agree when both are sent.
        let user_id = |field: &'static str| -> Result<String, MsdkError> {
            match (opt_str(body, field, field)?, &url_openid) {
                (Some(from_body), Some(from_url)) if &from_body != from_url => {
                    Err(MsdkError::Invalid(field))
                }
                (Some(id), _) => Ok(id),
                (None, Some(id)) => Ok(id.clone()),
                (None, None) => Err(MsdkError::Invalid(field)),
            }
        };
        let token = |field: &'static str| req_str(body, field, field);
        // No token: the openid, when sent (body or URL), is taken as it is.
        let optional_user = || -> Result<String, MsdkError> {
            match (opt_str(body, "openid", "openid")?, &url_openid) {
                (None, None) => Ok(String::new()),
                _ => user_id("openid"),
            }
        };
        let (openid, token, pay) = match accepted.interface.credential {
            Credential::AccessToken => (user_id("openid")?, token("accessToken")?, false),
            Credential::PayToken => (user_id("openid")?, token("accessToken")?, true),
            Credential::Openkey => (user_id("openid")?, token("openkey")?, false),
            Credential::Guest => (user_id("guestid")?, token("accessToken")?, false),
            Credential::BodyAccessToken => (user_id("openid")?, token("access_token")?, false),
            Credential::PlayerOnly | Credential::PlayerFromUrl => {
                let openid = user_id("openid")?;
                return match state.user(&accepted.app.appid, &openid) {
                    Some(_) => Ok(openid),
                    None => Err(MsdkError::Invalid("openid")),
                };
            }
            Credential::SourceOnly => return optional_user(),
            Credential::AppSecret => {
                let secret = token("secret")?;
                if !constant_time_eq(secret.as_bytes(), accepted.app.appkey.as_bytes()) {
                    return Err(MsdkError::SecretMismatch);
                }
                return optional_user();
            }
            Credential::QueryAccessToken | Credential::QueryGet => (
                url_openid.ok_or(MsdkError::Invalid("openid"))?,
                params
                    .get_non_empty("access_token")
                    .ok_or(MsdkError::MissingParameter("access_token"))?
                    .into_owned(),
                false,
            ),
        };
        state.check_token(&accepted.app, &openid, &token, pay)?;
        Ok(openid)
    }
}

/// Every MSDK request: access checks, login state, then the interface.
async fn handle(State(sandbox): State<Sandbox>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let params = QueryParams::parse(parts.uri.query());
    let reply = Reply::new(&parts.headers, &params);
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
    };
    let path = parts.uri.path();
    let degraded = parts.extensions.get::<Degrade>().is_some();
    let appid = params.get("appid").unwrap_or_default();
    let url_openid = params.get("openid").unwrap_or_default();
    let client_ip = freeflow::client_ip(&parts);
    match run(&sandbox, &parts, &params, &body, degraded, client_ip) {
        Ok((interface, mut fields)) => {
            debug!(path = interface.path, %appid, %url_openid, degraded, "msdk request answered");
            fields.insert("ret".to_owned(), json!(0));
            fields.insert(interface.message_key.to_owned(), json!(interface.success));
            reply.answer(fields)
        }
        Err((message_key, error)) => {
            let expected_json_type = match &error {
                MsdkError::WrongJsonType { expected, .. } => Some(*expected),
                _ => None,
            };
            info!(path, %appid, %url_openid, code = error.code(), ?expected_json_type, "msdk request refused");
            reply.error(message_key, &error)
        }
    }
}

type Outcome = Result<(&'static Interface, Map<String, Value>), (&'static str, MsdkError)>;

/// Runs one request under the state lock. Errors from the access checks and the login state
/// carry `msg` (MSDK's shared layers write them); the interface's own answers use its key.
fn run(
    sandbox: &Sandbox,
    parts: &axum::http::request::Parts,
    params: &QueryParams,
    body: &Bytes,
    degraded: bool,
    client_ip: Option<String>,
) -> Outcome {
    let (method, path, headers) = (parts.method.as_str(), parts.uri.path(), &parts.headers);
    let now = unix_now();
    let mut state = sandbox.shared.msdk.state();
    if let Some(interface) = find(path) {
        let encrypted = |name: &HeaderName| headers.get(name).is_some_and(names_msdktea);
        state.encryption.record(
            interface.path,
            encrypted(&CONTENT_ENCRYPT),
            encrypted(&ACCEPT_ENCRYPT),
        );
        let encrypted_body = encrypted(&CONTENT_ENCRYPT);
        let plain = (!body.trim_ascii().is_empty()).then(|| match encrypted_body {
            true => tea::decrypt(body).unwrap_or_else(|_| body.to_vec()),
            false => body.to_vec(),
        });
        state.received.push(wire::ReceivedRequest::new(
            interface.path,
            method,
            params,
            headers,
            encrypted_body,
            plain.as_deref(),
        ));
    }
    let accepted =
        Msdk::accept(&state, path, params, headers, body, now).map_err(|error| ("msg", error))?;
    let openid = Msdk::authenticate(&state, &accepted, params).map_err(|error| ("msg", error))?;
    let interface = accepted.interface;
    let call = Call {
        app: accepted.app,
        openid,
        body: accepted.body,
        https: wants_https(params),
        degraded: degraded && interface.reports_loss,
        now,
        client_ip,
    };
    (interface.handler)(&mut state, &call)
        .map(|fields| (interface, fields))
        .map_err(|error| (interface.message_key, error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_interface_has_a_unique_canonical_path() {
        let paths: Vec<_> = paths().collect();
        assert_eq!(paths.len(), 51);
        for path in &paths {
            assert_eq!(canonical_path(path), Some(*path));
            assert_eq!(paths.iter().filter(|p| *p == path).count(), 1, "{path}");
        }
        assert_eq!(
            canonical_path("/wxoauth/check_token"),
            Some("/auth/check_token")
        );
        assert_eq!(
            canonical_path("/relation/qqprofile/"),
            Some("/relation/qqprofile")
        );
        assert_eq!(canonical_path("/relation/nope"), None);
        assert_eq!(canonical_path("/wxoauth/qqprofile"), None);
        assert_eq!(
            canonical_path("/profile/query_vip/"),
            Some("/profile/query_vip")
        );
        assert_eq!(canonical_path("/pay/query"), None);
        assert_eq!(canonical_path("/relation/qqprofile//"), None);
    }

    #[test]
    fn loss_reporting_interfaces() {
        let lossy: Vec<_> = interfaces()
            .filter(|i| i.reports_loss)
            .map(|i| i.path)
            .collect();
        assert_eq!(
            lossy,
            [
                "/relation/qqprofile",
                "/relation/qqfriends_detail",
                "/relation/qqstrange_profile",
                "/relation/qqfriends_vip",
                "/relation/get_vip_rich_info",
                "/relation/send_groupmsg",
            ]
        );
    }

    // python3 -c 'import hashlib; print(hashlib.md5(b"demo-msdk-qq-key-0001" b"1700000000").hexdigest())'
    // and the seed's own example: md5("111111") = 96e79218965e...d5a330112.
    #[test]
    fn md5_vectors() {
        assert_eq!(
            md5_hex(&[b"demo-msdk-qq-key-0001", b"1700000000"]),
            "bcc31f206440071872d0f6a95e2b2091"
        );
        assert_eq!(md5_hex(&[b"111111"]), "96e79218965eb72c92a549dd5a330112");
    }

    #[test]
    fn ext_info_charset() {
        assert!(valid_ext_info("req_42_ABC"));
        for bad in ["", "a-b", "a b", "é", "a;b", "a=b"] {
            assert!(!valid_ext_info(bad), "{bad:?}");
        }
    }

    #[test]
    fn https_by_ishttps_then_version() {
        let https = |query: &str| wants_https(&QueryParams::parse(Some(query)));
        assert!(https("ishttps=1"));
        assert!(!https("ishttps=0&version=3.0.0a"));
        assert!(!https(""));
        assert!(https("version=2.16.0i"));
        assert!(https("version=3.0.0a"));
        assert!(!https("version=2.15.9"));
        assert!(!https("version=abc"));
        assert_eq!(parse_version("2.16.0i"), Some((2, 16, 0)));
        assert_eq!(parse_version("3"), Some((3, 0, 0)));
    }

    #[test]
    fn field_readers_take_numbers_for_strings_and_back() {
        let body = json!({"appid": 100703379, "flag": "2", "bad": [1], "empty": "", "n": 1.5});
        let body = body.as_object().unwrap();
        assert_eq!(
            opt_str(body, "appid", "appid").unwrap().as_deref(),
            Some("100703379")
        );
        assert_eq!(opt_int(body, "flag", "flag").unwrap(), Some(2));
        assert_eq!(opt_str(body, "empty", "empty").unwrap(), None);
        assert_eq!(opt_int(body, "missing", "missing").unwrap(), None);
        assert!(opt_str(body, "bad", "bad").is_err());
        assert!(opt_int(body, "n", "n").is_err());
        assert!(req_str(body, "empty", "empty").is_err());
        assert!(req_list(body, "bad", "bad").is_err());
    }
}
