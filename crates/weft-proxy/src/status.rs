//! Whether the proxy holds a valid configuration, and why the last change was refused: what
//! `/ready` and `/config` report.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwapOption;

#[derive(Default)]
pub struct Status {
    ready: AtomicBool,
    rejected: ArcSwapOption<Vec<String>>,
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

    /// Why the proxy is not ready yet (no configuration from the control plane).
    pub fn set_waiting(&self, why: String) {
        if !self.is_ready() {
            self.rejected.store(Some(Arc::new(vec![why])));
        }
    }
}
