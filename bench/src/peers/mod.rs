//! The programs the benchmark runs: the nginx backend and the proxies under test (Weft, Envoy,
//! nginx). Each submodule finds its binary (saying how to install it when it is missing),
//! writes its configuration into a scratch directory and starts it as a [`Proc`].
//!
//! This module holds what they share: loopback addresses, a blocking HTTP probe and
//! readiness polling.

pub mod envoy;
pub mod nginx;
pub mod weft;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::children::Proc;

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

/// Sends `GET path` with the given `Host` and returns the response status code.
pub fn http_get(addr: SocketAddr, path: &str, host: &str, timeout: Duration) -> Result<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("connecting to {addr}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .context("setting socket timeouts")?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(req.as_bytes())
        .with_context(|| format!("sending GET {path} to {addr}"))?;
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
    let line = String::from_utf8_lossy(&head[..got]);
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
        let last = match http_get(addr, path, host, Duration::from_millis(500)) {
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
