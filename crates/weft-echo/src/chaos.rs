//! Misbehaviour on request, for the chaos benchmark: an echo server started with a chaos
//! directory reads `<dir>/<pod>.json` every fifth of a second and, while it says so, answers
//! a share of requests 503 (`{"failPercent": 50}`) or delays every answer
//! (`{"delayMs": 500}`). Also the idle timeout of its HTTP/1 keep-alive connections (as
//! Node.js's `keepAliveTimeout`): a connection idle that long is closed by the server.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often the chaos file is read.
const POLL: Duration = Duration::from_millis(200);

/// What the server was told to do wrong, and how long it keeps idle connections.
#[derive(Clone, Debug, Default)]
pub struct ChaosConfig {
    /// Where `<pod>.json` files tell the server to misbehave; `None`: never.
    pub dir: Option<PathBuf>,
    /// Idle keep-alive connections are closed after this; `None`: kept.
    pub idle_timeout: Option<Duration>,
}

/// The misbehaviour in force now.
#[derive(Debug, Default)]
pub struct Chaos {
    fail_percent: AtomicU32,
    delay_ms: AtomicU64,
    /// Requests seen: which fail is a hash of the count (random-looking, reproducible).
    seen: AtomicU64,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct File {
    fail_percent: u32,
    delay_ms: u64,
}

impl Chaos {
    /// Follows `<dir>/<pod>.json` for as long as the server runs.
    pub fn watch(self: &Arc<Self>, dir: PathBuf, pod: &str) {
        let path = dir.join(format!("{pod}.json"));
        let chaos = self.clone();
        tokio::spawn(async move {
            loop {
                let file: File = std::fs::read(&path)
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or_default();
                chaos
                    .fail_percent
                    .store(file.fail_percent.min(100), Ordering::Relaxed);
                chaos
                    .delay_ms
                    .store(file.delay_ms.min(60_000), Ordering::Relaxed);
                tokio::time::sleep(POLL).await;
            }
        });
    }

    /// Applies the misbehaviour to one request: waits the delay; true when it must fail.
    pub async fn fails(&self) -> bool {
        let delay = self.delay_ms.load(Ordering::Relaxed);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let percent = u64::from(self.fail_percent.load(Ordering::Relaxed));
        let n = self.seen.fetch_add(1, Ordering::Relaxed);
        percent > 0 && splitmix64(n) % 100 < percent
    }
}

/// SplitMix64: a well-mixed 64-bit value of `n`.
fn splitmix64(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_share_of_requests_fails() {
        let chaos = Chaos::default();
        chaos.fail_percent.store(50, Ordering::Relaxed);
        let mut failed = 0;
        for _ in 0..2000 {
            if chaos.fails().await {
                failed += 1;
            }
        }
        assert!((900..1100).contains(&failed), "{failed}");
        let healthy = Chaos::default();
        for _ in 0..100 {
            assert!(!healthy.fails().await);
        }
    }
}
