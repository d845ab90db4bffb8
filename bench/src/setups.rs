//! Starting one setup: its proxies (as [`Proc`] guards, killed when the [`Running`] value is
//! dropped), where the load generator sends requests and with which `Host`, and which
//! processes to measure.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::children::Proc;
use crate::cli::{Plan, SetupKind};
use crate::peers::weft::Source::{Control, Static};
use crate::peers::{self, envoy, nginx, weft};
use crate::procstat::Tracked;

/// A setup that is up and answering through its entry point.
pub struct Running {
    pub kind: SetupKind,
    /// Where the load generator connects.
    pub target: SocketAddr,
    /// The `Host` header it sends.
    pub host: String,
    /// The proxies' process trees, measured for RSS and CPU.
    pub tracked: Vec<Tracked>,
    /// Guards: dropping them stops the proxies.
    procs: Vec<Proc>,
}

/// The result of trying to start a setup.
pub enum Started {
    Running(Running),
    /// A binary is missing; the message says how to install it.
    Skipped(String),
}

impl Running {
    /// Fails if any proxy of the setup has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        for p in &mut self.procs {
            if let Some(status) = p.exited() {
                bail!(
                    "{} exited ({status}) during the run; last lines of {}:\n{}",
                    p.name(),
                    p.log_path().display(),
                    p.log_tail(20)
                );
            }
        }
        Ok(())
    }
}

/// The binary `kind` needs and cannot find, if any (with how to install it).
pub fn missing(kind: SetupKind, plan: &Plan) -> Option<peers::Missing> {
    let found = match kind {
        SetupKind::Direct => return None,
        SetupKind::Envoy => envoy::binary(plan.envoy.as_deref(), &plan.workspace),
        SetupKind::Nginx => nginx::binary(plan.nginx.as_deref()),
        SetupKind::Weft1 | SetupKind::Weft2 | SetupKind::Weft2Mtls => weft::binary(&plan.weft),
    };
    found.err()
}

/// Starts `kind` with its scratch files under `plan.work_dir/<setup>/`.
pub fn start(kind: SetupKind, plan: &Plan) -> Result<Started> {
    let dir = plan.work_dir.join(kind.name());
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let running = |target: &str, host: &str, procs: Vec<Proc>, names: &[&str]| -> Result<Started> {
        let tracked = procs
            .iter()
            .zip(names)
            .map(|(p, name)| Tracked::tree(name, p.pid()))
            .collect();
        Ok(Started::Running(Running {
            kind,
            target: peers::addr(target)?,
            host: host.to_string(),
            tracked,
            procs,
        }))
    };
    match kind {
        SetupKind::Direct => running(peers::BACKEND, peers::BACKEND, Vec::new(), &[]),
        SetupKind::Envoy => {
            let bin = match envoy::binary(plan.envoy.as_deref(), &plan.workspace) {
                Ok(bin) => bin,
                Err(missing) => return Ok(Started::Skipped(missing.to_string())),
            };
            let proc = envoy::start(&bin, &dir)?;
            running(peers::ENVOY_LISTEN, "bench", vec![proc], &["envoy"])
        }
        SetupKind::Nginx => {
            let bin = match nginx::binary(plan.nginx.as_deref()) {
                Ok(bin) => bin,
                Err(missing) => return Ok(Started::Skipped(missing.to_string())),
            };
            let proc = nginx::start_proxy(&bin, &dir)?;
            running(peers::NGINX_LISTEN, "bench", vec![proc], &["nginx"])
        }
        SetupKind::Weft1 | SetupKind::Weft2 | SetupKind::Weft2Mtls => {
            let bin = match weft::binary(&plan.weft) {
                Ok(bin) => bin,
                Err(missing) => return Ok(Started::Skipped(missing.to_string())),
            };
            let (procs, names): (_, &[&str]) = match kind {
                SetupKind::Weft1 => (start_weft1(&bin, &dir)?, &["weft"]),
                SetupKind::Weft2 => (start_weft2(&bin, &dir)?, &["weft A", "weft B"]),
                _ => (start_weft2_mtls(&bin, &dir)?, &["weft A", "weft B"]),
            };
            running(weft::CLIENT.outbound, weft::HOST, procs, names)
        }
    }
}

/// One proxy; the backend WorkloadEntry says it has no proxy of its own.
fn start_weft1(bin: &Path, dir: &Path) -> Result<Vec<Proc>> {
    let config = weft::write_config(dir, false, false)?;
    let mut a = weft::start_proxy(bin, &Static(&config), &weft::CLIENT, dir)?;
    weft::probe(&mut a, &weft::CLIENT, &[])?;
    Ok(vec![a])
}

/// Proxy B (the backend's) first, then proxy A (the client's); returned as [A, B].
fn start_weft2(bin: &Path, dir: &Path) -> Result<Vec<Proc>> {
    let config = weft::write_config(dir, true, false)?;
    let b = weft::start_proxy(bin, &Static(&config), &weft::BACKEND, dir)?;
    let mut a = weft::start_proxy(bin, &Static(&config), &weft::CLIENT, dir)?;
    weft::probe(&mut a, &weft::CLIENT, &[&b])?;
    Ok(vec![a, b])
}

/// The control plane, then proxy B and proxy A with certificates from it; returned as
/// [A, B, control] (only A and B are measured).
fn start_weft2_mtls(bin: &Path, dir: &Path) -> Result<Vec<Proc>> {
    let config = weft::write_config(dir, true, true)?;
    let (control, state) = weft::start_control(bin, &config, dir)?;
    let b = weft::start_proxy(bin, &Control(&state), &weft::BACKEND, dir)?;
    let mut a = weft::start_proxy(bin, &Control(&state), &weft::CLIENT, dir)?;
    weft::probe(&mut a, &weft::CLIENT, &[&b, &control])?;
    Ok(vec![a, b, control])
}
