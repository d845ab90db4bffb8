//! The admin endpoint. Open to anyone who can reach it: `/live`, `/ready`, `/metrics`
//! (Prometheus text). With the admin token (`Authorization: Bearer <token>`): `/config` (the
//! view the proxy serves from, the resources it holds from the control plane with their
//! versions and arrival times, the errors of the last rejected change, as JSON) and `/tap`
//! (live requests, see [`tap`]).
//!
//! The admin listener is on the workload's address, where other workloads can reach it, so
//! whatever reads configuration or traffic needs the token: the control plane sends each
//! proxy the token's digest (never the token), and `--admin-token-file` gives it one without a
//! control plane. Or a SPIFFE identity over mutual TLS that MeshConfig `admin` allows (see
//! [`identity`]), or the control plane's own identity, which any replica of it proves with its
//! certificate wherever the proxy runs (through a host's tunnel too). A refused request is
//! logged.

mod identity;
mod tap;

use std::convert::Infallible;
use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use tokio::net::TcpListener;

use crate::drain;
use crate::http::{full, Body};
use crate::metrics::Metrics;
use crate::state::Shared;
use crate::status::Status;
use crate::tap::Tap;

/// What the admin endpoint reads.
pub struct Admin {
    pub state: Shared,
    pub status: Arc<Status>,
    pub metrics: Arc<Metrics>,
    pub drain: drain::Watch,
    pub tap: Arc<Tap>,
    /// The proxy's certificate and trust bundle (shown on `/config`).
    pub tls: Arc<crate::mesh::MeshTls>,
    /// The admin token's digest given on the command line, if any.
    pub admin_digest: Option<weft_identity::AdminDigest>,
}

/// Serves the admin endpoint until the task is stopped. It goes on through a drain, so that
/// `/ready` says 503 and `/metrics` can still be scraped while requests finish; the proxy
/// stops it last.
pub async fn serve(listener: TcpListener, cx: Arc<Admin>) {
    loop {
        let Ok((stream, client)) = listener.accept().await else {
            // Out of file descriptors and the like: back off rather than spin.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let local = stream.local_addr().unwrap_or(client);
        let cx = cx.clone();
        tokio::spawn(async move {
            let trust_domain = cx.state.load().view.mesh.trust_domain.clone();
            match identity::accept(stream, &cx.tls, &trust_domain).await {
                Ok(identity::Accepted::Plain(s)) => {
                    serve_one(
                        cx,
                        s,
                        Caller {
                            client,
                            local,
                            peer: None,
                        },
                    )
                    .await
                }
                Ok(identity::Accepted::Tls(s, peer)) => {
                    serve_one(
                        cx,
                        s,
                        Caller {
                            client,
                            local,
                            peer: Some(peer),
                        },
                    )
                    .await
                }
                Err(e) => tracing::info!(%client, error = %e, "admin connection refused"),
            }
        });
    }
}

/// Who is on the other end of an admin connection.
#[derive(Clone)]
struct Caller {
    client: std::net::SocketAddr,
    local: std::net::SocketAddr,
    /// Proved over mutual TLS.
    peer: Option<weft_identity::SpiffeId>,
}

async fn serve_one<I>(cx: Arc<Admin>, io: I, caller: Caller)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| {
        let (cx, caller) = (cx.clone(), caller.clone());
        async move { Ok::<_, Infallible>(handle(&cx, req, &caller)) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(io), svc);
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "admin connection error");
    }
}

impl Admin {
    /// Whether `req` carries the admin token (checked against the digests this proxy holds).
    fn authorized<B>(&self, req: &Request<B>) -> bool {
        let header = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let pushed = self.status.admin_digest();
        [self.admin_digest, pushed]
            .iter()
            .flatten()
            .any(|d| d.admits_header(header))
    }
}

fn handle(cx: &Admin, req: Request<Incoming>, caller: &Caller) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
    }
    let path = req.uri().path();
    let client = caller.client;
    if matches!(path, "/config" | "/tap") && !cx.authorized(&req) {
        if let Some(peer) = &caller.peer {
            let view = cx.state.load().view.clone();
            if identity::is_control_plane(peer, &view.mesh.trust_domain) {
                tracing::debug!(%client, path, "admin request from the control plane");
                return route(cx, req);
            }
            if identity::allowed(view.mesh.admin.as_ref(), peer, client, caller.local, &req) {
                tracing::info!(%client, %peer, path, "admin request allowed by MeshConfig admin");
                return route(cx, req);
            }
            tracing::warn!(%client, %peer, path, "refused an admin request: MeshConfig admin does not allow this identity");
            return text(
                StatusCode::FORBIDDEN,
                "your identity is not allowed this by MeshConfig admin rules\n",
            );
        }
        tracing::warn!(%client, path, "refused an admin request without the admin token");
        let mut resp = text(
            StatusCode::UNAUTHORIZED,
            "send the mesh's admin token as `Authorization: Bearer <token>` (or ask through the control plane: weft proxy-config, weft tap)\n",
        );
        resp.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Bearer realm=\"weft\""),
        );
        return resp;
    }
    route(cx, req)
}

/// Answers an admin request that may have what it asks for.
fn route(cx: &Admin, req: Request<Incoming>) -> Response<Body> {
    match req.uri().path() {
        "/live" => text(StatusCode::OK, "live\n"),
        "/ready" => {
            if cx.drain.is_draining() {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not ready: shutting down\n",
                )
            } else if !cx.status.is_ready() {
                let why = cx
                    .status
                    .rejected()
                    .map(|r| r.join("; "))
                    .unwrap_or_else(|| "no valid configuration loaded".to_string());
                Response::builder()
                    .status(StatusCode::SERVICE_UNAVAILABLE)
                    .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
                    .body(full(format!("not ready: {why}\n")))
                    .unwrap_or_else(|_| text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"))
            } else {
                text(StatusCode::OK, "ready\n")
            }
        }
        "/metrics" => {
            // Prometheus asks for OpenMetrics; everyone else gets the classic text format.
            let openmetrics = req
                .headers()
                .get(http::header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|a| a.contains("application/openmetrics-text"));
            let (content_type, body) = if openmetrics {
                (
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    cx.metrics.encode_openmetrics(),
                )
            } else {
                (
                    "text/plain; version=0.0.4; charset=utf-8",
                    cx.metrics.encode(),
                )
            };
            Response::builder()
                .header(http::header::CONTENT_TYPE, content_type)
                .body(full(body))
                .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "encoding failed\n"))
        }
        "/config" => {
            let snapshot = cx.state.load();
            let body = serde_json::json!({
                "version": snapshot.view.version,
                "namespace": snapshot.namespace,
                "rejected": cx.status.rejected(),
                "resources": cx.status.held(),
                "certificate": certificate(&cx.tls),
                "view": &*snapshot.view,
            });
            let json = serde_json::to_string_pretty(&body).unwrap_or_default();
            Response::builder()
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(full(json + "\n"))
                .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "encoding failed\n"))
        }
        "/tap" => tap::open(&cx.tap, &req),
        _ => text(
            StatusCode::NOT_FOUND,
            "try /ready, /live, /metrics, /config or /tap\n",
        ),
    }
}

/// The proxy's certificate as `/config` shows it; `null` before it has one.
fn certificate(tls: &crate::mesh::MeshTls) -> serde_json::Value {
    let Some(current) = tls.current() else {
        return serde_json::Value::Null;
    };
    let creds = &current.creds;
    let unix = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    };
    let roots: Vec<serde_json::Value> = creds
        .trust_bundle
        .iter()
        .map(|root| {
            serde_json::json!({
                "notAfterUnix": weft_identity::cert_not_after(root).ok().map(unix),
            })
        })
        .collect();
    serde_json::json!({
        "spiffeId": creds.id.to_string(),
        "notBeforeUnix": creds.not_before().map(unix),
        "notAfterUnix": unix(creds.not_after),
        "renewAtUnix": unix(creds.renew_at()),
        "chainLength": creds.chain.len(),
        "roots": roots,
    })
}

fn text_owned(status: StatusCode, body: String) -> Response<Body> {
    let mut r = text(status, "");
    *r.body_mut() = full(body);
    r
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
