//! Connections to upstreams.
//!
//! - To a meshed endpoint: one multiplexed HTTP/2 connection per endpoint, to the peer
//!   proxy's inbound port, opened with the transport header ([`H2Connection`]). HTTP/1
//!   requests ride it as HTTP/2 with `weft-orig-proto`, so a thousand keep-alive clients cost
//!   the peer one connection.
//! - To an application (inbound) or an endpoint without a proxy: HTTP/1 through a
//!   [`super::pool::Http1Pool`], HTTP/2 through an [`H2Connection`] without a header.
//!
//! A ready connection is found without locking (`arc-swap`); only opening a new one takes an
//! async mutex, so that concurrent requests wait for one connect instead of racing many.

use std::net::SocketAddr;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;

use super::Body;
use crate::io::transport::{Carriage, Header};
use crate::mesh::{dial_peer, MeshStream, MeshTls, PeerTarget};

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("connecting to {addr}: timed out after {timeout:?}")]
    ConnectTimeout { addr: SocketAddr, timeout: Duration },
    #[error("mutual TLS with {addr}: {reason}")]
    Tls { addr: SocketAddr, reason: String },
    #[error("HTTP/2 handshake with {addr}: {source}")]
    Handshake {
        addr: SocketAddr,
        source: hyper::Error,
    },
    #[error("HTTP/1 exchange with {addr}: {source}")]
    Http1 {
        addr: SocketAddr,
        source: crate::h1::Error,
    },
    #[error("request to {addr} failed: {source}")]
    Request {
        addr: SocketAddr,
        source: hyper::Error,
    },
}

impl UpstreamError {
    /// True when the request certainly never reached the application (safe to retry even if
    /// not idempotent).
    pub fn never_sent(&self) -> bool {
        match self {
            UpstreamError::Connect { .. }
            | UpstreamError::ConnectTimeout { .. }
            | UpstreamError::Tls { .. }
            | UpstreamError::Handshake { .. } => true,
            UpstreamError::Request { source, .. } => source.is_canceled(),
            UpstreamError::Http1 { .. } => false,
        }
    }
}

/// Opens a TCP connection with a deadline, tuned for proxying.
pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, UpstreamError> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => {
            crate::io::tune(&s);
            Ok(s)
        }
        Ok(Err(source)) => Err(UpstreamError::Connect { addr, source }),
        Err(_) => Err(UpstreamError::ConnectTimeout { addr, timeout }),
    }
}

/// One multiplexed HTTP/2 connection, reopened on demand.
pub struct H2Connection {
    dial: SocketAddr,
    peer: Option<Peer>,
    ready: ArcSwapOption<http2::SendRequest<Body>>,
    connecting: tokio::sync::Mutex<()>,
}

/// A peer proxy: who it must be, and which local port on it the requests are for.
struct Peer {
    target: PeerTarget,
    port: u16,
    tls: std::sync::Arc<MeshTls>,
}

impl H2Connection {
    /// A connection to a peer proxy for its local port `target_port` (mutual TLS when the
    /// target names an identity).
    pub fn new(target: PeerTarget, target_port: u16, tls: std::sync::Arc<MeshTls>) -> Self {
        Self {
            dial: target.dial,
            peer: Some(Peer {
                target,
                port: target_port,
                tls,
            }),
            ready: ArcSwapOption::empty(),
            connecting: tokio::sync::Mutex::new(()),
        }
    }

    /// A plain h2c connection (no transport header).
    pub fn plain(addr: SocketAddr) -> Self {
        Self {
            dial: addr,
            peer: None,
            ready: ArcSwapOption::empty(),
            connecting: tokio::sync::Mutex::new(()),
        }
    }

    pub fn peer(&self) -> SocketAddr {
        self.dial
    }

    pub async fn send(
        &self,
        req: Request<Body>,
        connect_timeout: Duration,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let mut sender = self.sender(connect_timeout).await?;
        let result = sender.send_request(req).await;
        if let Err(e) = &result {
            if e.is_closed() || e.is_canceled() {
                self.ready.store(None);
            }
        }
        result.map_err(|source| UpstreamError::Request {
            addr: self.dial,
            source,
        })
    }

    async fn sender(
        &self,
        connect_timeout: Duration,
    ) -> Result<http2::SendRequest<Body>, UpstreamError> {
        if let Some(s) = self.ready.load_full() {
            if !s.is_closed() {
                return Ok((*s).clone());
            }
        }
        let _connecting = self.connecting.lock().await;
        if let Some(s) = self.ready.load_full() {
            if !s.is_closed() {
                return Ok((*s).clone());
            }
        }
        let stream = match &self.peer {
            Some(p) => {
                let header = Header {
                    carriage: Carriage::Http2,
                    port: p.port,
                };
                dial_peer(&p.target, Some(header), &p.tls, connect_timeout).await?
            }
            None => MeshStream::Plain(connect(self.dial, connect_timeout).await?),
        };
        let handshake = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10))
            .handshake(TokioIo::new(stream));
        let (sender, conn) = match tokio::time::timeout(connect_timeout, handshake).await {
            Ok(Ok(pair)) => pair,
            Ok(Err(source)) => {
                return Err(UpstreamError::Handshake {
                    addr: self.dial,
                    source,
                })
            }
            Err(_) => {
                return Err(UpstreamError::ConnectTimeout {
                    addr: self.dial,
                    timeout: connect_timeout,
                })
            }
        };
        let addr = self.dial;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%addr, error = %e, "HTTP/2 connection closed");
            }
        });
        self.ready.store(Some(std::sync::Arc::new(sender.clone())));
        Ok(sender)
    }
}
