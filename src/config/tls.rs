//! The `[tls]` section: TLS on the gRPC listener, and mTLS with a client CA.
//! Absent, the listener is plaintext (behind a mesh sidecar that terminates
//! TLS, say). The values are paths, not secrets; the files are read (and
//! checked: PEM, the key matching the certificate) before the port is bound,
//! and re-read when they change.

use std::{path::PathBuf, time::Duration};

use serde::Deserialize;

use super::ConfigError;
use crate::net::{self, TlsFile};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM: the server certificate, then its intermediates.
    pub cert_file: PathBuf,
    /// PEM: the certificate's private key (PKCS#8, RSA or SEC1). Readable by
    /// gamegate only.
    pub key_file: PathBuf,
    /// PEM: the CAs that client certificates must chain to. Set: every client
    /// must present a certificate (mTLS), and `[[callers]]` may be identified
    /// by its `certificate_san`.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// How often the files are read to see whether they changed (a renewed
    /// certificate, a Kubernetes Secret swapped); SIGHUP reloads at once.
    #[serde(default = "default_reload_interval_ms")]
    pub reload_interval_ms: u64,
}

fn default_reload_interval_ms() -> u64 {
    5_000
}

const RELOAD_INTERVAL_MS: std::ops::RangeInclusive<u64> = 100..=600_000;

impl TlsConfig {
    /// Refuses a reload interval out of range, and files that are missing,
    /// unreadable, not PEM, or a key that does not match its certificate;
    /// the error names the key and the path, never a file's content.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !RELOAD_INTERVAL_MS.contains(&self.reload_interval_ms) {
            return Err(ConfigError::invalid(
                "tls.reload_interval_ms",
                format!(
                    "is {}; it must be from {} to {}",
                    self.reload_interval_ms,
                    RELOAD_INTERVAL_MS.start(),
                    RELOAD_INTERVAL_MS.end()
                ),
            ));
        }
        net::load_server_config(&self.settings())
            .map(drop)
            .map_err(describe)
    }

    /// What the listener needs of this section.
    pub fn settings(&self) -> net::TlsSettings {
        net::TlsSettings {
            cert_file: self.cert_file.clone(),
            key_file: self.key_file.clone(),
            client_ca_file: self.client_ca_file.clone(),
            reload_interval: Duration::from_millis(self.reload_interval_ms),
        }
    }
}

/// A TLS file error as a configuration error: its key, and what to do.
fn describe(error: net::TlsError) -> ConfigError {
    let (key, hint) = match error.file {
        TlsFile::Cert => (
            "tls.cert_file",
            "point it at a PEM file holding the server certificate, then its intermediates",
        ),
        TlsFile::Key => (
            "tls.key_file",
            "point it at the PEM private key (PKCS#8, RSA or SEC1) of the certificate in \
             tls.cert_file",
        ),
        TlsFile::ClientCa => (
            "tls.client_ca_file",
            "point it at a PEM bundle of the CA certificates that client certificates chain \
             to, or remove it to accept clients without certificates",
        ),
    };
    ConfigError::invalid(
        key,
        format!("{} {}; {hint}", error.path.display(), error.problem),
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rcgen::{CertificateParams, KeyPair};

    use super::*;

    /// A self-signed certificate and its key, in `dir`.
    fn write_pair(dir: &Path) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (cert_file, key_file) = (dir.join("tls.crt"), dir.join("tls.key"));
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        (cert_file, key_file)
    }

    fn config(cert_file: PathBuf, key_file: PathBuf) -> TlsConfig {
        TlsConfig {
            cert_file,
            key_file,
            client_ca_file: None,
            reload_interval_ms: default_reload_interval_ms(),
        }
    }

    fn refused(config: &TlsConfig) -> (String, String) {
        match config.validate().unwrap_err() {
            ConfigError::Invalid { key, problem, .. } => (key, problem),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn a_readable_pair_is_valid_and_a_section_without_reload_interval_gets_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let (cert_file, key_file) = write_pair(dir.path());
        use figment::providers::{Format, Toml};
        let section: TlsConfig = figment::Figment::from(Toml::string(&format!(
            "cert_file = {:?}\nkey_file = {:?}\n",
            cert_file, key_file
        )))
        .extract()
        .unwrap();
        assert_eq!(section.reload_interval_ms, 5_000);
        section.validate().unwrap();
    }

    #[test]
    fn a_missing_file_is_named_by_its_key_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let (cert_file, key_file) = write_pair(dir.path());
        let missing = dir.path().join("nope.pem");
        let (key, problem) = refused(&config(missing.clone(), key_file.clone()));
        assert_eq!(key, "tls.cert_file");
        assert!(
            problem.contains(&missing.display().to_string()),
            "{problem}"
        );
        assert!(problem.contains("cannot be read"), "{problem}");

        let mut with_ca = config(cert_file, key_file);
        with_ca.client_ca_file = Some(missing);
        assert_eq!(refused(&with_ca).0, "tls.client_ca_file");
    }

    #[test]
    fn a_key_that_is_not_pem_or_not_the_certificates_is_refused_without_quoting_it() {
        let dir = tempfile::tempdir().unwrap();
        let (cert_file, key_file) = write_pair(dir.path());
        let secret_looking = "-----BEGIN PRIVATE KEY-----\nTOPSECRETLINE!!\n";
        std::fs::write(&key_file, secret_looking).unwrap();
        let (key, problem) = refused(&config(cert_file.clone(), key_file.clone()));
        assert_eq!(key, "tls.key_file");
        assert!(!problem.contains("TOPSECRET"), "{problem}");

        std::fs::write(&key_file, "no pem here").unwrap();
        let (_, problem) = refused(&config(cert_file.clone(), key_file.clone()));
        assert!(problem.contains("holds no PEM"), "{problem}");

        // A key of another certificate.
        let other = tempfile::tempdir().unwrap();
        let (_, other_key) = write_pair(other.path());
        let (key, problem) = refused(&config(cert_file, other_key));
        assert_eq!(key, "tls.key_file");
        assert!(problem.contains("is not the key of"), "{problem}");
    }

    #[test]
    fn a_certificate_file_without_a_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (_, key_file) = write_pair(dir.path());
        // The key where the certificate should be.
        let (key, problem) = refused(&config(key_file.clone(), key_file));
        assert_eq!(key, "tls.cert_file");
        assert!(problem.contains("holds no PEM CERTIFICATE"), "{problem}");
    }

    #[test]
    fn the_reload_interval_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let (cert_file, key_file) = write_pair(dir.path());
        for (interval, ok) in [(99, false), (100, true), (600_000, true), (600_001, false)] {
            let mut section = config(cert_file.clone(), key_file.clone());
            section.reload_interval_ms = interval;
            assert_eq!(section.validate().is_ok(), ok, "{interval}");
            if !ok {
                assert_eq!(refused(&section).0, "tls.reload_interval_ms");
            }
        }
    }
}
