//! The client side of mesh mTLS: a rustls `ClientConfig` that authenticates the server by
//! SPIFFE id, not by DNS name.
//!
//! rustls' stock verifier checks the server name the client dialled against DNS SANs.
//! Mesh certificates have no DNS SANs and the client dials a fixed placeholder name, so
//! this verifier replaces that check: the chain must verify to the trust bundle (webpki,
//! server-auth usage, now), and then the leaf's single URI SAN must be the SPIFFE id the
//! caller expects, or at least lie in the expected trust domain.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};

use super::chain::{self, Usage};
use super::{PeerCertError, TlsError};
use crate::creds::Credentials;
use crate::spiffe::SpiffeId;

/// Whom a client expects to reach.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ExpectedPeer {
    /// Exactly this workload (the usual case: the destination's identity is known from
    /// service discovery).
    Exactly(SpiffeId),
    /// Any workload of this trust domain (e.g. the control plane's clients before they know
    /// which replica answers).
    TrustDomain(String),
    /// This namespace and service account in whichever trust domain the bundle's roots
    /// vouch for: a proxy's first connection to the control plane, before it has learnt the
    /// trust domain (the roots it was given are the authority).
    Workload {
        namespace: String,
        service_account: String,
    },
}

/// A TLS 1.3 client configuration presenting `creds` and accepting only a server whose
/// certificate chains to `creds.trust_bundle` and names the `expected` peer.
///
/// Callers may pass any fixed `ServerName` (e.g. `weft.mesh`) when connecting; it is sent
/// as SNI but not used for authentication.
pub fn client_config(
    creds: &Credentials,
    expected: ExpectedPeer,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, TlsError> {
    if creds.chain.is_empty() {
        return Err(TlsError::EmptyChain);
    }
    let config = builder(&creds.trust_bundle, expected)?
        .with_client_auth_cert(creds.chain.clone(), creds.key.clone_key())
        .map_err(TlsError::Identity)?;
    Ok(finish(config, alpn))
}

/// A TLS 1.3 client configuration without a client certificate, trusting `trust_bundle`
/// and accepting the `expected` peer: a proxy asking for its first certificate.
pub fn anonymous_client_config(
    trust_bundle: &[CertificateDer<'static>],
    expected: ExpectedPeer,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, TlsError> {
    let config = builder(trust_bundle, expected)?.with_no_client_auth();
    Ok(finish(config, alpn))
}

/// TLS 1.3, the ring provider, and the SPIFFE server verifier; the client's own
/// certificate is the caller's to add.
fn builder(
    trust_bundle: &[CertificateDer<'_>],
    expected: ExpectedPeer,
) -> Result<rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert>, TlsError> {
    let verifier = SpiffeServerVerifier::new(trust_bundle, expected)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|source| TlsError::Config {
            side: "client",
            source,
        })?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier)))
}

fn finish(mut config: ClientConfig, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

// === impl ExpectedPeer ===

impl ExpectedPeer {
    /// Whether `presented` is acceptable.
    pub fn check(&self, presented: SpiffeId) -> Result<(), PeerCertError> {
        match self {
            ExpectedPeer::Exactly(expected) if *expected == presented => Ok(()),
            ExpectedPeer::Exactly(expected) => Err(PeerCertError::WrongId {
                presented,
                expected: expected.clone(),
            }),
            ExpectedPeer::TrustDomain(td) if presented.trust_domain() == td => Ok(()),
            ExpectedPeer::TrustDomain(td) => Err(PeerCertError::WrongTrustDomain {
                presented,
                expected: td.clone(),
            }),
            ExpectedPeer::Workload {
                namespace,
                service_account,
            } if presented.namespace() == namespace
                && presented.service_account() == service_account =>
            {
                Ok(())
            }
            ExpectedPeer::Workload {
                namespace,
                service_account,
            } => Err(PeerCertError::WrongWorkload {
                presented,
                expected: format!("ns/{namespace}/sa/{service_account}"),
            }),
        }
    }
}

impl fmt::Display for ExpectedPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedPeer::Exactly(id) => write!(f, "{id}"),
            ExpectedPeer::TrustDomain(td) => write!(f, "any workload in trust domain {td}"),
            ExpectedPeer::Workload {
                namespace,
                service_account,
            } => write!(f, "ns/{namespace}/sa/{service_account}"),
        }
    }
}

/// Checks server certificates by chain and SPIFFE id, ignoring the dialled server name.
#[derive(Debug)]
pub(crate) struct SpiffeServerVerifier {
    anchors: Vec<TrustAnchor<'static>>,
    algorithms: WebPkiSupportedAlgorithms,
    expected: ExpectedPeer,
}

// === impl SpiffeServerVerifier ===

impl SpiffeServerVerifier {
    pub(crate) fn new(
        bundle: &[CertificateDer<'_>],
        expected: ExpectedPeer,
    ) -> Result<Self, TlsError> {
        if let ExpectedPeer::TrustDomain(td) = &expected {
            SpiffeId::validate_trust_domain(td)?;
        }
        Ok(Self {
            anchors: chain::trust_anchors(bundle)?,
            algorithms: chain::algorithms(),
            expected,
        })
    }
}

impl ServerCertVerifier for SpiffeServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = chain::verify(
            &self.anchors,
            &self.algorithms,
            end_entity,
            intermediates,
            now,
            Usage::Server,
        )?;
        self.expected.check(presented)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
