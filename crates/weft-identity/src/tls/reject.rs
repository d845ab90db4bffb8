//! Why a peer's certificate was refused, in words an operator can act on.
//!
//! rustls reports a custom verifier's refusal as
//! `Error::InvalidCertificate(CertificateError::Other(OtherError(..)))`, and prints that inner
//! error with `Debug`. `PeerCertError` therefore prints the same sentence for `Debug` and
//! `Display`, so that "peer presented spiffe://td/ns/a/sa/x, expected spiffe://td/ns/b/sa/y"
//! reaches the log line intact. `rejection_reason` recovers the typed reason for metrics.

use std::fmt;
use std::io;
use std::sync::Arc;

use rustls::{CertificateError, OtherError};

use crate::spiffe::{IdError, SpiffeId};
use crate::time::Rfc3339;

/// A peer certificate refused by one of this crate's verifiers.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerCertError {
    #[error("peer certificate could not be parsed: {reason}")]
    Malformed { reason: String },

    #[error(
        "certificate expired at {not_after} (it is now {now}); the peer failed to renew its \
         identity: check that it can reach the control plane"
    )]
    Expired { not_after: Rfc3339, now: Rfc3339 },

    #[error(
        "certificate not valid before {not_before} (it is now {now}); check the clocks of both \
         hosts"
    )]
    NotYetValid { not_before: Rfc3339, now: Rfc3339 },

    #[error(
        "unknown issuer (not signed by this mesh's CA): the certificate does not chain to any \
         root in the trust bundle; the peer belongs to another mesh, or the bundle is stale"
    )]
    UnknownIssuer,

    #[error(
        "a signature in the certificate chain does not verify: the certificate was issued by a \
         different CA that has the same name as one of this mesh's (another cluster?), or it \
         was altered"
    )]
    BadSignature,

    #[error("certificate is not valid for {usage} (extended key usage); it was not issued for mesh mTLS")]
    WrongUsage { usage: &'static str },

    #[error("peer presented a CA certificate as its own; a workload certificate is required")]
    CaAsLeaf,

    #[error("certificate chain rejected: {reason}")]
    Chain { reason: String },

    #[error("certificate carries no URI SAN; a mesh certificate carries exactly one SPIFFE id")]
    NoSpiffeId,

    #[error(
        "certificate carries {count} URI SANs; a mesh certificate carries exactly one SPIFFE id"
    )]
    SeveralUris { count: usize },

    #[error("certificate URI SAN {uri:?} is not a mesh SPIFFE id: {source}")]
    InvalidSpiffeId {
        uri: String,
        #[source]
        source: IdError,
    },

    #[error("peer presented {presented}, expected {expected}")]
    WrongId {
        presented: SpiffeId,
        expected: SpiffeId,
    },

    #[error("peer presented {presented}, which is not in trust domain {expected}")]
    WrongTrustDomain {
        presented: SpiffeId,
        expected: String,
    },

    #[error("peer presented {presented}, expected workload {expected}")]
    WrongWorkload {
        presented: SpiffeId,
        expected: String,
    },
}

// === impl PeerCertError ===

impl fmt::Debug for PeerCertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<PeerCertError> for rustls::Error {
    fn from(e: PeerCertError) -> Self {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(e))))
    }
}

impl PeerCertError {
    /// Restates a webpki path-building failure.
    pub(crate) fn from_webpki(e: webpki::Error, usage: &'static str) -> Self {
        use webpki::Error as W;
        #[allow(deprecated)]
        match e {
            W::CertExpired { time, not_after } => Self::Expired {
                not_after: unix(not_after),
                now: unix(time),
            },
            W::CertNotValidYet { time, not_before } => Self::NotYetValid {
                not_before: unix(not_before),
                now: unix(time),
            },
            W::UnknownIssuer => Self::UnknownIssuer,
            W::InvalidSignatureForPublicKey => Self::BadSignature,
            W::RequiredEkuNotFound | W::RequiredEkuNotFoundContext(_) => Self::WrongUsage { usage },
            W::CaUsedAsEndEntity => Self::CaAsLeaf,
            W::BadDer | W::BadDerTime | W::TrailingData(_) => Self::Malformed {
                reason: format!("{e:?}"),
            },
            other => Self::Chain {
                reason: format!("{other:?}"),
            },
        }
    }

    /// Restates the rustls rendering of a webpki failure (from `WebPkiClientVerifier`), so
    /// both directions of a connection log the same sentences.
    pub(crate) fn from_rustls(e: rustls::Error, usage: &'static str) -> rustls::Error {
        let rustls::Error::InvalidCertificate(cert_error) = e else {
            return e;
        };
        let reason = match cert_error {
            CertificateError::ExpiredContext { time, not_after } => Self::Expired {
                not_after: unix(not_after),
                now: unix(time),
            },
            CertificateError::NotValidYetContext { time, not_before } => Self::NotYetValid {
                not_before: unix(not_before),
                now: unix(time),
            },
            CertificateError::UnknownIssuer => Self::UnknownIssuer,
            CertificateError::BadSignature => Self::BadSignature,
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                Self::WrongUsage { usage }
            }
            CertificateError::BadEncoding => Self::Malformed {
                reason: "bad DER encoding".to_string(),
            },
            other => return rustls::Error::InvalidCertificate(other),
        };
        reason.into()
    }
}

fn unix(t: rustls_pki_types::UnixTime) -> Rfc3339 {
    Rfc3339(i64::try_from(t.as_secs()).unwrap_or(i64::MAX))
}

/// The reason one of this crate's verifiers refused a handshake, if that is what `err` is.
pub fn rejection_reason(err: &rustls::Error) -> Option<&PeerCertError> {
    match err {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) => {
            inner.downcast_ref::<PeerCertError>()
        }
        _ => None,
    }
}

/// The rustls error inside an I/O error from tokio-rustls (which wraps it as `InvalidData`).
pub fn rustls_error(err: &io::Error) -> Option<&rustls::Error> {
    err.get_ref()?.downcast_ref::<rustls::Error>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_survives_rustls_wrapping_and_reads_well() {
        let presented = SpiffeId::new("td", "a", "x").unwrap();
        let expected = SpiffeId::new("td", "b", "y").unwrap();
        let err: rustls::Error = PeerCertError::WrongId {
            presented,
            expected,
        }
        .into();
        let line = err.to_string();
        assert!(
            line.contains("peer presented spiffe://td/ns/a/sa/x, expected spiffe://td/ns/b/sa/y"),
            "{line}"
        );
        assert!(matches!(
            rejection_reason(&err),
            Some(PeerCertError::WrongId { .. })
        ));
        let io = io::Error::new(io::ErrorKind::InvalidData, err);
        assert!(rustls_error(&io).and_then(rejection_reason).is_some());
    }

    #[test]
    fn webpki_reasons_are_restated() {
        let e = PeerCertError::from_webpki(webpki::Error::UnknownIssuer, "server authentication");
        assert_eq!(e, PeerCertError::UnknownIssuer);
        assert!(e.to_string().contains("not signed by this mesh's CA"));
        let expired = PeerCertError::from_webpki(
            webpki::Error::CertExpired {
                time: rustls_pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                    1_700_000_100,
                )),
                not_after: rustls_pki_types::UnixTime::since_unix_epoch(
                    std::time::Duration::from_secs(1_700_000_000),
                ),
            },
            "client authentication",
        );
        assert!(expired
            .to_string()
            .starts_with("certificate expired at 2023-11-14T22:13:20Z"));
    }
}
