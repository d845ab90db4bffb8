//! Outbound HTTP: resolve the Service port, match a route rule, apply its filters, pick a
//! backend and an endpoint, forward. Every decision the proxy makes itself (no route, no
//! endpoint, timeout...) is a response with `weft-error`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::header::HeaderValue;
use http::{Request, Response};
use weft_api::view::{FilterView, HeaderModifierView};

use super::forward::{self, Attempt};
use super::last_authority::LastAuthority;
use super::Target;
use crate::access_log::Entry;
use crate::h1::verbatim::{self, Fields};
use crate::http::errors::{respond, Reason};
use crate::http::{filters, is_grpc, Body};
use crate::run::Context;
use crate::state::{Filter, Rule, ServicePort, Snapshot};

#[derive(Clone)]
pub struct Handler {
    cx: Arc<Context>,
    target: Target,
    client: SocketAddr,
    /// Resolving the authority again for each request of a keep-alive connection is the
    /// most expensive part of routing; shared by the connection's clones (HTTP/2 streams).
    last: Arc<LastAuthority>,
    /// [`Fields::Verbatim`] while Weft's own HTTP/1 server writes the answers; hyper needs maps.
    fields: Fields,
}

impl Handler {
    pub fn new(cx: Arc<Context>, target: Target, client: SocketAddr) -> Self {
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
}

impl crate::h1::server::Handle for Handler {
    fn handle(&self, req: Request<Body>) -> impl std::future::Future<Output = Response<Body>> {
        Handler::handle(self, req)
    }
}

/// Where a request is going, once resolved.
enum Destination {
    Port(Arc<ServicePort>),
    Workload(SocketAddr),
}

impl Handler {
    pub async fn handle(&self, req: Request<Body>) -> Response<Body> {
        let start = Instant::now();
        let snapshot = self.cx.state.load_full();
        let grpc = is_grpc(&req);
        let mut log = self
            .cx
            .access_log
            .as_ref()
            .map(|_| Entry::outbound(&req, self.client));
        let resp = if req.method() == http::Method::CONNECT {
            super::connect::tunnel(&self.cx, &snapshot, req, self.client)
        } else {
            self.dispatch(&snapshot, req, grpc, start, log.as_mut())
                .await
        };
        if let (Some(log), Some(sink)) = (log, &self.cx.access_log) {
            sink.write(log.finish(&resp, start.elapsed()));
        }
        resp
    }

    async fn dispatch(
        &self,
        snapshot: &Arc<Snapshot>,
        req: Request<Body>,
        grpc: bool,
        start: Instant,
        log: Option<&mut Entry>,
    ) -> Response<Body> {
        let mut snapshot = snapshot.clone();
        let mut destination = self.destination(&snapshot, &req);
        if let (Err(_), Target::Explicit, Some(discovery)) =
            (&destination, &self.target, &self.cx.discovery)
        {
            // Not known yet: ask the control plane, then look again.
            if let Some(authority) = authority_of(&req) {
                let wanted = snapshot.discovery_names(authority);
                if !wanted.is_empty() {
                    discovery.ensure(&wanted, super::ON_DEMAND_TIMEOUT).await;
                    snapshot = self.cx.state.load_full();
                    destination = self.destination(&snapshot, &req);
                }
            }
        }
        let snapshot = &snapshot;
        match destination {
            Ok(Destination::Port(sp)) => self.route(snapshot, &sp, req, grpc, start, log).await,
            Ok(Destination::Workload(addr)) => self.to_workload(snapshot, addr, req, grpc).await,
            Err(detail) => {
                self.cx
                    .metrics
                    .proxy_error(crate::metrics::OUTBOUND, Reason::UnknownService.label());
                tracing::info!(client = %self.client, "{detail}");
                respond(Reason::UnknownService, &detail, grpc)
            }
        }
    }

    fn destination(
        &self,
        snapshot: &Arc<Snapshot>,
        req: &Request<Body>,
    ) -> Result<Destination, String> {
        match &self.target {
            Target::Service(addr) => snapshot
                .by_addr(*addr)
                .cloned()
                .map(Destination::Port)
                .ok_or_else(|| format!("{addr} is no longer a Service in the mesh")),
            Target::Workload(addr) => Ok(Destination::Workload(*addr)),
            Target::Explicit => {
                let authority = authority_of(req)
                    .ok_or_else(|| "request has no Host or authority".to_string())?;
                if let Some(sp) = self.last.resolve(snapshot, authority) {
                    return Ok(Destination::Port(sp));
                }
                // A workload's own address (pod IP), sent as an explicit proxy request.
                if let Ok(addr) = authority.parse::<SocketAddr>() {
                    if snapshot.workload_at(addr.ip()).is_some() {
                        return Ok(Destination::Workload(addr));
                    }
                }
                Err(format!(
                    "`{authority}` is not a Service (or workload address) this proxy knows"
                ))
            }
        }
    }

    async fn route(
        &self,
        snapshot: &Arc<Snapshot>,
        sp: &Arc<ServicePort>,
        mut req: Request<Body>,
        grpc: bool,
        start: Instant,
        log: Option<&mut Entry>,
    ) -> Response<Body> {
        let table = if grpc && sp.grpc.is_attached() {
            Some(&sp.grpc)
        } else if sp.http.is_attached() {
            Some(&sp.http)
        } else if sp.grpc.is_attached() {
            Some(&sp.grpc)
        } else {
            None
        };
        let (rule, prefix) = match table {
            None => (&sp.default_rule, None),
            Some(t) => {
                let (method, uri, headers) = (req.method(), req.uri(), req.headers());
                match t.find(method, uri.path(), uri.query(), headers) {
                    Some((rule, prefix)) => (rule, prefix.map(str::to_string)),
                    None => {
                        self.cx
                            .metrics
                            .proxy_error(crate::metrics::OUTBOUND, Reason::NoRoute.label());
                        let detail = format!(
                            "no rule of the routes attached to {} port {} matches",
                            sp.service, sp.port
                        );
                        return respond(Reason::NoRoute, &detail, grpc);
                    }
                }
            }
        };
        if let Some(log) = log {
            log.route(&sp.service, &rule.route.label());
        }
        let mut response_mods: Vec<HeaderModifierView> = Vec::new();
        if let Some(resp) = self.apply_filters(
            &rule.filters,
            sp,
            &mut req,
            prefix.as_deref(),
            &mut response_mods,
        ) {
            rule.stats
                .record(resp.status().as_u16(), None, start.elapsed());
            return resp;
        }
        let mut resp = self
            .to_backend(snapshot, rule, req, grpc, &mut response_mods)
            .await;
        if !response_mods.is_empty() {
            verbatim::materialize(&mut resp);
        }
        for m in &response_mods {
            filters::modify_headers(resp.headers_mut(), m);
        }
        // A gRPC call is counted when its stream ends, with the status from its trailers.
        crate::metrics::at_end::record(&rule.stats, grpc, resp, start)
    }

    /// Applies a filter list; returns a response when a filter answers the request itself.
    fn apply_filters(
        &self,
        list: &[Filter],
        sp: &ServicePort,
        req: &mut Request<Body>,
        prefix: Option<&str>,
        response_mods: &mut Vec<HeaderModifierView>,
    ) -> Option<Response<Body>> {
        for f in list {
            match f {
                Filter::Plain(FilterView::RequestRedirect(r)) => {
                    let authority =
                        authority_of(req).map_or_else(|| sp.authority.clone(), str::to_string);
                    let host = crate::state::split_authority(&authority)
                        .map(|(h, _)| h.to_string())
                        .unwrap_or(authority);
                    return Some(filters::redirect(req.uri(), &host, sp.port, r, prefix));
                }
                Filter::Plain(FilterView::RequestHeaderModifier(m)) => {
                    filters::modify_headers(req.headers_mut(), m)
                }
                Filter::Plain(FilterView::ResponseHeaderModifier(m)) => {
                    response_mods.push(m.clone())
                }
                Filter::Plain(FilterView::UrlRewrite(r)) => {
                    let (uri, host) = filters::rewrite(req.uri(), r, prefix);
                    if let Some(uri) = uri {
                        *req.uri_mut() = uri;
                    }
                    if let Some(host) = host.and_then(|h| HeaderValue::from_str(&h).ok()) {
                        set_authority(req, host);
                    }
                }
                Filter::Plain(FilterView::RequestMirror(_)) => {}
                Filter::Mirror {
                    backend,
                    per_million,
                } => {
                    if let Some(backend) = backend {
                        if fastrand::u32(..1_000_000) < *per_million {
                            forward::mirror(backend.clone(), req, self.client);
                        }
                    }
                }
            }
        }
        None
    }

    async fn to_backend(
        &self,
        snapshot: &Arc<Snapshot>,
        rule: &Arc<Rule>,
        mut req: Request<Body>,
        grpc: bool,
        response_mods: &mut Vec<HeaderModifierView>,
    ) -> Response<Body> {
        let Some(choice) = rule.pick_backend() else {
            return respond(
                Reason::BackendNotFound,
                &format!("every backend of {} has weight 0", describe(rule)),
                grpc,
            );
        };
        let Some(backend) = choice.backend.clone() else {
            return respond(
                Reason::BackendNotFound,
                &format!("a backendRef of {} does not resolve", describe(rule)),
                grpc,
            );
        };
        for f in &choice.filters {
            match f {
                Filter::Plain(FilterView::RequestHeaderModifier(m)) => {
                    filters::modify_headers(req.headers_mut(), m)
                }
                Filter::Plain(FilterView::ResponseHeaderModifier(m)) => {
                    response_mods.push(m.clone())
                }
                Filter::Mirror {
                    backend: Some(b),
                    per_million,
                } if fastrand::u32(..1_000_000) < *per_million => {
                    forward::mirror(b.clone(), &req, self.client);
                }
                _ => {}
            }
        }
        let sticky = forward::ensure_sticky_cookie(&backend, &mut req);
        if backend.endpoints.is_empty() {
            return respond(
                Reason::NoEndpoints,
                &format!("{} has no endpoints", backend.key),
                grpc,
            );
        }
        let timeout = rule
            .request_timeout
            .or_else(|| {
                (snapshot.mesh.request_timeout_ms > 0)
                    .then(|| std::time::Duration::from_millis(snapshot.mesh.request_timeout_ms))
            })
            .filter(|d| !d.is_zero());
        let attempt = Attempt {
            cx: &self.cx,
            backend: &backend,
            rule,
            client: self.client,
            grpc,
            connect_timeout: std::time::Duration::from_millis(
                snapshot.mesh.connect_timeout_ms.max(1),
            ),
            fields: self.fields,
        };
        // Pinned in place: moving the attempt's (large) future into a timeout would copy it.
        let mut fut = std::pin::pin!(attempt.run(req));
        let mut resp = match timeout {
            Some(t) => match tokio::time::timeout(t, fut.as_mut()).await {
                Ok(r) => r,
                Err(_) => respond(
                    Reason::Timeout,
                    &format!("request timeout {t:?} of {}", describe(rule)),
                    grpc,
                ),
            },
            None => fut.as_mut().await,
        };
        if let Some(cookie) = sticky {
            resp.headers_mut().append(http::header::SET_COOKIE, cookie);
        }
        resp
    }

    /// Traffic to a workload's own address: no routes, straight to that endpoint.
    async fn to_workload(
        &self,
        snapshot: &Arc<Snapshot>,
        addr: SocketAddr,
        req: Request<Body>,
        grpc: bool,
    ) -> Response<Body> {
        let Some(workload) = snapshot.workload_at(addr.ip()) else {
            return respond(
                Reason::UnknownService,
                &format!("{addr} is not a workload address"),
                grpc,
            );
        };
        let endpoint = self.cx.registry.direct(
            addr,
            workload,
            snapshot.mesh.inbound_port,
            &snapshot.mesh.trust_domain,
        );
        let timeout = std::time::Duration::from_millis(snapshot.mesh.connect_timeout_ms.max(1));
        forward::to_endpoint(&self.cx, &endpoint, req, timeout, grpc, self.fields).await
    }
}

fn describe(rule: &Rule) -> String {
    format!(
        "{} {} rule {}",
        rule.route.kind,
        rule.route.label(),
        rule.route.rule
    )
}

/// The request's authority: from an absolute URI (explicit proxy requests), else `Host`.
pub fn authority_of<B>(req: &Request<B>) -> Option<&str> {
    if let Some(a) = req.uri().authority() {
        return Some(a.as_str());
    }
    req.headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
}

fn set_authority<B>(req: &mut Request<B>, host: HeaderValue) {
    if req.uri().authority().is_some() {
        let mut parts = req.uri().clone().into_parts();
        if let Ok(a) = host.to_str().unwrap_or("").parse() {
            parts.authority = Some(a);
            if let Ok(uri) = http::Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
    }
    req.headers_mut().insert(http::header::HOST, host);
}
