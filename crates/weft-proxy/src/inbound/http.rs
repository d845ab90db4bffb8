//! Inbound HTTP: requests from peer proxies (multiplexed HTTP/2), stage by stage.
//!
//! ```text
//! (peer identity, from the connection) → normalize (path) → authn (JWT)
//!   → authz (AuthorizationPolicy) → route (port, metrics, HTTP/1 restored) → app
//! ```
//!
//! A stage that refuses or fails a request returns a [`ProxyError`]; the edge here turns it
//! into the answer, its count and its access-log reason.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::{Request, Response};

use weft_policy::ConnectionAttrs;

use super::{app, authn, authz, normalize, route, Inbound, Peer};
use crate::access_log::Entry;
use crate::error::ProxyError;
use crate::http::Body;
use crate::metrics::{RouteStats, INBOUND};

#[derive(Clone)]
pub struct Handler {
    cx: Arc<Inbound>,
    port: u16,
    client: SocketAddr,
    peer: Peer,
    /// What authorization knows of the connection (shared by its streams).
    conn: Arc<ConnectionAttrs>,
    stats: Arc<RouteStats>,
}

impl Handler {
    pub fn new(
        cx: Arc<Inbound>,
        port: u16,
        client: SocketAddr,
        peer: Peer,
        conn: ConnectionAttrs,
    ) -> Self {
        let stats = route::stats(&cx, port, &peer);
        Self {
            cx,
            port,
            client,
            peer,
            conn: Arc::new(conn),
            stats,
        }
    }

    pub async fn handle(&self, req: Request<Body>) -> Response<Body> {
        let start = Instant::now();
        let mut entry = self
            .cx
            .access_log
            .as_ref()
            .map(|_| Entry::inbound(&req, self.client, &self.peer.principal, self.peer.mtls));
        let grpc = crate::http::is_grpc(&req);
        let resp = match self.forward(req, entry.as_mut()).await {
            Ok(resp) => resp,
            Err(e) => self.edge(e, grpc),
        };
        // A gRPC call is counted when its stream ends, with the status from its trailers.
        let resp = crate::metrics::at_end::record(&self.stats, grpc, resp, start);
        if let (Some(log), Some(entry)) = (&self.cx.access_log, entry.as_mut()) {
            entry.route(&self.cx.local_workload(), &route::route_label(self.port));
            log.write(entry.finish(&resp, start.elapsed()));
        }
        resp
    }

    async fn forward(
        &self,
        mut req: Request<Body>,
        entry: Option<&mut Entry>,
    ) -> Result<Response<Body>, ProxyError> {
        {
            // The policy current when the request arrives decides it, whole.
            let snapshot = self.cx.state.load();
            normalize::apply(snapshot.mesh.path_normalization, &mut req)?;
            let auth = authn::authenticate(&snapshot.authn, self.port, &mut req)?;
            let decision =
                authz::check_request(&snapshot.authz, &self.conn, &req, auth.as_deref())?;
            if let (Some(entry), Some(d)) = (entry, decision) {
                entry.authz(snapshot.authz.authorizer.explain(&d));
            }
        }
        let (app, protocol) = route::to_app(&self.cx, self.port, &mut req);
        app::send(&self.cx, app, protocol, req).await
    }

    /// The edge: a stage's error becomes the peer's answer (and its count).
    fn edge(&self, e: ProxyError, grpc: bool) -> Response<Body> {
        tracing::info!(client = %self.client, peer = %self.peer.principal, error = %e, "inbound request failed");
        e.into_response(&self.cx.metrics, INBOUND, grpc)
    }
}
