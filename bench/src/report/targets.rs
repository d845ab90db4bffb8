//! The project's performance targets, each judged from the folded rows of one run: only
//! setups measured in the same run are compared, since absolute figures move with the
//! machine's load. A target whose setups did not all run is "not measured", never passed.

use super::{Row, Target, Verdict};

/// The most CPU per request policy may add to the mutual-TLS hop: 10%.
pub const POLICY_CPU_LIMIT: f64 = 1.10;
/// The most CPU per request tracing at 1% may add to the hop: 5%.
pub const TRACING_CPU_LIMIT: f64 = 1.05;

/// Every target, in the order the report lists them.
pub fn evaluate(rows: &[Row]) -> Vec<Target> {
    vec![
        hop_target(rows),
        envoy_hop_target(rows),
        policy_target(rows),
        tracing_target(rows),
        rss_target(rows),
        cpu_target(rows),
    ]
}

fn find<'r>(rows: &'r [Row], setup: &str, rate: u32) -> Option<&'r Row> {
    rows.iter().find(|r| r.setup == setup && r.rate == rate)
}

fn verdict(pass: bool) -> Verdict {
    if pass {
        Verdict::Pass
    } else {
        Verdict::Fail
    }
}

fn not_measured(goal: String, needs: &str) -> Target {
    Target {
        goal,
        verdict: Verdict::NotMeasured,
        detail: needs.to_string(),
    }
}

/// The mesh hop, plaintext (weft-2) and mutual TLS (weft-2-mtls): the worst one counts.
/// Envoy's hop (envoy-2-mtls) is shown beside them for comparison, not judged.
fn hop_target(rows: &[Row]) -> Target {
    let goal =
        "two-proxy hop (weft-2, weft-2-mtls) adds ≤ 0.5 ms at p99 at 1,000 req/s".to_string();
    let added = |setup: &str| Some(find(rows, setup, 1000)?.added_ms?.p99);
    let hops: Vec<(&str, f64)> = ["weft-2", "weft-2-mtls"]
        .into_iter()
        .filter_map(|setup| Some((setup, added(setup)?)))
        .collect();
    if hops.is_empty() {
        let needs = "needs weft-2 or weft-2-mtls, and direct, at rate 1000 in the same run";
        return not_measured(goal, needs);
    }
    let worst = hops.iter().map(|h| h.1).fold(f64::MIN, f64::max);
    let mut detail: Vec<String> = hops
        .iter()
        .map(|(setup, p99)| format!("{setup} added p99 {p99:+.3} ms"))
        .collect();
    if let Some(envoy) = added("envoy-2-mtls") {
        detail.push(format!(
            "for comparison, envoy-2-mtls added p99 {envoy:+.3} ms"
        ));
    }
    Target {
        goal,
        verdict: verdict(worst <= 0.5),
        detail: detail.join("; "),
    }
}

/// The mutual-TLS hop against Istio's (two Envoys with mutual TLS), at every rate both ran:
/// the two proxies' CPU per request together, and the p99 latency, must both be lower.
fn envoy_hop_target(rows: &[Row]) -> Target {
    let goal = "the mTLS mesh hop (weft-2-mtls) uses less CPU per request (both proxies) and \
                has a lower p99 than Istio's two Envoys (envoy-2-mtls)"
        .to_string();
    let mut checks = Vec::new();
    for ours in rows.iter().filter(|r| r.setup == "weft-2-mtls") {
        let Some(theirs) = find(rows, "envoy-2-mtls", ours.rate) else {
            continue;
        };
        let cpu = ours.cpu_per_10k_total.zip(theirs.cpu_per_10k_total);
        let p99 = ours
            .latency_ms
            .zip(theirs.latency_ms)
            .map(|(a, b)| (a.p99, b.p99));
        let (Some((cpu, envoy_cpu)), Some((p99, envoy_p99))) = (cpu, p99) else {
            continue;
        };
        checks.push((
            cpu < envoy_cpu && p99 < envoy_p99,
            format!(
                "@{}: CPU {cpu:.3} vs {envoy_cpu:.3} s/10k ({:.2}×), p99 {p99:.3} vs \
                 {envoy_p99:.3} ms",
                ours.rate,
                cpu / envoy_cpu
            ),
        ));
    }
    if checks.is_empty() {
        return not_measured(goal, "needs weft-2-mtls and envoy-2-mtls at the same rate");
    }
    let pass = checks.iter().all(|c| c.0);
    let detail: Vec<&str> = checks.iter().map(|c| c.1.as_str()).collect();
    Target {
        goal,
        verdict: verdict(pass),
        detail: detail.join("; "),
    }
}

/// Policy on the callee (a JWT verified on every request, 20 authorization rules walked):
/// weft-2-authz's CPU per request, both proxies together, against weft-2-jwt's at every
/// rate both ran. weft-2-jwt sends the very same request (token and tenant header) through
/// the same hop with no policy, so the difference is the policy's alone; what carrying the
/// token costs without any policy is reported beside it (weft-2-jwt vs weft-2-mtls).
fn policy_target(rows: &[Row]) -> Target {
    overhead_target(
        rows,
        ("weft-2-authz", "weft-2-jwt"),
        POLICY_CPU_LIMIT,
        "policy adds at most 10% CPU per request to the hop (weft-2-authz vs weft-2-jwt)",
    )
}

/// Tracing on at 1%: weft-2-trace's CPU per request against weft-2-mtls's.
fn tracing_target(rows: &[Row]) -> Target {
    overhead_target(
        rows,
        ("weft-2-trace", "weft-2-mtls"),
        TRACING_CPU_LIMIT,
        "tracing at 1% adds at most 5% CPU per request to the hop (weft-2-trace vs weft-2-mtls)",
    )
}

/// `setup`'s CPU per request (its proxies together) at most `limit` times `baseline`'s, at
/// every rate both ran.
fn overhead_target(
    rows: &[Row],
    (setup, baseline): (&str, &str),
    limit: f64,
    goal: &str,
) -> Target {
    let goal = goal.to_string();
    let mut checks = Vec::new();
    for ours in rows.iter().filter(|r| r.setup == setup) {
        let theirs = find(rows, baseline, ours.rate).and_then(|r| r.cpu_per_10k_total);
        let (Some(cpu), Some(base)) = (ours.cpu_per_10k_total, theirs.filter(|&b| b > 0.0)) else {
            continue;
        };
        let ratio = cpu / base;
        checks.push((
            ratio <= limit,
            format!(
                "@{}: {cpu:.3} vs {base:.3} s/10k ({:+.0}%)",
                ours.rate,
                (ratio - 1.0) * 100.0
            ),
        ));
    }
    if checks.is_empty() {
        return not_measured(
            goal,
            &format!("needs {setup} and {baseline} at the same rate"),
        );
    }
    let pass = checks.iter().all(|c| c.0);
    let detail: Vec<&str> = checks.iter().map(|c| c.1.as_str()).collect();
    Target {
        goal,
        verdict: verdict(pass),
        detail: detail.join("; "),
    }
}

fn rss_target(rows: &[Row]) -> Target {
    let goal = "every Weft proxy's peak RSS < 10 MB".to_string();
    let weft: Vec<(String, f64)> = rows
        .iter()
        .filter(|r| r.setup.starts_with("weft"))
        .flat_map(|r| &r.proxies)
        .filter_map(|p| Some((p.name.clone(), p.peak_rss_mb?)))
        .collect();
    match weft.iter().max_by(|a, b| a.1.total_cmp(&b.1)) {
        Some((name, mb)) => Target {
            goal,
            verdict: verdict(*mb < 10.0),
            detail: format!("largest: {name} {mb:.1} MB"),
        },
        None => not_measured(goal, "no Weft setup ran"),
    }
}

/// CPU per request of the Weft proxy that stands where Envoy and nginx stand (weft-1: one
/// proxy, HTTP/1.1 in and out) against theirs, at every rate all three ran. The mesh hop's
/// proxies do other work (HTTP/2, and mutual TLS, between them) that no single-proxy peer
/// does: the hop is judged against envoy-2-mtls by [`envoy_hop_target`].
fn cpu_target(rows: &[Row]) -> Target {
    let goal =
        "a Weft proxy in Envoy's and nginx's place (weft-1) uses less CPU per request than either"
            .to_string();
    let mut checks = Vec::new();
    for row in rows.iter().filter(|r| r.setup == "weft-1") {
        let Some(ours) = row.cpu_per_10k_total else {
            continue;
        };
        for other in ["envoy", "nginx"] {
            if let Some(theirs) = find(rows, other, row.rate).and_then(|r| r.cpu_per_10k_total) {
                checks.push((
                    ours < theirs,
                    format!("@{}: {ours:.3} vs {other} {theirs:.3} s/10k", row.rate),
                ));
            }
        }
    }
    if checks.is_empty() {
        return not_measured(goal, "needs weft-1 and envoy or nginx at the same rate");
    }
    let failing: Vec<&str> = checks
        .iter()
        .filter(|c| !c.0)
        .map(|c| c.1.as_str())
        .collect();
    Target {
        goal,
        verdict: verdict(failing.is_empty()),
        detail: if failing.is_empty() {
            format!("{} comparisons, all below", checks.len())
        } else {
            format!("not below: {}", failing.join("; "))
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{row, with_latency};
    use super::*;

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

    #[test]
    fn policy_target_allows_ten_percent_at_every_rate() {
        let mut rows = vec![
            row("weft-2-jwt", 1000, 1.60),
            row("weft-2-authz", 1000, 1.76), // +10%: still within
            row("weft-2-jwt", 5000, 1.20),
            row("weft-2-authz", 5000, 1.26),
        ];
        let target = policy_target(&rows);
        assert_eq!(target.verdict, Verdict::Pass, "{}", target.detail);
        assert_eq!(
            target.detail,
            "@1000: 1.760 vs 1.600 s/10k (+10%); @5000: 1.260 vs 1.200 s/10k (+5%)"
        );

        rows[3] = row("weft-2-authz", 5000, 1.40);
        let target = policy_target(&rows);
        assert_eq!(target.verdict, Verdict::Fail);
        assert!(target
            .detail
            .ends_with("@5000: 1.400 vs 1.200 s/10k (+17%)"));

        // Without the baseline in the same run there is nothing to judge: weft-2-mtls sends
        // another request, so it is not the baseline.
        let target = policy_target(&[
            row("weft-2-authz", 1000, 1.7),
            row("weft-2-mtls", 1000, 1.5),
        ]);
        assert_eq!(target.verdict, Verdict::NotMeasured);
    }

    #[test]
    fn tracing_target_allows_five_percent() {
        let rows = [
            row("weft-2-mtls", 1000, 1.00),
            row("weft-2-trace", 1000, 1.05),
            row("weft-2-mtls", 5000, 1.00),
            row("weft-2-trace", 5000, 1.06),
        ];
        let target = tracing_target(&rows);
        assert_eq!(target.verdict, Verdict::Fail);
        assert_eq!(
            target.detail,
            "@1000: 1.050 vs 1.000 s/10k (+5%); @5000: 1.060 vs 1.000 s/10k (+6%)"
        );
        assert_eq!(tracing_target(&rows[..2]).verdict, Verdict::Pass);
        assert_eq!(tracing_target(&rows[1..2]).verdict, Verdict::NotMeasured);
    }

    #[test]
    fn envoy_hop_target_needs_less_cpu_and_a_lower_p99() {
        let weft = with_latency(row("weft-2-mtls", 1000, 1.6), 0.3, 0.5);
        let envoy = with_latency(row("envoy-2-mtls", 1000, 4.0), 0.6, 0.9);
        let target = envoy_hop_target(&[weft.clone(), envoy.clone()]);
        assert_eq!(target.verdict, Verdict::Pass, "{}", target.detail);
        assert_eq!(
            target.detail,
            "@1000: CPU 1.600 vs 4.000 s/10k (0.40×), p99 0.500 vs 0.900 ms"
        );
        // Cheaper but slower at p99: fails.
        let slow = with_latency(row("weft-2-mtls", 1000, 1.6), 0.3, 1.0);
        let target = envoy_hop_target(&[slow, envoy]);
        assert_eq!(target.verdict, Verdict::Fail);
        assert_eq!(envoy_hop_target(&[weft]).verdict, Verdict::NotMeasured);
    }

    #[test]
    fn hop_target_shows_envoys_hop_without_judging_it() {
        let added = |mut r: Row, p99: f64| {
            r.added_ms = r.latency_ms.map(|l| super::super::Percentiles { p99, ..l });
            r
        };
        let rows = [
            added(with_latency(row("weft-2-mtls", 1000, 1.6), 0.3, 0.5), 0.33),
            // Over 0.5 ms: Envoy's hop does not make Weft's fail.
            added(with_latency(row("envoy-2-mtls", 1000, 4.0), 0.6, 0.9), 0.7),
        ];
        let target = hop_target(&rows);
        assert_eq!(target.verdict, Verdict::Pass, "{}", target.detail);
        assert_eq!(
            target.detail,
            "weft-2-mtls added p99 +0.330 ms; for comparison, envoy-2-mtls added p99 +0.700 ms"
        );
        assert_eq!(hop_target(&rows[1..]).verdict, Verdict::NotMeasured);
    }
}
