//! Metrics of the resilience stages: retries the budget or the replay buffer refused, outlier
//! ejections and readmissions.
//!
//! Handles are resolved when a snapshot is built (one per destination Service), so the
//! request path only increments a counter it already holds.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusedLabels {
    pub destination_service: String,
    /// `budget` (the destination's retry budget was spent) or `body` (the request body
    /// was longer than `retries.maxBodyBytes`, or could not be had back).
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EjectionLabels {
    pub destination_service: String,
    /// `consecutive_5xx` or `consecutive_gateway` (a failed probe counts under the first).
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabels {
    pub destination_service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OverflowLabels {
    pub destination_service: String,
    /// The `connectionPool` field whose limit was reached.
    pub limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RateLimitLabels {
    /// `namespace/name` of the HTTPLocalRateLimitPolicy.
    pub policy: String,
    /// `total`, `identity` or `override`: the bucket that was empty.
    pub limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FaultLabels {
    /// `namespace/name` of the FaultInjection.
    pub fault: String,
    /// `delay` or `abort`.
    pub kind: &'static str,
}

pub struct Families {
    retries_refused: Family<RefusedLabels, Counter>,
    faults: Family<FaultLabels, Counter>,
    rate_limited: Family<RateLimitLabels, Counter>,
    overflows: Family<OverflowLabels, Counter>,
    ejections: Family<EjectionLabels, Counter>,
    readmissions: Family<ServiceLabels, Counter>,
}

/// The counters of one destination Service's outlier detection.
pub struct OutlierCounters {
    pub ejections_5xx: Counter,
    pub ejections_gateway: Counter,
    pub readmissions: Counter,
}

/// The counters one destination Service's retries use.
#[derive(Clone)]
pub struct RetryCounters {
    pub refused_budget: Counter,
    pub refused_body: Counter,
}

impl Families {
    pub fn register(registry: &mut Registry) -> Self {
        let retries_refused = Family::<RefusedLabels, Counter>::default();
        registry.register(
            "retries_refused",
            "Failed tries not sent again: the destination's retry budget was spent, or the body could not be replayed",
            retries_refused.clone(),
        );
        let ejections = Family::<EjectionLabels, Counter>::default();
        registry.register(
            "outlier_ejections",
            "Endpoints ejected by outlier detection (DestinationRule outlierDetection)",
            ejections.clone(),
        );
        let readmissions = Family::<ServiceLabels, Counter>::default();
        registry.register(
            "outlier_readmissions",
            "Ejected endpoints readmitted on probation when their ejection time was up",
            readmissions.clone(),
        );
        let overflows = Family::<OverflowLabels, Counter>::default();
        registry.register(
            "overflows",
            "Requests, retries and connections refused (503 overloaded) at a DestinationRule connectionPool limit",
            overflows.clone(),
        );
        let rate_limited = Family::<RateLimitLabels, Counter>::default();
        registry.register(
            "rate_limited",
            "Inbound requests refused (429) by an HTTPLocalRateLimitPolicy, by the limit reached",
            rate_limited.clone(),
        );
        let faults = Family::<FaultLabels, Counter>::default();
        registry.register(
            "faults_injected",
            "Requests delayed or aborted by a FaultInjection",
            faults.clone(),
        );
        Self {
            retries_refused,
            faults,
            rate_limited,
            overflows,
            ejections,
            readmissions,
        }
    }

    /// The injections of one kind of a FaultInjection.
    pub fn fault(&self, fault: &str, kind: &'static str) -> Counter {
        self.faults.get_or_create_owned(&FaultLabels {
            fault: fault.to_string(),
            kind,
        })
    }

    /// The refusals of one limit of a rate limit policy.
    pub fn rate_limited(&self, policy: &str, limit: &'static str) -> Counter {
        self.rate_limited.get_or_create_owned(&RateLimitLabels {
            policy: policy.to_string(),
            limit,
        })
    }

    /// The overflow counter of one `connectionPool` limit of `service`.
    pub fn overflow(&self, service: &str, limit: &'static str) -> Counter {
        self.overflows.get_or_create_owned(&OverflowLabels {
            destination_service: service.to_string(),
            limit,
        })
    }

    pub fn outlier(&self, service: &str) -> OutlierCounters {
        let ejection = |reason| {
            self.ejections.get_or_create_owned(&EjectionLabels {
                destination_service: service.to_string(),
                reason,
            })
        };
        OutlierCounters {
            ejections_5xx: ejection("consecutive_5xx"),
            ejections_gateway: ejection("consecutive_gateway"),
            readmissions: self.readmissions.get_or_create_owned(&ServiceLabels {
                destination_service: service.to_string(),
            }),
        }
    }

    pub fn retries(&self, service: &str) -> RetryCounters {
        let counter = |reason| {
            self.retries_refused.get_or_create_owned(&RefusedLabels {
                destination_service: service.to_string(),
                reason,
            })
        };
        RetryCounters {
            refused_budget: counter("budget"),
            refused_body: counter("body"),
        }
    }
}
