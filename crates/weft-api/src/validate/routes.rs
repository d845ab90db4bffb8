//! HTTPRoute, GRPCRoute and TCPRoute: parents, rules, backends.
//!
//! Matches and filters are checked and translated in `matches.rs` and `filters.rs`; this file
//! owns what is common to the three kinds: which Service (and port) a route attaches to, and
//! which Services its rules send to.

use crate::diagnostic::Diagnostics;
use crate::model::{
    BackendName, BackendRefModel, MatchRank, Model, ParentModel, RouteKind, RouteModel, RuleModel,
};
use crate::resources::gateway::{BackendRef, ParentRef};
use crate::resources::{Object, Resource};
use crate::view::RequestMatch;

use super::{filters, matches, timing, HintExt, Reporter};

pub(super) fn build(resources: &[Resource], model: &mut Model, diags: &mut Diagnostics) {
    for r in resources {
        let route = match r {
            Resource::HttpRoute(o) => http_route(r, o, model, diags),
            Resource::GrpcRoute(o) => grpc_route(r, o, model, diags),
            Resource::TcpRoute(o) => tcp_route(r, o, model, diags),
            _ => continue,
        };
        model.routes.push(route);
    }
}

fn new_route<S>(kind: RouteKind, o: &Object<S>) -> RouteModel {
    RouteModel {
        kind,
        namespace: o.namespace().to_string(),
        name: o.name().to_string(),
        creation_timestamp: o.meta.creation_timestamp.clone().unwrap_or_default(),
        parents: Vec::new(),
        rules: Vec::new(),
    }
}

fn http_route(
    r: &Resource,
    o: &Object<crate::resources::gateway::HttpRouteSpec>,
    model: &Model,
    diags: &mut Diagnostics,
) -> RouteModel {
    let mut rep = Reporter::new(diags, r);
    let mut route = new_route(RouteKind::Http, o);
    route.parents = parents(&mut rep, &o.spec.parent_refs, o.namespace(), model);
    if !o.spec.hostnames.is_empty() {
        rep.error(
            "spec.hostnames",
            "hostnames have no meaning for a route attached to a Service",
        )
        .with_hint("a mesh route applies to all traffic to its parent Service; remove `hostnames`");
    }
    for (i, rule) in o.spec.rules.iter().enumerate() {
        let field = format!("spec.rules[{i}]");
        let matches = matches::http(&mut rep, &field, &rule.matches);
        let prefix_only = matches
            .iter()
            .all(|(m, _)| matches!(m.path, crate::view::PathMatch::PathPrefix(_)));
        let filters = filters::translate(
            &mut rep,
            &format!("{field}.filters"),
            &rule.filters,
            filters::Allowed::Http { prefix_only },
            o.namespace(),
            model,
        );
        let backends = backend_refs(
            &mut rep,
            &field,
            &rule.backend_refs,
            o.namespace(),
            model,
            true,
        );
        let has_redirect = rule
            .filters
            .iter()
            .any(|f| f.filter_type == "RequestRedirect");
        if !has_redirect && rule.backend_refs.is_empty() {
            rep.warning_at(
                rep.source.line,
                format!("{field}.backendRefs"),
                "rule has no backendRefs: requests it matches get a 500",
            )
            .with_hint("add a backendRef, or a RequestRedirect filter");
        }
        let (request_timeout_ms, backend_request_timeout_ms) =
            timing::timeouts(&mut rep, &field, rule.timeouts.as_ref());
        let retry = rule
            .retry
            .as_ref()
            .map(|r| timing::retry(&mut rep, &field, r));
        route.rules.push(RuleModel {
            name: rule.name.clone(),
            matches,
            filters,
            backends,
            request_timeout_ms,
            backend_request_timeout_ms,
            retry,
        });
    }
    route
}

fn grpc_route(
    r: &Resource,
    o: &Object<crate::resources::gateway::GrpcRouteSpec>,
    model: &Model,
    diags: &mut Diagnostics,
) -> RouteModel {
    let mut rep = Reporter::new(diags, r);
    let mut route = new_route(RouteKind::Grpc, o);
    route.parents = parents(&mut rep, &o.spec.parent_refs, o.namespace(), model);
    if !o.spec.hostnames.is_empty() {
        rep.error(
            "spec.hostnames",
            "hostnames have no meaning for a route attached to a Service",
        )
        .with_hint("remove `hostnames`");
    }
    let (retry, try_timeout) = timing::grpc_annotations(&mut rep, &o.meta.annotations);
    for (i, rule) in o.spec.rules.iter().enumerate() {
        let field = format!("spec.rules[{i}]");
        let matches = matches::grpc(&mut rep, &field, &rule.matches);
        let filters = filters::translate(
            &mut rep,
            &format!("{field}.filters"),
            &rule.filters,
            filters::Allowed::Grpc,
            o.namespace(),
            model,
        );
        let backends = backend_refs(
            &mut rep,
            &field,
            &rule.backend_refs,
            o.namespace(),
            model,
            true,
        );
        route.rules.push(RuleModel {
            name: rule.name.clone(),
            matches,
            filters,
            backends,
            request_timeout_ms: None,
            backend_request_timeout_ms: try_timeout,
            retry: retry.clone(),
        });
    }
    route
}

fn tcp_route(
    r: &Resource,
    o: &Object<crate::resources::gateway::TcpRouteSpec>,
    model: &Model,
    diags: &mut Diagnostics,
) -> RouteModel {
    let mut rep = Reporter::new(diags, r);
    let mut route = new_route(RouteKind::Tcp, o);
    route.parents = parents(&mut rep, &o.spec.parent_refs, o.namespace(), model);
    if o.spec.rules.len() != 1 {
        rep.error(
            "spec.rules",
            format!(
                "a TCPRoute needs exactly one rule, not {}",
                o.spec.rules.len()
            ),
        )
        .with_hint("put every backend in one rule's backendRefs, with weights");
    }
    for (i, rule) in o.spec.rules.iter().enumerate() {
        let field = format!("spec.rules[{i}]");
        let backends = backend_refs(
            &mut rep,
            &field,
            &rule.backend_refs,
            o.namespace(),
            model,
            false,
        );
        route.rules.push(RuleModel {
            name: rule.name.clone(),
            matches: vec![(RequestMatch::default(), MatchRank::default())],
            filters: Vec::new(),
            backends,
            request_timeout_ms: None,
            backend_request_timeout_ms: None,
            retry: None,
        });
    }
    route
}

fn parents(
    rep: &mut Reporter<'_>,
    refs: &[ParentRef],
    route_ns: &str,
    model: &Model,
) -> Vec<ParentModel> {
    if refs.is_empty() {
        rep.error(
            "spec.parentRefs",
            "the route has no parentRefs, so it applies to nothing",
        )
        .with_hint("add `parentRefs: [{group: \"\", kind: Service, name: <service>}]`");
    }
    let mut out = Vec::new();
    for (i, p) in refs.iter().enumerate() {
        let field = format!("spec.parentRefs[{i}]");
        let group = p.group.as_deref().unwrap_or("gateway.networking.k8s.io");
        let kind = p.kind.as_deref().unwrap_or("Gateway");
        if !matches!(group, "" | "core") || kind != "Service" {
            rep.error_span(
                &p.name,
                field,
                format!("parentRef to {kind} (group `{group}`): Weft routes attach to Services"),
            )
            .with_hint("set `group: \"\"` and `kind: Service` (the Gateway API's mesh profile)");
            continue;
        }
        let namespace = p.namespace.clone().unwrap_or_else(|| route_ns.to_string());
        let name = &p.name.value;
        let Some(svc) = model.services.get(&(namespace.clone(), name.clone())) else {
            rep.error_span(
                &p.name,
                format!("{field}.name"),
                format!("Service {namespace}/{name} does not exist"),
            )
            .with_hint(known_services(model, &namespace));
            continue;
        };
        let mut port = p.port.and_then(|n| u16::try_from(n).ok());
        if let Some(section) = &p.section_name {
            match svc
                .ports
                .iter()
                .find(|sp| sp.name.as_deref() == Some(section.as_str()))
            {
                Some(sp) if port.is_none() || port == Some(sp.port) => port = Some(sp.port),
                _ => {
                    rep.error_span(&p.name, format!("{field}.sectionName"), format!("Service {namespace}/{name} has no port named `{section}` (matching `port`)"));
                    continue;
                }
            }
        }
        if let Some(n) = p.port {
            if port.and_then(|pt| svc.port(pt)).is_none() {
                rep.error_span(
                    &p.name,
                    format!("{field}.port"),
                    format!("Service {namespace}/{name} has no port {n}"),
                )
                .with_hint(format!("its ports are {}", port_list(svc)));
                continue;
            }
        }
        out.push(ParentModel {
            namespace,
            service: name.clone(),
            port,
        });
    }
    out
}

/// Backend references: Services by name and port. A reference to a missing Service or port is
/// an error, except with weight 0 (it can never receive traffic), which is a warning.
fn backend_refs(
    rep: &mut Reporter<'_>,
    field: &str,
    refs: &[BackendRef],
    route_ns: &str,
    model: &Model,
    http: bool,
) -> Vec<BackendRefModel> {
    let mut out = Vec::new();
    for (i, b) in refs.iter().enumerate() {
        let f = format!("{field}.backendRefs[{i}]");
        let weight = b.weight.unwrap_or(1);
        if weight > 1_000_000 {
            rep.error_span(
                &b.name,
                format!("{f}.weight"),
                format!("weight {weight} is above the maximum"),
            )
            .with_hint("weights are 0-1000000");
            continue;
        }
        let Some(backend) = resolve_backend(
            rep,
            &f,
            &b.name,
            b.group.as_deref(),
            b.kind.as_deref(),
            b.namespace.as_deref(),
            b.port,
            route_ns,
            model,
            weight == 0,
        ) else {
            continue;
        };
        let filters = if http {
            filters::translate(
                rep,
                &format!("{f}.filters"),
                &b.filters,
                filters::Allowed::Backend,
                route_ns,
                model,
            )
        } else {
            if !b.filters.is_empty() {
                rep.error_span(
                    &b.name,
                    format!("{f}.filters"),
                    "a TCPRoute backend cannot have filters",
                );
            }
            Vec::new()
        };
        out.push(BackendRefModel {
            backend,
            weight,
            filters,
        });
    }
    out
}

#[allow(clippy::too_many_arguments)]
pub(super) fn resolve_backend(
    rep: &mut Reporter<'_>,
    field: &str,
    name: &crate::resources::Spanned<String>,
    group: Option<&str>,
    kind: Option<&str>,
    namespace: Option<&str>,
    port: Option<u32>,
    route_ns: &str,
    model: &Model,
    tolerate_missing: bool,
) -> Option<BackendName> {
    let group = group.unwrap_or("");
    let kind = kind.unwrap_or("Service");
    if !matches!(group, "" | "core") || kind != "Service" {
        rep.error_span(
            name,
            field,
            format!("backendRef to {kind} (group `{group}`): Weft sends to Services"),
        )
        .with_hint("set `kind: Service` or leave group and kind out");
        return None;
    }
    let namespace = namespace.unwrap_or(route_ns).to_string();
    let Some(port) = port.and_then(|p| u16::try_from(p).ok()).filter(|p| *p != 0) else {
        rep.error_span(
            name,
            format!("{field}.port"),
            "a backendRef to a Service needs its `port`",
        )
        .with_hint("the Service port to send to, e.g. `port: 80`");
        return None;
    };
    let service = name.value.clone();
    let resolved = match model.services.get(&(namespace.clone(), service.clone())) {
        None => {
            let msg = format!("Service {namespace}/{service} does not exist");
            let line = rep.source.line_of(name);
            let hint = known_services(model, &namespace);
            if tolerate_missing {
                rep.warning_at(
                    line,
                    format!("{field}.name"),
                    format!("{msg}; it has weight 0 so no traffic is lost"),
                );
            } else {
                rep.error_at(line, format!("{field}.name"), msg)
                    .with_hint(hint);
            }
            false
        }
        Some(svc) if svc.port(port).is_none() => {
            let line = rep.source.line_of(name);
            let msg = format!("Service {namespace}/{service} has no port {port}");
            let hint = format!("its ports are {}", port_list(svc));
            if tolerate_missing {
                rep.warning_at(line, format!("{field}.port"), msg)
                    .with_hint(hint);
            } else {
                rep.error_at(line, format!("{field}.port"), msg)
                    .with_hint(hint);
            }
            false
        }
        Some(_) => true,
    };
    Some(BackendName {
        namespace,
        service,
        port,
        resolved,
    })
}

fn known_services(model: &Model, namespace: &str) -> String {
    let names: Vec<&str> = model
        .services
        .keys()
        .filter(|(ns, _)| ns == namespace)
        .map(|(_, n)| n.as_str())
        .collect();
    if names.is_empty() {
        format!("namespace {namespace} has no Services")
    } else {
        format!("Services in {namespace}: {}", names.join(", "))
    }
}

fn port_list(svc: &crate::model::ServiceModel) -> String {
    let ports: Vec<String> = svc.ports.iter().map(|p| p.port.to_string()).collect();
    ports.join(", ")
}
