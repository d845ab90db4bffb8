//! Watching a configuration directory: a debounced "something changed" signal, plus a
//! periodic rescan in case the file system's notifications are lost. Used by a proxy reading
//! files and by the control plane; what to do on a change is theirs.

use std::path::Path;
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Changes closer together than this are loaded once (editors write files in several steps).
pub const DEBOUNCE: Duration = Duration::from_millis(150);
/// Also re-read this often, in case the file system's notifications are lost.
pub const RESCAN: Duration = Duration::from_secs(30);

/// Only changes to what files contain or which files exist. Reading the files (as every
/// reload does) raises open and access events; reacting to those would reload forever.
fn is_change(kind: &notify::EventKind) -> bool {
    use notify::event::{EventKind, ModifyKind};
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        EventKind::Access(_) | EventKind::Any | EventKind::Other => false,
    }
}

/// A watched directory.
pub struct DirWatcher {
    rx: mpsc::Receiver<()>,
    _watcher: Option<RecommendedWatcher>,
}

impl DirWatcher {
    /// Watches `dir` recursively; without notifications (an error is logged) it still
    /// rescans every [`RESCAN`].
    pub fn new(dir: &Path) -> Self {
        let (tx, rx) = mpsc::channel::<()>(1);
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok_and(|e| is_change(&e.kind)) {
                // A full queue already means "reload pending": dropping this one loses nothing.
                let _ = tx.try_send(());
            }
        });
        let watcher = match watcher {
            Ok(mut w) => match w.watch(dir, RecursiveMode::Recursive) {
                Ok(()) => Some(w),
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot watch the config directory; rescanning every {RESCAN:?}");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "no file watcher; rescanning every {RESCAN:?}");
                None
            }
        };
        Self {
            rx,
            _watcher: watcher,
        }
    }

    /// Returns after the next change (once it has settled for [`DEBOUNCE`]) or rescan period.
    pub async fn changed(&mut self) {
        tokio::select! {
            changed = self.rx.recv() => {
                if changed.is_none() {
                    // The watcher is gone: fall back to rescanning.
                    tokio::time::sleep(RESCAN).await;
                    return;
                }
                tokio::time::sleep(DEBOUNCE).await;
                while self.rx.try_recv().is_ok() {}
            }
            _ = tokio::time::sleep(RESCAN) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use notify::event::{
        AccessKind, CreateKind, DataChange, EventKind, MetadataKind, ModifyKind, RemoveKind,
    };

    use super::is_change;

    #[test]
    fn reading_files_is_not_a_change() {
        assert!(!is_change(&EventKind::Access(AccessKind::Any)));
        assert!(!is_change(&EventKind::Modify(ModifyKind::Metadata(
            MetadataKind::AccessTime
        ))));
        assert!(is_change(&EventKind::Modify(ModifyKind::Data(
            DataChange::Any
        ))));
        assert!(is_change(&EventKind::Create(CreateKind::File)));
        assert!(is_change(&EventKind::Remove(RemoveKind::File)));
    }
}
