//! HTTP/1 upgrades (WebSocket and the like): the request is sent to the endpoint on a
//! connection of its own — opaque through the mesh — and once the endpoint answers
//! `101 Switching Protocols` the two upgraded connections are spliced together.

use std::time::Duration;

use http::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use super::upstream::UpstreamError;
use super::{boxed, Body};
use crate::state::Endpoint;

/// Sends an upgrade request to `endpoint` on a connection of its own (opaque through the mesh
/// when it is meshed) and, on 101, splices client and endpoint. Returns the response for the
/// client.
pub async fn proxy_upgrade(
    mut req: Request<Body>,
    endpoint: &Endpoint,
    connect_timeout: Duration,
) -> Result<Response<Body>, UpstreamError> {
    let dial = endpoint.addr;
    let stream = endpoint.open_opaque(connect_timeout).await?;
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .handshake::<_, Body>(TokioIo::new(stream))
        .await
        .map_err(|source| UpstreamError::Handshake { addr: dial, source })?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "upgrade connection ended");
        }
    });
    let client_upgrade = hyper::upgrade::on(&mut req);
    let (parts, body) = req.into_parts();
    let mut upstream_req = Request::from_parts(parts, boxed(body));
    *upstream_req.version_mut() = http::Version::HTTP_11;
    // Origin-form on the wire: keep only path and query.
    if let Some(pq) = upstream_req.uri().path_and_query().cloned() {
        if let Ok(uri) = http::Uri::builder().path_and_query(pq).build() {
            *upstream_req.uri_mut() = uri;
        }
    }
    let mut resp = sender
        .send_request(upstream_req)
        .await
        .map_err(|source| UpstreamError::Request { addr: dial, source })?;
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let upstream_upgrade = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            match (client_upgrade.await, upstream_upgrade.await) {
                (Ok(client), Ok(upstream)) => {
                    let mut client = TokioIo::new(client);
                    let mut upstream = TokioIo::new(upstream);
                    if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await
                    {
                        tracing::debug!(error = %e, "upgraded connection ended");
                    }
                }
                (c, u) => {
                    tracing::debug!(client = c.is_ok(), upstream = u.is_ok(), "upgrade failed")
                }
            }
        });
    }
    let (parts, body) = resp.into_parts();
    Ok(Response::from_parts(parts, boxed(body)))
}
