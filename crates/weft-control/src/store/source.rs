//! Where the declared resources come from: a watched directory (the single-host store) or
//! etcd (replicated control planes, [`crate::etcd`]). Either way each file or key is parsed
//! once per change, and what they declare goes to the same merger and validator.

use std::path::PathBuf;

use weft_api::load_cache::LoadCache;
use weft_api::resources::Resource;
use weft_api::Diagnostics;

use crate::etcd::stored::Stored;
use crate::etcd::Keys;

pub enum Source {
    Dir { dir: PathBuf, cache: LoadCache },
    Etcd { keys: Keys, stored: Stored },
}

impl Source {
    /// Every declared resource, and every problem found reading them.
    pub fn load(&mut self) -> (Vec<Resource>, Diagnostics) {
        match self {
            Source::Dir { dir, cache } => cache.load_dir(dir),
            Source::Etcd { stored, .. } => stored.load(),
        }
    }

    /// Whether the last [`Source::load`] saw anything new.
    pub fn changed(&self) -> bool {
        match self {
            Source::Dir { cache, .. } => cache.changed(),
            // A batch of etcd events always changes something (a key was written).
            Source::Etcd { .. } => true,
        }
    }

    /// For the status page: the directory, or etcd's prefix.
    pub fn describe(&self) -> String {
        match self {
            Source::Dir { dir, .. } => dir.display().to_string(),
            Source::Etcd { keys, .. } => format!("etcd:{}", keys.root()),
        }
    }
}
