//! `weft.dev/v1alpha1 MeshConfig`: the mesh-wide settings that are Weft's own.

use serde::Deserialize;

use super::istio::AuthzRule;
use super::Spanned;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MeshConfigSpec {
    /// SPIFFE trust domain, e.g. `cluster.local`.
    #[serde(default)]
    pub trust_domain: Option<String>,
    /// DNS suffix of Service names (`svc.ns.svc.<clusterDomain>`).
    #[serde(default)]
    pub cluster_domain: Option<String>,
    /// CIDR from which Weft assigns Service VIPs that have no `clusterIP`.
    #[serde(default)]
    pub service_cidr: Option<String>,
    /// The namespace whose selector-less PeerAuthentication and AuthorizationPolicy apply
    /// mesh-wide (as Istio's `rootNamespace`; default `istio-system`).
    #[serde(default)]
    pub root_namespace: Option<String>,
    #[serde(default)]
    pub proxy: Option<ProxyDefaults>,
    /// How inbound request paths are normalized before authorization (Istio's
    /// `meshConfig.pathNormalization`).
    #[serde(default)]
    pub path_normalization: Option<PathNormalizationSpec>,
    /// Distributed tracing: where spans go, how many requests are traced, which trace
    /// headers are read and written.
    #[serde(default)]
    pub tracing: Option<TracingSpec>,
    /// Who may read proxies' configuration and tap their requests with a SPIFFE identity
    /// (proved over mutual TLS to a proxy's admin port) instead of the admin token.
    #[serde(default)]
    pub admin: Option<AdminSpec>,
    /// Retries the mesh allows itself: the budget every destination Service's retries draw
    /// from, the safe default, and how much of a request body is kept to send again.
    #[serde(default)]
    pub retries: Option<RetriesSpec>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetriesSpec {
    /// Linkerd's retry budget: per destination Service, retries may add at most
    /// `retryRatio` of the requests of the last `ttl`, plus `minRetriesPerSecond`.
    #[serde(default)]
    pub budget: Option<RetryBudgetSpec>,
    /// Retries of a failure that never reached the application (a refused connection, a
    /// refused stream), on routes that set no `retry` (default 2; 0 turns them off).
    #[serde(default)]
    pub default_attempts: Option<u32>,
    /// A request body is kept to be sent again only up to this many bytes (default 65536);
    /// a longer body is streamed and its request is not retried.
    #[serde(default)]
    pub max_body_bytes: Option<u64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryBudgetSpec {
    /// Share of requests that may be retried, 0 to 1 (default 0.2).
    #[serde(default)]
    pub retry_ratio: Option<f64>,
    /// Retries allowed per second whatever the traffic (default 10).
    #[serde(default)]
    pub min_retries_per_second: Option<u32>,
    /// How far back requests count (default `10s`; 1s to 60s).
    #[serde(default)]
    pub ttl: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdminSpec {
    /// AuthorizationPolicy `rules` (`from`, `to`, `when`), evaluated as an ALLOW policy on
    /// requests to a proxy's admin endpoint: `/config` and `/tap` need a rule to match.
    #[serde(default)]
    pub rules: Option<Vec<Spanned<AuthzRule>>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TracingSpec {
    /// The OTLP/gRPC collector spans are exported to: `host:port` or `http://host:port`.
    #[serde(default)]
    pub collector: Option<String>,
    /// Percent of the requests that arrive without a caller's decision that start a trace
    /// (Istio's Telemetry `randomSamplingPercentage`; default 1).
    #[serde(default)]
    pub random_sampling_percentage: Option<f64>,
    /// Trace header formats, OpenTelemetry's names: `tracecontext` (W3C), `b3` (single
    /// header), `b3multi` (`X-B3-*`); read in this order, all written. Default `[tracecontext]`.
    #[serde(default)]
    pub propagators: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PathNormalizationSpec {
    /// `NONE`, `BASE` (the default), `MERGE_SLASHES` or `DECODE_AND_MERGE_SLASHES`.
    #[serde(default)]
    pub normalization: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyDefaults {
    #[serde(default)]
    pub outbound_port: Option<u16>,
    #[serde(default)]
    pub inbound_port: Option<u16>,
    #[serde(default)]
    pub admin_port: Option<u16>,
    /// How long protocol detection waits for the client's first bytes (e.g. `300ms`).
    #[serde(default)]
    pub detect_timeout: Option<String>,
    /// Default whole-request timeout for HTTP routes that set none (e.g. `15s`; `0s` = none).
    #[serde(default)]
    pub request_timeout: Option<String>,
    /// Default connect timeout to endpoints (e.g. `1s`).
    #[serde(default)]
    pub connect_timeout: Option<String>,
    /// How long an idle pooled connection to an application (or an endpoint without a
    /// proxy) is kept (default `4s`): shorter than the application's keep-alive timeout.
    #[serde(default)]
    pub upstream_idle_timeout: Option<String>,
}
