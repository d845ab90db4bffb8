//! The hosts file of a workload's namespace, `/etc/netns/<ns>/hosts`, which `ip netns exec`
//! mounts over `/etc/hosts` for the application: the mesh's Service names resolve to their
//! VIPs there, and the runner keeps it current.
//!
//! The file is rewritten in place, not replaced: the application's `/etc/hosts` is a bind
//! mount of this very inode, and a rename would leave it reading the old file forever.

use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;

fn dir(ns: &str) -> PathBuf {
    PathBuf::from("/etc/netns").join(ns)
}

/// Writes `content` as the namespace's hosts file when it differs from what is there.
pub fn write(ns: &str, content: &str) -> std::io::Result<bool> {
    let dir = dir(ns);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("hosts");
    if std::fs::read_to_string(&path).is_ok_and(|old| old == content) {
        return Ok(false);
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)?;
    // New content first, then cut the old tail: a reader sees whole lines of one version or
    // the other (plus, for a moment, old lines after the new ones), never an empty file.
    file.seek(SeekFrom::Start(0))?;
    file.write_all(content.as_bytes())?;
    file.set_len(content.len() as u64)?;
    Ok(true)
}

/// Removes the namespace's `/etc/netns` directory.
pub fn remove(ns: &str) {
    let dir = dir(ns);
    if dir.exists() {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot remove the namespace's hosts directory");
        }
    }
}
