//! The admin endpoint's proxy routes (all need the admin token):
//!
//! - `GET /proxies`: every meshed workload's proxy, whether it is connected, from where, and
//!   whether it holds the latest configuration (`weft check`);
//! - `GET /proxies/{namespace}/{workload}/config`: what that proxy holds now, asked of the
//!   proxy itself (`weft proxy-config`);
//! - `GET /proxies/{namespace}/{workload}/expected`: what this control plane would send it
//!   for the names it subscribes to (`weft proxy-config --diff`);
//! - `GET /proxies/{namespace}/{workload}/tap?...`: the proxy's live request stream, relayed
//!   (see [`crate::tap_relay`]).

use std::time::Duration;

use http::{Request, StatusCode};
use hyper::body::Incoming;
use serde_json::{json, Value};
use weft_api::compile::{self, ProxyIdentity};
use weft_api::view::{ServiceBundle, WorkloadsAt};
use weft_proto::types;

use crate::admin::Admin;
use crate::http_response::{boxed, respond, text, AdminResponse};
use crate::proxy_route::{route_to, ProxyRoute};
use crate::published::Published;

/// How long a proxy has to answer a relayed request.
pub const PROXY_TIMEOUT: Duration = Duration::from_secs(5);

/// Answers `/proxies` and below; `None` for other paths. The token was checked by the caller.
pub async fn handle(admin: &Admin, req: &Request<Incoming>) -> Option<AdminResponse> {
    let path = req.uri().path();
    if path == "/proxies" {
        return Some(boxed(list(admin)));
    }
    let rest = path.strip_prefix("/proxies/")?;
    let mut parts = rest.splitn(3, '/');
    let (Some(ns), Some(name), what) = (parts.next(), parts.next(), parts.next()) else {
        return Some(boxed(text(
            StatusCode::NOT_FOUND,
            "use /proxies/{namespace}/{workload}/{config|expected|tap}\n".into(),
        )));
    };
    let published = admin.store.current();
    let Some(route) = proxy_route(&published, ns, name) else {
        return Some(boxed(text(
            StatusCode::NOT_FOUND,
            format!(
                "no meshed workload {ns}/{name}: `weft proxy-config` lists them with no argument\n"
            ),
        )));
    };
    Some(match what {
        Some("config") => boxed(relay_config(admin, &route).await),
        Some("expected") => boxed(expected(admin, &published, ns, name)),
        Some("tap") => {
            let node = format!("{ns}/{name}");
            crate::tap_relay::relay(admin, vec![(node, route)], req).await
        }
        _ => boxed(text(
            StatusCode::NOT_FOUND,
            "ask for config, expected or tap\n".into(),
        )),
    })
}

/// `GET /services/{namespace}/{name}/tap?...`: the taps of every proxy in front of the
/// Service's workloads; `None` for other paths.
pub async fn handle_service(admin: &Admin, req: &Request<Incoming>) -> Option<AdminResponse> {
    let rest = req.uri().path().strip_prefix("/services/")?;
    let mut parts = rest.splitn(3, '/');
    let (Some(ns), Some(name), Some("tap")) = (parts.next(), parts.next(), parts.next()) else {
        return Some(boxed(text(
            StatusCode::NOT_FOUND,
            "use /services/{namespace}/{name}/tap\n".into(),
        )));
    };
    let published = admin.store.current();
    match service_proxies(&published, ns, name) {
        Ok(proxies) => Some(crate::tap_relay::relay(admin, proxies, req).await),
        Err(e) => Some(boxed(text(StatusCode::NOT_FOUND, format!("{e}\n")))),
    }
}

/// The proxies (`namespace/workload`, how to reach its admin endpoint) of the meshed
/// workloads Service `ns/name` selects.
pub fn service_proxies(
    published: &Published,
    ns: &str,
    name: &str,
) -> Result<Vec<(String, ProxyRoute)>, String> {
    let model = &published.model;
    let svc = model
        .services
        .get(&(ns.to_string(), name.to_string()))
        .ok_or_else(|| format!("no Service {ns}/{name}"))?;
    Ok(model
        .selected(&svc.namespace, &svc.selector)
        .filter(|w| w.view.meshed)
        .map(|w| (w.view.node(), route_of(model, &w.view)))
        .collect())
}

/// Every meshed workload's proxy: `namespace/name` and how to reach its admin endpoint
/// (what `weft stat`, the audit and the dashboard scrape).
pub fn proxies(published: &Published) -> Vec<(String, ProxyRoute)> {
    let model = &published.model;
    model
        .workloads
        .iter()
        .filter(|w| w.view.meshed)
        .map(|w| (w.view.node(), route_of(model, &w.view)))
        .collect()
}

/// A workload's proxy's admin endpoint: its address, or, on a joined host (the workload has
/// a tunnel), through that host's tunnel: workload blocks are not routed between hosts.
fn route_of(model: &weft_api::model::Model, v: &weft_api::view::WorkloadView) -> ProxyRoute {
    let id =
        weft_identity::SpiffeId::new(&model.mesh.trust_domain, &v.namespace, &v.service_account)
            .ok();
    route_to(v.address, model.mesh.admin_port, v.tunnel, id)
}

/// How to reach the admin endpoint of workload `ns/name`'s proxy.
pub fn proxy_route(published: &Published, ns: &str, name: &str) -> Option<ProxyRoute> {
    let model = &published.model;
    model
        .workloads
        .iter()
        .find(|w| w.view.meshed && w.view.namespace == ns && w.view.name == name)
        .map(|w| route_of(model, &w.view))
}

fn list(admin: &Admin) -> http::Response<http_body_util::Full<bytes::Bytes>> {
    let published = admin.store.current();
    let generation = published.generation;
    let proxies: Vec<Value> = proxies(&published)
        .into_iter()
        .map(|(node, route)| match admin.connected.get(&node) {
            Some(p) => {
                let current = p.generation >= generation && p.acknowledged && p.rejected.is_none();
                let mut v = serde_json::to_value(&p).unwrap_or_default();
                v["connected"] = json!(true);
                v["current"] = json!(current);
                v["adminAddress"] = json!(route.admin_addr().to_string());
                v["tunnel"] = json!(route.tunnel().map(|t| t.to_string()));
                v
            }
            None => json!({
                "node": node,
                "connected": false,
                "current": false,
                "adminAddress": route.admin_addr().to_string(),
                "tunnel": route.tunnel().map(|t| t.to_string()),
            }),
        })
        .collect();
    let body = json!({"generation": generation, "proxies": proxies});
    respond(
        StatusCode::OK,
        "application/json",
        serde_json::to_string_pretty(&body).unwrap_or_default() + "\n",
    )
}

async fn relay_config(
    admin: &Admin,
    route: &ProxyRoute,
) -> http::Response<http_body_util::Full<bytes::Bytes>> {
    let token = Some(admin.admin_token.as_str());
    let asked =
        crate::proxy_admin::get(&admin.dialer, route, "/config", token, PROXY_TIMEOUT).await;
    match asked {
        Ok((StatusCode::OK, body)) => respond(StatusCode::OK, "application/json", body),
        Ok((status, body)) => text(
            StatusCode::BAD_GATEWAY,
            format!("the proxy at {route} answered {status}: {}\n", body.trim()),
        ),
        Err(e) => text(StatusCode::BAD_GATEWAY, format!("{e}\n")),
    }
}

/// The view this control plane would give `ns/name` for what it subscribes to now (nothing
/// but its own config when it is not connected).
fn expected(
    admin: &Admin,
    published: &Published,
    ns: &str,
    name: &str,
) -> http::Response<http_body_util::Full<bytes::Bytes>> {
    let who = ProxyIdentity {
        namespace: ns.to_string(),
        workload: Some(name.to_string()),
    };
    let own = match compile::proxy_config(&published.model, &who) {
        Ok(own) => own,
        Err(e) => return text(StatusCode::NOT_FOUND, format!("{e}\n")),
    };
    let node = format!("{ns}/{name}");
    let subscribed = admin
        .connected
        .get(&node)
        .map(|p| p.subscriptions)
        .unwrap_or_default();
    let names = |t: &str| subscribed.get(t).cloned().unwrap_or_default();
    let services: Vec<ServiceBundle> = names("ServiceConfig")
        .iter()
        .filter_map(|n| published.service(ns, n))
        .filter_map(|(_, e)| decode(&e.any, types::SERVICE_CONFIG))
        .collect();
    let workloads: Vec<WorkloadsAt> = names("WorkloadConfig")
        .iter()
        .filter_map(|n| published.workloads(n))
        .filter_map(|e| decode(&e.any, types::WORKLOAD_CONFIG))
        .collect();
    let view = compile::assemble(
        &own,
        dedup_services(services),
        workloads.into_iter().flat_map(|at| at.workloads),
    );
    let body = json!({
        "generation": published.generation,
        "version": view.version,
        "view": view,
    });
    respond(
        StatusCode::OK,
        "application/json",
        serde_json::to_string_pretty(&body).unwrap_or_default() + "\n",
    )
}

/// A Service subscribed to by name and by VIP is held once.
fn dedup_services(mut services: Vec<ServiceBundle>) -> Vec<ServiceBundle> {
    services.sort_by(|a, b| {
        (&a.service.namespace, &a.service.name).cmp(&(&b.service.namespace, &b.service.name))
    });
    services.dedup_by(|a, b| {
        a.service.namespace == b.service.namespace && a.service.name == b.service.name
    });
    services
}

fn decode<T: serde::de::DeserializeOwned>(
    any: &weft_proto::xds::Any,
    type_url: &'static str,
) -> Option<T> {
    let bytes = types::view_of(any, type_url).ok()?;
    serde_json::from_slice(&bytes).ok()
}
