//! Graceful shutdown: a signal every connection watches, and a count of connections still
//! open so that shutdown can wait for them (up to a deadline).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{watch, Notify};

/// Held by the task that decides to shut down.
pub struct Drain {
    tx: watch::Sender<bool>,
    inner: Arc<Inner>,
}

/// Held by every listener and connection.
#[derive(Clone)]
pub struct Watch {
    rx: watch::Receiver<bool>,
    inner: Arc<Inner>,
}

struct Inner {
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
    let (tx, rx) = watch::channel(false);
    let inner = Arc::new(Inner {
        open: AtomicUsize::new(0),
        idle: Notify::new(),
    });
    (
        Drain {
            tx,
            inner: inner.clone(),
        },
        Watch { rx, inner },
    )
}

impl Drain {
    /// Tells every watcher to stop, then waits until every guard is dropped or `deadline`
    /// passes. Returns the number of connections still open at the end.
    pub async fn drain(self, deadline: std::time::Duration) -> usize {
        let _ = self.tx.send(true);
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
        *self.rx.borrow()
    }

    /// Resolves once shutdown has begun.
    pub async fn signaled(&self) {
        let mut rx = self.rx.clone();
        let _ = rx.wait_for(|draining| *draining).await;
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
    async fn gives_up_at_the_deadline() {
        let (drain, watch) = channel();
        let _stuck = watch.guard();
        assert_eq!(drain.drain(Duration::from_secs(1)).await, 1);
    }
}
