//! The dashboard on the admin endpoint: the page (`/dashboard/`, its bundle embedded by
//! `weft-dashboard`) and what its Service and workload pages show besides the golden metrics
//! (`GET /dashboard/api/{service|workload}/{namespace}/{name}`): the workloads, the routes and
//! their splits, and the PeerAuthentications and AuthorizationPolicies that apply.
//!
//! The page only reads: its data comes from the admin endpoint's GET routes, with the same
//! access as any other (loopback, and the admin token for what needs it). It sends no
//! cookie and is never framed by another site (`X-Frame-Options`, a strict
//! `Content-Security-Policy`: nothing but this origin).

use bytes::Bytes;
use http::{header, Response, StatusCode};
use http_body_util::Full;
use serde_json::{json, Value};
use weft_api::compile::authz::policies_for;
use weft_api::model::{selects, FilterModel, Model, RouteModel, WorkloadModel};
use weft_api::view::authz::AuthzAction;
use weft_api::view::{FilterView, MtlsMode, PathMatch, StringMatch};

use crate::http_response::{respond, text};

const CSP: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// `/dashboard...`: the page, its files, or its API; `None` for other paths.
pub fn handle(model: &Model, path: &str) -> Option<Response<Full<Bytes>>> {
    if path == "/dashboard" {
        let mut resp = text(StatusCode::PERMANENT_REDIRECT, "/dashboard/\n".into());
        resp.headers_mut().insert(
            header::LOCATION,
            header::HeaderValue::from_static("/dashboard/"),
        );
        return Some(resp);
    }
    let rest = path.strip_prefix("/dashboard/")?;
    if let Some(api) = rest.strip_prefix("api/") {
        return Some(api_answer(model, api));
    }
    let Some(asset) = weft_dashboard::asset(rest) else {
        return Some(text(StatusCode::NOT_FOUND, "not found\n".into()));
    };
    let mut resp = Response::new(Full::new(Bytes::from_static(asset.bytes)));
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(asset.content_type),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("DENY"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    Some(resp)
}

fn api_answer(model: &Model, api: &str) -> Response<Full<Bytes>> {
    let parts: Vec<&str> = api.split('/').collect();
    let answer = match parts.as_slice() {
        ["service", ns, name] => service(model, ns, name),
        ["workload", ns, name] => workload(model, ns, name),
        _ => {
            return text(
                StatusCode::NOT_FOUND,
                "use /dashboard/api/service/{namespace}/{name} or /dashboard/api/workload/{namespace}/{name}\n".into(),
            )
        }
    };
    match answer {
        Some(v) => respond(StatusCode::OK, "application/json", v.to_string() + "\n"),
        None => text(StatusCode::NOT_FOUND, format!("no {api}\n")),
    }
}

/// Service `ns/name`: its workloads, its routes, the policies of its workloads.
pub fn service(model: &Model, ns: &str, name: &str) -> Option<Value> {
    let svc = model.services.get(&(ns.to_string(), name.to_string()))?;
    let workloads: Vec<&WorkloadModel> = model.selected(&svc.namespace, &svc.selector).collect();
    let routes = routes_to(model, ns, |service| service == name);
    Some(json!({
        "name": format!("{ns}/{name}"),
        "workloads": workloads.iter().map(|w| w.view.node()).collect::<Vec<_>>(),
        "routes": routes,
        "peerAuthentications": peer_authentications(model, &workloads),
        "authorizationPolicies": authorization_policies(model, &workloads),
    }))
}

/// Workload `ns/name`: itself, the routes of the Services that select it, its policies.
pub fn workload(model: &Model, ns: &str, name: &str) -> Option<Value> {
    let w = model
        .workloads
        .iter()
        .find(|w| w.view.namespace == ns && w.view.name == name)?;
    let services: Vec<String> = model
        .services
        .values()
        .filter(|s| s.namespace == ns && selects(&s.selector, &w.view.labels))
        .map(|s| s.name.clone())
        .collect();
    let routes = routes_to(model, ns, |service| services.iter().any(|s| s == service));
    Some(json!({
        "name": w.view.node(),
        "workloads": [w.view.node()],
        "services": services,
        "meshed": w.view.meshed,
        "routes": routes,
        "peerAuthentications": peer_authentications(model, &[w]),
        "authorizationPolicies": authorization_policies(model, &[w]),
    }))
}

/// The routes attached to a Service of namespace `ns` that `serves` names.
fn routes_to(model: &Model, ns: &str, serves: impl Fn(&str) -> bool) -> Vec<Value> {
    model
        .routes
        .iter()
        .filter(|r| {
            r.parents
                .iter()
                .any(|p| p.namespace == ns && serves(&p.service))
        })
        .map(route)
        .collect()
}

fn route(r: &RouteModel) -> Value {
    let rules: Vec<Value> = r
        .rules
        .iter()
        .map(|rule| {
            let total: u32 = rule.backends.iter().map(|b| b.weight).sum();
            let backends: Vec<Value> = rule
                .backends
                .iter()
                .map(|b| {
                    let share = if total > 0 {
                        (f64::from(b.weight) * 100.0 / f64::from(total)).round()
                    } else {
                        0.0
                    };
                    json!({
                        "service": format!("{}/{}", b.backend.namespace, b.backend.service),
                        "weight": b.weight,
                        "share": share,
                    })
                })
                .collect();
            let matches: Vec<String> = rule
                .matches
                .iter()
                .map(|(m, _)| {
                    let mut parts = Vec::new();
                    match &m.path {
                        PathMatch::PathPrefix(p) if p == "/" => {}
                        PathMatch::PathPrefix(p) => parts.push(format!("path {p}*")),
                        PathMatch::Exact(p) => parts.push(format!("path {p}")),
                        PathMatch::RegularExpression(p) => parts.push(format!("path ~ {p}")),
                    }
                    if let Some(method) = &m.method {
                        parts.push(format!("method {method}"));
                    }
                    for h in &m.headers {
                        parts.push(match &h.value {
                            StringMatch::Exact(v) => format!("header {}: {v}", h.name),
                            StringMatch::RegularExpression(v) => format!("header {} ~ {v}", h.name),
                        });
                    }
                    if parts.is_empty() {
                        "any request".into()
                    } else {
                        parts.join(" and ")
                    }
                })
                .filter(|m| m != "any request")
                .collect();
            let filters: Vec<String> = rule
                .filters
                .iter()
                .map(|f| match f {
                    FilterModel::Mirror { backend, .. } => {
                        format!("mirror to {}/{}", backend.namespace, backend.service)
                    }
                    FilterModel::Plain(v) => match v {
                        FilterView::RequestHeaderModifier(_) => "request headers set",
                        FilterView::ResponseHeaderModifier(_) => "response headers set",
                        FilterView::RequestRedirect(_) => "redirect",
                        FilterView::UrlRewrite(_) => "URL rewrite",
                        FilterView::RequestMirror(_) => "mirror",
                        FilterView::Fault(_) => "fault injection",
                    }
                    .to_string(),
                })
                .collect();
            json!({"matches": matches, "backends": backends, "filters": filters})
        })
        .collect();
    json!({
        "kind": format!("{:?}Route", r.kind).replace("HttpRoute", "HTTPRoute").replace("GrpcRoute", "GRPCRoute").replace("TcpRoute", "TCPRoute"),
        "name": format!("{}/{}", r.namespace, r.name),
        "rules": rules,
    })
}

fn peer_authentications(model: &Model, workloads: &[&WorkloadModel]) -> Vec<Value> {
    model
        .peer_authentications
        .iter()
        .filter(|p| {
            workloads.iter().any(|w| {
                let in_scope =
                    p.namespace == model.root_namespace || p.namespace == w.view.namespace;
                let selected = p.selector.as_ref().is_none_or(|sel| {
                    p.namespace == w.view.namespace
                        && sel.iter().all(|(k, v)| w.view.labels.get(k) == Some(v))
                });
                in_scope && selected
            })
        })
        .map(|p| {
            let mode = match p.mode {
                Some(MtlsMode::Strict) => "STRICT",
                Some(MtlsMode::Permissive) => "PERMISSIVE",
                Some(MtlsMode::Disable) => "DISABLE",
                None => "UNSET (inherits)",
            };
            json!({"name": format!("{}/{}", p.namespace, p.name), "mode": mode})
        })
        .collect()
}

/// The AuthorizationPolicies that apply to any of `workloads`, scoped as the proxies scope
/// them ([`weft_api::compile::authz::policies_for`]), each once.
fn authorization_policies(model: &Model, workloads: &[&WorkloadModel]) -> Vec<Value> {
    let mut seen = std::collections::BTreeSet::new();
    workloads
        .iter()
        .flat_map(|w| policies_for(model, Some(&w.view), &w.view.namespace))
        .filter(|p| seen.insert((p.namespace.clone(), p.name.clone())))
        .map(|p| {
            let action = match p.action {
                AuthzAction::Allow => "ALLOW",
                AuthzAction::Deny => "DENY",
                AuthzAction::Audit => "AUDIT",
            };
            json!({"name": format!("{}/{}", p.namespace, p.name), "action": action})
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const MESH: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec: {selector: {app: reviews}, ports: [{name: http, port: 9080, appProtocol: http}]}
---
apiVersion: v1
kind: Service
metadata: {name: reviews-v2, namespace: shop}
spec: {selector: {app: reviews, version: v2}, ports: [{name: http, port: 9080, appProtocol: http}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reviews, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, port: 9080}]
  rules:
    - matches: [{headers: [{name: x-canary, value: "1"}]}]
      backendRefs: [{name: reviews-v2, port: 9080}]
    - backendRefs: [{name: reviews, port: 9080, weight: 3}, {name: reviews-v2, port: 9080, weight: 1}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v2-0, namespace: shop}
spec: {address: 10.0.0.7, labels: {app: reviews, version: v2}, serviceAccount: reviews}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: shop}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: readers, namespace: shop}
spec:
  selector: {matchLabels: {app: reviews}}
  rules: [{to: [{operation: {methods: [GET]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: elsewhere, namespace: shop}
spec:
  selector: {matchLabels: {app: ratings}}
  action: DENY
  rules: [{to: [{operation: {methods: [POST]}}]}]
"#;

    fn model() -> Model {
        let (resources, diags) = weft_api::load::load_str(Path::new("t.yaml"), MESH);
        assert!(diags.errors().next().is_none(), "{diags}");
        let (model, diags) = weft_api::validate::build(&resources);
        model.unwrap_or_else(|| panic!("{diags}"))
    }

    #[test]
    fn a_service_shows_its_routes_splits_and_the_policies_that_apply() {
        let v = service(&model(), "shop", "reviews").expect("the Service");
        assert_eq!(v["workloads"], json!(["shop/reviews-v2-0"]));
        let rules = &v["routes"][0]["rules"];
        assert_eq!(v["routes"][0]["kind"], "HTTPRoute");
        assert_eq!(rules[0]["matches"], json!(["header x-canary: 1"]));
        assert_eq!(rules[1]["backends"][0]["share"], 75.0);
        assert_eq!(rules[1]["backends"][1]["service"], "shop/reviews-v2");
        assert_eq!(
            v["peerAuthentications"],
            json!([{"name": "shop/default", "mode": "STRICT"}])
        );
        // Only the policy whose selector matches the Service's workloads.
        assert_eq!(
            v["authorizationPolicies"],
            json!([{"name": "shop/readers", "action": "ALLOW"}])
        );
        assert!(service(&model(), "shop", "nowhere").is_none());
        let w = workload(&model(), "shop", "reviews-v2-0").expect("the workload");
        assert_eq!(w["services"], json!(["reviews", "reviews-v2"]));
        assert_eq!(w["routes"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn the_page_is_served_with_a_strict_policy_and_unknown_paths_are_404() {
        let m = model();
        let page = handle(&m, "/dashboard/").expect("the page");
        assert_eq!(page.status(), StatusCode::OK);
        let csp = page.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap_or("");
        assert!(csp.starts_with("default-src 'self'"), "{csp}");
        assert_eq!(page.headers()[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(
            handle(&m, "/dashboard").map(|r| r.status()),
            Some(StatusCode::PERMANENT_REDIRECT)
        );
        assert_eq!(
            handle(&m, "/dashboard/../admin-token").map(|r| r.status()),
            Some(StatusCode::NOT_FOUND)
        );
        assert_eq!(
            handle(&m, "/dashboard/api/service/shop").map(|r| r.status()),
            Some(StatusCode::NOT_FOUND)
        );
        assert!(handle(&m, "/status").is_none());
    }
}
