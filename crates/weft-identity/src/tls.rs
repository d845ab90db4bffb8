//! rustls configurations for mesh mTLS, and the verifiers that make them SPIFFE-aware.
//!
//! Both directions use TLS 1.3 only and the ring provider, require a certificate from the
//! peer, verify it against the mesh trust bundle, and then check the SPIFFE id it carries:
//! the server accepts any client of its trust domain (authorization by id is policy's job,
//! which gets the id from `peer_id`), the client accepts exactly the server it meant to
//! reach. Refusals carry a `PeerCertError` that says why in one loggable sentence.

mod chain;
mod client;
mod reject;
mod server;
#[cfg(test)]
mod tests;

pub use self::client::{anonymous_client_config, client_config, ExpectedPeer};
pub use self::reject::{rejection_reason, rustls_error, PeerCertError};
pub use self::server::{server_config, server_config_client_optional};

pub(crate) use self::chain::{algorithms, trust_anchors, verify as verify_chain, Usage};

use crate::spiffe::IdError;

/// Why a TLS configuration could not be built from credentials.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "the trust bundle is empty, so no peer could ever be verified; fetch the bundle from \
         the control plane before building TLS configurations"
    )]
    EmptyTrustBundle,

    #[error("trust bundle certificate #{index} is not a usable root certificate ({reason}); check the bundle PEM")]
    BadTrustRoot { index: usize, reason: String },

    #[error("the credentials hold no certificate; request one from the control plane first")]
    EmptyChain,

    #[error("invalid trust domain: {0}")]
    TrustDomain(#[from] IdError),

    #[error("could not build the {side} TLS configuration: {source}")]
    Config {
        side: &'static str,
        #[source]
        source: rustls::Error,
    },

    #[error(
        "the certificate chain and private key cannot be used together ({0}); the key must be \
         the one the certificate was issued for"
    )]
    Identity(#[source] rustls::Error),

    #[error("could not build the client certificate verifier: {0}")]
    ClientVerifier(#[source] rustls::server::VerifierBuilderError),
}
