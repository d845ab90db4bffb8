//! Opaque inbound connections — a peer's opaque stream, or a client outside the mesh captured
//! on its way to an application port — relayed to the application with authorization.
//!
//! When a policy applies, the connection's first bytes are read: an HTTP/1 request head (a
//! WebSocket upgrade crossing the mesh, a plaintext client's request) is judged as the HTTP
//! request it is, anything else as TCP. A denied HTTP request is answered 403 with
//! `weft-error`; a denied TCP connection is closed. While the connection lasts, every
//! configuration change decides again on the same attributes, and a connection the new
//! policy denies is closed.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use weft_policy::{normalize, ConnectionAttrs, RequestAttrs};

use super::identity::{self, Peer};
use super::sniff::{self, Head};
use super::{authn, authz, Inbound};
use crate::error::{ProxyError, Reason};
use crate::http::upstream::connect;
use crate::io::PrefixedIo;
use crate::metrics::INBOUND;
use crate::state::Snapshot;

pub async fn forward<I>(
    mut io: I,
    port: u16,
    client: SocketAddr,
    peer: &Peer,
    conn: ConnectionAttrs,
    cx: &Inbound,
) where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let mut changes = cx.changes.clone();
    changes.borrow_and_update();
    let snapshot = cx.state.load_full();
    let (prefix, head) = if snapshot.authz.is_empty() && snapshot.authn.is_empty() {
        (Bytes::new(), None)
    } else {
        // As long as protocol detection waits: a client that speaks second is judged as TCP.
        let wait = Duration::from_millis(snapshot.mesh.detect_timeout_ms.max(1));
        match sniff::head(&mut io, wait).await {
            Ok(read) => read,
            Err(e) => {
                return tracing::debug!(%client, error = %e, "inbound connection failed before a decision")
            }
        }
    };
    if let Err(e) = decide(&snapshot, &conn, port, head.as_ref()) {
        if head.is_some() {
            let _ = io.write_all(&e.http1_bytes()).await;
            let _ = io.shutdown().await;
        }
        return identity::refuse(cx, client, &e);
    }
    drop(snapshot);
    let mut io = PrefixedIo::new(prefix, io);
    let app = SocketAddr::new(cx.app_ip, port);
    let stats = cx.metrics.tcp(INBOUND, &cx.local_workload());
    let timeout = Duration::from_millis(cx.state.load().mesh.connect_timeout_ms.max(1));
    let mut upstream = match connect(app, timeout).await {
        Ok(s) => s,
        Err(e) => {
            let e = ProxyError::new(
                Reason::AppUnreachable,
                format!("local application {app}: {e}"),
            );
            return identity::refuse(cx, client, &e);
        }
    };
    stats.opened.inc();
    let relay = tokio::io::copy_bidirectional(&mut io, &mut upstream);
    tokio::pin!(relay);
    loop {
        tokio::select! {
            done = &mut relay => {
                match done {
                    Ok((from_client, to_client)) => {
                        stats.received.inc_by(from_client);
                        stats.sent.inc_by(to_client);
                    }
                    Err(e) => tracing::debug!(error = %e, "inbound TCP connection ended with an error"),
                }
                break;
            }
            Ok(()) = changes.changed() => {
                let snapshot = cx.state.load_full();
                if let Err(e) = decide(&snapshot, &conn, port, head.as_ref()) {
                    tracing::info!(%client, port, "closing an open connection: the new configuration denies it");
                    identity::refuse(cx, client, &e);
                    break;
                }
            }
        }
    }
    stats.closed.inc();
    if let Some(log) = &cx.access_log {
        log.write(crate::access_log::tcp_line(
            INBOUND,
            client,
            port,
            &peer.principal,
            peer.mtls,
        ));
    }
}

/// The decision about a connection under `snapshot`'s policies: as the HTTP request it
/// started with, or as TCP.
fn decide(
    snapshot: &Snapshot,
    conn: &ConnectionAttrs,
    port: u16,
    head: Option<&Head>,
) -> Result<(), ProxyError> {
    let Some(h) = head else {
        return authz::check_connection(&snapshot.authz, conn).map(drop);
    };
    if h.method.bytes().any(|b| b.is_ascii_lowercase()) {
        return Err(ProxyError::new(
            Reason::BadRequest,
            "the method is not upper-case",
        ));
    }
    let auth = authn::authenticate_head(&snapshot.authn, port, &h.headers, h.query.as_deref())?;
    let path = normalize::normalize(&h.path, snapshot.mesh.path_normalization)
        .map_err(|e| ProxyError::new(Reason::BadRequest, e.to_string()))?;
    let attrs = RequestAttrs {
        method: &h.method,
        host: &h.host,
        path: &path,
        headers: &h.headers,
        auth: auth.as_deref(),
    };
    authz::check_attrs(&snapshot.authz, conn, &attrs).map(drop)
}
