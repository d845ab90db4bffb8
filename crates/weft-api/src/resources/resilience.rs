//! Resilience resources that are not Istio's or the Gateway API's: Linkerd's
//! `policy.linkerd.io/v1alpha1 HTTPLocalRateLimitPolicy` (its `targetRef` names a Service,
//! since Weft has no Server kind) and `weft.dev/v1alpha1 FaultInjection` (Istio's
//! `HTTPFaultInjection` fields, attached to a route rule by an `ExtensionRef` filter).
//!
//! Counts and percentages are read as numbers of any sign so that a bad one gets Weft's
//! message with its field, not the parser's.

use serde::Deserialize;

use super::Spanned;

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitPolicySpec {
    pub target_ref: TargetRef,
    #[serde(default)]
    pub total: Option<Limit>,
    #[serde(default)]
    pub identity: Option<Limit>,
    #[serde(default)]
    pub overrides: Vec<Override>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetRef {
    #[serde(default)]
    pub group: Option<String>,
    pub kind: String,
    pub name: Spanned<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Limit {
    pub requests_per_second: i64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Override {
    pub requests_per_second: i64,
    pub client_refs: Vec<ClientRef>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientRef {
    #[serde(default)]
    pub group: Option<String>,
    pub kind: String,
    #[serde(default)]
    pub namespace: Option<String>,
    pub name: String,
}

/// Istio's `HTTPFaultInjection`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultInjectionSpec {
    #[serde(default)]
    pub delay: Option<FaultDelay>,
    #[serde(default)]
    pub abort: Option<FaultAbort>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultDelay {
    #[serde(default)]
    pub fixed_delay: Option<String>,
    #[serde(default)]
    pub percentage: Option<Percent>,
    /// Deprecated by Istio for `percentage`.
    #[serde(default)]
    pub percent: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    pub exponential_delay: Option<serde::de::IgnoredAny>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultAbort {
    #[serde(default)]
    pub http_status: Option<i64>,
    #[serde(default)]
    pub grpc_status: Option<String>,
    #[serde(default)]
    pub http2_error: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    pub percentage: Option<Percent>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Percent {
    pub value: f64,
}
