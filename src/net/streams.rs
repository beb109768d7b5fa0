//! The tower layer that counts a connection's open streams: a stream opens
//! when its request reaches the service and closes when its answer's body has
//! been sent or dropped. The connection's idle timeout runs only while none
//! is open.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tonic::transport::server::TcpConnectInfo;
use tower::{Layer, Service};

use super::connection::{ConnectionInfo, StreamGuard};

/// Counts open streams on the connection of every request (see the module).
#[derive(Debug, Clone, Copy, Default)]
pub struct TrackStreamsLayer;

impl<S> Layer<S> for TrackStreamsLayer {
    type Service = TrackStreams<S>;

    fn layer(&self, inner: S) -> TrackStreams<S> {
        TrackStreams { inner }
    }
}

#[derive(Debug, Clone)]
pub struct TrackStreams<S> {
    inner: S,
}

impl<S, RequestBody, ResponseBody> Service<http::Request<RequestBody>> for TrackStreams<S>
where
    S: Service<http::Request<RequestBody>, Response = http::Response<ResponseBody>>,
{
    type Response = http::Response<TrackedBody<ResponseBody>>;
    type Error = S::Error;
    type Future = TrackedResponse<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<RequestBody>) -> Self::Future {
        let guard = match request.extensions().get::<ConnectionInfo>() {
            Some(info) => {
                let guard = info.activity.stream_opened();
                // What tonic's `Request::remote_addr` reads.
                let tcp = TcpConnectInfo {
                    local_addr: info.local_addr,
                    remote_addr: Some(info.remote_addr),
                };
                request.extensions_mut().insert(tcp);
                Some(guard)
            }
            None => None,
        };
        TrackedResponse {
            inner: self.inner.call(request),
            guard,
        }
    }
}

pin_project! {
    /// The answer's future; the stream stays open while it runs.
    pub struct TrackedResponse<F> {
        #[pin]
        inner: F,
        guard: Option<StreamGuard>,
    }
}

impl<F, ResponseBody, E> Future for TrackedResponse<F>
where
    F: Future<Output = Result<http::Response<ResponseBody>, E>>,
{
    type Output = Result<http::Response<TrackedBody<ResponseBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.inner.poll(cx))?;
        let guard = this.guard.take();
        Poll::Ready(Ok(response.map(|body| TrackedBody { body, guard })))
    }
}

pin_project! {
    /// The answer's body; the stream stays open until it ends or is dropped.
    pub struct TrackedBody<B> {
        #[pin]
        body: B,
        guard: Option<StreamGuard>,
    }
}

impl<B: Body> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.body.poll_frame(cx));
        if frame.is_none() {
            this.guard.take();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
