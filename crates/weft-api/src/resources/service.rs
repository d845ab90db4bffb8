//! `v1 Service` and `v1 Namespace`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::meta::IntOrString;
use super::Spanned;

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceSpec {
    /// Workloads (WorkloadEntries) whose labels include all of these back the Service.
    #[serde(default)]
    pub selector: BTreeMap<String, String>,
    #[serde(default)]
    pub ports: Vec<ServicePort>,
    /// The Service's virtual IP. When absent Weft assigns one from MeshConfig's `serviceCIDR`;
    /// `None` makes a headless Service (no VIP; reachable by name only).
    #[serde(default, rename = "clusterIP")]
    pub cluster_ip: Option<Spanned<String>>,
    #[serde(default, rename = "clusterIPs")]
    pub cluster_ips: Option<Vec<String>>,
    /// Only `ClusterIP` is meaningful inside a mesh; other types are accepted and treated alike.
    #[serde(default, rename = "type")]
    pub service_type: Option<Spanned<String>>,
    #[serde(default)]
    pub session_affinity: Option<Spanned<String>>,
    // Address-family settings of the API server: informational only.
    #[serde(default)]
    pub ip_families: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    pub ip_family_policy: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    pub internal_traffic_policy: Option<Spanned<String>>,
    /// `PreferClose` (`PreferSameZone`) or `PreferSameNode`: callers prefer endpoints in
    /// their zone, or on their host, while any there is usable.
    #[serde(default)]
    pub traffic_distribution: Option<Spanned<String>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServicePort {
    #[serde(default)]
    pub name: Option<String>,
    pub port: Spanned<u32>,
    #[serde(default)]
    pub target_port: Option<IntOrString>,
    #[serde(default)]
    pub protocol: Option<Spanned<String>>,
    #[serde(default)]
    pub app_protocol: Option<Spanned<String>>,
    #[serde(default)]
    pub node_port: Option<u32>,
}

/// `v1 Namespace`: accepted so that manifests written for a cluster load unchanged.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamespaceSpec {
    #[serde(default)]
    pub finalizers: Option<serde::de::IgnoredAny>,
}
