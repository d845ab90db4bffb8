//! HTTP `CONNECT` in explicit proxy mode (`curl -x http://proxy https://svc/`): the tunnel
//! goes to one endpoint of the named Service port (its TCPRoute's backends, or its own
//! endpoints; HTTP routes do not apply to an opaque tunnel) or to a workload's own address,
//! and carries opaque bytes — through the mesh as an opaque stream.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use crate::balance::PickContext;
use crate::http::errors::{respond, Reason};
use crate::http::{empty, Body};
use crate::run::Context;
use crate::state::{Endpoint, Snapshot};

pub fn tunnel(
    cx: &Arc<Context>,
    snapshot: &Arc<Snapshot>,
    mut req: Request<Body>,
    client: SocketAddr,
) -> Response<Body> {
    let Some(authority) = req.uri().authority().map(|a| a.to_string()) else {
        return respond(Reason::BadRequest, "CONNECT needs host:port", false);
    };
    let (endpoint, service) = match choose(cx, snapshot, &authority, client) {
        Ok(chosen) => chosen,
        Err((reason, detail)) => {
            cx.metrics
                .proxy_error(crate::metrics::OUTBOUND, reason.label());
            return respond(reason, &detail, false);
        }
    };
    let connect_timeout = Duration::from_millis(snapshot.mesh.connect_timeout_ms.max(1));
    let upgrade = hyper::upgrade::on(&mut req);
    let cx = cx.clone();
    tokio::spawn(async move {
        match upgrade.await {
            Ok(upgraded) => {
                super::tcp::pipe(
                    TokioIo::new(upgraded),
                    &endpoint,
                    &service,
                    client,
                    connect_timeout,
                    &cx,
                )
                .await
            }
            Err(e) => tracing::debug!(error = %e, "CONNECT tunnel was not established"),
        }
    });
    let mut resp = Response::new(empty());
    *resp.status_mut() = StatusCode::OK;
    resp
}

fn choose(
    cx: &Context,
    snapshot: &Snapshot,
    authority: &str,
    client: SocketAddr,
) -> Result<(Arc<Endpoint>, String), (Reason, String)> {
    if let Some(sp) = snapshot.by_authority(authority) {
        let rule = sp.tcp.as_ref().map(|t| &t.rule).unwrap_or(&sp.default_rule);
        let backend = rule.pick_backend().and_then(|b| b.backend.clone()).ok_or((
            Reason::BackendNotFound,
            format!("the backend of {} does not resolve", rule.route.label()),
        ))?;
        let headers = http::HeaderMap::new();
        let pick = PickContext {
            headers: &headers,
            query: None,
            source_ip: client.ip(),
        };
        let endpoint = backend
            .policy
            .pick(&backend.endpoints, &pick)
            .cloned()
            .ok_or((
                Reason::NoEndpoints,
                format!("{} has no endpoints", backend.key),
            ))?;
        return Ok((endpoint, sp.service.clone()));
    }
    if let Ok(addr) = authority.parse::<SocketAddr>() {
        if let Some(w) = snapshot.workload_at(addr.ip()) {
            let endpoint = cx.registry.direct(
                addr,
                w,
                snapshot.mesh.inbound_port,
                &snapshot.mesh.trust_domain,
            );
            return Ok((endpoint, format!("{}/{}", w.namespace, w.name)));
        }
    }
    Err((
        Reason::UnknownService,
        format!("`{authority}` is not a Service (or workload address) this proxy knows"),
    ))
}
