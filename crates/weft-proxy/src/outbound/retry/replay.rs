//! A request body that can be sent again: the first try streams it to the endpoint while
//! keeping a copy of what passed, up to a cap; a retry replays the copy, then goes on
//! reading the client where the last try stopped. A body longer than the cap is streamed
//! on without a copy and its request is not retried (as Linkerd's `ReplayBody`).
//!
//! No lock: each try's body owns the copy and the unread rest while the try runs, and hands
//! both back through a oneshot channel when the try drops it (the HTTP/2 client drops a
//! request body in its own task, so the retry stage waits for it, briefly).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::sync::oneshot;

use crate::http::{Body, BoxError};

/// How long a retry waits for the last try to give the body back.
const HANDBACK_TIMEOUT: Duration = Duration::from_secs(1);

/// What passes from one try to the next.
struct Kept {
    /// Data frames read from the client so far (none once the cap is passed).
    frames: Vec<Bytes>,
    len: u64,
    trailers: Option<HeaderMap>,
    /// The client's body not read yet; `None` once it ended.
    rest: Option<Body>,
    /// False once the body outgrew the cap or broke: it cannot be sent again.
    replayable: bool,
}

/// Held by the retry stage: the way to each try's copy of the body.
pub struct Replay {
    cap: u64,
    back: Option<oneshot::Receiver<Kept>>,
}

impl Replay {
    /// The first try's body, and the handle for the next tries.
    pub fn start(body: Body, cap: u64) -> (Replay, Body) {
        let kept = Kept {
            frames: Vec::new(),
            len: 0,
            trailers: None,
            rest: Some(body),
            replayable: true,
        };
        let mut replay = Replay { cap, back: None };
        let body = replay.tee(kept);
        (replay, body)
    }

    /// The body again for the next try, when the last one gave it back whole enough to
    /// replay; `None` when it cannot be sent again.
    pub async fn again(&mut self) -> Option<Body> {
        let back = self.back.take()?;
        let kept = tokio::time::timeout(HANDBACK_TIMEOUT, back)
            .await
            .ok()?
            .ok()?;
        kept.replayable.then(|| self.tee(kept))
    }

    fn tee(&mut self, kept: Kept) -> Body {
        let (tx, rx) = oneshot::channel();
        self.back = Some(rx);
        Tee {
            kept: Some(kept),
            next: 0,
            trailers_sent: false,
            cap: self.cap,
            back: Some(tx),
        }
        .boxed()
    }
}

/// One try's body: the kept frames first, then the client's, copied as they pass.
struct Tee {
    kept: Option<Kept>,
    /// The next kept frame to send.
    next: usize,
    trailers_sent: bool,
    cap: u64,
    back: Option<oneshot::Sender<Kept>>,
}

impl http_body::Body for Tee {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let cap = this.cap;
        let Some(kept) = this.kept.as_mut() else {
            return Poll::Ready(None);
        };
        if let Some(frame) = kept.frames.get(this.next) {
            this.next += 1;
            return Poll::Ready(Some(Ok(Frame::data(frame.clone()))));
        }
        let Some(rest) = kept.rest.as_mut() else {
            if !this.trailers_sent {
                this.trailers_sent = true;
                if let Some(t) = &kept.trailers {
                    return Poll::Ready(Some(Ok(Frame::trailers(t.clone()))));
                }
            }
            return Poll::Ready(None);
        };
        match std::task::ready!(Pin::new(rest).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    keep(kept, data, cap);
                    this.next = kept.frames.len();
                } else if let Some(t) = frame.trailers_ref() {
                    kept.trailers = Some(t.clone());
                    this.trailers_sent = true;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(e)) => {
                kept.replayable = false;
                Poll::Ready(Some(Err(e)))
            }
            None => {
                kept.rest = None;
                this.trailers_sent = true;
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        let Some(kept) = &self.kept else { return true };
        self.next >= kept.frames.len()
            && kept.rest.as_ref().is_none_or(|r| r.is_end_stream())
            && (self.trailers_sent || kept.trailers.is_none())
    }

    fn size_hint(&self) -> SizeHint {
        let Some(kept) = &self.kept else {
            return SizeHint::with_exact(0);
        };
        let queued: u64 = kept
            .frames
            .get(self.next..)
            .map_or(0, |f| f.iter().map(|b| b.len() as u64).sum());
        match &kept.rest {
            None => SizeHint::with_exact(queued),
            Some(rest) => {
                let r = rest.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(queued + r.lower());
                if let Some(upper) = r.upper() {
                    hint.set_upper(queued + upper);
                }
                hint
            }
        }
    }
}

/// Copies a data frame that passed, or gives up the copy once the body outgrows the cap.
fn keep(kept: &mut Kept, data: &Bytes, cap: u64) {
    if !kept.replayable {
        return;
    }
    let len = kept.len + data.len() as u64;
    if len > cap {
        kept.replayable = false;
        kept.frames = Vec::new();
        return;
    }
    kept.len = len;
    if !data.is_empty() {
        kept.frames.push(data.clone());
    }
}

impl Drop for Tee {
    fn drop(&mut self) {
        if let (Some(back), Some(kept)) = (self.back.take(), self.kept.take()) {
            // The retry stage may be gone (the request answered): nothing to hand back to.
            let _ = back.send(kept);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::full;
    use http_body::Body as _;
    use http_body_util::{BodyExt, StreamBody};

    async fn read(body: Body) -> (Vec<u8>, Option<HeaderMap>) {
        let collected = body.collect().await.expect("body");
        let trailers = collected.trailers().cloned();
        (collected.to_bytes().to_vec(), trailers)
    }

    /// A body of `chunks`, then trailers.
    fn streamed(chunks: &[&'static str], trailer: bool) -> Body {
        let mut frames: Vec<Result<Frame<Bytes>, BoxError>> = chunks
            .iter()
            .map(|c| Ok(Frame::data(Bytes::from_static(c.as_bytes()))))
            .collect();
        if trailer {
            let mut t = HeaderMap::new();
            t.insert("grpc-status", http::HeaderValue::from_static("0"));
            frames.push(Ok(Frame::trailers(t)));
        }
        StreamBody::new(futures_util::stream::iter(frames)).boxed()
    }

    #[tokio::test]
    async fn a_body_under_the_cap_is_sent_again_whole_with_its_trailers() {
        let (mut replay, first) = Replay::start(streamed(&["ab", "cd", "ef"], true), 64);
        let (data, trailers) = read(first).await;
        assert_eq!(data, b"abcdef");
        assert!(trailers.is_some());
        for _ in 0..2 {
            let again = replay.again().await.expect("replayable");
            assert_eq!(again.size_hint().exact(), Some(6));
            let (data, trailers) = read(again).await;
            assert_eq!(data, b"abcdef");
            assert_eq!(
                trailers.and_then(|t| t.get("grpc-status").cloned()),
                Some(http::HeaderValue::from_static("0"))
            );
        }
    }

    #[tokio::test]
    async fn a_try_that_read_part_hands_back_the_part_and_the_rest() {
        let (mut replay, mut first) = Replay::start(streamed(&["ab", "cd", "ef"], false), 64);
        let frame = first.frame().await.expect("a frame").expect("ok");
        assert_eq!(frame.data_ref().map(|b| &b[..]), Some(&b"ab"[..]));
        drop(first);
        let (data, _) = read(replay.again().await.expect("replayable")).await;
        assert_eq!(data, b"abcdef");
        // A try that never read at all (a refused connection) hands back everything.
        let (mut replay, first) = Replay::start(full("hello"), 64);
        drop(first);
        let (data, _) = read(replay.again().await.expect("replayable")).await;
        assert_eq!(data, b"hello");
    }

    #[tokio::test]
    async fn a_body_over_the_cap_streams_but_is_not_replayed() {
        let (mut replay, first) = Replay::start(streamed(&["abcd", "efgh"], false), 6);
        assert_eq!(read(first).await.0, b"abcdefgh");
        assert!(replay.again().await.is_none());
        // Exactly the cap is kept.
        let (mut replay, first) = Replay::start(streamed(&["abc", "def"], false), 6);
        assert_eq!(read(first).await.0, b"abcdef");
        assert!(replay.again().await.is_some());
    }

    #[tokio::test]
    async fn a_broken_client_body_is_not_replayed() {
        let frames: Vec<Result<Frame<Bytes>, BoxError>> = vec![
            Ok(Frame::data(Bytes::from_static(b"ab"))),
            Err("reset".into()),
        ];
        let (mut replay, first) = Replay::start(
            StreamBody::new(futures_util::stream::iter(frames)).boxed(),
            64,
        );
        assert!(first.collect().await.is_err());
        assert!(replay.again().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_never_handed_back_is_not_waited_for_long() {
        let (mut replay, first) = Replay::start(full("x"), 64);
        let held = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            drop(first);
        });
        assert!(replay.again().await.is_none());
        held.abort();
    }
}
