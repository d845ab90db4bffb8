//! `GET /stat`'s answer: golden signals per Service (its workloads' inbound side), per route
//! (the callers' outbound side), per workload, and per edge (caller → callee, with the
//! identities each proved and whether the call was mutual TLS), over one window.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Value};
use weft_api::model::Model;

use super::sample::{Counts, Key, Sample};
use super::window::Golden;

/// A proxy's latest sample and the one a window before it.
pub struct Span {
    pub latest: Arc<Sample>,
    pub earlier: Option<Arc<Sample>>,
}

impl Span {
    fn seconds(&self) -> f64 {
        self.earlier
            .as_ref()
            .map_or(0.0, |e| (self.latest.at - e.at).max(0.0))
    }

    /// Counter deltas over the span, by series; nothing when there is no earlier sample.
    fn deltas(&self) -> HashMap<&Key, Counts> {
        let Some(earlier) = &self.earlier else {
            return HashMap::new();
        };
        self.latest
            .series
            .iter()
            .map(|(k, c)| (k, c.since(earlier.series.get(k))))
            .collect()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    name: String,
    #[serde(flatten)]
    golden: Golden,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ServiceRow {
    name: String,
    /// The meshed workloads it selects, whose inbound side these numbers are.
    workloads: Vec<String>,
    #[serde(flatten)]
    golden: Golden,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RouteRow {
    service: String,
    route: String,
    #[serde(flatten)]
    golden: Golden,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Edge {
    source: String,
    source_principal: String,
    destination: String,
    destination_principal: String,
    mtls: bool,
    #[serde(flatten)]
    golden: Golden,
}

/// The report over `window_seconds`, from each proxy's span (or why it has none).
pub fn build(
    model: &Model,
    spans: &HashMap<String, Result<Span, String>>,
    window_seconds: f64,
) -> Value {
    let mut unreachable = Vec::new();
    let mut per_node: BTreeMap<&str, (HashMap<&Key, Counts>, f64)> = BTreeMap::new();
    for (node, span) in spans {
        match span {
            Ok(s) => {
                per_node.insert(node, (s.deltas(), s.seconds()));
            }
            Err(e) => unreachable.push(json!({"workload": node, "error": e})),
        }
    }
    unreachable.sort_by(|a, b| a["workload"].as_str().cmp(&b["workload"].as_str()));
    // The window actually covered: the shortest proxy span.
    let covered = per_node
        .values()
        .map(|(_, s)| *s)
        .fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.min(s))))
        .unwrap_or(0.0);
    let seconds = if covered > 0.0 {
        covered
    } else {
        window_seconds
    };

    let inbound = |node: &str| -> Counts {
        let mut sum = Counts::default();
        if let Some((d, _)) = per_node.get(node) {
            for (k, c) in d {
                if k.direction == "inbound" {
                    sum.add(c);
                }
            }
        }
        sum
    };

    let mut services = Vec::new();
    for ((ns, name), svc) in &model.services {
        let mut sum = Counts::default();
        let mut selected_workloads = Vec::new();
        for w in model.selected(&svc.namespace, &svc.selector) {
            if !w.view.meshed {
                continue;
            }
            let node = format!("{}/{}", w.view.namespace, w.view.name);
            sum.add(&inbound(&node));
            selected_workloads.push(node);
        }
        services.push(ServiceRow {
            name: format!("{ns}/{name}"),
            workloads: selected_workloads,
            golden: Golden::of(&sum, seconds),
        });
    }

    let mut routes: BTreeMap<(String, String), Counts> = BTreeMap::new();
    let mut edges: BTreeMap<(String, String, String), Counts> = BTreeMap::new();
    for (node, (deltas, _)) in &per_node {
        for (k, c) in deltas {
            if k.direction == "outbound" {
                routes
                    .entry((k.service.clone(), k.route.clone()))
                    .or_default()
                    .add(c);
                edges
                    .entry((
                        node.to_string(),
                        k.destination.clone(),
                        k.destination_principal.clone(),
                    ))
                    .or_default()
                    .add(c);
            } else if k.source_principal == "unknown" {
                // A caller without a proxy shows only on the callee's side.
                edges
                    .entry((
                        "(outside the mesh)".into(),
                        node.to_string(),
                        "unknown".into(),
                    ))
                    .or_default()
                    .add(c);
            }
        }
    }
    let principal_of = |node: &str| -> String {
        model
            .workloads
            .iter()
            .find(|w| format!("{}/{}", w.view.namespace, w.view.name) == node)
            .map_or_else(
                || "unknown".to_string(),
                |w| {
                    format!(
                        "spiffe://{}/ns/{}/sa/{}",
                        model.mesh.trust_domain, w.view.namespace, w.view.service_account
                    )
                },
            )
    };
    let workloads: Vec<Row> = per_node
        .keys()
        .map(|node| Row {
            name: node.to_string(),
            golden: Golden::of(&inbound(node), seconds),
        })
        .collect();
    let routes: Vec<RouteRow> = routes
        .into_iter()
        .map(|((service, route), c)| RouteRow {
            service,
            route,
            golden: Golden::of(&c, seconds),
        })
        .collect();
    let edges: Vec<Edge> = edges
        .into_iter()
        .map(|((source, destination, destination_principal), c)| Edge {
            source_principal: principal_of(&source),
            mtls: destination_principal != "unknown",
            source,
            destination,
            destination_principal,
            golden: Golden::of(&c, seconds),
        })
        .collect();
    json!({
        "windowSeconds": window_seconds,
        "coveredSeconds": covered,
        "services": services,
        "routes": routes,
        "workloads": workloads,
        "edges": edges,
        "unreachable": unreachable,
    })
}
