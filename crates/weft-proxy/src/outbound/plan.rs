//! The route decision: a pure function of (snapshot, connection target, request head) that
//! says where a request goes — which Service port and route rule (with the path prefix it
//! matched, for `ReplacePrefixMatch`), or a workload's own address — or why it goes nowhere.
//!
//! No sockets, no clock, no randomness: the table tests below are the Gateway API's matching
//! rules as this proxy applies them. Weighted backend choice comes later (a filter may
//! answer first: a redirect needs no backend).

use std::net::SocketAddr;
use std::sync::Arc;

use http::Request;

use super::last_authority::LastAuthority;
use super::Target;
use crate::error::{ProxyError, Reason};
use crate::state::{Rule, ServicePort, Snapshot};

/// Where a request goes.
pub enum Plan {
    /// Routed: the Service port, the rule that matched and the path prefix it matched.
    Route {
        port: Arc<ServicePort>,
        rule: Arc<Rule>,
        prefix: Option<Arc<str>>,
    },
    /// A workload's own address: no routes, straight to that endpoint.
    Workload(SocketAddr),
}

/// Decides where `req` goes. `last` remembers the connection's last authority (a cache that
/// answers exactly as `snapshot.by_authority` would).
pub fn plan<B>(
    snapshot: &Arc<Snapshot>,
    target: &Target,
    req: &Request<B>,
    grpc: bool,
    last: &LastAuthority,
) -> Result<Plan, ProxyError> {
    let port = match target {
        Target::Service(addr) => snapshot.by_addr(*addr).cloned().ok_or_else(|| {
            ProxyError::new(
                Reason::UnknownService,
                format!("{addr} is no longer a Service in the mesh"),
            )
        })?,
        Target::Workload(addr) => return Ok(Plan::Workload(*addr)),
        Target::Explicit => {
            let authority = authority_of(req).ok_or_else(|| {
                ProxyError::new(Reason::UnknownService, "request has no Host or authority")
            })?;
            match last.resolve(snapshot, authority) {
                Some(port) => port,
                None => return workload_by_authority(snapshot, authority),
            }
        }
    };
    let (rule, prefix) = route(&port, req, grpc)?;
    Ok(Plan::Route { port, rule, prefix })
}

/// An explicit request to a workload's own address (pod IP and port).
fn workload_by_authority(snapshot: &Snapshot, authority: &str) -> Result<Plan, ProxyError> {
    if let Ok(addr) = authority.parse::<SocketAddr>() {
        if snapshot.workload_at(addr.ip()).is_some() {
            return Ok(Plan::Workload(addr));
        }
    }
    Err(ProxyError::new(
        Reason::UnknownService,
        format!("`{authority}` is not a Service (or workload address) this proxy knows"),
    ))
}

/// The rule of `port`'s routes that takes `req`: gRPC requests prefer GRPCRoutes, others
/// HTTPRoutes; with none attached, the Service's own endpoints.
fn route<B>(
    port: &ServicePort,
    req: &Request<B>,
    grpc: bool,
) -> Result<(Arc<Rule>, Option<Arc<str>>), ProxyError> {
    let table = if grpc && port.grpc.is_attached() {
        &port.grpc
    } else if port.http.is_attached() {
        &port.http
    } else if port.grpc.is_attached() {
        &port.grpc
    } else {
        return Ok((port.default_rule.clone(), None));
    };
    let uri = req.uri();
    match table.find(req.method(), uri.path(), uri.query(), req.headers()) {
        Some((rule, prefix)) => Ok((rule.clone(), prefix.cloned())),
        None => Err(ProxyError::new(
            Reason::NoRoute,
            format!(
                "no rule of the routes attached to {} port {} matches",
                port.service, port.port
            ),
        )),
    }
}

/// The request's authority: from an absolute URI (explicit proxy requests), else `Host`.
pub fn authority_of<B>(req: &Request<B>) -> Option<&str> {
    if let Some(a) = req.uri().authority() {
        return Some(a.as_str());
    }
    req.headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use crate::state::Registry;

    /// `shop/reviews` (VIP 10.96.0.10, port 9080 and 80) with an HTTPRoute on 9080, a
    /// GRPCRoute on 80, and a workload at 10.0.0.7.
    const MESH: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec:
  clusterIP: 10.96.0.10
  selector: {app: reviews}
  ports: [{name: http, port: 9080}, {name: grpc, port: 80, appProtocol: grpc}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-0, namespace: shop}
spec: {address: 10.0.0.7, labels: {app: reviews}, serviceAccount: reviews}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: split, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, port: 9080}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /v2}}]
    backendRefs: [{name: reviews, port: 9080}]
  - matches: [{headers: [{name: x-canary, value: "1"}]}]
    backendRefs: [{name: reviews, port: 9080}]
  - matches: [{path: {type: Exact, value: /only}, method: POST}]
    backendRefs: [{name: reviews, port: 9080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: rpc, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, port: 80}]
  rules:
  - matches: [{method: {service: shop.Reviews, method: Get}}]
    backendRefs: [{name: reviews, port: 80}]
"#;

    fn snapshot() -> Arc<Snapshot> {
        let (resources, diags) = weft_api::load::load_str(std::path::Path::new("t.yaml"), MESH);
        let (model, more) = weft_api::validate::build(&resources);
        let model = model.unwrap_or_else(|| panic!("{diags}{more}"));
        let who = weft_api::compile::ProxyIdentity {
            namespace: "shop".into(),
            workload: None,
        };
        let view = weft_api::compile::compile(&model, &who).expect("compile");
        Arc::new(Snapshot::build(
            view,
            "shop",
            &Metrics::new(),
            &Registry::default(),
        ))
    }

    fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).expect("request")
    }

    /// What a plan says, in words a table can hold.
    fn outcome(p: Result<Plan, ProxyError>) -> String {
        match p {
            Ok(Plan::Route { port, rule, prefix }) => format!(
                "{}:{} {} rule {}{}",
                port.service,
                port.port,
                rule.route.label(),
                rule.route.rule,
                prefix.map(|p| format!(" prefix {p}")).unwrap_or_default()
            ),
            Ok(Plan::Workload(addr)) => format!("workload {addr}"),
            Err(e) => format!("error {}", e.reason.label()),
        }
    }

    /// One row: a request to a target, whether it is gRPC, and what the plan must say.
    struct Case {
        target: Target,
        method: &'static str,
        uri: &'static str,
        headers: &'static [(&'static str, &'static str)],
        grpc: bool,
        want: &'static str,
    }

    fn case(target: Target, method: &'static str, uri: &'static str, want: &'static str) -> Case {
        Case {
            target,
            method,
            uri,
            headers: &[],
            grpc: false,
            want,
        }
    }

    #[test]
    fn plans_follow_the_gateway_api_rules() {
        let s = snapshot();
        let vip = |port| Target::Service(SocketAddr::from(([10, 96, 0, 10], port)));
        let pod = Target::Workload(SocketAddr::from(([10, 0, 0, 7], 8080)));
        const GRPC: &[(&str, &str)] = &[("content-type", "application/grpc")];
        let v2 = "shop/reviews:9080 shop/split rule 0 prefix /v2";
        let cases = [
            case(vip(9080), "GET", "/v2/x", v2),
            case(vip(9080), "GET", "/v2", v2),
            case(vip(9080), "GET", "/v2x", "error no-route"),
            Case {
                headers: &[("x-canary", "1")],
                ..case(
                    vip(9080),
                    "GET",
                    "/a",
                    "shop/reviews:9080 shop/split rule 1 prefix /",
                )
            },
            Case {
                headers: &[("x-canary", "2")],
                ..case(vip(9080), "GET", "/a", "error no-route")
            },
            case(
                vip(9080),
                "POST",
                "/only",
                "shop/reviews:9080 shop/split rule 2",
            ),
            case(vip(9080), "GET", "/only", "error no-route"),
            Case {
                headers: GRPC,
                grpc: true,
                ..case(
                    vip(80),
                    "POST",
                    "/shop.Reviews/Get",
                    "shop/reviews:80 shop/rpc rule 0",
                )
            },
            Case {
                headers: GRPC,
                grpc: true,
                ..case(vip(80), "POST", "/shop.Reviews/List", "error no-route")
            },
            case(vip(81), "GET", "/", "error unknown-service"),
            case(pod, "GET", "/", "workload 10.0.0.7:8080"),
            Case {
                headers: &[("host", "reviews:9080")],
                ..case(Target::Explicit, "GET", "/v2/y", v2)
            },
            case(
                Target::Explicit,
                "GET",
                "http://reviews.shop.svc.cluster.local:9080/v2",
                v2,
            ),
            Case {
                headers: &[("host", "10.0.0.7:8080")],
                ..case(Target::Explicit, "GET", "/", "workload 10.0.0.7:8080")
            },
            Case {
                headers: &[("host", "10.0.0.8:8080")],
                ..case(Target::Explicit, "GET", "/", "error unknown-service")
            },
            Case {
                headers: &[("host", "ratings:9080")],
                ..case(Target::Explicit, "GET", "/", "error unknown-service")
            },
            case(Target::Explicit, "GET", "/", "error unknown-service"),
        ];
        let last = LastAuthority::default();
        for c in cases {
            let req = request(c.method, c.uri, c.headers);
            let got = outcome(plan(&s, &c.target, &req, c.grpc, &last));
            assert_eq!(
                got, c.want,
                "{} {} {:?} to {:?}",
                c.method, c.uri, c.headers, c.target
            );
        }
    }
}
