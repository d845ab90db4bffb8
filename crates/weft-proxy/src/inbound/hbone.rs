//! HBONE, the receiving side. A peer proxy on another host reaches this one through this
//! host's tunnel, which splices its mutual TLS here unopened; the TLS says `h2` (ALPN), and
//! every HTTP/2 `CONNECT` stream in it is one connection from that peer.
//!
//! The `CONNECT` authority must be this workload's address (so a proxy is never a relay to
//! anywhere else) and names the application port. The stream then goes where a direct
//! connection from a peer would: after a transport header when a Weft proxy sent it (opaque
//! bytes, or HTTP/2 for the port, which must be the authority's), else as opaque bytes for
//! the authority's port (another HBONE client, such as Istio's ztunnel).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use super::accept::serve_mesh;
use super::identity::Peer;
use super::{authz, tcp, Inbound};
use crate::error::{ProxyError, Reason};
use crate::http::{empty, Body};
use crate::io::transport::{self, Peeked};
use crate::io::PrefixedIo;

/// Serves the `CONNECT` streams of one HBONE connection until the peer is done or the
/// proxy drains.
pub async fn serve<I>(
    io: I,
    client: SocketAddr,
    local: SocketAddr,
    peer: Peer,
    sni: Option<String>,
    cx: &Arc<Inbound>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let context = Arc::new(Stream {
        client,
        local,
        peer,
        sni,
        cx: cx.clone(),
    });
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let context = context.clone();
        async move { Ok::<_, Infallible>(context.connect(req)) }
    });
    crate::http::server::serve_http2(io, service, cx.limits, &cx.drain).await;
}

/// What every stream of one HBONE connection shares.
struct Stream {
    client: SocketAddr,
    local: SocketAddr,
    peer: Peer,
    sni: Option<String>,
    cx: Arc<Inbound>,
}

impl Stream {
    /// Answers one `CONNECT` and, once it is accepted, serves its stream in a task.
    fn connect(self: Arc<Self>, mut req: Request<Incoming>) -> Response<Body> {
        let port = match self.target(&req) {
            Ok(port) => port,
            Err(e) => {
                super::identity::refuse(&self.cx, self.client, &e);
                return e.response(false);
            }
        };
        let upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            match upgrade.await {
                Ok(upgraded) => self.serve(TokioIo::new(upgraded), port).await,
                Err(e) => {
                    tracing::debug!(client = %self.client, error = %e, "HBONE stream was not established")
                }
            }
        });
        let mut ok = Response::new(empty());
        *ok.status_mut() = StatusCode::OK;
        ok
    }

    /// The application port a `CONNECT` asks for, if it is one this proxy serves.
    fn target(&self, req: &Request<Incoming>) -> Result<u16, ProxyError> {
        if req.method() != Method::CONNECT {
            return Err(ProxyError::new(
                Reason::BadRequest,
                format!("HBONE carries CONNECT only, not {}", req.method()),
            ));
        }
        let authority = req.uri().authority().map(|a| a.as_str()).unwrap_or("");
        let Ok(target) = authority.parse::<SocketAddr>() else {
            return Err(ProxyError::new(
                Reason::BadRequest,
                format!("CONNECT authority `{authority}` is not an address and port"),
            ));
        };
        let own = self
            .cx
            .state
            .load()
            .view
            .workload
            .as_ref()
            .map(|w| w.address);
        if target.ip() != self.local.ip() && Some(target.ip()) != own {
            return Err(ProxyError::new(
                Reason::BadRequest,
                format!("CONNECT to {target}: this proxy serves its own workload only"),
            ));
        }
        if target.port() == 0 {
            return Err(ProxyError::new(Reason::BadRequest, "CONNECT to port 0"));
        }
        Ok(target.port())
    }

    async fn serve(&self, mut io: TokioIo<hyper::upgrade::Upgraded>, port: u16) {
        let cx = &self.cx;
        let wait = Duration::from_millis(cx.state.load().mesh.detect_timeout_ms.max(1));
        let conn = authz::connection(&self.peer, self.client, self.local, port, self.sni.clone());
        match transport::read_header(&mut io, wait).await {
            Ok(Peeked::Mesh(header, rest)) if header.port == port => {
                let io = PrefixedIo::new(rest, io);
                serve_mesh(io, header, self.client, self.peer.clone(), conn, cx).await
            }
            Ok(Peeked::Mesh(header, _)) => super::identity::refuse(
                cx,
                self.client,
                &ProxyError::new(
                    Reason::BadRequest,
                    format!(
                        "HBONE stream for port {port} carries a header for port {}",
                        header.port
                    ),
                ),
            ),
            Ok(Peeked::Other(bytes)) => {
                let io = PrefixedIo::new(bytes, io);
                tcp::forward(io, port, self.client, &self.peer, conn, cx).await
            }
            Err(e) => {
                tracing::debug!(client = %self.client, error = %e, "HBONE stream failed before its first bytes")
            }
        }
    }
}
