//! Serving one client connection with hyper, with the limits that protect the proxy from bad
//! clients (head size, header count, slow heads) and graceful shutdown on drain.

use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};

use super::Body;
use crate::drain;

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// A request head must be complete within this of its first bytes.
    pub header_read_timeout: Duration,
    /// A client connection idle between requests is closed after this.
    pub keep_alive_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_headers: usize,
}

impl Limits {
    /// The largest request head accepted: the configured size, but never under hyper's
    /// smallest read buffer (8 KiB), so that Weft's HTTP/1 codec and hyper agree.
    pub fn head_bytes(&self) -> usize {
        self.max_header_bytes.max(8192)
    }
}

/// Serves HTTP/1.1 (with upgrades) until the client is done or the proxy drains.
pub async fn serve_http1<I, S>(io: I, service: S, limits: Limits, watch: &drain::Watch)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<http::Request<Incoming>, Response = http::Response<Body>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.head_bytes())
        .max_headers(limits.max_headers)
        .keep_alive(true);
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = watch.signaled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "HTTP/1 connection ended with an error");
    }
}

/// Serves HTTP/2 (prior knowledge) until the client is done or the proxy drains.
pub async fn serve_http2<I, S>(io: I, service: S, limits: Limits, watch: &drain::Watch)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<http::Request<Incoming>, Response = http::Response<Body>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .max_header_list_size(limits.max_header_bytes as u32)
        .max_concurrent_streams(1024)
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10));
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = watch.signaled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "HTTP/2 connection ended with an error");
    }
}
