//! The Service port a connection's last request named by its authority. A keep-alive client
//! nearly always names the same one, and resolving it again (splitting off the port, trying it
//! as an address, looking up the name) cost more than the rest of routing a request.
//!
//! The answer is kept with the snapshot it came from and used only while that snapshot is the
//! current one, so a configuration change is seen by the next request, as without it.

use std::sync::{Arc, Weak};

use arc_swap::ArcSwapOption;

use crate::state::{ServicePort, Snapshot};

#[derive(Default)]
pub struct LastAuthority(ArcSwapOption<Resolved>);

/// An authority resolved against one snapshot. Both references are weak: an idle connection
/// must not keep an old configuration alive, nor through it the upstream connections of
/// endpoints that are gone.
struct Resolved {
    /// Which snapshot: a `Weak` keeps the allocation (not the snapshot) alive, so its address
    /// cannot be taken by a newer snapshot while this entry exists.
    snapshot: Weak<Snapshot>,
    authority: String,
    /// Upgrades whenever `snapshot` is the caller's: the snapshot holds the port.
    port: Weak<ServicePort>,
}

impl LastAuthority {
    /// [`Snapshot::by_authority`], answered from memory when the snapshot and the authority
    /// are the last ones.
    pub fn resolve(&self, snapshot: &Arc<Snapshot>, authority: &str) -> Option<Arc<ServicePort>> {
        if let Some(last) = &*self.0.load() {
            if std::ptr::eq(last.snapshot.as_ptr(), Arc::as_ptr(snapshot))
                && last.authority == authority
            {
                if let Some(port) = last.port.upgrade() {
                    return Some(port);
                }
            }
        }
        let port = snapshot.by_authority(authority)?.clone();
        self.0.store(Some(Arc::new(Resolved {
            snapshot: Arc::downgrade(snapshot),
            authority: authority.to_string(),
            port: Arc::downgrade(&port),
        })));
        Some(port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::test_snapshot;

    #[test]
    fn answers_as_the_snapshot_does_and_follows_config_changes() {
        let last = LastAuthority::default();
        let first = Arc::new(test_snapshot("shop"));
        let resolve = |s: &Arc<Snapshot>, a: &str| last.resolve(s, a).map(|p| p.port);
        assert_eq!(resolve(&first, "reviews:9080"), Some(9080));
        assert_eq!(resolve(&first, "reviews:9080"), Some(9080), "remembered");
        assert_eq!(resolve(&first, "reviews"), Some(80), "another authority");
        assert_eq!(resolve(&first, "ratings"), None, "unknown");
        assert_eq!(resolve(&first, "reviews"), Some(80));

        // A new snapshot (a config change): its own port, not the remembered one.
        let second = Arc::new(test_snapshot("shop"));
        let from_second = last.resolve(&second, "reviews").map(|p| Arc::as_ptr(&p));
        let expected = second.by_authority("reviews").map(Arc::as_ptr);
        assert!(from_second.is_some() && from_second == expected);
        let from_first = first.by_authority("reviews").map(Arc::as_ptr);
        assert_ne!(from_second, from_first);

        // A snapshot in which the name means nothing.
        let elsewhere = Arc::new(test_snapshot("other"));
        assert_eq!(resolve(&elsewhere, "reviews"), None);
    }

    #[test]
    fn an_idle_connection_keeps_no_old_configuration_alive() {
        let last = LastAuthority::default();
        let snapshot = Arc::new(test_snapshot("shop"));
        let port = last
            .resolve(&snapshot, "reviews:9080")
            .map(|p| Arc::downgrade(&p));
        assert!(port.as_ref().and_then(Weak::upgrade).is_some());
        // The configuration changes and the request is done: only the cache is left.
        drop(snapshot);
        assert!(
            port.as_ref().and_then(Weak::upgrade).is_none(),
            "the remembered Service port (and its endpoints) outlived the snapshot"
        );
    }
}
