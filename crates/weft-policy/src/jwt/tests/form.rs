//! Inputs that are not a compact JWS Weft reads: too large, the wrong number of segments,
//! segments that are not canonical base64url, headers and payloads of the wrong shape. All
//! are refused as `TooLarge` or `Malformed`, saying which part was wrong.

use super::refuse::with_segment;
use super::*;

#[test]
fn an_oversized_token_is_refused_before_it_is_read() {
    let ed = Signer::ed25519();
    let big = claims_with(json!({"pad": "x".repeat(MAX_TOKEN_BYTES)}));
    assert_eq!(
        refused(&ed.token(Some("k1"), &big), &ed),
        TokenError::TooLarge
    );
    assert_eq!(
        refused(&".".repeat(MAX_TOKEN_BYTES + 1), &ed),
        TokenError::TooLarge
    );
    // At the limit it is read (and found malformed), not refused for size.
    let at_limit = format!("{}..", "A".repeat(MAX_TOKEN_BYTES - 2));
    assert!(matches!(refused(&at_limit, &ed), TokenError::Malformed(_)));
}

#[test]
fn anything_but_three_segments_is_malformed() {
    let ed = Signer::ed25519();
    let token = ed.token(Some("k1"), &claims());
    let (h, p, s) = {
        let v: Vec<&str> = token.split('.').collect();
        (v[0], v[1], v[2])
    };
    let jws_shape = TokenError::Malformed("not three dot-separated segments");
    for bad in [
        String::new(),
        h.to_string(),
        format!("{h}.{p}"),
        format!("{h}.{p}.{s}."),
        format!("{h}.{p}.{s}.{s}"),
        format!("{h}..{p}.{s}"),
        ".".repeat(1000),
    ] {
        assert_eq!(refused(&bad, &ed), jws_shape, "{bad:.30}");
    }
    let jwe = format!("{h}.{p}.{s}.{s}.{s}");
    assert_eq!(
        refused(&jwe, &ed),
        TokenError::Malformed("encrypted JWT (JWE) not supported")
    );
}

#[test]
fn segments_must_be_canonical_unpadded_base64url() {
    let ed = Signer::ed25519();
    let token = ed.token(Some("k1"), &claims());
    let segs: Vec<&str> = token.split('.').collect();
    let cases = [
        (0, format!("{}=", segs[0]), "header is not base64url"),
        (0, segs[0].replace('J', "+"), "header is not base64url"),
        (0, format!("{} ", segs[0]), "header is not base64url"),
        (
            1,
            format!("{}A", &segs[1][..segs[1].len() - segs[1].len() % 4]),
            "payload is not base64url",
        ),
        (1, segs[1].replace('e', "/"), "payload is not base64url"),
        (2, format!("{}==", segs[2]), "signature is not base64url"),
        (
            2,
            segs[2].replacen(|c: char| c.is_ascii_alphanumeric(), "*", 1),
            "signature is not base64url",
        ),
    ];
    for (i, segment, why) in cases {
        let bad = with_segment(&token, i, &segment);
        assert_eq!(
            refused(&bad, &ed),
            TokenError::Malformed(why),
            "{i}: {segment:.20}"
        );
    }
}

#[test]
fn the_header_must_be_a_json_object_with_a_string_alg() {
    let ed = Signer::ed25519();
    let cases: [(&[u8], &str); 8] = [
        (b"not json", "header is not a JSON object"),
        (b"[\"alg\",\"EdDSA\"]", "header is not a JSON object"),
        (b"\"EdDSA\"", "header is not a JSON object"),
        (b"{\"alg\":\"EdDSA\"", "header is not a JSON object"),
        (b"{\"typ\":\"JWT\"}", "header has no alg"),
        (b"{\"alg\":7}", "alg is not a string"),
        (b"{\"alg\":\"EdDSA\",\"kid\":7}", "kid is not a string"),
        (
            b"{\"alg\":\"EdDSA\",\"crit\":[\"exp\"],\"exp\":1}",
            "crit header not supported",
        ),
    ];
    for (header, why) in cases {
        let input = format!("{}.{}", b64(header), b64(claims().to_string().as_bytes()));
        let token = format!("{input}.{}", b64(&ed.sign("EdDSA", input.as_bytes())));
        assert_eq!(
            refused(&token, &ed),
            TokenError::Malformed(why),
            "{}",
            String::from_utf8_lossy(header)
        );
    }
}

#[test]
fn deep_json_nesting_is_refused_without_recursing_far() {
    // serde_json stops at 128 levels; 2,500 (as deep as fits in 8 KiB) could overflow the
    // stack of a parser without such a limit.
    let ed = Signer::ed25519();
    let deep = format!("{}{}", "[".repeat(2500), "]".repeat(2500));
    let token = format!("{}.e30.", b64(deep.as_bytes()));
    assert_eq!(
        refused(&token, &ed),
        TokenError::Malformed("header is not a JSON object")
    );
}

#[test]
fn a_signed_payload_that_is_not_a_json_object_is_malformed() {
    let ed = Signer::ed25519();
    for payload in [&b"[1,2]"[..], b"\"iss\"", b"not json", b"", b"{\"iss\":"] {
        let token = ed.token_raw(&json!({"alg": "EdDSA", "kid": "k1"}), payload);
        let err = refused(&token, &ed);
        assert_eq!(
            err,
            TokenError::Malformed("payload is not a JSON object"),
            "{payload:?}"
        );
    }
}
