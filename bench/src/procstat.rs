//! Resource readings from `/proc`: peak resident memory (`VmHWM` in `/proc/PID/status`) and
//! CPU time (`utime + stime` in `/proc/PID/stat`), summed over a process and its descendants
//! (nginx does its work in a worker process under the master).

use std::path::Path;

use anyhow::{anyhow, Context, Result};

/// A measured program: a name and the pids of its process tree.
#[derive(Debug, Clone)]
pub struct Tracked {
    pub name: String,
    pub pids: Vec<u32>,
}

impl Tracked {
    /// Tracks `pid` and every process descending from it right now.
    pub fn tree(name: &str, pid: u32) -> Tracked {
        let mut pids = vec![pid];
        pids.extend(descendants(pid));
        Tracked {
            name: name.to_string(),
            pids,
        }
    }

    /// Tracks this benchmark process itself (the load generator).
    pub fn this_process() -> Tracked {
        Tracked {
            name: "load generator".to_string(),
            pids: vec![std::process::id()],
        }
    }

    /// User + system CPU seconds consumed so far by all tracked processes.
    pub fn cpu_seconds(&self) -> Result<f64> {
        let ticks = clock_ticks();
        let mut total = 0u64;
        for &pid in &self.pids {
            total +=
                cpu_ticks(pid).with_context(|| format!("reading CPU time of {}", self.name))?;
        }
        Ok(total as f64 / ticks as f64)
    }

    /// Sum of the peak resident set sizes (VmHWM) of the tracked processes, in MB (10^6 B).
    pub fn peak_rss_mb(&self) -> Result<f64> {
        let mut kib = 0u64;
        for &pid in &self.pids {
            kib += vm_hwm_kib(pid).with_context(|| format!("reading VmHWM of {}", self.name))?;
        }
        Ok(kib as f64 * 1024.0 / 1e6)
    }
}

/// CPU seconds the whole machine has spent busy (all cores, everything but idle and
/// iowait), from the first line of `/proc/stat`.
pub fn machine_busy_seconds() -> Result<f64> {
    let text = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let line = text
        .lines()
        .find(|l| l.starts_with("cpu "))
        .ok_or_else(|| anyhow!("no aggregate cpu line in /proc/stat"))?;
    // cpu user nice system idle iowait irq softirq steal guest guest_nice (guest is
    // already included in user).
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let busy: u64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| v.get(i)).sum();
    Ok(busy as f64 / clock_ticks() as f64)
}

/// `utime + stime` of one process, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let fields = stat_fields_after_comm(&text).ok_or_else(|| anyhow!("malformed {path}"))?;
    // Fields after "(comm)": [0] state (field 3) … [11] utime (field 14), [12] stime (15).
    let num = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| anyhow!("malformed {path}: field {} missing", i + 3))
    };
    Ok(num(11)? + num(12)?)
}

/// The parent pid from `/proc/PID/stat`.
fn ppid(pid: u32) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat_fields_after_comm(&text)?.get(1)?.parse().ok()
}

/// The whitespace-separated fields after the `(comm)` field, which may itself contain spaces.
fn stat_fields_after_comm(text: &str) -> Option<Vec<&str>> {
    let close = text.rfind(')')?;
    Some(text.get(close + 1..)?.split_whitespace().collect())
}

fn vm_hwm_kib(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow!("no VmHWM line in {path}"))
}

/// All processes whose parent chain leads to `root`.
fn descendants(root: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir(Path::new("/proc")) else {
        return Vec::new();
    };
    let pairs: Vec<(u32, u32)> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, ppid(pid)?)))
        .collect();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            pairs
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// Clock ticks per second for `/proc/PID/stat` times.
fn clock_ticks() -> u64 {
    // SAFETY: sysconf(3) has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let me = Tracked::this_process();
        assert!(me.cpu_seconds().is_ok());
        assert!(me.peak_rss_mb().map(|mb| mb > 0.1).unwrap_or(false));
        assert!(machine_busy_seconds().map(|s| s > 0.0).unwrap_or(false));
    }

    #[test]
    fn comm_with_spaces_and_parens() {
        let line = "42 (a (b) c) S 1 42 42 0 -1 4194560 1 0 0 0 7 3 0 0 20 0 1";
        let f = stat_fields_after_comm(line).unwrap_or_default();
        assert_eq!(f[0], "S");
        assert_eq!(f[1], "1");
        assert_eq!((f[11], f[12]), ("7", "3"));
    }
}
