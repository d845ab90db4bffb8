//! The validated model: every resource checked, translated into the terms the proxy thinks in,
//! with references still by name. [`crate::validate::build`] makes it; [`crate::compile`] turns
//! it into per-proxy views.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::view::{
    FilterView, LoadBalancer, MeshView, MtlsMode, Protocol, RequestMatch, WorkloadView,
};

/// Load balancers of one Service: per port (`Some`) or for every port (`None`).
pub type PortPolicies = Vec<(Option<u16>, TrafficPolicyModel)>;

/// A DestinationRule's traffic policy for a Service, or one of its ports: each part set here
/// replaces the Service-wide one for that port (as Istio merges `portLevelSettings`).
#[derive(Clone, Debug, Default)]
pub struct TrafficPolicyModel {
    pub load_balancer: Option<LoadBalancer>,
    pub outlier: Option<crate::view::OutlierView>,
    pub pool: Option<crate::view::PoolView>,
}

#[derive(Clone, Debug)]
pub struct Model {
    pub mesh: MeshView,
    /// Services by `(namespace, name)`.
    pub services: BTreeMap<(String, String), ServiceModel>,
    pub workloads: Vec<WorkloadModel>,
    pub routes: Vec<RouteModel>,
    /// DestinationRule traffic policies by `(namespace, service)` and port (`None`: every
    /// port).
    pub traffic_policies: BTreeMap<(String, String), PortPolicies>,
    /// Counts of resources by kind, for summaries.
    pub counts: BTreeMap<&'static str, usize>,
    /// PeerAuthentication policies, in no particular order (resolution is by scope).
    pub peer_authentications: Vec<PeerAuthModel>,
    /// AuthorizationPolicies, checked, in no particular order (compile sorts them).
    pub authz_policies: Vec<AuthzPolicyModel>,
    /// RequestAuthentications, checked.
    pub jwt_policies: Vec<JwtPolicyModel>,
    /// Key sets fetched from `jwksUri`s (by the control plane), by URI: the JSON, or why
    /// there is none. Filled in after validation; compile puts them into the views.
    pub fetched_jwks: BTreeMap<String, Result<String, String>>,
    /// The namespace whose selector-less PeerAuthentication applies mesh-wide
    /// (Istio's `rootNamespace`; `istio-system` unless MeshConfig says otherwise).
    pub root_namespace: String,
    /// Workloads (indices into `workloads`) by (namespace, label, value): selecting a
    /// Service's endpoints looks at the few workloads with its first label, not all of them.
    pub workloads_by_label: BTreeMap<(String, String, String), Vec<usize>>,
    /// What `weft up` runs on this host (`LocalWorkload`); proxies never see these.
    pub local_workloads: Vec<LocalWorkloadModel>,
    /// HTTPLocalRateLimitPolicies, checked: by the Service `(namespace, name)` they target.
    pub rate_limits: BTreeMap<(String, String), crate::view::RateLimitView>,
    /// FaultInjections, checked, by `(namespace, name)`.
    pub faults: BTreeMap<(String, String), crate::view::FaultView>,
}

/// One `LocalWorkload`, checked.
#[derive(Clone, Debug)]
pub struct LocalWorkloadModel {
    pub name: String,
    pub namespace: String,
    pub service: String,
    pub service_account: Option<String>,
    pub port: u16,
    pub app_protocol: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub replicas: u32,
    pub command: Vec<String>,
    pub env: BTreeMap<String, String>,
}

/// Which workloads a policy (AuthorizationPolicy, RequestAuthentication) applies to, in its
/// namespace — or in every namespace when that is the root namespace.
#[derive(Clone, Debug, PartialEq)]
pub enum PolicyScope {
    /// No `selector` or `targetRefs`: every workload.
    Namespace,
    /// `selector.matchLabels`.
    Selector(BTreeMap<String, String>),
    /// `targetRefs` to Services (in the policy's namespace), by name: their workloads, on
    /// the ports those Services send to.
    Services(Vec<String>),
}

/// One AuthorizationPolicy, checked; its rules already in the form proxies evaluate.
#[derive(Clone, Debug)]
pub struct AuthzPolicyModel {
    pub scope: PolicyScope,
    /// `ports` is left `None`: compile fills it in per workload for Service scopes.
    pub view: crate::view::authz::AuthzPolicyView,
}

/// One RequestAuthentication, checked; its rules' inline key sets parsed once already.
#[derive(Clone, Debug)]
pub struct JwtPolicyModel {
    pub scope: PolicyScope,
    /// `ports` and fetched key sets are filled in per workload at compile.
    pub view: crate::view::authn::JwtPolicyView,
    /// How long fetching each rule's key set may take (its `timeout`, default 5 s).
    pub fetch_timeouts: Vec<std::time::Duration>,
}

/// One PeerAuthentication; `None` modes are UNSET (inherit from the wider scope).
#[derive(Clone, Debug)]
pub struct PeerAuthModel {
    pub namespace: String,
    pub name: String,
    pub selector: Option<BTreeMap<String, String>>,
    pub mode: Option<MtlsMode>,
    pub ports: BTreeMap<u16, MtlsMode>,
}

#[derive(Clone, Debug)]
pub struct ServiceModel {
    pub name: String,
    pub namespace: String,
    pub vip: Option<IpAddr>,
    pub selector: BTreeMap<String, String>,
    pub ports: Vec<ServicePortModel>,
    pub traffic_distribution: Option<crate::view::TrafficDistribution>,
}

impl ServiceModel {
    pub fn port(&self, port: u16) -> Option<&ServicePortModel> {
        self.ports.iter().find(|p| p.port == port)
    }
}

#[derive(Clone, Debug)]
pub struct ServicePortModel {
    pub port: u16,
    pub name: Option<String>,
    pub target: TargetPort,
    pub protocol: Protocol,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetPort {
    Number(u16),
    /// Resolved per workload through its `ports` map.
    Name(String),
}

#[derive(Clone, Debug)]
pub struct WorkloadModel {
    pub view: WorkloadView,
    /// Named ports, for named `targetPort`s.
    pub ports: BTreeMap<String, u16>,
    pub weight: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RouteKind {
    Http,
    Grpc,
    Tcp,
}

impl RouteKind {
    pub fn name(self) -> &'static str {
        match self {
            RouteKind::Http => "HTTPRoute",
            RouteKind::Grpc => "GRPCRoute",
            RouteKind::Tcp => "TCPRoute",
        }
    }
}

/// A route, with its matches parsed and its filters translated; backends still by name.
#[derive(Clone, Debug)]
pub struct RouteModel {
    pub kind: RouteKind,
    pub namespace: String,
    pub name: String,
    /// For precedence ties: older first (RFC 3339 strings sort by time).
    pub creation_timestamp: String,
    pub parents: Vec<ParentModel>,
    pub rules: Vec<RuleModel>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParentModel {
    pub namespace: String,
    pub service: String,
    pub port: Option<u16>,
}

#[derive(Clone, Debug)]
pub struct RuleModel {
    pub name: Option<String>,
    /// With each match, its precedence key (see [`MatchRank`]).
    pub matches: Vec<(RequestMatch, MatchRank)>,
    pub filters: Vec<FilterModel>,
    pub backends: Vec<BackendRefModel>,
    pub request_timeout_ms: Option<u64>,
    pub backend_request_timeout_ms: Option<u64>,
    pub retry: Option<crate::view::RetryView>,
}

/// A filter; mirrors still name their backend.
#[derive(Clone, Debug)]
pub enum FilterModel {
    Plain(FilterView),
    Mirror {
        backend: BackendName,
        per_million: u32,
    },
}

#[derive(Clone, Debug)]
pub struct BackendRefModel {
    pub backend: BackendName,
    pub weight: u32,
    pub filters: Vec<FilterModel>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendName {
    pub namespace: String,
    pub service: String,
    pub port: u16,
    /// Whether the Service and port exist (references to missing ones are kept so requests
    /// that pick them fail as the Gateway API says, with a 500).
    pub resolved: bool,
}

/// Sort key of one match: greater sorts first. HTTPRoute: exact path, then regex, then the
/// longest prefix, then method, header count, query count. GRPCRoute: service length, method
/// length, header count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct MatchRank {
    pub primary: u8,
    pub length: usize,
    pub secondary: usize,
    pub headers: usize,
    pub query: usize,
}

impl Default for Model {
    fn default() -> Self {
        Self {
            mesh: MeshView::default(),
            services: BTreeMap::new(),
            workloads: Vec::new(),
            routes: Vec::new(),
            traffic_policies: BTreeMap::new(),
            counts: BTreeMap::new(),
            peer_authentications: Vec::new(),
            authz_policies: Vec::new(),
            jwt_policies: Vec::new(),
            fetched_jwks: BTreeMap::new(),
            root_namespace: DEFAULT_ROOT_NAMESPACE.to_string(),
            workloads_by_label: BTreeMap::new(),
            local_workloads: Vec::new(),
            rate_limits: BTreeMap::new(),
            faults: BTreeMap::new(),
        }
    }
}

impl Model {
    /// Rebuilds [`Model::workloads_by_label`]; call after changing `workloads`.
    pub fn index_workloads(&mut self) {
        self.workloads_by_label.clear();
        for (i, w) in self.workloads.iter().enumerate() {
            for (k, v) in &w.view.labels {
                self.workloads_by_label
                    .entry((w.view.namespace.clone(), k.clone(), v.clone()))
                    .or_default()
                    .push(i);
            }
        }
    }

    /// The workloads in `namespace` whose labels include every pair of `selector` (none for
    /// an empty selector, as for a Service).
    pub fn selected<'m>(
        &'m self,
        namespace: &str,
        selector: &'m BTreeMap<String, String>,
    ) -> impl Iterator<Item = &'m WorkloadModel> + 'm {
        let candidates = selector
            .iter()
            .next()
            .and_then(|(k, v)| {
                self.workloads_by_label
                    .get(&(namespace.to_string(), k.clone(), v.clone()))
            })
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        candidates
            .iter()
            .filter_map(|&i| self.workloads.get(i))
            .filter(move |w| selects(selector, &w.view.labels))
    }
}

/// Whether `selector` selects a workload labelled `labels` (every key with its value; an empty
/// selector selects nothing, as a Service without one selects no workloads).
pub fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Istio's default: the same YAML files mean the same thing in both meshes.
pub const DEFAULT_ROOT_NAMESPACE: &str = "istio-system";
