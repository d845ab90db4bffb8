//! The results of a run: one [`Row`] per setup and rate, the derived comparisons (latency
//! added over direct, CPU ratios to Envoy and nginx, setups side by side in [`pairs`]), the
//! [`targets`], and writing them out as Markdown (`RESULTS.md`) and JSON (`results.json`).

mod markdown;
mod meta;
mod pairs;
mod rounds;
mod targets;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

pub use markdown::render;
pub use meta::Meta;
pub use pairs::Pair;

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Percentiles {
    /// From nanosecond values, rounded to 0.1 µs.
    pub fn from_ns(p50: u64, p90: u64, p99: u64, p999: u64, max: u64) -> Percentiles {
        let ms = |ns: u64| round_ms(ns as f64 / 1e6);
        Percentiles {
            p50: ms(p50),
            p90: ms(p90),
            p99: ms(p99),
            p999: ms(p999),
            max: ms(max),
        }
    }

    fn minus(&self, base: &Percentiles) -> Percentiles {
        Percentiles {
            p50: round_ms(self.p50 - base.p50),
            p90: round_ms(self.p90 - base.p90),
            p99: round_ms(self.p99 - base.p99),
            p999: round_ms(self.p999 - base.p999),
            max: round_ms(self.max - base.max),
        }
    }
}

/// Rounds milliseconds to 0.1 µs, so the JSON carries no float noise.
fn round_ms(ms: f64) -> f64 {
    (ms * 1e4).round() / 1e4
}

#[derive(Debug, Clone, Serialize)]
pub struct ErrorInfo {
    pub count: u64,
    pub example: String,
}

/// Resource use of one proxy (its process tree) during one measurement.
#[derive(Debug, Clone, Serialize)]
pub struct ProxyUsage {
    pub name: String,
    pub pids: Vec<u32>,
    /// Sum of VmHWM over the process tree, MB (10^6 bytes), read after the measurement.
    pub peak_rss_mb: Option<f64>,
    /// utime + stime over the measured window.
    pub cpu_seconds: Option<f64>,
    pub cpu_per_10k: Option<f64>,
    /// `cpu_per_10k` divided by Envoy's / nginx's at the same rate.
    pub ratio_vs_envoy: Option<f64>,
    pub ratio_vs_nginx: Option<f64>,
}

/// One setup at one rate.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub setup: String,
    pub rate: u32,
    /// How many rounds this row folds together (see [`rounds`]).
    pub rounds: u32,
    /// Summed over the rounds, as are `sent`, `ok`, `failed` and `errors`.
    pub measured_seconds: f64,
    /// Requests the open-loop schedule called for in the measured window.
    pub sent: u64,
    pub ok: u64,
    pub failed: u64,
    pub errors: BTreeMap<String, ErrorInfo>,
    /// Intended start → response complete, OK requests only.
    pub latency_ms: Option<Percentiles>,
    /// `latency_ms` minus direct's at the same rate in the same run.
    pub added_ms: Option<Percentiles>,
    /// Intended start → handed to a connection (load generator lateness + connection wait).
    pub send_lag_ms: Option<Percentiles>,
    pub proxies: Vec<ProxyUsage>,
    /// Sum over the setup's proxies.
    pub cpu_per_10k_total: Option<f64>,
    pub cpu_ratio_vs_envoy: Option<f64>,
    pub cpu_ratio_vs_nginx: Option<f64>,
    pub backend_cpu_per_10k: Option<f64>,
    pub loadgen_cpu_per_10k: Option<f64>,
    /// CPU used by everything else on the machine during the window, in cores.
    pub background_cores: Option<f64>,
}

/// A setup that did not run, and why.
#[derive(Debug, Clone, Serialize)]
pub struct SetupNote {
    pub setup: String,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    NotMeasured,
}

/// One of the project's performance targets and whether this run met it.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub goal: String,
    pub verdict: Verdict,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub meta: Meta,
    /// One row per setup and rate: the rounds folded together by [`Report::finish`].
    pub rows: Vec<Row>,
    /// Every round's own measurement, in the order taken.
    pub round_rows: Vec<Row>,
    pub skipped: Vec<SetupNote>,
    pub failed: Vec<SetupNote>,
    /// Setups side by side with the one they are judged against (see [`pairs`]).
    pub pairs: Vec<Pair>,
    pub targets: Vec<Target>,
}

impl Report {
    pub fn new(meta: Meta) -> Report {
        Report {
            meta,
            rows: Vec::new(),
            round_rows: Vec::new(),
            skipped: Vec::new(),
            failed: Vec::new(),
            pairs: Vec::new(),
            targets: Vec::new(),
        }
    }

    /// Folds the rounds together, fills in the comparisons between rows and evaluates the
    /// targets.
    pub fn finish(&mut self) {
        self.rows = rounds::merge(&self.round_rows);
        let rows = self.rows.clone();
        let get = |setup: &str, rate: u32| rows.iter().find(|r| r.setup == setup && r.rate == rate);
        for row in &mut self.rows {
            let direct = get("direct", row.rate).and_then(|d| d.latency_ms);
            if row.setup != "direct" {
                row.added_ms = row.latency_ms.zip(direct).map(|(l, d)| l.minus(&d));
            }
            let (setup, rate) = (row.setup.clone(), row.rate);
            let ratio = |ours: Option<f64>, other: &str| {
                let theirs = get(other, rate)?.cpu_per_10k_total?;
                (theirs > 0.0 && setup != other).then_some(ours? / theirs)
            };
            row.cpu_ratio_vs_envoy = ratio(row.cpu_per_10k_total, "envoy");
            row.cpu_ratio_vs_nginx = ratio(row.cpu_per_10k_total, "nginx");
            for p in &mut row.proxies {
                p.ratio_vs_envoy = ratio(p.cpu_per_10k, "envoy");
                p.ratio_vs_nginx = ratio(p.cpu_per_10k, "nginx");
            }
        }
        self.pairs = pairs::compare(&self.rows);
        self.targets = targets::evaluate(&self.rows);
    }

    /// Whether any measured request failed.
    pub fn any_failed_requests(&self) -> bool {
        self.round_rows.iter().any(|r| r.failed > 0)
    }

    /// Writes the Markdown and JSON files, creating their directories.
    pub fn write(&self, md_path: &Path, json_path: &Path) -> Result<()> {
        for path in [md_path, json_path] {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
        }
        std::fs::write(md_path, render(self))
            .with_context(|| format!("writing {}", md_path.display()))?;
        let json = serde_json::to_string_pretty(self).context("serializing results")?;
        std::fs::write(json_path, json + "\n")
            .with_context(|| format!("writing {}", json_path.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clean one-round row with the given CPU per 10k requests (also used by `rounds`).
    pub(super) fn row(setup: &str, rate: u32, cpu: f64) -> Row {
        Row {
            setup: setup.to_string(),
            rate,
            rounds: 1,
            measured_seconds: 10.0,
            sent: 100,
            ok: 100,
            failed: 0,
            errors: BTreeMap::new(),
            latency_ms: None,
            added_ms: None,
            send_lag_ms: None,
            proxies: Vec::new(),
            cpu_per_10k_total: Some(cpu),
            cpu_ratio_vs_envoy: None,
            cpu_ratio_vs_nginx: None,
            backend_cpu_per_10k: None,
            loadgen_cpu_per_10k: None,
            background_cores: None,
        }
    }

    /// `row` with a latency of `p50` and `p99` ms (p90 and above: `p99`).
    pub(super) fn with_latency(row: Row, p50: f64, p99: f64) -> Row {
        let latency = Percentiles {
            p50,
            p90: p99,
            p99,
            p999: p99,
            max: p99,
        };
        Row {
            latency_ms: Some(latency),
            ..row
        }
    }
}
