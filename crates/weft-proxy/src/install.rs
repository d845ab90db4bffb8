//! Installing configuration: a view (from the control plane, or loaded from a directory) is
//! compiled into a [`Snapshot`] off the request path and swapped in whole; requests in flight
//! finish on the snapshot they started with. A directory that fails to load leaves the last
//! good configuration in effect and says why on `/ready` and `/config`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use weft_api::compile::{compile, ProxyIdentity};
use weft_api::view::ProxyView;

use crate::control::ViewSink;
use crate::metrics::{Metrics, ResultLabels};
use crate::state::{Registry, Shared, Snapshot};
use crate::status::Status;

/// Everything needed to turn a view into the current snapshot.
pub struct Installer {
    pub state: Shared,
    pub status: Arc<Status>,
    pub metrics: Arc<Metrics>,
    pub registry: Arc<Registry>,
    pub identity: ProxyIdentity,
    /// The span exporters of the tracing settings in use.
    pub tracers: crate::trace::Tracers,
    /// Bumped with every snapshot swapped in: long-lived connections decide again.
    pub changes: tokio::sync::watch::Sender<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("the configuration in {dir} is invalid:\n{diagnostics}")]
    InvalidConfig { dir: String, diagnostics: String },
    #[error("{0}")]
    Compile(#[from] weft_api::compile::CompileError),
}

/// Loads and compiles the proxy's view from a directory.
pub fn load_view(dir: &Path, who: &ProxyIdentity) -> Result<ProxyView, LoadError> {
    let (model, diags) = weft_api::validate::load_and_build(dir);
    for w in diags.warnings() {
        tracing::warn!("{w}");
    }
    let Some(model) = model else {
        return Err(LoadError::InvalidConfig {
            dir: dir.display().to_string(),
            diagnostics: diags.to_string(),
        });
    };
    Ok(compile(&model, who)?)
}

impl Installer {
    /// Builds the snapshot of a valid view and makes it current; true if it is the first.
    pub fn swap_in(&self, view: ProxyView) -> bool {
        let mut snapshot = Snapshot::build(
            view,
            &self.identity.namespace,
            &self.metrics,
            &self.registry,
        );
        snapshot.tracer = self.tracers.for_view(
            snapshot.mesh.tracing.as_ref(),
            snapshot.view.workload.as_ref(),
        );
        self.state.store(Arc::new(snapshot));
        self.changes.send_modify(|generation| *generation += 1);
        let first = self.status.set_ready();
        self.count("ok");
        self.metrics.config_timestamp.set(unix_now());
        first
    }

    fn count(&self, result: &'static str) {
        self.metrics
            .config_reloads
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    /// Reloads a directory after a change: swaps in a valid config, keeps the old one on any
    /// error.
    pub fn reload(&self, dir: &Path) {
        let started = Instant::now();
        match load_view(dir, &self.identity) {
            Ok(view) => {
                if view.version == self.state.load().view.version {
                    self.count("unchanged");
                    return;
                }
                let version = view.version.clone();
                self.swap_in(view);
                tracing::info!(%version, elapsed = ?started.elapsed(), "configuration reloaded");
            }
            Err(e) => {
                self.count("rejected");
                tracing::error!(
                    "configuration change rejected; the previous configuration stays in effect:\n{e}"
                );
                self.status
                    .set_rejected(e.to_string().lines().map(str::to_string).collect());
            }
        }
    }
}

impl ViewSink for Installer {
    /// A view from the control plane; requests in flight keep the old one.
    fn install(&self, view: ProxyView) {
        if view.version == self.state.load().view.version && self.status.is_ready() {
            return;
        }
        let version = view.version.clone();
        if self.swap_in(view) {
            tracing::info!(%version, "configuration received from the control plane; ready");
        } else {
            tracing::debug!(%version, "configuration updated");
        }
    }

    fn waiting(&self, why: String) {
        self.status.set_waiting(why);
    }

    fn push_rejected(&self) {
        self.metrics
            .proxy_error(crate::metrics::INBOUND, "xds-nack");
    }

    fn held(
        &self,
        resources: Vec<crate::control::resources::HeldResource>,
        admin: Option<weft_identity::AdminDigest>,
    ) {
        self.status.set_held(resources, admin);
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
