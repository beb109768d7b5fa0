//! Typed configuration: listen address and listener limits, upstream platforms
//! (base URL, answer budget) and their apps' secrets, read once from a TOML file and the
//! environment (`GAMEGATE_` prefix, `__` between levels), validated before any
//! port is bound. Secrets are `SecretString`s: their Debug output is redacted.
//!
//! Of the environment, only the `GAMEGATE_*` variables whose first
//! `__`-separated part is a top-level key of [`Config`] are configuration
//! (`GAMEGATE_LISTEN`, `GAMEGATE_QQ_OPENAPI__APPS__1110766236__APPKEY`). The
//! others are ignored, with a debug line naming each (never its value):
//! Kubernetes gives every pod `GAMEGATE_SERVICE_HOST`, `GAMEGATE_PORT` and the
//! like for a Service named `gamegate`, and they must not stop it from
//! starting. A configuration key that does not parse is an error that names
//! its variable.

use std::{collections::BTreeMap, net::SocketAddr, path::Path, time::Duration};

use figment::{
    Figment, Metadata, Profile, Provider,
    providers::{Env, Format, Toml},
    value::{Dict, Map},
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
    /// What one call and all calls together may cost.
    #[serde(default)]
    pub limits: Limits,
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

/// Bounds on what callers can make gamegate hold.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// The largest request message of any RPC, in bytes. Each RPC accepts at
    /// most the largest message its declared limits allow, and never more
    /// than this.
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
    /// Calls gamegate holds at once, over all connections; beyond that it
    /// refuses with RESOURCE_EXHAUSTED (GATEWAY_OVERLOADED) and RetryInfo.
    #[serde(default = "default_max_calls_in_flight")]
    pub max_calls_in_flight: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_bytes: default_max_request_bytes(),
            max_calls_in_flight: default_max_calls_in_flight(),
        }
    }
}

fn default_max_request_bytes() -> usize {
    1024 * 1024
}
fn default_max_calls_in_flight() -> usize {
    4096
}
fn default_max_answer_bytes() -> usize {
    crate::upstream::DEFAULT_MAX_ANSWER_BYTES
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
    /// The largest answer body accepted from the platform, in bytes; a larger
    /// one is a malformed answer.
    #[serde(default = "default_max_answer_bytes")]
    pub max_answer_bytes: usize,
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
    /// The largest answer body accepted from the platform, in bytes; a larger
    /// one is a malformed answer.
    #[serde(default = "default_max_answer_bytes")]
    pub max_answer_bytes: usize,
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
    /// The largest answer body accepted from the platform, in bytes; a larger
    /// one is a malformed answer.
    #[serde(default = "default_max_answer_bytes")]
    pub max_answer_bytes: usize,
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

/// Whether a secret's value is the stand-in text of an example or template
/// ("set GAMEGATE_… instead", "changeme", "<secret>"): configured as it is, it
/// would authenticate callers with, or sign with, a text anyone can read.
fn is_placeholder(value: &str) -> bool {
    let lower = value.trim().to_ascii_lowercase();
    lower.contains("set gamegate_")
        || lower.contains(" instead")
        || lower.contains("changeme")
        || lower.contains("change-me")
        || (lower.starts_with('<') && lower.ends_with('>'))
}

/// A configured secret must be set, and not to a placeholder. The error names
/// the key and where to set it, never the value.
fn check_secret(key: &str, secret: &SecretString) -> Result<(), ConfigError> {
    let value = secret.expose_secret();
    if value.is_empty() {
        return Err(ConfigError::Invalid(format!("{key} is empty")));
    }
    if is_placeholder(value) {
        // Caller tokens are a list in the file: no environment variable names
        // one by its caller yet.
        let where_to = if key.starts_with("callers.") {
            "write the caller's real token in the file".to_string()
        } else {
            format!(
                "set it from the environment (GAMEGATE_{}) or write the real value in the file",
                key.to_ascii_uppercase().replace('.', "__")
            )
        };
        return Err(ConfigError::Invalid(format!(
            "{key} still holds the example's placeholder text, not a secret: {where_to}"
        )));
    }
    Ok(())
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
        report_ignored_environment();
        let config: Config = figment
            .merge(Environment::configuration())
            .extract()
            .map_err(|error| Box::new(without_values(error)))?;
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
        let check_range = |name: &str, value: usize, range: std::ops::RangeInclusive<usize>| {
            if !range.contains(&value) {
                return Err(ConfigError::Invalid(format!(
                    "{name} must be from {} to {}",
                    range.start(),
                    range.end()
                )));
            }
            Ok(())
        };
        check_range(
            "limits.max_request_bytes",
            self.limits.max_request_bytes,
            1024..=16 * 1024 * 1024,
        )?;
        check_range(
            "limits.max_calls_in_flight",
            self.limits.max_calls_in_flight,
            1..=1_000_000,
        )?;
        let answer_bytes = 1024..=64 * 1024 * 1024;
        for (name, max_answer_bytes) in [
            (
                "qq_minigame",
                self.qq_minigame.as_ref().map(|p| p.max_answer_bytes),
            ),
            (
                "qq_openapi",
                self.qq_openapi.as_ref().map(|p| p.max_answer_bytes),
            ),
            ("msdk", self.msdk.as_ref().map(|p| p.max_answer_bytes)),
        ] {
            if let Some(value) = max_answer_bytes {
                check_range(
                    &format!("{name}.max_answer_bytes"),
                    value,
                    answer_bytes.clone(),
                )?;
            }
        }
        if let Some(platform) = &self.qq_minigame {
            check_url("qq_minigame", &platform.base_url)?;
            check_budget("qq_minigame", platform.budget_ms)?;
            for (appid, app) in &platform.apps {
                check_secret(&format!("qq_minigame.apps.{appid}.secret"), &app.secret)?;
            }
        }
        if let Some(platform) = &self.qq_openapi {
            check_url("qq_openapi", &platform.base_url)?;
            check_budget("qq_openapi", platform.budget_ms)?;
            for (appid, app) in &platform.apps {
                check_secret(&format!("qq_openapi.apps.{appid}.appkey"), &app.appkey)?;
            }
        }
        if let Some(platform) = &self.msdk {
            check_url("msdk", &platform.base_url)?;
            check_budget("msdk", platform.budget_ms)?;
            for (appid, app) in &platform.apps {
                check_secret(&format!("msdk.apps.{appid}.msdkkey"), &app.msdkkey)?;
                if let Some(appkey) = &app.appkey {
                    check_secret(&format!("msdk.apps.{appid}.appkey"), appkey)?;
                }
                for (channel, secret) in &app.video_channels {
                    check_secret(
                        &format!("msdk.apps.{appid}.video_channels.{channel}"),
                        secret,
                    )?;
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
        self.validate_callers()?;
        for caller in &self.callers {
            check_secret(&format!("callers.{}.token", caller.name), &caller.token)?;
            if caller.token.expose_secret().len() < 16 {
                return Err(ConfigError::Invalid(format!(
                    "callers.{}.token must be at least 16 characters",
                    caller.name
                )));
            }
        }
        self.listener.validate(self.longest_budget_ms())?;
        Ok(())
    }

    /// Callers are told apart by name and by token, and use only apps that a
    /// platform section configures.
    fn validate_callers(&self) -> Result<(), ConfigError> {
        let configured: std::collections::BTreeSet<&str> = [
            self.qq_minigame
                .iter()
                .flat_map(|p| p.apps.keys())
                .collect::<Vec<_>>(),
            self.qq_openapi.iter().flat_map(|p| p.apps.keys()).collect(),
            self.msdk.iter().flat_map(|p| p.apps.keys()).collect(),
        ]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
        for (index, caller) in self.callers.iter().enumerate() {
            let earlier = &self.callers[..index];
            if earlier.iter().any(|other| other.name == caller.name) {
                return Err(ConfigError::Invalid(format!(
                    "callers: two callers are named {:?}; give each its own name",
                    caller.name
                )));
            }
            if let Some(other) = earlier
                .iter()
                .find(|other| other.token.expose_secret() == caller.token.expose_secret())
            {
                return Err(ConfigError::Invalid(format!(
                    "callers.{}.token is the token of callers.{} too; give each caller its own",
                    caller.name, other.name
                )));
            }
            if let Some(unknown) = caller
                .apps
                .iter()
                .find(|app| !configured.contains(app.as_str()))
            {
                return Err(ConfigError::Invalid(format!(
                    "callers.{}.apps names {unknown:?}, which no platform section configures; \
                     configure the app or remove it from the list",
                    caller.name
                )));
            }
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

/// The prefix of gamegate's environment variables.
pub const ENV_PREFIX: &str = "GAMEGATE_";
/// What separates the levels of a nested key in a variable's name.
const ENV_LEVEL_SEPARATOR: &str = "__";

/// The top-level keys of [`Config`], read from its `Deserialize` impl so that
/// they cannot drift from the struct.
fn top_level_keys() -> &'static [&'static str] {
    use serde::de::{self, Visitor};

    /// A deserializer that only records the field names serde asks a struct
    /// for, and then fails.
    struct FieldNames<'a>(&'a mut &'static [&'static str]);

    impl<'de> de::Deserializer<'de> for FieldNames<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("only a struct's field names are read"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("field names read"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
            enum identifier ignored_any
        }
    }

    static KEYS: std::sync::LazyLock<&'static [&'static str]> = std::sync::LazyLock::new(|| {
        let mut fields: &'static [&'static str] = &[];
        let _ = Config::deserialize(FieldNames(&mut fields));
        fields
    });
    *KEYS
}

/// Whether `key`, a variable's name without [`ENV_PREFIX`], is configuration.
fn is_configuration_key(key: &str) -> bool {
    let top = key
        .split(ENV_LEVEL_SEPARATOR)
        .next()
        .unwrap_or_default()
        .trim();
    top_level_keys()
        .iter()
        .any(|known| known.eq_ignore_ascii_case(top))
}

/// The name of a variable without [`ENV_PREFIX`], matched as figment matches
/// it (ASCII case ignored).
fn strip_env_prefix(name: &str) -> Option<&str> {
    let head = name.get(..ENV_PREFIX.len())?;
    head.eq_ignore_ascii_case(ENV_PREFIX)
        .then_some(&name[ENV_PREFIX.len()..])
}

/// One debug line per `GAMEGATE_*` variable that is neither configuration nor
/// one of telemetry's, naming the variable only: its value may be anything.
fn report_ignored_environment() {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let name = name.trim();
        let Some(key) = strip_env_prefix(name) else {
            continue;
        };
        let telemetry = crate::telemetry::VARIABLES
            .iter()
            .any(|variable| variable.eq_ignore_ascii_case(name));
        if !telemetry && !is_configuration_key(key) {
            tracing::debug!(
                variable = name,
                "ignoring an environment variable that is not gamegate configuration"
            );
        }
    }
}

/// `error` with every value it quotes left out: a key that does not parse may
/// be a secret (figment reads an all-digit appkey from the environment as a
/// number and would print it in "found unsigned int `…`"). The key and its
/// source stay, so that the error still says what to fix.
fn without_values(error: figment::Error) -> figment::Error {
    use figment::error::{Actual, Kind};
    let kind_of = |actual: &Actual| match actual {
        Actual::Bool(_) => "a boolean",
        Actual::Unsigned(_) | Actual::Signed(_) => "an integer",
        Actual::Float(_) => "a float",
        Actual::Char(_) | Actual::Str(_) => "a string",
        Actual::Bytes(_) => "bytes",
        Actual::Seq => "a sequence",
        Actual::Map => "a table",
        _ => "a value of another type",
    };
    let mut redacted: Option<figment::Error> = None;
    for mut one in error {
        one.kind = match one.kind {
            Kind::InvalidType(actual, expected) => {
                let hint = match actual {
                    Actual::Unsigned(_) | Actual::Signed(_) if expected.contains("string") => {
                        " (the environment's digits are read as a number: quote them, \"...\")"
                    }
                    _ => "",
                };
                Kind::Message(format!(
                    "invalid type: found {}, expected {expected}{hint}",
                    kind_of(&actual)
                ))
            }
            Kind::InvalidValue(actual, expected) => Kind::Message(format!(
                "invalid value: found {}, expected {expected}",
                kind_of(&actual)
            )),
            kind => kind,
        };
        redacted = Some(match redacted {
            None => one,
            Some(previous) => previous.chain(one),
        });
    }
    redacted.unwrap_or_else(|| figment::Error::from("configuration cannot be read".to_string()))
}

/// The configuration keys of the environment, as figment's `Env` reads them,
/// with errors that name the variable (figment's own `Env` would say
/// `for key "LISTEN"`, here it says `for key "GAMEGATE_LISTEN"`).
struct Environment(Env);

impl Environment {
    fn configuration() -> Environment {
        Environment(
            Env::prefixed(ENV_PREFIX)
                .filter(|key| is_configuration_key(key.as_str()))
                .split(ENV_LEVEL_SEPARATOR),
        )
    }
}

impl Provider for Environment {
    fn metadata(&self) -> Metadata {
        Metadata::named("the environment").interpolater(|_: &Profile, keys: &[&str]| {
            format!(
                "{ENV_PREFIX}{}",
                keys.join(ENV_LEVEL_SEPARATOR).to_ascii_uppercase()
            )
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        self.0.data()
    }
}

#[cfg(test)]
mod placeholder_tests {
    use super::*;

    fn with_callers(callers: &str) -> Result<Config, ConfigError> {
        let text = format!(
            "[msdk]\nbase_url = \"http://127.0.0.1:9\"\n[msdk.apps.100703379]\n\
             msdkkey = \"a-real-looking-msdk-key\"\n{callers}"
        );
        let figment = Figment::new().merge(Toml::string(&text));
        let config: Config = figment.extract().expect("the test config parses");
        config.validate().map(|()| config)
    }

    #[test]
    fn callers_are_distinct_and_use_configured_apps() {
        let caller = |name: &str, token: &str, apps: &str| {
            format!("[[callers]]\nname = \"{name}\"\ntoken = \"{token}\"\napps = [{apps}]\n")
        };
        let lobby = caller("lobby", "lobby-token-0123456789", "\"100703379\"");
        assert!(with_callers(&lobby).is_ok());
        let twice = format!("{lobby}{}", caller("lobby", "other-token-0123456789", ""));
        let error = with_callers(&twice).unwrap_err().to_string();
        assert!(error.contains("two callers are named \"lobby\""), "{error}");
        let same_token = format!("{lobby}{}", caller("match", "lobby-token-0123456789", ""));
        let error = with_callers(&same_token).unwrap_err().to_string();
        assert!(
            error.contains("callers.match.token is the token of callers.lobby"),
            "{error}"
        );
        assert!(
            !error.contains("lobby-token-0123456789"),
            "the token is quoted: {error}"
        );
        let unknown = caller("lobby", "lobby-token-0123456789", "\"100703379\", \"999\"");
        let error = with_callers(&unknown).unwrap_err().to_string();
        assert!(
            error.contains("callers.lobby.apps names \"999\""),
            "{error}"
        );
    }

    #[test]
    fn the_unmodified_example_configuration_is_refused_and_the_key_named() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/gamegate.example.toml");
        let error = Config::load(Some(&example)).expect_err("placeholders are not secrets");
        let text = error.to_string();
        // The first placeholder found is named, with its environment variable.
        assert!(
            text.contains("qq_minigame.apps.1112345678.secret"),
            "{text}"
        );
        assert!(
            text.contains("GAMEGATE_QQ_MINIGAME__APPS__1112345678__SECRET"),
            "{text}"
        );
        assert!(text.contains("placeholder"), "{text}");
    }

    #[test]
    fn placeholders_are_told_from_secrets() {
        for placeholder in [
            "set GAMEGATE_MSDK__APPS__100703379__MSDKKEY instead",
            "CHANGEME",
            "<your appkey>",
        ] {
            assert!(is_placeholder(placeholder), "{placeholder}");
            let error = check_secret("msdk.apps.1.msdkkey", &placeholder.into())
                .expect_err("refused")
                .to_string();
            assert!(error.contains("GAMEGATE_MSDK__APPS__1__MSDKKEY"), "{error}");
        }
        for secret in ["5f4dcc3b5aa765d61d8327deb882cf99", "0123456789", "a<b>"] {
            assert!(!is_placeholder(secret), "{secret}");
            assert!(check_secret("k", &secret.into()).is_ok());
        }
        let caller = check_secret("callers.lobby.token", &"set GAMEGATE_X instead".into())
            .expect_err("refused")
            .to_string();
        assert!(caller.contains("write the caller's real token"), "{caller}");
        assert_eq!(
            check_secret("k", &"".into()).unwrap_err().to_string(),
            "configuration is invalid: k is empty"
        );
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

#[cfg(test)]
mod environment_tests {
    use super::*;

    /// What Kubernetes sets in every pod of a namespace with a Service named
    /// `gamegate` (port 50051, named `grpc`).
    const KUBERNETES_SERVICE_VARIABLES: [(&str, &str); 8] = [
        ("GAMEGATE_SERVICE_HOST", "10.0.0.1"),
        ("GAMEGATE_SERVICE_PORT", "50051"),
        ("GAMEGATE_SERVICE_PORT_GRPC", "50051"),
        ("GAMEGATE_PORT", "tcp://10.0.0.1:50051"),
        ("GAMEGATE_PORT_50051_TCP", "tcp://10.0.0.1:50051"),
        ("GAMEGATE_PORT_50051_TCP_PROTO", "tcp"),
        ("GAMEGATE_PORT_50051_TCP_PORT", "50051"),
        ("GAMEGATE_PORT_50051_TCP_ADDR", "10.0.0.1"),
    ];

    #[test]
    fn the_top_level_keys_are_read_from_the_struct() {
        assert_eq!(
            top_level_keys(),
            [
                "listen",
                "shutdown_grace_ms",
                "limits",
                "listener",
                "callers",
                "qq_minigame",
                "qq_openapi",
                "msdk",
            ]
        );
    }

    #[test]
    fn only_configuration_keys_are_configuration() {
        for key in [
            "LISTEN",
            "listen",
            "MSDK__BASE_URL",
            "QQ_OPENAPI__APPS__1110766236__APPKEY",
        ] {
            assert!(is_configuration_key(key), "{key}");
        }
        for key in [
            "SERVICE_HOST",
            "PORT",
            "PORT_50051_TCP",
            "LOG",
            "LOG_FORMAT",
            "LISTEN_ADDR",
            "MSDK_SERVICE_HOST",
            "",
        ] {
            assert!(!is_configuration_key(key), "{key}");
        }
        assert_eq!(strip_env_prefix("gamegate_listen"), Some("listen"));
        assert_eq!(strip_env_prefix("GAME"), None);
        assert_eq!(strip_env_prefix("GAMEGATE\u{e9}x"), None);
    }

    #[test]
    // figment's Jail fixes the closure's error type.
    #[allow(clippy::result_large_err)]
    fn kubernetes_service_variables_are_ignored_and_nested_keys_still_read() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "gamegate.toml",
                "[qq_openapi]\nbase_url = \"https://openapi.minigame.qq.com\"\n",
            )?;
            for (name, value) in KUBERNETES_SERVICE_VARIABLES {
                jail.set_env(name, value);
            }
            jail.set_env("GAMEGATE_LOG_FORMAT", "json");
            jail.set_env("GAMEGATE_LISTEN", "127.0.0.1:6000");
            jail.set_env(
                "GAMEGATE_QQ_OPENAPI__APPS__1110766236__APPKEY",
                "from-the-env",
            );
            let config = Config::load(Some(Path::new("gamegate.toml")))
                .map_err(|e| figment::Error::from(e.to_string()))?;
            assert_eq!(config.listen, SocketAddr::from(([127, 0, 0, 1], 6000)));
            assert_eq!(
                config.qq_openapi.expect("qq_openapi configured").apps["1110766236"]
                    .appkey
                    .expose_secret(),
                "from-the-env"
            );
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn a_configuration_variable_that_does_not_parse_is_named() {
        figment::Jail::expect_with(|jail| {
            for (name, value) in KUBERNETES_SERVICE_VARIABLES {
                jail.set_env(name, value);
            }
            jail.set_env("GAMEGATE_LISTEN", "not-an-address");
            let error = Config::load(None)
                .expect_err("a bad listen address")
                .to_string();
            assert!(error.contains("GAMEGATE_LISTEN"), "{error}");

            jail.set_env("GAMEGATE_LISTEN", "127.0.0.1:6000");
            jail.set_env("GAMEGATE_MSDK__BASE_URL", "http://127.0.0.1:9");
            jail.set_env("GAMEGATE_MSDK__BUDGET_MS", "soon");
            let error = Config::load(None).expect_err("a bad budget").to_string();
            assert!(error.contains("GAMEGATE_MSDK__BUDGET_MS"), "{error}");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn a_secret_that_does_not_parse_is_named_but_never_quoted() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("GAMEGATE_QQ_OPENAPI__BASE_URL", "http://127.0.0.1:9");
            jail.set_env(
                "GAMEGATE_QQ_OPENAPI__APPS__1110766236__APPKEY",
                "90817263545",
            );
            let error = Config::load(None)
                .expect_err("digits are read as a number")
                .to_string();
            assert!(
                error.contains("GAMEGATE_QQ_OPENAPI__APPS__1110766236__APPKEY"),
                "{error}"
            );
            assert!(
                !error.contains("90817263545"),
                "the secret is quoted: {error}"
            );
            jail.set_env(
                "GAMEGATE_QQ_OPENAPI__APPS__1110766236__APPKEY",
                "\"90817263545\"",
            );
            let config = Config::load(None).map_err(|e| figment::Error::from(e.to_string()))?;
            let apps = &config.qq_openapi.expect("configured").apps;
            assert_eq!(apps["1110766236"].appkey.expose_secret(), "90817263545");
            Ok(())
        });
    }
}
