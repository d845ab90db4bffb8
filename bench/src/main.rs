//! `weft-bench`: the Weft data-plane benchmark.
//!
//! In one run it measures, at fixed request rates over HTTP/1.1 keep-alive on loopback,
//! client → backend directly and through one Weft proxy, two Weft proxies (the mesh hop, in
//! plaintext, with mutual TLS, and with mutual TLS plus JWT and authorization policy), Envoy,
//! two Envoys with mutual TLS (Istio's hop) and nginx, with open-loop latency (no
//! coordinated omission), the proxies' peak RSS and CPU per request. It prints a Markdown
//! table and writes it to `bench/RESULTS.md`, with the same data in `bench/results.json`.
//!
//! Module map: [`cli`] flags; [`children`] child processes and their cleanup; [`peers`] the
//! nginx / Envoy / Weft programs, and the certificates, tokens and policies some setups
//! need; [`setups`] starting a setup; [`request`] what a setup is sent; [`loadgen`] the load
//! generator; [`procstat`] /proc readings; [`measure`] one setup at one rate; [`report`]
//! tables and files.

mod children;
mod cli;
mod loadgen;
mod measure;
mod peers;
mod procstat;
mod report;
mod request;
mod setups;

use std::os::fd::AsRawFd;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use cli::{Args, Plan, SetupKind};
use report::{Meta, Report, SetupNote};
use setups::Started;

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("weft-bench: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<ExitCode> {
    let plan = Plan::from_args(Args::parse())?;
    children::install_signal_handler()?;
    if !plan.setups.contains(&SetupKind::Direct) {
        eprintln!("weft-bench: warning: `direct` is not in --setups; added latency will be blank");
    }
    let mut report = Report::new(Meta::collect(&plan));
    // Check every binary before starting anything, so a missing one is reported at once.
    let nginx_bin = peers::nginx::binary(plan.nginx.as_deref())
        .map_err(|missing| anyhow::anyhow!("the backend needs {missing}"))?;
    let kinds = preflight(&plan, &mut report)?;
    let _lock = prepare_work_dir(&plan)?;

    report.meta.add_peer("nginx", &nginx_bin, "-v");
    eprintln!(
        "weft-bench: starting the backend (nginx on {})",
        peers::BACKEND
    );
    let mut backend = peers::nginx::start_backend(&nginx_bin, &plan.work_dir.join("backend"))?;
    // Rounds interleave the setups (A B C, A B C, ...), so that whatever else the machine
    // does at one moment lands in one round of every setup's median, not in one setup.
    for round in 1..=plan.rounds {
        if plan.rounds > 1 {
            eprintln!("weft-bench: round {round} of {}", plan.rounds);
        }
        for &kind in &kinds {
            run_setup(kind, &plan, &mut backend, &mut report);
        }
    }
    drop(backend);

    report.finish();
    print!("\n{}", report::render(&report));
    report.write(&plan.out_md, &plan.out_json)?;
    eprintln!(
        "\nweft-bench: wrote {} and {}",
        plan.out_md.display(),
        plan.out_json.display()
    );
    Ok(exit_code(&plan, &report))
}

/// The setups whose binaries exist; the others are recorded as skipped, loudly, or fail the
/// run with `--require-all`.
fn preflight(plan: &Plan, report: &mut Report) -> Result<Vec<SetupKind>> {
    let mut kinds = Vec::new();
    for &kind in &plan.setups {
        match setups::missing(kind, plan) {
            None => kinds.push(kind),
            Some(missing) => {
                eprintln!("\n!!! weft-bench: SKIPPING {}: {missing}\n", kind.name());
                report.skipped.push(SetupNote {
                    setup: kind.name().to_string(),
                    reason: missing.to_string(),
                });
            }
        }
    }
    if plan.require_all && !report.skipped.is_empty() {
        anyhow::bail!(
            "--require-all: {} setup(s) cannot run (see above)",
            report.skipped.len()
        );
    }
    Ok(kinds)
}

/// Starts one setup, measures it at every rate, and stops it. Failures are recorded in the
/// report and do not stop the other setups.
fn run_setup(kind: SetupKind, plan: &Plan, backend: &mut children::Proc, report: &mut Report) {
    let name = kind.name();
    let fail = |report: &mut Report, what: String, e: anyhow::Error| {
        eprintln!("\n!!! weft-bench: {what} FAILED: {e:#}\n");
        let reason = format!("{e:#}");
        report.failed.push(SetupNote {
            setup: what,
            reason,
        });
    };
    eprintln!("weft-bench: starting setup {name}");
    let mut running = match setups::start(kind, plan) {
        Ok(Started::Running(running)) => running,
        Ok(Started::Skipped(reason)) => {
            eprintln!("\n!!! weft-bench: SKIPPING {name}: {reason}\n");
            let setup = name.to_string();
            report.skipped.push(SetupNote { setup, reason });
            return;
        }
        Err(e) => return fail(report, name.to_string(), e),
    };
    record_peer(&mut report.meta, kind, plan);
    let backend_tracked = procstat::Tracked::tree("backend nginx", backend.pid());
    for &rate in &plan.rates {
        eprintln!(
            "weft-bench: {name} at {rate} req/s: {:?} warm-up + {:?} measured",
            plan.warmup, plan.duration
        );
        let measured = measure::measure(&running, rate, plan, &backend_tracked)
            .and_then(|row| running.check_alive().map(|()| row))
            .and_then(|row| backend_alive(backend).map(|()| row));
        match measured {
            Ok(row) => {
                eprintln!(
                    "weft-bench: {name} at {rate} req/s: {} ok, {} failed",
                    row.ok, row.failed
                );
                report.round_rows.push(row);
            }
            Err(e) => return fail(report, format!("{name} @ {rate} req/s"), e),
        }
    }
}

/// Non-zero when a setup failed, when `--require-all` and a setup was skipped, or when
/// `--smoke` and a request failed.
fn exit_code(plan: &Plan, report: &Report) -> ExitCode {
    let mut bad = Vec::new();
    if !report.failed.is_empty() {
        bad.push(format!("{} setup(s) failed", report.failed.len()));
    }
    if plan.require_all && !report.skipped.is_empty() {
        bad.push(format!(
            "{} setup(s) skipped with --require-all",
            report.skipped.len()
        ));
    }
    if report.any_failed_requests() {
        let msg = "some requests failed (see 'Failed requests')".to_string();
        if plan.smoke {
            bad.push(msg);
        } else {
            eprintln!("weft-bench: warning: {msg}");
        }
    }
    if bad.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("weft-bench: FAILED: {}", bad.join("; "));
        ExitCode::from(1)
    }
}

fn backend_alive(backend: &mut children::Proc) -> Result<()> {
    match backend.exited() {
        None => Ok(()),
        Some(status) => anyhow::bail!(
            "the backend nginx exited ({status}); last lines of {}:\n{}",
            backend.log_path().display(),
            backend.log_tail(20)
        ),
    }
}

fn record_peer(meta: &mut Meta, kind: SetupKind, plan: &Plan) {
    match kind {
        SetupKind::Envoy | SetupKind::Envoy2Mtls => {
            if let Ok(bin) = peers::envoy::binary(plan.envoy.as_deref(), &plan.workspace) {
                meta.add_peer("envoy", &bin, "--version");
            }
        }
        SetupKind::Weft1
        | SetupKind::Weft2
        | SetupKind::Weft2Mtls
        | SetupKind::Weft2Jwt
        | SetupKind::Weft2Authz
        | SetupKind::Weft2Trace => meta.add_peer("weft", &plan.weft, "--version"),
        SetupKind::Direct | SetupKind::Nginx => {}
    }
}

/// Takes the work directory's lock (one run at a time: runs share addresses and files), then
/// clears the scratch directories this run will use (and only those). The lock is held until
/// the returned file is dropped.
fn prepare_work_dir(plan: &Plan) -> Result<std::fs::File> {
    let dir = &plan.work_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let lock_path = dir.join(".lock");
    let lock = std::fs::File::create(&lock_path)
        .with_context(|| format!("creating {}", lock_path.display()))?;
    // SAFETY: flock(2) on a descriptor we own; no memory is involved.
    let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        anyhow::bail!(
            "another weft-bench run holds {} ({}); wait for it to finish",
            lock_path.display(),
            std::io::Error::last_os_error()
        );
    }
    let names = plan.setups.iter().map(|k| k.name()).chain(["backend"]);
    for name in names {
        let dir = plan.work_dir.join(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    Ok(lock)
}
