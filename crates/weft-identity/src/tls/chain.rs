//! Chain verification against the mesh's trust bundle, shared by both verifiers and the CA.
//!
//! A mesh certificate is good when it chains to one of the bundle's roots, is valid now, is
//! allowed for the direction of the connection (server or client auth), and names exactly
//! one SPIFFE id. DNS names are never consulted: SPIFFE certificates carry none, and the
//! name a client dials is a fixed placeholder.

use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};

use super::{PeerCertError, TlsError};
use crate::cert::leaf_spiffe_id;
use crate::spiffe::SpiffeId;

/// Which side of a connection the certificate authenticates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Usage {
    Server,
    Client,
}

impl Usage {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Usage::Server => "server authentication",
            Usage::Client => "client authentication",
        }
    }

    fn key_usage(self) -> webpki::KeyUsage {
        match self {
            Usage::Server => webpki::KeyUsage::server_auth(),
            Usage::Client => webpki::KeyUsage::client_auth(),
        }
    }
}

/// The bundle's roots as webpki trust anchors. Every root must parse: a bundle silently
/// missing a root would fail handshakes later with a misleading "unknown issuer".
pub(crate) fn trust_anchors(
    bundle: &[CertificateDer<'_>],
) -> Result<Vec<TrustAnchor<'static>>, TlsError> {
    if bundle.is_empty() {
        return Err(TlsError::EmptyTrustBundle);
    }
    bundle
        .iter()
        .enumerate()
        .map(|(index, der)| {
            webpki::anchor_from_trusted_cert(der)
                .map(|anchor| anchor.to_owned())
                .map_err(|e| TlsError::BadTrustRoot {
                    index,
                    reason: format!("{e:?}"),
                })
        })
        .collect()
}

/// The signature algorithms certificates may use: those of the ring provider.
pub(crate) fn algorithms() -> WebPkiSupportedAlgorithms {
    rustls::crypto::ring::default_provider().signature_verification_algorithms
}

/// Verifies `end_entity` (with the peer's `intermediates`) against `anchors` at `now` for
/// `usage`, and returns the SPIFFE id it proves.
pub(crate) fn verify(
    anchors: &[TrustAnchor<'_>],
    algorithms: &WebPkiSupportedAlgorithms,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    now: UnixTime,
    usage: Usage,
) -> Result<SpiffeId, PeerCertError> {
    let cert = webpki::EndEntityCert::try_from(end_entity)
        .map_err(|e| PeerCertError::from_webpki(e, usage.name()))?;
    cert.verify_for_usage(
        algorithms.all,
        anchors,
        intermediates,
        now,
        usage.key_usage(),
        None,
        None,
    )
    .map_err(|e| PeerCertError::from_webpki(e, usage.name()))?;
    leaf_spiffe_id(end_entity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{leaf_with_sans, Pki};

    #[test]
    fn empty_or_broken_bundles_are_refused_up_front() {
        assert!(matches!(
            trust_anchors(&[]),
            Err(TlsError::EmptyTrustBundle)
        ));
        let junk = CertificateDer::from(vec![1, 2, 3]);
        assert!(matches!(
            trust_anchors(&[junk]),
            Err(TlsError::BadTrustRoot { index: 0, .. })
        ));
    }

    #[test]
    fn leaf_without_spiffe_id_is_refused_even_when_trusted() {
        let pki = Pki::new("td");
        let anchors = trust_anchors(&pki.ca.trust_bundle()).unwrap();
        let id = SpiffeId::new("td", "a", "b").unwrap();
        let creds = pki.creds(&id);
        let got = verify(
            &anchors,
            &algorithms(),
            &creds.chain[0],
            &creds.chain[1..],
            UnixTime::now(),
            Usage::Server,
        );
        assert_eq!(got, Ok(id));

        // A flipped bit in the leaf's signature.
        let mut forged = creds.chain[0].to_vec();
        *forged.last_mut().unwrap() ^= 1;
        let got = verify(
            &anchors,
            &algorithms(),
            &CertificateDer::from(forged),
            &[],
            UnixTime::now(),
            Usage::Server,
        );
        assert_eq!(got, Err(PeerCertError::BadSignature));

        // Self-signed, so it does not chain either; the chain error comes first.
        let bare = leaf_with_sans(&[]);
        let got = verify(
            &anchors,
            &algorithms(),
            &bare,
            &[],
            UnixTime::now(),
            Usage::Client,
        );
        assert_eq!(got, Err(PeerCertError::UnknownIssuer));
    }
}
