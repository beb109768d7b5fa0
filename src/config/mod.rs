//! Typed configuration: listen address and listener limits, upstream platforms
//! (base URL, answer budget) and their apps' secrets, read once from a TOML file and the
//! environment (`GAMEGATE_` prefix, `__` between levels), validated before any
//! port is bound. Secrets are `SecretString`s: their Debug output is redacted.

use std::{collections::BTreeMap, net::SocketAddr, path::Path, time::Duration};

use figment::{
    Figment,
    providers::{Env, Format, Toml},
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use thiserror::Error;

#[cfg(feature = "sandbox")]
mod demo;
mod listener;

pub use self::listener::ListenerLimits;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("configuration cannot be read: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("configuration is invalid: {0}")]
    Invalid(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The gRPC listen address.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// How long in-flight calls may take to finish after SIGTERM/SIGINT.
    #[serde(default = "default_shutdown_grace_ms")]
    pub shutdown_grace_ms: u64,
    /// Calls served at once on one client connection; beyond that gamegate sheds
    /// load with UNAVAILABLE rather than queueing without bound.
    /// (h2 refuses streams past `listener.max_concurrent_streams` before they
    /// are calls, so a value above that one never sheds.)
    #[serde(default = "default_max_concurrent_calls_per_connection")]
    pub max_concurrent_calls_per_connection: usize,
    /// What clients may hold of the listener: connections, streams, time.
    #[serde(default)]
    pub listener: ListenerLimits,
    /// The game servers allowed to call gamegate. Empty: every caller may use
    /// every app (the demo default; a warning is logged at start).
    #[serde(default)]
    pub callers: Vec<Caller>,
    /// QQ mini-game server API.
    #[serde(default)]
    pub qq_minigame: Option<MiniGamePlatform>,
    /// QQ Game OpenAPI v3.
    #[serde(default)]
    pub qq_openapi: Option<OpenApiPlatform>,
    /// MSDK backend.
    #[serde(default)]
    pub msdk: Option<MsdkPlatform>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MsdkPlatform {
    /// `http://msdk.qq.com` (or `https://ssl.msdk.qq.com`) in production,
    /// `http://msdktest.qq.com` for tests.
    pub base_url: String,
    /// The platform answers within 3100 ms.
    #[serde(default = "default_msdk_budget_ms")]
    pub budget_ms: u64,
    /// appid (Mobile QQ, WeChat, or a guest `G_` appid) -> app.
    #[serde(default)]
    pub apps: BTreeMap<String, MsdkApp>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MsdkApp {
    /// The msdkkey: `sig = md5(msdkkey + timestamp)` with `encode=2`.
    pub msdkkey: SecretString,
    /// The appkey, needed only with `encode = 1` (discouraged by the platform).
    #[serde(default)]
    pub appkey: Option<SecretString>,
    /// 2 (msdkkey, the default) or 1 (appkey).
    #[serde(default = "default_msdk_encode")]
    pub encode: u8,
    /// Encrypt bodies both ways with msdktea.
    #[serde(default)]
    pub encrypt: bool,
    /// Tencent Video channels: channel_id -> channel_secret, for the body
    /// signature of the video VIP interfaces (callers never hold the secret).
    #[serde(default)]
    pub video_channels: BTreeMap<String, SecretString>,
}

/// A game server allowed to call gamegate, and the apps it may use.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Caller {
    /// A name for logs.
    pub name: String,
    /// The bearer token the caller sends as `authorization: Bearer <token>`.
    pub token: SecretString,
    /// The app ids it may use; empty means every configured app.
    #[serde(default)]
    pub apps: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MiniGamePlatform {
    /// `https://api.q.qq.com` in production.
    pub base_url: String,
    /// The longest a call may take, caller's deadline permitting.
    #[serde(default = "default_minigame_budget_ms")]
    pub budget_ms: u64,
    /// appid -> app.
    #[serde(default)]
    pub apps: BTreeMap<String, MiniGameApp>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MiniGameApp {
    /// The app secret (`getToken`'s `secret`).
    pub secret: SecretString,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenApiPlatform {
    /// `https://openapi.minigame.qq.com` in production.
    pub base_url: String,
    /// The platform answers within 3 s.
    #[serde(default = "default_openapi_budget_ms")]
    pub budget_ms: u64,
    /// appid -> app.
    #[serde(default)]
    pub apps: BTreeMap<String, OpenApiApp>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenApiApp {
    /// The appkey that signs requests.
    pub appkey: SecretString,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 50051))
}
fn default_shutdown_grace_ms() -> u64 {
    10_000
}
fn default_max_concurrent_calls_per_connection() -> usize {
    4096
}
fn default_minigame_budget_ms() -> u64 {
    5_000
}
fn default_openapi_budget_ms() -> u64 {
    3_000
}
fn default_msdk_budget_ms() -> u64 {
    3_100
}
fn default_msdk_encode() -> u8 {
    2
}

impl Config {
    /// Reads `path` (if given) and then the environment, which wins.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = path {
            if !path.exists() {
                return Err(ConfigError::Invalid(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file(path));
        }
        let config: Config = figment
            // GAMEGATE_LOG is the log filter, read by main, not configuration.
            .merge(Env::prefixed("GAMEGATE_").ignore(&["LOG"]).split("__"))
            .extract()
            .map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let check_url = |name: &str, url: &str| {
            crate::upstream::BaseUrl::parse(url)
                .map(drop)
                .map_err(|e| ConfigError::Invalid(format!("{name}.{e}")))
        };
        let check_budget = |name: &str, ms: u64| {
            if ms == 0 || ms > 60_000 {
                return Err(ConfigError::Invalid(format!(
                    "{name}.budget_ms must be from 1 to 60000"
                )));
            }
            Ok(())
        };
        if let Some(platform) = &self.qq_minigame {
            check_url("qq_minigame", &platform.base_url)?;
            check_budget("qq_minigame", platform.budget_ms)?;
            for (appid, app) in &platform.apps {
                if app.secret.expose_secret().is_empty() {
                    return Err(ConfigError::Invalid(format!(
                        "qq_minigame.apps.{appid}.secret is empty"
                    )));
                }
            }
        }
        if let Some(platform) = &self.qq_openapi {
            check_url("qq_openapi", &platform.base_url)?;
            check_budget("qq_openapi", platform.budget_ms)?;
            for (appid, app) in &platform.apps {
                if app.appkey.expose_secret().is_empty() {
                    return Err(ConfigError::Invalid(format!(
                        "qq_openapi.apps.{appid}.appkey is empty"
                    )));
                }
            }
        }
        if let Some(platform) = &self.msdk {
            check_url("msdk", &platform.base_url)?;
            check_budget("msdk", platform.budget_ms)?;
            for (appid, app) in &platform.apps {
                if app.msdkkey.expose_secret().is_empty() {
                    return Err(ConfigError::Invalid(format!(
                        "msdk.apps.{appid}.msdkkey is empty"
                    )));
                }
                for channel in app.video_channels.keys() {
                    if channel.parse::<i64>().is_err() {
                        return Err(ConfigError::Invalid(format!(
                            "msdk.apps.{appid}.video_channels: {channel:?} is not a channel id"
                        )));
                    }
                }
                match (app.encode, &app.appkey) {
                    (2, _) => {}
                    (1, Some(appkey)) if !appkey.expose_secret().is_empty() => {}
                    (1, _) => {
                        return Err(ConfigError::Invalid(format!(
                            "msdk.apps.{appid}: encode = 1 needs an appkey"
                        )));
                    }
                    (other, _) => {
                        return Err(ConfigError::Invalid(format!(
                            "msdk.apps.{appid}.encode is {other}; it must be 1 or 2"
                        )));
                    }
                }
            }
        }
        for caller in &self.callers {
            if caller.token.expose_secret().len() < 16 {
                return Err(ConfigError::Invalid(format!(
                    "callers.{}.token must be at least 16 characters",
                    caller.name
                )));
            }
        }
        self.listener.validate(self.longest_budget_ms())?;
        if self.max_concurrent_calls_per_connection == 0 {
            return Err(ConfigError::Invalid(
                "max_concurrent_calls_per_connection must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// The longest budget of the configured platforms (0 with none).
    fn longest_budget_ms(&self) -> u64 {
        [
            self.qq_minigame.as_ref().map(|p| p.budget_ms),
            self.qq_openapi.as_ref().map(|p| p.budget_ms),
            self.msdk.as_ref().map(|p| p.budget_ms),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(0)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // figment's Jail fixes the closure's error type.
    #[allow(clippy::result_large_err)]
    fn secrets_come_from_the_environment_and_the_log_filter_is_not_configuration() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "gamegate.toml",
                "[qq_openapi]\nbase_url = \"https://openapi.minigame.qq.com\"\n",
            )?;
            jail.set_env("GAMEGATE_LOG", "debug");
            jail.set_env(
                "GAMEGATE_QQ_OPENAPI__APPS__1110766236__APPKEY",
                "from-the-env",
            );
            let config = Config::load(Some(Path::new("gamegate.toml")))
                .map_err(|e| figment::Error::from(e.to_string()))?;
            let platform = config.qq_openapi.expect("qq_openapi configured");
            assert_eq!(
                platform.apps["1110766236"].appkey.expose_secret(),
                "from-the-env"
            );
            assert!(
                !format!("{platform:?}").contains("from-the-env"),
                "Debug redacts"
            );
            Ok(())
        });
    }
}
