//! The server's own HTTP limits: what a client may hold open, how slowly it may send, and how
//! many uploads run at once. Nothing a client does on a connection can hang the server or make it
//! hold resources without bound.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use registry_shared::api::SlowBody;
use tokio::net::TcpListener;
use tokio::time::{Instant, Sleep};

/// Limits on what one client may do; the defaults suit a registry behind a load balancer or on a
/// developer's machine.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// A request's head (request line and headers) must arrive within this; it also closes idle
    /// keep-alive connections.
    pub header_timeout: Duration,
    /// Largest request head accepted; larger ones get 431.
    pub max_header_bytes: usize,
    /// A request body must deliver at least `min_body_rate` bytes a second, checked over windows
    /// this long: a client that stalls or trickles is cut off with 408.
    pub body_window: Duration,
    pub min_body_rate: u64,
    /// Uploads (register and the signed upload URLs) in progress at once; more get 503.
    pub max_concurrent_uploads: usize,
    /// Requests in flight may finish within this once shutdown starts.
    pub shutdown_grace: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            body_window: Duration::from_secs(10),
            min_body_rate: 1024,
            max_concurrent_uploads: 8,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// Accepts connections until `shutdown` resolves, serving each with hyper under `limits`, then
/// lets requests in flight finish (up to the grace period).
pub async fn serve_connections(
    listener: TcpListener,
    router: axum::Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_header_size(limits.max_header_bytes)
        .max_buf_size(limits.max_header_bytes.max(8192));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = stream;
        let _ = stream.set_nodelay(true);
        // Each request carries its peer's address (the url-access route admits loopback callers).
        let inner = TowerToHyperService::new(router.clone());
        let service = hyper::service::service_fn(move |mut request: http::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            hyper::service::Service::call(&inner, request)
        });
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("requests still in flight after the shutdown grace period were dropped");
    }
}

/// A request body that fails with [`SlowBody`] when a window passes with fewer than
/// `min_rate × window` bytes received (at least one).
pub struct MinRate<S> {
    inner: S,
    window: Duration,
    quota: u64,
    received_in_window: u64,
    check: Pin<Box<Sleep>>,
}

impl<S> MinRate<S> {
    pub fn new(inner: S, window: Duration, min_rate: u64) -> Self {
        let quota = ((min_rate as f64 * window.as_secs_f64()) as u64).max(1);
        Self { inner, window, quota, received_in_window: 0, check: Box::pin(tokio::time::sleep(window)) }
    }
}

impl<S, E> Stream for MinRate<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Item = Result<Bytes, Box<dyn std::error::Error + Send + Sync>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.received_in_window += chunk.len() as u64;
                return Poll::Ready(Some(Ok(chunk)));
            }
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {}
        }
        while this.check.as_mut().poll(cx).is_ready() {
            if this.received_in_window < this.quota {
                return Poll::Ready(Some(Err(Box::new(SlowBody))));
            }
            this.received_in_window = 0;
            let next = Instant::now() + this.window;
            this.check.as_mut().reset(next);
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn trickle(every: Duration, chunks: usize) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
        Box::pin(futures_util::stream::unfold(0, move |sent| async move {
            if sent == chunks {
                return None;
            }
            tokio::time::sleep(every).await;
            Some((Ok(Bytes::from_static(b"x")), sent + 1))
        }))
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_sending_a_byte_a_second_is_cut_off_after_one_window() {
        let mut body = MinRate::new(trickle(Duration::from_secs(1), 100), Duration::from_secs(10), 1024);
        let mut received = 0;
        let started = Instant::now();
        let error = loop {
            match body.next().await {
                Some(Ok(chunk)) => received += chunk.len(),
                Some(Err(e)) => break e,
                None => panic!("the trickle ended without being cut off"),
            }
        };
        assert!(error.is::<SlowBody>());
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        assert!(received < 11, "received {received} bytes");
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_fast_enough_in_every_window_arrives_whole() {
        // 2 bytes a second against a floor of 1 byte a second, over several windows.
        let body = MinRate::new(trickle(Duration::from_millis(500), 40), Duration::from_secs(2), 1);
        let chunks: Vec<_> = body.collect().await;
        assert_eq!(chunks.len(), 40);
        assert!(chunks.iter().all(Result::is_ok));
    }
}
