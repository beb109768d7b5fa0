//! TLS and mTLS on gamegate's listener, with certificates made here by rcgen:
//! calls over TLS (and a plaintext client refused), client certificates
//! required and checked against the client CA, certificate files replaced
//! the way Kubernetes does it (a symlink swapped) and picked up by new
//! connections, an invalid replacement ignored, and a client that never says
//! hello held to the handshake timeout without holding anyone else up.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use gamegate::{
    app::RunningGateway,
    config::{Config, TlsConfig},
    proto::dawanka_service_client::DawankaServiceClient,
    sandbox::{self, RunningSandbox, SandboxConfig},
};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tokio::{
    io::AsyncReadExt,
    net::TcpStream,
    time::{Instant, sleep, timeout},
};
use tokio_rustls::{
    TlsConnector,
    rustls::{
        ClientConfig, RootCertStore,
        crypto::ring,
        pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject},
    },
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::common::{loopback, super_player_dawanka_info};

/// A CA that signs leaf certificates.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

/// A certificate and its key, PEM.
struct Leaf {
    cert: String,
    key: String,
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

    fn leaf(&self, common_name: &str, names: &[&str]) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    fn server(&self, common_name: &str) -> Leaf {
        self.leaf(common_name, &["localhost", "127.0.0.1"])
    }
}

/// The server's files as a Kubernetes Secret volume lays them out:
/// `tls.crt -> ..data/tls.crt`, `..data -> ..<version>`; a new version is a
/// new directory and `..data` swapped to it in one rename.
struct SecretVolume {
    dir: tempfile::TempDir,
    versions: usize,
}

impl SecretVolume {
    fn new(server: &Leaf, client_ca: &str) -> SecretVolume {
        let mut volume = SecretVolume {
            dir: tempfile::tempdir().unwrap(),
            versions: 0,
        };
        volume.publish(&server.cert, &server.key, client_ca);
        for name in ["tls.crt", "tls.key", "ca.crt"] {
            std::os::unix::fs::symlink(Path::new("..data").join(name), volume.path(name)).unwrap();
        }
        volume
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn publish(&mut self, cert: &str, key: &str, client_ca: &str) {
        self.versions += 1;
        let version = format!("..v{}", self.versions);
        let dir = self.path(&version);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("tls.crt"), cert).unwrap();
        std::fs::write(dir.join("tls.key"), key).unwrap();
        std::fs::write(dir.join("ca.crt"), client_ca).unwrap();
        let staged = self.path("..data_tmp");
        std::os::unix::fs::symlink(&version, &staged).unwrap();
        std::fs::rename(&staged, self.path("..data")).unwrap();
    }

    fn config(&self, mtls: bool, reload_interval_ms: u64) -> TlsConfig {
        TlsConfig {
            cert_file: self.path("tls.crt"),
            key_file: self.path("tls.key"),
            client_ca_file: mtls.then(|| self.path("ca.crt")),
            reload_interval_ms,
        }
    }
}

struct TlsGateway {
    _sandbox: RunningSandbox,
    gateway: RunningGateway,
    ca: Ca,
}

impl TlsGateway {
    async fn start(ca: Ca, tls: TlsConfig, customize: impl FnOnce(&mut Config)) -> TlsGateway {
        let sandbox = sandbox::spawn(SandboxConfig::demo(), loopback())
            .await
            .expect("sandbox starts");
        let mut config = Config::demo(loopback(), &sandbox.base_url());
        config.tls = Some(tls);
        customize(&mut config);
        config.validate().expect("the configuration is valid");
        let gateway = RunningGateway::spawn(config)
            .await
            .expect("gamegate starts");
        TlsGateway {
            _sandbox: sandbox,
            gateway,
            ca,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.gateway.addr
    }

    /// A tonic endpoint over TLS, trusting the test CA, with `identity` as
    /// its client certificate.
    fn endpoint(&self, identity: Option<&Leaf>) -> Endpoint {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca.pem))
            .domain_name("localhost");
        if let Some(leaf) = identity {
            tls = tls.identity(Identity::from_pem(&leaf.cert, &leaf.key));
        }
        Endpoint::from_shared(format!("https://{}", self.addr()))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(5))
    }

    /// One RPC and the health check on a new connection.
    async fn call(&self, identity: Option<&Leaf>) -> Result<(), String> {
        let channel = self
            .endpoint(identity)
            .connect()
            .await
            .map_err(|e| format!("connect: {e:?}"))?;
        rpc_and_health(channel).await
    }

    /// The server certificate a new TLS connection is given.
    async fn served_certificate(&self, identity: &Leaf) -> CertificateDer<'static> {
        let tcp = TcpStream::connect(self.addr()).await.unwrap();
        let stream = connector(&self.ca.pem, Some(identity))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .expect("the tls handshake succeeds");
        stream.get_ref().1.peer_certificates().unwrap()[0].clone()
    }
}

async fn rpc_and_health(channel: Channel) -> Result<(), String> {
    DawankaServiceClient::new(channel.clone())
        .get_dawanka_info(super_player_dawanka_info())
        .await
        .map_err(|status| format!("rpc: {status:?}"))?;
    let health = HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .map_err(|status| format!("health: {status:?}"))?;
    assert_eq!(health.into_inner().status(), ServingStatus::Serving);
    Ok(())
}

/// A rustls client trusting `ca_pem`, for what tonic does not show (the
/// server's certificate).
fn connector(ca_pem: &str, identity: Option<&Leaf>) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let builder = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match identity {
        Some(leaf) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(leaf.cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(leaf.key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    TlsConnector::from(Arc::new(config))
}

fn der(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

#[tokio::test]
async fn calls_over_tls_are_served_and_a_plaintext_client_is_refused() {
    let ca = Ca::new("gamegate test ca");
    let volume = SecretVolume::new(&ca.server("server"), &ca.pem);
    let gateway = TlsGateway::start(ca, volume.config(false, 5_000), |_| {}).await;

    gateway.call(None).await.expect("a call over tls");

    let plaintext = async {
        let channel = Channel::from_shared(format!("http://{}", gateway.addr()))
            .unwrap()
            .timeout(Duration::from_secs(5))
            .connect()
            .await
            .map_err(|e| format!("connect: {e}"))?;
        rpc_and_health(channel).await
    };
    let error = plaintext
        .await
        .expect_err("plaintext h2 against the tls port");
    println!("plaintext client: {error}");

    // The TLS client still works after the refused one.
    gateway.call(None).await.expect("a call over tls");
}

#[tokio::test]
async fn mtls_serves_a_client_with_a_certificate_of_the_client_ca_and_refuses_the_others() {
    let ca = Ca::new("gamegate test ca");
    let volume = SecretVolume::new(&ca.server("server"), &ca.pem);
    let lobby = ca.leaf("lobby", &["lobby.game.internal"]);
    let stranger = Ca::new("another ca").leaf("lobby", &["lobby.game.internal"]);
    let gateway = TlsGateway::start(ca, volume.config(true, 5_000), |_| {}).await;

    gateway
        .call(Some(&lobby))
        .await
        .expect("a client with a certificate of the client ca");
    let error = gateway
        .call(None)
        .await
        .expect_err("a client without a certificate");
    assert!(error.contains("CertificateRequired"), "{error}");
    let error = gateway
        .call(Some(&stranger))
        .await
        .expect_err("a client with a certificate of another ca");
    assert!(error.contains("UnknownCA"), "{error}");

    // Refused at the handshake: the server sends an alert and closes, before
    // any HTTP/2 byte.
    let tcp = TcpStream::connect(gateway.addr()).await.unwrap();
    let handshake = connector(&gateway.ca.pem, None)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await;
    if let Ok(mut stream) = handshake {
        // TLS 1.3: the client's side completes first; the server's alert
        // arrives on the first read.
        let mut byte = [0; 1];
        let read = timeout(Duration::from_secs(5), stream.read(&mut byte))
            .await
            .expect("the server answers the handshake at once");
        assert!(
            read.is_err(),
            "a client without a certificate got through: {read:?}"
        );
    }
}

#[tokio::test]
async fn a_replaced_certificate_reaches_new_connections_and_an_invalid_one_is_ignored() {
    let ca = Ca::new("gamegate test ca");
    let first = ca.server("server one");
    let mut volume = SecretVolume::new(&first, &ca.pem);
    let lobby = ca.leaf("lobby", &["lobby.game.internal"]);
    let gateway = TlsGateway::start(ca, volume.config(true, 100), |_| {}).await;
    assert_eq!(gateway.served_certificate(&lobby).await, der(&first.cert));

    // A renewed certificate (a new key, CN and serial), swapped in at once.
    let second = gateway.ca.server("server two");
    volume.publish(&second.cert, &second.key, &gateway.ca.pem);
    let deadline = Instant::now() + Duration::from_secs(10);
    while gateway.served_certificate(&lobby).await != der(&second.cert) {
        assert!(
            Instant::now() < deadline,
            "the new certificate is not served 10 s after the swap"
        );
        sleep(Duration::from_millis(50)).await;
    }
    gateway
        .call(Some(&lobby))
        .await
        .expect("a call with the new certificate");

    // An invalid replacement: a certificate that is not one, then a key of
    // another certificate. The one in force stays.
    let third = gateway.ca.server("server three");
    volume.publish("not a certificate", &third.key, &gateway.ca.pem);
    sleep(Duration::from_millis(500)).await;
    assert_eq!(gateway.served_certificate(&lobby).await, der(&second.cert));
    volume.publish(&second.cert, &third.key, &gateway.ca.pem);
    sleep(Duration::from_millis(500)).await;
    assert_eq!(gateway.served_certificate(&lobby).await, der(&second.cert));
    gateway
        .call(Some(&lobby))
        .await
        .expect("a call while the files are invalid");

    // Fixed: picked up again.
    volume.publish(&third.cert, &third.key, &gateway.ca.pem);
    let deadline = Instant::now() + Duration::from_secs(10);
    while gateway.served_certificate(&lobby).await != der(&third.cert) {
        assert!(Instant::now() < deadline, "the fixed files are not served");
        sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn reload_on_demand_applies_new_files_at_once() {
    let ca = Ca::new("gamegate test ca");
    let first = ca.server("server one");
    let mut volume = SecretVolume::new(&first, &ca.pem);
    let lobby = ca.leaf("lobby", &["lobby.game.internal"]);
    // The watcher would not look for ten minutes.
    let gateway = TlsGateway::start(ca, volume.config(true, 600_000), |_| {}).await;
    let second = gateway.ca.server("server two");
    volume.publish(&second.cert, &second.key, &gateway.ca.pem);
    assert_eq!(gateway.served_certificate(&lobby).await, der(&first.cert));

    let tls = gateway.gateway.tls.as_ref().expect("the gateway has tls");
    tls.reload().expect("the new files load");
    assert_eq!(gateway.served_certificate(&lobby).await, der(&second.cert));

    volume.publish("garbage", &second.key, &gateway.ca.pem);
    let error = tls.reload().expect_err("an invalid certificate is refused");
    assert!(error.to_string().contains("tls.crt"), "{error}");
    assert_eq!(gateway.served_certificate(&lobby).await, der(&second.cert));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_does_not_hold_up_others_and_is_closed_at_the_handshake_timeout() {
    const HANDSHAKE_TIMEOUT: Duration = Duration::from_millis(1_500);
    let ca = Ca::new("gamegate test ca");
    let volume = SecretVolume::new(&ca.server("server"), &ca.pem);
    let lobby = ca.leaf("lobby", &["lobby.game.internal"]);
    let gateway = TlsGateway::start(ca, volume.config(true, 5_000), |config| {
        config.listener.handshake_timeout_ms = HANDSHAKE_TIMEOUT.as_millis() as u64;
    })
    .await;

    // Connected, and never a ClientHello.
    let opened = Instant::now();
    let mut silent = TcpStream::connect(gateway.addr()).await.unwrap();
    sleep(Duration::from_millis(100)).await;
    timeout(HANDSHAKE_TIMEOUT / 2, gateway.call(Some(&lobby)))
        .await
        .expect("a tls client is served while a silent one waits")
        .expect("the call succeeds");

    let mut byte = [0; 1];
    let read = timeout(HANDSHAKE_TIMEOUT * 4, silent.read(&mut byte))
        .await
        .expect("the silent connection is closed");
    let closed_after = opened.elapsed();
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "the server sent bytes to a client that sent none: {read:?}"
    );
    assert!(
        closed_after >= HANDSHAKE_TIMEOUT - Duration::from_millis(100),
        "closed before the handshake timeout: {closed_after:?}"
    );
}

/// Over mTLS a caller is known by its certificate's name: the match server
/// by its URI SAN, with no token; the lobby by its token on the same mTLS
/// listener. A certificate of no caller is unauthenticated, and a token and
/// a certificate that name two callers are refused.
#[tokio::test]
async fn callers_are_known_by_their_client_certificate_names_mapped_to_their_apps() {
    use gamegate::{config::Caller, proto::storage_service_client::StorageServiceClient};
    use secrecy::SecretString;
    use tonic::{Code, Request};

    use crate::common::{alice_stores, demo, expect_error};

    const MATCH_SAN: &str = "spiffe://cluster/ns/game/sa/match-server";
    const LOBBY_TOKEN: &str = "lobby-token-0123456789";
    let ca = Ca::new("gamegate test ca");
    let volume = SecretVolume::new(&ca.server("server"), &ca.pem);
    let match_server = ca.leaf("match-server", &[MATCH_SAN]);
    let nobody = ca.leaf("nobody", &["nobody.game.internal"]);
    let gateway = TlsGateway::start(ca, volume.config(true, 5_000), |config| {
        config.callers = vec![
            Caller {
                name: "match-server".into(),
                token: SecretString::from(""),
                token_file: None,
                certificate_san: Some(MATCH_SAN.into()),
                // Storage only: the dawanka app is not its.
                apps: vec![demo::MINIGAME_APPID.into()],
                receive_session_keys: false,
            },
            Caller {
                name: "lobby".into(),
                token: SecretString::from(LOBBY_TOKEN),
                token_file: None,
                certificate_san: None,
                apps: vec!["*".into()],
                receive_session_keys: false,
            },
        ];
    })
    .await;
    let storage = |identity: Option<&Leaf>, token: Option<&str>| {
        let endpoint = gateway.endpoint(identity);
        let token = token.map(str::to_string);
        async move {
            let channel = endpoint.connect().await.expect("the handshake succeeds");
            let mut request = Request::new(alice_stores("score", "7"));
            if let Some(token) = token {
                request
                    .metadata_mut()
                    .insert("authorization", format!("Bearer {token}").parse().unwrap());
            }
            StorageServiceClient::new(channel)
                .set_user_storage(request)
                .await
        }
    };

    storage(Some(&match_server), None)
        .await
        .expect("the match server, by its certificate alone");
    let dawanka = async {
        let channel = gateway
            .endpoint(Some(&match_server))
            .connect()
            .await
            .unwrap();
        DawankaServiceClient::new(channel)
            .get_dawanka_info(super_player_dawanka_info())
            .await
    };
    expect_error(dawanka.await, Code::PermissionDenied, "APP_NOT_ALLOWED");
    storage(Some(&nobody), Some(LOBBY_TOKEN))
        .await
        .expect("the lobby by its token, its certificate naming no caller");
    expect_error(
        storage(Some(&nobody), None).await,
        Code::Unauthenticated,
        "CALLER_UNAUTHENTICATED",
    );
    expect_error(
        storage(Some(&match_server), Some(LOBBY_TOKEN)).await,
        Code::Unauthenticated,
        "CALLER_UNAUTHENTICATED",
    );
}
