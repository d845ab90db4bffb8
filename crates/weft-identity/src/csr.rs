//! The workload side of issuance: a fresh key and a certificate signing request.
//!
//! The private key is generated where it will be used and never leaves that process; only
//! the CSR (public key plus a signature proving possession of the private key) is sent to
//! the control plane. The CSR names the SPIFFE id for the benefit of humans reading it, but
//! the CA ignores what the CSR asks for and issues the id it authenticated the caller as.

use std::fmt;

use rcgen::{CertificateParams, DistinguishedName, KeyPair, SanType};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::spiffe::SpiffeId;

/// A freshly generated private key and a CSR for its public key.
pub struct KeyAndCsr {
    /// The ECDSA P-256 private key, PKCS#8.
    pub key: PrivateKeyDer<'static>,
    /// The PKCS#10 request, DER, self-signed with `key`.
    pub csr_der: Vec<u8>,
}

/// Why a key or CSR could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum CsrError {
    #[error(
        "could not generate an ECDSA P-256 key: {0}; the system random source may be unavailable"
    )]
    KeyGeneration(#[source] rcgen::Error),

    #[error("could not build the certificate signing request for {id}: {source}")]
    Request {
        id: SpiffeId,
        #[source]
        source: rcgen::Error,
    },
}

/// Generates an ECDSA P-256 key and a CSR carrying `id` as its only URI SAN.
pub fn generate_key_and_csr(id: &SpiffeId) -> Result<KeyAndCsr, CsrError> {
    let key = KeyPair::generate().map_err(CsrError::KeyGeneration)?;
    let request_error = |source| CsrError::Request {
        id: id.clone(),
        source,
    };
    let mut params = CertificateParams::default();
    // The id is the name; a subject would only be a second, unchecked copy of it.
    params.distinguished_name = DistinguishedName::new();
    let uri = id.to_uri().try_into().map_err(request_error)?;
    params.subject_alt_names = vec![SanType::URI(uri)];
    let csr = params.serialize_request(&key).map_err(request_error)?;
    Ok(KeyAndCsr {
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        csr_der: csr.der().to_vec(),
    })
}

// === impl KeyAndCsr ===

impl fmt::Debug for KeyAndCsr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyAndCsr")
            .field("key", &"<elided>")
            .field("csr_der_len", &self.csr_der.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::certification_request::X509CertificationRequest;
    use x509_parser::extensions::{GeneralName, ParsedExtension};
    use x509_parser::prelude::FromDer;

    #[test]
    fn csr_is_self_signed_and_names_the_id() {
        let id = SpiffeId::new("cluster.local", "default", "web").unwrap();
        let kc = generate_key_and_csr(&id).unwrap();
        let (rest, csr) = X509CertificationRequest::from_der(&kc.csr_der).unwrap();
        assert!(rest.is_empty());
        csr.verify_signature().unwrap();
        let uris: Vec<String> = csr
            .requested_extensions()
            .into_iter()
            .flatten()
            .filter_map(|ext| match ext {
                ParsedExtension::SubjectAlternativeName(san) => Some(san),
                _ => None,
            })
            .flat_map(|san| san.general_names.iter())
            .filter_map(|name| match name {
                GeneralName::URI(uri) => Some(uri.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(uris, vec![id.to_uri()]);

        // The key is the one that signed the request.
        let key = KeyPair::try_from(&kc.key).unwrap();
        assert_eq!(
            csr.certification_request_info
                .subject_pki
                .subject_public_key
                .data
                .as_ref(),
            key.public_key_raw()
        );
        assert!(!format!("{kc:?}").contains("key: ["));
    }

    #[test]
    fn every_call_makes_a_new_key() {
        let id = SpiffeId::new("td", "ns", "sa").unwrap();
        let a = generate_key_and_csr(&id).unwrap();
        let b = generate_key_and_csr(&id).unwrap();
        assert_ne!(a.key.secret_der(), b.key.secret_der());
    }
}
