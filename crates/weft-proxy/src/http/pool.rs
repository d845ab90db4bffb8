//! Keep-alive HTTP/1 connections to one address (an application port, or an endpoint without
//! a proxy), reused without locks.
//!
//! A connection is taken from a lock-free queue of idle ones (or opened), carries one request,
//! and goes back to the queue when its response body has been read to the end. A response
//! abandoned halfway leaves its connection in an unknown state, so that connection is closed
//! instead.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use crossbeam_queue::ArrayQueue;
use http::{Request, Response, Uri};
use hyper::body::{Body as _, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;

use super::upstream::{connect, UpstreamError};
use super::{Body, BoxError};

/// Idle connections kept per address; more are closed when they finish.
const MAX_IDLE: usize = 64;

pub struct Http1Pool {
    addr: SocketAddr,
    idle: ArrayQueue<SendRequest<Body>>,
}

impl Http1Pool {
    pub fn new(addr: SocketAddr) -> Arc<Self> {
        Arc::new(Self {
            addr,
            idle: ArrayQueue::new(MAX_IDLE),
        })
    }

    /// Sends `req` (origin-form on the wire; its `Host` header is kept) and returns the
    /// response, whose body returns the connection to the pool once read to the end.
    pub async fn send(
        self: &Arc<Self>,
        mut req: Request<Body>,
        connect_timeout: Duration,
    ) -> Result<Response<Body>, UpstreamError> {
        origin_form(&mut req);
        *req.version_mut() = http::Version::HTTP_11;
        let mut sender = match self.take_idle().await {
            Some(s) => s,
            None => self.open(connect_timeout).await?,
        };
        let resp = sender
            .send_request(req)
            .await
            .map_err(|source| UpstreamError::Request {
                addr: self.addr,
                source,
            })?;
        let (parts, body) = resp.into_parts();
        let body = ReturnOnEnd {
            body,
            sender: Some(sender),
            pool: Arc::downgrade(self),
        };
        let body: Body = http_body_util::BodyExt::boxed(body);
        Ok(Response::from_parts(parts, body))
    }

    async fn take_idle(&self) -> Option<SendRequest<Body>> {
        while let Some(mut sender) = self.idle.pop() {
            if sender.is_closed() {
                continue;
            }
            // A connection is queued as soon as its response ended; the connection task may
            // still be finishing that exchange, so wait (briefly) until it can take another.
            if sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
        None
    }

    async fn open(&self, connect_timeout: Duration) -> Result<SendRequest<Body>, UpstreamError> {
        let stream = connect(self.addr, connect_timeout).await?;
        let (sender, conn) = http1::Builder::new()
            .handshake::<_, Body>(TokioIo::new(stream))
            .await
            .map_err(|source| UpstreamError::Handshake {
                addr: self.addr,
                source,
            })?;
        let addr = self.addr;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%addr, error = %e, "HTTP/1 connection closed");
            }
        });
        Ok(sender)
    }

    fn give_back(&self, sender: SendRequest<Body>) {
        if !sender.is_closed() {
            // A full queue drops the connection: enough are idle already.
            let _ = self.idle.push(sender);
        }
    }
}

/// HTTP/1 sends the path and query; the authority stays in `Host`.
fn origin_form<B>(req: &mut Request<B>) {
    if req.uri().authority().is_some() || req.uri().scheme().is_some() {
        let pq = req.uri().path_and_query().cloned();
        let mut parts = http::uri::Parts::default();
        parts.path_and_query = pq.or_else(|| Some(http::uri::PathAndQuery::from_static("/")));
        if let Ok(uri) = Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
}

/// A response body that returns its connection to the pool when it ends.
struct ReturnOnEnd {
    body: Incoming,
    sender: Option<SendRequest<Body>>,
    pool: Weak<Http1Pool>,
}

impl ReturnOnEnd {
    fn finished(&mut self) {
        if let (Some(sender), Some(pool)) = (self.sender.take(), self.pool.upgrade()) {
            pool.give_back(sender);
        }
    }
}

impl Drop for ReturnOnEnd {
    fn drop(&mut self) {
        // An empty body is never polled: the connection is still clean if nothing was left
        // unread.
        if self.body.is_end_stream() {
            self.finished();
        }
    }
}

impl http_body::Body for ReturnOnEnd {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.finished(),
            Poll::Ready(Some(Ok(_))) if self.body.is_end_stream() => self.finished(),
            Poll::Ready(Some(Err(_))) => self.sender = None,
            _ => {}
        }
        polled.map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::BodyExt;
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
            let resp = pool.send(req, Duration::from_secs(1)).await.expect("send");
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
        drop(pool.send(req, Duration::from_secs(1)).await.expect("send"));
        let req = Request::get("/b")
            .header("host", "example")
            .body(empty())
            .expect("req");
        let resp = pool.send(req, Duration::from_secs(1)).await.expect("send");
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
