//! Typed configuration: listen address and listener limits, TLS, callers,
//! upstream platforms (base URL, answer budget) and their apps' secrets, read
//! from a TOML file and the environment (`GAMEGATE_` prefix, `__` between
//! levels; the environment wins), with every secret also readable from a file
//! of its own (`secrets`), and validated before any port is bound. Secrets are
//! `SecretString`s: their Debug output is redacted, and no error quotes one.
//! Every error says where its key was set: the file's line and column, or the
//! exact variable (`source`).
//!
//! Of the environment, only the `GAMEGATE_*` variables whose first
//! `__`-separated part is a top-level key of [`Config`] are configuration
//! (`GAMEGATE_LISTEN`, `GAMEGATE_QQ_OPENAPI__APPS__1110766236__APPKEY`). The
//! others are ignored, with a debug line naming each (never its value):
//! Kubernetes gives every pod `GAMEGATE_SERVICE_HOST`, `GAMEGATE_PORT` and the
//! like for a Service named `gamegate`, and they must not stop it from
//! starting. A configuration key that does not parse is an error that names
//! its variable.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use figment::{
    Figment,
    providers::{Format, Toml},
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use thiserror::Error;

use self::secrets::{MIN_CHANNEL_SECRET_LEN, MIN_SECRET_LEN, check_secret};

#[cfg(feature = "sandbox")]
mod demo;
mod listener;
mod protection;
mod secrets;
mod source;
mod store;
mod tls;
mod upstream;

pub use self::{
    listener::ListenerLimits,
    protection::{CircuitConfig, RateLimitsConfig, RateSpec},
    store::StoreConfig,
    tls::TlsConfig,
    upstream::UpstreamSettings,
};

#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file or a variable does not parse into the configuration's types;
    /// every line names where (file, line and column, or the variable).
    #[error("configuration cannot be read: {0}")]
    Load(String),
    /// A key holds a value gamegate refuses.
    #[error("configuration is invalid: {}", describe_invalid(.at.as_deref(), .key, .problem))]
    Invalid {
        /// The key, dotted (`qq_openapi.budget_ms`; a caller by its name).
        key: String,
        /// What is wrong and what to do, never the value of a secret.
        problem: String,
        /// Where the key was set: `gamegate.toml:12:1` or the environment
        /// variable; `None` for a default.
        at: Option<String>,
    },
}

impl ConfigError {
    /// `key` (dotted) `problem`: "qq_openapi.budget_ms" "must be from 1 to 60000".
    pub fn invalid(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            key: key.into(),
            problem: problem.into(),
            at: None,
        }
    }

    /// The key this error is about, if it is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            ConfigError::Load(_) => None,
        }
    }

    /// The same error, saying where its key was set.
    fn located(self, sources: &source::Sources) -> ConfigError {
        match self {
            ConfigError::Invalid {
                key,
                problem,
                at: None,
            } => ConfigError::Invalid {
                at: sources.locate(&key),
                key,
                problem,
            },
            other => other,
        }
    }
}

fn describe_invalid(at: Option<&str>, key: &str, problem: &str) -> String {
    match at {
        Some(at) => format!("{at}: {key} {problem}"),
        None => format!("{key} {problem}"),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The gRPC listen address.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The admin HTTP listener (`/metrics`, `/ready`, `/live`); off without
    /// it. Keep it on loopback or the pod network, never public.
    #[serde(default)]
    pub admin_listen: Option<SocketAddr>,
    /// After SIGTERM/SIGINT, how long gamegate keeps accepting and serving
    /// while health says NOT_SERVING, so that probes and load balancers move
    /// away before the listener closes.
    #[serde(default = "default_drain_delay_ms")]
    pub drain_delay_ms: u64,
    /// Then, with the listener closed, how long in-flight calls may take to
    /// finish; the ones still running are cut.
    #[serde(default = "default_shutdown_grace_ms")]
    pub shutdown_grace_ms: u64,
    /// `json` (one object a line) or `text`; the default is JSON unless
    /// stdout is a terminal. `GAMEGATE_LOG_FORMAT` overrides it.
    #[serde(default)]
    pub log_format: Option<crate::telemetry::LogFormat>,
    /// Whether the access line of a call names the user's openid (off: an
    /// openid is personal data, and most logs need only the app).
    #[serde(default)]
    pub log_openid: bool,
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
    /// TLS on the listener (and mTLS with a client CA); plaintext without it.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Where replicas share state (Redis); in this process's memory without it.
    #[serde(default)]
    pub store: Option<StoreConfig>,
    /// Traces: where spans are exported (nowhere by default).
    #[serde(default)]
    pub telemetry: TelemetryConfig,
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
    /// How the platform is reached (`[<platform>.upstream]`): proxy, CA,
    /// client certificate, connection cap, idle timeout.
    #[serde(default)]
    pub upstream: UpstreamSettings,
    /// Token buckets towards the platform (`[<platform>.rate_limits]`).
    #[serde(default)]
    pub rate_limits: RateLimitsConfig,
    /// Failing fast while the platform fails (`[<platform>.circuit]`).
    #[serde(default)]
    pub circuit: CircuitConfig,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MsdkApp {
    /// The msdkkey: `sig = md5(msdkkey + timestamp)` with `encode=2`.
    #[serde(default = "unset_secret")]
    pub msdkkey: SecretString,
    /// A file holding the msdkkey instead (a Kubernetes Secret volume).
    #[serde(default)]
    pub msdkkey_file: Option<PathBuf>,
    /// The appkey, needed only with `encode = 1` (discouraged by the platform).
    #[serde(default)]
    pub appkey: Option<SecretString>,
    /// A file holding the appkey instead.
    #[serde(default)]
    pub appkey_file: Option<PathBuf>,
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
    /// channel_id -> a file holding that channel's secret instead.
    #[serde(default)]
    pub video_channel_files: BTreeMap<String, PathBuf>,
}

/// A game server allowed to call gamegate, and the apps it may use. It
/// authenticates with a bearer token, or over mTLS with a client certificate
/// naming it, or either.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Caller {
    /// A name for logs; `GAMEGATE_CALLERS__<NAME>__TOKEN` (the name in
    /// capitals, `-` and `.` as `_`) sets its token from the environment.
    pub name: String,
    /// The bearer token the caller sends as `authorization: Bearer <token>`.
    #[serde(default = "unset_secret")]
    pub token: SecretString,
    /// A file holding the token instead (a Kubernetes Secret volume).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// A DNS or URI subject alternative name of the client certificate that
    /// identifies this caller over mTLS (`lobby.game.internal`,
    /// `spiffe://cluster/ns/game/sa/lobby`).
    #[serde(default)]
    pub certificate_san: Option<String>,
    /// The app ids it may use; `["*"]` is every configured app.
    pub apps: Vec<String>,
    /// Whether MiniGameLoginService.Code2Session answers this caller with
    /// the user's session_key (off: gamegate keeps it, and storage calls
    /// without a session_key use it).
    #[serde(default)]
    pub receive_session_keys: bool,
}

impl Caller {
    /// Whether the caller may use every configured app (`apps = ["*"]`).
    pub fn all_apps(&self) -> bool {
        self.apps.iter().any(|app| app == ALL_APPS)
    }
}

/// The `apps` entry that stands for every configured app.
pub const ALL_APPS: &str = "*";

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
    /// How the platform is reached (`[<platform>.upstream]`): proxy, CA,
    /// client certificate, connection cap, idle timeout.
    #[serde(default)]
    pub upstream: UpstreamSettings,
    /// Token buckets towards the platform (`[<platform>.rate_limits]`).
    #[serde(default)]
    pub rate_limits: RateLimitsConfig,
    /// Failing fast while the platform fails (`[<platform>.circuit]`).
    #[serde(default)]
    pub circuit: CircuitConfig,
    /// How long gamegate keeps a user's session key from a login through
    /// Code2Session (a newer login replaces it sooner). Default 7 days.
    #[serde(default = "default_session_max_age_secs")]
    pub session_max_age_secs: u64,
    /// Without `[[callers]]` only: whether Code2Session answers with the
    /// session_key. With callers, each caller's `receive_session_keys` decides.
    #[serde(default)]
    pub return_session_keys: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MiniGameApp {
    /// The app secret (`getToken`'s `secret`).
    #[serde(default = "unset_secret")]
    pub secret: SecretString,
    /// A file holding the secret instead (a Kubernetes Secret volume).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
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
    /// How the platform is reached (`[<platform>.upstream]`): proxy, CA,
    /// client certificate, connection cap, idle timeout.
    #[serde(default)]
    pub upstream: UpstreamSettings,
    /// Token buckets towards the platform (`[<platform>.rate_limits]`).
    #[serde(default)]
    pub rate_limits: RateLimitsConfig,
    /// Failing fast while the platform fails (`[<platform>.circuit]`).
    #[serde(default)]
    pub circuit: CircuitConfig,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenApiApp {
    /// The appkey that signs requests.
    #[serde(default = "unset_secret")]
    pub appkey: SecretString,
    /// A file holding the appkey instead (a Kubernetes Secret volume).
    #[serde(default)]
    pub appkey_file: Option<PathBuf>,
}

/// `[telemetry]`: where the spans of calls go. Without `otlp_endpoint`
/// nothing is exported; every call still has a trace id (its log lines and
/// error statuses carry it).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// An OpenTelemetry collector's OTLP/gRPC endpoint, `http://host:4317` or
    /// `https://host:4317`: spans are sent to it in batches.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
    /// The `service.name` of the exported spans.
    #[serde(default = "default_service_name")]
    pub service_name: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            otlp_endpoint: None,
            service_name: default_service_name(),
        }
    }
}

fn default_service_name() -> String {
    "gamegate".to_string()
}

impl TelemetryConfig {
    /// `otlp_endpoint` is an `http(s)://host[:port]` URL (a gRPC endpoint has
    /// no path, and a password in it would be logged); `service_name` is set.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(endpoint) = &self.otlp_endpoint {
            let problem = "is not an OTLP/gRPC endpoint: write http://host:port or \
                           https://host:port (no path, query or user)";
            let uri: http::Uri = endpoint
                .parse()
                .map_err(|_| ConfigError::invalid("telemetry.otlp_endpoint", problem))?;
            let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
            let host_ok = uri.authority().is_some_and(|authority| {
                !authority.host().is_empty() && !authority.as_str().contains('@')
            });
            let no_path = matches!(uri.path(), "" | "/") && uri.query().is_none();
            if !(scheme_ok && host_ok && no_path) {
                return Err(ConfigError::invalid("telemetry.otlp_endpoint", problem));
            }
        }
        if self.service_name.trim().is_empty() || self.service_name.len() > 255 {
            return Err(ConfigError::invalid(
                "telemetry.service_name",
                "must have 1 to 255 characters",
            ));
        }
        Ok(())
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 50051))
}
fn default_shutdown_grace_ms() -> u64 {
    10_000
}
fn default_drain_delay_ms() -> u64 {
    5_000
}
/// A secret not written in the file: empty until a `*_file` or the
/// environment sets it, and refused if nothing does.
fn unset_secret() -> SecretString {
    SecretString::from(String::new())
}
pub(crate) fn default_session_max_age_secs() -> u64 {
    7 * 24 * 3600
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

/// What every platform section has, whatever the platform.
struct PlatformSection<'a> {
    base_url: &'a str,
    budget_ms: u64,
    max_answer_bytes: usize,
    upstream: &'a UpstreamSettings,
    rate_limits: &'a RateLimitsConfig,
    circuit: &'a CircuitConfig,
}

macro_rules! platform_section {
    ($section:expr) => {
        $section.as_ref().map(|p| PlatformSection {
            base_url: &p.base_url,
            budget_ms: p.budget_ms,
            max_answer_bytes: p.max_answer_bytes,
            upstream: &p.upstream,
            rate_limits: &p.rate_limits,
            circuit: &p.circuit,
        })
    };
}

impl Config {
    /// Each platform's section by its key, `None` when it is not configured.
    fn platform_sections(&self) -> [(&'static str, Option<PlatformSection<'_>>); 3] {
        [
            ("qq_minigame", platform_section!(self.qq_minigame)),
            ("qq_openapi", platform_section!(self.qq_openapi)),
            ("msdk", platform_section!(self.msdk)),
        ]
    }

    /// Reads `path` (if given) and then the environment, which wins; reads
    /// the secrets that name files; validates. Every error says where the
    /// key it is about was set.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = path {
            if !path.exists() {
                return Err(ConfigError::Load(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file(path));
        }
        report_ignored_environment();
        let sources = source::Sources::new(path);
        let mut config: Config = figment
            .merge(source::Environment::configuration(&sources))
            .extract()
            .map_err(|error| ConfigError::Load(sources.describe(error)))?;
        let located = |error: ConfigError| error.located(&sources);
        secrets::apply_caller_environment(&mut config.callers, std::env::vars())
            .map_err(located)?;
        secrets::read_secret_files(&mut config).map_err(located)?;
        config.validate().map_err(located)?;
        Ok(config)
    }

    /// The `log_format` a configuration file asks for, read before the rest
    /// (logging starts before the configuration is loaded, so that what
    /// loading it says is logged). A file that does not parse asks for
    /// nothing here; loading it reports why.
    pub fn log_format_of(path: &Path) -> Option<crate::telemetry::LogFormat> {
        let text = std::fs::read_to_string(path).ok()?;
        let document = toml_edit::ImDocument::parse(text).ok()?;
        document.get("log_format")?.as_str()?.parse().ok()
    }

    /// The `[telemetry]` section of `path` (if given) and the environment,
    /// read before the rest (tracing is part of the log subscriber, which is
    /// installed before the configuration is loaded). A section that does
    /// not parse or validate reads as the default (nothing exported) here;
    /// loading the configuration reports why.
    pub fn telemetry_of(path: Option<&Path>) -> TelemetryConfig {
        let mut figment = Figment::new();
        if let Some(path) = path {
            figment = figment.merge(Toml::file(path));
        }
        let sources = source::Sources::new(path);
        figment
            .merge(source::Environment::configuration(&sources))
            .extract_inner::<TelemetryConfig>("telemetry")
            .ok()
            .filter(|telemetry| telemetry.validate().is_ok())
            .unwrap_or_default()
    }

    /// Every rule a configuration must keep before a port is bound, checked
    /// on the configuration as read (its secret files read too).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check_url = |name: &str, url: &str| {
            crate::upstream::BaseUrl::parse(url)
                .map(drop)
                .map_err(|e| ConfigError::invalid(format!("{name}.base_url"), e.to_string()))
        };
        let check_range = |key: &str, value: u64, range: std::ops::RangeInclusive<u64>| {
            if !range.contains(&value) {
                return Err(ConfigError::invalid(
                    key,
                    format!(
                        "is {value}; it must be from {} to {}",
                        range.start(),
                        range.end()
                    ),
                ));
            }
            Ok(())
        };
        check_range(
            "limits.max_request_bytes",
            self.limits.max_request_bytes as u64,
            1024..=16 * 1024 * 1024,
        )?;
        check_range(
            "limits.max_calls_in_flight",
            self.limits.max_calls_in_flight as u64,
            1..=1_000_000,
        )?;
        check_range("drain_delay_ms", self.drain_delay_ms, 0..=300_000)?;
        if let Some(admin) = self.admin_listen
            && admin.port() != 0
            && admin.port() == self.listen.port()
            && (admin.ip() == self.listen.ip()
                || admin.ip().is_unspecified()
                || self.listen.ip().is_unspecified())
        {
            return Err(ConfigError::invalid(
                "admin_listen",
                format!(
                    "is {admin}: the gRPC listener ({}) has that port",
                    self.listen
                ),
            ));
        }
        check_range("shutdown_grace_ms", self.shutdown_grace_ms, 0..=600_000)?;
        if let Some(minigame) = &self.qq_minigame {
            // At most a year: a login older than that is not a login.
            check_range(
                "qq_minigame.session_max_age_secs",
                minigame.session_max_age_secs,
                60..=31_536_000,
            )?;
        }
        let answer_bytes = 1024..=64 * 1024 * 1024;
        let budget_ms = 1..=60_000;
        for (name, platform) in self.platform_sections() {
            let Some(platform) = platform else { continue };
            check_url(name, platform.base_url)?;
            check_range(
                &format!("{name}.budget_ms"),
                platform.budget_ms,
                budget_ms.clone(),
            )?;
            check_range(
                &format!("{name}.max_answer_bytes"),
                platform.max_answer_bytes as u64,
                answer_bytes.clone(),
            )?;
            platform.rate_limits.validate(name)?;
            platform.circuit.validate(name)?;
            platform.upstream.validate(name, platform.base_url)?;
        }
        if let Some(platform) = &self.qq_minigame {
            for (appid, app) in &platform.apps {
                let key = format!("qq_minigame.apps.{appid}.secret");
                check_secret(&key, &app.secret, MIN_SECRET_LEN)?;
            }
        }
        if let Some(platform) = &self.qq_openapi {
            for (appid, app) in &platform.apps {
                let key = format!("qq_openapi.apps.{appid}.appkey");
                check_secret(&key, &app.appkey, MIN_SECRET_LEN)?;
            }
        }
        if let Some(platform) = &self.msdk {
            for (appid, app) in &platform.apps {
                validate_msdk_app(appid, app)?;
            }
        }
        self.validate_callers()?;
        if let Some(tls) = &self.tls {
            tls.validate()?;
        }
        self.telemetry.validate()?;
        if let Some(store) = &self.store {
            store.validate()?;
            // A record must outlive the claim of the longest call.
            let lease_ms = self.listener.request_timeout_ms + 10_000;
            if store.idempotency_window_ms < lease_ms {
                return Err(ConfigError::invalid(
                    "store.idempotency_window_ms",
                    format!(
                        "is {}; it must be at least listener.request_timeout_ms plus 10 s \
                         ({lease_ms}): a repeat must find the record of a call that ran that long",
                        store.idempotency_window_ms
                    ),
                ));
            }
        }
        self.listener.validate(self.longest_budget_ms())?;
        Ok(())
    }

    /// Callers are told apart by name and by token, authenticate somehow, and
    /// use only apps that a platform section configures (or all, by `"*"`).
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
            let key = |field: &str| format!("callers.{}.{field}", caller.name);
            if caller.name.trim().is_empty() {
                return Err(ConfigError::invalid(
                    format!("callers.{index}.name"),
                    "is empty; give every caller a name (logs and variables use it)",
                ));
            }
            let earlier = &self.callers[..index];
            if earlier.iter().any(|other| other.name == caller.name) {
                return Err(ConfigError::invalid(
                    key("name"),
                    format!(
                        "is the name of two callers ({:?}); give each its own name",
                        caller.name
                    ),
                ));
            }
            let has_token = !caller.token.expose_secret().is_empty();
            if let Some(san) = &caller.certificate_san {
                if san.trim().is_empty() {
                    return Err(ConfigError::invalid(
                        key("certificate_san"),
                        "is empty; name the client certificate's DNS or URI SAN",
                    ));
                }
                if self
                    .tls
                    .as_ref()
                    .is_none_or(|tls| tls.client_ca_file.is_none())
                {
                    return Err(ConfigError::invalid(
                        key("certificate_san"),
                        "identifies the caller by its client certificate, but no [tls] \
                         client_ca_file verifies client certificates: configure mTLS, or \
                         remove certificate_san and give the caller a token",
                    ));
                }
            }
            // A token is what a caller without a certificate name has; one
            // with both is checked as any other token.
            if has_token || caller.certificate_san.is_none() {
                check_secret(&key("token"), &caller.token, MIN_SECRET_LEN)?;
            }
            if has_token
                && let Some(other) = earlier
                    .iter()
                    .find(|other| other.token.expose_secret() == caller.token.expose_secret())
            {
                return Err(ConfigError::invalid(
                    key("token"),
                    format!(
                        "is the token of callers.{} too; give each caller its own",
                        other.name
                    ),
                ));
            }
            if let Some(san) = &caller.certificate_san
                && let Some(other) = earlier
                    .iter()
                    .find(|other| other.certificate_san.as_ref() == Some(san))
            {
                return Err(ConfigError::invalid(
                    key("certificate_san"),
                    format!(
                        "is the certificate name of callers.{} too; give each caller its own",
                        other.name
                    ),
                ));
            }
            if caller.apps.is_empty() {
                return Err(ConfigError::invalid(
                    key("apps"),
                    format!(
                        "is empty: list the app ids the caller may use, or write \
                         [\"{ALL_APPS}\"] for every configured app"
                    ),
                ));
            }
            if caller.all_apps() && caller.apps.len() > 1 {
                return Err(ConfigError::invalid(
                    key("apps"),
                    format!("holds \"{ALL_APPS}\" (every app) and app ids too: keep one of them"),
                ));
            }
            if let Some(unknown) = caller
                .apps
                .iter()
                .find(|app| *app != ALL_APPS && !configured.contains(app.as_str()))
            {
                return Err(ConfigError::invalid(
                    key("apps"),
                    format!(
                        "names {unknown:?}, which no platform section configures; configure \
                         the app or remove it from the list"
                    ),
                ));
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

/// An MSDK app's keys and signing choice.
fn validate_msdk_app(appid: &str, app: &MsdkApp) -> Result<(), ConfigError> {
    check_secret(
        &format!("msdk.apps.{appid}.msdkkey"),
        &app.msdkkey,
        MIN_SECRET_LEN,
    )?;
    if let Some(appkey) = &app.appkey {
        check_secret(&format!("msdk.apps.{appid}.appkey"), appkey, MIN_SECRET_LEN)?;
    }
    for (channel, secret) in &app.video_channels {
        if channel.parse::<i64>().is_err() {
            return Err(ConfigError::invalid(
                format!("msdk.apps.{appid}.video_channels.{channel}"),
                "is not a channel id: channel ids are numbers",
            ));
        }
        check_secret(
            &format!("msdk.apps.{appid}.video_channels.{channel}"),
            secret,
            MIN_CHANNEL_SECRET_LEN,
        )?;
    }
    match (app.encode, &app.appkey) {
        (2, _) | (1, Some(_)) => Ok(()),
        (1, None) => Err(ConfigError::invalid(
            format!("msdk.apps.{appid}.encode"),
            "is 1, which signs with the appkey: set appkey (or appkey_file), or use encode = 2",
        )),
        (other, _) => Err(ConfigError::invalid(
            format!("msdk.apps.{appid}.encode"),
            format!("is {other}; it must be 1 or 2"),
        )),
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

/// A figment error's kind with every value it quotes left out: a key that
/// does not parse may be a secret. What was expected stays, so that the
/// error still says what to fix.
fn without_values_kind(kind: figment::error::Kind) -> String {
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
    match kind {
        Kind::InvalidType(actual, expected) => {
            let hint = match actual {
                Actual::Unsigned(_) | Actual::Signed(_) if expected.contains("string") => {
                    " (write it in quotes)"
                }
                _ => "",
            };
            format!(
                "invalid type: found {}, expected {expected}{hint}",
                kind_of(&actual)
            )
        }
        Kind::InvalidValue(actual, expected) => format!(
            "invalid value: found {}, expected {expected}",
            kind_of(&actual)
        ),
        // Unknown fields and variants quote only what the schema names.
        kind => kind.to_string(),
    }
}

#[cfg(test)]
mod tests;

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
                "admin_listen",
                "drain_delay_ms",
                "shutdown_grace_ms",
                "log_format",
                "log_openid",
                "limits",
                "listener",
                "callers",
                "tls",
                "store",
                "telemetry",
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
                "from-the-env-0123456789",
            );
            let config = Config::load(Some(Path::new("gamegate.toml")))
                .map_err(|e| figment::Error::from(e.to_string()))?;
            assert_eq!(config.listen, SocketAddr::from(([127, 0, 0, 1], 6000)));
            assert_eq!(
                config.qq_openapi.expect("qq_openapi configured").apps["1110766236"]
                    .appkey
                    .expose_secret(),
                "from-the-env-0123456789"
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
    fn a_secret_of_digits_is_the_string_it_is() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("GAMEGATE_QQ_OPENAPI__BASE_URL", "http://127.0.0.1:9");
            for digits in ["0123456789012345", "9081726354554321"] {
                jail.set_env("GAMEGATE_QQ_OPENAPI__APPS__1110766236__APPKEY", digits);
                let config = Config::load(None).map_err(|e| figment::Error::from(e.to_string()))?;
                let apps = &config.qq_openapi.as_ref().expect("configured").apps;
                assert_eq!(apps["1110766236"].appkey.expose_secret(), digits);
                assert!(!format!("{config:?}").contains(digits), "Debug redacts");
            }
            // Too short, and all digits: refused, and not quoted.
            jail.set_env(
                "GAMEGATE_QQ_OPENAPI__APPS__1110766236__APPKEY",
                "0123456789",
            );
            let error = Config::load(None).expect_err("too short").to_string();
            assert!(
                error
                    .contains("environment variable GAMEGATE_QQ_OPENAPI__APPS__1110766236__APPKEY"),
                "{error}"
            );
            assert!(error.contains("10 characters"), "{error}");
            assert!(
                !error.contains("0123456789"),
                "the secret is quoted: {error}"
            );
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn the_telemetry_section_is_an_otlp_url_from_the_file_or_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "gamegate.toml",
                "[telemetry]\notlp_endpoint = \"http://127.0.0.1:4317\"\n",
            )?;
            let path = Path::new("gamegate.toml");
            let config =
                Config::load(Some(path)).map_err(|e| figment::Error::from(e.to_string()))?;
            assert_eq!(
                config.telemetry.otlp_endpoint.as_deref(),
                Some("http://127.0.0.1:4317")
            );
            assert_eq!(config.telemetry.service_name, "gamegate");
            assert_eq!(Config::telemetry_of(Some(path)), config.telemetry);

            jail.set_env(
                "GAMEGATE_TELEMETRY__OTLP_ENDPOINT",
                "https://otel.internal:4317",
            );
            jail.set_env("GAMEGATE_TELEMETRY__SERVICE_NAME", "gamegate-eu");
            let telemetry = Config::telemetry_of(Some(path));
            assert_eq!(
                telemetry.otlp_endpoint.as_deref(),
                Some("https://otel.internal:4317")
            );
            assert_eq!(telemetry.service_name, "gamegate-eu");

            for bad in [
                "127.0.0.1:4317",
                "grpc://127.0.0.1:4317",
                "http://127.0.0.1:4317/v1/traces",
                "http://user:pass@127.0.0.1:4317",
            ] {
                jail.set_env("GAMEGATE_TELEMETRY__OTLP_ENDPOINT", bad);
                let error = Config::load(Some(path)).expect_err(bad).to_string();
                assert!(
                    error.contains(
                        "environment variable GAMEGATE_TELEMETRY__OTLP_ENDPOINT: \
                         telemetry.otlp_endpoint is not an OTLP/gRPC endpoint"
                    ),
                    "{error}"
                );
                assert!(!error.contains("pass"), "{error}");
                // Read early, a bad section exports nothing.
                assert_eq!(Config::telemetry_of(Some(path)).otlp_endpoint, None);
            }
            jail.clear_env();
            jail.create_file(
                "gamegate.toml",
                "listen = \"127.0.0.1:0\"\n[telemetry]\notlp_endpoint = \"ftp://x\"\n",
            )?;
            let error = Config::load(Some(path)).expect_err("ftp").to_string();
            assert!(error.contains("gamegate.toml:3:"), "{error}");
            Ok(())
        });
    }
}
