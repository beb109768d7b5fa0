//! Building and running gamegate from a configuration: the route table, the
//! state store, the platform registry, the core and the gRPC adapter, health and
//! reflection, all on one port, within the listener limits (connections,
//! streams, handshake, idle and request times); load shedding per connection;
//! graceful shutdown that tells meshes first (health NOT_SERVING) and drains
//! in-flight calls within a grace period.

#[cfg(feature = "sandbox")]
pub mod embedded;
mod run;
pub mod signal;

use std::{future::Future, net::SocketAddr, sync::Arc};

use thiserror::Error;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::service::Routes;
use tonic_health::server::HealthReporter;
use tower_http::timeout::RequestBodyTimeoutLayer;

pub use self::run::{check_config, run};
use crate::{
    api::{self, grpc::GrpcGateway},
    auth::CallerRegistry,
    config::Config,
    core::Core,
    net,
    plan::{RouteDeclarationError, RouteTable},
    platform::PlatformRegistry,
    proto,
    state::MemoryStore,
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
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The gRPC routes of gamegate (gateway services, health, reflection), the
/// health reporter and the names of the gateway services it reports on.
pub async fn build_routes(
    config: &Config,
) -> Result<(Routes, HealthReporter, Vec<String>), ServeError> {
    let table = Arc::new(RouteTable::from_pool(&proto::DESCRIPTOR_POOL)?);
    let callers = CallerRegistry::new(&config.callers);
    if callers.is_open() {
        tracing::warn!("no callers are configured: any client may call gamegate with any app");
    }
    let platforms = PlatformRegistry::from_config(config, &UpstreamHttp::new(), &MemoryStore)?;
    let gateway = GrpcGateway::new(
        table.clone(),
        callers,
        Core::new(platforms),
        config.limits.clone(),
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
    let router = router.fallback_service(gateway);
    Ok((Routes::from(router), health, table.services().to_vec()))
}

/// Serves on `listener` until `shutdown` resolves, then drains in-flight calls
/// for at most the configured grace period.
pub async fn serve(
    config: &Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (routes, health, services) = build_routes(config).await?;
    let grace = config.shutdown_grace();
    let (draining_tx, draining_rx) = oneshot::channel::<()>();
    let announce = async move {
        shutdown.await;
        tracing::info!("shutting down: no new calls, draining in-flight ones");
        // Tell meshes first, so that they stop routing here.
        api::health::announce_not_serving(&health, &services).await;
        let _ = draining_tx.send(());
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
    );
    let server = tonic::transport::Server::builder()
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
        .add_routes(routes)
        .serve_with_incoming_shutdown(connections, announce);
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return result.map_err(ServeError::from),
        _ = draining_rx => {}
    }
    match tokio::time::timeout(grace, &mut server).await {
        Ok(result) => result.map_err(ServeError::from),
        Err(_) => {
            tracing::warn!(
                grace_ms = grace.as_millis() as u64,
                "grace period over; dropping unfinished calls"
            );
            Ok(())
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
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServeError>>,
}

impl RunningGateway {
    /// Binds `config.listen` (port 0 picks a free one) and serves in the background.
    pub async fn spawn(config: Config) -> Result<RunningGateway, ServeError> {
        let listen_error = |source| ServeError::Listen {
            addr: config.listen,
            source,
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(listen_error)?;
        let addr = listener.local_addr().map_err(listen_error)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            serve(&config, listener, async {
                let _ = stopped.await;
            })
            .await
        });
        Ok(RunningGateway {
            addr,
            stop: Some(stop),
            task,
        })
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
