//! Whether the proxy holds a valid configuration, and why the last change was refused: what
//! `/ready` and `/config` report; what it holds from the control plane, and the admin token's
//! digest that came with it (what `/config` and `/tap` check callers against).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use weft_identity::AdminDigest;

use crate::control::resources::HeldResource;

#[derive(Default)]
pub struct Status {
    ready: AtomicBool,
    rejected: ArcSwapOption<Vec<String>>,
    held: ArcSwapOption<Vec<HeldResource>>,
    admin: ArcSwapOption<AdminDigest>,
}

impl Status {
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Marks a valid configuration installed; true the first time.
    pub fn set_ready(&self) -> bool {
        self.rejected.store(None);
        !self.ready.swap(true, Ordering::AcqRel)
    }

    /// The errors of the last rejected change, if the configuration in use is older.
    pub fn rejected(&self) -> Option<Vec<String>> {
        self.rejected.load_full().map(|v| v.as_ref().clone())
    }

    pub fn set_rejected(&self, errors: Vec<String>) {
        self.rejected.store(Some(Arc::new(errors)));
    }

    pub fn set_held(&self, resources: Vec<HeldResource>, admin: Option<AdminDigest>) {
        self.held.store(Some(Arc::new(resources)));
        self.admin.store(admin.map(Arc::new));
    }

    /// The resources held from the control plane (none in static mode).
    pub fn held(&self) -> Vec<HeldResource> {
        self.held
            .load_full()
            .map(|v| v.as_ref().clone())
            .unwrap_or_default()
    }

    /// The admin token's digest the control plane sent.
    pub fn admin_digest(&self) -> Option<AdminDigest> {
        self.admin.load_full().map(|d| *d)
    }

    /// Why the proxy is not ready yet (no configuration from the control plane).
    pub fn set_waiting(&self, why: String) {
        if !self.is_ready() {
            self.rejected.store(Some(Arc::new(vec![why])));
        }
    }
}
