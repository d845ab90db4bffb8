//! The server side of mesh mTLS: a rustls `ServerConfig` that requires a mesh client.
//!
//! Client certificates are mandatory. The chain is checked by rustls' own
//! `WebPkiClientVerifier` (against the trust bundle, now, client-auth EKU); this crate's
//! verifier wraps it and then insists the leaf names exactly one SPIFFE id in the server's
//! trust domain. Doing that inside the verifier, rather than after the handshake, means a
//! client from the wrong trust domain never gets a connection to misuse, and the refusal
//! reason is the handshake error itself.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, UnixTime};

use super::chain::{self, Usage};
use super::{PeerCertError, TlsError};
use crate::cert::leaf_spiffe_id;
use crate::creds::Credentials;
use crate::spiffe::SpiffeId;

/// A TLS 1.3 server configuration presenting `creds` and accepting only clients whose
/// certificate chains to `creds.trust_bundle` and names a SPIFFE id in `trust_domain`.
pub fn server_config(
    creds: &Credentials,
    trust_domain: &str,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    build(creds, trust_domain, alpn, true)
}

/// Like [`server_config`], but a client may present no certificate at all (the control
/// plane: a proxy's first certificate request comes before it has one). A certificate that
/// is presented is verified exactly as in [`server_config`].
pub fn server_config_client_optional(
    creds: &Credentials,
    trust_domain: &str,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    build(creds, trust_domain, alpn, false)
}

fn build(
    creds: &Credentials,
    trust_domain: &str,
    alpn: &[&[u8]],
    mandatory: bool,
) -> Result<Arc<ServerConfig>, TlsError> {
    SpiffeId::validate_trust_domain(trust_domain)?;
    if creds.chain.is_empty() {
        return Err(TlsError::EmptyChain);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = RootCertStore {
        roots: chain::trust_anchors(&creds.trust_bundle)?,
    };
    let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(TlsError::ClientVerifier)?;
    let verifier = SpiffeClientVerifier {
        inner,
        trust_domain: trust_domain.to_string(),
        mandatory,
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|source| TlsError::Config {
            side: "server",
            source,
        })?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(creds.chain.clone(), creds.key.clone_key())
        .map_err(TlsError::Identity)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Checks client certificates: chain by `WebPkiClientVerifier`, then the SPIFFE id's trust
/// domain.
#[derive(Debug)]
pub(crate) struct SpiffeClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    trust_domain: String,
    mandatory: bool,
}

// === impl SpiffeClientVerifier ===

impl ClientCertVerifier for SpiffeClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)
            .map_err(|e| PeerCertError::from_rustls(e, Usage::Client.name()))?;
        let presented = leaf_spiffe_id(end_entity)?;
        if presented.trust_domain() != self.trust_domain {
            return Err(PeerCertError::WrongTrustDomain {
                presented,
                expected: self.trust_domain.clone(),
            }
            .into());
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
