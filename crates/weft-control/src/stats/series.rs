//! `GET /stat/series?service=NS/NAME` (or `workload=NS/NAME`) `[&window=15m]`: golden metrics
//! over time for the dashboard's charts, one point per scrape interval, from the history
//! `weft stat` keeps ([`super::KEEP`]). A Service's points sum its meshed workloads' inbound
//! sides, as `weft stat` does.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use serde_json::{json, Value};

use super::sample::{Counts, Sample};
use super::window::Golden;
use crate::admin::Admin;
use crate::http_response::{query, respond, text};

pub async fn handle<B>(admin: &Admin, req: &Request<B>) -> Response<Full<Bytes>> {
    let window = match query(req, "window").map(|w| weft_api::duration::parse(&w)) {
        None => Duration::from_secs(15 * 60),
        Some(Ok(w)) if w > Duration::ZERO && w <= super::KEEP => w,
        Some(_) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("window: more than 0, at most {:?}\n", super::KEEP),
            )
        }
    };
    let published = admin.store.current();
    let model = &published.model;
    let nodes: Vec<String> = match (query(req, "service"), query(req, "workload")) {
        (Some(s), None) => {
            let Some((ns, name)) = s.split_once('/') else {
                return text(StatusCode::BAD_REQUEST, "service: namespace/name\n".into());
            };
            let Some(svc) = model.services.get(&(ns.to_string(), name.to_string())) else {
                return text(StatusCode::NOT_FOUND, format!("no Service {s}\n"));
            };
            model
                .selected(&svc.namespace, &svc.selector)
                .filter(|w| w.view.meshed)
                .map(|w| format!("{}/{}", w.view.namespace, w.view.name))
                .collect()
        }
        (None, Some(w)) => vec![w],
        _ => {
            return text(
                StatusCode::BAD_REQUEST,
                "give service=namespace/name or workload=namespace/name\n".into(),
            )
        }
    };
    let history = admin.stats.samples(&nodes);
    let points = points(&history, window, admin.stats.interval, super::unix_now());
    respond(
        StatusCode::OK,
        "application/json",
        json!({"workloads": nodes, "points": points}).to_string() + "\n",
    )
}

/// One point per `interval` over the `window` before `now`: the inbound requests of every
/// proxy in `history` that grew in it.
pub fn points(
    history: &HashMap<String, Vec<Arc<Sample>>>,
    window: Duration,
    interval: Duration,
    now: f64,
) -> Vec<Value> {
    let step = interval.as_secs_f64().max(1.0);
    let start = now - window.as_secs_f64();
    // Bucket start -> (counts, the longest span a proxy's delta in it covered).
    let mut buckets: BTreeMap<i64, (Counts, f64)> = BTreeMap::new();
    for samples in history.values() {
        for pair in samples.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            if b.at < start {
                continue;
            }
            let mut delta = Counts::default();
            for (k, c) in &b.series {
                if k.direction == "inbound" {
                    delta.add(&c.since(a.series.get(k)));
                }
            }
            let bucket = (b.at / step).floor() as i64;
            let entry = buckets.entry(bucket).or_default();
            entry.0.add(&delta);
            entry.1 = entry.1.max(b.at - a.at);
        }
    }
    buckets
        .into_iter()
        .map(|(bucket, (counts, seconds))| {
            let g = Golden::of(&counts, seconds);
            json!({
                "t": bucket as f64 * step,
                "rps": g.rps,
                "successRate": g.success_rate,
                "p99Ms": g.p99_ms,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: f64, requests: u64, failures: u64) -> Arc<Sample> {
        let text = format!(
            "weft_requests_total{{direction=\"inbound\",destination_service=\"s/a\",route=\"r\",source_principal=\"p\",response_code=\"200\"}} {}\nweft_requests_total{{direction=\"inbound\",destination_service=\"s/a\",route=\"r\",source_principal=\"p\",response_code=\"503\"}} {failures}\n",
            requests - failures
        );
        Arc::new(Sample::from_metrics(&text, at))
    }

    #[test]
    fn points_are_rates_per_interval_summed_over_proxies() {
        let mut history = HashMap::new();
        history.insert(
            "s/a-1".to_string(),
            vec![
                sample(1000.0, 0, 0),
                sample(1010.0, 100, 0),
                sample(1020.0, 300, 20),
            ],
        );
        history.insert(
            "s/a-2".to_string(),
            vec![sample(1001.0, 0, 0), sample(1011.0, 50, 0)],
        );
        let p = points(
            &history,
            Duration::from_secs(60),
            Duration::from_secs(10),
            1025.0,
        );
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(p[0]["t"], 1010.0);
        assert_eq!(p[0]["rps"], 15.0);
        assert_eq!(p[0]["successRate"], 1.0);
        assert_eq!(p[1]["rps"], 20.0);
        assert_eq!(p[1]["successRate"], 0.9);
        // Outside the window: nothing.
        assert!(points(
            &history,
            Duration::from_secs(1),
            Duration::from_secs(10),
            5000.0
        )
        .is_empty());
    }
}
