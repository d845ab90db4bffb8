//! `FaultInjection` (Istio's `HTTPFaultInjection` fields) and Linkerd's
//! `HTTPLocalRateLimitPolicy`, checked into the model. Routes refer to FaultInjections, so
//! these are checked first.

use crate::diagnostic::Diagnostics;
use crate::duration;
use crate::model::Model;
use crate::resources::resilience::{FaultInjectionSpec, Percent, RateLimitPolicySpec};
use crate::resources::{Object, Resource};
use crate::view::resilience::{FaultAbortView, FaultDelayView, RateLimitOverride};
use crate::view::{FaultView, RateLimitView};

use super::{HintExt, Reporter};

/// gRPC status names as Istio's `grpcStatus` writes them, by number.
const GRPC_CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

pub(super) fn faults(resources: &[Resource], model: &mut Model, diags: &mut Diagnostics) {
    for r in resources {
        if let Resource::FaultInjection(o) = r {
            let mut rep = Reporter::new(diags, r);
            if let Some(view) = fault(&mut rep, o) {
                model
                    .faults
                    .insert((o.namespace().to_string(), o.name().to_string()), view);
            }
        }
    }
}

fn fault(rep: &mut Reporter<'_>, o: &Object<FaultInjectionSpec>) -> Option<FaultView> {
    let errors = rep.error_count();
    let spec = &o.spec;
    if spec.delay.is_none() && spec.abort.is_none() {
        rep.error(
            "spec",
            "a FaultInjection needs a `delay`, an `abort`, or both",
        );
    }
    let delay = spec.delay.as_ref().and_then(|d| {
        for (set, name) in [
            (d.percent.is_some(), "percent"),
            (d.exponential_delay.is_some(), "exponentialDelay"),
        ] {
            if set {
                rep.error(format!("spec.delay.{name}"), "not implemented by Weft")
                    .with_hint("use `fixedDelay` and `percentage: {value: N}`");
            }
        }
        let ms = match d.fixed_delay.as_deref().map(duration::parse) {
            None => {
                rep.error("spec.delay.fixedDelay", "a delay needs `fixedDelay`")
                    .with_hint("e.g. `fixedDelay: 500ms`");
                None
            }
            Some(Ok(t)) if t.as_millis() >= 1 => Some(t.as_millis() as u64),
            Some(Ok(_)) => {
                rep.error("spec.delay.fixedDelay", "a delay of at least 1ms");
                None
            }
            Some(Err(e)) => {
                rep.error("spec.delay.fixedDelay", e);
                None
            }
        };
        let percentage = percentage(rep, "spec.delay.percentage", d.percentage.as_ref());
        Some(FaultDelayView {
            fixed_delay_ms: ms?,
            percentage: percentage?,
        })
    });
    let abort = spec.abort.as_ref().and_then(|a| {
        if a.http2_error.is_some() {
            rep.error("spec.abort.http2Error", "not implemented by Weft")
                .with_hint("use `httpStatus` or `grpcStatus`");
        }
        let http_status = match a.http_status {
            Some(s) if (200..=599).contains(&s) => Some(s as u16),
            Some(s) => {
                rep.error(
                    "spec.abort.httpStatus",
                    format!("{s} is not an HTTP status from 200 to 599"),
                );
                None
            }
            None => None,
        };
        let grpc_status = match a.grpc_status.as_deref() {
            None => None,
            Some(name) => match GRPC_CODES.iter().position(|c| *c == name) {
                Some(code) => Some(code as u32),
                None => {
                    rep.error(
                        "spec.abort.grpcStatus",
                        format!("`{name}` is not a gRPC status"),
                    )
                    .with_hint("e.g. UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED");
                    None
                }
            },
        };
        if a.http_status.is_none() && a.grpc_status.is_none() && a.http2_error.is_none() {
            rep.error("spec.abort", "an abort needs `httpStatus` or `grpcStatus`");
        }
        let percentage = percentage(rep, "spec.abort.percentage", a.percentage.as_ref())?;
        (http_status.is_some() || grpc_status.is_some()).then_some(FaultAbortView {
            http_status,
            grpc_status,
            percentage,
        })
    });
    (rep.error_count() == errors).then(|| FaultView {
        name: format!("{}/{}", o.namespace(), o.name()),
        delay,
        abort,
    })
}

/// A percentage, 0 to 100. Unset is 0 (Istio: "if not specified, no request is"), which is
/// almost never what was meant: a warning says so.
fn percentage(rep: &mut Reporter<'_>, field: &str, p: Option<&Percent>) -> Option<f64> {
    match p {
        None => {
            rep.warning(
                field.to_string(),
                "no percentage: as in Istio, the fault applies to no request",
            )
            .with_hint("`percentage: {value: 100}` for every request");
            Some(0.0)
        }
        Some(p) if (0.0..=100.0).contains(&p.value) => Some(p.value),
        Some(p) => {
            rep.error(
                format!("{field}.value"),
                format!("{} is not a percentage", p.value),
            )
            .with_hint("0 to 100");
            None
        }
    }
}

pub(super) fn rate_limits(resources: &[Resource], model: &mut Model, diags: &mut Diagnostics) {
    for r in resources {
        let Resource::RateLimitPolicy(o) = r else {
            continue;
        };
        let mut rep = Reporter::new(diags, r);
        let Some((key, view)) = rate_limit(&mut rep, o, model) else {
            continue;
        };
        if model.rate_limits.contains_key(&key) {
            rep.error_span(
                &o.spec.target_ref.name,
                "spec.targetRef.name",
                format!(
                    "another HTTPLocalRateLimitPolicy already limits Service {}/{}",
                    key.0, key.1
                ),
            )
            .with_hint("a Service takes one; merge them");
            continue;
        }
        model.rate_limits.insert(key, view);
    }
}

fn rate_limit(
    rep: &mut Reporter<'_>,
    o: &Object<RateLimitPolicySpec>,
    model: &Model,
) -> Option<((String, String), RateLimitView)> {
    let errors = rep.error_count();
    let spec = &o.spec;
    let t = &spec.target_ref;
    let group_ok = matches!(t.group.as_deref(), None | Some("") | Some("core"));
    if t.kind != "Service" || !group_ok {
        rep.error_span(
            &t.name,
            "spec.targetRef.kind",
            format!("a rate limit targets a Service, not `{}`", t.kind),
        )
        .with_hint("Weft has no Server kind: `targetRef: {kind: Service, name: …}` limits the Service's inbound side");
    }
    let key = (o.namespace().to_string(), t.name.value.clone());
    if !model.services.contains_key(&key) {
        rep.error_span(
            &t.name,
            "spec.targetRef.name",
            format!("Service {}/{} does not exist", key.0, key.1),
        );
    }
    let rate = |rep: &mut Reporter<'_>, field: &str, rps: i64| -> Option<u32> {
        match u32::try_from(rps) {
            Ok(n) if n > 0 => Some(n),
            _ => {
                rep.error(field.to_string(), format!("{rps} is not a rate"))
                    .with_hint("requests per second, 1 or more");
                None
            }
        }
    };
    let total = spec
        .total
        .as_ref()
        .and_then(|l| rate(rep, "spec.total.requestsPerSecond", l.requests_per_second));
    let identity = spec.identity.as_ref().and_then(|l| {
        rate(
            rep,
            "spec.identity.requestsPerSecond",
            l.requests_per_second,
        )
    });
    let above_total = |rep: &mut Reporter<'_>, field: &str, n: u32| {
        if let Some(t) = total.filter(|t| n > *t) {
            rep.error(
                field.to_string(),
                format!("{n} is more than the total ({t})"),
            )
            .with_hint("a client's rate cannot exceed the total");
        }
    };
    if let Some(n) = identity {
        above_total(rep, "spec.identity.requestsPerSecond", n);
    }
    let mut overrides = Vec::new();
    for (i, ov) in spec.overrides.iter().enumerate() {
        let field = format!("spec.overrides[{i}]");
        let Some(n) = rate(
            rep,
            &format!("{field}.requestsPerSecond"),
            ov.requests_per_second,
        ) else {
            continue;
        };
        above_total(rep, &format!("{field}.requestsPerSecond"), n);
        if ov.client_refs.is_empty() {
            rep.error(
                format!("{field}.clientRefs"),
                "an override names at least one client",
            );
        }
        let mut principals = Vec::new();
        for (j, c) in ov.client_refs.iter().enumerate() {
            let group_ok = matches!(c.group.as_deref(), None | Some("") | Some("core"));
            if c.kind != "ServiceAccount" || !group_ok {
                rep.error(
                    format!("{field}.clientRefs[{j}].kind"),
                    format!("clients are ServiceAccounts, not `{}`", c.kind),
                );
                continue;
            }
            let ns = c.namespace.as_deref().unwrap_or(o.namespace());
            principals.push(format!(
                "spiffe://{}/ns/{ns}/sa/{}",
                model.mesh.trust_domain, c.name
            ));
        }
        overrides.push(RateLimitOverride {
            requests_per_second: n,
            principals,
        });
    }
    if total.is_none() && identity.is_none() && spec.overrides.is_empty() {
        rep.error(
            "spec",
            "a rate limit needs `total`, `identity` or `overrides`",
        );
    }
    (rep.error_count() == errors).then(|| {
        let view = RateLimitView {
            policy: format!("{}/{}", o.namespace(), o.name()),
            ports: Vec::new(),
            total,
            identity,
            overrides,
        };
        (key, view)
    })
}
