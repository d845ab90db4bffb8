//! Graceful shutdown: a signal every connection watches, and a count of connections still
//! open so that shutdown can wait for them (up to a deadline).
//!
//! The signal is a flag plus a [`Notify`]: asking "draining yet?" is one atomic load, which a
//! keep-alive connection does between requests (a `watch` channel's check takes a lock).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// Held by the task that decides to shut down.
pub struct Drain {
    inner: Arc<Inner>,
}

/// Held by every listener and connection.
#[derive(Clone)]
pub struct Watch {
    inner: Arc<Inner>,
}

struct Inner {
    draining: AtomicBool,
    signal: Notify,
    open: AtomicUsize,
    idle: Notify,
}

/// Proof that a connection is open; dropping it counts the connection closed.
pub struct Guard(Arc<Inner>);

impl Drop for Guard {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

pub fn channel() -> (Drain, Watch) {
    let inner = Arc::new(Inner {
        draining: AtomicBool::new(false),
        signal: Notify::new(),
        open: AtomicUsize::new(0),
        idle: Notify::new(),
    });
    (
        Drain {
            inner: inner.clone(),
        },
        Watch { inner },
    )
}

impl Drain {
    /// Tells every watcher to stop, then waits until every guard is dropped or `deadline`
    /// passes. Returns the number of connections still open at the end.
    pub async fn drain(self, deadline: std::time::Duration) -> usize {
        self.inner.draining.store(true, Ordering::Release);
        self.inner.signal.notify_waiters();
        let wait = async {
            loop {
                let notified = self.inner.idle.notified();
                if self.inner.open.load(Ordering::Acquire) == 0 {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(deadline, wait).await;
        self.inner.open.load(Ordering::Acquire)
    }
}

impl Watch {
    /// Counts a connection as open until the guard is dropped.
    pub fn guard(&self) -> Guard {
        self.inner.open.fetch_add(1, Ordering::AcqRel);
        Guard(self.inner.clone())
    }

    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::Acquire)
    }

    /// Resolves once shutdown has begun. Polled once, it stays registered: the task that
    /// polled it is woken when the drain begins, and may then check [`Self::is_draining`]
    /// instead of polling it again.
    pub async fn signaled(&self) {
        loop {
            let notified = self.inner.signal.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before the flag is read, so a drain in between still wakes us.
            notified.as_mut().enable();
            if self.is_draining() {
                return;
            }
            notified.await;
        }
    }

    pub fn open_connections(&self) -> usize {
        self.inner.open.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn waits_for_guards_then_returns() {
        let (drain, watch) = channel();
        let guard = watch.guard();
        let w = watch.clone();
        tokio::spawn(async move {
            w.signaled().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(guard);
        });
        assert_eq!(drain.drain(Duration::from_secs(5)).await, 0);
        assert!(watch.is_draining());
    }

    #[tokio::test(start_paused = true)]
    async fn a_watcher_that_arrives_late_sees_the_drain_at_once() {
        let (drain, watch) = channel();
        assert!(!watch.is_draining());
        assert_eq!(drain.drain(Duration::from_secs(1)).await, 0);
        assert!(watch.is_draining());
        tokio::time::timeout(Duration::from_secs(1), watch.signaled())
            .await
            .expect("signaled resolves after the drain began");
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_at_the_deadline() {
        let (drain, watch) = channel();
        let _stuck = watch.guard();
        assert_eq!(drain.drain(Duration::from_secs(1)).await, 1);
    }
}
