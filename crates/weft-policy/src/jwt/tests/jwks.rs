//! Key sets as the verifier uses them: the parsed keys really verify. Which keys a set keeps
//! and which it skips (and the words for it) is the parser's, tested in `weft_api::jwks`.

use super::*;

#[test]
fn key_sets_may_carry_base64_padding() {
    // Some providers pad JWK members; the set is trusted configuration, so it is tolerated
    // there (and only there: token segments must be unpadded).
    let ed = Signer::ed25519();
    let mut jwk = ed.jwk(Some("k1"));
    jwk["x"] = json!(format!("{}=", jwk["x"].as_str().unwrap_or_default()));
    let token = ed.token(Some("k1"), &claims());
    assert!(verify(&token, &jwks(&[jwk]), &expect(&api())).is_ok());
}

#[test]
fn a_private_jwk_is_used_for_its_public_half_only() {
    // `d` is ignored: a set holding private keys by mistake still verifies.
    let ed = Signer::ed25519();
    let mut jwk = ed.jwk(None);
    jwk["d"] = json!(b64(&[9; 32]));
    assert!(verify(&ed.token(None, &claims()), &jwks(&[jwk]), &expect(&api())).is_ok());
}
