//! Operator-supplied CAs: intermediates, key formats, and every way the files can be wrong.

use rcgen::{BasicConstraints, Issuer, KeyUsagePurpose};

use super::*;

/// CA parameters valid over `[now + from, now + to]` (offsets may be negative via `past`).
fn ca_params(cn: &str, not_before: SystemTime, not_after: SystemTime) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Example Corp");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = not_before.into();
    params.not_after = not_after.into();
    params
}

fn now_params(cn: &str) -> CertificateParams {
    let now = SystemTime::now();
    ca_params(cn, now - HOUR, now + 24 * HOUR)
}

/// A root, and an intermediate it signed: (root cert, intermediate cert, intermediate key).
fn root_and_intermediate() -> (rcgen::Certificate, rcgen::Certificate, KeyPair) {
    let root_key = KeyPair::generate().unwrap();
    let root_params = now_params("Example Root");
    let root = root_params.self_signed(&root_key).unwrap();
    let root_issuer = Issuer::new(root_params, root_key);
    let int_key = KeyPair::generate().unwrap();
    let mut int_params = now_params("Example Weft Intermediate");
    int_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let int = int_params.signed_by(&int_key, &root_issuer).unwrap();
    (root, int, int_key)
}

fn issue_for(ca: &Authority) -> (SpiffeId, Issued) {
    let web = id("td", "shop", "web");
    let kc = crate::generate_key_and_csr(&web).unwrap();
    let issued = ca.issue(&kc.csr_der, &web, HOUR).unwrap();
    (web, issued)
}

#[test]
fn intermediate_issues_chains_that_verify_to_the_root() {
    let (root, int, int_key) = root_and_intermediate();
    // cert-manager's layout: tls.crt = intermediate + issuers, ca.crt = root.
    let tls_crt = format!("{}{}", int.pem(), root.pem());
    let ca =
        Authority::from_pem(&tls_crt, &int_key.serialize_pem(), Some(&root.pem()), "td").unwrap();
    assert_eq!(ca.trust_bundle(), vec![root.der().clone()]);

    let (web, issued) = issue_for(&ca);
    assert_eq!(issued.chain.len(), 2, "leaf + intermediate, not the root");
    assert_eq!(&issued.chain[1], int.der());
    assert_eq!(verify(&ca.trust_bundle(), &issued.chain), Ok(web));
    assert_eq!(
        verify(&ca.trust_bundle(), &issued.chain[..1]),
        Err(PeerCertError::UnknownIssuer),
        "without the intermediate the leaf does not chain"
    );

    let dir = std::env::temp_dir().join("weft-identity-never-written");
    let mut ca = ca;
    assert!(matches!(ca.rotate(&dir), Err(CaError::NotManaged)));
    assert!(!dir.exists());
}

#[test]
fn intermediate_needs_a_bundle_that_holds_its_root() {
    let (root, int, int_key) = root_and_intermediate();
    let key = int_key.serialize_pem();
    let err = Authority::from_pem(&int.pem(), &key, None, "td").unwrap_err();
    assert!(matches!(err, CaError::NoTrustBundle { .. }), "{err}");
    assert!(err.to_string().contains("ca.crt"));

    let unrelated = now_params("Other Root")
        .self_signed(&KeyPair::generate().unwrap())
        .unwrap();
    let err = Authority::from_pem(&int.pem(), &key, Some(&unrelated.pem()), "td").unwrap_err();
    assert!(
        matches!(err, CaError::Untrusted(PeerCertError::UnknownIssuer)),
        "{err}"
    );

    // With only the intermediate in tls.crt and the root as bundle, it works.
    assert!(Authority::from_pem(&int.pem(), &key, Some(&root.pem()), "td").is_ok());
}

#[test]
fn supplied_root_is_its_own_bundle() {
    let key = KeyPair::generate().unwrap();
    let root = now_params("Example Root").self_signed(&key).unwrap();
    let ca = Authority::from_pem(&root.pem(), &key.serialize_pem(), None, "td").unwrap();
    assert_eq!(ca.trust_bundle(), vec![root.der().clone()]);
    let (web, issued) = issue_for(&ca);
    assert_eq!(issued.chain.len(), 1);
    assert_eq!(verify(&ca.trust_bundle(), &issued.chain), Ok(web));
}

#[test]
fn reads_sec1_and_pkcs1_keys_as_cert_manager_writes_them() {
    for key_pem in [
        include_str!("../../../testdata/ec-p256-sec1.key"),
        include_str!("../../../testdata/ec-p384-sec1.key"),
        include_str!("../../../testdata/rsa-2048-pkcs1.key"),
    ] {
        let key = crate::keys::key_pair_from_pem(key_pem).unwrap();
        let root = now_params("Example Root").self_signed(&key).unwrap();
        let ca = Authority::from_pem(&root.pem(), key_pem, None, "td").unwrap();
        let (web, issued) = issue_for(&ca);
        assert_eq!(verify(&ca.trust_bundle(), &issued.chain), Ok(web));
    }
}

#[test]
fn leaves_never_outlive_the_ca() {
    let key = KeyPair::generate().unwrap();
    let now = SystemTime::now();
    let root = ca_params("Short Root", now - HOUR, now + HOUR)
        .self_signed(&key)
        .unwrap();
    let ca = Authority::from_pem(&root.pem(), &key.serialize_pem(), None, "td").unwrap();
    let web = id("td", "shop", "web");
    let kc = crate::generate_key_and_csr(&web).unwrap();
    let issued = ca.issue(&kc.csr_der, &web, 48 * HOUR).unwrap();
    assert_eq!(issued.not_after, ca.not_after());
    assert_eq!(
        crate::cert_not_after(&issued.chain[0]).unwrap(),
        ca.not_after()
    );
}

#[test]
fn refuses_unusable_files_with_the_reason() {
    let key = KeyPair::generate().unwrap();
    let root = now_params("Example Root").self_signed(&key).unwrap();
    let pem = root.pem();

    let other_key = KeyPair::generate().unwrap().serialize_pem();
    let err = Authority::from_pem(&pem, &other_key, None, "td").unwrap_err();
    assert!(matches!(err, CaError::KeyMismatch { .. }), "{err}");
    assert!(err.to_string().contains("CN=Example Root"));

    let err = Authority::from_pem("", &key.serialize_pem(), None, "td").unwrap_err();
    assert!(
        matches!(
            err,
            CaError::Pem {
                source: crate::CertError::NoCertificates,
                ..
            }
        ),
        "{err}"
    );

    let err = Authority::from_pem(&pem, "not a key", None, "td").unwrap_err();
    assert!(matches!(err, CaError::Key { .. }), "{err}");
    assert!(err.to_string().contains("openssl pkcs8"));

    let err = Authority::from_pem(&pem, &key.serialize_pem(), None, "NOT A DOMAIN").unwrap_err();
    assert!(matches!(err, CaError::TrustDomain(_)), "{err}");

    // A workload certificate is not a CA.
    let creds = Authority::generate("td")
        .unwrap()
        .server_identity(&id("td", "a", "b"), HOUR)
        .unwrap();
    let leaf_key = KeyPair::try_from(&creds.key).unwrap().serialize_pem();
    let err = Authority::from_pem(
        &crate::pem_encode_certs(&creds.chain),
        &leaf_key,
        None,
        "td",
    )
    .unwrap_err();
    assert!(matches!(err, CaError::NotCa { .. }), "{err}");

    // A CA without keyCertSign.
    let mut params = now_params("Signing-less CA");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let weak = params.self_signed(&key).unwrap();
    let err = Authority::from_pem(&weak.pem(), &key.serialize_pem(), None, "td").unwrap_err();
    assert!(matches!(err, CaError::NoCertSign { .. }), "{err}");

    // Expired, and not yet valid.
    let now = SystemTime::now();
    let old = ca_params("Old Root", now - 48 * HOUR, now - 24 * HOUR)
        .self_signed(&key)
        .unwrap();
    let err = Authority::from_pem(&old.pem(), &key.serialize_pem(), None, "td").unwrap_err();
    assert!(matches!(err, CaError::Expired { .. }), "{err}");
    let early = ca_params("Early Root", now + 24 * HOUR, now + 48 * HOUR)
        .self_signed(&key)
        .unwrap();
    let err = Authority::from_pem(&early.pem(), &key.serialize_pem(), None, "td").unwrap_err();
    assert!(matches!(err, CaError::NotYetValid { .. }), "{err}");
}
