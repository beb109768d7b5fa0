//! The state gamegate keeps between calls, behind one interface ([`Store`]),
//! so that a store every replica shares (Redis, for a fleet) can replace the
//! in-process one ([`MemoryStore`]) without touching the code that uses it.
//!
//! Today that state is the platforms' app access tokens. Their contract, which
//! every store keeps: at most one fetch at a time per app (single flight); a
//! fetch runs on its own, so a caller whose deadline passes while it waits never
//! cancels it and the next caller finds its result; a token is refreshed ahead
//! of expiry while calls keep using the current one; a token the platform
//! refused is dropped only if it is still the current one.

mod memory;

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use secrecy::SecretString;
use tokio::time::Instant;

pub use self::memory::MemoryStore;
use crate::{errors::GatewayError, proto::Platform};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

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

/// Where gamegate's shared state lives.
pub trait Store: Send + Sync {
    /// The access tokens of `scope`, fetched from `source` when needed.
    fn access_tokens(
        &self,
        scope: TokenScope,
        source: Arc<dyn TokenSource>,
    ) -> Arc<dyn AccessTokens>;
}
