//! Starting one setup: its proxies (as [`Proc`] guards, killed when the [`Running`] value is
//! dropped), where the load generator sends requests and which request, and which
//! processes to measure.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::children::Proc;
use crate::cli::{Plan, SetupKind};
use crate::peers::weft::Source::{Control, Static};
use crate::peers::{self, authz, envoy, envoy_mtls, nginx, otel, weft};
use crate::procstat::Tracked;
use crate::request::RequestShape;

/// A setup that is up and answering through its entry point.
pub struct Running {
    pub kind: SetupKind,
    /// Where the load generator connects.
    pub target: SocketAddr,
    /// What it sends.
    pub request: RequestShape,
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
        SetupKind::Envoy | SetupKind::Envoy2Mtls => {
            envoy::binary(plan.envoy.as_deref(), &plan.workspace)
        }
        SetupKind::Nginx => nginx::binary(plan.nginx.as_deref()),
        SetupKind::Weft1
        | SetupKind::Weft2
        | SetupKind::Weft2Mtls
        | SetupKind::Weft2Jwt
        | SetupKind::Weft2Authz => weft::binary(&plan.weft),
        SetupKind::Weft2Trace => {
            weft::binary(&plan.weft).and_then(|_| otel::binary(&plan.workspace))
        }
    };
    found.err()
}

/// Starts `kind` with its scratch files under `plan.work_dir/<setup>/`.
pub fn start(kind: SetupKind, plan: &Plan) -> Result<Started> {
    let dir = plan.work_dir.join(kind.name());
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let running = |target: &str, request, procs: Vec<Proc>, names: &[&str]| -> Result<Started> {
        let tracked = procs
            .iter()
            .zip(names)
            .map(|(p, name)| Tracked::tree(name, p.pid()))
            .collect();
        Ok(Started::Running(Running {
            kind,
            target: peers::addr(target)?,
            request,
            tracked,
            procs,
        }))
    };
    let plain = RequestShape::plain;
    match kind {
        SetupKind::Direct => running(peers::BACKEND, plain(peers::BACKEND), Vec::new(), &[]),
        SetupKind::Envoy | SetupKind::Envoy2Mtls => {
            let bin = match envoy::binary(plan.envoy.as_deref(), &plan.workspace) {
                Ok(bin) => bin,
                Err(missing) => return Ok(Started::Skipped(missing.to_string())),
            };
            if kind == SetupKind::Envoy {
                let proc = envoy::start(&bin, &dir)?;
                return running(peers::ENVOY_LISTEN, plain("bench"), vec![proc], &["envoy"]);
            }
            let procs = envoy_mtls::start(&bin, &dir)?;
            let names = &["envoy A", "envoy B"];
            running(envoy_mtls::A_LISTEN, plain("bench"), procs, names)
        }
        SetupKind::Nginx => {
            let bin = match nginx::binary(plan.nginx.as_deref()) {
                Ok(bin) => bin,
                Err(missing) => return Ok(Started::Skipped(missing.to_string())),
            };
            let proc = nginx::start_proxy(&bin, &dir)?;
            running(peers::NGINX_LISTEN, plain("bench"), vec![proc], &["nginx"])
        }
        SetupKind::Weft1
        | SetupKind::Weft2
        | SetupKind::Weft2Mtls
        | SetupKind::Weft2Jwt
        | SetupKind::Weft2Authz
        | SetupKind::Weft2Trace => {
            let bin = match weft::binary(&plan.weft) {
                Ok(bin) => bin,
                Err(missing) => return Ok(Started::Skipped(missing.to_string())),
            };
            const HOP: &[&str] = &["weft A", "weft B"];
            let (procs, request, names) = match kind {
                SetupKind::Weft1 => (start_weft1(&bin, &dir)?, plain(weft::HOST), &["weft"][..]),
                SetupKind::Weft2 => (start_weft2(&bin, &dir)?, plain(weft::HOST), HOP),
                SetupKind::Weft2Mtls => {
                    let request = plain(weft::HOST);
                    (start_weft2_mtls(&bin, &dir, None, &request)?, request, HOP)
                }
                SetupKind::Weft2Jwt => {
                    let lifetime =
                        authz::token_lifetime(plan.rates.len(), plan.warmup, plan.duration);
                    let request = authz::make(weft::HOST, lifetime)?.request;
                    (start_weft2_mtls(&bin, &dir, None, &request)?, request, HOP)
                }
                SetupKind::Weft2Trace => {
                    let rotel = match otel::binary(&plan.workspace) {
                        Ok(rotel) => rotel,
                        Err(missing) => return Ok(Started::Skipped(missing.to_string())),
                    };
                    let collector = otel::start(&rotel, &dir)?;
                    let request = plain(weft::HOST);
                    let config = otel::mesh_config();
                    let mut procs = start_weft2_mtls(&bin, &dir, Some(&config), &request)?;
                    procs.push(collector);
                    (procs, request, HOP)
                }
                _ => {
                    let (procs, request) = start_weft2_authz(&bin, &dir, plan)?;
                    (procs, request, HOP)
                }
            };
            running(weft::CLIENT.outbound, request, procs, names)
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
/// [A, B, control] (only A and B are measured). `policy`, when given, is written into the
/// control plane's config directory beside the mesh; the probe sends `request`.
fn start_weft2_mtls(
    bin: &Path,
    dir: &Path,
    policy: Option<&str>,
    request: &RequestShape,
) -> Result<Vec<Proc>> {
    let config = weft::write_config(dir, true, true)?;
    if let Some(yaml) = policy {
        let path = config.join("policy.yaml");
        std::fs::write(&path, yaml).with_context(|| format!("writing {}", path.display()))?;
    }
    let (control, state) = weft::start_control(bin, &config, dir)?;
    let b = weft::start_proxy(bin, &Control(&state), &weft::BACKEND, dir)?;
    let mut a = weft::start_proxy(bin, &Control(&state), &weft::CLIENT, dir)?;
    weft::probe_with(&mut a, &weft::CLIENT, request, &[&b, &control])?;
    Ok(vec![a, b, control])
}

/// weft-2-mtls with weft-2-authz's policy on proxy B and a token valid for the whole
/// measurement; fails unless B refuses the request without a valid token.
fn start_weft2_authz(bin: &Path, dir: &Path, plan: &Plan) -> Result<(Vec<Proc>, RequestShape)> {
    let lifetime = authz::token_lifetime(plan.rates.len(), plan.warmup, plan.duration);
    let policy = authz::make(weft::HOST, lifetime)?;
    let procs = start_weft2_mtls(bin, dir, Some(&policy.yaml), &policy.request)?;
    let config = dir.join("config");
    authz::check_enforced(peers::addr(weft::CLIENT.outbound)?, &policy.request)
        .with_context(|| format!("checking proxy B's policy ({})", config.display()))?;
    Ok((procs, policy.request))
}
