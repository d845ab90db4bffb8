//! Outbound opaque TCP: a TCPRoute's weighted backends (or the Service's own endpoints), one
//! endpoint per connection, bytes copied both ways and counted.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::balance::PickContext;
use crate::metrics::OUTBOUND;
use crate::run::Context;
use crate::state::Endpoint;

pub async fn forward<I>(io: I, dst: SocketAddr, client: SocketAddr, cx: &Arc<Context>)
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let snapshot = cx.state.load_full();
    let connect_timeout = Duration::from_millis(snapshot.mesh.connect_timeout_ms.max(1));
    let (endpoint, service): (Arc<Endpoint>, String) = if let Some(sp) = snapshot.by_addr(dst) {
        let rule = sp.tcp.as_ref().map(|t| &t.rule).unwrap_or(&sp.default_rule);
        let Some(backend) = rule.pick_backend().and_then(|b| b.backend.clone()) else {
            cx.metrics.proxy_error(OUTBOUND, "backend-not-found");
            tracing::warn!(%client, %dst, route = %rule.route.label(), "refusing TCP connection: the route's backend does not resolve");
            return;
        };
        let headers = HeaderMap::new();
        let pick = PickContext {
            headers: &headers,
            query: None,
            source_ip: client.ip(),
        };
        let Some(ep) = backend.policy.pick(&backend.endpoints, &pick).cloned() else {
            cx.metrics.proxy_error(OUTBOUND, "no-endpoints");
            tracing::warn!(%client, %dst, backend = %backend.key, "refusing TCP connection: no endpoints");
            return;
        };
        (ep, sp.service.clone())
    } else if let Some(w) = snapshot.workload_at(dst.ip()) {
        let ep = cx.registry.direct(
            dst,
            w,
            snapshot.mesh.inbound_port,
            &snapshot.mesh.trust_domain,
        );
        (ep, format!("{}/{}", w.namespace, w.name))
    } else {
        tracing::warn!(%client, %dst, "refusing TCP connection: destination left the mesh");
        return;
    };
    drop(snapshot);
    pipe(io, &endpoint, &service, client, connect_timeout, cx).await;
}

/// Connects to `endpoint` (through its proxy's inbound port when meshed) and copies bytes
/// both ways until either side closes.
pub async fn pipe<I>(
    mut io: I,
    endpoint: &Arc<Endpoint>,
    service: &str,
    client: SocketAddr,
    connect_timeout: Duration,
    cx: &Arc<Context>,
) where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let stats = cx.metrics.tcp(OUTBOUND, service);
    let mut upstream = match endpoint.open_opaque(connect_timeout).await {
        Ok(s) => s,
        Err(e) => {
            cx.metrics.proxy_error(OUTBOUND, "upstream-failed");
            tracing::info!(%client, endpoint = %endpoint.addr, error = %e, "TCP connect failed");
            return;
        }
    };
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
}
