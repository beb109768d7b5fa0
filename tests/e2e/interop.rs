//! gamegate's own HTTP/1.1 client against real third-party servers, over
//! real sockets: nginx (Debian's `nginx`) as a platform's front, proxying to
//! the sandbox, and tinyproxy (Debian's `tinyproxy`) as an outbound forward
//! proxy. Each test writes its server's configuration into a temporary
//! directory, starts it in the foreground on a free 127.0.0.1 port, and kills
//! it when done (a drop guard, whatever the outcome).
//!
//! What is checked, by the servers' own logs where it is theirs to tell:
//! keep-alive reuse (nginx's `$connection`), chunked answers, `Connection:
//! close` answers, nginx closing idle connections (the next call succeeds and
//! the pool's sweep has closed the CLOSE_WAIT socket), TLS with a private CA
//! (`ca_file`) and mTLS (`client_cert_file`), http through a proxy in absolute
//! form, https through a `CONNECT` tunnel, and a wrong proxy password.
//!
//! A missing binary fails the test with what to install: these tests never
//! pass by not running.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use gamegate::{
    app::RunningGateway,
    config::{Config, UpstreamSettings},
    proto::dawanka_service_client::DawankaServiceClient,
    sandbox::{self, RunningSandbox, SandboxConfig},
};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tonic::{Code, transport::Channel};

use crate::common::{demo, expect_error, loopback, super_player_dawanka_info};

/// The longest any of these tests may take.
const TEST_TIMEOUT: Duration = Duration::from_secs(60);
const INFO_PATH: &str = "/v3/user/get_dawanka_info";

/// The path of `binary` (searched in PATH, then the sbin directories, where
/// Debian puts nginx), or a failure saying which package to install.
fn require(binary: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(binary))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{binary}` is not installed: the interoperability tests (tests/e2e/interop.rs) \
                 run against it. Install the Debian package: apt-get install {package} \
                 (.ci/run installs it)"
            )
        })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server process of a test, killed (and reaped) when dropped.
struct Daemon {
    child: Child,
    /// Its log, shown when it fails to start.
    log: PathBuf,
}

impl Daemon {
    /// Runs `binary` with `args` in `dir` (its output to `<name>.out` there),
    /// and waits (5 s at most) for it to accept connections on `port`.
    fn start(
        name: &'static str,
        binary: &Path,
        args: &[&str],
        dir: &Path,
        port: u16,
        log: PathBuf,
    ) -> Daemon {
        let out = std::fs::File::create(dir.join(format!("{name}.out"))).unwrap();
        let child = Command::new(binary)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("{name} cannot be started: {e}"));
        let mut daemon = Daemon { child, log };
        let until = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return daemon;
            }
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!(
                    "{name} exited at start ({status}): {}\n{}",
                    read(&dir.join(format!("{name}.out"))),
                    read(&daemon.log)
                );
            }
            assert!(
                std::time::Instant::now() < until,
                "{name} does not listen on 127.0.0.1:{port} after 5 s: {}",
                read(&daemon.log)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// What the nginx in front of the sandbox does.
#[derive(Default)]
struct Front {
    /// `keepalive_timeout` of the server (nginx's default: 75s).
    keepalive_timeout: Option<&'static str>,
    /// Rewrites answer bodies (a no-op substitution): the length is then
    /// unknown when the head is sent, and the answer is chunked.
    chunked: bool,
    /// TLS with these files: certificate, key, and the CA client certificates
    /// must chain to (mTLS) if any.
    tls: Option<(PathBuf, PathBuf, Option<PathBuf>)>,
}

/// nginx in front of the sandbox, on 127.0.0.1.
struct Nginx {
    port: u16,
    access_log: PathBuf,
    _daemon: Daemon,
}

impl Nginx {
    fn start(dir: &Path, sandbox: SocketAddr, front: Front) -> Nginx {
        let binary = require("nginx", "nginx");
        let port = free_port();
        let d = dir.display();
        let (listen, tls) = match &front.tls {
            None => ("", String::new()),
            Some((cert, key, client_ca)) => (
                " ssl",
                format!(
                    "ssl_certificate {};\n    ssl_certificate_key {};\n    {}",
                    cert.display(),
                    key.display(),
                    client_ca
                        .as_ref()
                        .map(|ca| format!(
                            "ssl_client_certificate {};\n    ssl_verify_client on;",
                            ca.display()
                        ))
                        .unwrap_or_default()
                ),
            ),
        };
        let keepalive = front.keepalive_timeout.unwrap_or("75s");
        let chunked = if front.chunked {
            "sub_filter_types *;\n      sub_filter '\"ret\"' '\"ret\"';\n      sub_filter_once off;"
        } else {
            ""
        };
        let conf = format!(
            r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
  log_format interop '$connection $connection_requests $request_method $uri $status '
                     'te=$sent_http_transfer_encoding conn=$sent_http_connection '
                     'tls=$ssl_protocol client=$ssl_client_verify';
  access_log {d}/access.log interop;
  client_body_temp_path {d}/client_body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  upstream sandbox {{ server {sandbox}; keepalive 4; }}
  server {{
    listen 127.0.0.1:{port}{listen};
    {tls}
    keepalive_timeout {keepalive};
    location / {{
      proxy_pass http://sandbox;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_buffering off;
      chunked_transfer_encoding on;
      {chunked}
    }}
  }}
}}
"#
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let error_log = dir.join("error.log");
        let daemon = Daemon::start(
            "nginx",
            &binary,
            &[
                "-p",
                &d.to_string(),
                "-e",
                &error_log.display().to_string(),
                "-c",
                &conf_path.display().to_string(),
            ],
            dir,
            port,
            error_log,
        );
        Nginx {
            port,
            access_log: dir.join("access.log"),
            _daemon: daemon,
        }
    }

    /// The access log's lines for the platform endpoint called. nginx
    /// writes a line once it is done with the request, which may be a moment
    /// after gamegate had the answer: the log is read again until it holds
    /// `expected` lines (1 s at most), then returned as it is.
    fn calls(&self, expected: usize) -> Vec<Logged> {
        let until = std::time::Instant::now() + Duration::from_secs(1);
        loop {
            let calls: Vec<Logged> = read(&self.access_log)
                .lines()
                .filter(|line| line.contains(INFO_PATH))
                .map(Logged::parse)
                .collect();
            if calls.len() >= expected || std::time::Instant::now() >= until {
                return calls;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// One line of nginx's access log (the `interop` format).
#[derive(Debug)]
struct Logged {
    connection: u64,
    request_on_connection: u64,
    status: u16,
    line: String,
}

impl Logged {
    fn parse(line: &str) -> Logged {
        let fields: Vec<&str> = line.split(' ').collect();
        Logged {
            connection: fields[0].parse().unwrap(),
            request_on_connection: fields[1].parse().unwrap(),
            status: fields[4].parse().unwrap(),
            line: line.to_string(),
        }
    }

    fn distinct_connections(calls: &[Logged]) -> usize {
        let mut connections: Vec<u64> = calls.iter().map(|call| call.connection).collect();
        connections.sort_unstable();
        connections.dedup();
        connections.len()
    }
}

/// tinyproxy, in the foreground, with Basic credentials `user:pass`, allowing
/// `CONNECT` to `connect_port` only.
struct Tinyproxy {
    port: u16,
    log: PathBuf,
    _daemon: Daemon,
}

impl Tinyproxy {
    fn start(dir: &Path, connect_port: u16) -> Tinyproxy {
        let binary = require("tinyproxy", "tinyproxy");
        let port = free_port();
        let d = dir.display();
        let conf = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 16\n\
             LogFile \"{d}/tinyproxy.log\"\nLogLevel Info\nPidFile \"{d}/tinyproxy.pid\"\n\
             Allow 127.0.0.1\nBasicAuth user pass\nConnectPort {connect_port}\n\
             DisableViaHeader Yes\n"
        );
        let conf_path = dir.join("tinyproxy.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let log = dir.join("tinyproxy.log");
        let daemon = Daemon::start(
            "tinyproxy",
            &binary,
            &["-d", "-c", &conf_path.display().to_string()],
            dir,
            port,
            log.clone(),
        );
        Tinyproxy {
            port,
            log,
            _daemon: daemon,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        read(&self.log)
    }
}

/// A CA, a server certificate for 127.0.0.1 and localhost, a client
/// certificate, and their files.
struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "gamegate interop test ca");
        let ca_pem = params.self_signed(&ca_key).unwrap().pem();
        let issuer = Issuer::new(params, ca_key);
        let leaf = |names: Vec<String>, common_name: &str| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(names).unwrap();
            params
                .distinguished_name
                .push(DnType::CommonName, common_name);
            let cert = params.signed_by(&key, &issuer).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (server_pem, server_key) =
            leaf(vec!["127.0.0.1".into(), "localhost".into()], "platform");
        let (client_pem, client_key) = leaf(vec!["gamegate.test".into()], "gamegate");
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        Pki {
            ca: write("ca.pem", &ca_pem),
            server_cert: write("server.pem", &server_pem),
            server_key: write("server.key", &server_key),
            client_cert: write("client.pem", &client_pem),
            client_key: write("client.key", &client_key),
        }
    }
}

/// The sandbox, and a gamegate whose qq_openapi platform is at `openapi_base`
/// with `upstream` settings (the other platforms at the sandbox itself).
struct Stack {
    _sandbox: RunningSandbox,
    gateway: Option<RunningGateway>,
    dawanka: DawankaServiceClient<Channel>,
}

async fn sandbox() -> RunningSandbox {
    sandbox::spawn(SandboxConfig::demo(), loopback())
        .await
        .expect("sandbox starts")
}

impl Stack {
    async fn start(
        sandbox: RunningSandbox,
        openapi_base: &str,
        upstream: UpstreamSettings,
    ) -> Stack {
        let mut config = Config::demo(loopback(), &sandbox.base_url());
        let openapi = config.qq_openapi.as_mut().unwrap();
        openapi.base_url = openapi_base.to_string();
        openapi.upstream = upstream;
        let gateway = RunningGateway::spawn(config)
            .await
            .expect("gamegate starts");
        let channel = Channel::from_shared(gateway.endpoint())
            .unwrap()
            .connect()
            .await
            .expect("gamegate accepts connections");
        Stack {
            _sandbox: sandbox,
            gateway: Some(gateway),
            dawanka: DawankaServiceClient::new(channel),
        }
    }

    /// One GetDawankaInfo call, which must succeed.
    async fn call(&mut self) {
        let answer = self
            .dawanka
            .get_dawanka_info(super_player_dawanka_info())
            .await
            .unwrap_or_else(|status| panic!("the call failed: {status:?}"))
            .into_inner();
        assert!(answer.score > 0, "the super player's score: {answer:?}");
    }

    async fn stop(mut self) {
        if let Some(gateway) = self.gateway.take() {
            gateway.shutdown().await.unwrap();
        }
    }
}

/// Settings that take no proxy from the environment (CI machines may set
/// one): each test says which proxy it means.
fn direct() -> UpstreamSettings {
    UpstreamSettings {
        proxy: Some(String::new()),
        ..UpstreamSettings::default()
    }
}

async fn bounded(test: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(TEST_TIMEOUT, test)
        .await
        .expect("the test finishes within its time");
}

/// The client sockets of this process's namespace to `port` on 127.0.0.1,
/// by TCP state (`/proc/net/tcp`: 01 ESTABLISHED, 08 CLOSE_WAIT).
fn sockets_to(port: u16) -> Vec<String> {
    read(Path::new("/proc/net/tcp"))
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let remote_port = u16::from_str_radix(fields.get(2)?.rsplit(':').next()?, 16).ok()?;
            let state = fields.get(3)?;
            // Not the TIME_WAIT of the readiness probe: only live sockets.
            (remote_port == port && matches!(*state, "01" | "08")).then(|| state.to_string())
        })
        .collect()
}

#[tokio::test]
async fn nginx_keeps_one_connection_for_several_calls() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = sandbox().await;
        let nginx = Nginx::start(dir.path(), sandbox.addr, Front::default());
        let mut stack = Stack::start(
            sandbox,
            &format!("http://127.0.0.1:{}", nginx.port),
            direct(),
        )
        .await;
        for _ in 0..5 {
            stack.call().await;
        }
        let calls = nginx.calls(5);
        assert_eq!(calls.len(), 5, "{calls:?}");
        assert_eq!(
            Logged::distinct_connections(&calls),
            1,
            "one connection: {calls:?}"
        );
        let order: Vec<u64> = calls
            .iter()
            .map(|call| call.request_on_connection)
            .collect();
        assert_eq!(order, [1, 2, 3, 4, 5], "{calls:?}");
        assert!(calls.iter().all(|call| call.status == 200), "{calls:?}");
        stack.stop().await;
    })
    .await;
}

#[tokio::test]
async fn nginx_chunked_answers_are_read_and_the_connection_reused() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = sandbox().await;
        let front = Front {
            chunked: true,
            ..Front::default()
        };
        let nginx = Nginx::start(dir.path(), sandbox.addr, front);
        let mut stack = Stack::start(
            sandbox,
            &format!("http://127.0.0.1:{}", nginx.port),
            direct(),
        )
        .await;
        for _ in 0..3 {
            stack.call().await;
        }
        let calls = nginx.calls(3);
        assert_eq!(calls.len(), 3, "{calls:?}");
        assert!(
            calls.iter().all(|call| call.line.contains("te=chunked")),
            "chunked: {calls:?}"
        );
        assert_eq!(Logged::distinct_connections(&calls), 1, "{calls:?}");
        stack.stop().await;
    })
    .await;
}

#[tokio::test]
async fn nginx_connection_close_answers_get_a_new_connection_each() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = sandbox().await;
        let front = Front {
            keepalive_timeout: Some("0"),
            ..Front::default()
        };
        let nginx = Nginx::start(dir.path(), sandbox.addr, front);
        let mut stack = Stack::start(
            sandbox,
            &format!("http://127.0.0.1:{}", nginx.port),
            direct(),
        )
        .await;
        for _ in 0..3 {
            stack.call().await;
        }
        let calls = nginx.calls(3);
        assert_eq!(calls.len(), 3, "{calls:?}");
        assert!(
            calls.iter().all(|call| call.line.contains("conn=close")),
            "{calls:?}"
        );
        assert_eq!(Logged::distinct_connections(&calls), 3, "{calls:?}");
        stack.stop().await;
    })
    .await;
}

#[tokio::test]
async fn nginx_closing_an_idle_connection_is_swept_and_the_next_call_succeeds() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = sandbox().await;
        let front = Front {
            keepalive_timeout: Some("1s"),
            ..Front::default()
        };
        let nginx = Nginx::start(dir.path(), sandbox.addr, front);
        // Idle for up to 8 s by gamegate's own timeout (a sweep every 2 s):
        // the connection nginx closes after 1 s is closed by the sweep as a
        // closed one, not as an old one.
        let upstream = UpstreamSettings {
            idle_timeout_ms: 8_000,
            ..direct()
        };
        let mut stack = Stack::start(
            sandbox,
            &format!("http://127.0.0.1:{}", nginx.port),
            upstream,
        )
        .await;
        stack.call().await;
        assert_eq!(sockets_to(nginx.port), ["01"], "one established connection");
        tokio::time::sleep(Duration::from_secs(2)).await;
        // The sweeps 2, 4 and 6 s after the call: one of them closes it.
        let until = tokio::time::Instant::now() + Duration::from_millis(4_500);
        loop {
            let left = sockets_to(nginx.port);
            if left.iter().all(|state| state != "08") {
                break;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "a socket nginx closed is still in CLOSE_WAIT 6.5 s after the call: {left:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stack.call().await;
        let calls = nginx.calls(2);
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert_eq!(Logged::distinct_connections(&calls), 2, "{calls:?}");
        stack.stop().await;
    })
    .await;
}

#[tokio::test]
async fn nginx_tls_with_a_private_ca_and_mtls() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new(dir.path());
        let sandbox_one = sandbox().await;
        let nginx_dir = dir.path().join("tls");
        std::fs::create_dir(&nginx_dir).unwrap();
        let front = Front {
            tls: Some((pki.server_cert.clone(), pki.server_key.clone(), None)),
            ..Front::default()
        };
        let nginx = Nginx::start(&nginx_dir, sandbox_one.addr, front);
        let base = format!("https://127.0.0.1:{}", nginx.port);
        let trusting = UpstreamSettings {
            ca_file: Some(pki.ca.clone()),
            ..direct()
        };
        let mut stack = Stack::start(sandbox_one, &base, trusting.clone()).await;
        stack.call().await;
        stack.call().await;
        let calls = nginx.calls(2);
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert!(
            calls.iter().all(|call| call.line.contains("tls=TLSv1.")),
            "{calls:?}"
        );
        assert_eq!(Logged::distinct_connections(&calls), 1, "{calls:?}");
        stack.stop().await;

        // Without the CA, the webpki roots do not trust the certificate.
        let mut stack = Stack::start(sandbox().await, &base, direct()).await;
        let result = stack
            .dawanka
            .get_dawanka_info(super_player_dawanka_info())
            .await;
        let error = expect_error(result, Code::Unavailable, "UPSTREAM_UNREACHABLE");
        assert_eq!(error.metadata["cause"], "tls", "{:?}", error.metadata);
        stack.stop().await;

        // mTLS: nginx requires a client certificate by the CA.
        let mtls_dir = dir.path().join("mtls");
        std::fs::create_dir(&mtls_dir).unwrap();
        let sandbox_two = sandbox().await;
        let front = Front {
            tls: Some((
                pki.server_cert.clone(),
                pki.server_key.clone(),
                Some(pki.ca.clone()),
            )),
            ..Front::default()
        };
        let nginx = Nginx::start(&mtls_dir, sandbox_two.addr, front);
        let base = format!("https://127.0.0.1:{}", nginx.port);
        let with_certificate = UpstreamSettings {
            client_cert_file: Some(pki.client_cert.clone()),
            client_key_file: Some(pki.client_key.clone()),
            ..trusting.clone()
        };
        let mut stack = Stack::start(sandbox_two, &base, with_certificate).await;
        stack.call().await;
        let calls = nginx.calls(1);
        assert_eq!(calls.len(), 1, "{calls:?}");
        assert!(calls[0].line.contains("client=SUCCESS"), "{calls:?}");
        stack.stop().await;

        // Without one, nginx refuses the call (400, "No required SSL certificate").
        let mut stack = Stack::start(sandbox().await, &base, trusting).await;
        let result = stack
            .dawanka
            .get_dawanka_info(super_player_dawanka_info())
            .await;
        assert!(result.is_err(), "{result:?}");
        let calls = nginx.calls(2);
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert_eq!(calls[1].status, 400, "{calls:?}");
        stack.stop().await;
    })
    .await;
}

#[tokio::test]
async fn tinyproxy_carries_http_in_absolute_form() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = sandbox().await;
        let sandbox_port = sandbox.addr.port();
        let proxy = Tinyproxy::start(dir.path(), 1);
        let upstream = UpstreamSettings {
            proxy: Some(proxy.url()),
            proxy_user: Some("user".into()),
            proxy_password: Some("pass".to_string().into()),
            // The platform is on 127.0.0.1: no environment's NO_PROXY may exempt it.
            no_proxy: Some(String::new()),
            ..UpstreamSettings::default()
        };
        let base = sandbox.base_url();
        let mut stack = Stack::start(sandbox, &base, upstream).await;
        stack.call().await;
        stack.call().await;
        let log = proxy.log();
        let expected = format!("GET http://127.0.0.1:{sandbox_port}{INFO_PATH}?");
        assert_eq!(log.matches(&expected).count(), 2, "tinyproxy's log: {log}");
        stack.stop().await;
    })
    .await;
}

#[tokio::test]
async fn tinyproxy_tunnels_https_and_a_wrong_password_names_the_proxy() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new(dir.path());
        let nginx_dir = dir.path().join("nginx");
        std::fs::create_dir(&nginx_dir).unwrap();
        let sandbox_one = sandbox().await;
        let front = Front {
            tls: Some((pki.server_cert.clone(), pki.server_key.clone(), None)),
            ..Front::default()
        };
        let nginx = Nginx::start(&nginx_dir, sandbox_one.addr, front);
        let proxy = Tinyproxy::start(dir.path(), nginx.port);
        let base = format!("https://127.0.0.1:{}", nginx.port);
        let through = |password: &str| UpstreamSettings {
            proxy: Some(proxy.url()),
            proxy_user: Some("user".into()),
            proxy_password: Some(password.to_string().into()),
            no_proxy: Some(String::new()),
            ca_file: Some(pki.ca.clone()),
            ..UpstreamSettings::default()
        };
        let mut stack = Stack::start(sandbox_one, &base, through("pass")).await;
        stack.call().await;
        stack.call().await;
        let log = proxy.log();
        let tunnel = format!("CONNECT 127.0.0.1:{}", nginx.port);
        assert!(log.contains(&tunnel), "tinyproxy's log: {log}");
        let calls = nginx.calls(2);
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert_eq!(
            Logged::distinct_connections(&calls),
            1,
            "one tunnel, reused: {calls:?}"
        );
        stack.stop().await;

        let mut stack = Stack::start(sandbox().await, &base, through("wrong-password-42")).await;
        let result = stack
            .dawanka
            .get_dawanka_info(super_player_dawanka_info())
            .await;
        let error = expect_error(result, Code::Unavailable, "UPSTREAM_UNREACHABLE");
        assert_eq!(
            error.metadata["cause"], "connect_refused",
            "{:?}",
            error.metadata
        );
        let proxy_host = format!("127.0.0.1:{}", proxy.port);
        assert!(
            error.message.contains(&proxy_host)
                && error.message.contains("refused the credentials"),
            "the error names the proxy and its refusal: {}",
            error.message
        );
        let everything = format!("{} {:?}", error.message, error.metadata);
        for secret in [
            "wrong-password-42",
            "dXNlcjp3cm9uZy1wYXNzd29yZC00Mg",
            demo::OPENAPI_SUPER_OPENKEY,
        ] {
            assert!(!everything.contains(secret), "{secret} in {everything}");
        }
        assert_eq!(nginx.calls(3).len(), 2, "nothing reached the platform");
        stack.stop().await;
    })
    .await;
}
