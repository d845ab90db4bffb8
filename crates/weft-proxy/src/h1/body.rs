//! A request body read from the client connection by whoever forwards it. The connection's
//! read side travels with the body and comes back to the request loop when the body ends or
//! is dropped, through a oneshot channel; a body left unread means the connection cannot
//! carry another request (its next bytes are the rest of this body).

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::oneshot;

use super::decode::Decoder;
use super::io;
use crate::http::BoxError;

/// The client connection's read half with what has been read and not yet used.
pub struct ReadSide {
    pub io: OwnedReadHalf,
    pub buf: BytesMut,
}

/// The read side coming back to the loop, with how far the body was read.
pub struct Returned {
    side: Option<ReadSide>,
    complete: bool,
}

impl Returned {
    /// The read side, if the next request can be read from it.
    pub fn into_reusable(self) -> Option<ReadSide> {
        self.side.filter(|_| self.complete)
    }
}

pub struct RequestBody {
    side: Option<ReadSide>,
    decoder: Decoder,
    back: Option<oneshot::Sender<Returned>>,
}

impl RequestBody {
    pub fn new(side: ReadSide, decoder: Decoder, back: oneshot::Sender<Returned>) -> Self {
        Self {
            side: Some(side),
            decoder,
            back: Some(back),
        }
    }

    /// Sends the read side back; `broken` when the connection is unusable.
    fn give_back(&mut self, broken: bool) {
        let side = self.side.take().filter(|_| !broken);
        if let Some(back) = self.back.take() {
            let _ = back.send(Returned {
                side,
                complete: self.decoder.is_done(),
            });
        }
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        self.give_back(false);
    }
}

impl http_body::Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let Some(side) = this.side.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = ready!(io::poll_body(
            &mut this.decoder,
            &mut side.io,
            &mut side.buf,
            cx
        ));
        match &polled {
            Some(Err(_)) => this.give_back(true),
            _ if this.decoder.is_done() => this.give_back(false),
            _ => {}
        }
        Poll::Ready(polled.map(|r| r.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.side.is_none() || self.decoder.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        match self.decoder.remaining() {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}
