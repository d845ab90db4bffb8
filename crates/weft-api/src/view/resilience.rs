//! A destination's resilience settings as the proxy applies them: a DestinationRule's
//! `outlierDetection` and `connectionPool`, checked, with Istio's defaults filled in.

use serde::{Deserialize, Serialize};

/// `trafficPolicy.outlierDetection`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutlierView {
    /// Consecutive 5xx answers (500 included) or connection failures that eject an
    /// endpoint; 0 turns this off. Istio's default: 5.
    pub consecutive_5xx: u32,
    /// Consecutive 502, 503, 504 or connection failures that eject an endpoint; 0 (the
    /// default) turns this off.
    pub consecutive_gateway: u32,
    /// How often ejections are reconsidered: an ejected endpoint's count of ejections falls
    /// by one for each interval it then stays healthy. Default 10 s.
    pub interval_ms: u64,
    /// An endpoint is ejected for this times the number of times it was ejected. Default 30 s.
    pub base_ejection_ms: u64,
    /// No more endpoints are ejected once this share is (one always can be). Default 10.
    pub max_ejection_percent: u32,
    /// Below this share of endpoints healthy, ejections are ignored and every endpoint gets
    /// traffic. Default 0.
    pub min_health_percent: u32,
}

impl Default for OutlierView {
    fn default() -> Self {
        Self {
            consecutive_5xx: 5,
            consecutive_gateway: 0,
            interval_ms: 10_000,
            base_ejection_ms: 30_000,
            max_ejection_percent: 10,
            min_health_percent: 0,
        }
    }
}

/// `trafficPolicy.connectionPool`; zero is no limit (as Istio, which leaves Envoy's circuit
/// breakers at their maximum).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolView {
    /// `tcp.maxConnections`: connections open to each endpoint at once (HTTP/1 and TCP; the
    /// mesh's HTTP/2 uses one).
    #[serde(default)]
    pub max_connections: u32,
    /// `tcp.connectTimeout`, replacing the mesh's for this destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout_ms: Option<u64>,
    /// `http.http1MaxPendingRequests`: requests that may wait for a connection when
    /// `maxConnections` are busy.
    #[serde(default)]
    pub max_pending: u32,
    /// `http.http2MaxRequests`: requests in flight to the destination at once.
    #[serde(default)]
    pub max_requests: u32,
    /// `http.maxRequestsPerConnection`: a connection is closed after this many.
    #[serde(default)]
    pub max_requests_per_connection: u32,
    /// `http.maxRetries`: retries in flight to the destination at once.
    #[serde(default)]
    pub max_retries: u32,
    /// `http.idleTimeout`, replacing the mesh's `upstreamIdleTimeout` for this destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_ms: Option<u64>,
}

/// An `HTTPLocalRateLimitPolicy` as one workload's proxy applies it: to the ports its target
/// Service sends to on that workload. Rates are requests per second, each a token bucket
/// holding one second's worth.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitView {
    /// `namespace/name` of the policy.
    pub policy: String,
    /// The workload's ports it applies to.
    pub ports: Vec<u16>,
    /// Every request, whoever sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u32>,
    /// Each client identity (SPIFFE id; plaintext callers share one bucket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<u32>,
    /// Named clients' own rates, in place of `identity`'s.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<RateLimitOverride>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitOverride {
    pub requests_per_second: u32,
    /// SPIFFE ids (`spiffe://<trust domain>/ns/<namespace>/sa/<name>`).
    pub principals: Vec<String>,
}

/// A `FaultInjection`, attached to a route rule: delays and aborts for a share of requests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultView {
    /// `namespace/name` of the FaultInjection.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<FaultDelayView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<FaultAbortView>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultDelayView {
    pub fixed_delay_ms: u64,
    /// Share of requests delayed, 0 to 100.
    pub percentage: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultAbortView {
    /// The answer: an HTTP status, or a gRPC status (by number) for gRPC requests.
    pub http_status: Option<u16>,
    pub grpc_status: Option<u32>,
    /// Share of requests aborted, 0 to 100.
    pub percentage: f64,
}
