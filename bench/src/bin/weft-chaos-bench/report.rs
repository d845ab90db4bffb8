//! What a scenario's records and samples say: success rates, latency, how long until the bad
//! endpoint got no more traffic, retries against the budget; and the Markdown table.

use std::fmt::Write as _;

use crate::probe::Sample;

/// One request, as the load generator recorded it.
pub struct Row {
    pub due_ms: u64,
    pub latency_us: u64,
    pub status: u16,
    /// From the request's actual send to its answer (see the load generator).
    pub service_us: u64,
}

pub fn parse_records(csv: &str) -> Vec<Row> {
    csv.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Some(Row {
                due_ms: f.first()?.parse().ok()?,
                latency_us: f.get(1)?.parse().ok()?,
                status: f.get(2)?.parse().ok()?,
                service_us: f.get(5)?.parse().ok()?,
            })
        })
        .collect()
}

/// The p50 and p99 (in ms) of durations in microseconds.
pub fn quantiles(us: impl Iterator<Item = u64>) -> (f64, f64) {
    let mut v: Vec<u64> = us.collect();
    v.sort_unstable();
    let q = |p: f64| {
        if v.is_empty() {
            return 0.0;
        }
        let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
        v[i] as f64 / 1000.0
    };
    (q(0.5), q(0.99))
}

/// Success share and latency quantiles (of the successful requests, in ms) of `rows`.
#[derive(Clone, Copy, Default)]
pub struct Window {
    pub requests: usize,
    pub ok: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Window {
    pub fn of<'a>(rows: impl Iterator<Item = &'a Row>, ok: impl Fn(&Row) -> bool) -> Window {
        let mut requests = 0;
        let mut latencies: Vec<u64> = Vec::new();
        for r in rows {
            requests += 1;
            if ok(r) {
                latencies.push(r.latency_us);
            }
        }
        latencies.sort_unstable();
        let q = |p: f64| {
            if latencies.is_empty() {
                return 0.0;
            }
            let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
            latencies[i] as f64 / 1000.0
        };
        Window {
            requests,
            ok: latencies.len(),
            p50_ms: q(0.5),
            p99_ms: q(0.99),
        }
    }

    pub fn success(&self) -> f64 {
        if self.requests == 0 {
            return 0.0;
        }
        100.0 * self.ok as f64 / self.requests as f64
    }
}

/// When, after `from_ms`, a counter stopped growing: the start of the first second (five
/// samples) in which it grew by at most `tolerance`. `None`: it never stopped.
pub fn stopped_growing(
    samples: &[Sample],
    from_ms: u64,
    value: impl Fn(&Sample) -> Option<f64>,
    tolerance: f64,
) -> Option<u64> {
    let after: Vec<&Sample> = samples.iter().filter(|s| s.at_ms >= from_ms).collect();
    for (i, start) in after.iter().enumerate() {
        let Some(end) = after.get(i + 5) else { break };
        match (value(start), value(end)) {
            (Some(a), Some(b)) if b - a <= tolerance => {
                return Some(start.at_ms.saturating_sub(from_ms));
            }
            // Unreachable throughout (a killed or cut endpoint): it gets nothing.
            (None, None) => return Some(start.at_ms.saturating_sub(from_ms)),
            _ => {}
        }
    }
    None
}

/// One scenario's line of the table.
pub struct Result {
    pub title: String,
    pub baseline: Window,
    pub fault: Window,
    pub settled: Window,
    pub detect_ms: Option<u64>,
    pub retries: f64,
    pub allowance: f64,
    pub refused_by_budget: f64,
    pub note: String,
}

pub fn markdown(results: &[Result], header: &str) -> String {
    let mut md = String::from(header);
    md.push_str("\n| scenario | healthy p50 / p99 ms | success under fault | success once settled | p50 / p99 ms under fault | bad endpoint out after | retries / budget allowance | retries refused by the budget | note |\n|---|---|---|---|---|---|---|---|---|\n");
    for r in results {
        let _ = writeln!(
            md,
            "| {} | {:.2} / {:.2} | {:.3}% ({}/{}) | {:.3}% | {:.2} / {:.2} | {} | {:.0} / {:.0} ({}) | {:.0} | {} |",
            r.title,
            r.baseline.p50_ms,
            r.baseline.p99_ms,
            r.fault.success(),
            r.fault.ok,
            r.fault.requests,
            r.settled.success(),
            r.fault.p50_ms,
            r.fault.p99_ms,
            r.detect_ms.map_or("—".to_string(), |ms| format!("{:.1} s", ms as f64 / 1000.0)),
            r.retries,
            r.allowance,
            if r.retries <= r.allowance { "within" } else { "OVER" },
            r.refused_by_budget,
            r.note,
        );
    }
    md
}
