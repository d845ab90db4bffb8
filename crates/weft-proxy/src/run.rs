//! Starting and stopping a proxy: load the configuration, bind the listeners, serve, and on
//! SIGTERM stop accepting, let in-flight requests finish within the drain timeout, return.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use arc_swap::{ArcSwap, ArcSwapOption};
use tokio::net::TcpListener;
use weft_api::compile::{compile, ProxyIdentity};
use weft_api::view::ProxyView;

use crate::access_log::AccessLog;
use crate::config::ProxyConfig;
use crate::control::discovery::Discovery;
use crate::drain;
use crate::http::server::Limits;
use crate::mesh::MeshTls;
use crate::metrics::{Metrics, ResultLabels};
use crate::state::{Registry, Shared, Snapshot};

/// Everything a connection handler needs, shared by all of them.
pub struct Context {
    pub state: Shared,
    pub metrics: Arc<Metrics>,
    pub registry: Arc<Registry>,
    pub limits: Limits,
    pub access_log: Option<AccessLog>,
    pub drain: drain::Watch,
    pub app_ip: IpAddr,
    pub ports: crate::inbound::Ports,
    pub status: Status,
    pub identity: ProxyIdentity,
    /// On-demand subscriptions, when a control plane configures the proxy.
    pub discovery: Option<Arc<crate::control::discovery::Discovery>>,
}

/// Whether a valid configuration is loaded, and why the last change was rejected.
#[derive(Default)]
pub struct Status {
    ready: AtomicBool,
    rejected: ArcSwapOption<Vec<String>>,
}

impl Status {
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The errors of the last rejected change, if the configuration in use is older.
    pub fn rejected(&self) -> Option<Vec<String>> {
        self.rejected.load_full().map(|v| v.as_ref().clone())
    }

    /// Why the proxy is not ready yet (no configuration from the control plane).
    pub fn set_waiting(&self, why: String) {
        if !self.is_ready() {
            self.rejected.store(Some(Arc::new(vec![why])));
        }
    }
}

/// Swaps in a new view (from the control plane); requests in flight keep the old one.
pub fn install_view(cx: &Context, view: ProxyView) {
    if view.version == cx.state.load().view.version && cx.status.is_ready() {
        return;
    }
    let version = view.version.clone();
    if swap_in(cx, view) {
        tracing::info!(%version, "configuration received from the control plane; ready");
    } else {
        tracing::debug!(%version, "configuration updated");
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the configuration in {dir} is invalid:\n{diagnostics}")]
    InvalidConfig { dir: String, diagnostics: String },
    #[error("{0}")]
    Compile(#[from] weft_api::compile::CompileError),
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        addr: SocketAddr,
        what: &'static str,
        source: std::io::Error,
    },
}

/// Loads and compiles the proxy's view from a directory.
pub fn load_view(dir: &Path, who: &ProxyIdentity) -> Result<ProxyView, RunError> {
    let (model, diags) = weft_api::validate::load_and_build(dir);
    for w in diags.warnings() {
        tracing::warn!("{w}");
    }
    let Some(model) = model else {
        return Err(RunError::InvalidConfig {
            dir: dir.display().to_string(),
            diagnostics: diags.to_string(),
        });
    };
    Ok(compile(&model, who)?)
}

/// Builds the snapshot of a valid view and makes it current; true if it is the first.
fn swap_in(cx: &Context, view: ProxyView) -> bool {
    let snapshot = Snapshot::build(view, &cx.identity.namespace, &cx.metrics, &cx.registry);
    cx.state.store(Arc::new(snapshot));
    cx.status.rejected.store(None);
    let first = !cx.status.ready.swap(true, Ordering::AcqRel);
    cx.metrics
        .config_reloads
        .get_or_create(&ResultLabels { result: "ok" })
        .inc();
    cx.metrics.config_timestamp.set(unix_now());
    first
}

/// Reloads after a change: swaps in a valid config, keeps the old one on any error.
pub fn reload(cx: &Context, dir: &Path) {
    let started = Instant::now();
    match load_view(dir, &cx.identity) {
        Ok(view) => {
            if view.version == cx.state.load().view.version {
                cx.metrics
                    .config_reloads
                    .get_or_create(&ResultLabels {
                        result: "unchanged",
                    })
                    .inc();
                return;
            }
            let version = view.version.clone();
            swap_in(cx, view);
            tracing::info!(%version, elapsed = ?started.elapsed(), "configuration reloaded");
        }
        Err(e) => {
            cx.metrics
                .config_reloads
                .get_or_create(&ResultLabels { result: "rejected" })
                .inc();
            let lines: Vec<String> = e.to_string().lines().map(str::to_string).collect();
            tracing::error!(
                "configuration change rejected; the previous configuration stays in effect:\n{e}"
            );
            cx.status.rejected.store(Some(Arc::new(lines)));
        }
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

async fn bind(addr: SocketAddr, what: &'static str) -> Result<TcpListener, RunError> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    }
    .map_err(|source| RunError::Bind { addr, what, source })?;
    let _ = socket.set_reuseaddr(true);
    socket
        .bind(addr)
        .map_err(|source| RunError::Bind { addr, what, source })?;
    socket
        .listen(1024)
        .map_err(|source| RunError::Bind { addr, what, source })
}

/// Runs a proxy until `shutdown` resolves, then drains. The first configuration must be
/// valid: a proxy never starts on a configuration it cannot explain.
pub async fn run(
    config: ProxyConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), RunError> {
    let identity = ProxyIdentity {
        namespace: config.namespace.clone(),
        workload: config.workload.clone(),
    };
    let dir = config.config_dir.clone();
    let metrics = Metrics::new();
    let tls = Arc::new(MeshTls::new(config.control.is_some()));
    let registry = Arc::new(Registry::new(tls));
    let status = Status::default();
    let snapshot = match &config.control {
        // With a control plane the proxy starts empty and not ready, and says why on /ready.
        Some(control) => {
            status.set_waiting(format!("waiting for the control plane at {}", control.addr));
            Snapshot::empty(&identity.namespace)
        }
        None => {
            let view = {
                let (d, w) = (dir.clone(), identity.clone());
                tokio::task::spawn_blocking(move || load_view(&d, &w))
                    .await
                    .unwrap_or_else(|e| {
                        Err(RunError::InvalidConfig {
                            dir: dir.display().to_string(),
                            diagnostics: e.to_string(),
                        })
                    })?
            };
            let snapshot = Snapshot::build(view, &identity.namespace, &metrics, &registry);
            tracing::info!(version = %snapshot.view.version, services = snapshot.services.len(), "configuration loaded");
            status.ready.store(true, Ordering::Release);
            metrics
                .config_reloads
                .get_or_create(&ResultLabels { result: "ok" })
                .inc();
            metrics.config_timestamp.set(unix_now());
            snapshot
        }
    };

    let outbound = bind(config.outbound_addr, "outbound").await?;
    let inbound = bind(config.inbound_addr, "inbound").await?;
    let admin = bind(config.admin_addr, "admin").await?;

    let (drain, watch) = drain::channel();
    let (discovery, subscriptions) = match &config.control {
        Some(_) => {
            let (d, rx) = Discovery::new();
            (Some(d), Some(rx))
        }
        None => (None, None),
    };
    let cx = Arc::new(Context {
        state: Arc::new(ArcSwap::from_pointee(snapshot)),
        access_log: config
            .access_log
            .then(|| AccessLog::stdout(metrics.clone())),
        metrics,
        registry,
        limits: Limits {
            header_read_timeout: config.header_read_timeout,
            max_header_bytes: config.max_header_bytes,
            max_headers: config.max_headers,
        },
        drain: watch,
        app_ip: config.app_ip,
        ports: Default::default(),
        status,
        identity,
        discovery: discovery.clone(),
    });
    tracing::info!(
        outbound = %config.outbound_addr, inbound = %config.inbound_addr, admin = %config.admin_addr,
        "proxy serving"
    );
    let mut tasks = vec![
        tokio::spawn(crate::outbound::serve(outbound, cx.clone())),
        tokio::spawn(crate::inbound::serve(inbound, cx.clone())),
        tokio::spawn(crate::admin::serve(admin, cx.clone())),
    ];
    match (config.control, discovery, subscriptions) {
        (Some(control), Some(discovery), Some(subscriptions)) => {
            let settings = Arc::new(control);
            let renew_now = Arc::new(tokio::sync::Notify::new());
            let certs = crate::control::certs::Certs {
                settings: settings.clone(),
                tls: cx.registry.tls.clone(),
                renew_now: renew_now.clone(),
            };
            let xds = crate::control::xds::XdsClient {
                settings,
                cx: cx.clone(),
                discovery,
                subscriptions,
                renew_now,
            };
            tasks.push(tokio::spawn(certs.run()));
            tasks.push(tokio::spawn(xds.run()));
        }
        _ => tasks.push(tokio::spawn(crate::watch::run(dir, cx.clone()))),
    }
    shutdown.await;
    tracing::info!(grace = ?config.drain_timeout, "shutting down: no new connections; waiting for in-flight requests");
    let open = drain.drain(config.drain_timeout).await;
    if open > 0 {
        tracing::warn!(
            open,
            "drain timeout passed with connections still open; closing them"
        );
    }
    for t in tasks {
        t.abort();
    }
    Ok(())
}
