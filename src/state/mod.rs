//! The state gamegate keeps between calls, behind one interface ([`Store`]),
//! so that a store every replica shares (Redis, for a fleet) can replace the
//! in-process one ([`MemoryStore`]) without touching the code that uses it.
//!
//! That state is the platforms' app access tokens, the session keys of users
//! who logged in through gamegate ([`SessionKeys`]), idempotency records and
//! the fleet's size. The tokens' contract, which
//! every store keeps: at most one fetch at a time per app (single flight); a
//! fetch runs on its own, so a caller whose deadline passes while it waits never
//! cancels it and the next caller finds its result; a token is refreshed ahead
//! of expiry while calls keep using the current one; a token the platform
//! refused is dropped only if it is still the current one.

mod memory;
mod redis;

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use secrecy::SecretString;
use tokio::time::Instant;

pub use self::{
    memory::{MemorySessionKeys, MemoryStore},
    redis::{RedisSettings, RedisStore, RedisStoreError},
};
use crate::{errors::GatewayError, proto::Platform};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One fetch of an app's token, awaited by every caller that needs it.
pub(crate) type SharedFetch =
    futures::future::Shared<BoxFuture<'static, Result<Arc<AccessToken>, GatewayError>>>;

/// Runs `fetch` in a task of its own (a caller whose deadline passes never
/// cancels it), in the span of the call that started it, and shares its result; a task that panicked or was dropped
/// with the runtime ends as `FetchAborted`. Both stores' single flights.
pub(crate) fn spawn_shared_fetch(
    platform: Platform,
    fetch: impl Future<Output = Result<Arc<AccessToken>, GatewayError>> + Send + 'static,
) -> SharedFetch {
    use futures::FutureExt;
    use tracing::Instrument as _;
    // The fetch's spans are children of the call that started it (its trace
    // is the one a caller quoting its trace id looks at), even when that
    // call's deadline passes before the fetch ends.
    let task = tokio::spawn(fetch.in_current_span());
    let platform = crate::errors::platform_name(platform);
    let joined: BoxFuture<'static, _> = Box::pin(async move {
        task.await.unwrap_or_else(|aborted| {
            Err(GatewayError::FetchAborted {
                platform,
                cause: if aborted.is_panic() {
                    "the fetch panicked"
                } else {
                    "the runtime is shutting down"
                },
            })
        })
    });
    joined.shared()
}

/// One fetch of `scope`'s token from `source`, counted in the metrics (a
/// fetched token's age counts from now).
pub(crate) async fn fetch_counted(
    scope: &TokenScope,
    source: &dyn TokenSource,
) -> Result<IssuedToken, GatewayError> {
    let fetched = source.fetch().await;
    let platform = crate::errors::platform_name(scope.platform);
    crate::metrics::global().token_refreshed(platform, &scope.app_id, fetched.is_ok());
    if fetched.is_ok() {
        crate::metrics::global().token_in_use(platform, &scope.app_id, unix_ms());
    }
    fetched
}

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A token as the platform issued it.
pub struct IssuedToken {
    pub value: SecretString,
    pub expires_in: Duration,
}

/// Where an app's tokens come from (the platform's getToken interface). A
/// fetch must end by itself: it is bounded by its own deadline, because no
/// caller's deadline covers it.
pub trait TokenSource: Send + Sync + 'static {
    fn fetch(&self) -> BoxFuture<'_, Result<IssuedToken, GatewayError>>;

    /// The longest one fetch takes (its own deadline).
    fn timeout(&self) -> Duration;

    /// The app's secret: a shared store seals the app's tokens with a key
    /// derived from it, so that only gamegate (which holds the secret) can
    /// open them, and a changed secret makes them unreadable, not wrong.
    fn sealing_secret(&self) -> &SecretString;
}

/// Whose tokens: a platform's app.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenScope {
    pub platform: Platform,
    pub app_id: String,
}

/// A usable token. `generation` identifies it for invalidation.
pub struct AccessToken {
    pub value: SecretString,
    pub generation: u64,
    /// When a fetch of its successor starts (while it is still served).
    refresh_at: Instant,
    expires_at: Instant,
}

impl AccessToken {
    /// A token issued at `fetched_at`, refreshed a fifth of its lifetime early
    /// (at most 5 minutes): the platform keeps the previous token valid for
    /// about 5 minutes after it issues a new one.
    pub fn issued(issued: IssuedToken, generation: u64, fetched_at: Instant) -> Self {
        let lifetime = issued.expires_in.max(Duration::from_secs(1));
        let ahead = (lifetime / 5).min(Duration::from_secs(300));
        AccessToken {
            value: issued.value,
            generation,
            refresh_at: fetched_at + lifetime - ahead,
            expires_at: fetched_at + lifetime,
        }
    }

    /// A token another replica fetched, as this one's clock sees it.
    pub fn at(
        value: SecretString,
        generation: u64,
        refresh_at: Instant,
        expires_at: Instant,
    ) -> Self {
        AccessToken {
            value,
            generation,
            refresh_at,
            expires_at,
        }
    }

    /// Fresh: no refresh is due.
    pub fn is_fresh(&self, now: Instant) -> bool {
        now < self.refresh_at
    }

    /// Still accepted by the platform.
    pub fn is_valid(&self, now: Instant) -> bool {
        now < self.expires_at
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("value", &"<redacted>")
            .field("generation", &self.generation)
            .finish()
    }
}

/// One app's access tokens.
pub trait AccessTokens: Send + Sync {
    /// The current token if it can be used now, without waiting; when its
    /// refresh is due, one fetch of its successor starts in the background.
    fn cached(&self) -> Option<Arc<AccessToken>>;

    /// The result of the fetch in flight, starting one if none is. The fetch
    /// runs on its own: dropping this future never cancels it.
    fn fetched(&self) -> BoxFuture<'static, Result<Arc<AccessToken>, GatewayError>>;

    /// Drops `token` if it is still the current one (a late failure of an old
    /// token never throws away the fresh one another call just fetched).
    fn invalidate(&self, token: &AccessToken);
}

impl dyn AccessTokens {
    /// A usable token: the cached one, or the one the fetch in flight brings.
    pub async fn get(&self) -> Result<Arc<AccessToken>, GatewayError> {
        match self.cached() {
            Some(token) => Ok(token),
            None => self.fetched().await,
        }
    }
}

/// What an idempotency key holds when a write's call claims it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key was free: this call runs the write, then [`Store::record`]s
    /// its outcome (or [`Store::release`]s the key when the write certainly
    /// never left gamegate).
    Owned,
    /// A call with this key and the same request is running (here or on
    /// another replica).
    Running,
    /// A call with this key and the same request ended: its recorded outcome
    /// (opaque bytes, as `api` encoded them), to replay.
    Done(Vec<u8>),
    /// The call that owned the key stopped without recording an outcome
    /// (its replica died) after the write may have been sent: the outcome is
    /// unknown, and the write must not be sent again under this key.
    Abandoned,
    /// The key was claimed with another request.
    OtherRequest,
}

/// An idempotency key as a store keeps it: already namespaced by the caller
/// (`api` builds it), and the fingerprint of the request it was claimed for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey {
    /// `<caller>/<key>`: two callers' keys never meet.
    pub key: String,
    /// SHA-256 of the RPC and the request's bytes.
    pub fingerprint: [u8; 32],
}

/// The session keys of one app's users, as the user's last login through
/// gamegate issued them (QQ mini-game jscode2session), kept until a newer
/// login replaces them or their maximum age passes.
pub trait SessionKeys: Send + Sync {
    /// The key of `openid`'s last login, if it is younger than the maximum age.
    fn get<'a>(&'a self, openid: &'a str) -> BoxFuture<'a, Option<SecretString>>;

    /// Keeps `key` as `openid`'s, replacing the one kept before.
    fn put<'a>(&'a self, openid: &'a str, key: SecretString) -> BoxFuture<'a, ()>;
}

/// Where gamegate's shared state lives. A store never fails a call: one
/// that cannot reach its backend (Redis down) serves from this process
/// alone, and says so in the log once per change of state.
pub trait Store: Send + Sync {
    /// The access tokens of `scope`, fetched from `source` when needed.
    fn access_tokens(
        &self,
        scope: TokenScope,
        source: Arc<dyn TokenSource>,
    ) -> Arc<dyn AccessTokens>;

    /// The session keys of `scope`'s users, each kept for `max_age`; a shared
    /// store seals them with a key derived from `sealing_secret` (the app's
    /// secret), as it does the app's tokens.
    fn session_keys(
        &self,
        scope: TokenScope,
        sealing_secret: &SecretString,
        max_age: Duration,
    ) -> Arc<dyn SessionKeys>;

    /// Claims `key` for `window` (the time a repeat is answered from the
    /// record). A claim still running after `lease` (longer than any call
    /// can take) belongs to a call that died: [`Claim::Abandoned`].
    fn claim(
        &self,
        key: &IdempotencyKey,
        window: Duration,
        lease: Duration,
    ) -> BoxFuture<'_, Claim>;

    /// Records the outcome of the call that owns `key`, for `window`.
    fn record(&self, key: &IdempotencyKey, outcome: Vec<u8>, window: Duration)
    -> BoxFuture<'_, ()>;

    /// Frees `key`: its call failed before anything was sent to the
    /// platform, so that the caller's retry with the same key runs.
    fn release(&self, key: &IdempotencyKey) -> BoxFuture<'_, ()>;

    /// How many replicas share the platforms' rate limits, kept current by
    /// the store: 1 for a store of this process alone; the fleet's live
    /// replicas (each heartbeating through the store) for a shared one, the
    /// last known count while the store cannot be reached.
    fn fleet(&self) -> FleetSize {
        Arc::new(std::sync::atomic::AtomicUsize::new(1))
    }
}

/// The number of live replicas (read as at least 1).
pub type FleetSize = Arc<std::sync::atomic::AtomicUsize>;
