//! Opening the store at start: reading the directory, or reading everything under etcd's
//! prefix (waiting a while for etcd when it is not up yet: replicas and etcd members are
//! often started together). Either way the control plane starts only on a valid model.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use weft_api::model::Model;

use crate::etcd::{sync, Etcd, EtcdConfig, EtcdError};
use crate::registry::Registry;
use crate::run::ControlError;
use crate::store::{Source, StoredChange};

/// How long a replica waits for etcd at start before it gives up.
const ETCD_WAIT: Duration = Duration::from_secs(60);

/// Where the control plane keeps the mesh.
#[derive(Clone, Debug)]
pub enum StoreConfig {
    /// A watched directory of YAML files (one host).
    Dir(PathBuf),
    /// etcd, shared by every replica.
    Etcd(EtcdConfig),
}

/// What was read at start.
pub struct Opened {
    pub source: Source,
    pub registry: Registry,
    pub model: Model,
    pub warnings: Vec<String>,
    /// With etcd: the client, and the revision read at (the watch follows from there).
    pub etcd: Option<(Etcd, i64)>,
}

pub async fn open(store: &StoreConfig) -> Result<Opened, ControlError> {
    match store {
        StoreConfig::Dir(dir) => {
            let d = dir.clone();
            let loaded = tokio::task::spawn_blocking(move || {
                let mut cache = weft_api::load_cache::LoadCache::default();
                crate::store::load(&d, &mut cache).map(|loaded| (loaded, cache))
            })
            .await
            .map_err(|e| ControlError::Ca(e.to_string()))?;
            let ((model, warnings), cache) =
                loaded.map_err(|errors| ControlError::InvalidConfig {
                    dir: dir.display().to_string(),
                    errors: errors.join("\n"),
                })?;
            Ok(Opened {
                source: Source::Dir {
                    dir: dir.clone(),
                    cache,
                },
                registry: Registry::default(),
                model,
                warnings,
                etcd: None,
            })
        }
        StoreConfig::Etcd(config) => {
            let (etcd, changes, revision) = first_read(config).await?;
            let keys = etcd.keys.clone();
            let opened =
                tokio::task::spawn_blocking(move || crate::store::open_etcd(keys, changes))
                    .await
                    .map_err(|e| ControlError::Ca(e.to_string()))?;
            let (source, registry, model, warnings) =
                opened.map_err(|errors| ControlError::InvalidConfig {
                    dir: format!("etcd {} {}", config.endpoints.join(","), etcd.keys.root()),
                    errors: errors.join("\n"),
                })?;
            tracing::info!(endpoints = ?config.endpoints, prefix = %etcd.keys.root(), revision, "read the mesh from etcd");
            Ok(Opened {
                source,
                registry,
                model,
                warnings,
                etcd: Some((etcd, revision)),
            })
        }
    }
}

/// Connects and reads everything, trying again for a while when etcd is not up yet.
async fn first_read(config: &EtcdConfig) -> Result<(Etcd, Vec<StoredChange>, i64), ControlError> {
    let deadline = Instant::now() + ETCD_WAIT;
    let mut wait = Duration::from_millis(200);
    loop {
        let attempt = async {
            let etcd = config.connect().await?;
            let (changes, revision) = sync::read_all(&etcd.client, &etcd.keys).await?;
            Ok::<_, EtcdError>((etcd, changes, revision))
        };
        match attempt.await {
            Ok(read) => return Ok(read),
            Err(e) if Instant::now() + wait < deadline => {
                tracing::warn!(error = %e, endpoints = ?config.endpoints, "cannot read etcd yet; trying again");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                return Err(ControlError::Etcd(format!(
                    "{e} (endpoints {}; waited {ETCD_WAIT:?})",
                    config.endpoints.join(",")
                )))
            }
        }
    }
}
