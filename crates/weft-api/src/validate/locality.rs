//! Where workloads are: the network (on a mesh of hosts, the host) a WorkloadEntry is on and
//! its tunnel, its zone, and a Service's `trafficDistribution`, which asks callers to prefer
//! endpoints close to them.

use super::{is_dns_label, HintExt, Reporter};
use crate::resources::istio::WorkloadEntrySpec;
use crate::resources::service::ServiceSpec;
use crate::resources::Object;
use crate::view::TrafficDistribution;

/// The WorkloadEntry annotation naming its network's HBONE tunnel (`IP:PORT`).
pub const TUNNEL_ANNOTATION: &str = "weft.dev/tunnel";

/// The label that names a workload's zone, as Kubernetes labels nodes.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// A WorkloadEntry's `network` (a DNS label: on a mesh of hosts, the host's name) and its
/// tunnel annotation, which needs a network: the tunnel is how other networks reach it.
pub(super) fn network_of(
    we: &Object<WorkloadEntrySpec>,
    rep: &mut Reporter<'_>,
) -> (Option<String>, Option<std::net::SocketAddr>) {
    let network = we.spec.network.clone().filter(|n| {
        let ok = is_dns_label(n);
        if !ok {
            rep.error(
                "spec.network",
                format!("network `{n}` is not a DNS label"),
            )
            .with_hint("name the network after the host it stands for (lower-case letters, digits, '-')");
        }
        ok
    });
    let tunnel = match we.meta.annotations.get(TUNNEL_ANNOTATION) {
        None => None,
        Some(text) => {
            match text.parse::<std::net::SocketAddr>() {
                Ok(addr) if addr.port() != 0 && network.is_some() => Some(addr),
                Ok(_) if network.is_none() => {
                    rep.error(
                    "metadata.annotations",
                    format!("`{TUNNEL_ANNOTATION}` needs `spec.network`"),
                )
                .with_hint("the tunnel is how proxies on other networks reach this one; name its network");
                    None
                }
                _ => {
                    rep.error(
                        "metadata.annotations",
                        format!("`{TUNNEL_ANNOTATION}: {text}` is not an IP:PORT"),
                    )
                    .with_hint("the peer host's tunnel address, e.g. 192.0.2.10:4108");
                    None
                }
            }
        }
    };
    (network, tunnel)
}

/// A workload's zone: its `topology.kubernetes.io/zone` label, else the zone of its Istio
/// `locality` (`region/zone/subzone`).
pub(super) fn zone_of(we: &Object<WorkloadEntrySpec>, rep: &mut Reporter<'_>) -> Option<String> {
    if let Some(zone) = we.spec.labels.get(ZONE_LABEL) {
        return Some(zone.clone());
    }
    let locality = we.spec.locality.as_deref()?;
    let parts: Vec<&str> = locality.split('/').collect();
    if parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
        rep.error(
            "spec.locality",
            format!("locality `{locality}` is not `region/zone/subzone`"),
        )
        .with_hint("e.g. `eu-west/eu-west-1a`; the zone is what `trafficDistribution` compares");
        return None;
    }
    parts.get(1).map(|z| z.to_string())
}

/// A Service's `trafficDistribution`. `PreferClose` is `PreferSameZone`, as Kubernetes 1.34
/// defines it.
pub(super) fn traffic_distribution(
    spec: &ServiceSpec,
    rep: &mut Reporter<'_>,
) -> Option<TrafficDistribution> {
    let value = spec.traffic_distribution.as_ref()?;
    match value.value.as_str() {
        "PreferClose" | "PreferSameZone" => Some(TrafficDistribution::PreferSameZone),
        "PreferSameNode" => Some(TrafficDistribution::PreferSameNode),
        other => {
            rep.error_span(
                value,
                "spec.trafficDistribution",
                format!("trafficDistribution `{other}` is not one Weft knows"),
            )
            .with_hint("PreferClose (the same as PreferSameZone) or PreferSameNode; leave it out to spread over every endpoint");
            None
        }
    }
}
