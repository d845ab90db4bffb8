//! The inbound route stage: which local port a request from the mesh is for, how it is
//! counted (per port and peer identity, resolved once per connection), and the request as
//! the application should see it — an HTTP/1 request that crossed the mesh as HTTP/2
//! (`weft-orig-proto`) becomes HTTP/1 again, with its authority back in `Host`.

use std::net::SocketAddr;
use std::sync::Arc;

use http::header::HeaderValue;
use http::{Request, Version};

use super::{Inbound, Peer};
use crate::http::headers::{strip_hop_by_hop, ORIG_PROTO};
use crate::http::Body;
use crate::metrics::{RouteStats, INBOUND};

/// The protocol the application gets the request in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppProtocol {
    /// HTTP/1 at the client (restored from `weft-orig-proto`).
    Http1,
    /// HTTP/2 end to end (h2c to the application).
    Http2,
}

/// For the application on `port`: hop-by-hop headers gone, HTTP/1 restored.
/// Prepares `req` in place (the request is large: moving it costs a copy) and says where it
/// goes and in which protocol.
pub fn to_app(cx: &Inbound, port: u16, req: &mut Request<Body>) -> (SocketAddr, AppProtocol) {
    let orig = req.headers_mut().remove(ORIG_PROTO);
    strip_hop_by_hop(req.headers_mut());
    let app = SocketAddr::new(cx.app_ip, port);
    match orig.as_ref().and_then(|v| v.to_str().ok()) {
        Some(v) if v.starts_with("HTTP/1") => {
            restore_http1(req, v == "HTTP/1.0");
            (app, AppProtocol::Http1)
        }
        _ => (app, AppProtocol::Http2),
    }
}

/// The metric handles for requests from `peer` to `port`.
pub fn stats(cx: &Inbound, port: u16, peer: &Peer) -> Arc<RouteStats> {
    cx.ports.stats(port, peer, || {
        cx.metrics.route_from(
            INBOUND,
            &cx.local_workload(),
            &route_label(port),
            &peer.principal,
            peer.policy(),
            &cx.local_destination(),
        )
    })
}

/// The inbound `route` label: the port (inbound traffic has no route resource).
pub fn route_label(port: u16) -> String {
    format!("port-{port}")
}

/// An HTTP/1 request that crossed the mesh as HTTP/2: its authority becomes `Host` again.
fn restore_http1(req: &mut Request<Body>, http10: bool) {
    if let Some(authority) = req.uri().authority().map(|a| a.as_str().to_string()) {
        if let Ok(v) = HeaderValue::from_str(&authority) {
            req.headers_mut().insert(http::header::HOST, v);
        }
    }
    *req.version_mut() = if http10 {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
}
