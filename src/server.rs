//! Wiring: the gateway services of the route table, `grpc.health.v1` (overall and
//! per service), server reflection (v1 and v1alpha) on one port; load shedding;
//! graceful shutdown that drains in-flight calls within a grace period.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use secrecy::SecretString;
use thiserror::Error;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::Routes;
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    callers::CallerRegistry,
    config::Config,
    gateway::Gateway,
    platform::{
        Configured, MiniGameClient, MsdkClient, OpenApiClient, Platforms, UpstreamHttp,
        msdk::MsdkAppKeys,
    },
    proto,
    routes::{RouteDeclarationError, RouteTable},
};

#[derive(Debug, Error)]
pub enum ServeError {
    #[error("the proto declares a route gamegate cannot serve: {0}")]
    Routes(#[from] RouteDeclarationError),
    #[error("a platform base url cannot be used: {0}")]
    BaseUrl(#[from] crate::platform::http::InvalidBaseUrl),
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

/// Builds the platform clients of the configuration.
pub fn build_platforms(config: &Config) -> Result<Platforms, ServeError> {
    let http = UpstreamHttp::new();
    let minigame = match &config.qq_minigame {
        None => None,
        Some(platform) => {
            let budget = Duration::from_millis(platform.budget_ms);
            Some(Configured {
                client: MiniGameClient::new(
                    http.upstream(&platform.base_url)?,
                    platform
                        .apps
                        .iter()
                        .map(|(appid, app)| (appid.clone(), app.secret.clone())),
                    budget,
                ),
                budget,
            })
        }
    };
    let openapi = match &config.qq_openapi {
        None => None,
        Some(platform) => Some(Configured {
            client: OpenApiClient::new(
                http.upstream(&platform.base_url)?,
                platform
                    .apps
                    .iter()
                    .map(|(appid, app)| (appid.clone(), SecretString::clone(&app.appkey))),
            ),
            budget: Duration::from_millis(platform.budget_ms),
        }),
    };
    let msdk = match &config.msdk {
        None => None,
        Some(platform) => Some(Configured {
            client: MsdkClient::new(
                http.upstream(&platform.base_url)?,
                platform.apps.iter().map(|(appid, app)| {
                    let sig_key = match (app.encode, &app.appkey) {
                        (1, Some(appkey)) => appkey.clone(),
                        _ => app.msdkkey.clone(),
                    };
                    (
                        appid.clone(),
                        MsdkAppKeys {
                            sig_key,
                            appkey: app.appkey.clone(),
                            encode: app.encode,
                            encrypt: app.encrypt,
                            video_channels: app
                                .video_channels
                                .iter()
                                .filter_map(|(id, secret)| Some((id.parse().ok()?, secret.clone())))
                                .collect(),
                        },
                    )
                }),
            ),
            budget: Duration::from_millis(platform.budget_ms),
        }),
    };
    Ok(Platforms::new(minigame, openapi, msdk))
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
    let gateway = Gateway::new(table.clone(), build_platforms(config)?, callers);

    let (health, health_service) = tonic_health::server::health_reporter();
    for service in table.services() {
        health
            .set_service_status(service, ServingStatus::Serving)
            .await;
    }
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let mut builder = Routes::builder();
    builder
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    let mut router = builder.routes().into_axum_router();
    for service in table.services() {
        router = router.route_service(&format!("/{service}/{{*rpc}}"), gateway.clone());
    }
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
        for service in services.iter().map(String::as_str).chain([""]) {
            health
                .set_service_status(service, ServingStatus::NotServing)
                .await;
        }
        let _ = draining_tx.send(());
    };
    let server = tonic::transport::Server::builder()
        .concurrency_limit_per_connection(config.max_concurrent_calls_per_connection)
        .load_shed(true)
        .add_routes(routes)
        .serve_with_incoming_shutdown(nodelay(listener), announce);
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

/// Accepted connections with Nagle's algorithm off: tonic's own `tcp_nodelay`
/// applies only to listeners it binds itself, and small gRPC answers held back
/// for a delayed ACK cost milliseconds each.
fn nodelay(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    TcpListenerStream::new(listener).map(|accepted| {
        accepted.inspect(|stream| {
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%error, "cannot disable nagle on an accepted connection");
            }
        })
    })
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
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServeError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| ServeError::Listen {
            addr: config.listen,
            source,
        })?;
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
