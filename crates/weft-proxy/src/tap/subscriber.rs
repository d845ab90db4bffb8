//! One open tap: its filter and limits on the publishing side, and the response body that
//! streams its lines (and closes the tap when dropped).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use tokio::sync::mpsc;

use super::{Tap, Tapped};

/// Lines queued for a tap's reader; past it lines are dropped (and counted).
const QUEUE: usize = 256;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Which requests a tap shows. Every given field must match.
#[derive(Clone, Debug, Default)]
pub struct TapFilter {
    /// `inbound` or `outbound`.
    pub direction: Option<&'static str>,
    /// The method, exactly (`GET`).
    pub method: Option<String>,
    /// A path prefix (`/api`).
    pub path: Option<String>,
    /// The authority (`reviews.shop:80`), exactly, or its host.
    pub authority: Option<String>,
}

impl TapFilter {
    fn matches(&self, t: &Tapped<'_>) -> bool {
        self.direction.is_none_or(|d| d == t.direction)
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(t.method))
            && self.path.as_deref().is_none_or(|p| t.path.starts_with(p))
            && self
                .authority
                .as_deref()
                .is_none_or(|a| t.authority == a || t.authority.split(':').next() == Some(a))
    }
}

/// How much a tap may show.
#[derive(Clone, Copy, Debug)]
pub struct TapLimits {
    /// Lines in all, then the tap ends.
    pub max: u64,
    /// Lines per second; more are dropped.
    pub per_second: u64,
    /// How long the tap stays open.
    pub duration: Duration,
}

pub(super) struct Subscriber {
    pub(super) id: u64,
    filter: TapFilter,
    per_second: u64,
    tx: mpsc::Sender<Bytes>,
    /// Lines still allowed.
    left: AtomicU64,
    /// The current second (high 32 bits) and lines sent in it (low 32 bits).
    window: AtomicU64,
    dropped: AtomicU64,
}

impl Subscriber {
    pub(super) fn new(
        filter: TapFilter,
        limits: TapLimits,
        tap: Weak<Tap>,
    ) -> (Arc<Subscriber>, TapStream) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let subscriber = Arc::new(Subscriber {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            filter,
            per_second: limits.per_second.max(1),
            tx,
            left: AtomicU64::new(limits.max),
            window: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        });
        let stream = TapStream {
            rx,
            deadline: Box::pin(tokio::time::sleep(limits.duration)),
            subscriber: subscriber.clone(),
            tap,
            max: limits.max,
            shown: 0,
            ended: false,
        };
        (subscriber, stream)
    }

    pub(super) fn offer(&self, tapped: &Tapped<'_>) {
        if !self.filter.matches(tapped) {
            return;
        }
        if self
            .left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_err()
        {
            return;
        }
        if !self.within_rate() {
            self.left.fetch_add(1, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut line = tapped.line.to_string();
        line.push('\n');
        if self.tx.try_send(Bytes::from(line)).is_err() {
            self.left.fetch_add(1, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A fixed one-second window, counted in one atomic.
    fn within_rate(&self) -> bool {
        let now = (crate::control::unix_now() & 0xffff_ffff) << 32;
        let mut allowed = false;
        let _ = self
            .window
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| {
                let (second, count) = (w & !0xffff_ffff, w & 0xffff_ffff);
                if second != now {
                    allowed = true;
                    return Some(now | 1);
                }
                allowed = count < self.per_second;
                allowed.then_some(w + 1)
            });
        allowed
    }
}

/// The tap's response body: one JSON line per request, then a last line saying why it
/// ended (`{"end": "max" | "time", "shown": N, "dropped": N}`).
pub struct TapStream {
    rx: mpsc::Receiver<Bytes>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    subscriber: Arc<Subscriber>,
    tap: Weak<Tap>,
    max: u64,
    shown: u64,
    ended: bool,
}

impl TapStream {
    fn last_line(
        &mut self,
        why: &str,
    ) -> Poll<Option<Result<Frame<Bytes>, std::convert::Infallible>>> {
        self.ended = true;
        self.close();
        let line = serde_json::json!({
            "end": why,
            "shown": self.shown,
            "dropped": self.subscriber.dropped.load(Ordering::Relaxed),
        });
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(line.to_string() + "\n")))))
    }

    fn close(&self) {
        if let Some(tap) = self.tap.upgrade() {
            tap.close(self.subscriber.id);
        }
    }
}

#[cfg(test)]
impl TapStream {
    /// The same stream, ending `after` from now.
    pub(super) fn with_duration_for_test(mut self, after: Duration) -> TapStream {
        self.deadline = Box::pin(tokio::time::sleep(after));
        self
    }
}

impl Drop for TapStream {
    fn drop(&mut self) {
        self.close();
    }
}

impl http_body::Body for TapStream {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if self.shown >= self.max {
            return self.last_line("max");
        }
        if let Poll::Ready(Some(line)) = self.rx.poll_recv(cx) {
            self.shown += 1;
            return Poll::Ready(Some(Ok(Frame::data(line))));
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            return self.last_line("time");
        }
        Poll::Pending
    }
}
