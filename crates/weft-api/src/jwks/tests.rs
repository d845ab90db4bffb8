//! Key sets: which keys are usable, which are skipped and why, the errors that say so, and
//! [`check`]'s wording for the validator. Signatures are `weft-policy`'s to test: keys here
//! are the RFC examples' public keys (and one P-384 key made with openssl), or byte strings
//! of the right size where only sizes matter.

use serde_json::{json, Value};

use super::*;

/// RFC 7515 A.2.1's RSA modulus (2048 bits; `e` is `AQAB`).
const RSA_N: &str = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
/// RFC 7515 A.3.1's P-256 point.
const P256_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
const P256_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
/// A P-384 point (`openssl ecparam -name secp384r1 -genkey`, public half; test-only).
const P384_X: &str = "ffcxwCmnMQ0Q5nyGE1WC3_5GQvu0PYOG8tXHxFxnthLJ-euCBHOcDxnyKwEe0Grg";
const P384_Y: &str = "UakPkYt1lmDW6sWf3jWbTyQnOmDNItp3E5DvUylyZ867NBWajWFP-g-dUzju0yrA";
/// RFC 8037 A.2's Ed25519 public key.
const ED25519_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

/// base64url without padding: the encoder an identity provider would use.
fn b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let v = chunk
            .iter()
            .enumerate()
            .fold(0u32, |v, (i, b)| v | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((v >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

fn parse(keys: Value) -> Result<Jwks, JwksError> {
    Jwks::parse(&json!({ "keys": keys }).to_string())
}

/// An RSA JWK whose modulus is `n` (not a real key: the parser checks sizes, not primes).
fn rsa_n(n: &[u8]) -> Value {
    json!({"kty": "RSA", "n": b64(n), "e": "AQAB"})
}

fn odd(len: usize) -> Vec<u8> {
    vec![0xc1; len]
}

fn ed25519() -> Value {
    json!({"kty": "OKP", "crv": "Ed25519", "x": ED25519_X})
}

#[test]
fn usable_keys_are_kept_and_the_rest_counted_by_reason() {
    let set = parse(json!([
        {"kty": "RSA", "kid": "rsa", "n": RSA_N, "e": "AQAB"},
        {"kty": "oct", "k": "c2VjcmV0"},
        {"kty": "EC", "crv": "P-256", "x": P256_X, "y": P256_Y},
        {"kty": "oct", "k": "c2VjcmV0"},
        {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"},
        {"kty": "EC", "crv": "P-384", "x": P384_X, "y": P384_Y, "kid": "p384", "alg": "ES384"},
        {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"},
        {"kty": "OKP", "crv": "Ed25519", "x": ED25519_X, "kid": "ed", "use": "sig"},
        {"kty": "OKP", "crv": "X25519", "x": b64(&[1; 32])},
    ]))
    .expect("usable keys");
    assert_eq!((set.len(), set.is_empty()), (4, false));
    let described: Vec<_> = set
        .keys()
        .iter()
        .map(|k| (k.kind(), k.kid(), k.alg()))
        .collect();
    assert_eq!(
        described,
        [
            ("RSA", Some("rsa"), None),
            ("EC P-256", None, None),
            ("EC P-384", Some("p384"), Some(Algorithm::Es384)),
            ("OKP Ed25519", Some("ed"), None),
        ]
    );
    assert_eq!(set.skipped().total(), 5);
    assert_eq!(
        set.skipped().to_string(),
        "2 oct keys (symmetric keys are not supported), 1 EC key on a crv other than P-256 or \
         P-384, 1 key with a use other than \"sig\", 1 OKP key on a crv other than Ed25519"
    );
}

#[test]
fn material_is_in_the_form_ring_takes() {
    let point = |x: &str, y: &str| {
        let (x, y) = (b64::decode(x), b64::decode(y));
        [vec![0x04], x.unwrap_or_default(), y.unwrap_or_default()].concat()
    };
    let n = b64::decode(RSA_N).unwrap_or_default();
    // Leading zero bytes (a DER habit of some issuers) are dropped from `n` and `e`.
    let padded_n = b64(&[&[0u8, 0][..], &n].concat());
    let set = parse(json!([
        {"kty": "RSA", "n": padded_n, "e": "AAEAAQ"},
        {"kty": "EC", "crv": "P-256", "x": P256_X, "y": P256_Y},
        {"kty": "EC", "crv": "P-384", "x": P384_X, "y": P384_Y},
        ed25519(),
    ]))
    .expect("usable keys");
    let material: Vec<_> = set.keys().iter().map(Key::material).cloned().collect();
    let ed: [u8; 32] = b64::decode(ED25519_X)
        .and_then(|x| x.try_into().ok())
        .unwrap_or_default();
    assert_eq!(
        material,
        [
            KeyMaterial::Rsa {
                n,
                e: vec![1, 0, 1]
            },
            KeyMaterial::P256(point(P256_X, P256_Y)),
            KeyMaterial::P384(point(P384_X, P384_Y)),
            KeyMaterial::Ed25519(ed),
        ]
    );
    assert_eq!(
        material
            .iter()
            .map(|m| match m {
                KeyMaterial::Rsa { n, .. } => n.len(),
                KeyMaterial::P256(p) | KeyMaterial::P384(p) => p.len(),
                KeyMaterial::Ed25519(x) => x.len(),
            })
            .collect::<Vec<_>>(),
        [256, 65, 97, 32]
    );
}

#[test]
fn keys_fit_only_algorithms_of_their_kind_and_their_pin() {
    let set = parse(json!([
        {"kty": "RSA", "n": RSA_N, "e": "AQAB"},
        {"kty": "RSA", "n": RSA_N, "e": "AQAB", "alg": "PS256"},
        {"kty": "EC", "crv": "P-256", "x": P256_X, "y": P256_Y},
        {"kty": "EC", "crv": "P-384", "x": P384_X, "y": P384_Y},
        ed25519(),
    ]))
    .expect("usable keys");
    let fitting = |key: &Key| -> Vec<&str> {
        Algorithm::ALL
            .into_iter()
            .filter(|a| key.fits(*a))
            .map(Algorithm::name)
            .collect()
    };
    let fits: Vec<_> = set.keys().iter().map(fitting).collect();
    assert_eq!(
        fits,
        [
            vec!["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"],
            vec!["PS256"],
            vec!["ES256"],
            vec!["ES384"],
            vec!["EdDSA"],
        ]
    );
}

#[test]
fn algorithm_names_are_exact() {
    for alg in Algorithm::ALL {
        assert_eq!(Algorithm::from_name(alg.name()), Some(alg));
        assert_eq!(alg.to_string(), alg.name());
    }
    for name in ["rs256", "EDDSA", "HS256", "ES512", "none", "", "RS256 "] {
        assert_eq!(Algorithm::from_name(name), None, "{name:?}");
    }
}

#[test]
fn a_1024_bit_rsa_key_is_unusable_and_the_error_says_so() {
    let err = parse(json!([rsa_n(&odd(128))])).expect_err("no usable key");
    assert_eq!(
        err.to_string(),
        "no usable key: 1 RSA key with n shorter than 2048 bits"
    );
    let JwksError::NoUsableKey(skipped) = err else {
        panic!("{err:?}")
    };
    assert_eq!(skipped.counts(), [(SkipReason::RsaTooShort, 1)]);
}

#[test]
fn rsa_sizes_follow_rings_2048_to_8192_bit_bounds() {
    // ring rounds the modulus up to whole bytes for the floor: 2041..=2048 bits pass.
    let mut short = odd(256);
    short[0] = 0x01;
    assert!(parse(json!([rsa_n(&short)])).is_ok(), "2041 bits");
    assert!(parse(json!([rsa_n(&odd(255))])).is_err(), "2040 bits");
    assert!(parse(json!([rsa_n(&odd(1024))])).is_ok(), "8192 bits");
    let mut long = odd(1025);
    long[0] = 0x01;
    let err = parse(json!([rsa_n(&long)])).expect_err("8193 bits");
    assert_eq!(
        err.to_string(),
        "no usable key: 1 RSA key with n longer than 8192 bits"
    );
}

#[test]
fn malformed_rsa_keys_are_skipped() {
    let n = b64(&odd(256));
    let cases = [
        (json!({"kty": "RSA", "e": "AQAB"}), SkipReason::RsaMalformed),
        (
            json!({"kty": "RSA", "n": n, "e": 65537}),
            SkipReason::RsaMalformed,
        ),
        (
            json!({"kty": "RSA", "n": "not base64!", "e": "AQAB"}),
            SkipReason::RsaMalformed,
        ),
        (
            json!({"kty": "RSA", "n": "AAAA", "e": "AQAB"}),
            SkipReason::RsaMalformed,
        ),
        (
            json!({"kty": "RSA", "n": b64(&[0xc0; 256]), "e": "AQAB"}),
            SkipReason::RsaMalformed,
        ),
        (
            json!({"kty": "RSA", "n": n, "e": "AQAA"}),
            SkipReason::RsaBadExponent,
        ),
        (
            json!({"kty": "RSA", "n": n, "e": "AQ"}),
            SkipReason::RsaBadExponent,
        ),
        (
            json!({"kty": "RSA", "n": n, "e": "AA"}),
            SkipReason::RsaBadExponent,
        ),
        (
            json!({"kty": "RSA", "n": n, "e": b64(&[1, 0, 0, 0, 0, 1])}),
            SkipReason::RsaBadExponent,
        ),
        (
            json!({"kty": "RSA", "n": n, "e": b64(&[2, 0, 0, 0, 1])}),
            SkipReason::RsaBadExponent,
        ),
    ];
    for (jwk, why) in cases {
        let err = parse(json!([jwk])).expect_err("skipped");
        assert_eq!(
            err,
            JwksError::NoUsableKey(Skipped(vec![(why, 1)])),
            "{jwk}"
        );
    }
    // The largest exponent ring takes, 2^33 - 1, is fine.
    assert!(parse(json!([{"kty": "RSA", "n": n, "e": b64(&[1, 0xff, 0xff, 0xff, 0xff])}])).is_ok());
}

#[test]
fn ec_okp_and_generic_problems_are_skipped_with_their_reason() {
    let (x32, x31) = (b64(&[1; 32]), b64(&[1; 31]));
    let cases = [
        (json!(7), SkipReason::NotAnObject),
        (json!({"n": "AQAB"}), SkipReason::NoKty),
        (json!({"kty": 1}), SkipReason::NoKty),
        (json!({"kty": "RSA-PSS"}), SkipReason::UnsupportedKty),
        (
            json!({"kty": "OKP", "crv": "Ed25519", "x": x32, "use": 1}),
            SkipReason::NotForSignatures,
        ),
        (
            json!({"kty": "OKP", "crv": "Ed25519", "x": x32, "kid": 1}),
            SkipReason::BadKid,
        ),
        (
            json!({"kty": "OKP", "crv": "Ed25519", "x": x32, "alg": "ES256"}),
            SkipReason::UnsupportedAlg,
        ),
        (
            json!({"kty": "OKP", "crv": "Ed25519", "x": x32, "alg": "HS256"}),
            SkipReason::UnsupportedAlg,
        ),
        (
            json!({"kty": "OKP", "crv": "Ed25519", "x": x32, "alg": ["EdDSA"]}),
            SkipReason::UnsupportedAlg,
        ),
        (
            json!({"kty": "OKP", "crv": "Ed25519", "x": x31}),
            SkipReason::OkpMalformed,
        ),
        (
            json!({"kty": "OKP", "crv": "Ed448", "x": x32}),
            SkipReason::OkpUnsupportedCurve,
        ),
        (
            json!({"kty": "EC", "x": x32, "y": x32}),
            SkipReason::EcUnsupportedCurve,
        ),
        (
            json!({"kty": "EC", "crv": "secp256k1", "x": x32, "y": x32}),
            SkipReason::EcUnsupportedCurve,
        ),
        (
            json!({"kty": "EC", "crv": "P-256", "x": x32, "y": x31}),
            SkipReason::EcMalformed,
        ),
        (
            json!({"kty": "EC", "crv": "P-384", "x": x32, "y": x32}),
            SkipReason::EcMalformed,
        ),
        (
            json!({"kty": "EC", "crv": "P-256", "x": x32}),
            SkipReason::EcMalformed,
        ),
    ];
    for (jwk, why) in cases {
        let err = parse(json!([jwk])).expect_err("skipped");
        assert_eq!(
            err,
            JwksError::NoUsableKey(Skipped(vec![(why, 1)])),
            "{jwk}"
        );
        assert!(err.to_string().starts_with("no usable key: 1 "), "{err}");
    }
}

#[test]
fn documents_that_are_not_key_sets_are_errors() {
    assert_eq!(
        Jwks::parse(r#"{"keys": []}"#).map(drop),
        Err(JwksError::NoUsableKey(Skipped::default()))
    );
    assert_eq!(
        Jwks::parse(r#"{"keys": []}"#)
            .map(drop)
            .unwrap_err()
            .to_string(),
        "no usable key: the key set is empty"
    );
    for doc in [r#"[]"#, r#"{"keys": {}}"#, r#"{"key": []}"#, "7"] {
        assert_eq!(
            Jwks::parse(doc).map(drop),
            Err(JwksError::NotAKeySet),
            "{doc}"
        );
    }
    let err = Jwks::parse(r#"{"keys": [}"#).map(drop).unwrap_err();
    assert!(matches!(err, JwksError::NotJson(_)), "{err:?}");
    assert!(err.to_string().contains("line 1 column"), "{err}");
}

#[test]
fn key_sets_may_carry_base64_padding() {
    // Some providers pad JWK members; the set is trusted configuration, so it is tolerated
    // there (and only there: token segments must be unpadded).
    let padded = json!({"kty": "OKP", "crv": "Ed25519", "x": format!("{ED25519_X}=")});
    assert_eq!(parse(json!([padded])), parse(json!([ed25519()])));
    assert!(parse(json!([ed25519()])).is_ok());
}

#[test]
fn a_private_jwk_is_used_for_its_public_half_only() {
    // `d` is ignored: a set holding private keys by mistake still loads, as public keys.
    let mut private = ed25519();
    private["d"] = json!(b64(&[9; 32]));
    assert_eq!(parse(json!([private])), parse(json!([ed25519()])));
}

#[test]
fn check_refuses_a_set_without_a_usable_key_in_the_parsers_words() {
    let ed = json!({"keys": [ed25519()]}).to_string();
    assert_eq!(check(&ed), Ok(()));
    for (bad, why) in [
        (
            "nope",
            "the key set is not JSON: expected ident at line 1 column 2",
        ),
        (
            "{}",
            "not a key set: expected a JSON object with a \"keys\" array",
        ),
        (r#"{"keys":[]}"#, "no usable key: the key set is empty"),
        (
            r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#,
            "no usable key: 1 oct key (symmetric keys are not supported)",
        ),
        (
            r#"{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}"#,
            "no usable key: 1 RSA key with n shorter than 2048 bits",
        ),
        (
            r#"{"keys":[{"kty":"EC","crv":"P-521","x":"AA","y":"AA"}]}"#,
            "no usable key: 1 EC key on a crv other than P-256 or P-384",
        ),
        (
            r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","use":"enc"}]}"#,
            "no usable key: 1 key with a use other than \"sig\"",
        ),
    ] {
        assert_eq!(check(bad), Err(why.to_string()), "{bad}");
        let parsed = Jwks::parse(bad).map(drop).map_err(|e| e.to_string());
        assert_eq!(check(bad), parsed, "{bad}");
    }
}
