//! gamegate's metrics: one process-wide registry (`prometheus-client`), fed
//! by every layer through the small recorders below and read by the admin
//! listener's `/metrics` in the Prometheus text format (0.0.4) or OpenMetrics.
//!
//! Every label set is bounded by what gamegate is configured with, never by
//! what a caller or a platform sends: RPCs come from the route table (any
//! other path is `unknown`), apps from the configuration, codes and reasons
//! from fixed enums, hosts from the configured base URLs. No openid, token or
//! secret is ever a label value.
//!
//! This is the lowest layer: every module may record, none is needed here.

mod process;

use std::{
    collections::HashMap,
    sync::{Arc, LazyLock, RwLock},
    time::Duration,
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram, info::Info},
    registry::{Registry, Unit},
};

/// Latency buckets (seconds) of calls and upstream attempts: from a cached
/// answer (sub-millisecond) to the longest platform budget.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;
/// Endpoint recorders by platform, then path.
type EndpointMap = HashMap<&'static str, HashMap<String, Arc<EndpointMetrics>>>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    rpc_service: &'static str,
    rpc_method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcCodeLabels {
    rpc_service: &'static str,
    rpc_method: &'static str,
    rpc_grpc_status_code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcErrorLabels {
    rpc_service: &'static str,
    rpc_method: &'static str,
    rpc_grpc_status_code: &'static str,
    error_reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    platform: &'static str,
    endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    platform: &'static str,
    endpoint: &'static str,
    /// The HTTP status of the answer, `none` when no answer arrived.
    http_response_status_code: &'static str,
    /// `ok` for the platform's success code, else the ErrorInfo reason its
    /// code maps to (`UPSTREAM_BUSY`, ...), `none` without an answer.
    platform_code_class: &'static str,
    /// Why no usable answer arrived (`connect_refused`, ...), `none` when one did.
    cause: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HostLabels {
    server_address: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AppLabels {
    platform: &'static str,
    app_id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefreshLabels {
    platform: &'static str,
    app_id: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    commit: &'static str,
}

/// Every metric gamegate exports.
pub struct Metrics {
    registry: Registry,
    /// The RPCs known to the route table, by gRPC path, with their handles
    /// made once (the hot path does one map lookup).
    rpcs: RwLock<HashMap<String, Arc<RpcEntry>>>,
    unknown_rpc: Arc<RpcEntry>,
    endpoints: RwLock<EndpointMap>,
    rpc_calls: Family<RpcCodeLabels, Counter>,
    rpc_errors: Family<RpcErrorLabels, Counter>,
    rpc_duration: HistogramFamily<RpcLabels>,
    rpc_in_flight: Family<RpcLabels, Gauge>,
    idempotency_replays: Family<RpcLabels, Counter>,
    calls_shed: Family<ReasonLabels, Counter>,
    upstream_requests: Family<EndpointLabels, Counter>,
    upstream_attempts: Family<AttemptLabels, Counter>,
    upstream_retries: Family<EndpointLabels, Counter>,
    upstream_duration: HistogramFamily<EndpointLabels>,
    connections_created: Family<HostLabels, Counter>,
    connections_open: Family<HostLabels, Gauge>,
    connections_idle: Family<HostLabels, Gauge>,
    request_bytes: Family<HostLabels, Counter>,
    response_bytes: Family<HostLabels, Counter>,
    token_refreshes: Family<RefreshLabels, Counter>,
    token_refusals: Family<AppLabels, Counter>,
    token_lock_waits: Family<AppLabels, Counter>,
    tokens: process::TokenAges,
    /// A series only once a Redis store exists (a memory store has none).
    redis_up: Family<OperationLabels, Gauge>,
    store_fallbacks: Family<OperationLabels, Counter>,
    /// 1 for each platform's current circuit state, 0 for the others.
    circuit_state: Family<CircuitLabels, Gauge>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CircuitLabels {
    platform: &'static str,
    state: &'static str,
}

/// The states of a platform's circuit (`policy::breaker`).
const CIRCUIT_STATES: [&str; 3] = ["closed", "open", "half_open"];

/// One declared RPC: its series are made at its first call (56 RPCs' empty
/// histograms would be most of a scrape).
pub struct RpcEntry {
    service: &'static str,
    method: &'static str,
    handles: std::sync::OnceLock<Arc<RpcHandles>>,
}

impl RpcEntry {
    fn new(service: &'static str, method: &'static str) -> Arc<RpcEntry> {
        Arc::new(RpcEntry {
            service,
            method,
            handles: std::sync::OnceLock::new(),
        })
    }
}

/// The handles of one RPC.
pub struct RpcHandles {
    labels: RpcLabels,
    in_flight: Gauge,
    duration: Histogram,
    ok: Counter,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn global() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::default();
        let rpc_calls = Family::default();
        registry.register(
            "gamegate_rpc_calls",
            "Calls of gamegate's RPCs, by their gRPC status code (replays included)",
            rpc_calls.clone(),
        );
        let rpc_errors = Family::default();
        registry.register(
            "gamegate_rpc_errors",
            "Failed calls, by gRPC status code and ErrorInfo reason",
            rpc_errors.clone(),
        );
        let rpc_duration: HistogramFamily<RpcLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "gamegate_rpc_server_duration",
            "How long calls took, from their headers to their answer",
            Unit::Seconds,
            rpc_duration.clone(),
        );
        let rpc_in_flight = Family::default();
        registry.register(
            "gamegate_rpc_in_flight",
            "Calls being served now",
            rpc_in_flight.clone(),
        );
        let idempotency_replays = Family::default();
        registry.register(
            "gamegate_idempotency_replays",
            "Calls answered from the recorded outcome of their idempotency key",
            idempotency_replays.clone(),
        );
        let calls_shed = Family::default();
        registry.register(
            "gamegate_calls_shed",
            "Calls refused to protect gamegate or the platform (reason: GATEWAY_OVERLOADED, \
             GATEWAY_RATE_LIMITED, UPSTREAM_CIRCUIT_OPEN) or ended by their deadline (reason: \
             DEADLINE_EXCEEDED)",
            calls_shed.clone(),
        );
        let upstream_requests = Family::default();
        registry.register(
            "gamegate_upstream_requests",
            "Platform requests made for calls (each may take several attempts)",
            upstream_requests.clone(),
        );
        let upstream_attempts = Family::default();
        registry.register(
            "gamegate_upstream_attempts",
            "Attempts of platform requests, by what came back",
            upstream_attempts.clone(),
        );
        let upstream_retries = Family::default();
        registry.register(
            "gamegate_upstream_retries",
            "Attempts after the first (reads only, within the retry budget)",
            upstream_retries.clone(),
        );
        let upstream_duration: HistogramFamily<EndpointLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "gamegate_upstream_attempt_duration",
            "How long one attempt of a platform request took",
            Unit::Seconds,
            upstream_duration.clone(),
        );
        let connections_created = Family::default();
        registry.register(
            "gamegate_upstream_connections_created",
            "Connections opened to platform hosts",
            connections_created.clone(),
        );
        let connections_open = Family::default();
        registry.register(
            "gamegate_upstream_connections_open",
            "Connections to platform hosts open now (idle or carrying a request)",
            connections_open.clone(),
        );
        let connections_idle = Family::default();
        registry.register(
            "gamegate_upstream_connections_idle",
            "Keep-alive connections to platform hosts waiting for a request",
            connections_idle.clone(),
        );
        let request_bytes = Family::default();
        registry.register_with_unit(
            "gamegate_upstream_request",
            "Bytes written to platform hosts (heads and bodies)",
            Unit::Bytes,
            request_bytes.clone(),
        );
        let response_bytes = Family::default();
        registry.register_with_unit(
            "gamegate_upstream_response",
            "Bytes of answer bodies read from platform hosts",
            Unit::Bytes,
            response_bytes.clone(),
        );
        let token_refreshes = Family::default();
        registry.register(
            "gamegate_access_token_refreshes",
            "Access token fetches by this process (outcome: ok, failed)",
            token_refreshes.clone(),
        );
        let token_refusals = Family::default();
        registry.register(
            "gamegate_access_token_refusals",
            "Access tokens the platform refused while still in use",
            token_refusals.clone(),
        );
        let token_lock_waits = Family::default();
        registry.register(
            "gamegate_access_token_lock_waits",
            "Waits for another replica's fetch of an app's token (the Redis store)",
            token_lock_waits.clone(),
        );
        let tokens = process::TokenAges::default();
        registry.register_collector(Box::new(tokens.clone()));
        let redis_up = Family::default();
        registry.register(
            "gamegate_store_redis_up",
            "1 while the Redis store answers, 0 while gamegate serves from this process alone \
             (operation: connection)",
            redis_up.clone(),
        );
        let store_fallbacks = Family::default();
        registry.register(
            "gamegate_store_fallbacks",
            "Store operations served by this process alone because Redis did not answer",
            store_fallbacks.clone(),
        );
        let circuit_state = Family::default();
        registry.register(
            "gamegate_upstream_circuit_state",
            "1 for the state each platform's circuit is in (closed, open: calls fail fast, \
             half_open: probes are out), 0 for the others",
            circuit_state.clone(),
        );
        registry.register(
            "gamegate_build",
            "The running build",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                commit: env!("GAMEGATE_COMMIT"),
            }),
        );
        // The standard, unprefixed process_* metrics.
        registry.register_collector(Box::new(process::ProcessCollector::new()));
        Metrics {
            registry,
            rpcs: RwLock::default(),
            endpoints: RwLock::default(),
            unknown_rpc: RpcEntry::new("unknown", "unknown"),
            rpc_calls,
            rpc_errors,
            rpc_duration,
            rpc_in_flight,
            idempotency_replays,
            calls_shed,
            upstream_requests,
            upstream_attempts,
            upstream_retries,
            upstream_duration,
            connections_created,
            connections_open,
            connections_idle,
            request_bytes,
            response_bytes,
            token_refreshes,
            token_refusals,
            token_lock_waits,
            tokens,
            redis_up,
            store_fallbacks,
            circuit_state,
        }
    }

    fn handles(&self, rpc_service: &'static str, rpc_method: &'static str) -> Arc<RpcHandles> {
        let labels = RpcLabels {
            rpc_service,
            rpc_method,
        };
        Arc::new(RpcHandles {
            in_flight: self.rpc_in_flight.get_or_create_owned(&labels),
            duration: self.rpc_duration.get_or_create_owned(&labels),
            ok: self.rpc_calls.get_or_create_owned(&RpcCodeLabels {
                rpc_service,
                rpc_method,
                rpc_grpc_status_code: "OK",
            }),
            labels,
        })
    }

    /// Declares the RPC served at `grpc_path` (`/gamegate.v1.StorageService/
    /// SetUserStorage`): its calls count under its own labels.
    pub fn declare_rpc(&self, grpc_path: &str) {
        let mut rpcs = self.rpcs.write().unwrap_or_else(|e| e.into_inner());
        if rpcs.contains_key(grpc_path) {
            return;
        }
        let (service, method) = grpc_path
            .trim_start_matches('/')
            .split_once('/')
            .unwrap_or((grpc_path, ""));
        // Once per declared RPC for the life of the process: the route table
        // is a fixed, small set.
        let service: &'static str = Box::leak(service.to_owned().into_boxed_str());
        let method: &'static str = Box::leak(method.to_owned().into_boxed_str());
        rpcs.insert(grpc_path.to_owned(), RpcEntry::new(service, method));
    }

    /// A call of the RPC at `grpc_path` begins; it ends when the returned
    /// value is finished (or dropped: a cancelled call).
    pub fn rpc_started(&self, grpc_path: &str) -> RpcCall {
        let entry = self
            .rpcs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(grpc_path)
            .cloned()
            .unwrap_or_else(|| self.unknown_rpc.clone());
        let handles = entry
            .handles
            .get_or_init(|| self.handles(entry.service, entry.method))
            .clone();
        handles.in_flight.inc();
        RpcCall {
            handles,
            started: std::time::Instant::now(),
            finished: false,
        }
    }

    /// The recorder of one platform endpoint (a declared route's path, or a
    /// token path: a fixed set), made on its first use.
    pub fn endpoint(&self, platform: &'static str, endpoint: &str) -> Arc<EndpointMetrics> {
        let found = |endpoints: &EndpointMap| {
            endpoints
                .get(platform)
                .and_then(|paths| paths.get(endpoint))
                .cloned()
        };
        if let Some(found) = found(&self.endpoints.read().unwrap_or_else(|e| e.into_inner())) {
            return found;
        }
        let mut endpoints = self.endpoints.write().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = found(&endpoints) {
            return found;
        }
        // Once per endpoint for the life of the process.
        let endpoint: &'static str = Box::leak(endpoint.to_owned().into_boxed_str());
        let labels = EndpointLabels { platform, endpoint };
        let made = Arc::new(EndpointMetrics {
            requests: self.upstream_requests.get_or_create_owned(&labels),
            retries: self.upstream_retries.get_or_create_owned(&labels),
            duration: self.upstream_duration.get_or_create_owned(&labels),
            answered_ok: self.upstream_attempts.get_or_create_owned(&AttemptLabels {
                platform,
                endpoint,
                http_response_status_code: "200",
                platform_code_class: "ok",
                cause: "none",
            }),
            labels,
        });
        endpoints
            .entry(platform)
            .or_default()
            .insert(endpoint.to_owned(), made.clone());
        made
    }

    /// The recorder of one platform host's connections and bytes.
    pub fn upstream_host(&self, server_address: &str) -> HostMetrics {
        let labels = HostLabels {
            server_address: server_address.to_owned(),
        };
        HostMetrics {
            created: self.connections_created.get_or_create_owned(&labels),
            open: self.connections_open.get_or_create_owned(&labels),
            idle: self.connections_idle.get_or_create_owned(&labels),
            request_bytes: self.request_bytes.get_or_create_owned(&labels),
            response_bytes: self.response_bytes.get_or_create_owned(&labels),
        }
    }

    /// A token fetch by this process ended (`ok`: a token came back).
    pub fn token_refreshed(&self, platform: &'static str, app_id: &str, ok: bool) {
        self.token_refreshes
            .get_or_create(&RefreshLabels {
                platform,
                app_id: app_id.to_owned(),
                outcome: if ok { "ok" } else { "failed" },
            })
            .inc();
    }

    /// The platform refused a token in use.
    pub fn token_refused(&self, platform: &'static str, app_id: &str) {
        self.token_refusals
            .get_or_create(&AppLabels {
                platform,
                app_id: app_id.to_owned(),
            })
            .inc();
    }

    /// This process waited for another replica's fetch of a token.
    pub fn token_lock_waited(&self, platform: &'static str, app_id: &str) {
        self.token_lock_waits
            .get_or_create(&AppLabels {
                platform,
                app_id: app_id.to_owned(),
            })
            .inc();
    }

    /// The token now in use for an app was issued at `issued_at` (ms since
    /// the Unix epoch): its age is reported at each scrape.
    pub fn token_in_use(&self, platform: &'static str, app_id: &str, issued_at_unix_ms: u64) {
        self.tokens.set(platform, app_id, issued_at_unix_ms);
    }

    /// Whether the Redis store answers.
    pub fn redis_reachable(&self, up: bool) {
        self.redis_up
            .get_or_create(&OperationLabels {
                operation: "connection",
            })
            .set(i64::from(up));
    }

    /// A store operation (`token`, `claim`, `record`, `release`) was served
    /// by this process alone.
    pub fn store_fell_back(&self, operation: &'static str) {
        self.store_fallbacks
            .get_or_create(&OperationLabels { operation })
            .inc();
    }

    /// `platform`'s circuit is now in `state` (`closed`, `open`, `half_open`).
    pub fn circuit_state(&self, platform: &'static str, state: &'static str) {
        for each in CIRCUIT_STATES {
            self.circuit_state
                .get_or_create(&CircuitLabels {
                    platform,
                    state: each,
                })
                .set(i64::from(each == state));
        }
    }

    /// The registry in the Prometheus text format (0.0.4).
    pub fn prometheus_text(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            .expect("writing to a String does not fail");
        out
    }

    /// The registry in the OpenMetrics text format (1.0.0).
    pub fn openmetrics_text(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String does not fail");
        out
    }
}

/// One call in progress.
pub struct RpcCall {
    handles: Arc<RpcHandles>,
    started: std::time::Instant,
    finished: bool,
}

/// How a call ended, as its status says.
pub struct RpcOutcome {
    /// The gRPC code's name (`OK`, `DEADLINE_EXCEEDED`).
    pub code: &'static str,
    /// The ErrorInfo reason of a failure: one of gamegate's (a fixed set),
    /// `OTHER` for a reason gamegate does not define.
    pub reason: Option<&'static str>,
    /// Answered from an idempotency record.
    pub replayed: bool,
}

impl RpcCall {
    pub fn finish(mut self, outcome: RpcOutcome) {
        self.finished = true;
        let metrics = global();
        let labels = &self.handles.labels;
        self.handles
            .duration
            .observe(self.started.elapsed().as_secs_f64());
        if outcome.code == "OK" {
            self.handles.ok.inc();
        } else {
            metrics
                .rpc_calls
                .get_or_create(&RpcCodeLabels {
                    rpc_service: labels.rpc_service,
                    rpc_method: labels.rpc_method,
                    rpc_grpc_status_code: outcome.code,
                })
                .inc();
            let reason = outcome.reason.unwrap_or("NONE");
            metrics
                .rpc_errors
                .get_or_create(&RpcErrorLabels {
                    rpc_service: labels.rpc_service,
                    rpc_method: labels.rpc_method,
                    rpc_grpc_status_code: outcome.code,
                    error_reason: reason,
                })
                .inc();
            if matches!(
                reason,
                "GATEWAY_OVERLOADED"
                    | "DEADLINE_EXCEEDED"
                    | "GATEWAY_RATE_LIMITED"
                    | "UPSTREAM_CIRCUIT_OPEN"
            ) {
                metrics
                    .calls_shed
                    .get_or_create(&ReasonLabels { reason })
                    .inc();
            }
        }
        if outcome.replayed {
            metrics.idempotency_replays.get_or_create(labels).inc();
        }
    }
}

impl Drop for RpcCall {
    fn drop(&mut self) {
        self.handles.in_flight.dec();
        if !self.finished {
            // The caller went away (or its deadline passed in the transport)
            // before an answer: counted as CANCELLED.
            let labels = &self.handles.labels;
            self.handles
                .duration
                .observe(self.started.elapsed().as_secs_f64());
            global()
                .rpc_calls
                .get_or_create(&RpcCodeLabels {
                    rpc_service: labels.rpc_service,
                    rpc_method: labels.rpc_method,
                    rpc_grpc_status_code: "CANCELLED",
                })
                .inc();
        }
    }
}

/// The metrics of one platform endpoint.
pub struct EndpointMetrics {
    labels: EndpointLabels,
    requests: Counter,
    retries: Counter,
    duration: Histogram,
    answered_ok: Counter,
}

/// What one attempt of a platform request got back, in bounded values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptOutcome {
    /// `200`, `502`, ...; `none` when no complete answer arrived.
    pub http_status: &'static str,
    /// `ok` for the platform's success code, else the ErrorInfo reason its
    /// code maps to; `none` without a platform code.
    pub platform_code_class: &'static str,
    /// Why no usable answer arrived (`connect_refused`, `malformed_answer`,
    /// ...); `none` when one did.
    pub cause: &'static str,
}

impl AttemptOutcome {
    pub const OK: AttemptOutcome = AttemptOutcome {
        http_status: "200",
        platform_code_class: "ok",
        cause: "none",
    };
}

impl EndpointMetrics {
    /// A platform request of a call begins (its attempts follow).
    pub fn requested(&self) {
        self.requests.inc();
    }

    /// One attempt ended after `elapsed`; `retry`: not the first.
    pub fn attempted(&self, retry: bool, elapsed: Duration, outcome: AttemptOutcome) {
        if retry {
            self.retries.inc();
        }
        self.duration.observe(elapsed.as_secs_f64());
        if outcome == AttemptOutcome::OK {
            self.answered_ok.inc();
            return;
        }
        global()
            .upstream_attempts
            .get_or_create(&AttemptLabels {
                platform: self.labels.platform,
                endpoint: self.labels.endpoint,
                http_response_status_code: outcome.http_status,
                platform_code_class: outcome.platform_code_class,
                cause: outcome.cause,
            })
            .inc();
    }
}

/// An HTTP status as a label (a fixed set of strings).
pub fn http_status_label(status: u16) -> &'static str {
    const COMMON: [(u16, &str); 16] = [
        (200, "200"),
        (204, "204"),
        (301, "301"),
        (302, "302"),
        (400, "400"),
        (401, "401"),
        (403, "403"),
        (404, "404"),
        (405, "405"),
        (413, "413"),
        (429, "429"),
        (500, "500"),
        (502, "502"),
        (503, "503"),
        (504, "504"),
        (499, "499"),
    ];
    if let Some((_, label)) = COMMON.iter().find(|(code, _)| *code == status) {
        return label;
    }
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// The connections and bytes of one platform host.
#[derive(Clone, Default)]
pub struct HostMetrics {
    created: Counter,
    open: Gauge,
    idle: Gauge,
    request_bytes: Counter,
    response_bytes: Counter,
}

impl HostMetrics {
    /// A connection was opened; it counts as open until the returned guard
    /// is dropped with it.
    pub fn connection_opened(&self) -> OpenConnection {
        self.created.inc();
        self.open.inc();
        OpenConnection {
            open: self.open.clone(),
            slot: None,
        }
    }

    pub fn idle_changed(&self, idle: usize) {
        self.idle.set(idle as i64);
    }

    pub fn sent(&self, bytes: usize) {
        self.request_bytes.inc_by(bytes as u64);
    }

    pub fn received(&self, bytes: usize) {
        self.response_bytes.inc_by(bytes as u64);
    }
}

/// Held by an open connection.
#[derive(Debug)]
pub struct OpenConnection {
    open: Gauge,
    /// What else is released when the connection closes: a slot of its
    /// upstream's connection cap (`max_connections`), kept here so that every
    /// way a connection ends (dropped after an error, reaped, refused by the
    /// pool) gives its slot back.
    slot: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl OpenConnection {
    /// The same guard, also holding `slot` until the connection is dropped.
    pub fn holding(mut self, slot: impl std::any::Any + Send + Sync) -> OpenConnection {
        self.slot = Some(Box::new(slot));
        self
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.open.dec();
    }
}
