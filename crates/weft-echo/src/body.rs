//! The response body every handler returns: at most one data frame, then
//! optional trailers (gRPC needs them). Small enough to not need boxing.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use hyper::body::{Body, Frame, SizeHint};

/// A complete response body: one chunk of bytes and optionally trailers.
#[derive(Debug, Default)]
pub(crate) struct EchoBody {
    data: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl EchoBody {
    /// No body at all (an empty HTTP/2 response ends with its headers).
    pub(crate) fn empty() -> Self {
        Self::default()
    }

    /// A body of `data` and no trailers.
    pub(crate) fn full(data: impl Into<Bytes>) -> Self {
        let data: Bytes = data.into();
        Self {
            data: (!data.is_empty()).then_some(data),
            trailers: None,
        }
    }

    /// A body of `data` followed by `trailers`.
    pub(crate) fn with_trailers(data: impl Into<Bytes>, trailers: HeaderMap) -> Self {
        Self {
            trailers: Some(trailers),
            ..Self::full(data)
        }
    }
}

impl Body for EchoBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(data) = this.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        if let Some(trailers) = this.trailers.take() {
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        // Trailers need a chunked HTTP/1.1 body, so only claim an exact size without them.
        let len = self.data.as_ref().map_or(0, |d| d.len() as u64);
        if self.trailers.is_some() {
            let mut hint = SizeHint::new();
            hint.set_lower(len);
            hint
        } else {
            SizeHint::with_exact(len)
        }
    }
}
