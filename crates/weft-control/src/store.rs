//! The embedded store: a watched directory of YAML, validated as a whole on every change.
//!
//! A valid change is published to every xDS session (a `watch` channel: a session that is
//! busy sees only the latest model, so bursts of changes coalesce). An invalid change is
//! logged with every error and kept for the admin endpoint and `weft check`; the last valid
//! model stays published.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use rustls_pki_types::CertificateDer;
use serde::Serialize;
use tokio::sync::watch;
use weft_api::load_cache::LoadCache;
use weft_api::model::Model;
use weft_api::resources::Resource;
use weft_api::watch::DirWatcher;
use weft_api::Diagnostics;

use crate::metrics::{Metrics, ResultLabels};
use crate::published::Published;
use crate::registry::{Registration, Registry, RegistryError, Upsert};
pub(crate) use replicated::open_etcd;
pub use replicated::StoredChange;
pub use source::Source;

/// What the admin endpoint and `weft check` show about the configuration.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreStatus {
    pub config_dir: String,
    pub generation: u64,
    pub loaded_unix: u64,
    /// Resource counts of the model in effect, by kind.
    pub counts: std::collections::BTreeMap<String, usize>,
    /// Errors of the last change, when it was rejected (the model in effect is older).
    pub rejected: Vec<String>,
    pub warnings: Vec<String>,
    /// With the etcd store: `following`, or since when etcd cannot be reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etcd: Option<String>,
    /// RequestAuthentication key sets by URI: `ok` or why the last fetch failed.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub key_sets: std::collections::BTreeMap<String, String>,
}

pub struct Store {
    tx: watch::Sender<Arc<Published>>,
    generation: AtomicU64,
    status: ArcSwap<StoreStatus>,
    metrics: Arc<Metrics>,
    /// Parsed files, so a change re-parses only what changed, and the registered workloads.
    /// One rebuild at a time holds it (file reloads, registrations, lease expiry); never on a
    /// request path.
    inputs: std::sync::Mutex<Inputs>,
}

struct Inputs {
    /// The directory or etcd, each file or key parsed once per change.
    source: Source,
    registry: Registry,
    /// Key sets fetched for RequestAuthentications ([`crate::jwks`]), by URI.
    key_sets: KeySets,
}

/// Fetched key sets by URI: the JSON, or why there is none.
type KeySets = std::collections::BTreeMap<String, Result<String, String>>;

/// Why a registration was not taken.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("the mesh would be invalid with this workload:\n{}", .0.join("\n"))]
    Invalid(Vec<String>),
    #[error("the control plane's configuration directory is invalid (fix it first; the mesh in effect is older):\n{}", .0.join("\n"))]
    Config(Vec<String>),
}

/// Loads and validates a directory; `Err` carries every error, one per line.
pub fn load(dir: &Path, cache: &mut LoadCache) -> Result<(Model, Vec<String>), Vec<String>> {
    build(cache.load_dir(dir), &Registry::default(), &KeySets::new())
}

/// Loads what the source declares and adds the registered workloads, then validates the
/// whole; the model carries the key sets fetched so far.
fn load_with(
    source: &mut Source,
    registry: &Registry,
    key_sets: &KeySets,
) -> Result<(Model, Vec<String>), Vec<String>> {
    build(source.load(), registry, key_sets)
}

/// Adds the registered workloads to what was declared and validates the whole.
fn build(
    (mut resources, mut diags): (Vec<Resource>, Diagnostics),
    registry: &Registry,
    key_sets: &KeySets,
) -> Result<(Model, Vec<String>), Vec<String>> {
    let (registered, more) = registry.resources(&resources);
    resources.extend(registered);
    diags.extend(more);
    let (model, diags) = weft_api::validate::build_loaded((resources, diags));
    let warnings: Vec<String> = diags.warnings().map(|w| w.to_string()).collect();
    match model {
        Some(mut m) => {
            m.fetched_jwks = key_sets.clone();
            Ok((m, warnings))
        }
        None => Err(diags.to_string().lines().map(str::to_string).collect()),
    }
}

impl Store {
    /// A store of `source` (and `registry`, as read with it) publishing `model` as
    /// generation 1.
    pub fn new(
        source: Source,
        registry: Registry,
        model: Model,
        warnings: Vec<String>,
        trust_bundle: Vec<CertificateDer<'static>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let status = StoreStatus {
            config_dir: source.describe(),
            generation: 1,
            loaded_unix: unix_now(),
            counts: counts(&model),
            rejected: Vec::new(),
            warnings,
            key_sets: Default::default(),
            etcd: matches!(source, Source::Etcd { .. }).then(|| "following".to_string()),
        };
        let published = Published::new(1, Arc::new(model), Arc::new(trust_bundle));
        let (tx, _) = watch::channel(Arc::new(published));
        metrics.generation.set(1);
        Self {
            tx,
            generation: AtomicU64::new(1),
            status: ArcSwap::from_pointee(status),
            metrics,
            inputs: std::sync::Mutex::new(Inputs {
                source,
                registry,
                key_sets: KeySets::new(),
            }),
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<Published>> {
        self.tx.subscribe()
    }

    pub fn current(&self) -> Arc<Published> {
        self.tx.borrow().clone()
    }

    pub fn status(&self) -> Arc<StoreStatus> {
        self.status.load_full()
    }

    /// Re-reads the directory (blocking: call from a blocking thread).
    pub fn reload(&self) {
        let started = Instant::now();
        let mut inputs = self.lock_inputs();
        let Inputs {
            source,
            registry,
            key_sets,
        } = &mut *inputs;
        let loaded = load_with(source, registry, key_sets);
        if !source.changed() {
            // A rescan that found the same files: nothing to publish or report.
            return;
        }
        // Published while `inputs` is held: models are published in the order they were
        // built, so an older build never overwrites a newer one.
        match loaded {
            Ok((model, warnings)) => self.accept(model, warnings, started),
            Err(errors) => self.reject(errors),
        }
    }

    /// Records a rejected configuration change; the previous model stays in effect.
    fn reject(&self, errors: Vec<String>) {
        self.metrics
            .reloads
            .get_or_create(&ResultLabels { result: "rejected" })
            .inc();
        tracing::error!(
            "configuration change rejected; the previous model stays in effect:\n{}",
            errors.join("\n")
        );
        let mut status = StoreStatus::clone(&self.status.load());
        status.rejected = errors;
        self.status.store(Arc::new(status));
    }

    /// Registers (or renews) a workload run by `weft run` (blocking). A registration that
    /// would make the mesh invalid is refused and changes nothing.
    pub fn register(
        &self,
        namespace: &str,
        name: &str,
        registration: Registration,
    ) -> Result<Upsert, RegisterError> {
        let started = Instant::now();
        let mut inputs = self.lock_inputs();
        let mut next = inputs.registry.clone();
        let upsert = next.upsert(namespace, name, registration, Instant::now())?;
        if upsert == Upsert::Renewed {
            inputs.registry = next;
            return Ok(upsert);
        }
        let Inputs {
            source,
            registry,
            key_sets,
        } = &mut *inputs;
        match load_with(source, &next, key_sets) {
            Ok((model, warnings)) => {
                *registry = next;
                tracing::info!(workload = %format!("{namespace}/{name}"), "workload registered");
                self.accept(model, warnings, started);
                Ok(upsert)
            }
            // Is it this workload, or the files (an edit the watcher has not reported yet)?
            Err(errors) => match load_with(source, registry, key_sets) {
                Ok(_) => Err(RegisterError::Invalid(errors)),
                Err(file_errors) => {
                    self.reject(file_errors.clone());
                    Err(RegisterError::Config(file_errors))
                }
            },
        }
    }

    /// Removes a registration (blocking) and publishes the mesh without it.
    pub fn deregister(
        &self,
        namespace: &str,
        name: &str,
        owner: Option<&str>,
    ) -> Result<(), RegisterError> {
        let mut inputs = self.lock_inputs();
        inputs.registry.remove(namespace, name, owner)?;
        tracing::info!(workload = %format!("{namespace}/{name}"), "workload deregistered");
        self.rebuild_locked(inputs);
        Ok(())
    }

    /// Drops expired registrations (blocking); rebuilds when any expired.
    pub fn expire_leases(&self) {
        let mut inputs = self.lock_inputs();
        let gone = inputs.registry.expire(Instant::now());
        if gone.is_empty() {
            return;
        }
        tracing::warn!(workloads = ?gone, "registrations expired (their runner stopped renewing them): removed from the mesh");
        self.rebuild_locked(inputs);
    }

    /// The registered workloads, for the admin endpoint.
    pub fn registrations(&self) -> Vec<serde_json::Value> {
        self.lock_inputs().registry.list()
    }

    /// Rebuilds the model from what the store holds (blocking): after a key set changed.
    pub fn rebuild(&self) {
        self.rebuild_locked(self.lock_inputs());
    }

    /// Records a fetch of a key set; true when what the proxies should hold changed. A failed
    /// fetch keeps the last key set that worked (and is only reported).
    pub fn set_key_set(&self, uri: &str, result: Result<String, String>) -> bool {
        let mut inputs = self.lock_inputs();
        let previous = inputs.key_sets.get(uri).cloned();
        let line = match &result {
            Ok(_) => "ok".to_string(),
            Err(e) => e.clone(),
        };
        let mut status = StoreStatus::clone(&self.status.load());
        status.key_sets.insert(uri.to_string(), line);
        self.status.store(Arc::new(status));
        let next = match (result, previous.clone()) {
            (Ok(jwks), _) => Ok(jwks),
            (Err(e), Some(Ok(last))) => {
                tracing::warn!(uri, error = %e, "fetching a key set failed; the last one fetched stays in use");
                Ok(last)
            }
            (Err(e), _) => {
                tracing::error!(uri, error = %e, "fetching a key set failed; tokens it would verify are refused until it arrives");
                Err(e)
            }
        };
        if previous.as_ref() == Some(&next) {
            return false;
        }
        if next.is_ok() {
            tracing::info!(uri, "key set fetched");
        }
        inputs.key_sets.insert(uri.to_string(), next);
        true
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn rebuild_locked(&self, mut inputs: std::sync::MutexGuard<'_, Inputs>) {
        let started = Instant::now();
        let Inputs {
            source,
            registry,
            key_sets,
        } = &mut *inputs;
        match load_with(source, registry, key_sets) {
            Ok((model, warnings)) => self.accept(model, warnings, started),
            // Removing a workload cannot make the mesh invalid, but the files may have become
            // invalid since (an edit the watcher has not reported yet): report it now.
            Err(errors) => self.reject(errors),
        }
        drop(inputs);
    }

    fn lock_inputs(&self) -> std::sync::MutexGuard<'_, Inputs> {
        self.inputs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes a valid model and records it in the status.
    fn accept(&self, model: Model, warnings: Vec<String>, started: Instant) {
        for w in &warnings {
            tracing::warn!("{w}");
        }
        let generation = self.publish(Some(Arc::new(model)), None);
        let mut status = StoreStatus::clone(&self.status.load());
        status.generation = generation;
        status.loaded_unix = unix_now();
        status.counts = counts(&self.current().model);
        status.rejected.clear();
        status.warnings = warnings;
        self.status.store(Arc::new(status));
        self.metrics
            .reloads
            .get_or_create(&ResultLabels { result: "ok" })
            .inc();
        tracing::info!(generation, elapsed = ?started.elapsed(), "configuration published");
    }

    /// Publishes a new trust bundle with the current model (after a CA rotation step).
    pub fn publish_bundle(&self, bundle: Vec<CertificateDer<'static>>) {
        let generation = self.publish(None, Some(Arc::new(bundle)));
        tracing::info!(generation, "trust bundle published");
    }

    /// Publishes a new model, a new bundle, or both; what is not given stays. One step on the
    /// channel, so a bundle published at the same time as a model is never lost.
    fn publish(
        &self,
        model: Option<Arc<Model>>,
        bundle: Option<Arc<Vec<CertificateDer<'static>>>>,
    ) -> u64 {
        let mut generation = 0;
        self.tx.send_modify(|current| {
            generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
            let model = model.unwrap_or_else(|| current.model.clone());
            let bundle = bundle.unwrap_or_else(|| current.trust_bundle.clone());
            *current = Arc::new(Published::new(generation, model, bundle));
        });
        self.metrics.generation.set(generation as i64);
        generation
    }

    /// Watches the directory (of a directory store) until the task is dropped.
    pub async fn watch(self: Arc<Self>, dir: std::path::PathBuf) {
        let mut watcher = DirWatcher::new(&dir);
        loop {
            watcher.changed().await;
            let store = self.clone();
            if let Err(e) = tokio::task::spawn_blocking(move || store.reload()).await {
                tracing::error!(error = %e, "configuration reload task failed");
            }
        }
    }
}

fn counts(model: &Model) -> std::collections::BTreeMap<String, usize> {
    model
        .counts
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect()
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

mod replicated;
mod source;
#[cfg(test)]
mod tests;
