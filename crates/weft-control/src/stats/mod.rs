//! Golden metrics of the whole mesh for `weft stat`, read from the proxies themselves: the
//! control plane scrapes every meshed workload's proxy (`/metrics`) on an interval and keeps a
//! short history of each, reduced to what a window needs ([`sample`]). A `GET /stat` scrapes
//! once more, so its window ends now, and answers per Service, route, workload and edge
//! ([`report`]).
//!
//! Bounded: at most [`KEEP`] of history and [`MAX_SAMPLES`] samples per proxy; scrapes run
//! [`CONCURRENCY`] at a time, each within [`SCRAPE_TIMEOUT`]. A proxy that does not answer is
//! named in the report (with why), and the rest is still reported.

pub mod parse;
pub mod report;
pub mod sample;
pub mod series;
pub mod window;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;

use crate::audit::ledger::Ledger;
use crate::proxy_route::{ProxyDialer, ProxyRoute};
use crate::published::Published;
use sample::Sample;

/// History kept per proxy.
pub const KEEP: Duration = Duration::from_secs(15 * 60);
pub const MAX_SAMPLES: usize = 400;
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(3);
pub const CONCURRENCY: usize = 16;

#[derive(Default)]
struct History {
    samples: VecDeque<Arc<Sample>>,
    /// Why the last scrape failed, until one succeeds.
    error: Option<String>,
}

pub struct Stats {
    history: Mutex<HashMap<String, History>>,
    pub interval: Duration,
    /// The audit's rolling summary, fed by the same scrapes.
    pub ledger: Ledger,
    /// How proxies behind a host's tunnel are reached.
    dialer: Arc<ProxyDialer>,
}

impl Stats {
    pub fn new(interval: Duration, ledger: Ledger, dialer: Arc<ProxyDialer>) -> Stats {
        Stats {
            history: Mutex::new(HashMap::new()),
            interval,
            ledger,
            dialer,
        }
    }

    /// Scrapes every proxy of the published model each interval, until dropped.
    pub async fn run(self: Arc<Self>, store: Arc<crate::store::Store>) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.scrape_all(&store.current()).await;
        }
    }

    /// Scrapes every meshed workload's proxy of `published` now.
    pub async fn scrape_all(&self, published: &Published) {
        let targets: Vec<(String, ProxyRoute)> = crate::proxies_api::proxies(published);
        let results: Vec<(String, Result<Sample, String>)> =
            futures_util::stream::iter(targets.clone())
                .map(|(node, route)| async move {
                    let result = scrape(&self.dialer, &route).await.map(|text| {
                        let at = unix_now();
                        // The audit's ledger counts what grew since the last scrape.
                        self.ledger.observe(&node, &text, at as u64);
                        Sample::from_metrics(&text, at)
                    });
                    (node, result)
                })
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
        let live: Vec<String> = targets.iter().map(|(n, _)| n.clone()).collect();
        self.ledger.retain(&live);
        let mut history = self.lock();
        // Workloads that left the model leave the history.
        history.retain(|node, _| targets.iter().any(|(n, _)| n == node));
        for (node, result) in results {
            let h = history.entry(node).or_default();
            match result {
                Ok(sample) => {
                    h.error = None;
                    let oldest_kept = sample.at - KEEP.as_secs_f64();
                    h.samples.push_back(Arc::new(sample));
                    while h.samples.len() > MAX_SAMPLES
                        || h.samples.front().is_some_and(|s| s.at < oldest_kept)
                    {
                        h.samples.pop_front();
                    }
                }
                Err(e) => h.error = Some(e),
            }
        }
    }

    /// For each proxy: its latest sample and the one `window` before it (or its oldest), or
    /// why it could not be read.
    pub fn spans(&self, window: Duration) -> HashMap<String, Result<report::Span, String>> {
        let history = self.lock();
        history
            .iter()
            .map(|(node, h)| {
                let span = match (h.samples.back(), &h.error) {
                    (_, Some(e)) => Err(e.clone()),
                    (None, None) => Err("not scraped yet".to_string()),
                    (Some(latest), None) => {
                        let start = latest.at - window.as_secs_f64();
                        let earlier = h
                            .samples
                            .iter()
                            .rev()
                            .find(|s| s.at <= start + 0.5)
                            .or(h.samples.front())
                            .filter(|s| !Arc::ptr_eq(s, latest))
                            .cloned();
                        Ok(report::Span {
                            latest: latest.clone(),
                            earlier,
                        })
                    }
                };
                (node.clone(), span)
            })
            .collect()
    }

    /// The kept samples of each of `nodes` (oldest first).
    pub fn samples(&self, nodes: &[String]) -> HashMap<String, Vec<Arc<Sample>>> {
        let history = self.lock();
        nodes
            .iter()
            .filter_map(|n| {
                history
                    .get(n)
                    .map(|h| (n.clone(), h.samples.iter().cloned().collect()))
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, History>> {
        self.history.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A proxy's `/metrics` text.
async fn scrape(dialer: &ProxyDialer, route: &ProxyRoute) -> Result<String, String> {
    // /metrics is open: the token goes only where it is needed.
    let (status, text) =
        crate::proxy_admin::get(dialer, route, "/metrics", None, SCRAPE_TIMEOUT).await?;
    if status != http::StatusCode::OK {
        return Err(format!("{route} answered /metrics with {status}"));
    }
    Ok(text)
}

pub(crate) fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
