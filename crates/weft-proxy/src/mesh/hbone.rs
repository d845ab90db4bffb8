//! HBONE, the dialing side: a connection to a workload on another host travels as one HTTP/2
//! `CONNECT` stream over mutual TLS to that host's tunnel (Istio's HBONE; port 4108 here).
//!
//! The TLS is end to end. The host's tunnel reads only the ClientHello's server name, which
//! names the target workload ([`weft_identity::hbone::server_name`]), and splices the bytes to that workload's
//! proxy; the certificate that answers must be the workload's SPIFFE id, so a tunnel that
//! splices to the wrong place gets a refused handshake, not traffic. The `CONNECT` authority
//! is the workload's address and application port; the stream then carries what a direct
//! connection to the peer proxy would (the transport header, then opaque bytes or HTTP/2).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, StatusCode};
use hyper::client::conn::http2;
use hyper::upgrade::Upgraded;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls_pki_types::ServerName;
use tokio_rustls::TlsConnector;
use weft_identity::SpiffeId;

use super::tls::MeshTls;
use crate::http::upstream::{connect, UpstreamError};
use crate::http::{empty, Body};

/// ALPN of HBONE: HTTP/2, as Istio's tunnels speak it.
pub const ALPN: &[u8] = b"h2";

/// One `CONNECT` stream to `target` (the workload's address and application port) through
/// the tunnel at `tunnel`, with the workload proving `identity`.
pub async fn open(
    tunnel: SocketAddr,
    target: SocketAddr,
    identity: &SpiffeId,
    tls: &Arc<MeshTls>,
    timeout: Duration,
) -> Result<TokioIo<Upgraded>, UpstreamError> {
    let fail = |reason: String| UpstreamError::tunnel(tunnel, target, reason);
    let IpAddr::V4(ip) = target.ip() else {
        return Err(fail("HBONE reaches IPv4 workloads only".into()));
    };
    let config = tls
        .client_for_alpn(identity, ALPN)
        .map_err(|e| fail(e.to_string()))?;
    let name = ServerName::try_from(weft_identity::hbone::server_name(ip))
        .map_err(|e| fail(e.to_string()))?;
    let tcp = connect(tunnel, timeout).await?;
    let setup = async {
        let stream = TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| fail(format!("mutual TLS: {e}")))?;
        let (mut sender, conn) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .handshake::<_, Body>(TokioIo::new(stream))
            .await
            .map_err(|e| fail(format!("HTTP/2 handshake: {e}")))?;
        // The connection lives as long as its one stream.
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%tunnel, error = %e, "HBONE connection closed");
            }
        });
        let req = Request::builder()
            .method(Method::CONNECT)
            .uri(target.to_string())
            .body(empty())
            .map_err(|e| fail(e.to_string()))?;
        let mut resp = sender
            .send_request(req)
            .await
            .map_err(|e| fail(format!("CONNECT: {e}")))?;
        if resp.status() != StatusCode::OK {
            let why = resp
                .headers()
                .get(crate::error::WEFT_ERROR)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            return Err(fail(format!("CONNECT answered {} {why}", resp.status())));
        }
        hyper::upgrade::on(&mut resp)
            .await
            .map(TokioIo::new)
            .map_err(|e| fail(format!("CONNECT stream: {e}")))
    };
    match tokio::time::timeout(timeout, setup).await {
        Ok(result) => result,
        Err(_) => Err(UpstreamError::ConnectTimeout {
            addr: tunnel,
            timeout,
        }),
    }
}
