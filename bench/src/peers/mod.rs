//! The programs the benchmark runs: the nginx backend and the proxies under test (Weft, Envoy,
//! nginx). Each submodule finds its binary (saying how to install it when it is missing),
//! writes its configuration into a scratch directory and starts it as a [`Proc`].
//!
//! This module holds what they share: loopback addresses, a blocking HTTP probe and
//! readiness polling.

pub mod authz;
pub mod certs;
pub mod envoy;
pub mod envoy_mtls;
pub mod jwt;
pub mod nginx;
pub mod otel;
pub mod weft;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::children::Proc;
use crate::request::RequestShape;

/// The backend nginx (`return 200 "ok"`).
pub const BACKEND: &str = "127.0.20.1:8080";
/// Envoy's listener and admin.
pub const ENVOY_LISTEN: &str = "127.0.21.1:8080";
pub const ENVOY_ADMIN: &str = "127.0.21.1:9901";
/// The nginx under test.
pub const NGINX_LISTEN: &str = "127.0.22.1:8080";

/// Parses one of the address constants (or any `ip:port`).
pub fn addr(s: &str) -> Result<SocketAddr> {
    s.parse()
        .with_context(|| format!("invalid socket address {s:?}"))
}

/// A binary we need, where we looked, and how to install it if it is missing.
pub struct Missing {
    pub what: &'static str,
    pub looked: String,
    pub install: String,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} not found (looked at {}).\n    install it with: {}",
            self.what, self.looked, self.install
        )
    }
}

/// Finds an executable named `name` on `$PATH` or in the sbin directories root has.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Fails if something already accepts connections on `addr` (another benchmark run, or a
/// peer left over from one): we would otherwise measure someone else's process.
pub fn ensure_free(addr: SocketAddr, what: &str) -> Result<()> {
    if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
        bail!(
            "{addr} (for {what}) is already in use by another process: another weft-bench run \
             or a leftover peer? Find it with `ss -ltnp | grep {}` and stop it",
            addr.port()
        );
    }
    Ok(())
}

/// Sends `req` and returns the response status code (read from the status line only).
pub fn send(addr: SocketAddr, req: &RequestShape, timeout: Duration) -> Result<u16> {
    let path = &req.path;
    let mut stream = connect(addr, req, timeout)?;
    let mut head = [0u8; 64];
    let mut got = 0;
    while got < 12 {
        let n = stream
            .read(&mut head[got..])
            .with_context(|| format!("reading the response to GET {path} from {addr}"))?;
        if n == 0 {
            bail!("{addr} closed the connection without a response to GET {path}");
        }
        got += n;
    }
    status_code(addr, path, &head[..got])
}

/// Sends `GET path` and returns the status code and the body (the whole response is read,
/// up to 1 MiB): for the admin pages whose content a setup checks.
pub fn http_get_text(addr: SocketAddr, path: &str, timeout: Duration) -> Result<(u16, String)> {
    let req = RequestShape {
        path: path.to_string(),
        ..RequestShape::plain(&addr.to_string())
    };
    let stream = connect(addr, &req, timeout)?;
    let mut all = Vec::new();
    stream
        .take(1 << 20)
        .read_to_end(&mut all)
        .with_context(|| format!("reading the response to GET {path} from {addr}"))?;
    let code = status_code(addr, path, &all)?;
    let text = String::from_utf8_lossy(&all);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok((code, body.to_string()))
}

/// Connects with timeouts set and sends the request head.
fn connect(addr: SocketAddr, req: &RequestShape, timeout: Duration) -> Result<TcpStream> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("connecting to {addr}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .context("setting socket timeouts")?;
    stream
        .write_all(req.head_closing().as_bytes())
        .with_context(|| format!("sending GET {} to {addr}", req.path))?;
    Ok(stream)
}

fn status_code(addr: SocketAddr, path: &str, head: &[u8]) -> Result<u16> {
    let line = String::from_utf8_lossy(&head[..head.len().min(64)]);
    line.get(9..12)
        .and_then(|code| code.parse().ok())
        .filter(|_| line.starts_with("HTTP/1."))
        .ok_or_else(|| anyhow!("{addr} answered GET {path} with {line:?}, not HTTP/1.x"))
}

/// Polls `GET path` on `addr` until it returns 200, the process exits, or `timeout` passes.
/// Errors include the tail of the process's log.
pub fn wait_ready(
    proc: &mut Proc,
    addr: SocketAddr,
    path: &str,
    host: &str,
    timeout: Duration,
) -> Result<()> {
    let req = RequestShape {
        path: path.to_string(),
        ..RequestShape::plain(host)
    };
    wait_ready_for(proc, addr, &req, timeout)
}

/// Polls with `req` until it returns 200, like [`wait_ready`].
pub fn wait_ready_for(
    proc: &mut Proc,
    addr: SocketAddr,
    req: &RequestShape,
    timeout: Duration,
) -> Result<()> {
    let path = &req.path;
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = proc.exited() {
            bail!(
                "{} exited ({status}) before becoming ready; last lines of {}:\n{}",
                proc.name(),
                proc.log_path().display(),
                proc.log_tail(20)
            );
        }
        let last = match send(addr, req, Duration::from_millis(500)) {
            Ok(200) => return Ok(()),
            Ok(code) => format!("GET http://{addr}{path} returned {code}"),
            Err(e) => format!("{e:#}"),
        };
        if Instant::now() >= deadline {
            bail!(
                "{} not ready within {:?} ({last}); last lines of {}:\n{}",
                proc.name(),
                timeout,
                proc.log_path().display(),
                proc.log_tail(20)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
