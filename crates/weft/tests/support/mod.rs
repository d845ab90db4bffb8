//! Test support: running `weft` processes on loopback (killed when dropped), and clients
//! that talk to a proxy the way applications do (explicit HTTP proxy requests, gRPC).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

pub const WEFT: &str = env!("CARGO_BIN_EXE_weft");

/// A child process killed (SIGTERM, then SIGKILL) when dropped.
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub log: std::path::PathBuf,
}

impl Proc {
    pub fn spawn(name: &str, args: &[String], log_dir: &Path) -> Proc {
        let log = log_dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let out = file.try_clone().expect("log file");
        let child = Command::new(WEFT)
            .args(args)
            .env("WEFT_LOG", "info")
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {WEFT} {args:?}: {e}"));
        Proc {
            name: name.to_string(),
            child,
            log,
        }
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(&mut self, wait: Duration) -> Option<std::process::ExitStatus> {
        // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Waits until `GET http://admin/ready` answers 200.
/// `weft proxy` arguments for `workload` at `ip` (outbound :4140, inbound :4143, admin
/// :4191), configured by the control plane replica(s) `control` (comma-separated), trusting
/// the bundle `ca`, joining with `token`.
pub fn proxy_args(ip: &str, control: &str, ca: &Path, workload: &str, token: &str) -> Vec<String> {
    [
        "proxy",
        "--control",
        control,
        "--control-ca",
        &ca.display().to_string(),
        "--workload",
        workload,
        "--join-token",
        token,
        "--outbound-addr",
        &format!("{ip}:4140"),
        "--inbound-addr",
        &format!("{ip}:4143"),
        "--admin-addr",
        &format!("{ip}:4191"),
        "--app-ip",
        ip,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

pub async fn wait_ready(admin: SocketAddr, proc: &mut Proc) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = proc.child.try_wait() {
            panic!(
                "{} exited with {status} before it was ready:\n{}",
                proc.name,
                proc.log_tail()
            );
        }
        if let Ok((200, _)) = admin_get(admin, "/ready").await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} not ready within 15s:\n{}", proc.name, proc.log_tail());
}

/// Waits until something accepts connections at `addr`.
pub async fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    panic!("nothing listening at {addr} within 15s");
}

/// The admin token static-mode test proxies accept (`--admin-token-file`).
pub const TEST_ADMIN_TOKEN: &str = "weft-test-admin-token-0123456789abcdef";

/// Writes [`TEST_ADMIN_TOKEN`] into `dir` and returns the `--admin-token-file` arguments.
pub fn admin_token_args(dir: &std::path::Path) -> [String; 2] {
    let path = dir.join("admin-token");
    std::fs::write(&path, TEST_ADMIN_TOKEN).expect("write the admin token");
    ["--admin-token-file".into(), path.display().to_string()]
}

pub async fn admin_get(admin: SocketAddr, path: &str) -> Result<(u16, String), String> {
    admin_get_as(admin, path, None).await
}

/// `GET path` on an admin endpoint with `Authorization: Bearer <token>` when given.
pub async fn admin_get_as(
    admin: SocketAddr,
    path: &str,
    token: Option<&str>,
) -> Result<(u16, String), String> {
    let mut req = Request::get(path).header("host", "admin");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = send(
        admin,
        req.body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?,
        false,
    )
    .await?;
    Ok((
        resp.status.as_u16(),
        String::from_utf8_lossy(&resp.body).into_owned(),
    ))
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub trailers: Option<HeaderMap>,
}

/// Sends one request on a fresh connection to `addr` (HTTP/1.1, or HTTP/2 prior knowledge),
/// with a 10 s bound.
pub async fn send(addr: SocketAddr, req: Request<Full<Bytes>>, h2: bool) -> Result<Answer, String> {
    tokio::time::timeout(Duration::from_secs(10), async {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let io = TokioIo::new(stream);
        let resp = if h2 {
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .map_err(|e| format!("h2 handshake: {e}"))?;
            tokio::spawn(conn);
            sender
                .send_request(req)
                .await
                .map_err(|e| format!("h2 request: {e}"))?
        } else {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(|e| format!("handshake: {e}"))?;
            tokio::spawn(conn);
            sender
                .send_request(req)
                .await
                .map_err(|e| format!("request: {e}"))?
        };
        let (parts, body) = resp.into_parts();
        let collected = body.collect().await.map_err(|e| format!("body: {e}"))?;
        let trailers = collected.trailers().cloned();
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body: collected.to_bytes(),
            trailers,
        })
    })
    .await
    .map_err(|_| format!("request to {addr} timed out"))?
}

/// How a test client reaches the mesh.
#[derive(Clone, Debug)]
pub enum Via {
    /// Connect to this address from the test process (a proxy's outbound port, as an
    /// explicit proxy: requests carry absolute-form URIs).
    Proxy(SocketAddr),
    /// Connect to this address from inside network namespace `netns`, where capture rules
    /// send it through the namespace's proxy (requests are origin-form, as applications send
    /// them).
    Captured { netns: String, addr: SocketAddr },
}

impl Via {
    /// Whether requests should carry absolute-form URIs.
    pub fn absolute_form(&self) -> bool {
        matches!(self, Via::Proxy(_))
    }
}

/// [`send`] the way `via` says: from a fresh thread inside the namespace for
/// [`Via::Captured`] (only that thread enters it), so its socket is the namespace's.
pub async fn send_via(via: &Via, req: Request<Full<Bytes>>, h2: bool) -> Result<Answer, String> {
    match via {
        Via::Proxy(addr) => send(*addr, req, h2).await,
        Via::Captured { netns, addr } => {
            let (netns, addr) = (netns.clone(), *addr);
            let (tx, rx) = tokio::sync::oneshot::channel();
            std::thread::spawn(move || {
                let result = enter_netns(&netns).and_then(|()| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| e.to_string())?
                        .block_on(send(addr, req, h2))
                });
                let _ = tx.send(result);
            });
            rx.await
                .map_err(|_| "the namespace thread died".to_string())?
        }
    }
}

/// Moves the calling thread into network namespace `name`.
fn enter_netns(name: &str) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    let path = std::path::Path::new("/var/run/netns").join(name);
    let file =
        std::fs::File::open(&path).map_err(|e| format!("opening {}: {e}", path.display()))?;
    // SAFETY: setns on a namespace file descriptor we hold open; CLONE_NEWNET moves the
    // calling thread only.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(format!(
            "setns {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// A gRPC Echo call through `proxy` to `authority`; returns the echo response and the
/// gRPC status.
pub async fn grpc_echo(
    proxy: SocketAddr,
    authority: &str,
    headers: &[(&str, &str)],
) -> Result<(Option<weft_echo::grpc::EchoResponse>, u32), String> {
    grpc_echo_via(&Via::Proxy(proxy), authority, headers).await
}

/// [`grpc_echo`] the way `via` says.
pub async fn grpc_echo_via(
    via: &Via,
    authority: &str,
    headers: &[(&str, &str)],
) -> Result<(Option<weft_echo::grpc::EchoResponse>, u32), String> {
    let body =
        weft_echo::grpc::encode(&weft_echo::grpc::EchoRequest {}).map_err(|e| e.to_string())?;
    let mut req = Request::post(format!("http://{authority}{}", weft_echo::grpc::ECHO_PATH))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(body)).map_err(|e| e.to_string())?;
    let answer = send_via(via, req, true).await?;
    let status_of = |h: &HeaderMap| {
        h.get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u32>().ok())
    };
    let status = answer
        .trailers
        .as_ref()
        .and_then(status_of)
        .or_else(|| status_of(&answer.headers))
        .ok_or_else(|| {
            format!(
                "no grpc-status (HTTP {}, headers {:?})",
                answer.status, answer.headers
            )
        })?;
    if answer.body.is_empty() {
        return Ok((None, status));
    }
    let msg = weft_echo::grpc::decode::<weft_echo::grpc::EchoResponse>(&answer.body)
        .map_err(|e| e.to_string())?;
    Ok((Some(msg), status))
}

/// A child of `parent` whose command (`comm`) and command line (NUL-separated) satisfy
/// `wanted`, by scanning /proc.
pub fn child_of(parent: u32, wanted: impl Fn(&str, &str) -> bool) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (comm) state ppid ...`; comm may hold spaces, so split after its ')'.
            let (head, rest) = stat.rsplit_once(") ")?;
            let comm = head.split_once(" (")?.1;
            let ppid: u32 = rest.split_whitespace().nth(1)?.parse().ok()?;
            if ppid != parent {
                return None;
            }
            let cmdline =
                std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            wanted(comm, &cmdline).then_some(pid)
        })
}
