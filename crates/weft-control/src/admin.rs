//! The control plane's admin endpoint (HTTP/1.1, plaintext; bind it to loopback):
//! - `GET /live`, `GET /ready`;
//! - `GET /status`: the configuration in effect and the errors of the last rejected change,
//!   as JSON (what `weft check` prints);
//! - `GET /metrics`: `weft_control_*` in OpenMetrics text;
//! - `GET /ca/bundle.pem`: the trust bundle proxies need to reach the control plane;
//! - `GET /prometheus/targets`: every proxy's metrics address, for Prometheus's
//!   `http_sd_configs` (see [`crate::prometheus_sd`]);
//! - `POST /ca/rotate`, `POST /ca/finish-rotation`: the two steps of a root rotation (admin
//!   token);
//! - `/proxies/...`: the connected proxies, what each holds, its tap; `/services/NS/NAME/tap`:
//!   the taps of a Service's proxies (admin token; see [`crate::proxies_api`]);
//! - `GET /stat?window=60s`: golden metrics per Service, route, workload and edge over the
//!   window, from the proxies (see [`crate::stats`]; what `weft stat` prints);
//! - `GET /authz/scope?service=NS/NAME[&port=P]`: a Service port's workloads and the
//!   AuthorizationPolicies each has (what `weft authz check --control` decides with);
//! - `/workloads/...` and `/hosts`: workloads registered by `weft run` (see
//!   [`crate::workloads_api`]);
//! - `/resources`: `weft apply` and `weft delete` with the etcd store (see
//!   [`crate::resources_api`]);
//! - `POST /tokens?namespace=NS&workload=NAME&ttl=SECONDS[&reusable=1]`: a join token
//!   (admin token; what `weft token create --control` asks for).
//!
//! Routes that change the mesh or read what proxies hold need the admin token (the state
//! directory's `admin-token`) as `Authorization: Bearer <token>`; a refusal is logged.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::connected::Connected;
use crate::etcd::ca::Step;
use crate::http_response::{boxed, query, respond, text, AdminResponse};
use crate::identity::Ca;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::tokens::Tokens;

pub struct Admin {
    pub store: Arc<Store>,
    pub ca: Arc<Ca>,
    pub metrics: Arc<Metrics>,
    pub tokens: Tokens,
    /// The bearer token that protected routes need.
    pub admin_token: String,
    pub connected: Arc<Connected>,
    pub stats: Arc<crate::stats::Stats>,
    /// How proxies behind a host's tunnel are reached (`weft proxy-config`, `weft tap`).
    pub dialer: Arc<crate::proxy_route::ProxyDialer>,
    /// With the etcd store: where registrations and applied resources are written.
    pub etcd: Option<crate::etcd::Etcd>,
    /// With the etcd store: whether this replica is the one elected for singleton work.
    pub leadership: Option<crate::etcd::singleton::Leadership>,
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

async fn handle(admin: &Arc<Admin>, req: Request<Incoming>) -> AdminResponse {
    let path = req.uri().path();
    let protected = path == "/proxies"
        || path.starts_with("/proxies/")
        || path.starts_with("/services/")
        || (req.method() == Method::POST && path.starts_with("/ca/"));
    if protected && !admin.authorized(&req) {
        return boxed(unauthorized(&req));
    }
    if path == "/proxies" || path.starts_with("/proxies/") {
        if req.method() != Method::GET {
            return boxed(text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n".into()));
        }
        if let Some(resp) = crate::proxies_api::handle(admin, &req).await {
            return resp;
        }
    }
    if path.starts_with("/services/") {
        if let Some(resp) = crate::proxies_api::handle_service(admin, &req).await {
            return resp;
        }
    }
    boxed(handle_whole(admin, req).await)
}

async fn handle_whole(admin: &Arc<Admin>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if path == "/hosts" || path.starts_with("/workloads") {
        let (store, tokens) = (&admin.store, &admin.tokens);
        let etcd = admin.etcd.as_ref();
        let caller = match workloads_caller(admin, &req).await {
            Ok(caller) => caller,
            Err(unavailable) => return unavailable,
        };
        if let Some(resp) = crate::workloads_api::handle(store, tokens, etcd, caller, req).await {
            return resp;
        }
        return text(StatusCode::NOT_FOUND, "not found\n".into());
    }
    if path == "/host-records"
        || path.starts_with("/host-records/")
        || path.starts_with("/host-tokens/")
    {
        // A host joins with the admin token, or with a host join token (checked there).
        let caller = if admin.authorized(&req) {
            crate::hosts_api::Caller::Admin
        } else if req.method() == Method::POST && path.starts_with("/host-records/") {
            crate::hosts_api::Caller::JoinToken
        } else {
            return unauthorized(&req);
        };
        if let Some(resp) = crate::hosts_api::handle(admin.etcd.as_ref(), caller, req).await {
            return resp;
        }
        return text(StatusCode::NOT_FOUND, "not found\n".into());
    }
    if path == "/resources" || path == "/resources/delete" {
        let authorized = admin.authorized(&req);
        let etcd = admin.etcd.as_ref();
        if let Some(resp) = crate::resources_api::handle(&admin.store, etcd, authorized, req).await
        {
            return resp;
        }
        return text(StatusCode::NOT_FOUND, "not found\n".into());
    }
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/live") => text(StatusCode::OK, "live\n".into()),
        (&Method::GET, "/ready") => text(StatusCode::OK, "ready\n".into()),
        (&Method::GET, "/status") => status(admin),
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
        (&Method::GET, "/stat") => stat(admin, &req).await,
        (&Method::GET, "/stat/series") => crate::stats::series::handle(admin, &req).await,
        (&Method::GET, p) if p == "/dashboard" || p.starts_with("/dashboard/") => {
            crate::dashboard::handle(&admin.store.current().model, p)
                .unwrap_or_else(|| text(StatusCode::NOT_FOUND, "not found\n".into()))
        }
        (&Method::GET, "/audit") => crate::audit::api::handle(admin, &req).await,
        (&Method::GET, "/prometheus/targets") => {
            let targets = crate::prometheus_sd::targets(&admin.store.current().model);
            respond(
                StatusCode::OK,
                "application/json",
                targets.to_string() + "\n",
            )
        }
        (&Method::POST, "/tokens") => create_token(admin, &req).await,
        (&Method::POST, "/ca/rotate") => rotate(admin, true).await,
        (&Method::POST, "/ca/finish-rotation") => rotate(admin, false).await,
        (_, "/ca/rotate" | "/ca/finish-rotation") => {
            text(StatusCode::METHOD_NOT_ALLOWED, "use POST\n".into())
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /status, /metrics, /ready, /proxies, /workloads, /hosts\n".into(),
        ),
    }
}

/// Who may change workloads with `req`: the admin, a joined host (its credential checked in
/// etcd), or nobody (`None`); the answer itself for a refused credential (401, saying why)
/// or when etcd cannot say (503). Reads ask nothing of etcd.
async fn workloads_caller<B>(
    admin: &Admin,
    req: &Request<B>,
) -> Result<Option<crate::workloads_api::Caller>, Response<Full<Bytes>>> {
    use crate::etcd::host_credentials::{self, CredentialError, PREFIX};
    use crate::workloads_api::Caller;
    if admin.authorized(req) {
        return Ok(Some(Caller::Admin));
    }
    let header = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let (Some(credential), Some(etcd)) = (
        weft_identity::bearer(header).filter(|t| t.starts_with(PREFIX)),
        admin.etcd.as_ref(),
    ) else {
        return Ok(None);
    };
    if req.method() == Method::GET {
        return Ok(None);
    }
    match host_credentials::verify(etcd, credential).await {
        Ok(host) => Ok(Some(Caller::Host(host))),
        Err(CredentialError::Etcd(e)) => {
            tracing::warn!(error = %e, "cannot check a host credential: etcd");
            Err(text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot check the host credential: {e}\n"),
            ))
        }
        Err(e) => {
            tracing::warn!(path = %req.uri().path(), error = %e, "refused a host credential");
            Err(text(StatusCode::UNAUTHORIZED, format!("{e}\n")))
        }
    }
}

impl Admin {
    /// Whether `req` carries the admin token.
    pub fn authorized<B>(&self, req: &Request<B>) -> bool {
        let header = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        weft_identity::AdminDigest::of_token(&self.admin_token).admits_header(header)
    }
}

/// 401, logged: who asked for what without the token.
pub(crate) fn unauthorized<B>(req: &Request<B>) -> Response<Full<Bytes>> {
    tracing::warn!(method = %req.method(), path = %req.uri().path(), "refused an admin request without the admin token");
    let mut resp = text(
        StatusCode::UNAUTHORIZED,
        format!("send the control plane's admin token (its state directory's {}) as `Authorization: Bearer <token>`\n", crate::state::ADMIN_TOKEN_FILE),
    );
    resp.headers_mut().insert(
        http::header::WWW_AUTHENTICATE,
        http::HeaderValue::from_static("Bearer realm=\"weft\""),
    );
    resp
}

/// `POST /tokens?namespace=NS&workload=NAME&ttl=SECONDS[&reusable=1]`: a join token, kept
/// where this control plane keeps them (its state directory, or etcd for every replica).
async fn create_token(admin: &Admin, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if !admin.authorized(req) {
        return unauthorized(req);
    }
    let (Some(ns), Some(workload)) = (query(req, "namespace"), query(req, "workload")) else {
        return text(
            StatusCode::BAD_REQUEST,
            "say for whom: ?namespace=NS&workload=NAME[&ttl=SECONDS][&reusable=1]\n".into(),
        );
    };
    let ttl = match query(req, "ttl").map(|t| t.parse::<u64>()) {
        None => 3600,
        Some(Ok(t)) if (1..=30 * 24 * 3600).contains(&t) => t,
        Some(_) => {
            return text(
                StatusCode::BAD_REQUEST,
                "ttl is whole seconds, 1 to 2592000 (30 days)\n".into(),
            )
        }
    };
    let reusable = query(req, "reusable").as_deref() == Some("1");
    let ttl = std::time::Duration::from_secs(ttl);
    match admin.tokens.create(&ns, &workload, ttl, reusable).await {
        Ok(token) => respond(
            StatusCode::OK,
            "application/json",
            serde_json::json!({ "token": token }).to_string() + "\n",
        ),
        Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")),
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

/// `GET /stat?window=DURATION` (default 1m, at most the history kept): scrapes every proxy
/// now, so the window ends now, then reports.
async fn stat(admin: &Admin, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let window = match query(req, "window").map(|w| weft_api::duration::parse(&w)) {
        None => std::time::Duration::from_secs(60),
        Some(Ok(w)) if w > std::time::Duration::ZERO && w <= crate::stats::KEEP => w,
        Some(Ok(_)) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!(
                    "window must be more than 0 and at most {:?}\n",
                    crate::stats::KEEP
                ),
            )
        }
        Some(Err(e)) => return text(StatusCode::BAD_REQUEST, format!("window: {e}\n")),
    };
    let published = admin.store.current();
    admin.stats.scrape_all(&published).await;
    let spans = admin.stats.spans(window);
    let report = crate::stats::report::build(&published.model, &spans, window.as_secs_f64());
    respond(
        StatusCode::OK,
        "application/json",
        serde_json::to_string_pretty(&report).unwrap_or_default() + "\n",
    )
}

/// The store's status, and with etcd, the replica's part in the election and the CA.
fn status(admin: &Arc<Admin>) -> Response<Full<Bytes>> {
    let mut body = serde_json::to_value(&*admin.store.status()).unwrap_or_default();
    if let (Some(leadership), Some(fields)) = (&admin.leadership, body.as_object_mut()) {
        fields.insert("singleton".into(), leadership.is_leader().into());
    }
    if let Some(fields) = body.as_object_mut() {
        let ca = match &admin.ca.shared {
            Some(_) => "shared through etcd (key sealed)",
            None if admin.ca.lock().is_managed() => "state directory",
            None => "operator's files",
        };
        fields.insert("ca".into(), ca.into());
    }
    let text = serde_json::to_string_pretty(&body).unwrap_or_default();
    respond(StatusCode::OK, "application/json", text + "\n")
}

/// Runs a rotation step and publishes the new bundle to every proxy. With a shared CA the
/// step is written to etcd first (compare-and-swap), and every replica swaps it in.
async fn rotate(admin: &Arc<Admin>, start: bool) -> Response<Full<Bytes>> {
    let bundle = match admin.ca.shared.clone() {
        Some(shared) => {
            let step = if start { Step::Start } else { Step::Finish };
            shared
                .rotate(step)
                .await
                .map(|loaded| {
                    let bundle = loaded.authority.trust_bundle();
                    crate::etcd::ca::install(&admin.ca, &admin.store, loaded.authority);
                    bundle
                })
                .map_err(|e| (StatusCode::CONFLICT, e.to_string()))
        }
        None => {
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
                    admin.store.publish_bundle(bundle.clone());
                    Ok(bundle)
                }
                Ok(Err(e)) => Err((StatusCode::CONFLICT, e.to_string())),
                Err(e) => Err((StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
            }
        }
    };
    match bundle {
        Ok(bundle) => {
            let roots = bundle.len();
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
        Err((code, e)) => text(code, format!("{e}\n")),
    }
}
