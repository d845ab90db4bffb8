//! The proxies connected to this control plane right now, as the xDS sessions see them: who
//! each is, from where, since when, what it subscribed to, and whether it has acknowledged
//! the latest configuration. What `weft check` and `weft proxy-config` read.
//!
//! Sessions write here when something changes (a push, an ACK, a NACK); nothing on a proxy's
//! request path touches it.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// One connected proxy.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectedProxy {
    /// `namespace/workload`.
    pub node: String,
    /// Where its xDS stream comes from.
    pub address: SocketAddr,
    /// The SPIFFE id of its certificate.
    pub identity: String,
    pub connected_unix: u64,
    /// The published generation of the last push decided for it (a generation with nothing
    /// new for it counts: it is then current).
    pub generation: u64,
    /// Whether every push has been acknowledged (ACK or NACK).
    pub acknowledged: bool,
    pub last_ack_unix: Option<u64>,
    /// The reason of the last NACK, while no later push has been ACKed.
    pub rejected: Option<String>,
    /// Subscribed names by resource type (the short type name).
    pub subscriptions: BTreeMap<String, Vec<String>>,
    #[serde(skip)]
    session: u64,
}

#[derive(Default)]
pub struct Connected {
    proxies: Mutex<HashMap<String, ConnectedProxy>>,
    sessions: AtomicU64,
}

impl Connected {
    /// Records a new session for `node`; a second stream for the same node replaces the
    /// first in the listing. Returns the session's number, for [`Connected::update`].
    pub fn connect(&self, node: &str, address: SocketAddr, identity: String) -> u64 {
        let session = self.sessions.fetch_add(1, Ordering::Relaxed) + 1;
        let proxy = ConnectedProxy {
            node: node.to_string(),
            address,
            identity,
            connected_unix: unix_now(),
            generation: 0,
            acknowledged: true,
            last_ack_unix: None,
            rejected: None,
            subscriptions: BTreeMap::new(),
            session,
        };
        self.lock().insert(node.to_string(), proxy);
        session
    }

    /// Changes the record of `node` if it is still session `session`'s.
    pub fn update(&self, node: &str, session: u64, change: impl FnOnce(&mut ConnectedProxy)) {
        if let Some(p) = self.lock().get_mut(node).filter(|p| p.session == session) {
            change(p);
        }
    }

    /// A push went out for `generation`: it waits for an ACK.
    pub fn pushed(&self, node: &str, session: u64, generation: u64) {
        self.update(node, session, |p| {
            p.generation = p.generation.max(generation);
            p.acknowledged = false;
        });
    }

    /// The model of `generation` had nothing new for the proxy.
    pub fn current(&self, node: &str, session: u64, generation: u64) {
        self.update(node, session, |p| {
            p.generation = p.generation.max(generation)
        });
    }

    pub fn acked(&self, node: &str, session: u64) {
        self.update(node, session, |p| {
            p.acknowledged = true;
            p.rejected = None;
            p.last_ack_unix = Some(unix_now());
        });
    }

    pub fn nacked(&self, node: &str, session: u64, reason: String) {
        self.update(node, session, |p| {
            p.acknowledged = true;
            p.rejected = Some(reason);
        });
    }

    pub fn disconnect(&self, node: &str, session: u64) {
        let mut proxies = self.lock();
        if proxies.get(node).is_some_and(|p| p.session == session) {
            proxies.remove(node);
        }
    }

    /// Every connected proxy, by node name.
    pub fn list(&self) -> Vec<ConnectedProxy> {
        let mut list: Vec<ConnectedProxy> = self.lock().values().cloned().collect();
        list.sort_by(|a, b| a.node.cmp(&b.node));
        list
    }

    pub fn get(&self, node: &str) -> Option<ConnectedProxy> {
        self.lock().get(node).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ConnectedProxy>> {
        self.proxies.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reconnect_replaces_the_old_session_and_its_end_does_not_remove_the_new() {
        let c = Connected::default();
        let addr: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let first = c.connect("shop/a", addr, "spiffe://x/ns/shop/sa/a".into());
        let second = c.connect("shop/a", addr, "spiffe://x/ns/shop/sa/a".into());
        c.pushed("shop/a", first, 9);
        assert_eq!(c.get("shop/a").map(|p| p.generation), Some(0));
        c.pushed("shop/a", second, 3);
        assert_eq!(c.get("shop/a").map(|p| p.acknowledged), Some(false));
        c.nacked("shop/a", second, "bad".into());
        let p = c.get("shop/a").expect("connected");
        assert!(p.acknowledged);
        assert_eq!(p.rejected.as_deref(), Some("bad"));
        c.acked("shop/a", second);
        assert_eq!(c.get("shop/a").and_then(|p| p.rejected), None);
        c.disconnect("shop/a", first);
        assert!(c.get("shop/a").is_some());
        c.disconnect("shop/a", second);
        assert!(c.list().is_empty());
    }
}
