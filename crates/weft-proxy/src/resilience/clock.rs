//! A coarse clock for what needs time to the tenth of a second, not the nanosecond: retry
//! budgets' one-second slots, the age of idle pooled connections. Reading it is one atomic
//! load; a task of the proxy's moves it on every [`TICK`]. A precise clock read costs a
//! request about a hundred instructions each time, and the request path would take several.
//!
//! Until the ticker runs (unit tests, the first moments of a process), readers fall back to
//! the precise clock, so time never stands still.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// How often the coarse clock moves.
pub const TICK: Duration = Duration::from_millis(50);

/// Milliseconds of the proxy's monotonic clock (plus one, so that 0 means "not started").
static NOW_MS: AtomicU64 = AtomicU64::new(0);
static STARTED: AtomicBool = AtomicBool::new(false);

/// Milliseconds of the proxy's monotonic clock, to within [`TICK`].
pub fn coarse_ms() -> u64 {
    match NOW_MS.load(Ordering::Relaxed) {
        0 => precise_ms(),
        ms => ms - 1,
    }
}

/// Whole seconds of the proxy's monotonic clock, to within [`TICK`].
pub fn coarse_seconds() -> u64 {
    coarse_ms() / 1000
}

/// Milliseconds of the proxy's monotonic clock, read now.
pub fn precise_ms() -> u64 {
    crate::balance::now_nanos() / 1_000_000
}

/// Starts the task that moves the clock, once per process (in a Tokio runtime; elsewhere the
/// readers keep using the precise clock).
pub fn start() {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    if STARTED.swap(true, Ordering::AcqRel) {
        return;
    }
    runtime.spawn(async {
        let mut ticks = tokio::time::interval(TICK);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            ticks.tick().await;
            NOW_MS.store(precise_ms() + 1, Ordering::Relaxed);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_coarse_clock_follows_the_precise_one() {
        start();
        tokio::time::sleep(TICK * 3).await;
        let (coarse, precise) = (coarse_ms(), precise_ms());
        assert!(coarse <= precise, "{coarse} > {precise}");
        assert!(
            precise - coarse <= 4 * TICK.as_millis() as u64,
            "{coarse} vs {precise}"
        );
    }
}
