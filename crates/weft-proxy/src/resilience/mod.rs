//! Per-destination state that keeps the mesh standing when endpoints fail: the retry budget,
//! outlier detection, and the connection-pool limits. What must outlive a config snapshot
//! (a budget's window, the requests and connections in flight) is kept here, in the
//! [`crate::state::Registry`], by destination, so a config change neither resets a budget nor
//! forgets what is in flight.

pub mod budget;
pub mod clock;
pub mod fault;
pub mod limits;
pub mod outlier;
pub mod rate;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use weft_api::view::{PoolView, RetriesView};

pub use budget::RetryBudget;
use limits::{ConnectionLimit, InFlight, RequestLimits};

use crate::metrics::resilience::RetryCounters;
use crate::metrics::Metrics;

/// What a destination Service's retries draw from and count into.
pub struct Retries {
    pub budget: Arc<RetryBudget>,
    pub counters: RetryCounters,
}

/// The shared state, by destination, alive while some snapshot uses it. Its maps are
/// locked while a snapshot is built, never per request.
#[derive(Default)]
pub struct Shared {
    /// By destination Service (`namespace/name`): its ports share a budget.
    budgets: Mutex<HashMap<String, Weak<RetryBudget>>>,
    /// By backend (`namespace/name:port`).
    in_flight: Mutex<HashMap<String, Weak<InFlight>>>,
    connections: Mutex<HashMap<String, Weak<ConnectionLimit>>>,
}

impl Shared {
    /// The budget of `service` under `settings`: the live one, unless its settings changed.
    pub fn retries(&self, service: &str, settings: &RetriesView, metrics: &Metrics) -> Retries {
        let budget = live(
            &self.budgets,
            service,
            |b| b.is_for(settings),
            || RetryBudget::new(settings),
        );
        Retries {
            budget,
            counters: metrics.resilience.retries(service),
        }
    }

    /// `http2MaxRequests` and `maxRetries` of a backend, when either is set.
    pub fn request_limits(
        &self,
        backend: &str,
        service: &str,
        pool: &PoolView,
        metrics: &Metrics,
    ) -> Option<RequestLimits> {
        if pool.max_requests == 0 && pool.max_retries == 0 {
            return None;
        }
        let in_flight = live(&self.in_flight, backend, |_| true, InFlight::default);
        let overflow = |limit| metrics.resilience.overflow(service, limit);
        Some(RequestLimits::new(
            pool.max_requests,
            pool.max_retries,
            in_flight,
            service.to_string(),
            (overflow("http2MaxRequests"), overflow("maxRetries")),
        ))
    }

    /// `tcp.maxConnections` (and `http1MaxPendingRequests`) of a backend, when set.
    pub fn connection_limit(
        &self,
        backend: &str,
        service: &str,
        pool: &PoolView,
        metrics: &Metrics,
    ) -> Option<Arc<ConnectionLimit>> {
        if pool.max_connections == 0 {
            return None;
        }
        let (max, pending) = (pool.max_connections, pool.max_pending);
        Some(live_arc(
            &self.connections,
            backend,
            |c| c.is_for(max, pending),
            || {
                let overflow = |limit| metrics.resilience.overflow(service, limit);
                ConnectionLimit::new(
                    max,
                    pending,
                    service.to_string(),
                    (
                        overflow("maxConnections"),
                        overflow("http1MaxPendingRequests"),
                    ),
                )
            },
        ))
    }
}

/// The live value under `key` if `keep` likes it, else a new one from `make`.
fn live<T>(
    map: &Mutex<HashMap<String, Weak<T>>>,
    key: &str,
    keep: impl Fn(&T) -> bool,
    make: impl FnOnce() -> T,
) -> Arc<T> {
    live_arc(map, key, keep, || Arc::new(make()))
}

fn live_arc<T>(
    map: &Mutex<HashMap<String, Weak<T>>>,
    key: &str,
    keep: impl Fn(&T) -> bool,
    make: impl FnOnce() -> Arc<T>,
) -> Arc<T> {
    let mut map = match map.lock() {
        Ok(m) => m,
        Err(poisoned) => poisoned.into_inner(),
    };
    map.retain(|_, w| w.strong_count() > 0);
    match map.get(key).and_then(Weak::upgrade) {
        Some(v) if keep(&v) => v,
        _ => {
            let fresh = make();
            map.insert(key.to_string(), Arc::downgrade(&fresh));
            fresh
        }
    }
}

/// Milliseconds of the proxy's monotonic clock, for outlier detection (a failure or an
/// ejection in progress: worth a precise read).
pub fn now_millis() -> u64 {
    clock::precise_ms()
}

/// Whole seconds of the proxy's monotonic clock, for the budgets' windows (coarse: every
/// request deposits, and a slot is a second).
pub fn now_seconds() -> u64 {
    clock::coarse_seconds()
}
