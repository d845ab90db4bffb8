//! Prometheus metrics (`prometheus-client`), served on the admin endpoint.
//!
//! Label values come from bounded sets only: directions, Service and route names, status
//! codes, gRPC statuses, detection outcomes. Never paths, query strings or client ports.
//!
//! The request path takes no lock: metric handles for a route are resolved when a config
//! snapshot is built ([`RouteStats`]), and per-status counters are cached copy-on-write, so a
//! response only increments atomics once its status has been seen on that route.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

pub mod at_end;
mod histogram;
mod process;
pub mod resilience;
mod route;
pub use histogram::AtomicHistogram;
pub use route::{Destination, RequestLabels, RouteLabels, RouteStats};

pub const INBOUND: &str = "inbound";
pub const OUTBOUND: &str = "outbound";

/// Latency buckets, in seconds: 100 µs to 10 s.
static LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TcpLabels {
    pub direction: &'static str,
    pub destination_service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DetectLabels {
    pub direction: &'static str,
    pub protocol: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AuthzLabels {
    /// `namespace/name` of the deciding policy, or `none`.
    pub policy: String,
    /// `ALLOW`, `DENY` or `AUDIT`.
    pub action: &'static str,
    /// `allowed`, `denied` or `audited`.
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabels {
    /// `queue_full` or `export_failed`.
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub direction: &'static str,
    pub reason: &'static str,
}

fn latency_histogram() -> AtomicHistogram {
    AtomicHistogram::new(&LATENCY_BUCKETS)
}

type HistogramFamily = Family<RouteLabels, AtomicHistogram, fn() -> AtomicHistogram>;

pub struct Metrics {
    registry: Registry,
    pub(crate) requests: Family<RequestLabels, Counter>,
    pub(crate) retries: Family<RouteLabels, Counter>,
    pub(crate) retry_successes: Family<RouteLabels, Counter>,
    pub(crate) duration: HistogramFamily,
    pub tcp_opened: Family<TcpLabels, Counter>,
    pub tcp_closed: Family<TcpLabels, Counter>,
    pub tcp_sent: Family<TcpLabels, Counter>,
    pub tcp_received: Family<TcpLabels, Counter>,
    pub detections: Family<DetectLabels, Counter>,
    pub proxy_errors: Family<ErrorLabels, Counter>,
    authz_decisions: Family<AuthzLabels, Counter>,
    pub config_reloads: Family<ResultLabels, Counter>,
    pub config_timestamp: Gauge,
    pub access_log_dropped: Counter,
    spans_exported: Counter,
    /// Resolved once: a full queue is met on the request path, which takes no lock.
    spans_dropped_queue_full: Counter,
    spans_dropped_export_failed: Counter,
    pub resilience: resilience::Families,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("weft");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "HTTP requests by direction, destination Service, route and status",
            requests.clone(),
        );
        let retries = Family::<RouteLabels, Counter>::default();
        registry.register(
            "retries",
            "Tries sent again (retries), by route",
            retries.clone(),
        );
        let retry_successes = Family::<RouteLabels, Counter>::default();
        registry.register(
            "retry_successes",
            "Requests whose first try failed and a retry succeeded (a success as outlier detection counts one), by route",
            retry_successes.clone(),
        );
        let duration: HistogramFamily = Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "request_duration",
            "HTTP request latency, from request head received to response head sent",
            Unit::Seconds,
            duration.clone(),
        );
        let tcp_opened = Family::<TcpLabels, Counter>::default();
        registry.register(
            "tcp_connections_opened",
            "TCP connections opened",
            tcp_opened.clone(),
        );
        let tcp_closed = Family::<TcpLabels, Counter>::default();
        registry.register(
            "tcp_connections_closed",
            "TCP connections closed",
            tcp_closed.clone(),
        );
        let tcp_sent = Family::<TcpLabels, Counter>::default();
        registry.register_with_unit(
            "tcp_sent",
            "Bytes sent to the destination over opaque TCP",
            Unit::Bytes,
            tcp_sent.clone(),
        );
        let tcp_received = Family::<TcpLabels, Counter>::default();
        registry.register_with_unit(
            "tcp_received",
            "Bytes received from the destination over opaque TCP",
            Unit::Bytes,
            tcp_received.clone(),
        );
        let detections = Family::<DetectLabels, Counter>::default();
        registry.register(
            "protocol_detections",
            "Protocol detection outcomes on undeclared ports",
            detections.clone(),
        );
        let proxy_errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "proxy_errors",
            "Responses and refusals the proxy made itself, by reason",
            proxy_errors.clone(),
        );
        let authz_decisions = Family::<AuthzLabels, Counter>::default();
        registry.register(
            "authz_decisions",
            "Authorization decisions by deciding policy, its action and the result (AUDIT matches as audited)",
            authz_decisions.clone(),
        );
        let config_reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "config_reloads",
            "Configuration reloads by result",
            config_reloads.clone(),
        );
        let config_timestamp = Gauge::default();
        registry.register_with_unit(
            "config_last_reload_success_timestamp",
            "When the configuration in use was loaded (Unix time)",
            Unit::Seconds,
            config_timestamp.clone(),
        );
        let access_log_dropped = Counter::default();
        registry.register(
            "access_log_dropped",
            "Access log lines dropped because the writer fell behind",
            access_log_dropped.clone(),
        );
        let spans_exported = Counter::default();
        registry.register(
            "trace_spans_exported",
            "Spans the trace collector accepted",
            spans_exported.clone(),
        );
        let spans_dropped = Family::<DropLabels, Counter>::default();
        registry.register(
            "trace_spans_dropped",
            "Spans dropped: the queue to the exporter was full, or the collector did not take them",
            spans_dropped.clone(),
        );
        let dropped = |reason| spans_dropped.get_or_create(&DropLabels { reason }).clone();
        let spans_dropped_queue_full = dropped("queue_full");
        let spans_dropped_export_failed = dropped("export_failed");
        let resilience = resilience::Families::register(&mut registry);
        Arc::new(Self {
            resilience,
            registry,
            requests,
            retries,
            retry_successes,
            duration,
            tcp_opened,
            tcp_closed,
            tcp_sent,
            tcp_received,
            detections,
            proxy_errors,
            authz_decisions,
            config_reloads,
            config_timestamp,
            access_log_dropped,
            spans_exported,
            spans_dropped_queue_full,
            spans_dropped_export_failed,
        })
    }

    pub fn span_exported(&self, n: u64) {
        self.spans_exported.inc_by(n);
    }

    /// `reason`: `queue_full` (the request path) or `export_failed` (the exporter).
    pub fn span_dropped(&self, reason: &'static str, n: u64) {
        match reason {
            "queue_full" => self.spans_dropped_queue_full.inc_by(n),
            _ => self.spans_dropped_export_failed.inc_by(n),
        };
    }

    /// Every metric in the OpenMetrics text format (what Prometheus asks for first).
    pub fn encode_openmetrics(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        process::encode(&mut out);
        out
    }

    /// Every metric in the classic Prometheus text format (0.0.4), which `promtool check
    /// metrics`, older scrapers and people with curl read.
    pub fn encode(&self) -> String {
        to_prometheus_text(&self.encode_openmetrics())
    }

    /// Metric handles for one route: resolved once per config snapshot, not per request.
    pub fn route(
        self: &Arc<Self>,
        direction: &'static str,
        service: &str,
        route: &str,
    ) -> Arc<RouteStats> {
        self.route_from(
            direction,
            service,
            route,
            "unknown",
            "unknown",
            &Destination::unknown(),
        )
    }

    /// Metric handles for one route as seen from one peer (inbound: the client's identity and
    /// whether the connection was mutual TLS) to one destination (inbound: this workload).
    pub fn route_from(
        self: &Arc<Self>,
        direction: &'static str,
        service: &str,
        route: &str,
        source_principal: &str,
        connection_security_policy: &'static str,
        destination: &Destination,
    ) -> Arc<RouteStats> {
        let labels = RouteLabels {
            direction,
            destination_service: service.to_string(),
            route: route.to_string(),
            source_principal: source_principal.to_string(),
            connection_security_policy,
            destination_workload: destination.workload.clone(),
            destination_workload_namespace: destination.namespace.clone(),
            destination_principal: destination.principal.clone(),
        };
        RouteStats::new(self.clone(), labels)
    }

    pub fn tcp(&self, direction: &'static str, service: &str) -> TcpStats {
        let labels = TcpLabels {
            direction,
            destination_service: service.to_string(),
        };
        TcpStats {
            opened: self.tcp_opened.get_or_create_owned(&labels),
            closed: self.tcp_closed.get_or_create_owned(&labels),
            sent: self.tcp_sent.get_or_create_owned(&labels),
            received: self.tcp_received.get_or_create_owned(&labels),
        }
    }

    pub fn detected(&self, direction: &'static str, protocol: &'static str) {
        self.detections
            .get_or_create(&DetectLabels {
                direction,
                protocol,
            })
            .inc();
    }

    /// The counter of one (policy, action, result): resolved when a snapshot is built.
    pub fn authz_decision(
        &self,
        policy: &str,
        action: &'static str,
        result: &'static str,
    ) -> Counter {
        self.authz_decisions.get_or_create_owned(&AuthzLabels {
            policy: policy.to_string(),
            action,
            result,
        })
    }

    pub fn proxy_error(&self, direction: &'static str, reason: &'static str) {
        self.proxy_errors
            .get_or_create(&ErrorLabels { direction, reason })
            .inc();
    }
}

/// Converts OpenMetrics text to the classic format: counters' HELP and TYPE lines name the
/// `_total` series (OpenMetrics names the family without it), and `# UNIT` / `# EOF` go.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match renamed {
            Some(l) => out.push_str(&l),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

pub struct TcpStats {
    pub opened: Counter,
    pub closed: Counter,
    pub sent: Counter,
    pub received: Counter,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn records_by_route_and_status() {
        let m = Metrics::new();
        let r = m.route(OUTBOUND, "ns/echo", "ns/route");
        r.record(200, None, Duration::from_millis(2));
        r.record(200, None, Duration::from_millis(3));
        r.record(503, None, Duration::from_millis(1));
        let text = m.encode();
        assert!(text.contains(r#"weft_requests_total{direction="outbound",destination_service="ns/echo",route="ns/route",source_principal="unknown",connection_security_policy="unknown",destination_workload="unknown",destination_workload_namespace="unknown",destination_principal="unknown",response_code="200",grpc_status=""} 2"#), "{text}");
        assert!(text.contains(r#"response_code="503""#), "{text}");
        assert!(
            text.contains("weft_request_duration_seconds_bucket"),
            "{text}"
        );
    }

    #[test]
    fn outbound_requests_count_under_the_destination_that_answered() {
        let m = Metrics::new();
        let r = m.route(OUTBOUND, "shop/reviews", "shop/reviews");
        let v1 = Arc::new(Destination {
            workload: "reviews-v1".into(),
            namespace: "shop".into(),
            principal: "spiffe://td/ns/shop/sa/reviews".into(),
        });
        let same_again = Arc::new(Destination {
            workload: "reviews-v1".into(),
            namespace: "shop".into(),
            principal: "spiffe://td/ns/shop/sa/reviews".into(),
        });
        r.to(&v1).record(200, None, Duration::from_millis(1));
        r.to(&same_again)
            .record(200, None, Duration::from_millis(1));
        assert!(
            Arc::ptr_eq(&r.to(&v1), &r.to(&same_again)),
            "one child per destination"
        );
        let text = m.encode();
        assert!(text.contains(r#"destination_workload="reviews-v1",destination_workload_namespace="shop",destination_principal="spiffe://td/ns/shop/sa/reviews",response_code="200",grpc_status=""} 2"#), "{text}");
    }
}
