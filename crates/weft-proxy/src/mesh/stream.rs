//! A connection to a peer proxy's inbound port: TCP, then mutual TLS when the endpoint is
//! meshed with mTLS, then the transport header (inside TLS, so it is authenticated too). A
//! peer on another host is reached through its host's tunnel instead ([`super::hbone`]),
//! and the header travels in the tunnel's stream.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use weft_identity::SpiffeId;

use super::tls::MeshTls;
use crate::http::upstream::{connect, UpstreamError};
use crate::io::transport::Header;

/// Where a peer proxy is and who it must be.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PeerTarget {
    /// The peer proxy's inbound address.
    pub dial: SocketAddr,
    /// `Some`: open mutual TLS and accept exactly this identity.
    pub identity: Option<SpiffeId>,
    /// `Some`: the peer is on another host, reached through this tunnel (HBONE).
    pub tunnel: Option<SocketAddr>,
}

pub enum MeshStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// A `CONNECT` stream through a peer host's tunnel.
    Tunnel(Box<TokioIo<Upgraded>>),
}

/// Dials a peer and writes the transport header.
pub async fn dial_peer(
    target: &PeerTarget,
    header: Header,
    tls: &Arc<MeshTls>,
    timeout: Duration,
) -> Result<MeshStream, UpstreamError> {
    let addr = target.dial;
    if let Some(tunnel) = target.tunnel {
        let app = SocketAddr::new(addr.ip(), header.port);
        let Some(identity) = &target.identity else {
            return Err(UpstreamError::tunnel(
                tunnel,
                app,
                "crossing hosts needs mutual TLS, and the peer has no identity",
            ));
        };
        // Boxed: the tunnel's future (TLS, HTTP/2 handshake, CONNECT) is large, and every
        // future that may dial a peer (a request's, on every path) would otherwise carry
        // its space and copy it at each move.
        let io = Box::pin(super::hbone::open(tunnel, app, identity, tls, timeout)).await?;
        let mut stream = MeshStream::Tunnel(Box::new(io));
        stream
            .write_all(&header.encode())
            .await
            .map_err(|source| UpstreamError::Connect { addr, source })?;
        return Ok(stream);
    }
    let client = match &target.identity {
        Some(id) => tls.client_for(id).map_err(|e| UpstreamError::Tls {
            addr,
            reason: e.to_string(),
        })?,
        None => None,
    };
    let tcp = connect(addr, timeout).await?;
    let mut stream = match client {
        None => MeshStream::Plain(tcp),
        Some(config) => {
            // SPIFFE certificates carry no DNS name; the verifier checks the URI SAN instead.
            let name = ServerName::try_from("weft.mesh").map_err(|e| UpstreamError::Tls {
                addr,
                reason: e.to_string(),
            })?;
            let handshake = TlsConnector::from(config).connect(name, tcp);
            match tokio::time::timeout(timeout, handshake).await {
                Ok(Ok(s)) => MeshStream::Tls(Box::new(s)),
                Ok(Err(e)) => {
                    return Err(UpstreamError::Tls {
                        addr,
                        reason: e.to_string(),
                    });
                }
                Err(_) => return Err(UpstreamError::ConnectTimeout { addr, timeout }),
            }
        }
    };
    stream
        .write_all(&header.encode())
        .await
        .map_err(|source| UpstreamError::Connect { addr, source })?;
    Ok(stream)
}

impl MeshStream {
    /// Whether the stream is mutual TLS (a tunnel's always is).
    pub fn is_tls(&self) -> bool {
        matches!(self, MeshStream::Tls(_) | MeshStream::Tunnel(_))
    }
}

impl AsyncRead for MeshStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MeshStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MeshStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            MeshStream::Tunnel(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MeshStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MeshStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MeshStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            MeshStream::Tunnel(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MeshStream::Plain(s) => Pin::new(s).poll_flush(cx),
            MeshStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            MeshStream::Tunnel(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MeshStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MeshStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            MeshStream::Tunnel(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MeshStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            MeshStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            MeshStream::Tunnel(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            MeshStream::Plain(s) => s.is_write_vectored(),
            MeshStream::Tls(s) => s.is_write_vectored(),
            MeshStream::Tunnel(s) => s.is_write_vectored(),
        }
    }
}
