#![forbid(unsafe_code)]
//! An HTTP emulator of the game platforms that gamegate calls.
//!
//! It is part of the product, not a test mock: game teams run it for their own integration tests,
//! and gamegate starts one in-process when it has no configuration. So it verifies every
//! signature with its own implementation of the platforms' rules (see `shared/design/SIGNING.md`),
//! keeps state (tokens, storage, dawanka counters), enforces the documented limits with the
//! documented codes, and misbehaves on request through the admin API under `/_sandbox`.
//!
//! Emulated so far:
//! - QQ mini-game server API (`/api/...`, host `api.q.qq.com`).
//! - QQ Game OpenAPI v3 dawanka (`/v3/user/...`, host `openapi.minigame.qq.com`).
//! - MSDK backend, modules `auth` (alias `wxoauth`), `relation`, `profile`, `share` and
//!   `freeflow` (`/auth/...`, `/relation/...`, `/profile/...`, `/share/...`, `/freeflow/...`,
//!   host `msdk.qq.com`).

pub mod demo;

mod admin;
mod faults;
mod minigame;
mod msdk;
mod openapi;
mod query;
mod server;
mod stats;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

pub use msdk::fixture::{
    MsdkApp, MsdkGender, MsdkMembership, MsdkPlatform, MsdkQqGroup, MsdkQqProfile,
    MsdkUnregisteredFriend, MsdkUser, MsdkWechatGroup, MsdkWechatProfile,
};
pub use msdk::fixture_profile::{
    MsdkFirstRegistration, MsdkFreeFlow, MsdkFreeFlowLists, MsdkGift, MsdkSubscribeMessage,
    MsdkVideoChannel, MsdkVideoVip, MsdkVipEntry,
};
pub use server::{RunningSandbox, spawn};

/// Everything the sandbox starts with. [`SandboxConfig::demo`] (also the `Default`) is the fixture
/// documented in the crate README.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    pub minigame_apps: Vec<MiniGameApp>,
    pub minigame_users: Vec<MiniGameUser>,
    pub openapi_apps: Vec<OpenApiApp>,
    pub openapi_users: Vec<OpenApiUser>,
    /// MSDK apps (QQ, WeChat, guest).
    pub msdk_apps: Vec<MsdkApp>,
    /// MSDK users with their tokens, profiles and friends.
    pub msdk_users: Vec<MsdkUser>,
    /// QQ groups that exist before the sandbox starts (unbound; bindable by their owner).
    pub msdk_qq_groups: Vec<MsdkQqGroup>,
    /// Guilds' WeChat groups.
    pub msdk_wechat_groups: Vec<MsdkWechatGroup>,
    /// Lifetime of a mini-game access token (the platform says 7200 s).
    pub token_ttl: Duration,
    /// How long an app's older tokens stay valid after a new one is issued (the platform says
    /// "about 5 minutes").
    pub token_grace: Duration,
    /// Cap on the sum of key+value bytes stored per (appid, openid); over it: 87017. The platform
    /// documents that a cap exists but not its size.
    pub storage_total_cap_bytes: usize,
    /// How long a login code minted through the admin API is valid (the platform says 5 minutes).
    pub code_ttl: Duration,
}

/// A QQ mini-game app: its appid and app secret (used by getToken).
#[derive(Clone)]
pub struct MiniGameApp {
    pub appid: String,
    pub secret: String,
}

/// A player of a mini-game app. The `session_key` is the HMAC key for storage signatures, used
/// as the string it is (its UTF-8 bytes), never base64-decoded.
#[derive(Clone)]
pub struct MiniGameUser {
    pub appid: String,
    pub openid: String,
    pub session_key: String,
}

/// A QQ Game OpenAPI v3 app: its appid and app key (the HMAC-SHA1 signing key is `appkey + "&"`).
#[derive(Clone)]
pub struct OpenApiApp {
    pub appid: String,
    pub appkey: String,
}

/// A QQ Game player: the openkey the game got at login, and their dawanka data.
#[derive(Clone)]
pub struct OpenApiUser {
    pub appid: String,
    pub openid: String,
    pub openkey: String,
    pub dawanka: DawankaState,
}

/// A player's dawanka (大玩咖) data as the platform keeps it. Missing fields deserialize to
/// their defaults (all zero / false) so that the admin API can take partial states.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DawankaState {
    pub score: i64,
    /// 0 none, 1 dawanka, 2 super dawanka, 3 potential, 4 quasi (3 and 4 only in v2 data).
    pub level: i32,
    pub binding: bool,
    /// Top-up rebate in percent.
    pub discount: i32,
    /// Remaining top-up bonus uses; -1 = unlimited.
    pub pay_return_count: i32,
    /// Top-up bonus uses already reported.
    pub used: i32,
    pub is_using_card: bool,
    pub real_level: i32,
    pub card_expire_ts: i64,
}

impl SandboxConfig {
    /// The demo fixture: one app per platform with a few players (values in [`demo`]; the MSDK
    /// part is `src/msdk/fixture.json`).
    pub fn demo() -> Self {
        use demo::*;
        let msdk = msdk::fixture::demo();
        let minigame_user = |openid: &str, session_key: &str| MiniGameUser {
            appid: MINIGAME_APPID.to_owned(),
            openid: openid.to_owned(),
            session_key: session_key.to_owned(),
        };
        let openapi_user = |openid: &str, openkey: &str, dawanka: DawankaState| OpenApiUser {
            appid: OPENAPI_APPID.to_owned(),
            openid: openid.to_owned(),
            openkey: openkey.to_owned(),
            dawanka,
        };
        Self {
            minigame_apps: vec![MiniGameApp {
                appid: MINIGAME_APPID.to_owned(),
                secret: MINIGAME_SECRET.to_owned(),
            }],
            minigame_users: vec![
                minigame_user(MINIGAME_ALICE_OPENID, MINIGAME_ALICE_SESSION_KEY),
                minigame_user(MINIGAME_BOB_OPENID, MINIGAME_BOB_SESSION_KEY),
            ],
            openapi_apps: vec![OpenApiApp {
                appid: OPENAPI_APPID.to_owned(),
                appkey: OPENAPI_APPKEY.to_owned(),
            }],
            openapi_users: vec![
                openapi_user(
                    OPENAPI_SUPER_OPENID,
                    OPENAPI_SUPER_OPENKEY,
                    DawankaState {
                        score: 3200,
                        level: 2,
                        binding: false,
                        discount: 20,
                        pay_return_count: 3,
                        used: 0,
                        ..DawankaState::default()
                    },
                ),
                openapi_user(
                    OPENAPI_POTENTIAL_OPENID,
                    OPENAPI_POTENTIAL_OPENKEY,
                    DawankaState {
                        score: 150,
                        level: 3,
                        binding: true,
                        discount: 5,
                        pay_return_count: 0,
                        used: 2,
                        is_using_card: true,
                        real_level: 3,
                        card_expire_ts: 1_893_456_000,
                    },
                ),
                openapi_user(
                    OPENAPI_UNLIMITED_OPENID,
                    OPENAPI_UNLIMITED_OPENKEY,
                    DawankaState {
                        score: 9000,
                        level: 1,
                        discount: 10,
                        pay_return_count: -1,
                        ..DawankaState::default()
                    },
                ),
            ],
            msdk_apps: msdk.apps,
            msdk_users: msdk.users,
            msdk_qq_groups: msdk.qq_groups,
            msdk_wechat_groups: msdk.wechat_groups,
            token_ttl: Duration::from_secs(7200),
            token_grace: Duration::from_secs(300),
            storage_total_cap_bytes: 65536,
            code_ttl: Duration::from_secs(300),
        }
    }
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self::demo()
    }
}

/// The emulator: all platforms' state behind one `Arc`, so clones share it.
#[derive(Clone)]
pub struct Sandbox {
    shared: Arc<Shared>,
}

struct Shared {
    minigame: minigame::MiniGame,
    openapi: openapi::OpenApi,
    msdk: msdk::Msdk,
    faults: faults::Faults,
    stats: stats::Stats,
}

impl Sandbox {
    pub fn new(config: SandboxConfig) -> Self {
        let shared = Shared {
            minigame: minigame::MiniGame::new(&config),
            openapi: openapi::OpenApi::new(&config),
            msdk: msdk::Msdk::new(&config),
            faults: faults::Faults::default(),
            stats: stats::Stats::default(),
        };
        Self {
            shared: Arc::new(shared),
        }
    }

    /// All routes: the platforms' paths (with request counting and fault injection in front of
    /// them), the admin API under `/_sandbox`, and a JSON 404 for anything else.
    ///
    /// Served by anything but [`Sandbox::serve`] (or [`spawn`]), a `drop_connection` fault is a
    /// response body that fails at once, which hyper-based servers turn into an aborted
    /// connection; only the sandbox's own loop guarantees that no byte of an answer is sent.
    pub fn router(&self) -> Router {
        let platforms = Router::new()
            .merge(minigame::routes())
            .merge(openapi::routes())
            .merge(msdk::routes())
            // route_layer, not layer: unknown paths must not count as platform requests nor
            // consume faults meant for real ones.
            .route_layer(axum::middleware::from_fn_with_state(
                self.clone(),
                faults::intercept,
            ));
        Router::new()
            .nest("/_sandbox", admin::routes())
            .merge(platforms)
            .fallback(unknown_path)
            .with_state(self.clone())
    }

    /// Serves [`Sandbox::router`] on `listener` until `shutdown` resolves, then stops accepting
    /// and lets in-flight requests finish (for a bounded time).
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        server::serve(self, listener, shutdown).await
    }
}

impl fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The state holds secrets; say nothing about it.
        f.debug_struct("Sandbox").finish_non_exhaustive()
    }
}

/// The redacted stand-in for secrets in Debug output.
const REDACTED: &str = "<redacted>";

impl fmt::Debug for MiniGameApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MiniGameApp")
            .field("appid", &self.appid)
            .field("secret", &REDACTED)
            .finish()
    }
}

impl fmt::Debug for MiniGameUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MiniGameUser")
            .field("appid", &self.appid)
            .field("openid", &self.openid)
            .field("session_key", &REDACTED)
            .finish()
    }
}

impl fmt::Debug for OpenApiApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenApiApp")
            .field("appid", &self.appid)
            .field("appkey", &REDACTED)
            .finish()
    }
}

impl fmt::Debug for OpenApiUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenApiUser")
            .field("appid", &self.appid)
            .field("openid", &self.openid)
            .field("openkey", &REDACTED)
            .field("dawanka", &self.dawanka)
            .finish()
    }
}

/// The platform a request path belongs to, which decides the shape of injected errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Platform {
    MiniGame,
    OpenApi,
    Msdk,
}

/// The platform of a request path and the canonical path that counters and faults know it by:
/// MSDK's `wxoauth` alias and trailing slash fold into `/auth/...` and the bare path. None for a
/// path that is no emulated interface (an unknown MSDK interface included).
fn platform_path(path: &str) -> Option<(Platform, &'static str)> {
    if let Some(path) = minigame::PATHS.iter().find(|p| **p == path) {
        Some((Platform::MiniGame, path))
    } else if let Some(path) = openapi::PATHS.iter().find(|p| **p == path) {
        Some((Platform::OpenApi, path))
    } else {
        msdk::canonical_path(path).map(|path| (Platform::Msdk, path))
    }
}

/// Every platform path the sandbox answers (MSDK ones in their canonical form).
fn platform_paths() -> impl Iterator<Item = &'static str> {
    minigame::PATHS
        .iter()
        .chain(openapi::PATHS.iter())
        .copied()
        .chain(msdk::paths())
}

async fn unknown_path(uri: Uri) -> Response {
    tracing::debug!(path = uri.path(), "unknown path");
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({ "error": "unknown path", "path": uri.path() })),
    )
        .into_response()
}

/// Locks a state mutex. A panic while it was held is a sandbox bug, but the sandbox keeps serving
/// the state as it was left rather than failing every later request.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Compares secrets without an early exit, so that answer times do not leak a prefix match.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_redacts_secrets() {
        let config = SandboxConfig::demo();
        let debug = format!("{config:?}");
        for secret in [
            demo::MINIGAME_SECRET,
            demo::MINIGAME_ALICE_SESSION_KEY,
            demo::MINIGAME_BOB_SESSION_KEY,
            demo::OPENAPI_APPKEY,
            demo::OPENAPI_SUPER_OPENKEY,
            demo::OPENAPI_POTENTIAL_OPENKEY,
            demo::OPENAPI_UNLIMITED_OPENKEY,
            demo::MSDK_QQ_MSDKKEY,
            demo::MSDK_QQ_APPKEY,
            demo::MSDK_WX_MSDKKEY,
            demo::MSDK_WX_APPKEY,
            demo::MSDK_QQ_ALICE_TOKEN,
            demo::MSDK_QQ_ALICE_PAY_TOKEN,
            demo::MSDK_QQ_ERIN_TOKEN,
            demo::MSDK_WX_ALICE_TOKEN,
            demo::MSDK_WX_DAVE_TOKEN,
            demo::MSDK_GUEST_TOKEN,
        ] {
            assert!(!debug.contains(secret), "debug output leaks a secret");
        }
        assert!(debug.contains(demo::MINIGAME_ALICE_OPENID));
        assert!(debug.contains(demo::MSDK_WX_ALICE_OPENID));
    }

    #[test]
    fn constant_time_eq_compares_whole_slices() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }
}
