//! The fleet's store: Redis (standalone or a Redis Cluster), through the
//! maintained `redis` crate (its connection manager and cluster client).
//!
//! **Access tokens.** One `getToken` per app per expiry, across every
//! replica: the token lives in Redis, sealed with AES-256-GCM under a key
//! derived from the app's secret (HKDF-SHA256), so that a Redis reader cannot
//! use it. A replica that needs a token (none, or its refresh is due) reads
//! Redis first; if the token there does not do, it takes the app's lock (`SET
//! NX PX`, an owner value and a lease), reads again (another replica may have
//! just stored one), fetches, stores, and releases the lock with a
//! compare-and-delete script. Replicas that find the lock taken wait for the
//! new token instead of fetching their own. A token the platform refuses is
//! deleted only if Redis still holds that very token (compare-and-delete by
//! its id), so the fleet refreshes it once, not once per replica. Between
//! refreshes a call costs no Redis round trip: each replica keeps the token
//! it read until its refresh is due.
//!
//! **Idempotency records** live in Redis too (see `claim`).
//!
//! **Redis unreachable.** Every command is bounded by `command_timeout`;
//! when one fails the store serves from this process alone (a per-process
//! single flight for tokens, the memory store for idempotency records), logs
//! one warning, tries Redis again at most once a second, and logs once when
//! it is back. A call never fails only because Redis is down.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use arc_swap::ArcSwapOption;
use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use hkdf::Hkdf;
use redis::{AsyncCommands, Script, aio::ConnectionLike};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use thiserror::Error;
use tokio::time::{Instant, sleep, timeout};

use super::{
    AccessToken, AccessTokens, BoxFuture, Claim, FleetSize, IdempotencyKey, IssuedToken,
    MemorySessionKeys, MemoryStore, SessionKeys, SharedFetch, Store, TokenScope, TokenSource,
    spawn_shared_fetch,
};
use crate::{
    errors::{GatewayError, platform_name},
    metrics,
};

/// Where the store connects, and how long a command may take.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// One URL for a standalone Redis, several nodes of a cluster.
    pub urls: Vec<String>,
    pub cluster: bool,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub key_prefix: String,
    pub command_timeout: Duration,
}

#[derive(Debug, Error)]
pub enum RedisStoreError {
    #[error("the redis settings cannot be used: {0}")]
    Settings(String),
}

/// Why one Redis command did not do its work (the store falls back).
#[derive(Debug, Error)]
enum Unavailable {
    #[error("no connection to redis yet")]
    NotConnected,
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// A connection to Redis, whichever kind: both are cheap to clone and
/// reconnect by themselves.
#[derive(Clone)]
enum Connection {
    Standalone(redis::aio::ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Connection::Standalone(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Connection::Standalone(c) => c.req_packed_commands(cmd, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Standalone(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

/// How one client connects (boxed: the two differ much in size).
enum Client {
    Standalone(Box<redis::Client>),
    Cluster(Box<redis::cluster::ClusterClient>),
}

/// The fleet's store.
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    connection: ArcSwapOption<Connection>,
    connecting: AtomicBool,
    prefix: String,
    command_timeout: Duration,
    reachability: Reachability,
    /// Idempotency records while Redis cannot be reached.
    fallback: MemoryStore,
    /// The live replicas, counted by the heartbeat ([`Inner::heartbeat`]),
    /// which starts with the first caller of [`Store::fleet`].
    fleet: FleetSize,
    heartbeat_started: AtomicBool,
}

/// Compare-and-delete: deletes `KEYS[1]` only if its value starts with
/// `ARGV[1]` (a lock's owner, a token's id).
const DELETE_IF_OURS: &str = r"
local value = redis.call('GET', KEYS[1])
if value and string.sub(value, 1, string.len(ARGV[1])) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

impl RedisStore {
    /// The store for `settings`. It connects in the background: a Redis
    /// that is down at start degrades gamegate, it does not stop it.
    pub fn new(settings: &RedisSettings) -> Result<RedisStore, RedisStoreError> {
        let client = if settings.cluster {
            let mut builder = redis::cluster::ClusterClient::builder(settings.urls.clone())
                .connection_timeout(settings.command_timeout.max(Duration::from_secs(1)))
                .response_timeout(settings.command_timeout)
                .retries(1);
            if let Some(username) = &settings.username {
                builder = builder.username(username);
            }
            if let Some(password) = &settings.password {
                builder = builder.password(password.expose_secret());
            }
            Client::Cluster(Box::new(
                builder
                    .build()
                    .map_err(|e| RedisStoreError::Settings(e.to_string()))?,
            ))
        } else {
            let url = settings
                .urls
                .first()
                .ok_or_else(|| RedisStoreError::Settings("no redis url".into()))?;
            let mut info = redis::IntoConnectionInfo::into_connection_info(url.as_str())
                .map_err(|e| RedisStoreError::Settings(e.to_string()))?;
            let mut redis_settings = info.redis_settings().clone();
            if let Some(username) = &settings.username {
                redis_settings = redis_settings.set_username(username);
            }
            if let Some(password) = &settings.password {
                redis_settings = redis_settings.set_password(password.expose_secret());
            }
            info = info.set_redis_settings(redis_settings);
            Client::Standalone(Box::new(
                redis::Client::open(info).map_err(|e| RedisStoreError::Settings(e.to_string()))?,
            ))
        };
        let store = RedisStore {
            inner: Arc::new(Inner {
                client,
                connection: ArcSwapOption::empty(),
                connecting: AtomicBool::new(false),
                prefix: settings.key_prefix.clone(),
                command_timeout: settings.command_timeout,
                reachability: Reachability::default(),
                fallback: MemoryStore::default(),
                fleet: Arc::new(std::sync::atomic::AtomicUsize::new(1)),
                heartbeat_started: AtomicBool::new(false),
            }),
        };
        Ok(store)
    }

    /// Connects now (and waits at most `within`): at start, so that the
    /// first calls find Redis; `false` when it is not reachable yet.
    pub async fn connect(&self, within: Duration) -> bool {
        timeout(within, self.inner.connect())
            .await
            .is_ok_and(|connected| connected)
    }
}

impl Inner {
    async fn connect(&self) -> bool {
        let connected = match &self.client {
            Client::Standalone(client) => {
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.command_timeout.max(Duration::from_secs(1))))
                    .set_response_timeout(Some(self.command_timeout))
                    .set_number_of_retries(1);
                client
                    .get_connection_manager_with_config(config)
                    .await
                    .map(Connection::Standalone)
            }
            Client::Cluster(client) => client.get_async_connection().await.map(Connection::Cluster),
        };
        match connected {
            Ok(connection) => {
                self.connection.store(Some(Arc::new(connection)));
                self.reachability.reached();
                true
            }
            Err(error) => {
                self.reachability.lost(&Unavailable::Redis(error));
                false
            }
        }
    }

    /// A connection, or none yet (a connection attempt starts in the
    /// background, at most one at a time, at most once a second).
    fn connection(self: &Arc<Self>) -> Result<Connection, Unavailable> {
        if let Some(connection) = self.connection.load_full() {
            return Ok((*connection).clone());
        }
        if self.reachability.may_retry() && !self.connecting.swap(true, Ordering::AcqRel) {
            let this = self.clone();
            tokio::spawn(async move {
                this.connect().await;
                this.connecting.store(false, Ordering::Release);
            });
        }
        Err(Unavailable::NotConnected)
    }

    /// Runs one command (or script) within the command timeout; a failure
    /// marks Redis unreachable.
    async fn run<T, F, Fut>(self: &Arc<Self>, command: F) -> Result<T, Unavailable>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        if !self.reachability.may_try() {
            return Err(Unavailable::NotConnected);
        }
        let connection = self.connection()?;
        let outcome = match timeout(self.command_timeout, command(connection)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(Unavailable::Redis(error)),
            Err(_) => Err(Unavailable::Timeout(self.command_timeout)),
        };
        match &outcome {
            Ok(_) => self.reachability.reached(),
            Err(error) => self.reachability.lost(error),
        }
        outcome
    }

    /// `<prefix>{<platform>:<app>}:<what>`: an app's keys share a hash slot
    /// (the braces), so that a cluster runs a script over two of them.
    fn token_key(&self, scope: &TokenScope, what: &str) -> String {
        format!(
            "{}{{token:{}:{}}}:{what}",
            self.prefix,
            platform_name(scope.platform),
            scope.app_id
        )
    }

    fn idempotency_key(&self, key: &IdempotencyKey) -> String {
        format!("{}idem:{}", self.prefix, key.key)
    }
}

/// Whether Redis answers, with one log line per change of state.
#[derive(Default)]
struct Reachability {
    /// Set while Redis is considered down.
    down: AtomicBool,
    /// When (ms since the Unix epoch) a command may try Redis again.
    retry_at_ms: AtomicU64,
}

/// How often a store that lost Redis tries it again.
const RETRY_EVERY: Duration = Duration::from_secs(1);

impl Reachability {
    fn may_try(&self) -> bool {
        !self.down.load(Ordering::Acquire) || self.may_retry()
    }

    fn may_retry(&self) -> bool {
        let now = unix_ms();
        let at = self.retry_at_ms.load(Ordering::Acquire);
        now >= at
            && self
                .retry_at_ms
                .compare_exchange(
                    at,
                    now + RETRY_EVERY.as_millis() as u64,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
    }

    fn reached(&self) {
        metrics::global().redis_reachable(true);
        if self.down.swap(false, Ordering::AcqRel) {
            tracing::info!("redis is reachable again: the fleet's state is shared again");
        }
    }

    fn lost(&self, error: &Unavailable) {
        metrics::global().redis_reachable(false);
        self.retry_at_ms.store(
            unix_ms() + RETRY_EVERY.as_millis() as u64,
            Ordering::Release,
        );
        if !self.down.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                %error,
                "redis cannot be reached: serving from this process alone (each replica fetches \
                 its own access tokens) until it is back"
            );
        }
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Store for RedisStore {
    fn session_keys(
        &self,
        scope: TokenScope,
        sealing_secret: &SecretString,
        max_age: Duration,
    ) -> Arc<dyn SessionKeys> {
        Arc::new(RedisSessionKeys {
            seal: Seal::for_sessions(&scope, sealing_secret),
            key_prefix: self.inner.token_key(&scope, "session"),
            fallback: self.inner.fallback.memory_session_keys(scope, max_age),
            redis: self.inner.clone(),
            max_age,
        })
    }

    fn access_tokens(
        &self,
        scope: TokenScope,
        source: Arc<dyn TokenSource>,
    ) -> Arc<dyn AccessTokens> {
        let seal = Seal::for_app(&scope, source.sealing_secret());
        Arc::new(RedisTokens {
            state: Arc::new(FleetTokens {
                token_key: self.inner.token_key(&scope, "token"),
                lock_key: self.inner.token_key(&scope, "lock"),
                redis: self.inner.clone(),
                scope,
                source,
                seal,
                current: ArcSwapOption::empty(),
                fetching: Mutex::new(None),
                refused: Mutex::new(None),
                next_fleet_check_ms: AtomicU64::new(0),
            }),
        })
    }

    fn claim(
        &self,
        key: &IdempotencyKey,
        window: Duration,
        lease: Duration,
    ) -> BoxFuture<'_, Claim> {
        let key = key.clone();
        Box::pin(async move {
            match self.inner.claim(&key, window, lease).await {
                Ok(claim) => claim,
                Err(_) => {
                    metrics::global().store_fell_back("claim");
                    self.inner.fallback.claim(&key, window, lease).await
                }
            }
        })
    }

    fn record(
        &self,
        key: &IdempotencyKey,
        outcome: Vec<u8>,
        window: Duration,
    ) -> BoxFuture<'_, ()> {
        let key = key.clone();
        Box::pin(async move {
            if self
                .inner
                .record(&key, outcome.clone(), window)
                .await
                .is_err()
            {
                metrics::global().store_fell_back("record");
                self.inner.fallback.record(&key, outcome, window).await;
            }
        })
    }

    fn release(&self, key: &IdempotencyKey) -> BoxFuture<'_, ()> {
        let key = key.clone();
        Box::pin(async move {
            if self.inner.release(&key).await.is_err() {
                metrics::global().store_fell_back("release");
                self.inner.fallback.release(&key).await;
            }
        })
    }

    fn fleet(&self) -> FleetSize {
        if !self.inner.heartbeat_started.swap(true, Ordering::AcqRel) {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(Inner::heartbeat(Arc::downgrade(&self.inner)));
                }
                // No runtime (a synchronous test): this replica counts alone.
                Err(_) => self.inner.heartbeat_started.store(false, Ordering::Release),
            }
        }
        self.inner.fleet.clone()
    }
}

// ---------------------------------------------------------------------------
// The fleet's heartbeat: `<prefix>fleet:replicas`, a sorted set of replica ids
// scored by the time each last beat; the live ones beat within the last
// `FLEET_TTL`. Its one key lives in one slot of a cluster.
// ---------------------------------------------------------------------------

/// How often a replica beats.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// A replica that has not beaten for this long is gone.
const FLEET_TTL: Duration = Duration::from_secs(15);

impl Inner {
    fn fleet_key(&self) -> String {
        format!("{}fleet:replicas", self.prefix)
    }

    /// Beats until the store is dropped: adds this replica, forgets the
    /// replicas gone silent, and counts the rest. While Redis cannot be
    /// reached the last count stands (the buckets stay as they were).
    async fn heartbeat(this: std::sync::Weak<Inner>) {
        let replica = hex::encode(rand::random::<[u8; 12]>());
        loop {
            let Some(inner) = this.upgrade() else { return };
            let key = inner.fleet_key();
            let now = unix_ms();
            let replica = replica.clone();
            let counted: Result<usize, Unavailable> = inner
                .run(|mut c| async move {
                    let (_, _, live, _): (i64, i64, usize, i64) = redis::pipe()
                        .cmd("ZADD")
                        .arg(&key)
                        .arg(now)
                        .arg(&replica)
                        .cmd("ZREMRANGEBYSCORE")
                        .arg(&key)
                        .arg("-inf")
                        .arg(now.saturating_sub(FLEET_TTL.as_millis() as u64))
                        .cmd("ZCARD")
                        .arg(&key)
                        .cmd("PEXPIRE")
                        .arg(&key)
                        .arg(4 * FLEET_TTL.as_millis() as u64)
                        .query_async(&mut c)
                        .await?;
                    Ok(live)
                })
                .await;
            match counted {
                Ok(live) => inner.fleet.store(live.max(1), Ordering::Relaxed),
                Err(_) => metrics::global().store_fell_back("fleet"),
            }
            drop(inner);
            tokio::time::sleep(HEARTBEAT_EVERY).await;
        }
    }
}

// ---------------------------------------------------------------------------
// Idempotency records: `<prefix>idem:<caller>/<key>` holds
// `<fingerprint hex>|<claimed at ms>|running` while its call runs, then
// `<fingerprint hex>|<claimed at ms>|done:<outcome base64>` (an outcome may be
// empty bytes: an empty answer, so the state is a word, not an empty field).
// ---------------------------------------------------------------------------

/// The state field of a claim whose call still runs.
const RUNNING: &str = "running";
/// The state field's start once the outcome is recorded.
const DONE: &str = "done:";

impl Inner {
    async fn claim(
        self: &Arc<Self>,
        key: &IdempotencyKey,
        window: Duration,
        lease: Duration,
    ) -> Result<Claim, Unavailable> {
        let redis_key = self.idempotency_key(key);
        let fingerprint = hex::encode(key.fingerprint);
        let running = format!("{fingerprint}|{}|{RUNNING}", unix_ms());
        let window_ms = window.as_millis() as u64;
        let claimed: bool = {
            let redis_key = redis_key.clone();
            self.run(|mut c| async move {
                redis::cmd("SET")
                    .arg(&redis_key)
                    .arg(&running)
                    .arg("NX")
                    .arg("PX")
                    .arg(window_ms)
                    .query_async::<Option<String>>(&mut c)
                    .await
                    .map(|ok| ok.is_some())
            })
            .await?
        };
        if claimed {
            return Ok(Claim::Owned);
        }
        let held: Option<String> = self
            .run(|mut c| async move { c.get(&redis_key).await })
            .await?;
        let Some(held) = held else {
            // Expired between the two commands: claim it again, once.
            return Box::pin(self.claim(key, window, lease)).await;
        };
        let mut parts = held.splitn(3, '|');
        let (Some(held_fingerprint), Some(claimed_at), Some(outcome)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Ok(Claim::Abandoned);
        };
        if held_fingerprint != fingerprint {
            return Ok(Claim::OtherRequest);
        }
        if let Some(outcome) = outcome.strip_prefix(DONE) {
            return Ok(BASE64
                .decode(outcome)
                .map(Claim::Done)
                .unwrap_or(Claim::Abandoned));
        }
        if outcome != RUNNING {
            return Ok(Claim::Abandoned);
        }
        let claimed_at: u64 = claimed_at.parse().unwrap_or(0);
        Ok(
            if unix_ms().saturating_sub(claimed_at) > lease.as_millis() as u64 {
                Claim::Abandoned
            } else {
                Claim::Running
            },
        )
    }

    async fn record(
        self: &Arc<Self>,
        key: &IdempotencyKey,
        outcome: Vec<u8>,
        window: Duration,
    ) -> Result<(), Unavailable> {
        let redis_key = self.idempotency_key(key);
        let value = format!(
            "{}|{}|{DONE}{}",
            hex::encode(key.fingerprint),
            unix_ms(),
            BASE64.encode(outcome)
        );
        let window_ms = window.as_millis() as u64;
        self.run(|mut c| async move {
            redis::cmd("SET")
                .arg(&redis_key)
                .arg(&value)
                .arg("PX")
                .arg(window_ms)
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    async fn release(self: &Arc<Self>, key: &IdempotencyKey) -> Result<(), Unavailable> {
        let redis_key = self.idempotency_key(key);
        // Only a running claim of this request: never a recorded outcome.
        let running_prefix = format!("{}|", hex::encode(key.fingerprint));
        let script = Script::new(
            r"
local value = redis.call('GET', KEYS[1])
if value and string.sub(value, 1, string.len(ARGV[1])) == ARGV[1]
   and string.sub(value, -string.len(ARGV[2])) == ARGV[2] then
  return redis.call('DEL', KEYS[1])
end
return 0",
        );
        let running_suffix = format!("|{RUNNING}");
        self.run(|mut c| async move {
            script
                .key(&redis_key)
                .arg(&running_prefix)
                .arg(&running_suffix)
                .invoke_async::<i64>(&mut c)
                .await
                .map(drop)
        })
        .await
    }
}

// ---------------------------------------------------------------------------
// Session keys: `<prefix>{token:<platform>:<app>}:session:<openid>` holds the
// key sealed (the Redis key as associated data), expiring after the maximum
// age; a newer login overwrites it. This process's memory keeps the keys of
// its own logins too, and serves them while Redis cannot be reached.
// ---------------------------------------------------------------------------

struct RedisSessionKeys {
    redis: Arc<Inner>,
    seal: Seal,
    /// `<prefix>{token:<platform>:<app>}:session`.
    key_prefix: String,
    fallback: MemorySessionKeys,
    max_age: Duration,
}

impl RedisSessionKeys {
    fn redis_key(&self, openid: &str) -> String {
        format!("{}:{openid}", self.key_prefix)
    }
}

impl SessionKeys for RedisSessionKeys {
    fn get<'a>(&'a self, openid: &'a str) -> BoxFuture<'a, Option<SecretString>> {
        Box::pin(async move {
            let key = self.redis_key(openid);
            let read = self
                .redis
                .run(|mut c| {
                    let key = key.clone();
                    async move {
                        redis::cmd("GET")
                            .arg(&key)
                            .query_async::<Option<String>>(&mut c)
                            .await
                    }
                })
                .await;
            match read {
                Ok(Some(sealed)) => self.seal.open(&sealed, &key),
                Ok(None) => None,
                Err(_) => {
                    metrics::global().store_fell_back("session_key");
                    self.fallback.get_now(openid)
                }
            }
        })
    }

    fn put<'a>(&'a self, openid: &'a str, key: SecretString) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let redis_key = self.redis_key(openid);
            let sealed = self.seal.seal(key.expose_secret(), &redis_key);
            // This process keeps it too: its own later calls find it while
            // Redis cannot be reached.
            self.fallback.put_now(openid, key);
            let max_age_ms = self.max_age.as_millis().max(1) as u64;
            let written = self
                .redis
                .run(|mut c| async move {
                    redis::cmd("SET")
                        .arg(&redis_key)
                        .arg(&sealed)
                        .arg("PX")
                        .arg(max_age_ms)
                        .query_async::<()>(&mut c)
                        .await
                })
                .await;
            if written.is_err() {
                metrics::global().store_fell_back("session_key");
            }
        })
    }
}

// ---------------------------------------------------------------------------
// Access tokens.
// ---------------------------------------------------------------------------

/// Seals tokens for Redis: AES-256-GCM under a key derived from the app's
/// secret, the Redis key as associated data (a sealed token moved to another
/// key does not open).
struct Seal {
    cipher: Aes256Gcm,
}

impl Seal {
    fn for_app(scope: &TokenScope, secret: &SecretString) -> Seal {
        Seal::derived(b"gamegate access token seal v1", scope, secret)
    }

    /// The seal of an app's users' session keys: another key from the same
    /// secret (a sealed token never opens as a session key, nor the reverse).
    fn for_sessions(scope: &TokenScope, secret: &SecretString) -> Seal {
        Seal::derived(b"gamegate session key seal v1", scope, secret)
    }

    fn derived(salt: &[u8], scope: &TokenScope, secret: &SecretString) -> Seal {
        let hkdf = Hkdf::<Sha256>::new(Some(salt), secret.expose_secret().as_bytes());
        let mut key = [0u8; 32];
        let info = format!("{}:{}", platform_name(scope.platform), scope.app_id);
        hkdf.expand(info.as_bytes(), &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 length");
        Seal {
            cipher: Aes256Gcm::new(&key.into()),
        }
    }

    fn seal(&self, token: &str, associated: &str) -> String {
        let nonce: [u8; 12] = rand::random();
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: token.as_bytes(),
                    aad: associated.as_bytes(),
                },
            )
            .expect("AES-GCM seals any message of this size");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        BASE64.encode(bytes)
    }

    /// `None` for anything that does not open: another secret (the app's
    /// secret changed: the token is fetched again), a damaged value.
    fn open(&self, sealed: &str, associated: &str) -> Option<SecretString> {
        let bytes = BASE64.decode(sealed).ok()?;
        if bytes.len() < 12 {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(12);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: associated.as_bytes(),
                },
            )
            .ok()?;
        String::from_utf8(plain).ok().map(SecretString::from)
    }
}

/// A token as Redis holds it:
/// `<id>|<refresh at ms>|<expires at ms>|<issued at ms>|<sealed>`.
struct StoredToken {
    id: u64,
    issued_at_ms: u64,
    refresh_at_ms: u64,
    expires_at_ms: u64,
    value: SecretString,
}

impl StoredToken {
    fn parse(text: &str, seal: &Seal, associated: &str) -> Option<StoredToken> {
        let mut parts = text.splitn(5, '|');
        let id = u64::from_str_radix(parts.next()?, 16).ok()?;
        let refresh_at_ms = parts.next()?.parse().ok()?;
        let expires_at_ms = parts.next()?.parse().ok()?;
        let issued_at_ms = parts.next()?.parse().ok()?;
        let value = seal.open(parts.next()?, associated)?;
        Some(StoredToken {
            id,
            issued_at_ms,
            refresh_at_ms,
            expires_at_ms,
            value,
        })
    }

    fn to_access_token(&self) -> AccessToken {
        let now_ms = unix_ms();
        let now = Instant::now();
        let at = |ms: u64| now + Duration::from_millis(ms.saturating_sub(now_ms));
        AccessToken::at(
            self.value.clone(),
            self.id,
            at(self.refresh_at_ms),
            at(self.expires_at_ms),
        )
    }

    fn is_fresh(&self) -> bool {
        unix_ms() < self.refresh_at_ms
    }

    fn is_valid(&self) -> bool {
        unix_ms() < self.expires_at_ms
    }
}

struct RedisTokens {
    state: Arc<FleetTokens>,
}

struct FleetTokens {
    redis: Arc<Inner>,
    scope: TokenScope,
    source: Arc<dyn TokenSource>,
    seal: Seal,
    token_key: String,
    lock_key: String,
    /// This replica's copy of the fleet's token.
    current: ArcSwapOption<AccessToken>,
    /// This replica's flight (read Redis, maybe lock and fetch), if any.
    fetching: Mutex<Option<SharedFetch>>,
    /// The id of the last token the platform refused here: never adopted
    /// again, even if Redis still holds it for a moment.
    refused: Mutex<Option<u64>>,
    /// While a refresh is due and another replica holds the lock: when this
    /// one looks again (ms since the epoch), so that calls in the meantime
    /// cost no Redis command.
    next_fleet_check_ms: AtomicU64,
}

/// How long a replica lets another finish its refresh before it looks again.
const FLEET_CHECK_EVERY: Duration = Duration::from_millis(500);
/// How often a replica waiting for another's fetch reads Redis.
const WAIT_POLL: Duration = Duration::from_millis(25);

impl AccessTokens for RedisTokens {
    fn cached(&self) -> Option<Arc<AccessToken>> {
        let token = self.state.current.load_full()?;
        let now = Instant::now();
        if token.is_fresh(now) {
            return Some(token);
        }
        if token.is_valid(now) {
            if unix_ms() >= self.state.next_fleet_check_ms.load(Ordering::Acquire) {
                drop(FleetTokens::fetch(&self.state));
            }
            return Some(token);
        }
        None
    }

    fn fetched(&self) -> BoxFuture<'static, Result<Arc<AccessToken>, GatewayError>> {
        Box::pin(FleetTokens::fetch(&self.state))
    }

    fn invalidate(&self, token: &AccessToken) {
        let state = &self.state;
        *state.refused.lock().unwrap_or_else(|e| e.into_inner()) = Some(token.generation);
        let current = state.current.load();
        if current
            .as_ref()
            .is_some_and(|c| c.generation == token.generation)
        {
            state.current.compare_and_swap(&*current, None);
        }
        // Deleted in Redis only if it still holds this very token: the
        // fleet refreshes a refused token once.
        let state = state.clone();
        let id = format!("{:016x}|", token.generation);
        tokio::spawn(async move {
            let key = state.token_key.clone();
            let _ = state
                .redis
                .run(|mut c| async move {
                    Script::new(DELETE_IF_OURS)
                        .key(&key)
                        .arg(&id)
                        .invoke_async::<i64>(&mut c)
                        .await
                })
                .await;
        });
    }
}

impl FleetTokens {
    /// This replica's flight, or a new one.
    fn fetch(this: &Arc<Self>) -> SharedFetch {
        let mut fetching = this.fetching.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(in_flight) = fetching.as_ref() {
            return in_flight.clone();
        }
        let shared = spawn_shared_fetch(this.scope.platform, Self::flight(this.clone()));
        *fetching = Some(shared.clone());
        shared
    }

    async fn flight(self: Arc<Self>) -> Result<Arc<AccessToken>, GatewayError> {
        let outcome = match self.through_the_fleet().await {
            Ok(outcome) => outcome,
            Err(_) => match self.still_valid() {
                // A refresh that Redis could not coordinate (down, or slow
                // under load): the current token still serves, and the
                // refresh is tried again a little later, rather than every
                // replica fetching its own.
                Some(token) => {
                    self.next_fleet_check_ms.store(
                        unix_ms() + FLEET_CHECK_EVERY.as_millis() as u64,
                        Ordering::Release,
                    );
                    Ok(token)
                }
                // No token to serve: this process fetches for itself.
                None => {
                    metrics::global().store_fell_back("token");
                    self.fetch_here().await
                }
            },
        };
        if let Ok(token) = &outcome {
            self.current.store(Some(token.clone()));
        }
        *self.fetching.lock().unwrap_or_else(|e| e.into_inner()) = None;
        outcome
    }

    /// A token another replica (or this one, earlier) stored, taken into use.
    fn adopt(&self, stored: &StoredToken) -> Arc<AccessToken> {
        metrics::global().token_in_use(
            platform_name(self.scope.platform),
            &self.scope.app_id,
            stored.issued_at_ms,
        );
        Arc::new(stored.to_access_token())
    }

    /// The current token if it stays valid for a while yet (longer than a
    /// fetch may take: it will not expire while its successor is fetched).
    fn still_valid(&self) -> Option<Arc<AccessToken>> {
        let token = self.current.load_full()?;
        let margin = self.source.timeout() + Duration::from_secs(1);
        token.is_valid(Instant::now() + margin).then_some(token)
    }

    fn refused(&self) -> Option<u64> {
        *self.refused.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The token Redis holds, if it opens and was not refused here.
    async fn read(&self) -> Result<Option<StoredToken>, Unavailable> {
        let key = self.token_key.clone();
        let text: Option<String> = self
            .redis
            .run(|mut c| async move { c.get(&key).await })
            .await?;
        let refused = self.refused();
        Ok(text
            .and_then(|text| StoredToken::parse(&text, &self.seal, &self.token_key))
            .filter(|stored| Some(stored.id) != refused && stored.is_valid()))
    }

    /// Read, or lock and fetch, or wait for the replica that fetches.
    /// `Err` only when Redis cannot be reached.
    async fn through_the_fleet(
        &self,
    ) -> Result<Result<Arc<AccessToken>, GatewayError>, Unavailable> {
        // The longest a fetch may hold the lock: the fetch's own bound and a
        // margin. A holder that dies frees it by this lease.
        let lease = self.source.timeout() + Duration::from_secs(1);
        let until = Instant::now() + lease + Duration::from_secs(1);
        let mut waited = false;
        loop {
            let stored = self.read().await?;
            if let Some(stored) = &stored
                && stored.is_fresh()
            {
                return Ok(Ok(self.adopt(stored)));
            }
            let owner = format!("{:016x}", rand::random::<u64>());
            let locked = {
                let (lock_key, owner) = (self.lock_key.clone(), owner.clone());
                let lease_ms = lease.as_millis() as u64;
                self.redis
                    .run(|mut c| async move {
                        redis::cmd("SET")
                            .arg(&lock_key)
                            .arg(&owner)
                            .arg("NX")
                            .arg("PX")
                            .arg(lease_ms)
                            .query_async::<Option<String>>(&mut c)
                            .await
                            .map(|ok| ok.is_some())
                    })
                    .await?
            };
            if locked {
                let outcome = self.fetch_and_share().await;
                let (lock_key, owner) = (self.lock_key.clone(), owner);
                let _ = self
                    .redis
                    .run(|mut c| async move {
                        Script::new(DELETE_IF_OURS)
                            .key(&lock_key)
                            .arg(&owner)
                            .invoke_async::<i64>(&mut c)
                            .await
                    })
                    .await;
                return Ok(outcome);
            }
            // Another replica fetches. A token still valid is served
            // meanwhile; this replica looks again a little later.
            if let Some(stored) = stored {
                self.next_fleet_check_ms.store(
                    unix_ms() + FLEET_CHECK_EVERY.as_millis() as u64,
                    Ordering::Release,
                );
                return Ok(Ok(self.adopt(&stored)));
            }
            if Instant::now() >= until {
                // The holder neither stored a token nor let go in time.
                return Ok(self.fetch_here().await);
            }
            if !waited {
                waited = true;
                metrics::global()
                    .token_lock_waited(platform_name(self.scope.platform), &self.scope.app_id);
            }
            sleep(WAIT_POLL).await;
        }
    }

    /// Holding the lock: read once more (a replica may have stored a token
    /// between this one's read and its lock), else fetch and store.
    async fn fetch_and_share(&self) -> Result<Arc<AccessToken>, GatewayError> {
        if let Ok(Some(stored)) = self.read().await
            && stored.is_fresh()
        {
            return Ok(self.adopt(&stored));
        }
        let fetched_at_ms = unix_ms();
        let issued = super::fetch_counted(&self.scope, self.source.as_ref()).await?;
        let id = rand::random::<u64>();
        let token = AccessToken::issued(
            IssuedToken {
                value: issued.value.clone(),
                expires_in: issued.expires_in,
            },
            id,
            Instant::now(),
        );
        let lifetime = issued.expires_in.max(Duration::from_secs(1));
        let ahead = (lifetime / 5).min(Duration::from_secs(300));
        let expires_at_ms = fetched_at_ms + lifetime.as_millis() as u64;
        let refresh_at_ms = expires_at_ms - ahead.as_millis() as u64;
        let value = format!(
            "{id:016x}|{refresh_at_ms}|{expires_at_ms}|{fetched_at_ms}|{}",
            self.seal
                .seal(issued.value.expose_secret(), &self.token_key)
        );
        let key = self.token_key.clone();
        let ttl_ms = lifetime.as_millis() as u64;
        let stored = self
            .redis
            .run(|mut c| async move {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(&value)
                    .arg("PX")
                    .arg(ttl_ms)
                    .query_async::<()>(&mut c)
                    .await
            })
            .await;
        if let Err(error) = stored {
            tracing::debug!(%error, "a fetched access token could not be shared");
        }
        Ok(Arc::new(token))
    }

    /// Without Redis: this process's own fetch (its flight is the single
    /// flight of this replica).
    async fn fetch_here(&self) -> Result<Arc<AccessToken>, GatewayError> {
        let fetched_at = Instant::now();
        let issued = super::fetch_counted(&self.scope, self.source.as_ref()).await;
        match issued {
            Ok(issued) => Ok(Arc::new(AccessToken::issued(
                issued,
                rand::random::<u64>(),
                fetched_at,
            ))),
            Err(error) => {
                tracing::warn!(
                    platform = platform_name(self.scope.platform),
                    app_id = %self.scope.app_id,
                    %error,
                    "access token fetch failed"
                );
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::proto::Platform;

    /// Two stores on the machine's Redis under a prefix of this test's own:
    /// two replicas. Fails, never passes, without Redis.
    async fn replicas(test: &str) -> (RedisStore, RedisStore) {
        let settings = RedisSettings {
            urls: vec!["redis://127.0.0.1:6379".into()],
            cluster: false,
            username: None,
            password: None,
            key_prefix: format!(
                "gamegate-test:{test}:{}:{}:",
                std::process::id(),
                rand::random::<u32>()
            ),
            command_timeout: Duration::from_secs(2),
        };
        let one = RedisStore::new(&settings).unwrap();
        let two = RedisStore::new(&settings).unwrap();
        for store in [&one, &two] {
            assert!(
                store.connect(Duration::from_secs(5)).await,
                "this test needs a Redis server on 127.0.0.1:6379 (redis-server --port 6379)"
            );
        }
        (one, two)
    }

    struct CountingSource {
        fetches: Arc<AtomicUsize>,
        secret: SecretString,
    }

    impl TokenSource for CountingSource {
        fn fetch(&self) -> BoxFuture<'_, Result<IssuedToken, GatewayError>> {
            Box::pin(async move {
                let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
                sleep(Duration::from_millis(50)).await;
                Ok(IssuedToken {
                    value: SecretString::from(format!("token-{n}")),
                    expires_in: Duration::from_secs(600),
                })
            })
        }

        fn timeout(&self) -> Duration {
            Duration::from_secs(2)
        }

        fn sealing_secret(&self) -> &SecretString {
            &self.secret
        }
    }

    #[tokio::test]
    async fn two_replicas_fetch_one_token_and_refresh_a_refused_one_once() {
        let (one, two) = replicas("tokens").await;
        let fetches = Arc::new(AtomicUsize::new(0));
        let scope = TokenScope {
            platform: Platform::QqMinigame,
            app_id: "1112345678".into(),
        };
        let tokens = |store: &RedisStore| {
            store.access_tokens(
                scope.clone(),
                Arc::new(CountingSource {
                    fetches: fetches.clone(),
                    secret: SecretString::from("the-app-secret-0123"),
                }),
            )
        };
        let (a, b) = (tokens(&one), tokens(&two));
        let (first_a, first_b) = tokio::join!(a.get(), b.get());
        let (first_a, first_b) = (first_a.unwrap(), first_b.unwrap());
        assert_eq!(fetches.load(Ordering::SeqCst), 1, "one fetch for both");
        assert_eq!(first_a.value.expose_secret(), first_b.value.expose_secret());

        // Both see the token refused: one more fetch, shared.
        a.invalidate(&first_a);
        b.invalidate(&first_b);
        let (second_a, second_b) = tokio::join!(a.get(), b.get());
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            2,
            "a refusal: one more fetch"
        );
        assert_eq!(
            second_a.unwrap().value.expose_secret(),
            second_b.unwrap().value.expose_secret()
        );
        assert_ne!(first_a.value.expose_secret(), "token-2");
    }

    #[tokio::test]
    async fn replicas_count_each_other_through_their_heartbeats() {
        let (one, two) = replicas("fleet").await;
        let until = |store: &RedisStore, replicas: usize| {
            let fleet = store.fleet();
            async move {
                // Up to 12 s: a first beat that finds Redis not yet connected
                // is followed by the next one HEARTBEAT_EVERY (5 s) later.
                for _ in 0..600 {
                    if fleet.load(Ordering::Relaxed) == replicas {
                        return true;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                false
            }
        };
        assert!(until(&one, 1).await, "alone at first");
        // The second one's first beat finds the first one's.
        assert!(until(&two, 2).await, "two replicas");
        assert_eq!(
            two.fleet().load(Ordering::Relaxed),
            2,
            "a second call of fleet() starts no second heartbeat"
        );
    }

    #[tokio::test]
    async fn idempotency_records_are_shared_by_replicas() {
        let (one, two) = replicas("idempotency").await;
        let window = Duration::from_secs(60);
        let lease = Duration::from_secs(30);
        let key = IdempotencyKey {
            key: "lobby/order-42".into(),
            fingerprint: [7; 32],
        };
        assert_eq!(one.claim(&key, window, lease).await, Claim::Owned);
        assert_eq!(two.claim(&key, window, lease).await, Claim::Running);
        let other = IdempotencyKey {
            fingerprint: [8; 32],
            ..key.clone()
        };
        assert_eq!(two.claim(&other, window, lease).await, Claim::OtherRequest);
        one.record(&key, b"the outcome".to_vec(), window).await;
        assert_eq!(
            two.claim(&key, window, lease).await,
            Claim::Done(b"the outcome".to_vec())
        );
        // A recorded outcome is never released.
        two.release(&key).await;
        assert_eq!(
            one.claim(&key, window, lease).await,
            Claim::Done(b"the outcome".to_vec())
        );
        // A running claim is, and a claim past its lease is abandoned.
        let fresh = IdempotencyKey {
            key: "lobby/order-43".into(),
            fingerprint: [9; 32],
        };
        assert_eq!(one.claim(&fresh, window, lease).await, Claim::Owned);
        one.release(&fresh).await;
        assert_eq!(two.claim(&fresh, window, lease).await, Claim::Owned);
        sleep(Duration::from_millis(20)).await;
        assert_eq!(
            one.claim(&fresh, window, Duration::from_millis(1)).await,
            Claim::Abandoned
        );
        // An empty outcome (an empty answer encodes to no bytes) is done,
        // not running.
        let empty = IdempotencyKey {
            key: "lobby/order-44".into(),
            fingerprint: [10; 32],
        };
        assert_eq!(one.claim(&empty, window, lease).await, Claim::Owned);
        one.record(&empty, Vec::new(), window).await;
        assert_eq!(
            two.claim(&empty, window, lease).await,
            Claim::Done(Vec::new())
        );
    }

    #[test]
    fn a_sealed_token_opens_only_with_its_apps_secret_and_its_key() {
        let scope = TokenScope {
            platform: Platform::QqMinigame,
            app_id: "1112345678".into(),
        };
        let seal = Seal::for_app(&scope, &SecretString::from("the-app-secret-0123"));
        let sealed = seal.seal("ACCESS-TOKEN-VALUE", "k1");
        assert!(!sealed.contains("ACCESS-TOKEN-VALUE"));
        assert_eq!(
            seal.open(&sealed, "k1").unwrap().expose_secret(),
            "ACCESS-TOKEN-VALUE"
        );
        assert!(seal.open(&sealed, "k2").is_none(), "bound to its key");
        let other = Seal::for_app(&scope, &SecretString::from("another-secret-0123"));
        assert!(other.open(&sealed, "k1").is_none(), "another secret");
        let other_app = Seal::for_app(
            &TokenScope {
                platform: Platform::QqMinigame,
                app_id: "2".into(),
            },
            &SecretString::from("the-app-secret-0123"),
        );
        assert!(other_app.open(&sealed, "k1").is_none(), "another app");
        assert!(seal.open("not base64 !", "k1").is_none());
    }

    #[test]
    fn a_sealed_session_key_opens_only_with_its_apps_secret_and_never_as_a_token() {
        let scope = TokenScope {
            platform: Platform::QqMinigame,
            app_id: "1110000000".into(),
        };
        let secret = SecretString::from("the-app-secret-0123");
        let sessions = Seal::for_sessions(&scope, &secret);
        let at = "p:{token:qq_minigame:1110000000}:session:alice";
        let sealed = sessions.seal("the-session-key", at);
        assert!(!sealed.contains("the-session-key"));
        assert_eq!(
            sessions.open(&sealed, at).unwrap().expose_secret(),
            "the-session-key"
        );
        assert!(sessions.open(&sealed, "p:other:key").is_none(), "moved");
        assert!(
            Seal::for_app(&scope, &secret).open(&sealed, at).is_none(),
            "the token seal is another key"
        );
        assert!(
            Seal::for_sessions(&scope, &SecretString::from("another-secret-0123"))
                .open(&sealed, at)
                .is_none()
        );
    }

    #[tokio::test]
    async fn replicas_share_session_keys_and_a_newer_login_replaces_one() {
        let (one, two) = replicas("sessions").await;
        let scope = TokenScope {
            platform: Platform::QqMinigame,
            app_id: "1110000000".into(),
        };
        let secret = SecretString::from("the-app-secret-0123");
        let day = Duration::from_secs(86_400);
        let a = one.session_keys(scope.clone(), &secret, day);
        let b = two.session_keys(scope.clone(), &secret, day);
        assert!(b.get("alice").await.is_none());
        a.put("alice", SecretString::from("key-1")).await;
        assert_eq!(b.get("alice").await.unwrap().expose_secret(), "key-1");
        b.put("alice", SecretString::from("key-2")).await;
        assert_eq!(a.get("alice").await.unwrap().expose_secret(), "key-2");
        assert!(a.get("bob").await.is_none());
        // Another secret (changed in the configuration): unreadable, not wrong.
        let changed = two.session_keys(scope, &SecretString::from("new-secret-0123456"), day);
        assert!(changed.get("alice").await.is_none());
    }

    #[tokio::test]
    async fn without_redis_a_replica_keeps_its_own_logins_keys_in_memory() {
        let settings = RedisSettings {
            urls: vec!["redis://127.0.0.1:1".into()],
            cluster: false,
            username: None,
            password: None,
            key_prefix: "gamegate-test:down:".into(),
            command_timeout: Duration::from_millis(200),
        };
        let store = RedisStore::new(&settings).unwrap();
        let keys = store.session_keys(
            TokenScope {
                platform: Platform::QqMinigame,
                app_id: "1110000000".into(),
            },
            &SecretString::from("the-app-secret-0123"),
            Duration::from_secs(60),
        );
        keys.put("alice", SecretString::from("key-1")).await;
        assert_eq!(keys.get("alice").await.unwrap().expose_secret(), "key-1");
        assert!(keys.get("bob").await.is_none());
    }
}
