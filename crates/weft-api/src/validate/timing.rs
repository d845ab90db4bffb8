//! Route timing: `timeouts` and `retry`, checked and turned into milliseconds.

use crate::duration;
use crate::resources::gateway::{HttpRetry, HttpTimeouts};
use crate::view::RetryView;

use super::{HintExt, Reporter};

pub(super) fn retry(rep: &mut Reporter<'_>, field: &str, retry: &HttpRetry) -> RetryView {
    let mut codes = Vec::new();
    for (k, code) in retry.codes.iter().enumerate() {
        if (400..=599).contains(code) {
            codes.push(*code);
        } else {
            rep.error(
                format!("{field}.retry.codes[{k}]"),
                format!("{code} is not a retryable status"),
            )
            .with_hint("retry codes are HTTP statuses 400-599");
        }
    }
    let backoff_ms = match &retry.backoff {
        Some(text) => match duration::parse(text) {
            Ok(d) => d.as_millis() as u64,
            Err(e) => {
                rep.error(format!("{field}.retry.backoff"), e);
                0
            }
        },
        None => 25,
    };
    let attempts = retry.attempts.unwrap_or(1);
    if attempts > 10 {
        rep.error(
            format!("{field}.retry.attempts"),
            format!("{attempts} retries is more than Weft allows"),
        )
        .with_hint("at most 10; retries multiply load on a failing backend");
    }
    RetryView {
        codes,
        grpc_codes: Vec::new(),
        attempts: attempts.min(10),
        backoff_ms,
    }
}

pub(super) fn timeouts(
    rep: &mut Reporter<'_>,
    field: &str,
    t: Option<&HttpTimeouts>,
) -> (Option<u64>, Option<u64>) {
    let Some(t) = t else { return (None, None) };
    let mut parse = |name: &str, value: &Option<String>| {
        value.as_ref().and_then(|text| match duration::parse(text) {
            Ok(d) => Some(d.as_millis() as u64),
            Err(e) => {
                rep.error(format!("{field}.timeouts.{name}"), e);
                None
            }
        })
    };
    let request = parse("request", &t.request);
    let backend = parse("backendRequest", &t.backend_request);
    if let (Some(req), Some(be)) = (request, backend) {
        if req != 0 && (be > req || be == 0) {
            rep.error(
                format!("{field}.timeouts.backendRequest"),
                "backendRequest is longer than request",
            )
            .with_hint("a single attempt cannot take longer than the whole request");
        }
    }
    (request, backend)
}

/// gRPC status names as Linkerd's `retry.linkerd.io/grpc` annotation writes them.
const GRPC_STATUSES: [&str; 16] = [
    "cancelled",
    "unknown",
    "invalid-argument",
    "deadline-exceeded",
    "not-found",
    "already-exists",
    "permission-denied",
    "resource-exhausted",
    "failed-precondition",
    "aborted",
    "out-of-range",
    "unimplemented",
    "internal",
    "unavailable",
    "data-loss",
    "unauthenticated",
];

/// A GRPCRoute's retries and per-try timeout, from Linkerd's annotations (the Gateway API
/// gives GRPCRoute neither): `retry.linkerd.io/grpc` (statuses), `retry.linkerd.io/limit`
/// (retries, default 1), `retry.linkerd.io/timeout` (per try).
pub(super) fn grpc_annotations(
    rep: &mut Reporter<'_>,
    annotations: &std::collections::BTreeMap<String, String>,
) -> (Option<RetryView>, Option<u64>) {
    let field = |key: &str| format!("metadata.annotations.{key}");
    for key in annotations.keys() {
        let known = [
            "retry.linkerd.io/grpc",
            "retry.linkerd.io/limit",
            "retry.linkerd.io/timeout",
        ];
        if key.starts_with("retry.linkerd.io/") && !known.contains(&key.as_str()) {
            rep.error(
                field(key),
                format!("`{key}` is not an annotation Weft reads"),
            )
            .with_hint("retry.linkerd.io/grpc, retry.linkerd.io/limit, retry.linkerd.io/timeout");
        }
    }
    let timeout =
        annotations
            .get("retry.linkerd.io/timeout")
            .and_then(|text| match duration::parse(text) {
                Ok(d) if !d.is_zero() => Some(d.as_millis() as u64),
                Ok(_) => {
                    rep.error(
                        field("retry.linkerd.io/timeout"),
                        "a try needs a timeout above zero",
                    )
                    .with_hint("leave it out for no per-try timeout");
                    None
                }
                Err(e) => {
                    rep.error(field("retry.linkerd.io/timeout"), e);
                    None
                }
            });
    let Some(list) = annotations.get("retry.linkerd.io/grpc") else {
        if annotations.contains_key("retry.linkerd.io/limit") {
            rep.error(
                field("retry.linkerd.io/limit"),
                "a retry limit without `retry.linkerd.io/grpc` retries nothing",
            )
            .with_hint("name the statuses to retry, e.g. `retry.linkerd.io/grpc: unavailable`");
        }
        return (None, timeout);
    };
    let mut grpc_codes = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match GRPC_STATUSES.iter().position(|s| *s == name) {
            Some(i) => grpc_codes.push(i as u32 + 1),
            None => {
                rep.error(
                    field("retry.linkerd.io/grpc"),
                    format!("`{name}` is not a gRPC status"),
                )
                .with_hint(
                    "e.g. unavailable, deadline-exceeded, resource-exhausted, internal, cancelled",
                );
            }
        }
    }
    let attempts = match annotations.get("retry.linkerd.io/limit") {
        None => 1,
        Some(text) => match text.trim().parse::<u32>() {
            Ok(n) if n <= 10 => n,
            _ => {
                rep.error(
                    field("retry.linkerd.io/limit"),
                    format!("`{text}` is not a number of retries from 0 to 10"),
                );
                1
            }
        },
    };
    let retry = RetryView {
        codes: Vec::new(),
        grpc_codes,
        attempts,
        backoff_ms: 25,
    };
    (Some(retry), timeout)
}
