//! Reading facts out of certificates: validity times and the SPIFFE id of a leaf.
//!
//! These are inspections for scheduling (when to renew), logs and metrics (who is the peer).
//! They never decide trust: a certificate is trusted only after the verifiers in `tls`
//! have checked its chain, and those reuse `leaf_spiffe_id` so that logs and decisions agree
//! on what "the peer's id" means.

use std::time::SystemTime;

use rustls_pki_types::CertificateDer;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use crate::spiffe::SpiffeId;
use crate::time::system_time_from_unix;
use crate::tls::PeerCertError;

/// Why a certificate or a PEM bundle of certificates could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CertError {
    #[error("malformed PEM ({0}); expected `-----BEGIN CERTIFICATE-----` blocks")]
    Pem(String),

    #[error("no `-----BEGIN CERTIFICATE-----` block found in the PEM")]
    NoCertificates,

    #[error("not a valid DER X.509 certificate: {0}")]
    Parse(String),

    #[error("the certificate's validity time lies before 1970; it cannot be used")]
    TimeOutOfRange,
}

/// Parses `der` as exactly one X.509 certificate (trailing bytes are refused).
pub(crate) fn parse(der: &[u8]) -> Result<X509Certificate<'_>, CertError> {
    match x509_parser::parse_x509_certificate(der) {
        Ok((rest, _)) if !rest.is_empty() => Err(CertError::Parse(format!(
            "{} trailing bytes after the certificate",
            rest.len()
        ))),
        Ok((_, cert)) => Ok(cert),
        Err(e) => Err(CertError::Parse(e.to_string())),
    }
}

/// When `cert` stops being valid.
pub fn cert_not_after(cert: &CertificateDer<'_>) -> Result<SystemTime, CertError> {
    let parsed = parse(cert)?;
    system_time_from_unix(parsed.validity().not_after.timestamp()).ok_or(CertError::TimeOutOfRange)
}

/// When `cert` starts being valid.
pub fn cert_not_before(cert: &CertificateDer<'_>) -> Result<SystemTime, CertError> {
    let parsed = parse(cert)?;
    system_time_from_unix(parsed.validity().not_before.timestamp()).ok_or(CertError::TimeOutOfRange)
}

/// The SPIFFE id of a peer's leaf (the first certificate), for logs and metrics.
///
/// `None` when there is no certificate, or the leaf does not carry exactly one URI SAN
/// that is a Weft SPIFFE id. Only meaningful on chains a verifier has already accepted.
pub fn peer_id(certs: &[CertificateDer<'_>]) -> Option<SpiffeId> {
    leaf_spiffe_id(certs.first()?).ok()
}

/// The one SPIFFE id a leaf carries, or why it does not carry exactly one.
///
/// SPIFFE requires exactly one URI SAN in an X.509 SVID; other SAN kinds (DNS names, IPs)
/// are tolerated because they do not name the workload.
pub(crate) fn leaf_spiffe_id(der: &[u8]) -> Result<SpiffeId, PeerCertError> {
    let cert = parse(der).map_err(|e| PeerCertError::Malformed {
        reason: e.to_string(),
    })?;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| PeerCertError::Malformed {
            reason: format!("unreadable subjectAltName extension: {e}"),
        })?;
    let mut uris = san
        .iter()
        .flat_map(|ext| ext.value.general_names.iter())
        .filter_map(|name| match name {
            GeneralName::URI(uri) => Some(*uri),
            _ => None,
        });
    match (uris.next(), uris.next()) {
        (None, _) => Err(PeerCertError::NoSpiffeId),
        (Some(uri), None) => {
            SpiffeId::parse(uri).map_err(|source| PeerCertError::InvalidSpiffeId {
                uri: uri.to_string(),
                source,
            })
        }
        (Some(_), Some(_)) => Err(PeerCertError::SeveralUris {
            count: 2 + uris.count(),
        }),
    }
}

/// A certificate's subject, for error messages ("CN=Weft root CA, O=cluster.local").
pub(crate) fn subject_of(cert: &X509Certificate<'_>) -> String {
    let subject = cert.subject().to_string();
    if subject.is_empty() {
        "(empty subject)".to_string()
    } else {
        subject
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{leaf_with_sans, Pki};

    #[test]
    fn reads_validity_and_id_of_issued_leaf() {
        let pki = Pki::new("cluster.local");
        let id = SpiffeId::new("cluster.local", "default", "web").unwrap();
        let creds = pki.creds(&id);
        assert_eq!(peer_id(&creds.chain), Some(id));
        assert_eq!(cert_not_after(&creds.chain[0]).unwrap(), creds.not_after);
        let not_before = cert_not_before(&creds.chain[0]).unwrap();
        assert!(not_before < SystemTime::now());
    }

    #[test]
    fn leaf_must_carry_exactly_one_spiffe_uri() {
        let none = leaf_with_sans(&[]);
        assert!(matches!(
            leaf_spiffe_id(&none),
            Err(PeerCertError::NoSpiffeId)
        ));
        let two = leaf_with_sans(&["spiffe://td/ns/a/sa/b", "spiffe://td/ns/a/sa/c"]);
        assert!(matches!(
            leaf_spiffe_id(&two),
            Err(PeerCertError::SeveralUris { count: 2 })
        ));
        let http = leaf_with_sans(&["https://example.com/"]);
        assert!(matches!(
            leaf_spiffe_id(&http),
            Err(PeerCertError::InvalidSpiffeId { .. })
        ));
        assert_eq!(peer_id(&[http]), None);
        assert_eq!(peer_id(&[]), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let junk = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01]);
        assert!(matches!(cert_not_after(&junk), Err(CertError::Parse(_))));
        assert!(matches!(
            leaf_spiffe_id(&junk),
            Err(PeerCertError::Malformed { .. })
        ));
    }
}
