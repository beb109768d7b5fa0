//! The life cycle of an app's access token (QQ mini-game `getToken`).
//!
//! One cache per app: the token is fetched with the app secret, reused until it
//! nears expiry, refreshed ahead of expiry in the background by one task only,
//! and fetched on demand by one task only while every other caller waits for
//! that fetch (single flight). A token the platform refused is dropped only if it
//! is still the current one, so a late failure of an old token never throws away
//! the fresh token another call just fetched.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use arc_swap::ArcSwapOption;
use secrecy::SecretString;
use tokio::time::Instant;

use crate::errors::GatewayError;

/// A token as the platform issued it.
pub struct IssuedToken {
    pub value: SecretString,
    pub expires_in: Duration,
}

/// Where tokens come from (the platform's getToken interface).
pub trait TokenSource: Send + Sync + 'static {
    fn fetch(&self)
    -> Pin<Box<dyn Future<Output = Result<IssuedToken, GatewayError>> + Send + '_>>;
}

/// A cached token. `generation` identifies it for invalidation.
pub struct AccessToken {
    pub value: SecretString,
    pub generation: u64,
    refresh_at: Instant,
    expires_at: Instant,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("value", &"<redacted>")
            .field("generation", &self.generation)
            .finish()
    }
}

pub struct TokenCache {
    source: Box<dyn TokenSource>,
    current: ArcSwapOption<AccessToken>,
    refresh_lock: tokio::sync::Mutex<()>,
    refreshing_in_background: AtomicBool,
    generations: AtomicU64,
    /// Bounds a background refresh, which no caller's deadline covers.
    fetch_timeout: Duration,
}

impl TokenCache {
    pub fn new(source: impl TokenSource, fetch_timeout: Duration) -> Arc<Self> {
        Arc::new(TokenCache {
            source: Box::new(source),
            current: ArcSwapOption::empty(),
            refresh_lock: tokio::sync::Mutex::new(()),
            refreshing_in_background: AtomicBool::new(false),
            generations: AtomicU64::new(0),
            fetch_timeout,
        })
    }

    /// A usable token: the cached one, or a fresh one if there is none.
    pub async fn get(self: &Arc<Self>) -> Result<Arc<AccessToken>, GatewayError> {
        if let Some(token) = self.current.load_full() {
            let now = Instant::now();
            if now < token.refresh_at {
                return Ok(token);
            }
            if now < token.expires_at {
                // Still valid: serve it and let one task fetch its successor.
                self.refresh_in_background();
                return Ok(token);
            }
        }
        self.refresh().await
    }

    /// Drops `token` if it is still the current one.
    pub fn invalidate(&self, token: &Arc<AccessToken>) {
        let current = self.current.load();
        if current
            .as_ref()
            .is_some_and(|c| c.generation == token.generation)
        {
            self.current.compare_and_swap(&*current, None);
        }
    }

    fn refresh_in_background(self: &Arc<Self>) {
        if self.refreshing_in_background.swap(true, Ordering::AcqRel) {
            return;
        }
        let cache = self.clone();
        tokio::spawn(async move {
            let outcome = tokio::time::timeout(cache.fetch_timeout, cache.refresh()).await;
            match outcome {
                Ok(Ok(_)) => tracing::debug!("access token refreshed ahead of expiry"),
                Ok(Err(error)) => {
                    tracing::warn!(%error, "access token refresh ahead of expiry failed")
                }
                Err(_) => tracing::warn!("access token refresh ahead of expiry timed out"),
            }
            cache
                .refreshing_in_background
                .store(false, Ordering::Release);
        });
    }

    /// Fetches a new token unless another task fetched one while this one waited.
    async fn refresh(&self) -> Result<Arc<AccessToken>, GatewayError> {
        let stale = self.current.load_full().map(|t| t.generation);
        let _guard = self.refresh_lock.lock().await;
        if let Some(token) = self.current.load_full() {
            if Some(token.generation) != stale && Instant::now() < token.expires_at {
                return Ok(token);
            }
            if Instant::now() < token.refresh_at {
                return Ok(token);
            }
        }
        let fetched_at = Instant::now();
        let issued = self.source.fetch().await?;
        let lifetime = issued.expires_in.max(Duration::from_secs(1));
        // Refresh a fifth of the lifetime early (at most 5 minutes): the platform
        // keeps the previous token valid for about 5 minutes after a new one.
        let ahead = (lifetime / 5).min(Duration::from_secs(300));
        let token = Arc::new(AccessToken {
            value: issued.value,
            generation: self.generations.fetch_add(1, Ordering::Relaxed) + 1,
            refresh_at: fetched_at + lifetime - ahead,
            expires_at: fetched_at + lifetime,
        });
        self.current.store(Some(token.clone()));
        Ok(token)
    }
}
