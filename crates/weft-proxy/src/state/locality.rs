//! `trafficDistribution`: a backend's endpoints that are close to this proxy (in its zone, or
//! on its host), which the balancer prefers while any of them is usable. Chosen once per
//! configuration; a request pays one branch when the Service sets nothing.

use std::sync::Arc;

use weft_api::view::{BackendView, EndpointView, MeshView, TrafficDistribution};

use super::endpoint::Endpoint;
use crate::balance::Policy;

/// The close endpoints and a balancer of their own (its round-robin cursor or hash ring
/// covers them alone).
pub struct Close {
    pub endpoints: Vec<Arc<Endpoint>>,
    pub policy: Policy,
}

impl Close {
    /// The close ones among `endpoints` (built from `view.endpoints`, in order); `None` when
    /// the Service prefers nothing, or when none or all of them are close (nothing to prefer).
    pub fn select(
        view: &BackendView,
        endpoints: &[Arc<Endpoint>],
        mesh: &MeshView,
    ) -> Option<Close> {
        let preference = view.traffic_distribution?;
        let close: Vec<Arc<Endpoint>> = view
            .endpoints
            .iter()
            .zip(endpoints)
            .filter(|(v, _)| is_close(preference, v, mesh))
            .map(|(_, e)| e.clone())
            .collect();
        if close.is_empty() || close.len() == endpoints.len() {
            return None;
        }
        Some(Close {
            policy: Policy::new(&view.load_balancer, &close),
            endpoints: close,
        })
    }
}

/// Whether endpoint `e` is close to this proxy. Workloads declared without a network are on
/// every proxy's (a single host is one network).
fn is_close(preference: TrafficDistribution, e: &EndpointView, mesh: &MeshView) -> bool {
    let same_host = e.network == mesh.network;
    match (preference, &mesh.zone) {
        (TrafficDistribution::PreferSameNode, _) => same_host,
        (TrafficDistribution::PreferSameZone, Some(zone)) => e.zone.as_ref() == Some(zone),
        // A proxy that knows no zone prefers its host: nothing is closer.
        (TrafficDistribution::PreferSameZone, None) => same_host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(network: Option<&str>, zone: Option<&str>) -> EndpointView {
        EndpointView {
            addr: "10.213.1.2:80".parse().expect("addr"),
            workload: "w".into(),
            namespace: "ns".into(),
            service_account: "sa".into(),
            meshed: true,
            weight: 1,
            mtls: true,
            network: network.map(str::to_string),
            tunnel: None,
            zone: zone.map(str::to_string),
        }
    }

    #[test]
    fn close_means_same_zone_else_same_host() {
        let mesh = MeshView {
            network: Some("h1".into()),
            zone: Some("z1".into()),
            ..MeshView::default()
        };
        let zone = TrafficDistribution::PreferSameZone;
        let node = TrafficDistribution::PreferSameNode;
        let other_host_same_zone = endpoint(Some("h2"), Some("z1"));
        let same_host_other_zone = endpoint(Some("h1"), Some("z2"));
        assert!(is_close(zone, &other_host_same_zone, &mesh));
        assert!(!is_close(zone, &same_host_other_zone, &mesh));
        assert!(is_close(node, &same_host_other_zone, &mesh));
        assert!(!is_close(node, &other_host_same_zone, &mesh));
        let zoneless = MeshView {
            zone: None,
            ..mesh.clone()
        };
        assert!(is_close(zone, &same_host_other_zone, &zoneless));
        assert!(!is_close(zone, &other_host_same_zone, &zoneless));
        // No networks anywhere: one host, everything is close.
        assert!(is_close(node, &endpoint(None, None), &MeshView::default()));
    }
}
