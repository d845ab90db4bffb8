//! `weft-chaos-bench`: Weft's behaviour under failure, measured. For each scenario a fresh
//! `weft up` runs a client workload (this program in `load` mode) calling Service `backend`
//! (three `weft echo` endpoints, each in a network namespace with its proxy) at a fixed rate;
//! after a healthy baseline one fault is injected: an endpoint killed, answering 503 to half
//! its requests, slowed by 500 ms, its link cut, idle connections closed by the servers just
//! before the proxy's idle timeout; then the same with every endpoint failing, and a load of
//! ten times the Service's capacity. Reports success, latency, how long the bad endpoint kept
//! getting traffic and the retries spent against the budget, and writes
//! `bench/CHAOS-RESULTS.md`. Needs root (network namespaces); `--smoke` is CI's short run.

mod faults;
mod load;
mod probe;
mod report;
mod scenario;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use load::epoch_ms;
use scenario::{Fault, Pace, Scenario};

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Option<Cmd>,
    /// A short run of a few scenarios (CI): lower rate, shorter phases, no file written.
    #[arg(long)]
    smoke: bool,
    /// Scenario ids to run (a, b, c, d, e, a-all, b-all, c-all, d-all, overload).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// The weft binary (a release build).
    #[arg(long, default_value = "target/release/weft")]
    weft: PathBuf,
    /// Where to write the Markdown results.
    #[arg(long, default_value = "bench/CHAOS-RESULTS.md")]
    out: PathBuf,
}

#[derive(Subcommand)]
enum Cmd {
    /// The load generator (run by `weft up` as the client workload).
    Load(load::LoadArgs),
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(Cmd::Load(load)) = args.command {
        return load::run(load);
    }
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the chaos benchmark needs root (network namespaces, iptables)");
    }
    let pace = if args.smoke {
        Pace {
            rate: 100,
            baseline_s: 4,
            fault_s: 10,
            settle_s: 4,
        }
    } else {
        Pace {
            rate: 200,
            baseline_s: 10,
            fault_s: 30,
            settle_s: 5,
        }
    };
    let default: &[&str] = if args.smoke {
        &["a", "b", "e", "overload"]
    } else {
        &[]
    };
    let chosen: Vec<&Scenario> = scenario::ALL
        .iter()
        .filter(|s| {
            if !args.only.is_empty() {
                args.only.iter().any(|o| o == s.id)
            } else {
                default.is_empty() || default.contains(&s.id)
            }
        })
        .collect();
    let weft = std::fs::canonicalize(&args.weft).with_context(|| {
        format!(
            "{}: build it first (cargo build --release -p weft)",
            args.weft.display()
        )
    })?;
    let bench = std::env::current_exe().context("this program's path")?;
    let mut results = Vec::new();
    let mut overload_line = String::new();
    for s in chosen {
        eprintln!("==> {}", s.title);
        let run = match run_scenario(s, &pace, &weft, &bench) {
            Ok(run) => run,
            Err(e) => {
                // One scenario's failure is reported; the others still run.
                eprintln!("scenario {} failed: {e:#}", s.title);
                let failed = report::Result {
                    title: s.title.to_string(),
                    baseline: report::Window::default(),
                    fault: report::Window::default(),
                    settled: report::Window::default(),
                    detect_ms: None,
                    retries: 0.0,
                    allowance: 0.0,
                    refused_by_budget: 0.0,
                    note: format!(
                        "the run failed: {}",
                        format!("{e:#}").lines().next().unwrap_or("")
                    ),
                };
                (failed, String::new())
            }
        };
        if s.fault == Fault::Overload {
            overload_line = run.1.clone();
        } else {
            results.push(run.0);
        }
    }
    let netem = if results.iter().any(|r| r.note.contains("netem")) {
        "`tc netem` is not available in this kernel: (c) slows the endpoint's application by 500 ms instead (every answer waits 500 ms before its first byte)."
    } else {
        "(c) uses `tc netem delay 500ms` on the endpoint's link."
    };
    let header = format!(
        "# Chaos benchmark\n\n`{}` at {} ({}), rate {} req/s, healthy baseline {} s, fault {} s (the first {} s left out of \"once settled\"). \
         The route retries 503 (2 attempts) with a 700 ms per-try and 2.5 s request timeout; outlier detection ejects after 5 consecutive 5xx or 3 gateway errors for 15 s (at most 34% of endpoints); \
         the retry budget is the default (20% of requests plus 10/s over 10 s). {netem}\n\n\
         Targets: success ≥ 99.9% once settled in (a), (b), (d); 100% in (e); p99 in (c) within 2x the healthy p99; retries never above the budget; \
         under 10x the capacity the proxy's memory bounded and excess refused in under 1 ms.\n",
        if args.smoke { "weft-chaos-bench --smoke" } else { "weft-chaos-bench" },
        commit(),
        machine(),
        pace.rate,
        pace.baseline_s,
        pace.fault_s,
        pace.settle_s,
    );
    let mut md = report::markdown(&results, &header);
    md.push('\n');
    md.push_str(&overload_line);
    md.push_str(&verdicts(&results));
    println!("{md}");
    if !args.smoke {
        std::fs::write(&args.out, &md)
            .with_context(|| format!("writing {}", args.out.display()))?;
        eprintln!("wrote {}", args.out.display());
    }
    Ok(())
}

/// Runs one scenario: its results, and for the overload scenario its line.
fn run_scenario(
    s: &Scenario,
    pace: &Pace,
    weft: &Path,
    bench: &Path,
) -> Result<(report::Result, String)> {
    let work = PathBuf::from(format!("/tmp/weft-chaos/{}", s.id));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(work.join("mesh")).context("work dir")?;
    std::fs::write(
        work.join("mesh/mesh.yaml"),
        scenario::mesh_yaml(s, pace, bench, &work),
    )
    .context("mesh")?;
    let total_s = pace.baseline_s + pace.fault_s;
    let log = std::fs::File::create(work.join("up.log")).context("log")?;
    let up = Command::new(weft)
        .args([
            "up",
            &work.join("mesh").display().to_string(),
            "--no-access-log",
        ])
        .args(["--for", &format!("{}s", total_s + 60)])
        .stdout(Stdio::from(log.try_clone().context("log")?))
        .stderr(Stdio::from(log))
        .spawn()
        .context("weft up")?;
    let mut up = Up(up);
    let started = wait_for(
        &work.join("records.started"),
        Duration::from_secs(120),
        &mut up,
        &work,
    )?;
    let t0: u64 = started.trim().parse().context("start time")?;
    let backends = faults::namespaces("weft-backend-")?;
    let clients = faults::namespaces("weft-client")?;
    let client_ns = clients.first().context("no client namespace")?.clone();
    let admin =
        |ns: &str| -> Result<SocketAddr> { Ok(format!("{}:4191", faults::address(ns)?).parse()?) };
    let backend_admins = backends
        .iter()
        .map(|ns| admin(ns))
        .collect::<Result<Vec<_>>>()?;
    let client_admin = admin(&client_ns)?;
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (b, stop) = (backend_admins.clone(), stop.clone());
        std::thread::spawn(move || probe::sample(b, client_admin, stop))
    };
    // The fault, after the baseline.
    let fault_at = t0 + pace.baseline_s * 1000;
    std::thread::sleep(Duration::from_millis(fault_at.saturating_sub(epoch_ms())));
    let targets: Vec<&String> = if s.all {
        backends.iter().collect()
    } else {
        backends.iter().take(1).collect()
    };
    let mut note = String::new();
    for ns in &targets {
        let pod = ns.trim_start_matches("weft-");
        match s.fault {
            Fault::Kill => faults::refuse(ns)?,
            Fault::HalfUnavailable => faults::chaos_file(&work, pod, "{\"failPercent\": 50}")?,
            Fault::Slow => {
                if !faults::netem_delay(ns, 500) {
                    note = "no netem: app delayed".into();
                    faults::chaos_file(&work, pod, "{\"delayMs\": 500}")?;
                }
            }
            Fault::Cut => faults::cut(ns)?,
            Fault::IdleClose | Fault::Overload => {}
        }
    }
    let peak_rss = {
        let deadline = Instant::now() + Duration::from_secs(total_s + 30);
        let mut peak = 0;
        while !work.join("records.csv").exists() && Instant::now() < deadline {
            peak = peak.max(probe::peak_rss_kb(&client_ns, " proxy").unwrap_or(0));
            std::thread::sleep(Duration::from_millis(500));
        }
        peak
    };
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.join().unwrap_or_default();
    let csv = std::fs::read_to_string(work.join("records.csv"))
        .context("the load generator wrote no records")?;
    drop(up);
    let rows = report::parse_records(&csv);
    let ok = |r: &report::Row| r.status == 200;
    let baseline = report::Window::of(
        rows.iter()
            .filter(|r| r.due_ms >= t0 + 2000 && r.due_ms < fault_at),
        ok,
    );
    let fault = report::Window::of(rows.iter().filter(|r| r.due_ms >= fault_at), ok);
    let settled = report::Window::of(
        rows.iter()
            .filter(|r| r.due_ms >= fault_at + pace.settle_s * 1000),
        ok,
    );
    // The client proxy's last reading before it stopped with the load.
    let last = samples
        .iter()
        .rev()
        .find_map(|x| x.client)
        .context("the client proxy never answered")?;
    let (requests, retries, refused) = (last.requests, last.retries, last.refused_by_budget);
    let allowance = 0.2 * requests + 10.0 * (total_s + 10) as f64;
    let first = |v: &Vec<Option<f64>>| v.first().copied().flatten();
    let detect_ms = match s.fault {
        Fault::Kill | Fault::Cut => {
            report::stopped_growing(&samples, fault_at, |x| Some(x.retries), 0.0)
        }
        Fault::HalfUnavailable | Fault::Slow => {
            report::stopped_growing(&samples, fault_at, |x| first(&x.backends), 1.0)
        }
        Fault::IdleClose | Fault::Overload => None,
    };
    // When outlier detection first ejected an endpoint after the fault.
    let before = samples
        .iter()
        .filter(|x| x.at_ms < fault_at)
        .map(|x| x.ejections)
        .fold(0.0, f64::max);
    if let Some(x) = samples
        .iter()
        .find(|x| x.at_ms >= fault_at && x.ejections > before)
    {
        let ejected = format!(
            "first ejection after {:.1} s",
            (x.at_ms - fault_at) as f64 / 1000.0
        );
        note = if note.is_empty() {
            ejected
        } else {
            format!("{note}; {ejected}")
        };
    }
    let mut overload_line = String::new();
    if s.fault == Fault::Overload {
        let refused_rows = report::Window::of(rows.iter().filter(|r| r.status == 503), |_| true);
        let refused_service = report::quantiles(
            rows.iter()
                .filter(|r| r.status == 503)
                .map(|r| r.service_us),
        );
        let served = rows.iter().filter(|r| r.status == 200).count();
        overload_line = format!(
            "\n**{}**: offered {} req/s for {} s against a capacity of {} req/s ({} in flight x {}): {} answered, {} refused with 503 `overloaded` in p50 {:.2} ms / p99 {:.2} ms from the request's send to its answer (target < 1 ms; p50 {:.2} ms / p99 {:.2} ms from its scheduled time, which adds the load generator's millisecond timer slop), {} failed otherwise; the client proxy's peak RSS {:.1} MB.\n",
            s.title,
            scenario::OVERLOAD_RATE,
            total_s,
            50,
            scenario::OVERLOAD_MAX_REQUESTS,
            scenario::OVERLOAD_DELAY,
            served,
            refused_rows.requests,
            refused_service.0,
            refused_service.1,
            refused_rows.p50_ms,
            refused_rows.p99_ms,
            rows.len() - served - refused_rows.requests,
            peak_rss as f64 / 1024.0,
        );
        note = format!("peak RSS {:.1} MB", peak_rss as f64 / 1024.0);
    }
    Ok((
        report::Result {
            title: s.title.to_string(),
            baseline,
            fault,
            settled,
            detect_ms,
            retries,
            allowance,
            refused_by_budget: refused,
            note,
        },
        overload_line,
    ))
}

/// The pass/fail lines for the targets.
fn verdicts(results: &[report::Result]) -> String {
    let mut out = String::from("\n");
    for r in results {
        let id = r.title.split(' ').next().unwrap_or("");
        let all = r.title.contains("every endpoint");
        let (target, pass) = match (id, all) {
            ("(a)" | "(b)" | "(d)", false) => {
                ("success once settled ≥ 99.9%", r.settled.success() >= 99.9)
            }
            ("(e)", _) => ("success 100%", r.fault.ok == r.fault.requests),
            ("(c)", false) => (
                "p99 ≤ 2x healthy p99",
                r.fault.p99_ms <= 2.0 * r.baseline.p99_ms,
            ),
            _ => ("retries within the budget", r.retries <= r.allowance),
        };
        let budget = r.retries <= r.allowance;
        out.push_str(&format!(
            "- {}: {target}: {}; retries within the budget: {}\n",
            r.title,
            if pass { "PASS" } else { "FAIL" },
            if budget { "PASS" } else { "FAIL" }
        ));
    }
    out
}

/// `weft up`, stopped (SIGINT, then SIGKILL) when dropped.
struct Up(Child);

impl Drop for Up {
    fn drop(&mut self) {
        // SAFETY: kill(2) on a child we spawned.
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGINT);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for `path` to appear (while `weft up` runs), and returns its content.
fn wait_for(path: &Path, limit: Duration, up: &mut Up, work: &Path) -> Result<String> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(path) {
            return Ok(text);
        }
        if let Ok(Some(status)) = up.0.try_wait() {
            let log = std::fs::read_to_string(work.join("up.log")).unwrap_or_default();
            bail!("weft up exited ({status}) before the load started:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = std::fs::read_to_string(work.join("up.log")).unwrap_or_default();
    bail!("the load did not start within {limit:?}:\n{log}")
}

fn commit() -> String {
    Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpus} CPUs, {}", std::env::consts::ARCH)
}
