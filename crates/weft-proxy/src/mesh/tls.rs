//! The proxy's identity material, swapped atomically.
//!
//! A proxy without a control plane (static mode) never has credentials and speaks plaintext
//! between proxies. A proxy with one must have credentials before it dials a peer that
//! expects mTLS; until then such connections fail instead of falling back to plaintext
//! (a STRICT peer would refuse them anyway, and falling back silently is how meshes leak).

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use rustls::{ClientConfig, ServerConfig};
use weft_identity::{Credentials, ExpectedPeer, SpiffeId};

/// ALPN of mesh connections: tells a Weft inbound from application TLS.
pub const ALPN: &[u8] = b"weft/1";

pub struct Current {
    pub creds: Arc<Credentials>,
    pub server: Arc<ServerConfig>,
}

pub struct MeshTls {
    /// True for a proxy configured by a control plane: peers expecting mTLS get it or
    /// nothing.
    pub required: bool,
    current: ArcSwapOption<Current>,
}

#[derive(Debug, thiserror::Error)]
pub enum MeshTlsError {
    #[error("this proxy has no certificate yet (waiting for the control plane's CA)")]
    NoIdentity,
    #[error("{0}")]
    Config(String),
}

impl MeshTls {
    pub fn new(required: bool) -> Self {
        Self {
            required,
            current: ArcSwapOption::empty(),
        }
    }

    /// Installs new credentials (first issue, renewal, or a trust bundle change).
    pub fn install(&self, creds: Credentials) -> Result<(), MeshTlsError> {
        // A peer proxy on this host speaks `weft/1`; one on another host comes through the
        // host's tunnel and speaks HBONE (`h2`).
        let alpn = [ALPN, super::hbone::ALPN];
        let server = weft_identity::server_config(&creds, creds.id.trust_domain(), &alpn)
            .map_err(|e| MeshTlsError::Config(e.to_string()))?;
        self.current.store(Some(Arc::new(Current {
            creds: Arc::new(creds),
            server,
        })));
        Ok(())
    }

    pub fn current(&self) -> Option<Arc<Current>> {
        self.current.load_full()
    }

    /// The proxy's own SPIFFE id, once it has one.
    pub fn id(&self) -> Option<SpiffeId> {
        self.current.load().as_ref().map(|c| c.creds.id.clone())
    }

    /// A client configuration that accepts exactly `peer`. `Ok(None)`: plaintext (static
    /// mode).
    pub fn client_for(&self, peer: &SpiffeId) -> Result<Option<Arc<ClientConfig>>, MeshTlsError> {
        match self.current.load_full() {
            Some(_) => self.client_for_alpn(peer, ALPN).map(Some),
            None if self.required => Err(MeshTlsError::NoIdentity),
            None => Ok(None),
        }
    }

    /// A client configuration that accepts exactly `peer` and offers `alpn`; mutual TLS or
    /// nothing (HBONE has no plaintext form).
    pub fn client_for_alpn(
        &self,
        peer: &SpiffeId,
        alpn: &[u8],
    ) -> Result<Arc<ClientConfig>, MeshTlsError> {
        let current = self.current.load_full().ok_or(MeshTlsError::NoIdentity)?;
        weft_identity::client_config(&current.creds, ExpectedPeer::Exactly(peer.clone()), &[alpn])
            .map_err(|e| MeshTlsError::Config(e.to_string()))
    }
}
