//! The outbound side: connections the local workload makes.
//!
//! A connection's target is decided once, when it is accepted: the Service its original
//! destination (VIP and port) belongs to, a workload's own address, or — for a connection made
//! to the proxy directly — nothing yet, in which case it must be HTTP and each request is
//! routed by its authority (explicit proxy mode). Anything else is refused, with a log line
//! that says what was dialed.

mod connect;
mod forward;
mod http;
mod last_authority;
mod tcp;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::net::{TcpListener, TcpStream};
use weft_api::view::Protocol;

use crate::detect::{self, Detected};
use crate::h1::server::Outcome;
use crate::io::{orig_dst, PrefixedIo};
use crate::metrics::OUTBOUND;
use crate::run::Context;

/// What a connection was addressed to.
#[derive(Clone, Debug)]
pub enum Target {
    /// A Service VIP and port (captured connection).
    Service(SocketAddr),
    /// A workload's own address and port (captured connection to a pod IP).
    Workload(SocketAddr),
    /// The proxy itself: route each HTTP request by its authority.
    Explicit,
}

pub async fn serve(listener: TcpListener, cx: Arc<Context>) {
    crate::listen::accept_loop(listener, cx, "outbound", |stream, peer, cx| async move {
        handle(stream, peer, &cx).await
    })
    .await
}

/// How long a connection waits for the control plane to answer about a destination this
/// proxy has not seen before.
pub const ON_DEMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

async fn handle(mut stream: TcpStream, client: SocketAddr, cx: &Arc<Context>) {
    crate::io::tune(&stream);
    let mut snapshot = cx.state.load_full();
    let dst = orig_dst::original_dst(&stream);
    if let (Some(dst), Some(discovery)) = (dst, &cx.discovery) {
        if snapshot.by_addr(dst).is_none() && snapshot.workload_at(dst.ip()).is_none() {
            let wanted = snapshot.discovery_names(&dst.ip().to_string());
            discovery.ensure(&wanted, ON_DEMAND_TIMEOUT).await;
            snapshot = cx.state.load_full();
        }
    }
    let (target, declared) = match dst {
        None => (Target::Explicit, Protocol::Detect),
        Some(dst) => {
            if let Some(sp) = snapshot.by_addr(dst) {
                (Target::Service(dst), sp.protocol)
            } else if snapshot.workload_at(dst.ip()).is_some() {
                (Target::Workload(dst), Protocol::Detect)
            } else {
                cx.metrics.proxy_error(OUTBOUND, "unknown-destination");
                tracing::warn!(
                    %client, destination = %dst,
                    "refusing connection: {dst} is neither a Service VIP and port nor a workload address in the mesh"
                );
                return;
            }
        }
    };
    let (protocol, prefix) = match declared {
        Protocol::Http1 => (Detected::Http1, Bytes::new()),
        Protocol::Http2 | Protocol::Grpc => (Detected::Http2, Bytes::new()),
        Protocol::Tcp => (Detected::Opaque, Bytes::new()),
        Protocol::Detect => {
            let timeout = std::time::Duration::from_millis(snapshot.mesh.detect_timeout_ms.max(1));
            match detect::detect(&mut stream, timeout).await {
                Ok((d, bytes)) => {
                    cx.metrics.detected(OUTBOUND, d.label());
                    (d, bytes)
                }
                Err(e) => {
                    tracing::debug!(%client, error = %e, "connection failed during detection");
                    return;
                }
            }
        }
    };
    drop(snapshot);
    if protocol == Detected::Http1 {
        // Weft's own HTTP/1 codec first; hyper takes over for what it leaves alone.
        let handler = http::Handler::new(cx.clone(), target, client);
        let codec = handler.for_h1_codec();
        if let Outcome::Handoff(io) =
            crate::h1::server::serve(stream, prefix, &codec, cx.limits, &cx.drain).await
        {
            let svc = crate::handler_service!(handler);
            crate::http::server::serve_http1(io, svc, cx.limits, &cx.drain).await;
        }
        return;
    }
    let io = PrefixedIo::new(prefix, stream);
    match (protocol, &target) {
        (Detected::Http1, _) => {}
        (Detected::Http2, _) => {
            let svc = crate::handler_service!(boxed http::Handler::new(cx.clone(), target, client));
            crate::http::server::serve_http2(io, svc, cx.limits, &cx.drain).await;
        }
        (Detected::Closed, _) => {}
        (_, Target::Explicit) => {
            cx.metrics.proxy_error(OUTBOUND, "explicit-not-http");
            tracing::warn!(
                %client,
                "refusing connection made to the proxy directly: it did not start with an HTTP request, so there is no way to tell where it is going"
            );
        }
        (_, Target::Service(dst) | Target::Workload(dst)) => {
            tcp::forward(io, *dst, client, cx).await
        }
    }
}
