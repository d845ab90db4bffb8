//! The retry budget of one destination Service, as Linkerd's works: over the last `ttl`
//! seconds, retries may add at most `ratio` of the requests sent there, plus a floor of
//! `min_per_second` retries a second, so a quiet service can still retry and a failing one
//! is never sent a storm.
//!
//! Lock-free: one slot per second of the window, each an atomic pair of counts (requests in
//! the high half, retries in the low). A retry is taken with a compare-and-swap on the
//! current second's slot after summing the others, so concurrent retries cannot overdraw
//! the budget. Time is passed in (whole seconds of a monotonic clock), which keeps the logic
//! testable without a clock.

use std::sync::atomic::{AtomicU64, Ordering};

use weft_api::view::RetriesView;

pub struct RetryBudget {
    ratio: f64,
    min_per_second: u32,
    slots: Box<[Slot]>,
}

#[derive(Default)]
struct Slot {
    /// The second this slot counts (seconds of the proxy's clock, plus one: 0 is unused).
    second: AtomicU64,
    /// Requests << 32 | retries.
    counts: AtomicU64,
}

const ONE_REQUEST: u64 = 1 << 32;
const RETRIES: u64 = u32::MAX as u64;

impl RetryBudget {
    pub fn new(settings: &RetriesView) -> Self {
        let window = settings.ttl_s.clamp(1, 60) as usize;
        Self {
            ratio: settings.retry_ratio,
            min_per_second: settings.min_retries_per_second,
            slots: (0..window).map(|_| Slot::default()).collect(),
        }
    }

    /// True when built from the same settings (a config change keeps the counts otherwise).
    pub fn is_for(&self, settings: &RetriesView) -> bool {
        self.ratio == settings.retry_ratio
            && self.min_per_second == settings.min_retries_per_second
            && self.slots.len() == settings.ttl_s.clamp(1, 60) as usize
    }

    /// Counts a request sent to the destination (once per request, not per try).
    pub fn deposit(&self, now_s: u64) {
        self.current(now_s)
            .counts
            .fetch_add(ONE_REQUEST, Ordering::Relaxed);
    }

    /// Takes one retry from the budget; false when it is spent.
    pub fn try_withdraw(&self, now_s: u64) -> bool {
        let (requests, retries) = self.window_except_current(now_s);
        let current = self.current(now_s);
        let allowance = |requests: u64| {
            let floor = u64::from(self.min_per_second) * self.slots.len() as u64;
            floor + (requests as f64 * self.ratio) as u64
        };
        current
            .counts
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                let all_requests = requests + (c >> 32);
                let all_retries = retries + (c & RETRIES);
                (all_retries < allowance(all_requests) && c & RETRIES < RETRIES).then_some(c + 1)
            })
            .is_ok()
    }

    /// Retries still allowed now (for the admin endpoint and tests).
    pub fn remaining(&self, now_s: u64) -> u64 {
        let (requests, retries) = self.window(now_s);
        let floor = u64::from(self.min_per_second) * self.slots.len() as u64;
        (floor + (requests as f64 * self.ratio) as u64).saturating_sub(retries)
    }

    /// The slot of `now_s`, emptied first if it still holds an older second.
    fn current(&self, now_s: u64) -> &Slot {
        let stamp = now_s + 1;
        let slot = &self.slots[(now_s % self.slots.len() as u64) as usize];
        let seen = slot.second.load(Ordering::Acquire);
        if seen != stamp
            && slot
                .second
                .compare_exchange(seen, stamp, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            // A count added between the swap and this store is lost: the budget errs on
            // the side of fewer retries.
            slot.counts.store(0, Ordering::Release);
        }
        slot
    }

    /// Requests and retries in the window ending at `now_s`, the current second included.
    fn window(&self, now_s: u64) -> (u64, u64) {
        let (requests, retries) = self.window_except_current(now_s);
        let c = self.current(now_s).counts.load(Ordering::Acquire);
        (requests + (c >> 32), retries + (c & RETRIES))
    }

    fn window_except_current(&self, now_s: u64) -> (u64, u64) {
        // Stamps are seconds plus one: the window's earlier seconds, now - len + 1 to now - 1.
        let lowest = (now_s + 2).saturating_sub(self.slots.len() as u64).max(1);
        let mut totals = (0, 0);
        for slot in self.slots.iter() {
            let stamp = slot.second.load(Ordering::Acquire);
            if (lowest..now_s + 1).contains(&stamp) {
                let c = slot.counts.load(Ordering::Acquire);
                totals.0 += c >> 32;
                totals.1 += c & RETRIES;
            }
        }
        totals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(ratio: f64, floor: u32, ttl_s: u32) -> RetryBudget {
        RetryBudget::new(&RetriesView {
            retry_ratio: ratio,
            min_retries_per_second: floor,
            ttl_s,
            ..RetriesView::default()
        })
    }

    fn withdraw_all(b: &RetryBudget, now: u64) -> u64 {
        let mut n = 0;
        while b.try_withdraw(now) {
            n += 1;
            assert!(n < 1_000_000, "the budget never runs out");
        }
        n
    }

    #[test]
    fn the_floor_alone_allows_min_per_second_times_the_window() {
        let b = budget(0.2, 10, 10);
        assert_eq!(withdraw_all(&b, 100), 100);
        assert!(!b.try_withdraw(100));
    }

    #[test]
    fn requests_add_their_share() {
        let b = budget(0.2, 0, 10);
        for _ in 0..1000 {
            b.deposit(5);
        }
        assert_eq!(b.remaining(5), 200);
        assert_eq!(withdraw_all(&b, 5), 200);
        // Spread over the window, the same.
        let b = budget(0.2, 0, 10);
        for s in 0..10 {
            for _ in 0..100 {
                b.deposit(s);
            }
        }
        assert_eq!(withdraw_all(&b, 9), 200);
    }

    #[test]
    fn old_seconds_leave_the_window() {
        let b = budget(0.5, 0, 3);
        for _ in 0..100 {
            b.deposit(10);
        }
        assert_eq!(b.remaining(10), 50);
        assert_eq!(b.remaining(12), 50, "still in a 3 s window");
        assert_eq!(b.remaining(13), 0, "gone after 3 s");
        // Spent retries leave the window too.
        let b = budget(0.0, 1, 3);
        assert_eq!(withdraw_all(&b, 20), 3);
        assert_eq!(withdraw_all(&b, 21), 0);
        assert_eq!(withdraw_all(&b, 22), 0);
        assert_eq!(
            withdraw_all(&b, 23),
            3,
            "the retries of second 20 have left"
        );
    }

    #[test]
    fn concurrent_retries_never_overdraw() {
        let b = std::sync::Arc::new(budget(0.1, 0, 10));
        for _ in 0..1000 {
            b.deposit(1);
        }
        let taken: u64 = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4).map(|_| s.spawn(|| withdraw_all(&b, 1))).collect();
            handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
        });
        assert_eq!(taken, 100);
    }

    #[test]
    fn settings_are_compared() {
        let b = budget(0.2, 10, 10);
        assert!(b.is_for(&RetriesView::default()));
        assert!(!b.is_for(&RetriesView {
            retry_ratio: 0.3,
            ..RetriesView::default()
        }));
    }
}
