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
pub mod ca;
pub mod host_credentials;
pub mod hosts;
pub mod keys;
pub mod leases;
pub mod seal;
pub mod singleton;
pub mod stored;
pub mod sync;
pub mod tokens;
mod transport;

use std::path::PathBuf;
use std::time::Duration;

use etcd_client::{Channel, Client};

pub use keys::Keys;

/// How long one etcd request may take before it fails (etcd answers in milliseconds; a
/// partitioned member never answers).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// HTTP/2 pings on the etcd connection: a member that stops answering (partitioned,
/// frozen) is noticed within interval + timeout, and the next request goes elsewhere.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(3);

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

impl EtcdError {
    /// Whether the same request may succeed in a moment: etcd is electing a leader (a member
    /// died; a request proposed meanwhile can hang until our timeout), or the connection to a
    /// member broke (the next request dials another member).
    pub fn is_transient(&self) -> bool {
        match self {
            EtcdError::Client(etcd_client::Error::TransportError(_)) => true,
            EtcdError::Client(etcd_client::Error::GRpcStatus(status)) => match status.code() {
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => true,
                // tonic's own request timeout.
                tonic::Code::Cancelled => status.message().contains("Timeout expired"),
                tonic::Code::Unknown => {
                    let message = status.message();
                    message.contains("transport error") || message.contains("h2 protocol error")
                }
                _ => false,
            },
            _ => false,
        }
    }
}

/// A connected client and the key layout: what the rest of the control plane uses.
#[derive(Clone)]
pub struct Etcd {
    pub client: Client,
    pub keys: Keys,
}

impl EtcdConfig {
    /// Builds the client. Nothing is dialled yet: the first request connects, and after a
    /// broken connection the next request reconnects, to the next member that answers
    /// ([`transport`]).
    pub async fn connect(&self) -> Result<Etcd, EtcdError> {
        let dialer = transport::Dialer::new(&self.endpoints, self.tls.as_ref())?;
        // tonic wants a URI for the requests' `:authority`; etcd does not look at it, and
        // the connector decides where to dial.
        let channel = tonic::transport::Endpoint::from_static("http://etcd")
            .timeout(REQUEST_TIMEOUT)
            .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
            .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
            .keep_alive_while_idle(true)
            .connect_with_connector_lazy(dialer);
        let client = Client::from_channel(Channel::Tonic(channel), None).await?;
        Ok(Etcd {
            client,
            keys: Keys::new(&self.prefix),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leader_elections_and_broken_connections_are_transient() {
        let status = |s: tonic::Status| EtcdError::Client(etcd_client::Error::GRpcStatus(s));
        assert!(status(tonic::Status::unavailable("etcdserver: leader changed")).is_transient());
        assert!(status(tonic::Status::unknown("transport error")).is_transient());
        assert!(status(tonic::Status::cancelled("Timeout expired")).is_transient());
        assert!(!status(tonic::Status::unknown("something else")).is_transient());
        assert!(!status(tonic::Status::invalid_argument("bad key")).is_transient());
        assert!(!EtcdError::Value("no CA".into()).is_transient());
    }
}
