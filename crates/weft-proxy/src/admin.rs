//! The admin endpoint: `/live`, `/ready`, `/metrics` (Prometheus text), `/config` (the view
//! the proxy serves from, and the errors of the last rejected change, as JSON).

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

/// What the admin endpoint reads.
pub struct Admin {
    pub state: Shared,
    pub status: Arc<Status>,
    pub metrics: Arc<Metrics>,
    pub drain: drain::Watch,
}

pub async fn serve(listener: TcpListener, cx: Arc<Admin>) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = cx.drain.signaled() => break,
        };
        let Ok((stream, _)) = accepted else { continue };
        let cx = cx.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let cx = cx.clone();
                async move { Ok::<_, Infallible>(handle(&cx, req)) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "admin connection error");
            }
        });
    }
}

fn handle(cx: &Admin, req: Request<Incoming>) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
    }
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
                "view": &*snapshot.view,
            });
            let json = serde_json::to_string_pretty(&body).unwrap_or_default();
            Response::builder()
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(full(json + "\n"))
                .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "encoding failed\n"))
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "try /ready, /live, /metrics or /config\n",
        ),
    }
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
