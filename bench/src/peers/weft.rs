//! Weft proxies in static mode (`weft proxy --config-dir`), as an explicit HTTP proxy: the
//! client sends origin-form requests with `Host: backend.bench:8080` to the outbound address.
//!
//! * weft-1: one proxy (workload `client`); the backend WorkloadEntry is annotated
//!   `weft.dev/proxy: none`, so the proxy reaches the backend directly.
//! * weft-2: proxy A (workload `client`) → proxy B (workload `backend`, inbound
//!   127.0.20.1:4143) → backend: the mesh hop, plaintext HTTP/2 between the proxies.
//! * weft-2-mtls: the same hop as a mesh runs it, configured by `weft control` (127.0.20.9):
//!   certificates from the control plane and STRICT mutual TLS between the proxies.
//! * weft-2-authz: weft-2-mtls with a RequestAuthentication and AuthorizationPolicies for
//!   proxy B in the control plane's config directory ([`super::authz`]).

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use super::{addr, ensure_free, is_executable, wait_ready, wait_ready_for, Missing};
use crate::children::Proc;
use crate::request::RequestShape;

/// What the load generator puts in `Host` when talking to a Weft outbound listener.
pub const HOST: &str = "backend.bench:8080";
/// How long a Weft proxy gets to report `/ready`.
const READY: Duration = Duration::from_secs(10);

/// Addresses and identity of one `weft proxy`.
pub struct ProxySpec {
    pub name: &'static str,
    pub workload: &'static str,
    pub outbound: &'static str,
    pub inbound: &'static str,
    pub admin: &'static str,
    pub app_ip: &'static str,
}

/// Proxy A (and the only proxy of weft-1): the client's sidecar.
pub const CLIENT: ProxySpec = ProxySpec {
    name: "weft A (client)",
    workload: "client",
    outbound: "127.0.20.2:4140",
    inbound: "127.0.20.2:4143",
    admin: "127.0.20.2:4191",
    app_ip: "127.0.20.2",
};

/// Proxy B: the backend's sidecar.
pub const BACKEND: ProxySpec = ProxySpec {
    name: "weft B (backend)",
    workload: "backend",
    outbound: "127.0.20.1:4140",
    inbound: "127.0.20.1:4143",
    admin: "127.0.20.1:4191",
    app_ip: "127.0.20.1",
};

/// The `weft` binary at `path`, or how to build it.
pub fn binary(path: &Path) -> Result<PathBuf, Missing> {
    if is_executable(path) {
        return Ok(path.to_path_buf());
    }
    Err(Missing {
        what: "weft",
        looked: path.display().to_string(),
        install: "cargo build --release -p weft   (in the workspace root), or pass --weft PATH"
            .to_string(),
    })
}

/// The control plane of weft-2-mtls: gRPC (xDS, certificates) and admin addresses.
const CONTROL_GRPC: &str = "127.0.20.9:4180";
const CONTROL_ADMIN: &str = "127.0.20.9:4181";

/// Where a proxy gets its configuration.
pub enum Source<'a> {
    /// `--config-dir`: static mode, no identity, plaintext between proxies.
    Static(&'a Path),
    /// `--control`: the control plane whose state directory is given (its CA bundle and
    /// join tokens live there).
    Control(&'a Path),
}

/// Writes the bench mesh (Service `backend`, WorkloadEntries `backend` and `client`) into
/// `dir/config/`. With `backend_meshed == false` the backend is annotated as having no proxy;
/// with `strict_mtls`, a mesh-wide PeerAuthentication makes every proxy-to-proxy hop mTLS.
pub fn write_config(dir: &Path, backend_meshed: bool, strict_mtls: bool) -> Result<PathBuf> {
    let config = dir.join("config");
    std::fs::create_dir_all(&config).with_context(|| format!("creating {}", config.display()))?;
    let strict = if strict_mtls {
        "---\n\
         apiVersion: security.istio.io/v1\n\
         kind: PeerAuthentication\n\
         metadata: {name: default, namespace: istio-system}\n\
         spec: {mtls: {mode: STRICT}}\n"
    } else {
        ""
    };
    let annotations = if backend_meshed {
        ""
    } else {
        "\n  annotations: {weft.dev/proxy: none}"
    };
    let yaml = format!(
        "# written by weft-bench\n\
         apiVersion: v1\n\
         kind: Service\n\
         metadata: {{name: backend, namespace: bench}}\n\
         spec:\n  \
           selector: {{app: backend}}\n  \
           ports: [{{name: http, port: 8080, appProtocol: http}}]\n\
         ---\n\
         apiVersion: networking.istio.io/v1\n\
         kind: WorkloadEntry\n\
         metadata:\n  \
           name: backend\n  \
           namespace: bench{annotations}\n\
         spec: {{address: 127.0.20.1, serviceAccount: backend, labels: {{app: backend}}}}\n\
         ---\n\
         apiVersion: networking.istio.io/v1\n\
         kind: WorkloadEntry\n\
         metadata: {{name: client, namespace: bench}}\n\
         spec: {{address: 127.0.20.2, serviceAccount: client, labels: {{app: client}}}}\n{strict}"
    );
    let path = config.join("mesh.yaml");
    std::fs::write(&path, yaml).with_context(|| format!("writing {}", path.display()))?;
    Ok(config)
}

/// Starts `weft control` on `config` with its state in `dir/state`, and waits (at most 10 s)
/// for its admin `/ready`.
pub fn start_control(bin: &Path, config: &Path, dir: &Path) -> Result<(Proc, PathBuf)> {
    for a in [CONTROL_GRPC, CONTROL_ADMIN] {
        ensure_free(addr(a)?, "weft control")?;
    }
    let state = dir.join("state");
    let mut cmd = Command::new(bin);
    cmd.arg("control")
        .arg("--config-dir")
        .arg(config)
        .arg("--state-dir")
        .arg(&state)
        .args(["--grpc-addr", CONTROL_GRPC, "--admin-addr", CONTROL_ADMIN]);
    if std::env::var_os("WEFT_LOG").is_none() {
        cmd.env("WEFT_LOG", "warn");
    }
    let mut proc = Proc::spawn("weft control", &mut cmd, &dir.join("weft-control.log"))?;
    wait_ready(
        &mut proc,
        addr(CONTROL_ADMIN)?,
        "/ready",
        CONTROL_ADMIN,
        READY,
    )
    .with_context(|| format!("starting `{}`", describe(&cmd)))?;
    Ok((proc, state))
}

/// A single-use join token for `workload` from the control plane's state, written to a file
/// (0600) so it stays out of the process list.
fn join_token_file(bin: &Path, state: &Path, workload: &str, dir: &Path) -> Result<PathBuf> {
    let out = Command::new(bin)
        .args([
            "token",
            "create",
            "--workload",
            workload,
            "--namespace",
            "bench",
        ])
        .arg("--state-dir")
        .arg(state)
        .output()
        .with_context(|| format!("running {} token create", bin.display()))?;
    if !out.status.success() {
        anyhow::bail!(
            "weft token create --workload {workload} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let path = dir.join(format!("{workload}.token"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(&out.stdout)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Starts one `weft proxy` and waits (at most 10 s) for its admin `/ready` to return 200.
pub fn start_proxy(bin: &Path, source: &Source, spec: &ProxySpec, dir: &Path) -> Result<Proc> {
    for a in [spec.outbound, spec.inbound, spec.admin] {
        ensure_free(addr(a)?, spec.name)?;
    }
    let mut cmd = Command::new(bin);
    cmd.arg("proxy");
    let config = match source {
        Source::Static(config) => {
            cmd.arg("--config-dir").arg(config);
            config.display().to_string()
        }
        Source::Control(state) => {
            let token = join_token_file(bin, state, spec.workload, dir)?;
            cmd.args(["--control", CONTROL_GRPC])
                .arg("--control-ca")
                .arg(state.join("ca/bundle.pem"))
                .arg("--join-token-file")
                .arg(token);
            format!("control plane {CONTROL_GRPC}")
        }
    };
    cmd.args(["--workload", spec.workload, "--namespace", "bench"])
        .args([
            "--outbound-addr",
            spec.outbound,
            "--inbound-addr",
            spec.inbound,
        ])
        .args(["--admin-addr", spec.admin, "--app-ip", spec.app_ip]);
    // Like Envoy (`--log-level warn`, one worker, no access log) and nginx: quiet logs, one
    // worker thread, and a short drain so stopping between setups is quick. Environment
    // fallbacks rather than flags, so the contract above stays the whole command line; a
    // value the caller exported wins.
    for (var, value) in [
        ("WEFT_LOG", "warn"),
        ("WEFT_THREADS", "1"),
        ("WEFT_DRAIN_TIMEOUT", "1s"),
    ] {
        if std::env::var_os(var).is_none() {
            cmd.env(var, value);
        }
    }
    let log = dir.join(format!("weft-{}.log", spec.workload));
    let mut proc = Proc::spawn(spec.name, &mut cmd, &log)?;
    wait_ready(&mut proc, addr(spec.admin)?, "/ready", spec.admin, READY)
        .with_context(|| format!("starting `{}` (config from {config})", describe(&cmd),))?;
    Ok(proc)
}

/// Waits until `GET /` through `entry`'s outbound listener reaches the backend with 200;
/// on failure, includes the log tails of every proxy on the path.
pub fn probe(entry: &mut Proc, spec: &ProxySpec, others: &[&Proc]) -> Result<()> {
    probe_with(entry, spec, &RequestShape::plain(HOST), others)
}

/// [`probe`] with the request the setup will be measured with.
pub fn probe_with(
    entry: &mut Proc,
    spec: &ProxySpec,
    request: &RequestShape,
    others: &[&Proc],
) -> Result<()> {
    let res = wait_ready_for(entry, addr(spec.outbound)?, request, READY);
    res.with_context(|| {
        let mut msg = format!(
            "GET {} with Host: {} through {} at {} did not return 200",
            request.path, request.host, spec.name, spec.outbound
        );
        for p in others {
            msg.push_str(&format!(
                "\nlast lines of {} ({}):\n{}",
                p.name(),
                p.log_path().display(),
                p.log_tail(20)
            ));
        }
        msg
    })
}

fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
