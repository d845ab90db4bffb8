//! Setups side by side with the setup they are judged against, at each rate both ran:
//! latency and CPU per request (all of a setup's proxies together) beside each other, and
//! their ratio. Four pairs matter:
//!
//! * weft-2-authz against weft-2-jwt: the same hop carrying the same request (a JWT and a
//!   tenant header) with and without policy (the JWT verified and 20 authorization rules on
//!   proxy B), so the difference is what policy costs;
//! * weft-2-jwt against weft-2-mtls: what carrying the token costs the hop with no policy at
//!   all (HTTP/2 never indexes `authorization`, so its bytes are coded on every request);
//! * weft-2-trace against weft-2-mtls: tracing on at 1%, so the difference is what tracing
//!   costs (trace context read and written on every request, a span for one in a hundred);
//! * weft-2-mtls against envoy-2-mtls: the mutual-TLS mesh hop, Weft's two proxies against
//!   Istio's two Envoys.

use serde::Serialize;

use super::Row;

/// (setup, baseline, what the comparison shows).
pub const PAIRS: [(&str, &str, &str); 4] = [
    (
        "weft-2-authz",
        "weft-2-jwt",
        "policy: JWT verified + 20 authorization rules, same request",
    ),
    (
        "weft-2-jwt",
        "weft-2-mtls",
        "carrying a JWT and a tenant header, no policy",
    ),
    (
        "weft-2-trace",
        "weft-2-mtls",
        "tracing on, 1% of requests sampled, spans exported over OTLP",
    ),
    (
        "weft-2-mtls",
        "envoy-2-mtls",
        "the mTLS mesh hop: Weft's two proxies against Istio's two Envoys",
    ),
];

/// One setup against its baseline at one rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pair {
    pub setup: String,
    pub baseline: String,
    pub what: String,
    pub rate: u32,
    pub p50_ms: Option<f64>,
    pub baseline_p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub baseline_p99_ms: Option<f64>,
    /// `p99_ms - baseline_p99_ms`.
    pub p99_diff_ms: Option<f64>,
    /// CPU seconds per 10,000 requests, the setup's proxies together.
    pub cpu_per_10k: Option<f64>,
    pub baseline_cpu_per_10k: Option<f64>,
    /// `cpu_per_10k / baseline_cpu_per_10k`: above 1.0 the setup costs more per request.
    pub cpu_ratio: Option<f64>,
}

/// Every pair of [`PAIRS`] at every rate both of its setups were measured at, in the order
/// the setup's rows are.
pub fn compare(rows: &[Row]) -> Vec<Pair> {
    let mut pairs = Vec::new();
    for (setup, baseline, what) in PAIRS {
        for ours in rows.iter().filter(|r| r.setup == setup) {
            let Some(theirs) = rows
                .iter()
                .find(|r| r.setup == baseline && r.rate == ours.rate)
            else {
                continue;
            };
            let p = |row: &Row, f: fn(&super::Percentiles) -> f64| row.latency_ms.as_ref().map(f);
            let (p99, base_p99) = (p(ours, |l| l.p99), p(theirs, |l| l.p99));
            let (cpu, base_cpu) = (ours.cpu_per_10k_total, theirs.cpu_per_10k_total);
            pairs.push(Pair {
                setup: setup.to_string(),
                baseline: baseline.to_string(),
                what: what.to_string(),
                rate: ours.rate,
                p50_ms: p(ours, |l| l.p50),
                baseline_p50_ms: p(theirs, |l| l.p50),
                p99_ms: p99,
                baseline_p99_ms: base_p99,
                p99_diff_ms: p99.zip(base_p99).map(|(a, b)| super::round_ms(a - b)),
                cpu_per_10k: cpu,
                baseline_cpu_per_10k: base_cpu,
                cpu_ratio: cpu.zip(base_cpu.filter(|&b| b > 0.0)).map(|(a, b)| a / b),
            });
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::super::tests::{row, with_latency};
    use super::*;

    #[test]
    fn pairs_at_the_rates_both_ran() {
        let rows = [
            with_latency(row("weft-2-jwt", 1000, 1.6), 0.3, 0.5),
            with_latency(row("weft-2-authz", 1000, 2.0), 0.35, 0.6),
            with_latency(row("weft-2-mtls", 1000, 1.5), 0.3, 0.5),
            // No baseline at 5000: no pair.
            with_latency(row("weft-2-authz", 5000, 1.2), 0.3, 0.9),
            with_latency(row("envoy-2-mtls", 1000, 4.0), 0.5, 0.8),
        ];
        let pairs = compare(&rows);
        assert_eq!(pairs.len(), 3);
        let policy = &pairs[0];
        assert_eq!(
            (policy.setup.as_str(), policy.baseline.as_str(), policy.rate),
            ("weft-2-authz", "weft-2-jwt", 1000)
        );
        assert_eq!(policy.cpu_ratio, Some(2.0 / 1.6));
        assert_eq!(policy.p99_diff_ms, Some(0.1));
        assert_eq!(
            (policy.p50_ms, policy.baseline_p50_ms),
            (Some(0.35), Some(0.3))
        );
        let token = &pairs[1];
        assert_eq!(
            (token.setup.as_str(), token.baseline.as_str()),
            ("weft-2-jwt", "weft-2-mtls")
        );
        assert_eq!(token.cpu_ratio, Some(1.6 / 1.5));
        let hop = &pairs[pairs.len() - 1];
        assert_eq!(hop.baseline, "envoy-2-mtls");
        assert_eq!(hop.cpu_ratio, Some(1.5 / 4.0));
        assert_eq!(hop.p99_diff_ms, Some(-0.3));
    }
}
