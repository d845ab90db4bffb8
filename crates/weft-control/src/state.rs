//! The control plane's state directory: what must survive a restart (the CA, join tokens,
//! the admin token).
//!
//! Files are written atomically (a temporary file in the same directory, flushed, then
//! renamed over the old one), so a crash leaves either the old content or the new, and they
//! are private to the user (directories 0700, files 0600): they hold keys and token hashes.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The admin token's file in the state directory.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// Creates `dir` (and parents) private to the user, and tightens it if it already exists.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

/// Writes `bytes` to `path` atomically, readable only by the user.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        // The rename is durable once the directory is.
        fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The admin token (`<state>/admin-token`): read when it exists, else created, 0600.
pub fn admin_token(state_dir: &Path) -> std::io::Result<String> {
    let path = state_dir.join(ADMIN_TOKEN_FILE);
    match fs::read_to_string(&path) {
        Ok(t) if t.trim().len() >= 32 => return Ok(t.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut secret = [0u8; 24];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret)
        .map_err(|_| std::io::Error::other("no randomness for the admin token"))?;
    let token: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    write_private(&path, format!("{token}\n").as_bytes())?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_private_and_replace_whole_files() {
        let dir = std::env::temp_dir().join(format!("weft-state-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        private_dir(&dir).expect("dir");
        let file = dir.join("x.json");
        write_private(&file, b"first").expect("write");
        write_private(&file, b"second").expect("rewrite");
        assert_eq!(fs::read(&file).expect("read"), b"second");
        let mode = |p: &Path| fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&dir), 0o700);
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .expect("list")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp."))
            .collect();
        assert!(leftovers.is_empty());
        let _ = fs::remove_dir_all(&dir);
    }
}
