//! The inbound side: connections to the local workload.
//!
//! A peer proxy starts its connection with the transport header, which names the local port
//! and says whether HTTP requests (multiplexed HTTP/2) or opaque bytes follow. HTTP requests
//! that were HTTP/1 at the client (`weft-orig-proto`) are restored to HTTP/1.1 for the
//! application. Connections without the header come from outside the mesh: captured ones are
//! forwarded as TCP to the port they were addressed to; ones made to the proxy directly have
//! no port to go to and are refused.
//!
//! Peer proxies with identities connect with mutual TLS (TLS 1.3, ALPN `weft/1`) and send the
//! header inside it; the client's SPIFFE id labels metrics and access logs. PeerAuthentication
//! decides what else is accepted per application port: STRICT refuses plaintext (mesh
//! plaintext and outside clients alike), PERMISSIVE and DISABLE accept it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use http::header::HeaderValue;
use http::{Request, Response, Version};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use weft_api::view::MtlsMode;

use crate::h1::verbatim::Fields;
use crate::http::errors::{respond, Reason};
use crate::http::headers::{strip_hop_by_hop, ORIG_PROTO};
use crate::http::pool::Http1Pool;
use crate::http::upstream::{connect, H2Connection};
use crate::http::{boxed, Body};
use crate::io::transport::{self, Carriage, Peeked};
use crate::io::{orig_dst, PrefixedIo};
use crate::metrics::{RouteStats, INBOUND};
use crate::run::Context;

/// Per-port state of the inbound side, grown copy-on-write the first time a port is used.
#[derive(Default)]
pub struct Ports {
    h2: ArcSwap<HashMap<u16, Arc<H2Connection>>>,
    h1: ArcSwap<HashMap<u16, Arc<Http1Pool>>>,
    stats: ArcSwap<HashMap<(u16, Peer), Arc<RouteStats>>>,
}

impl Ports {
    fn http1(&self, app: SocketAddr) -> Arc<Http1Pool> {
        get_or_insert(&self.h1, app.port(), || Http1Pool::new(app))
    }

    fn h2(&self, app: SocketAddr) -> Arc<H2Connection> {
        get_or_insert(&self.h2, app.port(), || Arc::new(H2Connection::plain(app)))
    }

    fn stats(&self, cx: &Context, port: u16, peer: &Peer) -> Arc<RouteStats> {
        get_or_insert(&self.stats, (port, peer.clone()), || {
            cx.metrics.route_from(
                INBOUND,
                &local_workload(cx),
                &format!("port-{port}"),
                &peer.principal,
                peer.policy(),
            )
        })
    }
}

/// Who is calling, as the connection proved it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Peer {
    /// The SPIFFE id of an mTLS client; `unknown` for plaintext.
    pub principal: Arc<str>,
    pub mtls: bool,
}

impl Peer {
    fn plaintext() -> Self {
        Peer {
            principal: Arc::from("unknown"),
            mtls: false,
        }
    }

    /// Istio's `connection_security_policy` label value.
    pub fn policy(&self) -> &'static str {
        if self.mtls {
            "mutual_tls"
        } else {
            "none"
        }
    }
}

fn get_or_insert<K, T>(
    map: &ArcSwap<HashMap<K, Arc<T>>>,
    key: K,
    make: impl FnOnce() -> Arc<T>,
) -> Arc<T>
where
    K: std::hash::Hash + Eq + Clone,
{
    if let Some(v) = map.load().get(&key) {
        return v.clone();
    }
    let value = make();
    map.rcu(|m| {
        let mut next = HashMap::clone(m);
        next.entry(key.clone()).or_insert_with(|| value.clone());
        next
    });
    map.load().get(&key).cloned().unwrap_or(value)
}

/// `namespace/workload` of the local workload: the inbound `destination_service` label
/// (the proxy cannot tell which of the Services selecting it a peer meant).
fn local_workload(cx: &Context) -> String {
    match &cx.state.load().view.workload {
        Some(w) => format!("{}/{}", w.namespace, w.name),
        None => "local".to_string(),
    }
}

pub async fn serve(listener: TcpListener, cx: Arc<Context>) {
    crate::listen::accept_loop(listener, cx, "inbound", |stream, peer, cx| async move {
        handle(stream, peer, &cx).await
    })
    .await
}

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;
/// How long a peer has to finish the mTLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

async fn handle(mut stream: TcpStream, client: SocketAddr, cx: &Arc<Context>) {
    crate::io::tune(&stream);
    // A connection captured on its way to an application port (not made to the proxy's own
    // port) comes from outside the mesh: peers dial the inbound port directly.
    let listen_port = stream.local_addr().map(|a| a.port()).unwrap_or(0);
    let captured = orig_dst::original_dst(&stream).filter(|d| d.port() != listen_port);
    let wait = Duration::from_millis(cx.state.load().mesh.detect_timeout_ms.max(1));
    let peeked = match transport::read_header(&mut stream, wait).await {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(%client, error = %e, "inbound connection failed before its first bytes");
            return;
        }
    };
    match peeked {
        Peeked::Other(bytes) if captured.is_none() && bytes.first() == Some(&TLS_HANDSHAKE) => {
            accept_mtls(PrefixedIo::new(bytes, stream), client, cx).await
        }
        Peeked::Mesh(header, rest) => {
            if refuse_plaintext(cx, client, header.port) {
                return;
            }
            serve_mesh(
                PrefixedIo::new(rest, stream),
                header,
                client,
                Peer::plaintext(),
                cx,
            )
            .await
        }
        Peeked::Other(bytes) => match captured {
            Some(dst) => {
                if refuse_plaintext(cx, client, dst.port()) {
                    return;
                }
                let peer = Peer::plaintext();
                forward_tcp(
                    PrefixedIo::new(bytes, stream),
                    dst.port(),
                    client,
                    &peer,
                    cx,
                )
                .await
            }
            None => {
                cx.metrics.proxy_error(INBOUND, "no-target-port");
                tracing::warn!(
                    %client,
                    "refusing inbound connection: it was made to the proxy directly without a Weft transport header, so the application port is unknown"
                );
            }
        },
    }
}

/// STRICT ports take mutual TLS only. Logs and counts the refusal.
fn refuse_plaintext(cx: &Context, client: SocketAddr, port: u16) -> bool {
    if cx.state.load().view.inbound.mode_for(port) != MtlsMode::Strict {
        return false;
    }
    cx.metrics.proxy_error(INBOUND, "plaintext-refused");
    tracing::warn!(%client, port, "refusing plaintext connection: PeerAuthentication is STRICT for this port (mutual TLS only)");
    true
}

/// Terminates a peer proxy's mutual TLS, then serves what the transport header says.
async fn accept_mtls<I>(io: I, client: SocketAddr, cx: &Arc<Context>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Some(current) = cx.registry.tls.current() else {
        cx.metrics.proxy_error(INBOUND, "no-identity");
        tracing::warn!(%client, "refusing mutual TLS: this proxy has no certificate yet");
        return;
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(current.server.clone());
    let mut tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(io)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            cx.metrics.proxy_error(INBOUND, "tls-refused");
            tracing::warn!(%client, reason = %e, "refusing mutual TLS connection");
            return;
        }
        Err(_) => {
            cx.metrics.proxy_error(INBOUND, "tls-refused");
            tracing::warn!(%client, "refusing mutual TLS connection: handshake timed out");
            return;
        }
    };
    let principal = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(weft_identity::peer_id)
        .map(|id| id.to_uri())
        .unwrap_or_else(|| "unknown".to_string());
    let peer = Peer {
        principal: Arc::from(principal),
        mtls: true,
    };
    let wait = Duration::from_millis(cx.state.load().mesh.detect_timeout_ms.max(1)) * 10;
    match transport::read_header(&mut tls, wait).await {
        Ok(Peeked::Mesh(header, rest)) => {
            serve_mesh(PrefixedIo::new(rest, tls), header, client, peer, cx).await
        }
        Ok(Peeked::Other(_)) => {
            cx.metrics.proxy_error(INBOUND, "no-target-port");
            tracing::warn!(%client, peer = %peer.principal, "refusing mutual TLS connection without a Weft transport header");
        }
        Err(e) => tracing::debug!(%client, error = %e, "mTLS connection failed before its header"),
    }
}

async fn serve_mesh<I>(
    io: I,
    header: transport::Header,
    client: SocketAddr,
    peer: Peer,
    cx: &Arc<Context>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match header.carriage {
        Carriage::Opaque => forward_tcp(io, header.port, client, &peer, cx).await,
        Carriage::Http2 => {
            let handler = crate::handler_service!(boxed Handler {
                stats: cx.ports.stats(cx, header.port, &peer),
                cx: cx.clone(),
                port: header.port,
                client,
                peer,
            });
            crate::http::server::serve_http2(io, handler, cx.limits, &cx.drain).await;
        }
    }
}

async fn forward_tcp<I>(mut io: I, port: u16, client: SocketAddr, peer: &Peer, cx: &Arc<Context>)
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let app = SocketAddr::new(cx.app_ip, port);
    let stats = cx.metrics.tcp(INBOUND, &local_workload(cx));
    let timeout = Duration::from_millis(cx.state.load().mesh.connect_timeout_ms.max(1));
    let mut upstream = match connect(app, timeout).await {
        Ok(s) => s,
        Err(e) => {
            cx.metrics.proxy_error(INBOUND, "app-unreachable");
            tracing::info!(%client, %app, error = %e, "cannot reach the local application");
            return;
        }
    };
    stats.opened.inc();
    match tokio::io::copy_bidirectional(&mut io, &mut upstream).await {
        Ok((from_client, to_client)) => {
            stats.received.inc_by(from_client);
            stats.sent.inc_by(to_client);
        }
        Err(e) => tracing::debug!(error = %e, "inbound TCP connection ended with an error"),
    }
    stats.closed.inc();
    if let Some(log) = &cx.access_log {
        log.write(crate::access_log::tcp_line(
            INBOUND,
            client,
            port,
            &peer.principal,
            peer.mtls,
        ));
    }
}

#[derive(Clone)]
struct Handler {
    cx: Arc<Context>,
    port: u16,
    client: SocketAddr,
    peer: Peer,
    stats: Arc<RouteStats>,
}

impl Handler {
    async fn handle(&self, req: Request<Body>) -> Response<Body> {
        let start = Instant::now();
        let stats = &self.stats;
        let entry = self.cx.access_log.as_ref().map(|_| {
            crate::access_log::Entry::inbound(
                &req,
                self.client,
                &self.peer.principal,
                self.peer.mtls,
            )
        });
        let grpc = crate::http::is_grpc(&req);
        let (mut head, body) = req.into_parts();
        let orig = head.headers.remove(ORIG_PROTO);
        strip_hop_by_hop(&mut head.headers);
        let mut req = Request::from_parts(head, body);
        let app = SocketAddr::new(self.cx.app_ip, self.port);
        let timeout = Duration::from_millis(self.cx.state.load().mesh.connect_timeout_ms.max(1));
        let result = match orig.as_ref().and_then(|v| v.to_str().ok()) {
            Some(v) if v.starts_with("HTTP/1") => {
                restore_http1(&mut req, v == "HTTP/1.0");
                // The answer goes back over HTTP/2 through hyper, which needs a map.
                self.cx
                    .ports
                    .http1(app)
                    .send(req, timeout, Fields::Map)
                    .await
            }
            _ => self.cx.ports.h2(app).send(req, timeout).await.map(|resp| {
                let (parts, body) = resp.into_parts();
                Response::from_parts(parts, boxed(body))
            }),
        };
        let resp = match result {
            Ok(mut resp) => {
                strip_hop_by_hop(resp.headers_mut());
                resp
            }
            Err(e) => {
                self.cx.metrics.proxy_error(INBOUND, "app-unreachable");
                tracing::info!(%app, error = %e, "request to the local application failed");
                respond(
                    Reason::UpstreamFailed,
                    &format!("local application {app}: {e}"),
                    grpc,
                )
            }
        };
        // A gRPC call is counted when its stream ends, with the status from its trailers.
        let resp = crate::metrics::at_end::record(stats, grpc, resp, start);
        if let (Some(log), Some(entry)) = (&self.cx.access_log, entry) {
            let mut entry = entry;
            entry.route(&local_workload(&self.cx), &format!("port-{}", self.port));
            log.write(entry.finish(&resp, start.elapsed()));
        }
        resp
    }
}

/// An HTTP/1 request that crossed the mesh as HTTP/2: its authority becomes `Host` again.
fn restore_http1(req: &mut Request<Body>, http10: bool) {
    if let Some(authority) = req.uri().authority().map(|a| a.as_str().to_string()) {
        if let Ok(v) = HeaderValue::from_str(&authority) {
            req.headers_mut().insert(http::header::HOST, v);
        }
    }
    *req.version_mut() = if http10 {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
}
