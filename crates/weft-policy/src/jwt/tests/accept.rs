//! Tokens that must pass: every supported algorithm with a real signature, and the ways
//! Envoy finds the key (by `kid`, by trying every key, a key without `kid`).

use super::*;

/// The payload segment of a compact token.
fn payload_segment(token: &str) -> &str {
    token.split('.').nth(1).expect("three segments")
}

#[test]
fn every_rsa_algorithm_verifies() {
    let rsa = Signer::rsa();
    let set = jwks(&[rsa.jwk(Some("k1"))]);
    for alg in ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"] {
        let token = rsa.token_alg(alg, Some("k1"), &claims());
        let ok = verify(&token, &set, &expect(&api())).unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(ok.claims, claims(), "{alg}");
        assert_eq!(ok.payload_b64, payload_segment(&token), "{alg}");
    }
}

#[test]
fn es256_es384_and_eddsa_verify() {
    for signer in [Signer::p256(), Signer::p384(), Signer::ed25519()] {
        let token = signer.token(Some("k1"), &claims());
        let set = jwks(&[signer.jwk(Some("k1"))]);
        let ok = verify(&token, &set, &expect(&api()));
        assert!(ok.is_ok(), "{}: {ok:?}", signer.alg());
    }
}

#[test]
fn the_verified_token_gives_its_claims_and_raw_payload() {
    let ed = Signer::ed25519();
    let claims = claims_with(json!({"groups": ["a", "b"], "nested": {"x": 1}}));
    let token = ed.token(None, &claims);
    let ok = verify(&token, &jwks(&[ed.jwk(None)]), &expect(&[])).expect("verifies");
    assert_eq!(ok.claims, claims);
    assert_eq!(ok.claims["nested"]["x"], 1);
    // Forwarded as received: the segment, not a re-encoding of the parsed claims.
    assert_eq!(ok.payload_b64, payload_segment(&token));
}

#[test]
fn a_token_without_kid_is_tried_against_every_key() {
    let (p256, rsa, ed) = (Signer::p256(), Signer::rsa(), Signer::ed25519());
    let set = jwks(&[p256.jwk(Some("a")), rsa.jwk(Some("b")), ed.jwk(Some("c"))]);
    for signer in [&p256, &rsa, &ed] {
        let token = signer.token(None, &claims());
        assert!(
            verify(&token, &set, &expect(&api())).is_ok(),
            "{}",
            signer.alg()
        );
    }
}

#[test]
fn every_key_with_the_kid_is_tried() {
    // Two keys under one kid (a rotation done carelessly): the second one signed.
    let (old, new) = (Signer::p256(), Signer::p256());
    let set = jwks(&[old.jwk(Some("k")), new.jwk(Some("k"))]);
    let token = new.token(Some("k"), &claims());
    assert!(verify(&token, &set, &expect(&api())).is_ok());
}

#[test]
fn a_key_without_kid_verifies_a_token_with_one_as_envoy_does() {
    let ed = Signer::ed25519();
    let other = Signer::ed25519();
    let set = jwks(&[other.jwk(Some("other")), ed.jwk(None)]);
    let token = ed.token(Some("k1"), &claims());
    assert!(verify(&token, &set, &expect(&api())).is_ok());
}

#[test]
fn a_key_pinned_to_an_alg_verifies_that_alg() {
    let rsa = Signer::rsa();
    let mut jwk = rsa.jwk(Some("k1"));
    jwk["alg"] = json!("PS384");
    jwk["use"] = json!("sig");
    let token = rsa.token_alg("PS384", Some("k1"), &claims());
    assert!(verify(&token, &jwks(&[jwk]), &expect(&api())).is_ok());
}

#[test]
fn leading_zero_bytes_of_n_and_e_are_ignored() {
    let rsa = Signer::rsa();
    let Signer::Rsa(key) = &rsa else {
        unreachable!()
    };
    let public = RsaPublicKeyComponents::<Vec<u8>>::from(key.public());
    let zero_padded = |v: &[u8]| b64(&[&[0u8, 0][..], v].concat());
    let jwk = json!({"kty": "RSA", "kid": "k1", "n": zero_padded(&public.n), "e": zero_padded(&public.e)});
    let token = rsa.token(Some("k1"), &claims());
    assert!(verify(&token, &jwks(&[jwk]), &expect(&api())).is_ok());
}

#[test]
fn unverified_issuer_reads_iss_without_checking_anything() {
    let ed = Signer::ed25519();
    let token = ed.token(None, &claims());
    assert_eq!(unverified_issuer(&token).as_deref(), Some(ISSUER));
    // Not verified: a token signed by nobody still names its issuer.
    let forged = format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(br#"{"iss":"x"}"#));
    assert_eq!(unverified_issuer(&forged).as_deref(), Some("x"));
    for bad in [
        String::new(),
        "a.b".to_string(),
        format!("x.{}.y.z", b64(br#"{"iss":"x"}"#)),
        format!("x.{}.y", b64(br#"{"iss":7}"#)),
        format!("x.{}.y", b64(br#"["iss"]"#)),
        format!("x.{}.y", b64(b"not json")),
        "x.eyJpc3MiOiJ4In0=.y".to_string(),
        format!("x.{}.y", "A".repeat(MAX_TOKEN_BYTES)),
    ] {
        assert_eq!(unverified_issuer(&bad), None, "{bad:.40}");
    }
}
