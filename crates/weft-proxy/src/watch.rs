//! Watching the config directory: a change is loaded, validated and compiled off the request
//! path; a valid one is swapped in whole, an invalid one is logged (every error, with file and
//! line) and the last good configuration stays in effect.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::run::Context;

/// Changes closer together than this are loaded once (editors write files in several steps).
const DEBOUNCE: Duration = Duration::from_millis(150);
/// Also re-read this often, in case the file system's notifications are lost.
const RESCAN: Duration = Duration::from_secs(30);

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

pub async fn run(dir: PathBuf, cx: Arc<Context>) {
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| is_change(&e.kind)) {
            // A full queue already means "reload pending": dropping this one loses nothing.
            let _ = tx.try_send(());
        }
    });
    let _watcher = match watcher {
        Ok(mut w) => match w.watch(&dir, RecursiveMode::Recursive) {
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
    loop {
        tokio::select! {
            changed = rx.recv() => {
                if changed.is_none() {
                    break;
                }
                tokio::time::sleep(DEBOUNCE).await;
                while rx.try_recv().is_ok() {}
            }
            _ = tokio::time::sleep(RESCAN) => {}
            _ = cx.drain.signaled() => break,
        }
        let cx2 = cx.clone();
        let dir2 = dir.clone();
        // Loading reads files and compiles: keep it off the runtime's workers.
        let result = tokio::task::spawn_blocking(move || crate::run::reload(&cx2, &dir2)).await;
        if let Err(e) = result {
            tracing::error!(error = %e, "config reload task failed");
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
