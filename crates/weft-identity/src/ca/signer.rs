//! The CA's signing certificate and key: generated here, or supplied and checked.
//!
//! A supplied CA (cert-manager's `tls.crt`, `tls.key`, `ca.crt`) is checked up front for
//! everything that would otherwise surface later as workloads failing handshakes: that the
//! key belongs to the certificate, that the certificate is a CA allowed to sign
//! certificates, that it is valid now, and that its subject can be reproduced byte for byte
//! as the issuer of the leaves it signs.

use std::time::SystemTime;

use rcgen::{Issuer, KeyPair};
use rustls_pki_types::CertificateDer;

use super::{params, CaError};
use crate::cert::{self, subject_of};
use crate::keys;
use crate::pem::parse_pem_certs;
use crate::time::{system_time_from_unix, Rfc3339};

/// The key and certificate that sign leaves, and the chain that goes out with them.
pub(super) struct Signer {
    pub(super) issuer: Issuer<'static, KeyPair>,
    /// The signing certificate, then its issuers as supplied (persisted as `cert.pem`).
    pub(super) chain: Vec<CertificateDer<'static>>,
    /// What follows a leaf in an issued chain: `chain` without the roots of the bundle.
    pub(super) intermediates: Vec<CertificateDer<'static>>,
    pub(super) not_after: SystemTime,
    /// The signing certificate's subject, for error messages.
    pub(super) subject: String,
}

/// A new self-signed ECDSA P-256 root for `trust_domain`.
pub(super) fn generate_root(trust_domain: &str, now: SystemTime) -> Result<Signer, CaError> {
    let params = params::root(trust_domain, now)?;
    let key = KeyPair::generate().map_err(CaError::Sign)?;
    let cert = params.self_signed(&key).map_err(CaError::Sign)?;
    let der = cert.der().clone();
    let pem_error = |source| CaError::Pem {
        what: "generated root certificate",
        source,
    };
    let not_after = cert::cert_not_after(&der).map_err(pem_error)?;
    let subject = subject_of(&cert::parse(&der).map_err(pem_error)?);
    Ok(Signer {
        issuer: Issuer::new(params, key),
        chain: vec![der],
        intermediates: Vec::new(),
        not_after,
        subject,
    })
}

/// A supplied CA: `chain_pem` starts with the signing certificate, `key_pem` is its key,
/// `bundle_pem` the roots (defaulting to the signing certificate if it is self-signed).
pub(super) fn supplied(
    chain_pem: &str,
    key_pem: &str,
    bundle_pem: Option<&str>,
    now: SystemTime,
) -> Result<(Signer, Vec<CertificateDer<'static>>), CaError> {
    let chain = parse_pem_certs(chain_pem).map_err(|source| CaError::Pem {
        what: "CA certificate chain",
        source,
    })?;
    let key = keys::key_pair_from_pem(key_pem).map_err(|reason| CaError::Key { reason })?;
    let signing = &chain[0];
    let parsed = cert::parse(signing).map_err(|source| CaError::Pem {
        what: "CA certificate",
        source,
    })?;
    let subject = subject_of(&parsed);

    if parsed.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        return Err(CaError::KeyMismatch { subject });
    }
    if !parsed.is_ca() {
        return Err(CaError::NotCa { subject });
    }
    // An absent keyUsage extension places no restriction (RFC 5280 4.2.1.3).
    if let Ok(Some(ku)) = parsed.key_usage() {
        if !ku.value.key_cert_sign() {
            return Err(CaError::NoCertSign { subject });
        }
    }
    let validity = parsed.validity();
    let (not_before, not_after) = (
        validity.not_before.timestamp(),
        validity.not_after.timestamp(),
    );
    let now_secs = Rfc3339::from_system(now).0;
    if now_secs < not_before {
        return Err(CaError::NotYetValid {
            subject,
            not_before: Rfc3339(not_before).to_string(),
        });
    }
    let not_after_time = match system_time_from_unix(not_after) {
        Some(t) if now_secs <= not_after => t,
        _ => {
            return Err(CaError::Expired {
                subject,
                not_after: Rfc3339(not_after).to_string(),
            })
        }
    };
    // rcgen re-encodes the issuer name from the parsed subject and cannot express an RDN
    // with several attributes (and would panic on one with none).
    if parsed.subject().iter().any(|rdn| rdn.iter().count() != 1) {
        return Err(CaError::UnsupportedSubject { subject });
    }

    let bundle = match bundle_pem {
        Some(pem) => parse_pem_certs(pem).map_err(|source| CaError::Pem {
            what: "trust bundle",
            source,
        })?,
        None => {
            let self_signed = parsed.issuer().as_raw() == parsed.subject().as_raw()
                && parsed.verify_signature(None).is_ok();
            if !self_signed {
                return Err(CaError::NoTrustBundle { subject });
            }
            vec![signing.clone()]
        }
    };

    let issuer =
        Issuer::from_ca_cert_der(signing, key).map_err(|_| CaError::UnsupportedSubject {
            subject: subject.clone(),
        })?;
    let intermediates = chain
        .iter()
        .filter(|c| !bundle.contains(c))
        .cloned()
        .collect();
    if not_after_time < now + super::EXPIRY_WARNING {
        tracing::warn!(
            subject = %subject,
            not_after = %Rfc3339(not_after),
            "the CA certificate expires soon; renew it before workloads can no longer get certificates"
        );
    }
    let signer = Signer {
        issuer,
        chain,
        intermediates,
        not_after: not_after_time,
        subject,
    };
    Ok((signer, bundle))
}

// === impl Signer ===

impl Signer {
    /// The signing certificate.
    pub(super) fn cert(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    /// The signing key as PKCS#8 PEM, for the state directory.
    pub(super) fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }
}
