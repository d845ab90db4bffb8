//! One scrape of one proxy, reduced to what `weft stat` computes with: per series (direction,
//! Service, route, source and destination), the requests, the failures and the latency
//! buckets. Response codes are folded into "failed or not" here, so a sample stays small.

use std::collections::HashMap;

use super::parse::{self, Line};

/// What tells one series apart.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub direction: String,
    pub service: String,
    pub route: String,
    pub source_principal: String,
    /// `namespace/name`, or `unknown`.
    pub destination: String,
    pub destination_principal: String,
}

/// Counters of one series (or of several, summed).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counts {
    pub requests: f64,
    /// 5xx answers, and gRPC calls that ended with a status other than OK.
    pub failures: f64,
    /// Cumulative latency buckets: (upper bound in seconds, count), by ascending bound.
    pub buckets: Vec<(f64, f64)>,
}

impl Counts {
    pub fn add(&mut self, other: &Counts) {
        self.requests += other.requests;
        self.failures += other.failures;
        for (le, n) in &other.buckets {
            match self.buckets.iter_mut().find(|(l, _)| l == le) {
                Some((_, m)) => *m += n,
                None => self.buckets.push((*le, *n)),
            }
        }
        self.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    }

    /// `self - earlier`; a counter that went down was reset (the proxy restarted), and then
    /// all of it is new.
    pub fn since(&self, earlier: Option<&Counts>) -> Counts {
        let Some(e) = earlier else {
            return self.clone();
        };
        if self.requests < e.requests {
            return self.clone();
        }
        let buckets = self
            .buckets
            .iter()
            .map(|(le, n)| {
                let before = e
                    .buckets
                    .iter()
                    .find(|(l, _)| l == le)
                    .map_or(0.0, |(_, m)| *m);
                (*le, (n - before).max(0.0))
            })
            .collect();
        Counts {
            requests: self.requests - e.requests,
            failures: (self.failures - e.failures).max(0.0),
            buckets,
        }
    }
}

/// One proxy's series at one moment.
#[derive(Debug, Default)]
pub struct Sample {
    /// Unix time, in seconds.
    pub at: f64,
    pub series: HashMap<Key, Counts>,
}

impl Sample {
    /// Reduces a `/metrics` text taken at `at`.
    pub fn from_metrics(text: &str, at: f64) -> Sample {
        let mut series: HashMap<Key, Counts> = HashMap::new();
        for l in parse::golden(text) {
            let Some(key) = key_of(&l) else { continue };
            let counts = series.entry(key).or_default();
            if l.name == parse::REQUESTS {
                counts.requests += l.value;
                if failed(&l) {
                    counts.failures += l.value;
                }
            } else if let Some(le) = l.labels.get("le").and_then(|le| parse_le(le)) {
                counts.buckets.push((le, l.value));
            }
        }
        for c in series.values_mut() {
            c.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        Sample { at, series }
    }
}

fn key_of(l: &Line) -> Option<Key> {
    let get = |k: &str| l.labels.get(k).cloned().unwrap_or_else(|| "unknown".into());
    let workload = get("destination_workload");
    let namespace = get("destination_workload_namespace");
    Some(Key {
        direction: l.labels.get("direction")?.clone(),
        service: get("destination_service"),
        route: get("route"),
        source_principal: get("source_principal"),
        destination: if workload == "unknown" {
            workload
        } else {
            format!("{namespace}/{workload}")
        },
        destination_principal: get("destination_principal"),
    })
}

/// Whether a request series counts failures: 5xx, or a gRPC status other than OK.
pub(crate) fn failed(l: &Line) -> bool {
    let code: u16 = l
        .labels
        .get("response_code")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let grpc = l
        .labels
        .get("grpc_status")
        .map(String::as_str)
        .unwrap_or("");
    code >= 500 || (!grpc.is_empty() && grpc != "0")
}

fn parse_le(le: &str) -> Option<f64> {
    if le == "+Inf" {
        Some(f64::INFINITY)
    } else {
        le.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LABELS: &str = r#"direction="outbound",destination_service="shop/reviews",route="shop/reviews",source_principal="unknown",connection_security_policy="unknown",destination_workload="reviews-v1",destination_workload_namespace="shop",destination_principal="spiffe://td/ns/shop/sa/reviews""#;

    fn metrics(ok: u32, failed: u32, grpc_failed: u32) -> String {
        format!(
            "weft_requests_total{{{LABELS},response_code=\"200\",grpc_status=\"\"}} {ok}\n\
             weft_requests_total{{{LABELS},response_code=\"503\",grpc_status=\"\"}} {failed}\n\
             weft_requests_total{{{LABELS},response_code=\"200\",grpc_status=\"14\"}} {grpc_failed}\n\
             weft_request_duration_seconds_bucket{{{LABELS},le=\"0.001\"}} {ok}\n\
             weft_request_duration_seconds_bucket{{{LABELS},le=\"+Inf\"}} {}\n",
            ok + failed + grpc_failed
        )
    }

    #[test]
    fn failures_are_5xx_and_grpc_errors_and_deltas_survive_resets() {
        let a = Sample::from_metrics(&metrics(10, 2, 1), 100.0);
        let key = Key {
            direction: "outbound".into(),
            service: "shop/reviews".into(),
            route: "shop/reviews".into(),
            source_principal: "unknown".into(),
            destination: "shop/reviews-v1".into(),
            destination_principal: "spiffe://td/ns/shop/sa/reviews".into(),
        };
        let c = &a.series[&key];
        assert_eq!((c.requests, c.failures), (13.0, 3.0));
        assert_eq!(c.buckets, vec![(0.001, 10.0), (f64::INFINITY, 13.0)]);
        let b = Sample::from_metrics(&metrics(30, 2, 1), 110.0);
        let d = b.series[&key].since(a.series.get(&key));
        assert_eq!((d.requests, d.failures), (20.0, 0.0));
        assert_eq!(d.buckets, vec![(0.001, 20.0), (f64::INFINITY, 20.0)]);
        // The proxy restarted: its counters started again from zero.
        let restarted = Sample::from_metrics(&metrics(4, 0, 0), 120.0);
        let d = restarted.series[&key].since(b.series.get(&key));
        assert_eq!(d.requests, 4.0);
    }
}
