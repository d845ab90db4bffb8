//! Outlier detection (a DestinationRule's `outlierDetection`), as Envoy does it for Istio:
//! an endpoint that answers `consecutive5xxErrors` 5xx in a row (500 included; a refused,
//! reset or timed-out exchange counts too), or `consecutiveGatewayErrors` 502/503/504 in a
//! row, is ejected from the balancer for `baseEjectionTime` times the number of times it was
//! ejected, unless `maxEjectionPercent` of the endpoints are out already (one always may be).
//! Below `minHealthPercent` healthy, ejections are ignored.
//!
//! An ejected endpoint is not forgotten: when its time is up it is readmitted on probation,
//! one request at a time; a success readmits it fully, a failure ejects it again, for longer.
//! Each healthy `interval` after that takes one off its count of ejections. 429 and gRPC
//! RESOURCE_EXHAUSTED are load, not failure: they neither count nor reset the count.
//!
//! All of it is atomics on the endpoint (which outlives config snapshots), updated by the
//! requests themselves; readmission happens when a pick finds the time up, so no timer runs.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use weft_api::view::OutlierView;

/// Ejections last at most this long, whatever the count (Envoy's `max_ejection_time`).
const MAX_EJECTION_MS: u64 = 300_000;

/// An endpoint's health as outlier detection sees it.
#[derive(Debug, Default)]
pub struct Health {
    consecutive_5xx: AtomicU32,
    consecutive_gateway: AtomicU32,
    /// Milliseconds of the proxy's clock until which it is ejected; 0 when it is not.
    ejected_until: AtomicU64,
    /// Readmitted, awaiting the first answer.
    probing: AtomicBool,
    /// Times ejected (less one per healthy interval since `healthy_since`).
    times: AtomicU32,
    healthy_since: AtomicU64,
}

/// How a try ended, for outlier detection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Success,
    /// A 5xx other than a gateway error (500, 501, …).
    ServerError,
    /// 502, 503, 504, or the exchange failed (refused, reset, timed out).
    GatewayError,
    /// Neither (429, a stream refused unprocessed, the client's own failure).
    Neutral,
}

impl Verdict {
    /// The verdict on an answer's HTTP status, or a gRPC status (mapped as Envoy maps them).
    pub fn of_status(status: u16, grpc: Option<u32>) -> Verdict {
        let status = match grpc {
            Some(14) => 503,          // UNAVAILABLE
            Some(4) => 504,           // DEADLINE_EXCEEDED
            Some(2 | 13 | 15) => 500, // UNKNOWN, INTERNAL, DATA_LOSS
            Some(8) => 429,           // RESOURCE_EXHAUSTED
            Some(_) => 200,
            None => status,
        };
        match status {
            502..=504 => Verdict::GatewayError,
            500..=599 => Verdict::ServerError,
            429 => Verdict::Neutral,
            _ => Verdict::Success,
        }
    }
}

/// One destination's outlier detection: its settings and counters.
pub struct Outlier {
    pub settings: OutlierView,
    pub service: String,
    pub ejections_5xx: Counter,
    pub ejections_gateway: Counter,
    pub readmissions: Counter,
}

/// What a pick needs to know of an endpoint (its health and its requests in flight).
pub trait Ejectable {
    fn health(&self) -> &Health;
    fn in_flight(&self) -> u32;
    fn name(&self) -> String;
}

impl Outlier {
    /// Whether `ep` may be picked at `now_ms`: not ejected, or ejected but with too few
    /// endpoints healthy for ejections to count; on probation, only with nothing in flight.
    pub fn admits<E: Ejectable>(&self, ep: &E, all: &[Arc<E>], now_ms: u64) -> bool {
        let health = ep.health();
        let until = health.ejected_until.load(Ordering::Acquire);
        if until == 0 {
            return !health.probing.load(Ordering::Relaxed) || ep.in_flight() == 0;
        }
        if now_ms >= until {
            // Time is up: the one who swaps the mark readmits it, on probation.
            if health
                .ejected_until
                .compare_exchange(until, 0, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                health.probing.store(true, Ordering::Release);
                self.readmissions.inc();
                tracing::info!(service = %self.service, endpoint = %ep.name(), "outlier readmitted on probation");
            }
            return ep.in_flight() == 0;
        }
        self.below_min_health(all, now_ms)
    }

    /// Records how a try to `ep` ended; may eject it.
    pub fn record<E: Ejectable>(&self, ep: &E, all: &[Arc<E>], verdict: Verdict, now_ms: u64) {
        let health = ep.health();
        let (five, gateway) = match verdict {
            Verdict::Neutral => return,
            Verdict::Success => {
                health.consecutive_5xx.store(0, Ordering::Relaxed);
                health.consecutive_gateway.store(0, Ordering::Relaxed);
                if health.probing.swap(false, Ordering::AcqRel) {
                    health.healthy_since.store(now_ms, Ordering::Relaxed);
                }
                return;
            }
            Verdict::ServerError => {
                health.consecutive_gateway.store(0, Ordering::Relaxed);
                (health.consecutive_5xx.fetch_add(1, Ordering::AcqRel) + 1, 0)
            }
            Verdict::GatewayError => (
                health.consecutive_5xx.fetch_add(1, Ordering::AcqRel) + 1,
                health.consecutive_gateway.fetch_add(1, Ordering::AcqRel) + 1,
            ),
        };
        let s = &self.settings;
        let by_5xx = s.consecutive_5xx > 0 && five >= s.consecutive_5xx;
        let by_gateway = s.consecutive_gateway > 0 && gateway >= s.consecutive_gateway;
        let on_probation = health.probing.load(Ordering::Acquire);
        if !(by_5xx || by_gateway || on_probation) {
            return;
        }
        if health.ejected_until.load(Ordering::Acquire) != 0 {
            return;
        }
        if !on_probation && !self.may_eject_another(all, now_ms) {
            return;
        }
        let why = if on_probation {
            "failed on probation"
        } else if by_gateway {
            "consecutive gateway errors"
        } else {
            "consecutive 5xx"
        };
        self.eject(ep, now_ms, on_probation, why);
        if by_gateway {
            self.ejections_gateway.inc();
        } else {
            self.ejections_5xx.inc();
        }
    }

    fn eject<E: Ejectable>(&self, ep: &E, now_ms: u64, on_probation: bool, why: &str) {
        let health = ep.health();
        // Healthy intervals since it was last fully readmitted forgive past ejections; a
        // failed probe forgives nothing.
        let forgiven = if on_probation {
            0
        } else {
            let healthy_for = now_ms.saturating_sub(health.healthy_since.load(Ordering::Relaxed));
            (healthy_for / self.settings.interval_ms.max(1)).min(u64::from(u32::MAX)) as u32
        };
        let times = health
            .times
            .load(Ordering::Relaxed)
            .saturating_sub(forgiven)
            .saturating_add(1);
        health.times.store(times, Ordering::Relaxed);
        let duration = self
            .settings
            .base_ejection_ms
            .saturating_mul(u64::from(times))
            .min(MAX_EJECTION_MS.max(self.settings.base_ejection_ms));
        health.consecutive_5xx.store(0, Ordering::Relaxed);
        health.consecutive_gateway.store(0, Ordering::Relaxed);
        health.probing.store(false, Ordering::Release);
        health
            .ejected_until
            .store(now_ms + duration.max(1), Ordering::Release);
        tracing::warn!(
            service = %self.service,
            endpoint = %ep.name(),
            reason = why,
            ejection = times,
            for_ms = duration,
            "outlier ejected"
        );
    }

    /// Under `maxEjectionPercent` ejected now (one may always be).
    fn may_eject_another<E: Ejectable>(&self, all: &[Arc<E>], now_ms: u64) -> bool {
        let ejected = ejected_count(all, now_ms);
        ejected == 0 || ejected * 100 < all.len() * self.settings.max_ejection_percent as usize
    }

    fn below_min_health<E: Ejectable>(&self, all: &[Arc<E>], now_ms: u64) -> bool {
        let min = self.settings.min_health_percent as usize;
        min > 0 && (all.len() - ejected_count(all, now_ms)) * 100 < all.len() * min
    }
}

fn ejected_count<E: Ejectable>(all: &[Arc<E>], now_ms: u64) -> usize {
    all.iter()
        .filter(|e| {
            let until = e.health().ejected_until.load(Ordering::Acquire);
            until != 0 && now_ms < until
        })
        .count()
}

#[cfg(test)]
mod tests;
