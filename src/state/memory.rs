//! The in-process store: the state of one gamegate, kept in memory (the
//! default, and what the embedded sandbox uses).
//!
//! An app's token fetch runs in a task of its own, and every caller that needs
//! it waits on a shared handle to that task's result. The caller that started
//! the fetch is one waiter among others: when its deadline drops it, the fetch
//! goes on, its token is stored, and the callers still waiting get it.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use arc_swap::ArcSwapOption;
use futures::{FutureExt, future};
use tokio::time::Instant;

use super::{
    AccessToken, AccessTokens, BoxFuture, Claim, IdempotencyKey, SessionKeys, SharedFetch, Store,
    TokenScope, TokenSource, spawn_shared_fetch,
};
use crate::errors::{GatewayError, platform_name};

/// Keeps everything in this process.
#[derive(Debug, Default)]
pub struct MemoryStore {
    idempotency: Mutex<IdempotencyRecords>,
    /// Every app's session keys (one map, so that an app's keys outlive a
    /// rebuild of its platform).
    sessions: Arc<Mutex<SessionKeyMap>>,
}

/// The most session keys one process keeps; past it the expired ones go,
/// then any one (a user who lost theirs logs in again).
const MAX_SESSION_KEYS: usize = 500_000;

type SessionKeyMap = HashMap<(TokenScope, String), (secrecy::SecretString, Instant)>;

/// One app's session keys in this process.
pub struct MemorySessionKeys {
    scope: TokenScope,
    max_age: Duration,
    keys: Arc<Mutex<SessionKeyMap>>,
}

impl MemorySessionKeys {
    fn entry(&self, openid: &str) -> (TokenScope, String) {
        (self.scope.clone(), openid.to_string())
    }

    pub(crate) fn get_now(&self, openid: &str) -> Option<secrecy::SecretString> {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let entry = self.entry(openid);
        match keys.get(&entry) {
            Some((key, expires_at)) if Instant::now() < *expires_at => Some(key.clone()),
            Some(_) => {
                keys.remove(&entry);
                None
            }
            None => None,
        }
    }

    pub(crate) fn put_now(&self, openid: &str, key: secrecy::SecretString) {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if keys.len() >= MAX_SESSION_KEYS {
            let now = Instant::now();
            keys.retain(|_, (_, expires_at)| now < *expires_at);
            if keys.len() >= MAX_SESSION_KEYS
                && let Some(any) = keys.keys().next().cloned()
            {
                keys.remove(&any);
            }
        }
        keys.insert(self.entry(openid), (key, Instant::now() + self.max_age));
    }
}

impl SessionKeys for MemorySessionKeys {
    fn get<'a>(&'a self, openid: &'a str) -> BoxFuture<'a, Option<secrecy::SecretString>> {
        Box::pin(future::ready(self.get_now(openid)))
    }

    fn put<'a>(&'a self, openid: &'a str, key: secrecy::SecretString) -> BoxFuture<'a, ()> {
        self.put_now(openid, key);
        Box::pin(future::ready(()))
    }
}

/// The most idempotency keys one process keeps; past it the oldest record
/// goes first (its window is cut short rather than memory growing without
/// bound under a flood of keys).
const MAX_IDEMPOTENCY_KEYS: usize = 100_000;

#[derive(Debug, Default)]
struct IdempotencyRecords {
    records: HashMap<String, IdempotencyRecord>,
    /// Keys in the order they were claimed, for eviction.
    order: VecDeque<(String, Instant)>,
}

#[derive(Debug)]
struct IdempotencyRecord {
    fingerprint: [u8; 32],
    claimed_at: Instant,
    expires_at: Instant,
    outcome: Option<Vec<u8>>,
}

impl IdempotencyRecords {
    fn claim(&mut self, key: &IdempotencyKey, window: Duration, lease: Duration) -> Claim {
        let now = Instant::now();
        if let Some(record) = self.records.get(&key.key) {
            if record.expires_at > now {
                return if record.fingerprint != key.fingerprint {
                    Claim::OtherRequest
                } else if let Some(outcome) = &record.outcome {
                    Claim::Done(outcome.clone())
                } else if now.duration_since(record.claimed_at) > lease {
                    Claim::Abandoned
                } else {
                    Claim::Running
                };
            }
            self.records.remove(&key.key);
        }
        while self.records.len() >= MAX_IDEMPOTENCY_KEYS {
            let Some((oldest, claimed_at)) = self.order.pop_front() else {
                break;
            };
            // Only the entry of that claim: a key claimed again since has a
            // later place in the queue.
            if self
                .records
                .get(&oldest)
                .is_some_and(|record| record.claimed_at == claimed_at)
            {
                self.records.remove(&oldest);
            }
        }
        self.records.insert(
            key.key.clone(),
            IdempotencyRecord {
                fingerprint: key.fingerprint,
                claimed_at: now,
                expires_at: now + window,
                outcome: None,
            },
        );
        self.order.push_back((key.key.clone(), now));
        // Stale places of keys claimed again or removed: bounded by twice
        // the records.
        if self.order.len() > 2 * MAX_IDEMPOTENCY_KEYS {
            let records = &self.records;
            self.order
                .retain(|(key, at)| records.get(key).is_some_and(|r| r.claimed_at == *at));
        }
        Claim::Owned
    }

    fn record(&mut self, key: &IdempotencyKey, outcome: Vec<u8>, window: Duration) {
        if let Some(record) = self.records.get_mut(&key.key)
            && record.fingerprint == key.fingerprint
        {
            record.outcome = Some(outcome);
            record.expires_at = Instant::now() + window;
        }
    }

    fn release(&mut self, key: &IdempotencyKey) {
        if self
            .records
            .get(&key.key)
            .is_some_and(|record| record.fingerprint == key.fingerprint && record.outcome.is_none())
        {
            self.records.remove(&key.key);
        }
    }
}

impl MemoryStore {
    fn records(&self) -> std::sync::MutexGuard<'_, IdempotencyRecords> {
        self.idempotency.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl MemoryStore {
    /// `scope`'s session keys in this process (also the Redis store's
    /// fallback).
    pub fn memory_session_keys(&self, scope: TokenScope, max_age: Duration) -> MemorySessionKeys {
        MemorySessionKeys {
            scope,
            max_age,
            keys: self.sessions.clone(),
        }
    }
}

impl Store for MemoryStore {
    fn session_keys(
        &self,
        scope: TokenScope,
        _sealing_secret: &secrecy::SecretString,
        max_age: Duration,
    ) -> Arc<dyn SessionKeys> {
        Arc::new(self.memory_session_keys(scope, max_age))
    }

    fn claim(
        &self,
        key: &IdempotencyKey,
        window: Duration,
        lease: Duration,
    ) -> BoxFuture<'_, Claim> {
        let claim = self.records().claim(key, window, lease);
        Box::pin(future::ready(claim))
    }

    fn record(
        &self,
        key: &IdempotencyKey,
        outcome: Vec<u8>,
        window: Duration,
    ) -> BoxFuture<'_, ()> {
        self.records().record(key, outcome, window);
        Box::pin(future::ready(()))
    }

    fn release(&self, key: &IdempotencyKey) -> BoxFuture<'_, ()> {
        self.records().release(key);
        Box::pin(future::ready(()))
    }

    fn access_tokens(
        &self,
        scope: TokenScope,
        source: Arc<dyn TokenSource>,
    ) -> Arc<dyn AccessTokens> {
        Arc::new(MemoryTokens {
            inner: Arc::new(TokenState {
                scope,
                source,
                current: ArcSwapOption::empty(),
                fetching: Mutex::new(None),
                generations: AtomicU64::new(0),
            }),
        })
    }
}

struct MemoryTokens {
    inner: Arc<TokenState>,
}

struct TokenState {
    scope: TokenScope,
    source: Arc<dyn TokenSource>,
    current: ArcSwapOption<AccessToken>,
    /// The fetch in flight, if any: its task clears this when it ends.
    fetching: Mutex<Option<SharedFetch>>,
    generations: AtomicU64,
}

impl AccessTokens for MemoryTokens {
    fn cached(&self) -> Option<Arc<AccessToken>> {
        let token = self.inner.current.load_full()?;
        let now = Instant::now();
        if token.is_fresh(now) {
            return Some(token);
        }
        if token.is_valid(now) {
            // Still valid: serve it while one task fetches its successor.
            drop(TokenState::fetch(&self.inner));
            return Some(token);
        }
        None
    }

    fn fetched(&self) -> BoxFuture<'static, Result<Arc<AccessToken>, GatewayError>> {
        Box::pin(TokenState::fetch(&self.inner))
    }

    fn invalidate(&self, token: &AccessToken) {
        let current = self.inner.current.load();
        if current
            .as_ref()
            .is_some_and(|c| c.generation == token.generation)
        {
            self.inner.current.compare_and_swap(&*current, None);
        }
    }
}

impl TokenState {
    /// The fetch in flight, or a new one.
    fn fetch(this: &Arc<Self>) -> SharedFetch {
        let mut fetching = this.fetching.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(in_flight) = fetching.as_ref() {
            return in_flight.clone();
        }
        // A fetch that ended while this caller looked may have left a fresh token.
        if let Some(token) = this
            .current
            .load_full()
            .filter(|token| token.is_fresh(Instant::now()))
        {
            let ready: BoxFuture<'static, _> = Box::pin(future::ready(Ok(token)));
            return ready.shared();
        }
        let shared = spawn_shared_fetch(this.scope.platform, Self::fetch_and_store(this.clone()));
        *fetching = Some(shared.clone());
        shared
    }

    async fn fetch_and_store(self: Arc<Self>) -> Result<Arc<AccessToken>, GatewayError> {
        let fetched_at = Instant::now();
        let outcome = super::fetch_counted(&self.scope, self.source.as_ref())
            .await
            .map(|issued| {
                let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
                let token = Arc::new(AccessToken::issued(issued, generation, fetched_at));
                self.current.store(Some(token.clone()));
                token
            });
        if let Err(error) = &outcome {
            tracing::warn!(
                platform = platform_name(self.scope.platform),
                app_id = %self.scope.app_id,
                %error,
                "access token fetch failed"
            );
        }
        *self.fetching.lock().unwrap_or_else(|e| e.into_inner()) = None;
        outcome
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::atomic::{AtomicUsize, Ordering},
        time::Duration,
    };

    use secrecy::{ExposeSecret, SecretString};

    use super::*;
    use crate::{proto::Platform, state::IssuedToken};

    /// A getToken that takes `latency` and issues tokens living `lifetime`,
    /// or fails while `failing` is set.
    struct SlowSource {
        secret: SecretString,
        latency: Duration,
        lifetime: Duration,
        fetches: Arc<AtomicUsize>,
        failing: Arc<std::sync::atomic::AtomicBool>,
    }

    impl TokenSource for SlowSource {
        fn fetch(&self) -> BoxFuture<'_, Result<IssuedToken, GatewayError>> {
            Box::pin(async move {
                let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::time::sleep(self.latency).await;
                if self.failing.load(Ordering::SeqCst) {
                    return Err(GatewayError::PlatformNotConfigured("qq_minigame"));
                }
                Ok(IssuedToken {
                    value: SecretString::from(format!("token-{n}")),
                    expires_in: self.lifetime,
                })
            })
        }

        fn timeout(&self) -> Duration {
            Duration::from_secs(5)
        }

        fn sealing_secret(&self) -> &SecretString {
            &self.secret
        }
    }

    struct Fixture {
        tokens: Arc<dyn AccessTokens>,
        fetches: Arc<AtomicUsize>,
        failing: Arc<std::sync::atomic::AtomicBool>,
    }

    fn fixture(latency_ms: u64, lifetime_s: u64) -> Fixture {
        let fetches = Arc::new(AtomicUsize::new(0));
        let failing = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let source = SlowSource {
            secret: SecretString::from("the-app-secret"),
            latency: Duration::from_millis(latency_ms),
            lifetime: Duration::from_secs(lifetime_s),
            fetches: fetches.clone(),
            failing: failing.clone(),
        };
        let tokens = MemoryStore::default().access_tokens(
            TokenScope {
                platform: Platform::QqMinigame,
                app_id: "1112345678".into(),
            },
            Arc::new(source),
        );
        Fixture {
            tokens,
            fetches,
            failing,
        }
    }

    fn value(token: &AccessToken) -> &str {
        token.value.expose_secret()
    }

    /// The defect this design removes: the first caller's deadline cancelled
    /// the fetch it had started, and the next caller fetched again.
    #[tokio::test(start_paused = true)]
    async fn a_cancelled_caller_never_aborts_the_fetch() {
        let f = fixture(200, 7200);
        let started = Instant::now();
        let first = tokio::time::timeout(Duration::from_millis(50), f.tokens.get()).await;
        assert!(first.is_err(), "the first caller gave up at 50 ms");
        let token = f
            .tokens
            .get()
            .await
            .expect("the second caller gets a token");
        assert_eq!(value(&token), "token-1");
        assert_eq!(f.fetches.load(Ordering::SeqCst), 1, "one fetch in all");
        // It waited for the rest of the first fetch, not for a fetch of its own.
        assert_eq!(started.elapsed(), Duration::from_millis(200));
    }

    #[tokio::test(start_paused = true)]
    async fn a_fetch_slower_than_every_deadline_still_completes_once() {
        let f = fixture(300, 7200);
        let started = Instant::now();
        let mut refused = 0;
        // A caller every 50 ms, each giving up after 100 ms.
        loop {
            match tokio::time::timeout(Duration::from_millis(100), f.tokens.get()).await {
                Err(_) => refused += 1,
                Ok(token) => {
                    assert_eq!(value(&token.unwrap()), "token-1");
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(refused, 2, "the callers of the first 300 ms time out");
        assert_eq!(started.elapsed(), Duration::from_millis(300));
        assert_eq!(f.fetches.load(Ordering::SeqCst), 1);
        // From then on no caller waits.
        assert!(f.tokens.cached().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_fetch_per_expiry() {
        let f = fixture(100, 10);
        let burst = || futures::future::join_all((0..50).map(|_| f.tokens.get()));
        for result in burst().await {
            assert_eq!(value(&result.unwrap()), "token-1");
        }
        assert_eq!(f.fetches.load(Ordering::SeqCst), 1);
        // Past expiry (refresh was due at 8 s, nobody called): one more fetch.
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert!(f.tokens.cached().is_none());
        for result in burst().await {
            assert_eq!(value(&result.unwrap()), "token-2");
        }
        assert_eq!(f.fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn the_token_is_refreshed_ahead_of_expiry_while_calls_keep_using_it() {
        let f = fixture(100, 10);
        f.tokens.get().await.unwrap();
        // Lifetime 10 s: the refresh is due at 8 s.
        tokio::time::sleep(Duration::from_millis(8_500)).await;
        let started = Instant::now();
        for _ in 0..40 {
            let token = f.tokens.get().await.unwrap();
            assert_eq!(
                value(&token),
                "token-1",
                "served at once with the current token"
            );
        }
        assert_eq!(started.elapsed(), Duration::ZERO, "no call waited");
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(f.fetches.load(Ordering::SeqCst), 2, "one background fetch");
        assert_eq!(value(&f.tokens.get().await.unwrap()), "token-2");
        assert_eq!(f.fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn only_the_current_token_is_invalidated() {
        let f = fixture(10, 7200);
        let old = f.tokens.get().await.unwrap();
        f.tokens.invalidate(&old);
        let fresh = f.tokens.get().await.unwrap();
        assert_eq!(value(&fresh), "token-2");
        // A late failure of the old token keeps the fresh one.
        f.tokens.invalidate(&old);
        assert_eq!(value(&f.tokens.cached().unwrap()), "token-2");
        assert_eq!(f.fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_fetch_is_shared_by_its_waiters_and_the_next_caller_tries_again() {
        let f = fixture(100, 7200);
        f.failing.store(true, Ordering::SeqCst);
        let results = futures::future::join_all((0..10).map(|_| f.tokens.get())).await;
        assert!(
            results
                .iter()
                .all(|r| matches!(r, Err(GatewayError::PlatformNotConfigured(_))))
        );
        assert_eq!(f.fetches.load(Ordering::SeqCst), 1);
        f.failing.store(false, Ordering::SeqCst);
        assert_eq!(value(&f.tokens.get().await.unwrap()), "token-2");
    }

    #[tokio::test]
    async fn session_keys_are_replaced_by_a_newer_login_and_expire() {
        let store = MemoryStore::default();
        let scope = |app: &str| TokenScope {
            platform: crate::proto::Platform::QqMinigame,
            app_id: app.into(),
        };
        let secret = secrecy::SecretString::from("s");
        let keys = store.session_keys(scope("a"), &secret, Duration::from_secs(60));
        let other_app = store.session_keys(scope("b"), &secret, Duration::from_secs(60));
        keys.put("alice", "k1".to_string().into()).await;
        keys.put("alice", "k2".to_string().into()).await;
        use secrecy::ExposeSecret;
        assert_eq!(keys.get("alice").await.unwrap().expose_secret(), "k2");
        assert!(other_app.get("alice").await.is_none());
        let short = store.session_keys(scope("c"), &secret, Duration::from_millis(20));
        short.put("alice", "k".to_string().into()).await;
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert!(short.get("alice").await.is_none(), "past its maximum age");
    }
}
