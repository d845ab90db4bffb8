//! Certificates for envoy-2-mtls, made for each run with rcgen: a throwaway CA and two leaf
//! certificates shaped like Istio's workload certificates (the identity only in a SPIFFE URI
//! SAN, an empty subject, client and server use), with ECDSA P-256 keys as Weft's own
//! certificates have, so that both meshes' hops pay for the same kind of handshake.
//! They are written as PEM files for Envoy and never leave the run's scratch directory.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// The trust domain of the SPIFFE ids, as in Istio's default.
pub const TRUST_DOMAIN: &str = "cluster.local";

/// `spiffe://cluster.local/ns/<namespace>/sa/<service_account>`.
pub fn spiffe_id(namespace: &str, service_account: &str) -> String {
    format!("spiffe://{TRUST_DOMAIN}/ns/{namespace}/sa/{service_account}")
}

/// Where one identity's files are.
pub struct LeafFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The CA bundle and each identity's certificate and key, as PEM files.
pub struct Pki {
    pub ca: PathBuf,
    pub leaves: Vec<LeafFiles>,
}

/// Makes a CA and one leaf per SPIFFE id in `ids`, and writes them into `dir`
/// (`ca.pem`, `leaf-N.pem`, `leaf-N.key`, keys 0600).
pub fn write(dir: &Path, ids: &[&str]) -> Result<Pki> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (ca_pem, leaves) = generate(ids)?;
    let ca = dir.join("ca.pem");
    write_file(&ca, &ca_pem, 0o644)?;
    let mut files = Vec::new();
    for (i, (cert_pem, key_pem)) in leaves.iter().enumerate() {
        let cert = dir.join(format!("leaf-{i}.pem"));
        let key = dir.join(format!("leaf-{i}.key"));
        write_file(&cert, cert_pem, 0o644)?;
        write_file(&key, key_pem, 0o600)?;
        files.push(LeafFiles { cert, key });
    }
    Ok(Pki { ca, leaves: files })
}

/// The CA certificate and, for each id, (certificate, private key), all PEM.
fn generate(ids: &[&str]) -> Result<(String, Vec<(String, String)>)> {
    let ca_key = KeyPair::generate().context("generating the CA key")?;
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = DistinguishedName::new();
    ca_params
        .distinguished_name
        .push(DnType::OrganizationName, TRUST_DOMAIN);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .context("self-signing the CA certificate")?;
    let issuer = Issuer::new(ca_params, ca_key);
    let mut leaves = Vec::new();
    for id in ids {
        let key = KeyPair::generate().context("generating a leaf key")?;
        let mut params = CertificateParams::default();
        // Istio's workload certificates carry no subject: the SAN is the identity.
        params.distinguished_name = DistinguishedName::new();
        params.subject_alt_names = vec![SanType::URI(
            (*id)
                .try_into()
                .with_context(|| format!("{id} is not an IA5 string"))?,
        )];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        let cert = params
            .signed_by(&key, &issuer)
            .with_context(|| format!("signing the certificate of {id}"))?;
        leaves.push((cert.pem(), key.serialize_pem()));
    }
    Ok((ca_cert.pem(), leaves))
}

fn write_file(path: &Path, contents: &str, mode: u32) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::extensions::GeneralName;
    use x509_parser::pem::parse_x509_pem;

    #[test]
    fn leaves_carry_their_spiffe_id_and_chain_to_the_ca() {
        let (a, b) = (spiffe_id("bench", "client"), spiffe_id("bench", "backend"));
        assert_eq!(a, "spiffe://cluster.local/ns/bench/sa/client");
        let (ca_pem, leaves) = generate(&[&a, &b]).expect("certificates");
        let (_, ca) = parse_x509_pem(ca_pem.as_bytes()).expect("CA PEM");
        let ca = ca.parse_x509().expect("CA certificate");
        assert!(ca.is_ca());
        for ((cert_pem, key_pem), id) in leaves.iter().zip([&a, &b]) {
            assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
            let (_, pem) = parse_x509_pem(cert_pem.as_bytes()).expect("leaf PEM");
            let cert = pem.parse_x509().expect("leaf certificate");
            assert_eq!(cert.issuer(), ca.subject());
            cert.verify_signature(Some(ca.public_key()))
                .expect("signed by the CA");
            let san = cert
                .subject_alternative_name()
                .expect("SAN extension")
                .expect("a SAN");
            assert_eq!(san.value.general_names, vec![GeneralName::URI(id)]);
            assert!(!cert.is_ca());
        }
    }

    #[test]
    fn keys_are_written_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("weft-bench-certs-{}", std::process::id()));
        let pki = write(&dir, &[&spiffe_id("bench", "client")]).expect("files");
        let mode = |p: &Path| std::fs::metadata(p).expect("file").permissions().mode() & 0o777;
        assert_eq!(mode(&pki.leaves[0].key), 0o600);
        assert_eq!(mode(&pki.ca), 0o644);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
