//! Starting and stopping a proxy: load the configuration, bind the listeners, hand each side
//! the inputs it needs, serve, and on shutdown stop accepting, let in-flight requests finish
//! within the drain timeout, return. Wiring only: nothing imports this module.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use weft_api::compile::ProxyIdentity;

use crate::access_log::AccessLog;
use crate::admin::Admin;
use crate::config::ProxyConfig;
use crate::control::discovery::Discovery;
use crate::drain;
use crate::http::server::Limits;
use crate::inbound::Inbound;
use crate::install::{load_view, Installer, LoadError};
use crate::mesh::MeshTls;
use crate::metrics::Metrics;
use crate::outbound::Outbound;
use crate::state::{Registry, Snapshot};
use crate::status::Status;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Load(#[from] LoadError),
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        addr: SocketAddr,
        what: &'static str,
        source: std::io::Error,
    },
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
    let metrics = Metrics::new();
    let tls = Arc::new(MeshTls::new(config.control.is_some()));
    let registry = Arc::new(Registry::new(tls.clone()));
    let (changes, changed) = tokio::sync::watch::channel(0u64);
    let installer = Arc::new(Installer {
        state: Arc::new(ArcSwap::from_pointee(Snapshot::empty(&identity.namespace))),
        status: Arc::new(Status::default()),
        metrics: metrics.clone(),
        registry: registry.clone(),
        identity: identity.clone(),
        tracers: crate::trace::Tracers::new(metrics.clone(), &identity.namespace),
        changes,
    });
    match &config.control {
        // With a control plane the proxy starts empty and not ready, and says why on /ready.
        Some(control) => installer.status.set_waiting(format!(
            "waiting for the control plane at {}",
            control.replicas.describe()
        )),
        None => {
            let (dir, who) = (config.config_dir.clone(), identity.clone());
            let view = tokio::task::spawn_blocking(move || load_view(&dir, &who))
                .await
                .unwrap_or_else(|e| {
                    Err(LoadError::InvalidConfig {
                        dir: config.config_dir.display().to_string(),
                        diagnostics: e.to_string(),
                    })
                })?;
            installer.swap_in(view);
            let snapshot = installer.state.load();
            tracing::info!(version = %snapshot.view.version, services = snapshot.services.len(), "configuration loaded");
        }
    }

    let outbound_listener = bind(config.outbound_addr, "outbound").await?;
    let inbound_listener = bind(config.inbound_addr, "inbound").await?;
    let admin_listener = bind(config.admin_addr, "admin").await?;

    let (drain, watch) = drain::channel();
    let (discovery, subscriptions) = match &config.control {
        Some(_) => {
            let (d, rx) = Discovery::new();
            (Some(d), Some(rx))
        }
        None => (None, None),
    };
    let access_log = config
        .access_log
        .then(|| AccessLog::stdout(metrics.clone()));
    let limits = Limits {
        header_read_timeout: config.header_read_timeout,
        keep_alive_timeout: config.keep_alive_timeout,
        max_header_bytes: config.max_header_bytes,
        max_headers: config.max_headers,
    };
    let access_log_at_exit = access_log.clone();
    let state = installer.state.clone();
    let tap = Arc::new(crate::tap::Tap::default());
    let outbound = Arc::new(Outbound {
        tap: tap.clone(),
        state: state.clone(),
        metrics: metrics.clone(),
        registry,
        access_log: access_log.clone(),
        limits,
        drain: watch.clone(),
        discovery: discovery.clone(),
    });
    let inbound = Arc::new(Inbound {
        tap: tap.clone(),
        state: state.clone(),
        metrics: metrics.clone(),
        tls: tls.clone(),
        access_log: access_log.clone(),
        limits,
        drain: watch.clone(),
        app_ip: config.app_ip,
        ports: Default::default(),
        changes: changed,
        open: Default::default(),
    });
    let admin = Arc::new(Admin {
        state,
        status: installer.status.clone(),
        metrics,
        drain: watch.clone(),
        tap,
        tls: tls.clone(),
        admin_digest: config.admin_digest,
    });
    tracing::info!(
        outbound = %config.outbound_addr, inbound = %config.inbound_addr, admin = %config.admin_addr,
        "proxy serving"
    );
    let mut tasks = vec![
        tokio::spawn(crate::outbound::serve(outbound_listener, outbound)),
        tokio::spawn(crate::inbound::serve(inbound_listener, inbound)),
        tokio::spawn(crate::admin::serve(admin_listener, admin)),
    ];
    match (config.control, discovery, subscriptions) {
        (Some(control), Some(discovery), Some(subscriptions)) => {
            let settings = Arc::new(control);
            let renew_now = Arc::new(tokio::sync::Notify::new());
            let certs = crate::control::certs::Certs {
                settings: settings.clone(),
                tls: tls.clone(),
                renew_now: renew_now.clone(),
            };
            let xds = crate::control::xds::XdsClient {
                settings,
                sink: installer,
                tls,
                drain: watch,
                discovery,
                subscriptions,
                renew_now,
            };
            tasks.push(tokio::spawn(certs.run()));
            tasks.push(tokio::spawn(xds.run()));
        }
        _ => tasks.push(tokio::spawn(crate::watch::run(
            config.config_dir,
            installer,
            watch,
        ))),
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
    // Every access-log line of the requests that finished, written before the process ends.
    if let Some(log) = &access_log_at_exit {
        if !log.flush(Duration::from_secs(2)).await {
            tracing::warn!("access log lines still queued at exit could not be written");
        }
    }
    for t in tasks {
        t.abort();
    }
    Ok(())
}
