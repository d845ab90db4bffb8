//! A gRPC channel to the control plane: TCP, TLS 1.3 (the control plane's SPIFFE id checked
//! exactly), HTTP/2. Small on purpose: the generated tonic clients need only a
//! `Service<Request>`; a connection is opened per stream session and reopened by the caller.

use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use http::uri::{Authority, Scheme};
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls_pki_types::ServerName;
use tokio_rustls::TlsConnector;
use tonic::body::Body;
use tonic::codegen::Service;

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("connecting to the control plane at {addr}: {reason}")]
    Connect { addr: SocketAddr, reason: String },
    #[error("TLS with the control plane at {addr}: {reason}")]
    Tls { addr: SocketAddr, reason: String },
}

#[derive(Clone)]
pub struct Channel {
    sender: http2::SendRequest<Body>,
}

/// Opens a channel; every step is bounded by `timeout`.
pub async fn connect(
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
) -> Result<Channel, ChannelError> {
    let fail = |reason: String| ChannelError::Connect { addr, reason };
    let tcp = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| fail(format!("timed out after {timeout:?}")))?
        .map_err(|e| fail(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let name = ServerName::try_from("weft-control").map_err(|e| fail(e.to_string()))?;
    let stream = tokio::time::timeout(timeout, TlsConnector::from(tls).connect(name, tcp))
        .await
        .map_err(|_| fail(format!("TLS handshake timed out after {timeout:?}")))?
        .map_err(|e| ChannelError::Tls {
            addr,
            reason: e.to_string(),
        })?;
    let handshake = http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5))
        .keep_alive_while_idle(true)
        .handshake(TokioIo::new(stream));
    let (sender, conn) = tokio::time::timeout(timeout, handshake)
        .await
        .map_err(|_| fail("HTTP/2 handshake timed out".into()))?
        .map_err(|e| fail(e.to_string()))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(%addr, error = %e, "control plane connection closed");
        }
    });
    Ok(Channel { sender })
}

impl Service<Request<Body>> for Channel {
    type Response = Response<Incoming>;
    type Error = hyper::Error;
    type Future = BoxFuture<'static, Result<Response<Incoming>, hyper::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.sender.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        // HTTP/2 requests need a scheme and authority; tonic sends only the path.
        let mut parts = req.uri().clone().into_parts();
        parts.scheme = Some(Scheme::HTTPS);
        parts.authority = Some(Authority::from_static("weft-control"));
        if let Ok(uri) = Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
        let fut = self.sender.send_request(req);
        Box::pin(fut)
    }
}
