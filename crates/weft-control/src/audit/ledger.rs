//! The audit's memory: a compact rolling summary of every proxy's counters, so that `weft audit`
//! answers from what the mesh observed over a day or a week without Prometheus.
//!
//! Each scrape of a proxy (the same scrapes `weft stat` uses) is compared with the one before
//! it; what each counter grew by is added, as a [`Fact`], to the bucket of the current five
//! minutes. The first scrape of a proxy is only a baseline (as Prometheus's `increase` takes
//! it), a counter that went down was reset (the proxy restarted) and counts from zero.
//!
//! Bounded: [`KEEP`] of buckets (a week); facts are the mesh's own names, so a bucket holds as
//! many as the mesh has edges, routes and policies. The buckets are written to the state
//! directory when one closes, and read back at start, so a restarted control plane keeps its
//! history.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::facts::Fact;
use crate::stats::parse;

/// One bucket's length.
pub const BUCKET: Duration = Duration::from_secs(300);
/// History kept.
pub const KEEP: Duration = Duration::from_secs(7 * 24 * 3600);
/// The file under the state directory.
pub const FILE: &str = "audit-ledger.json";

/// The counts of one bucket.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Bucket {
    /// Unix seconds at its start (a multiple of [`BUCKET`]).
    pub start: u64,
    pub facts: Vec<(Fact, f64)>,
}

#[derive(Default)]
struct Inner {
    /// Each proxy's counters at its last scrape, by series (the metric line up to its value).
    last: HashMap<String, HashMap<String, f64>>,
    /// Closed buckets, oldest first.
    closed: VecDeque<Bucket>,
    /// The bucket being filled: its start and its counts.
    open: Option<(u64, BTreeMap<Fact, f64>)>,
    /// When the first bucket (kept or read back) began: how far back the ledger sees.
    since: Option<u64>,
}

pub struct Ledger {
    inner: Mutex<Inner>,
    /// Where the buckets are kept (`None`: only in memory).
    path: Option<PathBuf>,
}

/// What the ledger saw over a window: the facts summed, in each half too (for growth).
#[derive(Debug, Default)]
pub struct Window {
    /// The seconds of the window the ledger actually covers.
    pub covered_seconds: u64,
    pub totals: BTreeMap<Fact, f64>,
    pub first_half: BTreeMap<Fact, f64>,
    pub second_half: BTreeMap<Fact, f64>,
}

impl Ledger {
    /// A ledger kept in `state_dir` (read back from it when it holds one).
    pub fn open(state_dir: Option<PathBuf>) -> Ledger {
        let path = state_dir.map(|d| d.join(FILE));
        let mut inner = Inner::default();
        if let Some(p) = &path {
            match std::fs::read(p) {
                Ok(bytes) => match serde_json::from_slice::<Vec<Bucket>>(&bytes) {
                    Ok(buckets) => {
                        inner.since = buckets.first().map(|b| b.start);
                        inner.closed = buckets.into();
                    }
                    Err(e) => {
                        tracing::warn!(path = %p.display(), error = %e, "the audit ledger could not be read; starting a new one")
                    }
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %p.display(), error = %e, "the audit ledger could not be read; starting a new one")
                }
            }
        }
        Ledger {
            inner: Mutex::new(inner),
            path,
        }
    }

    /// Adds what workload `node`'s counters grew by since its last scrape (`text`, its
    /// `/metrics`, read at unix time `at`).
    pub fn observe(&self, node: &str, text: &str, at: u64) {
        let mut current: HashMap<String, f64> = HashMap::new();
        let mut grown: Vec<(Fact, f64)> = Vec::new();
        // Parsed outside the lock: queries wait only for the sums.
        let (first, last) = match self.lock().last.remove(node) {
            Some(last) => (false, last),
            None => (true, HashMap::new()),
        };
        for raw in text.lines().filter(|l| l.starts_with("weft_")) {
            let Some(line) = parse::line(raw) else {
                continue;
            };
            let Some(fact) = Fact::of(node, &line) else {
                continue;
            };
            let series = raw.rsplit_once(' ').map_or(raw, |(s, _)| s).to_string();
            let before = last.get(&series).copied();
            let delta = match before {
                _ if first => 0.0,
                Some(b) if line.value >= b => line.value - b,
                // Reset, or a series new since the last scrape: all of it is new.
                _ => line.value,
            };
            if delta > 0.0 {
                grown.push((fact, delta));
            }
            current.insert(series, line.value);
        }
        let mut inner = self.lock();
        inner.last.insert(node.to_string(), current);
        let closed = inner.roll(at);
        let (_, open) = inner
            .open
            .get_or_insert_with(|| (bucket_of(at), BTreeMap::new()));
        for (fact, delta) in grown {
            *open.entry(fact).or_default() += delta;
        }
        if closed {
            self.persist(&inner);
        }
    }

    /// Forgets the baselines of proxies that left the mesh (their history stays).
    pub fn retain(&self, live: &[String]) {
        self.lock().last.retain(|node, _| live.contains(node));
    }

    /// The facts over the `window` before unix time `now`.
    pub fn window(&self, window: Duration, now: u64) -> Window {
        let inner = self.lock();
        let start = now.saturating_sub(window.as_secs());
        // Halves of what the ledger covers of the window, not of the window itself.
        let seen_from = inner.since.unwrap_or(now).max(start);
        let middle = seen_from + now.saturating_sub(seen_from) / 2;
        let mut w = Window::default();
        let open = inner.open.as_ref().map(|(s, f)| (*s, f.iter()));
        let closed = inner
            .closed
            .iter()
            .map(|b| (b.start, b.facts.iter().map(|(f, n)| (f, n))));
        let mut add = |bucket_start: u64, fact: &Fact, n: f64| {
            if bucket_start + BUCKET.as_secs() <= start {
                return;
            }
            *w.totals.entry(fact.clone()).or_default() += n;
            let half = if bucket_start < middle {
                &mut w.first_half
            } else {
                &mut w.second_half
            };
            *half.entry(fact.clone()).or_default() += n;
        };
        for (s, facts) in closed {
            for (f, n) in facts {
                add(s, f, *n);
            }
        }
        if let Some((s, facts)) = open {
            for (f, n) in facts {
                add(s, f, *n);
            }
        }
        w.covered_seconds = now.saturating_sub(seen_from);
        w
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the closed buckets (whole, then renamed); a failure is logged, not fatal.
    fn persist(&self, inner: &Inner) {
        let Some(path) = &self.path else {
            return;
        };
        let buckets: Vec<&Bucket> = inner.closed.iter().collect();
        let Ok(bytes) = serde_json::to_vec(&buckets) else {
            return;
        };
        let tmp = path.with_extension("json.tmp");
        if let Err(e) = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path)) {
            tracing::warn!(path = %path.display(), error = %e, "the audit ledger could not be written");
        }
    }
}

impl Inner {
    /// Closes the open bucket when `at` is past it, and drops buckets older than [`KEEP`];
    /// true when a bucket closed.
    fn roll(&mut self, at: u64) -> bool {
        self.since.get_or_insert(at);
        let now_bucket = bucket_of(at);
        let mut closed = false;
        if let Some((start, _)) = &self.open {
            if *start < now_bucket {
                if let Some((start, facts)) = self.open.take() {
                    self.closed.push_back(Bucket {
                        start,
                        facts: facts.into_iter().collect(),
                    });
                    closed = true;
                }
            }
        }
        let oldest = at.saturating_sub(KEEP.as_secs());
        while self
            .closed
            .front()
            .is_some_and(|b| b.start + BUCKET.as_secs() <= oldest)
        {
            self.closed.pop_front();
        }
        if let Some(first) = self.closed.front() {
            self.since = Some(self.since.map_or(first.start, |s| s.max(first.start)));
        }
        closed
    }
}

fn bucket_of(at: u64) -> u64 {
    at - at % BUCKET.as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DENY: &str =
        r#"weft_authz_decisions_total{policy="shop/deny-write",action="DENY",result="denied"}"#;

    fn metrics(denied: u64) -> String {
        format!("# TYPE weft_authz_decisions_total counter\n{DENY} {denied}\nprocess_cpu_seconds_total 1\n")
    }

    fn denied(w: &Window) -> f64 {
        w.totals
            .get(&Fact::Authz {
                policy: "shop/deny-write".into(),
                result: "denied".into(),
            })
            .copied()
            .unwrap_or(0.0)
    }

    #[test]
    fn counts_growth_from_a_baseline_across_resets_and_buckets() {
        let ledger = Ledger::open(None);
        let t0 = 1_000_000 - 1_000_000 % 300;
        ledger.observe("shop/a", &metrics(50), t0); // baseline: not counted
        ledger.observe("shop/a", &metrics(60), t0 + 10);
        ledger.observe("shop/a", &metrics(4), t0 + 20); // restarted: 4 new
        ledger.observe("shop/a", &metrics(9), t0 + 400); // next bucket
        let w = ledger.window(Duration::from_secs(3600), t0 + 400);
        assert_eq!(denied(&w), 10.0 + 4.0 + 5.0);
        assert_eq!(w.covered_seconds, 400);
        // Halves of a 600 s window ending at t0+400: the first bucket is in the first half.
        let w = ledger.window(Duration::from_secs(600), t0 + 400);
        let fact = Fact::Authz {
            policy: "shop/deny-write".into(),
            result: "denied".into(),
        };
        assert_eq!(w.first_half.get(&fact), Some(&14.0));
        assert_eq!(w.second_half.get(&fact), Some(&5.0));
        // A short window sees the last bucket only.
        let w = ledger.window(Duration::from_secs(60), t0 + 400);
        assert_eq!(denied(&w), 5.0);
    }

    #[test]
    fn buckets_survive_a_restart_and_old_ones_go() {
        let dir = std::env::temp_dir().join(format!("weft-ledger-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let t0 = 2_000_000 - 2_000_000 % 300;
        {
            let ledger = Ledger::open(Some(dir.clone()));
            ledger.observe("shop/a", &metrics(0), t0);
            ledger.observe("shop/a", &metrics(7), t0 + 10);
            ledger.observe("shop/a", &metrics(7), t0 + 300); // closes the first bucket
        }
        let ledger = Ledger::open(Some(dir.clone()));
        assert_eq!(
            denied(&ledger.window(Duration::from_secs(3600), t0 + 310)),
            7.0
        );
        // A week later the bucket is gone.
        ledger.observe("shop/a", &metrics(7), t0 + KEEP.as_secs() + 600);
        let w = ledger.window(KEEP, t0 + KEEP.as_secs() + 600);
        assert_eq!(denied(&w), 0.0);
        std::fs::write(dir.join(FILE), "not json").expect("write");
        assert_eq!(
            denied(&Ledger::open(Some(dir.clone())).window(KEEP, t0)),
            0.0
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
