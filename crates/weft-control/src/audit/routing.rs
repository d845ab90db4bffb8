//! The audit's view of routing: which routes split traffic or match headers, and whether
//! that moved traffic to more than one backend, counted per backend Service from the calls
//! its workloads answered.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use weft_api::model::{Model, RouteModel};

use super::facts::Fact;
use super::report::number;

/// Routes with a split or header matches: how many moved traffic to more than one backend,
/// how many sent it all one way, and a row per route.
pub fn routing(model: &Model, t: &BTreeMap<Fact, f64>, window: &str) -> (usize, usize, Vec<Value>) {
    let (mut moved, mut unused, mut rows) = (0, 0, Vec::new());
    for r in &model.routes {
        let split = r
            .rules
            .iter()
            .any(|rule| rule.backends.iter().filter(|b| b.weight > 0).count() > 1);
        let headers = r
            .rules
            .iter()
            .any(|rule| rule.matches.iter().any(|(m, _)| !m.headers.is_empty()));
        if !split && !headers {
            continue;
        }
        let by_backend = backend_counts(model, r, t);
        let carried: f64 = by_backend.values().map(|(n, _)| n).sum();
        let hit = by_backend.values().filter(|(n, _)| *n > 0.0).count();
        if hit > 1 {
            moved += 1;
        } else if carried > 0.0 {
            unused += 1;
        }
        let id = format!("{}/{}", r.namespace, r.name);
        rows.push(json!({
            "route": id,
            "split": split,
            "headerMatches": headers,
            "movedTraffic": hit > 1,
            "byBackend": by_backend.iter().map(|(b, (n, workloads))| json!({
                "backend": b,
                "requests": number(*n, format!("sum(increase(weft_requests_total{{direction=\"outbound\",route=\"{id}\",destination_workload=~\"{}\"}}[{window}]))", workloads.join("|"))),
            })).collect::<Vec<_>>(),
        }));
    }
    (moved, unused, rows)
}

/// Calls on route `r` by the backend Service whose workloads answered them, with those
/// workloads' names.
fn backend_counts(
    model: &Model,
    r: &RouteModel,
    t: &BTreeMap<Fact, f64>,
) -> BTreeMap<String, (f64, Vec<String>)> {
    let id = format!("{}/{}", r.namespace, r.name);
    let mut out: BTreeMap<String, (f64, Vec<String>)> = BTreeMap::new();
    let mut members: Vec<(String, Vec<String>)> = Vec::new();
    for b in r.rules.iter().flat_map(|rule| rule.backends.iter()) {
        let key = format!("{}/{}", b.backend.namespace, b.backend.service);
        if out.contains_key(&key) {
            continue;
        }
        let nodes: Vec<String> = model
            .services
            .get(&(b.backend.namespace.clone(), b.backend.service.clone()))
            .map(|s| {
                model
                    .selected(&s.namespace, &s.selector)
                    .map(|w| w.view.node())
                    .collect()
            })
            .unwrap_or_default();
        let names = nodes
            .iter()
            .map(|n| n.rsplit('/').next().unwrap_or(n).to_string())
            .collect();
        out.insert(key.clone(), (0.0, names));
        members.push((key, nodes));
    }
    for (f, n) in t {
        let Fact::Call {
            route, destination, ..
        } = f
        else {
            continue;
        };
        if *route != id && *route != r.name {
            continue;
        }
        if let Some((key, _)) = members
            .iter()
            .find(|(_, nodes)| nodes.contains(destination))
        {
            if let Some(entry) = out.get_mut(key) {
                entry.0 += n;
            }
        }
    }
    out
}
