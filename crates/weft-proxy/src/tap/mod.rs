//! Live request tap (`GET /tap` on the admin endpoint, `weft tap` through the control plane):
//! each finished HTTP request this proxy handles, as one JSON line, to every tap whose filter
//! it matches.
//!
//! Costs and bounds:
//! - with no tap open, the request path reads one atomic ([`Tap::is_active`]);
//! - at most [`MAX_TAPS`] taps at once; each has a count limit, a rate limit (lines past it are
//!   dropped and counted, not queued) and a bounded queue a slow reader cannot grow;
//! - opening and closing a tap swaps the subscriber list (copy-on-write), off the request path.
//!
//! Lines never carry credentials: header values whose name or shape says secret are replaced
//! (see [`redact`]), and paths are shown without their query string.

mod redact;
mod subscriber;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use http::HeaderMap;

use subscriber::Subscriber;
pub use subscriber::{TapFilter, TapLimits, TapStream};

/// Most taps open on one proxy at once.
pub const MAX_TAPS: usize = 8;

#[derive(Default)]
pub struct Tap {
    /// How many taps are open: the request path's only check.
    open: AtomicUsize,
    subscribers: ArcSwap<Vec<Arc<Subscriber>>>,
}

/// What a finished request tells a tap.
pub struct Tapped<'a> {
    pub line: &'a serde_json::Value,
    pub direction: &'static str,
    pub method: &'a str,
    pub authority: &'a str,
    pub path: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum TapError {
    #[error("{MAX_TAPS} taps are open on this proxy already; try again when one ends")]
    TooMany,
}

impl Tap {
    /// Whether any tap is open: requests capture what a tap shows only then.
    #[inline]
    pub fn is_active(&self) -> bool {
        self.open.load(Ordering::Relaxed) > 0
    }

    /// Opens a tap; it closes when the returned stream is dropped or its limits are reached.
    pub fn open(
        self: &Arc<Self>,
        filter: TapFilter,
        limits: TapLimits,
    ) -> Result<TapStream, TapError> {
        let (subscriber, stream) = Subscriber::new(filter, limits, Arc::downgrade(self));
        let mut full = false;
        self.subscribers.rcu(|list| {
            full = list.len() >= MAX_TAPS;
            let mut next = list.as_ref().clone();
            if !full {
                next.push(subscriber.clone());
            }
            next
        });
        if full {
            return Err(TapError::TooMany);
        }
        self.open.fetch_add(1, Ordering::Relaxed);
        Ok(stream)
    }

    fn close(&self, id: u64) {
        let mut removed = false;
        self.subscribers.rcu(|list| {
            let next: Vec<Arc<Subscriber>> = list.iter().filter(|s| s.id != id).cloned().collect();
            removed = next.len() != list.len();
            next
        });
        if removed {
            self.open.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Hands a finished request to every open tap whose filter matches.
    pub fn publish(&self, tapped: &Tapped<'_>) {
        for s in self.subscribers.load().iter() {
            s.offer(tapped);
        }
    }
}

/// The request headers a tap shows, with credential values replaced.
pub fn shown_headers(headers: &HeaderMap) -> serde_json::Map<String, serde_json::Value> {
    let mut out = serde_json::Map::new();
    for (name, value) in headers {
        let name = name.as_str();
        if name.starts_with("weft-") || name == "l5d-dst-canonical" {
            continue;
        }
        let shown = redact::value(name, value.as_bytes());
        match out.get_mut(name) {
            Some(serde_json::Value::String(prev)) => {
                prev.push_str(", ");
                prev.push_str(&shown);
            }
            _ => {
                out.insert(name.to_string(), serde_json::Value::String(shown));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
