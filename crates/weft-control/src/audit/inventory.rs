//! The report's inventory, from the ledger's facts and the mesh's resources: the calls per
//! edge (who called which Service, and callers from outside the mesh), the Services,
//! namespaces, hosts and protocols that carried traffic, the calls that crossed hosts, and
//! the window's two halves (growth). Every count carries the PromQL that checks it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{json, Value};
use weft_api::model::Model;
use weft_api::view::Protocol;

use super::facts::Fact;
use super::ledger::Window;
use super::report::{number, sum};

/// What traffic the window saw, and where.
pub(super) struct Inventory {
    pub services_with_traffic: BTreeSet<String>,
    pub namespaces: BTreeSet<String>,
    pub protocols: BTreeMap<&'static str, usize>,
    /// The hosts of workloads that sent or took in requests.
    pub hosts: BTreeSet<String>,
    /// Calls whose caller and callee run on different hosts.
    pub cross_host: f64,
    /// Calls in the window's first and second half.
    pub first: f64,
    pub second: f64,
    pub edge_rows: Vec<Value>,
    /// The edge (of at least 20 calls) with the largest share of failures.
    pub worst_edge: Option<(String, f64)>,
}

/// The inventory of the ledger's window `w` (`window` as written, e.g. `24h`).
pub(super) fn observe(model: &Model, w: &Window, window: &str) -> Inventory {
    let t = &w.totals;
    let q = |selector: &str| format!("sum(increase(weft_requests_total{{{selector}}}[{window}]))");
    let mut edges: BTreeMap<(String, String), (f64, f64, f64)> = BTreeMap::new();
    let mut dest_services: BTreeSet<String> = BTreeSet::new();
    let mut namespaces: BTreeSet<String> = BTreeSet::new();
    for (f, n) in t {
        match f {
            Fact::Call {
                source,
                service,
                mtls,
                failed,
                ..
            } => {
                let e = edges.entry((source.clone(), service.clone())).or_default();
                e.0 += n;
                if *failed {
                    e.1 += n;
                }
                if *mtls {
                    e.2 += n;
                }
                dest_services.insert(service.clone());
                namespaces.extend(source.split('/').next().map(str::to_string));
            }
            Fact::Received {
                workload,
                source_principal,
                mtls,
                failed,
            } if source_principal == "unknown" => {
                let e = edges
                    .entry(("(outside the mesh)".into(), workload.clone()))
                    .or_default();
                e.0 += n;
                if *failed {
                    e.1 += n;
                }
                if *mtls {
                    e.2 += n;
                }
            }
            _ => {}
        }
    }
    // Requests each workload took in, and each workload's host: looked up per fact below.
    let mut received_by: HashMap<&str, f64> = HashMap::new();
    for (f, n) in t {
        if let Fact::Received { workload, .. } = f {
            *received_by.entry(workload.as_str()).or_default() += n;
        }
    }
    let received = |node: &str| received_by.get(node).copied().unwrap_or(0.0);
    let host_by: HashMap<String, String> = model
        .workloads
        .iter()
        .map(|w| {
            let host = w.view.network.clone();
            (w.view.node(), host.unwrap_or_else(|| "this host".into()))
        })
        .collect();
    let host_of = |n: &str| host_by.get(n).map_or("this host", String::as_str);
    let mut services_with_traffic: BTreeSet<String> = dest_services.clone();
    let mut protocols: BTreeMap<&'static str, usize> = BTreeMap::new();
    for ((ns, name), svc) in &model.services {
        let id = format!("{ns}/{name}");
        let took = model
            .selected(&svc.namespace, &svc.selector)
            .any(|w| received(&w.view.node()) > 0.0);
        if took {
            services_with_traffic.insert(id.clone());
        }
        if services_with_traffic.contains(&id) {
            namespaces.insert(ns.clone());
            for p in &svc.ports {
                *protocols.entry(protocol_name(p.protocol)).or_default() += 1;
            }
        }
    }
    for (f, n) in t {
        if let Fact::Detected { protocol } = f {
            if *n > 0.0 && protocol != "unknown" {
                protocols.entry(detected_name(protocol)).or_default();
            }
        }
    }
    let hosts: BTreeSet<String> = model
        .workloads
        .iter()
        .map(|w| w.view.node())
        .filter(|n| received(n) > 0.0 || edges.keys().any(|(s, _)| s == n))
        .map(|n| host_of(&n).to_string())
        .collect();
    let cross_host: f64 = sum(t, |f| match f {
        Fact::Call {
            source,
            destination,
            ..
        } => destination != "unknown" && host_of(source) != host_of(destination),
        _ => false,
    });
    let calls = |m: &BTreeMap<Fact, f64>| sum(m, |f| matches!(f, Fact::Call { .. }));
    let (first, second) = (calls(&w.first_half), calls(&w.second_half));
    let mut worst_edge: Option<(String, f64)> = None;
    let edge_rows: Vec<Value> = edges
        .iter()
        .map(|((source, dest), (n, failed, mtls))| {
            let share = if *n > 0.0 { failed / n } else { 0.0 };
            if *n >= 20.0 && worst_edge.as_ref().is_none_or(|(_, s)| share > *s) {
                worst_edge = Some((format!("{source} → {dest}"), share));
            }
            let promql = if source.starts_with('(') {
                let (ns, name) = dest.split_once('/').unwrap_or(("", dest));
                q(&format!("namespace=\"{ns}\",workload=\"{name}\",direction=\"inbound\",source_principal=\"unknown\""))
            } else {
                let (ns, name) = source.split_once('/').unwrap_or(("", source));
                q(&format!("namespace=\"{ns}\",workload=\"{name}\",direction=\"outbound\",destination_service=\"{dest}\""))
            };
            json!({
                "source": source,
                "destination": dest,
                "requests": number(*n, promql),
                "failed": failed,
                "mtlsShare": if *n > 0.0 { mtls / n } else { 0.0 },
            })
        })
        .collect();
    Inventory {
        services_with_traffic,
        namespaces,
        protocols,
        hosts,
        cross_host,
        first,
        second,
        edge_rows,
        worst_edge,
    }
}

impl Inventory {
    /// The report's `inventory` section.
    pub fn to_json(
        &self,
        model: &Model,
        meshed: usize,
        covered_seconds: u64,
        window: &str,
    ) -> Value {
        let calls =
            format!("sum(increase(weft_requests_total{{direction=\"outbound\"}}[{window}]))");
        json!({
            "services": model.services.len(),
            "servicesWithTraffic": self.services_with_traffic,
            "workloads": model.workloads.len(),
            "meshedWorkloads": meshed,
            "hosts": self.hosts,
            "namespaces": self.namespaces,
            "protocols": self.protocols,
            "calls": number(self.first + self.second, calls),
            // Halves of five-minute buckets say something only past two of them.
            "growth": if covered_seconds >= 2 * super::ledger::BUCKET.as_secs() {
                json!({"firstHalf": self.first, "secondHalf": self.second})
            } else {
                Value::Null
            },
            "edges": self.edge_rows,
        })
    }
}

fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Http1 => "http",
        Protocol::Http2 => "http2",
        Protocol::Grpc => "grpc",
        Protocol::Tcp => "tcp",
        Protocol::Detect => "detected",
    }
}

fn detected_name(p: &str) -> &'static str {
    match p {
        "http1" | "http" => "http",
        "http2" | "h2c" => "http2",
        "tls" => "tls",
        _ => "tcp",
    }
}
