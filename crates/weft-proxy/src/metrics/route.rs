//! Request metrics by route: the label sets, and [`RouteStats`], the handles one route's
//! requests record into, resolved when a snapshot is built and never looked up per request.
//!
//! Outbound, a route's requests are also told apart by the workload that answered and the
//! identity its proxy proved (`destination_workload`, `destination_workload_namespace`,
//! `destination_principal`, as Istio labels them): [`RouteStats::to`] hands out one child per
//! destination, made the first time that destination answers on the route and cached
//! copy-on-write, so a request pays a short scan of the destinations it has seen.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;

use super::{AtomicHistogram, Metrics};

/// Most destinations one route keeps apart; past it they count under the route's own labels.
const MAX_DESTINATIONS: usize = 256;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub direction: &'static str,
    pub destination_service: String,
    pub route: String,
    /// The client's SPIFFE id (inbound over mTLS); `unknown` otherwise.
    pub source_principal: String,
    /// `mutual_tls` or `none` inbound; `unknown` outbound (as Istio labels the client side).
    pub connection_security_policy: &'static str,
    /// The workload that answered (inbound: this one), its namespace, and the identity it
    /// proved; `unknown` when no endpoint answered (the proxy did).
    pub destination_workload: String,
    pub destination_workload_namespace: String,
    pub destination_principal: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    #[prometheus(flatten)]
    pub route: RouteLabels,
    pub response_code: String,
    pub grpc_status: String,
}

/// Who answered a request: an endpoint's workload and the identity its proxy must prove.
#[derive(Debug, PartialEq, Eq)]
pub struct Destination {
    pub workload: String,
    pub namespace: String,
    /// A SPIFFE id, or `unknown` for an endpoint without a proxy.
    pub principal: String,
}

impl Destination {
    pub fn unknown() -> Destination {
        Destination {
            workload: "unknown".into(),
            namespace: "unknown".into(),
            principal: "unknown".into(),
        }
    }
}

/// Handles for one route's request metrics.
pub struct RouteStats {
    metrics: Arc<Metrics>,
    labels: RouteLabels,
    /// Created on the first request, so that routes nobody uses export no series: a proxy's
    /// metrics grow with the traffic it sees, not with the size of the mesh.
    duration: std::sync::OnceLock<AtomicHistogram>,
    /// (status, grpc-status) → counter, grown copy-on-write when a new status appears.
    codes: ArcSwap<Vec<(u16, Option<u32>, Counter)>>,
    /// The same route by destination (outbound), grown copy-on-write.
    destinations: ArcSwap<Vec<(Arc<Destination>, Arc<RouteStats>)>>,
    /// Made on the first retry.
    retries: std::sync::OnceLock<Counter>,
    /// Made on the first request a retry saved.
    retry_successes: std::sync::OnceLock<Counter>,
}

impl RouteStats {
    pub(super) fn new(metrics: Arc<Metrics>, labels: RouteLabels) -> Arc<RouteStats> {
        Arc::new(RouteStats {
            metrics,
            labels,
            duration: std::sync::OnceLock::new(),
            codes: ArcSwap::from_pointee(Vec::new()),
            destinations: ArcSwap::from_pointee(Vec::new()),
            retries: std::sync::OnceLock::new(),
            retry_successes: std::sync::OnceLock::new(),
        })
    }

    /// A try of this route's request is being sent again.
    pub fn retried(&self) {
        self.retries
            .get_or_init(|| self.metrics.retries.get_or_create_owned(&self.labels))
            .inc();
    }

    /// A request of this route failed a try and then succeeded on a retry.
    #[cold]
    pub fn saved_by_retry(&self) {
        self.retry_successes
            .get_or_init(|| {
                self.metrics
                    .retry_successes
                    .get_or_create_owned(&self.labels)
            })
            .inc();
    }

    /// This route's handles for requests `destination` answered.
    pub fn to(self: &Arc<Self>, destination: &Arc<Destination>) -> Arc<RouteStats> {
        let known = self.destinations.load();
        if let Some((_, stats)) = known
            .iter()
            .find(|(d, _)| Arc::ptr_eq(d, destination) || **d == **destination)
        {
            return stats.clone();
        }
        if known.len() >= MAX_DESTINATIONS {
            return self.clone();
        }
        let labels = RouteLabels {
            destination_workload: destination.workload.clone(),
            destination_workload_namespace: destination.namespace.clone(),
            destination_principal: destination.principal.clone(),
            ..self.labels.clone()
        };
        let stats = RouteStats::new(self.metrics.clone(), labels);
        let mut next = Vec::clone(&known);
        next.push((destination.clone(), stats.clone()));
        self.destinations.store(Arc::new(next));
        stats
    }

    pub fn record(&self, status: u16, grpc_status: Option<u32>, elapsed: Duration) {
        self.duration
            .get_or_init(|| self.metrics.duration.get_or_create_owned(&self.labels))
            .observe(elapsed.as_secs_f64());
        let codes = self.codes.load();
        if let Some((_, _, c)) = codes
            .iter()
            .find(|(s, g, _)| *s == status && *g == grpc_status)
        {
            c.inc();
            return;
        }
        let labels = RequestLabels {
            route: self.labels.clone(),
            response_code: status.to_string(),
            grpc_status: grpc_status.map(|g| g.to_string()).unwrap_or_default(),
        };
        let counter = self.metrics.requests.get_or_create_owned(&labels);
        counter.inc();
        // At most a few dozen distinct statuses per route: the cache stays small.
        if codes.len() < 64 {
            let mut next = Vec::clone(&codes);
            next.push((status, grpc_status, counter));
            self.codes.store(Arc::new(next));
        }
    }

    pub fn service(&self) -> &str {
        &self.labels.destination_service
    }

    pub fn route(&self) -> &str {
        &self.labels.route
    }
}
