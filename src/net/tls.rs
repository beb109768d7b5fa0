//! TLS on the listener: the certificate chain, private key and (for mTLS) the
//! client CA bundle, read from PEM files and re-read when they change.
//!
//! [`TlsAcceptor`] holds the current `rustls::ServerConfig` in an `ArcSwap`:
//! each accepted connection takes the one in force at its accept, so a reload
//! changes what new connections get and never touches open ones. A watcher
//! task (started by [`super::accepted`], ended with its stream) reads the
//! three files every `reload_interval` and compares their contents, not their
//! mtimes: a Kubernetes Secret volume swaps a symlink to a new directory, and
//! the files' own mtimes say nothing about it. A new set of files that does
//! not load (a half-written file, a key that does not match its certificate)
//! is refused with one warning, and the material in force stays; the same
//! files are not tried again until they change once more.
//!
//! The handshake itself happens inside [`super::Connection`], on the
//! connection's own task, within the handshake timeout: the accept loop never
//! waits for a client's ClientHello.
//!
//! Nothing here logs or formats the content of a file: errors say which file
//! and what is wrong with it, since a PEM parser's own message can quote a
//! line of the private key.

use std::{
    fmt, fs, io,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};
use thiserror::Error;
use tokio::task::JoinHandle;
use tokio_rustls::rustls::{
    self, RootCertStore, ServerConfig,
    crypto::{CryptoProvider, ring},
    pki_types::{
        CertificateDer, PrivateKeyDer,
        pem::{self, PemObject},
    },
    server::WebPkiClientVerifier,
    version,
};
use x509_parser::{certificate::X509Certificate, extensions::GeneralName, prelude::FromDer};

/// Where the TLS material is, and how often to look for a new one.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// PEM: the server certificate, then its intermediates.
    pub cert_file: PathBuf,
    /// PEM: the private key of the certificate (PKCS#8, RSA or SEC1).
    pub key_file: PathBuf,
    /// PEM: the CAs a client certificate must chain to. `Some`: every client
    /// must present one (mTLS).
    pub client_ca_file: Option<PathBuf>,
    /// How often the files are read to see whether they changed.
    pub reload_interval: Duration,
}

/// Which of the TLS files an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFile {
    Cert,
    Key,
    ClientCa,
}

impl fmt::Display for TlsFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsFile::Cert => "the certificate chain",
            TlsFile::Key => "the private key",
            TlsFile::ClientCa => "the client CA bundle",
        })
    }
}

/// What is wrong with a TLS file; never quotes its content.
#[derive(Debug, Error)]
pub enum TlsProblem {
    #[error("cannot be read ({0})")]
    Unreadable(#[source] io::Error),
    #[error("holds no PEM {0} block")]
    NoPem(&'static str),
    #[error("is not valid PEM ({0})")]
    BadPem(&'static str),
    #[error("holds a certificate that is not valid X.509 DER")]
    BadCertificate,
    #[error("is not the key of the first certificate of the certificate chain")]
    KeyMismatch,
    #[error("is refused by rustls: {0}")]
    Refused(#[source] rustls::Error),
    #[error("cannot be used to verify client certificates: {0}")]
    Verifier(#[source] rustls::server::VerifierBuilderError),
}

/// A TLS file that cannot be used: which one, where, and why.
#[derive(Debug, Error)]
#[error("{file} {} {problem}", path.display())]
pub struct TlsError {
    pub file: TlsFile,
    pub path: PathBuf,
    #[source]
    pub problem: TlsProblem,
}

/// The contents of the TLS files, read once.
struct Files {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

/// A digest of each file's content: what tells a change apart. A digest, not
/// the bytes, so that no copy of the key outlives the load.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint([[u8; 32]; 3]);

impl Files {
    fn read(settings: &TlsSettings) -> Result<Files, TlsError> {
        let read = |file: TlsFile, path: &Path| {
            fs::read(path).map_err(|source| TlsError {
                file,
                path: path.to_path_buf(),
                problem: TlsProblem::Unreadable(source),
            })
        };
        Ok(Files {
            cert: read(TlsFile::Cert, &settings.cert_file)?,
            key: read(TlsFile::Key, &settings.key_file)?,
            client_ca: match &settings.client_ca_file {
                Some(path) => Some(read(TlsFile::ClientCa, path)?),
                None => None,
            },
        })
    }

    fn fingerprint(&self) -> Fingerprint {
        let digest = |bytes: &[u8]| -> [u8; 32] { Sha256::digest(bytes).into() };
        Fingerprint([
            digest(&self.cert),
            digest(&self.key),
            self.client_ca.as_deref().map(digest).unwrap_or_default(),
        ])
    }
}

/// The one crypto provider of gamegate's TLS (ring), named rather than taken
/// from the process default, which is unset or ambiguous when several
/// providers are compiled in.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// Reads and checks the TLS files and builds the server configuration they
/// make: what `[tls]` validation runs before binding, and every (re)load.
pub fn load_server_config(settings: &TlsSettings) -> Result<Arc<ServerConfig>, TlsError> {
    build(settings, &Files::read(settings)?)
}

fn pem_problem(error: pem::Error) -> TlsProblem {
    // Not the error's own text: some variants carry a line of the file.
    match error {
        pem::Error::Io(error) => TlsProblem::Unreadable(error),
        pem::Error::MissingSectionEnd { .. } => TlsProblem::BadPem("a block has no END line"),
        pem::Error::IllegalSectionStart { .. } => TlsProblem::BadPem("a BEGIN line is malformed"),
        pem::Error::Base64Decode(_) => TlsProblem::BadPem("a block is not valid base64"),
        _ => TlsProblem::BadPem("it cannot be parsed"),
    }
}

fn certificates(
    file: TlsFile,
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let error = |problem| TlsError {
        file,
        path: path.to_path_buf(),
        problem,
    };
    let certificates = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(pem_problem(e)))?;
    if certificates.is_empty() {
        return Err(error(TlsProblem::NoPem("CERTIFICATE")));
    }
    // rustls reads no more of its own chain than the key it holds; a broken
    // certificate would otherwise surface only in each client's handshake.
    for certificate in &certificates {
        if X509Certificate::from_der(certificate).is_err() {
            return Err(error(TlsProblem::BadCertificate));
        }
    }
    Ok(certificates)
}

fn build(settings: &TlsSettings, files: &Files) -> Result<Arc<ServerConfig>, TlsError> {
    let cert_error = |problem| TlsError {
        file: TlsFile::Cert,
        path: settings.cert_file.clone(),
        problem,
    };
    let key_error = |problem| TlsError {
        file: TlsFile::Key,
        path: settings.key_file.clone(),
        problem,
    };
    let chain = certificates(TlsFile::Cert, &settings.cert_file, &files.cert)?;
    let key = PrivateKeyDer::from_pem_slice(&files.key).map_err(|error| {
        key_error(match error {
            pem::Error::NoItemsFound => {
                TlsProblem::NoPem("PRIVATE KEY (PKCS#8), RSA PRIVATE KEY or EC PRIVATE KEY")
            }
            error => pem_problem(error),
        })
    })?;

    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&version::TLS13, &version::TLS12])
        .map_err(|e| cert_error(TlsProblem::Refused(e)))?;
    let builder = match (&settings.client_ca_file, &files.client_ca) {
        (Some(path), Some(bytes)) => {
            let ca_error = |problem| TlsError {
                file: TlsFile::ClientCa,
                path: path.clone(),
                problem,
            };
            let mut roots = RootCertStore::empty();
            for certificate in certificates(TlsFile::ClientCa, path, bytes)? {
                roots
                    .add(certificate)
                    .map_err(|e| ca_error(TlsProblem::Refused(e)))?;
            }
            // Mandatory client authentication: a client without a
            // certificate chaining to these roots fails the handshake.
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| ca_error(TlsProblem::Verifier(e)))?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|error| match error {
            rustls::Error::InconsistentKeys(_) => key_error(TlsProblem::KeyMismatch),
            rustls::Error::InvalidCertificate(_) => cert_error(TlsProblem::Refused(error)),
            error => key_error(TlsProblem::Refused(error)),
        })?;
    // h2 first (gRPC is HTTP/2 only), then HTTP/1.1 for Connect and gRPC-Web
    // callers that speak nothing else (a PHP server's curl); a client that
    // offers neither is refused at the handshake (RFC 7301's
    // no_application_protocol) rather than later.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The listener's TLS: the server configuration in force, reloadable. Cheap
/// to clone; clones share the material.
#[derive(Clone)]
pub struct TlsAcceptor {
    shared: Arc<Shared>,
}

struct Shared {
    settings: TlsSettings,
    current: ArcSwap<ServerConfig>,
    /// What the files held when they were last looked at (loaded or
    /// refused), or why they could not be read: a change from it is what
    /// the watcher acts on, and logs, once.
    last_seen: Mutex<Result<Fingerprint, String>>,
}

impl fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("settings", &self.shared.settings)
            .finish_non_exhaustive()
    }
}

impl TlsAcceptor {
    /// Loads the material; fails when a file is missing, unreadable, not PEM,
    /// or the key does not match the certificate.
    pub fn new(settings: TlsSettings) -> Result<TlsAcceptor, TlsError> {
        let files = Files::read(&settings)?;
        let config = build(&settings, &files)?;
        log_loaded(&settings, "tls material loaded");
        Ok(TlsAcceptor {
            shared: Arc::new(Shared {
                current: ArcSwap::new(config),
                last_seen: Mutex::new(Ok(files.fingerprint())),
                settings,
            }),
        })
    }

    /// The server configuration new connections get.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.shared.current.load_full()
    }

    /// Whether clients must present a certificate (a client CA is set).
    pub fn requires_client_certificates(&self) -> bool {
        self.shared.settings.client_ca_file.is_some()
    }

    /// Re-reads the files now, changed or not (SIGHUP). New connections get
    /// the new material (logged at info); when it does not load, the material
    /// in force stays and the error, which names the file and never its
    /// content, is returned for the caller to log: nothing is logged here,
    /// so that a refusal is one line. Reads the files synchronously: they are
    /// a few KiB on a local or memory-backed volume.
    pub fn reload(&self) -> Result<(), TlsError> {
        self.shared.load(true)
    }

    /// Spawns the task that reloads the material when the files change; it
    /// ends when the returned guard is dropped.
    pub(super) fn watch(&self) -> WatchGuard {
        let shared = self.shared.clone();
        let interval = shared.settings.reload_interval;
        WatchGuard(tokio::spawn(async move {
            let mut ticks =
                tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let shared = shared.clone();
                // File reads block; off the runtime's workers.
                let _ = tokio::task::spawn_blocking(move || shared.load(false)).await;
            }
        }))
    }
}

impl Shared {
    /// Reads the files and, when they changed since last seen (or `force`),
    /// loads them. Logs a new material; logs a refusal only when not
    /// `force`d (the watcher's, once per change; `reload`'s caller logs its
    /// own).
    fn load(&self, force: bool) -> Result<(), TlsError> {
        let mut last_seen = self
            .last_seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let files = match Files::read(&self.settings) {
            Ok(files) => files,
            Err(error) => {
                let seen = Err(error.to_string());
                if !force && *last_seen != seen {
                    tracing::warn!(
                        file = %error.path.display(),
                        %error,
                        "tls files cannot be read; keeping the certificate in force"
                    );
                }
                *last_seen = seen;
                return Err(error);
            }
        };
        let fingerprint = files.fingerprint();
        if !force && last_seen.as_ref() == Ok(&fingerprint) {
            return Ok(());
        }
        *last_seen = Ok(fingerprint);
        match build(&self.settings, &files) {
            Ok(config) => {
                self.current.store(config);
                log_loaded(
                    &self.settings,
                    "tls material reloaded: new connections use it",
                );
                Ok(())
            }
            Err(error) => {
                if !force {
                    tracing::warn!(
                        file = %error.path.display(),
                        %error,
                        "new tls files refused; keeping the certificate in force"
                    );
                }
                Err(error)
            }
        }
    }
}

fn log_loaded(settings: &TlsSettings, message: &'static str) {
    tracing::info!(
        cert_file = %settings.cert_file.display(),
        client_ca_file = settings.client_ca_file.as_ref().map(|p| p.display().to_string()),
        "{message}"
    );
}

/// Ends the watcher task when dropped (with the stream of connections).
pub(super) struct WatchGuard(JoinHandle<()>);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The DNS and URI subject alternative names of a (verified) client
/// certificate: what identifies the calling service, as in
/// `lobby.game.internal` or `spiffe://cluster/ns/game/sa/lobby`.
pub(super) fn certificate_names(certificate: &CertificateDer<'_>) -> Vec<String> {
    let Ok((_, certificate)) = X509Certificate::from_der(certificate) else {
        return Vec::new();
    };
    let Ok(Some(names)) = certificate.subject_alternative_name() else {
        return Vec::new();
    };
    names
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(name) | GeneralName::URI(name) => Some(name.to_string()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use futures::StreamExt;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::{TcpListener, TcpStream},
    };
    use tokio_rustls::{
        TlsConnector,
        rustls::{ClientConfig, pki_types::ServerName},
    };
    use tonic::transport::server::Connected;

    use super::*;
    use crate::net::{Connection, ConnectionLimits, accepted};

    struct Ca {
        issuer: Issuer<'static, KeyPair>,
        pem: String,
    }

    impl Ca {
        fn new(name: &str) -> Ca {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.distinguished_name.push(DnType::CommonName, name);
            let pem = params.self_signed(&key).unwrap().pem();
            Ca {
                issuer: Issuer::new(params, key),
                pem,
            }
        }

        /// A leaf certificate and key, PEM.
        fn leaf(&self, common_name: &str, names: &[&str]) -> (String, String) {
            let key = KeyPair::generate().unwrap();
            let dns: Vec<String> = names
                .iter()
                .filter(|name| !name.contains("://"))
                .map(|name| name.to_string())
                .collect();
            let mut params = CertificateParams::new(dns).unwrap();
            for uri in names.iter().filter(|name| name.contains("://")) {
                params
                    .subject_alt_names
                    .push(SanType::URI(uri.to_string().try_into().unwrap()));
            }
            params
                .distinguished_name
                .push(DnType::CommonName, common_name);
            let cert = params.signed_by(&key, &self.issuer).unwrap();
            (cert.pem(), key.serialize_pem())
        }
    }

    /// A CA, a server certificate for localhost by it, the files in a
    /// temporary directory.
    struct Pki {
        dir: tempfile::TempDir,
        ca: Ca,
    }

    impl Pki {
        fn new() -> Pki {
            let pki = Pki {
                dir: tempfile::tempdir().unwrap(),
                ca: Ca::new("test ca"),
            };
            pki.write_server("server one");
            std::fs::write(pki.path("ca.pem"), &pki.ca.pem).unwrap();
            pki
        }

        fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }

        fn write_server(&self, common_name: &str) {
            let (cert, key) = self.ca.leaf(common_name, &["localhost"]);
            std::fs::write(self.path("tls.crt"), cert).unwrap();
            std::fs::write(self.path("tls.key"), key).unwrap();
        }

        fn settings(&self, mtls: bool) -> TlsSettings {
            TlsSettings {
                cert_file: self.path("tls.crt"),
                key_file: self.path("tls.key"),
                client_ca_file: mtls.then(|| self.path("ca.pem")),
                reload_interval: Duration::from_secs(3600),
            }
        }

        fn client(&self, identity: Option<(String, String)>) -> TlsConnector {
            let mut roots = RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_slice(self.ca.pem.as_bytes()).unwrap())
                .unwrap();
            let builder = ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots);
            let config = match identity {
                Some((cert, key)) => builder
                    .with_client_auth_cert(
                        vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                        PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
                    )
                    .unwrap(),
                None => builder.with_no_client_auth(),
            };
            TlsConnector::from(Arc::new(config))
        }
    }

    async fn listen(
        tls: Option<TlsAcceptor>,
    ) -> (
        SocketAddr,
        std::pin::Pin<Box<impl futures::Stream<Item = io::Result<Connection>>>>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = ConnectionLimits {
            max_connections: 16,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        };
        (addr, Box::pin(accepted(listener, limits, tls)))
    }

    /// Connects with `connector`, sends `hello` and keeps the connection
    /// open until the server closes it.
    fn client(addr: SocketAddr, connector: TlsConnector) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let name = ServerName::try_from("localhost").unwrap();
            let Ok(mut tls) = connector.connect(name, tcp).await else {
                return;
            };
            if tls.write_all(b"hello").await.is_ok() {
                let _ = tls.flush().await;
                let mut rest = Vec::new();
                let _ = tls.read_to_end(&mut rest).await;
            }
        })
    }

    #[tokio::test]
    async fn the_names_of_a_verified_client_certificate_reach_the_connection_info() {
        let pki = Pki::new();
        let acceptor = TlsAcceptor::new(pki.settings(true)).unwrap();
        let (addr, mut connections) = listen(Some(acceptor)).await;
        let identity = pki.ca.leaf(
            "lobby",
            &["lobby.game.internal", "spiffe://cluster/ns/game/sa/lobby"],
        );
        let client = client(addr, pki.client(Some(identity)));

        let mut connection = connections.next().await.unwrap().unwrap();
        // What tonic takes at once: before the handshake.
        let info = connection.connect_info();
        assert!(info.client_certificate_names().is_none());
        let mut hello = [0; 5];
        connection.read_exact(&mut hello).await.unwrap();
        assert_eq!(&hello, b"hello", "the bytes are decrypted");
        assert_eq!(
            info.client_certificate_names().as_deref(),
            Some(
                &[
                    "lobby.game.internal".to_string(),
                    "spiffe://cluster/ns/game/sa/lobby".to_string()
                ][..]
            )
        );
        drop(connection);
        client.await.unwrap();
    }

    #[tokio::test]
    async fn without_mtls_or_without_tls_there_are_no_names() {
        let pki = Pki::new();
        let acceptor = TlsAcceptor::new(pki.settings(false)).unwrap();
        let (addr, mut connections) = listen(Some(acceptor)).await;
        let client_task = client(addr, pki.client(None));
        let mut connection = connections.next().await.unwrap().unwrap();
        let mut hello = [0; 5];
        connection.read_exact(&mut hello).await.unwrap();
        assert!(
            connection
                .connect_info()
                .client_certificate_names()
                .is_none()
        );
        drop(connection);
        client_task.await.unwrap();

        let (addr, mut connections) = listen(None).await;
        let mut plain = TcpStream::connect(addr).await.unwrap();
        plain.write_all(b"hello").await.unwrap();
        let mut connection = connections.next().await.unwrap().unwrap();
        connection.read_exact(&mut hello).await.unwrap();
        assert!(
            connection
                .connect_info()
                .client_certificate_names()
                .is_none()
        );
    }

    #[tokio::test]
    async fn mtls_refuses_a_client_without_a_certificate_or_with_one_of_another_ca() {
        let pki = Pki::new();
        let acceptor = TlsAcceptor::new(pki.settings(true)).unwrap();
        let (addr, mut connections) = listen(Some(acceptor)).await;
        let stranger = Ca::new("another ca").leaf("lobby", &["lobby.game.internal"]);
        for identity in [None, Some(stranger)] {
            let client = client(addr, pki.client(identity));
            let mut connection = connections.next().await.unwrap().unwrap();
            let info = connection.connect_info();
            let mut byte = [0; 1];
            assert!(connection.read(&mut byte).await.is_err());
            assert!(info.client_certificate_names().is_none());
            drop(connection);
            client.await.unwrap();
        }
    }

    #[test]
    fn reload_swaps_in_new_material_and_keeps_the_old_when_the_new_is_invalid() {
        let pki = Pki::new();
        let acceptor = TlsAcceptor::new(pki.settings(true)).unwrap();
        let first = acceptor.current();

        pki.write_server("server two");
        acceptor.reload().unwrap();
        let second = acceptor.current();
        assert!(!Arc::ptr_eq(&first, &second));

        std::fs::write(pki.path("tls.crt"), "not a certificate").unwrap();
        let error = acceptor.reload().unwrap_err();
        assert_eq!(error.file, TlsFile::Cert);
        assert!(Arc::ptr_eq(&second, &acceptor.current()));

        // Unchanged files are not loaded again by the watcher's check…
        pki.write_server("server three");
        acceptor.shared.load(false).unwrap();
        let third = acceptor.current();
        assert!(!Arc::ptr_eq(&second, &third));
        acceptor.shared.load(false).unwrap();
        assert!(Arc::ptr_eq(&third, &acceptor.current()));

        // …and a key that does not match its certificate is refused.
        let (_, other_key) = pki.ca.leaf("other", &["localhost"]);
        std::fs::write(pki.path("tls.key"), other_key).unwrap();
        let error = acceptor.shared.load(false).unwrap_err();
        assert_eq!(error.file, TlsFile::Key);
        assert!(matches!(error.problem, TlsProblem::KeyMismatch), "{error}");
        assert!(Arc::ptr_eq(&third, &acceptor.current()));
    }
}
