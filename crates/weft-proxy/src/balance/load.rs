//! Per-endpoint load: outstanding requests and a peak-sensitive moving average of latency.
//!
//! Lock-free: an endpoint's numbers are atomics updated by whichever request finishes; a lost
//! update between two racing requests only blurs an average.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The average forgets with this time constant. Linkerd's is 10 s; with peak sensitivity,
/// one slow answer (a cold cache, a pause) then keeps an endpoint out of two-choice picks for
/// tens of seconds while its peers' averages stay low. 3 s lets it back within seconds, and
/// still makes an endpoint that is slow for good wait about 20 s between probes (500 ms vs 1 ms).
const DECAY_NANOS: f64 = 3_000_000_000.0;
/// An endpoint nothing is known about is assumed this slow, so new endpoints get tried
/// without being flooded.
const DEFAULT_RTT_NANOS: f64 = 1_000_000.0;

pub(crate) fn now_nanos() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

#[derive(Debug)]
pub struct Load {
    pending: AtomicU32,
    ewma_bits: AtomicU64,
    stamp: AtomicU64,
}

impl Default for Load {
    fn default() -> Self {
        Self {
            pending: AtomicU32::new(0),
            ewma_bits: AtomicU64::new(DEFAULT_RTT_NANOS.to_bits()),
            stamp: AtomicU64::new(now_nanos()),
        }
    }
}

/// Counts a request as outstanding until dropped; `observe` records its latency (dropped
/// without it, the request counted as load while it lasted and taught nothing).
pub struct InFlight<'a> {
    load: &'a Load,
    /// [`now_nanos`] when the request started: one clock reading serves both the latency and
    /// the decay when it ends.
    start: u64,
}

impl Load {
    pub fn pending(&self) -> u32 {
        self.pending.load(Ordering::Relaxed)
    }

    pub fn start(&self) -> InFlight<'_> {
        self.pending.fetch_add(1, Ordering::Relaxed);
        InFlight {
            load: self,
            start: now_nanos(),
        }
    }

    /// Expected cost of one more request: the decayed latency average times (pending + 1).
    pub(super) fn ewma_cost(&self, now: u64) -> f64 {
        let ewma = self.decayed(now);
        ewma * f64::from(self.pending() + 1)
    }

    fn decayed(&self, now: u64) -> f64 {
        self.decay(now).0
    }

    /// The decayed average at `now`, and the weight the old average keeps.
    fn decay(&self, now: u64) -> (f64, f64) {
        let ewma = f64::from_bits(self.ewma_bits.load(Ordering::Relaxed));
        let elapsed = now.saturating_sub(self.stamp.load(Ordering::Relaxed)) as f64;
        let w = (-elapsed / DECAY_NANOS).exp();
        (ewma * w, w)
    }

    fn observe(&self, now: u64, rtt: Duration) {
        let rtt = rtt.as_nanos() as f64;
        let (prev, w) = self.decay(now);
        // Peak-sensitive: a slower response is taken at once, a faster one blends in.
        let next = if rtt > prev {
            rtt
        } else {
            prev * w + rtt * (1.0 - w)
        };
        self.ewma_bits.store(next.to_bits(), Ordering::Relaxed);
        self.stamp.store(now, Ordering::Relaxed);
    }

    pub fn latency_estimate(&self) -> Duration {
        Duration::from_nanos(self.decayed(now_nanos()) as u64)
    }
}

impl InFlight<'_> {
    /// Records how long the request took (call once the response head arrived).
    pub fn observe(self) {
        let now = now_nanos();
        let rtt = Duration::from_nanos(now.saturating_sub(self.start));
        self.load.observe(now, rtt);
    }

    /// Records a refusal: an answer that says the endpoint is overloaded (429, gRPC
    /// RESOURCE_EXHAUSTED: load, not failure), or a connection it refused (a proxy that is
    /// draining). A refusal comes back fast and would make the endpoint look cheap, so it
    /// counts as four times the latency expected of it (at least 10 ms, at most 1 s), and the
    /// balancer sends it less until that decays.
    pub fn observe_refusal(self) {
        let now = now_nanos();
        let rtt = now.saturating_sub(self.start) as f64;
        let penalty = (self.load.decayed(now) * 4.0).clamp(OVERLOAD_MIN_NANOS, OVERLOAD_MAX_NANOS);
        self.load
            .observe(now, Duration::from_nanos(rtt.max(penalty) as u64));
    }
}

const OVERLOAD_MIN_NANOS: f64 = 10_000_000.0;
const OVERLOAD_MAX_NANOS: f64 = 1_000_000_000.0;

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.load.pending.fetch_sub(1, Ordering::Relaxed);
    }
}
