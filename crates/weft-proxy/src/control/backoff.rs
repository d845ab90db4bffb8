//! Jittered exponential backoff for reconnecting to the control plane: many proxies that
//! lost the same control plane must not come back in lockstep.

use std::time::Duration;

pub struct Backoff {
    next: Duration,
    min: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            next: min,
            min,
            max,
        }
    }

    /// The next wait: the current step with ±50% jitter; the step doubles up to `max`.
    pub fn next_wait(&mut self) -> Duration {
        let step = self.next;
        self.next = (self.next * 2).min(self.max);
        step.mul_f64(0.5 + fastrand::f64())
    }

    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_a_bound_with_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let waits: Vec<Duration> = (0..10).map(|_| b.next_wait()).collect();
        assert!(waits[0] >= Duration::from_millis(50) && waits[0] <= Duration::from_millis(150));
        assert!(waits.iter().all(|w| *w <= Duration::from_secs(3)));
        assert!(waits[9] >= Duration::from_secs(1), "{waits:?}");
        b.reset();
        assert!(b.next_wait() <= Duration::from_millis(150));
    }
}
