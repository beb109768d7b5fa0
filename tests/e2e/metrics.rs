//! The admin listener of a real gamegate process: `/metrics` scraped around
//! real calls against the sandbox, each counter and histogram count moved by
//! exactly the calls made (successes, each error class, a retry, a token
//! refusal and its refresh, a replay); the scrape linted by `promtool check
//! metrics`; OpenMetrics when asked; `/ready` and `/live` as gRPC health
//! says, during the drain too.

use std::{
    collections::HashMap,
    io::Write,
    process::{Command, Stdio},
    time::Duration,
};

use gamegate::{
    proto::{
        SetUserStorageRequest, dawanka_service_client::DawankaServiceClient,
        storage_service_client::StorageServiceClient,
    },
    sandbox::{self, RunningSandbox, SandboxConfig},
};
use serde_json::json;
use tonic::{Code, Request, transport::Channel};

use crate::{
    binary::Gamegate,
    common::{alice_stores, demo, expect_error, loopback, super_player_dawanka_info},
    fleet::free_port,
};

const SET_PATH: &str = "/api/openDataContext/set_user_storage";
const INFO_PATH: &str = "/v3/user/get_dawanka_info";
const SET_RPC: [(&str, &str); 2] = [
    ("rpc_service", "gamegate.v1.StorageService"),
    ("rpc_method", "SetUserStorage"),
];
const INFO_RPC: [(&str, &str); 2] = [
    ("rpc_service", "gamegate.v1.DawankaService"),
    ("rpc_method", "GetDawankaInfo"),
];

/// One scrape: every sample by name, with its labels.
struct Scrape {
    samples: Vec<(String, HashMap<String, String>, f64)>,
    text: String,
}

impl Scrape {
    fn parse(text: String) -> Scrape {
        let mut samples = Vec::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once('=').expect("label=value");
                    (key.to_string(), value.trim_matches('"').to_string())
                })
                .collect();
            samples.push((name.to_string(), labels, value.parse().expect("a number")));
        }
        Scrape { samples, text }
    }

    /// The sum of `name`'s samples whose labels include all of `labels` (0
    /// when there is none: a series appears once used).
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, value)| value)
            .sum()
    }
}

struct Admin {
    base: String,
    http: reqwest::Client,
}

impl Admin {
    async fn scrape(&self) -> Scrape {
        let response = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("the admin listener answers");
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        Scrape::parse(response.text().await.unwrap())
    }

    async fn status(&self, path: &str) -> u16 {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("the admin listener answers")
            .status()
            .as_u16()
    }
}

async fn fault(sandbox: &RunningSandbox, fault: serde_json::Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/_sandbox/faults", sandbox.base_url()))
        .json(&fault)
        .send()
        .await
        .expect("sandbox admin answers");
    assert!(response.status().is_success());
}

fn with_key<T>(message: T, key: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("idempotency-key", key.parse().unwrap());
    request
}

/// `promtool check metrics` on `text`: the Prometheus linter (names, units,
/// suffixes, help). Fails, never skips, without promtool.
fn promtool_check_metrics(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| {
            panic!(
                "this test needs promtool (Debian: apt-get install prometheus; .ci/run installs \
                 it): {error}"
            )
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success() && output.stdout.is_empty() && output.stderr.is_empty(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn metrics_move_by_exactly_the_calls_made() {
    let sandbox = sandbox::spawn(SandboxConfig::demo(), loopback())
        .await
        .expect("sandbox starts");
    let admin_port = free_port();
    let config = format!(
        "listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:{admin_port}\"\n\
         drain_delay_ms = 1500\n\
         [qq_minigame]\nbase_url = \"{url}\"\n\
         [qq_minigame.apps.{mg}]\nsecret = \"{mg_secret}\"\n\
         [qq_openapi]\nbase_url = \"{url}\"\n\
         [qq_openapi.apps.{oa}]\nappkey = \"{oa_key}\"\n",
        url = sandbox.base_url(),
        mg = demo::MINIGAME_APPID,
        mg_secret = demo::MINIGAME_SECRET,
        oa = demo::OPENAPI_APPID,
        oa_key = demo::OPENAPI_APPKEY,
    );
    let mut gamegate = Gamegate::spawn("serve", &config, &[]);
    let mut seen = Vec::new();
    let addr = gamegate.serving(&mut seen);
    gamegate
        .wait_for_line(
            "admin listener is serving",
            Duration::from_secs(10),
            &mut seen,
        )
        .expect("the admin listener serves");
    let admin = Admin {
        base: format!("http://127.0.0.1:{admin_port}"),
        http: reqwest::Client::new(),
    };
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut storage = StorageServiceClient::new(channel.clone());
    let mut dawanka = DawankaServiceClient::new(channel);
    assert_eq!(admin.status("/ready").await, 200);
    assert_eq!(admin.status("/live").await, 200);

    // Three writes: one token fetch, three requests answered 200 / ok.
    for n in 0..3 {
        storage
            .set_user_storage(alice_stores("score", &n.to_string()))
            .await
            .expect("a write succeeds");
    }
    let scrape = admin.scrape().await;
    let set_endpoint = [("platform", "qq_minigame"), ("endpoint", SET_PATH)];
    let ok_attempt = [
        ("http_response_status_code", "200"),
        ("platform_code_class", "ok"),
        ("cause", "none"),
    ];
    let sum = |scrape: &Scrape, name: &str, labels: &[&[(&str, &str)]]| {
        scrape.sum(name, &labels.concat())
    };
    assert_eq!(
        sum(
            &scrape,
            "gamegate_rpc_calls_total",
            &[&SET_RPC, &[("rpc_grpc_status_code", "OK")]]
        ),
        3.0
    );
    assert_eq!(
        sum(
            &scrape,
            "gamegate_rpc_server_duration_seconds_count",
            &[&SET_RPC]
        ),
        3.0
    );
    assert_eq!(
        sum(
            &scrape,
            "gamegate_rpc_server_duration_seconds_bucket",
            &[&SET_RPC, &[("le", "+Inf")]]
        ),
        3.0
    );
    assert_eq!(sum(&scrape, "gamegate_rpc_in_flight", &[&SET_RPC]), 0.0);
    assert_eq!(
        sum(
            &scrape,
            "gamegate_upstream_requests_total",
            &[&set_endpoint]
        ),
        3.0
    );
    assert_eq!(
        sum(
            &scrape,
            "gamegate_upstream_attempts_total",
            &[&set_endpoint, &ok_attempt]
        ),
        3.0
    );
    assert_eq!(
        sum(
            &scrape,
            "gamegate_upstream_attempt_duration_seconds_count",
            &[&set_endpoint]
        ),
        3.0
    );
    let refreshes = |scrape: &Scrape, outcome| {
        scrape.sum(
            "gamegate_access_token_refreshes_total",
            &[
                ("platform", "qq_minigame"),
                ("app_id", demo::MINIGAME_APPID),
                ("outcome", outcome),
            ],
        )
    };
    assert_eq!(refreshes(&scrape, "ok"), 1.0);
    let age = scrape.sum(
        "gamegate_access_token_age_seconds",
        &[("app_id", demo::MINIGAME_APPID)],
    );
    assert!((0.0..60.0).contains(&age), "token age {age}");
    assert!(scrape.sum("gamegate_upstream_connections_created_total", &[]) >= 1.0);
    assert!(scrape.sum("gamegate_upstream_request_bytes_total", &[]) > 0.0);
    assert!(scrape.sum("gamegate_upstream_response_bytes_total", &[]) > 0.0);
    assert_eq!(scrape.sum("gamegate_build_info", &[]), 1.0);
    assert!(scrape.sum("process_resident_memory_bytes", &[]) > 1e6);
    assert!(scrape.sum("process_open_fds", &[]) > 0.0);

    // A caller's mistake: refused before the platform, by its reason.
    expect_error(
        storage
            .set_user_storage(SetUserStorageRequest {
                kv_list: Vec::new(),
                ..alice_stores("score", "0")
            })
            .await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    // The platform refuses the token once: one refusal, one more fetch, and
    // the call (retried inside the platform client) succeeds.
    fault(&sandbox, json!({"path": SET_PATH, "code": 40001})).await;
    storage
        .set_user_storage(alice_stores("score", "4"))
        .await
        .expect("the write succeeds with a fresh token");
    // A platform that drops the connection after the write: a cause.
    fault(&sandbox, json!({"path": SET_PATH, "drop_connection": true})).await;
    expect_error(
        storage.set_user_storage(alice_stores("score", "5")).await,
        Code::Unknown,
        "UPSTREAM_OUTCOME_UNKNOWN",
    );
    let scrape = admin.scrape().await;
    let set_errors = |scrape: &Scrape, code, reason| {
        sum(
            scrape,
            "gamegate_rpc_errors_total",
            &[
                &SET_RPC,
                &[("rpc_grpc_status_code", code), ("error_reason", reason)],
            ],
        )
    };
    assert_eq!(
        set_errors(&scrape, "INVALID_ARGUMENT", "FIELD_REQUIRED"),
        1.0
    );
    assert_eq!(
        set_errors(&scrape, "UNKNOWN", "UPSTREAM_OUTCOME_UNKNOWN"),
        1.0
    );
    assert_eq!(
        sum(
            &scrape,
            "gamegate_rpc_calls_total",
            &[&SET_RPC, &[("rpc_grpc_status_code", "OK")]]
        ),
        4.0
    );
    assert_eq!(sum(&scrape, "gamegate_rpc_calls_total", &[&SET_RPC]), 6.0);
    assert_eq!(
        sum(
            &scrape,
            "gamegate_rpc_server_duration_seconds_count",
            &[&SET_RPC]
        ),
        6.0
    );
    assert_eq!(
        sum(
            &scrape,
            "gamegate_upstream_requests_total",
            &[&set_endpoint]
        ),
        5.0,
        "the refused request made none"
    );
    assert_eq!(
        sum(
            &scrape,
            "gamegate_upstream_attempts_total",
            &[&set_endpoint, &ok_attempt]
        ),
        4.0
    );
    assert_eq!(
        sum(
            &scrape,
            "gamegate_upstream_attempts_total",
            &[
                &set_endpoint,
                &[
                    ("http_response_status_code", "none"),
                    ("cause", "closed_early")
                ]
            ]
        ),
        1.0
    );
    assert_eq!(
        scrape.sum(
            "gamegate_access_token_refusals_total",
            &[
                ("platform", "qq_minigame"),
                ("app_id", demo::MINIGAME_APPID)
            ]
        ),
        1.0
    );
    assert_eq!(refreshes(&scrape, "ok"), 2.0);
    assert_eq!(refreshes(&scrape, "failed"), 0.0);

    // A read the platform answers "busy" once: retried, then answered.
    let info_endpoint = [("platform", "qq_openapi"), ("endpoint", INFO_PATH)];
    fault(&sandbox, json!({"path": INFO_PATH, "busy": true})).await;
    dawanka
        .get_dawanka_info(super_player_dawanka_info())
        .await
        .expect("the retried read succeeds");
    let scrape = admin.scrape().await;
    assert_eq!(
        sum(
            &scrape,
            "gamegate_rpc_calls_total",
            &[&INFO_RPC, &[("rpc_grpc_status_code", "OK")]]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &scrape,
            "gamegate_upstream_requests_total",
            &[&info_endpoint]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &scrape,
            "gamegate_upstream_retries_total",
            &[&info_endpoint]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &scrape,
            "gamegate_upstream_attempts_total",
            &[
                &info_endpoint,
                &[
                    ("http_response_status_code", "200"),
                    ("platform_code_class", "UPSTREAM_BUSY")
                ]
            ]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &scrape,
            "gamegate_upstream_attempts_total",
            &[&info_endpoint, &ok_attempt]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &scrape,
            "gamegate_upstream_attempt_duration_seconds_count",
            &[&info_endpoint]
        ),
        2.0
    );

    // A replay: counted as a call and a replay, not as a platform request.
    for _ in 0..2 {
        storage
            .set_user_storage(with_key(alice_stores("gold", "9"), "order-1"))
            .await
            .expect("the keyed write and its replay succeed");
    }
    // A call in flight, seen by a scrape while it waits for the platform.
    fault(&sandbox, json!({"path": INFO_PATH, "latency_ms": 1500})).await;
    let mut slow = dawanka.clone();
    let in_flight =
        tokio::spawn(async move { slow.get_dawanka_info(super_player_dawanka_info()).await });
    let mut seen_in_flight = 0.0;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        seen_in_flight = sum(
            &admin.scrape().await,
            "gamegate_rpc_in_flight",
            &[&INFO_RPC],
        );
        if seen_in_flight > 0.0 {
            break;
        }
    }
    assert_eq!(seen_in_flight, 1.0);
    in_flight.await.unwrap().expect("the slow read succeeds");
    let scrape = admin.scrape().await;
    assert_eq!(sum(&scrape, "gamegate_rpc_in_flight", &[&INFO_RPC]), 0.0);
    assert_eq!(
        sum(&scrape, "gamegate_idempotency_replays_total", &[&SET_RPC]),
        1.0
    );
    assert_eq!(
        sum(
            &scrape,
            "gamegate_rpc_calls_total",
            &[&SET_RPC, &[("rpc_grpc_status_code", "OK")]]
        ),
        6.0
    );
    assert_eq!(
        sum(
            &scrape,
            "gamegate_upstream_requests_total",
            &[&set_endpoint]
        ),
        6.0,
        "the replay made no platform request"
    );
    // No openid, key or token anywhere in a scrape.
    for secret in [
        demo::MINIGAME_ALICE_OPENID,
        demo::MINIGAME_ALICE_SESSION_KEY,
        demo::MINIGAME_SECRET,
        demo::OPENAPI_SUPER_OPENID,
        demo::OPENAPI_SUPER_OPENKEY,
        demo::OPENAPI_APPKEY,
        "access_token=",
    ] {
        assert!(!scrape.text.contains(secret), "{secret} in a scrape");
    }
    promtool_check_metrics(&scrape.text);

    // OpenMetrics for a scraper that asks for it (Prometheus does).
    let openmetrics = admin
        .http
        .get(format!("{}/metrics", admin.base))
        .header(
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        openmetrics.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(openmetrics.text().await.unwrap().ends_with("# EOF\n"));

    // Draining: /ready turns 503 with gRPC health, /live stays 200. (The
    // gRPC connection is closed first: the wait for the exit below blocks
    // this test's runtime, which could not answer the server's GOAWAY.)
    drop((storage, dawanka));
    gamegate.signal("TERM");
    let mut ready = 200;
    for _ in 0..50 {
        ready = admin.status("/ready").await;
        if ready == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(ready, 503, "/ready during the drain");
    assert_eq!(admin.status("/live").await, 200);
    let output = gamegate.exit_within(Duration::from_secs(10));
    assert!(output.status.success(), "{}", output.stderr);
}
