//! The shapes of the certificates the CA mints: its own root, and workload leaves.
//!
//! Leaves follow the SPIFFE X.509-SVID profile: the SPIFFE id as the only URI SAN, an empty
//! subject (so the SAN is marked critical, per RFC 5280), not a CA, digitalSignature, and
//! both serverAuth and clientAuth so one certificate serves both directions of mTLS.

use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyUsagePurpose, SanType, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};

use super::CaError;
use crate::creds::CLOCK_SKEW;
use crate::spiffe::SpiffeId;

/// How long a generated root is valid.
pub(super) const ROOT_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// The root's subject common name.
pub(super) const ROOT_CN: &str = "Weft root CA";

/// A self-signed root for `trust_domain`, valid from a little before `now` for ten years.
pub(super) fn root(trust_domain: &str, now: SystemTime) -> Result<CertificateParams, CaError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, ROOT_CN);
    dn.push(DnType::OrganizationName, trust_domain);
    // Every root gets a distinct name. Path building matches issuers by name, so two roots
    // named alike (old and new during a rotation, or two clusters' meshes) would make a
    // foreign certificate look like a forged one instead of one from an unknown issuer.
    dn.push(
        DnType::OrganizationalUnitName,
        format!("root {}", hex(&random::<8>()?)),
    );
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = (now - CLOCK_SKEW).into();
    params.not_after = (now + ROOT_VALIDITY).into();
    params.serial_number = Some(serial()?);
    Ok(params)
}

/// A workload leaf for `id`, valid over `[not_before, not_after]`.
pub(super) fn leaf(
    id: &SpiffeId,
    not_before: SystemTime,
    not_after: SystemTime,
) -> Result<CertificateParams, CaError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    let uri = id.to_uri().try_into().map_err(CaError::Sign)?;
    params.subject_alt_names = vec![SanType::URI(uri)];
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    params.not_before = not_before.into();
    params.not_after = not_after.into();
    params.serial_number = Some(serial()?);
    Ok(params)
}

/// A random, positive 128-bit serial: unpredictable serials are what keeps a chosen-prefix
/// collision from forging a certificate, and RFC 5280 caps serials at 20 bytes.
fn serial() -> Result<SerialNumber, CaError> {
    let mut bytes = random::<16>()?;
    // Positive, and never shortened by DER's leading-zero rule.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

fn random<const N: usize>() -> Result<[u8; N], CaError> {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| CaError::Random)?;
    Ok(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
