//! How the control plane reaches a proxy's admin endpoint.
//!
//! A proxy on the control plane's own network is dialled at its admin address: `/metrics` in
//! plaintext (it is open), `/config` and `/tap` over mutual TLS when the proxy has its
//! certificate (the token in plaintext before), because the proxy knows the admin token of
//! the replica it is connected to only, while every replica proves the control plane's
//! identity. A proxy on a joined host is not dialled: workload blocks are not routed between hosts, and each host opens one
//! port, its tunnel. There the control plane names the proxy's admin port in the TLS server
//! name (`10-213-2-5.admin.weft`); the tunnel splices the connection to that port, which
//! speaks mutual TLS. The control plane presents its own certificate (its serving identity,
//! from its own CA) and accepts only the workload's SPIFFE id, so `/metrics`, `/config` and
//! `/tap` cross hosts encrypted, and the admin token travels inside the TLS.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weft_identity::{Credentials, ExpectedPeer, SpiffeId};

use crate::identity::Ca;

/// How long the control plane's client certificate is valid; it is minted again after half.
const CLIENT_CERT_TTL: Duration = Duration::from_secs(24 * 3600);

/// Where a proxy's admin endpoint is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyRoute {
    /// Its admin address, routed from here; the workload's identity, when it has one, for
    /// mutual TLS.
    Direct {
        admin: SocketAddr,
        id: Option<SpiffeId>,
    },
    /// Through its host's tunnel, over mutual TLS with the proxy.
    Tunnel {
        /// The host's tunnel.
        tunnel: SocketAddr,
        /// The proxy's admin address on its host.
        admin: SocketAddr,
        /// The workload's identity, which the proxy's certificate must name.
        id: SpiffeId,
    },
}

impl ProxyRoute {
    /// The proxy's admin address, however it is reached.
    pub fn admin_addr(&self) -> SocketAddr {
        match self {
            ProxyRoute::Direct { admin: a, .. } | ProxyRoute::Tunnel { admin: a, .. } => *a,
        }
    }

    /// The tunnel it is reached through, if any.
    pub fn tunnel(&self) -> Option<SocketAddr> {
        match self {
            ProxyRoute::Direct { .. } => None,
            ProxyRoute::Tunnel { tunnel, .. } => Some(*tunnel),
        }
    }
}

impl fmt::Display for ProxyRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyRoute::Direct { admin, .. } => write!(f, "{admin}"),
            ProxyRoute::Tunnel { tunnel, admin, .. } => {
                write!(f, "{admin} (through the tunnel at {tunnel})")
            }
        }
    }
}

/// The control plane's TLS client for proxies behind a tunnel: its certificate, minted from
/// its own CA when first needed and again when half its life has passed.
pub struct ProxyDialer {
    ca: Arc<Ca>,
    /// Locked only to read or replace the cached certificate, never while dialling.
    minted: Mutex<Option<(Instant, Arc<Credentials>)>>,
}

impl ProxyDialer {
    pub fn new(ca: Arc<Ca>) -> ProxyDialer {
        ProxyDialer {
            ca,
            minted: Mutex::new(None),
        }
    }

    /// A TLS client configuration that presents the control plane's identity and accepts
    /// only `expected` (HTTP/1.1, as the admin port speaks).
    pub fn client_config(&self, expected: &SpiffeId) -> Result<Arc<rustls::ClientConfig>, String> {
        let creds = self.credentials()?;
        weft_identity::client_config(
            &creds,
            ExpectedPeer::Exactly(expected.clone()),
            &[b"http/1.1"],
        )
        .map_err(|e| format!("the control plane's TLS client: {e}"))
    }

    fn credentials(&self) -> Result<Arc<Credentials>, String> {
        let mut minted = self.minted.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, creds)) = minted.as_ref() {
            if at.elapsed() < CLIENT_CERT_TTL / 2 {
                return Ok(creds.clone());
            }
        }
        let authority = self.ca.lock();
        let id = crate::run::control_id(authority.trust_domain()).map_err(|e| e.to_string())?;
        let creds = authority
            .server_identity(&id, CLIENT_CERT_TTL)
            .map(Arc::new)
            .map_err(|e| format!("minting the control plane's client certificate: {e}"))?;
        *minted = Some((Instant::now(), creds.clone()));
        Ok(creds)
    }
}

/// The route to the proxy of a workload at `address`, whose identity is `id`: through
/// `tunnel` (a joined host's) when it has one and the identity is known; directly otherwise.
pub fn route_to(
    address: IpAddr,
    admin_port: u16,
    tunnel: Option<SocketAddr>,
    id: Option<SpiffeId>,
) -> ProxyRoute {
    let admin = SocketAddr::new(address, admin_port);
    match (tunnel, id) {
        (Some(tunnel), Some(id)) => ProxyRoute::Tunnel { tunnel, admin, id },
        (_, id) => ProxyRoute::Direct { admin, id },
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_api_reserves_the_identity_the_control_plane_serves_as() {
        assert_eq!(
            weft_api::validate::CONTROL_NAMESPACE,
            weft_proto::types::CONTROL_NAMESPACE
        );
        assert_eq!(
            weft_api::validate::CONTROL_SERVICE_ACCOUNT,
            weft_proto::types::CONTROL_SERVICE_ACCOUNT
        );
    }
}
