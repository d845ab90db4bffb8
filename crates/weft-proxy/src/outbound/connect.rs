//! HTTP `CONNECT` in explicit proxy mode (`curl -x http://proxy https://svc/`): the tunnel
//! goes to one endpoint of the named Service port (its TCPRoute's backends, or its own
//! endpoints; HTTP routes do not apply to an opaque tunnel) or to a workload's own address,
//! and carries opaque bytes — through the mesh as an opaque stream.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use super::tcp::{pipe, service_endpoint};
use super::Outbound;
use crate::error::{ProxyError, Reason};
use crate::http::{empty, Body};
use crate::metrics::OUTBOUND;
use crate::state::{Endpoint, Snapshot};

pub fn tunnel(
    cx: &Arc<Outbound>,
    snapshot: &Arc<Snapshot>,
    mut req: Request<Body>,
    client: SocketAddr,
) -> Result<Response<Body>, ProxyError> {
    let authority = req
        .uri()
        .authority()
        .map(|a| a.to_string())
        .ok_or_else(|| ProxyError::new(Reason::BadRequest, "CONNECT needs host:port"))?;
    let (endpoint, service) = choose(cx, snapshot, &authority, client)?;
    let connect_timeout = Duration::from_millis(snapshot.mesh.connect_timeout_ms.max(1));
    let upgrade = hyper::upgrade::on(&mut req);
    let metrics = cx.metrics.clone();
    tokio::spawn(async move {
        match upgrade.await {
            Ok(upgraded) => {
                let io = TokioIo::new(upgraded);
                if let Err(e) = pipe(io, &endpoint, &service, connect_timeout, &metrics).await {
                    e.count(&metrics, OUTBOUND);
                    tracing::info!(%client, error = %e, "CONNECT tunnel failed");
                }
            }
            Err(e) => tracing::debug!(error = %e, "CONNECT tunnel was not established"),
        }
    });
    let mut resp = Response::new(empty());
    *resp.status_mut() = StatusCode::OK;
    Ok(resp)
}

fn choose(
    cx: &Outbound,
    snapshot: &Snapshot,
    authority: &str,
    client: SocketAddr,
) -> Result<(Arc<Endpoint>, String), ProxyError> {
    if let Some(sp) = snapshot.by_authority(authority) {
        return Ok((service_endpoint(sp, client)?, sp.service.clone()));
    }
    if let Ok(addr) = authority.parse::<SocketAddr>() {
        if let Some(ep) = snapshot.direct_endpoint(addr, &cx.registry) {
            let service = format!("{}/{}", ep.namespace, ep.workload);
            return Ok((ep, service));
        }
    }
    Err(ProxyError::new(
        Reason::UnknownService,
        format!("`{authority}` is not a Service (or workload address) this proxy knows"),
    ))
}
