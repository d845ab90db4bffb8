//! What can go wrong running the CA, phrased for the operator who has to fix it.

use std::io;
use std::path::PathBuf;

use crate::cert::CertError;
use crate::spiffe::{IdError, SpiffeId};
use crate::tls::{PeerCertError, TlsError};

/// Why the certificate authority could not be loaded, or could not issue.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("invalid trust domain: {0}")]
    TrustDomain(#[from] IdError),

    #[error("the {what} is unusable: {source}")]
    Pem {
        what: &'static str,
        #[source]
        source: CertError,
    },

    #[error(
        "could not read the CA private key: {reason}. Accepted: PKCS#8 (`BEGIN PRIVATE KEY`), \
         SEC1 (`BEGIN EC PRIVATE KEY`) and PKCS#1 (`BEGIN RSA PRIVATE KEY`), unencrypted; \
         convert others with `openssl pkcs8 -topk8 -nocrypt -in tls.key`"
    )]
    Key { reason: String },

    #[error(
        "the CA private key does not belong to the CA certificate `{subject}`; check that the \
         key and certificate come from the same secret"
    )]
    KeyMismatch { subject: String },

    #[error(
        "`{subject}` is not a CA certificate (no basicConstraints CA:TRUE); supply a root or \
         intermediate CA certificate, not a workload or server certificate"
    )]
    NotCa { subject: String },

    #[error("`{subject}` may not sign certificates (its keyUsage lacks keyCertSign); reissue it as a CA")]
    NoCertSign { subject: String },

    #[error("the CA certificate `{subject}` expired at {not_after}; renew it (or its issuer) and restart")]
    Expired { subject: String, not_after: String },

    #[error(
        "the CA certificate `{subject}` is not valid before {not_before}; check this host's clock"
    )]
    NotYetValid { subject: String, not_before: String },

    #[error(
        "no trust bundle was given and `{subject}` is not self-signed, so the roots are \
         unknown; supply the root certificate(s) (cert-manager's `ca.crt`) as the trust bundle"
    )]
    NoTrustBundle { subject: String },

    #[error(
        "the subject of `{subject}` has a multi-valued name component, which this CA cannot \
         reproduce as an issuer name; use a CA certificate with one attribute per RDN"
    )]
    UnsupportedSubject { subject: String },

    #[error("the trust bundle is unusable: {0}")]
    Bundle(#[source] TlsError),

    #[error(
        "certificates issued by this CA would not verify against its trust bundle ({0}); check \
         that the trust bundle holds the root that issued the CA certificate"
    )]
    Untrusted(#[source] PeerCertError),

    #[error("the certificate signing request is malformed: {reason}")]
    CsrMalformed { reason: String },

    #[error(
        "the certificate signing request's signature does not verify: the requester did not \
         prove possession of the private key, or the request was altered in transit"
    )]
    CsrSignature,

    #[error(
        "the certificate signing request is signed with algorithm {oid}, which is not accepted; \
         use ECDSA P-256 with SHA-256"
    )]
    CsrAlgorithm { oid: String },

    #[error("the public key in the certificate signing request is not supported: {reason}")]
    CsrKey { reason: String },

    #[error("refusing to issue a certificate for {id}: this CA only issues ids in trust domain {trust_domain}")]
    ForeignTrustDomain { id: SpiffeId, trust_domain: String },

    #[error(
        "the requested certificate lifetime {ttl:?} is unusable; it must be at least one second"
    )]
    InvalidTtl { ttl: std::time::Duration },

    #[error("could not sign the certificate: {0}")]
    Sign(#[source] rcgen::Error),

    #[error(
        "could not read random bytes for a serial number; the system random source is unavailable"
    )]
    Random,

    #[error("could not {action} {path}: {source}; check that the state directory is writable by this process")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error(
        "the CA state in {dir} is incomplete: {missing} is missing. Restore it from a backup, or \
         remove {dir} to create a new CA (every workload will then need a new certificate)"
    )]
    StateIncomplete { dir: PathBuf, missing: PathBuf },

    #[error("the CA state in {dir} is unusable: {source}")]
    State {
        dir: PathBuf,
        #[source]
        source: Box<CaError>,
    },

    #[error(
        "this CA was supplied from files (e.g. by cert-manager); rotate it where it is managed, \
         then restart with the new files"
    )]
    NotManaged,
}
