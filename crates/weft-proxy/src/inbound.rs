//! The inbound side: connections to the local workload.
//!
//! A peer proxy starts its connection with the transport header, which names the local port
//! and says whether HTTP requests (multiplexed HTTP/2) or opaque bytes follow. HTTP requests
//! that were HTTP/1 at the client (`weft-orig-proto`) are restored to HTTP/1.1 for the
//! application. Connections without the header come from outside the mesh: captured ones are
//! forwarded as TCP to the port they were addressed to; ones made to the proxy directly have
//! no port to go to and are refused.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use http::header::HeaderValue;
use http::{Request, Response, Version};
use hyper::body::Incoming;
use tokio::net::{TcpListener, TcpStream};

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
    stats: ArcSwap<HashMap<u16, Arc<RouteStats>>>,
}

impl Ports {
    fn http1(&self, app: SocketAddr) -> Arc<Http1Pool> {
        get_or_insert(&self.h1, app.port(), || Http1Pool::new(app))
    }

    fn h2(&self, app: SocketAddr) -> Arc<H2Connection> {
        get_or_insert(&self.h2, app.port(), || Arc::new(H2Connection::plain(app)))
    }

    fn stats(&self, cx: &Context, port: u16) -> Arc<RouteStats> {
        get_or_insert(&self.stats, port, || {
            cx.metrics
                .route(INBOUND, &local_workload(cx), &format!("port-{port}"))
        })
    }
}

fn get_or_insert<T>(
    map: &ArcSwap<HashMap<u16, Arc<T>>>,
    key: u16,
    make: impl FnOnce() -> Arc<T>,
) -> Arc<T> {
    if let Some(v) = map.load().get(&key) {
        return v.clone();
    }
    let value = make();
    map.rcu(|m| {
        let mut next = HashMap::clone(m);
        next.entry(key).or_insert_with(|| value.clone());
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

async fn handle(mut stream: TcpStream, client: SocketAddr, cx: &Arc<Context>) {
    crate::io::tune(&stream);
    let orig = orig_dst::original_dst(&stream);
    let wait = Duration::from_millis(cx.state.load().mesh.detect_timeout_ms.max(1));
    let peeked = match transport::read_header(&mut stream, wait).await {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(%client, error = %e, "inbound connection failed before its first bytes");
            return;
        }
    };
    match peeked {
        Peeked::Mesh(header, rest) => match header.carriage {
            Carriage::Opaque => {
                forward_tcp(PrefixedIo::new(rest, stream), header.port, client, cx).await
            }
            Carriage::Http2 => {
                let handler = crate::handler_service!(Handler {
                    cx: cx.clone(),
                    port: header.port,
                });
                crate::http::server::serve_http2(
                    PrefixedIo::new(rest, stream),
                    handler,
                    cx.limits,
                    &cx.drain,
                )
                .await;
            }
        },
        Peeked::Other(bytes) => match orig {
            Some(dst) => forward_tcp(PrefixedIo::new(bytes, stream), dst.port(), client, cx).await,
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

async fn forward_tcp<I>(mut io: I, port: u16, client: SocketAddr, cx: &Arc<Context>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
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
}

#[derive(Clone)]
struct Handler {
    cx: Arc<Context>,
    port: u16,
}

impl Handler {
    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let start = Instant::now();
        let stats = self.cx.ports.stats(&self.cx, self.port);
        let grpc = crate::http::is_grpc(&req);
        let (mut head, body) = req.into_parts();
        let orig = head.headers.remove(ORIG_PROTO);
        strip_hop_by_hop(&mut head.headers);
        let mut req = Request::from_parts(head, boxed(body));
        let app = SocketAddr::new(self.cx.app_ip, self.port);
        let timeout = Duration::from_millis(self.cx.state.load().mesh.connect_timeout_ms.max(1));
        let result = match orig.as_ref().and_then(|v| v.to_str().ok()) {
            Some(v) if v.starts_with("HTTP/1") => {
                restore_http1(&mut req, v == "HTTP/1.0");
                self.cx.ports.http1(app).send(req, timeout).await
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
        let grpc_status = resp
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        stats.record(resp.status().as_u16(), grpc_status, start.elapsed());
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
