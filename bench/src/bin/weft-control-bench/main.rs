//! `weft-control-bench`: the control-plane benchmark.
//!
//! Starts a real `weft control` on a generated mesh (by default 1,000 Services, 10,000
//! endpoints), connects many delta xDS clients over mTLS (each subscribing like a proxy: its
//! own config, one Service every client calls and nine of its own), then rewrites the file of
//! the shared Service again and again and measures the time from each file change to each
//! client receiving (and ACKing) the new version. Also: the control plane's peak RSS and CPU,
//! and a real `weft proxy`'s RSS in a 10-Service mesh versus the big one (it learns only what
//! it calls, so it should not grow). Writes `bench/CONTROL-RESULTS.md`.
//!
//! With `--replicas N`: the same on the replicated store, N replicas on a three-member etcd,
//! the clients spread over them, each change applied with `weft apply` through the replicas
//! in turn and timed to every client's ACK; every replica's RSS and CPU. Writes
//! `bench/CONTROL-REPLICATED-RESULTS.md`.

mod client;
mod mesh;
#[path = "../../procstat.rs"]
#[allow(dead_code)]
mod procstat;
mod proxies;
mod replicated;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use weft_identity::{generate_key_and_csr, Authority, Credentials, SpiffeId};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 1000)]
    services: usize,
    #[arg(long, default_value_t = 10)]
    endpoints_per_service: usize,
    #[arg(long, default_value_t = 200)]
    clients: usize,
    /// File changes to time.
    #[arg(long, default_value_t = 20)]
    changes: usize,
    /// The weft binary (a release build).
    #[arg(long, default_value = "target/release/weft")]
    weft: PathBuf,
    /// Where to write the Markdown results ("" for nowhere: smoke runs); by default
    /// bench/CONTROL-RESULTS.md, or bench/CONTROL-REPLICATED-RESULTS.md with --replicas.
    #[arg(long)]
    out: Option<String>,
    /// Control-plane replicas on a three-member etcd (0: one control plane on a directory).
    #[arg(long, default_value_t = 0)]
    replicas: usize,
}

pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn spawn_control(
    weft: &PathBuf,
    dir: &std::path::Path,
    grpc: SocketAddr,
    admin: SocketAddr,
) -> Result<Killed> {
    let log = std::fs::File::create(dir.join("control.log"))?;
    let child = Command::new(weft)
        .args(["control", "--config-dir"])
        .arg(dir.join("config"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args([
            "--grpc-addr",
            &grpc.to_string(),
            "--admin-addr",
            &admin.to_string(),
        ])
        .env("WEFT_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .with_context(|| format!("starting {}", weft.display()))?;
    Ok(Killed(child))
}

pub async fn wait_listening(addr: SocketAddr, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("nothing listening at {addr} within {within:?}")
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("weft-control-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    mesh::write(
        &dir.join("config"),
        args.services,
        args.endpoints_per_service,
    )?;
    let grpc: SocketAddr = "127.0.120.1:4180".parse()?;
    let admin: SocketAddr = "127.0.120.1:4181".parse()?;
    let started = Instant::now();
    let (control, mut replicated, ca) = if args.replicas == 0 {
        let control = spawn_control(&args.weft, &dir, grpc, admin)?;
        wait_listening(grpc, Duration::from_secs(120)).await?;
        let ca = Authority::load_or_create(&dir.join("state"), "cluster.local")?;
        (Some(control), None, ca)
    } else {
        let ca = Authority::generate("cluster.local")?;
        let set = replicated::start(&args.weft, &dir, args.replicas, &ca).await?;
        let workloads = args.services * args.endpoints_per_service + 1;
        set.wait_counts(
            args.services as u64 + 1,
            workloads as u64,
            Duration::from_secs(300),
        )
        .await?;
        (None, Some(set), ca)
    };
    let startup = started.elapsed();
    let tracked: Vec<procstat::Tracked> = match (&control, &replicated) {
        (Some(c), _) => vec![procstat::Tracked::tree("weft control", c.0.id())],
        (None, Some(set)) => set
            .replicas
            .iter()
            .map(|r| procstat::Tracked::tree("weft control", r.0.id()))
            .collect(),
        (None, None) => Vec::new(),
    };
    let servers: Vec<SocketAddr> = replicated
        .as_ref()
        .map_or(vec![grpc], |set| set.grpc.clone());
    eprintln!(
        "control plane up in {startup:?}; issuing {} client certificates",
        args.clients
    );

    let arrivals: client::Arrivals = Arc::default();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(args.clients.max(1));
    let mut tasks = Vec::new();
    for j in 1..=args.clients {
        let svc = (j - 1) % args.services + 1;
        let id = SpiffeId::new("cluster.local", mesh::NS, mesh::service_name(svc))?;
        let kc = generate_key_and_csr(&id)?;
        let issued = ca.issue(&kc.csr_der, &id, Duration::from_secs(3600))?;
        let creds = Credentials::new(id, issued.chain, kc.key, ca.trust_bundle())?;
        let node = format!(
            "{}/{}",
            mesh::NS,
            mesh::workload_name(svc, (j - 1) / args.services)
        );
        let mut calls = vec![format!("{}/svc-0", mesh::NS)];
        calls.extend((0..9).map(|k| {
            format!(
                "{}/{}",
                mesh::NS,
                mesh::service_name((j * 9 + k) % args.services + 1)
            )
        }));
        let (arrivals, ready) = (arrivals.clone(), ready_tx.clone());
        let grpc = servers[j % servers.len()];
        tasks.push(tokio::spawn(async move {
            if let Err(e) = client::run(grpc, creds, node.clone(), calls, arrivals, ready).await {
                eprintln!("client {node}: {e:#}");
            }
        }));
    }
    let connect_started = Instant::now();
    for _ in 0..args.clients {
        tokio::time::timeout(Duration::from_secs(120), ready_rx.recv())
            .await
            .context("clients did not all get their Services within 120 s")?;
    }
    let all_connected = connect_started.elapsed();
    eprintln!(
        "{} clients subscribed in {all_connected:?}; timing {} changes",
        args.clients, args.changes
    );

    let cpu_before = tracked
        .iter()
        .map(procstat::Tracked::cpu_seconds)
        .collect::<Result<Vec<f64>>>()?;
    let mut latencies_ms = Vec::new();
    let mut worst_ms = Vec::new();
    for c in 0..args.changes {
        let seen_before = arrivals.lock().map(|a| a.len()).unwrap_or(0);
        let t0 = Instant::now();
        match replicated.as_mut() {
            None => mesh::write_hot(&dir.join("config"), 2 + c % 5)?,
            // `weft apply` adds and updates; it removes nothing a file no longer names. So
            // each change moves an endpoint of the hot Service.
            Some(set) => {
                mesh::write_hot_moved(&dir.join("config"), c)?;
                set.apply(&dir.join("config/hot.yaml"))?;
            }
        }
        let deadline = t0 + Duration::from_secs(30);
        loop {
            let got: Vec<f64> = arrivals
                .lock()
                .map(|a| {
                    a[seen_before..]
                        .iter()
                        .filter(|(_, at)| *at >= t0)
                        .map(|(_, at)| (*at - t0).as_secs_f64() * 1e3)
                        .collect()
                })
                .unwrap_or_default();
            if got.len() >= args.clients {
                worst_ms.push(got.iter().cloned().fold(0.0, f64::max));
                latencies_ms.extend(got);
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "change {c}: only {} of {} clients got it within 30 s",
                    got.len(),
                    args.clients
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let mut cpus = Vec::new();
    let mut rsss = Vec::new();
    for (t, before) in tracked.iter().zip(&cpu_before) {
        cpus.push(t.cpu_seconds()? - before);
        rsss.push(t.peak_rss_mb()?);
    }
    let cpu: f64 = cpus.iter().sum();
    let rss = rsss.iter().cloned().fold(0.0, f64::max);
    latencies_ms.sort_by(f64::total_cmp);
    worst_ms.sort_by(f64::total_cmp);
    for t in &tasks {
        t.abort();
    }

    if let Some(set) = replicated.take() {
        let out = args
            .out
            .clone()
            .unwrap_or_else(|| "bench/CONTROL-REPLICATED-RESULTS.md".into());
        let each = |v: &[f64], unit: &str| {
            v.iter()
                .map(|x| format!("{x:.1}{unit}"))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        let table = format!(
            "| measure | value |\n|---|---|\n\
             | mesh | {services} Services, {endpoints} endpoints, {clients} xDS clients (mTLS, delta) spread over {replicas} replicas |\n\
             | store | a three-member etcd on this machine; the mesh written with `weft apply` |\n\
             | replicas up and the mesh applied | {startup:.2?} |\n\
             | all clients subscribed (11 resources each) | {all_connected:.2?} |\n\
             | push: `weft apply` started → client ACK, p50 | {p50:.0} ms |\n\
             | push: `weft apply` started → client ACK, p99 | {p99:.0} ms |\n\
             | push: slowest client per change, median / max | {wmed:.0} / {wmax:.0} ms |\n\
             | peak RSS of each replica | {rss_each} |\n\
             | CPU of each replica for {changes} changes | {cpu_each} |\n",
            services = args.services + 1,
            endpoints = args.services * args.endpoints_per_service + 1,
            clients = args.clients,
            replicas = args.replicas,
            p50 = percentile(&latencies_ms, 0.5),
            p99 = percentile(&latencies_ms, 0.99),
            wmed = percentile(&worst_ms, 0.5),
            wmax = worst_ms.last().copied().unwrap_or(f64::NAN),
            rss_each = each(&rsss, " MB"),
            cpu_each = each(&cpus, " s"),
            changes = args.changes,
        );
        println!("{table}");
        if !out.is_empty() {
            let doc = format!(
                "# Control-plane benchmark: replicas on etcd\n\nWritten by `weft-control-bench` ({}). Each change is `weft apply -f hot.yaml` (a Service every client subscribes to), \
                 through the replicas in turn; latency runs from starting the command to each client's ACK: the CLI, checking the change against the whole mesh, \
                 the etcd transaction, every replica's watch, rebuild and push. Targets (issue 17): p99 under 1 s; every replica under 300 MB.\n\n{table}\n\
                 Machine: 2 cores shared by etcd, the replicas, the {} clients and the benchmark itself.\n",
                std::env::args().collect::<Vec<_>>().join(" "),
                args.clients
            );
            std::fs::write(&out, doc).with_context(|| format!("writing {out}"))?;
        }
        drop(set);
        let _ = std::fs::remove_dir_all(&dir);
        return Ok(());
    }
    eprintln!("measuring a proxy's memory in a 10-Service mesh and in this one");
    let (small_rss, big_rss) = proxies::compare(&args.weft, &dir, grpc).await?;
    drop(control);

    let table = format!(
        "| measure | value |\n|---|---|\n\
         | mesh | {services} Services, {endpoints} endpoints, {clients} xDS clients (mTLS, delta) |\n\
         | control plane start (load + validate + listen) | {startup:.2?} |\n\
         | all clients subscribed (11 resources each) | {all_connected:.2?} |\n\
         | push: file change → client ACK, p50 | {p50:.0} ms |\n\
         | push: file change → client ACK, p99 | {p99:.0} ms |\n\
         | push: slowest client per change, median / max | {wmed:.0} / {wmax:.0} ms |\n\
         | control plane peak RSS | {rss:.1} MB |\n\
         | control plane CPU for {changes} changes | {cpu:.2} s ({per:.0} ms per change) |\n\
         | `weft proxy` RSS, 10-Service mesh, 10 Services called | {small_rss:.1} MB |\n\
         | `weft proxy` RSS, {services}-Service mesh, 10 Services called | {big_rss:.1} MB |\n",
        services = args.services + 1,
        endpoints = args.services * args.endpoints_per_service + 1,
        clients = args.clients,
        p50 = percentile(&latencies_ms, 0.5),
        p99 = percentile(&latencies_ms, 0.99),
        wmed = percentile(&worst_ms, 0.5),
        wmax = worst_ms.last().copied().unwrap_or(f64::NAN),
        changes = args.changes,
        per = cpu * 1e3 / args.changes.max(1) as f64,
    );
    println!("{table}");
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| "bench/CONTROL-RESULTS.md".into());
    if !out.is_empty() {
        let doc = format!(
            "# Control-plane benchmark\n\nWritten by `weft-control-bench` ({}). Each change rewrites the file of a Service every client subscribes to; \
             latency includes the watcher's 150 ms debounce, validating and compiling the whole mesh, and the push. \
             Targets (issue 3): p99 push under 1 s; control plane under 300 MB; proxy RSS flat in the mesh size.\n\n{table}\n\
             Machine: 2 cores shared by the control plane, the {} clients and the benchmark itself.\n",
            std::env::args().collect::<Vec<_>>().join(" "),
            args.clients
        );
        std::fs::write(&out, doc).with_context(|| format!("writing {out}"))?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
