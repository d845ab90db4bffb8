//! Keeping a host process alive: `weft up`'s control plane is started again when it dies.
//!
//! Traffic never waits for the control plane (proxies keep their last configuration), but
//! while it is down no workload can join and no certificate is renewed. So a control plane
//! that exits without being told to is started again with the same arguments, and so the same
//! state (its state directory holds the CA, the tokens and the admin token; workloads register
//! again at their next renewal and proxies reconnect on their own), after a wait that grows
//! with each failure in a row and is jittered, with a log line each time. A process that ran
//! for [`STABLE`] before it died starts from the shortest wait again.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::process::Child;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::spawn::{self, Output};
use crate::supervise;

/// The first wait before a restart; doubled for each failure in a row, up to [`MAX_WAIT`].
const FIRST_WAIT: Duration = Duration::from_millis(250);
const MAX_WAIT: Duration = Duration::from_secs(10);
/// A process that ran this long before it died is not failing in a loop.
const STABLE: Duration = Duration::from_secs(30);

/// A process on the host to keep running.
#[derive(Clone, Debug)]
pub struct HostProcess {
    /// What it is, for the logs ("control plane").
    pub what: &'static str,
    pub exe: PathBuf,
    pub args: Vec<String>,
    /// Its output, appended to across restarts (the lines before a crash stay).
    pub log: PathBuf,
    /// Its admin address, whose `/ready` must answer 200 before it counts as started.
    pub ready: Option<SocketAddr>,
    pub ready_timeout: Duration,
}

/// A process being kept alive; [`Restarting::stop`] ends it.
pub struct Restarting {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    restarts: Arc<AtomicU32>,
}

impl HostProcess {
    /// Starts the process and waits until it is ready; then keeps it running. An error when
    /// the first start fails (with the end of its log): a process that cannot start once is
    /// misconfigured, not unlucky.
    pub async fn start(self, grace: Duration) -> Result<Restarting, String> {
        let mut child = self.spawn().map_err(|e| format!("cannot start it: {e}"))?;
        if let Err(e) = self.wait_ready(&mut child).await {
            supervise::stop(&mut child, Duration::from_secs(2)).await;
            return Err(format!(
                "{e}; its log ({}):\n{}",
                self.log.display(),
                supervise::log_tail(&self.log, 20)
            ));
        }
        let (stop, stop_rx) = watch::channel(false);
        let restarts = Arc::new(AtomicU32::new(0));
        let task = tokio::spawn(keep(self, child, stop_rx, restarts.clone(), grace));
        Ok(Restarting {
            stop,
            task,
            restarts,
        })
    }

    fn spawn(&self) -> std::io::Result<Child> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        spawn::host(&self.exe, &self.args, &Output::File(log))
    }

    async fn wait_ready(&self, child: &mut Child) -> Result<(), String> {
        match self.ready {
            Some(admin) => supervise::wait_ready(admin, child, self.ready_timeout).await,
            None => Ok(()),
        }
    }
}

impl Restarting {
    /// How many times the process was started again.
    pub fn restarts(&self) -> u32 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// Stops the process (SIGTERM, SIGKILL after its grace period) and the keeping.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Waits for the process to exit or to be told to stop; starts it again when it exits.
async fn keep(
    p: HostProcess,
    mut child: Child,
    mut stop: watch::Receiver<bool>,
    restarts: Arc<AtomicU32>,
    grace: Duration,
) {
    let mut failures = 0u32;
    let mut since = Instant::now();
    loop {
        let status = tokio::select! {
            () = stopped(&mut stop) => {
                supervise::stop(&mut child, grace).await;
                return;
            }
            status = child.wait() => status,
        };
        failures = if since.elapsed() >= STABLE {
            1
        } else {
            failures + 1
        };
        // Until a new process is ready: each try that fails waits longer.
        child = loop {
            let wait = backoff(failures);
            let status = status
                .as_ref()
                .map_or_else(|e| e.to_string(), |s| s.to_string());
            tracing::error!(
                process = p.what,
                status = %status,
                failures_in_a_row = failures,
                wait_ms = wait.as_millis() as u64,
                "{} exited; starting it again (same arguments, same state)",
                p.what
            );
            tokio::select! {
                () = stopped(&mut stop) => return,
                () = tokio::time::sleep(wait) => {}
            }
            let mut next = match p.spawn() {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(process = p.what, error = %e, "cannot start it");
                    failures += 1;
                    continue;
                }
            };
            restarts.fetch_add(1, Ordering::Relaxed);
            match p.wait_ready(&mut next).await {
                Ok(()) => {
                    tracing::info!(process = p.what, "{} is running again", p.what);
                    break next;
                }
                Err(e) => {
                    tracing::error!(process = p.what, error = %e, "it did not become ready");
                    supervise::stop(&mut next, Duration::from_secs(2)).await;
                    failures += 1;
                }
            }
        };
        since = Instant::now();
    }
}

/// Resolves once told to stop (or once the teller is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The wait before start number `failures` (from 1): half of the doubled wait, plus up to as
/// much again at random, so restarts of many hosts spread out but never come at once.
fn backoff(failures: u32) -> Duration {
    let full = FIRST_WAIT
        .saturating_mul(1 << failures.saturating_sub(1).min(8))
        .min(MAX_WAIT);
    let half = full / 2;
    half + half.mul_f64(fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `sh -c script` process logging to `dir`/p.log.
    fn shell(script: String, dir: &std::path::Path) -> HostProcess {
        HostProcess {
            what: "test process",
            exe: PathBuf::from("/bin/sh"),
            args: vec!["-c".into(), script],
            log: dir.join("p.log"),
            ready: None,
            ready_timeout: Duration::from_secs(1),
        }
    }

    /// A fresh directory of this test's own.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("weft-restart-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    #[test]
    fn waits_grow_with_failures_and_stay_bounded() {
        for n in 1..20 {
            let full = FIRST_WAIT.saturating_mul(1 << (n - 1).min(8)).min(MAX_WAIT);
            let w = backoff(n);
            assert!(w >= full / 2 && w <= full, "failure {n}: {w:?} vs {full:?}");
        }
        assert!(backoff(30) <= MAX_WAIT);
    }

    #[tokio::test]
    async fn a_process_that_dies_is_started_again_with_its_log_kept() {
        let dir = scratch("dies");
        let log = dir.join("p.log");
        // Each start appends a line, then dies at once.
        let p = shell("echo started; exit 3".into(), &dir);
        let kept = p.start(Duration::from_secs(1)).await.expect("first start");
        // Wait on the log, not on the restart count: a start is counted when it is spawned,
        // which can be before its shell has written its line.
        let starts = || {
            std::fs::read_to_string(&log)
                .map(|t| t.lines().filter(|l| *l == "started").count())
                .unwrap_or(0)
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while starts() < 4 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let restarts = kept.restarts();
        kept.stop().await;
        assert!(restarts >= 3, "restarts: {restarts}");
        let text = std::fs::read_to_string(&log).expect("log");
        assert!(
            text.lines().filter(|l| *l == "started").count() >= 4,
            "{text}"
        );
    }

    #[tokio::test]
    async fn stop_ends_a_running_process_and_it_is_not_restarted() {
        let dir = scratch("stop");
        let p = shell(
            format!("echo $$ > {}/pid; exec sleep 30", dir.display()),
            &dir,
        );
        let kept = p.start(Duration::from_secs(2)).await.expect("start");
        let pid_file = dir.join("pid");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !pid_file.exists() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .expect("pid")
            .trim()
            .parse()
            .expect("a pid");
        kept.stop().await;
        // SAFETY: kill(2) with signal 0 only checks that the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        assert!(!alive, "the process outlived stop()");
    }

    #[tokio::test]
    async fn a_killed_process_comes_back() {
        let dir = scratch("killed");
        let p = shell(
            format!("echo $$ >> {}/pids; exec sleep 30", dir.display()),
            &dir,
        );
        let kept = p.start(Duration::from_secs(2)).await.expect("start");
        let pids = dir.join("pids");
        let read = || {
            std::fs::read_to_string(&pids)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse::<i32>().ok())
                .collect::<Vec<_>>()
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while read().is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let first = read()[0];
        // SAFETY: kill(2) on a process this test started.
        unsafe { libc::kill(first, libc::SIGKILL) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while read().len() < 2 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(read().len(), 2, "not started again after SIGKILL");
        assert_eq!(kept.restarts(), 1);
        kept.stop().await;
    }
}
