//! What the audit keeps of a proxy's counters: each `weft_*_total` series it reads, reduced to
//! a [`Fact`] about the mesh (a call from one workload to another, a request a workload took
//! in and how, a retry on a route, a deny by a policy...). Facts are keyed by the mesh's own
//! names (workloads, Services, routes, policies), never by response codes or addresses, so
//! their number grows with the mesh, not with its traffic.
//!
//! Every fact also names the Prometheus expression that counts the same thing, so that each
//! number the audit reports can be checked against the proxies' own counters.

use serde::{Deserialize, Serialize};

use crate::stats::parse::Line;

/// One thing the mesh did, counted.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(
    tag = "fact",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Fact {
    /// Requests a meshed workload sent (its proxy's outbound side), by where they went.
    Call {
        /// `namespace/name` of the calling workload.
        source: String,
        service: String,
        route: String,
        /// `namespace/name` of the workload that answered, or `unknown`.
        destination: String,
        /// Whether the answering proxy proved an identity (mutual TLS).
        mtls: bool,
        failed: bool,
    },
    /// Requests a workload's proxy took in (its inbound side), by who sent them and how.
    Received {
        workload: String,
        /// The caller's SPIFFE id, or `unknown` (no mutual TLS).
        source_principal: String,
        mtls: bool,
        failed: bool,
    },
    /// Tries sent again on a route.
    Retries { service: String, route: String },
    /// Requests on a route whose first try failed and a retry succeeded.
    RetrySuccesses { service: String, route: String },
    /// Retries not sent: the budget was spent, or the body could not be replayed.
    RetriesRefused { service: String, reason: String },
    /// Endpoints ejected by outlier detection.
    Ejections { service: String, reason: String },
    /// Authorization decisions: `allowed`, `denied` or `audited`, by deciding policy.
    Authz { policy: String, result: String },
    /// Requests refused by a local rate limit.
    RateLimited { policy: String, limit: String },
    /// Faults injected.
    Faults { fault: String, kind: String },
    /// Requests refused because a connection-pool limit was reached.
    Overflows { service: String, limit: String },
    /// Answers the proxies made themselves (timeouts among them), by reason.
    ProxyErrors { direction: String, reason: String },
    /// Protocols detected on ports that declare none.
    Detected { protocol: String },
    /// TCP connections opened (opaque traffic, and HTTP's connections), by destination.
    Connections {
        source: String,
        direction: String,
        service: String,
    },
}

impl Fact {
    /// The fact `line` (a series of the proxy of workload `node`) counts, if the audit keeps it.
    pub fn of(node: &str, line: &Line) -> Option<Fact> {
        let get = |k: &str| {
            line.labels
                .get(k)
                .cloned()
                .unwrap_or_else(|| "unknown".into())
        };
        let failed = || crate::stats::sample::failed(line);
        Some(match line.name.as_str() {
            "weft_requests_total" => match line.labels.get("direction")?.as_str() {
                "outbound" => Fact::Call {
                    source: node.to_string(),
                    service: get("destination_service"),
                    route: get("route"),
                    destination: workload(
                        &get("destination_workload_namespace"),
                        &get("destination_workload"),
                    ),
                    mtls: get("destination_principal") != "unknown",
                    failed: failed(),
                },
                "inbound" => Fact::Received {
                    workload: node.to_string(),
                    source_principal: get("source_principal"),
                    mtls: get("connection_security_policy") == "mutual_tls",
                    failed: failed(),
                },
                _ => return None,
            },
            "weft_retries_total" => Fact::Retries {
                service: get("destination_service"),
                route: get("route"),
            },
            "weft_retry_successes_total" => Fact::RetrySuccesses {
                service: get("destination_service"),
                route: get("route"),
            },
            "weft_retries_refused_total" => Fact::RetriesRefused {
                service: get("destination_service"),
                reason: get("reason"),
            },
            "weft_outlier_ejections_total" => Fact::Ejections {
                service: get("destination_service"),
                reason: get("reason"),
            },
            "weft_authz_decisions_total" => Fact::Authz {
                policy: get("policy"),
                result: get("result"),
            },
            "weft_rate_limited_total" => Fact::RateLimited {
                policy: get("policy"),
                limit: get("limit"),
            },
            "weft_faults_injected_total" => Fact::Faults {
                fault: get("fault"),
                kind: get("kind"),
            },
            "weft_overflows_total" => Fact::Overflows {
                service: get("destination_service"),
                limit: get("limit"),
            },
            "weft_proxy_errors_total" => Fact::ProxyErrors {
                direction: get("direction"),
                reason: get("reason"),
            },
            "weft_protocol_detections_total" => Fact::Detected {
                protocol: get("protocol"),
            },
            "weft_tcp_connections_opened_total" => Fact::Connections {
                source: node.to_string(),
                direction: get("direction"),
                service: get("destination_service"),
            },
            _ => return None,
        })
    }

    /// The Prometheus expression that counts this fact over `window` (e.g. `24h`), with the
    /// labels Weft's file service discovery gives every proxy (`namespace`, `workload`).
    pub fn promql(&self, window: &str) -> String {
        let (metric, labels): (&str, Vec<(&str, String)>) = match self {
            Fact::Call {
                source,
                service,
                route,
                destination,
                mtls,
                failed,
            } => {
                let (dns, dname) = split(destination);
                let mut l = target(source);
                l.extend([
                    ("direction", "outbound".to_string()),
                    ("destination_service", service.clone()),
                    ("route", route.clone()),
                    ("destination_workload_namespace", dns),
                    ("destination_workload", dname),
                ]);
                let principal = if *mtls { "!=" } else { "=" };
                return requests(
                    &l,
                    &format!("destination_principal{principal}\"unknown\""),
                    *failed,
                    window,
                );
            }
            Fact::Received {
                workload,
                source_principal,
                mtls,
                failed,
            } => {
                let mut l = target(workload);
                l.extend([
                    ("direction", "inbound".to_string()),
                    ("source_principal", source_principal.clone()),
                    (
                        "connection_security_policy",
                        if *mtls { "mutual_tls" } else { "none" }.to_string(),
                    ),
                ]);
                return requests(&l, "", *failed, window);
            }
            Fact::Retries { service, route } => (
                "weft_retries_total",
                vec![
                    ("destination_service", service.clone()),
                    ("route", route.clone()),
                ],
            ),
            Fact::RetrySuccesses { service, route } => (
                "weft_retry_successes_total",
                vec![
                    ("destination_service", service.clone()),
                    ("route", route.clone()),
                ],
            ),
            Fact::RetriesRefused { service, reason } => (
                "weft_retries_refused_total",
                vec![
                    ("destination_service", service.clone()),
                    ("reason", reason.clone()),
                ],
            ),
            Fact::Ejections { service, reason } => (
                "weft_outlier_ejections_total",
                vec![
                    ("destination_service", service.clone()),
                    ("reason", reason.clone()),
                ],
            ),
            Fact::Authz { policy, result } => (
                "weft_authz_decisions_total",
                vec![("policy", policy.clone()), ("result", result.clone())],
            ),
            Fact::RateLimited { policy, limit } => (
                "weft_rate_limited_total",
                vec![("policy", policy.clone()), ("limit", limit.clone())],
            ),
            Fact::Faults { fault, kind } => (
                "weft_faults_injected_total",
                vec![("fault", fault.clone()), ("kind", kind.clone())],
            ),
            Fact::Overflows { service, limit } => (
                "weft_overflows_total",
                vec![
                    ("destination_service", service.clone()),
                    ("limit", limit.clone()),
                ],
            ),
            Fact::ProxyErrors { direction, reason } => (
                "weft_proxy_errors_total",
                vec![("direction", direction.clone()), ("reason", reason.clone())],
            ),
            Fact::Detected { protocol } => (
                "weft_protocol_detections_total",
                vec![("protocol", protocol.clone())],
            ),
            Fact::Connections {
                source,
                direction,
                service,
            } => {
                let mut l = target(source);
                l.extend([
                    ("direction", direction.clone()),
                    ("destination_service", service.clone()),
                ]);
                ("weft_tcp_connections_opened_total", l)
            }
        };
        format!("sum(increase({}[{window}]))", selector(metric, &labels))
    }
}

/// The requests of the series `labels` (and the `extra` matcher) over `window`: the failed
/// ones (5xx, or a gRPC status other than OK), or the others.
fn requests(labels: &[(&str, String)], extra: &str, failed: bool, window: &str) -> String {
    let base = selector("weft_requests_total", labels);
    let with = |matchers: &str| {
        let mut all = base[..base.len() - 1].to_string();
        for m in [extra, matchers] {
            if !m.is_empty() {
                all.push(',');
                all.push_str(m);
            }
        }
        format!("sum(increase({all}}}[{window}]))")
    };
    if failed {
        format!(
            "{} + {}",
            with("response_code=~\"5..\""),
            with("response_code!~\"5..\",grpc_status!~\"|0\"")
        )
    } else {
        with("response_code!~\"5..\",grpc_status=~\"|0\"")
    }
}

fn workload(namespace: &str, name: &str) -> String {
    if name == "unknown" {
        name.to_string()
    } else {
        format!("{namespace}/{name}")
    }
}

fn split(node: &str) -> (String, String) {
    match node.split_once('/') {
        Some((ns, name)) => (ns.to_string(), name.to_string()),
        None => ("unknown".into(), node.to_string()),
    }
}

/// The target labels of workload `node`'s proxy.
fn target(node: &str) -> Vec<(&'static str, String)> {
    let (ns, name) = split(node);
    vec![("namespace", ns), ("workload", name)]
}

fn selector(metric: &str, labels: &[(&str, String)]) -> String {
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("{metric}{{{}}}", inner.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::parse;

    #[test]
    fn request_series_become_calls_and_receipts() {
        let out = parse::line(r#"weft_requests_total{direction="outbound",destination_service="shop/reviews",route="shop/reviews",source_principal="unknown",connection_security_policy="unknown",destination_workload="reviews-v2",destination_workload_namespace="shop",destination_principal="spiffe://cluster.local/ns/shop/sa/reviews",response_code="503",grpc_status=""} 7"#).unwrap();
        let fact = Fact::of("shop/frontend", &out).unwrap();
        assert_eq!(
            fact,
            Fact::Call {
                source: "shop/frontend".into(),
                service: "shop/reviews".into(),
                route: "shop/reviews".into(),
                destination: "shop/reviews-v2".into(),
                mtls: true,
                failed: true,
            }
        );
        let q = fact.promql("24h");
        assert!(q.starts_with("sum(increase(weft_requests_total{namespace=\"shop\",workload=\"frontend\",direction=\"outbound\""), "{q}");
        assert!(
            q.contains(",destination_principal!=\"unknown\",response_code=~\"5..\"}[24h])) + sum("),
            "{q}"
        );
        assert!(q.ends_with(",grpc_status!~\"|0\"}[24h]))"), "{q}");

        let inb = parse::line(r#"weft_requests_total{direction="inbound",destination_service="shop/ratings",route="",source_principal="unknown",connection_security_policy="none",destination_workload="ratings",destination_workload_namespace="shop",destination_principal="unknown",response_code="200",grpc_status="0"} 3"#).unwrap();
        assert_eq!(
            Fact::of("shop/ratings", &inb),
            Some(Fact::Received {
                workload: "shop/ratings".into(),
                source_principal: "unknown".into(),
                mtls: false,
                failed: false,
            })
        );
        let other = parse::line("process_cpu_seconds_total 4").unwrap();
        assert_eq!(Fact::of("shop/ratings", &other), None);
    }

    #[test]
    fn label_values_are_escaped_in_expressions() {
        let f = Fact::Authz {
            policy: "ns/a\"b".into(),
            result: "denied".into(),
        };
        assert_eq!(
            f.promql("1h"),
            r#"sum(increase(weft_authz_decisions_total{policy="ns/a\"b",result="denied"}[1h]))"#
        );
    }
}
