//! One Service as one client namespace sees it: its ports, the routes attached to them, and
//! every backend those send to.
//!
//! GAMMA consumer routes (a route in the client's own namespace whose parent is a Service
//! elsewhere) apply only to clients in that namespace, and replace the Service owner's
//! (producer) routes for them. This is the one place that decides which routes apply and in
//! what order.

use std::collections::BTreeMap;

use crate::model::{
    BackendName, FilterModel, Model, RouteKind, RouteModel, ServiceModel, TargetPort,
};
use crate::view::{
    BackendView, EndpointView, FilterView, LoadBalancer, MatchEntry, MirrorView, MtlsMode,
    RoutingTable, RuleView, ServiceBundle, ServicePortView, ServiceView, TcpRouteView,
    WeightedBackend,
};

/// Compiles `svc` for clients in `client_ns`, with the backends it refers to.
pub fn bundle(model: &Model, svc: &ServiceModel, client_ns: &str) -> ServiceBundle {
    let mut backends = BTreeMap::new();
    let mut ports = Vec::with_capacity(svc.ports.len());
    for p in &svc.ports {
        let own = backend(model, svc, p.port);
        let default_backend = own.key.clone();
        backends.insert(own.key.clone(), own);
        let http = routes_for(model, svc, p.port, RouteKind::Http, client_ns);
        let grpc = routes_for(model, svc, p.port, RouteKind::Grpc, client_ns);
        let tcp = routes_for(model, svc, p.port, RouteKind::Tcp, client_ns);
        for route in http.iter().chain(&grpc).chain(&tcp) {
            for name in referenced(route) {
                if !name.resolved {
                    continue;
                }
                let key = BackendView::key_for(&name.namespace, &name.service, name.port);
                if backends.contains_key(&key) {
                    continue;
                }
                if let Some(target) = model
                    .services
                    .get(&(name.namespace.clone(), name.service.clone()))
                {
                    backends.insert(key, backend(model, target, name.port));
                }
            }
        }
        ports.push(ServicePortView {
            port: p.port,
            name: p.name.clone(),
            protocol: p.protocol,
            default_backend,
            http: table(&http),
            grpc: table(&grpc),
            tcp: tcp.first().and_then(|r| {
                r.rules.first().map(|rule| TcpRouteView {
                    route: route_ref(r, 0, rule.name.clone()),
                    backends: weighted(&rule.backends),
                })
            }),
        });
    }
    ServiceBundle {
        service: ServiceView {
            name: svc.name.clone(),
            namespace: svc.namespace.clone(),
            vip: svc.vip,
            ports,
        },
        backends,
    }
}

/// Every backend a route names: its rules' backends and mirrors, and mirrors on backends.
fn referenced(route: &RouteModel) -> impl Iterator<Item = &BackendName> {
    fn mirrors(filters: &[FilterModel]) -> impl Iterator<Item = &BackendName> {
        filters.iter().filter_map(|f| match f {
            FilterModel::Mirror { backend, .. } => Some(backend),
            FilterModel::Plain(_) => None,
        })
    }
    route.rules.iter().flat_map(|rule| {
        mirrors(&rule.filters).chain(
            rule.backends
                .iter()
                .flat_map(|b| std::iter::once(&b.backend).chain(mirrors(&b.filters))),
        )
    })
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
pub(super) fn backend(model: &Model, svc: &ServiceModel, port: u16) -> BackendView {
    let sp = svc.port(port);
    let mut endpoints = Vec::new();
    for w in model.selected(&svc.namespace, &svc.selector) {
        let v = &w.view;
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
            mtls: v.meshed && super::mtls::mode_for(model, v, target) != MtlsMode::Disable,
            network: v.network.clone(),
            tunnel: v.tunnel,
            zone: v.zone.clone(),
        });
    }
    let policies = model
        .traffic_policies
        .get(&(svc.namespace.clone(), svc.name.clone()));
    // The port's own setting of a part, else the Service-wide one.
    let part = |pick: &dyn Fn(&crate::model::TrafficPolicyModel) -> bool| {
        policies.and_then(|entries| {
            entries
                .iter()
                .find(|(p, t)| *p == Some(port) && pick(t))
                .or_else(|| entries.iter().find(|(p, t)| p.is_none() && pick(t)))
                .map(|(_, t)| t)
        })
    };
    let load_balancer = part(&|t| t.load_balancer.is_some())
        .and_then(|t| t.load_balancer.clone())
        .unwrap_or(LoadBalancer::PeakEwma);
    let outlier = part(&|t| t.outlier.is_some()).and_then(|t| t.outlier.clone());
    let pool = part(&|t| t.pool.is_some()).and_then(|t| t.pool.clone());
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
        outlier,
        pool,
        traffic_distribution: svc.traffic_distribution,
    }
}
