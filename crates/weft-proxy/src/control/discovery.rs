//! On-demand discovery: the request path asks for a Service (by name or VIP) or an address
//! it does not know yet, and waits, bounded, for the control plane's answer.
//!
//! The answered set is read without locks (`arc-swap`); asking is a bounded queue to the xDS
//! task (a full queue only means the names are already on their way).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, watch};

/// At most this many names are asked for per proxy. A proxy calls a bounded set of
/// services; an application sending requests to endless made-up hosts must not grow the
/// proxy's memory or its subscription past what the control plane accepts.
pub const MAX_NAMES: usize = 10_000;

pub struct Discovery {
    requests: mpsc::Sender<(&'static str, String)>,
    /// `type_url|name` of every name the control plane has answered (present or absent).
    answered: ArcSwap<HashSet<String>>,
    changed: watch::Sender<u64>,
}

impl Discovery {
    pub fn new() -> (Arc<Self>, mpsc::Receiver<(&'static str, String)>) {
        let (tx, rx) = mpsc::channel(1024);
        let (changed, _) = watch::channel(0);
        let d = Discovery {
            requests: tx,
            answered: ArcSwap::from_pointee(HashSet::new()),
            changed,
        };
        (Arc::new(d), rx)
    }

    fn key(type_url: &str, name: &str) -> String {
        format!("{type_url}|{name}")
    }

    pub fn is_answered(&self, type_url: &str, name: &str) -> bool {
        self.answered.load().contains(&Self::key(type_url, name))
    }

    /// Asks for every name not answered yet and waits until all are, or `timeout` passes.
    pub async fn ensure(&self, wanted: &[(&'static str, String)], timeout: Duration) {
        let missing: Vec<&(&'static str, String)> = wanted
            .iter()
            .filter(|(t, n)| !self.is_answered(t, n))
            .collect();
        if missing.is_empty() {
            return;
        }
        if self.answered.load().len() >= MAX_NAMES {
            tracing::warn!(
                "not asking the control plane about {} more names: this proxy already asked about {MAX_NAMES}",
                missing.len()
            );
            return;
        }
        let mut changed = self.changed.subscribe();
        for (t, n) in &missing {
            let _ = self.requests.try_send((t, n.clone()));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        while !missing.iter().all(|(t, n)| self.is_answered(t, n)) {
            match tokio::time::timeout_at(deadline, changed.changed()).await {
                Ok(Ok(())) => continue,
                _ => return,
            }
        }
    }

    /// Records names a response answered (called by the xDS task after applying it).
    pub fn answered(&self, type_url: &str, names: Vec<String>) {
        if names.is_empty() {
            return;
        }
        self.answered.rcu(|set| {
            let mut next = HashSet::clone(set);
            for n in &names {
                next.insert(Self::key(type_url, n));
            }
            next
        });
        self.changed.send_modify(|v| *v += 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn answered_names_return_at_once_and_the_rest_wait_bounded() {
        let (d, mut rx) = Discovery::new();
        let t = weft_proto::types::SERVICE_CONFIG;
        d.answered(t, vec!["shop/reviews".into()]);
        // Known: no request, no wait.
        d.ensure(&[(t, "shop/reviews".into())], Duration::from_secs(5))
            .await;
        assert!(rx.try_recv().is_err());
        // Unknown and never answered: asked for, then given up on after the timeout.
        let started = tokio::time::Instant::now();
        d.ensure(&[(t, "shop/ratings".into())], Duration::from_secs(5))
            .await;
        assert_eq!(rx.try_recv().ok(), Some((t, "shop/ratings".to_string())));
        assert!(started.elapsed() >= Duration::from_secs(5));
        // Past the cap nothing more is asked.
        d.answered(t, (0..MAX_NAMES).map(|i| format!("ns/s{i}")).collect());
        d.ensure(&[(t, "shop/more".into())], Duration::from_secs(5))
            .await;
        assert!(rx.try_recv().is_err());
    }
}
