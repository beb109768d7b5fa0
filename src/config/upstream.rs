//! A platform's `upstream` table (`[qq_minigame.upstream]`,
//! `[qq_openapi.upstream]`, `[msdk.upstream]`): how gamegate reaches that
//! platform. Every key is optional; without the table gamegate connects
//! directly (or through the proxy the environment names, as curl does),
//! trusts the webpki roots, opens as many connections as calls need and
//! closes one idle for 50 s.
//!
//! ```toml
//! [msdk.upstream]
//! proxy = "http://egress.corp:3128"   # "" = never a proxy, whatever the environment says
//! proxy_user = "gamegate"
//! proxy_password_file = "/run/secrets/egress-password"
//! no_proxy = "internal.corp,10.0.0.0/8"
//! ca_file = "/etc/gamegate/msdk-ca.pem"
//! client_cert_file = "/run/secrets/msdk-client.crt"
//! client_key_file = "/run/secrets/msdk-client.key"
//! max_connections = 64
//! idle_timeout_ms = 50000
//! ```
//!
//! The proxy password is a secret (set in the file, in
//! `GAMEGATE_MSDK__UPSTREAM__PROXY_PASSWORD`, or in a file named by
//! `proxy_password_file`); neither it nor the user is ever logged or shown
//! by Debug. The files are read (and checked) before any port is bound, and
//! again when the platform is rebuilt at a reload.

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{ConfigError, secrets::is_placeholder};
use crate::upstream::{self, ProxySetting, UpstreamOptions};

/// `idle_timeout_ms`: from a tenth of a second (tests) to an hour.
const IDLE_TIMEOUT_MS: std::ops::RangeInclusive<u64> = 100..=3_600_000;
/// `max_connections`: at least one; more than this is no cap anyone means.
const MAX_CONNECTIONS: std::ops::RangeInclusive<usize> = 1..=65_536;

/// How gamegate reaches one platform.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSettings {
    /// The proxy every call to the platform goes through, `http://host:port`
    /// (an https platform through a `CONNECT` tunnel, TLS end to end; an http
    /// one with absolute-form requests). Absent: the environment's
    /// `https_proxy`/`HTTPS_PROXY` (https bases) or `http_proxy`/`HTTP_PROXY`
    /// (http bases), if set. `""`: no proxy, whatever the environment says.
    #[serde(default)]
    pub proxy: Option<String>,
    /// The proxy's Basic credentials (with `proxy_password` or
    /// `proxy_password_file`); they win over credentials in an environment
    /// variable's URL.
    #[serde(default)]
    pub proxy_user: Option<String>,
    #[serde(default)]
    pub proxy_password: Option<SecretString>,
    /// A file holding the proxy password instead (a Kubernetes Secret volume).
    #[serde(default)]
    pub proxy_password_file: Option<PathBuf>,
    /// Hosts reached directly, a `NO_PROXY` list (curl's rules: comma
    /// separated, `*` for all, a name covers its subdomains, IPs and CIDR
    /// ranges, an optional `:port`; loopback only when listed). Set, it
    /// replaces the environment's `no_proxy`/`NO_PROXY`; `""` exempts nothing.
    #[serde(default)]
    pub no_proxy: Option<String>,
    /// PEM: the CA certificates the platform's certificate must chain to,
    /// trusted instead of the webpki roots (a private platform, a TLS
    /// inspecting egress).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM: the client certificate (then its intermediates) gamegate shows
    /// the platform (mTLS), with `client_key_file`, its key (PKCS#8, RSA or
    /// SEC1).
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
    /// At most this many connections to the platform at once, idle or in
    /// use; a call over the cap waits, within its deadline, for one to be
    /// free. Absent: no cap.
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// An idle connection is closed after this long (keep it below the
    /// platform's keep-alive timeout, so that gamegate, not the platform,
    /// retires it).
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
}

fn default_idle_timeout_ms() -> u64 {
    upstream::IDLE_TIMEOUT.as_millis() as u64
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        UpstreamSettings {
            proxy: None,
            proxy_user: None,
            proxy_password: None,
            proxy_password_file: None,
            no_proxy: None,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            max_connections: None,
            idle_timeout_ms: default_idle_timeout_ms(),
        }
    }
}

impl std::fmt::Debug for UpstreamSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The user is as much a credential as the password.
        let redacted = |set: bool| set.then_some("(redacted)");
        f.debug_struct("UpstreamSettings")
            .field("proxy", &self.proxy)
            .field("proxy_user", &redacted(self.proxy_user.is_some()))
            .field("proxy_password", &redacted(self.proxy_password.is_some()))
            .field("proxy_password_file", &self.proxy_password_file)
            .field("no_proxy", &self.no_proxy)
            .field("ca_file", &self.ca_file)
            .field("client_cert_file", &self.client_cert_file)
            .field("client_key_file", &self.client_key_file)
            .field("max_connections", &self.max_connections)
            .field("idle_timeout_ms", &self.idle_timeout_ms)
            .finish()
    }
}

impl UpstreamSettings {
    /// What the upstream client is built with.
    pub fn options(&self) -> UpstreamOptions {
        UpstreamOptions {
            proxy: match self.proxy.as_deref().map(str::trim) {
                None => ProxySetting::Environment,
                Some("") => ProxySetting::Off,
                Some(url) => ProxySetting::Url(url.to_string()),
            },
            proxy_user: self.proxy_user.clone(),
            // A `proxy_password_file`'s content is here already: the
            // configuration reads secret files when it is loaded (and
            // reloaded), for every secret alike.
            proxy_password: self.proxy_password.clone(),
            no_proxy: self.no_proxy.clone(),
            ca_file: self.ca_file.clone(),
            client_cert_file: self.client_cert_file.clone(),
            client_key_file: self.client_key_file.clone(),
            max_connections: self.max_connections,
            idle_timeout: std::time::Duration::from_millis(self.idle_timeout_ms),
        }
    }

    /// The rules of `[<platform>.upstream]` for the platform at `base_url`:
    /// ranges, credentials in pairs, a proxy URL gamegate can use (the
    /// environment's too, when it is the one used), TLS files that read and
    /// parse. Errors name `<platform>.upstream.<key>`, never a secret.
    pub(super) fn validate(&self, platform: &str, base_url: &str) -> Result<(), ConfigError> {
        let key = |field: &str| format!("{platform}.upstream.{field}");
        if !IDLE_TIMEOUT_MS.contains(&self.idle_timeout_ms) {
            return Err(ConfigError::invalid(
                key("idle_timeout_ms"),
                format!(
                    "is {}; it must be from {} to {}",
                    self.idle_timeout_ms,
                    IDLE_TIMEOUT_MS.start(),
                    IDLE_TIMEOUT_MS.end()
                ),
            ));
        }
        if let Some(max) = self.max_connections
            && !MAX_CONNECTIONS.contains(&max)
        {
            return Err(ConfigError::invalid(
                key("max_connections"),
                format!(
                    "is {max}; it must be from {} to {} (leave it out for no cap)",
                    MAX_CONNECTIONS.start(),
                    MAX_CONNECTIONS.end()
                ),
            ));
        }
        if self
            .proxy_user
            .as_deref()
            .is_some_and(|user| user.is_empty())
        {
            return Err(ConfigError::invalid(
                key("proxy_user"),
                "is empty: name the proxy's user, or leave proxy_user and proxy_password out",
            ));
        }
        if let Some(password) = &self.proxy_password {
            if password.expose_secret().is_empty() {
                return Err(ConfigError::invalid(
                    key("proxy_password"),
                    format!(
                        "is empty: set it in the file, in {}, or in a file named by \
                         proxy_password_file",
                        super::secrets::variable_of(&key("proxy_password"))
                    ),
                ));
            }
            if is_placeholder(password.expose_secret()) {
                return Err(ConfigError::invalid(
                    key("proxy_password"),
                    "still holds the example's placeholder text, not a password",
                ));
            }
        }
        self.options().check(base_url).map_err(|error| {
            let field = if error.key == "base_url" {
                format!("{platform}.base_url")
            } else {
                key(error.key)
            };
            ConfigError::invalid(field, error.problem)
        })
    }
}

#[cfg(test)]
mod tests {
    use figment::{
        Figment,
        providers::{Format, Toml},
    };

    use super::*;

    fn settings(toml: &str) -> UpstreamSettings {
        Figment::from(Toml::string(toml))
            .extract()
            .expect("the table parses")
    }

    fn refusal(toml: &str, base_url: &str) -> String {
        settings(toml)
            .validate("msdk", base_url)
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn defaults_and_conversion() {
        let empty = settings("");
        assert_eq!(empty.idle_timeout_ms, 50_000);
        assert!(empty.validate("msdk", "http://msdk.qq.com").is_ok());
        let options = empty.options();
        assert_eq!(options.proxy, ProxySetting::Environment);
        assert_eq!(options.idle_timeout, upstream::IDLE_TIMEOUT);
        assert_eq!(settings("proxy = \"\"").options().proxy, ProxySetting::Off);
        assert_eq!(
            settings("proxy = \"http://egress:3128\"").options().proxy,
            ProxySetting::Url("http://egress:3128".into())
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let error = Figment::from(Toml::string("proxy_url = \"http://x:1\""))
            .extract::<UpstreamSettings>()
            .unwrap_err()
            .to_string();
        assert!(error.contains("proxy_url"), "{error}");
    }

    #[test]
    fn ranges() {
        let error = refusal("idle_timeout_ms = 10", "http://msdk.qq.com");
        assert!(
            error.contains("msdk.upstream.idle_timeout_ms is 10"),
            "{error}"
        );
        let error = refusal("max_connections = 0", "http://msdk.qq.com");
        assert!(
            error.contains("msdk.upstream.max_connections is 0"),
            "{error}"
        );
        assert!(
            settings("max_connections = 8\nidle_timeout_ms = 1000")
                .validate("msdk", "http://msdk.qq.com")
                .is_ok()
        );
    }

    #[test]
    fn proxies_and_credentials() {
        let error = refusal("proxy = \"socks5://egress:1080\"", "http://msdk.qq.com");
        assert!(error.contains("msdk.upstream.proxy"), "{error}");
        let error = refusal(
            "proxy = \"http://user:hunter2@egress:3128\"",
            "http://msdk.qq.com",
        );
        assert!(
            error.contains("proxy_user") && !error.contains("hunter2"),
            "{error}"
        );
        let error = refusal(
            "proxy = \"http://egress:3128\"\nproxy_password = \"hunter2\"",
            "http://msdk.qq.com",
        );
        assert!(
            error.contains("msdk.upstream.proxy_password is set without proxy_user")
                && !error.contains("hunter2"),
            "{error}"
        );
        let error = refusal(
            "proxy = \"http://egress:3128\"\nproxy_user = \"u\"\nproxy_password = \"changeme\"",
            "http://msdk.qq.com",
        );
        assert!(error.contains("placeholder"), "{error}");
        let good = settings(
            "proxy = \"http://egress:3128\"\nproxy_user = \"gamegate\"\nproxy_password = \"hunter2\"",
        );
        assert!(good.validate("msdk", "https://msdk.qq.com").is_ok());
        let shown = format!("{good:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("gamegate"),
            "{shown}"
        );
    }

    /// Within a whole configuration: the nested table, its errors located at
    /// their line, the password from the environment.
    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail fixes the closure's error type.
    fn the_table_in_a_configuration_file() {
        figment::Jail::expect_with(|jail| {
            let msdk = "[msdk]\nbase_url = \"http://127.0.0.1:9\"\n\
                        [msdk.apps.100703379]\nmsdkkey = \"a-real-looking-msdk-key-01\"\n\
                        [msdk.upstream]\nproxy = \"http://127.0.0.1:3128\"\n\
                        proxy_user = \"gamegate\"\n";
            jail.create_file("gamegate.toml", &format!("{msdk}max_connections = 0\n"))?;
            let error = super::super::Config::load(Some(std::path::Path::new("gamegate.toml")))
                .expect_err("refused")
                .to_string();
            assert!(
                error.contains("gamegate.toml:8:1")
                    && error.contains("msdk.upstream.max_connections"),
                "{error}"
            );
            jail.create_file("gamegate.toml", msdk)?;
            let error = super::super::Config::load(Some(std::path::Path::new("gamegate.toml")))
                .expect_err("no password")
                .to_string();
            assert!(error.contains("msdk.upstream.proxy_user"), "{error}");
            jail.set_env(
                "GAMEGATE_MSDK__UPSTREAM__PROXY_PASSWORD",
                "from-the-environment",
            );
            let config = super::super::Config::load(Some(std::path::Path::new("gamegate.toml")))
                .expect("loads");
            let upstream = &config.msdk.as_ref().unwrap().upstream;
            assert_eq!(
                upstream.proxy_password.as_ref().unwrap().expose_secret(),
                "from-the-environment"
            );
            assert!(!format!("{config:?}").contains("from-the-environment"));
            Ok(())
        });
    }

    #[test]
    fn tls_files() {
        let error = refusal("ca_file = \"/nonexistent/ca.pem\"", "https://msdk.qq.com");
        assert!(
            error.contains("msdk.upstream.ca_file names /nonexistent/ca.pem"),
            "{error}"
        );
        let error = refusal("ca_file = \"/nonexistent/ca.pem\"", "http://msdk.qq.com");
        assert!(error.contains("https://"), "{error}");
        let error = refusal(
            "client_cert_file = \"/nonexistent/c.pem\"",
            "https://msdk.qq.com",
        );
        assert!(error.contains("without client_key_file"), "{error}");
    }
}
