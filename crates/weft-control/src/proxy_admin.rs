//! The control plane as a client of proxies' admin endpoints: `weft proxy-config`, `tap` and
//! `stat` reach proxies through the control plane, which knows where they are and proves
//! what their protected routes ask for: its identity over mutual TLS, or its admin token.
//!
//! Every exchange has a deadline for its answer's head; whole bodies are capped. A proxy on
//! a joined host is reached through its host's tunnel ([`ProxyRoute`]).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Request, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::proxy_route::{ProxyDialer, ProxyRoute};

/// The largest document read whole from a proxy (`/config`, `/metrics`).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Opens `GET path` on the admin endpoint `route` reaches (with the admin token, when the
/// route needs it); the answer's head within `timeout`, its body left to the caller (a tap
/// streams).
pub async fn open(
    dialer: &ProxyDialer,
    route: &ProxyRoute,
    path: &str,
    token: Option<&str>,
    timeout: Duration,
) -> Result<http::Response<Incoming>, String> {
    let exchange = async {
        match route {
            ProxyRoute::Direct { admin, id } => {
                // A protected route over mutual TLS, so that any replica is let in; the
                // token in plaintext while the proxy has no certificate to answer with.
                if let (Some(_), Some(id)) = (token, id) {
                    match tls(dialer, *admin, *admin, id).await {
                        Ok(tls) => return ask(tls, route, path, token).await,
                        Err(e) => {
                            tracing::debug!(%route, error = %e, "admin TLS failed; asking in plaintext")
                        }
                    }
                }
                let tcp = TcpStream::connect(admin)
                    .await
                    .map_err(|e| format!("connecting to {admin}: {e}"))?;
                ask(tcp, route, path, token).await
            }
            ProxyRoute::Tunnel { tunnel, admin, id } => {
                let tls = tls(dialer, *tunnel, *admin, id).await?;
                ask(tls, route, path, token).await
            }
        }
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(format!("{route} did not answer within {timeout:?}")),
    }
}

/// Mutual TLS with the admin port of the proxy at `admin`, dialled at `dial` (the admin
/// address itself, or its host's tunnel, which the server name asks for that port): the
/// control plane's certificate presented, only `id` accepted.
async fn tls(
    dialer: &ProxyDialer,
    dial: SocketAddr,
    admin: SocketAddr,
    id: &weft_identity::SpiffeId,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let config = dialer.client_config(id)?;
    let std::net::IpAddr::V4(ip) = admin.ip() else {
        return Err(format!("{admin}: workloads are IPv4"));
    };
    let name = rustls_pki_types::ServerName::try_from(weft_identity::hbone::admin_server_name(ip))
        .map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect(dial)
        .await
        .map_err(|e| format!("connecting to {dial}: {e}"))?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS with {admin} (dialled at {dial}): {e}"))
}

/// One HTTP/1.1 `GET path` on a connection made for it.
async fn ask<I>(
    io: I,
    route: &ProxyRoute,
    path: &str,
    token: Option<&str>,
) -> Result<http::Response<Incoming>, String>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(io))
            .await
            .map_err(|e| format!("HTTP handshake with {route}: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let addr: SocketAddr = route.admin_addr();
    let mut req = Request::get(path)
        .header(header::HOST, addr.to_string())
        .header(header::USER_AGENT, "weft-control");
    if let Some(token) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let req = req.body(Empty::new()).map_err(|e| e.to_string())?;
    sender
        .send_request(req)
        .await
        .map_err(|e| format!("asking {route}: {e}"))
}

/// `GET path` read whole (within `timeout` overall): the status and the body as text.
pub async fn get(
    dialer: &ProxyDialer,
    route: &ProxyRoute,
    path: &str,
    token: Option<&str>,
    timeout: Duration,
) -> Result<(StatusCode, String), String> {
    let whole = async {
        let resp = open(dialer, route, path, token, timeout).await?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| format!("reading {route}'s answer: {e}"))?
            .to_bytes();
        let text = String::from_utf8(body.to_vec())
            .map_err(|_| format!("{route} answered with something other than UTF-8 text"))?;
        Ok((status, text))
    };
    match tokio::time::timeout(timeout, whole).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "{route} did not finish answering within {timeout:?}"
        )),
    }
}
