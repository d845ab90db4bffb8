//! What `weft run` has created, written down before it is created: one JSON record per
//! workload under the run directory (`/run/weft/workloads/<name>.json`), so that after a
//! crash `weft run --cleanup`, or the next `weft run`, finds and removes everything. A record
//! whose runner is no longer alive is stale.
//!
//! Changes to the records (and address allocation) happen under an exclusive `flock` on the
//! run directory's `lock` file, so that concurrent runners never pick the same name or
//! address.

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::network::HostNet;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub name: String,
    pub namespace: String,
    pub address: Ipv4Addr,
    /// The runner's pid and its start time (clock ticks since boot, from /proc/PID/stat):
    /// together they identify the process even after its pid is reused.
    pub pid: u32,
    pub pid_start: u64,
    /// A record that holds no namespace, only keeps the bridge up (`weft up`, whose control
    /// plane listens on the bridge address).
    #[serde(default)]
    pub bridge_only: bool,
    /// The owner id of the workload's registration with the control plane, so that whoever
    /// cleans up after a crash can deregister it.
    #[serde(default)]
    pub owner: String,
}

impl Record {
    /// Whether the runner that wrote this record is still running.
    pub fn runner_alive(&self) -> bool {
        process_start(self.pid) == Some(self.pid_start)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("another weft run has held {0} for over 10 s")]
    Busy(PathBuf),
    #[error("no address left in the bridge's subnet")]
    NoAddress,
}

/// The run directory's records.
#[derive(Clone, Debug)]
pub struct Records {
    dir: PathBuf,
}

/// An exclusive hold on the records; released when dropped.
pub struct Lock(File);

impl Drop for Lock {
    fn drop(&mut self) {
        // SAFETY: flock(2) on a file descriptor this value owns.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

impl Records {
    pub fn open(run_dir: &Path) -> Result<Self, RecordError> {
        let dir = run_dir.join("workloads");
        // 0755, whatever the umask: the proxies (uid 1337) read their CA file from here.
        let open_dir = |d: &Path| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::create_dir_all(d)?;
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))
        };
        open_dir(run_dir)
            .and_then(|()| open_dir(&dir))
            .map_err(|source| RecordError::Io {
                path: dir.clone(),
                source,
            })?;
        Ok(Self { dir })
    }

    /// Takes the exclusive lock, waiting up to 10 s for another runner to finish its change.
    pub fn lock(&self) -> Result<Lock, RecordError> {
        let path = self.dir.join(".lock");
        let file = File::create(&path).map_err(|source| RecordError::Io {
            path: path.clone(),
            source,
        })?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // SAFETY: flock(2) on a file descriptor `file` owns.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Ok(Lock(file));
            }
            if Instant::now() > deadline {
                return Err(RecordError::Busy(path));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// Every record, in name order (unreadable ones are skipped with a warning).
    pub fn list(&self, _lock: &Lock) -> Vec<Record> {
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return out;
        };
        for e in entries.filter_map(Result::ok) {
            let path = e.path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            match std::fs::read(&path).map(|b| serde_json::from_slice::<Record>(&b)) {
                Ok(Ok(r)) => out.push(r),
                _ => {
                    tracing::warn!(path = %path.display(), "unreadable workload record; remove it by hand")
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    pub fn get(&self, _lock: &Lock, name: &str) -> Option<Record> {
        let bytes = std::fs::read(self.path(name)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn write(&self, _lock: &Lock, record: &Record) -> Result<(), RecordError> {
        let path = self.path(&record.name);
        let tmp = self.dir.join(format!(".{}.tmp", record.name));
        let bytes = serde_json::to_vec_pretty(record).unwrap_or_default();
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|source| RecordError::Io { path, source })
    }

    /// Removes a record and its side files.
    pub fn remove(&self, _lock: &Lock, name: &str) {
        let _ = std::fs::remove_file(self.path(name));
        let _ = std::fs::remove_file(self.ca_file(name));
    }

    /// Where a workload's proxy finds the control plane's CA bundle (public certificates;
    /// the proxy runs as its own uid and reads it from here).
    pub fn ca_file(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.ca.pem"))
    }

    /// The lowest subnet address no record holds.
    pub fn free_address(&self, lock: &Lock, net: &HostNet) -> Result<Ipv4Addr, RecordError> {
        let taken: std::collections::BTreeSet<Ipv4Addr> =
            self.list(lock).into_iter().map(|r| r.address).collect();
        (0..)
            .map_while(|i| net.address(i))
            .find(|a| !taken.contains(a))
            .ok_or(RecordError::NoAddress)
    }
}

/// A process's start time in clock ticks since boot (field 22 of /proc/PID/stat).
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_addresses_are_not_reused() {
        let dir = std::env::temp_dir().join(format!("weft-records-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let records = Records::open(&dir).expect("open");
        let lock = records.lock().expect("lock");
        let net = HostNet::default();
        let first = records.free_address(&lock, &net).expect("address");
        assert_eq!(first, Ipv4Addr::new(10, 213, 0, 2));
        let me = std::process::id();
        let record = Record {
            name: "a".into(),
            namespace: "default".into(),
            address: first,
            pid: me,
            pid_start: process_start(me).expect("own start time"),
            bridge_only: false,
            owner: "run-1".into(),
        };
        records.write(&lock, &record).expect("write");
        assert_eq!(records.get(&lock, "a"), Some(record.clone()));
        assert!(record.runner_alive());
        assert_eq!(
            records.free_address(&lock, &net).expect("next"),
            Ipv4Addr::new(10, 213, 0, 3)
        );
        let stale = Record {
            pid_start: record.pid_start + 1,
            ..record
        };
        assert!(!stale.runner_alive(), "a reused pid is not the runner");
        records.remove(&lock, "a");
        assert!(records.list(&lock).is_empty());
        drop(lock);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
