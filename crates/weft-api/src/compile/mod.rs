//! Compiling the validated model into what proxies hold.
//!
//! Two shapes of the same result: a whole [`ProxyView`] (a proxy reading files compiles every
//! Service at once), and the pieces the control plane sends one by one as xDS resources
//! ([`proxy_config`], [`service`], [`workloads_at`]). Both go through the same functions, so a
//! proxy sees the same routes whichever way it is configured.

pub mod authn;
pub mod authz;
mod mtls;
mod service;

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::model::Model;
use crate::view::{ProxyConfigView, ProxyView, ServiceBundle, WorkloadView, WorkloadsAt};

pub use mtls::{inbound_policy, mode_for, workload_mode};

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

/// The proxy's own part: mesh settings, its workload, its inbound policy.
pub fn proxy_config(model: &Model, who: &ProxyIdentity) -> Result<ProxyConfigView, CompileError> {
    let workload = match &who.workload {
        None => None,
        Some(name) => Some(find_workload(model, &who.namespace, name)?.clone()),
    };
    let mut inbound = workload
        .as_ref()
        .map(|w| inbound_policy(model, w))
        .unwrap_or_default();
    inbound.authz = authz::policies_for(model, workload.as_ref(), &who.namespace);
    inbound.jwt = authn::policies_for(model, workload.as_ref(), &who.namespace);
    inbound.rate_limits = workload
        .as_ref()
        .map(|w| authz::rate_limits_for(model, w))
        .unwrap_or_default();
    let mut mesh = model.mesh.clone();
    mesh.network = workload.as_ref().and_then(|w| w.network.clone());
    mesh.zone = workload.as_ref().and_then(|w| w.zone.clone());
    Ok(ProxyConfigView {
        mesh,
        workload,
        inbound,
    })
}

/// Finds a WorkloadEntry by namespace and name.
pub fn find_workload<'m>(
    model: &'m Model,
    namespace: &str,
    name: &str,
) -> Result<&'m WorkloadView, CompileError> {
    model
        .workloads
        .iter()
        .map(|w| &w.view)
        .find(|w| w.name == name && w.namespace == namespace)
        .ok_or_else(|| CompileError::UnknownWorkload {
            name: name.to_string(),
            namespace: namespace.to_string(),
            known: model
                .workloads
                .iter()
                .map(|w| format!("{}/{}", w.view.namespace, w.view.name))
                .collect(),
        })
}

/// One Service for clients in `client_ns`, or `None` when it does not exist.
pub fn service(
    model: &Model,
    namespace: &str,
    name: &str,
    client_ns: &str,
) -> Option<ServiceBundle> {
    model
        .services
        .get(&(namespace.to_string(), name.to_string()))
        .map(|svc| service::bundle(model, svc, client_ns))
}

/// The workloads at `address` (usually one).
pub fn workloads_at(model: &Model, address: IpAddr) -> WorkloadsAt {
    WorkloadsAt {
        address,
        workloads: model
            .workloads
            .iter()
            .filter(|w| w.view.address == address)
            .map(|w| w.view.clone())
            .collect(),
    }
}

/// The whole view of one proxy, every Service included.
pub fn compile(model: &Model, who: &ProxyIdentity) -> Result<ProxyView, CompileError> {
    let own = proxy_config(model, who)?;
    let mut view = ProxyView {
        version: String::new(),
        mesh: own.mesh,
        workload: own.workload,
        services: Vec::new(),
        backends: BTreeMap::new(),
        workloads: model.workloads.iter().map(|w| w.view.clone()).collect(),
        inbound: own.inbound,
    };
    for svc in model.services.values() {
        let bundle = service::bundle(model, svc, &who.namespace);
        view.services.push(bundle.service);
        view.backends.extend(bundle.backends);
    }
    view.version = digest(&view);
    Ok(view)
}

/// Assembles a whole view from pieces (what a proxy fed by the control plane holds).
pub fn assemble(
    own: &ProxyConfigView,
    services: impl IntoIterator<Item = ServiceBundle>,
    workloads: impl IntoIterator<Item = WorkloadView>,
) -> ProxyView {
    let mut view = ProxyView {
        version: String::new(),
        mesh: own.mesh.clone(),
        workload: own.workload.clone(),
        services: Vec::new(),
        backends: BTreeMap::new(),
        workloads: workloads.into_iter().collect(),
        inbound: own.inbound.clone(),
    };
    for bundle in services {
        view.services.push(bundle.service);
        view.backends.extend(bundle.backends);
    }
    view.services
        .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    view.version = digest(&view);
    view
}

/// FNV-1a over a value's JSON: a stable content digest, not a security boundary.
pub fn digest<T: serde::Serialize>(value: &T) -> String {
    digest_bytes(&serde_json::to_vec(value).unwrap_or_default())
}

/// FNV-1a over bytes, as 16 hex digits.
pub fn digest_bytes(bytes: &[u8]) -> String {
    format!("{:016x}", fnv1a(bytes))
}

/// FNV-1a, 64 bits: a content fingerprint, not a security boundary.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
