//! Golden signals over a window, from counter deltas: requests per second, success rate, and
//! latency quantiles interpolated inside histogram buckets exactly as Prometheus's
//! `histogram_quantile` does, so `weft stat` and a PromQL query over the same window agree.

use serde::Serialize;

use super::sample::Counts;

/// One row of `weft stat`.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Golden {
    pub requests: f64,
    pub rps: f64,
    /// `null` with no request in the window.
    pub success_rate: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl Golden {
    /// The signals of `delta`, counted over `seconds`.
    pub fn of(delta: &Counts, seconds: f64) -> Golden {
        let any = delta.requests > 0.0;
        let q = |q| {
            any.then(|| quantile(q, &delta.buckets))
                .flatten()
                .map(|s| s * 1000.0)
        };
        Golden {
            requests: delta.requests,
            rps: if seconds > 0.0 {
                delta.requests / seconds
            } else {
                0.0
            },
            success_rate: any.then(|| 1.0 - delta.failures / delta.requests),
            p50_ms: q(0.50),
            p95_ms: q(0.95),
            p99_ms: q(0.99),
        }
    }
}

/// The `q` quantile of cumulative `buckets` (ascending bounds, the last `+Inf`), in seconds:
/// linear within the bucket the rank falls in; the highest finite bound when it falls in
/// `+Inf`. `None` without observations.
pub fn quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(lower.0);
            }
            let in_bucket = count - lower.1;
            if in_bucket <= 0.0 {
                return Some(le);
            }
            return Some(lower.0 + (le - lower.0) * (rank - lower.1) / in_bucket);
        }
        lower = (le, count);
    }
    Some(lower.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_as_histogram_quantile_does() {
        // 100 observations: 50 under 1 ms, 40 in (1, 5] ms, 10 in (5, 10] ms.
        let b = [
            (0.001, 50.0),
            (0.005, 90.0),
            (0.01, 100.0),
            (f64::INFINITY, 100.0),
        ];
        assert_eq!(quantile(0.5, &b), Some(0.001));
        let p95 = quantile(0.95, &b).expect("p95");
        assert!((p95 - 0.0075).abs() < 1e-12, "{p95}");
        let p25 = quantile(0.25, &b).expect("p25");
        assert!((p25 - 0.0005).abs() < 1e-12, "{p25}");
        // Beyond the last finite bound: that bound.
        assert_eq!(
            quantile(0.99, &[(0.001, 1.0), (f64::INFINITY, 100.0)]),
            Some(0.001)
        );
        assert_eq!(quantile(0.5, &[(f64::INFINITY, 0.0)]), None);
        let g = Golden::of(
            &Counts {
                requests: 100.0,
                failures: 5.0,
                buckets: b.to_vec(),
            },
            50.0,
        );
        assert_eq!((g.rps, g.success_rate), (2.0, Some(0.95)));
        assert_eq!(Golden::of(&Counts::default(), 10.0).success_rate, None);
    }
}
