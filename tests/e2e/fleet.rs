//! A fleet: three gamegate processes sharing one Redis (the machine's, on
//! 127.0.0.1:6379, under a key prefix of their own; or a Redis Cluster of
//! three masters, or a Redis that is killed, started here on free ports) and
//! one sandbox, which counts the `getToken` calls. 3 x 1,000 concurrent calls
//! at a time, across a refusal of the token and its refresh ahead of expiry:
//! exactly one `getToken` each time, whatever the number of replicas.

use std::{
    net::SocketAddr,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use futures::StreamExt;
use gamegate::{
    proto::storage_service_client::StorageServiceClient,
    sandbox::{self, RunningSandbox, SandboxConfig},
};
use serde_json::{Value, json};
use tonic::{Request, transport::Channel};

use crate::{
    binary::{Gamegate, Output},
    common::{alice_stores, demo, loopback},
};

const TOKEN: &str = "fleet-lobby-token-0123456789";

/// Three debug-build replicas taking 3,000 calls at once load a 2-core
/// machine fully: two fleets at once would measure the machine, not the
/// lock (each replica's wait for the token has a bound).
pub(crate) static ONE_FLEET_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
/// The sandbox's token lifetime: refreshed a fifth early, at 8 s.
const TOKEN_TTL_SECS: u64 = 10;

/// The machine's Redis, or a clear failure: a test that needs Redis never
/// passes without one.
pub(crate) fn require_redis(port: u16) {
    let answer = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "ping"])
        .output();
    match answer {
        Ok(output) if String::from_utf8_lossy(&output.stdout).trim() == "PONG" => {}
        other => panic!(
            "these tests need a Redis server on 127.0.0.1:{port} (and redis-cli): start one \
             with `redis-server --port {port} --save ''` ({other:?})"
        ),
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A key prefix no other test (or run) uses.
pub(crate) fn unique_prefix(test: &str) -> String {
    format!(
        "gamegate-test:{test}:{}:{}:",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// A redis-server of this test's own, without persistence; killed when
/// dropped.
struct OwnRedis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl OwnRedis {
    fn start(port: u16, cluster: bool) -> OwnRedis {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if cluster {
            command.args(["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"]);
        }
        let child = command
            .spawn()
            .expect("redis-server runs (it is installed here)");
        let until = Instant::now() + Duration::from_secs(10);
        while Command::new("redis-cli")
            .args(["-p", &port.to_string(), "ping"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() != "PONG")
            .unwrap_or(true)
        {
            assert!(
                Instant::now() < until,
                "redis-server on {port} did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        OwnRedis {
            child,
            port,
            _dir: dir,
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Three masters on free ports, their slots assigned by redis-cli.
fn start_cluster() -> Vec<OwnRedis> {
    let nodes: Vec<OwnRedis> = (0..3).map(|_| OwnRedis::start(free_port(), true)).collect();
    let addresses: Vec<String> = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port))
        .collect();
    let created = Command::new("redis-cli")
        .arg("--cluster")
        .arg("create")
        .args(&addresses)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .expect("redis-cli runs");
    assert!(
        created.status.success(),
        "the cluster was not created: {}",
        String::from_utf8_lossy(&created.stdout)
    );
    // Every node agrees that the cluster is up.
    let until = Instant::now() + Duration::from_secs(15);
    for node in &nodes {
        loop {
            let info = Command::new("redis-cli")
                .args(["-p", &node.port.to_string(), "cluster", "info"])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                break;
            }
            assert!(Instant::now() < until, "the cluster did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    nodes
}

/// The sandbox's admin API.
async fn admin(
    sandbox: &RunningSandbox,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let client = reqwest::Client::new();
    let mut request = client.request(method, format!("{}/_sandbox{path}", sandbox.base_url()));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the sandbox answers");
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.unwrap_or(Value::Null)
}

async fn get_token_calls(sandbox: &RunningSandbox) -> u64 {
    let stats = admin(sandbox, reqwest::Method::GET, "/stats", None).await;
    stats["get_token_calls"][demo::MINIGAME_APPID]
        .as_u64()
        .unwrap_or(0)
}

/// Three replicas of one configuration.
struct Fleet {
    replicas: Vec<(Gamegate, Vec<Vec<u8>>, Channel)>,
}

impl Fleet {
    async fn start(sandbox: &RunningSandbox, store: &str) -> Fleet {
        let config = format!(
            "listen = \"127.0.0.1:0\"\ndrain_delay_ms = 0\n\
             [[callers]]\nname = \"lobby\"\ntoken = \"{TOKEN}\"\napps = [\"*\"]\n\
             [store]\n{store}\ncommand_timeout_ms = 3000\n\
             [qq_minigame]\nbase_url = \"{}\"\n\
             [qq_minigame.apps.{}]\nsecret = \"{}\"\n",
            sandbox.base_url(),
            demo::MINIGAME_APPID,
            demo::MINIGAME_SECRET,
        );
        let mut replicas = Vec::new();
        for _ in 0..3 {
            let mut gamegate = Gamegate::spawn("serve", &config, &[("GAMEGATE_LOG", "info")]);
            let mut seen = Vec::new();
            let addr: SocketAddr = gamegate.serving(&mut seen);
            let channel = Channel::from_shared(format!("http://{addr}"))
                .unwrap()
                .connect()
                .await
                .expect("a replica accepts connections");
            replicas.push((gamegate, seen, channel));
        }
        Fleet { replicas }
    }

    /// `per_replica` concurrent storage calls on every replica at once;
    /// every one must succeed.
    async fn burst(&self, per_replica: usize) {
        let calls = self.replicas.iter().flat_map(|(_, _, channel)| {
            (0..per_replica).map(move |n| {
                let mut storage = StorageServiceClient::new(channel.clone());
                async move {
                    let mut request = Request::new(alice_stores("score", &(n % 100).to_string()));
                    request
                        .metadata_mut()
                        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
                    storage.set_user_storage(request).await
                }
            })
        });
        let failures: Vec<String> = futures::stream::iter(calls)
            .buffer_unordered(3 * per_replica)
            .filter_map(|outcome| async move { outcome.err().map(|s| format!("{s:?}")) })
            .collect()
            .await;
        assert!(
            failures.is_empty(),
            "{} of {} calls failed, e.g. {:?}",
            failures.len(),
            3 * per_replica,
            failures.first()
        );
    }

    fn stop(self) -> Vec<Output> {
        self.replicas
            .into_iter()
            .map(|(mut gamegate, seen, _)| gamegate.stop(seen))
            .collect()
    }
}

async fn token_sandbox() -> RunningSandbox {
    let sandbox = sandbox::spawn(SandboxConfig::demo(), loopback())
        .await
        .expect("sandbox starts");
    admin(
        &sandbox,
        reqwest::Method::PUT,
        "/config",
        Some(json!({"token_ttl_secs": TOKEN_TTL_SECS, "token_grace_secs": 60})),
    )
    .await;
    sandbox
}

/// The scenario every store must pass: 3 x 1,000 calls from cold, then
/// after a refusal, then across the refresh ahead of expiry; one `getToken`
/// each time.
async fn one_get_token_per_expiry_and_per_refusal(store: &str) {
    let _alone = ONE_FLEET_AT_A_TIME.lock().await;
    let sandbox = token_sandbox().await;
    let fleet = Fleet::start(&sandbox, store).await;

    fleet.burst(1_000).await;
    assert_eq!(
        get_token_calls(&sandbox).await,
        1,
        "from cold: one fetch for the fleet"
    );

    // The platform refuses the token every replica holds.
    admin(
        &sandbox,
        reqwest::Method::POST,
        "/minigame/revoke_tokens",
        Some(json!({"appid": demo::MINIGAME_APPID})),
    )
    .await;
    let refused_at = Instant::now();
    fleet.burst(1_000).await;
    let after_refusal = get_token_calls(&sandbox).await;
    assert_eq!(after_refusal, 2, "a refusal: one fetch for the fleet");

    // Past the refresh point of the second token (8 s after it was
    // fetched): the replica that takes the lock refreshes it, the others
    // keep serving the current one.
    let refresh_due = Duration::from_secs(TOKEN_TTL_SECS * 4 / 5) + Duration::from_millis(500);
    tokio::time::sleep(refresh_due.saturating_sub(refused_at.elapsed())).await;
    fleet.burst(1_000).await;
    // The refresh runs beside the calls; give it its round trip.
    let until = Instant::now() + Duration::from_secs(5);
    while get_token_calls(&sandbox).await < 3 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    fleet.burst(300).await;
    assert_eq!(
        get_token_calls(&sandbox).await,
        3,
        "a refresh ahead of expiry: one fetch for the fleet"
    );
    let outputs = fleet.stop();
    for output in &outputs {
        assert!(
            output.containing("redis cannot be reached").is_empty(),
            "redis was reachable throughout: {:?}",
            output.containing("redis")
        );
        assert!(
            output.containing(TOKEN).is_empty(),
            "a caller token was logged"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_on_one_redis_fetch_one_token_per_expiry_and_per_refusal() {
    require_redis(6379);
    let prefix = unique_prefix("standalone");
    one_get_token_per_expiry_and_per_refusal(&format!(
        "redis_url = \"redis://127.0.0.1:6379\"\nkey_prefix = \"{prefix}\""
    ))
    .await;
    // Nothing but gamegate's own keys, all under its prefix, and the token
    // sealed: the value Redis holds is not the token.
    let keys = Command::new("redis-cli")
        .args(["--scan", "--pattern", &format!("{prefix}*")])
        .output()
        .unwrap();
    let keys = String::from_utf8_lossy(&keys.stdout).to_string();
    assert!(keys.contains("token"), "{keys}");
    for key in keys.lines() {
        let _ = Command::new("redis-cli").args(["del", key]).output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_on_a_redis_cluster_fetch_one_token_per_expiry_and_per_refusal() {
    let cluster = start_cluster();
    let urls: Vec<String> = cluster
        .iter()
        .map(|node| format!("\"redis://127.0.0.1:{}\"", node.port))
        .collect();
    one_get_token_per_expiry_and_per_refusal(&format!(
        "redis_cluster_urls = [{}]\nkey_prefix = \"{}\"",
        urls.join(", "),
        unique_prefix("cluster")
    ))
    .await;
}

/// Redis killed between two bursts: no call fails, each replica fetches for
/// itself (at most one each), and one warning per replica says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_killed_no_call_fails_and_each_replica_fetches_at_most_once() {
    let _alone = ONE_FLEET_AT_A_TIME.lock().await;
    let mut redis = OwnRedis::start(free_port(), false);
    let sandbox = token_sandbox().await;
    let fleet = Fleet::start(
        &sandbox,
        &format!(
            "redis_url = \"redis://127.0.0.1:{}\"\nkey_prefix = \"{}\"",
            redis.port,
            unique_prefix("killed")
        ),
    )
    .await;
    fleet.burst(1_000).await;
    assert_eq!(get_token_calls(&sandbox).await, 1);

    redis.kill();
    admin(
        &sandbox,
        reqwest::Method::POST,
        "/minigame/revoke_tokens",
        Some(json!({"appid": demo::MINIGAME_APPID})),
    )
    .await;
    fleet.burst(1_000).await;
    let fetched = get_token_calls(&sandbox).await - 1;
    assert!(
        (1..=3).contains(&fetched),
        "{fetched} fetches after the refusal without redis: one per replica at most"
    );
    let outputs = fleet.stop();
    for output in &outputs {
        let warnings = output.containing("redis cannot be reached");
        assert!(
            warnings.len() <= 1,
            "one warning per change of state: {warnings:?}"
        );
    }
}
