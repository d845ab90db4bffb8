//! Weft workload identity: SPIFFE ids, the certificate authority, CSRs, and the rustls
//! configurations and verifiers for mutual TLS.
//!
//! Every workload in the mesh is named by a SPIFFE id,
//! `spiffe://<trust domain>/ns/<namespace>/sa/<service account>` ([`SpiffeId`]), and proves
//! it with a short-lived X.509 certificate carrying that id as its only URI SAN.
//!
//! - The control plane runs the [`Authority`]: a root it generates and keeps in its state
//!   directory ([`Authority::load_or_create`]), or a CA the operator supplies
//!   ([`Authority::from_pem`], e.g. from cert-manager). It certifies a workload's key from a
//!   CSR whose self-signature it verifies ([`Authority::issue`]), taking the id from how the
//!   caller authenticated rather than from the CSR, and rotates roots without an outage
//!   ([`Authority::rotate`], [`Authority::finish_rotation`]).
//! - A workload makes its key locally and sends only a CSR ([`generate_key_and_csr`]); the
//!   key never leaves the process. The result is [`Credentials`], renewed at half-life
//!   ([`Credentials::renew_at`]).
//! - [`server_config`] and [`client_config`] build TLS 1.3-only rustls configurations (ring
//!   provider) that require and verify a peer certificate against the trust bundle and then
//!   check its SPIFFE id: servers accept any client in their trust domain, clients accept
//!   exactly the server they expect ([`ExpectedPeer`]). DNS names are never checked.
//!   Refusals carry a [`PeerCertError`] that says why in one loggable sentence
//!   ([`rejection_reason`]); [`peer_id`] names an accepted peer for logs and metrics.
//!
//! - [`hbone`]: how a connection through a host's tunnel names its workload, and how the
//!   tunnel reads that name without terminating the TLS.
//!
//! What this crate does not do: authorization (which ids may talk to which is policy's job),
//! revocation (certificates are short-lived instead), or transport of CSRs and certificates.

pub mod admin;
mod ca;
mod cert;
pub mod creds;
mod csr;
pub mod hbone;
mod keys;
mod pem;
mod spiffe;
mod time;
mod tls;

#[cfg(test)]
mod test_util;

pub use crate::admin::{bearer, AdminDigest};
pub use crate::ca::{Authority, CaError, CaPem, Issued};
pub use crate::cert::{cert_not_after, cert_not_before, peer_id, CertError};
pub use crate::creds::{Credentials, CredentialsError};
pub use crate::csr::{generate_key_and_csr, CsrError, KeyAndCsr};
pub use crate::pem::{parse_pem_certs, pem_encode_certs};
pub use crate::spiffe::{IdError, SpiffeId};
pub use crate::tls::{
    anonymous_client_config, client_config, rejection_reason, rustls_error, server_config,
    server_config_client_optional, ExpectedPeer, PeerCertError, TlsError,
};
