//! A client's request body, watched: when forwarding a request fails, the stage that sent it
//! asks whether the client's own body broke off or was malformed (a bad chunk size, a body
//! shorter than its Content-Length, a reset stream). If so the client is told 400 — its
//! fault — instead of a 502 that blames the upstream.
//!
//! The upstream error alone cannot say: hyper's HTTP/2 client resets the stream and reports
//! only the reset. So the body records its own failure in a flag the request carries.
//! Requests without a body (most) carry nothing and cost nothing.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::Request;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;

use super::{Body, BoxError};

/// Whether a request's body has failed; shared by the body and whoever forwards it.
#[derive(Clone, Debug, Default)]
pub struct BodyWatch(Arc<AtomicBool>);

impl BodyWatch {
    /// The watch of `req`'s body, if it has one.
    pub fn of<B>(req: &Request<B>) -> Option<BodyWatch> {
        req.extensions().get::<BodyWatch>().cloned()
    }

    pub fn failed(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Reading the client's request body failed.
#[derive(Debug, thiserror::Error)]
#[error("reading the client's request body: {0}")]
pub struct ClientBodyError(#[source] pub BoxError);

/// A client's request as the handlers take it: the body boxed, and watched when there is one.
pub fn client_request<B>(parts: http::request::Parts, body: B) -> Request<Body>
where
    B: http_body::Body<Data = Bytes> + Send + Sync + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    if body.is_end_stream() {
        return Request::from_parts(parts, super::boxed(body));
    }
    let watch = BodyWatch::default();
    let mut req = Request::from_parts(
        parts,
        Watched {
            inner: body,
            watch: watch.clone(),
        }
        .boxed(),
    );
    req.extensions_mut().insert(watch);
    req
}

struct Watched<B> {
    inner: B,
    watch: BodyWatch,
}

impl<B> http_body::Body for Watched<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Err(e)) => {
                this.watch.0.store(true, Ordering::Release);
                Poll::Ready(Some(Err(Box::new(ClientBodyError(e.into())))))
            }
            other => Poll::Ready(other.map(|r| r.map_err(Into::into))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::StreamBody;

    #[tokio::test]
    async fn a_failing_body_marks_its_request() {
        let frames: Vec<Result<Frame<Bytes>, BoxError>> = vec![
            Ok(Frame::data(Bytes::from_static(b"hello"))),
            Err("bad chunk size".into()),
        ];
        let body = StreamBody::new(futures_util::stream::iter(frames));
        let (parts, ()) = Request::new(()).into_parts();
        let req = client_request(parts, body);
        let watch = BodyWatch::of(&req).expect("a body is watched");
        let mut body = req.into_body();
        assert!(body.frame().await.is_some_and(|f| f.is_ok()));
        assert!(!watch.failed());
        let err = body.frame().await.and_then(|f| f.err()).expect("error");
        assert!(watch.failed());
        assert!(err.to_string().contains("bad chunk size"), "{err}");

        // No body, no watch.
        let (parts, ()) = Request::new(()).into_parts();
        let req = client_request(parts, crate::http::empty());
        assert!(BodyWatch::of(&req).is_none());
    }
}
