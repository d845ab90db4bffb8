//! The results as Markdown: printed to stdout and written to `RESULTS.md`.

use std::fmt::Write;

use super::{Percentiles, Report, Row, Verdict};

const HOW_TO_READ: &str = "\
Every request had an intended send time on a fixed schedule \
(open loop); its latency runs from that intended time to the end of the response, so time \
spent waiting for a free connection behind a slow response is counted, not hidden \
(no coordinated omission). *sent* is what the schedule called for in the measured window \
(warm-up discarded); *failed* is every request that did not end in a 200 within 2 s of being sent (time queued \
for a connection counts in its latency, not towards the timeout). \
*+pNN* is the setup's percentile minus direct's at the same rate in this same run: the \
latency the proxy path adds. Compare setups only within one run: the load generator, the \
backend and the proxies share the machine's cores and nothing is pinned, so absolute numbers \
move with the machine's load. *Peak RSS* is VmHWM of the proxy's process tree (nginx: master \
+ worker) after the measurement. *CPU s/10k req* is the proxy's user+system CPU time over \
the measured window divided by requests × 10,000 (/proc ticks are 10 ms, so short runs are \
coarse); *vs Envoy* / *vs nginx* below 1.0 means cheaper per request. *Send lag* (intended \
start → handed to a connection) and the load generator's own CPU show whether the generator \
kept up: a send-lag p99 near the latency p99 means the wait was for connections. \
*Background* is the CPU (in cores) everything else on the machine used during the window; \
anything above ~0.1 means the run shared the machine and its numbers are suspect. \
*Side by side* puts a setup beside the one it is judged against at the same rate, with \
latency in ms and CPU for all of a setup's proxies together; a *CPU ratio* above 1.0 means \
the setup costs more per request than the one it is against. weft-2-jwt is weft-2-mtls \
sending weft-2-authz's request (a JWT and a tenant header) with no policy; weft-2-authz is \
weft-2-jwt plus, on the callee, the JWT checked on every request and 20 authorization rules, \
all walked for each request (the one that allows it is the last), so weft-2-authz against \
weft-2-jwt is what policy costs and weft-2-jwt against weft-2-mtls what carrying the token \
costs; weft-2-trace is weft-2-mtls with tracing on at 1% (a live OTLP collector, rotel, \
dropping what it receives); envoy-2-mtls is two Envoys with mutual TLS \
1.3 between them, as Istio's sidecars, without Istio's telemetry filters.";

/// Renders the whole report.
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let m = &r.meta;
    let _ = writeln!(s, "# Weft data-plane benchmark\n");
    let _ = writeln!(s, "- **Date:** {}", m.date);
    let _ = writeln!(
        s,
        "- **Machine:** {} cores (`nproc`), kernel {} (`uname -r`), {}. The load generator, \
         the backend and the proxies share these cores; nothing is pinned.",
        m.nproc, m.kernel, m.cpu
    );
    let _ = writeln!(s, "- **Command:** `{}`", m.command);
    let rates: Vec<String> = m.rates.iter().map(|r| r.to_string()).collect();
    let _ = writeln!(
        s,
        "- **Load:** open loop at {} req/s, {} s measured per setup and rate after {} s \
         warm-up (discarded), {} keep-alive HTTP/1.1 connections, `GET /` (weft-2-jwt and \
         weft-2-authz: `GET /api/v1/orders/42` with a JWT and a tenant header), {} s timeout; all on \
         loopback; backend: nginx `return 200 \"ok\"`, one worker.",
        rates.join(" and "),
        m.duration_s,
        m.warmup_s,
        m.connections,
        m.request_timeout_s
    );
    if m.rounds > 1 {
        let _ = writeln!(
            s,
            "- **Rounds:** {}, the setups taking turns (every setup once per round, restarted \
             each time); every figure below is the median over the rounds, except peak RSS \
             (the largest) and the request counts (totals).",
            m.rounds
        );
    }
    for p in &m.peers {
        let _ = writeln!(s, "- **{}:** {} (`{}`)", p.name, p.version, p.path);
    }
    let busiest = r
        .round_rows
        .iter()
        .filter_map(|row| row.background_cores)
        .fold(0.0, f64::max);
    if busiest > 0.1 {
        let _ = writeln!(
            s,
            "\n> **Warning: the machine was not idle.** Other processes used up to \
             {busiest:.2} cores during a measurement (*background* below is the median over \
             the rounds); figures from that round are distorted, and the medians damp, not \
             remove, the effect. Re-run on an idle machine."
        );
    }
    if r.rows.is_empty() {
        let _ = writeln!(s, "\n**No setup was measured.**");
    } else {
        latency_table(&mut s, r);
        resource_table(&mut s, r);
        pairs_table(&mut s, r);
    }
    let _ = writeln!(s, "\n## Targets\n");
    for t in &r.targets {
        let mark = match t.verdict {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::NotMeasured => "not measured",
        };
        let _ = writeln!(s, "- **{mark}** — {}: {}", t.goal, t.detail);
    }
    if !r.rows.is_empty() {
        generator_table(&mut s, r);
    }
    notes(&mut s, r);
    let _ = writeln!(s, "\n## How to read this\n\n{HOW_TO_READ}");
    s
}

fn latency_table(s: &mut String, r: &Report) {
    let _ = writeln!(
        s,
        "\n## Latency (ms, intended start → response complete)\n\n\
         | setup | req/s | sent | ok | failed | p50 | p90 | p99 | p99.9 | +p50 | +p90 | +p99 | +p99.9 |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for row in &r.rows {
        let l = cells(row.latency_ms, false);
        let a = if row.setup == "direct" {
            ["—"; 4].map(String::from)
        } else {
            cells(row.added_ms, true)
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.setup,
            row.rate,
            row.sent,
            row.ok,
            row.failed,
            l.join(" | "),
            a.join(" | ")
        );
    }
}

fn resource_table(s: &mut String, r: &Report) {
    let _ = writeln!(
        s,
        "\n## Proxy resources\n\n\
         | setup | req/s | proxy | peak RSS (MB) | CPU s / 10k req | vs Envoy | vs nginx |\n\
         |---|---:|---|---:|---:|---:|---:|"
    );
    for row in r.rows.iter().filter(|row| !row.proxies.is_empty()) {
        for p in &row.proxies {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} |",
                row.setup,
                row.rate,
                p.name,
                num(p.peak_rss_mb, 1),
                num(p.cpu_per_10k, 3),
                ratio(p.ratio_vs_envoy),
                ratio(p.ratio_vs_nginx)
            );
        }
        if row.proxies.len() > 1 {
            let names: Vec<&str> = row.proxies.iter().map(|p| p.name.as_str()).collect();
            let rss = row
                .proxies
                .iter()
                .map(|p| p.peak_rss_mb)
                .sum::<Option<f64>>();
            let _ = writeln!(
                s,
                "| {} | {} | **{}** | {} | **{}** | **{}** | **{}** |",
                row.setup,
                row.rate,
                names.join(" + "),
                num(rss, 1),
                num(row.cpu_per_10k_total, 3),
                ratio(row.cpu_ratio_vs_envoy),
                ratio(row.cpu_ratio_vs_nginx)
            );
        }
    }
}

/// Setups beside the one they are judged against (see `pairs`), when both ran.
fn pairs_table(s: &mut String, r: &Report) {
    if r.pairs.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\n## Side by side\n\n\
         | setup | against | req/s | p50 | p99 | against p50 | against p99 | p99 difference | \
         CPU s / 10k req | against CPU | CPU ratio |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for p in &r.pairs {
        let diff = p
            .p99_diff_ms
            .map_or_else(|| "—".to_string(), |d| format!("{d:+.3}"));
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {diff} | {} | {} | **{}** |",
            p.setup,
            p.baseline,
            p.rate,
            num(p.p50_ms, 3),
            num(p.p99_ms, 3),
            num(p.baseline_p50_ms, 3),
            num(p.baseline_p99_ms, 3),
            num(p.cpu_per_10k, 3),
            num(p.baseline_cpu_per_10k, 3),
            ratio(p.cpu_ratio)
        );
    }
    let mut notes: Vec<String> = Vec::new();
    for p in &r.pairs {
        let note = format!("- *{} against {}*: {}.", p.setup, p.baseline, p.what);
        if !notes.contains(&note) {
            notes.push(note);
        }
    }
    let _ = writeln!(s, "\n{}", notes.join("\n"));
}

fn generator_table(s: &mut String, r: &Report) {
    let _ = writeln!(
        s,
        "\n## Load generator and machine\n\n\
         | setup | req/s | send lag p50 (ms) | send lag p99 (ms) | latency max (ms) | \
         generator CPU s / 10k req | backend CPU s / 10k req | background (cores) |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|"
    );
    for row in &r.rows {
        let lag = |f: fn(&Percentiles) -> f64| num(row.send_lag_ms.as_ref().map(f), 3);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            row.setup,
            row.rate,
            lag(|p| p.p50),
            lag(|p| p.p99),
            num(row.latency_ms.map(|p| p.max), 3),
            num(row.loadgen_cpu_per_10k, 3),
            num(row.backend_cpu_per_10k, 3),
            num(row.background_cores, 2)
        );
    }
}

fn notes(s: &mut String, r: &Report) {
    let failing: Vec<&Row> = r.rows.iter().filter(|row| !row.errors.is_empty()).collect();
    if !failing.is_empty() {
        let _ = writeln!(s, "\n## Failed requests\n");
        for row in failing {
            for (kind, e) in &row.errors {
                let _ = writeln!(
                    s,
                    "- {} @ {} req/s: {} × {kind} (e.g. {})",
                    row.setup, row.rate, e.count, e.example
                );
            }
        }
    }
    if !r.skipped.is_empty() || !r.failed.is_empty() {
        let _ = writeln!(s, "\n## Setups not measured\n");
        for n in &r.skipped {
            let _ = writeln!(
                s,
                "- **{}** skipped: {}",
                n.setup,
                n.reason.replace('\n', " ")
            );
        }
        for n in &r.failed {
            let first = n.reason.lines().next().unwrap_or("");
            let _ = writeln!(s, "- **{}** FAILED: {first}", n.setup);
        }
    }
}

fn cells(p: Option<Percentiles>, signed: bool) -> [String; 4] {
    let f = |v: f64| {
        if signed {
            format!("{v:+.3}")
        } else {
            format!("{v:.3}")
        }
    };
    match p {
        Some(p) => [f(p.p50), f(p.p90), f(p.p99), f(p.p999)],
        None => ["—"; 4].map(String::from),
    }
}

fn num(v: Option<f64>, prec: usize) -> String {
    v.map_or_else(|| "—".to_string(), |v| format!("{v:.prec$}"))
}

fn ratio(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_string(), |v| format!("{v:.2}×"))
}
