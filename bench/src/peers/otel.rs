//! weft-2-trace's collector: rotel (PyPI, see PEERS.md), receiving OTLP/gRPC on 127.0.20.8
//! and dropping what it gets (its `blackhole` exporter), so the proxies export to a live
//! collector as in production and the measurement is of Weft, not of a backend.
//!
//! The MeshConfig turns tracing on at 1% (the default rate of Istio and of Weft): nearly
//! every request pays only for reading and writing its trace context, one in a hundred for a
//! span on each proxy and its export.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::{addr, ensure_free, is_executable, Missing};
use crate::children::Proc;

/// Where rotel receives OTLP/gRPC.
pub const COLLECTOR: &str = "127.0.20.8:4317";

/// The share of requests traced.
pub const SAMPLING_PERCENT: f64 = 1.0;

/// rotel from `.venv-otel` (as `./scripts/test.sh` installs it), or `WEFT_ROTEL`.
pub fn binary(workspace: &Path) -> Result<PathBuf, Missing> {
    let explicit = std::env::var_os("WEFT_ROTEL").map(PathBuf::from);
    let venv = workspace.join(".venv-otel");
    let found = match &explicit {
        Some(p) => Some(p.clone()).filter(|p| is_executable(p)),
        None => std::fs::read_dir(venv.join("lib"))
            .ok()
            .and_then(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.path().join("site-packages/rotel/rotel-agent"))
                    .find(|p| is_executable(p))
            }),
    };
    found.ok_or_else(|| Missing {
        what: "rotel (an OTLP collector)",
        looked: explicit.map_or_else(
            || {
                format!(
                    "{}/lib/python3*/site-packages/rotel/rotel-agent",
                    venv.display()
                )
            },
            |p| p.display().to_string(),
        ),
        install: "python3 -m venv .venv-otel && .venv-otel/bin/pip install rotel".to_string(),
    })
}

/// The MeshConfig weft-2-trace adds to weft-2-mtls's configuration.
pub fn mesh_config() -> String {
    format!(
        "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {{name: mesh}}\nspec:\n  \
         tracing:\n    collector: {COLLECTOR}\n    randomSamplingPercentage: {SAMPLING_PERCENT}\n"
    )
}

/// Starts rotel and waits until it listens.
pub fn start(bin: &Path, dir: &Path) -> Result<Proc> {
    let listen = addr(COLLECTOR)?;
    ensure_free(listen, "rotel")?;
    std::fs::create_dir_all(dir)?;
    let mut cmd = Command::new(bin);
    cmd.args(["start", "--otlp-grpc-endpoint", COLLECTOR])
        .args(["--otlp-http-endpoint", "127.0.20.8:4318"])
        .args(["--exporter", "blackhole"]);
    let mut proc = Proc::spawn("rotel", &mut cmd, &dir.join("rotel.log"))?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect_timeout(&listen, Duration::from_millis(200)).is_err() {
        if let Some(status) = proc.exited() {
            bail!("rotel exited ({status}): {}", proc.log_tail(20));
        }
        if Instant::now() > deadline {
            bail!("rotel did not listen on {COLLECTOR}: {}", proc.log_tail(20));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(proc)
}
