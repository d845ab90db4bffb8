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
