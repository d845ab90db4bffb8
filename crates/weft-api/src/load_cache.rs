//! Re-reading a configuration directory after a change without re-parsing the files that did
//! not change. Parsing is most of the cost of a reload (a 10,000-endpoint mesh is about a
//! second of YAML); a change usually touches one small file. Files are still read and
//! compared byte for byte (by digest), so nothing depends on timestamps.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::compile::fnv1a as fnv;
use crate::diagnostic::Diagnostics;
use crate::load::{load_str, read_file, yaml_files};
use crate::resources::Resource;

#[derive(Default)]
pub struct LoadCache {
    files: HashMap<PathBuf, Parsed>,
    /// A digest of every file's path and content at the last load.
    fingerprint: u64,
    changed: bool,
}

struct Parsed {
    digest: u64,
    resources: Vec<Resource>,
    diags: Diagnostics,
}

impl LoadCache {
    /// Like [`crate::load::load_dir`], reusing the parse of every unchanged file.
    pub fn load_dir(&mut self, dir: &Path) -> (Vec<Resource>, Diagnostics) {
        let files = match yaml_files(dir) {
            Ok(f) => f,
            Err(diags) => return (Vec::new(), diags),
        };
        let mut diags = Diagnostics::default();
        self.files.retain(|path, _| files.contains(path));
        let mut fingerprint = fnv(b"");
        let mut resources = Vec::new();
        for file in files {
            let text = match read_file(&file) {
                Ok(t) => t,
                Err(ds) => {
                    self.files.remove(&file);
                    diags.extend(ds);
                    continue;
                }
            };
            let digest = fnv(text.as_bytes());
            fingerprint = fnv(format!("{fingerprint:x}{}{digest:x}", file.display()).as_bytes());
            let parsed = match self.files.get(&file) {
                Some(p) if p.digest == digest => p,
                _ => {
                    let (rs, ds) = load_str(&file, &text);
                    self.files.insert(
                        file.clone(),
                        Parsed {
                            digest,
                            resources: rs,
                            diags: ds,
                        },
                    );
                    match self.files.get(&file) {
                        Some(p) => p,
                        None => continue,
                    }
                }
            };
            resources.extend(parsed.resources.iter().cloned());
            diags.extend(parsed.diags.clone());
        }
        self.changed = fingerprint != self.fingerprint;
        self.fingerprint = fingerprint;
        (resources, diags)
    }

    /// Whether the last [`LoadCache::load_dir`] saw any difference from the one before (a
    /// periodic rescan usually sees none).
    pub fn changed(&self) -> bool {
        self.changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_files_are_reused_and_changes_are_seen() {
        let dir = std::env::temp_dir().join(format!("weft-load-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let svc = |name: &str| {
            format!("apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec:\n  ports: [{{port: 80}}]\n")
        };
        std::fs::write(dir.join("a.yaml"), svc("a")).expect("write");
        std::fs::write(dir.join("b.yaml"), svc("b")).expect("write");
        let mut cache = LoadCache::default();
        let (rs, _) = cache.load_dir(&dir);
        assert_eq!(rs.len(), 2);
        assert!(cache.changed());
        cache.load_dir(&dir);
        assert!(!cache.changed(), "nothing changed");
        std::fs::write(dir.join("b.yaml"), svc("c")).expect("rewrite");
        let (rs, _) = cache.load_dir(&dir);
        let names: Vec<String> = rs.iter().map(|r| r.meta().name.value.clone()).collect();
        assert_eq!(names, vec!["a".to_string(), "c".to_string()]);
        assert!(cache.changed());
        std::fs::remove_file(dir.join("a.yaml")).expect("remove");
        assert_eq!(cache.load_dir(&dir).0.len(), 1);
        assert_eq!(cache.files.len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
