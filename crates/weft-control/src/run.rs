//! Starting the control plane: load and validate the configuration, open the CA, bind the
//! gRPC and admin listeners, then serve until shut down.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use weft_identity::{Authority, Credentials, SpiffeId};
use weft_proto::weft::identity_server::IdentityServer as IdentityGrpc;
use weft_proto::xds::AggregatedDiscoveryServiceServer;

use crate::admin::Admin;
use crate::etcd::ca::SharedCa;
use crate::etcd::seal::SealKey;
use crate::etcd::singleton::Leadership;
use crate::identity::{Ca, IdentityServer};
use crate::metrics::Metrics;
use crate::opening::{Opened, StoreConfig};
use crate::serve::MAX_REQUEST_BYTES;
use crate::store::Store;
use crate::tokens::{TokenStore, Tokens};

/// The control plane's own serving certificate lives this long and is re-issued at half-life.
const SERVING_CERT_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Clone, Debug)]
pub struct ControlConfig {
    /// The directory of YAML, or etcd.
    pub store: StoreConfig,
    pub state_dir: PathBuf,
    pub grpc_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    /// Lifetime of the certificates issued to proxies.
    pub cert_ttl: Duration,
    /// A CA supplied by the user (cert-manager style PEM files) instead of a generated root.
    pub ca: Option<CaFiles>,
    /// With the etcd store and no `ca`: the key that seals the shared CA's key in etcd (the
    /// same file on every replica).
    pub ca_seal_key: Option<PathBuf>,
    /// Where to keep the proxies' scrape targets for Prometheus's `file_sd_configs`.
    pub file_sd: Option<PathBuf>,
    /// How often every proxy's golden metrics are scraped for `weft stat`.
    pub stat_interval: Duration,
}

#[derive(Clone, Debug)]
pub struct CaFiles {
    /// The signing certificate (a root or an intermediate), possibly followed by its issuers.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The roots to trust; required when `cert` is an intermediate.
    pub bundle: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("the configuration in {dir} is invalid:\n{errors}")]
    InvalidConfig { dir: String, errors: String },
    #[error("state directory {dir}: {source}")]
    State { dir: String, source: std::io::Error },
    #[error("etcd: {0}")]
    Etcd(String),
    #[error("certificate authority: {0}")]
    Ca(String),
    #[error("join tokens: {0}")]
    Tokens(#[from] crate::tokens::TokenError),
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        addr: SocketAddr,
        what: &'static str,
        source: std::io::Error,
    },
}

/// The SPIFFE id the control plane serves as; proxies check it exactly.
pub fn control_id(trust_domain: &str) -> Result<SpiffeId, ControlError> {
    SpiffeId::new(
        trust_domain,
        weft_proto::types::CONTROL_NAMESPACE,
        weft_proto::types::CONTROL_SERVICE_ACCOUNT,
    )
    .map_err(|e| ControlError::Ca(e.to_string()))
}

/// Opens the CA: the user's files; with etcd, the CA every replica shares (created by the
/// first); otherwise the state directory's root (created on first start).
async fn open_ca(
    config: &ControlConfig,
    trust_domain: &str,
    etcd: Option<&crate::etcd::Etcd>,
) -> Result<(Authority, Option<SharedCa>), ControlError> {
    crate::state::private_dir(&config.state_dir).map_err(|source| ControlError::State {
        dir: config.state_dir.display().to_string(),
        source,
    })?;
    match (&config.ca, etcd) {
        (None, Some(etcd)) => {
            let path = config.ca_seal_key.as_ref().ok_or_else(|| {
                ControlError::Ca(
                    "replicas on etcd share one CA: give every replica the same --ca-seal-key FILE \
                     (`weft ca seal-key > FILE` makes one), or the same --ca-cert/--ca-key files"
                        .into(),
                )
            })?;
            let seal = SealKey::load(path).map_err(|e| ControlError::Ca(e.to_string()))?;
            let shared = SharedCa::new(etcd.clone(), seal, trust_domain);
            let loaded = shared
                .open_or_create()
                .await
                .map_err(|e| ControlError::Ca(e.to_string()))?;
            Ok((loaded.authority, Some(shared)))
        }
        (None, None) => Authority::load_or_create(&config.state_dir, trust_domain)
            .map(|a| (a, None))
            .map_err(|e| ControlError::Ca(e.to_string())),
        (Some(files), _) => open_ca_files(files, trust_domain).map(|a| (a, None)),
    }
}

/// The operator's CA, from PEM files.
fn open_ca_files(files: &CaFiles, trust_domain: &str) -> Result<Authority, ControlError> {
    let read = |p: &PathBuf| {
        std::fs::read_to_string(p).map_err(|e| ControlError::Ca(format!("{}: {e}", p.display())))
    };
    let bundle = files.bundle.as_ref().map(read).transpose()?;
    Authority::from_pem(
        &read(&files.cert)?,
        &read(&files.key)?,
        bundle.as_deref(),
        trust_domain,
    )
    .map_err(|e| ControlError::Ca(e.to_string()))
}

fn serving_tls(ca: &Ca, trust_domain: &str) -> Result<Arc<rustls::ServerConfig>, ControlError> {
    let id = control_id(trust_domain)?;
    let creds: Credentials = ca
        .lock()
        .server_identity(&id, SERVING_CERT_TTL)
        .map_err(|e| ControlError::Ca(e.to_string()))?;
    weft_identity::server_config_client_optional(&creds, trust_domain, &[b"h2"])
        .map_err(|e| ControlError::Ca(e.to_string()))
}

/// How this replica names itself in the singleton election: its host and gRPC address.
fn replica_name(grpc_addr: SocketAddr) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}/{grpc_addr}", host.trim())
}

/// Removes registrations whose runner stopped renewing them.
async fn expire_leases(store: Arc<Store>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let s = store.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || s.expire_leases()).await {
            tracing::error!(error = %e, "lease expiry task failed");
        }
    }
}

pub async fn run(
    config: ControlConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ControlError> {
    let Opened {
        source,
        registry,
        model,
        warnings,
        etcd,
    } = crate::opening::open(&config.store).await?;
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let trust_domain = model.mesh.trust_domain.clone();
    if etcd.is_none() && config.ca_seal_key.is_some() {
        tracing::warn!("--ca-seal-key is for replicas on etcd; the directory store keeps its CA in --state-dir");
    }
    let (authority, shared_ca) =
        open_ca(&config, &trust_domain, etcd.as_ref().map(|(e, _)| e)).await?;
    let bundle = authority.trust_bundle();
    let ca = Arc::new(Ca {
        authority: Mutex::new(authority),
        state_dir: config.state_dir.clone(),
        shared: shared_ca.clone(),
    });
    if shared_ca.is_some() {
        ca.write_bundle_file();
    }
    // With etcd, every replica redeems what any minted.
    let tokens = match &etcd {
        Some((e, _)) => Tokens::Etcd(Box::new(e.clone())),
        None => Tokens::Dir(Arc::new(TokenStore::open(&config.state_dir)?)),
    };
    let metrics = Arc::new(Metrics::new());
    let store = Arc::new(Store::new(
        source,
        registry,
        model,
        warnings,
        bundle,
        metrics.clone(),
    ));
    let tls = Arc::new(ArcSwap::new(serving_tls(&ca, &trust_domain)?));

    let bind = |addr: SocketAddr, what: &'static str| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| ControlError::Bind { addr, what, source })
    };
    let grpc_listener = bind(config.grpc_addr, "gRPC").await?;
    let admin_listener = bind(config.admin_addr, "admin").await?;

    let admin_token =
        crate::state::admin_token(&config.state_dir).map_err(|source| ControlError::State {
            dir: config.state_dir.display().to_string(),
            source,
        })?;
    let connected = Arc::new(crate::connected::Connected::default());
    let leadership = etcd.as_ref().map(|_| Leadership::default());
    let ledger = crate::audit::ledger::Ledger::open(Some(config.state_dir.clone()));
    let dialer = Arc::new(crate::proxy_route::ProxyDialer::new(ca.clone()));
    let stats = Arc::new(crate::stats::Stats::new(
        config.stat_interval,
        ledger,
        dialer.clone(),
    ));
    let ads = AggregatedDiscoveryServiceServer::new(crate::xds::Ads {
        published: store.subscribe(),
        metrics: metrics.clone(),
        connected: connected.clone(),
        admin_digest: weft_identity::AdminDigest::of_token(&admin_token).to_hex(),
    })
    .max_decoding_message_size(MAX_REQUEST_BYTES);
    let identity = IdentityGrpc::new(IdentityServer {
        ca: ca.clone(),
        tokens: tokens.clone(),
        published: store.subscribe(),
        cert_ttl: config.cert_ttl,
        metrics: metrics.clone(),
    })
    .max_decoding_message_size(MAX_REQUEST_BYTES);
    let grpc = crate::serve::router(ads, identity);
    let admin = Arc::new(Admin {
        store: store.clone(),
        ca: ca.clone(),
        metrics,
        tokens: tokens.clone(),
        admin_token,
        connected,
        stats: stats.clone(),
        dialer,
        etcd: etcd.as_ref().map(|(e, _)| e.clone()),
        leadership: leadership.clone(),
    });
    tracing::info!(
        grpc = %config.grpc_addr, admin = %config.admin_addr, state = %config.state_dir.display(),
        store = %store.status().config_dir,
        %trust_domain, "control plane serving"
    );
    let refresh = {
        let (ca, tls, td) = (ca.clone(), tls.clone(), trust_domain.clone());
        async move {
            loop {
                tokio::time::sleep(SERVING_CERT_TTL / 2).await;
                match serving_tls(&ca, &td) {
                    Ok(config) => tls.store(config),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot renew the control plane's serving certificate")
                    }
                }
            }
        }
    };
    let mut tasks = vec![
        tokio::spawn(crate::serve::serve(grpc_listener, tls, grpc)),
        tokio::spawn(crate::admin::serve(admin_listener, admin)),
        tokio::spawn(crate::jwks::run(store.clone())),
        tokio::spawn(refresh),
        tokio::spawn(stats.run(store.clone())),
    ];
    match (&config.store, etcd) {
        // etcd ends registrations itself (their leases); the watch brings every change.
        (_, Some((etcd, revision))) => {
            if let Some(shared) = shared_ca.clone() {
                tasks.push(tokio::spawn(crate::etcd::ca::follow(
                    shared,
                    ca.clone(),
                    store.clone(),
                    revision,
                )));
            }
            tasks.push(tokio::spawn(crate::etcd::singleton::run(
                etcd.clone(),
                replica_name(config.grpc_addr),
                leadership.clone().unwrap_or_default(),
                shared_ca.clone(),
                config.cert_ttl,
            )));
            tasks.push(tokio::spawn(crate::etcd::sync::follow(
                etcd.client,
                etcd.keys,
                store.clone(),
                revision,
            )));
        }
        (StoreConfig::Dir(dir), None) => {
            tasks.push(tokio::spawn(store.clone().watch(dir.clone())));
            tasks.push(tokio::spawn(expire_leases(store.clone())));
        }
        (StoreConfig::Etcd(_), None) => {}
    }
    if let Some(path) = config.file_sd.clone() {
        tasks.push(tokio::spawn(crate::prometheus_sd::keep_file(
            store.subscribe(),
            path,
        )));
    }
    shutdown.await;
    tracing::info!("control plane shutting down");
    for t in tasks {
        t.abort();
    }
    Ok(())
}
