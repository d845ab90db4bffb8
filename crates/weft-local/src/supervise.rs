//! While the application runs: waiting for the proxy to be ready, renewing the registration,
//! keeping the hosts file current, and stopping children in the right order.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Child;

use crate::control_client::Registration;
use crate::lease::{self, LEASE_TTL};
use crate::network::HostNet;
use crate::spawn::signal_group;
use crate::spec::RunSpec;

/// How often the hosts file is refreshed from the control plane.
const HOSTS_REFRESH: Duration = Duration::from_secs(2);
/// How long the application has to exit after SIGTERM before it is killed.
const APP_GRACE: Duration = Duration::from_secs(10);

/// Polls the proxy's `/ready` until it answers 200, the proxy exits, or `timeout` passes.
pub async fn wait_ready(
    admin: SocketAddr,
    proxy: &mut Child,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no answer yet");
    while Instant::now() < deadline {
        if let Ok(Some(status)) = proxy.try_wait() {
            return Err(format!("exited before it was ready ({status})"));
        }
        match get_status(admin, "/ready").await {
            Ok(200) => return Ok(()),
            Ok(code) => last = format!("/ready answered {code}"),
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("was not ready within {timeout:?} ({last})"))
}

/// One `GET` on the proxy's admin port: the status code.
async fn get_status(addr: SocketAddr, path: &str) -> Result<u16, String> {
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut head = [0u8; 64];
        let n = s.read(&mut head).await.map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&head[..n]);
        text.split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("unexpected answer {text:?}"))
    };
    tokio::time::timeout(Duration::from_secs(1), exchange)
        .await
        .map_err(|_| "no answer within 1s".to_string())?
}

pub enum Ended {
    App { code: i32, stopped: bool },
    ProxyDied(std::process::ExitStatus),
}

/// Runs until the application exits; `shutdown` stops it (SIGTERM, then SIGKILL after a
/// grace period). Renews the registration and refreshes the hosts file meanwhile.
pub async fn supervise(
    spec: &RunSpec,
    registration: &Registration,
    mut app: Child,
    proxy: &mut Child,
    shutdown: impl Future<Output = ()>,
) -> Ended {
    let ns = HostNet::netns_name(&spec.name);
    let mut renew = tokio::time::interval(LEASE_TTL / 3);
    let mut hosts = tokio::time::interval(HOSTS_REFRESH);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    hosts.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            status = app.wait() => {
                return Ended::App { code: exit_code(status), stopped: false };
            }
            () = &mut shutdown => {
                // As Kubernetes does: out of the mesh first, then the application is told.
                lease::deregister(spec, &registration.owner).await;
                let code = stop(&mut app, APP_GRACE).await;
                return Ended::App { code, stopped: true };
            }
            status = proxy.wait() => {
                tracing::error!(workload = %spec.name, "the proxy exited while the application ran; stopping the application");
                stop(&mut app, APP_GRACE).await;
                return match status {
                    Ok(s) => Ended::ProxyDied(s),
                    Err(_) => Ended::App { code: 1, stopped: true },
                };
            }
            _ = renew.tick() => {
                if let Err(e) = spec.control.register(&spec.namespace, &spec.name, registration, false).await {
                    tracing::warn!(workload = %spec.name, error = %e, "cannot renew the registration; retrying");
                }
            }
            _ = hosts.tick() => {
                match spec.control.hosts(&spec.namespace).await {
                    Ok(text) => if let Err(e) = crate::hosts::write(&ns, &text) {
                        tracing::warn!(error = %e, "cannot update the hosts file");
                    },
                    Err(e) => tracing::debug!(error = %e, "cannot refresh the hosts file"),
                }
            }
        }
    }
}

/// SIGTERM to the child's group, SIGKILL after `grace`; returns its exit code.
pub async fn stop(child: &mut Child, grace: Duration) -> i32 {
    if let Ok(Some(status)) = child.try_wait() {
        return exit_code(Ok(status));
    }
    signal_group(child, libc::SIGTERM);
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => exit_code(status),
        Err(_) => {
            tracing::warn!(grace = ?grace, "a child did not exit after SIGTERM; killing it");
            signal_group(child, libc::SIGKILL);
            exit_code(child.wait().await)
        }
    }
}

fn exit_code(status: std::io::Result<std::process::ExitStatus>) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) => s
            .code()
            .or_else(|| s.signal().map(|sig| 128 + sig))
            .unwrap_or(1),
        Err(_) => 1,
    }
}

/// The last `n` lines of a log file.
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
