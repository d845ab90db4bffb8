//! Keep-alive HTTP/1 connections to one address (an application port, or an endpoint without
//! a proxy), reused without locks.
//!
//! A connection is taken from a lock-free queue of idle ones (or opened), carries one request
//! through Weft's own HTTP/1 client ([`crate::h1::client`]), and goes back to the queue when
//! its response body has been read to the end. A response abandoned halfway leaves its
//! connection in an unknown state, so that connection is closed instead.

use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use http::{Request, Response};

use super::upstream::{connect, UpstreamError};
use super::Body;
use crate::h1::client::{self, Conn, Recycle};
use crate::h1::verbatim::Fields;

/// Idle connections kept per address; more are closed when they finish.
const MAX_IDLE: usize = 64;

pub struct Http1Pool {
    addr: SocketAddr,
    idle: ArrayQueue<Conn>,
}

impl Http1Pool {
    pub fn new(addr: SocketAddr) -> Arc<Self> {
        Arc::new(Self {
            addr,
            idle: ArrayQueue::new(MAX_IDLE),
        })
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
    ) -> Result<Response<Body>, UpstreamError> {
        let (conn, reused) = match self.take_idle() {
            Some(c) => (c, true),
            None => (self.open(connect_timeout).await?, false),
        };
        let failure = match client::send(conn, req, Arc::downgrade(self), form).await {
            Ok(resp) => return Ok(resp),
            Err(f) => f,
        };
        let (true, Some(replay)) = (reused, failure.replay) else {
            return Err(self.failed(failure.error));
        };
        tracing::debug!(addr = %self.addr, error = %failure.error, "idle connection was closed; sending again");
        let conn = self.open(connect_timeout).await?;
        client::replay(conn, replay, Arc::downgrade(self))
            .await
            .map_err(|e| self.failed(e))
    }

    fn failed(&self, source: crate::h1::Error) -> UpstreamError {
        UpstreamError::Http1 {
            addr: self.addr,
            source,
        }
    }

    fn take_idle(&self) -> Option<Conn> {
        while let Some(conn) = self.idle.pop() {
            if conn.is_reusable() {
                return Some(conn);
            }
        }
        None
    }

    async fn open(&self, connect_timeout: Duration) -> Result<Conn, UpstreamError> {
        Ok(Conn::new(connect(self.addr, connect_timeout).await?))
    }
}

impl Recycle for Weak<Http1Pool> {
    fn recycle(&self, conn: Conn) {
        if let Some(pool) = self.upgrade() {
            // A full queue drops the connection: enough are idle already.
            let _ = pool.idle.push(conn);
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
        let pool = Http1Pool::new(addr);
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
        let pool = Http1Pool::new(addr);
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
}
