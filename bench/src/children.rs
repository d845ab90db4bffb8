//! Child processes (the backend and the proxies under test) and the guarantee that every one
//! of them dies with the benchmark.
//!
//! Each child leads its own process group (so whatever it forks is stopped with it). Three
//! layers make sure it stops: [`Proc`]'s `Drop` signals the group (SIGTERM, then SIGKILL after
//! a grace period) on normal exit and on errors; a signal thread ([`install_signal_handler`])
//! does the same for every live child on Ctrl-C / SIGTERM and exits; and each child is
//! spawned with `PR_SET_PDEATHSIG` so that the kernel signals it even if the benchmark is
//! SIGKILLed.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// Pids of children that are running, for the signal thread.
static LIVE: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// How long a child gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(3);

/// A running child process whose stdout and stderr go to a log file. Dropping it kills it.
pub struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// Spawns `cmd` with stdin closed and stdout/stderr appended to `log`.
    pub fn spawn(name: &str, cmd: &mut Command, log: &Path) -> Result<Proc> {
        let out =
            File::create(log).with_context(|| format!("creating log file {}", log.display()))?;
        let err = out
            .try_clone()
            .with_context(|| format!("duplicating log file handle {}", log.display()))?;
        // Own process group, so that stopping the child also stops whatever it forked.
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        // SAFETY: the closure runs between fork and exec and only calls prctl(2), which is
        // async-signal-safe; it allocates nothing and touches no locks.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {name}: {:?}", cmd.get_program()))?;
        if let Ok(mut live) = LIVE.lock() {
            live.push(child.id());
        }
        Ok(Proc {
            name: name.to_string(),
            child,
            log: log.to_path_buf(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the child has already exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last `lines` lines of the child's output, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }

    /// Path of the child's log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let pid = self.child.id();
        if self.exited().is_none() {
            signal_group(pid, libc::SIGTERM);
            let deadline = Instant::now() + GRACE;
            while self.exited().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if self.exited().is_none() {
                eprintln!(
                    "weft-bench: {} (pid {pid}) ignored SIGTERM; killing it",
                    self.name
                );
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        // Anything the child forked and left behind in its group.
        signal_group(pid, libc::SIGKILL);
        if let Ok(mut live) = LIVE.lock() {
            live.retain(|&p| p != pid);
        }
    }
}

/// Sends `sig` to the process group led by our child `pid` (created with `process_group(0)`).
fn signal_group(pid: u32, sig: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        if pid > 0 {
            // SAFETY: kill(2) on the process group our child leads; no memory is involved.
            unsafe {
                libc::kill(-pid, sig);
            }
        }
    }
}

/// Starts a thread that, on SIGINT or SIGTERM, terminates every live child and exits 130.
pub fn install_signal_handler() -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the signal-handling runtime")?;
    let mut term = rt
        .block_on(async {
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        })
        .context("installing the SIGTERM handler")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            rt.block_on(async {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            });
            eprintln!("\nweft-bench: interrupted; stopping child processes");
            kill_all_live();
            std::process::exit(130);
        })
        .context("spawning the signal thread")?;
    Ok(())
}

fn kill_all_live() {
    let pids: Vec<u32> = LIVE.lock().map(|l| l.clone()).unwrap_or_default();
    for &pid in &pids {
        signal_group(pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + GRACE;
    let mut left: Vec<libc::pid_t> = pids
        .iter()
        .filter_map(|&p| libc::pid_t::try_from(p).ok())
        .collect();
    while !left.is_empty() && Instant::now() < deadline {
        // SAFETY: waitpid(2) with WNOHANG on our own children; status is a valid out pointer.
        left.retain(|&pid| unsafe {
            let mut status = 0;
            libc::waitpid(pid, &mut status, libc::WNOHANG) == 0
        });
        std::thread::sleep(Duration::from_millis(20));
    }
    for &pid in &pids {
        signal_group(pid, libc::SIGKILL);
    }
}

/// The last `lines` lines of a file (reading at most its last 64 KiB).
pub fn tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut buf = Vec::new();
    if file.read_to_end(&mut buf).is_err() {
        return format!("(could not read {})", path.display());
    }
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    if all.is_empty() {
        return "(empty)".to_string();
    }
    all[start..].join("\n")
}
