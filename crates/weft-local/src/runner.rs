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

use std::future::Future;
use std::path::{Path, PathBuf};

use crate::error::RunError;
use crate::network::{self, HostNet};
use crate::records::{Record, Records};
use crate::spec::{Outcome, RunSpec};

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
