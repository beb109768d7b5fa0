//! The tonic echo floor: a unary gRPC server on tonic 0.14 with prost 0.14's codec, what a
//! tonic-prost-build service compiles to (the generated server code written out by hand: no
//! protoc), answering `floors.Echo/Echo` with the request's bytes cut (or zero-padded) to
//! `--reply-bytes`. bench/run.sh sizes the request and the reply like gamegate's storage RPC.
//!
//!   echo-server --listen 127.0.0.1:18482 --reply-bytes 3
//!
//! `#[tokio::main]` like gamegate's binary: one worker per core it may run on (one, pinned).

use std::{
    net::SocketAddr,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use tonic::codegen::{Body, BoxFuture, Service, StdError, http};

#[cfg(all(unix, not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// `message EchoRequest { bytes payload = 1; }`
#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoRequest {
    #[prost(bytes = "bytes", tag = "1")]
    pub payload: Bytes,
}

/// `message EchoReply { bytes payload = 1; }`
#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoReply {
    #[prost(bytes = "bytes", tag = "1")]
    pub payload: Bytes,
}

/// What `#[tonic::async_trait] trait Echo` would be implemented by.
struct Echoer {
    reply_bytes: usize,
}

impl Echoer {
    async fn echo(
        &self,
        request: tonic::Request<EchoRequest>,
    ) -> Result<tonic::Response<EchoReply>, tonic::Status> {
        let payload = request.into_inner().payload;
        let payload = if payload.len() >= self.reply_bytes {
            payload.slice(..self.reply_bytes)
        } else {
            let mut padded = payload.to_vec();
            padded.resize(self.reply_bytes, 0);
            Bytes::from(padded)
        };
        Ok(tonic::Response::new(EchoReply { payload }))
    }
}

/// The generated `EchoServer<T>`, for the one method.
struct EchoServer {
    inner: Arc<Echoer>,
}

impl Clone for EchoServer {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl tonic::server::NamedService for EchoServer {
    const NAME: &'static str = "floors.Echo";
}

impl<B> Service<http::Request<B>> for EchoServer
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        match req.uri().path() {
            "/floors.Echo/Echo" => {
                struct EchoSvc(pub Arc<Echoer>);
                impl tonic::server::UnaryService<EchoRequest> for EchoSvc {
                    type Response = EchoReply;
                    type Future = BoxFuture<tonic::Response<Self::Response>, tonic::Status>;
                    fn call(&mut self, request: tonic::Request<EchoRequest>) -> Self::Future {
                        let inner = Arc::clone(&self.0);
                        Box::pin(async move { inner.echo(request).await })
                    }
                }
                let inner = self.inner.clone();
                Box::pin(async move {
                    let method = EchoSvc(inner);
                    let codec = tonic_prost::ProstCodec::default();
                    let mut grpc = tonic::server::Grpc::new(codec)
                        .apply_compression_config(Default::default(), Default::default())
                        .apply_max_message_size_config(None, None);
                    Ok(grpc.unary(method, req).await)
                })
            }
            _ => Box::pin(async move {
                let mut response = http::Response::new(tonic::body::Body::default());
                let headers = response.headers_mut();
                headers.insert(
                    tonic::Status::GRPC_STATUS,
                    (tonic::Code::Unimplemented as i32).into(),
                );
                headers.insert(
                    http::header::CONTENT_TYPE,
                    tonic::metadata::GRPC_CONTENT_TYPE,
                );
                Ok(response)
            }),
        }
    }
}

fn usage() -> ! {
    eprintln!("usage: echo-server --listen ADDR --reply-bytes N");
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let mut listen: Option<SocketAddr> = None;
    let mut reply_bytes: Option<usize> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--listen" => listen = Some(value.parse().unwrap_or_else(|_| usage())),
            "--reply-bytes" => reply_bytes = Some(value.parse().unwrap_or_else(|_| usage())),
            _ => usage(),
        }
    }
    let (Some(listen), Some(reply_bytes)) = (listen, reply_bytes) else {
        usage()
    };
    let service = EchoServer {
        inner: Arc::new(Echoer { reply_bytes }),
    };
    tonic::transport::Server::builder()
        .add_service(service)
        .serve(listen)
        .await
        .expect("the echo server runs");
}
