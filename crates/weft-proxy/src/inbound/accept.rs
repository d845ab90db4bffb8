//! Accepting an inbound connection. A peer proxy starts with the transport header (inside
//! mutual TLS when it has an identity), which names the local port and says whether HTTP
//! (multiplexed HTTP/2) or opaque bytes follow; one on another host speaks HBONE instead
//! (ALPN `h2`, see [`super::hbone`]). A connection without the header comes from
//! outside the mesh: a captured one is forwarded as TCP to the port it was addressed to; one
//! made to the proxy directly has no port to go to and is refused.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::identity::{self, Peer};
use super::{authz, http, tcp, Inbound};
use crate::error::{ProxyError, Reason};
use crate::io::transport::{self, Carriage, Peeked};
use crate::io::{orig_dst, PrefixedIo};

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

pub async fn handle(mut stream: TcpStream, client: SocketAddr, cx: &Arc<Inbound>) {
    crate::io::tune(&stream);
    // A connection captured on its way to an application port (not made to the proxy's own
    // port) comes from outside the mesh: peers dial the inbound port directly.
    let Ok(local) = stream.local_addr() else {
        return;
    };
    let listen_port = local.port();
    let captured = orig_dst::original_dst(&stream).filter(|d| d.port() != listen_port);
    let wait = Duration::from_millis(cx.state.load().mesh.detect_timeout_ms.max(1));
    let peeked = match transport::read_header(&mut stream, wait).await {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(%client, error = %e, "inbound connection failed before its first bytes");
            return;
        }
    };
    match peeked {
        Peeked::Other(bytes) if captured.is_none() && bytes.first() == Some(&TLS_HANDSHAKE) => {
            accept_mtls(PrefixedIo::new(bytes, stream), client, local, cx).await
        }
        Peeked::Mesh(header, rest) => {
            if let Err(e) = identity::check_plaintext(cx, header.port) {
                return identity::refuse(cx, client, &e);
            }
            let io = PrefixedIo::new(rest, stream);
            let peer = Peer::plaintext();
            let conn = authz::connection(&peer, client, local, header.port, None);
            serve_mesh(io, header, client, peer, conn, cx).await
        }
        Peeked::Other(bytes) => match captured {
            Some(dst) => {
                if let Err(e) = identity::check_plaintext(cx, dst.port()) {
                    return identity::refuse(cx, client, &e);
                }
                let io = PrefixedIo::new(bytes, stream);
                let peer = Peer::plaintext();
                let conn = authz::connection(&peer, client, dst, dst.port(), None);
                tcp::forward(io, dst.port(), client, &peer, conn, cx).await
            }
            None => identity::refuse(cx, client, &ProxyError::new(
                Reason::NoTargetPort,
                "it was made to the proxy directly without a Weft transport header, so the application port is unknown",
            )),
        },
    }
}

/// A peer proxy's mutual TLS: its identity, then what its transport header says.
async fn accept_mtls<I>(io: I, client: SocketAddr, local: SocketAddr, cx: &Arc<Inbound>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut tls, peer) = match identity::accept_mtls(io, cx).await {
        Ok(accepted) => accepted,
        Err(e) => return identity::refuse(cx, client, &e),
    };
    if tls.get_ref().1.alpn_protocol() == Some(crate::mesh::hbone::ALPN) {
        // A peer on another host, through this host's tunnel.
        let sni = tls.get_ref().1.server_name().map(str::to_string);
        return super::hbone::serve(tls, client, local, peer, sni, cx).await;
    }
    let wait = Duration::from_millis(cx.state.load().mesh.detect_timeout_ms.max(1)) * 10;
    match transport::read_header(&mut tls, wait).await {
        Ok(Peeked::Mesh(header, rest)) => {
            let sni = tls.get_ref().1.server_name().map(str::to_string);
            let conn = authz::connection(&peer, client, local, header.port, sni);
            serve_mesh(PrefixedIo::new(rest, tls), header, client, peer, conn, cx).await
        }
        Ok(Peeked::Other(_)) => identity::refuse(
            cx,
            client,
            &ProxyError::new(
                Reason::NoTargetPort,
                format!(
                    "mutual TLS connection from {} without a Weft transport header",
                    peer.principal
                ),
            ),
        ),
        Err(e) => tracing::debug!(%client, error = %e, "mTLS connection failed before its header"),
    }
}

pub(super) async fn serve_mesh<I>(
    io: I,
    header: transport::Header,
    client: SocketAddr,
    peer: Peer,
    conn: weft_policy::ConnectionAttrs,
    cx: &Arc<Inbound>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match header.carriage {
        Carriage::Opaque => tcp::forward(io, header.port, client, &peer, conn, cx).await,
        Carriage::Http2 => {
            // Served in a task of its own, registered so that a configuration change can cut
            // it (`open`), instead of every connection watching for changes at every wake.
            let handler = crate::handler_service!(boxed http::Handler::new(
                cx.clone(),
                header.port,
                client,
                peer,
                conn.clone()
            ));
            let (limits, drain) = (cx.limits, cx.drain.clone());
            let serving = tokio::spawn(async move {
                crate::http::server::serve_http2(io, handler, limits, &drain).await
            });
            let _registered = cx.open.add(conn, client, serving.abort_handle());
            let _ = serving.await;
        }
    }
}
