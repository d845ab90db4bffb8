//! `weft up`: a whole mesh on this host from one directory: a control plane on the
//! directory, and every `LocalWorkload` it declares run as `weft run` would run it, in file
//! order (servers first), each replica started once the one before it runs. A control plane
//! that dies is started again ([`crate::restart`]). Ctrl-C (or the end of `--for`) stops the
//! workloads, then the control plane, and removes everything.
//!
//! On a host joined to a mesh of hosts the mesh's control plane is its replicas on etcd:
//! `weft up` starts none, and the workloads register with the replicas as this host's
//! ([`Joined`]), on the host's block, reachable from every other host.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use weft_api::model::LocalWorkloadModel;

use crate::capture::CaptureSpec;
use crate::control_client::ControlClient;
use crate::error::RunError;
use crate::network::HostNet;
use crate::restart::HostProcess;
use crate::spec::{AppOutput, Outcome, RunSpec};

pub struct UpSpec {
    pub config_dir: PathBuf,
    pub state_dir: PathBuf,
    pub net: HostNet,
    pub run_dir: PathBuf,
    pub weft_exe: PathBuf,
    pub control_admin: SocketAddr,
    pub access_log: bool,
    pub ready_timeout: Duration,
    pub drain_timeout: Duration,
    /// On a joined host, the mesh's control plane; `None` starts one on `config_dir`.
    pub joined: Option<Joined>,
}

/// A joined host's control plane: its workloads register through `client` (the host's
/// credential) and their proxies dial `grpc`.
pub struct Joined {
    pub host: String,
    pub client: ControlClient,
    pub grpc: String,
}

/// One replica as it ended.
pub struct Ended {
    pub name: String,
    pub result: Result<Outcome, RunError>,
}

/// What is running, for the caller to print.
pub struct Running {
    /// The gRPC address(es) proxies dial.
    pub control_grpc: String,
    /// The log of the control plane `weft up` started; `None` on a joined host.
    pub control_log: Option<PathBuf>,
    /// Where the proxies' logs are (`<name>.proxy.log`).
    pub logs: PathBuf,
    /// Replica name, `namespace/service`, address.
    pub workloads: Vec<(String, String, std::net::Ipv4Addr)>,
}

#[derive(Debug, thiserror::Error)]
pub enum UpError {
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("the control plane did not start: {0}")]
    Control(String),
    #[error("workload {name} did not start: {reason}")]
    Workload { name: String, reason: String },
}

/// Brings the mesh up, calls `on_running` once every workload runs, waits for `shutdown`
/// (or for every workload to end), and tears everything down.
pub async fn up(
    spec: UpSpec,
    workloads: Vec<LocalWorkloadModel>,
    on_running: impl FnOnce(&Running),
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<Vec<Ended>, UpError> {
    crate::privileges::check().map_err(RunError::from)?;
    let cleaned =
        crate::cleanup::cleanup_stale(&spec.run_dir, &spec.net).map_err(RunError::from)?;
    for r in cleaned.iter().filter(|r| !r.bridge_only) {
        tracing::warn!(workload = %r.name, "removed what an earlier run that did not finish left");
    }
    let (records, holder) = crate::cleanup::hold_bridge(&spec.run_dir, &spec.net)?;
    let result = with_bridge(&spec, workloads, on_running, shutdown).await;
    crate::runner::teardown(&records, &spec.net, &holder);
    result
}

async fn with_bridge(
    spec: &UpSpec,
    workloads: Vec<LocalWorkloadModel>,
    on_running: impl FnOnce(&Running),
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<Vec<Ended>, UpError> {
    let logs = spec.run_dir.join("logs");
    std::fs::create_dir_all(&logs)
        .map_err(|e| UpError::Control(format!("{}: {e}", logs.display())))?;
    if let Some(joined) = &spec.joined {
        let on = Mesh {
            grpc: joined.grpc.clone(),
            client: joined.client.clone(),
            host: Some(joined.host.clone()),
            log: None,
            logs,
        };
        return with_control(spec, on, workloads, on_running, shutdown).await;
    }
    let control_grpc = SocketAddr::new(spec.net.gateway.into(), weft_api::CONTROL_GRPC_PORT);
    let control_log = logs.join("control.log");
    // A fresh log per run; restarts within the run append to it.
    std::fs::File::create(&control_log)
        .map_err(|e| UpError::Control(format!("{}: {e}", control_log.display())))?;
    let args: Vec<String> = [
        "control",
        "--config-dir",
        &spec.config_dir.display().to_string(),
        "--state-dir",
        &spec.state_dir.display().to_string(),
        "--grpc-addr",
        &control_grpc.to_string(),
        "--admin-addr",
        &spec.control_admin.to_string(),
        "--prometheus-file-sd",
        &spec
            .run_dir
            .join("prometheus-targets.json")
            .display()
            .to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let control = HostProcess {
        what: "control plane",
        exe: spec.weft_exe.clone(),
        args,
        log: control_log.clone(),
        ready: Some(spec.control_admin),
        ready_timeout: Duration::from_secs(20),
    }
    .start(Duration::from_secs(5))
    .await
    .map_err(UpError::Control)?;
    let token_path = spec.state_dir.join("admin-token");
    let result = match std::fs::read_to_string(&token_path) {
        Ok(token) => {
            let on = Mesh {
                grpc: control_grpc.to_string(),
                client: ControlClient::new(vec![spec.control_admin], token.trim().to_string()),
                host: None,
                log: Some(control_log),
                logs,
            };
            with_control(spec, on, workloads, on_running, shutdown).await
        }
        Err(e) => Err(UpError::Control(format!("{}: {e}", token_path.display()))),
    };
    control.stop().await;
    result
}

/// The control plane the workloads join.
struct Mesh {
    grpc: String,
    client: ControlClient,
    /// The joined host they run on.
    host: Option<String>,
    /// The log of the control plane `weft up` started.
    log: Option<PathBuf>,
    logs: PathBuf,
}

async fn with_control(
    spec: &UpSpec,
    mesh: Mesh,
    workloads: Vec<LocalWorkloadModel>,
    on_running: impl FnOnce(&Running),
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<Vec<Ended>, UpError> {
    // Each replica has its own stop signal: they stop in the reverse of their start order
    // (clients before the servers they call), each finished before the next is told.
    let mut stops: Vec<(String, watch::Sender<bool>)> = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    // Task ids to replica names: a runner that panicked still counts as ended.
    let mut names = std::collections::HashMap::new();
    let mut running = Vec::new();
    let mut failed = None;
    'start: for w in &workloads {
        for i in 0..w.replicas {
            let name = format!("{}-{i}", w.name);
            let run_spec = replica_spec(spec, w, &name, &mesh);
            let (started_tx, started_rx) = oneshot::channel();
            let (stop_tx, mut stop_rx) = watch::channel(false);
            stops.push((name.clone(), stop_tx));
            let task_name = name.clone();
            let handle = tasks.spawn(async move {
                let stopped = async move {
                    let _ = stop_rx.wait_for(|s| *s).await;
                };
                let result =
                    crate::runner::run_notifying(run_spec, Some(started_tx), stopped).await;
                Ended {
                    name: task_name,
                    result,
                }
            });
            names.insert(handle.id(), name.clone());
            // The runner drops `started` without sending when it fails before the app runs.
            let Ok(address) = started_rx.await else {
                failed = Some(name);
                break 'start;
            };
            running.push((name, format!("{}/{}", w.namespace, w.service), address));
        }
    }
    let mut ended: Vec<Ended> = Vec::new();
    if failed.is_none() {
        on_running(&Running {
            control_grpc: mesh.grpc.clone(),
            control_log: mesh.log.clone(),
            logs: mesh.logs.clone(),
            workloads: running,
        });
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                done = tasks.join_next() => match done {
                    Some(done) => {
                        let e = ended_of(done, &names);
                        report_end(&e);
                        ended.push(e);
                    }
                    None => break,
                },
            }
        }
    }
    for (name, stop) in stops.iter().rev() {
        if ended.iter().any(|e| &e.name == name) {
            continue;
        }
        let _ = stop.send(true);
        while let Some(done) = tasks.join_next().await {
            let e = ended_of(done, &names);
            let last = &e.name == name;
            ended.push(e);
            if last {
                break;
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        ended.push(ended_of(done, &names));
    }
    if let Some(name) = failed {
        let reason = ended
            .iter()
            .find(|e| e.name == name)
            .and_then(|e| e.result.as_ref().err())
            .map(|e| e.to_string())
            .unwrap_or_else(|| "it stopped before its application started".into());
        return Err(UpError::Workload { name, reason });
    }
    Ok(ended)
}

/// What a finished runner task says; a panic becomes that replica's error.
fn ended_of(
    done: Result<Ended, tokio::task::JoinError>,
    names: &std::collections::HashMap<tokio::task::Id, String>,
) -> Ended {
    match done {
        Ok(e) => e,
        Err(join) => Ended {
            name: names.get(&join.id()).cloned().unwrap_or_default(),
            result: Err(RunError::Invalid(format!(
                "its runner failed ({join}); `weft run --cleanup` removes what it left"
            ))),
        },
    }
}

fn report_end(e: &Ended) {
    match &e.result {
        Ok(o) => tracing::info!(workload = %e.name, code = o.code, "workload exited"),
        Err(err) => tracing::error!(workload = %e.name, error = %err, "workload failed"),
    }
}

fn replica_spec(spec: &UpSpec, w: &LocalWorkloadModel, name: &str, mesh: &Mesh) -> RunSpec {
    let mut command = w.command.clone();
    if command.first().is_some_and(|c| c == "weft") {
        command[0] = spec.weft_exe.display().to_string();
    }
    // The downward-API-like variables the echo server reads.
    let mut env: Vec<(String, String)> = vec![
        ("POD_NAME".into(), name.to_string()),
        ("SERVICE_NAME".into(), w.service.clone()),
        ("NAMESPACE".into(), w.namespace.clone()),
    ];
    env.extend(w.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    RunSpec {
        name: name.to_string(),
        namespace: w.namespace.clone(),
        service: w.service.clone(),
        service_account: w.service_account.clone(),
        port: w.port,
        app_protocol: w.app_protocol.clone(),
        labels: w.labels.clone(),
        command,
        env,
        net: spec.net.clone(),
        capture: CaptureSpec::default(),
        run_dir: spec.run_dir.clone(),
        control_grpc: mesh.grpc.clone(),
        control: mesh.client.clone(),
        host: mesh.host.clone(),
        weft_exe: spec.weft_exe.clone(),
        app_output: AppOutput::Prefixed(name.to_string()),
        access_log: spec.access_log,
        drain_timeout: spec.drain_timeout,
        ready_timeout: spec.ready_timeout,
    }
}
