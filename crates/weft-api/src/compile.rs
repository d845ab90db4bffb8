//! Compiling the model into one proxy's view.
//!
//! The view depends on who the proxy is: GAMMA consumer routes (a route in the client's own
//! namespace whose parent is a Service elsewhere) apply only to clients in that namespace, and
//! replace the Service owner's (producer) routes for them. Everything else is the same for
//! every proxy. This is the one place that decides which routes apply and in what order; a
//! proxy reading files and the control plane both call it.

use std::collections::BTreeMap;

use crate::model::{
    BackendName, FilterModel, Model, RouteKind, RouteModel, ServiceModel, TargetPort,
};
use crate::view::{
    BackendView, EndpointView, FilterView, LoadBalancer, MatchEntry, MirrorView, ProxyView,
    RoutingTable, RuleView, ServicePortView, ServiceView, TcpRouteView, WeightedBackend,
};

/// Who a view is for.
#[derive(Clone, Debug)]
pub struct ProxyIdentity {
    /// The namespace the proxy's workload runs in: decides which consumer routes apply.
    pub namespace: String,
    /// The proxy's own WorkloadEntry, if it runs beside one.
    pub workload: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("no WorkloadEntry named `{name}` in namespace `{namespace}`{}", known_workloads(.known))]
    UnknownWorkload {
        name: String,
        namespace: String,
        known: Vec<String>,
    },
}

fn known_workloads(known: &[String]) -> String {
    if known.is_empty() {
        "; the configuration declares no WorkloadEntries".into()
    } else {
        format!("; known workloads: {}", known.join(", "))
    }
}

pub fn compile(model: &Model, who: &ProxyIdentity) -> Result<ProxyView, CompileError> {
    let workload = match &who.workload {
        None => None,
        Some(name) => Some(
            model
                .workloads
                .iter()
                .find(|w| &w.view.name == name && w.view.namespace == who.namespace)
                .map(|w| w.view.clone())
                .ok_or_else(|| CompileError::UnknownWorkload {
                    name: name.clone(),
                    namespace: who.namespace.clone(),
                    known: model
                        .workloads
                        .iter()
                        .map(|w| format!("{}/{}", w.view.namespace, w.view.name))
                        .collect(),
                })?,
        ),
    };
    let mut view = ProxyView {
        version: String::new(),
        mesh: model.mesh.clone(),
        workload,
        services: Vec::new(),
        backends: BTreeMap::new(),
        workloads: model.workloads.iter().map(|w| w.view.clone()).collect(),
    };
    for svc in model.services.values() {
        for port in &svc.ports {
            let backend = backend(model, svc, port.port);
            view.backends.insert(backend.key.clone(), backend);
        }
        view.services.push(ServiceView {
            name: svc.name.clone(),
            namespace: svc.namespace.clone(),
            vip: svc.vip,
            ports: svc
                .ports
                .iter()
                .map(|p| ServicePortView {
                    port: p.port,
                    name: p.name.clone(),
                    protocol: p.protocol,
                    default_backend: BackendView::key_for(&svc.namespace, &svc.name, p.port),
                    http: table(&routes_for(
                        model,
                        svc,
                        p.port,
                        RouteKind::Http,
                        &who.namespace,
                    )),
                    grpc: table(&routes_for(
                        model,
                        svc,
                        p.port,
                        RouteKind::Grpc,
                        &who.namespace,
                    )),
                    tcp: routes_for(model, svc, p.port, RouteKind::Tcp, &who.namespace)
                        .first()
                        .and_then(|r| {
                            r.rules.first().map(|rule| TcpRouteView {
                                route: route_ref(r, 0, rule.name.clone()),
                                backends: weighted(&rule.backends),
                            })
                        }),
                })
                .collect(),
        });
    }
    view.version = digest(&view);
    Ok(view)
}

/// Routes of one kind attached to a Service port, as this client sees them, oldest first.
fn routes_for<'m>(
    model: &'m Model,
    svc: &ServiceModel,
    port: u16,
    kind: RouteKind,
    client_ns: &str,
) -> Vec<&'m RouteModel> {
    let attached = |r: &&RouteModel| {
        r.kind == kind
            && r.parents.iter().any(|p| {
                p.namespace == svc.namespace
                    && p.service == svc.name
                    && p.port.is_none_or(|pp| pp == port)
            })
    };
    let consumer: Vec<&RouteModel> = model
        .routes
        .iter()
        .filter(attached)
        .filter(|r| r.namespace == client_ns && r.namespace != svc.namespace)
        .collect();
    let mut routes = if consumer.is_empty() {
        model
            .routes
            .iter()
            .filter(attached)
            .filter(|r| r.namespace == svc.namespace)
            .collect()
    } else {
        consumer
    };
    routes.sort_by(|a, b| {
        (&a.creation_timestamp, &a.namespace, &a.name).cmp(&(
            &b.creation_timestamp,
            &b.namespace,
            &b.name,
        ))
    });
    routes
}

/// Merges the rules of `routes` (oldest first) and sorts every match by precedence.
fn table(routes: &[&RouteModel]) -> RoutingTable {
    let mut t = RoutingTable::default();
    // (rank, route order, rule index in table, match order): a stable sort on rank, descending,
    // keeps the Gateway API's tie-breaks (older route, then name, then rule and match order).
    let mut entries = Vec::new();
    for route in routes {
        for (ri, rule) in route.rules.iter().enumerate() {
            let index = t.rules.len();
            t.rules.push(RuleView {
                route: route_ref(route, ri, rule.name.clone()),
                filters: filters(&rule.filters),
                backends: weighted(&rule.backends),
                request_timeout_ms: rule.request_timeout_ms,
                backend_request_timeout_ms: rule.backend_request_timeout_ms,
                retry: rule.retry.clone(),
            });
            for (m, rank) in &rule.matches {
                entries.push((*rank, index, m.clone()));
            }
        }
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.0));
    t.matches = entries
        .into_iter()
        .map(|(_, rule, matcher)| MatchEntry { rule, matcher })
        .collect();
    t
}

fn route_ref(route: &RouteModel, rule: usize, rule_name: Option<String>) -> crate::view::RouteRef {
    crate::view::RouteRef {
        kind: route.kind.name().to_string(),
        namespace: route.namespace.clone(),
        name: route.name.clone(),
        rule,
        rule_name,
    }
}

fn key(b: &BackendName) -> Option<String> {
    b.resolved
        .then(|| BackendView::key_for(&b.namespace, &b.service, b.port))
}

fn weighted(backends: &[crate::model::BackendRefModel]) -> Vec<WeightedBackend> {
    backends
        .iter()
        .map(|b| WeightedBackend {
            backend: key(&b.backend),
            weight: b.weight,
            filters: filters(&b.filters),
        })
        .collect()
}

fn filters(filters: &[FilterModel]) -> Vec<FilterView> {
    filters
        .iter()
        .map(|f| match f {
            FilterModel::Plain(v) => v.clone(),
            FilterModel::Mirror {
                backend,
                per_million,
            } => FilterView::RequestMirror(MirrorView {
                backend: key(backend),
                per_million: *per_million,
            }),
        })
        .collect()
}

/// A Service port's endpoints: the workloads its selector picks, at its target port.
fn backend(model: &Model, svc: &ServiceModel, port: u16) -> BackendView {
    let sp = svc.port(port);
    let mut endpoints = Vec::new();
    if !svc.selector.is_empty() {
        for w in &model.workloads {
            let v = &w.view;
            if v.namespace != svc.namespace
                || !svc
                    .selector
                    .iter()
                    .all(|(k, val)| v.labels.get(k) == Some(val))
            {
                continue;
            }
            let target = match sp.map(|p| &p.target) {
                Some(TargetPort::Number(n)) => Some(*n),
                Some(TargetPort::Name(name)) => w.ports.get(name).copied(),
                None => None,
            };
            let Some(target) = target else { continue };
            endpoints.push(EndpointView {
                addr: std::net::SocketAddr::new(v.address, target),
                workload: v.name.clone(),
                namespace: v.namespace.clone(),
                service_account: v.service_account.clone(),
                meshed: v.meshed,
                weight: w.weight,
            });
        }
    }
    let load_balancer = model
        .load_balancers
        .get(&(svc.namespace.clone(), svc.name.clone()))
        .and_then(|entries| {
            entries
                .iter()
                .find(|(p, _)| *p == Some(port))
                .or_else(|| entries.iter().find(|(p, _)| p.is_none()))
                .map(|(_, lb)| lb.clone())
        })
        .unwrap_or(LoadBalancer::PeakEwma);
    BackendView {
        key: BackendView::key_for(&svc.namespace, &svc.name, port),
        service: svc.name.clone(),
        namespace: svc.namespace.clone(),
        port,
        protocol: sp
            .map(|p| p.protocol)
            .unwrap_or(crate::view::Protocol::Detect),
        load_balancer,
        endpoints,
    }
}

/// FNV-1a over the view's JSON: a stable content digest, not a security boundary.
fn digest(view: &ProxyView) -> String {
    let json = serde_json::to_vec(view).unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in json {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}
