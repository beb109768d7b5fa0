//! Transport failures through the whole gateway: a platform pointed at a
//! closed port, at a name that does not resolve, and at a server that reads
//! the request and never answers. Each failure names its cause class and the
//! platform's host in ErrorInfo metadata (`cause`, `host`), in the status
//! message, in the operator's warn line and in the `cause` label of the
//! attempts metric, and never the upstream URL. (TLS, reset, connect timeout
//! and timeout before send are produced against real servers by the upstream
//! client's own tests.)

use std::time::Duration;

use gamegate::{
    app::RunningGateway, config::Config, proto::dawanka_service_client::DawankaServiceClient,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    sync::mpsc::{self, UnboundedReceiver},
};
use tonic::{Code, transport::Channel};

use crate::{
    binary::Gamegate,
    common::{RichError, demo, expect_error, loopback, super_player_dawanka_info},
};

const INFO_PATH: &str = "/v3/user/get_dawanka_info";

/// A gamegate whose platforms are all at `base_url`.
async fn gateway_at(base_url: &str) -> (RunningGateway, DawankaServiceClient<Channel>) {
    let gateway = RunningGateway::spawn(Config::demo(loopback(), base_url))
        .await
        .expect("gamegate starts");
    let channel = Channel::from_shared(gateway.endpoint())
        .unwrap()
        .connect()
        .await
        .expect("gamegate accepts connections");
    (gateway, DawankaServiceClient::new(channel))
}

/// `http://127.0.0.1:<port>` where nothing listens (bound, then closed).
async fn closed_port() -> (String, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    drop(listener);
    (format!("http://{host}"), host)
}

/// A platform that reads each request head, then writes `answer` and closes
/// the connection, or, for `None`, holds it silent; each request read is
/// reported on the receiver.
async fn platform(answer: Option<&'static [u8]>) -> (String, String, UnboundedReceiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let (read, requests) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let read = read.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut chunk = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = read.send(());
                match answer {
                    Some(answer) => {
                        let _ = stream.write_all(answer).await;
                    }
                    None => tokio::time::sleep(Duration::from_secs(60)).await,
                }
            });
        }
    });
    (format!("http://{host}"), host, requests)
}

/// The transport failure's metadata and message name `cause` and `host`,
/// and nothing of the request's secrets.
fn assert_named(error: &RichError, cause: &str, host: &str) {
    assert_eq!(error.metadata["cause"], cause, "{:?}", error.metadata);
    assert_eq!(error.metadata["host"], host, "{:?}", error.metadata);
    assert_eq!(error.metadata["endpoint"], INFO_PATH);
    // A malformed answer came from the platform: its domain; the other
    // failures were found by gamegate.
    let domain = match error.reason.as_str() {
        "UPSTREAM_MALFORMED_RESPONSE" => "openapi.minigame.qq.com",
        _ => "gamegate",
    };
    assert_eq!(error.domain, domain);
    assert!(
        error.message.contains(&format!("{INFO_PATH} on {host} ")) && error.message.contains(cause),
        "{}",
        error.message
    );
    for secret in [demo::OPENAPI_SUPER_OPENKEY, demo::OPENAPI_APPKEY, "sig="] {
        assert!(!error.message.contains(secret), "{}", error.message);
        assert!(
            error.metadata.values().all(|value| !value.contains(secret)),
            "{:?}",
            error.metadata
        );
    }
}

/// How many attempts at `INFO_PATH` failed with `cause`, by this process's
/// metrics registry (the `cause` label of `gamegate_upstream_attempts_total`).
/// The registry is the process's, shared by the tests running at once: a test
/// checks that its failure moved the count, at least by one.
fn attempts_failed_with(cause: &str) -> f64 {
    let (endpoint, cause) = (
        format!("endpoint=\"{INFO_PATH}\""),
        format!("cause=\"{cause}\""),
    );
    gamegate::metrics::global()
        .prometheus_text()
        .lines()
        .filter(|line| {
            line.starts_with("gamegate_upstream_attempts_total{")
                && line.contains(&endpoint)
                && line.contains(&cause)
        })
        .map(|line| line.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
        .sum()
}

fn assert_counted(cause: &str, before: f64) {
    let after = attempts_failed_with(cause);
    assert!(
        after > before,
        "gamegate_upstream_attempts_total{{cause=\"{cause}\"}} did not move from {before}"
    );
}

#[tokio::test]
async fn a_platform_at_a_closed_port_is_connect_refused_on_its_host() {
    let (base_url, host) = closed_port().await;
    let (gateway, mut dawanka) = gateway_at(&base_url).await;
    let before = attempts_failed_with("connect_refused");
    let result = dawanka.get_dawanka_info(super_player_dawanka_info()).await;
    let error = expect_error(result, Code::Unavailable, "UPSTREAM_UNREACHABLE");
    assert_named(&error, "connect_refused", &host);
    assert_counted("connect_refused", before);
    gateway.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_platform_whose_name_does_not_resolve_is_dns() {
    // `.invalid` never resolves (RFC 6761); the resolver here says so within
    // milliseconds, offline. (A resolver that hung would be `dns` as well once
    // the connect timeout passed: the upstream client's own test checks that
    // with a short timeout.)
    let host = "platform.gamegate-test.invalid:8080";
    let (gateway, mut dawanka) = gateway_at(&format!("http://{host}/prefix")).await;
    let before = attempts_failed_with("dns");
    let result = dawanka.get_dawanka_info(super_player_dawanka_info()).await;
    let error = expect_error(result, Code::Unavailable, "UPSTREAM_UNREACHABLE");
    assert_named(&error, "dns", host);
    assert_counted("dns", before);
    gateway.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_platform_that_stalls_after_reading_the_request_is_timeout_after_send() {
    let (base_url, host, mut requests) = platform(None).await;
    let (gateway, mut dawanka) = gateway_at(&base_url).await;
    let mut request = tonic::Request::new(super_player_dawanka_info());
    request.set_timeout(Duration::from_millis(500));
    let before = attempts_failed_with("timeout_after_send");
    let result = dawanka.get_dawanka_info(request).await;
    let error = expect_error(result, Code::DeadlineExceeded, "UPSTREAM_TIMEOUT");
    assert_named(&error, "timeout_after_send", &host);
    assert_counted("timeout_after_send", before);
    assert!(requests.try_recv().is_ok(), "the platform read the request");
    gateway.shutdown().await.unwrap();
}

#[tokio::test]
async fn answers_that_are_not_http_or_are_cut_keep_their_cause_and_host() {
    for (answer, cause) in [
        (&b"SSH-2.0-OpenSSH_9.6\r\n\r\n"[..], "malformed_answer"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"ret\":0,",
            "closed_early",
        ),
    ] {
        let (base_url, host, _requests) = platform(Some(answer)).await;
        let (gateway, mut dawanka) = gateway_at(&base_url).await;
        let before = attempts_failed_with(cause);
        let result = dawanka.get_dawanka_info(super_player_dawanka_info()).await;
        let error = expect_error(result, Code::Unavailable, "UPSTREAM_MALFORMED_RESPONSE");
        assert_named(&error, cause, &host);
        assert_counted(cause, before);
        gateway.shutdown().await.unwrap();
    }
}

/// The operator's line of a failed call, in both log formats of the real
/// binary, carries the cause and the host as fields of their own.
#[tokio::test]
async fn the_warn_line_of_a_transport_failure_names_its_cause_and_host() {
    let (base_url, host) = closed_port().await;
    let config = format!(
        "listen = \"127.0.0.1:0\"\n\
         [qq_openapi]\nbase_url = \"{base_url}\"\n\
         [qq_openapi.apps.{app}]\nappkey = \"{key}\"\n",
        app = demo::OPENAPI_APPID,
        key = demo::OPENAPI_APPKEY,
    );
    for format in ["text", "json"] {
        let mut gamegate = Gamegate::spawn("serve", &config, &[("GAMEGATE_LOG_FORMAT", format)]);
        let mut seen = Vec::new();
        let addr = gamegate.serving(&mut seen);
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .expect("gamegate accepts connections");
        let result = DawankaServiceClient::new(channel)
            .get_dawanka_info(super_player_dawanka_info())
            .await;
        let error = expect_error(result, Code::Unavailable, "UPSTREAM_UNREACHABLE");
        assert_named(&error, "connect_refused", &host);
        let line = gamegate
            .wait_for_line("rpc failed", Duration::from_secs(10), &mut seen)
            .unwrap_or_else(|| panic!("{format}: no \"rpc failed\" line"));
        drop(gamegate.stop(seen));
        match format {
            "text" => {
                assert!(line.contains(" WARN "), "{line}");
                assert!(line.contains(" cause=\"connect_refused\" "), "{line}");
                assert!(line.contains(&format!(" host=\"{host}\" ")), "{line}");
            }
            _ => {
                let json: serde_json::Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not one json object ({e}): {line}"));
                let fields = &json["fields"];
                assert_eq!(fields["cause"], "connect_refused", "{line}");
                assert_eq!(fields["host"], host.as_str(), "{line}");
                assert_eq!(fields["endpoint"], INFO_PATH, "{line}");
            }
        }
        for secret in [demo::OPENAPI_SUPER_OPENKEY, demo::OPENAPI_APPKEY] {
            assert!(!line.contains(secret), "{line}");
        }
    }
}
