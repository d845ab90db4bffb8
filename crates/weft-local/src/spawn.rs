//! Starting processes inside a workload's namespace.
//!
//! - The proxy enters the namespace with `setns(2)` and drops to its own uid (the capture
//!   rules exempt that uid, so the proxy's own connections are not captured again).
//! - The application goes through `ip netns exec`, which also mounts the namespace's
//!   `/etc/netns/<ns>/hosts` over `/etc/hosts`, so Service names resolve.
//!
//! Both get a parent-death signal: if the runner dies (even by SIGKILL), the kernel stops
//! them, and the next `weft run` or `weft run --cleanup` removes what is left. Each gets a
//! process group of its own, so a Ctrl-C in the terminal reaches the runner only, which then
//! stops the application first and the proxy last.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Stdio;

use tokio::process::{Child, Command};

/// Where a child's output goes.
pub enum Output {
    Inherit,
    File(File),
    /// Pipes, read by [`forward_lines`].
    Piped,
}

impl Output {
    fn stdio(&self) -> std::io::Result<(Stdio, Stdio)> {
        match self {
            Output::Inherit => Ok((Stdio::inherit(), Stdio::inherit())),
            Output::File(f) => Ok((f.try_clone()?.into(), f.try_clone()?.into())),
            Output::Piped => Ok((Stdio::piped(), Stdio::piped())),
        }
    }
}

/// Starts `exe args...` in namespace `netns` as `uid`/`gid` `uid`.
pub fn proxy(
    netns: &str,
    exe: &Path,
    args: &[String],
    env: &[(String, String)],
    uid: u32,
    output: &Output,
) -> std::io::Result<Child> {
    let ns = File::open(Path::new("/run/netns").join(netns))?;
    let ns_fd = ns.as_raw_fd();
    let parent = std::process::id();
    let mut cmd = supervised(exe, output)?;
    // A clean environment: the runner's own WEFT_* variables (a WEFT_JOIN_TOKEN_FILE, say)
    // must not change the proxy; only its log settings pass through.
    cmd.env_clear();
    for keep in ["WEFT_LOG", "WEFT_LOG_FORMAT"] {
        if let Some(v) = std::env::var_os(keep) {
            cmd.env(keep, v);
        }
    }
    cmd.args(args).envs(env.iter().map(|(k, v)| (k, v)));
    // SAFETY: only async-signal-safe system calls run between fork and exec. The namespace
    // file stays open (`ns` lives until `spawn` returns) while the child uses its descriptor.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(ns_fd, libc::CLONE_NEWNET) != 0
                || libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(uid) != 0
                || libc::setuid(uid) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            // Set after the uid change, which clears it.
            die_with_parent(libc::SIGKILL, parent)
        });
    }
    let child = cmd.spawn();
    drop(ns);
    child
}

/// Starts the application through `ip netns exec`.
pub fn app(
    netns: &str,
    command: &[String],
    env: &[(String, String)],
    output: &Output,
) -> std::io::Result<Child> {
    let mut cmd = supervised(Path::new("ip"), output)?;
    cmd.args(["netns", "exec", netns])
        .args(command)
        .envs(env.iter().map(|(k, v)| (k, v)));
    terminated_with_parent(&mut cmd);
    cmd.spawn()
}

/// Asks the kernel to send `signal` when the parent dies, then checks it has not already.
fn die_with_parent(signal: i32, parent: u32) -> std::io::Result<()> {
    // SAFETY: prctl(PR_SET_PDEATHSIG) and getppid(2) take no pointers.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::getppid() as u32 != parent {
            // No allocation between fork and exec: an OS error code, not a message.
            return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
        }
    }
    Ok(())
}

/// Sends `signal` to a child's process group.
pub fn signal_group(child: &Child, signal: i32) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) on the group this runner created for its child.
        unsafe { libc::kill(-(pid as i32), signal) };
    }
}

/// Prints each line a piped child writes, prefixed with `[prefix]` (stdout to stdout, stderr
/// to stderr), until the child closes them.
pub fn forward_lines(child: &mut Child, prefix: &str) {
    if let Some(out) = child.stdout.take() {
        tokio::spawn(print_lines(out, format!("[{prefix}]"), false));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(print_lines(err, format!("[{prefix}]"), true));
    }
}

async fn print_lines(pipe: impl tokio::io::AsyncRead + Unpin, prefix: String, to_stderr: bool) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut lines = BufReader::new(pipe).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if to_stderr {
            eprintln!("{prefix} {line}");
        } else {
            println!("{prefix} {line}");
        }
    }
}

/// Starts `exe args...` on the host (the control plane of `weft up`), stopped by the kernel
/// if the runner dies.
pub fn host(exe: &Path, args: &[String], output: &Output) -> std::io::Result<Child> {
    let mut cmd = supervised(exe, output)?;
    cmd.args(args);
    terminated_with_parent(&mut cmd);
    cmd.spawn()
}

/// A command as the runner starts every child: no stdin, output where `output` says, a
/// process group of its own, killed if its handle is dropped.
fn supervised(program: &Path, output: &Output) -> std::io::Result<Command> {
    let (stdout, stderr) = output.stdio()?;
    let mut cmd = Command::new(program);
    cmd.stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0)
        .kill_on_drop(true);
    Ok(cmd)
}

/// The child gets SIGTERM when the runner dies.
fn terminated_with_parent(cmd: &mut Command) {
    let parent = std::process::id();
    // SAFETY: prctl and getppid are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || die_with_parent(libc::SIGTERM, parent));
    }
}
