//! Building and running gamegate from a configuration: the route table, the
//! state store, the platform registry, the core and the gRPC adapter (with
//! Connect and gRPC-Web, on HTTP/1.1 and HTTP/2), health and reflection, all on
//! one port, within the listener limits (connections,
//! streams, handshake, idle and request times); load shedding per connection;
//! graceful shutdown that tells meshes first (health NOT_SERVING) and drains
//! in-flight calls within a grace period.

#[cfg(feature = "sandbox")]
pub mod embedded;
mod run;
pub mod signal;

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use secrecy::SecretString;
use thiserror::Error;
use tokio::{
    net::TcpListener,
    sync::{mpsc, oneshot},
    task::JoinHandle,
    time::Instant,
};
use tonic::service::Routes;
use tonic_health::server::HealthReporter;
use tower_http::timeout::RequestBodyTimeoutLayer;

pub use self::run::{check_config, run};
use crate::{
    admin,
    api::{
        self,
        access::AccessLog,
        grpc::{GrpcGateway, Serving},
        idempotency::{DEFAULT_IDEMPOTENCY_WINDOW, IdempotencyPolicy},
    },
    auth::CallerRegistry,
    config::{Config, ListenerLimits, TlsConfig},
    core::Core,
    net,
    plan::{RouteDeclarationError, RouteTable},
    platform::PlatformRegistry,
    proto,
    state::{MemoryStore, RedisSettings, RedisStore, RedisStoreError, Store},
    upstream::{InvalidBaseUrl, UpstreamHttp},
};

#[derive(Debug, Error)]
pub enum ServeError {
    #[error("the proto declares a route gamegate cannot serve: {0}")]
    Routes(#[from] RouteDeclarationError),
    #[error("a platform base url cannot be used: {0}")]
    BaseUrl(#[from] InvalidBaseUrl),
    #[error("server reflection cannot be built: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("the grpc server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("tls cannot be set up: {0}")]
    Tls(#[from] net::TlsError),
    #[error("the state store cannot be set up: {0}")]
    Store(#[from] RedisStoreError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The gRPC routes of gamegate (gateway services, health, reflection), and
/// what serving them needs later: the health reporter, the gateway (to swap
/// its configuration in on a reload) and the upstream client it shares.
pub struct Built {
    pub routes: Routes,
    pub health: HealthReporter,
    pub services: Vec<String>,
    pub gateway: GrpcGateway,
    http: UpstreamHttp,
    store: Arc<dyn Store>,
}

/// What one configuration gives the calls: callers, platforms (apps,
/// secrets, budgets), limits and the access line. A reload builds a new one;
/// the upstream connection pool is kept across reloads.
pub fn serving_from(
    config: &Config,
    http: &UpstreamHttp,
    store: &dyn Store,
) -> Result<Serving, ServeError> {
    let callers = CallerRegistry::new(&config.callers);
    if callers.is_open() {
        tracing::warn!("no callers are configured: any client may call gamegate with any app");
    }
    let platforms = PlatformRegistry::from_config(config, http, store)?;
    register_platform_addresses(config);
    Ok(Serving {
        callers,
        core: Core::new(platforms).returning_session_keys_without_callers(
            config
                .qq_minigame
                .as_ref()
                .is_some_and(|section| section.return_session_keys),
        ),
        limits: config.limits.clone(),
        access_log: AccessLog {
            openid: config.log_openid,
        },
    })
}

/// Each configured platform's host and port, for the upstream spans
/// (`server.address`, `server.port`).
fn register_platform_addresses(config: &Config) {
    let base_urls = [
        (
            proto::Platform::QqMinigame,
            config.qq_minigame.as_ref().map(|p| p.base_url.as_str()),
        ),
        (
            proto::Platform::QqOpenapi,
            config.qq_openapi.as_ref().map(|p| p.base_url.as_str()),
        ),
        (
            proto::Platform::Msdk,
            config.msdk.as_ref().map(|p| p.base_url.as_str()),
        ),
    ];
    for (platform, base_url) in base_urls {
        if let Some(base) = base_url.and_then(|url| crate::upstream::BaseUrl::parse(url).ok()) {
            crate::telemetry::trace::set_platform_address(platform, &base.host, base.port);
        }
    }
}

/// How long idempotency records are kept, and how long a write may run
/// before its claim counts as abandoned (longer than any call can take).
fn idempotency_policy(config: &Config) -> IdempotencyPolicy {
    let window = config
        .store
        .as_ref()
        .map_or(DEFAULT_IDEMPOTENCY_WINDOW, |store| {
            store.idempotency_window()
        });
    IdempotencyPolicy::new(window, config.listener.request_timeout())
}

/// The store of one gamegate process, kept across reloads: Redis when
/// `[store]` names one (shared by the fleet), else this process's memory. A
/// Redis that is down at start is waited for briefly, then connected to in
/// the background: gamegate serves meanwhile, each replica on its own.
pub async fn store_for(config: &Config) -> Result<Arc<dyn Store>, ServeError> {
    let Some(section) = &config.store else {
        return Ok(Arc::new(MemoryStore::default()));
    };
    let settings = RedisSettings {
        urls: section.urls().into_iter().map(str::to_string).collect(),
        cluster: section.is_cluster(),
        username: section.username.clone(),
        password: section
            .password()
            .map(|p| SecretString::from(p.to_string())),
        key_prefix: section.key_prefix.clone(),
        command_timeout: section.command_timeout(),
    };
    let store = RedisStore::new(&settings)?;
    if store.connect(Duration::from_secs(2)).await {
        tracing::info!(
            cluster = settings.cluster,
            key_prefix = %settings.key_prefix,
            "the fleet's state is in redis"
        );
    }
    Ok(Arc::new(store))
}

pub async fn build_routes(config: &Config, store: Arc<dyn Store>) -> Result<Built, ServeError> {
    let table = Arc::new(RouteTable::from_pool(&proto::DESCRIPTOR_POOL)?);
    let http = UpstreamHttp::new();
    let gateway = GrpcGateway::new(
        table.clone(),
        serving_from(config, &http, store.as_ref())?,
        config.limits.max_calls_in_flight,
        store.clone(),
    );

    let mut builder = Routes::builder();
    let health = api::health::add_services(&mut builder, table.services()).await?;
    // Health and reflection are tonic's: their statuses get ErrorInfo here.
    // The gateway's own (every routed path, and the fallback of any other:
    // an unknown service is an unknown method) carry it already.
    let mut router = builder
        .routes()
        .into_axum_router()
        .layer(axum::middleware::map_response(
            |response: axum::response::Response| async move {
                api::status::with_error_info(response, None)
            },
        ));
    for service in table.services() {
        router = router.route_service(&format!("/{service}/{{*rpc}}"), gateway.clone());
    }
    let router = router.fallback_service(gateway.clone());
    gateway.set_idempotency(idempotency_policy(config));
    Ok(Built {
        routes: Routes::from(router),
        health,
        services: table.services().to_vec(),
        gateway,
        http,
        store,
    })
}

/// The listener's TLS when `[tls]` is set: loaded now; keep a clone to
/// `reload()` it (SIGHUP), and give it to [`serve_with_tls`].
pub fn tls_acceptor(config: &Config) -> Result<Option<net::TlsAcceptor>, ServeError> {
    let Some(tls) = &config.tls else {
        return Ok(None);
    };
    Ok(Some(net::TlsAcceptor::new(tls.settings())?))
}

/// Serves on `listener` until `shutdown` resolves, taking every configuration
/// that arrives on `reloads` for new calls; then drains (see [`serve_with_tls`]).
pub async fn serve(
    config: &Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    reloads: mpsc::Receiver<Config>,
) -> Result<(), ServeError> {
    let tls = tls_acceptor(config)?;
    let store = store_for(config).await?;
    serve_with_tls(config, listener, tls, store, shutdown, reloads).await
}

/// [`serve`], with TLS from [`tls_acceptor`] (`None`: plaintext).
///
/// When `shutdown` resolves, health turns NOT_SERVING at once and gamegate
/// goes on accepting and serving for `drain_delay_ms`, so that probes and
/// load balancers see it and move away; then it stops accepting (GOAWAY on
/// every connection), gives calls in flight `shutdown_grace_ms` to finish,
/// cuts the rest, and says how many of each.
pub async fn serve_with_tls(
    config: &Config,
    listener: TcpListener,
    tls: Option<net::TlsAcceptor>,
    store: Arc<dyn Store>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    reloads: mpsc::Receiver<Config>,
) -> Result<(), ServeError> {
    let Built {
        routes,
        health,
        services,
        gateway,
        http,
        store,
    } = build_routes(config, store).await?;
    let reloader = tokio::spawn(apply_reloads(
        reloads,
        Running::of(config),
        gateway.clone(),
        http,
        store,
        tls.clone(),
    ));
    let _stop_reloads = AbortOnDrop(reloader);
    let readiness = admin::Readiness::default();
    let _stop_admin = match config.admin_listen {
        Some(addr) => {
            let listener = admin::bind(addr)
                .await
                .map_err(|source| ServeError::Listen { addr, source })?;
            let bound = listener.local_addr().unwrap_or(addr);
            tracing::info!(addr = %bound, "admin listener is serving (/metrics, /ready, /live)");
            let readiness = readiness.clone();
            Some(AbortOnDrop(tokio::spawn(async move {
                if let Err(error) = admin::serve(listener, readiness).await {
                    tracing::error!(%error, "the admin listener stopped");
                }
            })))
        }
        None => None,
    };
    let grace = config.shutdown_grace();
    let drain_delay = Duration::from_millis(config.drain_delay_ms);
    let (closing_tx, closing_rx) = oneshot::channel::<Closing>();
    let counter = gateway.clone();
    let announce = async move {
        shutdown.await;
        let signalled_at = Instant::now();
        // Tell meshes first, so that they stop routing here.
        readiness.not_serving();
        api::health::announce_not_serving(&health, &services).await;
        tracing::info!(
            drain_delay_ms = drain_delay.as_millis() as u64,
            calls_in_flight = counter.calls_in_flight(),
            "shutting down: health is NOT_SERVING; still accepting and serving for the drain \
             delay"
        );
        tokio::time::sleep(drain_delay).await;
        let closing = Closing {
            signalled_at,
            in_flight: counter.calls_in_flight(),
            finished: counter.calls_finished(),
        };
        tracing::info!(
            calls_in_flight = closing.in_flight,
            grace_ms = grace.as_millis() as u64,
            "drain delay over: no new connections; finishing the calls in flight"
        );
        let _ = closing_tx.send(closing);
    };
    let limits = &config.listener;
    raise_open_file_limit(limits.max_connections);
    let connections = net::accepted(
        listener,
        net::ConnectionLimits {
            max_connections: limits.max_connections,
            handshake_timeout: limits.handshake_timeout(),
            idle_timeout: limits.idle_timeout(),
        },
        tls,
    );
    let server = tonic::transport::Server::builder()
        // HTTP/1.1 beside HTTP/2 (hyper-util's auto builder picks per
        // connection): Connect and gRPC-Web callers, such as a PHP server's
        // curl, speak HTTP/1.1. hyper's HTTP/1 header read timeout (30 s)
        // applies to those connections, and `net::Connection` counts the
        // first request head as their handshake.
        .accept_http1(true)
        // h2 refuses streams past this (REFUSED_STREAM, which clients retry)
        // rather than tonic shedding them with a status that has no details;
        // gamegate's own limit of calls in flight (`limits`) bounds the rest.
        .max_concurrent_streams(limits.max_concurrent_streams)
        .http2_max_header_list_size(limits.max_header_list_size)
        .http2_keepalive_interval(Some(limits.keepalive_interval()))
        .http2_keepalive_timeout(Some(limits.keepalive_timeout()))
        // Longer than any platform budget (validated), so that it ends only
        // calls stuck outside gamegate's own deadlines, such as one whose
        // body trickles in.
        .timeout(limits.request_timeout())
        .layer(net::TrackStreamsLayer)
        .layer(RequestBodyTimeoutLayer::new(limits.request_body_timeout()))
        // Outside tonic-web: a preflight is answered before any protocol.
        .layer(tower::util::option_layer(api::web::cors(
            &limits.cors_allowed_origins,
        )))
        .layer(api::web::WebLayer)
        .add_routes(routes)
        .serve_with_incoming_shutdown(connections, announce);
    tokio::pin!(server);
    tokio::pin!(closing_rx);
    // The server ends by itself only after the close (or on an error); with
    // no connection left it ends at once, maybe before this task sees the
    // close: then the close is read here, so that the stopped line is never
    // left out.
    let mut ended = None;
    let closing = tokio::select! {
        biased;
        closing = &mut closing_rx => closing.ok(),
        result = &mut server => {
            ended = Some(result);
            closing_rx.try_recv().ok()
        }
    };
    let result = match (ended, &closing) {
        (Some(result), _) => result,
        (None, Some(_)) => tokio::time::timeout(grace, &mut server)
            .await
            .unwrap_or(Ok(())),
        (None, None) => server.await,
    };
    if let Some(closing) = closing {
        let cut = gateway.calls_in_flight();
        tracing::info!(
            drained = gateway.calls_finished().saturating_sub(closing.finished),
            cut,
            exit_ms = closing.signalled_at.elapsed().as_millis() as u64,
            "stopped: calls that ended after the close (drained), calls still running at the \
             end of the grace period (cut)"
        );
    }
    result.map_err(ServeError::from)
}

/// When the listener closed: since when gamegate was stopping, calls in
/// flight, calls ended so far.
struct Closing {
    signalled_at: Instant,
    in_flight: usize,
    finished: u64,
}

/// Aborts a background task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What a running gamegate cannot change without a restart.
#[derive(Debug, PartialEq)]
struct Running {
    listen: SocketAddr,
    admin_listen: Option<SocketAddr>,
    listener: ListenerLimits,
    max_calls_in_flight: usize,
    tls: Option<TlsConfig>,
    log_format: Option<crate::telemetry::LogFormat>,
    drain_delay_ms: u64,
    shutdown_grace_ms: u64,
    /// Where the store is (its URLs and prefix).
    store: Option<(Vec<String>, String)>,
    /// Where spans go: read once, with the log subscriber.
    telemetry: crate::config::TelemetryConfig,
}

impl Running {
    fn of(config: &Config) -> Running {
        Running {
            listen: config.listen,
            admin_listen: config.admin_listen,
            listener: config.listener.clone(),
            max_calls_in_flight: config.limits.max_calls_in_flight,
            tls: config.tls.clone(),
            log_format: config.log_format,
            drain_delay_ms: config.drain_delay_ms,
            shutdown_grace_ms: config.shutdown_grace_ms,
            store: config.store.as_ref().map(|store| {
                (
                    store.urls().into_iter().map(str::to_string).collect(),
                    store.key_prefix.clone(),
                )
            }),
            telemetry: config.telemetry.clone(),
        }
    }

    /// The keys of `new` that differ from the running ones.
    fn restart_needed(&self, new: &Running) -> Vec<&'static str> {
        let mut keys = Vec::new();
        let mut differs = |differ: bool, key: &'static str| {
            if differ {
                keys.push(key);
            }
        };
        differs(self.listen != new.listen, "listen");
        differs(self.admin_listen != new.admin_listen, "admin_listen");
        differs(self.listener != new.listener, "listener");
        differs(
            self.max_calls_in_flight != new.max_calls_in_flight,
            "limits.max_calls_in_flight",
        );
        differs(
            self.tls != new.tls,
            "tls (its keys; the files they name reload by themselves)",
        );
        differs(self.log_format != new.log_format, "log_format");
        differs(self.drain_delay_ms != new.drain_delay_ms, "drain_delay_ms");
        differs(
            self.shutdown_grace_ms != new.shutdown_grace_ms,
            "shutdown_grace_ms",
        );
        differs(self.store != new.store, "store");
        differs(self.telemetry != new.telemetry, "telemetry");
        keys
    }
}

/// Swaps every configuration that arrives in for new calls (it was validated
/// completely when it was read); re-reads the TLS files. What needs a restart
/// keeps its running value, with a warning naming it.
async fn apply_reloads(
    mut reloads: mpsc::Receiver<Config>,
    running: Running,
    gateway: GrpcGateway,
    http: UpstreamHttp,
    store: Arc<dyn Store>,
    tls: Option<net::TlsAcceptor>,
) {
    while let Some(config) = reloads.recv().await {
        let restart = running.restart_needed(&Running::of(&config));
        if !restart.is_empty() {
            tracing::warn!(
                keys = restart.join(", "),
                "these keys changed, but take effect only at a restart; they keep their running \
                 values"
            );
        }
        match serving_from(&config, &http, store.as_ref()) {
            Ok(serving) => {
                gateway.replace(serving);
                gateway.set_idempotency(idempotency_policy(&config));
                if let Some(tls) = &tls
                    && let Err(error) = tls.reload()
                {
                    tracing::warn!(%error, "tls files not reloaded; the running ones stay");
                }
                tracing::info!(
                    callers = config.callers.len(),
                    "configuration reloaded: new calls use it"
                );
            }
            Err(error) => {
                tracing::error!(%error, "configuration reload refused; the running one stays");
            }
        }
    }
}

/// Raises the soft limit on open files to the hard one and says what it is:
/// each connection holds a descriptor, and past the limit accepts fail
/// (EMFILE) before `max_connections` is reached.
fn raise_open_file_limit(max_connections: usize) {
    #[cfg(unix)]
    match net::raise_open_file_limit() {
        Ok(open_files) => {
            // Descriptors gamegate needs besides client connections: the
            // listener, the runtime, upstream connections to the platforms.
            const RESERVE: u64 = 256;
            if open_files < max_connections as u64 + RESERVE {
                tracing::warn!(
                    open_files,
                    max_connections,
                    "the open file limit is below max_connections plus {RESERVE}: accepts will \
                     fail (and back off) before the connection limit is reached"
                );
            } else {
                tracing::info!(open_files, "open file limit");
            }
        }
        Err(error) => tracing::warn!(%error, "cannot raise the open file limit"),
    }
    #[cfg(not(unix))]
    let _ = max_connections;
}

/// A gamegate running in a background task (tests, the embedded default).
pub struct RunningGateway {
    pub addr: SocketAddr,
    /// The listener's TLS, when `[tls]` is set: `reload()` re-reads its files.
    pub tls: Option<net::TlsAcceptor>,
    stop: Option<oneshot::Sender<()>>,
    reloads: mpsc::Sender<Config>,
    task: JoinHandle<Result<(), ServeError>>,
}

impl RunningGateway {
    /// Binds `config.listen` (port 0 picks a free one) and serves in the background.
    pub async fn spawn(config: Config) -> Result<RunningGateway, ServeError> {
        let store = store_for(&config).await?;
        RunningGateway::spawn_with_store(config, store).await
    }

    /// [`RunningGateway::spawn`] with `store` (replicas in one test share one).
    pub async fn spawn_with_store(
        config: Config,
        store: Arc<dyn Store>,
    ) -> Result<RunningGateway, ServeError> {
        let listen_error = |source| ServeError::Listen {
            addr: config.listen,
            source,
        };
        let tls = tls_acceptor(&config)?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(listen_error)?;
        let addr = listener.local_addr().map_err(listen_error)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let (reloads, reloaded) = mpsc::channel(1);
        let serving_tls = tls.clone();
        let task = tokio::spawn(async move {
            serve_with_tls(
                &config,
                listener,
                serving_tls,
                store,
                async {
                    let _ = stopped.await;
                },
                reloaded,
            )
            .await
        });
        Ok(RunningGateway {
            addr,
            tls,
            stop: Some(stop),
            reloads,
            task,
        })
    }

    /// Serves new calls with `config` (validated by the caller, as
    /// `Config::load` does).
    pub async fn reload(&self, config: Config) {
        let _ = self.reloads.send(config).await;
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting calls, drains, and waits for the server to end.
    pub async fn shutdown(mut self) -> Result<(), ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(result) => result,
            Err(join) => panic!("gamegate server task failed: {join}"),
        }
    }
}
