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
    /// The peer host's tunnel refused or failed the `CONNECT` (nothing was sent). Boxed: a
    /// rare error should not grow every future that holds an `UpstreamError`.
    #[error("{0}")]
    Tunnel(Box<TunnelError>),
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
    /// A kept-alive connection the server had closed, found so only once the request was on
    /// it: no answer came. The server never read the request.
    #[error("HTTP/1 exchange with {addr} on an idle connection it had closed: {source}")]
    StaleHttp1 {
        addr: SocketAddr,
        source: crate::h1::Error,
    },
    /// A DestinationRule `connectionPool` limit refused it before anything was sent.
    #[error("{0}")]
    Overloaded(crate::error::ProxyError),
    #[error("request to {addr} failed: {source}")]
    Request {
        addr: SocketAddr,
        source: hyper::Error,
    },
}

/// Why a `CONNECT` through a peer host's tunnel failed.
#[derive(Debug, thiserror::Error)]
#[error("HBONE tunnel {tunnel} to {target}: {reason}")]
pub struct TunnelError {
    pub tunnel: SocketAddr,
    pub target: SocketAddr,
    pub reason: String,
}

impl UpstreamError {
    pub fn tunnel(tunnel: SocketAddr, target: SocketAddr, reason: impl Into<String>) -> Self {
        UpstreamError::Tunnel(Box::new(TunnelError {
            tunnel,
            target,
            reason: reason.into(),
        }))
    }

    /// True when the request certainly never reached the application (safe to retry even if
    /// not idempotent).
    pub fn never_sent(&self) -> bool {
        match self {
            UpstreamError::Connect { .. }
            | UpstreamError::ConnectTimeout { .. }
            | UpstreamError::Tls { .. }
            | UpstreamError::Tunnel(_)
            | UpstreamError::Handshake { .. } => true,
            UpstreamError::Request { source, .. } => source.is_canceled(),
            UpstreamError::Http1 { .. }
            | UpstreamError::StaleHttp1 { .. }
            | UpstreamError::Overloaded(_) => false,
        }
    }

    /// True when the request met a connection the peer had closed, or was closing, before
    /// it processed the request: an idle HTTP/1 connection closed under it, or an HTTP/2
    /// stream refused (see [`Self::refused_stream`]). The retry stage sends such a request
    /// again at once, without drawing from the budget (HTTP/1: idempotent requests only,
    /// since a server may have read part of it).
    pub fn stale(&self) -> bool {
        matches!(self, UpstreamError::StaleHttp1 { .. }) || self.refused_stream()
    }

    /// True when the peer turned the stream away unprocessed: `REFUSED_STREAM`, or a
    /// `GOAWAY` that came before it (a connection the peer was closing, as when it was idle
    /// too long). Sending it again on a new connection is always safe.
    pub fn refused_stream(&self) -> bool {
        let UpstreamError::Request { source, .. } = self else {
            return false;
        };
        let Some(h2) =
            std::error::Error::source(source).and_then(|e| e.downcast_ref::<h2::Error>())
        else {
            return false;
        };
        h2.reason() == Some(h2::Reason::REFUSED_STREAM) || (h2.is_go_away() && h2.is_remote())
    }
}

/// A request that failed, and the request itself when it never left the proxy (no
/// connection could be had for it): it can go to another endpoint as it is, body and all,
/// without the copy a retry of a request already sent needs.
pub struct SendFailure {
    pub error: UpstreamError,
    pub unsent: Option<Request<Body>>,
}

impl SendFailure {
    pub fn sent(error: UpstreamError) -> Self {
        Self {
            error,
            unsent: None,
        }
    }
}

impl std::fmt::Display for SendFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::fmt::Debug for SendFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendFailure")
            .field("error", &self.error)
            .field("unsent", &self.unsent.is_some())
            .finish()
    }
}

impl From<UpstreamError> for SendFailure {
    fn from(error: UpstreamError) -> Self {
        Self::sent(error)
    }
}

/// Marks an answer that came on a connection opened for its request: its latency includes
/// the connect (and handshakes), which says nothing of how fast the endpoint answers, so
/// the balancer does not learn from it.
#[derive(Clone, Copy, Debug)]
pub struct FreshConnection;

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
    /// After this many requests a connection is replaced (0: never); `sent` counts them.
    max_requests: u32,
    sent: std::sync::atomic::AtomicU32,
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
            max_requests: 0,
            sent: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// Replaces the connection after `n` requests (a DestinationRule's
    /// `maxRequestsPerConnection`; 0: never). Requests on the old one finish there.
    pub fn with_max_requests(mut self, n: u32) -> Self {
        self.max_requests = n;
        self
    }

    /// A plain h2c connection (no transport header).
    pub fn plain(addr: SocketAddr) -> Self {
        Self {
            dial: addr,
            peer: None,
            ready: ArcSwapOption::empty(),
            connecting: tokio::sync::Mutex::new(()),
            max_requests: 0,
            sent: std::sync::atomic::AtomicU32::new(0),
        }
    }

    pub fn peer(&self) -> SocketAddr {
        self.dial
    }

    /// Sends `req`. A connection that turns out closed before the request could go on it
    /// (the peer closed it while idle) is replaced and the request sent on the new one, once.
    pub async fn send(
        &self,
        req: Request<Body>,
        connect_timeout: Duration,
    ) -> Result<Response<Incoming>, SendFailure> {
        let (mut sender, reused) = match self.sender(connect_timeout).await {
            Ok(s) => s,
            Err(error) => {
                return Err(SendFailure {
                    error,
                    unsent: Some(req),
                })
            }
        };
        let fresh = |mut resp: Response<Incoming>| {
            if !reused {
                resp.extensions_mut().insert(FreshConnection);
            }
            resp
        };
        if self.max_requests > 0
            && self.sent.fetch_add(1, std::sync::atomic::Ordering::AcqRel) + 1 >= self.max_requests
        {
            // This one goes on it; the next opens a new one.
            self.ready.store(None);
            self.sent.store(0, std::sync::atomic::Ordering::Release);
        }
        let mut failed = match sender.try_send_request(req).await {
            Ok(resp) => return Ok(fresh(resp)),
            Err(e) => e,
        };
        if failed.error().is_closed() || failed.error().is_canceled() {
            self.ready.store(None);
        }
        let source = match (reused, failed.take_message()) {
            (true, Some(req)) => {
                tracing::debug!(addr = %self.dial, "HTTP/2 connection closed while idle; sending on a new one");
                let (mut sender, _) = match self.sender(connect_timeout).await {
                    Ok(s) => s,
                    Err(error) => {
                        return Err(SendFailure {
                            error,
                            unsent: Some(req),
                        })
                    }
                };
                match sender.send_request(req).await {
                    Ok(mut resp) => {
                        resp.extensions_mut().insert(FreshConnection);
                        return Ok(resp);
                    }
                    Err(e) => e,
                }
            }
            // A new connection that would not take it: the request is still here.
            (false, Some(req)) => {
                return Err(SendFailure {
                    error: UpstreamError::Request {
                        addr: self.dial,
                        source: failed.into_error(),
                    },
                    unsent: Some(req),
                })
            }
            _ => failed.into_error(),
        };
        Err(SendFailure::sent(UpstreamError::Request {
            addr: self.dial,
            source,
        }))
    }

    /// A ready sender, and whether its connection was open already (reused).
    async fn sender(
        &self,
        connect_timeout: Duration,
    ) -> Result<(http2::SendRequest<Body>, bool), UpstreamError> {
        if let Some(s) = self.ready.load_full() {
            if !s.is_closed() {
                return Ok(((*s).clone(), true));
            }
        }
        let _connecting = self.connecting.lock().await;
        if let Some(s) = self.ready.load_full() {
            if !s.is_closed() {
                return Ok(((*s).clone(), true));
            }
        }
        let stream = match &self.peer {
            Some(p) => {
                let header = Header {
                    carriage: Carriage::Http2,
                    port: p.port,
                };
                dial_peer(&p.target, header, &p.tls, connect_timeout).await?
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
        Ok((sender, false))
    }
}
