//! The control plane's admin endpoint (HTTP/1.1, plaintext; bind it to loopback):
//! - `GET /live`, `GET /ready`;
//! - `GET /status`: the configuration in effect and the errors of the last rejected change,
//!   as JSON (what `weft check` prints);
//! - `GET /metrics`: `weft_control_*` in OpenMetrics text;
//! - `GET /ca/bundle.pem`: the trust bundle proxies need to reach the control plane;
//! - `GET /prometheus/targets`: every proxy's metrics address, for Prometheus's
//!   `http_sd_configs` (see [`crate::prometheus_sd`]);
//! - `POST /ca/rotate`, `POST /ca/finish-rotation`: the two steps of a root rotation;
//! - `GET /authz/scope?service=NS/NAME[&port=P]`: a Service port's workloads and the
//!   AuthorizationPolicies each has (what `weft authz check --control` decides with);
//! - `/workloads/...` and `/hosts`: workloads registered by `weft run` (see
//!   [`crate::workloads_api`]).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::http_response::{query, respond, text};
use crate::identity::Ca;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::tokens::TokenStore;

pub struct Admin {
    pub store: Arc<Store>,
    pub ca: Arc<Ca>,
    pub metrics: Arc<Metrics>,
    pub tokens: Arc<TokenStore>,
    /// The bearer token that routes changing registrations need.
    pub admin_token: String,
}

pub async fn serve(listener: TcpListener, admin: Arc<Admin>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let admin = admin.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let admin = admin.clone();
                async move { Ok::<_, Infallible>(handle(&admin, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "admin connection error");
            }
        });
    }
}

async fn handle(admin: &Arc<Admin>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if path == "/hosts" || path.starts_with("/workloads") {
        let (store, tokens, token) = (&admin.store, &admin.tokens, &admin.admin_token);
        if let Some(resp) = crate::workloads_api::handle(store, tokens, token, req).await {
            return resp;
        }
        return text(StatusCode::NOT_FOUND, "not found\n".into());
    }
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/live") => text(StatusCode::OK, "live\n".into()),
        (&Method::GET, "/ready") => text(StatusCode::OK, "ready\n".into()),
        (&Method::GET, "/status") => {
            let body = serde_json::to_string_pretty(&*admin.store.status()).unwrap_or_default();
            respond(StatusCode::OK, "application/json", body + "\n")
        }
        (&Method::GET, "/metrics") => respond(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            admin.metrics.encode(),
        ),
        (&Method::GET, "/ca/bundle.pem") => {
            let pem = admin.ca.lock().trust_bundle_pem();
            respond(StatusCode::OK, "application/x-pem-file", pem)
        }
        (&Method::GET, "/authz/scope") => authz_scope(admin, &req),
        (&Method::GET, "/prometheus/targets") => {
            let targets = crate::prometheus_sd::targets(&admin.store.current().model);
            respond(
                StatusCode::OK,
                "application/json",
                targets.to_string() + "\n",
            )
        }
        (&Method::POST, "/ca/rotate") => rotate(admin, true).await,
        (&Method::POST, "/ca/finish-rotation") => rotate(admin, false).await,
        (_, "/ca/rotate" | "/ca/finish-rotation") => {
            text(StatusCode::METHOD_NOT_ALLOWED, "use POST\n".into())
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /status, /metrics, /ready, /workloads, /hosts\n".into(),
        ),
    }
}

/// `GET /authz/scope?service=NS/NAME[&port=P]`: the workloads a Service port sends to and the
/// AuthorizationPolicies each has, for `weft authz check --control`.
fn authz_scope(admin: &Admin, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let Some(service) = query(req, "service") else {
        return text(
            StatusCode::BAD_REQUEST,
            "say which Service: ?service=namespace/name\n".into(),
        );
    };
    let Some((ns, name)) = service.split_once('/') else {
        return text(
            StatusCode::BAD_REQUEST,
            format!("`{service}`: write namespace/name\n"),
        );
    };
    let port = match query(req, "port").map(|p| p.parse::<u16>()) {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(_)) => return text(StatusCode::BAD_REQUEST, "port must be a number\n".into()),
    };
    let model = &admin.store.current().model;
    match weft_api::compile::authz::scope(model, ns, name, port) {
        Ok(scope) => respond(
            StatusCode::OK,
            "application/json",
            serde_json::to_string_pretty(&scope).unwrap_or_default() + "\n",
        ),
        Err(e) => text(StatusCode::NOT_FOUND, format!("{e}\n")),
    }
}

/// Runs a rotation step and publishes the new bundle to every proxy.
async fn rotate(admin: &Arc<Admin>, start: bool) -> Response<Full<Bytes>> {
    let a = admin.clone();
    let result = tokio::task::spawn_blocking(move || {
        let mut ca = a.ca.lock();
        let step = if start {
            ca.rotate(&a.ca.state_dir)
        } else {
            ca.finish_rotation(&a.ca.state_dir)
        };
        step.map(|()| ca.trust_bundle())
    })
    .await;
    match result {
        Ok(Ok(bundle)) => {
            let roots = bundle.len();
            admin.store.publish_bundle(bundle);
            let what = if start {
                "rotation started: new certificates come from the new root; both roots are trusted"
            } else {
                "rotation finished: only the new root is trusted"
            };
            tracing::info!(roots, "{what}");
            text(
                StatusCode::OK,
                format!("{what} ({roots} root(s) in the bundle)\n"),
            )
        }
        Ok(Err(e)) => text(StatusCode::CONFLICT, format!("{e}\n")),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}
