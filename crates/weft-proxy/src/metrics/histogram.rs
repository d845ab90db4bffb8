//! A latency histogram updated with atomics only: prometheus-client's own histogram takes a
//! write lock on every observation, and the request path takes no locks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

#[derive(Clone, Debug)]
pub struct AtomicHistogram {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Upper bounds, ascending; the last bucket (+Inf) is implicit.
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative); one more than `bounds` for +Inf.
    counts: Box<[AtomicU64]>,
    sum_bits: AtomicU64,
}

impl AtomicHistogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        let counts = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        Self {
            inner: Arc::new(Inner {
                bounds,
                counts,
                sum_bits: AtomicU64::new(0f64.to_bits()),
            }),
        }
    }

    pub fn observe(&self, value: f64) {
        let i = self.inner.bounds.partition_point(|b| *b < value);
        if let Some(c) = self.inner.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        // A compare-and-swap loop adds to an f64 kept as bits; contention is rare and brief.
        let mut current = self.inner.sum_bits.load(Ordering::Relaxed);
        loop {
            let next = (f64::from_bits(current) + value).to_bits();
            match self.inner.sum_bits.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(seen) => current = seen,
            }
        }
    }

    /// (sum, count, per-bucket counts with their upper bounds; +Inf as `f64::MAX`).
    pub fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let buckets: Vec<(f64, u64)> = self
            .inner
            .counts
            .iter()
            .enumerate()
            .map(|(i, c)| {
                (
                    self.inner.bounds.get(i).copied().unwrap_or(f64::MAX),
                    c.load(Ordering::Relaxed),
                )
            })
            .collect();
        let count = buckets.iter().map(|(_, c)| c).sum();
        (
            f64::from_bits(self.inner.sum_bits.load(Ordering::Relaxed)),
            count,
            buckets,
        )
    }
}

impl TypedMetric for AtomicHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let (sum, count, buckets) = self.snapshot();
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_sum_and_count() {
        static BOUNDS: [f64; 3] = [0.001, 0.01, 0.1];
        let h = AtomicHistogram::new(&BOUNDS);
        for v in [0.0005, 0.001, 0.005, 0.05, 5.0] {
            h.observe(v);
        }
        let (sum, count, buckets) = h.snapshot();
        assert_eq!(count, 5);
        assert!((sum - 5.0565).abs() < 1e-9);
        assert_eq!(
            buckets.iter().map(|(_, c)| *c).collect::<Vec<_>>(),
            vec![2, 1, 1, 1],
            "le is inclusive"
        );
        assert_eq!(buckets[3].0, f64::MAX);
    }
}
