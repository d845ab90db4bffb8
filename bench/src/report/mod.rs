//! The results of a run: one [`Row`] per setup and rate, the derived comparisons (latency
//! added over direct, CPU ratios to Envoy and nginx), the targets, and writing them out as
//! Markdown (`RESULTS.md`) and JSON (`results.json`).

mod markdown;
mod meta;
mod rounds;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

pub use markdown::render;
pub use meta::Meta;

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
            targets: Vec::new(),
        }
    }

    fn find(&self, setup: &str, rate: u32) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.setup == setup && r.rate == rate)
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
        self.targets = vec![self.hop_target(), self.rss_target(), cpu_target(&self.rows)];
    }

    /// The mesh hop, plaintext (weft-2) and mutual TLS (weft-2-mtls): the worst one counts.
    fn hop_target(&self) -> Target {
        let goal =
            "two-proxy hop (weft-2, weft-2-mtls) adds ≤ 0.5 ms at p99 at 1,000 req/s".to_string();
        let hops: Vec<(&str, f64)> = ["weft-2", "weft-2-mtls"]
            .into_iter()
            .filter_map(|setup| Some((setup, self.find(setup, 1000)?.added_ms?.p99)))
            .collect();
        if hops.is_empty() {
            return Target {
                goal,
                verdict: Verdict::NotMeasured,
                detail: "needs weft-2 or weft-2-mtls, and direct, at rate 1000 in the same run"
                    .to_string(),
            };
        }
        let worst = hops.iter().map(|h| h.1).fold(f64::MIN, f64::max);
        Target {
            goal,
            verdict: if worst <= 0.5 {
                Verdict::Pass
            } else {
                Verdict::Fail
            },
            detail: hops
                .iter()
                .map(|(setup, p99)| format!("{setup} added p99 {p99:+.3} ms"))
                .collect::<Vec<_>>()
                .join("; "),
        }
    }

    fn rss_target(&self) -> Target {
        let goal = "every Weft proxy's peak RSS < 10 MB".to_string();
        let weft: Vec<(String, f64)> = self
            .rows
            .iter()
            .filter(|r| r.setup.starts_with("weft"))
            .flat_map(|r| &r.proxies)
            .filter_map(|p| Some((p.name.clone(), p.peak_rss_mb?)))
            .collect();
        match weft.iter().max_by(|a, b| a.1.total_cmp(&b.1)) {
            Some((name, mb)) => Target {
                goal,
                verdict: if *mb < 10.0 {
                    Verdict::Pass
                } else {
                    Verdict::Fail
                },
                detail: format!("largest: {name} {mb:.1} MB"),
            },
            None => Target {
                goal,
                verdict: Verdict::NotMeasured,
                detail: "no Weft setup ran".to_string(),
            },
        }
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

/// CPU per request of the Weft proxy that stands where Envoy and nginx stand (weft-1: one
/// proxy, HTTP/1.1 in and out) against theirs, at every rate all three ran. The mesh hop's
/// proxies do other work (HTTP/2, and mutual TLS, between them) that no peer does in this
/// run: their ratios are in the resources table, not judged here.
fn cpu_target(rows: &[Row]) -> Target {
    let goal =
        "a Weft proxy in Envoy's and nginx's place (weft-1) uses less CPU per request than either"
            .to_string();
    let find = |setup: &str, rate: u32| rows.iter().find(|r| r.setup == setup && r.rate == rate);
    let mut checks = Vec::new();
    for row in rows.iter().filter(|r| r.setup == "weft-1") {
        let Some(ours) = row.cpu_per_10k_total else {
            continue;
        };
        for other in ["envoy", "nginx"] {
            if let Some(theirs) = find(other, row.rate).and_then(|r| r.cpu_per_10k_total) {
                checks.push((
                    ours < theirs,
                    format!("@{}: {ours:.3} vs {other} {theirs:.3} s/10k", row.rate),
                ));
            }
        }
    }
    if checks.is_empty() {
        return Target {
            goal,
            verdict: Verdict::NotMeasured,
            detail: "needs weft-1 and envoy or nginx at the same rate".to_string(),
        };
    }
    let failing: Vec<&str> = checks
        .iter()
        .filter(|c| !c.0)
        .map(|c| c.1.as_str())
        .collect();
    Target {
        goal,
        verdict: if failing.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        detail: if failing.is_empty() {
            format!("{} comparisons, all below", checks.len())
        } else {
            format!("not below: {}", failing.join("; "))
        },
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

    #[test]
    fn cpu_target_judges_the_proxy_in_the_peers_place() {
        let mut rows = vec![
            row("weft-1", 1000, 0.4),
            row("envoy", 1000, 0.6),
            row("nginx", 1000, 0.5),
            // The hop does other work; it is reported, not judged.
            row("weft-2", 1000, 1.6),
        ];
        let target = cpu_target(&rows);
        assert_eq!(target.verdict, Verdict::Pass, "{}", target.detail);
        assert_eq!(target.detail, "2 comparisons, all below");

        rows.push(row("weft-1", 5000, 0.7));
        rows.push(row("nginx", 5000, 0.65));
        let target = cpu_target(&rows);
        assert_eq!(target.verdict, Verdict::Fail);
        assert_eq!(
            target.detail,
            "not below: @5000: 0.700 vs nginx 0.650 s/10k"
        );

        let target = cpu_target(&[row("weft-1", 1000, 0.4), row("direct", 1000, 0.0)]);
        assert_eq!(target.verdict, Verdict::NotMeasured);
    }
}
