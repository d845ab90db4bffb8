//! MeshConfig `retries`: the retry budget, the safe default's attempts, the replay buffer.

use crate::duration;
use crate::resources::mesh_config::RetriesSpec;
use crate::view::RetriesView;

use super::{HintExt, Reporter};

/// The largest body a proxy keeps per request to send it again.
const MAX_BODY_BYTES: u64 = 16 * 1024 * 1024;

pub(super) fn check(spec: &RetriesSpec, rep: &mut Reporter<'_>) -> RetriesView {
    let mut view = RetriesView::default();
    if let Some(budget) = &spec.budget {
        if let Some(ratio) = budget.retry_ratio {
            if (0.0..=1.0).contains(&ratio) {
                view.retry_ratio = ratio;
            } else {
                rep.error(
                    "spec.retries.budget.retryRatio",
                    format!("{ratio} is not a share of requests"),
                )
                .with_hint("0 to 1: 0.2 lets retries add a fifth to a destination's load");
            }
        }
        if let Some(floor) = budget.min_retries_per_second {
            if floor <= 10_000 {
                view.min_retries_per_second = floor;
            } else {
                rep.error(
                    "spec.retries.budget.minRetriesPerSecond",
                    format!("{floor} retries a second is no budget"),
                )
                .with_hint("at most 10000; the default, 10, keeps quiet services retrying");
            }
        }
        if let Some(ttl) = &budget.ttl {
            match duration::parse(ttl) {
                Ok(d) if (1..=60).contains(&d.as_secs()) && d.subsec_nanos() == 0 => {
                    view.ttl_s = d.as_secs() as u32;
                }
                Ok(_) => {
                    rep.error(
                        "spec.retries.budget.ttl",
                        format!("`{ttl}` is not a whole number of seconds from 1s to 60s"),
                    )
                    .with_hint("the default is 10s");
                }
                Err(e) => {
                    rep.error("spec.retries.budget.ttl", e);
                }
            }
        }
    }
    if let Some(attempts) = spec.default_attempts {
        if attempts <= 10 {
            view.default_attempts = attempts;
        } else {
            rep.error(
                "spec.retries.defaultAttempts",
                format!("{attempts} retries is more than Weft allows"),
            )
            .with_hint("at most 10; 0 turns the safe default off");
        }
    }
    if let Some(bytes) = spec.max_body_bytes {
        if bytes <= MAX_BODY_BYTES {
            view.max_body_bytes = bytes;
        } else {
            rep.error(
                "spec.retries.maxBodyBytes",
                format!("{bytes} bytes kept per request is too much memory"),
            )
            .with_hint("at most 16777216 (16 MiB); 0 retries only requests without a body");
        }
    }
    view
}
