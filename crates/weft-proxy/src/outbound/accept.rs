//! Accepting an outbound connection: where it was going (its original destination), which
//! protocol it speaks (declared by the Service port's `appProtocol`, else detected from the
//! client's first bytes), and who serves it — Weft's HTTP/1 codec (hyper for what the codec
//! leaves alone), hyper's HTTP/2, or the opaque TCP relay. Anything that cannot be placed is
//! refused with a log line that says what was dialed.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::net::TcpStream;
use weft_api::view::Protocol;

use super::{http, tcp, Outbound, Target, ON_DEMAND_TIMEOUT};
use crate::detect::{self, Detected};
use crate::error::{ProxyError, Reason};
use crate::h1::server::Outcome;
use crate::io::{orig_dst, PrefixedIo};
use crate::metrics::OUTBOUND;

pub async fn handle(mut stream: TcpStream, client: SocketAddr, cx: &Arc<Outbound>) {
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
                refuse(cx, client, ProxyError::new(
                    Reason::UnknownDestination,
                    format!("{dst} is neither a Service VIP and port nor a workload address in the mesh"),
                ));
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
        (Detected::Http1 | Detected::Closed, _) => {}
        (Detected::Http2, _) => {
            let svc = crate::handler_service!(boxed http::Handler::new(cx.clone(), target, client));
            crate::http::server::serve_http2(io, svc, cx.limits, &cx.drain).await;
        }
        (_, Target::Explicit) => refuse(cx, client, ProxyError::new(
            Reason::ExplicitNotHttp,
            "a connection made to the proxy directly did not start with an HTTP request, so there is no way to tell where it is going",
        )),
        (_, Target::Service(dst) | Target::Workload(dst)) => {
            if let Err(e) = tcp::forward(io, *dst, client, cx).await {
                refuse(cx, client, e);
            }
        }
    }
}

/// A connection-level refusal: counted under its reason and logged; the connection closes.
fn refuse(cx: &Outbound, client: SocketAddr, e: ProxyError) {
    e.count(&cx.metrics, OUTBOUND);
    tracing::warn!(%client, reason = e.reason.label(), "refusing connection: {}", e.detail);
}
