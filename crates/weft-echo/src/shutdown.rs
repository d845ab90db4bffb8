//! Coordinated shutdown: every task holds a [`Shutdown`] handle, the server's
//! [`Controller`] moves all of them from running to draining to closed, and
//! learns when the last one has finished.

use std::time::Duration;

use tokio::sync::{mpsc, watch};

/// How far shutdown has progressed. Ordered: a task waiting for `Draining` is
/// also released by `Closed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Running,
    /// Stop accepting, finish what is in flight.
    Draining,
    /// Drop everything now.
    Closed,
}

/// A task's view of shutdown. Cloning it registers one more task that the
/// controller waits for; dropping it says the task is done.
#[derive(Clone, Debug)]
pub(crate) struct Shutdown {
    phase: watch::Receiver<Phase>,
    _alive: mpsc::Sender<()>,
}

impl Shutdown {
    /// Resolves once the server starts draining (or the controller is gone).
    pub(crate) async fn draining(&self) {
        self.reached(Phase::Draining).await;
    }

    /// Resolves once in-flight work must be dropped (or the controller is gone).
    pub(crate) async fn closed(&self) {
        self.reached(Phase::Closed).await;
    }

    async fn reached(&self, phase: Phase) {
        let mut rx = self.phase.clone();
        // An error means the controller was dropped: treat that as closed.
        let _ = rx.wait_for(|p| *p >= phase).await;
    }
}

/// Owned by the serving future; dropping it closes every task at once.
pub(crate) struct Controller {
    phase: watch::Sender<Phase>,
    alive_rx: mpsc::Receiver<()>,
    handle: Shutdown,
}

impl Controller {
    pub(crate) fn new() -> Self {
        let (phase, phase_rx) = watch::channel(Phase::Running);
        let (alive_tx, alive_rx) = mpsc::channel(1);
        Self {
            phase,
            alive_rx,
            handle: Shutdown {
                phase: phase_rx,
                _alive: alive_tx,
            },
        }
    }

    /// A handle for a new task.
    pub(crate) fn handle(&self) -> Shutdown {
        self.handle.clone()
    }

    /// Drains for at most `grace`, then closes whatever is left and waits a
    /// little for those tasks to notice.
    pub(crate) async fn shutdown(self, grace: Duration) {
        let Self {
            phase,
            mut alive_rx,
            handle,
        } = self;
        drop(handle);
        phase.send_replace(Phase::Draining);
        // `recv` yields `None` once every `Shutdown` clone has been dropped.
        if tokio::time::timeout(grace, alive_rx.recv()).await.is_ok() {
            return;
        }
        tracing::debug!(
            ?grace,
            "echo: grace period over, closing remaining connections"
        );
        phase.send_replace(Phase::Closed);
        let _ = tokio::time::timeout(Duration::from_secs(1), alive_rx.recv()).await;
    }
}
