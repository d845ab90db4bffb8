//! Tests of issuance: the leaf profile, CSR checks, and the trust domain boundary.

mod rotation;
mod supplied;

use std::time::{Duration, SystemTime};

use rcgen::{CertificateParams, DnType, IsCa, KeyPair, SanType};
use rustls_pki_types::{CertificateDer, UnixTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use super::*;
use crate::test_util::id;
use crate::tls::PeerCertError;

const HOUR: Duration = Duration::from_secs(3600);

/// Verifies an issued chain against a bundle the way both verifiers do.
pub(super) fn verify(
    bundle: &[CertificateDer<'_>],
    chain: &[CertificateDer<'_>],
) -> Result<SpiffeId, PeerCertError> {
    let anchors = tls::trust_anchors(bundle).unwrap();
    let algs = tls::algorithms();
    let now = UnixTime::now();
    let as_client = tls::verify_chain(
        &anchors,
        &algs,
        &chain[0],
        &chain[1..],
        now,
        tls::Usage::Client,
    );
    let as_server = tls::verify_chain(
        &anchors,
        &algs,
        &chain[0],
        &chain[1..],
        now,
        tls::Usage::Server,
    );
    assert_eq!(as_client, as_server, "leaves serve both directions");
    as_client
}

fn parsed<'a>(der: &'a CertificateDer<'_>) -> X509Certificate<'a> {
    X509Certificate::from_der(der).unwrap().1
}

fn secs(t: SystemTime) -> i64 {
    crate::time::Rfc3339::from_system(t).0
}

#[test]
fn generated_root_has_the_ca_profile() {
    let ca = Authority::generate("cluster.local").unwrap();
    let root = parsed(ca.signing_cert());
    let subject = root.subject().to_string();
    assert!(
        subject.starts_with("CN=Weft root CA, O=cluster.local, OU=root "),
        "{subject}"
    );
    let again = Authority::generate("cluster.local").unwrap();
    assert_ne!(
        parsed(again.signing_cert()).subject(),
        root.subject(),
        "roots are told apart by name"
    );
    assert_eq!(root.issuer(), root.subject());
    root.verify_signature(None).unwrap();
    assert!(root.is_ca());
    let ku = root.key_usage().unwrap().unwrap().value;
    assert!(ku.key_cert_sign() && ku.crl_sign() && !ku.digital_signature());
    let lifetime = root.validity().not_after.timestamp() - secs(SystemTime::now());
    let ten_years = 10 * 365 * 24 * 3600;
    assert!(
        (ten_years - 10..=ten_years).contains(&lifetime),
        "{lifetime}"
    );
    assert_eq!(ca.trust_bundle(), vec![ca.signing_cert().clone()]);
    assert_eq!(
        crate::parse_pem_certs(&ca.trust_bundle_pem()).unwrap(),
        ca.trust_bundle()
    );
}

#[test]
fn issued_leaf_has_the_svid_profile() {
    let ca = Authority::generate("td").unwrap();
    let web = id("td", "shop", "web");
    let kc = crate::generate_key_and_csr(&web).unwrap();
    let before = truncate_to_secs(SystemTime::now());
    let issued = ca.issue(&kc.csr_der, &web, HOUR).unwrap();
    let after = SystemTime::now();

    assert_eq!(
        issued.chain.len(),
        1,
        "a root-signed leaf needs no intermediates"
    );
    assert_eq!(verify(&ca.trust_bundle(), &issued.chain), Ok(web.clone()));

    let leaf = parsed(&issued.chain[0]);
    assert!(
        leaf.subject().iter().next().is_none(),
        "no subject, the id is the name"
    );
    let san = leaf.subject_alternative_name().unwrap().unwrap();
    assert!(san.critical, "an empty subject makes the SAN critical");
    assert_eq!(
        san.value.general_names,
        vec![GeneralName::URI("spiffe://td/ns/shop/sa/web")]
    );
    assert!(!leaf.is_ca());
    assert!(
        leaf.basic_constraints().unwrap().is_some(),
        "CA:FALSE is explicit"
    );
    let ku = leaf.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature() && !ku.key_cert_sign() && !ku.key_encipherment());
    let eku = leaf.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && eku.client_auth && !eku.any && eku.other.is_empty());

    let v = leaf.validity();
    assert!(v.not_before.timestamp() >= secs(before) - 60);
    assert!(v.not_before.timestamp() <= secs(after) - 60);
    assert_eq!(v.not_after.timestamp(), secs(issued.not_after));
    assert!(issued.not_after >= before + HOUR && issued.not_after <= after + HOUR);
    assert_eq!(cert_serial_len(&issued.chain[0]), 16);

    // The key certified is the CSR's.
    let key = KeyPair::try_from(&kc.key).unwrap();
    assert_eq!(
        leaf.public_key().subject_public_key.data.as_ref(),
        key.public_key_raw()
    );
}

fn cert_serial_len(der: &CertificateDer<'_>) -> usize {
    parsed(der).raw_serial().len()
}

#[test]
fn serials_are_random() {
    let ca = Authority::generate("td").unwrap();
    let creds = [1, 2].map(|_| ca.server_identity(&id("td", "a", "b"), HOUR).unwrap());
    assert_ne!(
        parsed(&creds[0].chain[0]).raw_serial(),
        parsed(&creds[1].chain[0]).raw_serial()
    );
}

#[test]
fn issue_ignores_what_the_csr_asks_for() {
    let ca = Authority::generate("td").unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["evil.example".to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "admin");
    params.subject_alt_names.push(SanType::URI(
        "spiffe://td/ns/kube-system/sa/admin".try_into().unwrap(),
    ));
    params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let csr = params.serialize_request(&key).unwrap();

    let web = id("td", "shop", "web");
    let issued = ca.issue(csr.der(), &web, HOUR).unwrap();
    let leaf = parsed(&issued.chain[0]);
    let san = leaf.subject_alternative_name().unwrap().unwrap();
    assert_eq!(
        san.value.general_names,
        vec![GeneralName::URI("spiffe://td/ns/shop/sa/web")]
    );
    assert!(leaf.subject().iter().next().is_none());
    assert!(!leaf.is_ca());
}

#[test]
fn tampered_csr_is_refused() {
    let ca = Authority::generate("td").unwrap();
    let web = id("td", "shop", "web");
    let kc = crate::generate_key_and_csr(&web).unwrap();

    // A flipped bit in the signature.
    let mut bad_sig = kc.csr_der.clone();
    *bad_sig.last_mut().unwrap() ^= 0x01;
    assert!(matches!(
        ca.issue(&bad_sig, &web, HOUR),
        Err(CaError::CsrSignature)
    ));

    // A changed byte in the signed content (the requested URI).
    let mut bad_body = kc.csr_der.clone();
    let at =
        find(&bad_body, b"spiffe://td/ns/shop/sa/web").unwrap() + "spiffe://td/ns/shop/sa/".len();
    bad_body[at] = b'x';
    assert!(matches!(
        ca.issue(&bad_body, &web, HOUR),
        Err(CaError::CsrSignature)
    ));

    // Someone else's public key in a request signed with the attacker's key: the signature
    // no longer matches the key, so no certificate for the victim's key is issued.
    let victim = crate::generate_key_and_csr(&web).unwrap();
    let spki = |der: &[u8]| {
        let (_, csr) =
            x509_parser::certification_request::X509CertificationRequest::from_der(der).unwrap();
        csr.certification_request_info.subject_pki.raw.to_vec()
    };
    let (ours, theirs) = (spki(&kc.csr_der), spki(&victim.csr_der));
    let mut swapped = kc.csr_der.clone();
    let at = find(&swapped, &ours).unwrap();
    swapped[at..at + ours.len()].copy_from_slice(&theirs);
    assert!(matches!(
        ca.issue(&swapped, &web, HOUR),
        Err(CaError::CsrSignature)
    ));

    // Truncated and trailing garbage.
    let cut = &kc.csr_der[..kc.csr_der.len() - 10];
    assert!(matches!(
        ca.issue(cut, &web, HOUR),
        Err(CaError::CsrMalformed { .. })
    ));
    let mut long = kc.csr_der.clone();
    long.push(0);
    assert!(matches!(
        ca.issue(&long, &web, HOUR),
        Err(CaError::CsrMalformed { .. })
    ));

    // The untampered request still works.
    assert!(ca.issue(&kc.csr_der, &web, HOUR).is_ok());
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn refuses_foreign_trust_domains_and_bad_lifetimes() {
    let ca = Authority::generate("td").unwrap();
    let other = id("elsewhere", "ns", "sa");
    let kc = crate::generate_key_and_csr(&other).unwrap();
    let err = ca.issue(&kc.csr_der, &other, HOUR).unwrap_err();
    assert!(matches!(err, CaError::ForeignTrustDomain { .. }));
    assert!(err
        .to_string()
        .contains("only issues ids in trust domain td"));

    let ours = id("td", "ns", "sa");
    assert!(matches!(
        ca.issue(&kc.csr_der, &ours, Duration::ZERO),
        Err(CaError::InvalidTtl { .. })
    ));
    assert!(matches!(
        ca.issue(&kc.csr_der, &ours, Duration::MAX),
        Err(CaError::InvalidTtl { .. })
    ));
    assert!(Authority::generate("Bad Domain").is_err());
}

#[test]
fn server_identity_is_usable_for_tls() {
    let ca = Authority::generate("td").unwrap();
    let me = id("td", "weft-system", "weft-control");
    let creds = ca.server_identity(&me, HOUR).unwrap();
    assert_eq!(verify(&creds.trust_bundle, &creds.chain), Ok(me));
    assert!(crate::server_config(&creds, "td", &[]).is_ok());
}

#[test]
fn authority_can_be_shared_across_tasks() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Authority>();
    let ca = Authority::generate("td").unwrap();
    assert!(!format!("{ca:?}").contains("BEGIN"));
}
