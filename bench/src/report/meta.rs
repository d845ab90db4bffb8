//! What the run was: when, on which machine, with which command, settings and peer versions.

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::cli::Plan;

#[derive(Debug, Clone, Serialize)]
pub struct PeerVersion {
    pub name: String,
    pub path: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Meta {
    /// UTC, ISO 8601.
    pub date: String,
    pub nproc: usize,
    pub kernel: String,
    pub cpu: String,
    pub command: String,
    pub rates: Vec<u32>,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub connections: usize,
    pub rounds: u32,
    pub request_timeout_s: f64,
    pub peers: Vec<PeerVersion>,
}

impl Meta {
    pub fn collect(plan: &Plan) -> Meta {
        Meta {
            date: utc_now(),
            nproc: std::thread::available_parallelism().map_or(0, |n| n.get()),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".to_string()),
            cpu: cpu_model(),
            command: plan.command.clone(),
            rates: plan.rates.clone(),
            duration_s: plan.duration.as_secs_f64(),
            rounds: plan.rounds,
            warmup_s: plan.warmup.as_secs_f64(),
            connections: plan.connections,
            request_timeout_s: crate::loadgen::REQUEST_TIMEOUT.as_secs_f64(),
            peers: Vec::new(),
        }
    }

    /// Records a peer binary and the first line of what its version flag prints.
    pub fn add_peer(&mut self, name: &str, bin: &Path, version_flag: &str) {
        if self.peers.iter().any(|p| p.name == name) {
            return;
        }
        let version = Command::new(bin)
            .arg(version_flag)
            .output()
            .ok()
            .map(|o| {
                let text = [o.stdout, o.stderr].concat();
                let text = String::from_utf8_lossy(&text);
                let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
                // "nginx version: nginx/1.22.1", "/path/envoy  version: <sha>/1.40.0/…"
                line.split_once("version: ")
                    .map_or(line, |(_, v)| v)
                    .trim()
                    .to_string()
            })
            .unwrap_or_else(|| "unknown".to_string());
        self.peers.push(PeerVersion {
            name: name.to_string(),
            path: bin.display().to_string(),
            version,
        });
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string())
}

/// The current time as `YYYY-MM-DDTHH:MM:SSZ`.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::civil_from_days;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
