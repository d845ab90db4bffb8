//! Starting a claimed workload: its namespace, capture rules, hosts file, registration,
//! proxy, and then its application; and undoing the registration when it ends.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::control_client::Registration;
use crate::error::{io, RunError};
use crate::lease::{deregister, LEASE_TTL};
use crate::network::{self, HostNet};
use crate::records::{Record, Records};
use crate::spawn::{self, Output};
use crate::spec::{AppOutput, Outcome, RunSpec};
use crate::supervise;

pub(crate) async fn run_claimed(
    spec: &RunSpec,
    records: &Records,
    record: &Record,
    ca_pem: &str,
    started: Option<tokio::sync::oneshot::Sender<std::net::Ipv4Addr>>,
    shutdown: impl Future<Output = ()>,
) -> Result<Outcome, RunError> {
    let ns = HostNet::netns_name(&spec.name);
    let (net, name, address, netns, capture) = (
        spec.net.clone(),
        spec.name.clone(),
        record.address,
        ns.clone(),
        spec.capture.clone(),
    );
    tokio::task::spawn_blocking(move || {
        network::create_namespace(&net, &name, address)?;
        crate::capture::install(&netns, &capture)
    })
    .await
    .map_err(|e| RunError::Invalid(format!("setting up the namespace: {e}")))??;
    let hosts = spec.control.hosts(&spec.namespace).await?;
    crate::hosts::write(&ns, &hosts).map_err(io("writing the namespace's hosts file"))?;
    let ca_path = records.ca_file(&spec.name);
    write_public(&ca_path, ca_pem.as_bytes())
        .map_err(io(format!("writing {}", ca_path.display())))?;

    let owner = record.owner.clone();
    let registration = Registration {
        service: spec.service.clone(),
        service_account: spec.service_account.clone(),
        address: record.address.into(),
        ports: vec![spec.port],
        labels: spec.labels.clone(),
        app_protocol: spec.app_protocol.clone(),
        owner: owner.clone(),
        ttl_seconds: LEASE_TTL.as_secs(),
        host: spec.host.clone(),
        tunnel: None,
    };
    let token = spec
        .control
        .register(&spec.namespace, &spec.name, &registration, true)
        .await?
        .ok_or_else(|| RunError::Invalid("the control plane sent no join token".into()))?;
    let result = start_and_supervise(
        spec,
        record,
        &ca_path,
        &token,
        &registration,
        started,
        shutdown,
    )
    .await;
    deregister(spec, &owner).await;
    result
}

async fn start_and_supervise(
    spec: &RunSpec,
    record: &Record,
    ca_path: &std::path::Path,
    token: &str,
    registration: &Registration,
    started: Option<tokio::sync::oneshot::Sender<std::net::Ipv4Addr>>,
    shutdown: impl Future<Output = ()>,
) -> Result<Outcome, RunError> {
    let ns = HostNet::netns_name(&spec.name);
    let logs = spec.run_dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(io(format!("creating {}", logs.display())))?;
    // The proxy runs as its own uid: it reads the CA bundle from a file any user may read
    // (it holds only public certificates).
    let proxy_exe = proxy_binary(&spec.weft_exe, &spec.run_dir).map_err(io(format!(
        "making {} runnable by the proxy's uid",
        spec.weft_exe.display()
    )))?;
    let proxy_log_path = logs.join(format!("{}.proxy.log", spec.name));
    let proxy_log = std::fs::File::create(&proxy_log_path)
        .map_err(io(format!("creating {}", proxy_log_path.display())))?;
    let c = &spec.capture;
    let mut args: Vec<String> = vec![
        "proxy".into(),
        "--control".into(),
        spec.control_grpc.clone(),
        "--control-ca".into(),
        ca_path.display().to_string(),
        "--workload".into(),
        spec.name.clone(),
        "--namespace".into(),
        spec.namespace.clone(),
        "--outbound-addr".into(),
        format!("127.0.0.1:{}", c.outbound_port),
        "--inbound-addr".into(),
        format!("0.0.0.0:{}", c.inbound_port),
        "--admin-addr".into(),
        format!("0.0.0.0:{}", c.admin_port),
        "--drain-timeout".into(),
        format!("{}ms", spec.drain_timeout.as_millis()),
    ];
    if spec.access_log {
        args.push("--access-log".into());
    }
    let env = vec![("WEFT_JOIN_TOKEN".to_string(), token.to_string())];
    let mut proxy = spawn::proxy(
        &ns,
        &proxy_exe,
        &args,
        &env,
        c.proxy_uid,
        &Output::File(proxy_log),
    )
    .map_err(io("starting the proxy"))?;
    let admin = SocketAddr::new(record.address.into(), c.admin_port);
    tracing::info!(workload = %spec.name, address = %record.address, admin = %format!("http://{admin}"), log = %proxy_log_path.display(), "proxy started");
    if let Err(e) = supervise::wait_ready(admin, &mut proxy, spec.ready_timeout).await {
        supervise::stop(&mut proxy, Duration::from_secs(1)).await;
        let tail = supervise::log_tail(&proxy_log_path, 15);
        return Err(RunError::Proxy(format!(
            "{e}; its log ({}):\n{tail}",
            proxy_log_path.display()
        )));
    }

    let app_output = match &spec.app_output {
        AppOutput::Inherit => Output::Inherit,
        AppOutput::Prefixed(_) => Output::Piped,
        AppOutput::File(p) => {
            Output::File(std::fs::File::create(p).map_err(io(format!("creating {}", p.display())))?)
        }
    };
    let mut app_env = spec.env.clone();
    app_env.push(("WEFT_WORKLOAD".into(), spec.name.clone()));
    app_env.push(("WEFT_NAMESPACE".into(), spec.namespace.clone()));
    let began = Instant::now();
    let mut app = spawn::app(&ns, &spec.command, &app_env, &app_output)
        .map_err(io("starting the application"))?;
    if let AppOutput::Prefixed(prefix) = &spec.app_output {
        spawn::forward_lines(&mut app, prefix);
    }
    if let Some(tx) = started {
        let _ = tx.send(record.address);
    }
    tracing::info!(workload = %spec.name, command = %spec.command.join(" "), "application started");
    let ended = supervise::supervise(spec, registration, app, &mut proxy, shutdown).await;
    // Out of the mesh before the proxy goes: peers stop picking this endpoint while the
    // proxy drains what is in flight.
    deregister(spec, &registration.owner).await;
    supervise::stop(&mut proxy, spec.drain_timeout + Duration::from_secs(2)).await;
    let ran_for = began.elapsed();
    match ended {
        supervise::Ended::App { code, stopped } => Ok(Outcome {
            code,
            ran_for,
            stopped,
        }),
        supervise::Ended::ProxyDied(status) => {
            let tail = supervise::log_tail(&proxy_log_path, 15);
            Err(RunError::Proxy(format!("exited while the application ran ({status}); the application was stopped. Its log ({}):\n{tail}", proxy_log_path.display())))
        }
    }
}

/// Writes a file every user may read (0644, whatever the umask).
fn write_public(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, bytes)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
}

/// The binary the proxy runs from: `exe` when the proxy's uid can reach and execute it
/// (every directory above it searchable by others, the file executable by others), else a
/// copy under `<run_dir>/bin` (a build under a private home directory, run with sudo).
fn proxy_binary(
    exe: &std::path::Path,
    run_dir: &std::path::Path,
) -> std::io::Result<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let others_may = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o001 != 0)
    };
    if exe.ancestors().skip(1).all(others_may) && others_may(exe) {
        return Ok(exe.to_path_buf());
    }
    let dir = run_dir.join("bin");
    std::fs::create_dir_all(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
    let copy = dir.join("weft");
    let same = |a: &std::path::Path, b: &std::path::Path| match (
        std::fs::metadata(a),
        std::fs::metadata(b),
    ) {
        (Ok(x), Ok(y)) => x.len() == y.len() && x.modified().ok() <= y.modified().ok(),
        _ => false,
    };
    if !same(exe, &copy) {
        let tmp = dir.join(format!(".weft.{}", std::process::id()));
        std::fs::copy(exe, &tmp)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
        std::fs::rename(&tmp, &copy)?;
    }
    Ok(copy)
}
