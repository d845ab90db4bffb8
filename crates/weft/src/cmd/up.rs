//! `weft up [DIR]`: a control plane on DIR and every `LocalWorkload` it declares, meshed on
//! this host; the shop example (embedded) when no DIR is given.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use weft_local::up::{Joined, Running, UpSpec};

/// The shop example, embedded so that `weft up` works from anywhere.
const SHOP: [(&str, &str); 4] = [
    (
        "mesh.yaml",
        include_str!("../../../../examples/shop/mesh.yaml"),
    ),
    (
        "policies.yaml",
        include_str!("../../../../examples/shop/policies.yaml"),
    ),
    (
        "resilience.yaml",
        include_str!("../../../../examples/shop/resilience.yaml"),
    ),
    (
        "workloads.yaml",
        include_str!("../../../../examples/shop/workloads.yaml"),
    ),
];

#[derive(clap::Args)]
pub struct Args {
    /// Directory of mesh resources and `LocalWorkload`s (default: the shop example).
    dir: Option<PathBuf>,
    /// Stop by itself after this long (e.g. `30s`), as if Ctrl-C had been pressed.
    #[arg(long = "for", value_parser = super::proxy::parse_duration)]
    duration: Option<std::time::Duration>,
    /// Proxies write no access log.
    #[arg(long)]
    no_access_log: bool,
    #[command(flatten)]
    host: super::host_args::HostArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    weft_local::privileges::check()?;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => write_example(&args.host.run_dir)?,
    };
    let (model, diags) = weft_api::validate::load_and_build(&dir);
    let model =
        model.ok_or_else(|| anyhow::anyhow!("{} is not a valid mesh:\n{diags}", dir.display()))?;
    if model.local_workloads.is_empty() {
        anyhow::bail!(
            "{} declares no LocalWorkload: nothing for weft up to run (see the shop example, examples/shop/workloads.yaml)",
            dir.display()
        );
    }
    // Replica names name network namespaces, which are host-wide: unique across namespaces.
    let mut seen = std::collections::BTreeMap::new();
    for w in &model.local_workloads {
        if let Some(other) = seen.insert(w.name.clone(), w.namespace.clone()) {
            anyhow::bail!(
                "LocalWorkload {} is declared in namespaces {other} and {}: names must be unique on a host (they name network namespaces)",
                w.name,
                w.namespace
            );
        }
    }
    let net = args.host.net()?;
    // On a joined host the mesh's control plane is its replicas: the workloads join it.
    let joined = match args.host.joined()? {
        Some(host) => Some(Joined {
            host: host.name,
            client: args.host.control()?,
            grpc: args.host.control_grpc(&net)?,
        }),
        None if args.host.control.is_some() => anyhow::bail!(
            "--control is for a host joined to a mesh of hosts (`weft host join`); here weft up starts its own control plane"
        ),
        None => None,
    };
    let spec = UpSpec {
        config_dir: dir.clone(),
        state_dir: args.host.state_dir.clone(),
        net,
        run_dir: args.host.run_dir.clone(),
        weft_exe: std::env::current_exe().context("locating the weft binary")?,
        control_admin: args.host.control_admin()?,
        access_log: !args.no_access_log,
        ready_timeout: std::time::Duration::from_secs(30),
        drain_timeout: std::time::Duration::from_secs(2),
        joined,
    };
    let admin = format!("http://{}", spec.control_admin);
    let joined_as = spec.joined.as_ref().map(|j| j.host.clone());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let duration = args.duration;
    let _runtime = runtime.enter();
    let signals = super::stop_signals(true);
    let shutdown = async move {
        match duration {
            Some(d) => {
                tokio::select! {
                    () = tokio::time::sleep(d) => {}
                    () = signals => {}
                }
            }
            None => signals.await,
        }
    };
    let on_running =
        |r: &Running| print_running(&dir, args.dir.is_none(), r, &admin, joined_as.as_deref());
    let ended = runtime.block_on(weft_local::up::up(
        spec,
        model.local_workloads,
        on_running,
        shutdown,
    ))?;
    let failed: Vec<String> = ended
        .iter()
        .filter_map(|e| match &e.result {
            Err(err) => Some(format!("{}: {err}", e.name)),
            Ok(o) if o.code != 0 && !o.stopped => {
                Some(format!("{}: exited with status {}", e.name, o.code))
            }
            Ok(_) => None,
        })
        .collect();
    println!("weft up: everything stopped and removed");
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("weft up: some workloads failed:\n  {}", failed.join("\n  "));
        Ok(ExitCode::FAILURE)
    }
}

/// Writes the embedded shop example under the run directory; returns its directory.
fn write_example(run_dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = run_dir.join("up").join("shop");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, text) in SHOP {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(dir)
}

fn print_running(dir: &Path, example: bool, r: &Running, admin: &str, joined: Option<&str>) {
    let what = if example { " (the shop example)" } else { "" };
    match (joined, &r.control_log) {
        (Some(host), _) => {
            println!(
                "\nWeft is up: the workloads of {}{what} on host {host} of the mesh",
                dir.display()
            );
            println!(
                "  control plane  the mesh's replicas: grpc {}   admin {admin}   (its routes and policies change with `weft apply`)",
                r.control_grpc
            );
        }
        (None, log) => {
            println!("\nWeft is up: the mesh in {}{what}", dir.display());
            println!(
                "  control plane  grpc {}   status {admin}/status   metrics {admin}/metrics   log {}",
                r.control_grpc,
                log.as_ref().map(|l| l.display().to_string()).unwrap_or_default()
            );
        }
    }
    println!(
        "  {:<16} {:<20} {:<14} {:<36} proxy log (access log lines are JSON)",
        "workload", "service", "address", "proxy admin"
    );
    for (name, service, address) in &r.workloads {
        println!(
            "  {name:<16} {service:<20} {:<14} {:<36} {}",
            address.to_string(),
            format!("http://{address}:4191/metrics"),
            r.logs.join(format!("{name}.proxy.log")).display()
        );
    }
    let change = match joined {
        Some(_) => format!(
            "edit the weights in {}/mesh.yaml, `weft apply -f` it (admin token)",
            dir.display()
        ),
        None => format!("edit the weights in {}/mesh.yaml", dir.display()),
    };
    println!(
        "\nTry: {change} and watch the frontend's report follow;\n     curl -s http://<address>:4191/metrics | grep weft_requests_total\nCtrl-C stops everything.\n"
    );
}
