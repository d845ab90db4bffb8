//! The open-loop load generator.
//!
//! Request `i` has an intended start time `t0 + i / rate`, fixed before the run. At each
//! tick of a precise timer the next due request takes a free connection (of `connections`
//! keep-alive HTTP/1.1 connections); when none is free it waits for one, and that wait is
//! part of its latency, because latency is measured from the *intended* start to the end of
//! the response. A slow server therefore shows up as latency instead of silently lowering
//! the request rate (no coordinated omission).
//!
//! Everything is bounded: the schedule has a fixed number of requests, every request has a
//! 2 s timeout, and the whole run a deadline (schedule length + 5 s) after which whatever did
//! not complete counts as failed. The generator runs on its own thread with a
//! current-thread tokio runtime.

mod conn;
mod timer;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use hdrhistogram::Histogram;
use tokio::sync::mpsc;

use conn::{Conn, Prepared, ReqError};
use timer::{mono_ns, Ticker};

use crate::request::RequestShape;

/// Per-request timeout.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// What to send, where, and how fast.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub target: SocketAddr,
    pub request: RequestShape,
    pub rate: u32,
    pub warmup: Duration,
    pub duration: Duration,
    pub connections: usize,
}

/// Outcome of the measured window (warm-up requests are not counted).
pub struct LoadResult {
    /// Requests the schedule called for in the measured window.
    pub scheduled: u64,
    /// Of those, answered 200.
    pub ok: u64,
    /// Failures by kind (`connect`, `send`, `timeout`, `status 503`, …) with a first example.
    pub errors: BTreeMap<String, (u64, String)>,
    /// Latency (intended start → response complete) of the OK requests, in nanoseconds.
    pub latency: Histogram<u64>,
    /// Intended start → the request got a connection and was handed to hyper, nanoseconds:
    /// the load generator's own lateness plus the wait for a free connection.
    pub send_lag: Histogram<u64>,
}

impl LoadResult {
    pub fn failed(&self) -> u64 {
        self.scheduled - self.ok
    }
}

struct Done {
    index: u64,
    intended: u64,
    sent: u64,
    finished: u64,
    outcome: Result<u16, ReqError>,
}

/// Runs `plan` on a dedicated thread. `at_measure_start` runs on that thread when the first
/// measured request is due (to snapshot CPU counters); its value is returned, or `None`
/// when the run never got that far.
pub fn run<T: Send>(
    plan: &LoadPlan,
    at_measure_start: impl FnOnce() -> T + Send,
) -> Result<(LoadResult, Option<T>)> {
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name(format!("loadgen-{}", plan.rate))
            .spawn_scoped(s, move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("building the load generator runtime")?;
                rt.block_on(drive(plan, at_measure_start))
            })
            .context("spawning the load generator thread")?;
        handle
            .join()
            .map_err(|_| anyhow!("the load generator thread panicked"))?
    })
}

async fn drive<T>(
    plan: &LoadPlan,
    at_measure_start: impl FnOnce() -> T,
) -> Result<(LoadResult, Option<T>)> {
    let interval = (1_000_000_000 / u64::from(plan.rate.max(1))).max(1);
    let count = |d: Duration| (f64::from(plan.rate) * d.as_secs_f64()).round() as u64;
    let warm = count(plan.warmup);
    let total = warm + count(plan.duration).max(1);
    let mut acc = Accum::new(warm, total - warm)?;

    let (tx, mut rx) = mpsc::unbounded_channel::<(Conn, Option<Done>)>();
    for _ in 0..plan.connections {
        let _ = tx.send((Conn::new(plan.target), None));
    }
    // Parsed once: the generator's own CPU per request is measured and should not grow with
    // the setup's headers.
    let request = Arc::new(Prepared::new(&plan.request)?);
    let start = mono_ns() + 5_000_000;
    let ticker = Ticker::new(start, interval)?;
    let schedule = Duration::from_nanos(total * interval);
    let deadline =
        tokio::time::Instant::now() + schedule + REQUEST_TIMEOUT + Duration::from_secs(5);
    let mut hook = Some(at_measure_start);
    let mut hooked = None;

    let work = async {
        let (mut fired, mut next, mut in_flight) = (0u64, 0u64, 0u64);
        while next < total {
            while next >= fired {
                fired += ticker.tick().await?;
            }
            let (conn, done) = rx
                .recv()
                .await
                .ok_or_else(|| anyhow!("connection pool channel closed"))?;
            if let Some(done) = done {
                in_flight -= 1;
                acc.record(done);
            }
            if next == warm {
                if let Some(hook) = hook.take() {
                    hooked = Some(hook());
                }
            }
            let intended = start + next * interval;
            tokio::spawn(one(conn, next, intended, request.clone(), tx.clone()));
            in_flight += 1;
            next += 1;
        }
        while in_flight > 0 {
            match rx.recv().await {
                Some((_, Some(done))) => {
                    in_flight -= 1;
                    acc.record(done);
                }
                Some((_, None)) => {}
                None => break,
            }
        }
        anyhow::Ok(())
    };
    match tokio::time::timeout_at(deadline, work).await {
        Ok(result) => result?,
        Err(_) => eprintln!(
            "weft-bench: load at {} req/s hit its deadline; unfinished requests count as failed",
            plan.rate
        ),
    }
    Ok((acc.finish(), hooked))
}

async fn one(
    mut conn: Conn,
    index: u64,
    intended: u64,
    request: Arc<Prepared>,
    tx: mpsc::UnboundedSender<(Conn, Option<Done>)>,
) {
    let sent = mono_ns();
    let outcome = match tokio::time::timeout(REQUEST_TIMEOUT, conn.get(&request)).await {
        Ok(outcome) => outcome,
        Err(_) => {
            conn.reset();
            Err(ReqError {
                kind: "timeout",
                detail: format!("no complete response within {REQUEST_TIMEOUT:?}"),
            })
        }
    };
    let finished = mono_ns();
    let done = Done {
        index,
        intended,
        sent,
        finished,
        outcome,
    };
    let _ = tx.send((conn, Some(done)));
}

/// Collects the measured window's outcomes.
struct Accum {
    warm: u64,
    scheduled: u64,
    ok: u64,
    errors: BTreeMap<String, (u64, String)>,
    latency: Histogram<u64>,
    send_lag: Histogram<u64>,
}

impl Accum {
    fn new(warm: u64, scheduled: u64) -> Result<Accum> {
        let hist = || {
            Histogram::new_with_bounds(1_000, 60_000_000_000, 3)
                .map_err(|e| anyhow!("creating a latency histogram: {e}"))
        };
        Ok(Accum {
            warm,
            scheduled,
            ok: 0,
            errors: BTreeMap::new(),
            latency: hist()?,
            send_lag: hist()?,
        })
    }

    fn record(&mut self, done: Done) {
        if done.index < self.warm {
            return;
        }
        self.send_lag
            .saturating_record(done.sent.saturating_sub(done.intended).max(1_000));
        let (kind, detail) = match done.outcome {
            Ok(200) => {
                self.ok += 1;
                let latency = done.finished.saturating_sub(done.intended).max(1_000);
                self.latency.saturating_record(latency);
                return;
            }
            Ok(code) => (format!("status {code}"), format!("HTTP {code}")),
            Err(e) => (e.kind.to_string(), e.detail),
        };
        self.errors.entry(kind).or_insert((0, detail)).0 += 1;
    }

    fn finish(mut self) -> LoadResult {
        let seen = self.ok + self.errors.values().map(|(n, _)| n).sum::<u64>();
        if seen < self.scheduled {
            let missing = self.scheduled - seen;
            let detail = "not completed before the run's deadline".to_string();
            self.errors
                .insert("unfinished".to_string(), (missing, detail));
        }
        LoadResult {
            scheduled: self.scheduled,
            ok: self.ok,
            errors: self.errors,
            latency: self.latency,
            send_lag: self.send_lag,
        }
    }
}
