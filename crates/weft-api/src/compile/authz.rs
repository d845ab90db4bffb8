//! Which AuthorizationPolicies apply to a proxy's workload.
//!
//! As Istio scopes them: a policy in the root namespace applies mesh-wide (its `selector`, if
//! any, picks workloads in every namespace); elsewhere it applies in its own namespace, to
//! every workload or to those its `selector` picks. A policy attached to Services
//! (`targetRefs`) applies to the workloads those Services select, on the ports they send to:
//! inbound, the proxy cannot tell which Service a caller named, only the port it reached.

use std::collections::BTreeSet;

use crate::model::{AuthzPolicyModel, Model, PolicyScope, TargetPort};
use crate::view::authz::AuthzPolicyView;
use crate::view::WorkloadView;

/// The policies for a proxy beside `workload` (or, without one, in `namespace`), sorted by
/// namespace and name.
pub fn policies_for(
    model: &Model,
    workload: Option<&WorkloadView>,
    namespace: &str,
) -> Vec<AuthzPolicyView> {
    let mut out: Vec<AuthzPolicyView> = model
        .authz_policies
        .iter()
        .filter_map(|p| applies(model, p, workload, namespace))
        .collect();
    out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    out
}

/// The policy as it applies to the workload, with its ports for Service scopes.
pub fn applies(
    model: &Model,
    p: &AuthzPolicyModel,
    workload: Option<&WorkloadView>,
    namespace: &str,
) -> Option<AuthzPolicyView> {
    let own_ns = workload.map_or(namespace, |w| w.namespace.as_str());
    let ns_ok = p.view.namespace == model.root_namespace || p.view.namespace == own_ns;
    match &p.scope {
        PolicyScope::Namespace => ns_ok.then(|| p.view.clone()),
        PolicyScope::Selector(labels) => {
            let w = workload?;
            let selected = labels.iter().all(|(k, v)| w.labels.get(k) == Some(v));
            (ns_ok && selected).then(|| p.view.clone())
        }
        PolicyScope::Services(names) => {
            let w = workload?;
            let ports = service_ports(model, &p.view.namespace, names, w);
            if ports.is_empty() {
                return None;
            }
            let mut view = p.view.clone();
            view.ports = Some(ports.into_iter().collect());
            Some(view)
        }
    }
}

/// The HTTPLocalRateLimitPolicies whose Service selects `w`, each with the ports of `w` the
/// Service sends to (a rate limit is scoped as an AuthorizationPolicy with `targetRefs`).
pub fn rate_limits_for(model: &Model, w: &WorkloadView) -> Vec<crate::view::RateLimitView> {
    model
        .rate_limits
        .iter()
        .filter_map(|((ns, service), view)| {
            let ports = service_ports(model, ns, std::slice::from_ref(service), w);
            (!ports.is_empty()).then(|| crate::view::RateLimitView {
                ports: ports.into_iter().collect(),
                ..view.clone()
            })
        })
        .collect()
}

/// The ports of `w` that the named Services (of `namespace`) send to; empty when none of
/// them selects it.
fn service_ports(
    model: &Model,
    namespace: &str,
    names: &[String],
    w: &WorkloadView,
) -> BTreeSet<u16> {
    let mut ports = BTreeSet::new();
    if w.namespace != namespace {
        return ports;
    }
    let ports_of = |name: &str| {
        model
            .workloads
            .iter()
            .find(|m| m.view == *w)
            .and_then(|m| m.ports.get(name).copied())
    };
    for name in names {
        let Some(svc) = model.services.get(&(namespace.to_string(), name.clone())) else {
            continue;
        };
        let selects = !svc.selector.is_empty()
            && svc.selector.iter().all(|(k, v)| w.labels.get(k) == Some(v));
        if !selects {
            continue;
        }
        for p in &svc.ports {
            match &p.target {
                TargetPort::Number(n) => {
                    ports.insert(*n);
                }
                TargetPort::Name(n) => {
                    if let Some(port) = ports_of(n) {
                        ports.insert(port);
                    }
                }
            }
        }
    }
    ports
}

/// What `weft authz check` evaluates for a request to a Service port: each workload the
/// Service sends to, the port on it, and the policies there.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthzScope {
    /// `namespace/name`.
    pub service: String,
    pub port: u16,
    pub path_normalization: crate::view::PathNormalization,
    pub targets: Vec<AuthzTarget>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthzTarget {
    /// `namespace/name`.
    pub workload: String,
    pub address: std::net::IpAddr,
    /// The workload's port the Service port sends to.
    pub port: u16,
    pub policies: Vec<AuthzPolicyView>,
}

/// The scope of a request to Service `namespace/name` on `port` (its only port when `None`).
pub fn scope(
    model: &Model,
    namespace: &str,
    name: &str,
    port: Option<u16>,
) -> Result<AuthzScope, String> {
    let svc = model
        .services
        .get(&(namespace.to_string(), name.to_string()))
        .ok_or_else(|| format!("no Service {namespace}/{name}"))?;
    let ports: Vec<String> = svc.ports.iter().map(|p| p.port.to_string()).collect();
    let sp = match port {
        Some(p) => svc.port(p).ok_or_else(|| {
            format!("Service {namespace}/{name} has no port {p} (it has {})", ports.join(", "))
        })?,
        None if svc.ports.len() == 1 => &svc.ports[0],
        None => {
            return Err(format!(
                "Service {namespace}/{name} has several ports ({}): say which, as {name}.{namespace}:PORT",
                ports.join(", ")
            ))
        }
    };
    let mut targets = Vec::new();
    let selects = |v: &WorkloadView| {
        v.namespace == svc.namespace
            && !svc.selector.is_empty()
            && svc
                .selector
                .iter()
                .all(|(k, val)| v.labels.get(k) == Some(val))
    };
    for w in &model.workloads {
        let v = &w.view;
        if !selects(v) {
            continue;
        }
        let target_port = match &sp.target {
            TargetPort::Number(n) => Some(*n),
            TargetPort::Name(n) => w.ports.get(n).copied(),
        };
        let Some(target_port) = target_port else {
            continue;
        };
        targets.push(AuthzTarget {
            workload: format!("{}/{}", v.namespace, v.name),
            address: v.address,
            port: target_port,
            policies: policies_for(model, Some(v), &v.namespace),
        });
    }
    if targets.is_empty() {
        // A directory `weft up` runs: its LocalWorkloads are the workloads to come.
        for lw in &model.local_workloads {
            let mut labels = lw.labels.clone();
            labels.insert("app".into(), lw.service.clone());
            let v = WorkloadView {
                name: lw.name.clone(),
                namespace: lw.namespace.clone(),
                address: std::net::IpAddr::from([0, 0, 0, 0]),
                labels,
                service_account: lw
                    .service_account
                    .clone()
                    .unwrap_or_else(|| "default".into()),
                meshed: true,
                network: None,
                tunnel: None,
                zone: None,
            };
            if !selects(&v) {
                continue;
            }
            let port = match &sp.target {
                TargetPort::Number(n) => *n,
                TargetPort::Name(_) => lw.port,
            };
            targets.push(AuthzTarget {
                workload: format!("{}/{} (LocalWorkload)", v.namespace, v.name),
                address: v.address,
                port,
                policies: policies_for(model, Some(&v), &v.namespace),
            });
        }
    }
    Ok(AuthzScope {
        service: format!("{namespace}/{name}"),
        port: sp.port,
        path_normalization: model.mesh.path_normalization,
        targets,
    })
}
