//! Keep-alive HTTP/1 connections to one address (an application port, or an endpoint without
//! a proxy), reused without locks.
//!
//! A connection is taken from a lock-free queue of idle ones (or opened), carries one request
//! through Weft's own HTTP/1 client ([`crate::h1::client`]), and goes back to the queue when
//! its response body has been read to the end. A response abandoned halfway leaves its
//! connection in an unknown state, so that connection is closed instead.
//!
//! An idle connection is kept for `idle_timeout` at most, which should be shorter than the
//! server's own keep-alive timeout (4 s by default: Node.js closes after 5 s), so that the
//! proxy, not the server, closes it and no request meets a connection being closed. A reaper
//! looks at the idle ones every second (or half the timeout), closing those past their time
//! and those the server already closed, so none lingers in CLOSE_WAIT.

use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use http::{Request, Response};

use super::upstream::{connect, FreshConnection, SendFailure, UpstreamError};
use super::Body;
use crate::h1::client::{self, Conn, Recycle};
use crate::h1::verbatim::Fields;
use crate::resilience::clock;
use crate::resilience::limits::{self, ConnectionLimit, Full, Lease};

/// Idle connections kept per address; more are closed when they finish.
const MAX_IDLE: usize = 64;

pub struct Http1Pool {
    addr: SocketAddr,
    idle: ArrayQueue<Idle>,
    /// `settings.idle_timeout` in the coarse clock's unit, read on every take.
    idle_timeout_ms: u64,
    settings: PoolSettings,
}

/// How a pool treats its connections (a DestinationRule's `connectionPool`, or the defaults).
#[derive(Clone)]
pub struct PoolSettings {
    /// An idle connection is closed after this.
    pub idle_timeout: Duration,
    /// A connection is closed after this many exchanges (0: never).
    pub max_requests_per_connection: u32,
    /// The destination's connection limit, shared by its endpoints' pools.
    pub connections: Option<Arc<ConnectionLimit>>,
}

impl PoolSettings {
    /// Only an idle timeout, no limits.
    pub fn idle(idle_timeout: Duration) -> Self {
        Self {
            idle_timeout,
            max_requests_per_connection: 0,
            connections: None,
        }
    }

    /// The same settings (the same shared limit, not an equal one).
    pub fn same(&self, other: &PoolSettings) -> bool {
        self.idle_timeout == other.idle_timeout
            && self.max_requests_per_connection == other.max_requests_per_connection
            && match (&self.connections, &other.connections) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
    }
}

/// A connection between requests, and since when (the coarse clock's milliseconds).
struct Idle {
    conn: Conn,
    since_ms: u64,
}

impl Http1Pool {
    /// A pool for `addr` whose idle connections close after `idle_timeout`. Its reaper runs
    /// while the pool lives (when made inside a Tokio runtime).
    pub fn new(addr: SocketAddr, mut settings: PoolSettings) -> Arc<Self> {
        settings.idle_timeout = settings.idle_timeout.max(Duration::from_millis(1));
        let pool = Arc::new(Self {
            addr,
            idle: ArrayQueue::new(MAX_IDLE),
            idle_timeout_ms: u64::try_from(settings.idle_timeout.as_millis()).unwrap_or(u64::MAX),
            settings,
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(reap(Arc::downgrade(&pool)));
            clock::start();
        }
        pool
    }

    /// Sends `req` (origin-form on the wire; its `Host` header is kept) and returns the
    /// response (its fields in `form`), whose body returns the connection to the pool once read to the end.
    ///
    /// A server may close an idle keep-alive connection just as a request is sent on it. When
    /// that happens before any answer, an idempotent request without a body is sent once more
    /// on a new connection, as browsers and nginx do.
    pub async fn send(
        self: &Arc<Self>,
        req: Request<Body>,
        connect_timeout: Duration,
        form: Fields,
    ) -> Result<Response<Body>, SendFailure> {
        let (conn, reused) = match self.take_idle() {
            Some(c) => (c, true),
            None => match self.open(connect_timeout).await {
                Ok(c) => (c, false),
                // Nothing was written: the request goes back to the caller whole.
                Err(error) => {
                    return Err(SendFailure {
                        error,
                        unsent: Some(req),
                    })
                }
            },
        };
        let failure = match client::send(conn, req, Arc::downgrade(self), form).await {
            Ok(mut resp) => {
                if !reused {
                    resp.extensions_mut().insert(FreshConnection);
                }
                return Ok(resp);
            }
            Err(f) => f,
        };
        let stale = reused && matches!(failure.error, crate::h1::Error::NoResponse);
        let (true, Some(replay)) = (reused, failure.replay) else {
            return Err(SendFailure::sent(if stale {
                // Not the pool's to send again (a body, or not idempotent): the retry stage
                // decides.
                UpstreamError::StaleHttp1 {
                    addr: self.addr,
                    source: failure.error,
                }
            } else {
                self.failed(failure.error)
            }));
        };
        tracing::debug!(addr = %self.addr, error = %failure.error, "idle connection was closed; sending again");
        let conn = self.open(connect_timeout).await?;
        let mut resp = client::replay(conn, replay, Arc::downgrade(self))
            .await
            .map_err(|e| self.failed(e))?;
        resp.extensions_mut().insert(FreshConnection);
        Ok(resp)
    }

    fn failed(&self, source: crate::h1::Error) -> UpstreamError {
        UpstreamError::Http1 {
            addr: self.addr,
            source,
        }
    }

    fn take_idle(&self) -> Option<Conn> {
        let now = clock::coarse_ms();
        while let Some(idle) = self.idle.pop() {
            if self.fresh(&idle, now) {
                return Some(idle.conn);
            }
        }
        None
    }

    /// Within its idle time, and not closed (nor written to) by the server meanwhile.
    fn fresh(&self, idle: &Idle, now_ms: u64) -> bool {
        // The coarse clock errs by a tick: a connection is let go a tick early, never late.
        let age = now_ms.saturating_sub(idle.since_ms) + clock::TICK.as_millis() as u64;
        age < self.idle_timeout_ms && idle.conn.is_reusable()
    }

    /// Closes the idle connections past their time or closed by the server; keeps the rest.
    /// Returns how many it closed.
    fn reap_once(&self) -> usize {
        let now = clock::coarse_ms();
        let mut closed = 0;
        // At most the connections idle now: one put back is not looked at twice.
        for _ in 0..self.idle.len() {
            let Some(idle) = self.idle.pop() else { break };
            if self.fresh(&idle, now) {
                let _ = self.idle.push(idle);
            } else {
                closed += 1;
            }
        }
        closed
    }

    /// A new connection; under a connection limit, a place for it first (or an idle
    /// connection that came back while waiting for one).
    async fn open(&self, connect_timeout: Duration) -> Result<Conn, UpstreamError> {
        let lease = match &self.settings.connections {
            None => None,
            Some(limit) => match self.place(limit, connect_timeout).await? {
                Place::Lease(lease) => Some(lease),
                Place::Idle(conn) => return Ok(conn),
            },
        };
        let mut conn = Conn::new(connect(self.addr, connect_timeout).await?);
        conn.lease = lease;
        Ok(conn)
    }

    async fn place(
        &self,
        limit: &Arc<ConnectionLimit>,
        connect_timeout: Duration,
    ) -> Result<Place, UpstreamError> {
        let deadline = tokio::time::Instant::now() + connect_timeout;
        loop {
            if let Some(lease) = limit.lease() {
                return Ok(Place::Lease(lease));
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match limit.full(left) {
                Full::Refused(e) => return Err(UpstreamError::Overloaded(e)),
                Full::Wait(left) => {
                    let freed = limit.wait(left).await;
                    if let Some(conn) = self.take_idle() {
                        return Ok(Place::Idle(conn));
                    }
                    if !freed {
                        limit.overflows_pending.inc();
                        return Err(UpstreamError::Overloaded(limits::overloaded(format!(
                            "connectionPool.tcp.maxConnections ({}) of {} stayed busy for the connect timeout ({connect_timeout:?})",
                            limit.max_connections, limit.service
                        ))));
                    }
                }
            }
        }
    }
}

/// Where [`Http1Pool::open`] found a connection under a limit.
enum Place {
    Lease(Lease),
    Idle(Conn),
}

impl Recycle for Weak<Http1Pool> {
    fn recycle(&self, mut conn: Conn) {
        let Some(pool) = self.upgrade() else { return };
        conn.served = conn.served.saturating_add(1);
        let max = pool.settings.max_requests_per_connection;
        if max > 0 && conn.served >= max {
            // Closed: its place under the limit comes free with it.
            return;
        }
        // A full queue drops the connection: enough are idle already.
        let _ = pool.idle.push(Idle {
            conn,
            since_ms: clock::coarse_ms(),
        });
        if let Some(limit) = &pool.settings.connections {
            limit.returned();
        }
    }
}

/// Every second (or half the idle timeout, when shorter), closes what [`Http1Pool::reap_once`]
/// finds stale; ends with the pool.
async fn reap(pool: Weak<Http1Pool>) {
    let period = match pool.upgrade() {
        Some(p) => {
            (p.settings.idle_timeout / 2).clamp(Duration::from_millis(10), Duration::from_secs(1))
        }
        None => return,
    };
    loop {
        tokio::time::sleep(period).await;
        let Some(pool) = pool.upgrade() else { return };
        let closed = pool.reap_once();
        if closed > 0 {
            tracing::trace!(addr = %pool.addr, closed, "closed idle connections");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::BodyExt;
    use hyper::body::Incoming;
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;

    use super::*;
    use crate::http::{empty, full};

    /// A server that counts the connections it accepts; `/empty` answers with no body.
    async fn server() -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let svc = hyper::service::service_fn(|req: Request<Incoming>| async move {
                    let body = if req.uri().path() == "/empty" {
                        empty()
                    } else {
                        full("hello")
                    };
                    Ok::<_, std::convert::Infallible>(Response::new(body))
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc),
                );
            }
        });
        (addr, accepted)
    }

    #[tokio::test]
    async fn reuses_one_connection_for_sequential_requests() {
        let (addr, accepted) = server().await;
        let pool = Http1Pool::new(addr, PoolSettings::idle(Duration::from_secs(4)));
        for path in ["/a", "/empty", "/b", "/empty", "/c"] {
            let req = Request::get(format!("http://example{path}"))
                .header("host", "example")
                .body(empty())
                .expect("req");
            let resp = pool
                .send(req, Duration::from_secs(1), Fields::Map)
                .await
                .expect("send");
            let body = resp.into_body().collect().await.expect("body").to_bytes();
            assert_eq!(
                &body[..],
                if path == "/empty" {
                    &b""[..]
                } else {
                    &b"hello"[..]
                }
            );
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "one keep-alive connection"
        );
    }

    #[tokio::test]
    async fn a_response_dropped_halfway_does_not_poison_the_pool() {
        let (addr, accepted) = server().await;
        let pool = Http1Pool::new(addr, PoolSettings::idle(Duration::from_secs(4)));
        let req = Request::get("/a")
            .header("host", "example")
            .body(empty())
            .expect("req");
        drop(
            pool.send(req, Duration::from_secs(1), Fields::Map)
                .await
                .expect("send"),
        );
        let req = Request::get("/b")
            .header("host", "example")
            .body(empty())
            .expect("req");
        let resp = pool
            .send(req, Duration::from_secs(1), Fields::Map)
            .await
            .expect("send");
        assert_eq!(
            &resp.into_body().collect().await.expect("body").to_bytes()[..],
            b"hello"
        );
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            2,
            "the abandoned connection was not reused"
        );
    }

    fn get(path: &str) -> Request<Body> {
        Request::get(path)
            .header("host", "example")
            .body(empty())
            .expect("req")
    }

    #[tokio::test]
    async fn an_idle_connection_past_its_time_is_not_reused() {
        let (addr, accepted) = server().await;
        let pool = Http1Pool::new(addr, PoolSettings::idle(Duration::from_millis(300)));
        for wait in [0, 100, 600] {
            tokio::time::sleep(Duration::from_millis(wait)).await;
            let resp = pool
                .send(get("/a"), Duration::from_secs(1), Fields::Map)
                .await
                .expect("send");
            resp.into_body().collect().await.expect("body");
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            2,
            "reused after 100 ms, replaced after 600 ms"
        );
    }

    /// A server that answers one request per connection with keep-alive, then closes the
    /// connection 100 ms later (as a server with a short keep-alive timeout does).
    async fn closing_server() -> SocketAddr {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = stream.read(&mut buf).await;
                    let _ = stream
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .await;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn connections_the_server_closed_are_reaped_not_left_in_close_wait() {
        let addr = closing_server().await;
        let pool = Http1Pool::new(addr, PoolSettings::idle(Duration::from_secs(4)));
        let resp = pool
            .send(get("/a"), Duration::from_secs(1), Fields::Map)
            .await
            .expect("send");
        resp.into_body().collect().await.expect("body");
        assert_eq!(pool.idle.len(), 1, "kept alive");
        // The server closes it after 100 ms; the reaper looks every second.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(
            pool.idle.len(),
            0,
            "closed by the reaper, not kept half-closed"
        );
        // And the next request opens a new connection without an error.
        let resp = pool
            .send(get("/b"), Duration::from_secs(1), Fields::Map)
            .await
            .expect("send");
        assert_eq!(
            &resp.into_body().collect().await.expect("body").to_bytes()[..],
            b"ok"
        );
    }
}
