//! Folds the rows of several rounds into one row per setup and rate: medians for latency,
//! CPU and the machine's background load (one noisy round cannot move them), the largest
//! peak RSS (a peak is a peak), and totals for requests and errors.

use super::{ErrorInfo, Percentiles, ProxyUsage, Row};

/// One row per (setup, rate), in the order they were first measured.
pub fn merge(rounds: &[Row]) -> Vec<Row> {
    let mut keys: Vec<(&str, u32)> = Vec::new();
    for r in rounds {
        if !keys.contains(&(r.setup.as_str(), r.rate)) {
            keys.push((r.setup.as_str(), r.rate));
        }
    }
    keys.into_iter()
        .map(|(setup, rate)| {
            let group: Vec<&Row> = rounds
                .iter()
                .filter(|r| r.setup == setup && r.rate == rate)
                .collect();
            merge_group(&group)
        })
        .collect()
}

fn merge_group(group: &[&Row]) -> Row {
    let first = group[0];
    let mut errors = first.errors.clone();
    for row in &group[1..] {
        for (kind, info) in &row.errors {
            errors
                .entry(kind.clone())
                .and_modify(|e| e.count += info.count)
                .or_insert_with(|| ErrorInfo {
                    count: info.count,
                    example: info.example.clone(),
                });
        }
    }
    let proxies = (0..first.proxies.len())
        .map(|i| {
            let each: Vec<&ProxyUsage> = group.iter().filter_map(|r| r.proxies.get(i)).collect();
            ProxyUsage {
                name: first.proxies[i].name.clone(),
                pids: each.iter().flat_map(|p| p.pids.iter().copied()).collect(),
                peak_rss_mb: each
                    .iter()
                    .filter_map(|p| p.peak_rss_mb)
                    .max_by(f64::total_cmp),
                cpu_seconds: median(each.iter().map(|p| p.cpu_seconds)),
                cpu_per_10k: median(each.iter().map(|p| p.cpu_per_10k)),
                ratio_vs_envoy: None,
                ratio_vs_nginx: None,
            }
        })
        .collect();
    Row {
        setup: first.setup.clone(),
        rate: first.rate,
        rounds: group.len() as u32,
        measured_seconds: group.iter().map(|r| r.measured_seconds).sum(),
        sent: group.iter().map(|r| r.sent).sum(),
        ok: group.iter().map(|r| r.ok).sum(),
        failed: group.iter().map(|r| r.failed).sum(),
        errors,
        latency_ms: median_percentiles(group.iter().map(|r| r.latency_ms)),
        added_ms: None,
        send_lag_ms: median_percentiles(group.iter().map(|r| r.send_lag_ms)),
        proxies,
        cpu_per_10k_total: median(group.iter().map(|r| r.cpu_per_10k_total)),
        cpu_ratio_vs_envoy: None,
        cpu_ratio_vs_nginx: None,
        backend_cpu_per_10k: median(group.iter().map(|r| r.backend_cpu_per_10k)),
        loadgen_cpu_per_10k: median(group.iter().map(|r| r.loadgen_cpu_per_10k)),
        background_cores: median(group.iter().map(|r| r.background_cores)),
    }
}

/// The median of the values present (the mean of the middle two for an even count).
fn median(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let mut v: Vec<f64> = values.flatten().collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// Each percentile's median over the rounds (the maximum stays the maximum).
fn median_percentiles(values: impl Iterator<Item = Option<Percentiles>>) -> Option<Percentiles> {
    let all: Vec<Percentiles> = values.flatten().collect();
    if all.is_empty() {
        return None;
    }
    let pick = |f: fn(&Percentiles) -> f64| median(all.iter().map(|p| Some(f(p))));
    Some(Percentiles {
        p50: pick(|p| p.p50)?,
        p90: pick(|p| p.p90)?,
        p99: pick(|p| p.p99)?,
        p999: pick(|p| p.p999)?,
        max: all.iter().map(|p| p.max).max_by(f64::total_cmp)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(setup: &str, rate: u32, p99: f64, cpu: f64, rss: f64) -> Row {
        let lat = Percentiles {
            p50: p99 / 2.0,
            p90: p99 / 1.5,
            p99,
            p999: p99 * 2.0,
            max: p99 * 3.0,
        };
        Row {
            ok: 99,
            failed: 1,
            latency_ms: Some(lat),
            proxies: vec![ProxyUsage {
                name: "weft".to_string(),
                pids: vec![1],
                peak_rss_mb: Some(rss),
                cpu_seconds: Some(cpu),
                cpu_per_10k: Some(cpu),
                ratio_vs_envoy: None,
                ratio_vs_nginx: None,
            }],
            background_cores: Some(cpu / 10.0),
            ..super::super::tests::row(setup, rate, cpu)
        }
    }

    #[test]
    fn medians_over_rounds_peak_is_the_largest_and_counts_add_up() {
        let rounds = [
            row("weft-1", 1000, 0.4, 0.9, 7.0),
            row("nginx", 1000, 0.3, 0.7, 13.0),
            row("weft-1", 1000, 5.0, 3.0, 7.5), // a disturbed round
            row("nginx", 1000, 0.2, 0.6, 13.0),
            row("weft-1", 1000, 0.5, 0.8, 7.2),
            row("nginx", 1000, 0.25, 0.65, 13.1),
        ];
        let merged = merge(&rounds);
        assert_eq!(merged.len(), 2);
        let weft = &merged[0];
        assert_eq!((weft.setup.as_str(), weft.rounds), ("weft-1", 3));
        assert_eq!((weft.sent, weft.ok, weft.failed), (300, 297, 3));
        assert_eq!(weft.latency_ms.map(|l| l.p99), Some(0.5));
        assert_eq!(weft.latency_ms.map(|l| l.max), Some(15.0));
        assert_eq!(weft.cpu_per_10k_total, Some(0.9));
        assert_eq!(weft.proxies[0].cpu_per_10k, Some(0.9));
        assert_eq!(weft.proxies[0].peak_rss_mb, Some(7.5));
        assert_eq!(merged[1].cpu_per_10k_total, Some(0.65));
    }

    #[test]
    fn even_count_takes_the_middle_two() {
        assert_eq!(median([Some(1.0), None, Some(3.0)].into_iter()), Some(2.0));
        assert_eq!(median([None].into_iter()), None);
    }
}
