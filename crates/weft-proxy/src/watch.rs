//! Watching the config directory: a change is loaded, validated and compiled off the request
//! path; a valid one is swapped in whole, an invalid one is logged (every error, with file and
//! line) and the last good configuration stays in effect.

use std::path::PathBuf;
use std::sync::Arc;

use weft_api::watch::DirWatcher;

use crate::drain;
use crate::install::Installer;

pub async fn run(dir: PathBuf, installer: Arc<Installer>, drain: drain::Watch) {
    let mut watcher = DirWatcher::new(&dir);
    loop {
        tokio::select! {
            _ = watcher.changed() => {}
            _ = drain.signaled() => break,
        }
        let installer = installer.clone();
        let dir2 = dir.clone();
        // Loading reads files and compiles: keep it off the runtime's workers.
        let result = tokio::task::spawn_blocking(move || installer.reload(&dir2)).await;
        if let Err(e) = result {
            tracing::error!(error = %e, "config reload task failed");
        }
    }
}
