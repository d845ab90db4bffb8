//! The replicated store: control-plane replicas on different hosts share the mesh through
//! etcd, and any of them serves every proxy.
//!
//! - resources are written by `weft apply` (validated as a whole first, then written in one
//!   transaction conditioned on the version they were validated against: [`apply`]);
//! - registrations are etcd leases ([`leases`]);
//! - every replica reads everything once and then follows etcd's watch ([`sync`]), building
//!   its model exactly as the directory store does.
//!
//! etcd is reached over plain HTTP or TLS with a client certificate (`--etcd-ca`,
//! `--etcd-cert`, `--etcd-key`), as etcd's own `--client-cert-auth` expects.

pub mod apply;
pub mod keys;
pub mod leases;
pub mod stored;
pub mod sync;
pub mod tokens;

use std::path::PathBuf;
use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};

pub use keys::Keys;

/// How long one etcd request may take before it fails (etcd answers in milliseconds; a
/// partitioned member never answers).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Where etcd is and how to reach it.
#[derive(Clone, Debug)]
pub struct EtcdConfig {
    /// Client URLs (`http://10.0.0.1:2379`, `https://...`).
    pub endpoints: Vec<String>,
    /// Every key Weft writes starts with this (`/weft`).
    pub prefix: String,
    pub tls: Option<EtcdTls>,
}

/// A CA to verify etcd with, and the client certificate to present to it (PEM files).
#[derive(Clone, Debug)]
pub struct EtcdTls {
    pub ca: PathBuf,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error("etcd: {0}")]
    Client(#[from] etcd_client::Error),
    #[error("etcd TLS file {path}: {source}")]
    TlsFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("etcd: {0}")]
    Value(String),
}

/// A connected client and the key layout: what the rest of the control plane uses.
#[derive(Clone)]
pub struct Etcd {
    pub client: Client,
    pub keys: Keys,
}

impl EtcdConfig {
    /// Connects (the client reconnects by itself afterwards, to any of the endpoints).
    pub async fn connect(&self) -> Result<Etcd, EtcdError> {
        let mut options = ConnectOptions::new()
            .with_timeout(REQUEST_TIMEOUT)
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_keep_alive(Duration::from_secs(5), Duration::from_secs(3))
            .with_keep_alive_while_idle(true);
        if let Some(tls) = &self.tls {
            let read = |path: &PathBuf| {
                std::fs::read(path).map_err(|source| EtcdError::TlsFile {
                    path: path.clone(),
                    source,
                })
            };
            let mut t = TlsOptions::new().ca_certificate(Certificate::from_pem(read(&tls.ca)?));
            if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
                t = t.identity(Identity::from_pem(read(cert)?, read(key)?));
            }
            options = options.with_tls(t);
        }
        let client = Client::connect(&self.endpoints, Some(options)).await?;
        Ok(Etcd {
            client,
            keys: Keys::new(&self.prefix),
        })
    }
}
