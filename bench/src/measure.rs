//! One measurement: a running setup at one rate. Runs the load generator, snapshots CPU
//! counters (the proxies, the backend, the generator itself and the whole machine) at the
//! start and end of the measured window, reads the proxies' peak RSS, and turns it all into
//! a report [`Row`].

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Result;
use hdrhistogram::Histogram;

use crate::cli::Plan;
use crate::loadgen::{self, LoadPlan};
use crate::procstat::{machine_busy_seconds, Tracked};
use crate::report::{ErrorInfo, Percentiles, ProxyUsage, Row};
use crate::setups::Running;

/// CPU counters at one moment.
struct Snapshot {
    at: Instant,
    /// CPU seconds of each tracked program, in order.
    programs: Vec<f64>,
    machine: f64,
}

impl Snapshot {
    /// `None` (with a warning) if any counter could not be read.
    fn take(tracked: &[Tracked]) -> Option<Snapshot> {
        let read = || -> Result<Snapshot> {
            Ok(Snapshot {
                at: Instant::now(),
                programs: tracked
                    .iter()
                    .map(Tracked::cpu_seconds)
                    .collect::<Result<_>>()?,
                machine: machine_busy_seconds()?,
            })
        };
        read()
            .map_err(|e| eprintln!("weft-bench: warning: {e:#}; CPU figures will be missing"))
            .ok()
    }
}

/// Measures `setup` at `rate` requests per second. `backend` is the backend nginx.
pub fn measure(setup: &Running, rate: u32, plan: &Plan, backend: &Tracked) -> Result<Row> {
    let load = LoadPlan {
        target: setup.target,
        request: setup.request.clone(),
        rate,
        warmup: plan.warmup,
        duration: plan.duration,
        connections: plan.connections,
    };
    // Order: the setup's proxies, then the backend, then the load generator.
    let mut tracked = setup.tracked.clone();
    tracked.push(backend.clone());
    tracked.push(Tracked::this_process());
    let (result, before) = loadgen::run(&load, || Snapshot::take(&tracked))?;
    let before = before.flatten();
    let after = Snapshot::take(&tracked);

    let requests = result.scheduled;
    let per_10k = |cpu: f64| cpu / requests.max(1) as f64 * 10_000.0;
    let delta: Option<Vec<f64>> = before.as_ref().zip(after.as_ref()).map(|(b, a)| {
        a.programs
            .iter()
            .zip(&b.programs)
            .map(|(a, b)| (a - b).max(0.0))
            .collect()
    });
    let cpu_of = |i: usize| delta.as_ref().map(|d| d[i]);
    let n = setup.tracked.len();
    let proxies: Vec<ProxyUsage> = setup
        .tracked
        .iter()
        .enumerate()
        .map(|(i, t)| ProxyUsage {
            name: t.name.clone(),
            pids: t.pids.clone(),
            peak_rss_mb: t.peak_rss_mb().ok().map(|mb| (mb * 100.0).round() / 100.0),
            cpu_seconds: cpu_of(i),
            cpu_per_10k: cpu_of(i).map(per_10k),
            ratio_vs_envoy: None,
            ratio_vs_nginx: None,
        })
        .collect();
    let cpu_total = proxies
        .iter()
        .map(|u| u.cpu_per_10k)
        .sum::<Option<f64>>()
        .filter(|_| !proxies.is_empty());
    // Everything else the machine did during the window, in cores: other users' builds and
    // the like, which distort the numbers.
    let background = before.as_ref().zip(after.as_ref()).and_then(|(b, a)| {
        let ours: f64 = delta.as_ref()?.iter().sum();
        let secs = a.at.duration_since(b.at).as_secs_f64();
        (secs > 0.0).then(|| ((a.machine - b.machine - ours) / secs).max(0.0))
    });
    if let Some(cores) = background.filter(|&c| c > 0.1) {
        eprintln!(
            "weft-bench: warning: other processes used {cores:.2} cores during this \
             measurement; the machine is not idle and the numbers are distorted"
        );
    }

    Ok(Row {
        setup: setup.kind.name().to_string(),
        rate,
        rounds: 1,
        measured_seconds: plan.duration.as_secs_f64(),
        sent: requests,
        ok: result.ok,
        failed: result.failed(),
        errors: result
            .errors
            .iter()
            .map(|(kind, (count, example))| {
                let info = ErrorInfo {
                    count: *count,
                    example: example.clone(),
                };
                (kind.clone(), info)
            })
            .collect::<BTreeMap<_, _>>(),
        latency_ms: percentiles(&result.latency),
        added_ms: None,
        send_lag_ms: percentiles(&result.send_lag),
        proxies,
        cpu_per_10k_total: cpu_total,
        cpu_ratio_vs_envoy: None,
        cpu_ratio_vs_nginx: None,
        backend_cpu_per_10k: cpu_of(n).map(per_10k),
        loadgen_cpu_per_10k: cpu_of(n + 1).map(per_10k),
        background_cores: background.map(|c| (c * 1000.0).round() / 1000.0),
    })
}

/// p50/p90/p99/p99.9/max in milliseconds, or `None` for an empty histogram.
fn percentiles(h: &Histogram<u64>) -> Option<Percentiles> {
    if h.is_empty() {
        return None;
    }
    let q = |q: f64| h.value_at_quantile(q);
    Some(Percentiles::from_ns(
        q(0.50),
        q(0.90),
        q(0.99),
        q(0.999),
        h.max(),
    ))
}
