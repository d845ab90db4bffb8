//! Known answers from the RFCs — signatures this code did not make — plus a smoke run of the
//! fuzz entry points. (The base64url decoder's edge cases are tested where it lives, in
//! `weft_api::jwks`.)

use super::*;

/// RFC 7515 appendix A.2: RS256, and the RSA public key of A.2.1.
const RFC7515_A2_N: &str = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
const RFC7515_A2_JWS: &str = concat!(
    "eyJhbGciOiJSUzI1NiJ9",
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ",
    ".cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw",
);

/// RFC 7515 appendix A.3: ES256 with the P-256 key of A.3.1.
const RFC7515_A3_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
const RFC7515_A3_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
const RFC7515_A3_JWS: &str = concat!(
    "eyJhbGciOiJFUzI1NiJ9",
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ",
    ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q",
);

/// RFC 8037 appendix A.4: Ed25519 over a payload that is not JSON.
const RFC8037_A4_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
const RFC8037_A4_JWS: &str = concat!(
    "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc",
    ".hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg",
);

/// The RFC 7515 examples' issuer and expiry (`"iss":"joe"`, `"exp":1300819380`).
fn joe(now_unix: u64) -> Expect<'static> {
    Expect {
        issuer: "joe",
        audiences: &[],
        now_unix,
        leeway_secs: DEFAULT_LEEWAY_SECS,
    }
}

#[test]
fn rfc7515_a2_rs256_verifies_and_expires() {
    let set = jwks(&[json!({"kty": "RSA", "n": RFC7515_A2_N, "e": "AQAB"})]);
    let ok = verify(RFC7515_A2_JWS, &set, &joe(1_300_819_380)).expect("A.2 verifies");
    assert_eq!(
        ok.claims,
        json!({"iss": "joe", "exp": 1_300_819_380u64, "http://example.com/is_root": true})
    );
    assert_eq!(
        verify(RFC7515_A2_JWS, &set, &joe(1_300_819_441)).map(drop),
        Err(TokenError::Expired)
    );
    // The same key pinned to PS256, or offered as the only key for ES256, refuses it.
    let pinned = jwks(&[json!({"kty": "RSA", "n": RFC7515_A2_N, "e": "AQAB", "alg": "PS256"})]);
    assert_eq!(
        verify(RFC7515_A2_JWS, &pinned, &joe(0)).map(drop),
        Err(TokenError::KeyTypeMismatch)
    );
}

#[test]
fn rfc7515_a3_es256_verifies() {
    let set = jwks(&[json!({"kty": "EC", "crv": "P-256", "x": RFC7515_A3_X, "y": RFC7515_A3_Y})]);
    assert!(verify(RFC7515_A3_JWS, &set, &joe(1_300_819_000)).is_ok());
    // The x and y swapped is not a point on the curve: ring refuses it at verification.
    let swapped =
        jwks(&[json!({"kty": "EC", "crv": "P-256", "x": RFC7515_A3_Y, "y": RFC7515_A3_X})]);
    assert_eq!(
        verify(RFC7515_A3_JWS, &swapped, &joe(0)).map(drop),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn rfc8037_a4_ed25519_signature_verifies() {
    let set = jwks(&[json!({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_A4_X})]);
    let signed = signature::verify_signature(RFC8037_A4_JWS, &set).map_err(|e| e.to_string());
    assert_eq!(
        signed.map(|s| s.payload).as_deref(),
        Ok(&b"Example of Ed25519 signing"[..])
    );
    // Through `verify` the signature passes and the payload, not JSON, is refused.
    let err = verify(RFC8037_A4_JWS, &set, &joe(0)).map(drop);
    assert_eq!(
        err,
        Err(TokenError::Malformed("payload is not a JSON object"))
    );
    let tampered = RFC8037_A4_JWS.replace("RXhhbXBsZSBvZi", "RXhhbXBsZSBvZy");
    let err = signature::verify_signature(&tampered, &set).map(drop);
    assert_eq!(err, Err(TokenError::BadSignature));
}

#[test]
fn the_fuzz_entry_points_survive_mutations_of_real_tokens() {
    for token in [RFC7515_A2_JWS, RFC7515_A3_JWS, RFC8037_A4_JWS] {
        fuzz_token(token.as_bytes());
        let bytes = token.as_bytes();
        for i in (0..bytes.len()).step_by(7) {
            for replacement in [b'.', b'A', b'=', b'_', 0xff, b'{'] {
                let mut mutated = bytes.to_vec();
                mutated[i] = replacement;
                fuzz_token(&mutated);
            }
            fuzz_token(&bytes[..i]);
        }
    }
    fuzz_token(b"");
    fuzz_token(&[b'.'; MAX_TOKEN_BYTES + 1]);
    let set = r#"{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
    for i in 0..set.len() {
        fuzz_jwks(&set.as_bytes()[..i]);
    }
}
