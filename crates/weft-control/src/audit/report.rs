//! `GET /audit`'s answer: what the mesh observed over a window, section by section (inventory,
//! the capabilities the traffic used, the alternatives, the verdict, the adoption path), from
//! the ledger's facts and the mesh's resources. Every number comes with the Prometheus
//! expression that counts the same thing from the proxies' own counters (`promql`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use weft_api::model::{Model, WorkloadModel};
use weft_api::view::MtlsMode;

use super::facts::Fact;
use super::ledger::Window;
use super::verdict::{self, Observed};

/// A number and the expression that checks it.
pub(super) fn number(value: f64, promql: String) -> Value {
    json!({"value": value, "promql": promql})
}

pub(super) fn sum(w: &BTreeMap<Fact, f64>, keep: impl Fn(&Fact) -> bool) -> f64 {
    // A fold from +0: `Sum` for floats starts at -0, which prints as "-0".
    w.iter()
        .filter(|(f, _)| keep(f))
        .fold(0.0, |total, (_, n)| total + n)
}

/// The report over `w`, the ledger's window `window` (as written, e.g. `24h`).
pub fn build(model: &Model, w: &Window, window: &str, window_seconds: u64) -> Value {
    let t = &w.totals;
    let q = |selector: &str| format!("sum(increase(weft_requests_total{{{selector}}}[{window}]))");

    let inv = super::inventory::observe(model, w, window);

    // mTLS.
    let requests_in = sum(t, |f| matches!(f, Fact::Received { .. }));
    let requests_in_mtls = sum(t, |f| matches!(f, Fact::Received { mtls: true, .. }));
    let plaintext_receivers: BTreeSet<String> = t
        .iter()
        .filter(|(f, n)| **n > 0.0 && matches!(f, Fact::Received { mtls: false, .. }))
        .filter_map(|(f, _)| match f {
            Fact::Received { workload, .. } => Some(workload.clone()),
            _ => None,
        })
        .collect();
    let meshed: Vec<&WorkloadModel> = model.workloads.iter().filter(|w| w.view.meshed).collect();
    let mode = |w: &WorkloadModel| weft_api::compile::workload_mode(model, &w.view);
    let strict: Vec<String> = meshed
        .iter()
        .filter(|w| mode(w) == MtlsMode::Strict)
        .map(|w| w.view.node())
        .collect();
    let permissive: Vec<&WorkloadModel> = meshed
        .iter()
        .copied()
        .filter(|w| mode(w) != MtlsMode::Strict)
        .collect();

    // Routing.
    let (moved, unused, route_rows) = super::routing::routing(model, t, window);

    // Authorization.
    let authz = |result: &str| {
        sum(
            t,
            |f| matches!(f, Fact::Authz { policy, result: r } if policy != "none" && r == result),
        )
    };
    let (allowed, denied, audited) = (authz("allowed"), authz("denied"), authz("audited"));
    let deciding: BTreeSet<String> = t
        .iter()
        .filter(|(_, n)| **n > 0.0)
        .filter_map(|(f, _)| match f {
            Fact::Authz { policy, .. } if policy != "none" => Some(policy.clone()),
            _ => None,
        })
        .collect();
    let idle: Vec<String> = model
        .authz_policies
        .iter()
        .map(|p| format!("{}/{}", p.view.namespace, p.view.name))
        .filter(|p| !deciding.contains(p))
        .collect();

    let counter = |metric: &str, keep: &dyn Fn(&Fact) -> bool, selector: &str| {
        let series = if selector.is_empty() {
            metric.to_string()
        } else {
            format!("{metric}{{{selector}}}")
        };
        number(sum(t, keep), format!("sum(increase({series}[{window}]))"))
    };
    let retries = sum(t, |f| matches!(f, Fact::Retries { .. }));
    let capabilities = vec![
        capability(
            "mtls",
            "mutual TLS",
            requests_in_mtls > 0.0,
            vec![
                (
                    "requests in",
                    number(requests_in, q("direction=\"inbound\"")),
                ),
                (
                    "over mutual TLS",
                    number(
                        requests_in_mtls,
                        q("direction=\"inbound\",connection_security_policy=\"mutual_tls\""),
                    ),
                ),
                (
                    "plaintext",
                    number(
                        requests_in - requests_in_mtls,
                        q("direction=\"inbound\",connection_security_policy=\"none\""),
                    ),
                ),
            ],
            json!({
                "strict": strict,
                "permissive": permissive.iter().map(|w| w.view.node()).collect::<Vec<_>>(),
                "plaintextReceivers": plaintext_receivers,
            }),
        ),
        capability(
            "routing",
            "traffic splits and header routes",
            moved > 0,
            vec![],
            json!({"routes": route_rows}),
        ),
        capability(
            "retries",
            "retries",
            retries > 0.0,
            vec![
                (
                    "retries",
                    counter(
                        "weft_retries_total",
                        &|f| matches!(f, Fact::Retries { .. }),
                        "",
                    ),
                ),
                (
                    "requests that succeeded only on a retry",
                    counter(
                        "weft_retry_successes_total",
                        &|f| matches!(f, Fact::RetrySuccesses { .. }),
                        "",
                    ),
                ),
                (
                    "refused by the budget or the body",
                    counter(
                        "weft_retries_refused_total",
                        &|f| matches!(f, Fact::RetriesRefused { .. }),
                        "",
                    ),
                ),
            ],
            Value::Null,
        ),
        capability(
            "ejections",
            "outlier ejections",
            sum(t, |f| matches!(f, Fact::Ejections { .. })) > 0.0,
            vec![(
                "ejections",
                counter(
                    "weft_outlier_ejections_total",
                    &|f| matches!(f, Fact::Ejections { .. }),
                    "",
                ),
            )],
            Value::Null,
        ),
        capability(
            "authorization",
            "authorization policies",
            allowed + denied + audited > 0.0,
            vec![
                (
                    "allowed by a policy",
                    counter(
                        "weft_authz_decisions_total",
                        &|f| matches!(f, Fact::Authz { policy, result } if policy != "none" && result == "allowed"),
                        "policy!=\"none\",result=\"allowed\"",
                    ),
                ),
                (
                    "denied",
                    counter(
                        "weft_authz_decisions_total",
                        &|f| matches!(f, Fact::Authz { result, .. } if result == "denied"),
                        "result=\"denied\"",
                    ),
                ),
                (
                    "audited",
                    counter(
                        "weft_authz_decisions_total",
                        &|f| matches!(f, Fact::Authz { result, .. } if result == "audited"),
                        "result=\"audited\"",
                    ),
                ),
            ],
            json!({"deciding": deciding, "idle": idle}),
        ),
        capability(
            "rate-limits",
            "local rate limits",
            sum(t, |f| matches!(f, Fact::RateLimited { .. })) > 0.0,
            vec![(
                "refused",
                counter(
                    "weft_rate_limited_total",
                    &|f| matches!(f, Fact::RateLimited { .. }),
                    "",
                ),
            )],
            Value::Null,
        ),
        capability(
            "timeouts",
            "timeouts",
            sum(
                t,
                |f| matches!(f, Fact::ProxyErrors { reason, .. } if reason == "timeout"),
            ) > 0.0,
            vec![(
                "fired",
                counter(
                    "weft_proxy_errors_total",
                    &|f| matches!(f, Fact::ProxyErrors { reason, .. } if reason == "timeout"),
                    "reason=\"timeout\"",
                ),
            )],
            Value::Null,
        ),
        capability(
            "limits",
            "connection-pool limits",
            sum(t, |f| matches!(f, Fact::Overflows { .. })) > 0.0,
            vec![(
                "refused",
                counter(
                    "weft_overflows_total",
                    &|f| matches!(f, Fact::Overflows { .. }),
                    "",
                ),
            )],
            Value::Null,
        ),
        capability(
            "faults",
            "fault injection",
            sum(t, |f| matches!(f, Fact::Faults { .. })) > 0.0,
            vec![(
                "injected",
                counter(
                    "weft_faults_injected_total",
                    &|f| matches!(f, Fact::Faults { .. }),
                    "",
                ),
            )],
            Value::Null,
        ),
    ];

    let observed = Observed {
        services_with_traffic: inv.services_with_traffic.len(),
        namespaces_with_traffic: inv.namespaces.len(),
        hosts_with_traffic: inv.hosts.len(),
        cross_host_calls: inv.cross_host,
        requests_in,
        requests_in_mtls,
        strict_workloads: strict.len(),
        routes_that_moved_traffic: moved,
        routing_configured_unused: unused,
        authz_decisions: allowed + denied + audited,
        authz_denied: denied,
        authz_policies_idle: idle.len(),
        worst_edge: inv.worst_edge.clone(),
        retries,
    };
    let verdict = verdict::decide(&observed);
    let adoption =
        super::adoption::adoption_path(model, t, &permissive, &plaintext_receivers, verdict.answer);
    json!({
        "window": window,
        "windowSeconds": window_seconds,
        "coveredSeconds": w.covered_seconds,
        "inventory": inv.to_json(model, meshed.len(), w.covered_seconds, window),
        "capabilities": capabilities,
        "verdict": verdict,
        "adoptionPath": adoption,
    })
}

fn capability(
    id: &str,
    name: &str,
    used: bool,
    numbers: Vec<(&str, Value)>,
    details: Value,
) -> Value {
    let numbers: Vec<Value> = numbers
        .into_iter()
        .map(|(label, mut n)| {
            n["label"] = Value::from(label);
            n
        })
        .collect();
    json!({
        "id": id,
        "name": name,
        "used": used,
        "numbers": numbers,
        "details": details,
        "alternative": if used { verdict::alternative(id) } else { None },
    })
}
