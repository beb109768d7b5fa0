//! Idempotency keys of writes across two replicas of gamegate that share one
//! store, in front of one sandbox: a repeat is answered from the record,
//! wherever it lands, and the platform sees the write once. Each case runs
//! twice: with the replicas sharing one memory store, and with each replica
//! on its own connection to the machine's Redis (127.0.0.1:6379, under a key
//! prefix of the test's own), as a fleet runs.

use std::{sync::Arc, time::Duration};

use gamegate::{
    app::RunningGateway,
    config::Config,
    proto::{
        DawankaDataVersion, GetDawankaInfoRequest, QqGameUser, RemoveUserStorageRequest,
        ReportDawankaPayRequest, SetUserStorageRequest,
        dawanka_service_client::DawankaServiceClient, storage_service_client::StorageServiceClient,
    },
    sandbox::{self, RunningSandbox, SandboxConfig},
    state::{MemoryStore, RedisSettings, RedisStore, Store},
};
use serde_json::{Value, json};
use tonic::{Code, Request, Status, metadata::MetadataMap, transport::Channel};

use crate::{
    common::{alice_stores, demo, expect_error, loopback, rich},
    fleet::{require_redis, unique_prefix},
};

const SET_PATH: &str = "/api/openDataContext/set_user_storage";
const REPORT_PATH: &str = "/v3/user/report_dawanka_pay";
const INFO_PATH: &str = "/v3/user/get_dawanka_info";

/// Where the replicas keep their idempotency records.
#[derive(Clone, Copy)]
enum Shared {
    /// One MemoryStore object, handed to both.
    Memory,
    /// One Redis, each replica with its own client and connection.
    Redis,
}

/// One sandbox, and two gamegates sharing one store.
struct Replicas {
    sandbox: RunningSandbox,
    _gateways: Vec<RunningGateway>,
    channels: Vec<Channel>,
    admin: reqwest::Client,
}

impl Replicas {
    async fn start(shared: Shared) -> Replicas {
        let sandbox = sandbox::spawn(SandboxConfig::demo(), loopback())
            .await
            .expect("sandbox starts");
        let memory: Arc<dyn Store> = Arc::new(MemoryStore::default());
        let redis = RedisSettings {
            urls: vec!["redis://127.0.0.1:6379".into()],
            cluster: false,
            username: None,
            password: None,
            key_prefix: unique_prefix("idempotency"),
            command_timeout: Duration::from_secs(2),
        };
        if let Shared::Redis = shared {
            require_redis(6379);
        }
        let mut gateways = Vec::new();
        let mut channels = Vec::new();
        for _ in 0..2 {
            let store = match shared {
                Shared::Memory => memory.clone(),
                Shared::Redis => {
                    let store = RedisStore::new(&redis).expect("redis settings");
                    assert!(
                        store.connect(Duration::from_secs(5)).await,
                        "this test needs a Redis server on 127.0.0.1:6379"
                    );
                    Arc::new(store) as Arc<dyn Store>
                }
            };
            let config = Config::demo(loopback(), &sandbox.base_url());
            let gateway = RunningGateway::spawn_with_store(config, store)
                .await
                .expect("gamegate starts");
            channels.push(
                Channel::from_shared(gateway.endpoint())
                    .unwrap()
                    .connect()
                    .await
                    .expect("gamegate accepts connections"),
            );
            gateways.push(gateway);
        }
        Replicas {
            sandbox,
            _gateways: gateways,
            channels,
            admin: reqwest::Client::new(),
        }
    }

    fn storage(&self, replica: usize) -> StorageServiceClient<Channel> {
        StorageServiceClient::new(self.channels[replica].clone())
    }

    fn dawanka(&self, replica: usize) -> DawankaServiceClient<Channel> {
        DawankaServiceClient::new(self.channels[replica].clone())
    }

    async fn admin(&self, request: reqwest::RequestBuilder) -> Value {
        let response = request.send().await.expect("sandbox admin answers");
        assert!(response.status().is_success(), "{}", response.status());
        response.json().await.expect("sandbox admin answers json")
    }

    /// Platform requests the sandbox received on `path` (faulted ones too).
    async fn requests(&self, path: &str) -> u64 {
        let url = format!("{}/_sandbox/stats", self.sandbox.base_url());
        let stats = self.admin(self.admin.get(url)).await;
        stats["requests"][path].as_u64().unwrap_or(0)
    }

    async fn fault(&self, fault: Value) {
        let url = format!("{}/_sandbox/faults", self.sandbox.base_url());
        self.admin(self.admin.post(url).json(&fault)).await;
    }
}

fn keyed<T>(message: T, key: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("idempotency-key", key.parse().expect("a header value"));
    request
}

fn replayed(metadata: &MetadataMap) -> bool {
    match metadata.get("idempotency-replayed") {
        None => false,
        Some(value) => {
            assert_eq!(value, "true");
            true
        }
    }
}

fn super_player_reports() -> ReportDawankaPayRequest {
    ReportDawankaPayRequest {
        app_id: demo::OPENAPI_APPID.into(),
        user: Some(QqGameUser {
            openid: demo::OPENAPI_SUPER_OPENID.into(),
            openkey: demo::OPENAPI_SUPER_OPENKEY.into(),
            pf: "qqgame".into(),
            userip: String::new(),
        }),
    }
}

/// The status of a failed call, and whether it was a replay.
fn failure<T: std::fmt::Debug>(result: Result<tonic::Response<T>, Status>) -> (Status, bool) {
    let status = result.expect_err("the call fails");
    let was_replayed = replayed(status.metadata());
    (status, was_replayed)
}

async fn a_repeat_on_another_replica_replays_the_answer_without_a_second_write(shared: Shared) {
    let replicas = Replicas::start(shared).await;
    let first = replicas
        .storage(0)
        .set_user_storage(keyed(alice_stores("score", "100"), "order-42"))
        .await
        .expect("the first call runs");
    assert!(!replayed(first.metadata()), "the first answer is no replay");
    let again = replicas
        .storage(1)
        .set_user_storage(keyed(alice_stores("score", "100"), "order-42"))
        .await
        .expect("the repeat is answered");
    assert!(replayed(again.metadata()));
    assert_eq!(again.into_inner(), first.into_inner());
    assert_eq!(replicas.requests(SET_PATH).await, 1, "one upstream write");

    // A counter shows it best: the replay is the first answer, not a second
    // use of the bonus; a new key is a new report.
    let mut dawanka = [replicas.dawanka(0), replicas.dawanka(1)];
    let first = dawanka[0]
        .report_dawanka_pay(keyed(super_player_reports(), "topup-7"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((first.use_count, first.left_count), (1, 2));
    let again = dawanka[1]
        .report_dawanka_pay(keyed(super_player_reports(), "topup-7"))
        .await
        .unwrap();
    assert!(replayed(again.metadata()));
    assert_eq!(again.into_inner(), first);
    let next = dawanka[1]
        .report_dawanka_pay(keyed(super_player_reports(), "topup-8"))
        .await
        .unwrap();
    assert!(!replayed(next.metadata()));
    let next = next.into_inner();
    assert_eq!((next.use_count, next.left_count), (2, 1));
    assert_eq!(replicas.requests(REPORT_PATH).await, 2);
}

async fn a_repeat_while_the_first_call_runs_is_aborted_then_replayed(shared: Shared) {
    let replicas = Replicas::start(shared).await;
    replicas
        .fault(json!({"path": SET_PATH, "latency_ms": 1500}))
        .await;
    let mut storage = replicas.storage(0);
    let first = tokio::spawn(async move {
        storage
            .set_user_storage(keyed(alice_stores("score", "7"), "slow-1"))
            .await
    });
    // The sandbox counts a request when it arrives, before its latency: the
    // first call holds its key from then on.
    let mut waited = Duration::ZERO;
    while replicas.requests(SET_PATH).await == 0 {
        assert!(
            waited < Duration::from_secs(5),
            "the first call reaches the sandbox"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }
    let error = expect_error(
        replicas
            .storage(1)
            .set_user_storage(keyed(alice_stores("score", "7"), "slow-1"))
            .await,
        Code::Aborted,
        "IDEMPOTENCY_KEY_IN_USE",
    );
    assert_eq!(error.domain, "gamegate");
    assert_eq!(error.retry_delay(), Some(Duration::from_secs(1)));

    let first = first.await.unwrap().expect("the first call succeeds");
    assert!(!replayed(first.metadata()));
    let third = replicas
        .storage(1)
        .set_user_storage(keyed(alice_stores("score", "7"), "slow-1"))
        .await
        .expect("the outcome is there once the first call ended");
    assert!(replayed(third.metadata()));
    assert_eq!(third.into_inner(), first.into_inner());
    assert_eq!(replicas.requests(SET_PATH).await, 1);
}

async fn a_key_used_with_another_request_is_refused(shared: Shared) {
    let replicas = Replicas::start(shared).await;
    replicas
        .storage(0)
        .set_user_storage(keyed(alice_stores("score", "1"), "order-9"))
        .await
        .unwrap();
    let error = expect_error(
        replicas
            .storage(1)
            .set_user_storage(keyed(alice_stores("score", "2"), "order-9"))
            .await,
        Code::InvalidArgument,
        "IDEMPOTENCY_KEY_REUSED",
    );
    assert_eq!(error.bad_request_fields(), vec!["idempotency-key"]);
    assert_eq!(error.retry_delay(), None);
    // Another RPC with the same key is another request too.
    let remove = RemoveUserStorageRequest {
        app_id: demo::MINIGAME_APPID.into(),
        user: alice_stores("score", "1").user,
        keys: vec!["score".into()],
    };
    expect_error(
        replicas
            .storage(0)
            .remove_user_storage(keyed(remove, "order-9"))
            .await,
        Code::InvalidArgument,
        "IDEMPOTENCY_KEY_REUSED",
    );
    assert_eq!(replicas.requests(SET_PATH).await, 1);
}

async fn a_write_whose_outcome_is_unknown_is_not_sent_twice_under_its_key(shared: Shared) {
    let replicas = Replicas::start(shared).await;
    // The platform gets the write and never answers.
    replicas
        .fault(json!({"path": SET_PATH, "drop_connection": true}))
        .await;
    let (first, first_replayed) = failure(
        replicas
            .storage(0)
            .set_user_storage(keyed(alice_stores("gold", "5"), "lost-1"))
            .await,
    );
    assert!(!first_replayed);
    assert_eq!(
        (first.code(), rich(&first).reason.as_str()),
        (Code::Unknown, "UPSTREAM_OUTCOME_UNKNOWN")
    );
    // The repeat, where the fault is gone, gets the same failure: the write
    // may have been applied, so it is not sent again.
    let (again, again_replayed) = failure(
        replicas
            .storage(1)
            .set_user_storage(keyed(alice_stores("gold", "5"), "lost-1"))
            .await,
    );
    assert!(again_replayed);
    assert_eq!(again.code(), first.code());
    assert_eq!(again.message(), first.message());
    assert_eq!(
        again.details(),
        first.details(),
        "the same details, byte for byte"
    );
    // Those details carry the trace id of the call that sent the write: the
    // trace (and the log lines) an operator needs to find its fate.
    let trace_id = &rich(&first).metadata["trace_id"];
    assert_eq!(trace_id.len(), 32, "{trace_id:?}");
    assert_eq!(&rich(&again).metadata["trace_id"], trace_id);
    assert_eq!(replicas.requests(SET_PATH).await, 1, "exactly one write");
}

async fn a_failure_before_the_platform_releases_its_key(shared: Shared) {
    let replicas = Replicas::start(shared).await;
    // The app's token fetch fails (the platform refuses gamegate's secret):
    // the write is never sent, and the same request with the same key runs
    // once the cause is gone (the fault is used up).
    replicas
        .fault(json!({"path": "/api/getToken", "code": 40013}))
        .await;
    let (refused, refused_replayed) = failure(
        replicas
            .storage(0)
            .set_user_storage(keyed(alice_stores("score", "3"), "order-5"))
            .await,
    );
    assert!(!refused_replayed);
    assert_eq!(rich(&refused).reason, "GATEWAY_CREDENTIALS_REJECTED");
    assert_eq!(replicas.requests(SET_PATH).await, 0);
    let retried = replicas
        .storage(0)
        .set_user_storage(keyed(alice_stores("score", "3"), "order-5"))
        .await
        .expect("the retry runs");
    assert!(!replayed(retried.metadata()), "run, not replayed");
    assert_eq!(replicas.requests(SET_PATH).await, 1);

    // A request gamegate refuses itself releases its key as well: the
    // corrected request (another fingerprint) may take it.
    let empty = SetUserStorageRequest {
        kv_list: Vec::new(),
        ..alice_stores("score", "4")
    };
    let error = expect_error(
        replicas
            .storage(1)
            .set_user_storage(keyed(empty, "order-6"))
            .await,
        Code::InvalidArgument,
        "FIELD_REQUIRED",
    );
    assert_eq!(error.bad_request_fields(), vec!["kv_list"]);
    let corrected = replicas
        .storage(0)
        .set_user_storage(keyed(alice_stores("score", "4"), "order-6"))
        .await
        .expect("the corrected request runs under the released key");
    assert!(!replayed(corrected.metadata()));
    assert_eq!(replicas.requests(SET_PATH).await, 2);
}

async fn a_malformed_key_on_a_write_is_refused_before_anything_is_sent(shared: Shared) {
    let replicas = Replicas::start(shared).await;
    let too_long = "k".repeat(65);
    for key in ["", too_long.as_str(), "tab\there"] {
        let error = expect_error(
            replicas
                .storage(0)
                .set_user_storage(keyed(alice_stores("score", "1"), key))
                .await,
            Code::InvalidArgument,
            "IDEMPOTENCY_KEY_INVALID",
        );
        assert_eq!(
            error.bad_request_fields(),
            vec!["idempotency-key"],
            "{key:?}"
        );
    }
    assert_eq!(replicas.requests(SET_PATH).await, 0);
}

async fn a_key_on_a_read_is_ignored(shared: Shared) {
    let replicas = Replicas::start(shared).await;
    let info = || GetDawankaInfoRequest {
        app_id: demo::OPENAPI_APPID.into(),
        user: super_player_reports().user,
        version: DawankaDataVersion::V2 as i32,
    };
    let plain = replicas
        .dawanka(0)
        .get_dawanka_info(info())
        .await
        .unwrap()
        .into_inner();
    // The same key twice, and a key that would be refused on a write: each
    // read is sent to the platform and answered as without a key.
    for (replica, key) in [(0, "read-1"), (1, "read-1"), (0, "")] {
        let response = replicas
            .dawanka(replica)
            .get_dawanka_info(keyed(info(), key))
            .await
            .unwrap_or_else(|status| panic!("a read with key {key:?}: {status:?}"));
        assert!(!replayed(response.metadata()));
        assert_eq!(response.into_inner(), plain);
    }
    assert_eq!(replicas.requests(INFO_PATH).await, 4);
}

/// Each case, with each kind of shared store.
macro_rules! on_each_store {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(super::Shared::Memory).await
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(super::Shared::Redis).await
                }
            )*
        }
    };
}

on_each_store!(
    a_repeat_on_another_replica_replays_the_answer_without_a_second_write,
    a_repeat_while_the_first_call_runs_is_aborted_then_replayed,
    a_key_used_with_another_request_is_refused,
    a_write_whose_outcome_is_unknown_is_not_sent_twice_under_its_key,
    a_failure_before_the_platform_releases_its_key,
    a_malformed_key_on_a_write_is_refused_before_anything_is_sent,
    a_key_on_a_read_is_ignored,
);
