//! Watching the mesh while a scenario runs: every 200 ms, each backend proxy's count of
//! inbound requests and the client proxy's retries and ejections, read from their admin
//! endpoints (`/metrics` needs no token).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::load::epoch_ms;

pub const PERIOD: Duration = Duration::from_millis(200);

/// One reading: epoch ms, each backend's inbound requests (None: unreachable), the client
/// proxy's counters (None once it has stopped, with the load).
#[derive(Clone, Debug)]
pub struct Sample {
    pub at_ms: u64,
    pub backends: Vec<Option<f64>>,
    pub retries: f64,
    pub ejections: f64,
    pub client: Option<Client>,
}

/// The client proxy's counters that judge the retries.
#[derive(Clone, Copy, Debug)]
pub struct Client {
    pub requests: f64,
    pub retries: f64,
    pub refused_by_budget: f64,
}

/// `GET /metrics` from an admin address, with a short timeout.
pub fn metrics(admin: SocketAddr) -> Option<String> {
    let timeout = Duration::from_millis(300);
    let mut s = TcpStream::connect_timeout(&admin, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: admin\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// The sum of a metric's samples whose line contains every one of `parts`.
pub fn sum(text: &str, name: &str, parts: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && parts.iter().all(|p| l.contains(p)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(0.0, |a, b| a + b)
}

/// Samples until `stop`; returns every reading.
pub fn sample(backends: Vec<SocketAddr>, client: SocketAddr, stop: Arc<AtomicBool>) -> Vec<Sample> {
    let mut out = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let at_ms = epoch_ms();
        let backends = backends
            .iter()
            .map(|a| {
                metrics(*a).map(|m| sum(&m, "weft_requests_total", &["direction=\"inbound\""]))
            })
            .collect();
        let text = metrics(client);
        let c = text.as_deref().unwrap_or_default();
        out.push(Sample {
            at_ms,
            backends,
            retries: sum(c, "weft_retries_total", &[]),
            ejections: sum(c, "weft_outlier_ejections_total", &[]),
            client: text.as_deref().map(|c| Client {
                requests: sum(c, "weft_requests_total", &["direction=\"outbound\""]),
                retries: sum(c, "weft_retries_total", &[]),
                refused_by_budget: sum(c, "weft_retries_refused_total", &["reason=\"budget\""]),
            }),
        });
        std::thread::sleep(PERIOD);
    }
    out
}

/// The peak resident set of the process of `ns` whose command line has `needle` (kB).
pub fn peak_rss_kb(ns: &str, needle: &str) -> Option<u64> {
    let pids = std::process::Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .ok()?;
    for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if !cmdline.contains(needle) {
            continue;
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        return status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok());
    }
    None
}
