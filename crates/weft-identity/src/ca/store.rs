//! The CA's state directory: `<dir>/ca/{cert,key,bundle}.pem`, written crash-safely.
//!
//! Losing or corrupting the CA key means every workload must be re-issued, so writes are
//! atomic: each file is written to a temporary file in the same directory, fsynced, renamed
//! over the old one, and the directory is fsynced so the rename itself survives a crash.
//! All files of an update are staged before any is renamed, which leaves only the
//! microseconds between renames as a window for a torn update (detected on load as a key
//! that does not match its certificate). The directory is 0700 and the key 0600: the key is
//! the one secret that lets its holder impersonate every workload in the mesh.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::CaError;

pub(super) const DIR_MODE: u32 = 0o700;
pub(super) const KEY_MODE: u32 = 0o600;
const PUBLIC_MODE: u32 = 0o644;

/// The paths of the CA's files under a state directory.
#[derive(Clone, Debug)]
pub(super) struct Files {
    pub(super) dir: PathBuf,
    pub(super) cert: PathBuf,
    pub(super) key: PathBuf,
    pub(super) bundle: PathBuf,
}

/// The contents of the three files.
pub(super) struct Contents {
    pub(super) cert: String,
    pub(super) key: String,
    pub(super) bundle: String,
}

// === impl Files ===

impl Files {
    pub(super) fn new(state_dir: &Path) -> Self {
        let dir = state_dir.join("ca");
        Self {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            bundle: dir.join("bundle.pem"),
            dir,
        }
    }

    /// The stored contents, `None` if no CA was ever stored here, or an error if only part
    /// of it is there (never silently replace a CA that workloads already trust).
    pub(super) fn load(&self) -> Result<Option<Contents>, CaError> {
        let paths = [&self.cert, &self.key, &self.bundle];
        let present: Vec<bool> = paths.iter().map(|p| p.exists()).collect();
        if present.iter().all(|p| !p) {
            return Ok(None);
        }
        if let Some(i) = present.iter().position(|p| !p) {
            return Err(CaError::StateIncomplete {
                dir: self.dir.clone(),
                missing: paths[i].clone(),
            });
        }
        self.warn_if_key_readable_by_others();
        Ok(Some(Contents {
            cert: read(&self.cert)?,
            key: read(&self.key)?,
            bundle: read(&self.bundle)?,
        }))
    }

    /// Writes all three files.
    pub(super) fn save(&self, contents: &Contents) -> Result<(), CaError> {
        self.create_dir()?;
        // The bundle goes first: a bundle with an extra root is harmless, a signing root
        // missing from the bundle would break every new certificate.
        let files = [
            (&self.bundle, &contents.bundle, PUBLIC_MODE),
            (&self.key, &contents.key, KEY_MODE),
            (&self.cert, &contents.cert, PUBLIC_MODE),
        ];
        let mut staged = Vec::with_capacity(files.len());
        for (path, contents, mode) in files {
            match stage(path, contents, mode) {
                Ok(s) => staged.push(s),
                Err(e) => {
                    for (tmp, _) in &staged {
                        let _ = fs::remove_file(tmp);
                    }
                    return Err(e);
                }
            }
        }
        for (tmp, path) in &staged {
            commit(tmp, path)?;
        }
        sync_dir(&self.dir)
    }

    /// Writes only the trust bundle.
    pub(super) fn save_bundle(&self, bundle: &str) -> Result<(), CaError> {
        self.create_dir()?;
        let (tmp, path) = stage(&self.bundle, bundle, PUBLIC_MODE)?;
        commit(&tmp, &path)?;
        sync_dir(&self.dir)
    }

    fn create_dir(&self) -> Result<(), CaError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(&self.dir)
            .map_err(io_error("create directory", &self.dir))?;
        // The directory may predate us, or the umask may have been odd: set it explicitly.
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(DIR_MODE))
            .map_err(io_error("set permissions of", &self.dir))
    }

    fn warn_if_key_readable_by_others(&self) {
        if let Ok(meta) = fs::metadata(&self.key) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %self.key.display(),
                    mode = format_args!("{mode:o}"),
                    "the CA private key is readable by other users; run `chmod 600` on it"
                );
            }
        }
    }
}

fn read(path: &Path) -> Result<String, CaError> {
    fs::read_to_string(path).map_err(io_error("read", path))
}

/// Writes `contents` to a fresh temporary file next to `path` and fsyncs it.
fn stage(path: &Path, contents: &str, mode: u32) -> Result<(PathBuf, PathBuf), CaError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(
        ".{}.tmp.{}",
        name.unwrap_or_default(),
        std::process::id()
    ));
    // A leftover from a crashed run of a process with the same pid is ours to replace.
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(io_error("remove stale temporary file", &tmp)(e))
        }
        _ => {}
    }
    let write = |mut file: File| -> io::Result<()> {
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(contents.as_bytes())?;
        file.sync_all()
    };
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .and_then(write);
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io_error("write", &tmp)(e));
    }
    Ok((tmp, path.to_path_buf()))
}

fn commit(tmp: &Path, path: &Path) -> Result<(), CaError> {
    fs::rename(tmp, path).map_err(io_error("replace", path))
}

fn sync_dir(dir: &Path) -> Result<(), CaError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("sync directory", dir))
}

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CaError + 'a {
    move |source| CaError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}
