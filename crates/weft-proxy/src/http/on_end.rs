//! A response body that says when it ends, for what is only known then: a gRPC call's
//! status. A gRPC server sends `grpc-status` in the trailers, after the last message; only a
//! call that fails before any message has it in the response head ("trailers-only"). What
//! records the call (its metric, its span) waits for the end of the stream, and runs exactly
//! once: at the end, on an error, or when the body is dropped before either (the client went
//! away), then without a status.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, Response};
use http_body::{Body as _, Frame, SizeHint};

use crate::h1::verbatim;
use crate::http::{boxed, Body, BoxError};

/// A gRPC status already in the response head, if any.
pub fn grpc_status_in_head(resp: &Response<Body>) -> Option<u32> {
    verbatim::header(resp, "grpc-status").and_then(parse_status)
}

/// Whether the call's status is still to come: a gRPC answer without one in its head and
/// with a body to read.
pub fn status_pending(grpc: bool, resp: &Response<Body>) -> bool {
    grpc && !resp.body().is_end_stream() && grpc_status_in_head(resp).is_none()
}

/// Wraps `resp`'s body so that `done` runs once when it ends, with the trailers' gRPC status.
pub fn on_end<F>(resp: Response<Body>, done: F) -> Response<Body>
where
    F: FnOnce(Option<u32>) + Send + Sync + 'static,
{
    resp.map(|body| {
        boxed(OnEnd {
            body,
            grpc_status: None,
            done: Some(done),
        })
    })
}

fn parse_status(value: &[u8]) -> Option<u32> {
    std::str::from_utf8(value).ok()?.parse().ok()
}

fn trailer_status(trailers: &HeaderMap) -> Option<u32> {
    parse_status(trailers.get("grpc-status")?.as_bytes())
}

struct OnEnd<F: FnOnce(Option<u32>)> {
    body: Body,
    grpc_status: Option<u32>,
    /// Taken when run.
    done: Option<F>,
}

impl<F: FnOnce(Option<u32>)> OnEnd<F> {
    fn finish(&mut self) {
        if let Some(done) = self.done.take() {
            done(self.grpc_status);
        }
    }
}

impl<F: FnOnce(Option<u32>) + Send + Sync + 'static> http_body::Body for OnEnd<F> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        // `OnEnd` is Unpin: the body is boxed and `F` is only ever moved out, never pinned.
        let this = Pin::into_inner(self);
        let polled = ready!(Pin::new(&mut this.body).poll_frame(cx));
        match &polled {
            Some(Ok(frame)) => {
                if let Some(trailers) = frame.trailers_ref() {
                    this.grpc_status = trailer_status(trailers);
                }
            }
            Some(Err(_)) | None => this.finish(),
        }
        Poll::Ready(polled)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl<F: FnOnce(Option<u32>)> Drop for OnEnd<F> {
    fn drop(&mut self) {
        self.finish();
    }
}

impl<F: FnOnce(Option<u32>)> Unpin for OnEnd<F> {}
