//! Endpoints for traffic sent to a workload's own address (a pod IP and any port), not to a
//! Service.
//!
//! Each workload in a snapshot keeps the endpoints it has been called on, by port, read
//! without locks (copy-on-write, like the inbound side's per-port state). The snapshot holds
//! them strongly, so a keep-alive client's pooled upstream connection lives as long as the
//! configuration does, instead of dying with each request and being dialled again. A new
//! snapshot starts with the endpoints the registry still has for its workloads, so a config
//! change does not drop those connections either. The registry's mutex is taken only the
//! first time a port is called in a snapshot.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use arc_swap::ArcSwap;
use weft_api::view::WorkloadView;

use super::endpoint::{Endpoint, Registry};

/// Ports remembered per workload; calls to more go through the registry each time.
const MAX_PORTS: usize = 64;

pub struct DirectWorkload {
    pub view: WorkloadView,
    endpoints: ArcSwap<Vec<(u16, Arc<Endpoint>)>>,
}

/// Where the endpoint's peer proxy listens and who it must prove to be.
#[derive(Clone, Copy)]
pub struct PeerSettings<'a> {
    pub inbound_port: u16,
    pub trust_domain: &'a str,
    /// How long an idle pooled HTTP/1 connection to a workload without a proxy is kept.
    pub idle_timeout: std::time::Duration,
    /// The network (host) this proxy is on: peers on others are reached through a tunnel.
    pub network: Option<&'a str>,
}

impl<'a> PeerSettings<'a> {
    pub fn of(mesh: &'a weft_api::view::MeshView) -> Self {
        Self {
            inbound_port: mesh.inbound_port,
            trust_domain: &mesh.trust_domain,
            idle_timeout: mesh.upstream_idle_timeout(),
            network: mesh.network.as_deref(),
        }
    }
}

impl DirectWorkload {
    pub fn new(view: WorkloadView, seed: Vec<(u16, Arc<Endpoint>)>) -> Self {
        Self {
            view,
            endpoints: ArcSwap::from_pointee(seed),
        }
    }

    /// The endpoint for `port` of this workload: remembered, or made (or found alive) by the
    /// registry and remembered.
    pub fn endpoint(
        &self,
        port: u16,
        registry: &Registry,
        peer: PeerSettings<'_>,
    ) -> Arc<Endpoint> {
        if let Some((_, e)) = self.endpoints.load().iter().find(|(p, _)| *p == port) {
            return e.clone();
        }
        let addr = SocketAddr::new(self.view.address, port);
        let fresh = registry.direct(addr, &self.view, &peer);
        if self.endpoints.load().len() < MAX_PORTS {
            self.endpoints.rcu(|list| {
                let mut next = Vec::clone(list);
                if !next.iter().any(|(p, _)| *p == port) {
                    next.push((port, fresh.clone()));
                }
                next
            });
        }
        fresh
    }

    #[cfg(test)]
    pub fn remembered(&self) -> usize {
        self.endpoints.load().len()
    }
}

/// Builds a snapshot's workloads, each seeded with the endpoints the registry still holds
/// for it (same address, same meshed-ness and identity).
pub fn build(
    views: &[WorkloadView],
    registry: &Registry,
    peer: PeerSettings<'_>,
) -> Vec<(IpAddr, Arc<DirectWorkload>)> {
    let mut alive = registry.alive_direct(views, &peer);
    views
        .iter()
        .map(|w| {
            let seed = alive.remove(&w.address).unwrap_or_default();
            (w.address, Arc::new(DirectWorkload::new(w.clone(), seed)))
        })
        .collect()
}
