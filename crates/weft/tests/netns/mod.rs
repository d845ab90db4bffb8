//! Test support: a throwaway network namespace (`ip netns`), processes and threads that run
//! inside it, and clients that talk from inside it. Everything it starts is stopped, and the
//! namespace deleted, when the [`Netns`] is closed or dropped (also while a test panics).
//!
//! Needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) and iproute2; see [`preflight`].

#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Where `ip netns add` puts the namespace files (bind mounts) that `setns` opens.
const NETNS_DIR: &str = "/var/run/netns";

/// Checks what namespace tests need: root, and each of `tools` answering `--version`
/// (`ip` is checked with `-V`). Returns what is missing.
pub fn preflight(tools: &[&str]) -> Result<(), String> {
    let mut missing = Vec::new();
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        missing.push(format!("not root (euid {euid})"));
    }
    for tool in tools {
        let flag = if *tool == "ip" { "-V" } else { "--version" };
        match Command::new(tool)
            .arg(flag)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
        {
            Ok(s) if s.success() => {}
            Ok(s) => missing.push(format!("`{tool} {flag}` exited with {s}")),
            Err(e) => missing.push(format!("`{tool}` not found ({e})")),
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(missing.join("; "))
    }
}

/// Either fails (under CI=true: a skipped test is a failed test there) or prints a loud
/// SKIPPED line to stderr. The caller returns afterwards.
pub fn skip_or_fail(what: &str, reason: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "{what} need root and iptables, and CI=true, so they may not be skipped: {reason} \
             (run as root; scripts/test.sh installs iptables)"
        );
    }
    // Written to the stderr handle, not with eprintln!: the test harness captures (and, for a
    // passing test, hides) what the print macros write.
    let bar = "*".repeat(72);
    let _ = writeln!(
        std::io::stderr(),
        "\n{bar}\nSKIPPED: {what} need root and iptables: {reason}\n{bar}\n"
    );
}

/// Runs a command to completion; `Err` carries its stderr.
pub fn run(program: &str, args: &[&str]) -> Result<Output, String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running {program} {args:?}: {e}"))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "{program} {args:?} exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The names `ip netns list` shows.
pub fn list() -> Vec<String> {
    match run("ip", &["netns", "list"]) {
        Ok(out) => String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Moves the calling thread into the network namespace `name`. Only this thread moves:
/// sockets it creates afterwards live in the namespace.
pub fn enter(name: &str) -> Result<(), String> {
    let path = Path::new(NETNS_DIR).join(name);
    let file = File::open(&path).map_err(|e| format!("opening {}: {e}", path.display()))?;
    // SAFETY: setns on a namespace file descriptor we hold open; CLONE_NEWNET affects the
    // calling thread only.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(format!(
            "setns({}): {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// A process started inside the namespace.
pub struct NsProc {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
}

impl NsProc {
    /// The last `n` lines of its log (stdout and stderr).
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`; always reaped.
    fn stop(&mut self, grace: Duration) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: kill(2) on the pid of a child we spawned and have not reaped yet.
            unsafe {
                libc::kill(self.child.id() as i32, libc::SIGTERM);
            }
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A thread running inside the namespace, told to stop through its flag.
struct NsThread {
    name: String,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

/// A network namespace of our own, with `lo` up. Closing or dropping it stops its threads
/// and processes and deletes the namespace.
pub struct Netns {
    pub name: String,
    pub log_dir: PathBuf,
    procs: Vec<NsProc>,
    threads: Vec<NsThread>,
    closed: bool,
}

impl Netns {
    /// Creates `<prefix>-<pid>` (deleting first any `<prefix>-<pid>` namespaces left behind by
    /// test processes that no longer exist), and brings `lo` up in it.
    pub fn create(prefix: &str, log_dir: PathBuf) -> Result<Netns, String> {
        remove_stale(prefix);
        std::fs::create_dir_all(&log_dir)
            .map_err(|e| format!("creating {}: {e}", log_dir.display()))?;
        let name = format!("{prefix}-{}", std::process::id());
        if list().contains(&name) {
            // Ours from an earlier test in this same process: start clean.
            let _ = run("ip", &["netns", "del", &name]);
        }
        run("ip", &["netns", "add", &name])?;
        let ns = Netns {
            name,
            log_dir,
            procs: Vec::new(),
            threads: Vec::new(),
            closed: false,
        };
        ns.exec(&["ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Runs a command inside the namespace to completion (`ip netns exec`).
    pub fn exec(&self, cmd: &[&str]) -> Result<Output, String> {
        let mut args = vec!["netns", "exec", self.name.as_str()];
        args.extend_from_slice(cmd);
        run("ip", &args)
    }

    /// Like [`Netns::exec`], but returns the output whatever the exit status.
    pub fn exec_any(&self, cmd: &[&str]) -> Result<Output, String> {
        Command::new("ip")
            .args(["netns", "exec", self.name.as_str()])
            .args(cmd)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running ip netns exec {} {cmd:?}: {e}", self.name))
    }

    /// Starts `program args...` inside the namespace, stdout and stderr to `<log_dir>/<name>.log`.
    pub fn spawn(
        &mut self,
        name: &str,
        program: &str,
        args: &[String],
        env: &[(&str, &str)],
    ) -> Result<(), String> {
        let log = self.log_dir.join(format!("{name}.log"));
        let file =
            File::create(&log).map_err(|e| format!("creating log {}: {e}", log.display()))?;
        let out = file
            .try_clone()
            .map_err(|e| format!("cloning log {}: {e}", log.display()))?;
        // `ip netns exec` execs the program in place (same pid), so signals reach it.
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.name.as_str(), program])
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(file));
        // SAFETY: prctl is async-signal-safe; it runs in the child between fork and exec.
        // If the test process is killed outright (no Drop), the kernel kills the child too
        // (the setting survives exec; it fires when the spawning thread exits).
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| {
            format!(
                "spawning ip netns exec {} {program} {args:?}: {e}",
                self.name
            )
        })?;
        self.procs.push(NsProc {
            name: name.to_string(),
            child,
            log,
        });
        Ok(())
    }

    /// The process started as `name`.
    pub fn proc(&self, name: &str) -> Option<&NsProc> {
        self.procs.iter().find(|p| p.name == name)
    }

    /// Starts a thread inside the namespace running `f(stop)`; `f` should return soon after
    /// `stop` becomes true. Fails if the thread cannot enter the namespace.
    pub fn spawn_thread<F>(&mut self, name: &str, f: F) -> Result<(), String>
    where
        F: FnOnce(Arc<AtomicBool>) + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let ns = self.name.clone();
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let entered = enter(&ns);
                let ok = entered.is_ok();
                let _ = tx.send(entered);
                if ok {
                    f(flag);
                }
            })
            .map_err(|e| format!("spawning thread {name}: {e}"))?;
        let entered = rx
            .recv_timeout(Duration::from_secs(5))
            .map_err(|e| format!("thread {name} did not report entering the namespace: {e}"))?;
        self.threads.push(NsThread {
            name: name.to_string(),
            stop,
            handle: Some(handle),
        });
        entered
    }

    /// Runs `f` on a fresh thread inside the namespace and returns its result (a panic in `f`
    /// is re-raised here).
    pub fn within<T, F>(&self, f: F) -> T
    where
        T: Send,
        F: FnOnce() -> T + Send,
    {
        let name = self.name.as_str();
        std::thread::scope(|s| {
            let h = s.spawn(move || {
                if let Err(e) = enter(name) {
                    panic!("entering network namespace {name}: {e}");
                }
                f()
            });
            match h.join() {
                Ok(v) => v,
                Err(payload) => std::panic::resume_unwind(payload),
            }
        })
    }

    /// The last `n` lines of every process log, for failure messages.
    pub fn logs(&self, n: usize) -> String {
        let mut out = String::new();
        for p in &self.procs {
            out.push_str(&format!(
                "\n----- {} ({}) -----\n{}\n",
                p.name,
                p.log.display(),
                p.log_tail(n)
            ));
        }
        out
    }

    /// Panics (with the logs) if a process started here has exited.
    pub fn assert_running(&mut self) {
        for i in 0..self.procs.len() {
            if let Ok(Some(status)) = self.procs[i].child.try_wait() {
                let name = self.procs[i].name.clone();
                panic!("{name} exited early with {status}:{}", self.logs(40));
            }
        }
    }

    /// Stops everything and deletes the namespace; `Err` says what was left behind.
    pub fn close(mut self) -> Result<(), String> {
        self.teardown()
    }

    fn teardown(&mut self) -> Result<(), String> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        for p in self.procs.iter_mut().rev() {
            p.stop(Duration::from_secs(3));
        }
        for t in &self.threads {
            t.stop.store(true, Ordering::SeqCst);
        }
        for t in &mut self.threads {
            if let Some(h) = t.handle.take() {
                if h.join().is_err() {
                    eprintln!("netns: thread {} panicked", t.name);
                }
            }
        }
        let deleted = run("ip", &["netns", "del", &self.name]);
        if list().contains(&self.name) {
            return Err(format!(
                "network namespace {} still listed after `ip netns del` ({deleted:?})",
                self.name
            ));
        }
        deleted.map(|_| ())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            eprintln!("netns cleanup: {e}");
        }
    }
}

/// Deletes `<prefix>-<pid>` namespaces whose test process is gone (left by a killed run).
fn remove_stale(prefix: &str) {
    for name in list() {
        let Some(pid) = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('-'))
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            eprintln!("netns: deleting {name}, left behind by process {pid} which no longer runs");
            let _ = run("ip", &["netns", "del", &name]);
        }
    }
}

/// `GET http://addr/path` over HTTP/1.0 from the calling thread's namespace, with a bound on
/// every step. Returns the status and the body.
pub fn http_get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<(u16, String), String> {
    let mut s =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("write to {addr}: {e}"))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)
        .map_err(|e| format!("read from {addr}: {e}"))?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| format!("no HTTP status from {addr}: {text:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}
