//! Outbound opaque TCP: a TCPRoute's weighted backends (or the Service's own endpoints), one
//! endpoint per connection, bytes copied both ways and counted.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;
use tokio::io::{AsyncRead, AsyncWrite};

use super::Outbound;
use crate::balance::PickContext;
use crate::error::{ProxyError, Reason};
use crate::metrics::{Metrics, OUTBOUND};
use crate::state::{Endpoint, ServicePort, Snapshot};

/// Relays a captured connection to `dst` (a Service VIP and port, or a workload's address).
pub async fn forward<I>(
    io: I,
    dst: SocketAddr,
    client: SocketAddr,
    cx: &Arc<Outbound>,
) -> Result<(), ProxyError>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let snapshot = cx.state.load_full();
    let connect_timeout = Duration::from_millis(snapshot.mesh.connect_timeout_ms.max(1));
    let (endpoint, service) = choose(&snapshot, dst, client, cx)?;
    drop(snapshot);
    pipe(io, &endpoint, &service, connect_timeout, &cx.metrics).await
}

fn choose(
    snapshot: &Snapshot,
    dst: SocketAddr,
    client: SocketAddr,
    cx: &Outbound,
) -> Result<(Arc<Endpoint>, String), ProxyError> {
    if let Some(sp) = snapshot.by_addr(dst) {
        return Ok((service_endpoint(sp, client)?, sp.service.clone()));
    }
    if let Some(ep) = snapshot.direct_endpoint(dst, &cx.registry) {
        let service = format!("{}/{}", ep.namespace, ep.workload);
        return Ok((ep, service));
    }
    Err(ProxyError::new(
        Reason::UnknownDestination,
        format!("{dst} left the mesh"),
    ))
}

/// An endpoint of a Service port for opaque bytes: its TCPRoute's backends, else its own.
pub fn service_endpoint(sp: &ServicePort, client: SocketAddr) -> Result<Arc<Endpoint>, ProxyError> {
    let rule = sp.tcp.as_ref().map(|t| &t.rule).unwrap_or(&sp.default_rule);
    let backend = rule
        .pick_backend()
        .and_then(|b| b.backend.clone())
        .ok_or_else(|| {
            ProxyError::new(
                Reason::BackendNotFound,
                format!("the backend of {} does not resolve", rule.route.label()),
            )
        })?;
    let headers = HeaderMap::new();
    let pick = PickContext {
        headers: &headers,
        query: None,
        source_ip: client.ip(),
    };
    let (endpoints, policy) = backend.candidates(|_| true);
    policy.pick(endpoints, &pick).cloned().ok_or_else(|| {
        ProxyError::new(
            Reason::NoEndpoints,
            format!("{} has no endpoints", backend.key),
        )
    })
}

/// Connects to `endpoint` (through its proxy's inbound port when meshed) and copies bytes
/// both ways until either side closes.
pub async fn pipe<I>(
    mut io: I,
    endpoint: &Arc<Endpoint>,
    service: &str,
    connect_timeout: Duration,
    metrics: &Metrics,
) -> Result<(), ProxyError>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let stats = metrics.tcp(OUTBOUND, service);
    // `tcp.maxConnections`: an opaque connection does not wait for a place.
    let _lease = match &endpoint.pool.connections {
        Some(limit) => Some(limit.lease().ok_or_else(|| limit.refused())?),
        None => None,
    };
    let mut upstream = endpoint
        .open_opaque(connect_timeout)
        .await
        .map_err(|e| ProxyError::new(Reason::UpstreamFailed, format!("{}: {e}", endpoint.addr)))?;
    stats.opened.inc();
    let _in_flight = endpoint.load.start();
    match tokio::io::copy_bidirectional(&mut io, &mut upstream).await {
        Ok((sent, received)) => {
            stats.sent.inc_by(sent);
            stats.received.inc_by(received);
        }
        Err(e) => tracing::debug!(error = %e, "TCP connection ended with an error"),
    }
    stats.closed.inc();
    Ok(())
}
