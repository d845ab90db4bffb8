//! `weft run`: one workload, meshed, from start to a clean exit.
//!
//! 1. checks what can be checked before anything is made: privileges, names, ports, that the
//!    program exists, that the control plane answers;
//! 2. claims the name and an address in the records (a live runner of the same name is an
//!    error; a dead one's leftovers are removed first);
//! 3. makes the namespace, the capture rules and the hosts file, registers the workload
//!    (getting the proxy's join token) and starts the proxy;
//! 4. starts the application once the proxy is ready (native-sidecar ordering), renews the
//!    registration and refreshes the hosts file while it runs;
//! 5. when the application exits (or the runner is told to stop): deregisters, lets the proxy
//!    drain and stops it, and removes everything step 3 made — also when a step failed.
//!
//! Children are spawned from the runtime's thread; run this on a current-thread runtime so
//! that their parent-death signal follows the runner's life (see [`crate::spawn`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::capture::CaptureSpec;
use crate::command::ToolError;
use crate::control_client::{ControlClient, ControlError};
use crate::network::{self, HostNet};
use crate::privileges::MissingPrivileges;
use crate::records::{Record, RecordError, Records};

/// Everything `weft run` needs to know.
pub struct RunSpec {
    pub name: String,
    pub namespace: String,
    pub service: String,
    pub service_account: Option<String>,
    pub port: u16,
    pub app_protocol: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
    pub net: HostNet,
    pub capture: CaptureSpec,
    /// Where records and logs go (`/run/weft`).
    pub run_dir: PathBuf,
    /// The control plane's gRPC address, as the proxy inside the namespace dials it.
    pub control_grpc: SocketAddr,
    pub control: ControlClient,
    /// The `weft` binary the proxy runs from.
    pub weft_exe: PathBuf,
    /// Where the application's output goes (the proxy's goes to `<run_dir>/logs/`).
    pub app_output: AppOutput,
    pub access_log: bool,
    /// How long the proxy may drain after the application exits.
    pub drain_timeout: Duration,
    /// How long the proxy has to become ready.
    pub ready_timeout: Duration,
}

pub enum AppOutput {
    Inherit,
    File(PathBuf),
    /// Each line printed with this prefix (`[name] ...`), as `weft up` shows its workloads.
    Prefixed(String),
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Privileges(#[from] MissingPrivileges),
    #[error("{0}")]
    Invalid(String),
    #[error("a workload named `{name}` is already running (weft run pid {pid}, address {address}); stop it first or pick another --name")]
    AlreadyRunning {
        name: String,
        pid: u32,
        address: Ipv4Addr,
    },
    #[error("cannot run `{0}`: no such program (not a file, and not found in PATH)")]
    MissingProgram(String),
    #[error(transparent)]
    Records(#[from] RecordError),
    #[error("setting up the workload's network: {0}")]
    Network(ToolError),
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error("the proxy {0}")]
    Proxy(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl From<ToolError> for RunError {
    fn from(e: ToolError) -> Self {
        RunError::Network(e)
    }
}

/// How the application ended.
#[derive(Debug)]
pub struct Outcome {
    /// Its exit code (128 + signal when a signal ended it).
    pub code: i32,
    pub ran_for: Duration,
    /// Whether the runner stopped it (a shutdown request) rather than it exiting.
    pub stopped: bool,
}

pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RunError {
    let what = what.into();
    move |source| RunError::Io { what, source }
}

/// Runs one workload until its application exits or `shutdown` completes.
pub async fn run(spec: RunSpec, shutdown: impl Future<Output = ()>) -> Result<Outcome, RunError> {
    run_notifying(spec, None, shutdown).await
}

/// [`run`], telling `started` the workload's address once the application has been started
/// (after its proxy was ready): `weft up` starts workloads in order.
pub async fn run_notifying(
    spec: RunSpec,
    started: Option<tokio::sync::oneshot::Sender<std::net::Ipv4Addr>>,
    shutdown: impl Future<Output = ()>,
) -> Result<Outcome, RunError> {
    crate::privileges::check()?;
    check_spec(&spec)?;
    let ca_pem = spec.control.trust_bundle().await?;
    let records = Records::open(&spec.run_dir)?;
    // The host's tools run off the runtime's thread: in `weft up` that thread also renews
    // every other replica's lease.
    let (r, name, ns, net, dir) = (
        records.clone(),
        spec.name.clone(),
        spec.namespace.clone(),
        spec.net.clone(),
        spec.run_dir.clone(),
    );
    let (record, stale) = tokio::task::spawn_blocking(move || claim(&r, &name, &ns, &net, &dir))
        .await
        .map_err(|e| RunError::Invalid(format!("claiming the workload's name: {e}")))??;
    if let Some(old) = stale.filter(|o| !o.owner.is_empty()) {
        // The crashed run's lease would hold the name until it expires.
        let _ = spec
            .control
            .deregister(&old.namespace, &old.name, &old.owner)
            .await;
    }
    let result =
        crate::start::run_claimed(&spec, &records, &record, &ca_pem, started, shutdown).await;
    let (r, net, rec) = (records.clone(), spec.net.clone(), record.clone());
    if tokio::task::spawn_blocking(move || teardown(&r, &net, &rec))
        .await
        .is_err()
    {
        teardown(&records, &spec.net, &record);
    }
    result
}

/// Names, ports and the program, checked before anything is created.
pub fn check_spec(spec: &RunSpec) -> Result<(), RunError> {
    // DNS labels, and short: replica suffixes and the `weft-` prefix go on top.
    let dns_label = |s: &str| s.len() <= 40 && weft_api::registration::is_dns_label(s);
    for (what, value) in [
        ("--name", &spec.name),
        ("--namespace", &spec.namespace),
        ("--service", &spec.service),
    ] {
        if !dns_label(value) {
            return Err(RunError::Invalid(format!(
                "{what} `{value}`: use lower-case letters, digits and '-' (at most 40, starting and ending with a letter or digit)"
            )));
        }
    }
    let c = &spec.capture;
    for (port, what) in [
        (c.outbound_port, "outbound"),
        (c.inbound_port, "inbound"),
        (c.admin_port, "admin"),
    ] {
        if spec.port == port {
            return Err(RunError::Invalid(format!(
                "--port {port} is taken: it is the proxy's {what} port inside the workload's namespace; run the application on another port"
            )));
        }
    }
    if c.proxy_uid == 0 {
        return Err(RunError::Invalid(
            "--proxy-uid 0: the proxy needs a uid of its own (the capture rules exempt it, and the application runs as root)".into(),
        ));
    }
    if spec.port == 0 {
        return Err(RunError::Invalid(
            "--port 0: give the port the application listens on".into(),
        ));
    }
    let program = spec.command.first().ok_or_else(|| {
        RunError::Invalid("no command to run (weft run ... -- COMMAND ARGS)".into())
    })?;
    if find_program(program).is_none() {
        return Err(RunError::MissingProgram(program.clone()));
    }
    Ok(())
}

/// `program` as a path, or looked up in PATH; `None` when it is not an executable file.
pub fn find_program(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        return executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
}

/// Takes the name and an address, cleaning up after a dead runner of the same name (which
/// is returned, to be deregistered).
fn claim(
    records: &Records,
    name: &str,
    namespace: &str,
    net: &HostNet,
    run_dir: &Path,
) -> Result<(Record, Option<Record>), RunError> {
    let lock = records.lock()?;
    let mut stale = None;
    if let Some(old) = records.get(&lock, name) {
        if old.runner_alive() {
            return Err(RunError::AlreadyRunning {
                name: old.name,
                pid: old.pid,
                address: old.address,
            });
        }
        tracing::warn!(name = %old.name, pid = old.pid, "a previous weft run of this workload did not finish: removing what it left");
        network::delete_namespace(&old.name, old.address);
        records.remove(&lock, &old.name);
        stale = Some(old);
    }
    let netns = HostNet::netns_name(name);
    if network::namespace_exists(&netns) {
        return Err(RunError::Invalid(format!(
            "network namespace {netns} exists, but no weft run record (in {}) names it: another tool, or a run with another --run-dir, made it. Remove it (`ip netns del {netns}`) or pick another --name",
            run_dir.display()
        )));
    }
    network::ensure_bridge(net)?;
    let me = std::process::id();
    let record = Record {
        name: name.to_string(),
        namespace: namespace.to_string(),
        address: records.free_address(&lock, net)?,
        pid: me,
        pid_start: crate::records::process_start(me).unwrap_or(0),
        bridge_only: false,
        owner: format!("run-{me}-{:08x}", fastrand::u32(..)),
    };
    records.write(&lock, &record)?;
    Ok((record, stale))
}

/// Removes what the run made; the bridge goes with the last record.
pub fn teardown(records: &Records, net: &HostNet, record: &Record) {
    let lock = match records.lock() {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "cannot lock the records; run `weft run --cleanup` later");
            return;
        }
    };
    if !record.bridge_only {
        network::delete_namespace(&record.name, record.address);
    }
    records.remove(&lock, &record.name);
    if records.list(&lock).is_empty() {
        network::remove_bridge(net);
    }
}
