//! Entry points for fuzz targets (`cargo fuzz`), kept in the library so a target is one line
//! and the fuzzer exercises exactly the code the proxy runs. The key set is fixed and small
//! (the RFC 7515 A.2 RSA, A.3 P-256 and RFC 8037 A.4 Ed25519 public keys), so that inputs
//! built from those RFCs' tokens reach past key selection into ring and the claim checks.

use std::sync::OnceLock;

use super::{unverified_issuer, verify, Expect, Jwks};

const FUZZ_JWKS: &str = r#"{"keys":[
{"kty":"RSA","kid":"rsa","e":"AQAB","n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"},
{"kty":"EC","kid":"ec","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
]}"#;

/// The RFC tokens' issuer, and a time before their `exp` (1300819380).
const FUZZ_ISSUER: &str = "joe";
const FUZZ_NOW: u64 = 1_300_819_000;

fn fuzz_jwks_set() -> Option<&'static Jwks> {
    static SET: OnceLock<Option<Jwks>> = OnceLock::new();
    SET.get_or_init(|| Jwks::parse(FUZZ_JWKS).ok()).as_ref()
}

/// Runs [`unverified_issuer`] and [`verify`] (against the fixed key set) on arbitrary input.
/// It must never panic, whatever the bytes.
#[doc(hidden)]
pub fn fuzz_token(bytes: &[u8]) {
    // Tokens come from header values and query strings; anything not UTF-8 is refused
    // before this crate sees it.
    let Ok(token) = std::str::from_utf8(bytes) else {
        return;
    };
    let _ = unverified_issuer(token);
    let Some(jwks) = fuzz_jwks_set() else {
        return;
    };
    let audiences = [String::from("fuzz")];
    for audiences in [&audiences[..], &[]] {
        let expect = Expect {
            issuer: FUZZ_ISSUER,
            audiences,
            now_unix: FUZZ_NOW,
            leeway_secs: super::DEFAULT_LEEWAY_SECS,
        };
        let _ = verify(token, jwks, &expect);
    }
}

/// Runs [`Jwks::parse`] on arbitrary input; it must never panic.
#[doc(hidden)]
pub fn fuzz_jwks(bytes: &[u8]) {
    if let Ok(json) = std::str::from_utf8(bytes) {
        let _ = Jwks::parse(json);
    }
}
