//! A client connection's HTTP/1.1 request loop: read a head, hand the request to the proxy's
//! handler, write the response, and go on while the client keeps the connection alive.
//!
//! Requests this codec leaves alone ([`Parsed::Unusual`]: upgrades, `CONNECT`, `Expect`,
//! HTTP/1.0, heads over a limit, malformed input) end the loop with the connection handed
//! back, bytes already read included, so that the caller serves the rest of it with hyper,
//! exactly as before this codec existed (hyper answers bad input with 400 or 431).
//!
//! Waiting is bounded twice: a connection idle between requests is closed after
//! `keep_alive_timeout`, and a head that has begun must be complete within
//! `header_read_timeout` of its first bytes (a slow client cannot hold a connection by
//! trickling a head). The timer is lazy: armed once, and moved only when it fires early, so a
//! keep-alive request costs no timer operations.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::{Method, Request, Response, StatusCode};
use http_body::Body as _;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::body::{ReadSide, RequestBody};
use super::decode::{Decoder, Framing};
use super::head::{self, Parsed};
use super::verbatim::VerbatimFields;
use super::{encode, io, write};
use crate::drain;
use crate::http::client_body::client_request;
use crate::http::server::Limits;
use crate::http::{empty, Body};
use crate::io::prefixed::PrefixedIo;

/// The proxy's side of a request: answer it, whatever happens.
pub trait Handle {
    fn handle(&self, req: Request<Body>) -> impl Future<Output = Response<Body>>;
}

/// How a connection's loop ended.
pub enum Outcome {
    /// The connection is finished (closed by the client, timed out, drained, or broken).
    Done,
    /// A request for hyper: serve the connection from here on with it.
    Handoff(PrefixedIo<TcpStream>),
}

pub async fn serve<H: Handle>(
    stream: TcpStream,
    prefix: Bytes,
    handler: &H,
    limits: Limits,
    watch: &drain::Watch,
) -> Outcome {
    let (read, write) = stream.into_split();
    let mut side = Some(ReadSide {
        io: read,
        buf: BytesMut::from(&prefix[..]),
    });
    let drained = std::pin::pin!(watch.signaled());
    let first = limits.header_read_timeout.min(limits.keep_alive_timeout);
    let timer = std::pin::pin!(tokio::time::sleep(first));
    let mut waits = Waits {
        watch,
        drained,
        drain_armed: false,
        timer,
        timer_armed: false,
    };
    loop {
        let Some(mut read) = side.take() else {
            return Outcome::Done;
        };
        let head = match next_head(&mut read, &limits, &mut waits).await {
            Next::Head(h) => h,
            Next::Unusual => return handoff(read, write),
            Next::End => return Outcome::Done,
        };
        let head_request = head.parts.method == Method::HEAD;
        let (req, returned) = match head.framing {
            Framing::Empty => {
                side = Some(read);
                (Request::from_parts(head.parts, empty()), None)
            }
            framing => {
                let (tx, rx) = oneshot::channel();
                let body = RequestBody::new(read, Decoder::new(framing), tx);
                (client_request(head.parts, body), Some(rx))
            }
        };
        // Pinned where it is made: the handler's future is large, and moving it into the
        // watcher would copy it (twice) per request.
        let handling = std::pin::pin!(handler.handle(req));
        let Some(resp) = unless_client_leaves(handling, side.as_mut()).await else {
            tracing::debug!("client closed its connection before the answer; request cancelled");
            return Outcome::Done;
        };
        let mut returned = returned;
        // The body usually comes back before the response (read whole, or dropped unread).
        if let Some(rx) = returned.as_mut() {
            if let Ok(back) = rx.try_recv() {
                side = back.into_reusable();
                returned = None;
            }
        }
        let close =
            !head.keep_alive || watch.is_draining() || (returned.is_none() && side.is_none());
        if write_response(&write, resp, head_request, close)
            .await
            .is_err()
            || close
        {
            return Outcome::Done;
        }
        if let Some(rx) = returned {
            // Still held (an HTTP/2 upstream finishing the upload): wait, but not forever.
            match tokio::time::timeout(limits.header_read_timeout, rx).await {
                Ok(Ok(back)) => side = back.into_reusable(),
                _ => return Outcome::Done,
            }
        }
    }
}

/// Runs the handler; while the connection's read side is here (the request had no body),
/// also watches it, so that a client that goes away cancels its request — and the upstream
/// exchange with it — instead of leaving it to run (a long poll, say). Bytes that arrive
/// meanwhile (a pipelined request) stay in the buffer. `None`: the client left.
async fn unless_client_leaves<F: Future<Output = Response<Body>>>(
    mut handling: Pin<&mut F>,
    mut read: Option<&mut ReadSide>,
) -> Option<Response<Body>> {
    std::future::poll_fn(|cx| {
        if let Poll::Ready(resp) = handling.as_mut().poll(cx) {
            return Poll::Ready(Some(resp));
        }
        if let Some(side) = read.as_deref_mut() {
            match io::poll_fill(&mut side.io, &mut side.buf, cx) {
                Poll::Ready(Ok(0) | Err(_)) => return Poll::Ready(None),
                // Stop watching: the rest of a pipelined request waits in the socket.
                Poll::Ready(Ok(_)) => read = None,
                Poll::Pending => {}
            }
        }
        Poll::Pending
    })
    .await
}

// Made once per request and moved straight into it; boxing the head would cost an allocation.
#[allow(clippy::large_enum_variant)]
enum Next {
    Head(head::RequestHead),
    Unusual,
    End,
}

/// What a connection waiting for a request head watches besides its socket: the drain and
/// the head timer. Each is polled once to register this task's waker and is then left alone;
/// a wake-up is told apart with an atomic load (`is_draining`, `is_elapsed`) instead of
/// polling both again before every request (about 300 instructions, and a lock in the drain's
/// `Notify`). This relies on the loop running in a task of its own, as every connection does.
struct Waits<'a, D> {
    watch: &'a drain::Watch,
    drained: Pin<&'a mut D>,
    drain_armed: bool,
    timer: Pin<&'a mut tokio::time::Sleep>,
    timer_armed: bool,
}

// The one poll that arms each of them runs outside the task's cooperative budget: with the
// budget used up (a long body read just before), a `Sleep` answers `Pending` without
// registering, and a timer never registered never fires; the connection would keep no head
// timeout at all.
impl<D: Future<Output = ()>> Waits<'_, D> {
    fn drained(&mut self, cx: &mut Context<'_>) -> bool {
        if self.watch.is_draining() {
            return true;
        }
        if !self.drain_armed {
            self.drain_armed = true;
            let arming = std::pin::pin!(tokio::task::unconstrained(self.drained.as_mut()));
            return arming.poll(cx).is_ready();
        }
        false
    }

    fn timer_fired(&mut self, cx: &mut Context<'_>) -> bool {
        if self.timer_armed {
            return self.timer.is_elapsed();
        }
        self.timer_armed = true;
        let arming = std::pin::pin!(tokio::task::unconstrained(self.timer.as_mut()));
        arming.poll(cx).is_ready()
    }

    fn reset_timer(&mut self, deadline: Instant) {
        self.timer.as_mut().reset(deadline.into());
        self.timer_armed = false;
    }
}

/// Reads until `read.buf` starts with a whole request head.
async fn next_head<D: Future<Output = ()>>(
    read: &mut ReadSide,
    limits: &Limits,
    waits: &mut Waits<'_, D>,
) -> Next {
    let mut waiting_since = None;
    // When the head's first bytes were seen (now, if they are here already).
    let mut head_since = None;
    loop {
        match head::request(&mut read.buf, limits.max_headers, limits.head_bytes()) {
            Parsed::Complete(h) => return Next::Head(h),
            Parsed::Unusual => return Next::Unusual,
            Parsed::Partial if read.buf.len() > limits.head_bytes() => return Next::Unusual,
            Parsed::Partial => {}
        }
        let since = *waiting_since.get_or_insert_with(Instant::now);
        if head_since.is_none() && !read.buf.is_empty() {
            head_since = Some(Instant::now());
        }
        let event = std::future::poll_fn(|cx: &mut Context<'_>| {
            if let Poll::Ready(r) = io::poll_fill(&mut read.io, &mut read.buf, cx) {
                return Poll::Ready(Event::Read(r));
            }
            // Between requests a drain closes the connection; mid-head the timer decides.
            if read.buf.is_empty() && waits.drained(cx) {
                return Poll::Ready(Event::Drained);
            }
            if waits.timer_fired(cx) {
                return Poll::Ready(Event::Timer);
            }
            Poll::Pending
        })
        .await;
        match event {
            Event::Read(Ok(0)) | Event::Read(Err(_)) | Event::Drained => return Next::End,
            Event::Read(Ok(_)) => {}
            Event::Timer => {
                let deadline = match head_since {
                    Some(t) => t + limits.header_read_timeout,
                    None => since + limits.keep_alive_timeout,
                };
                if Instant::now() >= deadline {
                    if head_since.is_some() {
                        tracing::debug!(
                            timeout = ?limits.header_read_timeout,
                            "closing HTTP/1 connection: no complete request head in time"
                        );
                    } else {
                        tracing::trace!(
                            timeout = ?limits.keep_alive_timeout,
                            "closing HTTP/1 connection idle between requests"
                        );
                    }
                    return Next::End;
                }
                waits.reset_timer(deadline);
            }
        }
    }
}

enum Event {
    Read(std::io::Result<usize>),
    Drained,
    Timer,
}

fn handoff(read: ReadSide, write: OwnedWriteHalf) -> Outcome {
    match read.io.reunite(write) {
        Ok(stream) => Outcome::Handoff(PrefixedIo::new(read.buf.freeze(), stream)),
        Err(_) => Outcome::Done,
    }
}

async fn write_response(
    io: &OwnedWriteHalf,
    resp: Response<Body>,
    head_request: bool,
    close: bool,
) -> Result<(), super::Error> {
    let (mut parts, mut body) = resp.into_parts();
    let verbatim = parts.extensions.remove::<VerbatimFields>();
    let status = parts.status;
    let bodiless = head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let framing = if bodiless {
        Framing::UntilClose
    } else {
        let declared = match &verbatim {
            Some(v) if v.content_length.is_some() => v.content_length,
            _ => encode::declared_length(&parts.headers),
        };
        encode::body_framing(declared, body.is_end_stream(), body.size_hint().exact())
    };
    let verbatim_len = verbatim.as_ref().map_or(0, VerbatimFields::wire_len);
    let mut out = write::message_buffer(&parts.headers, verbatim_len, framing);
    encode::response_head(
        &mut out,
        status,
        verbatim.as_ref(),
        &parts.headers,
        framing,
        close,
    );
    if bodiless || framing == Framing::Empty {
        return Ok(write::write_all(io, &out).await?);
    }
    write::write_body(io, &mut out, &mut body, framing, std::future::pending()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_head_timer_is_armed_even_when_the_budget_is_used_up() {
        let (_drain, watch) = drain::channel();
        let mut waits = Waits {
            watch: &watch,
            drained: std::pin::pin!(watch.signaled()),
            drain_armed: false,
            timer: std::pin::pin!(tokio::time::sleep(Duration::from_millis(500))),
            timer_armed: false,
        };
        std::future::poll_fn(|cx| {
            // Spend the task's whole budget, as a long body read does.
            loop {
                let unit = std::pin::pin!(tokio::task::consume_budget());
                if unit.poll(cx).is_pending() {
                    break;
                }
            }
            assert!(!waits.timer_fired(cx), "not yet");
            assert!(!waits.drained(cx), "not draining");
            Poll::Ready(())
        })
        .await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        let fired = std::future::poll_fn(|cx| Poll::Ready(waits.timer_fired(cx))).await;
        assert!(
            fired,
            "the timer was registered when it was armed, and has fired"
        );
    }
}
