//! Test fixtures: a CA with helpers to mint credentials, including deliberately bad ones.
//!
//! Compiled only for tests (also gated where `lib.rs` declares it): the `unwrap`s here fail a
//! test on a broken fixture, they never see input from a user or the network.
#![cfg(test)]

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use rcgen::{CertificateParams, DistinguishedName, KeyPair, SanType};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::{generate_key_and_csr, Authority, Credentials, SpiffeId};

/// A CA for one trust domain.
pub(crate) struct Pki {
    pub(crate) ca: Authority,
}

impl Pki {
    pub(crate) fn new(trust_domain: &str) -> Self {
        Self {
            ca: Authority::generate(trust_domain).unwrap(), // ok: test-only fixture (cfg(test)), never sees user or network input
        }
    }

    /// Credentials for `id`, obtained the way a workload does: local key, CSR, `issue`.
    pub(crate) fn creds(&self, id: &SpiffeId) -> Credentials {
        self.creds_with_ttl(id, Duration::from_secs(3600))
    }

    pub(crate) fn creds_with_ttl(&self, id: &SpiffeId, ttl: Duration) -> Credentials {
        let kc = generate_key_and_csr(id).unwrap(); // ok: test-only fixture (cfg(test)), never sees user or network input
        let issued = self.ca.issue(&kc.csr_der, id, ttl).unwrap(); // ok: test-only fixture (cfg(test)), never sees user or network input
        Credentials {
            id: id.clone(),
            chain: issued.chain,
            key: kc.key,
            trust_bundle: self.ca.trust_bundle(),
            not_after: issued.not_after,
        }
    }

    /// Credentials whose leaf expired an hour ago.
    pub(crate) fn expired_creds(&self, id: &SpiffeId) -> Credentials {
        let key = KeyPair::generate().unwrap(); // ok: test-only fixture (cfg(test)), never sees user or network input
        let now = SystemTime::now();
        let issued = self
            .ca
            .sign_leaf_between(
                &key,
                id,
                now - Duration::from_secs(7200),
                now - Duration::from_secs(3600),
            )
            .unwrap(); // ok: test-only fixture (cfg(test)), never sees user or network input
        Credentials {
            id: id.clone(),
            chain: issued.chain,
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            trust_bundle: self.ca.trust_bundle(),
            not_after: issued.not_after,
        }
    }
}

/// A self-signed, non-CA certificate carrying exactly `uris` as URI SANs.
pub(crate) fn leaf_with_sans(uris: &[&str]) -> CertificateDer<'static> {
    let key = KeyPair::generate().unwrap(); // ok: test-only fixture (cfg(test)), never sees user or network input
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.subject_alt_names = uris
        .iter()
        .map(|u| SanType::URI(u.to_string().try_into().unwrap())) // ok: test-only fixture (cfg(test)), never sees user or network input
        .collect();
    params.self_signed(&key).unwrap().der().clone() // ok: test-only fixture (cfg(test)), never sees user or network input
}

pub(crate) fn id(trust_domain: &str, ns: &str, sa: &str) -> SpiffeId {
    SpiffeId::new(trust_domain, ns, sa).unwrap() // ok: test-only fixture (cfg(test)), never sees user or network input
}

/// A fresh directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "weft-identity-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&dir);
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
