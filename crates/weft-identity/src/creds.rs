//! A workload's credentials: its id, certificate chain, private key and the roots it trusts.
//!
//! This is what the TLS configurations are built from and what a proxy swaps when it
//! renews. Renewal is scheduled at half the certificate's lifetime, as Istio and Linkerd do,
//! so a control-plane outage shorter than half a lifetime never lets a certificate expire.
//!
//! The TLS helpers (`server_config`, `client_config`, `peer_id`, PEM and validity helpers)
//! are re-exported here so that everything needed to use credentials is in one place.

use std::fmt;
use std::time::{Duration, SystemTime};

use rustls_pki_types::{CertificateDer, PrivateKeyDer};

pub use crate::cert::{cert_not_after, cert_not_before, peer_id, CertError};
pub use crate::pem::{parse_pem_certs, pem_encode_certs};
pub use crate::tls::{client_config, server_config, ExpectedPeer, TlsError};

use crate::cert::leaf_spiffe_id;
use crate::spiffe::SpiffeId;

/// The clock skew allowance the CA back-dates `not_before` by; issue time is this much later.
pub(crate) const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// A workload's identity material.
pub struct Credentials {
    /// The identity the leaf certificate proves.
    pub id: SpiffeId,
    /// Leaf first, then intermediates (never the root).
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key (PKCS#8 when produced by this crate).
    pub key: PrivateKeyDer<'static>,
    /// The roots peers' certificates must chain to; more than one during a CA rotation.
    pub trust_bundle: Vec<CertificateDer<'static>>,
    /// When the leaf expires.
    pub not_after: SystemTime,
}

/// Why credentials could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("the certificate chain is empty; the control plane must return at least the leaf")]
    EmptyChain,

    #[error("the leaf certificate is unreadable: {0}")]
    Leaf(#[source] CertError),

    #[error("the leaf certificate does not carry a usable SPIFFE id: {0}")]
    NoId(#[source] crate::tls::PeerCertError),

    #[error(
        "the leaf certificate names {presented}, but credentials for {expected} were requested"
    )]
    WrongId {
        presented: SpiffeId,
        expected: SpiffeId,
    },
}

// === impl Credentials ===

impl Credentials {
    /// Assembles credentials, reading `not_after` from the leaf and checking that the leaf
    /// names `id`, so a mix-up between requests is caught before it is served.
    pub fn new(
        id: SpiffeId,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        trust_bundle: Vec<CertificateDer<'static>>,
    ) -> Result<Self, CredentialsError> {
        let leaf = chain.first().ok_or(CredentialsError::EmptyChain)?;
        let presented = leaf_spiffe_id(leaf).map_err(CredentialsError::NoId)?;
        if presented != id {
            return Err(CredentialsError::WrongId {
                presented,
                expected: id,
            });
        }
        let not_after = cert_not_after(leaf).map_err(CredentialsError::Leaf)?;
        Ok(Self {
            id,
            chain,
            key,
            trust_bundle,
            not_after,
        })
    }

    /// A copy (`PrivateKeyDer` is deliberately not `Clone`, so copies are explicit).
    pub fn clone_key(&self) -> Self {
        Self {
            id: self.id.clone(),
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            trust_bundle: self.trust_bundle.clone(),
            not_after: self.not_after,
        }
    }

    /// When the leaf became valid, or `None` if the chain is empty or unreadable.
    pub fn not_before(&self) -> Option<SystemTime> {
        cert_not_before(self.chain.first()?).ok()
    }

    /// When to renew: halfway between issue (`not_before` plus the CA's clock-skew
    /// allowance) and `not_after`. If the leaf cannot be read, now: renewing early is safe,
    /// serving an unreadable certificate until it expires is not.
    pub fn renew_at(&self) -> SystemTime {
        let Some(not_before) = self.not_before() else {
            return SystemTime::now();
        };
        let issued = (not_before + CLOCK_SKEW).min(self.not_after);
        let lifetime = self
            .not_after
            .duration_since(issued)
            .unwrap_or(Duration::ZERO);
        issued + lifetime / 2
    }
}

impl Clone for Credentials {
    fn clone(&self) -> Self {
        self.clone_key()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("id", &self.id)
            .field("chain_len", &self.chain.len())
            .field("key", &"<elided>")
            .field("trust_bundle_len", &self.trust_bundle.len())
            .field("not_after", &self.not_after)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::Pki;

    #[test]
    fn renews_at_half_life() {
        let pki = Pki::new("td");
        let id = SpiffeId::new("td", "ns", "sa").unwrap();
        let creds = pki.creds_with_ttl(&id, Duration::from_secs(3600));
        let issued = creds.not_before().unwrap() + CLOCK_SKEW;
        assert_eq!(creds.renew_at(), issued + Duration::from_secs(1800));
        assert!(!format!("{creds:?}").contains("Pkcs8"));
    }

    #[test]
    fn new_checks_the_leaf_names_the_id() {
        let pki = Pki::new("td");
        let id = SpiffeId::new("td", "ns", "sa").unwrap();
        let other = SpiffeId::new("td", "ns", "other").unwrap();
        let c = pki.creds(&id);
        let ok = Credentials::new(id.clone(), c.chain.clone(), c.key.clone_key(), vec![]);
        assert_eq!(ok.unwrap().not_after, c.not_after);
        let wrong = Credentials::new(other, c.chain.clone(), c.key.clone_key(), vec![]);
        assert!(matches!(wrong, Err(CredentialsError::WrongId { .. })));
        let empty = Credentials::new(id, vec![], c.key.clone_key(), vec![]);
        assert!(matches!(empty, Err(CredentialsError::EmptyChain)));
    }
}
