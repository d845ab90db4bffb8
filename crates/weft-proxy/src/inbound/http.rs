//! Inbound HTTP: requests from peer proxies (multiplexed HTTP/2), stage by stage.
//!
//! ```text
//! (peer identity, from the connection) → normalize (path) → authn (JWT)
//!   → authz (AuthorizationPolicy) → rate limit (HTTPLocalRateLimitPolicy)
//!   → route (port, metrics, HTTP/1 restored) → app
//! ```
//!
//! A stage that refuses or fails a request returns a [`ProxyError`]; the edge here turns it
//! into the answer, its count and its access-log reason.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::{Request, Response};

use weft_policy::ConnectionAttrs;

use super::{app, authn, authz, normalize, rate_limit, route, Inbound, Peer};
use crate::error::ProxyError;
use crate::http::Body;
use crate::metrics::{RouteStats, INBOUND};
use crate::observe::{self, Observed};

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

    pub async fn handle(&self, mut req: Request<Body>) -> Response<Body> {
        let start = Instant::now();
        let grpc = crate::http::is_grpc(&req);
        let mut seen = {
            let snapshot = self.cx.state.load();
            let peer = observe::Peer {
                principal: &self.peer.principal,
                mtls: self.peer.mtls,
            };
            let logging = self.cx.access_log.is_some();
            let tracer = snapshot.tracer.as_ref();
            let tap = &self.cx.tap;
            Observed::start(
                logging,
                tap,
                tracer,
                &mut req,
                self.client,
                grpc,
                Some(peer),
            )
        };
        let resp = match self.forward(req, &mut seen).await {
            Ok(resp) => resp,
            Err(e) => self.edge(e, grpc),
        };
        // A gRPC call is counted when its stream ends, with the status from its trailers.
        let resp = crate::metrics::at_end::record(&self.stats, grpc, resp, start);
        if !seen.is_idle() {
            seen.route(&self.cx.local_workload(), || route::route_label(self.port));
        }
        seen.finish(self.cx.access_log.as_ref(), &self.cx.tap, resp, start, grpc)
    }

    async fn forward(
        &self,
        mut req: Request<Body>,
        seen: &mut Observed,
    ) -> Result<Response<Body>, ProxyError> {
        {
            // The policy current when the request arrives decides it, whole.
            let snapshot = self.cx.state.load();
            normalize::apply(snapshot.mesh.path_normalization, &mut req)?;
            let auth = authn::authenticate(&snapshot.authn, self.port, &mut req)?;
            let decision =
                authz::check_request(&snapshot.authz, &self.conn, &req, auth.as_deref())?;
            if let Some(d) = decision {
                seen.authz(|| snapshot.authz.authorizer.explain(&d));
            }
            rate_limit::check(&snapshot, self.port, &self.peer.principal)?;
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
