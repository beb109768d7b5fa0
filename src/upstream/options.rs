//! A platform's transport options (from its `[<platform>.upstream]` table):
//! the proxy it is reached through, the CA it is trusted by and the client
//! certificate it is shown, the cap on its connections and how long one may
//! sit idle; and their checks, which the configuration runs before anything
//! is bound and the upstream runs again when it is built (a reload re-reads
//! the files, so a renewed CA or certificate takes effect at the next reload).

use std::{path::PathBuf, time::Duration};

use secrecy::SecretString;
use thiserror::Error;
use tokio_rustls::{
    TlsConnector,
    rustls::{
        self,
        pki_types::{
            CertificateDer, PrivateKeyDer,
            pem::{self, PemObject},
        },
    },
};

use super::{
    BaseUrl, IDLE_TIMEOUT,
    proxy::{self, Proxy, ProxySource},
};

/// Which proxy a platform's calls go through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ProxySetting {
    /// curl's environment variables: `https_proxy`/`HTTPS_PROXY` for an https
    /// base, `http_proxy`/`HTTP_PROXY` for an http base, exemptions from
    /// `no_proxy`/`NO_PROXY`; none set, no proxy.
    #[default]
    Environment,
    /// No proxy, whatever the environment says (`proxy = ""`).
    Off,
    /// This proxy (`http://host:port`).
    Url(String),
}

/// A platform's transport options.
#[derive(Clone)]
pub struct UpstreamOptions {
    pub proxy: ProxySetting,
    pub proxy_user: Option<String>,
    /// The proxy's password (a `proxy_password_file` was read by the
    /// configuration).
    pub proxy_password: Option<SecretString>,
    /// Hosts not proxied (a `NO_PROXY` list); `Some` replaces the
    /// environment's, `Some("")` exempts nothing.
    pub no_proxy: Option<String>,
    /// PEM: the CAs this platform's certificate must chain to, instead of
    /// the webpki roots.
    pub ca_file: Option<PathBuf>,
    /// PEM: the client certificate (then its intermediates) shown to the
    /// platform, and its key.
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    /// At most this many connections open at once (idle or in use); `None`
    /// is no cap.
    pub max_connections: Option<usize>,
    /// An idle connection older than this is closed.
    pub idle_timeout: Duration,
}

impl Default for UpstreamOptions {
    fn default() -> Self {
        UpstreamOptions {
            proxy: ProxySetting::Environment,
            proxy_user: None,
            proxy_password: None,
            no_proxy: None,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            max_connections: None,
            idle_timeout: IDLE_TIMEOUT,
        }
    }
}

impl std::fmt::Debug for UpstreamOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Neither the user nor the password of the proxy: credentials.
        f.debug_struct("UpstreamOptions")
            .field("proxy", &self.proxy)
            .field(
                "proxy_user",
                &self.proxy_user.as_ref().map(|_| "(redacted)"),
            )
            .field(
                "proxy_password",
                &self.proxy_password.as_ref().map(|_| "(redacted)"),
            )
            .field("no_proxy", &self.no_proxy)
            .field("ca_file", &self.ca_file)
            .field("client_cert_file", &self.client_cert_file)
            .field("client_key_file", &self.client_key_file)
            .field("max_connections", &self.max_connections)
            .field("idle_timeout", &self.idle_timeout)
            .finish()
    }
}

/// Options that cannot be used: the option (its key in the upstream table)
/// and what is wrong, never a secret, a file's content or a proxy URL (an
/// environment variable's may hold a password).
#[derive(Debug, Error)]
#[error("{key} {problem}")]
pub struct OptionsError {
    /// `proxy`, `proxy_user`, `ca_file`, ...
    pub key: &'static str,
    pub problem: String,
}

fn invalid(key: &'static str, problem: impl Into<String>) -> OptionsError {
    OptionsError {
        key,
        problem: problem.into(),
    }
}

/// What the upstream of one base URL is built with.
pub(super) struct Prepared {
    pub proxy: Option<Proxy>,
    /// The platform's own TLS connector (a CA file or a client certificate);
    /// `None`: the shared one, trusting the webpki roots.
    pub tls: Option<TlsConnector>,
}

impl UpstreamOptions {
    /// Checks the options for `base_url` as the upstream will use them (the
    /// process environment's proxy variables included): what configuration
    /// validation runs.
    pub fn check(&self, base_url: &str) -> Result<(), OptionsError> {
        let base = BaseUrl::parse(base_url).map_err(|e| invalid("base_url", e.to_string()))?;
        self.prepare(&base, &|name| std::env::var(name).ok())
            .map(drop)
    }

    pub(super) fn prepare(
        &self,
        base: &BaseUrl,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Prepared, OptionsError> {
        if let Some(max) = self.max_connections
            && max == 0
        {
            return Err(invalid(
                "max_connections",
                "is 0; leave it out for no cap, or allow at least 1 connection",
            ));
        }
        Ok(Prepared {
            proxy: self.proxy_for(base, env)?,
            tls: self.tls_connector(base)?,
        })
    }

    fn proxy_for(
        &self,
        base: &BaseUrl,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Proxy>, OptionsError> {
        let password = self.proxy_password.clone();
        if self.proxy_user.is_none() && password.is_some() {
            return Err(invalid(
                "proxy_password",
                "is set without proxy_user: set both, or neither",
            ));
        }
        if self.proxy_user.is_some() && password.is_none() {
            return Err(invalid(
                "proxy_user",
                "is set without proxy_password (or proxy_password_file): set both, or neither",
            ));
        }
        let (url, source, origin) = match &self.proxy {
            ProxySetting::Off => return Ok(None),
            ProxySetting::Url(url) if url.trim().is_empty() => return Ok(None),
            ProxySetting::Url(url) => (url.clone(), ProxySource::Configuration, None),
            ProxySetting::Environment => match proxy::proxy_from_environment(base.tls, env) {
                Some((variable, url)) => (url, ProxySource::Environment, Some(variable)),
                None => return Ok(None),
            },
        };
        let (host, port, authority, url_credentials) = proxy::parse_proxy_url(&url, source)
            .map_err(|problem| match origin {
                None => invalid("proxy", problem),
                Some(variable) => invalid(
                    "proxy",
                    format!(
                        "is not set, so the environment variable {variable} names the proxy; \
                         its value {problem} (set proxy = \"\" to ignore it)"
                    ),
                ),
            })?;
        let no_proxy = match &self.no_proxy {
            Some(list) => Some(list.clone()),
            None => proxy::no_proxy_from_environment(env),
        };
        if no_proxy
            .as_deref()
            .is_some_and(|list| proxy::no_proxy_matches(list, &base.host, base.port))
        {
            return Ok(None);
        }
        // The table's credentials win over those of an environment variable's URL.
        let credentials = match (&self.proxy_user, password) {
            (Some(user), Some(password)) => {
                if user.contains(':') {
                    return Err(invalid(
                        "proxy_user",
                        "holds a ':', which Basic authentication cannot carry in a user name",
                    ));
                }
                Some((user.clone(), password))
            }
            _ => url_credentials,
        };
        Ok(Some(Proxy::new(host, port, authority, credentials)))
    }

    fn tls_connector(&self, base: &BaseUrl) -> Result<Option<TlsConnector>, OptionsError> {
        let client_files = match (&self.client_cert_file, &self.client_key_file) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some((cert, key)),
            (Some(_), None) => {
                return Err(invalid(
                    "client_cert_file",
                    "is set without client_key_file: set both, or neither",
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "client_key_file",
                    "is set without client_cert_file: set both, or neither",
                ));
            }
        };
        if self.ca_file.is_none() && client_files.is_none() {
            return Ok(None);
        }
        if !base.tls {
            let key = if self.ca_file.is_some() {
                "ca_file"
            } else {
                "client_cert_file"
            };
            return Err(invalid(
                key,
                "is set, but base_url is http://: TLS settings need an https:// base_url",
            ));
        }
        let roots = match &self.ca_file {
            Some(path) => {
                let mut roots = rustls::RootCertStore::empty();
                for certificate in read_certificates("ca_file", path)? {
                    roots.add(certificate).map_err(|error| {
                        invalid(
                            "ca_file",
                            format!(
                                "names {}, whose certificate is refused: {error}",
                                path.display()
                            ),
                        )
                    })?;
                }
                roots
            }
            None => super::webpki_roots(),
        };
        let client = match client_files {
            None => None,
            Some((cert_path, key_path)) => {
                let chain = read_certificates("client_cert_file", cert_path)?;
                let bytes = read_file("client_key_file", key_path)?;
                let key = PrivateKeyDer::from_pem_slice(&bytes).map_err(|error| {
                    invalid(
                        "client_key_file",
                        format!(
                            "names {}, which {}",
                            key_path.display(),
                            match error {
                                pem::Error::NoItemsFound => {
                                    "holds no PRIVATE KEY (PKCS#8), RSA PRIVATE KEY or EC \
                                     PRIVATE KEY block"
                                        .to_string()
                                }
                                error => pem_problem(error),
                            }
                        ),
                    )
                })?;
                Some((chain, key))
            }
        };
        super::tls_connector(roots, client)
            .map(Some)
            .map_err(|error| match error {
                rustls::Error::InconsistentKeys(_) => invalid(
                    "client_key_file",
                    "is not the key of the certificate in client_cert_file",
                ),
                error => invalid(
                    "client_cert_file",
                    format!("cannot be used with its key: {error}"),
                ),
            })
    }
}

fn read_file(key: &'static str, path: &PathBuf) -> Result<Vec<u8>, OptionsError> {
    std::fs::read(path).map_err(|error| {
        invalid(
            key,
            format!(
                "names {}, which cannot be read ({}); fix the path or the file's permissions",
                path.display(),
                error.kind()
            ),
        )
    })
}

fn read_certificates(
    key: &'static str,
    path: &PathBuf,
) -> Result<Vec<CertificateDer<'static>>, OptionsError> {
    let bytes = read_file(key, path)?;
    let certificates = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| {
            invalid(
                key,
                format!("names {}, which {}", path.display(), pem_problem(error)),
            )
        })?;
    if certificates.is_empty() {
        return Err(invalid(
            key,
            format!("names {}, which holds no CERTIFICATE block", path.display()),
        ));
    }
    Ok(certificates)
}

/// Not the PEM error's own text: some variants quote a line of the file
/// (a key file's line is part of the key).
fn pem_problem(error: pem::Error) -> String {
    match error {
        pem::Error::Io(error) => format!("cannot be read ({})", error.kind()),
        pem::Error::MissingSectionEnd { .. } => "is not PEM: a block has no END line".into(),
        pem::Error::IllegalSectionStart { .. } => "is not PEM: a BEGIN line is malformed".into(),
        pem::Error::Base64Decode(_) => "is not PEM: a block is not valid base64".into(),
        _ => "is not PEM".into(),
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    fn base(url: &str) -> BaseUrl {
        BaseUrl::parse(url).unwrap()
    }

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        }
    }

    fn proxy_of(
        options: &UpstreamOptions,
        url: &str,
        vars: &'static [(&str, &str)],
    ) -> Option<String> {
        options
            .prepare(&base(url), &env(vars))
            .unwrap()
            .proxy
            .map(|proxy| proxy.authority)
    }

    #[test]
    fn the_environment_is_read_by_scheme_and_no_proxy_exempts() {
        let options = UpstreamOptions::default();
        let vars: &[(&str, &str)] = &[
            ("HTTPS_PROXY", "http://tls-proxy:3128"),
            ("http_proxy", "plain-proxy:8080"),
            ("NO_PROXY", "internal.corp,10.0.0.0/8"),
        ];
        assert_eq!(
            proxy_of(&options, "https://api.q.qq.com", vars).as_deref(),
            Some("tls-proxy:3128")
        );
        assert_eq!(
            proxy_of(&options, "http://msdk.qq.com", vars).as_deref(),
            Some("plain-proxy:8080")
        );
        assert_eq!(proxy_of(&options, "https://a.internal.corp", vars), None);
        assert_eq!(proxy_of(&options, "http://10.1.1.1:8080", vars), None);
        // Loopback is proxied like any host unless listed.
        assert_eq!(
            proxy_of(&options, "http://127.0.0.1:9", vars).as_deref(),
            Some("plain-proxy:8080")
        );
        assert_eq!(proxy_of(&options, "http://127.0.0.1:9", &[]), None);

        // The table's no_proxy replaces the environment's; "" exempts nothing.
        let options = UpstreamOptions {
            no_proxy: Some(String::new()),
            ..UpstreamOptions::default()
        };
        assert_eq!(
            proxy_of(&options, "https://a.internal.corp", vars).as_deref(),
            Some("tls-proxy:3128")
        );
        let options = UpstreamOptions {
            no_proxy: Some("*".into()),
            ..UpstreamOptions::default()
        };
        assert_eq!(proxy_of(&options, "https://api.q.qq.com", vars), None);

        // proxy = "" ignores the environment; an explicit proxy wins over it.
        let options = UpstreamOptions {
            proxy: ProxySetting::Url(String::new()),
            ..UpstreamOptions::default()
        };
        assert_eq!(proxy_of(&options, "https://api.q.qq.com", vars), None);
        let options = UpstreamOptions {
            proxy: ProxySetting::Url("http://egress:3128".into()),
            ..UpstreamOptions::default()
        };
        assert_eq!(
            proxy_of(&options, "https://api.q.qq.com", vars).as_deref(),
            Some("egress:3128")
        );
        assert_eq!(proxy_of(&options, "https://x.internal.corp", vars), None);
    }

    #[test]
    fn credentials_come_in_pairs_and_errors_show_none() {
        let with = |user: Option<&str>, password: Option<&str>| UpstreamOptions {
            proxy: ProxySetting::Url("http://egress:3128".into()),
            proxy_user: user.map(str::to_string),
            proxy_password: password.map(SecretString::from),
            ..UpstreamOptions::default()
        };
        let check = |options: UpstreamOptions| {
            options
                .prepare(&base("https://api.q.qq.com"), &|_| None)
                .map(|prepared| prepared.proxy.unwrap())
        };
        let proxy = check(with(Some("gamegate"), Some("s3cret-pass"))).unwrap();
        assert!(proxy.authorization.is_some());
        let error = check(with(None, Some("s3cret-pass"))).err().unwrap();
        assert_eq!(error.key, "proxy_password");
        assert!(!error.to_string().contains("s3cret"));
        assert_eq!(
            check(with(Some("gamegate"), None)).err().unwrap().key,
            "proxy_user"
        );

        // An environment variable's URL may carry them; its errors never show it.
        let vars: &[(&str, &str)] = &[("HTTPS_PROXY", "socks5://u:hunter2@egress:1080")];
        let error = UpstreamOptions::default()
            .prepare(&base("https://api.q.qq.com"), &env(vars))
            .err()
            .unwrap();
        let text = error.to_string();
        assert!(
            text.contains("HTTPS_PROXY") && !text.contains("hunter2"),
            "{text}"
        );
        let vars: &[(&str, &str)] = &[("HTTPS_PROXY", "http://u:hunter2@egress:1080")];
        let prepared = UpstreamOptions::default()
            .prepare(&base("https://api.q.qq.com"), &env(vars))
            .unwrap();
        assert!(prepared.proxy.unwrap().authorization.is_some());
    }

    #[test]
    fn tls_files_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["client".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let other_key = rcgen::KeyPair::generate().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let cert_file = write("client.crt", &cert.pem());
        let key_file = write("client.key", &key.serialize_pem());
        let other_key_file = write("other.key", &other_key.serialize_pem());
        let not_pem = write("not.pem", "hello");
        let https = base("https://api.q.qq.com");
        let check = |options: UpstreamOptions| options.tls_connector(&https).map(|c| c.is_some());

        let good = UpstreamOptions {
            ca_file: Some(cert_file.clone()),
            client_cert_file: Some(cert_file.clone()),
            client_key_file: Some(key_file.clone()),
            ..UpstreamOptions::default()
        };
        assert!(check(good.clone()).unwrap());
        assert!(!check(UpstreamOptions::default()).unwrap());
        let error = good
            .tls_connector(&base("http://msdk.qq.com"))
            .err()
            .unwrap();
        assert_eq!(error.key, "ca_file");
        let error = check(UpstreamOptions {
            ca_file: Some(not_pem.clone()),
            ..UpstreamOptions::default()
        })
        .err()
        .unwrap();
        assert_eq!(error.key, "ca_file");
        assert!(error.problem.contains("no CERTIFICATE"), "{error}");
        let error = check(UpstreamOptions {
            client_key_file: None,
            ..good.clone()
        })
        .err()
        .unwrap();
        assert_eq!(error.key, "client_cert_file");
        let error = check(UpstreamOptions {
            client_key_file: Some(not_pem),
            ..good.clone()
        })
        .err()
        .unwrap();
        assert_eq!(error.key, "client_key_file");
        let error = check(UpstreamOptions {
            client_key_file: Some(other_key_file),
            ..good
        })
        .err()
        .unwrap();
        assert_eq!(error.key, "client_key_file");
        assert!(error.problem.contains("not the key"), "{error}");
    }
}
