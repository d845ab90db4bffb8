//! One proxy's view of the mesh: what [`crate::compile`] produces and the proxy serves from.
//!
//! It is plain data (serde both ways) so that it can be shown on the admin `/config` endpoint,
//! written as a snapshot, and later carried by the control plane's protocol. Everything a
//! request needs is resolved here, off the request path: route precedence is already sorted,
//! backend references are already resolved to endpoints, durations are milliseconds.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

pub mod authn;
pub mod authz;
pub mod authz_match;
pub mod resilience;

pub use resilience::{FaultView, OutlierView, PoolView, RateLimitView};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProxyView {
    /// A digest of the view's content: equal views have equal versions.
    pub version: String,
    pub mesh: MeshView,
    /// The workload this proxy runs beside, when it has one.
    pub workload: Option<WorkloadView>,
    /// Services this proxy can call, in name order.
    pub services: Vec<ServiceView>,
    /// Every (Service, port) a route or a Service port sends to, by [`BackendView::key`].
    pub backends: BTreeMap<String, BackendView>,
    /// Every workload address in the mesh, so traffic to a workload's own address (not a
    /// Service) can be recognised and sent to it directly.
    pub workloads: Vec<WorkloadView>,
    /// What the proxy's inbound side accepts (PeerAuthentication).
    #[serde(default)]
    pub inbound: InboundPolicy,
}

/// The mTLS modes of `PeerAuthentication`, resolved (UNSET is inherited away at compile).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum MtlsMode {
    /// Only mutual TLS from this mesh's trust domain.
    Strict,
    /// Mutual TLS or plaintext, decided per connection (the default).
    #[default]
    Permissive,
    /// Plaintext only: peers do not originate mTLS to it.
    Disable,
}

/// The inbound side's mTLS mode: one for the workload, with per-port overrides (ports are the
/// application's own, as in `portLevelMtls`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InboundPolicy {
    pub mode: MtlsMode,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ports: BTreeMap<u16, MtlsMode>,
    /// The AuthorizationPolicies that apply to this workload, by namespace and name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authz: Vec<authz::AuthzPolicyView>,
    /// The RequestAuthentications that apply to this workload, by namespace and name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jwt: Vec<authn::JwtPolicyView>,
    /// The HTTPLocalRateLimitPolicies on this workload's ports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rate_limits: Vec<RateLimitView>,
}

impl InboundPolicy {
    pub fn mode_for(&self, port: u16) -> MtlsMode {
        self.ports.get(&port).copied().unwrap_or(self.mode)
    }
}

/// What a proxy learns about itself from the control plane: mesh settings, its workload, and
/// its inbound policy. One per proxy (xDS type `weft.v1.ProxyConfig`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyConfigView {
    pub mesh: MeshView,
    pub workload: Option<WorkloadView>,
    pub inbound: InboundPolicy,
}

/// One Service as one client namespace sees it, with every backend its ports and routes send
/// to (xDS type `weft.v1.ServiceConfig`). A proxy holds one per Service it calls.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceBundle {
    pub service: ServiceView,
    pub backends: BTreeMap<String, BackendView>,
}

/// The workloads at one address (xDS type `weft.v1.WorkloadConfig`), for traffic sent to a
/// workload's own address instead of a Service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkloadsAt {
    pub address: IpAddr,
    pub workloads: Vec<WorkloadView>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshView {
    pub trust_domain: String,
    pub cluster_domain: String,
    pub outbound_port: u16,
    pub inbound_port: u16,
    pub admin_port: u16,
    pub detect_timeout_ms: u64,
    /// Whole-request timeout for HTTP when a route sets none; 0 means none.
    pub request_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    /// How long an idle pooled HTTP/1 connection to an application (or an endpoint without
    /// a proxy) is kept: shorter than the application's own keep-alive timeout.
    #[serde(default = "default_upstream_idle_timeout_ms")]
    pub upstream_idle_timeout_ms: u64,
    /// How inbound request paths are normalized before authorization (and forwarded so).
    #[serde(default)]
    pub path_normalization: PathNormalization,
    /// Distributed tracing, when MeshConfig turns it on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<TracingView>,
    /// MeshConfig `admin`: an ALLOW policy over the admin endpoint's protected routes, for
    /// callers proving a SPIFFE identity over mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<authz::AuthzPolicyView>,
    /// MeshConfig `retries`: the budget, the safe default, the body kept for replay.
    #[serde(default)]
    pub retries: RetriesView,
    /// The network of the proxy's own workload (set per proxy): endpoints on another network
    /// are reached through their tunnel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// The zone of the proxy's own workload (set per proxy), for `trafficDistribution`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

/// MeshConfig `retries`, checked, with Weft's defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetriesView {
    /// Share of a destination's recent requests its retries may add (0 to 1).
    pub retry_ratio: f64,
    /// Retries a destination may always spend per second.
    pub min_retries_per_second: u32,
    /// The window the ratio and the floor are counted over, in seconds (1 to 60).
    pub ttl_s: u32,
    /// Retries of failures that never reached the application, where a route sets none.
    pub default_attempts: u32,
    /// Bytes of a request body kept to send it again.
    pub max_body_bytes: u64,
}

impl Default for RetriesView {
    fn default() -> Self {
        Self {
            retry_ratio: 0.2,
            min_retries_per_second: 10,
            ttl_s: 10,
            default_attempts: 2,
            max_body_bytes: 64 * 1024,
        }
    }
}

fn default_upstream_idle_timeout_ms() -> u64 {
    4000
}

impl MeshView {
    pub fn upstream_idle_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.upstream_idle_timeout_ms.max(1))
    }
}

/// MeshConfig `tracing`, checked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TracingView {
    /// The OTLP/gRPC collector, as `http://host:port`.
    pub collector: String,
    /// 0 to 100.
    pub random_sampling_percentage: f64,
    /// `tracecontext`, `b3`, `b3multi`: read in this order, all written.
    pub propagators: Vec<String>,
}

/// Istio's `meshConfig.pathNormalization.normalization`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PathNormalization {
    /// Paths are evaluated and forwarded as received.
    None,
    /// RFC 3986 normalization: `.` and `..` segments resolved, percent-encoded unreserved
    /// characters decoded, `\` taken as `/`. The default.
    #[default]
    Base,
    /// BASE, then runs of `/` merged.
    MergeSlashes,
    /// `%2F` and `%5C` decoded first, then MERGE_SLASHES.
    DecodeAndMergeSlashes,
}

impl Default for MeshView {
    fn default() -> Self {
        Self {
            trust_domain: "cluster.local".into(),
            cluster_domain: "cluster.local".into(),
            outbound_port: 4140,
            inbound_port: 4143,
            admin_port: 4191,
            detect_timeout_ms: 300,
            request_timeout_ms: 0,
            connect_timeout_ms: 1000,
            upstream_idle_timeout_ms: default_upstream_idle_timeout_ms(),
            path_normalization: PathNormalization::default(),
            tracing: None,
            admin: None,
            retries: RetriesView::default(),
            network: None,
            zone: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadView {
    pub name: String,
    pub namespace: String,
    pub address: IpAddr,
    pub labels: BTreeMap<String, String>,
    pub service_account: String,
    /// False for workloads declared without a proxy (`weft.dev/proxy: none`): traffic to them
    /// goes straight to their port, not through a peer proxy.
    pub meshed: bool,
    /// The WorkloadEntry's `network`: on a mesh of hosts, the host it runs on. Proxies on
    /// another network reach it through its network's tunnel, not by its address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Its network's HBONE tunnel (`weft.dev/tunnel: IP:PORT`), where proxies on other
    /// networks send traffic for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<SocketAddr>,
    /// Its zone (`topology.kubernetes.io/zone`, or the zone of its `locality`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

impl WorkloadView {
    /// `namespace/name`: how the control plane names the workload's proxy (its xDS node).
    pub fn node(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceView {
    pub name: String,
    pub namespace: String,
    /// The virtual IP traffic to this Service is addressed to; `None` for headless Services.
    pub vip: Option<IpAddr>,
    pub ports: Vec<ServicePortView>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// HTTP/1.1 (`appProtocol: http`).
    Http1,
    /// HTTP/2 without TLS (`http2`, `kubernetes.io/h2c`).
    Http2,
    /// gRPC: HTTP/2 with trailers (`grpc`).
    Grpc,
    /// Opaque TCP: bytes are forwarded, never parsed (`tcp`, TLS ports).
    Tcp,
    /// Undeclared: detected from the client's first bytes.
    Detect,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePortView {
    pub port: u16,
    pub name: Option<String>,
    pub protocol: Protocol,
    /// Where traffic goes when no route is attached: this Service's own endpoints.
    pub default_backend: String,
    /// HTTPRoute rules attached to this port, as seen by this proxy's namespace.
    pub http: RoutingTable,
    /// GRPCRoute rules attached to this port.
    pub grpc: RoutingTable,
    /// The TCPRoute attached to this port, if any.
    pub tcp: Option<TcpRouteView>,
}

/// Rules in the order the Gateway API's precedence says to try their matches.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RoutingTable {
    /// Every match of every rule, sorted by precedence; the first that matches wins.
    pub matches: Vec<MatchEntry>,
    pub rules: Vec<RuleView>,
}

impl RoutingTable {
    /// True when at least one route is attached: then a request no rule matches gets a 404
    /// instead of going to the Service's own endpoints.
    pub fn is_attached(&self) -> bool {
        !self.rules.is_empty()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MatchEntry {
    /// Index into [`RoutingTable::rules`].
    pub rule: usize,
    #[serde(rename = "match")]
    pub matcher: RequestMatch,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestMatch {
    pub path: PathMatch,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<ValueMatch>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", rename = "queryParams")]
    pub query_params: Vec<ValueMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value")]
pub enum PathMatch {
    Exact(String),
    /// Element-wise prefix, stored without a trailing slash (except `/` itself).
    PathPrefix(String),
    RegularExpression(String),
}

impl Default for PathMatch {
    fn default() -> Self {
        PathMatch::PathPrefix("/".into())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValueMatch {
    /// Header names are lower-cased; query parameter names are kept as written.
    pub name: String,
    #[serde(flatten)]
    pub value: StringMatch,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value")]
pub enum StringMatch {
    Exact(String),
    RegularExpression(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleView {
    pub route: RouteRef,
    pub filters: Vec<FilterView>,
    pub backends: Vec<WeightedBackend>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_request_timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryView>,
}

/// Which route and rule produced a decision: shown in metrics, logs and `weft-error`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteRef {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub rule: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_name: Option<String>,
}

impl RouteRef {
    /// `namespace/name`, the value of the `route` metric label.
    pub fn label(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WeightedBackend {
    /// Key into [`ProxyView::backends`]; `None` when the reference did not resolve (requests
    /// that pick it get a 500, as the Gateway API specifies).
    pub backend: Option<String>,
    pub weight: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<FilterView>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum FilterView {
    RequestHeaderModifier(HeaderModifierView),
    ResponseHeaderModifier(HeaderModifierView),
    RequestRedirect(RedirectView),
    #[serde(rename = "URLRewrite")]
    UrlRewrite(RewriteView),
    RequestMirror(MirrorView),
    /// An `ExtensionRef` to a `weft.dev` `FaultInjection`.
    Fault(FaultView),
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HeaderModifierView {
    /// (lower-case name, value) pairs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value")]
pub enum PathModifierView {
    ReplaceFullPath(String),
    ReplacePrefixMatch(String),
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedirectView {
    pub scheme: Option<String>,
    pub hostname: Option<String>,
    pub path: Option<PathModifierView>,
    pub port: Option<u16>,
    pub status_code: u16,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RewriteView {
    pub hostname: Option<String>,
    pub path: Option<PathModifierView>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MirrorView {
    /// `None` when the mirror backend did not resolve: nothing is mirrored.
    pub backend: Option<String>,
    /// Share of requests mirrored, in millionths (1_000_000 = all).
    pub per_million: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryView {
    /// Statuses that are retried; empty means the Gateway API default (none but connection
    /// failures).
    pub codes: Vec<u16>,
    /// gRPC statuses that are retried (a GRPCRoute's), by number; for gRPC answers they
    /// replace `codes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grpc_codes: Vec<u32>,
    /// Retries after the first attempt.
    pub attempts: u32,
    pub backoff_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TcpRouteView {
    pub route: RouteRef,
    pub backends: Vec<WeightedBackend>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendView {
    /// `namespace/service:port`.
    pub key: String,
    pub service: String,
    pub namespace: String,
    pub port: u16,
    pub protocol: Protocol,
    pub load_balancer: LoadBalancer,
    pub endpoints: Vec<EndpointView>,
    /// DestinationRule `outlierDetection`, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier: Option<OutlierView>,
    /// DestinationRule `connectionPool`, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<PoolView>,
    /// The Service's `trafficDistribution`, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_distribution: Option<TrafficDistribution>,
}

/// Which endpoints a caller prefers while any of them is usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrafficDistribution {
    /// Those in the caller's zone (`PreferClose` too); a caller without a zone prefers those
    /// on its host.
    PreferSameZone,
    /// Those on the caller's host (network).
    PreferSameNode,
}

impl BackendView {
    pub fn key_for(namespace: &str, service: &str, port: u16) -> String {
        format!("{namespace}/{service}:{port}")
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointView {
    /// The workload's address and the Service's target port on it.
    pub addr: SocketAddr,
    pub workload: String,
    pub namespace: String,
    pub service_account: String,
    pub meshed: bool,
    pub weight: u32,
    /// Whether a peer proxy should originate mutual TLS to it: meshed and not `DISABLE` on
    /// this port.
    #[serde(default)]
    pub mtls: bool,
    /// The workload's network, tunnel and zone (see [`WorkloadView`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<SocketAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum LoadBalancer {
    /// Power of two choices over peak-EWMA latency (the default).
    #[default]
    PeakEwma,
    RoundRobin,
    LeastRequest,
    Random,
    /// Consistent hashing on a request header.
    HashHeader {
        name: String,
    },
    /// Consistent hashing on a cookie; when the request has none and `ttl_s` is set, the proxy
    /// sets one.
    HashCookie {
        name: String,
        path: Option<String>,
        ttl_s: Option<u64>,
    },
    HashSourceIp,
    HashQueryParameter {
        name: String,
    },
}
