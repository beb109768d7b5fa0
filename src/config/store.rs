//! The `[store]` section: where gamegate keeps what its replicas share (app
//! access tokens, idempotency records). Absent, each process keeps its own in
//! memory: right for one instance, wrong for a fleet, where every replica
//! would fetch (and so invalidate) its own access token.

use std::{path::PathBuf, time::Duration};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{ConfigError, secrets};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// A standalone Redis: `redis://host:6379/0`, or `rediss://` for TLS.
    /// No password in the URL: `password` (or its file, or
    /// `GAMEGATE_STORE__PASSWORD`) holds it.
    #[serde(default)]
    pub redis_url: Option<String>,
    /// A Redis Cluster: the URLs of some of its nodes (the client finds the
    /// rest). Either this or `redis_url`.
    #[serde(default)]
    pub redis_cluster_urls: Vec<String>,
    /// The ACL user, if not `default`.
    #[serde(default)]
    pub username: Option<String>,
    /// The password (`requirepass` or the ACL user's).
    #[serde(default = "super::unset_secret")]
    pub password: SecretString,
    /// A file holding the password instead (a Kubernetes Secret volume).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Every key gamegate writes starts with this: the Redis may be shared
    /// with other programs, and nothing but gamegate's state is touched.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
    /// How long one Redis command may take before the store treats Redis as
    /// unreachable (and serves from this process alone until it is back).
    #[serde(default = "default_command_timeout_ms")]
    pub command_timeout_ms: u64,
    /// How long a write's outcome is kept for its idempotency key.
    #[serde(default = "default_idempotency_window_ms")]
    pub idempotency_window_ms: u64,
}

fn default_key_prefix() -> String {
    "gamegate:".to_string()
}
/// Generous: a command only runs when a token must be read or refreshed
/// (never per call), and a Redis slow under load is better waited for than
/// left for a fetch of each replica's own.
fn default_command_timeout_ms() -> u64 {
    1_000
}
fn default_idempotency_window_ms() -> u64 {
    24 * 3_600_000
}

impl StoreConfig {
    pub fn command_timeout(&self) -> Duration {
        Duration::from_millis(self.command_timeout_ms)
    }

    pub fn idempotency_window(&self) -> Duration {
        Duration::from_millis(self.idempotency_window_ms)
    }

    /// The Redis URLs: one for a standalone server, several for a cluster.
    pub fn urls(&self) -> Vec<&str> {
        match &self.redis_url {
            Some(url) => vec![url.as_str()],
            None => self.redis_cluster_urls.iter().map(String::as_str).collect(),
        }
    }

    pub fn is_cluster(&self) -> bool {
        self.redis_url.is_none()
    }

    /// The password, when one is set.
    pub fn password(&self) -> Option<&str> {
        Some(self.password.expose_secret()).filter(|p| !p.is_empty())
    }

    pub(super) fn read_secret_files(&mut self) -> Result<(), ConfigError> {
        secrets::fill_from_file(
            "store.password",
            &mut self.password,
            self.password_file.as_deref(),
        )
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        match (&self.redis_url, self.redis_cluster_urls.is_empty()) {
            (Some(_), false) => {
                return Err(ConfigError::invalid(
                    "store.redis_cluster_urls",
                    "is set, and so is store.redis_url: a standalone Redis or a cluster, keep one",
                ));
            }
            (None, true) => {
                return Err(ConfigError::invalid(
                    "store",
                    "names no Redis: set redis_url (standalone) or redis_cluster_urls (a \
                     cluster), or remove [store] to keep the state in memory (one instance only)",
                ));
            }
            _ => {}
        }
        for (index, url) in self.urls().into_iter().enumerate() {
            let key = if self.is_cluster() {
                format!("store.redis_cluster_urls.{index}")
            } else {
                "store.redis_url".to_string()
            };
            let info = redis::IntoConnectionInfo::into_connection_info(url).map_err(|_| {
                ConfigError::invalid(
                    &key,
                    "is not a Redis URL: write redis://host:port or rediss://host:port (TLS)",
                )
            })?;
            if info.redis_settings().password().is_some() {
                return Err(ConfigError::invalid(
                    &key,
                    "holds a password: keep it out of the URL (the URL is logged when Redis \
                     cannot be reached) and set store.password, password_file or \
                     GAMEGATE_STORE__PASSWORD",
                ));
            }
        }
        // Checked after password_file was read: a placeholder in the file is
        // refused too.
        if secrets::is_placeholder(self.password.expose_secret()) {
            return Err(ConfigError::invalid(
                "store.password",
                "still holds the example's placeholder text: set it, or store.password_file, or \
                 GAMEGATE_STORE__PASSWORD",
            ));
        }
        if self.key_prefix.is_empty() || self.key_prefix.len() > 64 {
            return Err(ConfigError::invalid(
                "store.key_prefix",
                "must have 1 to 64 characters (every key gamegate writes starts with it)",
            ));
        }
        if !(10..=10_000).contains(&self.command_timeout_ms) {
            return Err(ConfigError::invalid(
                "store.command_timeout_ms",
                format!(
                    "is {}; it must be from 10 to 10000",
                    self.command_timeout_ms
                ),
            ));
        }
        if !(1_000..=30 * 24 * 3_600_000).contains(&self.idempotency_window_ms) {
            return Err(ConfigError::invalid(
                "store.idempotency_window_ms",
                format!(
                    "is {}; it must be from 1000 (a second) to 2592000000 (30 days)",
                    self.idempotency_window_ms
                ),
            ));
        }
        Ok(())
    }
}
