//! The control plane's certificate authority.
//!
//! The CA turns an authenticated request ("this caller is `spiffe://td/ns/a/sa/b`") plus a
//! CSR into a short-lived leaf certificate. Its root is generated on first start and kept in
//! the state directory, or supplied by the operator (for example a cert-manager issued
//! intermediate chaining to an organisation's root). Roots can be rotated without an outage:
//! `rotate` starts signing with a new root while the bundle still trusts the old one, and
//! `finish_rotation` drops the old root once every workload has renewed.

mod error;
mod params;
mod request;
mod rotation;
mod signer;
mod store;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use rcgen::{KeyPair, PublicKeyData};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};

pub use self::error::CaError;
use self::signer::Signer;
use self::store::{Contents, Files};
use crate::creds::{Credentials, CLOCK_SKEW};
use crate::pem::pem_encode_certs;
use crate::spiffe::SpiffeId;
use crate::time::truncate_to_secs;
use crate::tls;

/// Warn when a supplied CA certificate has less than this much life left.
const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 24 * 3600);

/// The certificate authority of the control plane.
pub struct Authority {
    trust_domain: String,
    signer: Signer,
    /// The roots workloads trust: the signing root first, then any older root kept during
    /// a rotation.
    bundle: Vec<CertificateDer<'static>>,
    /// Whether Weft generated the root (and so may rotate it), as opposed to an operator.
    managed: bool,
}

/// A CA as PEM text: what a store keeps to load it again with
/// [`Authority::from_managed_pem`]. `key` is the signing key in the clear: seal it or keep
/// it in a private file.
pub struct CaPem {
    /// The signing certificate, then its issuers.
    pub cert: String,
    pub key: String,
    /// The roots workloads trust.
    pub bundle: String,
}

/// A certificate issued by the CA.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The leaf, then intermediates (never the root).
    pub chain: Vec<CertificateDer<'static>>,
    /// When the leaf expires.
    pub not_after: SystemTime,
}

// === impl Authority ===

impl Authority {
    /// A new self-signed ECDSA P-256 root for `trust_domain`, valid for ten years. Nothing is
    /// written to disk; see `load_or_create` for a CA that survives restarts.
    pub fn generate(trust_domain: &str) -> Result<Authority, CaError> {
        SpiffeId::validate_trust_domain(trust_domain)?;
        let signer = signer::generate_root(trust_domain, SystemTime::now())?;
        let bundle = vec![signer.cert().clone()];
        Ok(Self {
            trust_domain: trust_domain.to_string(),
            signer,
            bundle,
            managed: true,
        })
    }

    /// A CA supplied by the operator: `cert_chain_pem` holds the signing (root or
    /// intermediate) certificate followed by its issuers, `key_pem` its private key, and
    /// `trust_bundle_pem` the roots. Without a bundle, the signing certificate must be a
    /// self-signed root and becomes the bundle.
    pub fn from_pem(
        cert_chain_pem: &str,
        key_pem: &str,
        trust_bundle_pem: Option<&str>,
        trust_domain: &str,
    ) -> Result<Authority, CaError> {
        Self::load(
            cert_chain_pem,
            key_pem,
            trust_bundle_pem,
            trust_domain,
            false,
        )
    }

    /// A CA Weft generated and stored elsewhere (etcd), loaded again: it may be rotated.
    pub fn from_managed_pem(
        cert_chain_pem: &str,
        key_pem: &str,
        trust_bundle_pem: &str,
        trust_domain: &str,
    ) -> Result<Authority, CaError> {
        Self::load(
            cert_chain_pem,
            key_pem,
            Some(trust_bundle_pem),
            trust_domain,
            true,
        )
    }

    /// The CA kept in `dir/ca/`: loaded if present, otherwise generated and stored.
    pub fn load_or_create(dir: &Path, trust_domain: &str) -> Result<Authority, CaError> {
        SpiffeId::validate_trust_domain(trust_domain)?;
        let files = Files::new(dir);
        if let Some(stored) = files.load()? {
            let ca = Self::load(
                &stored.cert,
                &stored.key,
                Some(&stored.bundle),
                trust_domain,
                true,
            )
            .map_err(|e| CaError::State {
                dir: files.dir.clone(),
                source: Box::new(e),
            })?;
            tracing::info!(dir = %files.dir.display(), roots = ca.bundle.len(), "loaded the CA");
            return Ok(ca);
        }
        let ca = Self::generate(trust_domain)?;
        files.save(&ca.contents())?;
        tracing::info!(dir = %files.dir.display(), %trust_domain, "created a new root CA");
        Ok(ca)
    }

    fn load(
        chain_pem: &str,
        key_pem: &str,
        bundle_pem: Option<&str>,
        trust_domain: &str,
        managed: bool,
    ) -> Result<Authority, CaError> {
        SpiffeId::validate_trust_domain(trust_domain)?;
        let (signer, bundle) = signer::supplied(chain_pem, key_pem, bundle_pem, SystemTime::now())?;
        let ca = Self {
            trust_domain: trust_domain.to_string(),
            signer,
            bundle,
            managed,
        };
        ca.self_test()?;
        Ok(ca)
    }

    /// Issues a probe leaf and verifies it against the bundle, so a CA whose certificates
    /// would not verify (wrong bundle, unreproducible issuer name) fails at start-up with a
    /// reason instead of failing every workload's handshakes later.
    fn self_test(&self) -> Result<(), CaError> {
        let probe = SpiffeId::new(&self.trust_domain, "weft-system", "ca-self-test")?;
        let key = KeyPair::generate().map_err(CaError::Sign)?;
        let issued = self.sign_leaf(&key, &probe, Duration::from_secs(60))?;
        let anchors = tls::trust_anchors(&self.bundle).map_err(CaError::Bundle)?;
        tls::verify_chain(
            &anchors,
            &tls::algorithms(),
            &issued.chain[0],
            &issued.chain[1..],
            UnixTime::now(),
            tls::Usage::Client,
        )
        .map(|_| ())
        .map_err(CaError::Untrusted)
    }

    /// The trust domain this CA issues ids in.
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// The roots proxies should trust; more than one during a rotation.
    pub fn trust_bundle(&self) -> Vec<CertificateDer<'static>> {
        self.bundle.clone()
    }

    /// `trust_bundle` as PEM.
    pub fn trust_bundle_pem(&self) -> String {
        pem_encode_certs(&self.bundle)
    }

    /// The certificate that signs leaves.
    pub fn signing_cert(&self) -> &CertificateDer<'static> {
        self.signer.cert()
    }

    /// Whether Weft generated this CA (and so may rotate it).
    pub fn is_managed(&self) -> bool {
        self.managed
    }

    /// When the signing certificate expires; no leaf outlives it.
    pub fn not_after(&self) -> SystemTime {
        self.signer.not_after
    }

    /// Certifies the public key of `csr_der` (a PKCS#10 request whose self-signature must
    /// verify) as `id` for `ttl`. Everything else the CSR asks for is ignored.
    pub fn issue(&self, csr_der: &[u8], id: &SpiffeId, ttl: Duration) -> Result<Issued, CaError> {
        let public_key = request::verified_public_key(csr_der)?;
        self.sign_leaf(&public_key, id, ttl)
    }

    /// Credentials for the control plane's own serving identity, with a key made here.
    pub fn server_identity(&self, id: &SpiffeId, ttl: Duration) -> Result<Credentials, CaError> {
        let key = KeyPair::generate().map_err(CaError::Sign)?;
        let issued = self.sign_leaf(&key, id, ttl)?;
        Ok(Credentials {
            id: id.clone(),
            chain: issued.chain,
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            trust_bundle: self.trust_bundle(),
            not_after: issued.not_after,
        })
    }

    /// Valid from a minute ago (clock skew) until `ttl` from now, but never past the
    /// signing certificate.
    fn sign_leaf(
        &self,
        public_key: &impl PublicKeyData,
        id: &SpiffeId,
        ttl: Duration,
    ) -> Result<Issued, CaError> {
        if ttl < Duration::from_secs(1) {
            return Err(CaError::InvalidTtl { ttl });
        }
        let now = truncate_to_secs(SystemTime::now());
        let not_after = now
            .checked_add(ttl)
            .ok_or(CaError::InvalidTtl { ttl })?
            .min(self.signer.not_after);
        if not_after <= now {
            return Err(CaError::Expired {
                subject: self.signer.subject.clone(),
                not_after: crate::time::Rfc3339::from_system(not_after).to_string(),
            });
        }
        self.sign_leaf_between(
            public_key,
            id,
            now - CLOCK_SKEW,
            truncate_to_secs(not_after),
        )
    }

    pub(crate) fn sign_leaf_between(
        &self,
        public_key: &impl PublicKeyData,
        id: &SpiffeId,
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<Issued, CaError> {
        if id.trust_domain() != self.trust_domain {
            return Err(CaError::ForeignTrustDomain {
                id: id.clone(),
                trust_domain: self.trust_domain.clone(),
            });
        }
        let params = params::leaf(id, not_before, not_after)?;
        let leaf = params
            .signed_by(public_key, &self.signer.issuer)
            .map_err(CaError::Sign)?;
        let mut chain = Vec::with_capacity(1 + self.signer.intermediates.len());
        chain.push(leaf.der().clone());
        chain.extend(self.signer.intermediates.iter().cloned());
        Ok(Issued { chain, not_after })
    }

    /// The CA as PEM, key included, for a store to keep.
    pub fn export_pem(&self) -> CaPem {
        CaPem {
            cert: pem_encode_certs(&self.signer.chain),
            key: self.signer.key_pem(),
            bundle: self.trust_bundle_pem(),
        }
    }

    fn contents(&self) -> Contents {
        let CaPem { cert, key, bundle } = self.export_pem();
        Contents { cert, key, bundle }
    }
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authority")
            .field("trust_domain", &self.trust_domain)
            .field("roots", &self.bundle.len())
            .field("intermediates", &self.signer.intermediates.len())
            .field("managed", &self.managed)
            .field("key", &"<elided>")
            .finish()
    }
}
