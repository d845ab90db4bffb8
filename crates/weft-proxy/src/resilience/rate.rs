//! A token bucket as GCRA (the generic cell rate algorithm): one atomic, the theoretical
//! arrival time of the next request. A bucket of `rps` requests a second holds one second's
//! worth: a burst of `rps` passes at once, then one every `1/rps` seconds.

use std::sync::atomic::{AtomicU64, Ordering};

const SECOND: u64 = 1_000_000_000;

#[derive(Debug)]
pub struct Bucket {
    /// Nanoseconds between two requests at the full rate.
    interval: u64,
    /// How far ahead of now the arrival time may run: the burst.
    burst: u64,
    /// Theoretical arrival time, nanoseconds of the proxy's clock.
    tat: AtomicU64,
}

impl Bucket {
    pub fn new(rps: u32) -> Self {
        let interval = SECOND / u64::from(rps.max(1));
        Self {
            interval,
            burst: SECOND.max(interval),
            tat: AtomicU64::new(0),
        }
    }

    /// Takes a token at `now` (nanoseconds), or says how long until one is due.
    pub fn take(&self, now: u64) -> Result<(), u64> {
        let mut tat = self.tat.load(Ordering::Acquire);
        loop {
            let next = tat.max(now) + self.interval;
            if next > now + self.burst {
                return Err(next - self.burst - now);
            }
            match self
                .tat
                .compare_exchange_weak(tat, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(()),
                Err(seen) => tat = seen,
            }
        }
    }
}

/// `Retry-After` for a wait of `nanos`: whole seconds, at least one.
pub fn retry_after_seconds(nanos: u64) -> u64 {
    nanos.div_ceil(SECOND).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_one_seconds_worth_then_the_rate() {
        let b = Bucket::new(10);
        let t0 = 5 * SECOND;
        let passed = (0..20).filter(|_| b.take(t0).is_ok()).count();
        assert_eq!(passed, 10, "one second's worth at once");
        let wait = b.take(t0).expect_err("empty");
        assert_eq!(wait, SECOND / 10, "the next token in a tenth of a second");
        assert!(b.take(t0 + SECOND / 10).is_ok());
        assert!(b.take(t0 + SECOND / 10).is_err());
        // Over ten seconds at 10/s: about 100 more.
        let mut passed = 0;
        for ms in 0..10_000u64 {
            let now = t0 + SECOND / 10 + ms * 1_000_000;
            if b.take(now).is_ok() {
                passed += 1;
            }
        }
        assert!((99..=101).contains(&passed), "{passed}");
        assert_eq!(retry_after_seconds(1), 1);
        assert_eq!(retry_after_seconds(SECOND + 1), 2);
    }

    #[test]
    fn concurrent_takers_never_pass_more_than_the_bucket_holds() {
        let b = std::sync::Arc::new(Bucket::new(1000));
        let passed: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| (0..1000).filter(|_| b.take(SECOND).is_ok()).count()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
        });
        assert_eq!(passed, 1000);
    }
}
