//! The claim checks on validly signed tokens: issuer, expiry and not-before with the leeway,
//! audiences, and claims of the wrong type.

use super::*;

/// Verifies a token with `claims` (signed by a fresh Ed25519 key) as a rule accepting
/// `audiences` would, `now` seconds after [`NOW`] (or before, when negative).
fn check_at(claims: &Value, audiences: &[String], now: i64) -> Result<Verified, TokenError> {
    let ed = Signer::ed25519();
    let token = ed.token(None, claims);
    let mut expect = expect(audiences);
    expect.now_unix = NOW.saturating_add_signed(now);
    verify(&token, &jwks(&[ed.jwk(None)]), &expect)
}

fn check(claims: &Value) -> Result<Verified, TokenError> {
    check_at(claims, &api(), 0)
}

#[test]
fn exp_holds_within_the_leeway_and_not_beyond() {
    let c = claims_with(json!({"exp": NOW}));
    assert!(check_at(&c, &api(), 60).is_ok(), "at exp + leeway");
    assert_eq!(check_at(&c, &api(), 61), Err(TokenError::Expired));
    let ed = Signer::ed25519();
    let no_leeway = Expect {
        leeway_secs: 0,
        now_unix: NOW + 1,
        ..expect(&[])
    };
    let token = ed.token(None, &c);
    assert_eq!(
        verify(&token, &jwks(&[ed.jwk(None)]), &no_leeway).map(drop),
        Err(TokenError::Expired)
    );
}

#[test]
fn nbf_in_the_future_is_not_yet_valid_beyond_the_leeway() {
    let c = claims_with(json!({"nbf": NOW + 60}));
    assert!(check(&c).is_ok(), "nbf - leeway is now");
    let c = claims_with(json!({"nbf": NOW + 61}));
    assert_eq!(check(&c).map(drop), Err(TokenError::NotYetValid));
}

#[test]
fn exp_and_nbf_are_optional_and_may_be_fractional_or_huge() {
    assert!(check(&claims_with(json!({"exp": null, "nbf": null}))).is_ok());
    assert!(check(&claims_with(json!({"exp": (NOW + 10) as f64 + 0.5}))).is_ok());
    assert!(check(&claims_with(json!({"exp": 1e300}))).is_ok());
    assert!(check(&claims_with(json!({"exp": u64::MAX}))).is_ok());
    assert!(check(&claims_with(json!({"nbf": 0}))).is_ok());
}

#[test]
fn exp_and_nbf_of_the_wrong_type_are_malformed() {
    let exp = TokenError::Malformed("exp is not a number");
    for bad in [
        json!("1900000000"),
        json!(-1),
        json!(-0.5),
        json!(true),
        json!([NOW]),
    ] {
        assert_eq!(
            check(&claims_with(json!({"exp": bad}))).map(drop),
            Err(exp.clone()),
            "{bad}"
        );
    }
    let nbf = TokenError::Malformed("nbf is not a number");
    assert_eq!(check(&claims_with(json!({"nbf": "0"}))).map(drop), Err(nbf));
}

#[test]
fn iss_must_be_the_rules_issuer_exactly() {
    for iss in [
        json!("https://issuer.example/"),
        json!("HTTPS://ISSUER.EXAMPLE"),
        json!(""),
    ] {
        let c = claims_with(json!({ "iss": iss }));
        assert_eq!(
            check(&c).map(drop),
            Err(TokenError::IssuerMismatch),
            "{iss}"
        );
    }
    let c = claims_with(json!({"iss": null}));
    assert_eq!(check(&c).map(drop), Err(TokenError::IssuerMismatch));
    let c = claims_with(json!({"iss": ["https://issuer.example"]}));
    assert_eq!(
        check(&c).map(drop),
        Err(TokenError::Malformed("iss is not a string"))
    );
}

#[test]
fn aud_must_name_an_accepted_audience() {
    let accepted = vec!["web".to_string(), "api".to_string()];
    let ok = |aud: Value| check_at(&claims_with(json!({ "aud": aud })), &accepted, 0).map(drop);
    assert_eq!(ok(json!("api")), Ok(()));
    assert_eq!(ok(json!(["other", "web"])), Ok(()));
    assert_eq!(ok(json!("API")), Err(TokenError::AudienceMismatch));
    assert_eq!(ok(json!(["other"])), Err(TokenError::AudienceMismatch));
    assert_eq!(ok(json!([])), Err(TokenError::AudienceMismatch));
    assert_eq!(
        ok(Value::Null),
        Err(TokenError::AudienceMismatch),
        "aud absent"
    );
    let shape = Err(TokenError::Malformed("aud is not a string or strings"));
    assert_eq!(ok(json!(7)), shape);
    assert_eq!(ok(json!({"api": true})), shape);
    assert_eq!(
        ok(json!(["api", 7])),
        shape,
        "checked whole, whatever the order"
    );
}

#[test]
fn with_no_audiences_listed_aud_is_not_checked() {
    for aud in [json!("other"), json!(["x"]), Value::Null] {
        let c = claims_with(json!({ "aud": aud }));
        assert!(check_at(&c, &[], 0).is_ok(), "{aud}");
    }
}

#[test]
fn a_forged_token_is_refused_as_forged_not_as_expired() {
    let (signer, other) = (Signer::ed25519(), Signer::ed25519());
    let token = signer.token(None, &claims_with(json!({"exp": 1, "iss": "elsewhere"})));
    let err = verify(&token, &jwks(&[other.jwk(None)]), &expect(&api()));
    assert_eq!(err.map(drop), Err(TokenError::BadSignature));
}
