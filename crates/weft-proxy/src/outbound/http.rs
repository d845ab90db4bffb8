//! Outbound HTTP: the request path, stage by stage.
//!
//! ```text
//! plan (pure: snapshot + request → Service port and rule, or a workload)
//!   → filters (headers, redirect, rewrite, mirror) → fault (FaultInjection)
//!   → backend (weighted choice, its filters) → timeout (the whole request)
//!   → retry (tries, per-try timeout, budget) → balance (outlier ejection) → endpoint
//! ```
//!
//! Each stage is a file of this module and returns a [`ProxyError`] when it decides or fails
//! the request itself; this file only runs them in order. Every such error reaches the client
//! through [`ProxyError::into_response`], the one edge that makes the `weft-error` response,
//! the metric label and the access-log reason.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, Response};

use super::filters::{self, ResponseMods};
use super::last_authority::LastAuthority;
use super::plan::{self, Plan};
use super::retry::Tries;
use super::{endpoint, timeout, Outbound, Target};
use crate::balance::sticky;
use crate::error::{ProxyError, Reason};
use crate::h1::verbatim::Fields;
use crate::http::client_body::BodyWatch;
use crate::http::headers::is_upgrade;
use crate::http::{is_grpc, Body};
use crate::metrics::OUTBOUND;
use crate::observe::Observed;
use crate::state::{Rule, ServicePort, Snapshot};

#[derive(Clone)]
pub struct Handler {
    cx: Arc<Outbound>,
    target: Target,
    client: SocketAddr,
    /// Resolving the authority again for each request of a keep-alive connection is the
    /// most expensive part of routing; shared by the connection's clones (HTTP/2 streams).
    last: Arc<LastAuthority>,
    /// [`Fields::Verbatim`] while Weft's own HTTP/1 server writes the answers; hyper needs maps.
    fields: Fields,
}

impl crate::h1::server::Handle for Handler {
    fn handle(&self, req: Request<Body>) -> impl std::future::Future<Output = Response<Body>> {
        Handler::handle(self, req)
    }
}

impl Handler {
    pub fn new(cx: Arc<Outbound>, target: Target, client: SocketAddr) -> Self {
        Self {
            cx,
            target,
            client,
            last: Arc::default(),
            fields: Fields::Map,
        }
    }

    /// This handler, for answers that Weft's own HTTP/1 server writes: an HTTP/1 upstream's
    /// fields may then stay as received (see [`crate::h1::verbatim`]).
    pub fn for_h1_codec(&self) -> Self {
        Self {
            fields: Fields::Verbatim,
            ..self.clone()
        }
    }

    pub async fn handle(&self, mut req: Request<Body>) -> Response<Body> {
        let start = Instant::now();
        let snapshot = self.cx.state.load_full();
        let grpc = is_grpc(&req);
        let mut seen = Observed::start(
            self.cx.access_log.is_some(),
            &self.cx.tap,
            snapshot.tracer.as_ref(),
            &mut req,
            self.client,
            grpc,
            None,
        );
        let resp = if req.method() == http::Method::CONNECT {
            super::connect::tunnel(&self.cx, &snapshot, req, self.client)
                .unwrap_or_else(|e| self.edge(e, false))
        } else {
            self.dispatch(snapshot, req, grpc, start, &mut seen).await
        };
        seen.finish(self.cx.access_log.as_ref(), &self.cx.tap, resp, start, grpc)
    }

    /// The edge: a stage's error becomes the client's answer (and its count).
    fn edge(&self, e: ProxyError, grpc: bool) -> Response<Body> {
        if e.reason != Reason::BadRequest {
            tracing::info!(client = %self.client, error = %e, "request failed");
        }
        e.into_response(&self.cx.metrics, OUTBOUND, grpc)
    }

    async fn dispatch(
        &self,
        snapshot: Arc<Snapshot>,
        req: Request<Body>,
        grpc: bool,
        start: Instant,
        seen: &mut Observed,
    ) -> Response<Body> {
        let (snapshot, planned) = self.plan(snapshot, &req, grpc).await;
        match planned {
            Ok(Plan::Route { port, rule, prefix }) => {
                seen.route(&port.service, || rule.route.label());
                let to = Routed {
                    port: &port,
                    rule: &rule,
                    prefix: prefix.as_deref(),
                };
                let resp = self.routed(&snapshot, to, req, grpc, seen).await;
                // Counted under the endpoint that answered; a gRPC call when its stream ends,
                // with the status from its trailers.
                let to = seen.answered().map(|d| rule.stats.to(d));
                let stats = to.as_ref().unwrap_or(&rule.stats);
                crate::metrics::at_end::record(stats, grpc, resp, start)
            }
            Ok(Plan::Workload(addr)) => self
                .to_workload(&snapshot, addr, req, seen)
                .await
                .unwrap_or_else(|e| self.edge(e, grpc)),
            Err(e) => self.edge(e, grpc),
        }
    }

    /// The plan stage, asking the control plane first about a name this proxy has not seen
    /// (explicit proxy requests name Services by authority).
    async fn plan(
        &self,
        snapshot: Arc<Snapshot>,
        req: &Request<Body>,
        grpc: bool,
    ) -> (Arc<Snapshot>, Result<Plan, ProxyError>) {
        let planned = plan::plan(&snapshot, &self.target, req, grpc, &self.last);
        let (Err(e), Target::Explicit, Some(discovery)) =
            (&planned, &self.target, &self.cx.discovery)
        else {
            return (snapshot, planned);
        };
        let authority = plan::authority_of(req).unwrap_or("");
        let wanted = snapshot.discovery_names(authority);
        if e.reason != Reason::UnknownService || wanted.is_empty() {
            return (snapshot, planned);
        }
        discovery.ensure(&wanted, super::ON_DEMAND_TIMEOUT).await;
        let snapshot = self.cx.state.load_full();
        let planned = plan::plan(&snapshot, &self.target, req, grpc, &self.last);
        (snapshot, planned)
    }

    /// A routed request: filters, backend, then timeout → retry → balance → endpoint.
    async fn routed(
        &self,
        snapshot: &Snapshot,
        to: Routed<'_>,
        mut req: Request<Body>,
        grpc: bool,
        seen: &mut Observed,
    ) -> Response<Body> {
        let Routed { port, rule, prefix } = to;
        let mut mods = ResponseMods::default();
        // Most rules have no filters: not even a call then.
        if !rule.filters.is_empty() {
            if let Some(redirect) = filters::apply_rule(
                &rule.filters,
                port,
                &mut req,
                prefix,
                &mut mods,
                self.client,
            ) {
                return redirect;
            }
        }
        // Most rules have no fault: one branch.
        if let Some(fault) = &rule.fault {
            if let Some(mut aborted) = super::fault::inject(fault, grpc).await {
                mods.apply(&mut aborted);
                return aborted;
            }
        }
        let mut edits = ResponseEdits {
            mods,
            sticky_cookie: None,
        };
        let result = self
            .to_backend(snapshot, rule, req, &mut edits, grpc, seen)
            .await;
        let ResponseEdits {
            mods,
            sticky_cookie,
        } = edits;
        let mut resp = result.unwrap_or_else(|e| self.edge(e, grpc));
        if let Some(cookie) = sticky_cookie {
            resp.headers_mut().append(http::header::SET_COOKIE, cookie);
        }
        mods.apply(&mut resp);
        resp
    }

    async fn to_backend(
        &self,
        snapshot: &Snapshot,
        rule: &Rule,
        mut req: Request<Body>,
        edits: &mut ResponseEdits,
        grpc: bool,
        seen: &mut Observed,
    ) -> Result<Response<Body>, ProxyError> {
        let choice = rule.pick_backend().ok_or_else(|| {
            ProxyError::new(
                Reason::BackendNotFound,
                format!("every backend of {} has weight 0", describe(rule)),
            )
        })?;
        let backend = choice.backend.as_ref().ok_or_else(|| {
            ProxyError::new(
                Reason::BackendNotFound,
                format!("a backendRef of {} does not resolve", describe(rule)),
            )
        })?;
        filters::apply_backend(&choice.filters, &mut req, &mut edits.mods, self.client);
        edits.sticky_cookie = sticky::ensure_cookie(backend.sticky_cookie.as_ref(), &mut req);
        if backend.endpoints.is_empty() {
            return Err(ProxyError::new(
                Reason::NoEndpoints,
                format!("{} has no endpoints", backend.key),
            ));
        }
        let tries = Tries {
            backend,
            rule,
            settings: &snapshot.mesh.retries,
            client: self.client,
            connect_timeout: backend
                .connect_timeout
                .unwrap_or_else(|| connect_timeout(snapshot)),
            fields: self.fields,
            grpc,
            seen,
        };
        if is_upgrade(&req) {
            let ep = tries.pick(&req, None)?;
            tries.seen.upstream(&ep, 0);
            return endpoint::upgrade(&ep, req, tries.connect_timeout).await;
        }
        let limit = timeout::for_rule(rule, &snapshot.mesh);
        let tries = std::pin::pin!(tries.run(req));
        timeout::within(limit, || describe(rule), tries).await
    }

    /// Traffic to a workload's own address: no routes, straight to that endpoint.
    async fn to_workload(
        &self,
        snapshot: &Snapshot,
        addr: SocketAddr,
        req: Request<Body>,
        seen: &mut Observed,
    ) -> Result<Response<Body>, ProxyError> {
        let ep = snapshot
            .direct_endpoint(addr, &self.cx.registry)
            .ok_or_else(|| {
                ProxyError::new(
                    Reason::UnknownService,
                    format!("{addr} is not a workload address"),
                )
            })?;
        seen.upstream(&ep, 0);
        let connect_timeout = connect_timeout(snapshot);
        if is_upgrade(&req) {
            return endpoint::upgrade(&ep, req, connect_timeout).await;
        }
        let body = BodyWatch::of(&req);
        endpoint::send(
            weft_api::view::Protocol::Detect,
            &ep,
            req,
            connect_timeout,
            self.fields,
        )
        .await
        .map_err(|f| endpoint::failed(&ep, &f.error, body.as_ref()))
    }
}

/// What the stages before the backend want done to its answer.
struct ResponseEdits {
    /// `ResponseHeaderModifier`s of the rule and the backend.
    mods: ResponseMods,
    /// A hash policy's cookie to set.
    sticky_cookie: Option<http::HeaderValue>,
}

/// The plan stage's choice, as the later stages need it.
struct Routed<'p> {
    port: &'p ServicePort,
    rule: &'p Rule,
    prefix: Option<&'p str>,
}

fn connect_timeout(snapshot: &Snapshot) -> Duration {
    Duration::from_millis(snapshot.mesh.connect_timeout_ms.max(1))
}

fn describe(rule: &Rule) -> String {
    format!(
        "{} {} rule {}",
        rule.route.kind,
        rule.route.label(),
        rule.route.rule
    )
}
