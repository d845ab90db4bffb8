//! A DestinationRule's `connectionPool` limits, which fail fast instead of queueing without
//! bound: a request over a limit gets 503 with `weft-error: overloaded; <the limit>` at once.
//!
//! - [`RequestLimits`]: requests (`http2MaxRequests`) and retries (`maxRetries`) in flight to
//!   the destination, counted while a request waits for its answer's head.
//! - [`ConnectionLimit`]: connections open to the destination's endpoints
//!   (`tcp.maxConnections`: HTTP/1 pools and opaque TCP; the mesh's one HTTP/2 connection per
//!   endpoint is not counted), and requests waiting for one of them to come free
//!   (`http1MaxPendingRequests`), each waiting no longer than the connect timeout.
//!
//! The counters live as long as any snapshot uses them, so a config change does not reset
//! what is in flight. Counting is atomics; waiting for a connection is a `Notify`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio::sync::Notify;

use crate::error::{ProxyError, Reason};

/// Requests and retries in flight to one destination, and their limits (0: none).
pub struct RequestLimits {
    pub max_requests: u32,
    pub max_retries: u32,
    in_flight: Arc<InFlight>,
    /// `destination_service`, for the error's detail.
    pub service: String,
    pub overflows_requests: Counter,
    pub overflows_retries: Counter,
}

/// The counts, shared across snapshots.
#[derive(Default)]
pub struct InFlight {
    requests: AtomicU32,
    retries: AtomicU32,
}

/// One counted request or retry; dropping it counts it done.
pub struct Permit<'a>(&'a AtomicU32);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl RequestLimits {
    pub fn new(
        max_requests: u32,
        max_retries: u32,
        in_flight: Arc<InFlight>,
        service: String,
        overflows: (Counter, Counter),
    ) -> Self {
        Self {
            max_requests,
            max_retries,
            in_flight,
            service,
            overflows_requests: overflows.0,
            overflows_retries: overflows.1,
        }
    }

    /// A request to the destination, unless `http2MaxRequests` are in flight.
    pub fn request(&self) -> Result<Permit<'_>, ProxyError> {
        take(&self.in_flight.requests, self.max_requests).ok_or_else(|| {
            self.overflows_requests.inc();
            overloaded(format!(
                "connectionPool.http.http2MaxRequests ({}) of {}",
                self.max_requests, self.service
            ))
        })
    }

    /// A retry to the destination, unless `maxRetries` are in flight; `None` when over.
    pub fn retry(&self) -> Option<Permit<'_>> {
        let permit = take(&self.in_flight.retries, self.max_retries);
        if permit.is_none() {
            self.overflows_retries.inc();
        }
        permit
    }
}

/// Counts one more in `count` unless it is at `max` (0: no limit).
fn take(count: &AtomicU32, max: u32) -> Option<Permit<'_>> {
    try_add(count, max).then(|| Permit(count))
}

fn try_add(count: &AtomicU32, max: u32) -> bool {
    count
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (max == 0 || n < max).then_some(n + 1)
        })
        .is_ok()
}

pub fn overloaded(detail: String) -> ProxyError {
    ProxyError::new(Reason::Overloaded, detail)
}

/// Connections open to one destination's endpoints, and requests waiting for one.
pub struct ConnectionLimit {
    pub max_connections: u32,
    pub max_pending: u32,
    open: AtomicU32,
    pending: AtomicU32,
    freed: Notify,
    /// `destination_service`, for errors.
    pub service: String,
    pub overflows_connections: Counter,
    pub overflows_pending: Counter,
}

/// One open connection; dropping it (with the connection) frees its place.
pub struct Lease(Arc<ConnectionLimit>);

impl Drop for Lease {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
        self.0.freed.notify_one();
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lease")
    }
}

/// What a caller over the connection limit may do.
pub enum Full {
    /// Wait (at most this long) for a connection to come free: [`ConnectionLimit::wait`].
    Wait(Duration),
    /// Fail at once: too many wait already.
    Refused(ProxyError),
}

impl ConnectionLimit {
    pub fn new(
        max_connections: u32,
        max_pending: u32,
        service: String,
        overflows: (Counter, Counter),
    ) -> Arc<Self> {
        Arc::new(Self {
            max_connections,
            max_pending,
            open: AtomicU32::new(0),
            pending: AtomicU32::new(0),
            freed: Notify::new(),
            service,
            overflows_connections: overflows.0,
            overflows_pending: overflows.1,
        })
    }

    /// True when built with these limits.
    pub fn is_for(&self, max_connections: u32, max_pending: u32) -> bool {
        self.max_connections == max_connections && self.max_pending == max_pending
    }

    /// A place for one more connection, unless `maxConnections` are open.
    pub fn lease(self: &Arc<Self>) -> Option<Lease> {
        try_add(&self.open, self.max_connections).then(|| Lease(self.clone()))
    }

    /// The error for an opaque connection over the limit (TCP does not wait).
    pub fn refused(&self) -> ProxyError {
        self.overflows_connections.inc();
        overloaded(format!(
            "connectionPool.tcp.maxConnections ({}) of {}",
            self.max_connections, self.service
        ))
    }

    /// An HTTP request finding every connection busy: it may wait, if fewer than
    /// `http1MaxPendingRequests` already do.
    pub fn full(&self, connect_timeout: Duration) -> Full {
        if self.max_pending > 0 && try_add(&self.pending, self.max_pending) {
            return Full::Wait(connect_timeout);
        }
        self.overflows_pending.inc();
        Full::Refused(overloaded(format!(
            "connectionPool.tcp.maxConnections ({}) busy and http1MaxPendingRequests ({}) waiting, of {}",
            self.max_connections, self.max_pending, self.service
        )))
    }

    /// Waits until a connection comes free or `limit` passes (after [`Full::Wait`]); the
    /// caller then looks for an idle connection or a lease again.
    pub async fn wait(&self, limit: Duration) -> bool {
        let freed = tokio::time::timeout(limit, self.freed.notified())
            .await
            .is_ok();
        self.pending.fetch_sub(1, Ordering::AcqRel);
        freed
    }

    /// Tells a waiting request that an idle connection was put back.
    pub fn returned(&self) {
        self.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requests(max_requests: u32, max_retries: u32) -> RequestLimits {
        RequestLimits::new(
            max_requests,
            max_retries,
            Arc::default(),
            "t/echo".into(),
            (Counter::default(), Counter::default()),
        )
    }

    #[test]
    fn requests_over_the_limit_are_refused_and_permits_give_back() {
        let limits = requests(2, 1);
        let a = limits.request().expect("first");
        let _b = limits.request().expect("second");
        let e = limits.request().err().expect("third refused");
        assert_eq!(e.reason, Reason::Overloaded);
        assert!(e.detail.contains("http2MaxRequests (2) of t/echo"), "{e}");
        assert_eq!(limits.overflows_requests.get(), 1);
        drop(a);
        assert!(
            limits.request().is_ok(),
            "a finished request frees its place"
        );
        let r = limits.retry().expect("a retry");
        assert!(limits.retry().is_none());
        drop(r);
        assert!(limits.retry().is_some());
        // Zero is no limit.
        let unlimited = requests(0, 0);
        let held: Vec<_> = (0..1000).filter_map(|_| unlimited.request().ok()).collect();
        assert_eq!(held.len(), 1000);
    }

    #[tokio::test(start_paused = true)]
    async fn connections_over_the_limit_wait_then_are_refused() {
        let limit = ConnectionLimit::new(
            1,
            1,
            "t/echo".into(),
            (Counter::default(), Counter::default()),
        );
        let lease = limit.lease().expect("one");
        assert!(limit.lease().is_none());
        // One may wait; a second is refused at once.
        let Full::Wait(t) = limit.full(Duration::from_secs(1)) else {
            panic!("the first may wait")
        };
        let Full::Refused(e) = limit.full(Duration::from_secs(1)) else {
            panic!("the second may not")
        };
        assert!(e.detail.contains("http1MaxPendingRequests (1)"), "{e}");
        let waiter = {
            let limit = limit.clone();
            tokio::spawn(async move { limit.wait(t).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(lease);
        assert!(
            waiter.await.unwrap_or(false),
            "woken when the connection closed"
        );
        // A wait with nothing freed ends at its limit.
        let _held = limit.lease().expect("the freed place");
        let Full::Wait(t) = limit.full(Duration::from_millis(200)) else {
            panic!("may wait")
        };
        assert!(!limit.wait(t).await);
        // With no pending allowed, a full pool refuses at once.
        let strict =
            ConnectionLimit::new(1, 0, "t/e".into(), (Counter::default(), Counter::default()));
        let _one = strict.lease();
        assert!(matches!(
            strict.full(Duration::from_secs(1)),
            Full::Refused(_)
        ));
    }
}
