//! The state directory and root rotation: what survives restarts, and what stays trusted.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::test_util::TempDir;

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn issue(ca: &Authority, sa: &str) -> Vec<CertificateDer<'static>> {
    ca.server_identity(&id("td", "ns", sa), HOUR).unwrap().chain
}

#[test]
fn load_or_create_persists_the_ca_privately() {
    let tmp = TempDir::new("persist");
    let ca = Authority::load_or_create(&tmp.0, "td").unwrap();
    let dir = tmp.0.join("ca");
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("key.pem")), 0o600);
    assert!(dir.join("cert.pem").exists() && dir.join("bundle.pem").exists());
    let leftovers: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains(".tmp."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let before = issue(&ca, "web");
    let reloaded = Authority::load_or_create(&tmp.0, "td").unwrap();
    assert_eq!(reloaded.signing_cert(), ca.signing_cert());
    assert_eq!(reloaded.trust_bundle(), ca.trust_bundle());
    assert!(verify(&reloaded.trust_bundle(), &before).is_ok());
    // The reloaded key signs certificates the original bundle trusts.
    assert!(verify(&ca.trust_bundle(), &issue(&reloaded, "db")).is_ok());
}

#[test]
fn incomplete_state_is_reported_not_replaced() {
    let tmp = TempDir::new("incomplete");
    let ca = Authority::load_or_create(&tmp.0, "td").unwrap();
    let key = tmp.0.join("ca/key.pem");
    fs::remove_file(&key).unwrap();
    let err = Authority::load_or_create(&tmp.0, "td").unwrap_err();
    assert!(
        matches!(err, CaError::StateIncomplete { ref missing, .. } if *missing == key),
        "{err}"
    );
    assert!(!key.exists(), "nothing was regenerated");

    // A key that does not match the certificate (e.g. a torn write) is a load error too.
    let other = Authority::generate("td").unwrap();
    fs::write(&key, other.signer.key_pem()).unwrap();
    let err = Authority::load_or_create(&tmp.0, "td").unwrap_err();
    assert!(
        matches!(err, CaError::State { ref source, .. } if matches!(**source, CaError::KeyMismatch { .. })),
        "{err}"
    );
    drop(ca);
}

#[test]
fn rotation_keeps_old_certificates_trusted_until_finished() {
    let tmp = TempDir::new("rotate");
    let mut ca = Authority::load_or_create(&tmp.0, "td").unwrap();
    let old_root = ca.signing_cert().clone();
    let old_leaf = issue(&ca, "old");

    ca.rotate(&tmp.0).unwrap();
    assert_ne!(ca.signing_cert(), &old_root);
    assert_eq!(
        ca.trust_bundle(),
        vec![ca.signing_cert().clone(), old_root.clone()]
    );
    let new_leaf = issue(&ca, "new");
    assert_eq!(
        verify(&ca.trust_bundle(), &old_leaf),
        Ok(id("td", "ns", "old"))
    );
    assert_eq!(
        verify(&ca.trust_bundle(), &new_leaf),
        Ok(id("td", "ns", "new"))
    );
    assert_eq!(
        verify(std::slice::from_ref(&old_root), &new_leaf),
        Err(PeerCertError::UnknownIssuer)
    );

    // A restart mid-rotation resumes it.
    let reloaded = Authority::load_or_create(&tmp.0, "td").unwrap();
    assert_eq!(reloaded.signing_cert(), ca.signing_cert());
    assert_eq!(reloaded.trust_bundle(), ca.trust_bundle());

    ca.finish_rotation(&tmp.0).unwrap();
    assert_eq!(ca.trust_bundle(), vec![ca.signing_cert().clone()]);
    assert_eq!(
        verify(&ca.trust_bundle(), &old_leaf),
        Err(PeerCertError::UnknownIssuer)
    );
    assert!(verify(&ca.trust_bundle(), &new_leaf).is_ok());

    let reloaded = Authority::load_or_create(&tmp.0, "td").unwrap();
    assert_eq!(reloaded.trust_bundle(), ca.trust_bundle());
    assert_eq!(mode(&tmp.0.join("ca/key.pem")), 0o600);
}

#[test]
fn an_exported_ca_loads_again_and_rotates_without_files() {
    let ca = Authority::generate("td").unwrap();
    let pem = ca.export_pem();
    let loaded = Authority::from_managed_pem(&pem.cert, &pem.key, &pem.bundle, "td").unwrap();
    assert!(loaded.is_managed());
    assert_eq!(loaded.signing_cert(), ca.signing_cert());
    let before = issue(&loaded, "web");

    // Started: a new root signs, both are trusted, the original is untouched.
    let rotated = loaded.rotated().unwrap();
    assert_ne!(rotated.signing_cert(), loaded.signing_cert());
    assert_eq!(rotated.trust_bundle().len(), 2);
    assert_eq!(loaded.trust_bundle().len(), 1);
    assert!(verify(&rotated.trust_bundle(), &before).is_ok());
    let after = issue(&rotated, "web");
    assert!(verify(&rotated.trust_bundle(), &after).is_ok());

    // Finished: only the new root; certificates of the old one no longer verify.
    let finished = rotated.rotation_finished().unwrap();
    assert_eq!(
        finished.trust_bundle(),
        vec![rotated.signing_cert().clone()]
    );
    assert!(verify(&finished.trust_bundle(), &after).is_ok());
    assert!(verify(&finished.trust_bundle(), &before).is_err());

    // An operator's CA is not Weft's to rotate.
    let supplied = Authority::from_pem(&pem.cert, &pem.key, Some(&pem.bundle), "td").unwrap();
    assert!(!supplied.is_managed());
    assert!(matches!(supplied.rotated(), Err(CaError::NotManaged)));
}
