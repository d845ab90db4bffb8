//! Checking a certificate signing request before its public key is certified.
//!
//! The CSR's self-signature is the requester's proof that it holds the private key for the
//! public key it wants certified; without checking it, anyone could get a certificate for a
//! key they copied from someone else's certificate. Only the public key is taken from the
//! request: the subject, SANs and extensions it asks for are ignored, because the identity
//! comes from how the caller authenticated, not from what it claims.

use rcgen::SubjectPublicKeyInfo;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::error::X509Error;
use x509_parser::oid_registry::{
    Oid, OID_PKCS1_SHA256WITHRSA, OID_PKCS1_SHA384WITHRSA, OID_PKCS1_SHA512WITHRSA,
    OID_SIG_ECDSA_WITH_SHA256, OID_SIG_ECDSA_WITH_SHA384, OID_SIG_ED25519,
};
use x509_parser::prelude::FromDer;

use super::CaError;

/// Signature algorithms a CSR may be signed with. SHA-1 and other legacy algorithms that
/// the parser would also verify are refused.
const ACCEPTED: [Oid<'static>; 6] = [
    OID_SIG_ECDSA_WITH_SHA256,
    OID_SIG_ECDSA_WITH_SHA384,
    OID_SIG_ED25519,
    OID_PKCS1_SHA256WITHRSA,
    OID_PKCS1_SHA384WITHRSA,
    OID_PKCS1_SHA512WITHRSA,
];

/// Parses `csr_der`, verifies its self-signature, and returns the public key it carries.
pub(super) fn verified_public_key(csr_der: &[u8]) -> Result<SubjectPublicKeyInfo, CaError> {
    let (rest, csr) =
        X509CertificationRequest::from_der(csr_der).map_err(|e| CaError::CsrMalformed {
            reason: e.to_string(),
        })?;
    if !rest.is_empty() {
        return Err(CaError::CsrMalformed {
            reason: format!("{} trailing bytes after the request", rest.len()),
        });
    }
    let alg = &csr.signature_algorithm.algorithm;
    if !ACCEPTED.contains(alg) {
        return Err(CaError::CsrAlgorithm {
            oid: alg.to_id_string(),
        });
    }
    csr.verify_signature().map_err(|e| match e {
        X509Error::SignatureVerificationError => CaError::CsrSignature,
        X509Error::SignatureUnsupportedAlgorithm => CaError::CsrAlgorithm {
            oid: alg.to_id_string(),
        },
        other => CaError::CsrMalformed {
            reason: other.to_string(),
        },
    })?;
    SubjectPublicKeyInfo::from_der(csr.certification_request_info.subject_pki.raw).map_err(|e| {
        CaError::CsrKey {
            reason: e.to_string(),
        }
    })
}
