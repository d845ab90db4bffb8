//! Tokens that must be refused before their claims matter: forged or altered signatures,
//! algorithms Weft does not verify and keys that do not fit, each with the reason the proxy
//! reports. (Inputs that are not compact JWS at all are in `form`.)

use super::*;

/// `token` with segment `i` replaced.
pub(super) fn with_segment(token: &str, i: usize, segment: &str) -> String {
    let mut parts: Vec<&str> = token.split('.').collect();
    parts[i] = segment;
    parts.join(".")
}

#[test]
fn an_altered_payload_or_signature_is_a_bad_signature() {
    for signer in [
        Signer::rsa(),
        Signer::p256(),
        Signer::p384(),
        Signer::ed25519(),
    ] {
        let token = signer.token(Some("k1"), &claims());
        let other = claims_with(json!({"sub": "mallory"}));
        let forged = with_segment(&token, 1, &b64(other.to_string().as_bytes()));
        assert_eq!(
            refused(&forged, &signer),
            TokenError::BadSignature,
            "{}",
            signer.alg()
        );

        let mut signature =
            b64::decode(token.split('.').nth(2).unwrap_or_default()).unwrap_or_default();
        signature[10] ^= 1;
        let flipped = with_segment(&token, 2, &b64(&signature));
        assert_eq!(
            refused(&flipped, &signer),
            TokenError::BadSignature,
            "{}",
            signer.alg()
        );
        let empty = with_segment(&token, 2, "");
        assert_eq!(
            refused(&empty, &signer),
            TokenError::BadSignature,
            "{}",
            signer.alg()
        );
    }
}

#[test]
fn a_signature_made_with_another_rsa_algorithm_is_bad() {
    // Signed RS256, header rewritten to claim RS384 or PS256: the hash or padding differs.
    let rsa = Signer::rsa();
    let token = rsa.token(Some("k1"), &claims());
    for alg in ["RS384", "PS256"] {
        let header = json!({"alg": alg, "kid": "k1"}).to_string();
        let relabelled = with_segment(&token, 0, &b64(header.as_bytes()));
        assert_eq!(
            refused(&relabelled, &rsa),
            TokenError::BadSignature,
            "{alg}"
        );
    }
}

#[test]
fn a_key_from_another_signer_is_a_bad_signature() {
    let (signer, other) = (Signer::p256(), Signer::p256());
    let token = signer.token(Some("k1"), &claims());
    assert_eq!(refused(&token, &other), TokenError::BadSignature);
}

#[test]
fn alg_none_is_refused_in_any_case() {
    let payload = b64(claims().to_string().as_bytes());
    for alg in ["none", "NONE", "None", "nOnE"] {
        let header = b64(json!({"alg": alg}).to_string().as_bytes());
        let token = format!("{header}.{payload}.");
        assert_eq!(
            refused(&token, &Signer::rsa()),
            TokenError::AlgorithmNone,
            "{alg}"
        );
    }
}

#[test]
fn hmac_es512_and_unknown_algs_are_unsupported_by_name() {
    let rsa = Signer::rsa();
    for alg in [
        "HS256", "HS384", "HS512", "ES512", "rs256", "RSA-OAEP", "ES256K", "",
    ] {
        let token = rsa.token_alg(alg, Some("k1"), &claims());
        let want = TokenError::UnsupportedAlgorithm(alg.to_string());
        assert_eq!(refused(&token, &rsa), want, "{alg}");
    }
}

#[test]
fn an_unsupported_alg_is_sanitized_before_it_is_repeated() {
    let rsa = Signer::rsa();
    let hostile = "HS256\r\nset-cookie: a=\"b\"\\ \u{7f}é".repeat(10);
    let token = rsa.token_alg(&hostile, Some("k1"), &claims());
    let err = refused(&token, &rsa);
    assert_eq!(
        err,
        TokenError::UnsupportedAlgorithm("HS256??set-cookie:?a=?b?".into())
    );
    let shown = err.to_string();
    assert!(shown.len() <= 64, "{shown}");
    assert!(
        shown.bytes().all(|b| b.is_ascii_graphic() || b == b' '),
        "{shown}"
    );
}

#[test]
fn a_kid_no_key_has_is_no_matching_key() {
    let rsa = Signer::rsa();
    let token = rsa.token(Some("rotated-away"), &claims());
    assert_eq!(refused(&token, &rsa), TokenError::NoMatchingKey);
}

#[test]
fn an_ec_token_with_only_rsa_keys_is_a_key_type_mismatch() {
    // Whether the kid matches the RSA key or the token has none, the key set has keys the
    // token could mean but none of the kind ES256 needs.
    let (p256, rsa) = (Signer::p256(), Signer::rsa());
    for kid in [Some("k1"), None] {
        let token = p256.token(kid, &claims());
        assert_eq!(
            refused(&token, &rsa),
            TokenError::KeyTypeMismatch,
            "{kid:?}"
        );
    }
    // A P-384 key does not verify ES256, nor an Ed25519 key ES384.
    assert_eq!(
        refused(&p256.token(None, &claims()), &Signer::p384()),
        TokenError::KeyTypeMismatch
    );
    let p384 = Signer::p384();
    assert_eq!(
        refused(&p384.token(None, &claims()), &Signer::ed25519()),
        TokenError::KeyTypeMismatch
    );
}

#[test]
fn a_key_pinned_to_one_alg_does_not_verify_another() {
    // The same RSA key, pinned to RS256 in the set, must not verify a (valid) PS256 token.
    let rsa = Signer::rsa();
    let mut jwk = rsa.jwk(Some("k1"));
    jwk["alg"] = json!("RS256");
    let token = rsa.token_alg("PS256", Some("k1"), &claims());
    let err = verify(&token, &jwks(&[jwk]), &expect(&api())).expect_err("refused");
    assert_eq!(err, TokenError::KeyTypeMismatch);
}

#[test]
fn every_reason_is_short_printable_and_labelled() {
    let all = [
        TokenError::TooLarge,
        TokenError::Malformed("signature is not base64url"),
        TokenError::UnsupportedAlgorithm("X".repeat(24)),
        TokenError::AlgorithmNone,
        TokenError::NoMatchingKey,
        TokenError::KeyTypeMismatch,
        TokenError::BadSignature,
        TokenError::Expired,
        TokenError::NotYetValid,
        TokenError::IssuerMismatch,
        TokenError::AudienceMismatch,
    ];
    let mut labels = std::collections::HashSet::new();
    for err in all {
        let shown = err.to_string();
        assert!(shown.len() <= 64, "{shown}");
        assert!(
            shown.bytes().all(|b| b.is_ascii_graphic() || b == b' '),
            "{shown}"
        );
        assert!(labels.insert(err.label()), "{}", err.label());
    }
}
